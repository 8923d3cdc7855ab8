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
sweeps = [r for r in runs if r.get("sweep_points")]
if sweeps:
    print()
    print("| W | points | warm sweep s | cold solves s | speed-up | max rel. diff |")
    print("|---|---|---|---|---|---|")
    for r in sweeps:
        print(f"| {r['scenarios']} | {r['sweep_points']} | {r['sweep_warm_s']:.2f} | "
              f"{r['sweep_cold_s']:.2f} | {r['sweep_speedup']:.1f}x | "
              f"{r['sweep_max_rel_diff']:.1e} |")
