"""Print the table of benchmarks/README.md, "Coupled rules", from results/issue17/*.json.

Two end-to-end times per case: *to the answer* (loading the YAML to the solved
model's tables and metrics in memory, which is what the reference does: load,
build, solve) and *with the run folder* (plus writing CSV, xlsx and charts,
which the reference does not do). Speed-ups divide the reference's time by each.
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent / "results" / "issue17"
CASES = [("none", "plain"), ("crma65", "65 % cap per element"),
         ("group", "65 % cap per group"), ("cvar", "lambda 0.5"),
         ("crma65-cvar", "cap per element, lambda 0.5"),
         ("budget", "budget, lambda 0.5"), ("crma65-budget", "cap per element + budget, lambda 0.5")]

runs = {p.stem: json.loads(p.read_text()) for p in HERE.glob("w*.json") if p.stat().st_size}


def row(label: str, r: dict) -> str:
    if r["status"] != "optimal":     # a failed run shows as such, never as a time
        return f"| {r['scenarios']} | {label} | {r['status']} |" + " |" * 10
    answer = r["total_s"] - r["writing_s"]
    ref = r["reference_s"]
    rounds = r.get("coupling_iterations")
    # recourse nodes: the tree's under history, one per scenario and period if clairvoyant
    nodes = r["tree_nodes"] if r["information"] == "history" else r["scenarios"] * r["periods"]
    return (f"| {r['scenarios']} | {label} | {nodes:,} | {r['blocks']} | "
            f"{'-' if rounds is None else rounds} | {answer:.2f} | {r['writing_s']:.2f} | "
            f"{r['total_s']:.2f} | {ref:.2f} | {ref / answer:.1f}x | {ref / r['total_s']:.1f}x | "
            f"{r['objective_rel_diff']:.1e} | {r['load_before']:.2f} |")


print("| W | case | recourse nodes | blocks | coupling rounds | ours to the answer s | writing s | "
      "ours with run folder s | reference s | speed-up (answer) | speed-up (with folder) | "
      "objective rel. diff | load before |")
print("|" + "---|" * 13)
for tag, kind in (("", ""), ("c", ", clairvoyant")):
    for w in sorted({r["scenarios"] for r in runs.values()}):
        for key, label in CASES:
            r = runs.get(f"w{w}{tag}-{key}")
            if r is not None:
                print(row(label + kind, r))

compares = [r for r in runs.values() if r.get("compare_policies")]
if compares:
    print()
    print("| W | policies | compare, each policy decomposed s | one shared model per block s | "
          "four monolithic reference solves s | speed-up against the references | "
          "max rel. diff to the references |")
    print("|" + "---|" * 7)
    for r in compares:
        print(f"| {r['scenarios']} | {r['compare_policies']} | {r['compare_separate_s']:.2f} | "
              f"{r['compare_shared_s']:.2f} | {r['compare_reference_s']:.2f} | "
              f"{r['compare_reference_speedup']:.1f}x | "
              f"{r['compare_reference_max_rel_diff']:.1e} |")
        per = ", ".join(f"{p} {s:.1f} s" for p, s in r["compare_reference_by_policy"].items())
        print(f"\nReference solves at W = {r['scenarios']}: {per}.")
