"""What binds, in words: the marginal values of duals.csv said the way a briefing would.

``duals.csv`` has one row per constraint, period, scenario (or node); its
``value`` is the change in the objective per unit of relaxation, <= 0 for the
rules below (docs/outputs.md). Here the rows of one rule are added up (over
periods, scenarios and nodes: the saving from relaxing the rule by one tonne in
every period and scenario it applies to), turned into a positive **saving**
and said in the instance's words, one phrase per row family:

* ``min_take``: "caremag-lacq's Tb minimum take: relaxing it by 1 t a year
  saves USD 2.29 m";
* ``committed``: "lynas-hree's signed Dy volume: relaxing it by 1 t a year saves ...";
* ``max_single_country_share``: "the 65 % cap on AU-mined Nd: relaxing it ...";
* ``min_domestic_share``: "the 10 % floor on JP-mined Tb: relaxing it ...";
* ``min_recycled_share``: "the 20 % recycled floor on Dy: relaxing it ...";
* ``min_stock_days``: "the 60-day stock floor on Tb: relaxing it ...";
* ``budget``: "the budget of USD 20,000 m: relaxing it by USD 1 m saves ...";
* ``capacity``: "lynas-hree's Tb capacity: relaxing it by 1 t a year saves ...".

Sources are named by their id (short, unique and what every table uses);
countries by their ISO code. The saving is in the objective's units: expected
cost, discounted at the instance's rate (with CVaR, the objective's mix).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

# the rule rows a comparison ranks (`binding`): policy rules and contract terms
RULE_FAMILIES = ("max_single_country_share", "min_domestic_share", "min_recycled_share",
                 "min_stock_days", "budget", "min_take", "committed")
KEYS = ["constraint", "rule", "source", "country", "stage", "element"]


@dataclass
class Binding:
    """One rule's rows of duals.csv added up: who it is and what relaxing it saves."""

    constraint: str
    rule: str             # the policy rule's label, or the source id of a contract term
    source: str           # capacity rows: the source id
    country: str
    stage: str
    element: str          # an element, or a group for a per-group rule
    saving: float         # objective saved per unit of relaxation (t; budget: currency), >= 0
    words: str = ""


def _money(v: float, cur: str) -> str:
    """"USD 2.29 m", "USD 26,400": three significant digits."""
    if v == 0 or not math.isfinite(v):
        return f"{cur} 0".strip()
    rounded = float(f"{v:.3g}")
    if abs(rounded) >= 1e6:
        m = rounded / 1e6
        text = f"{m:,.2f}" if abs(m) < 10 else f"{m:,.1f}" if abs(m) < 100 else f"{m:,.0f}"
        return f"{cur} {text} m".strip()
    return f"{cur} {rounded:,.0f}".strip() if abs(rounded) >= 1 else f"{cur} {v:.3g}".strip()


def _pct(share: Any) -> str:
    if isinstance(share, (int, float)) and not isinstance(share, bool):
        return f"{share * 100:.4g} %"
    if isinstance(share, dict) and share:       # a share that changes over time
        values = [v for v in share.values() if isinstance(v, (int, float))]
        if values:
            lo, hi = min(values), max(values)
            return f"{lo * 100:.4g} %" if lo == hi else \
                f"{lo * 100:.4g}–{hi * 100:.4g} %"
    return ""


def rule_of(inst: Any, label: str) -> Any:
    """The policy rule a row label names (``crma65.max_single_country_share[0]``), or None."""
    if inst is None or not isinstance(label, str) or "." not in label:
        return None
    name, _, rest = label.rpartition(".")
    family, _, index = rest.partition("[")
    pol = getattr(inst, "policies", {}).get(name)
    try:
        return list(getattr(pol, family))[int(index.rstrip("]"))]
    except (AttributeError, ValueError, IndexError, TypeError):
        return None


def in_words(b: Binding, inst: Any = None, currency: str = "", per: str = "year") -> str:
    """One rule's phrase: "caremag-lacq's Tb minimum take: relaxing it by 1 t a year
    saves USD 2.29 m"."""
    rule = rule_of(inst, b.rule)
    what: str
    if b.constraint == "min_take":
        what = f"{b.rule}'s {b.element} minimum take"
    elif b.constraint == "committed":
        what = f"{b.rule}'s signed {b.element} volume"
    elif b.constraint == "capacity":
        what = f"{b.source}'s {b.element} capacity"
    elif b.constraint == "max_single_country_share":
        share = _pct(getattr(rule, "share", None))
        done = "mined" if b.stage == "mining" else "refined"
        plan = " (contracts)" if getattr(rule, "applies_to", "") == "plan" else ""
        what = f"the {share + ' ' if share else ''}cap on {b.country}-{done} {b.element}{plan}"
    elif b.constraint == "min_domestic_share":
        share = _pct(getattr(rule, "share", None))
        done = "mined" if b.stage == "mining" else "refined"
        what = f"the {share + ' ' if share else ''}floor on {b.country}-{done} {b.element}"
    elif b.constraint == "min_recycled_share":
        share = _pct(getattr(rule, "share", None))
        what = f"the {share + ' ' if share else ''}recycled floor on {b.element}"
    elif b.constraint == "min_stock_days":
        days = getattr(rule, "days", None)
        soft = " (soft)" if getattr(rule, "deficit_cost", None) else ""
        what = (f"the {days:g}-day" if isinstance(days, (int, float)) else "the") + \
            f" stock floor{soft} on {b.element}"
    elif b.constraint == "budget":
        amount = getattr(rule, "amount", None)
        what = "the budget" + (f" of {_money(amount, currency)}"
                               if isinstance(amount, (int, float)) else "")
        return f"{what}: relaxing it by {_money(1e6, currency)} saves " \
            f"{_money(b.saving * 1e6, currency)}"
    else:
        what = " ".join(x for x in (b.constraint, b.rule, b.source, b.country, b.stage,
                                    b.element) if x)
    period = "a year" if per in ("yr", "year") else "a period"
    return f"{what}: relaxing it by 1 t {period} saves {_money(b.saving, currency)}"


def binding_rows(duals: pd.DataFrame, inst: Any = None, currency: str = "",
                 per: str = "year", families: tuple[str, ...] | None = RULE_FAMILIES,
                 top: int | None = None) -> list[Binding]:
    """The rules of `duals` (rows of `families`; None: every family but demand) whose
    relaxation saves something, the largest saving first, each with its words."""
    if duals is None or duals.empty:
        return []
    rows = duals[duals["constraint"] != "demand"]
    if families is not None:
        rows = rows[rows["constraint"].isin(families)]
    value = pd.to_numeric(rows["value"], errors="coerce").fillna(0.0)
    rows = rows[value < 0]
    if rows.empty:
        return []
    keyed = rows[KEYS].fillna("").astype(str).assign(value=pd.to_numeric(rows["value"]))
    sums = keyed.groupby(KEYS, sort=False)["value"].sum()
    sums = sums[sums < 0].sort_values(kind="stable")
    if top is not None:
        sums = sums.head(top)
    out = []
    for key, v in sums.items():
        b = Binding(*key, saving=float(-v))
        b.words = in_words(b, inst, currency, per)
        out.append(b)
    return out


def binding_text(items: list[Binding]) -> str:
    """The `binding` cell of a comparison: the phrases, joined by "; "."""
    return "; ".join(b.words for b in items)


def binding_json(items: list[Binding]) -> str:
    """The `binding_rows` cell: the same rules as JSON (a list of objects with the
    keys of duals.csv, ``saving`` per unit, and ``words``), for programs."""
    return json.dumps([asdict(b) for b in items], ensure_ascii=False)
