/* NAME     bench_stencil - explicit Pennes solver throughput against the memory-bandwidth roofline
 * PURPOSE  Measures in one run (a) the machine's sustainable memory bandwidth with a STREAM-style
 *          triad and (b) lattice updates per second (MLUPS) of the explicit Pennes step on a
 *          heterogeneous liver grid (liver, tumour, vessel, fat) of 128^3 and 256^3 voxels at 1
 *          thread and at all threads, for the production kernel (same-tissue fast path) and for
 *          the straightforward table-lookup kernel (every voxel through the general path, the
 *          baseline "lookup"; the production kernel is "planned").
 *          Reports MLUPS, effective GB/s and the fraction of the roofline, and writes a CSV to
 *          bench/results/.
 * USAGE    make bench          (or build/rel/bench/bench_stencil [--quick])
 *
 * Byte accounting (physical traffic, write-allocate included on both sides):
 *   triad   a[i] = b[i] + s*c[i]: read b, c (16 B), write a (8 B) + write-allocate read (8 B) = 32 B
 *   stencil read T (8 B), write T_new (8 B) + write-allocate (8 B) = 24 B/LUP; the sweep follows
 *           a precomputed segment plan, so no label byte is read per voxel
 *           (neighbour values are reused from cache: 7-point stencil rows/planes fit in L2 for
 *           nx*ny*8 B = 512 KiB at 256^2; the general path also reads the material and neighbour labels, +1 B or more)
 *   roofline MLUPS = triad bandwidth / 24 B.
 * Timing: median over repetitions for both the triad and the stencil (one step each).
 * Self-check: after the timed steps the fast and general kernels must agree to 1e-12 K, else the
 * program exits 1.
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>

#include "ablasim/kernels.h"
#include "ablasim/scenario.h"
#include "ablasim/sim.h"

#define BYTES_PER_LUP 24.0
#define TRIAD_BYTES 32.0

/* Median of n timings: robust against a noisy neighbour on a shared machine; the same
 * statistic for the triad and the stencil keeps their ratio fair. */
static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *t, int n)
{
    qsort(t, (size_t)n, sizeof *t, cmp_dbl);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

static double triad_GBps(size_t n, int reps)
{
    double *a = aligned_alloc(64, n * sizeof(double));
    double *b = aligned_alloc(64, n * sizeof(double));
    double *c = aligned_alloc(64, n * sizeof(double));
    if (!a || !b || !c) {
        fprintf(stderr, "bench: cannot allocate triad arrays\n");
        exit(1);
    }
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        a[i] = 0.0;
        b[i] = 1.0;
        c[i] = 2.0;
    }
    double times[64];
    if (reps > 64) reps = 64;
    for (int r = 0; r < reps + 1; r++) { /* first repetition is warm-up */
        double t0 = omp_get_wtime();
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) a[i] = b[i] + 3.0 * c[i];
        double t = omp_get_wtime() - t0;
        if (r > 0) times[r - 1] = t;
    }
    double best = median(times, reps);
    if (a[n / 2] != 7.0) {
        fprintf(stderr, "bench: triad check failed\n");
        exit(1);
    }
    free(a);
    free(b);
    free(c);
    return TRIAD_BYTES * (double)n / best / 1e9;
}

static const char *scenario_fmt =
    "name: bench_liver\n"
    "tissues_file: %s/configs/tissues.yaml\n"
    "grid:\n"
    "  dims: [%d, %d, %d]\n"
    "  spacing_mm: [0.5, 0.5, 0.5]\n"
    "  background: liver\n"
    "  shapes:\n"
    "    - {type: sphere, center_mm: [0, 0, 0], radius_mm: %g, tissue: tumour}\n"
    "    - {type: cylinder, start_mm: [-200, %g, -200], end_mm: [200, %g, 200], radius_mm: %g,\n"
    "       tissue: blood}\n"
    "    - {type: box, min_mm: [-200, -200, %g], max_mm: [200, 200, 200], tissue: fat}\n"
    "time: {duration_s: 1}\n";

typedef void (*step_fn)(const abl_stencil *, const double *restrict, double *restrict);

/* Median time of one step over `steps` timed steps (after one warm-up step). */
static double time_step(step_fn f, const abl_stencil *st, double *T, double *Tn, int steps)
{
    double times[64];
    if (steps > 64) steps = 64;
    f(st, T, Tn); /* warm-up */
    for (int s = 0; s < steps; s++) {
        double t0 = omp_get_wtime();
        f(st, T, Tn);
        times[s] = omp_get_wtime() - t0;
        double *x = T;
        T = Tn;
        Tn = x;
    }
    return median(times, steps);
}

static void cpu_model(char *buf, size_t len)
{
    snprintf(buf, len, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "model name", 10)) {
            char *p = strchr(line, ':');
            if (p) {
                p += 2;
                p[strcspn(p, "\n")] = '\0';
                for (char *q = p; *q; q++)
                    if (*q == ',') *q = ' ';
                snprintf(buf, len, "%s", p);
            }
            break;
        }
    fclose(f);
}

int main(int argc, char **argv)
{
    int quick = argc > 1 && !strcmp(argv[1], "--quick");
    const char *root = getenv("ABLASIM_ROOT");
    if (!root) root = ".";
    int nthreads = omp_get_num_procs();
    char cpu[256];
    cpu_model(cpu, sizeof cpu);
    struct utsname un;
    uname(&un);
    const char *bind = getenv("OMP_PROC_BIND");
    printf("bench_stencil: %s, %d hardware threads, OMP_PROC_BIND=%s, host %s\n", cpu, nthreads,
           bind ? bind : "(unset)", un.nodename);
    printf("bytes per lattice update: %.0f (T read 8, T_new write 8 + write-allocate 8)\n",
           BYTES_PER_LUP);

    char csvpath[600];
    time_t now = time(NULL);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", gmtime(&now));
    snprintf(csvpath, sizeof csvpath, "%s/bench/results/stencil_%s_%s.csv", root, un.nodename,
             stamp);
    FILE *csv = fopen(csvpath, "w");
    if (!csv) {
        fprintf(stderr, "bench: cannot write %s\n", csvpath);
        return 1;
    }
    fprintf(csv, "# cpu=%s; hw_threads=%d; host=%s; kernel=%s %s\n", cpu, nthreads, un.nodename,
            un.sysname, un.release);
    fprintf(csv, "grid,threads,kernel,mlups,effective_GBps,triad_GBps,roofline_mlups,"
                 "fraction_of_roofline\n");

    const int sizes[2] = {128, 256};
    int fail = 0;
    for (int tc = 0; tc < 2; tc++) {
        int thr = tc == 0 ? 1 : nthreads;
        omp_set_num_threads(thr);
        double bw = triad_GBps((size_t)1 << 25, quick ? 5 : 15); /* 3 x 256 MiB */
        double roof = bw * 1e9 / BYTES_PER_LUP / 1e6;
        printf("\n%d thread(s): triad %.2f GB/s (32 B/element) -> roofline %.1f MLUPS\n", thr, bw,
               roof);
        for (int si = 0; si < (quick ? 1 : 2); si++) {
            int n = sizes[si];
            char yaml[2048];
            double half = n * 0.25; /* half-width in mm at 0.5 mm spacing */
            snprintf(yaml, sizeof yaml, scenario_fmt, root, n, n, n, 0.25 * half, 0.45 * half,
                     0.45 * half, 0.06 * half, 0.7 * half);
            abl_scenario *sc = NULL;
            abl_sim *sim = NULL;
            abl_error err = {0};
            if (scenario_load_string(yaml, "bench", ".", NULL, 0, &sc, &err) ||
                sim_create(sc, &sim, &err)) {
                fprintf(stderr, "bench: %s\n", err.msg);
                return 1;
            }
            size_t general = 0;
            for (size_t c = 0; c < sim->grid.n; c++) general += sim->cls[c] == ABL_CLS_GENERAL;
            /* a smooth non-trivial field so that no path is degenerate */
            for (size_t c = 0; c < sim->grid.n; c++) sim->T[c] = 37.0 + 10.0 * sin(1e-3 * c);
            int steps = n == 128 ? 40 : 15;
            if (quick) steps /= 2;
            double lups = (double)sim->grid.n;
            const char *names[2] = {"planned", "lookup"};
            step_fn fns[2] = {pennes_explicit_step, pennes_explicit_step_general};
            for (int kf = 0; kf < 2; kf++) {
                double t = time_step(fns[kf], &sim->st, sim->T, sim->T_new, steps);
                double mlups = lups / t / 1e6;
                double gbps = mlups * 1e6 * BYTES_PER_LUP / 1e9;
                printf("  %3d^3 %-7s %8.1f MLUPS  %6.2f GB/s  %5.1f %% of roofline"
                       "  (%.1f %% voxels on the general path)\n",
                       n, names[kf], mlups, gbps, 100.0 * mlups / roof,
                       100.0 * general / sim->grid.n);
                fprintf(csv, "%d^3,%d,%s,%.2f,%.3f,%.3f,%.2f,%.4f\n", n, thr, names[kf], mlups,
                        gbps, bw, roof, mlups / roof);
            }
            /* self-check: one step of each kernel from the same state agrees */
            double *a = grid_alloc_field(&sim->grid, 0), *b = grid_alloc_field(&sim->grid, 0);
            pennes_explicit_step(&sim->st, sim->T, a);
            pennes_explicit_step_general(&sim->st, sim->T, b);
            double d = 0;
            for (size_t c = 0; c < sim->grid.n; c++) d = fmax(d, fabs(a[c] - b[c]));
            if (!(d < 1e-12)) {
                fprintf(stderr, "bench: fast and general kernels differ by %g K\n", d);
                fail = 1;
            }
            grid_free_field(a);
            grid_free_field(b);
            sim_destroy(sim);
            scenario_free(sc);
        }
    }
    fclose(csv);
    printf("\nresults: %s\n", csvpath);
    return fail;
}
