/* basic.c - the two simple sources of the core engine.
 *  volumetric:        power P(t) [W] spread uniformly over the shape's volume as the grid sees
 *                     it: voxel i, of volume fraction f_i inside the shape (shape_fractions),
 *                     gets q_i = P f_i / (V_voxel sum_j f_j), so sum_i q_i V_voxel = P exactly
 *                     (to round-off) wherever the shape falls relative to the grid;
 *  fixed_temperature: the shape held at T(t) [C] (probe or electrode surface): every voxel it
 *                     overlaps, with its held fraction f_i (source.h pin_frac; 1 inside).
 * Both use volume fractions (issue 15): with the centre rule a source's volume, and with it the
 * temperature at its centre, jumps with its offset to the grid (-21.9 K at 2 mm for a 10 W,
 * 5 mm sphere; docs/VERIFICATION.md "Sub-voxel sources").
 * Later modalities add files beside this one implementing abl_source_ops. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "ablasim/applicator.h"
#include "ablasim/source.h"

typedef struct {
    abl_source_type type;
    abl_schedule schedule; /* borrowed from the scenario */
    double on_s, off_s;
    size_t n;
    size_t *idx;
    double *val;  /* q [W/m^3] or T [C], refreshed by update */
    double *frac; /* volume fraction of each voxel inside the shape, (0, 1] */
    double *w;    /* volumetric: f_i / (V_voxel sum f) [1/m^3], so q_i = P w_i */
    bool partial; /* some f_i < 1: fixed_temperature returns pin_frac */
} basic_state;

static abl_status basic_update(abl_source *s, const abl_field_view *v, abl_source_contrib *out,
                               abl_error *err)
{
    (void)err;
    basic_state *b = s->state;
    *out = (abl_source_contrib){0};
    /* heat: for the step's interval (applicator.h source_window_on); held temperatures: at the
     * time asked (source_window_at). Off: no heat, nothing held. */
    if (b->type == SRC_VOLUMETRIC ? !source_window_on(v, b->on_s, b->off_s)
                                  : !source_window_at(v->t_s, b->on_s, b->off_s))
        return ABL_OK;
    /* power: its mean over the step (exact energy for any schedule, source.h step_t0_s);
     * temperature: the value at the time asked for */
    double x = b->type == SRC_VOLUMETRIC && v->step_h_s > 0.0
                   ? schedule_average(&b->schedule, v->step_t0_s, v->step_t0_s + v->step_h_s)
                   : schedule_eval(&b->schedule, v->t_s);
    if (b->type == SRC_VOLUMETRIC) {
        for (size_t i = 0; i < b->n; i++) b->val[i] = x * b->w[i];
        out->n_heat = b->n;
        out->heat_idx = b->idx;
        out->heat_q_W_m3 = b->val;
        out->heat_distinct = b->n; /* the shape's voxels, each once (shape_fractions) */
    } else {
        for (size_t i = 0; i < b->n; i++) b->val[i] = x;
        out->n_pin = b->n;
        out->pin_idx = b->idx;
        out->pin_T_C = b->val;
        out->pin_frac = b->partial ? b->frac : NULL; /* all 1: the plain full pin */
    }
    return ABL_OK;
}

static void basic_destroy(abl_source *s)
{
    basic_state *b = s->state;
    if (b) {
        free(b->idx);
        free(b->val);
        free(b->frac);
        free(b->w);
        free(b);
    }
    free(s);
}

/* fixed_temperature on for the whole run [0, duration_s): its shape's voxels are held at every
 * step (basic_update returns the same list whenever it is on), at the schedule's values; their
 * range over all the schedule's points bounds them (piecewise linear between the points, held
 * at the ends). */
static size_t fixed_held_always(const abl_source *s, double duration_s, const size_t **idx,
                                const double **frac, double *T_lo_C, double *T_hi_C)
{
    const basic_state *b = s->state;
    if (!(b->on_s <= 0.0 && b->off_s >= duration_s) || b->schedule.n < 1) return 0;
    double lo = b->schedule.v[0], hi = lo;
    for (int i = 1; i < b->schedule.n; i++) {
        lo = b->schedule.v[i] < lo ? b->schedule.v[i] : lo;
        hi = b->schedule.v[i] > hi ? b->schedule.v[i] : hi;
    }
    *idx = b->idx;
    *frac = b->partial ? b->frac : NULL;
    *T_lo_C = lo;
    *T_hi_C = hi;
    return b->n;
}

static const abl_source_ops volumetric_ops = {
    .type = "volumetric", .update = basic_update, .destroy = basic_destroy};
static const abl_source_ops fixed_ops = {.type = "fixed_temperature",
                                         .update = basic_update,
                                         .destroy = basic_destroy,
                                         .held_always = fixed_held_always};

abl_status basic_source_create(const abl_source_cfg *cfg, const abl_grid *g, abl_source **out,
                               abl_error *err)
{
    *out = NULL;
    abl_source *s;
    void *state;
    abl_status st0 = source_alloc(cfg, cfg->type == SRC_VOLUMETRIC ? &volumetric_ops : &fixed_ops,
                                  sizeof(basic_state), &s, &state, err);
    if (st0) return st0;
    basic_state *b = state;
    b->type = cfg->type;
    b->schedule = cfg->schedule;
    b->on_s = cfg->on_s;
    b->off_s = cfg->off_s;
    abl_status st = shape_fractions(&cfg->shape, g, &b->idx, &b->frac, &b->n, err);
    if (st) {
        basic_destroy(s);
        return st;
    }
    if (b->n == 0) {
        double lo[3], hi[3];
        shape_bounds(&cfg->shape, lo, hi);
        basic_destroy(s);
        return abl_fail(err, ABL_EINVAL,
                        "%s: source '%s': its %s (x %.1f..%.1f, y %.1f..%.1f, z %.1f..%.1f mm) "
                        "contains no voxel centre of the grid (x %.1f..%.1f, y %.1f..%.1f, "
                        "z %.1f..%.1f mm) and overlaps none of its voxels by more than %g of "
                        "the voxel: it is outside the grid or smaller than a voxel",
                        cfg->where, cfg->name, shape_type_name(cfg->shape.type), lo[0] * 1e3,
                        hi[0] * 1e3, lo[1] * 1e3, hi[1] * 1e3, lo[2] * 1e3, hi[2] * 1e3,
                        g->origin_m[0] * 1e3, (g->origin_m[0] + (g->nx - 1) * g->h_m[0]) * 1e3,
                        g->origin_m[1] * 1e3, (g->origin_m[1] + (g->ny - 1) * g->h_m[1]) * 1e3,
                        g->origin_m[2] * 1e3, (g->origin_m[2] + (g->nz - 1) * g->h_m[2]) * 1e3,
                        SHAPE_FRAC_MIN);
    }
    b->val = malloc(b->n * sizeof *b->val);
    b->w = malloc(b->n * sizeof *b->w);
    if (!b->val || !b->w) {
        basic_destroy(s);
        return abl_fail(err, ABL_ENOMEM, "out of memory creating source '%s'", cfg->name);
    }
    /* the grid's volume of the shape, sum f V_voxel: power is normalised to it, not to the
     * analytic volume, so the discrete total is exactly P even where the shape leaves the grid */
    double sum = 0.0;
    for (size_t i = 0; i < b->n; i++) {
        sum += b->frac[i];
        if (b->frac[i] < 1.0) b->partial = true;
    }
    const double inv = 1.0 / (sum * grid_voxel_volume_m3(g));
    for (size_t i = 0; i < b->n; i++) b->w[i] = b->frac[i] * inv;
    *out = s;
    return ABL_OK;
}

