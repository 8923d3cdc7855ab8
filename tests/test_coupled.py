"""Blocks coupled by CVaR and budgets (model.solve.coupled, Dantzig–Wolfe): known answers
derived by hand, equality with the monolithic LP (objective, tables, duals) and
merging that stays exact for any scenario weights."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from conftest import base_instance, contract, spot
from model.api import solve_instance
from model.input.builders import synthetic_instance
from model.input.instance import instance_from_dict
from model.input.tree import reduce_scenarios


def two_bans(lam: float = 0.5, budget: float | None = None) -> dict[str, Any]:
    """Nd and Dy, 10 t each; CN spot at 100, an AU contract at 300 with a 20 % fee
    (60 per t reserved); CN stops Nd (ban-nd) or Dy (ban-dy), 5 % each; alpha 0.95.

    Per element with x t reserved: 60x + 1,000 when its CN supply flows, 10,000 - 640x
    when it does not. E = 2,900 + 25 (xNd + xDy): risk-neutral, reserve nothing.
    CVaR_0.95 = the worse ban = 11,000 + max(-640 xNd + 60 xDy, -640 xDy + 60 xNd).
    At lambda 0.5 the objective is 6,950 - 132.5 S on the diagonal xNd = xDy = S/2,
    which minimises the max for a given S: S = 20, objective 4,300 (E 3,400, CVaR
    5,200). A budget E <= 3,150 allows S <= 10: xNd = xDy = 5, objective 5,625.
    """
    inst = base_instance(
        elements=["Nd", "Dy"], demand={"Nd": 10, "Dy": 10},
        shortage_penalty={"default": 1000},
        sources=[spot("cn", "CN", {"Nd": {"capacity": 100, "price": 100},
                                   "Dy": {"capacity": 100, "price": 100}}),
                 contract("au", "AU", {"Nd": {"capacity": 10, "price": 300},
                                       "Dy": {"capacity": 10, "price": 300}}, fee=0.2)],
        scenarios=[{"id": "normal", "probability": 0.9},
                   {"id": "ban-nd", "probability": 0.05, "disruptions": [
                       {"match": {"mined_in": "CN"}, "elements": ["Nd"], "availability": 0.0}]},
                   {"id": "ban-dy", "probability": 0.05, "disruptions": [
                       {"match": {"mined_in": "CN"}, "elements": ["Dy"], "availability": 0.0}]}],
        risk={"lambda": lam, "alpha": 0.95})
    if budget is not None:
        inst["policies"] = {"capped": {"budget": [{"amount": budget}]}}
    return inst


def _contracted(run: Any) -> dict[str, float]:
    alloc = run.tables["allocation"]
    return alloc.groupby("element")["contracted_t"].sum().to_dict()


def test_cvar_couples_elements_known_answer(solve: Any) -> None:
    run = solve(two_bans())
    assert run.summary["blocks"] == 2          # decomposed, not one block
    assert run.result.coupling_iterations >= 1
    assert run.summary["objective"] == pytest.approx(4300.0, rel=1e-9)
    assert run.summary["expected_cost"] == pytest.approx(3400.0, rel=1e-9)
    assert run.summary["cvar"] == pytest.approx(5200.0, rel=1e-9)
    assert _contracted(run) == pytest.approx({"Nd": 10.0, "Dy": 10.0}, abs=1e-6)


def test_budget_against_the_tail_known_answer(solve: Any) -> None:
    run = solve(two_bans(budget=3150.0), "capped")
    assert run.summary["objective"] == pytest.approx(5625.0, rel=1e-9)
    assert run.summary["expected_cost"] == pytest.approx(3150.0, rel=1e-9)
    assert _contracted(run) == pytest.approx({"Nd": 5.0, "Dy": 5.0}, abs=1e-6)
    duals = run.tables["duals"]
    budget = duals[duals.constraint == "budget"]
    assert len(budget) == 1 and budget.value.iloc[0] < 0     # it binds: relaxing saves
    mono = solve_instance(instance_from_dict(two_bans(budget=3150.0)), "capped",
                          decompose=False)
    assert budget.value.iloc[0] == pytest.approx(
        mono.tables["duals"].query("constraint == 'budget'").value.iloc[0], rel=1e-6)


@pytest.mark.parametrize("lam, budget, status, objective", [
    (0.5, 2800.0, "infeasible", None),    # below the least expected cost, 2,900
    (0.0, 2800.0, "infeasible", None),
    (0.0, 3000.0, "optimal", 2900.0),     # lambda 0: the budget is slack
])
def test_budget_limits(lam: float, budget: float, status: str,
                       objective: float | None) -> None:
    run = solve_instance(instance_from_dict(two_bans(lam, budget)), "capped")
    assert run.summary["status"] == status
    if objective is not None:
        assert run.summary["objective"] == pytest.approx(objective, rel=1e-9)
    else:
        assert "budget" in run.summary["message"]


def _synthetic(lam: float, information: str, budget_slack: float | None = None,
               policy: str = "none") -> tuple[Any, str]:
    data = synthetic_instance(8, 5, 3, 8, seed=7, information=information)
    data["risk"] = {"lambda": lam, "alpha": 0.9}
    if budget_slack is not None:
        least = solve_instance(instance_from_dict({**data, "risk": {"lambda": 0.0}}), policy)
        rules = dict(data["policies"].get(policy, {})) if policy != "none" else {}
        rules["budget"] = [{"amount": least.summary["expected_cost"] * (1 + budget_slack)}]
        data["policies"] = {**data["policies"], "budgeted": rules}
        policy = "budgeted"
    return instance_from_dict(data), policy


@pytest.mark.parametrize("information", ["history", "clairvoyant"])
@pytest.mark.parametrize("policy, lam, slack", [
    ("none", 0.5, None), ("crma65", 0.3, None), ("crma65-group", 0.5, None),
    ("crma65", 0.5, 0.002)])
def test_coupled_equals_monolithic(information: str, policy: str, lam: float,
                                   slack: float | None) -> None:
    loaded, policy = _synthetic(lam, information, slack, policy)
    mono = solve_instance(loaded, policy, decompose=False)
    split = solve_instance(loaded, policy)
    assert mono.summary["status"] == split.summary["status"] == "optimal"
    assert split.summary["blocks"] > 1 and mono.summary["blocks"] == 1
    assert split.summary["objective"] == pytest.approx(mono.summary["objective"], rel=1e-7)
    for key in ("expected_cost", "cvar"):
        assert split.summary[key] == pytest.approx(mono.summary[key], rel=1e-6), key
    # the coupling rows' duals (CVaR tail weights, the budget) are the monolithic ones
    # where those are unique; the demand rows' marginal values likewise
    d_keys = ["constraint", "rule", "source", "element", "period", "country", "stage",
              "scenario"]
    da = mono.tables["duals"].sort_values(d_keys).reset_index(drop=True)
    db = split.tables["duals"].sort_values(d_keys).reset_index(drop=True)
    assert da[d_keys].astype(str).equals(db[d_keys].astype(str))
    for family in ("demand", "budget"):
        rows = da.constraint == family
        np.testing.assert_allclose(db.value[rows], da.value[rows], rtol=1e-5, atol=1e-2,
                                   err_msg=family)
    # every scenario's cost: the same CVaR tail
    sa = mono.tables["scenarios"].set_index("scenario").sort_index()
    sb = split.tables["scenarios"].set_index("scenario").sort_index()
    np.testing.assert_allclose(sb["cost"], sa["cost"], rtol=1e-6)


def test_any_weights_merging_keeps_branches_apart() -> None:
    """Two period-1 nodes with the same data and alike subtrees (two children each):
    merged for probabilities, kept apart when the weights of the scenarios are
    arbitrary (a tail weight on a1 need not be one on b1)."""
    # scenarios: a1 a2 | b1 b2; period 1: a = b (same data); period 2: x or y
    feat1 = np.array([[0.0], [0.0], [0.0], [0.0]])
    feat2 = np.array([[1.0], [2.0], [1.0], [2.0]])
    prob = np.array([0.2, 0.2, 0.3, 0.3])
    # the tree: root -> node A (a1, a2), node B (b1, b2); each splits in period 2
    node = np.array([[0, 0, 0, 0], [1, 1, 2, 2], [3, 4, 5, 6]])
    rows = np.zeros(2, dtype=np.int64)
    merged = reduce_scenarios([feat1, feat2], prob, node, node[1:], rows, "history")
    assert len(merged.members) == 2           # A and B merge: a1 with b1, a2 with b2
    apart = reduce_scenarios([feat1, feat2], prob, node, node[1:], rows, "history",
                             any_weights=True)
    assert len(apart.members) == 4
    # a node whose children are all alike is one path for any weights: it merges
    same2 = np.array([[1.0], [1.0], [1.0], [1.0]])
    one = reduce_scenarios([feat1, same2], prob, node, node[1:], rows, "history",
                           any_weights=True)
    assert len(one.members) == 1


def test_a_block_infeasible_before_solving_is_reported() -> None:
    """A floor no source can meet, found while building one block, under CVaR."""
    inst = two_bans(0.5)
    inst["policies"] = {"jp-nd": {"min_domestic_share": {"share": 0.1, "elements": ["Nd"]}}}
    run = solve_instance(instance_from_dict(inst), "jp-nd")
    assert run.summary["status"] == "infeasible"
    assert "Nd 2026 needs 1 t from JP-mined sources" in run.summary["message"]


def test_a_stalled_warm_pricing_is_solved_again_from_scratch(monkeypatch: Any) -> None:
    """HiGHS can end a warm-started re-solve with status Unknown (seen on the bench's
    budget at W = 100); the block is then priced from scratch, and the answer is the
    hand-derived one. Without the retry the run ends in an error."""
    from model.solve.solve import HighsModel, SolveResult

    real = HighsModel.solve
    calls = {"n": 0}

    def stall_once(self: HighsModel, read: bool = True) -> SolveResult:
        calls["n"] += 1
        if calls["n"] == 3:      # the first pricing solve after the two blocks' first plans
            return SolveResult("error", "Unknown")
        return real(self, read)

    monkeypatch.setattr(HighsModel, "solve", stall_once)
    run = solve_instance(instance_from_dict(two_bans()), "none")
    assert calls["n"] > 3
    assert run.summary["status"] == "optimal"
    assert run.summary["objective"] == pytest.approx(4300.0, rel=1e-9)
