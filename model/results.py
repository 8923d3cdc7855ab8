"""Results: dense solution arrays -> tidy tables and summary metrics.

Everything here is computed from :class:`~model.data.ProblemData` and the
solution arrays with numpy; nothing reads Pyomo objects. Units are in the
column names (``_t`` tonnes per period; prices in currency per tonne; costs
in currency, discounted as in the objective).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .data import ProblemData
from .built import BuiltModel
from .solve import SolveResult



@dataclass
class Solution:
    """An optimal solution as dense arrays in the data's (k, e, t, w) shapes."""

    contracted_t: np.ndarray   # (K, T, W) the contract of scenario w's decision node
    delivered_t: np.ndarray    # (K, T, W)
    shortage_t: np.ndarray     # (E, T, W)
    stock_t: np.ndarray        # (E, T, W) end of period
    objective: float
    surplus_t: np.ndarray | None = None      # (E, T, W) sold at the resale price
    floors: pd.DataFrame | None = None       # stock-floor rows that bind, with deficits


def stock_floor_rows(built: BuiltModel, result: SolveResult, stock_t: np.ndarray
                     ) -> pd.DataFrame:
    """Every stock floor per rule, unit, period and scenario: the floor (days of
    demand), whether it binds there (``released`` in an emergency and its refill
    periods), the target, the stock held, and a soft floor's deficit with its
    discounted cost."""
    d = built.data
    cols = ["rule", "element", "period", "scenario", "node", "floor_t", "released",
            "target_t", "stock_t", "deficit_t", "deficit_cost"]
    meta = built.row_meta.get("min_stock_days")
    deficit_of: dict[tuple, float] = {}
    if meta is not None and len(meta) and "deficit" in result.values:
        for key, v in zip(zip(meta["rule"], meta["element"], meta["period"], meta["scenario"]),
                          result.values["deficit"]):
            deficit_of[key] = max(float(v), 0.0)
    labels = np.array(d.tree.labels(d.periods), dtype=object) if d.tree is not None else None
    W = len(d.scenarios)
    parts = []
    for rule in built.policy.stock_rules:
        t = np.repeat(np.asarray(rule.periods, dtype=np.int64), W)
        w = np.tile(np.arange(W), len(rule.periods))
        for (label, unit), binds in zip(rule.units, rule.binds):
            floor = rule.fraction * d.demand_t[unit][:, t, w].sum(axis=0)
            weight = binds[t, np.minimum(w, binds.shape[1] - 1)]
            periods = [d.periods[i] for i in t]
            scen = [d.scenarios[i] for i in w]
            deficit = np.array([deficit_of.get((rule.label, label, p, sc), 0.0)
                                for p, sc in zip(periods, scen)])
            parts.append(pd.DataFrame({
                "rule": rule.label, "element": label, "period": periods, "scenario": scen,
                "node": labels[d.decision_node[t + 1, w]] if labels is not None
                and d.information == "history" else "",
                "floor_t": floor, "released": weight <= 0, "target_t": weight * floor,
                "stock_t": stock_t[unit][:, t, w].sum(axis=0), "deficit_t": deficit,
                "deficit_cost": deficit * (rule.deficit_cost or 0.0) * d.discount[t]}))
    return pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)


def solution_arrays(built: BuiltModel, result: SolveResult) -> Solution:
    """Scatter the solver's values (per scenario, model.expand) into dense arrays."""
    d = built.data
    E, T, W = d.demand_t.shape
    x = np.zeros((d.n_arcs, T, W))
    q = np.zeros((d.n_arcs, T, W))
    if len(built.x_index):
        x[tuple(built.x_index.T)] = result.values["x"]
    if len(built.q_index):
        q[tuple(built.q_index.T)] = result.values["q"]
    # tiny negative round-off from the solver is not a delivery
    stock = np.maximum(result.values["stock"].reshape(E, T, W), 0.0)
    surplus = result.values.get("z")
    return Solution(np.maximum(x, 0.0), np.maximum(q, 0.0),
                    np.maximum(result.values["u"].reshape(E, T, W), 0.0), stock,
                    float(result.objective or 0.0),
                    np.zeros((E, T, W)) if surplus is None
                    else np.maximum(surplus.reshape(E, T, W), 0.0),
                    stock_floor_rows(built, result, stock))


# --------------------------------------------------------------------------- metrics
def cost_breakdown(d: ProblemData, s: Solution) -> pd.DataFrame:
    """Per-scenario discounted cost C_w = reservation + deliveries + shortage + holding
    - resale revenue + stock deficit cost."""
    disc = d.discount
    fee = np.einsum("t,k,kt,ktw->w", disc, d.reservation_fee, d.price, s.contracted_t)
    delivery = np.einsum("t,ktw,ktw->w", disc, d.delivery_price, s.delivered_t)
    shortage = np.einsum("t,e,etw->w", disc, d.shortage_penalty, s.shortage_t)
    holding = np.einsum("t,e,etw->w", disc, d.holding_cost, s.stock_t)
    surplus = s.surplus_t if s.surplus_t is not None else np.zeros_like(s.stock_t)
    resale = np.einsum("t,e,etw->w", disc, d.resale_price, surplus)
    deficit = np.zeros(len(d.scenarios))
    if s.floors is not None and len(s.floors):
        w = pd.Index(d.scenarios).get_indexer(s.floors["scenario"])
        np.add.at(deficit, w, s.floors["deficit_cost"].to_numpy(float))
    return pd.DataFrame({
        "scenario": d.scenarios, "probability": d.probability,
        "reservation_cost": fee, "delivery_cost": delivery, "shortage_cost": shortage,
        "holding_cost": holding, "resale_revenue": resale, "stock_deficit_cost": deficit,
        "cost": fee + delivery + shortage + holding - resale + deficit,
        "shortage_t": s.shortage_t.sum(axis=(0, 1)),
        "surplus_t": surplus.sum(axis=(0, 1)),
    })


def cvar(costs: np.ndarray, probability: np.ndarray, alpha: float) -> float:
    r"""CVaR_alpha of a discrete distribution: mean of the worst 1 - alpha mass.

    Equal to :math:`\min_\eta \eta + E[(C-\eta)^+]/(1-\alpha)`.
    """
    order = np.argsort(-np.asarray(costs, dtype=float), kind="stable")
    c, p = np.asarray(costs, float)[order], np.asarray(probability, float)[order]
    tail = 1.0 - alpha
    taken = np.minimum(p, np.maximum(tail - np.concatenate(([0.0], np.cumsum(p)[:-1])), 0.0))
    return float((taken * c).sum() / tail)


def country_delivered_t(d: ProblemData, s: Solution, stage: str) -> tuple[list[str], np.ndarray]:
    """Countries at `stage` and delivered tonnes per (country, element, period, scenario)."""
    country = d.arc_country(stage)
    names, code = np.unique(country, return_inverse=True) if d.n_arcs else (np.array([]),
                                                                            np.zeros(0, int))
    E, T, W = d.demand_t.shape
    out = np.zeros((len(names), E, T, W))
    np.add.at(out, (code, d.arc_element), s.delivered_t)
    return [str(c) for c in names], out


def max_single_country_share(d: ProblemData, s: Solution) -> dict[str, Any]:
    """Largest third-country share per stage, over scenarios with positive probability.

    Share = delivered tonnes from one country over scenario demand, per
    element, period and scenario (DESIGN.md). Ties go to the first country
    alphabetically, then the first element, period and scenario.
    """
    out: dict[str, Any] = {}
    for stage in ("mining", "refining"):
        names, tonnes = country_delivered_t(d, s, stage)
        third = np.array([c != d.home for c in names], dtype=bool)
        ok = (d.demand_t > 0) & (d.probability > 0)[None, None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(ok[None], tonnes / d.demand_t[None], -1.0)
        share[~third] = -1.0
        best = share.max() if share.size else -1.0
        if best <= 0:
            out[stage] = {"share": 0.0, "country": None, "element": None, "period": None,
                          "scenario": None}
            continue
        c, e, t, w = np.unravel_index(np.argmax(np.round(share, 9)), share.shape)
        out[stage] = {"share": float(share[c, e, t, w]), "country": names[c],
                      "element": d.elements[e], "period": _plain(d.periods[t]),
                      "scenario": d.scenarios[w]}
    return out


def _plain(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


# --------------------------------------------------------------------------- tables
def _arc_frame(d: ProblemData) -> pd.DataFrame:
    src = d.sources.iloc[d.arc_source].reset_index(drop=True)
    return pd.DataFrame({"source": src["id"], "mined_in": src["mined_in"],
                         "refined_in": src["refined_in"], "mode": src["mode"],
                         "element": np.array(d.elements, dtype=object)[d.arc_element]})


def allocation_table(built: BuiltModel, s: Solution) -> pd.DataFrame:
    """The plan: one row per source, element, period with capacity, and decision node.

    A contract without a lead time is decided at the root (one row); one with
    a lead time L is decided at each node of period t - L (a row per node, with
    the period whose information it used in ``decided_in``). Expected
    deliveries are conditional on the row's node.
    """
    d = built.data
    K, T = d.capacity_t.shape
    D = d.decision_node
    labels = np.array(d.tree.labels(d.periods), dtype=object)
    drow = d.decision_row
    p = d.probability
    parts = []
    for r in np.unique(drow[d.capacity_t > 0]) if K else []:
        k, t = np.nonzero((d.capacity_t > 0) & (drow == r))
        nodes, first, inv = np.unique(D[r], return_index=True, return_inverse=True)
        member = np.zeros((len(p), len(nodes)))
        member[np.arange(len(p)), inv] = p
        p_node = member.sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            expected = (s.delivered_t[k, t, :] @ member) / np.where(p_node > 0, p_node, 1.0)
        n_k, n_g = len(k), len(nodes)
        parts.append(pd.DataFrame({
            "k": np.repeat(k, n_g), "t": np.repeat(t, n_g), "g": np.tile(nodes, n_k),
            "contracted_t": s.contracted_t[k][:, :, first][np.arange(n_k), t].reshape(-1)
            if n_k else np.zeros(0),
            "node_probability": np.tile(p_node, n_k),
            "expected_delivered_t": expected.reshape(-1),
            "decided_in": "root" if r == 0 else d.periods[r - 1]}))
    rows = pd.concat(parts, ignore_index=True).sort_values(["k", "t", "g"], kind="stable") \
        if parts else pd.DataFrame(columns=["k", "t", "g", "contracted_t", "node_probability",
                                            "expected_delivered_t", "decided_in"])
    k, t = rows["k"].to_numpy(int), rows["t"].to_numpy(int)
    base = d.base_demand_t[d.arc_element[k], t]
    x = rows["contracted_t"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(base > 0, x / np.where(base > 0, base, 1.0), 0.0)
    tab = _arc_frame(d).iloc[k].reset_index(drop=True)
    tab["period"] = np.array(d.periods, dtype=object)[t]
    tab["decided_in"] = rows["decided_in"].to_numpy(dtype=object)
    tab["node"] = labels[rows["g"].to_numpy(int)]
    tab["node_probability"] = rows["node_probability"].to_numpy(float)
    tab["capacity_t"] = d.capacity_t[k, t]
    tab["committed_t"] = d.committed_t[k, t]
    tab["contracted_t"] = x
    tab["price"] = d.price[k, t]
    tab["share_of_demand"] = share
    tab["expected_delivered_t"] = rows["expected_delivered_t"].to_numpy(float)
    tab["excluded"] = built.policy.excluded_arcs[k] if K else []
    return tab[["source", "mined_in", "refined_in", "mode", "element", "period",
                "contracted_t", "price", "share_of_demand", "capacity_t", "committed_t",
                "expected_delivered_t", "decided_in", "node", "node_probability",
                "excluded"]]


def tree_table(d: ProblemData) -> pd.DataFrame:
    """The information tree: ``node, period, parent, probability, scenarios``
    (scenario ids joined by ';'), and the number of scenarios."""
    tree = d.tree
    labels = np.array(tree.labels(d.periods), dtype=object)
    T1, W = tree.node_of.shape
    members: dict[int, list[str]] = {}
    for r in range(T1):
        for w, n in enumerate(tree.node_of[r].tolist()):
            members.setdefault(n, []).append(d.scenarios[w])
    period = np.array([""] + list(d.periods), dtype=object)[tree.period + 1]
    return pd.DataFrame({
        "node": labels, "period": period,
        "parent": np.where(tree.parent >= 0, labels[np.maximum(tree.parent, 0)], ""),
        "probability": tree.probability,
        "scenarios": [";".join(members[n]) for n in range(tree.n_nodes)],
        "n_scenarios": [len(members[n]) for n in range(tree.n_nodes)]})


def tree_summary(d: ProblemData) -> dict[str, Any]:
    """The size of the information tree for summary.json."""
    tree = d.tree
    per = tree.nodes_per_period()
    return {"information": d.information, "nodes": int(tree.n_nodes),
            "nodes_per_period": {str(_plain(p)): n for p, n in zip(d.periods, per)},
            "first_split": next((str(_plain(p)) for p, n in zip(d.periods, per) if n > 1), None)}


def deliveries_table(built: BuiltModel, s: Solution) -> pd.DataFrame:
    """One row per source, element, period and scenario with capacity available."""
    d = built.data
    arcs = _arc_frame(d)
    avail = d.capacity_t[:, :, None] * d.availability
    k, t, w = np.nonzero((avail > 0) | (s.delivered_t > 0))
    tab = arcs.iloc[k].reset_index(drop=True)
    tab.insert(0, "probability", d.probability[w])
    tab.insert(0, "scenario", np.array(d.scenarios, dtype=object)[w])
    tab["period"] = np.array(d.periods, dtype=object)[t]
    tab["available_t"] = avail[k, t, w]
    tab["contracted_t"] = s.contracted_t[k, t, w]
    tab["delivered_t"] = s.delivered_t[k, t, w]
    tab["price"] = d.delivery_price[k, t, w]
    return tab


def balance_table(d: ProblemData, s: Solution) -> pd.DataFrame:
    """Per scenario, element and period: demand, deliveries, shortage and stock."""
    E, T, W = d.demand_t.shape
    e, t, w = (a.reshape(-1) for a in np.meshgrid(np.arange(E), np.arange(T), np.arange(W),
                                                  indexing="ij"))
    delivered = np.zeros((E, T, W))
    np.add.at(delivered, d.arc_element, s.delivered_t)
    start = np.concatenate([np.broadcast_to(d.stock_initial_t[:, None, None], (E, 1, W)),
                            s.stock_t[:, :-1, :]], axis=1)
    return pd.DataFrame({
        "scenario": np.array(d.scenarios, dtype=object)[w], "probability": d.probability[w],
        "element": np.array(d.elements, dtype=object)[e],
        "period": np.array(d.periods, dtype=object)[t],
        "demand_t": d.demand_t[e, t, w], "delivered_t": delivered[e, t, w],
        "shortage_t": s.shortage_t[e, t, w], "stock_start_t": start[e, t, w],
        "stock_t": s.stock_t[e, t, w],
        "surplus_t": (s.surplus_t if s.surplus_t is not None
                      else np.zeros_like(s.stock_t))[e, t, w],
    })


def duals_table(built: BuiltModel, result: SolveResult) -> pd.DataFrame:
    """Marginal values in the words of the instance (sign convention in docs/).

    * ``demand`` rows: the balance duals summed over scenarios, i.e. the change
      in the objective per extra tonne of demand in every scenario (positive
      when cost rises).
    * policy rows (caps, floors, stock days, budget): the change in the
      objective per unit of relaxation (one more tonne allowed under a cap, one
      tonne less required by a floor); negative or zero.
    * ``capacity`` rows: the change in the objective per extra tonne of a
      source's capacity for an element and period (through the contract bound
      and each scenario's delivery bound); negative or zero.
    """
    frames = []
    bal = built.row_meta["balance"].copy()
    bal["value"] = result.duals["balance"]
    demand = bal.groupby(["element", "period"], sort=False, as_index=False)["value"].sum()
    demand.insert(0, "constraint", "demand")
    frames.append(demand.assign(rule="", country="", stage="", scenario="", node="",
                                source=""))
    for name in ("committed", "min_take", "max_single_country_share", "min_domestic_share",
                 "min_recycled_share", "min_stock_days", "budget"):
        meta = built.row_meta.get(name)
        if meta is None or meta.empty:
            continue
        dual = result.duals[name]
        relax = np.where(meta["sense"].to_numpy() == ">=", -dual, dual)
        frames.append(meta.drop(columns=["sense", "rhs", "demand_t"]).assign(value=relax,
                                                                         source=""))
    frames.append(_capacity_duals(built, result))
    out = pd.concat(frames, ignore_index=True)
    out["value"] = out["value"].where(out["value"].abs() > 1e-9, 0.0)
    return out[["constraint", "rule", "source", "element", "period", "country", "stage",
                "scenario", "node", "value"]]


def _capacity_duals(built: BuiltModel, result: SolveResult) -> pd.DataFrame:
    d = built.data
    K, T = d.capacity_t.shape
    value = np.zeros((K, T))
    tol = 1e-7
    if len(built.x_index):
        k, t = built.x_index[:, 0], built.x_index[:, 1]
        xv, rc = result.values["x"], result.reduced_costs["x"]
        at_ub = xv >= d.capacity_t[k, t] - tol * np.maximum(1.0, d.capacity_t[k, t])
        np.add.at(value, (k, t), np.where(at_ub, np.minimum(rc, 0.0), 0.0))
    if len(built.q_index):
        k, t, w = built.q_index.T
        a = d.availability[k, t, w]
        ub = a * d.capacity_t[k, t]
        qv, rc = result.values["q"], result.reduced_costs["q"]
        at_ub = qv >= ub - tol * np.maximum(1.0, ub)
        np.add.at(value, (k, t), np.where(at_ub, a * np.minimum(rc, 0.0), 0.0))
    k, t = np.nonzero(d.capacity_t > 0)
    arcs = _arc_frame(d).iloc[k].reset_index(drop=True)
    return pd.DataFrame({
        "constraint": "capacity", "rule": "", "source": arcs["source"],
        "element": arcs["element"], "period": np.array(d.periods, dtype=object)[t],
        "country": "", "stage": "", "scenario": "", "node": "", "value": value[k, t]})


def summary_metrics(built: BuiltModel, s: Solution) -> dict[str, Any]:
    """The numbers of summary.json that follow from the solution (DESIGN.md)."""
    d = built.data
    costs = cost_breakdown(d, s)
    positive = d.probability > 0
    per_scenario_shortage = costs["shortage_t"].to_numpy()
    return {
        "objective": s.objective,
        "expected_cost": float((costs["cost"] * costs["probability"]).sum()),
        "cvar": cvar(costs["cost"].to_numpy(), d.probability, d.risk_alpha),
        "expected_shortage_t": float((per_scenario_shortage * d.probability).sum()),
        "worst_shortage_t": float(per_scenario_shortage[positive].max()) if positive.any()
        else 0.0,
        "max_single_country_share": max_single_country_share(d, s),
        "scenario_costs": {w: float(c) for w, c in zip(d.scenarios, costs["cost"])},
    }
