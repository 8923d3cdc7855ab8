"""Named policies resolved against the dense data: which arcs, elements, periods.

A policy in the instance is a set of rules with filters. :func:`resolve_policy`
turns it into plain dataclasses (arc masks, element units, period positions)
that the formulation turns into constraint rows. ``none`` is always there and
is empty.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..input.data import ProblemData, selector_matches
from ..errors import UsageError
from ..input.instance import pkey
from ..input.schema import RULE_KINDS, Instance, Policy, RuleFilter

STAGES = ("mining", "refining")


@dataclass
class ArcSet:
    """The arcs a share row sums over: one country at one stage, or home/recycled."""

    country: str          # ISO code, or "" for recycled
    stage: str            # mining | refining | "" (recycled)
    arcs: np.ndarray      # (K,) bool


@dataclass
class ShareRule:
    """A cap or floor on a share of demand: sum q (or x) <=/>= share * D."""

    family: str           # max_single_country_share | min_domestic_share | min_recycled_share
    label: str            # e.g. crma.max_single_country_share[0]
    sense: str            # "<=" for caps, ">=" for floors
    share_t: np.ndarray   # (T,) the share in each period (a phased rule varies)
    plan: bool            # applies to contracted volumes x against base demand
    units: list[tuple[str, list[int]]]   # (element or group label, element positions)
    periods: list[int]   # where the rule holds: its filter, and a phased share's periods
    arc_sets: list[ArcSet]


@dataclass
class StockRule:
    """End-of-period stock at least `fraction` of demand (fraction = days / period_days).

    ``binds[u]`` (T, W) in [0, 1] scales unit u's target: 0 where the floor is
    released (an emergency for one of the unit's elements in that period or in
    the `refill` periods before it), 1 where it binds; in the expected-value
    problem, the probability that it binds. With `deficit_cost` the floor is
    soft: stock + deficit >= target, the deficit paid per tonne and period.
    """

    label: str
    fraction: float
    units: list[tuple[str, list[int]]]
    periods: list[int]
    binds: list[np.ndarray] = field(default_factory=list)
    deficit_cost: float | None = None


@dataclass
class ResolvedPolicy:
    """A policy as index sets; `excluded_arcs` may not be used at all."""

    name: str
    excluded_arcs: np.ndarray
    share_rules: list[ShareRule] = field(default_factory=list)
    stock_rules: list[StockRule] = field(default_factory=list)
    budgets: list[tuple[str, float]] = field(default_factory=list)
    infeasible: list[str] = field(default_factory=list)   # found before any solve
    excluded_projects: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    builds: list[tuple[str, int, float]] = field(default_factory=list)  # label, project, min
    # labels of `build_stock: false` rules: stock may be drawn, never raised
    no_stock_build: list[str] = field(default_factory=list)


def policy_names(inst: Instance) -> list[str]:
    """All policies of an instance, `none` first."""
    return ["none", *inst.policies]


def check_policy(name: str, known: Sequence[str], where: str = "policies") -> None:
    """Refuse a policy name not in `known` with one message that suggests the
    nearest name (difflib) and lists them all: "unknown policy 'crma56' (did you
    mean 'crma65'? policies: none, crma65, ...)". Every command checks here."""
    if name in known:
        return
    close = difflib.get_close_matches(str(name), list(known), n=1, cutoff=0.6)
    hint = f"did you mean '{close[0]}'? " if close else ""
    raise UsageError(f"unknown policy '{name}' ({hint}{where}: {', '.join(known)})")


def _units(data: ProblemData, rule: RuleFilter, scope: "_Scope | None" = None
           ) -> list[tuple[str, list[int]]]:
    """Element units of a rule: each element, or each group (an ungrouped element alone);
    with several buyers, those of one buyer (its elements and its copies of the groups)."""
    chosen = data.element_index(rule.elements) if scope is None else scope.elements(rule)
    groups = data.groups if scope is None else scope.groups
    if rule.per == "element":
        return [(data.elements[e], [e]) for e in chosen]
    units, grouped = [], set()
    for g, members in groups.items():
        inside = [e for e in members if e in chosen]
        grouped.update(members)
        if inside:
            units.append((g, inside))
    units += [(data.elements[e], [e]) for e in chosen if e not in grouped]
    return units


@dataclass
class _Scope:
    """Where a policy's rules apply: the one buyer, or one of several buyers (its arcs,
    its elements, its home countries; DESIGN.md: a buyer's shares use its own demand
    and its own home)."""

    buyer: str | None          # None: the one buyer of an instance without `buyers`
    arcs: np.ndarray           # (K,) bool: the buyer's usable arcs
    home: list[str]
    data: ProblemData
    position: int = 0

    def applies(self, rule: Any) -> bool:
        named = getattr(rule, "buyers", None)
        return self.buyer is None or named is None or self.buyer in named

    def elements(self, rule: RuleFilter) -> list[int]:
        bd = self.data.buyers
        wanted = None if rule.elements is None else set(rule.elements)
        return [e for e in range(len(self.data.elements))
                if bd.element_buyer[e] == self.position
                and (wanted is None or bd.base_elements[bd.element_base[e]] in wanted)]

    @property
    def groups(self) -> dict[str, list[int]]:
        suffix = f"@{self.buyer}"
        return {g: m for g, m in self.data.groups.items() if g.endswith(suffix)}

    @property
    def home_label(self) -> str:
        return "+".join(self.home)


def _scopes(data: ProblemData, usable: np.ndarray) -> list[_Scope]:
    """The one buyer, or every member of the coalition in order."""
    bd = data.buyers
    if bd is None:
        return [_Scope(None, usable, [data.home], data)]
    arc_buyer = bd.arc_buyer(data.arc_element) if data.n_arcs else np.zeros(0, int)
    return [_Scope(b, usable & (arc_buyer == j), bd.home[j], data, j)
            for j, b in enumerate(bd.ids)]


def resolve_policy(inst: Instance, data: ProblemData, name: str = "none",
                   extra: Policy | None = None) -> ResolvedPolicy:
    """Resolve policy `name` (plus optional extra rules, as a sweep adds a cap).

    With several buyers every rule holds for each buyer it names (all without
    `buyers`), on that buyer's deliveries, demand and home countries."""
    check_policy(name, policy_names(inst))
    pol = inst.policies.get(name, Policy())
    rules = {key: list(getattr(pol, key)) + (list(getattr(extra, key)) if extra else [])
             for key in RULE_KINDS}
    src_excluded = np.array([any(selector_matches(sel, s) for sel in rules["exclude"])
                             for s in inst.sources], dtype=bool)
    excluded = src_excluded[data.arc_source] if data.n_arcs else np.zeros(0, bool)
    usable = ~excluded
    out = ResolvedPolicy(name=name, excluded_arcs=excluded)
    out.infeasible = committed_but_excluded(data, excluded, name)
    scopes = _scopes(data, usable)

    def label(key: str, i: int) -> str:
        n_own = len(getattr(pol, key))
        return f"{name}.{key}[{i}]" if i < n_own else f"{key}[{i - n_own}]"

    for i, r in enumerate(rules["max_single_country_share"]):
        share_t, periods = _phased(data, r)
        for sc in scopes:
            if not sc.applies(r):
                continue
            arc_sets = []
            for stage in r.stages:
                country = data.arc_country(stage)
                named = set(country[sc.arcs]) - set(sc.home)
                if r.countries is not None:
                    named &= set(r.countries)
                for c in sorted(named):
                    arc_sets.append(ArcSet(c, stage, sc.arcs & (country == c)))
            out.share_rules.append(ShareRule(
                "max_single_country_share", label("max_single_country_share", i), "<=",
                share_t, r.applies_to == "plan", _units(data, r, sc if sc.buyer else None),
                periods, arc_sets))
    for i, r in enumerate(rules["min_domestic_share"]):
        share_t, periods = _phased(data, r)
        for sc in scopes:
            if not sc.applies(r):
                continue
            arcs = sc.arcs & np.isin(data.arc_country(r.stage), sc.home)
            out.share_rules.append(ShareRule(
                "min_domestic_share", label("min_domestic_share", i), ">=", share_t,
                r.applies_to == "plan", _units(data, r, sc if sc.buyer else None), periods,
                [ArcSet(sc.home_label, r.stage, arcs)]))
    for i, r in enumerate(rules["min_recycled_share"]):
        share_t, periods = _phased(data, r)
        for sc in scopes:
            if not sc.applies(r):
                continue
            out.share_rules.append(ShareRule(
                "min_recycled_share", label("min_recycled_share", i), ">=", share_t,
                r.applies_to == "plan", _units(data, r, sc if sc.buyer else None), periods,
                [ArcSet("", "", sc.arcs & data.arc_recycled)]))
    for i, r in enumerate(rules["min_stock_days"]):
        for sc in scopes:
            if not sc.applies(r):
                continue
            units = _units(data, r, sc if sc.buyer else None)
            out.stock_rules.append(StockRule(label("min_stock_days", i),
                                             r.days / data.period_days, units,
                                             data.period_index(r.periods),
                                             [floor_binds(data, u, r.refill) for _, u in units],
                                             r.deficit_cost))
    for i, r in enumerate(rules["budget"]):
        out.budgets.append((label("budget", i), r.amount))
    if not pol.build_stock or (extra is not None and not extra.build_stock):
        out.no_stock_build.append(f"{name}.build_stock" if not pol.build_stock
                                  else "build_stock")
    projects = data.projects.ids if data.projects is not None else []
    named = {v for sel in rules["exclude"] if sel.project is not None
             for v in (sel.project if isinstance(sel.project, list) else [sel.project])}
    out.excluded_projects = np.array([p in named for p in projects], dtype=bool)
    for i, r in enumerate(rules["build"]):
        if r.project not in projects:      # the project belongs to another element block
            continue
        j = projects.index(r.project)
        # several buyers: a coalition builds the share of the project its members hold
        share = 1.0 if data.projects.share is None else float(data.projects.share[j])
        out.builds.append((label("build", i), j, r.min_size * share))
        if out.excluded_projects[j] and r.min_size > 0:
            out.infeasible.append(f"{label('build', i)}: policy {name} requires project "
                                  f"{r.project} (size {r.min_size:g}) and excludes it")
    return out


def _phased(data: ProblemData, rule: Any) -> tuple[np.ndarray, list[int]]:
    """(T,) share of a cap or floor in each period, and the periods where it holds:
    its `periods` filter, and a phased share's periods (a map period -> share)."""
    T = len(data.periods)
    periods = data.period_index(rule.periods)
    if isinstance(rule.share, dict):
        by_key = {pkey(k): float(v) for k, v in rule.share.items()}
        share_t = np.array([by_key.get(pkey(p), 0.0) for p in data.periods])
        periods = [t for t in periods if pkey(data.periods[t]) in by_key]
        return share_t, periods
    return np.full(T, float(rule.share)), periods


def released(emergency: np.ndarray, unit: list[int], refill: int) -> np.ndarray:
    """(T, W) True where a unit's stock floor is released: an emergency for one of its
    elements in that period or in the `refill` periods before it."""
    hit = emergency[unit].max(axis=0) > 0 if len(unit) else np.zeros(emergency.shape[1:], bool)
    out = hit.copy()
    for lag in range(1, refill + 1):
        out[lag:] |= hit[:-lag]
    return out


def floor_binds(data: ProblemData, unit: list[int], refill: int) -> np.ndarray:
    """(T, W) weight of a unit's stock floor: 1 where it binds, 0 where released; in an
    expected-value problem the probability that it binds (DESIGN conventions)."""
    if data.emergency_mix is not None:
        emergency, p = data.emergency_mix
        binds = ~released(emergency, unit, refill)
        return (binds.astype(float) @ p)[:, None]
    return (~released(data.emergency, unit, refill)).astype(float)


def committed_but_excluded(data: ProblemData, excluded: np.ndarray, name: str) -> list[str]:
    """A policy that forbids a source with signed volumes cannot be met, in words."""
    out = []
    for k in np.flatnonzero(excluded & (data.committed_t.sum(axis=1) > 0)):
        t = int(np.flatnonzero(data.committed_t[k] > 0)[0])
        out.append(f"policy {name} excludes {data.sources['id'].iloc[data.arc_source[k]]}, "
                   f"but {data.committed_t[k, t]:,.6g} t of {data.elements[data.arc_element[k]]} "
                   f"is committed (signed) from it in {data.periods[t]}")
    return out


def union_policy(policies: list[ResolvedPolicy]) -> ResolvedPolicy:
    """Every rule of every policy in one, with only the arcs that all of them exclude.

    Its model has the columns of the least restrictive policy and the rows of
    all policies (their labels start with the policy's name, so rows keep their
    owner): model.solve.switch switches it to any one of them.
    """
    if not policies:
        raise ValueError("union_policy needs at least one policy")
    return ResolvedPolicy(
        name="+".join(p.name for p in policies),
        excluded_arcs=np.logical_and.reduce([p.excluded_arcs for p in policies]),
        share_rules=[r for p in policies for r in p.share_rules],
        stock_rules=[r for p in policies for r in p.stock_rules],
        budgets=[b for p in policies for b in p.budgets],
        excluded_projects=np.logical_and.reduce([p.excluded_projects for p in policies]),
        builds=[b for p in policies for b in p.builds],
        no_stock_build=[b for p in policies for b in p.no_stock_build])


def arcs_words(arcs_of: ArcSet, rule: ShareRule) -> str:
    """The sources a share row sums over, in words ("CN-refined sources")."""
    if rule.family == "min_recycled_share":
        return "recycled sources"
    return f"{arcs_of.country}-{'mined' if arcs_of.stage == 'mining' else 'refined'} sources"


def floor_without_sources(rule: ShareRule, arcs_of: ArcSet, unit_label: str, period: object,
                          rhs_t: float, scenarios: str | None) -> str:
    """Why a floor row with no variable under it cannot hold, in the instance's words
    (`scenarios`: "scenario a" or "scenarios a, b", None for the plan)."""
    where = "the plan" if scenarios is None else scenarios
    cannot = (f"no such source can be contracted for {unit_label} then (spot sources do "
              "not count in plan mode)" if scenarios is None else
              f"no such source can deliver {unit_label} then")
    return (f"{rule.label}: {unit_label} {period} needs {rhs_t:,.6g} t from "
            f"{arcs_words(arcs_of, rule)} in {where}, but {cannot}")
