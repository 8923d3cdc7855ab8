"""One built model for several policies: switch rows and columns, re-solve warm.

``compare`` solves one instance under several policies. Their LPs share every
column and every row except what a policy adds or removes:

* its rule rows (share caps and floors, stock floors, budgets), labelled with
  the policy's name (``crma.max_single_country_share[0]``);
* the columns of the arcs it excludes (``exclude:``).

:class:`PolicySwitcher` builds the *union* model once (model.formulation.policies.union_policy:
the rows of every policy, the columns of the least restrictive one), hands it
to HiGHS once, and for policy p

* frees the rule rows of every other policy: ``-inf <= a x <= +inf`` is no
  constraint at all;
* gives p's own rule rows their bounds back;
* fixes the columns of the arcs p excludes at 0 (their lower bound is 0
  already, so this removes them: each enters its rows times 0).

What remains is exactly p's own LP, so its optimum is p's optimum. Only bounds
change between policies, so HiGHS keeps its basis and re-solves from the
previous policy's optimum. :meth:`PolicySwitcher.solve` returns the answer
indexed as p's own model (its columns, rows and row metadata), so the tables
downstream have the same rows and meaning as a separate solve's and the
optimum is the same; where several plans are equally cheap, the plan found
may differ. tests/test_switch.py checks both against separate solves.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..formulation.built import BuiltModel
from ..input.data import ProblemData
from ..formulation.indexing import ModelIndex, StockFloorRows, model_index
from ..formulation.matrix import build_matrix
from ..formulation.policies import ResolvedPolicy, union_policy
from .solve import HighsModel, SolveOptions, SolveResult

RULE_FAMILIES = ("max_single_country_share", "min_domestic_share", "min_recycled_share",
                 "min_stock_days", "build_stock", "budget", "build")


def _labels(policy: ResolvedPolicy) -> set[str]:
    return ({r.label for r in policy.share_rules} | {r.label for r in policy.stock_rules}
            | {label for label, _ in policy.budgets} | {b[0] for b in policy.builds}
            | set(policy.no_stock_build))


class PolicySwitcher:
    """The union model of `policies` in one HiGHS instance (see the module docstring)."""

    def __init__(self, d: ProblemData, policies: list[ResolvedPolicy],
                 options: SolveOptions | None = None) -> None:
        labels = [_labels(p) for p in policies]
        if sum(len(s) for s in labels) != len(set().union(*labels)):
            raise ValueError("policies to switch between must have distinct rule labels")
        self.data, self.policies, self.labels = d, policies, labels
        self.union = build_matrix(d, union_policy(policies))
        lp = self.union.matrix
        self.hm = HighsModel(self.union, options)
        self.build_seconds = self.union.build_seconds
        meta = self.union.row_meta
        # rule rows: position in the matrix and owner label, family by family
        self.rule_rows = {fam: np.arange(*lp.row_blocks[fam]) for fam in RULE_FAMILIES}
        self.rule_label = {fam: meta[fam]["rule"].to_numpy(dtype=object) for fam in RULE_FAMILIES}
        self.row_lower, self.row_upper = lp.row_lower.copy(), lp.row_upper.copy()
        # switchable columns: x and q (their arc), z (its element), deficit (its floor row)
        ix, floors = self.union.index, self.union.floors
        S = ix.n_slots
        self.cols = {name: np.arange(*lp.col_blocks[name])
                     for name in ("x", "q", "z", "deficit", "y", "r")}
        self.col_upper = {name: lp.col_upper[c].copy() for name, c in self.cols.items()}
        self.x_arc, self.q_arc = ix.x_index[:, 0], ix.q_index[:, 0]
        self.z_element = np.repeat(ix.z_elements, S)
        self.deficit_label = np.array(floors.rule, dtype=object)[floors.soft]
        self.y_project = ix.y_index[:, 0]
        self.r_element = np.repeat(ix.r_elements, S)
        # rows that exist only where a project can add capacity to an arc: their arc
        arc_of = {(sid, e): k for k, (sid, e) in enumerate(zip(
            d.sources["id"].to_numpy()[d.arc_source],
            np.array(d.elements, dtype=object)[d.arc_element]))}
        self.capacity_row_kt = {
            fam: np.array([(arc_of[sid, e], d.periods.index(t)) for sid, e, t in
                           zip(meta[fam]["rule"], meta[fam]["element"], meta[fam]["period"])],
                          dtype=np.int64).reshape(-1, 2)
            for fam in ("delivery_capacity", "contract_capacity")}
        # contract_delivery rows, one per contract delivery column: their arcs
        self.delivery_row_arc = self.q_arc[d.is_contract[self.q_arc]]
        self.source_of = {fam: meta[fam]["rule"].to_numpy(dtype=object)   # source ids
                          for fam in ("committed", "min_take")}
        self.n_col, self.n_row = lp.A.shape[1], lp.A.shape[0]
        self.solves = 0

    def _own(self, i: int, view_ix: ModelIndex) -> tuple[dict[str, np.ndarray],
                                                          dict[str, np.ndarray]]:
        """Which rows (per family) and switchable columns (per variable) belong to
        policy i: its own rule rows, and the rows and columns of the arcs it may use."""
        policy = self.policies[i]
        mine = list(self.labels[i])
        rows = {fam: pd.Series(self.rule_label[fam], dtype=object).isin(mine).to_numpy()
                for fam in RULE_FAMILIES}
        # the union builds the build_stock rows once (every element and slot): they are
        # every such policy's rows
        rows["build_stock"] = np.full(len(self.rule_label["build_stock"]),
                                      bool(policy.no_stock_build))
        excluded = policy.excluded_arcs if len(policy.excluded_arcs) else \
            np.zeros(self.data.n_arcs, bool)
        rows["contract_delivery"] = ~excluded[self.delivery_row_arc]
        banned = set(self.data.sources["id"].to_numpy()[self.data.arc_source[excluded]])
        for fam, src in self.source_of.items():
            rows[fam] = ~pd.Series(src, dtype=object).isin(banned).to_numpy()
        projects = self.data.projects
        p_excluded = policy.excluded_projects if len(policy.excluded_projects) else \
            np.zeros(0 if projects is None else projects.n, bool)
        for fam, kt in self.capacity_row_kt.items():
            rows[fam] = ~excluded[kt[:, 0]] & (view_ix.potential[kt[:, 0], kt[:, 1]] > 0) \
                if len(kt) else np.zeros(0, bool)
        rows["project_size"] = ~pd.Series(self.union.row_meta["project_size"]["rule"],
                                          dtype=object).isin(
            [projects.ids[j] for j in np.flatnonzero(p_excluded)]).to_numpy() \
            if projects is not None else np.zeros(0, bool)
        rows["reduction"] = pd.Series(self.union.row_meta["reduction"]["element"],
                                      dtype=object).isin(
            [self.data.elements[e] for e in view_ix.r_elements]).to_numpy()
        cols = {"x": ~excluded[self.x_arc], "q": ~excluded[self.q_arc],
                "z": np.isin(self.z_element, view_ix.z_elements),
                "deficit": pd.Series(self.deficit_label, dtype=object).isin(mine).to_numpy(),
                "y": ~p_excluded[self.y_project] if len(self.y_project) else np.zeros(0, bool),
                "r": np.isin(self.r_element, view_ix.r_elements)}
        return rows, cols

    def solve(self, i: int) -> tuple[BuiltModel, SolveResult]:
        """Switch to policy i, re-solve, and return its model's view and answer."""
        policy = self.policies[i]
        view_ix = model_index(self.data, policy)   # the union's columns minus the excluded
        own, keep = self._own(i, view_ix)
        # floors with nothing under them: the union build found them, by rule label
        mine = self.labels[i]
        infeasible = [m for m in self.union.trivially_infeasible
                      if any(m.startswith(label + ":") for label in mine)] + policy.infeasible
        if infeasible:
            result = SolveResult("infeasible", "; ".join(infeasible),
                                 solver_version=self.hm.version)
        else:
            # other policies' rows are freed (-inf..inf); rows of excluded arcs need no
            # change: their columns are fixed at 0
            rows = np.concatenate([self.rule_rows[f] for f in RULE_FAMILIES])
            on = np.concatenate([own[f] for f in RULE_FAMILIES])
            self.hm.set_bounds("row", rows, np.where(on, self.row_lower[rows], -np.inf),
                               np.where(on, self.row_upper[rows], np.inf))
            for name, cols in self.cols.items():
                self.hm.set_bounds("col", cols, np.zeros(len(cols)),
                                   np.where(keep[name], self.col_upper[name], 0.0))
            result = self.hm.solve()
            # the hand-off happened once, for the first policy solved
            result.handoff_seconds = self.hm.handoff_seconds if self.solves == 0 else 0.0
            self.solves += 1
        meta = {fam: (m[own[fam]].reset_index(drop=True) if fam in own else m)
                for fam, m in self.union.row_meta.items()}
        if policy.no_stock_build:
            meta["build_stock"] = meta["build_stock"].assign(rule=policy.no_stock_build[0])
        if not infeasible:   # (nothing was solved for a trivially infeasible policy)
            result.n_variables = self.n_col - sum(int((~k).sum()) for k in keep.values())
            result.n_constraints = self.n_row - sum(int((~m).sum()) for m in own.values())
        if result.has_solution:
            for store in (result.values, result.reduced_costs):
                for name, k in keep.items():
                    store[name] = store[name][k]
            result.duals = {fam: (dual[own[fam]] if fam in own else dual)
                            for fam, dual in result.duals.items()}
        # the build is paid once: charge it to the first policy
        build_s = self.build_seconds if i == 0 else 0.0
        floors = self.union.floors
        mask = own["min_stock_days"]
        view_floors = StockFloorRows([r for r, k in zip(floors.rule, mask) if k],
                                     [u for u, k in zip(floors.unit_label, mask) if k],
                                     [u for u, k in zip(floors.unit, mask) if k],
                                     floors.slot[mask], floors.target[mask],
                                     floors.deficit_cost[mask])
        view = BuiltModel(None, self.data, policy, view_ix.x_index, view_ix.q_index, meta,
                          infeasible, build_s, index=view_ix, floors=view_floors)
        return view, result


def solve_policies(d: ProblemData, policies: list[ResolvedPolicy],
                   options: SolveOptions | None = None
                   ) -> list[tuple[BuiltModel, SolveResult]]:
    """Every policy's (model view, answer), on one union model, in the given order."""
    switcher = PolicySwitcher(d, policies, options)
    return [switcher.solve(i) for i in range(len(policies))]
