"""Warm re-solves against cold solves, variant by variant (issue 25, benchmarks/README.md).

The variants are those of the Japan robustness study: each input of
instances/japan_2026.ranges.yaml at its low and high end, then the first draws
(seed 0). Each variant is solved twice, one right after the other so that the
machine's load falls on both alike, under policy none:

* warm: on one kept model.solve.warm.WarmSession (the changes handed to the kept
  HiGHS model, re-solved from the last basis; the LP relaxation first, branch and
  bound only when it is fractional);
* cold: on a fresh session with warm=False, as `sourcing solve` solves a block (a new
  HiGHS model, the MIP by branch and bound).

Both build the variant's LP the same way; the HiGHS times (hand-off and solve) and
the times per variant (validation, arrays, LP, solve, answer) are recorded. Prints
one JSON object. Usage: python benchmarks/issue25_warm_cold.py [DRAWS]
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from model.input.data import problem_data  # noqa: E402
from model.input.instance import load_instance  # noqa: E402
from model.input.ranges import read_ranges, variant  # noqa: E402
from model.solve.warm import WarmSession  # noqa: E402
from model.studies.robustness import draw_values  # noqa: E402


def main() -> None:
    draws = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    loaded = load_instance(ROOT / "instances" / "japan_2026.yaml")
    ranges = read_ranges(ROOT / "instances" / "japan_2026.ranges.yaml", loaded)
    inputs = ranges.inputs
    settings = [[(inp, getattr(inp, end))] for inp in inputs for end in ("low", "high")]
    values = draw_values(inputs, draws, 0)
    settings += [[(inp, values[k, i]) for i, inp in enumerate(inputs)] for k in range(draws)]
    warm, cold = WarmSession("none"), WarmSession("none", warm=False)
    warm.solve(loaded.instance, problem_data(loaded))      # the kept model: the base
    warm.stats.__init__()                                   # count the variants only
    per = {"warm": [], "cold": []}
    objective_gap = 0.0
    load_before = os.getloadavg()[0]
    for s in settings:
        answers = {}
        for name, session in (("warm", warm), ("cold", cold)):
            t = time.perf_counter()
            v = variant(loaded, s)
            built, result = session.solve(v.instance, problem_data(v))
            per[name].append(time.perf_counter() - t)
            answers[name] = result.objective
        objective_gap = max(objective_gap, abs(answers["warm"] - answers["cold"]) /
                            max(1.0, abs(answers["cold"])))
    w, c = warm.stats, cold.stats
    warm_highs = np.array(w.warm_times)
    cold_highs = np.array(c.cold_times)
    out = {
        "variants": len(settings), "draws": draws, "policy": "none",
        "load_before": load_before, "load_after": os.getloadavg()[0],
        "warm_re_solves": w.warm, "warm_cold_solves": w.cold,
        "warm_branch_and_bound": w.branch_and_bound,
        "highs_warm_median_s": float(np.median(warm_highs)),
        "highs_warm_mean_s": float(warm_highs.mean()),
        "highs_warm_with_branch_and_bound_mean_s":
            (w.warm_seconds + w.branch_and_bound_seconds) / max(1, w.warm),
        "highs_cold_median_s": float(np.median(cold_highs)),
        "highs_cold_mean_s": float(cold_highs.mean()),
        "speedup_highs_median": float(np.median(cold_highs) / np.median(warm_highs)),
        "speedup_highs_mean_incl_branch_and_bound":
            float(cold_highs.mean() / ((w.warm_seconds + w.branch_and_bound_seconds)
                                       / max(1, w.warm))),
        "per_variant_warm_median_s": float(np.median(per["warm"])),
        "per_variant_cold_median_s": float(np.median(per["cold"])),
        "per_variant_warm_mean_s": float(np.mean(per["warm"])),
        "per_variant_cold_mean_s": float(np.mean(per["cold"])),
        "build_warm_s": w.build_seconds, "build_cold_s": c.build_seconds,
        "max_rel_objective_diff": objective_gap,
    }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
