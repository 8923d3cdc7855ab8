"""Element blocks tied only by projects (model.solve.benders): a master over the builds,
the blocks as LPs with the builds fixed. Equality with the monolithic solve (objective,
tables, duals where unique), all-or-nothing projects at several nodes against the
monolithic MIP, merging that stays exact whatever the builds, and a run stopped at
its time limit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import base_instance, contract, spot
import model.api as api
import model.solve.benders as benders
from model.api import _route, solve_instance
from model.formulation.policies import resolve_policy
from model.input.builders import instance_to_yaml, synthetic_instance
from model.input.data import problem_data
from model.input.instance import instance_from_dict
from model.solve.decompose import reduce_data, subset_data
from model.solve.solve import SolveOptions

EXACT = SolveOptions(highs={"mip_rel_gap": 0.0})


@pytest.fixture(autouse=True)
def _small_models_too(monkeypatch: Any) -> None:
    """The tests' models are tiny: take the Benders route from the first delivery."""
    monkeypatch.setattr(api, "BENDERS_MIN_DELIVERIES", 0)


def two_mines(integer: bool = False, cost: float = 6000.0, dy_cost: float = 1300.0,
              decide: tuple[int, int] = (2026, 2027)) -> dict[str, Any]:
    """Nd and Dy over three years on a tree of regimes: in a `ban` year China sells no
    Dy and half its Nd (normal -> ban 0.3, ban -> ban 0.6; 8 paths, 15 nodes). CN
    spot at 100 (Nd) and 400 (Dy); an AU contract source with no capacity of its
    own; `au-mine` adds Nd 4 and Dy 8 t/yr to it (one project, two element blocks),
    `dy-plant` Dy 2 t/yr; both built in a year, decided in the window `decide`, at
    the node of the year decided."""
    return base_instance(
        periods=[2026, 2027, 2028], elements=["Nd", "Dy"], demand={"Nd": 8, "Dy": 5},
        shortage_penalty={"Nd": 900, "Dy": 2000}, stock={"holding_cost": {"default": 50}},
        sources=[spot("cn", "CN", {"Nd": {"capacity": 100, "price": 100},
                                   "Dy": {"capacity": 100, "price": 400}}),
                 contract("au", "AU", {"Nd": {"capacity": 0, "price": 160},
                                       "Dy": {"capacity": 0, "price": 650}}, fee=0.05,
                          lead_time=0)],
        scenarios={"regimes": {
            "start": "normal",
            "states": {"normal": {},
                       "ban": {"disruptions": [
                           {"match": {"mined_in": "CN"}, "elements": ["Dy"],
                            "availability": 0.0},
                           {"match": {"mined_in": "CN"}, "elements": ["Nd"],
                            "availability": 0.5}]}},
            "transition": {"normal": {"normal": 0.7, "ban": 0.3},
                           "ban": {"normal": 0.4, "ban": 0.6}}}},
        projects=[{"id": "au-mine", "source": "au", "capacity": {"Nd": 4, "Dy": 8},
                   "cost": cost, "build_time": 1, "integer": integer,
                   "decide": {"from": decide[0], "until": decide[1]}},
                  {"id": "dy-plant", "source": "au", "capacity": {"Dy": 2},
                   "cost": dy_cost, "build_time": 1, "integer": integer,
                   "decide": {"from": decide[0], "until": decide[1]}}])


def _sorted(table: Any, keys: list[str]) -> Any:
    return table.sort_values(keys).reset_index(drop=True)


def test_route_keeps_the_element_blocks() -> None:
    loaded = instance_from_dict(two_mines())
    data = problem_data(loaded)
    route, blocks = _route(data, resolve_policy(loaded.instance, data, "none"), "matrix",
                           True)
    assert route == "benders" and sorted(map(sorted, blocks)) == [[0], [1]]
    # an LP with more build columns than BENDERS_LP_MAX_BUILDS: the tied blocks as one
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(api, "BENDERS_LP_MAX_BUILDS", 1)
        assert _route(data, resolve_policy(loaded.instance, data, "none"), "matrix",
                      True)[0] == "one"
        # ... but all-or-nothing builds always go to the master
        whole = problem_data(instance_from_dict(two_mines(integer=True)))
        assert _route(whole, resolve_policy(loaded.instance, whole, "none"), "matrix",
                      True)[0] == "benders"
    # CVaR with projects across blocks: one LP, as documented
    cvar = problem_data(loaded, 0.5)
    assert _route(cvar, resolve_policy(loaded.instance, cvar, "none"), "matrix",
                  True)[0] == "one"


def test_projects_across_blocks_equal_the_monolithic_lp(solve: Any) -> None:
    """Objective, plan, projects, balance and demand duals as one monolithic LP (and
    the Pyomo formulation); the run folder passes verify (the `solve` fixture)."""
    inst = two_mines()
    split = solve(inst)
    loaded = instance_from_dict(inst)
    mono = solve_instance(loaded, decompose=False)
    pyomo = solve_instance(loaded, builder="pyomo")
    assert split.summary["blocks"] == 2 and split.result.coupling_iterations >= 2
    assert mono.summary["blocks"] == 1
    for other in (mono, pyomo):
        assert split.summary["objective"] == pytest.approx(other.summary["objective"],
                                                           rel=1e-9)
    built = split.tables["projects"]
    assert built["size"].sum() > 0          # the instance builds: the test means something
    keys = ["project", "period_decided", "node"]
    a, b = _sorted(split.tables["projects"], keys), _sorted(mono.tables["projects"], keys)
    assert a[keys].equals(b[keys])
    np.testing.assert_allclose(a["size"], b["size"], atol=1e-7)
    for name, keys in (("allocation", ["source", "element", "period", "node"]),
                       ("deliveries", ["source", "element", "period", "scenario"]),
                       ("balance", ["element", "period", "scenario"]),
                       ("scenarios", ["scenario"])):
        a, b = _sorted(split.tables[name], keys), _sorted(mono.tables[name], keys)
        assert a[keys].astype(str).equals(b[keys].astype(str)), name
        num = [c for c in a.columns if c not in keys and a[c].dtype.kind == "f"]
        np.testing.assert_allclose(a[num].to_numpy(), b[num].to_numpy(), atol=1e-6,
                                   err_msg=name)
    d_keys = ["constraint", "rule", "source", "element", "period", "scenario", "node"]
    da = _sorted(mono.tables["duals"], d_keys)
    db = _sorted(split.tables["duals"], d_keys)
    assert da[d_keys].astype(str).equals(db[d_keys].astype(str))
    demand = da.constraint == "demand"
    assert demand.any()
    np.testing.assert_allclose(db.value[demand], da.value[demand], rtol=1e-7, atol=1e-6)


@pytest.mark.parametrize("seeded", [False, True])
@pytest.mark.parametrize("cost, dy_cost", [(3000.0, 1500.0), (1200.0, 900.0),
                                           (6000.0, 600.0)])
def test_all_or_nothing_at_several_nodes_equals_the_monolithic_mip(
        cost: float, dy_cost: float, seeded: bool, monkeypatch: Any) -> None:
    """Both starts: the loop's own LP phase, and (`seeded`: when the LP would be solved
    as one, as above BENDERS_LP_MAX_BUILDS columns) the LP relaxation solved as one LP,
    its duals seeding the master."""
    if seeded:
        monkeypatch.setattr(api, "BENDERS_LP_MAX_BUILDS", 0)
        calls = []
        real = benders._relaxation
        monkeypatch.setattr(benders, "_relaxation",
                            lambda *a: calls.append(1) or real(*a))
    loaded = instance_from_dict(two_mines(integer=True, cost=cost, dy_cost=dy_cost))
    split = solve_instance(loaded, options=EXACT)
    if seeded:
        assert calls
    mono = solve_instance(loaded, decompose=False, options=EXACT)
    assert split.summary["blocks"] == 2 and split.summary["status"] == "optimal"
    assert split.summary["objective"] == pytest.approx(mono.summary["objective"], rel=1e-9)
    mip = split.summary["mip"]
    assert mip["gap"] <= 1e-9 and not mip["plan_at_limit"]
    assert mip["bound"] <= split.summary["objective"] + 1e-6
    sizes = split.tables["projects"]["size"] if "projects" in split.tables else []
    assert all(s in (0.0, 1.0) for s in np.round(np.asarray(sizes, float), 9))


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cost=st.floats(200, 8000), dy_cost=st.floats(100, 4000),
       integer=st.booleans(), late=st.booleans(), seeded=st.booleans())
def test_random_projects_equal_the_monolithic_solve(cost: float, dy_cost: float,
                                                    integer: bool, late: bool,
                                                    seeded: bool) -> None:
    inst = two_mines(integer, cost, dy_cost, (2027, 2028) if late else (2026, 2027))
    loaded = instance_from_dict(inst)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(api, "BENDERS_MIN_DELIVERIES", 0)
        if seeded and integer:    # a MIP whose LP is solved as one: from the relaxation
            mp.setattr(api, "BENDERS_LP_MAX_BUILDS", 0)
        split = solve_instance(loaded, options=EXACT)
    mono = solve_instance(loaded, decompose=False, options=EXACT)
    assert split.summary["blocks"] == 2
    assert split.summary["objective"] == pytest.approx(mono.summary["objective"], rel=1e-9)


def test_merging_keeps_the_nodes_of_builds_apart() -> None:
    """In the Nd block a ban and a normal year differ (half the Nd), so nothing merges
    anyway; with the ban touching Dy only, Nd's regimes look alike: the tree merges to
    one path, unless builds are decided at its nodes (then a build fixed in the ban
    node need not be the one fixed in the normal node)."""
    inst = two_mines()
    rules = inst["scenarios"]["regimes"]["states"]["ban"]["disruptions"]
    inst["scenarios"]["regimes"]["states"]["ban"]["disruptions"] = rules[:1]   # Dy only
    d = problem_data(instance_from_dict(inst))
    nd, _ = subset_data(d, [0])
    merged, _ = reduce_data(nd)
    assert len(merged.scenarios) == 1
    kept, red = reduce_data(nd, fixed_builds=True)
    # builds decided in 2026 and 2027 (nodes after those years) stay apart; 2028's
    # two regimes below each 2027 node merge
    assert len(kept.scenarios) == 4
    assert sorted(len(m) for m in red.members) == [2, 2, 2, 2]
    # and the answer is the monolithic one
    loaded = instance_from_dict(inst)
    assert solve_instance(loaded).summary["objective"] == pytest.approx(
        solve_instance(loaded, decompose=False).summary["objective"], rel=1e-9)


def test_a_required_build_and_an_excluded_one() -> None:
    inst = two_mines(cost=50000.0)
    inst["policies"] = {"fund": {"build": {"project": "au-mine", "min_size": 1}},
                        "ban": {"exclude": [{"project": "dy-plant"}]},
                        "both": {"build": {"project": "au-mine"},
                                 "exclude": [{"project": "au-mine"}]}}
    loaded = instance_from_dict(inst)
    for policy in ("fund", "ban"):
        split = solve_instance(loaded, policy)
        mono = solve_instance(loaded, policy, decompose=False)
        assert split.summary["blocks"] == 2
        assert split.summary["objective"] == pytest.approx(mono.summary["objective"],
                                                           rel=1e-9), policy
    fund = solve_instance(loaded, "fund")
    assert fund.summary["builds"]["au-mine"]["expected_size"] == pytest.approx(1.0)
    assert len(fund.result.duals["build"]) == len(fund.built.row_meta["build"]) > 0
    both = solve_instance(loaded, "both")
    assert both.summary["status"] == "infeasible"
    assert "requires project au-mine" in both.summary["message"]


def test_a_run_stopped_at_its_time_limit_reports_its_bound(tmp_path: Path) -> None:
    """Through the command line on a model large enough for the Benders route (a
    sampled regime chain, two all-or-nothing projects): stopped after its first
    round, the run keeps the best plan it evaluated, reports the master's bound and
    gap, and exits 3; the bound is below the optimum, the plan above it."""
    data = synthetic_instance(6, 4, 8, 3000, 4, regimes=3, projects=2, integer=True)
    path = tmp_path / "big.yaml"
    path.write_text(instance_to_yaml(data))
    proc = subprocess.run([sys.executable, "-m", "model.cli", "solve", str(path),
                           "--time-limit", "0.001", "--out", "run"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 3, proc.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "time_limit" and summary["blocks"] == 4
    mip = summary["mip"]
    assert mip["plan_at_limit"] and mip["bound"] is not None and mip["gap"] > 1e-4
    assert (tmp_path / "run" / "allocation.csv").exists()
    best = solve_instance(instance_from_dict(data))
    assert best.summary["status"] == "optimal" and best.summary["mip"]["gap"] <= 1e-4
    assert mip["bound"] <= best.summary["mip"]["bound"] + 1e-6
    assert best.summary["objective"] <= summary["objective"] + 1e-6


def test_a_floor_only_builds_can_meet() -> None:
    """A Japanese plant exists only as a project (adding Nd and Dy); a 20 % domestic
    floor on Dy cannot be met without it: the Dy block is infeasible with nothing
    built, the master learns how much must be built (feasibility cuts) and the answer
    is the monolithic one."""
    inst = two_mines()
    inst["sources"].append(contract("jp", "JP", {"Nd": {"capacity": 0, "price": 300},
                                                 "Dy": {"capacity": 0, "price": 900}},
                                    lead_time=0))
    inst["projects"].append({"id": "jp-plant", "source": "jp", "capacity": {"Nd": 2, "Dy": 3},
                             "cost": 2500, "build_time": 0,
                             "decide": {"from": 2026, "until": 2027}})
    inst["policies"] = {"home": {"min_domestic_share": {"share": 0.2, "stage": "mining",
                                                        "elements": ["Dy"]}}}
    loaded = instance_from_dict(inst)
    split = solve_instance(loaded, "home")
    mono = solve_instance(loaded, "home", decompose=False)
    assert mono.summary["status"] == "optimal"
    assert split.summary["blocks"] == 2 and split.summary["status"] == "optimal"
    assert split.summary["objective"] == pytest.approx(mono.summary["objective"], rel=1e-9)
    assert split.summary["builds"]["jp-plant"]["expected_size"] > 0


def test_all_or_nothing_projects_go_to_the_loop_only_without_share_or_stock_rules() -> None:
    """The bundled regime instance (1,796 scenarios, all-or-nothing projects): `none`
    and `no-stock` through Benders; `crma65` (share rules, where the loop's bound crept
    for minutes and one MIP takes a minute) and `stockpile-60d` (stock rules) as one
    MIP of the tied blocks."""
    from pathlib import Path

    from model.api import _route
    from model.formulation.policies import resolve_policy
    from model.input.data import problem_data
    from model.input.instance import load_instance

    loaded = load_instance(Path(__file__).resolve().parents[1] / "instances"
                           / "japan_2026_regimes.yaml")
    data = problem_data(loaded)
    routes = {p: _route(data, resolve_policy(loaded.instance, data, p), "matrix", True)[0]
              for p in ("none", "no-stock", "crma65", "stockpile-60d")}
    assert routes == {"none": "benders", "no-stock": "benders", "crma65": "one",
                      "stockpile-60d": "one"}
