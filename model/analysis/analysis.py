"""Policy analysis on the solved model: compare, sweep, value of the stochastic solution.

* :func:`compare_policies` solves one instance under several policies and
  tabulates cost, risk, shortage, concentration and the deltas against the
  first policy (the cost of resilience and the shortage it avoids).
* :func:`sweep_cap` adds one ``max_single_country_share`` rule on top of a
  policy and moves its share along a grid. It builds and hands over the model
  once and changes only right-hand sides, so every point after the first is a
  warm-started re-solve.
* :func:`stochastic_metrics` computes WS, EEV, EVPI and VSS (DESIGN.md).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Callable

import numpy as np
import pandas as pd

from ..api import RunResult, check_run_settings, finish_run, solve_instance, \
    solve_each_policy
from ..input.data import ProblemData, problem_data, restrict_scenarios, retree
from ..errors import UsageError
from ..solve.decompose import compare_blocks, element_blocks, sweep_blocks, variant_blocks
from ..formulation.matrix import build, fix_shared_decisions
from ..input.instance import LoadedInstance
from ..input.regimes import summarised
from ..formulation.policies import check_policy, policy_names, resolve_policy, union_policy
from .binding import binding_json, binding_rows, binding_text
from .results import cost_breakdown, solution_arrays, summary_metrics
from ..safety import MAX_CAP_POINTS, check_caps
from ..input.schema import CountryCapRule, Policy, Selector
from ..solve.solve import SolveOptions, solve_model

STAGES = ("mining", "refining")


# --------------------------------------------------------------------------- helpers
def parse_cap_range(text: str) -> list[float]:
    """``start:stop:step`` (inclusive, either direction) or a comma list -> shares.

    At most MAX_CAP_POINTS values, counted before any list is made (a tiny
    step would otherwise allocate without limit); every value finite, in [0, 1].
    """
    try:
        if ":" in text:
            start, stop, step = (float(v) for v in text.split(":"))
            if not all(math.isfinite(v) for v in (start, stop, step)):
                raise UsageError(f"--cap start, stop and step must be finite numbers; "
                                 f"got '{text}'")
            if step <= 0:
                raise ValueError
            values = _decimal_grid(text, _grid_points(start, stop, step, "--cap", text))
        else:
            values = [float(v) for v in text.split(",") if v.strip()]
    except UsageError:
        raise
    except ValueError:
        raise UsageError(f"--cap must be start:stop:step (step > 0) or a list a,b,c; "
                         f"got '{text}'") from None
    if len(values) > MAX_CAP_POINTS:
        raise UsageError(f"--cap gives {len(values):,} points; at most {MAX_CAP_POINTS:,}")
    bad = [v for v in values if not math.isfinite(v)]
    if bad:
        raise UsageError(f"--cap values must be finite numbers; got {bad[:5]}")
    bad = [v for v in values if not 0.0 <= v <= 1.0]
    if not values or bad:
        raise UsageError(f"--cap values must lie in [0, 1]; got {bad[:5] or text}")
    return values


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


# --------------------------------------------------------------------------- compare
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


def comparison_scenarios_table(runs: dict[str, RunResult]) -> pd.DataFrame:
    """The per-scenario figures of a comparison in long form (comparison_scenarios.csv):
    one row per policy with a plan and scenario, with the scenario's probability, its
    total shortage (t, all elements summed) and the shortage avoided against the
    first policy (``avoided_shortage_t``; empty when the first policy has no plan)."""
    cols = ["policy", "scenario", "probability", "shortage_t", "avoided_shortage_t"]
    names = list(runs)
    first = runs[names[0]] if names else None
    base = first.tables["scenarios"].set_index("scenario")["shortage_t"] \
        if first is not None and first.has_solution else None
    parts = []
    for name, run in runs.items():
        if not run.has_solution:
            continue
        t = run.tables["scenarios"][["scenario", "probability", "shortage_t"]].copy()
        t.insert(0, "policy", name)
        t["avoided_shortage_t"] = np.nan if base is None else \
            base.reindex(t["scenario"]).to_numpy() - t["shortage_t"].to_numpy()
        parts.append(t)
    return pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)


def cost_by_year_table(runs: dict[str, RunResult]) -> pd.DataFrame:
    """Per policy and period: expected cash spent and shortage penalty (undiscounted
    and discounted), shortage, and each against the first policy."""
    rows = []
    for name, run in runs.items():
        if not run.has_solution:
            continue
        t = run.tables["cost_by_year"]
        rows.append(t[t.scenario == "expected"].drop(columns=["scenario", "probability"])
                    .assign(policy=name))
    if not rows:
        return pd.DataFrame()
    out = pd.concat(rows, ignore_index=True)
    base = out[out.policy == next(iter(runs))].set_index("period")
    for col in ("cash", "cash_discounted", "penalty", "penalty_discounted", "shortage_t"):
        out["delta_" + col] = out[col].to_numpy() - base[col].reindex(out["period"]).to_numpy()
    return out[["policy", "period", "cash", "cash_discounted", "penalty", "penalty_discounted",
                "shortage_t", "delta_cash", "delta_cash_discounted", "delta_penalty",
                "delta_penalty_discounted", "delta_shortage_t"]]


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


# --------------------------------------------------------------------------- sweep
def sweep_cap(loaded: LoadedInstance, caps: list[float], policy: str = "none",
              stage: str = "both", per: str = "element",
              risk_lambda: float | None = None, risk_alpha: float | None = None,
              options: SolveOptions | None = None,
              progress: Callable[[float], None] | None = None,
              warm: bool = True) -> pd.DataFrame:
    """The frontier of cost and shortage against a single-country cap.

    One model is built with the extra cap rule and handed to HiGHS once; each
    point only changes that rule's right-hand sides (share x demand) and
    re-solves from the previous basis. With ``warm=False`` every point is a
    cold build and solve (for checking and benchmarking).
    """
    check_run_settings(risk_lambda, risk_alpha, options)
    caps = check_caps(list(caps))
    if per not in ("element", "group"):
        raise UsageError(f"--per must be element or group; got '{per}'")
    stages = stages_of(stage)
    rows = []
    if not warm:
        for cap in caps:
            extra = Policy(max_single_country_share=[CountryCapRule(share=cap, stages=stages,
                                                                    per=per)])
            run = solve_instance(loaded, policy, risk_lambda, risk_alpha, options, extra)
            rows.append(_with_projects(_frontier_row(cap, run.summary,
                                                     run.result.solve_seconds), run.summary))
            if progress:
                progress(cap)
        return pd.DataFrame(rows)
    inst = loaded.instance
    data = problem_data(loaded, risk_lambda, risk_alpha)
    extra = Policy(max_single_country_share=[CountryCapRule(share=caps[0], stages=stages,
                                                            per=per)])
    resolved = resolve_policy(inst, data, policy, extra)
    label = "max_single_country_share[0]"  # extra rules are labelled without a policy
    # one warm-started model per independent element block (often just one block)
    blocks = element_blocks(data, resolved)
    merged = sweep_blocks(inst, data, resolved, policy, extra, label, caps, blocks, options)
    for cap, (built, result) in zip(caps, merged):
        summary: dict[str, Any] = {"status": result.status, "message": result.message}
        if result.has_solution:
            summary.update(summary_metrics(built, solution_arrays(built, result)))
        elif result.status == "infeasible":     # say why, in the instance's words
            summary["message"] = _explain_point(loaded, data, policy, stages, per, cap,
                                                options) or result.message
        rows.append(_with_projects(_frontier_row(cap, summary, result.solve_seconds), summary))
        if progress:
            progress(cap)
    return pd.DataFrame(rows)


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
    from .results import investment_cost

    d, sol = run.data, run.solution
    only = replace(sol, built_size=np.where(np.arange(d.projects.n)[:, None, None] == p,
                                            sol.built_size, 0.0))
    return float(investment_cost(d, only) @ d.probability)


def _grid_points(start: float, stop: float, step: float, name: str, text: str) -> int:
    """The number of points of an inclusive grid, refused beyond MAX_SWEEP_POINTS
    before any list is made (a tiny step would allocate without limit)."""
    from ..safety import MAX_SWEEP_POINTS

    steps = abs(stop - start) / step
    if not steps < MAX_SWEEP_POINTS:
        raise UsageError(f"{name} '{text}' gives {steps + 1:,.0f} points; at most "
                         f"{MAX_SWEEP_POINTS:,} (use a larger step)")
    return int(np.floor(steps + 1e-9)) + 1


def _decimal_grid(text: str, n: int) -> list[float]:
    """The n points start, start + step, ... of ``start:stop:step`` computed in decimal
    from the text as written, each then the nearest double: 1.0:0.3:0.05 gives 0.65
    (not 0.6499999999999999) and 1e-11:3e-11:1e-11 three distinct values, without
    rounding to a number of decimals."""
    from decimal import Decimal, localcontext

    start, stop, step = (Decimal(v.strip()) for v in text.split(":"))
    sign = 1 if stop >= start else -1
    with localcontext() as ctx:
        ctx.prec = 60
        return [float(start + sign * i * step) for i in range(n)]


def parse_values(text: str) -> list[Any]:
    """``start:stop:step`` (inclusive) or a comma list ``a,b,c``; each item read as YAML.

    A grid's points are ``start + i * step`` computed in decimal from the text
    (:func:`_decimal_grid`), not rounded: ``1e-11:3e-11:1e-11`` is three values. A list is read as one YAML flow sequence, so an item
    may itself hold commas (``{2026: 1, 2027: 2}, {2026: 3, 2027: 4}``).
    """
    from ..errors import InstanceError
    from ..input.instance import yaml_load
    from ..safety import MAX_SWEEP_POINTS, check_count, shown

    text = text.strip()
    if ":" in text and not any(c in text for c in "{[,"):
        try:
            start, stop, step = (float(v) for v in text.split(":"))
        except ValueError:
            raise UsageError(f"--values must be start:stop:step or a,b,c; got {shown(text)}") \
                from None
        if not step > 0 or not all(np.isfinite([start, stop, step])):
            raise UsageError(f"--values {text}: step must be positive and the ends finite")
        n = _grid_points(start, stop, step, "--values", text)
        return _decimal_grid(text, n)
    try:
        values = yaml_load(f"[{text}]", "--values")
    except InstanceError as err:
        raise UsageError(f"--values: cannot read {shown(text)} as values a,b,c "
                         f"({err.message})") from None
    if not isinstance(values, list) or not values:
        raise UsageError("--values needs at least one value")
    if any(v is None for v in values):
        raise UsageError(f"--values {shown(text)}: an empty value")
    check_count("the number of --values", len(values), MAX_SWEEP_POINTS)
    return values


def sweep_param(loaded: LoadedInstance, path: str, values: list[Any], policy: str = "none",
                risk_lambda: float | None = None, risk_alpha: float | None = None,
                options: SolveOptions | None = None,
                progress: Callable[[Any], None] | None = None,
                warm: bool = True) -> pd.DataFrame:
    """What-if along any input: solve with ``path`` set to each value (model.input.overrides).

    One row per value with the frontier's numbers, and for an instance with
    projects the expected size each project is built to (``size[<project>]``),
    which shows where a project stops being built as its cost rises. Where
    the variants share their model's shape (a price, a capacity, a probability
    within the same tree, a cost), each element block is solved once and every
    further value re-solved from the previous basis (model.solve.decompose.variant_blocks);
    otherwise, or with ``warm=False``, each value is a separate solve.
    """
    from ..input.overrides import overridden

    check_run_settings(risk_lambda, risk_alpha, options)
    variants = [overridden(loaded, [(path, v)]) for v in values]
    for variant in variants:
        check_policy(policy, policy_names(variant.instance))
    datas = [problem_data(v, risk_lambda, risk_alpha) for v in variants]
    resolved = [resolve_policy(v.instance, d, policy) for v, d in zip(variants, datas)]
    blocks = [element_blocks(d, r) for d, r in zip(datas, resolved)]
    shared = warm and all(b == blocks[0] for b in blocks) and datas[0].risk_lambda < 1.0 \
        and all(d.risk_lambda < 1.0 for d in datas)
    answers = variant_blocks([v.instance for v in variants], datas, resolved, policy,
                             blocks[0], options) if shared else [None] * len(values)
    rows = []
    for value, variant, answer in zip(values, variants, answers):
        if answer is None:
            run = solve_instance(variant, policy, risk_lambda, risk_alpha, options)
            s, seconds = run.summary, run.result.solve_seconds
        else:
            built, result = answer
            s = {"status": result.status, "message": result.message}
            if result.has_solution:
                s.update(summary_metrics(built, solution_arrays(built, result)))
            seconds = result.solve_seconds
        row = {"param": path, "value": value, **_frontier_row(0.0, s, seconds)}
        row.pop("cap")
        rows.append(_with_projects(row, s))
        if progress:
            progress(value)
    return pd.DataFrame(rows)


def _explain_point(loaded: LoadedInstance, data: ProblemData, policy: str, stages: list[str],
                   per: str, cap: float, options: SolveOptions | None) -> str:
    """Why a sweep point is infeasible (model.analysis.diagnose on that point's model)."""
    from .diagnose import explain_infeasibility
    from ..formulation.formulation import build_model

    extra = Policy(max_single_country_share=[CountryCapRule(share=cap, stages=stages, per=per)])
    resolved = resolve_policy(loaded.instance, data, policy, extra)
    built = build_model(data, resolved)
    why = list(built.trivially_infeasible) or explain_infeasibility(built, options)
    return "; ".join(why)


def _with_projects(row: dict[str, Any], s: dict[str, Any]) -> dict[str, Any]:
    """A frontier row with the expected investment and, for an instance with projects,
    the expected size each project is built to (``size[<project>]``): where a project
    stops being built as the cap (or any input) moves."""
    row["expected_investment"] = s.get("expected_investment")
    for pid, b in (s.get("builds") or {}).items():
        row[f"size[{pid}]"] = b["expected_size"]
    return row


def _frontier_row(cap: float, s: dict[str, Any], seconds: float) -> dict[str, Any]:
    ok = s.get("expected_cost") is not None      # an optimum, or a MIP's plan at a limit
    row = {"cap": cap, "status": s["status"]}
    for key in ("objective", "expected_cost", "expected_shortage_t", "worst_shortage_t",
                "cvar"):
        row[key] = s.get(key) if ok else None
    for stage in STAGES:
        row[f"max_share_of_demand_{stage}"] = \
            s["max_single_country_share"][stage]["share"] if ok else None
    row["solve_seconds"] = round(seconds, 6)
    row["message"] = "" if s["status"] == "optimal" else s.get("message", "")
    return row


# --------------------------------------------------------------------------- VSS, EVPI
def scenario_data(d: ProblemData, w: int) -> ProblemData:
    """The data of scenario `w` alone, with probability 1 (its tree is one path)."""
    return restrict_scenarios(d, [w], probability=np.ones(1))


def expected_value_data(d: ProblemData) -> ProblemData:
    """Every scenario-dependent parameter replaced by its probability-weighted mean
    (the delivered price too, after clipping); a stock floor's target is scaled by
    the probability that it binds (DESIGN conventions)."""
    p = d.probability
    return retree(replace(
        d, scenarios=["expected-value"], probability=np.ones(1),
        availability=np.einsum("ktw,w->kt", d.availability, p)[:, :, None],
        price_multiplier=np.einsum("ktw,w->kt", d.price_multiplier, p)[:, :, None],
        delivery_price=np.einsum("ktw,w->kt", d.delivery_price, p)[:, :, None],
        demand_t=np.einsum("etw,w->et", d.demand_t, p)[:, :, None],
        # a released stock floor counts with the probability that it binds
        emergency=np.zeros(d.emergency.shape[:2] + (1,)),
        emergency_mix=(d.emergency, d.probability),
        buyers=None if d.buyers is None else d.buyers.expected(p)))


def stochastic_metrics(loaded: LoadedInstance, policy: str = "none",
                       risk_lambda: float | None = None, risk_alpha: float | None = None,
                       options: SolveOptions | None = None,
                       rp: float | None = None) -> dict[str, Any]:
    """WS, EEV, EVPI = RP - WS and VSS = EEV - RP, in objective units.

    WS solves each scenario alone (with positive probability) and weights the
    optima. The expected-value problem replaces availability, shocked prices
    and demand by their means; EEV fixes its contracts and re-solves the second
    stage over all scenarios. A part that is infeasible is reported as None.
    """
    check_run_settings(risk_lambda, risk_alpha, options)
    inst = loaded.instance
    data = problem_data(loaded, risk_lambda, risk_alpha)

    def optimum(d: ProblemData, fix: tuple[np.ndarray, np.ndarray] | None = None
                ) -> tuple[Any, Any]:
        built = build(d, resolve_policy(inst, d, policy))
        if fix is not None:
            fix_shared_decisions(built, *fix)
        res = solve_model(built, options)
        return (res.objective if res.optimal else None), (built, res)

    if rp is None:
        rp, _ = optimum(data)
    ws_parts = []
    for w, p in enumerate(data.probability):
        if p > 0:
            value, _ = optimum(scenario_data(data, w))
            ws_parts.append(None if value is None else p * value)
    ws = None if any(v is None for v in ws_parts) else float(sum(ws_parts))
    ev, (ev_built, ev_res) = optimum(expected_value_data(data))
    eev = None
    if ev is not None:   # EEV fixes what the EV plan decides at nodes of every scenario
        ix = ev_built.index
        ev_x = np.zeros(ev_built.data.capacity_t.shape)
        ev_x[ix.x_index[:, 0], ix.x_index[:, 1]] = ev_res.values["x"]
        ev_y = np.zeros(ev_built.data.projects.decide.shape) if data.projects is not None \
            else np.zeros((0, len(data.periods)))
        if len(ix.y_index):
            ev_y[ix.y_index[:, 0], ix.y_index[:, 1]] = ev_res.values["y"] * ix.y_unit
        eev, _ = optimum(data, fix=(ev_x, ev_y))
    return {
        "rp": rp, "ws": ws, "ev": ev, "eev": eev,
        "evpi": None if rp is None or ws is None else rp - ws,
        "vss": None if rp is None or eev is None else eev - rp,
    }
