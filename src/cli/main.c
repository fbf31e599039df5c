/* main.c - the ablasim command line: parses arguments, calls the library, reports.
 * The only place that prints errors and chooses exit codes (see status.h). */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ablasim/checkpoint.h"
#include "ablasim/dtcheck.h"
#include "ablasim/fileguard.h"
#include "ablasim/isotherms.h"
#include "ablasim/output.h"
#include "ablasim/pcg.h"
#include "ablasim/scenario.h"
#include "ablasim/sim.h"
#include "ablasim/version.h"
#include "commands.h"

static const char *usage_main =
    "ablasim " ABLASIM_VERSION " - thermal ablation zone simulator (Pennes bioheat)\n"
    "\n"
    "usage: ablasim COMMAND [options]\n"
    "\n"
    "commands:\n"
    "  run SCENARIO.yaml   simulate a scenario and write an HDF5 result\n"
    "  resume CKPT.h5      continue an interrupted run from its checkpoint\n"
    "  margin RESULT.h5    ablative margin verdict of a finished run (or of two NIfTI masks)\n"
    "  phantom NAME        write an anatomical voxel phantom (liver, lung, vertebra, humerus)\n"
    "  sweep SWEEP.yaml    run a parameter sweep (resumable; MPI with make MPI=1)\n"
    "  plan PLAN.yaml      find applicator placement and dose for a >= 5 mm margin (inverse)\n"
    "\n"
    "options:\n"
    "  -h, --help          this text (ablasim run --help for the run options)\n"
    "  --version           print the version\n"
    "\n"
    "exit codes: 0 ok, 1 usage, 2 invalid input, 3 I/O error, 4 out of memory, 5 numerical fault,\n"
    "            75 stopped by SIGINT/SIGTERM/SIGHUP: run and resume write a checkpoint (or\n"
    "            nothing, before the run began); sweep and plan keep their journal (the same\n"
    "            command continues); margin and phantom write nothing\n";

static const char *usage_resume =
    "usage: ablasim resume CKPT.h5 [--threads N] [--quiet] [--profile] [--checkpoint-every SECONDS]\n"
    "                      [--dt-check]\n"
    "\n"
    "Continues the run a checkpoint was written from (by --checkpoint-every, SIGINT or SIGTERM)\n"
    "and finishes its result file, with fields bitwise identical to an uninterrupted run.\n"
    "The scenario is rebuilt from the text stored in the checkpoint; the scenario file, tissue\n"
    "table, mesh, initial field or state and device presets are read again from their paths\n"
    "and must not have changed (an edited one is refused, naming it).\n"
    "--dt-check: the time-step check of `run --dt-check` for the resumed run: the scenario is\n"
    "first run again from the start at half the step (no files), then resumed; the result\n"
    "carries the same comparison an uninterrupted `run --dt-check` writes.\n";

/* SIGINT/SIGTERM (signals.c) ask the run to checkpoint and stop at the next step boundary. run
 * and resume install the handler first thing, before they read, lock or write anything: a
 * signal while they load (scenario, locks, a completed commit, grid and mesh, checkpoint) is
 * then seen at the next stop_while_loading, which releases the locks and stops with nothing
 * written. Installed later (as it used to be, just before the first step), a signal during
 * loading took the default action and left the lock files behind. The guarded mesh read's
 * child inherits the handler and so finishes its read instead of dying half-way, which its
 * parent would report as a crash of the HDF5 library. */

/* A safe point of the loading phase (no file of this command is half-written; its locks are
 * the only files it has made): ABL_ESTOPPED, exit 75 like a run stopped after it began, but
 * with nothing written, when a stop was requested. ckpt_in: the checkpoint being resumed (NULL
 * for run). The caller releases what it holds (its locks' files are removed). */
static abl_status stop_while_loading(const char *ckpt_in, bool dt_check, abl_error *err)
{
    if (!cli_stop_requested) return ABL_OK;
    if (ckpt_in) /* the advice keeps --dt-check (it was lost: a review, session 29) */
        return abl_fail(err, ABL_ESTOPPED,
                        "stopped on request while loading, before the resumed run began: this "
                        "run wrote nothing; the checkpoint %s is as it was ('ablasim resume "
                        "%s%s' starts again)",
                        ckpt_in, ckpt_in, dt_check ? " --dt-check" : "");
    return abl_fail(err, ABL_ESTOPPED,
                    "stopped on request while loading, before the run began: this run wrote "
                    "nothing (the same command starts it again)");
}

static const char *usage_run =
    "usage: ablasim run SCENARIO.yaml [-o OUT.h5] [--set KEY=VALUE]... [--threads N] [--quiet]\n"
    "                   [--checkpoint-every SECONDS] [--checkpoint CKPT.h5]\n"
    "                   [--overwrite-checkpoint] [--profile] [--dt-check]\n"
    "\n"
    "  -o, --output OUT.h5   result file (default: output.file from the scenario, else\n"
    "                        <name>.h5); OUT.xdmf (ParaView) and OUT.json (summary) are\n"
    "                        written beside it. Files appear only when the run succeeds.\n"
    "  --set KEY=VALUE       override a scenario key, e.g. --set time.duration_s=300\n"
    "                        --set sources.0.power_W=25 --set grid.spacing_mm=[0.5,0.5,0.5]\n"
    "                        (repeatable; validated like the file)\n"
    "  --threads N           OpenMP threads (default: OMP_NUM_THREADS or all cores)\n"
    "  --checkpoint-every S  write a checkpoint every S seconds of wall time (atomically)\n"
    "  --checkpoint FILE     checkpoint file (default OUT.ckpt.h5); SIGINT/SIGTERM/SIGHUP always\n"
    "                        write one and stop (exit 75); continue with 'ablasim resume FILE'\n"
    "  --overwrite-checkpoint  start over although an interrupted run to this output left a\n"
    "                        checkpoint (or OUT.h5.part): they are replaced, and removed when\n"
    "                        this run finishes. Without it such a run is refused.\n"
    "  -q, --quiet           no progress output, only errors (and --profile's table)\n"
    "  --profile             after the run, print where its wall time went (per phase: sources,\n"
    "                        kernel, solver, running maps, output, ...) and each kernel's GB/s\n"
    "  --dt-check            estimate the time-step error: first run the scenario at half the\n"
    "                        step (no files), then the run itself; the result gets both runs'\n"
    "                        zone volumes and largest map differences (JSON dt_check,\n"
    "                        /dt_check). Costs about three runs' time (a multirate run's\n"
    "                        reference runs single-rate: more). A run stopped and resumed\n"
    "                        keeps the check when it is resumed with --dt-check (the\n"
    "                        reference is run again from the checkpoint's scenario).\n"
    "  -h, --help            this text\n";

typedef struct {
    bool tty;
    bool quiet;
    double last_pct;
} progress_state;

static void progress(const abl_progress *p, void *user)
{
    progress_state *ps = user;
    if (ps->quiet) return;
    double frac = p->duration_s > 0 ? p->t_s / p->duration_s : 1.0;
    double eta = frac > 0 ? p->wall_s * (1.0 - frac) / frac : 0.0;
    if (ps->tty) {
        char bar[31];
        int fill = (int)(frac * 30 + 0.5);
        for (int i = 0; i < 30; i++) bar[i] = i < fill ? '=' : ' ';
        bar[30] = '\0';
        fprintf(stderr, "\r[%s] %5.1f%%  t = %8.1f / %.1f s  step %ld/%ld  ETA %6.1f s ", bar,
                100 * frac, p->t_s, p->duration_s, p->step, p->nsteps, eta);
        if (p->step == p->nsteps) fputc('\n', stderr);
    } else if (frac - ps->last_pct >= 0.1 || p->step == p->nsteps) {
        fprintf(stderr, "progress: %5.1f%%  t = %.1f / %.1f s  wall %.1f s  ETA %.1f s", 100 * frac,
                p->t_s, p->duration_s, p->wall_s, eta);
        if (p->cg_last_iterations)
            fprintf(stderr, "  CG %d iterations, residual %.1e", p->cg_last_iterations,
                    p->cg_last_residual);
        fputc('\n', stderr);
        ps->last_pct = frac;
    }
    fflush(stderr);
}

static void print_summary(const abl_sim *s, const char *out)
{
    const abl_scenario *sc = s->sc;
    const int nm = s->nmat;
    double hot[ABL_MAX_THRESHOLDS], cold[ABL_MAX_THRESHOLDS];
    double *hot_m = calloc((size_t)ABL_MAX_THRESHOLDS * nm, sizeof(double));
    double *cold_m = calloc((size_t)ABL_MAX_THRESHOLDS * nm, sizeof(double));
    if (!hot_m || !cold_m) {
        free(hot_m);
        free(cold_m);
        return;
    }
    const abl_sim_view v = sim_view(s);
    isotherm_volumes(&v, hot, hot_m, cold, cold_m);
    printf("scenario   %s (%s)\n", sc->name, sc->path);
    printf("grid       %d x %d x %d voxels, spacing %.3g x %.3g x %.3g mm, %d tissues\n",
           s->grid.nx, s->grid.ny, s->grid.nz, s->grid.h_m[0] * 1e3, s->grid.h_m[1] * 1e3,
           s->grid.h_m[2] * 1e3, nm);
    printf("time       %.1f s in %ld steps, dt = %.4g s (stability limit %.4g s)\n", s->t_s,
           s->step, s->dt_s, s->dt_stable_s);
    printf("wall time  %.2f s on %d thread%s (%.1f M voxel updates/s)\n", s->wall_s,
           omp_get_max_threads(), omp_get_max_threads() == 1 ? "" : "s", s->wall_s > 0 ? s->grid.n * (double)s->step / s->wall_s / 1e6 : 0);
    if (v.region_known) {
        const int *b = v.region_box;
        const double nb = (double)(b[3] - b[0]) * (b[4] - b[1]) * (b[5] - b[2]);
        printf("active     region %d x %d x %d voxels (%.1f %% of the grid) %s\n",
               b[3] - b[0], b[4] - b[1], b[5] - b[2], 100.0 * nb / (double)s->grid.n,
               s->region_heat_after ? "holds the enthalpy map and the perfusion correction"
                                    : "stepped with phase change; the rest at constant "
                                      "properties");
    }
    if (sc->multirate) {
        if (s->mr_ratio) {
            const int *lo = s->mr_lo, *hi = s->mr_hi;
            printf("multirate  %ld long steps of %d x dt (%ld ended early); last fast box "
                   "%d x %d x %d voxels (%.1f %% of the grid)\n",
                   s->mr_long_steps, s->mr_ratio, s->mr_early_ends, hi[0] - lo[0],
                   hi[1] - lo[1], hi[2] - lo[2],
                   100.0 * (double)(hi[0] - lo[0]) * (hi[1] - lo[1]) * (hi[2] - lo[2]) /
                       (double)s->grid.n);
        } else {
            printf("multirate  not used: it needs the active region (explicit freezing run), "
                   "only cryo, volumetric and fixed_temperature sources, and a liquid step "
                   "limit at least twice dt\n");
        }
    }
    printf("isotherm volumes (mL):\n");
    for (int h = 0; h < sc->n_hot; h++) {
        printf("  T_max >= %5.1f C: %10.3f", sc->hot_C[h], hot[h]);
        for (int m = 0; m < nm; m++)
            if (hot_m[h * nm + m] > 0)
                printf("  %s %.3f", sc->tissues.t[s->mat_tissue[m]].name, hot_m[h * nm + m]);
        printf("\n");
    }
    for (int h = 0; h < sc->n_cold; h++) {
        printf("  T_min <= %5.1f C: %10.3f", sc->cold_C[h], cold[h]);
        for (int m = 0; m < nm; m++)
            if (cold_m[h * nm + m] > 0)
                printf("  %s %.3f", sc->tissues.t[s->mat_tissue[m]].name, cold_m[h * nm + m]);
        printf("\n");
    }
    double dmg[2];
    damage_volumes(&v, dmg, NULL);
    printf("damage     Arrhenius Omega >= 1: %.3f mL; CEM43 >= 240 min: %.3f mL\n", dmg[0],
           dmg[1]);
    if (s->energy.energy_tracked) {
        const abl_energy *e = &s->energy;
        double in = e->E_sources_J + e->E_perf_met_J + e->E_boundary_in_J;
        double scale = fabs(e->E_sources_J) + fabs(e->E_perf_met_J) + fabs(e->E_boundary_in_J);
        printf("energy     sources %.4g J, perfusion+metabolic %.4g J, boundary %.4g J, "
               "stored change %.4g J, relative residual %.2e\n",
               e->E_sources_J, e->E_perf_met_J, e->E_boundary_in_J,
               e->E_stored_final_J - e->E_stored_initial_J,
               scale > 0 ? (e->E_stored_final_J - e->E_stored_initial_J - in) / scale : 0.0);
    }
    if (s->dt_check.done) {
        const abl_dt_check *d = &s->dt_check;
        printf("dt check   reference at dt = %.4g s (%ld steps, %.1f s wall): largest difference "
               "T_final %.3g K, T_max %.3g K, T_min %.3g K\n",
               d->dt_ref_s, d->steps_ref, d->wall_ref_s, d->T_final_diff_C, d->T_max_diff_C,
               d->T_min_diff_C);
        for (int z = 0; z < d->nzone; z++)
            if (d->volume_mL[z] > 0.0 || d->volume_ref_mL[z] > 0.0)
            {
                char pct[32] = "n/a";
                if (d->volume_ref_mL[z] > 0.0)
                    snprintf(pct, sizeof pct, "%+.2f %%",
                             100.0 * (d->volume_mL[z] - d->volume_ref_mL[z]) /
                                 d->volume_ref_mL[z]);
                printf("  %-16s %10.3f mL vs %10.3f mL at dt/2 (%s)\n", d->zone[z],
                       d->volume_mL[z], d->volume_ref_mL[z], pct);
            }
    }
    if (s->n_cg > 0) {
        long tot = 0;
        int mx = 0;
        double rmax = 0;
        for (size_t i = 0; i < s->n_cg; i++) {
            tot += s->cg_iters[i];
            if (s->cg_iters[i] > mx) mx = s->cg_iters[i];
            if (s->cg_resid[i] > rmax) rmax = s->cg_resid[i];
        }
        printf("solver     %zu CG solves (%s preconditioner): iterations mean %.1f, max %d; "
               "largest final relative residual %.1e\n",
               s->n_cg, abl_precond_name(sc->preconditioner), (double)tot / s->n_cg, mx, rmax);
    }
    printf("output     %s\n", out);
    free(hot_m);
    free(cold_m);
}

static int fail(const char *cmd, const abl_error *err)
{
    fprintf(stderr, "ablasim %s: error: %s\n", cmd, err->msg);
    return abl_status_exit_code(err->status);
}

static int usage_error(const char *msg, const char *arg, const char *usage)
{
    fprintf(stderr, "ablasim: %s%s%s\n\n%s", msg, arg ? ": " : "", arg ? arg : "", usage);
    return 1;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

static bool parse_seconds(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !(v > 0) || v > 1e7) return false;
    *out = v;
    return true;
}

/* "<out minus .h5>.ckpt.h5" */
static char *default_checkpoint(const char *out)
{
    size_t n = strlen(out);
    char *p = malloc(n + 16);
    if (!p) return NULL;
    snprintf(p, n + 16, "%.*s" ABL_CKPT_SUFFIX, (int)(n - 3), out);
    return p;
}

/* What a run or resume holds while it writes: the locks on its output and checkpoint, and
 * which old files it may remove once it has finished (only ever files it was told to replace
 * or that it created itself). */
typedef struct {
    abl_lock *lock_out, *lock_ckpt;
    bool discard_ckpt;    /* the checkpoint and OUT.h5.part are ours to remove at the end */
    char *part;           /* OUT.h5.part */
} run_guard;

static void guard_release(run_guard *g)
{
    fg_unlock(g->lock_out);
    fg_unlock(g->lock_ckpt);
    free(g->part);
    memset(g, 0, sizeof *g);
}

static bool exists(const char *path)
{
    struct stat sb;
    return lstat(path, &sb) == 0;
}

/* Before any work (docs/RELIABILITY.md): declare every file the command reads and every name
 * it may write; refuse an output that is an input or another output; lock the output and the
 * checkpoint against a second process; complete a commit a crash interrupted; refuse to start
 * over an interrupted run's checkpoint unless asked (fresh runs only). */
static abl_status guard_run(run_guard *g, const abl_scenario *sc, bool fresh,
                            const char *ckpt_in, const char *out, const char *ckpt,
                            bool overwrite_ckpt, abl_error *err)
{
    memset(g, 0, sizeof *g);
    abl_fileset *fs = fileset_new();
    abl_output_name names[ABL_OUTPUT_NAMES];
    int nn = output_file_names(out, names);
    char ck_tmp[PATH_MAX + 8], ck_lock[PATH_MAX + 8];
    abl_status st = ABL_OK;
    if (!fs || nn < 0) {
        st = abl_fail(err, ABL_ENOMEM, "out of memory");
        goto done;
    }
    if (strlen(ckpt) >= PATH_MAX) {
        st = abl_fail(err, ABL_EINVAL, "checkpoint file name too long: %.64s...", ckpt);
        goto done;
    }
    snprintf(ck_tmp, sizeof ck_tmp, "%s.tmp", ckpt);
    snprintf(ck_lock, sizeof ck_lock, "%s.lock", ckpt);
    if (fresh) st = fileset_input(fs, "scenario", sc->path, err);
    if (!st && fresh) st = fg_refuse_checkpoint_name("output", out, err);
    /* the XDMF sidecar names every dataset as FILE:/path, FILE the result's base name: a ':'
     * in it makes the reference ambiguous to ParaView's reader (an adversarial test, session
     * 30) */
    const char *base = strrchr(out, '/') ? strrchr(out, '/') + 1 : out;
    if (!st && fresh && strchr(base, ':'))
        st = abl_fail(err, ABL_EINVAL,
                      "output %s: a ':' in the file name is refused (the XDMF sidecar names "
                      "each dataset as FILE:/path, which a ':' in FILE makes ambiguous); "
                      "choose a name without one",
                      out);
    if (!st && ckpt_in) st = fileset_input(fs, "checkpoint being resumed", ckpt_in, err);
    if (!st) st = scenario_declare_inputs(sc, fs, err);
    for (int i = 0; i < nn && !st; i++) st = fileset_output(fs, names[i].role, names[i].path, err);
    /* resuming rewrites the checkpoint it reads (later checkpoints) and removes it at the end */
    if (!st && !ckpt_in) st = fileset_output(fs, "checkpoint", ckpt, err);
    if (!st) st = fileset_output(fs, "checkpoint temporary", ck_tmp, err);
    if (!st) st = fileset_output(fs, "checkpoint lock", ck_lock, err);
    if (!st) st = fileset_check(fs, err);
    if (!st) st = fg_lock(out, &g->lock_out, err);
    if (!st) st = fg_lock(ckpt, &g->lock_ckpt, err);
    bool recovered = false;
    if (!st) st = output_recover(out, &recovered, err);
    if (!st && recovered)
        fprintf(stderr, "ablasim: %s: completed the commit of a run that was killed while "
                        "renaming its files\n", out);
    if (!st && !(g->part = malloc(strlen(out) + 6))) st = abl_fail(err, ABL_ENOMEM, "out of memory");
    if (!st) snprintf(g->part, strlen(out) + 6, "%s.part", out);
    if (!st && fresh && (exists(ckpt) || exists(g->part))) {
        if (!overwrite_ckpt) {
            /* which checkpoint continues it: this one if it exists; a .part alone belongs to a
             * run with another checkpoint name, which this run does not know */
            char how[PATH_MAX + 256];
            if (exists(ckpt))
                snprintf(how, sizeof how, "'ablasim resume %s'", ckpt);
            else if (exists(ck_tmp))
                /* the partial result is renamed .part just before the first checkpoint is
                 * written: a run killed in between leaves .part and CKPT.tmp, and nothing can
                 * resume it (an adversarial test, session 26, 2 kills in 55) */
                snprintf(how, sizeof how,
                         "'ablasim resume' and that run's checkpoint (%s beside it suggests a "
                         "run killed while writing its first checkpoint, which nothing can "
                         "resume: then start over with --overwrite-checkpoint)",
                         ck_tmp);
            else
                snprintf(how, sizeof how, "'ablasim resume' and that run's checkpoint");
            st = abl_fail(err, ABL_EINVAL,
                          "%s: %s%s%s already exist%s (left by an interrupted run to this output, "
                          "or another file of that name); a run never replaces them unless "
                          "asked: continue the interrupted run with %s, choose "
                          "another --checkpoint name, or start over with --overwrite-checkpoint",
                          out, exists(ckpt) ? ckpt : g->part,
                          exists(ckpt) && exists(g->part) ? " and " : "",
                          exists(ckpt) && exists(g->part) ? g->part : "",
                          exists(ckpt) && exists(g->part) ? "" : "s", how);
        } else {
            g->discard_ckpt = true;
        }
    }
    if (!st && ckpt_in) g->discard_ckpt = true; /* resuming consumes the checkpoint */
done:
    if (nn > 0) output_file_names_free(names, nn);
    fileset_free(fs);
    if (st) guard_release(g);
    return st;
}

static int execute(const char *cmd, abl_scenario *sc, abl_sim *sim, const char *out, bool quiet,
                   const char *ckpt, double ckpt_every, long resume_snapshots,
                   const char *resume_part_id, run_guard *g, const abl_dt_reference *dtref);

/* --profile (run, resume): print the per-phase timers (profile.h) after the summary. */
static bool show_profile;

/* --dt-check: load the scenario again with the step halved (sets has room for one more
 * override) and run it to its end without files; keep its final maps in *ref. A stop request
 * during it stops the command like any run without a checkpoint (nothing is written). */
static abl_status dt_reference_run(const char *scenario, const char **sets, int nsets,
                                   const char *ckpt, double dt_s, bool multirate, bool quiet,
                                   abl_dt_reference *ref, abl_error *err)
{
    /* A multirate run's reference runs single-rate: with the step halved, the multirate ratio
     * would double and keep the long step as it was, so the reference would not see the long
     * step's error; single-rate at dt/2 is finer in every part of the grid (it costs more).
     * The scenario comes from its file and the run's overrides, or, for a resumed run (ckpt),
     * from the checkpoint's stored scenario and overrides: the same scenario either way. */
    char dtset[64];
    snprintf(dtset, sizeof dtset, "time.dt_s=%.17g", 0.5 * dt_s);
    const char *more[2] = {dtset, "time.multirate=off"};
    const int nmore = multirate ? 2 : 1;
    abl_scenario *sc = NULL;
    abl_sim *sim = NULL;
    abl_status st;
    if (ckpt) {
        abl_checkpoint_info info;
        st = checkpoint_load_scenario_sets(ckpt, more, nmore, &sc, &info, err);
        if (!st) checkpoint_info_free(&info);
    } else {
        for (int k = 0; k < nmore; k++) sets[nsets++] = more[k];
        st = scenario_load(scenario, sets, nsets, &sc, err);
    }
    if (!st) st = sim_create(sc, &sim, err);
    if (!st) {
        /* the handler is in place since the command began: a stop request from here on, or
         * one made while the reference loaded, stops the reference at its next step boundary */
        if (!quiet)
            fprintf(stderr, "ablasim: %s: time-step check: the reference at dt = %.4g s "
                            "(%ld steps%s) first, no files\n",
                    ckpt ? "resume" : "run", sim->dt_s, sim->nsteps_total,
                    multirate ? ", single-rate" : "");
        const abl_run_opts opts = {.no_output = true, .stop = &cli_stop_requested};
        st = sim_run(sim, &opts, err);
    }
    if (!st) {
        const abl_sim_view v = sim_view(sim);
        st = dt_reference_take(&v, ref, err);
    }
    if (st == ABL_ESTOPPED) {
        /* the run's own message ("no checkpoint was asked for, so the run is lost") is about
         * the reference, which never writes one; the run asked for has not begun (found by a
         * read-only review, session 22) */
        const double t_s = sim->t_s;
        if (ckpt)
            abl_fail(err, st,
                     "stopped on request at t = %.1f s of the time-step check's reference run "
                     "(--dt-check, dt = %.4g s), before the resumed run began: this run wrote "
                     "nothing; the checkpoint %s is as it was ('ablasim resume %s --dt-check' "
                     "starts again)",
                     t_s, 0.5 * dt_s, ckpt, ckpt);
        else
            abl_fail(err, st,
                     "stopped on request at t = %.1f s of the time-step check's reference run "
                     "(--dt-check, dt = %.4g s), before the run itself began: this run wrote "
                     "nothing",
                     t_s, 0.5 * dt_s);
    } else if (st) {
        /* say which run failed: the half-step reference, not the run asked for */
        char msg[ABL_ERRMSG_LEN];
        snprintf(msg, sizeof msg, "%s", err->msg);
        abl_fail(err, st, "time-step check (--dt-check), the reference at dt = %.4g s: %s",
                 0.5 * dt_s, msg);
    }
    sim_destroy(sim);
    scenario_free(sc);
    return st;
}

int cmd_run(int argc, char **argv)
{
    const char *scenario = NULL, *out = NULL;
    const char **sets = calloc((size_t)argc + 2, sizeof *sets);
    int nsets = 0, threads = 0;
    bool quiet = false;
    double ckpt_every = 0;
    const char *ckpt = NULL;
    bool overwrite_ckpt = false, dt_check = false;
    cli_install_stop_signals(); /* before anything is read, locked or written (see there) */
    /* argc + 2: room for the reference's overrides (--dt-check: step, multirate) */
    if (!sets) return 4;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage_run, stdout);
            free(sets);
            return 0;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (++i >= argc) return free(sets), usage_error("-o needs a file name", NULL, usage_run);
            out = argv[i];
        } else if (!strcmp(a, "--set")) {
            if (++i >= argc)
                return free(sets), usage_error("--set needs KEY=VALUE", NULL, usage_run);
            sets[nsets++] = argv[i];
        } else if (!strncmp(a, "--set=", 6)) {
            sets[nsets++] = a + 6;
        } else if (!strcmp(a, "--threads")) {
            char *end;
            if (++i >= argc) return free(sets), usage_error("--threads needs a number", NULL, usage_run);
            errno = 0;
            long v = strtol(argv[i], &end, 10);
            if (*end || end == argv[i] || v < 1 || v > 1024 || errno)
                return free(sets), usage_error("--threads must be an integer 1..1024, got", argv[i],
                                               usage_run);
            threads = (int)v;
        } else if (!strcmp(a, "--profile")) {
            show_profile = true;
        } else if (!strcmp(a, "--dt-check")) {
            dt_check = true;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            quiet = true;
        } else if (!strcmp(a, "--checkpoint-every")) {
            if (++i >= argc || !parse_seconds(argv[i], &ckpt_every))
                return free(sets), usage_error("--checkpoint-every needs seconds in (0, 1e7], got",
                                               i < argc ? argv[i] : "nothing", usage_run);
        } else if (!strcmp(a, "--checkpoint")) {
            if (++i >= argc || !ends_with(argv[i], ".h5"))
                return free(sets), usage_error("--checkpoint needs a file name ending in .h5, got",
                                               i < argc ? argv[i] : "nothing", usage_run);
            ckpt = argv[i];
        } else if (!strcmp(a, "--overwrite-checkpoint")) {
            overwrite_ckpt = true;
        } else if (a[0] == '-') {
            return free(sets), usage_error("unknown option", a, usage_run);
        } else if (!scenario) {
            scenario = a;
        } else {
            return free(sets), usage_error("more than one scenario given", a, usage_run);
        }
    }
    if (!scenario) return free(sets), usage_error("missing SCENARIO.yaml", NULL, usage_run);
    if (out && !ends_with(out, ".h5"))
        return free(sets), usage_error("the output file name must end in .h5, got", out, usage_run);
    if (threads) omp_set_num_threads(threads);

    abl_error err = {0};
    abl_scenario *sc = NULL;
    abl_sim *sim = NULL;
    abl_status st = scenario_load(scenario, sets, nsets, &sc, &err);
    if (st) return free(sets), fail("run", &err);
    /* the safe points of loading: before the locks, after them (and a completed commit, the
     * only file work before a run), after the grid; the last is execute's */
    char defpath[300];
    if (!out) out = sc->output_path;
    if (!out) {
        snprintf(defpath, sizeof defpath, "%s.h5", sc->name);
        out = defpath;
    }
    if (!ends_with(out, ".h5")) {
        abl_fail(&err, ABL_EINVAL, "%s: output.file = %s must end in .h5", sc->path, out);
        scenario_free(sc);
        free(sets);
        return fail("run", &err);
    }
    char *ckpt_default = ckpt ? NULL : default_checkpoint(out);
    if (!ckpt) ckpt = ckpt_default;
    run_guard g = {0};
    abl_dt_reference dtref = {0};
    if ((st = stop_while_loading(NULL, false, &err)) ||
        (st = guard_run(&g, sc, true, NULL, out, ckpt, overwrite_ckpt, &err)) ||
        (st = stop_while_loading(NULL, false, &err)) || (st = sim_create(sc, &sim, &err))) {
        guard_release(&g);
        scenario_free(sc);
        free(ckpt_default);
        free(sets);
        return fail("run", &err);
    }
    if (dt_check) {
        /* the reference runs alone (its step from the planned run, which is made again after
         * it): the peak memory stays one run's */
        const double dt = sim->dt_s;
        const bool mr = sim->mr_ratio > 0;
        sim_destroy(sim);
        sim = NULL;
        st = dt_reference_run(scenario, sets, nsets, NULL, dt, mr, quiet, &dtref, &err);
        if (!st) st = stop_while_loading(NULL, false, &err);
        if (!st) st = sim_create(sc, &sim, &err);
    }
    if (st) {
        guard_release(&g);
        sim_destroy(sim);
        scenario_free(sc);
        dt_reference_free(&dtref);
        free(ckpt_default);
        free(sets);
        return fail("run", &err);
    }
    free(sets);
    /* a second run from a first's result: say which maps start from nothing (a threshold the
     * first run did not track; the result marks them with from_initial_state = 0) */
    for (int i = 0; i < sim->nfields; i++) {
        const abl_field *f = &sim->fields[i];
        const abl_field_presence pr = f->def->presence;
        if (f->from_state == 0 &&
            (pr == ABL_FIELD_PER_HOT || pr == ABL_FIELD_PER_COLD ||
             !strcmp(f->label, H5_FIELD_FREEZE_CYCLES)))
            fprintf(stderr,
                    "ablasim run: note: %s counts this run only: the initial state %s has no "
                    "such map\n",
                    f->result_path, sc->initial_T_path);
    }
    if (sim->state_layout_note[0])
        fprintf(stderr, "ablasim run: note: %s\n", sim->state_layout_note);
    /* the state's layout (8 B a voxel) served that note only: not held through the run */
    mesh_field_free(&sc->initial_layout);
    for (int i = 0; i < sim->nsources; i++)
        if (sim->sources[i]->note[0])
            fprintf(stderr, "ablasim run: note: %s\n", sim->sources[i]->note);
    for (const char *p = sc->notes; *p;) {
        const char *nl = strchr(p, '\n');
        const int len = nl ? (int)(nl - p) : (int)strlen(p);
        fprintf(stderr, "ablasim run: note: %.*s\n", len, p);
        p += len + (nl ? 1 : 0);
    }
    int rc = execute("run", sc, sim, out, quiet, ckpt, ckpt_every, -1, NULL, &g,
                     dt_check ? &dtref : NULL);
    dt_reference_free(&dtref);
    free(ckpt_default);
    return rc;
}

/* Run a created simulation to its end (fresh or resumed); owns sc and sim from here. */
/* A checkpoint this run wrote or continued and needs no more (the run finished, or a numerical
 * fault consumed the partial result it refers to): removed, with the temporary of a checkpoint
 * write a kill interrupted (its own name, under its lock; it was left beside the result: an
 * adversarial test, session 26). 0, or the errno of removing the checkpoint. */
static int remove_spent_checkpoint(const char *ckpt)
{
    const int e = remove(ckpt) == 0 || errno == ENOENT ? 0 : errno;
    char ck_tmp[PATH_MAX + 8];
    if (snprintf(ck_tmp, sizeof ck_tmp, "%s.tmp", ckpt) < (int)sizeof ck_tmp)
        (void)remove(ck_tmp);
    return e;
}

static int execute(const char *cmd, abl_scenario *sc, abl_sim *sim, const char *out, bool quiet,
                   const char *ckpt, double ckpt_every, long resume_snapshots,
                   const char *resume_part_id, run_guard *g, const abl_dt_reference *dtref)
{
    abl_error err = {0};
    /* the last safe point of loading: sim_run opens the result first and answers a stop
     * request only after that, with a checkpoint */
    abl_status st = stop_while_loading(resume_snapshots >= 0 ? ckpt : NULL, dtref != NULL, &err);
    if (st) {
        sim_destroy(sim);
        scenario_free(sc);
        guard_release(g);
        return fail(cmd, &err);
    }
    if (!quiet)
        fprintf(stderr,
                "ablasim: %s: %d x %d x %d voxels, %.1f s in %ld steps of %.4g s, %d thread%s%s\n",
                sc->name, sim->grid.nx, sim->grid.ny, sim->grid.nz, sc->duration_s,
                sim->nsteps_total, sim->dt_s, omp_get_max_threads(),
                omp_get_max_threads() == 1 ? "" : "s",
                resume_snapshots >= 0 ? ", resumed" : "");
    progress_state ps = {isatty(STDERR_FILENO), quiet, 0.0};
    abl_run_opts opts = {.output_path = out,
                         .progress = progress,
                         .progress_user = &ps,
                         .progress_interval_s = ps.tty ? 0.2 : 5.0,
                         .checkpoint_path = ckpt,
                         .checkpoint_every_s = ckpt_every,
                         .stop = &cli_stop_requested,
                         .resume_snapshots = resume_snapshots,
                         .resume_part_id = resume_part_id,
                         .profile = show_profile,
                         .dt_reference = dtref};
    const double t_run = omp_get_wtime();
    st = sim_run(sim, &opts, &err);
    const double run_s = omp_get_wtime() - t_run;
    if (st == ABL_ENUM && ckpt && (sim->checkpoints_written > 0 || resume_snapshots >= 0)) {
        /* a numerical fault moved the partial result (OUT.h5.part) to the incomplete name: the
         * checkpoint this run wrote or continued refers to it and can no longer be resumed
         * (nor would a resume pass the step that faulted: the run is deterministic), and it
         * would make the corrected rerun refuse, advising the resume that fails (an
         * adversarial test, session 27). It goes, as a finished run's does. */
        char part[PATH_MAX + 8];
        snprintf(part, sizeof part, "%s.part", out);
        if (access(part, F_OK) != 0 && errno == ENOENT) {
            const int rem_err = remove_spent_checkpoint(ckpt);
            char msg[ABL_ERRMSG_LEN];
            snprintf(msg, sizeof msg, "%s", err.msg);
            if (!rem_err)
                abl_fail(&err, st, "%s; the checkpoint %s, which referred to it, was removed "
                                   "(a resume would meet the same fault)",
                         msg, ckpt);
            else
                abl_fail(&err, st, "%s; the checkpoint %s refers to it and could not be "
                                   "removed (%s): remove it by hand",
                         msg, ckpt, strerror(rem_err));
        }
    }
    if (st) {
        if (ps.tty && !quiet) fputc('\n', stderr);
        sim_destroy(sim);
        scenario_free(sc);
        guard_release(g);
        return fail(cmd, &err);
    }
    if (!quiet) print_summary(sim, out);
    if (show_profile) prof_print(stdout, &sim->prof, run_s);
    /* A finished run needs its checkpoint no more; it removes only a checkpoint it wrote
     * itself, the one it resumed from, or one it was told to replace (--overwrite-checkpoint):
     * never a file that merely has the checkpoint's name. */
    if (ckpt && (sim->checkpoints_written > 0 || g->discard_ckpt)) {
        /* the result is complete whatever happens here; a checkpoint that cannot be removed
         * would make the next run into this output refuse, so say so */
        const int rem_err = remove_spent_checkpoint(ckpt);
        if (rem_err)
            fprintf(stderr,
                    "ablasim %s: note: the result is complete, but the finished run's checkpoint "
                    "%s could not be removed (%s); remove it by hand\n",
                    cmd, ckpt, strerror(rem_err));
        if (g->discard_ckpt && g->part && remove(g->part) != 0 && errno != ENOENT)
            fprintf(stderr, "ablasim %s: note: %s could not be removed (%s); remove it by hand\n",
                    cmd, g->part, strerror(errno));
    }
    sim_destroy(sim);
    scenario_free(sc);
    guard_release(g);
    return 0;
}

static int cmd_resume(int argc, char **argv)
{
    const char *ckpt = NULL;
    int threads = 0;
    bool quiet = false, dt_check = false;
    double every = 0;
    cli_install_stop_signals(); /* before anything is read, locked or written (see there) */
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage_resume, stdout);
            return 0;
        } else if (!strcmp(a, "--threads")) {
            char *end;
            long v = i + 1 < argc ? strtol(argv[i + 1], &end, 10) : 0;
            if (i + 1 >= argc || *end || v < 1 || v > 1024)
                return usage_error("--threads must be an integer 1..1024, got",
                                   i + 1 < argc ? argv[i + 1] : "nothing", usage_resume);
            threads = (int)v;
            i++;
        } else if (!strcmp(a, "--profile")) {
            show_profile = true;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            quiet = true;
        } else if (!strcmp(a, "--dt-check")) {
            dt_check = true;
        } else if (!strcmp(a, "--checkpoint-every")) {
            if (++i >= argc || !parse_seconds(argv[i], &every))
                return usage_error("--checkpoint-every needs seconds in (0, 1e7], got",
                                   i < argc ? argv[i] : "nothing", usage_resume);
        } else if (a[0] == '-') {
            return usage_error("unknown option", a, usage_resume);
        } else if (!ckpt) {
            ckpt = a;
        } else {
            return usage_error("more than one checkpoint given", a, usage_resume);
        }
    }
    if (!ckpt) return usage_error("missing CKPT.h5", NULL, usage_resume);
    /* a checkpoint named through a symbolic link: the file it names is the checkpoint (its
     * lock, the later checkpoints that replace it, its removal at the end); the link was
     * removed and the spent checkpoint kept, which then blocked a new run (an adversarial
     * test, session 30) */
    static char ckpt_target[PATH_MAX];
    struct stat lsb;
    if (lstat(ckpt, &lsb) == 0 && S_ISLNK(lsb.st_mode)) {
        char *real = fg_realpath(ckpt);
        if (real && strlen(real) < sizeof ckpt_target) {
            snprintf(ckpt_target, sizeof ckpt_target, "%s", real);
            ckpt = ckpt_target;
        }
        free(real);
    }
    if (threads) omp_set_num_threads(threads);
    abl_error err = {0};
    abl_scenario *sc = NULL;
    abl_sim *sim = NULL;
    abl_checkpoint_info info;
    abl_status st = fg_require_regular("checkpoint", ckpt, &err);
    if (st) return fail("resume", &err);
    st = checkpoint_load_scenario(ckpt, &sc, &info, &err);
    if (st) return fail("resume", &err);
    run_guard g = {0};
    abl_dt_reference dtref = {0};
    /* safe points as in cmd_run, and after the restore */
    if ((st = stop_while_loading(ckpt, dt_check, &err)) ||
        (st = guard_run(&g, sc, false, ckpt, info.output_path, ckpt, false, &err)) ||
        (st = stop_while_loading(ckpt, dt_check, &err)) || (st = sim_create(sc, &sim, &err)) ||
        (st = stop_while_loading(ckpt, dt_check, &err)) ||
        (st = checkpoint_restore(ckpt, sim, &err))) {
        guard_release(&g);
        sim_destroy(sim);
        scenario_free(sc);
        checkpoint_info_free(&info);
        return fail("resume", &err);
    }
    if (dt_check) {
        /* as run --dt-check: the reference (the whole scenario from t = 0 at half the restored
         * step) runs alone, then the run is restored again */
        const double dt = sim->dt_s;
        const bool mr = sim->mr_ratio > 0;
        sim_destroy(sim);
        sim = NULL;
        st = dt_reference_run(NULL, NULL, 0, ckpt, dt, mr, quiet, &dtref, &err);
        if (!st) st = stop_while_loading(ckpt, dt_check, &err);
        if (!st) st = sim_create(sc, &sim, &err);
        if (!st) st = checkpoint_restore(ckpt, sim, &err);
        if (st) {
            guard_release(&g);
            sim_destroy(sim);
            scenario_free(sc);
            dt_reference_free(&dtref);
            checkpoint_info_free(&info);
            return fail("resume", &err);
        }
    }
    char *out = info.output_path; /* owned by info until the end */
    int rc = execute("resume", sc, sim, out, quiet, ckpt, every, info.snapshots_written,
                     info.part_id, &g, dt_check ? &dtref : NULL);
    dt_reference_free(&dtref);
    checkpoint_info_free(&info);
    return rc;
}

/* The OpenMP variables ablasim's behaviour depends on, held to the rules of --threads before
 * the first parallel region (libgomp crashed on OMP_NUM_THREADS=100000, and silently ignored
 * "abc"). A list "N,M" (nested levels) is checked element by element. */
static abl_status check_environment(abl_error *err)
{
    static const char *const thread_vars[] = {"OMP_NUM_THREADS", "OMP_THREAD_LIMIT"};
    for (size_t v = 0; v < sizeof thread_vars / sizeof *thread_vars; v++) {
        const char *val = getenv(thread_vars[v]);
        if (!val) continue;
        const char *p = val;
        bool ok = *p != '\0';
        while (ok && *p) {
            char *end;
            errno = 0;
            long n = strtol(p, &end, 10);
            ok = end != p && !errno && n >= 1 && n <= 1024 && (*end == ',' || *end == '\0');
            p = *end == ',' ? end + 1 : end;
            if (ok && *end == ',' && *p == '\0') ok = false;
        }
        if (!ok)
            return abl_fail(err, ABL_EINVAL,
                            "environment variable %s = '%s': allowed an integer 1..1024 (or a "
                            "comma-separated list of them), like --threads",
                            thread_vars[v], val);
    }
    const char *dyn = getenv("OMP_DYNAMIC");
    if (dyn && strcasecmp(dyn, "true") && strcasecmp(dyn, "false"))
        return abl_fail(err, ABL_EINVAL,
                        "environment variable OMP_DYNAMIC = '%s': allowed true or false", dyn);
    const char *stack = getenv("OMP_STACKSIZE");
    if (stack) {
        /* a size with an optional unit B, K, M, G (libgomp's syntax); at most 1 GiB per thread */
        char *end;
        errno = 0;
        double n = strtod(stack, &end);
        while (*end == ' ') end++;
        double unit = 1024;
        if (*end) {
            const char u = (char)toupper((unsigned char)*end++);
            unit = u == 'B' ? 1 : u == 'K' ? 1024 : u == 'M' ? 1048576.0 : u == 'G' ? 1073741824.0 : -1;
        }
        while (*end == ' ') end++;
        if (end == stack || errno || *end || unit < 0 || !(n >= 0) || n * unit > 1073741824.0 ||
            n != floor(n))
            return abl_fail(err, ABL_EINVAL,
                            "environment variable OMP_STACKSIZE = '%s': allowed a whole size with "
                            "an optional unit B, K, M or G, at most 1G",
                            stack);
    }
    return ABL_OK;
}

/* What a command printed on standard output (a verdict, a listing, a summary) must have reached
 * it: on a full disk it was lost while the command exited 0 (`margin ... > /dev/full`, `sweep
 * --dry-run`, `phantom --list`), and a closed pipe killed the command by SIGPIPE (exit 141, a
 * run's temporaries left; adversarial test, session 28). A command that otherwise succeeded
 * exits 3 (I/O error) then, as `keys --markdown` already did; its files, if it writes any, are
 * complete. An error exit stays. */
static int finish_stdout(const char *cmd, int rc)
{
    errno = 0;
    if ((fflush(stdout) == 0 && !ferror(stdout)) || rc) return rc; /* a failure said its own */
    const int e = errno;
    fprintf(stderr, "ablasim %s: error: cannot write to standard output%s%s\n", cmd,
            e ? ": " : "", e ? strerror(e) : "");
    return 3;
}

/* GNU-style spellings every command accepts, made into the form the commands parse (one place,
 * not one per command; found missing by adversarial tests, session 28):
 *  - "--name=value" for an option that takes a value becomes "--name" "value" (an unknown name,
 *    or a flag given "=value", stays whole and is refused as an unknown option);
 *  - "--" ends the options: it is dropped, and an argument after it that starts with '-' is
 *    given a "./" prefix, the same file to every command whose positional argument is a path.
 * The new vector and the strings it made are freed at exit (args_free, registered with atexit:
 * the leak checker of the SANITIZE build reported them, and its exit status 1 failed every
 * command). NULL: out of memory. */
static struct {
    char **argv;  /* the normalised vector */
    char **owned; /* the strings made here */
    int nowned;
} args_made;

static void args_free(void)
{
    for (int i = 0; i < args_made.nowned; i++) free(args_made.owned[i]);
    free(args_made.owned);
    free(args_made.argv);
}

static char *args_own(char *p)
{
    if (p) args_made.owned[args_made.nowned++] = p;
    return p;
}

static char **normalise_args(int *argc_io, char **argv)
{
    /* every option of every command that takes a value (run, resume, margin, phantom, sweep,
     * plan, keys); a test spells one per command this way (suite cli "GNU forms") */
    static const char *const value_opts[] = {
        "--output",         "--set",         "--threads",       "--jobs",
        "--checkpoint",     "--checkpoint-every", "--spacing-mm", "--nifti",
        "--criterion",      "--critical",    "--fail-exit-code", "--margin-mm",
        "--threshold",      "--threshold-C", "--tumor",         "--tumour",
        "--tumor-tissue",   "--tumour-tissue", "--zone",        "--source"};
    const int argc = *argc_io;
    char **out = calloc(2 * (size_t)argc + 1, sizeof *out);
    args_made.owned = calloc((size_t)argc + 1, sizeof *args_made.owned);
    args_made.argv = out;
    if (atexit(args_free) != 0 || !out || !args_made.owned) return NULL;
    int n = 0;
    bool end_of_opts = false;
    for (int i = 0; i < argc; i++) {
        char *a = argv[i];
        if (i < 2 || (!end_of_opts && strncmp(a, "--", 2))) {
            out[n++] = a;
            continue;
        }
        if (!end_of_opts && !strcmp(a, "--")) {
            end_of_opts = true;
            continue;
        }
        if (end_of_opts) {
            if (a[0] == '-' && a[1]) {
                size_t len = strlen(a) + 3;
                char *p = args_own(malloc(len));
                if (!p) return NULL;
                snprintf(p, len, "./%s", a);
                a = p;
            }
            out[n++] = a;
            continue;
        }
        const char *eq = strchr(a, '=');
        bool split = false;
        for (size_t k = 0; eq && k < sizeof value_opts / sizeof value_opts[0]; k++)
            split = split || (strlen(value_opts[k]) == (size_t)(eq - a) &&
                              !strncmp(a, value_opts[k], (size_t)(eq - a)));
        if (!split) {
            out[n++] = a;
            continue;
        }
        char *name = args_own(malloc((size_t)(eq - a) + 1));
        if (!name) return NULL;
        memcpy(name, a, (size_t)(eq - a));
        name[eq - a] = '\0';
        out[n++] = name;
        out[n++] = (char *)eq + 1;
    }
    out[n] = NULL;
    *argc_io = n;
    return out;
}

int main(int argc, char **argv)
{
    /* A file-size limit (ulimit -f, a batch system's) makes a write past it raise SIGXFSZ,
     * whose default action killed the command (exit 153) with its temporary and lock files
     * left (an adversarial test, session 26). Ignored, the write fails with EFBIG instead,
     * which every writer reports as an I/O error (exit 3) after removing what it made, as on a
     * full disk. */
    signal(SIGXFSZ, SIG_IGN);
    /* A reader that goes away (progress piped into `head`, a log viewer closed) raised SIGPIPE,
     * whose default action killed a run (exit 141) with no checkpoint and its temporary and lock
     * files left (adversarial test, session 28). Ignored, such a write fails with EPIPE: lost
     * progress lines do not matter, and a command whose standard output is lost says so at exit
     * (finish_stdout). */
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2) {
        fputs(usage_main, stderr);
        return 1;
    }
    if (!(argv = normalise_args(&argc, argv))) {
        fputs("ablasim: out of memory\n", stderr);
        return 4;
    }
    const char *cmd = argv[1];
    abl_error env_err = {0};
    if (check_environment(&env_err)) {
        fprintf(stderr, "ablasim: %s\n", env_err.msg);
        return 1;
    }
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        fputs(usage_main, stdout);
        return finish_stdout(cmd, 0);
    }
    if (!strcmp(cmd, "--version")) {
        printf("ablasim %s\n", ABLASIM_VERSION);
        return finish_stdout(cmd, 0);
    }
    if (!strcmp(cmd, "run")) return finish_stdout(cmd, cmd_run(argc - 2, argv + 2));
    if (!strcmp(cmd, "resume")) return finish_stdout(cmd, cmd_resume(argc - 2, argv + 2));
    if (!strcmp(cmd, "margin")) return finish_stdout(cmd, cmd_margin(argc - 2, argv + 2));
    if (!strcmp(cmd, "phantom")) return finish_stdout(cmd, cmd_phantom(argc - 2, argv + 2));
    if (!strcmp(cmd, "sweep")) return finish_stdout(cmd, cmd_sweep(argc - 2, argv + 2));
    if (!strcmp(cmd, "plan")) return finish_stdout(cmd, cmd_plan(argc - 2, argv + 2));
    if (!strcmp(cmd, "keys")) return finish_stdout(cmd, cmd_keys(argc - 2, argv + 2));
    return usage_error("unknown command", cmd, usage_main);
}
