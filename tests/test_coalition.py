"""Several buyers (issue 26): the coalition game. Hand-derived values and allocations,
properties on random instances (subadditivity, the dual-based allocation in the core,
Shapley adds up), the refusals, and the command's folder checked by verify."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import write_instance
from model.analysis.verify import runs_to_verify, verify_run
from model.errors import UsageError
from model.input.instance import instance_from_dict
from model.studies.coalition import (MAX_COALITION_BUYERS, coalition_study, in_core,
                                     label, nucleolus, shapley)
from test_buyers import two_buyers


def test_two_buyers_by_hand() -> None:
    """v(A) = 352.5, v(B) = 105, v(AB) = 210 (test_buyers); Shapley: A = (352.5 + 210 -
    105) / 2 = 228.75, B = (105 + 210 - 352.5) / 2 = -18.75. Cooperation is worth 247.5,
    all of it in the ban aimed at A."""
    study = coalition_study(instance_from_dict(two_buyers()))
    v = {label(k): x for k, x in study.value.items()}
    assert v == pytest.approx({"A": 352.5, "B": 105.0, "A+B": 210.0})
    assert study.value_of_cooperation == pytest.approx(247.5)
    assert study.allocations["shapley"] == pytest.approx({"A": 228.75, "B": -18.75})
    # two players: the nucleolus splits the saving equally too
    assert study.allocations["nucleolus"] == pytest.approx({"A": 228.75, "B": -18.75})
    for rule in ("shapley", "nucleolus", "dual"):
        assert in_core(study.allocations[rule], study.value)[0], rule
    # equal demand: the proportional rule charges 105 each (B exactly its stand-alone cost)
    assert study.allocations["proportional"] == pytest.approx({"A": 105.0, "B": 105.0})
    # without the ban, pooling is worth nothing
    calm = coalition_study(instance_from_dict(two_buyers(ban=False)))
    assert calm.value_of_cooperation == pytest.approx(0.0, abs=1e-9)


def three_buyers() -> dict[str, Any]:
    """A and B (1 t each) hold the dear source (2 t at 100/t, half each); C (10 t) its
    own cheap one (10 t at 1/t). Nothing to pool: v(S) adds up, v(N) = 210. Proportional
    to demand charges C 210 x 10/12 = 175 > v(C) = 10: outside the core."""
    return {"schema": 1, "name": "three", "periods": [1], "elements": ["X"],
            "shortage_penalty": {"X": 1000},
            "buyers": [{"id": "A", "home": ["JP"], "demand": {"X": 1}},
                       {"id": "B", "home": ["US"], "demand": {"X": 1}},
                       {"id": "C", "home": ["FR"], "demand": {"X": 10}}],
            "sources": [
                {"id": "dear", "mined_in": "AU", "refined_in": "AU", "mode": "spot",
                 "entitlement": {"A": 0.5, "B": 0.5},
                 "supply": {"X": {"capacity": 2, "price": 100}}},
                {"id": "cheap", "mined_in": "FR", "refined_in": "FR", "mode": "spot",
                 "entitlement": {"C": 1.0}, "supply": {"X": {"capacity": 10, "price": 1}}}]}


def test_proportional_split_outside_the_core() -> None:
    study = coalition_study(instance_from_dict(three_buyers()))
    v = {label(k): x for k, x in study.value.items()}
    assert v == pytest.approx({"A": 100, "B": 100, "C": 10, "A+B": 200, "A+C": 110,
                               "B+C": 110, "A+B+C": 210})
    assert study.allocations["proportional"] == pytest.approx(
        {"A": 17.5, "B": 17.5, "C": 175.0})
    ok, excess, where = in_core(study.allocations["proportional"], study.value)
    assert not ok and where == ("C",) and excess == pytest.approx(165.0)
    for rule in ("shapley", "nucleolus", "dual"):
        assert study.allocations[rule] == pytest.approx({"A": 100, "B": 100, "C": 10})
        assert in_core(study.allocations[rule], study.value)[0]


def test_nucleolus_of_a_textbook_game() -> None:
    """The cost game v(1) = v(2) = v(3) = 6, pairs 8, v(N) = 9 (savings 4 per pair, 9 in
    all): symmetric, so every rule gives 3 each. With v(12) = 7 instead the smallest
    savings are those of {1,3}, {2,3} (x1 - 1, x2 - 1) and {1,2} (x3 - 2): equal at
    x = (8/3, 8/3, 11/3); checked also against the definition by brute force on a grid."""
    b = ["1", "2", "3"]
    v = {("1",): 6.0, ("2",): 6.0, ("3",): 6.0, ("1", "2"): 8.0, ("1", "3"): 8.0,
         ("2", "3"): 8.0, ("1", "2", "3"): 9.0}
    assert nucleolus(b, v) == pytest.approx({"1": 3.0, "2": 3.0, "3": 3.0})
    assert shapley(b, v) == pytest.approx({"1": 3.0, "2": 3.0, "3": 3.0})
    v[("1", "2")] = 7.0
    x = nucleolus(b, v)
    assert x == pytest.approx({"1": 8 / 3, "2": 8 / 3, "3": 11 / 3})

    def sorted_savings(y: dict[str, float]) -> list[float]:
        return sorted(round(v[s] - sum(y[i] for i in s), 9) for s in v if len(s) < 3)

    best = sorted_savings(x)
    step = 0.05
    for i in range(-40, 41):           # no imputation nearby is lexicographically better
        for j in range(-40, 41):
            y = {"1": x["1"] + i * step, "2": x["2"] + j * step}
            y["3"] = 9.0 - y["1"] - y["2"]
            if any(y[k] > v[(k,)] + 1e-12 for k in b):
                continue
            assert sorted_savings(y) <= best or sorted_savings(y) == pytest.approx(best)


def _random_instance(draw: Any) -> dict[str, Any]:
    n = draw(st.integers(2, 3))
    ids = ["A", "B", "C"][:n]
    homes = ["JP", "US", "FR"]
    elements = ["X", "Y"][:draw(st.integers(1, 2))]
    pos = st.floats(0.5, 20, allow_nan=False)
    buyers = [{"id": b, "home": [homes[i]],
               "demand": {e: draw(pos) for e in elements},
               "shortage_penalty": {"default": draw(st.floats(50, 200))},
               "stock": {"initial": {elements[0]: draw(st.floats(0, 5))}}}
              for i, b in enumerate(ids)]
    sources = []
    for s in range(draw(st.integers(1, 3))):
        ent = {}
        for b in ids:
            if draw(st.booleans()):
                ent[b] = draw(st.floats(0, 1.0 / n))
        src = {"id": f"s{s}", "mined_in": ["CN", "AU", "US"][s % 3],
               "refined_in": ["CN", "MY", "US"][s % 3],
               "mode": draw(st.sampled_from(["spot", "contract"])),
               "supply": {e: {"capacity": draw(pos), "price": draw(st.floats(1, 40))}
                          for e in elements}}
        if ent:
            src["entitlement"] = ent
        if src["mode"] == "contract":
            src["reservation_fee"] = draw(st.floats(0, 0.3))
        sources.append(src)
    target = draw(st.sampled_from(ids))
    return {"schema": 1, "name": "random", "periods": [1, 2], "elements": elements,
            "buyers": buyers, "sources": sources,
            "stock": {"holding_cost": {"default": draw(st.floats(0, 2))}},
            "coalition": {"transfer_cost": {"default": draw(st.floats(0, 5))}},
            "scenarios": [
                {"id": "calm", "probability": 0.6},
                {"id": "ban", "probability": 0.4, "disruptions": [
                    {"match": {"mined_in": "CN"}, "periods": [2], "availability": 0.0,
                     "buyers": [target]}]}]}


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_game_properties_on_random_lp_instances(data: Any) -> None:
    """v is subadditive when members may pool (v(S u T) <= v(S) + v(T), disjoint); the
    dual-based allocation is in the core; Shapley adds up to v(N); the nucleolus is an
    imputation and, the core being non-empty, in it."""
    study = coalition_study(instance_from_dict(_random_instance(data.draw)))
    assert study.optimal
    v = study.value
    tol = 1e-6
    for s in v:
        for t in v:
            if set(s) & set(t):
                continue
            union = tuple(b for b in study.buyers if b in s or b in t)
            assert v[union] <= v[s] + v[t] + tol * max(1.0, abs(v[s] + v[t]))
    grand = study.grand
    assert sum(study.allocations["shapley"].values()) == pytest.approx(v[grand], rel=1e-9)
    assert sum(study.allocations["dual"].values()) == pytest.approx(v[grand], rel=1e-7)
    assert in_core(study.allocations["dual"], v)[0]
    nuc = study.allocations["nucleolus"]
    assert sum(nuc.values()) == pytest.approx(v[grand], rel=1e-7)
    assert in_core(nuc, v)[0]


def test_refusals() -> None:
    from conftest import base_instance

    with pytest.raises(UsageError, match="one buyer"):
        coalition_study(instance_from_dict(base_instance()))
    many = two_buyers(ban=False)
    many["buyers"] = [{"id": f"b{i}", "home": ["JP"], "demand": {"X": 1}}
                      for i in range(MAX_COALITION_BUYERS + 1)]
    with pytest.raises(UsageError, match=f"at most {MAX_COALITION_BUYERS} buyers"):
        coalition_study(instance_from_dict(many))


def test_dual_allocation_not_offered_with_an_all_or_nothing_project() -> None:
    inst = two_buyers(ban=False)
    inst["projects"] = [{"id": "p", "source": "S", "capacity": {"X": 4}, "cost": 1,
                         "integer": True}]
    study = coalition_study(instance_from_dict(inst))
    assert study.allocations["dual"] is None
    assert "all-or-nothing" in study.why_not["dual"]
    assert sum(study.allocations["shapley"].values()) == pytest.approx(
        study.value[study.grand])


def test_dual_allocation_with_a_continuous_project() -> None:
    """A project on a shared source: each coalition builds its members' share of it;
    the dual allocation still adds up to v(N) and lies in the core."""
    inst = two_buyers()
    inst["projects"] = [{"id": "p", "source": "S", "capacity": {"X": 4}, "cost": 50}]
    study = coalition_study(instance_from_dict(inst))
    assert sum(study.allocations["dual"].values()) == pytest.approx(
        study.value[study.grand], rel=1e-7)
    assert in_core(study.allocations["dual"], study.value)[0]


def test_coalition_command_and_verify(tmp_path: Path) -> None:
    path = write_instance(tmp_path, two_buyers(tc=3.0))
    out = tmp_path / "game"
    proc = subprocess.run([sys.executable, "-m", "model.cli", "coalition", str(path),
                           "--out", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    for name in ("coalition.csv", "allocations.csv", "buyers_by_scenario.csv",
                 "allocations.png", "shortage.png", "report.html", "coalition.xlsx"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["kind"] == "coalition"
    assert summary["value_of_cooperation"] == pytest.approx(241.5)
    assert summary["in_core"]["proportional"] is False
    rows = list(csv.DictReader((out / "buyers_by_scenario.csv").open()))
    ban_a = next(r for r in rows if r["buyer"] == "A" and r["scenario"] == "ban-A")
    assert float(ban_a["shortage_alone_t"]) == pytest.approx(6.0)
    proc = subprocess.run([sys.executable, "-m", "model.cli", "verify", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("checks out") == 3
    # a Shapley value edited in the summary is caught
    summary["allocations"]["shapley"]["A"] += 1.0
    (out / "summary.json").write_text(json.dumps(summary))
    top = [p for _, status, problems in runs_to_verify(out) if status is None
           for p in problems]
    assert any("allocation shapley" in p for p in top), top


def test_solve_on_a_buyers_instance_tabulates_per_buyer(tmp_path: Path) -> None:
    path = write_instance(tmp_path, two_buyers())
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "model.cli", "solve", str(path), "--out",
                           str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "buyer A" in proc.stdout
    rows = list(csv.DictReader((out / "buyers.csv").open()))
    assert [r["buyer"] for r in rows] == ["A", "B"]
    assert verify_run(out) == []
