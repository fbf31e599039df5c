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

/* Each type's keys are one table: a key's variants are the types that take it (the order gives
 * "allowed here: type, center_mm, radius_mm" for a sphere). The four summary rows are the
 * README's; the keys themselves are told there, so they have no rows of their own. */
enum {
    SPHERE_ = 1u << SHAPE_SPHERE,
    ELLIPSOID_ = 1u << SHAPE_ELLIPSOID,
    CYLINDER_ = 1u << SHAPE_CYLINDER,
    BOX_ = 1u << SHAPE_BOX
};
static const cfg_keydecl shape_decl[] = {
    CFG_KEY("type", "–", "required", "`sphere`, `ellipsoid`, `cylinder`, `box`", NULL),
    {NULL, "mm", NULL, "`center_mm` [3], `radius_mm` > 0", NULL, .label = "`  sphere`"},
    {NULL, "mm", NULL, "`center_mm` [3], `radii_mm` [3] > 0 (axis-aligned)", NULL,
     .label = "`  ellipsoid`"},
    {NULL, "mm", NULL, "`start_mm` [3], `end_mm` [3], `radius_mm` > 0", "any orientation",
     .label = "`  cylinder`"},
    {NULL, "mm", NULL, "`min_mm` [3], `max_mm` [3] (max > min)", NULL, .label = "`  box`"},
    {"center_mm", "mm", "required", "3 numbers in [-1e4, 1e4]", "sphere, ellipsoid: centre",
     .variants = SPHERE_ | ELLIPSOID_, .label = ""},
    {"radii_mm", "mm", "required", "3 numbers in (0, 1e4]", "ellipsoid: semi-axes along x, y, z",
     .variants = ELLIPSOID_, .label = ""},
    {"start_mm", "mm", "required", "3 numbers in [-1e4, 1e4]", "cylinder: centre of one end",
     .variants = CYLINDER_, .label = ""},
    {"end_mm", "mm", "required", "3 numbers in [-1e4, 1e4], not start_mm",
     "cylinder: centre of the other end", .variants = CYLINDER_, .label = ""},
    {"radius_mm", "mm", "required", "(0, 1e4]", "sphere, cylinder: radius",
     .variants = SPHERE_ | CYLINDER_, .label = ""},
    {"min_mm", "mm", "required", "3 numbers in [-1e4, 1e4]", "box: lowest corner", .variants = BOX_,
     .label = ""},
    {"max_mm", "mm", "required", "3 numbers in [-1e4, 1e4], each > min_mm", "box: highest corner",
     .variants = BOX_, .label = ""},
};

const cfg_keytable shape_keys = CFG_KEYTABLE(shape_decl);

abl_status shape_parse(cfg_node *map, const cfg_keytable *extra, abl_shape *out, abl_error *err)
{
    abl_status st;
    int type;
    memset(out, 0, sizeof *out);
    if ((st = cfg_expect(map, CFG_MAP, true, "a mapping with 'type' and its dimensions", err)))
        return st;
    if ((st = cfg_get_enum(map, "type", true, 0, shape_names, 4, &type, err))) return st;
    out->type = (abl_shape_type)type;

    const char *allowed[17];
    size_t na = 0;
    cfg_decl_names(&shape_keys, type, allowed, &na, 16);
    if (extra) cfg_decl_names(extra, CFG_ALL_VARIANTS, allowed, &na, 16);
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

/* ---- partial-volume rasterisation (issue 15) ------------------------------------------------
 *
 * Every voxel that overlaps the shape gets its volume fraction. Box: exact (product of the three
 * 1-D overlaps). Sphere, ellipsoid, cylinder: the voxel is classified as inside, outside or cut;
 * a cut voxel is bisected along all three axes (octree) and each child classified again, down
 * to `depth` levels. A cell still cut at the last level (a leaf) gets the exact volume fraction
 * of the half-space bounded by the surface's tangent plane, moved by the mean sag of the surface
 * over the leaf (plane_box_fraction, leaf_*). Error bound: shape.h. */

/* Fraction of the box with side lengths s[3], centred at c, on the side n.(x - c) + phi <= 0 of
 * a plane (n a unit normal pointing out of the shape, phi the signed distance of c from the
 * plane, > 0 outside). With u in the unit cube and m_d = |n_d| s_d (axes reflected so that
 * m_d >= 0) the region is sum m_d u_d <= alpha, alpha = sum(m)/2 - phi, whose volume is
 *   V = sum over the 8 corners c of (-1)^{|c|} max(0, alpha - m.c)^3 / (6 m_0 m_1 m_2)
 * (inclusion-exclusion over the corners, as in Scardovelli & Zaleski, J Comput Phys 164:228,
 * 2000), and its 2-D / 1-D analogues when some m_d vanish. A component below 1e-5 of
 * the sum is folded into alpha by its mean (alpha -= m_d / 2): that moves V by O(1e-10), while
 * keeping it would lose accuracy to cancellation in the 3-D formula (error ~1e-16 sum/m_d). */
static double plane_box_fraction(const double n[3], double phi, const double s[3])
{
    double m[3], M = 0;
    for (int d = 0; d < 3; d++) {
        m[d] = fabs(n[d]) * s[d];
        M += m[d];
    }
    if (!(M > 0)) return phi <= 0 ? 1.0 : 0.0;
    double alpha = 0.5 * M - phi;
    if (alpha <= 0) return 0.0;
    if (alpha >= M) return 1.0;
    /* V(alpha) = 1 - V(M - alpha) by the cube's central symmetry: evaluate the smaller side */
    const bool flip = alpha > 0.5 * M;
    if (flip) alpha = M - alpha;
    /* sort ascending */
    for (int a = 0; a < 2; a++)
        for (int b = a + 1; b < 3; b++)
            if (m[b] < m[a]) {
                double t = m[a];
                m[a] = m[b];
                m[b] = t;
            }
    const double tiny = 1e-5 * M;
    double v;
    if (m[1] < tiny) { /* 1-D */
        alpha -= 0.5 * (m[0] + m[1]);
        v = alpha <= 0 ? 0.0 : (alpha >= m[2] ? 1.0 : alpha / m[2]);
    } else if (m[0] < tiny) { /* 2-D: corners of the (m1, m2) square */
        alpha -= 0.5 * m[0];
        double sum = 0;
        for (int c = 0; c < 4; c++) {
            double x = alpha - ((c & 1) ? m[1] : 0) - ((c & 2) ? m[2] : 0);
            if (x > 0) sum += ((c == 1 || c == 2) ? -1 : 1) * x * x;
        }
        v = sum / (2 * m[1] * m[2]);
    } else {
        double sum = 0;
        for (int c = 0; c < 8; c++) {
            double x = alpha - ((c & 1) ? m[0] : 0) - ((c & 2) ? m[1] : 0) - ((c & 4) ? m[2] : 0);
            int bits = (c & 1) + ((c >> 1) & 1) + ((c >> 2) & 1);
            if (x > 0) sum += (bits & 1 ? -1 : 1) * x * x * x;
        }
        v = sum / (6 * m[0] * m[1] * m[2]);
    }
    v = v < 0 ? 0.0 : (v > 1 ? 1.0 : v);
    return flip ? 1.0 - v : v;
}

typedef struct {
    const abl_shape *s;
    int depth;
    double inv_r[3];           /* sphere, ellipsoid: 1 / semi-axes */
    double a[3], u[3], len, R; /* cylinder: start, unit axis, length, radius */
    /* cylinder, per octree level (cells of one level are translates of each other): half the
     * cell's extent along the axis, sum_d |u_d| e_d, and the corner offsets across the axis,
     * sum_d sigma_d e_d (e_d - u_d u) for the 4 sign patterns with sigma_z = +1 (the other four
     * are their negatives), and the largest of their lengths */
    double dt[SHAPE_FRAC_MAX_DEPTH + 1];
    double off[SHAPE_FRAC_MAX_DEPTH + 1][4][3];
    double rho_perp[SHAPE_FRAC_MAX_DEPTH + 1];
} frac_ctx;

/* cylinder: axial coordinate t of x and radial vector w = x - a - t u */
static void cyl_coords(const frac_ctx *c, const double x[3], double *t, double w[3])
{
    double rel[3], tt = 0;
    for (int d = 0; d < 3; d++) {
        rel[d] = x[d] - c->a[d];
        tt += rel[d] * c->u[d];
    }
    for (int d = 0; d < 3; d++) w[d] = rel[d] - tt * c->u[d];
    *t = tt;
}

/* 1: the cell [lo, hi] (at octree level `level`) is inside the shape, 0: outside (or touching
 * it in a set of zero volume), -1: cut or undecided. Sphere and ellipsoid: exact, from the
 * cell's nearest and farthest points to the centre in coordinates scaled by the semi-axes.
 * Cylinder: inside exactly when the cell's axial extent lies within the caps and every corner
 * within the radius (the cylinder is convex); outside when the axial extent misses [0, len], or
 * when the radial distance of the centre exceeds R by the cell's largest extent across the axis
 * (conservative: cells just outside the rim may stay undecided, which only costs work). */
static int classify(const frac_ctx *c, const double lo[3], const double hi[3], int level)
{
    const abl_shape *s = c->s;
    if (s->type == SHAPE_CYLINDER) {
        double x[3], t, w[3];
        for (int d = 0; d < 3; d++) x[d] = 0.5 * (lo[d] + hi[d]);
        cyl_coords(c, x, &t, w);
        const double dt = c->dt[level];
        if (t + dt <= 0 || t - dt >= c->len) return 0;
        const double q2 = w[0] * w[0] + w[1] * w[1] + w[2] * w[2];
        const double rout = c->R + c->rho_perp[level];
        if (q2 >= rout * rout) return 0;
        if (t - dt < 0 || t + dt > c->len) return -1;
        const double R2 = c->R * c->R;
        for (int k = 0; k < 4; k++) {
            const double *o = c->off[level][k];
            double p2 = 0, m2 = 0;
            for (int d = 0; d < 3; d++) {
                p2 += (w[d] + o[d]) * (w[d] + o[d]);
                m2 += (w[d] - o[d]) * (w[d] - o[d]);
            }
            if (p2 > R2 || m2 > R2) return -1;
        }
        return 1;
    }
    (void)level;
    double near2 = 0, far2 = 0;
    for (int d = 0; d < 3; d++) {
        double l = (lo[d] - s->centre_m[d]) * c->inv_r[d], h = (hi[d] - s->centre_m[d]) * c->inv_r[d];
        double nr = l > 0 ? l : (h < 0 ? -h : 0);
        near2 += nr * nr;
        far2 += fmax(l * l, h * h);
    }
    if (near2 >= 1) return 0;
    if (far2 <= 1) return 1;
    return -1;
}

/* Leaf of a sphere or ellipsoid: in coordinates scaled by the semi-axes the ellipsoid is the
 * unit sphere and volume fractions are unchanged (the map is linear). Tangent plane at the point
 * nearest to the leaf centre, moved inwards by the mean sag of the sphere over the leaf,
 * <x_perp^2> / 2 with <x_perp^2> = sum_d (1 - n_d^2) e_d^2 / 3 the second moment of the leaf's
 * extent across the normal (half-sides e_d): this cancels the leading, one-signed part of the
 * curvature error (a convex surface always lies inside its tangent plane). */
static double leaf_ellipsoid(const frac_ctx *c, const double lo[3], const double hi[3])
{
    double x[3], e[3], r = 0;
    for (int d = 0; d < 3; d++) {
        x[d] = (0.5 * (lo[d] + hi[d]) - c->s->centre_m[d]) * c->inv_r[d];
        e[d] = 0.5 * (hi[d] - lo[d]) * c->inv_r[d];
        r += x[d] * x[d];
    }
    r = sqrt(r);
    if (!(r > 0)) /* leaf centred on the shape centre: the whole shape is inside the leaf */
        return fmin(1.0, (4.0 * 3.14159265358979323846 / 3.0) / (8 * e[0] * e[1] * e[2]));
    double n[3], s[3], m2 = 0;
    for (int d = 0; d < 3; d++) {
        n[d] = x[d] / r;
        s[d] = 2 * e[d];
        m2 += (1 - n[d] * n[d]) * e[d] * e[d] / 3.0;
    }
    return plane_box_fraction(n, r - 1 + 0.5 * m2, s);
}

/* Leaf of a cylinder: the leaf is inside three constraints (lateral surface, two caps). A
 * constraint the whole leaf meets is dropped, one it wholly violates makes the leaf empty
 * (extents as in classify); the others give plane fractions (the lateral one with the mean sag
 * across the axis, as for the sphere, curvature 1/R in the direction u x n only) and their
 * product is the leaf fraction (exact for one constraint; near the rim, where two meet at a right
 * angle, an approximation whose error the rim term of the bound in shape.h covers). */
static double leaf_cylinder(const frac_ctx *c, const double lo[3], const double hi[3], int level)
{
    double x[3], s[3];
    for (int d = 0; d < 3; d++) {
        x[d] = 0.5 * (lo[d] + hi[d]);
        s[d] = hi[d] - lo[d];
    }
    double t, w[3];
    cyl_coords(c, x, &t, w);
    const double q = sqrt(w[0] * w[0] + w[1] * w[1] + w[2] * w[2]);
    double f = 1.0;
    /* caps: planes t = 0 (outward normal -u) and t = len (+u) */
    const double cap[2] = {-t, t - c->len}, dt = c->dt[level];
    for (int k = 0; k < 2; k++) {
        if (cap[k] >= dt) return 0.0;
        if (cap[k] > -dt) {
            double n[3];
            for (int d = 0; d < 3; d++) n[d] = k ? c->u[d] : -c->u[d];
            f *= plane_box_fraction(n, cap[k], s);
        }
    }
    const double dr = q - c->R, rp = c->rho_perp[level];
    if (dr >= rp) return 0.0;
    if (dr > -rp) {
        if (!(q > 0)) { /* leaf centre on the axis of a cylinder thinner than the leaf */
            double ext = 0;
            for (int d = 0; d < 3; d++) ext += fabs(c->u[d]) * s[d];
            return f * fmin(1.0, 3.14159265358979323846 * c->R * c->R * ext / (s[0] * s[1] * s[2]));
        }
        double n[3], tg[3], m2 = 0;
        for (int d = 0; d < 3; d++) n[d] = w[d] / q;
        /* circumferential direction tg = u x n: the only curved direction of the surface */
        tg[0] = c->u[1] * n[2] - c->u[2] * n[1];
        tg[1] = c->u[2] * n[0] - c->u[0] * n[2];
        tg[2] = c->u[0] * n[1] - c->u[1] * n[0];
        for (int d = 0; d < 3; d++) m2 += tg[d] * tg[d] * s[d] * s[d] / 12.0;
        f *= plane_box_fraction(n, dr + 0.5 * m2 / c->R, s);
    }
    return f;
}

static double cell_fraction(const frac_ctx *c, const double lo[3], const double hi[3], int level)
{
    int k = classify(c, lo, hi, level);
    if (k >= 0) return k;
    if (level >= c->depth)
        return c->s->type == SHAPE_CYLINDER ? leaf_cylinder(c, lo, hi, level)
                                            : leaf_ellipsoid(c, lo, hi);
    double mid[3], sum = 0;
    for (int d = 0; d < 3; d++) mid[d] = 0.5 * (lo[d] + hi[d]);
    for (int q = 0; q < 8; q++) {
        double l[3], h[3];
        for (int d = 0; d < 3; d++) {
            l[d] = (q >> d & 1) ? mid[d] : lo[d];
            h[d] = (q >> d & 1) ? hi[d] : mid[d];
        }
        sum += cell_fraction(c, l, h, level + 1);
    }
    return 0.125 * sum;
}

/* Smallest radius of curvature of the surface relative to the grid: the largest ratio
 * h_d / R_d over the axes (R_d the semi-axis along d for a sphere or ellipsoid, since the
 * ellipsoid is handled as the unit sphere in scaled coordinates; the radius for a cylinder). */
static double curvature_ratio(const abl_shape *s, const abl_grid *g)
{
    double q = 0;
    for (int d = 0; d < 3; d++)
        q = fmax(q, g->h_m[d] / (s->type == SHAPE_CYLINDER ? s->radius_m : s->radii_m[d]));
    return q;
}

int shape_fraction_depth(const abl_shape *s, const abl_grid *g)
{
    if (s->type == SHAPE_BOX) return 0;
    const double q = curvature_ratio(s, g);
    int d = SHAPE_FRAC_MIN_DEPTH;
    while (d < SHAPE_FRAC_MAX_DEPTH && q / ldexp(1.0, d) > 1.0 / SHAPE_FRAC_LEAF_PER_RADIUS) d++;
    return d;
}

/* 1-D overlap of voxel i, [o + (i - 1/2) h, o + (i + 1/2) h], with [lo, hi] as a fraction of h;
 * within 1e-9 h of 0 or 1 it is snapped, so that a box face on a voxel face (up to the
 * round-off of mm -> m) gives no layer of empty or 1 - 1e-13 voxels. */
static double overlap_1d(double lo, double hi, double o, double h, int i)
{
    double a = fmax(lo, o + (i - 0.5) * h), b = fmin(hi, o + (i + 0.5) * h);
    double f = (b - a) / h;
    if (f < 1e-9) return 0.0;
    if (f > 1 - 1e-9) return 1.0;
    return f;
}

typedef struct {
    size_t n, cap;
    size_t *idx;
    double *f;
} frac_list;

static int frac_list_push(frac_list *l, size_t i, double f)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 256;
        size_t *ni = realloc(l->idx, cap * sizeof *ni);
        if (!ni) return 1;
        l->idx = ni;
        double *nf = realloc(l->f, cap * sizeof *nf);
        if (!nf) return 1;
        l->f = nf;
        l->cap = cap;
    }
    l->idx[l->n] = i;
    l->f[l->n++] = f;
    return 0;
}

abl_status shape_fractions_depth(const abl_shape *s, const abl_grid *g, int depth, size_t **idx,
                                 double **frac, size_t *count, abl_error *err)
{
    *idx = NULL;
    *frac = NULL;
    *count = 0;
    if (depth < 0 || depth > SHAPE_FRAC_MAX_DEPTH)
        return abl_fail(err, ABL_EINVAL, "sub-voxel depth %d outside 0..%d", depth,
                        SHAPE_FRAC_MAX_DEPTH);
    frac_ctx c = {.s = s, .depth = depth};
    if (s->type == SHAPE_SPHERE || s->type == SHAPE_ELLIPSOID)
        for (int d = 0; d < 3; d++) c.inv_r[d] = 1.0 / s->radii_m[d];
    if (s->type == SHAPE_CYLINDER) {
        double l2 = 0;
        for (int d = 0; d < 3; d++) {
            c.a[d] = s->a_m[d];
            c.u[d] = s->b_m[d] - s->a_m[d];
            l2 += c.u[d] * c.u[d];
        }
        c.len = sqrt(l2);
        for (int d = 0; d < 3; d++) c.u[d] /= c.len;
        c.R = s->radius_m;
        for (int l = 0; l <= depth; l++) {
            double e[3], p[3][3];
            c.dt[l] = 0;
            for (int d = 0; d < 3; d++) {
                e[d] = 0.5 * ldexp(g->h_m[d], -l);
                c.dt[l] += fabs(c.u[d]) * e[d];
                for (int q = 0; q < 3; q++) p[d][q] = (q == d) - c.u[d] * c.u[q];
            }
            c.rho_perp[l] = 0;
            for (int k = 0; k < 4; k++) {
                double o2 = 0;
                for (int q = 0; q < 3; q++) {
                    c.off[l][k][q] = ((k & 1) ? -e[0] : e[0]) * p[0][q] +
                                     ((k & 2) ? -e[1] : e[1]) * p[1][q] + e[2] * p[2][q];
                    o2 += c.off[l][k][q] * c.off[l][k][q];
                }
                c.rho_perp[l] = fmax(c.rho_perp[l], sqrt(o2));
            }
        }
    }
    /* voxels whose extent meets the bounding box (one extra layer is harmless: it is
     * classified outside) */
    double lo[3], hi[3];
    int r0[3], r1[3];
    const int n[3] = {g->nx, g->ny, g->nz};
    shape_bounds(s, lo, hi);
    for (int d = 0; d < 3; d++) {
        double a = floor((lo[d] - g->origin_m[d]) / g->h_m[d] - 0.5),
               b = ceil((hi[d] - g->origin_m[d]) / g->h_m[d] + 0.5);
        r0[d] = a < 0 ? 0 : (a > n[d] ? n[d] : (int)a);
        r1[d] = b > n[d] - 1 ? n[d] - 1 : (b < -1 ? -1 : (int)b);
        if (r1[d] < r0[d]) return ABL_OK;
    }
    /* one list per z-plane, filled in parallel and concatenated in plane order: the result
     * (order and values) is the same for any thread count */
    const int nk = r1[2] - r0[2] + 1;
    frac_list *pl = calloc((size_t)nk, sizeof *pl);
    if (!pl) return abl_fail(err, ABL_ENOMEM, "out of memory computing volume fractions");
    int fail = 0;
#pragma omp parallel for schedule(dynamic, 1) reduction(| : fail)
    for (int kk = 0; kk < nk; kk++) {
        const int k = r0[2] + kk;
        for (int j = r0[1]; j <= r1[1] && !fail; j++)
            for (int i = r0[0]; i <= r1[0]; i++) {
                double f;
                if (s->type == SHAPE_BOX) {
                    f = overlap_1d(s->a_m[0], s->b_m[0], g->origin_m[0], g->h_m[0], i) *
                        overlap_1d(s->a_m[1], s->b_m[1], g->origin_m[1], g->h_m[1], j) *
                        overlap_1d(s->a_m[2], s->b_m[2], g->origin_m[2], g->h_m[2], k);
                } else {
                    double x[3], vl[3], vh[3];
                    grid_voxel_centre_m(g, i, j, k, x);
                    for (int d = 0; d < 3; d++) {
                        vl[d] = x[d] - 0.5 * g->h_m[d];
                        vh[d] = x[d] + 0.5 * g->h_m[d];
                    }
                    f = cell_fraction(&c, vl, vh, 0);
                }
                if (!(f >= SHAPE_FRAC_MIN)) continue;
                if (frac_list_push(&pl[kk], ABL_IDX(g, i, j, k), f)) {
                    fail = 1;
                    break;
                }
            }
    }
    size_t cnt = 0;
    for (int kk = 0; kk < nk; kk++) cnt += pl[kk].n;
    size_t *il = NULL;
    double *fl = NULL;
    if (!fail && cnt) {
        il = malloc(cnt * sizeof *il);
        fl = malloc(cnt * sizeof *fl);
        if (!il || !fl) fail = 1;
    }
    size_t pos = 0;
    for (int kk = 0; kk < nk; kk++) {
        if (!fail && pl[kk].n) {
            memcpy(il + pos, pl[kk].idx, pl[kk].n * sizeof *il);
            memcpy(fl + pos, pl[kk].f, pl[kk].n * sizeof *fl);
            pos += pl[kk].n;
        }
        free(pl[kk].idx);
        free(pl[kk].f);
    }
    free(pl);
    if (fail) {
        free(il);
        free(fl);
        return abl_fail(err, ABL_ENOMEM, "out of memory computing the volume fractions of a %s",
                        shape_type_name(s->type));
    }
    *idx = il;
    *frac = fl;
    *count = cnt;
    return ABL_OK;
}

abl_status shape_fractions(const abl_shape *s, const abl_grid *g, size_t **idx, double **frac,
                           size_t *count, abl_error *err)
{
    return shape_fractions_depth(s, g, shape_fraction_depth(s, g), idx, frac, count, err);
}

double shape_volume_m3(const abl_shape *s)
{
    const double pi = 3.14159265358979323846;
    switch (s->type) {
    case SHAPE_SPHERE:
    case SHAPE_ELLIPSOID:
        return 4.0 / 3.0 * pi * s->radii_m[0] * s->radii_m[1] * s->radii_m[2];
    case SHAPE_CYLINDER: {
        double l2 = 0;
        for (int d = 0; d < 3; d++) l2 += (s->b_m[d] - s->a_m[d]) * (s->b_m[d] - s->a_m[d]);
        return pi * s->radius_m * s->radius_m * sqrt(l2);
    }
    case SHAPE_BOX:
        return (s->b_m[0] - s->a_m[0]) * (s->b_m[1] - s->a_m[1]) * (s->b_m[2] - s->a_m[2]);
    }
    return 0;
}
