"""A vectorised build of the same LP as :mod:`model.formulation`, straight to matrices.

The Pyomo formulation is the definition of the model. This module builds the
identical linear program with numpy (same variables, same rows in the same
orientation, same row metadata) without creating Pyomo objects, which is
what makes large scenario sets cheap. ``tests/test_matrix_path.py`` checks,
on every test instance, that the two give the same matrix, bounds and costs.

Columns: x (contract arcs x periods), q (deliveries), u (shortage, e-t-w
order), stock (e-t-w), then eta and excess when lambda > 0. Rows: one block
per constraint family, in the order and orientation of the formulation.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .data import ProblemData
from .built import META_COLUMNS, BuiltModel
from .policies import ResolvedPolicy, ShareRule, floor_without_sources


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


def _share_block(d: ProblemData, rules: list[ShareRule], xcol: np.ndarray, qcol: np.ndarray,
                 name: str, infeasible: list[str]) -> tuple[np.ndarray, ...]:
    """Rows sum(q or x over arcs, unit, t) <=/>= share * demand, as _share_rows.

    Rows come rule by rule, country by country, unit by unit, then period by
    period and scenario by scenario (the formulation's order); each
    (rule, country, unit) is one vectorised step over its periods and scenarios.
    """
    r_all, c_all, lo_all, up_all, parts = [], [], [], [], []
    row = 0
    scenario_names = np.array(d.scenarios, dtype=object)
    period_names = np.array(d.periods, dtype=object)
    for rule in rules:
        periods = np.asarray(rule.periods, dtype=int)
        if not len(periods):
            continue
        for arcs_of in rule.arc_sets:
            for unit_label, unit in rule.units:
                arcs = np.flatnonzero(arcs_of.arcs & np.isin(d.arc_element, unit))
                if rule.plan:
                    cols = xcol[arcs][:, periods][:, :, None]            # (arcs, T', 1)
                    dem = d.base_demand_t[unit][:, periods].sum(axis=0)[:, None]
                    names = np.array([""], dtype=object)
                else:
                    cols = qcol[arcs][:, periods, :]                     # (arcs, T', W)
                    dem = d.demand_t[unit][:, periods, :].sum(axis=0)    # (T', W)
                    names = scenario_names
                has = (cols >= 0).any(axis=0)
                rhs = rule.share * dem
                if rule.sense == ">=":
                    for ti, j in np.argwhere(~has & (rhs > 1e-9)):
                        infeasible.append(floor_without_sources(
                            rule, arcs_of, unit_label, d.periods[periods[ti]],
                            float(rhs[ti, j]), None if rule.plan else d.scenarios[j]))
                kept_t, kept_w = np.nonzero(has)     # a cap with nothing under it holds
                n_new = len(kept_t)
                if n_new == 0:
                    continue
                sub = cols[:, kept_t, kept_w]                            # (arcs, rows)
                a_idx, j_idx = np.nonzero(sub >= 0)
                r_all.append(row + j_idx)
                c_all.append(sub[a_idx, j_idx])
                rhs_kept = rhs[kept_t, kept_w]
                lo_all.append(rhs_kept if rule.sense == ">=" else np.full(n_new, -np.inf))
                up_all.append(rhs_kept if rule.sense == "<=" else np.full(n_new, np.inf))
                parts.append((n_new, rule.label, unit_label, arcs_of.country, arcs_of.stage,
                              rule.sense, period_names[periods[kept_t]], names[kept_w],
                              rhs_kept, dem[kept_t, kept_w]))
                row += n_new
    r = np.concatenate(r_all) if r_all else np.zeros(0, np.int64)
    c = np.concatenate(c_all) if c_all else np.zeros(0, np.int64)
    lo = np.concatenate(lo_all) if lo_all else np.zeros(0)
    up = np.concatenate(up_all) if up_all else np.zeros(0)
    return (r, c, np.ones(len(c)), lo, up, _share_meta(name, parts))


def _share_meta(name: str, parts: list[tuple]) -> pd.DataFrame:
    """Row metadata of the share rows from per-(rule, country, unit) pieces."""
    if not parts:
        return pd.DataFrame(columns=META_COLUMNS)
    counts = [p[0] for p in parts]

    def repeat(i: int) -> np.ndarray:
        return np.repeat(np.array([p[i] for p in parts], dtype=object), counts)

    return pd.DataFrame({
        "constraint": name, "rule": repeat(1), "element": repeat(2),
        "period": np.concatenate([p[6] for p in parts]), "country": repeat(3),
        "stage": repeat(4), "scenario": np.concatenate([p[7] for p in parts]),
        "sense": repeat(5), "rhs": np.concatenate([p[8] for p in parts]).astype(float),
        "demand_t": np.concatenate([p[9] for p in parts]).astype(float)},
        columns=META_COLUMNS).infer_objects()   # integer period labels: int64, as before


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


def variable_index(d: ProblemData, policy: ResolvedPolicy) -> tuple[np.ndarray, np.ndarray]:
    """(x_index, q_index): the (arc, period) of each contract and (arc, period, scenario)
    of each delivery variable, in the order of formulation.define_variables."""
    usable = ~policy.excluded_arcs
    x_mask = (d.capacity_t > 0) & (d.is_contract & usable)[:, None]
    x_index = np.argwhere(x_mask)
    bound = d.capacity_t[:, :, None] * d.availability
    q_index = np.argwhere((bound > 0) & usable[:, None, None])
    keep = ~d.is_contract[q_index[:, 0]] | x_mask[q_index[:, 0], q_index[:, 1]]
    return x_index, q_index[keep]


def _build(d: ProblemData, policy: ResolvedPolicy, start_time: float) -> BuiltModel:
    E, T, W = d.demand_t.shape
    K = d.n_arcs
    lam, alpha = d.risk_lambda, d.risk_alpha
    contract = d.is_contract

    # ---- columns (same index sets as formulation.define_variables)
    x_index, q_index = variable_index(d, policy)
    bound = d.capacity_t[:, :, None] * d.availability
    n_x, n_q, n_etw = len(x_index), len(q_index), E * T * W
    off_x, off_q = 0, n_x
    off_u = off_q + n_q
    off_s = off_u + n_etw
    n_col = off_s + n_etw
    blocks = {"x": (off_x, off_q), "q": (off_q, off_u), "u": (off_u, off_s),
              "stock": (off_s, n_col)}
    if lam > 0:
        blocks["eta"] = (n_col, n_col + 1)
        blocks["excess"] = (n_col + 1, n_col + 1 + W)
        n_col += 1 + W
    xcol = np.full((K, T), -1, dtype=np.int64)
    xcol[tuple(x_index.T)] = off_x + np.arange(n_x)
    qcol = np.full((K, T, W), -1, dtype=np.int64)
    qcol[tuple(q_index.T)] = off_q + np.arange(n_q)
    etw = np.arange(n_etw).reshape(E, T, W)
    ucol, scol = off_u + etw, off_s + etw

    col_lower = np.zeros(n_col)
    col_upper = np.full(n_col, np.inf)
    col_upper[off_x:off_q] = d.capacity_t[tuple(x_index.T)]
    col_upper[off_q:off_u] = bound[tuple(q_index.T)]
    stock_cap = np.broadcast_to(d.stock_capacity_t[:, None, None], (E, T, W)).reshape(-1)
    col_upper[off_s:off_s + n_etw] = stock_cap
    if lam > 0:
        col_lower[blocks["eta"][0]] = -np.inf

    # ---- cost pieces: first stage F and per-scenario S_w (discounted)
    disc = d.discount
    k_x, t_x = x_index.T if n_x else (np.zeros(0, int), np.zeros(0, int))
    f_coef = disc[t_x] * d.reservation_fee[k_x] * d.price[k_x, t_x]
    k_q, t_q, w_q = q_index.T if n_q else (np.zeros(0, int),) * 3
    s_q = disc[t_q] * d.price[k_q, t_q] * d.price_multiplier[k_q, t_q, w_q]
    s_u = (disc[None, :, None] * d.shortage_penalty[:, None, None]
           * np.ones((1, 1, W))).reshape(-1)
    s_s = (disc[None, :, None] * d.holding_cost[:, None, None] * np.ones((1, 1, W))).reshape(-1)
    w_etw = np.broadcast_to(np.arange(W)[None, None, :], (E, T, W)).reshape(-1)
    p = d.probability

    cost = np.zeros(n_col)
    cost[off_x:off_q] = (1 - lam) * f_coef if lam < 1 else 0.0
    if lam < 1:
        cost[off_q:off_u] = (1 - lam) * p[w_q] * s_q
        cost[off_u:off_s] = (1 - lam) * p[w_etw] * s_u
        cost[off_s:off_s + n_etw] = (1 - lam) * p[w_etw] * s_s
    if lam > 0:
        cost[blocks["eta"][0]] = lam
        cost[blocks["excess"][0]:blocks["excess"][1]] = lam * p / (1 - alpha)

    rows = _Rows()
    meta: dict[str, pd.DataFrame] = {}
    row_blocks: dict[str, tuple[int, int]] = {}
    infeasible: list[str] = []

    # 1. contract_delivery: q - x <= 0
    cq = np.flatnonzero(contract[k_q]) if n_q else np.zeros(0, int)
    n_cd = len(cq)
    r = np.repeat(np.arange(n_cd), 2)
    c = np.column_stack([off_q + cq, xcol[k_q[cq], t_q[cq]]]).reshape(-1)
    v = np.tile([1.0, -1.0], n_cd)
    row_blocks["contract_delivery"] = rows.add(r, c, v, np.full(n_cd, -np.inf), np.zeros(n_cd))
    meta["contract_delivery"] = pd.DataFrame({
        "constraint": "contract_delivery", "rule": "",
        "element": np.array(d.elements, dtype=object)[d.arc_element[k_q[cq]]],
        "period": np.array(d.periods, dtype=object)[t_q[cq]], "country": "", "stage": "",
        "scenario": np.array(d.scenarios, dtype=object)[w_q[cq]], "sense": "<=", "rhs": 0.0,
    }, columns=META_COLUMNS)

    # 2. balance: I[t-1] + sum q + u - I[t] = D - (I0 at t = 0)
    e_of_q = d.arc_element[k_q]
    bal_row_q = (e_of_q * T + t_q) * W + w_q
    prev = etw[:, :-1, :].reshape(-1)          # stock[e, t-1, w] enters row (e, t, w)
    prev_row = etw[:, 1:, :].reshape(-1)
    rhs = d.demand_t.copy()
    rhs[:, 0, :] -= d.stock_initial_t[:, None]
    r = np.concatenate([bal_row_q, prev_row, etw.reshape(-1), etw.reshape(-1)])
    c = np.concatenate([off_q + np.arange(n_q), scol.reshape(-1)[prev], ucol.reshape(-1),
                        scol.reshape(-1)])
    v = np.concatenate([np.ones(n_q), np.ones(len(prev)), np.ones(n_etw), -np.ones(n_etw)])
    row_blocks["balance"] = rows.add(r, c, v, rhs.reshape(-1), rhs.reshape(-1))
    grid = np.indices((E, T, W)).reshape(3, -1)
    meta["balance"] = pd.DataFrame({
        "constraint": "balance", "rule": "",
        "element": np.array(d.elements, dtype=object)[grid[0]],
        "period": np.array(d.periods, dtype=object)[grid[1]], "country": "", "stage": "",
        "scenario": np.array(d.scenarios, dtype=object)[grid[2]], "sense": "==",
        "rhs": d.demand_t.reshape(-1)}, columns=META_COLUMNS)

    # 3-5. share families (plan rows sum x, scenario rows sum q)
    for family in ("max_single_country_share", "min_domestic_share", "min_recycled_share"):
        fam_rules = [rl for rl in policy.share_rules if rl.family == family]
        r, c, v, lo, up, fam_meta = _share_block(d, fam_rules, xcol, qcol, family, infeasible)
        row_blocks[family] = rows.add(r, c, v, lo, up)
        meta[family] = fam_meta

    # 6. min_stock_days: sum_{e in unit} I[e,t,w] >= fraction * sum D
    r_l, c_l, lo_l, m_l = [], [], [], []
    n_sd = 0
    for rule in policy.stock_rules:
        for unit_label, unit in rule.units:
            for t in rule.periods:
                for w in range(W):
                    r_l.append(np.full(len(unit), n_sd))
                    c_l.append(scol[unit, t, w])
                    need = rule.fraction * float(d.demand_t[unit, t, w].sum())
                    lo_l.append(need)
                    m_l.append(("min_stock_days", rule.label, unit_label, d.periods[t], "", "",
                                d.scenarios[w], ">=", need))
                    n_sd += 1
    row_blocks["min_stock_days"] = rows.add(
        np.concatenate(r_l) if r_l else np.zeros(0), np.concatenate(c_l) if c_l else np.zeros(0),
        np.ones(sum(len(a) for a in c_l)), np.array(lo_l), np.full(n_sd, np.inf))
    meta["min_stock_days"] = pd.DataFrame(m_l, columns=META_COLUMNS[:-1]).reindex(
        columns=META_COLUMNS)

    # 7. budget: F + sum_w p_w S_w <= B
    exp_c = np.concatenate([f_coef, p[w_q] * s_q, p[w_etw] * s_u, p[w_etw] * s_s])
    exp_cols = np.arange(off_s + n_etw)
    nz = exp_c != 0
    r_l, c_l, v_l, up_l = [], [], [], []
    for i, (_, amount) in enumerate(policy.budgets):
        r_l.append(np.full(int(nz.sum()), i))
        c_l.append(exp_cols[nz])
        v_l.append(exp_c[nz])
        up_l.append(amount)
    nb = len(policy.budgets)
    row_blocks["budget"] = rows.add(
        np.concatenate(r_l) if r_l else np.zeros(0), np.concatenate(c_l) if c_l else np.zeros(0),
        np.concatenate(v_l) if v_l else np.zeros(0), np.full(nb, -np.inf), np.array(up_l))
    meta["budget"] = pd.DataFrame(
        [("budget", lbl, "", "", "", "", "", "<=", amount) for lbl, amount in policy.budgets],
        columns=META_COLUMNS[:-1]).reindex(columns=META_COLUMNS)

    # 8. cvar_excess (lambda > 0): F + S_w - eta - excess_w <= 0, as Pyomo writes
    #    `excess >= F + S_w - eta`
    if lam > 0:
        eta_c, exc0 = blocks["eta"][0], blocks["excess"][0]
        r_l, c_l, v_l = [], [], []
        fx = np.flatnonzero(f_coef != 0)
        for w in range(W):
            qw = np.flatnonzero((w_q == w) & (s_q != 0))
            ew = np.flatnonzero(w_etw == w)
            ew_u, ew_s = ew[s_u[ew] != 0], ew[s_s[ew] != 0]
            cols_w = np.concatenate([off_x + fx, off_q + qw, off_u + ew_u, off_s + ew_s,
                                     [eta_c, exc0 + w]])
            vals_w = np.concatenate([f_coef[fx], s_q[qw], s_u[ew_u], s_s[ew_s], [-1.0, -1.0]])
            r_l.append(np.full(len(cols_w), w))
            c_l.append(cols_w)
            v_l.append(vals_w)
        row_blocks["cvar_excess"] = rows.add(np.concatenate(r_l), np.concatenate(c_l),
                                             np.concatenate(v_l), np.full(W, -np.inf),
                                             np.zeros(W))
        meta["cvar_excess"] = pd.DataFrame({
            "constraint": "cvar_excess", "rule": "", "element": "", "period": "", "country": "",
            "stage": "", "scenario": d.scenarios, "sense": ">=", "rhs": 0.0},
            columns=META_COLUMNS)

    A = sp.csc_matrix((np.concatenate(rows.vals),
                       (np.concatenate(rows.rows), np.concatenate(rows.cols))),
                      shape=(rows.n, n_col))
    A.sum_duplicates()
    lp = LinearProgram(A, cost, col_lower, col_upper, np.concatenate(rows.lower),
                       np.concatenate(rows.upper), blocks, row_blocks)
    built = BuiltModel(None, d, policy, x_index, q_index, meta, infeasible,
                       time.perf_counter() - start_time)
    built.matrix = lp
    return built


BUILDERS = ("matrix", "pyomo")


def build(d: ProblemData, policy: ResolvedPolicy, builder: str = "matrix") -> BuiltModel:
    """Build with the vectorised matrix path (default) or the Pyomo formulation."""
    if builder == "pyomo":
        from .formulation import build_model  # imports Pyomo: only on this path

        return build_model(d, policy)
    if builder != "matrix":
        raise ValueError(f"unknown builder {builder!r} (choose from {BUILDERS})")
    return build_matrix(d, policy)


def fix_contracts(built: BuiltModel, contracted: np.ndarray) -> None:
    """Fix every contract variable x[k, t] at `contracted` (aligned with x_index)."""
    d = built.data
    value = np.clip(contracted, 0.0, d.capacity_t[tuple(built.x_index.T)])
    if built.matrix is not None:
        a, b = built.matrix.col_blocks["x"]
        built.matrix.col_lower[a:b] = value
        built.matrix.col_upper[a:b] = value
        return
    for (k, t), v in zip(built.x_index.tolist(), value.tolist()):
        built.model.x[k, t].fix(v)
