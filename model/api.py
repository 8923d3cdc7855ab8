"""The Python API: load, build, solve and tabulate in one call.

The command line is a thin layer over these functions, so notebooks and
scripts get the same numbers::

    from model.api import solve_instance
    run = solve_instance("instances/japan_2026.yaml", policy="crma65")
    run.summary["expected_cost"], run.tables["allocation"]
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable
from typing import Any

import pandas as pd

from . import __version__
from .input.data import ProblemData, problem_data
from .formulation.built import BuiltModel
from .formulation.indexing import project_index
from .formulation.matrix import FixedDecisions, build, fix_decisions
from .solve.decompose import element_blocks, solve_blocks, solve_blocks_many
from .solve.expand import expand
from .input.instance import LoadedInstance, default_instance_path, load_instance
from .formulation.policies import ResolvedPolicy, resolve_policy
from .analysis.results import (
    _plain,
    Solution,
    allocation_table,
    balance_table,
    cost_breakdown,
    cvar_tail_warning,
    deliveries_table,
    duals_table,
    solution_arrays,
    summary_metrics,
    capacity_added_table,
    cost_by_year,
    projects_table,
    tree_summary,
    tree_table,
)
from .safety import check_settings
from .input.schema import Policy
from .solve.solve import SolveOptions, SolveResult, solve_model

@dataclass
class RunResult:
    """Everything a run produced: the inputs, the status, the tables, the summary."""

    loaded: LoadedInstance
    data: ProblemData
    built: BuiltModel
    result: SolveResult
    policy: str
    summary: dict[str, Any]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    solution: Solution | None = None

    @property
    def optimal(self) -> bool:
        return self.result.optimal

    @property
    def has_solution(self) -> bool:
        """Tables exist: an optimum, or the best plan of a MIP stopped at a limit."""
        return self.result.has_solution


def solve_instance(instance: str | Path | LoadedInstance | None = None, policy: str = "none",
                   risk_lambda: float | None = None, risk_alpha: float | None = None,
                   options: SolveOptions | None = None,
                   extra_rules: Policy | None = None, builder: str = "matrix",
                   decompose: bool = True, fixed: FixedDecisions | None = None,
                   tables: bool = True, buyers: list[str] | None = None) -> RunResult:
    """Load (if needed), build and solve one instance under one policy.

    `builder` is "matrix" (vectorised, the default) or "pyomo" (the formulation
    itself); both build the same LP (tests/test_matrix_path.py). A pure-CVaR
    objective (lambda = 1) uses the Pyomo model for its second phase. With
    `decompose`, independent blocks of elements are solved as separate LPs
    (model.solve.decompose) and merged; the answer means the same.

    `fixed` holds some decisions at given values (a candidate plan's first
    stage, :func:`model.formulation.matrix.first_stage_decisions`; the rest is
    re-solved); blocks tied by CVaR, ambiguity or a budget are then solved as one model.
    Without `tables` the run has its status and objective
    (``run.result.objective``) but no tables or metrics: for studies that need
    only the optimum of many solves (model.studies.sampling).

    With several buyers (``buyers:`` in the instance) the run is the coalition of
    `buyers` (default: every buyer, the grand coalition): only its members are in
    the model (model.studies.coalition solves every coalition).

    Raises UsageError (a ValueError) for settings out of range (lambda in
    [0, 1], alpha in [0, 1), a positive time limit): the checks of the CLI.
    """
    check_run_settings(risk_lambda, risk_alpha, options)
    loaded = instance if isinstance(instance, LoadedInstance) else load_instance(
        default_instance_path() if instance is None else instance)
    data = problem_data(loaded, risk_lambda, risk_alpha, buyers)
    resolved = resolve_policy(loaded.instance, data, policy, extra_rules)
    if data.risk_lambda >= 1.0:
        builder = "pyomo"  # the tie-break phase adds rows to the Pyomo model
    route, blocks = _route(data, resolved, builder, decompose)
    if route in ("coupled", "benders") and fixed is not None:
        route = "one"           # neither loop knows of fixed columns
    if route == "benders":      # blocks tied only by projects: Benders over the builds
        from .solve.benders import solve_benders

        # a MIP whose LP one LP solves faster: that LP relaxation first, its duals
        # seeding the master
        first = _integer_projects(data) and not _lp_by_benders(
            data, resolved, blocks, element_blocks(data, resolved))
        built, result = solve_benders(loaded.instance, data, resolved, policy, extra_rules,
                                      blocks, options, relaxation_first=first)
    elif route == "coupled":    # blocks tied only by CVaR or a budget: Dantzig-Wolfe
        from .solve.coupled import solve_coupled

        built, result = solve_coupled(loaded.instance, data, resolved, policy, extra_rules,
                                      blocks, options)
    elif route == "blocks":
        built, result = solve_blocks(loaded.instance, data, resolved, policy, extra_rules,
                                     blocks, options, fixed=fixed)
    else:
        built = build(data, resolved, builder)
        if fixed is not None:
            fix_decisions(built, fixed)
        result = solve_model(built, options)
        if result.optimal and data.risk_lambda >= 1.0:
            # the pure-CVaR objective leaves non-tail scenarios arbitrary: phase 2
            from .formulation.formulation import define_tail_tiebreak

            cvar_opt = float(result.objective)
            define_tail_tiebreak(built.model, data, cvar_opt)
            phase2 = solve_model(built, options)
            phase2.solve_seconds += result.solve_seconds
            phase2.objective = cvar_opt if phase2.optimal else None
            result = phase2
        built, result = expand(data, built, result, rows=tables)   # rows: duals, tables
    if not tables:
        return RunResult(loaded, data, built, result, policy,
                         base_summary(loaded, data, built, result, policy))
    return finish_run(loaded, data, resolved, built, result, policy, options)


def _route(data: ProblemData, resolved: ResolvedPolicy, builder: str, decompose: bool
           ) -> tuple[str, list[list[int]]]:
    """How a policy is solved: "coupled" (element blocks tied only by CVaR or a
    budget, Dantzig-Wolfe), "benders" (a master over the builds, from
    BENDERS_MIN_DELIVERIES deliveries on: with all-or-nothing projects under a
    policy without share or stock rules, even for one block, and for an LP whose
    projects tie element blocks, up to BENDERS_LP_MAX_BUILDS build columns), "blocks"
    (independent element blocks) or "one" (one LP or MIP; always for lambda = 1,
    whose tie-break needs the Pyomo model), with the element blocks. CVaR or a
    budget with projects: as before, the tied blocks as one
    (docs/mathematics.md, "Projects across blocks")."""
    if not decompose or builder != "matrix" or data.risk_lambda >= 1.0:
        return "one", []
    # (an ambiguity set is solved as one LP: the Dantzig-Wolfe loop prices CVaR and budgets)
    if (data.risk_lambda > 0 or resolved.budgets) and not _integer_projects(data) \
            and not data.ambiguous:
        coupled = element_blocks(data, resolved, scenario_costs=False)
        if len(coupled) > 1:
            return "coupled", coupled
    blocks = element_blocks(data, resolved)
    if data.risk_lambda == 0 and not resolved.budgets and not data.ambiguous \
            and data.buyers is None and data.projects is not None \
            and data.projects.n and _deliveries(data) >= BENDERS_MIN_DELIVERIES:
        apart = element_blocks(data, resolved, projects=False)
        # all-or-nothing projects go to the loop only under a policy without share or
        # stock rules: under `none` on the Japan regime tree it proved the MIP 1.7x
        # faster than HiGHS (and the bundled sampled regime instance in 5 s of HiGHS
        # against about 25), but under `crma65` its bound crept up by about 1e-5 a
        # round (not proven in 600 s on the tree, nor in 13 minutes on the sampled
        # instance, which one MIP solves in 62 s): benchmarks/README.md, issue 24
        if (_integer_projects(data) and not (resolved.share_rules or resolved.stock_rules)) \
                or _lp_by_benders(data, resolved, apart, blocks):
            # a MIP: branch and bound on the builds alone, the blocks as LPs
            return "benders", apart
    return ("blocks", blocks) if len(blocks) > 1 else ("one", [])


# an LP whose projects tie element blocks is solved by Benders (blocks kept apart, a
# master over the builds) up to this many build columns; the loop's rounds grow with
# them (one per 4 to 6 columns measured), and beyond it one LP of the tied blocks is
# faster (benchmarks/README.md, issue 24: 171 columns, 42 rounds, 1.3x faster than the
# monolithic LP; 1,146 columns, 198 rounds, 6.7x slower)
BENDERS_LP_MAX_BUILDS = 400
# below this many deliveries (arc, period, scenario with capacity) the tied blocks are
# solved as one LP or MIP: small enough for HiGHS's own branch and bound, which proves
# a MIP optimal outright, where the loop's start-up costs more than it saves
BENDERS_MIN_DELIVERIES = 20_000


def _lp_by_benders(data: ProblemData, resolved: ResolvedPolicy, apart: list[list[int]],
                   tied: list[list[int]]) -> bool:
    """The LP with these projects is faster by the Benders loop than as the tied
    blocks: the projects tie blocks, through at most BENDERS_LP_MAX_BUILDS columns."""
    return len(apart) > len(tied) and \
        len(project_index(data, resolved).y_index) <= BENDERS_LP_MAX_BUILDS


def _deliveries(data: ProblemData) -> int:
    return int((data.capacity_t[:, :, None] * data.availability > 0).sum())


def solve_each_policy(loaded: LoadedInstance, policies: list[str],
                      risk_lambda: float | None = None, risk_alpha: float | None = None,
                      options: SolveOptions | None = None,
                      progress: Callable[[str, int], None] | None = None,
                      data: ProblemData | None = None) -> dict[str, RunResult]:
    """:func:`solve_instance` for each policy, with the same answers: the policies
    solved by independent element blocks share one pool of worker processes
    (model.solve.decompose.solve_blocks_many), the others are solved one by one.
    `progress(what, done)` is called before each step; `data`, if the caller has
    it, is ``problem_data(loaded, risk_lambda, risk_alpha)``."""
    check_run_settings(risk_lambda, risk_alpha, options)
    report = progress or (lambda what, done: None)
    if data is None:
        data = problem_data(loaded, risk_lambda, risk_alpha)
    pooled = []
    for name in policies:
        resolved = resolve_policy(loaded.instance, data, name)
        route, blocks = _route(data, resolved, "matrix", True)
        if route == "blocks":
            pooled.append((resolved, name, None, blocks))
    runs: dict[str, RunResult] = {}
    if len(pooled) > 1:
        report(" + ".join(name for _, name, _, _ in pooled) + " (element blocks in one pool)", 0)
        solved = solve_blocks_many(loaded.instance, data, pooled, options)
        for (resolved, name, _, _), (built, result) in zip(pooled, solved):
            runs[name] = finish_run(loaded, data, resolved, built, result, name, options)
    for done, name in enumerate(policies):
        if name not in runs:
            report(name, done)
            runs[name] = solve_instance(loaded, name, risk_lambda, risk_alpha, options)
    return {name: runs[name] for name in policies}


def _integer_projects(data: ProblemData) -> bool:
    """All-or-nothing projects make a MIP: Dantzig-Wolfe's convex combinations of
    plans would not be plans."""
    return data.projects is not None and bool(data.projects.integer.any())


def check_run_settings(risk_lambda: float | None, risk_alpha: float | None,
                       options: SolveOptions | None) -> None:
    """The settings of a run in range (UsageError otherwise), as the CLI checks them;
    `options` again although SolveOptions checks itself: it may have been changed."""
    check_settings(risk_lambda, risk_alpha)
    if options is not None:
        check_settings(time_limit=options.time_limit_s, threads=options.threads)


def finish_run(loaded: LoadedInstance, data: ProblemData, resolved: ResolvedPolicy,
               built: BuiltModel, result: SolveResult, policy: str,
               options: SolveOptions | None = None) -> RunResult:
    """The run of a finished solve: summary, the explanation of an infeasible
    policy, and (when optimal) tables and metrics."""
    summary = base_summary(loaded, data, built, result, policy)
    if result.status == "infeasible":
        from .analysis.diagnose import explain_infeasibility
        from .formulation.formulation import build_model

        why = list(built.trivially_infeasible)
        why += explain_infeasibility(build_model(data, resolved), options)
        summary["explanation"] = why
        if why:
            summary["message"] = "; ".join(why)
    return tabulate(RunResult(loaded, data, built, result, policy, summary))


def base_summary(loaded: LoadedInstance, data: ProblemData, built: BuiltModel,
                 result: SolveResult, policy: str) -> dict[str, Any]:
    """The summary keys every run has, whatever its status (docs/outputs.md)."""
    return {
        "status": result.status,
        "message": result.message,
        "objective": None, "expected_cost": None, "cvar": None,
        "expected_shortage_t": None, "worst_shortage_t": None,
        "expected_shortage_by_element_t": None, "expected_shortage_value": None,
        "max_single_country_share": None,
        "bound": result.bound,
        "mip": {"gap": result.mip_gap, "bound": result.bound,
                "plan_at_limit": result.incumbent,
                "feasibility_tolerance": result.mip_feasibility_tolerance}
        if result.mip else None,
        "solver": result.solver, "solver_version": result.solver_version,
        "solve_seconds": round(result.solve_seconds, 6),
        "build_seconds": round(built.build_seconds, 6),
        "handoff_seconds": round(result.handoff_seconds, 6),
        "n_variables": result.n_variables, "n_constraints": result.n_constraints,
        "blocks": getattr(result, "blocks", 1),
        "coupling_iterations": getattr(result, "coupling_iterations", None),
        "instance": loaded.name,
        "instance_path": str(loaded.path) if loaded.path else None,
        "instance_sha256": loaded.sha256,
        "overrides": list(loaded.overrides),
        "policy": policy,
        "risk": {"lambda": data.risk_lambda, "alpha": data.risk_alpha,
                 "total_variation": data.ambiguity},
        "currency": data.currency,
        "home": data.home if data.buyers is None else None,
        "periods": [_plain(p) for p in data.periods],
        "scenarios": len(data.scenarios),
        "tree": tree_summary(data),
        "version": __version__,
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "warnings": list(loaded.warnings) + ([
            f"HiGHS found this MIP infeasible (or its optimum infeasible) at its "
            f"feasibility tolerance of 1e-6, which "
            f"rows holding a scenario's whole cost (CVaR, ambiguity) cannot meet in double "
            f"precision; solved at {result.mip_feasibility_tolerance:g} (the plan's values "
            "come from the LP with its all-or-nothing decisions fixed)"]
            if result.mip_feasibility_tolerance else []),
    }


def tabulate(run: RunResult) -> RunResult:
    """Add the solution, its tables and its metrics to a run with a plan (in place):
    an optimum, or a MIP's best plan at a limit (its status says so)."""
    if not run.has_solution:
        return run
    built, data = run.built, run.data
    sol = solution_arrays(built, run.result)
    run.solution = sol
    run.summary.update(summary_metrics(built, sol))
    run.tables = {
        "allocation": allocation_table(built, sol),
        "deliveries": deliveries_table(built, sol),
        "balance": balance_table(data, sol),
        "scenarios": cost_breakdown(data, sol),
        "tree": tree_table(data),
        "cost_by_year": cost_by_year(data, sol),
    }
    tail = cvar_tail_warning(data.scenarios, run.tables["scenarios"]["cost"].to_numpy(float),
                             data.probability, data.risk_alpha)
    if tail:
        run.summary["warnings"] = [*run.summary.get("warnings", []), tail]
    if built.policy.stock_rules:
        run.tables["stock_floors"] = sol.floors
    if data.projects is not None and data.projects.n:
        run.tables["projects"] = projects_table(data, sol)
        run.tables["capacity_added"] = capacity_added_table(data, sol)   # the chart's data
    if "balance" in built.row_meta:   # the mpisppy engine keeps no row duals
        run.tables["duals"] = duals_table(built, run.result)
    if data.buyers is not None:     # several buyers: buyer and element columns, per buyer
        from .analysis.buyers import buyer_run_tables, buyer_summary

        run.tables = buyer_run_tables(data, sol, run.tables)
        run.summary["buyers"] = buyer_summary(data, sol)
        run.summary["coalition"] = list(data.buyers.ids)
    return run
