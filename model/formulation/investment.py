r"""Investment in new capacity: the constraint families of projects, as row terms.

A project :math:`p` of size :math:`y_{p\tau n}` is decided in period
:math:`\tau` at node :math:`n = n(w,\tau)` (DESIGN.md, "Investment in new
capacity"). For an all-or-nothing project the variable is binary and the size
is :math:`\bar y_p\, y`; otherwise the size is :math:`y \in [0, \bar y_p]`
(``ModelIndex.y_unit`` is the size per unit of the variable). A build comes
online :math:`b_p` periods after its decision. With
:math:`Y_{pkt}(w) = \sum_{\tau:\ \tau + b_p \le t} \mathrm{unit}\; cap_{pkt}\, y_{p\tau n(w,\tau)}`
the capacity a scenario's builds add to arc :math:`k` in period :math:`t`:

* ``delivery_capacity``: :math:`q_{kn} - a_{ktn} \sum_p Y_{pkt} \le a_{ktn}\, cap_{kt}`
  (an arc's deliveries within base plus added capacity, scaled by availability);
* ``contract_capacity``: :math:`x_{ktd} - \sum_p Y_{pkt}(w) \le cap_{kt}` for every
  scenario path :math:`w` of the decision node :math:`d` (a contract fits the
  capacity on every path, builds decided later included);
* ``project_size``: :math:`\sum_\tau \mathrm{unit}\; y_{p\tau n(w,\tau)} \le \bar y_p`
  along every path;
* ``build`` (policy): :math:`\sum_\tau \mathrm{unit}\; y_{p\tau n(w,\tau)} \ge s_{min}`
  along every path;
* ``reduction``: :math:`r_{en} - \sum_{p,\tau} \mathrm{unit}\; red_{pet}\, y_{p\tau n} \le 0`
  (avoided demand, which enters the balance at no price and no country's share).

Each function returns :class:`RowTerms`: the coefficients by variable kind and
position, the row bounds and the row metadata. Both builders (model.formulation.matrix and
model.formulation.formulation) turn the same terms into rows, so they stay equal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .built import META_COLUMNS
from ..input.data import ProblemData
from .indexing import ModelIndex, ProjectIndex
from .policies import ResolvedPolicy


@dataclass
class RowTerms:
    """Rows as coefficient triplets: row, variable kind ("x", "q", "y", "r"), position."""

    family: str
    row: np.ndarray
    kind: np.ndarray
    pos: np.ndarray
    coef: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    meta: pd.DataFrame

    @property
    def n(self) -> int:
        return len(self.lower)


def _rows(family: str, row: np.ndarray, kind: np.ndarray, pos: np.ndarray, coef: np.ndarray,
          lower: np.ndarray, upper: np.ndarray, **meta: Any) -> RowTerms:
    """RowTerms from triplets (sorted by row, in term order) and per-row metadata
    (arrays of the rows' length, or scalars); the columns of META_COLUMNS not given
    are blank ("", NaN, -1), `sense` "<=" and `rhs` the upper bound unless given."""
    n = len(lower)
    if not n:
        from .matrix import empty_meta

        return RowTerms(family, np.zeros(0, np.int64), np.zeros(0, dtype=object),
                        np.zeros(0, np.int64), np.zeros(0), np.zeros(0), np.zeros(0),
                        empty_meta())
    cols: dict[str, Any] = {"constraint": family, "rule": "", "element": "", "period": "",
                            "country": "", "stage": "", "scenario": "", "sense": "<=",
                            "rhs": upper, "demand_t": np.nan, "slot": -1, "dnode": -1}
    cols.update(meta)
    frame = pd.DataFrame({c: (np.full(n, v, dtype=object) if isinstance(v, str) else v)
                          for c, v in cols.items()}, index=range(n), columns=META_COLUMNS)
    frame["rhs"] = frame["rhs"].astype(float)
    frame["demand_t"] = frame["demand_t"].astype(float)
    frame = frame.astype({"slot": np.int64, "dnode": np.int64}).infer_objects()
    return RowTerms(family, np.asarray(row, np.int64), np.asarray(kind, dtype=object),
                    np.asarray(pos, np.int64), np.asarray(coef, float),
                    np.asarray(lower, float), np.asarray(upper, float), frame)


def _build_pairs(d: ProblemData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(p, tau) of every decision a project may take, by project then period, and
    ``online[pair, t]``: the build decided then is online in period t."""
    pj = d.projects
    online = pj.online()                                               # (P, T, T)
    p, tau = np.nonzero(pj.decide)
    return p, tau, online[p, tau]


def _added(d: ProblemData, ix: ModelIndex, t: np.ndarray, w: np.ndarray,
           amount: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For rows with period `t` and scenario `w` (n,), the terms
    -unit * amount[row, p] * y[p, tau, n(w, tau)] over the builds online at t:
    (row, y position, coefficient), by row, then project, then period decided.

    `amount` (n, P) is what a full-size build adds to each row (capacity of its
    arc, or a reduction)."""
    p, tau, online = _build_pairs(d)
    if not len(p) or not len(t):
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    col = ix.ycol_of[p[None, :], tau[None, :], w[:, None]]                  # (n, pairs)
    amt = amount[:, p]
    hit = online[:, t].T & (amt > 0) & (col >= 0)
    row, j = np.nonzero(hit)                      # row-major: by row, then pair order
    c = col[row, j]
    return row, c, -ix.y_unit[c] * amt[row, j]


def _merge_terms(n_rows: int, first_kind: str, first_pos: np.ndarray, first_coef: np.ndarray,
                 row: np.ndarray, pos: np.ndarray, coef: np.ndarray
                 ) -> tuple[np.ndarray, ...]:
    """One leading term per row, then the y terms of each row: triplets by row."""
    rows = np.concatenate([np.arange(n_rows), row])
    order = np.argsort(rows, kind="stable")
    kind = np.array([first_kind] * n_rows + ["y"] * len(row), dtype=object)
    return (rows[order], kind[order], np.concatenate([first_pos, pos])[order],
            np.concatenate([first_coef, coef])[order])


def define_delivery_capacity_rows(d: ProblemData, ix: ModelIndex) -> RowTerms:
    r"""Deliveries within the base capacity plus what builds added, scaled by availability.

    .. math:: q_{kn} - a_{ktn} \sum_p Y_{pkt} \le a_{ktn}\, cap_{kt}

    Only for deliveries of arcs that projects can add to (elsewhere the
    column bound :math:`a\, cap` holds)."""
    if ix.potential is None or not (ix.potential > 0).any():
        return _rows("delivery_capacity", *[np.zeros(0)] * 6)
    k, t, s = ix.q_index[:, 0], ix.q_index[:, 1], ix.q_index[:, 2]
    i = np.flatnonzero(ix.potential[k, t] > 0)
    k, t, s = k[i], t[i], s[i]
    w = ix.slot_rep[s]
    a = d.availability[k, t, w]
    row, pos, coef = _added(d, ix, t, w, d.projects.capacity[:, k, t].T)
    terms = _merge_terms(len(i), "q", i, np.ones(len(i)), row, pos, a[row] * coef)
    sources = d.sources["id"].to_numpy()
    return _rows("delivery_capacity", *terms, np.full(len(i), -np.inf),
                 a * d.capacity_t[k, t], rule=sources[d.arc_source[k]],
                 element=np.array(d.elements, dtype=object)[d.arc_element[k]],
                 period=np.array(d.periods, dtype=object)[t], slot=s)


def define_contract_capacity_rows(d: ProblemData, ix: ModelIndex) -> RowTerms:
    r"""A contract fits the base capacity plus the builds of every path of its node.

    .. math:: x_{ktd} - \sum_p Y_{pkt}(w) \le cap_{kt} \quad \forall w \in d

    One row per contract variable and distinct set of builds among its scenarios."""
    W = len(d.scenarios)
    if ix.potential is None or not (ix.potential > 0).any() or not W:
        return _rows("contract_capacity", *[np.zeros(0)] * 6)
    kx, tx = ix.x_index[:, 0], ix.x_index[:, 1]
    cand = np.flatnonzero(ix.potential[kx, tx] > 0)
    # every (contract variable, scenario of its node), by variable then scenario
    kk, tt = kx[cand], tx[cand]
    member = ix.xcol_of[kk, tt, :] == cand[:, None]                       # (n, W)
    ci, w = np.nonzero(member)
    i, k, t = cand[ci], kx[cand][ci], tx[cand][ci]
    p, tau, online = _build_pairs(d)
    usable = ix.ycol_of[p, tau, 0] >= 0 if len(p) else np.zeros(0, bool)
    adds = online[:, tt].T & (d.projects.capacity[:, kk, tt].T[:, p] > 0) & usable  # (n, pairs)
    # a scenario's builds are those of its node at the latest decision that adds to
    # the arc: the distinct sets of builds of a variable are its distinct such nodes,
    # in the order of their first scenario
    latest = np.where(adds, tau[None, :] + 1, 0).max(axis=1) if len(p) else \
        np.zeros(len(cand), np.int64)
    node = d.decision_node[latest[ci], w]
    _, first = np.unique(i.astype(np.int64) * (int(d.decision_node.max()) + 1) + node,
                         return_index=True)
    first = np.sort(first)
    ci, i, k, t, w = ci[first], i[first], k[first], t[first], w[first]
    col = ix.ycol_of[p[None, :], tau[None, :], w[:, None]]
    amt = d.projects.capacity[:, k, t].T[:, p]
    hit = adds[ci]
    key = np.where(hit, col, -1)
    row, j = np.nonzero(hit)
    c = key[row, j]
    terms = _merge_terms(len(i), "x", i, np.ones(len(i)), row, c, -ix.y_unit[c] * amt[row, j])
    # the latest decision the row depends on: the node it belongs to
    last = np.maximum(d.decision_row[k, t], np.where(hit, tau[None, :] + 1, 0).max(axis=1))
    sources = d.sources["id"].to_numpy()
    return _rows("contract_capacity", *terms, np.full(len(i), -np.inf),
                 d.capacity_t[k, t].astype(float), rule=sources[d.arc_source[k]],
                 element=np.array(d.elements, dtype=object)[d.arc_element[k]],
                 period=np.array(d.periods, dtype=object)[t],
                 dnode=d.decision_node[last, w])


def _paths(d: ProblemData, ix: ModelIndex | ProjectIndex, p: int) -> tuple[np.ndarray, np.ndarray]:
    """For each distinct set of project p's decisions along a path: (a scenario,
    its (T,) y columns, -1 where none), in the order of their first scenario."""
    cols = ix.ycol_of[p].T                                                  # (W, T)
    _, first = np.unique(cols, axis=0, return_index=True)
    first = np.sort(first)
    return first, cols[first]


def _path_rows(d: ProblemData, ix: ModelIndex | ProjectIndex, projects: list[tuple[int, float]]
               ) -> tuple[np.ndarray, ...]:
    """Rows sum_tau unit y[p, tau, n(w, tau)] over every distinct path of each project
    of `projects` ((p, bound) pairs, in order): triplets, the project, bound and dnode
    of each row."""
    rows, pos, coef, owner, bound, dnode = [], [], [], [], [], []
    n = 0
    T = d.decision_node.shape[0] - 1
    for j, (p, b) in enumerate(projects):
        w, cols = _paths(d, ix, p)
        r, tcol = np.nonzero(cols >= 0)
        c = cols[r, tcol]
        rows.append(n + r)
        pos.append(c)
        coef.append(ix.y_unit[c].astype(float))
        last = np.where(cols >= 0, np.arange(T)[None, :] + 1, 0).max(axis=1)
        owner.append(np.full(len(w), j))
        bound.append(np.full(len(w), float(b)))
        dnode.append(d.decision_node[last, w])
        n += len(w)
    cat = (lambda xs, dt: np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt))
    return (cat(rows, np.int64), np.array(["y"] * sum(len(x) for x in pos), dtype=object),
            cat(pos, np.int64), cat(coef, float), cat(owner, np.int64), cat(bound, float),
            cat(dnode, np.int64))


def define_project_size_rows(d: ProblemData, ix: ModelIndex | ProjectIndex) -> RowTerms:
    r"""Along every path a project is built at most once in full.

    .. math:: \sum_\tau \mathrm{unit}\; y_{p\tau n(w,\tau)} \le \bar y_p"""
    pj = d.projects
    ps = sorted(set(ix.y_index[:, 0].tolist())) if len(ix.y_index) else []
    row, kind, pos, coef, owner, bound, dnode = _path_rows(
        d, ix, [(p, pj.max_size[p]) for p in ps])
    ids = np.array([pj.ids[p] for p in ps], dtype=object)
    return _rows("project_size", row, kind, pos, coef, np.full(len(bound), -np.inf), bound,
                 rule=ids[owner], dnode=dnode)


def define_build_rows(d: ProblemData, ix: ModelIndex | ProjectIndex, policy: ResolvedPolicy,
                      infeasible: list[str]) -> RowTerms:
    r"""A policy requires a project: its sizes along every path sum to the minimum.

    .. math:: \sum_\tau \mathrm{unit}\; y_{p\tau n(w,\tau)} \ge s_{min}

    Reads ``policies.<name>.build``."""
    pj = d.projects
    rules = []
    for label, p, minimum in policy.builds:
        if minimum <= 0:
            continue
        if not (ix.ycol_of[p] >= 0).any():
            if not policy.excluded_projects[p]:    # (that case is refused already)
                infeasible.append(f"{label}: project {pj.ids[p]} cannot be decided in any "
                                  "period of its `decide` window")
            continue
        rules.append((label, p, minimum))
    row, kind, pos, coef, owner, bound, dnode = _path_rows(
        d, ix, [(p, minimum) for _, p, minimum in rules])
    labels = np.array([lbl for lbl, _, _ in rules], dtype=object)
    ids = np.array([pj.ids[p] for _, p, _ in rules], dtype=object)
    return _rows("build", row, kind, pos, coef, bound, np.full(len(bound), np.inf),
                 rule=labels[owner], element=ids[owner], sense=">=", rhs=bound, dnode=dnode)


def define_reduction_rows(d: ProblemData, ix: ModelIndex) -> RowTerms:
    r"""Avoided demand within what demand-reducing builds allow.

    .. math:: r_{en} - \sum_{p,\tau} \mathrm{unit}\; red_{pet}\, y_{p\tau n(w,\tau)} \le 0"""
    if ix.r_elements is None or not len(ix.r_elements):
        return _rows("reduction", *[np.zeros(0)] * 6)
    S = ix.n_slots
    R = len(ix.r_elements)
    j, s = np.divmod(np.arange(R * S), S)
    e = ix.r_elements[j]
    t, w = ix.slot_t[s], ix.slot_rep[s]
    row, pos, coef = _added(d, ix, t, w, d.projects.reduces[:, e, t].T)
    terms = _merge_terms(R * S, "r", j * S + s, np.ones(R * S), row, pos, coef)
    return _rows("reduction", *terms, np.full(R * S, -np.inf), np.zeros(R * S),
                 element=np.array(d.elements, dtype=object)[e],
                 period=np.array(d.periods, dtype=object)[t], slot=s)


def project_rows(d: ProblemData, ix: ModelIndex, policy: ResolvedPolicy,
                 infeasible: list[str]) -> list[RowTerms]:
    """Every project family, in the order both builders add them."""
    return [define_delivery_capacity_rows(d, ix), define_contract_capacity_rows(d, ix),
            define_project_size_rows(d, ix), define_build_rows(d, ix, policy, infeasible),
            define_reduction_rows(d, ix)]
