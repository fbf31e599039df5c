/* run.c - the run loop (run.h): output, snapshots, checkpoints, stop requests and progress
 * around sim_advance. The physics and the running maps are sim.c's; the file formats are
 * output.c's and checkpoint.c's.
 */
#include "ablasim/run.h"

#include <math.h>
#include <omp.h>
#include <stdbool.h>
#include <stdio.h>
#include <unistd.h>

#include "ablasim/checkpoint.h"
#include "ablasim/dtcheck.h"
#include "ablasim/output.h"
#include "ablasim/sim.h"

/* Is there a partial result "<path>.part" (output.h)? */
static bool part_exists(const char *path)
{
    char part[4096];
    const int n = snprintf(part, sizeof part, "%s.part", path);
    return n > 0 && (size_t)n < sizeof part && access(part, F_OK) == 0;
}

/* Flush the partial result and write a checkpoint that refers to it. */
static abl_status take_checkpoint(abl_sim *s, abl_output *o, const abl_run_opts *opts,
                                  const char *path, abl_error *err)
{
    prof_start(&s->prof);
    abl_status st = output_flush(o, err);
    if (st) return st;
    const abl_sim_view v = sim_view(s);
    st = checkpoint_write(opts->checkpoint_path, &v, path, output_snapshot_count(o),
                          output_part_id(o), err);
    if (st == ABL_OK) {
        s->checkpoints_written++;
        output_keep_partial(o); /* the checkpoint needs the .part from now on */
    }
    prof_mark(&s->prof, ABL_PROF_CHECKPOINT, 0);
    return st;
}

abl_status sim_run(abl_sim *s, const abl_run_opts *opts, abl_error *err)
{
    const abl_scenario *sc = s->sc;
    const abl_run_opts none = {0};
    if (!opts) opts = &none;
    const long nsteps = s->nsteps_total;
    const char *path = opts->output_path ? opts->output_path : sc->output_path;
    char defpath[300];
    if (!path) {
        snprintf(defpath, sizeof defpath, "%s.h5", sc->name);
        path = defpath;
    }
    abl_output *o = NULL;
    const bool write = !opts->no_output;
    const bool resumed = opts->resume_snapshots >= 0 && s->step > 0;
    abl_status st = ABL_OK;
    s->profile_output = opts->profile;
    prof_start(&s->prof);
    /* A checkpoint that did not carry the run log (runlog_state_io) leaves the fresh log of
     * the resumed simulation, whose t = 0 records would be joined to samples after the resume
     * as if nothing happened in between: start the records again, marked history_from_s. Here
     * rather than in output_resume, which only reads the simulation. */
    if (write && resumed && s->runlog && !s->runlog->restored) {
        const abl_sim_view v = sim_view(s);
        if ((st = runlog_restart(s->runlog, &v, err))) return st;
    }
    if (write) {
        const abl_sim_view v = sim_view(s);
        st = resumed ? output_resume(path, &v, opts->resume_snapshots, opts->resume_part_id, &o,
                                     err)
                     : output_open(path, &v, &o, err);
    }
    if (st) return st;
    if (write && resumed) output_keep_partial(o); /* the checkpoint resumed from needs it */
    if (write) prof_mark(&s->prof, ABL_PROF_OUTPUT, 0);
    const double t0 = omp_get_wtime() - s->wall_s; /* a resumed run keeps counting */
    double last_report = omp_get_wtime(), last_ckpt = last_report;
    /* snapshots at k * interval (each a step boundary, see plan_time) and at the end */
    const double iv = sc->snapshot_interval_s;
    prof_start(&s->prof);
    if (iv > 0 && write && !resumed) {
        const abl_sim_view v = sim_view(s);
        if ((st = output_snapshot(o, &v, err))) goto fail;
        prof_mark(&s->prof, ABL_PROF_OUTPUT, 0);
    }
    /* look at stop requests and checkpoints every few explicit steps (a step with an RFA
     * potential solve can take a good fraction of a second: 64 steps made SIGTERM wait 25 s),
     * after every implicit step */
    const long max_chunk = sc->scheme == SCHEME_EXPLICIT ? 8 : 1;
    while (s->step < nsteps) {
        if (opts->stop && *opts->stop) {
            if (!opts->checkpoint_path) {
                st = abl_fail(err, ABL_ESTOPPED,
                              "stopped at t = %.1f s on request; no checkpoint was asked for "
                              "(--checkpoint-every), so the run is lost",
                              s->t_s);
                goto fail;
            }
            if ((st = take_checkpoint(s, o, opts, path, err))) goto fail;
            long nsnap;
            if (write && (st = output_suspend(o, &nsnap, err))) {
                o = NULL; /* released by output_suspend */
                goto kept;
            }
            /* a run with --dt-check keeps its check only when resumed with it (the checkpoint
             * does not record it): say so (an adversarial test, session 29: the advice without
             * it gave a result without dt_check) */
            return abl_fail(err, ABL_ESTOPPED,
                            "stopped at t = %.1f s on request; checkpoint written: continue with "
                            "'ablasim resume %s%s'",
                            s->t_s, opts->checkpoint_path,
                            opts->dt_reference ? " --dt-check" : "");
        }
        const double t_snap =
            iv > 0 ? fmin(sc->duration_s, (floor(s->t_s / iv + 1e-9) + 1.0) * iv) : INFINITY;
        if ((st = sim_advance(s, max_chunk, t_snap, err))) goto fail;
        if (write && iv > 0 && (s->t_s >= t_snap - 1e-9 * s->dt_s || s->step == nsteps)) {
            prof_start(&s->prof);
            const abl_sim_view v = sim_view(s);
            if ((st = output_snapshot(o, &v, err))) goto fail;
            prof_mark(&s->prof, ABL_PROF_OUTPUT, 0);
        }
        double now = omp_get_wtime();
        s->wall_s = now - t0;
        if (opts->checkpoint_path && opts->checkpoint_every_s > 0 &&
            now - last_ckpt >= opts->checkpoint_every_s && s->step < nsteps) {
            if ((st = take_checkpoint(s, o, opts, path, err))) goto fail;
            last_ckpt = now;
        }
        if (opts->progress &&
            (now - last_report >= opts->progress_interval_s || s->step == nsteps)) {
            abl_progress p = {s->t_s,
                              sc->duration_s,
                              s->wall_s,
                              s->step,
                              nsteps,
                              s->n_cg ? s->cg_iters[s->n_cg - 1] : 0,
                              s->n_cg ? s->cg_resid[s->n_cg - 1] : 0.0};
            opts->progress(&p, opts->progress_user);
            last_report = now;
        }
    }
    s->wall_s = omp_get_wtime() - t0;
    if (opts->dt_reference) {
        const abl_sim_view v = sim_view(s);
        dt_check_compare(&v, opts->dt_reference, &s->dt_check);
    }
    prof_start(&s->prof);
    if (write) {
        const abl_sim_view v = sim_view(s);
        /* finish releases o either way (a failure keeps the .part a checkpoint needs) */
        if ((st = output_finish(o, &v, err))) {
            o = NULL;
            goto kept;
        }
        prof_mark(&s->prof, ABL_PROF_OUTPUT, 0);
    }
    return ABL_OK;
fail:
    /* a numerical fault keeps what was written, marked incomplete (issue 10); any other
     * failure deletes the temporary file, unless a checkpoint refers to it (.part): then it is
     * kept, and the run can be resumed once the cause is fixed */
    if (write && st == ABL_ENUM) {
        const abl_sim_view v = sim_view(s);
        output_keep_incomplete(o, &v, err);
        return st;
    }
    if (write) output_abort(o);
kept:
    if (write && opts->checkpoint_path && (resumed || s->checkpoints_written > 0) &&
        part_exists(path) && access(opts->checkpoint_path, F_OK) == 0) {
        char msg[ABL_ERRMSG_LEN];
        snprintf(msg, sizeof msg, "%s", err->msg);
        abl_fail(err, st,
                 "%s. Nothing of the interrupted run is lost: the checkpoint %s and the partial "
                 "result %s.part are kept; once the cause is fixed, 'ablasim resume %s%s' "
                 "continues from the checkpoint",
                 msg, opts->checkpoint_path, path, opts->checkpoint_path,
                 opts->dt_reference ? " --dt-check" : "");
    }
    return st;
}
