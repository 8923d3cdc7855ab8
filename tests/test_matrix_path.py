"""The vectorised matrix path builds exactly the LP of the Pyomo formulation.

(Every instance solved through conftest.solve_dict is also checked this way.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lp_compare import assert_same_lp
from model.api import solve_instance
from model.input.builders import synthetic_instance
from model.input.data import problem_data
from model.formulation.formulation import build_model
from model.input.instance import instance_from_dict, load_instance
from model.formulation.matrix import build_matrix
from model.formulation.policies import policy_names, resolve_policy

ROOT = Path(__file__).resolve().parents[1]
CASES = [("example", load_instance(ROOT / "instances" / "example.yaml")),
         ("japan", load_instance(ROOT / "instances" / "japan_2026.yaml")),
         ("synthetic", instance_from_dict(synthetic_instance(7, 4, 3, 6, seed=11)))]


@pytest.mark.parametrize("name, loaded", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("lam", [0.0, 0.4])
def test_same_lp_for_every_policy(name: str, loaded, lam: float) -> None:
    data = problem_data(loaded, lam)
    for policy in policy_names(loaded.instance):
        resolved = resolve_policy(loaded.instance, data, policy)
        assert_same_lp(build_model(data, resolved), build_matrix(data, resolved))


@pytest.mark.parametrize("policy", ["none", "crma65", "crma65-group", "plan50"])
def test_same_answers_both_builders(policy: str) -> None:
    loaded = CASES[2][1]
    a = solve_instance(loaded, policy, builder="pyomo")
    b = solve_instance(loaded, policy, builder="matrix")
    assert a.summary["objective"] == pytest.approx(b.summary["objective"], rel=1e-9)
    assert a.summary["expected_shortage_t"] == pytest.approx(
        b.summary["expected_shortage_t"], rel=1e-6, abs=1e-6)
