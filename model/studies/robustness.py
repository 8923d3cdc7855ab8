"""How sure are we: the plan's numbers and decisions over ranges of its inputs (issue 25).

Given an instance, the policies to compare (the first is *the plan*) and a ranges
file (model.input.ranges), :func:`robustness` solves the instance many times, each
a variant with some inputs moved, on one warm-started model per policy
(model.solve.warm.WarmSession), and reports (docs/robustness.md):

* **one at a time**: every input at its low and its high value, the others as
  the instance gives them: the plan's expected cost and shortage per element
  and each policy's expected cost at each end, and the swing of the plan's
  cost (the tornado);
* **switch points**: for every decision of the plan (each project's expected
  size and, where it can be decided in the first period, its size decided
  then; each source's expected contracted tonnes over the horizon) and the
  ranking of the policies by expected cost, the values of each input inside
  its range where the decision stops being (or starts being again) what the
  plan decides at the instance's values. Each range is scanned on a grid of
  ``grid`` steps (8 by default, low and high included), and each step where
  a decision changes is bisected down to ``resolution`` of the range (1e-3 by
  default: at most 7 halvings of a step of 1/8) or MAX_BISECTION_STEPS. A
  change and its reversal inside one grid step are not seen;
* **draws**: N joint draws of every input from its distribution, seeded
  (numpy's PCG64(seed); draw k takes the k-th block of one uniform number per
  input, in file order, and each input's value is its distribution's quantile at
  that number, so the first n draws of a longer run are the n draws of a shorter
  one): the distribution of the plan's cost, its shortage and each policy's
  cost, and how often each conclusion of the plan holds.

A decision *changes* (DESIGN.md) when a project's size moves by more than 0.01
of its maximum size, a source's horizon tonnes by more than 1 % and more than
1 t, or the order of the policies by expected cost changes (two costs within
1e-7 of each other, relatively, count as a tie).

Inputs are applied in file order, each input's paths at once
(model.input.ranges.variant): setting a scenario's probability rescales the
other scenarios in proportion, so in a draw a later scenario probability
rescales the earlier ones with the rest (their values in the instance solved
are written beside the drawn ones in draws.csv, ``effective[...]``); a group's
scenario probabilities keep their scaled values together.
"""

from __future__ import annotations

import math
import numbers
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd

from ..errors import InstanceError, UsageError
from ..input.instance import LoadedInstance
from ..input.ranges import RangeInput, Ranges, value_at, variant
from ..safety import (MAX_BISECTION_STEPS, MAX_DRAWS, MAX_GRID_STEPS, check_count,
                      check_settings)
from ..solve.solve import SolveOptions
from ..solve.warm import SessionStats, WarmSession

DEFAULT_GRID = 8
DEFAULT_RESOLUTION = 1e-3       # of an input's range: where a bisection stops
SIZE_TOLERANCE = 0.01           # of a project's maximum size
TONNES_SHARE, TONNES_FLOOR = 0.01, 1.0
TIE = 1e-7                      # relative: two policies' costs this close are a tie
ASSOCIATION = 0.15              # a failing conclusion names inputs whose mean position
                                # (0 low, 1 high) differs by at least this much
Progress = Callable[[str, int, "int | None"], None]


# --------------------------------------------------------------------------- outcomes
@dataclass
class Answer:
    """One policy's answer for one variant."""

    status: str
    message: str = ""
    expected_cost: float | None = None
    shortage_t: dict[str, float] = field(default_factory=dict)   # expected, per element


@dataclass
class Outcome:
    """A variant solved: the plan's status, each policy's answer, the plan's decisions."""

    status: str                       # the plan's status; "invalid": the variant is refused
    message: str = ""
    answers: dict[str, Answer] = field(default_factory=dict)
    decisions: dict[str, float] = field(default_factory=dict)
    effective: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "optimal"

    def ranking(self, policies: list[str]) -> str | None:
        """The policies by expected cost, cheapest first ("a < b = c"), or None when one
        is missing or not optimal."""
        costs = []
        for p in policies:
            a = self.answers.get(p)
            if a is None or a.status != "optimal" or a.expected_cost is None:
                return None
            costs.append((a.expected_cost, p))
        costs.sort(key=lambda c: c[0])
        text = costs[0][1]
        for (prev, _), (cost, name) in zip(costs, costs[1:]):
            tie = abs(cost - prev) <= TIE * max(abs(cost), abs(prev), 1.0)
            text += (" = " if tie else " < ") + name
        return text


def changed(name: str, a: Any, b: Any, max_size: dict[str, float]) -> bool:
    """Whether decision `name` differs between values `a` and `b` (module docstring)."""
    if name == "ranking" or a is None or b is None:
        return a != b
    if name.startswith(("size[", "first_size[")):
        project = name[name.index("[") + 1:-1]
        return abs(a - b) > SIZE_TOLERANCE * max_size.get(project, 1.0)
    return abs(a - b) > max(TONNES_SHARE * max(abs(a), abs(b)), TONNES_FLOOR)


def decision_words(name: str, value: Any) -> str:
    """A decision's value for people: "0.78 of full size", "1,234 t", a ranking."""
    if value is None:
        return "not solved"
    if name == "ranking":
        return str(value)
    if name.startswith(("size[", "first_size[")):
        return f"{value:.2f} of full size"
    return f"{value:,.0f} t"


class Evaluator:
    """Solves variants of an instance (inputs set to values) under every policy on
    kept warm sessions, remembering each answer (a bisection and the one-at-a-time
    ends share points)."""

    def __init__(self, loaded: LoadedInstance, inputs: list[RangeInput], policies: list[str],
                 risk_lambda: float | None, risk_alpha: float | None,
                 options: SolveOptions | None, warm: bool, effective: list[str]) -> None:
        self.loaded, self.inputs, self.policies = loaded, inputs, policies
        self.risk_lambda, self.risk_alpha, self.options = risk_lambda, risk_alpha, options
        self.sessions = {p: WarmSession(p, options, warm) for p in policies}
        self.cache: dict[tuple[tuple[int, float], ...], Outcome] = {}
        self.effective = effective          # paths whose value in the variant is recorded
        self.variants = 0                   # variants built (validated)
        self.solves = 0                     # policy solves
        self.seconds = 0.0
        self._last: tuple[Any, Any, Any] | None = None    # (key, variant, data)
        self.max_size: dict[str, float] = {}
        self.first_period: str = ""

    def __call__(self, settings: tuple[tuple[int, float], ...],
                 every_policy: bool = True) -> Outcome:
        """The outcome of the variant with input i set to x for each (i, x) of
        `settings` (in file order); the plan's policy always, the others when
        `every_policy`."""
        need = self.policies if every_policy else self.policies[:1]
        have = self.cache.get(settings)
        if have is not None and (have.status == "invalid" or
                                 all(p in have.answers for p in need)):
            return have
        t0 = time.perf_counter()
        try:
            loaded, data = self._variant(settings)
        except (InstanceError, UsageError) as err:
            out = Outcome("invalid", str(err))
            self.cache[settings] = out
            self.seconds += time.perf_counter() - t0
            return out
        out = have or Outcome("unsolved")
        for p in need:
            if p in out.answers:
                continue
            answer, decisions = self._solve(p, loaded, data, p == self.policies[0])
            out.answers[p] = answer
            if p == self.policies[0]:
                out.status, out.message, out.decisions = answer.status, answer.message, \
                    decisions
        if self.effective and not out.effective:
            from ..input.builders import instance_to_dict

            plain = instance_to_dict(loaded.instance)
            out.effective = {path: float(value_at(plain, path)) for path in self.effective}
        self.cache[settings] = out
        self.seconds += time.perf_counter() - t0
        return out

    def _variant(self, settings: tuple[tuple[int, float], ...]) -> tuple[Any, Any]:
        from ..input.data import problem_data

        if self._last is not None and self._last[0] == settings:
            return self._last[1], self._last[2]
        loaded = variant(self.loaded, [(self.inputs[i], x) for i, x in settings]) \
            if settings else self.loaded
        data = problem_data(loaded, self.risk_lambda, self.risk_alpha)
        self.variants += 1
        self._last = (settings, loaded, data)
        return loaded, data

    def _solve(self, policy: str, loaded: LoadedInstance, data: Any,
               plan: bool) -> tuple[Answer, dict[str, float]]:
        self.solves += 1
        if data.risk_lambda >= 1.0:          # the Pyomo tie-break: a cold solve each time
            from ..api import solve_instance

            run = solve_instance(loaded, policy, self.risk_lambda, self.risk_alpha,
                                 self.options)
            built, result = run.built, run.result
        else:
            built, result = self.sessions[policy].solve(loaded.instance, data)
        if not result.has_solution or not result.optimal:
            return Answer(result.status, result.message), {}
        return self._numbers(built, result, plan)

    def _numbers(self, built: Any, result: Any, plan: bool) -> tuple[Answer, dict[str, float]]:
        from ..analysis.results import cost_breakdown, solution_arrays

        d = built.data
        sol = solution_arrays(built, result)
        p = d.probability
        cost = float(cost_breakdown(d, sol)["cost"].to_numpy() @ p)
        shortage = np.einsum("etw,w->e", sol.shortage_t, p)
        answer = Answer("optimal", "", cost, {e: float(v) for e, v in zip(d.elements, shortage)})
        if not plan:
            return answer, {}
        decisions: dict[str, float] = {}
        pj = d.projects
        if pj is not None and pj.n and sol.built_size is not None:
            size = np.einsum("ptw,w->p", sol.built_size, p)
            first = sol.built_size[:, 0, :] @ p
            for j, pid in enumerate(pj.ids):
                self.max_size[pid] = float(pj.max_size[j])
                decisions[f"size[{pid}]"] = float(size[j])
                if pj.decide[j, 0] and pj.decide[j, 1:].any():   # decided now or later
                    decisions[f"first_size[{pid}]"] = float(first[j])
        per_arc = np.einsum("ktw,w->k", sol.contracted_t, p)
        ids = d.sources["id"].to_numpy()
        tonnes = pd.Series(per_arc).groupby(ids[d.arc_source], sort=False).sum()
        for sid in d.sources["id"]:
            decisions[f"tonnes[{sid}]"] = float(tonnes.get(sid, 0.0))
        self.first_period = str(d.periods[0])
        return answer, decisions

    def stats(self) -> SessionStats:
        total = SessionStats()
        for s in self.sessions.values():
            total.add(s.stats)
        return total


# --------------------------------------------------------------------------- the study
@dataclass
class RobustnessResult:
    """Everything a robustness study found (docs/outputs.md, the robustness folder)."""

    loaded: LoadedInstance
    ranges: Ranges
    policies: list[str]
    base: Outcome
    one_at_a_time: pd.DataFrame
    switch_points: pd.DataFrame
    draws: pd.DataFrame
    conclusions: pd.DataFrame
    settings: dict[str, Any]
    timing: dict[str, Any]

    @property
    def all_optimal(self) -> bool:
        """Every variant solved to optimality under every policy it was solved for."""
        return bool(self.settings.get("not_optimal", 0) == 0)


def check_study(policies: list[str], draws: int, grid: int, resolution: float,
                seed: int) -> None:
    """The study's settings in range (UsageError otherwise)."""
    if not policies:
        raise UsageError("robustness needs at least one --policy (the first is the plan)")
    check_count("--draws", draws, MAX_DRAWS, least=0)
    check_count("--grid", grid, MAX_GRID_STEPS, least=1)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise UsageError(f"--seed must be a non-negative integer, got {seed!r}")
    if isinstance(resolution, bool) or not isinstance(resolution, (int, float)) or \
            not 0 < resolution < 1:
        raise UsageError(f"the resolution must lie in (0, 1), got {resolution!r}")


def robustness(loaded: LoadedInstance, ranges: Ranges, policies: list[str] | None = None,
               draws: int = 200, seed: int = 0, grid: int = DEFAULT_GRID,
               resolution: float = DEFAULT_RESOLUTION, switch_points: bool = True,
               risk_lambda: float | None = None, risk_alpha: float | None = None,
               options: SolveOptions | None = None, warm: bool = True,
               progress: Progress | None = None) -> RobustnessResult:
    """The robustness study of `loaded` over `ranges` (module docstring).

    `policies` (default ["none"]) are compared; the first is the plan whose
    decisions are followed. ``warm=False`` solves every variant cold (for checking
    and benchmarking; the answers are the same).
    """
    from ..formulation.policies import check_policy, policy_names

    policies = list(dict.fromkeys(policies or ["none"]))
    check_study(policies, draws, grid, resolution, seed)
    check_settings(risk_lambda, risk_alpha)
    known = policy_names(loaded.instance)
    for p in policies:
        check_policy(p, known)
    report = progress or (lambda what, done, total: None)
    inputs = ranges.inputs
    shared = [inp for inp in inputs if inp.sums_with is not None and
              sum(o.sums_with == inp.sums_with for o in inputs) > 1]
    ev = Evaluator(loaded, inputs, policies, risk_lambda, risk_alpha, options, warm,
                   [inp.paths[0] for inp in shared])
    t0 = time.perf_counter()
    many = len(policies) > 1
    report("the plan at the instance's values", 0, 1)
    base = ev((), every_policy=True)
    if not base.ok:
        raise UsageError(f"policy {policies[0]} is {base.status} at the instance's own values "
                         f"({base.message}): nothing to measure robustness against")
    oat = _one_at_a_time(ev, inputs, policies, base, report)
    t1 = time.perf_counter()
    switch = _switch_points(ev, inputs, policies, base, grid, resolution, many, report) \
        if switch_points else _empty_switch()
    t2 = time.perf_counter()
    table = _draws(ev, inputs, policies, base, draws, seed, shared, report)
    t3 = time.perf_counter()
    conclusions = _conclusions(ev, inputs, policies, base, table, switch)
    stats = ev.stats()
    not_optimal = sum(1 for o in ev.cache.values()
                      if any(a.status != "optimal" for a in o.answers.values())
                      or o.status == "invalid")
    settings = {"policies": policies, "draws": draws, "seed": seed, "grid": grid,
                "resolution": resolution, "switch_points": switch_points,
                "warm": warm, "risk": {"lambda": risk_lambda, "alpha": risk_alpha},
                "ranges_file": ranges.file, "ranges_sha256": ranges.sha256,
                "inputs": [inp.name for inp in inputs], "variants": ev.variants,
                "solves": ev.solves, "not_optimal": not_optimal,
                "base": {"expected_cost": {p: a.expected_cost for p, a in base.answers.items()},
                         "decisions": base.decisions,
                         "ranking": base.ranking(policies) if many else None}}
    n_warm, n_cold = stats.warm, stats.cold
    timing = {"seconds": round(t3 - t0, 3), "one_at_a_time_seconds": round(t1 - t0, 3),
              "switch_points_seconds": round(t2 - t1, 3), "draws_seconds": round(t3 - t2, 3),
              "variants": ev.variants, "solves": ev.solves,
              "warm_solves": n_warm, "cold_solves": n_cold,
              "branch_and_bound_solves": stats.branch_and_bound,
              "build_seconds": round(stats.build_seconds, 3),
              "warm_seconds": round(stats.warm_seconds, 3),
              "cold_seconds": round(stats.cold_seconds, 3),
              "branch_and_bound_seconds": round(stats.branch_and_bound_seconds, 3),
              "mean_warm_solve_seconds": round(stats.warm_seconds / n_warm, 6)
              if n_warm else None,
              "median_warm_solve_seconds": round(float(np.median(stats.warm_times)), 6)
              if n_warm else None,
              "mean_cold_solve_seconds": round(stats.cold_seconds / n_cold, 6)
              if n_cold else None,
              "median_cold_solve_seconds": round(float(np.median(stats.cold_times)), 6)
              if n_cold else None}
    return RobustnessResult(loaded, ranges, policies, base, oat, switch, table, conclusions,
                            settings, timing)


# --------------------------------------------------------------------------- one at a time
def _one_at_a_time(ev: Evaluator, inputs: list[RangeInput], policies: list[str],
                   base: Outcome, report: Progress) -> pd.DataFrame:
    elements = list(base.answers[policies[0]].shortage_t)
    plan = policies[0]
    rows = []
    for i, inp in enumerate(inputs):
        report(f"one at a time: {inp.label}", i, len(inputs))
        ends = {end: ev(((i, getattr(inp, end)),), every_policy=True)
                for end in ("low", "high")}
        row: dict[str, Any] = {"input": inp.name, "label": inp.label,
                               "paths": "; ".join(inp.paths),
                               "scale": "factor" if inp.factor else "value",
                               "dist": inp.dist, "base": inp.base,
                               "low": inp.value(inp.low), "high": inp.value(inp.high)}
        for end, out in ends.items():
            row[f"status_{end}"] = out.status
        costs = {end: (out.answers[plan].expected_cost if plan in out.answers else None)
                 for end, out in ends.items()}
        base_cost = base.answers[plan].expected_cost
        for end in ("low", "high"):
            row[f"expected_cost_{end}"] = costs[end]
        row["cost_swing"] = abs(costs["high"] - costs["low"]) \
            if None not in costs.values() else None
        for end in ("low", "high"):
            row[f"delta_expected_cost_{end}"] = costs[end] - base_cost \
                if costs[end] is not None and base_cost is not None else None
        for end, out in ends.items():
            answer = out.answers.get(plan)
            for e in elements:
                row[f"expected_shortage_t_{end}[{e}]"] = answer.shortage_t.get(e) \
                    if answer is not None and answer.status == "optimal" else None
        if len(policies) > 1:
            for p in policies:
                for end, out in ends.items():
                    a = out.answers.get(p)
                    row[f"cost_{end}[{p}]"] = a.expected_cost if a is not None else None
            for p in policies[1:]:
                a, b = base.answers.get(p), base.answers.get(plan)
                row[f"delta_cost_base[{p}]"] = a.expected_cost - b.expected_cost \
                    if a is not None and b is not None and a.expected_cost is not None \
                    and b.expected_cost is not None else None
                for end, out in ends.items():
                    a, b = out.answers.get(p), out.answers.get(plan)
                    row[f"delta_cost_{end}[{p}]"] = a.expected_cost - b.expected_cost \
                        if a is not None and b is not None and a.expected_cost is not None \
                        and b.expected_cost is not None else None
            for end, out in ends.items():
                row[f"ranking_{end}"] = out.ranking(policies) or ""
        for end, out in ends.items():
            row[f"decisions_changed_{end}"] = "; ".join(
                f"{_decision_label(n)} {decision_words(n, base.decisions[n])} -> "
                f"{decision_words(n, out.decisions.get(n))}"
                for n in base.decisions if out.ok and changed(
                    n, base.decisions[n], out.decisions.get(n), ev.max_size)) \
                if out.ok else f"not solved: {out.status}"
        row["note"] = inp.note
        rows.append(row)
    report("one at a time", len(inputs), len(inputs))
    table = pd.DataFrame(rows)
    return table.sort_values("cost_swing", ascending=False, kind="stable",
                             na_position="last").reset_index(drop=True)


def _decision_label(name: str) -> str:
    """"size[gbd-conversion]" -> "gbd-conversion size"."""
    if name == "ranking":
        return "ranking of the policies"
    kind, _, rest = name.partition("[")
    what = {"size": "expected size", "first_size": "size decided in the first period",
            "tonnes": "contracted tonnes"}.get(kind, kind)
    return f"{rest[:-1]} {what}"


# --------------------------------------------------------------------------- switch points
SWITCH_COLUMNS = ["decision", "input", "label", "at", "lo", "hi", "value_below", "value_above",
                  "plan_value", "as_planned", "kind", "steps", "text"]
DISCRETE = ("size[", "first_size[", "ranking")   # also bisected between two other values
MAX_NESTED_CHANGES = 4          # changes looked for again on either side of one found


def _empty_switch() -> pd.DataFrame:
    return pd.DataFrame(columns=SWITCH_COLUMNS)


def grid_values(inp: RangeInput, steps: int) -> list[float]:
    """`steps` + 1 equally spaced values from low to high (an integer input: the
    distinct integers among them)."""
    if inp.high == inp.low:
        return [inp.value(inp.low)]
    xs = [inp.low + (inp.high - inp.low) * j / steps for j in range(steps + 1)]
    if inp.integer:
        return list(dict.fromkeys(int(round(x)) for x in xs))
    xs[0], xs[-1] = inp.low, inp.high                  # exactly the ends (no round-off)
    return xs


def _switch_points(ev: Evaluator, inputs: list[RangeInput], policies: list[str],
                   base: Outcome, grid: int, resolution: float, many: bool,
                   report: Progress) -> pd.DataFrame:
    """Every change of a decision along each input's range (the module docstring): where
    it stops (or starts) being as planned, and for project sizes and the ranking also
    where it moves between two other values (a source's tonnes between two other values
    mostly drift with the input, not switch: those are left to the tables)."""
    names = list(base.decisions) + (["ranking"] if many else [])
    plan_value = {n: (base.ranking(policies) if n == "ranking" else base.decisions[n])
                  for n in names}

    def value(out: Outcome, name: str) -> Any:
        if not out.ok:
            return None
        return out.ranking(policies) if name == "ranking" else out.decisions.get(name)

    def planned(v: Any, name: str) -> bool:
        return not changed(name, plan_value[name], v, ev.max_size)

    def changes(i: int, inp: RangeInput, name: str, lo: float, hi: float, out_lo: Outcome,
                out_hi: Outcome, depth: int) -> list[dict[str, Any]]:
        """The changes of `name` in [lo, hi]: one bisected, then the two sides again (a
        grid step may hold two changes: 0 -> 0.66 -> 0.78)."""
        a, b = value(out_lo, name), value(out_hi, name)
        if a is None or b is None:
            return []
        if planned(a, name) != planned(b, name):
            def same(v: Any, side: bool = planned(a, name)) -> bool:
                return planned(v, name) == side
        elif name.startswith(DISCRETE) and changed(name, a, b, ev.max_size):
            def same(v: Any) -> bool:
                return not changed(name, a, v, ev.max_size)
        else:
            return []
        row, (lo2, o_lo2), (hi2, o_hi2) = _bisect(ev, i, inp, name, lo, hi, out_lo, out_hi,
                                                  same, resolution, value, plan_value[name],
                                                  planned)
        if depth >= MAX_NESTED_CHANGES:
            return [row]
        return changes(i, inp, name, lo, lo2, out_lo, o_lo2, depth + 1) + [row] + \
            changes(i, inp, name, hi2, hi, o_hi2, out_hi, depth + 1)

    rows = []
    for i, inp in enumerate(inputs):
        report(f"switch points: {inp.label}", i, len(inputs))
        xs = grid_values(inp, grid)
        outs = [ev(((i, x),), every_policy=many) for x in xs]
        for name in names:
            for j in range(len(xs) - 1):
                rows += changes(i, inp, name, xs[j], xs[j + 1], outs[j], outs[j + 1], 0)
    report("switch points", len(inputs), len(inputs))
    if not rows:
        return _empty_switch()
    return pd.DataFrame(rows)[SWITCH_COLUMNS]


def _bisect(ev: Evaluator, i: int, inp: RangeInput, name: str, lo: float, hi: float,
            out_lo: Outcome, out_hi: Outcome, same: Callable[[Any], bool], resolution: float,
            value: Callable[[Outcome, str], Any], plan: Any,
            planned: Callable[[Any, str], bool]
            ) -> tuple[dict[str, Any], tuple[float, Outcome], tuple[float, Outcome]]:
    """Narrow [lo, hi], where decision `name` is `same` (as at lo) at lo and not at hi, to
    `resolution` of the input's range (an integer input: to adjacent integers). The
    switch point's row, and the final ends with their outcomes."""
    width = resolution * (inp.high - inp.low)
    steps = 0
    while steps < MAX_BISECTION_STEPS:
        if inp.integer:
            if hi - lo <= 1:
                break
            mid: float = int((lo + hi) // 2)
        else:
            if hi - lo <= width:
                break
            mid = (lo + hi) / 2.0
        out = ev(((i, mid),), every_policy=name == "ranking")
        steps += 1
        v = value(out, name)
        if v is None:          # not solved in between: stop here, the interval says so
            break
        if same(v):
            lo, out_lo = mid, out
        else:
            hi, out_hi = mid, out
    at = hi if inp.integer else (lo + hi) / 2.0
    v_lo, v_hi = value(out_lo, name), value(out_hi, name)
    jump = changed(name, v_lo, v_hi, ev.max_size)
    side = "below" if planned(v_lo, name) else "above" if planned(v_hi, name) else ""

    def shown(v: Any) -> str:
        return decision_words(name, v) + (" (as planned)" if planned(v, name) else "")

    text = (f"{_decision_label(name)}: {shown(v_lo)} below {inp.label} = {_number(at)}, "
            f"{shown(v_hi)} above")
    return {"decision": name, "input": inp.name, "label": inp.label, "at": at, "lo": lo,
            "hi": hi, "value_below": v_lo, "value_above": v_hi,
            "plan_value": plan, "as_planned": side, "kind": "jump" if jump else "gradual",
            "steps": steps, "text": text}, (lo, out_lo), (hi, out_hi)


def _number(x: float) -> str:
    """A value of an input for a sentence: up to 4 significant digits, no e-notation."""
    a = abs(x)
    if a >= 1e5:
        return f"{x:,.0f}"
    if a >= 100:
        return f"{x:,.1f}".rstrip("0").rstrip(".")
    if x == int(x):
        return f"{int(x)}"
    return f"{x:.4g}" if a >= 1e-4 else f"{x:.3e}"


# --------------------------------------------------------------------------- draws
def draw_values(inputs: list[RangeInput], n: int, seed: int) -> np.ndarray:
    """(n, inputs) values: draw k is the k-th block of one uniform number per input in
    file order from PCG64(seed), each input's value its distribution's quantile there."""
    rng = np.random.Generator(np.random.PCG64(seed))
    out = np.zeros((n, len(inputs)))
    for k in range(n):
        u = rng.random(len(inputs))
        out[k] = [inp.quantile(x) for inp, x in zip(inputs, u)]
    return out


def _draws(ev: Evaluator, inputs: list[RangeInput], policies: list[str], base: Outcome,
           n: int, seed: int, shared: list[RangeInput], report: Progress) -> pd.DataFrame:
    values = draw_values(inputs, n, seed)
    plan = policies[0]
    elements = list(base.answers[plan].shortage_t)
    rows = []
    for k in range(n):
        if k % 5 == 0:
            report("draws", k, n)
        settings = tuple((i, inp.value(values[k, i])) for i, inp in enumerate(inputs))
        out = ev(settings, every_policy=True)
        row: dict[str, Any] = {"draw": k, "status": out.status,
                               "message": "" if out.ok else out.message}
        for (_, x), inp in zip(settings, inputs):
            row[inp.name] = x
        for inp in shared:
            row[f"effective[{inp.paths[0]}]"] = out.effective.get(inp.paths[0])
        a = out.answers.get(plan)
        row["expected_cost"] = a.expected_cost if a is not None else None
        for e in elements:
            row[f"expected_shortage_t[{e}]"] = a.shortage_t.get(e) \
                if a is not None and a.status == "optimal" else None
        if len(policies) > 1:
            for p in policies:
                b = out.answers.get(p)
                row[f"cost[{p}]"] = b.expected_cost if b is not None else None
                row[f"status[{p}]"] = b.status if b is not None else out.status
            row["ranking"] = out.ranking(policies) or ""
        for name in base.decisions:
            row[name] = out.decisions.get(name)
        rows.append(row)
    report("draws", n, n)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- conclusions
def _conclusions(ev: Evaluator, inputs: list[RangeInput], policies: list[str],
                 base: Outcome, draws: pd.DataFrame, switch: pd.DataFrame) -> pd.DataFrame:
    """What the plan concludes at the instance's values, and how often it holds in the
    draws: each project funded or not (and a funded one's size), each source's
    contracted tonnes, the ranking and the cheapest policy (with several)."""
    tests: list[tuple[str, str, str, str, Callable[[pd.Series], Any]]] = []
    d = base.decisions
    periods = ev.loaded.instance.periods
    span = f"{periods[0]}-{periods[-1]}" if len(periods) > 1 else str(periods[0])
    for name in [n for n in d if n.startswith("size[")]:
        pid = name[5:-1]
        tol = SIZE_TOLERANCE * ev.max_size.get(pid, 1.0)
        funded = d[name] > tol
        tests.append((f"funded[{pid}]", name, f"{pid} is {'funded' if funded else 'not funded'}",
                      "yes" if funded else "no",
                      lambda r, name=name, tol=tol, funded=funded:
                      None if pd.isna(r[name]) else (r[name] > tol) == funded))
        if funded:
            tests.append((name, name, f"{pid} is built to {d[name]:.2f} of its full size "
                                      "(expected over the scenarios)", f"{d[name]:.2f}",
                          _holds(name, d[name], ev.max_size)))
        first = f"first_size[{pid}]"
        if first in d and d[first] > tol and abs(d[first] - d[name]) > tol:
            tests.append((first, first, f"{pid}: {d[first]:.2f} of its full size decided in "
                                        f"{ev.first_period}", f"{d[first]:.2f}",
                          _holds(first, d[first], ev.max_size)))
    for name in [n for n in d if n.startswith("tonnes[")]:
        if d[name] <= TONNES_FLOOR:
            continue
        sid = name[7:-1]
        tests.append((name, name, f"{sid}: {d[name]:,.0f} t contracted over {span} "
                                  "(expected, all elements; within 1 %)",
                      f"{d[name]:,.0f} t", _holds(name, d[name], ev.max_size)))
    if len(policies) > 1:
        ranking = base.ranking(policies) or ""
        cheapest = ranking.split(" ")[0]
        tests.append(("ranking", "ranking", f"policies by expected cost: {ranking}", ranking,
                      lambda r, ranking=ranking: None if not r["ranking"]
                      else r["ranking"] == ranking))
        tests.append(("cheapest", "ranking", f"{cheapest} is the cheapest policy", cheapest,
                      lambda r, c=cheapest: None if not r["ranking"]
                      else r["ranking"].split(" ")[0] == c and
                      not r["ranking"].startswith(f"{c} = ")))
    ok = draws[draws["status"] == "optimal"] if len(draws) else draws
    rows = []
    for key, decision, statement, plan_text, test in tests:
        verdicts = [test(r) for _, r in ok.iterrows()] if len(ok) else []
        known = [v for v in verdicts if v is not None]
        share = sum(known) / len(known) if known else None
        every = bool(known) and all(known)
        rows.append({"conclusion": key, "decision": decision, "statement": statement,
                     "plan": plan_text, "holds_share": share, "draws": len(known),
                     "holds_in_every_draw": every if known else None,
                     "flipped_by": _flipped_by(key, decision, switch, base, ev) if
                     not every else "",
                     "draws_failing_with": _associated(inputs, ok, verdicts)
                     if known and not every else ""})
    return pd.DataFrame(rows, columns=["conclusion", "decision", "statement", "plan",
                                       "holds_share", "draws", "holds_in_every_draw",
                                       "flipped_by", "draws_failing_with"])


def _holds(name: str, plan: float, max_size: dict[str, float]) -> Callable[[pd.Series], Any]:
    return lambda r: None if pd.isna(r[name]) else not changed(name, plan, r[name], max_size)


def _flipped_by(key: str, decision: str, switch: pd.DataFrame, base: Outcome,
                ev: Evaluator) -> str:
    """The switch points (one input at a time) where this conclusion starts or stops
    holding: "Tb shortage penalty >= 9,357,910" (it holds on that side)."""
    if switch is None or not len(switch):
        return ""
    rows = switch[switch["decision"] == decision]
    out = []
    for _, r in rows.iterrows():
        a, b = r["value_below"], r["value_above"]
        if key.startswith("funded["):
            pid = key[7:-1]
            tol = SIZE_TOLERANCE * ev.max_size.get(pid, 1.0)
            funded = base.decisions[decision] > tol
            below, above = (a > tol) == funded, (b > tol) == funded
        elif key == "cheapest":
            first = str(base.ranking(ev.policies) or "").split(" ")[0]
            below, above = (str(a or "").split(" ")[0] == first,
                            str(b or "").split(" ")[0] == first)
        else:
            below, above = r["as_planned"] == "below", r["as_planned"] == "above"
        if below == above:
            continue
        out.append((str(r["label"]), "<=" if below else ">=", float(r["at"])))
    words = []
    for label in dict.fromkeys(o[0] for o in out):   # per input: its bounds together
        mine = sorted(o for o in out if o[0] == label)
        ups = [x for _, side, x in mine if side == ">="]
        downs = [x for _, side, x in mine if side == "<="]
        if len(ups) == 1 and len(downs) == 1 and ups[0] < downs[0]:
            words.append(f"{_number(ups[0])} <= {label} <= {_number(downs[0])}")
        else:
            words += [f"{label} {side} {_number(x)}" for _, side, x in mine]
    return ("holds for " + " or ".join(words) if len(words) == 1 else
            "holds for " + "; ".join(words) + " (each with the other inputs as the "
            "instance gives them)") if words else ""


def _associated(inputs: list[RangeInput], draws: pd.DataFrame, verdicts: list[Any]) -> str:
    """The inputs whose drawn values differ most where the conclusion fails: the mean
    position in the range (0 low, 1 high) where it fails against where it holds."""
    fail = np.array([v is False for v in verdicts])
    hold = np.array([v is True for v in verdicts])
    if not fail.any() or not hold.any():
        return ""
    found = []
    for inp in inputs:
        if inp.high == inp.low or inp.name not in draws.columns:
            continue
        x = (pd.to_numeric(draws[inp.name], errors="coerce").to_numpy(float) - inp.low) / \
            (inp.high - inp.low)
        gap = float(np.nanmean(x[fail]) - np.nanmean(x[hold]))
        if abs(gap) >= ASSOCIATION:
            found.append((abs(gap), inp, gap))
    found.sort(key=lambda f: -f[0])
    return "; ".join(f"{inp.label} {'high' if gap > 0 else 'low'}" for _, inp, gap in found[:3])


def quantiles(draws: pd.DataFrame, columns: list[str],
              levels: tuple[float, ...] = (0.05, 0.5, 0.95)) -> pd.DataFrame:
    """Mean and quantiles of each column over the optimal draws (a row per column)."""
    ok = draws[draws["status"] == "optimal"] if len(draws) else draws
    rows = []
    for c in columns:
        if c not in ok.columns:
            continue
        v = pd.to_numeric(ok[c], errors="coerce").dropna().to_numpy(float)
        row: dict[str, Any] = {"measure": c, "draws": len(v),
                               "mean": float(v.mean()) if len(v) else math.nan}
        for q in levels:
            row[f"p{int(round(q * 100)):02d}"] = float(np.quantile(v, q)) if len(v) \
                else math.nan
        rows.append(row)
    return pd.DataFrame(rows)


def inputs_table(ranges: Ranges) -> pd.DataFrame:
    """The ranges file as a table: one row per input (ranges.csv, the report's list)."""
    return pd.DataFrame([{
        "input": inp.name, "label": inp.label, "paths": "; ".join(inp.paths),
        "scale": "factor" if inp.factor else "value", "base": inp.base,
        "low": inp.value(inp.low), "high": inp.value(inp.high), "dist": inp.dist,
        "mode": inp.mode, "median": inp.median, "sigma": inp.sigma,
        "sums_with": inp.sums_with or "", "note": inp.note} for inp in ranges.inputs])
