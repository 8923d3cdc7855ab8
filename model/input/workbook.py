"""Instances as Excel workbooks: any instance written to one, and read back exactly.

`sourcing export-instance` writes a validated instance to a workbook an
analyst can edit; `sourcing build from-xlsx` reads one back into a YAML
instance. Reading a workbook that :func:`instance_workbook` wrote gives an
instance equal to the original (:func:`model.input.builders.instance_to_dict` of
both): numbers are stored with every digit (see :class:`_ExactSheet`), period
labels keep their type (2026 a number cell, ``Q1`` a text cell) and every
absent key stays absent. The export checks this before it writes anything.

The layout (docs/instance-format.md, "Workbook"), one row per thing, the first
row of every sheet its header (a unit in brackets is ignored on reading):

==================  ==========================================================
``about``           how to edit the workbook (ignored on reading)
``instance``        key | value: schema, name, description, currency, home,
                    discount_rate, period_days, information, risk.lambda,
                    risk.alpha; ``periods`` with one label per cell across
``elements``        element | shortage_penalty | resale_price | stock_initial
                    | stock_capacity | stock_holding_cost | stock_terminal_value;
                    a ``default`` row gives the value of elements without their own
``groups``          group | elements
``demand``          element | all_periods | one column per period
``indices``         index | element | unit | all_periods | periods...: a price
                    path per element; a row ``multiplier`` (all_periods) scales it
``sources``         id | name | mined_in | refined_in | mode | recycled |
                    reservation_fee | lead_time | min_take | available_from |
                    available_until | notes | sources
``supply``          source | element | item (capacity, price, committed,
                    price_floor, price_cap, index, premium) | unit | all_periods |
                    periods...
``projects``        id | name | source | cost | fixed_cost | max_size |
                    integer | build_time | decide_from | decide_until | life |
                    notes | sources
``project_effects`` project | item (capacity, reduces) | element |
                    all_periods | periods...
``scenarios``       id | probability | description | notes | sources
``scenario_rules``  scenario | kind (disruption, price_shock, demand_shock) |
                    match | elements | periods | availability | multiplier |
                    emergency
``policies``        policy | rule | one column per rule setting; build_stock,
                    notes and sources belong to the policy (one row of it)
==================  ==========================================================

Cells: a blank cell is a key left out (its default applies). A number that
holds for every period goes in ``all_periods``; a value per period goes in
the period columns (blank: not given). Lists are written ``Dy, Tb`` (or
``[Dy, Tb]``); selectors and ``match`` are YAML flow text such as
``{mined_in: CN}``; a text that would read as a number is quoted
(``"2026"``). Anything awkward can be written as YAML flow text in
``all_periods`` (``{2026: 400, 2027: 420}``). A number typed as text with
thousands separators (``305,000``) is refused with "write 305000".

Bad workbooks raise :class:`~model.errors.InstanceError` naming the file, the
sheet and cell (``supply!E7``) and what is wrong, also for problems found
when the instance is validated: each value read remembers its cell.
"""

from __future__ import annotations

import difflib
import io
import json
import re
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from ..errors import InstanceError, UsageError
from ..safety import shown
from .schema import (
    BudgetRule,
    BuildRule,
    CountryCapRule,
    DemandShock,
    Disruption,
    DomesticFloorRule,
    Instance,
    PriceShock,
    Project,
    RecycledFloorRule,
    Risk,
    Scenario,
    Selector,
    Source,
    StockDaysRule,
)

# What an instance workbook may hold (docs/cli.md, Safety). The export of a large
# instance (the synthetic 100 sources x 17 elements x 10 periods, 13,000 cells)
# unpacks to about 1 MiB; these bounds leave room for 1,000,000 cells.
MAX_UNZIPPED_BYTES = 64 * 1024 ** 2       # a workbook's parts, once unpacked
MAX_PART_BYTES = 2 * 1024 ** 2            # each part but the sheets and shared strings
MAX_PARTS = 10_000
MAX_WORKBOOK_CELLS = 1_000_000            # of the sheets read, rows up to their last cell

ALL = "all_periods"
SUPPLY_ITEMS = ("capacity", "price", "committed", "price_floor", "price_cap", "index",
                "premium")
# one value for every period (an index is named, a premium multiplies its path)
SCALAR_ITEMS = frozenset({"price_floor", "price_cap", "index", "premium"})
INDEX_MULTIPLIER = "multiplier"            # the reserved row of an index on its sheet
EFFECT_ITEMS = ("capacity", "reduces")
RULE_KINDS = {"disruption": "disruptions", "price_shock": "price_shocks",
              "demand_shock": "demand_shocks"}


def _model_keys(model: Any) -> list[str]:
    return [f.alias or n for n, f in model.model_fields.items()]


def _with_new_fields(columns: tuple[str, ...], model: Any, elsewhere: tuple[str, ...]
                     ) -> tuple[str, ...]:
    """`columns`, then any field of `model` added to the schema since (as YAML cells),
    so that an export never drops a setting; `elsewhere`: fields with sheets of their own."""
    return columns + tuple(k for k in _model_keys(model)
                           if k not in columns and k not in elsewhere)


_STRUCTURED = ("elements", "groups", "demand", "shortage_penalty", "stock", "resale_price",
               "indices", "sources", "projects", "scenarios", "policies", "risk")
INSTANCE_KEYS = _with_new_fields(
    ("schema", "name", "description", "currency", "home", "discount_rate", "period_days",
     "information"), Instance, _STRUCTURED + ("periods",)) + \
    tuple(f"risk.{k}" for k in _model_keys(Risk)) + ("periods",)
ELEMENT_MAPS = (("shortage_penalty", ("shortage_penalty",), "{cur}/t"),
                ("resale_price", ("resale_price",), "{cur}/t"),
                ("stock_initial", ("stock", "initial"), "t"),
                ("stock_capacity", ("stock", "capacity"), "t"),
                ("stock_holding_cost", ("stock", "holding_cost"), "{cur}/t per period"),
                ("stock_terminal_value", ("stock", "terminal_value"), "{cur}/t"))
SOURCE_COLUMNS = _with_new_fields(
    ("id", "name", "mined_in", "refined_in", "mode", "recycled", "reservation_fee",
     "lead_time", "min_take", "available_from", "available_until"), Source,
    ("supply", "available"))
PROJECT_COLUMNS = _with_new_fields(
    ("id", "name", "source", "cost", "fixed_cost", "max_size", "integer", "build_time",
     "decide_from", "decide_until"), Project, ("capacity", "reduces", "decide"))
SCENARIO_COLUMNS = _with_new_fields(("id", "probability", "description"), Scenario,
                                    tuple(RULE_KINDS.values()))
SCENARIO_RULE_COLUMNS = ("scenario", "kind") + _with_new_fields(
    _with_new_fields(_with_new_fields(("match", "elements", "periods", "availability",
                                       "multiplier", "emergency"), Disruption, ()),
                     PriceShock, ()), DemandShock, ())
WINDOWS = {"available_from": ("available", "from"), "available_until": ("available", "until"),
           "decide_from": ("decide", "from"), "decide_until": ("decide", "until")}
# rule settings of policies: every field of every rule model, in a reading order
RULE_MODELS = {"max_single_country_share": CountryCapRule,
               "min_domestic_share": DomesticFloorRule,
               "min_recycled_share": RecycledFloorRule, "exclude": Selector,
               "min_stock_days": StockDaysRule, "budget": BudgetRule, "build": BuildRule}
# settings of a policy itself (not of a rule): on one of its rows
POLICY_SETTINGS = ("build_stock", "notes", "sources")
_POLICY_ORDER = ("share", "countries", "stages", "stage", "per", "elements", "periods",
                 "applies_to", "days", "refill", "deficit_cost", "amount", "project",
                 "min_size", "id", "mined_in", "refined_in", "mode", "recycled")


def _policy_columns() -> tuple[str, ...]:
    """policy, rule, then every rule model's settings (ones added to the schema later
    come last, as YAML cells, so that no setting can be lost)."""
    keys: list[str] = list(_POLICY_ORDER)
    for model in RULE_MODELS.values():
        keys += [k for k in _model_keys(model) if k not in keys]
    return ("policy", "rule", *keys, *(k for k in POLICY_SETTINGS if k not in keys))


POLICY_COLUMNS = _policy_columns()

# how each column's cells are read and written (default: "flow", YAML text)
KINDS: dict[str, str] = {
    "id": "id", "element": "id", "group": "id", "source": "id", "project": "id",
    "scenario": "id", "policy": "id", "rule": "id", "kind": "id", "item": "id",
    "name": "text", "description": "text", "currency": "text", "unit": "ignored",
    "home": "id", "mined_in": "id", "refined_in": "id", "mode": "id", "information": "id",
    "per": "id", "stage": "id", "applies_to": "id",
    "recycled": "bool", "integer": "bool", "emergency": "bool", "build_stock": "bool",
    "lead_time": "count", "build_time": "count", "refill": "count", "schema": "count",
    "life": "count", "notes": "text", "sources": "lines",
    "available_from": "label", "available_until": "label", "decide_from": "label",
    "decide_until": "label",
    "elements": "list", "periods": "list", "countries": "list", "stages": "list",
    "match": "flow",
}
# (`share` is a number or a map period -> share: YAML text, as "flow" reads it)
NUMBER_COLUMNS = frozenset({
    "shortage_penalty", "resale_price", "stock_initial", "stock_capacity",
    "stock_holding_cost", "stock_terminal_value", "reservation_fee", "min_take", "cost",
    "fixed_cost", "max_size", "probability", "availability", "multiplier", "days",
    "deficit_cost", "amount", "min_size", "discount_rate", "period_days", "risk.lambda",
    "risk.alpha"})
# in a policy row these may be one id or a list of them: YAML flow text
SELECTOR_KEYS = frozenset(_model_keys(Selector)) - {"recycled"}


def _kind(column: str, sheet: str = "") -> str:
    if sheet == "policies" and column in SELECTOR_KEYS:
        return "flow"
    if column in NUMBER_COLUMNS:
        return "number"
    return KINDS.get(column, "flow")


# --------------------------------------------------------------------------- text cells
# xlsxwriter stores a control character as _xHHHH_ (as Excel does) and openpyxl
# does not decode it: these are decoded on reading. A text that itself holds
# such a sequence could not be told apart, so the export refuses it.
_ESCAPED = re.compile(r"_x([0-9A-Fa-f]{4})_")
_CONTROL = frozenset(list(range(0x00, 0x09)) + list(range(0x0B, 0x20)))


# a number written with thousands separators: 305,000 or 1,234.5 (also with a narrow
# no-break space or a space as the separator: 305 000)
_THOUSANDS = re.compile(r"^\s*[+-]?\d{1,3}(?:(?:,\d{3})+|(?:[ \u202f]\d{3})+)(?:\.\d+)?\s*$")


def _unescape_text(text: str) -> str:
    return _ESCAPED.sub(lambda m: chr(int(m.group(1), 16)) if int(m.group(1), 16) in _CONTROL
                        else m.group(0), text)


def _check_texts(value: Any, place: str = "") -> None:
    """Refuse a text that a workbook cannot hold exactly (see _ESCAPED)."""
    if isinstance(value, str):
        hit = _ESCAPED.search(value)
        if hit:
            raise UsageError(f"{place or 'a text'} holds '{hit.group(0)}', which a spreadsheet "
                             "reads as an escaped character: a workbook cannot hold it exactly")
        bad = next((c for c in value if c in "\ufffe\uffff" or "\ud800" <= c <= "\udfff"), None)
        if bad is not None:     # not allowed in XML at all
            raise UsageError(f"{place or 'a text'} holds the character U+{ord(bad):04X}, which "
                             "a workbook (XML) cannot hold")
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_texts(k, place)
            _check_texts(v, f"{place}.{k}" if place else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_texts(v, f"{place}[{i}]")


def _plain(text: str) -> bool:
    """Whether `text` reads back from a YAML cell as this same text."""
    from .instance import yaml_load

    if not text or text != text.strip() or any(c in text for c in ",[]{}:#&*!|>'\"%@`\n"):
        return False
    try:
        return yaml_load(text) == text
    except Exception:   # noqa: BLE001 - anything YAML refuses is quoted
        return False


def flow_text(value: Any) -> str:
    """`value` as YAML flow text that :func:`model.input.instance.yaml_load` reads back equal."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)           # shortest exact form; YAML 1.2 reads 1e-05 as a float
    if isinstance(value, str):
        return value if _plain(value) else json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(flow_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{flow_text(k)}: {flow_text(v)}"
                               for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} as YAML")


# --------------------------------------------------------------------------- writing
def _exact_sheet_class() -> Any:
    import xlsxwriter.worksheet

    class _ExactSheet(xlsxwriter.worksheet.Worksheet):  # type: ignore[misc]
        """A worksheet that stores numbers with every digit.

        xlsxwriter (and openpyxl) write 16 significant digits, which loses the
        last digit of some doubles (0.1 + 0.2); repr() is the shortest text that
        reads back to the same double, and an int stays an int (a period label).
        The export reads the workbook back and compares, so a change in this
        private hook cannot go unnoticed.
        """

        def _xml_number_element(self, number: Any, attributes: Any = ()) -> None:
            attr = "".join(f' {k}="{self._escape_attributes(v)}"' for k, v in attributes)
            text = str(number) if isinstance(number, int) else repr(float(number))
            self.fh.write(f"<c{attr}><v>{text}</v></c>")

    return _ExactSheet


@dataclass
class _Table:
    """One sheet to write: a header and rows of plain values."""

    name: str
    header: list[Any]                # names, and period labels (numbers or text)
    rows: list[list[Any]] = field(default_factory=list)


def instance_workbook(inst: Instance) -> bytes:
    """The workbook of an instance, as the bytes of an .xlsx file."""
    import xlsxwriter

    from .builders import instance_to_dict
    from .regimes import refuse_generated

    refuse_generated(inst, "the instance workbook")   # its sheets hold a list of scenarios
    if inst.buyers is not None:      # its sheets hold one buyer's demand and home
        from ..errors import UsageError

        raise UsageError("the instance workbook holds an instance with one buyer; an "
                         "instance with several buyers is edited as YAML")
    data = instance_to_dict(inst)
    _check_texts(data)
    tables = _tables(data)
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_numbers": False,
                                        "strings_to_formulas": False,
                                        "strings_to_urls": False})
    sheet_class = _exact_sheet_class()
    header_fmt = book.add_format({"bold": True, "bg_color": "#DDE4EE", "bottom": 1})
    wrap = book.add_format({"text_wrap": True, "valign": "top"})
    about = book.add_worksheet("about", worksheet_class=sheet_class)
    about.set_column(0, 0, 110, wrap)
    for r, line in enumerate(_about_lines(data)):
        about.write_string(r, 0, line, header_fmt if r == 0 else None)
    for table in tables:
        sheet = book.add_worksheet(table.name, worksheet_class=sheet_class)
        for c, head in enumerate(table.header):
            width = max([len(_shown(head))] + [len(_shown(row[c])) for row in table.rows
                                               if c < len(row)])
            sheet.set_column(c, c, min(60, max(8, width + 2)))
            if isinstance(head, str):
                sheet.write_string(0, c, head, header_fmt)
            else:                     # a period label that is a number stays a number
                sheet.write_number(0, c, head, header_fmt)
        for r, row in enumerate(table.rows, 1):
            for c, value in enumerate(row):
                _write_value(sheet, r, c, value)
        sheet.freeze_panes(1, 1 if table.name not in ("instance",) else 0)
        if table.name != "instance" and table.header:
            sheet.autofilter(0, 0, max(1, len(table.rows)), len(table.header) - 1)
    book.close()
    return buffer.getvalue()


def _shown(value: Any) -> str:
    return "" if value is None else (repr(value) if isinstance(value, float) else str(value))


def _write_value(sheet: Any, r: int, c: int, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool):
        sheet.write_boolean(r, c, value)
    elif isinstance(value, (int, float)):
        sheet.write_number(r, c, value)
    else:
        sheet.write_string(r, c, str(value))


def _header(column: str, unit: str = "") -> str:
    return f"{column} ({unit})" if unit else column


def _cell_value(value: Any, kind: str) -> Any:
    """A value as the cell of a column of this kind holds it."""
    if value is None:
        return None
    if kind == "list":
        return ", ".join(flow_text(v) for v in value) if value else "[]"
    if kind == "lines":      # citations: one per line of the cell
        return "\n".join(value) if value else None
    if kind == "flow":
        if isinstance(value, (bool, int, float)):
            return value
        return flow_text(value)
    return value


def _period_cells(value: Any, periods: list[Any]) -> list[Any]:
    """[all_periods, one cell per period] of a number or a period map.

    A map goes into the period columns when each key is one of the period labels,
    of the same type (2026 and "2026" name the same period but are different
    keys); otherwise ({}, or keys written as text) it is YAML text in all_periods.
    """
    cells: list[Any] = [None] * len(periods)
    if not isinstance(value, dict):
        return [value] + cells
    column = {_same_key(p): i for i, p in enumerate(periods)}
    if not value or any(_same_key(k) not in column for k in value):
        return [flow_text(value)] + cells
    for k, v in value.items():
        cells[column[_same_key(k)]] = v
    return [None] + cells


def _same_key(key: Any) -> tuple[str, str]:
    # 2026 and "2026" name the same period but are different keys of a map
    return (type(key).__name__, str(key))


def _tables(d: dict[str, Any]) -> list[_Table]:
    cur = d.get("currency") or "currency"
    periods = list(d["periods"])
    grid_head = [ALL] + [p for p in periods]
    tables: list[_Table] = []

    inst = _Table("instance", ["key", "value"])
    for key in INSTANCE_KEYS:
        if key == "periods":
            inst.rows.append(["periods", *periods])
            continue
        head, _, sub = key.partition(".")
        value = d.get(head)
        if sub:
            value = (value or {}).get(sub)
        if value is not None:
            inst.rows.append([key, _cell_value(value, _kind(key))])
    tables.append(inst)

    elements = _Table("elements", ["element"] + [_header(n, u.format(cur=cur))
                                                 for n, _, u in ELEMENT_MAPS])
    keys = list(d["elements"])
    for _, path, _ in ELEMENT_MAPS:
        mapping = _get(d, path) or {}
        keys += [k for k in mapping if k not in keys]
    for e in keys:
        elements.rows.append([e] + [(_get(d, path) or {}).get(e) for _, path, _ in ELEMENT_MAPS])
    tables.append(elements)

    groups = _Table("groups", ["group", "elements"])
    for g, members in d.get("groups", {}).items():
        groups.rows.append([g, _cell_value(members, "list")])
    tables.append(groups)

    demand = _Table("demand", ["element", _header(ALL, "t")] + grid_head[1:])
    for e, v in d["demand"].items():
        demand.rows.append([e] + _period_cells(v, periods))
    tables.append(demand)

    indices = _Table("indices", ["index", "element", "unit"] + grid_head)
    for name, paths in d.get("indices", {}).items():
        for e, v in paths.items():
            unit = "factor" if e == INDEX_MULTIPLIER else f"{cur}/t"
            indices.rows.append([name, e, unit] + _period_cells(v, periods))
    tables.append(indices)

    sources = _Table("sources", [_header(c, "share of price" if c == "reservation_fee" else
                                         "periods" if c == "lead_time" else
                                         "share" if c == "min_take" else "")
                                 for c in SOURCE_COLUMNS])
    supply = _Table("supply", ["source", "element", "item", "unit"] + grid_head)
    for s in d["sources"]:
        sources.rows.append(_record_cells(s, SOURCE_COLUMNS))
        for e, sup in s["supply"].items():
            for item in SUPPLY_ITEMS:
                if item in sup:
                    unit = "t/period" if item in ("capacity", "committed") else \
                        "name" if item == "index" else \
                        "x index" if item == "premium" else f"{cur}/t"
                    supply.rows.append([s["id"], e, item, unit] +
                                       _period_cells(sup[item], periods))
    tables += [sources, supply]

    projects = _Table("projects", [_header(c, cur if c in ("cost", "fixed_cost") else
                                           "periods" if c == "build_time" else "")
                                   for c in PROJECT_COLUMNS])
    effects = _Table("project_effects", ["project", "item", "element"] + grid_head)
    for p in d.get("projects", []):
        projects.rows.append(_record_cells(p, PROJECT_COLUMNS))
        for item in EFFECT_ITEMS:
            for e, v in (p.get(item) or {}).items():
                effects.rows.append([p["id"], item, e] + _period_cells(v, periods))
    tables += [projects, effects]

    scenarios = _Table("scenarios", list(SCENARIO_COLUMNS))
    rules = _Table("scenario_rules", list(SCENARIO_RULE_COLUMNS))
    for w in d.get("scenarios") or []:
        scenarios.rows.append([_cell_value(w.get(c), _kind(c)) for c in SCENARIO_COLUMNS])
        for kind, key in RULE_KINDS.items():
            for rule in w.get(key, []):
                row = {"scenario": w["id"], "kind": kind, **rule}
                if row.get("match") == {}:
                    row.pop("match")        # blank: the selector matching every source
                rules.rows.append([_cell_value(row.get(c), _kind(c)) for c in
                                   SCENARIO_RULE_COLUMNS])
    tables += [scenarios, rules]

    policies = _Table("policies", list(POLICY_COLUMNS))
    for name, pol in d.get("policies", {}).items():
        rows = [(rule, settings) for rule in RULE_MODELS for settings in pol.get(rule, [])]
        own = {k: pol[k] for k in POLICY_SETTINGS if k in pol}    # on the policy's first row
        if not rows:
            rows = [(None, {})]
        for i, (rule, settings) in enumerate(rows):
            row = {"policy": name, "rule": rule, **settings, **(own if i == 0 else {})}
            policies.rows.append([_cell_value(row.get(c), _kind(c, "policies"))
                                  for c in POLICY_COLUMNS])
    tables.append(policies)
    return tables


def _record_cells(record: dict[str, Any], columns: tuple[str, ...]) -> list[Any]:
    """The cells of a source or project row; a window is spread over two columns."""
    cells = []
    for c in columns:
        if c in WINDOWS:
            key, bound = WINDOWS[c]
            window = record.get(key)
            if window == {} and bound == "from":
                cells.append("-")     # a window given without bounds (see _Parser.window)
            else:
                cells.append(None if window is None else window.get(bound))
        else:
            cells.append(_cell_value(record.get(c), _kind(c)))
    return cells


def _get(d: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        d = (d or {}).get(key)
    return d


def _about_lines(d: dict[str, Any]) -> list[str]:
    return [
        f"Instance '{d['name']}' as a workbook (sourcing export-instance); read it back "
        "with: sourcing build from-xlsx THIS.xlsx --out instance.yaml",
        "Each sheet is one table; its first row is the header (a unit in brackets is "
        "only a reminder). A blank cell leaves a setting out, so its default applies.",
        "instance: the top-level settings, one per row; the row 'periods' holds one "
        "period label per cell.",
        "elements: one row per element (in order) with its shortage penalty, resale "
        "price and stock; a row 'default' gives the value of elements without their own.",
        "demand, supply, project_effects: a number for every period in all_periods, or "
        "one number per period in the period columns (blank: not given, so 0 for a "
        "capacity); all_periods may also hold a YAML map such as {2026: 40, 2027: 80}.",
        "supply: one row per source, element and item (capacity and committed in t per "
        "period, price, price_floor and price_cap in currency per t; floor and cap take "
        "all_periods only; instead of a price, 'index' names a price index of the indices "
        "sheet and 'premium' multiplies it). The unit column is not read.",
        "indices: one row per price index and element with its price path; a row "
        "'multiplier' (all_periods) scales every path of the index.",
        "sources, projects: available_from/until and decide_from/until are period "
        "labels; '-' in *_from alone means a window without bounds.",
        "scenario_rules: one row per disruption (availability, emergency), price_shock "
        "or demand_shock (multiplier) of a scenario; match is a selector such as "
        "{mined_in: CN} or {id: [a, b]} (blank: every source).",
        "policies: one row per rule of a policy (rule = max_single_country_share, "
        "min_domestic_share, min_recycled_share, exclude, min_stock_days, budget, build) "
        "with its settings in their columns; a policy without rules is one row with the "
        "rule blank. build_stock, notes and sources are the policy's own: on one of its "
        "rows.",
        "notes, sources: provenance (free text; one citation per line).",
        "Lists are written Dy, Tb or [Dy, Tb]; a text that would read as a number or "
        "true/false is quoted, e.g. \"2026\". Formulas are read by their computed values.",
        "Errors name the sheet and cell, e.g. supply!E7. Format: docs/instance-format.md, "
        "section Workbook.",
    ]


def write_instance_workbook(inst: Instance, path: Path, force: bool = False) -> Path:
    """Write `inst` as a workbook at `path` (whole or not at all; `force` replaces a file).

    The workbook is read back before it is written: an instance that would not
    come back equal is an error here, not a surprise later.
    """
    from .builders import instance_to_dict, write_text_atomic

    blob = instance_workbook(inst)
    want = instance_to_dict(inst)
    try:
        got = instance_to_dict(read_instance_workbook(io.BytesIO(blob), str(path))
                               .validate().instance)
    except InstanceError as err:
        raise RuntimeError(f"the workbook of '{inst.name}' does not read back ({err}); "
                           "please report this") from None
    if got != want:
        raise RuntimeError(f"the workbook of '{inst.name}' does not read back to the same "
                           f"instance ({_first_difference(want, got)}); please report this")
    return write_text_atomic(Path(path), blob, force=force)


def _first_difference(a: Any, b: Any, place: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in list(a) + [k for k in b if k not in a]:
            if k not in a or k not in b or a[k] != b[k]:
                return _first_difference(a.get(k), b.get(k), f"{place}.{k}" if place else str(k))
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                return _first_difference(x, y, f"{place}[{i}]")
    return f"{place or 'the top'}: {a!r} != {b!r}"


# --------------------------------------------------------------------------- reading
@dataclass
class _Cell:
    value: Any
    ref: str             # sheet!A1


@dataclass
class WorkbookInstance:
    """The instance data read from a workbook, with the cell each value came from."""

    data: dict[str, Any]
    file: str
    origins: dict[tuple[Any, ...], str]
    warnings: list[str] = field(default_factory=list)   # formulas, hidden cells

    def place_of(self, place: str) -> str:
        """The sheet and cell of a place in the instance (``sources[2].supply.Dy``)."""
        from .instance import _parse_place

        path = tuple(_parse_place(place)) if place else ()
        for n in range(len(path), -1, -1):
            key = tuple(str(p) for p in path[:n])
            if key in self.origins:
                return self.origins[key]
        return "instance"

    def validate(self) -> Any:
        """The validated instance (a LoadedInstance); errors name the sheet and cell."""
        from .instance import instance_from_dict

        try:
            loaded = instance_from_dict(self.data, name=self.file)
        except InstanceError as err:
            where = self.place_of(err.place)
            raise InstanceError(err.message + (f" ({err.place})" if err.place else ""),
                                place=where, file=self.file) from None
        loaded.warnings = [*self.warnings, *loaded.warnings]
        return loaded


@dataclass
class _SheetScan:
    """What a sheet's XML holds, found by one streaming pass before openpyxl reads it."""

    cells: int = 0                       # each row counted up to its last cell
    formulas: int = 0
    hidden_rows: set[int] = field(default_factory=set)
    hidden_columns: list[tuple[int, int]] = field(default_factory=list)   # (min, max)

    def hidden_column(self, column: int) -> bool:
        return any(lo <= column <= hi for lo, hi in self.hidden_columns)


_REF = re.compile(r"([A-Z]{1,3})([0-9]+)$")
_EXTERNAL = re.compile(r"\[[0-9]+\]")       # [1]Sheet1!A1: a cell of another workbook


def _column_number(letters: str) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n


def _scan_sheet(source: Any, name: str, file: str, budget: int) -> _SheetScan:
    """Count a sheet's cells (each row up to its last cell, as a reader lays them out),
    its formulas and its hidden rows and columns, streaming its XML with expat.

    Nothing is built per cell, so a single cell at XFD1048576, or a merged range
    A1:XFD1048576 (openpyxl's normal mode makes one object per merged cell), costs
    nothing here; a sheet beyond `budget` cells is refused before it is read.
    """
    import xml.parsers.expat

    scan = _SheetScan()
    state = {"row": 0, "col": 0, "width": 0}

    def too_large(where: str) -> InstanceError:
        return InstanceError(
            f"the sheet's cells reach {where}: the sheets read may hold at most "
            f"{MAX_WORKBOOK_CELLS:,} cells, counting each row up to its last cell "
            "(docs/cli.md, Safety)", place=name, file=file)

    def start(tag: str, attrs: dict[str, str]) -> None:
        local = tag.rsplit(" ", 1)[-1]
        if local == "c":
            ref = attrs.get("r")
            m = _REF.match(ref) if ref else None
            state["col"] = _column_number(m.group(1)) if m else state["col"] + 1
            if state["col"] > state["width"]:
                state["width"] = state["col"]
                if scan.cells + state["width"] > budget:
                    raise too_large(f"{get_column_letter(min(state['col'], 16384))}"
                                    f"{state['row']}")
        elif local == "row":
            r = attrs.get("r", "")
            state["row"] = int(r) if r.isdigit() and len(r) < 10 else state["row"] + 1
            state["col"], state["width"] = 0, 0
            if attrs.get("hidden") in ("1", "true"):
                scan.hidden_rows.add(state["row"])
        elif local == "f":
            scan.formulas += 1
        elif local == "col" and attrs.get("hidden") in ("1", "true"):
            lo, hi = attrs.get("min", ""), attrs.get("max", "")
            if lo.isdigit() and hi.isdigit() and len(lo) < 7 and len(hi) < 7:
                scan.hidden_columns.append((int(lo), int(hi)))

    def end(tag: str) -> None:
        if tag.rsplit(" ", 1)[-1] == "row":
            scan.cells += state["width"]
            state["width"] = 0

    def no_dtd(*args: Any) -> None:
        raise InstanceError("the sheet's XML declares a DTD, which no workbook needs",
                            place=name, file=file)

    from openpyxl.utils import get_column_letter

    parser = xml.parsers.expat.ParserCreate(namespace_separator=" ")
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.StartDoctypeDeclHandler = no_dtd
    parser.EntityDeclHandler = no_dtd
    try:
        parser.ParseFile(source)
    except xml.parsers.expat.ExpatError as err:
        raise InstanceError(f"the sheet's XML cannot be read ({err})", place=name,
                            file=file) from None
    return scan


class _Reader:
    """The cells of one workbook, at a cost bounded by the cells that exist.

    openpyxl reads in read-only mode (nothing is built for a sheet until it is
    read, merged ranges are never expanded), each sheet's XML is first scanned
    (:func:`_scan_sheet`) and every row is laid out only up to its last cell.
    A formula is read by the value the spreadsheet saved with it, and the
    workbook warns about each one (that value may be stale); formulas that
    refer to other workbooks are refused. Hidden sheets, rows and columns that
    hold values are read and named in a warning.
    """

    def __init__(self, blob: bytes, file: str) -> None:
        import openpyxl

        self.file = file
        self.blob = blob
        _check_zip(blob, file)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.book = openpyxl.load_workbook(io.BytesIO(blob), read_only=True,
                                                   data_only=False, keep_links=False)
        except Exception as err:  # noqa: BLE001 - any failure: not a workbook we can read
            raise InstanceError(f"not an Excel workbook (.xlsx) that can be read: "
                                f"{type(err).__name__}: {shown(str(err), 200)}",
                                file=file) from None
        self._values: Any = None
        self._budget = MAX_WORKBOOK_CELLS
        self.warnings: list[str] = []
        self._formulas: list[str] = []

    def error(self, message: str, ref: str = "") -> InstanceError:
        return InstanceError(message, place=ref, file=self.file)

    def sheet_names(self) -> list[str]:
        return list(self.book.sheetnames)

    def _scan(self, name: str, sheet: Any) -> _SheetScan:
        path = getattr(sheet, "_worksheet_path", None)
        if path is None:        # openpyxl changed: refuse rather than read unbounded
            raise self.error("cannot inspect the sheet before reading it (openpyxl "
                             "version?); please report this", name)
        with self.book._archive.open(path) as fh:
            scan = _scan_sheet(fh, name, self.file, self._budget)
        self._budget -= scan.cells
        return scan

    def rows(self, name: str) -> Iterator[tuple[int, list[_Cell]]]:
        """(row number, cells) of the non-blank rows of a sheet, each row's cells
        from column A up to its last non-blank cell."""
        from openpyxl.utils import get_column_letter

        sheet = self.book[name]
        scan = self._scan(name, sheet)
        state = getattr(sheet, "sheet_state", "visible")
        if state != "visible":
            self.warnings.append(f"{self.file}: sheet '{name}' is "
                                 f"{'very hidden (no menu shows it)' if state == 'veryHidden' else 'hidden'}"
                                 " and was read")
        sheet.reset_dimensions()     # never trust <dimension>: lay out only what exists
        rows: Iterator[Any] = sheet.iter_rows()
        values: Iterator[Any] | None = None
        if scan.formulas:
            values_sheet = self._values_book()[name]
            values_sheet.reset_dimensions()
            values = values_sheet.iter_rows()
        hidden_rows: list[int] = []
        hidden_columns: set[int] = set()
        for row in rows:
            saved = next(values) if values is not None else None
            last = max((i for i, c in enumerate(row) if c.value is not None), default=-1)
            if last < 0:
                continue
            number = next(c.row for c in row if c.value is not None)
            cells = []
            for i in range(last + 1):
                ref = f"{name}!{get_column_letter(i + 1)}{number}"
                cell = row[i]
                if cell.value is None:
                    cells.append(_Cell(None, ref))
                    continue
                if scan.hidden_columns and scan.hidden_column(i + 1):
                    hidden_columns.add(i + 1)
                cached = saved[i].value if saved is not None and i < len(saved) else None
                cells.append(_Cell(self._value(cell, cached, ref), ref))
            if number in scan.hidden_rows:
                hidden_rows.append(number)
            yield number, cells
        if hidden_rows:
            self.warnings.append(f"{self.file}: sheet '{name}': hidden row(s) "
                                 f"{_some(hidden_rows)} hold values and were read")
        if hidden_columns:
            self.warnings.append(
                f"{self.file}: sheet '{name}': hidden column(s) "
                f"{_some([get_column_letter(c) for c in sorted(hidden_columns)])} hold "
                "values and were read")

    def _value(self, cell: Any, cached: Any, ref: str) -> Any:
        import datetime

        value, kind = cell.value, cell.data_type
        if kind == "f":
            formula = str(value)
            if _EXTERNAL.search(formula):
                raise self.error(f"a formula that refers to another workbook "
                                 f"({shown(formula)}): type the value itself", ref)
            if cached is None:
                raise self.error("a formula without a computed value (open the workbook in "
                                 "a spreadsheet program and save it, or type the value)", ref)
            self.warnings.append(
                f"{ref} holds the formula {shown(formula)}: read as {shown(cached)}, the "
                "value last saved with it (stale if the workbook was changed by a program "
                "that does not recalculate)")
            value = cached
            kind = "e" if isinstance(cached, str) and cached.startswith("#") and \
                cached.upper() in _ERRORS else "n"
        if kind == "e":
            raise self.error(f"the cell holds the error {value}", ref)
        if isinstance(value, (datetime.datetime, datetime.date, datetime.time,
                              datetime.timedelta)):
            raise self.error(f"a date or time ({value}); type the number or text itself "
                             "(format the cell as Text or General)", ref)
        if isinstance(value, str):
            value = _unescape_text(value)
        return value

    def _values_book(self) -> Any:
        """The workbook as read with the values saved with its formulas (read-only too)."""
        if self._values is None:
            import openpyxl

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._values = openpyxl.load_workbook(io.BytesIO(self.blob), read_only=True,
                                                      data_only=True, keep_links=False)
        return self._values


_ERRORS = frozenset({"#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A",
                     "#GETTING_DATA"})


def _some(items: list[Any], most: int = 10) -> str:
    text = ", ".join(map(str, items[:most]))
    return text + (f" and {len(items) - most:,} more" if len(items) > most else "")


def _check_zip(blob: bytes, file: str) -> None:
    """An .xlsx file is a zip archive: refuse one that would unpack beyond the limits,
    or that links to other workbooks."""
    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as archive:
            parts = archive.infolist()
    except zipfile.BadZipFile:
        raise InstanceError("not an Excel workbook (.xlsx): not a zip archive", file=file) \
            from None
    if len(parts) > MAX_PARTS or sum(p.file_size for p in parts) > MAX_UNZIPPED_BYTES:
        raise InstanceError(f"the workbook unpacks to more than {MAX_PARTS:,} parts or "
                            f"{MAX_UNZIPPED_BYTES // 1024 ** 2} MiB", file=file)
    for p in parts:
        if p.filename.lower().startswith("xl/externallinks/"):
            raise InstanceError("the workbook links to other workbooks (external links); "
                                "an instance workbook must hold its values itself", file=file)
        if p.file_size > MAX_PART_BYTES and not _LARGE_PART.match(p.filename):
            raise InstanceError(f"the workbook's part {shown(p.filename)} unpacks to "
                                f"{p.file_size / 1024 ** 2:.1f} MiB; parts other than the "
                                f"sheets and their text are limited to "
                                f"{MAX_PART_BYTES // 1024 ** 2} MiB", file=file)


_LARGE_PART = re.compile(r"xl/(worksheets/[^/]+\.xml|sharedStrings\.xml)$", re.I)


@dataclass
class _TableRows:
    """A sheet read as a table: header names (units dropped) and rows of cells."""

    name: str
    columns: dict[str, int]                       # name -> position
    header: list[_Cell]
    rows: list[tuple[int, list[_Cell]]]

    def cell(self, row: list[_Cell], column: str) -> _Cell | None:
        i = self.columns.get(column)
        return row[i] if i is not None and i < len(row) else None

    def value(self, row: list[_Cell], column: str) -> Any:
        c = self.cell(row, column)
        return None if c is None else c.value


def _table(reader: _Reader, name: str, known: tuple[str, ...], required: tuple[str, ...],
           extra: Callable[[_Cell], bool] | None = None) -> _TableRows | None:
    """Read sheet `name`: its header must name known columns (or pass `extra`)."""
    if name not in reader.sheet_names():
        return None
    rows = list(reader.rows(name))
    if not rows:
        return _TableRows(name, {}, [], [])
    (head_row, header), body = rows[0], rows[1:]
    if head_row != 1:
        raise reader.error("the header belongs in row 1", header[0].ref)
    width = max((len(r) for _, r in body), default=0)
    if width > len(header):          # rows end at their last value: pad the header
        from openpyxl.utils import get_column_letter

        header = header + [_Cell(None, f"{name}!{get_column_letter(i + 1)}1")
                           for i in range(len(header), width)]
    columns: dict[str, int] = {}
    for i, cell in enumerate(header):
        if cell.value is None:
            if any(i < len(r) and r[i].value is not None for _, r in body):
                raise reader.error("a column without a header", cell.ref)
            continue
        if extra is not None and extra(cell):
            continue
        text = str(cell.value).split(" (", 1)[0].strip()
        if text not in known:
            close = difflib.get_close_matches(text, known, n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else \
                f" (columns: {', '.join(known)})"
            raise reader.error(f"unknown column '{text}'{hint}", cell.ref)
        if text in columns:
            raise reader.error(f"column '{text}' appears twice", cell.ref)
        columns[text] = i
    missing = [c for c in required if c not in columns]
    if missing:
        raise reader.error(f"missing column(s) {', '.join(missing)}", f"{name}!1:1")
    return _TableRows(name, columns, header, body)


class _Parser:
    """Turns the cells of a workbook into instance data, remembering each value's cell."""

    def __init__(self, reader: _Reader) -> None:
        self.r = reader
        self.origins: dict[tuple[Any, ...], str] = {(): "instance"}
        self.periods: list[Any] = []          # from the instance sheet, read first

    def at(self, path: tuple[Any, ...], ref: str) -> None:
        # as text, as a place names them: sources[2].supply.Dy.capacity.2026
        self.origins.setdefault(tuple(str(p) for p in path), ref)

    # ---- cells
    def convert(self, cell: _Cell, kind: str, column: str = "") -> Any:
        v = cell.value
        if v is None:
            return None
        if kind == "id":
            if isinstance(v, bool):
                raise self.r.error(f"must be a name, got {v}", cell.ref)
            if isinstance(v, float) and v.is_integer():
                v = int(v)
            return str(v).strip() if isinstance(v, (str, int)) else v
        if kind == "text":
            if isinstance(v, float) and v.is_integer():
                v = int(v)
            return v if isinstance(v, str) else str(v)
        if kind == "bool":
            if isinstance(v, str) and v.strip().lower() in ("true", "false"):
                return v.strip().lower() == "true"
            if not isinstance(v, bool):
                raise self.r.error(f"must be TRUE or FALSE, got {v!r}", cell.ref)
            return v
        if kind in ("count", "label"):
            if isinstance(v, float) and v.is_integer():
                return int(v)
            return v.strip() if isinstance(v, str) else v
        if kind == "number":
            if isinstance(v, str):
                self.no_separator(v, cell.ref)
            return v.strip() if isinstance(v, str) else v   # text: validation says so
        if kind == "list":
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                return [int(v) if isinstance(v, float) and v.is_integer() else v]
            text = str(v).strip()
            if not text:
                return None
            parsed = self.yaml(text if text.startswith("[") else f"[{text}]", cell.ref)
            return [int(x) if isinstance(x, float) and x.is_integer() else x
                    for x in parsed] if isinstance(parsed, list) else parsed
        if kind == "ignored":
            return None
        if kind == "lines":
            lines = [ln.strip() for ln in str(v).splitlines()]
            return [ln for ln in lines if ln] or None
        # flow: a YAML value; a bare comma list is a list
        if not isinstance(v, str):
            return v
        text = v.strip()
        if not text:
            return None
        if "," in text and not text.startswith(("[", "{", '"', "'")):
            text = f"[{text}]"
        return self.yaml(text, cell.ref)

    def no_separator(self, text: str, ref: str) -> None:
        """Refuse a number typed as text with thousands separators ("305,000"): a
        workbook cell that Excel left as text; read as YAML it would be a list."""
        if _THOUSANDS.match(text):
            plain = text.strip().replace(",", "").replace("\u202f", "").replace(" ", "")
            raise self.r.error(f"'{text.strip()}' is text with a thousands separator: "
                               f"write {plain} (a number cell, no separator)", ref)

    def yaml(self, text: str, ref: str) -> Any:
        from .instance import yaml_load

        try:
            return yaml_load(text, self.r.file)
        except InstanceError as err:  # not YAML, or beyond the limits of instance files
            problem = err.message.removeprefix("not valid YAML: ")
            raise self.r.error(f"not valid YAML text: {problem}", ref) from None

    def key(self, cell: _Cell | None, what: str, ref: str) -> str:
        """A required id cell (an element, a source, a policy)."""
        value = None if cell is None else self.convert(cell, "id")
        if value in (None, ""):
            raise self.r.error(f"{what} missing", cell.ref if cell else ref)
        return value

    # ---- sheets
    def parse(self) -> dict[str, Any]:
        known = {"about", "instance", "elements", "groups", "demand", "indices", "sources",
                 "supply", "projects", "project_effects", "scenarios", "scenario_rules",
                 "policies"}
        for name in self.r.sheet_names():
            if name not in known:
                close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
                hint = f" (did you mean '{close[0]}'?)" if close else \
                    f" (sheets: {', '.join(sorted(known))})"
                raise self.r.error(f"unknown sheet '{name}'{hint}", name)
        for name in ("instance", "elements", "demand"):
            if name not in self.r.sheet_names():
                raise self.r.error(f"the workbook has no sheet '{name}'")
        data: dict[str, Any] = {}
        self.instance_sheet(data)
        self.elements_sheet(data)
        self.groups_sheet(data)
        if isinstance(data.get("periods"), list):
            self.periods = data["periods"]
        data["demand"] = self.grid_sheet("demand", ("element",), ("demand",))
        self.indices_sheet(data)
        self.sources_sheet(data)
        self.projects_sheet(data)
        self.scenarios_sheet(data)
        self.policies_sheet(data)
        return data

    def instance_sheet(self, data: dict[str, Any]) -> None:
        seen: dict[str, str] = {}
        for n, cells in self.r.rows("instance"):
            head = cells[0]
            key = self.convert(head, "id") if head.value is not None else None
            if n == 1 and key == "key":
                continue                          # the header row
            if key is None:
                raise self.r.error("a value without a key in column A",
                                   next(c for c in cells if c.value is not None).ref)
            if key not in INSTANCE_KEYS:
                close = difflib.get_close_matches(key, INSTANCE_KEYS, n=1, cutoff=0.6)
                hint = f" (did you mean '{close[0]}'?)" if close else \
                    f" (keys: {', '.join(INSTANCE_KEYS)})"
                raise self.r.error(f"unknown key '{key}'{hint}", head.ref)
            if key in seen:
                raise self.r.error(f"'{key}' is given twice (also {seen[key]})", head.ref)
            seen[key] = head.ref
            rest = cells[1:]
            if key == "periods":
                labels = [c for c in rest if c.value is not None]
                data["periods"] = [self.convert(c, "label") for c in labels]
                self.at(("periods",), head.ref)
                for i, c in enumerate(labels):
                    self.at(("periods", i), c.ref)
                continue
            values = [c for c in rest if c.value is not None]
            if len(values) > 1:
                raise self.r.error(f"'{key}' takes one value (column B)", values[1].ref)
            if not values:
                continue
            cell = values[0]
            value = self.convert(cell, _kind(key))
            head_key, _, sub = key.partition(".")
            if sub:
                data.setdefault(head_key, {})[sub] = value
                self.at((head_key, sub), cell.ref)
            else:
                data[key] = value
                self.at((key,), cell.ref)

    def elements_sheet(self, data: dict[str, Any]) -> None:
        t = _table(self.r, "elements", ("element",) + tuple(n for n, _, _ in ELEMENT_MAPS),
                   ("element",))
        assert t is not None
        elements: list[str] = []
        maps: dict[tuple[str, ...], dict[str, Any]] = {path: {} for _, path, _ in ELEMENT_MAPS}
        for n, row in t.rows:
            e = self.key(t.cell(row, "element"), "the element", f"elements!A{n}")
            if e != "default":
                self.at(("elements", len(elements)), row[t.columns["element"]].ref)
                elements.append(e)
            for name, path, _ in ELEMENT_MAPS:
                cell = t.cell(row, name)
                if cell is not None and cell.value is not None:
                    if e in maps[path]:
                        raise self.r.error(f"element '{e}' has two rows", cell.ref)
                    maps[path][e] = self.convert(cell, "number")
                    self.at(path + (e,), cell.ref)
        data["elements"] = elements
        self.at(("elements",), "elements!A1")
        data["shortage_penalty"] = maps[("shortage_penalty",)]
        self.at(("shortage_penalty",), "elements!B1")
        if maps[("resale_price",)]:
            data["resale_price"] = maps[("resale_price",)]
        stock = {path[1]: m for path, m in maps.items() if path[0] == "stock" and m}
        if stock:
            data["stock"] = stock
        self.at(("stock",), "elements!D1")

    def groups_sheet(self, data: dict[str, Any]) -> None:
        t = _table(self.r, "groups", ("group", "elements"), ("group", "elements"))
        if t is None:
            return
        groups: dict[str, Any] = {}
        for n, row in t.rows:
            g = self.key(t.cell(row, "group"), "the group", f"groups!A{n}")
            cell = t.cell(row, "elements")
            if g in groups:
                raise self.r.error(f"group '{g}' has two rows", row[0].ref)
            groups[g] = (self.convert(cell, "list") if cell is not None else None) or []
            self.at(("groups", g), cell.ref if cell is not None else row[0].ref)
        if groups:
            data["groups"] = groups

    def grid_row(self, t: _TableRows, row: list[_Cell], periods: dict[str, Any],
                 path: tuple[Any, ...], n: int, scalar_only: bool = False) -> Any:
        """A number (all_periods) or a period map (the period columns) of one row."""
        every = t.cell(row, ALL)
        given = [(periods[k], c) for k, c in ((k, t.cell(row, k)) for k in periods)
                 if c is not None and c.value is not None]
        if every is not None and every.value is not None:
            if given:
                raise self.r.error(f"give {ALL} or values per period, not both",
                                   given[0][1].ref)
            self.at(path, every.ref)
            if isinstance(every.value, str):
                self.no_separator(every.value, every.ref)
            value = self.convert(every, "flow")
            if isinstance(value, dict):
                for k in value:
                    self.at(path + (k,), every.ref)
            return value
        if not given:
            raise self.r.error(f"no value: give {ALL} or a value per period",
                               f"{t.name}!A{n}")
        if scalar_only:
            raise self.r.error(f"one value for every period: use {ALL}", given[0][1].ref)
        self.at(path, given[0][1].ref)
        out = {}
        for label, cell in given:
            out[label] = self.convert(cell, "number")
            self.at(path + (label,), cell.ref)
        return out

    def grid_table(self, name: str, keys: tuple[str, ...], extra: tuple[str, ...] = ()
                   ) -> tuple[_TableRows | None, dict[str, Any]]:
        """A sheet of rows keyed by `keys` with all_periods and one column per period;
        returns the table and the period columns (header text -> label)."""
        from .instance import pkey

        periods: dict[str, Any] = {}
        known = {pkey(p) for p in self.periods}

        def period_column(cell: _Cell) -> bool:
            v = cell.value
            if isinstance(v, str) and (" (" in v or v.strip() in keys + extra + (ALL,)):
                return False
            label = self.convert(cell, "label")
            if pkey(label) not in known:
                raise self.r.error(
                    f"unknown period '{label}' (periods: {', '.join(map(str, self.periods))};"
                    f" other columns: {', '.join(keys + extra + (ALL,))})", cell.ref)
            key = f"\0{label!r}"                 # a column name no header can have
            if key in periods:
                raise self.r.error(f"period {label} has two columns", cell.ref)
            periods[key] = label
            return True

        t = _table(self.r, name, keys + extra + (ALL,) + tuple(periods), keys,
                   extra=period_column)
        if t is not None:
            for i, cell in enumerate(t.header):
                if cell.value is not None and str(cell.value).split(" (", 1)[0].strip() \
                        not in t.columns:
                    label = self.convert(cell, "label")
                    t.columns[f"\0{label!r}"] = i
        return t, periods

    def grid_sheet(self, name: str, keys: tuple[str, ...], path: tuple[str, ...]
                   ) -> dict[str, Any]:
        t, periods = self.grid_table(name, keys)
        out: dict[str, Any] = {}
        self.at(path, f"{name}!A1")
        if t is None:
            return out
        for n, row in t.rows:
            e = self.key(t.cell(row, keys[0]), f"the {keys[0]}", f"{name}!A{n}")
            if e in out:
                raise self.r.error(f"{keys[0]} '{e}' has two rows", row[0].ref)
            out[e] = self.grid_row(t, row, periods, path + (e,), n)
        return out

    def record(self, t: _TableRows, row: list[_Cell], columns: tuple[str, ...],
               path: tuple[Any, ...], skip: tuple[str, ...] = ()) -> dict[str, Any]:
        """The settings of one row as a dict (blank cells left out)."""
        out: dict[str, Any] = {}
        for c in columns:
            if c in skip:
                continue
            cell = t.cell(row, c)
            if cell is None or cell.value is None:
                continue
            value = self.convert(cell, _kind(c, t.name), c)
            if value is None:
                continue
            out[c] = value
            self.at(path + (c,), cell.ref)
        return out

    def window(self, t: _TableRows, row: list[_Cell], prefix: str, path: tuple[Any, ...],
               target: dict[str, Any]) -> None:
        lo, hi = t.cell(row, f"{prefix}_from"), t.cell(row, f"{prefix}_until")
        if (lo is None or lo.value is None) and (hi is None or hi.value is None):
            return
        window: dict[str, Any] = {}
        for key, cell in (("from", lo), ("until", hi)):
            if cell is None or cell.value is None:
                continue
            value = self.convert(cell, "label")
            if value == "-":                     # a window without this bound
                continue
            window[key] = value
            self.at(path + (prefix, key), cell.ref)
        self.at(path + (prefix,), (lo if lo is not None and lo.value is not None else hi).ref)
        target[prefix] = window

    def indices_sheet(self, data: dict[str, Any]) -> None:
        """index | element | unit | all_periods | periods: a path per row; the row
        `multiplier` holds the index's multiplier (all_periods)."""
        g, periods = self.grid_table("indices", ("index", "element"), ("unit",))
        indices: dict[str, dict[str, Any]] = {}
        for n, row in (g.rows if g else []):
            name = self.key(g.cell(row, "index"), "the index", f"indices!A{n}")
            e = self.key(g.cell(row, "element"), "the element", f"indices!B{n}")
            paths = indices.setdefault(name, {})
            self.at(("indices", name), g.cell(row, "index").ref)
            if e in paths:
                raise self.r.error(f"index {name} {e} has two rows", g.cell(row, "element").ref)
            paths[e] = self.grid_row(g, row, periods, ("indices", name, e), n,
                                     scalar_only=e == INDEX_MULTIPLIER)
        if indices:
            data["indices"] = indices

    def sources_sheet(self, data: dict[str, Any]) -> None:
        t = _table(self.r, "sources", SOURCE_COLUMNS, ("id",))
        sources: list[dict[str, Any]] = []
        index: dict[str, int] = {}
        self.at(("sources",), "sources!A1")
        for n, row in (t.rows if t else []):
            i = len(sources)
            sid = self.key(t.cell(row, "id"), "the source id", f"sources!A{n}")
            src = self.record(t, row, SOURCE_COLUMNS, ("sources", i),
                              skip=("available_from", "available_until"))
            self.window(t, row, "available", ("sources", i), src)
            src["supply"] = {}
            self.at(("sources", i), row[t.columns["id"]].ref)
            index.setdefault(sid, i)
            sources.append(src)
        data["sources"] = sources
        g, periods = self.grid_table("supply", ("source", "element", "item"), ("unit",))
        for n, row in (g.rows if g else []):
            sid = self.key(g.cell(row, "source"), "the source", f"supply!A{n}")
            if sid not in index:
                raise self.r.error(f"unknown source '{sid}' (not on the sources sheet)",
                                   g.cell(row, "source").ref)
            e = self.key(g.cell(row, "element"), "the element", f"supply!A{n}")
            item = self.key(g.cell(row, "item"), "the item", f"supply!A{n}")
            if item not in SUPPLY_ITEMS:
                raise self.r.error(f"unknown item '{item}' (items: {', '.join(SUPPLY_ITEMS)})",
                                   g.cell(row, "item").ref)
            i = index[sid]
            supply = sources[i]["supply"].setdefault(e, {})
            self.at(("sources", i, "supply", e), g.cell(row, "source").ref)
            if item in supply:
                raise self.r.error(f"{sid} {e} {item} has two rows", g.cell(row, "item").ref)
            supply[item] = self.grid_row(g, row, periods, ("sources", i, "supply", e, item), n,
                                         scalar_only=item in SCALAR_ITEMS)

    def projects_sheet(self, data: dict[str, Any]) -> None:
        t = _table(self.r, "projects", PROJECT_COLUMNS, ("id",))
        projects: list[dict[str, Any]] = []
        index: dict[str, int] = {}
        for n, row in (t.rows if t else []):
            i = len(projects)
            pid = self.key(t.cell(row, "id"), "the project id", f"projects!A{n}")
            p = self.record(t, row, PROJECT_COLUMNS, ("projects", i),
                            skip=("decide_from", "decide_until"))
            self.window(t, row, "decide", ("projects", i), p)
            self.at(("projects", i), row[t.columns["id"]].ref)
            index.setdefault(pid, i)
            projects.append(p)
        g, periods = self.grid_table("project_effects", ("project", "item", "element"))
        for n, row in (g.rows if g else []):
            pid = self.key(g.cell(row, "project"), "the project", f"project_effects!A{n}")
            if pid not in index:
                raise self.r.error(f"unknown project '{pid}' (not on the projects sheet)",
                                   g.cell(row, "project").ref)
            item = self.key(g.cell(row, "item"), "the item", f"project_effects!A{n}")
            if item not in EFFECT_ITEMS:
                raise self.r.error(f"unknown item '{item}' (items: {', '.join(EFFECT_ITEMS)})",
                                   g.cell(row, "item").ref)
            e = self.key(g.cell(row, "element"), "the element", f"project_effects!A{n}")
            i = index[pid]
            effects = projects[i].setdefault(item, {})
            if e in effects:
                raise self.r.error(f"{pid} {item} {e} has two rows", g.cell(row, "element").ref)
            self.at(("projects", i, item), g.cell(row, "item").ref)
            effects[e] = self.grid_row(g, row, periods, ("projects", i, item, e), n)
        if projects:
            data["projects"] = projects

    def scenarios_sheet(self, data: dict[str, Any]) -> None:
        t = _table(self.r, "scenarios", SCENARIO_COLUMNS, ("id", "probability"))
        scenarios: list[dict[str, Any]] = []
        index: dict[str, int] = {}
        for n, row in (t.rows if t else []):
            i = len(scenarios)
            wid = self.key(t.cell(row, "id"), "the scenario id", f"scenarios!A{n}")
            w = self.record(t, row, SCENARIO_COLUMNS, ("scenarios", i))
            self.at(("scenarios", i), row[t.columns["id"]].ref)
            index.setdefault(wid, i)
            scenarios.append(w)
        g = _table(self.r, "scenario_rules", SCENARIO_RULE_COLUMNS, ("scenario", "kind"))
        for n, row in (g.rows if g else []):
            wid = self.key(g.cell(row, "scenario"), "the scenario", f"scenario_rules!A{n}")
            if wid not in index:
                raise self.r.error(f"unknown scenario '{wid}' (not on the scenarios sheet)",
                                   g.cell(row, "scenario").ref)
            kind = self.key(g.cell(row, "kind"), "the kind", f"scenario_rules!A{n}")
            if kind not in RULE_KINDS:
                raise self.r.error(f"unknown kind '{kind}' (kinds: {', '.join(RULE_KINDS)})",
                                   g.cell(row, "kind").ref)
            key, i = RULE_KINDS[kind], index[wid]
            rules = scenarios[i].setdefault(key, [])
            path = ("scenarios", i, key, len(rules))
            rule = self.record(g, row, SCENARIO_RULE_COLUMNS, path, skip=("scenario", "kind"))
            self.at(path, g.cell(row, "kind").ref)
            rules.append(rule)
        if t is not None and scenarios:
            data["scenarios"] = scenarios
        self.at(("scenarios",), "scenarios!B1")     # probabilities that do not sum to 1

    def policies_sheet(self, data: dict[str, Any]) -> None:
        t = _table(self.r, "policies", POLICY_COLUMNS, ("policy", "rule"))
        policies: dict[str, dict[str, Any]] = {}
        for n, row in (t.rows if t else []):
            name = self.key(t.cell(row, "policy"), "the policy", f"policies!A{n}")
            pol = policies.setdefault(name, {})
            self.at(("policies", name), t.cell(row, "policy").ref)
            for key in POLICY_SETTINGS:          # the policy's own settings, on one row
                cell = t.cell(row, key)
                if cell is None or cell.value is None:
                    continue
                if key in pol:
                    raise self.r.error(f"policy '{name}' gives {key} on two rows", cell.ref)
                pol[key] = self.convert(cell, _kind(key))
                self.at(("policies", name, key), cell.ref)
            rule_cell = t.cell(row, "rule")
            if rule_cell is None or rule_cell.value is None:
                own = {t.columns[k] for k in POLICY_SETTINGS if k in t.columns}
                if any(c.value is not None for i, c in enumerate(row[2:], 2) if i not in own):
                    raise self.r.error("the rule is missing", f"policies!B{n}")
                continue                              # a policy without rules
            rule = self.convert(rule_cell, "id")
            if rule not in RULE_MODELS:
                close = difflib.get_close_matches(str(rule), list(RULE_MODELS), n=1, cutoff=0.6)
                hint = f" (did you mean '{close[0]}'?)" if close else \
                    f" (rules: {', '.join(RULE_MODELS)})"
                raise self.r.error(f"unknown rule '{rule}'{hint}", rule_cell.ref)
            rules = pol.setdefault(rule, [])
            path = ("policies", name, rule, len(rules))
            self.at(path, rule_cell.ref)
            rules.append(self.record(t, row, POLICY_COLUMNS, path,
                                     skip=("policy", "rule", *POLICY_SETTINGS)))
        if policies:
            data["policies"] = policies


def read_instance_workbook(source: str | Path | io.BytesIO, name: str | None = None
                           ) -> WorkbookInstance:
    """The instance data of a workbook (not yet validated: see WorkbookInstance.validate).

    A path is read as an instance file is (a regular file, size-limited).
    """
    from .instance import read_limited

    if isinstance(source, io.BytesIO):
        blob, file = source.getvalue(), name or "<workbook>"
    else:
        file = name or str(source)
        blob = read_limited(Path(source))
    reader = _Reader(blob, file)
    parser = _Parser(reader)
    data = parser.parse()
    return WorkbookInstance(data, file, parser.origins, _folded(reader.warnings))


def _folded(messages: list[str], most: int = 20) -> list[str]:
    """At most `most` warnings, then one line saying how many more there are."""
    if len(messages) <= most:
        return messages
    return messages[:most] + [f"... and {len(messages) - most:,} more such warnings"]


def load_instance_workbook(path: str | Path) -> Any:
    """Read and validate an instance workbook: a LoadedInstance (errors name sheet and cell)."""
    return read_instance_workbook(path).validate()

