"""One model for several policies (model.solve.switch): the same answers as separate solves.

`compare` builds one union model per element block and switches policies by
bounds, re-solving warm. Each policy's answer must be the one a cold, separate
solve gives: same status and objective, tables of the same shape and keys, and
a run folder that passes the independent check (model.analysis.verify).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import base_instance, contract, spot, write_instance
from model.studies.compare import compare_policies
from model.input.builders import synthetic_instance
from model.input.data import problem_data
from model.output.export import save_run
from model.input.instance import instance_from_dict, load_instance
from model.formulation.policies import resolve_policy
from model.solve.switch import PolicySwitcher, solve_policies
from model.analysis.verify import verify_run

ROOT = Path(__file__).resolve().parents[1]
KEYS = {"allocation": ["source", "element", "period"],
        "deliveries": ["source", "element", "period", "scenario"],
        "balance": ["element", "period", "scenario"]}


def _synthetic(tmp_path: Path, lam: float = 0.0):
    """A small synthetic instance with policies of every kind (rows, exclusions,
    couplings, an infeasible floor and an infeasible budget)."""
    inst = synthetic_instance(6, 4, 3, 6, seed=2)
    inst["policies"].update({
        "no-cn": {"exclude": [{"mined_in": "CN"}]},
        "floor-stock": {"min_domestic_share": {"share": 0.02, "stage": "mining"},
                        "min_stock_days": {"days": 30}},
        "budget": {"budget": {"amount": 1.0e15},
                   "max_single_country_share": {"share": 0.8}},
        "tight-budget": {"budget": {"amount": 1.0}},
        "floor-nowhere": {"min_domestic_share": {"share": 0.5, "stage": "refining"},
                          "exclude": [{"mined_in": "JP"}, {"refined_in": "JP"}]},
        "no-stock": {"build_stock": False},
        "no-stock-phased": {"build_stock": False,
                            "max_single_country_share": {"share": {inst["periods"][-1]: 0.7}}},
    })
    inst["risk"] = {"lambda": lam, "alpha": 0.9}
    return load_instance(write_instance(tmp_path, inst))   # a file: verify reads its copy


def _assert_same_runs(shared: dict, cold: dict, tmp_path: Path) -> None:
    for name, run in shared.items():
        ref = cold[name]
        assert run.summary["status"] == ref.summary["status"], name
        if not ref.optimal:
            # the same rules are named (a decomposed cold solve may word the scenarios
            # of a row differently: its blocks merge scenarios they cannot tell apart)
            def rules(msg: str) -> set[str]:
                return {part.split(":")[0].strip() for part in msg.split("; ")}
            assert rules(run.summary["message"]) == rules(ref.summary["message"]), name
            continue
        assert run.summary["objective"] == pytest.approx(ref.summary["objective"], rel=1e-7)
        for table, keys in KEYS.items():
            a, b = run.tables[table], ref.tables[table]
            assert list(a.columns) == list(b.columns), (name, table)
            pd.testing.assert_frame_equal(a[keys].astype(str), b[keys].astype(str))
        assert set(run.tables["duals"].constraint) == set(ref.tables["duals"].constraint)
        assert len(run.tables["duals"]) == len(ref.tables["duals"]), name
        folder = save_run(run, tmp_path / name, charts=False)
        assert verify_run(folder) == [], name


@pytest.mark.parametrize("lam", [0.0, 0.5])
def test_shared_model_equals_separate_solves(lam: float, tmp_path: Path) -> None:
    loaded = _synthetic(tmp_path, lam)
    names = ["none", "crma65", "no-cn", "tight-budget", "crma65-group", "plan50",
             "floor-stock", "budget", "floor-nowhere", "no-stock", "no-stock-phased"]
    table, shared = compare_policies(loaded, names, reuse=True)
    _, cold = compare_policies(loaded, names, reuse=False)
    assert table.policy.tolist() == names
    statuses = {n: r.summary["status"] for n, r in shared.items()}
    assert statuses["tight-budget"] == "infeasible"
    assert statuses["floor-nowhere"] == "infeasible"
    assert statuses["none"] == statuses["no-cn"] == statuses["budget"] == "optimal"
    _assert_same_runs(shared, cold, tmp_path)


@pytest.mark.parametrize("instance, names", [
    ("example.yaml", ["none", "crma", "no-china", "resilient"]),
    ("japan_2026.yaml", ["none", "crma65", "crma65-group", "crma50", "no-china-refining",
                         "stockpile-60d", "domestic-10"]),
])
def test_bundled_instances_compare_the_same(instance: str, names: list[str],
                                            tmp_path: Path) -> None:
    loaded = load_instance(ROOT / "instances" / instance)
    _, shared = compare_policies(loaded, names, reuse=True)
    _, cold = compare_policies(loaded, names, reuse=False)
    _assert_same_runs(shared, cold, tmp_path)


def test_switching_back_gives_the_first_answer_again(tmp_path: Path) -> None:
    """A, B, A on one HiGHS instance: the second A (warm, from B's basis) equals the first."""
    loaded = _synthetic(tmp_path)
    data = problem_data(loaded)
    pols = [resolve_policy(loaded.instance, data, n) for n in ("crma65", "no-cn")]
    sw = PolicySwitcher(data, pols)
    first_built, first = sw.solve(0)
    _, other = sw.solve(1)
    again_built, again = sw.solve(0)
    assert first.optimal and other.optimal and again.optimal
    assert other.objective > first.objective        # excluding China costs more here
    assert again.objective == pytest.approx(first.objective, rel=1e-9)
    # the view has the policy's own columns: no excluded arc left in it
    no_cn = pols[1].excluded_arcs
    assert no_cn.any()
    np.testing.assert_array_equal(first_built.x_index, again_built.x_index)
    _, _ = sw.solve(1)
    view, res = sw.solve(1)
    assert not no_cn[view.q_index[:, 0]].any() and not no_cn[view.x_index[:, 0]].any()
    assert len(res.values["q"]) == len(view.q_index)
    # the build and hand-off are charged once
    assert first_built.build_seconds > 0 and view.build_seconds == 0


def test_policy_named_twice_is_solved_once() -> None:
    loaded = load_instance(ROOT / "instances" / "example.yaml")
    table, runs = compare_policies(loaded, ["none", "crma", "crma"])
    assert table.policy.tolist() == ["none", "crma"] and list(runs) == ["none", "crma"]


def test_duals_of_a_switched_policy_price_its_own_rows() -> None:
    """Tiny: demand 100, CN spot at 10, AU spot at 20. Under a 60 % cap on CN,
    40 t must come from AU: the CN refining cap row's dual is -(20 - 10) = -10 per tonne of
    right-hand side. Under 'none' (solved first on the same model) the cap row
    is freed and absent from the duals."""
    inst = base_instance(
        sources=[spot("cn", "CN", {"Nd": {"capacity": 1000, "price": 10}}),
                 contract("au", "AU", {"Nd": {"capacity": 1000, "price": 20}})],
        policies={"cap": {"max_single_country_share": {"share": 0.6,
                                                           "stages": ["refining"]}}})
    loaded = instance_from_dict(inst)
    _, runs = compare_policies(loaded, ["none", "cap"])
    assert runs["none"].summary["objective"] == pytest.approx(1000)
    assert runs["cap"].summary["objective"] == pytest.approx(60 * 10 + 40 * 20)
    none_duals = runs["none"].tables["duals"]
    assert "max_single_country_share" not in set(none_duals.constraint)
    cap = runs["cap"].tables["duals"]
    cap = cap[cap.constraint == "max_single_country_share"]
    assert dict(zip(cap.country, cap.value)) == pytest.approx({"CN": -10.0, "AU": 0.0})


@settings(max_examples=10, deadline=None)
@given(st.permutations(["none", "crma65", "plan50", "no-cn", "floor-stock"]),
       st.integers(0, 3))
def test_order_of_policies_does_not_change_their_answers(order: list[str], seed: int) -> None:
    """Each policy's optimum on the shared model is the same whichever policy's
    basis the re-solve starts from."""
    inst = synthetic_instance(5, 3, 3, 4, seed=seed)
    inst["policies"].update({"no-cn": {"exclude": [{"mined_in": "CN"}]},
                             "floor-stock": {"min_stock_days": {"days": 30},
                                             "max_single_country_share": {"share": 0.7}}})
    loaded = instance_from_dict(inst)
    data = problem_data(loaded)
    pols = {n: resolve_policy(loaded.instance, data, n) for n in order}
    shared = dict(zip(order, (r for _, r in solve_policies(data, list(pols.values())))))
    alone = {n: solve_policies(data, [p])[0][1] for n, p in pols.items()}
    for n in order:
        assert shared[n].status == alone[n].status
        if alone[n].optimal:
            assert shared[n].objective == pytest.approx(alone[n].objective, rel=1e-7)


def test_compare_reports_progress_per_shared_model_and_per_policy() -> None:
    loaded = load_instance(ROOT / "instances" / "example.yaml")
    calls: list[tuple[str, int]] = []
    compare_policies(loaded, ["none", "crma", "no-china"], with_metrics=True, reuse=True,
                     progress=lambda what, done: calls.append((what, done)))
    assert calls[0] == ("none + crma + no-china (one model)", 0)
    assert [c for c in calls[1:]] == [(f"{n}: stochastic metrics", i)
                                      for i, n in enumerate(["none", "crma", "no-china"])]
    calls.clear()
    compare_policies(loaded, ["none", "crma"],      # the default: one model per policy,
                     progress=lambda what, done: calls.append((what, done)))
    assert calls == [("none + crma (element blocks in one pool)", 0)]   # blocks pooled
    calls.clear()
    compare_policies(loaded, ["none", "crma"], risk_lambda=1.0,   # lambda 1: one by one
                     progress=lambda what, done: calls.append((what, done)))
    assert calls == [("none", 0), ("crma", 1)]


def test_each_view_has_its_own_models_rows_and_columns(tmp_path: Path) -> None:
    """The view of a switched policy is indexed as that policy's own build:
    same rows per family (contract rows of excluded arcs dropped too), same
    variables, same counts."""
    from model.formulation.matrix import build_matrix

    loaded = _synthetic(tmp_path, lam=0.5)
    data = problem_data(loaded)
    names = ["none", "no-cn", "crma65", "floor-stock", "budget", "floor-nowhere"]
    pols = [resolve_policy(loaded.instance, data, n) for n in names]
    for pol, (view, result) in zip(pols, solve_policies(data, pols)):
        own = build_matrix(data, pol)
        np.testing.assert_array_equal(view.x_index, own.x_index)
        np.testing.assert_array_equal(view.q_index, own.q_index)
        for fam, meta in own.row_meta.items():
            pd.testing.assert_frame_equal(view.row_meta[fam], meta, check_dtype=False,
                                          obj=f"{pol.name} {fam}")
            if result.optimal:
                assert len(result.duals[fam]) == len(meta)
        assert view.trivially_infeasible == own.trivially_infeasible
        if own.trivially_infeasible:
            assert (result.n_variables, result.n_constraints) == (0, 0)
        else:
            assert (result.n_variables, result.n_constraints) == own.matrix.A.shape[::-1]


def test_time_limit_applies_to_each_re_solve() -> None:
    """HiGHS measures time_limit against its instance's total run time; every
    re-solve of one model must get the whole limit again."""
    from model.formulation.matrix import build_matrix
    from model.solve.solve import HighsModel, SolveOptions

    loaded = instance_from_dict(synthetic_instance(8, 6, 4, 30, seed=1))
    data = problem_data(loaded)
    built = build_matrix(data, resolve_policy(loaded.instance, data, "crma65"))
    probe = HighsModel(built)
    probe.solve()
    one = max(probe.highs.getRunTime(), 1e-3)
    limit = 4 * one
    hm = HighsModel(built, SolveOptions(time_limit_s=limit))
    for _ in range(40):                      # cold re-solves until well past the limit
        hm.highs.clearSolver()
        assert hm.solve().status == "optimal"
        if hm.highs.getRunTime() > 3 * limit:
            break
    assert hm.highs.getRunTime() > 3 * limit
