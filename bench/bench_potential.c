/* NAME     bench_potential - the RFA potential solve: multigrid against spectral preconditioner
 * PURPOSE  On the grid of rfa_liver_cooled (60 x 60 x 80, 1 mm; a 30 mm line electrode held at
 *          1 V, six grounded faces): (1) one preconditioner application on its own (minimum of
 *          3 x 40); (2) a cold solve from zero and 30 warm re-solves after small conductivity
 *          changes (as the RFA source makes them), to the source's default relative residual
 *          1e-4: CG iterations and milliseconds per solve, conductivity set-up included;
 *          (3) the same with a 1e4 conductivity drop in a 3-voxel radius around the electrode
 *          (desiccated tissue). Reports the multigrid / spectral ratio of each time, measured in
 *          the same run (docs/RFA.md "Solver", README "Where a whole run's time goes").
 * USAGE    make bench (or build/rel/bench/bench_potential)
 * Self-check: every solve converges and the two preconditioners' potentials agree to 1e-3 V
 *          (both stop at 1e-4 of the lifted right side, about 1e-4 V here), else exit 1.
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "ablasim/grid.h"
#include "ablasim/multigrid.h"
#include "ablasim/potential.h"
#include "ablasim/spectral.h"

static abl_grid g;
static double *sig, *q;
static uint8_t *held;

/* sigma of re-solve r: 0.3 S/m raised by up to 2 r % near the electrode (heating), and with
 * contrast 1e-4 of it within 3 voxels of the axis along the electrode */
static void fill_sigma(int r, int contrast)
{
    for (int k = 0; k < g.nz; k++)
        for (int j = 0; j < g.ny; j++)
            for (int i = 0; i < g.nx; i++) {
                const double d2 = (i - 30) * (i - 30) + (j - 30) * (j - 30);
                const size_t c = ABL_IDX(&g, i, j, k);
                sig[c] = 0.3 * (1 + 0.02 * r * exp(-d2 / 16.0));
                if (contrast && d2 <= 9.0 && k >= 22 && k < 58) sig[c] *= 1e-4;
            }
}

typedef struct {
    int cold_its;
    double cold_ms, warm_ms, warm_its;
} solve_cost;

static void fail(const char *what, const abl_error *err)
{
    fprintf(stderr, "bench_potential: %s: %s\n", what, err->msg);
    exit(1);
}

static solve_cost run(int pre, int contrast, double *V)
{
    abl_error err = {0};
    const bool gr[6] = {1, 1, 1, 1, 1, 1};
    abl_potential_opts po = {1e-4, 2000, pre};
    abl_potential *p;
    if (potential_create(&g, gr, &po, &p, &err)) fail("create", &err);
    for (size_t c = 0; c < g.n; c++) V[c] = held[c] ? 1.0 : 0.0;
    solve_cost sc = {0};
    int it;
    double res;
    fill_sigma(0, contrast);
    double t0 = omp_get_wtime();
    if (potential_set_conductivity(p, sig, held, true, &err) ||
        potential_solve(p, V, NULL, &it, &res, &err))
        fail("cold solve", &err);
    sc.cold_ms = (omp_get_wtime() - t0) * 1e3;
    sc.cold_its = it;
    const int N = 30;
    long itsum = 0;
    t0 = omp_get_wtime();
    for (int r = 1; r <= N; r++) {
        fill_sigma(r, contrast);
        const double t1 = omp_get_wtime();
        if (potential_set_conductivity(p, sig, held, true, &err) ||
            potential_solve(p, V, NULL, &it, &res, &err))
            fail("warm solve", &err);
        sc.warm_ms += (omp_get_wtime() - t1) * 1e3;
        itsum += it;
        potential_dissipation(p, V, q);
    }
    (void)t0;
    sc.warm_ms /= N;
    sc.warm_its = (double)itsum / N;
    potential_destroy(p);
    return sc;
}

/* one application of each preconditioner, uniform conductivity (minimum of 3 x 40) */
static void application_cost(double *mg_ms, double *sp_ms, int *levels)
{
    abl_error err = {0};
    const bool gr[6] = {1, 1, 1, 1, 1, 1};
    double *gx = grid_alloc_field(&g, 0), *gy = grid_alloc_field(&g, 0),
           *gz = grid_alloc_field(&g, 0), *gb = grid_alloc_field(&g, 0),
           *r = grid_alloc_field(&g, 0), *z = grid_alloc_field(&g, 0),
           *s = grid_alloc_field(&g, 1.0);
    if (!gx || !gy || !gz || !gb || !r || !z || !s) {
        fprintf(stderr, "bench_potential: out of memory\n");
        exit(1);
    }
    const double G = 0.3 / 1e-6; /* sigma / h^2 */
    for (int k = 0; k < g.nz; k++)
        for (int j = 0; j < g.ny; j++)
            for (int i = 0; i < g.nx; i++) {
                const size_t c = ABL_IDX(&g, i, j, k);
                gx[c] = i < g.nx - 1 ? G : 0;
                gy[c] = j < g.ny - 1 ? G : 0;
                gz[c] = k < g.nz - 1 ? G : 0;
                gb[c] = 2 * G * ((i == 0) + (i == g.nx - 1) + (j == 0) + (j == g.ny - 1) +
                                 (k == 0) + (k == g.nz - 1));
                r[c] = held[c] ? 0 : sin(0.37 * (double)c);
            }
    abl_mg *mg;
    abl_spectral *sp;
    if (mg_create(&g, &mg, &err) || mg_setup(mg, gx, gy, gz, gb, held, &err) ||
        spectral_create(&g, gr, &sp, &err))
        fail("preconditioner set-up", &err);
    const int N = 40;
    *mg_ms = *sp_ms = 1e9;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = omp_get_wtime();
        for (int n = 0; n < N; n++) mg_apply(mg, r, z);
        *mg_ms = fmin(*mg_ms, (omp_get_wtime() - t0) / N * 1e3);
        t0 = omp_get_wtime();
        for (int n = 0; n < N; n++) spectral_solve_scaled(sp, 0.0, 1.0, s, r, z, &err);
        *sp_ms = fmin(*sp_ms, (omp_get_wtime() - t0) / N * 1e3);
    }
    *levels = mg_levels(mg);
    mg_destroy(mg);
    spectral_destroy(sp);
    grid_free_field(gx);
    grid_free_field(gy);
    grid_free_field(gz);
    grid_free_field(gb);
    grid_free_field(r);
    grid_free_field(z);
    grid_free_field(s);
}

int main(void)
{
    abl_error err = {0};
    const int dims[3] = {60, 60, 80};
    const double h[3] = {1e-3, 1e-3, 1e-3}, o[3] = {0, 0, 0};
    if (grid_init(&g, dims, h, o, &err)) fail("grid", &err);
    sig = grid_alloc_field(&g, 0.3);
    q = grid_alloc_field(&g, 0);
    held = grid_alloc_labels(&g, 0);
    double *Vs = grid_alloc_field(&g, 0), *Vm = grid_alloc_field(&g, 0);
    if (!sig || !q || !held || !Vs || !Vm) {
        fprintf(stderr, "bench_potential: out of memory\n");
        return 1;
    }
    for (int k = 25; k < 55; k++) held[ABL_IDX(&g, 30, 30, k)] = 1;

    double mg_ms, sp_ms;
    int levels;
    application_cost(&mg_ms, &sp_ms, &levels);
    printf("bench_potential: 60 x 60 x 80, %d threads\n", omp_get_max_threads());
    printf("  one application: multigrid %.3f ms (%d levels), spectral %.3f ms: ratio %.2f\n",
           mg_ms, levels, sp_ms, mg_ms / sp_ms);
    const char *name[2] = {"smooth sigma", "1e4 contrast"};
    int bad = 0;
    for (int contrast = 0; contrast < 2; contrast++) {
        const solve_cost s = run(ABL_PRECOND_SPECTRAL, contrast, Vs);
        const solve_cost m = run(ABL_PRECOND_MULTIGRID, contrast, Vm);
        double dmax = 0.0;
        for (size_t c = 0; c < g.n; c++) dmax = fmax(dmax, fabs(Vs[c] - Vm[c]));
        printf("  %s: cold solve %d / %d its, %.1f / %.1f ms; warm re-solve %.1f / %.1f its, "
               "%.2f / %.2f ms (multigrid / spectral): ratio %.2f; max |dV| %.1e V\n",
               name[contrast], m.cold_its, s.cold_its, m.cold_ms, s.cold_ms, m.warm_its,
               s.warm_its, m.warm_ms, s.warm_ms, m.warm_ms / s.warm_ms, dmax);
        if (!(dmax < 1e-3)) bad = 1;
    }
    if (bad) fprintf(stderr, "bench_potential: the two potentials differ by more than 1e-3 V\n");
    grid_free_field(Vs);
    grid_free_field(Vm);
    grid_free_field(sig);
    grid_free_field(q);
    grid_free_field(held);
    return bad;
}
