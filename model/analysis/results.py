"""Results: dense solution arrays -> tidy tables and summary metrics.

Everything here is computed from :class:`~model.input.data.ProblemData` and the
solution arrays with numpy; nothing reads Pyomo objects. Units are in the
column names (``_t`` tonnes per period; prices in currency per tonne; costs
in currency, discounted as in the objective).
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..input.data import ProblemData
from ..formulation.built import BuiltModel
from ..solve.solve import SolveResult



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
    built_size: np.ndarray | None = None     # (P, T, W) project size decided in t (full = 1)
    avoided_t: np.ndarray | None = None      # (E, T, W) demand avoided by projects
    # several buyers: stock received from and sent to other members (E, T, W)
    received_t: np.ndarray | None = None
    sent_t: np.ndarray | None = None


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
    """Scatter the solver's values (per scenario, model.solve.expand) into dense arrays."""
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
    dense = {key: (np.zeros((E, T, W)) if result.values.get(key) is None
                   else np.maximum(result.values[key].reshape(E, T, W), 0.0))
             for key in ("z", "r")}
    P = d.projects.n if d.projects is not None else 0
    size = np.zeros((P, T, W))
    if built.y_index is not None and len(built.y_index):
        size[tuple(built.y_index.T)] = np.maximum(result.values["y"], 0.0)
    moved = {key: np.maximum(result.values[key].reshape(E, T, W), 0.0)
             for key in ("m_in", "m_out") if result.values.get(key) is not None}
    if d.buyers is not None:          # several buyers: no member, no transfer
        for key in ("m_in", "m_out"):
            moved.setdefault(key, np.zeros((E, T, W)))
    return Solution(np.maximum(x, 0.0), np.maximum(q, 0.0),
                    np.maximum(result.values["u"].reshape(E, T, W), 0.0), stock,
                    float(result.objective or 0.0), dense["z"],
                    stock_floor_rows(built, result, stock), size, dense["r"],
                    moved.get("m_in"), moved.get("m_out"))


# --------------------------------------------------------------------------- metrics
def cost_parts(d: ProblemData, s: Solution) -> dict[str, np.ndarray]:
    """Each cost of each period and scenario, undiscounted (T, W), currency.

    Cash: reservation fees (on contracts), deliveries (at the price paid),
    holding, investment (in the period decided, or as annuities over a project's
    life), minus resale revenue. Penalties (not cash): shortage at its penalty,
    soft stock floors' deficits. Terminal (a credit, not cash): the value of the
    stock left after the last period, in the last period.
    """
    T, W = len(d.periods), len(d.scenarios)
    surplus = s.surplus_t if s.surplus_t is not None else np.zeros_like(s.stock_t)
    deficit = np.zeros((T, W))
    if s.floors is not None and len(s.floors):
        t = pd.Index(d.periods).get_indexer(s.floors["period"])
        w = pd.Index(d.scenarios).get_indexer(s.floors["scenario"])
        np.add.at(deficit, (t, w), s.floors["deficit_cost"].to_numpy(float) / d.discount[t])
    invest = np.zeros((T, W))
    pj = d.projects
    if pj is not None and pj.n and s.built_size is not None:
        fixed = np.where(pj.integer, pj.fixed_cost / pj.max_size, 0.0)   # per unit of size
        # charged in the period decided, or as annuities over the project's life
        invest = np.einsum("p,pst,psw->tw", pj.cost + fixed, pj.charge, s.built_size)
    terminal = np.zeros((T, W))
    if d.terminal_value is not None and T:
        terminal[T - 1] = d.terminal_value @ s.stock_t[:, T - 1, :]
    parts = {
        "reservation": np.einsum("k,kt,ktw->tw", d.reservation_fee, d.price, s.contracted_t),
        "delivery": np.einsum("ktw,ktw->tw", d.delivery_price, s.delivered_t),
        "holding": np.einsum("e,etw->tw", d.holding_cost, s.stock_t),
        "investment": invest,
        "resale": np.einsum("e,etw->tw", d.resale_price, surplus),
        "shortage": np.einsum("e,etw->tw", d.shortage_penalty, s.shortage_t),
        "deficit": deficit,
        "terminal": terminal,
    }
    if d.buyers is not None:        # several buyers: stock moved between members (cash)
        parts["transfer"] = np.einsum("e,etw->tw", d.buyers.transfer_cost, s.received_t)
    return parts


def cost_breakdown(d: ProblemData, s: Solution) -> pd.DataFrame:
    """Per-scenario discounted cost C_w = reservation + deliveries + shortage + holding
    - resale revenue + stock deficit cost + investment - terminal stock value."""
    parts = {k: d.discount @ v for k, v in cost_parts(d, s).items()}
    surplus = s.surplus_t if s.surplus_t is not None else np.zeros_like(s.stock_t)
    moved = {"transfer_cost": parts["transfer"]} if "transfer" in parts else {}
    table = pd.DataFrame({
        "scenario": d.scenarios, "probability": d.probability,
        "reservation_cost": parts["reservation"], "delivery_cost": parts["delivery"],
        "shortage_cost": parts["shortage"], "holding_cost": parts["holding"],
        "resale_revenue": parts["resale"], "stock_deficit_cost": parts["deficit"],
        "investment_cost": parts["investment"], "terminal_value": parts["terminal"],
        **moved,
        "cost": parts["reservation"] + parts["delivery"] + parts["shortage"]
        + parts["holding"] - parts["resale"] + parts["deficit"] + parts["investment"]
        - parts["terminal"],
        "shortage_t": s.shortage_t.sum(axis=(0, 1)),
        "surplus_t": surplus.sum(axis=(0, 1)),
    })
    if moved:
        table["cost"] += parts["transfer"]
    return table.pipe(_with_worst_case, d)


def _with_worst_case(costs: pd.DataFrame, d: ProblemData) -> pd.DataFrame:
    """Under doubt on the probabilities (`risk.ambiguity`), each scenario's worst-case
    probability beside its own."""
    if d.ambiguity <= 0:
        return costs
    q = worst_case_probability(costs["cost"].to_numpy(), d.probability, d.ambiguity)
    return costs.assign(worst_case_probability=q)


def cost_by_year(d: ProblemData, s: Solution) -> pd.DataFrame:
    """Per scenario and period, and expected: money spent apart from penalties.

    ``cash`` is what is paid (fees, deliveries, holding, investment, less resale and,
    in the last period, less the terminal value of the stock left: as if it were
    sold), undiscounted and discounted; ``penalty`` the shortage penalty plus soft
    stock floors' deficit costs (a valuation, not cash); ``terminal`` shows the
    terminal value on its own (it is inside ``cash``). The discounted sum of cash +
    penalty over the periods is the scenario cost. Rows ``scenario = expected``
    weight by probability.
    """
    parts = cost_parts(d, s)
    terminal = parts["terminal"]
    cash = parts["reservation"] + parts["delivery"] + parts["holding"] + \
        parts["investment"] - parts["resale"] - terminal
    if "transfer" in parts:       # several buyers: stock moved between members
        cash = cash + parts["transfer"]
    penalty = parts["shortage"] + parts["deficit"]
    shortage = s.shortage_t.sum(axis=0)                                    # (T, W)
    T, W = cash.shape
    disc = d.discount[:, None]
    per = pd.DataFrame({
        "scenario": np.repeat(np.array(d.scenarios, dtype=object), T),
        "probability": np.repeat(d.probability, T),
        "period": np.tile(np.array(d.periods, dtype=object), W),
        "cash": cash.T.reshape(-1), "cash_discounted": (cash * disc).T.reshape(-1),
        "penalty": penalty.T.reshape(-1), "penalty_discounted": (penalty * disc).T.reshape(-1),
        "terminal": terminal.T.reshape(-1),
        "terminal_discounted": (terminal * disc).T.reshape(-1),
        "shortage_t": shortage.T.reshape(-1)})
    p = d.probability
    expected = pd.DataFrame({
        "scenario": "expected", "probability": 1.0, "period": np.array(d.periods, dtype=object),
        "cash": cash @ p, "cash_discounted": (cash * disc) @ p, "penalty": penalty @ p,
        "penalty_discounted": (penalty * disc) @ p, "terminal": terminal @ p,
        "terminal_discounted": (terminal * disc) @ p, "shortage_t": shortage @ p})
    return pd.concat([expected, per], ignore_index=True)


def investment_cost(d: ProblemData, s: Solution) -> np.ndarray:
    """(W,) discounted project cost of each scenario's builds: cost x size, plus the
    fixed cost of an all-or-nothing build, at the decision's period (or as annuities
    over the project's life inside the horizon)."""
    W = len(d.scenarios)
    pj = d.projects
    if pj is None or pj.n == 0 or s.built_size is None:
        return np.zeros(W)
    built = s.built_size
    fixed = np.where(pj.integer, pj.fixed_cost / pj.max_size, 0.0)   # per unit of size
    return np.einsum("t,p,pst,psw->w", d.discount, pj.cost + fixed, pj.charge, built)


def added_capacity_t(d: ProblemData, s: Solution) -> np.ndarray:
    """(P, K, T, W) t/period each project's builds add to each arc, online periods only."""
    pj = d.projects
    online = pj.online()                                         # (P, Tdec, T)
    active = np.einsum("pdt,pdw->ptw", online.astype(float), s.built_size)
    return pj.capacity[:, :, :, None] * active[:, None, :, :]


def cvar_tail(costs: np.ndarray, probability: np.ndarray, alpha: float) -> np.ndarray:
    """(W,) the probability each scenario gives to the worst 1 - alpha mass (the
    weights of :func:`cvar`: the costliest first, the last one in part)."""
    order = np.argsort(-np.asarray(costs, dtype=float), kind="stable")
    p = np.asarray(probability, float)[order]
    tail = 1.0 - alpha
    taken = np.minimum(p, np.maximum(tail - np.concatenate(([0.0], np.cumsum(p)[:-1])), 0.0))
    out = np.zeros(len(p))
    out[order] = taken
    return out


def cvar_tail_warning(scenarios: list[str], costs: np.ndarray, probability: np.ndarray,
                      alpha: float) -> str | None:
    """A warning when the worst 1 - alpha of probability lies in one scenario (of
    several): the CVaR is then that scenario's cost, not the mean of a tail."""
    p = np.asarray(probability, float)
    if (p > 0).sum() < 2 or not 0.0 < alpha < 1.0:
        return None
    taken = cvar_tail(costs, p, alpha)
    inside = np.flatnonzero(taken > 1e-12)
    if len(inside) != 1:
        return None
    w = int(inside[0])
    return (f"the CVaR at alpha {alpha:g} is the cost of one scenario, {scenarios[w]}: its "
            f"probability ({p[w]:.4g}) holds the whole worst {1 - alpha:.4g} of the "
            "distribution, so the CVaR measures that scenario alone, not a tail of several")


def worst_case_probability(costs: np.ndarray, probability: np.ndarray,
                           theta: float) -> np.ndarray:
    r"""(W,) the distribution within total-variation distance `theta` of `probability`
    that gives the largest expected cost: up to :math:`\theta/2` of probability
    moved from the cheapest scenarios (cheapest first) to the dearest one (Jiang and
    Guan 2018). Its expectation is :math:`\tfrac{\theta}{2}\max_w C_w +
    (1-\tfrac{\theta}{2})\, CVaR_{\theta/2}(C)`. Ties keep the scenario order."""
    c = np.asarray(costs, dtype=float)
    q = np.asarray(probability, dtype=float).copy()
    if theta <= 0 or len(q) < 2:
        return q
    worst = int(np.argmax(c))
    move = min(theta / 2, 1.0 - q[worst])
    q[worst] += move
    for w in np.argsort(c, kind="stable"):           # cheapest first
        if move <= 0:
            break
        if w == worst:
            continue
        take = min(q[w], move)
        q[w] -= take
        move -= take
    return q


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


SHARE_DEFINITION = ("tonnes delivered from one third country over the scenario's demand, "
                    "per element, period and scenario (deliveries into stock count, so it "
                    "can exceed 100 %); the largest over scenarios with positive probability")


def max_single_country_share(d: ProblemData, s: Solution) -> dict[str, Any]:
    """Largest third-country share per stage, over scenarios with positive probability.

    Share = delivered tonnes from one country over scenario demand, per
    element, period and scenario (DESIGN.md). Ties go to the first country
    alphabetically, then the first element, period and scenario.
    """
    out: dict[str, Any] = {}
    for stage in ("mining", "refining"):
        names, tonnes = country_delivered_t(d, s, stage)
        third = _third_countries(d, names)
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


def _third_countries(d: ProblemData, names: list[str]) -> np.ndarray:
    """(C,) True for third countries (not the home); with several buyers (C, E): not
    the home countries of the element's buyer."""
    if d.buyers is None:
        return np.array([c != d.home for c in names], dtype=bool)
    home = [set(h) for h in d.buyers.home]
    return np.array([[c not in home[b] for b in d.buyers.element_buyer] for c in names],
                    dtype=bool).reshape(len(names), len(d.elements))


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
    offered = d.capacity_t > 0      # base capacity, or capacity a project could add
    if d.projects is not None and d.projects.n:
        offered |= d.projects.potential() > 0
    for r in np.unique(drow[offered]) if K else []:
        k, t = np.nonzero(offered & (drow == r))
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
        "avoided_t": (s.avoided_t if s.avoided_t is not None
                      else np.zeros_like(s.stock_t))[e, t, w],
    })


def capacity_added_table(d: ProblemData, s: Solution) -> pd.DataFrame:
    """Expected t/period each project adds (capacity) or avoids (demand), per element
    and period: what the builds deliver over time (for the chart)."""
    pj = d.projects
    cols = ["project", "element", "period", "kind", "expected_t"]
    if pj is None or pj.n == 0 or s.built_size is None:
        return pd.DataFrame(columns=cols)
    active = np.einsum("pdt,pdw,w->pt", pj.online().astype(float), s.built_size,
                       d.probability)                                      # (P, T)
    E = len(d.elements)
    per_element = np.zeros((pj.n, E, len(d.periods)))
    np.add.at(per_element, (slice(None), d.arc_element), pj.capacity)
    rows = []
    for kind, amount in (("capacity", per_element), ("avoided demand", pj.reduces)):
        p, e, t = np.nonzero(amount * active[:, None, :] > 1e-9)
        rows.append(pd.DataFrame({
            "project": np.array(pj.ids, dtype=object)[p],
            "element": np.array(d.elements, dtype=object)[e],
            "period": np.array(d.periods, dtype=object)[t], "kind": kind,
            "expected_t": (amount * active[:, None, :])[p, e, t]}))
    return pd.concat(rows, ignore_index=True)[cols]


def projects_table(d: ProblemData, s: Solution) -> pd.DataFrame:
    """The builds: one row per project, period decided and decision node with a size.

    ``size`` is in units of the project's full size; ``first_output`` is the
    first period the build adds capacity (``after <last period>`` when beyond
    the horizon); ``added_<e>_t`` / ``avoided_<e>_t`` the most it adds or avoids
    per period; ``cost`` the undiscounted investment at that size.
    """
    pj = d.projects
    elements = d.elements
    cap_cols = [f"added_{e}_t" for e in elements]
    red_cols = [f"avoided_{e}_t" for e in elements]
    base = ["project", "period_decided", "node", "node_probability", "size", "first_output",
            "integer", "cost"]
    if pj is None or pj.n == 0 or s.built_size is None:
        return pd.DataFrame(columns=base)
    labels = np.array(d.tree.labels(d.periods), dtype=object)
    D = d.decision_node
    node_p = np.bincount(D.reshape(-1), weights=np.tile(d.probability, D.shape[0]))
    rows = []
    per_element_cap = np.zeros((pj.n, len(elements)))
    np.maximum.at(per_element_cap.T, d.arc_element, pj.capacity.max(axis=2).T)
    per_element_red = pj.reduces.max(axis=2)
    T = len(d.periods)
    for p in range(pj.n):
        for tau in np.flatnonzero(pj.decide[p]):
            nodes, first = np.unique(D[tau + 1], return_index=True)
            for g, w in zip(nodes.tolist(), first.tolist()):
                size = float(s.built_size[p, tau, w])
                if size <= 1e-9:
                    continue
                out = int(tau + pj.build_time[p])
                row = {"project": pj.ids[p], "period_decided": d.periods[tau],
                       "node": labels[g], "node_probability": float(node_p[g]), "size": size,
                       "first_output": d.periods[out] if out < T else f"after {d.periods[-1]}",
                       "integer": bool(pj.integer[p]),
                       "cost": size * pj.cost[p] + (pj.fixed_cost[p] if pj.integer[p] else 0.0)}
                row.update({c: size * v for c, v in zip(cap_cols, per_element_cap[p])})
                row.update({c: size * v for c, v in zip(red_cols, per_element_red[p])})
                rows.append(row)
    used = [c for c, v in zip(cap_cols, per_element_cap.any(axis=0)) if v] + \
        [c for c, v in zip(red_cols, per_element_red.any(axis=0)) if v]
    return pd.DataFrame(rows, columns=base + cap_cols + red_cols)[base + used]


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
                 "min_recycled_share", "min_stock_days", "build_stock", "budget",
                 "shared_contract_capacity", "shared_delivery_capacity"):
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
    # where projects can add capacity, the bounds are rows (model.formulation.investment):
    # deliveries q <= a (cap + added) and contracts x <= cap + added on every path
    arc_of = {(sid, e): k for k, (sid, e) in enumerate(zip(
        d.sources["id"].to_numpy()[d.arc_source],
        np.array(d.elements, dtype=object)[d.arc_element]))}
    scen = {w: i for i, w in enumerate(d.scenarios)}
    for fam in ("delivery_capacity", "contract_capacity"):
        meta = built.row_meta.get(fam)
        if meta is None or meta.empty or fam not in result.duals:
            continue
        k = np.array([arc_of[sid, e] for sid, e in zip(meta["rule"], meta["element"])])
        t = np.array([d.periods.index(p) for p in meta["period"]])
        per_cap = result.duals[fam].copy()
        if fam == "delivery_capacity":
            w = np.array([scen[n] for n in meta["scenario"]])
            per_cap *= d.availability[k, t, w]
        np.add.at(value, (k, t), np.minimum(per_cap, 0.0))
    offered = d.capacity_t > 0
    if d.projects is not None and d.projects.n:
        offered |= d.projects.potential() > 0
    k, t = np.nonzero(offered)
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
        **shortage_by_element(d, s),
        "max_single_country_share": max_single_country_share(d, s),
        "max_single_country_share_definition": SHARE_DEFINITION,
        "scenario_costs": {w: float(c) for w, c in zip(d.scenarios, costs["cost"])},
        "ambiguity": ({"total_variation": d.ambiguity,
                       "worst_case_expected_cost": float(
                           (costs["cost"] * costs["worst_case_probability"]).sum())}
                      if d.ambiguity > 0 else None),
        "expected_investment": float((costs["investment_cost"] * costs["probability"]).sum()),
        "builds": build_summary(d, s),
    }


def shortage_by_element(d: ProblemData, s: Solution) -> dict[str, Any]:
    """Expected shortage per element (t, over all periods) and its value at the
    penalty prices (expected, discounted as in the objective: the expected
    shortage cost), in total and per element."""
    tonnes = np.einsum("etw,w->e", s.shortage_t, d.probability)
    value = np.einsum("e,t,etw,w->e", d.shortage_penalty, d.discount, s.shortage_t,
                      d.probability)
    return {
        "expected_shortage_by_element_t": {e: float(v) for e, v in zip(d.elements, tonnes)},
        "expected_shortage_value": float(value.sum()),
        "expected_shortage_value_by_element": {e: float(v) for e, v in zip(d.elements, value)},
    }


def build_summary(d: ProblemData, s: Solution) -> dict[str, Any]:
    """Per project: the probability that it is built at all and its expected size."""
    pj = d.projects
    if pj is None or pj.n == 0 or s.built_size is None:
        return {}
    total = s.built_size.sum(axis=1)                                   # (P, W)
    return {pid: {"expected_size": float(total[p] @ d.probability),
                  "probability_built": float(d.probability[total[p] > 1e-9].sum())}
            for p, pid in enumerate(pj.ids)}


def comparison_scenarios_table(runs: Mapping[str, Any]) -> pd.DataFrame:
    """The per-scenario figures of a comparison in long form (comparison_scenarios.csv):
    one row per policy with a plan and scenario, with the scenario's probability, its
    total shortage (t, all elements summed) and the shortage avoided against the
    first policy (``avoided_shortage_t``; empty when the first policy has no plan).
    `runs` maps policy names to model.api.RunResult (typed Any: the API is a higher
    layer)."""
    cols = ["policy", "scenario", "probability", "shortage_t", "avoided_shortage_t"]
    names = list(runs)
    first = runs[names[0]] if names else None
    base = first.tables["scenarios"].set_index("scenario")["shortage_t"] \
        if first is not None and first.has_solution else None
    parts = []
    for name, run in runs.items():
        if not run.has_solution:
            continue
        t = run.tables["scenarios"][["scenario", "probability", "shortage_t"]].copy()
        t.insert(0, "policy", name)
        t["avoided_shortage_t"] = np.nan if base is None else \
            base.reindex(t["scenario"]).to_numpy() - t["shortage_t"].to_numpy()
        parts.append(t)
    return pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)


def cost_by_year_table(runs: Mapping[str, Any]) -> pd.DataFrame:
    """Per policy and period: expected cash spent and shortage penalty (undiscounted
    and discounted), shortage, and each against the first policy (`runs` as for
    :func:`comparison_scenarios_table`)."""
    rows = []
    for name, run in runs.items():
        if not run.has_solution:
            continue
        t = run.tables["cost_by_year"]
        rows.append(t[t.scenario == "expected"].drop(columns=["scenario", "probability"])
                    .assign(policy=name))
    if not rows:
        return pd.DataFrame()
    out = pd.concat(rows, ignore_index=True)
    base = out[out.policy == next(iter(runs))].set_index("period")
    for col in ("cash", "cash_discounted", "penalty", "penalty_discounted", "shortage_t"):
        out["delta_" + col] = out[col].to_numpy() - base[col].reindex(out["period"]).to_numpy()
    return out[["policy", "period", "cash", "cash_discounted", "penalty", "penalty_discounted",
                "shortage_t", "delta_cash", "delta_cash_discounted", "delta_penalty",
                "delta_penalty_discounted", "delta_shortage_t"]]
