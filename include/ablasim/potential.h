/* potential.h - the quasi-static electric potential of radiofrequency ablation.
 *
 * At 450-500 kHz the wavelength in tissue (~tens of metres) dwarfs the treated region and
 * displacement currents are small against conduction currents (sigma >> omega eps for liver
 * and most soft tissue), so the field is quasi-static: div(sigma grad V) = 0 (Doss 1982;
 * Berjano 2006, BioMed Eng OnLine 5:24). This module solves that equation on the voxel grid
 * with the same cell-centred finite volumes as the thermal stencil (kernels.h), and returns
 * the electrode current and the Joule heat q = sigma |grad V|^2 in its exact discrete form.
 *
 * Discretisation. Voxel c exchanges current with each face neighbour through the face
 * conductance G = sigma_f / h_d^2 [S/m^3] (times the voxel volume: S), sigma_f the harmonic
 * mean of the two voxels (series resistance of two half voxels). Held voxels (electrodes) keep
 * their value; in "metal" mode they stand for the electrode itself, whose surface lies on their
 * faces, so a face between a held and a free voxel conducts through the free half voxel only,
 * G = 2 sigma_free / h^2 (the Dirichlet wall of kernels.h); in "node" mode the held value sits
 * at the voxel centre and the face is an ordinary one (exact Dirichlet data in tests). Domain
 * faces are grounded (V = 0 half a voxel outside, G = 2 sigma / h^2) or insulated (G = 0).
 *
 * Joule heat. With K the matrix of these conductances, at a solution of K V = 0 on the free
 * voxels
 *     sum_faces G_f (V_a - V_b)^2 + sum_ground G_b V_a^2 = sum_a V_a (K V)_a = sum_held V_a (K V)_a
 * (each face counted once; only held voxels have a non-zero (K V)_a). With every held voxel at
 * V0 the right side is V0 I, I the current leaving the electrodes: the face dissipations,
 * deposited in the voxels beside each face, add up to the generator's V0 I exactly (to the CG
 * tolerance). A face's dissipation goes half to each free voxel; the share of a held voxel goes
 * to its free neighbour (the heat is produced in the tissue, not in the metal).
 *
 * Solver: preconditioned conjugate gradients on the free voxels (pcg.h). Preconditioner: the grid's
 * constant-coefficient Laplacian inverted exactly with the FFTW transforms of spectral.h,
 * scaled symmetrically by the local coefficient, M^-1 = S^-1/2 L^-1 S^-1/2 with
 * S = diag(K) / diag(L) (exact for homogeneous sigma; much better than a mean coefficient at
 * the 1e4 contrasts of desiccated tissue). It needs at least one grounded face (else L is
 * singular, and so is K without a ground). All reductions are summed per z-plane in plane
 * order: results do not depend on the thread count.
 */
#ifndef ABLASIM_POTENTIAL_H
#define ABLASIM_POTENTIAL_H

#include <stdbool.h>
#include <stdint.h>

#include "ablasim/grid.h"
#include "ablasim/status.h"

typedef struct {
    double tol;        /* ||K V||_free <= tol ||b||, b the lifted right side (held values) */
    int max_iter;
    bool precondition; /* scaled spectral preconditioner; false: Jacobi (diagonal) */
} abl_potential_opts;

typedef struct abl_potential abl_potential;

/* Plan for grid g: grounded[f] (f = FACE_XMIN..FACE_ZMAX of grid.h) true for a grounded
 * face, false for an insulated one; at least one must be grounded (ABL_EINVAL otherwise). */
abl_status potential_create(const abl_grid *g, const bool grounded[6],
                            const abl_potential_opts *opts, abl_potential **out, abl_error *err);
void potential_destroy(abl_potential *p);

/* Face conductances from per-voxel conductivity sigma_S_m [S/m] (> 0; callers floor it) and
 * the held set (held[c] != 0; may be NULL: none), metal or node held voxels (above). The held
 * set is remembered (not copied: it must stay valid) for solve, current and dissipation. */
abl_status potential_set_conductivity(abl_potential *p, const double *sigma_S_m,
                                      const uint8_t *held, bool metal_held, abl_error *err);

/* Solve K V = 0 on the free voxels. On entry V holds the held values at held voxels and the
 * initial guess elsewhere (a previous solution makes re-solves cheap); on return the solution.
 * ABL_ENUM if max_iter is reached first. */
abl_status potential_solve(abl_potential *p, double *V, int *iterations, double *rel_residual,
                           abl_error *err);

/* Relative residual ||K V||_free / ||b|| of a candidate V (held values included), the
 * measure potential_solve stops on; 0 when b = 0. Used to pick the better of two guesses. */
double potential_residual(abl_potential *p, const double *V);

/* Current [A] leaving the held voxels (into the free voxels and the grounded faces):
 * sum over held c of (K V)_c times the voxel volume. */
double potential_current_A(abl_potential *p, const double *V);

/* Joule heat per voxel q_W_m3 (all g->n voxels; 0 at held voxels except for the dissipation
 * of their own grounded domain faces, which only a short circuit has) from the face dissipations
 * as described above; returns the total power [W] (sum q V_voxel, per plane in order). */
double potential_dissipation(abl_potential *p, const double *V, double *q_W_m3);

#endif
