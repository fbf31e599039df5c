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
 * faces are grounded (V = 0 half a voxel outside, G = 2 sigma / h^2), open to a far ground
 * (potential_set_far_ground: a Robin condition, G_b below) or insulated (G = 0).
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
 * S = diag(K) / diag(L) (exact for homogeneous sigma with the faces at 0 V; with a far ground L
 * keeps the Dirichlet faces, so it is inexact at the boundary: 3-5x more iterations on an open
 * box; much better than a mean coefficient at the 1e4 contrasts of desiccated tissue). It needs at least one grounded face (else L is
 * singular, and so is K without a ground). All reductions are summed per z-plane in plane
 * order: results do not depend on the thread count.
 * Alternative (opts.preconditioner): one symmetric V-cycle of aggregation multigrid (multigrid.h)
 * on K itself, rebuilt by potential_set_conductivity; also independent of the thread count.
 */
#ifndef ABLASIM_POTENTIAL_H
#define ABLASIM_POTENTIAL_H

#include <stdbool.h>
#include <stdint.h>

#include "ablasim/grid.h"
#include "ablasim/pcg.h"
#include "ablasim/status.h"

/* Preconditioners of the CG solve: ABL_PRECOND_* of pcg.h (JACOBI: diagonal scaling; SPECTRAL:
 * the scaled spectral solve below; MULTIGRID: one V-cycle of multigrid.h). The values keep the
 * former bool field's meaning: {tol, max_iter, true} selects the spectral one, false Jacobi. */

typedef struct {
    double tol;         /* ||K V||_free <= tol ||b||, b the lifted right side (held values) */
    int max_iter;
    int preconditioner; /* ABL_PRECOND_* */
} abl_potential_opts;

typedef struct abl_potential abl_potential;

/* Plan for grid g: grounded[f] (f = FACE_XMIN..FACE_ZMAX of grid.h) true for a grounded
 * face, false for an insulated one. The spectral preconditioner needs at least one grounded
 * face (ABL_EINVAL otherwise); the others solve without one, the held values alone fixing the
 * potential (bipolar electrodes at two values; held voxels all at one value and no ground give
 * a constant potential and no current, which the caller reports). */
abl_status potential_create(const abl_grid *g, const bool grounded[6],
                            const abl_potential_opts *opts, abl_potential **out, abl_error *err);
void potential_destroy(abl_potential *p);

/* Far ground: the grounded faces are not held at 0 V but lead to a ground at infinity through
 * the exterior, a homogeneous medium of each face voxel's own sigma in which the potential is
 * the monopole A / r about centre_m (the centre of the current) [m]: the first-order asymptotic
 * (Robin) condition for the exterior Laplace problem, so the impedance includes the resistance
 * beyond the grid and no longer depends on where the grid ends (to first order). NULL: faces
 * held at 0 V (the default). Applies from the next potential_set_conductivity. The exterior's
 * dissipation is not deposited in the grid: potential_dissipation then returns the grid's share
 * and potential_far_power the rest (their sum is the V I identity's power). ABL_ENOMEM. */
abl_status potential_set_far_ground(abl_potential *p, const double centre_m[3], abl_error *err);

/* Far ground only (else 0): the power [W] dissipated beyond the grid, sum over grounded domain
 * faces of the exterior's share of G_b V^2, per plane in order (thread-independent). */
double potential_far_power(abl_potential *p, const double *V);

/* Face conductances from per-voxel conductivity sigma_S_m [S/m] (> 0; callers floor it) and
 * the held set (held[c] != 0; may be NULL: none), metal or node held voxels (above). The held
 * set is remembered (not copied: it must stay valid) for solve, current and dissipation. */
abl_status potential_set_conductivity(abl_potential *p, const double *sigma_S_m,
                                      const uint8_t *held, bool metal_held, abl_error *err);

/* Sub-voxel coupling of free voxels to the held value (a thin electrode whose true surface lies
 * inside a wider held set, applicator.h needle_coupling). For free voxel c, the faces between c
 * and held voxels conduct together G_m2 times the conductivity (harmonic mean of c's and the
 * held voxel's sigma, the ordinary face rule), shared between those faces in proportion to
 * their 1/h^2, instead of the metal or node rule: the line-source profile V = A + B ln d then
 * satisfies c's discrete balance (Peaceman's well model). c must have at least one held face
 * neighbour and appear once. The list is remembered (not copied) and applied by every later
 * potential_set_conductivity; NULL/0: none. The operator stays symmetric (each coupling is a
 * face conductance), so the Joule-heat identity sum q V = V0 I holds as before.
 * Joule heat of a coupled face: it stands for the tissue between the true surface (radius r) and
 * c's centre (distance d), and half of it goes to the held voxel, half to c (not all to c as for
 * a metal face). Why half: in that annulus, per unit length, with current I' the heat density
 * is A/d^2 (A = I'^2 / (4 pi^2 sigma)) and the steady temperature with T(r) = T_s, T(d) = T_c is
 * T(u) = T_s + (T_c - T_s) u/L + (A/2k)(u L - u^2), u = ln(d'/r), L = ln(d/r); the heat it
 * sends into the surface is 2 pi k (T_c - T_s)/L + pi A L: the conduction the coupling carries
 * plus exactly half of the annulus' heat 2 pi A L. So a cooled electrode (held voxels pinned at
 * the coolant) takes half, and the coupled voxel the other half; with all of it in c the zone
 * changed by 24 % with the axis' offset to the grid (docs/RFA.md "Grid alignment"). */
typedef struct {
    size_t c;     /* free voxel (index on the potential's grid) */
    double G_m2;  /* [1/m^2] conductance to the held value per unit conductivity */
} abl_potential_couple;
void potential_set_couples(abl_potential *p, const abl_potential_couple *couples, size_t n);

/* Solve K V = 0 on the free voxels. On entry V holds the held values at held voxels and the
 * initial guess elsewhere (a previous solution makes re-solves cheap); alt, when not NULL, is a
 * second guess with the same held values: CG starts from whichever has the smaller residual
 * (V is overwritten with alt when alt wins). On return V is the solution. ABL_ENUM if max_iter
 * is reached first. */
abl_status potential_solve(abl_potential *p, double *V, const double *alt, int *iterations,
                           double *rel_residual, abl_error *err);

/* Per-kernel timers (profile.h) for later solves: the CG's operator, preconditioner and vector
 * time go to the ABL_KER_POTENTIAL_* slots of prof (NULL: not timed). */
struct abl_profile;
void potential_set_profile(abl_potential *p, struct abl_profile *prof);

/* Electrode current [A] for held values at 1 V (or +-1/2 V): sum over held c of
 * V_c (K V)_c times the voxel volume. With every held voxel at 1 V that is the current leaving
 * them (into the tissue and the grounded faces); with bipolar electrodes at +1/2 and -1/2 V and
 * no ground it is the current from the one set to the other (1/2 I + 1/2 I); in both cases it
 * equals the dissipated power at a unit voltage (the identity above), so P = V I holds. */
double potential_current_A(abl_potential *p, const double *V);

/* Joule heat per voxel q_W_m3 (all g->n voxels; at held voxels only the held half of their
 * coupled faces and the dissipation of their own grounded domain faces, which only a short
 * circuit has) from the face dissipations as described above (with a far ground only the half
 * voxel's share of a grounded face's); returns the grid's total power [W]
 * (sum q V_voxel, per plane in order). */
double potential_dissipation(abl_potential *p, const double *V, double *q_W_m3);

#endif
