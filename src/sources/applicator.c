/* applicator.c - the applicator kit (applicator.h): needle axes, on/off windows, source
 * objects. */
#include "ablasim/applicator.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

abl_status needle_axis_parse(cfg_node *e, const char *what, abl_needle_axis *ax, abl_error *err)
{
    static const cfg_range pos_r = {-1e4, 1e4, false, false, "mm"};
    static const cfg_range dir_r = {-1e6, 1e6, false, false, NULL};
    double tip[3], dir[3];
    abl_status st;
    if ((st = cfg_get_vec(e, "tip_mm", true, NULL, 3, &pos_r, tip, err)) ||
        (st = cfg_get_vec(e, "direction", true, NULL, 3, &dir_r, dir, err)))
        return st;
    const double nd = sqrt(dir[0] * dir[0] + dir[1] * dir[1] + dir[2] * dir[2]);
    if (!(nd > 1e-12)) {
        char where[600], path[300];
        cfg_node *n = cfg_get(e, "direction");
        return abl_fail(err, ABL_EINVAL,
                        "%s: '%s' = [%g, %g, %g]: the %s direction (tip towards the handle) "
                        "must be a non-zero vector",
                        cfg_where(n, where, sizeof where), cfg_path(n, path, sizeof path), dir[0],
                        dir[1], dir[2], what);
    }
    for (int a = 0; a < 3; a++) {
        ax->tip_m[a] = tip[a] * 1e-3;
        ax->dir[a] = dir[a] / nd;
    }
    return ABL_OK;
}

bool source_window_on(const abl_field_view *v, double on_s, double off_s)
{
    const double tw = v->step_h_s > 0.0 ? v->step_t0_s + 0.5 * v->step_h_s : v->t_s;
    return !(tw < on_s || tw >= off_s);
}

abl_status source_alloc(const abl_source_cfg *cfg, const abl_source_ops *ops, size_t state_size,
                        abl_source **out, void **state, abl_error *err)
{
    *out = NULL;
    *state = NULL;
    abl_source *s = calloc(1, sizeof *s);
    void *m = calloc(1, state_size);
    if (!s || !m) {
        free(s);
        free(m);
        return abl_fail(err, ABL_ENOMEM, "out of memory creating source '%s'", cfg->name);
    }
    s->state = m;
    s->ops = ops;
    snprintf(s->name, sizeof s->name, "%s", cfg->name);
    *out = s;
    *state = m;
    return ABL_OK;
}
