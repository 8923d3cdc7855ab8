"""Numbers for people: units, fixed decimals, no scientific notation.

The console tables (``compare``, ``sweep``, ``projects``), the Markdown files
beside the CSVs and the HTML reports show a number the way a briefing would:
money in millions of the instance's currency ("USD 239.0 m/yr"), tonnes with
one decimal ("927.7 t"), shares in percent ("21 %"), never ``9.71468e+09``.
CSV files keep the exact numbers (model.output.export.write_csv); only what people
read goes through here.

What a column holds is looked up by its name in :data:`COLUMNS`, a list of
(name, label, kind, group) specs: an exact name, or a prefix ending in ``[``
for the per-scenario and per-project columns (``shortage_t[jp-ban-2026]``).
A column not in the list is formatted by what its name says (``_t`` tonnes,
``share`` a share, ``cost`` money), so a new column shows sensibly before it
gets its own spec; a spec whose column is missing is simply not used.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Iterable

import pandas as pd

from ..safety import printable


@dataclass(frozen=True)
class Column:
    """How to show one column: `label` ("{}" is the text in brackets of a prefix
    column), `kind` (see :func:`cell`) and the report's table `group`."""

    name: str
    label: str
    kind: str
    group: str = "other"


# kinds: text, money (a total), money_rate (per period), delta_money,
# delta_money_rate, t, delta_t (signed tonnes), share, hhi, per_t (currency per
# tonne), probability, size, ratio, seconds, number, bool
COLUMNS: list[Column] = [
    Column("policy", "policy", "text", "key"),
    Column("param", "input", "text", "key"),
    Column("cap", "cap", "share", "key"),
    Column("status", "status", "text", "status"),
    Column("message", "message", "text", "status"),
    # cost
    Column("objective", "objective", "money", "cost"),
    Column("expected_cost", "expected cost", "money", "cost"),
    Column("cvar", "CVaR", "money", "cost"),
    Column("delta_expected_cost", "Δ expected cost", "delta_money", "cost"),
    Column("delta_expected_cost_per_period", "Δ expected cost per {per}", "delta_money_rate",
           "cost"),
    # the same per year split in money spent and penalty: discounted as the cost above
    # (so the parts add up to it), and undiscounted beside it (docs/outputs.md)
    Column("delta_cash_per_year", "Δ money spent per year", "delta_money_rate", "cost"),
    Column("delta_penalty_per_year", "Δ shortage penalty per year", "delta_money_rate", "cost"),
    Column("cash_per_year", "money spent per year", "money_rate", "cost"),
    Column("penalty_per_year", "shortage penalty per year", "money_rate", "cost"),
    Column("delta_cash_per_year_undiscounted", "Δ money spent per year, undiscounted",
           "delta_money_rate", "cost"),
    Column("delta_penalty_per_year_undiscounted", "Δ shortage penalty per year, undiscounted",
           "delta_money_rate", "cost"),
    Column("cash_per_year_undiscounted", "money spent per year, undiscounted", "money_rate",
           "cost"),
    Column("penalty_per_year_undiscounted", "shortage penalty per year, undiscounted",
           "money_rate", "cost"),
    Column("delta_cvar", "Δ CVaR", "delta_money", "cost"),
    Column("expected_investment", "expected investment", "money", "cost"),
    Column("ws", "WS", "money", "cost"),
    Column("eev", "EEV", "money", "cost"),
    Column("evpi", "EVPI", "money", "cost"),
    Column("vss", "VSS", "money", "cost"),
    # shortage
    Column("expected_shortage_t[", "expected shortage of {}", "t", "shortage"),
    Column("avoided_expected_shortage_t[", "avoided expected shortage of {}", "delta_t",
           "shortage"),
    Column("expected_shortage_value", "expected shortage at the penalty prices", "money",
           "shortage"),
    Column("shortage_value_per_year", "shortage at the penalty prices per year", "money_rate",
           "shortage"),
    Column("expected_shortage_t", "expected shortage, all elements summed", "t", "shortage"),
    Column("worst_shortage_t", "worst-scenario shortage, all elements summed", "t",
           "shortage"),
    Column("avoided_expected_shortage_t", "avoided expected shortage, all elements summed",
           "delta_t", "shortage"),
    Column("avoided_worst_shortage_t", "avoided worst-scenario shortage, all elements summed",
           "delta_t", "shortage"),
    Column("shortage_t[", "shortage in {}", "t", "scenario"),
    Column("avoided_shortage_t[", "avoided in {}", "delta_t", "avoided"),
    # shares of supply
    Column("max_share_of_demand_mining",
           "largest third-country share of demand, mining (any element, year, scenario)",
           "share", "shares"),
    Column("max_share_of_demand_mining_country", "mining country", "country", "shares"),
    Column("china_share_of_deliveries_mining", "China's share of deliveries, mining", "share",
           "shares"),
    Column("hhi_of_deliveries_mining", "HHI of deliveries, mining", "hhi", "shares"),
    Column("max_share_of_demand_refining",
           "largest third-country share of demand, refining (any element, year, scenario)",
           "share", "shares"),
    Column("max_share_of_demand_refining_country", "refining country", "country", "shares"),
    Column("china_share_of_deliveries_refining", "China's share of deliveries, refining",
           "share", "shares"),
    Column("hhi_of_deliveries_refining", "HHI of deliveries, refining", "hhi", "shares"),
    Column("largest_contracts", "largest contracts, expected t per {per}", "text",
           "binds"),
    Column("binding", "what binds", "text", "binds"),
    Column("binding_rows", "what binds (machine-readable)", "text", "machine"),
    # sweeps and project values
    Column("size[", "size built: {}", "size", "projects"),
    Column("solve_seconds", "solve time", "seconds", "other"),
    Column("expected_size", "expected size", "size", "projects"),
    Column("saving_if_allowed", "saving if allowed", "money", "projects"),
    Column("forced_investment", "investment if forced", "money", "projects"),
    Column("value_per_cost", "value per cost", "ratio", "projects"),
    # robustness studies (model.studies.robustness)
    Column("label", "varied input", "text", "key"),
    Column("statement", "conclusion of the plan", "text", "key"),
    Column("holds_share", "holds in, share of draws", "share", "key"),
    Column("flipped_by", "flipped by (one input at a time)", "text", "key"),
    Column("draws_failing_with", "in the draws, fails with", "text", "key"),
    Column("expected_cost_low", "expected cost, input low", "money", "cost"),
    Column("expected_cost_high", "expected cost, input high", "money", "cost"),
    Column("delta_expected_cost_low", "Δ expected cost, input low", "delta_money", "cost"),
    Column("delta_expected_cost_high", "Δ expected cost, input high", "delta_money", "cost"),
    Column("cost_swing", "swing of the expected cost", "money", "cost"),
    Column("expected_shortage_t_low[", "expected shortage of {}, input low", "t", "shortage"),
    Column("expected_shortage_t_high[", "expected shortage of {}, input high", "t",
           "shortage"),
    Column("cost_low[", "cost of {}, input low", "money", "cost"),
    Column("cost_high[", "cost of {}, input high", "money", "cost"),
    Column("delta_cost_base[", "{} against the plan", "delta_money", "cost"),
    Column("delta_cost_low[", "{} against the plan, input low", "delta_money", "cost"),
    Column("delta_cost_high[", "{} against the plan, input high", "delta_money", "cost"),
    Column("cost[", "cost of {}", "money", "cost"),
    Column("decisions_changed_low", "decisions changed, input low", "text", "binds"),
    Column("decisions_changed_high", "decisions changed, input high", "text", "binds"),
    Column("at", "at", "number", "key"),
    Column("text", "switch point", "text", "key"),
    # run tables
    Column("probability", "probability", "probability"),
    Column("node_probability", "node probability", "probability"),
    Column("share_of_demand", "share of demand", "share"),
    Column("price", "price", "per_t"),
    Column("cost", "cost", "money"),
    Column("reservation_cost", "reservation", "money"),
    Column("delivery_cost", "deliveries", "money"),
    Column("shortage_cost", "shortage penalty", "money"),
    Column("holding_cost", "holding", "money"),
    Column("resale_revenue", "resale revenue", "money"),
    Column("stock_deficit_cost", "stock deficit", "money"),
    Column("investment_cost", "investment", "money"),
    Column("size", "size", "size"),
    Column("reservation_fee", "reservation fee", "share"),
    # labels that are numbers (years): as written, no thousands separator
    Column("period", "period", "label"),
    Column("period_decided", "period decided", "label"),
    Column("first_output", "first output", "label"),
    Column("decided_in", "decided in", "label"),
    Column("contracted_t", "contracted", "t"),
    Column("capacity_t", "capacity", "t"),
    Column("committed_t", "committed", "t"),
    Column("expected_delivered_t", "expected deliveries", "t"),
    # many scenarios, summarised (model.output.scenario_summary)
    Column("statistic", "", "text"),
    Column("nodes", "nodes", "number"),
    Column("expected_contracted_t", "expected contracted", "t"),
    Column("least_contracted_t", "least at a node", "t"),
    Column("most_contracted_t", "most at a node", "t"),
    Column("probability_built", "probability built", "probability"),
    Column("regimes_and_events", "regimes and events", "text"),
    Column("regime", "regime", "text"),
    Column("element", "element", "text"),
    Column("event", "event", "text"),
    Column("cost_if_it_happens", "expected cost if it happens", "money"),
    Column("cost_if_not", "expected cost if not", "money"),
    Column("shortage_if_it_happens_t", "expected shortage if it happens", "t"),
    Column("shortage_if_not_t", "expected shortage if not", "t"),
    Column("median_shortage_t", "median shortage", "t"),
    Column("quantile_95_shortage_t", "95 % quantile of shortage", "t"),
    Column("largest_shortage_t", "largest shortage", "t"),
    Column("probability_of_shortage", "probability of some shortage", "probability"),
    Column("probability_of_more_shortage", "probability of more shortage than the baseline",
           "probability"),
    Column("largest_increase_t", "largest increase against the baseline", "t"),
    Column("largest_reduction_t", "largest reduction against the baseline", "t"),
]
_EXACT = {c.name: c for c in COLUMNS if not c.name.endswith("[")}
_PREFIX = [c for c in COLUMNS if c.name.endswith("[")]

# unit shown in a header (currency, period word filled in) and after a number in a cell
_HEADER_UNIT = {"money": "{cur} m", "delta_money": "{cur} m", "money_rate": "{cur} m/{per}",
                "delta_money_rate": "{cur} m/{per}", "t": "t", "delta_t": "t", "share": "%",
                "per_t": "{cur}/t", "seconds": "s"}


def period_word(period_days: float) -> str:
    """"yr" for yearly periods (365 days give or take a leap day), else "period"."""
    return "yr" if abs(float(period_days) - 365.0) <= 1.5 else "period"


def spec(name: str, overrides: dict[str, str] | None = None) -> Column:
    """The spec of a column: from COLUMNS, or inferred from its name."""
    if overrides and name in overrides:    # the label as known, else the name as it is
        known = _EXACT.get(name)
        return Column(name, known.label if known else name, overrides[name])
    if name in _EXACT:
        return _EXACT[name]
    for c in _PREFIX:
        if name.startswith(c.name) and name.endswith("]"):
            return Column(name, c.label.replace("{}", name[len(c.name):-1]), c.kind, c.group)
    low = name.lower()
    label = name.replace("_", " ")
    if low.endswith("_t") or "_t[" in low:
        return Column(name, label[:-2] if low.endswith("_t") else label,
                      "delta_t" if low.startswith(("delta", "avoided")) else "t")
    if "share" in low:
        return Column(name, label, "share")
    if any(w in low for w in ("cost", "cash", "penalty", "investment", "revenue")):
        per_year = low.endswith(("per_year", "per_period"))
        delta = low.startswith("delta")
        return Column(name, label, ("delta_" if delta else "") +
                      ("money_rate" if per_year else "money"))
    return Column(name, label, "number")


def header(name: str, currency: str = "", per: str = "period",
           overrides: dict[str, str] | None = None) -> str:
    """A column's header with its unit: "expected cost (USD m)", "shortage in normal (t)"."""
    c = spec(name, overrides)
    label = c.label.replace("{per}", "year" if per == "yr" else per)
    unit = _HEADER_UNIT.get(c.kind)
    if unit is None:
        return label
    cur = printable(currency) if currency else "million"
    unit = unit.format(cur=cur, per=per).replace("million m", "million")
    return f"{label} ({unit})"


def _finite(v: Any) -> float | None:
    if v is None or isinstance(v, (bool, str)):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def number(v: float) -> str:
    """A plain number without a unit: whole from 100,000 up, never in e-notation
    for large values."""
    a = abs(v)
    if v == int(v) and a < 1e15:
        return f"{v:,.0f}"
    if a >= 1e5:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:,.1f}"
    if a >= 1:
        return f"{v:,.3f}".rstrip("0").rstrip(".")
    return f"{v:.4g}"


def _signed(text: str, v: float) -> str:
    return text if text.startswith("-") or text == "0" or v == 0 else "+" + text


def cell(value: Any, kind: str, currency: str = "", per: str = "period",
         unit: bool = False) -> str:
    """One value as text; with `unit` the unit follows ("USD 239.0 m/yr", "927.7 t",
    "21 %"), else the header carries it. Missing values: ""."""
    # a value that rounds to zero is shown as zero, never "-0.0"
    return _NEGATIVE_ZERO.sub("", _cell(value, kind, currency, per, unit))


_NEGATIVE_ZERO = re.compile(r"-(?=0[0.,]*(?![\d.,]))")


def _cell(value: Any, kind: str, currency: str, per: str, unit: bool) -> str:
    if kind in ("text", "country", "label") or isinstance(value, (bool, str)):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return ""
        if kind == "text" and isinstance(value, float):    # a number among text cells
            return number(value)
        if kind == "label" and isinstance(value, float) and value == int(value):
            return str(int(value))                         # 2026.0 read back: 2026
        return printable(value)
    v = _finite(value)
    if v is None:
        return ""
    cur = printable(currency) if currency else ""
    if kind in ("money", "delta_money", "money_rate", "delta_money_rate"):
        text = f"{v / 1e6:,.1f}"
        if kind.startswith("delta"):
            text = _signed(text, round(v / 1e6, 1))
        if not unit:
            return text
        rate = f"/{per}" if kind.endswith("rate") else ""
        return f"{cur} {text} m{rate}".strip() if cur else f"{text} million{rate}"
    if kind in ("t", "delta_t"):
        text = f"{v:,.1f}"
        if kind == "delta_t":
            text = _signed(text, round(v, 1))
        return f"{text} t" if unit else text
    if kind == "share":
        pct = v * 100
        text = f"{pct:.0f}" if abs(pct) >= 10 or pct == 0 else f"{pct:.1f}"
        return f"{text} %" if unit else text
    if kind == "per_t":
        text = f"{v:,.0f}"
        return f"{cur} {text}/t".strip() if unit else text
    if kind == "hhi":
        return f"{v:.3f}"
    if kind == "probability":
        return f"{v:.4g}"
    if kind in ("size", "ratio"):
        return f"{v:,.2f}"
    if kind == "seconds":
        return f"{v:.2f} s" if unit else f"{v:.2f}"
    return number(v)


def is_numeric_kind(kind: str) -> bool:
    return kind not in ("text", "country", "bool", "label")


def format_frame(df: pd.DataFrame, currency: str = "", per: str = "period",
                 overrides: dict[str, str] | None = None) -> pd.DataFrame:
    """A copy of `df` as text, numbers formatted and headers with units.

    Every column of `df` keeps its place: two columns whose headers would read
    the same get their column names in brackets, never one in place of the other.
    """
    out = {}
    heads = [header(str(n), currency, per, overrides) for n in df.columns]
    seen = {h: heads.count(h) for h in heads}
    for name, head in zip(df.columns, heads):
        c = spec(str(name), overrides)
        kind = c.kind
        if kind not in ("text", "country", "label") and \
                not pd.api.types.is_numeric_dtype(df[name]) \
                and not pd.api.types.is_bool_dtype(df[name]):
            # text in a column named like a number (e.g. a price range "1..2"): as it is
            if not all(_finite(v) is not None or v is None or v == "" for v in df[name]):
                kind = "text"
        if pd.api.types.is_bool_dtype(df[name]):
            kind = "text"
        if seen[head] > 1:
            head = f"{head} [{name}]"
        out[head] = [cell(v, kind, currency, per) for v in df[name]]
    return pd.DataFrame(out, index=df.index, columns=list(out))


def numeric_columns(df: pd.DataFrame, overrides: dict[str, str] | None = None) -> list[bool]:
    """Which columns of `df` hold numbers (right-aligned in tables)."""
    return [is_numeric_kind(spec(str(n), overrides).kind) and
            (pd.api.types.is_numeric_dtype(df[n]) and not pd.api.types.is_bool_dtype(df[n]))
            for n in df.columns]


def key_scenarios(table: pd.DataFrame, most: int = 8) -> list[str]:
    """The scenarios to show of a comparison: all if at most `most`, else the `most`
    with the largest baseline (first row) shortage, in the table's order."""
    cols = [c for c in table.columns if c.startswith("shortage_t[") and c.endswith("]")]
    names = [c[len("shortage_t["):-1] for c in cols]
    if len(names) <= most or not len(table):
        return names
    base = pd.to_numeric(table.iloc[0][cols], errors="coerce").fillna(0.0).to_numpy()
    ranked = sorted(range(len(names)), key=lambda i: (-base[i], i))[:most]
    return [names[i] for i in sorted(ranked)]


MACHINE = "machine"     # the group of columns for programs only: not in tables for people


def for_people(columns: Iterable[str]) -> list[str]:
    """The columns a table for people shows (all but the machine-readable ones)."""
    return [c for c in columns if spec(str(c)).group != MACHINE]


def in_groups(columns: Iterable[str]) -> dict[str, list[str]]:
    """Columns by the report group of their spec, in the order given."""
    out: dict[str, list[str]] = {}
    for name in columns:
        out.setdefault(spec(name).group, []).append(name)
    return out
