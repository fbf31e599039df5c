/* zone.c - zone length, diameters and volume along an applicator axis; bounding boxes and the
 * largest connected component (zone.h). */
#include "ablasim/zone.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#define ZONE_PI 3.14159265358979323846

/* Boxes below this many voxels are measured by one thread: a pass over them takes well under
 * a millisecond, less than a fork/join of the team costs when the machine is busy (a growth
 * sample is some 20 such passes; measured on the 2-core VM under load: ~30 ms per sample with
 * threads, a few ms without). */
#define ZONE_PARALLEL_MIN_VOXELS ((size_t)1 << 18)

static size_t box_voxels(const abl_box *b)
{
    return (size_t)(b->hi[0] - b->lo[0]) * (size_t)(b->hi[1] - b->lo[1]) *
           (size_t)(b->hi[2] - b->lo[2]);
}

abl_box zone_grid_box(const abl_grid *g)
{
    return (abl_box){{0, 0, 0}, {g->nx, g->ny, g->nz}};
}

static bool box_empty(const abl_box *b)
{
    return b->hi[0] <= b->lo[0] || b->hi[1] <= b->lo[1] || b->hi[2] <= b->lo[2];
}

/* NaN compares false both ways: never in the zone. */
static inline bool in_zone(double v, double thr, bool above)
{
    return above ? v >= thr : v <= thr;
}

long zone_bbox(const abl_grid *g, const double *field, double thr_value, bool at_or_above,
               const abl_box *in, abl_box *out)
{
    const abl_box b = in ? *in : zone_grid_box(g);
    *out = (abl_box){{0, 0, 0}, {0, 0, 0}};
    if (box_empty(&b)) return 0;
    int lo0 = b.hi[0], lo1 = b.hi[1], lo2 = b.hi[2], hi0 = -1, hi1 = -1, hi2 = -1;
    long n = 0;
#pragma omp parallel for collapse(2) schedule(static) reduction(min : lo0, lo1, lo2) \
    reduction(max : hi0, hi1, hi2) reduction(+ : n)                                             \
    if (box_voxels(&b) >= ZONE_PARALLEL_MIN_VOXELS)
    for (int k = b.lo[2]; k < b.hi[2]; k++)
        for (int j = b.lo[1]; j < b.hi[1]; j++) {
            const double *row = field + ABL_IDX(g, 0, j, k);
            /* most rows hold no zone voxel: a branch-free count first (vectorised), the ends
             * only where there is something */
            long cnt = 0;
            if (at_or_above)
                for (int i = b.lo[0]; i < b.hi[0]; i++)
                    cnt += row[i] >= thr_value;
            else
                for (int i = b.lo[0]; i < b.hi[0]; i++)
                    cnt += row[i] <= thr_value;
            if (cnt == 0) continue;
            int first = b.lo[0], last = b.hi[0] - 1;
            while (!in_zone(row[first], thr_value, at_or_above))
                first++;
            while (!in_zone(row[last], thr_value, at_or_above))
                last--;
            n += cnt;
            if (first < lo0) lo0 = first;
            if (last > hi0) hi0 = last;
            if (j < lo1) lo1 = j;
            if (j > hi1) hi1 = j;
            if (k < lo2) lo2 = k;
            if (k > hi2) hi2 = k;
        }
    if (n > 0) *out = (abl_box){{lo0, lo1, lo2}, {hi0 + 1, hi1 + 1, hi2 + 1}};
    return n;
}

/* Partial-volume fraction of voxel (i,j,k) in the zone (zone.h volume_pv_m3): from the signed
 * distance s = (T - thr) / |grad T| (central differences; one-sided at the grid's faces), positive
 * outside the zone, and the voxel's width w = sum_a h_a |n_a| along the unit normal n:
 * clip(1/2 - s / w, 0, 1). Where the gradient vanishes or is not finite: the voxel's own
 * membership. */
static double pv_fraction(const abl_grid *g, const double *field, double thr, bool above, int i,
                          int j, int k)
{
    const int ijk[3] = {i, j, k}, na[3] = {g->nx, g->ny, g->nz};
    const size_t st[3] = {1, g->sy, g->sz};
    const size_t c = ABL_IDX(g, i, j, k);
    double gr[3], gn2 = 0.0;
    for (int a = 0; a < 3; a++) {
        const int lo = ijk[a] > 0, hi = ijk[a] + 1 < na[a];
        const double fm = lo ? field[c - st[a]] : field[c], fp = hi ? field[c + st[a]] : field[c];
        gr[a] = lo + hi ? (fp - fm) / ((lo + hi) * g->h_m[a]) : 0.0;
        gn2 += gr[a] * gr[a];
    }
    const double inside = in_zone(field[c], thr, above) ? 1.0 : 0.0;
    const double gn = sqrt(gn2);
    if (!(gn > 0.0) || !isfinite(gn) || !isfinite(field[c])) return inside;
    double w = 0.0;
    for (int a = 0; a < 3; a++)
        w += g->h_m[a] * fabs(gr[a]) / gn;
    const double sd = (above ? thr - field[c] : field[c] - thr) / gn;
    const double f = 0.5 - sd / w;
    return f < 0.0 ? 0.0 : f > 1.0 ? 1.0 : f;
}

/* Fractions are summed as integers in units of 2^-30 voxel so that the sum, like the counts,
 * is the same in any order (thread count, box). */
#define PV_UNIT 1073741824.0

/* One axis's frame: unit direction d, two unit vectors e1, e2 across it. */
typedef struct {
    double tip[3], d[3], e1[3], e2[3];
    bool ok;
} axis_frame;

static axis_frame axis_frame_of(const double tip_m[3], const double dir[3])
{
    axis_frame f = {{tip_m[0], tip_m[1], tip_m[2]}, {0}, {0}, {0}, false};
    const double nd = sqrt(dir[0] * dir[0] + dir[1] * dir[1] + dir[2] * dir[2]);
    if (!(nd > 0.0) || !isfinite(nd)) return f;
    for (int a = 0; a < 3; a++)
        f.d[a] = dir[a] / nd;
    const double *d = f.d;
    /* two unit vectors across the axis: e1 from the coordinate axis least aligned with d */
    int amin = 0;
    for (int a = 1; a < 3; a++)
        if (fabs(d[a]) < fabs(d[amin])) amin = a;
    double c[3] = {0, 0, 0};
    c[amin] = 1.0;
    double e1[3] = {c[1] * d[2] - c[2] * d[1], c[2] * d[0] - c[0] * d[2],
                    c[0] * d[1] - c[1] * d[0]};
    const double n1 = sqrt(e1[0] * e1[0] + e1[1] * e1[1] + e1[2] * e1[2]);
    for (int a = 0; a < 3; a++)
        f.e1[a] = e1[a] / n1;
    f.e2[0] = d[1] * f.e1[2] - d[2] * f.e1[1];
    f.e2[1] = d[2] * f.e1[0] - d[0] * f.e1[2];
    f.e2[2] = d[0] * f.e1[1] - d[1] * f.e1[0];
    f.ok = true;
    return f;
}

/* Up to ZONE_AXES_PER_PASS axes per pass over the zone: the scan, the surface test and the
 * partial volume are the same for every axis (the run log measures every zone along each
 * source's axis and the cluster's), only the projections differ. */
#define ZONE_AXES_PER_PASS 8

static void measure_axes_pass(const abl_grid *g, const double *field, double thr_value,
                              bool at_or_above, const abl_box *box, int na,
                              const axis_frame *fr, abl_axis_zone *out)
{
    double cs[ZONE_CALIPER_DIRS], sn[ZONE_CALIPER_DIRS];
    for (int q = 0; q < ZONE_CALIPER_DIRS; q++) {
        const double th = ZONE_PI * q / ZONE_CALIPER_DIRS;
        cs[q] = cos(th);
        sn[q] = sin(th);
    }
    enum { NA = ZONE_AXES_PER_PASS, NP = ZONE_AXES_PER_PASS * ZONE_CALIPER_DIRS };
    double smin[NA], smax[NA], r2max[NA], pmin[NP], pmax[NP];
    for (int a = 0; a < NA; a++)
        smin[a] = INFINITY, smax[a] = -INFINITY, r2max[a] = 0.0;
    for (int q = 0; q < NP; q++)
        pmin[q] = INFINITY, pmax[q] = -INFINITY;
    long n = 0;
    int64_t pv = 0; /* partial-volume correction to the count, in 2^-30 voxels */
    const abl_box b = *box;
    const int nx = g->nx, ny = g->ny, nz = g->nz;
    /* min, max and an integer count are exact in any order, so these reductions give the same
     * result for every thread count and every box holding the zone (the project's
     * determinism rule; zone.h), and for any grouping of the axes into passes */
#pragma omp parallel for collapse(2) schedule(static)                                              \
    reduction(min : smin[:NA], pmin[:NP]) reduction(max : smax[:NA], r2max[:NA], pmax[:NP])        \
    reduction(+ : n, pv) if (box_voxels(&b) >= ZONE_PARALLEL_MIN_VOXELS)
    for (int k = b.lo[2]; k < b.hi[2]; k++)
        for (int j = b.lo[1]; j < b.hi[1]; j++)
            for (int i = b.lo[0]; i < b.hi[0]; i++) {
                const size_t c = ABL_IDX(g, i, j, k);
                if (!in_zone(field[c], thr_value, at_or_above)) continue;
                n++;
                /* Only the zone's surface voxels can hold an extreme: for a voxel whose six
                 * neighbours are all in the zone, a linear measure (s, a caliper projection)
                 * is at least as large on one of the two neighbours along any axis, and so is
                 * the convex r^2 (convexity along that line), so the maxima and minima over
                 * the surface voxels are those over the zone. Skipping the interior saves the
                 * 18 projections for most voxels of a large zone. */
                if (i > 0 && i + 1 < nx && j > 0 && j + 1 < ny && k > 0 && k + 1 < nz &&
                    in_zone(field[c - 1], thr_value, at_or_above) &&
                    in_zone(field[c + 1], thr_value, at_or_above) &&
                    in_zone(field[c - g->sy], thr_value, at_or_above) &&
                    in_zone(field[c + g->sy], thr_value, at_or_above) &&
                    in_zone(field[c - g->sz], thr_value, at_or_above) &&
                    in_zone(field[c + g->sz], thr_value, at_or_above))
                    continue;
                /* partial volume at the surface: this voxel's own fraction, and that of each
                 * outside face neighbour, counted from its first inside neighbour in the order
                 * -x, +x, -y, +y, -z, +z (once, whatever the box) */
                pv += llround((pv_fraction(g, field, thr_value, at_or_above, i, j, k) - 1.0) *
                              PV_UNIT);
                const int ijk[3] = {i, j, k}, na3[3] = {nx, ny, nz};
                const size_t st3[3] = {1, g->sy, g->sz};
                for (int q = 0; q < 6; q++) {
                    const int a = q / 2, dn = q % 2 ? 1 : -1;
                    if (ijk[a] + dn < 0 || ijk[a] + dn >= na3[a]) continue;
                    const size_t nb = dn > 0 ? c + st3[a] : c - st3[a];
                    if (in_zone(field[nb], thr_value, at_or_above)) continue;
                    int e[3] = {i, j, k};
                    e[a] += dn;
                    /* first inside neighbour of nb: is it c? (c is nb's neighbour q ^ 1) */
                    int first = -1;
                    for (int r = 0; r < 6 && first < 0; r++) {
                        const int ar = r / 2, dr = r % 2 ? 1 : -1;
                        if (e[ar] + dr < 0 || e[ar] + dr >= na3[ar]) continue;
                        const size_t m = dr > 0 ? nb + st3[ar] : nb - st3[ar];
                        if (in_zone(field[m], thr_value, at_or_above)) first = r;
                    }
                    if (first == (q ^ 1))
                        pv += llround(pv_fraction(g, field, thr_value, at_or_above, e[0], e[1],
                                                  e[2]) *
                                      PV_UNIT);
                }
                double x[3];
                grid_voxel_centre_m(g, i, j, k, x);
                for (int ax = 0; ax < na; ax++) {
                    const axis_frame *f = &fr[ax];
                    if (!f->ok) continue;
                    double w[3];
                    for (int a = 0; a < 3; a++)
                        w[a] = x[a] - f->tip[a];
                    const double s = w[0] * f->d[0] + w[1] * f->d[1] + w[2] * f->d[2];
                    double r2 = 0.0;
                    for (int a = 0; a < 3; a++)
                        r2 += (w[a] - s * f->d[a]) * (w[a] - s * f->d[a]);
                    /* plain comparisons (the values are finite): fmin/fmax handle NaN and cost
                     * a library call each here */
                    smin[ax] = s < smin[ax] ? s : smin[ax];
                    smax[ax] = s > smax[ax] ? s : smax[ax];
                    r2max[ax] = r2 > r2max[ax] ? r2 : r2max[ax];
                    const double p1 = w[0] * f->e1[0] + w[1] * f->e1[1] + w[2] * f->e1[2];
                    const double p2 = w[0] * f->e2[0] + w[1] * f->e2[1] + w[2] * f->e2[2];
                    double *lo = pmin + ax * ZONE_CALIPER_DIRS, *hi = pmax + ax * ZONE_CALIPER_DIRS;
                    for (int q = 0; q < ZONE_CALIPER_DIRS; q++) {
                        const double p = p1 * cs[q] + p2 * sn[q];
                        lo[q] = p < lo[q] ? p : lo[q];
                        hi[q] = p > hi[q] ? p : hi[q];
                    }
                }
            }
    for (int ax = 0; ax < na; ax++) {
        out[ax] = (abl_axis_zone){0};
        if (n == 0 || !fr[ax].ok) continue;
        const double *d = fr[ax].d;
        /* one voxel's width along and across the axis (exact for grid-aligned axes) */
        double hpar = 0.0, hperp = 0.0;
        for (int a = 0; a < 3; a++) {
            hpar += g->h_m[a] * fabs(d[a]);
            hperp = fmax(hperp, g->h_m[a] * sqrt(fmax(0.0, 1.0 - d[a] * d[a])));
        }
        double wmin = INFINITY;
        for (int q = 0; q < ZONE_CALIPER_DIRS; q++)
            wmin = fmin(wmin, pmax[ax * ZONE_CALIPER_DIRS + q] - pmin[ax * ZONE_CALIPER_DIRS + q]);
        abl_axis_zone *o = &out[ax];
        o->length_m = smax[ax] - smin[ax] + hpar;
        o->diameter_m = 2.0 * sqrt(r2max[ax]) + hperp;
        o->diameter_min_m = wmin + hperp;
        o->nvox = n;
        o->volume_m3 = (double)n * grid_voxel_volume_m3(g);
        o->volume_pv_m3 = ((double)n + (double)pv / PV_UNIT) * grid_voxel_volume_m3(g);
        o->diameter_eq_m = sqrt(6.0 * o->volume_m3 / (ZONE_PI * o->length_m));
    }
}

void zone_axes_measure_box(const abl_grid *g, const double *field, double thr_value,
                           bool at_or_above, const abl_box *box, int naxes,
                           const double (*tip_m)[3], const double (*dir)[3], abl_axis_zone *out)
{
    for (int a0 = 0; a0 < naxes; a0 += ZONE_AXES_PER_PASS) {
        const int na = naxes - a0 < ZONE_AXES_PER_PASS ? naxes - a0 : ZONE_AXES_PER_PASS;
        axis_frame fr[ZONE_AXES_PER_PASS];
        for (int a = 0; a < na; a++)
            fr[a] = axis_frame_of(tip_m[a0 + a], dir[a0 + a]);
        if (box_empty(box)) {
            for (int a = 0; a < na; a++)
                out[a0 + a] = (abl_axis_zone){0};
            continue;
        }
        measure_axes_pass(g, field, thr_value, at_or_above, box, na, fr, out + a0);
    }
}

void zone_axis_measure_box(const abl_grid *g, const double *field, double thr_value,
                           bool at_or_above, const abl_box *box, const double tip_m[3],
                           const double dir[3], abl_axis_zone *out)
{
    const double(*t)[3] = (const double(*)[3])tip_m, (*d)[3] = (const double(*)[3])dir;
    zone_axes_measure_box(g, field, thr_value, at_or_above, box, 1, t, d, out);
}

void zone_axis_measure(const abl_grid *g, const double *field, double thr_value, bool at_or_above,
                       const double tip_m[3], const double dir[3], abl_axis_zone *out)
{
    const abl_box b = zone_grid_box(g);
    zone_axis_measure_box(g, field, thr_value, at_or_above, &b, tip_m, dir, out);
}

void zone_scratch_free(abl_zone_scratch *w)
{
    if (!w) return;
    free(w->state);
    free(w->stack);
    *w = (abl_zone_scratch){0};
}

abl_status zone_largest_component(const abl_grid *g, const double *field, double thr_value,
                                  bool at_or_above, const abl_box *box, long *largest, long *nvox,
                                  abl_zone_scratch *w, abl_error *err)
{
    *largest = 0;
    *nvox = 0;
    const abl_box b = box ? *box : zone_grid_box(g);
    if (box_empty(&b)) return ABL_OK;
    const int bx = b.hi[0] - b.lo[0], by = b.hi[1] - b.lo[1], bz = b.hi[2] - b.lo[2];
    const size_t sy = (size_t)bx, sz = (size_t)bx * (size_t)by, nb = sz * (size_t)bz;
    abl_zone_scratch own = {0};
    if (!w) w = &own;
    if (w->cap < nb) {
        /* box indices fit 32 bits (a grid has at most 2^31 voxels): 5 bytes per box voxel */
        uint8_t *ns = realloc(w->state, nb);
        if (ns) w->state = ns;
        uint32_t *nk = ns ? realloc(w->stack, nb * sizeof *nk) : NULL;
        if (nk) w->stack = nk;
        if (!ns || !nk) {
            zone_scratch_free(&own);
            return abl_fail(err, ABL_ENOMEM,
                            "out of memory measuring connected components (%zu voxels)", nb);
        }
        w->cap = nb;
    }
    /* 0: not in the zone, 1: in the zone, not reached yet, 2: reached */
    uint8_t *st = w->state;
    uint32_t *stack = w->stack;
    long n = 0;
#pragma omp parallel for collapse(2) schedule(static) reduction(+ : n) \
    if (nb >= ZONE_PARALLEL_MIN_VOXELS)
    for (int k = 0; k < bz; k++)
        for (int j = 0; j < by; j++)
            for (int i = 0; i < bx; i++) {
                const bool z = in_zone(field[ABL_IDX(g, b.lo[0] + i, b.lo[1] + j, b.lo[2] + k)],
                                       thr_value, at_or_above);
                st[(size_t)k * sz + (size_t)j * sy + (size_t)i] = z;
                n += z;
            }
    long best = 0, reached = 0;
    /* Flood fill from each unreached zone voxel (box order: deterministic, though only the
     * sizes are reported and those do not depend on the order anyway); done once the voxels
     * not yet reached could not form a larger component. */
    for (size_t c0 = 0; c0 < nb && n - reached > best; c0++) {
        if (st[c0] != 1) continue;
        long size = 0;
        size_t top = 0;
        stack[top++] = (uint32_t)c0;
        st[c0] = 2;
        while (top) {
            const size_t c = stack[--top];
            size++;
            const size_t i = c % sy, j = c / sy % (size_t)by, k = c / sz;
            size_t nb6[6];
            int m = 0;
            if (i > 0) nb6[m++] = c - 1;
            if (i + 1 < (size_t)bx) nb6[m++] = c + 1;
            if (j > 0) nb6[m++] = c - sy;
            if (j + 1 < (size_t)by) nb6[m++] = c + sy;
            if (k > 0) nb6[m++] = c - sz;
            if (k + 1 < (size_t)bz) nb6[m++] = c + sz;
            for (int q = 0; q < m; q++)
                if (st[nb6[q]] == 1) {
                    st[nb6[q]] = 2;
                    stack[top++] = (uint32_t)nb6[q];
                }
        }
        reached += size;
        if (size > best) best = size;
    }
    zone_scratch_free(&own);
    *largest = best;
    *nvox = n;
    return ABL_OK;
}
