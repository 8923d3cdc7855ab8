"""Solving a built model with HiGHS and reading the answer back as arrays.

The Pyomo model is compiled to matrix form with Pyomo's
``LinearStandardFormCompiler`` (mixed form: each row keeps its sense) and
handed to ``highspy`` in one call. The solver's status is mapped to the
project's own status names *before* any value is read; values are returned
only for an optimal solve, so a partial or stale answer is never presented as
optimal.

Dual convention (checked by tests that nudge a right-hand side): a row's dual
is the change in the objective per unit increase of its right-hand side.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

import highspy
import numpy as np

from ..formulation.built import BuiltModel

VARIABLES = ("x", "q", "u", "stock", "z", "deficit", "y", "r", "m_in", "m_out", "eta",
             "excess", "amb_max", "amb_eta", "amb_excess")

_STATUS = {
    highspy.HighsModelStatus.kOptimal: "optimal",
    highspy.HighsModelStatus.kInfeasible: "infeasible",
    highspy.HighsModelStatus.kUnboundedOrInfeasible: "infeasible",
    highspy.HighsModelStatus.kUnbounded: "unbounded",
    highspy.HighsModelStatus.kTimeLimit: "time_limit",
    highspy.HighsModelStatus.kIterationLimit: "iteration_limit",
    highspy.HighsModelStatus.kSolutionLimit: "iteration_limit",   # a node or solution limit
    highspy.HighsModelStatus.kInterrupt: "interrupted",
    highspy.HighsModelStatus.kHighsInterrupt: "interrupted",
    highspy.HighsModelStatus.kMemoryLimit: "memory_limit",
    highspy.HighsModelStatus.kModelEmpty: "optimal",
}


@dataclass
class SolveOptions:
    """What the user may set about a solve (checked: a positive time limit, threads >= 1)."""

    time_limit_s: float | None = None
    threads: int | None = None
    verbose: bool = False
    # expert HiGHS options passed as they are (Python API only), e.g. mip_rel_gap or
    # mip_max_improving_sols; a name HiGHS does not know is refused when solving
    highs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from ..safety import check_settings

        check_settings(time_limit=self.time_limit_s, threads=self.threads)


@dataclass
class SolveResult:
    """Status, objective and (for an optimal solve) values and duals as arrays."""

    status: str
    message: str = ""
    objective: float | None = None
    bound: float | None = None           # best bound known at a limit (dual objective)
    solver: str = "highs"
    solver_version: str = ""
    handoff_seconds: float = 0.0
    solve_seconds: float = 0.0
    n_variables: int = 0
    n_constraints: int = 0
    values: dict[str, np.ndarray] = field(default_factory=dict)
    reduced_costs: dict[str, np.ndarray] = field(default_factory=dict)
    duals: dict[str, np.ndarray] = field(default_factory=dict)
    mip: bool = False                    # integer (all-or-nothing) decisions present
    mip_gap: float | None = None         # relative gap of the plan found to the bound
    incumbent: bool = False              # stopped at a limit with a plan (not optimal)
    # a MIP with scenario-cost rows solved at a looser feasibility tolerance than HiGHS's
    # 1e-6 (see HighsModel.solve); None when the default held
    mip_feasibility_tolerance: float | None = None

    @property
    def optimal(self) -> bool:
        return self.status == "optimal"

    @property
    def has_solution(self) -> bool:
        """Values are filled: an optimum, or the best plan a MIP found before a limit."""
        return self.optimal or self.incumbent


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """Silence the banner that HiGHS prints to file descriptor 1 on construction."""
    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError):
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def peak_rss_mib(who: int | None = None) -> float:
    """Peak resident memory in MiB: this process's own (VmHWM; `who` None or
    ``resource.RUSAGE_SELF``) or its children's (``resource.RUSAGE_CHILDREN``).

    For this process VmHWM is read where Linux has it: ``ru_maxrss`` survives
    exec, so a process started from a large parent would report the parent's
    peak instead of its own. Used by `sourcing bench` and by each rank of
    model.distributed.
    """
    import resource       # Unix only: imported where memory is measured

    if who is None:
        who = resource.RUSAGE_SELF
    if who == resource.RUSAGE_SELF:
        try:
            with open("/proc/self/status") as fh:
                for line in fh:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 1024.0
        except OSError:
            pass
    return resource.getrusage(who).ru_maxrss / 1024.0  # Linux reports KiB


def highs_version() -> str:
    """The HiGHS version string of the installed highspy."""
    with _quiet_stdout():
        h = highspy.Highs()
    return f"{h.versionMajor()}.{h.versionMinor()}.{h.versionPatch()}"


def _variable_names(built: BuiltModel) -> list[str]:
    """Every variable component, the model's own (VARIABLES) first."""
    import pyomo.environ as pyo

    names = [c.local_name for c in built.model.component_objects(pyo.Var, descend_into=False)]
    return [n for n in VARIABLES if n in names] + [n for n in names if n not in VARIABLES]


def _component_positions(built: BuiltModel) -> dict[int, tuple[str, int]]:
    m = built.model
    pos: dict[int, tuple[str, int]] = {}
    for name in _variable_names(built):
        for i, v in enumerate(m.component(name).values()):
            pos[id(v)] = (name, i)
    return pos


class HighsModel:
    """A compiled model held in one HiGHS instance, for solves and re-solves.

    Changing right-hand sides (:meth:`set_rhs`) keeps HiGHS's basis, so the
    next :meth:`solve` warm-starts from the previous optimum. The mapping
    between Pyomo components and matrix rows and columns is computed once.
    """

    def __init__(self, built: BuiltModel, options: SolveOptions | None = None) -> None:
        self.built = built
        self.options = options or SolveOptions()
        self.version = highs_version()
        t0 = time.perf_counter()
        if built.matrix is not None:
            self._from_matrix(built.matrix)
        else:
            self._from_pyomo(built)
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = self.n_col, self.n_row
        lp.col_cost_, lp.col_lower_, lp.col_upper_ = self.cost, self.col_lower, self.col_upper
        lp.row_lower_, lp.row_upper_ = self.row_lower, self.row_upper
        lp.offset_ = self.offset
        self.integer_cols = np.flatnonzero(self.integrality) if self.integrality is not None \
            else np.zeros(0, np.int64)
        self.relaxed_cols = np.zeros(0, np.int64)    # integer columns relaxed (relax())
        if len(self.integer_cols):
            lp.integrality_ = [highspy.HighsVarType.kInteger if i else
                               highspy.HighsVarType.kContinuous for i in self.integrality]
        A = self.A
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = A.indptr.astype(np.int32)
        lp.a_matrix_.index_ = A.indices.astype(np.int32)
        lp.a_matrix_.value_ = A.data.astype(float)
        lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = self.n_col, self.n_row
        # what a later LP of the same shape is compared with (load_changes); HiGHS
        # holds its own copy of the matrix
        self._pattern = (A.indptr.copy(), A.indices.copy(), A.data.astype(float).copy()) \
            if built.matrix is not None else None
        del self.A
        # the column bounds HiGHS holds now (set_bounds changes them)
        self.col_lower_now = np.array(self.col_lower, dtype=float)
        self.col_upper_now = np.array(self.col_upper, dtype=float)
        with _quiet_stdout():
            self.highs = highspy.Highs()
        h = self.highs
        h.setOptionValue("output_flag", bool(self.options.verbose))
        if self.options.time_limit_s is not None:
            h.setOptionValue("time_limit", float(self.options.time_limit_s))
        if self.options.threads is not None:
            h.setOptionValue("threads", int(self.options.threads))
        for name, value in self.options.highs.items():
            if h.setOptionValue(name, value) != highspy.HighsStatus.kOk:
                from ..errors import UsageError

                raise UsageError(f"HiGHS refuses option {name}={value!r}")
        h.passModel(lp)
        self.handoff_seconds = time.perf_counter() - t0

    def _from_matrix(self, lp: Any) -> None:
        """The matrix path: columns and rows are already in the model's own order."""
        self.A, self.cost, self.offset = lp.A, lp.cost, lp.offset
        self.col_lower, self.col_upper = lp.col_lower, lp.col_upper
        self.row_lower, self.row_upper = lp.row_lower, lp.row_upper
        self.row_sense = lp.row_sense
        self.n_col, self.n_row = lp.A.shape[1], lp.A.shape[0]
        self.sizes = {name: b - a for name, (a, b) in lp.col_blocks.items()}
        self.col_of = {name: np.arange(a, b) for name, (a, b) in lp.col_blocks.items()}
        self.dropped_value = {name: np.zeros(0) for name in lp.col_blocks}
        self.row_of = {name: np.arange(a, b) for name, (a, b) in lp.row_blocks.items()}
        self.integrality = lp.integrality
        self._blocks = (dict(lp.row_blocks), dict(lp.col_blocks))

    def _from_pyomo(self, built: BuiltModel) -> None:
        """The Pyomo path: compile with LinearStandardFormCompiler and map back."""
        from pyomo.repn.plugins.standard_form import LinearStandardFormCompiler

        m = built.model
        info = LinearStandardFormCompiler().write(m, mixed_form=True)
        columns = info.columns
        self.n_col, self.n_row = len(columns), len(info.rows)
        self.col_lower = np.array([-np.inf if v.lb is None else v.lb for v in columns], dtype=float)
        self.col_upper = np.array([np.inf if v.ub is None else v.ub for v in columns], dtype=float)
        rhs = np.asarray(info.rhs, dtype=float).reshape(-1)
        self.row_sense = np.array([bt for _, bt in info.rows], dtype=int).reshape(-1)
        self.A = info.A.tocsc()
        integer = np.array([v.is_integer() or v.is_binary() for v in columns], dtype=np.int8)
        self.integrality = integer if integer.any() else None
        self.cost = info.c.toarray().reshape(-1) if info.c.shape[0] else np.zeros(self.n_col)

        # columns -> (variable component, position in its index order)
        pos = _component_positions(built)
        self.sizes = {name: len(m.component(name)) for name in _variable_names(built)}
        self.col_of = {name: np.full(n, -1, dtype=np.int64) for name, n in self.sizes.items()}
        for j, v in enumerate(columns):
            name, i = pos[id(v)]
            self.col_of[name][i] = j
        self.dropped_value: dict[str, np.ndarray] = {}
        for name in self.sizes:  # variables the compiler dropped (fixed, or in no row)
            missing = np.flatnonzero(self.col_of[name] < 0)
            vals = np.zeros(len(missing))
            if len(missing):
                all_vars = list(m.component(name).values())
                for n, i in enumerate(missing):
                    v = all_vars[i]
                    vals[n] = v.value if v.fixed and v.value is not None else max(
                        0.0, v.lb if v.lb is not None else 0.0)
            self.dropped_value[name] = vals
        # rows -> (constraint component, position in its index order)
        self.row_of: dict[str, np.ndarray] = {
            name: np.full(len(meta), -1, dtype=np.int64) for name, meta in built.row_meta.items()}
        positions: dict[str, dict[object, int]] = {}
        for r, (con, _) in enumerate(info.rows):
            comp = con.parent_component()
            name = comp.local_name
            if name not in self.row_of:
                continue
            if name not in positions:
                positions[name] = {idx: i for i, idx in enumerate(comp.keys())}
            self.row_of[name][positions[name][con.index()]] = r

        self.row_lower = np.where(self.row_sense == 1, -np.inf, rhs)
        self.row_upper = np.where(self.row_sense == -1, np.inf, rhs)
        self.offset = float(info.c_offset[0]) if len(info.c_offset) else 0.0

    def load_changes(self, built: BuiltModel) -> bool:
        """Take a new LP of the same shape (another value of an input, as sweep --param
        makes) as changes to the loaded one, so the next solve starts from the last
        basis: costs, bounds and changed coefficients are passed to HiGHS. Returns
        False (and changes nothing) when the shape or the sparsity differs."""
        lp = built.matrix
        if lp is None or self._pattern is None or lp.A.shape != (self.n_row, self.n_col):
            return False
        indptr, indices, values = self._pattern
        A = lp.A
        if not (np.array_equal(A.indptr, indptr) and np.array_equal(A.indices, indices)) or \
                (lp.integrality is None) != (self.integrality is None) or \
                (lp.row_blocks, lp.col_blocks) != self._blocks:
            return False
        h = self.highs
        cols = np.arange(self.n_col, dtype=np.int32)
        if not np.array_equal(lp.cost, self.cost):
            h.changeColsCost(self.n_col, cols, np.asarray(lp.cost, dtype=float))
        self.set_bounds("col", cols, lp.col_lower, lp.col_upper)
        self.set_bounds("row", np.arange(self.n_row, dtype=np.int32), lp.row_lower,
                        lp.row_upper)
        changed = np.flatnonzero(A.data != values)
        if len(changed):
            col_of_nz = np.repeat(np.arange(self.n_col), np.diff(indptr))
            for j in changed.tolist():
                h.changeCoeff(int(indices[j]), int(col_of_nz[j]), float(A.data[j]))
        self.cost, self.col_lower, self.col_upper = lp.cost, lp.col_lower, lp.col_upper
        self.row_lower, self.row_upper = lp.row_lower, lp.row_upper
        self._pattern = (indptr, indices, A.data.astype(float).copy())
        self.built = built
        return True

    def relax(self) -> None:
        """Drop the integrality of every integer column: the model becomes its LP
        relaxation (whose optimum bounds the MIP's; an integral optimum is the MIP's),
        and re-solves from a basis like any LP. :meth:`load_changes` still takes LPs
        of the integer model's shape."""
        n = len(self.integer_cols)
        if n:
            self.highs.changeColsIntegrality(
                n, self.integer_cols.astype(np.int32),
                np.array([highspy.HighsVarType.kContinuous] * n))
        self.relaxed_cols = self.integer_cols
        self.integer_cols = np.zeros(0, np.int64)

    def set_costs(self, cost: np.ndarray) -> None:
        """New objective coefficients for every column (model order); the next solve
        starts from the current basis (still primal feasible)."""
        cost = np.asarray(cost, dtype=float)
        self.highs.changeColsCost(self.n_col, np.arange(self.n_col, dtype=np.int32), cost)
        self.cost = cost

    def col_values(self) -> np.ndarray:
        """The last solve's value of every column (model order)."""
        return np.asarray(self.highs.getSolution().col_value, dtype=float)

    def set_rhs(self, name: str, rhs: np.ndarray) -> None:
        """New right-hand sides for the rows of constraint family `name` (meta order)."""
        rows = self.row_of[name]
        keep = rows >= 0
        idx = rows[keep].astype(np.int32)
        value = np.asarray(rhs, dtype=float)[keep]
        sense = self.row_sense[idx]
        self.set_bounds("row", idx, np.where(sense == 1, -np.inf, value),
                        np.where(sense == -1, np.inf, value))

    def set_bounds(self, kind: str, index: np.ndarray, lower: np.ndarray,
                   upper: np.ndarray) -> None:
        """New bounds for some rows (`kind` "row") or columns ("col") by position;
        HiGHS keeps its basis, so the next solve starts from it."""
        idx = np.asarray(index, dtype=np.int32)
        if not len(idx):
            return
        lower, upper = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
        if kind == "row":
            self.highs.changeRowsBounds(len(idx), idx, lower, upper)
        elif kind == "col":
            self.highs.changeColsBounds(len(idx), idx, lower, upper)
            self.col_lower_now[idx], self.col_upper_now[idx] = lower, upper
        else:
            raise ValueError(f"kind must be 'row' or 'col', not {kind!r}")

    def _run_interruptibly(self) -> "highspy.HighsStatus":
        """Run HiGHS in its worker thread so Ctrl-C (or SIGTERM) cancels the solve.

        The interrupt is re-raised once HiGHS has stopped, so the caller writes
        nothing and the command line exits with "interrupted".
        """
        h = self.highs
        h.startSolve()
        interrupted = False
        while True:
            try:
                done, status = h.wait(0.1)
                if done:
                    break
            except KeyboardInterrupt:
                interrupted = True
                h.cancelSolve()
        if interrupted:
            raise KeyboardInterrupt
        return status

    def solve(self, read: bool = True) -> SolveResult:
        """Run HiGHS (warm-started after a change) and map the outcome.

        With ``read=False`` an optimal LP's values and duals stay in HiGHS
        (:meth:`read_solution` fetches them later; :meth:`col_values` the values).

        A MIP (all-or-nothing projects) is solved by branch and bound; its plan's
        duals come from the LP with the integer decisions fixed at their values.
        Stopped at a limit with a plan, the result is not optimal but carries the
        plan (``incumbent``), its objective and gap, and the bound.
        """
        h = self.highs
        if self.options.time_limit_s is not None:
            # HiGHS counts time_limit against this instance's total run time:
            # give every (re-)solve its own limit
            h.setOptionValue("time_limit", h.getRunTime() + float(self.options.time_limit_s))
        result = self._run_once()
        status = result.status
        hinfo = h.getInfo()
        if result.mip and status in ("infeasible", "error") \
                and SCENARIO_COST_ROWS & set(self.row_of):
            result, hinfo = self._retry_mip_tolerance(result, hinfo)
        if result.mip:
            return self._finish_mip(result, hinfo)
        if status != "optimal":
            if status in {"time_limit", "iteration_limit", "interrupted"}:
                result.bound = float(hinfo.objective_function_value) \
                    if hinfo.dual_solution_status == 2 else None
            return result
        result.objective = float(hinfo.objective_function_value)
        if read:
            self._read_solution(result)
        return result

    def _retry_mip_tolerance(self, result: SolveResult, hinfo: Any) -> tuple[SolveResult, Any]:
        """A MIP with scenario-cost rows (CVaR, ambiguity: each scenario's whole
        discounted cost, up to about 1e10) that HiGHS calls infeasible at its absolute
        feasibility tolerance of 1e-6, or whose optimum it rejects as a "solve error"
        for a violation of about 1e-5 ("MIP solver claims optimality, but with ...
        primal infeasibilities"), which double precision cannot avoid on rows of that
        size (the LP relaxation is feasible, the integer plans too): solved again at
        1e-5 and then 1e-4. The plan's values and duals still come from the LP with
        its integer decisions fixed, and the run says which tolerance it took."""
        h = self.highs
        default = float(h.getOptionValue("mip_feasibility_tolerance")[1])
        try:
            for tolerance in (1e-5, 1e-4):
                h.setOptionValue("mip_feasibility_tolerance", max(default, tolerance))
                again = self._run_once()
                again.solve_seconds += result.solve_seconds
                if again.status not in ("infeasible", "error"):
                    again.mip_feasibility_tolerance = max(default, tolerance)
                    return again, h.getInfo()
        finally:
            h.setOptionValue("mip_feasibility_tolerance", default)
        return result, hinfo

    def _run_once(self) -> SolveResult:
        """Run HiGHS as it is set and map its status (no values read)."""
        h = self.highs
        t1 = time.perf_counter()
        run_status = self._run_interruptibly()
        model_status = h.getModelStatus()
        status = _STATUS.get(model_status, "error")
        if run_status == highspy.HighsStatus.kError and status == "optimal":
            status = "error"
        return SolveResult(status, h.modelStatusToString(model_status),
                           solver_version=self.version, handoff_seconds=self.handoff_seconds,
                           solve_seconds=time.perf_counter() - t1, n_variables=self.n_col,
                           n_constraints=self.n_row, mip=bool(len(self.integer_cols)))

    def read_solution(self, result: SolveResult) -> None:
        """The last solve's values, reduced costs and duals into `result`."""
        self._read_solution(result)

    def _read_solution(self, result: SolveResult) -> None:
        sol = self.highs.getSolution()
        col_value = np.asarray(sol.col_value, dtype=float)
        col_dual = np.asarray(sol.col_dual, dtype=float)
        row_dual = np.asarray(sol.row_dual, dtype=float)
        for name, cols in self.col_of.items():
            present = cols >= 0
            values = np.zeros(len(cols))
            rcost = np.zeros(len(cols))
            values[present] = col_value[cols[present]]
            rcost[present] = col_dual[cols[present]]
            values[~present] = self.dropped_value[name]
            result.values[name], result.reduced_costs[name] = values, rcost
        for name, rows in self.row_of.items():
            dual = np.zeros(len(rows))
            dual[rows >= 0] = row_dual[rows[rows >= 0]]
            result.duals[name] = dual

    def _finish_mip(self, result: SolveResult, hinfo: Any) -> SolveResult:
        """Gap and bound; with a plan, the LP with the integer decisions fixed gives
        the values and duals. Bounds and integrality are restored afterwards."""
        h = self.highs
        has_plan = hinfo.primal_solution_status == 2
        result.bound = float(hinfo.mip_dual_bound) if np.isfinite(hinfo.mip_dual_bound) \
            else None
        if not has_plan:
            return result
        objective = float(hinfo.objective_function_value)
        result.mip_gap = float(max(hinfo.mip_gap, 0.0)) if np.isfinite(hinfo.mip_gap) else None
        if not result.optimal:
            if result.status not in {"time_limit", "iteration_limit", "interrupted"}:
                return result
            result.incumbent = True
        cols = self.integer_cols.astype(np.int32)
        fixed = np.round(np.asarray(h.getSolution().col_value, dtype=float)[cols])
        lower, upper = self.col_lower_now[cols].copy(), self.col_upper_now[cols].copy()
        n = len(cols)
        h.changeColsBounds(n, cols, fixed, fixed)
        h.changeColsIntegrality(n, cols, np.array([highspy.HighsVarType.kContinuous] * n))
        try:
            self._run_interruptibly()
            if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
                result.status, result.incumbent = "error", False
                result.message = "the LP with the build decisions fixed did not solve"
                return result
            self._read_solution(result)
            # the fixed LP re-optimises the continuous part: never worse than the plan
            result.objective = min(objective, float(h.getInfo().objective_function_value))
        finally:
            h.changeColsBounds(n, cols, lower, upper)
            h.changeColsIntegrality(n, cols, np.array([highspy.HighsVarType.kInteger] * n))
        return result


# row families of each scenario's whole cost: a MIP with them may need a looser
# feasibility tolerance (HighsModel._retry_mip_tolerance)
SCENARIO_COST_ROWS = frozenset({"cvar_excess", "ambiguity_max", "ambiguity_excess"})


def solve_model(built: BuiltModel, options: SolveOptions | None = None) -> SolveResult:
    """Compile the model, solve it once with HiGHS and map the outcome.

    Returns a :class:`SolveResult`; values and duals are filled only when the
    status is ``optimal``.
    """
    if built.trivially_infeasible:
        return SolveResult("infeasible", "; ".join(built.trivially_infeasible),
                           solver_version=highs_version())
    return HighsModel(built, options).solve()
