"""Contracts as signed, caps on named countries, strategic stock that can be drawn (issue 14).

Known answers derived by hand in the docstrings; properties: committed 0 and a
price cap above every price change nothing, a soft floor with a very high
deficit cost is the hard floor, a cap naming every third country is the default cap.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import base_instance, contract, spot
from model.input.data import expected_value_data
from model.api import solve_instance
from model.input.builders import synthetic_instance
from model.input.data import problem_data
from model.input.instance import instance_from_dict
from model.formulation.matrix import build_matrix
from model.formulation.policies import resolve_policy


def committed_instance(committed: float = 6, min_take: float | None = None,
                       demand: float = 10, **top) -> dict:
    """Dy; CN spot at 100/t (100 t); AU contract at 300/t, fee 10 % (30/t), 10 t."""
    au = contract("au", "AU", {"Dy": {"capacity": 10, "price": 300, "committed": committed}},
                  fee=0.1)
    if min_take is not None:
        au["min_take"] = min_take
    return base_instance(elements=["Dy"], demand={"Dy": demand},
                         sources=[spot("cn", "CN", {"Dy": {"capacity": 100, "price": 100}}),
                                  au], **top)


def test_committed_volume_is_contracted_and_paid(solve) -> None:
    """Free: x = 0, cost 10 x 100 = 1,000. Committed 6: the fee 6 x 30 = 180 is paid,
    CN still delivers all 10 (cheaper than AU): 1,180. One tonne less committed saves 30."""
    free = solve(committed_instance(0))
    assert free.summary["objective"] == pytest.approx(1000.0)
    run = solve(committed_instance(6))
    assert run.summary["objective"] == pytest.approx(1180.0)
    alloc = run.tables["allocation"].set_index("source")
    assert alloc.loc["au", "contracted_t"] == pytest.approx(6.0)
    assert alloc.loc["au", "committed_t"] == pytest.approx(6.0)
    duals = run.tables["duals"]
    row = duals[duals.constraint == "committed"]
    assert len(row) == 1 and row.value.iloc[0] == pytest.approx(-30.0)


def test_minimum_take_with_resale_and_outage(solve) -> None:
    """Demand 2; AU committed 6 with min_take 1 must deliver a x 6; the surplus sells
    at 50/t. Normal (p 0.5): 6 delivered, 4 sold: 180 + 1,800 - 200 = 1,780.
    Outage (AU availability 0.5): at least 3 delivered, 1 sold: 180 + 900 - 50 = 1,030.
    E = 1,405."""
    inst = committed_instance(6, min_take=1.0, demand=2, resale_price={"Dy": 50},
                              scenarios=[{"id": "normal", "probability": 0.5},
                                         {"id": "outage", "probability": 0.5,
                                          "disruptions": [{"match": {"id": "au"},
                                                           "availability": 0.5}]}])
    run = solve(inst)
    assert run.summary["objective"] == pytest.approx(1405.0)
    bal = run.tables["balance"].set_index("scenario")
    assert bal.loc["normal", "surplus_t"] == pytest.approx(4.0)
    assert bal.loc["outage", "surplus_t"] == pytest.approx(1.0)
    sc = run.tables["scenarios"].set_index("scenario")
    assert sc.loc["normal", "resale_revenue"] == pytest.approx(200.0)


@pytest.mark.parametrize("multiplier, floor, cap, paid", [
    (0.5, 200, None, 200.0),      # 150 clipped up to the floor
    (2.0, None, 400, 400.0),      # 600 clipped down to the cap
    (2.0, 200, 1000, 600.0),      # inside the band: the shocked price
])
def test_price_floor_and_cap_clip_the_delivered_price(solve, multiplier: float, floor, cap,
                                                      paid: float) -> None:
    """One AU contract (no fee, 10 t at 300/t) is the only source of 10 t demand; the
    scenario's price shock is clipped: cost = 10 x paid."""
    sup = {"capacity": 10, "price": 300}
    if floor is not None:
        sup["price_floor"] = floor
    if cap is not None:
        sup["price_cap"] = cap
    inst = base_instance(elements=["Dy"], demand={"Dy": 10},
                         sources=[contract("au", "AU", {"Dy": sup})],
                         scenarios=[{"id": "shock", "probability": 1.0,
                                     "price_shocks": [{"multiplier": multiplier}]}])
    run = solve(inst)
    assert run.summary["objective"] == pytest.approx(10 * paid)
    assert run.tables["deliveries"].price.iloc[0] == pytest.approx(paid)


@pytest.mark.parametrize("countries, expected", [(None, 4900.0), (["CN"], 1700.0),
                                                 (["CN", "AU"], 4900.0)])
def test_cap_on_named_countries(solve, countries, expected: float) -> None:
    """Demand 10; CN spot 100/t, AU spot 200/t; cap 0.3. Every third country: 3 + 3
    and 4 t short at 1,000: 300 + 600 + 4,000 = 4,900. China alone: CN 3 + AU 7 = 1,700."""
    rule = {"share": 0.3}
    if countries is not None:
        rule["countries"] = countries
    inst = base_instance(elements=["Dy"], demand={"Dy": 10},
                         sources=[spot("cn", "CN", {"Dy": {"capacity": 100, "price": 100}}),
                                  spot("au", "AU", {"Dy": {"capacity": 100, "price": 200}})],
                         policies={"cap": {"max_single_country_share": rule}})
    run = solve(inst, "cap")
    assert run.summary["objective"] == pytest.approx(expected)


def stockpile_instance(emergency: bool, periods: int = 2, refill: int = 1,
                       deficit_cost: float | None = None) -> dict:
    """Dy 10 t/period, CN spot 100/t, holding 200/t, penalty 1,000/t, 5 t opening
    stock, a floor of half a period's demand (5 t) at the end of every period.
    A CN ban in period 2 with probability 0.1 (not announced in period 1).

    Hard floor: period 1 costs 1,000 + 5 x 200 = 2,000 in both scenarios (stocking
    ahead costs 0.9 x 200 - 0.1 x 700 > 0 per tonne); period 2: normal 1,000 +
    1,000, ban 10 t short and 5 t held: 11,000. E = 0.9 x 4,000 + 0.1 x 13,000 = 4,900.
    Released in the emergency: the ban draws the 5 t: 5,000, E = 3,600 + 700 = 4,300.
    """
    rule = {"days": 182.5, "refill": refill}
    if deficit_cost is not None:
        rule["deficit_cost"] = deficit_cost
    ban = {"match": {"mined_in": "CN"}, "periods": [2], "availability": 0}
    if emergency:
        ban["emergency"] = True
    return base_instance(
        periods=list(range(1, periods + 1)), elements=["Dy"], demand={"Dy": 10},
        shortage_penalty={"default": 1000},
        stock={"initial": {"Dy": 5}, "holding_cost": {"Dy": 200}},
        sources=[spot("cn", "CN", {"Dy": {"capacity": 100, "price": 100}})],
        scenarios=[{"id": "normal", "probability": 0.9},
                   {"id": "ban", "probability": 0.1, "disruptions": [ban]}],
        policies={"stock": {"min_stock_days": rule}})


@pytest.mark.parametrize("emergency, expected, ban_shortage", [(False, 4900.0, 10.0),
                                                               (True, 4300.0, 5.0)])
def test_a_stockpile_that_can_be_drawn(solve, emergency: bool, expected: float,
                                       ban_shortage: float) -> None:
    run = solve(stockpile_instance(emergency), "stock")
    assert run.summary["objective"] == pytest.approx(expected)
    sc = run.tables["scenarios"].set_index("scenario")
    assert sc.loc["ban", "shortage_t"] == pytest.approx(ban_shortage)
    floors = run.tables["stock_floors"].set_index(["scenario", "period"])
    assert bool(floors.loc[("ban", 2), "released"]) == emergency
    assert not floors.loc[("normal", 2), "released"]


def test_soft_floor_prices_the_deficit(solve) -> None:
    """Deficit cost 300/t (below the 1,000 penalty): the ban draws its 5 t and pays
    5 x 300 for the deficit: 5,000 + 1,500 + 2,000 = 8,500; normal keeps its stock
    (holding 200 < 300): 4,000. E = 3,600 + 850 = 4,450."""
    run = solve(stockpile_instance(False, deficit_cost=300), "stock")
    assert run.summary["objective"] == pytest.approx(4450.0)
    floors = run.tables["stock_floors"].set_index(["scenario", "period"])
    assert floors.loc[("ban", 2), "deficit_t"] == pytest.approx(5.0)
    assert run.tables["scenarios"].set_index("scenario").loc[
        "ban", "stock_deficit_cost"] == pytest.approx(1500.0)


def test_refill_keeps_the_floor_released_after_the_emergency(solve) -> None:
    """Three periods, the ban in period 2 only. refill 0: the floor binds again at the
    end of period 3, so the ban buys 5 t more (500) and holds them (1,000); refill 1
    spares both: E differs by 0.1 x 1,500 = 150."""
    zero = solve(stockpile_instance(True, periods=3, refill=0), "stock")
    one = solve(stockpile_instance(True, periods=3, refill=1), "stock")
    assert zero.summary["objective"] - one.summary["objective"] == pytest.approx(150.0)


def test_expected_value_problem_weights_a_released_floor() -> None:
    """In the EV problem the period-2 floor binds with probability 0.9: target 4.5 t."""
    loaded = instance_from_dict(stockpile_instance(True))
    ev = expected_value_data(problem_data(loaded))
    built = build_matrix(ev, resolve_policy(loaded.instance, ev, "stock"))
    rows = built.row_meta["min_stock_days"].set_index("period")["rhs"]
    assert rows.loc[1] == pytest.approx(5.0) and rows.loc[2] == pytest.approx(4.5)


def test_signed_terms_a_cap_forbids_are_explained(solve) -> None:
    """A plan cap of 50 % of 10 t lets AU contract 5 t; 8 t are committed: infeasible,
    and the message names the commitment. Excluding a source with signed volumes is
    refused before any solve."""
    inst = committed_instance(8)
    inst["policies"] = {"plan-cap": {"max_single_country_share": {
        "share": 0.5, "applies_to": "plan"}}, "no-au": {"exclude": [{"id": "au"}]}}
    run = solve(inst, "plan-cap")
    assert run.summary["status"] == "infeasible"
    assert "committed" in run.summary["message"] and "au" in run.summary["message"]
    run = solve(inst, "no-au")
    assert run.summary["status"] == "infeasible"
    assert "excludes au" in run.summary["message"]


# --------------------------------------------------------------------------- properties
def _synthetic(seed: int) -> dict:
    data = synthetic_instance(6, 3, 3, 4, seed=seed)
    data["risk"] = {"lambda": 0.0, "alpha": 0.9}
    return data


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 5000))
def test_neutral_terms_change_nothing(seed: int) -> None:
    """committed 0 everywhere, and a price cap above every price, give the same optimum."""
    base = _synthetic(seed)
    terms = copy.deepcopy(base)
    for src in terms["sources"]:
        for sup in src["supply"].values():
            sup["price_cap"] = 1e9
            if src["mode"] == "contract":
                sup["committed"] = 0
    a = solve_instance(instance_from_dict(base), "crma65")
    b = solve_instance(instance_from_dict(terms), "crma65")
    assert b.summary["objective"] == pytest.approx(a.summary["objective"], rel=1e-9)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 5000), share=st.sampled_from([0.4, 0.65]))
def test_naming_every_third_country_is_the_default_cap(seed: int, share: float) -> None:
    data = _synthetic(seed)
    third = sorted({s[k] for s in data["sources"] for k in ("mined_in", "refined_in")}
                   - {data["home"]})
    data["policies"] = {"all": {"max_single_country_share": {"share": share}},
                        "named": {"max_single_country_share": {"share": share,
                                                               "countries": third}}}
    loaded = instance_from_dict(data)
    a = solve_instance(loaded, "all")
    b = solve_instance(loaded, "named")
    assert b.summary["objective"] == pytest.approx(a.summary["objective"], rel=1e-9)


@pytest.mark.parametrize("emergency", [False, True])
def test_a_very_costly_deficit_is_the_hard_floor(emergency: bool) -> None:
    hard = solve_instance(instance_from_dict(stockpile_instance(emergency, periods=3)), "stock")
    soft = solve_instance(instance_from_dict(
        stockpile_instance(emergency, periods=3, deficit_cost=1e9)), "stock")
    assert soft.summary["objective"] == pytest.approx(hard.summary["objective"], rel=1e-9)
    assert np.allclose(soft.tables["stock_floors"].deficit_t, 0.0)


def test_bad_terms_are_refused_with_their_place() -> None:
    from model.errors import InstanceError

    over = committed_instance(12)      # above the 10 t capacity
    with pytest.raises(InstanceError, match=r"sources\[1\]\.supply\.Dy\.committed.*exceeds"):
        instance_from_dict(over)
    spot_take = committed_instance(0)
    spot_take["sources"][0]["min_take"] = 0.5
    with pytest.raises(InstanceError, match="contract sources only"):
        instance_from_dict(spot_take)
    home = committed_instance(0, policies={"p": {"max_single_country_share": {
        "share": 0.5, "countries": ["JP"]}}})
    with pytest.raises(InstanceError, match="home country"):
        instance_from_dict(home)
    band = committed_instance(0)
    band["sources"][1]["supply"]["Dy"].update(price_floor=500, price_cap=400)
    with pytest.raises(InstanceError, match="price_floor 500 is above price_cap 400"):
        instance_from_dict(band)
