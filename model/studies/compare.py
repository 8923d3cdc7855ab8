"""Comparing policies: one instance solved under several policies, side by side.

* :func:`compare_policies` solves one instance under several policies and
  tabulates cost, risk, shortage, concentration and the deltas against the
  first policy (the cost of resilience and the shortage it avoids)
  (`sourcing compare`);
* :func:`policy_row` is one policy's row of that table.

The per-scenario and per-year tables of a comparison are
model.analysis.results.comparison_scenarios_table and cost_by_year_table.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pandas as pd

from ..analysis.binding import binding_json, binding_rows, binding_text
from ..analysis.results import cost_breakdown
from ..api import RunResult, check_run_settings, finish_run, solve_instance, \
    solve_each_policy
from ..errors import UsageError
from ..formulation.policies import resolve_policy, union_policy
from ..input.data import ProblemData, problem_data
from ..input.instance import LoadedInstance
from ..input.regimes import summarised
from ..solve.decompose import compare_blocks, element_blocks
from ..solve.solve import SolveOptions
from .metrics import stochastic_metrics


STAGES = ("mining", "refining")


def stages_of(stage: str) -> list[str]:
    if stage == "both":
        return list(STAGES)
    if stage not in STAGES:
        raise UsageError(f"--stage must be mining, refining or both; got '{stage}'")
    return [stage]


def expected_supply_by_country(d: ProblemData, delivered_t: np.ndarray, stage: str) -> pd.Series:
    """Expected delivered tonnes (all elements, all periods) per country at `stage`."""
    per_arc = np.einsum("ktw,w->k", delivered_t, d.probability)
    return pd.Series(per_arc).groupby(d.arc_country(stage)).sum().sort_values(ascending=False)


def binding_constraints(duals: pd.DataFrame, top: int = 3, inst: Any = None,
                        currency: str = "", per: str = "year") -> str:
    """The rule rows (policy rules, minimum takes, signed volumes) whose relaxation
    saves the most, in words (model.analysis.binding)."""
    return binding_text(binding_rows(duals, inst, currency, per, top=top))


def largest_contracts(allocation: pd.DataFrame, n_periods: int, top: int = 3) -> str:
    """Which suppliers and how much: the `top` sources by expected contracted tonnes a
    period (all elements; each decision node weighted by its probability), as text
    ``"lynas-jare-ndpr 5,000 t; china-term 1,234 t"``."""
    weighted = allocation.contracted_t * allocation.node_probability
    per_source = weighted.groupby(allocation.source, sort=False).sum() / max(n_periods, 1)
    per_source = per_source[per_source > 0.05].sort_values(ascending=False, kind="stable")
    return "; ".join(f"{s} {t:,.0f} t" for s, t in per_source.head(top).items())


def policy_row(run: RunResult, per_scenario: bool = True) -> dict[str, Any]:
    """One comparison row from a solved run; with `per_scenario` a column of total
    shortage per scenario (``shortage_t[<scenario>]``), which a comparison of many
    scenarios leaves to its long table (:func:`comparison_scenarios_table`)."""
    s = run.summary
    row: dict[str, Any] = {"policy": run.policy, "status": s["status"]}
    if not run.has_solution:
        row["message"] = s["message"]
        return row
    d, sol = run.data, run.solution
    row.update({k: s[k] for k in ("objective", "expected_cost", "cvar", "expected_shortage_t",
                                  "worst_shortage_t")})
    if s.get("ambiguity"):        # doubt on the probabilities: the worst expectation too
        row["worst_case_expected_cost"] = s["ambiguity"]["worst_case_expected_cost"]
    by_elem = s.get("expected_shortage_by_element_t") or {}
    for e in d.elements:
        row[f"expected_shortage_t[{e}]"] = by_elem.get(e)
    T = len(d.periods)
    row["expected_shortage_value"] = s.get("expected_shortage_value")
    row["shortage_value_per_year"] = s["expected_shortage_value"] / T \
        if s.get("expected_shortage_value") is not None else None
    # money a year: discounted as the expected cost (the headline basis: the parts add
    # up to it), and undiscounted beside it; both over the same T periods
    by_year = run.tables["cost_by_year"]
    expected = by_year[by_year.scenario == "expected"]
    row["cash_per_year"] = float(expected["cash_discounted"].sum()) / T
    row["penalty_per_year"] = float(expected["penalty_discounted"].sum()) / T
    row["cash_per_year_undiscounted"] = float(expected["cash"].sum()) / T
    row["penalty_per_year_undiscounted"] = float(expected["penalty"].sum()) / T
    for stage in STAGES:
        # of demand: per element, period and scenario, the largest (into stock included)
        m = s["max_single_country_share"][stage]
        row[f"max_share_of_demand_{stage}"] = m["share"]
        row[f"max_share_of_demand_{stage}_country"] = m["country"]
        # of deliveries: expected tonnes over all elements and periods
        supply = expected_supply_by_country(d, sol.delivered_t, stage)
        total = supply.sum()
        share = supply / total if total > 0 else supply * 0
        row[f"china_share_of_deliveries_{stage}"] = float(share.get("CN", 0.0))
        row[f"hhi_of_deliveries_{stage}"] = float((share ** 2).sum())
    if per_scenario:
        costs = cost_breakdown(d, sol)
        for w, short in zip(costs.scenario, costs.shortage_t):
            row[f"shortage_t[{w}]"] = float(short)
    row["largest_contracts"] = largest_contracts(run.tables["allocation"], T)
    per = "year" if abs(float(d.period_days) - 365.0) <= 1.5 else "period"
    binds = binding_rows(run.tables.get("duals"), run.loaded.instance, d.currency, per, top=3)
    row["binding"] = binding_text(binds)
    row["binding_rows"] = binding_json(binds)
    for key in ("ws", "eev", "evpi", "vss"):
        if key in s:
            row[key] = s[key]
    return row


def compare_policies(loaded: LoadedInstance, policies: list[str],
                     risk_lambda: float | None = None, risk_alpha: float | None = None,
                     options: SolveOptions | None = None, with_metrics: bool = False,
                     progress: Callable[[str, int], None] | None = None,
                     reuse: bool = False) -> tuple[pd.DataFrame, dict[str, RunResult]]:
    """Solve under each policy; a row per policy with deltas against the first.

    By default each policy is built and solved on its own (decomposed) model,
    exactly as `solve` does, so its plan and its duals do not depend on which
    other policies are compared (an LP with equally cheap plans or degenerate
    duals answers by the path HiGHS takes, and that path is the same for the
    same model). With ``reuse=True`` all policies share one model per element
    block (model.solve.switch: built and handed to HiGHS once, each policy a warm
    re-solve): the same optimum (tests/test_switch.py), but an equally cheap
    plan or other valid duals may be reported. `progress(what, done)`
    is called before each step with what is being solved and how many
    policies are finished.
    """
    check_run_settings(risk_lambda, risk_alpha, options)
    if not policies:
        raise UsageError("compare needs at least one --policy")
    policies = list(dict.fromkeys(policies))    # a policy named twice is solved once
    runs: dict[str, RunResult] = {}
    data = problem_data(loaded, risk_lambda, risk_alpha)
    # lambda = 1 needs the Pyomo model's tie-break phase: solve those one by one
    shared = reuse and len(policies) > 1 and data.risk_lambda < 1.0
    report = progress or (lambda what, done: None)
    solved = _solve_on_one_model(loaded, data, policies, options, report) if shared \
        else solve_each_policy(loaded, policies, risk_lambda, risk_alpha, options, report,
                               data=data)
    for done, name in enumerate(policies):
        run = solved.get(name)
        if run is None:
            report(name, done)
            run = solve_instance(loaded, name, risk_lambda, risk_alpha, options)
        if with_metrics and run.optimal:
            report(f"{name}: stochastic metrics", done)
            run.summary.update(stochastic_metrics(loaded, name, risk_lambda, risk_alpha,
                                                  options, rp=run.summary["objective"]))
        runs[name] = run
    # a column per scenario for a few named ones; thousands go to a long table
    wide = not summarised(loaded.instance)
    table = pd.DataFrame([policy_row(r, wide) for r in runs.values()])
    first = table.iloc[0]
    periods = len(runs[policies[0]].data.periods)
    if first["status"] == "optimal":
        ok = table["status"] == "optimal"
        table.loc[ok, "delta_expected_cost"] = table.loc[ok, "expected_cost"] - \
            first["expected_cost"]
        table.loc[ok, "delta_expected_cost_per_period"] = \
            table.loc[ok, "delta_expected_cost"] / periods
        # the same difference split in money spent and shortage penalty, discounted
        # (they add up to it), then the undiscounted split
        for col in ("cash_per_year", "penalty_per_year", "cash_per_year_undiscounted",
                    "penalty_per_year_undiscounted"):
            table.loc[ok, "delta_" + col] = table.loc[ok, col] - first[col]
        table.loc[ok, "delta_cvar"] = table.loc[ok, "cvar"] - first["cvar"]
        table.loc[ok, "avoided_expected_shortage_t"] = first["expected_shortage_t"] - \
            table.loc[ok, "expected_shortage_t"]
        for col in [c for c in table.columns if c.startswith("expected_shortage_t[")]:
            table.loc[ok, "avoided_" + col] = first[col] - table.loc[ok, col]
        table.loc[ok, "avoided_worst_shortage_t"] = first["worst_shortage_t"] - \
            table.loc[ok, "worst_shortage_t"]
        # one column per scenario: add them in one step (column by column
        # fragments the frame, and W may be in the thousands)
        per_scenario = [c for c in table.columns if c.startswith("shortage_t[")]
        avoided = (first[per_scenario].astype(float) - table[per_scenario].astype(float))
        avoided = avoided.where(ok).rename(columns=lambda c: "avoided_" + c)
        table = pd.concat([table, avoided], axis=1)
    return table, runs


def _solve_on_one_model(loaded: LoadedInstance, data: ProblemData, names: list[str],
                        options: SolveOptions | None,
                        report: Callable[[str, int], None]) -> dict[str, RunResult]:
    """Every policy's run from switched models, one per independent element block.

    Policies are grouped by their own element blocks: a policy that couples
    elements (a group cap, a budget) would otherwise merge the blocks of all
    the others, and bigger blocks also merge fewer identical scenarios.
    """
    inst = loaded.instance
    resolved = {n: resolve_policy(inst, data, n) for n in names}
    by_blocks: dict[tuple[tuple[int, ...], ...], list[str]] = {}
    for name, pol in resolved.items():
        key = tuple(tuple(b) for b in element_blocks(data, pol))
        by_blocks.setdefault(key, []).append(name)
    runs: dict[str, RunResult] = {}
    for group in by_blocks.values():
        report(" + ".join(group) + (" (one model)" if len(group) > 1 else ""), len(runs))
        pols = [resolved[n] for n in group]
        blocks = element_blocks(data, union_policy(pols))
        answers = compare_blocks(inst, data, pols, group, blocks, options)
        for name, (built, result) in zip(group, answers):
            runs[name] = finish_run(loaded, data, resolved[name], built, result, name, options)
    return runs
