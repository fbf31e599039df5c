#!/usr/bin/python3
"""scenario_convergence.py - are the committed scenarios converged in time?

usage: scripts/scenario_convergence.py [--bin bin/ablasim] [--only NAME ...]

Issue 17 asks every clinical scenario of README's table to be fast *and* within 1 % of zone
volume and 0.3 mm of minimal margin of a converged reference run. The reference here is the
same scenario with the time step halved: for each scenario of `make scenarios` (its results in
out/scenarios/, made first when missing) this reads the step the run used (dt_s of its JSON
summary) and adds a what-if row NAME_dthalf with `--set time.dt_s=<dt/2>`
(scripts/scenario_table.py --variant ... --reuse --no-readme: the committed runs are reused, the
halved ones run), and `--set time.multirate=off`: the reference takes every voxel at dt / 2, so
the multirate step (cryo scenarios) is measured against single-rate stepping. Then it prints
one Markdown row per scenario: dt, ablation volume (T_max >= 55 C or T_min <= -40 C, as the
table) committed / halved and the difference, minimal margin
committed / halved and the difference. Exit status 0 when every scenario is within 1 % and
0.3 mm, 1 otherwise, 2 when a run fails. README "Where a whole run's time goes" has the figures.
"""
import argparse
import glob
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "out", "scenarios")


def bases():
    """The scenario files scenario_table.py runs (configs/*.yaml that are scenarios)."""
    names = []
    for f in sorted(glob.glob(os.path.join(ROOT, "configs", "*.yaml"))):
        n = os.path.basename(f)[:-5]
        if n in ("tissues", "devices") or n.startswith("sweep"):
            continue
        names.append(n)
    return names


def table_rows(text):
    rows = {}
    for line in text.splitlines():
        if not line.startswith("| ") or line.startswith("| scenario"):
            continue
        c = [x.strip() for x in line.strip().strip("|").split("|")]
        rows[c[0]] = c
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=os.path.join(ROOT, "bin", "ablasim"))
    ap.add_argument("--only", nargs="*", default=None)
    a = ap.parse_args()
    if a.only is not None:
        # an unknown name left an empty list, which ran every scenario (QA, session 29)
        unknown = [n for n in a.only if n not in bases()]
        if unknown or not a.only:
            sys.stderr.write("scenario_convergence.py: --only %s: no such scenario (scenarios: "
                             "%s)\n" % (" ".join(unknown) or "(nothing)", " ".join(bases())))
            return 2
    names = [n for n in bases() if a.only is None or n in a.only]
    st = os.path.join(ROOT, "scripts", "scenario_table.py")
    missing = [n for n in names if not os.path.exists(os.path.join(OUT, n + ".json"))]
    if missing:
        r = subprocess.run([sys.executable, st, "--bin", a.bin, "--no-readme", "--reuse",
                            "--only"] + missing)
        if r.returncode:
            return 2
    cmd = [sys.executable, st, "--bin", a.bin, "--no-readme", "--reuse", "--only"]
    cmd += names + [n + "_dthalf" for n in names]
    for n in names:
        with open(os.path.join(OUT, n + ".json")) as f:
            dt = float(json.load(f)["dt_s"])
        # the reference steps every voxel at dt / 2: without the multirate step too
        cmd += ["--variant", "%s %s_dthalf --set time.dt_s=%r --set time.multirate=off" %
                (n, n, dt / 2)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        sys.stderr.write(r.stdout + r.stderr)
        return 2
    rows = table_rows(r.stdout)
    print("| scenario | dt [s] | volume (mL) committed / dt halved | difference | "
          "minimal margin (mm) committed / dt halved | difference |")
    print("|---|---|---|---|---|---|")
    ok = True
    for n in names:
        c, h = rows.get(n), rows.get(n + "_dthalf")
        if not c or not h:
            print("| %s | (no row) | | | | |" % n)
            ok = False
            continue
        v0, v1 = float(c[3]), float(h[3])
        dv = 100.0 * (v0 / v1 - 1.0) if v1 else 0.0
        m0, m1 = c[4].split()[0], h[4].split()[0]
        dm = "" if m0 == "n/a" else "%+.1f mm" % (float(m1) - float(m0))
        ok = ok and abs(dv) <= 1.0 and (m0 == "n/a" or abs(float(m1) - float(m0)) <= 0.3)
        dt = 2.0 * float(re.search(r"time\.dt_s=([0-9.e-]+)", h[2]).group(1))
        print("| %s | %.3g | %.2f / %.2f | %+.2f %% | %s / %s | %s |" % (n, dt, v0, v1, dv, m0, m1,
                                                                    dm))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
