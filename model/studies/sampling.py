"""Sampling statistics of a sampled instance: bounds and the optimality gap (MMW 1999).

An instance whose scenarios are a sample of its regimes and events
(`scenarios: {..., sample: {paths: N, seed: S}}`) is the sample average
approximation (SAA) of the problem on every path. ``sourcing solve
--replications R --evaluate M`` says how far its answer may be from that
problem's optimum (docs/mathematics.md, "Sampling statistics"):

* **Replication 0** is the instance's own sample: the run's answer. Its
  first-stage decisions form the candidate ``x̂``
  (:func:`model.formulation.matrix.first_stage_decisions`): what it decides at
  nodes holding every scenario (the root's contracts; a period's contracts
  and builds while every sampled path still has the same data).
* **Replications 1..R** are R further samples of N paths, each drawn with
  its own seed (:func:`replication_seed`), independent of sample 0 and of
  each other. Each is solved (optimum ``v_r``) and solved again with ``x̂``
  fixed (``f_r(x̂)``, the rest re-solved).
* **Lower bound**: ``L = mean(v_r)`` with the two-sided Student-t interval
  ``L ± t_{(1+c)/2, R-1} s_v / sqrt(R)`` at confidence ``c``; ``E[v_N]`` is at
  most the optimum of the problem on every path.
* **Upper bound**: ``x̂`` fixed on an independent sample of M paths
  (:func:`evaluation_seed`), the rest re-solved: ``U`` is that optimum; its
  interval is the t interval of the mean of the M per-path costs (without a
  CVaR term or ambiguity; the objective is then their mean).
* **Gap** (Mak, Morton and Wood 1999, with common random numbers, as
  mpi-sppy's ``mmw_ci``): ``G_r = f_r(x̂) - v_r >= 0``, ``Gbar = mean(G_r)``,
  the one-sided interval ``[0, Gbar + t_{c, R-1} s_G / sqrt(R)]`` (``s_G``
  with R - 1 degrees of freedom). The batches are replications 1..R, not
  sample 0: there ``G_0 = 0`` by construction, which would bias the estimate
  down and its spread too.

The samples are built as the instance's own (model.input.regimes,
``generate_paths`` then ``build_scenarios``) and solved through
:func:`model.api.solve_instance` as plain scenario lists, so every solve is the
exact model (decomposition, merging, information tree), and nothing touches
the instance's cached expansion.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Any, Callable

import numpy as np

from ..api import RunResult, check_run_settings, solve_instance
from ..errors import UsageError
from ..formulation.matrix import FixedDecisions, first_stage_decisions
from ..input.instance import LoadedInstance
from ..input.regimes import build_scenarios, generate_paths
from ..input.schema import Sample, ScenarioModel
from ..safety import (MAX_CONFIDENCE, MAX_REPLICATIONS, MAX_SAMPLE, MIN_CONFIDENCE,
                      check_count)
from ..solve.solve import SolveOptions
from ..analysis.results import cost_breakdown, solution_arrays

REPLICATION_STREAM = 1     # SeedSequence([seed, 1, r]): replication r
EVALUATION_STREAM = 2      # SeedSequence([seed, 2]): the evaluation sample


def _seed(*entropy: int) -> int:
    """A 64-bit seed from numpy's SeedSequence (the same on every machine)."""
    state = np.random.SeedSequence(list(entropy)).generate_state(1, np.uint64)
    return int(state[0])


def replication_seed(seed: int, r: int) -> int:
    """The seed of replication r >= 1 of an instance sampled with `seed`: the first
    64-bit word of ``numpy.random.SeedSequence([seed, 1, r])``. Replication 0 is the
    instance's own sample (`seed` itself)."""
    return seed if r == 0 else _seed(seed, REPLICATION_STREAM, r)


def evaluation_seed(seed: int) -> int:
    """The seed of the evaluation sample: ``SeedSequence([seed, 2])``'s first word."""
    return _seed(seed, EVALUATION_STREAM)


def sampled_model(loaded: LoadedInstance) -> ScenarioModel:
    """The instance's scenario model with its `sample`; a UsageError (exit 2) naming
    `sample` for any other instance."""
    model = loaded.instance.scenarios
    if not isinstance(model, ScenarioModel) or model.sample is None:
        raise UsageError(
            f"instance '{loaded.name}' has no sampled scenarios: --replications needs "
            "`scenarios: {regimes: ..., sample: {paths: N, seed: S}}` (a sample of its "
            "regimes and events); a list of scenarios or an enumeration is not a sample")
    return model


def sample_instance(loaded: LoadedInstance, paths: int, seed: int) -> LoadedInstance:
    """The instance with its scenarios drawn anew (`paths` paths, `seed`), as a plain
    list: the same data, rules and tree as if the instance had that `sample`."""
    model = sampled_model(loaded)
    drawn = model.model_copy(update={"sample": Sample(paths=paths, seed=seed)})
    scenarios = build_scenarios(drawn, generate_paths(drawn, loaded.instance.periods))
    inst = loaded.instance.model_copy(update={"scenarios": scenarios})
    return replace(loaded, instance=inst, path=None, raw=None, warnings=[])


def t_quantile(level: float, dof: int) -> float:
    """The Student-t quantile ``t_{level, dof}`` (scipy)."""
    from scipy.stats import t

    return float(t.ppf(level, dof))


def mean_interval(values: np.ndarray, confidence: float, weights: np.ndarray | None = None
                  ) -> tuple[float, float | None]:
    """(mean, half-width) of the two-sided t interval at `confidence` of i.i.d. values
    (`weights`: how often each value was drawn); half-width None below two draws."""
    w = np.ones(len(values)) if weights is None else np.asarray(weights, dtype=float)
    n = float(w.sum())
    mean = float(np.dot(w, values) / n)
    if n < 2:
        return mean, None
    var = float(np.dot(w, (np.asarray(values) - mean) ** 2) / (n - 1))
    return mean, t_quantile((1 + confidence) / 2, int(n) - 1) * math.sqrt(var / n)


def check_sampling(replications: int, evaluate: int | None, confidence: float) -> None:
    """The ranges of the options (UsageError naming them, as the CLI spells them)."""
    check_count("--replications", replications, MAX_REPLICATIONS, least=2)
    if evaluate is not None:
        check_count("--evaluate", evaluate, MAX_SAMPLE)
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or \
            not MIN_CONFIDENCE <= float(confidence) <= MAX_CONFIDENCE:
        raise UsageError(f"--confidence must lie in [{MIN_CONFIDENCE}, {MAX_CONFIDENCE}], "
                         f"got {confidence}")


def _optimum(run: RunResult, what: str) -> float:
    if not run.optimal or run.result.objective is None:
        raise _NotOptimal(f"{what} is {run.result.status}: {run.result.message}",
                          run.result.status)
    return float(run.result.objective)


class _NotOptimal(Exception):
    def __init__(self, message: str, status: str) -> None:
        super().__init__(message)
        self.status = status


def sampling_statistics(loaded: LoadedInstance, policy: str = "none", replications: int = 10,
                        evaluate: int | None = None, risk_lambda: float | None = None,
                        risk_alpha: float | None = None, options: SolveOptions | None = None,
                        confidence: float = 0.95, run: RunResult | None = None,
                        progress: Callable[[str, int, int], None] | None = None
                        ) -> dict[str, Any]:
    """The lower bound, upper bound and gap of a sampled instance (module docstring), as
    the ``sampling`` object of summary.json (docs/outputs.md).

    `run` is the instance's own solve under the same settings (replication 0),
    solved here if not given; `evaluate` defaults to the instance's sample size.
    `progress(what, done, total)` is called before each of the 2R + 1 solves and
    once at the end. A solve that is not optimal stops the study: the object then
    has that `status` and a `message` naming the solve, and null figures.
    """
    check_run_settings(risk_lambda, risk_alpha, options)
    model = sampled_model(loaded)
    check_sampling(replications, evaluate, confidence)
    start = time.perf_counter()
    paths, seed = model.sample.paths, model.sample.seed
    M = paths if evaluate is None else int(evaluate)
    R = int(replications)
    seeds = [replication_seed(seed, r) for r in range(1, R + 1)]
    out: dict[str, Any] = {
        "status": "optimal", "message": "", "paths": paths, "seed": seed,
        "replications": R, "evaluate": M, "confidence": float(confidence),
        "replication_seeds": seeds, "evaluation_seed": evaluation_seed(seed),
        "candidate": None, "lower_bound": None, "upper_bound": None, "gap": None,
        "seconds": None}
    total = 2 * R + 1
    report = progress or (lambda what, done, total: None)
    try:
        if run is None:
            run = solve_instance(loaded, policy, risk_lambda, risk_alpha, options)
        v0 = _optimum(run, "the instance's own sample (replication 0)")
        sol = run.solution
        fixed = first_stage_decisions(run.data, sol.contracted_t, sol.built_size)
        out["candidate"] = {"objective": v0, "contracts_fixed": fixed.n_contracts,
                            "builds_fixed": fixed.n_builds}
        v, f = [], []
        for r, s in enumerate(seeds, start=1):
            sample = sample_instance(loaded, paths, s)
            report(f"replication {r} of {R}: optimum", 2 * (r - 1), total)
            v.append(_optimum(solve_instance(sample, policy, risk_lambda, risk_alpha, options,
                                             tables=False), f"replication {r}"))
            report(f"replication {r} of {R}: the candidate's first stage fixed",
                   2 * r - 1, total)
            f.append(_optimum(solve_instance(sample, policy, risk_lambda, risk_alpha, options,
                                             fixed=fixed, tables=False),
                              f"replication {r} with the candidate's first stage fixed"))
        report(f"evaluation: the candidate on {M:,} paths", 2 * R, total)
        out["upper_bound"] = _evaluate(loaded, policy, risk_lambda, risk_alpha, options,
                                       fixed, M, out["evaluation_seed"], confidence)
    except _NotOptimal as err:
        out.update(status=err.status, message=str(err))
        out["seconds"] = round(time.perf_counter() - start, 3)
        report("done", total, total)
        return out
    v_a, g_a = np.array(v), np.array(f) - np.array(v)
    mean, half = mean_interval(v_a, confidence)
    out["lower_bound"] = {"mean": mean, "half_width": half, "low": mean - half,
                          "high": mean + half, "values": v_a.tolist()}
    g_mean = float(g_a.mean())
    g_sd = float(g_a.std(ddof=1))
    upper = g_mean + t_quantile(confidence, R - 1) * g_sd / math.sqrt(R)
    out["gap"] = {"mean": g_mean, "upper": upper,
                  "relative_upper": upper / abs(mean) if mean else None,
                  "values": g_a.tolist(), "candidate_values": list(map(float, f))}
    out["seconds"] = round(time.perf_counter() - start, 3)
    report("done", total, total)
    return out


def _evaluate(loaded: LoadedInstance, policy: str, risk_lambda: float | None,
              risk_alpha: float | None, options: SolveOptions | None, fixed: FixedDecisions,
              paths: int, seed: int, confidence: float) -> dict[str, Any]:
    """The candidate's first stage fixed on an independent sample of `paths` paths:
    the optimum, and (no CVaR term, no ambiguity) the t interval of the mean per-path
    cost."""
    sample = sample_instance(loaded, paths, seed)
    run = solve_instance(sample, policy, risk_lambda, risk_alpha, options, fixed=fixed,
                         tables=False)
    value = _optimum(run, f"the evaluation on {paths:,} paths with the candidate fixed")
    costs = cost_breakdown(run.data, solution_arrays(run.built, run.result))
    draws = np.rint(costs.probability.to_numpy() * paths)
    expected, half = mean_interval(costs.cost.to_numpy(float), confidence, draws)
    if run.data.scenario_costs_couple:   # CVaR or ambiguity: not the mean of path costs
        half = None
    return {"value": value, "half_width": half,
            "low": None if half is None else value - half,
            "high": None if half is None else value + half,
            "expected_cost": expected}
