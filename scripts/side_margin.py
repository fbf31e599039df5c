#!/usr/bin/python3
"""side_margin.py - ablative margin on one side of the tumour against the opposite side.

usage: scripts/side_margin.py RESULT.h5 [--margin RESULT.margin.h5] [--dir DX DY DZ]
                              [--cone-deg 45] [--all-voxels] [--json OUT.json] [--quiet]
       scripts/side_margin.py --self-test

Answers "is the margin thinner on the vessel side (heat sink) than on the far side?" from the
margin file that `ablasim margin RESULT.h5` writes (docs/MARGIN.md): the signed margin of every
tumour voxel (/margin/margin_mm), the zone used for the verdict (/zones/<selected>) and the
tumour mask. For each side, +d ("toward", e.g. towards the vessel) and -d ("away"):

  cone margin   the smallest signed margin over the tumour SURFACE voxels (/margin/
                surface_voxel_ijk) whose direction from the tumour centroid lies within
                --cone-deg of that side's direction, its location, and the fraction of them with
                a margin above the criterion (same strict rule as the verdict). Surface voxels,
                because interior holes in the zone would otherwise dominate: a cooled RFA
                electrode's own voxels, held at the coolant temperature, are never in a T_max
                zone, so the tumour voxels around the needle get margins of ~1 mm that say
                nothing about either side (--all-voxels uses every tumour voxel, as the global
                minimal margin of `ablasim margin` does);
  ray margin    along the ray from the centroid in that direction: from the centre of the
                outermost tumour voxel to the centre of the first voxel beyond it that is not
                in the zone, measured along the ray (negative when that tumour voxel is not
                ablated: minus the distance back to the nearest ablated voxel on the ray). It
                is the EDT margin restricted to one line, so it is never below the cone margin
                of a cone containing that voxel, and it is quantised to the grid (one voxel for
                axis-aligned rays).

The cone minimum is the clinically relevant figure (the worst point on that side); the ray
figure shows the zone's reach along the axis. `ablasim margin` must have been run first (the
script reads its file, it does not recompute distances). Exit status: 0 ok, 1 usage, 2 invalid
input (a dataset missing, zero direction), 3 I/O (file missing or unreadable).
"""
import argparse
import json
import math
import os
import sys

try:
    import h5py
    import numpy as np
except ImportError as e:  # the report script has the same dependencies (README)
    sys.stderr.write("side_margin.py: %s (install python3-h5py python3-numpy)\n" % e)
    sys.exit(3)

import ablasim_h5 as S  # HDF5 names, as in include/ablasim/h5_schema.h (beside this script)
import ablasim_io  # atomic, symlink-safe writes that never hit an input (beside this script)


def fail(code, msg):
    sys.stderr.write("side_margin.py: %s\n" % msg)
    sys.exit(code)


def read_margin_file(path):
    """Arrays [nz][ny][nx] and grid geometry (x y z) from a margin file."""
    if not os.path.exists(path):
        fail(3, "%s: no such file (run `ablasim margin RESULT.h5` first)" % path)
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        fail(3, "%s: cannot read: %s" % (path, e))
    with f:
        mg = S.H5M_MARGIN + "/"
        need = [S.H5M_TUMOUR_MASK, mg + S.H5M_MARGIN_MM, mg + S.H5M_CRITERION_MM, S.H5M_ZONES]
        for n in need:
            if n not in f:
                fail(2, "%s: no %s (not an ablasim margin file?)" % (path, n))
        zones = f[S.H5M_ZONES]
        sel = zones.attrs.get(S.H5MA_SELECTED)
        if isinstance(sel, bytes):
            sel = sel.decode()
        if sel is None or sel not in zones:
            fail(2, "%s: %s has no selected zone (attribute '%s')"
                 % (path, S.H5M_ZONES, S.H5MA_SELECTED))
        d = {
            "tumour": f[S.H5M_TUMOUR_MASK][()] != 0,
            "margin": f[mg + S.H5M_MARGIN_MM][()].astype(np.float64),
            "zone": zones[sel][()] != 0,
            "zone_name": sel,
            "criterion_mm": float(f[mg + S.H5M_CRITERION_MM][()]),
            "spacing": np.array(f[S.H5_GRID].attrs[S.H5A_SPACING_MM], dtype=np.float64),
            "origin": np.array(f[S.H5_GRID].attrs[S.H5A_ORIGIN_MM], dtype=np.float64),
        }
        if mg + S.H5M_SURFACE_VOXEL_IJK in f:
            d["surf_ijk"] = f[mg + S.H5M_SURFACE_VOXEL_IJK][()]
            d["surf_margin"] = f[mg + S.H5M_SURFACE_MARGIN_MM][()].astype(np.float64)
        else:
            d["surf_ijk"] = np.zeros((0, 3), dtype=np.int32)
            d["surf_margin"] = np.zeros(0)
    return d


def ray_margin(d, centre, u):
    """Signed margin along the ray centre + t u (see the module text); None if no tumour."""
    tum, zone, h, o = d["tumour"], d["zone"], d["spacing"], d["origin"]
    nz, ny, nx = tum.shape
    step = 0.25 * float(h.min())
    voxels = []                                   # voxels the ray visits, in order
    t = 0.0
    while True:
        p = centre + t * u
        ijk = np.rint((p - o) / h).astype(int)    # nearest voxel centre (x y z order)
        if np.any(ijk < 0) or ijk[0] >= nx or ijk[1] >= ny or ijk[2] >= nz:
            break
        if not voxels or tuple(ijk) != voxels[-1]:
            voxels.append(tuple(ijk))
        t += step
    last_t = None
    for n, (i, j, k) in enumerate(voxels):
        if tum[k, j, i]:
            last_t = n
    if last_t is None:
        return None
    pos = lambda v: o + h * np.array(v, dtype=np.float64)
    i, j, k = voxels[last_t]
    if zone[k, j, i]:
        for v in voxels[last_t + 1:]:
            if not zone[v[2], v[1], v[0]]:
                return float(np.dot(pos(v) - pos(voxels[last_t]), u))
        return float("inf")                       # the zone reaches the grid face on this ray
    for v in reversed(voxels[:last_t]):
        if zone[v[2], v[1], v[0]]:
            return -float(np.dot(pos(voxels[last_t]) - pos(v), u))
    return float("-inf")


def side_report(d, centre, u, cone_deg, all_voxels=False):
    h, o = d["spacing"], d["origin"]
    cosmin = math.cos(math.radians(cone_deg))
    if all_voxels or not len(d["surf_ijk"]):
        k, j, i = np.nonzero(d["tumour"])
        ijk = np.stack([i, j, k], axis=1)
        m = d["margin"][k, j, i]
        used = "tumour voxels"
    else:
        ijk = d["surf_ijk"].astype(np.int64)
        m = d["surf_margin"]
        used = "surface voxels"
    pts = o + h * ijk.astype(np.float64)
    rel = pts - centre
    r = np.linalg.norm(rel, axis=1)
    cosang = np.where(r > 0, rel @ u / np.where(r > 0, r, 1.0), -2.0)
    inside = cosang >= cosmin
    n = int(inside.sum())
    out = {"direction": [float(x) for x in u], "cone_deg": cone_deg, "voxels_used": used,
           "voxels_in_cone": n}
    if n:
        mi = m[inside]
        a = int(np.argmin(mi))                    # first minimum: lowest linear index
        out["cone_minimal_margin_mm"] = float(mi[a])
        out["cone_minimal_margin_location_mm"] = [float(x) for x in pts[inside][a]]
        out["fraction_meeting_criterion"] = float((mi > d["criterion_mm"] + 1e-6).sum()) / n
    else:
        out["cone_minimal_margin_mm"] = None
        out["cone_minimal_margin_location_mm"] = None
        out["fraction_meeting_criterion"] = None
    out["ray_margin_mm"] = ray_margin(d, centre, u)
    return out


def self_test():
    """Off-centre sphere: tumour r = 6 mm at 0, zone r = 10 mm centred 2 mm towards +x, 0.5 mm
    voxels. The margin of the tumour surface point at angle t from +x is
    10 - sqrt(6^2 + 2^2 - 2*6*2 cos t): 6 mm at t = 0, 5.20 mm at the 45 degree cone edge (the
    +x cone's minimum), 2 mm at t = 180 degrees (the -x cone's minimum). The margin
    map is built as `ablasim margin` defines it (distance between voxel centres, scipy's exact
    EDT), so the check is on this script's side selection and ray walk, not on ablasim. The
    sampled margin overestimates a curved surface's by at most one voxel diagonal (0.87 mm,
    docs/MARGIN.md), hence the tolerance; the ray margins on an axis are exact to one voxel."""
    from scipy import ndimage
    h, n = 0.5, 65                                # +-16 mm: the zone (to x = 12) inside
    o = -(n - 1) * h / 2
    ax = o + h * np.arange(n)
    z, y, x = np.meshgrid(ax, ax, ax, indexing="ij")
    tum = x**2 + y**2 + z**2 <= 36.0
    zone = (x - 2)**2 + y**2 + z**2 <= 100.0
    dist_out = ndimage.distance_transform_edt(zone, sampling=h)   # to nearest non-zone voxel
    margin = np.where(tum, dist_out, np.nan)
    surf = tum & ~ndimage.binary_erosion(tum, border_value=0)
    k, j, i = np.nonzero(surf)
    d = {"tumour": tum, "margin": margin, "zone": zone, "zone_name": "test",
         "criterion_mm": 5.0, "spacing": np.array([h] * 3), "origin": np.array([o] * 3),
         "surf_ijk": np.stack([i, j, k], axis=1), "surf_margin": margin[k, j, i]}
    c = np.zeros(3)
    t = side_report(d, c, np.array([1.0, 0, 0]), 45.0)
    w = side_report(d, c, np.array([-1.0, 0, 0]), 45.0)
    t_exp = 10.0 - math.sqrt(40.0 - 24.0 * math.cos(math.radians(45.0)))
    ok = (t_exp - 1e-9 <= t["cone_minimal_margin_mm"] <= t_exp + 0.87 and
          2.0 - 1e-9 <= w["cone_minimal_margin_mm"] <= 2.0 + 0.87 and
          abs(t["ray_margin_mm"] - 6.5) < 1e-9 and abs(w["ray_margin_mm"] - 2.5) < 1e-9 and
          t["fraction_meeting_criterion"] == 1.0 and w["fraction_meeting_criterion"] == 0.0)
    print("self-test %s: toward %.3f mm (ray %.2f), away %.3f mm (ray %.2f); expected %.3f and 2 "
          "(+ up to 0.87), rays 6.5 and 2.5" % ("ok" if ok else "FAILED",
          t["cone_minimal_margin_mm"], t["ray_margin_mm"], w["cone_minimal_margin_mm"],
          w["ray_margin_mm"], t_exp))
    return 0 if ok else 1


def fmt(x):
    if x is None:
        return "n/a"
    if math.isinf(x):
        return "%sinf" % ("-" if x < 0 else "")
    return "%.1f" % x


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("result", nargs="?", help="ablasim result RESULT.h5 (its RESULT.margin.h5 "
                    "is read)")
    ap.add_argument("--self-test", action="store_true", help="check on an analytic case, exit")
    ap.add_argument("--margin", help="margin file (default: RESULT.margin.h5)")
    ap.add_argument("--dir", nargs=3, type=float, default=[1.0, 0.0, 0.0],
                    metavar=("DX", "DY", "DZ"), help="the 'toward' side, e.g. towards the vessel")
    ap.add_argument("--cone-deg", type=float, default=45.0,
                    help="half-angle of each side's cone, (0, 90] degrees (default 45)")
    ap.add_argument("--all-voxels", action="store_true",
                    help="cone minimum over every tumour voxel, not only the surface")
    ap.add_argument("--json", help="also write the figures to this JSON file")
    ap.add_argument("--quiet", "-q", action="store_true", help="only the one-line summary")
    a = ap.parse_args()
    if a.self_test:
        return self_test()
    if not a.result:
        fail(1, "RESULT.h5 required (or --self-test)")
    if not (0 < a.cone_deg <= 90):
        fail(1, "--cone-deg %g: allowed (0, 90] degrees" % a.cone_deg)
    u = np.array(a.dir, dtype=np.float64)
    if not np.all(np.isfinite(u)) or np.linalg.norm(u) == 0:
        fail(2, "--dir %s: must be a finite, non-zero vector" % " ".join(map(str, a.dir)))
    u /= np.linalg.norm(u)
    mpath = a.margin or (a.result[:-3] if a.result.endswith(".h5") else a.result) + ".margin.h5"
    if a.json:
        try:  # before any work: --json RESULT.h5 turned the result into JSON (session 30)
            ablasim_io.check_outputs([a.json], [a.result, mpath])
        except ablasim_io.WriteRefused as e:
            fail(2, "--json %s" % e)
    d = read_margin_file(mpath)
    if not d["tumour"].any():
        fail(2, "%s: the tumour mask is empty" % mpath)
    k, j, i = np.nonzero(d["tumour"])
    # centroid in index order sums (deterministic), then to world mm
    centre = d["origin"] + d["spacing"] * np.array([i.mean(), j.mean(), k.mean()])
    rep = {"margin_file": mpath, "zone": d["zone_name"], "criterion_mm": d["criterion_mm"],
           "tumour_centroid_mm": [float(x) for x in centre],
           "toward": side_report(d, centre, u, a.cone_deg, a.all_voxels),
           "away": side_report(d, centre, -u, a.cone_deg, a.all_voxels)}
    t, w = rep["toward"], rep["away"]
    line = ("margin toward %s: %s mm (ray %s); away: %s mm (ray %s); difference %s mm" %
            ("(%g %g %g)" % tuple(a.dir), fmt(t["cone_minimal_margin_mm"]),
             fmt(t["ray_margin_mm"]), fmt(w["cone_minimal_margin_mm"]), fmt(w["ray_margin_mm"]),
             fmt(None if t["cone_minimal_margin_mm"] is None or w["cone_minimal_margin_mm"] is None
                 else w["cone_minimal_margin_mm"] - t["cone_minimal_margin_mm"])))
    if a.quiet:
        print(line)
    else:
        print("margin file %s, zone %s, criterion %g mm" % (mpath, d["zone_name"],
                                                              d["criterion_mm"]))
        print("tumour centroid (%.2f, %.2f, %.2f) mm; cones of %g deg over the %s" %
              (tuple(centre) + (a.cone_deg, t["voxels_used"])))
        for name, s in (("toward", t), ("away", w)):
            loc = s["cone_minimal_margin_location_mm"]
            frac = s.get("fraction_meeting_criterion")
            print("  %-6s (%+.2f %+.2f %+.2f): cone minimal margin %s mm at %s, ray margin %s mm,"
                  " > %g mm: %s of the cone" %
                  ((name,) + tuple(s["direction"]) + (fmt(s["cone_minimal_margin_mm"]),
                   "(%.1f, %.1f, %.1f)" % tuple(loc) if loc else "-", fmt(s["ray_margin_mm"]),
                   d["criterion_mm"], "n/a" if frac is None else "%.0f %%" % (100 * frac))))
        print(line)
    if a.json:
        # non-finite numbers (a -inf margin: nothing ablated) as null, by value: replacing the
        # text "Infinity" made "-Infinity" into "-null" and crashed (QA, session 29)
        def finite_or_none(v):
            if isinstance(v, dict):
                return {k: finite_or_none(x) for k, x in v.items()}
            if isinstance(v, (list, tuple)):
                return [finite_or_none(x) for x in v]
            if isinstance(v, (int, bool, str)) or v is None:
                return v
            v = float(v)
            return v if math.isfinite(v) else None
        clean = finite_or_none(rep)
        try:
            ablasim_io.write_text(a.json, json.dumps(clean, indent=1), [a.result, mpath])
        except ablasim_io.WriteRefused as e:
            fail(2, "--json %s" % e)
        except OSError as e:
            fail(3, "%s: cannot write (%s); nothing was replaced" % (a.json, e))
    return 0


if __name__ == "__main__":
    sys.exit(main())
