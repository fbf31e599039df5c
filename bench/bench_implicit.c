/* NAME     bench_implicit - implicit schemes: PCG iterations, FFT solve vs CG iteration cost, and
 *          time to solution of a 20-minute protocol, explicit vs Crank-Nicolson at equal accuracy
 * PURPOSE  (1) Heterogeneous liver (tumour with 5x the liver conductivity, a vessel) at 128^3,
 *          0.5 mm, backward Euler with dt = 5 s: CG iterations per solve with the spectral
 *          preconditioner and without, to a relative residual of 1e-8; ns per cell per
 *          iteration (compare TeaLeaf).
 *          (2) One spectral preconditioner application (forward + inverse 3-D r2r transform)
 *          vs one CG iteration without it (matvec + dots + updates), same grid.
 *          (3) 20-minute protocol at 0.5 mm (64^3, electrode held at 90 C, tumour, vessel):
 *          reference = Crank-Nicolson with dt = 1 s; accuracy criterion = max over voxels of
 *          |T_max - T_max(reference)| < 0.5 C. Explicit (stability-limited dt) and
 *          Crank-Nicolson at dt = 5, 10, 20, 40, 60 s are timed; the cheapest run meeting the
 *          criterion of each scheme is reported and their ratio.
 * USAGE    make bench (or build/rel/bench/bench_implicit [--quick])
 * Self-check: the CG runs must converge (exit 1 otherwise) and the reference must agree with
 *          Crank-Nicolson at 2x its dt to < 0.1 C (its own error estimate), else exit 1.
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>

#include "ablasim/implicit.h"
#include "ablasim/scenario.h"
#include "ablasim/sim.h"

static const char *root;

static abl_sim *make_sim(const char *yaml, abl_scenario **sc_out)
{
    abl_error err = {0};
    abl_scenario *sc = NULL;
    abl_sim *s = NULL;
    char dir[600];
    snprintf(dir, sizeof dir, "%s/configs", root);
    if (scenario_load_string(yaml, "bench", dir, NULL, 0, &sc, &err) || sim_create(sc, &s, &err)) {
        fprintf(stderr, "bench_implicit: %s\n", err.msg);
        exit(1);
    }
    *sc_out = sc;
    return s;
}

/* ---- (1) and (2): PCG at 128^3 ------------------------------------------------------------ */

static const char *pcg_fmt =
    "tissues:\n"
    "  tumour: {thermal_conductivity_W_per_mK: 2.6}   # 5x liver (0.52): the contrast asked for\n"
    "grid:\n"
    "  dims: [%d, %d, %d]\n"
    "  spacing_mm: [0.5, 0.5, 0.5]\n"
    "  background: liver\n"
    "  shapes:\n"
    "    - {type: sphere, center_mm: [0, 0, 0], radius_mm: 12, tissue: tumour}\n"
    "    - {type: cylinder, start_mm: [-40, 18, -40], end_mm: [40, 18, 40], radius_mm: 3,\n"
    "       tissue: blood}\n"
    "time: {duration_s: 10, dt_s: 5, scheme: implicit, solver_tolerance: 1e-8,\n"
    "       max_iterations: 5000, preconditioner: %s}\n"
    "sources:\n"
    "  - {type: volumetric, power_W: 40, shape: {type: sphere, center_mm: [0, 0, 0], radius_mm: 4}}\n";

static void pcg_bench(int n, FILE *csv)
{
    const char *pre[2] = {"spectral", "none"};
    double its[2] = {0, 0}, wall[2] = {0, 0};
    for (int p = 0; p < 2; p++) {
        char yaml[2048];
        snprintf(yaml, sizeof yaml, pcg_fmt, n, n, n, pre[p]);
        abl_scenario *sc;
        abl_sim *s = make_sim(yaml, &sc);
        abl_error err = {0};
        double t0 = omp_get_wtime();
        if (sim_step(s, 2, &err)) {
            fprintf(stderr, "bench_implicit: %s\n", err.msg);
            exit(1);
        }
        wall[p] = omp_get_wtime() - t0;
        for (size_t i = 0; i < s->n_cg; i++) its[p] += s->cg_iters[i];
        its[p] /= (double)s->n_cg;
        printf("  %d^3, dt 5 s, %-8s preconditioner: %5.1f iterations per solve, %.2f s for 2 "
               "steps, %.1f ns/cell/iteration\n",
               n, pre[p], its[p], wall[p], wall[p] / (2 * its[p] * (double)s->grid.n) * 1e9);
        fprintf(csv, "pcg,%d^3,%s,%.1f,%.3f\n", n, pre[p], its[p], wall[p]);
        sim_destroy(s);
        scenario_free(sc);
    }
    printf("  iterations ratio CG / PCG = %.1f; time ratio = %.1f\n", its[1] / its[0],
           wall[1] / wall[0]);
}

/* ---- (3): 20-minute protocol ------------------------------------------------------------- */

static const char *proto_fmt =
    "grid:\n"
    "  dims: [64, 64, 64]\n"
    "  spacing_mm: [0.5, 0.5, 0.5]\n"
    "  background: liver\n"
    "  shapes:\n"
    "    - {type: sphere, center_mm: [0, 0, 0], radius_mm: 7, tissue: tumour}\n"
    "    - {type: cylinder, start_mm: [-20, 10, -20], end_mm: [20, 10, 20], radius_mm: 2,\n"
    "       tissue: blood}\n"
    "time: {duration_s: %g, scheme: %s%s}\n"
    "sources:\n"
    "  - {name: electrode, type: fixed_temperature, off_s: %g,\n"
    "     shape: {type: cylinder, start_mm: [0, 0, -8], end_mm: [0, 0, 8], radius_mm: 0.8},\n"
    "     schedule: [{time_s: 0, temperature_C: 37}, {time_s: 30, temperature_C: 90}]}\n"
    "output: {monitor_interval_s: 0}\n";

typedef struct {
    double wall_s, err_C;
    long steps;
} proto_result;

static double *run_protocol(const char *scheme, double dt, double duration, proto_result *res)
{
    char extra[128] = "", yaml[2048];
    if (dt > 0) snprintf(extra, sizeof extra, ", dt_s: %g", dt);
    if (strcmp(scheme, "explicit")) strncat(extra, ", solver_tolerance: 1e-8", sizeof extra - 40);
    snprintf(yaml, sizeof yaml, proto_fmt, duration, scheme, extra, 0.75 * duration);
    abl_scenario *sc;
    abl_sim *s = make_sim(yaml, &sc);
    abl_error err = {0};
    long n = (long)llround(sc->duration_s / s->dt_s);
    double t0 = omp_get_wtime();
    if (sim_step(s, n, &err)) {
        fprintf(stderr, "bench_implicit: %s\n", err.msg);
        exit(1);
    }
    res->wall_s = omp_get_wtime() - t0;
    res->steps = n;
    double *tmax = malloc(s->grid.n * sizeof *tmax);
    memcpy(tmax, s->T_max, s->grid.n * sizeof *tmax);
    res->err_C = 0;
    sim_destroy(s);
    scenario_free(sc);
    return tmax;
}

static double maxdiff(const double *a, const double *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(a[i] - b[i]));
    return m;
}

static void protocol_bench(int quick, FILE *csv)
{
    const double duration = quick ? 300 : 1200;
    const size_t n = 64 * 64 * 64;
    proto_result ref_r, half_r;
    printf("\n(3) %.0f-minute protocol at 0.5 mm (64^3, electrode at 90 C for %.0f min)\n",
           duration / 60, 0.75 * duration / 60);
    double *ref = run_protocol("crank_nicolson", 1.0, duration, &ref_r);
    double *chk = run_protocol("crank_nicolson", 2.0, duration, &half_r);
    double self = maxdiff(ref, chk, n);
    printf("  reference Crank-Nicolson dt 1 s: %.1f s wall; vs dt 2 s: max |dT_max| %.3f C "
           "(reference error ~ 1/3 of that, 2nd order)\n",
           ref_r.wall_s, self);
    free(chk);
    if (!(self < 0.1)) {
        fprintf(stderr, "bench_implicit: the reference is not converged (%.3f C)\n", self);
        exit(1);
    }
    proto_result ex;
    double *t = run_protocol("explicit", 0, duration, &ex);
    ex.err_C = maxdiff(t, ref, n);
    free(t);
    printf("  explicit (auto dt, %ld steps): %.2f s wall, max |dT_max| %.3f C\n", ex.steps,
           ex.wall_s, ex.err_C);
    fprintf(csv, "protocol,explicit,auto,%.3f,%.4f\n", ex.wall_s, ex.err_C);
    const double dts[] = {5, 10, 20, 40, 60};
    double best_cn = INFINITY, best_dt = 0;
    for (int i = 0; i < 5; i++) {
        proto_result r;
        t = run_protocol("crank_nicolson", dts[i], duration, &r);
        r.err_C = maxdiff(t, ref, n);
        free(t);
        printf("  Crank-Nicolson dt %4.0f s (%4ld steps): %.2f s wall, max |dT_max| %.3f C%s\n",
               dts[i], r.steps, r.wall_s, r.err_C, r.err_C < 0.5 ? "" : "  (fails 0.5 C)");
        fprintf(csv, "protocol,crank_nicolson,%g,%.3f,%.4f\n", dts[i], r.wall_s, r.err_C);
        if (r.err_C < 0.5 && r.wall_s < best_cn) {
            best_cn = r.wall_s;
            best_dt = dts[i];
        }
    }
    if (ex.err_C < 0.5 && isfinite(best_cn))
        printf("  at equal accuracy (< 0.5 C): explicit %.2f s, Crank-Nicolson (dt %g s) %.2f s: "
               "%s is %.1fx faster here\n",
               ex.wall_s, best_dt, best_cn, ex.wall_s < best_cn ? "explicit" : "Crank-Nicolson",
               ex.wall_s < best_cn ? best_cn / ex.wall_s : ex.wall_s / best_cn);
    free(ref);
}

/* ---- (2) FFT solve vs CG iteration ------------------------------------------------------- */

static void fft_vs_cg(int n, FILE *csv)
{
    char yaml[2048];
    snprintf(yaml, sizeof yaml, pcg_fmt, n, n, n, "spectral");
    abl_scenario *sc;
    abl_sim *s = make_sim(yaml, &sc);
    abl_error err = {0};
    const abl_grid *g = &s->grid;
    bool fixed[6] = {true, true, true, true, true, true};
    abl_spectral *sp = NULL;
    if (spectral_create(g, fixed, &sp, &err)) {
        fprintf(stderr, "bench_implicit: %s\n", err.msg);
        exit(1);
    }
    double *x = grid_alloc_field(g, 1.0), *y = grid_alloc_field(g, 0.0);
    double *work = malloc((size_t)g->nz * sizeof *work);
    spectral_solve(sp, 1.0, 1e-6, x, y, &err); /* warm-up */
    const int R = 5;
    double t0 = omp_get_wtime();
    for (int r = 0; r < R; r++) spectral_solve(sp, 1.0, 1e-6, x, y, &err);
    double t_fft = (omp_get_wtime() - t0) / R;
    t0 = omp_get_wtime();
    for (int r = 0; r < R; r++) {
        /* one unpreconditioned CG iteration: matvec with fused dot, a dot, two axpys */
        double d = implicit_matvec(&s->st, NULL, NULL, 0.2, 1.0, x, y, work);
        double e = 0;
#pragma omp parallel for reduction(+ : e)
        for (size_t c = 0; c < g->n; c++) e += y[c] * y[c];
#pragma omp parallel for
        for (size_t c = 0; c < g->n; c++) {
            x[c] += 1e-12 * d * y[c];
            y[c] -= 1e-12 * e * x[c];
        }
    }
    double t_cg = (omp_get_wtime() - t0) / R;
    printf("\n(2) %d^3: spectral preconditioner application %.1f ms (%.1f M voxels/s); one CG "
           "iteration without it %.1f ms: a preconditioned iteration costs %.1fx a plain one\n",
           n, t_fft * 1e3, g->n / t_fft / 1e6, t_cg * 1e3, (t_fft + t_cg) / t_cg);
    fprintf(csv, "fft_vs_cg,%d^3,fft_ms,%.3f\nfft_vs_cg,%d^3,cg_iter_ms,%.3f\n", n, t_fft * 1e3, n,
            t_cg * 1e3);
    grid_free_field(x);
    grid_free_field(y);
    free(work);
    spectral_destroy(sp);
    sim_destroy(s);
    scenario_free(sc);
}

int main(int argc, char **argv)
{
    int quick = argc > 1 && !strcmp(argv[1], "--quick");
    root = getenv("ABLASIM_ROOT");
    if (!root) root = ".";
    struct utsname un;
    uname(&un);
    printf("bench_implicit: %d threads, host %s%s\n", omp_get_max_threads(), un.nodename,
           quick ? " (quick)" : "");
    char path[700], stamp[32];
    time_t now = time(NULL);
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", gmtime(&now));
    snprintf(path, sizeof path, "%s/bench/results/implicit_%s_%s.csv", root, un.nodename, stamp);
    FILE *csv = fopen(path, "w");
    if (!csv) {
        fprintf(stderr, "bench_implicit: cannot write %s\n", path);
        return 1;
    }
    fprintf(csv, "# threads=%d host=%s\nkind,case,variant,value1,value2\n", omp_get_max_threads(),
            un.nodename);
    int n = quick ? 64 : 128;
    printf("\n(1) heterogeneous liver, 5x conductivity contrast, backward Euler dt = 5 s\n");
    pcg_bench(n, csv);
    fft_vs_cg(n, csv);
    protocol_bench(quick, csv);
    fclose(csv);
    printf("\nresults: %s\n", path);
    return 0;
}
