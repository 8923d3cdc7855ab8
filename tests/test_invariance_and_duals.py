"""Invariance of the stochastic model, and duals checked by nudging right-hand sides."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from model.input.instance import yaml_load

from conftest import base_instance, contract, spot

EXAMPLE = Path(__file__).resolve().parents[1] / "instances" / "example.yaml"


def _example() -> dict:
    return yaml_load(EXAMPLE.read_text())


def _rich_instance() -> dict:
    return base_instance(
        periods=[1, 2, 3], elements=["Nd", "Dy"], discount_rate=0.05,
        demand={"Nd": {1: 100, 2: 120, 3: 130}, "Dy": 20},
        shortage_penalty={"default": 1000, "Dy": 5000},
        stock={"holding_cost": {"default": 3}, "capacity": {"Dy": 15}},
        sources=[contract("au", "AU", {"Nd": {"capacity": 60, "price": 40},
                                       "Dy": {"capacity": 8, "price": 300}}, fee=0.1),
                 spot("cn", "CN", {"Nd": {"capacity": 500, "price": 30},
                                   "Dy": {"capacity": 50, "price": 200}}),
                 spot("rec", "JP", {"Dy": {"capacity": 3, "price": 600}}, recycled=True)])


def test_one_scenario_equals_deterministic(solve):
    det = _rich_instance()
    one = copy.deepcopy(det)
    one["scenarios"] = [{"id": "only", "probability": 1.0}]
    a, b = solve(det), solve(one)
    assert a.summary["objective"] == pytest.approx(b.summary["objective"], rel=1e-9)
    assert a.tables["allocation"].contracted_t.tolist() == pytest.approx(
        b.tables["allocation"].contracted_t.tolist(), abs=1e-7)


def test_identical_scenarios_equal_deterministic(solve):
    det = _rich_instance()
    twins = copy.deepcopy(det)
    twins["scenarios"] = [{"id": "a", "probability": 0.25}, {"id": "b", "probability": 0.75}]
    assert solve(det).summary["objective"] == pytest.approx(
        solve(twins).summary["objective"], rel=1e-9)


def test_cvar_with_one_scenario_is_the_cost(solve):
    run = solve(_rich_instance(), risk_lambda=0.5)
    assert run.summary["cvar"] == pytest.approx(run.summary["expected_cost"], rel=1e-9)
    assert run.summary["objective"] == pytest.approx(run.summary["expected_cost"], rel=1e-9)


def test_demand_duals_match_nudged_demand(solve):
    """Each demand dual equals the change in cost when that demand rises by 0.01 t."""
    inst = _example()
    for sc in inst["scenarios"]:
        sc.pop("demand_shocks", None)  # a shock would scale the nudge per scenario
    base = solve(inst)
    duals = base.tables["duals"]
    demand = duals[duals.constraint == "demand"]
    delta = 0.01
    checked = 0
    for row in demand.itertuples():
        nudged = copy.deepcopy(inst)
        d = nudged["demand"][row.element]
        nudged["demand"][row.element] = {p: (d[p] if isinstance(d, dict) else d)
                                         for p in nudged["periods"]}
        nudged["demand"][row.element][int(row.period)] += delta
        change = (solve(nudged).summary["objective"] - base.summary["objective"]) / delta
        assert change == pytest.approx(row.value, rel=1e-6, abs=1e-3), row
        checked += 1
    assert checked == 12


def test_cap_duals_match_nudged_share(solve):
    """Relaxing every cap row by share+0.001 changes cost by sum(value * 0.001 * D)."""
    inst = _example()
    base = solve(inst, "crma")
    duals = base.tables["duals"]
    cap = duals[duals.constraint == "max_single_country_share"]
    assert (cap.value <= 1e-9).all()
    assert (cap.value < -1).any(), "the 65 % cap binds somewhere in the example"
    demand = base.tables["balance"].set_index(["scenario", "element", "period"])["demand_t"]
    eps = 1e-4
    predicted = sum(r.value * eps * demand[r.scenario, r.element, r.period]
                    for r in cap.itertuples())
    nudged = copy.deepcopy(inst)
    nudged["policies"]["crma"]["max_single_country_share"]["share"] += eps
    actual = solve(nudged, "crma").summary["objective"] - base.summary["objective"]
    assert actual == pytest.approx(predicted, rel=1e-4)
