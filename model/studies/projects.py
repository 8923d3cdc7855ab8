"""What each project is worth: the plan solved with it allowed, excluded and forced
(`sourcing projects`)."""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

import numpy as np
import pandas as pd

from ..api import RunResult, check_run_settings, solve_instance
from ..errors import UsageError
from ..input.data import problem_data
from ..input.instance import LoadedInstance
from ..input.schema import Policy, Selector
from ..solve.solve import SolveOptions


def project_values(loaded: LoadedInstance, policy: str = "none",
                   risk_lambda: float | None = None, risk_alpha: float | None = None,
                   options: SolveOptions | None = None,
                   progress: Callable[[str], None] | None = None) -> pd.DataFrame:
    """What each project is worth under a policy: solved with it allowed (the plan's
    choice), excluded, and forced to its full size.

    * ``expected_size``, ``expected_investment``: in the plan (allowed);
    * ``saving_if_allowed``: expected cost without the project minus with it
      (>= 0: allowing a project never costs more);
    * ``value_per_cost``: what a full build saves per unit it costs, gross of its
      own investment: (cost excluded - (cost forced - investment forced)) /
      investment forced; above 1 it pays for itself;
    * ``forced_shortage_t`` against ``excluded_shortage_t``: the shortage it avoids.
    """
    from ..input.schema import BuildRule

    check_run_settings(risk_lambda, risk_alpha, options)
    pj = problem_data(loaded).projects
    if pj is None or pj.n == 0:
        raise UsageError(f"instance '{loaded.name}' has no projects")
    base = solve_instance(loaded, policy, risk_lambda, risk_alpha, options)
    if not base.optimal:
        raise UsageError(f"policy {policy} is {base.summary['status']}: "
                         f"{base.summary['message']}")
    rows = []
    for p, pid in enumerate(pj.ids):
        if progress:
            progress(pid)
        excluded = solve_instance(loaded, policy, risk_lambda, risk_alpha, options,
                                  Policy(exclude=[Selector(project=pid)]))
        forced = solve_instance(loaded, policy, risk_lambda, risk_alpha, options,
                                Policy(build=[BuildRule(project=pid,
                                                        min_size=float(pj.max_size[p]))]))
        b = base.summary["builds"][pid]
        row = {"project": pid, "built_in_plan": b["probability_built"] > 0,
               "expected_size": b["expected_size"],
               "expected_investment": _project_investment(base, p)}
        if excluded.optimal:
            row["saving_if_allowed"] = excluded.summary["expected_cost"] - \
                base.summary["expected_cost"]
            row["excluded_shortage_t"] = excluded.summary["expected_shortage_t"]
        if forced.optimal and excluded.optimal:
            invest = _project_investment(forced, p)
            gross = excluded.summary["expected_cost"] - \
                (forced.summary["expected_cost"] - invest)
            row.update({"forced_investment": invest, "forced_shortage_t":
                        forced.summary["expected_shortage_t"],
                        "value_per_cost": gross / invest if invest > 0 else None})
        elif not forced.optimal:
            row["forced_status"] = forced.summary["status"]
        rows.append(row)
    return pd.DataFrame(rows)


def _project_investment(run: RunResult, p: int) -> float:
    """Expected discounted investment in project p of a run."""
    from ..analysis.results import investment_cost

    d, sol = run.data, run.solution
    only = replace(sol, built_size=np.where(np.arange(d.projects.n)[:, None, None] == p,
                                            sol.built_size, 0.0))
    return float(investment_cost(d, only) @ d.probability)
