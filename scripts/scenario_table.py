#!/usr/bin/python3
"""scenario_table.py - run every clinical scenario in configs/ and regenerate README's table.

usage: scripts/scenario_table.py [--bin bin/ablasim] [--only NAME ...] [--no-readme]

For each configs/*.yaml that is a scenario (not tissues.yaml, not sweep_*.yaml): run it,
evaluate the margin (`ablasim margin`, with the critical structures named on a comment line
`# ablasim-critical: nerve:45:10 spinal_cord:43:` in the scenario), and collect modality,
settings, ablation volume (T_max >= 55 C or T_min <= -40 C), minimal margin, verdict,
critical-structure extremes and run time. Writes out/scenarios/table.md and replaces the block
between <!-- scenarios:begin --> and <!-- scenarios:end --> in README.md, so the table never
goes stale: `make scenarios` runs this.
"""
import argparse
import glob
import json
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def settings_of(text):
    """A short human description of the sources, read from the scenario text."""
    dur = re.search(r"duration_s:\s*([0-9.]+)", text)
    m = re.search(r"^sources:\s*$(.*?)(^\S|\Z)", text, re.M | re.S)
    text = m.group(1) if m else ""
    kinds = re.findall(r"type:\s*(volumetric|fixed_temperature|mwa|rfa|cryo)\b", text)
    power = re.findall(r"power_W:\s*([0-9.]+)", text)
    temp = re.findall(r"temperature_C:\s*(-?[0-9.]+)", text)
    parts = []
    if power:
        parts.append("%s W" % max(float(p) for p in power))
    if temp and "fixed_temperature" in kinds:
        parts.append("tip %s C" % max(temp, key=lambda t: abs(float(t) - 37)))
    if dur:
        parts.append("%.0f min" % (float(dur.group(1)) / 60))
    return ", ".join(sorted(set(kinds))) or "none", ", ".join(parts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "bin", "ablasim"))
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--no-readme", action="store_true")
    ap.add_argument("--reuse", action="store_true",
                    help="use existing out/scenarios/NAME.h5 results newer than the scenario")
    a = ap.parse_args()
    outdir = os.path.join(ROOT, "out", "scenarios")
    os.makedirs(outdir, exist_ok=True)
    rows = []
    for path in sorted(glob.glob(os.path.join(ROOT, "configs", "*.yaml"))):
        name = os.path.basename(path)[:-5]
        if name == "tissues" or name.startswith("sweep"):
            continue
        if a.only and name not in a.only:
            continue
        text = open(path).read()
        crit = re.findall(r"^#\s*ablasim-critical:\s*(.*)$", text, re.M)
        crit_args = []
        for line in crit:
            for c in line.split():
                crit_args += ["--critical", c]
        out = os.path.join(outdir, name + ".h5")
        t0 = time.time()
        if a.reuse and os.path.exists(out) and os.path.getmtime(out) > os.path.getmtime(path):
            r = subprocess.CompletedProcess([], 0, "", "")
            wall = json.load(open(out[:-3] + ".json")).get("wall_time_s", float("nan"))
        else:
            r = subprocess.run([a.bin, "run", path, "-o", out, "-q"], capture_output=True,
                               text=True)
            wall = time.time() - t0
        if r.returncode != 0:
            rows.append((name, "-", "-", "-", "-", "run failed: " + r.stderr.strip()[:80], "-", "-"))
            continue
        m = subprocess.run([a.bin, "margin", out, "-q"] + crit_args, capture_output=True, text=True)
        mj = {}
        mpath = out[:-3] + ".margin.json"
        if m.returncode == 0 and os.path.exists(mpath):
            mj = json.load(open(mpath))
        rj = json.load(open(out[:-3] + ".json"))
        iso = rj.get("isotherms", {})
        vol = max(iso.get("T_max_ge_55C_mL", 0) or 0, iso.get("T_min_le_-40C_mL", 0) or 0)
        kinds, settings = settings_of(text)
        margin = mj.get("margin", {}) if isinstance(mj.get("margin"), dict) else {}
        mm = margin.get("minimal_margin_mm", mj.get("minimal_margin_mm"))
        verdict = margin.get("verdict", mj.get("verdict", "n/a"))
        crit_txt = []
        for c in mj.get("critical", []) or []:
            crit_txt.append("%s %.1f..%.1f C%s" % (c.get("tissue", "?"), c.get("T_min_C", float("nan")),
                                                  c.get("T_max_C", float("nan")),
                                                  " (limit crossed)" if c.get("limit_crossed") else ""))
        rows.append((name, kinds, settings, "%.2f" % vol,
                     "n/a" if mm is None else "%.1f" % mm, verdict,
                     "; ".join(crit_txt) or "-", "%.0f" % wall))
    hdr = ("| scenario | modality | settings | ablation volume (mL) | minimal margin (mm) | "
           "verdict | critical structures (T_min..T_max) | run time (s) |\n"
           "|---|---|---|---|---|---|---|---|\n")
    table = hdr + "".join("| " + " | ".join(r) + " |\n" for r in rows)
    open(os.path.join(outdir, "table.md"), "w").write(table)
    print(table)
    if not a.no_readme:
        readme = os.path.join(ROOT, "README.md")
        s = open(readme).read()
        b, e = "<!-- scenarios:begin -->", "<!-- scenarios:end -->"
        if b in s and e in s:
            s = s[: s.index(b) + len(b)] + "\n" + table + s[s.index(e):]
            open(readme + ".tmp", "w").write(s)
            os.replace(readme + ".tmp", readme)
    return 0


if __name__ == "__main__":
    sys.exit(main())
