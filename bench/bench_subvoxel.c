/* NAME     bench_subvoxel - cost of partial-volume rasterisation (issue 15) next to the centre rule
 * PURPOSE  Set-up time of shape_fractions (volume fractions, octree to the default depth) vs
 *          shape_voxels (voxel centre inside) for a sphere (r 10 mm) and an oblique cylinder
 *          (needle-like: r 1.25 mm, 30 mm long, 30 degrees off z) at 1 mm and 0.5 mm, as a
 *          ratio; and the number of voxels each lists, which is what a source's per-step work
 *          (the heat loop, the held voxels) scales with. Per step: the same shapes as a 10 W
 *          volumetric source in liver (explicit scheme, 37 C walls) on the same grid; the time of
 *          one sim_step, and the source's own per-step work (its update, q_i = P w_i, plus the
 *          step's heat loop T_new += dt q / (rho c) with the energy sum, sim.c explicit_step)
 *          over the fraction list (the source as created) and over the centre rule's list (the
 *          same loop: sources always use fractions now), each as a fraction of the step.
 * USAGE    make bench (or build/rel/bench/bench_subvoxel); writes
 *          bench/results/subvoxel_<host>.csv and subvoxel_step_<host>.csv
 * Self-check: sum f V_voxel must equal the analytic volume within shape.h's guaranteed bound
 *          (28 (s/R)^2 relative for the sphere; the cylinder's lateral + rim terms) and within
 *          1e-5 (measured ~1e-8; test_subvoxel.c), else exit 1.
 * Timing: best of 5 repetitions after one warm-up call; shape_voxels is serial, shape_fractions
 *          runs its z-planes in parallel: the ratio is given at 1 thread and at all threads.
 *          Step: best of 21 single sim_step calls (OpenMP threads as set; on a loaded machine
 *          run with OMP_NUM_THREADS=1, the threads of a parallel sweep otherwise wait for each
 *          other); source work: best of 11 of the mean over 200 repetitions (serial, as in
 *          sim.c), the lists timed in turn. Both "best of": the ratio compares like with like. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "ablasim/scenario.h"
#include "ablasim/shape.h"
#include "ablasim/sim.h"
#include "ablasim/source.h"

static const double PI = 3.14159265358979323846;

typedef struct {
    double t_frac_s, t_frac1_s, t_centre_s;
    size_t n_frac, n_centre;
    double rel_err, rel_bound;
    int depth;
} result;

static int measure(const abl_shape *s, double h_mm, double half_mm, result *r)
{
    abl_grid g;
    abl_error err = {0};
    const int n = (int)lround(2 * half_mm / h_mm);
    int dims[3] = {n, n, n};
    double h[3] = {h_mm * 1e-3, h_mm * 1e-3, h_mm * 1e-3}, o[3];
    for (int d = 0; d < 3; d++) o[d] = -(n - 1) * 0.5 * h[d];
    if (grid_init(&g, dims, h, o, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    r->t_frac_s = r->t_frac1_s = r->t_centre_s = INFINITY;
    const int nthr = omp_get_max_threads();
    for (int rep = 0; rep < 6; rep++) {
        /* one thread, timing only */
        omp_set_num_threads(1);
        size_t *i1 = NULL, c1 = 0;
        double *f1 = NULL;
        double s0 = omp_get_wtime();
        if (shape_fractions(s, &g, &i1, &f1, &c1, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
        if (rep) r->t_frac1_s = fmin(r->t_frac1_s, omp_get_wtime() - s0);
        free(i1);
        free(f1);
        omp_set_num_threads(nthr);
        size_t *idx = NULL, cnt = 0;
        double *f = NULL;
        double t0 = omp_get_wtime();
        if (shape_fractions(s, &g, &idx, &f, &cnt, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
        double t1 = omp_get_wtime();
        if (rep) r->t_frac_s = fmin(r->t_frac_s, t1 - t0);
        double sum = 0;
        for (size_t i = 0; i < cnt; i++) sum += f[i];
        r->n_frac = cnt;
        r->rel_err = sum * h[0] * h[1] * h[2] / shape_volume_m3(s) - 1;
        free(idx);
        free(f);
        t0 = omp_get_wtime();
        if (shape_voxels(s, &g, &idx, &cnt, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
        t1 = omp_get_wtime();
        if (rep) r->t_centre_s = fmin(r->t_centre_s, t1 - t0);
        r->n_centre = cnt;
        free(idx);
    }
    /* the guaranteed bound of shape.h at the depth used (cubic leaves of side sl) */
    r->depth = shape_fraction_depth(s, &g);
    const double sl = ldexp(h[0], -r->depth), rho = sqrt(3.0) * sl / 2, R = s->radius_m;
    const double V = shape_volume_m3(s);
    if (s->type == SHAPE_SPHERE)
        r->rel_bound = 9.2 * 4 * PI * R * sl * sl / V;
    else
        r->rel_bound = (9.2 * 2 * PI * (V / (PI * R * R)) * sl * sl +
                        2 * 2 * PI * (R + 2 * rho) * 16 * rho * rho) / V;
    return 0;
}

/* ---- per-step cost of a volumetric source: fractions vs the centre rule ------------------ */

typedef struct {
    double step_ms, frac_us, centre_us, real_us;
    size_t n_frac, n_centre;
} step_result;

static int cmp_dbl(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The per-step work of a volumetric source on its list (basic.c basic_update: q_i = P w_i; sim.c
 * explicit_step: T_new[v] += dt q_i / (rho c)[v], the source energy summed). */
static double source_work(const size_t *idx, const double *w, double *val, size_t n, double P,
                          double dt, double V, const double *inv_rhoc, const uint8_t *mat,
                          double *Tn)
{
    double e = 0;
    for (size_t i = 0; i < n; i++) val[i] = P * w[i];
    for (size_t q = 0; q < n; q++) {
        const size_t v = idx[q];
        Tn[v] += dt * inv_rhoc[mat[v]] * val[q];
        e += val[q] * V * dt;
    }
    return e;
}

/* Best of 11 of the mean time [s] of 200 calls of: the work over the fraction list (t[0]), over
 * the centre rule's list (t[1]) and the source's own update followed by the same heat loop (t[2]),
 * the three timed in turn within each repetition so that a busy neighbour slows all alike. */
static int time_work(abl_sim *sim, const size_t *const idx[2], const double *const w[2],
                     const size_t n[2], double *val, double *Tn, double t[3], double *sink)
{
    const int reps = 200;
    const double V = grid_voxel_volume_m3(&sim->grid), dt = sim->dt_s;
    abl_field_view view = {.grid = &sim->grid, .material = sim->material, .T_C = sim->T,
                           .t_s = 0.0, .dt_s = dt, .step_t0_s = 0.0, .step_h_s = dt};
    abl_error err = {0};
    abl_source *src = sim->sources[0];
    t[0] = t[1] = t[2] = INFINITY;
    for (int rep = 0; rep < 12; rep++) {
        for (int l = 0; l < 2; l++) {
            double t0 = omp_get_wtime();
            for (int k = 0; k < reps; k++)
                *sink += source_work(idx[l], w[l], val, n[l], 10.0, dt, V, sim->inv_rhoc,
                                     sim->material, Tn);
            if (rep) t[l] = fmin(t[l], (omp_get_wtime() - t0) / reps);
        }
        double t0 = omp_get_wtime();
        for (int k = 0; k < reps; k++) {
            abl_source_contrib c;
            if (src->ops->update(src, &view, &c, &err)) return 1;
            for (size_t q = 0; q < c.n_heat; q++) {
                const size_t v = c.heat_idx[q];
                Tn[v] += dt * sim->inv_rhoc[sim->material[v]] * c.heat_q_W_m3[q];
                *sink += c.heat_q_W_m3[q] * V * dt;
            }
        }
        if (rep) t[2] = fmin(t[2], (omp_get_wtime() - t0) / reps);
    }
    return 0;
}

static int measure_step(const abl_shape *s, const char *shape_yaml, double h_mm, double half_mm,
                        step_result *r)
{
    const char *root = getenv("ABLASIM_ROOT");
    if (!root) root = ".";
    const int n = (int)lround(2 * half_mm / h_mm);
    const double o = -(n - 1) * 0.5 * h_mm;
    char yaml[2048];
    snprintf(yaml, sizeof yaml,
             "name: bench_subvoxel_step\n"
             "tissues_file: %s/configs/tissues.yaml\n"
             "grid: {dims: [%d, %d, %d], spacing_mm: [%.17g, %.17g, %.17g],\n"
             "       origin_mm: [%.17g, %.17g, %.17g], background: liver}\n"
             "boundary: {default: {type: fixed_temperature, temperature_C: 37}}\n"
             "time: {duration_s: 1000}\n"
             "sources:\n"
             "  - {type: volumetric, power_W: 10, shape: %s}\n",
             root, n, n, n, h_mm, h_mm, h_mm, o, o, o, shape_yaml);
    abl_scenario *sc = NULL;
    abl_sim *sim = NULL;
    abl_error err = {0};
    if (scenario_load_string(yaml, "bench_subvoxel", ".", NULL, 0, &sc, &err) ||
        sim_create(sc, &sim, &err))
        return fprintf(stderr, "bench_subvoxel: %s\n", err.msg), 1;
    /* step time: best of 21 single steps after one warm-up step */
    double ts[21];
    if (sim_step(sim, 1, &err)) return fprintf(stderr, "bench_subvoxel: %s\n", err.msg), 1;
    for (int i = 0; i < 21; i++) {
        double t0 = omp_get_wtime();
        if (sim_step(sim, 1, &err)) return fprintf(stderr, "bench_subvoxel: %s\n", err.msg), 1;
        ts[i] = omp_get_wtime() - t0;
    }
    qsort(ts, 21, sizeof ts[0], cmp_dbl);
    r->step_ms = ts[0] * 1e3;
    /* the two lists on the sim's grid, weights q_i = P w_i summing to P / V_voxel */
    const abl_grid *g = &sim->grid;
    const double V = grid_voxel_volume_m3(g);
    size_t *fi = NULL, *ci = NULL, nf = 0, nc = 0;
    double *ff = NULL;
    if (shape_fractions(s, g, &fi, &ff, &nf, &err) || shape_voxels(s, g, &ci, &nc, &err))
        return fprintf(stderr, "bench_subvoxel: %s\n", err.msg), 1;
    double sf = 0;
    for (size_t i = 0; i < nf; i++) sf += ff[i];
    double *wf = malloc(nf * sizeof *wf), *wc = malloc(nc * sizeof *wc),
           *val = malloc((nf > nc ? nf : nc) * sizeof *val), *Tn = grid_alloc_field(g, 37.0);
    if (!wf || !wc || !val || !Tn) return fprintf(stderr, "bench_subvoxel: out of memory\n"), 1;
    for (size_t i = 0; i < nf; i++) wf[i] = ff[i] / (V * sf);
    for (size_t i = 0; i < nc; i++) wc[i] = 1.0 / (V * (double)nc);
    double sink = 0, t[3];
    const size_t *const lists[2] = {fi, ci};
    const double *const ws[2] = {wf, wc};
    const size_t ns[2] = {nf, nc};
    int bad = time_work(sim, lists, ws, ns, val, Tn, t, &sink);
    if (bad) fprintf(stderr, "bench_subvoxel: source update failed\n");
    r->frac_us = t[0] * 1e6;
    r->centre_us = t[1] * 1e6;
    r->real_us = t[2] * 1e6;
    r->n_frac = nf;
    r->n_centre = nc;
    if (!isfinite(sink)) bad = 1;
    free(fi);
    free(ff);
    free(ci);
    free(wf);
    free(wc);
    free(val);
    grid_free_field(Tn);
    sim_destroy(sim);
    scenario_free(sc);
    return bad;
}

int main(void)
{
    const char *root = getenv("ABLASIM_ROOT");
    if (!root) root = ".";
    abl_shape sp = {.type = SHAPE_SPHERE, .centre_m = {0.3e-3, -0.2e-3, 0.1e-3},
                    .radii_m = {10e-3, 10e-3, 10e-3}, .radius_m = 10e-3};
    abl_shape cy = {.type = SHAPE_CYLINDER, .radius_m = 1.25e-3};
    const double L = 30e-3, th = PI / 6, c[3] = {0.2e-3, -0.35e-3, 0.1e-3};
    for (int d = 0; d < 3; d++) {
        double u = d == 0 ? sin(th) : (d == 2 ? cos(th) : 0);
        cy.a_m[d] = c[d] - 0.5 * L * u;
        cy.b_m[d] = c[d] + 0.5 * L * u;
    }
    const abl_shape *shapes[2] = {&sp, &cy};
    const char *names[2] = {"sphere r10", "cylinder r1.25 L30 30deg"};
    const double hs[2] = {1.0, 0.5};
    struct utsname un;
    uname(&un);
    char csvpath[700];
    snprintf(csvpath, sizeof csvpath, "%s/bench/results/subvoxel_%s.csv", root, un.nodename);
    FILE *csv = fopen(csvpath, "w");
    if (!csv) fprintf(stderr, "bench_subvoxel: cannot write %s (results printed only)\n", csvpath);
    if (csv)
        fprintf(csv, "shape,h_mm,depth,centre_ms,fractions_1thread_ms,ratio_1thread,"
                     "fractions_ms,ratio,centre_voxels,fraction_voxels,count_ratio,"
                     "volume_rel_err,guaranteed_bound\n");
    printf("bench_subvoxel: set-up of one source, grid 48 mm cube, best of 5; OMP threads %d, "
           "OMP_PROC_BIND=%s\n",
           omp_get_max_threads(), getenv("OMP_PROC_BIND") ? getenv("OMP_PROC_BIND") : "(unset)");
    printf("%-26s %5s %5s %10s %10s %7s %10s %7s %9s %9s %7s %10s %9s\n", "shape", "h_mm",
           "depth", "centre_ms", "frac1_ms", "ratio1", "fracN_ms", "ratioN", "n_centre", "n_frac",
           "n_ratio", "vol_err", "bound");
    int bad = 0;
    for (int si = 0; si < 2; si++)
        for (int hi = 0; hi < 2; hi++) {
            result r;
            if (measure(shapes[si], hs[hi], 24.0, &r)) return 1;
            printf("%-26s %5.1f %5d %10.3f %10.3f %7.0f %10.3f %7.0f %9zu %9zu %7.2f %+10.1e "
                   "%9.1e\n",
                   names[si], hs[hi], r.depth, r.t_centre_s * 1e3, r.t_frac1_s * 1e3,
                   r.t_frac1_s / r.t_centre_s, r.t_frac_s * 1e3, r.t_frac_s / r.t_centre_s,
                   r.n_centre, r.n_frac, (double)r.n_frac / (double)r.n_centre, r.rel_err,
                   r.rel_bound);
            if (csv)
                fprintf(csv, "%s,%g,%d,%.4f,%.4f,%.2f,%.4f,%.2f,%zu,%zu,%.3f,%.3e,%.3e\n",
                        names[si], hs[hi], r.depth, r.t_centre_s * 1e3, r.t_frac1_s * 1e3,
                        r.t_frac1_s / r.t_centre_s, r.t_frac_s * 1e3, r.t_frac_s / r.t_centre_s,
                        r.n_centre, r.n_frac, (double)r.n_frac / (double)r.n_centre, r.rel_err,
                        r.rel_bound);
            if (!(fabs(r.rel_err) <= r.rel_bound) || !(fabs(r.rel_err) <= 1e-5)) {
                fprintf(stderr, "bench_subvoxel: %s at %g mm: volume error %.3e outside the "
                                "bound %.3e or 1e-5\n",
                        names[si], hs[hi], r.rel_err, r.rel_bound);
                bad = 1;
            }
        }
    if (csv) fclose(csv);
    printf("ratio1/ratioN = set-up time of shape_fractions (1 / all threads) over shape_voxels "
           "(once per source, at plan time); n_ratio = voxels listed, which the per-step cost of "
           "a source's heat or held voxels scales with\n");

    /* per step */
    char shape_yaml[2][256];
    snprintf(shape_yaml[0], sizeof shape_yaml[0],
             "{type: sphere, center_mm: [%.17g, %.17g, %.17g], radius_mm: %.17g}",
             sp.centre_m[0] * 1e3, sp.centre_m[1] * 1e3, sp.centre_m[2] * 1e3, sp.radius_m * 1e3);
    snprintf(shape_yaml[1], sizeof shape_yaml[1],
             "{type: cylinder, start_mm: [%.17g, %.17g, %.17g], end_mm: [%.17g, %.17g, %.17g], "
             "radius_mm: %.17g}",
             cy.a_m[0] * 1e3, cy.a_m[1] * 1e3, cy.a_m[2] * 1e3, cy.b_m[0] * 1e3, cy.b_m[1] * 1e3,
             cy.b_m[2] * 1e3, cy.radius_m * 1e3);
    snprintf(csvpath, sizeof csvpath, "%s/bench/results/subvoxel_step_%s.csv", root, un.nodename);
    csv = fopen(csvpath, "w");
    if (!csv) fprintf(stderr, "bench_subvoxel: cannot write %s (results printed only)\n", csvpath);
    if (csv)
        fprintf(csv, "shape,h_mm,voxels,step_ms,source_fractions_us,source_centre_us,"
                     "source_fractions_real_us,fractions_per_step,centre_per_step,"
                     "fraction_voxels,centre_voxels\n");
    printf("\nper step: 10 W volumetric source in liver, explicit, same grids; step = best of "
           "21 sim_step(1), %d threads; source = its update + heat loop, best of 11 x 200, "
           "serial\n",
           omp_get_max_threads());
    printf("%-26s %5s %9s %9s %10s %10s %10s %9s %9s %9s %9s\n", "shape", "h_mm", "voxels",
           "step_ms", "frac_us", "centre_us", "real_us", "frac/stp", "cntr/stp", "n_frac",
           "n_centre");
    for (int si = 0; si < 2; si++)
        for (int hi = 0; hi < 2; hi++) {
            step_result r;
            if (measure_step(shapes[si], shape_yaml[si], hs[hi], 24.0, &r)) return 1;
            const long nv = lround(48.0 / hs[hi]);
            printf("%-26s %5.1f %9ld %9.3f %10.2f %10.2f %10.2f %9.1e %9.1e %9zu %9zu\n",
                   names[si], hs[hi], nv * nv * nv, r.step_ms, r.frac_us, r.centre_us, r.real_us,
                   r.frac_us * 1e-3 / r.step_ms, r.centre_us * 1e-3 / r.step_ms, r.n_frac,
                   r.n_centre);
            if (csv)
                fprintf(csv, "%s,%g,%ld,%.4f,%.3f,%.3f,%.3f,%.3e,%.3e,%zu,%zu\n", names[si],
                        hs[hi], nv * nv * nv, r.step_ms, r.frac_us, r.centre_us, r.real_us,
                        r.frac_us * 1e-3 / r.step_ms, r.centre_us * 1e-3 / r.step_ms, r.n_frac,
                        r.n_centre);
        }
    if (csv) fclose(csv);
    printf("frac/stp, cntr/stp = a source's per-step work over its fraction list (as created) and "
           "over the centre rule's list, as a fraction of the step (real_us: the source's own "
           "update + heat loop, the check on frac_us)\n");
    return bad;
}
