"""What-if on any input, version and help, base rules of generated scenarios (issue 16)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from model.studies.compare import compare_policies
from model.studies.sweep import sweep_param
from model.input.builders import instance_to_dict
from model.errors import InstanceError, UsageError
from model.input.instance import load_instance
from model.input.overrides import apply_override, overridden, parse_assignment

ROOT = Path(__file__).resolve().parents[1]
JAPAN = ROOT / "instances" / "japan_2026.yaml"
EXAMPLE = ROOT / "instances" / "example.yaml"
CLI = [sys.executable, "-m", "model.cli"]


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd, timeout=600)


def test_paths_reach_every_kind_of_input() -> None:
    data = instance_to_dict(load_instance(JAPAN).instance)
    out = apply_override(data, "sources[lynas-hree].supply.Dy.capacity", 150)
    assert next(s for s in out["sources"] if s["id"] == "lynas-hree")["supply"]["Dy"][
        "capacity"] == 150
    out = apply_override(data, "policies.crma65.max_single_country_share.share", 0.5)
    assert out["policies"]["crma65"]["max_single_country_share"][0]["share"] == 0.5
    out = apply_override(data, "projects[gbd-conversion].cost", 1e8)
    assert next(p for p in out["projects"] if p["id"] == "gbd-conversion")["cost"] == 1e8
    assert data["risk"]["lambda"] == 0.0          # the input is never changed in place


def test_a_scenario_probability_rescales_the_others() -> None:
    loaded = overridden(load_instance(JAPAN), [parse_assignment(
        "scenarios.jp-ban-2026.probability=0.3")])
    p = {w.id: w.probability for w in loaded.instance.scenarios}
    assert p["jp-ban-2026"] == 0.3
    assert sum(p.values()) == pytest.approx(1.0, abs=1e-12)
    # the others keep their proportions: normal 0.35 / 0.9 x 0.7
    assert p["normal"] == pytest.approx(0.35 / 0.9 * 0.7)


@pytest.mark.parametrize("assignment, error, words", [
    ("scenarios.nope.probability=0.3", UsageError, "no item with id 'nope'"),
    ("risk.lambda=5", InstanceError, "at most 1"),
    ("risk.lambda", UsageError, "path=value"),
    ("foo.bar=1", UsageError, "no key 'foo'"),
])
def test_bad_overrides_say_what_is_wrong(assignment: str, error: type, words: str) -> None:
    with pytest.raises(error, match=words):
        overridden(load_instance(JAPAN), [parse_assignment(assignment)])


def test_set_on_the_command_line(tmp_path: Path) -> None:
    """--set changes the solved instance; the run folder's instance.yaml is the changed
    one and verify passes; a bad --set exits 2 before any work."""
    base = _run("solve", str(EXAMPLE), "--out", str(tmp_path / "a"), "--json")
    changed = _run("solve", str(EXAMPLE), "--out", str(tmp_path / "b"), "--json",
                   "--set", "scenarios.china-heavy-ban.probability=0.5")
    assert base.returncode == changed.returncode == 0, changed.stderr
    a, b = json.loads(base.stdout), json.loads(changed.stdout)
    assert b["expected_cost"] > a["expected_cost"]
    assert a["overrides"] == [] and b["overrides"] == ["scenarios.china-heavy-ban.probability=0.5"]
    written = yaml.safe_load((tmp_path / "b" / "instance.yaml").read_text())
    assert {w["id"]: w["probability"] for w in written["scenarios"]}["china-heavy-ban"] == 0.5
    assert _run("verify", str(tmp_path / "b")).returncode == 0
    bad = _run("compare", str(EXAMPLE), "-p", "none", "--out", str(tmp_path / "c"),
               "--set", "risk.alpha=1")
    assert bad.returncode == 2 and "risk.alpha" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "c").exists()
    ok = _run("validate", str(EXAMPLE), "--set", "risk.lambda=0.5")
    assert ok.returncode == 0


def test_param_sweep_equals_separate_solves() -> None:
    """Each point of a --param sweep is the solve of the changed instance."""
    loaded = load_instance(EXAMPLE)
    values = [0.1, 0.4]
    sweep = sweep_param(loaded, "scenarios.china-heavy-ban.probability", values)
    for v, row in zip(values, sweep.itertuples()):
        variant = overridden(loaded, [("scenarios.china-heavy-ban.probability", v)])
        table, _ = compare_policies(variant, ["none"])
        assert row.expected_cost == pytest.approx(table.expected_cost.iloc[0], rel=1e-9)


def test_version_and_plain_help() -> None:
    from model import __version__

    v = _run("--version")
    assert v.returncode == 0 and __version__ in v.stdout and "HiGHS" in v.stdout
    h = _run("solve", "--help")
    assert "<bool>" not in h.stdout and "--force" in h.stdout
    assert "sources[lynas-hree]" in _run("compare", "--help").stdout   # no markup eaten


def test_generated_scenarios_keep_the_base_rules(tmp_path: Path) -> None:
    """The Japan instance's normal licensing regime (China Dy/Tb at 0.8) holds in every
    generated scenario unless --base-scenario none."""
    events = tmp_path / "events.yaml"
    events.write_text(yaml.safe_dump({"events": [
        {"id": "outage", "probability": 0.2,
         "disruptions": [{"match": {"id": "lynas-hree"}, "availability": 0.5}]}]}))
    kept, dropped = tmp_path / "kept.yaml", tmp_path / "dropped.yaml"
    assert _run("build", "scenarios", str(JAPAN), "--events", str(events), "--out",
                str(kept)).returncode == 0
    assert _run("build", "scenarios", str(JAPAN), "--events", str(events), "--out",
                str(dropped), "--base-scenario", "none").returncode == 0
    for w in load_instance(kept).instance.scenarios:
        assert any(r.match.mined_in == "CN" and r.availability == 0.8 for r in w.disruptions)
    normal = next(w for w in load_instance(dropped).instance.scenarios if w.id == "normal")
    assert normal.disruptions == []
    bad = _run("build", "scenarios", str(JAPAN), "--events", str(events), "--out",
               str(tmp_path / "x.yaml"), "--base-scenario", "nope")
    assert bad.returncode == 2 and "no scenario 'nope'" in bad.stderr


def test_cost_by_year_adds_up_and_the_comparison_splits_cash_and_penalty() -> None:
    """One money basis: at a nonzero discount rate the discounted money spent and
    penalty a year add up to the discounted cost a year, in the comparison and in
    cost_by_year, and the undiscounted split is kept beside it."""
    loaded = overridden(load_instance(EXAMPLE), [("discount_rate", 0.08)])
    assert loaded.instance.discount_rate == 0.08
    table, runs = compare_policies(loaded, ["none", "crma", "no-china"])
    run = runs["crma"]
    by_year = run.tables["cost_by_year"]
    per = by_year[by_year.scenario != "expected"]
    totals = (per.cash_discounted + per.penalty_discounted).groupby(per.scenario).sum()
    scen = run.tables["scenarios"].set_index("scenario").cost
    pd.testing.assert_series_equal(totals.sort_index(), scen.sort_index(), check_names=False,
                                   rtol=1e-9)
    T = len(loaded.instance.periods)
    disc = 1.08 ** -np.arange(T)
    expected = by_year[by_year.scenario == "expected"]
    # lambda = 0: the expected rows' discounted parts add up to the objective
    assert (expected.cash_discounted + expected.penalty_discounted).sum() == pytest.approx(
        run.summary["objective"], rel=1e-12)
    np.testing.assert_allclose(expected.cash_discounted, expected.cash * disc, rtol=1e-12)
    for name, row in table.set_index("policy").iterrows():
        # the parts add up to the headline, exactly (float tolerance)
        assert row.delta_cash_per_year + row.delta_penalty_per_year == pytest.approx(
            row.delta_expected_cost_per_period, rel=1e-12, abs=1e-6)
        assert row.cash_per_year + row.penalty_per_year == pytest.approx(
            row.expected_cost / T, rel=1e-12)
        ex = runs[name].tables["cost_by_year"].query("scenario == 'expected'")
        assert row.cash_per_year_undiscounted == pytest.approx(ex.cash.sum() / T, rel=1e-12)
        assert row.penalty_per_year_undiscounted == pytest.approx(ex.penalty.sum() / T,
                                                                  rel=1e-12)
    row = table.set_index("policy").loc["crma"]
    assert row.delta_cash_per_year != pytest.approx(row.delta_cash_per_year_undiscounted)
    # the comparison's cost by year keeps both bases and both deltas
    from model.analysis.results import cost_by_year_table

    both = cost_by_year_table(runs)
    mine = both[both.policy == "crma"].set_index("period")
    base = both[both.policy == "none"].set_index("period")
    np.testing.assert_allclose(mine.delta_cash_discounted,
                               mine.cash_discounted - base.cash_discounted)
    assert (mine.delta_cash_discounted + mine.delta_penalty_discounted).sum() / T == \
        pytest.approx(row.delta_expected_cost_per_period, rel=1e-12)

    # which suppliers and how much: sources by expected contracted tonnes a period
    alloc = run.tables["allocation"]
    expected = (alloc.contracted_t * alloc.node_probability).groupby(alloc.source).sum() / T
    expected = expected[expected > 0.05].sort_values(ascending=False)
    named = [part.rsplit(" ", 2) for part in row.largest_contracts.split("; ")]
    assert [n for n, _, _ in named] == list(expected.index[:3])
    for (name, tonnes, unit), value in zip(named, expected.iloc[:3]):
        assert unit == "t" and float(tonnes.replace(",", "")) == pytest.approx(value, abs=0.5)


def test_compare_reports_what_a_separate_solve_reports() -> None:
    """Plans and duals of a policy do not depend on the other policies compared."""
    loaded = load_instance(JAPAN)
    _, alone = compare_policies(loaded, ["crma65"])
    _, along = compare_policies(loaded, ["none", "crma50", "crma65"])
    a, b = alone["crma65"].tables, along["crma65"].tables
    pd.testing.assert_frame_equal(a["allocation"], b["allocation"])
    pd.testing.assert_frame_equal(a["duals"], b["duals"])



@pytest.mark.parametrize("path, values", [
    ("sources[lynas-hree].supply.Dy.premium", [1.0, 1.6, 3.0]),
    ("indices.cn-fob.Dy.2027", [250000, 400000]),
    ("scenarios.jp-ban-2026.probability", [0.05, 0.3]),
    ("projects[gbd-conversion].cost", [1e8, 4e8]),
])
def test_warm_param_sweep_equals_cold_solves(path: str, values: list) -> None:
    """Warm-started points (one HiGHS model per block, changes passed in) give the
    optimum of each separate solve."""
    loaded = load_instance(JAPAN)
    warm = sweep_param(loaded, path, values)
    cold = sweep_param(loaded, path, values, warm=False)
    assert warm.status.tolist() == cold.status.tolist()
    for a, b in zip(warm.objective, cold.objective):
        assert a == pytest.approx(b, rel=1e-7)
