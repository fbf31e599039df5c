/* cmd_sweep.c - 'ablasim sweep': parameter sweeps and uncertainty studies (sweep.h).
 * Parses the options, starts MPI in MPI builds, prints progress per finished point and the
 * summary (rank 0 only), and maps the outcome to the exit code. */
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef ABLASIM_MPI
#include <mpi.h>
#endif

#include "ablasim/sweep.h"
#include "commands.h"

static const char *usage_sweep =
    "usage: ablasim sweep SWEEP.yaml [--jobs J] [--threads N] [--quiet] [--dry-run]\n"
    "\n"
    "  Runs every point of a sweep (a base scenario with --set overrides per point) and\n"
    "  writes OUTPUT_DIR/results.csv and results.h5; finished points are kept in\n"
    "  OUTPUT_DIR/journal.txt, so running the same sweep again resumes it.\n"
    "  SWEEP.yaml reference: docs/SWEEPS.md.\n"
    "\n"
    "  --jobs J      points at once in this process, with N/J threads each (default 1)\n"
    "  --threads N   OpenMP threads of this process (default: OMP_NUM_THREADS or all cores);\n"
    "                under MPI, per rank\n"
    "  -q, --quiet   no progress lines, only errors and failed points\n"
    "  --dry-run     list the points and their --set lines, run nothing, write nothing\n"
    "  -h, --help    this text\n"
    "\n"
    "  MPI build (make MPI=1): mpirun -np R ablasim sweep SWEEP.yaml spreads the points over\n"
    "  R ranks (rank 0 hands them out and writes the files).\n"
    "\n"
    "  Files: the sweep file must be a regular file; a file of OUTPUT_DIR that is one of the\n"
    "  inputs (sweep file, base scenario, tissue table, mesh) is refused before anything is\n"
    "  created; one sweep at a time per OUTPUT_DIR (lock: OUTPUT_DIR/journal.txt.lock).\n"
    "\n"
    "exit codes: 0 every point ok, 1 usage, 2 invalid input (also: an output that is an input,\n"
    "a special file as sweep file, more than 1000000 points), 3 I/O error (also: another\n"
    "ablasim process is writing OUTPUT_DIR), 4 out of memory, 5 numerical fault, 75 stopped by\n"
    "SIGINT/SIGTERM/SIGHUP (between points: the journal keeps the finished ones, the same\n"
    "command continues); when the sweep ran but points failed, the code of the first failed one\n";

typedef struct {
    bool quiet;
    const abl_sweep *sw;
} report_state;

/* Quote for a POSIX shell when needed, so that a printed point can be pasted. */
static void print_sets(FILE *f, const abl_sweep *sw, size_t p)
{
    char *a = sweep_set_args(sw, p);
    fputs(a ? a : "(out of memory)", f);
    free(a);
}

static void report(const sweep_point_report *r, void *user)
{
    report_state *rs = user;
    if (rs->quiet && r->status == 0) return;
    int w = snprintf(NULL, 0, "%zu", r->npoints);
    fprintf(stderr, "sweep: [%*zu/%zu] point %zu ", w, r->ndone, r->npoints, r->index);
    if (r->status == 0) {
        fprintf(stderr, "ok in %.2f s", r->wall_time_s);
        if (!isnan(r->V_ablation_mL))
            fprintf(stderr, ", V(T_max >= %g C) = %.4g mL", rs->sw->ablation_threshold_C,
                    r->V_ablation_mL);
    } else {
        fprintf(stderr, "FAILED (%s): %s", abl_status_name(r->status), r->message);
    }
    if (r->rank > 0) fprintf(stderr, " [rank %d]", r->rank);
    fputs("   ", stderr);
    print_sets(stderr, rs->sw, r->index);
    fputc('\n', stderr);
    fflush(stderr);
}

static int dry_run(abl_sweep *sw)
{
    int ncols = 0;
    const char *const *cols = sweep_columns(sw, &ncols);
    printf("sweep %s: %zu points over %s\n", sw->path, sw->npoints, sw->base_path);
    printf("output     %s (results.csv, results.h5, journal.txt%s)\n", sw->output_dir,
           sw->fields ? ", points/point_<i>.h5" : "");
    printf("probability map: %s\n", sw->prob_map_on        ? "yes"
                                    : sw->prob_map_note[0] ? sw->prob_map_note
                                                           : "no");
    printf("columns   ");
    for (int c = 0; c < ncols; c++)
        printf(" %s", cols[c]);
    printf("\n");
    for (size_t p = 0; p < sw->npoints; p++) {
        printf("point %zu: ", p);
        print_sets(stdout, sw, p);
        printf("\n");
    }
    return 0;
}

static int sweep_main(int argc, char **argv, int rank)
{
    const char *path = NULL;
    int jobs = 1, threads = 0;
    bool quiet = rank != 0, dry = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            if (rank == 0) fputs(usage_sweep, stdout);
            return 0;
        } else if (!strcmp(a, "--jobs") || !strcmp(a, "--threads")) {
            char *end;
            if (++i >= argc) {
                if (rank == 0)
                    fprintf(stderr, "ablasim sweep: %s needs a number\n\n%s", a, usage_sweep);
                return 1;
            }
            errno = 0;
            long v = strtol(argv[i], &end, 10);
            if (*end || end == argv[i] || v < 1 || v > 1024 || errno) {
                if (rank == 0)
                    fprintf(stderr, "ablasim sweep: %s must be an integer 1..1024, got: %s\n\n%s",
                            a, argv[i], usage_sweep);
                return 1;
            }
            if (a[2] == 'j')
                jobs = (int)v;
            else
                threads = (int)v;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            quiet = true;
        } else if (!strcmp(a, "--dry-run")) {
            dry = true;
        } else if (a[0] == '-') {
            if (rank == 0)
                fprintf(stderr, "ablasim sweep: unknown option: %s\n\n%s", a, usage_sweep);
            return 1;
        } else if (!path) {
            path = a;
        } else {
            if (rank == 0)
                fprintf(stderr, "ablasim sweep: more than one sweep file given: %s\n\n%s", a,
                        usage_sweep);
            return 1;
        }
    }
    if (!path) {
        if (rank == 0) fprintf(stderr, "ablasim sweep: missing SWEEP.yaml\n\n%s", usage_sweep);
        return 1;
    }

#ifdef ABLASIM_MPI
    int nranks = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    if (nranks > 1 && jobs > 1) {
        if (rank == 0)
            fprintf(stderr,
                    "ablasim sweep: --jobs is for runs without MPI ranks; start more "
                    "ranks (mpirun -np) instead\n\n%s",
                    usage_sweep);
        return 1;
    }
#endif

    abl_error err = {0};
    abl_sweep *sw = NULL;
    abl_status st = sweep_load(path, &sw, &err);
    if (!st) st = sweep_validate(sw, &err); /* before anything is printed or created */
    /* outputs that would replace an input: refused here already, also for a dry run (only
     * rank 0 writes, and output_dir need only be visible to it) */
    if (!st && rank == 0) st = sweep_check_files(sw, &err);
#ifdef ABLASIM_MPI
    /* all ranks must take the same branch (sweep_run is collective) */
    int mine = (int)st, worst = 0;
    MPI_Allreduce(&mine, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (worst && !st) st = abl_fail(&err, (abl_status)worst, "failed on another rank");
#endif
    if (st) {
        if (rank == 0) fprintf(stderr, "ablasim sweep: error: %s\n", err.msg);
        sweep_free(sw);
        return abl_status_exit_code(st);
    }
    if (dry) {
        int rc = rank == 0 ? dry_run(sw) : 0;
        sweep_free(sw);
        return rc;
    }

    report_state rs = {quiet, sw};
    sweep_run_opts opts = {jobs, threads, rank == 0 ? report : NULL, &rs, &cli_stop_requested};
    if (!quiet) {
#ifndef ABLASIM_MPI
        const int nranks = 1;
#endif
        int t = threads ? threads : omp_get_max_threads();
        fprintf(stderr, "ablasim sweep: %s: %zu points over %s -> %s; ", sw->path, sw->npoints,
                sw->base_path, sw->output_dir);
        int per = nranks > 1 ? t : jobs > 1 ? (t / jobs ? t / jobs : 1) : t;
        if (nranks > 1)
            fprintf(stderr, "%d ranks x ", nranks);
        else if (jobs > 1)
            fprintf(stderr, "%d jobs x ", jobs);
        fprintf(stderr, "%d thread%s\n", per, per == 1 ? "" : "s");
    }
    sweep_summary sum;
    st = sweep_run(sw, &opts, &sum, &err);
    int rc = 0;
    if (st) {
        if (rank == 0) fprintf(stderr, "ablasim sweep: error: %s\n", err.msg);
        rc = abl_status_exit_code(st);
    } else if (rank == 0) {
        if (!quiet) {
            double ppm = sum.wall_s > 0 ? 60.0 * (double)sum.nrun / sum.wall_s : 0.0;
            printf("sweep      %s: %zu points, %zu ok, %zu failed\n", sw->path, sum.npoints,
                   sum.nok, sum.nfailed);
            printf("run        %zu now, %zu from the journal, %.2f s on %d rank%s (%.1f points "
                   "per minute)\n",
                   sum.nrun, sum.nresumed, sum.wall_s, sum.nranks, sum.nranks > 1 ? "s" : "", ppm);
            printf("results    %s\n           %s%s\n", sum.csv_path, sum.h5_path,
                   sum.prob_map_written ? " (with the probability-of-ablation map)" : "");
        }
        if (sum.note[0]) fprintf(stderr, "ablasim sweep: note: %s\n", sum.note);
        if (sum.nfailed) {
            fprintf(stderr,
                    "ablasim sweep: %zu of %zu points failed (first: point %zu, %s); see the "
                    "status and message columns of %s\n",
                    sum.nfailed, sum.npoints, sum.first_failure_index,
                    abl_status_name(sum.first_failure), sum.csv_path);
            rc = abl_status_exit_code(sum.first_failure);
        }
    }
    sweep_free(sw);
    return rc;
}

int cmd_sweep(int argc, char **argv)
{
    int rank = 0;
    /* SIGINT/SIGTERM (a batch system's time limit) stop the sweep between points, its journal
     * whole and its lock released (exit 75); without the handler they killed it at any moment,
     * which its journal survives but which left the lock files behind */
    cli_install_stop_signals();
#ifdef ABLASIM_MPI
    /* Only the main thread calls MPI (OpenMP threads compute inside points). */
    int provided = 0;
    if (MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "ablasim sweep: error: MPI could not start\n");
        return 1;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    cli_install_stop_signals(); /* again: in case MPI_Init installed its own */
#endif
    int rc = sweep_main(argc, argv, rank);
#ifdef ABLASIM_MPI
    /* every rank leaves with rank 0's verdict, so mpirun reports one exit code */
    MPI_Bcast(&rc, 1, MPI_INT, 0, MPI_COMM_WORLD);
    MPI_Finalize();
#endif
    return rc;
}
