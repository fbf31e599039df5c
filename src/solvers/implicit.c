/* implicit.c - the implicit Pennes step: operator and preconditioners (spectral or multigrid)
 * for the masked PCG of pcg.h (see implicit.h). */
#include "ablasim/implicit.h"

#include <stdbool.h>
#include <stdlib.h>

#include "ablasim/multigrid.h"
#include "ablasim/pcg.h"
#include "ablasim/profile.h"
#include "ablasim/grid.h" /* abl_bc, FACE_*: the grid's, not the scenario's */

/* The floor of the heat step's CG reference, as a fraction of ||b|| (pcg.h initial_floor):
 * where a step barely changes T, the error it may leave is tol x 1e-4 |T| (tol 1e-8 at 37 C:
 * 4e-11 K; 1e4 such steps 4e-7 K), not tol times a vanishing change, which costs iterations
 * for nothing. Measured (session 30): 1e-4 keeps the accuracy of 1e-6 on the small-step test
 * (suite energy) and costs Crank-Nicolson on liver_demo 1.6x the time of the old ||b||
 * reference (5.5 -> 8.8 s; 1e-6: 10.6 s); 1e-3 lost 20x of the accuracy. */
#define IMPLICIT_INITIAL_FLOOR 1e-4

struct abl_implicit {
    const abl_stencil *st;
    abl_spectral *sp; /* spectral preconditioner, else NULL */
    abl_mg *mg;       /* multigrid preconditioner, else NULL */
    double *fx, *fy, *fz, *fb; /* multigrid: the operator's faces and diagonal, per solve */
    /* what the levels were built for (constant properties: rebuilt only when one changes) */
    bool mg_valid;
    double mg_inv_dt, mg_theta;
    uint8_t *mg_fixed; /* [n] copy of the held mask (0 where none) */
    size_t mg_dg_n, mg_dg_cap;
    size_t *mg_dg_idx;
    double *mg_dg_G;
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
    mg_destroy(im->mg);
    grid_free_field(im->fx);
    grid_free_field(im->fy);
    grid_free_field(im->fz);
    grid_free_field(im->fb);
    free(im->mg_fixed);
    free(im->mg_dg_idx);
    free(im->mg_dg_G);
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
                                              "check tissue properties and dt_s",
                                              IMPLICIT_INITIAL_FLOOR},
                              &im->cg, err);
    if (!s && !(im->work = malloc((size_t)g->nz * sizeof(double))))
        s = abl_fail(err, ABL_ENOMEM, "out of memory (implicit solver)");
    if (!s && opts->preconditioner == ABL_PRECOND_MULTIGRID) {
        im->fx = grid_alloc_field(g, 0.0);
        im->fy = grid_alloc_field(g, 0.0);
        im->fz = grid_alloc_field(g, 0.0);
        im->fb = grid_alloc_field(g, 0.0);
        im->mg_fixed = calloc(g->n, 1);
        if (!im->fx || !im->fy || !im->fz || !im->fb || !im->mg_fixed)
            s = abl_fail(err, ABL_ENOMEM,
                         "out of memory for the multigrid preconditioner (%zu voxels x 32 B)",
                         g->n);
        else
            s = mg_create(g, &im->mg, err);
    }
    if (!s && opts->preconditioner == ABL_PRECOND_SPECTRAL) {
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

/* the mean-coefficient operator inverted exactly (spectral.h), or one V-cycle on the operator
 * itself (multigrid.h, levels built by build_multigrid for this solve) */
static abl_status precondition(void *ctx, const double *r, double *z, abl_error *err)
{
    abl_implicit *im = ctx;
    if (im->mg) {
        mg_apply(im->mg, r, z);
        return ABL_OK;
    }
    return spectral_solve(im->sp, im->C_mean * im->inv_dt + im->theta * im->W_mean,
                          im->theta * im->k_mean, r, z, err);
}

/* The operator (C/dt - theta A + theta G_extra) as multigrid.h takes it: face conductances
 * theta G between neighbours (G the stencil's: the material tables, or the harmonic mean of the
 * per-voxel k on the variable-property path, the expressions of pennes_op_ex and
 * pennes_op_var_ex), and per voxel the diagonal-only part C/dt + theta (W + the domain faces'
 * G_b) plus theta times the extra diagonal of implicit_set_diagonal (in list order). The
 * preconditioner only has to be close and symmetric; CG makes the answer exact. */
/* Whether the levels built last still describe this solve's operator: constant properties
 * (per-voxel k and W change every step), the same C/dt and theta, the same held voxels and the
 * same extra diagonal. Records this solve's inputs when not (false: rebuild). */
static bool multigrid_current(abl_implicit *im, const uint8_t *fixed)
{
    const size_t n = im->st->g->n;
    bool same = im->mg_valid && !im->kv && im->mg_inv_dt == im->inv_dt &&
                im->mg_theta == im->theta && im->mg_dg_n == im->dg_n;
    for (size_t q = 0; same && q < im->dg_n; q++)
        same = im->mg_dg_idx[q] == im->dg_idx[q] && im->mg_dg_G[q] == im->dg_G[q];
    for (size_t c = 0; same && c < n; c++) same = im->mg_fixed[c] == (fixed ? fixed[c] : 0);
    if (same) return true;
    im->mg_valid = false;
    if (im->dg_n > im->mg_dg_cap) {
        size_t *pi = realloc(im->mg_dg_idx, im->dg_n * sizeof *pi);
        if (pi) im->mg_dg_idx = pi;
        double *pg = pi ? realloc(im->mg_dg_G, im->dg_n * sizeof *pg) : NULL;
        if (pg) im->mg_dg_G = pg;
        if (!pi || !pg) return false; /* rebuilt every time: correct, only slower */
        im->mg_dg_cap = im->dg_n;
    }
    for (size_t q = 0; q < im->dg_n; q++) {
        im->mg_dg_idx[q] = im->dg_idx[q];
        im->mg_dg_G[q] = im->dg_G[q];
    }
    for (size_t c = 0; c < n; c++) im->mg_fixed[c] = fixed ? fixed[c] : 0;
    im->mg_inv_dt = im->inv_dt;
    im->mg_theta = im->theta;
    im->mg_dg_n = im->dg_n;
    im->mg_valid = !im->kv;
    return false;
}

static abl_status build_multigrid(abl_implicit *im, const uint8_t *fixed, abl_error *err)
{
    if (multigrid_current(im, fixed)) return ABL_OK;
    const abl_stencil *st = im->st;
    const abl_grid *g = st->g;
    const int nx = g->nx, ny = g->ny, nz = g->nz, nm = st->nmat;
    const size_t sy = g->sy, sz = g->sz, nm2 = (size_t)nm * (size_t)nm;
    const double th = im->theta, idt = im->inv_dt, *kv = im->kv, *Wv = im->Wv;
    const double ih2[3] = {1.0 / (g->h_m[0] * g->h_m[0]), 1.0 / (g->h_m[1] * g->h_m[1]),
                           1.0 / (g->h_m[2] * g->h_m[2])};
#pragma omp parallel for schedule(static)
    for (int k = 0; k < nz; k++)
        for (int j = 0; j < ny; j++)
            for (int i = 0; i < nx; i++) {
                const size_t c = ABL_IDX(g, i, j, k);
                const int m = st->material[c];
                const int at[6] = {i == 0, i == nx - 1, j == 0, j == ny - 1, k == 0, k == nz - 1};
                const size_t nb[3] = {c + 1, c + sy, c + sz};
                const int last[3] = {i == nx - 1, j == ny - 1, k == nz - 1};
                double *fa[3] = {im->fx, im->fy, im->fz};
                double walls = 0.0;
                for (int d = 0; d < 3; d++) {
                    double G = 0.0;
                    if (!last[d])
                        G = kv ? abl_face_conductance(kv[c], kv[nb[d]], ih2[d])
                               : st->gface[(size_t)d * nm2 + (size_t)m * (size_t)nm +
                                           st->material[nb[d]]];
                    fa[d][c] = th * G;
                }
                for (int f = 0; f < 6; f++)
                    if (at[f])
                        walls += kv ? abl_boundary_conductance(st->bc_type[f], st->bc_h_W_m2K[f],
                                                               kv[c], g->h_m[f / 2])
                                    : st->gbound[(size_t)f * (size_t)nm + (size_t)m];
                const double W = kv ? Wv[c] : st->perf_W[m];
                im->fb[c] = idt / st->inv_rhoc[m] + th * (W + walls);
            }
    for (size_t q = 0; q < im->dg_n; q++) im->fb[im->dg_idx[q]] += th * im->dg_G[q];
    return mg_setup(im->mg, im->fx, im->fy, im->fz, im->fb, fixed, err);
}

void implicit_same_step(abl_implicit *im, bool same_step)
{
    pcg_set_reference(im->cg, same_step ? pcg_last_reference(im->cg) : 0.0);
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
    if (im->mg) {
        abl_status st = build_multigrid(im, fixed, err);
        if (st) return st;
    }
    const abl_pcg_system sys = {apply, (im->sp || im->mg) ? precondition : NULL, im, fixed,
                                im->prof, ABL_KER_HEAT_OPERATOR, op_B * (double)im->st->g->n};
    /* Tolerance relative to the step's initial residual ||b - A T_old|| (pcg.h
     * initial_floor), at least IMPLICIT_INITIAL_FLOOR ||b||: the error a step leaves is about
     * tol times the step's change of T (or tol x 1e-4 |T| where T barely changes). Relative to
     * ||b|| alone, the usual definition (PETSc, MATLAB pcg), it was tol |T| whatever dt, since
     * C/dt dominates K and b holds the 37 C level: a 10x smaller step was 18x less accurate
     * (numerics review, session 30; docs/VERIFICATION.md). b = 0: x is left as it is. */
    const double b_norm = pcg_norm_free(im->cg, fixed, rhs);
    return pcg_solve(im->cg, &sys, rhs, b_norm, x, iterations, rel_residual, err);
}
