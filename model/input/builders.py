"""Building instances in code: a builder, scenario generators, a synthetic generator.

* :class:`InstanceBuilder` assembles an instance step by step and validates it;
  :func:`instance_to_yaml` writes any instance so that it loads back equal.
* :func:`combine_events` makes every combination of independent disruption
  events (2^k scenarios, probabilities multiplied); :func:`sample_scenarios`
  draws N Monte Carlo scenarios (probability 1/N each) with a seed.
* :func:`synthetic_instance` makes a random but plausible instance of any size
  (sources x elements x periods x scenarios) for tests and benchmarks.

Data generation uses plain dicts and a local ``numpy`` generator; no Pyomo.
"""

from __future__ import annotations

import copy
import itertools
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..errors import InstanceError, UsageError
from .instance import MAX_FILE_BYTES, LoadedInstance, instance_from_dict
from ..safety import ID_RULE, MAX_SAMPLE, check_count, check_synthetic_size, is_id
from .regimes import is_generated, scenario_list
from .schema import Instance, Scenario

RULE_KEYS = ("disruptions", "price_shocks", "demand_shocks")


# --------------------------------------------------------------------------- writing
def instance_to_dict(inst: Instance) -> dict[str, Any]:
    """Plain data of an instance (aliases such as `schema`, `from`, `lambda`)."""
    return inst.model_dump(by_alias=True, exclude_none=True, mode="python")


class _Dumper(yaml.SafeDumper):
    pass


def _float_repr(dumper: yaml.SafeDumper, value: float) -> yaml.Node:
    # repr() keeps every digit; YAML 1.2 readers (ours included) parse 1e+06 as a float
    if math.isinf(value):
        text = ".inf" if value > 0 else "-.inf"
    elif math.isnan(value):
        text = ".nan"
    elif value == int(value) and abs(value) < 1e15:
        text = str(int(value)) + ".0"
    else:
        text = repr(value)
    return dumper.represent_scalar("tag:yaml.org,2002:float", text)


_Dumper.add_representer(float, _float_repr)


def check_instance_text(text: str) -> str:
    """Refuse to write an instance file that the loader would refuse as too large."""
    size = len(text.encode())
    if size > MAX_FILE_BYTES:
        raise UsageError(f"the instance would be {size / 2**20:.1f} MiB; instance files are "
                         f"limited to {MAX_FILE_BYTES // 2**20} MiB (fewer scenarios?)")
    return text


def instance_to_yaml(inst: Instance | dict[str, Any], header: str = "") -> str:
    """YAML text of an instance; loading it back gives an equal instance."""
    data = instance_to_dict(inst) if isinstance(inst, Instance) else inst
    text = yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    lines = "".join(f"# {line}\n" for line in header.splitlines())
    return lines + text


def write_text_atomic(path: Path, text: str | bytes, force: bool = False) -> Path:
    """Write a file (text, or bytes such as a workbook) whole or not at all; an
    existing file needs `force`, and only a regular file is replaced (never a
    folder or a link)."""
    from .folders import check_file_target

    path = Path(path)
    check_file_target(path, force)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb" if isinstance(text, bytes) else "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def without_signed_terms(inst: Instance | dict[str, Any], source_id: str,
                         suffix: str = "unsigned") -> dict[str, Any]:
    """The instance with one source's signed terms removed (committed volumes, price
    floor and cap, minimum take): the same supplier as an option, not a contract.
    For "what does the signed contract cost against an unconstrained plan?"."""
    data = instance_to_dict(inst) if isinstance(inst, Instance) else copy.deepcopy(inst)
    matches = [s for s in data["sources"] if s["id"] == source_id]
    if not matches:
        raise UsageError(f"no source '{source_id}' in instance '{data['name']}'")
    src = matches[0]
    src.pop("min_take", None)
    for sup in src["supply"].values():
        for key in ("committed", "price_floor", "price_cap"):
            sup.pop(key, None)
    data["name"] = f"{data['name']}-{source_id}-{suffix}"
    return data


def instance_to_dict_scenario(scenario: Scenario) -> dict[str, Any]:
    """Plain data of one scenario, as it would be written in a list."""
    return scenario.model_dump(by_alias=True, exclude_none=True, mode="python")


def expanded(inst: Instance) -> LoadedInstance:
    """The instance with the scenarios that its regimes and events generate written as
    a plain list (same name, same everything else): it has the same scenario data,
    probabilities and information tree, so the same optimum
    (``sourcing build scenarios --expand``)."""
    if not is_generated(inst):
        raise UsageError(f"instance '{inst.name}' lists its scenarios already; --expand "
                         "writes the scenarios generated from `scenarios: {regimes: ..., "
                         "events: [...]}` as a list")
    data = instance_to_dict(inst)
    data["scenarios"] = [instance_to_dict_scenario(w) for w in scenario_list(inst)]
    return instance_from_dict(data, name=f"<{inst.name} expanded>")


# --------------------------------------------------------------------------- builder
class InstanceBuilder:
    """Assemble an instance in code, then :meth:`build` it (validated).

    Example::

        b = InstanceBuilder("demo", home="JP", periods=[2026, 2027], elements=["Nd", "Dy"])
        b.demand("Nd", 3000).demand("Dy", {2026: 400, 2027: 420})
        b.shortage_penalty(default=5e6, Dy=2e7)
        b.source("china-spot", "CN", "CN", mode="spot").supply("Nd", 5000, 120000)
        b.scenario("normal", 0.7).scenario("ban", 0.3, disruptions=[
            {"match": {"mined_in": "CN"}, "elements": ["Dy"], "availability": 0.0}])
        b.policy("crma", max_single_country_share={"share": 0.65})
        loaded = b.build()
    """

    def __init__(self, name: str, home: str, periods: list[Any], elements: list[str],
                 currency: str = "USD", description: str = "", **top: Any) -> None:
        self._data: dict[str, Any] = {
            "schema": 1, "name": name, "description": description, "currency": currency,
            "home": home, "periods": list(periods), "elements": list(elements),
            "demand": {}, "shortage_penalty": {}, "sources": [], **top}
        self._source: dict[str, Any] | None = None

    def demand(self, element: str, tonnes: float | dict[Any, float]) -> "InstanceBuilder":
        self._data["demand"][element] = tonnes
        return self

    def shortage_penalty(self, **per_element: float) -> "InstanceBuilder":
        self._data["shortage_penalty"].update(per_element)
        return self

    def group(self, name: str, elements: list[str]) -> "InstanceBuilder":
        self._data.setdefault("groups", {})[name] = list(elements)
        return self

    def stock(self, **maps: dict[str, float]) -> "InstanceBuilder":
        self._data.setdefault("stock", {}).update(maps)
        return self

    def source(self, id: str, mined_in: str, refined_in: str, mode: str = "contract",
               **fields: Any) -> "InstanceBuilder":
        self._source = {"id": id, "mined_in": mined_in, "refined_in": refined_in,
                        "mode": mode, **fields, "supply": {}}
        self._data["sources"].append(self._source)
        return self

    def supply(self, element: str, capacity: float | dict[Any, float],
               price: float | dict[Any, float]) -> "InstanceBuilder":
        if self._source is None:
            raise UsageError("supply() needs a source() first")
        self._source["supply"][element] = {"capacity": capacity, "price": price}
        return self

    def scenario(self, id: str, probability: float, **rules: Any) -> "InstanceBuilder":
        self._data.setdefault("scenarios", []).append(
            {"id": id, "probability": probability, **rules})
        return self

    def policy(self, name: str, **rules: Any) -> "InstanceBuilder":
        self._data.setdefault("policies", {})[name] = rules
        return self

    def risk(self, lambda_: float, alpha: float = 0.95) -> "InstanceBuilder":
        self._data["risk"] = {"lambda": lambda_, "alpha": alpha}
        return self

    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy(self._data)

    def build(self) -> LoadedInstance:
        """Validate and return the instance (raises InstanceError on a problem)."""
        return instance_from_dict(self.to_dict(), name=f"<builder {self._data['name']}>")


# --------------------------------------------------------------------------- scenarios
@dataclass
class Event:
    """An independent disruption event that occurs with `probability`."""

    id: str
    probability: float
    disruptions: list[dict[str, Any]] = field(default_factory=list)
    price_shocks: list[dict[str, Any]] = field(default_factory=list)
    demand_shocks: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any], place: str = "events") -> "Event":
        unknown = set(data) - {"id", "probability", *RULE_KEYS, "description"}
        if unknown:
            raise InstanceError(f"unknown key '{sorted(unknown)[0]}'", place)
        if "id" not in data or "probability" not in data:
            raise InstanceError("an event needs an id and a probability", place)
        p = data["probability"]
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
            raise InstanceError(f"probability must lie in [0, 1], got {p!r}",
                                f"{place}.probability")
        ident = data["id"]
        if isinstance(ident, int) and not isinstance(ident, bool):
            ident = str(ident)
        if not isinstance(ident, str) or not is_id(ident):   # it becomes a scenario id
            raise InstanceError(f"must be an id ({ID_RULE}), got {data['id']!r}",
                                f"{place}.id")
        rules = []
        for k in RULE_KEYS:
            value = data.get(k) or []
            if not isinstance(value, list):
                raise InstanceError("must be a list of rules", f"{place}.{k}")
            rules.append(list(value))
        return cls(ident, float(p), *rules)


def read_events(path: str | Path, base: Instance | None = None) -> list[Event]:
    """Events from a YAML file: ``events: [{id, probability, disruptions, ...}]``.

    With `base`, each event's rules are also checked against that instance
    (elements, periods, source ids), so a bad rule is reported in the events
    file, at its place and line, not in the generated instance.
    """
    from .instance import _line_of, _parse_place, _read_yaml

    path = Path(path)
    data, root, _ = _read_yaml(path)
    if not isinstance(data, dict) or not isinstance(data.get("events"), list) \
            or not data["events"]:
        raise InstanceError("expected a mapping with a non-empty list `events`",
                            file=str(path), line=1)
    try:
        events = [Event.from_dict(e if isinstance(e, dict) else {}, f"events[{i}]")
                  for i, e in enumerate(data["events"])]
        ids = [e.id for e in events]
        for i, e in enumerate(ids):
            if e in ids[:i]:
                raise InstanceError(f"duplicate event id '{e}'", f"events[{i}].id")
        if base is not None:
            for i, ev in enumerate(events):
                probe = instance_to_dict(base)
                probe["scenarios"] = [_scenario_of([ev], (True,), ev.id, 1.0)]
                try:
                    instance_from_dict(probe)
                except InstanceError as err:
                    err.place = err.place.replace("scenarios[0]", f"events[{i}]", 1)
                    raise
    except InstanceError as err:
        err.file = str(path)
        err.line = _line_of(root, tuple(_parse_place(err.place))) if err.place else None
        raise
    return events


def _with_scenarios(base: Instance | dict[str, Any], scenarios: list[dict[str, Any]],
                    suffix: str) -> LoadedInstance:
    data = instance_to_dict(base) if isinstance(base, Instance) else copy.deepcopy(base)
    data["scenarios"] = scenarios
    data["name"] = f"{data['name']}-{suffix}"
    return instance_from_dict(data, name=f"<{data['name']}>")


def base_rules(base: Instance | dict[str, Any], scenario: str | None
               ) -> dict[str, list[dict[str, Any]]]:
    """The rules of one of the base instance's scenarios (its baseline, such as the
    normal Chinese licensing regime), to apply in every generated scenario. For
    scenarios from regimes and events, one of the scenarios they generate."""
    if scenario is None:
        return {}
    if isinstance(base, dict) and isinstance(base.get("scenarios"), dict):   # regimes, events
        base = instance_from_dict(base, name=f"<{base.get('name')}>").instance
    listed = [instance_to_dict_scenario(w) for w in scenario_list(base)] \
        if isinstance(base, Instance) else list(base.get("scenarios") or [])
    for w in listed:
        if w["id"] == scenario:
            return {key: copy.deepcopy(w.get(key, [])) for key in RULE_KEYS}
    ids = [w["id"] for w in listed][:12]
    raise UsageError(f"--base-scenario: no scenario '{scenario}' in the base instance"
                     + (f" (scenarios: {', '.join(ids)})" if ids else " (it has none)"))


def _scenario_of(events: list[Event], active: tuple[bool, ...], sid: str,
                 probability: float, base: dict[str, list[dict[str, Any]]] | None = None
                 ) -> dict[str, Any]:
    scen: dict[str, Any] = {"id": sid, "probability": probability}
    for key in RULE_KEYS:
        rules = [copy.deepcopy(r) for r in (base or {}).get(key, [])] + \
            [copy.deepcopy(r) for e, on in zip(events, active) if on for r in getattr(e, key)]
        if rules:
            scen[key] = rules
    return scen


def combine_events(base: Instance | dict[str, Any], events: list[Event],
                   baseline: dict[str, list[dict[str, Any]]] | None = None) -> LoadedInstance:
    """All 2^k combinations of k independent events, probabilities multiplied.

    The scenario with no event is ``normal``; others are named by their events
    joined with ``+``. Rules of simultaneous events multiply, as in any scenario;
    the `baseline` rules (:func:`base_rules`) hold in every scenario.
    """
    if not events:
        raise UsageError("combine_events needs at least one event")
    if len(events) > 16:
        raise UsageError(f"{len(events)} events make 2^{len(events)} scenarios; "
                         "use sample_scenarios for more than 16")
    joined = "+".join(e.id for e in events)
    if not is_id(joined):   # the longest scenario id names every event
        raise UsageError(f"the scenario id of all {len(events)} events, '{joined[:60]}...', "
                         f"would be longer than the id limit ({ID_RULE}); use shorter event ids")
    scenarios, probs = [], []
    for active in itertools.product((False, True), repeat=len(events)):
        p = math.prod(e.probability if on else 1.0 - e.probability
                      for e, on in zip(events, active))
        sid = "+".join(e.id for e, on in zip(events, active) if on) or "normal"
        scenarios.append(_scenario_of(events, active, sid, p, baseline))
        probs.append(p)
    # exact sum to 1 despite rounding: put the residual on the largest scenario
    total = math.fsum(probs)
    scenarios[int(np.argmax(probs))]["probability"] += 1.0 - total
    return _with_scenarios(base, scenarios, f"events{len(events)}")


def sample_scenarios(base: Instance | dict[str, Any], events: list[Event], n: int,
                     seed: int = 0, baseline: dict[str, list[dict[str, Any]]] | None = None
                     ) -> LoadedInstance:
    """N Monte Carlo scenarios (probability 1/N): each event occurs independently;
    the `baseline` rules hold in every scenario."""
    check_count("the number of scenarios (--sample)", n, MAX_SAMPLE)
    rng = np.random.default_rng(seed)
    draws = rng.random((n, len(events))) < np.array([e.probability for e in events])
    width = len(str(n))
    scenarios = [_scenario_of(events, tuple(row), f"mc{i + 1:0{width}d}", 1.0 / n, baseline)
                 for i, row in enumerate(draws.tolist())]
    return _with_scenarios(base, scenarios, f"mc{n}-seed{seed}")


# --------------------------------------------------------------------------- synthetic
RARE_EARTHS = ["Nd", "Pr", "Dy", "Tb", "La", "Ce", "Sm", "Eu", "Gd", "Y", "Ho", "Er",
               "Tm", "Yb", "Lu", "Sc", "Pm"]
COUNTRIES = ["CN", "AU", "MY", "US", "FR", "VN", "BR", "IN", "CA", "ZA", "GL", "TZ", "EE"]


def _regime_scenarios(n_regimes: int, elements: list[str], paths: int, seed: int
                      ) -> dict[str, Any]:
    """The regime chain of :func:`synthetic_instance` (drawn from a generator of its
    own, so that the sources stay those of the seed)."""
    rng = np.random.default_rng([seed, 1])
    states: dict[str, Any] = {"normal": {"description": "no disruption"}}
    for r in range(1, n_regimes):
        country = "CN" if rng.random() < 0.6 else COUNTRIES[int(rng.integers(1, len(COUNTRIES)))]
        hit = [str(e) for e in rng.choice(elements, size=max(1, len(elements) // 4),
                                          replace=False)]
        states[f"r{r}"] = {
            "description": f"{country} supply of {', '.join(hit)} cut",
            "disruptions": [{"match": {"mined_in": country}, "elements": hit,
                             "availability": float(np.round(rng.uniform(0, 0.6), 2))}],
            "price_shocks": [{"match": {"mode": "spot"}, "elements": hit,
                              "multiplier": float(np.round(rng.uniform(1.0, 3.0), 2))}]}
    names = list(states)
    transition = {}
    for a in names:
        stay = float(np.round(rng.uniform(0.6, 0.8), 3))
        rest = rng.dirichlet(np.ones(len(names) - 1)) * (1.0 - stay) if len(names) > 1 \
            else np.zeros(0)
        row = {b: float(np.round(v, 6)) for b, v in zip([n for n in names if n != a], rest)}
        row[a] = float(np.round(1.0 - sum(row.values()), 6))
        transition[a] = row
    return {"regimes": {"start": "normal", "states": states, "transition": transition},
            "sample": {"paths": int(paths), "seed": int(seed)}}


def _projects(n: int, sources: list[dict[str, Any]], demand: dict[str, float],
              base_price: dict[str, float], periods: list[int], seed: int, integer: bool
              ) -> list[dict[str, Any]]:
    """The projects of :func:`synthetic_instance` (a generator of their own)."""
    rng = np.random.default_rng([seed, 2])
    hosts = [s for s in sources if s["mined_in"] != "CN" and len(s["supply"]) >= 2]
    if not hosts:
        return []
    decide = periods[1:3] if len(periods) > 2 else periods[:1]
    out = []
    for j in range(n):
        host = hosts[int(rng.integers(0, len(hosts)))]
        offered = list(host["supply"])
        k = int(rng.integers(2, min(4, len(offered)) + 1))
        elems = [str(e) for e in rng.choice(offered, size=k, replace=False)]
        added = {e: float(np.round(0.2 * demand[e], 1)) for e in elems}
        value = sum(added[e] * base_price[e] for e in elems)
        project: dict[str, Any] = {
            "id": f"p{j:03d}", "source": host["id"], "capacity": added,
            "cost": float(np.round(value * rng.uniform(0.3, 1.0), -3)), "build_time": 1,
            "decide": {"from": decide[0], "until": decide[-1]}}
        if integer:
            project["integer"] = True
        out.append(project)
    return out


def synthetic_instance(n_sources: int = 20, n_elements: int = 17, n_periods: int = 10,
                       n_scenarios: int = 25, seed: int = 0,
                       name: str | None = None, information: str = "history",
                       regimes: int = 0, projects: int = 0, integer: bool = False
                       ) -> dict[str, Any]:
    """A random, plausible instance of the given size (as a plain dict).

    About a third of the sources are Chinese (cheap, large); the rest are
    spread over other countries, a few recycled and domestic (JP). Each
    scenario but the first draws a disruption of one country's supply for a
    quarter of the elements in a few periods from the second period on, with a
    spot price shock and, from its start, a demand shock on those elements (as
    in real instances a disruption hits a few elements, so most scenarios look
    alike for any one element, and scenarios share their early periods, so the
    information tree branches over time). Policies: a 65 % cap per
    element, the same per group, and a 50 % plan cap.

    With `regimes` R > 0 the scenarios come from a Markov chain instead
    (docs/instance-format.md, "Scenarios from regimes and events"): a normal
    regime and R - 1 disrupted ones, each cutting one country's supply of a
    quarter of the elements with a spot price shock, held year by year; the
    chain stays in its regime with probability 0.6 to 0.8. `n_scenarios` paths are
    sampled (seed `seed`); identical draws merge, so there may be fewer scenarios.
    The sources are those of the same seed without regimes.

    With `projects` N > 0, N investment projects each add a fifth of the demand of
    two to four elements to a non-Chinese source offering them, decided in the
    second or third period (at the tree's nodes), built in one period, at 0.3 to 1
    year of the added supply's value; `integer` makes them all-or-nothing.
    """
    check_synthetic_size(n_sources, n_elements, n_periods, n_scenarios)
    rng = np.random.default_rng(seed)
    elements = (RARE_EARTHS + [f"X{i}" for i in range(max(0, n_elements - 17))])[:n_elements]
    periods = list(range(2026, 2026 + n_periods))
    heavy = set(elements[2::3])
    base_price = {e: float(rng.uniform(2e5, 1.2e6) if e in heavy else rng.uniform(3e4, 1.5e5))
                  for e in elements}
    demand = {e: float(np.round(rng.uniform(50, 400) if e in heavy else rng.uniform(500, 4000)))
              for e in elements}
    sources = []
    for s in range(n_sources):
        china = s % 3 == 0
        domestic = not china and s % 7 == 6
        country = "CN" if china else ("JP" if domestic else COUNTRIES[1 + s % (len(COUNTRIES) - 1)])
        refined = country if china or rng.random() < 0.6 else COUNTRIES[int(rng.integers(0, len(COUNTRIES)))]
        mode = "spot" if china and s % 2 == 0 or domestic else "contract"
        offered = rng.choice(elements, size=max(1, int(rng.integers(1, n_elements + 1))),
                             replace=False)
        supply = {}
        for e in elements:
            if e not in offered:
                continue
            scale = rng.uniform(0.3, 1.2) if china else rng.uniform(0.05, 0.4)
            supply[e] = {"capacity": float(np.round(demand[e] * scale, 1)),
                         "price": float(np.round(base_price[e] * (rng.uniform(0.85, 1.0) if china
                                                                 else rng.uniform(1.0, 1.6)), -1))}
        src: dict[str, Any] = {"id": f"s{s:03d}", "mined_in": country, "refined_in": refined,
                               "mode": mode, "recycled": bool(domestic), "supply": supply}
        if mode == "contract":
            src["reservation_fee"] = float(np.round(rng.uniform(0.0, 0.15), 3))
        start = int(rng.integers(0, max(1, n_periods // 3)))
        if start:
            src["available"] = {"from": periods[start]}
        sources.append(src)
    scenarios = []
    for w in range(n_scenarios):
        hit_country = "CN" if rng.random() < 0.6 else COUNTRIES[int(rng.integers(1, len(COUNTRIES)))]
        hit_elems = [str(e) for e in rng.choice(elements, size=max(1, n_elements // 4),
                                                replace=False)]
        # disruptions start after the first period (scenarios share their early
        # periods, as real ones do: the information tree branches over time)
        t0 = int(rng.integers(1, n_periods)) if n_periods > 1 else 0
        span = periods[t0:t0 + int(rng.integers(1, 4))]
        scen: dict[str, Any] = {"id": f"w{w:04d}", "probability": 1.0 / n_scenarios}
        if w > 0:  # the first scenario is undisturbed
            scen["disruptions"] = [{"match": {"mined_in": hit_country}, "elements": hit_elems,
                                    "periods": span,
                                    "availability": float(np.round(rng.uniform(0, 0.6), 2))}]
            scen["price_shocks"] = [{"match": {"mode": "spot"}, "elements": hit_elems,
                                     "periods": span,
                                     "multiplier": float(np.round(rng.uniform(1.0, 3.0), 2))}]
            # the demand response (stock-building, substitution) of the hit elements
            scen["demand_shocks"] = [{"elements": hit_elems, "periods": periods[t0:],
                                      "multiplier": float(np.round(rng.uniform(0.9, 1.15), 3))}]
        scenarios.append(scen)
    if regimes > 0:
        scenarios = _regime_scenarios(regimes, elements, n_scenarios, seed)
    extra: dict[str, Any] = {}
    if projects > 0:
        extra["projects"] = _projects(projects, sources, demand, base_price, periods, seed,
                                      integer)
    growth = {e: {p: float(np.round(demand[e] * 1.03 ** i, 1)) for i, p in enumerate(periods)}
              for e in elements}
    return {
        "schema": 1,
        "name": name or f"synthetic-s{n_sources}-e{n_elements}-t{n_periods}-w{n_scenarios}-seed{seed}",
        "description": "Synthetic instance for tests and benchmarks (random, not data).",
        "currency": "USD", "home": "JP", "periods": periods, "discount_rate": 0.03,
        "information": information,
        "elements": elements,
        "groups": {"light": [e for e in elements if e not in heavy],
                   "heavy": sorted(heavy, key=elements.index)} if heavy else {},
        "demand": growth,
        "shortage_penalty": {"default": 2.0e6, **{e: 1.0e7 for e in heavy}},
        "stock": {"initial": {"default": 0.0}, "capacity": {"default": 5000.0},
                  "holding_cost": {"default": 2000.0}},
        "sources": sources,
        "scenarios": scenarios,
        "policies": {
            "crma65": {"max_single_country_share": {"share": 0.65}},
            "crma65-group": {"max_single_country_share": {"share": 0.65, "per": "group"}},
            "plan50": {"max_single_country_share": {"share": 0.5, "applies_to": "plan"}},
        },
        **extra,
    }
