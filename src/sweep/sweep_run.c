/* sweep_run.c - run a sweep's unfinished points: serially, several at once in this process
 * (--jobs), or across MPI ranks; then regenerate the table from the journal.
 *
 * --jobs J runs J points at once on threads of one OpenMP team, each with its share of the
 * threads for its own (nested) parallel regions. Threads rather than processes because the
 * library keeps no global state (the one named critical section only serialises a sum), the
 * points share the journal and the per-point results without any transport, and forking after
 * OpenMP has started its thread pool is not safe with GNU libgomp. HDF5 is only touched by
 * per-point field files, and those need a thread-safe HDF5 (checked).
 *
 * MPI: rank 0 owns the journal, the masks and the table. It hands out points one at a time
 * (a work queue: fast ranks take more points), and it runs points itself too, answering the
 * queue from the simulation's progress callback every few hundredths of a second, so no rank
 * idles as a pure dispatcher. A result travels as the row's numbers and the ablation mask's
 * runs; rank 0 writes the mask and then the journal line, exactly as in a serial run, and the
 * probability map is later summed from those masks - so it also covers points finished by an
 * earlier, interrupted run, which an end-of-run reduction of in-memory counts could not. Waits
 * poll with short sleeps: Open MPI's blocking receives spin, which would steal a core from the
 * OpenMP threads of a rank on the same node. */
#define _DEFAULT_SOURCE /* realpath */
#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifdef ABLASIM_MPI
#include <mpi.h>
#endif

#include "ablasim/fileguard.h"
#include "ablasim/output.h"
#include "sweep_internal.h"

typedef struct {
    abl_sweep *sw;
    const sweep_run_opts *opts;
    sweep_summary *sum;
    sweep_row *rows;  /* rank 0: every point */
    sweep_journal jr; /* rank 0 */
    size_t *todo, ntodo, next;
    size_t ndone;     /* finished, resumed included */
    abl_status fatal; /* rank 0: the sweep must stop (journal or mask I/O) */
    abl_error fatal_err;
    int rank, nranks;
    int active_workers; /* MPI: workers not yet told to stop */
    bool stopped;       /* a point came back stopped on request: start no more (rank 0) */
    abl_lock *lock;     /* rank 0: output_dir/journal.txt.lock, held until the table is written */
} run_ctx;

static bool retryable(abl_status s)
{
    /* bad input and numerical faults are deterministic: running again gives the same row;
     * memory, I/O and anything else (a stop request, an internal error) may pass next time */
    return s != ABL_OK && s != ABL_EINVAL && s != ABL_ENUM;
}

/* A stop request (sweep_run_opts.stop), or a point that came back stopped: no new point. */
static bool stop_asked(const run_ctx *c)
{
    return c->stopped || (c->opts && c->opts->stop && *c->opts->stop);
}

static volatile sig_atomic_t *stop_flag(const run_ctx *c)
{
    return c->opts ? c->opts->stop : NULL;
}

static bool hdf5_threadsafe(void)
{
    hbool_t ts = 0;
    return H5is_library_threadsafe(&ts) >= 0 && ts;
}

static bool file_exists(const char *path)
{
    struct stat sb;
    return path && stat(path, &sb) == 0;
}

/* Rank 0: keep a finished point (mask file, then journal line), then report it. */
static abl_status record(run_ctx *c, size_t p, const sweep_row *row, const sweep_mask *mask,
                         int rank, abl_error *err)
{
    abl_sweep *sw = c->sw;
    abl_status st;
    if (sw->prob_map_on && row->status == ABL_OK && mask && (st = mask_write(sw, p, mask, err)))
        return st;
    if ((st = journal_append(&c->jr, sw, p, row, err))) return st;
    sweep_row *r = &c->rows[p];
    r->done = true;
    r->status = row->status;
    free(r->msg);
    r->msg = row->msg ? sweep_strdup(row->msg) : NULL;
    memcpy(r->val, row->val, (size_t)sw->layout->nvals * sizeof *r->val);
    c->ndone++;
    if (c->opts && c->opts->report) {
        const sweep_layout *L = sw->layout;
        sweep_point_report rep = {p,
                                  c->ndone,
                                  sw->npoints,
                                  row->status,
                                  row->msg ? row->msg : "",
                                  row->val[L->i_wall],
                                  L->i_vabl >= 0 ? row->val[L->i_vabl] : NAN,
                                  rank};
        c->opts->report(&rep, c->opts->report_user);
    }
    return ABL_OK;
}

/* A point that ran and failed leaves no result under its name: an earlier result there (from
 * the point that had this index before the sweep's axes changed, or from this point's own
 * earlier success) would contradict the point's failed row in the table (found by QA, session
 * 29). Its result, JSON summary and XDMF sidecar are removed; a partial (.incomplete.h5) result
 * the failure itself kept is not touched. Called under the point's lock. */
static void remove_stale_result(const char *fp, sweep_row *row, int nvals, int wall_col)
{
    abl_output_name names[ABL_OUTPUT_NAMES];
    const int n = output_file_names(fp, names);
    for (int i = 0; i < n; i++) {
        if (strcmp(names[i].role, "output") && strcmp(names[i].role, "JSON summary") &&
            strcmp(names[i].role, "XDMF sidecar"))
            continue;
        if (unlink(names[i].path) && errno != ENOENT) {
            char msg[1400];
            snprintf(msg, sizeof msg, "%s (and the earlier %s %s could not be removed: %s)",
                     row->msg ? row->msg : "", names[i].role, names[i].path, strerror(errno));
            const double wall = row->val[wall_col]; /* row_set clears every value */
            row_set(row, row->status, msg, nvals);
            row->val[wall_col] = wall;
        }
    }
    output_file_names_free(names, n < 0 ? 0 : n);
}

static abl_status run_one_local(run_ctx *c, size_t p, sweep_row *row, sweep_mask *mask,
                                abl_progress_fn cb, void *user, abl_error *err)
{
    char *fp = c->sw->fields ? field_path(c->sw, p) : NULL;
    if (c->sw->fields && !fp) return abl_fail(err, ABL_ENOMEM, "out of memory");
    /* the point's result is written and committed like a run's, under its lock as a run's is:
     * a margin of that file completes an interrupted commit only under the same lock (found
     * by review, session 23: the sweep's points were written without it) */
    abl_lock *lk = NULL;
    abl_error le = {0};
    const abl_status ls = fp ? fg_lock(fp, &lk, &le) : ABL_OK;
    if (ls == ABL_EIO) {
        /* another process writes this point's result (a user's `ablasim run -o` of it): the
         * point is a failed row (I/O, so the next run of the sweep tries it again) and the
         * sweep goes on with the others; it used to stop the whole sweep */
        free(fp);
        row_set(row, ls, le.msg, c->sw->layout->nvals);
        row->val[c->sw->layout->i_wall] = 0.0;
        if (mask) mask_free(mask);
        return ABL_OK;
    }
    if (ls) { /* anything else (a lock name that is a user's file): the sweep stops */
        free(fp);
        *err = le;
        return ls;
    }
    point_run(c->sw, p, fp, row, c->sw->prob_map_on ? mask : NULL, cb, user, stop_flag(c));
    if (fp && row->status != ABL_OK && row->status != ABL_ESTOPPED)
        remove_stale_result(fp, row, c->sw->layout->nvals, c->sw->layout->i_wall);
    fg_unlock(lk);
    free(fp);
    return ABL_OK;
}

/* ---- without MPI -------------------------------------------------------------------------- */

static abl_status run_serial(run_ctx *c, abl_error *err)
{
    sweep_row *row = rows_alloc(1, c->sw->layout->nvals);
    sweep_mask mask = {0};
    if (!row) return abl_fail(err, ABL_ENOMEM, "out of memory");
    abl_status st = ABL_OK;
    for (size_t k = 0; k < c->ntodo && !st && !stop_asked(c); k++) {
        size_t p = c->todo[k];
        if ((st = run_one_local(c, p, row, &mask, NULL, NULL, err))) break;
        if (row->status == ABL_ESTOPPED) { /* abandoned on request: not journalled */
            c->stopped = true;
            break;
        }
        st = record(c, p, row, &mask, 0, err);
    }
    mask_free(&mask);
    rows_free(row, 1);
    return st;
}

static abl_status run_jobs(run_ctx *c, int jobs, int threads, abl_error *err)
{
    if (c->sw->fields && !hdf5_threadsafe())
        return abl_fail(err, ABL_EINVAL,
                        "fields: true with --jobs %d needs a thread-safe HDF5 library, and this "
                        "one is not; use --jobs 1 (all threads on one point) or fields: false",
                        jobs);
    if ((size_t)jobs > c->ntodo) jobs = (int)c->ntodo;
    const int per = threads / jobs > 0 ? threads / jobs : 1;
    const int saved_levels = omp_get_max_active_levels();
    omp_set_max_active_levels(2);
    size_t next = 0;
    int stop = 0, stopped = 0;
    abl_status fatal = ABL_OK;
    volatile sig_atomic_t *flag = stop_flag(c);
#pragma omp parallel num_threads(jobs)
    {
        omp_set_num_threads(per); /* this job's nested regions */
        sweep_row *row = rows_alloc(1, c->sw->layout->nvals);
        sweep_mask mask = {0};
        abl_error e = {0};
        if (!row) {
#pragma omp critical(sweep_record)
            if (!fatal) fatal = abl_fail(err, ABL_ENOMEM, "out of memory");
#pragma omp atomic write
            stop = 1;
        }
        for (;;) {
            size_t k;
            int s;
#pragma omp atomic capture
            k = next++;
#pragma omp atomic read
            s = stop;
            if (k >= c->ntodo || s || !row || (flag && *flag)) break;
            size_t p = c->todo[k];
            abl_status st = run_one_local(c, p, row, &mask, NULL, NULL, &e);
            if (!st && row->status == ABL_ESTOPPED) { /* abandoned on request: not journalled */
#pragma omp atomic write
                stopped = 1;
#pragma omp atomic write
                stop = 1;
                break;
            }
#pragma omp critical(sweep_record)
            {
                if (!st && !fatal) st = record(c, p, row, &mask, 0, &e);
                if (st && !fatal) {
                    fatal = st;
                    *err = e;
                }
            }
            if (st) {
#pragma omp atomic write
                stop = 1;
            }
        }
        mask_free(&mask);
        if (row) rows_free(row, 1);
    }
    omp_set_max_active_levels(saved_levels);
    if (stopped) c->stopped = true;
    return fatal;
}

/* ---- MPI ---------------------------------------------------------------------------------- */

#ifdef ABLASIM_MPI

enum { TAG_READY = 1, TAG_RESULT = 2, TAG_WORK = 3 };

static void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

static void reply(run_ctx *c, int dest)
{
    long long w = -1;
    if (!c->fatal && !stop_asked(c) && c->next < c->ntodo)
        w = (long long)c->todo[c->next++];
    else
        c->active_workers--;
    MPI_Send(&w, 1, MPI_LONG_LONG, dest, TAG_WORK, MPI_COMM_WORLD);
}

/* Rank 0: answer every waiting message (results are recorded first, then more work). */
static void serve(run_ctx *c)
{
    for (;;) {
        int flag = 0;
        MPI_Status ms;
        MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &ms);
        if (!flag) return;
        int len = 0;
        MPI_Get_count(&ms, MPI_BYTE, &len);
        unsigned char *buf = malloc(len > 0 ? (size_t)len : 1);
        if (!buf) {
            /* cannot even receive: stop the sweep; the message is taken into a small buffer
             * so the sender is released (MPI truncation error is ignored on purpose) */
            unsigned char small[8];
            MPI_Recv(small, 0, MPI_BYTE, ms.MPI_SOURCE, ms.MPI_TAG, MPI_COMM_WORLD,
                     MPI_STATUS_IGNORE);
            if (!c->fatal) c->fatal = abl_fail(&c->fatal_err, ABL_ENOMEM, "out of memory");
            reply(c, ms.MPI_SOURCE);
            continue;
        }
        MPI_Recv(buf, len, MPI_BYTE, ms.MPI_SOURCE, ms.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        if (ms.MPI_TAG == TAG_RESULT && !c->fatal) {
            sweep_row *row = rows_alloc(1, c->sw->layout->nvals);
            sweep_mask mask = {0};
            size_t p;
            abl_error e = {0};
            abl_status st = row ? result_unpack(c->sw, buf, (size_t)len, &p, row, &mask, &e)
                                : abl_fail(&e, ABL_ENOMEM, "out of memory");
            if (!st && row->status == ABL_ESTOPPED)
                c->stopped = true; /* a worker's point abandoned on request: not journalled */
            else if (!st)
                st = record(c, p, row, &mask, ms.MPI_SOURCE, &e);
            if (st) {
                c->fatal = st;
                c->fatal_err = e;
            }
            mask_free(&mask);
            if (row) rows_free(row, 1);
        }
        free(buf);
        reply(c, ms.MPI_SOURCE);
    }
}

static void serve_cb(const abl_progress *p, void *user)
{
    (void)p;
    serve(user);
}

static abl_status run_master(run_ctx *c, abl_error *err)
{
    sweep_row *row = rows_alloc(1, c->sw->layout->nvals);
    sweep_mask mask = {0};
    if (!row) return abl_fail(err, ABL_ENOMEM, "out of memory");
    c->active_workers = c->nranks - 1;
    for (;;) {
        serve(c);
        if (!c->fatal && !stop_asked(c) && c->next < c->ntodo) {
            size_t p = c->todo[c->next++];
            abl_status st = run_one_local(c, p, row, &mask, serve_cb, c, &c->fatal_err);
            if (!st && row->status == ABL_ESTOPPED)
                c->stopped = true; /* abandoned on request: not journalled */
            else if (!st)
                st = record(c, p, row, &mask, 0, &c->fatal_err);
            if (st && !c->fatal) c->fatal = st;
        } else if (c->active_workers == 0) {
            break;
        } else {
            sleep_us(1000);
        }
    }
    mask_free(&mask);
    rows_free(row, 1);
    if (c->fatal) *err = c->fatal_err;
    return c->fatal;
}

static void run_worker(run_ctx *c)
{
    sweep_row *row = rows_alloc(1, c->sw->layout->nvals);
    sweep_mask mask = {0};
    MPI_Send(NULL, 0, MPI_BYTE, 0, TAG_READY, MPI_COMM_WORLD);
    for (;;) {
        long long w = -1;
        MPI_Request rq;
        int done = 0;
        MPI_Irecv(&w, 1, MPI_LONG_LONG, 0, TAG_WORK, MPI_COMM_WORLD, &rq);
        while (MPI_Test(&rq, &done, MPI_STATUS_IGNORE) == MPI_SUCCESS && !done)
            sleep_us(200);
        if (w < 0) break;
        size_t p = (size_t)w;
        if (row) {
            abl_error e = {0};
            if (run_one_local(c, p, row, &mask, NULL, NULL, &e))
                row_set(row, e.status, e.msg, c->sw->layout->nvals);
        }
        unsigned char *buf = NULL;
        size_t len = 0;
        if (row) {
            const sweep_mask *m = c->sw->prob_map_on && row->status == ABL_OK ? &mask : NULL;
            len = result_pack_size(c->sw, row, m);
            buf = malloc(len);
            if (buf) result_pack(c->sw, p, row, m, buf);
        }
        if (!buf) {
            /* report the point as failed for lack of memory (retried by the next run) */
            static const char oom[] = "out of memory on a worker rank";
            sweep_row tiny = {0};
            double *v = malloc((size_t)c->sw->layout->nvals * sizeof *v + 8);
            tiny.val = v;
            tiny.status = ABL_ENOMEM;
            tiny.msg = (char *)oom;
            for (int k = 0; v && k < c->sw->layout->nvals; k++)
                v[k] = NAN;
            len = v ? result_pack_size(c->sw, &tiny, NULL) : 0;
            buf = v ? malloc(len) : NULL;
            if (buf) result_pack(c->sw, p, &tiny, NULL, buf);
            free(v);
            if (!buf) len = 0; /* an empty result: rank 0 just hands out the next point */
        }
        MPI_Request sq;
        int sent = 0;
        MPI_Isend(buf, (int)len, MPI_BYTE, 0, len ? TAG_RESULT : TAG_READY, MPI_COMM_WORLD, &sq);
        while (MPI_Test(&sq, &sent, MPI_STATUS_IGNORE) == MPI_SUCCESS && !sent)
            sleep_us(200);
        free(buf);
    }
    mask_free(&mask);
    if (row) rows_free(row, 1);
}

/* Same status everywhere (the worst one), so every rank takes the same branch. */
static abl_status agree(abl_status st)
{
    int in = (int)st, out = 0;
    MPI_Allreduce(&in, &out, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return (abl_status)out;
}
#endif

/* ---- driver ------------------------------------------------------------------------------- */

/* Rank 0: which points still need running. */
static abl_status plan(run_ctx *c, abl_error *err)
{
    abl_sweep *sw = c->sw;
    c->todo = malloc(sw->npoints * sizeof *c->todo);
    if (!c->todo) return abl_fail(err, ABL_ENOMEM, "out of memory");
    sweep_mask m = {0};
    for (size_t p = 0; p < sw->npoints; p++) {
        sweep_row *r = &c->rows[p];
        bool need = !r->done || retryable(r->status);
        if (!need && r->status == ABL_OK && sw->prob_map_on) {
            abl_error e = {0};
            need = mask_read(sw, p, &m, &e) != ABL_OK; /* removed or damaged: run again */
        }
        if (!need && r->status == ABL_OK && sw->fields) {
            char *fp = field_path(sw, p);
            need = !file_exists(fp);
            free(fp);
        }
        if (need) {
            r->done = false;
            c->todo[c->ntodo++] = p;
        }
    }
    mask_free(&m);
    c->ndone = sw->npoints - c->ntodo;
    c->sum->nresumed = c->ndone;
    c->sum->nrun = c->ntodo;
    return ABL_OK;
}

/* An input that lies in output_dir/points (resolved: through symlinks) under the name of a
 * per-point file of this sweep would be replaced when that point runs. Per-point names are
 * not all declared (a sweep may have a million points): the input's name gives the only
 * point it could belong to, and that point's names are compared as files. */
static abl_status guard_point_files(const abl_sweep *sw, const char *role, const char *path,
                                    abl_error *err)
{
    char *real = realpath(path, NULL);
    if (!real) return ABL_OK; /* vanished: the loaders report it */
    char *points = sweep_join(sw->output_dir, SWEEP_POINTS_DIR);
    char *slash = strrchr(real, '/');
    abl_status st = points ? ABL_OK : abl_fail(err, ABL_ENOMEM, "out of memory");
    if (!st && slash && slash != real) {
        *slash = '\0';
        const char *base = slash + 1;
        const bool in_points = fg_same_file(real, points);
        *slash = '/';
        const char *digits = !strncmp(base, "mask_", 5) ? base + 5
                             : !strncmp(base, "point_", 6) ? base + 6
                                                           : NULL;
        char *end = NULL;
        unsigned long long i = digits ? strtoull(digits, &end, 10) : 0;
        if (in_points && digits && end != digits && i < sw->npoints) {
            abl_output_name names[ABL_OUTPUT_NAMES + 2];
            int n = 0;
            /* masks exist only for the probability map, result files only with fields */
            char *mp = sw->prob_map_on ? mask_path(sw, (size_t)i) : NULL;
            char *fp = sw->fields ? field_path(sw, (size_t)i) : NULL;
            if (mp) {
                names[n++] = (abl_output_name){"ablation mask", mp};
                size_t len = strlen(mp) + 5;
                char *t = malloc(len);
                if (t) snprintf(t, len, "%s.tmp", mp);
                if (t) names[n++] = (abl_output_name){"ablation mask temporary", t};
            }
            if (fp) {
                int k = output_file_names(fp, names + n);
                n += k > 0 ? k : 0;
                free(fp);
            }
            for (int k = 0; k < n && !st; k++)
                if (fg_same_file(names[k].path, path))
                    st = abl_fail(err, ABL_EINVAL,
                                  "%s of point %llu %s is the %s %s (same file): the sweep "
                                  "would replace an input; choose another output_dir",
                                  names[k].role, i, names[k].path, role, path);
            output_file_names_free(names, n);
        }
    }
    free(points);
    free(real);
    return st;
}

/* Before anything is created: the sweep's inputs against every file it writes under
 * output_dir (issue 14: no command destroys a file it was not asked to write). */
abl_status sweep_check_files(const abl_sweep *sw, abl_error *err)
{
    if (!sw->validated)
        return abl_fail(err, ABL_EINTERNAL, "sweep_check_files before sweep_validate");
    static const char *const fixed[][2] = {
        {"journal", SWEEP_JOURNAL},
        {"journal lock", SWEEP_JOURNAL ".lock"},
        {"results table", SWEEP_CSV},
        {"results table temporary", SWEEP_CSV ".tmp"},
        {"results file", SWEEP_H5},
        {"results file temporary", SWEEP_H5 ".tmp"},
        {"results undo log", SWEEP_UNDO},
        {"results undo log temporary", SWEEP_UNDO ".tmp"},
        /* the previous versions the log keeps are hard links of the tables (undo.h): the same
         * files, not declared */
    };
    const char *in_role[2 + SWEEP_MAX_EXTRA_INPUTS] = {"sweep file", "base scenario"};
    const char *in_path[2 + SWEEP_MAX_EXTRA_INPUTS] = {sw->path, sw->base_path};
    int nin = 2;
    for (int i = 0; i < sw->nextra; i++) {
        in_role[nin] = sw->extra_role[i];
        in_path[nin++] = sw->extra_path[i];
    }
    abl_fileset *fs = fileset_new();
    abl_status st = fs ? ABL_OK : abl_fail(err, ABL_ENOMEM, "out of memory");
    for (int i = 0; i < nin && !st; i++)
        st = fileset_input(fs, in_role[i], in_path[i], err);
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0] && !st; i++) {
        char *p = sweep_join(sw->output_dir, fixed[i][1]);
        st = p ? fileset_output(fs, fixed[i][0], p, err)
               : abl_fail(err, ABL_ENOMEM, "out of memory");
        free(p);
    }
    if (!st) st = fileset_check(fs, err);
    fileset_free(fs);
    for (int i = 0; i < nin && !st; i++)
        st = guard_point_files(sw, in_role[i], in_path[i], err);
    return st;
}

/* Without the sweep's journal, a file under one of its output names (the tables, their undo
 * log, a point's mask or result) is not the sweep's: it is refused, not replaced (found by an
 * adversarial test, session 26: a user's results.csv, results.h5 and points/point_0000000.h5
 * were overwritten, exit 0; `plan` refuses the same since session 23). With the journal, the
 * files are this sweep's (the journal's fingerprint is checked when it is opened). */
static abl_status foreign_outputs(const abl_sweep *sw, abl_error *err)
{
    char *jp = sweep_join(sw->output_dir, SWEEP_JOURNAL);
    if (!jp) return abl_fail(err, ABL_ENOMEM, "out of memory");
    struct stat sb;
    const bool journal = lstat(jp, &sb) == 0;
    abl_status st = ABL_OK;
    static const char *const names[] = {SWEEP_CSV, SWEEP_H5, SWEEP_UNDO};
    for (size_t i = 0; i < sizeof names / sizeof names[0] && !journal && !st; i++) {
        char *p = sweep_join(sw->output_dir, names[i]);
        if (!p) st = abl_fail(err, ABL_ENOMEM, "out of memory");
        else if (lstat(p, &sb) == 0)
            st = abl_fail(err, ABL_EINVAL,
                          "%s exists but no %s beside it: it is not this sweep's and is not "
                          "overwritten (choose another output_dir, or move it away)",
                          p, SWEEP_JOURNAL);
        free(p);
    }
    char *pd = !journal && !st ? sweep_join(sw->output_dir, SWEEP_POINTS_DIR) : NULL;
    DIR *d = pd ? opendir(pd) : NULL;
    for (struct dirent *e; d && !st && (e = readdir(d));) {
        const size_t n = strlen(e->d_name);
        /* a lock file holds a pid only and is taken over by its next user (fileguard.h) */
        const bool lock = n > 5 && !strcmp(e->d_name + n - 5, ".lock");
        if (!lock && (!strncmp(e->d_name, "mask_", 5) || !strncmp(e->d_name, "point_", 6)))
            st = abl_fail(err, ABL_EINVAL,
                          "%s/%s exists but no %s in %s: it is not this sweep's and is not "
                          "overwritten (choose another output_dir, or move it away)",
                          pd, e->d_name, SWEEP_JOURNAL, sw->output_dir);
    }
    if (d) closedir(d);
    free(pd);
    free(jp);
    return st;
}

static void note(sweep_summary *sum, const char *text)
{
    size_t n = strlen(sum->note);
    snprintf(sum->note + n, sizeof sum->note - n, "%s%s", n ? "; " : "", text);
}

static abl_status finish(run_ctx *c, abl_error *err)
{
    abl_sweep *sw = c->sw;
    sweep_summary *sum = c->sum;
    for (size_t p = 0; p < sw->npoints; p++) {
        const sweep_row *r = &c->rows[p];
        if (!r->done)
            return abl_fail(err, ABL_EINTERNAL, "point %zu has no result; run the sweep again", p);
        if (r->status == ABL_OK) {
            sum->nok++;
        } else {
            if (!sum->nfailed) {
                sum->first_failure = r->status;
                sum->first_failure_index = p;
            }
            sum->nfailed++;
        }
    }
    if (sw->prob_map_note[0]) note(sum, sw->prob_map_note);
    return table_write(sw, c->rows, sum, err);
}

abl_status sweep_run(abl_sweep *sw, const sweep_run_opts *opts, sweep_summary *sum, abl_error *err)
{
    memset(sum, 0, sizeof *sum);
    run_ctx c = {0};
    c.sw = sw;
    c.opts = opts;
    c.sum = sum;
    c.jr.fd = -1;
    c.nranks = 1;
#ifdef ABLASIM_MPI
    int inited = 0, finalized = 0;
    MPI_Initialized(&inited);
    MPI_Finalized(&finalized);
    if (inited && !finalized) {
        MPI_Comm_rank(MPI_COMM_WORLD, &c.rank);
        MPI_Comm_size(MPI_COMM_WORLD, &c.nranks);
    }
#endif
    sum->rank = c.rank;
    sum->nranks = c.nranks;
    sum->npoints = sw->npoints;
    const double t0 = omp_get_wtime();
    const int jobs = opts && opts->jobs > 0 ? opts->jobs : 1;
    const int saved_threads = omp_get_max_threads();
    const int threads = opts && opts->threads > 0 ? opts->threads : saved_threads;

    abl_status st = sweep_validate(sw, err);
    /* before anything is created; rank 0's request only (a worker's is seen at its first
     * point, which rank 0 then takes as the sweep's stop: found by a read-only review) */
    if (!st && c.rank == 0 && opts && opts->stop && *opts->stop)
        st = abl_fail(err, ABL_ESTOPPED,
                      "stopped on request before the sweep began: nothing was written (the "
                      "same command starts it)");
    if (!st && c.nranks > 1 && jobs > 1)
        st = abl_fail(err, ABL_EINVAL,
                      "--jobs %d is for runs without MPI ranks; start more ranks (mpirun -np) "
                      "instead",
                      jobs);
    if (!st && c.rank == 0) {
        snprintf(sum->journal_path, sizeof sum->journal_path, "%s/%s", sw->output_dir,
                 SWEEP_JOURNAL);
        /* nothing is created before the file check; the lock needs output_dir to exist */
        st = sweep_check_files(sw, err);
        if (!st) st = sweep_mkdirs(sw->output_dir, err);
        if (!st) st = fg_lock(sum->journal_path, &c.lock, err);
        if (!st) st = foreign_outputs(sw, err); /* under the lock: not another sweep's start */
        if (!st) st = table_recover(sw, err); /* a sweep killed between the two renames */
    }
    if (!st && c.rank == 0) {
        c.rows = rows_alloc(sw->npoints, sw->layout->nvals);
        if (!c.rows) st = abl_fail(err, ABL_ENOMEM, "out of memory for %zu rows", sw->npoints);
        if (!st && (sw->prob_map_on || sw->fields)) {
            char *dir = sweep_join(sw->output_dir, SWEEP_POINTS_DIR);
            st = dir ? sweep_mkdirs(dir, err) : abl_fail(err, ABL_ENOMEM, "out of memory");
            free(dir);
        }
        if (!st) st = journal_open(&c.jr, sw, c.rows, err);
        if (!st) st = plan(&c, err);
    }
#ifdef ABLASIM_MPI
    if (c.nranks > 1) {
        abl_status all = agree(st);
        if (all && !st) st = abl_fail(err, all, "the sweep could not start (rank 0 reports why)");
    }
#endif
    if (st) goto out;

    omp_set_num_threads(threads);
    if (c.nranks > 1) {
#ifdef ABLASIM_MPI
        if (c.rank == 0)
            st = run_master(&c, err);
        else
            run_worker(&c);
#endif
    } else if (jobs > 1 && c.ntodo > 1) {
        st = run_jobs(&c, jobs, threads, err);
    } else {
        st = run_serial(&c, err);
    }
    omp_set_num_threads(saved_threads);
    if (c.rank == 0) {
        if (c.jr.torn_bytes) {
            char t[160];
            snprintf(t, sizeof t,
                     "the journal ended in a torn line (%zu bytes, left by an interrupted run); it "
                     "was cut off and ignored",
                     c.jr.torn_bytes);
            note(sum, t);
        }
        if (c.jr.bad_lines) {
            char t[160];
            snprintf(t, sizeof t, "%zu damaged journal line(s) ignored; their points ran again",
                     c.jr.bad_lines);
            note(sum, t);
        }
        journal_close(&c.jr);
        /* a stop that came after the last point changes nothing: the table is written */
        if (!st && c.ndone < sw->npoints && stop_asked(&c))
            st = abl_fail(err, ABL_ESTOPPED,
                          "stopped on request after %zu of %zu points (%zu of them in this "
                          "run); %s keeps them, and the same command continues with the other "
                          "%zu; %s and %s were not rewritten",
                          c.ndone, sw->npoints, c.ndone - sum->nresumed, sum->journal_path,
                          sw->npoints - c.ndone, SWEEP_CSV, SWEEP_H5);
        else if (!st)
            st = finish(&c, err);
    }
#ifdef ABLASIM_MPI
    if (c.nranks > 1) {
        int code = (int)st;
        MPI_Bcast(&code, 1, MPI_INT, 0, MPI_COMM_WORLD);
        if (code && !st) st = abl_fail(err, (abl_status)code, "the sweep failed on rank 0");
    }
#endif
out:
    journal_close(&c.jr);
    fg_unlock(c.lock); /* after the table: a second sweep must not start in between */
    if (c.rows) rows_free(c.rows, sw->npoints);
    free(c.todo);
    sum->wall_s = omp_get_wtime() - t0;
    return st;
}
