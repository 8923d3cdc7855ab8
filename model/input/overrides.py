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
in proportion. An event's probability stands alone. The overridden instance
is validated again, so a bad value gets the usual one-line message.
"""

from __future__ import annotations

import copy
import re
from typing import Any

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
            return out
        if isinstance(node, dict):
            k = _key(node, key, where, create=last)
            if last:
                _set(out, node, k, value, trail)
                return out
            parent, at, node = node, k, node[k]
        elif isinstance(node, list):
            i = _item(node, key, bracketed, where)
            if last:
                node[i] = value
                return out
            parent, at, node = node, i, node[i]
        else:
            raise UsageError(f"{where}: '{trail}' is a value, it has no part '{key}'")
        trail += (f"[{key}]" if bracketed else ("." if trail else "") + key)
        n += 1
    return out


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


def _set(root: dict[str, Any], node: dict[str, Any], key: Any, value: Any, trail: str) -> None:
    """Set one value. A probability that is one of several summing to 1 rescales the
    others in proportion, so that the sum stays 1: a scenario's probability (a
    list of scenarios) the other scenarios, a transition probability (or a
    `start` probability) the rest of its row. An event's probability stands alone."""
    node[key] = value
    scenarios = root.get("scenarios")
    if isinstance(scenarios, list) and key == "probability" and trail.startswith("scenarios"):
        others, what = [s for s in scenarios if s is not node], "the other scenarios have"
        field = "probability"
    elif isinstance(scenarios, dict) and _ROW.fullmatch(trail):
        others, what, field = [k for k in node if k != key], "the rest of the row has", None
    else:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        return                                   # the validation says what is wrong

    def get(item: Any) -> Any:
        return item.get(field, 0.0) if field else node[item]

    if any(isinstance(get(o), bool) or not isinstance(get(o), (int, float)) for o in others):
        return                                   # the validation says what is wrong
    rest = sum(float(get(o)) for o in others)
    if rest <= 0:
        if value != 1:
            raise UsageError(f"--set {trail}.{key}: {what} probability 0, nothing to rescale")
        return
    for o in others:
        scaled = float(get(o)) * (1.0 - float(value)) / rest
        if field:
            o[field] = scaled
        else:
            node[o] = scaled


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


def overridden(loaded: Any, assignments: list[tuple[str, Any]]) -> Any:
    """A validated LoadedInstance with every override applied (in order)."""
    from .builders import instance_to_dict
    from .instance import instance_from_dict

    if not assignments:
        return loaded
    data = instance_to_dict(loaded.instance)
    for path, value in assignments:
        data = apply_override(data, path, value)
    label = ", ".join(f"{p}={override_text(v)}" for p, v in assignments)
    try:
        changed = instance_from_dict(data, name=f"{loaded.path or loaded.name} with {label}")
    except InstanceError as err:
        err.message = f"{err.message} (after --set {label})"
        raise
    changed.path = loaded.path
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
