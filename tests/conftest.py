"""Shared helpers: tiny instances as dicts, solved through the public API.

Every solve made with :func:`solve_dict` writes its run folder and runs the
independent check (`model.analysis.verify.verify_run`) on it, so every solved test
instance passes the feasibility check.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from model.api import RunResult, solve_instance
from model.output.export import save_run
from model.analysis.verify import verify_run


def base_instance(**overrides: Any) -> dict[str, Any]:
    """One element, one period, no sources: extend it in each test."""
    inst: dict[str, Any] = {
        "schema": 1, "name": "tiny", "home": "JP", "periods": [2026],
        "elements": ["Nd"], "demand": {"Nd": 100}, "shortage_penalty": {"default": 1000},
        "sources": [],
    }
    inst.update(copy.deepcopy(overrides))
    return inst


def spot(id_: str, country: str, supply: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return {"id": id_, "mined_in": country, "refined_in": country, "mode": "spot",
            "supply": supply, **kw}


def contract(id_: str, country: str, supply: dict[str, Any], fee: float = 0.0,
             **kw: Any) -> dict[str, Any]:
    return {"id": id_, "mined_in": country, "refined_in": country, "mode": "contract",
            "reservation_fee": fee, "supply": supply, **kw}


def hedge_instance() -> dict[str, Any]:
    """Dy 10 t; CN spot at 100; AU contract at 300 (fee 10 %, 5 t); a CN ban with
    probability 0.2. Optimum derived in test_known_answers: E[C] = 2,250."""
    return base_instance(
        elements=["Dy"], demand={"Dy": 10},
        sources=[spot("cn", "CN", {"Dy": {"capacity": 100, "price": 100}}),
                 contract("au", "AU", {"Dy": {"capacity": 5, "price": 300}}, fee=0.1)],
        scenarios=[{"id": "normal", "probability": 0.8},
                   {"id": "ban", "probability": 0.2,
                    "disruptions": [{"match": {"mined_in": "CN"}, "availability": 0.0}]}])


def write_instance(tmp_path: Path, inst: dict[str, Any], name: str = "inst.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(inst, sort_keys=False))
    return path


_counter = [0]


def solve_dict(tmp_path: Path, inst: dict[str, Any], policy: str = "none",
               check: bool = True, **kw: Any) -> RunResult:
    """Solve an instance dict, write its run folder and verify it independently."""
    _counter[0] += 1
    path = write_instance(tmp_path, inst, f"inst{_counter[0]}.yaml")
    run = solve_instance(path, policy, **kw)
    folder = save_run(run, tmp_path / f"run{_counter[0]}", charts=False)
    run.summary["_folder"] = str(folder)
    if check and run.optimal:
        problems = verify_run(folder)
        assert problems == [], problems
    if check:  # the vectorised matrix path builds the same LP as the Pyomo formulation
        from lp_compare import assert_same_lp
        from model.formulation.formulation import build_model
        from model.formulation.matrix import build_matrix

        d, pol = run.data, run.built.policy
        assert_same_lp(build_model(d, pol), build_matrix(d, pol))
    return run


@pytest.fixture
def solve(tmp_path: Path):
    def _solve(inst: dict[str, Any], policy: str = "none", **kw: Any) -> RunResult:
        return solve_dict(tmp_path, inst, policy, **kw)
    return _solve
