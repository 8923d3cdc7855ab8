"""Sweeps: the frontier of cost and shortage along a cap or any input.

* :func:`sweep_cap` adds one ``max_single_country_share`` rule on top of a
  policy and moves its share along a grid. It builds and hands over the model
  once and changes only right-hand sides, so every point after the first is a
  warm-started re-solve (`sourcing sweep --cap`).
* :func:`sweep_param` sets any input (model.input.overrides) to each of a list
  of values (`sourcing sweep --param --values`).
* :func:`parse_cap_range` and :func:`parse_values` read the grids of the
  command line, bounded before any list is made.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import pandas as pd

from ..analysis.results import solution_arrays, summary_metrics
from ..api import check_run_settings, solve_instance
from ..errors import UsageError
from ..formulation.policies import check_policy, policy_names, resolve_policy
from ..input.data import ProblemData, problem_data
from ..input.instance import LoadedInstance
from ..input.schema import CountryCapRule, Policy
from ..safety import MAX_CAP_POINTS, check_caps
from ..solve.decompose import element_blocks, sweep_blocks, variant_blocks
from ..solve.solve import SolveOptions
from .compare import STAGES, stages_of


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
    from ..analysis.diagnose import explain_infeasibility
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
