"""Charts (matplotlib, PNG) of runs, comparisons and sweeps.

Each function takes plain tables and a path; none reads model objects.
Labels come from the user (instance name, currency, scenario ids, policy
names) and are drawn literally: no mathtext (a `$` in a name would be parsed
as TeX and can fail), no LaTeX, control characters shown escaped. Long names
are shortened with an ellipsis in the middle (both ends of an id tell ids
apart) and titles wrapped, so nothing is cut at the figure's edge
(tests/test_charts.py measures every chart). Countries, sources and projects
keep one colour everywhere (model.output.palette). No chart has a second y axis.
"""

from __future__ import annotations

import functools
import textwrap
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter

from .formatting import key_scenarios
from .palette import (
    CASH_COLOR,
    COST_COLOR,
    COST_PART_COLORS,
    PENALTY_COLOR,
    SHORTAGE_COLOR,
    SHORTAGE_DARK,
    SHORTAGE_LIGHT,
    country_color,
    country_order,
    project_color,
    regime_color,
)
from ..safety import printable

DPI = 110
F = TypeVar("F", bound=Callable[..., Path])


def _literal_text(fn: F) -> F:
    """Draw and save with every Text literal (rcParams are read when a Text is made,
    tick labels included, so the whole drawing runs inside the context)."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Path:
        with matplotlib.rc_context({"text.parse_math": False, "text.usetex": False}):
            return fn(*args, **kwargs)
    return wrapper  # type: ignore[return-value]


def _label(text: Any, limit: int | None = None) -> str:
    """User text for a chart: control characters escaped; longer than `limit`
    characters, cut in the middle with an ellipsis."""
    out = printable(text)
    if limit is not None and len(out) > limit:
        head = (limit - 1) // 2
        out = out[:head] + "\u2026" + out[len(out) - (limit - 1 - head):]
    return out


def _title(text: str, width: int = 100, lines: int = 2) -> str:
    """A title wrapped to `width` characters per line, at most `lines` lines."""
    wrapped = textwrap.wrap(text, width, break_long_words=True, break_on_hyphens=True)
    if len(wrapped) > lines:
        wrapped = wrapped[:lines]
        wrapped[-1] = wrapped[-1][:width - 1] + "\u2026"
    return "\n".join(wrapped)


def _compact(v: float, _pos: Any = None) -> str:
    """An axis tick without an offset or e-notation: 1.5 bn, 150 m, 15 k, 0.25."""
    a = abs(v)
    for scale, unit in ((1e9, " bn"), (1e6, " m"), (1e3, " k")):
        if a >= scale:
            return f"{v / scale:,.3g}{unit}"
    return f"{v:.3g}"


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=DPI)
    return path


def _stacked_bars(ax: Any, shares: pd.DataFrame, bottom: np.ndarray, width: float = 0.8,
                  **style: Any) -> np.ndarray:
    """Stacked bars, one collection per column (one draw call per series, not per bar).

    ``shares`` has one row per bar (in x order) and one column per series;
    returns the new tops. ``ax.bar`` would make a patch per bar, which costs
    about a millisecond each to lay out and draw.
    """
    x = np.arange(len(shares))
    left, right = x - width / 2, x + width / 2
    colors = style.pop("colors", None)
    for i, name in enumerate(shares.columns):
        top = bottom + shares[name].to_numpy(dtype=float)
        verts = np.stack([np.column_stack([left, bottom]), np.column_stack([left, top]),
                          np.column_stack([right, top]), np.column_stack([right, bottom])],
                         axis=1)
        color = colors[i] if colors is not None else f"C{i % 10}"
        ax.add_collection(PolyCollection(verts, facecolors=color, edgecolors="none",
                                         label=_label(name), **style))
        bottom = top
    ax.set_xlim(-0.5 - (1 - width) / 2, len(shares) - 0.5 + (1 - width) / 2)
    ax.set_xticks(x, [_label(i, 16) for i in shares.index])
    return bottom


@_literal_text
def allocation_by_country(deliveries: pd.DataFrame, balance: pd.DataFrame, path: Path,
                          title: str = "") -> Path:
    """Expected supply by country as a share of expected demand, per element and stage.

    Both panels stack the countries in one fixed order with one fixed colour
    each (model.output.palette), the same in every run; one legend serves both. The
    grey segment is expected shortage; bars may pass 1 where stock is built.
    """
    d = deliveries.assign(expected_t=deliveries.delivered_t * deliveries.probability)
    b = balance.assign(demand=balance.demand_t * balance.probability,
                       short=balance.shortage_t * balance.probability)
    order = list(dict.fromkeys(balance.element))
    demand = b.groupby("element")["demand"].sum().reindex(order)
    short = b.groupby("element")["short"].sum().reindex(order)
    per_demand = demand.replace(0, np.nan)
    stages = (("mining", "mined_in"), ("refining", "refined_in"))
    supplied = d[d.expected_t > 0]
    countries = country_order([str(c) for col in ("mined_in", "refined_in")
                               for c in supplied[col].unique()])
    # fixed margins instead of a tight layout: that would lay the figure out twice
    rows = (len(countries) + 1 + 9) // 10           # legend rows, 10 entries each
    fig = Figure(figsize=(11, 4.4 + 0.2 * rows))
    fig.subplots_adjust(left=0.07, right=0.99, top=0.86, bottom=0.12 + 0.05 * rows,
                        wspace=0.08)
    axes = fig.subplots(1, 2, sharey=True)
    top = 0.0
    for ax, (stage, col) in zip(axes, stages):
        tab = d.groupby(["element", col])["expected_t"].sum().unstack(fill_value=0.0)
        tab.columns = [str(c) for c in tab.columns]
        tab = tab.reindex(index=order, columns=countries).fillna(0.0)
        share = tab.div(per_demand, axis=0).fillna(0.0)
        bottom = _stacked_bars(ax, share, np.zeros(len(order)),
                               colors=[country_color(c) for c in countries])
        unmet = (short / per_demand).fillna(0.0).rename("shortage").to_frame()
        bottom = _stacked_bars(ax, unmet, bottom, colors=[SHORTAGE_COLOR], hatch="//")
        top = max(top, float(bottom.max()) if len(bottom) else 0.0)
        ax.axhline(0.65, color="black", linestyle="--", linewidth=0.8)
        ax.set_title(f"by {stage} country", fontsize=10)
    axes[0].set_ylabel("share of expected demand")
    axes[0].set_ylim(0, max(1.0, top) * 1.05)
    handles = [Patch(facecolor=country_color(c), label=_label(c, 12)) for c in countries]
    handles.append(Patch(facecolor=SHORTAGE_COLOR, hatch="//", label="shortage"))
    fig.legend(handles=handles, loc="lower center", ncol=min(10, len(handles)), fontsize=8,
               frameon=False, bbox_to_anchor=(0.5, 0.01))
    fig.suptitle(_title((_label(title, 120) + ": " if title else "") +
                        "expected supply by country; dashed line: 65 % CRMA benchmark", 110),
                 fontsize=11)
    return _save(fig, path)


@_literal_text
def cost_and_shortage_by_scenario(scenarios: pd.DataFrame, path: Path,
                                  currency: str = "USD") -> Path:
    """Discounted cost and total shortage of each scenario.

    Up to 30 scenarios: a bar per scenario with its cost parts, the scenario
    ids (cut to 24 characters with a middle ellipsis) rotated under the bars.
    More: the scenarios ranked by cost, with the cumulative probability on
    the x axis (a distribution, which stays readable for thousands of scenarios).
    """
    fig = Figure(figsize=(11, 4.4))
    few = len(scenarios) <= 30
    fig.subplots_adjust(left=0.08, right=0.99, top=0.92, bottom=0.33 if few else 0.13,
                        wspace=0.22)   # fixed: a tight layout would draw the figure twice
    ax1, ax2 = fig.subplots(1, 2)
    if few:
        labels = [f"{_label(s, 24)}\n(p={p:.2g})"
                  for s, p in zip(scenarios.scenario, scenarios.probability)]
        x = np.arange(len(scenarios))
        parts = ["reservation_cost", "delivery_cost", "holding_cost", "shortage_cost"]
        bottom = np.zeros(len(scenarios))
        for part in parts:
            ax1.bar(x, scenarios[part] / 1e6, bottom=bottom, label=part.replace("_", " "),
                    color=COST_PART_COLORS[part], hatch="//" if part == "shortage_cost" else None)
            bottom += scenarios[part].to_numpy() / 1e6
        ax1.legend(fontsize=8)
        ax2.bar(x, scenarios.shortage_t, color=SHORTAGE_DARK)
        for ax in (ax1, ax2):
            # anchored at the tick and right-aligned: a rotated label ends under its bar
            ax.set_xticks(x, labels, rotation=45, ha="right", rotation_mode="anchor",
                          fontsize=7)
    else:
        for ax, col, scale, color in ((ax1, "cost", 1e6, COST_COLOR),
                                      (ax2, "shortage_t", 1.0, SHORTAGE_DARK)):
            ranked = scenarios.sort_values(col)
            cum = ranked.probability.cumsum().to_numpy()
            ax.step(cum, ranked[col].to_numpy() / scale, where="post", color=color)
            ax.set_xlabel(f"cumulative probability ({len(scenarios)} scenarios ranked)")
    ax1.set_ylabel(f"million {_label(currency, 12)}, discounted")
    ax1.set_title("cost per scenario", fontsize=10)
    ax2.set_ylabel("t, all elements and periods")
    ax2.set_title("shortage per scenario", fontsize=10)
    return _save(fig, path)


@_literal_text
def regimes(probability: pd.DataFrame, weighted_shortage: pd.DataFrame, path: Path,
            title: str = "") -> Path:
    """Scenarios generated from regimes, by period: the probability of each regime
    (left, stacked to 1) and the expected shortage split by the regime of the period
    (right: each segment is the probability-weighted shortage of the scenarios in that
    regime then, all elements summed; a bar is the period's expected shortage).

    Both tables have a ``regime`` column and one column per period (model.output.
    scenario_summary: ``regime_probability`` and ``by_regime_grid``); a regime keeps
    the colour of its place in the instance's `states`. Stacked bars are drawn as one
    collection per regime, whatever the number of scenarios behind them.
    """
    names = [str(r) for r in probability["regime"]]
    periods = [str(c) for c in probability.columns if c != "regime"]
    colors = [regime_color(i) for i in range(len(names))]
    width = min(13.0, 5.0 + 1.0 * len(periods))
    rows = (len(names) + 5) // 6
    fig = Figure(figsize=(width, 4.4 + 0.2 * rows))
    fig.subplots_adjust(left=0.75 / width, right=1 - 0.2 / width, wspace=0.28, top=0.85,
                        bottom=0.13 + 0.05 * rows)
    left, right = fig.subplots(1, 2)
    prob = probability.set_index("regime")[periods].T.fillna(0.0)
    prob.index = [_label(p, 12) for p in periods]
    prob.columns = names
    _stacked_bars(left, prob, np.zeros(len(periods)), colors=colors)
    left.set_ylim(0, 1.05)
    left.set_ylabel("probability")
    left.set_title("probability of each regime", fontsize=9)
    short = weighted_shortage.set_index("regime").reindex(names)[periods].T.fillna(0.0)
    short.index = prob.index
    top = _stacked_bars(right, short, np.zeros(len(periods)), colors=colors)
    right.set_ylim(0, max(1e-9, float(top.max()) if len(top) else 0.0) * 1.12)
    for i, v in enumerate(top):
        right.annotate(f"{v:,.1f}", (i, v), xytext=(0, 2), textcoords="offset points",
                       ha="center", va="bottom", fontsize=7)
    right.set_ylabel("t, all elements summed (expected)")
    right.set_title("expected shortage by the regime of the period", fontsize=9)
    for ax in (left, right):
        ax.tick_params(axis="x", labelrotation=40 if len(periods) > 8 else 0, labelsize=8)
        for side in ("right", "top"):
            ax.spines[side].set_visible(False)
    handles = [Patch(facecolor=c, label=_label(n, 24)) for n, c in zip(names, colors)]
    fig.legend(handles=handles, loc="lower center", ncol=min(6, len(handles)), fontsize=8,
               frameon=False, bbox_to_anchor=(0.5, 0.01))
    fig.suptitle(_title((_label(title, 80) + ": " if title else "") + "regimes by period: "
                        "how likely each is, and the shortage expected in it", 110),
                 fontsize=10)
    return _save(fig, path)


@_literal_text
def frontier(table: pd.DataFrame, path: Path, currency: str = "USD") -> Path:
    """Expected cost and shortage against the swept value (the cap, or any input with
    --param): side-by-side panels, no second axis; a third panel shows the expected
    size of each project when the instance has projects."""
    x_col = "cap" if "cap" in table.columns else "value"
    ok = table[table.expected_cost.notna()]
    sizes = [c for c in table.columns if c.startswith("size[")]
    panels = 3 if sizes else 2
    fig = Figure(figsize=(4.6 * panels, 4.2))
    fig.subplots_adjust(left=0.08, right=0.98, top=0.86, bottom=0.16, wspace=0.3)
    axes = fig.subplots(1, panels)
    x = pd.to_numeric(ok[x_col], errors="coerce")
    axes[0].plot(x, ok.expected_cost / 1e6, marker="o", color=COST_COLOR)
    axes[0].set_ylabel(f"expected cost, million {_label(currency, 12)}")
    axes[0].set_title("expected cost (discounted)", fontsize=9)
    axes[1].plot(x, ok.expected_shortage_t, marker="s", color=SHORTAGE_DARK, label="expected")
    axes[1].plot(x, ok.worst_shortage_t, marker="^", linestyle=":", color=SHORTAGE_DARK,
                 label="worst scenario")
    axes[1].set_ylabel("shortage, t (all elements and periods)")
    axes[1].set_title("shortage", fontsize=9)
    axes[1].legend(fontsize=8)
    if sizes:
        for i, c in enumerate(sizes):
            axes[2].plot(x, ok[c], marker="o", color=project_color(i),
                         label=_label(c[5:-1], 28))
        axes[2].set_ylabel("expected size built (1 = full size)")
        axes[2].set_title("what is built", fontsize=9)
        axes[2].legend(fontsize=7)
    label = "max single-country share (cap)" if x_col == "cap" else \
        _label(table["param"].iloc[0], 60) if "param" in table.columns and len(table) \
        else "value"
    bad = table[table.expected_cost.isna()]
    for ax in axes:
        ax.set_xlabel(label, fontsize=8)
        ax.xaxis.set_major_formatter(FuncFormatter(_compact))   # never a "1e8" offset
        if x_col == "cap":
            ax.invert_xaxis()
        for v in pd.to_numeric(bad[x_col], errors="coerce").dropna():
            ax.axvline(v, color="grey", linestyle=":", linewidth=1)
    fig.suptitle(_title(("Cost and shortage against the cap" if x_col == "cap" else
                         f"What-if: {label}") + (" (grey: infeasible or not solved)"
                                                 if len(bad) else ""), 90), fontsize=10)
    return _save(fig, path)


OUTLIER_RATIO = 3.0   # a bar this many times the next largest is an outlier ...
OUTLIER_ROOM = 1.3    # ... and the axis then ends 30 % beyond the largest of the rest


def robust_limit(values: Sequence[float], ratio: float = OUTLIER_RATIO) -> float | None:
    """Where to clip a bar axis so that outliers do not flatten the rest, or None.

    The magnitudes sorted, a0 >= a1 >= ...: the first k (at most a third of the
    bars, at least one) with a[k-1] > ratio * a[k] > 0 makes a0..a[k-1]
    outliers; the axis then ends at OUTLIER_ROOM * a[k] and the clipped bars
    carry their values (docs/outputs.md, comparison.png).
    """
    mags = sorted((abs(float(v)) for v in values if np.isfinite(v)), reverse=True)
    for k in range(1, max(1, len(mags) // 3) + 1):
        if k < len(mags) and mags[k] > 0 and mags[k - 1] > ratio * mags[k]:
            return OUTLIER_ROOM * mags[k]
    return None


def _fmt_delta(v: float, decimals: int = 1) -> str:
    return f"{v:+,.{decimals}f}" if round(v, decimals) != 0 else "0"


def _delta_bars(ax: Any, series: list[tuple[np.ndarray, str, str]], n: int,
                unit: str) -> None:
    """Grouped horizontal bars, one group per policy (top to bottom), each bar
    labelled with its value; an axis clipped by :func:`robust_limit` shows its
    clipped bars' values inside them, with an arrow to the side they go on."""
    every = np.concatenate([v for v, _, _ in series]) if series else np.zeros(0)
    finite = every[np.isfinite(every)]
    lim = robust_limit(finite)
    lo = min(0.0, float(finite.min())) if len(finite) else 0.0
    hi = max(0.0, float(finite.max())) if len(finite) else 1.0
    if lim is not None:
        lo, hi = max(lo, -lim), min(hi, lim)
    span = (hi - lo) or 1.0
    height = 0.8 / max(1, len(series))
    for j, (values, label, color) in enumerate(series):
        y = np.arange(n) - 0.4 + height * (j + 0.5)
        shown = np.clip(np.nan_to_num(values), lo, hi)
        ax.barh(y, shown, height=height * 0.92, color=color, label=label)
        for yi, v, w in zip(y, values, shown):
            if not np.isfinite(v):
                continue
            if v != w:     # clipped: the true value inside the bar, at its clipped end
                arrow = "\u25b6" if v > 0 else "\u25c0"
                text = f"{_fmt_delta(v)} {arrow}" if v > 0 else f"{arrow} {_fmt_delta(v)}"
                ax.text(w - np.sign(v) * 0.01 * span, yi, text, va="center",
                        ha="right" if v > 0 else "left", fontsize=7, color="white",
                        fontweight="bold")
            else:          # a zero in grey: the same as the baseline, said quietly
                ax.text(w + (0.01 if v >= 0 else -0.01) * span, yi, _fmt_delta(v),
                        va="center", ha="left" if v >= 0 else "right", fontsize=7,
                        color="black" if _fmt_delta(v) != "0" else "grey")
    # room for the value labels on both sides
    ax.set_xlim(lo - (0.22 * span if lo < 0 else 0.02 * span), hi + 0.22 * span)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel(unit + ("\naxis clipped: true values on the bars" if lim else ""),
                  fontsize=8)
    ax.tick_params(axis="x", labelsize=8)
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)


@_literal_text
def comparison(table: pd.DataFrame, path: Path, currency: str = "USD",
               per: str = "period") -> Path:
    """Each policy against the baseline (the first policy): the change in expected
    cost per period, in expected and worst-scenario shortage, and in the
    shortage of each named scenario (a table of numbers coloured by size).

    One horizontal bar group per policy, names on the left (no rotated or
    clipped labels); an outlier policy clips its axis (:func:`robust_limit`)
    instead of flattening the others. Without deltas (the baseline is not
    optimal) the totals are shown instead, and the title says so.
    """
    names = [_label(p, 28) for p in table.policy]
    if len(names):
        names[0] += " (baseline)"
    n = len(table)
    ok = (table.status == "optimal").to_numpy()

    def col(name: str, scale: float = 1.0, sign: float = 1.0) -> np.ndarray:
        if name not in table.columns:
            return np.full(n, np.nan)
        return sign * pd.to_numeric(table[name], errors="coerce").to_numpy(float) / scale

    deltas = "delta_expected_cost_per_period" in table.columns
    cur = _label(currency, 12)
    if deltas:
        cost = [(col("delta_expected_cost_per_period", 1e6), "expected cost", COST_COLOR)]
        for extra, label, color in (("delta_cash_per_year", "money spent", CASH_COLOR),
                                    ("delta_penalty_per_year", "shortage penalty",
                                     PENALTY_COLOR)):
            if extra in table.columns:       # cost by year, when the comparison has it
                cost.append((col(extra, 1e6), label, color))
        short = [(col("avoided_expected_shortage_t", sign=-1.0), "expected", SHORTAGE_DARK),
                 (col("avoided_worst_shortage_t", sign=-1.0), "worst scenario",
                  SHORTAGE_LIGHT)]
        titles = (f"change in expected cost per {per}", "change in shortage")
        units = (f"million {cur} per {per}, discounted",
                 "t, all elements and periods\n+: more shortage")
    else:
        cost = [(col("expected_cost", 1e6), "expected cost", COST_COLOR)]
        short = [(col("expected_shortage_t"), "expected", SHORTAGE_DARK),
                 (col("worst_shortage_t"), "worst scenario", SHORTAGE_LIGHT)]
        titles = ("expected cost (discounted)", "shortage")
        units = (f"million {cur}", "t, all elements and periods")
    scen = key_scenarios(table)
    grid = np.column_stack([col(f"avoided_shortage_t[{s}]", sign=-1.0) if deltas
                            else col(f"shortage_t[{s}]") for s in scen]) \
        if scen else np.zeros((n, 0))
    longest = max((len(x) for x in names), default=8)
    left_in = 0.35 + 0.068 * longest
    panel_in = [3.6, 3.6] + ([max(3.0, 0.62 * len(scen) + 0.4)] if scen else [])
    width = left_in + sum(panel_in) + 0.45 * len(panel_in) + 0.3
    height = 2.3 + 0.36 * max(n, 2)
    fig = Figure(figsize=(width, height))
    x0 = left_in / width
    fig.subplots_adjust(left=x0, right=1 - 0.3 / width, top=1 - 0.75 / height,
                        bottom=(1.25 if scen else 0.75) / height, wspace=0.45 * len(panel_in)
                        / sum(panel_in))
    axes = fig.subplots(1, len(panel_in), sharey=True,
                        gridspec_kw={"width_ratios": panel_in})
    for ax, series, title, unit in zip(axes, (cost, short), titles, units):
        _delta_bars(ax, [(np.where(ok, v, np.nan), lab, c) for v, lab, c in series], n, unit)
        ax.set_title(title, fontsize=10)
        if len(series) > 1:
            ax.legend(fontsize=7, loc="lower right", framealpha=0.9)
    axes[0].set_yticks(np.arange(n), names, fontsize=9)
    axes[0].set_ylim(n - 0.5, -0.5)
    for i in np.flatnonzero(~ok):
        axes[0].text(0.02, i, f"not optimal: {_label(table.status.iloc[i], 20)}",
                     transform=axes[0].get_yaxis_transform(), va="center", fontsize=7,
                     color="grey")
    if scen:
        ax = axes[2]
        finite = grid[np.isfinite(grid)]
        lim = robust_limit(finite) or (float(np.abs(finite).max()) if len(finite) else 0.0)
        lim = lim or 1.0
        ax.imshow(np.where(np.isfinite(grid), grid, 0.0), aspect="auto",
                  cmap="RdBu_r" if deltas else "Reds", vmin=-lim if deltas else 0.0,
                  vmax=lim, extent=(-0.5, len(scen) - 0.5, n - 0.5, -0.5))
        for i in range(n):
            for j in range(len(scen)):
                v = grid[i, j]
                text = "" if not np.isfinite(v) else (_fmt_delta(v) if deltas else f"{v:,.1f}")
                ax.text(j, i, text, ha="center", va="center", fontsize=7,
                        color="white" if np.isfinite(v) and abs(v) > 0.6 * lim else "black")
        ax.set_xticks(np.arange(len(scen)), [_label(s, 18) for s in scen], rotation=40,
                      ha="right", rotation_mode="anchor", fontsize=8)
        ax.set_xlim(-0.5, len(scen) - 0.5)
        ax.set_title("change in shortage per scenario, t" if deltas else
                     "shortage per scenario, t", fontsize=10)
    head = "Policies against the baseline" if deltas else \
        "Policies (the baseline is not optimal: totals, not differences)"
    fig.suptitle(head, fontsize=11, x=0.5)
    return _save(fig, path)


@_literal_text
def information_tree(tree: pd.DataFrame, path: Path, title: str = "") -> Path:
    """The information tree: a column per period, a dot per node (size ~ probability),
    a line to its parent; leaves name their scenarios when there are few.

    Scenarios on one branch cannot be told apart yet: every decision of that
    period is the same for them (``information: history``). A tree of more than
    :data:`TREE_MAX_DRAWN` nodes is drawn by period instead (:func:`_tree_by_period`):
    dots and lines by the thousand would be a grey smear.
    """
    if len(tree) > TREE_MAX_DRAWN:
        return _tree_by_period(tree, path, title)
    nodes = tree["node"].astype(str).tolist()
    parent = dict(zip(nodes, tree["parent"].astype(str)))
    kids: dict[str, list[str]] = {}
    for n in nodes:
        if parent[n]:
            kids.setdefault(parent[n], []).append(n)
    periods = list(dict.fromkeys(tree["period"].astype(str)))     # "" (root) first
    xpos = {n: periods.index(p) for n, p in zip(nodes, tree["period"].astype(str))}
    y: dict[str, float] = {}
    leaves: list[str] = []

    def place(n: str) -> float:             # leaves in depth-first order, parents centred
        if n not in kids:
            y[n] = float(len(leaves))
            leaves.append(n)
        else:
            y[n] = float(np.mean([place(c) for c in kids[n]]))
        return y[n]

    for root in (n for n in nodes if not parent[n]):   # depth = number of periods
        place(root)
    n_leaves = max(1, len(leaves))
    scen = dict(zip(nodes, tree["scenarios"].astype(str)))
    names = {leaf: _label(scen[leaf].replace(";", ", "), 60) for leaf in leaves} \
        if n_leaves <= 40 else {}
    # the leaves' names go in a right margin sized to the longest (7 pt: ~0.055 in a char)
    names_in = 0.2 + 0.055 * max((len(t) for t in names.values()), default=0)
    width = min(12.0, 2 + 1.3 * len(periods)) + names_in
    height = min(9.0, 1.5 + 0.32 * n_leaves)
    fig = Figure(figsize=(width, height))
    ax = fig.subplots()
    from matplotlib.collections import LineCollection

    segs = [[(xpos[parent[n]], y[parent[n]]), (xpos[n], y[n])] for n in nodes if parent[n]]
    ax.add_collection(LineCollection(segs, colors="grey", linewidths=0.8))
    prob = dict(zip(nodes, tree["probability"].astype(float)))
    ax.scatter([xpos[n] for n in nodes], [y[n] for n in nodes],
               s=[12 + 160 * prob[n] for n in nodes], color=COST_COLOR, zorder=3)
    for leaf, text in names.items():
        ax.annotate(text, (xpos[leaf], y[leaf]), xytext=(6, 0), textcoords="offset points",
                    va="center", fontsize=7, annotation_clip=False)
    labels = ["start" if p == "" else p for p in periods]
    ax.set_xticks(range(len(periods)), labels)
    ax.set_xlim(-0.3, len(periods) - 1 + 0.3)
    ax.set_ylim(-0.8, n_leaves - 0.2)
    ax.invert_yaxis()
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    head = _title((_label(title, 80) + ": " if title else "") +
                  f"information tree, {len(nodes)} nodes (dot size: probability); scenarios "
                  "on one branch share every decision of that period", int(width * 11), 3)
    lines = head.count("\n") + 1
    fig.suptitle(head, fontsize=9)
    fig.subplots_adjust(left=0.3 / width, right=1 - names_in / width,
                        top=1 - (0.15 + 0.18 * lines) / height, bottom=0.35 / height)
    return _save(fig, path)


TREE_MAX_DRAWN = 300      # nodes; a larger tree is drawn by period


def _tree_by_period(tree: pd.DataFrame, path: Path, title: str = "") -> Path:
    """A large information tree by period: how many nodes each period has (left) and
    how the probability is split among them (right: one bar per period, a segment per
    node, the largest first; the largest node's probability written on top)."""
    period = tree["period"].fillna("").astype(str)
    periods = list(dict.fromkeys(period))               # "" (the root) first
    labels = ["start" if p == "" else _label(p, 12) for p in periods]
    prob = tree["probability"].astype(float).to_numpy()
    counts = [int((period == p).sum()) for p in periods]
    width = min(12.0, 4.5 + 1.1 * len(periods))
    height = 4.6
    fig = Figure(figsize=(width, height))
    left, right = fig.subplots(1, 2)
    x = np.arange(len(periods))
    left.bar(x, counts, color=COST_COLOR, width=0.7)
    for i, n in enumerate(counts):
        left.annotate(f"{n:,}", (i, n), xytext=(0, 2), textcoords="offset points",
                      ha="center", va="bottom", fontsize=7)
    left.set_ylim(0, max(counts) * 1.15)
    left.set_title("nodes per period", fontsize=9)
    left.set_ylabel("nodes")
    tones = ("#4a6fa5", "#9db4d6")                   # alternate: the splits stay visible
    for i, p in enumerate(periods):
        mass = np.sort(prob[(period == p).to_numpy()])[::-1]
        bottom = np.concatenate(([0.0], np.cumsum(mass)[:-1]))
        right.bar(np.full(len(mass), i), mass, bottom=bottom, width=0.7, linewidth=0,
                  color=[tones[j % 2] for j in range(len(mass))])
        right.annotate(f"largest {mass[0]:.2g}" if len(mass) else "", (i, mass.sum()),
                       xytext=(0, 2), textcoords="offset points", ha="center",
                       va="bottom", fontsize=6)
    right.set_ylim(0, 1.12)
    right.set_title("probability of the nodes (one segment each, largest first)",
                    fontsize=9)
    right.set_ylabel("probability")
    for ax in (left, right):
        ax.set_xticks(x, labels, rotation=40 if len(periods) > 8 else 0,
                      ha="right" if len(periods) > 8 else "center", fontsize=8)
        for side in ("right", "top"):
            ax.spines[side].set_visible(False)
    head = _title((_label(title, 80) + ": " if title else "") +
                  f"information tree, {len(tree):,} nodes, by period (too many to draw "
                  "one by one; tree.csv has every node)", int(width * 11), 3)
    lines = head.count("\n") + 1
    fig.suptitle(head, fontsize=9)
    fig.subplots_adjust(left=0.75 / width, right=1 - 0.2 / width, wspace=0.3,
                        top=1 - (0.35 + 0.18 * lines) / height,
                        bottom=(0.9 if len(periods) > 8 else 0.5) / height)
    return _save(fig, path)


@_literal_text
def capacity_built(added: pd.DataFrame, path: Path, title: str = "",
                   projects: Sequence[str] | None = None) -> Path:
    """Expected capacity the builds add (and demand they avoid) over time: one panel
    per element, a stacked bar per period, one colour per project: its place in
    `projects` (the instance's list), so a project keeps its colour in every run
    of the instance, whichever others are built."""
    elements = list(dict.fromkeys(added["element"]))
    periods = list(dict.fromkeys(sorted(added["period"], key=str)))
    fig = Figure(figsize=(min(12, 3 + 3.2 * max(1, len(elements))), 4.2))
    fig.subplots_adjust(left=0.07, right=0.99, top=0.84, bottom=0.28, wspace=0.25)
    axes = np.atleast_1d(fig.subplots(1, max(1, len(elements))))
    built = list(dict.fromkeys(added["project"]))
    projects = list(projects or []) + [p for p in built if p not in (projects or [])]
    shown = [p for p in projects if p in built]
    for ax, e in zip(axes, elements):
        tab = added[added.element == e].pivot_table(index="period", columns="project",
                                                    values="expected_t", aggfunc="sum")
        tab = tab.reindex(index=periods, columns=shown).fillna(0.0)
        tab.index = [str(p) for p in tab.index]
        _stacked_bars(ax, tab, np.zeros(len(tab)),
                      colors=[project_color(projects.index(p)) for p in tab.columns])
        ax.set_ylim(0, max(1e-9, float(tab.sum(axis=1).max())) * 1.1)
        ax.set_title(_label(e, 24), fontsize=9)
        ax.set_ylabel("t/period (expected)")
        ax.tick_params(axis="x", labelrotation=45, labelsize=7)
    handles = [Patch(facecolor=project_color(projects.index(p)), label=_label(p, 28))
               for p in shown]
    fig.legend(handles=handles, loc="lower center", ncol=min(4, max(1, len(handles))),
               fontsize=7, frameon=False, bbox_to_anchor=(0.5, 0.01))
    fig.suptitle(_title((_label(title, 80) + ": " if title else "") + "capacity added (and "
                        "demand avoided) by the builds, expected over scenarios", 110),
                 fontsize=9)
    return _save(fig, path)


TORNADO_POLICIES = 3       # the plan's cost and at most two other policies' costs against it


@_literal_text
def tornado(table: pd.DataFrame, path: Path, currency: str = "USD",
            policies: Sequence[str] = ("none",)) -> Path:
    """One input at a time (robustness.csv): how far each input, at the low and at the
    high end of its range, moves the plan's expected cost from its value at the
    instance's inputs (the tornado: inputs ranked by swing, the largest on top). With
    several policies, a panel per other policy (at most two) shows its cost against the
    plan's at each end, from that difference at the instance's inputs (the line)."""
    rows = table.reset_index(drop=True)
    n = len(rows)
    plan = policies[0] if policies else "none"
    others = [p for p in list(policies)[1:TORNADO_POLICIES]
              if f"delta_cost_low[{p}]" in rows.columns]
    panels = 1 + len(others)
    height = max(3.0, 1.5 + 0.45 * n)                  # inches: 0.45 per input
    width = 2.8 + 4.2 * panels + 0.3
    fig = Figure(figsize=(width, height))
    fig.subplots_adjust(left=2.8 / width, right=1 - 0.3 / width, top=1 - 0.85 / height,
                        bottom=0.75 / height, wspace=0.12)
    axes = np.atleast_1d(fig.subplots(1, panels, sharey=True))
    y = np.arange(n)[::-1]           # the largest swing on top
    labels = []
    for _, r in rows.iterrows():
        low, high = float(r["low"]), float(r["high"])
        labels.append(f"{_label(r['label'], 40)}\n{_compact(low)} \u2013 {_compact(high)}")
    cur = _label(currency, 12)

    def bars(ax: Any, base: np.ndarray, low: np.ndarray, high: np.ndarray, title: str,
             unit: str) -> None:
        for values, color, name in ((low, "#9ecae1", "input at its low end"),
                                    (high, "#08519c", "input at its high end")):
            width = np.nan_to_num(values - base)
            ax.barh(y, width, left=np.nan_to_num(base), height=0.6, color=color, label=name,
                    alpha=0.9)
        for yi, b in zip(y, base):
            ax.plot([b, b], [yi - 0.4, yi + 0.4], color="black", linewidth=0.9)
        ax.set_title(_title(title, 48), fontsize=9)
        ax.set_xlabel(unit, fontsize=8)
        ax.xaxis.set_major_formatter(FuncFormatter(_compact))
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(axis="x", color="#dddddd", linewidth=0.6)
        ax.set_axisbelow(True)

    def col(name: str) -> np.ndarray:
        return pd.to_numeric(rows[name], errors="coerce").to_numpy(float) / 1e6 \
            if name in rows.columns else np.full(n, np.nan)

    zero = np.zeros(n)
    bars(axes[0], zero, col("delta_expected_cost_low"), col("delta_expected_cost_high"),
         f"plan ({_label(plan, 30)}): expected cost against the instance's inputs",
         f"change in expected cost, million {cur}")
    for ax, p in zip(axes[1:], others):
        base_cost = rows.get(f"delta_cost_base[{p}]")
        base = pd.to_numeric(base_cost, errors="coerce").to_numpy(float) / 1e6 \
            if base_cost is not None else zero
        bars(ax, base, col(f"delta_cost_low[{p}]"), col(f"delta_cost_high[{p}]"),
             f"{_label(p, 30)}: its cost minus the plan's (line: at the instance's inputs)",
             f"million {cur}")
    axes[0].set_yticks(y, labels, fontsize=8)
    axes[0].set_ylim(-0.6, n - 0.4)
    axes[0].legend(fontsize=7, loc="lower right")
    fig.suptitle(_title("How far each input moves the cost, one at a time (largest swing "
                        "on top)", 90), fontsize=10)
    return _save(fig, path)
