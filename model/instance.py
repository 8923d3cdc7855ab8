"""Loading an instance file: YAML -> validated :class:`~model.schema.Instance`.

`load_instance` is the boundary of the program. It reads the file with limits
(size, alias expansion), validates structure with the pydantic schema, then
runs the named cross-reference checks below. Any problem becomes one
:class:`~model.errors.InstanceError` naming the file, the place
(``sources[2].supply.Dy.capacity``), the line and what is wrong.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterable

import yaml
from pydantic import ValidationError

from .errors import InstanceError
from .schema import Instance, Policy, Selector

DEFAULT_INSTANCE = "japan_2026.yaml"
MAX_FILE_BYTES = 32 * 1024 * 1024
MAX_EXPANDED_NODES = 2_000_000
PROBABILITY_TOLERANCE = 1e-9


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml when available
    """SafeLoader with YAML 1.2 scalars: ``5.0e6`` is a float (PyYAML reads a string)
    and only true/false are booleans (PyYAML reads ``NO``, Norway, as false)."""


_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v
        if tag not in ("tag:yaml.org,2002:float", "tag:yaml.org,2002:bool")]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
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


def yaml_load(text: str) -> Any:
    """Parse YAML text as instance files are parsed (YAML 1.2 floats, no tags)."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


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


def _clean_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    # pydantic inserts the names of union members and validators into `loc`
    # (e.g. 'function-before[_name(), str]'); they are not places in the file.
    return tuple(i for i in loc if not (isinstance(i, str) and ("[" in i or "(" in i)))


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


def _read_yaml(path: Path) -> tuple[Any, yaml.Node | None, bytes]:
    file = str(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise InstanceError("no such file", file=file) from None
    except OSError as err:
        raise InstanceError(f"cannot read: {err.strerror}", file=file) from None
    if path.is_dir():
        raise InstanceError("is a folder, not an instance file", file=file)
    if size > MAX_FILE_BYTES:
        raise InstanceError(
            f"file is {size / 2**20:.1f} MiB; instance files are limited to "
            f"{MAX_FILE_BYTES // 2**20} MiB", file=file)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InstanceError(f"not UTF-8 text (byte {err.start})", file=file) from None
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            raise InstanceError("the file is empty", file=file)
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
    return data, root, raw


def _friendly(err: dict[str, Any]) -> tuple[tuple[Any, ...], str]:
    loc = _clean_loc(tuple(err["loc"]))
    kind, msg = err["type"], err["msg"]
    if kind == "unknown_key":
        return loc + (err["ctx"]["key"],), msg
    if kind == "missing":
        return loc[:-1], f"missing required key '{loc[-1]}'"
    if kind == "extra_forbidden":
        return loc, "unknown key"
    if kind in {"number", "label", "name", "country", "period_map", "mapping"}:
        return loc, msg
    msg = msg.replace("Input should be", "must be").replace("a valid dictionary", "a mapping")
    if "input" in err and kind not in {"too_short", "too_long"}:
        shown = repr(err["input"])
        msg += f", got {shown if len(shown) <= 60 else shown[:57] + '...'}"
    return loc, msg


def load_instance(path: str | Path) -> LoadedInstance:
    """Read, validate and cross-check an instance file.

    Raises
    ------
    InstanceError
        On any problem, naming the file, the place and the line.
    """
    path = Path(path)
    data, root, raw = _read_yaml(path)
    if not isinstance(data, dict):
        raise InstanceError("the top level must be a mapping of keys (schema, name, ...)",
                            file=str(path), line=1)
    try:
        inst = Instance.model_validate(data)
    except ValidationError as exc:
        loc, msg = _friendly(exc.errors()[0])
        raise InstanceError(msg, place=_place(loc), file=str(path),
                            line=_line_of(root, loc)) from None
    try:
        warnings = check_instance(inst)
    except InstanceError as err:
        loc = tuple(_parse_place(err.place))
        err.file, err.line = str(path), _line_of(root, loc)
        raise
    return LoadedInstance(inst, path, hashlib.sha256(raw).hexdigest(), warnings)


def instance_from_dict(data: dict[str, Any], name: str = "<memory>") -> LoadedInstance:
    """Validate an instance given as plain Python data (for builders and tests)."""
    try:
        inst = Instance.model_validate(data)
    except ValidationError as exc:
        loc, msg = _friendly(exc.errors()[0])
        raise InstanceError(msg, place=_place(loc), file=name) from None
    try:
        warnings = check_instance(inst)
    except InstanceError as err:
        err.file = name
        raise
    text = yaml.safe_dump(data, sort_keys=False).encode()
    return LoadedInstance(inst, None, hashlib.sha256(text).hexdigest(), warnings)


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
    check_unique_names(inst)
    check_groups(inst)
    check_element_maps(inst)
    check_sources(inst)
    check_scenarios(inst)
    check_policies(inst)
    return warn_unsupplied_elements(inst)


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
                        ("scenarios", [w.id for w in inst.scenarios or []])):
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


def _period_map(inst: Instance, value: Any, place: str, complete: bool) -> None:
    if not isinstance(value, dict):
        return
    for k in value:
        _period(inst, k, f"{place}.{k}")
    if complete:
        missing = [p for p in inst.periods if pkey(p) not in {pkey(k) for k in value}]
        if missing:
            raise InstanceError(
                f"a price map must name every period; missing {', '.join(map(str, missing))}",
                place)


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
    """Demand and shortage penalty cover every element; stock maps name known elements."""
    _element_map(inst, inst.demand, "demand", complete=True)
    for e, v in inst.demand.items():
        _period_map(inst, v, f"demand.{e}", complete=False)
    _element_map(inst, inst.shortage_penalty, "shortage_penalty", complete=True)
    _element_map(inst, inst.resale_price, "resale_price", complete=False)
    for key in ("initial", "capacity", "holding_cost"):
        _element_map(inst, getattr(inst.stock, key), f"stock.{key}", complete=False)


def _check_selector(inst: Instance, sel: Selector, place: str) -> None:
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
            _period_map(inst, sup.price, f"{place}.supply.{e}.price", complete=True)
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
    """Probabilities sum to 1; rule filters and selectors name known things."""
    if inst.scenarios is None:
        return
    if not inst.scenarios:
        raise InstanceError("needs at least one scenario (or leave the key out)", "scenarios")
    total = math.fsum(w.probability for w in inst.scenarios)
    if abs(total - 1.0) > PROBABILITY_TOLERANCE:
        raise InstanceError(f"probabilities sum to {total:.12g}, not 1", "scenarios")
    for j, w in enumerate(inst.scenarios):
        for key in ("disruptions", "price_shocks", "demand_shocks"):
            for i, rule in enumerate(getattr(w, key)):
                place = f"scenarios[{j}].{key}[{i}]"
                _check_filter(inst, rule.elements, rule.periods, place)
                if hasattr(rule, "match"):
                    _check_selector(inst, rule.match, f"{place}.match")


def check_policies(inst: Instance) -> None:
    """`none` is reserved; rule filters and exclusion selectors name known things."""
    if "none" in inst.policies:
        raise InstanceError("'none' is built in (no rules) and cannot be redefined",
                            "policies.none")
    for name, pol in inst.policies.items():
        for key in Policy.model_fields:
            for i, rule in enumerate(getattr(pol, key)):
                place = f"policies.{name}.{key}[{i}]"
                if isinstance(rule, Selector):
                    _check_selector(inst, rule, place)
                elif hasattr(rule, "elements"):
                    _check_filter(inst, rule.elements, rule.periods, place)
                for j, c in enumerate(getattr(rule, "countries", None) or []):
                    if c == inst.home:
                        raise InstanceError(
                            f"{c} is the home country, not a third country: a cap names "
                            "third countries only", f"{place}.countries[{j}]")


def warn_unsupplied_elements(inst: Instance) -> list[str]:
    """Demand for an element that no source supplies is shortage by construction."""
    offered = {e for s in inst.sources for e in s.supply}
    if "default" in offered:
        return []
    return [f"element {e} has demand but no source supplies it: all of it will be shortage"
            for e in inst.elements if e not in offered]
