"""Analysis layer: stochastic metrics by hand, warm sweeps against cold solves, compare."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import base_instance, hedge_instance, spot
from model.studies.compare import compare_policies
from model.studies.metrics import stochastic_metrics
from model.studies.sweep import parse_cap_range, sweep_cap
from model.input.builders import synthetic_instance
from model.errors import UsageError
from model.input.instance import instance_from_dict, load_instance

ROOT = Path(__file__).resolve().parents[1]


def test_stochastic_metrics_by_hand() -> None:
    """RP = 2,250 (see test_known_answers). WS: normal alone 1,000; ban alone
    contracts 5 t at 30 + 300 and is 5 t short: 1,650 + 5,000 = 6,650;
    WS = 0.8*1,000 + 0.2*6,650 = 2,130, EVPI = 120. EV problem: CN availability
    0.8 -> 80 t >= 10, no contract, EV = 1,000. EEV with x = 0: normal 1,000,
    ban 10,000: 2,800; VSS = 2,800 - 2,250 = 550."""
    m = stochastic_metrics(instance_from_dict(hedge_instance()))
    assert m["rp"] == pytest.approx(2250)
    assert m["ws"] == pytest.approx(2130)
    assert m["evpi"] == pytest.approx(120)
    assert m["ev"] == pytest.approx(1000)
    assert m["eev"] == pytest.approx(2800)
    assert m["vss"] == pytest.approx(550)


def test_parse_cap_range() -> None:
    assert parse_cap_range("1.0:0.3:0.05") == pytest.approx(
        [1.0 - 0.05 * i for i in range(15)])
    assert parse_cap_range("0.3:0.5:0.1") == pytest.approx([0.3, 0.4, 0.5])
    assert parse_cap_range("0.65,0.5") == [0.65, 0.5]
    for bad in ("1:0.3:0", "a:b:c", "1.2", ""):
        with pytest.raises(UsageError):
            parse_cap_range(bad)


@pytest.mark.parametrize("stage, per", [("both", "element"), ("refining", "group"),
                                        ("mining", "element")])
def test_warm_sweep_equals_cold_solves(stage: str, per: str) -> None:
    """Each warm-started sweep point matches a cold build and solve (HiGHS warm
    starts have had bugs: keep this check)."""
    loaded = instance_from_dict(synthetic_instance(6, 4, 3, 5, seed=3))
    caps = [1.0, 0.8, 0.6, 0.4, 0.7]
    warm = sweep_cap(loaded, caps, "none", stage, per)
    cold = sweep_cap(loaded, caps, "none", stage, per, warm=False)
    assert (warm.status == "optimal").all()
    np.testing.assert_allclose(warm.objective.astype(float), cold.objective.astype(float),
                               rtol=1e-7)
    np.testing.assert_allclose(warm.expected_shortage_t.astype(float),
                               cold.expected_shortage_t.astype(float), rtol=1e-6, atol=1e-6)


def test_tightening_the_cap_never_lowers_cost() -> None:
    loaded = load_instance(ROOT / "instances" / "example.yaml")
    frontier = sweep_cap(loaded, parse_cap_range("1.0:0.3:0.1"))
    cost = frontier.objective.astype(float).to_numpy()
    assert (np.diff(cost) >= -1e-6 * np.abs(cost[:-1])).all()
    assert frontier.max_share_of_demand_refining.astype(float).max() <= 1.0 + 1e-9


def test_sweep_reports_infeasible_points_and_goes_on(tmp_path: Path) -> None:
    """A budget of 1,500 holds at cap 1 (cost 1,000) and 0.5 (50*10 + 50*20 = 1,500)
    but not at 0.3 (30*10 + 70*20 = 1,700); after it, 1.0 solves again."""
    inst = base_instance(
        sources=[spot("cn", "CN", {"Nd": {"capacity": 1000, "price": 10}}),
                 spot("au", "AU", {"Nd": {"capacity": 1000, "price": 20}})],
        policies={"budget": {"budget": {"amount": 1500}}})
    frontier = sweep_cap(instance_from_dict(inst), [0.5, 0.3, 1.0], "budget")
    assert frontier.status.tolist() == ["optimal", "infeasible", "optimal"]
    assert frontier.objective.tolist()[0] == pytest.approx(1500)
    assert frontier.objective.tolist()[2] == pytest.approx(1000)


def test_compare_rows_and_deltas() -> None:
    loaded = load_instance(ROOT / "instances" / "example.yaml")
    table, runs = compare_policies(loaded, ["none", "crma", "no-china"])
    assert table.policy.tolist() == ["none", "crma", "no-china"]
    base = table.iloc[0]
    for _, row in table.iterrows():
        assert row.delta_expected_cost == pytest.approx(row.expected_cost - base.expected_cost)
        assert row.avoided_expected_shortage_t == pytest.approx(
            base.expected_shortage_t - row.expected_shortage_t)
        assert 0 <= row.hhi_of_deliveries_refining <= 1
    nochina = table.set_index("policy").loc["no-china"]
    assert nochina.china_share_of_deliveries_mining == 0 and nochina.china_share_of_deliveries_refining == 0
    assert table.set_index("policy").loc["crma", "max_share_of_demand_refining"] <= 0.65 + 1e-9
    crma = table.set_index("policy").loc["crma"]
    assert "65 % cap on CN-mined" in crma.binding
    assert json.loads(crma.binding_rows)[0]["constraint"] == "max_single_country_share"


def test_compare_and_sweep_commands_write_folders(tmp_path: Path) -> None:
    import subprocess
    import sys

    inst = str(ROOT / "instances" / "example.yaml")
    cli = [sys.executable, "-m", "model.cli"]
    cmp_dir, sw_dir = tmp_path / "cmp", tmp_path / "sw"
    subprocess.run([*cli, "compare", inst, "-p", "none", "-p", "crma", "--out", str(cmp_dir),
                    "--stochastic-metrics"], check=True, capture_output=True)
    for name in ("comparison.csv", "comparison.md", "comparison.xlsx", "comparison.png",
                 "summary.json", "instance.yaml", "runs/crma/summary.json"):
        assert (cmp_dir / name).exists(), name
    import pandas as pd

    table = pd.read_csv(cmp_dir / "comparison.csv")
    assert {"ws", "eev", "evpi", "vss"} <= set(table.columns)
    subprocess.run([*cli, "sweep", inst, "--cap", "1.0:0.5:0.25", "--out", str(sw_dir)],
                   check=True, capture_output=True)
    frontier = pd.read_csv(sw_dir / "frontier.csv")
    assert list(frontier.columns[:6]) == ["cap", "status", "objective", "expected_cost",
                                          "expected_shortage_t", "worst_shortage_t"]
    assert frontier.cap.tolist() == [1.0, 0.75, 0.5]
    assert (sw_dir / "frontier.png").stat().st_size > 1000
    summary = json.loads((sw_dir / "summary.json").read_text())
    assert summary["kind"] == "sweep" and summary["stage"] == "both"


def test_solve_stochastic_metrics_in_summary(solve) -> None:
    from model.studies.metrics import stochastic_metrics as sm

    run = solve(hedge_instance())
    m = sm(run.loaded, rp=run.summary["objective"])
    assert m["vss"] == pytest.approx(550)
