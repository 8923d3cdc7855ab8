"""Issue 22's model questions, with answers derived by hand: the value of stock,
phased rules, the end of the horizon (annuities, terminal value, demand that must
cover every period) and price indices.

Every solve also passes the independent check and the matrix/Pyomo equality
(see conftest.solve_dict).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import base_instance, contract, spot, write_instance
from model.errors import InstanceError
from model.input.instance import instance_from_dict

APPROX = dict(rel=1e-9, abs=1e-6)


# --------------------------------------------------------------------------- stock
def ban_in_period_two(initial: float = 0.0) -> dict:
    """One element, two periods, demand 10 a period; Chinese spot at 100 (20 t a
    period); a ban in period 2 with probability 0.5; penalty 1,000; holding 10."""
    return base_instance(
        periods=[1, 2], elements=["Dy"], demand={"Dy": 10},
        shortage_penalty={"Dy": 1000},
        stock={"initial": {"Dy": initial}, "holding_cost": {"Dy": 10}},
        sources=[spot("cn", "CN", {"Dy": {"capacity": 20, "price": 100}})],
        scenarios=[{"id": "normal", "probability": 0.5},
                   {"id": "ban", "probability": 0.5,
                    "disruptions": [{"match": {"mined_in": "CN"}, "periods": [2],
                                     "availability": 0.0}]}],
        policies={"no-stock": {"build_stock": False}})


def test_value_of_holding_stock(solve):
    """Period 1 cannot tell the scenarios apart (history), so its stock s is one
    decision. E[C] = 100 (10 + s) + 10 s + 0.5 x 100 (10 - s) + 0.5 x 1,000 (10 - s)
    = 6,500 - 440 s, least at s = 10: 2,100 (buy 20 t in period 1, hold 10).
    Without building stock (s = 0): 6,500 and 5 t of expected shortage. Holding
    stock is worth 4,400 and 5 t."""
    inst = ban_in_period_two()
    free = solve(inst)
    assert free.summary["objective"] == pytest.approx(2100, **APPROX)
    bal = free.tables["balance"]
    assert bal[(bal.period == 1)].stock_t.tolist() == pytest.approx([10, 10])
    held = solve(inst, "no-stock")
    assert held.summary["objective"] == pytest.approx(6500, **APPROX)
    assert held.summary["expected_shortage_t"] == pytest.approx(5, **APPROX)
    assert (held.tables["balance"].stock_t <= 1e-9).all()
    # relaxing the rule by one tonne in period 1 (one more tonne may be held) saves 440
    duals = held.tables["duals"]
    rows = duals[(duals.constraint == "build_stock") & (duals.period == 1)]
    assert rows.value.sum() == pytest.approx(-440, abs=1e-6)


def test_value_of_the_stock_already_held(solve):
    """Opening stock 5 under no-stock: holding it into period 2 (I_1 = 5 <= I_0) costs
    100 x 10 + 10 x 5 + 0.5 x 100 x 5 + 0.5 x 1,000 x 5 = 3,800 (drawing it in period
    1 instead: 6,000). Against 6,500 without it, the opening 5 t are worth 2,700."""
    run = solve(ban_in_period_two(initial=5.0), "no-stock")
    assert run.summary["objective"] == pytest.approx(3800, **APPROX)
    bal = run.tables["balance"]
    assert bal[(bal.period == 1)].stock_t.tolist() == pytest.approx([5, 5])


# --------------------------------------------------------------------------- phased rules
def test_phased_cap_holds_only_in_its_periods(solve):
    """Demand 100 a period; CN at 10, AU at 20; holding stock costs 100 a tonne (so
    none is bought ahead of the cap). A 65 % cap from period 2 only: period 1 all
    CN (1,000), period 2 65/35 (1,350): 2,350; immediate: 2,700."""
    inst = base_instance(
        periods=[1, 2], demand={"Nd": 100}, stock={"holding_cost": {"Nd": 100}},
        sources=[spot("cn", "CN", {"Nd": {"capacity": 1000, "price": 10}}),
                 spot("au", "AU", {"Nd": {"capacity": 1000, "price": 20}})],
        policies={"now": {"max_single_country_share": {"share": 0.65}},
                  "later": {"max_single_country_share": {"share": {2: 0.65}}},
                  "filtered": {"max_single_country_share": {"share": 0.65, "periods": [2]}},
                  "stepped": {"max_single_country_share": {"share": {1: 0.8, 2: 0.65}}}})
    assert solve(inst, "now").summary["objective"] == pytest.approx(2700, **APPROX)
    assert solve(inst, "later").summary["objective"] == pytest.approx(2350, **APPROX)
    assert solve(inst, "filtered").summary["objective"] == pytest.approx(2350, **APPROX)
    # 80/20 in period 1 (1,200), 65/35 in period 2 (1,350)
    assert solve(inst, "stepped").summary["objective"] == pytest.approx(2550, **APPROX)


def test_phased_share_names_periods():
    inst = base_instance(policies={"p": {"max_single_country_share": {"share": {2099: 0.5}}}})
    with pytest.raises(InstanceError, match="unknown period '2099'"):
        instance_from_dict(inst)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), share=st.floats(0.3, 0.9), start=st.integers(1, 3))
def test_a_phased_cap_costs_no_more_than_the_immediate_one(tmp_path_factory, seed, share,
                                                           start):
    from model.api import solve_instance
    from model.input.builders import synthetic_instance

    inst = synthetic_instance(4, 2, 4, 3, seed)
    periods = inst["periods"]
    inst["policies"] = {
        "now": {"max_single_country_share": {"share": share}},
        "phased": {"max_single_country_share": {"share": {p: share for p in periods[start:]}}}}
    path = write_instance(tmp_path_factory.mktemp("phased"), inst)
    now = solve_instance(path, "now")
    phased = solve_instance(path, "phased")
    assert phased.optimal
    if now.optimal:
        assert phased.summary["objective"] <= now.summary["objective"] * (1 + 1e-9) + 1e-6


# --------------------------------------------------------------------------- the horizon
def forced_build(life: int | None, rate: float, periods: list[int]) -> dict:
    """Demand 0: the cost is the build's alone. A project of cost 1,000 with
    build_time 1, decided in the first period, required by the policy."""
    project = {"id": "plant", "reduces": {"Nd": 1}, "cost": 1000, "build_time": 1,
               "decide": {"from": periods[0], "until": periods[0]}}
    if life is not None:
        project["life"] = life
    return base_instance(periods=periods, demand={"Nd": 0}, discount_rate=rate,
                         projects=[project],
                         policies={"build": {"build": {"project": "plant"}}})


def test_annuitised_project_cost(solve):
    """Life 4 at 10 %: A = 1,000 x 0.1 / (1 - 1.1^-4) = 315.4708; online in periods 1
    and 2 of [0, 1, 2] (two annuities inside the horizon), discounted:
    A / 1.1 + A / 1.21 = 547.5404."""
    annuity = 1000 * 0.1 / (1 - 1.1 ** -4)
    run = solve(forced_build(4, 0.1, [0, 1, 2]), "build")
    assert run.summary["objective"] == pytest.approx(annuity / 1.1 + annuity / 1.21, **APPROX)
    by_year = run.tables["cost_by_year"]
    cash = by_year[by_year.scenario == "expected"].set_index("period")["cash"]
    assert cash.tolist() == pytest.approx([0.0, annuity, annuity])


def test_annuity_at_rate_zero_and_the_whole_cost_without_life(solve):
    """Rate 0, life 2, online periods 1..3: charged 500 in periods 1 and 2 only (at
    most `life` periods): 1,000. Without a life: 1,000 in period 0."""
    assert solve(forced_build(2, 0.0, [0, 1, 2, 3]), "build").summary["objective"] == \
        pytest.approx(1000, **APPROX)
    assert solve(forced_build(8, 0.0, [0, 1, 2, 3]), "build").summary["objective"] == \
        pytest.approx(3 * 1000 / 8, **APPROX)
    run = solve(forced_build(None, 0.1, [0, 1, 2]), "build")
    assert run.summary["objective"] == pytest.approx(1000, **APPROX)


def test_a_build_online_after_the_horizon_cannot_be_decided_with_a_life(tmp_path):
    from model.api import solve_instance

    inst = forced_build(4, 0.1, [0, 1])
    inst["projects"][0]["decide"] = {"from": 1, "until": 1}    # online in period 2: beyond
    path = write_instance(tmp_path, inst)
    run = solve_instance(path, "build")
    assert run.summary["status"] == "infeasible"
    assert "cannot be decided" in run.summary["message"]


def test_terminal_value_credits_stock_left(solve):
    """One period, no demand; spot at 100 (5 t), terminal value 150, holding 10,
    stock capacity 3: buy 3, cost 300 + 30 - 450 = -120."""
    inst = base_instance(demand={"Nd": 0},
                         stock={"capacity": {"Nd": 3}, "holding_cost": {"Nd": 10},
                                "terminal_value": {"Nd": 150}},
                         sources=[spot("cn", "CN", {"Nd": {"capacity": 5, "price": 100}})])
    run = solve(inst)
    assert run.summary["objective"] == pytest.approx(-120, **APPROX)
    assert run.tables["scenarios"].terminal_value.iloc[0] == pytest.approx(450)
    assert any("terminal_value of Nd" in w for w in run.loaded.warnings)


def test_demand_must_give_every_period(tmp_path):
    inst = base_instance(periods=[2026, 2027, 2028], demand={"Nd": {2026: 1, 2027: 2}})
    path = write_instance(tmp_path, inst)
    proc = subprocess.run([sys.executable, "-m", "model.cli", "validate", str(path)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "demand.Nd" in proc.stderr and "missing 2028" in proc.stderr
    inst["demand"] = {"Nd": {2026: 1, "default": 4}}
    loaded = instance_from_dict(inst)
    from model.input.data import problem_data

    assert problem_data(loaded).base_demand_t.tolist() == [[1.0, 4.0, 4.0]]


def test_set_periods_beyond_demand_is_refused(tmp_path):
    inst = base_instance(periods=[2026, 2027], demand={"Nd": {2026: 1, 2027: 2}})
    path = write_instance(tmp_path, inst)
    proc = subprocess.run([sys.executable, "-m", "model.cli", "validate", str(path),
                           "--set", "periods=[2026, 2027, 2028]"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "missing 2028" in proc.stderr


# --------------------------------------------------------------------------- indices
def indexed(multiplier: float | None = None) -> dict:
    """Demand 10 a period; A on index cn (premium 1) with 10 t; B on it at premium 1.5;
    the path is 100 then 200; a shock doubles every price on the index in `shock`;
    holding a tonne costs 1,000 (nothing is bought ahead)."""
    paths: dict = {"Nd": {1: 100, 2: 200}}
    if multiplier is not None:
        paths["multiplier"] = multiplier
    return base_instance(
        periods=[1, 2], demand={"Nd": 10}, indices={"cn": paths},
        stock={"holding_cost": {"Nd": 1000}},
        sources=[spot("a", "CN", {"Nd": {"capacity": 10, "index": "cn"}}),
                 spot("b", "CN", {"Nd": {"capacity": 10, "index": "cn", "premium": 1.5}}),
                 spot("c", "AU", {"Nd": {"capacity": 10, "price": 1000}})],
        scenarios=[{"id": "calm", "probability": 0.5},
                   {"id": "shock", "probability": 0.5,
                    "price_shocks": [{"match": {"index": "cn"}, "multiplier": 2.0}]}])


def test_price_index_with_a_shock(solve):
    """A serves every tonne: calm 10 x 100 + 10 x 200 = 3,000, shock 6,000: E = 4,500."""
    run = solve(indexed())
    assert run.summary["objective"] == pytest.approx(4500, **APPROX)
    assert run.tables["scenarios"].set_index("scenario").cost.to_dict() == \
        pytest.approx({"calm": 3000, "shock": 6000})


def test_index_multiplier_and_set_move_every_linked_price(tmp_path, solve):
    """x1.5 on the index: 4,500 x 1.5 = 6,750. Setting the 2027 path value to 300
    instead: calm 1,000 + 3,000, shock twice that: E = 6,000."""
    assert solve(indexed(1.5)).summary["objective"] == pytest.approx(6750, **APPROX)
    from model.api import solve_instance
    from model.input.instance import load_instance
    from model.input.overrides import overridden

    path = write_instance(tmp_path, indexed())
    loaded = overridden(load_instance(path), [("indices.cn.Nd.2", 300)])
    assert solve_instance(loaded).summary["objective"] == pytest.approx(6000, **APPROX)


def test_index_errors_name_the_place():
    inst = indexed()
    inst["sources"][0]["supply"]["Nd"]["index"] = "nope"
    with pytest.raises(InstanceError, match="unknown index 'nope'") as err:
        instance_from_dict(inst)
    assert err.value.place == "sources[0].supply.Nd.index"
    inst = indexed()
    inst["sources"][0]["supply"]["Nd"]["price"] = 5
    with pytest.raises(InstanceError, match="both `price` and `index`"):
        instance_from_dict(inst)
    inst = indexed()
    inst["indices"]["cn"]["Nd"] = {1: 100}
    with pytest.raises(InstanceError, match="missing 2"):
        instance_from_dict(inst)
    inst = indexed()
    inst["policies"] = {"p": {"exclude": [{"index": "cn"}]}}
    with pytest.raises(InstanceError, match="only scenario rules"):
        instance_from_dict(inst)


# --------------------------------------------------------------------------- provenance
def test_notes_and_sources_are_data():
    inst = base_instance(sources=[spot("cn", "CN", {"Nd": {"capacity": 1, "price": 1}},
                                       notes="line one\nline two",
                                       sources=["DOMAIN 7: China row", "https://x.org"])],
                         policies={"p": {"build_stock": False, "notes": "why",
                                         "sources": "one citation"}})
    loaded = instance_from_dict(inst)
    src = loaded.instance.sources[0]
    assert src.notes == "line one\nline two" and src.sources[1] == "https://x.org"
    assert loaded.instance.policies["p"].sources == ["one citation"]
    inst["sources"][0]["notes"] = "bad \x1b[31m escape"
    with pytest.raises(InstanceError, match="control characters"):
        instance_from_dict(inst)


def test_report_shows_provenance_escaped(solve):
    from model.output.report import render_report

    inst = base_instance(sources=[spot("cn", "CN", {"Nd": {"capacity": 200, "price": 1}},
                                       notes="estimate <b>bold</b>\nsecond line",
                                       sources=["[P1] https://example.org/?a=1&b=2"])])
    run = solve(inst)
    html = Path(render_report(run.summary["_folder"])).read_text()
    assert "<summary>source cn</summary>" in html
    assert "estimate &lt;b&gt;bold&lt;/b&gt;" in html and "<b>bold</b>" not in html
    assert "https://example.org/?a=1&amp;b=2" in html
