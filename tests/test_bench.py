"""`sourcing bench --json`: the phases and the reference, on a small size."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def test_bench_json_has_phases_and_reference() -> None:
    proc = subprocess.run([sys.executable, "-m", "model.cli", "bench", "--scenarios", "3",
                           "--sources", "6", "--elements", "4", "--periods", "3", "--sweep", "3",
                           "--compare", "--json"], capture_output=True, text=True, check=True, timeout=600)
    res = json.loads(proc.stdout)
    for key in ("total_s", "highs_solve_s", "peak_rss_mib", "objective", "reference_s",
                "reference_peak_rss_mib", "reference_objective", "load_s", "build_s",
                "handoff_s", "extraction_s", "writing_s", "sweep_warm_s", "sweep_cold_s",
                "compare_shared_s", "compare_separate_s"):
        assert key in res, key
    assert res["status"] == "optimal" and res["reference_status"] == "Optimal"
    assert res["objective"] == pytest.approx(res["reference_objective"], rel=1e-7)
    assert res["sweep_max_rel_diff"] < 1e-7
    assert res["compare_policies"] == 4 and res["compare_max_rel_diff"] < 1e-7
    assert res["total_s"] >= res["load_s"] + res["writing_s"]


@pytest.mark.skipif(not __import__("os").path.exists("/proc/self/status"),
                    reason="VmHWM is Linux's")
def test_reference_reports_its_own_peak_memory_not_its_parents() -> None:
    """ru_maxrss survives exec: a child of a large process would report the
    parent's peak. The bench reads VmHWM, the child's own."""
    big = bytearray(300 * 1024 * 1024)
    big[::4096] = b"\x01" * len(big[::4096])         # touch every page
    code = ("import resource; from model.solve.solve import peak_rss_mib; "
            "print(peak_rss_mib(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)")
    own, inherited = map(float, subprocess.run([sys.executable, "-c", code],
                                               capture_output=True, text=True,
                                               check=True).stdout.split())
    del big
    assert inherited > 300 and own < 200
