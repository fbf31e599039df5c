/* dtcheck.c - the time-step error estimate of a run (dtcheck.h). */
#include "ablasim/dtcheck.h"

#include "ablasim/isotherms.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

abl_status dt_reference_take(const abl_sim_view *v, abl_dt_reference *out, abl_error *err)
{
    *out = (abl_dt_reference){0};
    const size_t n = v->grid.n;
    double **dst[5] = {&out->T, &out->T_max, &out->T_min, &out->omega, &out->cem43_min};
    const double *src[5] = {v->T, v->T_max, v->T_min, v->omega, v->cem43_min};
    for (int f = 0; f < 5; f++) {
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
    free(r->cem43_min);
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
    /* the zones of both runs by the summary's own counts (isotherms.h): the reference's view
     * is the run's with the reference's maps */
    abl_sim_view rv = *v;
    rv.T = ref->T, rv.T_max = ref->T_max, rv.T_min = ref->T_min, rv.omega = ref->omega;
    rv.cem43_min = ref->cem43_min;
    double hot[2][ABL_MAX_THRESHOLDS], cold[2][ABL_MAX_THRESHOLDS], dmg[2][2];
    const abl_sim_view *views[2] = {v, &rv};
    for (int r = 0; r < 2; r++) {
        isotherm_volumes(views[r], hot[r], NULL, cold[r], NULL);
        damage_volumes(views[r], dmg[r], NULL);
    }
    int z = 0;
    for (int h = 0; h < sc->n_hot && z < ABL_DTC_MAX_ZONES; h++, z++) {
        snprintf(out->zone[z], sizeof out->zone[z], "T_max_ge_%gC", sc->hot_C[h]);
        out->volume_mL[z] = hot[0][h];
        out->volume_ref_mL[z] = hot[1][h];
    }
    for (int h = 0; h < sc->n_cold && z < ABL_DTC_MAX_ZONES; h++, z++) {
        snprintf(out->zone[z], sizeof out->zone[z], "T_min_le_%gC", sc->cold_C[h]);
        out->volume_mL[z] = cold[0][h];
        out->volume_ref_mL[z] = cold[1][h];
    }
    if (z < ABL_DTC_MAX_ZONES) {
        snprintf(out->zone[z], sizeof out->zone[z], "Omega_ge_1");
        out->volume_mL[z] = dmg[0][0];
        out->volume_ref_mL[z] = dmg[1][0];
        z++;
    }
    out->nzone = z;
    out->done = true;
}
