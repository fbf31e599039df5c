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
 * Memory traffic of one explicit update: read T (8 B), write T_new (8 B, plus 8 B
 * write-allocate): 24 B/LUP; neighbour values come from cache (three z-planes of 512 KiB at
 * 256^2 fit in a 1-2 MiB L2). The sweep follows a precomputed segment plan, so no per-voxel
 * label is read: same-tissue interior runs use five per-material coefficients; voxels at tissue
 * interfaces and domain faces (a surface-to-volume fraction of the grid) come in runs along x
 * with identical precomputed coefficients (flat interfaces and domain faces are long runs), so
 * they too are vectorised loops instead of six table look-ups per voxel, which would make the
 * kernel compute-bound (see ../shared/reference/style.md item 4).
 */
#ifndef ABLASIM_KERNELS_H
#define ABLASIM_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ablasim/grid.h"

#define ABL_CLS_GENERAL 255 /* class byte: voxel needs the general (interface/boundary) path */

typedef struct {
    /* T_new = diag*T + ax*(T_w+T_e) + ay*(T_s+T_n) + az*(T_d+T_u) + s, all pre-multiplied by
     * dt/(rho c): the same-tissue fast path. */
    double ax, ay, az, diag, s;
} abl_fast_coef;

/* A run of voxels along x within one row: same-material interior voxels (mat >= 0, fast path)
 * or voxels with their own coefficients (mat < 0: tissue interfaces and domain faces). */
typedef struct {
    int32_t i0, i1; /* voxels i0 <= i < i1 of the row */
    int32_t mat;    /* material index, or -1 */
    int32_t g0;     /* mat < 0: index in abl_stencil.gen of the run's coefficients */
} abl_segment;

/* Update coefficients of a run of general voxels (identical for every voxel of the run),
 * pre-multiplied by dt/(rho c):
 * T_new = diag*T + c[0] T_w + c[1] T_e + c[2] T_s + c[3] T_n + c[4] T_d + c[5] T_u + s.
 * Domain faces have c = 0 (their wall/ambient terms are folded into diag and s). 64 bytes. */
typedef struct {
    double c[6], diag, s;
    double w; /* half the domain faces' a G_b: with abl_stencil.walls_in_kernel the explicit
               * step takes the wall term with the trapezoidal rule, T_new = (above + w T) /
               * (1 + w) (sim.c wall_implicit has the reasoning); the implicit schemes read
               * c, diag and s only */
} abl_gen_coef;

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
    int bc_type[6];              /* abl_bc_type of each face (variable-property path) */
    double bc_h_W_m2K[6];        /* convective coefficient of each face */
    const double *q_met;         /* [nmat] metabolic heat [W/m^3] */
    double T_arterial_C;
    /* traversal plan of the explicit step (built by the driver from cls) */
    const abl_segment *seg;      /* all rows' segments, row after row */
    const size_t *row_seg;       /* [ny*nz + 1]: segments of row (j,k) are
                                  * seg[row_seg[k*ny+j] .. row_seg[k*ny+j+1]) */
    const abl_gen_coef *gen;     /* distinct coefficient records of the general runs */
    bool walls_in_kernel;        /* pennes_explicit_step applies the records' w (the driver
                                  * sets it where the stencil's capacity is the voxels' own) */
} abl_stencil;

/* Build the traversal plan: segments per row (row_seg: ny*nz + 1 offsets into seg) and the
 * distinct coefficient records of the general runs (gen: each distinct record once, so the
 * table stays in cache during a sweep). Allocates the three arrays (the caller frees them).
 * Returns false when out of memory (nothing allocated then). Run once per plan (driver). */
bool stencil_plan_build(const abl_stencil *st, abl_segment **seg, size_t **row_seg,
                        abl_gen_coef **gen, size_t *nseg, size_t *ngen);

/* A region of a sweep: the voxels lo <= (i, j, k) < hi that are not in the excluded box
 * xlo <= (i, j, k) < xhi (an empty excluded box excludes nothing). The multirate step of
 * explicit freezing runs (sim.c) sweeps a box around the ice with the short step and the rest
 * of the grid, the box excluded, with the long one. */
typedef struct {
    int lo[3], hi[3], xlo[3], xhi[3];
    /* optional: per-row excluded x-intervals [xrow_lo[r], xrow_hi[r]) for the rows r = k ny + j
     * of the excluded box (empty where xrow_lo[r] >= xrow_hi[r]) instead of its whole
     * xlo[0]..xhi[0] (NULL: the box). The active region's sweep leaves out the rows' spans
     * that the variable-property sweep writes (sim.c). */
    const int32_t *xrow_lo, *xrow_hi;
} abl_sweep_box;

/* The whole grid, nothing excluded. */
abl_sweep_box sweep_box_all(const abl_grid *g);

/* One explicit (forward Euler) step over the whole grid: T_new = T + dt/(rho c) * RHS(T).
 * T and T_new must be distinct arrays of g->n values. Deterministic: each voxel's result depends
 * only on T, never on the thread decomposition. */
void pennes_explicit_step(const abl_stencil *st, const double *restrict T, double *restrict T_new);

/* The same update on the voxels of a region only; identical bits to the whole-grid call on
 * them (the whole-grid call is this one with sweep_box_all). */
void pennes_explicit_step_region(const abl_stencil *st, const double *restrict T,
                                 double *restrict T_new, const abl_sweep_box *reg);

/* Reference implementation: every voxel through the general path (used to test the fast path
 * and as the baseline of the benchmark). */
void pennes_explicit_step_general(const abl_stencil *st, const double *restrict T,
                                  double *restrict T_new);

/* Variable-property path (temperature- or damage-dependent tissues): per-voxel conductivity
 * k [W/m/K] and perfusion W = w_b rho_b c_b [W/m^3/K] given as fields, rho c per material.
 * Face conductivity is the harmonic mean of the two voxels' k, boundary faces use the voxel's
 * k. Traffic: T 8 + T_new 16 + k 8 + W 8 + material 1 = 41 B/LUP. */
void pennes_explicit_step_var(const abl_stencil *st, const double *restrict k_W_mK,
                              const double *restrict W_W_m3K, const double *restrict T,
                              double *restrict T_new);
/* The same update on the voxels of the box lo <= (i, j, k) < hi only (the active region of an
 * explicit freezing run, sim.c); identical bits to the whole-grid call on those voxels. With
 * row_lo/row_hi (per row r = k ny + j; NULL: whole rows), only the part [row_lo[r], row_hi[r])
 * of each row of the box. */
void pennes_explicit_step_var_box(const abl_stencil *st, const double *restrict k_W_mK,
                                  const double *restrict W_W_m3K, const double *restrict T,
                                  double *restrict T_new, const int lo[3], const int hi[3],
                                  const int32_t *row_lo, const int32_t *row_hi);
void pennes_energy_rates_var(const abl_stencil *st, const double *restrict k_W_mK,
                             const double *restrict W_W_m3K, const double *restrict T,
                             double *work_2nz, double *perf_met_W, double *boundary_in_W);
/* The same sums over the voxels of a region (summed per z-plane of the region in order). */
void pennes_energy_rates_var_region(const abl_stencil *st, const double *restrict k_W_mK,
                                    const double *restrict W_W_m3K, const double *restrict T,
                                    double *work_2nz, const abl_sweep_box *reg,
                                    double *perf_met_W, double *boundary_in_W);

/* Face conductances, defined once, here, for every path that builds them: the per-material
 * tables of the constant-property path (sim.c face_tables), the domain faces
 * (abl_boundary_conductance: stencil_ops.h, pennes_boundary_conductance), the variable-property
 * operator (stencil_ops.h) and the electric potential (src/solvers/potential.c). h is the
 * spacing normal to the face. Works for thermal k [W/m/K] -> G [W/m^3/K] and electrical
 * sigma [S/m] -> G [S/m^3] alike.
 *
 * abl_face_conductance: between two voxels, the harmonic mean (series resistance of two half
 * voxels) 2 ka kb / (ka + kb) / h^2, 0 when both are 0 (NaN stays NaN: a fault is not hidden).
 * abl_wall_conductance: through the half voxel to a wall held at a value on the voxel's face
 * (fixed-temperature or grounded domain face, electrode metal), 2 k / h^2.
 *
 * Rounding: each comes in two forms with one expression each, so that every path evaluates
 * exactly the same operations in the same order as before:
 *   multiply form, ih2 = 1/h^2 (a rounded reciprocal, computed once per axis): the per-voxel
 *     paths (variable properties, potential), ... * ih2;
 *   divide form (_div), h2 = h*h: the per-material tables and the domain faces, ... / h2.
 * The two can differ in the last bit (x * fl(1/h2) is not always fl(x / h2)); they are kept
 * apart so that no result changes. A new caller should take the form of the path it joins:
 * one that must agree with the constant-property tables (e.g. a source's heat flux through a
 * face of the grid, as cryo.c's extraction limit) the divide form. */
static inline double abl_face_conductance(double ka, double kb, double ih2)
{
    const double sum = ka + kb;
    return sum == 0.0 ? 0.0 : 2.0 * ka * kb / sum * ih2;
}

static inline double abl_face_conductance_div(double ka, double kb, double h2)
{
    const double sum = ka + kb;
    return sum == 0.0 ? 0.0 : 2.0 * ka * kb / sum / h2;
}

static inline double abl_wall_conductance(double k, double ih2)
{
    return 2.0 * k * ih2;
}

static inline double abl_wall_conductance_div(double k, double h2)
{
    return 2.0 * k / h2;
}

/* Conductance [W/m^3/K] of a domain face of type bc_type (abl_bc_type) for a voxel of
 * conductivity k, spacing h normal to the face: fixed temperature 2k/h^2 (the wall half a voxel
 * away, abl_wall_conductance_div), convective (1/h)/(1/h_conv + h/(2k)), insulated 0. */
static inline double abl_boundary_conductance(int bc_type, double h_conv_W_m2K, double k_W_mK,
                                              double h_m)
{
    if (bc_type == BC_FIXED_TEMPERATURE) return abl_wall_conductance_div(k_W_mK, h_m * h_m);
    if (bc_type == BC_CONVECTIVE) return (1.0 / h_m) / (1.0 / h_conv_W_m2K + h_m / (2.0 * k_W_mK));
    return 0.0;
}

/* abl_boundary_conductance, out of line (for callers outside the kernels). */
double pennes_boundary_conductance(int bc_type, double h_conv_W_m2K, double k_W_mK, double h_m);

/* Implicit schemes (theta = 1 backward Euler, 1/2 Crank-Nicolson) solve
 *   (C/dt - theta A) T_new = C/dt T + (1 - theta) (A T + f) + theta f + q
 * with pennes_op = A T + f (A the linear part, f wall temperatures, W T_a, Q_met) and C = rho c.
 * kv/Wv: per-voxel k and W (variable-property path) or NULL (material tables).
 * implicit_matvec: y = (C/dt) x - theta A x; returns x.y summed per z-plane in plane order
 * (deterministic; work_nz holds nz doubles), fused into the sweep like TeaLeaf's p.w. */
double implicit_matvec(const abl_stencil *st, const double *kv, const double *Wv, double inv_dt,
                       double theta, const double *restrict x, double *restrict y,
                       double *work_nz);
/* rhs = (C/dt) T + (1 - theta) (A T + f) + theta f. */
void implicit_rhs(const abl_stencil *st, const double *kv, const double *Wv, double inv_dt,
                  double theta, const double *restrict T, double *restrict rhs);
/* One voxel's A T + f (for energy bookkeeping at pinned voxels). */
double pennes_op_at(const abl_stencil *st, const double *kv, const double *Wv, const double *T,
                    size_t c);

/* Right-hand side of the semi-discrete equation at every voxel [W/m^3] (no sources). */
void pennes_rhs(const abl_stencil *st, const double *restrict T, double *restrict rhs_W_m3);

/* Energy rates at state T [W]: perfusion + metabolic (sum of W (T_a - T) + Q_met over voxels,
 * times voxel volume) and heat flowing in through the domain faces. Summed per z-plane then in
 * plane order, so the result is independent of the thread count. */
void pennes_energy_rates(const abl_stencil *st, const double *restrict T, double *work_2nz,
                         double *perf_met_W, double *boundary_in_W);
/* Stored heat relative to 0 C [J]: sum rho c T V. Deterministic like the above. */
double pennes_stored_energy(const abl_stencil *st, const double *restrict T, double *work_nz);

/* The gas constant of the Arrhenius damage integral. 8.314, not CODATA's 8.314462618: a
 * published (A, Ea) pair is a fit of ln k against 1/T, so it reproduces its data only with the R
 * it was fitted with, and the sets in configs/tissues.yaml (header) and the project's reference
 * (tissue-properties.md: "R = 8.314 J/mol/K") state 8.314. With Ea ~ 2.6e5 J/mol the exponent is
 * ~94, so the fifth digit of R moves Omega by 0.5 %. */
#define ABL_ARRHENIUS_R_J_PER_MOLK 8.314

/* Thermal damage maps, advanced by interval_s at the current temperature (right-point rule):
 *  Arrhenius  dOmega/dt = A exp(-Ea / (R T)), T in K, R as above (Henriques 1947;
 *             Pearce 2010), per material A [1/s], Ea [J/mol]; materials without parameters
 *             (A <= 0) accumulate nothing. Integrated only where T >= arrhenius_min_C: the
 *             published parameter sets, fitted at ablative temperatures, would otherwise
 *             "damage" tissue at 37 C within about an hour (liver: 1/rate = 57 min).
 *  CEM43      cumulative equivalent minutes at 43 C, sum R^(43 - T) dt / 60 with R = 0.5 above
 *             43 C and 0.25 below (Sapareto & Dewey 1984), for T >= 39 C (below, a minute
 *             adds < 0.004 min). Omega is capped at 1e30 (charred tissue), never inf. */
typedef struct {
    const uint8_t *material;
    const double *A_per_s, *Ea_J_mol; /* per material */
    double arrhenius_min_C;
    double *omega, *cem43_min;
} abl_damage_maps;

/* Running maps, in one pass over T (issue 17: no second full pass): T_max/T_min, time spent at
 * or above each hot threshold / at or below each cold threshold (seconds; incremented by
 * interval_s when the condition holds) and, when dmg is non-NULL, the damage maps above.
 * Returns the lowest index of a voxel whose temperature is not finite or outside [T_lo, T_hi]
 * (a numerical fault), or (size_t)-1 when all are sane. Per voxel, so thread-independent. */
size_t monitor_update(double T_lo, double T_hi, size_t n, const double *restrict T, double *restrict T_max,
                    double *restrict T_min, int n_hot, const double *hot_C, float *const *t_hot_s,
                    int n_cold, const double *cold_C, float *const *t_cold_s, double interval_s,
                    const abl_damage_maps *dmg);

/* Perfusion shutdown on top of the constant-property step (explicit scheme): where Omega > 0,
 * the Pennes sink W (T_a - T) loses the damaged fraction F = 1 - exp(-Omega), so
 *   T_new += dt/(rho c) W F (T - T_a)
 * with T the state the step started from. Touches only the damage map for undamaged voxels,
 * so it costs a fraction of a full property-field sweep. Returns the extra heat rate this puts
 * back into the tissue [W] (sum of V W F (T - T_a), per z-plane in order: deterministic).
 * stop_C not NaN: the threshold model instead, F = 1 where T_max >= stop_C, else 0, whatever
 * Omega (T_max alone decides). */
double perfusion_shutdown_correct(const abl_stencil *st, const double *restrict omega,
                                  const double *restrict T_max, double stop_C,
                                  const double *restrict T, double *restrict T_new,
                                  double *work_nz);
/* The same on the row parts [row_lo[r], row_hi[r]) of the rows of the box lo..hi only (r =
 * k ny + j; the active region of a heating run, whose spans hold every damaged voxel, sim.c):
 * the same voxels in the same order, so the same bits when no voxel outside is damaged. */
double perfusion_shutdown_correct_rows(const abl_stencil *st, const double *restrict omega,
                                       const double *restrict T_max, double stop_C,
                                       const double *restrict T, double *restrict T_new,
                                       double *work_nz, const int lo[3], const int hi[3],
                                       const int32_t *row_lo, const int32_t *row_hi);


#endif
