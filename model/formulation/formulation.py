r"""The stochastic sourcing LP in Pyomo: one function per constraint family.

Notation (DESIGN.md, docs/mathematics.md): arcs :math:`k` (a source offering
an element), elements :math:`e`, periods :math:`t`, scenarios :math:`w` with
probability :math:`p_w`. What is known when (model.input.tree, model.formulation.indexing):

* a *slot* :math:`n` is a recourse node: period :math:`t(n)`'s deliveries
  :math:`q_{kn}`, shortage :math:`u_{en}` and stock :math:`I_{en}` are one
  variable for every scenario in it (under ``information: history`` the
  scenarios whose data agree up to :math:`t`; under ``clairvoyant`` each
  scenario alone); :math:`n^-` is the slot of the same scenarios in
  :math:`t-1`;
* a contract :math:`x_{ktd}` is decided at node :math:`d` of period
  :math:`t - L_k` (the root without a lead time); :math:`d(k,t,n)` is the
  decision node of slot :math:`n`'s scenarios.

:func:`build_model` reads as the recipe:

1. variables (bounds carry capacities and stock capacity),
2. :func:`define_contract_delivery_constraints`   ``q <= x``,
3. :func:`define_committed_constraints`           ``x >= committed``,
4. :func:`define_min_take_constraints`            ``q >= min_take a x``,
5. :func:`define_balance_constraints`              inventory balance,
6. :func:`define_single_country_cap_constraints`   CRMA-style caps,
7. :func:`define_domestic_floor_constraints`       home-country floors,
8. :func:`define_recycled_floor_constraints`       recycled floors,
9. :func:`define_stock_days_constraints`           stockpile targets (released in emergencies),
   :func:`define_stock_build_constraints`          stock drawn, never raised (``build_stock``),
   :func:`define_project_constraints`              investment (model.formulation.investment),
   :func:`define_sharing_constraints`              several buyers (model.formulation.sharing),
10. :func:`define_cost_expressions` and :func:`define_budget_constraint`,
11. :func:`define_cvar_constraints`, :func:`define_ambiguity_constraints` (doubt on
    the probabilities) and :func:`define_objective`.

Every constraint row carries metadata (element, period, country, stage, slot)
in :attr:`BuiltModel.row_meta` so that duals and explanations can be
reported in the words of the instance. No file I/O here.
"""

from __future__ import annotations

import gc
from collections import defaultdict
from typing import Any

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from .built import META_COLUMNS, BuiltModel
from ..input.data import ProblemData
from .indexing import ModelIndex, StockFloorRows, model_index, stock_floor_rows
from .investment import project_rows
from .matrix import cost_coefficients, empty_meta, scenario_words
from .policies import ResolvedPolicy, ShareRule, floor_without_sources
from .sharing import sharing_rows


# --------------------------------------------------------------------------- variables
def define_variables(m: pyo.ConcreteModel, d: ProblemData, ix: ModelIndex,
                     floors: StockFloorRows) -> None:
    r"""Decision variables and their bounds, by position in the index arrays.

    * :math:`0 \le x_{ktd} \le cap_{kt}` contracted t (contract arcs with capacity,
      per decision node),
    * :math:`0 \le q_{kn} \le a_{k,t(n)}\,cap_{k,t(n)}` delivered t (where positive),
    * :math:`u_{en} \ge 0` unmet demand t,
    * :math:`0 \le I_{en} \le \bar I_e` end-of-period stock t,
    * :math:`z_{en} \ge 0` surplus sold t (elements with a minimum-take contract),
    * :math:`\delta_r \ge 0` deficit below a soft stock floor's row r, t,
    * :math:`y_{p\tau n}` project sizes (binary for all-or-nothing projects),
    * :math:`r_{en} \ge 0` demand avoided by demand-reducing projects, t;
    * with several buyers :math:`u_{en} \le D_{en}`, and :math:`m^{in}_{en},
      m^{out}_{en} \ge 0` stock received from and sent to other members, t
      (model.formulation.sharing).

    Arcs excluded by the policy get no variables at all.
    """
    E, S = len(d.elements), ix.n_slots
    m.z = pyo.Var(range(len(ix.z_elements) * S), within=pyo.NonNegativeReals)
    m.deficit = pyo.Var(range(int(floors.soft.sum())), within=pyo.NonNegativeReals)
    y_upper, y_int = ix.y_upper.tolist(), ix.y_integer.tolist()
    m.y = pyo.Var(range(len(y_upper)), bounds=lambda _, i: (0.0, y_upper[i]),
                  domain=lambda _, i: pyo.Binary if y_int[i] else pyo.NonNegativeReals)
    m.r = pyo.Var(range(len(ix.r_elements) * S), within=pyo.NonNegativeReals)
    k_x, t_x = ix.x_index[:, 0], ix.x_index[:, 1]
    x_ub = (d.capacity_t[k_x, t_x] + ix.potential[k_x, t_x]).tolist()
    q_ub = ix.q_bound.tolist()
    m.x = pyo.Var(range(len(x_ub)), bounds=lambda _, i: (0.0, x_ub[i]))
    m.q = pyo.Var(range(len(q_ub)), bounds=lambda _, i: (0.0, q_ub[i]))
    u_ub = ix.u_upper.tolist()      # u <= D with several buyers (model.formulation.sharing)
    m.u = pyo.Var(range(E * S), bounds=lambda _, i: (
        0.0, None if not np.isfinite(u_ub[i]) else u_ub[i]))
    M = len(ix.m_elements)          # several buyers: stock received from and sent to members
    if M:
        m.m_in = pyo.Var(range(M * S), within=pyo.NonNegativeReals)
        m.m_out = pyo.Var(range(M * S), within=pyo.NonNegativeReals)
    cap = d.stock_capacity_t
    m.stock = pyo.Var(range(E * S), bounds=lambda _, i: (
        0.0, None if not np.isfinite(cap[i // S]) else float(cap[i // S])))


def _meta(**columns: Any) -> pd.DataFrame:
    return pd.DataFrame(columns, columns=META_COLUMNS)


# --------------------------------------------------------------------------- constraints
def define_contract_delivery_constraints(m: pyo.ConcreteModel, d: ProblemData,
                                         ix: ModelIndex) -> pd.DataFrame:
    r"""Deliveries of a contract source stay within the contract of their node.

    .. math:: q_{kn} \le x_{k,t(n),d(k,t(n),n)} \quad \forall k \in \text{contract}, n

    Spot sources need no contract. Reads ``sources[].mode``, ``lead_time``.
    """
    rows = [i for i, k in enumerate(ix.q_index[:, 0].tolist()) if d.is_contract[k]]
    k, t, s = ix.q_index[rows, 0], ix.q_index[rows, 1], ix.q_index[rows, 2]
    x_of = ix.xcol_of[k, t, ix.slot_rep[s]].tolist()
    m.contract_delivery = pyo.Constraint(
        range(len(rows)), rule=lambda m, r: m.q[rows[r]] <= m.x[x_of[r]])
    return _meta(constraint="contract_delivery", rule="",
                 element=np.array(d.elements, dtype=object)[d.arc_element[k]],
                 period=np.array(d.periods, dtype=object)[t], country="", stage="",
                 scenario="", sense="<=", rhs=0.0, demand_t=np.nan, slot=s, dnode=-1)


def define_committed_constraints(m: pyo.ConcreteModel, d: ProblemData,
                                 ix: ModelIndex) -> pd.DataFrame:
    r"""Signed volumes: every decision node contracts at least what is committed.

    .. math:: x_{ktd} \ge \mathrm{committed}_{kt} \quad \forall d

    Reads ``sources[].supply.<element>.committed``. The dual prices the commitment.
    """
    rows = [i for i, (k, t, _) in enumerate(ix.x_index.tolist()) if d.committed_t[k, t] > 0]
    need = [float(d.committed_t[ix.x_index[i, 0], ix.x_index[i, 1]]) for i in rows]
    m.committed = pyo.Constraint(range(len(rows)), rule=lambda m, r: m.x[rows[r]] >= need[r])
    k, t = ix.x_index[rows, 0], ix.x_index[rows, 1]
    return _meta(constraint="committed", rule=d.sources["id"].to_numpy()[d.arc_source[k]],
                 element=np.array(d.elements, dtype=object)[d.arc_element[k]],
                 period=np.array(d.periods, dtype=object)[t], country="", stage="",
                 scenario="", sense=">=", rhs=np.array(need, dtype=float), demand_t=np.nan,
                 slot=-1, dnode=ix.x_index[rows, 2])


def define_min_take_constraints(m: pyo.ConcreteModel, d: ProblemData,
                                ix: ModelIndex) -> pd.DataFrame:
    r"""Take-or-pay minimum of a contract, scaled by the slot's availability.

    .. math:: q_{kn} \ge \theta_k\, a_{k,t(n),n}\, x_{k,t(n),d(k,t(n),n)}

    Reads ``sources[].min_take``. What is taken beyond need leaves the balance
    as surplus :math:`z` at the element's ``resale_price``.
    """
    rows, theta, x_of = [], [], []
    for i, (k, t, s) in enumerate(ix.q_index.tolist()):
        th = float(d.min_take[k] * d.availability[k, t, ix.slot_rep[s]])
        if d.is_contract[k] and th > 0:
            rows.append(i)
            theta.append(th)
            x_of.append(int(ix.xcol_of[k, t, ix.slot_rep[s]]))
    m.min_take = pyo.Constraint(
        range(len(rows)), rule=lambda m, r: m.q[rows[r]] - theta[r] * m.x[x_of[r]] >= 0)
    k, t, s = ix.q_index[rows, 0], ix.q_index[rows, 1], ix.q_index[rows, 2]
    return _meta(constraint="min_take", rule=d.sources["id"].to_numpy()[d.arc_source[k]],
                 element=np.array(d.elements, dtype=object)[d.arc_element[k]],
                 period=np.array(d.periods, dtype=object)[t], country="", stage="",
                 scenario="", sense=">=", rhs=0.0, demand_t=np.nan, slot=s, dnode=-1)


def define_balance_constraints(m: pyo.ConcreteModel, d: ProblemData,
                               ix: ModelIndex) -> pd.DataFrame:
    r"""Inventory balance per element and slot.

    .. math:: I_{e,n^-} + \sum_{k \in K_e} q_{kn} + u_{en} - I_{en} - z_{en} + r_{en}
              = D_{e,t(n),n}

    with :math:`I_{e,n^-} = I^0_e` (``stock.initial``) in the first period,
    :math:`D` the base demand times the slot's demand shocks, :math:`z`
    the surplus sold (only for elements with a minimum-take contract) and
    :math:`r` the demand avoided by demand-reducing projects. With several
    buyers each buyer's element has its own row, with :math:`+ m^{in} - m^{out}`
    the stock it receives from and sends to other members. The
    dual of this row is the marginal cost of one more tonne of demand at the node.
    """
    S = ix.n_slots
    by_es: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, (k, _, s) in enumerate(ix.q_index.tolist()):
        by_es[int(d.arc_element[k]), s].append(i)
    z_pos = {int(e): j for j, e in enumerate(ix.z_elements.tolist())}
    r_pos = {int(e): j for j, e in enumerate(ix.r_elements.tolist())}
    m_pos = {int(e): j for j, e in enumerate(ix.m_elements.tolist())}

    def rule(m: pyo.ConcreteModel, e: int, s: int) -> Any:
        prev = int(ix.slot_prev[s])
        before = m.stock[e * S + prev] if prev >= 0 else float(d.stock_initial_t[e])
        supply = sum(m.q[i] for i in by_es.get((e, s), ()))
        sold = m.z[z_pos[e] * S + s] if e in z_pos else 0.0
        avoided = m.r[r_pos[e] * S + s] if e in r_pos else 0.0
        moved = m.m_in[m_pos[e] * S + s] - m.m_out[m_pos[e] * S + s] if e in m_pos else 0.0
        demand = float(d.demand_t[e, ix.slot_t[s], ix.slot_rep[s]])
        return before + supply + m.u[e * S + s] - m.stock[e * S + s] - sold + avoided \
            + moved == demand

    E = len(d.elements)
    m.balance = pyo.Constraint(range(E), range(S), rule=rule)
    e_grid, s_grid = np.divmod(np.arange(E * S), S)
    return _meta(constraint="balance", rule="",
                 element=np.array(d.elements, dtype=object)[e_grid],
                 period=np.array(d.periods, dtype=object)[ix.slot_t[s_grid]], country="",
                 stage="", scenario="", sense="==",
                 rhs=d.demand_t[e_grid, ix.slot_t[s_grid], ix.slot_rep[s_grid]],
                 demand_t=np.nan, slot=s_grid, dnode=-1)


def _share_rows(m: pyo.ConcreteModel, d: ProblemData, ix: ModelIndex, rules: list[ShareRule],
                name: str, infeasible: list[str]) -> pd.DataFrame:
    """Rows sum(q over an arc set, unit, slot) or sum(x ..., period, decision nodes)
    <=/>= share * demand."""
    drow = d.decision_row
    W = len(d.scenarios)
    terms: list[list[Any]] = []
    meta: list[dict[str, Any]] = []
    for rule in rules:
        for arcs_of in rule.arc_sets:
            for unit_label, unit in rule.units:
                arcs = np.flatnonzero(arcs_of.arcs & np.isin(d.arc_element, unit)).tolist()
                rows: list[tuple[int, list[Any], float, int, int]] = []
                if rule.plan:
                    for t in rule.periods:
                        seen: dict[tuple[int, ...], int] = {}
                        for w in range(W):   # one row per distinct set of contracts
                            key = tuple(int(ix.xcol_of[k, t, w]) for k in arcs)
                            if key in seen:
                                continue
                            seen[key] = w
                            vars_ = [m.x[i] for i in key if i >= 0]
                            rows_d = [drow[k, t] for k, i in zip(arcs, key) if i >= 0]
                            dnode = int(d.decision_node[max(rows_d), w]) if rows_d else -1
                            demand = float(d.base_demand_t[unit, t].sum())
                            rows.append((t, vars_, demand, -1, dnode))
                else:
                    for s in range(ix.n_slots):
                        t = int(ix.slot_t[s])
                        if t not in rule.periods:
                            continue
                        vars_ = [m.q[int(ix.qpos_of[k, s])] for k in arcs if ix.qpos_of[k, s] >= 0]
                        demand = float(d.demand_t[unit, t, ix.slot_rep[s]].sum())
                        rows.append((t, vars_, demand, s, -1))
                rows.sort(key=lambda r: r[0])      # period by period, nodes in order
                for t, vars_, demand, s, dnode in rows:
                    rhs = float(rule.share_t[t]) * demand
                    if not vars_:
                        if rule.sense == ">=" and rhs > 1e-9:
                            where = None if rule.plan else scenario_words(
                                d, np.flatnonzero(ix.slot_of[t] == s))
                            infeasible.append(floor_without_sources(
                                rule, arcs_of, unit_label, d.periods[t], rhs, where))
                        continue  # a cap with nothing under it holds trivially
                    terms.append(vars_)
                    meta.append({"constraint": name, "rule": rule.label, "element": unit_label,
                                 "period": d.periods[t], "country": arcs_of.country,
                                 "stage": arcs_of.stage, "scenario": "", "sense": rule.sense,
                                 "rhs": rhs, "demand_t": demand, "slot": s, "dnode": dnode})

    def rule_fn(m: pyo.ConcreteModel, r: int) -> Any:
        lhs = pyo.quicksum(terms[r])
        rhs = meta[r]["rhs"]
        return lhs <= rhs if meta[r]["sense"] == "<=" else lhs >= rhs

    m.add_component(name, pyo.Constraint(range(len(terms)), rule=rule_fn))
    return pd.DataFrame(meta, columns=META_COLUMNS) if meta else empty_meta()


def define_single_country_cap_constraints(m: pyo.ConcreteModel, d: ProblemData,
                                          policy: ResolvedPolicy, ix: ModelIndex,
                                          infeasible: list[str]) -> pd.DataFrame:
    r"""CRMA-style cap on any one third country at each processing stage.

    For every rule, third country :math:`c \ne H`, stage
    :math:`s \in \{mining, refining\}`, unit :math:`g` (an element, or a group's
    elements with ``per: group``) and slot :math:`n` of a period in the rule's filters:

    .. math:: \sum_{k:\,country_s(k)=c,\ e(k)\in g} q_{kn} \le share \sum_{e\in g} D_{e,t(n),n}
              \qquad (applies\_to = every\_scenario)

    and, in plan mode, for every period :math:`t` and every scenario's set of
    contracts (one row per distinct set):

    .. math:: \sum_{k:\,country_s(k)=c,\ e(k)\in g} x_{k,t,d(k,t,w)} \le share \sum_{e\in g} D^0_{et}

    CRMA measures against consumption, so the right-hand side is demand.
    Reads ``policies.<name>.max_single_country_share``.
    """
    rules = [r for r in policy.share_rules if r.family == "max_single_country_share"]
    return _share_rows(m, d, ix, rules, "max_single_country_share", infeasible)


def define_domestic_floor_constraints(m: pyo.ConcreteModel, d: ProblemData,
                                      policy: ResolvedPolicy, ix: ModelIndex,
                                      infeasible: list[str]) -> pd.DataFrame:
    r"""Floor on the share of demand met from the home country at one stage.

    .. math:: \sum_{k:\,country_s(k)=H,\ e(k)\in g} q_{kn} \ge share \sum_{e\in g} D_{e,t(n),n}

    (or with :math:`x` and base demand in plan mode). Reads
    ``policies.<name>.min_domestic_share``.
    """
    rules = [r for r in policy.share_rules if r.family == "min_domestic_share"]
    return _share_rows(m, d, ix, rules, "min_domestic_share", infeasible)


def define_recycled_floor_constraints(m: pyo.ConcreteModel, d: ProblemData,
                                      policy: ResolvedPolicy, ix: ModelIndex,
                                      infeasible: list[str]) -> pd.DataFrame:
    r"""Floor on the share of demand met from recycled sources.

    .. math:: \sum_{k:\,recycled(k),\ e(k)\in g} q_{kn} \ge share \sum_{e\in g} D_{e,t(n),n}

    (or with :math:`x` and base demand in plan mode). Reads
    ``policies.<name>.min_recycled_share``.
    """
    rules = [r for r in policy.share_rules if r.family == "min_recycled_share"]
    return _share_rows(m, d, ix, rules, "min_recycled_share", infeasible)


def define_stock_days_constraints(m: pyo.ConcreteModel, d: ProblemData,
                                  ix: ModelIndex, floors: StockFloorRows) -> pd.DataFrame:
    r"""Stockpile target: end-of-period stock covers `days` of demand at every node
    where the floor binds.

    .. math:: \sum_{e\in g} I_{en} \,[+\, \delta_r] \ge \beta_{g,n}
              \frac{days}{period\_days} \sum_{e\in g} D_{e,t(n),n}
              \quad \forall n: t(n) \in periods

    :math:`\beta = 0` (no row) where the floor is released: an emergency for an
    element of :math:`g` (a disruption rule with ``emergency: true``) in
    :math:`t(n)` or the ``refill`` periods before it; in the expected-value
    problem :math:`\beta` is the probability that the floor binds. With a
    ``deficit_cost`` the floor is soft: the deficit :math:`\delta_r` is priced
    in the scenario cost. Reads ``policies.<name>.min_stock_days``, ``period_days``.
    """
    S = ix.n_slots
    soft = {r: j for j, r in enumerate(np.flatnonzero(floors.soft).tolist())}

    def rule(m: pyo.ConcreteModel, r: int) -> Any:
        s = int(floors.slot[r])
        lhs = sum(m.stock[e * S + s] for e in floors.unit[r])
        if r in soft:
            lhs = lhs + m.deficit[soft[r]]
        return lhs >= float(floors.target[r])

    m.min_stock_days = pyo.Constraint(range(len(floors.slot)), rule=rule)
    if not len(floors.slot):
        return empty_meta()
    return _meta(constraint="min_stock_days", rule=floors.rule, element=floors.unit_label,
                 period=np.array(d.periods, dtype=object)[ix.slot_t[floors.slot]],
                 country="", stage="", scenario="", sense=">=", rhs=floors.target,
                 demand_t=np.nan, slot=floors.slot, dnode=-1)


def define_stock_build_constraints(m: pyo.ConcreteModel, d: ProblemData,
                                   policy: ResolvedPolicy, ix: ModelIndex) -> pd.DataFrame:
    r"""Stock may be drawn, never raised (policy ``build_stock: false``).

    .. math:: I_{en} \le I_{e,n^-} \quad (I_{e,n^-} = I^0_e \text{ in the first period})

    Against a policy without it, this measures what holding stock is worth
    (DESIGN.md, "Stock questions"); the opening stock can still be drawn.
    Reads ``policies.<name>.build_stock``.
    """
    E, S = len(d.elements), ix.n_slots
    if not policy.no_stock_build:
        m.build_stock = pyo.Constraint(range(0), rule=lambda m, r: pyo.Constraint.Skip)
        return empty_meta()

    def rule(m: pyo.ConcreteModel, e: int, s: int) -> Any:
        prev = int(ix.slot_prev[s])
        if prev < 0:
            return m.stock[e * S + s] <= float(d.stock_initial_t[e])
        return m.stock[e * S + s] - m.stock[e * S + prev] <= 0

    m.build_stock = pyo.Constraint(range(E), range(S), rule=rule)
    e_grid, s_grid = np.divmod(np.arange(E * S), S)
    return _meta(constraint="build_stock", rule=policy.no_stock_build[0],
                 element=np.array(d.elements, dtype=object)[e_grid],
                 period=np.array(d.periods, dtype=object)[ix.slot_t[s_grid]], country="",
                 stage="", scenario="", sense="<=",
                 rhs=np.where(ix.slot_prev[s_grid] < 0, d.stock_initial_t[e_grid], 0.0),
                 demand_t=np.nan, slot=s_grid, dnode=-1)


def define_project_constraints(m: pyo.ConcreteModel, d: ProblemData, policy: ResolvedPolicy,
                               ix: ModelIndex, infeasible: list[str]) -> dict[str, pd.DataFrame]:
    r"""Investment families (model.formulation.investment): capacity that builds add to deliveries
    and contracts, one full build along a path, required builds, avoided demand.

    See :mod:`model.formulation.investment` for each family's mathematics; the row terms are
    built there once, for this formulation and the matrix path alike.
    """
    var = {"x": m.x, "q": m.q, "y": m.y, "r": m.r}
    out = {}
    for terms in project_rows(d, ix, policy, infeasible):
        by_row: list[list[Any]] = [[] for _ in range(terms.n)]
        for r, kind, pos, c in zip(terms.row.tolist(), terms.kind.tolist(),
                                   terms.pos.tolist(), terms.coef.tolist()):
            by_row[r].append(c * var[kind][pos])
        lo, up = terms.lower.tolist(), terms.upper.tolist()

        def rule(m: pyo.ConcreteModel, r: int, by_row=by_row, lo=lo, up=up) -> Any:
            body = pyo.quicksum(by_row[r])
            if np.isinf(lo[r]):
                return body <= up[r]
            return body >= lo[r]

        m.add_component(terms.family, pyo.Constraint(range(terms.n), rule=rule))
        out[terms.family] = terms.meta if terms.n else empty_meta()
    return out


def define_sharing_constraints(m: pyo.ConcreteModel, d: ProblemData,
                               ix: ModelIndex) -> dict[str, pd.DataFrame]:
    r"""Several buyers (model.formulation.sharing): the members' contracts and deliveries
    within the capacity they hold together, and stock moved between them.

    See :mod:`model.formulation.sharing` for each family's mathematics; the row
    terms are built there once, for this formulation and the matrix path alike.
    """
    var = {"x": m.x, "q": m.q, "y": m.y}
    if len(ix.m_elements):
        var.update({"m_in": m.m_in, "m_out": m.m_out})
    out = {}
    for rows in sharing_rows(d, ix):
        by_row: list[list[Any]] = [[] for _ in range(rows.n)]
        for r, kind, pos, c in zip(rows.row, rows.kind, rows.pos, rows.coef):
            by_row[r].append(c * var[kind][pos])

        def rule(m: pyo.ConcreteModel, r: int, by_row=by_row, rows=rows) -> Any:
            body = pyo.quicksum(by_row[r])
            if rows.lower[r] == rows.upper[r]:
                return body == rows.upper[r]
            return body <= rows.upper[r]

        m.add_component(rows.family, pyo.Constraint(range(rows.n), rule=rule))
        out[rows.family] = rows.frame()
    return out


def define_cost_expressions(m: pyo.ConcreteModel, d: ProblemData, ix: ModelIndex,
                            floors: StockFloorRows) -> None:
    r"""Each scenario's cost along its path, and the expected cost (discounted, currency).

    .. math:: C_w = \sum_{k,t} \delta_t\, r_k\, c_{kt}\, x_{k,t,d(k,t,w)}
                  + \sum_{t} \Big[\sum_k \delta_t\, c_{kt} m_{ktn} q_{kn}
                  + \sum_e \delta_t (v_e u_{en} + h_e I_{en})\Big]_{n = n(w,t)}

    :math:`- \sum_e \delta_t\, \rho_e z_{en}` (resale revenue) and
    :math:`+ \sum_r \delta_t\, \kappa_r \delta_r` (soft stock-floor deficits)
    on the path, with :math:`\delta_t = (1+rate)^{-k_t}` and :math:`m` the
    product of the scenario's price shocks. The reservation fee uses the base
    price; deliveries pay the shocked price clipped to the contract's
    ``price_floor`` and ``price_cap``. The expected cost weights each
    variable's cost by its node's probability:
    :math:`E[C] = \sum_i P(\mathrm{node}_i)\, c_i\, v_i = \sum_w p_w C_w`.
    """
    coef = cost_coefficients(d, ix, floors)
    S = ix.n_slots
    T, W = ix.slot_of.shape
    soft_slot = floors.slot[floors.soft]
    terms: list[tuple[float, Any, float]] = []          # (cost, variable, probability)
    for i, c in enumerate(coef["x"].tolist()):
        terms.append((c, m.x[i], float(ix.x_prob[i])))
    for i, c in enumerate(coef["q"].tolist()):
        terms.append((c, m.q[i], float(ix.slot_prob[ix.q_index[i, 2]])))
    moves = (("m_in", m.m_in),) if len(ix.m_elements) else ()
    for name, var in (("u", m.u), ("stock", m.stock), ("z", m.z)) + moves:
        for i, c in enumerate(coef[name].reshape(-1).tolist()):
            terms.append((c, var[i], float(ix.slot_prob[i % S])))
    for j, c in enumerate(coef["deficit"].tolist()):
        terms.append((c, m.deficit[j], float(ix.slot_prob[soft_slot[j]])))
    for j, c in enumerate(coef["y"].tolist()):
        terms.append((c, m.y[j], float(ix.y_prob[j])))
    root = d.decision_row[ix.x_index[:, 0], ix.x_index[:, 1]] == 0
    m.first_stage_cost = pyo.Expression(   # contracts decided at the root (two-stage view)
        expr=pyo.quicksum((float(coef["x"][i]) * m.x[i] for i in np.flatnonzero(root).tolist()
                           if coef["x"][i] != 0.0), start=0.0))
    m.expected_cost = pyo.Expression(
        expr=pyo.quicksum((c * p * v for c, v, p in terms if c != 0.0 and p != 0.0),
                          start=0.0))
    by_w: dict[int, list[Any]] = defaultdict(list)
    for (k, t, w), i in zip(np.argwhere(ix.xcol_of >= 0).tolist(),
                            ix.xcol_of[ix.xcol_of >= 0].tolist()):
        if coef["x"][i] != 0.0:
            by_w[w].append(float(coef["x"][i]) * m.x[i])
    for (p, tau, w), i in zip(np.argwhere(ix.ycol_of >= 0).tolist(),
                              ix.ycol_of[ix.ycol_of >= 0].tolist()):
        if coef["y"][i] != 0.0:
            by_w[w].append(float(coef["y"][i]) * m.y[i])
    for w in range(W):
        for t in range(T):
            s = int(ix.slot_of[t, w])
            for i in ix.qpos_of[:, s][ix.qpos_of[:, s] >= 0].tolist():
                if coef["q"][i] != 0.0:
                    by_w[w].append(float(coef["q"][i]) * m.q[i])
            for name, var in (("u", m.u), ("stock", m.stock), ("z", m.z)) + moves:
                for e in range(coef[name].shape[0]):
                    c = float(coef[name][e, s])
                    if c != 0.0:
                        by_w[w].append(c * var[e * S + s])
            for j in np.flatnonzero(soft_slot == s).tolist():
                if coef["deficit"][j] != 0.0:
                    by_w[w].append(float(coef["deficit"][j]) * m.deficit[j])
    m.scenario_cost = pyo.Expression(
        range(W), rule=lambda m, w: pyo.quicksum(by_w.get(w, []), start=0.0))


def define_budget_constraint(m: pyo.ConcreteModel, d: ProblemData,
                             policy: ResolvedPolicy) -> pd.DataFrame:
    r"""Budget: expected discounted cost at most `amount`.

    .. math:: E[C] \le B

    Reads ``policies.<name>.budget``.
    """
    budgets = policy.budgets
    m.budget = pyo.Constraint(range(len(budgets)),
                              rule=lambda m, i: m.expected_cost <= budgets[i][1])
    if not budgets:
        return empty_meta()
    return pd.DataFrame([{"constraint": "budget", "rule": lbl, "element": "", "period": "",
                          "country": "", "stage": "", "scenario": "", "sense": "<=",
                          "rhs": amount, "demand_t": np.nan, "slot": -1, "dnode": -1}
                         for lbl, amount in budgets], columns=META_COLUMNS)


def define_cvar_constraints(m: pyo.ConcreteModel, d: ProblemData) -> pd.DataFrame:
    r"""Rockafellar-Uryasev linearisation of CVaR (only when lambda > 0).

    .. math:: z_w \ge C_w - \eta, \quad z_w \ge 0, \qquad
              CVaR_\alpha = \eta + \frac{1}{1-\alpha} \sum_w p_w z_w
    """
    W = len(d.scenarios)
    m.eta = pyo.Var(within=pyo.Reals)
    m.excess = pyo.Var(range(W), within=pyo.NonNegativeReals)
    m.cvar_excess = pyo.Constraint(
        range(W), rule=lambda m, w: m.excess[w] >= m.scenario_cost[w] - m.eta)
    return _meta(constraint="cvar_excess", rule="", element="", period="", country="",
                 stage="", scenario=d.scenarios, sense=">=", rhs=0.0, demand_t=np.nan,
                 slot=-1, dnode=-1)


def define_ambiguity_constraints(m: pyo.ConcreteModel, d: ProblemData) -> dict[str, pd.DataFrame]:
    r"""The worst expectation over a total-variation ball (only when theta > 0).

    Doubt on the probabilities: over every distribution :math:`q` with
    :math:`\sum_w |q_w - p_w| \le \theta`, the largest :math:`\sum_w q_w C_w`
    equals :math:`\tfrac{\theta}{2}\max_w C_w + (1-\tfrac{\theta}{2})\,
    CVaR_{\theta/2}(C)` (Jiang and Guan 2018), the optimum of

    .. math:: \min\ \tfrac{\theta}{2}\tau + (1-\tfrac{\theta}{2})\eta_A
              + \sum_w p_w s_w \quad \text{s.t.}\quad \tau \ge C_w,\
              s_w \ge C_w - \eta_A,\ s_w \ge 0.

    Reads ``risk.ambiguity.total_variation``. The rows come in the order of the
    matrix build: ``ambiguity_max`` then ``ambiguity_excess``.
    """
    W = len(d.scenarios)
    m.amb_max = pyo.Var(within=pyo.Reals)
    m.amb_eta = pyo.Var(within=pyo.Reals)
    m.amb_excess = pyo.Var(range(W), within=pyo.NonNegativeReals)
    m.ambiguity_max = pyo.Constraint(
        range(W), rule=lambda m, w: m.amb_max >= m.scenario_cost[w])
    m.ambiguity_excess = pyo.Constraint(
        range(W), rule=lambda m, w: m.amb_excess[w] >= m.scenario_cost[w] - m.amb_eta)
    meta = {}
    for name in ("ambiguity_max", "ambiguity_excess"):
        meta[name] = _meta(constraint=name, rule="", element="", period="", country="",
                           stage="", scenario=d.scenarios, sense=">=", rhs=0.0,
                           demand_t=np.nan, slot=-1, dnode=-1)
    return meta


def define_objective(m: pyo.ConcreteModel, d: ProblemData) -> None:
    r"""Minimise :math:`(1-\lambda)\,E_\theta[C] + \lambda\, CVaR_\alpha(C)`, with
    :math:`E_\theta` the worst expectation within total-variation distance
    :math:`\theta` of the probabilities (:math:`E[C]` at :math:`\theta = 0`)."""
    lam, alpha = d.risk_lambda, d.risk_alpha
    if d.ambiguous:
        theta = d.ambiguity
        obj = (1.0 - lam) * (theta / 2 * m.amb_max + (1 - theta / 2) * m.amb_eta
                             + sum(float(p) * m.amb_excess[w]
                                   for w, p in enumerate(d.probability) if p))
    else:
        obj = (1.0 - lam) * m.expected_cost if lam < 1.0 else 0.0
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
    m.expected_cost_objective = pyo.Objective(expr=m.expected_cost, sense=pyo.minimize)


# --------------------------------------------------------------------------- recipe
def build_model(d: ProblemData, policy: ResolvedPolicy) -> BuiltModel:
    """Build the extensive form: the list of constraint families above."""
    import time

    start = time.perf_counter()
    gc_was_enabled = gc.isenabled()
    gc.disable()  # Pyomo's many small objects make the cyclic GC pay for nothing
    try:
        ix = model_index(d, policy)
        floors = stock_floor_rows(d, ix, policy)
        m = pyo.ConcreteModel(name=d.name)
        define_variables(m, d, ix, floors)
        infeasible: list[str] = list(policy.infeasible)
        meta = {
            "contract_delivery": define_contract_delivery_constraints(m, d, ix),
            "committed": define_committed_constraints(m, d, ix),
            "min_take": define_min_take_constraints(m, d, ix),
            "balance": define_balance_constraints(m, d, ix),
            "max_single_country_share": define_single_country_cap_constraints(
                m, d, policy, ix, infeasible),
            "min_domestic_share": define_domestic_floor_constraints(
                m, d, policy, ix, infeasible),
            "min_recycled_share": define_recycled_floor_constraints(
                m, d, policy, ix, infeasible),
            "min_stock_days": define_stock_days_constraints(m, d, ix, floors),
            "build_stock": define_stock_build_constraints(m, d, policy, ix),
        }
        meta.update(define_project_constraints(m, d, policy, ix, infeasible))
        meta.update(define_sharing_constraints(m, d, ix))
        define_cost_expressions(m, d, ix, floors)
        meta["budget"] = define_budget_constraint(m, d, policy)
        if d.risk_lambda > 0:
            meta["cvar_excess"] = define_cvar_constraints(m, d)
        if d.ambiguous:
            meta.update(define_ambiguity_constraints(m, d))
        define_objective(m, d)
    finally:
        if gc_was_enabled:
            gc.enable()
    return BuiltModel(m, d, policy, ix.x_index, ix.q_index, meta, infeasible,
                      time.perf_counter() - start, index=ix, floors=floors)
