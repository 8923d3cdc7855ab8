"""Scenarios from regimes and events (issue 23): hand-derived chains, properties, sampling,
validation, what-if, the command line, and everything downstream on a generated instance."""

from __future__ import annotations

import copy
import itertools
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import base_instance, contract, spot, write_instance
from model.api import solve_instance
from model.errors import InstanceError, UsageError
from model.input.builders import expanded, instance_to_dict, instance_to_yaml
from model.input.data import problem_data
from model.input.instance import instance_from_dict, load_instance
from model.input.overrides import overridden, parse_assignment
from model.input.regimes import (
    chain,
    count_scenarios,
    generate_paths,
    scenario_list,
    scenario_paths,
    state_tokens,
)
from model.input.schema import json_schema
from model.safety import MAX_ENUMERATED_SCENARIOS

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "instances" / "example_regimes.yaml"
CLI = [sys.executable, "-m", "model.cli"]
BAN = {"match": {"mined_in": "CN"}, "availability": 0.0}


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=600)


def chain_instance(**scenarios: Any) -> dict[str, Any]:
    """Dy 10 t in 2026 and 2027, no stock; CN spot at 100; an AU contract at 300 (fee 10 %,
    10 t, decided at the start); shortage 1,000/t. Two regimes: normal, and ban (no CN).
    start normal; P(ban | normal) = 0.2, P(ban | ban) = 0.5."""
    model: dict[str, Any] = {
        "regimes": {"start": "normal",
                    "states": {"normal": {}, "ban": {"disruptions": [BAN]}},
                    "transition": {"normal": {"normal": 0.8, "ban": 0.2},
                                   "ban": {"normal": 0.5, "ban": 0.5}}}}
    model.update(copy.deepcopy(scenarios))
    return base_instance(
        periods=[2026, 2027], elements=["Dy"], demand={"Dy": 10},
        stock={"capacity": {"default": 0}},
        sources=[spot("cn", "CN", {"Dy": {"capacity": 100, "price": 100}}),
                 contract("au", "AU", {"Dy": {"capacity": 10, "price": 300}}, fee=0.1)],
        scenarios=model)


def _probabilities(inst: dict[str, Any]) -> dict[str, float]:
    return {w.id: w.probability for w in scenario_list(instance_from_dict(inst).instance)}


# --------------------------------------------------------------------------- by hand
def test_two_regimes_two_periods_by_hand() -> None:
    """pi_1 = (0.8, 0.2); N-N 0.8 x 0.8, N-B 0.8 x 0.2, B-N 0.2 x 0.5, B-B 0.2 x 0.5.
    The tree: in 2026 the normal paths share a node (0.8), the ban paths another
    (0.2); in 2027 every path is its own node. A regime's rule holds in the
    periods of the path in that regime, listed in one rule."""
    loaded = instance_from_dict(chain_instance())
    scen = scenario_list(loaded.instance)
    assert [w.id for w in scen] == ["N-N", "N-B", "B-N", "B-B"]
    assert [w.probability for w in scen] == pytest.approx([0.64, 0.16, 0.1, 0.1], abs=1e-15)
    by_id = {w.id: w for w in scen}
    assert by_id["N-N"].disruptions == []
    assert [r.periods for r in by_id["N-B"].disruptions] == [[2027]]
    assert [r.periods for r in by_id["B-B"].disruptions] == [[2026, 2027]]
    d = problem_data(loaded)
    cn = 0                                                         # the arc of cn's Dy
    assert d.availability[cn].T.tolist() == [[1, 1], [1, 0], [0, 1], [0, 0]]
    assert d.tree.nodes_per_period() == [2, 4]
    after_2026 = d.decision_node[1]
    assert after_2026[0] == after_2026[1] != after_2026[2] == after_2026[3]
    assert d.tree.probability[after_2026[[0, 2]]] == pytest.approx([0.8, 0.2])
    paths = scenario_paths(loaded.instance)
    assert paths.states == ["normal", "ban"] and paths.regime.tolist() == [
        [0, 0], [0, 1], [1, 0], [1, 1]]
    assert paths.happens.shape == (4, 0) and paths.draws is None


def test_the_chain_optimum_by_hand(solve) -> None:
    """Periods are independent (no stock, contracts at the start). A contracted tonne
    costs the fee 30 and saves 1,000 - 300 = 700 in a ban period: P(ban 2026) = 0.2,
    P(ban 2027) = 0.16 + 0.1 = 0.26, so 10 t both years. Per year 300 + P x 3,000 +
    (1 - P) x 1,000: 1,700 + 1,820 = 3,520."""
    run = solve(chain_instance())
    assert run.summary["expected_cost"] == pytest.approx(3520)
    assert run.summary["scenarios"] == 4


def test_an_event_splits_the_tree_only_from_its_first_period() -> None:
    """An AU outage in 2027 (p = 0.25): in 2026 a path with and without it share the
    node; in 2027 they part. Probabilities multiply by 0.25 or 0.75."""
    inst = chain_instance(events=[{"id": "au-outage", "probability": 0.25, "disruptions": [
        {"match": {"id": "au"}, "periods": [2027], "availability": 0.0}]}])
    loaded = instance_from_dict(inst)
    scen = scenario_list(loaded.instance)
    assert [w.id for w in scen] == ["N-N", "N-N+au-outage", "N-B", "N-B+au-outage", "B-N",
                                    "B-N+au-outage", "B-B", "B-B+au-outage"]
    expect = [p * q for p in (0.64, 0.16, 0.1, 0.1) for q in (0.75, 0.25)]
    assert [w.probability for w in scen] == pytest.approx(expect, abs=1e-15)
    assert [r.periods for r in scen[1].disruptions] == [[2027]]      # its own periods
    d = problem_data(loaded)
    for w in range(0, 8, 2):
        assert d.decision_node[1, w] == d.decision_node[1, w + 1]     # 2026: one node
        assert d.decision_node[2, w] != d.decision_node[2, w + 1]     # 2027: parted
    assert d.tree.nodes_per_period() == [2, 8]
    assert scenario_paths(loaded.instance).happens[:, 0].tolist() == [False, True] * 4


def test_start_as_a_map_is_a_transition_from_it() -> None:
    """start {normal: 0.5, ban: 0.5}: pi_1 = 0.5 (0.8, 0.2) + 0.5 (0.5, 0.5) = (0.65, 0.35)."""
    inst = chain_instance()
    inst["scenarios"]["regimes"]["start"] = {"normal": 0.5, "ban": 0.5}
    p = _probabilities(inst)
    assert p == pytest.approx({"N-N": 0.52, "N-B": 0.13, "B-N": 0.175, "B-B": 0.175},
                              abs=1e-15)


def test_by_period_changes_the_matrix_from_its_period_on() -> None:
    """From 2027: normal stays normal, a ban ends with 0.3. N-B has probability 0 and
    is left out. A key at the first period also changes pi_1 (start normal: its row)."""
    inst = chain_instance()
    inst["scenarios"]["regimes"]["by_period"] = {
        2027: {"normal": {"normal": 1.0}, "ban": {"normal": 0.3, "ban": 0.7}}}
    assert _probabilities(inst) == pytest.approx({"N-N": 0.8, "B-N": 0.06, "B-B": 0.14},
                                                 abs=1e-15)
    inst["scenarios"]["regimes"]["by_period"] = {
        2026: {"normal": {"normal": 0.5, "ban": 0.5}, "ban": {"ban": 1.0}}}
    assert _probabilities(inst) == pytest.approx({"N-N": 0.25, "N-B": 0.25, "B-B": 0.5},
                                                 abs=1e-15)


def test_ids_name_a_state_in_full_where_initials_clash() -> None:
    assert state_tokens(["normal", "squeeze", "ban"]) == ["N", "S", "B"]
    assert state_tokens(["normal", "squeeze", "strict", "ban"]) == ["N", "squeeze", "strict",
                                                                    "B"]
    assert state_tokens(["calm", "Crisis"]) == ["calm", "Crisis"]


def test_events_alone_and_always_rules() -> None:
    """Without regimes: the events' ids joined by + (normal when none happens); an event
    of probability 1 always happens, one of 0 never. `always` rules are in each."""
    inst = chain_instance(events=[
        {"id": "a", "probability": 0.3},
        {"id": "b", "probability": 1.0},
        {"id": "c", "probability": 0.0}],
        always={"demand_shocks": [{"periods": [2027], "multiplier": 1.5}]})
    del inst["scenarios"]["regimes"]
    scen = scenario_list(instance_from_dict(inst).instance)
    assert [(w.id, w.probability) for w in scen] == [("b", pytest.approx(0.7)),
                                                     ("a+b", pytest.approx(0.3))]
    assert all([r.multiplier for r in w.demand_shocks] == [1.5] for w in scen)


# --------------------------------------------------------------------------- properties
STATES = ["normal", "squeeze", "ban"]


@st.composite
def chains(draw: Any) -> dict[str, Any]:
    """A random chain of 1-3 regimes over 1-3 periods (random zeros in the rows, maybe a
    by_period matrix and a start map) with 0-2 events; regime i leaves availability
    (i + 1) / 4 of CN and event j multiplies the price by j + 2."""
    S = draw(st.integers(1, 3))
    T = draw(st.integers(1, 3))
    states = STATES[:S]

    def row() -> dict[str, float]:
        w = draw(st.lists(st.integers(0, 3), min_size=S, max_size=S).filter(any))
        return {s: v / sum(w) for s, v in zip(states, w) if v or draw(st.booleans())}

    def matrix() -> dict[str, dict[str, float]]:
        return {s: row() for s in states}

    periods = list(range(2026, 2026 + T))
    regimes: dict[str, Any] = {
        "start": draw(st.sampled_from(states)) if draw(st.booleans()) else row(),
        "states": {s: {"disruptions": [{"match": {"mined_in": "CN"},
                                        "availability": (i + 1) / 4}]}
                   for i, s in enumerate(states)},
        "transition": matrix()}
    if T > 1 and draw(st.booleans()):
        regimes["by_period"] = {draw(st.sampled_from(periods)): matrix()}
    n_events = draw(st.integers(0, 2))
    events = [{"id": f"e{j}", "probability": draw(st.sampled_from([0.0, 0.3, 0.5, 1.0])),
               "price_shocks": [{"periods": [draw(st.sampled_from(periods))],
                                 "multiplier": j + 2.0}]} for j in range(n_events)]
    inst = chain_instance(regimes=regimes, events=events)
    inst["periods"] = periods
    return inst


def _brute_force(inst: dict[str, Any]) -> dict[str, float]:
    """Every regime path and event subset, probabilities by the definition."""
    reg, events = inst["scenarios"]["regimes"], inst["scenarios"]["events"]
    states, periods = list(reg["states"]), inst["periods"]
    start = {reg["start"]: 1.0} if isinstance(reg["start"], str) else reg["start"]

    def into(t: int) -> dict[str, dict[str, float]]:
        keys = [k for k in reg.get("by_period", {}) if periods.index(k) <= t]
        return reg["by_period"][max(keys, key=periods.index)] if keys else reg["transition"]

    out = {}
    for path in itertools.product(range(len(states)), repeat=len(periods)):
        p = sum(start.get(s, 0.0) * into(0)[s].get(states[path[0]], 0.0) for s in states)
        for t in range(1, len(periods)):
            p *= into(t)[states[path[t - 1]]].get(states[path[t]], 0.0)
        for hit in itertools.product((False, True), repeat=len(events)):
            q = p * math.prod(e["probability"] if h else 1 - e["probability"]
                              for e, h in zip(events, hit))
            if q > 0:
                name = "-".join(state_tokens(states)[r] for r in path) + "".join(
                    "+" + e["id"] for e, h in zip(events, hit) if h)
                out[name] = q
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chains())
def test_enumeration_is_the_definition(inst: dict[str, Any]) -> None:
    """Every path of positive probability, with its probability by the definition; the
    probabilities sum to 1; the count taken before enumerating is exact; and regime r
    in period t applies its rules to t (CN availability), events their own."""
    loaded = instance_from_dict(inst)
    scen = scenario_list(loaded.instance)
    got = {w.id: w.probability for w in scen}
    want = _brute_force(inst)
    assert got.keys() == want.keys()
    for k in want:
        assert got[k] == pytest.approx(want[k], rel=1e-12, abs=1e-15)
    assert math.fsum(got.values()) == pytest.approx(1.0, abs=1e-12)
    model = loaded.instance.scenarios
    assert count_scenarios(chain(model, inst["periods"])) == len(scen)
    paths = scenario_paths(loaded.instance)
    d = problem_data(loaded)
    assert d.availability[0] == pytest.approx(((paths.regime + 1) / 4).T)
    mult = np.ones((len(inst["periods"]), len(scen)))
    for j, e in enumerate(inst["scenarios"]["events"]):
        t = inst["periods"].index(e["price_shocks"][0]["periods"][0])
        mult[t, paths.happens[:, j]] *= j + 2.0
    assert d.price_multiplier[0] == pytest.approx(mult)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chains(), st.sampled_from([0.0, 0.5, 1.0]))
def test_identical_regimes_are_the_one_scenario_model(inst: dict[str, Any], a: float
                                                      ) -> None:
    """Regimes with identical rules: every scenario has the same data, the tree one node
    per period, and the optimum is that of one scenario with those rules (with
    availability 1, the instance without scenarios)."""
    inst = copy.deepcopy(inst)
    inst["stock"] = {"holding_cost": {"default": 5}}          # stock may carry over
    inst["scenarios"]["events"] = []
    for state in inst["scenarios"]["regimes"]["states"].values():
        state["disruptions"][0]["availability"] = a
    loaded = instance_from_dict(inst)
    d = problem_data(loaded)
    assert d.tree.nodes_per_period() == [1] * len(inst["periods"])
    one = copy.deepcopy(inst)
    one["scenarios"] = [{"id": "only", "probability": 1.0, "disruptions": [
        {"match": {"mined_in": "CN"}, "availability": a}]}]
    if a == 1.0:
        del one["scenarios"]
    got = solve_instance(loaded).summary["objective"]
    want = solve_instance(instance_from_dict(one)).summary["objective"]
    assert got == pytest.approx(want, rel=1e-9)


def test_a_generated_instance_is_its_expanded_list(tmp_path: Path) -> None:
    """--expand writes a list whose data, probabilities and tree are exactly the
    generated instance's; it validates, and reads back equal."""
    loaded = load_instance(EXAMPLE)
    flat = expanded(loaded.instance)
    assert isinstance(flat.instance.scenarios, list) and len(flat.instance.scenarios) == 48
    a, b = problem_data(loaded), problem_data(flat)
    assert a.scenarios == b.scenarios
    for key in ("probability", "availability", "price_multiplier", "demand_t", "emergency",
                "decision_node", "recourse_node"):
        assert np.array_equal(getattr(a, key), getattr(b, key)), key
    path = tmp_path / "flat.yaml"
    path.write_text(instance_to_yaml(flat.instance))
    assert load_instance(path).instance == flat.instance
    with pytest.raises(UsageError, match="lists its scenarios already"):
        expanded(flat.instance)


# --------------------------------------------------------------------------- sampling
def _sampled(inst: dict[str, Any], paths: int, seed: int) -> dict[str, Any]:
    out = copy.deepcopy(inst)
    out["scenarios"]["sample"] = {"paths": paths, "seed": seed}
    return out


def test_a_sample_is_the_documented_draw() -> None:
    """An independent implementation of the documented draw: u = random((N, T)), then
    v = random((N, E)) from PCG64(seed); the regime is the first state whose cumulative
    probability exceeds u; an event happens when v < p; identical draws merged, in the
    enumeration's order, probability (times drawn) / N."""
    inst = _sampled(chain_instance(events=[{"id": "x", "probability": 0.3}]), 40, 7)
    rng = np.random.Generator(np.random.PCG64(7))
    u, v = rng.random((40, 2)), rng.random((40, 1))
    rows = {"normal": [0.8, 1.0], "ban": [0.5, 1.0]}
    counts: dict[tuple, int] = {}
    for n in range(40):
        first = 0 if u[n, 0] < 0.8 else 1
        second = 0 if u[n, 1] < rows[["normal", "ban"][first]][0] else 1
        key = (first, second, bool(v[n, 0] < 0.3))
        counts[key] = counts.get(key, 0) + 1
    want = [("-".join("NB"[r] for r in k[:2]) + ("+x" if k[2] else ""), c / 40)
            for k, c in sorted(counts.items())]
    scen = scenario_list(instance_from_dict(inst).instance)
    assert [(w.id, w.probability) for w in scen] == want
    assert all("(seed 7)" in w.description for w in scen)


def test_sampling_is_reproducible_and_within_the_enumeration() -> None:
    inst = chain_instance(events=[{"id": "x", "probability": 0.3}])
    model = instance_from_dict(_sampled(inst, 500, 3)).instance.scenarios
    a = generate_paths(model, [2026, 2027])
    b = generate_paths(model.model_copy(deep=True), [2026, 2027])
    assert a.ids == b.ids and np.array_equal(a.draws, b.draws)
    assert a.draws.sum() == 500 and np.array_equal(a.probability, a.draws / 500)
    other = instance_from_dict(_sampled(inst, 500, 4)).instance.scenarios
    assert not np.array_equal(generate_paths(other, [2026, 2027]).draws, a.draws)
    order = [w.id for w in scenario_list(instance_from_dict(inst).instance)]
    assert a.ids == [i for i in order if i in a.ids]        # the enumeration's order
    assert a.sampled and a.sample_paths == 500 and a.seed == 3


def test_the_sample_mean_of_the_optimum_converges_to_the_enumerated_optimum() -> None:
    """Seeded, not timed: the mean of five sampled optima (5,000 paths each) lies within
    1 % of the enumerated optimum 3,520 (its standard error is about 0.2 %), and the
    sampled frequencies within 5 standard errors of the exact probabilities."""
    exact = _probabilities(chain_instance())
    optima = []
    for seed in range(5):
        loaded = instance_from_dict(_sampled(chain_instance(), 5000, seed))
        optima.append(solve_instance(loaded).summary["objective"])
        for w in scenario_list(loaded.instance):
            p = exact[w.id]
            assert abs(w.probability - p) < 5 * math.sqrt(p * (1 - p) / 5000)
    assert np.mean(optima) == pytest.approx(3520, rel=0.01)


# --------------------------------------------------------------------------- bad input
BAD = [
    (lambda r: r["transition"]["normal"].update(ban=0.15), "scenarios.regimes.transition.normal",
     "row sums to 0.95, not 1"),
    (lambda r: r["transition"]["normal"].update(foo=0.0),
     "scenarios.regimes.transition.normal.foo", "unknown state 'foo'"),
    (lambda r: r["transition"].pop("ban"), "scenarios.regimes.transition",
     "no row for state(s) ban"),
    (lambda r: r.update(start="foo"), "scenarios.regimes.start", "unknown state 'foo'"),
    (lambda r: r.update(start={"normal": 0.5}), "scenarios.regimes.start",
     "probabilities sum to 0.5, not 1"),
    (lambda r: r.update(start=5), "scenarios.regimes.start",
     "must be a state name or a map state -> probability"),
    (lambda r: r.update(by_period={2099: {}}), "scenarios.regimes.by_period.2099",
     "unknown period '2099'"),
    (lambda r: r.update(by_period={2027: {"normal": {"normal": 1}, "ban": {"ban": 0.5}}}),
     "scenarios.regimes.by_period.2027.ban", "row sums to 0.5, not 1"),
    (lambda r: r["states"]["ban"]["disruptions"][0].update(periods=[2026]),
     "scenarios.regimes.states.ban.disruptions[0].periods", "take no `periods`"),
    (lambda r: r["states"]["ban"]["disruptions"][0].update(elements=["Xx"]),
     "scenarios.regimes.states.ban.disruptions[0].elements[0]", "unknown element 'Xx'"),
    (lambda r: r["states"]["ban"]["disruptions"][0].update(match={"id": "zz"}),
     "scenarios.regimes.states.ban.disruptions[0].match.id", "unknown source id 'zz'"),
    (lambda r: r.update(states={}), "scenarios.regimes.states", "needs at least one state"),
]


@pytest.mark.parametrize("mutate, place, words", BAD)
def test_bad_regimes_get_one_message_with_place_and_line(tmp_path: Path, mutate: Any,
                                                         place: str, words: str) -> None:
    inst = chain_instance()
    mutate(inst["scenarios"]["regimes"])
    path = write_instance(tmp_path, inst)
    with pytest.raises(InstanceError) as err:
        load_instance(path)
    assert err.value.place == place and words in err.value.message
    assert err.value.line is not None


def test_bad_events_and_models() -> None:
    event = {"id": "x", "probability": 0.3, "disruptions": [
        {"match": {"id": "au"}, "periods": [2099], "availability": 0.0}]}
    cases = [
        (chain_instance(events=[event]), "scenarios.events[0].disruptions[0].periods[0]",
         "unknown period '2099'"),
        (chain_instance(events=[{"id": "x", "probability": 0.1}] * 2),
         "scenarios.events[1].id", "duplicate id 'x'"),
        (base_instance(scenarios={"always": {}}), "scenarios", "give `regimes` or `events`"),
        (base_instance(scenarios="abc"), "scenarios", "must be a list of scenarios, or a "
         "mapping"),
        (chain_instance(sample={"paths": 0}), "scenarios.sample.paths",
         "from 1 to 100,000"),
        (chain_instance(regime={}), "scenarios.regime", "did you mean 'regimes'"),
    ]
    for inst, place, words in cases:
        with pytest.raises(InstanceError) as err:
            instance_from_dict(inst)
        assert err.value.place == place and words in err.value.message, err.value


def test_too_many_scenarios_are_refused_before_enumerating(tmp_path: Path) -> None:
    """3 regimes over 10 periods reach 3^10 = 59,049 paths: above the bound, refused
    with exit 2 naming `sample` (counted, not enumerated); with a sample it solves."""
    inst = chain_instance()
    reg = inst["scenarios"]["regimes"]
    reg["states"]["squeeze"] = {}
    third = {"normal": 1 / 3, "squeeze": 1 / 3, "ban": 1 / 3}
    reg["transition"] = {s: dict(third) for s in ("normal", "ban", "squeeze")}
    inst["periods"] = list(range(2026, 2036))
    model = instance_from_dict(_sampled(inst, 10, 0)).instance.scenarios
    assert count_scenarios(chain(model, inst["periods"])) == MAX_ENUMERATED_SCENARIOS + 1
    proc = _run("validate", str(write_instance(tmp_path, inst)))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "more than 20,000 scenarios" in proc.stderr and "sample" in proc.stderr
    proc = _run("validate", str(write_instance(tmp_path, _sampled(inst, 200, 1), "s.yaml")))
    assert proc.returncode == 0, proc.stderr
    assert "a sample of 200 paths, seed 1" in proc.stdout


def test_generated_ids_must_be_valid_and_unique() -> None:
    inst = chain_instance()
    inst["periods"] = list(range(2026, 2086))          # N-N-...: 119 characters
    inst["scenarios"]["regimes"]["transition"]["normal"] = {"normal": 1.0}
    with pytest.raises(InstanceError, match="119 characters, more than 100"):
        instance_from_dict(inst)
    inst = chain_instance()
    names = ["x", "x-y", "y-z", "y", "z", "zz"]                 # x-y then z, x then y-z
    inst["scenarios"]["regimes"] = {
        "start": "x", "states": {n: {} for n in names},
        "transition": {n: {m: 1 / 6 for m in names} for n in names}}
    with pytest.raises(InstanceError, match="two scenarios get the id 'x-y-z'"):
        instance_from_dict(inst)


# --------------------------------------------------------------------------- what-if
def test_set_reaches_the_regime_model() -> None:
    """A transition (or start) probability rescales the rest of its row in proportion;
    an event's probability stands alone; the sample is a key like any other."""
    loaded = load_instance(EXAMPLE)

    def changed(*sets: str) -> Any:
        return overridden(loaded, [parse_assignment(s) for s in sets]).instance.scenarios

    row = changed("scenarios.regimes.transition.normal.ban=0.1").regimes.transition["normal"]
    assert row == pytest.approx({"normal": 0.8 * 0.9 / 0.95, "squeeze": 0.15 * 0.9 / 0.95,
                                 "ban": 0.1})
    row = changed("scenarios.regimes.by_period.2028.normal.ban=0.2").regimes.by_period[2028][
        "normal"]
    assert row == pytest.approx({"normal": 0.85 * 0.8, "squeeze": 0.15 * 0.8, "ban": 0.2})
    start = changed("scenarios.regimes.start.ban=0.5").regimes.start
    assert start == pytest.approx({"normal": 0.4, "squeeze": 0.1, "ban": 0.5})
    model = changed("scenarios.events[lynas-outage].probability=0.2")
    assert model.events[0].probability == 0.2
    assert model.regimes == loaded.instance.scenarios.regimes
    model = changed("scenarios.sample={paths: 300, seed: 3}", "scenarios.sample.seed=4")
    assert (model.sample.paths, model.sample.seed) == (300, 4)
    avail = changed("scenarios.regimes.states.ban.disruptions[0].availability=0.2")
    assert avail.regimes.states["ban"].disruptions[0].availability == 0.2
    with pytest.raises(InstanceError, match="must be at most 1"):
        changed("scenarios.regimes.transition.normal.ban=1.5")
    with pytest.raises(UsageError, match="the rest of the row has probability 0"):
        changed("scenarios.regimes.by_period.2028.normal.normal=0",
                "scenarios.regimes.by_period.2028.normal.squeeze=0.5")
    with pytest.raises(UsageError, match="no key 'sample'"):
        changed("scenarios.sample.seed=3")


def test_sweep_over_a_transition_probability() -> None:
    """The likelier a ban follows normal times, the dearer the plan."""
    from model.studies.sweep import sweep_param

    loaded = instance_from_dict(chain_instance())
    table = sweep_param(loaded, "scenarios.regimes.transition.normal.ban", [0.1, 0.2, 0.4])
    assert (table.status == "optimal").all()
    assert table.expected_cost.is_monotonic_increasing
    assert table.expected_cost[1] == pytest.approx(3520)


# --------------------------------------------------------------------------- outputs
def test_the_workbook_refuses_a_regime_instance(tmp_path: Path) -> None:
    out = tmp_path / "x.xlsx"
    proc = _run("export-instance", str(EXAMPLE), "--out", str(out))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "sourcing build scenarios INSTANCE --expand" in proc.stderr
    assert not out.exists()


def test_build_scenarios_expand_and_its_alternatives(tmp_path: Path) -> None:
    out = tmp_path / "flat.yaml"
    proc = _run("build", "scenarios", str(EXAMPLE), "--expand", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "48 scenario(s) from 3 regimes and 1 event (enumerated)" in proc.stdout
    flat = load_instance(out).instance
    assert [w.id for w in flat.scenarios][:2] == ["N-N-N", "N-N-N+lynas-outage"]
    assert flat.name == load_instance(EXAMPLE).instance.name
    events = tmp_path / "events.yaml"
    events.write_text("events:\n  - {id: x, probability: 0.5}\n")
    for args, words in [((), "give either --events FILE"),
                        (("--expand", "--events", str(events)), "alternatives"),
                        (("--expand", "--sample", "5"), "--sample goes with --events")]:
        proc = _run("build", "scenarios", str(EXAMPLE), *args, "--out", str(tmp_path / "n.yaml"))
        assert proc.returncode == 2 and words in proc.stderr, proc.stderr
        assert not (tmp_path / "n.yaml").exists()
    proc = _run("build", "scenarios", str(ROOT / "instances" / "example.yaml"), "--expand",
                "--out", str(tmp_path / "n.yaml"))
    assert proc.returncode == 2 and "lists its scenarios already" in proc.stderr
    # --events on a generated instance: its first generated scenario is the baseline
    proc = _run("build", "scenarios", str(EXAMPLE), "--events", str(events), "--out",
                str(tmp_path / "e.yaml"))
    assert proc.returncode == 0 and "on top of scenario N-N-N's rules" in proc.stdout


def test_everything_downstream_on_a_generated_instance(tmp_path: Path) -> None:
    """compare (two policies), a cap sweep, --stochastic-metrics and verify on the run
    folders; the expanded list solves to the same optimum; verify catches a run
    whose scenarios are not the instance's; the report shows the regimes."""
    cmp_dir = tmp_path / "cmp"
    proc = _run("compare", str(EXAMPLE), "-p", "none", "-p", "crma", "--out", str(cmp_dir),
                "--stochastic-metrics")
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(cmp_dir / "comparison.csv")
    assert {"ws", "eev", "evpi", "vss"} <= set(table.columns)
    assert (table.evpi >= -1e-6).all() and (table.vss >= -1e-6).all()
    proc = _run("verify", str(cmp_dir))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    scen = pd.read_csv(cmp_dir / "runs" / "none" / "scenarios.csv")
    assert len(scen) == 48 and scen.probability.sum() == pytest.approx(1.0, abs=1e-12)
    sweep = _run("sweep", str(EXAMPLE), "--cap", "1.0:0.6:0.2", "--out", str(tmp_path / "sw"))
    assert sweep.returncode == 0, sweep.stderr
    assert (pd.read_csv(tmp_path / "sw" / "frontier.csv").status == "optimal").all()
    run_dir = tmp_path / "run"
    proc = _run("solve", str(EXAMPLE), "--policy", "crma", "--out", str(run_dir), "--json")
    assert proc.returncode == 0, proc.stderr
    flat = tmp_path / "flat.yaml"
    flat.write_text(instance_to_yaml(expanded(load_instance(EXAMPLE).instance).instance))
    again = solve_instance(flat, "crma").summary
    assert json.loads(proc.stdout)["objective"] == pytest.approx(again["objective"], rel=1e-9)
    assert json.loads(proc.stdout)["objective"] == pytest.approx(
        table.set_index("policy").loc["crma", "objective"], rel=1e-9)
    assert _run("verify", str(run_dir)).returncode == 0
    csv = run_dir / "scenarios.csv"
    csv.write_text(csv.read_text().replace("N-N-N+lynas-outage", "N-N-N+other", 1))
    proc = _run("verify", str(run_dir))
    assert proc.returncode == 1 and "scenarios.csv: the scenarios are not the instance's" \
        in proc.stdout + proc.stderr
    proc = _run("report", str(cmp_dir), "--out", str(tmp_path / "r.html"))
    assert proc.returncode == 0, proc.stderr
    page = (tmp_path / "r.html").read_text()
    assert 'id="assumptions-regimes"' in page and 'id="assumptions-transitions"' in page
    assert 'id="assumptions-events"' in page


@pytest.mark.parametrize("fault", ["rules in every period", "first period's odds swapped"])
def test_verify_rederives_generated_scenarios(tmp_path: Path, monkeypatch: Any,
                                               fault: str) -> None:
    """A run made from a wrong expansion (a regime's rules in every period, or the
    first period's probabilities swapped) fails verify, which re-derives the data and
    probabilities from the regime model: also while the wrong code is in place, and
    after (against the right expansion); a run from the right expansion passes."""
    from model.input import regimes
    from model.analysis.verify import verify_run
    from model.output.export import save_run

    path = write_instance(tmp_path, chain_instance())
    if fault == "rules in every period":
        right = regimes._with_periods
        monkeypatch.setattr(regimes, "_with_periods",
                            lambda rule, key, periods: right(rule, key, [2026, 2027]))
    else:
        right_chain = regimes.chain

        def swapped(model: Any, periods: Any) -> Any:
            ch = right_chain(model, periods)
            object.__setattr__(ch, "first", ch.first[::-1].copy())
            return ch
        monkeypatch.setattr(regimes, "chain", swapped)
    regimes.clear_cache()
    try:
        wrong = save_run(solve_instance(path), tmp_path / "wrong", charts=False)
        during = verify_run(wrong)
    finally:
        monkeypatch.undo()
        regimes.clear_cache()
    assert during and verify_run(wrong), fault
    if fault != "rules in every period":
        assert any("by its path" in p for p in during), during
    right = save_run(solve_instance(path), tmp_path / "right", charts=False)
    assert verify_run(right) == []


def test_the_json_schema_describes_both_forms() -> None:
    schema = json_schema()
    assert "ScenarioModel" in schema["$defs"] and "Regimes" in schema["$defs"]
    assert "periods" not in schema["$defs"]["StateDisruption"]["properties"]
    assert "periods" in schema["$defs"]["Disruption"]["properties"]


def test_the_expansion_is_made_once() -> None:
    """The accessor caches: validation expands, every later reader gets the same list."""
    loaded = load_instance(EXAMPLE)
    first, second = scenario_list(loaded.instance), scenario_list(loaded.instance)
    assert first == second and first is not second
    assert all(a is b for a, b in zip(first, second))
    data = instance_to_dict(loaded.instance)
    assert yaml.safe_dump(data)            # the model is plain data again
