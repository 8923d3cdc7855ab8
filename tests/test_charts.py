"""Charts people can read: fixed colours, nothing cut at the edge, no second y axis,
differences from the baseline with outliers that do not flatten the rest.

Each chart is drawn from small hand-made tables; the figure is caught where it is
saved (charts._save) and measured with matplotlib's own layout engine.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

from model.output import charts
from model.output.formatting import key_scenarios
from model.output.palette import COUNTRY_COLORS, SHORTAGE_COLOR, country_color, source_color

LONG_SCENARIO = "a-forty-character-scenario-id-0123456789"      # 40 characters
LONG_POLICY = "cap-china-and-malaysia-refining-at-thirty-five-percent-in-every-scenario"
LONG_TITLE = "japan-magnets-2026-2032-with-a-rather-long-instance-name / " + LONG_POLICY


def _drawn(monkeypatch: pytest.MonkeyPatch, draw: Callable[[Path], Any],
           tmp_path: Path) -> Figure:
    """Run `draw` and return the figure it saved (also written to tmp_path)."""
    caught: list[Figure] = []
    real = charts._save

    def keep(fig: Figure, path: Path) -> Path:
        caught.append(fig)
        return real(fig, path)

    monkeypatch.setattr(charts, "_save", keep)
    draw(tmp_path / "chart.png")
    assert len(caught) == 1 and (tmp_path / "chart.png").stat().st_size > 0
    return caught[0]


def _assert_fits(fig: Figure) -> None:
    """Every drawn text, legend and axis lies inside the figure: nothing is clipped."""
    canvas = FigureCanvasAgg(fig)
    renderer = canvas.get_renderer()
    fig.draw(renderer)
    box = fig.get_tightbbox(renderer)       # inches, as bbox_inches="tight" would crop
    w, h = fig.get_size_inches()
    tol = 0.02
    assert box.x0 >= -tol and box.y0 >= -tol, (box, (w, h))
    assert box.x1 <= w + tol and box.y1 <= h + tol, (box, (w, h))


def _assert_no_second_y_axis(fig: Figure) -> None:
    """A twin axis sits exactly on top of another one; no chart has one."""
    spots = [tuple(np.round(ax.get_position().bounds, 4)) for ax in fig.axes]
    assert len(spots) == len(set(spots)), spots


# --------------------------------------------------------------------------- data
def _deliveries(countries: dict[str, tuple[str, str, float]]) -> tuple[pd.DataFrame,
                                                                       pd.DataFrame]:
    """One scenario; source -> (mined_in, refined_in, tonnes of Nd)."""
    rows = [{"scenario": "s", "probability": 1.0, "source": k, "mined_in": m,
             "refined_in": r, "element": "Nd", "period": "2026", "delivered_t": t}
            for k, (m, r, t) in countries.items()]
    total = sum(t for _, _, t in countries.values())
    balance = pd.DataFrame([{"scenario": "s", "probability": 1.0, "element": "Nd",
                             "period": "2026", "demand_t": total + 10.0, "shortage_t": 10.0}])
    return pd.DataFrame(rows), balance


def _colours(fig: Figure) -> list[dict[str, str]]:
    """Per axes: series label -> face colour of its stacked bars."""
    return [{c.get_label(): to_hex(c.get_facecolor()[0]) for c in ax.collections
             if isinstance(c, PolyCollection)} for ax in fig.axes]


def _comparison_table(scenarios: list[str], cost_pa: list[float],
                      extra_short: list[float], names: list[str] | None = None
                      ) -> pd.DataFrame:
    n = len(cost_pa)
    t = pd.DataFrame({"policy": names or [f"p{i}" for i in range(n)],
                      "status": ["optimal"] * n,
                      "expected_cost": [1e10 + 7 * c for c in cost_pa],
                      "cvar": [1.5e10] * n,
                      "expected_shortage_t": [100.0 + s for s in extra_short],
                      "worst_shortage_t": [900.0 + 2 * s for s in extra_short]})
    for j, w in enumerate(scenarios):
        t[f"shortage_t[{w}]"] = [10.0 * j + s for s in extra_short]
    t["delta_expected_cost_per_period"] = cost_pa
    t["avoided_expected_shortage_t"] = [-s for s in extra_short]
    t["avoided_worst_shortage_t"] = [-2 * s for s in extra_short]
    for w in scenarios:
        t[f"avoided_shortage_t[{w}]"] = [-s for s in extra_short]
    return t


# --------------------------------------------------------------------------- palette
def test_country_colours_are_fixed_and_distinct() -> None:
    assert country_color("CN") == COUNTRY_COLORS["CN"] == "#d62728"
    assert len(set(COUNTRY_COLORS.values())) == len(COUNTRY_COLORS)
    assert SHORTAGE_COLOR not in COUNTRY_COLORS.values()
    other = [country_color(c) for c in ("ZZ", "QX", "XK", "AQ")]
    assert len(set(other)) == len(other)
    assert all(c.startswith("#") and len(c) == 7 for c in other)


def test_hashed_colours_do_not_depend_on_the_process(tmp_path: Path) -> None:
    """Python's str hash is salted per process; the palette must not use it."""
    code = ("from model.output.palette import country_color, source_color;"
            "print(country_color('ZZ'), source_color('mine-1', 'AU'), source_color('x'))")
    outs = set()
    for seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        outs.add(subprocess.run([sys.executable, "-c", code], env=env, check=True,
                                capture_output=True, text=True).stdout)
    assert len(outs) == 1
    assert outs.pop().split() == [country_color("ZZ"), source_color("mine-1", "AU"),
                                  source_color("x")]


def test_a_source_colour_is_a_shade_of_its_country() -> None:
    import colorsys

    def hue(c: str) -> float:
        return colorsys.rgb_to_hls(*(int(c[i:i + 2], 16) / 255 for i in (1, 3, 5)))[0]

    for k in ("lynas-jare-ndpr", "iluka-eneabba", "mt-weld-2"):
        d = abs(hue(source_color(k, "AU")) - hue(country_color("AU")))
        assert min(d, 1 - d) <= 0.04 + 1e-9
    assert source_color("a", "AU") != source_color("b", "AU")


# --------------------------------------------------------------------------- supply chart
def test_a_country_keeps_its_colour_in_both_panels_and_across_runs(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """AU is large at mining and small at refining in one run, the other way round in
    the next: its colour (and China's) is the same everywhere, and the stacks are
    in the same order in both panels."""
    first = _deliveries({"a": ("AU", "MY", 500.0), "b": ("CN", "CN", 100.0),
                         "c": ("US", "AU", 50.0)})
    second = _deliveries({"a": ("CN", "CN", 900.0), "b": ("AU", "FR", 10.0),
                          "c": ("ZZ", "AU", 300.0)})
    seen: dict[str, set[str]] = {}
    for deliveries, balance in (first, second):
        fig = _drawn(monkeypatch, lambda p: charts.allocation_by_country(
            deliveries, balance, p, "t"), tmp_path)
        panels = _colours(fig)
        assert list(panels[0]) == list(panels[1])      # one order in both panels
        for panel in panels:
            for label, colour in panel.items():
                seen.setdefault(label, set()).add(colour)
    assert seen["AU"] == {country_color("AU")} and seen["CN"] == {country_color("CN")}
    assert seen["shortage"] == {to_hex(SHORTAGE_COLOR)}
    assert all(len(c) == 1 for c in seen.values()), seen


# --------------------------------------------------------------------------- readable
def _tree() -> pd.DataFrame:
    return pd.DataFrame({"node": ["root", "2026.1", "2026.2"], "period": ["", "2026", "2026"],
                         "parent": ["", "root", "root"], "probability": [1.0, 0.5, 0.5],
                         "scenarios": [f"normal;{LONG_SCENARIO}", "normal", LONG_SCENARIO],
                         "n_scenarios": [2, 1, 1]})


def _scenarios() -> pd.DataFrame:
    names = ["normal", LONG_SCENARIO, "jp-ban-2026", "reimposition-2027"]
    return pd.DataFrame({"scenario": names, "probability": [0.4, 0.2, 0.2, 0.2],
                         "reservation_cost": [5e8] * 4, "delivery_cost": [8e9] * 4,
                         "holding_cost": [0.0] * 4, "shortage_cost": [1e9, 2e9, 7e9, 3e9],
                         "cost": [9.5e9, 1.05e10, 1.55e10, 1.15e10],
                         "shortage_t": [200.0, 300.0, 900.0, 400.0]})


def _frontier() -> pd.DataFrame:
    return pd.DataFrame({"param": ["projects[a-very-long-project-id-for-the-grain-boundary-"
                                   "diffusion-conversion].cost"] * 3,
                         "value": [0.0, 1e8, 2e8], "status": ["optimal"] * 3,
                         "expected_cost": [9.4e9, 9.5e9, 9.6e9],
                         "expected_shortage_t": [139.0, 139.0, 140.0],
                         "worst_shortage_t": [927.7] * 3,
                         f"size[{LONG_POLICY}]": [1.0, 0.5, 0.0],
                         "size[lofdal]": [0.0, 0.0, 0.2]})


def _one_at_a_time() -> pd.DataFrame:
    """robustness.csv of two inputs and two policies (the second with a long name)."""
    return pd.DataFrame({
        "label": ["scenarios.a-forty-character-scenario-id-0123456789.probability",
                  "Tb shortage penalty"],
        "low": [0.05, 5e6], "high": [0.3, 4e7],
        "delta_expected_cost_low": [-3.7e8, -2.5e8], "delta_expected_cost_high": [1.1e9, 3.3e8],
        f"delta_cost_base[{LONG_POLICY}]": [2.78e8, 2.78e8],
        f"delta_cost_low[{LONG_POLICY}]": [2.77e8, 2.775e8],
        f"delta_cost_high[{LONG_POLICY}]": [2.8e8, 2.79e8]})


CHARTS: dict[str, Callable[[Path], Any]] = {
    "tornado": lambda p: charts.tornado(_one_at_a_time(), p, "USD", ["none", LONG_POLICY]),
    "allocation_by_country": lambda p: charts.allocation_by_country(
        *_deliveries({LONG_POLICY: ("AU", "MY", 500.0), "b": ("CN", "CN", 100.0),
                      "c": ("ZZ", "QQ", 50.0)}), p, LONG_TITLE),
    "scenarios": lambda p: charts.cost_and_shortage_by_scenario(
        _scenarios(), p, "US$ (2026 prices, million-dollar units)"),
    "frontier": lambda p: charts.frontier(_frontier(), p, "USD"),
    "comparison": lambda p: charts.comparison(_comparison_table(
        ["normal", LONG_SCENARIO, "jp-ban-2026"], [0.0, 2.4e8, 1.9e9, 7e6],
        [0.0, 191.0, 3350.0, 0.2], ["none", LONG_POLICY, "no-china-refining", "x"]),
        p, "USD", "year"),
    "tree": lambda p: charts.information_tree(_tree(), p, LONG_TITLE),
    "regimes": lambda p: charts.regimes(*_regimes(), p, LONG_TITLE),
    "projects": lambda p: charts.capacity_built(pd.DataFrame({
        "element": ["Dy", "Dy", "Tb"], "period": [2028, 2029, 2028],
        "project": [LONG_POLICY, "lofdal", "lofdal"], "expected_t": [60.0, 200.0, 12.5]}),
        p, LONG_TITLE, ["lofdal", LONG_POLICY]),
}


def _regimes() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Three regimes (one with a long name) over seven years: P(regime) and the
    probability-weighted shortage by regime."""
    years = [str(y) for y in range(2026, 2033)]
    names = ["normal", "squeeze", "a-ban-on-every-heavy-rare-earth-for-japanese-buyers"]
    prob = pd.DataFrame({"regime": names, **{y: [0.7 - 0.03 * i, 0.2 + 0.02 * i, 0.1 + 0.01 * i]
                                             for i, y in enumerate(years)}})
    short = pd.DataFrame({"regime": names, **{y: [0.0, 20.0 - 2 * i, 80.0 - 10 * i]
                                              for i, y in enumerate(years)}})
    return prob, short


def test_the_regimes_chart_stacks_each_regime_in_its_colour(monkeypatch: pytest.MonkeyPatch,
                                                           tmp_path: Path) -> None:
    """One collection per regime and panel, in the colour of its place in `states`;
    the probability bars reach 1 and the shortage bars the period's total."""
    from model.output.palette import regime_color

    prob, short = _regimes()
    fig = _drawn(monkeypatch, lambda p: charts.regimes(prob, short, p), tmp_path)
    left, right = fig.axes
    for ax, table in ((left, prob), (right, short)):
        polys = [c for c in ax.collections if isinstance(c, PolyCollection)]
        assert [to_hex(c.get_facecolor()[0]) for c in polys] == \
            [to_hex(regime_color(i)) for i in range(3)]
        tops = polys[-1].get_paths()
        totals = table.drop(columns="regime").sum().to_numpy()
        assert [p.vertices[:, 1].max() for p in tops] == pytest.approx(totals)


@pytest.mark.parametrize("name", sorted(CHARTS))
def test_long_names_are_not_cut_and_no_chart_has_two_y_axes(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str) -> None:
    fig = _drawn(monkeypatch, CHARTS[name], tmp_path)
    _assert_fits(fig)
    _assert_no_second_y_axis(fig)
    texts = [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text"))]
    assert any("\u2026" in t for t in texts) or name in ("frontier",), \
        "a long name should have been shortened"


def test_a_forty_character_scenario_id_keeps_both_ends(monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path) -> None:
    fig = _drawn(monkeypatch, CHARTS["scenarios"], tmp_path)
    ticks = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    long = [t for t in ticks if "\u2026" in t]
    assert len(long) == 1
    first_line = long[0].split("\n")[0]
    assert first_line.startswith("a-forty-ch") and first_line.endswith("456789")
    assert len(first_line) == 24


def _colours_used(fig: Figure) -> set[str]:
    out: set[str] = set()
    for ax in fig.axes:
        out |= {to_hex(p.get_facecolor()) for p in ax.patches}
        out |= {to_hex(c) for coll in ax.collections for c in coll.get_facecolor()}
        out |= {to_hex(line.get_color()) for line in ax.lines}
    return out


@pytest.mark.parametrize("name", sorted(set(CHARTS) - {"allocation_by_country"}))
def test_only_china_is_red(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                           name: str) -> None:
    """Charts without countries use none of the countries' fixed colours."""
    fig = _drawn(monkeypatch, CHARTS[name], tmp_path)
    assert not _colours_used(fig) & {to_hex(c) for c in COUNTRY_COLORS.values()}


# --------------------------------------------------------------------------- comparison
def test_robust_limit_clips_only_outliers() -> None:
    assert charts.robust_limit([0.0, 10.0, 12.0, 9.0]) is None
    assert charts.robust_limit([0.0, 240.0, 520.0, 16.0, 1932.0 * 2]) == pytest.approx(
        charts.OUTLIER_ROOM * 520.0)
    assert charts.robust_limit([0.0, 5.0]) is None               # nothing to compare with
    assert charts.robust_limit([0.0, 0.0, 0.0]) is None
    # more outliers than a third of the bars: they are the data, not outliers
    assert charts.robust_limit([1.0, 100.0, 100.0, 100.0]) is None


def test_comparison_shows_differences_and_an_outlier_does_not_flatten_the_rest(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cost_pa = [0.0, 2.39e8, 1.58e7, 5.2e8, 4.15e8, 7.3e6, 6.3e6, 2.0e10]   # last: 38x
    table = _comparison_table(["normal", "jp-ban-2026"], cost_pa,
                              [0.0, 191.2, 0.0, 403.6, 403.5, 0.2, 0.0, 3350.6])
    fig = _drawn(monkeypatch, lambda p: charts.comparison(table, p, "USD", "year"), tmp_path)
    cost_ax, short_ax, grid_ax = fig.axes
    # bars are the differences (the baseline's is 0), in million USD per year
    widths = [round(p.get_width(), 6) for p in cost_ax.patches]
    assert widths[0] == 0 and widths[1] == pytest.approx(239.0)
    # the outlier clips the axis near the largest of the rest, and carries its value
    lo, hi = cost_ax.get_xlim()
    assert 520 < hi < 0.05 * 20000
    assert widths[-1] < hi and widths[-1] == pytest.approx(charts.OUTLIER_ROOM * 520.0)
    labels = [t.get_text() for t in cost_ax.texts]
    assert any(t.startswith("+20,000.0") for t in labels), labels
    assert "clipped" in cost_ax.get_xlabel()
    # shortage: + is more shortage than the baseline; the grid has one column per scenario
    assert [round(p.get_width(), 1) for p in short_ax.patches][:4] == [0.0, 191.2, 0.0, 403.6]
    assert [t.get_text() for t in grid_ax.get_xticklabels()] == ["normal", "jp-ban-2026"]
    _assert_fits(fig)


def test_comparison_without_an_optimal_baseline_shows_totals(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    table = _comparison_table(["normal"], [0.0, 1e8], [0.0, 5.0])
    table = table[[c for c in table.columns if "delta" not in c and "avoided" not in c]]
    table.loc[0, "status"] = "infeasible"
    fig = _drawn(monkeypatch, lambda p: charts.comparison(table, p, "USD"), tmp_path)
    assert "totals" in fig.get_suptitle()
    assert any("not optimal" in t.get_text() for t in fig.axes[0].texts)
    _assert_fits(fig)


def test_key_scenarios_are_all_or_the_worst_for_the_baseline() -> None:
    few = _comparison_table(["a", "b"], [0.0], [0.0])
    assert key_scenarios(few) == ["a", "b"]
    many = pd.DataFrame({"policy": ["base"], **{f"shortage_t[s{i}]": [float(i % 5)]
                                                 for i in range(12)}})
    # the largest: s4 and s9 (4 t), then s3 before s8 (3 t, a tie: the first); table order
    assert key_scenarios(many, 3) == ["s3", "s4", "s9"]


def _big_tree(branching: tuple[int, ...] = (4, 4, 4, 4, 4)) -> pd.DataFrame:
    """A tree of 1 + 4 + 16 + 64 + 256 + 1,024 = 1,365 nodes, uneven probabilities."""
    rows = [("root", "", "", 1.0)]
    level = [("root", 1.0)]
    rng = np.random.default_rng(3)
    for t, k in zip(range(2026, 2026 + len(branching)), branching):
        nxt = []
        for parent, p in level:
            split = rng.random(k)
            for share in split / split.sum():
                node = f"{t}.{len(nxt) + 1}"
                nxt.append((node, p * share))
                rows.append((node, str(t), parent, p * share))
        level = nxt
    node, period, parent, prob = zip(*rows)
    return pd.DataFrame({"node": node, "period": period, "parent": parent,
                         "probability": prob, "scenarios": "w", "n_scenarios": 1})


def test_a_large_tree_is_drawn_by_period(monkeypatch: pytest.MonkeyPatch,
                                         tmp_path: Path) -> None:
    """Beyond TREE_MAX_DRAWN nodes, tree.png shows nodes per period and how the
    probability splits, not a dot per node; it fits and its numbers are the tree's."""
    tree = _big_tree()
    assert len(tree) == 1365 > charts.TREE_MAX_DRAWN
    fig = _drawn(monkeypatch, lambda p: charts.information_tree(tree, p, LONG_TITLE), tmp_path)
    _assert_fits(fig)
    _assert_no_second_y_axis(fig)
    left, right = fig.axes
    # no scatter of 1,365 dots and no 1,364 parent lines: the aggregate mode
    assert not any(len(c.get_offsets()) > 10 for ax in fig.axes for c in ax.collections)
    counts = [round(p.get_height()) for p in left.patches]
    assert counts == [1, 4, 16, 64, 256, 1024]
    labels = {t.get_text() for t in left.texts}
    assert "1,024" in labels and "256" in labels
    # each period's bar is its nodes' probabilities stacked: they add up to 1
    tops = {}
    for p in right.patches:
        x = round(p.get_x() + p.get_width() / 2)
        tops[x] = max(tops.get(x, 0.0), p.get_y() + p.get_height())
    assert len(right.patches) == 1365
    assert all(abs(v - 1.0) < 1e-9 for v in tops.values()) and len(tops) == 6
    assert "by period" in fig.get_suptitle()


def test_a_small_tree_keeps_a_dot_per_node(monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    tree = _big_tree((3, 3))                      # 13 nodes
    fig = _drawn(monkeypatch, lambda p: charts.information_tree(tree, p), tmp_path)
    dots = [c for c in fig.axes[0].collections if len(c.get_offsets()) == len(tree)]
    assert len(fig.axes) == 1 and len(dots) == 1
