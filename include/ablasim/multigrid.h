/* multigrid.h - aggregation multigrid V-cycle: a cheap symmetric preconditioner for the
 * face-conductance operators of potential.h (one V-cycle costs a few matvecs, against an FFT
 * pair for the scaled spectral preconditioner).
 *
 * Operator. For voxel c: face conductance to c+1 (gx[c]), c+sy (gy[c]), c+sz (gz[c]) (0 at the
 * last layer) and gb[c], the conductance of c's grounded domain faces (diagonal only):
 *     (K x)_c = gb_c x_c + sum over c's faces of G (x_c - x_nb).
 * Held voxels (held[c] != 0) are Dirichlet: removed from the unknowns; a face between a free
 * and a held voxel adds its G to the free voxel's diagonal only. The preconditioner works on the
 * free block and returns z = 0 at held voxels.
 *
 * Method. Geometric unsmoothed aggregation (Braess 1995, "Towards algebraic multigrid for
 * elliptic problems of second order", Computing 55:379): 2x2x2 aggregates (ceil(n/2) per axis,
 * smaller ones at odd edges), piecewise-constant prolongation P (held voxels get nothing),
 * restriction P^T and the Galerkin operator P^T K P, which is again a 7-point face-conductance
 * operator: a coarse face conducts the sum of the free-free fine faces between its two
 * aggregates, and the coarse diagonal is what leaves the aggregate (grounds, faces to held
 * voxels, faces to other aggregates). An aggregate without a free voxel is held. Piecewise-
 * constant interpolation makes the coarse operator about twice too stiff for a Laplacian
 * (its energy of a smooth error is right, its inverse too small), so the coarse correction is
 * over-weighted by alpha (Braess: ~1.8-2; Notay 2010, "An aggregation-based algebraic multigrid
 * method", ETNA 37:123, discusses the scaling and its recursive use). Smoother: red-black Gauss-
 * Seidel, pre-smoothing red then black, post-smoothing black then red, the same alpha on every
 * level and an exact (dense Cholesky) solve on the coarsest level (<= 200 voxels): the V-cycle
 * is a fixed symmetric linear operator B, usable as a CG preconditioner z = B r.
 *
 * Determinism. Red-black updates of one colour are independent of each other; restriction sums
 * each coarse voxel's children in a fixed order within one thread; the coarsest solve is serial.
 * Results are bitwise identical for any thread count.
 *
 * Plan / setup / execute: mg_create allocates all levels once (about 32 B per fine voxel over
 * all levels: the coefficients are stored in single precision, multigrid.c); mg_setup rebuilds
 * the operators after a conductivity update; mg_apply runs one V-cycle from a zero initial
 * guess.
 */
#ifndef ABLASIM_MULTIGRID_H
#define ABLASIM_MULTIGRID_H

#include <stdint.h>

#include "ablasim/grid.h"
#include "ablasim/status.h"

typedef struct abl_mg abl_mg;

/* Levels for grid g (g must outlive the plan). */
abl_status mg_create(const abl_grid *g, abl_mg **out, abl_error *err);
void mg_destroy(abl_mg *mg);

/* Smoothing sweeps per side (>= 1; default 1) and the coarse-correction weight alpha
 * (default 1.8; (0, 2] keeps the V-cycle positive definite in practice, see multigrid.c). */
void mg_set_cycle(abl_mg *mg, int sweeps, double alpha);

/* Operators of all levels from the face conductances (arrays of g->n values as above; held may
 * be NULL: none held; none of them is kept). ABL_ENUM when the coarsest operator is not
 * positive definite (a free region without any ground). */
abl_status mg_setup(abl_mg *mg, const double *gx, const double *gy, const double *gz,
                    const double *gb, const uint8_t *held, abl_error *err);

/* z = B r: one symmetric V-cycle from z = 0 (r, z: g->n values, distinct; r is read at free
 * voxels only, z is 0 at held voxels). */
void mg_apply(abl_mg *mg, const double *r, double *z);

/* Number of levels (1 = the fine grid is solved directly). */
int mg_levels(const abl_mg *mg);

#endif
