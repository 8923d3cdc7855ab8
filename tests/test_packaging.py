"""Every package under model/ is listed in pyproject.toml.

The list of packages is explicit (model.instances lives in instances/), so a
sub-package missing from it would still work in an editable install and in
these tests, and be absent from a built wheel.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_model_package_is_packaged() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {".".join(p.parent.relative_to(ROOT).parts)
             for p in (ROOT / "model").rglob("__init__.py")}
    assert found <= set(config["packages"]), found - set(config["packages"])
    assert "model.instances" in config["packages"]
