"""The committed reference outputs (results/reference) regenerate to the same numbers.

Costs are unique optima; shares and shortages could differ between equally
cheap plans under another HiGHS version (then review and regenerate).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
REF = ROOT / "results" / "reference"
TIMINGS = {"solve_seconds"}


def _same_numbers(committed: Path, fresh: Path, key: str) -> None:
    a = pd.read_csv(committed, keep_default_na=False)
    b = pd.read_csv(fresh, keep_default_na=False)
    assert list(a.columns) == list(b.columns)
    assert a[key].tolist() == b[key].tolist()
    for col in a.columns:
        if col in TIMINGS:
            continue
        x = pd.to_numeric(a[col], errors="coerce")
        y = pd.to_numeric(b[col], errors="coerce")
        if x.notna().any():
            np.testing.assert_allclose(y.to_numpy(float), x.to_numpy(float), rtol=1e-6,
                                       atol=1e-6, err_msg=col)
        elif not col.startswith("binding"):  # text; `binding` may name tied rows differently
            assert a[col].tolist() == b[col].tolist(), col


def test_reference_outputs_regenerate(tmp_path: Path) -> None:
    assert (REF / "compare" / "comparison.csv").exists(), "run: sourcing reference --force"
    out = tmp_path / "ref"
    proc = subprocess.run([sys.executable, "-m", "model.cli", "reference", "--out", str(out)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    _same_numbers(REF / "compare" / "comparison.csv", out / "compare" / "comparison.csv",
                  "policy")
    _same_numbers(REF / "sweep" / "frontier.csv", out / "sweep" / "frontier.csv", "cap")
    _same_numbers(REF / "lynas-unsigned" / "comparison.csv",
                  out / "lynas-unsigned" / "comparison.csv", "policy")
    _same_numbers(REF / "stock" / "comparison.csv", out / "stock" / "comparison.csv",
                  "policy")
    for name, key in (("coalition", "coalition"), ("allocations", "rule"),
                      ("buyers_by_scenario", "buyer")):
        _same_numbers(REF / "g7-coalition" / f"{name}.csv",
                      out / "g7-coalition" / f"{name}.csv", key)


def test_committed_g7_coalition_verifies() -> None:
    """The committed coalition folder of the G7 instance rechecks independently: the
    game's numbers (values, allocations, core tests) and every coalition's run."""
    folder = REF / "g7-coalition"
    assert (folder / "coalition.csv").exists(), "run: sourcing reference --force"
    proc = subprocess.run([sys.executable, "-m", "model.cli", "verify", str(folder)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("every constraint and reported number checks out") == 7
