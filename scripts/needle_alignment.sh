#!/bin/bash
# needle_alignment.sh - how much a cryoprobe's ice ball depends on where its axis falls on the
# grid (issue 15: "shifting a needle by 0.25, 0.5 and 0.75 voxel changes the zone volume by
# <= 2 %"). Runs configs/cryo_liver_single.yaml reduced to one 600 s freeze at -150 C on a
# 50 x 50 x 60 grid at 1 mm, with the probe tip shifted along x, and prints the -40 C and 0 C
# zones (volume, diameter, length about the probe axis) from each run's JSON.
# Usage: scripts/needle_alignment.sh [BIN]   (default bin/ablasim; about 4 x 30 s on 1 thread)
set -eu
BIN=${1:-bin/ablasim}
OUT=$(mktemp -d /tmp/ablasim_align.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
for s in 0 0.25 0.5 0.75; do
    "$BIN" run configs/cryo_liver_single.yaml -o "$OUT/x$s.h5" -q --threads 1 \
        --set "sources.0.protocol=[{phase: freeze, duration_s: 600, temperature_C: -150}]" \
        --set time.duration_s=600 --set grid.dims=[50,50,60] \
        --set "sources.0.probes.0.tip_mm=[$s,0,-20]" --set output.snapshot_interval_s=0
    /usr/bin/python3 - "$OUT/x$s.json" "$s" <<'PY'
import json, sys
z = json.load(open(sys.argv[1]))["sources"]["cryo"]["zones"]["cryo"]
for k in ("T_min_le_-40C", "T_min_le_0C"):
    print("shift %-5s mm  %-14s V %.3f mL  D %.2f mm  L %.2f mm" % (
        sys.argv[2], k, z[k]["volume_mL"], z[k]["diameter_mm"], z[k]["length_mm"]))
PY
done
