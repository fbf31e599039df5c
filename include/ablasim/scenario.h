/* scenario.h - a validated scenario: everything a run needs, read from YAML + --set overrides.
 *
 * scenario_load() is the only place that reads scenario keys; it checks every key, type and
 * range and reports the first problem as "file:line: key = value: allowed ...". The result is
 * plain data (SI units) that the simulation plans from. See README "Scenario reference".
 */
#ifndef ABLASIM_SCENARIO_H
#define ABLASIM_SCENARIO_H

#include <stdbool.h>
#include <stdio.h>

#include "ablasim/config.h"
#include "ablasim/device.h"
#include "ablasim/schedule.h"
#include "ablasim/grid.h"
#include "ablasim/mesh.h"
#include "ablasim/shape.h"
#include "ablasim/tissue.h"

/* the running maps physics.initial_state_file starts, in abl_scenario.initial_maps */
enum { ABL_INITIAL_T_MAX, ABL_INITIAL_T_MIN, ABL_INITIAL_OMEGA, ABL_INITIAL_CEM43,
       ABL_INITIAL_MAPS };

#define ABL_MAX_MATERIALS 250
#define ABL_MAX_THRESHOLDS 16

/* abl_bc, abl_bc_type and the FACE_* order belong to the grid (grid.h): kernels and solvers
 * use them without the scenario. */
typedef struct {
    abl_shape shape;
    int tissue; /* index in the tissue table */
    char where[256]; /* file:line and key path, for messages */
} abl_region;

/* SRC_MODALITY: a source type registered in src/sources/registry.c (RFA, MWA, cryo, ...) that
 * parses its own keys; see source.h. */
typedef enum { SRC_VOLUMETRIC, SRC_FIXED_TEMPERATURE, SRC_MODALITY } abl_source_type;
struct abl_source_type_info;

typedef struct {
    char name[64];
    abl_source_type type;
    abl_shape shape;
    abl_schedule schedule; /* power_W (volumetric) or temperature_C (fixed_temperature) */
    double on_s, off_s;    /* active for on_s <= t < off_s; outside: no heat, no pinned voxels */
    const struct abl_source_type_info *modality; /* SRC_MODALITY: parser and constructor */
    void *params;                                /* SRC_MODALITY: its parsed parameters */
    char where[256];       /* file:line of the entry, for messages */
    /* `device: NAME` (device.h): the preset's name ("" without one) and its values, each with
     * whether it was applied (false: the scenario set the key itself); recorded in the run
     * summary */
    char device[ABL_DEVICE_NAME_LEN];
    int ndevice_values;
    abl_device_value device_values[ABL_DEVICE_MAX_VALUES]; /* .node is NULL here */
    bool device_applied[ABL_DEVICE_MAX_VALUES];
} abl_source_cfg;

/* A temperature probe of output.probes: a point, or a line of npoints equally spaced points
 * from a_m to b_m (both ends included, named <name>_0 .. <name>_<npoints-1>). Positions are
 * checked against the grid when the simulation is planned (runlog.h), so the entry keeps where
 * each position came from for that message. */
#define ABL_MAX_PROBES 256    /* probe points in all (a line counts each of its points) */
#define ABL_PROBE_NAME_LEN 41 /* 40 characters: room for "_<index>" within 48 */
typedef struct {
    char name[ABL_PROBE_NAME_LEN];
    bool line;
    double a_m[3], b_m[3];           /* point: a_m; line: from a_m to b_m */
    int npoints;                     /* 1 for a point */
    char where_a[320], where_b[320]; /* "file:line: 'output.probes[i].position_mm'" (from_mm),
                                      * and of to_mm for a line */
} abl_probe_cfg;

typedef enum {
    SCHEME_EXPLICIT,
    SCHEME_IMPLICIT,       /* backward Euler */
    SCHEME_CRANK_NICOLSON,
    SCHEME_SPECTRAL        /* exact modal evolution: homogeneous tissue, fixed/insulated faces */
} abl_time_scheme;

typedef struct abl_scenario {
    char *path;       /* scenario file */
    char *text;       /* file text followed by the --set lines, stored in the output */
    char *file_text;  /* the scenario file as read (checkpoints re-create the run from it) */
    char *base_dir;   /* directory relative paths resolve against */
    char **sets;      /* the --set assignments, in order */
    int nsets;
    char name[128];
    /* sentences, one per line, about input that is accepted but does nothing (a source
     * switched on after the run ends); `ablasim run` prints each as a note */
    char notes[1024];
    abl_tissue_table tissues;
    char *tissues_path;
    char *devices_path; /* devices_file (read only when a source names a device) */
    uint64_t devices_digest; /* FNV-1a of that file's bytes as read for the presets; 0 when no
                              * source names one (a checkpoint compares it on resume) */

    /* grid: from dims/spacing or from a mesh file */
    int dims[3];
    double spacing_m[3];
    double origin_m[3];
    bool origin_given;
    char *mesh_path;               /* NULL: generated grid */
    int mesh_label_tissue[256];    /* mesh label -> tissue index, -1 unmapped */
    int background_tissue;
    abl_region *regions;
    int nregions;

    double T_arterial_C, T_initial_C;
    /* physics.initial_temperature_file: a temperature field [C] read when the scenario is
     * loaded (initial_T.values NULL: uniform T_initial_C); sim_create checks it against the
     * grid. physics.initial_state_file: the same from a result's T_final_C (initial_is_state),
     * and its T_max_C, T_min_C, damage_omega, cem43_min in initial_maps (ABL_INITIAL_*) */
    char *initial_T_path, *initial_T_dataset;
    char initial_T_where[700]; /* where the key was given ("file:line: physics.<key>" or
                                * "--set physics.<key>"), for the grid check's messages */
    abl_field_file initial_T;
    double initial_T_min_C; /* lowest value of initial_T (freezing: auto) */
    bool initial_is_state;
    abl_field_file initial_maps[ABL_INITIAL_MAPS];
    abl_field_file initial_applicator; /* the state's needle track, if it has one (0/1) */
    /* the state's other running maps where it has them (values NULL where not): time at or
     * above / below each of this run's thresholds (the state's map for the same threshold),
     * freeze counts and their hysteresis flag (frozen_state, 0/1) */
    abl_field_file initial_hot[ABL_MAX_THRESHOLDS], initial_cold[ABL_MAX_THRESHOLDS];
    abl_field_file initial_freeze_cycles, initial_frozen_state;
    /* the state's tissue layout: its /grid/labels (material index per voxel) with names =
     * its /grid/material_names (values NULL for a file without them); compared with this
     * run's in build_grid (sim.c), which notes a difference */
    abl_field_file initial_layout;
    bool ex_vivo;               /* physics.ex_vivo_temperature_C given: no perfusion, no
                                 * metabolic heat, specimen and faces at T_ex_vivo_C */
    double T_ex_vivo_C;
    double arrhenius_min_C;     /* Arrhenius damage integrated at and above this temperature */
    bool perfusion_shutdown;    /* w_b falls with heating: scaled by exp(-Omega) = 1 - damaged
                                 * fraction (arrhenius), or stopped where T_max reached
                                 * perfusion_stop_C (threshold) */
    double perfusion_stop_C;    /* threshold: the temperature; NAN: arrhenius */
    /* Phase change of tissue water (enthalpy formulation, docs/PHASE_CHANGE.md): freezing over
     * [freeze_solidus_C, freeze_liquidus_C], vaporisation over [vap_lo_C, vap_hi_C]; both
     * resolved from auto/on/off at load time. Perfusion stops for good where T_min has reached
     * stasis_C (vascular stasis after freezing). */
    bool freezing, vaporisation;
    double freeze_solidus_C, freeze_liquidus_C;
    double vap_lo_C, vap_hi_C;
    double stasis_C;
    double phase_tol_C;      /* implicit schemes: fixed-point tolerance of the phase step */
    int phase_max_iterations;
    bool multirate;          /* time.multirate: auto (true) or off (sim.c multirate_step) */
    bool active_region;      /* time.active_region: auto (true) or off (sim.c, explicit
                              * freezing runs) */
    abl_bc bc[6];

    abl_time_scheme scheme;
    double duration_s;
    double dt_s;           /* 0: automatic */
    double dt_safety;      /* fraction of the stability limit used by automatic dt */
    double solver_tol;     /* implicit schemes: CG relative residual */
    int max_iterations;    /* implicit schemes: CG iteration cap per solve */
    int preconditioner;    /* implicit schemes: ABL_PRECOND_* of pcg.h (0: none) */
    int rannacher_steps;   /* Crank-Nicolson steps replaced by two backward-Euler half steps
                            * after each source switch (Rannacher 1984) */

    abl_source_cfg *sources;
    int nsources;

    /* output */
    char *output_path;     /* NULL: <scenario name>.h5 in the current directory */
    double snapshot_interval_s;  /* 0: no snapshots */
    double monitor_interval_s;   /* running maps sampled at least this often */
    int n_hot, n_cold;
    double hot_C[ABL_MAX_THRESHOLDS], cold_C[ABL_MAX_THRESHOLDS];
    bool energy_balance;   /* exact per-step energy accounting (one extra pass per step) */
    abl_probe_cfg *probes; /* output.probes, in the order given */
    int nprobes;
    int nprobe_points;        /* points of all probes (lines expanded), <= ABL_MAX_PROBES */
    bool tip_probes;          /* output.tip_probes: a probe at every applicator tip (source axes) */
    double growth_interval_s; /* output.growth_interval_s: zones measured at least this far
                               * apart (and at the end) for the growth curves */
} abl_scenario;

/* Load and validate. sets: "a.b=value" strings applied in order before validation. */
abl_status scenario_load(const char *path, const char *const *sets, int nsets,
                         abl_scenario **out, abl_error *err);
/* Same from YAML text (tests); base_dir resolves relative paths (tissues_file, mesh). */
abl_status scenario_load_string(const char *text, const char *origin, const char *base_dir,
                                const char *const *sets, int nsets, abl_scenario **out,
                                abl_error *err);
void scenario_free(abl_scenario *sc);

struct abl_fileset;
/* The role the initial field's file has in file guards ("initial temperature field (...)" or
 * "initial state (...)"), NULL without one. */
const char *scenario_initial_role(const abl_scenario *sc);
/* Declare the files the scenario's runs read besides the scenario itself (tissue table, mesh,
 * initial field, device presets) as inputs of fs (fileguard.h), so that no output of the
 * command replaces them. */
abl_status scenario_declare_inputs(const abl_scenario *sc, struct abl_fileset *fs,
                                   abl_error *err);

/* README "Scenario reference": the Markdown table of every scenario key, printed from the key
 * declarations the schema checks against (`ablasim keys --markdown`). 0 or -1 (write error). */
int scenario_reference_markdown(FILE *f);
/* The keys of a registered source type (rfa, mwa, cryo) besides the common ones, from the type's
 * declarations (docs/RFA.md, docs/MWA.md, docs/CRYO.md; `ablasim keys --source TYPE`).
 * 0, -1 (write error) or 1 (no such type, or a type without own keys). */
int scenario_source_reference_markdown(FILE *f, const char *type);

#endif
