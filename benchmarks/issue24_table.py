"""Print the tables of benchmarks/README.md, "Projects across element blocks (issue 24)",
from benchmarks/results/issue24/*.json (benchmarks/issue24.sh writes them).

Wall seconds on a shared 2-core machine move with the other engineers' load (the
records keep the load average before and after); CPU seconds move less: ours count
this process and its block workers, the reference its own process.
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent / "results" / "issue24"


def load(name: str) -> dict | None:
    path = HERE / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() and path.stat().st_size else None


def rel(a: float | None, b: float | None) -> str:
    if a is None or b is None:
        return "-"
    return f"{abs(a - b) / max(1.0, abs(b)):.1e}"


def gap(mip: dict | None) -> str:
    return "-" if not mip or mip.get("gap") is None else f"{mip['gap']:.1e}"


print("| case | ours: route, blocks, rounds | ours status (gap) | ours to the answer s "
      "(CPU s) | ours with run folder s | reference status (gap) | reference s (CPU s) | "
      "speed-up to the answer (CPU) | objective rel. diff | load before / after |")
print("|" + "---|" * 10)
for name, label in (("lp", "Japan regime tree, projects continuous (as routed)"),
                    ("lp-benders", "the same LP through Benders (forced)"),
                    ("mip", "Japan regime tree as written (all-or-nothing)")):
    r = load(name)
    if r is None:
        continue
    o, f = r["ours"], r["reference"]
    route = "Benders" if o["rounds"] is not None else ("blocks" if o["blocks"] > 1 else "one")
    ref_gap = f.get("reference_mip_gap")
    ref_status = f["reference_status"] + (f" ({ref_gap:.1e})" if ref_gap is not None else "")
    print(f"| {label} | {route}, {o['blocks']}, {o['rounds'] or '-'} | {o['status']} "
          f"({gap(o['mip'])}) | {o['answer_s']:.1f} ({o['answer_cpu_s']:.1f}) | "
          f"{o['total_s']:.1f} | {ref_status} | {f['reference_s']:.1f} "
          f"({f['reference_cpu_s']:.1f}) | {f['reference_s'] / o['answer_s']:.2f}x "
          f"({f['reference_cpu_s'] / o['answer_cpu_s']:.2f}x) | "
          f"{rel(o['objective'], f['reference_objective'])} | "
          f"{r['load_before']:.1f} / {r['load_after']:.1f} |")

for name in ("compare", "compare-lp"):
    r = load(name)
    if r is None:
        continue
    o = r["ours"]
    print()
    print(f"`{name}`: ours {o['compare_s']:.1f} s ({o['compare_cpu_s']:.1f} s CPU) against "
          f"the sum of the references {r['reference_s']:.1f} s ({r['reference_cpu_s']:.1f} s "
          f"CPU): {r['reference_s'] / o['compare_s']:.2f}x "
          f"({r['reference_cpu_s'] / o['compare_cpu_s']:.2f}x CPU); load before "
          f"{r['load_before']:.1f}, after {r['load_after']:.1f}.")
    print()
    print("| policy | ours status (gap), blocks, rounds | reference status (gap), s | "
          "objective rel. diff |")
    print("|---|---|---|---|")
    for policy, mine in o["by_policy"].items():
        f = r["reference"][policy]
        ref_gap = f.get("reference_mip_gap")
        print(f"| {policy} | {mine['status']} ({gap(mine['mip'])}), {mine['blocks']}, "
              f"{mine['rounds'] or '-'} | {f['reference_status']}"
              f"{f' ({ref_gap:.1e})' if ref_gap is not None else ''}, "
              f"{f['reference_s']:.1f} | {rel(mine['objective'], f['reference_objective'])} |")

rows = [(n, load(n)) for n in ("synthetic", "synthetic-projects", "synthetic-integer")]
if any(r for _, r in rows):
    print()
    print("| case | scenarios (paths) | recourse nodes | blocks | rounds | ours to the answer s | "
          "with run folder s | reference s | speed-up (answer) | reference status | "
          "objective rel. diff | load before / after |")
    print("|" + "---|" * 12)
    for name, r in rows:
        if r is None:
            continue
        answer = r["total_s"] - r["writing_s"]
        print(f"| {name} | {r['generated_scenarios']} ({r['scenarios']}) | {r['tree_nodes']:,} "
              f"| {r['blocks']} | {r['coupling_iterations'] or '-'} | {answer:.1f} | "
              f"{r['total_s']:.1f} | {r['reference_s']:.1f} | "
              f"{r['reference_s'] / answer:.1f}x | {r['reference_status']} | "
              f"{r['objective_rel_diff']:.1e} | {r['load_before']:.1f} / "
              f"{r['load_after']:.1f} |")

policies = sorted(HERE.glob("policy-*.json"))
if policies:
    print()
    print("| policy (as written) | limit s | ours status (gap), blocks, rounds | ours to the "
          "answer s (CPU s) | reference status (gap) | reference s (CPU s) | speed-up "
          "(CPU) | objective rel. diff | load before / after |")
    print("|" + "---|" * 9)
    for path in policies:
        r = load(path.stem)
        if r is None:
            continue
        o, f = r["ours"], r["reference"]
        ref_gap = f.get("reference_mip_gap")
        limit = r["command"].split()[-1] if len(r["command"].split()) > 4 else "600"
        # a side stopped at the limit: its time is the limit, not a speed
        speed = (f"{f['reference_s'] / o['answer_s']:.2f}x "
                 f"({f['reference_cpu_s'] / o['answer_cpu_s']:.2f}x)"
                 if o["status"] == "optimal" and f["reference_status"] == "Optimal"
                 else "- (stopped at the limit)")
        print(f"| {path.stem[len('policy-'):]} | {limit} | {o['status']} ({gap(o['mip'])}), "
              f"{o['blocks']}, {o['rounds'] or '-'} | {o['answer_s']:.1f} "
              f"({o['answer_cpu_s']:.1f}) | {f['reference_status']}"
              f"{f' ({ref_gap:.1e})' if ref_gap is not None else ''} | "
              f"{f['reference_s']:.1f} ({f['reference_cpu_s']:.1f}) | "
              f"{speed} | {rel(o['objective'], f['reference_objective'])} | "
              f"{r['load_before']:.1f} / {r['load_after']:.1f} |")
