#!/usr/bin/env bash
# Reproduce benchmarks/README.md, "Coupled rules" (issue 17): the plain model, caps per
# element and per group, CVaR (lambda 0.5), a budget, and compare, at W = 100 and 250 of
# the bench generator on its information tree (history), each against the monolithic
# reference (one highspy solve of the same LP, in its own process).
# Usage: bash benchmarks/issue17.sh [W ...]   (from the repository root, after install;
# about 8 minutes on 2 cores; run it on a quiet machine: the load average is recorded)
# INFORMATION=clairvoyant bash benchmarks/issue17.sh 100: the two-stage model instead
# of the tree (records named w100c-...; no compare).
set -euo pipefail
cd "$(dirname "$0")/.."
out=benchmarks/results/issue17
mkdir -p "$out"
sizes=("$@"); [ ${#sizes[@]} -gt 0 ] || sizes=(100 250)
information=${INFORMATION:-history}
tag=""; [ "$information" = history ] || tag=c
bench() {  # name, then sourcing bench options
  local name=$1; shift
  local load; load=$(cut -d' ' -f1 /proc/loadavg)
  .venv/bin/sourcing bench --json --information "$information" "$@" > "$out/$name.json.tmp"
  # the load average before the run, so that a busy machine shows in the record
  .venv/bin/python - "$out/$name.json.tmp" "$load" "$*" <<'PY'
import json, sys
path, load, args = sys.argv[1], float(sys.argv[2]), sys.argv[3]
rec = json.load(open(path))
rec.update({"load_before": load, "command": f"sourcing bench --json {args}"})
json.dump(rec, open(path, "w"), indent=1)
PY
  mv "$out/$name.json.tmp" "$out/$name.json"
  echo "$name done (load before: $load)"
}
for w in "${sizes[@]}"; do
  bench "w$w$tag-none"           -w "$w"
  bench "w$w$tag-crma65"         -w "$w" -p crma65
  bench "w$w$tag-group"          -w "$w" -p crma65-group
  bench "w$w$tag-cvar"           -w "$w" --lambda 0.5
  bench "w$w$tag-crma65-cvar"    -w "$w" -p crma65 --lambda 0.5
  bench "w$w$tag-budget"         -w "$w" --lambda 0.5 --budget 0.002
  bench "w$w$tag-crma65-budget"  -w "$w" -p crma65 --lambda 0.5 --budget 0.002
done
for w in "${sizes[@]}"; do
  if [ "$w" = 250 ] && [ -z "$tag" ]; then bench "w$w-compare" -w "$w" --compare; fi
done
.venv/bin/python benchmarks/coupled_table.py > "$out/table.md"
cat "$out/table.md"
