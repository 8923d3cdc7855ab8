"""No module of model/ imports from a higher layer (model/__init__.py, issue 25).

Every ``import`` and ``from ... import`` in every file under model/ is read with
:mod:`ast`, those inside functions and ``if`` blocks too (a lazy import is
still a dependency), each module is given its layer by its path, and every
import of a module of a higher layer is reported as ``file:line``. A module
whose place is not known (a new top-level module) fails too: give it a layer
here and in model/__init__.py.

There is no allow-list: every import goes down or stays within its layer.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# lowest first; a module may import its own layer and any layer before it
LAYERS: tuple[str, ...] = ("base", "input", "formulation", "solve", "analysis", "output",
                           "api", "studies", "bench", "cli")
# the sub-packages are layers of their own name; the top-level modules:
TOP_LEVEL: dict[str, str] = {
    "__init__": "base",     # the package itself (its __version__)
    "errors": "base",
    "safety": "base",
    "api": "api",
    "distributed": "api",   # scenario decomposition over MPI: loads, solves, the API's summary
    "multistage": "api",    # multi-stage PH for distributed: plans evaluated through the API
    "bench": "bench",       # times the pipeline and the studies
    "cli": "cli",
    "entry": "cli",         # the console entry point: signal handlers, then model.cli
    "__main__": "cli",
}


def module_name(path: Path, root: Path) -> str:
    """``model/solve/solve.py`` -> ``model.solve.solve``; a package's __init__ -> the package."""
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> str | None:
    """The layer of a module of model (None: not known)."""
    parts = module.split(".")
    if len(parts) == 1:
        return TOP_LEVEL["__init__"]
    if parts[1] in LAYERS:
        return parts[1]
    return TOP_LEVEL.get(parts[1])


def _is_module(name: str, root: Path) -> bool:
    path = root.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imported_modules(node: ast.AST, module: str, is_package: bool, root: Path) -> list[str]:
    """The modules of model an import statement loads (``from pkg import name`` loads
    pkg.name when that is a module, else pkg)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == "model"]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        package = module.split(".") if is_package else module.split(".")[:-1]
        base = package[:len(package) - (node.level - 1)]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    if source.split(".")[0] != "model":
        return []
    found = [f"{source}.{a.name}" for a in node.names if _is_module(f"{source}.{a.name}", root)]
    return found or [source]


def violations(root: Path) -> list[str]:
    """``file:line: ...`` for every import of a higher layer (or a module without a
    layer) in the package model under `root`."""
    out = []
    for path in sorted((root / "model").rglob("*.py")):
        module = module_name(path, root)
        mine = layer_of(module)
        where = path.relative_to(root)
        if mine is None:
            out.append(f"{where}:1: {module} has no layer (tests/test_layers.py, "
                       f"model/__init__.py)")
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            for target in imported_modules(node, module, path.name == "__init__.py", root):
                theirs = layer_of(target)
                if theirs is None:
                    out.append(f"{where}:{node.lineno}: imports {target}, which has no layer")
                elif LAYERS.index(theirs) > LAYERS.index(mine):
                    out.append(f"{where}:{node.lineno}: {module} ({mine}) imports {target} "
                               f"({theirs}), a higher layer")
    return out


def test_no_module_imports_a_higher_layer() -> None:
    found = violations(ROOT)
    assert not found, "imports against the layers:\n" + "\n".join(found)


def test_input_needs_no_solver() -> None:
    """The input layer validates and arrays an instance without Pyomo or HiGHS."""
    found = []
    for path in sorted((ROOT / "model" / "input").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            found += [f"{path.relative_to(ROOT)}:{node.lineno}: {n}" for n in names
                      if n.split(".")[0] in ("pyomo", "highspy")]
    assert not found, found


def test_every_sub_package_is_a_layer() -> None:
    packages = {p.parent.name for p in (ROOT / "model").glob("*/__init__.py")}
    assert packages - {"instances"} <= set(LAYERS), packages - set(LAYERS)


def _package(root: Path, files: dict[str, str]) -> Path:
    for name, text in {"model/__init__.py": "", "model/input/__init__.py": "",
                       "model/solve/__init__.py": "", **files}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


@pytest.mark.parametrize("text, line", [
    ("from ..api import solve_instance\n", 1),                  # relative, at the top
    ("import os\n\ndef f():\n    from model.api import x\n", 4),  # absolute, in a function
    ("from .. import api\n", 1),                                # a module named as a name
    ("import model.cli\n", 1),
])
def test_an_import_of_a_higher_layer_is_named(tmp_path: Path, text: str, line: int) -> None:
    root = _package(tmp_path, {"model/api.py": "", "model/cli.py": "",
                               "model/input/low.py": text})
    found = violations(root)
    assert len(found) == 1 and found[0].startswith(f"model/input/low.py:{line}: "), found


def test_imports_down_or_within_a_layer_pass(tmp_path: Path) -> None:
    root = _package(tmp_path, {
        "model/errors.py": "",
        "model/api.py": "from .solve import solve\nfrom . import __version__\n",
        "model/solve/solve.py": "from ..input import low\nfrom .other import x\n",
        "model/solve/other.py": "import numpy\nfrom model.errors import E\n",
        "model/input/low.py": "from ..errors import E\n"})
    assert violations(root) == []


def test_a_module_without_a_layer_fails(tmp_path: Path) -> None:
    root = _package(tmp_path, {"model/helpers.py": ""})
    assert [v.split(":")[0] for v in violations(root)] == ["model/helpers.py"]
