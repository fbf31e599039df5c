/* zone.c - zone length, diameter and volume along an applicator axis (zone.h). */
#include "ablasim/zone.h"

#include <math.h>

void zone_axis_measure(const abl_grid *g, const double *field, double thr_value, bool at_or_above,
                       const double tip_m[3], const double dir[3], abl_axis_zone *out)
{
    *out = (abl_axis_zone){0};
    const double nd = sqrt(dir[0] * dir[0] + dir[1] * dir[1] + dir[2] * dir[2]);
    if (!(nd > 0.0) || !isfinite(nd)) return;
    const double d[3] = {dir[0] / nd, dir[1] / nd, dir[2] / nd};
    const double tip[3] = {tip_m[0], tip_m[1], tip_m[2]};
    double smin = INFINITY, smax = -INFINITY, r2max = 0.0;
    long n = 0;
    const int nx = g->nx, ny = g->ny, nz = g->nz;
    /* min, max and an integer count are exact in any order, so these reductions give the same
     * result for every thread count (the project's determinism rule). */
#pragma omp parallel for collapse(2) schedule(static) reduction(min : smin) \
    reduction(max : smax, r2max) reduction(+ : n)
    for (int k = 0; k < nz; k++)
        for (int j = 0; j < ny; j++)
            for (int i = 0; i < nx; i++) {
                const double v = field[ABL_IDX(g, i, j, k)];
                /* NaN compares false both ways: never in the zone */
                if (at_or_above ? !(v >= thr_value) : !(v <= thr_value)) continue;
                double x[3], w[3];
                grid_voxel_centre_m(g, i, j, k, x);
                for (int a = 0; a < 3; a++)
                    w[a] = x[a] - tip[a];
                const double s = w[0] * d[0] + w[1] * d[1] + w[2] * d[2];
                double r2 = 0.0;
                for (int a = 0; a < 3; a++)
                    r2 += (w[a] - s * d[a]) * (w[a] - s * d[a]);
                smin = fmin(smin, s);
                smax = fmax(smax, s);
                r2max = fmax(r2max, r2);
                n++;
            }
    if (n == 0) return;
    /* one voxel's width along and across the axis (exact for grid-aligned axes) */
    double hpar = 0.0, hperp = 0.0;
    for (int a = 0; a < 3; a++) {
        hpar += g->h_m[a] * fabs(d[a]);
        hperp = fmax(hperp, g->h_m[a] * sqrt(fmax(0.0, 1.0 - d[a] * d[a])));
    }
    out->length_m = smax - smin + hpar;
    out->diameter_m = 2.0 * sqrt(r2max) + hperp;
    out->nvox = n;
    out->volume_m3 = (double)n * grid_voxel_volume_m3(g);
}
