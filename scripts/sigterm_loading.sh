#!/usr/bin/env bash
# sigterm_loading.sh - send a signal to `ablasim run` (or `resume`, `margin`) at random moments
# of its first second, while it loads the scenario, locks its outputs and builds the grid, and
# count what each try leaves behind (docs/RELIABILITY.md, guarantee 18).
#
#   scripts/sigterm_loading.sh [TRIES] [MAX_DELAY_MS] [DIMS] [SIGNAL] [run|resume|margin]
#   defaults:                   40      50             160    TERM     run
#
# Every try runs in a fresh directory holding the inputs (configs/liver_demo.yaml shrunk to 1 s,
# configs/tissues.yaml), a previous result of the same name (o.h5, o.json, o.xdmf) and, for
# `resume`, the checkpoint s.ckpt.h5 and partial result s.h5.part of a stopped run; for `margin`
# (which installs no handler: a signal ends it like a kill) the previous result is 60 s long and
# its margin files and maps (`margin o.h5 --nifti p`) are there. The signal
# comes after a uniformly random delay of 0..MAX_DELAY_MS ms. Printed per outcome: the exit
# status (143/130 = killed by the signal's default action), the files that were not there before
# (left), and the earlier files that are not byte for byte as they were (a run stopped
# after it began rewrites the checkpoint and .part it resumed from, by design). OMP_NUM_THREADS=1.
set -u
tries=${1:-40}
maxms=${2:-50}
dims=${3:-160}
sig=${4:-TERM}
cmd=${5:-run}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${ABLASIM_BIN:-$root/bin/ablasim}
export OMP_NUM_THREADS=1
work=$(mktemp -d "${TMPDIR:-/tmp}/sigterm_loading.XXXXXX")
trap 'rm -rf "$work"' EXIT

# the files are made in the directory every try runs in: a checkpoint records its output by
# absolute name, so a resume in a copy elsewhere would write into the original
tmpl=$work/try
mkdir -p "$tmpl"
cp "$root/configs/liver_demo.yaml" "$root/configs/tissues.yaml" "$tmpl/"
set_dims="grid.dims=[$dims,$dims,$dims]"
dur=1
[ "$cmd" = margin ] && dur=60
( cd "$tmpl" && "$bin" run liver_demo.yaml -o o.h5 --set "$set_dims" --set time.duration_s=$dur -q ) ||
    { echo "sigterm_loading: the previous result could not be made" >&2; exit 1; }
if [ "$cmd" = resume ]; then
    # a stopped run to another name, its checkpoint renamed to the template's output: a run of
    # 1e5 s stopped by SIGTERM once it is stepping
    ( cd "$tmpl" && exec "$bin" run liver_demo.yaml -o s.h5 --set "$set_dims" \
          --set time.duration_s=100000 -q 2>/dev/null ) &
    pid=$!
    for _ in $(seq 600); do [ -e "$tmpl/s.h5.tmp" ] && break; sleep 0.05; done
    sleep 0.5
    kill -TERM $pid
    wait $pid
    rc=$?
    [ $rc = 75 ] && [ -e "$tmpl/s.ckpt.h5" ] ||
        { echo "sigterm_loading: no checkpoint to resume (exit $rc)" >&2; exit 1; }
    argv=(resume s.ckpt.h5 -q)
elif [ "$cmd" = margin ]; then
    ( cd "$tmpl" && "$bin" margin o.h5 --nifti p -q >/dev/null ) ||
        { echo "sigterm_loading: the previous margin files could not be made" >&2; exit 1; }
    argv=(margin o.h5 --nifti p -q)
else
    argv=(run liver_demo.yaml -o o.h5 --set "$set_dims" --set time.duration_s=100000 -q)
fi
( cd "$tmpl" && sha256sum -- * ) > "$work/before.sha"
ls "$tmpl" > "$work/before.ls"
cp -a "$tmpl" "$work/template"

declare -A count
for t in $(seq "$tries"); do
    d=$work/try
    rm -rf "$d"
    cp -a "$work/template" "$d"
    delay=$((RANDOM % (maxms + 1)))
    ( cd "$d" && exec "$bin" "${argv[@]}" >/dev/null 2>&1 ) &
    pid=$!
    sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
    kill -"$sig" $pid 2>/dev/null
    wait $pid
    rc=$?
    left=$(cd "$d" && ls | grep -vxF -f "$work/before.ls" | tr '\n' ' ')
    changed=$(cd "$d" && sha256sum -c "$work/before.sha" 2>/dev/null | grep -v ': OK$' |
                  cut -d: -f1 | tr '\n' ' ')
    kept="changed or missing: ${changed:-nothing}"
    key="exit $rc; left: ${left:-nothing}; $kept"
    count[$key]=$(( ${count[$key]:-0} + 1 ))
done
echo "ablasim $cmd, ${dims}^3 voxels, SIG$sig after 0..$maxms ms, $tries tries:"
for k in "${!count[@]}"; do printf '%4d  %s\n' "${count[$k]}" "$k"; done | sort -rn
