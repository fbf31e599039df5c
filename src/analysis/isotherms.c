/* isotherms.c - zone volumes over the whole grid (isotherms.h): integer voxel counts per
 * material, so the volumes do not depend on the thread count. */
#include "ablasim/isotherms.h"

#include <stdint.h>
#include <string.h>


void isotherm_volumes(const abl_sim_view *s, double *hot_total_mL, double *hot_mat_mL,
                      double *cold_total_mL, double *cold_mat_mL)
{
    const abl_scenario *sc = s->sc;
    const int nh = sc->n_hot, nc = sc->n_cold, nm = s->nmat;
    const size_t len = (size_t)(nh + nc) * (size_t)nm;
    const double vox_mL = grid_voxel_volume_m3(&s->grid) * 1e6;
    /* Integer counts: the sums, and so the volumes, do not depend on the thread count. */
    static const size_t max_len = 2 * ABL_MAX_THRESHOLDS * ABL_MAX_MATERIALS;
    uint64_t cnt[2 * ABL_MAX_THRESHOLDS * ABL_MAX_MATERIALS];
    memset(cnt, 0, sizeof cnt);

    if (len > 0 && len <= max_len) {
        const size_t n = s->grid.n;
        const uint8_t *mat = s->material;
        const double *tmax = s->T_max, *tmin = s->T_min;
        const double *hot = sc->hot_C, *cold = sc->cold_C;
#pragma omp parallel
        {
            uint64_t loc[2 * ABL_MAX_THRESHOLDS * ABL_MAX_MATERIALS];
            memset(loc, 0, len * sizeof loc[0]);
#pragma omp for schedule(static) nowait
            for (size_t i = 0; i < n; i++) {
                const int m = mat[i];
                if (m >= nm) continue;
                const double hi = tmax[i], lo = tmin[i];
                for (int h = 0; h < nh; h++)
                    if (hi >= hot[h]) loc[(size_t)h * nm + m]++;
                for (int c = 0; c < nc; c++)
                    if (lo <= cold[c]) loc[(size_t)(nh + c) * nm + m]++;
            }
#pragma omp critical(abl_isotherm_sum)
            for (size_t k = 0; k < len; k++) cnt[k] += loc[k];
        }
    }

    for (int t = 0; t < nh + nc; t++) {
        uint64_t tot = 0;
        double *mat_out = t < nh ? hot_mat_mL : cold_mat_mL;
        const int row = t < nh ? t : t - nh;
        for (int m = 0; m < nm; m++) {
            uint64_t c = cnt[(size_t)t * nm + m];
            tot += c;
            if (mat_out) mat_out[(size_t)row * nm + m] = (double)c * vox_mL;
        }
        double *tot_out = t < nh ? hot_total_mL : cold_total_mL;
        if (tot_out) tot_out[row] = (double)tot * vox_mL;
    }
}

void damage_volumes(const abl_sim_view *s, double *total_mL, double *mat_mL)
{
    const int nm = s->nmat;
    const double vox_mL = grid_voxel_volume_m3(&s->grid) * 1e6;
    long long cnt[2][ABL_MAX_MATERIALS];
    memset(cnt, 0, sizeof cnt);
    for (size_t c = 0; c < s->grid.n; c++) {
        const int m = s->material[c];
        if (s->omega[c] >= 1.0) cnt[0][m]++;
        if (s->cem43_min[c] >= 240.0) cnt[1][m]++;
    }
    for (int q = 0; q < 2; q++) {
        long long t = 0;
        for (int m = 0; m < nm; m++) {
            t += cnt[q][m];
            if (mat_mL) mat_mL[(size_t)q * nm + m] = (double)cnt[q][m] * vox_mL;
        }
        if (total_mL) total_mL[q] = (double)t * vox_mL;
    }
}
