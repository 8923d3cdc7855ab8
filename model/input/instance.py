"""Loading an instance file: YAML -> validated :class:`~model.input.schema.Instance`.

`load_instance` is the boundary of the program. It reads the file with limits
(a regular file, size, nesting, alias expansion, no duplicate keys, YAML 1.2
scalars), validates structure with the pydantic schema, then
runs the named cross-reference checks below. Any problem becomes one
:class:`~model.errors.InstanceError` naming the file, the place
(``sources[2].supply.Dy.capacity``), the line and what is wrong.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import stat
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterable

import yaml
from pydantic import ValidationError

from ..errors import InstanceError, UsageError
from ..safety import (
    MAX_BUYERS,
    MAX_DISCOUNT_RATE,
    MAX_EVENTS,
    MAX_INT_DIGITS,
    MAX_MULTIPLIER,
    MAX_REGIME_STATES,
    MAX_STOCK_PERIODS,
    MIN_DISCOUNT_WEIGHT,
    check_model_size,
    shown,
)
from .schema import RULE_KINDS, Instance, Policy, ScenarioModel, Selector

DEFAULT_INSTANCE = "japan_2026.yaml"
MAX_FILE_BYTES = 32 * 1024 * 1024
MAX_EXPANDED_NODES = 2_000_000
MAX_DEPTH = 64        # instance files nest about 8 deep; PyYAML's constructor recurses
PROBABILITY_TOLERANCE = 1e-9

_INT = "tag:yaml.org,2002:int"


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml when available
    """SafeLoader with YAML 1.2 core scalars: ``5.0e6`` is a float (PyYAML reads a
    string), only true/false are booleans (PyYAML reads ``NO``, Norway, as false)
    and integers are decimal, ``0o`` octal or ``0x`` hex (PyYAML reads ``010`` as 8
    and ``1:20`` as 80)."""


_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v
        if tag not in ("tag:yaml.org,2002:float", "tag:yaml.org,2002:bool", _INT)]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
# YAML 1.2 core integers (underscores as digit separators, as in the floats below)
_INT_RE = re.compile(r"^(?:[-+]?[0-9][0-9_]*|0o[0-7_]+|0x[0-9a-fA-F_]+)$")
_Loader.add_implicit_resolver(_INT, _INT_RE, list("-+0123456789"))


def _construct_int(loader: Any, node: yaml.ScalarNode) -> int:
    text = str(loader.construct_scalar(node)).replace("_", "")
    digits = len(text.lstrip("+-"))
    if digits > MAX_INT_DIGITS:   # int() refuses over 4,300 digits; far beyond any bound
        raise yaml.constructor.ConstructorError(
            None, None, f"an integer of {digits:,} digits is too long", node.start_mark)
    try:
        if text.startswith("0o"):
            return int(text[2:], 8)
        if text.startswith("0x"):
            return int(text[2:], 16)
        return int(text, 10)      # leading zeros are decimal: 010 is 10
    except ValueError:
        raise yaml.constructor.ConstructorError(
            None, None, f"not an integer: {text!r}", node.start_mark) from None


_Loader.add_constructor(_INT, _construct_int)
# YAML 1.2 booleans only: in YAML 1.1 `NO` (Norway) and `on` are booleans
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool",
                              re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                              list("tTfF"))
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                  |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                  |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                  |[-+]?\.(?:inf|Inf|INF)
                  |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def default_instance_path() -> Path:
    """The bundled default instance that `sourcing solve` uses without an argument."""
    return Path(str(resources.files("model.instances") / DEFAULT_INSTANCE))


def yaml_load(text: str, what: str | None = None) -> Any:
    """Parse YAML text as instance files are parsed (YAML 1.2 scalars, no tags) and with
    their limits: size, nesting, duplicate keys, alias expansion.

    The one YAML reader of the program: instance files, workbook cells, ``--set``
    and ``--values`` all come through here. Raises InstanceError (`what` as its
    file) for text that is not valid YAML or breaks a limit; the message quotes
    nothing of the text, so an alias bomb is never expanded to be shown.
    """
    if len(text) > MAX_FILE_BYTES:
        raise InstanceError(f"the text is {len(text):,} characters; {_limit(MAX_FILE_BYTES)}",
                            file=what)
    return _parse_yaml(text, what)[0]


def pkey(label: Any) -> str:
    """Canonical key of a period label: 2026 and "2026" name the same period."""
    return str(label)


@dataclass
class LoadedInstance:
    """A validated instance with where it came from."""

    instance: Instance
    path: Path | None
    sha256: str
    warnings: list[str] = field(default_factory=list)
    # the bytes that were validated (and hashed): run folders copy these, not the
    # file again, so instance.yaml always matches instance_sha256
    raw: bytes | None = field(default=None, repr=False)
    # what-if overrides applied after loading (model.input.overrides), as "path=value"
    overrides: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.instance.name


# --------------------------------------------------------------------------- reading
def _place(loc: Iterable[Any]) -> str:
    out = ""
    for item in loc:
        if isinstance(item, int):
            out += f"[{item}]"
        else:
            out += ("." if out else "") + str(item)
    return out


def _clean_loc(loc: tuple[Any, ...], data: Any) -> tuple[Any, ...]:
    """The places of `loc` that exist in the input `data`.

    pydantic inserts the names of union members and validators into `loc`
    (e.g. 'function-before[_id(), str]', '[key]'); they are not places in the
    file. Walking the input keeps exactly the real keys and positions, also a
    user's key that looks like such a name. A rule written alone (not as a
    list) is item [0] of its kind.
    """
    out: list[Any] = []
    node = data
    for item in loc:
        if isinstance(node, dict) and item in node:
            out.append(item)
            node = node[item]
        elif isinstance(node, list) and isinstance(item, int) and 0 <= item < len(node):
            out.append(item)
            node = node[item]
        elif isinstance(node, dict) and item == 0 and not isinstance(item, bool):
            out.append(0)              # a lone rule or selector, read as a list of one
    return tuple(out)


def _line_of(root: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    node, line = root, None
    for item in loc:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if str(getattr(key_node, "value", None)) == str(item):
                    line, node = key_node.start_mark.line + 1, value_node
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(item, int) \
                and 0 <= item < len(node.value):
            node = node.value[item]
            line = node.start_mark.line + 1
        else:
            return line
    return line if line is not None else (root.start_mark.line + 1 if root else None)


def _expanded_size(root: yaml.Node) -> int:
    """Number of nodes after alias expansion, computed without expanding."""
    memo: dict[int, int] = {}

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in memo:
            return memo[key]
        memo[key] = 1  # guards against recursive aliases
        if isinstance(node, yaml.MappingNode):
            total = 1 + sum(size(k) + size(v) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            total = 1 + sum(size(v) for v in node.value)
        else:
            total = 1
        memo[key] = min(total, MAX_EXPANDED_NODES + 1)
        return memo[key]

    return size(root)


def read_limited(path: Path, limit: int = MAX_FILE_BYTES, follow: bool = True) -> bytes:
    """The bytes of a regular file of at most `limit` bytes, or an InstanceError.

    The size is enforced while reading (a device such as /dev/zero reports size
    0); FIFOs, devices and sockets are refused without blocking on them. With
    ``follow=False`` a symbolic link is refused too (files inside run folders).
    """
    file = str(path)
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    if not follow:
        flags |= getattr(os, "O_NOFOLLOW", 0)
        if path.is_symlink():
            raise InstanceError("is a symbolic link; a folder written by sourcing has none",
                                file=file)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise InstanceError("no such file", file=file) from None
    except IsADirectoryError:
        raise InstanceError("is a folder, not an instance file", file=file) from None
    except OSError as err:
        raise InstanceError(f"cannot read: {err.strerror}", file=file) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise InstanceError("is a folder, not an instance file", file=file)
        if not stat.S_ISREG(info.st_mode):
            raise InstanceError("is not a regular file (a device, FIFO or socket)", file=file)
        if info.st_size > limit:
            raise InstanceError(f"file is {info.st_size / 2**20:.1f} MiB; {_limit(limit)}",
                                file=file)
        os.set_blocking(fd, True)
        chunks, total = [], 0
        while total <= limit:          # a file growing while read is cut at limit + 1
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    except OSError as err:
        raise InstanceError(f"cannot read: {err.strerror}", file=file) from None
    finally:
        os.close(fd)
    if total > limit:
        raise InstanceError(f"file is larger than the limit; {_limit(limit)}", file=file)
    return b"".join(chunks)


def _limit(limit: int) -> str:
    return (f"instance files are limited to {limit // 2**20} MiB" if limit == MAX_FILE_BYTES
            else f"the limit is {limit // 2**20} MiB" if limit >= 2**20
            else f"the limit is {limit:,} bytes")


def _check_nodes(root: yaml.Node) -> None:
    """Nesting depth and duplicate keys, on the node tree (iteratively: no recursion).

    PyYAML keeps the last of two equal keys silently; here the second one is an
    error naming both lines. Keys are compared by their resolved value, so
    ``010`` and ``10`` are the same key. Merge keys (``<<``) are YAML's own
    way to override and are left alone.
    """
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, list[Any], int]] = [(root, [], 1)]
    while stack:
        node, path, depth = stack.pop()
        if id(node) in seen:          # an alias: its node was checked where it was defined
            continue
        seen.add(id(node))
        if depth > MAX_DEPTH:
            raise InstanceError(f"nested more than {MAX_DEPTH} levels deep",
                                line=node.start_mark.line + 1)
        if isinstance(node, yaml.SequenceNode):
            stack.extend((v, path + [i], depth + 1) for i, v in enumerate(node.value))
        elif isinstance(node, yaml.MappingNode):
            first: dict[tuple[str, str], int] = {}
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                    ident = (key.tag, _key_text(key))
                    line = key.start_mark.line + 1
                    if ident in first:
                        raise InstanceError(
                            f"duplicate key '{key.value}' (first on line {first[ident]})",
                            place=_place(path), line=line)
                    first[ident] = line
                stack.append((key, path, depth + 1))
                stack.append((value, path + [getattr(key, "value", "?")], depth + 1))


def _key_text(node: yaml.ScalarNode) -> str:
    if node.tag == _INT:
        try:
            return str(int(node.value.replace("_", ""), 0) if node.value[:2] in ("0o", "0x")
                       else int(node.value.replace("_", "")))
        except ValueError:
            return node.value
    return str(node.value)


def _read_yaml(path: Path, follow: bool = True) -> tuple[Any, yaml.Node | None, bytes]:
    file = str(path)
    raw = read_limited(path, follow=follow)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InstanceError(f"not UTF-8 text (byte {err.start})", file=file) from None
    data, root = _parse_yaml(text, file)
    if root is None:
        raise InstanceError("the file is empty", file=file)
    return data, root, raw


def _parse_yaml(text: str, file: str | None) -> tuple[Any, yaml.Node | None]:
    """YAML text -> (data, node tree), with every limit: nesting, duplicate keys,
    alias expansion (checked on the node tree, before anything is constructed)."""
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None, None
        try:
            _check_nodes(root)
        except InstanceError as err:
            err.file = file
            raise
        if _expanded_size(root) > MAX_EXPANDED_NODES:
            raise InstanceError(
                f"YAML aliases expand to more than {MAX_EXPANDED_NODES:,} nodes "
                "(an alias bomb?)", file=file)
        data = loader.construct_document(root)  # one parse: the node tree gives lines too
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise InstanceError(f"not valid YAML: {problem}", file=file,
                            line=(mark.line + 1) if mark else None) from None
    finally:
        loader.dispose()
    return data, root


def _friendly(err: dict[str, Any], data: Any) -> tuple[tuple[Any, ...], str]:
    kind, msg = err["type"], err["msg"]
    if kind == "missing":
        return _clean_loc(tuple(err["loc"][:-1]), data), \
            f"missing required key '{err['loc'][-1]}'"
    loc = _clean_loc(tuple(err["loc"]), data)
    if kind == "unknown_key":
        return loc + (err["ctx"]["key"],), msg
    if kind == "extra_forbidden":
        return loc, "unknown key"
    if kind in {"number", "label", "name", "country", "period_map", "mapping", "start"}:
        return loc, msg
    msg = msg.replace("Input should be", "must be").replace("a valid dictionary", "a mapping")
    if "input" in err and kind not in {"too_short", "too_long"}:
        msg += f", got {shown(err['input'])}"     # bounded: never an alias bomb's expansion
    return loc, msg


def load_instance(path: str | Path, follow: bool = True) -> LoadedInstance:
    """Read, validate and cross-check an instance file.

    With ``follow=False`` a symbolic link is refused (an instance.yaml inside a
    run folder is read that way).

    Raises
    ------
    InstanceError
        On any problem, naming the file, the place and the line.
    """
    path = Path(path)
    data, root, raw = _read_yaml(path, follow)
    if not isinstance(data, dict):
        raise InstanceError("the top level must be a mapping of keys (schema, name, ...)",
                            file=str(path), line=1)
    try:
        inst = Instance.model_validate(data)
    except ValidationError as exc:
        loc, msg = _friendly(exc.errors()[0], data)
        raise InstanceError(msg, place=_place(loc), file=str(path),
                            line=_line_of(root, loc)) from None
    try:
        warnings = check_instance(inst)
    except InstanceError as err:
        loc = tuple(_parse_place(err.place))
        err.file, err.line = str(path), _line_of(root, loc)
        raise
    return LoadedInstance(inst, path, hashlib.sha256(raw).hexdigest(), warnings, raw)


def instance_from_dict(data: dict[str, Any], name: str = "<memory>",
                       text: bool = True) -> LoadedInstance:
    """Validate an instance given as plain Python data (for builders and tests).

    With ``text=False`` the validated instance is not written out as YAML (its
    ``raw`` text and ``sha256`` stay empty): for variants that are solved, never
    written (model.input.overrides.overridden)."""
    try:
        inst = Instance.model_validate(data)
    except ValidationError as exc:
        loc, msg = _friendly(exc.errors()[0], data)
        raise InstanceError(msg, place=_place(loc), file=name) from None
    try:
        warnings = check_instance(inst)
    except InstanceError as err:
        err.file = name
        raise
    if not text:
        return LoadedInstance(inst, None, "", warnings, None)
    from .builders import instance_to_yaml

    # the validated instance as YAML: what a run folder's instance.yaml will hold
    raw = instance_to_yaml(inst, f"Instance {inst.name!r}, written from Python data.").encode()
    return LoadedInstance(inst, None, hashlib.sha256(raw).hexdigest(), warnings, raw)


def _parse_place(place: str) -> list[Any]:
    out: list[Any] = []
    for part in place.split("."):
        while "[" in part:
            head, rest = part.split("[", 1)
            if head:
                out.append(head)
            idx, part = rest.split("]", 1)
            out.append(int(idx))
        if part:
            out.append(part)
    return out


# --------------------------------------------------------------------------- checks
def check_instance(inst: Instance) -> list[str]:
    """Run every cross-reference check; return warnings (errors raise)."""
    check_buyers(inst)
    check_size(inst)
    check_unique_names(inst)
    check_groups(inst)
    check_element_maps(inst)
    check_indices(inst)
    check_sources(inst)
    check_projects(inst)
    check_scenarios(inst)
    check_policies(inst)
    check_magnitudes(inst)
    return warn_unsupplied_elements(inst) + warn_terminal_value(inst)


def check_size(inst: Instance) -> None:
    """The model of the instance can be built: (sources + projects) x elements x periods x
    scenarios within model.safety.MAX_MODEL_CELLS (a small file can name a huge model
    through `default` maps)."""
    if isinstance(inst.scenarios, ScenarioModel):
        return      # counted once generated (check_scenario_model)
    try:
        check_model_size(len(inst.sources), len(inst.elements) * len(inst.buyers or [None]),
                         len(inst.periods), len(inst.scenarios or [None]), len(inst.projects))
    except UsageError as err:
        raise InstanceError(str(err)) from None


def _dupe(values: list[Any]) -> tuple[int, Any] | None:
    seen: set[str] = set()
    for i, v in enumerate(values):
        if str(v) in seen:
            return i, v
        seen.add(str(v))
    return None


def check_unique_names(inst: Instance) -> None:
    """Elements, periods, source ids, scenario ids and group names are unique."""
    for key, values in (("elements", inst.elements), ("periods", inst.periods),
                        ("sources", [s.id for s in inst.sources]),
                        ("scenarios", [w.id for w in inst.scenarios or []
                                       if not isinstance(inst.scenarios, ScenarioModel)])):
        hit = _dupe(values)
        if hit:
            i, v = hit
            place = f"{key}[{i}]" + (".id" if key in ("sources", "scenarios") else "")
            raise InstanceError(f"duplicate id '{v}'", place)
    for name in inst.groups:
        if name in inst.elements:
            raise InstanceError(f"group name '{name}' is also an element", f"groups.{name}")
    if "default" in inst.elements:
        raise InstanceError("'default' is reserved for element maps", "elements")
    if "default" in [pkey(p) for p in inst.periods]:
        raise InstanceError("'default' is reserved for period maps", "periods")


def check_groups(inst: Instance) -> None:
    """Every group member is a declared element, listed once."""
    for name, members in inst.groups.items():
        if not members:
            raise InstanceError("a group needs at least one element", f"groups.{name}")
        for i, e in enumerate(members):
            _element(inst, e, f"groups.{name}[{i}]")
        hit = _dupe(members)
        if hit:
            raise InstanceError(f"element '{hit[1]}' listed twice", f"groups.{name}[{hit[0]}]")


def _element(inst: Instance, e: Any, place: str) -> None:
    if e not in inst.elements:
        raise InstanceError(f"unknown element '{e}' (elements: {', '.join(inst.elements)})",
                            place)


def _period(inst: Instance, p: Any, place: str) -> None:
    if pkey(p) not in {pkey(q) for q in inst.periods}:
        raise InstanceError(
            f"unknown period '{p}' (periods: {', '.join(map(str, inst.periods))})", place)


def _period_map(inst: Instance, value: Any, place: str, complete: bool,
                what: str = "a price map") -> None:
    """Keys of a period map are periods (or `default`, the value of the periods it
    does not name); with `complete`, every period has a value."""
    if not isinstance(value, dict):
        return
    for k in value:
        if k != "default":
            _period(inst, k, f"{place}.{k}")
    if complete and "default" not in value:
        missing = [p for p in inst.periods if pkey(p) not in {pkey(k) for k in value}]
        if missing:
            raise InstanceError(
                f"{what} must give every period (or 'default'); missing "
                f"{', '.join(map(str, missing))}", place)


def _element_map(inst: Instance, mapping: dict[str, Any], place: str,
                 complete: bool) -> None:
    for k in mapping:
        if k != "default":
            _element(inst, k, f"{place}.{k}")
    if complete and "default" not in mapping:
        missing = [e for e in inst.elements if e not in mapping]
        if missing:
            raise InstanceError(
                f"no value for element(s) {', '.join(missing)} (name them or give 'default')",
                place)


def check_element_maps(inst: Instance) -> None:
    """Demand and shortage penalty cover every element; stock maps name known elements
    (with buyers: each buyer's, :func:`check_buyers`)."""
    if inst.buyers is None:
        _element_map(inst, inst.demand, "demand", complete=True)
        for e, v in inst.demand.items():
            # a period without demand is an error, never a silent 0 (DESIGN, end of the horizon)
            _period_map(inst, v, f"demand.{e}", complete=True, what="demand")
    if inst.shortage_penalty is not None:
        _element_map(inst, inst.shortage_penalty, "shortage_penalty",
                     complete=inst.buyers is None)
    _element_map(inst, inst.resale_price, "resale_price", complete=False)
    for key in ("initial", "capacity", "holding_cost", "terminal_value"):
        _element_map(inst, getattr(inst.stock, key), f"stock.{key}", complete=False)


INDEX_MULTIPLIER = "multiplier"     # the reserved key of an index: scales every path


def check_indices(inst: Instance) -> None:
    """Every index gives a price path (every period, or `default`) per element it
    names; `multiplier` (scales every path of the index) is a number."""
    for name, paths in inst.indices.items():
        place = f"indices.{name}"
        if INDEX_MULTIPLIER in inst.elements:
            raise InstanceError(f"an element named '{INDEX_MULTIPLIER}' clashes with the "
                                "reserved key of an index", place)
        if not [k for k in paths if k != INDEX_MULTIPLIER]:
            raise InstanceError("an index needs a price path for at least one element",
                                place)
        for e, v in paths.items():
            if e == INDEX_MULTIPLIER:
                if isinstance(v, dict) or v > MAX_MULTIPLIER:
                    raise InstanceError(f"must be a number from 0 to {MAX_MULTIPLIER:g}",
                                        f"{place}.{e}")
                continue
            if e != "default":
                _element(inst, e, f"{place}.{e}")
            _period_map(inst, v, f"{place}.{e}", complete=True, what="an index path")


def index_path(inst: Instance, index: str, element: str) -> Any:
    """The price path of `element` on an index (its own or the index's `default`),
    or None."""
    paths = inst.indices.get(index, {})
    return paths.get(element, paths.get("default"))


def index_multiplier(inst: Instance, index: str) -> float:
    """The index's `multiplier` (1 when absent)."""
    value = inst.indices.get(index, {}).get(INDEX_MULTIPLIER, 1.0)
    return float(value)


def _check_selector(inst: Instance, sel: Selector, place: str,
                    projects_allowed: bool = False, index_allowed: bool = False) -> None:
    if sel.index is not None:
        if not index_allowed:
            raise InstanceError("`index` matches supplies priced on a price index: only "
                                "scenario rules (disruptions, price shocks) may use it",
                                f"{place}.index")
        for v in sel.index if isinstance(sel.index, list) else [sel.index]:
            if v not in inst.indices:
                raise InstanceError(f"unknown index '{v}'" + (
                    f" (indices: {', '.join(inst.indices)})" if inst.indices else
                    " (the instance has no `indices`)"), f"{place}.index")
    if sel.project is not None:
        if not projects_allowed:
            raise InstanceError("`project` names investment projects: only a policy's "
                                "`exclude` may use it", f"{place}.project")
        others = [k for k in ("id", "mined_in", "refined_in", "mode", "recycled", "index")
                  if getattr(sel, k) is not None]
        if others:
            raise InstanceError(f"a selector names either projects or sources, not both "
                                f"(also has '{others[0]}')", place)
        known = {p.id for p in inst.projects}
        for v in sel.project if isinstance(sel.project, list) else [sel.project]:
            if v not in known:
                raise InstanceError(f"unknown project '{v}'", f"{place}.project")
        return
    if sel.id is not None:
        ids = {s.id for s in inst.sources}
        for v in sel.id if isinstance(sel.id, list) else [sel.id]:
            if v not in ids:
                raise InstanceError(f"unknown source id '{v}'", f"{place}.id")


def _check_filter(inst: Instance, elements: list[str] | None, periods: list[Any] | None,
                  place: str) -> None:
    for i, e in enumerate(elements or []):
        _element(inst, e, f"{place}.elements[{i}]")
    for i, p in enumerate(periods or []):
        _period(inst, p, f"{place}.periods[{i}]")


def check_sources(inst: Instance) -> None:
    """Supply names known elements and periods; windows are ordered; fees are for contracts."""
    order = {pkey(p): i for i, p in enumerate(inst.periods)}
    for i, s in enumerate(inst.sources):
        place = f"sources[{i}]"
        for e, sup in s.supply.items():
            if e != "default":
                _element(inst, e, f"{place}.supply.{e}")
            _period_map(inst, sup.capacity, f"{place}.supply.{e}.capacity", complete=False)
            _check_price(inst, e, sup, f"{place}.supply.{e}")
            _check_terms(inst, s, e, sup, f"{place}.supply.{e}")
        if s.available is not None:
            lo, hi = s.available.from_, s.available.until
            if lo is not None:
                _period(inst, lo, f"{place}.available.from")
            if hi is not None:
                _period(inst, hi, f"{place}.available.until")
            if lo is not None and hi is not None and order[pkey(lo)] > order[pkey(hi)]:
                raise InstanceError(f"'from' ({lo}) is after 'until' ({hi})",
                                    f"{place}.available")
        if s.mode == "spot" and s.reservation_fee > 0:
            raise InstanceError("a reservation fee applies to contract sources only "
                                "(this source is spot)", f"{place}.reservation_fee")
        if s.mode == "spot" and s.min_take is not None:
            raise InstanceError("a minimum take applies to contract sources only (a spot "
                                "purchase takes what it buys)", f"{place}.min_take")
        if s.mode == "spot" and s.lead_time is not None:
            raise InstanceError("a lead time applies to contract sources only (a spot "
                                "purchase is decided in its own period)", f"{place}.lead_time")


def _check_price(inst: Instance, e: str, sup: Any, place: str) -> None:
    """A supply gives `price` (every period) or `index` (with an optional `premium`)."""
    if sup.price is None and sup.index is None:
        raise InstanceError("needs a `price` (a number or a map period -> price) or an "
                            "`index` (a price index of `indices`)", place)
    if sup.price is not None and sup.index is not None:
        raise InstanceError("gives both `price` and `index`: a supply is priced one way",
                            f"{place}.index")
    if sup.premium is not None and sup.index is None:
        raise InstanceError("`premium` multiplies an `index`; with a `price` leave it out",
                            f"{place}.premium")
    if sup.price is not None:
        _period_map(inst, sup.price, f"{place}.price", complete=True)
        return
    if sup.index not in inst.indices:
        raise InstanceError(f"unknown index '{sup.index}'" + (
            f" (indices: {', '.join(inst.indices)})" if inst.indices else
            " (the instance has no `indices`)"), f"{place}.index")
    targets = inst.elements if e == "default" else [e]
    for el in targets:
        if index_path(inst, sup.index, el) is None:
            raise InstanceError(f"index '{sup.index}' has no price path for {el} (name it "
                                "or give the index a 'default' path)", f"{place}.index")


def _by_period_value(value: Any, period: Any) -> float:
    if isinstance(value, dict):
        return float({pkey(k): v for k, v in value.items()}.get(pkey(period), 0.0))
    return float(value)


def _check_terms(inst: Instance, s: Any, e: str, sup: Any, place: str) -> None:
    """Committed volumes fit the capacity (inside the window); floor <= cap."""
    if sup.price_floor is not None and sup.price_cap is not None \
            and sup.price_floor > sup.price_cap:
        raise InstanceError(f"price_floor {sup.price_floor:,.6g} is above price_cap "
                            f"{sup.price_cap:,.6g}", place)
    if sup.committed is None:
        return
    if s.mode == "spot":
        raise InstanceError("a committed volume applies to contract sources only",
                            f"{place}.committed")
    _period_map(inst, sup.committed, f"{place}.committed", complete=False)
    keys = [pkey(p) for p in inst.periods]
    lo, hi = 0, len(keys) - 1
    if s.available is not None:
        if s.available.from_ is not None:
            lo = keys.index(pkey(s.available.from_))
        if s.available.until is not None:
            hi = keys.index(pkey(s.available.until))
    for i, p in enumerate(inst.periods):
        if not lo <= i <= hi:      # outside the available window nothing is committed
            continue
        c = _by_period_value(sup.committed, p)
        cap = _by_period_value(sup.capacity, p)
        if c > cap + 1e-9:
            raise InstanceError(f"{c:,.6g} t committed in {p} exceeds the capacity "
                                f"{cap:,.6g} t", f"{place}.committed")


def check_scenarios(inst: Instance) -> None:
    """Probabilities sum to 1; rule filters and selectors name known things.
    Scenarios from regimes and events: :func:`check_scenario_model`."""
    if inst.scenarios is None:
        return
    if isinstance(inst.scenarios, ScenarioModel):
        check_scenario_model(inst)
        return
    if not inst.scenarios:
        raise InstanceError("needs at least one scenario (or leave the key out)", "scenarios")
    total = math.fsum(w.probability for w in inst.scenarios)
    if abs(total - 1.0) > PROBABILITY_TOLERANCE:
        raise InstanceError(f"probabilities sum to {total:.12g}, not 1", "scenarios")
    for j, w in enumerate(inst.scenarios):
        _check_rules(inst, w, f"scenarios[{j}]")


def _check_rules(inst: Instance, holder: Any, place: str) -> None:
    """The rule lists of a scenario, regime, event or `always`: known names."""
    for key in ("disruptions", "price_shocks", "demand_shocks"):
        for i, rule in enumerate(getattr(holder, key)):
            where = f"{place}.{key}[{i}]"
            _check_filter(inst, rule.elements, rule.periods, where)
            _check_buyer_names(inst, getattr(rule, "buyers", None), f"{where}.buyers")
            if hasattr(rule, "match"):
                _check_selector(inst, rule.match, f"{where}.match", index_allowed=True)


def _state(states: list[str], name: Any, place: str) -> None:
    if name not in states:
        raise InstanceError(f"unknown state '{name}' (states: {', '.join(states)})", place)


def _check_row(states: list[str], row: dict[str, float], place: str,
               what: str = "row sums") -> None:
    for name in row:
        _state(states, name, f"{place}.{name}")
    total = math.fsum(row.values())
    if abs(total - 1.0) > PROBABILITY_TOLERANCE:
        raise InstanceError(f"{what} to {total:.12g}, not 1", place)


def _check_matrix(states: list[str], matrix: dict[str, dict[str, float]], place: str) -> None:
    """Every state has a row (P(next | current), left-out states 0) summing to 1."""
    for name in matrix:
        _state(states, name, f"{place}.{name}")
    missing = [s for s in states if s not in matrix]
    if missing:
        raise InstanceError(f"no row for state(s) {', '.join(missing)} (every state needs "
                            "one: P(next | current), left-out next states 0)", place)
    for name, row in matrix.items():
        _check_row(states, row, f"{place}.{name}")


def check_regimes(inst: Instance) -> None:
    """The regime chain: states with known names in their rules; `start`, `transition`
    and every `by_period` matrix name known states, and every row sums to 1."""
    reg = inst.scenarios.regimes
    if reg is None:
        return
    place = "scenarios.regimes"
    states = list(reg.states)
    if not states:
        raise InstanceError("needs at least one state", f"{place}.states")
    if len(states) > MAX_REGIME_STATES:
        raise InstanceError(f"{len(states)} states; at most {MAX_REGIME_STATES} (docs/cli.md, "
                            "Safety)", f"{place}.states")
    for name, state in reg.states.items():
        _check_rules(inst, state, f"{place}.states.{name}")
    if isinstance(reg.start, str):
        _state(states, reg.start, f"{place}.start")
    else:
        if not reg.start:
            raise InstanceError("needs at least one state", f"{place}.start")
        _check_row(states, reg.start, f"{place}.start", "probabilities sum")
    _check_matrix(states, reg.transition, f"{place}.transition")
    seen: dict[str, Any] = {}
    for key, matrix in reg.by_period.items():
        _period(inst, key, f"{place}.by_period.{key}")
        if pkey(key) in seen:
            raise InstanceError(f"period {key!r} is given twice (also as {seen[pkey(key)]!r})",
                                f"{place}.by_period.{key}")
        seen[pkey(key)] = key
        _check_matrix(states, matrix, f"{place}.by_period.{key}")


def check_scenario_model(inst: Instance) -> None:
    """Scenarios from regimes and events (model.input.regimes): a regime chain or
    events; the chain's rows sum to 1; event ids unique; every rule names known
    elements, periods and sources; enumeration within its bound (else `sample`);
    every generated id valid and unique."""
    from .regimes import scenario_paths

    model = inst.scenarios
    if model.regimes is None and not model.events:
        raise InstanceError("give `regimes` or `events` (or write the scenarios as a list)",
                            "scenarios")
    check_regimes(inst)
    if len(model.events) > MAX_EVENTS:
        raise InstanceError(f"{len(model.events)} events; at most {MAX_EVENTS} (docs/cli.md, "
                            "Safety)", "scenarios.events")
    hit = _dupe([e.id for e in model.events])
    if hit:
        raise InstanceError(f"duplicate id '{hit[1]}'", f"scenarios.events[{hit[0]}].id")
    for i, event in enumerate(model.events):
        _check_rules(inst, event, f"scenarios.events[{i}]")
    _check_rules(inst, model.always, "scenarios.always")
    paths = scenario_paths(inst)   # the bound and the ids (the expansion is cached)
    try:                           # the model of the generated scenarios can be built
        check_model_size(len(inst.sources), len(inst.elements), len(inst.periods),
                         len(paths.ids), len(inst.projects))
    except UsageError as err:
        raise InstanceError(f"{err} (the scenarios generated from regimes and events; "
                            "`sample` draws fewer)", "scenarios") from None


def _check_build(inst: Instance, rule: Any, place: str) -> None:
    project = next((p for p in inst.projects if p.id == rule.project), None)
    if project is None:
        raise InstanceError(f"unknown project '{rule.project}'", f"{place}.project")
    if rule.min_size > project.max_size + 1e-12:
        raise InstanceError(f"min_size {rule.min_size:g} is above the project's max_size "
                            f"{project.max_size:g}", f"{place}.min_size")


def check_projects(inst: Instance) -> None:
    """Projects have unique ids, a known source supplying what they add (or only
    `reduces`), known elements and periods, and `fixed_cost` only when integer."""
    hit = _dupe([p.id for p in inst.projects])
    if hit:
        raise InstanceError(f"duplicate id '{hit[1]}'", f"projects[{hit[0]}].id")
    order = {pkey(t): i for i, t in enumerate(inst.periods)}
    by_id = {s.id: s for s in inst.sources}
    for i, p in enumerate(inst.projects):
        place = f"projects[{i}]"
        if p.source is not None:
            if p.source not in by_id:
                raise InstanceError(f"unknown source id '{p.source}'", f"{place}.source")
            if not p.capacity:
                raise InstanceError("a project with a source adds `capacity` (element -> "
                                    "t/period at full size)", place)
            if p.reduces:
                raise InstanceError("a project either adds capacity to a source or "
                                    "`reduces` demand, not both", f"{place}.reduces")
            src = by_id[p.source]
            for e, v in p.capacity.items():
                _element(inst, e, f"{place}.capacity.{e}")
                if e not in src.supply and "default" not in src.supply:
                    raise InstanceError(f"source '{src.id}' does not supply {e} (a project "
                                        "adds capacity at the source's price)",
                                        f"{place}.capacity.{e}")
                _period_map(inst, v, f"{place}.capacity.{e}", complete=False)
        else:
            if p.capacity:
                raise InstanceError("`capacity` needs the `source` it adds to", f"{place}.capacity")
            if not p.reduces:
                raise InstanceError("a project needs a `source` and `capacity`, or `reduces`",
                                    place)
            for e, v in p.reduces.items():
                _element(inst, e, f"{place}.reduces.{e}")
                _period_map(inst, v, f"{place}.reduces.{e}", complete=False)
        if p.life is not None and p.life < 1:
            raise InstanceError("a project's life is at least 1 period", f"{place}.life")
        if p.fixed_cost > 0 and not p.integer:
            raise InstanceError("a fixed cost applies to all-or-nothing projects only "
                                "(integer: true)", f"{place}.fixed_cost")
        if p.decide is not None:
            lo, hi = p.decide.from_, p.decide.until
            if lo is not None:
                _period(inst, lo, f"{place}.decide.from")
            if hi is not None:
                _period(inst, hi, f"{place}.decide.until")
            if lo is not None and hi is not None and order[pkey(lo)] > order[pkey(hi)]:
                raise InstanceError(f"'from' ({lo}) is after 'until' ({hi})", f"{place}.decide")


def check_policies(inst: Instance) -> None:
    """`none` is reserved; rule filters and exclusion selectors name known things."""
    if "none" in inst.policies:
        raise InstanceError("'none' is built in (no rules) and cannot be redefined",
                            "policies.none")
    folded: dict[str, str] = {"none": "none"}
    for name in inst.policies:     # each becomes a folder runs/<name> of a comparison
        other = folded.setdefault(name.casefold(), name)
        if other != name:
            raise InstanceError(f"differs from policy '{other}' only in case: they would "
                                "share a folder on a case-insensitive file system",
                                f"policies.{name}")
    for name, pol in inst.policies.items():
        for key in RULE_KINDS:
            for i, rule in enumerate(getattr(pol, key)):
                place = f"policies.{name}.{key}[{i}]"
                if isinstance(rule, Selector):
                    _check_selector(inst, rule, place, projects_allowed=True)
                elif key == "build":
                    _check_build(inst, rule, place)
                elif hasattr(rule, "elements"):
                    _check_filter(inst, rule.elements, rule.periods, place)
                    _check_buyer_names(inst, rule.buyers, f"{place}.buyers")
                if isinstance(getattr(rule, "share", None), dict):   # a phased share
                    _period_map(inst, rule.share, f"{place}.share", complete=False)
                    if "default" in rule.share:
                        raise InstanceError("a phased share names the periods it holds in "
                                            "('default' is not a period)", f"{place}.share")
                for j, c in enumerate(getattr(rule, "countries", None) or []):
                    if inst.buyers is None and c == inst.home:
                        raise InstanceError(
                            f"{c} is the home country, not a third country: a cap names "
                            "third countries only", f"{place}.countries[{j}]")


def _check_buyer_names(inst: Instance, names: list[str] | None, place: str) -> None:
    """A rule's `buyers` name buyers of the instance (and need an instance with buyers)."""
    if names is None:
        return
    if inst.buyers is None:
        raise InstanceError("names buyers, but the instance has no `buyers`", place)
    known = [b.id for b in inst.buyers]
    for i, b in enumerate(names):
        if b not in known:
            raise InstanceError(f"unknown buyer '{b}' (buyers: {', '.join(known)})",
                                f"{place}[{i}]")


def check_buyers(inst: Instance) -> None:
    """One buyer (no `buyers`): `home`, `demand` and `shortage_penalty` are required.
    Several buyers (DESIGN.md, "Several buyers"): ids unique, at most MAX_BUYERS; each
    buyer's demand covers every element and period and its shortage penalty (or the
    instance's) every element; `home` and `demand` at the top would mean nothing and
    are refused; entitlements name buyers and sum to at most 1 per source; budgets
    (one amount for several buyers) and demand-reducing projects (whose demand?) are
    not defined for several buyers."""
    if inst.buyers is None:
        for key in ("home", "demand", "shortage_penalty"):
            if getattr(inst, key) is None:
                raise InstanceError(f"missing required key '{key}'", "")
        for i, s in enumerate(inst.sources):
            if s.entitlement is not None:
                raise InstanceError("an entitlement shares a source among buyers, but the "
                                    "instance has no `buyers`", f"sources[{i}].entitlement")
        if inst.coalition is not None:
            raise InstanceError("coalition terms need `buyers`", "coalition")
        return
    if len(inst.buyers) > MAX_BUYERS:
        raise InstanceError(f"at most {MAX_BUYERS} buyers, got {len(inst.buyers)}", "buyers")
    for key, why in (("home", "each buyer has its own `home` countries"),
                     ("demand", "each buyer has its own `demand`")):
        if getattr(inst, key) is not None:
            raise InstanceError(f"an instance with `buyers` takes no top-level `{key}`: {why}",
                                key)
    hit = _dupe([b.id for b in inst.buyers])
    if hit:
        raise InstanceError(f"duplicate id '{hit[1]}'", f"buyers[{hit[0]}].id")
    for j, b in enumerate(inst.buyers):
        place = f"buyers[{j}]"
        hit = _dupe(b.home)
        if hit:
            raise InstanceError(f"country '{hit[1]}' listed twice", f"{place}.home[{hit[0]}]")
        _element_map(inst, b.demand, f"{place}.demand", complete=True)
        for e, v in b.demand.items():
            _period_map(inst, v, f"{place}.demand.{e}", complete=True, what="demand")
        if b.shortage_penalty is not None:
            _element_map(inst, b.shortage_penalty, f"{place}.shortage_penalty", complete=True)
        elif inst.shortage_penalty is None:
            raise InstanceError("needs a `shortage_penalty` (or one for the instance)", place)
        elif "default" not in inst.shortage_penalty:
            _element_map(inst, inst.shortage_penalty, "shortage_penalty", complete=True)
        if b.resale_price is not None:
            _element_map(inst, b.resale_price, f"{place}.resale_price", complete=False)
        for key in ("initial", "capacity", "holding_cost", "terminal_value"):
            mapping = getattr(b.stock, key)
            if mapping is not None:
                _element_map(inst, mapping, f"{place}.stock.{key}", complete=False)
    known = [b.id for b in inst.buyers]
    for i, s in enumerate(inst.sources):
        if s.entitlement is None:
            continue
        for b in s.entitlement:
            if b not in known:
                raise InstanceError(f"unknown buyer '{b}' (buyers: {', '.join(known)})",
                                    f"sources[{i}].entitlement.{b}")
        total = math.fsum(s.entitlement.values())
        if total > 1.0 + PROBABILITY_TOLERANCE:
            raise InstanceError(f"the shares sum to {total:.12g}, above 1",
                                f"sources[{i}].entitlement")
    if inst.coalition is not None:
        _element_map(inst, inst.coalition.transfer_cost, "coalition.transfer_cost",
                     complete=False)
    for name, pol in inst.policies.items():
        if pol.budget:
            raise InstanceError("a budget is one amount for one buyer; with several buyers "
                                "it is not defined (leave it out)", f"policies.{name}.budget")
    for i, p in enumerate(inst.projects):
        if p.reduces:
            raise InstanceError("a project that reduces demand belongs to one buyer; with "
                                "several buyers it is not supported (model the saving in "
                                "that buyer's demand)", f"projects[{i}].reduces")


def check_magnitudes(inst: Instance) -> None:
    """Products of bounded numbers that must stay representable (docs/cli.md, Safety).

    Each number has its own bound in the schema; these two combine several:
    the weight of the last period, 1/(1+rate)^(T-1), and the stock target of
    ``min_stock_days``, days/period_days periods of demand.
    """
    rate, last = inst.discount_rate, len(inst.periods) - 1
    decades = -math.log10(MIN_DISCOUNT_WEIGHT)
    if last > 0 and last * math.log10(1.0 + rate) > decades:
        most = min(10 ** (decades / last) - 1.0, MAX_DISCOUNT_RATE)
        raise InstanceError(
            f"with {last + 1} periods the last period's weight 1/(1+rate)^{last} would be "
            f"below {MIN_DISCOUNT_WEIGHT:g}; the rate may be at most {most:.4g}",
            "discount_rate")
    for name, pol in inst.policies.items():
        for i, rule in enumerate(pol.min_stock_days):
            periods = rule.days / inst.period_days
            if periods > MAX_STOCK_PERIODS:
                raise InstanceError(
                    f"days / period_days must be at most {MAX_STOCK_PERIODS:g} periods of "
                    f"demand, got {periods:.4g} ({rule.days:g} days, period_days "
                    f"{inst.period_days:g})", f"policies.{name}.min_stock_days[{i}].days")


def warn_unsupplied_elements(inst: Instance) -> list[str]:
    """Demand for an element that no source supplies is shortage by construction."""
    offered = {e for s in inst.sources for e in s.supply}
    if "default" in offered:
        return []
    return [f"element {e} has demand but no source supplies it: all of it will be shortage"
            for e in inst.elements if e not in offered]


def warn_terminal_value(inst: Instance) -> list[str]:
    """A terminal value above an element's cheapest first-period price makes buying
    to hold stock at the end pay: say so (it may be meant, as a resale value)."""
    out = []
    for e in inst.elements:
        value = float(inst.stock.terminal_value.get(e, inst.stock.terminal_value.get(
            "default", 0.0)))
        if value <= 0:
            continue
        prices = []
        for s in inst.sources:
            sup = s.supply.get(e, s.supply.get("default"))
            if sup is None:
                continue
            if sup.price is not None:
                v = sup.price
                prices += list(v.values()) if isinstance(v, dict) else [v]
            else:
                path = index_path(inst, sup.index, e)
                mult = index_multiplier(inst, sup.index) * (1.0 if sup.premium is None
                                                            else sup.premium)
                prices += [mult * x for x in (path.values() if isinstance(path, dict)
                                              else [path])]
        if prices and value > min(prices):
            out.append(f"stock.terminal_value of {e} ({value:,.6g}) is above its cheapest "
                       f"price ({min(prices):,.6g}): the plan may buy only to hold stock at "
                       "the end")
    return out
