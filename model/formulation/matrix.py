"""A vectorised build of the same LP as :mod:`model.formulation.formulation`, straight to matrices.

The Pyomo formulation is the definition of the model. This module builds the
identical linear program with numpy (same variables, same rows in the same
orientation, same row metadata) without creating Pyomo objects, which is
what makes large scenario sets cheap. ``tests/test_matrix_path.py`` checks,
on every test instance, that the two give the same matrix, bounds and costs.

Columns (model.formulation.indexing): x (contract arc, period, decision node), q (arc,
slot), u and stock (element, slot), then eta and excess (per scenario) when
lambda > 0. A slot is a recourse node: one column serves every scenario in
it. Rows: one block per constraint family, in the order and orientation of
the formulation.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..input.data import ProblemData
from .built import META_COLUMNS, BuiltModel
from .indexing import (ModelIndex, ProjectIndex, StockFloorRows, model_index,
                       stock_floor_rows)
from .investment import project_rows
from .policies import ResolvedPolicy, ShareRule, floor_without_sources
from .sharing import sharing_rows


@dataclass
class LinearProgram:
    """min c x + offset  s.t.  row_lower <= A x <= row_upper,  col_lower <= x <= col_upper."""

    A: sp.csc_matrix
    cost: np.ndarray
    col_lower: np.ndarray
    col_upper: np.ndarray
    row_lower: np.ndarray
    row_upper: np.ndarray
    col_blocks: dict[str, tuple[int, int]]     # variable name -> [start, stop) columns
    row_blocks: dict[str, tuple[int, int]]     # family name -> [start, stop) rows
    offset: float = 0.0
    integrality: np.ndarray | None = None      # (n_col,) 1 where a column is binary

    @property
    def row_sense(self) -> np.ndarray:
        """+1 for <= rows, -1 for >= rows, 0 for equalities (as the Pyomo compiler)."""
        lo, up = np.isfinite(self.row_lower), np.isfinite(self.row_upper)
        return np.where(lo & up, 0, np.where(up, 1, -1))


@dataclass
class _Rows:
    """Triplets of one row block, appended family by family."""

    rows: list[np.ndarray] = field(default_factory=list)
    cols: list[np.ndarray] = field(default_factory=list)
    vals: list[np.ndarray] = field(default_factory=list)
    lower: list[np.ndarray] = field(default_factory=list)
    upper: list[np.ndarray] = field(default_factory=list)
    n: int = 0

    def add(self, r: np.ndarray, c: np.ndarray, v: np.ndarray, lo: np.ndarray,
            up: np.ndarray) -> tuple[int, int]:
        start = self.n
        self.rows.append(np.asarray(r, dtype=np.int64) + start)
        self.cols.append(np.asarray(c, dtype=np.int64))
        self.vals.append(np.asarray(v, dtype=float))
        self.lower.append(np.asarray(lo, dtype=float))
        self.upper.append(np.asarray(up, dtype=float))
        self.n += len(lo)
        return start, self.n


def scenario_words(d: ProblemData, scenarios: np.ndarray, limit: int = 3) -> str:
    """'scenario a' or 'scenarios a, b and 3 more' (a node's scenarios, in words)."""
    names = [d.scenarios[int(w)] for w in scenarios]
    if len(names) == 1:
        return f"scenario {names[0]}"
    shown = ", ".join(names[:limit])
    return f"scenarios {shown}" + (f" and {len(names) - limit} more" if len(names) > limit
                                   else "")


def _slot_scenarios(ix: ModelIndex, s: int) -> np.ndarray:
    return np.flatnonzero(ix.slot_of[ix.slot_t[s]] == s)


def _share_block(d: ProblemData, ix: ModelIndex, rules: list[ShareRule], xcol: np.ndarray,
                 qcol: np.ndarray, name: str, infeasible: list[str]) -> tuple[np.ndarray, ...]:
    """Rows sum(q or x over arcs, unit, t) <=/>= share * demand, as formulation._share_rows.

    Rows come rule by rule, country by country, unit by unit, then slot by slot
    (recourse nodes in period order) or, in plan mode, period by period and
    distinct set of contract variables (decision nodes); each
    (rule, country, unit) is one vectorised step over its slots.
    """
    r_all, c_all, lo_all, up_all, parts = [], [], [], [], []
    row = 0
    period_names = np.array(d.periods, dtype=object)
    drow = d.decision_row
    for rule in rules:
        periods = np.asarray(rule.periods, dtype=int)
        if not len(periods):
            continue
        sel = np.flatnonzero(np.isin(ix.slot_t, periods))           # slots, period order
        for arcs_of in rule.arc_sets:
            for unit_label, unit in rule.units:
                arcs = np.flatnonzero(arcs_of.arcs & np.isin(d.arc_element, unit))
                if rule.plan:
                    blocks = []
                    for t in periods:
                        cols_w = xcol[arcs, t, :]                         # (arcs, W)
                        first = np.sort(np.unique(cols_w.T, axis=0, return_index=True)[1]) \
                            if len(arcs) else np.zeros(1, np.int64)
                        last_row = np.where(cols_w[:, first] >= 0, drow[arcs, t][:, None], -1
                                            ).max(axis=0) if len(arcs) else \
                            np.full(len(first), -1)
                        dnode = np.where(last_row >= 0, d.decision_node[
                            np.maximum(last_row, 0), first], -1)
                        blocks.append((cols_w[:, first], np.full(len(first), t), first, dnode))
                    cols = np.concatenate([b[0] for b in blocks], axis=1)
                    row_t = np.concatenate([b[1] for b in blocks])
                    row_w = np.concatenate([b[2] for b in blocks])
                    row_dnode = np.concatenate([b[3] for b in blocks])
                    dem = d.base_demand_t[unit][:, row_t].sum(axis=0)
                    row_slot = np.full(len(row_t), -1)
                else:
                    cols = qcol[arcs][:, sel]                                # (arcs, n)
                    row_t = ix.slot_t[sel]
                    row_w = ix.slot_rep[sel]
                    dem = d.demand_t[unit][:, row_t, row_w].sum(axis=0)
                    row_slot = sel
                    row_dnode = np.full(len(sel), -1)
                has = (cols >= 0).any(axis=0)
                rhs = rule.share_t[row_t] * dem
                if rule.sense == ">=":
                    for j in np.flatnonzero(~has & (rhs > 1e-9)):
                        where = None if rule.plan else scenario_words(
                            d, _slot_scenarios(ix, int(row_slot[j])))
                        infeasible.append(floor_without_sources(
                            rule, arcs_of, unit_label, d.periods[row_t[j]], float(rhs[j]),
                            where))
                kept = np.flatnonzero(has)             # a cap with nothing under it holds
                if not len(kept):
                    continue
                sub = cols[:, kept]
                a_idx, j_idx = np.nonzero(sub >= 0)
                r_all.append(row + j_idx)
                c_all.append(sub[a_idx, j_idx])
                rhs_kept = rhs[kept]
                n_new = len(kept)
                lo_all.append(rhs_kept if rule.sense == ">=" else np.full(n_new, -np.inf))
                up_all.append(rhs_kept if rule.sense == "<=" else np.full(n_new, np.inf))
                parts.append((n_new, rule.label, unit_label, arcs_of.country, arcs_of.stage,
                              rule.sense, period_names[row_t[kept]], rhs_kept, dem[kept],
                              row_slot[kept], row_dnode[kept]))
                row += n_new
    r = np.concatenate(r_all) if r_all else np.zeros(0, np.int64)
    c = np.concatenate(c_all) if c_all else np.zeros(0, np.int64)
    lo = np.concatenate(lo_all) if lo_all else np.zeros(0)
    up = np.concatenate(up_all) if up_all else np.zeros(0)
    return (r, c, np.ones(len(c)), lo, up, _share_meta(name, parts))


def _share_meta(name: str, parts: list[tuple]) -> pd.DataFrame:
    """Row metadata of the share rows from per-(rule, country, unit) pieces."""
    if not parts:
        return empty_meta()
    counts = [p[0] for p in parts]

    def repeat(i: int) -> np.ndarray:
        return np.repeat(np.array([p[i] for p in parts], dtype=object), counts)

    return pd.DataFrame({
        "constraint": name, "rule": repeat(1), "element": repeat(2),
        "period": np.concatenate([p[6] for p in parts]), "country": repeat(3),
        "stage": repeat(4), "scenario": "",
        "sense": repeat(5), "rhs": np.concatenate([p[7] for p in parts]).astype(float),
        "demand_t": np.concatenate([p[8] for p in parts]).astype(float),
        "slot": np.concatenate([p[9] for p in parts]).astype(np.int64),
        "dnode": np.concatenate([p[10] for p in parts]).astype(np.int64)},
        columns=META_COLUMNS).infer_objects()   # integer period labels: int64, as before


_EMPTY_META: pd.DataFrame | None = None


def empty_meta() -> pd.DataFrame:
    """Row metadata of a family without rows (a copy of one template: building an
    empty frame column by column costs 50 times more, on every block)."""
    global _EMPTY_META
    if _EMPTY_META is None:
        _EMPTY_META = pd.DataFrame({c: pd.Series(dtype=np.int64 if c in ("slot", "dnode")
                                                 else object) for c in META_COLUMNS})
    return _EMPTY_META.copy()


def build_matrix(d: ProblemData, policy: ResolvedPolicy) -> BuiltModel:
    """Build the extensive form as matrices (see the module docstring)."""
    start_time = time.perf_counter()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _build(d, policy, start_time)
    finally:
        if gc_was_enabled:
            gc.enable()


def cost_coefficients(d: ProblemData, ix: ModelIndex,
                      floors: StockFloorRows | None = None) -> dict[str, np.ndarray]:
    """Discounted cost per unit of each variable in a scenario that has it (currency/t).

    x: reservation fee at the base price; q: the slot's delivered price (shocked,
    clipped to the contract's floor and cap); u: shortage penalty; stock: holding
    cost, less the terminal value in the last period (stock left at the end is
    credited); z: minus the resale price (revenue); deficit: the stock floor's
    deficit cost; y: the capital cost in the period decided or, with a `life`, its
    annuities inside the horizon. u and stock are (E, S), z is (len(z_elements), S).
    """
    disc = d.discount
    k_x, t_x = ix.x_index[:, 0], ix.x_index[:, 1]
    k_q, t_q, s_q = ix.q_index[:, 0], ix.q_index[:, 1], ix.q_index[:, 2]
    ds = disc[ix.slot_t]
    # stock left after the last period is credited at its terminal value
    last = (ix.slot_t == len(d.periods) - 1).astype(float)
    tv = d.terminal_value if d.terminal_value is not None else np.zeros(len(d.elements))
    terminal = tv[:, None] * (ds * last)[None, :]
    out = {
        "x": disc[t_x] * d.reservation_fee[k_x] * d.price[k_x, t_x],
        "q": disc[t_q] * d.delivery_price[k_q, t_q, ix.slot_rep[s_q]],
        "u": d.shortage_penalty[:, None] * ds[None, :],
        "stock": d.holding_cost[:, None] * ds[None, :] - terminal,
        "z": -d.resale_price[ix.z_elements][:, None] * ds[None, :],
    }
    if floors is not None:
        soft = floors.soft
        out["deficit"] = floors.deficit_cost[soft] * ds[floors.slot[soft]]
    out["y"] = project_costs(d, ix)
    out["r"] = np.zeros((0 if ix.r_elements is None else len(ix.r_elements), len(ds)))
    # several buyers: a tonne received from another member costs the transfer cost
    m_el = ix.m_elements if ix.m_elements is not None else np.zeros(0, np.int64)
    tc = d.buyers.transfer_cost[m_el] if d.buyers is not None else np.zeros(0)
    out["m_in"] = tc[:, None] * ds[None, :]
    out["m_out"] = np.zeros((len(m_el), len(ds)))
    return out


def project_costs(d: ProblemData, ix: ModelIndex | ProjectIndex) -> np.ndarray:
    """Discounted cost per unit of each project size column in a scenario that has it:
    the full-size cost per unit of size, a fixed cost once built (binary y), charged in
    the period decided or, with a life, as annuities inside the horizon."""
    if ix.y_index is None or not len(ix.y_index):
        return np.zeros(0)
    pj = d.projects
    p, tau = ix.y_index[:, 0], ix.y_index[:, 1]
    return (ix.y_unit * pj.cost[p] + np.where(ix.y_integer, pj.fixed_cost[p], 0.0)) \
        * pj.charge_weight(d.discount)[p, tau]


def _build(d: ProblemData, policy: ResolvedPolicy, start_time: float) -> BuiltModel:
    E, T, W = d.demand_t.shape
    lam, alpha = d.risk_lambda, d.risk_alpha
    contract = d.is_contract
    ix = model_index(d, policy)
    floors = stock_floor_rows(d, ix, policy)
    S = ix.n_slots
    Z = len(ix.z_elements)

    # ---- columns: x (per decision node), q (per slot), u, stock, z (element, slot),
    #      deficit (per soft stock-floor row), then eta and excess
    soft = np.flatnonzero(floors.soft)
    R = len(ix.r_elements)
    M = len(ix.m_elements)      # several buyers: stock moved (model.formulation.sharing)
    sizes = {"x": len(ix.x_index), "q": len(ix.q_index), "u": E * S, "stock": E * S,
             "z": Z * S, "deficit": len(soft), "y": len(ix.y_index), "r": R * S}
    if M:
        sizes.update({"m_in": M * S, "m_out": M * S})
    blocks, n_col = {}, 0
    for name, n in sizes.items():
        blocks[name] = (n_col, n_col + n)
        n_col += n
    n_cost = n_col
    if lam > 0:
        blocks["eta"] = (n_col, n_col + 1)
        blocks["excess"] = (n_col + 1, n_col + 1 + W)
        n_col += 1 + W
    tv = d.ambiguity if d.ambiguous else 0.0
    if tv > 0:      # the worst expectation over a total-variation ball (issue 25)
        blocks["amb_max"] = (n_col, n_col + 1)
        blocks["amb_eta"] = (n_col + 1, n_col + 2)
        blocks["amb_excess"] = (n_col + 2, n_col + 2 + W)
        n_col += 2 + W
    off = {name: a for name, (a, _) in blocks.items()}
    xcol = np.where(ix.xcol_of >= 0, off["x"] + ix.xcol_of, -1)          # (K, T, W)
    qcol = np.where(ix.qpos_of >= 0, off["q"] + ix.qpos_of, -1)          # (K, S)
    es = np.arange(E * S).reshape(E, S)
    ucol, scol = off["u"] + es, off["stock"] + es
    zcol = off["z"] + np.arange(Z * S).reshape(Z, S)
    rcol = off["r"] + np.arange(R * S).reshape(R, S)
    mcol = {kind: off[kind] + np.arange(M * S).reshape(M, S) for kind in ("m_in", "m_out")} \
        if M else {}

    col_lower = np.zeros(n_col)
    col_upper = np.full(n_col, np.inf)
    k_x, t_x = ix.x_index[:, 0], ix.x_index[:, 1]
    col_upper[slice(*blocks["x"])] = d.capacity_t[k_x, t_x] + ix.potential[k_x, t_x]
    col_upper[slice(*blocks["y"])] = ix.y_upper
    col_upper[slice(*blocks["q"])] = ix.q_bound
    col_upper[slice(*blocks["stock"])] = np.repeat(d.stock_capacity_t, S)
    col_upper[slice(*blocks["u"])] = ix.u_upper      # u <= D with several buyers
    if lam > 0:
        col_lower[blocks["eta"][0]] = -np.inf
    if tv > 0:
        col_lower[blocks["amb_max"][0]] = -np.inf
        col_lower[blocks["amb_eta"][0]] = -np.inf

    # ---- costs: per unit in a scenario (coef) and expected (times the node's probability)
    coef = cost_coefficients(d, ix, floors)
    k_q, t_q, s_q = ix.q_index[:, 0], ix.q_index[:, 1], ix.q_index[:, 2]
    prob = {"x": ix.x_prob, "q": ix.slot_prob[s_q], "u": np.tile(ix.slot_prob, E),
            "stock": np.tile(ix.slot_prob, E), "z": np.tile(ix.slot_prob, Z),
            "deficit": ix.slot_prob[floors.slot[soft]], "y": ix.y_prob,
            "r": np.tile(ix.slot_prob, R), "m_in": np.tile(ix.slot_prob, M),
            "m_out": np.tile(ix.slot_prob, M)}
    expected = np.concatenate([coef[n].reshape(-1) * prob[n] for n in sizes])
    cost = np.zeros(n_col)
    if tv > 0:      # (1-lam) [tv/2 tau + (1 - tv/2) eta_A + sum_w p_w s_w]
        cost[blocks["amb_max"][0]] = (1 - lam) * tv / 2
        cost[blocks["amb_eta"][0]] = (1 - lam) * (1 - tv / 2)
        cost[slice(*blocks["amb_excess"])] = (1 - lam) * d.probability
    elif lam < 1:
        cost[:n_cost] = (1 - lam) * expected
    if lam > 0:
        cost[blocks["eta"][0]] = lam
        cost[slice(*blocks["excess"])] = lam * d.probability / (1 - alpha)

    rows = _Rows()
    meta: dict[str, pd.DataFrame] = {}
    row_blocks: dict[str, tuple[int, int]] = {}
    infeasible: list[str] = list(policy.infeasible)
    elements = np.array(d.elements, dtype=object)
    periods = np.array(d.periods, dtype=object)

    # 1. contract_delivery: q[k, s] - x[k, t, decision node of s] <= 0
    cq = np.flatnonzero(contract[k_q]) if len(k_q) else np.zeros(0, int)
    n_cd = len(cq)
    x_of_q = xcol[k_q[cq], t_q[cq], ix.slot_rep[s_q[cq]]]
    row_blocks["contract_delivery"] = rows.add(
        np.repeat(np.arange(n_cd), 2), np.column_stack([off["q"] + cq, x_of_q]).reshape(-1),
        np.tile([1.0, -1.0], n_cd), np.full(n_cd, -np.inf), np.zeros(n_cd))
    meta["contract_delivery"] = pd.DataFrame({
        "constraint": "contract_delivery", "rule": "",
        "element": elements[d.arc_element[k_q[cq]]], "period": periods[t_q[cq]],
        "country": "", "stage": "", "scenario": "", "sense": "<=", "rhs": 0.0,
        "demand_t": np.nan, "slot": s_q[cq], "dnode": -1}, columns=META_COLUMNS)

    # 2. committed: x[k, t, node] >= committed[k, t] (signed volumes, at every node)
    cx = np.flatnonzero(d.committed_t[k_x, t_x] > 0) if len(k_x) else np.zeros(0, int)
    need = d.committed_t[k_x[cx], t_x[cx]]
    row_blocks["committed"] = rows.add(np.arange(len(cx)), off["x"] + cx, np.ones(len(cx)),
                                       need, np.full(len(cx), np.inf))
    meta["committed"] = pd.DataFrame({
        "constraint": "committed", "rule": d.sources["id"].to_numpy()[d.arc_source[k_x[cx]]],
        "element": elements[d.arc_element[k_x[cx]]], "period": periods[t_x[cx]],
        "country": "", "stage": "", "scenario": "", "sense": ">=", "rhs": need,
        "demand_t": np.nan, "slot": -1, "dnode": ix.x_index[cx, 2]}, columns=META_COLUMNS)

    # 3. min_take: q[k, s] - theta_k a[k, t, s] x[k, t, node] >= 0 (take-or-pay)
    theta = d.min_take[k_q[cq]] * d.availability[k_q[cq], t_q[cq], ix.slot_rep[s_q[cq]]] \
        if n_cd else np.zeros(0)
    mt = np.flatnonzero(theta > 0)
    row_blocks["min_take"] = rows.add(
        np.repeat(np.arange(len(mt)), 2),
        np.column_stack([off["q"] + cq[mt], x_of_q[mt]]).reshape(-1),
        np.column_stack([np.ones(len(mt)), -theta[mt]]).reshape(-1),
        np.zeros(len(mt)), np.full(len(mt), np.inf))
    meta["min_take"] = pd.DataFrame({
        "constraint": "min_take",
        "rule": d.sources["id"].to_numpy()[d.arc_source[k_q[cq[mt]]]],
        "element": elements[d.arc_element[k_q[cq[mt]]]], "period": periods[t_q[cq[mt]]],
        "country": "", "stage": "", "scenario": "", "sense": ">=", "rhs": 0.0,
        "demand_t": np.nan, "slot": s_q[cq[mt]], "dnode": -1}, columns=META_COLUMNS)

    # 4. balance per (e, slot): I[prev] + sum q + u - I - z = D - (I0 at t = 0)
    e_of_q = d.arc_element[k_q]
    has_prev = ix.slot_prev >= 0
    prev_rows = es[:, has_prev].reshape(-1)
    prev_cols = scol[:, ix.slot_prev[has_prev]].reshape(-1)
    rhs = d.demand_t[:, ix.slot_t, ix.slot_rep].copy()                # (E, S)
    rhs[:, ix.slot_t == 0] -= d.stock_initial_t[:, None]
    z_rows = es[ix.z_elements].reshape(-1)
    r_rows = es[ix.r_elements].reshape(-1)     # avoided demand (demand-reducing projects)
    m_rows = es[ix.m_elements].reshape(-1)     # several buyers: + received - sent
    r = np.concatenate([e_of_q * S + s_q, prev_rows, es.reshape(-1), es.reshape(-1), z_rows,
                        r_rows] + ([m_rows, m_rows] if M else []))
    c = np.concatenate([off["q"] + np.arange(len(k_q)), prev_cols, ucol.reshape(-1),
                        scol.reshape(-1), zcol.reshape(-1), rcol.reshape(-1)]
                       + ([mcol["m_in"].reshape(-1), mcol["m_out"].reshape(-1)] if M else []))
    v = np.concatenate([np.ones(len(k_q)), np.ones(len(prev_rows)), np.ones(E * S),
                        -np.ones(E * S), -np.ones(Z * S), np.ones(R * S)]
                       + ([np.ones(M * S), -np.ones(M * S)] if M else []))
    row_blocks["balance"] = rows.add(r, c, v, rhs.reshape(-1), rhs.reshape(-1))
    e_grid, s_grid = np.divmod(np.arange(E * S), S)
    meta["balance"] = pd.DataFrame({
        "constraint": "balance", "rule": "", "element": elements[e_grid],
        "period": periods[ix.slot_t[s_grid]], "country": "", "stage": "", "scenario": "",
        "sense": "==", "rhs": d.demand_t[e_grid, ix.slot_t[s_grid], ix.slot_rep[s_grid]],
        "demand_t": np.nan, "slot": s_grid, "dnode": -1}, columns=META_COLUMNS)

    # 5-7. share families (plan rows sum x, scenario rows sum q)
    for family in ("max_single_country_share", "min_domestic_share", "min_recycled_share"):
        fam_rules = [rl for rl in policy.share_rules if rl.family == family]
        r, c, v, lo, up, fam_meta = _share_block(d, ix, fam_rules, xcol, qcol, family,
                                                 infeasible)
        row_blocks[family] = rows.add(r, c, v, lo, up)
        meta[family] = fam_meta

    # 8. min_stock_days: sum_{e in unit} I[e, s] (+ deficit) >= target (where it binds)
    n_sd = len(floors.slot)
    sizes_u = np.array([len(u) for u in floors.unit], dtype=np.int64)
    unit_flat = np.concatenate([np.asarray(u, np.int64) for u in floors.unit]) if n_sd \
        else np.zeros(0, np.int64)
    r = np.concatenate([np.repeat(np.arange(n_sd), sizes_u), soft])
    c = np.concatenate([scol[unit_flat, np.repeat(floors.slot, sizes_u)],
                        off["deficit"] + np.arange(len(soft))])
    row_blocks["min_stock_days"] = rows.add(r, c, np.ones(len(c)), floors.target,
                                            np.full(n_sd, np.inf))
    meta["min_stock_days"] = pd.DataFrame({
        "constraint": "min_stock_days", "rule": floors.rule, "element": floors.unit_label,
        "period": periods[ix.slot_t[floors.slot]], "country": "", "stage": "", "scenario": "",
        "sense": ">=", "rhs": floors.target, "demand_t": np.nan, "slot": floors.slot,
        "dnode": -1}, columns=META_COLUMNS) if n_sd else empty_meta()

    # 8b. build_stock: false: I[e, s] - I[e, prev] <= 0 (I[e, s] <= I0 in the first period)
    if policy.no_stock_build:
        e_g, s_g = np.divmod(np.arange(E * S), S)
        prev = ix.slot_prev[s_g]
        first = prev < 0
        r = np.concatenate([np.arange(E * S), np.flatnonzero(~first)])
        c = np.concatenate([scol[e_g, s_g], scol[e_g[~first], prev[~first]]])
        v = np.concatenate([np.ones(E * S), -np.ones(int((~first).sum()))])
        up = np.where(first, d.stock_initial_t[e_g], 0.0)
        row_blocks["build_stock"] = rows.add(r, c, v, np.full(E * S, -np.inf), up)
        meta["build_stock"] = pd.DataFrame({
            "constraint": "build_stock", "rule": policy.no_stock_build[0],
            "element": elements[e_g], "period": periods[ix.slot_t[s_g]], "country": "",
            "stage": "", "scenario": "", "sense": "<=", "rhs": up, "demand_t": np.nan,
            "slot": s_g, "dnode": -1}, columns=META_COLUMNS)
    else:
        row_blocks["build_stock"] = rows.add(np.zeros(0), np.zeros(0), np.zeros(0),
                                             np.zeros(0), np.zeros(0))
        meta["build_stock"] = empty_meta()

    # 9. projects: capacity added, sizes, required builds, avoided demand
    # (model.formulation.investment)
    for terms in project_rows(d, ix, policy, infeasible):
        col = np.array([off[kind] for kind in terms.kind], dtype=np.int64) + terms.pos \
            if len(terms.kind) else np.zeros(0, np.int64)
        row_blocks[terms.family] = rows.add(terms.row, col, terms.coef, terms.lower,
                                            terms.upper)
        meta[terms.family] = terms.meta if terms.n else empty_meta()

    # 9b. several buyers: shared capacity, stock moved between members
    # (model.formulation.sharing)
    for shared in sharing_rows(d, ix):
        kinds = np.array(shared.kind, dtype=object)
        col = np.array([off[kind] for kind in shared.kind], dtype=np.int64) + \
            np.array(shared.pos, dtype=np.int64) if len(kinds) else np.zeros(0, np.int64)
        row_blocks[shared.family] = rows.add(np.array(shared.row, dtype=np.int64), col,
                                             np.array(shared.coef, dtype=float),
                                             np.array(shared.lower, dtype=float),
                                             np.array(shared.upper, dtype=float))
        meta[shared.family] = shared.frame()

    # 10. budget: expected cost <= B
    nz = np.flatnonzero(expected != 0)
    nb = len(policy.budgets)
    row_blocks["budget"] = rows.add(
        np.repeat(np.arange(nb), len(nz)), np.tile(nz, nb), np.tile(expected[nz], nb),
        np.full(nb, -np.inf), np.array([amount for _, amount in policy.budgets], dtype=float))
    meta["budget"] = pd.DataFrame(
        [("budget", lbl, "", "", "", "", "", "<=", amount, np.nan, -1, -1)
         for lbl, amount in policy.budgets], columns=META_COLUMNS) if nb else empty_meta()

    # 10. cvar_excess (lambda > 0): C_w - eta - excess_w <= 0, as Pyomo writes
    #     `excess >= C_w - eta`; C_w sums the variables on scenario w's path
    if lam > 0 or tv > 0:
        path_r, path_c, path_v = _scenario_cost_terms(d, ix, coef, floors, off, xcol, qcol,
                                                      ucol, scol, zcol, mcol.get("m_in"))
    if lam > 0:
        row_blocks["cvar_excess"] = rows.add(
            np.concatenate([path_r, np.arange(W), np.arange(W)]),
            np.concatenate([path_c, np.full(W, off["eta"]), off["excess"] + np.arange(W)]),
            np.concatenate([path_v, -np.ones(W), -np.ones(W)]), np.full(W, -np.inf),
            np.zeros(W))
        meta["cvar_excess"] = _scenario_meta(d, "cvar_excess")
    # 11. ambiguity (tv > 0): C_w - tau <= 0 and C_w - eta_A - s_w <= 0
    if tv > 0:
        row_blocks["ambiguity_max"] = rows.add(
            np.concatenate([path_r, np.arange(W)]),
            np.concatenate([path_c, np.full(W, off["amb_max"])]),
            np.concatenate([path_v, -np.ones(W)]), np.full(W, -np.inf), np.zeros(W))
        meta["ambiguity_max"] = _scenario_meta(d, "ambiguity_max")
        row_blocks["ambiguity_excess"] = rows.add(
            np.concatenate([path_r, np.arange(W), np.arange(W)]),
            np.concatenate([path_c, np.full(W, off["amb_eta"]),
                            off["amb_excess"] + np.arange(W)]),
            np.concatenate([path_v, -np.ones(W), -np.ones(W)]), np.full(W, -np.inf),
            np.zeros(W))
        meta["ambiguity_excess"] = _scenario_meta(d, "ambiguity_excess")

    A = sp.csc_matrix((np.concatenate(rows.vals),
                       (np.concatenate(rows.rows), np.concatenate(rows.cols))),
                      shape=(rows.n, n_col))
    A.sum_duplicates()
    integrality = np.zeros(n_col, dtype=np.int8)
    integrality[off["y"] + np.flatnonzero(ix.y_integer)] = 1
    lp = LinearProgram(A, cost, col_lower, col_upper, np.concatenate(rows.lower),
                       np.concatenate(rows.upper), blocks, row_blocks,
                       integrality=integrality if integrality.any() else None)
    built = BuiltModel(None, d, policy, ix.x_index, ix.q_index, meta, infeasible,
                       time.perf_counter() - start_time, index=ix)
    built.matrix = lp
    built.floors = floors
    return built


def _scenario_cost_terms(d: ProblemData, ix: ModelIndex, coef: dict[str, np.ndarray],
                         floors: StockFloorRows, off: dict[str, int], xcol: np.ndarray,
                         qcol: np.ndarray, ucol: np.ndarray, scol: np.ndarray,
                         zcol: np.ndarray, mincol: np.ndarray | None = None
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Triplets (row = scenario w, column, cost) of C_w: the discounted cost of every
    variable on scenario w's path (the rows of CVaR and of the ambiguity set)."""
    r_l, c_l, v_l = [], [], []

    def on_path(cols: np.ndarray, vals: np.ndarray) -> None:
        """cols, vals: (n, T, W) column (-1: none) and cost of each (item, t, w)."""
        i, tt, ww = np.nonzero((cols >= 0) & (vals != 0))
        r_l.append(ww)
        c_l.append(cols[i, tt, ww])
        v_l.append(vals[i, tt, ww])

    xpos = np.where(ix.xcol_of >= 0, ix.xcol_of, 0)
    on_path(xcol, np.where(ix.xcol_of >= 0, coef["x"][xpos] if len(coef["x"]) else 0, 0))
    q_path = qcol[:, ix.slot_of]                                     # (K, T, W)
    on_path(q_path, np.where(q_path >= 0, coef["q"][np.maximum(q_path - off["q"], 0)]
                             if len(coef["q"]) else 0, 0))
    for name, col in (("u", ucol), ("stock", scol), ("z", zcol)) + \
            ((("m_in", mincol),) if mincol is not None else ()):
        on_path(col[:, ix.slot_of], coef[name][:, ix.slot_of])
    if len(ix.y_index):   # builds decided on the path, paid when decided
        ypos = np.where(ix.ycol_of >= 0, ix.ycol_of, 0)
        on_path(np.where(ix.ycol_of >= 0, off["y"] + ix.ycol_of, -1),
                np.where(ix.ycol_of >= 0, coef["y"][ypos], 0.0))
    soft = np.flatnonzero(floors.soft)
    if len(soft):      # a soft floor's deficit: one column per row (slot)
        owner = floors.slot[soft]
        hit = ix.slot_of[ix.slot_t[owner]] == owner[:, None]             # (n, W)
        j, ww = np.nonzero(hit)
        r_l.append(ww)
        c_l.append(off["deficit"] + j)
        v_l.append(coef["deficit"][j])
    cat = (lambda xs, dt: np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt))
    return cat(r_l, np.int64), cat(c_l, np.int64), cat(v_l, float)


def _scenario_meta(d: ProblemData, name: str) -> pd.DataFrame:
    """Row metadata of a family with one row per scenario (CVaR, ambiguity)."""
    return pd.DataFrame({
        "constraint": name, "rule": "", "element": "", "period": "", "country": "",
        "stage": "", "scenario": d.scenarios, "sense": ">=", "rhs": 0.0,
        "demand_t": np.nan, "slot": -1, "dnode": -1}, columns=META_COLUMNS)


BUILDERS = ("matrix", "pyomo")


def build(d: ProblemData, policy: ResolvedPolicy, builder: str = "matrix") -> BuiltModel:
    """Build with the vectorised matrix path (default) or the Pyomo formulation."""
    if builder == "pyomo":
        from .formulation import build_model  # imports Pyomo: only on this path

        return build_model(d, policy)
    if builder != "matrix":
        raise ValueError(f"unknown builder {builder!r} (choose from {BUILDERS})")
    return build_matrix(d, policy)


def fix_shared_decisions(built: BuiltModel, contracted_t: np.ndarray,
                         size: np.ndarray | None = None) -> None:
    """Fix the decisions taken at nodes holding every scenario (the root's contracts,
    and contracts and builds of a period before the scenarios split): contracts at
    ``contracted_t[k, t]`` (K, T), project sizes at ``size[p, t]`` (P, T); the
    rest stays free. EEV fixes the expected-value plan's decisions this way."""
    d, ix = built.data, built.index
    shared_x = np.flatnonzero(ix.x_prob >= 1.0 - 1e-12)
    k, t = ix.x_index[shared_x, 0], ix.x_index[shared_x, 1]
    cap = d.capacity_t + ix.potential
    fixes = [("x", shared_x, np.clip(contracted_t[k, t], 0.0, cap[k, t]))]
    if size is not None and len(ix.y_index):
        shared_y = np.flatnonzero(ix.y_prob >= 1.0 - 1e-12)
        p, tau = ix.y_index[shared_y, 0], ix.y_index[shared_y, 1]
        fixes.append(("y", shared_y, np.clip(size[p, tau] / ix.y_unit[shared_y], 0.0,
                                             ix.y_upper[shared_y])))
    for name, pos, value in fixes:
        if built.matrix is not None:
            a, _ = built.matrix.col_blocks[name]
            built.matrix.col_lower[a + pos] = value
            built.matrix.col_upper[a + pos] = value
        else:
            var = built.model.component(name)
            for i, v in zip(pos.tolist(), value.tolist()):
                var[i].fix(v)


@dataclass(frozen=True)
class FixedDecisions:
    """Decisions to hold fixed in another scenario set of the same instance (a
    candidate plan's first stage, model.studies.sampling): contracts by source index
    and element name, project sizes by project id, each a period vector of values
    with a mask of the periods that are fixed. Keyed by names rather than arc
    positions, so it applies as well to an element block (model.solve.decompose).

    ``contracts[(s, e)] = (values_t, mask)`` (T,) each; ``builds[p] = (values, mask)``
    with the values in the units of the size columns ``y`` (the size, or 0/1 for an
    all-or-nothing project), decided in the period of the position.
    """

    contracts: dict[tuple[int, str], tuple[np.ndarray, np.ndarray]]
    builds: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    @property
    def n_contracts(self) -> int:
        """How many (source, element, period) contracts are fixed."""
        return int(sum(m.sum() for _, m in self.contracts.values()))

    @property
    def n_builds(self) -> int:
        """How many (project, period decided) sizes are fixed."""
        return int(sum(m.sum() for _, m in self.builds.values()))


def first_stage_decisions(d: ProblemData, contracted_t: np.ndarray,
                          size: np.ndarray | None = None) -> FixedDecisions:
    """The decisions of a plan taken at nodes holding every scenario of `d` (as
    :func:`fix_shared_decisions` fixes them): contracts decided at the root (or at a
    period's node that every scenario shares) and project sizes decided in a period
    whose node every scenario shares. `contracted_t` (K, T, W) and `size` (P, T, W)
    are a solution's per-scenario arrays (model.analysis.results.Solution)."""
    D = d.decision_node
    shared_row = np.array([len(np.unique(row)) == 1 for row in D])       # (T+1,)
    K, T = d.capacity_t.shape
    rows = d.decision_row if K else np.zeros((0, T), np.int64)
    contracts = {}
    for k in range(K):
        if not d.is_contract[k]:
            continue
        mask = shared_row[rows[k]]
        if mask.any():
            key = (int(d.arc_source[k]), d.elements[int(d.arc_element[k])])
            contracts[key] = (np.where(mask, contracted_t[k, :, 0], 0.0), mask)
    builds = {}
    pj = d.projects
    if pj is not None and size is not None:
        for p, pid in enumerate(pj.ids):
            mask = pj.decide[p] & shared_row[1:]
            if mask.any():
                builds[pid] = (np.where(mask, size[p, :, 0], 0.0), mask)
    return FixedDecisions(contracts, builds)


def fix_decisions(built: BuiltModel, fixed: FixedDecisions) -> int:
    """Fix every column of a fixed decision at its value, at each node where the
    model takes it (a sample that splits earlier takes it at several nodes: each gets
    the same value, which anticipates nothing), clipped to the column's bounds.
    Decisions the model does not have (an excluded source, no capacity) are skipped.
    Returns the number of columns fixed."""
    d, ix = built.data, built.index
    K, T = d.capacity_t.shape
    want = np.zeros((K, T))
    mask = np.zeros((K, T), dtype=bool)
    for k in range(K):
        got = fixed.contracts.get((int(d.arc_source[k]), d.elements[int(d.arc_element[k])]))
        if got is not None:
            want[k], mask[k] = got
    kx, tx = ix.x_index[:, 0], ix.x_index[:, 1]
    pos_x = np.flatnonzero(mask[kx, tx])
    cap = d.capacity_t + ix.potential
    fixes = [("x", pos_x, np.clip(want[kx[pos_x], tx[pos_x]], 0.0, cap[kx[pos_x], tx[pos_x]]))]
    if len(ix.y_index) and fixed.builds:
        ids = d.projects.ids
        P = len(ids)
        ywant = np.zeros((P, T))
        ymask = np.zeros((P, T), dtype=bool)
        for p, pid in enumerate(ids):
            if pid in fixed.builds:
                ywant[p], ymask[p] = fixed.builds[pid]
        py, ty = ix.y_index[:, 0], ix.y_index[:, 1]
        pos_y = np.flatnonzero(ymask[py, ty])
        fixes.append(("y", pos_y, np.clip(ywant[py[pos_y], ty[pos_y]], 0.0,
                                          ix.y_upper[pos_y])))
    for name, pos, value in fixes:
        if built.matrix is not None:
            a, _ = built.matrix.col_blocks[name]
            built.matrix.col_lower[a + pos] = value
            built.matrix.col_upper[a + pos] = value
        else:
            var = built.model.component(name)
            for i, v in zip(pos.tolist(), value.tolist()):
                var[i].fix(v)
    return int(sum(len(pos) for _, pos, _ in fixes))
