/* implicit.h - preconditioned conjugate gradients for the implicit Pennes schemes.
 *
 * Backward Euler and Crank-Nicolson lead each step to (C/dt - theta A) x = rhs (kernels.h), a
 * symmetric positive definite system (C = rho c > 0, -A the SPD conduction-plus-perfusion
 * operator). Voxels held at a temperature (probes, electrodes) are removed from the unknowns:
 * their values sit in x, their residual is kept at zero, so CG (the masked PCG of pcg.h) works
 * on the SPD free block; this module supplies the operator (implicit_matvec) and the
 * preconditioner.
 * Preconditioners: the exact inverse of the mean-coefficient operator
 * (mean C/dt + theta mean W) I - theta mean k L_h, applied with the FFTW transforms of
 * spectral.h (convective faces are approximated as fixed or insulated by their Biot number);
 * or one aggregation multigrid V-cycle (multigrid.h) on the operator's own face conductances
 * theta G, diagonal C/dt + theta (W + domain faces + extra diagonal), held voxels masked:
 * exact coefficients, so tissue contrasts (bone, fat, frozen tissue) cost it little.
 * All reductions are summed per z-plane in plane order: results do not depend on the thread
 * count.
 */
#ifndef ABLASIM_IMPLICIT_H
#define ABLASIM_IMPLICIT_H

#include <stdbool.h>
#include <stdint.h>

#include "ablasim/kernels.h"
#include "ablasim/pcg.h"
#include "ablasim/spectral.h"

typedef struct {
    double tol;       /* relative residual ||r|| / ||b|| to reach (b: rhs over free voxels) */
    int max_iter;
    int preconditioner; /* ABL_PRECOND_* of pcg.h: 0 none, SPECTRAL (mean coefficients),
                         * MULTIGRID (a V-cycle on the operator itself, built every solve) */
} abl_cg_opts;

typedef struct abl_implicit abl_implicit;

/* Plan for a stencil: vectors, and the spectral preconditioner with mean coefficients C_mean
 * [J/m^3/K], W_mean [W/m^3/K], k_mean [W/m/K] (volume averages over the grid). */
abl_status implicit_create(const abl_stencil *st, const int bc_type[6], const double bc_h[6],
                           double C_mean, double W_mean, double k_mean, const abl_cg_opts *opts,
                           abl_implicit **out, abl_error *err);
void implicit_destroy(abl_implicit *im);

/* Solve (C/dt - theta A) x = rhs for the free voxels (fixed[c] == 0). x holds the initial
 * guess on entry, with the held values at fixed voxels (left unchanged). fixed may be NULL.
 * Reports iterations and the final relative residual; ABL_ENUM if not converged. */
abl_status implicit_solve(abl_implicit *im, const double *kv, const double *Wv, double inv_dt,
                          double theta, const double *rhs, const uint8_t *fixed, double *x,
                          int *iterations, double *rel_residual, abl_error *err);

/* same_step true: the solves that follow stop relative to the reference of the last one (the
 * step's first solve; pcg.h pcg_set_reference), as the inner solves of a phase-change
 * iteration must: they start next to the answer, and relative to their own initial residual
 * they would iterate 1e4 times further for nothing. false: each solve chooses its own. */
void implicit_same_step(abl_implicit *im, bool same_step);

/* Conductances G_W_m3K[q] >= 0 at voxels idx[q] (q < n; a voxel listed twice gets both) added to the
 * operator's diagonal like perfusion: every later solve is (C/dt - theta A + theta G) x = rhs.
 * This is how a coupling heat G (T_ref - T) of a source (source.h heat_G_W_m3K) is taken
 * implicitly: the caller adds G (T_ref - T0) + theta G T0 to rhs. The arrays are read during
 * the solves (not copied); n = 0 removes them. */
/* Per-kernel timers (profile.h) for later solves: the ABL_KER_HEAT_* slots of prof (NULL:
 * not timed). */
struct abl_profile;
void implicit_set_profile(abl_implicit *im, struct abl_profile *prof);

void implicit_set_diagonal(abl_implicit *im, const size_t *idx, const double *G_W_m3K, size_t n);

#endif
