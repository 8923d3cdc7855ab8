"""How the tool fails: limits, huge files, concurrent and interrupted runs, warnings."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path


from conftest import base_instance, spot, write_instance
from model.input.builders import instance_to_yaml, synthetic_instance

CLI = [sys.executable, "-m", "model.cli"]


def _run(args: list[str], cwd: Path, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, **kw)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if ".tmp" in p.name)


def test_time_limit_is_reported_never_optimal(tmp_path: Path) -> None:
    inst = tmp_path / "big.yaml"
    inst.write_text(instance_to_yaml(synthetic_instance(20, 17, 10, 25, seed=1)))
    proc = _run(["solve", str(inst), "--time-limit", "0.01", "--out", "run"], tmp_path)
    assert proc.returncode == 3, proc.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "time_limit"
    assert summary["objective"] is None and summary["expected_cost"] is None
    assert not (tmp_path / "run" / "allocation.csv").exists()


def test_huge_file_is_refused_with_one_message(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("w") as fh:
        fh.write("schema: 1\nname: huge\ndescription: '")
        chunk = "x" * (1 << 20)
        for _ in range(50):
            fh.write(chunk)
        fh.write("'\n")
    proc = _run(["validate", str(path)], tmp_path)
    assert proc.returncode == 2
    assert "MiB" in proc.stderr and "Traceback" not in proc.stderr


def test_window_from_after_until(tmp_path: Path) -> None:
    inst = base_instance(periods=[2026, 2027], sources=[spot(
        "cn", "CN", {"Nd": {"capacity": 1, "price": 1}},
        available={"from": 2027, "until": 2026})])
    proc = _run(["validate", str(write_instance(tmp_path, inst))], tmp_path)
    assert proc.returncode == 2
    assert "sources[0].available: 'from' (2027) is after 'until' (2026)" in proc.stderr


def test_element_without_source_is_a_warning(tmp_path: Path) -> None:
    inst = base_instance(elements=["Nd", "Dy"], demand={"default": 10},
                         sources=[spot("cn", "CN", {"Nd": {"capacity": 100, "price": 1}})])
    path = write_instance(tmp_path, inst)
    proc = _run(["validate", str(path)], tmp_path)
    assert proc.returncode == 0
    assert "warning" in proc.stderr and "Dy" in proc.stderr
    proc = _run(["solve", str(path), "--out", "run", "--json"], tmp_path)
    assert proc.returncode == 0
    assert json.loads((tmp_path / "run" / "summary.json").read_text())[
        "expected_shortage_t"] == 10


def test_concurrent_runs_into_results_do_not_clash(tmp_path: Path) -> None:
    inst = write_instance(tmp_path, base_instance(
        sources=[spot("cn", "CN", {"Nd": {"capacity": 1000, "price": 10}})]))
    procs = [subprocess.Popen([*CLI, "solve", str(inst)], cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(3)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0, 0]
    folders = sorted((tmp_path / "results").iterdir())
    assert len(folders) == 3, folders
    for f in folders:
        assert (f / "summary.json").exists() and (f / "allocation.csv").exists()
    assert _leftovers(tmp_path / "results") == []


def test_interrupted_run_leaves_nothing(tmp_path: Path) -> None:
    inst = tmp_path / "big.yaml"
    # large enough to be still solving after 4 s on a fast machine (about 10 s
    # uninterrupted on the benchmark machine)
    inst.write_text(instance_to_yaml(synthetic_instance(20, 17, 10, 1200, seed=2)))
    interrupted = 0
    for sig, delay in ((signal.SIGINT, 2.5), (signal.SIGTERM, 4.0)):
        out = f"run-{sig.name}"
        proc = subprocess.Popen([*CLI, "solve", str(inst), "--out", out], cwd=tmp_path,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=300)
        if proc.returncode == 0:  # finished before the signal: nothing to test this round
            continue
        assert proc.returncode == 130, err
        assert "interrupted" in err and "Traceback" not in err
        assert not (tmp_path / out).exists()
        assert _leftovers(tmp_path) == []
        interrupted += 1
    assert interrupted == 2, "the solve finished before the signal: use a larger instance"
