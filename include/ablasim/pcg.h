/* pcg.h - masked preconditioned conjugate gradients on a voxel grid: the one CG implementation
 * behind every symmetric positive definite solve of ablasim (the implicit heat step of
 * implicit.h, the electric potential of potential.h).
 *
 * What it solves: A x = b on the free voxels, A symmetric positive definite there. Held voxels
 * (mask[c] != 0: pinned temperatures, electrodes) are removed from the unknowns: their values
 * sit in x and are never changed, and the residual, search direction and preconditioned
 * residual are kept at zero there, so CG works on the SPD free block. The caller owns the
 * operator and the preconditioner and passes them as callbacks on whole vectors (abl_pcg_system),
 * so its hot loops (planned segment sweeps, face-conductance rows) stay where they are and
 * inline their coefficients; the indirection costs one call per iteration, not per voxel.
 *
 * Plan / execute / destroy: pcg_create allocates the four grid vectors (r, z, p, q: 32 B per
 * voxel) and the reduction buffer once; pcg_solve reuses them, so repeated solves (one or more
 * per time step, re-solves of the potential) allocate nothing.
 *
 * Determinism: every reduction is summed per z-plane, the planes added in plane order, and the
 * vector updates are element-wise, so results do not depend on the thread count. The operator
 * must keep that property for the fused dot product it returns.
 */
#ifndef ABLASIM_PCG_H
#define ABLASIM_PCG_H

#include <stdint.h>

#include "ablasim/grid.h"
#include "ablasim/status.h"

/* y = A x at every voxel (held rows too: they are discarded); returns x.y summed per z-plane
 * in plane order (in CG x is zero at held voxels, so that is p.Ap over the free voxels). */
typedef double (*abl_pcg_apply_fn)(void *ctx, const double *restrict x, double *restrict y);
/* z = M^-1 r (r is zero at held voxels; pcg_solve zeroes z there afterwards); r and z are
 * distinct arrays of n values. */
typedef abl_status (*abl_pcg_precond_fn)(void *ctx, const double *r, double *z, abl_error *err);

typedef struct {
    abl_pcg_apply_fn apply;
    abl_pcg_precond_fn precondition; /* NULL: none (z = r) */
    void *ctx;                       /* handed to both */
    const uint8_t *mask;             /* [n] held voxels (non-zero); NULL: none held */
    /* per-kernel timers (profile.h), NULL: none. The solve adds its operator, preconditioner
     * and vector time to the three slots from prof_first (ABL_KER_*_OPERATOR), with
     * apply_bytes [B] the minimum traffic of one operator call (the caller knows its arrays)
     * and the vector passes' traffic counted here. */
    struct abl_profile *prof;
    int prof_first;
    double apply_bytes;
} abl_pcg_system;

/* The solver family's preconditioners (abl_potential_opts, abl_cg_opts). 0 keeps the former
 * bool fields' "false": diagonal scaling for the potential, none (plain CG) for the implicit
 * heat step. */
enum {
    ABL_PRECOND_JACOBI = 0,    /* potential: diagonal scaling; implicit heat step: none */
    ABL_PRECOND_SPECTRAL = 1,  /* an FFT solve of a constant-coefficient operator (spectral.h) */
    ABL_PRECOND_MULTIGRID = 2, /* one aggregation multigrid V-cycle on the operator (multigrid.h) */
};

/* Its name in outputs and messages: "spectral", "multigrid", or "none" for 0 (the implicit
 * heat step's plain CG; the potential calls its 0 Jacobi). */
static inline const char *abl_precond_name(int p)
{
    return p == ABL_PRECOND_SPECTRAL ? "spectral" : p == ABL_PRECOND_MULTIGRID ? "multigrid" : "none";
}

typedef struct {
    double tol;   /* stop when ||r||_free <= tol * the reference norm (below) */
    int max_iter; /* ABL_ENUM when reached first */
    /* message parts (static strings): prefix naming the solve ("" or "electric potential: "),
     * and the remedy named when max_iter is reached / when p.Ap <= 0 */
    const char *what, *hint_max_iter, *hint_breakdown;
    /* the reference norm: 0, the b_norm given to pcg_solve; f > 0, the initial residual
     * ||b - A x0||_free, but at least f * b_norm. The heat step takes the initial residual:
     * relative to ||b|| (dominated by C/dt times the temperature level) each step left an
     * error of tol |T| whatever dt, which many small steps added up (session 30 review). */
    double initial_floor;
} abl_pcg_opts;

typedef struct abl_pcg abl_pcg;

/* Workspace for grids of g's size (g must outlive the plan). */
abl_status pcg_create(const abl_grid *g, const abl_pcg_opts *opts, abl_pcg **out,
                      abl_error *err);
void pcg_destroy(abl_pcg *s);

/* Solve A x = b on the free voxels. b: right side (NULL: zero, i.e. the held values alone
 * drive the solution); x: initial guess on entry with the held values at held voxels (left
 * unchanged), the solution on return. b_norm: the reference the tolerance is relative to,
 * chosen by the caller (e.g. ||b||_free, or the norm of the lifted right side); when it is 0
 * the call returns at once, x unchanged, 0 iterations and residual 0. Reports iterations and
 * the final ||r||_free / b_norm (also when max_iter is reached: ABL_ENUM). A failing
 * preconditioner's status is returned as it is. */
abl_status pcg_solve(abl_pcg *s, const abl_pcg_system *sys, const double *b, double b_norm,
                     double *x, int *iterations, double *rel_residual, abl_error *err);
/* The same, with Ax = A x of the initial guess when the caller has computed it already (e.g.
 * to choose between guesses); it may be one of the pcg_scratch vectors. NULL: computed. */
abl_status pcg_solve_ax(abl_pcg *s, const abl_pcg_system *sys, const double *b, double b_norm,
                        double *x, const double *Ax, int *iterations, double *rel_residual,
                        abl_error *err);

/* The reference norm the last solve's stopping test used (initial_floor's choice, or b_norm),
 * and a fixed one for the solves that follow: ref > 0 replaces the choice (and b_norm) until
 * it is set to 0 again. The heat step's phase-change iterations use it: their inner solves
 * start next to the answer, and their accuracy is that of the step's first solve. */
double pcg_last_reference(const abl_pcg *s);
void pcg_set_reference(abl_pcg *s, double ref);

/* Deterministic dot product a.b over all voxels (per z-plane, planes in order). */
double pcg_dot(abl_pcg *s, const double *a, const double *b);
/* sqrt(sum of v^2 over the free voxels (mask == 0; mask NULL: all)), deterministic: the same
 * value as zeroing v at held voxels and taking the dot product, without a copy. */
double pcg_norm_free(abl_pcg *s, const uint8_t *mask, const double *v);
/* v[c] = 0 where mask[c] != 0 (no-op for mask NULL). */
void pcg_mask(const abl_pcg *s, const uint8_t *mask, double *v);
/* Two grid vectors (which = 0, 1) the caller may use as scratch between solves; pcg_solve
 * overwrites them. */
double *pcg_scratch(abl_pcg *s, int which);

#endif
