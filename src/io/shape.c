/* shape.c - primitives and their rasterisation (voxel centre inside => voxel in shape). */
#include "ablasim/shape.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const shape_names[] = {"sphere", "ellipsoid", "cylinder", "box"};

const char *shape_type_name(abl_shape_type t)
{
    return shape_names[t];
}

static const cfg_range pos_range = {-1e4, 1e4, false, false, "mm"};
static const cfg_range len_range = {0, 1e4, true, false, "mm"};

abl_status shape_parse(cfg_node *map, const char *const *extra, abl_shape *out, abl_error *err)
{
    static const char *const keys[4][5] = {
        {"type", "center_mm", "radius_mm", NULL},
        {"type", "center_mm", "radii_mm", NULL},
        {"type", "start_mm", "end_mm", "radius_mm", NULL},
        {"type", "min_mm", "max_mm", NULL},
    };
    abl_status st;
    int type;
    memset(out, 0, sizeof *out);
    if ((st = cfg_expect(map, CFG_MAP, true, "a mapping with 'type' and its dimensions", err)))
        return st;
    if ((st = cfg_get_enum(map, "type", true, 0, shape_names, 4, &type, err))) return st;
    out->type = (abl_shape_type)type;

    const char *allowed[16];
    int na = 0;
    for (int i = 0; keys[type][i]; i++) allowed[na++] = keys[type][i];
    for (int i = 0; extra && extra[i] && na < 15; i++) allowed[na++] = extra[i];
    allowed[na] = NULL;
    if ((st = cfg_check_keys(map, allowed, err))) return st;

    double a[3], b[3], r;
    switch (out->type) {
    case SHAPE_SPHERE:
        if ((st = cfg_get_vec(map, "center_mm", true, NULL, 3, &pos_range, a, err)) ||
            (st = cfg_get_double(map, "radius_mm", true, 0, &len_range, &r, err)))
            return st;
        for (int d = 0; d < 3; d++) {
            out->centre_m[d] = a[d] * 1e-3;
            out->radii_m[d] = r * 1e-3;
        }
        out->radius_m = r * 1e-3;
        break;
    case SHAPE_ELLIPSOID:
        if ((st = cfg_get_vec(map, "center_mm", true, NULL, 3, &pos_range, a, err)) ||
            (st = cfg_get_vec(map, "radii_mm", true, NULL, 3, &len_range, b, err)))
            return st;
        for (int d = 0; d < 3; d++) {
            out->centre_m[d] = a[d] * 1e-3;
            out->radii_m[d] = b[d] * 1e-3;
        }
        break;
    case SHAPE_CYLINDER: {
        if ((st = cfg_get_vec(map, "start_mm", true, NULL, 3, &pos_range, a, err)) ||
            (st = cfg_get_vec(map, "end_mm", true, NULL, 3, &pos_range, b, err)) ||
            (st = cfg_get_double(map, "radius_mm", true, 0, &len_range, &r, err)))
            return st;
        double len2 = 0;
        for (int d = 0; d < 3; d++) len2 += (b[d] - a[d]) * (b[d] - a[d]);
        if (len2 == 0) {
            char where[600], path[300];
            return abl_fail(err, ABL_EINVAL, "%s: '%s': start_mm and end_mm are the same point",
                            cfg_where(map, where, sizeof where), cfg_path(map, path, sizeof path));
        }
        for (int d = 0; d < 3; d++) {
            out->a_m[d] = a[d] * 1e-3;
            out->b_m[d] = b[d] * 1e-3;
        }
        out->radius_m = r * 1e-3;
        break;
    }
    case SHAPE_BOX:
        if ((st = cfg_get_vec(map, "min_mm", true, NULL, 3, &pos_range, a, err)) ||
            (st = cfg_get_vec(map, "max_mm", true, NULL, 3, &pos_range, b, err)))
            return st;
        for (int d = 0; d < 3; d++) {
            if (!(b[d] > a[d])) {
                char where[600], path[300];
                return abl_fail(err, ABL_EINVAL,
                                "%s: '%s': max_mm[%d] = %g must be greater than min_mm[%d] = %g",
                                cfg_where(map, where, sizeof where),
                                cfg_path(map, path, sizeof path), d, b[d], d, a[d]);
            }
            out->a_m[d] = a[d] * 1e-3;
            out->b_m[d] = b[d] * 1e-3;
        }
        break;
    }
    return ABL_OK;
}

bool shape_contains(const abl_shape *s, const double x[3])
{
    switch (s->type) {
    case SHAPE_SPHERE:
    case SHAPE_ELLIPSOID: {
        double q = 0;
        for (int d = 0; d < 3; d++) {
            double u = (x[d] - s->centre_m[d]) / s->radii_m[d];
            q += u * u;
        }
        return q <= 1.0;
    }
    case SHAPE_CYLINDER: {
        double ax[3], rel[3], len2 = 0, proj = 0;
        for (int d = 0; d < 3; d++) {
            ax[d] = s->b_m[d] - s->a_m[d];
            rel[d] = x[d] - s->a_m[d];
            len2 += ax[d] * ax[d];
            proj += rel[d] * ax[d];
        }
        double u = proj / len2; /* position along the axis, 0..1 inside */
        if (u < 0 || u > 1) return false;
        double r2 = 0;
        for (int d = 0; d < 3; d++) {
            double p = rel[d] - u * ax[d];
            r2 += p * p;
        }
        return r2 <= s->radius_m * s->radius_m;
    }
    case SHAPE_BOX:
        for (int d = 0; d < 3; d++)
            if (x[d] < s->a_m[d] || x[d] > s->b_m[d]) return false;
        return true;
    }
    return false;
}

void shape_bounds(const abl_shape *s, double lo[3], double hi[3])
{
    for (int d = 0; d < 3; d++) {
        switch (s->type) {
        case SHAPE_SPHERE:
        case SHAPE_ELLIPSOID:
            lo[d] = s->centre_m[d] - s->radii_m[d];
            hi[d] = s->centre_m[d] + s->radii_m[d];
            break;
        case SHAPE_CYLINDER:
            lo[d] = fmin(s->a_m[d], s->b_m[d]) - s->radius_m;
            hi[d] = fmax(s->a_m[d], s->b_m[d]) + s->radius_m;
            break;
        case SHAPE_BOX:
            lo[d] = s->a_m[d];
            hi[d] = s->b_m[d];
            break;
        }
    }
}

/* Index range [i0, i1] of voxel centres that can lie in [lo, hi] along one axis. */
static void axis_range(double lo, double hi, double origin, double h, int n, int *i0, int *i1)
{
    double a = ceil((lo - origin) / h - 1e-9), b = floor((hi - origin) / h + 1e-9);
    *i0 = a < 0 ? 0 : (a > n ? n : (int)a);
    *i1 = b > n - 1 ? n - 1 : (b < -1 ? -1 : (int)b);
}

abl_status shape_voxels(const abl_shape *s, const abl_grid *g, size_t **idx, size_t *count,
                        abl_error *err)
{
    double lo[3], hi[3];
    int r0[3], r1[3];
    const int n[3] = {g->nx, g->ny, g->nz};
    shape_bounds(s, lo, hi);
    for (int d = 0; d < 3; d++) axis_range(lo[d], hi[d], g->origin_m[d], g->h_m[d], n[d], &r0[d], &r1[d]);
    *idx = NULL;
    *count = 0;
    if (r1[0] < r0[0] || r1[1] < r0[1] || r1[2] < r0[2]) return ABL_OK;
    size_t cap = 0, cnt = 0;
    size_t *list = NULL;
    for (int k = r0[2]; k <= r1[2]; k++)
        for (int j = r0[1]; j <= r1[1]; j++)
            for (int i = r0[0]; i <= r1[0]; i++) {
                double x[3];
                grid_voxel_centre_m(g, i, j, k, x);
                if (!shape_contains(s, x)) continue;
                if (cnt == cap) {
                    cap = cap ? 2 * cap : 1024;
                    size_t *nl = realloc(list, cap * sizeof *nl);
                    if (!nl) {
                        free(list);
                        return abl_fail(err, ABL_ENOMEM, "out of memory rasterising a %s",
                                        shape_type_name(s->type));
                    }
                    list = nl;
                }
                list[cnt++] = ABL_IDX(g, i, j, k);
            }
    *idx = list;
    *count = cnt;
    return ABL_OK;
}
