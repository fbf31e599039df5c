/* test_pcg.c - the masked PCG of pcg.h on a small SPD system against a direct (Cholesky)
 * answer:
 *  - plain and Jacobi-preconditioned CG reach the direct solution, with and without held
 *    voxels (held values unchanged, the free block solved with the held values lifted);
 *  - the same bits at 1 and 2 threads (pcg's own reductions and updates; the test operator
 *    is sequential);
 *  - max_iter reached: ABL_ENUM, iteration count and residual reported; b_norm 0: no-op.
 * The operator is a 7-point stencil on a 6 x 5 x 4 grid with random positive face weights
 * g in [0.1, 1.1] and a diagonal shift 1: A = shift I + sum_faces g (e_a - e_b)(e_a - e_b)^T,
 * symmetric with eigenvalues in [1, 1 + 4 * 3 * 1.1] (Gershgorin), so kappa(A) <= 14.2. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ablasim/pcg.h"
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
    abl_pcg_opts o = {1e-12, 500, "toy: ", "raise max_iter", "check the weights"};
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
    abl_pcg_opts o = {1e-13, 500, NULL, NULL, NULL};
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
    abl_pcg_opts o = {1e-13, 500, NULL, NULL, NULL};
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
    abl_pcg_opts o = {1e-14, 3, "toy: ", "raise max_iter", "check the weights"};
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

void register_pcg_tests(void)
{
    CU_pSuite s = CU_add_suite("pcg", NULL, NULL);
    CU_add_test(s, "CG / Jacobi PCG / held voxels vs Cholesky", test_direct);
    CU_add_test(s, "same bits at 1 and 2 threads", test_threads_bitwise);
    CU_add_test(s, "per-kernel timers: exact counts, results unchanged", test_kernel_timers);
    CU_add_test(s, "max_iter reached, b_norm 0", test_limits);
}
