"""The ranges file of `sourcing robustness`: which inputs to doubt, over which range.

A ranges file (docs/robustness.md) is a YAML list, or a mapping with
``description`` and ``ranges``, of entries that each name one input:

* ``{path: shortage_penalty.Tb, low: 5.0e6, high: 4.0e7}``: one input by its
  ``--set`` path (model.input.overrides), set to values from `low` to `high`;
* ``{group: hre-demand, paths: [demand.Dy, demand.Tb], low: 0.8, high: 1.3}``:
  several paths moved by one factor from `low` to `high` (each path's value in
  the instance times the factor; a map of numbers, such as a period map, is
  multiplied entry by entry). Scenario probabilities in one group keep their
  scaled values and the other scenarios share what is left in proportion
  (model.input.overrides.apply_together).

Optional keys: ``dist`` (``uniform``, the default; ``triangular`` with ``mode``;
``lognormal`` with ``median`` and ``sigma``, clipped to the range), ``label``
(a short name for tables and charts) and ``note`` (where the range comes from:
sourced, derived or estimate, and why).

Reading checks everything that can be checked without solving: the keys and
numbers of each entry, that every path exists in the instance and that the
instance stays valid at both ends of every range (one at a time), and that no
input is named twice. Any problem is one InstanceError naming the file, the
entry (``ranges[3].high``), its line and what is wrong.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from ..errors import InstanceError, UsageError
from ..safety import MAX_NUMBER, MAX_RANGE_INPUTS, MAX_RANGES_FILE_BYTES, shown
from .instance import LoadedInstance, _friendly, _line_of, _parse_yaml, read_limited
from .schema import Id, Note, Strict, _note, _number, _text

MAX_PATH_LENGTH = 300
MAX_LABEL_LENGTH = 60
DISTRIBUTIONS = ("uniform", "triangular", "lognormal")


def _any_number(value: Any) -> float:
    return _number(value, lo=-MAX_NUMBER)


def _path_text(value: Any) -> str:
    return _text(value, MAX_PATH_LENGTH)


def _label_text(value: Any) -> str:
    if isinstance(value, str) and not value.strip():
        raise PydanticCustomError("name", "must be a non-empty text", {})
    return _text(value, MAX_LABEL_LENGTH)


AnyNumber = Annotated[float, BeforeValidator(_any_number)]
PathText = Annotated[str, BeforeValidator(_path_text)]
LabelText = Annotated[str, BeforeValidator(_label_text)]


class RangeEntry(Strict):
    """One entry of a ranges file, as written."""

    path: PathText | None = None
    group: Id | None = None
    paths: list[PathText] | None = None
    low: AnyNumber
    high: AnyNumber
    dist: Literal["uniform", "triangular", "lognormal"] = "uniform"
    mode: AnyNumber | None = None
    median: AnyNumber | None = None
    sigma: AnyNumber | None = None
    label: LabelText | None = None
    note: Note | None = None

    @model_validator(mode="after")
    def _consistent(self) -> "RangeEntry":
        def bad(key: str, msg: str) -> PydanticCustomError:
            return PydanticCustomError("unknown_key", "{msg}", {"key": key, "msg": msg})

        if (self.path is None) == (self.group is None):
            raise PydanticCustomError(
                "mapping", "give either `path` (one input) or `group` with `paths` (several "
                "inputs moved by one factor)", {})
        if self.group is not None and not self.paths:
            raise bad("paths", "a group needs `paths`, a list of at least one path")
        if self.path is not None and self.paths is not None:
            raise bad("paths", "`paths` goes with `group`; one input is `path`")
        if self.low > self.high:
            raise bad("low", f"low ({self.low:g}) is above high ({self.high:g})")
        if self.group is not None and self.low < 0:
            raise bad("low", f"a group's low and high are factors on the instance's "
                             f"values, at least 0 (got {self.low:g})")
        given = {k for k in ("mode", "median", "sigma") if getattr(self, k) is not None}
        need = {"uniform": set(), "triangular": {"mode"},
                "lognormal": {"median", "sigma"}}[self.dist]
        for key in sorted(given - need):
            raise bad(key, f"`{key}` goes with dist: "
                           f"{'triangular' if key == 'mode' else 'lognormal'}, not {self.dist}")
        for key in sorted(need - given):
            raise bad(key, f"dist: {self.dist} needs `{key}`")
        if self.mode is not None and not self.low <= self.mode <= self.high:
            raise bad("mode", f"the mode ({self.mode:g}) must lie in [low, high]")
        if self.median is not None and not (self.median > 0 and
                                            self.low <= self.median <= self.high):
            raise bad("median", f"the median ({self.median:g}) must be positive and lie "
                                "in [low, high]")
        if self.sigma is not None and not self.sigma > 0:
            raise bad("sigma", f"sigma must be positive, got {self.sigma:g}")
        return self


@dataclass
class RangeInput:
    """One input of a study: its name (the path, or the group's name), the paths it
    sets, its range and distribution, and what the instance gives for it."""

    name: str
    label: str
    paths: list[str]
    factor: bool                       # a group: low and high multiply the paths' values
    low: float
    high: float
    dist: str = "uniform"
    mode: float | None = None
    median: float | None = None
    sigma: float | None = None
    note: str = ""
    base: float | None = None          # the instance's value (1 for a factor); None: unset
    integer: bool = False              # an integer input (a build time): integer values
    sums_with: str | None = None       # the probabilities it sums to 1 with, if any
    place: str = ""
    line: int | None = None
    base_values: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def width(self) -> float:
        return self.high - self.low

    def value(self, x: float) -> float | int:
        """`x` as a value of this input (an integer input's nearest integer)."""
        return int(round(x)) if self.integer else float(x)

    def assignments(self, x: float) -> list[tuple[str, Any]]:
        """The overrides that set this input to `x`: (path, value) for each path."""
        if not self.factor:
            return [(self.paths[0], self.value(x))]
        return [(p, _scaled(self.base_values[p], float(x))) for p in self.paths]

    def quantile(self, u: float) -> float | int:
        """The value at cumulative probability `u` in [0, 1) of the input's distribution
        (uniform; triangular; lognormal clipped to [low, high]). An integer input's
        uniform values are the integers low..high, each equally likely."""
        lo, hi = self.low, self.high
        u = min(max(float(u), 0.0), 1.0)
        if self.integer and self.dist == "uniform":
            return int(min(hi, lo + math.floor(u * (hi - lo + 1))))
        if hi == lo:
            return self.value(lo)
        if self.dist == "triangular":
            mode = float(self.mode if self.mode is not None else lo)
            split = (mode - lo) / (hi - lo)
            x = lo + math.sqrt(u * (hi - lo) * (mode - lo)) if u < split else \
                hi - math.sqrt((1.0 - u) * (hi - lo) * (hi - mode))
        elif self.dist == "lognormal":
            z = NormalDist().inv_cdf(min(max(u, 1e-12), 1.0 - 1e-12))
            x = min(max(float(self.median or 1.0) * math.exp(float(self.sigma or 0.0) * z),
                        lo), hi)
        else:
            x = lo + u * (hi - lo)
        return self.value(x)


@dataclass
class Ranges:
    """A read ranges file: its inputs in file order, where it came from, its bytes."""

    inputs: list[RangeInput]
    file: str
    raw: bytes
    description: str = ""

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()


def _scaled(value: Any, factor: float) -> Any:
    """A number, or a (nested) map of numbers, times `factor`."""
    if isinstance(value, dict):
        return {k: _scaled(v, factor) for k, v in value.items()}
    return float(value) * factor


def _numbers_only(value: Any) -> bool:
    if isinstance(value, dict):
        return bool(value) and all(_numbers_only(v) for v in value.values())
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def value_at(data: dict[str, Any], path: str) -> Any:
    """The value at a ``--set`` path of instance data (None where the path ends at a key
    the instance does not write, a default). UsageError for a path that cannot exist."""
    from .overrides import _item, _key, parse_path

    node: Any = data
    trail = ""
    segments = parse_path(path)
    n = 0
    while n < len(segments):
        key, bracketed = segments[n]
        where = f"{path}" + (f" (at {trail})" if trail else "")
        if isinstance(node, list) and not bracketed and len(node) == 1 and \
                isinstance(node[0], dict) and "id" not in node[0]:
            node = node[0]
            continue
        if isinstance(node, dict):
            if n == len(segments) - 1 and not any(str(k) == key for k in node):
                return None
            node = node[_key(node, key, where, create=False)]
        elif isinstance(node, list):
            node = node[_item(node, key, bracketed, where)]
        else:
            if n == len(segments) - 1 and any(str(p) == key for p in data.get("periods", [])):
                return node       # one period of a number given for every period
            raise UsageError(f"{where}: '{trail}' is a value, it has no part '{key}'")
        trail += (f"[{key}]" if bracketed else ("." if trail else "") + key)
        n += 1
    return node


def read_ranges(path: str | Path, loaded: LoadedInstance) -> Ranges:
    """Read and check a ranges file against the instance it will move (module docstring).

    Raises InstanceError (file, place, line, what) on any problem.
    """
    from .builders import instance_to_dict
    from .instance import instance_from_dict
    from .overrides import sums_with

    path = Path(path)
    file = str(path)
    raw = read_limited(path, MAX_RANGES_FILE_BYTES)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InstanceError(f"not UTF-8 text (byte {err.start})", file=file) from None
    data, root = _parse_yaml(text, file)
    if root is None:
        raise InstanceError("the file is empty: list the inputs to vary", file=file)
    prefix: tuple[Any, ...] = ()
    description = ""
    if isinstance(data, dict):
        unknown = [k for k in data if k not in ("description", "ranges")]
        if unknown:
            raise InstanceError(f"unknown key '{unknown[0]}' (allowed: description, ranges)",
                                place=str(unknown[0]), file=file,
                                line=_line_of(root, (unknown[0],)))
        try:
            description = _note(data.get("description", ""))
        except PydanticCustomError as err:
            raise InstanceError(err.message(), place="description", file=file,
                                line=_line_of(root, ("description",))) from None
        prefix, data = ("ranges",), data.get("ranges")
    if not isinstance(data, list) or not data:
        raise InstanceError("a ranges file is a list of inputs ({path: ..., low: ..., "
                            "high: ...}), or a mapping with `ranges:` such a list",
                            place=".".join(prefix), file=file,
                            line=_line_of(root, prefix) if prefix else 1)
    if len(data) > MAX_RANGE_INPUTS:
        raise InstanceError(f"{len(data):,} inputs; at most {MAX_RANGE_INPUTS}",
                            place=".".join(prefix), file=file, line=_line_of(root, prefix))

    def fail(i: int, loc: tuple[Any, ...], message: str) -> InstanceError:
        place = ("ranges" if prefix else "") + f"[{i}]"
        for part in loc:
            place += f"[{part}]" if isinstance(part, int) else f".{part}"
        return InstanceError(message, place=place, file=file,
                             line=_line_of(root, prefix + (i,) + tuple(loc)))

    base = instance_to_dict(loaded.instance)
    inputs: list[RangeInput] = []
    names: dict[str, int] = {}
    for i, item in enumerate(data):
        try:
            entry = RangeEntry.model_validate(item)
        except ValidationError as exc:
            loc, msg = _friendly(exc.errors()[0], item)
            raise fail(i, loc, msg) from None
        inp = _input(entry, base, lambda loc, msg, i=i: fail(i, loc, msg))
        inp.place = ("ranges" if prefix else "") + f"[{i}]"
        inp.line = _line_of(root, prefix + (i,))
        for p in dict.fromkeys([inp.name] + inp.paths):
            if p in names:
                raise fail(i, ("path",) if entry.path else ("group",),
                           f"{p} is already varied by entry [{names[p]}]: an input may be "
                           "named once")
            names[p] = i
        if not inp.factor:
            try:
                inp.sums_with = sums_with(base, inp.paths[0])
            except UsageError as err:
                raise fail(i, ("path",), _unprefixed(str(err))) from None
        for end in ("low", "high"):           # the instance stays valid at both ends
            x = getattr(inp, end)
            try:
                instance_from_dict(variant_data(base, [(inp, x)]), text=False)
            except (InstanceError, UsageError) as err:
                msg = err.message if isinstance(err, InstanceError) else str(err)
                place = err.place if isinstance(err, InstanceError) else ""
                if place and place in inp.paths and not inp.factor and \
                        value_at(base, place) is None:      # a key the instance lacks
                    raise fail(i, ("path",), f"{place}: {msg}") from None
                where = f" at {place}" if place else ""
                raise fail(i, (end,), f"with {inp.name} = {shown(inp.value(x))} the instance "
                                      f"is not valid{where}: {_unprefixed(msg)}") from None
        inputs.append(inp)
    return Ranges(inputs, file, raw, description)


def _input(entry: RangeEntry, base: dict[str, Any], fail: Any) -> RangeInput:
    """A checked entry as a RangeInput, with what the instance gives for it."""
    if entry.path is not None:
        try:
            current = value_at(base, entry.path)
        except UsageError as err:
            raise fail(("path",), _unprefixed(str(err))) from None
        if current is not None and not _numbers_only(current) or isinstance(current, dict):
            raise fail(("path",), f"{entry.path} holds {shown(current)} in the instance, not one "
                               "number: name one of its values (a period, an element), or "
                               "move all of them by one factor with `group:` and `paths:`")
        integer = isinstance(current, int) and not isinstance(current, bool) and \
            float(entry.low).is_integer() and float(entry.high).is_integer()
        return RangeInput(entry.path, entry.label or entry.path, [entry.path], False,
                          entry.low, entry.high, entry.dist, entry.mode, entry.median,
                          entry.sigma, entry.note or "",
                          None if current is None else float(current), integer)
    values: dict[str, Any] = {}
    for j, p in enumerate(entry.paths or []):
        try:
            current = value_at(base, p)
        except UsageError as err:
            raise fail(("paths", j), _unprefixed(str(err))) from None
        if current is None or not _numbers_only(current):
            raise fail(("paths", j), f"{p} holds {shown(current)} in the instance: a group "
                                "multiplies numbers (or maps of numbers) that the instance "
                                "writes")
        if p in values:
            raise fail(("paths", j), f"{p} is named twice")
        values[p] = current
    name = str(entry.group)
    return RangeInput(name, entry.label or name, list(values), True, entry.low, entry.high,
                      entry.dist, entry.mode, entry.median, entry.sigma, entry.note or "",
                      1.0, False, None, base_values=values)


def _unprefixed(message: str) -> str:
    """A --set message ("--set a.b: no key 'c'") without the option's name."""
    return message[len("--set "):] if message.startswith("--set ") else message


def variant_data(data: dict[str, Any], settings: list[tuple[RangeInput, float]]
                 ) -> dict[str, Any]:
    """Instance data (model.input.builders.instance_to_dict) with each input set to its
    value, in the order given: each input's paths at once (a group's scenario
    probabilities together), one input after the other (a later scenario probability
    rescales the earlier ones with the rest: the rule of model.input.overrides)."""
    import copy

    from .overrides import together_in_place

    data = copy.deepcopy(data)          # once, not once per input
    for inp, x in settings:
        together_in_place(data, inp.assignments(x))
    return data


def variant(loaded: LoadedInstance, settings: list[tuple[RangeInput, float]],
            hashed: bool = False) -> LoadedInstance:
    """The instance with each input set to its value (:func:`variant_data`), validated;
    without its YAML text (nor a hash) unless `hashed`."""
    from .builders import instance_to_dict
    from .instance import instance_from_dict
    from .overrides import override_text

    data = variant_data(instance_to_dict(loaded.instance), settings)
    label = ", ".join(f"{inp.name}={override_text(inp.value(x))}" for inp, x in settings)
    try:
        changed = instance_from_dict(data, name=f"{loaded.path or loaded.name} with {label}",
                                     text=hashed)
    except InstanceError as err:
        err.message = f"{err.message} (after setting {label})"
        raise
    changed.overrides = [*loaded.overrides, *(f"{inp.name}={override_text(inp.value(x))}"
                                              for inp, x in settings)]
    return changed
