#!/usr/bin/env bash
# Reproduce benchmarks/README.md, "Issue 25: robustness": the Japan robustness study end
# to end (every input of instances/japan_2026.ranges.yaml one at a time, switch points,
# 200 draws, policies none and crma65-2028), then warm re-solves against cold solves
# variant by variant (benchmarks/issue25_warm_cold.py, 60 draws).
# Usage: bash benchmarks/issue25.sh   (from the repository root, after install; about 3
# minutes on 2 quiet cores; the load average before each part is recorded)
# COLD=1 bash benchmarks/issue25.sh: also the whole study with --cold (every variant
# solved cold: several times longer).
set -euo pipefail
cd "$(dirname "$0")/.."
out=benchmarks/results/issue25
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
study() {  # name, then extra options
  local name=$1; shift
  local load; load=$(cut -d' ' -f1 /proc/loadavg)
  local t0; t0=$(date +%s.%N)
  .venv/bin/sourcing robustness instances/japan_2026.yaml \
      --ranges instances/japan_2026.ranges.yaml --policy none --policy crma65-2028 \
      --draws 200 --seed 0 --out "$tmp/$name" "$@" > "$tmp/$name.log"
  local t1; t1=$(date +%s.%N)
  .venv/bin/python - "$tmp/$name/summary.json" "$load" "$t0" "$t1" "$*" \
      "$out/$name.json" <<'PY'
import json, sys
summary, load, t0, t1, args, target = sys.argv[1:]
s = json.load(open(summary))
rec = {"command": "sourcing robustness instances/japan_2026.yaml --ranges "
                  "instances/japan_2026.ranges.yaml --policy none --policy crma65-2028 "
                  f"--draws 200 --seed 0 {args}".strip(),
       "load_before": float(load), "wall_seconds": round(float(t1) - float(t0), 2),
       "inputs": len(s["inputs"]), "variants": s["variants"], "solves": s["solves"],
       "not_optimal": s["not_optimal"], "conclusions": s["conclusions"],
       "timing": s["timing"]}
json.dump(rec, open(target, "w"), indent=1)
print(json.dumps(rec, indent=1))
PY
}
study japan
if [ "${COLD:-0}" = 1 ]; then study japan-cold --cold; fi
load=$(cut -d' ' -f1 /proc/loadavg)
.venv/bin/python benchmarks/issue25_warm_cold.py 60 > "$out/warm_cold.json.tmp"
.venv/bin/python - "$out/warm_cold.json.tmp" "$load" <<'PY'
import json, sys
rec = json.load(open(sys.argv[1])); rec["load_before_script"] = float(sys.argv[2])
json.dump(rec, open(sys.argv[1], "w"), indent=1)
PY
mv "$out/warm_cold.json.tmp" "$out/warm_cold.json"
cat "$out/warm_cold.json"
