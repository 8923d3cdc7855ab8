"""What is known when: the information tree of a scenario set (DESIGN.md, non-anticipativity).

Node :math:`n(w,t)` holds the scenarios whose data agree with scenario
:math:`w` in every period up to and including :math:`t`. The tree is derived
from the scenarios themselves: users write scenarios, never nodes.

Two maps over the scenarios say where each decision is taken:

* ``decision_node`` (T+1, W): the information node after period t-1 (row 0
  is the root, before the first period). A contract volume for period t with
  lead time L is decided at row ``max(t - L + 1, 0)``.
* ``recourse_node`` (T, W): the node at which period t's recourse (deliveries,
  shortage, stock) is decided: the information node under ``history``, the
  scenario itself under ``clairvoyant``.

The model builders take one variable per recourse node (and one contract
variable per decision node), so a decision is the same for every scenario of
its node without equality rows. :func:`reduce_scenarios` merges what an
element block cannot tell apart (subtrees whose block data and conditional
probabilities agree), which keeps the optimum exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

NO_LEAD_TIME = 1 << 30     # a contract without lead_time: decided at the root
INFORMATION = ("history", "clairvoyant")


@dataclass
class InformationTree:
    """The nodes of a scenario set: node 0 is the root (period -1, every scenario)."""

    node_of: np.ndarray        # (T+1, W) node after period t-1; row 0 all root
    parent: np.ndarray         # (N,) parent node, -1 for the root
    period: np.ndarray         # (N,) 0-based period position, -1 for the root
    probability: np.ndarray    # (N,)

    @property
    def n_nodes(self) -> int:
        return len(self.parent)

    def labels(self, periods: Sequence[Any]) -> list[str]:
        """Readable node ids: ``root``, then ``<period>.<j>`` (j from 1 within a period)."""
        out, count = [], {}
        for n in range(self.n_nodes):
            t = int(self.period[n])
            if t < 0:
                out.append("root")
                continue
            count[t] = count.get(t, 0) + 1
            out.append(f"{periods[t]}.{count[t]}")
        return out

    def nodes_per_period(self) -> list[int]:
        T = self.node_of.shape[0] - 1
        return np.bincount(self.period[self.period >= 0], minlength=T).tolist()


def period_features(availability: np.ndarray, price_multiplier: np.ndarray,
                    demand_t: np.ndarray, *more: np.ndarray) -> list[np.ndarray]:
    """Per period, a (W, F) array of everything the node identity compares.

    Availability factors, price multipliers (before any clipping) and
    scenario demand of every arc and element; `more` adds further (X, T, W)
    arrays (such as emergency flags).
    """
    arrays = [availability, price_multiplier, demand_t, *more]
    T = demand_t.shape[1]
    return [np.ascontiguousarray(np.concatenate([a[:, t, :] for a in arrays], axis=0).T)
            for t in range(T)]


def build_tree(features: list[np.ndarray], probability: np.ndarray) -> InformationTree:
    """The information tree of per-period scenario features (see :func:`period_features`)."""
    T = len(features)
    W = len(probability)
    node_of = np.zeros((T + 1, W), dtype=np.int64)
    parent, period = [-1], [-1]
    for t in range(T):
        rows = features[t]
        seen: dict[tuple[int, bytes], int] = {}
        for w in range(W):
            key = (int(node_of[t, w]), rows[w].tobytes())
            n = seen.get(key)
            if n is None:
                n = seen[key] = len(parent)
                parent.append(int(node_of[t, w]))
                period.append(t)
            node_of[t + 1, w] = n
    prob = np.bincount(node_of.reshape(-1), weights=np.tile(probability, T + 1),
                       minlength=len(parent))
    return InformationTree(node_of, np.array(parent), np.array(period), prob)


def recourse_nodes(tree: InformationTree, information: str) -> np.ndarray:
    """(T, W) recourse node ids: the tree's nodes (history) or each scenario alone."""
    if information == "history":
        return tree.node_of[1:].copy()
    if information != "clairvoyant":
        raise ValueError(f"information must be one of {INFORMATION}, not {information!r}")
    T1, W = tree.node_of.shape
    return np.arange((T1 - 1) * W, dtype=np.int64).reshape(T1 - 1, W)


def decision_rows(lead_time: np.ndarray, T: int) -> np.ndarray:
    """(K, T) row of ``decision_node`` at which each arc's period-t contract is decided."""
    t = np.arange(T)[None, :]
    lead = np.minimum(np.asarray(lead_time, dtype=np.int64), NO_LEAD_TIME)[:, None]
    return np.maximum(t - lead + 1, 0)


def is_two_stage(decision_node: np.ndarray, recourse_node: np.ndarray,
                 rows: np.ndarray) -> bool:
    """True when the model is a two-stage program: every contract decided at the root
    and every recourse node holds scenarios that share their recourse from the first
    period to the last (a fan of scenario paths, identical scenarios merged)."""
    if (rows > 0).any():
        return False
    first = recourse_node[0]
    last = recourse_node[-1]
    # each first-period node must map to exactly one last-period node
    pairs = np.unique(np.stack([first, last]), axis=1)
    return len(np.unique(pairs[0])) == pairs.shape[1]


# --------------------------------------------------------------------------- reduction
@dataclass
class Reduction:
    """Scenario classes that one block of the model cannot tell apart."""

    members: list[np.ndarray]         # original scenarios of each class, in class order
    representative: np.ndarray        # (W',) one member of each class
    probability: np.ndarray           # (W',) summed probability
    decision_node: np.ndarray         # (T+1, W') class-level decision nodes
    recourse_node: np.ndarray         # (T, W') class-level recourse nodes

    @property
    def trivial(self) -> bool:
        return all(len(m) == 1 for m in self.members)


def _classes_from_paths(path_keys: np.ndarray, probability: np.ndarray) -> Reduction:
    """Classes of scenarios with identical (T+1)-row paths of class-node ids."""
    W = path_keys.shape[1]
    groups: dict[bytes, list[int]] = {}
    for w in range(W):
        groups.setdefault(path_keys[:, w].tobytes(), []).append(w)
    members = [np.array(m) for m in groups.values()]
    reps = np.array([m[0] for m in members], dtype=np.int64)
    prob = np.array([probability[m].sum() for m in members])
    return Reduction(members, reps, prob, path_keys[:, reps], path_keys[1:, reps])


def reduce_scenarios(features: list[np.ndarray], probability: np.ndarray,
                     decision_node: np.ndarray, recourse_node: np.ndarray,
                     rows: np.ndarray, information: str, any_weights: bool = False
                     ) -> Reduction:
    """Merge the scenarios that a block's data cannot tell apart, exactly.

    `features` are the block's own per-period data (its arcs and elements).

    * ``history``: two nodes of the same period merge when their parents
      merged and their subtrees agree: the same block data at the node and
      the same conditional probability of every kind of child subtree
      (a bisimulation). Averaging an optimal plan over merged nodes,
      weighted by probability, is feasible and no dearer (the LP is convex;
      expected cost is linear and CVaR falls under conditional averaging), so
      one copy of each class gives the same optimum.
    * ``clairvoyant`` with every contract at the root: scenarios with
      identical block data in every period merge (their recourse is separate
      anyway).
    * ``clairvoyant`` with contracts decided at later nodes: only scenarios
      in the same leaf of the information tree (identical in all data) merge.

    With `any_weights` the merge must stay exact when the scenarios' weights in
    the objective are not their probabilities (model.solve.coupled prices a block with
    the weights of a CVaR tail). Under ``history`` a node then merges only when
    all its children are of one kind: its subtree is one path of data, whatever
    weight each scenario in it carries. (Clairvoyant merges are of whole paths
    already.)
    """
    T = len(features)
    W = len(probability)
    if information == "clairvoyant":
        if (rows > 0).any():
            leaf = decision_node[T]
            return _classes_from_paths(np.stack([np.zeros(W, np.int64)] * T + [leaf]),
                                       probability)
        keys = np.zeros((T + 1, W), dtype=np.int64)
        for t in range(T):
            seen: dict[tuple[int, bytes], int] = {}
            for w in range(W):
                key = (int(keys[t, w]), features[t][w].tobytes())
                keys[t + 1, w] = seen.setdefault(key, len(seen))
        red = _classes_from_paths(keys, probability)
        W2 = len(red.members)
        red.decision_node = decision_node[:, red.representative]
        red.recourse_node = np.arange(T * W2, dtype=np.int64).reshape(T, W2)
        return red
    # history: bottom-up subtree signatures, then classes top-down
    node_of = decision_node
    n_nodes = int(node_of.max()) + 1
    rep = np.full(n_nodes, -1, dtype=np.int64)
    for t in range(T + 1):
        for w in range(W):
            if rep[node_of[t, w]] < 0:
                rep[node_of[t, w]] = w
    prob = np.bincount(node_of.reshape(-1), weights=np.tile(probability, T + 1),
                       minlength=n_nodes)
    parent = np.full(n_nodes, -1, dtype=np.int64)
    for t in range(1, T + 1):
        parent[node_of[t]] = node_of[t - 1]
    period = np.full(n_nodes, -1, dtype=np.int64)
    for t in range(T + 1):
        period[node_of[t]] = t - 1
    signature = np.full(n_nodes, -1, dtype=np.int64)
    sig_ids: dict[Any, int] = {}
    children: dict[int, dict[int, float]] = {}
    for t in range(T, -1, -1):
        nodes = np.unique(node_of[t])
        for n in nodes.tolist():
            label = features[t - 1][rep[n]].tobytes() if t > 0 else b""
            kids = children.get(n, {})
            if any_weights and len(kids) > 1:     # branches that weights can tell apart
                sig = sig_ids.setdefault(("node", n), len(sig_ids))
            else:
                # conditional probabilities, rounded so that sums in another order agree
                dist = tuple(sorted((s, round(p / prob[n], 12)) for s, p in kids.items())) \
                    if prob[n] > 0 else tuple(sorted(kids))
                sig = sig_ids.setdefault((label, dist), len(sig_ids))
            signature[n] = sig
            if t > 0:
                par = children.setdefault(int(parent[n]), {})
                par[sig] = par.get(sig, 0.0) + float(prob[n])
    cls = np.zeros((T + 1, W), dtype=np.int64)
    for t in range(1, T + 1):
        seen2: dict[tuple[int, int], int] = {}
        for w in range(W):
            key = (int(cls[t - 1, w]), int(signature[node_of[t, w]]))
            cls[t, w] = seen2.setdefault(key, len(seen2))
    # class ids unique across periods
    offset = np.concatenate([[0], np.cumsum(cls.max(axis=1) + 1)[:-1]])
    cls = cls + offset[:, None]
    return _classes_from_paths(cls, probability)


def fan_reduction(W: int, decision_node: np.ndarray, recourse_node: np.ndarray,
                  probability: np.ndarray) -> Reduction:
    """No merging: every scenario its own class."""
    return Reduction([np.array([w]) for w in range(W)], np.arange(W, dtype=np.int64),
                     np.asarray(probability, dtype=float).copy(), decision_node.copy(),
                     recourse_node.copy())
