#!/usr/bin/env bash
# Reproduce benchmarks/README.md: the scaling table and the sweep comparison.
# Usage: bash benchmarks/run_all.sh   (from the repository root, after install)
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p benchmarks/results
for w in 1 25 250 1000; do
  extra=""
  [ "$w" = 25 ] && extra="--sweep 10 --compare"
  .venv/bin/sourcing bench --scenarios "$w" $extra --json > "benchmarks/results/w$w.json"
  echo "W=$w done"
done
.venv/bin/python benchmarks/table.py > benchmarks/results/table.md
cat benchmarks/results/table.md
