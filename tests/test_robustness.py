"""How sure are we (issue 25): `sourcing robustness` on instances with known answers.

The two-source hedge (tests/conftest.py, hedge_instance): Dy 10 t in one period, CN spot
at 100/t, an AU contract of up to 5 t at 300/t with a 10 % reservation fee (30/t,
paid whatever happens), shortage at 1,000/t, and a ban on CN with probability p (the
normal scenario has 1 - p). Contracting x t of AU costs 30x always and saves
(1,000 - 300) x = 700x in the ban, so

    E[C](x) = 30x + (1 - p) 1,000 + p (10,000 - 700x) = const + x (30 - 700 p):

the contract is worth its fee exactly when p > p* = 30/700 = 3/70 = 0.042857..., full
(5 t) above, none below. At p = 0.01: E = 990 + 100 = 1,090; at p = 0.2: 150 + 800 +
0.2 x 6,500 = 2,250.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import base_instance, contract, hedge_instance, spot, write_instance
from model.errors import InstanceError
from model.input.instance import instance_from_dict, load_instance
from model.input.overrides import apply_override, apply_together
from model.input.ranges import read_ranges
from model.studies.robustness import draw_values, robustness

ROOT = Path(__file__).resolve().parents[1]
P_STAR = 3 / 70


def _ranges(tmp_path: Path, text: str, name: str = "r.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _hedge(tmp_path: Path, ranges: str) -> tuple:
    loaded = instance_from_dict(hedge_instance())
    return loaded, read_ranges(_ranges(tmp_path, ranges), loaded)


BAN = "- {path: scenarios.ban.probability, low: 0.01, high: 0.2}\n"


def test_the_switch_point_of_the_hedge_is_the_derived_probability(tmp_path: Path) -> None:
    """The contract moves from 0 to 5 t at p* = 3/70, found within the bisection's
    resolution (1e-3 of the range); the ends cost what the docstring derives."""
    loaded, ranges = _hedge(tmp_path, BAN)
    res = robustness(loaded, ranges, ["none"], draws=0)
    oat = res.one_at_a_time.iloc[0]
    assert oat["expected_cost_low"] == pytest.approx(1090.0)
    assert oat["expected_cost_high"] == pytest.approx(2250.0)
    assert oat["cost_swing"] == pytest.approx(1160.0)
    switch = res.switch_points[res.switch_points["decision"] == "tonnes[au]"]
    assert len(switch) == 1
    row = switch.iloc[0]
    width = 1e-3 * (0.2 - 0.01)
    assert row["lo"] <= P_STAR <= row["hi"] and row["hi"] - row["lo"] <= width
    assert abs(row["at"] - P_STAR) <= width
    assert row["value_below"] == pytest.approx(0.0) and row["value_above"] == pytest.approx(5.0)
    assert row["as_planned"] == "above" and row["kind"] == "jump"
    # the instance's own p = 0.2 contracts 5 t: the plan's conclusion, and what flips it
    c = res.conclusions.set_index("conclusion").loc["tonnes[au]"]
    assert c["plan"] == "5 t"
    assert c["flipped_by"].startswith("holds for scenarios.ban.probability >= 0.04")


def test_warm_re_solves_give_the_cold_answers(tmp_path: Path) -> None:
    """Every variant solved warm (one kept model, changes handed over) has the same
    costs and decisions as solved cold (HiGHS warm starts have had bugs)."""
    loaded, ranges = _hedge(tmp_path, BAN + "- {path: shortage_penalty.default, low: 400, "
                                            "high: 2000}\n")
    warm = robustness(loaded, ranges, ["none"], draws=6, seed=3)
    cold = robustness(loaded, ranges, ["none"], draws=6, seed=3, warm=False)
    assert warm.timing["warm_solves"] > 0 and cold.timing["warm_solves"] == 0
    for col in ("expected_cost_low", "expected_cost_high"):
        np.testing.assert_allclose(warm.one_at_a_time[col], cold.one_at_a_time[col],
                                   rtol=1e-9)
    np.testing.assert_allclose(warm.draws["expected_cost"], cold.draws["expected_cost"],
                               rtol=1e-9)
    np.testing.assert_allclose(warm.draws["tonnes[au]"], cold.draws["tonnes[au]"], atol=1e-6)
    assert warm.switch_points["at"].tolist() == pytest.approx(cold.switch_points["at"].tolist())


def test_a_fractional_relaxation_is_solved_by_branch_and_bound(tmp_path: Path) -> None:
    """An all-or-nothing mine of 20 t/period where 10 t are needed: its LP relaxation
    builds half of it; the warm session then solves the MIP, and its costs equal
    `solve`'s (test_investment's mine: built for a cost of 5,000, not for 15,000)."""
    from model.api import solve_instance
    from test_investment import mine_instance

    inst = mine_instance(capacity={"Dy": 20}, integer=True)
    loaded = instance_from_dict(inst)
    ranges = read_ranges(_ranges(tmp_path, "- {path: 'projects[au-mine].cost', low: 2000, "
                                           "high: 15000}\n"), loaded)
    res = robustness(loaded, ranges, ["none"], draws=4, seed=1)
    assert res.timing["branch_and_bound_solves"] > 0
    for _, r in res.draws.iterrows():
        cold = solve_instance(instance_from_dict({**inst, "projects": [
            {**inst["projects"][0], "cost": r["projects[au-mine].cost"]}]}))
        assert r["expected_cost"] == pytest.approx(cold.summary["expected_cost"], rel=1e-9)
        assert r["size[au-mine]"] in (pytest.approx(0.0), pytest.approx(1.0))


def test_draws_are_reproducible_by_seed(tmp_path: Path) -> None:
    loaded, ranges = _hedge(tmp_path, BAN + "- {path: shortage_penalty.default, low: 400, "
                                            "high: 2000, dist: triangular, mode: 1000}\n")
    a = robustness(loaded, ranges, ["none"], draws=5, seed=7, switch_points=False)
    b = robustness(loaded, ranges, ["none"], draws=5, seed=7, switch_points=False)
    c = robustness(loaded, ranges, ["none"], draws=5, seed=8, switch_points=False)
    cols = ["scenarios.ban.probability", "shortage_penalty.default", "expected_cost",
            "tonnes[au]"]
    assert a.draws[cols].equals(b.draws[cols])
    assert not np.allclose(a.draws[cols[0]], c.draws[cols[0]])
    # the first n draws of a longer run are the draws of a shorter one
    np.testing.assert_array_equal(draw_values(ranges.inputs, 3, 7), draw_values(
        ranges.inputs, 8, 7)[:3])
    x = draw_values(ranges.inputs, 400, 0)
    assert (x[:, 0] >= 0.01).all() and (x[:, 0] <= 0.2).all()
    # triangular(400, 1000, 2000): F(1000) = 0.375, so the median is 2000 - sqrt(0.5 x
    # 1,600 x 1,000) = 1,105.6
    assert abs(np.median(x[:, 1]) - (2000 - (0.5 * 1600 * 1000) ** 0.5)) < 60


def test_a_conclusion_that_holds_in_every_draw_is_reported_as_such(tmp_path: Path) -> None:
    """With p from 0.1 to 0.3 (all above p*) the contract is 5 t in every draw; with p
    from 0.01 to 0.2 it is not, and the report says what flips it."""
    loaded, ranges = _hedge(tmp_path, "- {path: scenarios.ban.probability, low: 0.1, "
                                      "high: 0.3}\n")
    res = robustness(loaded, ranges, ["none"], draws=8, seed=0)
    c = res.conclusions.set_index("conclusion").loc["tonnes[au]"]
    assert c["holds_in_every_draw"] == True and c["holds_share"] == 1.0  # noqa: E712
    assert c["draws"] == 8
    assert c["flipped_by"] == ""
    from model.output.export import robustness_markdown

    text = robustness_markdown(res, "USD")
    holds = text[text.index("Holds in every one of the 8 draws"):text.index("Does not hold")]
    assert "au: 5 t contracted" in holds
    loaded, ranges = _hedge(tmp_path, BAN)
    res = robustness(loaded, ranges, ["none"], draws=40, seed=0)
    c = res.conclusions.set_index("conclusion").loc["tonnes[au]"]
    share = float((res.draws["scenarios.ban.probability"] > P_STAR).mean())
    assert c["holds_in_every_draw"] == False  # noqa: E712
    assert c["holds_share"] == pytest.approx(share)
    assert "scenarios.ban.probability low" in c["draws_failing_with"]


def test_policies_compared_and_their_ranking(tmp_path: Path) -> None:
    """A cap of 50 % on any one country needs 5 t of AU in every scenario: at p = 0.01
    the capped plan costs 150 + 0.99 x (500 + 1,500) + 0.01 x (1,500 + 5,000) = 2,195,
    above none's 1,090."""
    inst = hedge_instance()
    inst["policies"] = {"cap": {"max_single_country_share": {"share": 0.5}}}
    loaded = instance_from_dict(inst)
    ranges = read_ranges(_ranges(tmp_path, BAN), loaded)
    res = robustness(loaded, ranges, ["none", "cap"], draws=0)
    row = res.one_at_a_time.iloc[0]
    assert row["cost_low[none]"] == pytest.approx(1090.0)
    assert row["cost_low[cap]"] == pytest.approx(2195.0)
    assert row["delta_cost_low[cap]"] == pytest.approx(2195.0 - 1090.0)
    assert row["ranking_low"] == "none < cap"


def test_ranges_apply_probabilities_together() -> None:
    """Set together, two scenario probabilities keep their values and the third takes
    what is left; one after the other, the second rescales the first."""
    data = {"scenarios": [{"id": "a", "probability": 0.5}, {"id": "b", "probability": 0.3},
                          {"id": "c", "probability": 0.2}]}
    out = apply_together(data, [("scenarios.a.probability", 0.6),
                                ("scenarios.b.probability", 0.3)])
    assert [s["probability"] for s in out["scenarios"]] == pytest.approx([0.6, 0.3, 0.1])
    seq = apply_override(apply_override(data, "scenarios.a.probability", 0.6),
                         "scenarios.b.probability", 0.3)
    # a = 0.6 scales b, c to 0.24, 0.16; then b = 0.3 scales a and c by 0.7 / 0.76
    assert seq["scenarios"][0]["probability"] == pytest.approx(0.6 * 0.7 / 0.76)
    assert sum(s["probability"] for s in seq["scenarios"]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="sum to 1.2"):
        apply_together(data, [("scenarios.a.probability", 0.7),
                              ("scenarios.b.probability", 0.5)])


@pytest.mark.parametrize("text, place, message", [
    ("- {path: shortage_penalty.Xx, low: 1, high: 2}\n", "[0].path", "unknown element 'Xx'"),
    ("- {path: scenarios.nope.probability, low: 0.1, high: 0.2}\n", "[0].path",
     "no item with id 'nope'"),
    ("- {path: shortage_penalty.default, low: 1}\n- {path: demand.Dy, low: 3, high: 2}\n",
     "[0]", "missing required key 'high'"),
    ("ranges:\n  - {path: demand.Dy, low: 3, high: 2}\n", "ranges[0].low",
     "low (3) is above high (2)"),
    ("- {path: demand.Dy, low: 1, high: 2, dist: normal}\n", "[0].dist",
     "must be 'uniform', 'triangular' or 'lognormal'"),
    ("- {path: demand.Dy, low: 1, high: 2, dist: triangular}\n", "[0].mode",
     "dist: triangular needs `mode`"),
    ("- {path: demand.Dy, low: 1, high: 2, dist: lognormal, median: 5, sigma: 1}\n",
     "[0].median", "must be positive and lie in [low, high]"),
    ("- {path: scenarios.ban.probability, low: 0.1, high: 1.5}\n", "[0].high",
     "must be at most 1"),
    ("- {path: demand.Dy, low: 1, high: 2}\n- {path: demand.Dy, low: 1, high: 3}\n",
     "[1].path", "already varied by entry [0]"),
    ("- {group: g, paths: [demand.Dy, 'sources[au].supply.Dy.capacity'], low: -1, "
     "high: 2}\n", "[0].low", "factors"),
])
def test_ranges_file_errors_name_file_place_and_what(tmp_path: Path, text: str, place: str,
                                                     message: str) -> None:
    loaded = instance_from_dict(hedge_instance())
    path = _ranges(tmp_path, text)
    with pytest.raises(InstanceError) as err:
        read_ranges(path, loaded)
    assert err.value.file == str(path) and err.value.place == place, str(err.value)
    assert message in err.value.message and err.value.line is not None


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "model.cli", *args], capture_output=True,
                          text=True)


def test_cli_refuses_a_bad_ranges_file_and_writes_nothing(tmp_path: Path) -> None:
    inst = write_instance(tmp_path, hedge_instance())
    bad = _ranges(tmp_path, "- {path: scenarios.ban.probability, low: 0.3, high: 0.1}\n")
    proc = _cli("robustness", str(inst), "--ranges", str(bad), "--out", str(tmp_path / "o"))
    assert proc.returncode == 2, proc.stderr
    assert f"{bad}:1: [0].low: low (0.3) is above high (0.1)" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "o").exists()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`sourcing robustness` on the hedge with a 50 % cap compared: 6 draws."""
    tmp = tmp_path_factory.mktemp("robustness")
    inst = hedge_instance()
    inst["policies"] = {"cap": {"max_single_country_share": {"share": 0.5}}}
    path = write_instance(tmp, inst)
    ranges = _ranges(tmp, BAN + "- {path: shortage_penalty.default, low: 400, high: 2000, "
                               "label: shortage penalty, note: an estimate}\n")
    out = tmp / "how-sure"
    proc = _cli("robustness", str(path), "--ranges", str(ranges), "-p", "none", "-p", "cap",
                "--draws", "6", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    (tmp / "stdout.txt").write_text(proc.stdout)
    return out


def test_cli_writes_the_folder_whole_and_its_report(folder: Path, tmp_path: Path) -> None:
    from model.input.folders import ROBUSTNESS_FILES

    assert {p.name for p in folder.iterdir()} == ROBUSTNESS_FILES
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["kind"] == "robustness" and summary["draws"] == 6
    assert summary["policies"] == ["none", "cap"]
    assert set(summary["files"]) == ROBUSTNESS_FILES - {"summary.json"}
    assert (folder / "ranges.yaml").read_bytes() == (folder.parent / "r.yaml").read_bytes()
    stdout = (folder.parent / "stdout.txt").read_text()
    assert "not in every draw: au: 5 t contracted" in stdout
    html = (folder / "report.html").read_text()
    assert html.index("Holds in every one of the 6 draws") < html.index("Does not hold") \
        < html.index('data-chart="tornado.png"')
    assert "none is the cheapest policy" in html[:html.index("Does not hold")]
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    again = _cli("robustness", str(folder.parent / "inst.yaml"), "--ranges",
                 str(folder.parent / "r.yaml"), "--draws", "2", "--no-switch-points",
                 "--out", str(copy), "--force")
    assert again.returncode == 0, again.stderr
    assert json.loads((copy / "summary.json").read_text())["draws"] == 2
    refused = _cli("verify", str(copy))
    assert refused.returncode == 2 and "robustness folder" in refused.stderr


@pytest.mark.parametrize("width", [1400, 800])
def test_the_report_fits_the_window_and_shows_its_tables(folder: Path, tmp_path: Path,
                                                         width: int) -> None:
    """Readable at 1400 and 800 px: the page never wider than the window (wide tables
    scroll in their own box), every table filled, the tornado decoded."""
    import re

    from test_report import _dom, _overflow

    page = folder / "report.html"
    scroll, client, inner = _overflow(page, tmp_path, width)
    assert inner == width and scroll <= client, (scroll, client)
    dom = _dom(page, tmp_path / f"profile-{width}", width)
    for table_id in ("fails", "draws-money", "one-at-a-time", "switch-points", "ranges"):
        assert re.search(rf'<table[^>]*id="{table_id}"[^>]*>.*?<td', dom, re.S), table_id
    assert re.search(r'<ul id="holds">\s*<li>', dom)
    assert len(re.findall(r'<img[^>]*data-ok="1"', dom)) == 1


def test_the_japan_ranges_file_reads_and_every_range_has_a_note() -> None:
    loaded = load_instance(ROOT / "instances" / "japan_2026.yaml")
    ranges = read_ranges(ROOT / "instances" / "japan_2026.ranges.yaml", loaded)
    assert 10 <= len(ranges.inputs) <= 20
    for inp in ranges.inputs:
        assert any(w in inp.note for w in ("sourced", "derived", "estimate")), inp.name


def test_sweep_cap_writes_project_sizes() -> None:
    """A cap of 50 % on any country with CN at 10/t and an AU mine (cost 300, 100 t)
    that is worth building only when CN may supply at most half: not built at cap 1,
    built at cap 0.5 (50 t from AU at 20/t instead of 50 t short at 1,000/t)."""
    from model.studies.sweep import sweep_cap

    inst = base_instance(
        sources=[spot("cn", "CN", {"Nd": {"capacity": 1000, "price": 10}}),
                 contract("au", "AU", {"Nd": {"capacity": 0, "price": 20}})],
        projects=[{"id": "au-mine", "source": "au", "capacity": {"Nd": 100}, "cost": 300,
                   "build_time": 0, "decide": {"from": 2026, "until": 2026}}])
    frontier = sweep_cap(instance_from_dict(inst), [1.0, 0.5])
    assert frontier["size[au-mine]"].tolist() == pytest.approx([0.0, 0.5])
    cold = sweep_cap(instance_from_dict(inst), [1.0, 0.5], warm=False)
    assert cold["size[au-mine]"].tolist() == pytest.approx([0.0, 0.5])


def test_no_layer_below_imports_the_studies() -> None:
    """input, formulation, solve, analysis and output never import model.studies."""
    for layer in ("input", "formulation", "solve", "analysis", "output"):
        for path in (ROOT / "model" / layer).glob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                assert not any("studies" in n for n in names), path


def test_the_control_character_scan_agrees_with_the_per_character_rule() -> None:
    """has_control (one regular expression) accepts exactly the characters is_control
    accepts, on every code point; with `lines`, all but a tab and a line feed."""
    from model.safety import has_control, is_control

    for c in range(sys.maxunicode + 1):
        ch = chr(c)
        assert has_control(ch) == is_control(ch), hex(c)
        assert has_control(ch, lines=True) == (is_control(ch) and ch not in "\n\t"), hex(c)
    assert has_control("a\x1b[31mb") and not has_control("plain text, é, 日本")


COMMITTED = ROOT / "results" / "reference" / "robustness"


@pytest.mark.parametrize("width", [1400, 800])
def test_the_committed_japan_study_reads_conclusions_first(tmp_path: Path, width: int) -> None:
    """results/reference/robustness (issue 25's reference): its report renders at 1400 and
    800 px with the conclusions first, and its files are the ones it recorded."""
    import re

    from model.analysis.verify import file_problems
    from model.input.folders import read_summary
    from test_report import _dom, _overflow

    summary = read_summary(COMMITTED)
    assert summary["kind"] == "robustness" and summary["not_optimal"] == 0
    assert file_problems(COMMITTED, summary) == []
    # made from today's instance and ranges (regenerate it when they change:
    # results/README.md has the command)
    import hashlib

    for name, key in (("japan_2026.yaml", "instance_sha256"),
                      ("japan_2026.ranges.yaml", "ranges_sha256")):
        digest = hashlib.sha256((ROOT / "instances" / name).read_bytes()).hexdigest()
        assert summary[key] == digest, f"results/reference/robustness is not of today's {name}"
    page = COMMITTED / "report.html"
    scroll, client, inner = _overflow(page, tmp_path, width)
    assert inner == width and scroll <= client, (scroll, client)
    dom = _dom(page, tmp_path / f"profile-{width}", width)
    holds = dom.index('<ul id="holds">')
    assert holds < dom.index('id="fails"') < dom.index('id="one-at-a-time"')
    assert re.search(r'<ul id="holds">\s*<li>', dom)
    assert len(re.findall(r'<img[^>]*data-ok="1"', dom)) == 1
