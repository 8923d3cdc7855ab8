"""What-if on any input: ``path=value`` overrides of an instance (``--set``, ``sweep --param``).

A path walks the instance as written (docs/cli.md, "What-if"):

* mapping keys after a dot: ``risk.lambda``, ``stock.capacity.Dy``,
  ``demand.Nd``, ``policies.crma65.budget``;
* list items by their id or position in brackets, or by id after a dot:
  ``sources[lynas-hree].supply.Dy.capacity``, ``scenarios.jp-ban-2026.probability``,
  ``projects[caremag-phase2].cost``, ``policies.crma65.max_single_country_share[0].share``
  (a rule written alone counts as a list of one).

The value is read as YAML (``0.5``, ``1.2e8``, ``true``, ``{2026: 10, 2027: 12}``).
Setting one scenario's ``probability`` rescales the other scenarios in
proportion so that the probabilities still sum to 1. The overridden instance
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
        if isinstance(node, dict):
            k = _key(node, key, where, create=last)
            if last:
                _set(out, node, k, value, trail)
                return out
            node = node[k]
        elif isinstance(node, list):
            i = _item(node, key, bracketed, where)
            if last:
                node[i] = value
                return out
            node = node[i]
        else:
            raise UsageError(f"{where}: '{trail}' is a value, it has no part '{key}'")
        trail += (f"[{key}]" if bracketed else ("." if trail else "") + key)
        n += 1
    return out


def _set(root: dict[str, Any], node: dict[str, Any], key: Any, value: Any, trail: str) -> None:
    """Set one value; a scenario probability rescales the others to keep the sum 1."""
    node[key] = value
    if key != "probability" or not trail.startswith("scenarios"):
        return
    scenarios = root.get("scenarios") or []
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        return                                   # the validation says what is wrong
    others = [s for s in scenarios if s is not node]
    rest = sum(float(s.get("probability", 0.0)) for s in others)
    if rest <= 0:
        if value != 1:
            raise UsageError(f"--set {trail}.probability: the other scenarios have "
                             "probability 0, nothing to rescale")
        return
    for s in others:
        s["probability"] = float(s["probability"]) * (1.0 - float(value)) / rest


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
