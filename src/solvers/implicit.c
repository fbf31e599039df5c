/* implicit.c - masked preconditioned CG for the implicit Pennes step (see implicit.h). */
#include "ablasim/implicit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ablasim/scenario.h"

struct abl_implicit {
    const abl_stencil *st;
    abl_spectral *sp; /* NULL without preconditioner */
    double C_mean, W_mean, k_mean;
    abl_cg_opts opts;
    double *r, *z, *p, *q, *work;
};

void implicit_destroy(abl_implicit *im)
{
    if (!im) return;
    spectral_destroy(im->sp);
    grid_free_field(im->r);
    grid_free_field(im->z);
    grid_free_field(im->p);
    grid_free_field(im->q);
    free(im->work);
    free(im);
}

abl_status implicit_create(const abl_stencil *st, const int bc_type[6], const double bc_h[6],
                           double C_mean, double W_mean, double k_mean, const abl_cg_opts *opts,
                           abl_implicit **out, abl_error *err)
{
    *out = NULL;
    abl_implicit *im = calloc(1, sizeof *im);
    if (!im) return abl_fail(err, ABL_ENOMEM, "out of memory (implicit solver)");
    im->st = st;
    im->opts = *opts;
    im->C_mean = C_mean;
    im->W_mean = W_mean;
    im->k_mean = k_mean;
    const abl_grid *g = st->g;
    im->r = grid_alloc_field(g, 0);
    im->z = grid_alloc_field(g, 0);
    im->p = grid_alloc_field(g, 0);
    im->q = grid_alloc_field(g, 0);
    im->work = malloc((size_t)g->nz * sizeof(double));
    if (!im->r || !im->z || !im->p || !im->q || !im->work) {
        implicit_destroy(im);
        return abl_fail(err, ABL_ENOMEM,
                        "out of memory for the CG vectors (%zu voxels x 32 B)", g->n);
    }
    if (opts->precondition) {
        /* A convective face behaves like a fixed wall when its Biot number h_conv (h/2) / k is
         * large and like an insulated one when it is small; the preconditioner only needs to
         * be close, CG makes the answer exact. */
        bool fixed[6];
        for (int f = 0; f < 6; f++) {
            if (bc_type[f] == BC_CONVECTIVE)
                fixed[f] = bc_h[f] * 0.5 * g->h_m[f / 2] / k_mean >= 1.0;
            else
                fixed[f] = bc_type[f] == BC_FIXED_TEMPERATURE;
        }
        abl_status s = spectral_create(g, fixed, &im->sp, err);
        if (s) {
            implicit_destroy(im);
            return s;
        }
    }
    *out = im;
    return ABL_OK;
}

/* Deterministic dot product: per z-plane partial sums added in plane order. */
static double dot(const abl_grid *g, const double *a, const double *b, double *work)
{
#pragma omp parallel for schedule(static)
    for (int k = 0; k < g->nz; k++) {
        double s = 0.0;
        for (size_t c = (size_t)k * g->sz; c < (size_t)(k + 1) * g->sz; c++) s += a[c] * b[c];
        work[k] = s;
    }
    double s = 0.0;
    for (int k = 0; k < g->nz; k++) s += work[k];
    return s;
}

static void mask(const abl_grid *g, const uint8_t *fixed, double *v)
{
    if (!fixed) return;
#pragma omp parallel for schedule(static)
    for (size_t c = 0; c < g->n; c++)
        if (fixed[c]) v[c] = 0.0;
}

static abl_status precondition(abl_implicit *im, double inv_dt, double theta, const uint8_t *fixed,
                               abl_error *err)
{
    const abl_grid *g = im->st->g;
    if (!im->sp) {
        memcpy(im->z, im->r, g->n * sizeof(double));
        return ABL_OK;
    }
    abl_status st = spectral_solve(im->sp, im->C_mean * inv_dt + theta * im->W_mean,
                                   theta * im->k_mean, im->r, im->z, err);
    mask(g, fixed, im->z);
    return st;
}

abl_status implicit_solve(abl_implicit *im, const double *kv, const double *Wv, double inv_dt,
                          double theta, const double *rhs, const uint8_t *fixed, double *x,
                          int *iterations, double *rel_residual, abl_error *err)
{
    const abl_stencil *st = im->st;
    const abl_grid *g = st->g;
    const size_t n = g->n;
    double *r = im->r, *z = im->z, *p = im->p, *q = im->q;
    abl_status s;
    *iterations = 0;
    *rel_residual = 0.0;

    /* r = rhs - K x over the free voxels */
    implicit_matvec(st, kv, Wv, inv_dt, theta, x, q, im->work);
#pragma omp parallel for schedule(static)
    for (size_t c = 0; c < n; c++) r[c] = rhs[c] - q[c];
    mask(g, fixed, r);
    /* Tolerance relative to the right-hand side over the free voxels, ||r|| <= tol ||b||, the
     * usual definition (PETSc, MATLAB pcg): with the previous temperature as the initial guess,
     * a step that changes little costs few iterations. Since C/dt dominates K, the temperature
     * error left is about tol * |T| (tol 1e-8: < 1e-6 K). */
    memcpy(q, rhs, n * sizeof(double));
    mask(g, fixed, q);
    const double r0 = sqrt(dot(g, q, q, im->work));
    if (r0 == 0.0) return ABL_OK;
    if ((s = precondition(im, inv_dt, theta, fixed, err))) return s;
    memcpy(p, z, n * sizeof(double));
    double rz = dot(g, r, z, im->work);
    double rn = sqrt(dot(g, r, r, im->work));
    int it = 0;
    while (rn > im->opts.tol * r0) {
        if (it >= im->opts.max_iter) {
            *iterations = it;
            *rel_residual = rn / r0;
            return abl_fail(err, ABL_ENUM,
                            "conjugate gradients did not reach the relative residual %.1e in %d "
                            "iterations (reached %.2e); raise time.max_iterations, loosen "
                            "time.solver_tolerance or reduce dt_s",
                            im->opts.tol, it, rn / r0);
        }
        /* q = K p: p is zero at fixed voxels, and q there is discarded */
        double pq = implicit_matvec(st, kv, Wv, inv_dt, theta, p, q, im->work);
        if (fixed) {
            /* the fused dot included fixed voxels' q; p is zero there, so it added nothing */
            mask(g, fixed, q);
        }
        if (!(pq > 0.0))
            return abl_fail(err, ABL_ENUM,
                            "conjugate gradients broke down (p.Ap = %g): the system is not "
                            "positive definite; check tissue properties and dt_s",
                            pq);
        const double alpha = rz / pq;
#pragma omp parallel for schedule(static)
        for (size_t c = 0; c < n; c++) {
            x[c] += alpha * p[c];
            r[c] -= alpha * q[c];
        }
        rn = sqrt(dot(g, r, r, im->work));
        it++;
        if (rn <= im->opts.tol * r0) break;
        if ((s = precondition(im, inv_dt, theta, fixed, err))) return s;
        const double rz_new = dot(g, r, z, im->work);
        const double beta = rz_new / rz;
        rz = rz_new;
#pragma omp parallel for schedule(static)
        for (size_t c = 0; c < n; c++) p[c] = z[c] + beta * p[c];
    }
    *iterations = it;
    *rel_residual = rn / r0;
    return ABL_OK;
}
