#!/usr/bin/env bash
# make_phantoms.sh - regenerate the committed phantom meshes (meshes/liver.h5, lung.h5,
# vertebra.h5, humerus.h5) at 1 mm with the default parameters, using 'ablasim phantom'.
#
#   scripts/make_phantoms.sh            build bin/ablasim if needed, regenerate, check sizes
#   ABLASIM_BIN=path/to/ablasim scripts/make_phantoms.sh
#
# Idempotent: a file whose labels and attributes are unchanged (h5diff) is left as it is, so
# rerunning it does not touch git. Fails if a mesh exceeds 5 MB (issue 8's limit for committed
# meshes). The design and sources are in docs/PHANTOMS.md.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${ABLASIM_BIN:-bin/ablasim}
if [ ! -x "$BIN" ]; then
    [ "$BIN" = bin/ablasim ] || { echo "make_phantoms: $BIN is not executable" >&2; exit 1; }
    make bin/ablasim
fi
LIMIT=$((5 * 1024 * 1024))
mkdir -p meshes
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for name in liver lung vertebra humerus; do
    new="$tmp/$name.h5"
    dst="meshes/$name.h5"
    "$BIN" phantom "$name" -o "$new" --spacing-mm 1 --quiet
    size=$(stat -c %s "$new")
    if [ "$size" -gt "$LIMIT" ]; then
        echo "make_phantoms: $name.h5 is $size bytes, over the 5 MB limit" >&2
        exit 1
    fi
    if [ -f "$dst" ] && h5diff -q "$dst" "$new" >/dev/null 2>&1; then
        echo "make_phantoms: $dst unchanged ($(stat -c %s "$dst") bytes)"
    else
        mv "$new" "$dst"
        echo "make_phantoms: wrote $dst ($size bytes)"
    fi
done
