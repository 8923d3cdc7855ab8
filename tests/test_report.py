"""`sourcing report`: the HTML page renders in headless Chromium with every table and chart.

Chromium is Debian's `chromium` package (`.ci/run` installs it when missing).
Outside CI a machine without it skips this test; in CI (CI=true) it fails.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _dom(page: Path, profile: Path) -> str:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (.ci/run should install it)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    proc = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--dump-dom",
                           page.resolve().as_uri()], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def _cli(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "model.cli", *args], check=True,
                   capture_output=True, text=True)


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("report")
    inst = str(ROOT / "instances" / "example.yaml")
    _cli("solve", inst, "--policy", "crma", "--out", str(tmp / "run"))
    _cli("compare", inst, "-p", "none", "-p", "crma", "--out", str(tmp / "cmp"))
    _cli("sweep", inst, "--cap", "1.0:0.6:0.2", "--out", str(tmp / "sw"))
    for name in ("run", "cmp", "sw"):
        _cli("report", str(tmp / name))
    return {"run": tmp / "run", "cmp": tmp / "cmp", "sw": tmp / "sw", "tmp": tmp}


@pytest.mark.parametrize("kind, tables, charts", [
    ("run", ["summary", "allocation", "scenarios", "shortage", "binding", "demand-duals",
             "assumptions-general", "assumptions-sources", "assumptions-scenarios"], 3),
    ("cmp", ["comparison", "assumptions-sources", "assumptions-scenarios"], 1),
    ("sw", ["frontier", "assumptions-sources"], 1),
])
def test_report_renders_in_chromium(folders: dict[str, Path], kind: str, tables: list[str],
                                    charts: int) -> None:
    page = folders[kind] / "report.html"
    html = page.read_text()
    assert "http://" not in html and "https://" not in html.replace(
        "https://json-schema.org", "")  # self-contained: nothing fetched
    dom = _dom(page, folders["tmp"] / f"profile-{kind}")
    for table_id in tables:
        assert re.search(rf'<table[^>]*id="{table_id}"', dom), table_id
        assert re.search(rf'<table[^>]*id="{table_id}"[^>]*>.*?<td', dom, re.S), table_id
    shown = re.findall(r'<img[^>]*data-ok="1"', dom)
    assert len(shown) == charts, f"{len(shown)} of {charts} charts decoded"


def test_report_of_a_non_folder_is_one_message(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "model.cli", "report", str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "not a run, comparison or sweep folder" in proc.stderr
