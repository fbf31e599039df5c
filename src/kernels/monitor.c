/* monitor.c - running maps (T_max, T_min, time at/above or at/below thresholds) and the
 * numerical-fault scan, fused in one pass over T. */
#include <math.h>
#include <stddef.h>

#include "ablasim/kernels.h"

size_t monitor_update(double T_lo, double T_hi, size_t n, const double *restrict T,
                      double *restrict T_max, double *restrict T_min, int n_hot,
                      const double *hot_C, float *const *t_hot_s, int n_cold,
                      const double *cold_C, float *const *t_cold_s, double interval_s)
{
    size_t bad = (size_t)-1;
    const float dt = (float)interval_s;
    /* Most voxels sit between the coldest hot threshold and the warmest cold one: their time
     * maps are not touched at all, so the pass costs ~24 B/voxel (T, T_max, T_min) instead of
     * reading and writing every map. */
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
    }
    return bad;
}

void damage_update(size_t n, const double *restrict T, const uint8_t *restrict material,
                   const double *A_per_s, const double *Ea_J_mol, double arrhenius_min_C,
                   double interval_s, double *restrict omega, double *restrict cem43_min)
{
    const double R_gas = 8.314462618; /* J/(mol K), CODATA 2018 */
    const double dt_min = interval_s / 60.0;
#pragma omp parallel for schedule(static)
    for (size_t c = 0; c < n; c++) {
        const double t = T[c];
        if (!(t >= 39.0)) continue; /* most voxels: nothing to read or write */
        /* R^(43 - T): R = 0.5 at or above 43 C (2^(T-43)), 0.25 below (2^(-2(43-T))) */
        cem43_min[c] += dt_min * (t >= 43.0 ? exp2(t - 43.0) : exp2(-2.0 * (43.0 - t)));
        const int m = material[c];
        if (t >= arrhenius_min_C && A_per_s[m] > 0) {
            const double rate = A_per_s[m] * exp(-Ea_J_mol[m] / (R_gas * (t + 273.15)));
            omega[c] = fmin(omega[c] + rate * interval_s, 1e30);
        }
    }
}
