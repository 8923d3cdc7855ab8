"""Explaining an infeasible policy in the words of the instance.

Shortage keeps every scenario feasible, so infeasibility can only come from
policy floors (domestic, recycled), stockpile targets and budgets, and from
signed contract terms (committed volumes, minimum takes) that a cap forbids. The elastic
re-solve gives each of those rows a non-negative slack, minimises the total
relative violation, and reports every row that still needs slack: which rule,
element, period, country and scenario, what it requires and what the
instance's capacities allow.
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo

from ..formulation.built import BuiltModel
from ..formulation.matrix import scenario_words
from ..solve.solve import SolveOptions, solve_model

ELASTIC_FAMILIES = ("committed", "min_take", "max_single_country_share", "min_domestic_share",
                    "min_recycled_share", "min_stock_days", "build", "budget")


def _available_t(built: BuiltModel, row: dict) -> float:
    """The most the row's sources could deliver (or be contracted) for its unit and period."""
    d = built.data
    t = d.periods.index(row["period"]) if row["period"] in d.periods else None
    if t is None:
        return float("nan")
    arcs = ~built.policy.excluded_arcs
    if row["constraint"] == "min_domestic_share":
        arcs &= d.arc_country(row["stage"]) == d.home
    else:
        arcs &= d.arc_recycled
    units = {label: unit for r in built.policy.share_rules if r.label == row["rule"]
             for label, unit in r.units}
    arcs &= np.isin(d.arc_element, units.get(row["element"], []))
    if row["slot"] < 0:
        return float((d.capacity_t[arcs, t] * d.is_contract[arcs]).sum())
    w = int(built.index.slot_rep[row["slot"]])
    return float((d.capacity_t[arcs, t] * d.availability[arcs, t, w]).sum())


def _where(built: BuiltModel, row: dict) -> str:
    """'in the plan', 'in scenario a' or 'in scenarios a, b (node 2026.1)'."""
    d, ix = built.data, built.index
    if row["slot"] < 0:
        return "in the plan"
    s = int(row["slot"])
    scen = np.flatnonzero(ix.slot_of[ix.slot_t[s]] == s)
    words = scenario_words(d, scen)
    if len(scen) > 1 and d.tree is not None:
        label = d.tree.labels(d.periods)[int(d.decision_node[ix.slot_t[s] + 1, scen[0]])]
        words += f" (node {label})"
    return f"in {words}"


def _capping_rules(built: BuiltModel, row: dict) -> str:
    """The caps that cover a source's element and period, in words."""
    d = built.data
    names = sorted({r.label for r in built.policy.share_rules
                    if r.family == "max_single_country_share"
                    and any(row["element"] in (d.elements[e] for e in unit) or label ==
                            row["element"] for label, unit in r.units)})
    return "caps: " + ", ".join(names) if names else "no cap: an exclusion or a budget"


def explain_infeasibility(built: BuiltModel, options: SolveOptions | None = None,
                          limit: int = 8) -> list[str]:
    """Sentences naming the conflicting rules and figures (empty if none found)."""
    m = built.model
    d = built.data
    slacks = []
    for name in ELASTIC_FAMILIES:
        comp = m.component(name)
        meta = built.row_meta.get(name)
        if comp is None or meta is None or meta.empty:
            continue
        var = pyo.Var(list(comp.keys()), within=pyo.NonNegativeReals)
        m.add_component(f"elastic_{name}", var)
        for pos, idx in enumerate(comp.keys()):
            con = comp[idx]
            scale = max(1.0, abs(float(meta["rhs"].iloc[pos])))
            if con.has_lb():
                con.set_value((con.lower, con.body + var[idx], None))
            else:
                con.set_value((None, con.body - var[idx], con.upper))
            slacks.append((name, pos, var[idx], scale))
    if not slacks:
        return []
    for obj in m.component_objects(pyo.Objective, active=True):
        obj.deactivate()
    m.elastic_objective = pyo.Objective(
        expr=sum(v / scale for _, _, v, scale in slacks), sense=pyo.minimize)
    res = solve_model(built, options)
    if not res.optimal:
        return [f"the elastic re-solve ended {res.status}; no explanation available"]
    violated = []
    for name, pos, var, scale in slacks:
        value = float(res.values[f"elastic_{name}"][pos])  # same order as the family's rows
        if value > 1e-6 * scale:
            violated.append((value / scale, name, pos, value))
    violated.sort(reverse=True)
    out = []
    for _, name, pos, slack in violated[:limit]:
        row = built.row_meta[name].iloc[pos].to_dict()
        where = _where(built, row)
        if name == "committed":
            out.append(f"{row['rule']}: {row['rhs']:,.6g} t of {row['element']} "
                       f"{row['period']} is committed (signed), but the policy allows at most "
                       f"{row['rhs'] - slack:,.6g} t to be contracted there "
                       f"({_capping_rules(built, row)})")
        elif name == "min_take":
            out.append(f"{row['rule']}: its minimum take forces {slack:,.6g} t more "
                       f"{row['element']} {row['period']} {where} than the policy's caps let "
                       f"it deliver ({_capping_rules(built, row)})")
        elif name == "max_single_country_share":
            kind = "contracted" if row["slot"] < 0 else "delivered"
            out.append(f"{row['rule']}: {row['country']}-"
                       f"{'mined' if row['stage'] == 'mining' else 'refined'} {row['element']} "
                       f"{row['period']} may be {kind} up to {row['rhs']:,.6g} t {where}, but "
                       f"signed terms need {row['rhs'] + slack:,.6g} t "
                       f"(committed volumes and minimum takes)")
        elif name == "build":
            out.append(f"{row['rule']}: project {row['element']} must be built to size "
                       f"{row['rhs']:,.6g}, but at most {row['rhs'] - slack:,.6g} can be "
                       f"{where} (a budget or the other rules forbid more)")
        elif name == "budget":
            out.append(f"{row['rule']}: the expected cost cannot go below "
                       f"{row['rhs'] + slack:,.6g} {d.currency}, above the budget of "
                       f"{row['rhs']:,.6g}")
        elif name == "min_stock_days":
            out.append(f"{row['rule']}: {row['element']} {row['period']} needs "
                       f"{row['rhs']:,.6g} t of stock at the end of the period {where}, "
                       f"but at most {row['rhs'] - slack:,.6g} t can be held "
                       f"(stock capacity and supply)")
        else:
            who = (f"{d.home}-{'mined' if row['stage'] == 'mining' else 'refined'} sources"
                   if name == "min_domestic_share" else "recycled sources")
            verb = "contracted from" if row["slot"] < 0 else "delivered by"
            out.append(f"{row['rule']}: {row['element']} {row['period']} needs "
                       f"{row['rhs']:,.6g} t from {who} {where}, but they can supply at most "
                       f"{_available_t(built, row):,.6g} t ({verb} them)")
    if len(violated) > limit:
        out.append(f"... and {len(violated) - limit} more rows")
    return out
