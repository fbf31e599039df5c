#!/usr/bin/python3
"""ablasim_report.py - pictures and a one-page verdict for a finished ablasim run.

usage: scripts/ablasim_report.py RESULT.h5 [--margin RESULT.margin.h5] [-o OUTDIR]
                                 [--tumour-tissue tumour]

Writes OUTDIR/<name>_slices.png (three orthogonal slices through the tumour centre: tissues,
the maximum (or minimum) temperature as a colour map with its colour bar, the ablation-zone
isotherm, the tumour outline and its 5 mm shell, axes in mm) and OUTDIR/<name>_report.md (the
verdict: minimal margin, where, PASS/FAIL, volumes, critical structures). The margin file is the
output of `ablasim margin RESULT.h5` (default: RESULT.margin.h5 beside the result, if present).

Why Python: matplotlib draws contours, colour bars and labelled axes that a hand-written C PNG
writer would have to reimplement; h5py reads the HDF5 layout directly (docs/ARCHITECTURE.md).
Uses Debian's python3-matplotlib, python3-h5py and python3-numpy (scripts/install-deps.sh).
Exit codes: 0 ok, 1 usage, 2 invalid input, 3 I/O.
"""
import argparse
import json
import os
import sys

try:
    import h5py
    import numpy as np
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
except ImportError as e:  # pragma: no cover - environment problem
    sys.stderr.write("ablasim_report: missing Python package (%s); run scripts/install-deps.sh\n" % e)
    sys.exit(3)

# fixed colours per tissue name, so the same tissue looks the same in every picture
TISSUE_COLOURS = {
    "liver": "#b5651d", "tumour": "#6b8e23", "blood": "#b22222", "fat": "#f3e5ab",
    "muscle": "#cd5c5c", "skin": "#ffdab9", "bone_cortical": "#f5f5f5",
    "bone_cancellous": "#dcdcdc", "marrow_red": "#e9967a", "marrow_yellow": "#eee8aa",
    "lung_inflated": "#d8e8f0", "lung_deflated": "#9fb8c8", "nerve": "#ffd700",
    "spinal_cord": "#ffa500", "saline": "#add8e6", "air": "#ffffff",
}


def fail(code, msg):
    sys.stderr.write("ablasim_report: error: %s\n" % msg)
    sys.exit(code)


def read_result(path):
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        fail(3, "%s: cannot open (%s)" % (path, e))
    need = ["grid/labels", "grid/material_names", "fields/T_max_C", "fields/T_min_C"]
    for n in need:
        if n not in f:
            fail(2, "%s: /%s missing: not an ablasim result file" % (path, n))
    r = {
        "labels": f["grid/labels"][:],
        "names": [x.decode() if isinstance(x, bytes) else str(x) for x in f["grid/material_names"][:]],
        "spacing": np.array(f["grid/labels"].attrs["spacing_mm"], dtype=float),
        "origin": np.array(f["grid/labels"].attrs["origin_mm"], dtype=float),
        "tmax": f["fields/T_max_C"][:],
        "tmin": f["fields/T_min_C"][:],
        "name": f.attrs.get("scenario_name", os.path.basename(path)),
        "time_s": float(f.attrs.get("time_s", 0.0)),
    }
    if isinstance(r["name"], bytes):
        r["name"] = r["name"].decode()
    f.close()
    return r


def read_margin(path):
    if not path or not os.path.exists(path):
        return None
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        fail(3, "%s: cannot open (%s)" % (path, e))
    m = {}
    g = f.get("margin")
    if g is not None:
        for k in ("minimal_margin_mm", "criterion_mm", "residual_unablated_tumour_volume_mL",
                  "shell_unablated_volume_mL", "surface_fraction_meeting_criterion",
                  "tumour_volume_mL", "zone_volume_mL", "resolution_mm"):
            if k in g:
                m[k] = float(g[k][()])
        if "verdict" in g:
            v = g["verdict"][()]
            m["verdict"] = v.decode() if isinstance(v, bytes) else str(v)
        if "minimal_margin_location_mm" in g:
            m["location"] = list(g["minimal_margin_location_mm"][:])
        if "shell_mask" in g:
            m["shell"] = g["shell_mask"][:]
    # the overall verdict (margin and every critical limit) is the root attribute; /margin/verdict
    # is the margin alone
    if "verdict" in f.attrs:
        v = f.attrs["verdict"]
        m["verdict"] = v.decode() if isinstance(v, bytes) else str(v)
    if "zones" in f:
        sel = f["zones"].attrs.get("selected", b"tmax")
        m["criterion"] = sel.decode() if isinstance(sel, bytes) else str(sel)
    f.close()
    return m


def main():
    ap = argparse.ArgumentParser(description="pictures and verdict of an ablasim result")
    ap.add_argument("result")
    ap.add_argument("--margin", help="margin file (default: RESULT.margin.h5 if present)")
    ap.add_argument("-o", "--outdir", default=None, help="output directory (default: beside RESULT)")
    ap.add_argument("--tumour-tissue", default="tumour")
    a = ap.parse_args()
    if not a.result.endswith(".h5"):
        fail(1, "RESULT must be an .h5 file, got %s" % a.result)
    r = read_result(a.result)
    base = a.result[:-3]
    m = read_margin(a.margin or base + ".margin.h5")
    if a.margin and m is None:
        fail(3, "%s: no such margin file" % a.margin)
    outdir = a.outdir or os.path.dirname(os.path.abspath(a.result))
    os.makedirs(outdir, exist_ok=True)

    labels, names = r["labels"], r["names"]
    tum_ids = [i for i, n in enumerate(names) if n == a.tumour_tissue]
    tumour = np.isin(labels, tum_ids) if tum_ids else np.zeros(labels.shape, bool)
    cold = m is not None and m.get("criterion") == "tmin"
    field = r["tmin"] if cold else r["tmax"]
    thr = -40.0 if cold else 55.0
    zone = field <= thr if cold else field >= thr
    # slice through the tumour centre (or the hottest/coldest voxel without a tumour)
    if tumour.any():
        c = np.round(np.argwhere(tumour).mean(axis=0)).astype(int)
    else:
        c = np.array(np.unravel_index(np.argmin(field) if cold else np.argmax(field), field.shape))
    nz, ny, nx = labels.shape
    sp, org = r["spacing"], r["origin"]
    ax_mm = [org[d] + np.arange([nx, ny, nz][d]) * sp[d] for d in range(3)]  # x, y, z centres

    cmap_t = ListedColormap([TISSUE_COLOURS.get(n, "#888888") for n in names])
    fig, axes = plt.subplots(1, 3, figsize=(15, 5.2), constrained_layout=True)
    planes = [("axial (z = %.1f mm)" % ax_mm[2][c[0]], labels[c[0]], field[c[0]], zone[c[0]],
               tumour[c[0]], None if not m or "shell" not in m else m["shell"][c[0]], 0, 1),
              ("coronal (y = %.1f mm)" % ax_mm[1][c[1]], labels[:, c[1]], field[:, c[1]],
               zone[:, c[1]], tumour[:, c[1]],
               None if not m or "shell" not in m else m["shell"][:, c[1]], 0, 2),
              ("sagittal (x = %.1f mm)" % ax_mm[0][c[2]], labels[:, :, c[2]], field[:, :, c[2]],
               zone[:, :, c[2]], tumour[:, :, c[2]],
               None if not m or "shell" not in m else m["shell"][:, :, c[2]], 1, 2)]
    im = None
    for ax, (title, lab, fld, zn, tu, sh, hx, vy) in zip(axes, planes):
        ext = [ax_mm[hx][0] - sp[hx] / 2, ax_mm[hx][-1] + sp[hx] / 2,
               ax_mm[vy][0] - sp[vy] / 2, ax_mm[vy][-1] + sp[vy] / 2]
        ax.imshow(lab, origin="lower", extent=ext, cmap=cmap_t, vmin=-0.5,
                  vmax=len(names) - 0.5, interpolation="nearest")
        lo, hi = (-60, 37) if cold else (40, max(60.0, float(np.nanmax(field))))
        # only tissue that warmed (cooled) noticeably is coloured; the rest shows its tissue
        show = np.ma.masked_where((fld > 35.0) if cold else (fld < 40.0), fld)
        im = ax.imshow(show, origin="lower", extent=ext, cmap="Blues_r" if cold else "YlOrRd",
                       vmin=lo, vmax=hi, alpha=0.85, interpolation="nearest")
        X, Y = np.meshgrid(ax_mm[hx], ax_mm[vy])
        if zn.any() and not zn.all():
            ax.contour(X, Y, zn.astype(float), levels=[0.5], colors="cyan", linewidths=1.6)
        if tu.any():
            ax.contour(X, Y, tu.astype(float), levels=[0.5], colors="lime", linewidths=1.6)
        if sh is not None and (sh > 0).any():
            outer = ((sh > 0) | tu).astype(float)
            ax.contour(X, Y, outer, levels=[0.5], colors="lime", linewidths=1.0,
                       linestyles="dashed")
        ax.set_title(title)
        ax.set_xlabel("%s (mm)" % "xyz"[hx])
        ax.set_ylabel("%s (mm)" % "xyz"[vy])
        ax.set_aspect("equal")
    cb = fig.colorbar(im, ax=axes, shrink=0.85)
    cb.set_label("T_min (°C)" if cold else "T_max (°C)")
    verdict = m.get("verdict", "n/a") if m else "n/a (run ablasim margin)"
    mm = m.get("minimal_margin_mm") if m else None
    fig.suptitle("%s: %s zone (%s %g °C, cyan), tumour (lime), %s shell (dashed); verdict %s%s"
                 % (r["name"], "freeze" if cold else "heat", "T_min <=" if cold else "T_max >=",
                    thr, "%.0f mm" % m["criterion_mm"] if m and "criterion_mm" in m else "5 mm",
                    verdict, "" if mm is None else ", minimal margin %.1f mm" % mm))
    png = os.path.join(outdir, "%s_slices.png" % os.path.basename(base))
    tmp = png + ".tmp.png"
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, png)

    vox_mL = float(np.prod(sp)) * 1e-3
    lines = ["# ablasim report: %s" % r["name"], "",
             "Result `%s`, simulated time %.0f s." % (os.path.basename(a.result), r["time_s"]), ""]
    if m:
        lines += ["## Verdict: **%s**" % m.get("verdict", "?"), "",
                  "| quantity | value |", "|---|---|",
                  "| criterion | margin >= %.1f mm (zone: %s) |" % (m.get("criterion_mm", 5.0),
                                                                  m.get("criterion", "tmax")),
                  "| minimal margin | %.2f mm |" % m.get("minimal_margin_mm", float("nan")),
                  "| at (x, y, z) | %s mm |" % ", ".join("%.1f" % v for v in m.get("location", [])),
                  "| tumour surface with margin meeting the criterion | %.1f %% |"
                  % (100 * m.get("surface_fraction_meeting_criterion", float("nan"))),
                  "| residual unablated tumour | %.3f mL |"
                  % m.get("residual_unablated_tumour_volume_mL", float("nan")),
                  "| unablated part of the shell | %.3f mL |"
                  % m.get("shell_unablated_volume_mL", float("nan")),
                  "| resolution (one voxel diagonal) | %.2f mm |" % m.get("resolution_mm", float("nan")),
                  ""]
    else:
        lines += ["No margin file: run `ablasim margin %s` for the verdict." % a.result, ""]
    lines += ["## Volumes", "", "| quantity | mL |", "|---|---|",
              "| T_max >= 55 C | %.3f |" % (np.count_nonzero(r["tmax"] >= 55) * vox_mL),
              "| T_min <= -40 C | %.3f |" % (np.count_nonzero(r["tmin"] <= -40) * vox_mL),
              "| tumour | %.3f |" % (np.count_nonzero(tumour) * vox_mL), "",
              "## Temperature extremes per tissue", "", "| tissue | T_max (C) | T_min (C) |",
              "|---|---|---|"]
    for i, n in enumerate(names):
        sel = labels == i
        if sel.any():
            lines.append("| %s | %.1f | %.1f |" % (n, r["tmax"][sel].max(), r["tmin"][sel].min()))
    lines += ["", "![slices](%s)" % os.path.basename(png), ""]
    md = os.path.join(outdir, "%s_report.md" % os.path.basename(base))
    with open(md + ".tmp", "w") as fh:
        fh.write("\n".join(lines))
    os.replace(md + ".tmp", md)
    print(json.dumps({"png": png, "report": md, "verdict": m.get("verdict") if m else None}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
