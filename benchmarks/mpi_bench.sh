#!/usr/bin/env bash
# mpi-sppy engine against the extensive form on one synthetic instance.
# Usage: bash benchmarks/mpi_bench.sh [SCENARIOS] [SOURCES] [ELEMENTS] [PERIODS]
# (RANKS="2" runs only the 2-rank case; default "1 2")
# Needs the distributed extra and Open MPI (README, "Beyond one machine").
set -euo pipefail
cd "$(dirname "$0")/.."
W=${1:-200}; S=${2:-8}; E=${3:-3}; T=${4:-4}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
tmp=$(mktemp -d)
.venv/bin/sourcing build synthetic --sources "$S" --elements "$E" --periods "$T" \
  --scenarios "$W" --seed 0 --information clairvoyant --out "$tmp/inst.yaml" >/dev/null
out=benchmarks/results/mpi_w${W}.txt
{
  echo "instance: S=$S E=$E T=$T W=$W (sourcing build synthetic --seed 0 --information clairvoyant)"
  /usr/bin/time -f "extensive form: wall %e s, peak RSS %M KiB" \
    .venv/bin/sourcing solve "$tmp/inst.yaml" --out "$tmp/ef" >/dev/null
  python3 -c "import json,sys; s=json.load(open('$tmp/ef/summary.json')); print('extensive form objective', s['objective'])"
  for n in ${RANKS:-1 2}; do
    /usr/bin/time -f "mpisppy lshaped, $n rank(s): wall %e s" \
      mpiexec -n "$n" .venv/bin/sourcing solve "$tmp/inst.yaml" --engine mpisppy \
      --out "$tmp/m$n" >/dev/null || true
    python3 -c "import json,sys; s=json.load(open('$tmp/m$n/summary.json')); print({k: s[k] for k in ('status','objective','lower_bound','upper_bound','gap','iterations','ranks','algorithm_seconds','evaluation_seconds','peak_rss_mib_per_rank')})"
    # the same contracts? the largest difference in contracted tonnes against the EF
    .venv/bin/python -c "
import pandas as pd
key = ['source', 'element', 'period']
a = pd.read_csv('$tmp/ef/allocation.csv').set_index(key).contracted_t
b = pd.read_csv('$tmp/m$n/allocation.csv').set_index(key).contracted_t
print(f'contracts against the extensive form: {len(a)} rows, total {a.sum():,.3f} t vs '
      f'{b.sum():,.3f} t, largest difference {(a - b.reindex(a.index)).abs().max():.3g} t')"
  done
} 2>&1 | grep -v "^WARNING" | tee "$out"
rm -rf "$tmp"
