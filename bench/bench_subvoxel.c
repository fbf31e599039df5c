/* NAME     bench_subvoxel - cost of partial-volume rasterisation (issue 15) next to the centre rule
 * PURPOSE  Set-up time of shape_fractions (volume fractions, octree to the default depth) vs
 *          shape_voxels (voxel centre inside) for a sphere (r 10 mm) and an oblique cylinder
 *          (needle-like: r 1.25 mm, 30 mm long, 30 degrees off z) at 1 mm and 0.5 mm, as a
 *          ratio; and the number of voxels each lists, which is what a source's per-step work
 *          (the heat loop, the held voxels) scales with.
 * USAGE    make bench (or build/rel/bench/bench_subvoxel); writes
 *          bench/results/subvoxel_<host>.csv
 * Self-check: sum f V_voxel must equal the analytic volume within shape.h's guaranteed bound
 *          (28 (s/R)^2 relative for the sphere; the cylinder's lateral + rim terms) and within
 *          1e-5 (measured ~1e-8; test_subvoxel.c), else exit 1.
 * Timing: best of 5 repetitions after one warm-up call; shape_voxels is serial, shape_fractions
 *          runs its z-planes in parallel: the ratio is given at 1 thread and at all threads. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "ablasim/shape.h"

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
    return bad;
}
