"""Every example in README.md and docs/ runs as written.

Console blocks: each ``$ `` line runs in a shell, in a scratch folder holding a
copy of ``instances/``, with this environment's ``sourcing`` first on PATH, and
must exit 0. YAML blocks that start with ``schema: 1`` must validate. Python
blocks run in the same scratch folder.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from model.input.instance import load_instance

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```([\w-]*)\n(.*?)^```", re.S | re.M)


def _blocks(kind: str) -> list[tuple[str, int, str]]:
    out = []
    for page in PAGES:
        text = page.read_text()
        for i, m in enumerate(FENCE.finditer(text)):
            if m.group(1) == kind:
                out.append((page.relative_to(ROOT).as_posix(), i, m.group(2)))
    return out


def _scratch(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "instances", tmp_path / "instances")
    return tmp_path


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("SOURCING_DEBUG", None)
    # MPI examples: Open MPI refuses root and more ranks than cores without these
    env.update({"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
                "OMPI_MCA_rmaps_base_oversubscribe": "1"})
    return env


def test_pages_have_examples() -> None:
    assert any(p.name == "README.md" for p in PAGES)
    assert _blocks("console"), "no console examples found"


@pytest.mark.parametrize("page, index, block", _blocks("console"),
                         ids=lambda v: v if isinstance(v, str) and v.endswith(".md") else None)
def test_console_examples_run(tmp_path: Path, page: str, index: int, block: str) -> None:
    cwd = _scratch(tmp_path)
    commands = [line[2:] for line in block.splitlines() if line.startswith("$ ")]
    assert commands, f"{page} block {index} has no $ lines"
    if any(c.startswith("mpiexec ") for c in commands):
        from test_distributed import REQUIRED, _available

        missing = _available()
        if missing and not REQUIRED:   # .ci/run sets REQUIRED: there it must run
            pytest.skip(f"an MPI example: {missing}")
    for cmd in commands:
        proc = subprocess.run(cmd, shell=True, cwd=cwd, env=_env(), capture_output=True,
                              text=True, timeout=600)
        assert proc.returncode == 0, f"{page}: `{cmd}` exited {proc.returncode}\n{proc.stderr}"
        assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("page, index, block", [b for b in _blocks("yaml")
                                                if b[2].lstrip().startswith("schema: 1")])
def test_yaml_instances_validate(tmp_path: Path, page: str, index: int, block: str) -> None:
    path = tmp_path / "doc.yaml"
    path.write_text(block)
    load_instance(path)


@pytest.mark.parametrize("page, index, block", _blocks("python"))
def test_python_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, page: str,
                             index: int, block: str) -> None:
    monkeypatch.chdir(_scratch(tmp_path))
    exec(compile(block, f"{page}[{index}]", "exec"), {"__name__": "__doc_example__"})
