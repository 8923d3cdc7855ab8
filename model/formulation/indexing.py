"""The index sets of the model, shared by both builders (matrix and Pyomo).

A *slot* is a recourse node: period t's deliveries, shortage and stock of
every scenario in it are one variable each (DESIGN.md, "What is known
when"). Contracts are indexed by their decision node. Both builders take
these arrays, so the Pyomo formulation and the vectorised matrix path build
the same columns in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..input.data import ProblemData
from .policies import ResolvedPolicy


@dataclass
class ModelIndex:
    """Variables of one model: contracts per decision node, recourse per slot."""

    slot_of: np.ndarray      # (T, W) slot of scenario w in period t
    slot_t: np.ndarray       # (S,) period position
    slot_rep: np.ndarray     # (S,) a scenario of the slot (its data are the slot's)
    slot_prob: np.ndarray    # (S,) probability of the slot
    slot_prev: np.ndarray    # (S,) slot of the same scenarios in t-1 (-1 at t = 0)
    x_index: np.ndarray      # (n_x, 3) arc, period, decision node
    x_prob: np.ndarray       # (n_x,) probability of the decision node
    xcol_of: np.ndarray      # (K, T, W) position in x_index, -1 where none
    q_index: np.ndarray      # (n_q, 3) arc, period, slot
    qpos_of: np.ndarray      # (K, S) position in q_index, -1 where none
    q_bound: np.ndarray      # (n_q,) availability x capacity
    z_elements: np.ndarray   # elements with surplus columns (a usable min-take contract)
    y_index: np.ndarray = None    # (n_y, 3) project, period decided, decision node
    y_prob: np.ndarray = None     # (n_y,) probability of the node
    ycol_of: np.ndarray = None    # (P, T, W) position in y_index, -1 where none
    y_unit: np.ndarray = None     # (n_y,) size per unit of y: max_size if all-or-nothing, else 1
    y_upper: np.ndarray = None    # (n_y,) 1 (binary) or max_size
    y_integer: np.ndarray = None  # (n_y,) bool
    potential: np.ndarray = None  # (K, T) most capacity projects can add (t/period)
    r_elements: np.ndarray = None  # elements whose demand projects can reduce
    # several buyers (model.formulation.sharing): elements that may send and receive
    # stock (a coalition of two or more members), and the bound of shortage u <= D
    m_elements: np.ndarray = None
    u_upper: np.ndarray = None    # (E * S,) inf with one buyer

    @property
    def n_slots(self) -> int:
        return len(self.slot_t)

    def slot_members(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(order, start, count): scenarios of slot s are ``w_flat[order[start:start+count]]``
        with ``w_flat = np.tile(arange(W), T)``."""
        flat = self.slot_of.reshape(-1)
        order = np.argsort(flat, kind="stable")
        count = np.bincount(flat, minlength=self.n_slots)
        start = np.concatenate([[0], np.cumsum(count)[:-1]])
        return order, start, count


def slots(d: ProblemData) -> tuple[np.ndarray, ...]:
    """(slot_of, slot_t, slot_rep, slot_prob, slot_prev) of the recourse nodes of `d`."""
    R = d.recourse_node
    T, W = R.shape
    slot_of = np.zeros((T, W), dtype=np.int64)
    slot_t, slot_rep = [], []
    offset = 0
    for t in range(T):
        ids, first, inv = np.unique(R[t], return_index=True, return_inverse=True)
        slot_of[t] = offset + inv
        slot_t.append(np.full(len(ids), t))
        slot_rep.append(first)
        offset += len(ids)
    slot_t_a = np.concatenate(slot_t) if slot_t else np.zeros(0, np.int64)
    slot_rep_a = np.concatenate(slot_rep) if slot_rep else np.zeros(0, np.int64)
    slot_prob = np.bincount(slot_of.reshape(-1), weights=np.tile(d.probability, T),
                            minlength=offset)
    slot_prev = np.full(offset, -1, dtype=np.int64)
    later = slot_t_a > 0
    slot_prev[later] = slot_of[slot_t_a[later] - 1, slot_rep_a[later]]
    return slot_of, slot_t_a.astype(np.int64), slot_rep_a.astype(np.int64), slot_prob, \
        slot_prev


def model_index(d: ProblemData, policy: ResolvedPolicy) -> ModelIndex:
    """Every variable's index (see the module docstring); excluded arcs get none."""
    K, T = d.capacity_t.shape
    W = len(d.scenarios)
    slot_of, slot_t, slot_rep, slot_prob, slot_prev = slots(d)
    usable = ~policy.excluded_arcs if len(policy.excluded_arcs) else np.zeros(0, bool)
    proj = _project_index(d, policy, slot_of)
    capacity = d.capacity_t + proj["potential"]
    x_mask = (capacity > 0) & (d.is_contract & usable)[:, None]

    # contracts: one column per (arc, period, node of its decision row)
    D = d.decision_node
    inv = np.zeros_like(D)
    uniq: list[np.ndarray] = []
    for r in range(D.shape[0]):
        u_r, inv[r] = np.unique(D[r], return_inverse=True)
        uniq.append(u_r)
    n_per_row = np.array([len(u) for u in uniq])
    drow = d.decision_row if K else np.zeros((0, T), np.int64)
    kt = np.argwhere(x_mask)                                        # (k, t) in order
    counts = n_per_row[drow[kt[:, 0], kt[:, 1]]] if len(kt) else np.zeros(0, np.int64)
    start = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    x_arc_t = np.repeat(kt, counts, axis=0)
    x_node = np.concatenate([uniq[r] for r in drow[kt[:, 0], kt[:, 1]]]) if len(kt) \
        else np.zeros(0, np.int64)
    x_index = np.column_stack([x_arc_t, x_node]).astype(np.int64) if len(kt) \
        else np.zeros((0, 3), np.int64)
    node_prob = np.bincount(D.reshape(-1), weights=np.tile(d.probability, D.shape[0]))
    x_prob = node_prob[x_node] if len(x_node) else np.zeros(0)
    xcol_of = np.full((K, T, W), -1, dtype=np.int64)
    if len(kt):
        k, t = kt[:, 0], kt[:, 1]
        xcol_of[k, t, :] = start[:, None] + inv[drow[k, t], :]

    # deliveries: one column per (arc, slot) with capacity available
    bound = capacity[:, slot_t] * d.availability[:, slot_t, slot_rep] if K \
        else np.zeros((0, len(slot_t)))
    q_mask = (bound > 0) & usable[:, None]
    q_mask &= ~d.is_contract[:, None] | x_mask[:, slot_t]
    ks = np.argwhere(q_mask)
    q_index = np.column_stack([ks[:, 0], slot_t[ks[:, 1]], ks[:, 1]]).astype(np.int64) \
        if len(ks) else np.zeros((0, 3), np.int64)
    qpos_of = np.full((K, len(slot_t)), -1, dtype=np.int64)
    qpos_of[ks[:, 0], ks[:, 1]] = np.arange(len(ks))
    take = x_mask.any(axis=1) & (d.min_take > 0) if K else np.zeros(0, bool)
    z_elements = np.unique(d.arc_element[take]).astype(np.int64)
    E = len(d.elements)
    m_elements = np.zeros(0, np.int64)
    u_upper = np.full(E * len(slot_t), np.inf)
    if d.buyers is not None:
        # shortage never exceeds demand (a buyer must not pass on tonnes it never had)
        u_upper = d.demand_t[:, slot_t, slot_rep].reshape(-1).astype(float)
        count = np.bincount(d.buyers.element_base, minlength=len(d.buyers.base_elements))
        m_elements = np.flatnonzero(count[d.buyers.element_base] > 1).astype(np.int64)
    return ModelIndex(slot_of, slot_t, slot_rep, slot_prob, slot_prev, x_index, x_prob,
                      xcol_of, q_index, qpos_of, bound[ks[:, 0], ks[:, 1]], z_elements,
                      m_elements=m_elements, u_upper=u_upper, **proj)


def _project_index(d: ProblemData, policy: ResolvedPolicy, slot_of: np.ndarray
                   ) -> dict[str, np.ndarray]:
    """Project size columns: one per (project, decision period, node of that period)."""
    K, T = d.capacity_t.shape
    W = len(d.scenarios)
    pj = d.projects
    empty = {"y_index": np.zeros((0, 3), np.int64), "y_prob": np.zeros(0),
             "ycol_of": np.full((0, T, W), -1, np.int64), "y_unit": np.zeros(0),
             "y_upper": np.zeros(0), "y_integer": np.zeros(0, bool),
             "potential": np.zeros((K, T)), "r_elements": np.zeros(0, np.int64)}
    if pj is None or pj.n == 0:
        return empty
    usable = ~policy.excluded_projects if len(policy.excluded_projects) else np.ones(pj.n, bool)
    D = d.decision_node
    rows = []
    ycol_of = np.full((pj.n, T, W), -1, dtype=np.int64)
    n = 0
    for p in np.flatnonzero(usable):
        for tau in np.flatnonzero(pj.decide[p]):
            nodes, inv = np.unique(D[tau + 1], return_inverse=True)
            rows.append(np.column_stack([np.full(len(nodes), p), np.full(len(nodes), tau),
                                         nodes]))
            ycol_of[p, tau] = n + inv
            n += len(nodes)
    y_index = np.concatenate(rows).astype(np.int64) if rows else empty["y_index"]
    node_prob = np.bincount(D.reshape(-1), weights=np.tile(d.probability, D.shape[0]))
    p_of = y_index[:, 0]
    integer = pj.integer[p_of]
    reach = pj.online()[usable].any(axis=1)                                # (P', T)
    potential = pj.potential(usable)
    reduced = (pj.reduces[usable] * reach[:, None, :]).sum(axis=(0, 2)) > 0
    return {"y_index": y_index, "y_prob": node_prob[y_index[:, 2]] if n else np.zeros(0),
            "ycol_of": ycol_of, "y_unit": np.where(integer, pj.max_size[p_of], 1.0),
            "y_upper": np.where(integer, 1.0, pj.max_size[p_of]), "y_integer": integer,
            "potential": potential, "r_elements": np.flatnonzero(reduced).astype(np.int64)}


@dataclass
class ProjectIndex:
    """The project size columns of a model alone (:func:`project_index`): what the
    project rows and costs read, for a master problem that holds the builds only
    (model.solve.benders)."""

    y_index: np.ndarray      # (n_y, 3) project, period decided, decision node
    y_prob: np.ndarray       # (n_y,) probability of the node
    ycol_of: np.ndarray      # (P, T, W) position in y_index, -1 where none
    y_unit: np.ndarray       # (n_y,) size per unit of y
    y_upper: np.ndarray      # (n_y,) 1 (binary) or max_size
    y_integer: np.ndarray    # (n_y,) bool
    potential: np.ndarray    # (K, T)
    r_elements: np.ndarray   # elements whose demand projects can reduce


def project_index(d: ProblemData, policy: ResolvedPolicy) -> ProjectIndex:
    """The project size columns of the model of `d` under `policy`, as
    :func:`model_index` makes them."""
    return ProjectIndex(**_project_index(d, policy, slots(d)[0]))


@dataclass
class StockFloorRows:
    """The stock-floor rows of a policy, one per rule, unit and slot where it binds."""

    rule: list[str]
    unit_label: list[str]
    unit: list[list[int]]
    slot: np.ndarray          # (n,)
    target: np.ndarray        # (n,) t: weight x days/period_days x demand
    deficit_cost: np.ndarray  # (n,) currency/t per period, NaN for a hard floor

    @property
    def soft(self) -> np.ndarray:
        return ~np.isnan(self.deficit_cost)


def stock_floor_rows(d: ProblemData, ix: ModelIndex, policy: ResolvedPolicy) -> StockFloorRows:
    """Rows sum_{e in unit} I[e, slot] (+ deficit) >= target, rule by rule, unit by unit,
    slot by slot; slots where the floor is released (weight 0) get no row."""
    rule_l, label_l, unit_l, slot_l, target_l, cost_l = [], [], [], [], [], []
    for rule in policy.stock_rules:
        sel = np.flatnonzero(np.isin(ix.slot_t, rule.periods))
        t, rep = ix.slot_t[sel], ix.slot_rep[sel]
        for (unit_label, unit), binds in zip(rule.units, rule.binds):
            weight = binds[t, np.minimum(rep, binds.shape[1] - 1)]
            keep = weight > 0
            need = weight * rule.fraction * d.demand_t[unit][:, t, rep].sum(axis=0)
            n = int(keep.sum())
            rule_l += [rule.label] * n
            label_l += [unit_label] * n
            unit_l += [unit] * n
            slot_l.append(sel[keep])
            target_l.append(need[keep])
            cost_l.append(np.full(n, np.nan if rule.deficit_cost is None
                                  else float(rule.deficit_cost)))
    cat = (lambda xs, dt: np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt))
    return StockFloorRows(rule_l, label_l, unit_l, cat(slot_l, np.int64), cat(target_l, float),
                          cat(cost_l, float))
