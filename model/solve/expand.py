"""From node-level answers to one value per scenario.

The builders make one variable per node (model.formulation.indexing), possibly on a
reduced scenario set in which classes of scenarios that a block cannot tell
apart are merged (model.input.tree.reduce_scenarios). Every table, summary and check
downstream reads one row per scenario. :func:`expand` maps a node-level
(model, answer) onto every scenario of the full data:

* values are repeated for each scenario of their node;
* reduced costs and row duals, which carry the node's probability, are
  shared out in proportion to each scenario's own probability (relaxing the
  row of one scenario of a node moves the optimum by that share);
* each expanded row says which information node it belongs to (``node``).

The expanded model has ``x_index`` and ``q_index`` both as (arc, period,
scenario), no matrix and no index: it is a view for reporting.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..formulation.built import BuiltModel
from ..input.data import ProblemData
from .solve import SolveResult
from ..input.tree import Reduction

EXPANDED_COLUMNS = ["constraint", "rule", "element", "period", "country", "stage", "scenario",
                    "node", "sense", "rhs", "demand_t"]


def _ratio(p: np.ndarray, total: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, p / np.where(total > 0, total, 1.0), 0.0)


def _groups(keys: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(order, start, count) of the positions of `keys` grouped by key value 0..n-1."""
    order = np.argsort(keys, kind="stable")
    count = np.bincount(keys, minlength=n)
    start = np.concatenate([[0], np.cumsum(count)[:-1]]).astype(np.int64)
    return order, start, count


def _spread(owner: np.ndarray, order: np.ndarray, start: np.ndarray, count: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    """For items with an owner group (-1: none), (source item, member) of every copy:
    one copy per member of the owner's group (``order[start:start+count]``), one copy
    with member -1 for items without an owner."""
    reps = np.where(owner >= 0, count[np.maximum(owner, 0)], 1)
    src = np.repeat(np.arange(len(owner)), reps)
    offset = np.arange(len(src)) - np.repeat(np.cumsum(reps) - reps, reps)
    own = owner[src]
    member = np.full(len(src), -1, dtype=np.int64)
    ok = own >= 0
    member[ok] = order[start[own[ok]] + offset[ok]]
    return src, member


_EMPTY: pd.DataFrame | None = None


def _empty_expanded() -> pd.DataFrame:
    """The expanded metadata of a family without rows (columns as a sliced empty one)."""
    global _EMPTY
    if _EMPTY is None:
        _EMPTY = pd.DataFrame({c: pd.Series(dtype=object) for c in EXPANDED_COLUMNS})
    return _EMPTY.copy()


def node_labels(full: ProblemData) -> np.ndarray:
    """Label of every information node of the full data (object array)."""
    return np.array(full.tree.labels(full.periods), dtype=object)


def expand(full: ProblemData, built: BuiltModel, result: SolveResult,
           reduction: Reduction | None = None, rows: bool = True
           ) -> tuple[BuiltModel, SolveResult]:
    """The per-scenario view of a node-level solve (see the module docstring).

    `built.data` holds the scenarios the model was built on: those of `full`,
    or the classes of `reduction` (each a list of scenarios of `full`).
    With ``rows=False`` the row metadata and duals are left out (a sweep point
    needs only the values), except the stock-floor rows of a soft floor, whose
    deficits are values.
    """
    ix = built.index
    W = len(full.scenarios)
    p = full.probability
    class_of = np.arange(W, dtype=np.int64)
    if reduction is not None:
        for c, members in enumerate(reduction.members):
            class_of[members] = c
    T = ix.slot_of.shape[0]
    slot_full = ix.slot_of[:, class_of]                                   # (T, W)
    S = ix.n_slots
    flat_w = np.tile(np.arange(W), T)
    s_order, s_start, s_count = _groups(slot_full.reshape(-1), S)
    history = full.information == "history"
    labels = node_labels(full) if full.tree is not None else None

    out = SolveResult(result.status, result.message, result.objective, result.bound,
                      result.solver, result.solver_version, result.handoff_seconds,
                      result.solve_seconds, result.n_variables, result.n_constraints)
    out.mip, out.mip_gap, out.incumbent = result.mip, result.mip_gap, result.incumbent
    for key in ("wall_seconds", "blocks"):
        if hasattr(result, key):
            setattr(out, key, getattr(result, key))

    # ---- columns
    xcol_full = ix.xcol_of[:, :, class_of]                               # (K, T, W)
    kk, tt, ww = np.nonzero(xcol_full >= 0)
    xpos = xcol_full[kk, tt, ww]
    x_index = np.column_stack([kk, tt, ww]).astype(np.int64)
    qpos_full = ix.qpos_of[:, slot_full] if ix.qpos_of.size else \
        np.full((full.n_arcs, T, W), -1, dtype=np.int64)
    qk, qt, qw = np.nonzero(qpos_full >= 0)
    qpos = qpos_full[qk, qt, qw]
    q_index = np.column_stack([qk, qt, qw]).astype(np.int64)
    ycol_full = ix.ycol_of[:, :, class_of]                               # (P, T, W)
    yp, yt, yw = np.nonzero(ycol_full >= 0)
    ypos = ycol_full[yp, yt, yw]
    if result.has_solution:
        E = len(full.elements)
        v, rc = result.values, result.reduced_costs
        out.values["x"] = v["x"][xpos]
        out.reduced_costs["x"] = rc["x"][xpos] * _ratio(p[ww], ix.x_prob[xpos])
        out.values["q"] = v["q"][qpos]
        out.reduced_costs["q"] = rc["q"][qpos] * _ratio(
            p[qw], ix.slot_prob[ix.q_index[qpos, 2]])
        share = _ratio(p[None, :], ix.slot_prob[slot_full])                # (T, W)
        for key in ("u", "stock"):
            per = v[key].reshape(E, S)[:, slot_full]
            out.values[key] = per.reshape(-1)
            out.reduced_costs[key] = (rc[key].reshape(E, S)[:, slot_full]
                                      * share[None]).reshape(-1)
        for key, elems in (("z", ix.z_elements), ("r", ix.r_elements)):
            dense = np.zeros((E, T, W))     # surplus sold, demand avoided: some elements
            if len(elems):
                dense[elems] = v[key].reshape(len(elems), S)[:, slot_full]
            out.values[key] = dense.reshape(-1)
        if ix.m_elements is not None and len(ix.m_elements):   # several buyers: transfers
            for key in ("m_in", "m_out"):
                dense = np.zeros((E, T, W))
                dense[ix.m_elements] = v[key].reshape(len(ix.m_elements), S)[:, slot_full]
                out.values[key] = dense.reshape(-1)
        # project sizes (in full-size units) per scenario; reduced costs shared out
        out.values["y"] = v["y"][ypos] * ix.y_unit[ypos] if len(ypos) else np.zeros(0)
        out.reduced_costs["y"] = rc["y"][ypos] * _ratio(p[yw], ix.y_prob[ypos]) \
            if len(ypos) else np.zeros(0)
        if "eta" in v:
            p_class = built.data.probability
            out.values["eta"], out.reduced_costs["eta"] = v["eta"], rc["eta"]
            out.values["excess"] = v["excess"][class_of]
            out.reduced_costs["excess"] = rc["excess"][class_of] * _ratio(p, p_class[class_of])
        if "amb_max" in v:      # the ambiguity set's columns (theta > 0)
            p_class = built.data.probability
            for key in ("amb_max", "amb_eta"):
                out.values[key], out.reduced_costs[key] = v[key], rc[key]
            out.values["amb_excess"] = v["amb_excess"][class_of]
            out.reduced_costs["amb_excess"] = rc["amb_excess"][class_of] * \
                _ratio(p, p_class[class_of])

    # ---- rows
    meta: dict[str, pd.DataFrame] = {}
    soft = built.floors is not None and bool(built.floors.soft.any())
    if rows or (soft and result.has_solution):   # a soft floor's deficits enter the costs
        scen_names = np.array(full.scenarios, dtype=object)
        d_red = built.data
        node_row = {int(n): r for r in range(d_red.decision_node.shape[0])
                    for n in np.unique(d_red.decision_node[r])}
        c_order, c_start, c_count = _groups(class_of, len(d_red.scenarios))
        for fam, fm in built.row_meta.items():
            if not rows and fam != "min_stock_days":
                continue
            if not len(fm):     # most families of a block are empty: no frame work
                meta[fam] = _empty_expanded()
                if result.has_solution and fam in result.duals:
                    out.duals[fam] = np.zeros(0)
                if result.has_solution and fam == "min_stock_days":
                    out.values["deficit"] = np.zeros(0)
                continue
            slot = fm["slot"].to_numpy(dtype=np.int64)
            if fam == "cvar_excess":      # one row per (merged) scenario: its members
                src, w_of = _spread(np.arange(len(fm)), c_order, c_start, c_count)
                ratio = _ratio(p[w_of], d_red.probability[src])
                node = np.full(len(src), "", dtype=object)
            else:                         # rows of a slot: one per scenario of the slot
                src, member = _spread(slot, s_order, s_start, s_count)
                w_of = np.where(member >= 0, flat_w[np.maximum(member, 0)], -1)
                own = slot[src]
                ratio = np.where(own >= 0, _ratio(p[np.maximum(w_of, 0)],
                                                  ix.slot_prob[np.maximum(own, 0)]), 1.0)
                node = np.full(len(src), "", dtype=object)
                if history and labels is not None:
                    ok = own >= 0
                    t_of = ix.slot_t[own[ok]]
                    node[ok] = labels[full.decision_node[t_of + 1, w_of[ok]]]
                # plan rows: one per information node merged into their decision node
                dn = fm["dnode"].to_numpy(dtype=np.int64)[src]
                if (dn >= 0).any():
                    src, w_of, ratio, node = _expand_plan_rows(
                        full, d_red, class_of, node_row, labels, src, w_of, ratio, node, dn)
            em = fm.iloc[src].reset_index(drop=True)
            scen = em["scenario"].to_numpy(dtype=object).copy()
            scen[w_of >= 0] = scen_names[w_of[w_of >= 0]]
            em["scenario"] = scen
            em["node"] = node
            meta[fam] = em[EXPANDED_COLUMNS]
            if result.has_solution and fam in result.duals:
                out.duals[fam] = result.duals[fam][src] * ratio
            if result.has_solution and fam == "min_stock_days":   # a soft floor's deficit
                deficit = np.zeros(len(fm))
                if built.floors is not None and len(fm):
                    deficit[built.floors.soft] = result.values["deficit"]
                out.values["deficit"] = deficit[src]
    view = BuiltModel(None, full, built.policy, x_index, q_index, meta,
                      built.trivially_infeasible, built.build_seconds,
                      y_index=np.column_stack([yp, yt, yw]).astype(np.int64))
    return view, out


def _expand_plan_rows(full: ProblemData, d_red: ProblemData, class_of: np.ndarray,
                      node_row: dict[int, int], labels: np.ndarray | None, src: np.ndarray,
                      w_of: np.ndarray, ratio: np.ndarray, node: np.ndarray,
                      dn: np.ndarray) -> tuple[np.ndarray, ...]:
    """Plan rows at a (possibly merged) decision node: one row per information node
    of the full tree in it, its dual shared by probability."""
    p_node = np.bincount(full.decision_node.reshape(-1),
                         weights=np.tile(full.probability, full.decision_node.shape[0]))
    out_src, out_w, out_ratio, out_node = [], [], [], []
    cache: dict[int, list[tuple[int, float]]] = {}
    for i in range(len(src)):
        n = int(dn[i])
        if n < 0:
            out_src.append(src[i]); out_w.append(w_of[i]); out_ratio.append(ratio[i])
            out_node.append(node[i])
            continue
        if n not in cache:
            r = node_row[n]
            scen = np.flatnonzero(d_red.decision_node[r, class_of] == n)
            glob = np.unique(full.decision_node[r, scen])
            total = float(sum(p_node[g] for g in glob))
            cache[n] = [(int(g), p_node[g] / total if total > 0 else 1.0 / len(glob))
                        for g in glob]
        for g, share in cache[n]:
            out_src.append(src[i]); out_w.append(-1); out_ratio.append(share)
            out_node.append(labels[g] if labels is not None else "")
    return (np.array(out_src, dtype=np.int64), np.array(out_w, dtype=np.int64),
            np.array(out_ratio, dtype=float), np.array(out_node, dtype=object))
