"""Independent check of a run folder of several buyers (DESIGN.md, "Several buyers").

Like :mod:`model.analysis.verify` (whose instance helpers it reuses), this
shares nothing with the model-building code: it re-derives each buyer's demand,
access and prices, every source's entitlements and the output open to the
coalition from the hashed instance with plain Python loops, reads the written
tables, and rechecks:

* each member's contracts (decision nodes, committed shares, capacity) and
  deliveries (its own access, contracts, minimum takes, history);
* the shared capacity: per source, element, period and scenario, the members'
  contracts within their summed entitlements of the capacity, their deliveries
  within that share of the source's output under the rules that name no buyer;
* each member's balance (deliveries, stock received and sent, shortage, stock,
  surplus), shortage at most demand, stock within capacity;
* transfers: what is sent of an element in a node is received, among members;
* each member's policy rules (its demand, its home countries);
* every scenario's cost, the summary's numbers, and each member's cost and
  shortage (buyer_scenarios.csv, buyers.csv) by the attribution of
  model.analysis.buyers (stated in docs/outputs.md).

The coalition is the one summary.json names (``coalition``); its members must be
buyers of the instance and the tables must hold exactly them.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

from ..input.folders import read_table, table_limits
from ..input.schema import Instance, Policy, Source
from ..safety import shown
from .verify import (
    _Facts,
    _by_period,
    _cap,
    _clean,
    _close,
    _emap,
    _k,
    _matches,
    _worst_expectation,
    regime_problems,
)


class _BuyerFacts(_Facts):
    """The instance's numbers per buyer: rules that name buyers hit only those."""

    def __init__(self, inst: Instance, members: list[str]) -> None:
        super().__init__(inst)
        self.members = members
        self.buyer = {b.id: b for b in inst.buyers}

    def _mult(self, kind: str, field: str, sid: str | None, e: str, t: str, w: str,
              buyer: str | None) -> float:
        """Product of the matching rules of `kind`; buyer None: only rules naming none."""
        m = 1.0
        for r in self.rules(w, t, kind):
            if sid is not None and not _matches(r.match, self.src[sid], e):
                continue
            if not self._hits(r, e, t):
                continue
            named = getattr(r, "buyers", None)
            if named is not None and (buyer is None or buyer not in named):
                continue
            m *= getattr(r, field)
        return m

    def access(self, b: str, sid: str, e: str, t: str, w: str) -> float:
        return self._mult("disruptions", "availability", sid, e, t, w, b)

    def shared(self, sid: str, e: str, t: str, w: str) -> float:
        return self._mult("disruptions", "availability", sid, e, t, w, None)

    def paid_by(self, b: str, sid: str, e: str, t: str, w: str) -> float:
        sup = self.supply(self.src[sid], e)
        p = self.price(sid, e, t) * self._mult("price_shocks", "multiplier", sid, e, t, w, b)
        if sup.price_floor is not None:
            p = max(p, sup.price_floor)
        if sup.price_cap is not None:
            p = min(p, sup.price_cap)
        return p

    def demand_of(self, b: str, e: str, t: str, w: str) -> float:
        return self.base_demand_of(b, e, t) * \
            self._mult("demand_shocks", "multiplier", None, e, t, w, b)

    def base_demand_of(self, b: str, e: str, t: str) -> float:
        d = self.buyer[b].demand
        return _by_period(d[e] if e in d else d.get("default", 0.0), t)

    def emap(self, b: str, key: str, e: str, default: float) -> float:
        """A member's element map (its own, else the instance's; opening stock: own)."""
        buyer, inst = self.buyer[b], self.inst
        own = {"shortage_penalty": buyer.shortage_penalty, "resale_price": buyer.resale_price,
               "initial": buyer.stock.initial, "capacity": buyer.stock.capacity,
               "holding_cost": buyer.stock.holding_cost,
               "terminal_value": buyer.stock.terminal_value}[key]
        if own is None:
            own = {"shortage_penalty": inst.shortage_penalty or {},
                   "resale_price": inst.resale_price, "capacity": inst.stock.capacity,
                   "holding_cost": inst.stock.holding_cost,
                   "terminal_value": inst.stock.terminal_value}[key]
        return _emap(own, e, default)

    def emergency_of(self, b: str, e: str, t: str, w: str) -> bool:
        for r in self.rules(w, t, "disruptions"):
            named = getattr(r, "buyers", None)
            if r.emergency and (named is None or b in named) and self._hits(r, e, t) and any(
                    _matches(r.match, s, e) and self.supply(s, e) is not None
                    for s in self.inst.sources):
                return True
        return False

    def entitlement(self) -> dict[tuple[str, str], float]:
        """(source, buyer) -> the share of the source's capacity the buyer holds alone:
        the map's, the rest split among the buyers it does not name by their demand
        for the source's elements over the horizon (equally when they have none)."""
        ids = [b.id for b in self.inst.buyers]
        out = {}
        for s in self.inst.sources:
            named = dict(s.entitlement or {})
            rest = max(0.0, 1.0 - sum(named.values()))
            others = [b for b in ids if b not in named]
            elems = [e for e in self.inst.elements if self.supply(s, e) is not None]
            weight = {b: sum(self.base_demand_of(b, e, t) for e in elems
                             for t in self.periods) for b in others}
            total = sum(weight.values())
            for b in ids:
                if b in named:
                    out[s.id, b] = float(named[b])
                elif total > 0:
                    out[s.id, b] = rest * weight[b] / total
                else:
                    out[s.id, b] = rest / len(others) if others else 0.0
        return out

    def partition(self) -> dict[str, list[frozenset[str]]]:
        """Scenarios grouped by identical data so far, every member's and the sources'."""
        out: dict[str, list[frozenset[str]]] = {"root": [frozenset(self.scen_ids)]}
        history: dict[str, tuple] = {w: () for w in self.scen_ids}
        arcs = self.arcs()
        for t in self.periods:
            for w in self.scen_ids:
                history[w] += tuple(
                    (self.access(b, sid, e, t, w),
                     self._mult("price_shocks", "multiplier", sid, e, t, w, b))
                    for b in self.members for sid, e in arcs)
                history[w] += tuple(self.demand_of(b, e, t, w) for b in self.members
                                    for e in self.inst.elements)
                history[w] += tuple(self.shared(sid, e, t, w) for sid, e in arcs)
            groups: dict[tuple, set[str]] = defaultdict(set)
            for w in self.scen_ids:
                groups[history[w]].add(w)
            out[t] = [frozenset(g) for g in groups.values()]
        return out


def verify_buyers_run(folder: Path, summary: dict[str, Any], inst: Instance,
                      problems: list[str], tol: float = 1e-6) -> list[str]:
    """Every violated constraint or misreported number of a run of several buyers."""
    members = summary.get("coalition")
    ids = [b.id for b in inst.buyers]
    if not isinstance(members, list) or not members or \
            not all(isinstance(b, str) and b in ids for b in members) or \
            len(set(members)) != len(members):
        return problems + [f"summary.json: coalition {shown(members)} is not a list of the "
                           f"instance's buyers ({', '.join(ids)})"]
    members = [b for b in ids if b in members]
    f = _BuyerFacts(inst, members)
    limits = table_limits(inst)
    elements = list(inst.elements)
    known = {"source": set(f.src), "element": set(elements), "period": set(f.periods),
             "scenario": set(f.scen_ids), "buyer": set(members)}
    spec = {"allocation": (("buyer", "source", "element", "period", "node"),
                           ("contracted_t",), ("buyer", "source", "element", "period")),
            "deliveries": (("scenario", "buyer", "source", "element", "period"),
                           ("contracted_t", "delivered_t"),
                           ("scenario", "buyer", "source", "element", "period")),
            "balance": (("scenario", "buyer", "element", "period"),
                        ("shortage_t", "stock_t", "surplus_t", "received_t", "sent_t"),
                        ("scenario", "buyer", "element", "period"))}
    read = {}
    for n, (keys, numbers, known_cols) in spec.items():
        if not os.path.lexists(folder / f"{n}.csv"):
            problems.append(f"{n}.csv is missing")
            return problems
        needed = keys + numbers + (("decided_in",) if n == "allocation" else ())
        table = read_table(folder / f"{n}.csv", limits[n], columns=needed,
                           dtype={k: str for k in keys})
        read[n] = _clean(n, table, keys, numbers, {k: known[k] for k in known_cols}, problems)
    bad_list: list[str] = []

    def bad(msg: str) -> None:
        bad_list.append(msg)

    def le(a: float, b: float) -> bool:
        return a <= b + tol * max(1.0, abs(b))

    lam, alpha = summary["risk"]["lambda"], summary["risk"]["alpha"]
    pol = inst.policies.get(summary["policy"], Policy())
    excluded = {s.id for s in inst.sources if any(_matches(sel, s) for sel in pol.exclude)}
    history = inst.information == "history"
    if f.paths is not None:
        problems += regime_problems(f)
    if os.path.lexists(folder / "scenarios.csv"):
        listed = read_table(folder / "scenarios.csv", dtype={"scenario": str},
                            usecols=["scenario", "probability"])
        if listed["scenario"].tolist() != f.scen_ids:
            bad("scenarios.csv: the scenarios are not the instance's")
    else:
        bad("scenarios.csv is missing")
    ent = f.entitlement()
    ent_s = {s.id: sum(ent[s.id, b] for b in members) for s in inst.sources}
    for (sid, b), v in ent.items():
        if v < -tol or v > 1 + tol:
            bad(f"entitlement of {b} to {sid}: {v} outside [0, 1]")
    for sid in f.src:
        total = sum(ent[sid, b] for b in ids)
        if total > 1 + 1e-9:
            bad(f"entitlements of {sid} sum to {total}, above 1")

    # -- the information tree
    partition = f.partition()
    node_scen: dict[str, frozenset[str]] = {}
    if (folder / "tree.csv").is_file():
        tree_rows = read_table(folder / "tree.csv", limits["tree"],
                               columns=("node", "period", "scenarios"), dtype=str,
                               na_values=[])
        for r in tree_rows.itertuples():
            node_scen[r.node] = frozenset(r.scenarios.split(";"))
        for t_row, groups in partition.items():
            listed_nodes = {node_scen[r.node] for r in tree_rows.itertuples()
                            if (r.period or "root") == t_row}
            if listed_nodes != set(groups):
                bad(f"tree.csv: the nodes of {t_row} do not group the scenarios by their "
                    f"data so far ({len(listed_nodes)} listed, {len(groups)} expected)")
    else:
        bad("tree.csv is missing")

    # -- investment: the coalition's builds (its members' share of the source)
    size: dict[tuple[str, str, str], float] = defaultdict(float)
    proj = {p.id: p for p in inst.projects}
    if inst.projects and (folder / "projects.csv").is_file():
        table = read_table(folder / "projects.csv", limits["projects"],
                           columns=("project", "period_decided", "node", "size"),
                           dtype={"project": str, "period_decided": str, "node": str})
        table = _clean("projects", table, ("project", "period_decided", "node"), ("size",),
                       {"project": set(proj), "period_decided": set(f.periods)}, problems)
        for r in table.itertuples():
            for w in node_scen.get(str(r.node), frozenset()):
                size[r.project, r.period_decided, w] += float(r.size)
        for pid, p in proj.items():
            share = ent_s[p.source] if p.source else 1.0
            for w in f.scen_ids:
                total = sum(size.get((pid, t, w), 0.0) for t in f.periods)
                if total < -tol or not le(total, p.max_size * share):
                    bad(f"build {pid} in {w}: total size {total} above the coalition's "
                        f"share {share:g} of max_size {p.max_size}")
    elif inst.projects:
        bad("projects.csv is missing")

    def added(sid: str, e: str, t: str, w: str) -> float:
        if f.capacity_window(sid, t) == 0.0:
            return 0.0
        return sum(size.get((p.id, tau, w), 0.0) * _by_period(p.capacity[e], t)
                   for p in inst.projects if p.source == sid and e in p.capacity
                   for tau in f.online_decisions(p, t))

    # -- contracts per member, one value per decision node
    contract: dict[tuple[str, str, str, str, str], float] = {}
    nodes_of: dict[tuple, set[frozenset[str]]] = defaultdict(set)
    for r in read["allocation"].itertuples():
        key = (r.buyer, r.source, r.element, r.period)
        want = f.decided_in(r.source, r.period)
        if str(r.decided_in) != want:
            bad(f"contract {' '.join(key)}: decided_in {r.decided_in}, its lead time makes "
                f"it {want}")
        scen = node_scen.get(str(r.node), frozenset())
        if want in partition and scen not in partition[want]:
            bad(f"contract {' '.join(key)} at node {r.node}: its scenarios are not a node "
                f"of {want}")
        nodes_of[key].add(scen)
        for w in scen:
            contract[w, *key] = float(r.contracted_t)
    for key, scen_sets in nodes_of.items():
        if sorted(w for sset in scen_sets for w in sset) != sorted(f.scen_ids):
            bad(f"contract {' '.join(key)}: its nodes do not cover every scenario once")
    pooled_x: dict[tuple[str, str, str, str], float] = defaultdict(float)
    for (w, b, sid, e, t), x in contract.items():
        cap = f.capacity(sid, e, t) + added(sid, e, t, w)
        if x < -tol or not le(x, cap):
            bad(f"contract {b} {sid} {e} {t} in {w}: {x} outside [0, {cap}]")
        need = ent[sid, b] * f.committed(sid, e, t)
        if not le(need, x):
            bad(f"contract {b} {sid} {e} {t} in {w}: {x} below its share {need} of the "
                "committed volume")
        if x > tol and (f.src[sid].mode == "spot" or sid in excluded):
            bad(f"contract {b} {sid} {e} {t}: {x} t from a spot or excluded source")
        pooled_x[w, sid, e, t] += x
    for (w, sid, e, t), x in pooled_x.items():
        cap = ent_s[sid] * f.capacity(sid, e, t) + added(sid, e, t, w)
        if not le(x, cap):
            bad(f"shared capacity: the members' contracts of {sid} {e} {t} in {w} sum to "
                f"{x}, above their entitlement {ent_s[sid]:.6g} x capacity (+ builds) = {cap}")

    # -- deliveries per member, and shared
    delivered: dict[tuple[str, str, str, str, str], float] = defaultdict(float)
    for r in read["deliveries"].itertuples():
        delivered[r.scenario, r.buyer, r.source, r.element, r.period] += float(r.delivered_t)
        if not _close(float(r.contracted_t), contract.get(
                (r.scenario, r.buyer, r.source, r.element, r.period), 0.0), tol, tol):
            bad(f"deliveries.csv contracted_t of {r.buyer} {r.source} {r.element} {r.period} "
                f"in {r.scenario} differs from allocation.csv")
    pooled_q: dict[tuple[str, str, str, str], float] = defaultdict(float)
    for (w, b, sid, e, t), q in delivered.items():
        bound = f.access(b, sid, e, t, w) * (f.capacity(sid, e, t) + added(sid, e, t, w))
        if q < -tol or not le(q, bound):
            bad(f"delivery {b} {sid} {e} {t} in {w}: {q} outside its access [0, {bound}]")
        if f.src[sid].mode == "contract" and not le(q, contract.get((w, b, sid, e, t), 0.0)):
            bad(f"delivery {b} {sid} {e} {t} in {w}: {q} exceeds the contract")
        if sid in excluded and q > tol:
            bad(f"delivery from excluded source {sid} to {b}: {q} t")
        pooled_q[w, sid, e, t] += q
    for (w, sid, e, t), q in pooled_q.items():
        a = f.shared(sid, e, t, w)
        cap = a * (ent_s[sid] * f.capacity(sid, e, t) + added(sid, e, t, w))
        if not le(q, cap):
            bad(f"shared capacity: deliveries of {sid} {e} {t} in {w} to the members sum to "
                f"{q}, above the output open to them {cap}")
    for (w, b, sid, e, t), x in contract.items():
        theta = f.src[sid].min_take or 0.0
        need_q = theta * f.access(b, sid, e, t, w) * x
        if theta > 0 and not le(need_q, delivered.get((w, b, sid, e, t), 0.0)):
            bad(f"min_take {b} {sid} {e} {t} in {w}: delivered below {need_q}")
    if history:
        for t, groups in partition.items():
            for group in groups if t != "root" else ():
                ws = sorted(group)
                for b in members:
                    for sid, e in f.arcs():
                        vals = [delivered.get((w, b, sid, e, t), 0.0) for w in ws]
                        if max(vals) - min(vals) > tol * max(1.0, max(map(abs, vals))):
                            bad(f"history: delivery {b} {sid} {e} {t} differs between the "
                                "scenarios of one node")

    # -- balances, transfers, stock
    bal = {(r.scenario, r.buyer, r.element, r.period): r for r in read["balance"].itertuples()}
    take = {e for s in inst.sources if (s.min_take or 0) > 0 and s.mode == "contract"
            and s.id not in excluded for e in elements if f.supply(s, e) is not None}
    moved: dict[tuple[str, str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
    shortage_w: dict[str, float] = defaultdict(float)
    shortage_b: dict[tuple[str, str], float] = defaultdict(float)
    shortage_be: dict[tuple[str, str, str], float] = defaultdict(float)
    for w in f.scen_ids:
        for b in members:
            for e in elements:
                prev = f.emap(b, "initial", e, 0.0)
                for t in f.periods:
                    r = bal.get((w, b, e, t))
                    if r is None:
                        bad(f"balance row missing for {b} {e} {t} in {w}")
                        continue
                    supply = sum(q for (w2, b2, _, e2, t2), q in delivered.items()
                                 if w2 == w and b2 == b and e2 == e and t2 == t)
                    dem = f.demand_of(b, e, t, w)
                    got, sent = float(r.received_t), float(r.sent_t)
                    lhs = prev + supply + got - sent + r.shortage_t - r.stock_t - r.surplus_t
                    if not _close(lhs, dem, tol, tol * 10):
                        bad(f"balance {b} {e} {t} in {w}: {prev} + {supply} + {got} - {sent} "
                            f"+ {r.shortage_t} - {r.stock_t} - {r.surplus_t} = {lhs}, "
                            f"demand {dem}")
                    if r.shortage_t < -tol or not le(r.shortage_t, dem):
                        bad(f"shortage {b} {e} {t} in {w}: {r.shortage_t} outside [0, "
                            f"demand {dem}]")
                    if r.stock_t < -tol or not le(r.stock_t, f.emap(b, "capacity", e,
                                                                     math.inf)):
                        bad(f"stock {b} {e} {t} in {w}: {r.stock_t} out of bounds")
                    if got < -tol or sent < -tol or (len(members) < 2 and (got > tol
                                                                             or sent > tol)):
                        bad(f"transfer {b} {e} {t} in {w}: received {got}, sent {sent}")
                    if r.surplus_t < -tol or (r.surplus_t > tol and e not in take):
                        bad(f"surplus {b} {e} {t} in {w}: {r.surplus_t} t sold, but no "
                            "contract of it has a minimum take")
                    if not pol.build_stock and not le(r.stock_t, prev):
                        bad(f"build_stock: false, but the stock of {b} {e} rises in {t}")
                    moved[w, e, t][0] += got
                    moved[w, e, t][1] += sent
                    shortage_w[w] += r.shortage_t
                    shortage_b[b, w] += r.shortage_t
                    shortage_be[b, e, w] += r.shortage_t
                    prev = r.stock_t
    for (w, e, t), (got, sent) in moved.items():
        if not _close(got, sent, tol, tol * 10):
            bad(f"transfers of {e} {t} in {w}: {got} t received, {sent} t sent")
    if history:
        for t, groups in partition.items():
            for group in groups if t != "root" else ():
                ws = sorted(group)
                for b in members:
                    for e in elements:
                        for col in ("shortage_t", "stock_t", "received_t", "sent_t"):
                            vals = [float(getattr(bal[w, b, e, t], col)) for w in ws
                                    if (w, b, e, t) in bal]
                            if vals and max(vals) - min(vals) > tol * max(1.0, max(vals)):
                                bad(f"history: {col} of {b} {e} {t} differs between the "
                                    "scenarios of one node")

    # -- each member's policy rules (its demand, its home)
    def country(s: Source, stage: str) -> str:
        return s.mined_in if stage == "mining" else s.refined_in

    def units(rule: Any) -> list[tuple[str, list[str]]]:
        chosen = [e for e in elements if rule.elements is None or e in rule.elements]
        if rule.per == "element":
            return [(e, [e]) for e in chosen]
        out, grouped = [], set()
        for g, group in inst.groups.items():
            grouped.update(group)
            inside = [e for e in group if e in chosen]
            if inside:
                out.append((g, inside))
        return out + [(e, [e]) for e in chosen if e not in grouped]

    def periods_of(rule: Any) -> list[str]:
        share = getattr(rule, "share", None)
        named = [_k(k) for k in share] if isinstance(share, dict) else f.periods
        return [t for t in f.periods if (rule.periods is None or t in map(_k, rule.periods))
                and t in named]

    def volume(b: str, pred: Any, unit: list[str], t: str, w: str, plan: bool) -> float:
        rows = contract if plan else delivered
        return sum(v for (w2, b2, sid, e, t2), v in rows.items()
                   if w2 == w and b2 == b and t2 == t and e in unit and pred(f.src[sid]))

    def need(b: str, unit: list[str], t: str, w: str, plan: bool) -> float:
        return sum(f.base_demand_of(b, e, t) if plan else f.demand_of(b, e, t, w) for e in unit)

    def applies(rule: Any, b: str) -> bool:
        return rule.buyers is None or b in rule.buyers

    for i, rule in enumerate(pol.max_single_country_share):
        plan = rule.applies_to == "plan"
        for b in members:
            if not applies(rule, b):
                continue
            home = set(f.buyer[b].home)
            for stage in rule.stages:
                capped = {country(s, stage) for s in inst.sources if s.id not in excluded} \
                    - home
                if rule.countries is not None:
                    capped &= set(rule.countries)
                for c in sorted(capped):
                    for label, unit in units(rule):
                        for t in periods_of(rule):
                            for w in f.scen_ids:
                                v = volume(b, lambda s: country(s, stage) == c, unit, t, w,
                                           plan)
                                cap = _by_period(rule.share, t) * need(b, unit, t, w, plan)
                                if not le(v, cap):
                                    bad(f"cap[{i}] {b} {c} {stage} {label} {t} {w}: {v} > "
                                        f"{cap}")
    floors = [(r, "domestic") for r in pol.min_domestic_share] + \
        [(r, "recycled") for r in pol.min_recycled_share]
    for rule, what in floors:
        plan = rule.applies_to == "plan"
        for b in members:
            if not applies(rule, b):
                continue
            home = set(f.buyer[b].home)
            pred = (lambda s, st=rule.stage, h=home: country(s, st) in h) \
                if what == "domestic" else (lambda s: s.recycled)
            for label, unit in units(rule):
                for t in periods_of(rule):
                    for w in f.scen_ids:
                        v = volume(b, pred, unit, t, w, plan)
                        req = _by_period(rule.share, t) * need(b, unit, t, w, plan)
                        if not le(req, v):
                            bad(f"{what} floor {b} {label} {t} {w}: {v} < {req}")
    deficit_cost: dict[tuple[str, str], float] = defaultdict(float)
    reported: dict[tuple, float] = {}
    if (folder / "stock_floors.csv").is_file():
        fl = read_table(folder / "stock_floors.csv", limits["stock_floors"],
                        columns=("rule", "buyer", "element", "period", "scenario", "deficit_t"),
                        dtype={"rule": str, "buyer": str, "element": str, "period": str,
                               "scenario": str})
        fl = _clean("stock_floors", fl, ("rule", "buyer", "element", "period", "scenario"),
                    ("deficit_t",), {"period": set(f.periods), "scenario": set(f.scen_ids)},
                    problems)
        reported = {(r.rule, r.buyer, str(r.element), r.period, r.scenario): float(r.deficit_t)
                    for r in fl.itertuples()}
    for i, rule in enumerate(pol.min_stock_days):
        frac = rule.days / inst.period_days
        label_rule = f"{summary['policy']}.min_stock_days[{i}]"
        for b in members:
            if not applies(rule, b):
                continue
            for label, unit in units(rule):
                for ti, t in enumerate(f.periods):
                    if t not in periods_of(rule):
                        continue
                    back = f.periods[max(0, ti - rule.refill):ti + 1]
                    for w in f.scen_ids:
                        if any(f.emergency_of(b, e, tb, w) for e in unit for tb in back):
                            continue
                        have = sum(bal[w, b, e, t].stock_t for e in unit if (w, b, e, t) in bal)
                        req = frac * need(b, unit, t, w, False)
                        short = reported.get((label_rule, b, label, t, w), 0.0)
                        if rule.deficit_cost is None and short > tol:
                            bad(f"stock days {b} {label} {t} {w}: a deficit for a hard floor")
                        if short < -tol or not le(req, have + short):
                            bad(f"stock days {b} {label} {t} {w}: {have} + {short} < {req}")
                        deficit_cost[b, w] += f.discount(t) * (rule.deficit_cost or 0.0) * short

    # -- costs: per member (model.analysis.buyers' attribution) and in total
    tc = inst.coalition.transfer_cost if inst.coalition is not None else {}
    cost_b: dict[tuple[str, str], float] = defaultdict(float)
    fee: dict[str, float] = defaultdict(float)
    for (w, b, sid, e, t), x in contract.items():
        c = f.discount(t) * f.src[sid].reservation_fee * f.price(sid, e, t) * x
        fee[w] += c
        cost_b[b, w] += c
    for (w, b, sid, e, t), q in delivered.items():
        cost_b[b, w] += f.discount(t) * f.paid_by(b, sid, e, t, w) * q
    last = f.periods[-1]
    for (w, b, e, t), r in bal.items():
        cost_b[b, w] += f.discount(t) * (
            f.emap(b, "shortage_penalty", e, 0.0) * r.shortage_t
            + f.emap(b, "holding_cost", e, 0.0) * r.stock_t
            - f.emap(b, "resale_price", e, 0.0) * r.surplus_t
            + _emap(tc, e, 0.0) * float(r.received_t))
        if t == last:
            cost_b[b, w] -= f.discount(t) * f.emap(b, "terminal_value", e, 0.0) * r.stock_t
    for (pid, tau, w), sz in size.items():     # shared by the entitlements of its source
        p = proj[pid]
        if sz <= tol:
            continue
        share = ent_s[p.source] if p.source else 1.0
        c = f.capital_charge(p, tau) * (p.cost * sz + (p.fixed_cost * share if p.integer
                                                        else 0.0))
        for b in members:
            cost_b[b, w] += c * (ent[p.source, b] / share if share > 0 else 1 / len(members))
    for (b, w), c in deficit_cost.items():
        cost_b[b, w] += c
    cost = {w: sum(cost_b[b, w] for b in members) for w in f.scen_ids}
    prob = f.prob
    expected = sum(prob[w] * cost[w] for w in f.scen_ids)
    ranked = sorted(f.scen_ids, key=lambda w: -cost[w])
    tail, acc, tail_cost = 1.0 - alpha, 0.0, 0.0
    for w in ranked:
        take_p = min(prob[w], max(tail - acc, 0.0))
        tail_cost += take_p * cost[w]
        acc += prob[w]
    cvar = tail_cost / tail
    theta = inst.risk.ambiguity.total_variation if inst.risk.ambiguity is not None else 0.0
    worst = _worst_expectation([cost[w] for w in f.scen_ids],
                               [prob[w] for w in f.scen_ids], theta)
    objective = (1 - lam) * (worst if theta > 0 else expected) + lam * cvar
    checks = {"expected_cost": expected, "cvar": cvar, "objective": objective,
              "expected_shortage_t": sum(prob[w] * shortage_w[w] for w in f.scen_ids),
              "worst_shortage_t": max((shortage_w[w] for w in f.scen_ids if prob[w] > 0),
                                      default=0.0)}
    for key, value in checks.items():
        if not _close(summary[key], value, 1e-6, 1e-4):
            bad(f"summary {key} = {summary[key]}, recomputed {value}")
    if os.path.lexists(folder / "scenarios.csv"):
        sc = read_table(folder / "scenarios.csv", limits["scenarios"],
                        columns=("scenario", "cost", "shortage_t"), dtype={"scenario": str})
        sc = _clean("scenarios", sc, ("scenario",), ("cost", "shortage_t"),
                    {"scenario": set(f.scen_ids)}, problems)
        for r in sc.itertuples():
            if not _close(r.cost, cost[r.scenario], 1e-6, 1e-4):
                bad(f"scenarios.csv {r.scenario}: cost {r.cost}, recomputed {cost[r.scenario]}")
            if not _close(r.shortage_t, shortage_w[r.scenario], 1e-6, 1e-6):
                bad(f"scenarios.csv {r.scenario}: shortage_t {r.shortage_t}, recomputed "
                    f"{shortage_w[r.scenario]}")
    # each member's cost and shortage
    if os.path.lexists(folder / "buyer_scenarios.csv"):
        bs = read_table(folder / "buyer_scenarios.csv", limits["buyer_scenarios"],
                        columns=("buyer", "scenario", "cost", "shortage_t"),
                        dtype={"buyer": str, "scenario": str})
        bs = _clean("buyer_scenarios", bs, ("buyer", "scenario"), ("cost", "shortage_t"),
                    {"buyer": set(members), "scenario": set(f.scen_ids)}, problems)
        seen = set()
        for r in bs.itertuples():
            seen.add((r.buyer, r.scenario))
            if not _close(r.cost, cost_b[r.buyer, r.scenario], 1e-6, 1e-4):
                bad(f"buyer_scenarios.csv {r.buyer} {r.scenario}: cost {r.cost}, recomputed "
                    f"{cost_b[r.buyer, r.scenario]}")
            if not _close(r.shortage_t, shortage_b[r.buyer, r.scenario], 1e-6, 1e-6):
                bad(f"buyer_scenarios.csv {r.buyer} {r.scenario}: shortage_t {r.shortage_t}, "
                    f"recomputed {shortage_b[r.buyer, r.scenario]}")
        if len(seen) != len(members) * len(f.scen_ids):
            bad("buyer_scenarios.csv: not one row per member and scenario")
    else:
        bad("buyer_scenarios.csv is missing")
    reported_b = summary.get("buyers") or {}
    if set(reported_b) != set(members):
        bad(f"summary buyers: {sorted(reported_b)}, the coalition is {members}")
    for b in members:
        rep = reported_b.get(b) or {}
        want_cost = sum(prob[w] * cost_b[b, w] for w in f.scen_ids)
        want_short = sum(prob[w] * shortage_b[b, w] for w in f.scen_ids)
        if not _close(float(rep.get("expected_cost", math.nan)), want_cost, 1e-6, 1e-4):
            bad(f"summary buyers.{b}.expected_cost = {rep.get('expected_cost')}, recomputed "
                f"{want_cost}")
        if not _close(float(rep.get("expected_shortage_t", math.nan)), want_short, 1e-6, 1e-6):
            bad(f"summary buyers.{b}.expected_shortage_t = {rep.get('expected_shortage_t')}, "
                f"recomputed {want_short}")
        for e in elements:
            have = (rep.get("expected_shortage_by_element_t") or {}).get(e, math.nan)
            want = sum(prob[w] * shortage_be[b, e, w] for w in f.scen_ids)
            if not _close(float(have), want, 1e-6, 1e-6):
                bad(f"summary buyers.{b}.expected_shortage_by_element_t.{e} = {have}, "
                    f"recomputed {want}")
    _cap(bad_list, problems)
    return problems


def coalition_problems(folder: Path, summary: dict[str, Any]) -> list[str]:
    """A coalition folder's own numbers (its runs are checked one by one): every
    coalition once, v(S) as its run reports it, the value of cooperation, the Shapley
    and proportional allocations recomputed, every allocation adding up to v(N), the
    core claims recomputed (sum over S <= v(S) within 1e-6 relative), allocations.csv
    as the summary says."""
    import itertools

    from ..input.instance import load_instance
    from ..input.folders import read_summary

    problems: list[str] = []
    inst = load_instance(folder / "instance.yaml", follow=False).instance
    if inst.buyers is None:
        return ["instance.yaml has no buyers: not a coalition folder's instance"]
    buyers = [b.id for b in inst.buyers]
    if summary.get("buyers") != buyers:
        problems.append(f"summary buyers {shown(summary.get('buyers'))}, the instance's are "
                        f"{buyers}")
        return problems
    names = ["+".join(c) for k in range(1, len(buyers) + 1)
             for c in itertools.combinations(buyers, k)]
    values = summary.get("values") or {}
    table = read_table(folder / "coalition.csv", columns=("coalition", "value"),
                       dtype={"coalition": str})
    listed = table["coalition"].tolist()
    if sorted(listed) != sorted(names):
        problems.append(f"coalition.csv lists {len(listed)} coalitions, not the "
                        f"{len(names)} of {', '.join(buyers)}")
    v: dict[str, float] = {}
    for name in names:
        run = folder / "runs" / name
        if not os.path.lexists(run / "summary.json"):
            problems.append(f"runs/{name} is missing")
            continue
        sub = read_summary(run)
        if sub.get("status") != "optimal":
            continue
        v[name] = float(sub["objective"])
        if sub.get("coalition") != name.split("+"):
            problems.append(f"runs/{name}: its coalition is {shown(sub.get('coalition'))}")
        if not _close(float(values.get(name, math.nan)), v[name], 1e-9, 1e-6):
            problems.append(f"summary values.{name} = {values.get(name)}, its run's objective "
                            f"is {v[name]}")
    for r in table.itertuples():
        if r.coalition in v and not _close(float(r.value), v[r.coalition], 1e-9, 1e-6):
            problems.append(f"coalition.csv {r.coalition}: value {r.value}, its run's "
                            f"objective is {v[r.coalition]}")
    if len(v) < len(names) or "value_of_cooperation" not in summary:
        return problems
    grand = "+".join(buyers)
    coop = sum(v[b] for b in buyers) - v[grand]
    if not _close(summary["value_of_cooperation"], coop, 1e-9, 1e-6):
        problems.append(f"summary value_of_cooperation {summary['value_of_cooperation']}, "
                        f"recomputed {coop}")
    n = len(buyers)
    shap = {}
    for i in buyers:
        others = [b for b in buyers if b != i]
        phi = 0.0
        for k in range(n):
            w = math.factorial(k) * math.factorial(n - k - 1) / math.factorial(n)
            for c in itertools.combinations(others, k):
                with_i = "+".join(b for b in buyers if b in c or b == i)
                phi += w * (v[with_i] - (v["+".join(c)] if c else 0.0))
        shap[i] = phi
    demand = {b.id: sum(_by_period(b.demand[e] if e in b.demand else
                                   b.demand.get("default", 0.0), t)
                        for e in inst.elements for t in inst.periods) for b in inst.buyers}
    total = sum(demand.values())
    prop = {b: v[grand] * demand[b] / total for b in buyers} if total > 0 else None
    allocations = summary.get("allocations") or {}
    claims = summary.get("in_core") or {}
    rows = read_table(folder / "allocations.csv",
                      columns=("rule", "buyer", "allocated_cost", "in_core"),
                      dtype={"rule": str, "buyer": str}, na_values=[""])
    for rule, alloc in allocations.items():
        if alloc is None:
            continue
        if sorted(alloc) != sorted(buyers):
            problems.append(f"allocation {rule}: not one cost per buyer")
            continue
        if not _close(sum(alloc.values()), v[grand], 1e-6, 1e-4):
            problems.append(f"allocation {rule} adds up to {sum(alloc.values())}, v(N) is "
                            f"{v[grand]}")
        want = {"shapley": shap, "proportional": prop}.get(rule)
        for b in buyers:
            if want is not None and not _close(alloc[b], want[b], 1e-6, 1e-4):
                problems.append(f"allocation {rule} of {b}: {alloc[b]}, recomputed {want[b]}")
            row = rows[(rows["rule"] == rule) & (rows["buyer"] == b)]
            if len(row) != 1 or not _close(float(row["allocated_cost"].iloc[0]), alloc[b],
                                           1e-9, 1e-6):
                problems.append(f"allocations.csv {rule} {b} differs from summary.json")
        ok = True
        for name, vs in v.items():
            members = name.split("+")
            excess = sum(alloc[b] for b in members) - vs
            if name != grand and excess > 1e-6 * max(1.0, abs(vs)):
                ok = False
        if claims.get(rule) is not ok:
            problems.append(f"summary in_core.{rule} = {claims.get(rule)}, recomputed {ok}")
    return problems
