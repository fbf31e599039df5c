/* run.h - the run loop: one scenario from t = 0 (or a checkpoint) to its end, with output.
 *
 * sim_run() owns what a whole run does around the stepping of sim.h: opens (or resumes) the
 * result file, advances in chunks that end on snapshot times, writes snapshots, takes
 * checkpoints on a wall-clock cadence or when asked to stop, reports progress, and commits or
 * keeps/deletes the result (output.h). It never steps the physics itself (sim_advance does).
 */
#ifndef ABLASIM_RUN_H
#define ABLASIM_RUN_H

#include <signal.h>
#include <stdbool.h>

#include "ablasim/status.h"

struct abl_sim;

typedef struct {
    double t_s, duration_s, wall_s;
    long step, nsteps;
    int cg_last_iterations;      /* implicit schemes: last solve (0 otherwise) */
    double cg_last_residual;
} abl_progress;

typedef void (*abl_progress_fn)(const abl_progress *p, void *user);

typedef struct {
    const char *output_path;      /* overrides the scenario's; NULL: scenario or default */
    abl_progress_fn progress;     /* may be NULL */
    void *progress_user;
    double progress_interval_s;   /* wall-clock seconds between callbacks */
    bool no_output;               /* run without writing any file (sweeps keep only numbers) */
    const char *checkpoint_path;  /* NULL: no checkpoints */
    double checkpoint_every_s;    /* wall-clock seconds between checkpoints; 0: only on stop */
    volatile sig_atomic_t *stop;  /* set (e.g. by a signal handler) to checkpoint and stop */
    long resume_snapshots;        /* >= 0: continue an interrupted run's partial output */
    const char *resume_part_id;   /* with resume_snapshots: the id the checkpoint recorded for
                                   * that partial output (NULL or "": not checked) */
    bool profile;                 /* write the per-phase timers into the result (--profile) */
    /* run --dt-check: the half-step reference's final maps (dtcheck.h); compared with this
     * run's at its end and written with the result. NULL: no check */
    const struct abl_dt_reference *dt_reference;
} abl_run_opts;

/* Run s to the scenario's end time, writing the output file (unless opts->no_output). */
abl_status sim_run(struct abl_sim *s, const abl_run_opts *opts, abl_error *err);

#endif
