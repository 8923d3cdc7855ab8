"""`sourcing bench`: time each phase on the synthetic generator against a reference.

Our pipeline (in this process, blocks in worker processes): load the YAML,
build (vectorised, per element block), hand over to HiGHS, HiGHS's own solve,
extraction (tables and metrics), writing the run folder. The reference, in a
process of its own: the same LP built with numpy as one monolithic model and
solved by highspy with default options. Both report objective and peak RSS.

Run the reference alone with ``python -m model.bench --reference INSTANCE``.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def reference_solve(instance: str | Path, policy: str = "none",
                    risk_lambda: float | None = None, time_limit: float | None = None
                    ) -> dict[str, Any]:
    """Monolithic numpy build + highspy with default options (run in its own process):
    the extensive form of `policy` (with the CVaR term when lambda > 0) as one LP, or
    one MIP with all-or-nothing projects (HiGHS's branch and bound, its default gap
    1e-4), stopped at `time_limit` seconds if given."""
    import highspy
    import numpy as np

    from .input.data import problem_data
    from .input.instance import load_instance
    from .formulation.matrix import build_matrix
    from .formulation.policies import resolve_policy
    from .solve.solve import _quiet_stdout, peak_rss_mib

    t0 = time.perf_counter()
    loaded = load_instance(instance)
    t_load = time.perf_counter()
    d = problem_data(loaded, risk_lambda)
    built = build_matrix(d, resolve_policy(loaded.instance, d, policy))
    lp_m = built.matrix
    t_build = time.perf_counter()
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = lp_m.A.shape[1], lp_m.A.shape[0]
    lp.col_cost_, lp.col_lower_, lp.col_upper_ = lp_m.cost, lp_m.col_lower, lp_m.col_upper
    lp.row_lower_, lp.row_upper_ = lp_m.row_lower, lp_m.row_upper
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = lp_m.A.indptr.astype(np.int32)
    lp.a_matrix_.index_ = lp_m.A.indices.astype(np.int32)
    lp.a_matrix_.value_ = lp_m.A.data
    mip = lp_m.integrality is not None
    if mip:
        lp.integrality_ = [highspy.HighsVarType.kInteger if i else
                           highspy.HighsVarType.kContinuous for i in lp_m.integrality]
    with _quiet_stdout():
        h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    if time_limit is not None:
        h.setOptionValue("time_limit", float(time_limit))
    h.passModel(lp)
    t_pass = time.perf_counter()
    cpu0 = time.process_time()
    h.run()
    t_solve = time.perf_counter()
    info = h.getInfo()
    out = {"reference_load_s": t_load - t0, "reference_build_s": t_build - t_load,
           "reference_handoff_s": t_pass - t_build, "reference_highs_solve_s": t_solve - t_pass,
           "reference_highs_cpu_s": time.process_time() - cpu0,
           "reference_s": t_solve - t_load,
           "reference_cpu_s": time.process_time(),
           "reference_status": h.modelStatusToString(h.getModelStatus()),
           "reference_objective": float(info.objective_function_value),
           "reference_peak_rss_mib": peak_rss_mib(),
           "n_variables": int(lp.num_col_), "n_constraints": int(lp.num_row_),
           "nonzeros": int(lp_m.A.nnz)}
    if mip:
        out.update({"reference_mip_gap": float(info.mip_gap),
                    "reference_mip_bound": float(info.mip_dual_bound),
                    "reference_mip_nodes": int(info.mip_node_count)})
    return out


def _reference(path: Path, policy: str, risk_lambda: float | None,
               time_limit: float | None = None) -> dict[str, Any]:
    """The reference solve in a process of its own (its own memory peak)."""
    t0 = time.perf_counter()
    args = [sys.executable, "-m", "model.bench", "--reference", str(path), policy,
            "" if risk_lambda is None else repr(float(risk_lambda))]
    if time_limit is not None:
        args.append(repr(float(time_limit)))
    proc = subprocess.run(args, capture_output=True, text=True, check=True)
    ref = json.loads(proc.stdout)
    ref["reference_process_s"] = time.perf_counter() - t0
    return ref


BUDGET_POLICY = "bench-budget"


def _with_budget(inst: dict[str, Any], policy: str, slack: float, risk_lambda: float | None
                 ) -> tuple[dict[str, Any], str]:
    """The instance with policy `bench-budget`: `policy`'s rules plus a budget of
    (1 + slack) times the least expected cost under `policy` (solved first, not timed),
    so that with lambda > 0 the budget binds against the tail."""
    from .api import solve_instance
    from .input.instance import instance_from_dict

    run = solve_instance(instance_from_dict(inst), policy, risk_lambda=0.0)
    if not run.optimal:
        raise RuntimeError(f"bench: policy {policy} is {run.summary['status']} at lambda 0")
    rules = dict(inst["policies"].get(policy, {})) if policy != "none" else {}
    rules["budget"] = [{"amount": float(run.summary["expected_cost"]) * (1.0 + slack)}]
    inst = {**inst, "policies": {**inst["policies"], BUDGET_POLICY: rules}}
    return inst, BUDGET_POLICY


def run_bench(scenarios: int, sources: int = 20, elements: int = 17, periods: int = 10,
              seed: int = 0, reference: bool = True, sweep_points: int = 0,
              compare: bool = False, policy: str = "none", risk_lambda: float | None = None,
              budget_slack: float | None = None, information: str = "history",
              regimes: int = 0, projects: int = 0, integer_projects: bool = False,
              reference_limit: float | None = None) -> dict[str, Any]:
    """Time our pipeline phase by phase, then the reference in its own process.

    `policy` and `risk_lambda` choose the case (the reference solves the same LP);
    `budget_slack` adds a budget of (1 + slack) x the least expected cost to `policy`
    (policy ``bench-budget``); `information` and `regimes` are the generator's
    (history: a tree; regimes > 0: `scenarios` paths of a regime chain), and so are
    `projects` and `integer_projects`; the reference stops at `reference_limit`
    seconds if given (a MIP's branch and bound may not finish)."""
    from . import __version__
    from .api import solve_instance
    from .input.builders import instance_to_yaml, synthetic_instance
    from .output.export import save_run
    from .input.instance import load_instance
    from .solve.solve import highs_version, peak_rss_mib

    out: dict[str, Any] = {"sources": sources, "elements": elements, "periods": periods,
                           "scenarios": scenarios, "seed": seed, "cpus": os.cpu_count(),
                           "regimes": regimes, "projects": projects,
                           "integer_projects": integer_projects,
                           "policy": policy, "lambda": risk_lambda, "budget_slack": budget_slack,
                           "version": __version__, "highs_version": highs_version(),
                           "python": sys.version.split()[0]}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.yaml"
        inst = synthetic_instance(sources, elements, periods, scenarios, seed,
                                  information=information, regimes=regimes,
                                  projects=projects, integer=integer_projects)
        if budget_slack is not None:
            inst, policy = _with_budget(inst, policy, budget_slack, risk_lambda)
            out["policy"] = policy
        path.write_text(instance_to_yaml(inst))
        t0 = time.perf_counter()
        loaded = load_instance(path)
        t1 = time.perf_counter()
        run = solve_instance(loaded, policy, risk_lambda=risk_lambda)
        t2 = time.perf_counter()
        save_run(run, Path(tmp) / "run")
        t3 = time.perf_counter()
        r, s = run.result, run.summary
        blocks_wall = getattr(r, "wall_seconds", None)
        inner = s["build_seconds"] + s["handoff_seconds"] + s["solve_seconds"]
        if blocks_wall is None:  # one block, solved in this process
            blocks_wall = inner
        highs_wall = blocks_wall * (s["solve_seconds"] / inner if inner > 0 else 0.0)
        total = t3 - t0
        out.update({
            "status": s["status"], "objective": s["objective"], "blocks": s["blocks"],
            "generated_scenarios": s["scenarios"],
            "coupling_iterations": s["coupling_iterations"],
            "information": s["tree"]["information"], "tree_nodes": s["tree"]["nodes"],
            "n_variables": s["n_variables"], "n_constraints": s["n_constraints"],
            "load_s": t1 - t0, "build_s": s["build_seconds"], "handoff_s": s["handoff_seconds"],
            "highs_solve_s": s["solve_seconds"], "blocks_wall_s": blocks_wall,
            "extraction_s": (t2 - t1) - blocks_wall, "writing_s": t3 - t2, "total_s": total,
            "highs_wall_s": highs_wall, "outside_highs_s": total - highs_wall,
            "outside_highs_share": (total - highs_wall) / total if total else 0.0,
            "peak_rss_mib": peak_rss_mib(),
            "worker_peak_rss_mib": peak_rss_mib(resource.RUSAGE_CHILDREN),
        })
        if sweep_points:
            out.update(_sweep_bench(loaded, sweep_points))
        if compare:
            out.update(_compare_bench(loaded, path if reference else None, risk_lambda))
        if reference:
            ref = _reference(path, policy, risk_lambda, reference_limit)
            out.update({k: v for k, v in ref.items() if k.startswith("reference")})
            out["nonzeros"] = ref["nonzeros"]
            out["speedup"] = ref["reference_s"] / total if total else None
            out["objective_rel_diff"] = abs(out["objective"] - ref["reference_objective"]) / \
                max(1.0, abs(ref["reference_objective"])) if out["objective"] is not None else None
            # memory at once: this process plus the workers that ran side by side
            workers_used = min(out["blocks"], os.cpu_count() or 1)
            out["peak_rss_upper_mib"] = out["peak_rss_mib"] + (
                workers_used * out["worker_peak_rss_mib"] if out["blocks"] > 1 else 0.0)
            out["rss_ratio"] = out["peak_rss_upper_mib"] / ref["reference_peak_rss_mib"]
    return out


def _sweep_bench(loaded: Any, points: int) -> dict[str, Any]:
    """A `points`-point cap sweep: warm-started re-solves against cold solves."""
    import numpy as np

    from .studies.sweep import sweep_cap

    caps = [round(float(c), 6) for c in np.linspace(1.0, 0.3, points)]
    t0 = time.perf_counter()
    warm = sweep_cap(loaded, caps)
    t1 = time.perf_counter()
    cold = sweep_cap(loaded, caps, warm=False)
    t2 = time.perf_counter()
    diff = float(np.max(np.abs(warm.objective.astype(float) - cold.objective.astype(float))
                        / np.maximum(1.0, np.abs(cold.objective.astype(float)))))
    return {"sweep_points": points, "sweep_warm_s": t1 - t0, "sweep_cold_s": t2 - t1,
            "sweep_speedup": (t2 - t1) / (t1 - t0), "sweep_max_rel_diff": diff}


COMPARE_POLICIES = ["none", "crma65", "plan50", "crma65-group"]


def _compare_bench(loaded: Any, path: Path | None, risk_lambda: float | None
                   ) -> dict[str, Any]:
    """compare over the synthetic instance's policies as `sourcing compare` runs it (each
    policy on its own decomposed model), against one switched model per block (warm
    re-solves) and, with `path`, against one monolithic reference solve per policy."""
    import numpy as np

    from .studies.compare import compare_policies

    t0 = time.perf_counter()
    separate, _ = compare_policies(loaded, COMPARE_POLICIES, risk_lambda)
    t1 = time.perf_counter()
    shared, _ = compare_policies(loaded, COMPARE_POLICIES, risk_lambda, reuse=True)
    t2 = time.perf_counter()
    a, b = shared.objective.astype(float), separate.objective.astype(float)
    out = {"compare_policies": len(COMPARE_POLICIES), "compare_separate_s": t1 - t0,
           "compare_shared_s": t2 - t1, "compare_speedup": (t1 - t0) / (t2 - t1),
           "compare_max_rel_diff": float(np.max(np.abs(a - b) / np.maximum(1.0, np.abs(b))))}
    if path is not None:
        refs = [_reference(path, p, risk_lambda) for p in COMPARE_POLICIES]
        ref_s = sum(r["reference_s"] for r in refs)
        ref_obj = np.array([r["reference_objective"] for r in refs])
        out.update({"compare_reference_s": ref_s,
                    "compare_reference_speedup": ref_s / (t1 - t0),
                    "compare_reference_max_rel_diff": float(np.max(
                        np.abs(b - ref_obj) / np.maximum(1.0, np.abs(ref_obj)))),
                    "compare_reference_by_policy": {p: r["reference_s"] for p, r in
                                                    zip(COMPARE_POLICIES, refs)}})
    return out


def main() -> None:
    if len(sys.argv) in (3, 5, 6) and sys.argv[1] == "--reference":
        policy, lam = (sys.argv[3], sys.argv[4]) if len(sys.argv) >= 5 else ("none", "")
        limit = float(sys.argv[5]) if len(sys.argv) == 6 else None
        print(json.dumps(reference_solve(sys.argv[2], policy, float(lam) if lam else None,
                                         limit)))
        return
    raise SystemExit("usage: python -m model.bench --reference INSTANCE "
                     "[POLICY LAMBDA [TIME_LIMIT]]")


if __name__ == "__main__":
    main()
