/* sweep.h - parameter sweeps and uncertainty studies over one base scenario.
 *
 * A sweep file (SWEEP.yaml, docs/SWEEPS.md) names a base scenario and how to vary it: axes of
 * explicit values or linear/log ranges (combined as a full grid or zipped) and/or random or
 * Latin-hypercube samples of parameter distributions. Every point is a list of "key=value"
 * strings applied exactly like `ablasim run --set`, so any point can be re-run by hand.
 * sweep_run() runs the points (one after another, several at once with fewer threads each, or
 * across MPI ranks with a dynamic work queue), appends each finished point to a crash-safe
 * journal, and at the end regenerates the results table (CSV + HDF5) and the per-voxel
 * probability-of-ablation map from the journal. Re-running a sweep skips finished points; a
 * stop request (sweep_run_opts.stop) ends it between points with the journal whole.
 * Thread, job and rank counts change speed, never the table (wall times aside).
 */
#ifndef ABLASIM_SWEEP_H
#define ABLASIM_SWEEP_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ablasim/status.h"

typedef enum { SWEEP_COMBINE_GRID, SWEEP_COMBINE_ZIP } sweep_combine;
typedef enum { SWEEP_SAMPLE_NONE, SWEEP_SAMPLE_RANDOM, SWEEP_SAMPLE_LHS } sweep_sample_method;
typedef enum { SWEEP_DIST_NORMAL, SWEEP_DIST_UNIFORM, SWEEP_DIST_LOGNORMAL } sweep_dist;

/* One swept key: an axis (a list of values) or a sampled parameter. */
typedef struct {
    char *key;    /* scenario key, dotted as for --set ("sources.0.power_W") */
    char *column; /* table column name (default: the key) */
    int line;     /* line in the sweep file, for messages */
    /* axes: the values, as YAML text exactly as passed to --set */
    size_t nvalues;
    char **values;
    /* sampled parameters: distribution and its two parameters
     * (normal: mean, sd; uniform: low, high; lognormal: mu, sigma of ln x) */
    bool sampled;
    sweep_dist dist;
    double p1, p2;
} sweep_key;

typedef struct sweep_layout sweep_layout; /* table columns; private to src/sweep */

/* Most points a sweep may have: points = product of the axis lengths (grid) or their common
 * length (zip), times the samples; beyond it the sweep file is refused (a count that large
 * would take years to run and its expansion alone gigabytes). Checked before every
 * multiplication, so no product can wrap around. */
#define SWEEP_MAX_POINTS 1000000L
#define SWEEP_MAX_EXTRA_INPUTS 9

typedef struct abl_sweep {
    char *path;       /* sweep file */
    char *text;       /* its text (stored in the results file) */
    char *base_path;  /* base scenario, resolved against the sweep file's directory */
    char *output_dir; /* as given: relative to the working directory, like output.file */
    sweep_combine combine;
    sweep_sample_method method;
    long nsamples;
    uint64_t seed;
    bool fields;                 /* per-point field files (output_dir/points/point_<i>.h5) */
    double ablation_threshold_C; /* mask for the probability map and the zone extents */
    int probability_map;         /* -1 auto (on with sampling), 0 off, 1 on */
    bool per_tissue;             /* per-tissue volume and extreme columns */

    sweep_key *keys; /* axes first (in file order), then sampled parameters */
    int nkeys, naxes;

    /* expansion: point p sets keys[k] to value[p * nkeys + k]; set[...] is "key=value" */
    size_t npoints;
    char **value;
    char **set;

    /* filled by sweep_validate */
    bool validated;
    sweep_layout *layout;
    bool prob_map_on;        /* probability map will be written */
    char prob_map_note[512]; /* why it is off (auto mode), empty otherwise */
    /* files the points read besides the sweep file and the base scenario: the tissue tables
     * and meshes of the base scenario and of the first and last points (distinct names), so
     * that sweep_run can refuse an output_dir whose files would replace one of them */
    int nextra;
    char *extra_path[SWEEP_MAX_EXTRA_INPUTS];
    const char *extra_role[SWEEP_MAX_EXTRA_INPUTS];
} abl_sweep;

/* Parse and expand a sweep file; unknown keys and bad values are errors naming file:line. */
abl_status sweep_load(const char *path, abl_sweep **out, abl_error *err);
/* Same from text (tests); dir resolves the base scenario path. */
abl_status sweep_load_string(const char *text, const char *origin, const char *dir, abl_sweep **out,
                             abl_error *err);
void sweep_free(abl_sweep *sw);

/* Point i's "key=value" strings (sw->nkeys of them), in the order they are applied. */
const char *const *sweep_point_sets(const abl_sweep *sw, size_t i);
/* Point i's arguments as a shell line, "--set K=V --set 'K=[1, 2]'" (a value with characters
 * a shell would split or expand in single quotes): what the progress lines and --dry-run print
 * and results.h5 /table/set_args holds, pasted as is after `ablasim run BASE`. Malloc'd; NULL
 * when out of memory. */
char *sweep_set_args(const abl_sweep *sw, size_t i);
/* FNV-1a 64 of point i's set strings: the journal key together with i. */
uint64_t sweep_point_hash(const abl_sweep *sw, size_t i);

/* Check every swept key against the base scenario (loaded with each key's first and last value,
 * then with the first and last point) and build the table columns. Idempotent. */
abl_status sweep_validate(abl_sweep *sw, abl_error *err);

/* docs/SWEEPS.md "SWEEP.yaml reference": a Markdown table printed from the sweep file's key
 * declarations (the ones the unknown-key check uses; `ablasim keys --sweep`). 0 or -1. */
int sweep_reference_markdown(FILE *f);

/* After sweep_validate: refuse (ABL_EINVAL, naming both roles and paths) a sweep whose
 * output_dir files (journal, its lock, results.csv/.h5 and their temporaries, the per-point
 * masks and result files with their temporaries and sidecars) would replace one of its inputs
 * (sweep file, base scenario, tissue tables, meshes), compared as resolved paths and inodes.
 * Reads nothing but file metadata and creates nothing; sweep_run calls it too. */
abl_status sweep_check_files(const abl_sweep *sw, abl_error *err);

/* Table column names in order (after sweep_validate); ncols receives the count. */
const char *const *sweep_columns(const abl_sweep *sw, int *ncols);

/* One finished point, as reported to the caller (rank 0 only; never concurrently). */
typedef struct {
    size_t index;          /* point index */
    size_t ndone, npoints; /* finished so far (resumed ones included) / all */
    abl_status status;
    const char *message; /* error message, "" when ok */
    double wall_time_s;
    double V_ablation_mL; /* volume with T_max >= ablation_threshold_C (NaN on error) */
    int rank;             /* MPI rank (0 without MPI) that ran it */
} sweep_point_report;

typedef void (*sweep_report_fn)(const sweep_point_report *r, void *user);

typedef struct {
    int jobs;    /* points at once in this process (>= 1; only without MPI ranks) */
    int threads; /* OpenMP threads of this process, shared by its jobs; 0: omp_get_max_threads */
    sweep_report_fn report;
    void *report_user;
    /* set (by a signal handler: SIGTERM from a batch system's time limit, Ctrl-C) to stop: the
     * points running are abandoned (their files removed, not journalled), no new one starts,
     * the journal keeps every finished point and the table is not rewritten; sweep_run then
     * returns ABL_ESTOPPED and the same sweep continues with the rest. NULL: never. Under MPI
     * every rank's flag counts (mpirun and srun pass the signal to all ranks). */
    volatile sig_atomic_t *stop;
} sweep_run_opts;

typedef struct {
    int rank, nranks; /* this process; only rank 0 fills the rest */
    size_t npoints;
    size_t nresumed; /* taken from the journal */
    size_t nrun;     /* run now */
    size_t nok, nfailed;
    abl_status first_failure; /* status of the lowest-index failed point, ABL_OK if none */
    size_t first_failure_index;
    double wall_s; /* of this invocation */
    char csv_path[1024], h5_path[1024], journal_path[1024];
    bool prob_map_written;
    char note[1024]; /* things the user should know (torn journal line dropped, map off) */
} sweep_summary;

/* Run every point not yet in the journal, then write the table and probability map.
 * With MPI (built with ABLASIM_MPI, MPI initialised by the caller, more than one rank) rank 0
 * hands out points and alone writes files; every rank must call this. Returns ABL_OK when the
 * table was written (failed points are rows with their status; see sum->nfailed).
 * Before creating anything, rank 0 declares the inputs (sweep file, base scenario, tissue
 * tables, meshes) and the files of output_dir (journal, its lock, results.csv/.h5 and their
 * temporaries, per-point masks and results) to fileguard and refuses any output that is an
 * input (ABL_EINVAL); then it holds an exclusive lock on output_dir/journal.txt (the file
 * journal.txt.lock) until the table is written, so a second sweep on the same output_dir
 * fails at once with ABL_EIO "another ablasim process is writing ... (pid N)". */
abl_status sweep_run(abl_sweep *sw, const sweep_run_opts *opts, sweep_summary *sum, abl_error *err);

/* ---- building blocks exposed for tests and benchmarks ------------------------------------ */

/* Inverse of the standard normal CDF, full double precision for p in (0, 1). */
double sweep_norm_inv(double p);
/* The unit-interval samples behind the sampled parameters, [sample * nparams + param],
 * before the inverse CDFs are applied (LHS: each of the n strata of every parameter holds
 * exactly one). Caller frees. */
abl_status sweep_unit_samples(sweep_sample_method m, long n, int nparams, uint64_t seed,
                              double **u_out, abl_error *err);

#endif
