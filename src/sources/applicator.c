/* applicator.c - the applicator kit (applicator.h): needle axes, on/off windows, source
 * objects. */
#include "ablasim/applicator.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ablasim/kernels.h"
#include "ablasim/sim.h"

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

/* Stubs (Birmingham) iron wire gauge, nominal outer diameter [mm] = inches x 25.4 (ISO 9626
 * lists the same gauges with metric tolerances). 17 G: 0.058 in = 1.473 mm (Cool-tip RF
 * electrodes; Galil IceRod/IceSphere/IceSeed cryoprobes), 13 G: 0.095 in = 2.413 mm (Endocare
 * 2.4 mm probes). */
static const double gauge_in[] = {0.134, 0.120, 0.109, 0.095, 0.083, 0.072, 0.065, 0.058, 0.050};

double needle_gauge_diameter_mm(int gauge)
{
    if (gauge < NEEDLE_GAUGE_MIN || gauge > NEEDLE_GAUGE_MAX) return NAN;
    return gauge_in[gauge - NEEDLE_GAUGE_MIN] * 25.4;
}

abl_status needle_diameter_parse(cfg_node *e, const cfg_range *diam_r, double default_mm,
                                 double *diam_mm, abl_error *err)
{
    cfg_node *gn = cfg_get(e, "gauge"), *dn = cfg_get(e, "diameter_mm");
    if ((gn && dn) || (!gn && !dn && !(default_mm > 0.0))) {
        char where[600], path[300];
        return abl_fail(err, ABL_EINVAL,
                        "%s: '%s' needs %s of 'gauge' (needle gauge %d..%d, e.g. 17 for 1.47 mm) "
                        "or 'diameter_mm'",
                        cfg_where(e, where, sizeof where), cfg_path(e, path, sizeof path),
                        default_mm > 0.0 ? "at most one" : "exactly one", NEEDLE_GAUGE_MIN,
                        NEEDLE_GAUGE_MAX);
    }
    if (gn) {
        long gauge;
        abl_status st =
            cfg_get_long(e, "gauge", true, 0, NEEDLE_GAUGE_MIN, NEEDLE_GAUGE_MAX, &gauge, err);
        if (st) return st;
        *diam_mm = needle_gauge_diameter_mm((int)gauge);
        return ABL_OK;
    }
    return cfg_get_double(e, "diameter_mm", false, default_mm, diam_r, diam_mm, err);
}

bool source_window_at(double t_s, double on_s, double off_s)
{
    return !(t_s < on_s || t_s >= off_s);
}

bool source_window_on(const abl_field_view *v, double on_s, double off_s)
{
    return source_window_at(v->step_h_s > 0.0 ? v->step_t0_s + 0.5 * v->step_h_s : v->t_s, on_s,
                            off_s);
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

/* ---- recorded series ---- */

static abl_status series_buf_reserve(abl_series_buf *b, size_t rows, const char *name,
                                     abl_error *err)
{
    if (rows <= b->cap) return ABL_OK;
    double *r = realloc(b->rows, rows * (size_t)b->ncol * sizeof *r);
    if (!r) return abl_fail(err, ABL_ENOMEM, "out of memory (source '%s' series)", name);
    b->rows = r;
    b->cap = rows;
    return ABL_OK;
}

abl_status series_buf_append(abl_series_buf *b, const double *row, const char *name,
                             abl_error *err)
{
    if (b->nrow == b->cap) {
        abl_status st = series_buf_reserve(b, b->cap ? 2 * b->cap : 256, name, err);
        if (st) return st;
    }
    memcpy(b->rows + b->nrow * (size_t)b->ncol, row, (size_t)b->ncol * sizeof *row);
    b->nrow++;
    return ABL_OK;
}

abl_status series_buf_io(abl_series_buf *b, abl_blob *blob, const char *name, abl_error *err)
{
    const size_t rowsz = (size_t)b->ncol * sizeof(double);
    size_t nrow = b->nrow;
    abl_blob_io(blob, &nrow, sizeof nrow);
    const bool load = blob->mode == ABL_BLOB_LOAD;
    if (load && !blob->bad && nrow > (blob->len - blob->pos) / rowsz) blob->bad = true;
    if (load && !blob->bad) {
        abl_status st = series_buf_reserve(b, nrow, name, err);
        if (st) return st;
    }
    if (!blob->bad) abl_blob_io(blob, b->rows, nrow * rowsz);
    if (load && !blob->bad) b->nrow = nrow;
    return ABL_OK;
}

void series_buf_free(abl_series_buf *b)
{
    free(b->rows);
    *b = (abl_series_buf){.ncol = b->ncol};
}

/* ---- held needles ---- */

double needle_hold_radius_m(const abl_grid *g, double radius_m)
{
    const double h = fmax(g->h_m[0], fmax(g->h_m[1], g->h_m[2]));
    return fmax(radius_m + NEEDLE_HOLD_GAP * h, NEEDLE_HOLD_MIN * h);
}

/* Squared distance from x to the segment [tip, tip + L d] (d unit). */
static double seg_dist2(const double x[3], const double tip[3], const double d[3], double L)
{
    double w[3] = {x[0] - tip[0], x[1] - tip[1], x[2] - tip[2]};
    double s = fmin(fmax(w[0] * d[0] + w[1] * d[1] + w[2] * d[2], 0.0), L);
    double r2 = 0.0;
    for (int a = 0; a < 3; a++) {
        double e = w[a] - s * d[a];
        r2 += e * e;
    }
    return r2;
}

/* Squared distance from x to the wire: the nearest of its chords. */
static double wire_dist2(const double x[3], const abl_chord *w, int n)
{
    double d2 = INFINITY;
    for (int q = 0; q < n; q++) {
        const double e = seg_dist2(x, w[q].tip_m, w[q].dir, w[q].length_m);
        if (e < d2) d2 = e;
    }
    return d2;
}

size_t wire_hold_voxels(const abl_grid *g, const abl_chord *w, int nw, double radius_m,
                        size_t *idx, size_t cap)
{
    if (nw < 1) return 0;
    const double h = fmax(g->h_m[0], fmax(g->h_m[1], g->h_m[2]));
    const double half_diag =
        0.5 * sqrt(g->h_m[0] * g->h_m[0] + g->h_m[1] * g->h_m[1] + g->h_m[2] * g->h_m[2]);
    const double rh = needle_hold_radius_m(g, radius_m);
    const double near = fmax(radius_m + NEEDLE_NEAR_GAP * h, half_diag);
    /* the chords with the wire's free ends pulled back (a needle's one chord on the stack) */
    abl_chord one[1], *pulled = nw == 1 ? one : malloc((size_t)nw * sizeof *pulled);
    if (!pulled) return 0;
    for (int q = 0; q < nw; q++) {
        const double pull = fmin(rh - radius_m, 0.5 * w[q].length_m);
        const double p0 = w[q].pull_start ? pull : 0.0, p1 = w[q].pull_end ? pull : 0.0;
        pulled[q] = w[q];
        for (int a = 0; a < 3; a++) pulled[q].tip_m[a] = w[q].tip_m[a] + p0 * w[q].dir[a];
        pulled[q].length_m = w[q].length_m - (p0 + p1);
    }
    int lo[3], hi[3], na[3] = {g->nx, g->ny, g->nz};
    const double rb = fmax(rh, near);
    for (int a = 0; a < 3; a++) {
        double mn = INFINITY, mx = -INFINITY;
        for (int q = 0; q < nw; q++) {
            const double e = w[q].tip_m[a] + w[q].length_m * w[q].dir[a];
            mn = fmin(mn, fmin(w[q].tip_m[a], e));
            mx = fmax(mx, fmax(w[q].tip_m[a], e));
        }
        lo[a] = (int)fmax(0.0, floor((mn - rb - g->origin_m[a]) / g->h_m[a]));
        hi[a] = (int)fmin((double)na[a] - 1, ceil((mx + rb - g->origin_m[a]) / g->h_m[a]));
    }
    size_t n = 0;
    const double rh2 = rh * rh * (1.0 + 1e-12), near2 = near * near * (1.0 + 1e-12);
    for (int k = lo[2]; k <= hi[2]; k++)
        for (int j = lo[1]; j <= hi[1]; j++)
            for (int i = lo[0]; i <= hi[0]; i++) {
                double x[3];
                grid_voxel_centre_m(g, i, j, k, x);
                if (wire_dist2(x, pulled, nw) > rh2 && wire_dist2(x, w, nw) > near2) continue;
                if (idx && n < cap) idx[n] = ABL_IDX(g, i, j, k);
                n++;
            }
    if (pulled != one) free(pulled);
    return n;
}

size_t needle_hold_voxels(const abl_grid *g, const double tip_m[3], const double dir[3],
                          double length_m, double radius_m, size_t *idx, size_t cap)
{
    const abl_chord c = {{tip_m[0], tip_m[1], tip_m[2]}, {dir[0], dir[1], dir[2]}, length_m,
                         true, true};
    return wire_hold_voxels(g, &c, 1, radius_m, idx, cap);
}

size_t needle_coupling(const abl_grid *g, const double tip_m[3], const double dir[3],
                       double length_m, double radius_m, const size_t *idx, size_t n,
                       const int *mark, int id, uint8_t *seen, abl_needle_couple *out)
{
    const abl_chord c = {{tip_m[0], tip_m[1], tip_m[2]}, {dir[0], dir[1], dir[2]}, length_m,
                         true, true};
    return wire_coupling(g, &c, 1, radius_m, idx, n, mark, id, seen, out);
}

size_t wire_coupling(const abl_grid *g, const abl_chord *w, int nw, double radius_m,
                     const size_t *idx, size_t n, const int *mark, int id, uint8_t *seen,
                     abl_needle_couple *out)
{
    const int na[3] = {g->nx, g->ny, g->nz};
    const size_t stride[3] = {1, g->sy, g->sz};
    size_t nc = 0;
    for (size_t j = 0; j < n; j++) {
        const size_t c = idx[j];
        const int cj[3] = {(int)(c % g->sy), (int)(c / g->sy % (size_t)g->ny), (int)(c / g->sz)};
        for (int f = 0; f < 6; f++) {
            const int fa = f / 2, fd = f % 2 ? 1 : -1;
            if (cj[fa] + fd < 0 || cj[fa] + fd >= na[fa]) continue;
            const size_t b = fd > 0 ? c + stride[fa] : c - stride[fa];
            if (seen[b] || mark[b]) continue; /* once per voxel; not a held one */
            seen[b] = 1;
            const int ijk[3] = {(int)(b % g->sy), (int)(b / g->sy % (size_t)g->ny),
                                (int)(b / g->sz)};
            double x[3];
            grid_voxel_centre_m(g, ijk[0], ijk[1], ijk[2], x);
            const double ld = 0.5 * log(wire_dist2(x, w, nw));
            double S = 0.0, Gheld = 0.0;
            abl_needle_couple cb = {.b = b, .d_m = exp(ld)};
            for (int q = 0; q < 6; q++) {
                const int a = q / 2, dn = q % 2 ? 1 : -1;
                const int e = ijk[a] + dn;
                if (e < 0 || e >= na[a]) continue; /* a domain face: no neighbour value */
                const size_t nb = dn > 0 ? b + stride[a] : b - stride[a];
                const double ih2 = 1.0 / (g->h_m[a] * g->h_m[a]);
                if (mark[nb] == id) {
                    Gheld += ih2;
                } else if (!mark[nb]) {
                    int ne[3] = {ijk[0], ijk[1], ijk[2]};
                    ne[a] = e;
                    double xn[3];
                    grid_voxel_centre_m(g, ne[0], ne[1], ne[2], xn);
                    const double ln_dn = 0.5 * log(wire_dist2(xn, w, nw));
                    S += (ln_dn - ld) * ih2;
                    cb.dn_m[cb.nfree] = exp(ln_dn);
                    cb.ih2_m2[cb.nfree++] = ih2;
                }
            }
            const double Gb = fmax(0.0, S / (ld - log(radius_m)));
            cb.dG_m2 = Gb - Gheld;
            cb.G_m2 = Gb;
            out[nc++] = cb;
        }
    }
    for (size_t q = 0; q < nc; q++)
        seen[out[q].b] = 0;
    return nc;
}

/* tau(d) of needle_source_shift: - int_r^d I(s)/s ds, 8-point Gauss-Legendre (nodes and
 * weights on [-1, 1], Abramowitz & Stegun 1964, table 25.4). */
static double source_tau(double r_m, double d_m, double (*inner)(double, const void *),
                         const void *ctx)
{
    static const double x[4] = {0.1834346424956498, 0.5255324099163290, 0.7966664774136267,
                                0.9602898564975363};
    static const double wt[4] = {0.3626837833783620, 0.3137066458778873, 0.2223810344533745,
                                 0.1012285362903763};
    if (!(d_m > r_m)) return 0.0;
    const double mid = 0.5 * (d_m + r_m), half = 0.5 * (d_m - r_m);
    double sum = 0.0;
    for (int i = 0; i < 4; i++) {
        const double s0 = mid - half * x[i], s1 = mid + half * x[i];
        sum += wt[i] * (inner(s0, ctx) / s0 + inner(s1, ctx) / s1);
    }
    return -half * sum;
}

double needle_source_shift(const abl_needle_couple *c, double radius_m, double q_b_W_m3,
                           double (*inner)(double s_m, const void *ctx), const void *ctx)
{
    if (!(c->G_m2 > 0.0)) return 0.0;
    const double tb = source_tau(radius_m, c->d_m, inner, ctx);
    double lap = 0.0;
    for (int n = 0; n < c->nfree; n++)
        lap += (source_tau(radius_m, c->dn_m[n], inner, ctx) - tb) * c->ih2_m2[n];
    return tb - (q_b_W_m3 + lap) / c->G_m2;
}

static double tissue_k(const abl_sim *sim, int mat, double T_C)
{
    const double f = 1.0 + sim->k_coeff[mat] * (T_C - 37.0);
    return sim->k37[mat] * fmin(fmax(f, 0.1), 10.0);
}

double needle_couple_G(const abl_sim *sim, int mat, double T_ref_C, double T_C, double dG_m2)
{
    return abl_face_conductance(tissue_k(sim, mat, T_ref_C), tissue_k(sim, mat, T_C), dG_m2);
}
