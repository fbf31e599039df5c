/* pcg.c - masked preconditioned conjugate gradients (see pcg.h). */
#include "ablasim/pcg.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct abl_pcg {
    const abl_grid *g;
    abl_pcg_opts opts;
    double *v[4]; /* r (residual), z (preconditioned), p (direction), q (A p) */
    double *work; /* nz per-plane partial sums */
};

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
    double t = 0.0;
    for (int k = 0; k < g->nz; k++) t += work[k];
    return t;
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
    double t = 0.0;
    for (int k = 0; k < g->nz; k++) t += work[k];
    return sqrt(t);
}

void pcg_mask(const abl_pcg *s, const uint8_t *mask, double *v)
{
    if (!mask) return;
    const size_t n = s->g->n;
#pragma omp parallel for schedule(static)
    for (size_t c = 0; c < n; c++)
        if (mask[c]) v[c] = 0.0;
}

/* z = M^-1 r, zero at held voxels (without a preconditioner z = r, already zero there) */
static abl_status precondition(abl_pcg *s, const abl_pcg_system *sys, abl_error *err)
{
    if (!sys->precondition) {
        memcpy(s->v[1], s->v[0], s->g->n * sizeof(double));
        return ABL_OK;
    }
    abl_status st = sys->precondition(sys->ctx, s->v[0], s->v[1], err);
    if (st) return st;
    pcg_mask(s, sys->mask, s->v[1]);
    return ABL_OK;
}

abl_status pcg_solve(abl_pcg *s, const abl_pcg_system *sys, const double *b, double b_norm,
                     double *x, int *iterations, double *rel_residual, abl_error *err)
{
    const size_t n = s->g->n;
    const uint8_t *mask = sys->mask;
    const abl_pcg_opts *o = &s->opts;
    double *r = s->v[0], *z = s->v[1], *p = s->v[2], *q = s->v[3];
    abl_status st;
    *iterations = 0;
    *rel_residual = 0.0;
    if (b_norm == 0.0) return ABL_OK;

    /* r = b - A x over the free voxels */
    if (b) {
        sys->apply(sys->ctx, x, q);
#pragma omp parallel for schedule(static)
        for (size_t c = 0; c < n; c++) r[c] = b[c] - q[c];
    } else {
        sys->apply(sys->ctx, x, r);
#pragma omp parallel for schedule(static)
        for (size_t c = 0; c < n; c++) r[c] = -r[c];
    }
    pcg_mask(s, mask, r);
    double rn = sqrt(pcg_dot(s, r, r));
    int it = 0;
    if (rn > o->tol * b_norm) {
        if ((st = precondition(s, sys, err))) return st;
        memcpy(p, z, n * sizeof(double));
        double rz = pcg_dot(s, r, z);
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
            const double pq = sys->apply(sys->ctx, p, q);
            pcg_mask(s, mask, q);
            if (!(pq > 0.0))
                return abl_fail(err, ABL_ENUM,
                                "%sconjugate gradients broke down (p.Ap = %g): the system is not "
                                "positive definite; %s",
                                o->what, pq, o->hint_breakdown);
            const double alpha = rz / pq;
#pragma omp parallel for schedule(static)
            for (size_t c = 0; c < n; c++) {
                x[c] += alpha * p[c];
                r[c] -= alpha * q[c];
            }
            rn = sqrt(pcg_dot(s, r, r));
            it++;
            if (rn <= o->tol * b_norm) break;
            if ((st = precondition(s, sys, err))) return st;
            const double rz_new = pcg_dot(s, r, z);
            const double beta = rz_new / rz;
            rz = rz_new;
#pragma omp parallel for schedule(static)
            for (size_t c = 0; c < n; c++) p[c] = z[c] + beta * p[c];
        }
    }
    *iterations = it;
    *rel_residual = rn / b_norm;
    return ABL_OK;
}
