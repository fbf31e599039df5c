#!/usr/bin/python3
"""compare_results.py - are two ablasim builds bitwise equal on every scenario in configs/?

usage: scripts/compare_results.py BIN_A BIN_B [--duration-s S] [--threads N] [--keep DIR]
                                  [--reuse-a] [--config FILE ...]

Runs both binaries on each scenario (configs/*.yaml except tissues.yaml, devices.yaml and sweep files; or the
--config files), with `--set time.duration_s=S` when S is given (short runs exercise every code
path of a scenario at a fraction of its cost), and compares the two results: every dataset
byte for byte (dtype, shape, raw bytes), every attribute by value, and the JSON summaries key by
key, except what legitimately differs between two runs: wall-clock times, the run id, paths,
the build version and compiler. Used for refactorings that must not change results (issue 19:
"results are bitwise equal to before the change on every scenario in configs/").

Exit status: 0 all equal, 1 some differ (each difference is listed), 2 usage or a run failed.
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# attributes / JSON keys that differ between two runs of the same input by design
VOLATILE = {"wall_time_s", "run_id", "scenario_path", "ablasim_version", "compiler",
            "output_path", "wall_s", "created", "version", "profile", "profile_kernels", "output",
            "xdmf", "json", "partial_result_id", "threads"}


def volatile(name):
    base = name.rsplit("/", 1)[-1]
    return base in VOLATILE or base.startswith("wall_") or base.endswith("_wall_s")


def attrs_equal(a, b, where, diffs):
    ka = {k for k in a.attrs.keys() if not volatile(k)}
    kb = {k for k in b.attrs.keys() if not volatile(k)}
    if ka != kb:
        diffs.append("%s: attributes %s vs %s" % (where, sorted(ka - kb), sorted(kb - ka)))
    for k in sorted(ka & kb):
        va, vb = a.attrs[k], b.attrs[k]
        na, nb = np.asarray(va), np.asarray(vb)
        if na.dtype != nb.dtype or na.shape != nb.shape or na.tobytes() != nb.tobytes():
            diffs.append("%s@%s: %r vs %r" % (where, k, va, vb))


def compare_h5(fa, fb, diffs):
    with h5py.File(fa, "r") as a, h5py.File(fb, "r") as b:
        names_a, names_b = [], []
        a.visit(names_a.append)
        b.visit(names_b.append)
        sa, sb = set(names_a), set(names_b)
        if sa != sb:
            diffs.append("objects only in A: %s; only in B: %s" % (sorted(sa - sb), sorted(sb - sa)))
        attrs_equal(a, b, "/", diffs)
        for n in sorted(sa & sb):
            oa, ob = a[n], b[n]
            attrs_equal(oa, ob, "/" + n, diffs)
            if isinstance(oa, h5py.Dataset):
                if not isinstance(ob, h5py.Dataset):
                    diffs.append("/%s: dataset vs group" % n)
                    continue
                da, db = oa[()], ob[()]
                na, nb = np.asarray(da), np.asarray(db)
                if na.dtype.kind == "O" or nb.dtype.kind == "O":  # strings: by value
                    if na.tolist() != nb.tolist():
                        diffs.append("/%s: strings differ" % n)
                    continue
                if na.dtype != nb.dtype or na.shape != nb.shape:
                    diffs.append("/%s: %s%s vs %s%s" % (n, na.dtype, na.shape, nb.dtype, nb.shape))
                elif na.tobytes() != nb.tobytes():
                    if na.dtype.kind in "fiu":
                        d = np.nanmax(np.abs(na.astype(float) - nb.astype(float)))
                        diffs.append("/%s: values differ (max |A-B| %.3g)" % (n, d))
                    else:
                        diffs.append("/%s: values differ" % n)


def compare_json(ja, jb, where, diffs):
    if where.endswith("_wall_s") or where.endswith(".wall_s"):
        return
    if isinstance(ja, dict) and isinstance(jb, dict):
        for k in sorted(set(ja) | set(jb)):
            if volatile(k):
                continue
            if k not in ja or k not in jb:
                diffs.append("json %s.%s only in one" % (where, k))
            else:
                compare_json(ja[k], jb[k], where + "." + k, diffs)
    elif isinstance(ja, list) and isinstance(jb, list) and len(ja) == len(jb):
        for i, (x, y) in enumerate(zip(ja, jb)):
            compare_json(x, y, "%s[%d]" % (where, i), diffs)
    elif ja != jb and not (isinstance(ja, str) and isinstance(jb, str) and where.endswith("path")):
        diffs.append("json %s: %r vs %r" % (where, ja, jb))


def run(binary, cfg, out, args):
    cmd = [binary, "run", cfg, "-o", out, "--quiet"]
    if args.duration_s is not None:
        cmd += ["--set", "time.duration_s=%g" % args.duration_s]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return p.returncode, p.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("bin_a")
    ap.add_argument("bin_b")
    ap.add_argument("--duration-s", type=float, default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--keep", default=None, help="directory for the results (default: a temporary one)")
    ap.add_argument("--config", action="append", default=None)
    ap.add_argument("--reuse-a", action="store_true",
                    help="keep A's results already in --keep DIR (one baseline, many comparisons)")
    args = ap.parse_args()
    # the repository's scenarios wherever the script is run from (a relative glob compared
    # nothing outside the repository root and reported success: QA, session 29)
    cfgs = args.config or sorted(c for c in glob.glob(os.path.join(ROOT, "configs", "*.yaml"))
                                 if not os.path.basename(c).startswith(("tissues", "devices", "sweep")))
    if not cfgs:
        sys.stderr.write("compare_results.py: no scenario to compare\n")
        return 2
    work = args.keep or tempfile.mkdtemp(prefix="ablasim_compare_")
    os.makedirs(work, exist_ok=True)
    bad = 0
    for cfg in cfgs:
        stem = os.path.splitext(os.path.basename(cfg))[0]
        outs = []
        for tag, b in (("A", args.bin_a), ("B", args.bin_b)):
            os.makedirs(os.path.join(work, tag), exist_ok=True)
            out = os.path.join(work, tag, stem + ".h5")
            outs.append(out)
            if tag == "A" and args.reuse_a and args.keep and os.path.exists(out):
                continue
            for stale in (out, os.path.splitext(out)[0] + ".json", os.path.splitext(out)[0] + ".xdmf"):
                if os.path.exists(stale):
                    os.unlink(stale)
            rc, text = run(b, cfg, out, args)
            if rc != 0:
                print("%s: %s exited %d:\n%s" % (cfg, tag, rc, text))
                return 2
        diffs = []
        compare_h5(outs[0], outs[1], diffs)
        xa = [os.path.splitext(o)[0] + ".xdmf" for o in outs]
        if all(os.path.exists(x) for x in xa):
            with open(xa[0]) as f0, open(xa[1]) as f1:
                la = [l for l in f0 if "run_id" not in l]
                lb = [l for l in f1 if "run_id" not in l]
            if la != lb:
                diffs.append("xdmf text differs")
        ja = [os.path.splitext(o)[0] + ".json" for o in outs]
        if all(os.path.exists(j) for j in ja):
            with open(ja[0]) as f0, open(ja[1]) as f1:
                compare_json(json.load(f0), json.load(f1), "", diffs)
        print("%-36s %s" % (cfg, "bitwise equal" if not diffs else "DIFFERENT"))
        for d in diffs[:20]:
            print("    " + d)
        bad += bool(diffs)
    print("%d of %d scenarios differ (results in %s)" % (bad, len(cfgs), work))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
