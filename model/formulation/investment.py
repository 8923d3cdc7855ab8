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

import numpy as np
import pandas as pd

from .built import META_COLUMNS
from ..input.data import ProblemData
from .indexing import ModelIndex
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


class _Collector:
    """Accumulates rows of one family."""

    def __init__(self, family: str) -> None:
        self.family = family
        self.row: list[int] = []
        self.kind: list[str] = []
        self.pos: list[int] = []
        self.coef: list[float] = []
        self.lower: list[float] = []
        self.upper: list[float] = []
        self.meta: list[dict] = []

    def add(self, terms: list[tuple[str, int, float]], lower: float, upper: float,
            **meta: object) -> None:
        r = len(self.lower)
        for kind, pos, coef in terms:
            self.row.append(r)
            self.kind.append(kind)
            self.pos.append(int(pos))
            self.coef.append(float(coef))
        self.lower.append(lower)
        self.upper.append(upper)
        row = {"constraint": self.family, "rule": "", "element": "", "period": "",
               "country": "", "stage": "", "scenario": "", "sense": "<=", "rhs": upper,
               "demand_t": np.nan, "slot": -1, "dnode": -1}
        row.update(meta)
        self.meta.append(row)

    def done(self) -> RowTerms:
        if not self.meta:      # no projects (most instances): no frame to build
            from .matrix import empty_meta

            return RowTerms(self.family, np.zeros(0, np.int64), np.zeros(0, dtype=object),
                            np.zeros(0, np.int64), np.zeros(0), np.zeros(0), np.zeros(0),
                            empty_meta())
        meta = pd.DataFrame(self.meta, columns=META_COLUMNS)
        return RowTerms(self.family, np.array(self.row, dtype=np.int64),
                        np.array(self.kind, dtype=object), np.array(self.pos, dtype=np.int64),
                        np.array(self.coef, dtype=float), np.array(self.lower, dtype=float),
                        np.array(self.upper, dtype=float), meta.astype(
                            {"slot": np.int64, "dnode": np.int64}) if len(meta) else meta)


def _added(d: ProblemData, ix: ModelIndex, t: int, w: int, amount: np.ndarray,
           online_all: np.ndarray | None = None) -> list[tuple[str, int, float]]:
    """Terms -unit * amount[p] * y[p, tau, n(w, tau)] over the builds online at t.

    `amount` (P,) is what a full-size build adds (capacity of arc k, or a reduction);
    `online_all` is ``d.projects.online()``, computed once by the caller (it is the
    same for every row)."""
    pj = d.projects
    online = (pj.online() if online_all is None else online_all)[:, :, t]     # (P, T)
    out = []
    for p in np.flatnonzero(amount > 0):
        for tau in np.flatnonzero(online[p]):
            col = int(ix.ycol_of[p, tau, w])
            if col >= 0:
                out.append(("y", col, -float(ix.y_unit[col] * amount[p])))
    return out


def define_delivery_capacity_rows(d: ProblemData, ix: ModelIndex) -> RowTerms:
    r"""Deliveries within the base capacity plus what builds added, scaled by availability.

    .. math:: q_{kn} - a_{ktn} \sum_p Y_{pkt} \le a_{ktn}\, cap_{kt}

    Only for deliveries of arcs that projects can add to (elsewhere the
    column bound :math:`a\, cap` holds)."""
    out = _Collector("delivery_capacity")
    if ix.potential is None or not (ix.potential > 0).any():
        return out.done()
    sources = d.sources["id"].to_numpy()
    online = d.projects.online()
    for i, (k, t, s) in enumerate(ix.q_index.tolist()):
        if ix.potential[k, t] <= 0:
            continue
        w = int(ix.slot_rep[s])
        a = float(d.availability[k, t, w])
        terms = [("q", i, 1.0)] + [(kind, pos, a * c) for kind, pos, c in
                                    _added(d, ix, t, w, d.projects.capacity[:, k, t],
                                           online)]
        out.add(terms, -np.inf, a * float(d.capacity_t[k, t]), rule=sources[d.arc_source[k]],
                element=d.elements[d.arc_element[k]], period=d.periods[t], slot=s)
    return out.done()


def define_contract_capacity_rows(d: ProblemData, ix: ModelIndex) -> RowTerms:
    r"""A contract fits the base capacity plus the builds of every path of its node.

    .. math:: x_{ktd} - \sum_p Y_{pkt}(w) \le cap_{kt} \quad \forall w \in d

    One row per contract variable and distinct set of builds among its scenarios."""
    out = _Collector("contract_capacity")
    if ix.potential is None or not (ix.potential > 0).any():
        return out.done()
    sources = d.sources["id"].to_numpy()
    drow = d.decision_row
    W = len(d.scenarios)
    online = d.projects.online()
    for i, (k, t, _) in enumerate(ix.x_index.tolist()):
        if ix.potential[k, t] <= 0:
            continue
        seen: set[tuple] = set()
        for w in np.flatnonzero(ix.xcol_of[k, t] == i).tolist() if W else []:
            terms = [("x", i, 1.0)] + _added(d, ix, t, w, d.projects.capacity[:, k, t],
                                             online)
            key = tuple(pos for _, pos, _ in terms[1:])
            if key in seen:
                continue
            seen.add(key)
            # the latest decision the row depends on: the node it belongs to
            taus = [int(ix.y_index[pos, 1]) + 1 for _, pos, _ in terms[1:]]
            last = max([int(drow[k, t])] + taus)
            out.add(terms, -np.inf, float(d.capacity_t[k, t]), rule=sources[d.arc_source[k]],
                    element=d.elements[d.arc_element[k]], period=d.periods[t],
                    dnode=int(d.decision_node[last, w]))
    return out.done()


def _paths(d: ProblemData, ix: ModelIndex, p: int) -> list[tuple[int, list[int]]]:
    """(a scenario, its y columns) for each distinct set of project p's decisions."""
    seen: dict[tuple[int, ...], int] = {}
    for w in range(len(d.scenarios)):
        key = tuple(int(c) for c in ix.ycol_of[p, :, w] if c >= 0)
        seen.setdefault(key, w)
    return [(w, list(key)) for key, w in seen.items()]


def _last_node(d: ProblemData, ix: ModelIndex, cols: list[int], w: int) -> int:
    last = max((int(ix.y_index[c, 1]) + 1 for c in cols), default=0)
    return int(d.decision_node[last, w])


def define_project_size_rows(d: ProblemData, ix: ModelIndex) -> RowTerms:
    r"""Along every path a project is built at most once in full.

    .. math:: \sum_\tau \mathrm{unit}\; y_{p\tau n(w,\tau)} \le \bar y_p"""
    out = _Collector("project_size")
    pj = d.projects
    for p in sorted(set(ix.y_index[:, 0].tolist())) if len(ix.y_index) else []:
        for w, cols in _paths(d, ix, p):
            out.add([("y", c, float(ix.y_unit[c])) for c in cols], -np.inf,
                    float(pj.max_size[p]), rule=pj.ids[p], dnode=_last_node(d, ix, cols, w))
    return out.done()


def define_build_rows(d: ProblemData, ix: ModelIndex, policy: ResolvedPolicy,
                      infeasible: list[str]) -> RowTerms:
    r"""A policy requires a project: its sizes along every path sum to the minimum.

    .. math:: \sum_\tau \mathrm{unit}\; y_{p\tau n(w,\tau)} \ge s_{min}

    Reads ``policies.<name>.build``."""
    out = _Collector("build")
    pj = d.projects
    for label, p, minimum in policy.builds:
        if minimum <= 0:
            continue
        paths = _paths(d, ix, p)
        if not any(cols for _, cols in paths):
            if not policy.excluded_projects[p]:    # (that case is refused already)
                infeasible.append(f"{label}: project {pj.ids[p]} cannot be decided in any "
                                  "period of its `decide` window")
            continue
        for w, cols in paths:
            out.add([("y", c, float(ix.y_unit[c])) for c in cols], float(minimum), np.inf,
                    rule=label, element=pj.ids[p], sense=">=", rhs=float(minimum),
                    dnode=_last_node(d, ix, cols, w))
    return out.done()


def define_reduction_rows(d: ProblemData, ix: ModelIndex) -> RowTerms:
    r"""Avoided demand within what demand-reducing builds allow.

    .. math:: r_{en} - \sum_{p,\tau} \mathrm{unit}\; red_{pet}\, y_{p\tau n(w,\tau)} \le 0"""
    out = _Collector("reduction")
    if ix.r_elements is None or not len(ix.r_elements):
        return out.done()
    S = ix.n_slots
    online = d.projects.online()
    for j, e in enumerate(ix.r_elements.tolist()):
        for s in range(S):
            t, w = int(ix.slot_t[s]), int(ix.slot_rep[s])
            terms = [("r", j * S + s, 1.0)] + _added(d, ix, t, w, d.projects.reduces[:, e, t],
                                                     online)
            out.add(terms, -np.inf, 0.0, element=d.elements[e], period=d.periods[t], slot=s)
    return out.done()


def project_rows(d: ProblemData, ix: ModelIndex, policy: ResolvedPolicy,
                 infeasible: list[str]) -> list[RowTerms]:
    """Every project family, in the order both builders add them."""
    return [define_delivery_capacity_rows(d, ix), define_contract_capacity_rows(d, ix),
            define_project_size_rows(d, ix), define_build_rows(d, ix, policy, infeasible),
            define_reduction_rows(d, ix)]
