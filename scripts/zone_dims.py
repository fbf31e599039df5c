#!/usr/bin/python3
"""Zone length and diameter along an antenna axis from an ablasim result file.

Usage: zone_dims.py RESULT.h5 --tip X Y Z --dir DX DY DZ [--threshold 55] [--field T_max_C]
                    [--below]
  --tip   antenna tip [mm] (as in the scenario's tip_mm)
  --dir   antenna direction (any length; as in the scenario's direction)
  --field T_max_C (zone = T_max >= threshold, default) or damage_omega (zone = Omega >= 1 when
          --threshold 1)
  --below zone = field <= threshold: cold isotherms, e.g. --field T_min_C --threshold -40
          --below for the lethal ice of a cryoprobe
Prints the zone length along the axis and its diameter across it as voxel-region extents
(extent of the voxel centres plus one voxel, same definition as mwa_zone_dims in
include/ablasim/mwa.h) and its volume. Result files also hold these numbers for each source axis
in /zones/<source> (hot and cold thresholds, Omega >= 1); this script measures any field and threshold,
and older files without /zones.
"""
import argparse
import sys

import h5py
import numpy as np

import ablasim_h5 as S  # HDF5 names, as in include/ablasim/h5_schema.h (beside this script)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("result")
    ap.add_argument("--tip", nargs=3, type=float, required=True, metavar=("X", "Y", "Z"))
    ap.add_argument("--dir", nargs=3, type=float, required=True, metavar=("DX", "DY", "DZ"))
    ap.add_argument("--threshold", type=float, default=55.0)
    ap.add_argument("--field", default=S.H5_FIELD_T_MAX)
    ap.add_argument("--below", action="store_true",
                    help="zone = field <= threshold (cold isotherms of T_min_C)")
    a = ap.parse_args()
    # a clear message, not a traceback, for a file that is not an ablasim result or a map it
    # does not hold (QA, session 29)
    try:
        with h5py.File(a.result, "r") as f:
            if S.H5_FIELDS + "/" + a.field not in f or S.H5_LABELS not in f:
                have = sorted(f[S.H5_FIELDS].keys()) if S.H5_FIELDS in f else []
                sys.exit("zone_dims.py: %s: no %s/%s in it (an ablasim result's maps: %s)" %
                         (a.result, S.H5_FIELDS, a.field, ", ".join(have) or "none"))
            field = f[S.H5_FIELDS + "/" + a.field][...]  # [nz][ny][nx]
            lab = f[S.H5_LABELS]
            h = np.array(lab.attrs[S.H5A_SPACING_MM], dtype=float)  # x, y, z
            o = np.array(lab.attrs[S.H5A_ORIGIN_MM], dtype=float)
    except OSError as e:
        sys.exit("zone_dims.py: %s: cannot read it as HDF5 (%s)" % (a.result, e))
    d = np.array(a.dir, dtype=float)
    nd = np.linalg.norm(d)
    if not (np.all(np.isfinite(d)) and np.all(np.isfinite(a.tip)) and
            np.isfinite(a.threshold)):
        sys.exit("zone_dims.py: --tip, --dir and --threshold must be finite numbers")
    if nd == 0:
        sys.exit("zone_dims.py: --dir must be non-zero")
    d /= nd
    tip = np.array(a.tip, dtype=float)
    op = "<=" if a.below else ">="
    kk, jj, ii = np.nonzero(field <= a.threshold if a.below else field >= a.threshold)
    if ii.size == 0:
        print(f"no voxel with {a.field} {op} {a.threshold}")
        return
    x = np.stack([o[0] + ii * h[0], o[1] + jj * h[1], o[2] + kk * h[2]], axis=1) - tip
    s = x @ d
    r = np.linalg.norm(x - np.outer(s, d), axis=1)
    hpar = float(np.sum(h * np.abs(d)))
    hperp = float(np.max(h * np.sqrt(np.maximum(0.0, 1.0 - d * d))))
    length = s.max() - s.min() + hpar
    diam = 2.0 * r.max() + hperp
    vol = ii.size * np.prod(h) * 1e-3
    print(f"zone {a.field} {op} {a.threshold:g}: length {length:.1f} mm "
          f"(s {s.min():.1f}..{s.max():.1f} mm from the tip towards the handle), "
          f"diameter {diam:.1f} mm, volume {vol:.2f} mL")


if __name__ == "__main__":
    main()
