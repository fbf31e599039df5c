/* pcg.c - masked preconditioned conjugate gradients (see pcg.h). */
#include "ablasim/pcg.h"

#include <math.h>
#include <omp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ablasim/profile.h"

struct abl_pcg {
    const abl_grid *g;
    abl_pcg_opts opts;
    double fixed_ref, last_ref; /* pcg_set_reference (0: none), pcg_last_reference */
    double *v[4]; /* r (residual), z (preconditioned), p (direction), q (A p) */
    double *work; /* nz per-plane partial sums */
};

double pcg_last_reference(const abl_pcg *s)
{
    return s->last_ref;
}

void pcg_set_reference(abl_pcg *s, double ref)
{
    s->fixed_ref = ref > 0.0 ? ref : 0.0;
}

void pcg_destroy(abl_pcg *s)
{
    if (!s) return;
    for (int i = 0; i < 4; i++) grid_free_field(s->v[i]);
    free(s->work);
    free(s);
}

abl_status pcg_create(const abl_grid *g, const abl_pcg_opts *opts, abl_pcg **out,
                      abl_error *err)
{
    *out = NULL;
    abl_pcg *s = calloc(1, sizeof *s);
    if (!s) return abl_fail(err, ABL_ENOMEM, "out of memory (conjugate gradients)");
    s->g = g;
    s->opts = *opts;
    if (!s->opts.what) s->opts.what = "";
    if (!s->opts.hint_max_iter) s->opts.hint_max_iter = "raise the iteration limit";
    if (!s->opts.hint_breakdown) s->opts.hint_breakdown = "check the coefficients";
    bool ok = (s->work = malloc((size_t)g->nz * sizeof(double))) != NULL;
    for (int i = 0; i < 4; i++) ok = (s->v[i] = grid_alloc_field(g, 0.0)) && ok;
    if (!ok) {
        pcg_destroy(s);
        return abl_fail(err, ABL_ENOMEM, "%sout of memory for the CG vectors (%zu voxels x 32 B)",
                        opts->what ? opts->what : "", g->n);
    }
    *out = s;
    return ABL_OK;
}

double *pcg_scratch(abl_pcg *s, int which)
{
    return s->v[which ? 3 : 2]; /* q or p */
}

/* The per-plane partial sums in work, added in plane order. */
static double plane_total(const abl_pcg *s)
{
    double t = 0.0;
    for (int k = 0; k < s->g->nz; k++) t += s->work[k];
    return t;
}

/* Per z-plane partial sums added in plane order. */
double pcg_dot(abl_pcg *s, const double *a, const double *b)
{
    const abl_grid *g = s->g;
    double *work = s->work;
#pragma omp parallel for schedule(static)
    for (int k = 0; k < g->nz; k++) {
        double t = 0.0;
        for (size_t c = (size_t)k * g->sz; c < (size_t)(k + 1) * g->sz; c++) t += a[c] * b[c];
        work[k] = t;
    }
    return plane_total(s);
}

/* Skipping a held voxel adds nothing where the masked copy would add +0.0 * +0.0 to a sum
 * that is >= +0.0 (or NaN): the same bits. */
double pcg_norm_free(abl_pcg *s, const uint8_t *mask, const double *v)
{
    if (!mask) return sqrt(pcg_dot(s, v, v));
    const abl_grid *g = s->g;
    double *work = s->work;
#pragma omp parallel for schedule(static)
    for (int k = 0; k < g->nz; k++) {
        double t = 0.0;
        for (size_t c = (size_t)k * g->sz; c < (size_t)(k + 1) * g->sz; c++)
            if (!mask[c]) t += v[c] * v[c];
        work[k] = t;
    }
    return sqrt(plane_total(s));
}

void pcg_mask(const abl_pcg *s, const uint8_t *mask, double *v)
{
    if (!mask) return;
    const size_t n = s->g->n;
#pragma omp parallel for schedule(static)
    for (size_t c = 0; c < n; c++)
        if (mask[c]) v[c] = 0.0;
}

/* The iteration's vector work in two fused passes (one read of each vector instead of two or
 * three); the sums are per z-plane, planes in order, so they do not depend on the thread
 * count. */

/* x += alpha p, r -= alpha q (r stays 0 at held voxels, where q is discarded); returns r.r */
static double update_xr(abl_pcg *s, const uint8_t *restrict mask, double alpha, double *restrict x,
                        double *restrict r, const double *restrict p, const double *restrict q)
{
    const abl_grid *g = s->g;
    double *work = s->work;
    const size_t sz = g->sz;
#pragma omp parallel for schedule(static)
    for (int k = 0; k < g->nz; k++) {
        const size_t c0 = (size_t)k * sz;
        double t = 0.0;
        if (mask) {
#pragma omp simd reduction(+ : t)
            for (size_t c = c0; c < c0 + sz; c++) {
                x[c] += alpha * p[c];
                const double rc = mask[c] ? 0.0 : r[c] - alpha * q[c];
                r[c] = rc;
                t += rc * rc;
            }
        } else {
#pragma omp simd reduction(+ : t)
            for (size_t c = c0; c < c0 + sz; c++) {
                x[c] += alpha * p[c];
                const double rc = r[c] - alpha * q[c];
                r[c] = rc;
                t += rc * rc;
            }
        }
        work[k] = t;
    }
    return plane_total(s);
}

/* z = 0 at held voxels; returns r.z */
static double mask_dot(abl_pcg *s, const uint8_t *restrict mask, const double *restrict r,
                       double *restrict z)
{
    const abl_grid *g = s->g;
    double *work = s->work;
    const size_t sz = g->sz;
#pragma omp parallel for schedule(static)
    for (int k = 0; k < g->nz; k++) {
        const size_t c0 = (size_t)k * sz;
        double t = 0.0;
        if (mask) {
#pragma omp simd reduction(+ : t)
            for (size_t c = c0; c < c0 + sz; c++) {
                const double zc = mask[c] ? 0.0 : z[c];
                z[c] = zc;
                t += r[c] * zc;
            }
        } else {
#pragma omp simd reduction(+ : t)
            for (size_t c = c0; c < c0 + sz; c++) t += r[c] * z[c];
        }
        work[k] = t;
    }
    return plane_total(s);
}

/* The per-kernel clock of one solve (profile.h), when the system asks for it: operator and
 * preconditioner time and calls; the vector passes' minimum traffic per voxel (B), counted
 * pass by pass (mask bytes included). The vector time is the rest of the solve's. */
typedef struct {
    bool on;
    double t_apply, t_pre;
    long n_apply, n_pre;
    double vec_B_per_voxel;
} cg_clock;

static inline double clock_now(const cg_clock *ck)
{
    return ck->on ? omp_get_wtime() : 0.0;
}

static inline double timed_apply(const abl_pcg_system *sys, cg_clock *ck, const double *x,
                                 double *y)
{
    const double t0 = clock_now(ck);
    const double d = sys->apply(sys->ctx, x, y);
    ck->t_apply += clock_now(ck) - t0;
    ck->n_apply++;
    return d;
}

/* z = M^-1 r, zero at held voxels (without a preconditioner z = r, already zero there);
 * returns r.z */
static abl_status precondition(abl_pcg *s, const abl_pcg_system *sys, double *rz, cg_clock *ck,
                               abl_error *err)
{
    const double mB = sys->mask ? 1.0 : 0.0;
    if (!sys->precondition) {
        memcpy(s->v[1], s->v[0], s->g->n * sizeof(double));
        ck->vec_B_per_voxel += 16.0;
    } else {
        const double t0 = clock_now(ck);
        abl_status st = sys->precondition(sys->ctx, s->v[0], s->v[1], err);
        ck->t_pre += clock_now(ck) - t0;
        ck->n_pre++;
        if (st) return st;
    }
    *rz = mask_dot(s, sys->mask, s->v[0], s->v[1]);
    ck->vec_B_per_voxel += 24.0 + mB; /* r, z read; z written */
    return ABL_OK;
}

abl_status pcg_solve(abl_pcg *s, const abl_pcg_system *sys, const double *b, double b_norm,
                     double *x, int *iterations, double *rel_residual, abl_error *err)
{
    return pcg_solve_ax(s, sys, b, b_norm, x, NULL, iterations, rel_residual, err);
}

static abl_status solve(abl_pcg *s, const abl_pcg_system *sys, const double *b, double b_norm,
                        double *x, const double *Ax, int *iterations, double *rel_residual,
                        cg_clock *ck, abl_error *err);

abl_status pcg_solve_ax(abl_pcg *s, const abl_pcg_system *sys, const double *b, double b_norm,
                        double *x, const double *Ax, int *iterations, double *rel_residual,
                        abl_error *err)
{
    cg_clock ck = {.on = sys->prof != NULL};
    const double t0 = clock_now(&ck);
    const abl_status st = solve(s, sys, b, b_norm, x, Ax, iterations, rel_residual, &ck, err);
    if (ck.on) {
        const double total = omp_get_wtime() - t0, n = (double)s->g->n;
        abl_profile *pf = sys->prof;
        const int k = sys->prof_first;
        prof_kernel(pf, k + ABL_KER_CG_OPERATOR, ck.t_apply, ck.n_apply,
                    (double)ck.n_apply * sys->apply_bytes);
        if (ck.n_pre) prof_kernel(pf, k + ABL_KER_CG_PRECONDITIONER, ck.t_pre, ck.n_pre, 0.0);
        prof_kernel(pf, k + ABL_KER_CG_VECTORS, total - ck.t_apply - ck.t_pre, 1,
                    ck.vec_B_per_voxel * n);
    }
    return st;
}

static abl_status solve(abl_pcg *s, const abl_pcg_system *sys, const double *b, double b_norm,
                        double *x, const double *Ax, int *iterations, double *rel_residual,
                        cg_clock *ck, abl_error *err)
{
    const double mB = sys->mask ? 1.0 : 0.0;
    const size_t n = s->g->n;
    const uint8_t *mask = sys->mask;
    const abl_pcg_opts *o = &s->opts;
    double *r = s->v[0], *z = s->v[1], *p = s->v[2], *q = s->v[3];
    abl_status st;
    *iterations = 0;
    *rel_residual = 0.0;
    if (b_norm == 0.0) return ABL_OK;

    /* r = b - A x over the free voxels */
    if (!Ax) {
        timed_apply(sys, ck, x, q);
        Ax = q;
    }
    if (b) {
#pragma omp parallel for schedule(static)
        for (size_t c = 0; c < n; c++) r[c] = b[c] - Ax[c];
    } else {
#pragma omp parallel for schedule(static)
        for (size_t c = 0; c < n; c++) r[c] = -Ax[c];
    }
    pcg_mask(s, mask, r);
    double rn = sqrt(pcg_dot(s, r, r));
    ck->vec_B_per_voxel += (b ? 24.0 : 16.0) + mB + 8.0; /* r = b - Ax; mask; r.r */
    /* the reference of the stopping test (pcg.h initial_floor, pcg_set_reference) */
    if (s->fixed_ref > 0.0) b_norm = s->fixed_ref;
    else if (o->initial_floor > 0.0) b_norm = fmax(rn, o->initial_floor * b_norm);
    s->last_ref = b_norm;
    int it = 0;
    if (rn > o->tol * b_norm) {
        double rz;
        if ((st = precondition(s, sys, &rz, ck, err))) return st;
        memcpy(p, z, n * sizeof(double));
        ck->vec_B_per_voxel += 16.0;
        for (;;) {
            if (it >= o->max_iter) {
                *iterations = it;
                *rel_residual = rn / b_norm;
                return abl_fail(err, ABL_ENUM,
                                "%sconjugate gradients did not reach the relative residual %.1e "
                                "in %d iterations (reached %.2e); %s",
                                o->what, o->tol, it, rn / b_norm, o->hint_max_iter);
            }
            /* q = A p: p is zero at held voxels, so the fused dot is the free voxels' p.Ap;
             * q there is discarded */
            const double pq = timed_apply(sys, ck, p, q);
            if (!(pq > 0.0))
                return abl_fail(err, ABL_ENUM,
                                "%sconjugate gradients broke down (p.Ap = %g): the system is not "
                                "positive definite; %s",
                                o->what, pq, o->hint_breakdown);
            const double alpha = rz / pq;
            rn = sqrt(update_xr(s, mask, alpha, x, r, p, q));
            ck->vec_B_per_voxel += 48.0 + mB; /* x, p, r, q read; x, r written */
            it++;
            if (rn <= o->tol * b_norm) break;
            double rz_new;
            if ((st = precondition(s, sys, &rz_new, ck, err))) return st;
            const double beta = rz_new / rz;
            rz = rz_new;
#pragma omp parallel for schedule(static)
            for (size_t c = 0; c < n; c++) p[c] = z[c] + beta * p[c];
            ck->vec_B_per_voxel += 24.0; /* z, p read; p written */
        }
    }
    *iterations = it;
    *rel_residual = rn / b_norm;
    return ABL_OK;
}
