"""Decomposition by element blocks gives the monolithic answer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from model.api import solve_instance
from model.input.builders import synthetic_instance
from model.input.data import problem_data
from model.solve.decompose import element_blocks, solve_blocks
from model.input.instance import instance_from_dict
from model.formulation.policies import resolve_policy

KEYS = {"allocation": ["source", "element", "period"],
        "deliveries": ["scenario", "source", "element", "period"],
        "balance": ["scenario", "element", "period"], "scenarios": ["scenario"]}


def _loaded(seed: int = 5, lam: float = 0.0):
    data = synthetic_instance(8, 5, 3, 6, seed=seed)
    data["risk"] = {"lambda": lam, "alpha": 0.9}
    return instance_from_dict(data)


def test_blocks_follow_the_coupling_rules() -> None:
    loaded = _loaded()
    d = problem_data(loaded)
    inst = loaded.instance
    assert len(element_blocks(d, resolve_policy(inst, d, "none"))) == 5
    assert len(element_blocks(d, resolve_policy(inst, d, "crma65"))) == 5
    grouped = element_blocks(d, resolve_policy(inst, d, "crma65-group"))
    assert sorted(map(sorted, grouped)) == sorted(
        sorted(d.elements.index(e) for e in members) for members in inst.groups.values())
    d_risk = problem_data(loaded, risk_lambda=0.3)
    assert len(element_blocks(d_risk, resolve_policy(inst, d_risk, "none"))) == 1


@pytest.mark.parametrize("policy, lam", [("none", 0.0), ("crma65", 0.0), ("plan50", 0.0),
                                         ("crma65-group", 0.0), ("none", 0.3)])
def test_decomposed_equals_monolithic(policy: str, lam: float) -> None:
    loaded = _loaded(lam=lam)
    mono = solve_instance(loaded, policy, decompose=False)
    split = solve_instance(loaded, policy, decompose=True)
    assert mono.summary["status"] == split.summary["status"] == "optimal"
    assert split.summary["objective"] == pytest.approx(mono.summary["objective"], rel=1e-7)
    for key in ("expected_cost", "cvar", "expected_shortage_t", "worst_shortage_t"):
        assert split.summary[key] == pytest.approx(mono.summary[key], rel=1e-6, abs=1e-6), key
    for name, keys in KEYS.items():
        a = mono.tables[name].sort_values(keys).reset_index(drop=True)
        b = split.tables[name].sort_values(keys).reset_index(drop=True)
        assert list(a.columns) == list(b.columns)
        assert a[keys].equals(b[keys]), name
        num = a.select_dtypes("number").columns
        np.testing.assert_allclose(b[num].to_numpy(float), a[num].to_numpy(float),
                                   rtol=1e-6, atol=1e-6, err_msg=name)
    d_keys = ["constraint", "rule", "source", "element", "period", "country", "stage",
              "scenario"]
    da = mono.tables["duals"].sort_values(d_keys).reset_index(drop=True)
    db = split.tables["duals"].sort_values(d_keys).reset_index(drop=True)
    assert da[d_keys].astype(str).equals(db[d_keys].astype(str))
    demand = da.constraint == "demand"
    np.testing.assert_allclose(db.value[demand], da.value[demand], rtol=1e-6, atol=1e-3)


def test_parallel_workers_give_the_same_answer() -> None:
    loaded = _loaded(seed=9)
    d = problem_data(loaded)
    resolved = resolve_policy(loaded.instance, d, "none")
    blocks = element_blocks(d, resolved)
    serial = solve_blocks(loaded.instance, d, resolved, "none", None, blocks, workers=1)[1]
    import model.solve.decompose as dec

    old = dec.PARALLEL_MIN_DELIVERIES
    dec.PARALLEL_MIN_DELIVERIES = 0
    try:
        parallel = solve_blocks(loaded.instance, d, resolved, "none", None, blocks,
                                workers=2)[1]
    finally:
        dec.PARALLEL_MIN_DELIVERIES = old
    assert parallel.objective == pytest.approx(serial.objective, rel=1e-12)
    np.testing.assert_allclose(parallel.values["q"], serial.values["q"], atol=1e-9)


def test_identical_scenarios_are_merged_exactly() -> None:
    """Per element, scenarios that do not touch it are one scenario; the merged
    solve gives the monolithic objective, tables and demand duals."""
    from model.solve.decompose import reduce_data, subset_data

    loaded = _loaded(seed=21)
    d = problem_data(loaded)
    sub, _ = subset_data(d, [0])
    merged, red = reduce_data(sub)
    assert len(merged.scenarios) < len(sub.scenarios)
    assert sum(len(m) for m in red.members) == len(sub.scenarios)
    assert merged.probability.sum() == pytest.approx(1.0)
    mono = solve_instance(loaded, "crma65", decompose=False)
    split = solve_instance(loaded, "crma65", decompose=True)
    assert split.summary["objective"] == pytest.approx(mono.summary["objective"], rel=1e-7)
    da = mono.tables["duals"]
    db = split.tables["duals"]
    for constraint in ("demand", "max_single_country_share"):
        a = da[da.constraint == constraint].groupby(["element", "period"]).value.sum()
        b = db[db.constraint == constraint].groupby(["element", "period"]).value.sum()
        pd.testing.assert_series_equal(a.sort_index(), b.sort_index(), rtol=1e-6, atol=1e-3)


def test_policies_pooled_give_each_policy_its_own_answer(monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    """compare pools the element blocks of every policy in one set of workers
    (solve_each_policy): each policy's run equals its own solve_instance, to the last
    bit (the same blocks built and solved alike), whichever route a policy takes."""
    import model.solve.decompose as dec
    from model.api import solve_each_policy

    loaded = _loaded(seed=11)
    policies = ["none", "crma65-group", "crma65", "plan50"]
    alone = {p: solve_instance(loaded, p) for p in policies}
    monkeypatch.setattr(dec, "PARALLEL_MIN_DELIVERIES", 0)      # workers even this small
    pooled = solve_each_policy(loaded, policies)
    assert list(pooled) == policies
    for p in policies:
        a, b = alone[p], pooled[p]
        assert b.summary["status"] == a.summary["status"] == "optimal"
        assert b.summary["objective"] == a.summary["objective"]
        assert b.summary["blocks"] == a.summary["blocks"]
        for name, table in a.tables.items():
            pd.testing.assert_frame_equal(b.tables[name], table, check_exact=True)
