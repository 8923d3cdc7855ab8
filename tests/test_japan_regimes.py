"""The bundled Japan regime instance (issue 23): instances/japan_2026_regimes.yaml.

It is japan_2026.yaml with the seven named scenarios replaced by a chain of three
Chinese export-control regimes and three events. These tests check what the file
claims: the same inputs as japan_2026.yaml apart from the scenarios; a chain whose
rows, start and first-year distribution are the ones stated (instances/README.md,
"japan_2026_regimes.yaml"); regimes and events that reproduce the named scenarios'
numbers on the same regime path; the size; and that a small sample of it solves.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from model.input.builders import instance_to_dict
from model.input.data import problem_data
from model.input.instance import load_instance
from model.input.regimes import (
    ScenarioPaths,
    build_scenarios,
    chain,
    count_scenarios,
    generate_paths,
    scenario_list,
)
from model.input.schema import Instance, Scenario, ScenarioModel
from model.safety import MAX_ENUMERATED_SCENARIOS

ROOT = Path(__file__).resolve().parents[1]
REGIMES = ROOT / "instances" / "japan_2026_regimes.yaml"
NAMED = ROOT / "instances" / "japan_2026.yaml"
STATES = ["normal", "squeeze", "ban"]
# the matrix of instances/README.md's calibration table (into 2026 and 2028-2032)
BASE = np.array([[0.48, 0.45, 0.07],
                 [0.33, 0.50, 0.17],
                 [0.31, 0.61, 0.08]])
REIMPOSITION = 0.15     # into 2027: this share of each row's move to normal goes to squeeze


@pytest.fixture(scope="module")
def regimes() -> Instance:
    return load_instance(REGIMES).instance


@pytest.fixture(scope="module")
def named() -> Instance:
    return load_instance(NAMED).instance


def full_model(inst: Instance) -> ScenarioModel:
    """The instance's scenario model with every path enumerated (without its `sample`)."""
    model = inst.scenarios
    assert isinstance(model, ScenarioModel)
    return model.model_copy(update={"sample": None})


def full_paths(inst: Instance) -> ScenarioPaths:
    """Every path of the full tree (ids and probabilities, without building the rules of
    17,496 scenarios)."""
    return generate_paths(full_model(inst), inst.periods)


def some_scenarios(inst: Instance, ids: list[str]) -> list[Scenario]:
    """The generated scenarios of the full tree with these ids, as the enumeration
    builds them."""
    paths = full_paths(inst)
    rows = [paths.ids.index(i) for i in ids]
    subset = dataclasses.replace(paths, ids=list(ids), probability=paths.probability[rows],
                                 regime=paths.regime[rows], happens=paths.happens[rows])
    return build_scenarios(full_model(inst), subset)


def _without_provenance(value: Any) -> Any:
    """The data without free text: `notes`, and `sources` where it is a list of
    citations (not the instance's list of sources)."""
    if isinstance(value, dict):
        return {k: _without_provenance(v) for k, v in value.items()
                if k != "notes" and not (k == "sources" and all(isinstance(c, str) for c in v))}
    if isinstance(value, list):
        return [_without_provenance(v) for v in value]
    return value


def test_the_same_inputs_as_japan_2026_but_the_scenarios(regimes: Instance,
                                                         named: Instance) -> None:
    """Demand, stock, indices, sources, projects, policies, risk: every number equal."""
    a, b = instance_to_dict(regimes), instance_to_dict(named)
    for key in ("name", "description", "scenarios"):
        a.pop(key), b.pop(key)
    assert _without_provenance(a) == _without_provenance(b)
    for part in ("sources", "projects"):        # provenance kept, where it can be
        assert all(item.notes and item.sources for item in getattr(regimes, part))
    assert all(p.notes and p.sources for p in regimes.policies.values())


def test_the_transition_rows_and_start_sum_to_one(regimes: Instance) -> None:
    """As written (not only after the division by the sum that the model applies)."""
    reg = regimes.scenarios.regimes
    assert list(reg.states) == STATES
    matrices = [reg.transition, *reg.by_period.values()]
    for matrix in matrices:
        assert set(matrix) == set(STATES)
        for row in matrix.values():
            assert math.fsum(row.values()) == pytest.approx(1.0, abs=1e-12)
            assert all(0 < p < 1 for p in row.values())   # every path reachable
    assert math.fsum(reg.start.values()) == pytest.approx(1.0, abs=1e-12)


def test_the_chain_is_the_calibration_table(regimes: Instance) -> None:
    """2026 and 2028-2032 use the base matrix; 2027 moves 0.15 of each row's move to
    normal to squeeze (re-imposition after the suspensions end in Nov 2026)."""
    ch = chain(regimes.scenarios, regimes.periods)
    assert ch.states == STATES
    np.testing.assert_allclose(ch.into(0), BASE, atol=1e-15)
    bumped = BASE.copy()
    bumped[:, 1] += REIMPOSITION * BASE[:, 0]
    bumped[:, 0] *= 1 - REIMPOSITION
    np.testing.assert_allclose(ch.into(1), bumped, atol=1e-12)
    for t in range(2, 7):
        np.testing.assert_allclose(ch.into(t), BASE, atol=1e-15)


def test_the_start_is_the_position_at_the_turn_of_2026(regimes: Instance) -> None:
    """Half normal (licences in force), half the ban of 6 Jan 2026 on Japan; 2026 is
    one year's transition from there: normal 0.395, squeeze 0.53, ban 0.075. Every
    year's regime distribution sums to 1, and 2026 is likelier squeeze than normal."""
    ch = chain(regimes.scenarios, regimes.periods)
    np.testing.assert_allclose(ch.start, [0.5, 0.0, 0.5])
    np.testing.assert_allclose(ch.first, 0.5 * BASE[0] + 0.5 * BASE[2], atol=1e-15)
    np.testing.assert_allclose(ch.first, [0.395, 0.53, 0.075], atol=1e-15)
    dist = ch.first
    for t in range(1, 7):
        dist = dist @ ch.into(t)
        assert math.fsum(dist) == pytest.approx(1.0, abs=1e-12)
    assert ch.first[1] > ch.first[0] > ch.first[2]


def test_the_size_and_the_probabilities(regimes: Instance) -> None:
    """3^7 paths x 2^3 event outcomes, within the enumeration limit; the generated
    probabilities sum to 1 and their 2026 marginals are the chain's first year."""
    ch = chain(full_model(regimes), regimes.periods)
    assert count_scenarios(ch) == 3 ** 7 * 2 ** 3 == 17_496 <= MAX_ENUMERATED_SCENARIOS
    paths = full_paths(regimes)
    assert paths.n_scenarios == 17_496 and len(set(paths.ids)) == 17_496
    p = paths.probability
    assert math.fsum(p) == pytest.approx(1.0, abs=1e-12)
    first = {s: math.fsum(q for i, q in zip(paths.ids, p) if i[0] == s[0].upper())
             for s in STATES}
    assert list(first.values()) == pytest.approx(ch.first.tolist(), abs=1e-12)
    outage = math.fsum(q for i, q in zip(paths.ids, p) if "+lynas-outage" in i)
    success = math.fsum(q for i, q in zip(paths.ids, p) if "+mud-shortfall" not in i)
    assert outage == pytest.approx(0.10) and success == pytest.approx(0.05)


def test_the_bundled_sample(regimes: Instance) -> None:
    """The file draws 5,000 paths with seed 2026 (the full tree is above the model-size
    limit): 1,796 distinct scenarios, as instances/README.md says, each drawn
    (probability x 5,000) times."""
    assert regimes.scenarios.sample.paths == 5000 and regimes.scenarios.sample.seed == 2026
    scen = scenario_list(regimes)
    assert len(scen) == 1_796
    draws = np.array([w.probability for w in scen]) * 5000
    np.testing.assert_allclose(draws, np.round(draws), atol=1e-9)
    assert np.round(draws).sum() == 5000


# the named scenario of japan_2026.yaml -> the scenario of the same regime path and
# events in the regime instance
SAME = {
    "normal": "N-N-N-N-N-N-N+mud-shortfall",
    "licensing-squeeze": "S-S-N-N-N-N-N+mud-shortfall",
    "jp-ban-2026": "B-N-N-N-N-N-N+mud-shortfall",
    "lynas-outage": "N-N-N-N-N-N-N+lynas-outage+mud-shortfall",
    "iluka-delay": "N-N-N-N-N-N-N+iluka-delay+mud-shortfall",
    "mud-success": "N-N-N-N-N-N-N",
}


def test_regimes_and_events_reproduce_the_named_scenarios(regimes: Instance,
                                                          named: Instance) -> None:
    """Availability, prices, demand and emergencies of each named scenario (but the
    re-imposition, which has no path of its own) equal those of the regime scenario of
    the same path: the states carry the named scenarios' rules, the events theirs,
    and `mud-shortfall` is the named scenarios' `&mud_base` rule."""
    picked = some_scenarios(regimes, list(SAME.values()))
    d_reg = problem_data(regimes.model_copy(update={"scenarios": picked}))
    d_named = problem_data(named)
    cols = [d_named.scenarios.index(k) for k in SAME]
    assert d_reg.scenarios == list(SAME.values())
    np.testing.assert_array_equal(d_reg.arc_source, d_named.arc_source)
    for name in ("availability", "price_multiplier", "delivery_price", "demand_t",
                 "emergency"):
        np.testing.assert_array_equal(getattr(d_reg, name), getattr(d_named, name)[..., cols],
                                      err_msg=name)
    # and the events' probabilities are the named scenarios'
    events = {e.id: e.probability for e in regimes.scenarios.events}
    probability = {w.id: w.probability for w in named.scenarios}
    assert events["lynas-outage"] == probability["lynas-outage"]
    assert events["iluka-delay"] == probability["iluka-delay"]
    assert 1 - events["mud-shortfall"] == pytest.approx(probability["mud-success"])


def test_the_regime_rules_hold_in_their_years_only(regimes: Instance) -> None:
    """A path's regime sets China's Dy/Tb availability year by year: 0.8, 0.5, 0."""
    picked = some_scenarios(regimes, ["S-B-N-S-B-N-B+mud-shortfall"])
    d = problem_data(regimes.model_copy(update={"scenarios": picked}))
    src = list(d.sources["id"])
    dy = d.elements.index("Dy")
    arc = next(k for k in range(d.n_arcs) if src[d.arc_source[k]] == "china-contract"
               and d.arc_element[k] == dy)
    assert d.availability[arc, :, 0].tolist() == [0.5, 0.0, 0.8, 0.5, 0.0, 0.8, 0.0]
    assert d.emergency[dy, :, 0].tolist() == [1, 1, 0, 1, 1, 0, 1]


def test_a_small_sample_solves(tmp_path: Path, solve) -> None:
    """A 25-path sample under `none` (verified, and the same LP on the matrix path).
    In a ban year in 2026 at most Lynas HREE 40 + recycling 45 + the opening 147.9 t
    of Dy can reach Japan (Caremag from 2027, Iluka from 2028, no build before 2028),
    so each such scenario is short of at least 900 - 232.9 = 667.1 t of Dy in 2026."""
    data = yaml.safe_load(REGIMES.read_text())
    data["scenarios"]["sample"] = {"paths": 25, "seed": 4}   # 5 with a ban in 2026
    run = solve(data)
    assert run.optimal
    balance = run.tables["balance"]
    ban_2026 = balance[(balance["element"] == "Dy") & (balance["period"].astype(str) == "2026")
                       & balance["scenario"].str.startswith("B-")]
    assert len(ban_2026) > 0
    assert (ban_2026["shortage_t"] >= 900 - (40 + 45 + 147.9) - 1e-6).all()
