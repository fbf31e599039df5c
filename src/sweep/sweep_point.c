/* sweep_point.c - run one sweep point in this process and reduce it to a table row.
 *
 * The point is exactly `ablasim run BASE --set ...`: scenario_load with the point's set
 * strings, sim_create, sim_run (no output, or a per-point file when fields: true). The row keeps
 * numbers only; the ablation mask (T_max >= threshold) goes to the probability map. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ablasim/isotherms.h"
#include "ablasim/output.h"
#include "ablasim/scenario.h"
#include "ablasim/sim.h"
#include "ablasim/margin.h"
#include "sweep_internal.h"

void mask_free(sweep_mask *m)
{
    if (!m) return;
    free(m->runs);
    m->runs = NULL;
    m->nruns = m->cap = 0;
}

static int mask_push(sweep_mask *m, uint32_t start, uint32_t len)
{
    if (m->nruns == m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 1024;
        uint32_t *r = realloc(m->runs, cap * 2 * sizeof *r);
        if (!r) return -1;
        m->runs = r;
        m->cap = cap;
    }
    m->runs[2 * m->nruns] = start;
    m->runs[2 * m->nruns + 1] = len;
    m->nruns++;
    return 0;
}

/* The margin verdict of this point, as `ablasim margin` would give it with its defaults: the
 * tumour is every voxel of tissue "tumour", the zone T_max >= 55 C, or T_min <= -40 C when that
 * zone is larger (cryoablation), with the needle track, and PASS iff the minimal margin exceeds
 * 5 mm. */
static abl_status point_collect_margin(const abl_sweep *sw, const abl_sim *s, double *val,
                                       abl_error *err)
{
    const sweep_layout *L = sw->layout;
    const abl_grid *g = &s->grid;
    val[L->i_margin] = val[L->i_margin + 1] = NAN;
    int tum[ABL_MAX_MATERIALS], ntum = 0;
    for (int m = 0; m < s->nmat; m++) {
        tum[m] = !strcmp(s->sc->tissues.t[s->mat_tissue[m]].name, "tumour");
        ntum += tum[m];
    }
    if (!ntum) return ABL_OK;
    uint8_t *tumour = malloc(g->n), *zone = malloc(g->n);
    if (!tumour || !zone) {
        free(tumour);
        free(zone);
        return abl_fail(err, ABL_ENOMEM, "out of memory (margin of a sweep point)");
    }
    size_t hot = 0, cold = 0;
    for (size_t c = 0; c < g->n; c++) {
        tumour[c] = (uint8_t)tum[s->material[c]];
        hot += s->T_max[c] >= 55.0;
        cold += s->T_min[c] <= -40.0;
    }
    /* the needle track (applicator_mask: voxels an electrode or probe held, e.g. a cooled RFA
     * needle at 10 C) counts as ablated in the verdict's zone, as `ablasim margin` counts it
     * (margin_io.c; a review found the sweep counting the track as residual tumour) */
    for (size_t c = 0; c < g->n; c++)
        zone[c] = (uint8_t)((cold > hot ? s->T_min[c] <= -40.0 : s->T_max[c] >= 55.0) ||
                            (s->applicator && s->applicator[c]));
    abl_margin_input in = {.dims = {g->nx, g->ny, g->nz},
                           .tumour = tumour,
                           .zone = zone,
                           .criterion_mm = 5.0};
    double org_mm[3];
    for (int d = 0; d < 3; d++) {
        in.spacing_mm[d] = g->h_m[d] * 1e3;
        org_mm[d] = g->origin_m[d] * 1e3;
    }
    margin_affine_from_grid(in.spacing_mm, org_mm, in.affine);
    abl_margin_result r;
    memset(&r, 0, sizeof r);
    abl_status st = margin_compute(&in, &r, err);
    if (st == ABL_OK) {
        val[L->i_margin] = r.min_margin_mm;
        val[L->i_margin + 1] = r.pass ? 1.0 : 0.0;
    }
    margin_result_free(&r);
    free(tumour);
    free(zone);
    return st;
}

static abl_status collect(const abl_sweep *sw, const abl_sim *s, double *val, sweep_mask *mask,
                          abl_error *err)
{
    const sweep_layout *L = sw->layout;
    const abl_scenario *sc = s->sc;
    const int nm = s->nmat;
    if (sc->n_hot != L->n_hot || sc->n_cold != L->n_cold ||
        memcmp(sc->hot_C, L->hot_C, (size_t)L->n_hot * sizeof(double)) ||
        memcmp(sc->cold_C, L->cold_C, (size_t)L->n_cold * sizeof(double)))
        return abl_fail(err, ABL_EINVAL,
                        "this point's output thresholds differ from the table's columns (taken "
                        "from the first point); do not sweep output.hot_thresholds_C or "
                        "output.cold_thresholds_C");

    int tcol[ABL_MAX_MATERIALS];
    for (int m = 0; m < nm; m++) {
        tcol[m] = -1;
        const char *name = sc->tissues.t[s->mat_tissue[m]].name;
        for (int t = 0; t < L->ntis; t++)
            if (!strcmp(L->tis[t], name)) tcol[m] = t;
    }

    /* One pass over the maps: per-material extremes and voxel counts, the zone's bounding box
     * and the mask runs. Max, min and counts do not depend on the order, so this is also what
     * a threaded pass would give; it is serial because it costs a fraction of one step. */
    const abl_grid *g = &s->grid;
    const double thr = sw->ablation_threshold_C;
    double tmax[ABL_MAX_MATERIALS], tmin[ABL_MAX_MATERIALS];
    size_t count[ABL_MAX_MATERIALS] = {0};
    for (int m = 0; m < nm; m++) {
        tmax[m] = -INFINITY;
        tmin[m] = INFINITY;
    }
    int lo[3] = {g->nx, g->ny, g->nz}, hi[3] = {-1, -1, -1};
    bool in_run = false;
    uint32_t run_start = 0;
    for (int k = 0; k < g->nz; k++)
        for (int j = 0; j < g->ny; j++) {
            const size_t row = ABL_IDX(g, 0, j, k);
            for (int i = 0; i < g->nx; i++) {
                const size_t v = row + (size_t)i;
                const int m = s->material[v];
                if (m < nm) {
                    count[m]++;
                    if (s->T_max[v] > tmax[m]) tmax[m] = s->T_max[v];
                    if (s->T_min[v] < tmin[m]) tmin[m] = s->T_min[v];
                }
                const bool hot = s->T_max[v] >= thr;
                if (hot) {
                    if (i < lo[0]) lo[0] = i;
                    if (i > hi[0]) hi[0] = i;
                    if (j < lo[1]) lo[1] = j;
                    if (j > hi[1]) hi[1] = j;
                    if (k < lo[2]) lo[2] = k;
                    if (k > hi[2]) hi[2] = k;
                }
                if (mask && hot != in_run) {
                    if (hot) {
                        run_start = (uint32_t)v;
                    } else if (mask_push(mask, run_start, (uint32_t)(v - run_start))) {
                        return abl_fail(err, ABL_ENOMEM, "out of memory for the ablation mask");
                    }
                    in_run = hot;
                }
            }
        }
    if (mask && in_run && mask_push(mask, run_start, (uint32_t)(g->n - run_start)))
        return abl_fail(err, ABL_ENOMEM, "out of memory for the ablation mask");
    if (mask) {
        mask->dims[0] = g->nx;
        mask->dims[1] = g->ny;
        mask->dims[2] = g->nz;
        for (int a = 0; a < 3; a++) {
            mask->spacing_mm[a] = g->h_m[a] * 1e3;
            mask->origin_mm[a] = g->origin_m[a] * 1e3;
        }
    }
    if (L->per_tissue)
        for (int m = 0; m < nm; m++)
            if (count[m] > 0 && tcol[m] < 0)
                return abl_fail(err, ABL_EINVAL,
                                "tissue '%s' is in this point's grid but has no table columns "
                                "(they come from the tissues of the first and last points); "
                                "set outputs.per_tissue: false or make it appear in the first "
                                "point",
                                sc->tissues.t[s->mat_tissue[m]].name);

    double hot[ABL_MAX_THRESHOLDS], cold[ABL_MAX_THRESHOLDS];
    double *hot_m = calloc((size_t)ABL_MAX_THRESHOLDS * (size_t)nm, sizeof *hot_m);
    double *cold_m = calloc((size_t)ABL_MAX_THRESHOLDS * (size_t)nm, sizeof *cold_m);
    if (!hot_m || !cold_m) {
        free(hot_m);
        free(cold_m);
        return abl_fail(err, ABL_ENOMEM, "out of memory");
    }
    const abl_sim_view v = sim_view(s);
    isotherm_volumes(&v, hot, hot_m, cold, cold_m);

    val[L->i_dt] = s->dt_s;
    val[L->i_steps] = (double)s->step;
    for (int h = 0; h < L->n_hot; h++)
        val[L->i_hot + h] = hot[h];
    for (int c = 0; c < L->n_cold; c++)
        val[L->i_cold + c] = cold[c];
    for (int a = 0; a < 3; a++)
        val[L->i_zone + a] = hi[a] >= lo[a] ? (hi[a] - lo[a] + 1) * g->h_m[a] * 1e3 : 0.0;
    if (L->per_tissue) {
        const int nt = L->ntis;
        for (int t = 0; t < nt; t++) {
            val[L->i_tmax_t + t] = NAN; /* tissue absent from this point's grid */
            val[L->i_tmin_t + t] = NAN;
            for (int h = 0; h < L->n_hot; h++)
                val[L->i_hot_t + h * nt + t] = 0.0;
            for (int c = 0; c < L->n_cold; c++)
                val[L->i_cold_t + c * nt + t] = 0.0;
        }
        for (int m = 0; m < nm; m++) {
            const int t = tcol[m];
            if (t < 0 || count[m] == 0) continue;
            double *px = &val[L->i_tmax_t + t], *pn = &val[L->i_tmin_t + t];
            if (isnan(*px) || tmax[m] > *px) *px = tmax[m];
            if (isnan(*pn) || tmin[m] < *pn) *pn = tmin[m];
            for (int h = 0; h < L->n_hot; h++)
                val[L->i_hot_t + h * nt + t] += hot_m[h * nm + m];
            for (int c = 0; c < L->n_cold; c++)
                val[L->i_cold_t + c * nt + t] += cold_m[c * nm + m];
        }
    }
    free(hot_m);
    free(cold_m);
    return point_collect_margin(sw, s, val, err);
}

void point_run(const abl_sweep *sw, size_t i, const char *fpath, sweep_row *row, sweep_mask *mask,
               abl_progress_fn progress, void *progress_user, volatile sig_atomic_t *stop)
{
    const sweep_layout *L = sw->layout;
    const double t0 = omp_get_wtime();
    abl_error e = {0};
    abl_scenario *sc = NULL;
    abl_sim *sim = NULL;
    abl_status st = scenario_load(sw->base_path, sweep_point_sets(sw, i), sw->nkeys, &sc, &e);
    if (!st) st = sim_create(sc, &sim, &e);
    if (!st) {
        abl_run_opts o = {0};
        o.output_path = fpath;
        o.no_output = fpath == NULL;
        o.progress = progress;
        o.progress_user = progress_user;
        o.progress_interval_s = 0.02;
        o.stop = stop; /* no checkpoint path: a stopped point's result file is removed */
        st = sim_run(sim, &o, &e);
    }
    if (mask) mask_free(mask);
    if (!st) st = collect(sw, sim, row->val, mask, &e);
    sim_destroy(sim);
    scenario_free(sc);
    if (st && mask) mask_free(mask);
    row_set(row, st, e.msg, L->nvals);
    /* the whole point: load, plan, run, reduce */
    row->val[L->i_wall] = omp_get_wtime() - t0;
}
