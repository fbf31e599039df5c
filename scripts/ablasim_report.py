#!/usr/bin/python3
"""ablasim_report.py - pictures and a one-page verdict for a finished ablasim run.

usage: scripts/ablasim_report.py RESULT.h5 [--margin RESULT.margin.h5] [-o OUTDIR]
                                 [--tumour-tissue tumour] [--slices-through margin|tumour]
                                 [--plan PLAN.json]

Writes OUTDIR/<name>_slices.png and OUTDIR/<name>_report.md. The margin file is the output of
`ablasim margin RESULT.h5` (default: RESULT.margin.h5 beside the result, if present).

The picture: three orthogonal slices (axial, coronal, sagittal) through the minimal-margin
location (with a margin file; --slices-through tumour: through the tumour centre; without a
tumour: through the hottest or coldest voxel); the title says which. Anatomy in grey levels, one
per tissue, with thin black tissue boundaries; the T_max map (T_min for a cryoablation) drawn
opaque over it only where the tissue warmed to >= 40 C (cooled to <= 34 C), so a colour is
always a temperature that the colour bar reads and a grey is always a tissue that the legend
names; the ablation zone the verdict used, the tumour and its 5 mm shell, each critical
structure (in its own colour, named with its limit and the temperature it reached) as outlines;
the applicator; a star at the minimal-margin voxel and a cross at each critical structure's
hottest (coldest) voxel where they lie in a slice; a colour bar in degC with the zone threshold
and the critical limits marked. Axes in mm (world x y z, as the result's grid).

--plan PLAN.json (the plan.json of `ablasim plan`, whose OUT/plan.h5 and OUT/plan.margin.h5 are
the result and margin file to report: `ablasim_report.py OUT/plan.h5 --plan OUT/plan.json`):
the chosen plan's (else the first plan's) needle trajectories on the three slices, each shaft
from its tip along the plan's direction to the edge of the grid, projected onto the slice
(dashed; solid where it lies within one voxel of the slice plane, a dot where it crosses the
slice end-on), and a triangle at each tip (filled where the tip lies within one voxel of the
slice; only the tip for an applicator without an axis); and a "Plan" section in the report: tips, direction, power, duration, the verified
minimal margin, the verdict and the robustness P(PASS) with its 95 % CI. A plan file that is
missing, not JSON or without "plans" is refused (exit 2). Without --plan nothing changes.

The report: the overall verdict (margin and critical limits, as `ablasim margin` decided it),
the margin verdict, the minimal margin and where (mm), the critical-structure table (limit,
temperature reached and where, volume beyond the limit, longest time beyond it, PASS/FAIL),
volumes and per-tissue temperature extremes. Everything verdict-related is read from the margin
file, not recomputed; a margin file of another grid or run is refused (exit 2).

Why Python: matplotlib draws contours, colour bars and labelled axes that a hand-written C PNG
writer would have to reimplement; h5py reads the HDF5 layout directly (docs/ARCHITECTURE.md).
Uses Debian's python3-matplotlib, python3-h5py and python3-numpy (scripts/install-deps.sh).
Exit codes: 0 ok, 1 usage, 2 invalid input, 3 I/O.
"""
import argparse
import json
import math
import os
import sys

try:
    import h5py
    import numpy as np
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import patheffects
    from matplotlib.collections import LineCollection
    from matplotlib.colors import ListedColormap
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
except ImportError as e:  # pragma: no cover - environment problem
    sys.stderr.write("ablasim_report: missing Python package (%s); run scripts/install-deps.sh\n" % e)
    sys.exit(3)

import ablasim_h5 as S  # HDF5 names, as in include/ablasim/h5_schema.h (beside this script)
import ablasim_io  # atomic, symlink-safe writes that never hit an input (beside this script)

# Grey level of a tissue: tissues are ranked roughly by CT density (dark = air, lung, fat;
# light = bone) and the tissues present in the picture get evenly spaced greys in that order,
# so that neighbours in the legend are always distinguishable. Unknown tissues go in the middle.
GREY_ORDER = ["air", "lung_inflated", "lung_deflated", "fat", "marrow_yellow", "saline", "skin",
              "muscle", "nerve", "spinal_cord", "kidney", "liver", "tumour", "blood", "marrow_red",
              "bone_cancellous", "bone_cortical"]
HOT_BODY_C, COLD_BODY_C = 40.0, 34.0  # temperature is coloured beyond these (body 37 C +- 3)
ZONE_COLOUR = {"hot": "#00e5ff", "cold": "#ffe600"}
TUMOUR_COLOUR = "#39ff14"
MARKER_COLOUR = "white"
CRITICAL_COLOURS = ["#ff2bd6", "#b388ff", "#ff8a80", "#ffffff", "#80d8ff", "#ccff90"]
APPLICATOR_GREY = "#1a1a1a"
PLAN_COLOUR = "#448aff"  # planned needles: a blue that neither the T_max map nor an outline uses
HALO = [patheffects.withStroke(linewidth=3.2, foreground="black")]


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # usage errors exit 1 (argparse's own default is 2)
        self.print_usage(sys.stderr)
        fail(1, message)


def fail(code, msg):
    sys.stderr.write("ablasim_report: error: %s\n" % msg)
    sys.exit(code)


def _str(v):
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.ndarray) and v.shape == ():
        return _str(v[()])
    return str(v)


def read_result(path):
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        fail(3, "%s: cannot open (%s)" % (path, e))
    need = [S.H5_LABELS, S.H5_MATERIAL_NAMES, S.H5_T_MAX, S.H5_T_MIN]
    for n in need:
        if n not in f:
            fail(2, "%s: %s missing: not an ablasim result file" % (path, n))
    r = {
        "labels": f[S.H5_LABELS][:],
        "names": [x.decode() if isinstance(x, bytes) else str(x) for x in f[S.H5_MATERIAL_NAMES][:]],
        "spacing": np.array(f[S.H5_LABELS].attrs[S.H5A_SPACING_MM], dtype=float),
        "origin": np.array(f[S.H5_LABELS].attrs[S.H5A_ORIGIN_MM], dtype=float),
        "tmax": f[S.H5_T_MAX][:],
        "tmin": f[S.H5_T_MIN][:],
        "name": f.attrs.get(S.H5A_SCENARIO_NAME, os.path.basename(path)),
        "time_s": float(f.attrs.get(S.H5A_TIME_S, 0.0)),
        "applicator": f[S.H5_APPLICATOR][:] > 0 if S.H5_APPLICATOR in f else None,
        "run_id": _str(f.attrs[S.H5A_RUN_ID]) if S.H5A_RUN_ID in f.attrs else "",
        "complete": int(f.attrs[S.H5A_COMPLETE]) if S.H5A_COMPLETE in f.attrs else None,
    }
    r["name"] = _str(r["name"])
    f.close()
    return r


def _scalar(g, k, default=float("nan")):
    return float(g[k][()]) if k in g else default


def read_margin(path):
    if not path or not os.path.exists(path):
        return None
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        fail(3, "%s: cannot open (%s)" % (path, e))
    m = {"path": path, "critical": []}
    g = f.get(S.H5M_MARGIN)
    if g is not None:
        for k in (S.H5M_MINIMAL_MARGIN_MM, S.H5M_CRITERION_MM, S.H5M_RESIDUAL_ML,
                  S.H5M_SHELL_UNABLATED_ML, S.H5M_SHELL_VOLUME_ML, S.H5M_SURFACE_FRACTION,
                  S.H5M_TUMOUR_VOLUME_ML, S.H5M_ZONE_VOLUME_ML, S.H5M_RESOLUTION_MM,
                  S.H5M_ZONE_TOUCHES_BOUNDARY):
            if k in g:
                m[k] = float(g[k][()])
        if S.H5M_VERDICT in g:
            m["verdict"] = _str(g[S.H5M_VERDICT][()])
            m["margin_verdict"] = m["verdict"]
        if S.H5M_MINIMAL_MARGIN_LOCATION_MM in g:
            m["location"] = [float(v) for v in g[S.H5M_MINIMAL_MARGIN_LOCATION_MM][:]]
        if S.H5M_MINIMAL_MARGIN_VOXEL_IJK in g:
            m["voxel_ijk"] = [int(v) for v in g[S.H5M_MINIMAL_MARGIN_VOXEL_IJK][:]]
        if S.H5M_SHELL_MASK in g:
            m["shell"] = g[S.H5M_SHELL_MASK][:]
    # the overall verdict (margin and every critical limit) is the root attribute; /margin/verdict
    # is the margin alone
    for k in (S.H5M_VERDICT, S.H5MA_MARGIN_VERDICT, S.H5MA_MODE, S.H5MA_INPUT_NOTE,
              S.H5MA_RESULT_RUN_ID):
        if k in f.attrs:
            m[k] = _str(f.attrs[k])
    for k in (S.H5MA_CRITICAL_CROSSED, S.H5MA_INPUT_COMPLETE):
        if k in f.attrs:
            m[k] = float(f.attrs[k])
    if S.H5_GRID in f:
        m["grid_spacing"] = np.array(f[S.H5_GRID].attrs.get(S.H5A_SPACING_MM, []), dtype=float)
        m["grid_origin"] = np.array(f[S.H5_GRID].attrs.get(S.H5A_ORIGIN_MM, []), dtype=float)
        if S.H5M_TUMOUR_MASK in f:
            m["tumour_mask"] = f[S.H5M_TUMOUR_MASK][:] > 0
    if S.H5M_ZONES in f:
        m["criterion"] = _str(f[S.H5M_ZONES].attrs.get(S.H5MA_SELECTED, b"tmax"))
        z = f[S.H5M_ZONES].get(m["criterion"])
        if z is not None:
            m["zone"] = z[:] > 0
            m["zone_threshold"] = (float(z.attrs[S.H5MA_THRESHOLD])
                                   if S.H5MA_THRESHOLD in z.attrs else None)
            m["zone_units"] = _str(z.attrs.get(S.H5MA_THRESHOLD_UNITS, ""))
            m["zone_definition"] = _str(z.attrs.get(S.H5A_DEFINITION, ""))
    if S.H5M_CRITICAL in f:
        for name, c in f[S.H5M_CRITICAL].items():
            d = {"tissue": name}
            for k in (S.H5MC_LIMIT_TMAX, S.H5MC_LIMIT_TMIN, S.H5MC_VOLUME_ML, S.H5MC_T_MAX,
                      S.H5MC_T_MIN, S.H5MC_HOT_CROSSED_ML, S.H5MC_COLD_CROSSED_ML,
                      S.H5MC_TIME_ABOVE_MAX_S, S.H5MC_TIME_BELOW_MAX_S, S.H5MC_DAMAGED_ML,
                      S.H5MC_NONFINITE, S.H5MC_LIMIT_CROSSED):
                d[k] = _scalar(c, k)
            m["critical"].append(d)
    f.close()
    return m


def check_margin_matches(m, r, margin_path, result_path):
    """The margin file must describe this result: the same run (run_id, when both files carry
    it: a later run to the same output name left an old margin file that matched grid and
    extremes, and the report drew its PASS over the new fields), same grid, same critical
    extremes."""
    shape = r["labels"].shape
    bad = None
    mid = m.get(S.H5MA_RESULT_RUN_ID, "")
    if mid and r.get("run_id") and mid != r["run_id"]:
        bad = "it was made from run %s, the result is run %s" % (mid, r["run_id"])
    for k in ("tumour_mask", "zone", "shell"):
        if k in m and m[k].shape != shape:
            bad = "/%s is %s, the result's grid %s" % (k, "x".join(map(str, m[k].shape)),
                                                       "x".join(map(str, shape)))
    if bad is None and len(m.get("grid_spacing", [])) == 3 and len(m.get("grid_origin", [])) == 3:
        if (not np.allclose(m["grid_spacing"], r["spacing"], rtol=1e-5, atol=0)
                or not np.allclose(m["grid_origin"], r["origin"], rtol=0, atol=1e-3 * r["spacing"].min())):
            bad = "its grid spacing/origin differ from the result's"
    if bad is None and m.get("mode", "result") == "result":
        for c in m["critical"]:
            sel = np.isin(r["labels"], [i for i, n in enumerate(r["names"]) if n == c["tissue"]])
            for key, fld, red in (("T_max_C", r["tmax"], np.max), ("T_min_C", r["tmin"], np.min)):
                v = fld[sel]
                v = v[np.isfinite(v)]
                want = c[key]
                have = float(red(v)) if v.size else float("nan")
                if not (math.isnan(want) and math.isnan(have)) and not abs(want - have) <= 1e-6 + 1e-9 * abs(have):
                    bad = ("critical structure %s: %s %.4g there, %.4g in the result"
                           % (c["tissue"], key, want, have))
    if bad:
        fail(2, "%s does not belong to %s (%s); rerun `ablasim margin %s`"
             % (margin_path, result_path, bad, result_path))


def read_plan(path):
    """The plan to draw from an `ablasim plan` plan.json: the chosen one, else the first (None
    when the file lists no plan); bad input exits 2 naming the file."""
    try:
        with open(path) as fh:
            d = json.load(fh)
    except OSError as e:
        fail(2, "%s: cannot read plan file (%s)" % (path, e.strerror or e))
    except ValueError as e:  # JSONDecodeError, or bytes that are not UTF-8
        fail(2, "%s: not JSON (%s)" % (path, e))
    if not isinstance(d, dict) or not isinstance(d.get("plans"), list):
        fail(2, "%s: no \"plans\" list: not a plan.json of `ablasim plan`" % path)
    plans = [p for p in d["plans"] if isinstance(p, dict)]
    if len(plans) != len(d["plans"]):
        fail(2, "%s: \"plans\" holds something that is not an object" % path)
    chosen = [p for p in plans if p.get("chosen") is True]
    p = chosen[0] if chosen else (plans[0] if plans else None)

    def vec3(v):
        return (isinstance(v, list) and len(v) == 3
                and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                        and math.isfinite(x) for x in v))
    if p is not None:
        tips = p.get("tips_mm")
        if not isinstance(tips, list) or not tips or not all(vec3(t) for t in tips):
            fail(2, "%s: the plan's \"tips_mm\" is not a list of [x, y, z] mm" % path)
        if p.get("applicators", len(tips)) != len(tips):
            fail(2, "%s: \"applicators\" = %s but %d tips in \"tips_mm\""
                 % (path, p.get("applicators"), len(tips)))
        if not vec3(p.get("direction")):
            fail(2, "%s: the plan's \"direction\" is not [dx, dy, dz]" % path)
    return {"path": path, "doc": d, "plan": p, "chosen": bool(chosen), "n_plans": len(plans)}


def plan_axis(plan):
    """Unit vector from the tip back along the shaft; None without an axis (e.g. a sphere)."""
    dv = np.array(plan["direction"], dtype=float)
    n = float(np.linalg.norm(dv))
    return dv / n if n > 0 else None


def clip_ray(p0, dv, lo, hi):
    """Range [t0, t1] of t >= 0 where p0 + t dv lies inside the box lo..hi; None if nowhere."""
    t0, t1 = 0.0, float("inf")
    for a in range(3):
        if dv[a] == 0:
            if not lo[a] <= p0[a] <= hi[a]:
                return None
            continue
        ta, tb = sorted(((lo[a] - p0[a]) / dv[a], (hi[a] - p0[a]) / dv[a]))
        t0, t1 = max(t0, ta), min(t1, tb)
    return (t0, t1) if t0 <= t1 else None


def fmt_vec(p, f="%.1f"):
    # a -1e-15 (or -0.04 at %.1f) that the planner left reads 0.0, not -0.0
    return "(%s)" % ", ".join(f % (0.0 if float(f % v) == 0 else v) for v in p)


def fmt_num(v, f):
    return f % v if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) \
        else "n/a"


def tissue_greys(present_names):
    def rank(n):
        return GREY_ORDER.index(n) if n in GREY_ORDER else GREY_ORDER.index("muscle") + 0.5
    order = sorted(set(present_names), key=lambda n: (rank(n), n))
    k = len(order)
    return {n: (0.12 + 0.83 * i / (k - 1) if k > 1 else 0.55) for i, n in enumerate(order)}


def boundary_segments(lab, h, v, dh, dv):
    """Line segments on the pixel edges where the tissue label changes (h, v: pixel centres)."""
    segs = []
    ii, jj = np.nonzero(lab[:, 1:] != lab[:, :-1])  # vertical edges between columns jj, jj+1
    for i, j in zip(ii, jj):
        x = h[j] + dh / 2
        segs.append([(x, v[i] - dv / 2), (x, v[i] + dv / 2)])
    ii, jj = np.nonzero(lab[1:, :] != lab[:-1, :])  # horizontal edges between rows ii, ii+1
    for i, j in zip(ii, jj):
        y = v[i] + dv / 2
        segs.append([(h[j] - dh / 2, y), (h[j] + dh / 2, y)])
    return segs


def fmt_T(v):
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else "%.1f °C" % v


def fmt_xyz(p):
    return "(%s)" % ", ".join("%.1f" % v for v in p)


def limits_text(c):
    parts = []
    if not math.isnan(c["limit_T_max_below_C"]):
        parts.append("T_max < %g °C" % c["limit_T_max_below_C"])
    if not math.isnan(c["limit_T_min_above_C"]):
        parts.append("T_min > %g °C" % c["limit_T_min_above_C"])
    return ", ".join(parts) or "none"


def critical_extremes(c, r):
    """Per limit of a critical structure: (label, value from the margin file, world mm of the
    voxel where the result reaches it, or None)."""
    ids = [i for i, n in enumerate(r["names"]) if n == c["tissue"]]
    sel = np.isin(r["labels"], ids)
    out = []
    for lim, key, fld, arg in (("limit_T_max_below_C", "T_max_C", r["tmax"], np.nanargmax),
                               ("limit_T_min_above_C", "T_min_C", r["tmin"], np.nanargmin)):
        if math.isnan(c[lim]):
            continue
        where = None
        if sel.any():
            vals = np.where(sel & np.isfinite(fld), fld, np.nan)
            if np.isfinite(vals).any():
                k, j, i = np.unravel_index(arg(vals), vals.shape)
                where = (k, j, i)
        out.append((key[:5], c[key], where))
    return out


def world(r, kji):
    k, j, i = kji
    return [r["origin"][0] + i * r["spacing"][0], r["origin"][1] + j * r["spacing"][1],
            r["origin"][2] + k * r["spacing"][2]]


def draw_plan(ax, plan, hx, vy, w, s, sp, lo, hi):
    """One slice's planned needles: world axes hx, vy in the panel, w across it; s the slice
    plane's w coordinate; lo, hi the grid's outer faces (mm)."""
    pl = plan["plan"]
    dv = plan_axis(pl)
    tips = [np.array(t, dtype=float) for t in pl["tips_mm"]]
    for n, tip in enumerate(tips):
        seg = clip_ray(tip, dv, lo, hi) if dv is not None else None
        if seg is not None:
            a, b = (tip + t * dv for t in seg)
            # the whole shaft, projected: dashed, as it mostly lies off this slice
            ax.plot([a[hx], b[hx]], [a[vy], b[vy]], color=PLAN_COLOUR, lw=2.0, ls=(0, (4, 2.5)),
                    path_effects=HALO, zorder=9)
            # the part within one voxel of the slice plane: solid, where it cuts the picture
            if dv[w] == 0:
                near = seg if abs(tip[w] - s) <= sp[w] else None
            else:
                ta, tb = sorted(((s - sp[w] - tip[w]) / dv[w], (s + sp[w] - tip[w]) / dv[w]))
                near = (max(ta, seg[0]), min(tb, seg[1]))
                near = near if near[0] <= near[1] else None
            if near is not None:
                a, b = (tip + t * dv for t in near)
                ax.plot([a[hx], b[hx]], [a[vy], b[vy]], color=PLAN_COLOUR, lw=3.4,
                        path_effects=HALO, zorder=9, solid_capstyle="butt")
                if math.hypot(b[hx] - a[hx], b[vy] - a[vy]) < min(sp[hx], sp[vy]):
                    # a shaft through the slice end-on projects to a point: a dot shows where
                    ax.plot((a[hx] + b[hx]) / 2, (a[vy] + b[vy]) / 2, marker="o", ms=6,
                            mfc=PLAN_COLOUR, mec="black", mew=1.0, ls="none", zorder=9)
        in_plane = abs(tip[w] - s) <= sp[w]
        ax.plot(tip[hx], tip[vy], marker="^", ms=11, mfc=PLAN_COLOUR if in_plane else "none",
                mec="white", mew=1.4, ls="none", zorder=10)
        if len(tips) > 1:
            ax.annotate("tip %d" % (n + 1), (tip[hx], tip[vy]), xytext=(7, -12),
                        textcoords="offset points", color="white", fontsize=9,
                        fontweight="bold", path_effects=HALO, zorder=10)


def draw(r, m, tumour, field, cold, zone, zone_label, c, through, png, crit, plan=None):
    labels, names = r["labels"], r["names"]
    nz, ny, nx = labels.shape
    sp, org = r["spacing"], r["origin"]
    ax_mm = [org[d] + np.arange([nx, ny, nz][d]) * sp[d] for d in range(3)]  # x, y, z centres
    k0, j0, i0 = c
    shell = m.get("shell") if m else None
    app = r["applicator"]
    # (title, slicer, horizontal axis, vertical axis, fixed array axis of [z][y][x])
    planes = [("axial, z = %.1f mm" % ax_mm[2][k0], lambda a: a[k0], 0, 1, 0),
              ("coronal, y = %.1f mm" % ax_mm[1][j0], lambda a: a[:, j0], 0, 2, 1),
              ("sagittal, x = %.1f mm" % ax_mm[0][i0], lambda a: a[:, :, i0], 1, 2, 2)]
    present = sorted({int(v) for _, s, _, _, _ in planes for v in np.unique(s(labels))})
    greys = tissue_greys([names[v] for v in present])
    grey_lut = np.array([greys.get(n, 0.5) for n in names])

    fld_valid = field[np.isfinite(field)]
    if cold:
        lo = min(-60.0, float(fld_valid.min()) if fld_valid.size else -60.0)
        hi = COLD_BODY_C
        cmap = ListedColormap(plt.get_cmap("Blues_r")(np.linspace(0.0, 0.78, 256)))
    else:
        lo = HOT_BODY_C
        hi = max(60.0, float(fld_valid.max()) if fld_valid.size else 60.0)
        cmap = ListedColormap(plt.get_cmap("YlOrRd")(np.linspace(0.18, 1.0, 256)))
    zcol = ZONE_COLOUR["cold" if cold else "hot"]

    # legend rows: zone, tumour, shell, marker, critical structures, applicator, title
    nleg = 6 + len(crit) + (2 if plan else 0)  # --plan: needle and tip rows
    leg_in = 0.25 * nleg + 0.2
    fig = plt.figure(figsize=(16.5, 6.2 + leg_in))
    gs = fig.add_gridspec(2, 4, width_ratios=[1, 1, 1, 0.045], height_ratios=[5.1, leg_in],
                          left=0.045, right=0.93, top=1 - 0.9 / (6.2 + leg_in), bottom=0.01,
                          wspace=0.22, hspace=0.12)
    axes = [fig.add_subplot(gs[0, d]) for d in range(3)]
    cax = fig.add_subplot(gs[0, 3])
    lax = fig.add_subplot(gs[1, :])
    lax.axis("off")
    im = None
    crit_in_view = [False] * len(crit)
    star_in_view = False
    mvox = None  # the minimal-margin voxel as [k, j, i]
    if m and "voxel_ijk" in m:
        mvox = [m["voxel_ijk"][2], m["voxel_ijk"][1], m["voxel_ijk"][0]]
    for ax, (title, s, hx, vy, fixed) in zip(axes, planes):
        h, v = ax_mm[hx], ax_mm[vy]
        ext = [h[0] - sp[hx] / 2, h[-1] + sp[hx] / 2, v[0] - sp[vy] / 2, v[-1] + sp[vy] / 2]
        lab = s(labels)
        ax.imshow(grey_lut[lab], origin="lower", extent=ext, cmap="gray", vmin=0, vmax=1,
                  interpolation="nearest")
        fld = s(field)
        show = np.ma.masked_where(~((fld <= COLD_BODY_C) if cold else (fld >= HOT_BODY_C)), fld)
        im = ax.imshow(show, origin="lower", extent=ext, cmap=cmap, vmin=lo, vmax=hi,
                       interpolation="nearest")
        if app is not None and s(app).any():
            a2 = np.ma.masked_where(~s(app), np.ones(s(app).shape))
            ax.imshow(a2, origin="lower", extent=ext, cmap=ListedColormap([APPLICATOR_GREY]),
                      vmin=0, vmax=1, interpolation="nearest")
        ax.add_collection(LineCollection(boundary_segments(lab, h, v, sp[hx], sp[vy]),
                                         colors="black", linewidths=1.2))
        X, Y = np.meshgrid(h, v)

        def outline(mask, colour, lw=1.6, ls="solid"):
            mask = np.asarray(mask, bool)
            if mask.any() and not mask.all():
                cs = ax.contour(X, Y, mask.astype(float), levels=[0.5], colors=[colour],
                                linewidths=lw, linestyles=ls)
                for coll in cs.collections:
                    coll.set_path_effects(HALO)

        # larger structures first, so that a small one bordering a large one stays visible
        for n in sorted(range(len(crit)), key=lambda n: -crit[n]["size"]):
            cr = crit[n]
            cm = s(cr["mask"])
            if cm.any():
                crit_in_view[n] = True
                outline(cm, cr["colour"], 3.4)
                # the name beside the structure: at its voxel nearest its centroid in this
                # slice, among those >= 12 mm from the minimal-margin star and 8 mm inside the
                # panel when there are such
                pts = np.argwhere(cm)
                mmp = np.stack([v[pts[:, 0]], h[pts[:, 1]]], axis=1)
                ok = ((mmp[:, 0] > v[0] + 8) & (mmp[:, 0] < v[-1] - 8)
                      & (mmp[:, 1] > h[0] + 8) & (mmp[:, 1] < h[-1] - 8))
                if m and "location" in m and through == "margin":
                    star = np.array([m["location"][vy], m["location"][hx]])
                    ok &= ((mmp - star) ** 2).sum(axis=1) >= 144.0
                cand = mmp[ok] if ok.any() else mmp
                ctr = mmp.mean(axis=0)
                qv, qh = cand[np.argmin(((cand - ctr) ** 2).sum(axis=1))]
                left = (m and "location" in m and through == "margin"
                        and qh < m["location"][hx])  # write away from the star
                ax.annotate(cr["c"]["tissue"], (qh, qv), xytext=(-7 if left else 7, 7),
                            textcoords="offset points", ha="right" if left else "left",
                            color=cr["colour"], fontsize=10, fontweight="bold",
                            path_effects=HALO, zorder=8)
            for _, _, where in cr["extremes"]:
                if where is not None and where[fixed] == c[fixed]:
                    p = world(r, where)
                    ax.plot(p[hx], p[vy], marker="X", ms=9, mfc=cr["colour"], mec="black",
                            mew=1.2, ls="none", zorder=6)
        # zone, shell and tumour over the (wider) critical outlines: where a structure borders
        # the tumour both lines show
        outline(s(zone), zcol, 1.8)
        if shell is not None:
            outline((s(shell) > 0) | s(tumour), TUMOUR_COLOUR, 1.3, "dashed")
        outline(s(tumour), TUMOUR_COLOUR, 1.8)
        if plan:
            draw_plan(ax, plan, hx, vy, 2 - fixed, ax_mm[2 - fixed][c[fixed]], sp,
                      org - sp / 2, org + (np.array([nx, ny, nz]) - 0.5) * sp)
        if m and "location" in m and mvox is not None and mvox[fixed] == c[fixed]:
            star_in_view = True
            p = m["location"]
            ax.plot(p[hx], p[vy], marker="*", ms=19, mfc=MARKER_COLOUR, mec="black", mew=1.3,
                    ls="none", zorder=7)
        ax.set_title(title, fontsize=12)
        ax.set_xlabel("%s (mm)" % "xyz"[hx])
        ax.set_ylabel("%s (mm)" % "xyz"[vy])
        ax.set_xlim(ext[0], ext[1])
        ax.set_ylim(ext[2], ext[3])
        ax.set_aspect("equal")

    cb = fig.colorbar(im, cax=cax)
    cb.set_label("T_min (°C), coloured where ≤ %g °C" % COLD_BODY_C if cold else
                 "T_max (°C), coloured where ≥ %g °C" % HOT_BODY_C)
    if m and m.get("zone_units") == "degC" and m.get("zone_threshold") is not None:
        zthr = m["zone_threshold"]
    elif not m:
        zthr = -40.0 if cold else 55.0
    else:
        zthr = None
    # the zone threshold and the critical limits on the colour bar, named on its left
    if zthr is not None and lo <= zthr <= hi:
        cb.ax.axhline(zthr, color=zcol, lw=3, path_effects=HALO)
        cb.ax.text(-0.3, zthr, "zone %g" % zthr, transform=cb.ax.get_yaxis_transform(),
                   ha="right", va="center", fontsize=9)
    for cr in crit:
        for key, lim in (("T_max", cr["c"]["limit_T_max_below_C"]),
                         ("T_min", cr["c"]["limit_T_min_above_C"])):
            if key == ("T_min" if cold else "T_max") and not math.isnan(lim) and lo <= lim <= hi:
                cb.ax.axhline(lim, color=cr["colour"], lw=2.5, ls="--", path_effects=HALO)
                cb.ax.text(-0.3, lim, "%s %g" % (cr["c"]["tissue"], lim),
                           transform=cb.ax.get_yaxis_transform(), ha="right", va="center",
                           fontsize=9)

    # legends: what each line and marker means; which grey is which tissue
    handles = [Line2D([], [], color=zcol, lw=2.2, path_effects=HALO, label=zone_label)]
    if tumour.any():
        handles.append(Line2D([], [], color=TUMOUR_COLOUR, lw=2.2, path_effects=HALO,
                              label="tumour"))
    if shell is not None:
        handles.append(Line2D([], [], color=TUMOUR_COLOUR, lw=1.6, ls="--", path_effects=HALO,
                              label="tumour + %g mm shell" % m.get("criterion_mm", 5.0)))
    if m and "location" in m:
        mm = m.get("minimal_margin_mm", float("nan"))
        where = "" if star_in_view else " (not in these slices)"
        handles.append(Line2D([], [], marker="*", ms=15, mfc=MARKER_COLOUR, mec="black", ls="none",
                              label="minimal margin %.2f mm at %s mm%s"
                              % (mm, fmt_xyz(m["location"]), where)))
    for n, cr in enumerate(crit):
        cc = cr["c"]
        res = "FAIL: limit crossed" if cc["limit_crossed"] > 0 else "kept"
        reached = ", ".join("%s %s" % (lbl, fmt_T(val)) for lbl, val, _ in cr["extremes"])
        handles.append(Line2D([], [], color=cr["colour"], lw=3.4, path_effects=HALO,
                              marker="X", ms=9, mfc=cr["colour"], mec="black",
                              label="critical structure %s: limit %s; reached %s (X where in a slice): %s%s"
                              % (cc["tissue"], limits_text(cc), reached, res,
                                 "" if crit_in_view[n] else " (not in these slices)")))
    if app is not None and app.any():
        handles.append(Patch(facecolor=APPLICATOR_GREY, edgecolor="black", label="applicator"))
    if plan:
        pl = plan["plan"]
        src = "chosen plan" if plan["chosen"] else "first plan (none chosen)"
        if plan_axis(pl) is not None:
            handles.append(Line2D([], [], color=PLAN_COLOUR, lw=2.0, ls=(0, (4, 2.5)),
                                  path_effects=HALO,
                                  label="needle (projected), %s: tip to grid edge; solid within 1 "
                                        "voxel of the slice, a dot where it crosses end-on" % src))
        handles.append(Line2D([], [], marker="^", ms=11, mfc=PLAN_COLOUR, mec="white", mew=1.4,
                              ls="none",
                              label="planned tip%s%s (filled: within 1 voxel of the slice; hollow: "
                                    "projected)" % ("s" if len(pl["tips_mm"]) > 1 else "",
                                                    "" if plan_axis(pl) is not None else
                                                    ", %s, no applicator axis" % src)))
    leg1 = lax.legend(handles=handles, loc="upper left", fontsize=10, frameon=True,
                      title="outlines and markers", title_fontsize=10, ncol=1 if len(handles) > 4 else 1)
    lax.add_artist(leg1)
    tiss = [Patch(facecolor=str(greys[names[v]]), edgecolor="black", label=names[v])
            for v in sorted(present, key=lambda v: greys[names[v]])]
    lax.legend(handles=tiss, loc="upper right", fontsize=10, frameon=True,
               ncol=min(4, max(1, (len(tiss) + 2) // 3)),
               title="tissues (grey; thin black lines: tissue boundaries)", title_fontsize=10)

    if m:
        verdict = m.get("verdict", "?")
        mv = m.get("margin_verdict", verdict)
        ncrit = len(m["critical"])
        ncross = int(sum(1 for cc in m["critical"] if cc["limit_crossed"] > 0))
        line1 = "%s: verdict %s (margin %s: minimal margin %.2f mm, PASS needs > %g mm%s)" % (
            r["name"], verdict, mv, m.get("minimal_margin_mm", float("nan")),
            m.get("criterion_mm", 5.0),
            "" if not ncrit else "; critical limits crossed: %d of %d" % (ncross, ncrit))
    else:
        line1 = "%s: no margin file, no verdict (run ablasim margin)" % r["name"]
    where = {"margin": "slices through the minimal-margin location %s mm" % fmt_xyz(
        m["location"]) if m and "location" in m else "",
             "tumour": "slices through the tumour centre %s mm" % fmt_xyz(world(r, c)),
             "extreme": "slices through the %s voxel %s mm (no tumour)"
                        % ("coldest" if cold else "hottest", fmt_xyz(world(r, c)))}[through]
    line2 = "%s; %s map after %.0f s" % (where, "T_min" if cold else "T_max", r["time_s"])
    if (m and m.get("input_complete", 1.0) == 0) or r["complete"] == 0:
        line2 += "; INCOMPLETE input (--allow-incomplete)"
    fig.suptitle(line1 + "\n" + line2, fontsize=13)
    fig.savefig(png, dpi=110, format="png")  # png: the temporary of ablasim_io.write_files
    plt.close(fig)


def plan_lines(plan, result_path):
    """The report's Plan section: the drawn plan's needles and figures, as plan.json has them."""
    d, pl = plan["doc"], plan["plan"]
    name = os.path.basename(plan["path"])
    out = ["## Plan", ""]
    if d.get("found") is True:
        out.append("`%s` (`ablasim plan`): a passing plan was found." % name)
    else:
        out.append("`%s` (`ablasim plan`): **no passing plan** was found%s." % (
            name, ": %s" % d["why"].rstrip(".") if isinstance(d.get("why"), str) and d["why"]
            else ""))
    if pl is None:
        return out + ["", "It lists no plan; nothing is drawn.", ""]
    out[-1] += " Drawn on the slices: %s." % (
        "the chosen plan (%d listed)" % plan["n_plans"] if plan["chosen"] else
        "the first of %d plans listed (none is marked chosen)" % plan["n_plans"])
    res = pl.get("result")
    if isinstance(res, str) and os.path.realpath(res) != os.path.realpath(result_path):
        out.append("Note: the plan was verified on `%s`, not on this result." % res)
    dv = plan_axis(pl)
    out += ["", "| applicator | tip (x, y, z mm) | direction (tip to handle) |", "|---|---|---|"]
    for n, t in enumerate(pl["tips_mm"]):
        out.append("| %d | %s | %s |" % (n + 1, fmt_vec(t), fmt_vec(dv, "%.3f") if dv is not None
                                          else "none (no axis: tip only)"))
    verdict = {True: "PASS", False: "FAIL"}.get(pl.get("pass"), "n/a")
    parts = []
    if isinstance(pl.get("margin_pass"), bool):
        parts.append("margin %s" % ("PASS" if pl["margin_pass"] else "FAIL"))
    if isinstance(pl.get("limits_ok"), bool):
        parts.append("critical limits %s" % ("kept" if pl["limits_ok"] else "crossed"))
    rob = d.get("robustness") if isinstance(d.get("robustness"), dict) else {}
    samples = rob.get("samples")
    if isinstance(samples, int) and samples > 0:
        p_pass = "%s (95 %% CI %s to %s)" % (fmt_num(rob.get("p_pass"), "%.2f"),
                                            fmt_num(rob.get("p_pass_ci95_lo"), "%.2f"),
                                            fmt_num(rob.get("p_pass_ci95_hi"), "%.2f"))
    else:
        p_pass = "not sampled"
    out += ["", "| quantity | value |", "|---|---|",
            "| power | %s |" % fmt_num(pl.get("power_W"), "%.3g W"),
            "| duration | %s |" % fmt_num(pl.get("duration_s"), "%.0f s"),
            "| verified minimal margin | %s |" % fmt_num(pl.get("min_margin_mm"), "%.2f mm"),
            "| verdict | %s%s |" % (verdict, " (%s)" % ", ".join(parts) if parts else ""),
            "| robustness P(PASS) | %s |" % p_pass,
            "| robustness samples | %s |" % (samples if isinstance(samples, int) else "n/a"),
            "| placement sd | %s |" % fmt_num(rob.get("placement_sd_mm"), "%g mm"),
            "| robustness fidelity | %s |" % rob.get("fidelity", "n/a"), ""]
    return out


def main():
    ap = _Parser(description="pictures and verdict of an ablasim result")
    ap.add_argument("result")
    ap.add_argument("--margin", help="margin file (default: RESULT.margin.h5 if present)")
    ap.add_argument("-o", "--outdir", default=None, help="output directory (default: beside RESULT)")
    ap.add_argument("--tumour-tissue", default="tumour")
    ap.add_argument("--slices-through", choices=["margin", "tumour"], default="margin",
                    help="slice through the minimal-margin location (default, needs a margin "
                         "file) or the tumour centre")
    ap.add_argument("--plan", help="plan.json of `ablasim plan`: draw its needles, add a Plan "
                                   "section")
    ap.add_argument("--allow-incomplete", action="store_true",
                    help="draw a result whose run stopped on a fault (root attribute complete = "
                         "0, NAME.incomplete.h5); the report says INCOMPLETE")
    a = ap.parse_args()
    if not a.result.endswith(".h5"):
        fail(1, "RESULT must be an .h5 file, got %s" % a.result)
    plan = read_plan(a.plan) if a.plan else None  # bad plan input before any work
    r = read_result(a.result)
    # a faulted run's partial result is refused as `ablasim margin` refuses it (it was drawn
    # as a finished run: an adversarial test, session 29)
    if r["complete"] == 0 and not a.allow_incomplete:
        fail(2, "%s: an incomplete result (root attribute complete = 0: its run stopped on a "
                "fault); rerun the scenario, or pass --allow-incomplete to draw it marked "
                "INCOMPLETE" % a.result)
    base = a.result[:-3]
    mpath = a.margin or base + ".margin.h5"
    m = read_margin(mpath)
    if a.margin and m is None:
        fail(3, "%s: no such margin file" % a.margin)
    if m:
        check_margin_matches(m, r, mpath, a.result)
    outdir = a.outdir or os.path.dirname(os.path.abspath(a.result))
    try:
        os.makedirs(outdir, exist_ok=True)
    except OSError as e:
        fail(3, "%s: cannot create output directory (%s)" % (outdir, e))

    labels, names = r["labels"], r["names"]
    vox_mL = float(np.prod(r["spacing"])) * 1e-3
    if m and "tumour_mask" in m:  # the tumour the verdict used
        tumour = m["tumour_mask"]
    else:
        tum_ids = [i for i, n in enumerate(names) if n == a.tumour_tissue]
        tumour = np.isin(labels, tum_ids) if tum_ids else np.zeros(labels.shape, bool)
    heat_zone, cold_zone = r["tmax"] >= 55.0, r["tmin"] <= -40.0
    if m and "criterion" in m:
        cold = m["criterion"] == "tmin"
    else:  # ablasim margin's automatic choice: a cryoablation if the -40 C zone is larger
        cold = np.count_nonzero(cold_zone) > np.count_nonzero(heat_zone)
    field = r["tmin"] if cold else r["tmax"]
    if m and "zone" in m:  # the zone the verdict used
        zone = m["zone"]
        zdef = m.get("zone_definition") or m["criterion"]
        for a_, b_ in (("1 where ", ""), ("T_max_C", "T_max"), ("T_min_C", "T_min"),
                       (" degC", " °C"), (">=", "≥"), ("<=", "≤")):
            zdef = zdef.replace(a_, b_)
        zone_label = "ablation zone (the verdict's criterion): %s" % zdef
    else:
        zone = cold_zone if cold else heat_zone
        zone_label = "ablation zone: %s" % ("T_min ≤ -40 °C" if cold else "T_max ≥ 55 °C")

    if m and "location" in m:
        if "voxel_ijk" not in m:  # margin files before minimal_margin_voxel_ijk
            m["voxel_ijk"] = [int(round((m["location"][d] - r["origin"][d]) / r["spacing"][d]))
                              for d in range(3)]
        ijk = m["voxel_ijk"]
        if not all(0 <= ijk[d] < labels.shape[2 - d] for d in range(3)):
            fail(2, "%s: minimal-margin voxel %s outside the result's grid" % (mpath, ijk))
    if m and "location" in m and a.slices_through == "margin":
        through = "margin"
        c = np.array([m["voxel_ijk"][2], m["voxel_ijk"][1], m["voxel_ijk"][0]])
    elif tumour.any():
        through = "tumour"
        c = np.round(np.argwhere(tumour).mean(axis=0)).astype(int)
    else:
        through = "extreme"
        c = np.array(np.unravel_index(np.nanargmin(field) if cold else np.nanargmax(field),
                                      field.shape))

    crit = []
    for n, cc in enumerate(m["critical"] if m else []):
        ids = [i for i, nm in enumerate(names) if nm == cc["tissue"]]
        mask = np.isin(labels, ids)
        crit.append({"c": cc, "mask": mask, "size": int(np.count_nonzero(mask)),
                     "colour": CRITICAL_COLOURS[n % len(CRITICAL_COLOURS)],
                     "extremes": critical_extremes(cc, r)})

    png = os.path.join(outdir, "%s_slices.png" % os.path.basename(base))
    md = os.path.join(outdir, "%s_report.md" % os.path.basename(base))
    inputs = [a.result, mpath, a.plan]
    try:  # before the work: an output that is an input is refused, nothing written
        ablasim_io.check_outputs([png, md], inputs)
    except ablasim_io.WriteRefused as e:
        fail(2, str(e))

    lines = ["# ablasim report: %s" % r["name"], "",
             "Result `%s`, simulated time %.0f s%s." % (
                 os.path.basename(a.result), r["time_s"],
                 ", margin file `%s`" % os.path.basename(mpath) if m else ""), ""]
    if r["complete"] == 0:
        lines += ["**result INCOMPLETE (--allow-incomplete)**: its run stopped on a fault; "
                  "the maps are those at the fault", ""]
    if m:
        mmv = m.get("minimal_margin_mm", float("nan"))
        crit_mm = m.get("criterion_mm", 5.0)
        ncross = sum(1 for cc in m["critical"] if cc["limit_crossed"] > 0)
        why = []
        if m.get("margin_verdict") == "FAIL":
            why.append("minimal margin %.2f mm <= %g mm" % (mmv, crit_mm))
        if ncross:
            why.append("critical limit crossed (%s)" % ", ".join(
                cc["tissue"] for cc in m["critical"] if cc["limit_crossed"] > 0))
        lines += ["## Verdict: **%s**" % m.get("verdict", "?"), "",
                  ("%s: %s." % (m.get("verdict", "?"), "; ".join(why))) if why else
                  "%s: minimal margin %.2f mm > %g mm%s." % (
                      m.get("verdict", "?"), mmv, crit_mm,
                      ", every critical structure within its limits" if m["critical"] else ""),
                  "",
                  "The verdict is PASS only if the minimal margin is strictly greater than the "
                  "criterion and no critical structure crossed a limit (docs/MARGIN.md).", ""]
        if m.get("input_complete", 1.0) == 0:
            lines += ["**input INCOMPLETE (--allow-incomplete)**: %s" % m.get("input_note", ""), ""]
        loc = m.get("location", [])
        lines += ["| quantity | value |", "|---|---|",
                  "| verdict (margin and critical limits) | %s |" % m.get("verdict", "?"),
                  "| margin verdict | %s |" % m.get("margin_verdict", "?"),
                  "| critical limits crossed | %d of %d structures |" % (ncross, len(m["critical"])),
                  "| criterion | minimal margin > %g mm (zone: %s) |" % (crit_mm,
                                                                          m.get("criterion", "tmax")),
                  "| ablation zone (the criterion's mask) | %.3f mL |" % m.get("zone_volume_mL",
                                                                                float("nan")),
                  "| minimal margin | %.2f mm |" % mmv,
                  "| at (x, y, z) | %s mm%s |" % (", ".join("%.1f" % v for v in loc),
                                                  " (voxel i j k %s)" % " ".join(
                                                      map(str, m["voxel_ijk"]))
                                                  if "voxel_ijk" in m else ""),
                  "| tumour surface with margin meeting the criterion | %.1f %% |"
                  % (100 * m.get("surface_fraction_meeting_criterion", float("nan"))),
                  "| residual unablated tumour | %.3f mL |"
                  % m.get("residual_unablated_tumour_volume_mL", float("nan")),
                  "| unablated part of the shell | %.3f mL |"
                  % m.get("shell_unablated_volume_mL", float("nan")),
                  "| resolution (one voxel diagonal) | %.2f mm |" % m.get("resolution_mm", float("nan")),
                  ""]
        if m.get("zone_touches_grid_boundary", 0) > 0:
            lines += ["Warning: the ablation zone touches the grid boundary; margins toward it are "
                      "lower bounds.", ""]
        lines += ["## Critical structures", ""]
        if m["critical"]:
            lines += ["| structure | limit | reached | where (x, y, z mm) | volume beyond limit "
                      "| longest time beyond limit | damaged (in zone) | result |",
                      "|---|---|---|---|---|---|---|---|"]
            for cr in crit:
                cc = cr["c"]
                reached = "; ".join("%s %s" % (lbl, fmt_T(val)) for lbl, val, _ in cr["extremes"])
                where = "; ".join(fmt_xyz(world(r, w)) if w is not None else "n/a"
                                  for _, _, w in cr["extremes"])
                vol = cc["hot_limit_crossed_volume_mL"] if not math.isnan(
                    cc["limit_T_max_below_C"]) else 0.0
                vol += cc["cold_limit_crossed_volume_mL"] if not math.isnan(
                    cc["limit_T_min_above_C"]) else 0.0
                times = []
                for lim, key in (("limit_T_max_below_C", "time_at_or_above_limit_max_s"),
                                 ("limit_T_min_above_C", "time_at_or_below_limit_max_s")):
                    if not math.isnan(cc[lim]):
                        times.append("not recorded" if math.isnan(cc[key]) else "%.0f s" % cc[key])
                res = "FAIL" if cc["limit_crossed"] > 0 else "PASS"
                if cc.get("nonfinite_voxels", 0) > 0:
                    res += " (%d voxels of unknown temperature)" % cc["nonfinite_voxels"]
                lines.append("| %s | %s | %s | %s | %.3f mL | %s | %.3f mL | %s |" % (
                    cc["tissue"], limits_text(cc), reached, where, vol, "; ".join(times),
                    cc["damaged_volume_mL"], res))
            lines += ["", "Reached: the highest T_max (lowest T_min) over the structure's voxels; "
                      "a limit is crossed when any voxel reaches it (T_max >= limit, T_min <= "
                      "limit).", ""]
        else:
            lines += ["None given (`ablasim margin RESULT.h5 --critical TISSUE:TMAX:TMIN`).", ""]
    else:
        lines += ["No margin file: run `ablasim margin %s` for the verdict." % a.result, ""]
    if plan:
        lines += plan_lines(plan, a.result)
    lines += ["## Volumes", "", "| quantity | mL |", "|---|---|",
              "| T_max >= 55 C | %.3f |" % (np.count_nonzero(heat_zone) * vox_mL),
              "| T_min <= -40 C | %.3f |" % (np.count_nonzero(cold_zone) * vox_mL),
              "| tumour | %.3f |" % (np.count_nonzero(tumour) * vox_mL), "",
              "## Temperature extremes per tissue", "", "| tissue | T_max (C) | T_min (C) |",
              "|---|---|---|"]
    for i, n in enumerate(names):
        sel = labels == i
        if sel.any():
            lines.append("| %s | %.1f | %.1f |" % (n, r["tmax"][sel].max(), r["tmin"][sel].min()))
    lines += ["", "![slices](%s)" % os.path.basename(png), ""]
    def write_png(tmp):
        draw(r, m, tumour, field, cold, zone, zone_label, c, through, tmp, crit,
             plan if plan and plan["plan"] else None)

    def write_md(tmp):
        with open(tmp, "w") as fh:
            fh.write("\n".join(lines))

    try:  # the picture and the report as a set: both replaced, or neither (session 30)
        ablasim_io.write_files([(png, write_png), (md, write_md)], inputs)
    except ablasim_io.WriteRefused as e:
        fail(2, str(e))
    except OSError as e:
        fail(3, "%s, %s: cannot write (%s); neither was replaced" % (png, md, e))
    print(json.dumps({"png": png, "report": md, "verdict": m.get("verdict") if m else None}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
