#!/usr/bin/env bash
# valgrind_check.sh - valgrind memcheck on two small runs of configs/liver_demo.yaml: the explicit
# scheme and Crank-Nicolson (conjugate gradients with the FFT preconditioner). Not part of
# make check (seconds, once built); see docs/RELIABILITY.md.
#
#   scripts/valgrind_check.sh            build $VG_BUILD/bin/ablasim (default build/vg), run both
#   VG_BUILD=build/myvg scripts/valgrind_check.sh
#
# The binary is built without -march=native: valgrind cannot decode AVX-512 instructions (glibc
# and FFTW pick their code by CPUID, which valgrind reports without AVX-512, so only our own
# objects matter). Fails (exit 1) on any memcheck error or definite leak; prints one line per run.
set -uo pipefail
cd "$(dirname "$0")/.."

VG_BUILD=${VG_BUILD:-build/vg}
BIN=$VG_BUILD/bin/ablasim
if ! command -v valgrind >/dev/null; then
    echo "valgrind_check: valgrind is not installed (apt-get install valgrind)" >&2
    exit 2
fi
make --no-print-directory -j"${JOBS:-2}" BUILD="$VG_BUILD" BIN="$BIN" OPT="-O1 -g" "$BIN" ||
    exit 2

out=$(mktemp -d "${TMPDIR:-/tmp}/ablasim-vg-XXXXXX")
trap 'rm -rf "$out"' EXIT

# 20^3 voxels of 3 mm, 30 s: every code path of a run (sources, running maps, snapshots, HDF5,
# XDMF, JSON), small enough for valgrind's ~50x slowdown. The electrode radius grows to 2.5 mm
# so that it still contains voxel centres at 3 mm spacing.
small=(--set 'grid.dims=[20,20,20]' --set 'grid.spacing_mm=[3,3,3]' --set time.duration_s=30
       --set sources.0.shape.radius_mm=2.5)

fail=0
check() {
    local name=$1
    shift
    local log=$out/$name.log t0=$SECONDS rc
    OMP_NUM_THREADS=1 valgrind --tool=memcheck --error-exitcode=9 --leak-check=full \
        --errors-for-leak-kinds=definite --show-leak-kinds=definite --track-origins=yes \
        --log-file="$log" "$BIN" run configs/liver_demo.yaml -o "$out/$name.h5" --quiet \
        "${small[@]}" "$@" >"$out/$name.out" 2>&1
    rc=$?
    local errors leaks
    errors=$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$log" | tail -n 1)
    leaks=$(sed -n 's/.*definitely lost: \([0-9,]*\) bytes.*/\1/p' "$log" | tail -n 1)
    echo "valgrind $name: exit $rc, ${errors:-?} errors, ${leaks:-0} bytes definitely lost" \
        "($((SECONDS - t0)) s)"
    if [ "$rc" -ne 0 ]; then
        fail=1
        cat "$out/$name.out" >&2
        grep -v '^==[0-9]*== *$' "$log" | tail -n 60 >&2
    fi
}

check explicit
check crank_nicolson --set time.scheme=crank_nicolson
if [ "$fail" -ne 0 ]; then
    echo "valgrind_check: FAILED" >&2
    exit 1
fi
echo "valgrind_check: clean"
