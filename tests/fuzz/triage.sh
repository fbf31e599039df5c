#!/usr/bin/env bash
# triage.sh - group libFuzzer artifacts by cause: one line per distinct signature with a count
# and an example file.
#   tests/fuzz/triage.sh build/fuzz/fuzz_nifti build/fuzz/artifacts/fuzz_nifti-*
#
# The signature is what kind of failure it was (sanitizer SUMMARY, a harness CHECK, output from
# the code under test, a leak) plus the first stack frame in ablasim's own code (src/ or
# tests/fuzz/) and the first frame in a library, so that a crash inside libhdf5 reached through
# mesh.c and one in mesh.c itself land in different groups.
set -uo pipefail
cd "$(dirname "$0")/../.."
bin=${1:?usage: triage.sh FUZZ_BINARY ARTIFACT...}
shift
export ABLASIM_ROOT=$PWD TMPDIR=${TMPDIR:-/tmp}
export ASAN_OPTIONS=fast_unwind_on_malloc=0:symbolize=1
export LSAN_OPTIONS=suppressions=$PWD/tests/fuzz/lsan.supp:print_suppressions=0
# libFuzzer saves what fails again (crash-*, timeout-*): into a scratch directory, not here
scratch=$(mktemp -d "${TMPDIR:-/tmp}/ablasim-triage-XXXXXX")
trap 'rm -rf "$scratch"' EXIT
for a in "$@"; do
    [ -f "$a" ] || continue
    log=$("$bin" -runs=1 -timeout=60 -artifact_prefix="$scratch/" "$a" 2>&1)
    pat='SUMMARY: [A-Za-z]+: [A-Za-z-]+|LeakSanitizer: detected|the code under test printed'
    kind=$(printf '%s\n' "$log" | grep -m1 -oE "$pat|runtime error: [^:]*" ||
        echo "no failure (fixed, or needs the fuzzing process state)")
    printed=$(printf '%s\n' "$log" | grep -A1 -m1 'the code under test printed' | tail -n 1 |
        sed "s#'[^']*'#'FILE'#g")
    ours=$(printf '%s\n' "$log" | grep -m1 -oE '(src|tests/fuzz)/[a-z_/]+\.c:[0-9]+' || true)
    lib=$(printf '%s\n' "$log" | grep -m1 -oE 'in [A-Za-z0-9_]+ \(/(usr/)?lib/[^ ]*\.so' |
        sed 's/ (.*\//@/' || true)
    printf '%s | %s | %s | %s\t%s\n' "$kind" "$ours" "$lib" "$printed" "$a"
done | sort | awk -F'\t' '{ sig = $1; n[sig]++; if (!(sig in ex)) ex[sig] = $2 }
    END { for (s in n) printf "%4d  %s\n      e.g. %s\n", n[s], s, ex[s] }'
