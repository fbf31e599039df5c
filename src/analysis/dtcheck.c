/* dtcheck.c - the time-step error estimate of a run (dtcheck.h). */
#include "ablasim/dtcheck.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

abl_status dt_reference_take(const abl_sim_view *v, abl_dt_reference *out, abl_error *err)
{
    *out = (abl_dt_reference){0};
    const size_t n = v->grid.n;
    double **dst[4] = {&out->T, &out->T_max, &out->T_min, &out->omega};
    const double *src[4] = {v->T, v->T_max, v->T_min, v->omega};
    for (int f = 0; f < 4; f++) {
        if (!(*dst[f] = malloc(n * sizeof(double)))) {
            dt_reference_free(out);
            return abl_fail(err, ABL_ENOMEM, "out of memory (time-step check, %zu voxels)", n);
        }
        memcpy(*dst[f], src[f], n * sizeof(double));
    }
    out->n = n;
    out->dt_s = v->dt_s;
    out->wall_s = v->wall_s;
    out->steps = v->step;
    return ABL_OK;
}

void dt_reference_free(abl_dt_reference *r)
{
    if (!r) return;
    free(r->T);
    free(r->T_max);
    free(r->T_min);
    free(r->omega);
    *r = (abl_dt_reference){0};
}

/* Largest |a - b| over n values (NaN-free inputs: the run checks its fields every monitor). */
static double maxdiff(const double *a, const double *b, size_t n)
{
    double m = 0.0;
#pragma omp parallel for reduction(max : m) schedule(static)
    for (size_t c = 0; c < n; c++) {
        const double d = fabs(a[c] - b[c]);
        m = d > m ? d : m;
    }
    return m;
}

/* Voxels with x >= thr (ge) or x <= thr (!ge). */
static size_t count(const double *x, size_t n, double thr, bool ge)
{
    size_t k = 0;
#pragma omp parallel for reduction(+ : k) schedule(static)
    for (size_t c = 0; c < n; c++) k += ge ? x[c] >= thr : x[c] <= thr;
    return k;
}

void dt_check_compare(const abl_sim_view *v, const abl_dt_reference *ref, abl_dt_check *out)
{
    const abl_scenario *sc = v->sc;
    const size_t n = v->grid.n;
    *out = (abl_dt_check){0};
    if (ref->n != n) return; /* not the same grid: nothing comparable (the caller's error) */
    out->dt_s = v->dt_s;
    out->dt_ref_s = ref->dt_s;
    out->steps_ref = ref->steps;
    out->wall_ref_s = ref->wall_s;
    out->T_final_diff_C = maxdiff(v->T, ref->T, n);
    out->T_max_diff_C = maxdiff(v->T_max, ref->T_max, n);
    out->T_min_diff_C = maxdiff(v->T_min, ref->T_min, n);
    const double vox_mL = grid_voxel_volume_m3(&v->grid) * 1e6;
    int z = 0;
    for (int h = 0; h < sc->n_hot && z < ABL_DTC_MAX_ZONES; h++, z++) {
        snprintf(out->zone[z], sizeof out->zone[z], "T_max_ge_%gC", sc->hot_C[h]);
        out->volume_mL[z] = (double)count(v->T_max, n, sc->hot_C[h], true) * vox_mL;
        out->volume_ref_mL[z] = (double)count(ref->T_max, n, sc->hot_C[h], true) * vox_mL;
    }
    for (int h = 0; h < sc->n_cold && z < ABL_DTC_MAX_ZONES; h++, z++) {
        snprintf(out->zone[z], sizeof out->zone[z], "T_min_le_%gC", sc->cold_C[h]);
        out->volume_mL[z] = (double)count(v->T_min, n, sc->cold_C[h], false) * vox_mL;
        out->volume_ref_mL[z] = (double)count(ref->T_min, n, sc->cold_C[h], false) * vox_mL;
    }
    if (z < ABL_DTC_MAX_ZONES) {
        snprintf(out->zone[z], sizeof out->zone[z], "Omega_ge_1");
        out->volume_mL[z] = (double)count(v->omega, n, 1.0, true) * vox_mL;
        out->volume_ref_mL[z] = (double)count(ref->omega, n, 1.0, true) * vox_mL;
        z++;
    }
    out->nzone = z;
    out->done = true;
}
