/* monitor.c - running maps (T_max, T_min, time at/above or at/below thresholds, Arrhenius and
 * CEM43 damage) and the numerical-fault scan, fused in one pass over T. */
#include <math.h>
#include <stddef.h>

#include "ablasim/kernels.h"

/* One voxel of the damage maps (kernels.h abl_damage_maps). */
static inline void damage_voxel(const abl_damage_maps *d, size_t c, double t, double dt_min,
                                double interval_s)
{
    const double R_gas = 8.314462618; /* J/(mol K), CODATA 2018 */
    if (!(t >= 39.0)) return; /* most voxels: nothing to read or write */
    /* R^(43 - T): R = 0.5 at or above 43 C (2^(T-43)), 0.25 below (2^(-2(43-T))) */
    d->cem43_min[c] += dt_min * (t >= 43.0 ? exp2(t - 43.0) : exp2(-2.0 * (43.0 - t)));
    const int m = d->material[c];
    if (t >= d->arrhenius_min_C && d->A_per_s[m] > 0) {
        const double rate = d->A_per_s[m] * exp(-d->Ea_J_mol[m] / (R_gas * (t + 273.15)));
        d->omega[c] = fmin(d->omega[c] + rate * interval_s, 1e30);
    }
}

size_t monitor_update(double T_lo, double T_hi, size_t n, const double *restrict T,
                      double *restrict T_max, double *restrict T_min, int n_hot,
                      const double *hot_C, float *const *t_hot_s, int n_cold,
                      const double *cold_C, float *const *t_cold_s, double interval_s,
                      const abl_damage_maps *dmg)
{
    size_t bad = (size_t)-1;
    const float dt = (float)interval_s;
    const double dt_min = interval_s / 60.0;
    /* Most voxels sit between the coldest hot threshold and the warmest cold one: their time
     * maps are not touched at all, so the pass costs ~24 B/voxel (T, T_max, T_min) instead of
     * reading and writing every map; the damage maps are touched only at 39 C and above. */
    double hot_lo = INFINITY, cold_hi = -INFINITY;
    for (int h = 0; h < n_hot; h++) hot_lo = fmin(hot_lo, hot_C[h]);
    for (int h = 0; h < n_cold; h++) cold_hi = fmax(cold_hi, cold_C[h]);
#pragma omp parallel for schedule(static) reduction(min : bad)
    for (size_t c = 0; c < n; c++) {
        const double t = T[c];
        /* written so that NaN fails the test */
        if (!(t >= T_lo && t <= T_hi) && c < bad) bad = c;
        if (t > T_max[c]) T_max[c] = t;
        if (t < T_min[c]) T_min[c] = t;
        if (t >= hot_lo)
            for (int h = 0; h < n_hot; h++)
                if (t >= hot_C[h]) t_hot_s[h][c] += dt;
        if (t <= cold_hi)
            for (int h = 0; h < n_cold; h++)
                if (t <= cold_C[h]) t_cold_s[h][c] += dt;
        if (dmg) damage_voxel(dmg, c, t, dt_min, interval_s);
    }
    return bad;
}
