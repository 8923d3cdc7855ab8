#!/usr/bin/env bash
# issue 17: `--engine mpisppy --algorithm blocks` on the full bench model against the
# extensive form, at 1, 2 and (oversubscribed on 2 cores) 4 ranks.
# Usage: bash benchmarks/mpi_blocks_bench.sh [SCENARIOS] [SOURCES] [ELEMENTS] [PERIODS]
# (RANKS="1 2 4" by default; EF=0 skips the extensive form; EXTRA="--bundle-size 50" etc.)
# Each run is under `timeout 900`. Output: benchmarks/results/mpi_blocks_w${W}.txt
set -euo pipefail
cd "$(dirname "$0")/.."
W=${1:-1000}; S=${2:-20}; E=${3:-17}; T=${4:-10}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
tmp=$(mktemp -d)
.venv/bin/sourcing build synthetic --sources "$S" --elements "$E" --periods "$T" \
  --scenarios "$W" --seed 0 --information clairvoyant --out "$tmp/inst.yaml" >/dev/null
out=benchmarks/results/mpi_blocks_w${W}${SUFFIX:-}.txt
{
  echo "instance: S=$S E=$E T=$T W=$W (sourcing build synthetic --seed 0 --information clairvoyant)"
  echo "machine: $(nproc) cores; $(date -u +%FT%TZ); load average at start: $(cut -d" " -f1-3 /proc/loadavg) (shared with other jobs)"
  if [ "${EF:-1}" = 1 ]; then
    /usr/bin/time -f "extensive form: wall %e s, peak RSS %M KiB" \
      timeout 900 .venv/bin/sourcing solve "$tmp/inst.yaml" --out "$tmp/ef" >/dev/null
    python3 -c "import json; s=json.load(open('$tmp/ef/summary.json')); print('extensive form objective', s['objective'])"
  fi
  for n in ${RANKS:-1 2 4}; do
    echo "--- mpiexec --oversubscribe -n $n sourcing solve inst.yaml --engine mpisppy --algorithm blocks ${EXTRA:-}"
    /usr/bin/time -f "blocks, $n rank(s): wall %e s" \
      timeout 900 mpiexec --oversubscribe -n "$n" sh -c '/usr/bin/time -f "  rank $OMPI_COMM_WORLD_RANK: peak RSS %M KiB (whole process, rank 0 writes the run)" "$@"' sh \
      .venv/bin/sourcing solve "$tmp/inst.yaml" --engine mpisppy --algorithm blocks ${EXTRA:-} \
      --out "$tmp/m$n" >/dev/null || true
    python3 -c "
import json; s=json.load(open('$tmp/m$n/summary.json'))
print({k: s.get(k) for k in ('status','objective','lower_bound','upper_bound','gap','iterations','ranks','blocks','bundles','cuts','largest_master','algorithm_seconds','evaluation_seconds','peak_rss_mib_per_rank','seconds_per_rank')})"
    if [ -d "$tmp/ef" ]; then
      .venv/bin/python -c "
import json, pandas as pd
ef = json.load(open('$tmp/ef/summary.json'))['objective']
s = json.load(open('$tmp/m$n/summary.json'))
print(f'objective against the extensive form: {(s[\"objective\"] - ef) / ef:.3g} relative; '
      f'lower bound {(s[\"lower_bound\"] - ef) / ef:.3g}')
key = ['source', 'element', 'period']
a = pd.read_csv('$tmp/ef/allocation.csv').set_index(key).contracted_t
b = pd.read_csv('$tmp/m$n/allocation.csv').set_index(key).contracted_t
print(f'contracts: {len(a)} rows, total {a.sum():,.3f} t (extensive form) vs {b.sum():,.3f} t')"
    fi
  done
} 2>&1 | grep -v "^WARNING" | tee "$out"
rm -rf "$tmp"
