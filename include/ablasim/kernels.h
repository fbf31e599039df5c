/* kernels.h - the hot loops: explicit Pennes step, energy reductions, running maps.
 *
 * No I/O, no allocation, no globals: explicit arrays and bounds only. The driver (sim.c) owns
 * time stepping and builds the abl_stencil once per run (stencil_plan in src/driver).
 *
 * Discretisation (finite volumes on the cell-centred grid, Pennes 1948):
 *   rho c dT/dt = sum_faces G_f (T_nb - T) + W (T_a - T) + Q_met + Q_src
 * with G_f = k_f / h_d^2, k_f the harmonic mean of the two voxels' conductivities (flux
 * continuity across a tissue interface, Patankar 1980 sec. 4.2-4), W = w_b rho_b c_b.
 * Domain faces: fixed temperature through the half voxel, G_b = 2 k / h_d^2; convective,
 * G_b = (1/h_d) / (1/h_conv + h_d / (2 k)); insulated, G_b = 0.
 *
 * Memory traffic of one explicit update in the common case (voxel and its six neighbours of one
 * tissue): read T (8 B), write T_new (8 B, plus 8 B write-allocate unless streamed), read the
 * class byte (1 B): 17 B/LUP compulsory, 25 B/LUP with write-allocate. Neighbour values come
 * from cache. Voxels at tissue interfaces or domain faces take the general path (material and
 * face-conductance tables); they are a surface-to-volume fraction of the grid.
 */
#ifndef ABLASIM_KERNELS_H
#define ABLASIM_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "ablasim/grid.h"

#define ABL_CLS_GENERAL 255 /* class byte: voxel needs the general (interface/boundary) path */

typedef struct {
    /* T_new = diag*T + ax*(T_w+T_e) + ay*(T_s+T_n) + az*(T_d+T_u) + s, all pre-multiplied by
     * dt/(rho c): the same-tissue fast path. */
    double ax, ay, az, diag, s;
} abl_fast_coef;

typedef struct {
    const abl_grid *g;
    int nmat;
    double dt_s;
    const uint8_t *material;     /* [n] material index */
    const uint8_t *cls;          /* [n] material index, or ABL_CLS_GENERAL */
    const abl_fast_coef *fast;   /* [nmat] */
    const double *inv_rhoc;      /* [nmat] 1/(rho c) [m^3 K/J] */
    const double *perf_W;        /* [nmat] W = w_b rho_b c_b [W/m^3/K] */
    const double *src_const;     /* [nmat] W T_a + Q_met [W/m^3] */
    const double *gface;         /* [3][nmat][nmat] G between materials across an x/y/z face */
    const double *gbound;        /* [6][nmat] G_b of a voxel of material m at domain face f */
    double T_bound_C[6];         /* wall or ambient temperature of each domain face */
    double T_arterial_C;
} abl_stencil;

/* One explicit (forward Euler) step over the whole grid: T_new = T + dt/(rho c) * RHS(T).
 * T and T_new must be distinct arrays of g->n values. Deterministic: each voxel's result depends
 * only on T, never on the thread decomposition. */
void pennes_explicit_step(const abl_stencil *st, const double *restrict T, double *restrict T_new);

/* Reference implementation: every voxel through the general path (used to test the fast path
 * and as the baseline of the benchmark). */
void pennes_explicit_step_general(const abl_stencil *st, const double *restrict T,
                                  double *restrict T_new);

/* Right-hand side of the semi-discrete equation at every voxel [W/m^3] (no sources). */
void pennes_rhs(const abl_stencil *st, const double *restrict T, double *restrict rhs_W_m3);

/* Energy rates at state T [W]: perfusion + metabolic (sum of W (T_a - T) + Q_met over voxels,
 * times voxel volume) and heat flowing in through the domain faces. Summed per z-plane then in
 * plane order, so the result is independent of the thread count. */
void pennes_energy_rates(const abl_stencil *st, const double *restrict T, double *work_2nz,
                         double *perf_met_W, double *boundary_in_W);
/* Stored heat relative to 0 C [J]: sum rho c T V. Deterministic like the above. */
double pennes_stored_energy(const abl_stencil *st, const double *restrict T, double *work_nz);

/* Running maps: T_max/T_min, and time spent at or above each hot threshold / at or below each
 * cold threshold (seconds; incremented by interval_s when the condition holds). Returns the
 * lowest index of a voxel whose temperature is not finite or outside [T_lo, T_hi] (a numerical
 * fault), or (size_t)-1 when all are sane. */
size_t monitor_update(double T_lo, double T_hi, size_t n, const double *restrict T, double *restrict T_max,
                    double *restrict T_min, int n_hot, const double *hot_C, float *const *t_hot_s,
                    int n_cold, const double *cold_C, float *const *t_cold_s, double interval_s);

#endif
