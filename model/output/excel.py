"""Formatted Excel workbooks of run, comparison and sweep folders (docs/outputs.md).

Every table of a folder's CSV files becomes one sheet with the unit in each
header (``contracted (t)``, ``expected_cost (USD)``, ``share_of_demand (%)``),
number formats (thousands separators for tonnes and money, percentages for
shares and probabilities, periods as plain numbers), column widths, a frozen
header row and an autofilter. In front of the tables come sheets written for
a reader rather than a program:

* ``summary``: a run's key numbers in words and units (from ``summary.json``),
  a comparison's key measures per policy, or a sweep's key columns per point;
* ``contracts`` (runs): contracted tonnes per supplier and element by period.

Units come from the column names alone (:func:`column_kind`): ``_t`` is
tonnes per period, names with ``cost`` (and ``objective``, ``cvar``, ``delta_``)
are money in the instance's currency, ``price`` is currency per tonne, names
with ``share`` are fractions shown as percentages. A table added later is
therefore formatted without changes here.

Writing stays fast for large runs: tables longer than :data:`EXCEL_MAX_ROWS`
stay in their CSV only (a ``notes`` sheet names them), the workbook is written
by xlsxwriter in constant-memory mode with one format per column (set before
the rows, so no cell carries its own), and widths are estimated from each
column's longest value rather than measured cell by cell.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

if TYPE_CHECKING:
    import pandas as pd

EXCEL_MAX_ROWS = 20_000  # larger tables stay in CSV (see docs/outputs.md)
MAX_WIDTH = 60           # characters; longer text wraps or is cut off on screen
MIN_WIDTH = 6

# number formats by kind of column; zero shown as a dash only where a grid of
# mostly-empty cells must stay readable (the contracts pivot)
FORMATS: dict[str, str] = {
    "t": "#,##0.0",
    "t_grid": '#,##0.0;-#,##0.0;"-"',
    "money": "#,##0",
    "price": "#,##0",
    "dual": "#,##0",
    "share": "0.0%",
    "prob": "0.0##%",
    "period": "0",
    "count": "#,##0",
    "seconds": "0.00",
    "index": "0.000",
    "size": "0.00",
}
# characters a formatted number takes beyond its integer digits, by kind
_DECIMALS = {"t": 2, "t_grid": 2, "share": 2, "prob": 4, "seconds": 3, "index": 4, "size": 3}
_MONEY_NAMES = frozenset({"objective", "cvar", "ws", "eev", "evpi", "vss", "bound",
                          "lower_bound", "upper_bound", "expected_shortage_value",
                          "shortage_value_per_year"})
_PERIOD_NAMES = frozenset({"period", "first_output", "year"})
_COUNT_NAMES = frozenset({"rows", "scenarios", "iterations", "ranks", "blocks"})


# --------------------------------------------------------------------------- units
def column_kind(column: str, table: str = "") -> str:
    """The kind of a numeric column (a key of :data:`FORMATS`, or "general"), from its name.

    ``shortage_t[normal]`` is judged by ``shortage_t``; `table` tells the duals'
    ``value`` (money per unit) from a sweep's ``value`` (the swept input).
    """
    base = column.split("[", 1)[0]
    if base in _PERIOD_NAMES or base.startswith("period"):
        return "period"
    if base.endswith("_t"):
        return "t"
    if "probability" in base:
        return "prob"
    if base == "price" or base.endswith("_price") or base.startswith("price_"):
        return "price"
    if "share" in base or base == "cap":
        return "share"
    if base.startswith("hhi"):
        return "index"
    if ("cost" in base or "revenue" in base or "investment" in base or "cash" in base
            or "penalty" in base or base.startswith("delta_") or base in _MONEY_NAMES):
        return "money"
    if base == "value" and table == "duals":
        return "dual"
    if base.endswith("seconds") or base.endswith("_s"):
        return "seconds"
    if base.startswith("n_") or base in _COUNT_NAMES:
        return "count"
    if base.startswith("size") or base == "expected_size":
        return "size"
    return "general"


def unit_of(kind: str, currency: str) -> str:
    """The unit shown in a header for a column of this kind ("" for none)."""
    cur = currency or "currency"
    return {"t": "t", "t_grid": "t", "money": cur, "price": f"{cur}/t",
            "dual": f"{cur} per unit", "share": "%", "prob": "%", "seconds": "s",
            "size": "× full size"}.get(kind, "")


def excel_header(column: str, table: str = "", currency: str = "",
                 numeric: bool = True) -> str:
    """The workbook header of a CSV column: its name with the unit in brackets.

    A tonnes column drops its ``_t`` suffix for the unit (``contracted_t`` ->
    ``contracted (t)``, ``shortage_t[ban]`` -> ``shortage[ban] (t)``); any other
    keeps its name (``expected_cost (USD)``); text columns are unchanged.
    """
    if not numeric:
        return column
    kind = column_kind(column, table)
    unit = unit_of(kind, currency)
    if not unit:
        return column
    if kind == "t":
        base, bracket, rest = column.partition("[")
        if base.endswith("_t"):
            column = base[:-2] + bracket + rest
    return f"{column} ({unit})"


# --------------------------------------------------------------------------- sheets
@dataclass
class Cell:
    """One cell of a front sheet: a value and the kind that formats it."""

    value: Any
    kind: str = "general"      # a key of FORMATS, "general", "text" or "bold"


@dataclass
class FrontSheet:
    """A sheet written for a reader: a title, note lines, then a table."""

    name: str
    title: str
    header: list[str]
    rows: list[list[Cell]]
    notes: list[str] = field(default_factory=list)
    widths: list[float] | None = None   # None: estimated from the cells
    frozen_columns: int = 0
    autofilter: bool = True
    wrap_columns: frozenset[int] = frozenset()


def write_excel(path: Path, tables: dict[str, "pd.DataFrame"], currency: str = "",
                front: Sequence[FrontSheet] = ()) -> None:
    """The `front` sheets, then one formatted sheet per table (xlsxwriter, constant memory).

    Tables longer than :data:`EXCEL_MAX_ROWS` stay in their CSV only; a
    ``notes`` sheet says which, so a spreadsheet never shows a silently cut table.
    Cells go straight to xlsxwriter row by row with the column's format set
    once: pandas' ``to_excel`` formats every cell on its own and was several
    times slower.
    """
    import pandas as pd
    import xlsxwriter

    omitted = {n: len(t) for n, t in tables.items() if len(t) > EXCEL_MAX_ROWS}
    sheets = {n: t for n, t in tables.items() if n not in omitted}
    if omitted:
        sheets["notes"] = pd.DataFrame({
            "table": list(omitted), "rows": list(omitted.values()),
            "note": [f"over {EXCEL_MAX_ROWS:,} rows: see {n}.csv" for n in omitted]})
    book = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    try:
        styles = _Styles(book)
        for sheet in front:
            _write_front(book, styles, sheet)
        for name, table in sheets.items():
            _write_table(book, styles, name, table, currency)
    finally:
        book.close()


class _Styles:
    """The workbook's formats, made once (xlsxwriter keeps one record per format)."""

    def __init__(self, book: Any) -> None:
        self.header = book.add_format({"bold": True, "bg_color": "#DDE4EE", "bottom": 1,
                                       "text_wrap": True, "valign": "top"})
        self.title = book.add_format({"bold": True, "font_size": 13})
        self.note = book.add_format({"italic": True, "font_color": "#444444"})
        self.bold = book.add_format({"bold": True})
        self.wrap = book.add_format({"text_wrap": True, "valign": "top"})
        self.kind = {k: book.add_format({"num_format": f}) for k, f in FORMATS.items()}
        self.kind["general"] = None
        self.kind["text"] = None
        self.kind["bold"] = self.bold


def _write_table(book: Any, styles: _Styles, name: str, table: "pd.DataFrame",
                 currency: str) -> None:
    sheet = book.add_worksheet(name[:31])
    columns = [_excel_cells(table[c]) for c in table.columns]
    headers = [excel_header(str(c), name, currency, numeric=(kind == "number"))
               for c, (kind, _) in zip(table.columns, columns)]
    # formats and widths before the first row: in constant-memory mode a row is
    # written out (with its column formats) as soon as the next one starts
    for c, (col, (kind, cells)) in enumerate(zip(table.columns, columns)):
        fmt_kind = column_kind(str(col), name) if kind == "number" else "text"
        width = max(_header_width(headers[c]), _content_width(kind, fmt_kind, cells))
        sheet.set_column(c, c, width, styles.kind.get(fmt_kind))
    for c, text in enumerate(headers):
        sheet.write_string(0, c, text, styles.header)
    sheet.freeze_panes(1, 0)
    if len(headers):
        sheet.autofilter(0, 0, len(table), len(headers) - 1)
    # typed writers: write_row would test every string for numbers and URLs
    writers = [{"number": sheet.write_number, "bool": sheet.write_boolean,
                "text": sheet.write_string}[kind] for kind, _ in columns]
    for r, row in enumerate(zip(*(cells for _, cells in columns)), 1):
        for c, (write, value) in enumerate(zip(writers, row)):
            if value is not None:
                write(r, c, value)


def _write_front(book: Any, styles: _Styles, front: FrontSheet) -> None:
    sheet = book.add_worksheet(front.name[:31])
    ncols = max([len(front.header)] + [len(r) for r in front.rows])
    widths = front.widths or _front_widths(front, ncols)
    for c, w in enumerate(widths):
        sheet.set_column(c, c, w, styles.wrap if c in front.wrap_columns else None)
    r = 0
    sheet.write_string(r, 0, front.title, styles.title)
    r += 1
    for line in front.notes:
        sheet.write_string(r, 0, line, styles.note)
        r += 1
    r += 1
    head = r
    for c, text in enumerate(front.header):
        sheet.write_string(r, c, text, styles.header)
    for row in front.rows:
        r += 1
        for c, cell in enumerate(row):
            _write_cell(sheet, styles, r, c, cell, wrap=c in front.wrap_columns)
    sheet.freeze_panes(head + 1, front.frozen_columns)
    if front.autofilter and front.header:
        sheet.autofilter(head, 0, max(r, head), len(front.header) - 1)


def _write_cell(sheet: Any, styles: _Styles, r: int, c: int, cell: Cell,
                wrap: bool = False) -> None:
    v = cell.value
    if v is None or v == "" or (isinstance(v, float) and not math.isfinite(v)):
        return
    if isinstance(v, bool):
        sheet.write_boolean(r, c, v)
    elif isinstance(v, (int, float)):
        sheet.write_number(r, c, float(v), styles.kind.get(cell.kind))
    else:
        sheet.write_string(r, c, str(v), styles.wrap if wrap else styles.kind.get(cell.kind))


# --------------------------------------------------------------------------- widths
def _header_width(text: str) -> float:
    # headers wrap (see _Styles.header): the longest word, or half a long header
    longest = max((len(w) for w in text.split()), default=0)
    return float(min(MAX_WIDTH, max(MIN_WIDTH, longest + 2, min(len(text), 24) + 2)))


def _number_width(value: float, kind: str) -> int:
    if not math.isfinite(value):
        return 0
    digits = len(f"{abs(value):,.0f}")
    if kind in ("share", "prob"):
        digits = len(f"{abs(value) * 100:,.0f}") + 1
    if kind in ("period", "general"):
        digits = len(f"{value:g}")
    return digits + _DECIMALS.get(kind, 0) + (1 if value < 0 else 0)


def _content_width(kind: str, fmt_kind: str, cells: list[Any]) -> float:
    if not cells:
        return MIN_WIDTH
    if kind == "number":
        values = [v for v in cells if v is not None]
        if not values:
            return MIN_WIDTH
        widest = max(_number_width(max(values), fmt_kind), _number_width(min(values), fmt_kind))
        return float(min(MAX_WIDTH, max(MIN_WIDTH, widest + 2)))
    if kind == "bool":
        return 7.0
    longest = max((len(v) for v in cells if v is not None), default=0)
    return float(min(MAX_WIDTH, max(MIN_WIDTH, longest + 2)))


def _front_widths(front: FrontSheet, ncols: int) -> list[float]:
    widths = [float(MIN_WIDTH)] * ncols
    for c, text in enumerate(front.header):
        widths[c] = max(widths[c], _header_width(text))
    for row in front.rows:
        for c, cell in enumerate(row):
            v = cell.value
            if isinstance(v, bool) or v is None:
                n = 6
            elif isinstance(v, (int, float)):
                n = _number_width(float(v), cell.kind) + 2
            else:
                n = len(str(v)) + 2
            widths[c] = max(widths[c], min(float(n), 40.0 if c in front.wrap_columns
                                           else float(MAX_WIDTH)))
    return widths


# --------------------------------------------------------------------------- cells
def _excel_cells(column: "pd.Series") -> tuple[str, list[Any]]:
    """(kind, plain Python values) of one column; missing or non-finite values: None (blank)."""
    import numpy as np
    import pandas as pd

    if pd.api.types.is_bool_dtype(column):
        return "bool", column.tolist()
    if column.dtype == object and len(column) and all(
            isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
            for v in column):
        column = column.astype(float)      # e.g. periods: numbers in an object column
    if pd.api.types.is_numeric_dtype(column):
        values = column.to_numpy(dtype=float)
        cells: list[Any] = values.tolist()
        for i in np.flatnonzero(~np.isfinite(values)):
            cells[i] = None
        return "number", cells
    return "text", [None if v is None or (isinstance(v, float) and v != v) else str(v)
                    for v in column.astype(object).tolist()]


# --------------------------------------------------------------------------- run
def _money(v: Any) -> Cell:
    return Cell(v, "money")


def run_front_sheets(summary: dict[str, Any], tables: dict[str, "pd.DataFrame"],
                     period_days: float | None = None) -> list[FrontSheet]:
    """The `summary` and `contracts` sheets of a run's workbook."""
    per = "year" if period_days is not None and abs(period_days - 365.0) <= 1.5 else "period"
    sheets = [run_summary_sheet(summary, tables.get("cost_by_year"), per)]
    if "allocation" in tables and {"source", "element", "period", "contracted_t"} <= \
            set(tables["allocation"].columns):
        sheets.append(contracts_sheet(tables["allocation"], summary.get("periods") or []))
    return sheets


def run_summary_sheet(s: dict[str, Any], cost_by_year: "pd.DataFrame | None" = None,
                      per: str = "period") -> FrontSheet:
    """A run's key numbers in words and units, from its summary.json (and, when the
    run has one, the expected rows of its cost-by-year table)."""
    cur = s.get("currency") or "currency"
    rows: list[list[Cell]] = []

    def row(item: str, value: Any, kind: str = "general", unit: str = "",
            detail: str = "") -> None:
        rows.append([Cell(item, "bold"), Cell(value, kind), Cell(unit), Cell(detail)])

    risk = s.get("risk") or {}
    alpha, lam = risk.get("alpha"), risk.get("lambda")
    row("instance", s.get("instance"), detail=f"SHA-256 {s.get('instance_sha256', '')}")
    row("policy", s.get("policy"))
    row("status", s.get("status"), detail="" if s.get("status") == "optimal"
        else str(s.get("message") or ""))
    if s.get("status") == "optimal":
        row("objective", s.get("objective"), "money", cur,
            f"(1 - λ) × expected cost + λ × CVaR, λ = {lam:g}" if lam is not None else "")
        row("expected cost", s.get("expected_cost"), "money", cur,
            "probability-weighted over the scenarios, discounted, shortage penalty included")
        if alpha is not None:
            row(f"CVaR at {alpha:.0%}", s.get("cvar"), "money", cur,
                f"mean cost of the worst {1 - alpha:.0%} of scenario probability")
        for label, value, detail in _money_per_period(cost_by_year, per):
            row(label, value, "money", cur, detail)
        for e, t in (s.get("expected_shortage_by_element_t") or {}).items():
            row(f"expected shortage of {e}", t, "t", "t", "probability-weighted, all periods")
        if s.get("expected_shortage_value") is not None:
            row("expected shortage at the penalty prices", s["expected_shortage_value"],
                "money", cur, "probability-weighted shortage x penalty, discounted")
        row("expected shortage, all elements summed", s.get("expected_shortage_t"), "t", "t",
            "probability-weighted, all elements and periods (tonnes of different "
            "elements added)")
        row("worst-scenario shortage, all elements summed", s.get("worst_shortage_t"), "t",
            "t", "the scenario with the most shortage, all elements and periods")
        for stage, v in (s.get("max_single_country_share") or {}).items():
            where = (f"{v['country']}, {v['element']} {v['period']}, scenario {v['scenario']}"
                     if v.get("country") else "")
            definition = s.get("max_single_country_share_definition") or (
                "tonnes delivered from one third country over demand, one element, period "
                "and scenario (deliveries into stock count, so it can pass 100%)")
            row(f"largest third-country share, {stage}", v.get("share"), "share", "%",
                (where + "; " if where else "") + definition)
        if "expected_investment" in s:
            row("expected investment", s["expected_investment"], "money", cur,
                "probability-weighted cost of the projects built, discounted")
        for pid, b in (s.get("builds") or {}).items():
            if b.get("expected_size", 0) > 0:
                row(f"build {pid}", b["expected_size"], "size", "× full size",
                    f"expected size; built with probability {b.get('probability_built', 0):.0%}")
        for key, label in (("ws", "wait-and-see (WS)"), ("eev", "EEV"),
                           ("evpi", "EVPI = RP - WS"), ("vss", "VSS = EEV - RP")):
            if key in s:
                row(label, s[key], "money", cur)
    if lam is not None:
        row("CVaR weight λ", lam)
        row("CVaR level α", alpha)
    periods = s.get("periods") or []
    if periods:
        row("periods", f"{periods[0]} to {periods[-1]}" if len(periods) > 1 else periods[0],
            "period", "", f"{len(periods)} periods")
    row("scenarios", s.get("scenarios"), "count")
    tree = s.get("tree") or {}
    if tree:
        row("information tree", tree.get("nodes"), "count", "nodes",
            f"information {tree.get('information')}, first split in "
            f"{tree.get('first_split')}")
    if s.get("solver_version"):
        row("solver", f"HiGHS {s['solver_version']}",
            detail=f"{s.get('solve_seconds', 0):.2f} s solving")
    row("written", s.get("created_utc"), detail=f"sourcing {s.get('version', '')}")
    for w in s.get("warnings") or []:
        row("warning", w)
    return FrontSheet(
        name="summary", title=f"{s.get('instance')}: policy {s.get('policy')}, "
        f"{s.get('status')}", header=["item", "value", "unit", "detail"], rows=rows,
        notes=[f"Money in {cur}, discounted as in the objective; tonnes of oxide "
               "(t, per period unless said otherwise); shares as percentages.",
               "The tables of the CSV files follow, one sheet each; see docs/outputs.md."],
        widths=[34, 22, 12, 70], autofilter=False, wrap_columns=frozenset({3}))


def _money_per_period(table: "pd.DataFrame | None", per: str) -> list[tuple[str, float, str]]:
    """Money spent and shortage penalty per period (expected) from a cost-by-year table
    (rows ``scenario = expected``): discounted as the expected cost (the two add up
    to it over the periods), then undiscounted."""
    if table is None or not {"scenario", "cash", "penalty"} <= set(table.columns):
        return []
    expected = table[table["scenario"] == "expected"]
    n = len(expected)
    if not n:
        return []
    cash = "fees, deliveries, holding and investment less resale"
    penalty = "the value put on unmet demand (and stock-floor deficits), not money spent"
    out = []
    if {"cash_discounted", "penalty_discounted"} <= set(expected.columns):
        out += [(f"money spent per {per}, expected", float(expected["cash_discounted"].sum())
                 / n, f"{cash}; discounted as the expected cost, total / {n}"),
                (f"shortage penalty per {per}, expected",
                 float(expected["penalty_discounted"].sum()) / n,
                 f"{penalty}; discounted as the expected cost, total / {n}")]
    return out + [(f"money spent per {per}, expected, undiscounted",
                   float(expected["cash"].sum()) / n, f"{cash}; undiscounted, total / {n}"),
                  (f"shortage penalty per {per}, expected, undiscounted",
                   float(expected["penalty"].sum()) / n, f"{penalty}; undiscounted, total / {n}")]


def contracts_sheet(allocation: "pd.DataFrame", periods: Iterable[Any]) -> FrontSheet:
    """Contracted tonnes per supplier and element (rows) by period (columns).

    A contract decided at several information nodes (a lead time: decided once
    the scenario is partly known) counts with its probability-weighted expected
    value, sum over nodes of node_probability x contracted_t. Spot sources buy
    at delivery and have no contract; they are left out unless something is
    contracted from them.
    """
    import numpy as np

    a = allocation
    order = [str(p) for p in periods]
    keys = ["source", "element"]
    extra = [c for c in ("mined_in", "refined_in", "mode") if c in a.columns]
    weight = a["node_probability"].to_numpy(dtype=float) if "node_probability" in a.columns \
        else 1.0                      # one decision per period: no nodes to weigh
    a = a.assign(_p=a["period"].astype(str),
                 _x=a["contracted_t"].to_numpy(dtype=float) * weight)
    # one sum per source, element and period (rows: one per decision node), then
    # the periods as columns
    sums = a.groupby(keys + ["_p"], sort=False)["_x"].agg(["sum", "size"])
    several = bool(len(sums)) and int(sums["size"].max()) > 1
    grid = sums["sum"].unstack("_p")
    grid = grid.reindex(columns=[p for p in order if p in grid.columns] +
                        [p for p in grid.columns if p not in order])
    info = {(s, e): rest for s, e, *rest in
            a.drop_duplicates(keys)[keys + extra].itertuples(index=False, name=None)}
    shown = [c for c in extra if c != "mode"]
    values = grid.to_numpy(dtype=float)
    totals = np.nansum(values, axis=1) if values.size else np.zeros(len(grid))
    rows: list[list[Cell]] = []
    for key, vals, total in zip(grid.index, values.tolist(), totals.tolist()):
        meta = dict(zip(extra, info[key]))
        if meta.get("mode") == "spot" and total == 0.0:
            continue
        rows.append([Cell(key[0]), Cell(key[1])] + [Cell(meta[c]) for c in shown] +
                    [Cell(None if v != v else v, "t_grid") for v in vals] +
                    [Cell(total, "t_grid")])
    header = keys + shown + [str(c) for c in grid.columns] + ["total"]
    notes = ["Contracted tonnes (t) per period, by supplier and element; the total is "
             "the sum over the periods.",
             "Spot sources buy at delivery and have no contract (see the deliveries table)."]
    if several:
        notes.append("Contracts decided after the start (lead times) differ between "
                     "information nodes: shown is the expected contract, the sum over "
                     "nodes of node probability × contracted tonnes (allocation table: "
                     "one row per node).")
    return FrontSheet(name="contracts", title="Contracted tonnes by supplier and period",
                      header=header, rows=rows, notes=notes,
                      frozen_columns=len(keys))


# --------------------------------------------------------------------------- comparison
_COMPARISON_LABELS = {
    "status": "status",
    "expected_cost": "expected cost",
    "delta_expected_cost": "extra expected cost vs {base}",
    "delta_expected_cost_per_period": "extra expected cost per period vs {base}",
    "cvar": "CVaR",
    "delta_cvar": "extra CVaR vs {base}",
    "expected_shortage_t": "expected shortage",
    "avoided_expected_shortage_t": "expected shortage avoided vs {base}",
    "worst_shortage_t": "worst-scenario shortage",
    "avoided_worst_shortage_t": "worst-scenario shortage avoided vs {base}",
    "china_share_mining": "China's share of expected deliveries, mining",
    "china_share_refining": "China's share of expected deliveries, refining",
    "max_share_mining": "largest third-country share, mining",
    "max_share_mining_country": "  country of that share",
    "max_share_refining": "largest third-country share, refining",
    "max_share_refining_country": "  country of that share",
    "binding": "what binds (most negative duals)",
    "message": "message",
}
# (names of both the current tables and those with the cost-by-year split and the
# shares named by what they divide: whichever a table has is shown)
_COMPARISON_LABELS.update({
    "cash_per_year": "money spent per year, expected (discounted)",
    "delta_cash_per_year": "extra money spent per year vs {base} (discounted)",
    "penalty_per_year": "shortage penalty per year, expected (discounted)",
    "delta_penalty_per_year": "extra shortage penalty per year vs {base} (discounted)",
    "cash_per_year_undiscounted": "money spent per year, expected (undiscounted)",
    "delta_cash_per_year_undiscounted": "extra money spent per year vs {base} (undiscounted)",
    "penalty_per_year_undiscounted": "shortage penalty per year, expected (undiscounted)",
    "delta_penalty_per_year_undiscounted":
        "extra shortage penalty per year vs {base} (undiscounted)",
    "expected_shortage_t": "expected shortage, all elements summed",
    "avoided_expected_shortage_t": "expected shortage avoided vs {base}, all elements summed",
    "worst_shortage_t": "worst-scenario shortage, all elements summed",
    "expected_shortage_value": "expected shortage at the penalty prices (discounted)",
    "shortage_value_per_year": "expected shortage at the penalty prices per year "
                               "(discounted)",
    "binding": "what binds (saving per t of relaxation)",
    "china_share_of_deliveries_mining": "China's share of expected deliveries, mining",
    "china_share_of_deliveries_refining": "China's share of expected deliveries, refining",
    "max_share_of_demand_mining": "largest third-country share of demand, mining",
    "max_share_of_demand_mining_country": "  country of that share",
    "max_share_of_demand_refining": "largest third-country share of demand, refining",
    "max_share_of_demand_refining_country": "  country of that share",
    "largest_contracts": "largest contracts (expected t per period)",
})
_COMPARISON_KEYS_HEAD = ["status", "expected_cost", "delta_expected_cost",
                         "delta_expected_cost_per_period", "delta_cash_per_year",
                         "delta_penalty_per_year", "cash_per_year", "penalty_per_year",
                         "delta_cash_per_year_undiscounted",
                         "delta_penalty_per_year_undiscounted", "cash_per_year_undiscounted",
                         "penalty_per_year_undiscounted", "cvar"]
_COMPARISON_KEYS_SHORTAGE = ["expected_shortage_value", "shortage_value_per_year",
                             "expected_shortage_t", "avoided_expected_shortage_t",
                             "worst_shortage_t"]
_COMPARISON_KEYS_TAIL = ["china_share_mining", "china_share_refining",
                         "china_share_of_deliveries_mining", "china_share_of_deliveries_refining",
                         "max_share_mining", "max_share_mining_country", "max_share_refining",
                         "max_share_refining_country", "max_share_of_demand_mining",
                         "max_share_of_demand_mining_country", "max_share_of_demand_refining",
                         "max_share_of_demand_refining_country", "largest_contracts", "binding",
                         "message"]


def _comparison_keys(columns: list[str]) -> list[str]:
    """The key columns of a comparison table, the shortage per scenario interleaved
    with the shortage avoided in it."""
    keys = [c for c in _COMPARISON_KEYS_HEAD if c in columns]
    for c in columns:                   # per element, each with the shortage avoided
        if c.startswith("expected_shortage_t["):
            keys += [c] + [a for a in ["avoided_" + c] if a in columns]
    keys += [c for c in _COMPARISON_KEYS_SHORTAGE if c in columns]
    for c in columns:
        if c.startswith("shortage_t["):
            keys.append(c)
            avoided = "avoided_" + c
            if avoided in columns:
                keys.append(avoided)
    keys += [c for c in _COMPARISON_KEYS_TAIL if c in columns]
    return keys


def comparison_summary_sheet(table: "pd.DataFrame", instance: str,
                             currency: str) -> FrontSheet:
    """A comparison's key measures (rows, in words and units) per policy (columns)."""
    import pandas as pd

    columns = [str(c) for c in table.columns]
    policies = [str(p) for p in table["policy"]]
    base = policies[0] if policies else ""
    rows: list[list[Cell]] = []
    for col in _comparison_keys(columns):
        values = table[col].tolist()
        numeric = pd.api.types.is_numeric_dtype(table[col]) and not \
            pd.api.types.is_bool_dtype(table[col])
        if col == "message" and not any(isinstance(v, str) and v for v in values):
            continue
        kind = column_kind(col, "comparison") if numeric else "text"
        label = _COMPARISON_LABELS.get(col)
        if label is None:
            name, _, scen = col.partition("[")
            scen = scen.rstrip("]")
            label = {"avoided_shortage_t": f"shortage avoided in {scen} vs {base} (all "
                                           "elements summed)",
                     "shortage_t": f"shortage in {scen} (all elements summed)",
                     "expected_shortage_t": f"expected shortage of {scen}",
                     "avoided_expected_shortage_t": f"expected shortage of {scen} avoided "
                                                    f"vs {base}"}.get(name, col)
        rows.append([Cell(label.format(base=base), "bold"),
                     Cell(unit_of(kind, currency) if numeric else "")] +
                    [Cell(None if (v is None or (isinstance(v, float) and v != v)) else v,
                          kind) for v in values])
    notes = [f"Policies side by side; the first, {base}, is the baseline of every "
             "\"vs\" row. Money in " + (currency or "currency") + ", discounted as in "
             "the objective; tonnes of oxide (t); shares of expected delivered tonnes "
             "as percentages.",
             "A negative \"avoided\" figure means more shortage than the baseline. The "
             "full table is on the next sheet and in comparison.csv (docs/outputs.md)."]
    return FrontSheet(name="summary", title=f"{instance}: policies compared",
                      header=["measure", "unit"] + policies, rows=rows, notes=notes,
                      frozen_columns=1, autofilter=False,
                      widths=[46, 8] + [max(14.0, min(40.0, len(p) + 4)) for p in policies],
                      wrap_columns=frozenset(range(2, 2 + len(policies))))


def comparison_contracts_sheet(runs: dict[str, Any]) -> FrontSheet | None:
    """Contracted tonnes over the whole horizon per supplier and element (rows) and
    policy (columns): which suppliers, and how much, under each policy."""
    import pandas as pd

    totals: dict[str, "pd.Series"] = {}
    for policy, run in runs.items():
        alloc = getattr(run, "tables", {}).get("allocation")
        if alloc is None or not getattr(run, "has_solution", True):
            continue
        x = alloc["contracted_t"].to_numpy(dtype=float) * (
            alloc["node_probability"].to_numpy(dtype=float)
            if "node_probability" in alloc.columns else 1.0)
        frame = alloc.assign(_x=x)
        groups = frame.groupby(["source", "element"], sort=False)
        keep = groups["_x"].sum()
        spot = (groups["mode"].first() == "spot") if "mode" in frame.columns else \
            pd.Series(False, index=keep.index)
        totals[str(policy)] = keep[~(spot & (keep == 0.0))]
    if not totals:
        return None
    index: list[Any] = []
    for series in totals.values():
        index += [k for k in series.index if k not in index]
    rows = [[Cell(s), Cell(e)] + [Cell(float(t[(s, e)]) if (s, e) in t.index else None,
                                        "t_grid") for t in totals.values()]
            for s, e in index]
    return FrontSheet(
        name="contracts", title="Contracted tonnes over the horizon, by supplier and policy",
        header=["source", "element"] + [f"{p} (t)" for p in totals], rows=rows,
        notes=["Expected contracted tonnes (t), summed over all periods (for contracts "
               "decided at several information nodes, weighted by node probability).",
               "Per period: runs/<policy>/allocation.xlsx, sheet contracts. Spot sources "
               "buy at delivery and have no contract."],
        frozen_columns=2)


# --------------------------------------------------------------------------- sweep
_SWEEP_KEYS = ["param", "value", "cap", "status", "expected_cost", "cvar",
               "expected_shortage_t", "worst_shortage_t", "max_share_mining",
               "max_share_refining", "max_share_of_demand_mining",
               "max_share_of_demand_refining", "expected_investment"]


def sweep_summary_sheet(frontier: "pd.DataFrame", settings: dict[str, Any], instance: str,
                        currency: str) -> FrontSheet:
    """A sweep's key columns, one row per point."""
    import pandas as pd

    columns = [str(c) for c in frontier.columns]
    keys = [c for c in _SWEEP_KEYS if c in columns and c != "param"] + \
        [c for c in columns if c.startswith("size[")]
    if "message" in columns and frontier["message"].fillna("").astype(str).str.len().any():
        keys.append("message")
    kinds = {}
    for c in keys:
        numeric = pd.api.types.is_numeric_dtype(frontier[c]) and not \
            pd.api.types.is_bool_dtype(frontier[c])
        kinds[c] = column_kind(c, "frontier") if numeric else "text"
    rows = [[Cell(None if (v is None or (isinstance(v, float) and v != v)) else v, kinds[c])
             for c, v in zip(keys, values)]
            for values in frontier[keys].itertuples(index=False, name=None)]
    policy = settings.get("policy", "none")
    if "param" in settings:
        what = f"{settings['param']} (column value)"
    else:
        what = (f"the single-country cap (column cap; stage {settings.get('stage', 'both')}, "
                f"per {settings.get('per', 'element')})")
    notes = [f"One row per point: {what}, added to policy {policy}.",
             "Money in " + (currency or "currency") + ", discounted as in the objective; "
             "tonnes of oxide (t); shares as percentages. All columns: next sheet and "
             "frontier.csv (docs/outputs.md)."]
    return FrontSheet(name="summary", title=f"{instance}: sweep of "
                      f"{settings.get('param', 'the cap')} under policy {policy}",
                      header=[excel_header(c, "frontier", currency, kinds[c] != "text")
                              for c in keys], rows=rows, notes=notes)


def robustness_summary_sheet(conclusions: "pd.DataFrame", settings: dict[str, Any],
                             instance: str) -> FrontSheet:
    """A robustness study's conclusions: what the plan concludes, in how many of the
    draws it holds, and the inputs that flip it (one row per conclusion, those that
    do not hold in every draw first)."""
    import pandas as pd

    table = conclusions.copy()
    if len(table):
        table["_order"] = [0 if v is not None and not pd.isna(v) and not bool(v) else 1
                           for v in table["holds_in_every_draw"]]
        table = table.sort_values("_order", kind="stable")
    rows = []
    for r in table.itertuples(index=False):
        share = getattr(r, "holds_share")
        rows.append([Cell(str(r.statement), "text"),
                     Cell(None if share is None or pd.isna(share) else float(share), "share"),
                     Cell(str(r.flipped_by or ""), "text"),
                     Cell(str(r.draws_failing_with or ""), "text")])
    n = settings.get("draws", 0)
    policies = settings.get("policies", [])
    notes = [f"The plan is policy {policies[0] if policies else 'none'}"
             + (f", compared with {', '.join(policies[1:])}" if len(policies) > 1 else "")
             + f"; {n} joint draws of the inputs (seed {settings.get('seed', 0)}).",
             "holds in: the share of the draws (solved to optimality) in which the "
             "conclusion holds. Flipped by: where one input at a time makes it hold (the "
             "switch points); in the draws: the inputs whose values differ most where it "
             "fails. Every table is on the next sheets and in the CSV files "
             "(docs/outputs.md)."]
    return FrontSheet(name="summary", title=f"{instance}: how sure are we?",
                      header=["conclusion of the plan", "holds in (% of draws)",
                              "flipped by (one input at a time)", "in the draws, fails with"],
                      rows=rows, notes=notes, autofilter=False, widths=[60, 12, 50, 40],
                      wrap_columns=frozenset({0, 2, 3}))
