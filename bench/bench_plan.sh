#!/bin/bash
# bench_plan.sh - wall time of a single-applicator liver plan (issue 18: "aim for under 2
# minutes on 2 cores"), reported against one forward run of its base scenario measured in the
# same bench: the plan's cost in forward-run equivalents (evaluations on the coarse grid are
# cheaper than one, verification and full-grid evaluations cost one each).
# Appends to bench/results/plan.csv and prints a line.
# Usage: bench/bench_plan.sh   (ABLASIM_BIN: the binary, default bin/ablasim; OMP_NUM_THREADS
#                               as given by the caller)
set -u
BIN=${ABLASIM_BIN:-bin/ablasim}
OUT=$(mktemp -d /tmp/ablasim_benchplan.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
CSV=bench/results/plan.csv
mkdir -p bench/results
[ -f "$CSV" ] || echo "date,host,threads,plan,plan_wall_s,evaluations,forward_run_s,ratio,found,min_margin_mm" > "$CSV"
t0=$(date +%s.%N)
if ! "$BIN" run configs/liver_mwa_vein.yaml -o "$OUT/fwd.h5" -q > /dev/null 2> "$OUT/fwd.err"; then
    echo "bench_plan: forward run failed:"; cat "$OUT/fwd.err"; exit 1
fi
t1=$(date +%s.%N)
if ! "$BIN" plan configs/plans/liver_mwa_vein.yaml -o "$OUT/plan" -q > "$OUT/plan.out" 2> "$OUT/plan.err"; then
    echo "bench_plan: plan failed:"; cat "$OUT/plan.err"; exit 1
fi
t2=$(date +%s.%N)
/usr/bin/python3 - "$OUT/plan/plan.json" "$t0" "$t1" "$t2" "$CSV" <<'PY'
import json, sys, time, socket, os
pj, t0, t1, t2, csv = sys.argv[1], *map(float, sys.argv[2:5]), sys.argv[5]
j = json.load(open(pj))
fwd, plan = t1 - t0, t2 - t1
chosen = [p for p in j["plans"] if p["chosen"]] or j["plans"][:1]
margin = chosen[0]["min_margin_mm"] if chosen else float("nan")
threads = os.environ.get("OMP_NUM_THREADS", str(os.cpu_count()))
print("plan liver_mwa_vein: %.1f s wall, %d evaluations, %s, margin %.2f mm; one forward run %.1f s: "
      "the plan costs %.1f forward runs" % (plan, j["evaluations"], "PASS" if j["found"] else "no plan",
                                            margin, fwd, plan / fwd))
with open(csv, "a") as f:
    f.write("%s,%s,%s,liver_mwa_vein,%.2f,%d,%.2f,%.2f,%d,%.3f\n" % (
        time.strftime("%Y-%m-%dT%H:%M:%S"), socket.gethostname(), threads, plan, j["evaluations"],
        fwd, plan / fwd, j["found"], margin))
PY
