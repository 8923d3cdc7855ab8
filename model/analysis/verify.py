"""Independent check of a run folder against its instance.

This module deliberately shares nothing with the model-building code: it
re-derives capacities, availabilities, prices and demand from the validated
instance with plain Python loops, reads the written tables (CSV) and the
summary, and recomputes every constraint of the instance and every reported
number. It is what `sourcing verify RUN_DIR` runs and what the tests run on
every solved instance. For scenarios generated from regimes and events it
takes only the paths of model.input.regimes' expansion (which regime in which
period, which events happen) and re-derives each scenario's id, probability
and data from the regime model itself.

The folder is read as untrusted: never through a symbolic link
(model.input.folders.read_member), and the instance copy must still have the
SHA-256 that summary.json records (an edited copy would make any check pass).
"""

from __future__ import annotations

import hashlib
import math
import os
from collections import defaultdict
from pathlib import Path
from typing import Any


import numpy as np
import pandas as pd

from ..errors import UsageError
from ..input.folders import has_table, FILES_OF, read_member, read_summary, read_table, sha256_of, \
    table_limits
from ..input.instance import load_instance
from ..input.regimes import scenario_list, scenario_paths
from ..input.schema import Instance, Policy, Selector, Source
from ..safety import MAX_ALPHA, shown

MAX_MESSAGES = 20          # per kind of problem in one table: then "and N more"


def _k(p: Any) -> str:
    return str(p)


def _matches(sel: Selector, src: Source, element: str | None = None) -> bool:
    """Whether a selector matches a source (and, for an `index` key, its supply of
    `element` is priced on one of the named indices)."""
    if sel.project is not None:      # names projects, not sources
        return False
    if sel.index is not None:
        sup = src.supply.get(element, src.supply.get("default")) if element else None
        wanted = sel.index if isinstance(sel.index, list) else [sel.index]
        if sup is None or sup.index not in wanted:
            return False
    for key in ("id", "mined_in", "refined_in", "mode", "recycled"):
        want = getattr(sel, key)
        if want is None:
            continue
        have = getattr(src, key)
        if (have not in want) if isinstance(want, list) else (have != want):
            return False
    return True


def _by_period(value: Any, period: Any) -> float:
    if isinstance(value, dict):
        for k, v in value.items():
            if _k(k) == _k(period):
                return float(v)
        return float(value.get("default", 0.0))
    return float(value)


def _emap(mapping: dict[str, Any], e: str, default: float) -> float:
    return float(mapping[e]) if e in mapping else float(mapping.get("default", default))


class _Facts:
    """The instance's numbers, recomputed independently of model.input.data."""

    def __init__(self, inst: Instance) -> None:
        self.inst = inst
        self.periods = [_k(p) for p in inst.periods]
        # scenarios from regimes and events: the paths of the expansion of the instance
        # whose SHA-256 summary.json records (model.input.regimes); their ids,
        # probabilities and data are re-derived here from the regime model itself
        self.paths = scenario_paths(inst)
        if self.paths is None:
            self.scen = scenario_list(inst)
            self.scen_ids = [w.id for w in self.scen] or ["base"]
            self.prob = {w.id: w.probability for w in self.scen} or {"base": 1.0}
        else:
            self.scen = []
            self.scen_ids = list(self.paths.ids)
            self.prob = {w: float(p) for w, p in zip(self.scen_ids, self.paths.probability)}
        self.by_id = {w.id: w for w in self.scen}
        self.row = {w: i for i, w in enumerate(self.scen_ids)}
        regimes = getattr(inst.scenarios, "regimes", None)
        self.states = list(regimes.states.values()) if regimes is not None else []
        self.src = {s.id: s for s in inst.sources}

    def rules(self, w: str, t: str, kind: str) -> list[Any]:
        """The rules of `kind` of scenario w that may hold in period t: a listed
        scenario's (filtered by the caller), or the `always` rules, the rules of the
        path's regime in t (they hold in every period it holds) and those of the
        events that happen."""
        if self.paths is None:
            sc = self.by_id.get(w)
            return list(getattr(sc, kind)) if sc is not None else []
        model, i = self.inst.scenarios, self.row[w]
        out = list(getattr(model.always, kind))
        if self.states:
            out += getattr(self.states[int(self.paths.regime[i, self.periods.index(t)])], kind)
        for event, hit in zip(model.events, self.paths.happens[i].tolist()):
            if hit:
                out += getattr(event, kind)
        return out

    def supply(self, s: Source, e: str) -> Any:
        if e in s.supply:
            return s.supply[e]
        return s.supply.get("default")

    def capacity(self, sid: str, e: str, t: str) -> float:
        s = self.src[sid]
        sup = self.supply(s, e)
        if sup is None:
            return 0.0
        i = self.periods.index(t)
        if s.available is not None:
            if s.available.from_ is not None and i < self.periods.index(_k(s.available.from_)):
                return 0.0
            if s.available.until is not None and i > self.periods.index(_k(s.available.until)):
                return 0.0
        return _by_period(sup.capacity, t)

    def price(self, sid: str, e: str, t: str) -> float:
        sup = self.supply(self.src[sid], e)
        if sup.price is not None:
            return _by_period(sup.price, t)
        paths = self.inst.indices[sup.index]        # premium x index path x multiplier
        path = paths[e] if e in paths else paths["default"]
        return (1.0 if sup.premium is None else sup.premium) * \
            float(paths.get("multiplier", 1.0)) * _by_period(path, t)

    def paid(self, sid: str, e: str, t: str, w: str) -> float:
        """Price per delivered tonne: shocked, clipped to the contract's floor and cap."""
        sup = self.supply(self.src[sid], e)
        p = self.price(sid, e, t) * self.price_multiplier(sid, e, t, w)
        if sup.price_floor is not None:
            p = max(p, sup.price_floor)
        if sup.price_cap is not None:
            p = min(p, sup.price_cap)
        return p

    def committed(self, sid: str, e: str, t: str) -> float:
        sup = self.supply(self.src[sid], e)
        if sup is None or sup.committed is None or self.capacity(sid, e, t) <= 0:
            return 0.0
        return _by_period(sup.committed, t)

    def emergency(self, e: str, t: str, w: str) -> bool:
        """An emergency disruption rule of w hits a source supplying e in period t."""
        for r in self.rules(w, t, "disruptions"):
            if r.emergency and self._hits(r, e, t) and any(
                    _matches(r.match, s, e) and self.supply(s, e) is not None
                    for s in self.inst.sources):
                return True
        return False

    @staticmethod
    def _hits(rule: Any, e: str, t: str) -> bool:
        return (rule.elements is None or e in rule.elements) and \
            (rule.periods is None or t in [_k(p) for p in rule.periods])

    def availability(self, sid: str, e: str, t: str, w: str) -> float:
        a = 1.0
        for r in self.rules(w, t, "disruptions"):
            if _matches(r.match, self.src[sid], e) and self._hits(r, e, t):
                a *= r.availability
        return a

    def price_multiplier(self, sid: str, e: str, t: str, w: str) -> float:
        m = 1.0
        for r in self.rules(w, t, "price_shocks"):
            if _matches(r.match, self.src[sid], e) and self._hits(r, e, t):
                m *= r.multiplier
        return m

    def base_demand(self, e: str, t: str) -> float:
        d = self.inst.demand
        return _by_period(d[e] if e in d else d.get("default", 0.0), t)

    def demand(self, e: str, t: str, w: str) -> float:
        m = 1.0
        for r in self.rules(w, t, "demand_shocks"):
            if self._hits(r, e, t):
                m *= r.multiplier
        return self.base_demand(e, t) * m

    def capacity_window(self, sid: str, t: str) -> float:
        """1 inside the source's available window, 0 outside."""
        s = self.src[sid]
        i = self.periods.index(t)
        if s.available is not None:
            if s.available.from_ is not None and i < self.periods.index(_k(s.available.from_)):
                return 0.0
            if s.available.until is not None and i > self.periods.index(_k(s.available.until)):
                return 0.0
        return 1.0

    def decidable(self, p: Any, t: str) -> bool:
        lo = self.periods.index(_k(p.decide.from_)) if p.decide and p.decide.from_ is not None \
            else 0
        hi = self.periods.index(_k(p.decide.until)) if p.decide and p.decide.until is not None \
            else len(self.periods) - 1
        if p.life is not None:      # a build online after the horizon cannot be decided
            hi = min(hi, len(self.periods) - 1 - p.build_time)
        return lo <= self.periods.index(t) <= hi

    def capital_charge(self, p: Any, tau: str) -> float:
        """Discounted charge per unit of capital for a build decided in `tau`: the
        discount of `tau`, or with a life the discounted annuities r / (1 - (1+r)^-L)
        from the first output to the end of the horizon, at most L periods."""
        if p.life is None:
            return self.discount(tau)
        r = self.inst.discount_rate
        annuity = 1.0 / p.life if r == 0 else r / (1.0 - (1.0 + r) ** -p.life)
        first = self.periods.index(tau) + p.build_time
        return sum(annuity * self.discount(t)
                   for t in self.periods[first:first + p.life])

    def online_decisions(self, p: Any, t: str) -> list[str]:
        """Periods whose builds of project p are online in period t."""
        i = self.periods.index(t)
        return [tau for j, tau in enumerate(self.periods)
                if j + p.build_time <= i and self.decidable(p, tau)]

    def arcs(self) -> list[tuple[str, str]]:
        """(source id, element) of every element a source offers."""
        return [(s.id, e) for s in self.inst.sources for e in self.inst.elements
                if e in s.supply or "default" in s.supply]

    def partition(self) -> dict[str, list[frozenset[str]]]:
        """Per period label (and "root"), the scenarios grouped by identical data so far:
        availability and price multiplier of every arc, and demand of every element."""
        out: dict[str, list[frozenset[str]]] = {"root": [frozenset(self.scen_ids)]}
        history: dict[str, tuple] = {w: () for w in self.scen_ids}
        arcs = self.arcs()
        for t in self.periods:
            for w in self.scen_ids:
                history[w] += (tuple(self.availability(sid, e, t, w) for sid, e in arcs),
                               tuple(self.price_multiplier(sid, e, t, w) for sid, e in arcs),
                               tuple(self.demand(e, t, w) for e in self.inst.elements))
            groups: dict[tuple, set[str]] = defaultdict(set)
            for w in self.scen_ids:
                groups[history[w]].add(w)
            out[t] = [frozenset(g) for g in groups.values()]
        return out

    def decided_in(self, sid: str, t: str) -> str:
        """The period whose information a contract of source `sid` for period t uses."""
        lead = self.src[sid].lead_time
        i = self.periods.index(t)
        if self.src[sid].mode != "contract" or lead is None or i - lead < 0:
            return "root"
        return self.periods[i - lead]

    def discount(self, t: str) -> float:
        # a negative power underflows to 0 rather than raising OverflowError
        return (1.0 + self.inst.discount_rate) ** -self.periods.index(t)


def _rows(matrix: dict[str, dict[str, float]], states: list[str]) -> list[list[float]]:
    """A transition matrix as rows over `states`, each divided by its sum."""
    out = []
    for s in states:
        row = [float(matrix[s].get(n, 0.0)) for n in states]
        total = math.fsum(row)
        out.append([v / total for v in row])
    return out


def regime_problems(f: _Facts) -> list[str]:
    """Scenarios from regimes and events: each id reads its path (initials, a full
    name where initials clash, +event), each probability is the definition's
    (start, transitions, events; a sample's times drawn / paths), an enumeration's
    probabilities sum to 1 (every path is there) and every path is possible."""
    paths, model = f.paths, f.inst.scenarios
    out: list[str] = []
    states = list(model.regimes.states) if model.regimes is not None else []
    initials = [s[0].upper() for s in states]
    token = [s if initials.count(c) > 1 else c for s, c in zip(states, initials)]
    first, step = [], []
    if states:
        start = {model.regimes.start: 1.0} if isinstance(model.regimes.start, str) \
            else model.regimes.start
        total = math.fsum(start.values())
        order = {_k(p): i for i, p in enumerate(f.inst.periods)}
        keys = sorted(model.regimes.by_period, key=lambda k: order[_k(k)])
        for i in range(len(f.periods)):
            later = [k for k in keys if order[_k(k)] <= i]
            step.append(_rows(model.regimes.by_period[later[-1]] if later
                              else model.regimes.transition, states))
        first = [math.fsum(start.get(s, 0.0) / total * step[0][j][n]
                           for j, s in enumerate(states)) for n in range(len(states))]
    for i, w in enumerate(f.scen_ids):
        path = [int(r) for r in paths.regime[i]]
        hit = [bool(h) for h in paths.happens[i]]
        fired = [e.id for e, h in zip(model.events, hit) if h]
        want = ("-".join(token[r] for r in path) + "".join("+" + e for e in fired)) \
            if states else ("+".join(fired) or "normal")
        if w != want:
            out.append(f"scenario {w}: its path reads '{want}'")
        p = first[path[0]] if states else 1.0
        for t in range(1, len(path)):
            p *= step[t][path[t - 1]][path[t]]
        for e, h in zip(model.events, hit):
            p *= e.probability if h else 1.0 - e.probability
        if p <= 0:
            out.append(f"scenario {w}: its path has probability 0 in the chain")
        if paths.sampled:
            if not _close(f.prob[w], int(paths.draws[i]) / paths.sample_paths, 1e-12, 0.0):
                out.append(f"scenario {w}: probability {f.prob[w]}, drawn "
                           f"{paths.draws[i]} of {paths.sample_paths} times")
        elif not _close(f.prob[w], p, 1e-9, 1e-15):
            out.append(f"scenario {w}: probability {f.prob[w]}, by its path {p}")
    if paths.sampled and int(paths.draws.sum()) != paths.sample_paths:
        out.append(f"the sample's draws add up to {int(paths.draws.sum())}, not "
                   f"{paths.sample_paths}")
    if not paths.sampled and abs(math.fsum(f.prob.values()) - 1.0) > 1e-9:
        out.append(f"the enumerated scenarios' probabilities sum to "
                   f"{math.fsum(f.prob.values())}, not 1: paths are missing")
    return out[:10]


def _worst_expectation(costs: list[float], probs: list[float], theta: float) -> float:
    """max_q sum q C over sum |q - p| <= theta: (theta/2) max C + (1 - theta/2) CVaR_{theta/2}
    (the mean of the worst 1 - theta/2 of probability)."""
    if theta <= 0:
        return sum(p * c for p, c in zip(probs, costs))
    top = max((c for c, p in zip(costs, probs)), default=0.0)
    tail = 1.0 - theta / 2
    if tail <= 0:
        return top
    acc, mass = 0.0, 0.0
    for c, p in sorted(zip(costs, probs), key=lambda cp: -cp[0]):
        take = min(p, max(tail - mass, 0.0))
        acc += take * c
        mass += p
    return theta / 2 * top + acc


def _close(a: float, b: float, rel: float = 1e-6, abs_: float = 1e-6) -> bool:
    return abs(a - b) <= abs_ + rel * max(abs(a), abs(b))


def instance_problems(folder: Path, summary: dict[str, Any]) -> list[str]:
    """The instance copy is the one the run was made from (its SHA-256 as recorded)."""
    path = Path(folder) / "instance.yaml"
    if not os.path.lexists(path):
        return ["instance.yaml is missing: the run cannot be checked"]
    digest = hashlib.sha256(read_member(path)).hexdigest()
    if digest != summary.get("instance_sha256"):
        return [f"instance.yaml has SHA-256 {digest}, but summary.json records "
                f"{summary.get('instance_sha256')}: the copy was changed after the run"]
    return []


def file_problems(folder: Path, summary: dict[str, Any]) -> list[str]:
    """Every file of the folder still has the SHA-256 that summary.json recorded when
    the folder was written (``files``); a file of ours without one cannot be vouched
    for. The tables are also rechecked on their own (verify_run); allocation.xlsx,
    the charts and report.html are covered by their hash alone."""
    files = summary.get("files")
    kind = summary.get("kind", "run")
    present = sorted(e.name for e in os.scandir(folder)
                     if e.name != "summary.json" and not e.is_dir(follow_symlinks=False))
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        ours = [n for n in present if n in FILES_OF.get(kind, ())]
        return [f"summary.json records no SHA-256 of the folder's files (written by an "
                f"earlier version?), so {', '.join(ours[:6]) or 'its files'} cannot be "
                "checked against changes"] if ours else []
    problems = []
    for name in present:
        if name in files:
            digest = sha256_of(folder / name)
            if digest != files[name]:
                problems.append(f"{name} has SHA-256 {digest}, but summary.json records "
                                f"{shown(files[name], 70)}: the file was changed after "
                                "it was written")
        elif name in FILES_OF.get(kind, ()):
            problems.append(f"{name}: no SHA-256 recorded in summary.json (files), so it "
                            "cannot be checked")
    for name in files:
        if name not in present:
            problems.append(f"{shown(name)} is recorded in summary.json (files) but missing "
                            "from the folder")
    return problems


def _number(path: Path, summary: dict[str, Any], *keys: str, lo: float = -math.inf,
            hi: float = math.inf) -> float:
    """summary[k1][k2]... as a finite number in [lo, hi], or a UsageError naming it."""
    value: Any = summary
    for k in keys:
        if not isinstance(value, dict) or k not in value:
            raise UsageError(f"{path}: no {'.'.join(keys)} (not a run summary written by "
                             "sourcing)")
        value = value[k]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not lo <= value <= hi:
        raise UsageError(f"{path}: {'.'.join(keys)} is {shown(value)}, not a number "
                         f"in [{lo:g}, {hi:g}]")
    return float(value)


def _check_summary(folder: Path, summary: dict[str, Any]) -> None:
    """The keys verify reads from an optimal run's summary, with their types (exit 2
    otherwise): a summary that lacks one was not written by sourcing."""
    path = folder / "summary.json"
    if not isinstance(summary.get("policy"), str):
        raise UsageError(f"{path}: no policy name (not a run summary written by sourcing)")
    _number(path, summary, "risk", "lambda", lo=0.0, hi=1.0)
    _number(path, summary, "risk", "alpha", lo=0.0, hi=MAX_ALPHA)
    for key in ("expected_cost", "cvar", "objective", "expected_shortage_t",
                "worst_shortage_t"):
        _number(path, summary, key)
    for stage in ("mining", "refining"):
        _number(path, summary, "max_single_country_share", stage, "share")


def _cap(messages: list[str], out: list[str]) -> None:
    out.extend(messages[:MAX_MESSAGES])
    if len(messages) > MAX_MESSAGES:
        out.append(f"... and {len(messages) - MAX_MESSAGES:,} more like the above")


def _clean(name: str, table: pd.DataFrame, keys: tuple[str, ...], numbers: tuple[str, ...],
           known: dict[str, set[str]], problems: list[str]) -> pd.DataFrame:
    """The rows of a table that can be checked; the others are problems naming the table
    and the row (its line in the file): a value that is not a finite number, an id the
    instance does not have, a key given twice (the second row is reported; only the
    first is checked further, so no duplicate can slip past the checks)."""
    rows = np.arange(len(table)) + 2              # line 1 is the header
    keep = np.ones(len(table), dtype=bool)
    bad: list[str] = []
    for col in numbers:
        if col not in table.columns:
            continue
        values = pd.to_numeric(table[col], errors="coerce").astype(float)
        wrong = ~np.isfinite(values.to_numpy())
        bad += [f"{name}.csv row {rows[i]}: {col} {shown(table[col].iloc[i])} is not a "
                "finite number" for i in np.flatnonzero(wrong)]
        keep &= ~wrong
        table[col] = values
    for col, allowed in known.items():
        if col not in table.columns:
            continue
        wrong = ~table[col].astype(str).isin(allowed).to_numpy()
        bad += [f"{name}.csv row {rows[i]}: unknown {col} {shown(table[col].iloc[i])}"
                for i in np.flatnonzero(wrong & keep)]
        keep &= ~wrong
    present = [k for k in keys if k in table.columns]
    key_text = table[present].astype(str).agg("|".join, axis=1) if present else \
        pd.Series([""] * len(table))
    first: dict[str, int] = {}
    for i, key in enumerate(key_text):
        if key in first:
            bad.append(f"{name}.csv row {rows[i]}: duplicate of row {rows[first[key]]} "
                       f"({', '.join(f'{k} {shown(v)}' for k, v in zip(present, key.split('|')))})")
            keep[i] = False
        else:
            first[key] = i
    _cap(bad, problems)
    return table[keep]


def runs_to_verify(folder: str | Path) -> list[tuple[Path, str | None, list[str]]]:
    """(run folder, status, problems found so far) of a run or comparison folder.

    A comparison folder gives its runs (runs/<policy>), preceded by itself with
    status None if its own instance copy was changed. A sweep folder holds no
    allocation: a UsageError.
    """
    folder = Path(folder)
    summary = read_summary(folder)
    kind = summary.get("kind", "run")
    if kind in ("sweep", "projects", "robustness"):
        raise UsageError(f"{folder} is a {kind} folder: it holds a table of solves, no "
                         "allocation to verify (solve one point with `sourcing solve` and "
                         "--set or --policy to check it)")
    if kind == "run":
        return [(folder, str(summary["status"]), [])]
    top = instance_problems(folder, summary) + file_problems(folder, summary)
    if kind == "coalition" and not top:    # several buyers: the game's numbers
        from .verify_buyers import coalition_problems

        top = coalition_problems(folder, summary)
    out: list[tuple[Path, str | None, list[str]]] = [(folder, None, top)] if top else []
    runs = folder / "runs"
    for entry in sorted(os.scandir(runs), key=lambda e: e.name) if runs.is_dir() else []:
        if entry.is_symlink() or not entry.is_dir(follow_symlinks=False):
            raise UsageError(f"{entry.path} is not a run folder (a link or a file)")
        sub = read_summary(Path(entry.path))
        out.append((Path(entry.path), str(sub.get("status")), []))
    return out


def verify_run(folder: str | Path, tol: float = 1e-6) -> list[str]:
    """Every violated constraint or misreported number of a run folder (empty = all hold)."""
    folder = Path(folder)
    summary = read_summary(folder)
    at_limit = bool((summary.get("mip") or {}).get("plan_at_limit"))   # a MIP's best plan
    if summary["status"] != "optimal" and not at_limit:
        problems = instance_problems(folder, summary) if os.path.lexists(
            folder / "instance.yaml") else []
        return problems + file_problems(folder, summary) + (
            [] if not os.path.lexists(folder / "allocation.csv") else [
                f"status {summary['status']} but allocation.csv was written"])
    _check_summary(folder, summary)
    problems = instance_problems(folder, summary)
    if problems:
        return problems
    problems += file_problems(folder, summary)
    # every rule comes from the hashed instance, never from summary.json
    inst = load_instance(folder / "instance.yaml", follow=False).instance
    if summary["policy"] != "none" and summary["policy"] not in inst.policies:
        return problems + [f"summary.json names policy {shown(summary['policy'])}, which "
                           f"instance.yaml does not define (policies: "
                           f"{', '.join(['none', *inst.policies])}): its rules cannot be "
                           "checked"]
    if inst.buyers is not None:     # several buyers: their own checks (same principles)
        from .verify_buyers import verify_buyers_run

        return verify_buyers_run(folder, summary, inst, problems, tol)
    f = _Facts(inst)
    limits = table_limits(inst)
    ids = {"source": set(f.src), "element": set(inst.elements), "period": set(f.periods),
           "scenario": set(f.scen_ids)}
    spec = {"allocation": (("source", "element", "period", "node"), ("contracted_t",),
                           ("source", "element", "period")),
            "deliveries": (("scenario", "source", "element", "period"),
                           ("contracted_t", "delivered_t"),
                           ("scenario", "source", "element", "period")),
            "balance": (("scenario", "element", "period"),
                        ("shortage_t", "stock_t", "surplus_t", "avoided_t"),
                        ("scenario", "element", "period"))}
    read = {}
    for n, (keys, numbers, known) in spec.items():
        needed = keys + numbers[:2] + (("decided_in",) if n == "allocation" else ())
        table = read_table(folder / f"{n}.csv", limits[n], columns=needed,
                           dtype={k: str for k in keys})
        read[n] = _clean(n, table, keys, numbers, {k: ids[k] for k in known}, problems)
    lam = summary["risk"]["lambda"]
    alpha = summary["risk"]["alpha"]
    pol = inst.policies.get(summary["policy"], Policy())
    excluded = {s.id for s in inst.sources if any(_matches(sel, s) for sel in pol.exclude)}
    history = inst.information == "history"

    def bad(msg: str) -> None:
        problems.append(msg)

    def le(a: float, b: float) -> bool:
        return a <= b + tol * max(1.0, abs(b))

    # -- the scenarios: the run's ids and probabilities are the instance's (for scenarios
    # from regimes and events: the expansion of the hashed instance)
    if f.paths is not None:
        problems += regime_problems(f)
    if os.path.lexists(folder / "scenarios.csv"):
        listed = read_table(folder / "scenarios.csv", dtype={"scenario": str},
                            usecols=["scenario", "probability"])
        ids = listed["scenario"].tolist()
        if ids != f.scen_ids:
            extra = sorted(set(ids) - set(f.scen_ids))[:3]
            gone = sorted(set(f.scen_ids) - set(ids))[:3]
            bad(f"scenarios.csv: the scenarios are not the instance's ({len(ids)} listed, "
                f"{len(f.scen_ids)} in the instance" + (f"; not in it: {extra}" if extra else "")
                + (f"; missing: {gone}" if gone else "") + ")")
        else:
            for w, p in zip(ids, listed["probability"].astype(float)):
                if not _close(p, f.prob[w], 1e-12, 1e-15):
                    bad(f"scenarios.csv: {w} has probability {p}, the instance {f.prob[w]}")
                    break
    else:
        bad("scenarios.csv is missing")

    # -- what is known when: the tree, node decisions, contracts' information
    partition = f.partition()
    tree_rows = read_table(folder / "tree.csv", limits["tree"], columns=("node", "period",
                                                                         "scenarios"),
                           dtype=str, na_values=[]) \
        if (folder / "tree.csv").is_file() else None
    node_scen: dict[str, frozenset[str]] = {}
    if tree_rows is None:
        bad("tree.csv is missing")
    else:
        tree_rows = _clean("tree", tree_rows, ("node",), (), {"period": {"", *f.periods}},
                           problems)
        for r in tree_rows.itertuples():
            node_scen[r.node] = frozenset(r.scenarios.split(";"))
        for t_row, groups in partition.items():
            listed = {node_scen[r.node] for r in tree_rows.itertuples()
                      if (r.period or "root") == t_row}
            if listed != set(groups):
                bad(f"tree.csv: the nodes of {t_row} do not group the scenarios by their data "
                    f"so far ({len(listed)} listed, {len(groups)} expected)")

    # -- investment: sizes per node, repeated per scenario; capacity they add
    size: dict[tuple[str, str, str], float] = defaultdict(float)     # (project, period, w)
    proj = {p.id: p for p in inst.projects}
    banned = {v for sel in pol.exclude if sel.project is not None
              for v in (sel.project if isinstance(sel.project, list) else [sel.project])}
    if inst.projects:
        table = read_table(folder / "projects.csv", limits["projects"],
                           columns=("project", "period_decided", "node", "size"),
                           dtype={"project": str, "period_decided": str, "node": str}) \
            if (folder / "projects.csv").is_file() \
            else None
        if table is None:
            bad("projects.csv is missing")
        else:
            table = _clean("projects", table, ("project", "period_decided", "node"),
                           ("size",), {"project": set(proj),
                                       "period_decided": set(f.periods)}, problems)
        for r in (table.itertuples() if table is not None else ()):
            p = proj.get(r.project)
            if p is None:
                bad(f"projects.csv: unknown project {r.project}")
                continue
            scen = node_scen.get(str(r.node), frozenset())
            if r.period_decided in partition and scen not in partition[r.period_decided]:
                bad(f"build {r.project} {r.period_decided} at node {r.node}: its scenarios are "
                    "not a node of that period")
            if not f.decidable(p, r.period_decided):
                bad(f"build {r.project} decided in {r.period_decided}, outside its decide window")
            if r.project in banned and r.size > tol:
                bad(f"build {r.project}: the policy excludes it")
            if p.integer and not (_close(r.size, 0.0, tol, tol)
                                  or _close(r.size, p.max_size, tol, tol)):
                bad(f"build {r.project}: size {r.size} of an all-or-nothing project")
            for w in scen:
                size[r.project, r.period_decided, w] += float(r.size)
        for pid, p in proj.items():
            for w in f.scen_ids:
                total = sum(size.get((pid, t, w), 0.0) for t in f.periods)
                if total < -tol or not le(total, p.max_size):
                    bad(f"build {pid} in {w}: total size {total} above max_size {p.max_size}")
        for rule in pol.build:
            for w in f.scen_ids:
                total = sum(size.get((rule.project, t, w), 0.0) for t in f.periods)
                if not le(rule.min_size, total):
                    bad(f"build rule {rule.project} in {w}: size {total} < {rule.min_size}")

    def added(sid: str, e: str, t: str, w: str) -> float:
        """Capacity the scenario's builds add to source sid's element e in period t."""
        if f.capacity_window(sid, t) == 0.0:
            return 0.0
        return sum(size.get((p.id, tau, w), 0.0) * _by_period(p.capacity[e], t)
                   for p in inst.projects if p.source == sid and e in p.capacity
                   for tau in f.online_decisions(p, t))

    def avoided_cap(e: str, t: str, w: str) -> float:
        return sum(size.get((p.id, tau, w), 0.0) * _by_period(p.reduces[e], t)
                   for p in inst.projects if e in p.reduces for tau in f.online_decisions(p, t))

    # -- first stage: contracts, one value per decision node, repeated per scenario
    contract: dict[tuple[str, str, str, str], float] = {}
    nodes_of: dict[tuple[str, str, str], set[frozenset[str]]] = defaultdict(set)
    for r in read["allocation"].itertuples():
        key = (r.source, r.element, r.period)
        want = f.decided_in(r.source, r.period)
        if str(r.decided_in) != want:
            bad(f"contract {r.source} {r.element} {r.period}: decided_in {r.decided_in}, but "
                f"its lead time makes it {want}")
        scen = node_scen.get(str(r.node), frozenset())
        if want in partition and scen not in partition[want]:
            bad(f"contract {r.source} {r.element} {r.period} at node {r.node}: its scenarios "
                f"are not a node of {want}, so it depends on later information")
        nodes_of[key].add(scen)
        for w in scen:
            contract[w, *key] = float(r.contracted_t)
    for key, scen_sets in nodes_of.items():
        covered = sorted(w for sset in scen_sets for w in sset)
        if covered != sorted(f.scen_ids):
            bad(f"contract {' '.join(key)}: its nodes do not cover every scenario once")
    for (w, sid, e, t), x in contract.items():
        cap = f.capacity(sid, e, t) + added(sid, e, t, w)
        if x < -tol or not le(x, cap):
            bad(f"contract {sid} {e} {t} in {w}: {x} outside [0, {cap}]")
        if not le(f.committed(sid, e, t), x):
            bad(f"contract {sid} {e} {t} in {w}: {x} below the {f.committed(sid, e, t)} t "
                "committed")
        if x > tol and (f.src[sid].mode == "spot" or sid in excluded):
            bad(f"contract {sid} {e} {t}: {x} t contracted from a spot or excluded source")

    # -- second stage: deliveries
    delivered: dict[tuple[str, str, str, str], float] = defaultdict(float)
    for r in read["deliveries"].itertuples():
        delivered[r.scenario, r.source, r.element, r.period] += float(r.delivered_t)
        if not _close(float(r.contracted_t), contract.get((r.scenario, r.source, r.element,
                                                           r.period), 0.0), tol, tol):
            bad(f"deliveries.csv contracted_t of {r.source} {r.element} {r.period} in "
                f"{r.scenario} differs from allocation.csv")
    for (w, sid, e, t), q in delivered.items():
        bound = f.availability(sid, e, t, w) * (f.capacity(sid, e, t) + added(sid, e, t, w))
        if q < -tol or not le(q, bound):
            bad(f"delivery {sid} {e} {t} in {w}: {q} outside [0, {bound}]")
        if f.src[sid].mode == "contract" and not le(q, contract.get((w, sid, e, t), 0.0)):
            bad(f"delivery {sid} {e} {t} in {w}: {q} exceeds the contract "
                f"{contract.get((w, sid, e, t), 0.0)}")
        if sid in excluded and q > tol:
            bad(f"delivery from excluded source {sid}: {q} t")
    for (w, sid, e, t), x in contract.items():      # take-or-pay minimum
        theta = f.src[sid].min_take or 0.0
        need_q = theta * f.availability(sid, e, t, w) * x
        if theta > 0 and not le(need_q, delivered.get((w, sid, e, t), 0.0)):
            bad(f"min_take {sid} {e} {t} in {w}: delivered "
                f"{delivered.get((w, sid, e, t), 0.0)} < {need_q}")
    if history:          # the instance's rule (hashed), not what summary.json says
        for t, groups in partition.items():
            if t == "root":
                continue
            for group in groups:
                ws = sorted(group)
                for sid, e in f.arcs():
                    vals = [delivered.get((w, sid, e, t), 0.0) for w in ws]
                    if max(vals) - min(vals) > tol * max(1.0, max(map(abs, vals))):
                        lo, hi = ws[vals.index(min(vals))], ws[vals.index(max(vals))]
                        bad(f"history: delivery {sid} {e} {t} differs between scenarios "
                            f"{lo} ({min(vals)} t) and {hi} ({max(vals)} t) of one node")

    by_wt: dict[tuple[str | None, str], list[tuple[str, str, float]]] = defaultdict(list)
    for (w, sid, e, t), q in delivered.items():
        by_wt[w, t].append((sid, e, q))
    plan_wt: dict[tuple[str, str], list[tuple[str, str, float]]] = defaultdict(list)
    for (w, sid, e, t), x in contract.items():
        plan_wt[w, t].append((sid, e, x))

    take_elements = {e for s in inst.sources if (s.min_take or 0) > 0 and s.mode == "contract"
                     and s.id not in excluded for e in inst.elements
                     if f.supply(s, e) is not None}

    # -- balance and stock
    bal = {(r.scenario, r.element, r.period): r for r in read["balance"].itertuples()}
    stock_cap = {e: _emap(inst.stock.capacity, e, math.inf) for e in inst.elements}
    shortage_w: dict[str, float] = defaultdict(float)
    for w in f.scen_ids:
        for e in inst.elements:
            prev = _emap(inst.stock.initial, e, 0.0)
            for t in f.periods:
                r = bal.get((w, e, t))
                if r is None:
                    bad(f"balance row missing for {e} {t} in {w}")
                    continue
                supply = sum(q for _, e2, q in by_wt[w, t] if e2 == e)
                dem = f.demand(e, t, w)
                sold = float(getattr(r, "surplus_t", 0.0))
                saved = float(getattr(r, "avoided_t", 0.0))
                if saved < -tol or not le(saved, avoided_cap(e, t, w)):
                    bad(f"avoided demand {e} {t} in {w}: {saved} t, builds allow "
                        f"{avoided_cap(e, t, w)}")
                lhs = prev + supply + r.shortage_t - r.stock_t - sold + saved
                if not _close(lhs, dem, tol, tol * 10):
                    bad(f"balance {e} {t} in {w}: {prev} + {supply} + {r.shortage_t} - "
                        f"{r.stock_t} - {sold} = {lhs}, demand {dem}")
                if sold < -tol or (sold > tol and e not in take_elements):
                    bad(f"surplus {e} {t} in {w}: {sold} t sold, but no contract of {e} "
                        "has a minimum take")
                if r.shortage_t < -tol or r.stock_t < -tol or not le(r.stock_t, stock_cap[e]):
                    bad(f"stock or shortage out of bounds for {e} {t} in {w}")
                shortage_w[w] += r.shortage_t
                if not pol.build_stock and not le(r.stock_t, prev):
                    bad(f"build_stock: false, but the stock of {e} rises in {t} in {w}: "
                        f"{prev} -> {r.stock_t}")
                prev = r.stock_t
    if history:
        for t, node_groups in partition.items():
            for group in node_groups if t != "root" else ():
                ws = sorted(group)
                for e in inst.elements:
                    for col in ("shortage_t", "stock_t"):
                        vals = [float(getattr(bal[w, e, t], col)) for w in ws
                                if (w, e, t) in bal]
                        if vals and max(vals) - min(vals) > tol * max(1.0, max(vals)):
                            bad(f"history: {col} of {e} {t} differs between the scenarios "
                                f"of one node ({', '.join(ws[:3])})")

    # -- policies
    home = inst.home
    groups = inst.groups

    def units(rule: Any) -> list[tuple[str, list[str]]]:
        chosen = [e for e in inst.elements if rule.elements is None or e in rule.elements]
        if rule.per == "element":
            return [(e, [e]) for e in chosen]
        out, grouped = [], set()
        for g, members in groups.items():
            grouped.update(members)
            inside = [e for e in members if e in chosen]
            if inside:
                out.append((g, inside))
        return out + [(e, [e]) for e in chosen if e not in grouped]

    def periods_of(rule: Any) -> list[str]:
        share = getattr(rule, "share", None)        # a phased share names its periods
        named = [_k(k) for k in share] if isinstance(share, dict) else f.periods
        return [t for t in f.periods if (rule.periods is None or t in map(_k, rule.periods))
                and t in named]

    def share_in(rule: Any, t: str) -> float:
        return _by_period(rule.share, t)

    def volume(pred: Any, unit: list[str], t: str, w: str, plan: bool) -> float:
        rows = plan_wt[w, t] if plan else by_wt[w, t]
        return sum(v for sid, e, v in rows if e in unit and pred(f.src[sid]))

    def need(unit: list[str], t: str, w: str, plan: bool) -> float:
        return sum(f.base_demand(e, t) if plan else f.demand(e, t, w) for e in unit)

    def country(s: Source, stage: str) -> str:
        return s.mined_in if stage == "mining" else s.refined_in

    for i, rule in enumerate(pol.max_single_country_share):
        plan = rule.applies_to == "plan"
        for stage in rule.stages:
            capped = {country(s, stage) for s in inst.sources} - {home}
            if rule.countries is not None:
                capped &= set(rule.countries)
            for c in sorted(capped):
                for label, unit in units(rule):
                    for t in periods_of(rule):
                        for w in f.scen_ids:
                            v = volume(lambda s: country(s, stage) == c, unit, t, w, plan)
                            cap = share_in(rule, t) * need(unit, t, w, plan)
                            if not le(v, cap):
                                bad(f"cap[{i}] {c} {stage} {label} {t} {w}"
                                    f"{' (plan)' if plan else ''}: {v} > {cap}")
    floors = [(r, lambda s, st=r.stage: country(s, st) == home, "domestic")
              for r in pol.min_domestic_share] + \
             [(r, lambda s: s.recycled, "recycled") for r in pol.min_recycled_share]
    for rule, pred, what in floors:
        plan = rule.applies_to == "plan"
        for label, unit in units(rule):
            for t in periods_of(rule):
                for w in f.scen_ids:
                    v = volume(pred, unit, t, w, plan)
                    req = share_in(rule, t) * need(unit, t, w, plan)
                    if not le(req, v):
                        bad(f"{what} floor {label} {t} {w}{' (plan)' if plan else ''}: "
                            f"{v} < {req}")
    deficit_cost: dict[str, float] = defaultdict(float)
    floors = read_table(folder / "stock_floors.csv", limits["stock_floors"],
                        columns=("rule", "element", "period", "scenario", "deficit_t"),
                        dtype={"rule": str, "element": str, "period": str, "scenario": str}) \
        if (folder / "stock_floors.csv").is_file() \
        else None
    if floors is not None:
        floors = _clean("stock_floors", floors, ("rule", "element", "period", "scenario"),
                        ("deficit_t",), {"period": set(f.periods),
                                         "scenario": set(f.scen_ids)}, problems)
    reported = {} if floors is None else {
        (r.rule, str(r.element), r.period, r.scenario): float(r.deficit_t)
        for r in floors.itertuples()}
    for i, rule in enumerate(pol.min_stock_days):
        frac = rule.days / inst.period_days
        label_rule = f"{summary['policy']}.min_stock_days[{i}]"
        for label, unit in units(rule):
            for ti, t in enumerate(f.periods):
                if t not in periods_of(rule):
                    continue
                back = f.periods[max(0, ti - rule.refill):ti + 1]
                for w in f.scen_ids:
                    if any(f.emergency(e, tb, w) for e in unit for tb in back):
                        continue          # released: an emergency or its refill periods
                    have = sum(bal[w, e, t].stock_t for e in unit)
                    req = frac * need(unit, t, w, False)
                    short = reported.get((label_rule, label, t, w), 0.0)
                    if rule.deficit_cost is None and short > tol:
                        bad(f"stock days {label} {t} {w}: a deficit of {short} t reported for "
                            "a hard floor")
                    if short < -tol or not le(req, have + short):
                        bad(f"stock days {label} {t} {w}: {have} + deficit {short} < {req}")
                    deficit_cost[w] += f.discount(t) * (rule.deficit_cost or 0.0) * short

    # -- costs and reported numbers
    fee: dict[str, float] = defaultdict(float)
    for (w, sid, e, t), x in contract.items():
        fee[w] += f.discount(t) * f.src[sid].reservation_fee * f.price(sid, e, t) * x
    cost = {}
    for w in f.scen_ids:
        c = fee[w]
        c += sum(f.discount(t) * f.paid(sid, e, t, w) * q
                 for (w2, sid, e, t), q in delivered.items() if w2 == w)
        for (w2, e, t), r in bal.items():
            if w2 == w:
                c += f.discount(t) * (_emap(inst.shortage_penalty, e, 0.0) * r.shortage_t
                                      + _emap(inst.stock.holding_cost, e, 0.0) * r.stock_t
                                      - _emap(inst.resale_price, e, 0.0)
                                      * float(getattr(r, "surplus_t", 0.0)))
        for (pid, tau, w2), sz in size.items():
            if w2 == w and sz > tol:
                p = proj[pid]
                c += f.capital_charge(p, tau) * (p.cost * sz
                                                 + (p.fixed_cost if p.integer else 0.0))
        last = f.periods[-1]
        for e in inst.elements:        # stock left at the end is credited
            r = bal.get((w, e, last))
            if r is not None:
                c -= f.discount(last) * _emap(inst.stock.terminal_value, e, 0.0) * r.stock_t
        cost[w] = c + deficit_cost[w]
    expected = sum(f.prob[w] * cost[w] for w in f.scen_ids)
    ranked = sorted(f.scen_ids, key=lambda w: -cost[w])
    tail, acc, tail_cost = 1.0 - alpha, 0.0, 0.0
    for w in ranked:
        take = min(f.prob[w], max(tail - acc, 0.0))
        tail_cost += take * cost[w]
        acc += f.prob[w]
    cvar = tail_cost / tail
    for pol_budget in pol.budget:
        if not le(expected, pol_budget.amount):
            bad(f"budget: expected cost {expected} > {pol_budget.amount}")
    # doubt on the probabilities (from the hashed instance): the worst expectation within
    # total-variation distance theta, by Jiang and Guan's closed form
    theta = inst.risk.ambiguity.total_variation if inst.risk.ambiguity is not None else 0.0
    worst = _worst_expectation([cost[w] for w in f.scen_ids],
                               [f.prob[w] for w in f.scen_ids], theta)
    objective = (1 - lam) * (worst if theta > 0 else expected) + lam * cvar
    if theta > 0:
        reported = (summary.get("ambiguity") or {}).get("worst_case_expected_cost")
        if reported is None or not _close(reported, worst, 1e-6, 1e-4):
            bad(f"summary ambiguity.worst_case_expected_cost = {reported}, recomputed {worst}")
    if has_table(folder / "cost_by_year.csv"):     # the years add up to the costs
        by_year = read_table(folder / "cost_by_year.csv", limits["cost_by_year"],
                             columns=("scenario", "period", "cash_discounted",
                                      "penalty_discounted"),
                             dtype={"scenario": str, "period": str})
        by_year = _clean("cost_by_year", by_year, ("scenario", "period"),
                         ("cash_discounted", "penalty_discounted"),
                         {"scenario": {"expected", *f.scen_ids}, "period": set(f.periods)},
                         problems)
        total = (by_year["cash_discounted"] + by_year["penalty_discounted"]).groupby(
            by_year["scenario"]).sum()
        for w in f.scen_ids:
            if not _close(float(total.get(w, 0.0)), cost[w], 1e-6, 1e-4):
                bad(f"cost_by_year.csv: {w}'s years add up to {total.get(w, 0.0)}, "
                    f"its cost is {cost[w]}")
        if not _close(float(total.get("expected", 0.0)), expected, 1e-6, 1e-4):
            bad(f"cost_by_year.csv: the expected years add up to {total.get('expected')}, "
                f"the expected cost is {expected}")
    checks = {"expected_cost": expected, "cvar": cvar, "objective": objective,
              "expected_shortage_t": sum(f.prob[w] * shortage_w[w] for w in f.scen_ids),
              "worst_shortage_t": max((shortage_w[w] for w in f.scen_ids if f.prob[w] > 0),
                                      default=0.0)}
    for key, value in checks.items():
        if not _close(summary[key], value, 1e-6, 1e-4):
            bad(f"summary {key} = {summary[key]}, recomputed {value}")
    # shortage per element, and its value at the penalty prices (discounted)
    by_element = {e: 0.0 for e in inst.elements}
    valued = 0.0
    for (w, e, t), r in bal.items():
        by_element[e] += f.prob[w] * r.shortage_t
        valued += f.prob[w] * f.discount(t) * _emap(inst.shortage_penalty, e, 0.0) * r.shortage_t
    for e, value in by_element.items():
        rep = (summary.get("expected_shortage_by_element_t") or {}).get(e, value)
        if not _close(rep, value, 1e-6, 1e-4):
            bad(f"summary expected_shortage_by_element_t.{e} = {rep}, recomputed {value}")
    if summary.get("expected_shortage_value") is not None and \
            not _close(summary["expected_shortage_value"], valued, 1e-6, 1e-4):
        bad(f"summary expected_shortage_value = {summary['expected_shortage_value']}, "
            f"recomputed {valued}")
    for stage in ("mining", "refining"):
        best = 0.0
        for w in f.scen_ids:
            if f.prob[w] <= 0:
                continue
            for e in inst.elements:
                for t in f.periods:
                    dem = f.demand(e, t, w)
                    if dem <= 0:
                        continue
                    for c in {country(s, stage) for s in inst.sources} - {home}:
                        v = volume(lambda s: country(s, stage) == c, [e], t, w, False)
                        best = max(best, v / dem)
        rep = summary["max_single_country_share"][stage]["share"]
        if not _close(rep, best, 1e-6, 1e-6):
            bad(f"summary max_single_country_share.{stage} = {rep}, recomputed {best}")
    problems += _scenarios_problems(folder, limits["scenarios"], f, cost, fee, shortage_w)
    problems += _duals_problems(folder, limits["duals"], inst, f)
    return problems


SCENARIO_PARTS = ("reservation_cost", "delivery_cost", "shortage_cost", "holding_cost",
                  "resale_revenue", "stock_deficit_cost", "investment_cost", "terminal_value")


def _scenarios_problems(folder: Path, limit: int, f: _Facts, cost: dict[str, float],
                        fee: dict[str, float], shortage_w: dict[str, float]) -> list[str]:
    """scenarios.csv: one row per scenario of the instance, its probability, its cost
    and shortage as recomputed, its reservation cost, and parts that add up to its cost."""
    path = folder / "scenarios.csv"
    if not os.path.lexists(path):
        return ["scenarios.csv is missing"]
    problems: list[str] = []
    numbers = ("probability", "cost", "shortage_t", *SCENARIO_PARTS)
    table = read_table(path, limit, columns=("scenario",) + numbers, dtype={"scenario": str})
    table = _clean("scenarios", table, ("scenario",), numbers,
                   {"scenario": set(f.scen_ids)}, problems)
    bad: list[str] = []
    for i, r in zip(table.index, table.itertuples()):
        w, row = r.scenario, f"scenarios.csv row {i + 2} ({r.scenario})"
        parts = [getattr(r, p) for p in SCENARIO_PARTS]
        # revenue and the terminal value of the stock left are subtracted
        total = sum(parts) - 2 * r.resale_revenue - 2 * r.terminal_value
        for what, have, want in (("probability", r.probability, f.prob[w]),
                                 ("cost", r.cost, cost[w]),
                                 ("shortage_t", r.shortage_t, shortage_w[w]),
                                 ("reservation_cost", r.reservation_cost, fee[w]),
                                 ("the sum of its parts", total, r.cost)):
            if not _close(have, want, 1e-6, 1e-4):
                bad.append(f"{row}: {what} {have}, recomputed {want}")
    missing = sorted(set(f.scen_ids) - set(table.scenario))
    if missing:
        bad.append(f"scenarios.csv: no row for scenario(s) {', '.join(missing[:10])}")
    theta = f.inst.risk.ambiguity.total_variation if f.inst.risk.ambiguity is not None \
        else 0.0
    if theta > 0 and not missing:       # the worst-case distribution: in the ball, worst
        q = read_table(path, limit, columns=("scenario", "worst_case_probability"),
                       dtype={"scenario": str})
        q = dict(zip(q.scenario, pd.to_numeric(q.worst_case_probability, errors="coerce")))
        moved = sum(abs(q.get(w, math.nan) - f.prob[w]) for w in f.scen_ids)
        worst = _worst_expectation([cost[w] for w in f.scen_ids],
                                   [f.prob[w] for w in f.scen_ids], theta)
        got = sum(q.get(w, math.nan) * cost[w] for w in f.scen_ids)
        if not (math.isfinite(moved) and moved <= theta + 1e-9
                and _close(sum(q.values()), 1.0, 1e-9, 1e-9)
                and all(v >= -1e-12 for v in q.values())):
            bad.append(f"scenarios.csv: worst_case_probability is not a distribution within "
                       f"total variation {theta:g} of the probabilities (moves {moved:.6g})")
        elif not _close(got, worst, 1e-6, 1e-4):
            bad.append(f"scenarios.csv: worst_case_probability gives an expected cost of "
                       f"{got}, the worst within total variation {theta:g} is {worst}")
    _cap(bad, problems)
    return problems


DUAL_KEYS = ("constraint", "rule", "source", "element", "period", "country", "stage",
             "scenario", "node")


def _duals_problems(folder: Path, limit: int, inst: Instance, f: _Facts) -> list[str]:
    """duals.csv (absent for mpi-sppy runs): each row's key once, ids the instance has,
    finite values. Marginal values are not recomputed here (that needs an LP solve);
    the file's SHA-256 covers the numbers."""
    path = folder / "duals.csv"
    if not has_table(path):
        return []
    problems: list[str] = []
    table = read_table(path, limit, columns=DUAL_KEYS + ("value",),
                       dtype={k: str for k in DUAL_KEYS}, na_values=[])
    _clean("duals", table, DUAL_KEYS, ("value",),
           {"element": {"", *inst.elements, *inst.groups}, "period": {"", *f.periods},
            "scenario": {"", *f.scen_ids}, "source": {"", *f.src}}, problems)
    return problems
