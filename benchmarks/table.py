"""Print the Markdown tables of benchmarks/README.md from benchmarks/results/*.json."""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent / "results"
runs = sorted((json.loads(p.read_text()) for p in HERE.glob("w*.json")
               if p.stat().st_size), key=lambda r: r["scenarios"])
cols = [("W", "scenarios", "{:d}"), ("variables", "n_variables", "{:,}"),
        ("rows", "n_constraints", "{:,}"), ("blocks", "blocks", "{:d}"),
        ("load s", "load_s", "{:.2f}"), ("build s", "build_s", "{:.2f}"),
        ("hand-off s", "handoff_s", "{:.2f}"), ("HiGHS solve s (sum)", "highs_solve_s", "{:.2f}"),
        ("blocks wall s", "blocks_wall_s", "{:.2f}"), ("extraction s", "extraction_s", "{:.2f}"),
        ("writing s", "writing_s", "{:.2f}"), ("total s", "total_s", "{:.2f}"),
        ("outside HiGHS", "outside_highs_share", "{:.0%}"),
        ("peak RSS MiB (upper)", "peak_rss_upper_mib", "{:,.0f}"),
        ("reference s", "reference_s", "{:.2f}"),
        ("reference RSS MiB", "reference_peak_rss_mib", "{:,.0f}"),
        ("speed-up", "speedup", "{:.2f}x"), ("RSS ratio", "rss_ratio", "{:.2f}"),
        ("objective rel. diff", "objective_rel_diff", "{:.1e}")]
print("| " + " | ".join(c[0] for c in cols) + " |")
print("|" + "---|" * len(cols))
for r in runs:
    print("| " + " | ".join(fmt.format(r[key]) if r.get(key) is not None else "-"
                            for _, key, fmt in cols) + " |")


def warm_against_cold(prefix: str, count: str, headers: list[str]) -> None:
    """The table of one warm-against-cold comparison (sweep or compare), if recorded."""
    chosen = [r for r in runs if r.get(count)]
    if not chosen:
        return
    print()
    print("| " + " | ".join(headers) + " |")
    print("|" + "---|" * len(headers))
    for r in chosen:
        parts = [r[f"{prefix}_{k}"] for k in WARM_COLD_KEYS[prefix]]
        print(f"| {r['scenarios']} | {r[count]} | {parts[0]:.2f} | {parts[1]:.2f} | "
              f"{parts[2]:.1f}x | {parts[3]:.1e} |")


WARM_COLD_KEYS = {"sweep": ("warm_s", "cold_s", "speedup", "max_rel_diff"),
                  "compare": ("shared_s", "separate_s", "speedup", "max_rel_diff")}
warm_against_cold("sweep", "sweep_points", ["W", "points", "warm sweep s", "cold solves s",
                                            "speed-up", "max rel. diff"])
warm_against_cold("compare", "compare_policies", ["W", "policies", "shared model s",
                                                  "separate solves s", "speed-up",
                                                  "max rel. diff"])
