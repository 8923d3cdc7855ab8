"""Property tests on generated instances (hypothesis)."""

from __future__ import annotations

import copy
import filecmp
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model.api import solve_instance
from model.input.builders import synthetic_instance
from model.output.export import RUN_TABLES, save_run
from model.input.instance import instance_from_dict
from model.input.schema import CountryCapRule, Policy
from model.analysis.verify import verify_run

SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
sizes = st.tuples(st.integers(2, 5), st.integers(1, 3), st.integers(1, 3), st.integers(1, 4),
                  st.integers(0, 10_000))


def _instance(size: tuple[int, int, int, int, int]) -> dict:
    s, e, t, w, seed = size
    return synthetic_instance(s, e, t, w, seed)


def _objective(data: dict, policy: str = "none", extra: Policy | None = None) -> float:
    run = solve_instance(instance_from_dict(data), policy, extra_rules=extra)
    assert run.summary["status"] == "optimal"
    return run.summary["objective"]


@SETTINGS
@given(sizes, st.floats(0.3, 1.0), st.floats(0.0, 0.3), st.sampled_from(["element", "group"]),
       st.sampled_from(["every_scenario", "plan"]))
def test_tightening_a_cap_never_lowers_cost(size, loose, tighten, per, applies_to) -> None:
    data = _instance(size)

    def cap(share: float) -> Policy:
        return Policy(max_single_country_share=[CountryCapRule(share=share, per=per,
                                                               applies_to=applies_to)])
    a = _objective(data, extra=cap(loose))
    b = _objective(data, extra=cap(max(0.0, loose - tighten)))
    assert b >= a - 1e-7 * max(1.0, abs(a))


@SETTINGS
@given(sizes, st.floats(1.0, 3.0), st.integers(0, 100))
def test_adding_capacity_never_raises_cost(size, factor, pick) -> None:
    data = _instance(size)
    before = _objective(data)
    more = copy.deepcopy(data)
    src = more["sources"][pick % len(more["sources"])]
    for sup in src["supply"].values():
        sup["capacity"] = sup["capacity"] * factor
    after = _objective(more)
    assert after <= before + 1e-7 * max(1.0, abs(before))


@SETTINGS
@given(sizes, st.sampled_from(["none", "crma65", "crma65-group", "plan50"]),
       st.sampled_from([0.0, 0.5]))
def test_every_solution_passes_the_independent_check(size, policy, lam) -> None:
    data = _instance(size)
    data["risk"] = {"lambda": lam, "alpha": 0.8}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "inst.yaml"
        from model.input.builders import instance_to_yaml

        path.write_text(instance_to_yaml(data))
        run = solve_instance(path, policy)
        assert run.summary["status"] == "optimal"
        folder = save_run(run, Path(tmp) / "run", charts=False)
        assert verify_run(folder) == []


@settings(max_examples=5, deadline=None)
@given(sizes)
def test_solving_twice_writes_identical_tables(size) -> None:
    data = _instance(size)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "inst.yaml"
        from model.input.builders import instance_to_yaml

        path.write_text(instance_to_yaml(data))
        folders = [save_run(solve_instance(path, "crma65"), Path(tmp) / f"run{i}", charts=False)
                   for i in range(2)]
        for name in RUN_TABLES:
            if not (folders[0] / f"{name}.csv").exists():   # stock_floors: stock rules only
                assert not (folders[1] / f"{name}.csv").exists(), name
                continue
            assert filecmp.cmp(folders[0] / f"{name}.csv", folders[1] / f"{name}.csv",
                               shallow=False), name
