#!/usr/bin/env bash
# Reproduce benchmarks/README.md, "Projects across element blocks (issue 24)": the
# Japan regime tree (benchmarks/japan_regimes.py: 3 regimes x 7 years = 2,187 paths)
# with projects continuous (the LP, as routed and forced through Benders) and as
# written (all-or-nothing projects), compare of every bundled policy, and the
# synthetic generator's sampled chain of 4 regimes over 10 years at 2,000 paths, each
# against one monolithic highspy solve of the same problem in its own process.
# Usage: bash benchmarks/issue24.sh [CASE ...]   (from the repository root, after
# install; cases: lp lp-benders mip compare synthetic synthetic-projects
# synthetic-integer; all by default). The MIP reference runs up to 20 minutes and
# compare's 15 references up to 5 minutes each: about 2 hours in all on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
out=benchmarks/results/issue24
mkdir -p "$out"
cases=("$@"); [ ${#cases[@]} -gt 0 ] || cases=(lp lp-benders mip compare synthetic
                                             synthetic-projects synthetic-integer)
bench() {  # name, then sourcing bench options
  local name=$1; shift
  local load; load=$(cut -d' ' -f1 /proc/loadavg)
  .venv/bin/sourcing bench --json "$@" > "$out/$name.json.tmp"
  .venv/bin/python - "$out/$name.json.tmp" "$load" "$*" <<'PY'
import json, os, sys
path, load, args = sys.argv[1], float(sys.argv[2]), sys.argv[3]
rec = json.load(open(path))
rec.update({"load_before": load, "load_after": os.getloadavg()[0],
            "command": f"sourcing bench --json {args}"})
json.dump(rec, open(path, "w"), indent=1)
PY
  mv "$out/$name.json.tmp" "$out/$name.json"
  echo "$name done (load before: $load)"
}
# the synthetic chain: 14 sources (20 x 17 x 10 x 2,000 is above the model-size bound
# of 5,000,000 cells; 14 x 17 x 10 x 2,000 = 4,760,000)
synth=(-w 2000 --regimes 4 --periods 10 --sources 14)
for c in "${cases[@]}"; do
  case "$c" in
    lp|lp-benders|mip) .venv/bin/python benchmarks/issue24.py "$c" > /dev/null
                       echo "$c done" ;;
    compare) .venv/bin/python benchmarks/issue24.py compare 300 > /dev/null
             echo "compare done" ;;
    synthetic) bench synthetic "${synth[@]}" ;;
    synthetic-projects) bench synthetic-projects "${synth[@]}" --projects 3 ;;
    synthetic-integer) bench synthetic-integer "${synth[@]}" --projects 3 --integer-projects \
                         --reference-limit 1200 ;;
    *) echo "unknown case $c" >&2; exit 2 ;;
  esac
done
.venv/bin/python benchmarks/issue24_table.py > "$out/table.md"
cat "$out/table.md"
