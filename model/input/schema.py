"""Instance schema 1: the validation model of the YAML instance format.

Structure and value checks live in pydantic models (unknown keys are errors,
with the closest allowed key suggested); cross-references (elements, periods,
sources, scenarios, groups) are checked afterwards by the named ``check_*``
functions of :mod:`model.input.instance`. No Pyomo here.

Numbers are validated by hand rather than with pydantic's ``float`` so that
``true``, ``"12"``, NaN and infinities are refused with one plain message, and
every number stays below the bounds of :mod:`model.safety` (far below HiGHS's
infinity). Ids (elements, groups, source and scenario ids, policy names, text
period labels) must match :data:`model.safety.ID_PATTERN`: they become file
names, CSV cells and chart labels.
"""

from __future__ import annotations

import difflib
import math
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    Tag,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from ..safety import (
    COUNTRY_RULE,
    ID_PATTERN,
    ISO_3166_ALPHA2,
    MAX_ALPHA,
    ID_RULE,
    MAX_CURRENCY_LENGTH,
    MAX_DISCOUNT_RATE,
    MAX_ID_LENGTH,
    MAX_MULTIPLIER,
    MAX_NAME_LENGTH,
    MAX_NUMBER,
    MAX_SAMPLE,
    has_control,
    is_country,
    is_id,
    shown,
)

Stage = Literal["mining", "refining"]
Per = Literal["element", "group"]
AppliesTo = Literal["every_scenario", "plan"]


# --------------------------------------------------------------------------- scalars
def _number(value: Any, *, lo: float = 0.0, hi: float = MAX_NUMBER,
            lo_open: bool = False, hi_open: bool = False) -> float:
    """A finite number in [lo, hi] (either end may be open); by default [0, MAX_NUMBER]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PydanticCustomError("number", "must be a number, got {got}",
                                  {"got": _show(value)})
    try:
        v = float(value)
    except OverflowError:    # an int beyond the largest float (10**400): out of range below
        v = math.inf if value > 0 else -math.inf
    if isinstance(value, float) and not math.isfinite(v):
        raise PydanticCustomError("number", "must be a finite number, got {got}",
                                  {"got": _show(value)})
    if v < lo or (lo_open and v == lo):
        what = f"greater than {lo:g}" if lo_open else (
            "non-negative" if lo == 0 else f"at least {lo:g}")
        raise PydanticCustomError("number", "must be {what}, got {got}",
                                  {"what": what, "got": _show(value)})
    if v > hi or (hi_open and v == hi):
        what = f"below {hi:g}" if hi_open else f"at most {hi:g}"
        raise PydanticCustomError("number", "must be {what}, got {got}",
                                  {"what": what, "got": _show(value)})
    return v


def _show(value: Any) -> str:
    return shown(value)      # bounded: never the expansion of an alias bomb


def _nonneg(v: Any) -> float:
    return _number(v)


def _share(v: Any) -> float:
    return _number(v, hi=1.0, hi_open=False)


def _share_or_period_map(value: Any) -> float | dict[str | int, float]:
    """A share for every period, or a map period -> share (a rule phased in: it
    holds in the periods the map names)."""
    if isinstance(value, dict):
        if not value:
            raise PydanticCustomError("period_map", "a share map must name at least one "
                                      "period", {})
        out: dict[str | int, float] = {}
        for key, v in value.items():
            try:
                out[_label(key)] = _share(v)
            except PydanticCustomError as err:
                raise PydanticCustomError(
                    "period_map", "period {key}: {msg}",
                    {"key": key, "msg": err.message()}) from None
        return out
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _share(value)
    raise PydanticCustomError(
        "period_map", "must be a share in [0, 1] or a map period -> share, got {got}",
        {"got": _show(value)})


def _alpha(v: Any) -> float:
    return _number(v, hi=MAX_ALPHA, hi_open=False)


def _positive(v: Any) -> float:
    return _number(v, lo_open=True)


def _multiplier(v: Any) -> float:
    return _number(v, hi=MAX_MULTIPLIER, hi_open=False)


def _rate(v: Any) -> float:
    return _number(v, hi=MAX_DISCOUNT_RATE, hi_open=False)


def _id(value: Any) -> str:
    """An id: safe as a file name, a CSV cell, a chart label and on a terminal."""
    if not isinstance(value, str):
        raise PydanticCustomError("name", "must be an id (a text), got {got}",
                                  {"got": _show(value)})
    if not is_id(value):
        raise PydanticCustomError("name", "must be an id ({rule}), got {got}",
                                  {"rule": ID_RULE, "got": _show(value)})
    return value


MAX_COUNT = 10_000          # periods: lead times, refill, build times


def _count(value: Any) -> int:
    """A whole number >= 0 (periods, for instance)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
        # pydantic fills {got} but knows no format specs: the bound is formatted here
        raise PydanticCustomError("number", f"must be a whole number from 0 to {MAX_COUNT:,}, "
                                  "got {got}", {"got": _show(value)})
    return value


def _label(value: Any) -> str | int:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise PydanticCustomError("label", "must be a name or an integer, got {got}",
                                  {"got": _show(value)})
    if isinstance(value, str) and not value.strip():
        raise PydanticCustomError("label", "must not be empty", {})
    if isinstance(value, str) and not is_id(value):
        raise PydanticCustomError("label", "must be an integer or an id ({rule}), got {got}",
                                  {"rule": ID_RULE, "got": _show(value)})
    if isinstance(value, int) and len(str(abs(value))) > MAX_ID_LENGTH - 1:
        raise PydanticCustomError("label", "must have at most {n} digits, got {got}",
                                  {"n": MAX_ID_LENGTH - 1, "got": _show(value)})
    return value


def _text(value: Any, most: int) -> str:
    """One line of free text: no control characters (they would reach a terminal)."""
    if not isinstance(value, str):
        raise PydanticCustomError("name", "must be a text, got {got}", {"got": _show(value)})
    if has_control(value):
        raise PydanticCustomError(
            "name", "must not contain control characters (escapes, line breaks), got {got}",
            {"got": _show(value)})
    if len(value) > most:
        raise PydanticCustomError("name", "must have at most {n} characters, got {got}",
                                  {"n": most, "got": _show(value)})
    return value


def _name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise PydanticCustomError("name", "must be a non-empty text, got {got}",
                                  {"got": _show(value)})
    return _text(value, MAX_NAME_LENGTH)


def _source_name(value: Any) -> str:
    return _text(value, MAX_NAME_LENGTH)


def _currency(value: Any) -> str:
    return _text(value, MAX_CURRENCY_LENGTH)


MAX_NOTE_LENGTH = 4_000        # a note: a paragraph or two of provenance
MAX_CITATION_LENGTH = 500      # one citation: a row reference and a URL or two
MAX_CITATIONS = 50


def _note(value: Any) -> str:
    """Provenance text: several lines allowed (line breaks and tabs), no other
    control characters (escapes would reach a terminal or a spreadsheet)."""
    if not isinstance(value, str):
        raise PydanticCustomError("name", "must be a text, got {got}", {"got": _show(value)})
    if has_control(value, lines=True):
        raise PydanticCustomError(
            "name", "must not contain control characters other than line breaks and tabs, "
            "got {got}", {"got": _show(value)})
    if len(value) > MAX_NOTE_LENGTH:
        raise PydanticCustomError("name", "must have at most {n} characters, got {got}",
                                  {"n": MAX_NOTE_LENGTH, "got": _show(value)})
    return value


def _citations(value: Any) -> list[str]:
    """A list of citations (each one line of text)."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise PydanticCustomError("name", "must be a list of citations (texts), got {got}",
                                  {"got": _show(value)})
    if len(value) > MAX_CITATIONS:
        raise PydanticCustomError("name", "must list at most {n} citations, got {got}",
                                  {"n": MAX_CITATIONS, "got": len(value)})
    return [_text(v, MAX_CITATION_LENGTH) for v in value]


def _country(value: Any) -> str:
    if not is_country(value):
        hint = ""
        if isinstance(value, str) and not value.isascii():
            hint = " (it holds letters that are not ASCII: " + ", ".join(
                f"U+{ord(c):04X}" for c in value if not c.isascii())[:60] + ")"
        raise PydanticCustomError(
            "country", "must be " + COUNTRY_RULE + ", got {got}{hint}",
            {"got": _show(value), "hint": hint})
    return value


def _number_or_period_map(value: Any) -> float | dict[str | int, float]:
    """A number for every period, or a map period -> number."""
    if isinstance(value, dict):
        out: dict[str | int, float] = {}
        for key, v in value.items():
            try:
                out[_label(key)] = _number(v)
            except PydanticCustomError as err:
                raise PydanticCustomError(
                    "period_map", "period {key}: {msg}",
                    {"key": key, "msg": err.message()}) from None
        return out
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _number(value)
    raise PydanticCustomError(
        "period_map", "must be a number or a map period -> number, got {got}",
        {"got": _show(value)})


def _as_list(value: Any) -> Any:
    """Let a rule (or selector) be written alone or as a list of them."""
    return [value] if isinstance(value, dict) else value


_NUMBER_SCHEMA = {"type": "number", "minimum": 0, "maximum": MAX_NUMBER}
_ID_SCHEMA = {"type": "string", "pattern": f"^{ID_PATTERN.pattern}$"}
Number = Annotated[float, BeforeValidator(_nonneg), WithJsonSchema(_NUMBER_SCHEMA)]
Share = Annotated[float, BeforeValidator(_share),
                  WithJsonSchema({"type": "number", "minimum": 0, "maximum": 1})]
Positive = Annotated[float, BeforeValidator(_positive),
                     WithJsonSchema({"type": "number", "exclusiveMinimum": 0,
                                     "maximum": MAX_NUMBER})]
PeriodShare = Annotated[
    Union[float, dict[Union[str, int], float]], BeforeValidator(_share_or_period_map),
    WithJsonSchema({"oneOf": [{"type": "number", "minimum": 0, "maximum": 1},
                              {"type": "object", "additionalProperties":
                               {"type": "number", "minimum": 0, "maximum": 1}}]})]
Alpha = Annotated[float, BeforeValidator(_alpha),
                  WithJsonSchema({"type": "number", "minimum": 0, "maximum": MAX_ALPHA})]
Count = Annotated[int, BeforeValidator(_count),
                  WithJsonSchema({"type": "integer", "minimum": 0})]
Multiplier = Annotated[float, BeforeValidator(_multiplier),
                       WithJsonSchema({"type": "number", "minimum": 0,
                                       "maximum": MAX_MULTIPLIER})]
Rate = Annotated[float, BeforeValidator(_rate),
                 WithJsonSchema({"type": "number", "minimum": 0,
                                 "maximum": MAX_DISCOUNT_RATE})]
Label = Annotated[Union[str, int], BeforeValidator(_label),
                  WithJsonSchema({"oneOf": [_ID_SCHEMA, {"type": "integer"}]})]
Id = Annotated[str, BeforeValidator(_id), WithJsonSchema(_ID_SCHEMA)]
Name = Annotated[str, BeforeValidator(_name),
                 WithJsonSchema({"type": "string", "minLength": 1,
                                 "maxLength": MAX_NAME_LENGTH})]
SourceName = Annotated[str, BeforeValidator(_source_name),
                       WithJsonSchema({"type": "string", "maxLength": MAX_NAME_LENGTH})]
Currency = Annotated[str, BeforeValidator(_currency),
                     WithJsonSchema({"type": "string", "maxLength": MAX_CURRENCY_LENGTH})]
Country = Annotated[str, BeforeValidator(_country),
                    WithJsonSchema({"type": "string", "enum": sorted(ISO_3166_ALPHA2)})]
Note = Annotated[str, BeforeValidator(_note),
                 WithJsonSchema({"type": "string", "maxLength": MAX_NOTE_LENGTH})]
Citations = Annotated[list[str], BeforeValidator(_citations),
                      WithJsonSchema({"type": "array", "maxItems": MAX_CITATIONS,
                                      "items": {"type": "string",
                                                "maxLength": MAX_CITATION_LENGTH}})]
PeriodValue = Annotated[
    Union[float, dict[Union[str, int], float]],
    BeforeValidator(_number_or_period_map),
    WithJsonSchema({"oneOf": [_NUMBER_SCHEMA, {"type": "object",
                                              "additionalProperties": _NUMBER_SCHEMA}]}),
]
ElementNumberMap = dict[str, Number]


# --------------------------------------------------------------------------- models
class Strict(BaseModel):
    """Base: unknown keys are refused with the closest allowed key suggested."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _refuse_unknown_keys(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise PydanticCustomError("mapping", "must be a mapping of keys to values, got {got}",
                                      {"got": _show(data)})
        allowed = [f.alias or n for n, f in cls.model_fields.items()]
        for key in data:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
                hint = (f" (did you mean '{close[0]}'?)" if close
                        else f" (allowed: {', '.join(allowed)})")
                raise PydanticCustomError("unknown_key", "unknown key '{key}'{hint}",
                                          {"key": str(key), "hint": hint})
        return data


class Selector(Strict):
    """Matches sources; a missing key matches all, a list matches any of its values.
    In a policy's `exclude`, ``{project: ID}`` names investment projects instead."""

    project: Union[Id, list[Id], None] = None
    id: Union[Id, list[Id], None] = None
    # a price index (`indices`): matches the supplies priced on it (scenario rules only)
    index: Union[Id, list[Id], None] = None
    mined_in: Union[Country, list[Country], None] = None
    refined_in: Union[Country, list[Country], None] = None
    mode: Union[Literal["contract", "spot"], list[Literal["contract", "spot"]], None] = None
    recycled: Union[StrictBool, None] = None


class Window(Strict):
    """Periods in which a source can deliver (inclusive); outside it capacity is 0."""

    from_: Label | None = Field(default=None, alias="from")
    until: Label | None = None


class Supply(Strict):
    """One element offered by a source: t/period capacity and currency/t price
    (a number or period map, or `premium` x a price `index`), and the terms of a
    signed contract (committed volume, price floor and cap)."""

    capacity: PeriodValue
    price: PeriodValue | None = None
    index: Id | None = None                  # price = premium x the index's path
    premium: Number | None = None            # default 1 with an index
    committed: PeriodValue | None = None     # t/period already signed: x >= committed
    price_floor: Number | None = None        # delivered price clipped to [floor, cap]
    price_cap: Number | None = None


class Source(Strict):
    """A supplier (mine + refinery route) offering one or more elements."""

    id: Id
    name: SourceName | None = None
    mined_in: Country
    refined_in: Country
    mode: Literal["contract", "spot"] = "contract"
    recycled: StrictBool = False
    reservation_fee: Share = 0.0
    # periods between the decision and the period a contract volume is for:
    # decided with the information of period t - lead_time (absent: at the start)
    lead_time: Count | None = None
    # take-or-pay minimum: in every scenario and period q >= min_take * a * x
    min_take: Share | None = None
    available: Window | None = None
    supply: dict[str, Supply]
    # several buyers: the share of the capacity each named buyer holds alone (the rest
    # split among the buyers it does not name, in proportion to their demand)
    entitlement: dict[Id, Share] | None = None
    notes: Note | None = None                # provenance: how the figures were found
    sources: Citations = Field(default_factory=list)   # citations of those figures


class Disruption(Strict):
    """Capacity multiplier (availability in [0, 1]) for matching sources."""

    match: Selector = Field(default_factory=Selector)
    elements: list[str] | None = None
    periods: list[Label] | None = None
    availability: Share
    # a national emergency: stock floors are released for the elements it hits
    emergency: bool = False
    # several buyers: the rule hits these buyers' deliveries only (absent: every buyer,
    # and the source's output shared among them)
    buyers: list[Id] | None = Field(default=None, min_length=1)


class PriceShock(Strict):
    """Price multiplier on deliveries from matching sources."""

    match: Selector = Field(default_factory=Selector)
    elements: list[str] | None = None
    periods: list[Label] | None = None
    multiplier: Multiplier
    buyers: list[Id] | None = Field(default=None, min_length=1)   # these buyers' prices only


class DemandShock(Strict):
    """Demand multiplier."""

    elements: list[str] | None = None
    periods: list[Label] | None = None
    multiplier: Multiplier
    buyers: list[Id] | None = Field(default=None, min_length=1)   # these buyers' demand only


class Scenario(Strict):
    """One disruption scenario with its probability."""

    id: Id
    description: str | None = None
    probability: Share
    disruptions: list[Disruption] = Field(default_factory=list)
    price_shocks: list[PriceShock] = Field(default_factory=list)
    demand_shocks: list[DemandShock] = Field(default_factory=list)
    notes: Note | None = None
    sources: Citations = Field(default_factory=list)


# --------------------------------------------------------------------------- regimes
# Scenarios generated from a Markov chain of export-control regimes and independent
# events (DESIGN.md, "Scenarios from regimes and events"; model.input.regimes).
_NO_PERIODS = ("a regime's rules hold in the periods the regime holds, so they take no "
               "`periods` (rules of given periods go in `events` or `always`)")


def _refuse_periods(data: Any) -> Any:
    if isinstance(data, dict) and "periods" in data:
        raise PydanticCustomError("unknown_key", "unknown key '{key}'{hint}",
                                  {"key": "periods", "hint": f" ({_NO_PERIODS})"})
    return data


def _drop_periods(schema: dict[str, Any]) -> None:
    schema.get("properties", {}).pop("periods", None)


class StateDisruption(Disruption):
    """A disruption of a regime: in every period the regime holds (no `periods`)."""

    model_config = ConfigDict(json_schema_extra=_drop_periods)

    @model_validator(mode="before")
    @classmethod
    def _no_periods(cls, data: Any) -> Any:
        return _refuse_periods(data)


class StatePriceShock(PriceShock):
    """A price shock of a regime: in every period the regime holds (no `periods`)."""

    model_config = ConfigDict(json_schema_extra=_drop_periods)

    @model_validator(mode="before")
    @classmethod
    def _no_periods(cls, data: Any) -> Any:
        return _refuse_periods(data)


class StateDemandShock(DemandShock):
    """A demand shock of a regime: in every period the regime holds (no `periods`)."""

    model_config = ConfigDict(json_schema_extra=_drop_periods)

    @model_validator(mode="before")
    @classmethod
    def _no_periods(cls, data: Any) -> Any:
        return _refuse_periods(data)


class RegimeState(Strict):
    """One regime (state of the chain): the rules that hold in every period it holds."""

    description: str | None = None
    disruptions: list[StateDisruption] = Field(default_factory=list)
    price_shocks: list[StatePriceShock] = Field(default_factory=list)
    demand_shocks: list[StateDemandShock] = Field(default_factory=list)
    notes: Note | None = None
    sources: Citations = Field(default_factory=list)


def _start(value: Any) -> str | dict[str, float]:
    """The regime before the first period: a state name, or a map state -> probability."""
    if isinstance(value, str):
        return _id(value)
    if isinstance(value, dict):
        out: dict[str, float] = {}
        for key, v in value.items():
            try:
                out[_id(key)] = _share(v)
            except PydanticCustomError as err:
                raise PydanticCustomError("start", "state {key}: {msg}",
                                          {"key": _show(key), "msg": err.message()}) from None
        return out
    raise PydanticCustomError(
        "start", "must be a state name or a map state -> probability, got {got}",
        {"got": _show(value)})


Row = dict[Id, Share]                 # one row of a transition matrix: next state -> P
Matrix = dict[Id, Row]                # current state -> row
Start = Annotated[Union[str, dict[str, float]], BeforeValidator(_start),
                  WithJsonSchema({"oneOf": [_ID_SCHEMA, {
                      "type": "object", "additionalProperties": {
                          "type": "number", "minimum": 0, "maximum": 1}}]})]


class Regimes(Strict):
    """A Markov chain of regimes over the periods: the regime before the first period
    (`start`), the rules of each regime (`states`), P(next | current) (`transition`)
    and, optionally, another matrix from a given period on (`by_period`)."""

    start: Start
    states: dict[Id, RegimeState]
    transition: Matrix
    by_period: dict[Label, Matrix] = Field(default_factory=dict)
    notes: Note | None = None                # how the probabilities were calibrated
    sources: Citations = Field(default_factory=list)


class ScenarioEvent(Strict):
    """An independent one-off uncertainty: it happens with `probability`, and then its
    rules (with their own `periods` filters) hold."""

    id: Id
    description: str | None = None
    probability: Share
    disruptions: list[Disruption] = Field(default_factory=list)
    price_shocks: list[PriceShock] = Field(default_factory=list)
    demand_shocks: list[DemandShock] = Field(default_factory=list)
    notes: Note | None = None
    sources: Citations = Field(default_factory=list)


class Rules(Strict):
    """Rule lists of a scenario (each rule with its own filters)."""

    disruptions: list[Disruption] = Field(default_factory=list)
    price_shocks: list[PriceShock] = Field(default_factory=list)
    demand_shocks: list[DemandShock] = Field(default_factory=list)


def _sample_paths(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SAMPLE:
        raise PydanticCustomError("number", f"must be a whole number from 1 to {MAX_SAMPLE:,}, "
                                  "got {got}", {"got": _show(value)})
    return value


MAX_SEED = 2 ** 64 - 1


def _seed(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
        raise PydanticCustomError("number", "must be a whole number from 0 to 2^64 - 1, "
                                  "got {got}", {"got": _show(value)})
    return value


class Sample(Strict):
    """Draw `paths` i.i.d. paths (regimes and events) with numpy's PCG64 seeded `seed`,
    instead of enumerating every path."""

    paths: Annotated[int, BeforeValidator(_sample_paths),
                     WithJsonSchema({"type": "integer", "minimum": 1, "maximum": MAX_SAMPLE})]
    seed: Annotated[int, BeforeValidator(_seed),
                    WithJsonSchema({"type": "integer", "minimum": 0, "maximum": MAX_SEED})] = 0


class ScenarioModel(Strict):
    """Scenarios generated from regimes and events, the alternative to a list: every
    regime path times every subset of the events (or a sample of them), the `always`
    rules in each (model.input.regimes)."""

    regimes: Regimes | None = None
    events: list[ScenarioEvent] = Field(default_factory=list)
    always: Rules = Field(default_factory=Rules)
    sample: Sample | None = None


def _scenarios_form(value: Any) -> str | None:
    """Which form `scenarios` takes: a list of scenarios, or a mapping (regimes, events)."""
    if isinstance(value, (list, tuple)):
        return "list"
    return "model" if isinstance(value, (dict, ScenarioModel)) else None


Scenarios = Annotated[
    Union[Annotated[list[Scenario], Tag("list")], Annotated[ScenarioModel, Tag("model")]],
    Discriminator(_scenarios_form, custom_error_type="scenarios_form",
                  custom_error_message="must be a list of scenarios, or a mapping with "
                                       "regimes, events, always and sample")]


class RuleFilter(Strict):
    """Filters shared by policy rules."""

    elements: list[str] | None = None
    periods: list[Label] | None = None
    per: Per = "element"
    # several buyers: the rule holds for these buyers only (absent: for every buyer)
    buyers: list[Id] | None = Field(default=None, min_length=1)


class CountryCapRule(RuleFilter):
    """At most `share` of demand from any one third country at each stage
    (only from the named `countries` when given). `share` may be a map period ->
    share: the rule is phased in, holding in the periods the map names."""

    share: PeriodShare
    countries: list[Country] | None = Field(default=None, min_length=1)
    stages: list[Stage] = Field(default_factory=lambda: ["mining", "refining"], min_length=1)
    applies_to: AppliesTo = "every_scenario"


class DomesticFloorRule(RuleFilter):
    """At least `share` of demand from home-country sources at one stage (a number,
    or a map period -> share)."""

    share: PeriodShare
    stage: Stage = "mining"
    applies_to: AppliesTo = "every_scenario"


class RecycledFloorRule(RuleFilter):
    """At least `share` of demand from recycled sources (a number, or a map period ->
    share)."""

    share: PeriodShare
    applies_to: AppliesTo = "every_scenario"


class StockDaysRule(RuleFilter):
    """End-of-period stock of at least days/period_days of demand at every node;
    released in emergencies and the `refill` periods after them; soft with a
    `deficit_cost` (currency per tonne below target per period)."""

    days: Number
    applies_to: Literal["every_scenario"] = "every_scenario"
    refill: Count = 1
    deficit_cost: Number | None = None


class BudgetRule(Strict):
    """Expected (discounted) cost at most `amount`."""

    amount: Number


class BuildRule(Strict):
    """Require a project: its sizes decided along every scenario path sum to at least
    `min_size` (in units of its full size)."""

    project: Id
    min_size: Number = 1.0


class Project(Strict):
    """An investment in new capacity of a source (or in using less: `reduces`),
    sized at the nodes of the information tree (DESIGN.md, "Investment")."""

    id: Id
    name: SourceName | None = None
    source: Id | None = None                       # adds capacity to this source
    capacity: dict[str, PeriodValue] = Field(default_factory=dict)   # t/period at full size
    reduces: dict[str, PeriodValue] = Field(default_factory=dict)    # avoided t/period
    cost: Number                                   # currency for the full size
    build_time: Count = 0                          # periods from decision to first output
    decide: Window | None = None                   # periods in which a build may be decided
    max_size: Positive = 1.0
    integer: StrictBool = False                    # all or nothing: size 0 or max_size
    fixed_cost: Number = 0.0                       # paid when built (integer projects)
    # periods of operation: the capital cost is charged as an annuity over the life
    # inside the horizon (absent: the whole cost in the period decided)
    life: Count | None = None
    notes: Note | None = None
    sources: Citations = Field(default_factory=list)


def _rules(model: type) -> Any:
    """A rule written alone or as a list of rules (JSON Schema says both)."""
    # the before-validator makes a lone rule a list, so the union's second member
    # only serves the JSON Schema (editors then accept both spellings)
    return Annotated[Union[list[model], model],  # type: ignore[valid-type]
                     Field(union_mode="left_to_right"), BeforeValidator(_as_list)]


RULE_KINDS = ("max_single_country_share", "min_domestic_share", "min_recycled_share",
              "exclude", "min_stock_days", "budget", "build")


class Policy(Strict):
    """A named combination of policy rules; every rule (:data:`RULE_KINDS`) may be a
    list of rules. `build_stock: false` lets stock be drawn but never raised."""

    max_single_country_share: _rules(CountryCapRule) = Field(default_factory=list)
    min_domestic_share: _rules(DomesticFloorRule) = Field(default_factory=list)
    min_recycled_share: _rules(RecycledFloorRule) = Field(default_factory=list)
    exclude: _rules(Selector) = Field(default_factory=list)
    min_stock_days: _rules(StockDaysRule) = Field(default_factory=list)
    budget: _rules(BudgetRule) = Field(default_factory=list)
    build: _rules(BuildRule) = Field(default_factory=list)
    # false: stock may be drawn, never raised (I[t] <= I[t-1]): what holding stock is worth
    build_stock: StrictBool = True
    notes: Note | None = None
    sources: Citations = Field(default_factory=list)


class Stock(Strict):
    """Element maps (with `default`) for initial stock, capacity and holding cost."""

    initial: ElementNumberMap = Field(default_factory=dict)
    capacity: ElementNumberMap = Field(default_factory=dict)
    holding_cost: ElementNumberMap = Field(default_factory=dict)
    # currency per tonne left in stock after the last period (credited, discounted
    # with the last period's factor)
    terminal_value: ElementNumberMap = Field(default_factory=dict)


def _radius(v: Any) -> float:
    return _number(v, hi=2.0)


Radius = Annotated[float, BeforeValidator(_radius),
                   WithJsonSchema({"type": "number", "minimum": 0, "maximum": 2})]


class Ambiguity(Strict):
    """Doubt on the scenario probabilities: the expectation becomes the worst one over
    every distribution within L1 (total-variation) distance `total_variation` of the
    given one (0: the nominal expectation; 2: the worst scenario)."""

    total_variation: Radius = 0.0


class Risk(Strict):
    """Objective (1 - lambda) E_q[C] + lambda CVaR_alpha(C), E_q the worst expectation
    within the ambiguity ball (the nominal one without `ambiguity`)."""

    lambda_: Share = Field(default=0.0, alias="lambda")
    alpha: Alpha = 0.95
    ambiguity: Ambiguity | None = None


class BuyerStock(Strict):
    """A buyer's stock (element maps with `default`): its opening stock, and capacity,
    holding cost and terminal value (absent: the instance's `stock` maps)."""

    initial: ElementNumberMap = Field(default_factory=dict)
    capacity: ElementNumberMap | None = None
    holding_cost: ElementNumberMap | None = None
    terminal_value: ElementNumberMap | None = None


class Buyer(Strict):
    """One of several buyers (DESIGN.md, "Several buyers"): its home countries, its own
    demand, stock and penalties; every source's capacity is shared by all buyers."""

    id: Id
    name: SourceName | None = None
    home: list[Country] = Field(min_length=1)
    demand: dict[str, PeriodValue]
    shortage_penalty: ElementNumberMap | None = None   # absent: the instance's
    stock: BuyerStock = Field(default_factory=BuyerStock)
    resale_price: ElementNumberMap | None = None       # absent: the instance's
    notes: Note | None = None
    sources: Citations = Field(default_factory=list)


class Coalition(Strict):
    """Terms among the members of a coalition: moving a tonne of stock from one member
    to another costs `transfer_cost` (element map with `default`; currency/t)."""

    transfer_cost: ElementNumberMap = Field(default_factory=dict)


class Instance(Strict):
    """A sourcing instance, schema 1."""

    schema_: Literal[1] = Field(alias="schema")
    name: Name
    description: str = ""
    currency: Currency = "USD"
    # required without `buyers` (model.input.instance.check_buyers); with buyers each
    # buyer has its own home countries and demand
    home: Country | None = None
    periods: list[Label] = Field(min_length=1)
    discount_rate: Rate = 0.0
    elements: list[Id] = Field(min_length=1)
    groups: dict[Id, list[str]] = Field(default_factory=dict)
    demand: dict[str, PeriodValue] | None = None
    shortage_penalty: ElementNumberMap | None = None
    stock: Stock = Field(default_factory=Stock)
    # currency per surplus tonne sold (take-or-pay deliveries beyond need)
    resale_price: ElementNumberMap = Field(default_factory=dict)
    # price paths per element that supplies may be priced on (premium x index)
    indices: dict[Id, dict[str, PeriodValue]] = Field(default_factory=dict)
    sources: list[Source] = Field(default_factory=list)
    projects: list[Project] = Field(default_factory=list)
    # a list of scenarios, or scenarios generated from regimes and events
    scenarios: Scenarios | None = None
    policies: dict[Id, Policy] = Field(default_factory=dict)
    risk: Risk = Field(default_factory=Risk)
    period_days: Positive = 365.0
    # what is known when: history (decisions see only the data so far) or
    # clairvoyant (each scenario's recourse sees its whole future)
    information: Literal["history", "clairvoyant"] = "history"
    # several buyers sharing the sources (absent: one buyer, `home` and `demand` above)
    buyers: list[Buyer] | None = Field(default=None, min_length=1)
    coalition: Coalition | None = None


def json_schema() -> dict[str, Any]:
    """The instance format as JSON Schema (draft 2020-12), from the validation model."""
    schema = Instance.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Rare-earth sourcing instance (schema 1)"
    # one buyer (`home`, `demand`, `shortage_penalty`) or several (`buyers`)
    schema["anyOf"] = [{"required": ["home", "demand", "shortage_penalty"]},
                       {"required": ["buyers"]}]
    return schema
