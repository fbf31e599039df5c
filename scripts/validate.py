#!/usr/bin/python3
"""validate.py - run the published ablation cases and compare simulated with published zones.

usage: scripts/validate.py [--bin bin/ablasim] [--cases configs/validation/cases.yaml]
                           [--only ID[,ID...]] [--jobs N] [--threads N] [--spacing-mm S]
                           [--out build/validate] [--dry-run] [--force] [--no-trends]

Each case of configs/validation/cases.yaml (format at the top of that file) is one
`ablasim run BASE --set ... -o OUT/ID.h5 --threads N` (cases with the same base and overrides
share one run). The zone of the case's criterion is read from the run's JSON summary
(sources.<source>.zones.<axis>.<key>, the same place scripts/needle_alignment.py reads), and the
growth curves (trend checks) from /zones/<axis>/growth of the HDF5 result. Writes OUT/table.md
and OUT/table.csv (published and simulated L and D, error in mm and %, criterion, role and the
exact command of every case), the trend checks of issue 16 (PASS / FAIL / not checkable, with the
numbers) and a summary: median and max |D error| % of the test set and of the train set against
the targets (median <= 15 %, every case <= 30 %). Nothing is tuned here: it only measures.

Resume: a case whose result (OUT/RUN.h5 + .json + .runinfo.json) exists, was made by the same
command and is newer than the binary, the base config and configs/tissues.yaml is not run again
(--force runs it anyway). --spacing-mm S runs every case on an S mm grid of the same physical
extent (dims scaled) into OUT/spacing_S/ (a quick look: results differ from the configs'
spacing). --dry-run lists the cases and their commands and runs nothing. Slow: the whole set
takes about 40 minutes on one core (cryo runs take minutes each); `make validate` runs it, never
`make check`.
"""
import argparse
import csv
import io
import json
import math
import os
import shlex
import statistics
import subprocess
import sys
import ablasim_io  # atomic, symlink-safe writes (beside this script)
import threading
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import yaml  # noqa: E402

import ablasim_h5 as S  # noqa: E402  HDF5 names (include/ablasim/h5_schema.h)
from scenario_table import apply_sets, children_cpu  # noqa: E402  (--set grafting, CPU time)

TARGET_MEDIAN, TARGET_MAX = 15.0, 30.0
LOCK = threading.Lock()


# ---- cases -----------------------------------------------------------------------------------

def criterion_key(crit):
    """'Omega>=1' -> ('Omega_ge_1', 'omega', None); 'T_max>=55C' -> ('T_max_ge_55C', 'hot', 55);
    'T_min<=-30C' -> ('T_min_le_-30C', 'cold', -30)."""
    c = crit.replace(" ", "")
    if c == "Omega>=1":
        return "Omega_ge_1", "omega", None
    for pre, op, kind, tag in (("T_max", ">=", "hot", "ge"), ("T_min", "<=", "cold", "le")):
        if c.startswith(pre + op) and c.endswith("C"):
            thr = float(c[len(pre) + 2:-1])
            return "%s_%s_%gC" % (pre, tag, thr), kind, thr
    raise ValueError("criterion '%s': allowed Omega>=1, T_max>=<thr>C, T_min<=<thr>C" % crit)


def load_cases(path):
    doc = yaml.safe_load(open(path))
    # a file that is not a cases list: a message, not a traceback (QA, session 29)
    if not isinstance(doc, dict) or not isinstance(doc.get("cases"), list) or not doc["cases"]:
        raise ValueError("%s: expected a mapping with a non-empty 'cases' list" % path)
    presets = doc.get("presets") or {}
    cases = []
    seen = set()
    for k, c in enumerate(doc["cases"]):
        missing = [key for key in ("id", "base", "role", "criterion")
                   if not isinstance(c, dict) or key not in c]
        if missing:
            raise ValueError("%s: case %d: missing %s" % (path, k + 1, ", ".join(missing)))
        cid = c["id"]
        if cid in seen:
            raise ValueError("%s: case id '%s' twice" % (path, cid))
        seen.add(cid)
        if c.get("role") not in ("train", "test", "trend"):
            raise ValueError("%s: case %s: role must be train, test or trend" % (path, cid))
        if not os.path.exists(os.path.join(ROOT, c["base"])):
            raise ValueError("%s: case %s: base %s does not exist" % (path, cid, c["base"]))
        sets = list(presets.get(c["preset"], [])) if c.get("preset") else []
        if c.get("preset") and c["preset"] not in presets:
            raise ValueError("%s: case %s: unknown preset %s" % (path, cid, c["preset"]))
        sets += [str(s) for s in (c.get("set") or [])]
        for s in sets:
            if "=" not in s:
                raise ValueError("%s: case %s: '%s' is not KEY=VALUE" % (path, cid, s))
        c["sets"] = sets
        c["key"], c["kind"], c["thr"] = criterion_key(c["criterion"])
        pub = c.get("published") or {}
        c["L_pub"], c["D_pub"] = pub.get("L_mm"), pub.get("D_mm")
        c["L_sd"], c["D_sd"] = pub.get("L_sd_mm"), pub.get("D_sd_mm")
        cases.append(c)
    return cases, doc.get("not_represented") or []


def spacing_sets(c, spacing):
    """--set lines for an S mm grid of the same extent as the case's own grid."""
    doc = yaml.safe_load(open(os.path.join(ROOT, c["base"])))
    apply_sets(doc, [s.split("=", 1) for s in c["sets"]])
    g = doc.get("grid") or {}
    if "dims" not in g:
        raise ValueError("case %s: --spacing-mm needs grid.dims in the base (mesh grids keep "
                         "their spacing)" % c["id"])
    h = g.get("spacing_mm", [1.0, 1.0, 1.0])
    dims = [max(4, int(round(n * hh / spacing))) for n, hh in zip(g["dims"], h)]
    return ["grid.spacing_mm=[%g,%g,%g]" % (spacing, spacing, spacing),
            "grid.dims=[%d,%d,%d]" % tuple(dims)]


def assign_runs(cases, a, outdir):
    """Give every case its run (shared by cases with the same base and overrides)."""
    runs = {}
    for c in cases:
        sets = c["sets"] + (spacing_sets(c, a.spacing_mm) if a.spacing_mm else [])
        k = (c["base"], tuple(sets))
        if k not in runs:
            out = os.path.join(outdir, c["id"] + ".h5")
            cmd = [a.bin, "run", c["base"]]
            for s in sets:
                cmd += ["--set", s]
            cmd += ["-o", out, "--threads", str(a.threads), "-q"]
            runs[k] = {"id": c["id"], "base": c["base"], "out": out, "cmd": cmd, "cases": []}
        runs[k]["cases"].append(c["id"])
        c["run"] = runs[k]
    return list(runs.values())


def cmd_text(cmd):
    return " ".join(shlex.quote(os.path.relpath(x, ROOT) if os.path.isabs(x) and
                                x.startswith(ROOT) else x) for x in cmd)


# ---- running ---------------------------------------------------------------------------------

def up_to_date(r, a):
    out, info = r["out"], r["out"][:-3] + ".runinfo.json"
    js = r["out"][:-3] + ".json"
    if a.force or not all(os.path.exists(p) for p in (out, info, js)):
        return False
    try:
        ri = json.load(open(info))
    except (OSError, ValueError):
        return False
    if ri.get("cmd") != cmd_text(r["cmd"]):
        return False
    t = os.path.getmtime(out)
    deps = [a.bin, os.path.join(ROOT, r["base"]), os.path.join(ROOT, "configs", "tissues.yaml")]
    return all(t > os.path.getmtime(p) for p in deps if os.path.exists(p))


def run_one(r, a, n, total):
    if up_to_date(r, a):
        ri = json.load(open(r["out"][:-3] + ".runinfo.json"))
        r.update(status="reused", wall_s=ri["wall_s"], cpu_s=ri["cpu_s"])
        with LOCK:
            print("[%d/%d] %s: result up to date (%.0f s)" % (n, total, r["id"], ri["wall_s"]),
                  flush=True)
        return r
    with LOCK:
        print("[%d/%d] %s: %s" % (n, total, r["id"], cmd_text(r["cmd"])), flush=True)
    c0, t0 = children_cpu(), time.time()
    p = subprocess.run(r["cmd"], cwd=ROOT, capture_output=True, text=True)
    wall = time.time() - t0
    cpu = children_cpu() - c0 if a.jobs == 1 else float("nan")  # per-child CPU only serially
    if p.returncode != 0:
        msg = (p.stderr.strip().splitlines() or ["exit %d" % p.returncode])[-1]
        r.update(status="failed: " + msg[:160], wall_s=wall, cpu_s=cpu)
        with LOCK:
            print("    FAILED (%d): %s" % (p.returncode, msg), flush=True)
        return r
    info = r["out"][:-3] + ".runinfo.json"
    ablasim_io.write_text(info, json.dumps({"cmd": cmd_text(r["cmd"]), "wall_s": wall,
                                            "cpu_s": cpu,
                                            "date": time.strftime("%Y-%m-%d %H:%M:%S")}))
    r.update(status="ran", wall_s=wall, cpu_s=cpu)
    with LOCK:
        print("    done in %.0f s" % wall, flush=True)
    return r


# ---- reading ---------------------------------------------------------------------------------

def read_case(c):
    """Simulated L, D (and the zone dict, energy) of a case from its run's JSON summary."""
    r = c["run"]
    js = r["out"][:-3] + ".json"
    c.update(L_sim=None, D_sim=None, energy_J=None, zone_json=None, alt=None)
    if not r.get("status", "").startswith(("ran", "reused")) or not os.path.exists(js):
        return
    j = json.load(open(js))
    src = j["sources"][c["zone"]["source"]]
    z = src["zones"][c["zone"]["axis"]][c["key"]]
    c["zone_json"] = z
    c["energy_J"] = src.get("energy_J")
    alt = {"Omega_ge_1": "T_max_ge_55C", "T_max_ge_55C": "Omega_ge_1"}.get(c["key"])
    za = src["zones"][c["zone"]["axis"]].get(alt) if alt else None
    c["alt"] = (alt, za["length_mm"], za["diameter_mm"]) if za else None
    c["L_sim"] = z[c.get("L_field", "length_mm")]
    df = c.get("D_field", "diameter_mm")
    c["D_sim"] = (0.5 * (z["diameter_mm"] + z["diameter_min_mm"]) if df == "mean_max_min"
                  else z[df])


def growth(c):
    """Growth curve of the case's zone: (time_s, length_mm, diameter_mm) lists, from the HDF5."""
    import h5py
    import numpy as np
    r = c["run"]
    with h5py.File(r["out"], "r") as f:
        g = f[S.H5_ZONE_FMT % c["zone"]["axis"]]
        gr = g[S.H5_GROWTH]
        t = gr[S.H5_DS_TIME][...]
        if c["kind"] == "omega":
            L = gr[S.H5_KIND_COL_FMT % (S.H5_KIND_OMEGA, S.H5_COL_LENGTH)][...]
            D = gr[S.H5_KIND_COL_FMT % (S.H5_KIND_OMEGA, S.H5_COL_DIAMETER)][...]
        else:
            thr = g[S.H5_KIND_COL_FMT % (c["kind"], S.H5_COL_THRESHOLD)][...]
            i = int(np.argmin(np.abs(thr - c["thr"])))
            L = gr[S.H5_KIND_COL_FMT % (c["kind"], S.H5_COL_LENGTH)][:, i]
            D = gr[S.H5_KIND_COL_FMT % (c["kind"], S.H5_COL_DIAMETER)][:, i]
    return list(t), list(L), list(D)


def at_time(curve, t):
    ts, L, D = curve
    i = min(range(len(ts)), key=lambda k: abs(ts[k] - t))
    return ts[i], L[i], D[i]


# ---- table -----------------------------------------------------------------------------------

def fmt(x, p=1):
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else "%.*f" % (p, x)


def err(sim, pub):
    if sim is None or pub is None:
        return None, None
    return sim - pub, 100.0 * (sim - pub) / pub


def pub_txt(v, sd):
    return "-" if v is None else ("%g" % v) + (" ± %g" % sd if sd is not None else "")


def table(cases, not_rep, a):
    cols = ["id", "modality", "tissue", "model", "role", "conf.", "criterion", "published L",
            "published D", "sim L", "sim D", "L err mm", "L err %", "D err mm", "D err %",
            "status", "command"]
    rows = []
    for c in cases:
        dl, pl = err(c["L_sim"], c["L_pub"])
        dd, pd = err(c["D_sim"], c["D_pub"])
        c["D_err_pct"] = pd
        st = c["run"].get("status", "not run")
        rows.append([c["id"], c["modality"], c["tissue"], c["model"], c["role"],
                     str(c["confidence"]), c["criterion"], pub_txt(c["L_pub"], c["L_sd"]),
                     pub_txt(c["D_pub"], c["D_sd"]), fmt(c["L_sim"]), fmt(c["D_sim"]), fmt(dl),
                     fmt(pl, 0), fmt(dd), fmt(pd, 0),
                     st if not st.startswith(("ran", "reused")) else "ok",
                     cmd_text(c["run"]["cmd"])])
    out = os.path.join(a.outdir, "table.csv")
    with open(out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols + ["D err % (1 decimal)", "other criterion", "other sim L",
                           "other sim D", "energy J", "source", "data row", "assumed", "fitted"])
        for c, r in zip(cases, rows):
            alt = c.get("alt") or ("", None, None)
            w.writerow(r + [fmt(c["D_err_pct"]), alt[0], fmt(alt[1]), fmt(alt[2]),
                            fmt(c.get("energy_J"), 0), c.get("source", ""), c.get("data", ""),
                            c.get("assumed", ""), c.get("fitted", "")])
    md = io.StringIO()
    md.write("| " + " | ".join(cols[:-1]) + " |\n|" + "---|" * (len(cols) - 1) + "\n")
    for r in rows:
        md.write("| " + " | ".join(x.replace("|", "\\|") for x in r[:-1]) + " |\n")
    md.write("\nCommands (run from the repository root):\n\n")
    for c in cases:
        if c["run"]["id"] == c["id"]:
            md.write("- `%s`: `%s`\n" % (c["id"], cmd_text(c["run"]["cmd"])))
        else:
            md.write("- `%s`: the run of `%s`\n" % (c["id"], c["run"]["id"]))
    md.write("\nNot represented (published, not run):\n\n")
    for n in not_rep:
        md.write("- %s: %s\n" % (n["row"], n["reason"]))
    return md.getvalue()


def summary(cases):
    lines = []
    res = {}
    for role in ("test", "train"):
        e = [abs(c["D_err_pct"]) for c in cases if c["role"] == role and
             c.get("D_err_pct") is not None]
        n_all = sum(1 for c in cases if c["role"] == role and c["D_pub"] is not None)
        if not e:
            lines.append("%s set: no case with a published and a simulated D" % role)
            continue
        med, mx = statistics.median(e), max(e)
        worst = max((c for c in cases if c["role"] == role and c.get("D_err_pct") is not None),
                    key=lambda c: abs(c["D_err_pct"]))
        n30 = sum(1 for x in e if x > TARGET_MAX)
        ok = med <= TARGET_MEDIAN and mx <= TARGET_MAX
        res[role] = (med, mx, len(e), n_all, ok)
        lines.append("%s set (%d of %d cases with D measured): median |D error| %.1f %% "
                     "(target <= %g %%), max %.1f %% (%s; target <= %g %%), %d case(s) over "
                     "%g %%: %s" % (role, len(e), n_all, med, TARGET_MEDIAN, mx, worst["id"],
                                    TARGET_MAX, n30, TARGET_MAX,
                                    "PASS" if ok else "FAIL") if role == "test" else
                     "%s set (%d of %d): median |D error| %.1f %%, max %.1f %% (%s) - not a "
                     "target (a parameter was fitted on it)" % (role, len(e), n_all, med, mx,
                                                                worst["id"]))
    return lines, res


# ---- trends ----------------------------------------------------------------------------------

def trends(cases):
    """The published trends of issue 16, each (name, verdict, numbers)."""
    by = {c["id"]: c for c in cases}
    out = []

    def have(*ids):
        return all(i in by and by[i]["D_sim"] is not None for i in ids)

    def add(name, ok, txt):
        out.append((name, ok if isinstance(ok, str) else ("PASS" if ok else "FAIL"), txt))

    # 1. in vivo < ex vivo, same device and time
    pairs = [("mwa_he2010_ic_invivo_%dW_10min" % p, "mwa_he2010_ic_exvivo_%dW_10min" % p)
             for p in (30, 40, 50)]
    pairs += [("mwa_he2010_nic_invivo_40W_10min", "mwa_he2010_nic_exvivo_40W_10min"),
              ("rfa_lee2009_ic2cm_invivo_12min", "rfa_lee2009_ic2cm_exvivo_12min")]
    pp = [(i, e) for i, e in pairs if have(i, e)]
    if pp:
        ok = all(by[i]["D_sim"] < by[e]["D_sim"] for i, e in pp)
        txt = "; ".join("%s: in vivo D %.1f vs ex vivo %.1f mm (published %g vs %g)" % (
            i.replace("_invivo", ""), by[i]["D_sim"], by[e]["D_sim"], by[i]["D_pub"],
            by[e]["D_pub"]) for i, e in pp)
        add("in vivo liver zone < ex vivo (same device, time)", ok, txt)
    else:
        add("in vivo liver zone < ex vivo (same device, time)", "NOT RUN", "pair cases missing")

    # 2. muscle > liver in vivo
    tissues = yaml.safe_load(open(os.path.join(ROOT, "configs", "tissues.yaml")))
    tnames = tissues.get("tissues", tissues)
    if "muscle" not in tnames:
        add("muscle > liver in vivo", "NOT CHECKABLE", "no muscle tissue in configs/tissues.yaml")
    elif have("trend_mwa_muscle_invivo_40W_10min", "mwa_he2010_ic_invivo_40W_10min"):
        m, l = by["trend_mwa_muscle_invivo_40W_10min"], by["mwa_he2010_ic_invivo_40W_10min"]
        add("muscle > liver in vivo", m["D_sim"] > l["D_sim"] and
            m["zone_json"]["volume_mL"] > l["zone_json"]["volume_mL"],
            "MWA 40 W 10 min, Omega >= 1: muscle %.0f x %.1f mm (%.1f mL) vs liver %.0f x %.1f mm "
            "(%.1f mL); no published muscle size (IT'IS muscle perfusion is 23x below liver's)" % (
                m["L_sim"], m["D_sim"], m["zone_json"]["volume_mL"], l["L_sim"], l["D_sim"],
                l["zone_json"]["volume_mL"]))
    else:
        add("muscle > liver in vivo", "NOT RUN", "trend_mwa_muscle_invivo_40W_10min missing")

    # 3. RFA ex vivo cluster: sub-linear, still growing at 15/30/45 min; 4. cluster > single
    cl, si = "trend_rfa_cluster_exvivo_45min", "trend_rfa_single_exvivo_45min"
    curves = {}
    for i in (cl, si):
        if have(i):
            try:
                curves[i] = growth(by[i])
            except (OSError, KeyError) as e:
                print("growth curve of %s: %s" % (i, e), file=sys.stderr)
    if cl in curves:
        pts = [at_time(curves[cl], t) for t in (900, 1800, 2700)]
        d = [p[2] for p in pts]
        vol = by[cl]["zone_json"]["volume_mL"]
        grow = d[1] > d[0] and d[2] > d[1]
        sub = (d[1] - d[0]) < d[0] and (d[2] - d[1]) <= (d[1] - d[0])
        add("RFA ex vivo cluster keeps growing, sub-linearly, 15/30/45 min", grow and sub,
            "cluster T_max >= 55 C diameter %.1f / %.1f / %.1f mm at %.0f / %.0f / %.0f s "
            "(increments %+.1f, %+.1f mm; final volume %.1f mL)" % (
                d[0], d[1], d[2], pts[0][0], pts[1][0], pts[2][0], d[1] - d[0], d[2] - d[1],
                vol))
    else:
        add("RFA ex vivo cluster keeps growing, sub-linearly, 15/30/45 min", "NOT RUN",
            "%s missing" % cl)
    if cl in curves and si in curves:
        txt, ok = [], True
        for t in (720, 900, 1800, 2700):
            a_, b_ = at_time(curves[cl], t), at_time(curves[si], t)
            ok &= a_[2] > b_[2]
            txt.append("%.0f s: cluster D %.1f vs single %.1f mm" % (a_[0], a_[2], b_[2]))
        add("RFA cluster > single electrode (ex vivo)", ok, "; ".join(txt) +
            " (cluster 3 x 2.5 cm, single 3 cm, both cooled, impedance mode 200 W)")
    else:
        add("RFA cluster > single electrode (ex vivo)", "NOT RUN", "trend runs missing")

    # 5. MWA D/L in 0.4-0.8 (liver); lung zones elongated (D/L < 1)
    mw = [c for c in cases if c["modality"] == "mwa" and c["D_sim"] and c["L_sim"] and
          "liver" in c["tissue"]]
    if mw:
        r = [(c["id"], c["D_sim"] / c["L_sim"]) for c in mw]
        ok = all(0.4 <= x <= 0.8 for _, x in r)
        bad = [("%s %.2f" % (i, x)) for i, x in r if not 0.4 <= x <= 0.8]
        add("MWA liver D/L in 0.4-0.8", ok, "D/L %.2f-%.2f over %d liver MWA cases%s" % (
            min(x for _, x in r), max(x for _, x in r), len(r),
            ("; outside: " + ", ".join(bad)) if bad else ""))
    lung = [c for c in cases if c["modality"] == "mwa" and "lung" in c["tissue"] and c["D_sim"]]
    if lung:
        ok = all(c["D_sim"] / c["L_sim"] < 1 for c in lung)
        add("lung MWA zones elongated (D/L < 1)", ok, "; ".join(
            "%s: %.0f x %.1f mm, D/L %.2f (published %.2f)" % (
                c["id"], c["L_sim"], c["D_sim"], c["D_sim"] / c["L_sim"],
                c["D_pub"] / c["L_pub"]) for c in lung))
    else:
        add("lung MWA zones elongated (D/L < 1)", "NOT RUN", "lung cases missing")

    # 6. more cryoprobes -> larger lethal ice
    cp = sorted((c for c in cases if c.get("group") == "cryo_littrup_probes" and c["D_sim"]),
                key=lambda c: c["n_probes"])
    if len(cp) >= 2:
        d = [c["D_sim"] for c in cp]
        add("more cryoprobes -> larger lethal ice", all(y > x for x, y in zip(d, d[1:])),
            "-30 C average diameter %s mm for %s probes (published %s)" % (
                " / ".join("%.1f" % x for x in d), "/".join(str(c["n_probes"]) for c in cp),
                " / ".join("%g" % c["D_pub"] for c in cp)))
    else:
        add("more cryoprobes -> larger lethal ice", "NOT RUN", "Littrup multi-probe cases missing")

    # 7. freeze-thaw-freeze vs one freeze: isotherm sizes change little (<= 10 %)
    a_, b_ = "cryo_cvir2018_liver_2probes_10-8-10", "cryo_cvir2018_liver_2probes_15min"
    if have(a_, b_):
        ja = json.load(open(by[a_]["run"]["out"][:-3] + ".json"))["sources"]["cryo"]["zones"]
        jb = json.load(open(by[b_]["run"]["out"][:-3] + ".json"))["sources"]["cryo"]["zones"]
        ax = by[a_]["zone"]["axis"]
        txt, ok = [], True
        for k in ("T_min_le_0C", "T_min_le_-20C", "T_min_le_-40C"):
            da, db = ja[ax][k]["diameter_mm"], jb[ax][k]["diameter_mm"]
            rel = 100.0 * (da - db) / db if db else float("nan")
            ok &= abs(rel) <= 10.0
            txt.append("%s D %.1f vs %.1f mm (%+.0f %%)" % (k, da, db, rel))
        add("freeze-thaw-freeze vs one freeze: isotherms change little (|dD| <= 10 %)", ok,
            "two probes in liver, 10-8-10 vs single 15 min (the published pair: D 45 vs 43 mm): "
            + "; ".join(txt))
    else:
        add("freeze-thaw-freeze vs one freeze: isotherms change little (|dD| <= 10 %)",
            "NOT RUN", "CVIR 2018 cases missing")

    # 7b. the better perfused kidney freezes less than liver (same study, probes and protocol)
    kp = [("cryo_cvir2018_kidney_2probes_10-8-10", "cryo_cvir2018_liver_2probes_10-8-10"),
          ("cryo_cvir2018_kidney_2probes_15min", "cryo_cvir2018_liver_2probes_15min")]
    kp = [(k, l) for k, l in kp if have(k, l)]
    if kp:
        add("cryo: kidney ice ball < liver (same probes, protocol)",
            all(by[k]["D_sim"] < by[l]["D_sim"] for k, l in kp), "; ".join(
                "%s: kidney D %.1f vs liver %.1f mm (published %g vs %g)" % (
                    k.replace("cryo_cvir2018_kidney_", ""), by[k]["D_sim"], by[l]["D_sim"],
                    by[k]["D_pub"], by[l]["D_pub"]) for k, l in kp))
    else:
        add("cryo: kidney ice ball < liver (same probes, protocol)", "NOT RUN",
            "CVIR 2018 kidney/liver cases missing")

    # 8. zone size rises with delivered energy (within one device and tissue model)
    groups = {}
    for c in cases:
        if c.get("group", "").startswith("mwa_") and c["D_sim"] and c["energy_J"]:
            groups.setdefault(c["group"], []).append(c)
    groups = {g: cs for g, cs in groups.items() if len(cs) >= 2}
    if groups:
        ok, txt = True, []
        for g, cs in sorted(groups.items()):
            cs.sort(key=lambda c: c["energy_J"])
            d = [c["D_sim"] for c in cs]
            mono = all(y >= x for x, y in zip(d, d[1:]))
            ok &= mono
            txt.append("%s: D %s mm at %s kJ" % (g, " / ".join("%.1f" % x for x in d),
                                                  " / ".join("%.1f" % (c["energy_J"] / 1e3)
                                                             for c in cs)))
        add("zone size rises with delivered energy", ok, "; ".join(txt))
    else:
        add("zone size rises with delivered energy", "NOT RUN", "no group with two cases")
    return out


# ---- main ------------------------------------------------------------------------------------

def positive(kind, lo, hi):
    """argparse type: a number of kind in [lo, hi]; otherwise argparse's usage error (exit 2)
    naming the option, the value and the range."""
    def conv(text):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError("%r is not a number" % text)
        if not (lo <= v <= hi):
            raise argparse.ArgumentTypeError("%s is out of range; allowed %g..%g" % (text, lo, hi))
        return v
    return conv


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default="bin/ablasim")
    ap.add_argument("--cases", default=os.path.join("configs", "validation", "cases.yaml"))
    ap.add_argument("--only", help="comma-separated case ids to run (a shared run counts for "
                    "all); the table still lists every case whose result is up to date")
    ap.add_argument("--jobs", type=positive(int, 1, 64), default=1,
                    help="cases run in parallel, 1..64 (default 1)")
    ap.add_argument("--threads", type=positive(int, 1, 256), default=1,
                    help="ablasim --threads per run, 1..256 (default 1)")
    ap.add_argument("--spacing-mm", type=positive(float, 0.1, 10.0),
                    help="run every case on this grid spacing, 0.1..10 mm")
    ap.add_argument("--out", default=os.path.join("build", "validate"))
    ap.add_argument("--dry-run", action="store_true", help="list cases and commands, run nothing")
    ap.add_argument("--force", action="store_true", help="run cases even if up to date")
    ap.add_argument("--no-trends", action="store_true", help="skip the trend checks")
    a = ap.parse_args()
    a.bin = os.path.abspath(a.bin)
    a.outdir = os.path.abspath(a.out)
    if os.path.exists(a.outdir) and not os.path.isdir(a.outdir):
        sys.stderr.write("validate.py: --out %s is a file, not a directory\n" % a.out)
        return 2
    if a.spacing_mm:
        a.outdir = os.path.join(a.outdir, "spacing_%g" % a.spacing_mm)
    try:
        cases, not_rep = load_cases(os.path.join(ROOT, a.cases) if not os.path.isabs(a.cases)
                                    else a.cases)
    except (OSError, ValueError, KeyError, yaml.YAMLError) as e:
        sys.stderr.write("validate.py: %s\n" % e)
        return 2
    if a.only:
        want = [x for x in a.only.split(",") if x]
        unknown = [x for x in want if x not in {c["id"] for c in cases}]
        if unknown:
            sys.stderr.write("validate.py: --only: unknown case(s) %s\n" % ", ".join(unknown))
            return 2
    try:
        runs = assign_runs(cases, a, a.outdir)
    except (OSError, ValueError) as e:
        sys.stderr.write("validate.py: %s\n" % e)
        return 2
    # --only: run the selected cases' runs; the table still lists every case, with the results
    # of the others read where they are up to date ("not run" otherwise)
    selected = runs
    if a.only:
        selected = [r for r in runs if any(i in want for i in r["cases"])]
        if a.dry_run:
            cases = [c for c in cases if c["id"] in want]
    if a.dry_run:
        for c in cases:
            print("%-40s %-5s %-5s %-13s pub L %s D %s" % (
                c["id"], c["role"], c["modality"], c["criterion"], fmt(c["L_pub"]),
                fmt(c["D_pub"])))
            print("    " + (cmd_text(c["run"]["cmd"]) if c["run"]["id"] == c["id"] else
                          "(the run of %s)" % c["run"]["id"]))
        print("%d cases (%d test, %d train, %d trend runs), %d runs; %d published rows not "
              "represented" % (len(cases), sum(c["role"] == "test" for c in cases),
                               sum(c["role"] == "train" for c in cases),
                               sum(c["role"] == "trend" for c in cases), len(runs), len(not_rep)))
        return 0
    if not os.access(a.bin, os.X_OK):
        sys.stderr.write("validate.py: %s: no such executable (make bin/ablasim)\n" % a.bin)
        return 2
    os.makedirs(a.outdir, exist_ok=True)
    t0 = time.time()
    n = len(selected)
    with ThreadPoolExecutor(max(1, a.jobs)) as ex:
        list(ex.map(lambda ir: run_one(ir[1], a, ir[0] + 1, n), enumerate(selected)))
    for r in runs:
        if r not in selected:
            force, a.force = a.force, False
            if up_to_date(r, a):
                ri = json.load(open(r["out"][:-3] + ".runinfo.json"))
                r.update(status="reused", wall_s=ri["wall_s"], cpu_s=ri["cpu_s"])
            else:
                r.update(status="not run")
            a.force = force
    wall = time.time() - t0
    for c in cases:
        try:
            read_case(c)
        except (OSError, ValueError, KeyError) as e:
            c["run"]["status"] = "unreadable: %s" % e
    md = table(cases, not_rep, a)
    lines, _ = summary(cases)
    tr = [] if a.no_trends else trends(cases)
    tw = sum(r.get("wall_s", 0) or 0 for r in runs)
    tc = sum(r.get("cpu_s", 0) for r in runs if isinstance(r.get("cpu_s"), (int, float)) and
             not math.isnan(r["cpu_s"]))
    head = ("# ablasim validation against published ablation zones\n\n"
            "Date %s, binary %s, cases %s%s; %d runs, %.0f s wall this time (%s); the results "
            "took %.0f s wall, %.0f s CPU when they were run.\n\n" % (
                time.strftime("%Y-%m-%d %H:%M"), os.path.relpath(a.bin, ROOT), a.cases,
                (", spacing %g mm" % a.spacing_mm) if a.spacing_mm else ", the configs' spacing",
                len(runs), wall, ", ".join("%s %d" % (s, sum(1 for r in runs if
                                                              r.get("status", "").startswith(s)))
                                           for s in ("ran", "reused", "failed", "not run")),
                tw, tc))
    body = head + md + "\n## Summary\n\n" + "".join("- %s\n" % x for x in lines)
    if tr:
        body += "\n## Trends\n\n| trend | verdict | numbers |\n|---|---|---|\n"
        body += "".join("| %s | %s | %s |\n" % t for t in tr)
    with open(os.path.join(a.outdir, "table.md"), "w") as f:
        f.write(body)
    print("\n".join(lines))
    for t in tr:
        print("trend %-70s %s\n    %s" % (t[0], t[1], t[2]))
    print("wrote %s and table.csv (%.0f s)" % (os.path.relpath(os.path.join(a.outdir, "table.md"),
                                                                ROOT), wall))
    missing = [c["id"] for c in cases if c["run"].get("status") == "not run"]
    if missing:
        print("not run (no up-to-date result): %s" % ", ".join(missing))
    failed = [r["id"] for r in runs if r.get("status", "").startswith("failed")]
    if failed:
        print("runs that failed: %s" % ", ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
