r"""The two-stage stochastic sourcing LP in Pyomo: one function per family.

Notation (DESIGN.md): arcs :math:`k` (a source offering an element), elements
:math:`e`, periods :math:`t` (position :math:`k_t`), scenarios :math:`w` with
probability :math:`p_w`. :func:`build_model` reads as the recipe:

1. variables (bounds carry capacities and stock capacity),
2. :func:`define_contract_delivery_constraints`   ``q <= x``,
3. :func:`define_balance_constraints`              inventory balance,
4. :func:`define_single_country_cap_constraints`   CRMA-style caps,
5. :func:`define_domestic_floor_constraints`       home-country floors,
6. :func:`define_recycled_floor_constraints`       recycled floors,
7. :func:`define_stock_days_constraints`           stockpile targets,
8. :func:`define_cost_expressions` and :func:`define_budget_constraint`,
9. :func:`define_cvar_constraints` and :func:`define_objective`.

Every constraint row carries metadata (element, period, country, stage,
scenario) in :attr:`BuiltModel.row_meta` so that duals and explanations can be
reported in the words of the instance. No file I/O here.
"""

from __future__ import annotations

import gc
from collections import defaultdict
from typing import Any

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from .data import ProblemData
from .built import META_COLUMNS, BuiltModel
from .policies import ResolvedPolicy, ShareRule
from .policies import floor_without_sources

# --------------------------------------------------------------------------- variables
def define_variables(m: pyo.ConcreteModel, d: ProblemData, policy: ResolvedPolicy
                     ) -> tuple[np.ndarray, np.ndarray]:
    r"""Decision variables and their bounds.

    * :math:`0 \le x_{kt} \le cap_{kt}` contracted t (contract arcs with capacity),
    * :math:`0 \le q_{ktw} \le a_{ktw}\,cap_{kt}` delivered t (where positive),
    * :math:`u_{etw} \ge 0` unmet demand t,
    * :math:`0 \le I_{etw} \le \bar I_e` end-of-period stock t.

    Arcs excluded by the policy get no variables at all.
    """
    usable = ~policy.excluded_arcs
    x_mask = (d.capacity_t > 0) & (d.is_contract & usable)[:, None]
    x_index = np.argwhere(x_mask)
    bound = d.capacity_t[:, :, None] * d.availability
    q_index = np.argwhere((bound > 0) & usable[:, None, None])
    x_ub = d.capacity_t[x_mask]
    q_ub = bound[tuple(q_index.T)]
    # a contract delivery also needs a contract: drop q where x cannot exist
    keep = ~d.is_contract[q_index[:, 0]] | x_mask[q_index[:, 0], q_index[:, 1]]
    q_index, q_ub = q_index[keep], q_ub[keep]

    m.X = pyo.Set(initialize=list(map(tuple, x_index.tolist())), dimen=2, ordered=True)
    m.Q = pyo.Set(initialize=list(map(tuple, q_index.tolist())), dimen=3, ordered=True)
    E, T, W = d.demand_t.shape
    m.ETW = pyo.Set(initialize=[(e, t, w) for e in range(E) for t in range(T)
                                for w in range(W)], dimen=3, ordered=True)
    x_bounds = dict(zip(m.X, x_ub.tolist()))
    q_bounds = dict(zip(m.Q, q_ub.tolist()))
    m.x = pyo.Var(m.X, bounds=lambda _, k, t: (0.0, x_bounds[k, t]))
    m.q = pyo.Var(m.Q, bounds=lambda _, k, t, w: (0.0, q_bounds[k, t, w]))
    m.u = pyo.Var(m.ETW, within=pyo.NonNegativeReals)
    cap = d.stock_capacity_t
    m.stock = pyo.Var(m.ETW, bounds=lambda _, e, t, w: (
        0.0, None if not np.isfinite(cap[e]) else float(cap[e])))
    return x_index, q_index


# --------------------------------------------------------------------------- constraints
def define_contract_delivery_constraints(m: pyo.ConcreteModel, d: ProblemData,
                                         q_index: np.ndarray) -> pd.DataFrame:
    r"""Deliveries of a contract source stay within the contract.

    .. math:: q_{ktw} \le x_{kt} \quad \forall k \in \text{contract}, t, w

    Spot sources need no contract. Reads ``sources[].mode``.
    """
    contract = d.is_contract
    rows = [tuple(r) for r in q_index[contract[q_index[:, 0]]].tolist()]
    m.contract_delivery = pyo.Constraint(
        pyo.Set(initialize=rows, dimen=3, ordered=True),
        rule=lambda m, k, t, w: m.q[k, t, w] <= m.x[k, t])
    return pd.DataFrame({
        "constraint": "contract_delivery",
        "rule": "",
        "element": [d.elements[d.arc_element[k]] for k, _, _ in rows],
        "period": [d.periods[t] for _, t, _ in rows],
        "country": "", "stage": "",
        "scenario": [d.scenarios[w] for _, _, w in rows],
        "sense": "<=", "rhs": 0.0,
    }, columns=META_COLUMNS)


def define_balance_constraints(m: pyo.ConcreteModel, d: ProblemData,
                               q_index: np.ndarray) -> pd.DataFrame:
    r"""Inventory balance per element, period and scenario.

    .. math:: I_{e,t-1,w} + \sum_{k \in K_e} q_{ktw} + u_{etw} - I_{etw} = D_{etw}

    with :math:`I_{e,-1,w} = I^0_e` (``stock.initial``) and :math:`D` the base
    demand times the scenario's demand shocks. The dual of this row is the
    marginal cost of one more tonne of demand in scenario :math:`w`.
    """
    by_etw: dict[tuple[int, int, int], list[tuple[int, int, int]]] = defaultdict(list)
    for k, t, w in q_index.tolist():
        by_etw[int(d.arc_element[k]), t, w].append((k, t, w))

    def rule(m: pyo.ConcreteModel, e: int, t: int, w: int) -> Any:
        before = m.stock[e, t - 1, w] if t > 0 else float(d.stock_initial_t[e])
        supply = sum(m.q[i] for i in by_etw.get((e, t, w), ()))
        return before + supply + m.u[e, t, w] - m.stock[e, t, w] == float(d.demand_t[e, t, w])

    m.balance = pyo.Constraint(m.ETW, rule=rule)
    E, T, W = d.demand_t.shape
    etw = np.array(list(m.ETW), dtype=int).reshape(-1, 3)
    return pd.DataFrame({
        "constraint": "balance", "rule": "",
        "element": np.array(d.elements, dtype=object)[etw[:, 0]],
        "period": np.array(d.periods, dtype=object)[etw[:, 1]],
        "country": "", "stage": "",
        "scenario": np.array(d.scenarios, dtype=object)[etw[:, 2]],
        "sense": "==", "rhs": d.demand_t[etw[:, 0], etw[:, 1], etw[:, 2]],
    }, columns=META_COLUMNS)


def _share_rows(m: pyo.ConcreteModel, d: ProblemData, rules: list[ShareRule],
                x_index: np.ndarray, q_index: np.ndarray, name: str,
                infeasible: list[str]) -> pd.DataFrame:
    """Rows sum(q or x over an arc set, unit, period) <=/>= share * demand."""
    x_pos = {(k, t): (k, t) for k, t in x_index.tolist()}
    q_by_kt: dict[tuple[int, int], list[int]] = defaultdict(list)
    for k, t, w in q_index.tolist():
        q_by_kt[k, t].append(w)
    q_set = {tuple(r) for r in q_index.tolist()}
    terms: list[list[Any]] = []
    meta: list[dict[str, Any]] = []
    for rule in rules:
        for arcs_of in rule.arc_sets:
            for unit_label, unit in rule.units:
                arcs = np.flatnonzero(arcs_of.arcs & np.isin(d.arc_element, unit)).tolist()
                for t in rule.periods:
                    scen = [None] if rule.plan else range(len(d.scenarios))
                    for w in scen:
                        if w is None:
                            vars_ = [m.x[k, t] for k in arcs if (k, t) in x_pos]
                            demand = float(d.base_demand_t[unit, t].sum())
                        else:
                            vars_ = [m.q[k, t, w] for k in arcs if (k, t, w) in q_set]
                            demand = float(d.demand_t[unit, t, w].sum())
                        rhs = rule.share * demand
                        row = {"constraint": name, "rule": rule.label, "element": unit_label,
                               "period": d.periods[t], "country": arcs_of.country,
                               "stage": arcs_of.stage,
                               "scenario": "" if w is None else d.scenarios[w],
                               "sense": rule.sense, "rhs": rhs, "demand_t": demand}
                        if not vars_:
                            if rule.sense == ">=" and rhs > 1e-9:
                                infeasible.append(floor_without_sources(
                                    rule, arcs_of, unit_label, d.periods[t], rhs,
                                    None if w is None else d.scenarios[w]))
                            continue  # a cap with nothing under it holds trivially
                        terms.append(vars_)
                        meta.append(row)
    index = list(range(len(terms)))

    def rule_fn(m: pyo.ConcreteModel, r: int) -> Any:
        lhs = pyo.quicksum(terms[r])
        rhs = meta[r]["rhs"]
        return lhs <= rhs if meta[r]["sense"] == "<=" else lhs >= rhs

    m.add_component(name, pyo.Constraint(index, rule=rule_fn))
    return pd.DataFrame(meta, columns=META_COLUMNS)




def define_single_country_cap_constraints(m: pyo.ConcreteModel, d: ProblemData,
                                          policy: ResolvedPolicy, x_index: np.ndarray,
                                          q_index: np.ndarray,
                                          infeasible: list[str]) -> pd.DataFrame:
    r"""CRMA-style cap on any one third country at each processing stage.

    For every rule, third country :math:`c \ne H`, stage
    :math:`s \in \{mining, refining\}`, unit :math:`g` (an element, or a group's
    elements with ``per: group``) and period :math:`t` in the rule's filters:

    .. math:: \sum_{k:\,country_s(k)=c,\ e(k)\in g} q_{ktw} \le share \sum_{e\in g} D_{etw}
              \quad \forall w        \qquad (applies\_to = every\_scenario)

    .. math:: \sum_{k:\,country_s(k)=c,\ e(k)\in g} x_{kt} \le share \sum_{e\in g} D^0_{et}
              \qquad (applies\_to = plan)

    CRMA measures against consumption, so the right-hand side is demand.
    Reads ``policies.<name>.max_single_country_share``.
    """
    rules = [r for r in policy.share_rules if r.family == "max_single_country_share"]
    return _share_rows(m, d, rules, x_index, q_index, "max_single_country_share", infeasible)


def define_domestic_floor_constraints(m: pyo.ConcreteModel, d: ProblemData,
                                      policy: ResolvedPolicy, x_index: np.ndarray,
                                      q_index: np.ndarray,
                                      infeasible: list[str]) -> pd.DataFrame:
    r"""Floor on the share of demand met from the home country at one stage.

    .. math:: \sum_{k:\,country_s(k)=H,\ e(k)\in g} q_{ktw} \ge share \sum_{e\in g} D_{etw}

    (or with :math:`x` and base demand in plan mode). Reads
    ``policies.<name>.min_domestic_share``.
    """
    rules = [r for r in policy.share_rules if r.family == "min_domestic_share"]
    return _share_rows(m, d, rules, x_index, q_index, "min_domestic_share", infeasible)


def define_recycled_floor_constraints(m: pyo.ConcreteModel, d: ProblemData,
                                      policy: ResolvedPolicy, x_index: np.ndarray,
                                      q_index: np.ndarray,
                                      infeasible: list[str]) -> pd.DataFrame:
    r"""Floor on the share of demand met from recycled sources.

    .. math:: \sum_{k:\,recycled(k),\ e(k)\in g} q_{ktw} \ge share \sum_{e\in g} D_{etw}

    (or with :math:`x` and base demand in plan mode). Reads
    ``policies.<name>.min_recycled_share``.
    """
    rules = [r for r in policy.share_rules if r.family == "min_recycled_share"]
    return _share_rows(m, d, rules, x_index, q_index, "min_recycled_share", infeasible)


def define_stock_days_constraints(m: pyo.ConcreteModel, d: ProblemData,
                                  policy: ResolvedPolicy) -> pd.DataFrame:
    r"""Stockpile target: end-of-period stock covers `days` of demand.

    .. math:: \sum_{e\in g} I_{etw} \ge \frac{days}{period\_days} \sum_{e\in g} D_{etw}
              \quad \forall t, w

    Reads ``policies.<name>.min_stock_days`` and ``period_days``.
    """
    meta, keys = [], []
    for rule in policy.stock_rules:
        for unit_label, unit in rule.units:
            for t in rule.periods:
                for w in range(len(d.scenarios)):
                    keys.append((unit, t, w))
                    meta.append({"constraint": "min_stock_days", "rule": rule.label,
                                 "element": unit_label, "period": d.periods[t],
                                 "country": "", "stage": "", "scenario": d.scenarios[w],
                                 "sense": ">=",
                                 "rhs": rule.fraction * float(d.demand_t[unit, t, w].sum())})
    m.min_stock_days = pyo.Constraint(
        list(range(len(keys))),
        rule=lambda m, r: sum(m.stock[e, keys[r][1], keys[r][2]] for e in keys[r][0])
        >= meta[r]["rhs"])
    return pd.DataFrame(meta, columns=META_COLUMNS)


def define_cost_expressions(m: pyo.ConcreteModel, d: ProblemData, x_index: np.ndarray,
                            q_index: np.ndarray) -> None:
    r"""First-stage cost and each scenario's second-stage cost (discounted, currency).

    .. math:: F = \sum_{k,t} \delta_t\, r_k\, c_{kt}\, x_{kt}
    .. math:: S_w = \sum_{k,t} \delta_t\, c_{kt} m_{ktw} q_{ktw}
                  + \sum_{e,t} \delta_t (v_e u_{etw} + h_e I_{etw})

    with :math:`\delta_t = (1+rate)^{-k_t}`, :math:`m` the product of the
    scenario's price shocks, and scenario cost :math:`C_w = F + S_w`.
    The reservation fee uses the base price; deliveries pay the shocked price.
    """
    disc = d.discount
    fee = d.reservation_fee
    xc = [(m.x[k, t], float(disc[t] * fee[k] * d.price[k, t])) for k, t in x_index.tolist()]
    m.first_stage_cost = pyo.Expression(
        expr=pyo.quicksum((c * v for v, c in xc if c != 0.0), start=0.0))
    by_w: dict[int, list[Any]] = defaultdict(list)
    qc = disc[q_index[:, 1]] * d.price[q_index[:, 0], q_index[:, 1]] * \
        d.price_multiplier[tuple(q_index.T)] if len(q_index) else np.zeros(0)
    for (k, t, w), c in zip(q_index.tolist(), qc.tolist()):
        if c != 0.0:
            by_w[w].append(c * m.q[k, t, w])
    E, T, W = d.demand_t.shape
    for e in range(E):
        for t in range(T):
            pen, hold = disc[t] * d.shortage_penalty[e], disc[t] * d.holding_cost[e]
            for w in range(W):
                if pen:
                    by_w[w].append(float(pen) * m.u[e, t, w])
                if hold:
                    by_w[w].append(float(hold) * m.stock[e, t, w])
    m.scenario_cost = pyo.Expression(
        range(W), rule=lambda m, w: pyo.quicksum(by_w.get(w, []), start=0.0))


def define_budget_constraint(m: pyo.ConcreteModel, d: ProblemData,
                             policy: ResolvedPolicy) -> pd.DataFrame:
    r"""Budget: expected discounted cost at most `amount`.

    .. math:: F + \sum_w p_w S_w \le B

    Reads ``policies.<name>.budget``.
    """
    budgets = policy.budgets
    m.budget = pyo.Constraint(
        list(range(len(budgets))),
        rule=lambda m, i: m.first_stage_cost + sum(
            float(p) * m.scenario_cost[w] for w, p in enumerate(d.probability))
        <= budgets[i][1])
    return pd.DataFrame([{"constraint": "budget", "rule": lbl, "element": "", "period": "",
                          "country": "", "stage": "", "scenario": "", "sense": "<=",
                          "rhs": amount} for lbl, amount in budgets], columns=META_COLUMNS)


def define_cvar_constraints(m: pyo.ConcreteModel, d: ProblemData) -> pd.DataFrame:
    r"""Rockafellar-Uryasev linearisation of CVaR (only when lambda > 0).

    .. math:: z_w \ge C_w - \eta, \quad z_w \ge 0, \qquad
              CVaR_\alpha = \eta + \frac{1}{1-\alpha} \sum_w p_w z_w
    """
    W = len(d.scenarios)
    m.eta = pyo.Var(within=pyo.Reals)
    m.excess = pyo.Var(range(W), within=pyo.NonNegativeReals)
    m.cvar_excess = pyo.Constraint(
        range(W), rule=lambda m, w: m.excess[w] >= m.first_stage_cost + m.scenario_cost[w]
        - m.eta)
    return pd.DataFrame({"constraint": "cvar_excess", "rule": "", "element": "",
                         "period": "", "country": "", "stage": "", "scenario": d.scenarios,
                         "sense": ">=", "rhs": 0.0}, columns=META_COLUMNS)


def define_objective(m: pyo.ConcreteModel, d: ProblemData) -> None:
    r"""Minimise :math:`(1-\lambda)\,E[C] + \lambda\, CVaR_\alpha(C)`.

    .. math:: E[C] = F + \sum_w p_w S_w
    """
    lam, alpha = d.risk_lambda, d.risk_alpha
    expected = m.first_stage_cost + sum(float(p) * m.scenario_cost[w]
                                        for w, p in enumerate(d.probability) if p)
    obj = (1.0 - lam) * expected if lam < 1.0 else 0.0
    if lam > 0.0:
        obj = obj + lam * (m.eta + sum(float(p) / (1.0 - alpha) * m.excess[w]
                                       for w, p in enumerate(d.probability) if p))
    m.objective = pyo.Objective(expr=obj, sense=pyo.minimize)


def define_tail_tiebreak(m: pyo.ConcreteModel, d: ProblemData, cvar_bound: float) -> None:
    r"""Second phase for :math:`\lambda = 1`: keep the optimal CVaR, then minimise E[C].

    With :math:`\lambda = 1` the objective does not see scenarios outside the
    tail, so their deliveries would be arbitrary. This keeps the CVaR at its
    optimum (plus a relative 1e-9) and picks, among those plans, the one with
    the least expected cost:

    .. math:: \min E[C] \ \text{s.t.}\ \eta + \tfrac{1}{1-\alpha}\sum_w p_w z_w
              \le CVaR^* (1 + 10^{-9})
    """
    alpha = d.risk_alpha
    tail = m.eta + sum(float(p) / (1.0 - alpha) * m.excess[w]
                       for w, p in enumerate(d.probability) if p)
    m.cvar_bound = pyo.Constraint(expr=tail <= cvar_bound + 1e-9 * max(1.0, abs(cvar_bound)))
    m.objective.deactivate()
    m.expected_cost_objective = pyo.Objective(
        expr=m.first_stage_cost + sum(float(p) * m.scenario_cost[w]
                                      for w, p in enumerate(d.probability) if p),
        sense=pyo.minimize)


# --------------------------------------------------------------------------- recipe
def build_model(d: ProblemData, policy: ResolvedPolicy) -> BuiltModel:
    """Build the extensive form: the list of constraint families above."""
    import time

    start = time.perf_counter()
    gc_was_enabled = gc.isenabled()
    gc.disable()  # Pyomo's many small objects make the cyclic GC pay for nothing
    try:
        m = pyo.ConcreteModel(name=d.name)
        x_index, q_index = define_variables(m, d, policy)
        infeasible: list[str] = []
        meta = {
            "contract_delivery": define_contract_delivery_constraints(m, d, q_index),
            "balance": define_balance_constraints(m, d, q_index),
            "max_single_country_share": define_single_country_cap_constraints(
                m, d, policy, x_index, q_index, infeasible),
            "min_domestic_share": define_domestic_floor_constraints(
                m, d, policy, x_index, q_index, infeasible),
            "min_recycled_share": define_recycled_floor_constraints(
                m, d, policy, x_index, q_index, infeasible),
            "min_stock_days": define_stock_days_constraints(m, d, policy),
        }
        define_cost_expressions(m, d, x_index, q_index)
        meta["budget"] = define_budget_constraint(m, d, policy)
        if d.risk_lambda > 0:
            meta["cvar_excess"] = define_cvar_constraints(m, d)
        define_objective(m, d)
    finally:
        if gc_was_enabled:
            gc.enable()
    return BuiltModel(m, d, policy, x_index, q_index, meta, infeasible,
                      time.perf_counter() - start)
