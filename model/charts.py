"""Charts (matplotlib, PNG) of runs, comparisons and sweeps.

Each function takes plain tables and a path; none reads model objects.
Labels come from the user (instance name, currency, scenario ids, policy
names) and are drawn literally: no mathtext (a `$` in a name would be parsed
as TeX and can fail), no LaTeX, control characters shown escaped.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Callable, TypeVar

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state

from .safety import printable

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


def _label(text: Any) -> str:
    return printable(text)


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
    ax.set_xticks(x, [_label(i) for i in shares.index])
    return bottom


@_literal_text
def allocation_by_country(deliveries: pd.DataFrame, balance: pd.DataFrame, path: Path,
                          title: str = "") -> Path:
    """Expected supply by country as a share of expected demand, per element and stage.

    The grey segment is expected shortage; bars may pass 1 where stock is built.
    """
    d = deliveries.assign(expected_t=deliveries.delivered_t * deliveries.probability)
    b = balance.assign(demand=balance.demand_t * balance.probability,
                       short=balance.shortage_t * balance.probability)
    order = list(dict.fromkeys(balance.element))
    demand = b.groupby("element")["demand"].sum().reindex(order)
    short = b.groupby("element")["short"].sum().reindex(order)
    per_demand = demand.replace(0, np.nan)
    # fixed margins instead of a tight layout: that would lay the figure out twice
    fig = Figure(figsize=(11, 4.4))
    fig.subplots_adjust(left=0.06, right=0.99, top=0.86, bottom=0.24, wspace=0.08)
    axes = fig.subplots(1, 2, sharey=True)
    top = 0.0
    for ax, (stage, col) in zip(axes, (("mining", "mined_in"), ("refining", "refined_in"))):
        tab = d.groupby(["element", col])["expected_t"].sum().unstack(fill_value=0.0) \
            .reindex(order).fillna(0.0)
        share = tab.div(per_demand, axis=0).fillna(0.0)
        share = share[share.sum().sort_values(ascending=False).index]
        bottom = _stacked_bars(ax, share, np.zeros(len(order)))
        unmet = (short / per_demand).fillna(0.0).rename("shortage").to_frame()
        bottom = _stacked_bars(ax, unmet, bottom, colors=["lightgrey"], hatch="//")
        top = max(top, float(bottom.max()) if len(bottom) else 0.0)
        ax.axhline(0.65, color="black", linestyle="--", linewidth=0.8)
        ax.set_title(f"by {stage} country")
        ax.legend(fontsize=8, ncol=5, loc="upper center", bbox_to_anchor=(0.5, -0.08))
    axes[0].set_ylabel("share of expected demand")
    axes[0].set_ylim(0, max(1.0, top) * 1.05)
    fig.suptitle((_label(title) + ": " if title else "") +
                 "expected supply by country; dashed line: 65 % CRMA benchmark")
    return _save(fig, path)


@_literal_text
def cost_and_shortage_by_scenario(scenarios: pd.DataFrame, path: Path,
                                  currency: str = "USD") -> Path:
    """Discounted cost and total shortage of each scenario.

    Up to 30 scenarios: a bar per scenario with its cost parts. More: the
    scenarios ranked by cost, with the cumulative probability on the x axis
    (a distribution, which stays readable for thousands of scenarios).
    """
    fig = Figure(figsize=(11, 4.2))
    few = len(scenarios) <= 30
    fig.subplots_adjust(left=0.07, right=0.99, top=0.92, bottom=0.3 if few else 0.13,
                        wspace=0.22)   # fixed: a tight layout would draw the figure twice
    ax1, ax2 = fig.subplots(1, 2)
    if few:
        labels = [f"{_label(s)}\n(p={p:.2g})"
                  for s, p in zip(scenarios.scenario, scenarios.probability)]
        parts = ["reservation_cost", "delivery_cost", "holding_cost", "shortage_cost"]
        bottom = np.zeros(len(scenarios))
        for part in parts:
            ax1.bar(labels, scenarios[part] / 1e6, bottom=bottom, label=part.replace("_", " "))
            bottom += scenarios[part].to_numpy() / 1e6
        ax1.legend(fontsize=8)
        ax2.bar(labels, scenarios.shortage_t, color="tab:red")
        for ax in (ax1, ax2):
            ax.tick_params(axis="x", labelrotation=45, labelsize=7)
    else:
        for ax, col, scale, color in ((ax1, "cost", 1e6, "tab:blue"),
                                      (ax2, "shortage_t", 1.0, "tab:red")):
            ranked = scenarios.sort_values(col)
            cum = ranked.probability.cumsum().to_numpy()
            ax.step(cum, ranked[col].to_numpy() / scale, where="post", color=color)
            ax.set_xlabel(f"cumulative probability ({len(scenarios)} scenarios ranked)")
    ax1.set_ylabel(f"cost, million {_label(currency)} (discounted)")
    ax1.set_title("cost per scenario")
    ax2.set_ylabel("shortage, t (all elements and periods)")
    ax2.set_title("shortage per scenario")
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
    axes[0].plot(x, ok.expected_cost / 1e6, marker="o", color="tab:blue")
    axes[0].set_ylabel(f"expected cost, million {_label(currency)}")
    axes[0].set_title("expected cost (discounted)", fontsize=9)
    axes[1].plot(x, ok.expected_shortage_t, marker="s", color="tab:red", label="expected")
    axes[1].plot(x, ok.worst_shortage_t, marker="^", linestyle=":", color="tab:red",
                 label="worst scenario")
    axes[1].set_ylabel("shortage, t (all elements and periods)")
    axes[1].set_title("shortage", fontsize=9)
    axes[1].legend(fontsize=8)
    if sizes:
        for i, c in enumerate(sizes):
            axes[2].plot(x, ok[c], marker="o", color=f"C{i % 10}", label=c[5:-1])
        axes[2].set_ylabel("expected size built (1 = full size)")
        axes[2].set_title("what is built", fontsize=9)
        axes[2].legend(fontsize=7)
    label = "max single-country share (cap)" if x_col == "cap" else \
        str(table["param"].iloc[0]) if "param" in table.columns and len(table) else "value"
    bad = table[table.expected_cost.isna()]
    for ax in axes:
        ax.set_xlabel(label, fontsize=8)
        if x_col == "cap":
            ax.invert_xaxis()
        for v in pd.to_numeric(bad[x_col], errors="coerce").dropna():
            ax.axvline(v, color="grey", linestyle=":", linewidth=1)
    fig.suptitle(("Cost and shortage against the cap" if x_col == "cap" else
                  f"What-if: {label}") + (" (grey: infeasible or not solved)" if len(bad)
                                          else ""), fontsize=10)
    return _save(fig, path)


@_literal_text
def comparison(table: pd.DataFrame, path: Path, currency: str = "USD") -> Path:
    """Expected cost, CVaR and expected shortage per policy."""
    ok = table[table.status == "optimal"]
    fig = Figure(figsize=(11, 4.2), layout="tight")
    ax1, ax2 = fig.subplots(1, 2)
    x = np.arange(len(ok))
    ax1.bar(x - 0.2, ok.expected_cost / 1e6, width=0.4, label="expected cost")
    ax1.bar(x + 0.2, ok.cvar / 1e6, width=0.4, label="CVaR")
    names = [_label(p) for p in ok.policy]
    ax1.set_xticks(x, names, rotation=30, fontsize=8)
    ax1.set_ylabel(f"million {_label(currency)}")
    ax1.legend(fontsize=8)
    ax1.set_title("cost per policy")
    ax2.bar(x - 0.2, ok.expected_shortage_t, width=0.4, color="tab:red",
            label="expected shortage")
    ax2.bar(x + 0.2, ok.worst_shortage_t, width=0.4, color="tab:orange",
            label="worst-scenario shortage")
    ax2.set_xticks(x, names, rotation=30, fontsize=8)
    ax2.set_ylabel("t")
    ax2.legend(fontsize=8)
    ax2.set_title("shortage per policy")
    return _save(fig, path)


@_literal_text
def information_tree(tree: pd.DataFrame, path: Path, title: str = "") -> Path:
    """The information tree: a column per period, a dot per node (size ~ probability),
    a line to its parent; leaves name their scenarios when there are few.

    Scenarios on one branch cannot be told apart yet: every decision of that
    period is the same for them (``information: history``).
    """
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
    fig = Figure(figsize=(min(12, 2 + 1.3 * len(periods)), min(9, 1.5 + 0.32 * n_leaves)))
    ax = fig.subplots()
    from matplotlib.collections import LineCollection

    segs = [[(xpos[parent[n]], y[parent[n]]), (xpos[n], y[n])] for n in nodes if parent[n]]
    ax.add_collection(LineCollection(segs, colors="grey", linewidths=0.8))
    prob = dict(zip(nodes, tree["probability"].astype(float)))
    ax.scatter([xpos[n] for n in nodes], [y[n] for n in nodes],
               s=[12 + 160 * prob[n] for n in nodes], color="tab:blue", zorder=3)
    if n_leaves <= 40:
        scen = dict(zip(nodes, tree["scenarios"].astype(str)))
        for leaf in leaves:
            text = scen[leaf].replace(";", ", ")
            ax.annotate(text if len(text) <= 60 else text[:57] + "...",
                        (xpos[leaf], y[leaf]), xytext=(6, 0), textcoords="offset points",
                        va="center", fontsize=7)
    labels = ["start" if p == "" else p for p in periods]
    ax.set_xticks(range(len(periods)), labels)
    ax.set_xlim(-0.3, len(periods) - 1 + (1.8 if n_leaves <= 40 else 0.3))
    ax.set_ylim(-0.8, n_leaves - 0.2)
    ax.invert_yaxis()
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.set_title((title + ": " if title else "") + f"information tree, {len(nodes)} nodes "
                 "(dot size: probability); scenarios on one branch share every decision "
                 "of that period", fontsize=9)
    fig.subplots_adjust(left=0.03, right=0.97, top=0.9, bottom=0.08)
    return _save(fig, path)


@_literal_text
def capacity_built(added: pd.DataFrame, path: Path, title: str = "") -> Path:
    """Expected capacity the builds add (and demand they avoid) over time: one panel
    per element, a stacked bar per period, one colour per project."""
    elements = list(dict.fromkeys(added["element"]))
    periods = list(dict.fromkeys(sorted(added["period"], key=str)))
    fig = Figure(figsize=(min(12, 3 + 3.2 * max(1, len(elements))), 4.2))
    fig.subplots_adjust(left=0.07, right=0.99, top=0.84, bottom=0.28, wspace=0.25)
    axes = np.atleast_1d(fig.subplots(1, max(1, len(elements))))
    projects = list(dict.fromkeys(added["project"]))
    for ax, e in zip(axes, elements):
        tab = added[added.element == e].pivot_table(index="period", columns="project",
                                                    values="expected_t", aggfunc="sum")
        tab = tab.reindex(index=periods, columns=projects).fillna(0.0)
        tab.index = [str(p) for p in tab.index]
        _stacked_bars(ax, tab, np.zeros(len(tab)),
                      colors=[f"C{projects.index(p) % 10}" for p in tab.columns])
        ax.set_ylim(0, max(1e-9, float(tab.sum(axis=1).max())) * 1.1)
        ax.set_title(str(e), fontsize=9)
        ax.set_ylabel("t/period (expected)")
        ax.tick_params(axis="x", labelrotation=45, labelsize=7)
    axes[0].legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=4)
    fig.suptitle((title + ": " if title else "") + "capacity added (and demand avoided) "
                 "by the builds, expected over scenarios", fontsize=9)
    return _save(fig, path)
