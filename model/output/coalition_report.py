"""Several buyers: the charts and the report page of a coalition folder.

A coalition folder (model.studies.coalition) holds ``coalition.csv`` (every
coalition's value), ``allocations.csv`` (who pays what under each rule, and
whether it is in the core) and ``buyers_by_scenario.csv`` (each buyer alone
and in the grand coalition, scenario by scenario). The charts take those
tables; the page reads them back from the folder (never through a link,
every text escaped, as model.output.report).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .charts import DPI, _compact, _label, _literal_text, _save, _title  # noqa: F401
from .palette import SHORTAGE_COLOR, SHORTAGE_LIGHT

RULE_COLORS = {"shapley": "#1f77b4", "nucleolus": "#ff7f0e",
               "dual": "#2ca02c", "proportional": "#9467bd"}
RULE_WORDS = {"shapley": "Shapley", "nucleolus": "nucleolus", "dual": "dual (Owen)",
              "proportional": "proportional to demand (IEA)"}


@_literal_text
def allocation_chart(allocations: pd.DataFrame, path: Path, currency: str = "USD",
                     title: str = "") -> Path:
    """Per buyer: what each rule's share of the grand coalition's cost saves it against
    acting alone (stand-alone cost - allocated cost, millions of currency; below 0 it
    pays more than alone); a rule outside the core is marked in the legend."""
    table = allocations[allocations["buyer"] != ""]
    buyers = list(dict.fromkeys(table["buyer"]))
    rules = list(dict.fromkeys(table["rule"]))
    fig = Figure(figsize=(10, 5.2), dpi=DPI)
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(rules))
    x = np.arange(len(buyers))
    for i, r in enumerate(rules):
        rows = table[table.rule == r].set_index("buyer")
        core = bool(rows["in_core"].iloc[0])
        values = np.array([float(rows.loc[b, "saving"]) for b in buyers]) / 1e6
        ax.bar(x + (i - (len(rules) - 1) / 2) * width, values, width,
               label=_label(RULE_WORDS.get(r, r) + ("" if core else " (not in the core)"), 50),
               color=RULE_COLORS.get(r, "#777"))
    ax.set_xticks(x, [_label(b, 20) for b in buyers])
    ax.axhline(0, color="#444", linewidth=0.8)
    ax.set_ylabel(f"saving against acting alone, m {_label(currency, 8)}")
    ax.yaxis.set_major_formatter(lambda v, _: f"{v:,.0f}")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2,
              frameon=False)
    ax.set_title(_title(f"{title}: what each buyer saves against acting alone, by rule "
                        "(expected, discounted)", 90), fontsize=10)
    fig.subplots_adjust(bottom=0.26)
    return _save(fig, path)


@_literal_text
def shortage_chart(by_scenario: pd.DataFrame, path: Path, title: str = "") -> Path:
    """Per buyer and scenario: shortage alone and in the grand coalition (t, all
    elements summed), one panel per buyer."""
    buyers = list(dict.fromkeys(by_scenario["buyer"]))
    fig = Figure(figsize=(10, 2.6 + 1.9 * len(buyers)), dpi=DPI)
    axes = fig.subplots(len(buyers), 1, squeeze=False)[:, 0]
    for ax, b in zip(axes, buyers):
        rows = by_scenario[by_scenario.buyer == b]
        x = np.arange(len(rows))
        ax.bar(x - 0.2, rows["shortage_alone_t"], 0.4, color=SHORTAGE_COLOR, label="alone")
        ax.bar(x + 0.2, rows["shortage_grand_t"], 0.4, color=SHORTAGE_LIGHT,
               label="in the grand coalition")
        ax.set_xticks(x, [_label(s, 24) for s in rows["scenario"]], rotation=20,
                      ha="right", fontsize=8)
        ax.set_ylabel("shortage, t", fontsize=8)
        ax.set_title(_label(b, 40), fontsize=9, loc="left")
        ax.yaxis.set_major_formatter(lambda v, _: _compact(v))
    axes[0].legend(fontsize=8, frameon=False)
    fig.suptitle(_title(f"{title}: shortage alone and in the grand coalition, by "
                        "scenario (all elements and periods)", 90), fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def coalition_body(folder: Path, s: dict[str, Any], cur: str) -> list[str]:
    """The report page's body for a coalition folder (model.output.report)."""
    from .report import _csv, _esc, _img, _kv, _table

    parts = [f"<h2>Several buyers: what cooperation is worth (policy "
             f"{_esc(s['policy'])})</h2>"]
    if "value_of_cooperation" not in s:
        parts.append('<p class="bad">Not every coalition was solved to optimality: no '
                     "allocation is presented (see coalition.csv).</p>")
        parts.append(_table(_csv(folder / "coalition.csv"), "coalition", currency=cur))
        return parts
    T = s.get("periods") or 1
    pairs = [("buyers", ", ".join(s["buyers"])),
             ("value of cooperation (sum alone - grand coalition)",
              f"{cur} {s['value_of_cooperation'] / 1e6:,.1f} m, "
              f"{s['value_of_cooperation_per_period'] / 1e6:,.1f} m a period over {T}"),
             *[(f"{RULE_WORDS.get(r, r)} in the core", "not offered: " +
                s["not_offered"].get(r, "") if ok is None else ("yes" if ok else "no"))
               for r, ok in s["in_core"].items()]]
    parts.append(_kv(pairs, "coalition-key"))
    parts.append('<p class="note">v(S): the optimal objective (expected discounted cost) '
                 "of coalition S alone, its members pooling their entitlements and "
                 "moving stock to each other; an allocation is in the core when no "
                 "coalition's members pay more together than v(S).</p>")
    for name, alt in (("allocations.png", "allocations"), ("shortage.png", "shortage")):
        if (folder / name).exists():
            parts.append(_img(folder / name, alt))
    parts += ["<h3>Allocations of the grand coalition's cost</h3>",
              _table(_csv(folder / "allocations.csv"), "allocations", currency=cur),
              "<h3>Every coalition</h3>",
              _table(_csv(folder / "coalition.csv"), "coalition", currency=cur),
              "<h3>Each buyer alone and in the grand coalition, by scenario</h3>",
              _table(_csv(folder / "buyers_by_scenario.csv"), "by-scenario", currency=cur)]
    return parts
