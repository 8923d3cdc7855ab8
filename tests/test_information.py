"""What is known when (issue 13): the information tree, node decisions, lead times.

Known answers derived by hand in the docstrings; properties: clairvoyant never
costs more than history, history on identical scenarios is the deterministic
model, decomposition and scenario merging on trees equal the monolithic solve.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import base_instance, contract, solve_dict, spot
from model.api import solve_instance
from model.input.builders import synthetic_instance
from model.input.data import problem_data
from model.solve.decompose import reduce_data, subset_data
from model.input.instance import instance_from_dict
from model.analysis.verify import verify_run


def prestock_instance(information: str = "history") -> dict:
    """Dy 10 t in periods 1 and 2; CN spot at 100/t; a ban on CN in period 2 with
    probability 0.1 that nothing in period 1 announces; holding 200/t; penalty 1,000/t.

    Stocking one tonne in period 1 costs 200 (holding) in every scenario and saves
    1,000 - 100 - 200 = 700 in the ban: +0.9 x 200 - 0.1 x 700 = +110 in
    expectation, so history does not stock: E = 0.9 x 2,000 + 0.1 x (1,000 +
    10,000) = 2,900. Clairvoyant stocks 10 t in the ban only: ban 2,000 + 2,000 =
    4,000, E = 0.9 x 2,000 + 0.1 x 4,000 = 2,200.
    """
    return base_instance(
        periods=[1, 2], elements=["Dy"], demand={"Dy": 10},
        shortage_penalty={"default": 1000}, stock={"holding_cost": {"Dy": 200}},
        information=information,
        sources=[spot("cn", "CN", {"Dy": {"capacity": 100, "price": 100}})],
        scenarios=[{"id": "normal", "probability": 0.9},
                   {"id": "ban", "probability": 0.1,
                    "disruptions": [{"match": {"mined_in": "CN"}, "periods": [2],
                                     "availability": 0}]}])


@pytest.mark.parametrize("information, expected", [("history", 2900.0),
                                                   ("clairvoyant", 2200.0)])
def test_prestocking_needs_foresight(solve, information: str, expected: float) -> None:
    run = solve(prestock_instance(information))
    assert run.summary["objective"] == pytest.approx(expected)
    bal = run.tables["balance"].set_index(["scenario", "period"])
    ban_stock = bal.loc[("ban", 1), "stock_t"]
    assert ban_stock == pytest.approx(0.0 if information == "history" else 10.0)
    assert bal.loc[("normal", 1), "stock_t"] == pytest.approx(0.0)
    tree = run.tables["tree"]
    assert list(tree.n_scenarios) == [2, 2, 1, 1]       # root, shared period 1, then split
    assert run.summary["tree"]["first_split"] == "2"


def test_clairvoyant_is_the_two_stage_model(solve) -> None:
    """Without lead times, clairvoyant is what the tool solved before the tree existed:
    the ban scenario stocks up, the normal one does not."""
    run = solve(prestock_instance("clairvoyant"))
    d = run.tables["deliveries"].set_index(["scenario", "period"])["delivered_t"]
    assert d[("ban", 1)] == pytest.approx(20.0) and d[("normal", 1)] == pytest.approx(10.0)


def lead_time_instance(lead_time: int | None) -> dict:
    """Dy 10 t/period; CN spot 100/t; an AU contract at 300/t, fee 10 % (30/t per
    contracted tonne), capacity 10; no stock. Scenario `warning` (p = 0.5) shows a
    10 % CN price rise in period 1 and loses CN in period 2; `calm` (p = 0.5) does not.

    Period 1: CN in both, 0.5 x 1,000 + 0.5 x 1,100 = 1,050; no contract (the fee
    buys nothing). Period 2, contract decided at the root (no lead time):
    30 x + 0.5 x 1,000 + 0.5 (300 x + 1,000 (10 - x)) = 5,500 - 320 x, so x = 10:
    2,300; total 3,350. With lead time 1 the period-2 contract is decided with
    period 1's news: 0 in calm, 10 in warning: 0.5 x 1,000 + 0.5 x (300 + 3,000) =
    2,150; total 3,200. The period-1 contract (1 - 1 = 0: before the first period)
    is decided at the root either way.
    """
    au = contract("au", "AU", {"Dy": {"capacity": 10, "price": 300}}, fee=0.1)
    if lead_time is not None:
        au["lead_time"] = lead_time
    return base_instance(
        periods=[1, 2], elements=["Dy"], demand={"Dy": 10},
        shortage_penalty={"default": 1000}, stock={"capacity": {"Dy": 0}},
        sources=[spot("cn", "CN", {"Dy": {"capacity": 100, "price": 100}}), au],
        scenarios=[{"id": "calm", "probability": 0.5},
                   {"id": "warning", "probability": 0.5,
                    "price_shocks": [{"match": {"mined_in": "CN"}, "periods": [1],
                                      "multiplier": 1.1}],
                    "disruptions": [{"match": {"mined_in": "CN"}, "periods": [2],
                                     "availability": 0}]}])


@pytest.mark.parametrize("lead_time, expected", [(None, 3350.0), (0, 3200.0), (1, 3200.0),
                                                 (5, 3350.0)])
def test_lead_time_decides_with_the_news_of_its_period(solve, lead_time: int | None,
                                                       expected: float) -> None:
    """Lead time 0 decides each period's contract with that period's own data (here
    period 2's contract at the node of period 2, as good as lead time 1, since the
    scenarios split in period 1); lead time 5 reaches before the first period: root."""
    run = solve(lead_time_instance(lead_time))
    assert run.summary["objective"] == pytest.approx(expected)
    alloc = run.tables["allocation"]
    au = alloc[alloc.source == "au"].set_index(["period", "node"])
    if lead_time in (None, 5):
        assert list(au.decided_in) == ["root", "root"]
        assert au.loc[(2, "root"), "contracted_t"] == pytest.approx(10.0)
    else:
        first = alloc[(alloc.source == "au") & (alloc.period == 1)]
        assert set(first.decided_in) == ({"root"} if lead_time == 1 else {1})
        assert first.contracted_t.sum() == pytest.approx(0.0)
        want = 1 if lead_time == 1 else 2
        rows = alloc[(alloc.source == "au") & (alloc.period == 2)]
        assert set(rows.decided_in) == {want}
        by_node = dict(zip(rows.node, rows.contracted_t))
        assert sorted(by_node.values()) == pytest.approx([0.0, 10.0])
        assert rows.node_probability.tolist() == pytest.approx([0.5, 0.5])


def three_scenario_node() -> dict:
    """Three scenarios share period 1: a (p 0.6) normal, b (0.3) CN ban in period 2,
    c (0.1) the ban and double demand in period 2. Dy 10 t/period, CN 100/t,
    holding 50/t, penalty 1,000/t.

    Stock s bought in period 1 is one decision for the node {a, b, c}. On
    [0, 10]: dE/ds = 100 + 50 - 0.6 x 100 - 0.3 x 1,000 - 0.1 x 1,000 = -310;
    on [10, 20]: 100 + 50 + 0.6 x 50 + 0.3 x 50 - 0.1 x 1,000 = +95: s = 10.
    a = b = 2,000 + 500 = 2,500, c = 2,500 + 10 x 1,000 = 12,500; E = 3,500.
    """
    ban = {"match": {"mined_in": "CN"}, "periods": [2], "availability": 0}
    return base_instance(
        periods=[1, 2], elements=["Dy"], demand={"Dy": 10},
        shortage_penalty={"default": 1000}, stock={"holding_cost": {"Dy": 50}},
        sources=[spot("cn", "CN", {"Dy": {"capacity": 100, "price": 100}})],
        scenarios=[{"id": "a", "probability": 0.6},
                   {"id": "b", "probability": 0.3, "disruptions": [ban]},
                   {"id": "c", "probability": 0.1, "disruptions": [ban],
                    "demand_shocks": [{"periods": [2], "multiplier": 2}]}])


def test_a_node_with_three_scenarios(solve) -> None:
    run = solve(three_scenario_node())
    assert run.summary["objective"] == pytest.approx(3500.0)
    bal = run.tables["balance"]
    first = bal[bal.period == 1]
    assert first.stock_t.tolist() == pytest.approx([10.0, 10.0, 10.0])
    tree = run.tables["tree"].set_index("node")
    assert tree.loc["1.1", "scenarios"] == "a;b;c"
    assert tree.loc["1.1", "probability"] == pytest.approx(1.0)
    assert set(tree.loc[tree.period.astype(str) == "2", "n_scenarios"]) == {1}
    duals = run.tables["duals"]
    stock_rows = duals[(duals.constraint == "demand")]
    assert len(stock_rows) == 2            # demand duals summed over scenarios per period


@pytest.mark.parametrize("make", [prestock_instance, three_scenario_node,
                                  lambda: lead_time_instance(1)])
def test_clairvoyant_never_costs_more(tmp_path: Path, make) -> None:
    inst = make()
    hist = solve_dict(tmp_path, {**inst, "information": "history"})
    clair = solve_dict(tmp_path, {**inst, "information": "clairvoyant"})
    assert clair.summary["objective"] <= hist.summary["objective"] + 1e-9


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), lam=st.sampled_from([0.0, 0.5]))
def test_clairvoyant_bound_on_random_trees(seed: int, lam: float) -> None:
    data = synthetic_instance(4, 2, 3, 5, seed=seed)
    data["risk"] = {"lambda": lam, "alpha": 0.8}
    hist = solve_instance(instance_from_dict({**data, "information": "history"}), "crma65")
    clair = solve_instance(instance_from_dict({**data, "information": "clairvoyant"}),
                           "crma65")
    assert clair.summary["objective"] <= hist.summary["objective"] * (1 + 1e-9) + 1e-6


def test_identical_scenarios_are_the_deterministic_model(tmp_path: Path) -> None:
    one = base_instance(periods=[1, 2, 3], elements=["Dy"], demand={"Dy": {1: 5, 2: 8, 3: 4}},
                        shortage_penalty={"default": 500}, stock={"holding_cost": {"Dy": 1}},
                        sources=[spot("cn", "CN", {"Dy": {"capacity": 6, "price": 100}}),
                                 contract("au", "AU", {"Dy": {"capacity": 3, "price": 150}},
                                          fee=0.2, lead_time=1)])
    same = {**one, "scenarios": [{"id": f"w{i}", "probability": p}
                                 for i, p in enumerate([0.2, 0.3, 0.5])]}
    det = solve_dict(tmp_path, one)
    tree = solve_dict(tmp_path, same)
    assert tree.summary["objective"] == pytest.approx(det.summary["objective"], rel=1e-12)
    assert tree.summary["tree"]["nodes"] == 4            # one path: root + 3 periods
    assert tree.tables["allocation"].contracted_t.sum() == pytest.approx(
        det.tables["allocation"].contracted_t.sum())


KEYS = {"allocation": ["source", "element", "period", "node"],
        "deliveries": ["scenario", "source", "element", "period"],
        "balance": ["scenario", "element", "period"], "scenarios": ["scenario"]}
D_KEYS = ["constraint", "rule", "source", "element", "period", "country", "stage",
          "scenario", "node"]


def _tree_instance(seed: int, lead: bool) -> dict:
    data = synthetic_instance(8, 5, 4, 8, seed=seed)
    if lead:
        for src in data["sources"]:
            if src["mode"] == "contract":
                src["lead_time"] = 1 + int(src["id"][-1]) % 2
    return data


@pytest.mark.parametrize("policy", ["none", "crma65", "crma65-group", "plan50"])
@pytest.mark.parametrize("lead", [False, True], ids=["root", "lead-time"])
def test_decomposition_and_merging_equal_the_monolith_on_trees(policy: str, lead: bool) -> None:
    loaded = instance_from_dict(_tree_instance(3, lead))
    d = problem_data(loaded)
    assert d.tree.nodes_per_period()[0] < len(d.scenarios)        # a real tree
    sub, _ = subset_data(d, [0])
    merged, red = reduce_data(sub)
    assert len(merged.scenarios) < len(sub.scenarios)              # merging happens
    mono = solve_instance(loaded, policy, decompose=False)
    split = solve_instance(loaded, policy, decompose=True)
    assert split.summary["objective"] == pytest.approx(mono.summary["objective"], rel=1e-7)
    for name, keys in KEYS.items():
        a = mono.tables[name].sort_values(keys).reset_index(drop=True)
        b = split.tables[name].sort_values(keys).reset_index(drop=True)
        assert a[keys].astype(str).equals(b[keys].astype(str)), name
        num = [c for c in a.select_dtypes("number").columns]
        np.testing.assert_allclose(b[num].to_numpy(float), a[num].to_numpy(float),
                                   rtol=1e-6, atol=1e-5, err_msg=name)
    da = mono.tables["duals"].sort_values(D_KEYS).reset_index(drop=True)
    db = split.tables["duals"].sort_values(D_KEYS).reset_index(drop=True)
    assert da[D_KEYS].astype(str).equals(db[D_KEYS].astype(str))
    for constraint in ("demand", "max_single_country_share"):
        a = da[da.constraint == constraint].groupby(["element", "period"]).value.sum()
        b = db[db.constraint == constraint].groupby(["element", "period"]).value.sum()
        pd.testing.assert_series_equal(a, b, rtol=1e-6, atol=1e-3)


def test_merging_keeps_what_the_tree_separates() -> None:
    """Two scenarios with identical Dy data merge for the Dy block only while their
    subtrees agree: a Dy-identical pair that another element splits early, with
    different Dy futures below, must stay apart under history."""
    inst = base_instance(
        periods=[1, 2, 3], elements=["Nd", "Dy"], demand={"default": 10},
        sources=[spot("cn", "CN", {"Nd": {"capacity": 50, "price": 10},
                                  "Dy": {"capacity": 50, "price": 100}})],
        scenarios=[{"id": "calm", "probability": 0.4},
                   # Nd news in period 1 announces a Dy ban in period 3
                   {"id": "signal", "probability": 0.3,
                    "disruptions": [{"match": {"mined_in": "CN"}, "elements": ["Nd"],
                                     "periods": [1], "availability": 0.5},
                                    {"match": {"mined_in": "CN"}, "elements": ["Dy"],
                                     "periods": [3], "availability": 0}]},
                   {"id": "noise", "probability": 0.3,
                    "disruptions": [{"match": {"mined_in": "CN"}, "elements": ["Nd"],
                                     "periods": [1], "availability": 0.5}]}])
    d = problem_data(instance_from_dict(inst))
    dy = d.elements.index("Dy")
    sub, _ = subset_data(d, [dy])
    merged, red = reduce_data(sub)
    groups = sorted(sorted(sub.scenarios[w] for w in m) for m in red.members)
    # calm and noise have identical Dy data, but noise shares its node with signal
    # from period 1: they cannot merge; nothing merges here
    assert groups == [["calm"], ["noise"], ["signal"]]
    mono = solve_instance(instance_from_dict(inst), decompose=False)
    split = solve_instance(instance_from_dict(inst), decompose=True)
    assert split.summary["objective"] == pytest.approx(mono.summary["objective"], rel=1e-9)


def test_verify_catches_anticipation_and_late_information(solve, tmp_path: Path) -> None:
    run = solve(three_scenario_node())
    folder = Path(run.summary["_folder"])
    # a period-1 delivery that differs between scenarios of one node
    bad = tmp_path / "anticipating"
    shutil.copytree(folder, bad)
    dl = pd.read_csv(bad / "deliveries.csv")
    row = dl.index[(dl.scenario == "c") & (dl.period == 1)][0]
    dl.loc[row, "delivered_t"] += 1.0
    dl.to_csv(bad / "deliveries.csv", index=False)
    assert any("differs between scenarios" in p for p in verify_run(bad))
    # a contract that claims information of a later period
    lead = solve(lead_time_instance(1))
    late = tmp_path / "late"
    shutil.copytree(Path(lead.summary["_folder"]), late)
    al = pd.read_csv(late / "allocation.csv")
    al.loc[(al.source == "au") & (al.period == 2), "decided_in"] = "2"
    al.to_csv(late / "allocation.csv", index=False)
    assert any("lead time makes it 1" in p for p in verify_run(late))
    # a tree that groups scenarios whose data differ
    tree = tmp_path / "tree"
    shutil.copytree(folder, tree)
    tr = pd.read_csv(tree / "tree.csv", dtype=str, keep_default_na=False)
    tr.loc[tr.node == "2.1", "scenarios"] = "a;b"
    tr.to_csv(tree / "tree.csv", index=False)
    assert any("tree.csv" in p for p in verify_run(tree))


def test_expected_value_plan_fixes_only_root_decisions() -> None:
    """EEV on a lead-time instance: the EV plan's root contracts are fixed, the
    contracts decided at later nodes stay free, so EEV >= RP and VSS >= 0."""
    from model.studies.metrics import stochastic_metrics

    loaded = instance_from_dict(lead_time_instance(1))
    m = stochastic_metrics(loaded)
    assert m["rp"] == pytest.approx(3200.0)
    assert m["eev"] >= m["rp"] - 1e-9 and m["vss"] >= -1e-9
    assert m["ws"] <= m["rp"] + 1e-9


def test_every_file_of_a_run_folder_is_one_sourcing_may_replace(tmp_path: Path) -> None:
    """--force recognises run folders by their files: the list must name every file
    that save_run writes (charts and the stock-floor table included)."""
    from model.output.export import save_run
    from model.input.folders import RUN_FILES, why_not_replaceable
    from test_contract_terms import stockpile_instance

    run = solve_instance(instance_from_dict(stockpile_instance(True)), "stock")
    folder = save_run(run, tmp_path / "run", charts=True)
    written = {p.name for p in folder.iterdir()}
    assert {"tree.csv", "tree.png", "stock_floors.csv"} <= written
    assert written <= RUN_FILES, written - RUN_FILES
    assert why_not_replaceable(folder) is None
