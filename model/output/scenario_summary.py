"""Many scenarios, summarised: distributions and regimes by year instead of a row per scenario.

Scenarios generated from regimes and events (or any list longer than
:data:`~model.input.regimes.MANY_SCENARIOS`; :func:`~model.input.regimes.summarised`)
come by the thousand; a table with a row per scenario,
or a chart with a bar per scenario, would be unreadable. The report, the
charts and the comparison show them through these summaries (docs/outputs.md,
"Many scenarios"), all probability-weighted:

* :func:`distribution`: expected value and quantiles of the scenario cost and
  total shortage (the smallest value whose cumulative probability reaches q);
* :func:`worst_scenarios`: the few costliest scenarios, with their regime
  path in words;
* :func:`regime_probability`: the probability of each regime in each period;
* :func:`shortage_by_regime`: per element (and all elements summed), regime
  and period, the probability-weighted shortage (the regimes' parts add up to
  the period's expected shortage) and the shortage expected given the regime;
* :func:`event_summary`: each event's probability and the expected cost and
  shortage given that it happens and given that it does not.

Plain tables in, plain tables out: the run's own tables (``scenarios``,
``balance``) and the paths of :func:`model.input.regimes.scenario_paths`. No
Pyomo, no model objects.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..input.regimes import ScenarioPaths

WORST_LISTED = 10       # the costliest scenarios listed by name
QUANTILES = ((0.05, "5 % quantile"), (0.25, "25 % quantile"), (0.5, "median"),
             (0.75, "75 % quantile"), (0.95, "95 % quantile"))
ALL_ELEMENTS = "all elements"


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """The smallest value whose cumulative probability reaches `q` (the inverse of the
    weighted empirical distribution); weights need not sum to 1."""
    values = np.asarray(values, dtype=float)
    weights = np.asarray(weights, dtype=float)
    keep = weights > 0
    values, weights = values[keep], weights[keep]
    if not len(values):
        return float("nan")
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weights[order]) / weights.sum()
    i = int(np.searchsorted(cum, q - 1e-12, side="left"))
    return float(values[order][min(i, len(values) - 1)])


def distribution(scenarios: pd.DataFrame) -> pd.DataFrame:
    """Rows: expected value, the quantiles of :data:`QUANTILES`, the largest (of
    positive probability) and the probability of more than zero; columns ``cost``
    and ``shortage_t`` of scenarios.csv."""
    p = pd.to_numeric(scenarios["probability"], errors="coerce").fillna(0.0).to_numpy(float)
    cols = {c: pd.to_numeric(scenarios[c], errors="coerce").fillna(0.0).to_numpy(float)
            for c in ("cost", "shortage_t")}
    total = p.sum() or 1.0
    rows = [{"statistic": "expected", **{c: float(v @ p / total) for c, v in cols.items()}}]
    rows += [{"statistic": label, **{c: weighted_quantile(v, p, q) for c, v in cols.items()}}
             for q, label in QUANTILES]
    rows.append({"statistic": "largest", **{c: float(v[p > 0].max()) if (p > 0).any()
                                            else float("nan") for c, v in cols.items()}})
    out = pd.DataFrame(rows)
    out.attrs["probability_of_shortage"] = float(p[cols["shortage_t"] > 1e-9].sum() / total)
    return out


def path_words(paths: ScenarioPaths | None, scenario: str) -> str:
    """A generated scenario's regimes and events in words: ``ban 2026-2027, normal
    2028; lynas-outage happens`` (empty for a listed scenario)."""
    if paths is None:
        return ""
    index = _index(paths).get(scenario)
    if index is None:
        return ""
    words = []
    path = paths.regime[index].tolist()
    if path:
        parts, start = [], 0
        for t in range(1, len(path) + 1):
            if t == len(path) or path[t] != path[start]:
                span = str(paths.periods[start]) if t - 1 == start else \
                    f"{paths.periods[start]}-{paths.periods[t - 1]}"
                parts.append(f"{paths.states[path[start]]} {span}")
                start = t
        words.append(", ".join(parts))
    fired = [e for e, h in zip(paths.events, paths.happens[index].tolist()) if h]
    if paths.events:
        words.append(", ".join(fired) + (" happens" if len(fired) == 1 else " happen")
                     if fired else "no event")
    return "; ".join(words)


def _index(paths: ScenarioPaths) -> dict[str, int]:
    return {w: i for i, w in enumerate(paths.ids)}


def worst_scenarios(scenarios: pd.DataFrame, paths: ScenarioPaths | None = None,
                    top: int = WORST_LISTED) -> pd.DataFrame:
    """The `top` costliest scenarios of positive probability, costliest first: scenario,
    probability, cost, shortage_t, and their regimes and events in words."""
    p = pd.to_numeric(scenarios["probability"], errors="coerce").fillna(0.0)
    cost = pd.to_numeric(scenarios["cost"], errors="coerce")
    table = scenarios.assign(probability=p, cost=cost)[p > 0]
    table = table.sort_values("cost", ascending=False, kind="stable").head(top)
    out = table[["scenario", "probability", "cost", "shortage_t"]].reset_index(drop=True)
    if paths is not None:
        out["regimes_and_events"] = [path_words(paths, str(w)) for w in out["scenario"]]
    return out


def regime_probability(paths: ScenarioPaths) -> pd.DataFrame:
    """P(regime in period): one row per regime, one column per period (each column
    sums to 1)."""
    T = paths.regime.shape[1]
    rows = []
    for s, name in enumerate(paths.states):
        rows.append({"regime": name, **{str(paths.periods[t]): float(
            paths.probability[paths.regime[:, t] == s].sum()) for t in range(T)}})
    return pd.DataFrame(rows, columns=["regime", *[str(p) for p in paths.periods]])


def shortage_by_regime(paths: ScenarioPaths, balance: pd.DataFrame) -> pd.DataFrame:
    """Per element (and :data:`ALL_ELEMENTS`), regime and period: ``probability`` of
    the regime, ``weighted_shortage_t`` = sum over the scenarios in that regime then
    of probability x shortage (the regimes' values add up to the period's expected
    shortage), and ``shortage_given_regime_t`` = that over the probability (the
    shortage expected in a period of that regime; empty where the regime has
    probability 0). `balance` has the columns scenario, element, period, shortage_t
    of balance.csv."""
    index = _index(paths)
    periods = [str(p) for p in paths.periods]
    t_of = {p: i for i, p in enumerate(periods)}
    b = balance.assign(w=balance["scenario"].astype(str).map(index),
                       t=balance["period"].astype(str).map(t_of),
                       u=pd.to_numeric(balance["shortage_t"], errors="coerce").fillna(0.0))
    b = b.dropna(subset=["w", "t"])
    w, t = b["w"].to_numpy(int), b["t"].to_numpy(int)
    regime = paths.regime[w, t]
    weighted = paths.probability[w] * b["u"].to_numpy(float)
    S, T = len(paths.states), len(periods)
    prob = np.zeros((S, T))
    for s in range(S):
        prob[s] = [(paths.probability * (paths.regime[:, k] == s)).sum() for k in range(T)]
    elements = list(dict.fromkeys(b["element"].astype(str)))
    element = b["element"].astype(str).to_numpy()
    rows = []
    for name in [ALL_ELEMENTS, *elements]:
        sel = np.ones(len(b), bool) if name == ALL_ELEMENTS else element == name
        grid = np.zeros((S, T))
        np.add.at(grid, (regime[sel], t[sel]), weighted[sel])
        for s in range(S):
            for k in range(T):
                rows.append({"element": name, "regime": paths.states[s], "period": periods[k],
                             "probability": prob[s, k], "weighted_shortage_t": grid[s, k],
                             "shortage_given_regime_t": grid[s, k] / prob[s, k]
                             if prob[s, k] > 0 else np.nan})
    return pd.DataFrame(rows, columns=["element", "regime", "period", "probability",
                                       "weighted_shortage_t", "shortage_given_regime_t"])


def by_regime_grid(table: pd.DataFrame, value: str, element: str = ALL_ELEMENTS
                   ) -> pd.DataFrame:
    """One value of :func:`shortage_by_regime` as a regime x period grid."""
    part = table[table["element"] == element]
    grid = part.pivot(index="regime", columns="period", values=value)
    grid = grid.reindex(index=list(dict.fromkeys(part["regime"])),
                        columns=list(dict.fromkeys(part["period"])))
    grid.columns.name = None
    return grid.reset_index()


def event_summary(paths: ScenarioPaths, scenarios: pd.DataFrame) -> pd.DataFrame:
    """Per event: its probability in this scenario set, and the expected cost and total
    shortage given that it happens and given that it does not (empty where that has
    probability 0)."""
    index = _index(paths)
    w = scenarios["scenario"].astype(str).map(index)
    ok = w.notna().to_numpy()
    w = w[ok].to_numpy(int)
    p = paths.probability[w]
    cost = pd.to_numeric(scenarios["cost"], errors="coerce").to_numpy(float)[ok]
    short = pd.to_numeric(scenarios["shortage_t"], errors="coerce").to_numpy(float)[ok]

    def given(mask: np.ndarray, v: np.ndarray) -> float:
        mass = p[mask].sum()
        return float(p[mask] @ v[mask] / mass) if mass > 0 else np.nan

    rows = []
    for e, name in enumerate(paths.events):
        hit = paths.happens[w, e]
        rows.append({"event": name, "probability": float(p[hit].sum()),
                     "cost_if_it_happens": given(hit, cost),
                     "cost_if_not": given(~hit, cost),
                     "shortage_if_it_happens_t": given(hit, short),
                     "shortage_if_not_t": given(~hit, short)})
    return pd.DataFrame(rows, columns=["event", "probability", "cost_if_it_happens",
                                       "cost_if_not", "shortage_if_it_happens_t",
                                       "shortage_if_not_t"])


def comparison_distribution(long: pd.DataFrame) -> pd.DataFrame:
    """Per policy of a comparison's long table (comparison_scenarios.csv): the
    distribution of its total shortage per scenario (expected, median, 95 % quantile,
    largest, probability of some shortage) and against the baseline (the probability
    of more shortage than the baseline, and the largest increase and reduction in any
    scenario)."""
    rows = []
    for policy, part in long.groupby("policy", sort=False):
        p = pd.to_numeric(part["probability"], errors="coerce").fillna(0.0).to_numpy(float)
        u = pd.to_numeric(part["shortage_t"], errors="coerce").fillna(0.0).to_numpy(float)
        a = pd.to_numeric(part["avoided_shortage_t"], errors="coerce").to_numpy(float)
        known = np.isfinite(a) & (p > 0)
        total = p.sum() or 1.0
        rows.append({
            "policy": policy, "expected_shortage_t": float(p @ u / total),
            "median_shortage_t": weighted_quantile(u, p, 0.5),
            "quantile_95_shortage_t": weighted_quantile(u, p, 0.95),
            "largest_shortage_t": float(u[p > 0].max()) if (p > 0).any() else np.nan,
            "probability_of_shortage": float(p[u > 1e-9].sum() / total),
            "probability_of_more_shortage": float(p[known & (a < -1e-9)].sum() / total)
            if known.any() else np.nan,
            "largest_increase_t": float(max(0.0, -a[known].min())) if known.any() else np.nan,
            "largest_reduction_t": float(max(0.0, a[known].max())) if known.any() else np.nan})
    return pd.DataFrame(rows)


def comparison_worst(long: pd.DataFrame, paths: ScenarioPaths | None = None,
                     top: int = WORST_LISTED) -> pd.DataFrame:
    """The `top` scenarios with the largest shortage under the first policy (of positive
    probability): scenario, probability, regimes and events in words, and each
    policy's shortage (t, all elements summed) in a column ``shortage_t[<policy>]``."""
    if not len(long):
        return pd.DataFrame(columns=["scenario", "probability"])
    policies = list(dict.fromkeys(long["policy"]))
    first = long[long["policy"] == policies[0]]
    first = first[pd.to_numeric(first["probability"], errors="coerce") > 0]
    worst = first.sort_values("shortage_t", ascending=False, kind="stable").head(top)
    out = worst[["scenario", "probability"]].reset_index(drop=True)
    if paths is not None:
        out["regimes_and_events"] = [path_words(paths, str(w)) for w in out["scenario"]]
    for policy in policies:
        mine = long[long["policy"] == policy].set_index("scenario")["shortage_t"]
        out[f"shortage_t[{policy}]"] = mine.reindex(out["scenario"]).to_numpy()
    return out
