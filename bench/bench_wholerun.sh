#!/bin/bash
# bench_wholerun.sh - whole-run speed of one RFA and one cryo scenario as a fraction of the
# stencil kernel's own rate measured in the same run (issue 17: ">= 50 %").
#
# Each scenario runs shortened (the first minutes of the clinical case: every phase of the run
# loop is exercised: sources, potential solves, property hook, phase change, running maps,
# output) with --profile. From the JSON profile: whole-run rate = voxels x steps / the sum of the
# phase times (the run loop, the result file included);
# kernel rate = voxels x steps / time in the stencil sweep; their ratio is the share of the run
# spent in the kernel. Appends to bench/results/wholerun.csv and prints a table.
# The cryo scenario runs twice: single-rate (--set time.multirate=off: every voxel swept every
# step, so "kernel MLUPS" is the full-grid sweep's rate) and as committed (multirate: the kernel
# phase then sweeps a box at the short step and the rest at the long one, so its "kernel MLUPS"
# counts voxel-steps it did not sweep one by one). The last line is the committed run's
# whole-run rate over the single-rate run's kernel rate: how near the full-grid kernel's speed a
# whole cryo run advances the grid.
# Usage: bench/bench_wholerun.sh   (ABLASIM_BIN: the binary, default bin/ablasim;
#                                   OMP_NUM_THREADS as given by the caller)
set -u
BIN=${ABLASIM_BIN:-bin/ablasim}
OUT=$(mktemp -d /tmp/ablasim_wholerun.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
CSV=bench/results/wholerun.csv
mkdir -p bench/results
[ -f "$CSV" ] || echo "date,host,threads,scenario,duration_s,voxels,steps,run_s,kernel_s,run_MLUPS,kernel_MLUPS,fraction" > "$CSV"
printf '%-22s %9s %8s %8s %8s %12s %12s %9s\n' scenario voxels steps run_s kernel_s \
    "run MLUPS" "kernel MLUPS" fraction
for spec in "liver_rfa_vein:120:" "cryo_liver_single:300:off" "cryo_liver_single:300:"; do
    name=${spec%%:*}; rest=${spec#*:}; dur=${rest%%:*}; mr=${rest#*:}
    extra=(); label=$name
    if [ -n "$mr" ]; then extra=(--set time.multirate="$mr"); label=$name/single-rate; fi
    name_out=${label//\//_}
    if ! "$BIN" run "configs/$name.yaml" -o "$OUT/$name_out.h5" -q --profile "${extra[@]}" \
        --set time.duration_s="$dur" --set output.snapshot_interval_s=0 > /dev/null 2> "$OUT/$name_out.err"; then
        echo "bench_wholerun: $label failed:"; cat "$OUT/$name_out.err"; exit 1
    fi
    /usr/bin/python3 - "$OUT/$name_out" "$label" "$dur" "$CSV" <<'PY'
import json, sys, time, socket, os
base, name, dur, csv = sys.argv[1:5]
j = json.load(open(base + ".json"))
# --profile puts the per-phase timers into the JSON summary (profile.h): the kernel's time and
# the run's, both measured by this process; no parsing of the printed table
p = j["profile"]
vox, steps = j["grid"]["voxels"], j["steps"]
run_s = sum(v["time_s"] for v in p.values())
ker_s = p["kernel"]["time_s"]
r_run, r_ker = vox * steps / run_s / 1e6, vox * steps / ker_s / 1e6
print("%-22s %9d %8d %8.2f %8.2f %12.1f %12.1f %8.1f%%" % (name, vox, steps, run_s, ker_s, r_run, r_ker, 100 * ker_s / run_s))
with open(csv, "a") as f:
    f.write("%s,%s,%s,%s,%s,%d,%d,%.3f,%.3f,%.2f,%.2f,%.4f\n" % (time.strftime("%Y-%m-%dT%H:%M:%S"), socket.gethostname(),
            os.environ.get("OMP_NUM_THREADS", ""), name, dur, vox, steps, run_s, ker_s, r_run, r_ker, ker_s / run_s))
PY
done
/usr/bin/python3 - "$OUT" <<'PY'
import json, sys
def rates(stem):
    j = json.load(open(sys.argv[1] + "/" + stem + ".json"))
    p = j["profile"]
    n = j["grid"]["voxels"] * j["steps"]
    return n / sum(v["time_s"] for v in p.values()) / 1e6, n / p["kernel"]["time_s"] / 1e6
run_mr, _ = rates("cryo_liver_single")
_, ker_single = rates("cryo_liver_single_single-rate")
print("cryo_liver_single (multirate) whole run %.1f M voxel-steps/s = %.1f %% of the "
      "single-rate full-grid kernel's %.1f M/s in the same bench" % (run_mr, 100 * run_mr / ker_single, ker_single))
PY
