/* monitor.c - running maps (T_max, T_min, time at/above or at/below thresholds, Arrhenius and
 * CEM43 damage) and the numerical-fault scan, fused in one pass over T. */
#include <math.h>
#include <stddef.h>

#include "ablasim/kernels.h"

/* One voxel of the damage maps (kernels.h abl_damage_maps). */
static inline void damage_voxel(const abl_damage_maps *d, size_t c, double t, double dt_min,
                                double interval_s, double gate_C)
{
    const double R_gas = ABL_ARRHENIUS_R_J_PER_MOLK; /* kernels.h: the sets' own R */
    if (!(t >= gate_C)) return; /* most voxels: nothing to read or write */
    /* R^(43 - T): R = 0.5 at or above 43 C (2^(T-43)), 0.25 below (2^(-2(43-T))) */
    if (t >= 39.0)
        d->cem43_min[c] += dt_min * (t >= 43.0 ? exp2(t - 43.0) : exp2(-2.0 * (43.0 - t)));
    const int m = d->material[c];
    if (t >= d->arrhenius_min_C && d->A_per_s[m] > 0) {
        const double rate = d->A_per_s[m] * exp(-d->Ea_J_mol[m] / (R_gas * (t + 273.15)));
        const double w = d->omega[c] + rate * interval_s;
        d->omega[c] = w < 1e30 ? w : 1e30; /* = fmin(w, 1e30), inlined (also for NaN) */
    }
}

/* Voxels per block of the monitor pass: the block's first loop is branch-free and vectorised
 * (T_max, T_min, the fault test, the block's T range); the time-at-threshold and damage maps
 * are visited only in blocks whose range reaches their thresholds. 512 doubles = 4 KiB per
 * array: the second loop finds the block in L1. */
#define MONITOR_BLOCK 512

size_t monitor_update(double T_lo, double T_hi, size_t n, const double *restrict T,
                      double *restrict T_max, double *restrict T_min, int n_hot,
                      const double *hot_C, float *const *t_hot_s, int n_cold,
                      const double *cold_C, float *const *t_cold_s, double interval_s,
                      const abl_damage_maps *dmg)
{
    size_t bad = (size_t)-1;
    const float dt = (float)interval_s;
    const double dt_min = interval_s / 60.0;
    /* the damage maps start at 39 C (CEM43), or lower where the Arrhenius integral is asked to
     * (arrhenius_min_C below 39 was silently cut at 39: a numerics review, session 30) */
    const double gate_C = dmg && dmg->arrhenius_min_C < 39.0 ? dmg->arrhenius_min_C : 39.0;
    /* Most voxels sit between the coldest hot threshold and the warmest cold one: a block whose
     * range reaches no threshold does not touch a time map, so the pass costs ~24 B/voxel (T,
     * T_max, T_min) plus the write-back of the two running maps; the damage maps are touched
     * only at 39 C and above. */
    const size_t nblock = (n + MONITOR_BLOCK - 1) / MONITOR_BLOCK;
#pragma omp parallel for schedule(static) reduction(min : bad)
    for (size_t b = 0; b < nblock; b++) {
        const size_t c0 = b * MONITOR_BLOCK, c1 = c0 + MONITOR_BLOCK < n ? c0 + MONITOR_BLOCK : n;
        double lo = INFINITY, hi = -INFINITY;
        int fault = 0;
#pragma omp simd reduction(min : lo) reduction(max : hi) reduction(| : fault)
        for (size_t c = c0; c < c1; c++) {
            const double t = T[c];
            /* written so that NaN fails the test (and leaves T_max, T_min as they were) */
            fault |= !((t >= T_lo) & (t <= T_hi));
            T_max[c] = t > T_max[c] ? t : T_max[c];
            T_min[c] = t < T_min[c] ? t : T_min[c];
            lo = t < lo ? t : lo;
            hi = t > hi ? t : hi;
        }
        if (fault)
            for (size_t c = c0; c < c1; c++)
                if (!(T[c] >= T_lo && T[c] <= T_hi)) {
                    if (c < bad) bad = c;
                    break;
                }
        /* per threshold, one masked loop the compiler vectorises (the block's range says
         * which thresholds it reaches) */
        for (int h = 0; h < n_hot; h++)
            if (hi >= hot_C[h]) {
                float *restrict th = t_hot_s[h];
                const double x = hot_C[h];
#pragma omp simd
                for (size_t c = c0; c < c1; c++)
                    if (T[c] >= x) th[c] += dt;
            }
        for (int h = 0; h < n_cold; h++)
            if (lo <= cold_C[h]) {
                float *restrict tc = t_cold_s[h];
                const double x = cold_C[h];
#pragma omp simd
                for (size_t c = c0; c < c1; c++)
                    if (T[c] <= x) tc[c] += dt;
            }
        if (dmg && hi >= gate_C)
            for (size_t c = c0; c < c1; c++)
                damage_voxel(dmg, c, T[c], dt_min, interval_s, gate_C);
    }
    return bad;
}
