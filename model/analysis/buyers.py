"""Several buyers: each member's share of a solved coalition, as tables.

The model carries buyers as expanded elements (``Dy@JP``, model.input.buyers);
this module maps a solution back to buyer and element columns and adds what a
buyer wants to know about its side of a plan:

* :func:`buyer_cost_parts`: each member's cost parts per period and scenario.
  Each variable belongs to one member (its contracts, deliveries, stock,
  shortage, surplus, its stock floors' deficits); a tonne moved between
  members is paid by the member that receives it; a project's cost is shared
  in proportion to the members' entitlements of its source. The members'
  costs add up to the coalition's.
* :func:`buyers_table` (``buyers.csv``): per member, expected cost and
  shortage (per element), and the worst scenario's shortage;
* :func:`buyer_scenarios_table` (``buyer_scenarios.csv``): per member and
  scenario, its cost, shortage, stock received and sent;
* :func:`transfers_table` (``transfers.csv``): stock moved, per member,
  element, period and scenario;
* :func:`split_buyer_columns`: an ``element`` column of expanded names becomes
  ``buyer`` and ``element``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..input.buyers import split_name
from ..input.data import ProblemData
from .results import Solution

CASH_PARTS = ("reservation", "delivery", "holding", "investment", "transfer")


def buyer_cost_parts(d: ProblemData, s: Solution) -> dict[str, np.ndarray]:
    """Each member's cost parts, (B, T, W) undiscounted currency, as
    :func:`model.analysis.results.cost_parts` (which they add up to)."""
    bd = d.buyers
    B = bd.n
    T, W = len(d.periods), len(d.scenarios)
    eb = bd.element_buyer
    kb = bd.arc_buyer(d.arc_element)

    def by_arc(values: np.ndarray) -> np.ndarray:          # (K, T, W) -> (B, T, W)
        out = np.zeros((B, T, W))
        np.add.at(out, kb, values)
        return out

    def by_element(weights: np.ndarray, values: np.ndarray) -> np.ndarray:
        out = np.zeros((B, T, W))
        np.add.at(out, eb, weights[:, None, None] * values)
        return out

    surplus = s.surplus_t if s.surplus_t is not None else np.zeros_like(s.stock_t)
    received = s.received_t if s.received_t is not None else np.zeros_like(s.stock_t)
    terminal = np.zeros((B, T, W))
    if d.terminal_value is not None and T:
        terminal[:, T - 1] = by_element(d.terminal_value, s.stock_t)[:, T - 1]
    deficit = np.zeros((B, T, W))
    if s.floors is not None and len(s.floors):
        t = pd.Index(d.periods).get_indexer(s.floors["period"])
        w = pd.Index(d.scenarios).get_indexer(s.floors["scenario"])
        who = pd.Index(bd.ids).get_indexer([split_name(str(n))[1] for n in s.floors["element"]])
        np.add.at(deficit, (who, t, w), s.floors["deficit_cost"].to_numpy(float)
                  / d.discount[t])
    invest = project_costs(d, s)
    return {
        "reservation": by_arc(d.reservation_fee[:, None, None] * d.price[:, :, None]
                              * s.contracted_t),
        "delivery": by_arc(d.delivery_price * s.delivered_t),
        "holding": by_element(d.holding_cost, s.stock_t),
        "investment": invest,
        "resale": by_element(d.resale_price, surplus),
        "shortage": by_element(d.shortage_penalty, s.shortage_t),
        "deficit": deficit,
        "terminal": terminal,
        "transfer": by_element(bd.transfer_cost, received),
    }


def project_costs(d: ProblemData, s: Solution) -> np.ndarray:
    """(B, T, W) each member's part of the coalition's project costs: each project's
    cost (as :func:`model.analysis.results.cost_parts` charges it) shared in
    proportion to the members' entitlements of its source."""
    bd = d.buyers
    T, W = len(d.periods), len(d.scenarios)
    out = np.zeros((bd.n, T, W))
    pj = d.projects
    if pj is None or pj.n == 0 or s.built_size is None:
        return out
    fixed = np.where(pj.integer, pj.fixed_cost / pj.max_size, 0.0)   # per unit of size
    per = np.einsum("p,pst,psw->ptw", pj.cost + fixed, pj.charge, s.built_size)
    kb = bd.arc_buyer(d.arc_element)
    for p in range(pj.n):
        arcs = np.flatnonzero(pj.capacity[p].sum(axis=1) > 0)
        held = np.zeros(bd.n)
        if len(arcs):       # one element's arcs of the source: one per member
            first = arcs[bd.arc_group[arcs] == bd.arc_group[arcs[0]]]
            np.add.at(held, kb[first], bd.entitlement[first])
        share = held / held.sum() if held.sum() > 0 else np.full(bd.n, 1.0 / bd.n)
        out += share[:, None, None] * per[p][None]
    return out


def _scenario_cost(parts: dict[str, np.ndarray], discount: np.ndarray) -> np.ndarray:
    """(B, W) discounted cost of each member in each scenario."""
    cost = sum(np.einsum("t,btw->bw", discount, parts[k]) for k in
               ("reservation", "delivery", "holding", "investment", "shortage", "deficit",
                "transfer"))
    return cost - np.einsum("t,btw->bw", discount, parts["resale"] + parts["terminal"])


def buyer_scenarios_table(d: ProblemData, s: Solution) -> pd.DataFrame:
    """Per member and scenario: its discounted cost (and the cash and penalty parts),
    shortage (t, all periods and elements, and per element), stock received and sent."""
    bd = d.buyers
    parts = buyer_cost_parts(d, s)
    cost = _scenario_cost(parts, d.discount)                                  # (B, W)
    penalty = np.einsum("t,btw->bw", d.discount, parts["shortage"] + parts["deficit"])
    B, W = cost.shape
    b, w = np.divmod(np.arange(B * W), W)
    out = pd.DataFrame({
        "buyer": np.array(bd.ids, dtype=object)[b],
        "scenario": np.array(d.scenarios, dtype=object)[w],
        "probability": d.probability[w], "cost": cost[b, w],
        "cash": cost[b, w] - penalty[b, w], "penalty": penalty[b, w],
        "shortage_t": _per_buyer(d, s.shortage_t.sum(axis=1))[b, w]})
    short = s.shortage_t.sum(axis=1)                                           # (E, W)
    for j, e in enumerate(bd.base_elements):
        per = np.zeros((B, W))
        mine = bd.element_base == j
        np.add.at(per, bd.element_buyer[mine], short[mine])
        out[f"shortage_{e}_t"] = per[b, w]
    for key, arr in (("received_t", s.received_t), ("sent_t", s.sent_t)):
        out[key] = _per_buyer(d, arr.sum(axis=1))[b, w] if arr is not None else 0.0
    return out


def _per_buyer(d: ProblemData, per_element: np.ndarray) -> np.ndarray:
    """(E, W) summed into (B, W) by each element's member."""
    out = np.zeros((d.buyers.n,) + per_element.shape[1:])
    np.add.at(out, d.buyers.element_buyer, per_element)
    return out


def buyers_table(d: ProblemData, s: Solution) -> pd.DataFrame:
    """Per member: home countries, total demand, expected cost (discounted), expected
    and worst-scenario shortage (t), expected shortage per element, expected stock
    received and sent."""
    bd = d.buyers
    per = buyer_scenarios_table(d, s)
    p = d.probability
    rows = []
    for j, b in enumerate(bd.ids):
        mine = per[per["buyer"] == b]
        row: dict[str, Any] = {
            "buyer": b, "home": " ".join(bd.home[j]),
            "demand_t": float(bd.demand_total_t[j]),
            "expected_cost": float(mine["cost"].to_numpy() @ p),
            "expected_cash": float(mine["cash"].to_numpy() @ p),
            "expected_penalty": float(mine["penalty"].to_numpy() @ p),
            "expected_shortage_t": float(mine["shortage_t"].to_numpy() @ p),
            "worst_shortage_t": float(mine["shortage_t"].to_numpy()[p > 0].max())
            if (p > 0).any() else 0.0}
        for e in bd.base_elements:
            row[f"expected_shortage_{e}_t"] = float(mine[f"shortage_{e}_t"].to_numpy() @ p)
        row["expected_received_t"] = float(mine["received_t"].to_numpy() @ p)
        row["expected_sent_t"] = float(mine["sent_t"].to_numpy() @ p)
        rows.append(row)
    return pd.DataFrame(rows)


def transfers_table(d: ProblemData, s: Solution) -> pd.DataFrame:
    """Stock moved between members: per scenario, member, element and period with a
    transfer, tonnes received and sent (what is sent in a node is received in it)."""
    cols = ["scenario", "probability", "buyer", "element", "period", "received_t", "sent_t"]
    if s.received_t is None:
        return pd.DataFrame(columns=cols)
    bd = d.buyers
    e, t, w = np.nonzero((s.received_t > 1e-9) | (s.sent_t > 1e-9))
    return pd.DataFrame({
        "scenario": np.array(d.scenarios, dtype=object)[w], "probability": d.probability[w],
        "buyer": np.array(bd.ids, dtype=object)[bd.element_buyer[e]],
        "element": np.array(bd.base_elements, dtype=object)[bd.element_base[e]],
        "period": np.array(d.periods, dtype=object)[t],
        "received_t": s.received_t[e, t, w], "sent_t": s.sent_t[e, t, w]}, columns=cols)


def split_buyer_columns(table: pd.DataFrame) -> pd.DataFrame:
    """A table whose ``element`` column holds expanded names (``Dy@JP``): a ``buyer``
    column before it and the element (or group) alone; empty buyer where a row is
    the coalition's (shared capacity rows)."""
    if "element" not in table.columns or "buyer" in table.columns:
        return table
    pairs = [split_name(str(v)) for v in table["element"]]
    out = table.copy()
    out["element"] = [e for e, _ in pairs]
    out.insert(list(out.columns).index("element"), "buyer", [b for _, b in pairs])
    return out


def buyer_summary(d: ProblemData, s: Solution) -> dict[str, Any]:
    """summary.json's ``buyers``: per member, its home, expected cost and shortage."""
    tab = buyers_table(d, s)
    out = {}
    for r in tab.to_dict("records"):
        out[r["buyer"]] = {
            "home": d.buyers.home[d.buyers.ids.index(r["buyer"])],
            "expected_cost": r["expected_cost"],
            "expected_shortage_t": r["expected_shortage_t"],
            "worst_shortage_t": r["worst_shortage_t"],
            "expected_shortage_by_element_t": {
                e: r[f"expected_shortage_{e}_t"] for e in d.buyers.base_elements},
            "expected_received_t": r["expected_received_t"],
            "expected_sent_t": r["expected_sent_t"]}
    return out


def buyer_run_tables(d: ProblemData, s: Solution, tables: dict[str, pd.DataFrame]
                     ) -> dict[str, pd.DataFrame]:
    """A run's tables for several buyers: buyer and element columns in every table,
    projects' added capacity once per source (not once per member), and the tables
    of this module."""
    tables = dict(tables)
    if "balance" in tables and s.received_t is not None:
        # rows in (element, period, scenario) order (results.balance_table)
        bal = tables["balance"].copy()
        at = list(bal.columns).index("shortage_t")
        bal.insert(at, "sent_t", s.sent_t.reshape(-1))
        bal.insert(at, "received_t", s.received_t.reshape(-1))
        tables["balance"] = bal
    out = {name: split_buyer_columns(t) for name, t in tables.items()}
    if "projects" in out:
        proj = out["projects"]
        keep, rename = [], {}
        for c in proj.columns:
            head, sep, tail = c.partition("_")
            element, buyer = split_name(tail[:-2]) if c.endswith("_t") and sep else (c, "")
            if buyer and buyer != d.buyers.ids[0]:
                continue
            keep.append(c)
            if buyer:
                rename[c] = f"{head}_{element}_t"
        out["projects"] = proj[keep].rename(columns=rename)
    if "capacity_added" in out and len(out["capacity_added"]):
        cap = out["capacity_added"]
        out["capacity_added"] = cap[cap["buyer"] == d.buyers.ids[0]].drop(
            columns="buyer").reset_index(drop=True)
    out["buyers"] = buyers_table(d, s)
    out["buyer_scenarios"] = buyer_scenarios_table(d, s)
    out["transfers"] = transfers_table(d, s)
    return out
