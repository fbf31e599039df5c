/* simview.h - what writers and analyses may read of a simulation: a read-only view.
 *
 * The result writer (output.h), the checkpoint writer (checkpoint.h), the run log (runlog.h)
 * and the zone volumes (isotherms.h) read the scenario, the grid and materials, the maps of the
 * field table, the clock and the bookkeeping, never the solver workspaces or stencil tables.
 * They take this view rather than the whole abl_sim (issue 19), so results/ and analysis/ code
 * does not depend on the simulation's layout and cannot change its state.
 *
 * sim_view() copies scalars and pointers: a view describes the simulation at the moment it was
 * taken (T and T_new swap every step), so take it again after the simulation advanced.
 */
#ifndef ABLASIM_SIMVIEW_H
#define ABLASIM_SIMVIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ablasim/fields.h"
#include "ablasim/grid.h"
#include "ablasim/profile.h"
#include "ablasim/scenario.h"

typedef struct {
    /* energy accounting over the run [J] (only when scenario energy_balance is on) */
    bool energy_tracked;
    double E_stored_initial_J, E_stored_final_J;
    double E_sources_J;     /* volumetric sources + pinned voxels */
    double E_perf_met_J;    /* perfusion + metabolic (net into tissue) */
    double E_boundary_in_J; /* through the domain faces */
} abl_energy;

struct abl_sim;
struct abl_source;
struct abl_runlog;
struct abl_dt_check;

/* Members carry abl_sim's names and meanings (sim.h). */
typedef struct {
    const abl_scenario *sc;
    abl_grid grid;
    int nmat;
    const int *mat_tissue;   /* [nmat] material index -> tissue index */
    const uint8_t *material; /* [grid.n] material index per voxel */
    const abl_field *fields; /* the field table's instances (fields.h; read via field_data) */
    int nfields;
    /* the named maps the analyses read (rows of the field table) */
    const double *T, *T_max, *T_min, *omega, *cem43_min;
    /* sources: names, types, axes, recorded series (source.h); not to be updated */
    const struct abl_source *const *sources;
    int nsources;
    size_t n_extra_pin; /* voxels pinned through the API (their heat has no source) */
    /* clock and loop bookkeeping */
    double t_s, dt_s, dt_stable_s;
    long step;
    double seg_t0_s;
    long seg_steps;
    double monitor_accum_s;
    bool region_known;       /* the active region's box (sim.h reg_lo, reg_hi) is checkpointed */
    int mr_ratio;            /* multirate step: short steps per long one (0: not used) */
    long mr_long_steps;      /* long steps taken so far (checkpointed: a resumed run's whole) */
    long mr_early_ends;      /* of those, ended before m short steps */
    int region_box[6];       /* lo[3], hi[3] */
    const int32_t *region_span_lo, *region_span_hi; /* [ny nz] the rows' spans (sim.h) */
    double wall_s;
    abl_energy energy;
    /* implicit solves: iterations, relative residual, end time [n_cg] */
    const int *cg_iters;
    const double *cg_resid, *cg_time_s;
    size_t n_cg;
    const abl_profile *prof;
    bool profile_output;
    const struct abl_runlog *runlog; /* NULL before runlog_create */
    const struct abl_dt_check *dt_check; /* run --dt-check, once compared (dtcheck.h); else NULL */
} abl_sim_view;

/* The view of s now (no allocation; copies of scalars, pointers into s). */
abl_sim_view sim_view(const struct abl_sim *s);

#endif
