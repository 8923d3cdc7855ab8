"""The instance as dense arrays: every convention of DESIGN.md applied once.

:func:`problem_data` turns a validated instance into a :class:`ProblemData`
of numpy arrays indexed by supply arc ``k`` (a source offering an element),
element ``e``, period ``t`` and scenario ``w``. The formulation, the results
tables and the analysis all read these arrays, so a convention (a missing
period means 0 capacity, shocks multiply, discounting by position) lives
here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from ..safety import check_model_size
from .instance import LoadedInstance, index_multiplier, index_path, pkey
from .regimes import scenario_list
from .schema import Instance, Selector, Source
from .buyers import BuyerData, entitlement_shares, expanded_name
from .tree import (
    NO_LEAD_TIME,
    InformationTree,
    build_tree,
    decision_rows,
    period_features,
    recourse_nodes,
)


@dataclass
class ProblemData:
    """Dense arrays of one instance (units: t/period, currency/t, currency)."""

    name: str
    currency: str
    home: str
    elements: list[str]
    periods: list[Any]
    scenarios: list[str]
    probability: np.ndarray          # (W,)
    sources: pd.DataFrame            # one row per source: id, name, mined_in, ...
    arc_source: np.ndarray           # (K,) source row of arc k
    arc_element: np.ndarray          # (K,) element index of arc k
    capacity_t: np.ndarray           # (K, T) after the availability window
    price: np.ndarray                # (K, T) base price, currency/t
    availability: np.ndarray         # (K, T, W) in [0, 1]
    price_multiplier: np.ndarray     # (K, T, W)
    delivery_price: np.ndarray       # (K, T, W) shocked price clipped to [floor, cap]
    base_demand_t: np.ndarray        # (E, T)
    demand_t: np.ndarray             # (E, T, W) after demand shocks
    shortage_penalty: np.ndarray     # (E,) currency/t
    stock_initial_t: np.ndarray      # (E,)
    stock_capacity_t: np.ndarray     # (E,) inf = unlimited
    holding_cost: np.ndarray         # (E,) currency/t/period
    discount: np.ndarray             # (T,) 1/(1+rate)^k
    groups: dict[str, list[int]] = field(default_factory=dict)
    risk_lambda: float = 0.0
    risk_alpha: float = 0.95
    # radius theta of the total-variation ball around the probabilities (0: nominal)
    ambiguity: float = 0.0
    period_days: float = 365.0
    information: str = "history"     # history | clairvoyant (DESIGN: what is known when)
    lead_time: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # (K,)
    committed_t: np.ndarray | None = None     # (K, T) signed volume: x >= committed
    min_take: np.ndarray | None = None        # (K,) take-or-pay share: q >= min_take a x
    resale_price: np.ndarray | None = None    # (E,) currency per surplus tonne sold
    emergency: np.ndarray | None = None       # (E, T, W) 1.0 in an emergency (floors released)
    # the expected-value problem's memory of the scenarios: (emergency, probability)
    emergency_mix: tuple[np.ndarray, np.ndarray] | None = None
    projects: "ProjectData | None" = None    # investment candidates (DESIGN: Investment)
    tree: InformationTree | None = None   # the instance's information tree (all data)
    decision_node: np.ndarray | None = None   # (T+1, W) node after period t-1
    recourse_node: np.ndarray | None = None   # (T, W) node of period t's recourse
    # currency per tonne left in stock after the last period (DESIGN: end of the horizon)
    terminal_value: np.ndarray | None = None  # (E,)
    # several buyers (model.input.buyers): what ties the expanded elements and arcs
    buyers: BuyerData | None = None

    @property
    def n_arcs(self) -> int:
        return len(self.arc_source)

    @property
    def ambiguous(self) -> bool:
        """The expectation is a worst case over a total-variation ball (theta > 0) and
        it counts in the objective (lambda < 1)."""
        return self.ambiguity > 0.0 and self.risk_lambda < 1.0

    @property
    def scenario_costs_couple(self) -> bool:
        """The objective reads each scenario's total cost (CVaR or ambiguity): the
        element blocks are tied through it."""
        return self.risk_lambda > 0.0 or self.ambiguous

    @property
    def is_contract(self) -> np.ndarray:
        """(K,) True where the arc's source is a contract source."""
        return (self.sources["mode"].to_numpy() == "contract")[self.arc_source]

    @property
    def reservation_fee(self) -> np.ndarray:
        """(K,) take-or-pay share of the base price per contracted tonne."""
        return self.sources["reservation_fee"].to_numpy(float)[self.arc_source]

    def arc_country(self, stage: str) -> np.ndarray:
        """(K,) country of the arc's source at `stage` (mining or refining)."""
        column = "mined_in" if stage == "mining" else "refined_in"
        return self.sources[column].to_numpy()[self.arc_source]

    @property
    def arc_recycled(self) -> np.ndarray:
        return self.sources["recycled"].to_numpy(bool)[self.arc_source]

    @property
    def decision_row(self) -> np.ndarray:
        """(K, T) row of `decision_node` at which arc k's period-t contract is decided."""
        return decision_rows(self.lead_time, len(self.periods))

    def period_index(self, labels: list[Any] | None) -> list[int]:
        """Positions of the given period labels (all periods when None)."""
        if labels is None:
            return list(range(len(self.periods)))
        wanted = {pkey(p) for p in labels}
        return [i for i, p in enumerate(self.periods) if pkey(p) in wanted]

    def element_index(self, names: list[str] | None) -> list[int]:
        """Positions of the given elements (all elements when None)."""
        if names is None:
            return list(range(len(self.elements)))
        return [i for i, e in enumerate(self.elements) if e in set(names)]


@dataclass
class ProjectData:
    """Investment projects as arrays over projects p, arcs k, elements e, periods t.

    A project of full size 1 adds ``capacity[p, k, t]`` t/period to arc k (its
    source's element) or avoids ``reduces[p, e, t]`` t/period of demand, from
    ``build_time[p]`` periods after the decision on; it may be decided in the
    periods of ``decide[p]``, up to ``max_size[p]`` in total along a path.
    """

    ids: list[str]
    capacity: np.ndarray      # (P, K, T) t/period at full size (0 outside the source's window)
    reduces: np.ndarray       # (P, E, T) avoided t/period at full size
    cost: np.ndarray          # (P,) currency for the full size
    fixed_cost: np.ndarray    # (P,) currency when built (integer projects)
    build_time: np.ndarray    # (P,) periods
    decide: np.ndarray        # (P, T) bool: a build may be decided in period t
    max_size: np.ndarray      # (P,)
    integer: np.ndarray       # (P,) bool: size 0 or max_size
    # (P, T_decided, T): share of the capital cost charged in period t for a build
    # decided in period tau: 1 at tau without a `life`, else the annuity factor in
    # the periods of operation inside the horizon (DESIGN: end of the horizon)
    charge: np.ndarray | None = None
    life: np.ndarray | None = None     # (P,) periods of operation, 0 = no life given
    # several buyers: the share of each project the coalition may build (its members'
    # summed entitlements of the project's source); None with one buyer
    share: np.ndarray | None = None

    @property
    def n(self) -> int:
        return len(self.ids)

    def charge_weight(self, discount: np.ndarray) -> np.ndarray:
        """(P, T_decided) discounted share of the capital cost charged, per unit of
        cost, for a build decided in each period: the discount of the period decided
        without a life, else the discounted annuities inside the horizon."""
        return np.einsum("pst,t->ps", self.charge, discount)

    def online(self) -> np.ndarray:
        """(P, T_decided, T) True where a build decided in the first period index
        comes online in the second (t >= decided + build_time)."""
        T = self.decide.shape[1]
        tau = np.arange(T)[None, :, None]
        t = np.arange(T)[None, None, :]
        return (t >= tau + self.build_time[:, None, None]) & self.decide[:, :, None]

    def potential(self, usable: np.ndarray | None = None) -> np.ndarray:
        """(K, T) the most capacity the (usable) projects can add to each arc."""
        use = np.ones(self.n, bool) if usable is None else usable
        reach = self.online()[use].any(axis=1)                          # (P', T)
        return np.einsum("p,pkt,pt->kt", self.max_size[use], self.capacity[use], reach)

    def subset(self, arcs: np.ndarray, elements: list[int]) -> "ProjectData":
        """The projects touching some arcs or elements, restricted to them."""
        cap, red = self.capacity[:, arcs], self.reduces[:, elements]
        keep = (cap > 0).any(axis=(1, 2)) | (red > 0).any(axis=(1, 2))
        return ProjectData([i for i, k in zip(self.ids, keep) if k], cap[keep], red[keep],
                           self.cost[keep], self.fixed_cost[keep], self.build_time[keep],
                           self.decide[keep], self.max_size[keep], self.integer[keep],
                           self.charge[keep], self.life[keep],
                           None if self.share is None else self.share[keep])


def annuity_factor(rate: float, life: int) -> float:
    """The annuity per unit of capital over `life` periods at `rate`:
    r / (1 - (1+r)^-life), or 1 / life at r = 0 (PyPSA's annuitised capital cost)."""
    if rate <= 0:
        return 1.0 / life
    return rate / (1.0 - (1.0 + rate) ** (-life))


def charge_schedule(life: np.ndarray, build_time: np.ndarray, rate: float, T: int
                    ) -> np.ndarray:
    """(P, T_decided, T) share of the capital cost charged in each period (see
    :attr:`ProjectData.charge`): without a life (0), all of it in the period decided;
    with one, the annuity in each period from the first output (decided +
    build_time) to the end of the horizon, at most `life` periods."""
    P = len(life)
    charge = np.zeros((P, T, T))
    for p in range(P):
        if life[p] <= 0:
            charge[p, np.arange(T), np.arange(T)] = 1.0
            continue
        a = annuity_factor(rate, int(life[p]))
        for tau in range(T):
            start = tau + int(build_time[p])
            charge[p, tau, start:min(T, start + int(life[p]))] = a
    return charge


def project_data(inst: Instance, arc_source: np.ndarray, arc_element: np.ndarray,
                 capacity_window: np.ndarray) -> ProjectData:
    # (a build of a project with a `life` that would come online after the last period
    # cannot be decided: it would cost nothing inside the horizon and deliver nothing)
    """The instance's projects as arrays (see :class:`ProjectData`)."""
    periods = list(inst.periods)
    E, T, K = len(inst.elements), len(periods), len(arc_source)
    P = len(inst.projects)
    e_pos = {e: i for i, e in enumerate(inst.elements)}
    src_pos = {s.id: i for i, s in enumerate(inst.sources)}
    keys = [pkey(t) for t in periods]
    cap = np.zeros((P, K, T))
    red = np.zeros((P, E, T))
    decide = np.zeros((P, T), dtype=bool)
    for i, p in enumerate(inst.projects):
        if p.source is not None:
            for e, v in p.capacity.items():
                k = np.flatnonzero((arc_source == src_pos[p.source]) & (arc_element == e_pos[e]))
                cap[i, k] = _period_array(v, periods) * capacity_window[k]
        for e, v in p.reduces.items():
            red[i, e_pos[e]] = _period_array(v, periods)
        lo = keys.index(pkey(p.decide.from_)) if p.decide and p.decide.from_ is not None else 0
        hi = keys.index(pkey(p.decide.until)) if p.decide and p.decide.until is not None \
            else T - 1
        decide[i, lo:hi + 1] = True
        if p.life is not None:
            decide[i, max(T - p.build_time, 0):] = False
    life = np.array([p.life or 0 for p in inst.projects], dtype=np.int64)
    build_time = np.array([p.build_time for p in inst.projects], dtype=np.int64)
    charge = charge_schedule(life, build_time, float(inst.discount_rate), T)
    return ProjectData([p.id for p in inst.projects], cap, red,
                       np.array([p.cost for p in inst.projects], dtype=float),
                       np.array([p.fixed_cost for p in inst.projects], dtype=float),
                       np.array([p.build_time for p in inst.projects], dtype=np.int64),
                       decide, np.array([p.max_size for p in inst.projects], dtype=float),
                       np.array([p.integer for p in inst.projects], dtype=bool), charge, life)


def supply_price(inst: Instance, element: str, sup: Any, periods: list[Any]) -> np.ndarray:
    """(T,) base price of a supply: its `price`, or `premium` x its index's path x the
    index's `multiplier` (DESIGN.md, "Price indices")."""
    if sup.price is not None:
        return _period_array(sup.price, periods)
    premium = 1.0 if sup.premium is None else float(sup.premium)
    return premium * index_multiplier(inst, sup.index) * \
        _period_array(index_path(inst, sup.index, element), periods)


def _element_value(mapping: dict[str, Any], element: str, default: Any) -> Any:
    if element in mapping:
        return mapping[element]
    return mapping.get("default", default)


def _period_array(value: float | dict[Any, float], periods: list[Any]) -> np.ndarray:
    """A number for every period, or a period map (a missing period means its
    `default`, else 0)."""
    if isinstance(value, dict):
        by_key = {pkey(k): v for k, v in value.items()}
        other = by_key.get("default", 0.0)
        return np.array([by_key.get(pkey(p), other) for p in periods], dtype=float)
    return np.full(len(periods), float(value))


def selector_matches(sel: Selector, src: Source) -> bool:
    """True when every source-level key given in the selector matches the source (a
    selector naming projects matches no source; `index` is matched per supply, by
    :func:`index_matches`)."""
    if sel.project is not None:
        return False
    for key in ("id", "mined_in", "refined_in", "mode", "recycled"):
        wanted = getattr(sel, key)
        if wanted is None:
            continue
        have = getattr(src, key)
        if isinstance(wanted, list):
            if have not in wanted:
                return False
        elif have != wanted:
            return False
    return True


def index_matches(sel: Selector, arc_index: np.ndarray) -> np.ndarray:
    """(K,) True for the arcs a selector's `index` key admits (all when absent)."""
    if sel.index is None:
        return np.ones(len(arc_index), dtype=bool)
    wanted = sel.index if isinstance(sel.index, list) else [sel.index]
    return np.array([a in wanted for a in arc_index], dtype=bool)


def _window_mask(src: Source, periods: list[Any]) -> np.ndarray:
    keys = [pkey(p) for p in periods]
    lo, hi = 0, len(periods) - 1
    if src.available is not None:
        if src.available.from_ is not None:
            lo = keys.index(pkey(src.available.from_))
        if src.available.until is not None:
            hi = keys.index(pkey(src.available.until))
    mask = np.zeros(len(periods), dtype=bool)
    mask[lo:hi + 1] = True
    return mask


def problem_data(loaded: LoadedInstance | Instance,
                 risk_lambda: float | None = None,
                 risk_alpha: float | None = None,
                 buyers: list[str] | None = None) -> ProblemData:
    """Apply DESIGN.md's conventions and return the dense arrays of an instance.

    With several buyers (``buyers:``) the model's elements and arcs are expanded
    per buyer (model.input.buyers); `buyers` chooses the coalition (its members,
    default every buyer): only its members are in the model."""
    inst = loaded.instance if isinstance(loaded, LoadedInstance) else loaded
    base_elements, periods = list(inst.elements), list(inst.periods)
    T = len(periods)
    e_pos = {e: i for i, e in enumerate(base_elements)}
    scen = scenario_list(inst)     # a list as written, or generated from regimes and events
    members = _members(inst, buyers)
    # the model's elements: the instance's, or each member's (element@buyer)
    if members is None:
        elements = base_elements
        elem_base = np.arange(len(elements))
        elem_buyer = np.zeros(len(elements), dtype=int)
    else:
        elements = [expanded_name(e, b.id) for b in members for e in base_elements]
        elem_base = np.tile(np.arange(len(base_elements)), len(members))
        elem_buyer = np.repeat(np.arange(len(members)), len(base_elements))
    E = len(elements)
    # before any array: every path to a model (solve, compare, sweep, mpi-sppy) comes here
    check_model_size(len(inst.sources), E, T, len(scen) or 1, len(inst.projects))
    names = [w.id for w in scen] or ["base"]
    prob = np.array([w.probability for w in scen] or [1.0], dtype=float)
    W = len(names)

    sources = pd.DataFrame({
        "id": [s.id for s in inst.sources],
        "name": [s.name or s.id for s in inst.sources],
        "mined_in": [s.mined_in for s in inst.sources],
        "refined_in": [s.refined_in for s in inst.sources],
        "mode": [s.mode for s in inst.sources],
        "recycled": [bool(s.recycled) for s in inst.sources],
        "reservation_fee": [float(s.reservation_fee) for s in inst.sources],
    }, columns=["id", "name", "mined_in", "refined_in", "mode", "recycled",
                "reservation_fee"])

    arc_source, arc_element, cap_rows, price_rows, lead = [], [], [], [], []
    arc_index: list[str | None] = []
    committed_rows, floor, ceiling, windows = [], [], [], []
    offered_by: list[list[str]] = []
    for si, src in enumerate(inst.sources):
        window = _window_mask(src, periods)
        offered = {e: sup for e, sup in src.supply.items() if e != "default"}
        if "default" in src.supply:
            for e in base_elements:
                offered.setdefault(e, src.supply["default"])
        offered_by.append([e for e in base_elements if e in offered])
        for e in base_elements:  # arcs in element order within a source
            if e not in offered:
                continue
            arc_source.append(si)
            arc_element.append(e_pos[e])
            lead.append(NO_LEAD_TIME if src.lead_time is None else int(src.lead_time))
            sup = offered[e]
            windows.append(window)
            cap_rows.append(_period_array(sup.capacity, periods) * window)
            price_rows.append(supply_price(inst, e, sup, periods))
            arc_index.append(sup.index)
            committed_rows.append(_period_array(sup.committed, periods) * window
                                  if sup.committed is not None else np.zeros(T))
            floor.append(0.0 if sup.price_floor is None else float(sup.price_floor))
            ceiling.append(np.inf if sup.price_cap is None else float(sup.price_cap))
    K0 = len(arc_source)
    n_copies = 1 if members is None else len(members)
    K = K0 * n_copies
    # several buyers: one copy of every arc per member (buyer-major), its element the
    # member's; one buyer: the arcs as they are
    arc_base_element = np.tile(np.array(arc_element, dtype=int), n_copies)
    arc_buyer = np.repeat(np.arange(n_copies), K0)
    arc_source_a = np.tile(np.array(arc_source, dtype=int), n_copies)
    arc_element_a = arc_base_element + arc_buyer * len(base_elements)
    capacity = np.tile(np.array(cap_rows, dtype=float).reshape(K0, T), (n_copies, 1))
    price = np.tile(np.array(price_rows, dtype=float).reshape(K0, T), (n_copies, 1))
    committed = np.tile(np.array(committed_rows, dtype=float).reshape(K0, T), (n_copies, 1))
    window_a = np.tile(np.array(windows, dtype=float).reshape(K0, T), (n_copies, 1))
    lead_a = np.tile(np.array(lead, dtype=np.int64), n_copies)
    floor_a = np.tile(np.array(floor, dtype=float).reshape(K0), n_copies)
    ceiling_a = np.tile(np.array(ceiling, dtype=float).reshape(K0), n_copies)
    arc_index = arc_index * n_copies

    availability = np.ones((K, T, W))
    price_mult = np.ones((K, T, W))
    demand_mult = np.ones((E, T, W))
    shared = np.ones((K, T, W)) if members is not None else None
    tpos = {pkey(p): i for i, p in enumerate(periods)}
    member_ids = [b.id for b in members] if members is not None else []

    def t_mask(labels: list[Any] | None) -> np.ndarray:
        m = np.zeros(T, dtype=bool)
        m[[tpos[pkey(p)] for p in labels] if labels is not None else slice(None)] = True
        return m

    def e_mask(names_: list[str] | None) -> np.ndarray:
        """(E,) the model's elements of the named (base) elements."""
        m = np.zeros(len(base_elements), dtype=bool)
        m[[e_pos[e] for e in names_] if names_ is not None else slice(None)] = True
        return m[elem_base]

    def b_mask(rule: Any) -> np.ndarray:
        """(n_copies,) the members a rule names (all without `buyers`)."""
        named = getattr(rule, "buyers", None)
        if named is None:
            return np.ones(n_copies, dtype=bool)
        return np.array([b in named for b in member_ids], dtype=bool)

    arc_index_a = np.array(arc_index, dtype=object)

    def arc_mask(sel: Selector, elems: list[str] | None) -> np.ndarray:
        src_ok = np.array([selector_matches(sel, s) for s in inst.sources], dtype=bool)
        return (src_ok[arc_source_a] if K else np.zeros(0, bool)) & \
            e_mask(elems)[arc_element_a] & index_matches(sel, arc_index_a)

    emergency = np.zeros((E, T, W))
    for w, sc in enumerate(scen):
        for rule in sc.disruptions:  # several matching rules multiply
            k = arc_mask(rule.match, rule.elements)
            if shared is not None and getattr(rule, "buyers", None) is None:
                shared[np.ix_(k, t_mask(rule.periods), [w])] *= rule.availability
            k = k & b_mask(rule)[arc_buyer] if members is not None else k
            availability[np.ix_(k, t_mask(rule.periods), [w])] *= rule.availability
            if rule.emergency:   # the elements of the sources it hits, in its periods
                hit = np.unique(arc_element_a[k])
                emergency[np.ix_(hit, t_mask(rule.periods), [w])] = 1.0
        for rule in sc.price_shocks:
            k = arc_mask(rule.match, rule.elements)
            k = k & b_mask(rule)[arc_buyer] if members is not None else k
            price_mult[np.ix_(k, t_mask(rule.periods), [w])] *= rule.multiplier
        for rule in sc.demand_shocks:
            m_e = e_mask(rule.elements)
            m_e = m_e & b_mask(rule)[elem_buyer] if members is not None else m_e
            demand_mult[np.ix_(m_e, t_mask(rule.periods), [w])] *= rule.multiplier

    # element maps: the instance's (one buyer) or each member's, falling back to the
    # instance's (opening stock: the member's own only, never shared out)
    holders = [_ElementMaps.of_instance(inst)] if members is None else \
        [_ElementMaps.of_buyer(inst, b) for b in members]

    def per_element(get: Any, default: float) -> np.ndarray:
        return np.array([float(_element_value(get(holders[b]), base_elements[e], default))
                         for e, b in zip(elem_base.tolist(), elem_buyer.tolist())], dtype=float)

    base_demand = np.array([_period_array(_element_value(holders[b].demand,
                                                         base_elements[e], 0.0), periods)
                            for e, b in zip(elem_base.tolist(), elem_buyer.tolist())]
                           ).reshape(E, T)
    stock_cap = per_element(lambda h: h.stock_capacity, np.inf)
    rate = float(inst.discount_rate)
    demand_t = base_demand[:, :, None] * demand_mult
    buyer_data = None
    if members is not None:
        # entitlements from every buyer of the instance (a coalition's are its members')
        all_demand = np.array([[_period_array(_element_value(b.demand, e, 0.0), periods)
                                for e in base_elements] for b in inst.buyers])
        shares = entitlement_shares(inst, offered_by, all_demand)          # (S, B_all)
        pos = [next(j for j, b in enumerate(inst.buyers) if b.id == m.id) for m in members]
        entitlement = shares[arc_source_a, np.array(pos, dtype=int)[arc_buyer]] if K \
            else np.zeros(0)
        committed = committed * entitlement[:, None]     # a signed volume, by the shares
        tc = (inst.coalition.transfer_cost if inst.coalition is not None else {})
        buyer_data = BuyerData(
            ids=member_ids, all_ids=[b.id for b in inst.buyers],
            home=[list(b.home) for b in members], base_elements=base_elements,
            element_buyer=elem_buyer, element_base=elem_base,
            arc_group=arc_source_a * len(base_elements) + arc_base_element,
            entitlement=entitlement, shared_availability=shared,
            transfer_cost=np.array([float(_element_value(tc, base_elements[e], 0.0))
                                    for e in elem_base.tolist()], dtype=float),
            demand_total_t=np.array([base_demand[elem_buyer == b].sum()
                                     for b in range(len(members))], dtype=float))
        features = period_features(availability, price_mult, demand_t, emergency, shared)
    else:
        features = period_features(availability, price_mult, demand_t, emergency)
    tree = build_tree(features, prob)
    lo = floor_a
    hi = ceiling_a
    delivery_price = np.clip(price[:, :, None] * price_mult, lo[:, None, None],
                             hi[:, None, None])
    projects = project_data(inst, arc_source_a, arc_base_element if members is not None
                            else arc_element_a, window_a)
    if members is not None:
        projects = _shared_projects(projects, inst, buyer_data, arc_source_a, E)
    return ProblemData(
        name=inst.name, currency=inst.currency,
        home=inst.home if members is None else "",
        elements=elements, periods=periods, scenarios=names, probability=prob,
        sources=sources, arc_source=arc_source_a, arc_element=arc_element_a,
        capacity_t=capacity, price=price, availability=availability,
        price_multiplier=price_mult, delivery_price=delivery_price, base_demand_t=base_demand,
        demand_t=demand_t,
        shortage_penalty=per_element(lambda h: h.shortage_penalty, 0.0),
        stock_initial_t=per_element(lambda h: h.stock_initial, 0.0),
        stock_capacity_t=stock_cap,
        holding_cost=per_element(lambda h: h.holding_cost, 0.0),
        terminal_value=per_element(lambda h: h.terminal_value, 0.0),
        discount=1.0 / (1.0 + rate) ** np.arange(T),
        groups=_groups(inst, members, e_pos),
        risk_lambda=float(inst.risk.lambda_ if risk_lambda is None else risk_lambda),
        risk_alpha=float(inst.risk.alpha if risk_alpha is None else risk_alpha),
        ambiguity=float(inst.risk.ambiguity.total_variation
                        if inst.risk.ambiguity is not None else 0.0),
        period_days=float(inst.period_days),
        information=inst.information,
        lead_time=lead_a,
        committed_t=committed,
        min_take=np.array([float(inst.sources[si].min_take or 0.0) for si in arc_source_a],
                          dtype=float),
        resale_price=per_element(lambda h: h.resale_price, 0.0),
        emergency=emergency, projects=projects,
        tree=tree, decision_node=tree.node_of,
        recourse_node=recourse_nodes(tree, inst.information),
        buyers=buyer_data,
    )


@dataclass
class _ElementMaps:
    """The element maps of one buyer (the instance's, or a member's with fall-backs)."""

    demand: dict[str, Any]
    shortage_penalty: dict[str, Any]
    stock_initial: dict[str, Any]
    stock_capacity: dict[str, Any]
    holding_cost: dict[str, Any]
    terminal_value: dict[str, Any]
    resale_price: dict[str, Any]

    @classmethod
    def of_instance(cls, inst: Instance) -> "_ElementMaps":
        return cls(inst.demand, inst.shortage_penalty, inst.stock.initial,
                   inst.stock.capacity, inst.stock.holding_cost, inst.stock.terminal_value,
                   inst.resale_price)

    @classmethod
    def of_buyer(cls, inst: Instance, b: Any) -> "_ElementMaps":
        def own(mine: Any, theirs: Any) -> Any:
            return theirs if mine is None else mine

        return cls(b.demand, own(b.shortage_penalty, inst.shortage_penalty),
                   b.stock.initial, own(b.stock.capacity, inst.stock.capacity),
                   own(b.stock.holding_cost, inst.stock.holding_cost),
                   own(b.stock.terminal_value, inst.stock.terminal_value),
                   own(b.resale_price, inst.resale_price))


def _members(inst: Instance, buyers: list[str] | None) -> list[Any] | None:
    """The coalition's members in the instance's order (None: no buyers)."""
    if inst.buyers is None:
        if buyers is not None:
            from ..errors import UsageError

            raise UsageError("the instance has no buyers: a coalition cannot be chosen")
        return None
    if buyers is None:
        return list(inst.buyers)
    known = [b.id for b in inst.buyers]
    unknown = [b for b in buyers if b not in known]
    if unknown or not buyers:
        from ..errors import UsageError

        raise UsageError(f"unknown buyer(s) {', '.join(map(str, unknown))} (buyers: "
                         f"{', '.join(known)})" if unknown else "a coalition needs a member")
    return [b for b in inst.buyers if b.id in set(buyers)]


def _groups(inst: Instance, members: list[Any] | None, e_pos: dict[str, int]
            ) -> dict[str, list[int]]:
    """Element groups: the instance's, or each member's copy (``magnet_ree@JP``)."""
    if members is None:
        return {g: [e_pos[e] for e in group] for g, group in inst.groups.items()}
    n = len(inst.elements)
    return {expanded_name(g, b.id): [j * n + e_pos[e] for e in group]
            for j, b in enumerate(members) for g, group in inst.groups.items()}


def _shared_projects(pj: ProjectData, inst: Instance, bd: BuyerData, arc_source: np.ndarray,
                     E: int) -> ProjectData:
    """Projects of a coalition: a project adds capacity to its source for every member
    (each member's arc), and the coalition may build the share of it that its members
    hold of the source (size and fixed cost scaled by the summed entitlements; a
    coalition holding none cannot decide it)."""
    share = np.ones(pj.n)
    src_ids = [s.id for s in inst.sources]
    for i, p in enumerate(inst.projects):
        if p.source is None:
            continue
        # each member has one arc per element of the source, at its share of the source
        k = np.flatnonzero(arc_source == src_ids.index(p.source))
        first = k[bd.arc_group[k] == bd.arc_group[k[0]]] if len(k) else k
        share[i] = float(bd.entitlement[first].sum())
    decide = pj.decide & (share > 0)[:, None]
    max_size = np.where(share > 0, pj.max_size * share, pj.max_size)
    fixed = np.where(share > 0, pj.fixed_cost * share, pj.fixed_cost)
    return replace(pj, reduces=np.zeros((pj.n, E, pj.reduces.shape[2])), decide=decide,
                   max_size=max_size, fixed_cost=fixed, share=share)


def with_information(d: ProblemData, information: str) -> ProblemData:
    """The same data under another information rule (history or clairvoyant)."""
    return replace(d, information=information,
                   recourse_node=recourse_nodes(d.tree, information))


def restrict_scenarios(d: ProblemData, keep: np.ndarray | list[int],
                       probability: np.ndarray | None = None,
                       names: list[str] | None = None) -> ProblemData:
    """The data of some scenarios alone (renormalised unless `probability` is given),
    with the information tree of that scenario set."""
    keep = np.asarray(keep, dtype=np.int64)
    p = d.probability[keep] if probability is None else np.asarray(probability, float)
    if probability is None and p.sum() > 0:
        p = p / p.sum()
    sub = replace(d, scenarios=names or [d.scenarios[w] for w in keep], probability=p,
                  availability=d.availability[:, :, keep],
                  price_multiplier=d.price_multiplier[:, :, keep],
                  delivery_price=d.delivery_price[:, :, keep],
                  demand_t=d.demand_t[:, :, keep], emergency=d.emergency[:, :, keep],
                  buyers=None if d.buyers is None else d.buyers.take_scenarios(keep))
    return retree(sub)


def scenario_features(d: ProblemData) -> list[np.ndarray]:
    """Per period, what the node identity compares (model.input.tree.period_features):
    availability, price multipliers, demand, emergencies and, with several buyers,
    the sources' availability for all of them."""
    more = [] if d.buyers is None else [d.buyers.shared_availability]
    return period_features(d.availability, d.price_multiplier, d.demand_t, d.emergency,
                           *more)


def retree(d: ProblemData) -> ProblemData:
    """Recompute the information tree from the scenario arrays of `d`."""
    tree = build_tree(scenario_features(d), d.probability)
    return replace(d, tree=tree, decision_node=tree.node_of,
                   recourse_node=recourse_nodes(tree, d.information))


def scenario_data(d: ProblemData, w: int) -> ProblemData:
    """The data of scenario `w` alone, with probability 1 (its tree is one path)."""
    return restrict_scenarios(d, [w], probability=np.ones(1))


def expected_value_data(d: ProblemData) -> ProblemData:
    """Every scenario-dependent parameter replaced by its probability-weighted mean
    (the delivered price too, after clipping); a stock floor's target is scaled by
    the probability that it binds (DESIGN conventions)."""
    p = d.probability
    return retree(replace(
        d, scenarios=["expected-value"], probability=np.ones(1),
        availability=np.einsum("ktw,w->kt", d.availability, p)[:, :, None],
        price_multiplier=np.einsum("ktw,w->kt", d.price_multiplier, p)[:, :, None],
        delivery_price=np.einsum("ktw,w->kt", d.delivery_price, p)[:, :, None],
        demand_t=np.einsum("etw,w->et", d.demand_t, p)[:, :, None],
        # a released stock floor counts with the probability that it binds
        emergency=np.zeros(d.emergency.shape[:2] + (1,)),
        emergency_mix=(d.emergency, d.probability),
        buyers=None if d.buyers is None else d.buyers.expected(p)))
