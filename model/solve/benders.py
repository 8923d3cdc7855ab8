r"""Element blocks tied only by projects: Benders decomposition over the builds.

A project adds capacity to (or avoids demand of) several elements, so its size
columns :math:`y` (one per project, decision period and node) appear in the
rows of several element blocks: ``delivery_capacity``, ``contract_capacity``
and ``reduction``, always as a right-hand side (more :math:`y`, more room).
Everything else of a block is its own. With :math:`y` fixed the blocks are
independent LPs again; write block :math:`b`'s optimum as :math:`Q_b(y)`. The
problem is

.. math::

   \min\ c^\top y + \textstyle\sum_b Q_b(y) \quad\text{s.t.}\quad
   \text{project\_size and build rows on } y,\quad 0 \le y \le \bar y
   \ (y \in \{0, 1\} \text{ for all-or-nothing projects}).

Each :math:`Q_b` is convex and piecewise linear in :math:`y` (an LP's optimum
as a function of its right-hand side). Solving block :math:`b` with its
:math:`y` columns fixed at :math:`\hat y` (their bounds set to the value) gives
:math:`Q_b(\hat y)` and, as the reduced costs of the fixed columns, a
subgradient :math:`g_b` (the blocks carry no cost on :math:`y`): for every
:math:`y`, :math:`Q_b(y) \ge Q_b(\hat y) + g_b^\top (y - \hat y)` (the
optimal dual stays feasible when the bounds move, and its objective is linear
in them).

**Master** (one highspy model): :math:`y`, one :math:`\theta_b` per block, the
``project_size`` and ``build`` rows, the projects' costs :math:`c`, and the
cuts :math:`\theta_b \ge Q_b(\hat y^k) + g_b^{k\top}(y - \hat y^k)` of every
point evaluated so far (one per block and point: multi-cut). Its optimum is a
lower bound; :math:`c^\top\hat y + \sum_b Q_b(\hat y)` of an evaluated plan is
an upper bound.

**Loop.** Evaluate the blocks at a point (warm: only the bounds of the fixed
columns change), add their cuts, solve the master, repeat until the bounds
agree to :data:`GAP_TOL` relative (LP) or to the MIP gap (``mip_rel_gap``,
HiGHS's 1e-4 by default). The point evaluated is the master's optimum moved
toward a running average of them (in-out stabilisation) until the gap is small.
With all-or-nothing projects the master is first solved as an LP until its gap
is within the MIP gap (cuts are valid for both), then as a MIP
(HiGHS branch and bound on the master only: a few hundred columns), each plan
it proposes evaluated exactly by the blocks. The bound is the master MIP's;
the plan the best evaluated one. Stopped by ``--time-limit`` the run keeps that
plan (status ``time_limit``, ``plan_at_limit``) and its bound.

**Answer.** The blocks solved at the final plan give every value, row dual and
reduced cost of their own rows (the marginal values with the builds held at
the plan); ``project_size`` and ``build`` duals come from the master (for a
MIP, its LP with the integer builds fixed).

Within a block, scenarios merge only where the merge is exact whatever the
builds (model.solve.decompose.reduce_data with ``fixed_builds``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from typing import Any

import highspy
import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..formulation.built import BuiltModel
from ..formulation.indexing import ProjectIndex, project_index
from ..formulation.investment import RowTerms, define_build_rows, define_project_size_rows
from ..formulation.matrix import build_matrix, project_costs
from ..formulation.policies import ResolvedPolicy, resolve_policy
from ..input.data import ProblemData
from ..input.schema import Instance, Policy
from ..input.tree import Reduction
from .decompose import PARALLEL_MIN_DELIVERIES, _merge, reduce_data, subset_data
from .expand import EXPANDED_COLUMNS, expand, node_labels
from .solve import HighsModel, SolveOptions, SolveResult, _quiet_stdout, highs_version

GAP_TOL = 1e-9          # LP: relative gap between the master's bound and the best plan
MIP_GAP = 1e-4          # MIP: HiGHS's default mip_rel_gap, unless the options set one
MAX_ROUNDS = 5000       # block evaluations; far above what the bench needs (hundreds)
IN_OUT = 0.3            # weight of the master's optimum in the point evaluated
IN_OUT_UNTIL = 1e-6     # gap below which the master's optimum itself is evaluated
LP_PHASE = 1.0          # the MIP's master turns whole when its LP is within the MIP gap
STALL_GAP = 1e-7        # a loop that cannot move its bounds is optimal within this
MASTER_ROWS = ("project_size", "build")
_DONE = (highspy.HighsModelStatus.kOptimal, highspy.HighsModelStatus.kInfeasible,
         highspy.HighsModelStatus.kUnboundedOrInfeasible, highspy.HighsModelStatus.kTimeLimit,
         highspy.HighsModelStatus.kInterrupt)
log = logging.getLogger(__name__)


@dataclass
class _Block:
    """One element block with its builds fixed: the evaluation of Q_b."""

    sub: ProblemData          # the block's data, every scenario
    red: Reduction            # scenario classes merged in `built`
    built: BuiltModel         # the block's LP (merged scenarios), y fixed, no project rows
    hm: HighsModel | None     # None when the block is infeasible before solving
    ycols: np.ndarray         # the block's y columns in its LP
    master: np.ndarray        # the master's column of each


def _prepare(inst: Instance, sub: ProblemData, policy_name: str, extra: Policy | None,
             options: SolveOptions, full_ids: list[str], full_ycol_of: np.ndarray
             ) -> _Block:
    """Build a block's LP with its y columns free of cost and the project rows
    (``project_size``, ``build``: the master's) taken out."""
    merged, red = reduce_data(sub, fixed_builds=True)
    built = build_matrix(merged, resolve_policy(inst, merged, policy_name, extra))
    lp = built.matrix
    a0, a1 = lp.col_blocks["y"]
    lp.cost[a0:a1] = 0.0
    lp.integrality = None        # the builds are fixed: the block is an LP
    for fam in MASTER_ROWS:
        r0, r1 = lp.row_blocks.pop(fam)
        lp.row_lower[r0:r1], lp.row_upper[r0:r1] = -np.inf, np.inf
        built.row_meta.pop(fam, None)
    ix = built.index
    ycols = np.arange(a0, a1)
    master = np.zeros(a1 - a0, dtype=np.int64)
    if a1 > a0:
        # decide nodes are never merged (fixed_builds): a block column is one master
        # column, found through any scenario of its node
        ids = np.array([full_ids.index(i) for i in merged.projects.ids], dtype=np.int64)
        p, tau = ix.y_index[:, 0], ix.y_index[:, 1]
        first_class = np.argmax(ix.ycol_of[p, tau, :] == np.arange(a1 - a0)[:, None], axis=1)
        w = red.representative[first_class]
        master = full_ycol_of[ids[p], tau, w]
    hm = None if built.trivially_infeasible else HighsModel(built, options)
    return _Block(sub, red, built, hm, ycols, master)


class _BendersGroup:
    """Some of the blocks, held where their HiGHS models live (this process or a
    worker): built once, evaluated at each point, solved at the plan at the end."""

    def __init__(self, jobs: list[tuple[Any, ...]]) -> None:
        self.blocks: dict[int, _Block] = {}
        for i, inst, sub, policy_name, extra, options, ids, ycol_of in jobs:
            self.blocks[i] = _prepare(inst, sub, policy_name, extra, options, ids, ycol_of)

    def start(self) -> list[tuple[int, list[str], np.ndarray]]:
        """Each block's messages if infeasible before solving, and its master columns."""
        return [(i, list(b.built.trivially_infeasible), b.master)
                for i, b in self.blocks.items()]

    def _fix(self, b: _Block, y: np.ndarray) -> None:
        v = y[b.master]
        b.hm.set_bounds("col", b.ycols, v, v)

    def evaluate(self, y: np.ndarray, which: list[int] | None = None
                 ) -> list[tuple[int, SolveResult | None, float, np.ndarray, float, bool]]:
        """Solve the blocks (`which`, default all) with y fixed (warm): (block, the
        result if it failed, Q_b, the subgradient on its master columns, HiGHS
        seconds, False); for a block infeasible with these builds, (block, None,
        F_b, its subgradient, seconds, True) of the distance to feasibility (see
        :meth:`_shortfall`)."""
        out = []
        for i, b in self.blocks.items():
            if which is not None and i not in which:
                continue
            self._fix(b, y)
            res = b.hm.solve(read=False)
            if not res.optimal and res.status != "infeasible":
                log.debug("block %d: warm solve %s (%s), again from scratch", i,
                          res.status, res.message)
                b.hm.highs.clearSolver()     # a warm start can stall where a cold one does not
                res = b.hm.solve(read=False)
            if res.status == "infeasible" and len(b.ycols):
                far, slope, seconds = self._shortfall(b, y)
                if far is not None:
                    out.append((i, None, far, slope, res.solve_seconds + seconds, True))
                    continue
            if not res.optimal:
                out.append((i, res, 0.0, np.zeros(0), res.solve_seconds, False))
                continue
            g = np.asarray(b.hm.highs.getSolution().col_dual, dtype=float)[b.ycols]
            out.append((i, None, float(res.objective), g, res.solve_seconds, False))
        return out

    @staticmethod
    def _shortfall(b: _Block, y: np.ndarray) -> tuple[float | None, np.ndarray, float]:
        """A block infeasible with builds `y` (a floor only builds can meet): the least
        total size to add, F_b(y) = min 1'(z - y) over builds z >= y that make it
        feasible, and a subgradient of F_b (the reduced costs of z at its lower
        bound, less one). Builds only add room, so the block is feasible exactly
        where F_b = 0, and F_b(y') >= F_b(y) + slope'(y' - y) cuts off y.
        (None, ...) when no builds make it feasible."""
        hm = b.hm
        at = y[b.master]
        cost = np.zeros(hm.n_col)
        cost[b.ycols] = 1.0
        saved = np.array(hm.cost, dtype=float)
        hm.set_bounds("col", b.ycols, at, np.asarray(hm.col_upper)[b.ycols])
        hm.set_costs(cost)
        try:
            res = hm.solve(read=False)
            if not res.optimal:
                return None, np.zeros(0), res.solve_seconds
            d = np.asarray(hm.highs.getSolution().col_dual, dtype=float)[b.ycols]
            return float(res.objective) - float(at.sum()), d - 1.0, res.solve_seconds
        finally:
            hm.set_costs(saved)
            hm.set_bounds("col", b.ycols, at, at)

    def finish(self, y: np.ndarray | None, gbar: dict[int, np.ndarray] | None = None,
               results: dict[int, SolveResult] | None = None
               ) -> list[tuple[int, BuiltModel, SolveResult, np.ndarray]]:
        """Each block's answer per scenario at plan `y`, without its y columns (the
        master's), and the subgradient its duals imply on its master columns; with
        ``y=None`` the given `results` (a status) instead.

        Values come from the block with its builds fixed at the plan. Its duals and
        reduced costs too, unless `gbar` gives the block a subgradient of Q_b at the
        plan that the master agrees with: then they come from the block with its
        builds free and priced at -gbar (an LP the plan still solves), an optimal
        dual of the block whose slopes on the builds are gbar up to the reduced costs
        of builds at a bound, so that with the master's duals they form an optimal
        dual of the whole LP."""
        out = []
        for i, b in self.blocks.items():
            if y is None:
                res = (results or {}).get(i) or SolveResult(
                    "infeasible", "; ".join(b.built.trivially_infeasible),
                    solver_version=highs_version())
                g = np.zeros(0)
            else:
                self._fix(b, y)
                res = b.hm.solve()
                g = res.reduced_costs["y"].copy() if res.optimal else np.zeros(0)
                if res.optimal and gbar is not None and i in gbar and len(b.ycols):
                    g = self._priced_duals(b, y, gbar[i], res, g)
            built, answer = expand(b.sub, b.built, res, b.red)
            built.y_index = np.zeros((0, 3), np.int64)
            for store in (answer.values, answer.reduced_costs):
                if "y" in store:
                    store["y"] = np.zeros(0)
            out.append((i, built, answer, g))
        return out

    @staticmethod
    def _priced_duals(b: _Block, y: np.ndarray, gbar: np.ndarray, res: SolveResult,
                      g: np.ndarray) -> np.ndarray:
        """The duals of the block with its builds free, priced at -gbar (see finish),
        read into `res`; the slopes they imply. If that LP does not reach the plan's
        value, gbar is no subgradient there: `res` keeps the fixed block's duals."""
        hm = b.hm
        at = y[b.master]
        cost = np.array(hm.cost, dtype=float)
        cost[b.ycols] = -gbar
        hm.set_bounds("col", b.ycols, np.asarray(hm.col_lower)[b.ycols],
                      np.asarray(hm.col_upper)[b.ycols])
        hm.set_costs(cost)
        try:
            priced = hm.solve(read=False)
            target = float(res.objective) - float(gbar @ at)
            if priced.optimal and priced.objective >= target - 1e-9 * max(1.0, abs(target)):
                sol = hm.highs.getSolution()
                row_dual = np.asarray(sol.row_dual, dtype=float)
                col_dual = np.asarray(sol.col_dual, dtype=float)
                for name, rows in hm.row_of.items():
                    res.duals[name] = row_dual[rows]
                for name, cols in hm.col_of.items():
                    res.reduced_costs[name] = col_dual[cols]
                return gbar + col_dual[b.ycols]
            log.debug("priced block: %s %s against %.10g: duals of the fixed block",
                      priced.status, priced.objective, target)
            return g
        finally:
            cost[b.ycols] = 0.0
            hm.set_costs(cost)
            hm.set_bounds("col", b.ycols, at, at)


class _Master:
    """The master problem in one HiGHS instance: y, theta per block, project rows, cuts."""

    def __init__(self, d: ProblemData, pix: ProjectIndex, rows: list[RowTerms],
                 n_blocks: int, options: SolveOptions) -> None:
        self.ny, self.nb = len(pix.y_index), n_blocks
        self.cost = project_costs(d, pix) * pix.y_prob
        self.upper = np.asarray(pix.y_upper, dtype=float)
        self.integer = np.flatnonzero(pix.y_integer).astype(np.int32)
        self.rows = rows
        with _quiet_stdout():
            self.h = highspy.Highs()
        h = self.h
        h.setOptionValue("output_flag", bool(options.verbose))
        if options.threads is not None:
            h.setOptionValue("threads", int(options.threads))
        ny, nb, inf = self.ny, self.nb, highspy.kHighsInf
        h.addVars(ny, np.zeros(ny), self.upper)
        h.addVars(nb, np.full(nb, -inf), np.full(nb, inf))
        self.scale = 1.0       # objective units per master unit (set_scale)
        self.A = sp.vstack([sp.csr_matrix((r.coef, (r.row, r.pos)), shape=(r.n, ny))
                            for r in rows]).tocsr() if rows else sp.csr_matrix((0, ny))
        self.row_lower = np.concatenate([r.lower for r in rows]) if rows else np.zeros(0)
        self.row_upper = np.concatenate([r.upper for r in rows]) if rows else np.zeros(0)
        n = self.A.shape[0]
        if n:
            h.addRows(n, self.row_lower, self.row_upper, self.A.nnz,
                      self.A.indptr[:-1].astype(np.int32), self.A.indices.astype(np.int32),
                      self.A.data.astype(float))
        self.n_rows = n
        self.cuts = 0
        self.cut_of: list[tuple[int, np.ndarray]] = []     # (block, subgradient) per cut

    def set_scale(self, value: float) -> None:
        """Measure the master's objective in units of a millionth of `value` (the first
        point's): cuts of a 1e10 objective with slopes of 1e9 can stall HiGHS (status
        Unknown), and much smaller units would make its feasibility tolerance (1e-7,
        absolute) a visible share of the objective."""
        self.scale = max(1.0, abs(float(value)) * 1e-6)
        self.h.changeColsCost(self.ny + self.nb, np.arange(self.ny + self.nb, dtype=np.int32),
                              np.concatenate([self.cost / self.scale, np.ones(self.nb)]))

    def add_cut(self, block: int, value: float, cols: np.ndarray, grad: np.ndarray,
                at: np.ndarray) -> None:
        """theta_b - g^T y[cols] >= Q_b(at) - g^T at[cols] (theta in master units)."""
        nz = np.flatnonzero(grad)
        index = np.concatenate([cols[nz], [self.ny + block]]).astype(np.int32)
        coef = np.concatenate([-grad[nz] / self.scale, [1.0]])
        self.h.addRow((value - float(grad @ at[cols])) / self.scale, highspy.kHighsInf,
                      len(index), index, coef)
        self.cut_of.append((block, grad))
        self.cuts += 1

    def add_feasibility_cut(self, far: float, cols: np.ndarray, slope: np.ndarray,
                            at: np.ndarray) -> None:
        """F_b(at) + slope^T (y[cols] - at[cols]) <= 0: builds enough for a block."""
        nz = np.flatnonzero(slope)
        self.h.addRow(-highspy.kHighsInf, float(slope @ at[cols]) - far, len(nz),
                      cols[nz].astype(np.int32), slope[nz])
        self.cut_of.append((-1, slope))
        self.cuts += 1

    def aggregate(self) -> dict[int, np.ndarray]:
        """Each block's subgradient weighted by its cuts' duals in the last master
        solve (they sum to one per block): at an optimum, a subgradient of Q_b at the
        plan that the master's own reduced costs agree with."""
        mu = np.asarray(self.h.getSolution().row_dual, dtype=float)[self.n_rows:]
        out: dict[int, np.ndarray] = {}
        for (block, grad), weight in zip(self.cut_of, mu):
            if weight and block >= 0:          # (feasibility cuts price no block)
                out[block] = out.get(block, 0.0) + weight * grad
        return out

    def is_plan(self, y: np.ndarray, tol: float = 1e-9, whole: bool = True) -> bool:
        """`y` meets the project rows and (`whole`) is whole where it must be."""
        if whole and len(self.integer) and np.abs(y[self.integer] - np.round(y[self.integer])).max() \
                > tol:
            return False
        if not self.n_rows:
            return True
        ay = self.A @ y
        scale = 1.0 + np.abs(ay)
        return bool(np.all(ay >= self.row_lower - tol * scale) and
                    np.all(ay <= self.row_upper + tol * scale))

    def set_integer(self, on: bool) -> None:
        n = len(self.integer)
        if n:
            kind = highspy.HighsVarType.kInteger if on else highspy.HighsVarType.kContinuous
            self.h.changeColsIntegrality(n, self.integer, np.array([kind] * n))

    def solve(self, time_limit: float | None = None, mip_gap: float | None = None
              ) -> tuple[str, float | None, np.ndarray | None]:
        """(status, lower bound, y): "optimal", "time_limit" (bound and perhaps a y),
        "infeasible" or "error"."""
        h = self.h
        h.setOptionValue("time_limit", float(time_limit) if time_limit is not None
                         else highspy.kHighsInf)
        if mip_gap is not None:
            h.setOptionValue("mip_rel_gap", float(mip_gap))
        h.run()
        status = h.getModelStatus()
        if status not in _DONE:            # a warm start can stall where a cold one does not
            log.debug("master: %s, again from scratch", h.modelStatusToString(status))
            h.clearSolver()
            h.run()
            status = h.getModelStatus()
        info = h.getInfo()
        mip = bool(len(self.integer)) and h.getLp().integrality_ is not None and \
            any(v == highspy.HighsVarType.kInteger for v in h.getLp().integrality_)
        y = np.asarray(h.getSolution().col_value, dtype=float)[:self.ny] \
            if info.primal_solution_status == 2 else None
        if y is not None:
            y = np.clip(y, 0.0, self.upper)
            if mip:
                y[self.integer] = np.round(y[self.integer])
        if status == highspy.HighsModelStatus.kOptimal:
            bound = float(info.mip_dual_bound) if mip else float(info.objective_function_value)
            return "optimal", bound * self.scale, y
        if status in (highspy.HighsModelStatus.kInfeasible,
                      highspy.HighsModelStatus.kUnboundedOrInfeasible):
            return "infeasible", None, None
        if status in (highspy.HighsModelStatus.kTimeLimit, highspy.HighsModelStatus.kInterrupt):
            bound = float(info.mip_dual_bound) * self.scale \
                if mip and np.isfinite(info.mip_dual_bound) else None
            return "time_limit", bound, y
        log.debug("master: %s", h.modelStatusToString(status))
        return "error", None, None

    def solve_at(self, y: np.ndarray) -> tuple[str, np.ndarray | None]:
        """The master as an LP (integer builds fixed at `y`'s): (status, its y)."""
        h = self.h
        n = len(self.integer)
        self.set_integer(False)
        if n:
            h.changeColsBounds(n, self.integer, y[self.integer], y[self.integer])
        status, _, y_m = self.solve()
        return status, y_m

    def row_duals(self) -> np.ndarray:
        """The project rows' duals of the last solve, in objective units."""
        return self.scale * np.asarray(self.h.getSolution().row_dual,
                                       dtype=float)[:self.n_rows]


@dataclass
class _Seed:
    """The LP relaxation solved as one LP: its builds and, per block, the slopes its
    duals give Q_b there (a subgradient the relaxation's optimum agrees with)."""

    y: np.ndarray
    slopes: dict[int, np.ndarray]      # block -> (n_y,) on the master's columns


def _relaxation(d: ProblemData, policy: ResolvedPolicy, pix: ProjectIndex,
                blocks: list[list[int]], options: SolveOptions) -> _Seed | None:
    """Solve the model's LP relaxation as one LP (the whole model, builds continuous)
    and read, for each block, g_b = -A_b,y' pi_b over its rows holding builds: the
    duals restricted to a block are an optimal dual of the block with the builds
    fixed at the relaxation's (the block's own columns meet no other block's rows),
    so g_b is a subgradient of Q_b there; with these cuts the master's LP is solved
    at once. None if the relaxation does not solve."""
    built = build_matrix(d, policy)
    lp = built.matrix
    if built.trivially_infeasible or not np.array_equal(built.index.y_index, pix.y_index):
        return None
    lp.integrality = None
    hm = HighsModel(built, options)
    res = hm.solve(read=False)
    if not res.optimal:
        return None
    sol = hm.highs.getSolution()
    pi = np.asarray(sol.row_dual, dtype=float)
    a0, a1 = lp.col_blocks["y"]
    y = np.clip(np.asarray(sol.col_value, dtype=float)[a0:a1], 0.0, pix.y_upper)
    of_element = {e: i for i, b in enumerate(blocks) for e in b}
    element = {name: e for e, name in enumerate(d.elements)}
    A = lp.A.tocsr()
    rows: dict[int, list[np.ndarray]] = {i: [] for i in range(len(blocks))}
    for fam in ("delivery_capacity", "contract_capacity", "reduction"):
        r0, r1 = lp.row_blocks[fam]
        if r1 == r0:
            continue
        owner = np.array([of_element[element[e]] for e in built.row_meta[fam]["element"]])
        for i in range(len(blocks)):
            rows[i].append(r0 + np.flatnonzero(owner == i))
    slopes = {}
    for i, parts in rows.items():
        r = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        slopes[i] = -(A[r][:, a0:a1].T @ pi[r]) if len(r) else np.zeros(a1 - a0)
    return _Seed(y, slopes)


def solve_benders(inst: Instance, d: ProblemData, full_policy: ResolvedPolicy,
                  policy_name: str, extra: Policy | None, blocks: list[list[int]],
                  options: SolveOptions | None = None, relaxation_first: bool = False
                  ) -> tuple[BuiltModel, SolveResult]:
    """Solve a model whose element `blocks` share only project size columns by
    Benders decomposition (module docstring); the answer in the monolithic model's
    indexing, as model.solve.decompose.solve_blocks returns it. Blocks are built and
    evaluated in worker processes when the instance is big enough to pay for them.

    With `relaxation_first` (all-or-nothing projects whose LP the loop would solve
    more slowly than one LP) the LP relaxation is solved as one LP while the workers
    build the blocks, and its duals seed the master: the loop starts at its MIP phase."""
    from .coupled import _Workers

    t0 = time.perf_counter()
    options = options or SolveOptions()
    block_options = replace(options, time_limit_s=None)    # the loop keeps the time
    pix = project_index(d, full_policy)
    infeasible = list(full_policy.infeasible)
    rows = [define_project_size_rows(d, pix),
            define_build_rows(d, pix, full_policy, infeasible)]
    subs = [subset_data(d, b) for b in blocks]
    arc_maps = [a for _, a in subs]
    size = int((d.capacity_t[:, :, None] * d.availability > 0).sum())
    ids = d.projects.ids
    workers = _Workers([(i, inst, sub, policy_name, extra, block_options, ids, pix.ycol_of)
                        for i, (sub, _) in enumerate(subs)], [len(a) for _, a in subs],
                       size >= PARALLEL_MIN_DELIVERIES, _BendersGroup)
    try:
        seed = _relaxation(d, full_policy, pix, blocks, block_options) \
            if relaxation_first and not infeasible and len(pix.y_index) else None
        log.debug("relaxation %s at %.2f s", seed is not None, time.perf_counter() - t0)
        master = _Master(d, pix, rows, len(blocks), options)
        return _Loop(workers, master, d, pix, full_policy, blocks, arc_maps, options,
                     infeasible, t0, seed).run()
    finally:
        workers.close()


class _Loop:
    """The Benders loop (module docstring) over prepared blocks and a master."""

    def __init__(self, workers: Any, master: _Master, d: ProblemData, pix: ProjectIndex,
                 policy: ResolvedPolicy, blocks: list[list[int]], arc_maps: list[np.ndarray],
                 options: SolveOptions, infeasible: list[str], t0: float,
                 seed: _Seed | None = None) -> None:
        self.workers, self.master, self.d, self.pix = workers, master, d, pix
        self.seed = seed
        self.policy, self.blocks, self.arc_maps = policy, blocks, arc_maps
        self.options, self.t0 = options, t0
        self.cols = {i: cols for i, _, cols in workers.first}
        self.infeasible = list(dict.fromkeys(
            infeasible + [m for _, msgs, _ in workers.first for m in msgs]))
        self.fixed = [i for i, cols in self.cols.items() if not len(cols)]  # no builds seen
        self.solve_s = 0.0
        self.rounds = 0
        self.best: tuple[float, np.ndarray] | None = None     # (value, plan)
        self.lp_values: list[float] = []     # values at points meeting the project rows
        self.constant: dict[int, float] = {}   # Q_b of the blocks without builds
        self.has_cut: set[int] = set()          # blocks with an optimality cut
        self.last_q: dict[int, float] = {}      # Q_b at the point last evaluated
        self.bound = -np.inf
        self.mip = bool(len(master.integer))
        self.gap_target = float(options.highs.get("mip_rel_gap", MIP_GAP)) if self.mip \
            else GAP_TOL

    # ---- steps
    def _left(self) -> float | None:
        if self.options.time_limit_s is None:
            return None
        return self.options.time_limit_s - (time.perf_counter() - self.t0)

    def _evaluate(self, y: np.ndarray, only: list[int] | None = None
                  ) -> dict[int, SolveResult] | None:
        """Evaluate the blocks at y (blocks without builds once), add the cuts, keep
        the plan if it is the best; the blocks that failed, if any. With `only`, just
        those blocks, for their cuts."""
        if only is not None:
            out = self.workers.call("evaluate", y, only)
            bad = {i: res for i, res, *_ in out if res is not None}
            for i, _, q, g, seconds, short in out:
                self.solve_s += seconds
                if short:
                    bad[i] = SolveResult("infeasible", "infeasible even with every project "
                                         "built in full", solver_version=highs_version())
                elif i not in bad:
                    self.master.add_cut(i, q, self.cols[i], g, y)
                    self.has_cut.add(i)
            return bad or None
        which = None
        if self.rounds and self.fixed:
            which = [i for i in self.cols if i not in self.fixed]
        out = self.workers.call("evaluate", y, which)
        self.rounds += 1
        bad = {i: res for i, res, *_ in out if res is not None}
        if bad:
            return bad
        if which is None:
            self.constant = {i: q for i, _, q, _, _, short in out
                             if i in self.fixed and not short}
        total = float(self.master.cost @ y) + sum(self.constant.values())
        if self.rounds == 1:           # before the first cut: cuts are added scaled
            self.master.set_scale(total + sum(q for i, _, q, _, _, short in out
                                              if i not in self.fixed and not short))
        feasible = True
        for i, _, q, g, seconds, short in out:
            self.solve_s += seconds
            if short:                  # too few builds for this block: cut them off
                self.master.add_feasibility_cut(q, self.cols[i], g, y)
                feasible = False
                continue
            total += q
            self.last_q[i] = q
            if i not in self.fixed or which is None:
                self.master.add_cut(i, q, self.cols[i], g, y)
                self.has_cut.add(i)
        if feasible and self.master.is_plan(y, whole=False):
            self.lp_values.append(total)
            if self.master.is_plan(y) and (self.best is None or total < self.best[0]):
                self.best = (total, y.copy())
        return None

    def _gap(self) -> float:
        if self.best is None or not np.isfinite(self.bound):
            return np.inf
        return max(0.0, (self.best[0] - self.bound) / max(1.0, abs(self.best[0])))

    def _master(self, mip: bool) -> tuple[str, np.ndarray | None]:
        left = self._left()
        if left is not None:   # at least a short solve: a run stopped early has a bound
            left = max(left, 0.01 if np.isfinite(self.bound) else 1.0)
        t1 = time.perf_counter()
        status, bound, y = self.master.solve(
            left,
            self.gap_target / 4 if mip else None)
        self.solve_s += time.perf_counter() - t1
        log.debug("master (%s): %s in %.2f s, at %.2f s", "MIP" if mip else "LP", status,
                  time.perf_counter() - t1, time.perf_counter() - self.t0)
        if bound is not None:
            self.bound = max(self.bound, bound)
        return status, y

    def run(self) -> tuple[BuiltModel, SolveResult]:
        if self.infeasible:
            stop = SolveResult("infeasible", "; ".join(self.infeasible),
                               solver_version=highs_version())
            return self._answer(None, {i: stop for i in range(len(self.blocks))})
        y = self.seed.y.copy() if self.seed is not None else np.zeros(self.master.ny)
        core = None
        last_bound = -np.inf
        status = "iteration_limit"
        phase_mip = False
        evaluate = True
        while self.rounds < MAX_ROUNDS:
            bad = self._evaluate(y) if evaluate else None
            evaluate = True
            if bad:
                return self._answer(None, bad)
            if self.seed is not None and self.rounds == 1:
                for i, q in self.last_q.items():      # the relaxation's own slopes
                    self.master.add_cut(i, q, self.cols[i], self.seed.slopes[i][self.cols[i]],
                                        y)
            missing = [i for i in self.cols if i not in self.has_cut]
            if missing:
                # a block infeasible with too few builds has no cut to bound its theta:
                # builds only add room, so Q_b with every build in full is a lower
                # bound, and its subgradient there a cut
                bad = self._evaluate(self.master.upper, only=missing)
                if bad:
                    return self._answer(None, bad)
            if self._gap() <= self.gap_target:
                status = "optimal"
                break
            left = self._left()
            if left is not None and left <= 0 and np.isfinite(self.bound):
                status = "time_limit"
                break
            while True:
                state, y_m = self._master(phase_mip)
                if self.mip and not phase_mip and state == "optimal" and \
                        self._lp_gap() <= max(self.gap_target * LP_PHASE, GAP_TOL):
                    phase_mip = True               # the LP's cuts hold for the MIP too
                    self.master.set_integer(True)
                    continue
                break
            if state == "infeasible":
                stop = SolveResult("infeasible", "no plan of builds meets the policy's "
                                   "build rules and the projects' sizes",
                                   solver_version=highs_version())
                return self._answer(None, {i: stop for i in range(len(self.blocks))})
            if state == "error" or y_m is None:
                status = "error" if state == "error" else "time_limit"
                break
            log.debug("round %d: bound %.10g, best %s, gap %.2e", self.rounds, self.bound,
                      self.best and self.best[0], self._gap())
            if self._gap() <= self.gap_target:
                status = "optimal"
                break
            left = self._left()
            if state == "time_limit" or (left is not None and left <= 0):
                bad = self._evaluate(y_m)          # the master's last plan may be the best
                if bad:
                    return self._answer(None, bad)
                status = "optimal" if self._gap() <= self.gap_target else "time_limit"
                break
            if np.array_equal(y_m, y) and self.mip and not phase_mip:
                phase_mip = True       # the LP relaxation is done: on to the MIP
                self.master.set_integer(True)
                evaluate = False
                continue
            if np.array_equal(y_m, y) and (phase_mip or self._lp_gap() <= IN_OUT_UNTIL):
                # the point just evaluated again: its cuts are in, the bounds cannot
                # move any more (a gap left is the master's tolerances)
                log.debug("stalled at gap %.2e", self._gap())
                status = "optimal" if self._gap() <= STALL_GAP else "iteration_limit"
                break
            moved = self.bound > last_bound + 1e-12 * max(1.0, abs(self.bound))
            last_bound = self.bound
            core = y_m if core is None else 0.5 * (core + y_m)
            if phase_mip or self._lp_gap() <= IN_OUT_UNTIL or not moved:
                y = y_m    # (the point between did not move the bound: the master's own)
            else:          # in-out: toward the running average of the master's optima
                y = IN_OUT * y_m + (1.0 - IN_OUT) * core
        return self._answer(status, None)

    def _lp_gap(self) -> float:
        """The gap of the master's LP relaxation: the least value evaluated at a point
        that meets the project rows, whole or not, against the bound."""
        if not self.lp_values or not np.isfinite(self.bound):
            return np.inf
        best = min(self.lp_values)
        return max(0.0, (best - self.bound) / max(1.0, abs(best)))

    # ---- the answer
    def _answer(self, status: str | None, bad: dict[int, SolveResult] | None
                ) -> tuple[BuiltModel, SolveResult]:
        d, m = self.d, self.master
        wall = time.perf_counter() - self.t0
        if bad is not None or self.best is None:
            if bad is None:
                msg = {"time_limit": "time limit before any plan was evaluated",
                       "error": "the master problem failed"}.get(status or "", "no plan")
                stop = SolveResult(status or "error", msg, solver_version=highs_version(),
                                   mip=self.mip, bound=self._bound_or_none())
                bad = {i: stop for i in range(len(self.blocks))}
            answers = self.workers.call("finish", None, None, bad)
            built, result = self._merged(answers, wall)
            result.mip = self.mip
            return built, result
        value, y = self.best
        gbar, duals = self._final_master(y)
        answers = self.workers.call("finish", y, gbar)
        built, result = self._merged(answers, wall)
        if not all(r.optimal for _, _, r, _ in answers):
            return built, result
        result.status = status
        result.objective = float(m.cost @ y) + float(result.objective)
        result.bound = self._bound_or_none()
        result.mip = self.mip
        gap = self._gap()
        result.mip_gap = gap if self.mip and np.isfinite(gap) else (0.0 if self.mip else None)
        result.incumbent = status != "optimal"
        if status == "optimal":
            result.message = "optimal"
        else:
            result.message = (f"{status.replace('_', ' ')} after {self.rounds} block "
                              f"evaluations (relative gap {gap:.2e})")
        result.solve_seconds = self.solve_s
        result.n_variables += m.ny + m.nb
        result.n_constraints += m.n_rows + m.cuts
        result.coupling_iterations = self.rounds  # type: ignore[attr-defined]
        slopes = np.zeros(m.ny)
        for i, _, _, g in answers:
            np.add.at(slopes, self.cols[i], g)
        self._add_builds(built, result, y, duals, slopes)
        return built, result

    def _final_master(self, y: np.ndarray) -> tuple[dict[int, np.ndarray] | None,
                                                      np.ndarray]:
        """The master at the plan (a MIP's as an LP with the whole builds fixed): the
        blocks' aggregated subgradients, if its optimum is the plan, and the project
        rows' duals."""
        m = self.master
        status, y_m = m.solve_at(y)
        duals = m.row_duals() if status == "optimal" else np.zeros(m.n_rows)
        if status != "optimal" or y_m is None or \
                np.abs(y_m - y).max(initial=0.0) > 1e-7 * (1.0 + m.upper.max(initial=0.0)):
            log.debug("final master: %s, not at the plan: duals of the fixed blocks", status)
            return None, duals
        return m.aggregate(), duals

    def _bound_or_none(self) -> float | None:
        return float(self.bound) if np.isfinite(self.bound) else None

    def _merged(self, answers: list[tuple[int, BuiltModel, SolveResult, np.ndarray]],
                wall: float) -> tuple[BuiltModel, SolveResult]:
        by_block = {i: (bm, r) for i, bm, r, _ in answers}
        return _merge(self.d, self.policy, self.blocks, self.arc_maps,
                      [by_block[i] for i in range(len(self.blocks))], wall)

    def _add_builds(self, built: BuiltModel, result: SolveResult, y: np.ndarray,
                    duals: np.ndarray, slopes: np.ndarray) -> None:
        """The master's builds per scenario, the project rows and their duals."""
        d, pix, m = self.d, self.pix, self.master
        p = d.probability
        yp, yt, yw = np.nonzero(pix.ycol_of >= 0)
        pos = pix.ycol_of[yp, yt, yw]
        built.y_index = np.column_stack([yp, yt, yw]).astype(np.int64)
        result.values["y"] = y[pos] * pix.y_unit[pos]
        # reduced costs: the capital cost, the blocks' slopes at the plan (minus the
        # duals of their rows) and the project rows' duals, as the whole LP's
        rc = m.cost + slopes - (m.A.T @ duals if m.n_rows else 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(pix.y_prob[pos] > 0, p[yw] / pix.y_prob[pos], 0.0)
        result.reduced_costs["y"] = rc[pos] * share
        labels = node_labels(d) if d.tree is not None and d.information == "history" \
            else None
        start = 0
        for terms in m.rows:
            n = terms.n
            meta = terms.meta.copy()
            dn = meta["dnode"].to_numpy(dtype=np.int64) if n else np.zeros(0, np.int64)
            meta["node"] = labels[dn] if labels is not None and n else ""
            built.row_meta[terms.family] = meta.reindex(columns=EXPANDED_COLUMNS) if n \
                else pd.DataFrame({c: pd.Series(dtype=object) for c in EXPANDED_COLUMNS})
            result.duals[terms.family] = duals[start:start + n]
            start += n
