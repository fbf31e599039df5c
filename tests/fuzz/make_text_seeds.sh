#!/usr/bin/env bash
# make_text_seeds.sh - copy the YAML inputs of the repository into the text seed corpora.
#   tests/fuzz/make_text_seeds.sh CORPUS_DIR     (make fuzz-seeds)
#
# fuzz_scenario gets every scenario in configs/ and tests/bad_input/ as is (prefixed cfg_ and
# bad_); the hand-written small_*.yaml seeds there (grids small enough for sim_create) are
# kept. fuzz_config gets the same files with a --set assignment as the first line: the one
# the bad-input file names in its "# args: --set" header, else a valid override.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:?usage: make_text_seeds.sh CORPUS_DIR}
mkdir -p "$out/fuzz_scenario" "$out/fuzz_config"

for f in configs/*.yaml tests/bad_input/*.yaml; do
    case $f in configs/*) p=cfg ;; *) p=bad ;; esac
    base=$(basename "$f")
    cp "$f" "$out/fuzz_scenario/${p}_$base"
    set_line=$(sed -n 's/^# args:.*--set \([^ ]*\).*/\1/p' "$f" | head -n 1)
    [ -n "$set_line" ] || set_line='grid.dims=[4, 4, 4]'
    { printf '%s\n' "$set_line"; cat "$f"; } > "$out/fuzz_config/${p}_$base"
done
