"""Several buyers (issue 26): the model. Hand-derived answers on tiny instances, the
one-buyer invariance, the decompositions, per-buyer policies, bad input, and the
independent check of a run folder (every solve here is verified by conftest)."""

from __future__ import annotations

import copy
import csv
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import solve_dict, write_instance
from model.analysis.verify import verify_run
from model.api import solve_instance
from model.errors import InstanceError, UsageError
from model.input.builders import synthetic_instance
from model.input.instance import instance_from_dict, load_instance

ROOT = Path(__file__).resolve().parents[1]


def two_buyers(tc: float = 0.0, ban: bool = True) -> dict[str, Any]:
    """Buyers A and B (demand 6 t each, penalty 100/t); one Chinese spot source of 10 t
    at 1/t shared by demand (5 t each); with `ban`, a scenario (p 0.5) that cuts A off."""
    scen = [{"id": "normal", "probability": 0.5 if ban else 1.0}]
    if ban:
        scen.append({"id": "ban-A", "probability": 0.5, "disruptions": [
            {"match": {"mined_in": "CN"}, "availability": 0, "buyers": ["A"]}]})
    return {"schema": 1, "name": "two", "periods": [1], "elements": ["X"],
            "shortage_penalty": {"X": 100},
            "buyers": [{"id": "A", "home": ["JP"], "demand": {"X": 6}},
                       {"id": "B", "home": ["US"], "demand": {"X": 6}}],
            "coalition": {"transfer_cost": {"X": tc}},
            "sources": [{"id": "S", "mined_in": "CN", "refined_in": "CN", "mode": "spot",
                         "supply": {"X": {"capacity": 10, "price": 1}}}],
            "scenarios": scen}


def one_buyer(inst: dict[str, Any], buyer: str = "B1") -> dict[str, Any]:
    """The same instance written with one buyer holding its home, demand and stock."""
    out = copy.deepcopy(inst)
    b = {"id": buyer, "home": [out.pop("home")], "demand": out.pop("demand")}
    stock = out.get("stock") or {}
    if stock.get("initial"):
        b["stock"] = {"initial": stock.pop("initial")}
    out["buyers"] = [b]
    return out


# --------------------------------------------------------------------------- hand-derived
def test_a_ban_aimed_at_one_buyer_is_pooled_away(tmp_path: Path) -> None:
    """Alone, A gets its 5 t share (1 short, cost 105) normally and nothing in the ban
    (600): 352.5. B: 105 in both. Together the 10 t serve both in both scenarios (2 t
    short, 210): in the ban B buys all 10 t (its own access) and passes 4 t to A."""
    inst = two_buyers()
    assert solve_dict(tmp_path, inst, buyers=["A"]).summary["objective"] == \
        pytest.approx(352.5)
    assert solve_dict(tmp_path, inst, buyers=["B"]).summary["objective"] == \
        pytest.approx(105.0)
    run = solve_dict(tmp_path, inst)
    assert run.summary["objective"] == pytest.approx(210.0)
    moved = run.tables["transfers"]
    ban = moved[moved.scenario == "ban-A"].set_index("buyer")
    assert ban.loc["A", "received_t"] == pytest.approx(4.0)
    assert ban.loc["B", "sent_t"] == pytest.approx(4.0)
    deliveries = run.tables["deliveries"]
    to_a = deliveries[(deliveries.scenario == "ban-A") & (deliveries.buyer == "A")]
    assert to_a["delivered_t"].sum() == pytest.approx(0.0)      # A's own access is cut


def test_transfers_are_priced(tmp_path: Path) -> None:
    """A holds 10 t of stock and needs 4; B needs 4 and has no supply at all. Alone B is 4
    t short at 1,000/t; together A moves 4 t of its stock to B at 7/t: 28, paid by B.
    In the two-buyer ban at 3/t, the 4 t moved in the ban (p 0.5) add 6 to 210."""
    inst = {"schema": 1, "name": "priced", "periods": [1], "elements": ["X"],
            "shortage_penalty": {"X": 1000},
            "buyers": [{"id": "A", "home": ["JP"], "demand": {"X": 4},
                        "stock": {"initial": {"X": 10}}},
                       {"id": "B", "home": ["US"], "demand": {"X": 4}}],
            "coalition": {"transfer_cost": {"X": 7}},
            "sources": [{"id": "S", "mined_in": "AU", "refined_in": "AU", "mode": "spot",
                         "supply": {"X": {"capacity": 0, "price": 1}}}]}
    assert solve_dict(tmp_path, inst, buyers=["B"]).summary["objective"] == \
        pytest.approx(4000.0)
    run = solve_dict(tmp_path, inst)
    assert run.summary["objective"] == pytest.approx(28.0)
    assert run.tables["scenarios"]["transfer_cost"].iloc[0] == pytest.approx(28.0)
    per = run.tables["buyers"].set_index("buyer")
    assert per.loc["B", "expected_cost"] == pytest.approx(28.0)   # the receiver pays
    assert per.loc["A", "expected_cost"] == pytest.approx(0.0)
    assert solve_dict(tmp_path, two_buyers(tc=3.0)).summary["objective"] == \
        pytest.approx(216.0)


def test_pooled_entitlements_are_open_to_every_member(tmp_path: Path) -> None:
    """Only A holds the source; together B buys from the pooled capacity directly (its
    own access), no transfer: 8 t at 1."""
    inst = {"schema": 1, "name": "pooled", "periods": [1], "elements": ["X"],
            "shortage_penalty": {"X": 1000},
            "buyers": [{"id": "A", "home": ["JP"], "demand": {"X": 4}},
                       {"id": "B", "home": ["US"], "demand": {"X": 4}}],
            "coalition": {"transfer_cost": {"X": 7}},
            "sources": [{"id": "S", "mined_in": "AU", "refined_in": "AU", "mode": "spot",
                         "entitlement": {"A": 1.0},
                         "supply": {"X": {"capacity": 10, "price": 1}}}]}
    assert solve_dict(tmp_path, inst, buyers=["B"]).summary["objective"] == \
        pytest.approx(4000.0)
    run = solve_dict(tmp_path, inst)
    assert run.summary["objective"] == pytest.approx(8.0)
    assert run.tables["transfers"].empty


def test_shortage_never_exceeds_demand(tmp_path: Path) -> None:
    """No supply. If A (penalty 10) could declare more shortage than its demand and pass
    the tonnes to B (penalty 1,000), the coalition would pay 80; u <= D makes it
    4 x 10 + 4 x 1,000."""
    inst = {"schema": 1, "name": "nothing", "periods": [1], "elements": ["X"],
            "buyers": [{"id": "A", "home": ["JP"], "demand": {"X": 4},
                        "shortage_penalty": {"X": 10}},
                       {"id": "B", "home": ["US"], "demand": {"X": 4},
                        "shortage_penalty": {"X": 1000}}],
            "sources": [{"id": "S", "mined_in": "AU", "refined_in": "AU", "mode": "spot",
                         "supply": {"X": {"capacity": 0, "price": 1}}}]}
    assert solve_dict(tmp_path, inst).summary["objective"] == pytest.approx(4040.0)


def test_entitlements_split_by_demand_and_map(tmp_path: Path) -> None:
    """A map naming A (0.25) leaves 0.75 to B and C in proportion to their demand (1:2):
    0.25 and 0.5; alone each buys at most its share of the 12 t."""
    inst = {"schema": 1, "name": "shares", "periods": [1], "elements": ["X"],
            "shortage_penalty": {"X": 100},
            "buyers": [{"id": "A", "home": ["JP"], "demand": {"X": 10}},
                       {"id": "B", "home": ["US"], "demand": {"X": 10}},
                       {"id": "C", "home": ["FR"], "demand": {"X": 20}}],
            "sources": [{"id": "S", "mined_in": "AU", "refined_in": "AU", "mode": "spot",
                         "entitlement": {"A": 0.25},
                         "supply": {"X": {"capacity": 12, "price": 1}}}]}
    for who, got in (("A", 3.0), ("B", 3.0), ("C", 6.0)):
        run = solve_dict(tmp_path, inst, buyers=[who])
        assert run.tables["deliveries"]["delivered_t"].sum() == pytest.approx(got)


def test_committed_volume_follows_the_shares(tmp_path: Path) -> None:
    """A signed 6 t on a source held 1/3 by A: A alone contracts at least 2 t."""
    inst = {"schema": 1, "name": "signed", "periods": [1], "elements": ["X"],
            "shortage_penalty": {"X": 100},
            "buyers": [{"id": "A", "home": ["JP"], "demand": {"X": 1}},
                       {"id": "B", "home": ["US"], "demand": {"X": 2}}],
            "sources": [{"id": "S", "mined_in": "AU", "refined_in": "AU", "mode": "contract",
                         "reservation_fee": 0.5,
                         "supply": {"X": {"capacity": 6, "price": 10, "committed": 6}}}]}
    run = solve_dict(tmp_path, inst, buyers=["A"])
    assert run.tables["allocation"]["contracted_t"].sum() == pytest.approx(2.0)
    # 2 t contracted (fee 5/t), 1 t delivered (10): 20
    assert run.summary["objective"] == pytest.approx(20.0)


def test_buyer_targeted_price_and_demand_shocks(tmp_path: Path) -> None:
    """A price shock and a demand shock naming A change A's numbers only."""
    inst = two_buyers(ban=False)
    inst["sources"][0]["supply"]["X"]["capacity"] = 100
    inst["scenarios"] = [{"id": "s", "probability": 1.0,
                          "price_shocks": [{"match": {"id": "S"}, "multiplier": 3,
                                            "buyers": ["A"]}],
                          "demand_shocks": [{"multiplier": 2, "buyers": ["A"]}]}]
    run = solve_dict(tmp_path, inst)
    per = run.tables["buyers"].set_index("buyer")
    # A buys 12 t at 3 (or B buys for it at 1 and moves it, free): 12; B 6 t at 1
    assert run.summary["objective"] == pytest.approx(18.0)
    assert per.loc["B", "demand_t"] == pytest.approx(6.0)
    bal = run.tables["balance"].set_index("buyer")
    assert bal.loc["A", "demand_t"] == pytest.approx(12.0)


def test_policies_use_each_buyers_home(tmp_path: Path) -> None:
    """A cap of 50 % on any third country: French tonnes are domestic for the EU (home FR,
    DE) and third-country for Japan. Alone, Japan takes at most 5 of its 10 t from FR."""
    inst = {"schema": 1, "name": "homes", "periods": [1], "elements": ["X"],
            "shortage_penalty": {"X": 100},
            "buyers": [{"id": "JP", "home": ["JP"], "demand": {"X": 10}},
                       {"id": "EU", "home": ["FR", "DE"], "demand": {"X": 10}}],
            "sources": [{"id": "fr", "mined_in": "FR", "refined_in": "FR", "mode": "spot",
                         "entitlement": {"JP": 0.5, "EU": 0.5},
                         "supply": {"X": {"capacity": 40, "price": 1}}}],
            "policies": {"cap": {"max_single_country_share": {"share": 0.5}},
                         "cap-eu-floor": {"min_domestic_share": {"share": 0.9,
                                                                 "buyers": ["EU"]}}}}
    jp = solve_dict(tmp_path, inst, "cap", buyers=["JP"])
    assert jp.tables["deliveries"]["delivered_t"].sum() == pytest.approx(5.0)
    eu = solve_dict(tmp_path, inst, "cap", buyers=["EU"])
    assert eu.tables["deliveries"]["delivered_t"].sum() == pytest.approx(10.0)
    both = solve_dict(tmp_path, inst, "cap-eu-floor")      # a floor for the EU only
    assert both.optimal and both.summary["expected_shortage_t"] == pytest.approx(0.0)


# --------------------------------------------------------------------------- invariance
def _example_with_one_buyer() -> tuple[Any, Any]:
    from model.input.instance import yaml_load

    raw = yaml_load((ROOT / "instances" / "example.yaml").read_text())
    raw["policies"] = {k: v for k, v in raw.get("policies", {}).items() if "budget" not in v}
    return instance_from_dict(raw), instance_from_dict(one_buyer(raw))


def test_one_buyer_is_todays_model_on_the_example() -> None:
    """An instance written with one buyer (its home, demand, stock) solves to the
    objective of the plain instance, policy by policy."""
    plain, buyer = _example_with_one_buyer()
    for policy in ["none", *plain.instance.policies]:
        a = solve_instance(plain, policy)
        b = solve_instance(buyer, policy)
        assert a.summary["status"] == b.summary["status"]
        if a.optimal:
            assert b.summary["objective"] == pytest.approx(a.summary["objective"], rel=1e-9)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), information=st.sampled_from(["history", "clairvoyant"]))
def test_one_buyer_is_todays_model(seed: int, information: str) -> None:
    raw = synthetic_instance(5, 2, 3, 4, seed=seed, information=information)
    raw["policies"] = {k: v for k, v in raw.get("policies", {}).items() if "budget" not in v}
    plain, buyer = instance_from_dict(raw), instance_from_dict(one_buyer(raw))
    for policy in ["none", *plain.instance.policies]:
        a, b = solve_instance(plain, policy), solve_instance(buyer, policy)
        assert a.summary["status"] == b.summary["status"]
        if a.optimal:
            assert b.summary["objective"] == pytest.approx(a.summary["objective"], rel=1e-9)


def test_g7_blocks_and_one_lp_agree() -> None:
    """The G7 instance by element blocks (each base element's buyers together) and as one
    LP: the same optimum; with a CVaR term too (the coupled route)."""
    loaded = load_instance(ROOT / "instances" / "g7_2026.yaml")
    for lam in (None, 0.3):
        a = solve_instance(loaded, risk_lambda=lam)
        b = solve_instance(loaded, risk_lambda=lam, decompose=False)
        assert a.summary["blocks"] > 1
        assert a.summary["objective"] == pytest.approx(b.summary["objective"], rel=1e-7)


def test_g7_both_builders_and_verify(tmp_path: Path) -> None:
    """The bundled G7 instance: the matrix path is the Pyomo formulation's LP, and its
    run folder (the grand coalition, and a policy per buyer) passes verify."""
    from model.input.instance import yaml_load

    inst = load_instance(ROOT / "instances" / "g7_2026.yaml").instance
    raw = yaml_load((ROOT / "instances" / "g7_2026.yaml").read_text())
    for policy in ("none", "crma65-eu-2030", "stock-60d"):
        run = solve_dict(tmp_path, raw, policy)
        assert run.optimal
        assert set(run.summary["buyers"]) == {b.id for b in inst.buyers}


# --------------------------------------------------------------------------- verify
def test_verify_finds_a_shared_capacity_breach(tmp_path: Path) -> None:
    run = solve_dict(tmp_path, two_buyers())
    folder = Path(run.summary["_folder"])
    path = folder / "deliveries.csv"
    rows = list(csv.DictReader(path.open()))
    for r in rows:
        if r["scenario"] == "ban-A" and r["buyer"] == "B":
            r["delivered_t"] = "11"
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    problems = verify_run(folder)
    assert any("shared capacity" in p or "access" in p for p in problems), problems
    assert any("balance B X 1 in ban-A" in p for p in problems), problems


def test_verify_finds_a_transfer_that_was_never_sent(tmp_path: Path) -> None:
    run = solve_dict(tmp_path, two_buyers())
    folder = Path(run.summary["_folder"])
    path = folder / "balance.csv"
    rows = list(csv.DictReader(path.open()))
    for r in rows:
        if r["scenario"] == "ban-A" and r["buyer"] == "B":
            r["sent_t"] = "0"
            r["shortage_t"] = "-4"      # a balance that still adds up, with shortage < 0
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    problems = verify_run(folder)
    assert any("transfers of X 1 in ban-A" in p for p in problems), problems
    assert any("shortage B X 1 in ban-A" in p for p in problems), problems


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("change, words", [
    (lambda d: d["sources"][0].update(entitlement={"Z": 0.5}), "unknown buyer 'Z'"),
    (lambda d: d["sources"][0].update(entitlement={"A": 0.7, "B": 0.6}), "above 1"),
    (lambda d: d.update(demand={"X": 1}), "takes no top-level `demand`"),
    (lambda d: d.update(home="JP"), "takes no top-level `home`"),
    (lambda d: d["buyers"][1].update(id="A"), "duplicate id 'A'"),
    (lambda d: d["buyers"][0].update(demand={}), "no value for element(s) X"),
    (lambda d: d["scenarios"][1]["disruptions"][0].update(buyers=["Q"]), "unknown buyer 'Q'"),
    (lambda d: d.update(policies={"b": {"budget": {"amount": 10}}}), "budget"),
    (lambda d: d["buyers"][0].update(home=["EU"]), "ISO 3166"),
])
def test_bad_buyers_input(change: Any, words: str) -> None:
    inst = two_buyers()
    change(inst)
    with pytest.raises(InstanceError) as err:
        instance_from_dict(inst)
    assert words in str(err.value)


def test_one_buyer_still_needs_home_and_demand() -> None:
    inst = {"schema": 1, "name": "x", "periods": [1], "elements": ["X"],
            "shortage_penalty": {"X": 1}, "home": "JP"}
    with pytest.raises(InstanceError, match="missing required key 'demand'"):
        instance_from_dict(inst)
    inst2 = {"schema": 1, "name": "x", "periods": [1], "elements": ["X"],
             "shortage_penalty": {"X": 1}, "home": "JP", "demand": {"X": 1},
             "sources": [{"id": "s", "mined_in": "AU", "refined_in": "AU", "mode": "spot",
                          "entitlement": {"A": 1.0},
                          "supply": {"X": {"capacity": 1, "price": 1}}}]}
    with pytest.raises(InstanceError, match="no `buyers`"):
        instance_from_dict(inst2)


def test_cli_refuses_bad_buyers_with_exit_2(tmp_path: Path) -> None:
    import subprocess
    import sys

    inst = two_buyers()
    inst["sources"][0]["entitlement"] = {"A": 1.5}
    path = write_instance(tmp_path, inst)
    proc = subprocess.run([sys.executable, "-m", "model.cli", "solve", str(path), "--out",
                           str(tmp_path / "out")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "sources[0].entitlement.A" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_an_unknown_coalition_member_is_refused() -> None:
    with pytest.raises(UsageError, match="unknown buyer"):
        solve_instance(instance_from_dict(two_buyers()), buyers=["A", "Z"])
