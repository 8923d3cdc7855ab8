"""Builders and generators: round trips, 2^k combinations, seeded sampling, synthetic sizes."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from model.input.builders import (
    Event,
    InstanceBuilder,
    combine_events,
    instance_to_yaml,
    read_events,
    sample_scenarios,
    synthetic_instance,
)
from model.errors import InstanceError
from model.input.instance import instance_from_dict, load_instance

ROOT = Path(__file__).resolve().parents[1]

EVENTS = [
    Event("cn-ban", 0.2, disruptions=[{"match": {"mined_in": "CN"}, "elements": ["Dy"],
                                       "availability": 0.0}]),
    Event("lynas-outage", 0.1, disruptions=[{"match": {"id": "au"}, "availability": 0.5}]),
    Event("spike", 0.3, price_shocks=[{"match": {"mode": "spot"}, "multiplier": 2.0}],
          demand_shocks=[{"multiplier": 1.1}]),
]


def _builder() -> InstanceBuilder:
    b = InstanceBuilder("built", home="JP", periods=[2026, 2027], elements=["Nd", "Dy"])
    b.demand("Nd", 100).demand("Dy", {2026: 10, 2027: 12})
    b.shortage_penalty(default=5.0e6, Dy=2.0e7)
    b.group("magnet", ["Nd", "Dy"])
    b.stock(initial={"Dy": 2.5}, holding_cost={"default": 1000})
    b.source("cn", "CN", "CN", mode="spot").supply("Nd", 500, 120000).supply("Dy", 50, 3.0e5)
    b.source("au", "AU", "MY", reservation_fee=0.1, available={"from": 2027}) \
        .supply("Nd", {2027: 40}, {2026: 80000, 2027: 81000.5})
    b.scenario("normal", 0.7).scenario("ban", 0.3, disruptions=[
        {"match": {"mined_in": "CN"}, "elements": ["Dy"], "availability": 0.0}])
    b.policy("crma", max_single_country_share={"share": 0.65, "per": "group"},
             exclude=[{"refined_in": "RU"}])
    b.risk(0.25, 0.9)
    return b


def test_builder_round_trips_through_yaml(tmp_path: Path) -> None:
    built = _builder().build()
    path = tmp_path / "built.yaml"
    path.write_text(instance_to_yaml(built.instance, "a header"))
    again = load_instance(path)
    assert again.instance == built.instance
    assert path.read_text().startswith("# a header\n")


def _instances() -> list[Path]:
    """The bundled instances (not their ranges files, instances/*.ranges.yaml)."""
    return [p for p in sorted((ROOT / "instances").glob("*.yaml"))
            if not p.name.endswith(".ranges.yaml")]


def test_bundled_instances_round_trip(tmp_path: Path) -> None:
    for src in _instances():
        inst = load_instance(src).instance
        path = tmp_path / src.name
        path.write_text(instance_to_yaml(inst))
        assert load_instance(path).instance == inst, src.name


def test_builder_reports_bad_input() -> None:
    b = _builder()
    b.demand("Xx", 5)
    with pytest.raises(InstanceError, match="unknown element 'Xx'"):
        b.build()


def test_combine_events_makes_all_combinations() -> None:
    base = _builder().build().instance
    out = combine_events(base, EVENTS).instance
    assert len(out.scenarios) == 2 ** len(EVENTS)
    assert math.fsum(w.probability for w in out.scenarios) == pytest.approx(1.0, abs=1e-12)
    by_id = {w.id: w for w in out.scenarios}
    assert by_id["normal"].probability == pytest.approx(0.8 * 0.9 * 0.7)
    both = by_id["cn-ban+lynas-outage+spike"]
    assert both.probability == pytest.approx(0.2 * 0.1 * 0.3)
    assert len(both.disruptions) == 2 and len(both.demand_shocks) == 1
    assert by_id["normal"].disruptions == []


def test_sampling_is_seeded_and_uniform() -> None:
    base = _builder().build().instance
    a = sample_scenarios(base, EVENTS, 200, seed=7).instance
    b = sample_scenarios(base, EVENTS, 200, seed=7).instance
    c = sample_scenarios(base, EVENTS, 200, seed=8).instance
    assert a == b
    assert a.scenarios != c.scenarios
    assert all(w.probability == pytest.approx(1 / 200) for w in a.scenarios)
    assert math.fsum(w.probability for w in a.scenarios) == pytest.approx(1.0, abs=1e-9)
    bans = sum(any(r.elements == ["Dy"] for r in w.disruptions) for w in a.scenarios)
    assert 20 <= bans <= 60  # 200 draws at p = 0.2: mean 40, sd 5.7


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 6), st.integers(1, 5), st.integers(1, 4), st.integers(1, 6),
       st.integers(0, 2**16))
def test_synthetic_instances_are_valid_and_seeded(s: int, e: int, t: int, w: int,
                                                  seed: int) -> None:
    data = synthetic_instance(s, e, t, w, seed)
    inst = instance_from_dict(data).instance
    assert (len(inst.sources), len(inst.elements), len(inst.periods),
            len(inst.scenarios)) == (s, e, t, w)
    assert synthetic_instance(s, e, t, w, seed) == data


def test_build_commands(tmp_path: Path) -> None:
    events = tmp_path / "events.yaml"
    events.write_text(yaml.safe_dump({"events": [
        {"id": "cn-ban", "probability": 0.25,
         "disruptions": [{"match": {"mined_in": "CN"}, "availability": 0.0}]},
        {"id": "spike", "probability": 0.5,
         "price_shocks": [{"match": {"mode": "spot"}, "multiplier": 1.5}]}]}))
    assert [e.id for e in read_events(events)] == ["cn-ban", "spike"]
    cli = [sys.executable, "-m", "model.cli"]
    out = tmp_path / "combined.yaml"
    subprocess.run([*cli, "build", "scenarios", str(ROOT / "instances" / "example.yaml"),
                    "--events", str(events), "--out", str(out)], check=True,
                   capture_output=True)
    assert len(load_instance(out).instance.scenarios) == 4
    sampled = tmp_path / "sampled.yaml"
    subprocess.run([*cli, "build", "scenarios", str(ROOT / "instances" / "example.yaml"),
                    "--events", str(events), "--sample", "30", "--seed", "3",
                    "--out", str(sampled)], check=True, capture_output=True)
    assert len(load_instance(sampled).instance.scenarios) == 30
    syn = tmp_path / "syn.yaml"
    subprocess.run([*cli, "build", "synthetic", "--sources", "4", "--elements", "3",
                    "--periods", "2", "--scenarios", "3", "--out", str(syn)], check=True,
                   capture_output=True)
    assert len(load_instance(syn).instance.sources) == 4
    again = subprocess.run([*cli, "build", "synthetic", "--out", str(syn)],
                           capture_output=True, text=True)
    assert again.returncode == 2 and "--force" in again.stderr


def test_generated_scenario_sets_solve(solve) -> None:
    base = _builder().build().instance
    from model.input.builders import instance_to_dict

    run = solve(instance_to_dict(combine_events(base, EVENTS).instance))
    assert run.summary["status"] == "optimal"
    assert run.summary["scenarios"] == 8
