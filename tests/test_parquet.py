"""Big run folders (issue 24): the per-scenario tables as Parquet (``--format
parquet``) hold the same tables as CSV, verify and report read them, a changed or
crafted Parquet file is caught, and ``compare --no-runs`` writes the comparison alone.

The instance: the regime chain of tests/test_many_scenarios.py over three years
(3^3 x 2 = 54 scenarios), small enough to solve in a second.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from model.studies.compare import compare_policies
from model.analysis.verify import verify_run
from model.api import solve_instance
from model.errors import UsageError
from model.input.instance import instance_from_dict
from model.output.export import record_file, save_comparison, save_run
from model.input.folders import PARQUET_TABLES, read_table
from model.output.report import render_report
from test_many_scenarios import regime_instance

PERIODS = [2026, 2027, 2028]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("parquet")
    loaded = instance_from_dict(regime_instance(PERIODS))
    run = solve_instance(loaded)
    assert run.optimal and run.summary["scenarios"] == 54
    return {"loaded": loaded, "run": run, "tmp": tmp,
            "csv": save_run(run, tmp / "csv"),
            "parquet": save_run(run, tmp / "parquet", table_format="parquet")}


def test_the_parquet_tables_are_the_csv_tables(runs: dict[str, Any]) -> None:
    csv, parquet = runs["csv"], runs["parquet"]
    for name in PARQUET_TABLES:
        if not (csv / f"{name}.csv").exists():
            continue
        assert (parquet / f"{name}.parquet").exists() and not (parquet / f"{name}.csv").exists()
        a = read_table(csv / f"{name}.csv", dtype={"scenario": str, "period": str})
        b = read_table(parquet / f"{name}.csv", dtype={"scenario": str, "period": str})
        assert list(a.columns) == list(b.columns) and len(a) == len(b) > 0
        for col in a.columns:
            if a[col].isna().all():        # a column empty in every row (CSV: numbers)
                assert b[col].isna().all(), (name, col)
            elif pd.api.types.is_numeric_dtype(a[col]):
                assert (a[col] - b[col]).abs().max() <= 1e-9 * max(1.0, a[col].abs().max())
            else:
                assert a[col].fillna("").astype(str).tolist() == \
                    b[col].fillna("").astype(str).tolist(), (name, col)
    # the small tables stay CSV, so a spreadsheet opens them
    assert (parquet / "scenarios.csv").exists() and (parquet / "allocation.csv").exists()
    assert sum(f.stat().st_size for f in parquet.glob("*.parquet")) < \
        sum((csv / f"{n}.csv").stat().st_size for n in PARQUET_TABLES if (csv / f"{n}.csv").exists())


def test_a_parquet_run_verifies_and_reports(runs: dict[str, Any]) -> None:
    assert verify_run(runs["parquet"]) == []
    page = render_report(runs["parquet"]).read_text(encoding="utf-8")
    reference = render_report(runs["csv"]).read_text(encoding="utf-8")
    cost = f"{runs['run'].summary['expected_cost']:,.0f}"
    assert cost in page and cost in reference
    assert page.count("<tr>") == reference.count("<tr>")


def test_a_changed_parquet_table_is_found(runs: dict[str, Any], tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "run"
    shutil.copytree(runs["parquet"], folder)
    path = folder / "balance.parquet"
    table = pq.read_table(path).to_pandas()
    table.loc[table.index[0], "shortage_t"] = table["shortage_t"].iloc[0] + 50.0
    pq.write_table(pa.Table.from_pandas(table, preserve_index=False), path)
    assert any("balance.parquet" in p and "changed" in p for p in verify_run(folder))
    record_file(folder, "balance.parquet")      # a crafted folder: hash made to match
    problems = verify_run(folder)
    assert problems and not any("SHA-256" in p for p in problems)


def test_a_parquet_bomb_is_refused(tmp_path: Path) -> None:
    # a billion rows of one value: a few kilobytes run-length encoded
    n = 2_000_000
    table = pa.table({"scenario": pa.array(["s"] * n), "value": pa.array([0.0] * n)})
    path = tmp_path / "balance.parquet"
    pq.write_table(table, path, compression="zstd")
    assert path.stat().st_size < 200_000
    with pytest.raises(UsageError, match="rows"):
        read_table(tmp_path / "balance.csv", limit=100_000)
    path.write_bytes(b"PAR1 not parquet PAR1")
    with pytest.raises(UsageError, match="not a table written by sourcing"):
        read_table(tmp_path / "balance.csv")


def test_a_comparison_without_run_folders(runs: dict[str, Any], tmp_path: Path) -> None:
    table, solved = compare_policies(runs["loaded"], ["none", "cap"])
    folder = save_comparison(table, solved, runs["loaded"], tmp_path / "cmp",
                             run_folders=False)
    assert not (folder / "runs").exists()
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["run_folders"] is False
    assert (folder / "comparison.csv").exists()


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "model.cli", *args], capture_output=True,
                          text=True)


def test_the_command_line(tmp_path: Path) -> None:
    path = tmp_path / "inst.yaml"
    path.write_text(yaml.safe_dump(regime_instance(PERIODS)))
    done = _cli("solve", str(path), "--out", str(tmp_path / "run"), "--format", "parquet")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "run" / "deliveries.parquet").exists()
    done = _cli("verify", str(tmp_path / "run"))
    assert done.returncode == 0, done.stdout + done.stderr
    done = _cli("compare", str(path), "-p", "none", "-p", "cap", "--out", str(tmp_path / "cmp"),
                "--no-runs")
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "cmp" / "runs").exists()
    done = _cli("verify", str(tmp_path / "cmp"))
    assert done.returncode == 0 and "nothing to check" in done.stdout
    done = _cli("solve", str(path), "--out", str(tmp_path / "bad"), "--format", "xml")
    assert done.returncode == 2 and "--format" in done.stderr + done.stdout
    assert "Traceback" not in done.stderr and not (tmp_path / "bad").exists()
