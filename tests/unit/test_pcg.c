/* test_pcg.c - the masked PCG of pcg.h on a small SPD system against a direct (Cholesky)
 * answer:
 *  - plain and Jacobi-preconditioned CG reach the direct solution, with and without held
 *    voxels (held values unchanged, the free block solved with the held values lifted);
 *  - the same bits at 1 and 2 threads (pcg's own reductions and updates; the test operator
 *    is sequential);
 *  - max_iter reached: ABL_ENUM, iteration count and residual reported; b_norm 0: no-op.
 * The operator is a 7-point stencil on a 6 x 5 x 4 grid with random positive face weights
 * g in [0.1, 1.1] and a diagonal shift 1: A = shift I + sum_faces g (e_a - e_b)(e_a - e_b)^T,
 * symmetric with eigenvalues in [1, 1 + 4 * 3 * 1.1] (Gershgorin), so kappa(A) <= 14.2.
 * Multigrid preconditioner of the potential solver (multigrid.h): the same potential as the
 * spectral one at contrast 1e4 with held voxels; the same bits at 1 and 2 threads; the V-cycle
 * symmetric and positive, zero at held voxels, and exact on a one-level grid. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ablasim/multigrid.h"
#include "ablasim/pcg.h"
#include "ablasim/potential.h"
#include "ablasim/profile.h"
#include "testutil.h"

typedef struct {
    const abl_grid *g;
    double *gx, *gy, *gz; /* weight of the face to c+1, c+sy, c+sz (0 at the last layer) */
    double shift;
    int applies;
} toy_op;

static double toy_diag(const toy_op *o, size_t c, int i, int j, int k)
{
    const abl_grid *g = o->g;
    double d = o->shift + o->gx[c] + o->gy[c] + o->gz[c];
    if (i > 0) d += o->gx[c - 1];
    if (j > 0) d += o->gy[c - g->sy];
    if (k > 0) d += o->gz[c - g->sz];
    return d;
}

/* y = A x; returns x.y (sequential, so deterministic: what pcg.h asks of an operator) */
static double toy_apply(void *ctx, const double *restrict x, double *restrict y)
{
    toy_op *o = ctx;
    const abl_grid *g = o->g;
    o->applies++;
    double dot = 0.0;
    for (size_t c = 0; c < g->n; c++) {
        const int i = (int)(c % g->sy), j = (int)(c / g->sy % (size_t)g->ny),
                  k = (int)(c / g->sz);
        double v = toy_diag(o, c, i, j, k) * x[c];
        if (i < g->nx - 1) v -= o->gx[c] * x[c + 1];
        if (i > 0) v -= o->gx[c - 1] * x[c - 1];
        if (j < g->ny - 1) v -= o->gy[c] * x[c + g->sy];
        if (j > 0) v -= o->gy[c - g->sy] * x[c - g->sy];
        if (k < g->nz - 1) v -= o->gz[c] * x[c + g->sz];
        if (k > 0) v -= o->gz[c - g->sz] * x[c - g->sz];
        y[c] = v;
        dot += x[c] * v;
    }
    return dot;
}

static abl_status toy_jacobi(void *ctx, const double *r, double *z, abl_error *err)
{
    (void)err;
    const toy_op *o = ctx;
    const abl_grid *g = o->g;
    for (int k = 0; k < g->nz; k++)
        for (int j = 0; j < g->ny; j++)
            for (int i = 0; i < g->nx; i++) {
                const size_t c = ABL_IDX(g, i, j, k);
                z[c] = r[c] / toy_diag(o, c, i, j, k);
            }
    return ABL_OK;
}

/* Dense A (n x n) by applying the operator to unit vectors. */
static double *toy_dense(toy_op *o)
{
    const size_t n = o->g->n;
    double *A = calloc(n * n, sizeof(double)), *e = calloc(n, sizeof(double));
    for (size_t c = 0; c < n; c++) {
        e[c] = 1.0;
        toy_apply(o, e, A + c * n); /* column c (A symmetric: also row c) */
        e[c] = 0.0;
    }
    free(e);
    return A;
}

/* Direct answer: x_free = A_ff^-1 (b_f - A_fh x_h) by Cholesky; x_h kept. */
static void direct_solve(const double *A, size_t n, const uint8_t *held, const double *b,
                         double *x)
{
    size_t *f = malloc(n * sizeof *f), m = 0;
    for (size_t c = 0; c < n; c++)
        if (!held || !held[c]) f[m++] = c;
    double *L = calloc(m * m, sizeof(double)), *y = calloc(m, sizeof(double));
    for (size_t a = 0; a < m; a++) {
        double s = b ? b[f[a]] : 0.0;
        for (size_t c = 0; c < n; c++)
            if (held && held[c]) s -= A[f[a] * n + c] * x[c];
        y[a] = s;
        for (size_t bb = 0; bb <= a; bb++) L[a * m + bb] = A[f[a] * n + f[bb]];
    }
    for (size_t j = 0; j < m; j++) { /* in-place Cholesky, lower triangle */
        double d = L[j * m + j];
        for (size_t k = 0; k < j; k++) d -= L[j * m + k] * L[j * m + k];
        d = sqrt(d);
        L[j * m + j] = d;
        for (size_t i = j + 1; i < m; i++) {
            double s = L[i * m + j];
            for (size_t k = 0; k < j; k++) s -= L[i * m + k] * L[j * m + k];
            L[i * m + j] = s / d;
        }
    }
    for (size_t i = 0; i < m; i++) { /* L z = y */
        double s = y[i];
        for (size_t k = 0; k < i; k++) s -= L[i * m + k] * y[k];
        y[i] = s / L[i * m + i];
    }
    for (size_t i = m; i-- > 0;) { /* L^T x = z */
        double s = y[i];
        for (size_t k = i + 1; k < m; k++) s -= L[k * m + i] * y[k];
        y[i] = s / L[i * m + i];
    }
    for (size_t a = 0; a < m; a++) x[f[a]] = y[a];
    free(f);
    free(L);
    free(y);
}

typedef struct {
    abl_grid g;
    toy_op op;
    double *b, *held_v;
    uint8_t *held;
} toy;

static void toy_init(toy *t)
{
    abl_error err = {0};
    int dims[3] = {6, 5, 4};
    double h[3] = {1e-3, 1e-3, 1e-3}, o[3] = {0, 0, 0};
    CU_ASSERT_FATAL(grid_init(&t->g, dims, h, o, &err) == ABL_OK);
    const abl_grid *g = &t->g;
    t->op = (toy_op){g, grid_alloc_field(g, 0), grid_alloc_field(g, 0), grid_alloc_field(g, 0),
                     1.0, 0};
    t->b = grid_alloc_field(g, 0);
    t->held_v = grid_alloc_field(g, 0);
    t->held = calloc(g->n, 1);
    unsigned r = 12345u;
#define RND() ((r = r * 1103515245u + 12345u), (double)((r >> 8) & 0xffff) / 65536.0)
    for (int k = 0; k < g->nz; k++)
        for (int j = 0; j < g->ny; j++)
            for (int i = 0; i < g->nx; i++) {
                const size_t c = ABL_IDX(g, i, j, k);
                t->op.gx[c] = i < g->nx - 1 ? 0.1 + RND() : 0.0;
                t->op.gy[c] = j < g->ny - 1 ? 0.1 + RND() : 0.0;
                t->op.gz[c] = k < g->nz - 1 ? 0.1 + RND() : 0.0;
                t->b[c] = RND() - 0.5;
            }
    /* held: a 2 x 2 x 2 block ("electrode") and one corner voxel, with values */
    for (int k = 1; k < 3; k++)
        for (int j = 1; j < 3; j++)
            for (int i = 2; i < 4; i++) t->held[ABL_IDX(g, i, j, k)] = 1;
    t->held[0] = 1;
    for (size_t c = 0; c < g->n; c++) t->held_v[c] = t->held[c] ? 2.0 + 0.1 * (double)c : 0.0;
#undef RND
}

static void toy_free(toy *t)
{
    grid_free_field(t->op.gx);
    grid_free_field(t->op.gy);
    grid_free_field(t->op.gz);
    grid_free_field(t->b);
    grid_free_field(t->held_v);
    free(t->held);
}

static double max_abs(const double *v, size_t n)
{
    double m = 0.0;
    for (size_t c = 0; c < n; c++) m = fmax(m, fabs(v[c]));
    return m;
}

/* Solve with the given right side / mask / preconditioner; compare with the direct answer.
 * tol 1e-12 on ||r|| / ||b||: the error is at most kappa * 1e-12 * ||x*|| (<= 14.2e-12
 * relative), so 1e-10 of max |x*| leaves a factor 7 for round-off in the direct solve. */
static void check_case(toy *t, bool with_b, bool masked, bool jacobi, int *iters_out)
{
    const abl_grid *g = &t->g;
    abl_error err = {0};
    abl_pcg_opts o = {1e-12, 500, "toy: ", "raise max_iter", "check the weights", 0.0};
    abl_pcg *cg = NULL;
    CU_ASSERT_FATAL(pcg_create(g, &o, &cg, &err) == ABL_OK);
    double *A = toy_dense(&t->op);
    double *x = grid_alloc_field(g, 0), *xd = grid_alloc_field(g, 0);
    const uint8_t *mask = masked ? t->held : NULL;
    for (size_t c = 0; c < g->n; c++) x[c] = xd[c] = masked ? t->held_v[c] : 0.0;
    const double *b = with_b ? t->b : NULL;
    direct_solve(A, g->n, mask, b, xd);
    abl_pcg_system sys = {toy_apply, jacobi ? toy_jacobi : NULL, &t->op, mask, NULL, 0, 0.0};
    /* reference norm: ||b||_free, or the lifted right side A_fh x_h when b is zero */
    double bn;
    if (with_b) {
        bn = pcg_norm_free(cg, mask, b);
    } else {
        double *q = pcg_scratch(cg, 1);
        toy_apply(&t->op, x, q); /* x is zero at the free voxels here */
        bn = pcg_norm_free(cg, mask, q);
    }
    int it = -1;
    double res = -1.0;
    abl_status st = pcg_solve(cg, &sys, b, bn, x, &it, &res, &err);
    if (st) printf("\n  pcg: %s", err.msg);
    CU_ASSERT(st == ABL_OK);
    CU_ASSERT(res <= 1e-12 && it > 0);
    CU_ASSERT(tu_maxdiff(x, xd, g->n) <= 1e-10 * max_abs(xd, g->n));
    if (masked)
        for (size_t c = 0; c < g->n; c++)
            if (t->held[c]) CU_ASSERT(x[c] == t->held_v[c]);
    *iters_out = it;
    free(A);
    grid_free_field(x);
    grid_free_field(xd);
    pcg_destroy(cg);
}

static void test_direct(void)
{
    toy t;
    toy_init(&t);
    int it_cg, it_pcg, it_m, it_lift;
    check_case(&t, true, false, false, &it_cg);
    check_case(&t, true, false, true, &it_pcg);
    check_case(&t, true, true, true, &it_m);
    check_case(&t, false, true, false, &it_lift);
    printf("\n  120 unknowns, tol 1e-12: CG %d, Jacobi PCG %d, held %d / lifted %d iterations",
           it_cg, it_pcg, it_m, it_lift);
    toy_free(&t);
}

static void solve_threads(toy *t, int threads, double *x, int *it)
{
    const abl_grid *g = &t->g;
    abl_error err = {0};
    abl_pcg_opts o = {1e-13, 500, NULL, NULL, NULL, 0.0};
    abl_pcg *cg = NULL;
    CU_ASSERT_FATAL(pcg_create(g, &o, &cg, &err) == ABL_OK);
    const int old = omp_get_max_threads();
    omp_set_num_threads(threads);
    for (size_t c = 0; c < g->n; c++) x[c] = t->held_v[c];
    abl_pcg_system sys = {toy_apply, toy_jacobi, &t->op, t->held, NULL, 0, 0.0};
    double res;
    CU_ASSERT(pcg_solve(cg, &sys, t->b, pcg_norm_free(cg, t->held, t->b), x, it, &res, &err) ==
              ABL_OK);
    omp_set_num_threads(old);
    pcg_destroy(cg);
}

static void test_threads_bitwise(void)
{
    toy t;
    toy_init(&t);
    double *x1 = grid_alloc_field(&t.g, 0), *x2 = grid_alloc_field(&t.g, 0);
    int i1, i2;
    solve_threads(&t, 1, x1, &i1);
    solve_threads(&t, 2, x2, &i2);
    CU_ASSERT(i1 == i2);
    CU_ASSERT(memcmp(x1, x2, t.g.n * sizeof(double)) == 0);
    grid_free_field(x1);
    grid_free_field(x2);
    toy_free(&t);
}

/* Per-kernel timers (pcg.h prof, profile.h): the counts are exact and the timers never feed
 * back. A held, Jacobi-preconditioned solve: the operator runs once for the initial residual
 * and once per iteration (the toy counts its applies), the preconditioner once before the
 * first iteration and after each but the last, the vector work is one entry per solve with the
 * traffic pcg.c counts for those passes (r = b - Ax 24 B + mask 1 + r.r 8; per preconditioner
 * call 25; p = z 16; per iteration update 49 and, but the last, p update 24: exact sums of
 * integers times n). The solution equals the untimed one bit for bit. */
static void test_kernel_timers(void)
{
    toy t;
    toy_init(&t);
    const abl_grid *g = &t.g;
    double *x1 = grid_alloc_field(g, 0), *x2 = grid_alloc_field(g, 0);
    int i1, i2;
    solve_threads(&t, 2, x1, &i1);
    abl_error err = {0};
    abl_pcg_opts o = {1e-13, 500, NULL, NULL, NULL, 0.0};
    abl_pcg *cg = NULL;
    CU_ASSERT_FATAL(pcg_create(g, &o, &cg, &err) == ABL_OK);
    for (size_t c = 0; c < g->n; c++) x2[c] = t.held_v[c];
    abl_profile prof = {0};
    abl_pcg_system sys = {toy_apply, toy_jacobi, &t.op, t.held, &prof, ABL_KER_HEAT_OPERATOR, 100.0};
    double res;
    t.op.applies = 0;
    CU_ASSERT(pcg_solve(cg, &sys, t.b, pcg_norm_free(cg, t.held, t.b), x2, &i2, &res, &err) ==
              ABL_OK);
    CU_ASSERT(i1 == i2 && i2 > 1);
    CU_ASSERT(memcmp(x1, x2, g->n * sizeof(double)) == 0);
    CU_ASSERT_EQUAL(prof.kcalls[ABL_KER_HEAT_OPERATOR], (long)t.op.applies);
    CU_ASSERT_EQUAL(prof.kcalls[ABL_KER_HEAT_OPERATOR], i2 + 1);
    CU_ASSERT_EQUAL(prof.kbytes[ABL_KER_HEAT_OPERATOR], 100.0 * (i2 + 1));
    CU_ASSERT_EQUAL(prof.kcalls[ABL_KER_HEAT_PRECONDITIONER], i2);
    CU_ASSERT_EQUAL(prof.kcalls[ABL_KER_HEAT_VECTORS], 1);
    const double per_voxel = 33.0 + 25.0 * i2 + 16.0 + 49.0 * i2 + 24.0 * (i2 - 1);
    CU_ASSERT_EQUAL(prof.kbytes[ABL_KER_HEAT_VECTORS], per_voxel * (double)g->n);
    for (int k = 0; k < ABL_KER_N; k++) CU_ASSERT(prof.ks[k] >= 0.0);
    CU_ASSERT_EQUAL(prof.kcalls[ABL_KER_POTENTIAL_OPERATOR], 0); /* only the slots asked for */
    grid_free_field(x1);
    grid_free_field(x2);
    pcg_destroy(cg);
    toy_free(&t);
}

static void test_limits(void)
{
    toy t;
    toy_init(&t);
    const abl_grid *g = &t.g;
    abl_error err = {0};
    abl_pcg_opts o = {1e-14, 3, "toy: ", "raise max_iter", "check the weights", 0.0};
    abl_pcg *cg = NULL;
    CU_ASSERT_FATAL(pcg_create(g, &o, &cg, &err) == ABL_OK);
    double *x = grid_alloc_field(g, 0);
    abl_pcg_system sys = {toy_apply, NULL, &t.op, NULL, NULL, 0, 0.0};
    int it = -1;
    double res = -1.0;
    CU_ASSERT(pcg_solve(cg, &sys, t.b, pcg_norm_free(cg, NULL, t.b), x, &it, &res, &err) ==
              ABL_ENUM);
    CU_ASSERT(it == 3 && res > 1e-14 && res < 1.0);
    CU_ASSERT(strstr(err.msg, "toy: conjugate gradients did not reach") != NULL);
    CU_ASSERT(strstr(err.msg, "raise max_iter") != NULL);
    /* b_norm 0: nothing to do, x untouched, no operator application */
    for (size_t c = 0; c < g->n; c++) x[c] = 3.0;
    t.op.applies = 0;
    CU_ASSERT(pcg_solve(cg, &sys, t.b, 0.0, x, &it, &res, &err) == ABL_OK);
    CU_ASSERT(it == 0 && res == 0.0 && t.op.applies == 0 && x[7] == 3.0);
    grid_free_field(x);
    pcg_destroy(cg);
    toy_free(&t);
}

/* ---- multigrid preconditioner (multigrid.h) through the potential solver ------------------ */

static uint64_t mg_rng = 88172645463325252ull;
static double mg_rand(void) /* xorshift64: [0, 1), the same sequence on every platform */
{
    mg_rng ^= mg_rng << 13, mg_rng ^= mg_rng >> 7, mg_rng ^= mg_rng << 17;
    return (double)(mg_rng >> 11) * 0x1.0p-53;
}

/* A heterogeneous potential problem on a 34 x 30 x 36 grid of 1 mm (odd coarse dimensions 15, 9,
 * 5 give smaller edge aggregates; 4 levels): sigma random in [0.1, 1] S/m, 1e-4 times that in a
 * radius-3 cylinder around a line electrode (desiccated tissue) held at 1 V, a second held
 * block at 0.3 V, grounded x_min and z_max faces only. */
typedef struct {
    abl_grid g;
    double *sig, *V0;
    uint8_t *held;
} mg_case;

static void mg_case_init(mg_case *t)
{
    abl_error err = {0};
    const int dims[3] = {34, 30, 36};
    const double h[3] = {1e-3, 1e-3, 1e-3}, org[3] = {0, 0, 0};
    CU_ASSERT_FATAL(grid_init(&t->g, dims, h, org, &err) == ABL_OK);
    const abl_grid *g = &t->g;
    t->sig = grid_alloc_field(g, 0.0);
    t->V0 = grid_alloc_field(g, 0.0);
    t->held = grid_alloc_labels(g, 0);
    CU_ASSERT_FATAL(t->sig && t->V0 && t->held);
    mg_rng = 88172645463325252ull;
    for (int k = 0; k < g->nz; k++)
        for (int j = 0; j < g->ny; j++)
            for (int i = 0; i < g->nx; i++) {
                const size_t c = ABL_IDX(g, i, j, k);
                const double d2 = (i - 17) * (i - 17) + (j - 14) * (j - 14);
                t->sig[c] = 0.1 + 0.9 * mg_rand();
                if (d2 <= 9.0 && k >= 6 && k < 30) t->sig[c] *= 1e-4;
                if (i == 17 && j == 14 && k >= 8 && k < 28) t->held[c] = 1, t->V0[c] = 1.0;
                if (i >= 4 && i < 7 && j >= 20 && j < 24 && k >= 10 && k < 13)
                    t->held[c] = 1, t->V0[c] = 0.3;
            }
}

static void mg_case_free(mg_case *t)
{
    grid_free_field(t->sig);
    grid_free_field(t->V0);
    grid_free_field(t->held);
}

/* Solve from V0 with the given preconditioner and tolerance; returns the iterations. */
static int mg_case_solve(const mg_case *t, int pre, double tol, double *V)
{
    abl_error err = {0};
    const bool grounded[6] = {true, false, false, false, false, true};
    abl_potential_opts o = {tol, 5000, pre};
    abl_potential *p = NULL;
    CU_ASSERT_FATAL(potential_create(&t->g, grounded, &o, &p, &err) == ABL_OK);
    CU_ASSERT_FATAL(potential_set_conductivity(p, t->sig, t->held, true, &err) == ABL_OK);
    memcpy(V, t->V0, t->g.n * sizeof *V);
    int it = -1;
    double res;
    const abl_status st = potential_solve(p, V, NULL, &it, &res, &err);
    if (st) printf("\n  %s", err.msg);
    CU_ASSERT(st == ABL_OK);
    potential_destroy(p);
    return it;
}

/* Multigrid- and spectral-preconditioned CG reach the same potential. Both stop at a relative
 * residual of 1e-12 of the lifted right side b, so each is within ||K^-1|| 1e-12 ||b|| of the
 * exact discrete solution; with the held values O(1) V, ||K^-1|| ||b|| is at most kappa(K) V0
 * in the sense of the normwise bound ||e|| / ||x|| <= kappa ||r|| / ||b||, and kappa(K) here is
 * about (grid Laplacian: (2 n / pi)^2 ~ 5e2) x (contrast 1e5) ~ 5e7, so 1e-4 V would be the
 * pessimistic bound; the observed difference is ~1e-11 V, and 1e-6 V (1e-6 of the electrode
 * voltage) separates a right answer from a preconditioner that changes the solution (a
 * non-symmetric or indefinite B would stall CG or break down long before). Held values must be
 * untouched. */
static void test_mg_matches_spectral(void)
{
    mg_case t;
    mg_case_init(&t);
    const size_t n = t.g.n;
    double *Vs = grid_alloc_field(&t.g, 0.0), *Vm = grid_alloc_field(&t.g, 0.0);
    CU_ASSERT_FATAL(Vs && Vm);
    const int its = mg_case_solve(&t, ABL_PRECOND_SPECTRAL, 1e-12, Vs);
    const int itm = mg_case_solve(&t, ABL_PRECOND_MULTIGRID, 1e-12, Vm);
    double dmax = 0.0;
    bool held_kept = true;
    for (size_t c = 0; c < n; c++) {
        dmax = fmax(dmax, fabs(Vs[c] - Vm[c]));
        if (t.held[c] && Vm[c] != t.V0[c]) held_kept = false;
    }
    printf("\n  34x30x36, contrast 1e4, tol 1e-12: CG iterations spectral %d, multigrid %d; "
           "max |V_mg - V_spectral| = %.2e V",
           its, itm, dmax);
    CU_ASSERT(dmax < 1e-6);
    CU_ASSERT(held_kept);
    CU_ASSERT(itm > 0 && itm < 200);
    grid_free_field(Vs);
    grid_free_field(Vm);
    mg_case_free(&t);
}

/* The multigrid-preconditioned solve gives the same bits at 1 and 2 threads (red-black updates,
 * per-plane restriction, serial coarsest solve). */
static void test_mg_threads_bitwise(void)
{
    mg_case t;
    mg_case_init(&t);
    const size_t n = t.g.n;
    double *V[2] = {grid_alloc_field(&t.g, 0.0), grid_alloc_field(&t.g, 0.0)};
    CU_ASSERT_FATAL(V[0] && V[1]);
    int it[2];
    const int saved = omp_get_max_threads();
    for (int r = 0; r < 2; r++) {
        omp_set_num_threads(r + 1);
        it[r] = mg_case_solve(&t, ABL_PRECOND_MULTIGRID, 1e-8, V[r]);
    }
    omp_set_num_threads(saved);
    CU_ASSERT(it[0] == it[1]);
    CU_ASSERT(memcmp(V[0], V[1], n * sizeof(double)) == 0);
    grid_free_field(V[0]);
    grid_free_field(V[1]);
    mg_case_free(&t);
}

/* B = one V-cycle is symmetric positive definite on the free voxels: x.(B y) = y.(B x) to
 * rounding (1e-12 of sqrt(x.Bx y.By), the Cauchy-Schwarz scale of both sides), x.Bx > 0, and
 * B x = 0 at held voxels. Face conductances of the heterogeneous case, random vectors; also on
 * a grid small enough to be solved directly (one level: B = K^-1, K B x = x up to the single
 * precision of the stored coefficients). */
static double mg_dot_free(size_t n, const uint8_t *held, const double *a, const double *b)
{
    double s = 0.0;
    for (size_t c = 0; c < n; c++)
        if (!held[c]) s += a[c] * b[c];
    return s;
}

static void mg_faces(const abl_grid *g, const double *sig, double *gx, double *gy, double *gz,
                     double *gb)
{
    for (int k = 0; k < g->nz; k++)
        for (int j = 0; j < g->ny; j++)
            for (int i = 0; i < g->nx; i++) {
                const size_t c = ABL_IDX(g, i, j, k);
                /* harmonic-mean face conductance sigma_f / h^2, h = 1 mm */
#define HF(nb) (2.0 * sig[c] * sig[nb] / (sig[c] + sig[nb]) * 1e6)
                gx[c] = i < g->nx - 1 ? HF(c + 1) : 0.0;
                gy[c] = j < g->ny - 1 ? HF(c + g->sy) : 0.0;
                gz[c] = k < g->nz - 1 ? HF(c + g->sz) : 0.0;
#undef HF
                gb[c] = (i == 0) + (k == g->nz - 1) ? 2.0 * sig[c] * 1e6 : 0.0;
            }
}

static void test_mg_symmetric(void)
{
    mg_case t;
    mg_case_init(&t);
    for (int small = 0; small < 2; small++) {
        abl_grid gs;
        abl_error err = {0};
        const abl_grid *g = &t.g;
        if (small) { /* 4 x 5 x 6 = 120 voxels: the direct solve alone */
            const int dims[3] = {4, 5, 6};
            const double h[3] = {1e-3, 1e-3, 1e-3}, org[3] = {0, 0, 0};
            CU_ASSERT_FATAL(grid_init(&gs, dims, h, org, &err) == ABL_OK);
            g = &gs;
        }
        const size_t n = g->n;
        double *f[8];
        for (int q = 0; q < 8; q++) f[q] = grid_alloc_field(g, 0.0);
        double *gx = f[0], *gy = f[1], *gz = f[2], *gb = f[3], *x = f[4], *y = f[5], *Bx = f[6],
               *By = f[7];
        uint8_t *held = small ? grid_alloc_labels(g, 0) : t.held;
        const double *sig = t.sig; /* the small grid uses the first 120 values */
        if (small) held[7] = held[8] = 1;
        mg_faces(g, sig, gx, gy, gz, gb);
        abl_mg *mg = NULL;
        CU_ASSERT_FATAL(mg_create(g, &mg, &err) == ABL_OK);
        CU_ASSERT_FATAL(mg_setup(mg, gx, gy, gz, gb, held, &err) == ABL_OK);
        CU_ASSERT(small ? mg_levels(mg) == 1 : mg_levels(mg) == 4);
        double worst = 0.0, minq = 1.0;
        bool held_zero = true;
        for (int trial = 0; trial < 4; trial++) {
            /* the default cycle (1 sweep, alpha 1.8), then 2 sweeps and alpha 2 */
            if (trial == 2) mg_set_cycle(mg, 2, 2.0);
            for (size_t c = 0; c < n; c++) {
                x[c] = held[c] ? 0.0 : mg_rand() - 0.5;
                y[c] = held[c] ? 0.0 : mg_rand() - 0.5;
            }
            mg_apply(mg, x, Bx);
            mg_apply(mg, y, By);
            const double xBy = mg_dot_free(n, held, x, By), yBx = mg_dot_free(n, held, y, Bx),
                         xBx = mg_dot_free(n, held, x, Bx), yBy = mg_dot_free(n, held, y, By);
            worst = fmax(worst, fabs(xBy - yBx) / sqrt(xBx * yBy));
            minq = fmin(minq, fmin(xBx / mg_dot_free(n, held, x, x),
                                   yBy / mg_dot_free(n, held, y, y)));
            for (size_t c = 0; c < n; c++)
                if (held[c] && (Bx[c] != 0.0 || By[c] != 0.0)) held_zero = false;
        }
        printf("\n  %s: %d level(s), |x.By - y.Bx| / sqrt(x.Bx y.By) <= %.1e, "
               "min x.Bx / x.x = %.2e",
               small ? "4x5x6" : "34x30x36", mg_levels(mg), worst, minq);
        CU_ASSERT(worst < 1e-12);
        CU_ASSERT(minq > 0.0);
        CU_ASSERT(held_zero);
        if (small) { /* one level: B = K^-1 on the free voxels, so K (B x) = x there (the
                      * last x of the loop and its B x) */
            double e = 0.0;
            for (int k = 0; k < g->nz; k++)
                for (int j = 0; j < g->ny; j++)
                    for (int i = 0; i < g->nx; i++) {
                        const size_t c = ABL_IDX(g, i, j, k);
                        if (held[c]) continue;
                        double v = gb[c] * Bx[c];
#define NB(cond, G, nb) if (cond) v += (G) * (Bx[c] - (held[nb] ? 0.0 : Bx[nb]));
                        NB(i < g->nx - 1, gx[c], c + 1)
                        NB(i > 0, gx[c - 1], c - 1)
                        NB(j < g->ny - 1, gy[c], c + g->sy)
                        NB(j > 0, gy[c - g->sy], c - g->sy)
                        NB(k < g->nz - 1, gz[c], c + g->sz)
                        NB(k > 0, gz[c - g->sz], c - g->sz)
#undef NB
                        e = fmax(e, fabs(v - x[c]));
                    }
            /* B inverts K with its coefficients rounded to single precision (multigrid.c):
             * K B x - x = (K - K_float) B x, ~1e-7 of x (|x| <= 0.5) */
            printf(", max |K B x - x| = %.1e", e);
            CU_ASSERT(e < 1e-6);
        }
        mg_destroy(mg);
        for (int q = 0; q < 8; q++) grid_free_field(f[q]);
        if (small) grid_free_field(held);
    }
    mg_case_free(&t);
}

/* ---- multigrid preconditioner of the implicit heat step (implicit.h) ------------------- */


extern const char *hetero_yaml; /* test_kernels.c: 5 tissues, fixed / insulated / convective
                                 * faces, a scheduled heater and a held probe */

/* T after 20 backward-Euler steps of 2 s with the given time.preconditioner, threads threads;
 * its n voxels in *n. */
static double *implicit_run(const char *pre, int threads, size_t *n)
{
    char set[64];
    snprintf(set, sizeof set, "time.preconditioner=%s", pre);
    const char *sets[] = {"time.scheme=implicit", "time.dt_s=2", set};
    abl_scenario *sc = tu_scenario(hetero_yaml, sets, 3);
    CU_ASSERT_FATAL(sc != NULL);
    const int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    abl_sim *s = tu_sim(sc);
    abl_error err = {0};
    CU_ASSERT_FATAL(sim_step(s, 20, &err) == ABL_OK);
    omp_set_num_threads(saved);
    double *T = malloc(s->grid.n * sizeof *T);
    CU_ASSERT_FATAL(T != NULL);
    memcpy(T, s->T, s->grid.n * sizeof *T);
    *n = s->grid.n;
    sim_destroy(s);
    scenario_free(sc);
    return T;
}

/* The same implicit steps with the multigrid, spectral and no preconditioner. Each solve stops
 * at ||r|| <= 1e-8 ||b||; with C/dt dominant (dt 2 s, 1-1.5 mm: condition number about 3) the
 * temperature error per step is below 3 x 1e-8 x 90 K, and backward Euler does not amplify it:
 * 20 steps stay below 1e-4 K, the bound asserted. A preconditioner that changed the operator
 * would move T by kelvins (the heater adds 15 W). The multigrid run is bitwise the same at 1 and
 * 2 threads. */
static void test_mg_implicit(void)
{
    size_t n;
    double *Tm = implicit_run("multigrid", 2, &n), *Ts = implicit_run("spectral", 2, &n),
           *Tn = implicit_run("none", 2, &n), *T1 = implicit_run("multigrid", 1, &n);
    double ds = 0.0, dn = 0.0, Tmax = -INFINITY;
    for (size_t c = 0; c < n; c++) {
        ds = fmax(ds, fabs(Tm[c] - Ts[c]));
        dn = fmax(dn, fabs(Tm[c] - Tn[c]));
        Tmax = fmax(Tmax, Tm[c]);
    }
    printf("\n  hetero, backward Euler 20 x 2 s: max |T_mg - T_spectral| = %.1e K, |T_mg - "
           "T_none| = %.1e K (T_max %.1f C)",
           ds, dn, Tmax);
    CU_ASSERT(ds < 1e-4);
    CU_ASSERT(dn < 1e-4);
    CU_ASSERT(Tmax > 40.0); /* the heater did heat */
    CU_ASSERT(memcmp(Tm, T1, n * sizeof *Tm) == 0);
    free(Tm);
    free(Ts);
    free(Tn);
    free(T1);
}

void register_pcg_tests(void)
{
    CU_pSuite s = CU_add_suite("pcg", NULL, NULL);
    CU_add_test(s, "CG / Jacobi PCG / held voxels vs Cholesky", test_direct);
    CU_add_test(s, "same bits at 1 and 2 threads", test_threads_bitwise);
    CU_add_test(s, "per-kernel timers: exact counts, results unchanged", test_kernel_timers);
    CU_add_test(s, "max_iter reached, b_norm 0", test_limits);
    CU_add_test(s, "multigrid PCG: same potential as spectral (contrast 1e4, held voxels)",
                test_mg_matches_spectral);
    CU_add_test(s, "multigrid PCG: same bits at 1 and 2 threads", test_mg_threads_bitwise);
    CU_add_test(s, "multigrid implicit heat step: = spectral and plain CG, same bits at 1 and 2 "
                   "threads",
                test_mg_implicit);
    CU_add_test(s, "multigrid V-cycle: symmetric, positive, zero at held voxels",
                test_mg_symmetric);
}
