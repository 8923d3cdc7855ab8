"""Known-answer instances: optima derived by hand in each docstring.

Every solve also passes the independent feasibility check (see conftest).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import base_instance, contract, hedge_instance, spot

APPROX = dict(rel=1e-9, abs=1e-6)


def _alloc(run, source, element="Nd", period=None):
    tab = run.tables["allocation"]
    sel = (tab.source == source) & (tab.element == element)
    if period is not None:
        sel &= tab.period == period
    return tab.loc[sel, "contracted_t"].sum()


def _delivered(run, source, scenario=None, element="Nd"):
    tab = run.tables["deliveries"]
    sel = (tab.source == source) & (tab.element == element)
    if scenario is not None:
        sel &= tab.scenario == scenario
    return tab.loc[sel, "delivered_t"].sum()


def test_cap_binds(solve):
    """Demand 100; CN spot at 10, AU spot at 20.

    Without a cap all 100 t come from CN (cost 1,000). A 65 % cap leaves
    CN 65 t and AU 35 t: 65*10 + 35*20 = 1,350. Relaxing the cap by one tonne
    moves a tonne from AU to CN: -10 per tonne. One more tonne of demand with
    the cap's right-hand side held fixed comes from AU: +20.
    """
    inst = base_instance(
        sources=[spot("cn", "CN", {"Nd": {"capacity": 1000, "price": 10}}),
                 spot("au", "AU", {"Nd": {"capacity": 1000, "price": 20}})],
        policies={"cap": {"max_single_country_share": {"share": 0.65}}})
    free = solve(inst)
    assert free.summary["objective"] == pytest.approx(1000, **APPROX)
    assert free.summary["max_single_country_share"]["mining"]["share"] == pytest.approx(1.0)
    run = solve(inst, "cap")
    assert run.summary["objective"] == pytest.approx(1350, **APPROX)
    assert _delivered(run, "cn") == pytest.approx(65)
    assert _delivered(run, "au") == pytest.approx(35)
    share = run.summary["max_single_country_share"]
    assert share["mining"]["share"] == pytest.approx(0.65)
    assert share["refining"]["country"] == "CN"
    duals = run.tables["duals"]
    cap_rows = duals[(duals.constraint == "max_single_country_share") & (duals.country == "CN")]
    # the same cap binds at both stages; their duals add up to the relaxation value
    assert cap_rows.value.sum() == pytest.approx(-10, abs=1e-6)
    demand = duals[duals.constraint == "demand"]
    assert demand.value.iloc[0] == pytest.approx(20, abs=1e-6)


def test_ban_scenario_causes_shortage_and_contract_hedges(solve):
    """Dy demand 10; CN spot at 100; AU contract at 300 with a 10 % fee, 5 t.

    Scenarios: normal (0.8) and ban (0.2, CN availability 0). Penalty 1,000.
    A contracted tonne costs the fee 30 for sure and saves 1,000 - 300 = 700
    in the ban, 0.2 * 700 = 140 > 30, so x = 5 (all of it). In normal CN
    serves all 10 t (AU at 300 is dearer). Cost: fee 5*30 = 150;
    normal 10*100 = 1,000; ban 5*300 + 5*1,000 = 6,500.
    E[C] = 150 + 0.8*1,000 + 0.2*6,500 = 2,250. Shortage: 5 t in the ban,
    expected 1 t, worst 5 t.
    """
    run = solve(hedge_instance())
    s = run.summary
    assert s["expected_cost"] == pytest.approx(2250, **APPROX)
    assert s["expected_shortage_t"] == pytest.approx(1.0, **APPROX)
    assert s["worst_shortage_t"] == pytest.approx(5.0, **APPROX)
    assert _alloc(run, "au", "Dy") == pytest.approx(5)
    assert _delivered(run, "au", "normal", "Dy") == pytest.approx(0, abs=1e-9)
    assert s["scenario_costs"] == pytest.approx({"normal": 1150, "ban": 6650}, **APPROX)


def test_stock_carried_across_periods(solve):
    """Two periods, demand 10 each; CN sells (at 100) only in period 1.

    Holding costs 5 per tonne and period, shortage 1,000: buy 20 t in period 1
    and carry 10 t: 2,000 + 50 = 2,050. With a stock capacity of 4 t: carry 4,
    6 t short: 14*100 + 4*5 + 6*1,000 = 7,420. An initial stock of 3 t saves
    3 t of purchases in the uncapped case: 2,050 - 300 = 1,750.
    """
    inst = base_instance(
        periods=[1, 2], demand={"Nd": 10},
        stock={"holding_cost": {"Nd": 5}},
        sources=[spot("cn", "CN", {"Nd": {"capacity": 100, "price": 100}},
                      available={"until": 1})])
    run = solve(inst)
    assert run.summary["objective"] == pytest.approx(2050, **APPROX)
    bal = run.tables["balance"].set_index("period")
    assert bal.loc[1, "stock_t"] == pytest.approx(10)
    assert bal.loc[2, "stock_start_t"] == pytest.approx(10)
    inst["stock"]["capacity"] = {"default": 4}
    capped = solve(inst)
    assert capped.summary["objective"] == pytest.approx(7420, **APPROX)
    assert capped.summary["expected_shortage_t"] == pytest.approx(6)
    inst["stock"] = {"holding_cost": {"Nd": 5}, "initial": {"Nd": 3}}
    assert solve(inst).summary["objective"] == pytest.approx(1750, **APPROX)


@pytest.mark.parametrize("fee, expected, contracted", [
    (0.2, 5500.0, 0.0),    # 100 + 20 fee = 120 per t > spot 110: all spot
    (0.05, 5250.0, 50.0),  # 100 + 5 fee = 105 per t < spot 110: all contract
])
def test_spot_against_contract_with_reservation_fee(solve, fee, expected, contracted):
    """Demand 50; contract at 100 with a take-or-pay fee; spot at 110."""
    inst = base_instance(
        demand={"Nd": 50},
        sources=[contract("au", "AU", {"Nd": {"capacity": 100, "price": 100}}, fee=fee),
                 spot("cn", "CN", {"Nd": {"capacity": 100, "price": 110}})])
    run = solve(inst)
    assert run.summary["objective"] == pytest.approx(expected, **APPROX)
    assert _alloc(run, "au") == pytest.approx(contracted)


def test_reservation_fee_paid_even_when_not_delivered(solve):
    """A contract whose source is cut in the only scenario still pays its fee.

    Contract fixed by a plan-mode domestic floor: x >= 0.5 * 100 = 50 t from
    JP at price 100, fee 0.1 (10 per t, 500 in all). The one scenario cuts JP
    to 0, so the 100 t come from CN at 20: 2,000 + 500 = 2,500.
    """
    inst = base_instance(
        sources=[contract("jp", "JP", {"Nd": {"capacity": 100, "price": 100}}, fee=0.1),
                 spot("cn", "CN", {"Nd": {"capacity": 500, "price": 20}})],
        scenarios=[{"id": "cut", "probability": 1.0,
                    "disruptions": [{"match": {"id": "jp"}, "availability": 0}]}],
        policies={"floor": {"min_domestic_share": {"share": 0.5, "applies_to": "plan"}}})
    run = solve(inst, "floor")
    assert run.summary["objective"] == pytest.approx(2500, **APPROX)
    assert _alloc(run, "jp") == pytest.approx(50)


def test_discounting(solve):
    """Rate 10 %: period 2 (position 1) costs are divided by 1.1.

    Demand 10 in each of two periods; prices 100 then 105, holding free.
    Discounted, period-2 tonnes cost 105/1.1 = 95.45 < 100, so nothing is
    carried: 1,000 + 1,050/1.1 = 1,954.545...
    """
    inst = base_instance(
        periods=[1, 2], demand={"Nd": 10}, discount_rate=0.1,
        sources=[spot("cn", "CN", {"Nd": {"capacity": 100, "price": {1: 100, 2: 105}}})])
    run = solve(inst)
    assert run.summary["objective"] == pytest.approx(1000 + 1050 / 1.1, **APPROX)
    assert run.tables["balance"].stock_t.max() == pytest.approx(0, abs=1e-9)


def test_plan_mode_cap_against_every_scenario_cap(solve):
    """Contracts CN (10) and AU (20), JP spot (50); demand 100, x1.5 in `high`.

    every_scenario, share 0.5: normal CN 50 + AU 50 = 1,500; high CN 75 +
    AU 75 = 2,250; E = 1,875. plan, share 0.5: contracts CN <= 50 and AU <= 50
    against base demand, so in `high` JP adds 50 t at 50: 500 + 1,000 + 2,500
    = 4,000; E = (1,500 + 4,000) / 2 = 2,750.
    """
    inst = base_instance(
        sources=[contract("cn", "CN", {"Nd": {"capacity": 1000, "price": 10}}),
                 contract("au", "AU", {"Nd": {"capacity": 1000, "price": 20}}),
                 spot("jp", "JP", {"Nd": {"capacity": 1000, "price": 50}})],
        scenarios=[{"id": "normal", "probability": 0.5},
                   {"id": "high", "probability": 0.5,
                    "demand_shocks": [{"multiplier": 1.5}]}],
        policies={"scen": {"max_single_country_share": {"share": 0.5}},
                  "plan": {"max_single_country_share": {"share": 0.5, "applies_to": "plan"}}})
    assert solve(inst, "scen").summary["objective"] == pytest.approx(1875, **APPROX)
    plan = solve(inst, "plan")
    assert plan.summary["objective"] == pytest.approx(2750, **APPROX)
    assert _alloc(plan, "cn") == pytest.approx(50)
    assert _delivered(plan, "jp", "high") == pytest.approx(50)


def test_group_cap_against_element_cap(solve):
    """Nd and Pr (100 t each) in one group; CN sells both at 10, AU only Pr at 20.

    Per group, share 0.6: CN <= 120 t in all: Nd 100 from CN, Pr 20 CN + 80 AU
    = 1,000 + 200 + 1,600 = 2,800. Per element: CN <= 60 t of each: Nd 40 t
    short (penalty 1,000): 600 + 40,000 + 600 + 800 = 42,000.
    """
    inst = base_instance(
        elements=["Nd", "Pr"], groups={"magnet": ["Nd", "Pr"]},
        demand={"default": 100},
        sources=[spot("cn", "CN", {"Nd": {"capacity": 1000, "price": 10},
                                   "Pr": {"capacity": 1000, "price": 10}}),
                 spot("au", "AU", {"Pr": {"capacity": 1000, "price": 20}})],
        policies={"group": {"max_single_country_share": {"share": 0.6, "per": "group"}},
                  "element": {"max_single_country_share": {"share": 0.6}}})
    assert solve(inst, "group").summary["objective"] == pytest.approx(2800, **APPROX)
    elem = solve(inst, "element")
    assert elem.summary["objective"] == pytest.approx(42000, **APPROX)
    assert elem.summary["expected_shortage_t"] == pytest.approx(40)


def _cvar_instance():
    return base_instance(
        demand={"Nd": 10},
        sources=[spot("cn", "CN", {"Nd": {"capacity": 100, "price": 100}}),
                 contract("au", "AU", {"Nd": {"capacity": 10, "price": 300}}, fee=0.5)],
        scenarios=[{"id": "normal", "probability": 0.9},
                   {"id": "ban", "probability": 0.1,
                    "disruptions": [{"match": {"mined_in": "CN"}, "availability": 0}]}],
        risk={"lambda": 0.0, "alpha": 0.9})


def test_cvar_lambda_zero_ignores_the_tail(solve):
    """A contracted tonne costs 150 for sure and saves 700 in the ban (p 0.1):
    70 < 150, so x = 0. E[C] = 0.9*1,000 + 0.1*10,000 = 1,900; the worst 10 %
    is the ban: CVaR_0.9 = 10,000."""
    run = solve(_cvar_instance())
    assert run.summary["objective"] == pytest.approx(1900, **APPROX)
    assert run.summary["cvar"] == pytest.approx(10000, **APPROX)
    assert _alloc(run, "au") == pytest.approx(0, abs=1e-9)


def test_cvar_with_lambda_one(solve):
    """lambda = 1, alpha = 0.9: minimise the ban's cost 10,000 - 550 x, so
    x = 10: ban 150*10 + 300*10 = 4,500, normal 1,500 + 1,000 = 2,500.
    Objective = CVaR = 4,500; E[C] = 0.9*2,500 + 0.1*4,500 = 2,700.
    CVaR worsens the expected cost and improves the tail."""
    run = solve(_cvar_instance(), risk_lambda=1.0)
    s = run.summary
    assert s["objective"] == pytest.approx(4500, **APPROX)
    assert s["cvar"] == pytest.approx(4500, **APPROX)
    assert s["expected_cost"] == pytest.approx(2700, **APPROX)
    assert _alloc(run, "au") == pytest.approx(10)


def test_excluded_source_is_not_used(solve):
    """Excluding CN leaves AU at 20: 2,000 instead of 1,000."""
    inst = base_instance(
        sources=[spot("cn", "CN", {"Nd": {"capacity": 1000, "price": 10}}),
                 spot("au", "AU", {"Nd": {"capacity": 1000, "price": 20}})],
        policies={"no-cn": {"exclude": [{"refined_in": "CN"}]}})
    run = solve(inst, "no-cn")
    assert run.summary["objective"] == pytest.approx(2000, **APPROX)
    assert _delivered(run, "cn") == 0


def test_recycled_floor_and_stock_days(solve):
    """Recycled floor 30 %: 30 t from JP recycling at 50, 70 t CN at 10 = 2,200.

    Stock days 73 of 365 (a fifth) in one period with demand 100: end stock
    20 t bought from CN at 10 and held at 1: 1,000 + 200 + 20 = 1,220.
    """
    inst = base_instance(
        stock={"holding_cost": {"default": 1}},
        sources=[spot("cn", "CN", {"Nd": {"capacity": 1000, "price": 10}}),
                 spot("rec", "JP", {"Nd": {"capacity": 1000, "price": 50}}, recycled=True)],
        policies={"rec": {"min_recycled_share": {"share": 0.3}},
                  "stock": {"min_stock_days": {"days": 73}}})
    assert solve(inst, "rec").summary["objective"] == pytest.approx(2200, **APPROX)
    assert solve(inst, "stock").summary["objective"] == pytest.approx(1220, **APPROX)


def test_budget_that_cannot_be_met_is_infeasible(solve):
    """The cheapest plan costs 1,000; a budget of 900 cannot hold."""
    inst = base_instance(
        sources=[spot("cn", "CN", {"Nd": {"capacity": 1000, "price": 10}})],
        policies={"tight": {"budget": {"amount": 900}},
                  "loose": {"budget": {"amount": 1000}}})
    assert solve(inst, "loose").summary["objective"] == pytest.approx(1000, **APPROX)
    run = solve(inst, "tight")
    assert run.summary["status"] == "infeasible"
    assert run.tables == {}


def test_infeasible_policies_are_explained_in_words(solve):
    """Floors above what the sources can give: the message names rule, element,
    period, country, scenario and figures; no table is written."""
    inst = base_instance(
        periods=[2026, 2027], elements=["Nd", "Dy"],
        demand={"Nd": 100, "Dy": {2026: 600, 2027: 620}},
        stock={"capacity": {"Dy": 50}},
        sources=[spot("cn", "CN", {"Nd": {"capacity": 500, "price": 10},
                                   "Dy": {"capacity": 800, "price": 300}}),
                 spot("rec", "JP", {"Dy": {"capacity": 20, "price": 700}}, recycled=True)],
        scenarios=[{"id": "normal", "probability": 0.8},
                   {"id": "jp-ban", "probability": 0.2,
                    "disruptions": [{"match": {"mined_in": "CN"}, "elements": ["Dy"],
                                     "availability": 0}]}],
        policies={"dom": {"min_domestic_share": {"share": 0.1, "elements": ["Dy"]}},
                  "stock": {"min_stock_days": {"days": 60, "elements": ["Dy"]}},
                  "budget": {"budget": {"amount": 1000}},
                  "nd-dom": {"min_domestic_share": {"share": 0.1, "elements": ["Nd"]}}})
    expected = {
        "dom": ["dom.min_domestic_share[0]", "Dy 2027 needs 62 t", "JP-mined",
                "scenario jp-ban", "at most 20 t"],
        "stock": ["stock.min_stock_days[0]", "Dy", "at most 50 t"],
        "budget": ["budget.budget[0]", "above the budget of 1,000"],
        "nd-dom": ["nd-dom.min_domestic_share[0]", "Nd 2026 needs 10 t", "no such source"],
    }
    for policy, fragments in expected.items():
        run = solve(inst, policy)
        assert run.summary["status"] == "infeasible"
        assert run.tables == {}
        for frag in fragments:
            assert frag in run.summary["message"], (policy, frag, run.summary["message"])
        folder = Path(run.summary["_folder"])
        assert sorted(p.name for p in folder.iterdir()) == ["instance.yaml", "summary.json"]
