#!/usr/bin/env bash
# NAME     bench_sweep.sh - sweep throughput (points per minute) at 1 and 2 MPI ranks (issue 9)
# PURPOSE  Runs the same 12-point Latin-hypercube sweep of the liver demo (40^3 at 1 mm, 120 s)
#          serially with 1 thread, then under `mpirun -np 2` with 1 thread per rank, on fresh
#          output directories, and prints points per minute and the 2-rank speed-up. Both
#          tables must agree point by point except wall time (self-check, exit 1 otherwise).
# USAGE    make bench (runs it when the MPI binary build/mpi/bin/ablasim exists)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${ABLASIM_BIN:-$root/bin/ablasim}
mpibin=${ABLASIM_MPI_BIN:-$root/build/mpi/bin/ablasim}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/sweep.yaml" <<YAML
base: $root/configs/liver_demo.yaml
output_dir: $work/OUT
sampling:
  method: latin_hypercube
  count: 12
  seed: 7
  parameters:
    - {key: tissues.tumour.perfusion_per_s, distribution: uniform, low: 0.002, high: 0.02}
axes:
  - {key: grid.dims, values: [[40, 40, 40]]}
  - {key: time.duration_s, values: [120]}
  - {key: output.snapshot_interval_s, values: [0]}
YAML
run() { # label outdir command...
    local label=$1 out=$2; shift 2
    sed "s|$work/OUT|$work/$out|" "$work/sweep.yaml" > "$work/$out.yaml"
    local t0=$(date +%s.%N)
    "$@" "$work/$out.yaml" --threads 1 --quiet
    local t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" -v l="$label" 'BEGIN { w = b - a;
        printf "  %-22s %6.1f s  %6.1f points per minute\n", l, w, 12 * 60 / w }'
    echo "$t0 $t1" > "$work/$out.time"
}
echo "bench_sweep: 12-point Latin-hypercube sweep of the liver demo, 40^3, 1 thread per rank"
run "serial (1 rank)" serial "$bin" sweep
if [ -x "$mpibin" ] && command -v mpirun >/dev/null; then
    run "mpirun -np 2" mpi mpirun --allow-run-as-root --oversubscribe -np 2 "$mpibin" sweep
    # same table except the wall-time column
    strip() { python3 - "$1" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
drop = [i for i, c in enumerate(rows[0]) if "wall" in c]
for r in rows:
    print(",".join(v for i, v in enumerate(r) if i not in drop))
PY
    }
    if ! diff <(strip "$work/serial/results.csv") <(strip "$work/mpi/results.csv") >/dev/null; then
        echo "bench_sweep: serial and MPI tables differ" >&2
        exit 1
    fi
    read -r a b < "$work/serial.time"; read -r c d < "$work/mpi.time"
    awk -v a="$a" -v b="$b" -v c="$c" -v d="$d" \
        'BEGIN { printf "  2-rank speed-up %.2fx (tables identical apart from wall time)\n", (b - a) / (d - c) }'
else
    echo "  (no MPI binary: make MPI=1 BUILD=build/mpi BIN=build/mpi/bin/ablasim build/mpi/bin/ablasim)"
fi
