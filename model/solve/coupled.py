r"""Element blocks coupled through scenario costs (CVaR, budgets): Dantzig–Wolfe.

A CVaR term and a budget tie the element blocks of :mod:`model.solve.decompose`
together only through each scenario's total cost. Write block :math:`b`'s
columns as :math:`x_b`, its own rows as :math:`x_b \in X_b`, its cost on
scenario :math:`w`'s path as :math:`(S_b x_b)_w` (the discounted cost of the
variables on that path, as the ``cvar_excess`` rows sum them) and its expected
cost as :math:`e_b^\top x_b` with :math:`e_b = S_b^\top p`. The LP is

.. math::

   \min\ (1-\lambda)\textstyle\sum_b e_b^\top x_b + \lambda\eta
        + \frac{\lambda}{1-\alpha}\sum_w p_w z_w
   \quad\text{s.t.}\quad
   \textstyle\sum_b (S_b x_b)_w - \eta - z_w \le 0 \ (y_w \le 0),\quad
   \sum_b e_b^\top x_b \le B \ (y_B \le 0),\quad x_b \in X_b,\ z \ge 0.

**Master.** For each block a few of its plans :math:`x_b^k` with costs
:math:`C^k_{w,b} = (S_b x_b^k)_w` and :math:`E^k_b = e_b^\top x_b^k`; the master
chooses convex weights :math:`\nu_{b,k}`:

.. math::

   \min\ (1-\lambda)\textstyle\sum E^k_b\nu_{b,k} + \lambda\eta
        + \frac{\lambda}{1-\alpha}\sum_w p_w z_w
   \ \text{s.t.}\ \sum C^k_{w,b}\nu_{b,k} - \eta - z_w \le 0,\
   \sum E^k_b\nu_{b,k} \le B,\ \sum_k \nu_{b,k} = 1\ (\sigma_b).

**Pricing.** With the master's duals each block solves its own LP with the cost

.. math:: \tilde c_b = S_b^\top\pi, \qquad \pi_w = (1-\lambda-y_B)\,p_w - y_w \ \ (\ge 0),

the expected cost reweighted toward the tail (CVaR is a maximum over
reweighted probabilities), warm-started from its last basis. A plan with
:math:`v_b = \tilde c_b^\top x_b < \sigma_b` enters the master.

**Bounds.** The master's plan is feasible: its objective is an upper bound;
master :math:`+ \sum_b \min(0, v_b - \sigma_b)` is a lower bound (Lagrangian).
The loop stops when they agree to :data:`GAP_TOL` relative.

**Answer.** Each block's plan is :math:`\sum_k \nu_{b,k} x_b^k`. Its rows' duals
and its columns' reduced costs are those of the last pricing solve: with the
master's duals they form an optimal dual of the whole LP (the pricing problem is
the LP's Lagrangian with the coupling rows priced), so ``duals.csv`` means what
it means for one monolithic solve. :math:`\eta`, :math:`z` and the coupling rows'
duals come from the master.

Within a block, scenarios merge only where the merge is exact for any weights
(:func:`model.input.tree.reduce_scenarios` with ``any_weights``).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field, replace
from typing import Any

import highspy
import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..formulation.built import BuiltModel
from ..input.data import ProblemData
from .decompose import _merge, reduce_data, subset_data
from .expand import EXPANDED_COLUMNS, expand
from ..formulation.matrix import LinearProgram, build_matrix
from ..formulation.policies import ResolvedPolicy, resolve_policy
from ..input.schema import Instance, Policy
from .solve import HighsModel, SolveOptions, SolveResult, _quiet_stdout, highs_version
from ..input.tree import Reduction

GAP_TOL = 1e-9          # relative gap between the master's objective and the lower bound
MAX_ITERATIONS = 2000   # master solves; far above what the bench needs (tens)
log = logging.getLogger(__name__)
SMOOTHING = 0.5         # weight of the best-bound duals in the duals priced (Wentges)


@dataclass
class _Block:
    """One element block as the pricing problem sees it."""

    sub: ProblemData          # the block's data, every scenario
    red: Reduction            # scenario classes merged in `built`
    built: BuiltModel         # the block's LP without coupling rows (merged scenarios)
    hm: HighsModel | None     # None when the block is infeasible before solving
    S: sp.csr_matrix | None   # (classes, columns): cost of each column on each class's path
    e: np.ndarray             # expected cost of each column
    class_of: np.ndarray      # (W,) class of every scenario
    n_classes: int
    plans: list[np.ndarray] = field(default_factory=list)   # column values of each plan
    last: SolveResult | None = None                          # the last pricing solve


def _prepare(inst: Instance, sub: ProblemData, policy_name: str, extra: Policy | None,
             options: SolveOptions | None) -> tuple[_Block, SolveResult]:
    """Build a block's LP, split off its coupling rows, solve it at expected cost."""
    merged, red = reduce_data(sub, any_weights=True)
    policy = replace(resolve_policy(inst, merged, policy_name, extra), budgets=[])
    built = build_matrix(merged, policy)
    lp = built.matrix
    n_col = lp.col_blocks["eta"][0] if "eta" in lp.col_blocks else lp.A.shape[1]
    n_row = lp.A.shape[0]
    S = None
    if "cvar_excess" in lp.row_blocks:
        r0, r1 = lp.row_blocks["cvar_excess"]
        assert r1 == n_row, "cvar_excess must be the last rows"
        S = lp.A[r0:r1, :n_col].tocsr()
        n_row = r0
        e = np.asarray(S.T @ merged.probability).reshape(-1)
    else:
        e = np.asarray(lp.cost[:n_col], dtype=float).copy()   # lambda 0: the expected cost
    own = LinearProgram(
        lp.A[:n_row, :n_col].tocsc(), e.copy(), lp.col_lower[:n_col], lp.col_upper[:n_col],
        lp.row_lower[:n_row], lp.row_upper[:n_row],
        {k: v for k, v in lp.col_blocks.items() if k not in ("eta", "excess")},
        {k: v for k, v in lp.row_blocks.items() if k != "cvar_excess"})
    built = replace(built, matrix=own,
                    row_meta={k: v for k, v in built.row_meta.items() if k != "cvar_excess"})
    class_of = np.zeros(len(sub.scenarios), dtype=np.int64)
    for c, members in enumerate(red.members):
        class_of[members] = c
    if built.trivially_infeasible:      # found while building: no HiGHS model needed
        first = SolveResult("infeasible", "; ".join(built.trivially_infeasible),
                            solver_version=highs_version())
        return _Block(sub, red, built, None, S, e, class_of, len(red.members),
                      last=first), first
    block = _Block(sub, red, built, HighsModel(built, options), S, e, class_of,
                   len(red.members))
    first = block.hm.solve()
    block.last = first
    return block, first


class _Master:
    """The restricted master LP in one HiGHS instance; plans are added as columns."""

    def __init__(self, d: ProblemData, budgets: list[tuple[str, float]], n_blocks: int
                 ) -> None:
        lam, alpha = d.risk_lambda, d.risk_alpha
        p = d.probability
        self.W = len(p) if lam > 0 else 0
        self.nb = len(budgets)
        self.lam = lam
        with _quiet_stdout():
            self.h = highspy.Highs()
        h = self.h
        h.setOptionValue("output_flag", False)
        inf = highspy.kHighsInf
        W = self.W
        if W:    # eta (free), then z_w >= 0
            costs = np.concatenate([[lam], lam * p / (1.0 - alpha)])
            lower = np.concatenate([[-inf], np.zeros(W)])
            h.addCols(W + 1, costs, lower, np.full(W + 1, inf), 0, np.zeros(0, np.int32),
                      np.zeros(0, np.int32), np.zeros(0))
        lower = np.concatenate([np.full(W + self.nb, -inf), np.ones(n_blocks)])
        upper = np.concatenate([np.zeros(W), [a for _, a in budgets], np.ones(n_blocks)])
        # cvar row w: -eta - z_w (+ the plans' costs later)
        starts = np.arange(W, dtype=np.int32) * 2
        index = np.column_stack([np.zeros(W, np.int32), 1 + np.arange(W, dtype=np.int32)])
        n_rows = W + self.nb + n_blocks
        starts = np.concatenate([starts, np.full(n_rows - W, 2 * W, np.int32)])
        h.addRows(n_rows, lower, upper, 2 * W, starts, index.reshape(-1).astype(np.int32),
                  -np.ones(2 * W))
        self.n_cols = W + 1 if W else 0
        self.n_rows = n_rows

    def add_plan(self, block: int, costs_w: np.ndarray, expected: float) -> int:
        """Add a plan of `block` with cost `costs_w` per scenario; its column index."""
        nz = np.flatnonzero(costs_w) if self.W else np.zeros(0, np.int64)
        index = np.concatenate([nz, self.W + np.arange(self.nb),
                                [self.W + self.nb + block]]).astype(np.int32)
        value = np.concatenate([costs_w[nz], np.full(self.nb, expected), [1.0]])
        self.h.addCol((1.0 - self.lam) * expected, 0.0, highspy.kHighsInf, len(index), index,
                      value)
        self.n_cols += 1
        return self.n_cols - 1

    def solve(self) -> str:
        self.h.run()
        status = self.h.getModelStatus()
        if status == highspy.HighsModelStatus.kOptimal:
            return "optimal"
        if status in (highspy.HighsModelStatus.kInfeasible,
                      highspy.HighsModelStatus.kUnboundedOrInfeasible):
            return "infeasible"
        return "error"


class _BlockGroup:
    """Some of the blocks, held where their HiGHS models live (this process or a
    worker): built once, priced with each round's weights, combined at the end."""

    def __init__(self, jobs: list[tuple[int, Instance, ProblemData, str, Policy | None,
                                        SolveOptions]]) -> None:
        self.blocks: dict[int, _Block] = {}
        self.first: dict[int, SolveResult] = {}
        for i, inst, sub, policy_name, extra, options in jobs:
            self.blocks[i], self.first[i] = _prepare(inst, sub, policy_name, extra, options)

    def start(self) -> list[tuple[int, SolveResult | None, np.ndarray, float, float]]:
        """Each block's first plan (at expected cost): (block, the result if not
        optimal, cost per scenario, expected cost, HiGHS seconds)."""
        out = []
        for i, b in self.blocks.items():
            res = self.first[i]
            if not res.optimal:
                out.append((i, res, np.zeros(0), 0.0, res.solve_seconds))
                continue
            x = b.hm.col_values()
            b.plans.append(x)
            out.append((i, None, *_plan_costs(b, x), res.solve_seconds))
        return out

    def price(self, pi: np.ndarray, y_budget: float
              ) -> list[tuple[int, SolveResult | None, float, int, np.ndarray, float, float]]:
        """Solve every block with the cost S_b^T pi (warm): (block, the result if not
        optimal, its value v_b = cost x, the plan's number, its costs per scenario, its
        expected cost, HiGHS seconds). Every plan is kept; the master takes those
        that price out."""
        out = []
        for i, b in self.blocks.items():
            if b.S is not None:
                cost = np.asarray(b.S.T @ np.bincount(b.class_of, weights=pi,
                                                      minlength=b.n_classes)).reshape(-1)
            else:
                cost = (1.0 - y_budget) * b.e
            b.hm.set_costs(cost)
            res = b.hm.solve(read=False)     # values and duals: only the last round's
            if not res.optimal:
                log.debug("block %d: warm pricing %s (%s), again from scratch", i,
                          res.status, res.message)
                b.hm.highs.clearSolver()     # a warm start can stall where a cold one does not
                res = b.hm.solve(read=False)
            if not res.optimal:
                res.message = f"pricing a block: {res.message}"
                out.append((i, res, 0.0, -1, np.zeros(0), 0.0, res.solve_seconds))
                continue
            b.last = res
            x = b.hm.col_values()
            b.plans.append(x)
            out.append((i, None, float(cost @ x), len(b.plans) - 1, *_plan_costs(b, x),
                        res.solve_seconds))
        return out

    def finish(self, weights: dict[int, dict[int, float]] | None,
               results: dict[int, SolveResult] | None = None
               ) -> list[tuple[int, BuiltModel, SolveResult]]:
        """Each block's answer per scenario: with `weights` (block -> plan -> weight)
        the combined plan and the last pricing's duals; else `results` (a status)."""
        out = []
        for i, b in self.blocks.items():
            if weights is None:
                res = (results or {}).get(i) or self.first[i]
            else:
                xbar = np.zeros_like(b.plans[0])
                for k, w in weights[i].items():
                    xbar += w * b.plans[k]
                res = b.last
                b.hm.read_solution(res)        # the last pricing's duals and reduced costs
                for name, cols in b.hm.col_of.items():
                    res.values[name] = xbar[cols]
                res.objective = float(b.e @ xbar)
            built, answer = expand(b.sub, b.built, res, b.red)
            out.append((i, built, answer))
        return out


def _serve(conn: Any, jobs: list[tuple[Any, ...]], group_class: type) -> None:
    """A worker: hold some blocks and answer the parent's calls until it says stop."""
    from .decompose import _worker_signals

    _worker_signals()
    try:
        group = group_class(jobs)
        conn.send(("ok", group.start()))
        while True:
            call, args = conn.recv()
            if call == "stop":
                return
            conn.send(("ok", getattr(group, call)(*args)))
    except BaseException as exc:         # the parent re-raises it
        import traceback

        conn.send(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))


class _Workers:
    """Block groups in worker processes (fork) or in this process, called alike.

    `group_class` holds a share of the jobs: built from them, its ``start()`` is
    the first answer, and every call names one of its methods (model.solve.benders
    uses its own)."""

    def __init__(self, jobs: list[tuple[Any, ...]], weights: list[int], parallel: bool,
                 group_class: type | None = None) -> None:
        import multiprocessing as mp

        group_class = group_class or _BlockGroup
        n = min(len(jobs), os.cpu_count() or 1) if parallel else 1
        if n < 2 or "fork" not in mp.get_all_start_methods():
            self.local: Any = group_class(jobs)
            self.procs: list[Any] = []
            self._first: list[Any] | None = self.local.start()
            return
        self.local = None
        shares: list[list[tuple[Any, ...]]] = [[] for _ in range(n)]
        load = [0] * n
        for j in sorted(range(len(jobs)), key=lambda j: -weights[j]):   # largest first
            w = load.index(min(load))
            shares[w].append(jobs[j])
            load[w] += weights[j]
        ctx = mp.get_context("fork")
        self.conns, self.procs = [], []
        for share in shares:
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_serve, args=(child, share, group_class), daemon=True)
            proc.start()
            child.close()
            self.conns.append(parent)
            self.procs.append(proc)
        self._first = None        # received when first asked for: the caller may work meanwhile

    @property
    def first(self) -> list[Any]:
        """The groups' ``start()`` answers (waits for the workers to have built)."""
        if self._first is None:
            self._first = [item for conn in self.conns for item in self._recv(conn)]
        return self._first

    @staticmethod
    def _recv(conn: Any) -> Any:
        kind, value = conn.recv()
        if kind == "error":
            raise RuntimeError(f"a block worker failed: {value}")
        return value

    def call(self, name: str, *args: Any) -> list[Any]:
        self.first           # (the workers' first answers come first on the pipes)
        if self.local is not None:
            return getattr(self.local, name)(*args)
        for conn in self.conns:
            conn.send((name, args))
        return [item for conn in self.conns for item in self._recv(conn)]

    def close(self) -> None:
        for conn in getattr(self, "conns", []):
            try:
                conn.send(("stop", ()))
                conn.close()
            except OSError:
                pass
        for proc in self.procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()


def _plan_costs(block: _Block, x: np.ndarray) -> tuple[np.ndarray, float]:
    """A plan's cost on every scenario's path (W,) and its expected cost."""
    per_class = block.S @ x if block.S is not None else np.zeros(block.n_classes)
    return np.asarray(per_class)[block.class_of], float(block.e @ x)


def solve_coupled(inst: Instance, d: ProblemData, full_policy: ResolvedPolicy,
                  policy_name: str, extra: Policy | None, blocks: list[list[int]],
                  options: SolveOptions | None = None) -> tuple[BuiltModel, SolveResult]:
    """Solve the LP with CVaR and budget rows by Dantzig–Wolfe over element `blocks`
    (independent but for those rows); the answer in the monolithic model's indexing,
    as model.solve.decompose.solve_blocks returns it. Blocks are built and priced in
    worker processes when the instance is big enough to pay for them."""
    from .decompose import PARALLEL_MIN_DELIVERIES

    t0 = time.perf_counter()
    options = options or SolveOptions()
    lam = d.risk_lambda
    subs = [subset_data(d, b) for b in blocks]
    arc_maps = [a for _, a in subs]
    size = int((d.capacity_t[:, :, None] * d.availability > 0).sum())
    workers = _Workers([(i, inst, sub, policy_name, extra, options)
                        for i, (sub, _) in enumerate(subs)], [len(a) for _, a in subs],
                       size >= PARALLEL_MIN_DELIVERIES)
    try:
        return _run(workers, d, full_policy, blocks, arc_maps, options, lam, t0)
    finally:
        workers.close()


def _run(workers: _Workers, d: ProblemData, full_policy: ResolvedPolicy,
         blocks: list[list[int]], arc_maps: list[np.ndarray], options: SolveOptions,
         lam: float, t0: float) -> tuple[BuiltModel, SolveResult]:
    """The column-generation loop (module docstring) over prepared blocks.

    Stabilised (Wentges smoothing): blocks are priced at a mix of the master's
    duals and the duals that gave the best lower bound so far (the centre), which
    damps the duals' oscillation that makes plain column generation tail off. A
    round whose plans do not price out against the master's own duals is
    repeated at those duals, so every round adds a plan or proves the gap
    closed. The reported duals are the centre's: an optimal dual within the gap.
    """

    def merged(answers: list[tuple[int, BuiltModel, SolveResult]]
               ) -> tuple[BuiltModel, SolveResult]:
        by_block = {i: (bm, r) for i, bm, r in answers}
        return _merge(d, full_policy, blocks, arc_maps,
                      [by_block[i] for i in range(len(blocks))], time.perf_counter() - t0)

    first = workers.first
    bad = {i: res for i, res, *_ in first if res is not None}
    if bad:
        return merged(workers.call("finish", None, bad))
    master = _Master(d, full_policy.budgets, len(blocks))
    col_of: dict[tuple[int, int], int] = {}
    for i, _, costs_w, expected, _ in first:
        col_of[(i, 0)] = master.add_plan(i, costs_w, expected)
    p = d.probability
    W, nb = master.W, master.nb
    amounts = np.array([a for _, a in full_policy.budgets], dtype=float)
    solve_s = sum(item[-1] for item in first)
    iterations, gap, objective = 0, np.inf, np.nan
    nu = np.zeros(0)
    best_bound, centre = -np.inf, None      # centre: (y, y_budget) of the best bound
    priced_at = None
    status = "iteration_limit"

    def pi_of(y: np.ndarray, y_budget: np.ndarray) -> np.ndarray:
        return (1.0 - lam - float(y_budget.sum())) * p - y

    def price(y: np.ndarray, y_budget: np.ndarray) -> list[Any]:
        nonlocal solve_s, priced_at
        out = workers.call("price", pi_of(y, y_budget), float(y_budget.sum()))
        solve_s += sum(item[-1] for item in out)
        priced_at = (y, y_budget)
        return out

    while iterations < MAX_ITERATIONS:
        iterations += 1
        t1 = time.perf_counter()
        state = master.solve()
        solve_s += time.perf_counter() - t1
        if state != "optimal":
            status = state
            break
        objective = float(master.h.getInfo().objective_function_value)
        sol = master.h.getSolution()
        nu = np.asarray(sol.col_value, dtype=float)
        duals = np.asarray(sol.row_dual, dtype=float)
        y_m = duals[:W].copy() if W else np.zeros(len(p))
        yb_m = duals[W:W + nb].copy()
        sigma = duals[W + nb:]
        pi_m = pi_of(y_m, yb_m)
        smoothed = centre is not None and SMOOTHING > 0
        added = 0
        for attempt in (0, 1):
            if smoothed and attempt == 0:
                y = SMOOTHING * centre[0] + (1 - SMOOTHING) * y_m
                yb = SMOOTHING * centre[1] + (1 - SMOOTHING) * yb_m
            else:
                y, yb = y_m, yb_m
            priced = price(y, yb)
            bad = {i: res for i, res, *_ in priced if res is not None}
            if bad:
                return merged(workers.call("finish", None, bad))
            bound = sum(item[2] for item in priced) + float(yb @ amounts)
            if bound > best_bound:
                best_bound, centre = bound, (y, yb)
            for i, _, _, k, costs_w, expected, _ in priced:
                value = float(pi_m @ costs_w) if W else (1.0 - float(yb_m.sum())) * expected
                if value - sigma[i] < -GAP_TOL * max(1.0, abs(objective)) / len(blocks):
                    col_of[(i, k)] = master.add_plan(i, costs_w, expected)
                    added += 1
            gap = (objective - best_bound) / max(1.0, abs(objective))
            if added or gap <= GAP_TOL or not smoothed:
                break                  # a plan entered, or the master's own duals tried
        log.debug("round %d: master %.10g, bound %.10g, gap %.2e, plans added %d",
                  iterations, objective, best_bound, gap, added)
        if gap <= GAP_TOL or not added:
            status = "optimal"
            break
        if options.time_limit_s is not None and time.perf_counter() - t0 > options.time_limit_s:
            status = "time_limit"
            break
    if status != "optimal":
        message = {"infeasible": "no plan meets the budget (the least expected cost of the "
                                 "blocks together is above it)",
                   "time_limit": f"time limit after {iterations} master solves "
                                 f"(relative gap {gap:.2e})",
                   "iteration_limit": f"no convergence in {iterations} master solves "
                                      f"(relative gap {gap:.2e})"}.get(status, "master failed")
        stop = SolveResult(status, message, solver_version=highs_version())
        return merged(workers.call("finish", None, {i: stop for i in range(len(blocks))}))
    if added:       # plans entered after the last master solve: weigh them in
        master.solve()
        objective = float(master.h.getInfo().objective_function_value)
        nu = np.asarray(master.h.getSolution().col_value, dtype=float)
    y_c, yb_c = centre
    if priced_at is None or priced_at[0] is not y_c or priced_at[1] is not yb_c:
        price(y_c, yb_c)          # the blocks' duals at the centre

    # each block's plan: the master's combination of its plans (those in the last master)
    weights: dict[int, dict[int, float]] = {i: {} for i in range(len(blocks))}
    for (i, k), col in col_of.items():
        if col < len(nu) and nu[col] != 0.0:
            weights[i][k] = float(nu[col])
    built, result = merged(workers.call("finish", weights))
    result.objective = objective
    result.solve_seconds = solve_s
    result.n_variables += master.n_cols
    result.n_constraints += master.n_rows
    result.coupling_iterations = iterations  # type: ignore[attr-defined]
    if W:
        u = -y_c                                  # the tail weights of the centre
        result.values["eta"] = nu[:1].copy()
        result.reduced_costs["eta"] = np.array([lam - float(u.sum())])
        result.values["excess"] = nu[1:W + 1].copy()
        result.reduced_costs["excess"] = lam * p / (1.0 - d.risk_alpha) - u
        built.row_meta["cvar_excess"] = pd.DataFrame({
            "constraint": "cvar_excess", "rule": "", "element": "", "period": "",
            "country": "", "stage": "", "scenario": list(d.scenarios), "node": "",
            "sense": ">=", "rhs": 0.0, "demand_t": np.nan}, columns=EXPANDED_COLUMNS)
        result.duals["cvar_excess"] = y_c.copy()
    if nb:
        built.row_meta["budget"] = pd.DataFrame(
            [("budget", lbl, "", "", "", "", "", "", "<=", amount, np.nan)
             for lbl, amount in full_policy.budgets], columns=EXPANDED_COLUMNS)
        result.duals["budget"] = yb_c.copy()
    return built, result
