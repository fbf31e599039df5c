/* sim.h - the simulation driver: plan once, run, destroy (FFTW style).
 *
 * sim_create() does the expensive set-up: builds the grid and tissue labels (mesh file and/or
 * shapes), picks the time step, plans the stencil tables, allocates the maps of the field table
 * (fields.h) and creates the sources. sim_step() / sim_advance() advance a planned simulation
 * and update its running maps, without output (tests, benchmarks, the run loop). The run loop
 * that owns output, snapshots, checkpoints and progress is sim_run() in run.h.
 */
#ifndef ABLASIM_SIM_H
#define ABLASIM_SIM_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "ablasim/dtcheck.h"
#include "ablasim/field_rows.h"
#include "ablasim/fields.h"
#include "ablasim/grid.h"
#include "ablasim/implicit.h"
#include "ablasim/kernels.h"
#include "ablasim/phase.h"
#include "ablasim/profile.h"
#include "ablasim/run.h"
#include "ablasim/runlog.h"
#include "ablasim/scenario.h"
#include "ablasim/simview.h"
#include "ablasim/source.h"

/* Limits on computed counts, checked before use (issue 14: a count that overflows must be
 * refused, never wrapped): time steps of one run, and snapshots of one result file. */
#define ABL_MAX_STEPS 100000000L
#define ABL_MAX_SNAPSHOTS 100000L

/* Temperature range over which temperature-dependent properties are bounded (the range the
 * scenario schema allows for any temperature input): the stability bounds use it. */
#define ABL_T_MIN_C (-200.0)
#define ABL_T_MAX_C (200.0)

/* Property hook: fill per-voxel conductivity k [W/m/K] and perfusion W = w_b rho_b c_b
 * [W/m^3/K] for the state in v (called before every step once set). Temperature- and
 * damage-dependent tissue models (RFA, MWA, cryo) implement this. Contract: k of a voxel never
 * exceeds its material's k_bound (abl_sim.k_bound, the value the stable time step was computed
 * with; for a material held at every step above the freezing range, held_always, that is its k
 * at the held temperatures, not its frozen k). */
typedef abl_status (*abl_property_fn)(void *ctx, const abl_field_view *v, double *k_W_mK,
                                      double *W_W_m3K, abl_error *err);

typedef struct abl_sim {
    const abl_scenario *sc;
    abl_grid grid;
    int nmat;
    int mat_tissue[ABL_MAX_MATERIALS]; /* material index -> tissue index */
    uint8_t *material, *cls;
    /* physics.initial_state_file: a sentence when the state's tissue layout differs from this
     * run's (build_grid), else empty; the CLI prints it as a note */
    char state_layout_note[640];
    /* Every per-voxel map that evolves is a row of the field table (field_rows.h, fields.h):
     * allocated, freed, checkpointed, range-checked on resume, written to the result and the
     * XDMF by iterating fields[]; the named pointers below serve the hot loops. */
    abl_field *fields;
    int nfields;
    /* the maps' pointers, one per row of field_rows.h (T, T_new, T_max, T_min, omega,
     * cem43_min, freeze_cycles, frozen_now, applicator, t_hot[], t_cold[]) */
#define ABL_SIM_FIELD_POINTER(member, array, dtype, ...) ABL_CTYPE(dtype) *member array;
    ABL_FIELD_ROWS(ABL_SIM_FIELD_POINTER)
#undef ABL_SIM_FIELD_POINTER
    double monitor_accum_s;  /* time since the running maps were last updated */
    double *arr_A, *arr_Ea;    /* per material Arrhenius A [1/s], Ea [J/mol] (A = 0: none) */

    /* stencil tables */
    abl_stencil st;
    abl_fast_coef *fast;
    double *inv_rhoc, *perf_W, *src_const, *gface, *gbound;
    double *q_met, *k_coeff, *k37; /* per material: metabolic heat, dk/dT / k37, k at 37 C */
    bool var_props;                /* some tissue has temperature-dependent properties */
    abl_phase_curve *phase;        /* [nmat] enthalpy curves; NULL: no phase change */
    double *k_frozen;              /* [nmat] conductivity of the frozen tissue (NaN: none) */
    abl_property_fn prop_fn;       /* NULL: constant per-material properties (fast path) */
    void *prop_ctx;
    double *k_field, *W_field;     /* per-voxel properties filled by prop_fn */
    abl_segment *seg;
    size_t *row_seg;
    abl_gen_coef *gen;
    size_t nseg, ngen;
    /* Active region of explicit freezing runs (docs/PHASE_CHANGE.md "Active region"): the
     * property hook, the variable-property sweep and the enthalpy map run only on the row spans
     * of voxels that are or were outside the liquid window [reg_T_lo_C, reg_T_hi_C] (plus one
     * voxel around them); everything else is one constant-property sweep with the liquid
     * capacity. */
    bool region_on;                /* planned for this run */
    bool region_known;             /* the spans and their box are known (run or checkpoint) */
    bool region_props_ready;       /* k_field, W_field filled over the whole grid */
    bool region_heat_after;        /* a heating run's region (sim.c region_heated_after): the
                                    * step as without it, the enthalpy map and the perfusion
                                    * correction on the spans; heated voxels join once they
                                    * leave the window */
    size_t *reg_left, n_left, cap_left; /* region_heated_after's candidates */
    int reg_lo[3], reg_hi[3];      /* box of the spans, lo <= (i, j, k) < hi; empty when
                                    * lo[0] >= hi[0] */
    int32_t *span_lo, *span_hi;    /* [ny nz] per row r = k ny + j: [span_lo, span_hi) holds
                                    * every voxel of the row ever outside the window (empty:
                                    * lo >= hi) */
    int32_t *vspan_lo, *vspan_hi;  /* [ny nz] this step's variable-property spans: the spans
                                    * grown by one voxel in x, joined with the four neighbour
                                    * rows' (rows of the box + 1 only) */
    double reg_T_lo_C, reg_T_hi_C; /* the liquid window */
    abl_stencil st_u;              /* stencil with each material's liquid capacity rho c */
    abl_fast_coef *fast_u;
    double *inv_rhoc_u;
    abl_segment *seg_u;
    size_t *row_seg_u;
    abl_gen_coef *gen_u;
    /* Multirate step of explicit freezing runs (time.multirate, docs/PHASE_CHANGE.md
     * "Multirate step"): mr_ratio short steps of dt inside the fast box (the active region's
     * box grown by mr_ratio + 1 voxels), one long step of mr_ratio dt with the liquid stencil
     * st_s everywhere else, the heat across the fast box's faces exchanged exactly. */
    int mr_ratio;                  /* m >= 2 when planned, else 0 */
    abl_stencil st_s;              /* liquid capacities, step m dt */
    abl_fast_coef *fast_s;
    abl_segment *seg_s;
    size_t *row_seg_s;
    abl_gen_coef *gen_s;
    double *mr_buf;                /* [n] the short steps' second buffer */
    bool mr_active;                /* inside a long step: explicit_step works in the fast box */
    int mr_sub;                    /* which short step of the long one (0 .. m - 1) */
    int mr_lo[3], mr_hi[3];        /* the fast box of the current long step */
    uint8_t *mr_mask;              /* [n] 1 inside the fast box */
    size_t *mr_pair;               /* [2 mr_npair] (f, s) across each face between F and S */
    uint8_t *mr_axis;              /* [mr_npair] the face's axis */
    double *mr_sum;                /* [mr_npair] sum over the short steps after the first of
                                    * T_f - T_f(start of the long step) */
    size_t mr_npair, mr_cap;
    size_t *mr_pin_idx;            /* voxels held outside the fast box at the long step's end */
    double *mr_pin_T;              /* and their temperatures */
    size_t mr_npin, mr_cap_pin;
    size_t *mr_cpl_idx;            /* couplings (source.h heat_G) of voxels outside the fast
                                    * box, taken by the long step: voxel, G [W/m^3/K], T_ref */
    double *mr_cpl_G, *mr_cpl_T;
    size_t mr_ncpl, mr_cap_cpl;
    long mr_long_steps;            /* long steps taken so far (run summary; checkpointed) */
    long mr_early_ends;            /* long steps ended before m short steps */
    int mr_margin;                 /* the fast box is the active box grown by this (>= 1;
                                    * MR_MARGIN in sim.c; tests set 1 to end long steps early) */

    abl_source **sources;
    int nsources;
    /* extra pinned voxels set through the API (tests, embedding) */
    size_t n_extra_pin;
    size_t *extra_pin_idx;
    double *extra_pin_T;

    /* implicit schemes */
    abl_implicit *im;
    abl_spectral *sp;              /* time.scheme: spectral */
    double *b_const;               /* spectral: constant forcing f / (rho c) [K/s] */
    double *rhs, *qfield;          /* right-hand side; heat of the step (energy bookkeeping) */
    double *rhs0, *T_iter;         /* phase change: rhs of the step, fixed-point iterate */
    uint8_t *fixed;                /* 1 where a voxel is held this step */
    uint8_t *owner;                /* scratch: which source holds a voxel (overlap check) */
    size_t *heat_seen;             /* scratch: heated voxels of the step (implicit overlap check) */
    size_t cap_heat_seen;
    size_t *cpl_idx;               /* scratch: coupled voxels of the step (implicit schemes: */
    double *cpl_G;                 /* their coupling conductance, taken implicitly) */
    size_t cap_cpl;
    size_t *fixed_list;
    size_t n_fixed, cap_fixed;
    double *jump_s;                /* source switch times (Crank-Nicolson start-up) */
    size_t n_jumps;
    int *cg_iters;                 /* per solve: iterations, relative residual, end time */
    double *cg_resid, *cg_time_s;
    size_t n_cg, cap_cg;

    double dt_s, dt_stable_s;
    double rate_sum_W_m3K[ABL_MAX_MATERIALS]; /* per material: bound on its voxels' interior
                                               * face conductances plus perfusion (stability;
                                               * domain faces are taken implicitly) */
    double k_bound[ABL_MAX_MATERIALS]; /* per material: largest k its voxels reach [W/m/K] */
    bool held_always[ABL_MAX_MATERIALS]; /* every voxel of the material is held at every step
                                          * by a source (source.h held_always) above the
                                          * freezing range: it never freezes, k_bound is its k
                                          * at the held temperatures */
    /* Explicit scheme: the voxels on a conducting domain face (fixed or convective), whose
     * face conductances each step takes implicitly (wall_implicit in sim.c): index, and a bit
     * per domain face FACE_XMIN..FACE_ZMAX that the voxel touches and that conducts. */
    size_t *wall_idx;
    uint8_t *wall_faces;
    int32_t *wall_ijk;   /* [3 n_wall] the voxel's (i, j, k) */
    double *wall_G;      /* sum of the constant stencil's G_b over the voxel's faces [W/m^3/K] */
    double *wall_eblock; /* per block of the list: heat the correction added (summed in order) */
    /* add_source_heat's per-block energies and candidate flags (sim.c HEAT_BLOCK) */
    double *heat_eblock;
    uint8_t *heat_fblock;
    size_t heat_nblock;
    size_t n_wall;
    double t_s;
    long step;
    /* Step-aligned time: every breakpoint (source on/off, schedule points, protocol phases,
     * snapshot times; sorted, in (0, duration]) is a step boundary; the step before one is
     * shortened. t = seg_t0_s + seg_steps * dt_s since the last breakpoint landed on (so a
     * run without interior breakpoints has t = step * dt_s exactly, as before). */
    double *bp_s;
    size_t n_bp;
    double seg_t0_s;
    long seg_steps;
    long nsteps_total;             /* steps from 0 to the end, breakpoints included */
    long checkpoints_written;      /* by this process's sim_run (a run removes only checkpoints
                                    * it wrote itself) */
    double wall_s;
    abl_profile prof;              /* per-phase wall time of this process (profile.h) */
    bool profile_output;           /* write prof to the result (/profile, JSON "profile") */
    abl_dt_check dt_check;         /* run --dt-check: the comparison with the half-step run */
    abl_energy energy;
    struct abl_runlog *runlog;     /* probes, zone growth, source power (runlog.h); sampled
                                    * by the monitor pass */
    /* set by the caller (the planner's evaluations: abl_plan_opts.stop) so that sim_advance
     * looks at it before every step and returns ABL_ESTOPPED, the state then mid-way (for a
     * simulation that is abandoned). Looked at per step, not per call, so that the chunks a
     * caller asks for stay the same and no result changes. NULL: never. sim_run takes its own
     * stop request (abl_run_opts.stop) at its chunk boundaries, to checkpoint. */
    volatile sig_atomic_t *abandon;
} abl_sim;

abl_status sim_create(const abl_scenario *sc, abl_sim **out, abl_error *err);
/* The conductivity [W/m/K] the stencil's property hook gives material m at T_C: its linear
 * k(T), and below the liquidus, when freezing is modelled, the blend with its frozen value by
 * the liquid fraction (sim.c linear_k_rows). For sources that couple a voxel to a surface. */
double sim_tissue_k(const abl_sim *s, int m, double T_C);
/* Hold these voxels at these temperatures from now on (copied). */
abl_status sim_pin_voxels(abl_sim *s, size_t n, const size_t *idx, const double *T_C,
                          abl_error *err);
/* Switch to per-voxel properties computed by fn before every step (before the first step). */
abl_status sim_set_property_hook(abl_sim *s, abl_property_fn fn, void *ctx, abl_error *err);
/* Advance nsteps explicit steps (sources, pins, running maps, energy accounting). */
abl_status sim_step(abl_sim *s, long nsteps, abl_error *err);
/* Advance up to nmax steps, stopping early once t reaches t_stop (a snapshot time; INFINITY:
 * none). Running maps, probes and the energy bookkeeping are updated as in sim_step. The run
 * loop (run.h) drives a whole run with it. */
abl_status sim_advance(abl_sim *s, long nmax, double t_stop, abl_error *err);
void sim_destroy(abl_sim *s);

/* Memory a run of this scenario needs [bytes], estimated before allocation. */
size_t sim_memory_estimate(size_t nvox, int n_hot, int n_cold);

#endif
