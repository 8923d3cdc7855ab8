"""Which projects to fund (issue 15): investment sized at the tree's nodes.

Known answers derived by hand in the docstrings; every solve through the
`solve` fixture is also checked by model.analysis.verify and by comparing the matrix
path with the Pyomo formulation (tests/conftest.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import base_instance, contract, solve_dict, spot
from model.studies.metrics import stochastic_metrics
from model.studies.projects import project_values
from model.studies.sweep import sweep_param
from model.api import solve_instance
from model.input.instance import instance_from_dict
from model.solve.solve import SolveOptions
from model.analysis.verify import verify_run


def mine_instance(**project: object) -> dict:
    """Dy 10 t/period over periods 1-3; CN spot 100/t; a CN ban in periods 2-3 with
    probability 0.5 that period 1 does not announce; holding 1,000/t (no stocking
    ahead); penalty 1,000/t. An AU contract source has no capacity until the project
    `au-mine` adds 10 t/period (price 150/t, no fee), cost 5,000, build time 1.

    Without it: normal 3,000; ban 1,000 + 20 t short = 21,000; E = 12,000.
    Built in period 1 (one node for both scenarios): 5,000 + 0.5 x 3,000 + 0.5 x
    (1,000 + 2 x 1,500) = 8,500.
    """
    p = {"id": "au-mine", "source": "au", "capacity": {"Dy": 10}, "cost": 5000,
         "build_time": 1, "decide": {"from": 1, "until": 1}}
    p.update(project)
    return base_instance(
        periods=[1, 2, 3], elements=["Dy"], demand={"Dy": 10},
        shortage_penalty={"default": 1000}, stock={"holding_cost": {"Dy": 1000}},
        sources=[spot("cn", "CN", {"Dy": {"capacity": 100, "price": 100}}),
                 contract("au", "AU", {"Dy": {"capacity": 0, "price": 150}})],
        scenarios=[{"id": "normal", "probability": 0.5},
                   {"id": "ban", "probability": 0.5,
                    "disruptions": [{"match": {"mined_in": "CN"}, "periods": [2, 3],
                                     "availability": 0}]}],
        projects=[p])


def _size(run) -> float:
    return run.summary["builds"]["au-mine"]["expected_size"]


@pytest.mark.parametrize("cost, expected, size", [(5000, 8500.0, 1.0), (15000, 12000.0, 0.0)])
def test_a_project_worth_building_and_one_not(solve, cost: float, expected: float,
                                              size: float) -> None:
    """At 15,000 the build costs more than the 12,000 - 3,500 it saves: not built."""
    run = solve(mine_instance(cost=cost))
    assert run.summary["objective"] == pytest.approx(expected)
    assert _size(run) == pytest.approx(size)
    table = run.tables["projects"]
    assert len(table) == (1 if size else 0)
    if size:
        row = table.iloc[0]
        assert (row["period_decided"], row["first_output"], row["added_Dy_t"]) == (1, 2, 10.0)
        assert run.tables["scenarios"].investment_cost.tolist() == pytest.approx([5000, 5000])


def test_build_time_delays_the_output(solve) -> None:
    """Build time 2: output from period 3 only, the ban's period 2 still 10 t short:
    5,000 + 1,500 + 0.5 x (1,000 + 10,000 + 1,500) = 12,750 > 12,000: not built.
    At cost 1,000 it pays: 1,000 + 1,500 + 6,250 = 8,750."""
    late = solve(mine_instance(build_time=2))
    assert late.summary["objective"] == pytest.approx(12000.0) and _size(late) == 0
    cheap = solve(mine_instance(build_time=2, cost=1000))
    assert cheap.summary["objective"] == pytest.approx(8750.0) and _size(cheap) == 1


def test_waiting_for_information_pays(solve) -> None:
    """Build time 0 and a decision in period 1 or 2: the plan waits for period 2's news
    and builds only in the ban: 0.5 x 3,000 + 0.5 x (1,000 + 5,000 + 3,000) = 6,000,
    against 8,500 deciding in period 1. The mine's contracts need lead time 0: a
    contract signed at the start must fit the capacity of every path, and on the
    normal path nothing is built (so with the contract at the root, waiting cannot
    deliver: 8,500 again)."""
    now = solve(mine_instance(build_time=0))
    assert now.summary["objective"] == pytest.approx(8500.0)
    rooted = solve(mine_instance(build_time=0, decide={"from": 1, "until": 2}))
    assert rooted.summary["objective"] == pytest.approx(8500.0)
    inst = mine_instance(build_time=0, decide={"from": 1, "until": 2})
    inst["sources"][1]["lead_time"] = 0
    wait = solve(inst)
    assert wait.summary["objective"] == pytest.approx(6000.0)
    table = wait.tables["projects"]
    assert len(table) == 1
    assert (table.period_decided.iloc[0], table.node_probability.iloc[0]) == (2, 0.5)
    assert wait.summary["builds"]["au-mine"]["probability_built"] == pytest.approx(0.5)


@pytest.mark.parametrize("integer, fixed, expected, size", [
    (False, 0, 7500.0, 0.5),    # half a 20 t/period mine is all the ban needs
    (True, 0, 11500.0, 1.0),    # all or nothing: 8,000 for the whole mine
    (True, 1000, 12000.0, 0.0),  # with a fixed cost of 1,000 it no longer pays
])
def test_integer_against_continuous(solve, integer: bool, fixed: float, expected: float,
                                    size: float) -> None:
    """A mine of 20 t/period at full size, cost 8,000. Continuous: size 0.5 at 4,000:
    4,000 + 1,500 + 0.5 x 4,000 = 7,500. All or nothing: 8,000 + 3,500 = 11,500;
    with a fixed cost of 1,000: 12,500 > 12,000."""
    project = {"capacity": {"Dy": 20}, "cost": 8000, "integer": integer}
    if fixed:
        project["fixed_cost"] = fixed
    run = solve(mine_instance(**project))
    assert run.summary["objective"] == pytest.approx(expected)
    assert _size(run) == pytest.approx(size)
    if integer:
        assert run.summary["mip"]["gap"] == pytest.approx(0.0, abs=1e-9)
        assert not run.summary["mip"]["plan_at_limit"]


def test_a_mip_stopped_at_a_limit_is_never_optimal(tmp_path: Path) -> None:
    """Stopped after its first plan (a HiGHS solution limit), the run keeps the plan,
    its gap and bound, passes verify, and is not labelled optimal. A time limit of
    nothing at all stops before any plan: no tables."""
    inst = mine_instance(capacity={"Dy": 20}, cost=8000, integer=True, fixed_cost=100,
                         decide={"from": 1, "until": 2}, build_time=0)
    run = solve_dict(tmp_path, inst, options=SolveOptions(
        highs={"mip_max_improving_sols": 1}))
    # its first plan builds the whole mine at once: 8,100 + 1,500 + 0.5 x 4,000 = 11,600;
    # the bound (7,550) is the relaxation's, where half a mine is allowed
    assert run.summary["status"] == "iteration_limit" and not run.optimal
    assert run.summary["mip"]["plan_at_limit"]
    assert run.summary["mip"]["gap"] > 0.1
    assert run.summary["expected_cost"] is not None and run.tables
    assert run.summary["objective"] >= run.summary["mip"]["bound"] - 1e-6
    assert verify_run(run.summary["_folder"]) == []
    stopped = solve_instance(instance_from_dict(inst),
                             options=SolveOptions(time_limit_s=1e-9))
    assert stopped.summary["status"] == "time_limit" and not stopped.tables


def test_policies_require_or_forbid_a_project(solve) -> None:
    """`build` forces the mine (8,500 here too, it pays anyway; at cost 15,000 the
    required build costs 18,500); `exclude` forbids it: 12,000."""
    inst = mine_instance(cost=15000)
    inst["policies"] = {"fund": {"build": {"project": "au-mine", "min_size": 1}},
                        "ban": {"exclude": [{"project": "au-mine"}]},
                        "both": {"build": {"project": "au-mine"},
                                 "exclude": [{"project": "au-mine"}]}}
    assert solve(inst, "fund").summary["objective"] == pytest.approx(18500.0)
    assert solve(inst, "ban").summary["objective"] == pytest.approx(12000.0)
    both = solve(inst, "both")
    assert both.summary["status"] == "infeasible"
    assert "requires project au-mine" in both.summary["message"]


def test_a_demand_reducing_project(solve) -> None:
    """Using less: avoiding 10 t/period of Dy from period 2 at cost 5,000 saves the
    normal scenario 2,000 of purchases and the ban 20,000 of shortage:
    5,000 + 0.5 x 1,000 + 0.5 x 1,000 = 6,000."""
    inst = mine_instance()
    inst["projects"] = [{"id": "gbd", "reduces": {"Dy": 10}, "cost": 5000, "build_time": 1,
                         "decide": {"from": 1, "until": 1}}]
    run = solve(inst)
    assert run.summary["objective"] == pytest.approx(6000.0)
    bal = run.tables["balance"].set_index(["scenario", "period"])
    assert bal.loc[("ban", 2), "avoided_t"] == pytest.approx(10.0)
    assert bal.loc[("ban", 2), "shortage_t"] == pytest.approx(0.0)


def test_project_values_and_a_cost_sweep() -> None:
    """The mine saves 12,000 - (8,500 - 5,000) = 8,500 gross for 5,000: 1.7 per unit of
    cost; swept over its cost it is built up to 8,500 and not above."""
    loaded = instance_from_dict(mine_instance())
    values = project_values(loaded).set_index("project")
    assert values.loc["au-mine", "saving_if_allowed"] == pytest.approx(3500.0)
    assert values.loc["au-mine", "value_per_cost"] == pytest.approx(1.7)
    sweep = sweep_param(loaded, "projects[au-mine].cost", [4000, 8000, 9000, 15000])
    assert sweep["size[au-mine]"].tolist() == pytest.approx([1, 1, 0, 0])


def test_expected_value_plan_fixes_shared_builds() -> None:
    """EEV fixes the EV plan's period-1 build (a node of every scenario): VSS >= 0."""
    m = stochastic_metrics(instance_from_dict(mine_instance()))
    assert m["rp"] == pytest.approx(8500.0)
    assert m["eev"] >= m["rp"] - 1e-6 and m["ws"] <= m["rp"] + 1e-6


def test_a_project_couples_the_elements_it_yields(tmp_path: Path) -> None:
    """A project adding Nd and Dy joins their element blocks (a model this small is
    solved as one; larger ones keep the blocks apart under a master over the builds,
    tests/test_benders.py); decomposed = monolithic."""
    inst = mine_instance()
    inst["elements"] = ["Nd", "Dy"]
    inst["demand"] = {"Nd": 5, "Dy": 10}
    inst["sources"][0]["supply"]["Nd"] = {"capacity": 100, "price": 50}
    inst["sources"][1]["supply"]["Nd"] = {"capacity": 0, "price": 60}
    inst["projects"][0]["capacity"] = {"Dy": 10, "Nd": 5}
    loaded = instance_from_dict(inst)
    mono = solve_instance(loaded, decompose=False)
    split = solve_instance(loaded)
    assert split.summary["blocks"] == 1
    assert split.summary["objective"] == pytest.approx(mono.summary["objective"], rel=1e-9)


def test_bad_projects_are_refused_with_their_place() -> None:
    from model.errors import InstanceError

    cases = [
        ({"source": "nope"}, r"projects\[0\]\.source.*unknown source"),
        ({"capacity": {"Nd": 3}}, r"projects\[0\]\.capacity\.Nd.*unknown element"),
        ({"fixed_cost": 10}, r"fixed_cost.*all-or-nothing"),
        ({"decide": {"from": 3, "until": 1}}, r"decide.*after"),
    ]
    for change, pattern in cases:
        with pytest.raises(InstanceError, match=pattern):
            instance_from_dict(mine_instance(**change))
    inst = mine_instance()
    inst["policies"] = {"p": {"build": {"project": "au-mine", "min_size": 2}}}
    with pytest.raises(InstanceError, match="min_size 2 is above the project's max_size 1"):
        instance_from_dict(inst)
