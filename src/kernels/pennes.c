/* pennes.c - explicit Pennes step (fast same-tissue path + general path), RHS, energy sums.
 * Traffic budget and discretisation: see kernels.h. */
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ablasim/hash.h"
#include "ablasim/kernels.h"
#include "stencil_ops.h"

/* Same-tissue run [i0, i1) of one row: constant coefficients, unit stride, vectorisable. */
static inline void fast_run(const abl_fast_coef *restrict f, const double *restrict T,
                            double *restrict T_new, size_t c0, size_t c1, size_t sy, size_t sz)
{
    const double ax = f->ax, ay = f->ay, az = f->az, diag = f->diag, s = f->s;
#pragma omp simd
    for (size_t c = c0; c < c1; c++)
        T_new[c] = diag * T[c] + ax * (T[c - 1] + T[c + 1]) + ay * (T[c - sy] + T[c + sy]) +
                   az * (T[c - sz] + T[c + sz]) + s;
}

static inline void general_voxel(const abl_stencil *st, const double *restrict T,
                                 double *restrict T_new, int i, int j, int k, size_t c)
{
    T_new[c] = T[c] + st->dt_s * st->inv_rhoc[st->material[c]] * pennes_op(st, T, i, j, k, c);
}

/* Coefficients of one general voxel, from the same tables as pennes_op (stencil_ops.h). */
static abl_gen_coef general_coef(const abl_stencil *st, int i, int j, int k, size_t c)
{
    const abl_grid *g = st->g;
    const int nm = st->nmat, m = st->material[c];
    const double a = st->dt_s * st->inv_rhoc[m];
    const int inside[6] = {i > 0, i < g->nx - 1, j > 0, j < g->ny - 1, k > 0, k < g->nz - 1};
    const ptrdiff_t off[6] = {-1, 1, -(ptrdiff_t)g->sy, (ptrdiff_t)g->sy, -(ptrdiff_t)g->sz,
                              (ptrdiff_t)g->sz};
    abl_gen_coef r = {{0}, 0, 0, 0};
    double sum = 0.0, sb = 0.0, bw = 0.0;
    for (int f = 0; f < 6; f++) {
        if (inside[f]) {
            int mn = st->material[(ptrdiff_t)c + off[f]];
            r.c[f] = a * st->gface[((size_t)(f / 2) * nm + m) * nm + mn];
            sum += r.c[f];
        } else {
            double b = a * st->gbound[(size_t)f * nm + m];
            sum += b;
            sb += b * st->T_bound_C[f];
            bw += b;
        }
    }
    r.diag = 1.0 - sum - a * st->perf_W[m];
    r.s = a * st->src_const[m] + sb;
    r.w = 0.5 * bw;
    return r;
}

/* Coefficient records of the general runs, each distinct record stored once. A grid has
 * ~10^5 general runs (every tissue interface and domain face) but only ~10^2-10^3 distinct
 * records (a record depends only on the voxel's material, its six neighbours' materials and
 * which domain faces it touches): shared, the table stays in cache during a sweep instead of
 * streaming 72 B per run from memory next to the 24 B per voxel of T and T_new (the humerus
 * grid: 133 224 runs, 9.6 MB of records per sweep before). Records are compared bytewise, so
 * a run reads exactly the coefficients it had with its own copy: the same bits. */
typedef struct {
    abl_gen_coef *rec;
    size_t n, cap;
    int32_t *slot; /* open addressing: index into rec, -1 empty */
    size_t nslot;  /* power of two */
} gen_table;

static uint64_t gen_hash(const abl_gen_coef *r)
{
    return abl_fnv1a(ABL_FNV1A_INIT, r, sizeof *r);
}

static bool gen_rehash(gen_table *t, size_t nslot)
{
    int32_t *sl = malloc(nslot * sizeof *sl);
    if (!sl) return false;
    for (size_t q = 0; q < nslot; q++) sl[q] = -1;
    for (size_t r = 0; r < t->n; r++) {
        size_t q = (size_t)gen_hash(&t->rec[r]) & (nslot - 1);
        while (sl[q] >= 0) q = (q + 1) & (nslot - 1);
        sl[q] = (int32_t)r;
    }
    free(t->slot);
    t->slot = sl;
    t->nslot = nslot;
    return true;
}

/* Index of record r in the table, added when new; -1 when out of memory. */
static int32_t gen_intern(gen_table *t, const abl_gen_coef *r)
{
    if (2 * (t->n + 1) > t->nslot && !gen_rehash(t, t->nslot ? 2 * t->nslot : 1024)) return -1;
    size_t q = (size_t)gen_hash(r) & (t->nslot - 1);
    for (; t->slot[q] >= 0; q = (q + 1) & (t->nslot - 1))
        if (!memcmp(&t->rec[t->slot[q]], r, sizeof *r)) return t->slot[q];
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 256;
        abl_gen_coef *nr = realloc(t->rec, cap * sizeof *nr);
        if (!nr || t->n >= (size_t)INT32_MAX) {
            free(nr == t->rec ? NULL : nr);
            return -1;
        }
        t->rec = nr;
        t->cap = cap;
    }
    t->rec[t->n] = *r;
    t->slot[q] = (int32_t)t->n;
    return (int32_t)t->n++;
}

/* Walk the grid row by row and cut each row into segments: maximal runs of same-material
 * interior voxels (fast path), and maximal runs of general voxels whose coefficient records are
 * identical (flat tissue interfaces and domain faces are long such runs). The first and last
 * voxel of a row always form their own segment, so that inside a general run both x
 * neighbours exist. With seg == NULL only counts segments. Returns false when out of memory. */
static bool plan_walk(const abl_stencil *st, abl_segment *seg, size_t *row_seg, gen_table *gt,
                      size_t *nseg)
{
    const abl_grid *g = st->g;
    size_t ns = 0;
    for (int k = 0; k < g->nz; k++)
        for (int j = 0; j < g->ny; j++) {
            const size_t r = (size_t)k * g->ny + (size_t)j, row = r * g->sy;
            const uint8_t *cls = st->cls + row;
            if (row_seg) row_seg[r] = ns;
            int i = 0;
            while (i < g->nx) {
                int e = i + 1;
                abl_segment sg = {i, e, cls[i] == ABL_CLS_GENERAL ? -1 : cls[i], -1};
                if (sg.mat >= 0) {
                    while (e < g->nx && cls[e] == cls[i]) e++;
                } else {
                    abl_gen_coef gc = general_coef(st, i, j, k, row + (size_t)i);
                    if (i > 0)
                        while (e < g->nx - 1 && cls[e] == ABL_CLS_GENERAL) {
                            abl_gen_coef ge = general_coef(st, e, j, k, row + (size_t)e);
                            if (memcmp(&ge, &gc, sizeof ge)) break;
                            e++;
                        }
                    if (gt && (sg.g0 = gen_intern(gt, &gc)) < 0) return false;
                }
                sg.i1 = e;
                if (seg) seg[ns] = sg;
                ns++;
                i = e;
            }
        }
    if (row_seg) row_seg[(size_t)g->ny * g->nz] = ns;
    *nseg = ns;
    return true;
}

bool stencil_plan_build(const abl_stencil *st, abl_segment **seg, size_t **row_seg,
                        abl_gen_coef **gen, size_t *nseg, size_t *ngen)
{
    *seg = NULL, *row_seg = NULL, *gen = NULL, *nseg = *ngen = 0;
    size_t ns;
    plan_walk(st, NULL, NULL, NULL, &ns);
    gen_table gt = {0};
    abl_segment *sg = malloc((ns ? ns : 1) * sizeof *sg);
    size_t *rs = malloc(((size_t)st->g->ny * st->g->nz + 1) * sizeof *rs);
    if (!sg || !rs || !plan_walk(st, sg, rs, &gt, &ns)) {
        free(sg), free(rs), free(gt.rec), free(gt.slot);
        return false;
    }
    free(gt.slot);
    if (!gt.rec) gt.rec = malloc(sizeof *gt.rec); /* no general voxel: a valid empty table */
    if (!gt.rec) {
        free(sg), free(rs);
        return false;
    }
    *seg = sg, *row_seg = rs, *gen = gt.rec, *nseg = ns, *ngen = gt.n;
    return true;
}

/* The x-intervals of row (j, k) that the region covers: [lo0, hi0) less the excluded box's
 * [xlo0, xhi0) where the row passes through it. Returns how many (0, 1 or 2). */
static int region_row_parts(const abl_sweep_box *r, int ny, int j, int k, int a[2], int b[2])
{
    bool cut = r->xlo[0] < r->xhi[0] && r->xlo[1] < r->xhi[1] && r->xlo[2] < r->xhi[2] &&
               j >= r->xlo[1] && j < r->xhi[1] && k >= r->xlo[2] && k < r->xhi[2];
    int xa = r->xlo[0], xb = r->xhi[0];
    if (cut && r->xrow_lo) {
        const size_t row = (size_t)k * (size_t)ny + (size_t)j;
        xa = r->xrow_lo[row], xb = r->xrow_hi[row];
        cut = xa < xb;
    }
    int n = 0;
    if (!cut) {
        a[0] = r->lo[0], b[0] = r->hi[0];
        return r->lo[0] < r->hi[0];
    }
    if (r->lo[0] < xa) a[n] = r->lo[0], b[n] = xa < r->hi[0] ? xa : r->hi[0], n++;
    if (xb < r->hi[0]) a[n] = xb > r->lo[0] ? xb : r->lo[0], b[n] = r->hi[0], n++;
    return n;
}

abl_sweep_box sweep_box_all(const abl_grid *g)
{
    return (abl_sweep_box){.lo = {0, 0, 0}, .hi = {g->nx, g->ny, g->nz}};
}

void pennes_explicit_step(const abl_stencil *st, const double *restrict T, double *restrict T_new)
{
    const abl_sweep_box all = sweep_box_all(st->g);
    pennes_explicit_step_region(st, T, T_new, &all);
}

void pennes_explicit_step_region(const abl_stencil *st, const double *restrict T,
                                 double *restrict T_new, const abl_sweep_box *reg)
{
    const abl_grid *g = st->g;
    const int nx = g->nx, ny = g->ny, nz = g->nz;
    const size_t sy = g->sy, sz = g->sz;
#pragma omp parallel for collapse(2) schedule(static)
    for (int k = reg->lo[2]; k < reg->hi[2]; k++)
        for (int j = reg->lo[1]; j < reg->hi[1]; j++) {
            const size_t r = (size_t)k * ny + (size_t)j, row = r * sy;
            /* neighbour offsets of general voxels; 0 where the neighbour is outside the grid
             * (its coefficient is 0 then, and reading T[c] keeps the access in bounds) */
            const size_t os = j > 0 ? sy : 0, on = j < ny - 1 ? sy : 0;
            const size_t od = k > 0 ? sz : 0, ou = k < nz - 1 ? sz : 0;
            int pa[2], pb[2];
            const int np = region_row_parts(reg, ny, j, k, pa, pb);
            size_t q = st->row_seg[r];
            for (int p = 0; p < np; p++)
                for (; q < st->row_seg[r + 1]; q++) {
                    const abl_segment sg = st->seg[q];
                    if (sg.i1 <= pa[p]) continue;
                    if (sg.i0 >= pb[p]) break;
                    /* the segment clipped to the part (the whole segment for a whole row) */
                    const int i0 = sg.i0 > pa[p] ? sg.i0 : pa[p], i1 = sg.i1 < pb[p] ? sg.i1 : pb[p];
                    const size_t c0 = row + (size_t)i0, c1 = row + (size_t)i1;
                    if (sg.mat >= 0) {
                        fast_run(&st->fast[sg.mat], T, T_new, c0, c1, sy, sz);
                    } else {
                        const abl_gen_coef gc = st->gen[sg.g0];
                        const size_t ow = sg.i0 > 0 ? 1 : 0, oe = sg.i1 < nx ? 1 : 0;
                        if (st->walls_in_kernel && gc.w > 0.0) {
                            /* a run on a domain face: the wall term trapezoidal (abl_gen_coef w) */
                            const double w = gc.w, iw = 1.0 / (1.0 + w);
#pragma omp simd
                            for (size_t c = c0; c < c1; c++)
                                T_new[c] = (gc.diag * T[c] + gc.c[0] * T[c - ow] +
                                            gc.c[1] * T[c + oe] + gc.c[2] * T[c - os] +
                                            gc.c[3] * T[c + on] + gc.c[4] * T[c - od] +
                                            gc.c[5] * T[c + ou] + gc.s + w * T[c]) *
                                           iw;
                        } else {
#pragma omp simd
                            for (size_t c = c0; c < c1; c++)
                                T_new[c] = gc.diag * T[c] + gc.c[0] * T[c - ow] +
                                           gc.c[1] * T[c + oe] + gc.c[2] * T[c - os] +
                                           gc.c[3] * T[c + on] + gc.c[4] * T[c - od] +
                                           gc.c[5] * T[c + ou] + gc.s;
                        }
                    }
                    if (sg.i1 >= pb[p]) break; /* the next part may start in this segment */
                }
        }
}

void pennes_explicit_step_general(const abl_stencil *st, const double *restrict T,
                                  double *restrict T_new)
{
    const abl_grid *g = st->g;
#pragma omp parallel for collapse(2) schedule(static)
    for (int k = 0; k < g->nz; k++)
        for (int j = 0; j < g->ny; j++)
            for (int i = 0; i < g->nx; i++) general_voxel(st, T, T_new, i, j, k, ABL_IDX(g, i, j, k));
}

/* Rows that touch the domain faces (and the two end voxels of every row) take the general
 * per-voxel operator; the interior of a row runs a branch-free loop the compiler vectorises (the
 * six harmonic means are divisions: the general operator's per-voxel branches kept it scalar,
 * 3.4 GB/s against 26-34 GB/s for the constant-property sweep on cryo runs). The interior loop
 * computes exactly the general operator's expression in the same order (same 1/h^2 values,
 * faces x-, x+, y-, y+, z-, z+, then perfusion and metabolic heat; no FMA contraction under
 * -std=c11), so the two paths give identical bits (tests/unit/test_kernels.c checks). */
void pennes_explicit_step_var(const abl_stencil *st, const double *restrict k_W_mK,
                              const double *restrict W_W_m3K, const double *restrict T,
                              double *restrict T_new)
{
    const int lo[3] = {0, 0, 0}, hi[3] = {st->g->nx, st->g->ny, st->g->nz};
    pennes_explicit_step_var_box(st, k_W_mK, W_W_m3K, T, T_new, lo, hi, NULL, NULL);
}

void pennes_explicit_step_var_box(const abl_stencil *st, const double *restrict k_W_mK,
                                  const double *restrict W_W_m3K, const double *restrict T,
                                  double *restrict T_new, const int lo[3], const int hi[3],
                                  const int32_t *row_lo, const int32_t *row_hi)
{
    const abl_grid *g = st->g;
    const int nx = g->nx, ny = g->ny, nz = g->nz;
    const ptrdiff_t sy = (ptrdiff_t)g->sy, sz = (ptrdiff_t)g->sz;
    const double ihx = 1.0 / (g->h_m[0] * g->h_m[0]), ihy = 1.0 / (g->h_m[1] * g->h_m[1]),
                 ihz = 1.0 / (g->h_m[2] * g->h_m[2]);
    const double dt = st->dt_s, Ta = st->T_arterial_C;
    const double *restrict inv_rhoc = st->inv_rhoc, *restrict q_met = st->q_met;
    const uint8_t *restrict mat = st->material;
    const double *restrict kv = k_W_mK, *restrict Wv = W_W_m3K;
#pragma omp parallel for collapse(2) schedule(static)
    for (int k = lo[2]; k < hi[2]; k++)
        for (int j = lo[1]; j < hi[1]; j++) {
            int i0, i1;
            grid_row_part(g, j, k, lo[0], hi[0], row_lo, row_hi, &i0, &i1);
            if (i0 >= i1) continue;
            const bool edge_row = j == 0 || j == ny - 1 || k == 0 || k == nz - 1 || nx < 3;
            /* voxels of this row that take the per-voxel operator: all of an edge row, else
             * the row's two end voxels where the box reaches them */
            const int ib = edge_row ? i1 : (i0 > 1 ? i0 : 1);
            const int ie = edge_row ? i1 : (i1 < nx - 1 ? i1 : nx - 1);
            for (int part = 0; part < 2; part++)
                for (int i = part ? ie : i0; i < (part ? i1 : ib); i++) {
                    const size_t c = ABL_IDX(g, i, j, k);
                    T_new[c] = T[c] + st->dt_s * st->inv_rhoc[st->material[c]] *
                                          pennes_op_var(st, k_W_mK, W_W_m3K, T, i, j, k, c);
                }
            const size_t c0 = ABL_IDX(g, 0, j, k);
            for (int i = ib; i < ie; i++) {
                const size_t c = c0 + (size_t)i;
                const double Tc = T[c], kc = kv[c];
                double flux = 0.0;
                flux += abl_face_conductance(kc, kv[c - 1], ihx) * (T[c - 1] - Tc);
                flux += abl_face_conductance(kc, kv[c + 1], ihx) * (T[c + 1] - Tc);
                flux += abl_face_conductance(kc, kv[c - sy], ihy) * (T[c - sy] - Tc);
                flux += abl_face_conductance(kc, kv[c + sy], ihy) * (T[c + sy] - Tc);
                flux += abl_face_conductance(kc, kv[c - sz], ihz) * (T[c - sz] - Tc);
                flux += abl_face_conductance(kc, kv[c + sz], ihz) * (T[c + sz] - Tc);
                const double op = flux + Wv[c] * (Ta - Tc) + q_met[mat[c]];
                T_new[c] = Tc + dt * inv_rhoc[mat[c]] * op;
            }
        }
}

void pennes_energy_rates_var(const abl_stencil *st, const double *restrict k_W_mK,
                             const double *restrict W_W_m3K, const double *restrict T,
                             double *work_2nz, double *perf_met_W, double *boundary_in_W)
{
    const abl_sweep_box all = sweep_box_all(st->g);
    pennes_energy_rates_var_region(st, k_W_mK, W_W_m3K, T, work_2nz, &all, perf_met_W,
                                   boundary_in_W);
}

void pennes_energy_rates_var_region(const abl_stencil *st, const double *restrict k_W_mK,
                                    const double *restrict W_W_m3K, const double *restrict T,
                                    double *work_2nz, const abl_sweep_box *reg,
                                    double *perf_met_W, double *boundary_in_W)
{
    const abl_grid *g = st->g;
    const double V = g->h_m[0] * g->h_m[1] * g->h_m[2];
    double *pm = work_2nz, *bd = work_2nz + g->nz;
#pragma omp parallel for schedule(static)
    for (int k = reg->lo[2]; k < reg->hi[2]; k++) {
        double sp = 0.0, sb = 0.0;
        for (int j = reg->lo[1]; j < reg->hi[1]; j++) {
            int pa[2], pb[2];
            const int np = region_row_parts(reg, g->ny, j, k, pa, pb);
            for (int p = 0; p < np; p++)
                for (int i = pa[p]; i < pb[p]; i++) {
                    const size_t c = ABL_IDX(g, i, j, k);
                    const int at[6] = {i == 0, i == g->nx - 1, j == 0, j == g->ny - 1, k == 0,
                                       k == g->nz - 1};
                    sp += W_W_m3K[c] * (st->T_arterial_C - T[c]) + st->q_met[st->material[c]];
                    for (int f = 0; f < 6; f++)
                        if (at[f])
                            sb += boundary_conductance(st->bc_type[f], st->bc_h_W_m2K[f],
                                                       k_W_mK[c], g->h_m[f / 2]) *
                                  (st->T_bound_C[f] - T[c]);
                }
        }
        pm[k] = sp;
        bd[k] = sb;
    }
    double p = 0.0, b = 0.0;
    for (int k = reg->lo[2]; k < reg->hi[2]; k++) {
        p += pm[k];
        b += bd[k];
    }
    *perf_met_W = p * V;
    *boundary_in_W = b * V;
}

static inline double op_any(const abl_stencil *st, const double *kv, const double *Wv,
                            const double *T, int i, int j, int k, size_t c, const int affine)
{
    return kv ? pennes_op_var_ex(st, kv, Wv, T, i, j, k, c, affine)
              : pennes_op_ex(st, T, i, j, k, c, affine);
}

static double implicit_matvec_general(const abl_stencil *st, const double *kv, const double *Wv,
                                      double inv_dt, double theta, const double *restrict x,
                                      double *restrict y, double *work_nz)
{
    const abl_grid *g = st->g;
#pragma omp parallel for schedule(static)
    for (int k = 0; k < g->nz; k++) {
        double dot = 0.0;
        for (int j = 0; j < g->ny; j++)
            for (int i = 0; i < g->nx; i++) {
                const size_t c = ABL_IDX(g, i, j, k);
                const double C = 1.0 / st->inv_rhoc[st->material[c]];
                const double v = C * inv_dt * x[c] - theta * op_any(st, kv, Wv, x, i, j, k, c, 0);
                y[c] = v;
                dot += x[c] * v;
            }
        work_nz[k] = dot;
    }
    double d = 0.0;
    for (int k = 0; k < g->nz; k++) d += work_nz[k];
    return d;
}

static void implicit_rhs_general(const abl_stencil *st, const double *kv, const double *Wv,
                                 double inv_dt, double theta, const double *restrict T,
                                 double *restrict rhs)
{
    const abl_grid *g = st->g;
#pragma omp parallel for collapse(2) schedule(static)
    for (int k = 0; k < g->nz; k++)
        for (int j = 0; j < g->ny; j++)
            for (int i = 0; i < g->nx; i++) {
                const size_t c = ABL_IDX(g, i, j, k);
                const double C = 1.0 / st->inv_rhoc[st->material[c]];
                const double full = op_any(st, kv, Wv, T, i, j, k, c, 1); /* A T + f */
                const double lin = op_any(st, kv, Wv, T, i, j, k, c, 0);  /* A T */
                rhs[c] = C * inv_dt * T[c] + (1.0 - theta) * full + theta * (full - lin);
            }
}

/* The segment plan (built for the explicit step with the plan's dt) describes A and f exactly:
 * for a fast run, a (A x + f) = ax (x_w + x_e) + ay (..) + az (..) + (diag - 1) x + s with
 * a = dt_plan / (rho c); a general run carries the same form in its record. So the implicit
 * operators stream x and y only (24 B/LUP), as the explicit step does, instead of walking the
 * material tables voxel by voxel. */
typedef struct {
    double cw, ce, cs, cn, cd, cu, dm1, s; /* a-scaled: neighbour weights, diag - 1, constant */
    double Ca;                             /* rho c / dt_plan = 1/a */
    double C;                              /* rho c */
} seg_form;

static inline seg_form segment_form(const abl_stencil *st, const abl_segment *sg, size_t c0)
{
    seg_form f;
    const int m = st->material[c0];
    f.C = 1.0 / st->inv_rhoc[m];
    f.Ca = f.C / st->dt_s;
    if (sg->mat >= 0) {
        const abl_fast_coef *q = &st->fast[sg->mat];
        f.cw = f.ce = q->ax;
        f.cs = f.cn = q->ay;
        f.cd = f.cu = q->az;
        f.dm1 = q->diag - 1.0;
        f.s = q->s;
    } else {
        const abl_gen_coef *q = &st->gen[sg->g0];
        f.cw = q->c[0];
        f.ce = q->c[1];
        f.cs = q->c[2];
        f.cn = q->c[3];
        f.cd = q->c[4];
        f.cu = q->c[5];
        f.dm1 = q->diag - 1.0;
        f.s = q->s;
    }
    return f;
}

/* Walk the plan: for each segment, offsets of its six neighbours (0 where the neighbour is
 * outside the grid: the weight is 0 there) and its form. */
#define PLAN_WALK_BEGIN(st)                                                                      \
    const abl_grid *g = (st)->g;                                                                 \
    const int nx = g->nx, ny = g->ny, nz = g->nz;                                                \
    const size_t sy = g->sy, sz = g->sz;

static double implicit_matvec_planned(const abl_stencil *st, double inv_dt, double theta,
                                      const double *restrict x, double *restrict y,
                                      double *work_nz)
{
    PLAN_WALK_BEGIN(st)
#pragma omp parallel for schedule(static)
    for (int k = 0; k < nz; k++) {
        double dot = 0.0;
        for (int j = 0; j < ny; j++) {
            const size_t r = (size_t)k * ny + (size_t)j, row = r * sy;
            const size_t os = j > 0 ? sy : 0, on = j < ny - 1 ? sy : 0;
            const size_t od = k > 0 ? sz : 0, ou = k < nz - 1 ? sz : 0;
            for (size_t q = st->row_seg[r]; q < st->row_seg[r + 1]; q++) {
                const abl_segment sg = st->seg[q];
                const size_t c0 = row + (size_t)sg.i0, c1 = row + (size_t)sg.i1;
                const size_t ow = sg.i0 > 0 ? 1 : 0, oe = sg.i1 < nx ? 1 : 0;
                const seg_form f = segment_form(st, &sg, c0);
                /* y = C/h x - theta A x,  A x = Ca (weights . x + (diag - 1) x) */
                const double t = theta * f.Ca;
                const double d0 = f.C * inv_dt - t * f.dm1;
                const double ww = -t * f.cw, we = -t * f.ce, ws = -t * f.cs, wn = -t * f.cn,
                             wd = -t * f.cd, wu = -t * f.cu;
#pragma omp simd reduction(+ : dot)
                for (size_t c = c0; c < c1; c++) {
                    const double v = d0 * x[c] + ww * x[c - ow] + we * x[c + oe] +
                                     ws * x[c - os] + wn * x[c + on] + wd * x[c - od] +
                                     wu * x[c + ou];
                    y[c] = v;
                    dot += x[c] * v;
                }
            }
        }
        work_nz[k] = dot;
    }
    double d = 0.0;
    for (int k = 0; k < nz; k++) d += work_nz[k];
    return d;
}

static void implicit_rhs_planned(const abl_stencil *st, double inv_dt, double theta,
                                 const double *restrict T, double *restrict rhs)
{
    PLAN_WALK_BEGIN(st)
#pragma omp parallel for collapse(2) schedule(static)
    for (int k = 0; k < nz; k++)
        for (int j = 0; j < ny; j++) {
            const size_t r = (size_t)k * ny + (size_t)j, row = r * sy;
            const size_t os = j > 0 ? sy : 0, on = j < ny - 1 ? sy : 0;
            const size_t od = k > 0 ? sz : 0, ou = k < nz - 1 ? sz : 0;
            for (size_t q = st->row_seg[r]; q < st->row_seg[r + 1]; q++) {
                const abl_segment sg = st->seg[q];
                const size_t c0 = row + (size_t)sg.i0, c1 = row + (size_t)sg.i1;
                const size_t ow = sg.i0 > 0 ? 1 : 0, oe = sg.i1 < nx ? 1 : 0;
                const seg_form f = segment_form(st, &sg, c0);
                /* rhs = C/h T + (1 - theta) A T + f,  f = Ca s */
                const double t = (1.0 - theta) * f.Ca;
                const double d0 = f.C * inv_dt + t * f.dm1;
                const double sc = f.Ca * f.s;
#pragma omp simd
                for (size_t c = c0; c < c1; c++)
                    rhs[c] = d0 * T[c] +
                             t * (f.cw * T[c - ow] + f.ce * T[c + oe] + f.cs * T[c - os] +
                                  f.cn * T[c + on] + f.cd * T[c - od] + f.cu * T[c + ou]) +
                             sc;
            }
        }
}

double implicit_matvec(const abl_stencil *st, const double *kv, const double *Wv, double inv_dt,
                       double theta, const double *restrict x, double *restrict y,
                       double *work_nz)
{
    if (!kv && st->seg) return implicit_matvec_planned(st, inv_dt, theta, x, y, work_nz);
    return implicit_matvec_general(st, kv, Wv, inv_dt, theta, x, y, work_nz);
}

void implicit_rhs(const abl_stencil *st, const double *kv, const double *Wv, double inv_dt,
                  double theta, const double *restrict T, double *restrict rhs)
{
    if (!kv && st->seg) implicit_rhs_planned(st, inv_dt, theta, T, rhs);
    else implicit_rhs_general(st, kv, Wv, inv_dt, theta, T, rhs);
}

double pennes_op_at(const abl_stencil *st, const double *kv, const double *Wv, const double *T,
                    size_t c)
{
    const abl_grid *g = st->g;
    const int i = (int)(c % g->sy), j = (int)(c / g->sy % (size_t)g->ny), k = (int)(c / g->sz);
    return op_any(st, kv, Wv, T, i, j, k, c, 1);
}

double perfusion_shutdown_correct(const abl_stencil *st, const double *restrict omega,
                                  const double *restrict T_max, double stop_C,
                                  const double *restrict T, double *restrict T_new,
                                  double *work_nz)
{
    const int lo[3] = {0, 0, 0}, hi[3] = {st->g->nx, st->g->ny, st->g->nz};
    return perfusion_shutdown_correct_rows(st, omega, T_max, stop_C, T, T_new, work_nz, lo, hi,
                                           NULL, NULL);
}

double perfusion_shutdown_correct_rows(const abl_stencil *st, const double *restrict omega,
                                       const double *restrict T_max, double stop_C,
                                       const double *restrict T, double *restrict T_new,
                                       double *work_nz, const int lo[3], const int hi[3],
                                       const int32_t *row_lo, const int32_t *row_hi)
{
    const abl_grid *g = st->g;
    const double V = g->h_m[0] * g->h_m[1] * g->h_m[2];
    const bool threshold = !isnan(stop_C);
#pragma omp parallel for schedule(static)
    for (int k = 0; k < g->nz; k++) {
        double e = 0.0; /* planes outside the box: nothing damaged there */
        for (int j = lo[1]; j < hi[1] && k >= lo[2] && k < hi[2]; j++) {
            int i0, i1;
            grid_row_part(g, j, k, lo[0], hi[0], row_lo, row_hi, &i0, &i1);
            for (size_t c = ABL_IDX(g, i0, j, k), ce = ABL_IDX(g, 0, j, k) + (size_t)i1; c < ce;
                 c++) {
                /* the threshold reads T_max alone (a tissue without Arrhenius parameters, or
                 * an arrhenius_min_C above the threshold, has no damage there) */
                if (threshold ? !(T_max[c] >= stop_C) : !(omega[c] > 0.0)) continue;
                const int m = st->material[c];
                /* W (1 - exp(-Omega)), or all of W past the threshold */
                const double dW = threshold ? st->perf_W[m] : st->perf_W[m] * -expm1(-omega[c]);
                const double r = dW * (T[c] - st->T_arterial_C);
                T_new[c] += st->dt_s * st->inv_rhoc[m] * r;
                e += r;
            }
        }
        work_nz[k] = e;
    }
    double sum = 0.0;
    for (int k = 0; k < g->nz; k++) sum += work_nz[k];
    return sum * V;
}

double pennes_boundary_conductance(int bc_type, double h_conv_W_m2K, double k_W_mK, double h_m)
{
    return abl_boundary_conductance(bc_type, h_conv_W_m2K, k_W_mK, h_m);
}

void pennes_rhs(const abl_stencil *st, const double *restrict T, double *restrict rhs_W_m3)
{
    const abl_grid *g = st->g;
#pragma omp parallel for collapse(2) schedule(static)
    for (int k = 0; k < g->nz; k++)
        for (int j = 0; j < g->ny; j++)
            for (int i = 0; i < g->nx; i++) {
                size_t c = ABL_IDX(g, i, j, k);
                rhs_W_m3[c] = pennes_op(st, T, i, j, k, c);
            }
}

/* Heat per volume entering voxel c through domain face f [W/m^3]. */
static inline double boundary_in(const abl_stencil *st, const double *T, size_t c, int face)
{
    const int m = st->material[c];
    return st->gbound[(size_t)face * st->nmat + m] * (st->T_bound_C[face] - T[c]);
}

void pennes_energy_rates(const abl_stencil *st, const double *restrict T, double *work_2nz,
                         double *perf_met_W, double *boundary_in_W)
{
    const abl_grid *g = st->g;
    const double V = g->h_m[0] * g->h_m[1] * g->h_m[2];
    double *pm = work_2nz, *bd = work_2nz + g->nz;
#pragma omp parallel for schedule(static)
    for (int k = 0; k < g->nz; k++) {
        double sp = 0.0, sb = 0.0;
        for (int j = 0; j < g->ny; j++)
            for (int i = 0; i < g->nx; i++) {
                size_t c = ABL_IDX(g, i, j, k);
                int m = st->material[c];
                sp += st->src_const[m] - st->perf_W[m] * T[c];
                if (i == 0) sb += boundary_in(st, T, c, FACE_XMIN);
                if (i == g->nx - 1) sb += boundary_in(st, T, c, FACE_XMAX);
                if (j == 0) sb += boundary_in(st, T, c, FACE_YMIN);
                if (j == g->ny - 1) sb += boundary_in(st, T, c, FACE_YMAX);
                if (k == 0) sb += boundary_in(st, T, c, FACE_ZMIN);
                if (k == g->nz - 1) sb += boundary_in(st, T, c, FACE_ZMAX);
            }
        pm[k] = sp;
        bd[k] = sb;
    }
    double p = 0.0, b = 0.0;
    for (int k = 0; k < g->nz; k++) {
        p += pm[k];
        b += bd[k];
    }
    *perf_met_W = p * V;
    *boundary_in_W = b * V;
}

double pennes_stored_energy(const abl_stencil *st, const double *restrict T, double *work_nz)
{
    const abl_grid *g = st->g;
    const double V = g->h_m[0] * g->h_m[1] * g->h_m[2];
#pragma omp parallel for schedule(static)
    for (int k = 0; k < g->nz; k++) {
        double s = 0.0;
        for (size_t c = (size_t)k * g->sz; c < (size_t)(k + 1) * g->sz; c++)
            s += T[c] / st->inv_rhoc[st->material[c]];
        work_nz[k] = s;
    }
    double e = 0.0;
    for (int k = 0; k < g->nz; k++) e += work_nz[k];
    return e * V;
}
