"""Briefing figures asked the right way (issue 22): shortage per element and its value,
what binds in words with a hand-derived saving, and a CVaR whose tail is one scenario.

Every instance is tiny and its answer derived by hand in the test's docstring.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from conftest import base_instance, contract, hedge_instance, spot
from model.studies.compare import compare_policies
from model.analysis.binding import binding_rows
from model.input.instance import instance_from_dict


def test_shortage_per_element_and_its_value(solve) -> None:
    """Nd: demand 100, 80 t of supply: 20 t short in each of 2 periods, every scenario.
    Dy: demand 10, all of it from CN, which a ban (probability 0.25) stops: 10 t short
    a period there. Discount 10 %/yr: period 2 weighs 1/1.1.

    Expected shortage: Nd 40 t, Dy 0.25 x 20 = 5 t; summed 45 t. Value at the penalty
    prices (Nd 1,000, Dy 5,000 per t): (20 x 1,000 + 0.25 x 10 x 5,000) x (1 + 1/1.1).
    """
    inst = base_instance(
        periods=[2026, 2027], elements=["Nd", "Dy"], demand={"Nd": 100, "Dy": 10},
        discount_rate=0.1, shortage_penalty={"Nd": 1000, "Dy": 5000},
        sources=[spot("au", "AU", {"Nd": {"capacity": 80, "price": 10}}),
                 spot("cn", "CN", {"Dy": {"capacity": 50, "price": 10}})],
        scenarios=[{"id": "normal", "probability": 0.75},
                   {"id": "ban", "probability": 0.25,
                    "disruptions": [{"match": {"mined_in": "CN"}, "availability": 0.0}]}])
    run = solve(inst)
    s = run.summary
    assert s["expected_shortage_by_element_t"] == pytest.approx({"Nd": 40.0, "Dy": 5.0})
    assert s["expected_shortage_t"] == pytest.approx(45.0)      # the sum, labelled as such
    weight = 1 + 1 / 1.1
    assert s["expected_shortage_value"] == pytest.approx(
        (20 * 1000 + 0.25 * 10 * 5000) * weight)
    assert s["expected_shortage_value_by_element"] == pytest.approx(
        {"Nd": 20 * 1000 * weight, "Dy": 0.25 * 10 * 5000 * weight})
    # the same from the balance table, as a reader would add it up
    bal = run.tables["balance"]
    by_element = (bal.shortage_t * bal.probability).groupby(bal.element).sum()
    assert by_element.to_dict() == pytest.approx(s["expected_shortage_by_element_t"])
    # written to summary.json and checked by `sourcing verify` (conftest's solve)
    from pathlib import Path

    written = json.loads((Path(s["_folder"]) / "summary.json").read_text())
    assert written["expected_shortage_by_element_t"] == pytest.approx({"Nd": 40.0, "Dy": 5.0})


def _take_instance() -> dict:
    """Nd: demand 30 t, one period, resale at 30/t. Contract `au`: 200 t capacity at
    100/t, no fee, 100 t signed (`committed`), minimum take 0.5: at least 50 t must be
    delivered. Optimum: x = 100, q = 50, 20 t sold again; cost 50 x 100 - 20 x 30.

    Relaxing the minimum take by 1 t: q = 49, one tonne fewer bought (100) and sold
    (30): saves 70. Relaxing the signed volume by 1 t: x = 99, q >= 49.5: half a tonne
    less, saves 35. Neither row is degenerate (q < x, x < capacity)."""
    return base_instance(
        demand={"Nd": 30}, currency="EUR", resale_price={"Nd": 30},
        sources=[contract("au", "AU", {"Nd": {"capacity": 200, "price": 100,
                                              "committed": 100}}, min_take=0.5)])


def test_binding_in_words_minimum_take_and_signed_volume(solve) -> None:
    run = solve(_take_instance())
    assert run.summary["expected_cost"] == pytest.approx(50 * 100 - 20 * 30)
    items = binding_rows(run.tables["duals"], run.loaded.instance, "EUR", "yr")
    saving = {b.constraint: b.saving for b in items}
    assert saving == pytest.approx({"min_take": 70.0, "committed": 35.0})
    words = [b.words for b in items]
    assert words == ["au's Nd minimum take: relaxing it by 1 t a year saves EUR 70",
                     "au's signed Nd volume: relaxing it by 1 t a year saves EUR 35"]


def test_binding_in_words_a_cap() -> None:
    """Nd demand 100: CN spot at 100/t, AU spot at 150/t, at most 60 % from CN
    (mining). CN 60 t, AU 40 t; one more tonne allowed from CN replaces an AU tonne:
    saves 50. The comparison says so in words, with the numbers for programs."""
    inst = base_instance(
        currency="EUR",
        sources=[spot("cn", "CN", {"Nd": {"capacity": 1000, "price": 100}}),
                 spot("au", "AU", {"Nd": {"capacity": 1000, "price": 150}})],
        policies={"cap60": {"max_single_country_share": {"share": 0.6,
                                                         "stages": ["mining"]}}})
    table, runs = compare_policies(instance_from_dict(inst), ["none", "cap60"])
    row = table.set_index("policy").loc["cap60"]
    assert row.binding == "the 60 % cap on CN-mined Nd: relaxing it by 1 t a year saves EUR 50"
    [item] = json.loads(row.binding_rows)
    assert item["constraint"] == "max_single_country_share" and item["country"] == "CN"
    assert item["stage"] == "mining" and item["element"] == "Nd"
    assert item["saving"] == pytest.approx(50.0)
    assert table.set_index("policy").loc["none", "binding"] == ""
    assert row.delta_expected_cost_per_period == pytest.approx(40 * 50)


def test_binding_in_words_per_period_and_old_duals() -> None:
    """Quarterly periods say "a period"; rows that save nothing are left out."""
    from model.analysis.binding import Binding, in_words

    duals = pd.DataFrame({"constraint": ["min_take", "min_take", "capacity", "demand"],
                          "rule": ["x", "x", "", ""], "source": ["", "", "x", ""],
                          "element": ["Tb", "Tb", "Tb", "Tb"], "period": ["q1", "q2", "q1", "q1"],
                          "country": "", "stage": "", "scenario": "", "node": "",
                          "value": [-1.5e6, -0.79e6, 0.0, 9e6]})
    [item] = binding_rows(duals, None, "USD", "period")
    assert item.words == "x's Tb minimum take: relaxing it by 1 t a period saves USD 2.29 m"
    budget = Binding("budget", "p.budget[0]", "", "", "", "", saving=0.25)
    assert in_words(budget, None, "USD") == "the budget: relaxing it by USD 1.00 m saves " \
        "USD 250,000"


def test_cvar_of_one_scenario_is_warned() -> None:
    """hedge_instance: normal 0.8, ban 0.2 (the costlier). At alpha 0.95 the worst 5 %
    lies in the ban alone: the CVaR is its cost, and the summary says so. At alpha 0.5
    the worst 50 % takes both scenarios: no warning."""
    from model.api import solve_instance

    inst = hedge_instance()
    one = solve_instance(instance_from_dict({**inst, "risk": {"lambda": 0.0, "alpha": 0.95}}))
    warned = [w for w in one.summary["warnings"] if "CVaR" in w]
    assert len(warned) == 1 and "one scenario, ban" in warned[0]
    assert one.summary["cvar"] == pytest.approx(one.summary["scenario_costs"]["ban"])
    two = solve_instance(instance_from_dict({**inst, "risk": {"lambda": 0.0, "alpha": 0.5}}))
    assert not [w for w in two.summary["warnings"] if "CVaR" in w]
    single = solve_instance(instance_from_dict({k: v for k, v in inst.items()
                                                if k != "scenarios"}))
    assert not [w for w in single.summary["warnings"] if "CVaR" in w]   # no tail to speak of
