"""What-if on any input: ``path=value`` overrides of an instance (``--set``, ``sweep --param``).

A path walks the instance as written (docs/cli.md, "What-if"):

* mapping keys after a dot: ``risk.lambda``, ``stock.capacity.Dy``,
  ``demand.Nd``, ``policies.crma65.budget``;
* list items by their id or position in brackets, or by id after a dot:
  ``sources[lynas-hree].supply.Dy.capacity``, ``scenarios.jp-ban-2026.probability``,
  ``projects[caremag-phase2].cost``, ``policies.crma65.max_single_country_share[0].share``
  (a rule written alone counts as a list of one).

Scenarios from regimes and events are reached the same way:
``scenarios.regimes.transition.normal.ban``, ``scenarios.regimes.start.ban``,
``scenarios.regimes.by_period.2029.ban.normal``,
``scenarios.regimes.states.ban.disruptions[0].availability``,
``scenarios.events[iluka-delay].probability``, ``scenarios.sample.seed``.

The value is read as YAML (``0.5``, ``1.2e8``, ``true``, ``{2026: 10, 2027: 12}``).
A period of a value given as one number for every period turns that number into a
map period -> number first: ``indices.cn-fob.Dy.2027=3.0e5`` on ``Dy: 305000``
sets 2027 alone and keeps 305,000 in the other periods.
One rule keeps probabilities that sum to 1 summing to 1: setting one scenario's
``probability`` rescales the other scenarios in proportion, and setting a
transition probability (or one of a `start` map) rescales the rest of its row
in proportion. An event's probability stands alone. Several probabilities of one
list (or one row) set *together* (:func:`apply_together`, a ranges file's
``group:``) take their values, and the others share what is left in proportion.
The overridden instance is validated again, so a bad value gets the usual
one-line message.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import InstanceError, UsageError
from ..safety import shown

_TOKEN = re.compile(r"\[([^\]]*)\]|([^.\[\]]+)")


def parse_path(path: str) -> list[tuple[str, bool]]:
    """Segments of a path: (text, bracketed)."""
    if not path or path.strip() != path:
        raise UsageError(f"empty or padded path '{path}'")
    segments: list[tuple[str, bool]] = []
    pos = 0
    while pos < len(path):
        if path[pos] == ".":
            if pos == 0 or pos == len(path) - 1:
                raise UsageError(f"path '{path}': a dot must join two parts")
            pos += 1
        m = _TOKEN.match(path, pos)
        if not m or m.end() == pos:
            raise UsageError(f"path '{path}': cannot read it at position {pos}")
        segments.append((m.group(1), True) if m.group(1) is not None else (m.group(2), False))
        pos = m.end()
    return segments


def _item(items: list[Any], key: str, bracketed: bool, where: str) -> int:
    """Position of a list item named by id (or, in brackets, by position)."""
    if bracketed and re.fullmatch(r"\d+", key):
        i = int(key)
        if i >= len(items):
            raise UsageError(f"{where}: there is no item {i} (the list has {len(items)})")
        return i
    for i, it in enumerate(items):
        if isinstance(it, dict) and str(it.get("id")) == key:
            return i
    ids = [str(it.get("id")) for it in items if isinstance(it, dict) and "id" in it]
    raise UsageError(f"{where}: no item with id '{key}'" +
                     (f" (ids: {', '.join(ids[:12])})" if ids else ""))


def _key(node: dict[str, Any], key: str, where: str, create: bool) -> Any:
    """A mapping key as written; period labels may be ints in the file."""
    for k in node:
        if str(k) == key:
            return k
    if create:
        return int(key) if re.fullmatch(r"-?\d+", key) else key
    raise UsageError(f"{where}: no key '{key}' (keys: {', '.join(map(str, node))})")


def apply_override(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of instance `data` with `path` set to `value` (see the module docstring)."""
    out = copy.deepcopy(data)
    _apply(out, path, value, rescale=True)
    return out


def apply_together(data: dict[str, Any], assignments: list[tuple[str, Any]]
                   ) -> dict[str, Any]:
    """A copy of `data` with every assignment applied at once: probabilities of one list
    of scenarios (or of one transition row) that are set together keep the values
    given, and the others of that list (row) are rescaled in proportion so that the
    sum stays 1 (one set alone is the rule of :func:`apply_override`). Other paths are
    set as they are. A UsageError if the values set together exceed 1, or leave a
    remainder that no other probability can take."""
    return together_in_place(copy.deepcopy(data), assignments)


def together_in_place(out: dict[str, Any], assignments: list[tuple[str, Any]]
                      ) -> dict[str, Any]:
    """:func:`apply_together` on `out` itself (no copy), which it returns."""
    held: dict[int, tuple[_Probabilities, set[int]]] = {}
    for path, value in assignments:
        got = _apply(out, path, value, rescale=False)
        if got is not None:
            named = held[got.container][1] if got.container in held else set()
            named.add(got.mine)
            held[got.container] = (got, named)     # with the latest list of members
    for probs, named in held.values():
        values = [probs.get(m) for m in probs.members]
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in values) or \
                any(not 0 <= values[i] <= 1 for i in named):
            continue                                 # the validation says what is wrong
        taken = sum(float(v) for i, v in enumerate(values) if i in named)
        left = sum(float(v) for i, v in enumerate(values) if i not in named)
        if taken > 1.0 + 1e-12:
            raise UsageError(f"--set {probs.trail}: probabilities set together sum to "
                             f"{taken:.6g}, above 1")
        if left <= 0:
            if abs(taken - 1.0) > 1e-12:
                raise UsageError(f"--set {probs.trail}: {probs.what} probability 0, "
                                 "nothing to rescale")
            continue
        for i, m in enumerate(probs.members):
            if i not in named:
                probs.put(m, float(values[i]) * (1.0 - taken) / left)
    return out


@dataclass
class _Probabilities:
    """The probabilities that sum to 1 with one just set (a list of scenarios or a row):
    the members (scenario mappings or row keys), how to read and write one, the
    position of the one set, and words for messages."""

    members: list[Any]
    get: Callable[[Any], Any]
    put: Callable[[Any, float], None]
    container: int          # id of the list or row
    mine: int
    what: str
    trail: str              # the path of the one set
    group: str              # the list or row: "scenarios" or the row's path


def sums_with(data: dict[str, Any], path: str) -> str | None:
    """The probabilities that `path` sums to 1 with: "scenarios" for a scenario's
    probability, the row's path for a transition (or `start`) probability, None for any
    other path (an event's probability stands alone). Raises UsageError for a path
    that does not exist."""
    got = _apply(copy.deepcopy(data), path, 0.0, rescale=False)
    return got.group if got is not None else None


def _apply(out: dict[str, Any], path: str, value: Any, rescale: bool) -> Any:
    """Set `path` to `value` in `out` in place. With `rescale`, a probability that is one
    of several summing to 1 rescales the others (:func:`_set`); without, it returns
    what :func:`apply_together` needs to rescale them later (None for other paths)."""
    segments = parse_path(path)
    node: Any = out
    parent: Any = None
    at: Any = None                 # node is parent[at]
    trail = ""
    n = 0
    while n < len(segments):
        key, bracketed = segments[n]
        last = n == len(segments) - 1
        where = f"--set {path}" + (f" (at {trail})" if trail else "")
        if isinstance(node, list) and not bracketed and len(node) == 1 and \
                isinstance(node[0], dict) and "id" not in node[0]:
            node = node[0]            # a list of one rule: its keys directly
            continue
        period = _period_label(out, key) if last and not bracketed else None
        if period is not None and parent is not None and _is_number(node):
            # one period of a number given for every period: the number becomes a map
            # period -> number first (`--set indices.cn.Dy.2027=3e5` on `Dy: 2.8e5`)
            node = parent[at] = {p: node for p in out["periods"]}
            node[period] = value
            return None
        if isinstance(node, dict):
            k = _key(node, key, where, create=last)
            if last:
                return _set(out, node, k, value, trail, rescale)
            parent, at, node = node, k, node[k]
        elif isinstance(node, list):
            i = _item(node, key, bracketed, where)
            if last:
                node[i] = value
                return None
            parent, at, node = node, i, node[i]
        else:
            raise UsageError(f"{where}: '{trail}' is a value, it has no part '{key}'")
        trail += (f"[{key}]" if bracketed else ("." if trail else "") + key)
        n += 1
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _period_label(data: dict[str, Any], key: str) -> Any:
    """The period label of the instance that `key` names (2026 or "2026"), or None."""
    for p in data.get("periods") or []:
        if str(p) == key:
            return p
    return None


_ROW = re.compile(r"scenarios\.regimes\.(?:start|transition\.[^.\[\]]+|"
                  r"by_period\.[^.\[\]]+\.[^.\[\]]+)")


def _set(root: dict[str, Any], node: dict[str, Any], key: Any, value: Any, trail: str,
         rescale: bool = True) -> "_Probabilities | None":
    """Set one value. A probability that is one of several summing to 1 rescales the
    others in proportion, so that the sum stays 1: a scenario's probability (a
    list of scenarios) the other scenarios, a transition probability (or a
    `start` probability) the rest of its row. An event's probability stands alone.

    Without `rescale` nothing else changes, and for such a probability the
    :class:`_Probabilities` it belongs to is returned (:func:`apply_together`
    rescales once every value is in)."""
    node[key] = value
    scenarios = root.get("scenarios")
    if isinstance(scenarios, list) and key == "probability" and trail.startswith("scenarios"):
        members: list[Any] = list(scenarios)
        mine = next(i for i, s in enumerate(scenarios) if s is node)
        what, container = "the other scenarios have", id(scenarios)

        def get(item: Any) -> Any:
            return item.get("probability", 0.0)

        def put(item: Any, v: float) -> None:
            item["probability"] = v
    elif isinstance(scenarios, dict) and _ROW.fullmatch(trail):
        members = list(node)
        mine = members.index(key)
        what, container = "the rest of the row has", id(node)

        def get(item: Any) -> Any:
            return node[item]

        def put(item: Any, v: float) -> None:
            node[item] = v
    else:
        return None
    probs = _Probabilities(members, get, put, container, mine, what, f"{trail}.{key}",
                           "scenarios" if what.startswith("the other scenarios") else trail)
    if not rescale:
        return probs
    others = [m for i, m in enumerate(members) if i != mine]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        return None                              # the validation says what is wrong
    if any(isinstance(get(o), bool) or not isinstance(get(o), (int, float)) for o in others):
        return None                              # the validation says what is wrong
    rest = sum(float(get(o)) for o in others)
    if rest <= 0:
        if value != 1:
            raise UsageError(f"--set {trail}.{key}: {what} probability 0, nothing to rescale")
        return None
    for o in others:
        put(o, float(get(o)) * (1.0 - float(value)) / rest)
    return None


def parse_assignment(text: str) -> tuple[str, Any]:
    """``path=value`` -> (path, value read as YAML)."""
    from .instance import yaml_load

    if "=" not in text:
        raise UsageError(f"--set wants path=value, got '{text}'")
    path, raw = text.split("=", 1)
    try:
        value = yaml_load(raw) if raw.strip() else None
    except InstanceError as err:      # not YAML, or beyond the instance files' limits
        raise UsageError(f"--set {path}: cannot read the value {shown(raw)} "
                         f"({err.message})") from None
    if value is None:
        raise UsageError(f"--set {path}: give a value after '='")
    return path.strip(), value


def overridden(loaded: Any, assignments: list[tuple[str, Any]], together: bool = False,
               hashed: bool = True) -> Any:
    """A validated LoadedInstance with every override applied (in order; with
    `together`, at once: :func:`apply_together`).

    With ``hashed=False`` the instance is validated but not written out as YAML to be
    hashed (most of the time of an override on a large instance): it has no text, no
    SHA-256 and no path, for studies that solve many variants and write none of them.
    """
    from .builders import instance_to_dict
    from .instance import instance_from_dict

    if not assignments:
        return loaded
    data = instance_to_dict(loaded.instance)
    if together:
        data = apply_together(data, assignments)
    else:
        for path, value in assignments:
            data = apply_override(data, path, value)
    label = ", ".join(f"{p}={override_text(v)}" for p, v in assignments)
    try:
        changed = instance_from_dict(data, name=f"{loaded.path or loaded.name} with {label}",
                                     text=hashed)
    except InstanceError as err:
        err.message = f"{err.message} (after --set {label})"
        raise
    changed.path = loaded.path if hashed else None
    changed.overrides = [*loaded.overrides,
                         *(f"{p}={override_text(v)}" for p, v in assignments)]
    return changed


def override_text(value: Any, most: int = 200) -> str:
    """A value of an override as text for messages and summary.json: at most `most`
    characters, built at a bounded cost (model.safety.shown), whatever its size."""
    if isinstance(value, (dict, list, tuple)):
        return shown(value, most)
    text = str(value)
    return text if len(text) <= most else text[:most - 3] + "..."
