r"""Several buyers: the constraint families that tie them together, as row terms.

With ``buyers:`` the model's elements are (buyer, element) pairs and its arcs
(buyer, source, element) triples (model.input.buyers). Each buyer's own
families (balance, contracts, stock, policies) are the one-buyer families on
its elements and arcs. What the members of a coalition share is here:

* ``shared_contract_capacity``: the contracts of every member on one source and
  element fit the capacity the members hold together,

  .. math:: \sum_{b} x_{b,ktd} - \sum_p Y_{pkt}(w) \le \Big(\sum_{b} \epsilon_{bs}\Big)\, cap_{kt}
     \quad \forall w \in d

  (:math:`\epsilon_{bs}` the share of source :math:`s` buyer :math:`b` holds
  alone, ``entitlement``; :math:`Y` what the coalition's builds add);
* ``shared_delivery_capacity``: every member's deliveries from one source and
  element, in a node, within the source's output open to the coalition,

  .. math:: \sum_{b} q_{b,kn} - \bar a_{ktn} \sum_p Y_{pkt} \le
     \bar a_{ktn} \Big(\sum_{b} \epsilon_{bs}\Big)\, cap_{kt}

  with :math:`\bar a` the availability under the rules that name no buyer;
  each member's own access :math:`q_{b,kn} \le a_{b,ktn}\, cap_{kt}` (all
  rules, those aimed at it included) is its column bound;
* ``transfer_pool``: stock moved between members. A member may send
  :math:`m^{out}_{b,en}` and receive :math:`m^{in}_{b,en}` tonnes of element
  :math:`e` in node :math:`n`; what is sent is received,

  .. math:: \sum_b m^{out}_{b,en} - \sum_b m^{in}_{b,en} = 0,

  and each received tonne costs ``transfer_cost``. Any flow between pairs of
  members :math:`m_{b \to b'}` is such a pool flow and back (a flow through a
  star), at the same cost, since the cost is per tonne moved whatever the pair.

The transfers enter each member's balance (model.formulation.formulation,
``balance``) as :math:`+ m^{in} - m^{out}`, and shortage is bounded by demand
(:math:`u_{b,en} \le D_{b,en}`, a column bound): with transfers a buyer must not
pass on tonnes it never had. Both builders turn the same terms into rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..input.data import ProblemData
from .built import META_COLUMNS
from .indexing import ModelIndex

FAMILIES = ("shared_contract_capacity", "shared_delivery_capacity", "transfer_pool")


@dataclass
class SharedRows:
    """Rows as coefficient triplets: row, variable kind ("x", "q", "y", "m_in", "m_out"),
    position within that kind, coefficient; row bounds and metadata."""

    family: str
    row: list[int] = field(default_factory=list)
    kind: list[str] = field(default_factory=list)
    pos: list[int] = field(default_factory=list)
    coef: list[float] = field(default_factory=list)
    lower: list[float] = field(default_factory=list)
    upper: list[float] = field(default_factory=list)
    meta: list[dict] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.lower)

    def add(self, terms: list[tuple[str, int, float]], lower: float, upper: float,
            **meta: object) -> None:
        r = self.n
        for kind, pos, coef in terms:
            self.row.append(r)
            self.kind.append(kind)
            self.pos.append(int(pos))
            self.coef.append(float(coef))
        self.lower.append(float(lower))
        self.upper.append(float(upper))
        row = {"constraint": self.family, "rule": "", "element": "", "period": "",
               "country": "", "stage": "", "scenario": "", "sense": "<=", "rhs": upper,
               "demand_t": np.nan, "slot": -1, "dnode": -1}
        row.update(meta)
        self.meta.append(row)

    def frame(self) -> pd.DataFrame:
        from .matrix import empty_meta

        if not self.meta:
            return empty_meta()
        return pd.DataFrame(self.meta, columns=META_COLUMNS).astype(
            {"slot": np.int64, "dnode": np.int64})


def _added(d: ProblemData, ix: ModelIndex, k: int, t: int, w: int, scale: float
           ) -> list[tuple[str, int, float]]:
    """-scale x the capacity the builds on scenario w's path add to arc k in period t."""
    pj = d.projects
    if pj is None or pj.n == 0 or ix.y_index is None or not len(ix.y_index):
        return []
    online = pj.online()[:, :, t]                                   # (P, T)
    out = []
    for p in np.flatnonzero(pj.capacity[:, k, t] > 0):
        for tau in np.flatnonzero(online[p]):
            col = int(ix.ycol_of[p, tau, w])
            if col >= 0:
                out.append(("y", col, -scale * float(ix.y_unit[col] * pj.capacity[p, k, t])))
    return out


def _groups(d: ProblemData) -> list[np.ndarray]:
    """The arcs of each (source, base element) group, groups in order of first arc."""
    bd = d.buyers
    order: dict[int, list[int]] = {}
    for k, g in enumerate(bd.arc_group.tolist()):
        order.setdefault(g, []).append(k)
    return [np.array(v, dtype=np.int64) for v in order.values()]


def _words(d: ProblemData, k: int) -> dict[str, object]:
    bd = d.buyers
    return {"rule": d.sources["id"].iloc[d.arc_source[k]],
            "element": bd.base_elements[bd.element_base[d.arc_element[k]]]}


def define_shared_contract_capacity_rows(d: ProblemData, ix: ModelIndex) -> SharedRows:
    r"""The members' contracts on a source and element within their entitlements.

    .. math:: \sum_b x_{b,ktd} - \sum_p Y_{pkt}(w) \le \epsilon_S\, cap_{kt}
              \quad \forall w \in d

    One row per group, period and distinct set of contract and build columns
    among the scenarios (one per decision node without builds)."""
    out = SharedRows("shared_contract_capacity")
    if d.buyers is None:
        return out
    drow = d.decision_row
    W = len(d.scenarios)
    T = len(d.periods)
    for arcs in _groups(d):
        arcs = arcs[d.is_contract[arcs]]
        if not len(arcs):
            continue
        ent = float(d.buyers.entitlement[arcs].sum())
        for t in range(T):
            seen: set[tuple] = set()
            for w in range(W):
                terms = [("x", int(ix.xcol_of[k, t, w]), 1.0) for k in arcs
                         if ix.xcol_of[k, t, w] >= 0]
                if not terms:
                    continue
                terms += _added(d, ix, int(arcs[0]), t, w, 1.0)
                key = tuple((kind, pos) for kind, pos, _ in terms)
                if key in seen:
                    continue
                seen.add(key)
                taus = [int(ix.y_index[pos, 1]) + 1 for kind, pos, _ in terms if kind == "y"]
                last = max([int(drow[arcs[0], t])] + taus)
                rhs = ent * float(d.capacity_t[arcs[0], t])
                out.add(terms, -np.inf, rhs, period=d.periods[t],
                        dnode=int(d.decision_node[last, w]), **_words(d, int(arcs[0])))
    return out


def define_shared_delivery_capacity_rows(d: ProblemData, ix: ModelIndex) -> SharedRows:
    r"""The members' deliveries from a source and element within the output open to them.

    .. math:: \sum_b q_{b,kn} - \bar a_{ktn} \sum_p Y_{pkt} \le \bar a_{ktn}\,
              \epsilon_S\, cap_{kt}

    One row per group and node in which a member can receive something."""
    out = SharedRows("shared_delivery_capacity")
    if d.buyers is None:
        return out
    shared = d.buyers.shared_availability
    for arcs in _groups(d):
        ent = float(d.buyers.entitlement[arcs].sum())
        k0 = int(arcs[0])
        for s in range(ix.n_slots):
            cols = ix.qpos_of[arcs, s]
            if not (cols >= 0).any():
                continue
            t, w = int(ix.slot_t[s]), int(ix.slot_rep[s])
            a = float(shared[k0, t, w])
            terms = [("q", int(c), 1.0) for c in cols if c >= 0]
            terms += _added(d, ix, k0, t, w, a)
            out.add(terms, -np.inf, a * ent * float(d.capacity_t[k0, t]),
                    period=d.periods[t], slot=s, **_words(d, k0))
    return out


def define_transfer_pool_rows(d: ProblemData, ix: ModelIndex) -> SharedRows:
    r"""What members send of an element in a node, members receive.

    .. math:: \sum_b m^{out}_{b,en} - \sum_b m^{in}_{b,en} = 0"""
    out = SharedRows("transfer_pool")
    if d.buyers is None or ix.m_elements is None or not len(ix.m_elements):
        return out
    S = ix.n_slots
    base = d.buyers.element_base[ix.m_elements]
    for b in np.unique(base).tolist():
        members = np.flatnonzero(base == b)
        for s in range(S):
            terms = [(kind, int(j) * S + s, c) for j in members.tolist()
                     for kind, c in (("m_out", 1.0), ("m_in", -1.0))]
            out.add(terms, 0.0, 0.0, element=d.buyers.base_elements[b],
                    period=d.periods[int(ix.slot_t[s])], slot=s, sense="==", rhs=0.0)
    return out


def sharing_rows(d: ProblemData, ix: ModelIndex) -> list[SharedRows]:
    """Every family of this module, in the order both builders add them (none
    without buyers)."""
    if d.buyers is None:
        return []
    return [define_shared_contract_capacity_rows(d, ix),
            define_shared_delivery_capacity_rows(d, ix), define_transfer_pool_rows(d, ix)]
