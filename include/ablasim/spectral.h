/* spectral.h - FFTW real-to-real transforms that diagonalise the grid's constant-coefficient
 * discrete Laplacian: exact time evolution of homogeneous Pennes problems and fast Helmholtz
 * solves (the preconditioner of the implicit schemes).
 *
 * The 7-point cell-centred Laplacian with walls half a voxel outside the outer centres is
 * diagonalised per axis by a DCT/DST chosen by the two faces of that axis (Strang 1999, "The
 * discrete cosine transform", SIAM Review 41:135, table of the eight DCT/DST boundary pairs):
 *   insulated/insulated  DCT-II  (FFTW_REDFT10, inverse REDFT01), eigen 2-2cos(pi m/n)
 *   fixed/fixed          DST-II  (FFTW_RODFT10, inverse RODFT01), eigen 2-2cos(pi (m+1)/n)
 *   fixed/insulated      DST-IV  (FFTW_RODFT11, self-inverse),    eigen 2-2cos(pi (m+1/2)/n)
 *   insulated/fixed      DCT-IV  (FFTW_REDFT11, self-inverse),    eigen 2-2cos(pi (m+1/2)/n)
 * (eigenvalues of -h^2 L_1D, m = 0..n-1). Every pair normalises with 1/(2n) per axis.
 *
 * Plan once, execute many, destroy once (FFTW's own discipline). Transforms run as batches
 * (each z-plane through one single-threaded 2-D plan, then the z-lines of each y-row through a
 * 1-D plan) distributed over OpenMP threads: every plane and line is computed by the same code
 * whatever the thread count, so results are bitwise independent of OMP_NUM_THREADS (a
 * multi-threaded FFTW plan would not guarantee that). spectral_solve transforms x and y only
 * and solves the tridiagonal z systems directly (same operator, half the work).
 */
#ifndef ABLASIM_SPECTRAL_H
#define ABLASIM_SPECTRAL_H

#include <stdbool.h>

#include "ablasim/grid.h"
#include "ablasim/status.h"

typedef struct abl_spectral abl_spectral;

/* face_fixed[f] (f = FACE_XMIN..FACE_ZMAX): true for a fixed-temperature wall (Dirichlet),
 * false for an insulated one (Neumann). */
abl_status spectral_create(const abl_grid *g, const bool face_fixed[6], abl_spectral **out,
                           abl_error *err);
void spectral_destroy(abl_spectral *sp);

/* Forward / inverse transform in place (inverse includes the normalisation, so
 * inverse(forward(x)) == x to rounding). */
void spectral_forward(const abl_spectral *sp, double *x);
void spectral_inverse(const abl_spectral *sp, double *x);

/* Eigenvalue of -L_h (units 1/m^2) of mode (i,j,k) in transform order. */
double spectral_eigenvalue(const abl_spectral *sp, int i, int j, int k);

/* Solve (a I - c L_h) x = r with homogeneous boundary values (a >= 0, c >= 0, a + c > 0 unless
 * all faces are insulated and a == 0, which is singular: error). r and x may be the same array. */
abl_status spectral_solve(const abl_spectral *sp, double a, double c, const double *r, double *x,
                          abl_error *err);
/* x = D (a I - c L_h)^-1 D r with D = diag(d) (d NULL: identity): a diagonally scaled
 * preconditioner in the passes the solve makes anyway. */
abl_status spectral_solve_scaled(const abl_spectral *sp, double a, double c, const double *d,
                                 const double *r, double *x, abl_error *err);

/* Exact evolution over time t of dT/dt = alpha L_h T - p T + b (alpha = k/(rho c) [m^2/s],
 * p = W/(rho c) [1/s], b a constant field [K/s] that carries sources, perfusion inflow and the
 * wall temperatures of fixed faces): each mode is advanced by its exact exponential factor, for
 * any t. T is overwritten. work must hold g->n doubles. */
void spectral_evolve(const abl_spectral *sp, double alpha, double p, const double *b, double t_s,
                     double *T, double *work);

#endif
