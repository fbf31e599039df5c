#!/usr/bin/python3
"""scenario_table.py - run every clinical scenario in configs/ and regenerate README's table.

usage: scripts/scenario_table.py [--bin bin/ablasim] [--only NAME|GLOB ...] [--no-readme]
                                 [--reuse] [--threads N] [--variant "BASE NAME --set K=V ..."]
                                 [--check] [--self-test]

For each configs/*.yaml that is a scenario (not tissues.yaml or devices.yaml, not sweep_*.yaml): run it,
evaluate the margin (`ablasim margin`), and collect modality, settings, ablation volume
(T_max >= 55 C or T_min <= -40 C), minimal margin, verdict, critical-structure extremes and run
time (wall and CPU). Writes out/scenarios/table.md and replaces the block between
<!-- scenarios:begin --> and <!-- scenarios:end --> in README.md, so the table never goes
stale: `make scenarios` runs this.

Directive comment lines in a scenario (anywhere in the file, one per line; docs/SCENARIOS.md):

  # ablasim-critical: nerve:45:10 spinal_cord:43:
        critical structures for `ablasim margin --critical` (TISSUE:TMAX:TMIN, either empty)
  # ablasim-variant: NAME --set KEY=VALUE [--set KEY=VALUE ...]
        a what-if row: the same scenario run with these overrides (exactly as `ablasim run
        --set`), listed right after its base with the settings that differ; same critical
        structures. NAME: [a-z0-9_]+, unique across scenarios and variants.
  # ablasim-sides: DX DY DZ
        also report the margin on the +d side of the tumour against the -d side
        (scripts/side_margin.py: smallest margin within 45 degrees of each direction), in the
        margin column as "(+d: A / -d: B)"; applies to the variants too.

--variant "BASE NAME --set K=V ..." adds a variant line to BASE for this run only (to try a
what-if before writing it into the scenario). --check validates every directive line (and
--variant) and exits: 0 when all are well-formed, 2 otherwise, each error naming file:line, the
value and what is allowed.
"""
import argparse
import fnmatch
import glob
import json
import os
import re
import resource
import shlex
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import ablasim_io  # atomic, symlink-safe writes (beside this script)

NAME_RE = re.compile(r"^[a-z0-9_]+$")
KEY_RE = re.compile(r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$")
CRIT_RE = re.compile(r"^[A-Za-z0-9_]+:(-?[0-9.]+)?:(-?[0-9.]+)?$|^[A-Za-z0-9_]+:(-?[0-9.]+)?$")


class DirectiveError(Exception):
    pass


def parse_sets(tokens, where):
    """['--set', 'k=v', ...] -> [(k, v)]; raises DirectiveError naming where."""
    sets = []
    if not tokens:
        raise DirectiveError("%s: a variant needs at least one '--set KEY=VALUE'" % where)
    it = iter(tokens)
    for tok in it:
        if tok != "--set":
            raise DirectiveError("%s: '%s': expected '--set KEY=VALUE' (only --set is allowed "
                                 "in a variant)" % (where, tok))
        kv = next(it, None)
        if kv is None or "=" not in kv:
            raise DirectiveError("%s: '--set %s': expected KEY=VALUE after --set" %
                                 (where, kv or ""))
        k, v = kv.split("=", 1)
        if not KEY_RE.match(k):
            raise DirectiveError("%s: '%s': KEY must be a dotted path of [A-Za-z0-9_] "
                                 "(e.g. sources.0.power_W)" % (where, k))
        sets.append((k, v))
    return sets


def parse_variant(text, where):
    try:
        tok = shlex.split(text)
    except ValueError as e:
        raise DirectiveError("%s: '%s': %s" % (where, text, e))
    if not tok or not NAME_RE.match(tok[0]):
        raise DirectiveError("%s: variant name '%s': allowed [a-z0-9_]+ followed by "
                             "--set KEY=VALUE ..." % (where, tok[0] if tok else ""))
    return {"name": tok[0], "sets": parse_sets(tok[1:], where)}


def parse_directives(path, text):
    """Critical structures, variants and side direction of one scenario file."""
    rel = os.path.relpath(path, ROOT)
    d = {"critical": [], "variants": [], "sides": None}
    for ln, line in enumerate(text.splitlines(), 1):
        where = "%s:%d" % (rel, ln)
        m = re.match(r"^#\s*ablasim-(critical|variant|sides):\s*(.*)$", line)
        if not m:
            if re.match(r"^#\s*ablasim-[a-z]+:", line):
                raise DirectiveError("%s: '%s': unknown directive; allowed ablasim-critical, "
                                     "ablasim-variant, ablasim-sides" % (where, line.strip()))
            continue
        kind, rest = m.group(1), m.group(2).strip()
        if kind == "critical":
            for c in rest.split():
                if not CRIT_RE.match(c):
                    raise DirectiveError("%s: ablasim-critical '%s': allowed TISSUE:TMAX:TMIN "
                                         "(either limit may be empty, in C)" % (where, c))
                d["critical"].append(c)
        elif kind == "variant":
            v = parse_variant(rest, where)
            v["where"] = where
            d["variants"].append(v)
        else:
            try:
                vec = [float(x) for x in rest.split()]
            except ValueError:
                vec = []
            if len(vec) != 3 or not any(vec):
                raise DirectiveError("%s: ablasim-sides '%s': allowed three numbers DX DY DZ, "
                                     "not all zero" % (where, rest))
            if d["sides"] is not None:
                raise DirectiveError("%s: a second ablasim-sides line (one per scenario)" % where)
            d["sides"] = vec
    return d


def collect(extra_variants):
    """Scenario files with their directives; raises DirectiveError on any bad line."""
    scen = []
    for path in sorted(glob.glob(os.path.join(ROOT, "configs", "*.yaml"))):
        name = os.path.basename(path)[:-5]
        if name in ("tissues", "devices") or name.startswith("sweep"):
            continue
        text = open(path).read()
        scen.append({"name": name, "path": path, "text": text, **parse_directives(path, text)})
    by_name = {s["name"]: s for s in scen}
    for i, ev in enumerate(extra_variants or []):
        where = "--variant #%d" % (i + 1)
        parts = ev.split(None, 1)
        if len(parts) < 2 or parts[0] not in by_name:
            raise DirectiveError("%s: '%s': expected 'BASE NAME --set KEY=VALUE ...' with BASE "
                                 "one of: %s" % (where, ev, ", ".join(sorted(by_name))))
        v = parse_variant(parts[1], where)
        v["where"] = where
        by_name[parts[0]]["variants"].append(v)
    seen = {}
    for s in scen:
        seen.setdefault(s["name"], os.path.relpath(s["path"], ROOT))
    for s in scen:
        for v in s["variants"]:
            if v["name"] in seen:
                raise DirectiveError("%s: variant name '%s' already used (%s); names must be "
                                     "unique" % (v["where"], v["name"], seen[v["name"]]))
            seen[v["name"]] = v["where"]
    return scen


# ---- settings column --------------------------------------------------------------------------

def apply_sets(doc, sets):
    """Graft --set KEY=VALUE overrides onto the parsed scenario (as ablasim does)."""
    import yaml
    for k, v in sets:
        parts = k.split(".")
        node = doc
        for p in parts[:-1]:
            if isinstance(node, list) and p.isdigit() and int(p) < len(node):
                node = node[int(p)]
            elif isinstance(node, dict):
                node = node.setdefault(p, {})
            else:
                return
        last = parts[-1]
        val = yaml.safe_load(v)
        if isinstance(node, list) and last.isdigit() and int(last) < len(node):
            node[int(last)] = val
        elif isinstance(node, dict):
            node[last] = val


def num(x):
    return ("%g" % x) if isinstance(x, (int, float)) else str(x)


def source_settings(s):
    t = s.get("type", "?")
    if t == "rfa":
        g = s.get("generator", {}) or {}
        el = s.get("electrodes", []) or []
        mode = g.get("mode", "?")
        parts = [mode]
        if mode == "temperature":
            parts = ["%s C" % num(g.get("setpoint_C", "?"))]
        elif "power_W" in g:
            parts = ["%s %s W" % (mode, num(g["power_W"]))]
        elif "voltage_V" in g:
            parts = ["%s V" % num(g["voltage_V"])]
        kinds = []
        for e in el:
            if e.get("type", "straight") == "expandable":
                kinds.append("%s-tine %s mm" % (num(e.get("n_tines", 10)),
                                               num(e.get("deployed_diameter_mm", "?"))))
            else:
                kinds.append("%s cm%s" % (num(e.get("active_length_mm", 0) / 10.0),
                                          " cooled" if "coolant_temperature_C" in e else ""))
        return ", ".join(parts + kinds)
    if t == "mwa":
        p = s.get("power_W")
        if p is None and s.get("schedule"):
            p = max(r.get("power_W", 0) for r in s["schedule"])
        return "%s W, %s MHz %s" % (num(p), num(s.get("frequency_MHz", "?")),
                                    s.get("antenna", "monopole"))
    if t == "cryo":
        probes = s.get("probes", []) or []
        prot = s.get("protocol", []) or []
        cyc = "-".join(num(ph.get("duration_s", 0) / 60.0) for ph in prot)
        g = sorted({num(p.get("gauge", "?")) for p in probes})
        return "%d x %s G, %s min" % (len(probes), "/".join(g), cyc)
    if t == "fixed_temperature":
        if "temperature_C" in s:
            return "tip %s C" % num(s["temperature_C"])
        sch = s.get("schedule", []) or []
        temps = [r.get("temperature_C", 37) for r in sch]
        return "tip %s C" % num(max(temps, key=lambda x: abs(x - 37))) if temps else "tip"
    if t == "volumetric":
        return "%s W" % num(s.get("power_W", "?"))
    return t


def settings_of(text, sets, base_name=None):
    """Modality and a short description of the sources, from the scenario with sets applied."""
    import yaml
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError:
        doc = {}
    apply_sets(doc, sets)
    srcs = [s for s in (doc.get("sources") or []) if isinstance(s, dict)]
    kinds = sorted({s.get("type", "?") for s in srcs}) or ["none"]
    hot = [s for s in srcs if s.get("type") != "fixed_temperature"] or srcs
    desc = "; ".join(source_settings(s) for s in hot)
    dur = (doc.get("time") or {}).get("duration_s")
    if isinstance(dur, (int, float)):
        desc += ", %s min" % num(round(dur / 60.0, 1))
    if base_name:
        def short(k):   # tissues.tumour.perfusion_per_s -> tumour.perfusion_per_s,
            p = k.split(".")  # sources.0.electrodes.0.tip_mm -> electrodes.0.tip_mm
            n = 3 if len(p) >= 3 and p[-2].isdigit() else 2
            return ".".join(p[-n:])
        changes = ", ".join("%s=%s" % (short(k), v) for k, v in sets)
        desc += "; what-if of %s: %s" % (base_name, changes)
    return ", ".join(kinds), desc


# ---- running ------------------------------------------------------------------------------------

def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_one(a, row, outdir):
    """Run (or reuse) one row; returns the table cells."""
    name, path = row["name"], row["path"]
    out = os.path.join(outdir, name + ".h5")
    info = out[:-3] + ".runinfo.json"
    setargs = []
    for k, v in row["sets"]:
        setargs += ["--set", "%s=%s" % (k, v)]
    kinds, settings = settings_of(row["text"], row["sets"], row.get("base"))
    reuse = (a.reuse and os.path.exists(out) and os.path.exists(info)
             and os.path.getmtime(out) > os.path.getmtime(path)
             and json.load(open(info)).get("sets") == [list(s) for s in row["sets"]])
    if reuse:
        ri = json.load(open(info))
        wall, cpu = ri["wall_s"], ri["cpu_s"]
    else:
        cmd = [a.bin, "run", path, "-o", out, "-q"] + setargs
        if a.threads:
            cmd += ["--threads", str(a.threads)]
        c0, t0 = children_cpu(), time.time()
        r = subprocess.run(cmd, capture_output=True, text=True)
        wall, cpu = time.time() - t0, children_cpu() - c0
        if r.returncode != 0:
            msg = r.stderr.strip().splitlines()
            return (name, kinds, settings, "-", "-", "run failed: " +
                    (msg[-1] if msg else "exit %d" % r.returncode)[:100], "-",
                    "%.0f (%.0f)" % (wall, cpu))
        ablasim_io.write_text(info, json.dumps({"wall_s": wall, "cpu_s": cpu,
                                                "sets": row["sets"], "threads": a.threads}))
    crit_args = []
    for c in row["critical"]:
        crit_args += ["--critical", c]
    m = subprocess.run([a.bin, "margin", out, "-q"] + crit_args, capture_output=True, text=True)
    crit_note = ""
    if m.returncode == 2 and crit_args:
        # a variant may remove a critical tissue (e.g. the vein remapped to liver): report the
        # margin anyway and say why the structures are missing
        crit_note = "(not evaluated: a critical tissue is not in this run)"
        m = subprocess.run([a.bin, "margin", out, "-q"], capture_output=True, text=True)
    mj = {}
    mpath = out[:-3] + ".margin.json"
    if m.returncode == 0 and os.path.exists(mpath):
        mj = json.load(open(mpath))
    rj = json.load(open(out[:-3] + ".json"))
    iso = rj.get("isotherms", {})
    vol = max(iso.get("T_max_ge_55C_mL", 0) or 0, iso.get("T_min_le_-40C_mL", 0) or 0)
    margin = mj.get("margin", {}) if isinstance(mj.get("margin"), dict) else {}
    mm = margin.get("minimal_margin_mm", mj.get("minimal_margin_mm"))
    # overall verdict (margin and critical limits) first; the margin-only one as a fallback
    verdict = mj.get("verdict", margin.get("verdict", "n/a"))
    mtxt = "n/a" if mm is None else "%.1f" % mm
    if row.get("sides") and mm is not None and m.returncode == 0:
        mtxt += " " + sides_text(out, row["sides"])
    crit_txt = []
    for c in mj.get("critical", []) or []:
        tmin, tmax = c.get("T_min_C"), c.get("T_max_C")
        crit_txt.append("%s %s..%s C%s" % (
            c.get("tissue", "?"), "?" if tmin is None else "%.1f" % tmin,
            "?" if tmax is None else "%.1f" % tmax,
            " (limit crossed)" if c.get("limit_crossed") else ""))
    return (name, kinds, settings, "%.2f" % vol, mtxt, verdict,
            "; ".join(crit_txt) or crit_note or "-",
            "%.0f (%.0f)" % (wall, cpu))


def sides_text(result, vec):
    """'(+x: A / -x: B)' from scripts/side_margin.py on the margin file just written."""
    import numpy as np
    import side_margin
    d = side_margin.read_margin_file(result[:-3] + ".margin.h5")
    k, j, i = np.nonzero(d["tumour"])
    c = d["origin"] + d["spacing"] * np.array([i.mean(), j.mean(), k.mean()])
    u = np.array(vec, dtype=float)
    u /= np.linalg.norm(u)
    axes = {(1, 0, 0): "x", (0, 1, 0): "y", (0, 0, 1): "z"}
    lab = axes.get(tuple(int(x) for x in u) if all(x in (0, 1) for x in u) else None,
                   "d(%s)" % ",".join("%g" % x for x in vec))
    t = side_margin.side_report(d, c, u, 45.0)["cone_minimal_margin_mm"]
    w = side_margin.side_report(d, c, -u, 45.0)["cone_minimal_margin_mm"]
    f = side_margin.fmt
    return "(+%s: %s / -%s: %s)" % (lab, f(t), lab, f(w))


def self_test():
    """Directive parsing on good and bad lines: every bad line must be rejected with a message
    naming file:line; the good ones must parse to the expected values."""
    path = os.path.join(ROOT, "configs", "x.yaml")
    good = ("# ablasim-critical: nerve:45:10 spinal_cord:43: blood::10\n"
            "# ablasim-variant: a_1 --set sources.0.power_W=72 --set 'time.duration_s=360'\n"
            "# ablasim-sides: 1 0 0\nname: x\n")
    d = parse_directives(path, good)
    ok = (d["critical"] == ["nerve:45:10", "spinal_cord:43:", "blood::10"] and
          d["variants"][0]["name"] == "a_1" and
          d["variants"][0]["sets"] == [("sources.0.power_W", "72"), ("time.duration_s", "360")]
          and d["sides"] == [1.0, 0.0, 0.0])
    bad = ["# ablasim-critical: nerve:45:10:3", "# ablasim-critical: nerve",
           "# ablasim-variant: Bad --set a=1", "# ablasim-variant: v", "# ablasim-variant: v a=1",
           "# ablasim-variant: v --set a", "# ablasim-variant: v --set a..b=1",
           "# ablasim-variant: v --set 'a=1", "# ablasim-sides: 1 0", "# ablasim-sides: 0 0 0",
           "# ablasim-side: 1 0 0", "# ablasim-sides: 1 0 0\n# ablasim-sides: 0 1 0"]
    for b in bad:
        try:
            parse_directives(path, "name: x\n" + b + "\n")
            print("self-test: accepted a bad line: %r" % b)
            ok = False
        except DirectiveError as e:
            if "configs/x.yaml:" not in str(e):
                print("self-test: message without file:line: %s" % e)
                ok = False
    print("self-test %s: 1 good block, %d bad lines" % ("ok" if ok else "FAILED", len(bad)))
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=os.path.join(ROOT, "bin", "ablasim"))
    ap.add_argument("--only", nargs="*", help="row names or shell patterns (fnmatch)")
    ap.add_argument("--no-readme", action="store_true")
    ap.add_argument("--reuse", action="store_true",
                    help="use existing out/scenarios/NAME.h5 results newer than the scenario "
                         "and run with the same overrides")
    ap.add_argument("--threads", type=int, help="ablasim run --threads (default: all cores)")
    ap.add_argument("--variant", action="append", metavar='"BASE NAME --set K=V ..."',
                    help="an extra what-if row for this run only (repeatable)")
    ap.add_argument("--check", action="store_true",
                    help="validate the directive lines and exit (no runs)")
    ap.add_argument("--self-test", action="store_true",
                    help="check the directive parser on good and bad lines, exit")
    a = ap.parse_args()
    if a.self_test:
        return self_test()
    try:
        scen = collect(a.variant)
    except DirectiveError as e:
        sys.stderr.write("scenario_table.py: %s\n" % e)
        return 2
    rows = []
    for s in scen:
        rows.append({"name": s["name"], "path": s["path"], "text": s["text"], "sets": [],
                     "critical": s["critical"], "sides": s["sides"]})
        for v in s["variants"]:
            rows.append({"name": v["name"], "path": s["path"], "text": s["text"],
                         "sets": v["sets"], "critical": s["critical"], "sides": s["sides"],
                         "base": s["name"]})
    if a.check:
        print("%d scenarios, %d what-if variants: directives well-formed" %
              (len(scen), len(rows) - len(scen)))
        return 0
    if a.only is not None:
        # a subset never rewrites README's table (it replaced the whole table with the subset,
        # and a pattern matching nothing emptied it: QA, session 29)
        if not a.only:
            sys.stderr.write("scenario_table.py: --only needs row names or patterns\n")
            return 2
        unmatched = [p for p in a.only if not any(fnmatch.fnmatchcase(r["name"], p) for r in rows)]
        if unmatched:
            sys.stderr.write("scenario_table.py: --only %s: no such row (rows: %s)\n" %
                             (" ".join(unmatched), " ".join(r["name"] for r in rows)))
            return 2
        rows = [r for r in rows if any(fnmatch.fnmatchcase(r["name"], p) for p in a.only)]
        if not a.no_readme:
            sys.stderr.write("scenario_table.py: --only runs a subset: README.md is not "
                             "rewritten (out/scenarios/table.md has the rows)\n")
            a.no_readme = True
    outdir = os.path.join(ROOT, "out", "scenarios")
    os.makedirs(outdir, exist_ok=True)
    cells = []
    for r in rows:
        print("running %s ..." % r["name"], file=sys.stderr, flush=True)
        cells.append(run_one(a, r, outdir))
    hdr = ("| scenario | modality | settings | ablation volume (mL) | minimal margin (mm) | "
           "verdict | critical structures (T_min..T_max) | run time (s): wall (CPU) |\n"
           "|---|---|---|---|---|---|---|---|\n")
    table = hdr + "".join("| " + " | ".join(c) + " |\n" for c in cells)
    open(os.path.join(outdir, "table.md"), "w").write(table)
    print(table)
    if not a.no_readme:
        readme = os.path.join(ROOT, "README.md")
        s = open(readme).read()
        b, e = "<!-- scenarios:begin -->", "<!-- scenarios:end -->"
        if b in s and e in s:
            s = s[: s.index(b) + len(b)] + "\n" + table + s[s.index(e):]
            ablasim_io.write_text(readme, s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
