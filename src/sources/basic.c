/* basic.c - the two simple sources of the core engine.
 *  volumetric:        power P(t) [W] spread uniformly over the voxels of a shape,
 *                     q = P / (n_voxels * V_voxel), so the discrete delivered power is exactly P;
 *  fixed_temperature: the voxels of a shape held at T(t) [C] (probe or electrode surface).
 * Later modalities add files beside this one implementing abl_source_ops. */
#include <stdio.h>
#include <stdlib.h>

#include "ablasim/source.h"

typedef struct {
    abl_source_type type;
    abl_schedule schedule; /* borrowed from the scenario */
    double on_s, off_s;
    size_t n;
    size_t *idx;
    double *val; /* q [W/m^3] or T [C], refreshed by update */
    double volume_m3;
} basic_state;

static abl_status basic_update(abl_source *s, const abl_field_view *v, abl_source_contrib *out,
                               abl_error *err)
{
    (void)err;
    basic_state *b = s->state;
    *out = (abl_source_contrib){0};
    if (v->t_s < b->on_s || v->t_s >= b->off_s) return ABL_OK; /* off: no heat, nothing held */
    double x = schedule_eval(&b->schedule, v->t_s);
    double val = b->type == SRC_VOLUMETRIC ? x / b->volume_m3 : x;
    for (size_t i = 0; i < b->n; i++) b->val[i] = val;
    if (b->type == SRC_VOLUMETRIC) {
        out->n_heat = b->n;
        out->heat_idx = b->idx;
        out->heat_q_W_m3 = b->val;
    } else {
        out->n_pin = b->n;
        out->pin_idx = b->idx;
        out->pin_T_C = b->val;
    }
    return ABL_OK;
}

static void basic_destroy(abl_source *s)
{
    basic_state *b = s->state;
    if (b) {
        free(b->idx);
        free(b->val);
        free(b);
    }
    free(s);
}

static const abl_source_ops volumetric_ops = {
    .type = "volumetric", .update = basic_update, .destroy = basic_destroy};
static const abl_source_ops fixed_ops = {
    .type = "fixed_temperature", .update = basic_update, .destroy = basic_destroy};

abl_status basic_source_create(const abl_source_cfg *cfg, const abl_grid *g, abl_source **out,
                               abl_error *err)
{
    *out = NULL;
    abl_source *s = calloc(1, sizeof *s);
    basic_state *b = calloc(1, sizeof *b);
    if (!s || !b) {
        free(s);
        free(b);
        return abl_fail(err, ABL_ENOMEM, "out of memory creating source '%s'", cfg->name);
    }
    s->state = b;
    s->ops = cfg->type == SRC_VOLUMETRIC ? &volumetric_ops : &fixed_ops;
    snprintf(s->name, sizeof s->name, "%s", cfg->name);
    b->type = cfg->type;
    b->schedule = cfg->schedule;
    b->on_s = cfg->on_s;
    b->off_s = cfg->off_s;
    abl_status st = shape_voxels(&cfg->shape, g, &b->idx, &b->n, err);
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
                        "z %.1f..%.1f mm): it is outside the grid or smaller than a voxel",
                        cfg->where, cfg->name, shape_type_name(cfg->shape.type), lo[0] * 1e3,
                        hi[0] * 1e3, lo[1] * 1e3, hi[1] * 1e3, lo[2] * 1e3, hi[2] * 1e3,
                        g->origin_m[0] * 1e3, (g->origin_m[0] + (g->nx - 1) * g->h_m[0]) * 1e3,
                        g->origin_m[1] * 1e3, (g->origin_m[1] + (g->ny - 1) * g->h_m[1]) * 1e3,
                        g->origin_m[2] * 1e3, (g->origin_m[2] + (g->nz - 1) * g->h_m[2]) * 1e3);
    }
    b->volume_m3 = (double)b->n * grid_voxel_volume_m3(g);
    b->val = malloc(b->n * sizeof *b->val);
    if (!b->val) {
        basic_destroy(s);
        return abl_fail(err, ABL_ENOMEM, "out of memory creating source '%s'", cfg->name);
    }
    *out = s;
    return ABL_OK;
}

