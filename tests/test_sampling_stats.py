"""Sampling statistics of a sampled instance (issue 23): `solve --replications R --evaluate M`.

A hand-derived chain: Dy 10 t in 2026 and 2027, no stock; CN spot at 100, an AU
contract at 300 with a 10 % fee (30/t), decided at the start; shortage 1,000/t.
Two regimes, normal and ban (no CN), start normal, P(ban | normal) = 0.06,
P(ban | ban) = 0.5. Periods are independent (no stock, contracts at the root):
with P the probability of a ban in a period and x the tonnes contracted for it,

    cost(x, P) = 1,000 + 9,000 P + x (30 - 700 P),

so the best contract is 10 t when P > 3/70 and 0 below. P(ban 2026) = 0.06,
P(ban 2027) = 0.94 x 0.06 + 0.06 x 0.5 = 0.0864: both above 3/70, so the
optimum over every path is 1,420 + 1,472.8 = 2,892.8. A sample of N paths has
its own frequencies P^ and solves to sum_t min_x cost(x, P^_t); a plan that
contracts nothing in a period where it should costs 700 P - 30 per tonne more
there.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import base_instance, contract, spot, write_instance
from model.studies.sampling import (
    evaluation_seed,
    replication_seed,
    sampling_statistics,
    t_quantile,
)
from model.api import solve_instance
from model.cli import app
from model.errors import UsageError
from model.formulation.matrix import FixedDecisions
from model.input.instance import instance_from_dict
from model.input.regimes import scenario_paths

CLI = [sys.executable, "-m", "model.cli"]
BAN = {"match": {"mined_in": "CN"}, "availability": 0.0}
P_BAN = [0.06, 0.94 * 0.06 + 0.06 * 0.5]           # P(ban) in 2026 and 2027
THRESHOLD = 30 / 700                                 # contract iff P(ban) above this


def chain(paths: int | None = 15, seed: int = 0, **top: Any) -> dict[str, Any]:
    """The module docstring's chain, sampled (`paths`, `seed`) or enumerated (None)."""
    model: dict[str, Any] = {
        "regimes": {"start": "normal",
                    "states": {"normal": {}, "ban": {"disruptions": [BAN]}},
                    "transition": {"normal": {"normal": 0.94, "ban": 0.06},
                                   "ban": {"normal": 0.5, "ban": 0.5}}}}
    if paths is not None:
        model["sample"] = {"paths": paths, "seed": seed}
    return base_instance(
        periods=[2026, 2027], elements=["Dy"], demand={"Dy": 10},
        stock={"capacity": {"default": 0}},
        sources=[spot("cn", "CN", {"Dy": {"capacity": 100, "price": 100}}),
                 contract("au", "AU", {"Dy": {"capacity": 10, "price": 300}}, fee=0.1)],
        scenarios=model, **top)


def cost(x: float, p: float) -> float:
    """A period's expected cost with x t contracted and a ban of probability p."""
    return 1000 + 9000 * p + x * (30 - 700 * p)


def best(p: float) -> float:
    """The contract a period with ban probability p gets (10 t or none)."""
    return 10.0 if p > THRESHOLD else 0.0


def frequencies(paths: int, seed: int) -> list[float]:
    """P^(ban) per period of the sample (paths, seed) of the chain."""
    sp = scenario_paths(instance_from_dict(chain(paths, seed)).instance)
    return [float(sp.probability[sp.regime[:, t] == 1].sum()) for t in range(2)]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=600)


# --------------------------------------------------------------------------- by hand
def test_the_enumerated_optimum_and_a_fixed_first_stage_by_hand() -> None:
    """Every path: 2,892.8. The first stage fixed at no contract in 2026 and 10 t in
    2027 (the rest re-solved): 1,540 + 1,472.8 = 3,012.8, with the element-block route
    and with the one-model route alike."""
    loaded = instance_from_dict(chain(None))
    assert solve_instance(loaded).summary["objective"] == pytest.approx(2892.8)
    fixed = FixedDecisions({(1, "Dy"): (np.array([0.0, 10.0]), np.array([True, True]))})
    for decompose in (True, False):
        run = solve_instance(loaded, fixed=fixed, decompose=decompose)
        assert run.summary["objective"] == pytest.approx(cost(0, P_BAN[0]) + cost(10, P_BAN[1]))
        assert run.summary["objective"] == pytest.approx(3012.8)
        alloc = run.tables["allocation"]
        assert alloc.set_index("period").contracted_t.to_dict() == {2026: 0.0, 2027: 10.0}


def test_every_figure_by_hand() -> None:
    """Replication r's optimum is sum_t min_x cost(x, P^_t) of its own sample (seed from
    SeedSequence([seed, 1, r])); the candidate is sample 0's contracts; f_r(x̂) is the
    candidate's cost on sample r; G_r their difference; the intervals are the t
    intervals of the documented formulas; the upper bound is the candidate on the
    evaluation sample (SeedSequence([seed, 2])), its interval from the path costs."""
    N, R, M, seed = 15, 4, 300, 11
    s = sampling_statistics(instance_from_dict(chain(N, seed)), replications=R, evaluate=M)
    assert s["status"] == "optimal" and s["replications"] == R and s["evaluate"] == M
    x_hat = [best(p) for p in frequencies(N, seed)]
    v, f = [], []
    for r in range(1, R + 1):
        freq = frequencies(N, replication_seed(seed, r))
        v.append(sum(cost(best(p), p) for p in freq))
        f.append(sum(cost(x, p) for x, p in zip(x_hat, freq)))
    assert s["lower_bound"]["values"] == pytest.approx(v)
    assert s["gap"]["candidate_values"] == pytest.approx(f)
    g = np.array(f) - np.array(v)
    assert s["gap"]["values"] == pytest.approx(g.tolist(), abs=1e-7)
    assert s["lower_bound"]["mean"] == pytest.approx(np.mean(v))
    assert s["lower_bound"]["half_width"] == pytest.approx(
        t_quantile(0.975, R - 1) * np.std(v, ddof=1) / math.sqrt(R))
    assert s["gap"]["upper"] == pytest.approx(
        g.mean() + t_quantile(0.95, R - 1) * np.std(g, ddof=1) / math.sqrt(R), abs=1e-7)
    # the evaluation: per path, cost_t(x̂_t, ban or not); U the mean over the M paths
    sp = scenario_paths(instance_from_dict(chain(M, evaluation_seed(seed))).instance)
    draws = np.rint(sp.probability * M)
    # a ban: fee 30 x, AU 300 x, shortage 1,000 (10 - x); else fee 30 x and CN 1,000
    per_path = sum(np.where(sp.regime[:, t] == 1, 10000 - 670 * x_hat[t], 1000 + 30 * x_hat[t])
                   for t in range(2))
    mean = float(draws @ per_path / M)
    sd = math.sqrt(float(draws @ (per_path - mean) ** 2) / (M - 1))
    assert s["upper_bound"]["value"] == pytest.approx(mean)
    assert s["upper_bound"]["half_width"] == pytest.approx(
        t_quantile(0.975, M - 1) * sd / math.sqrt(M))
    assert s["candidate"] == {"objective": pytest.approx(
        sum(cost(best(p), p) for p in frequencies(N, seed))), "contracts_fixed": 2,
        "builds_fixed": 0}


def test_seeds_are_documented_and_results_reproducible() -> None:
    """The same seed gives the same figures; another seed other samples. Replication 0
    is the instance's own seed; the derived seeds are SeedSequence words."""
    assert replication_seed(7, 0) == 7
    assert replication_seed(7, 1) == int(np.random.SeedSequence([7, 1, 1]).generate_state(
        1, np.uint64)[0])
    assert evaluation_seed(7) == int(np.random.SeedSequence([7, 2]).generate_state(
        1, np.uint64)[0])
    assert len({replication_seed(7, r) for r in range(1, 50)} | {evaluation_seed(7), 7}) == 51
    a, b = (sampling_statistics(instance_from_dict(chain(15, 3)), replications=3, evaluate=50)
            for _ in range(2))
    other = sampling_statistics(instance_from_dict(chain(15, 4)), replications=3, evaluate=50)
    for s in (a, b, other):
        s.pop("seconds")
    assert a == b
    assert other["replication_seeds"] != a["replication_seeds"]


# --------------------------------------------------------------------------- coverage
def test_the_gap_interval_covers_the_true_gap_at_its_nominal_rate() -> None:
    """Over 100 seeds (N = 15 paths, R = 4 replications, M = 400), the one-sided 95 %
    gap interval [0, Gbar + t s_G / sqrt(R)] covers the true gap f(x̂) - f* of that
    seed's candidate (computed on every path, by hand), and the upper bound's 95 %
    interval covers f(x̂). The true gap is 0 when sample 0 contracts as it should;
    the runs with a positive gap (a period whose sample saw no ban) are the ones that
    test the interval: about 40 of them.

    Tolerance: if an interval covered at exactly 95 %, the coverage of n runs would
    be binomial with standard deviation sqrt(0.95 x 0.05 / n); it falls more than
    3 of them below 95 % with probability below 0.2 % (n = 40: 0.85; n = 100: 0.885).
    MMW's interval is conservative here (E[G_r] >= the true gap), so it covers
    more often than 95 % (42 of the 43 runs with a positive gap); the estimate
    Gbar alone, without its interval, covers 32 of them and fails. The upper
    bound's interval covers f(x̂) in 90 of the 100 runs (the same interval over
    2,000 evaluation samples of this chain: 94.6 %)."""
    f_star = sum(cost(best(p), p) for p in P_BAN)
    assert f_star == pytest.approx(2892.8)
    runs, covered_gap, positive, covered_u = 100, 0, 0, 0
    for seed in range(runs):
        s = sampling_statistics(instance_from_dict(chain(15, 1000 + seed)), replications=4,
                                evaluate=400)
        x_hat = [best(p) for p in frequencies(15, 1000 + seed)]
        f_x = sum(cost(x, p) for x, p in zip(x_hat, P_BAN))
        gap = f_x - f_star
        if gap > 1e-9:
            positive += 1
            covered_gap += s["gap"]["upper"] >= gap - 1e-7
        ub = s["upper_bound"]
        covered_u += ub["low"] <= f_x <= ub["high"]
    assert positive >= 25, positive          # enough runs where the interval is tested
    tol = 3 * math.sqrt(0.95 * 0.05 / positive)
    assert covered_gap / positive >= 0.95 - tol, (covered_gap, positive)
    assert covered_u / runs >= 0.95 - 3 * math.sqrt(0.95 * 0.05 / runs), covered_u


# --------------------------------------------------------------------------- what is fixed
def test_the_candidate_is_what_every_sampled_path_shares() -> None:
    """With a first period every path shares (the regime of 2026 is normal for sure:
    the transition into 2026 is `transition`, normal -> normal; `by_period` 2027 opens
    the ban), the 2026 build of a project and the 2027 contract signed a year ahead
    (lead time 1: decided at 2026's node) are first-stage decisions; the 2027 build is
    decided at 2027's nodes, which the sample splits, and is re-solved."""
    inst = chain(20, 5)
    inst["sources"][1]["lead_time"] = 1
    inst["scenarios"]["regimes"]["transition"] = {"normal": {"normal": 1.0},
                                                  "ban": {"normal": 1.0}}
    inst["scenarios"]["regimes"]["by_period"] = {2027: {
        "normal": {"normal": 0.7, "ban": 0.3}, "ban": {"normal": 0.5, "ban": 0.5}}}
    inst["projects"] = [{"id": "recycler", "source": "au", "capacity": {"Dy": 5},
                         "cost": 100}]
    s = sampling_statistics(instance_from_dict(inst), replications=2, evaluate=30)
    assert s["status"] == "optimal"
    assert s["candidate"]["contracts_fixed"] == 2     # au 2026 (root) and 2027 (2026's node)
    assert s["candidate"]["builds_fixed"] == 1        # recycler decided in 2026
    assert min(s["gap"]["values"]) >= -1e-6


# --------------------------------------------------------------------------- command line
def test_solve_with_replications_writes_and_reports_the_statistics(tmp_path: Path) -> None:
    path = write_instance(tmp_path, chain(15, 2))
    out = tmp_path / "run"
    proc = _run("solve", str(path), "--replications", "3", "--evaluate", "40", "--out",
                str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    s = json.loads(proc.stdout)["sampling"]
    written = json.loads((out / "summary.json").read_text())["sampling"]
    assert written["lower_bound"] == s["lower_bound"] and s["replications"] == 3
    assert s["gap"]["upper"] >= s["gap"]["mean"] >= -1e-7
    assert _run("verify", str(out)).returncode == 0
    assert _run("report", str(out)).returncode == 0
    page = (out / "report.html").read_text()
    assert 'id="sampling"' in page and "Mak, Morton and Wood" in page
    proc = _run("solve", str(path), "--replications", "2", "--out", str(tmp_path / "r2"))
    assert proc.returncode == 0 and "lower bound" in proc.stdout and "gap" in proc.stdout


@pytest.mark.parametrize("args, words", [
    (["--replications", "1"], "--replications must lie in [2"),
    (["--replications", "201"], "--replications must lie in [2, 200]"),
    (["--replications", "3", "--evaluate", "0"], "--evaluate must lie in [1"),
    (["--replications", "3", "--confidence", "1.5"], "--confidence must lie in"),
    (["--evaluate", "10"], "--evaluate and --confidence go with --replications"),
    (["--replications", "3", "--engine", "mpisppy"], "--replications belongs to the "
                                                      "default engine"),
])
def test_bad_options_exit_2_and_write_nothing(tmp_path: Path, args: list[str],
                                              words: str) -> None:
    path = write_instance(tmp_path, chain(15, 2))
    got = CliRunner().invoke(app, ["solve", str(path), *args, "--out", str(tmp_path / "run")])
    assert got.exit_code == 2 and words in got.stderr, got.stderr
    assert not (tmp_path / "run").exists()


def test_an_instance_without_a_sample_is_refused(tmp_path: Path) -> None:
    """Enumerated regimes, or a list: no sample to replicate (exit 2, naming `sample`)."""
    for inst in (chain(None), base_instance(sources=[spot("cn", "CN", {
            "Nd": {"capacity": 100, "price": 1}})])):
        path = write_instance(tmp_path, inst)
        got = CliRunner().invoke(app, ["solve", str(path), "--replications", "3", "--out",
                                       str(tmp_path / "run")])
        assert got.exit_code == 2 and "sample" in got.stderr, got.stderr
        assert not (tmp_path / "run").exists()
        with pytest.raises(UsageError, match="sample"):
            sampling_statistics(instance_from_dict(inst), replications=3)


def test_fixed_decisions_through_element_blocks_equal_the_one_model() -> None:
    """On an instance of several element blocks (the example's regimes, sampled), the
    first stage of one sample fixed on another: the blocks route (each block fixed
    on its own, scenarios merged per block) gives the one model's optimum."""
    from model.studies.sampling import sample_instance
    from model.formulation.matrix import first_stage_decisions
    from model.input.builders import instance_to_dict
    from model.input.instance import load_instance

    data = instance_to_dict(load_instance(Path(__file__).resolve().parents[1] / "instances" /
                                          "example_regimes.yaml").instance)
    data["scenarios"]["sample"] = {"paths": 60, "seed": 1}
    loaded = instance_from_dict(data)
    run = solve_instance(loaded)
    fixed = first_stage_decisions(run.data, run.solution.contracted_t, run.solution.built_size)
    assert fixed.n_contracts > 0
    other = sample_instance(loaded, 80, 99)
    blocks = solve_instance(other, fixed=fixed)
    one = solve_instance(other, fixed=fixed, decompose=False)
    assert blocks.summary["blocks"] > 1 and one.summary["blocks"] == 1
    assert blocks.summary["objective"] == pytest.approx(one.summary["objective"], rel=1e-9)
    free = solve_instance(other).summary["objective"]
    assert blocks.summary["objective"] >= free - 1e-6 * abs(free)
    alloc = blocks.tables["allocation"]
    root = alloc[alloc.node == "root"].set_index(["source", "element", "period"])
    mine = run.tables["allocation"]
    mine = mine[mine.node == "root"].set_index(["source", "element", "period"])
    assert root.contracted_t.to_dict() == pytest.approx(
        mine.contracted_t.reindex(root.index).to_dict())
