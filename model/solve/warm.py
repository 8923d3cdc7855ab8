"""Warm sessions: one model per element block kept in HiGHS across variants of an instance.

A study that solves one instance many times, each time with some inputs changed
(model.studies.robustness: the tornado, the switch points, the draws), hands
every variant to a :class:`WarmSession` one at a time, as it decides them (a
bisection knows its next point only after the last one):

* each independent element block (model.solve.decompose.element_blocks) keeps
  its own :class:`~model.solve.solve.HighsModel`;
* a variant whose block LP has the kept model's shape and sparsity (a price, a
  penalty, a cost, a capacity, a probability within the same information tree)
  is passed to HiGHS as changes of costs, bounds and coefficients
  (``HighsModel.load_changes``) and re-solved from the last basis: a *warm*
  re-solve;
* any other variant (a build time, a probability that changes the tree or the
  scenarios a block merges, other element blocks) is built and handed over afresh:
  a *cold* solve, and its model is kept for the next variant;
* a MIP (all-or-nothing projects) is solved as its LP relaxation, warm: when the
  relaxation's optimum is integral at every integer column (within HiGHS's
  ``mip_feasibility_tolerance``, 1e-6) it is the MIP's optimum (a relaxation's
  optimum that the MIP admits is optimal for the MIP); otherwise the MIP itself
  is solved by branch and bound on a second kept model.

With ``warm=False`` every variant is built and solved cold exactly as ``solve``
solves a block (the MIP by branch and bound): for checking and benchmarking
(tests/test_robustness.py compares the two). :class:`SessionStats` counts both
kinds and their HiGHS seconds (benchmarks/README.md, issue 25).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..formulation.built import BuiltModel
from ..formulation.policies import resolve_policy
from ..input.data import ProblemData
from ..input.schema import Instance, Policy
from .decompose import _merge, element_blocks, reduce_data, subset_data
from .expand import expand
from .solve import HighsModel, SolveOptions, SolveResult, solve_model

INTEGRAL_TOLERANCE = 1e-6     # HiGHS's default mip_feasibility_tolerance


@dataclass
class SessionStats:
    """What a session did, block solve by block solve."""

    warm: int = 0                  # re-solves from a kept model's basis
    cold: int = 0                  # solves on a model built and handed over afresh
    branch_and_bound: int = 0      # warm: MIPs whose relaxation was fractional
    build_seconds: float = 0.0     # variant data -> block LPs (reduce, build)
    warm_seconds: float = 0.0      # HiGHS: changes handed over + re-solve
    cold_seconds: float = 0.0      # HiGHS: model handed over + solve (a MIP's B&B too)
    branch_and_bound_seconds: float = 0.0
    warm_times: list[float] = field(default_factory=list, repr=False)
    cold_times: list[float] = field(default_factory=list, repr=False)

    def add(self, other: "SessionStats") -> None:
        """Add another session's counts and times to these."""
        self.warm += other.warm
        self.cold += other.cold
        self.branch_and_bound += other.branch_and_bound
        self.branch_and_bound_seconds += other.branch_and_bound_seconds
        self.build_seconds += other.build_seconds
        self.warm_seconds += other.warm_seconds
        self.cold_seconds += other.cold_seconds
        self.warm_times += other.warm_times
        self.cold_times += other.cold_times


class _Block:
    """The models kept for one element block: its LP (relaxation) and, once needed,
    its MIP."""

    def __init__(self) -> None:
        self.lp: HighsModel | None = None
        self.mip: HighsModel | None = None


class WarmSession:
    """Solve variants of one instance under one policy, one at a time, each from the
    last one's basis where the model's shape allows (see the module docstring)."""

    def __init__(self, policy: str, options: SolveOptions | None = None, warm: bool = True,
                 extra: Policy | None = None) -> None:
        self.policy = policy
        self.options = options or SolveOptions()
        self.warm = warm
        self.extra = extra
        self.blocks: list[list[int]] | None = None
        self.kept: list[_Block] = []
        self.stats = SessionStats()

    def solve(self, inst: Instance, data: ProblemData) -> tuple[BuiltModel, SolveResult]:
        """The variant (`inst`, its `data`) solved under the session's policy: the model
        and answer merged over the blocks in the monolithic model's indexing (values
        only: no duals, as `sweep --param`). lambda = 1 (the Pyomo tie-break) is not
        handled here (a ValueError): solve it with model.api.solve_instance."""
        if data.risk_lambda >= 1.0:
            raise ValueError("a warm session solves lambda < 1 only (lambda = 1 needs the "
                             "Pyomo model's tie-break phase)")
        from ..formulation.matrix import build_matrix

        t0 = time.perf_counter()
        resolved = resolve_policy(inst, data, self.policy, self.extra)
        blocks = element_blocks(data, resolved)
        if blocks != self.blocks:            # other blocks: nothing kept fits
            self.blocks, self.kept = blocks, [_Block() for _ in blocks]
        outcomes, arc_maps = [], []
        for b, kept in zip(blocks, self.kept):
            sub, arcs = subset_data(data, b)
            merged, red = reduce_data(sub)
            t1 = time.perf_counter()
            built = build_matrix(merged, resolve_policy(inst, merged, self.policy, self.extra))
            self.stats.build_seconds += time.perf_counter() - t1
            result = self._solve_block(kept, built)
            outcomes.append(expand(sub, built, result, red, rows=False))
            arc_maps.append(arcs)
        return _merge(data, resolved, blocks, arc_maps, outcomes, time.perf_counter() - t0,
                      rows=False)

    def _solve_block(self, kept: _Block, built: BuiltModel) -> SolveResult:
        if built.trivially_infeasible:
            return SolveResult("infeasible", "; ".join(built.trivially_infeasible))
        if not self.warm:
            t = time.perf_counter()
            result = solve_model(built, self.options)
            self._count(False, time.perf_counter() - t)
            return result
        t = time.perf_counter()
        reused = kept.lp is not None and kept.lp.load_changes(built)
        if not reused:
            kept.lp = HighsModel(built, self.options)
            kept.lp.relax()
        result = kept.lp.solve()
        self._count(reused, time.perf_counter() - t)
        integer = kept.lp.relaxed_cols
        if not len(integer) or not result.optimal:
            return result
        values = kept.lp.col_values()[integer]
        if np.all(np.abs(values - np.round(values)) <= INTEGRAL_TOLERANCE):
            result.mip, result.mip_gap, result.bound = True, 0.0, result.objective
            return result
        t = time.perf_counter()        # fractional: branch and bound on the kept MIP
        if kept.mip is None or not kept.mip.load_changes(built):
            kept.mip = HighsModel(built, self.options)
        result = kept.mip.solve()
        self.stats.branch_and_bound += 1
        self.stats.branch_and_bound_seconds += time.perf_counter() - t
        return result

    def _count(self, warm: bool, seconds: float) -> None:
        if warm:
            self.stats.warm += 1
            self.stats.warm_seconds += seconds
            self.stats.warm_times.append(seconds)
        else:
            self.stats.cold += 1
            self.stats.cold_seconds += seconds
            self.stats.cold_times.append(seconds)

