/* implicit.c - the implicit Pennes step: operator and spectral preconditioner for the masked
 * PCG of pcg.h (see implicit.h). */
#include "ablasim/implicit.h"

#include <stdlib.h>

#include "ablasim/pcg.h"
#include "ablasim/profile.h"
#include "ablasim/grid.h" /* abl_bc, FACE_*: the grid's, not the scenario's */

struct abl_implicit {
    const abl_stencil *st;
    abl_spectral *sp; /* NULL without preconditioner */
    double C_mean, W_mean, k_mean;
    abl_pcg *cg;
    double *work; /* nz: the matvec's per-plane sums */
    /* the current solve's coefficients, read by the callbacks */
    const double *kv, *Wv;
    double inv_dt, theta;
    const size_t *dg_idx; /* implicit_set_diagonal */
    const double *dg_G;
    size_t dg_n;
    abl_profile *prof; /* per-kernel timers (NULL: none) */
};

void implicit_destroy(abl_implicit *im)
{
    if (!im) return;
    spectral_destroy(im->sp);
    pcg_destroy(im->cg);
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
    im->C_mean = C_mean;
    im->W_mean = W_mean;
    im->k_mean = k_mean;
    const abl_grid *g = st->g;
    abl_status s = pcg_create(g,
                              &(abl_pcg_opts){opts->tol, opts->max_iter, "",
                                              "raise time.max_iterations, loosen "
                                              "time.solver_tolerance or reduce dt_s",
                                              "check tissue properties and dt_s"},
                              &im->cg, err);
    if (!s && !(im->work = malloc((size_t)g->nz * sizeof(double))))
        s = abl_fail(err, ABL_ENOMEM, "out of memory (implicit solver)");
    if (!s && opts->precondition) {
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
        s = spectral_create(g, fixed, &im->sp, err);
    }
    if (s) {
        implicit_destroy(im);
        return s;
    }
    *out = im;
    return ABL_OK;
}

/* y = (C/dt - theta A) x (kernels.h), p.Ap fused; then theta G x at the extra diagonal's
 * voxels, its x.y part added after the plane sums in list order (deterministic) */
static double apply(void *ctx, const double *restrict x, double *restrict y)
{
    abl_implicit *im = ctx;
    double d = implicit_matvec(im->st, im->kv, im->Wv, im->inv_dt, im->theta, x, y, im->work);
    for (size_t q = 0; q < im->dg_n; q++) {
        const size_t c = im->dg_idx[q];
        const double a = im->theta * im->dg_G[q] * x[c];
        y[c] += a;
        d += a * x[c];
    }
    return d;
}

void implicit_set_profile(abl_implicit *im, abl_profile *prof)
{
    im->prof = prof;
}

void implicit_set_diagonal(abl_implicit *im, const size_t *idx, const double *G_W_m3K, size_t n)
{
    im->dg_idx = idx;
    im->dg_G = G_W_m3K;
    im->dg_n = n;
}

/* the mean-coefficient operator inverted exactly (spectral.h) */
static abl_status precondition(void *ctx, const double *r, double *z, abl_error *err)
{
    abl_implicit *im = ctx;
    return spectral_solve(im->sp, im->C_mean * im->inv_dt + im->theta * im->W_mean,
                          im->theta * im->k_mean, r, z, err);
}

abl_status implicit_solve(abl_implicit *im, const double *kv, const double *Wv, double inv_dt,
                          double theta, const double *rhs, const uint8_t *fixed, double *x,
                          int *iterations, double *rel_residual, abl_error *err)
{
    im->kv = kv;
    im->Wv = Wv;
    im->inv_dt = inv_dt;
    im->theta = theta;
    /* operator traffic per voxel: the planned form streams x and y (24 B with y's
     * write-allocate, as the explicit sweep); the general one also reads k, W and the material
     * byte (41 B) */
    const double op_B = (!kv && im->st->seg) ? 24.0 : 41.0;
    const abl_pcg_system sys = {apply,    im->sp ? precondition : NULL, im, fixed, im->prof,
                                ABL_KER_HEAT_OPERATOR, op_B * (double)im->st->g->n};
    /* Tolerance relative to the right-hand side over the free voxels, ||r|| <= tol ||b||, the
     * usual definition (PETSc, MATLAB pcg): with the previous temperature as the initial guess,
     * a step that changes little costs few iterations. Since C/dt dominates K, the temperature
     * error left is about tol * |T| (tol 1e-8: < 1e-6 K). b = 0: x is left as it is. */
    const double b_norm = pcg_norm_free(im->cg, fixed, rhs);
    return pcg_solve(im->cg, &sys, rhs, b_norm, x, iterations, rel_residual, err);
}
