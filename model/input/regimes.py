"""Scenarios generated from regimes and events (DESIGN.md, "Scenarios from regimes and events").

An instance may give its scenarios as a model instead of a list
(:class:`~model.input.schema.ScenarioModel`): a Markov chain of regimes over
the periods (each regime a set of rules, without `periods`), independent
events (each with a probability and rules with their own `periods`), rules
that hold in `always`, and optionally a `sample`. This module turns such a
model into the plain list of scenarios that everything downstream reads,
exactly:

* **A scenario** is a regime path ``r_1 .. r_T`` (one regime per period) and
  a subset of the events. Regime ``r`` in period ``t`` applies its rules to
  ``t``; an event that happens applies its rules (with their own filters);
  the `always` rules hold in every scenario.
* **Its probability** is ``pi_1(r_1) * prod_{t>1} M_t[r_{t-1}, r_t] *
  prod_e (p_e or 1 - p_e)``. ``pi_1 = start . M_1`` is the first period's
  regime distribution: a transition from `start` (one state, or a
  distribution over states). ``M_t`` is the matrix of the latest `by_period`
  key at or before period ``t`` (in the order of `periods`), else
  `transition`. Rows (and a `start` map) sum to 1 within 1e-9 and are used
  divided by their sum. Paths of probability 0 are left out.
* **Enumeration** gives every reachable path times every subset of the
  events, ordered by path (regime indices in the order of `states`, period by
  period) then by events (not happening before happening, in event order).
  It is refused above :data:`model.safety.MAX_ENUMERATED_SCENARIOS`; the count
  is taken before enumerating, by dynamic programming over (period, state).
* **A sample** (`sample: {paths: N, seed: S}`) draws N i.i.d. paths with
  ``numpy.random.Generator(numpy.random.PCG64(S))``: first ``u = random((N,
  T))`` for the regimes, then ``v = random((N, n_events))`` for the events.
  Path n's regime in period t is the first state j (in the order of `states`)
  whose cumulative probability in its row (``pi_1`` in the first period,
  ``M_t[r_{t-1}]`` after) exceeds ``u[n, t]`` (the last state of positive
  probability ends at exactly 1); event e happens when ``v[n, e] < p_e``.
  Identical draws are merged: a scenario's probability is (times drawn)/N.
  The scenarios are in the enumeration's order, so the same seed gives the
  same list on every machine.
* **Ids**: each regime's initial in upper case (a regime whose initial it
  shares with another regime is written by its full name) joined by ``-``,
  then ``+<event id>`` for each event that happens, in event order:
  ``B-N-N-S-S-N-N+iluka-delay``. Without regimes, the ids of the events that
  happen joined by ``+``, or ``normal`` when none does.

:func:`scenario_list` is the one accessor that every consumer uses to read an
instance's scenarios whatever their form; :func:`scenario_paths` gives the
generated scenarios as arrays (the regime of each period, the events that
happen) for outputs that summarise many scenarios by regime. Both are cached,
so a 2,000-path expansion is made once per instance (validation makes it
first). No Pyomo here.
"""

from __future__ import annotations

import itertools
import json
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..errors import InstanceError, UsageError
from ..safety import MAX_ENUMERATED_SCENARIOS, MAX_ID_LENGTH, is_id
from .schema import (
    DemandShock,
    Disruption,
    Instance,
    PriceShock,
    Regimes,
    Scenario,
    ScenarioModel,
)

RULE_KEYS = ("disruptions", "price_shocks", "demand_shocks")
_RULE_MODEL = {"disruptions": Disruption, "price_shocks": PriceShock,
               "demand_shocks": DemandShock}
NO_EVENT_ID = "normal"      # the scenario of an events-only model in which nothing happens


# --------------------------------------------------------------------------- the chain
@dataclass(frozen=True)
class Chain:
    """The numbers of a scenario model over an instance's periods.

    ``matrix[index[t]]`` is the (S, S) transition matrix into period position
    ``t`` (row: the regime of ``t - 1``), rows divided by their sum; ``first`` is
    the distribution of the first period's regime, ``start . M_1``. Without
    regimes ``S = 0`` and the arrays are empty.
    """

    states: list[str]
    tokens: list[str]                # what a state is called in a scenario id
    start: np.ndarray                # (S,) the regime before the first period
    first: np.ndarray                # (S,) P(regime of the first period)
    matrix: np.ndarray               # (M, S, S) distinct matrices
    index: np.ndarray                # (T,) matrix of the transition into period t
    events: list[str]
    event_probability: np.ndarray    # (E,)

    @property
    def n_states(self) -> int:
        return len(self.states)

    @property
    def n_periods(self) -> int:
        return len(self.index)

    def into(self, t: int) -> np.ndarray:
        """The (S, S) matrix of the transition into period position ``t``."""
        return self.matrix[self.index[t]]


def _normalised(values: Sequence[float]) -> list[float]:
    total = math.fsum(values)
    return [float(v) / total if total > 0 else 0.0 for v in values]


def _matrix(rows: dict[str, dict[str, float]], states: list[str]) -> np.ndarray:
    out = np.zeros((len(states), len(states)))
    for i, s in enumerate(states):
        row = rows.get(s, {})
        out[i] = _normalised([float(row.get(n, 0.0)) for n in states])
    return out


def state_tokens(states: list[str]) -> list[str]:
    """How each regime is written in a scenario id: its initial in upper case, or its
    full name where another regime has the same initial."""
    initials = [s[0].upper() for s in states]
    return [s if initials.count(i) > 1 else i for s, i in zip(states, initials)]


def chain(model: ScenarioModel, periods: Sequence[Any]) -> Chain:
    """The chain of `model` over `periods` (a validated model: every row given)."""
    T = len(periods)
    events = [e.id for e in model.events]
    p_events = np.array([e.probability for e in model.events], dtype=float)
    reg = model.regimes
    if reg is None:
        empty = np.zeros(0)
        return Chain([], [], empty, empty, np.zeros((0, 0, 0)), np.zeros(T, np.int64),
                     events, p_events)
    states = list(reg.states)
    S = len(states)
    if isinstance(reg.start, str):
        start = np.zeros(S)
        start[states.index(reg.start)] = 1.0
    else:
        start = np.array(_normalised([float(reg.start.get(s, 0.0)) for s in states]))
    matrices = [_matrix(reg.transition, states)]
    index = np.zeros(T, dtype=np.int64)
    position = {str(p): i for i, p in enumerate(periods)}
    for key in sorted(reg.by_period, key=lambda k: position[str(k)]):
        matrices.append(_matrix(reg.by_period[key], states))
        index[position[str(key)]:] = len(matrices) - 1
    matrix = np.stack(matrices)
    m1 = matrix[index[0]] if T else np.eye(S)
    # math.fsum: the same first-period probabilities on every machine (no BLAS order)
    first = np.array([math.fsum(float(start[i]) * float(m1[i, j]) for i in range(S))
                      for j in range(S)])
    return Chain(states, state_tokens(states), start, first, matrix, index, events, p_events)


# --------------------------------------------------------------------------- counting
def _event_choices(p: np.ndarray) -> list[tuple[bool, ...]]:
    """Per event, the outcomes of positive probability (not happening first)."""
    return [(False,) if q <= 0 else (True,) if q >= 1 else (False, True) for q in p]


def count_paths(ch: Chain, most: int) -> int:
    """Number of regime paths of positive probability (1 without regimes), counted by
    dynamic programming over (period, state) without enumerating; any count above
    `most` is returned as ``most + 1``."""
    if ch.n_states == 0 or ch.n_periods == 0:
        return 1
    count = (ch.first > 0).astype(np.int64)
    for t in range(1, ch.n_periods):
        count = np.minimum(count @ (ch.into(t) > 0).astype(np.int64), most + 1)
    return int(min(int(count.sum()), most + 1))


def count_scenarios(ch: Chain, most: int = MAX_ENUMERATED_SCENARIOS) -> int:
    """Number of scenarios that enumeration gives (capped at ``most + 1``):
    reachable regime paths times the subsets of events of positive probability."""
    subsets = math.prod(len(c) for c in _event_choices(ch.event_probability))
    return min(count_paths(ch, most) * subsets, most + 1)


def longest_id(ch: Chain) -> int:
    """Length of the longest id a scenario of positive probability can get (whether
    enumerated or drawn): the longest reachable path (max-plus dynamic programming)
    plus every event that can happen."""
    possible = [e for e, q in zip(ch.events, ch.event_probability) if q > 0]
    if ch.n_states == 0:
        if not possible:
            return len(NO_EVENT_ID)
        longest = sum(len(e) for e in possible) + len(possible) - 1
        return max(longest, len(NO_EVENT_ID)) if all(
            q < 1 for q in ch.event_probability) else longest
    size = np.array([len(t) for t in ch.tokens], dtype=float)
    best = np.where(ch.first > 0, size, -np.inf)
    for t in range(1, ch.n_periods):
        reach = np.where(ch.into(t) > 0, best[:, None], -np.inf)     # (from, to)
        best = reach.max(axis=0) + 1 + size
    return int(best.max()) + sum(1 + len(e) for e in possible)


# --------------------------------------------------------------------------- paths
@dataclass(frozen=True)
class ScenarioPaths:
    """The generated scenarios as paths, for outputs that summarise them by regime.

    Row ``w`` is scenario ``ids[w]``: ``regime[w, t]`` is the index in `states`
    of its regime in period ``periods[t]`` (shape (W, 0) without regimes),
    ``happens[w, e]`` whether event ``events[e]`` happens. For a sample,
    ``draws[w]`` is how often the path was drawn of ``sample_paths``
    (``probability = draws / sample_paths``); both are None when enumerated.
    """

    ids: list[str]
    probability: np.ndarray          # (W,)
    states: list[str]
    events: list[str]
    periods: list[Any]
    regime: np.ndarray               # (W, T) int32, or (W, 0) without regimes
    happens: np.ndarray              # (W, n_events) bool
    draws: np.ndarray | None = None  # (W,) int64, sampled only
    sample_paths: int | None = None
    seed: int | None = None

    @property
    def n_scenarios(self) -> int:
        return len(self.ids)

    @property
    def sampled(self) -> bool:
        return self.sample_paths is not None


def _enumerate(ch: Chain) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every reachable path times every event subset: (regime, happens, probability)."""
    T, S = ch.n_periods, ch.n_states
    if S:
        paths = np.flatnonzero(ch.first > 0).astype(np.int32)[:, None]
        prob = ch.first[paths[:, 0]]
        for t in range(1, T):
            m = ch.into(t)
            last = paths[:, -1]
            rows, nxt = np.nonzero(m[last] > 0)          # row-major: lexicographic order
            prob = prob[rows] * m[last[rows], nxt]
            paths = np.concatenate([paths[rows], nxt.astype(np.int32)[:, None]], axis=1)
    else:
        paths, prob = np.zeros((1, 0), dtype=np.int32), np.ones(1)
    subsets = list(itertools.product(*_event_choices(ch.event_probability)))
    E = len(ch.events)
    happens = np.array(subsets, dtype=bool).reshape(len(subsets), E)
    sub_prob = np.array([math.prod(float(q) if h else 1.0 - float(q)
                                   for q, h in zip(ch.event_probability, row))
                         for row in subsets])
    K = len(subsets)
    regime = np.repeat(paths, K, axis=0)
    return regime, np.tile(happens, (len(paths), 1)), np.repeat(prob, K) * np.tile(sub_prob,
                                                                                     len(paths))


def _cumulative(row: np.ndarray) -> np.ndarray:
    """Cumulative probabilities of a row, ending at exactly 1 from its last positive
    entry on (a draw u < 1 never passes it)."""
    cum = np.array(list(itertools.accumulate(float(v) for v in row)))
    positive = np.flatnonzero(row > 0)
    if len(positive):
        cum[positive[-1]:] = 1.0
    return cum


def _draw(ch: Chain, paths: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`paths` i.i.d. draws merged: (regime, happens, times drawn), in enumeration order."""
    rng = np.random.Generator(np.random.PCG64(seed))
    T, S, E = ch.n_periods, ch.n_states, len(ch.events)
    u = rng.random((paths, T if S else 0))
    v = rng.random((paths, E))
    regime = np.zeros((paths, T if S else 0), dtype=np.int32)
    if S and T:
        regime[:, 0] = (u[:, 0, None] >= _cumulative(ch.first)[None, :]).sum(axis=1)
        cums = np.stack([np.stack([_cumulative(r) for r in m]) for m in ch.matrix])
        for t in range(1, T):
            cum = cums[ch.index[t]][regime[:, t - 1]]               # (N, S)
            regime[:, t] = (u[:, t, None] >= cum).sum(axis=1)
    happens = v < ch.event_probability[None, :]
    keys = np.concatenate([regime, happens.astype(np.int32)], axis=1)
    if keys.shape[1] == 0:
        return regime[:1], happens[:1], np.array([paths], dtype=np.int64)
    unique, counts = np.unique(keys, axis=0, return_counts=True)   # sorted: lexicographic
    return (unique[:, :regime.shape[1]].astype(np.int32), unique[:, regime.shape[1]:] > 0,
            counts.astype(np.int64))


def _ids(ch: Chain, regime: np.ndarray, happens: np.ndarray) -> list[str]:
    out = []
    for path, hit in zip(regime.tolist(), happens.tolist()):
        fired = [e for e, h in zip(ch.events, hit) if h]
        if ch.n_states:
            out.append("-".join(ch.tokens[r] for r in path) + "".join("+" + e for e in fired))
        else:
            out.append("+".join(fired) or NO_EVENT_ID)
    return out


def check_size(model: ScenarioModel, periods: Sequence[Any]) -> Chain:
    """Refuse a model whose scenarios cannot be generated: too many to enumerate
    (without `sample`), or an id longer than the limit. Returns its chain."""
    ch = chain(model, periods)
    if model.sample is None:
        n = count_scenarios(ch)
        if n > MAX_ENUMERATED_SCENARIOS:
            paths = count_paths(ch, MAX_ENUMERATED_SCENARIOS)
            k = sum(len(c) == 2 for c in _event_choices(ch.event_probability))
            size = (f"{paths:,} regime paths" if paths <= MAX_ENUMERATED_SCENARIOS
                    else f"more than {MAX_ENUMERATED_SCENARIOS:,} regime paths") + \
                (f" x 2^{k} event outcomes" if k else "")
            raise InstanceError(
                f"enumerating every regime path and event would give more than "
                f"{MAX_ENUMERATED_SCENARIOS:,} scenarios ({size}), the limit (docs/cli.md, "
                "Safety); add `sample: {paths: N, seed: S}` to draw N paths instead",
                "scenarios")
    longest = longest_id(ch)
    if longest > MAX_ID_LENGTH:
        where = "scenarios.regimes.states" if ch.n_states else "scenarios.events"
        raise InstanceError(
            f"the longest scenario id would have {longest} characters, more than "
            f"{MAX_ID_LENGTH} (regime initials joined by '-', then '+' and the id of each "
            "event that happens); use shorter state or event ids, or fewer periods", where)
    return ch


def generate_paths(model: ScenarioModel, periods: Sequence[Any]) -> ScenarioPaths:
    """The scenarios of a validated model as paths (enumerated, or drawn with
    `sample`), without building the scenarios' rules. Raises InstanceError when the
    model is too large to enumerate or two scenarios would get the same id."""
    ch = check_size(model, periods)
    if model.sample is None:
        regime, happens, prob = _enumerate(ch)
        keep = prob > 0                   # left out: probability 0 (also after rounding)
        regime, happens, prob = regime[keep], happens[keep], prob[keep]
        draws = None
    else:
        regime, happens, draws = _draw(ch, model.sample.paths, model.sample.seed)
        prob = draws / float(model.sample.paths)
    ids = _ids(ch, regime, happens)
    if len(set(ids)) != len(ids):
        seen: dict[str, int] = {}
        for w, i in enumerate(ids):
            if i in seen:
                raise InstanceError(
                    f"two scenarios get the id '{i}' (a state or event id with '-' or '+' "
                    "reads two ways); rename a state or an event", "scenarios")
            seen[i] = w
    for i in ids:
        if not is_id(i):                  # the length is checked above; this is a backstop
            raise InstanceError(f"the generated scenario id '{i[:60]}' is not a valid id",
                                "scenarios")
    return ScenarioPaths(ids, np.asarray(prob, dtype=float), list(ch.states), list(ch.events),
                         list(periods), regime, happens, draws,
                         None if model.sample is None else model.sample.paths,
                         None if model.sample is None else model.sample.seed)


# --------------------------------------------------------------------------- scenarios
def _with_periods(rule: Any, key: str, periods: list[Any]) -> Any:
    """A regime's rule as a scenario rule holding in `periods`."""
    cls = _RULE_MODEL[key]
    fields = {name: getattr(rule, name) for name in cls.model_fields if name != "periods"}
    return cls.model_construct(_fields_set=set(rule.model_fields_set) | {"periods"},
                               periods=list(periods), **fields)


def _runs(path: list[int], states: list[str], periods: list[Any]) -> str:
    """``ban 2026, normal 2027-2029``: the regimes of a path, period runs joined."""
    parts, start = [], 0
    for t in range(1, len(path) + 1):
        if t == len(path) or path[t] != path[start]:
            span = f"{periods[start]}" if t - 1 == start else f"{periods[start]}-{periods[t - 1]}"
            parts.append(f"{states[path[start]]} {span}")
            start = t
    return ", ".join(parts)


def build_scenarios(model: ScenarioModel, paths: ScenarioPaths) -> list[Scenario]:
    """The scenario list of `paths`: per scenario the `always` rules, then each regime's
    rules with ``periods`` the periods it holds (one rule per regime and rule, its
    periods listed together), then the rules of the events that happen."""
    reg: Regimes | None = model.regimes
    states = list(reg.states.values()) if reg is not None else []
    cache: dict[tuple[int, tuple[int, ...]], dict[str, list[Any]]] = {}
    periods = paths.periods
    out = []
    for w in range(paths.n_scenarios):
        path = paths.regime[w].tolist()
        rules: dict[str, list[Any]] = {k: list(getattr(model.always, k)) for k in RULE_KEYS}
        for s, state in enumerate(states):
            ts = tuple(t for t, r in enumerate(path) if r == s)
            if not ts:
                continue
            got = cache.get((s, ts))
            if got is None:
                labels = [periods[t] for t in ts]
                got = cache[(s, ts)] = {k: [_with_periods(r, k, labels)
                                            for r in getattr(state, k)] for k in RULE_KEYS}
            for k in RULE_KEYS:
                rules[k] += got[k]
        fired = []
        for e, hit in zip(model.events, paths.happens[w].tolist()):
            if hit:
                fired.append(e.id)
                for k in RULE_KEYS:
                    rules[k] += getattr(e, k)
        words = []
        if path:
            words.append(_runs(path, paths.states, periods))
        if model.events:
            words.append(", ".join(fired) + (" happens" if len(fired) == 1 else " happen")
                         if fired else "no event")
        if paths.draws is not None:
            words.append(f"drawn {int(paths.draws[w])} of {paths.sample_paths} times "
                         f"(seed {paths.seed})")
        out.append(Scenario.model_construct(
            id=paths.ids[w], description="; ".join(words),
            probability=float(paths.probability[w]), **rules))
    return out


# --------------------------------------------------------------------------- accessors
@dataclass
class _Generated:
    paths: ScenarioPaths
    scenarios: list[Scenario] | None = None


_CACHE: "OrderedDict[tuple[str, str], _Generated]" = OrderedDict()
_CACHE_SIZE = 4
_LOCK = threading.Lock()


def _generated(model: ScenarioModel, periods: Sequence[Any]) -> _Generated:
    """The cached expansion of `model` over `periods`, keyed by their content (an
    equal model over the same period labels shares it)."""
    key = (model.model_dump_json(by_alias=True), json.dumps(list(periods)))
    with _LOCK:
        hit = _CACHE.get(key)
        if hit is not None:
            _CACHE.move_to_end(key)
            return hit
    entry = _Generated(generate_paths(model, periods))
    with _LOCK:
        _CACHE[key] = entry
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return entry


def clear_cache() -> None:
    """Forget every cached expansion (they are rebuilt when next asked for)."""
    with _LOCK:
        _CACHE.clear()


def is_generated(inst: Instance) -> bool:
    """True when the instance's scenarios come from regimes and events."""
    return isinstance(inst.scenarios, ScenarioModel)


def refuse_generated(inst: Instance, what: str) -> None:
    """A UsageError (exit 2) when `what` cannot hold scenarios from regimes and events."""
    if is_generated(inst):
        raise UsageError(
            f"instance '{inst.name}' generates its scenarios from regimes and events, which "
            f"{what} cannot hold; write them as a list first: sourcing build scenarios "
            "INSTANCE --expand --out FILE")


def scenario_paths(inst: Instance) -> ScenarioPaths | None:
    """The generated scenarios as paths (see :class:`ScenarioPaths`); None when the
    instance lists its scenarios (or has none)."""
    if not isinstance(inst.scenarios, ScenarioModel):
        return None
    return _generated(inst.scenarios, inst.periods).paths


def scenario_list(inst: Instance) -> list[Scenario]:
    """The instance's scenarios whatever their form: the list as written, or the
    scenarios generated from its regimes and events (cached). Empty when the
    instance has no `scenarios` (one scenario `base`, probability 1, no rules).

    The list is a copy; the scenarios in it are shared and must not be changed."""
    if inst.scenarios is None:
        return []
    if not isinstance(inst.scenarios, ScenarioModel):
        return list(inst.scenarios)
    entry = _generated(inst.scenarios, inst.periods)
    if entry.scenarios is None:
        built = build_scenarios(inst.scenarios, entry.paths)
        with _LOCK:
            if entry.scenarios is None:
                entry.scenarios = built
    return list(entry.scenarios)


MANY_SCENARIOS = 50     # above this many, outputs summarise a list of scenarios too


def summarised(inst: Instance) -> bool:
    """Whether outputs summarise the instance's scenarios (distributions, regimes by
    period) rather than list them one by one: scenarios generated from regimes and
    events, or a list of more than :data:`MANY_SCENARIOS` (docs/outputs.md)."""
    return is_generated(inst) or len(scenario_list(inst)) > MANY_SCENARIOS


def describe(inst: Instance) -> str:
    """``2,187 scenarios from 3 regimes and 1 event (enumerated)``, or the list's count."""
    paths = scenario_paths(inst)
    if paths is None:
        return f"{len(scenario_list(inst)) or 1} scenario(s)"
    n_s, n_e = len(paths.states), len(paths.events)
    parts = []
    if n_s:
        parts.append(f"{n_s} regime{'s' if n_s != 1 else ''}")
    if n_e:
        parts.append(f"{n_e} event{'s' if n_e != 1 else ''}")
    how = (f"a sample of {paths.sample_paths:,} paths, seed {paths.seed}" if paths.sampled
           else "enumerated")
    return f"{paths.n_scenarios:,} scenario(s) from {' and '.join(parts)} ({how})"
