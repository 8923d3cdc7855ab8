r"""The project's own L-shaped method: element blocks, bundles of scenarios, HiGHS matrices.

``sourcing solve --engine mpisppy --algorithm blocks`` (see :mod:`model.distributed`).
mpi-sppy's L-shaped method builds one Pyomo model per scenario and pays about
0.03 s of Pyomo bookkeeping per subproblem solve; on the full bench model
(1,092 contracts in the first stage) it does not finish. This path keeps the
method and changes what a subproblem is:

* **element blocks first** (:func:`model.solve.decompose.element_blocks`): without
  group rules, a budget or a CVaR term, every block of elements is its own
  two-stage problem, so each block runs its own L-shaped loop with only its
  own contracts in the master (64 on average instead of 1,092). With rules
  that couple the elements (or lambda > 0) the block is every element.
* **bundles of scenarios**: a subproblem is the extensive form of a bundle
  of scenarios of one block (:func:`model.input.data.restrict_scenarios`, scenarios
  identical in the block merged as the default engine does), built by the
  vectorised builder (:mod:`model.formulation.matrix`) and held in one warm-started HiGHS
  instance for the whole loop. The ranks hold disjoint sets of bundles.
* **cuts from reduced costs**: the bundle's contracts (and, with CVaR,
  :math:`\eta`) are fixed by their bounds at the master's :math:`\hat x`; the
  bundle's value :math:`F_B(\hat x)` and the reduced costs :math:`g_B` of those
  columns give the cut :math:`\theta_B \ge F_B(\hat x) + g_B^\top (x - \hat x)`
  (LP duality: the dual solution stays feasible for every x). One cut per
  bundle per iteration (multi-cut over bundles).

:math:`F_B(x)` is the bundle's objective with its probabilities renormalised
(contract cost once, then the bundle's expected second stage), so the block's
objective is :math:`\sum_B P_B F_B(x)`. Iteration 0 solves every bundle with its
contracts free: :math:`\min_x F_B` bounds :math:`\theta_B` from below, and the
bundles' plans, averaged with weights :math:`P_B`, are the first candidate
(the rows that hold contracts only are in every bundle and in the master, so
the average meets them). The master (rank 0) is the block's contracts, the
first-stage-only rows and one :math:`\theta_B` per bundle. A block stops when
its best upper bound and the master's bound are within the requested gap.

The lower bound reported is the sum of the blocks' master bounds; the plan is
every block's best contracts. :mod:`model.distributed` then evaluates the plan
exactly (every scenario's second stage), as for the other algorithms.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp


@dataclass
class _Bundle:
    """One bundle of one block, held by this rank."""

    index: int                  # position among the block's bundles
    weight: float               # P_B: the bundle's probability
    hm: Any                     # model.solve.solve.HighsModel
    cols: np.ndarray            # HiGHS columns of the first stage (x, then eta)
    lower: np.ndarray           # their bounds in the bundle LP (to free them again)
    upper: np.ndarray


@dataclass
class BlockReport:
    """What one block's loop did (for the run's summary)."""

    elements: list[str]
    n_first_stage: int
    iterations: int
    lower: float
    upper: float
    seconds: float
    cuts: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def bundles_of(W: int, size: int, bundle_size: int | None) -> list[np.ndarray]:
    """Consecutive bundles of scenarios: `bundle_size` each, or (None) as many bundles as
    give every rank 4 (more cuts per iteration, fewer iterations), at least one scenario."""
    if bundle_size is None:
        n = min(W, 4 * size)
    else:
        n = max(1, -(-W // max(1, bundle_size)))
    n = max(n, min(W, size))      # every rank holds a bundle when it can
    return [a for a in np.array_split(np.arange(W), n) if len(a)]


def _first_stage(built: Any) -> tuple[np.ndarray, np.ndarray]:
    """HiGHS columns of the first stage (x at the root, then eta) and the (arc, period)
    key of each x (the root's contracts only: the engine solves two-stage models)."""
    lp = built.matrix
    a, b = lp.col_blocks["x"]
    cols = [np.arange(a, b)]
    if "eta" in lp.col_blocks:
        cols.append(np.arange(*lp.col_blocks["eta"]))
    return np.concatenate(cols), built.index.x_index[:, :2]


def _first_stage_rows(lp: Any, cols: np.ndarray) -> tuple[Any, np.ndarray, np.ndarray]:
    """The rows that hold first-stage columns only (committed volumes, plan caps): they are
    the same in every bundle and in the extensive form, and go to the master."""
    A = lp.A.tocsr()
    inside = np.zeros(A.shape[1], dtype=bool)
    inside[cols] = True
    nnz_out = np.add.reduceat((~inside[A.indices]).astype(np.int64), A.indptr[:-1]) \
        if A.nnz else np.zeros(A.shape[0], np.int64)
    has = np.diff(A.indptr) > 0
    nnz_out = np.where(has, nnz_out, 1)
    rows = np.flatnonzero(nnz_out == 0)
    sub = A[rows][:, cols]
    return sub, lp.row_lower[rows], lp.row_upper[rows]


class _Master:
    """min sum_B P_B theta_B over the block's first stage, cuts added as rows (rank 0)."""

    def __init__(self, lower: np.ndarray, upper: np.ndarray, rows: Any, row_lower: np.ndarray,
                 row_upper: np.ndarray, weights: np.ndarray, theta_lower: np.ndarray,
                 n_eta: int = 0) -> None:
        import highspy

        from .solve import _quiet_stdout

        self.n = len(lower)
        self.nb = len(weights)
        # theta and eta in units of a typical bundle value: cut coefficients near 1,
        # not 1e7 (and no eta coefficient below HiGHS's small_matrix_value)
        self.scale = float(max(1.0, np.abs(theta_lower).mean())) if len(theta_lower) else 1.0
        self.col_scale = np.ones(self.n)
        self.col_scale[self.n - n_eta:] = self.scale
        theta_lower = theta_lower / self.scale
        with _quiet_stdout():
            h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("small_matrix_value", 1e-12)
        inf = highspy.kHighsInf
        lo = np.concatenate([lower / self.col_scale, theta_lower])
        up = np.concatenate([upper / self.col_scale, np.full(self.nb, inf)])
        lo = np.where(np.isfinite(lo), lo, -inf)
        up = np.where(np.isfinite(up), up, inf)
        cost = np.concatenate([np.zeros(self.n), weights])
        h.addVars(len(lo), lo, up)
        h.changeColsCost(len(cost), np.arange(len(cost), dtype=np.int32), cost)
        if rows.shape[0]:
            csr = sp.csr_matrix(rows @ sp.diags(self.col_scale))
            h.addRows(csr.shape[0], np.where(np.isfinite(row_lower), row_lower, -inf),
                      np.where(np.isfinite(row_upper), row_upper, inf), csr.nnz,
                      csr.indptr.astype(np.int32), csr.indices.astype(np.int32),
                      csr.data.astype(float))
        self.h = h
        self.n_cuts = 0

    def add_cuts(self, cuts: list[tuple[int, float, np.ndarray, np.ndarray]]) -> None:
        """theta_B - g x >= v - g xhat, for each (B, v, g, xhat)."""
        import highspy

        if not cuts:
            return
        starts, index, value, lower = [], [], [], []
        nnz = 0
        for b, v, g, xhat in cuts:
            nz = np.flatnonzero(g)
            starts.append(nnz)
            index.append(np.concatenate([nz, [self.n + b]]))
            value.append(np.concatenate([-g[nz] * self.col_scale[nz] / self.scale, [1.0]]))
            lower.append((v - float(g @ xhat)) / self.scale)
            nnz += len(nz) + 1
        self.h.addRows(len(cuts), np.array(lower), np.full(len(cuts), highspy.kHighsInf), nnz,
                       np.array(starts, dtype=np.int32),
                       np.concatenate(index).astype(np.int32), np.concatenate(value))
        self.n_cuts += len(cuts)

    def solve(self) -> tuple[float, np.ndarray, np.ndarray]:
        import highspy

        h = self.h
        h.run()
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            h.clearSolver()          # the warm start went astray numerically: start cold
            h.run()
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            raise RuntimeError(f"the L-shaped master did not solve: "
                               f"{h.modelStatusToString(h.getModelStatus())}")
        col = np.asarray(h.getSolution().col_value, dtype=float)
        return (float(h.getInfo().objective_function_value) * self.scale,
                col[:self.n] * self.col_scale, col[self.n:] * self.scale)


def _solve_bundle(bd: _Bundle, xhat: np.ndarray | None) -> tuple[float, np.ndarray, np.ndarray]:
    """The bundle's value at xhat (None: contracts free), its first stage and reduced costs."""
    if xhat is None:
        bd.hm.set_bounds("col", bd.cols, bd.lower, bd.upper)
    else:
        v = np.clip(xhat, bd.lower, bd.upper)
        bd.hm.set_bounds("col", bd.cols, v, v)
    h = bd.hm.highs
    bd.hm._run_interruptibly()
    import highspy

    status = h.getModelStatus()
    if status != highspy.HighsModelStatus.kOptimal:
        raise NoCompleteRecourse(h.modelStatusToString(status))
    sol = h.getSolution()
    x = np.asarray(sol.col_value, dtype=float)[bd.cols]
    g = np.asarray(sol.col_dual, dtype=float)[bd.cols]
    return float(h.getInfo().objective_function_value), x, g


def settle(comm: Any) -> None:
    """Wait for every rank without spinning: Open MPI's blocking calls poll at 100 % CPU,
    which takes a core from the ranks still working when ranks outnumber cores."""
    if comm.Get_size() == 1:
        return
    request = comm.Ibarrier()
    while not request.Test():
        time.sleep(0.0005)


class NoCompleteRecourse(RuntimeError):
    """A bundle without a feasible second stage (take-or-pay minimums can do that)."""


def block_lshaped(comm: Any, loaded: Any, data: Any, resolved: Any, policy: str, gap: float,
                  max_iterations: int, bundle_size: int | None
                  ) -> tuple[float, np.ndarray, int, dict[str, Any]]:
    """Every rank calls this. Returns (lower bound, contracts (K, T) on rank 0, the most
    iterations of any block, extras for the summary)."""
    from ..input.data import restrict_scenarios
    from .decompose import element_blocks, reduce_data, subset_data
    from ..formulation.matrix import build_matrix
    from ..formulation.policies import resolve_policy
    from .solve import HighsModel, SolveOptions

    rank, size = comm.Get_rank(), comm.Get_size()
    W = len(data.scenarios)
    groups = bundles_of(W, size, bundle_size)
    weight = np.array([float(data.probability[g].sum()) for g in groups])
    mine = list(range(rank, len(groups), size))
    blocks = element_blocks(data, resolved)
    K, T = data.capacity_t.shape
    contracted = np.zeros((K, T))
    reports: list[BlockReport] = []
    lower_total = 0.0
    worst_iterations = 0
    infeasible = None
    timing = {"build": 0.0, "subproblems": 0.0, "waiting": 0.0, "master": 0.0}
    for elements in blocks:
        t0 = time.perf_counter()
        sub, arcs = (data, np.arange(K)) if len(elements) == len(data.elements) \
            else subset_data(data, elements)
        t_build = time.perf_counter()
        held: list[_Bundle] = []
        keys = None
        for b in mine:
            g = groups[b]
            one = restrict_scenarios(sub, g, probability=data.probability[g] / weight[b])
            merged, _ = reduce_data(one)
            built = build_matrix(merged, resolve_policy(loaded.instance, merged, policy))
            if built.trivially_infeasible:      # reported after iteration 0, on every rank
                infeasible = "; ".join(built.trivially_infeasible)
                continue
            cols, key = _first_stage(built)
            if keys is None:
                keys = key
                rows = _first_stage_rows(built.matrix, cols)
                lo, up = built.matrix.col_lower[cols].copy(), built.matrix.col_upper[cols].copy()
            elif not np.array_equal(keys, key):     # pragma: no cover - a builder change
                raise RuntimeError("bundles of one block disagree on their contracts")
            hm = HighsModel(built, SolveOptions(threads=1))
            del built
            held.append(_Bundle(b, float(weight[b]), hm, cols,
                                hm.col_lower[cols].copy(), hm.col_upper[cols].copy()))
        timing["build"] += time.perf_counter() - t_build
        # iteration 0: contracts free in every bundle (None: this rank failed)
        try:
            local = [(bd.index, *_solve_bundle(bd, None)) for bd in held]
        except NoCompleteRecourse as exc:
            local, infeasible = None, str(exc)
        if infeasible is not None:
            local = None
        settle(comm)
        every = comm.gather(local, root=0)
        stop = comm.bcast(any(part is None for part in every) if rank == 0 else None, root=0)
        if stop:
            raise NoCompleteRecourse(infeasible or "a bundle has no feasible plan")
        master = None
        if rank == 0:
            found = {b: (v, x) for part in every for b, v, x, _ in part}
            floor = np.array([found[b][0] for b in range(len(groups))])
            xhat = sum(weight[b] * found[b][1] for b in range(len(groups)))
            master = _Master(lo, up, rows[0], rows[1], rows[2], weight, floor,
                             n_eta=len(lo) - len(keys))
            best_upper, best_x = np.inf, xhat
            lower = float(weight @ floor)
        it = 0
        while True:
            it += 1
            settle(comm)                      # the others wait for the master, idle
            xhat = comm.bcast(xhat if rank == 0 else None, root=0)
            t1 = time.perf_counter()
            try:
                local = [(bd.index, *_solve_bundle(bd, xhat)) for bd in held]
            except NoCompleteRecourse as exc:        # no complete recourse at xhat
                local, infeasible = None, str(exc)
            t2 = time.perf_counter()
            timing["subproblems"] += t2 - t1
            settle(comm)
            every = comm.gather(local, root=0)
            timing["waiting"] += time.perf_counter() - t2
            t3 = time.perf_counter()
            done = None
            if rank == 0:
                if any(part is None for part in every):
                    done = "infeasible"
                else:
                    got = [item for part in every for item in part]
                    upper = float(sum(weight[b] * v for b, v, _, _ in got))
                    if upper < best_upper:
                        best_upper, best_x = upper, xhat.copy()
                    cuts = [(b, v, g, xhat) for b, v, _, g in got]
                    master.add_cuts(cuts)
                    lower, xhat, _ = master.solve()
                    rel = (best_upper - lower) / max(1.0, abs(best_upper))
                    if rel <= gap:
                        done = "optimal"
                    elif it >= max_iterations:
                        done = "iteration_limit"
            timing["master"] += time.perf_counter() - t3
            settle(comm)
            done = comm.bcast(done, root=0)
            if done is not None:
                break
        if done == "infeasible":
            raise NoCompleteRecourse(infeasible or "a bundle has no feasible second stage")
        worst_iterations = max(worst_iterations, it)
        del held
        if rank == 0:
            lower_total += lower
            contracted[arcs[keys[:, 0]], keys[:, 1]] = best_x[:len(keys)]
            reports.append(BlockReport([data.elements[e] for e in elements], len(lo), it, lower,
                                       best_upper, time.perf_counter() - t0, master.n_cuts,
                                       {"stopped": done}))
    extra: dict[str, Any] = {"blocks": len(blocks), "bundles": len(groups),
                             "scenarios_per_bundle": [int(len(g)) for g in groups][:1] +
                             ([int(len(groups[-1]))] if len(groups) > 1 else [])}
    every_timing = comm.gather(timing, root=0)
    if rank == 0:
        extra["seconds_per_rank"] = {k: [round(t[k], 2) for t in every_timing] for k in timing}
        extra["block_iterations"] = [r.iterations for r in reports]
        extra["block_seconds"] = [round(r.seconds, 3) for r in reports]
        extra["cuts"] = int(sum(r.cuts for r in reports))
        extra["largest_master"] = max(r.n_first_stage for r in reports)
        if any(r.extra["stopped"] != "optimal" for r in reports):
            extra["blocks_at_iteration_limit"] = [", ".join(r.elements) for r in reports
                                                  if r.extra["stopped"] != "optimal"]
    return lower_total, contracted if rank == 0 else None, worst_iterations, extra
