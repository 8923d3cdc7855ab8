"""Several buyers sharing the sources (DESIGN.md, "Several buyers"): the data side.

An instance with ``buyers:`` is carried through the model by *expansion*:
every (buyer, element) pair is an element of the model (named
``<element>@<buyer>``, e.g. ``Dy@JP``; ``@`` is not allowed in ids, so the
name cannot clash with an element of the instance) and every (buyer, source,
element) triple is an arc. Each buyer's demand, stock, penalties, balance,
contracts and deliveries are then those of its own elements and arcs, and
every existing constraint family, table and decomposition applies unchanged.
What ties the buyers together is kept here, as arrays over the expanded
index, and read by the new constraint families of
:mod:`model.formulation.sharing`:

* the arcs of one source and (base) element form a *group*: their contracts
  and deliveries share the source's capacity, up to the members' summed
  entitlements (``entitlement``, each arc's buyer's share of its source);
* ``shared_availability`` is the source's availability under the rules that
  name no buyer (a ban aimed at Japan leaves the others the source's output);
  ``ProblemData.availability`` is each buyer's own access (all rules);
* ``transfer_cost`` prices a tonne moved from one member to another.

A coalition is the data of its members only (``problem_data(..., buyers=[...])``):
outsiders are not in the model, their entitlements are not open to it.
Without ``buyers:`` none of this exists (``ProblemData.buyers is None``) and
the model is exactly the one-buyer model.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .schema import Instance

SEPARATOR = "@"     # expanded element names: "<element>@<buyer>"


def expanded_name(element: str, buyer: str) -> str:
    """The model's name of a buyer's element: ``Dy@JP``."""
    return f"{element}{SEPARATOR}{buyer}"


def split_name(name: str) -> tuple[str, str]:
    """(element or group, buyer) of an expanded name; ("name", "") for a plain one."""
    if SEPARATOR not in name:
        return name, ""
    element, buyer = name.rsplit(SEPARATOR, 1)
    return element, buyer


@dataclass
class BuyerData:
    """What ties the buyers of one model (a coalition) together, over the expanded index.

    Element ``e`` of the model is buyer ``element_buyer[e]``'s ``element_base[e]``;
    arc ``k`` is ``ProblemData.arc_element[k]``'s buyer's arc of source
    ``ProblemData.arc_source[k]``; arcs with the same ``arc_group`` share one
    capacity.
    """

    ids: list[str]                    # the members, in the instance's order
    all_ids: list[str]                # every buyer of the instance
    home: list[list[str]]             # each member's home countries
    base_elements: list[str]          # the instance's elements
    element_buyer: np.ndarray         # (E,) member position of each model element
    element_base: np.ndarray          # (E,) position in base_elements
    arc_group: np.ndarray             # (K,) id of the (source, base element) of the arc
    entitlement: np.ndarray           # (K,) share of the source's capacity the arc's buyer holds
    shared_availability: np.ndarray   # (K, T, W) the source's availability for all buyers
    transfer_cost: np.ndarray         # (E,) currency per tonne moved to another member
    demand_total_t: np.ndarray        # (n_members,) base demand over elements and periods, t

    @property
    def n(self) -> int:
        return len(self.ids)

    def arc_buyer(self, arc_element: np.ndarray) -> np.ndarray:
        """(K,) member position of each arc (from ``ProblemData.arc_element``)."""
        return self.element_buyer[arc_element]

    def subset(self, arcs: np.ndarray, elements: list[int]) -> "BuyerData":
        """The data of some arcs and elements (an element block)."""
        el = np.asarray(elements, dtype=np.int64)
        return replace(self, element_buyer=self.element_buyer[el],
                       element_base=self.element_base[el], arc_group=self.arc_group[arcs],
                       entitlement=self.entitlement[arcs],
                       shared_availability=self.shared_availability[arcs],
                       transfer_cost=self.transfer_cost[el])

    def take_scenarios(self, keep: np.ndarray) -> "BuyerData":
        """The data of some scenarios (in that order)."""
        return replace(self, shared_availability=self.shared_availability[:, :, keep])

    def expected(self, probability: np.ndarray) -> "BuyerData":
        """One scenario with the probability-weighted mean availability (the EV problem)."""
        return replace(self, shared_availability=np.einsum(
            "ktw,w->kt", self.shared_availability, probability)[:, :, None])

    def couplings(self) -> list[list[int]]:
        """Model elements that the sharing ties together: each base element's buyers."""
        out: dict[int, list[int]] = {}
        for e, b in enumerate(self.element_base.tolist()):
            out.setdefault(b, []).append(e)
        return [v for v in out.values() if len(v) > 1]


def entitlement_shares(inst: Instance, offered: list[list[str]],
                       demand_t: np.ndarray) -> np.ndarray:
    """(S, B) the share of each source's capacity each buyer of the instance holds alone.

    A source's `entitlement` map gives the named buyers' shares (summing to at
    most 1); what it leaves is split among the buyers it does not name in
    proportion to their base demand over the horizon for the elements the source
    supplies (tonnes summed), equally when none of them has any. A map naming
    every buyer leaves the rest to no one. ``offered[s]``: the elements source s
    supplies; ``demand_t`` (B, E, T): each buyer's base demand."""
    ids = [b.id for b in inst.buyers]
    e_pos = {e: i for i, e in enumerate(inst.elements)}
    out = np.zeros((len(inst.sources), len(ids)))
    for s, src in enumerate(inst.sources):
        named = dict(src.entitlement or {})
        for b, share in named.items():
            out[s, ids.index(b)] = float(share)
        rest = max(0.0, 1.0 - float(sum(named.values())))
        others = [j for j, b in enumerate(ids) if b not in named]
        if not others or rest <= 0:
            continue
        elems = [e_pos[e] for e in offered[s]]
        weight = demand_t[others][:, elems, :].sum(axis=(1, 2)) if elems \
            else np.zeros(len(others))
        if weight.sum() > 0:
            out[s, others] = rest * weight / weight.sum()
        else:
            out[s, others] = rest / len(others)
    return out
