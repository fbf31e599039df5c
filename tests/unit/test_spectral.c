/* test_spectral.c - FFTW spectral module and the implicit schemes (issue 3):
 *  - transforms invert exactly for all four boundary pairs;
 *  - spectral_solve inverts the discrete operator assembled by the stencil code;
 *  - spectral evolution matches the continuous Fourier-series solution at order 2 in space;
 *  - explicit, backward Euler and Crank-Nicolson converge to the spectral (exact in time)
 *    solution of the same discrete problem with observed temporal orders 1, 1, 2;
 *  - the spectral preconditioner cuts CG iterations by >= 5x at 5x conductivity contrast. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ablasim/spectral.h"
#include "testutil.h"

#define TISSUE_T(name, k, w)                                                                     \
    "  " name ": {density_kg_per_m3: 1079, specific_heat_J_per_kgK: 3540,\n"                   \
    "        thermal_conductivity_W_per_mK: " #k ", perfusion_per_s: " #w ",\n"                   \
    "        metabolic_heat_W_per_m3: 0}\n"

static void test_roundtrip(void)
{
    abl_grid g;
    abl_error err = {0};
    int dims[3] = {7, 6, 5};
    double h[3] = {1e-3, 0.8e-3, 1.3e-3}, o[3] = {0, 0, 0};
    CU_ASSERT_FATAL(grid_init(&g, dims, h, o, &err) == ABL_OK);
    double *x = grid_alloc_field(&g, 0), *y = grid_alloc_field(&g, 0);
    for (int combo = 0; combo < 4; combo++) {
        bool fixed[6] = {combo & 1, (combo >> 1) & 1, !(combo & 1), true, false, false};
        abl_spectral *sp = NULL;
        CU_ASSERT_FATAL(spectral_create(&g, fixed, &sp, &err) == ABL_OK);
        for (size_t c = 0; c < g.n; c++) x[c] = y[c] = sin(0.7 * c) + 0.01 * c;
        spectral_forward(sp, x);
        spectral_inverse(sp, x);
        /* round trip of O(1) data: a few ulps per transform stage */
        CU_ASSERT(tu_maxdiff(x, y, g.n) < 1e-13);
        spectral_destroy(sp);
    }
    grid_free_field(x);
    grid_free_field(y);
}

/* spectral_solve((W + C/dt) I - k L_h) applied to -A x + (C/dt) x returns x, with A assembled by
 * the stencil (pennes_rhs with zero wall temperatures, T_a = 0, Q_met = 0) for a homogeneous
 * tissue: the two discretisations (stencil; x-y transforms with a tridiagonal z solve) agree.
 * Every pair of z faces (the end rows of the tridiagonal solve), a one-plane grid (nz = 1: the
 * solve is a division) and the potential's case a = 0 (no perfusion, no capacity term). */
static double solve_vs_stencil(const char *zmin, const char *zmax, int nz, bool steady)
{
    char yaml[2048];
    snprintf(yaml, sizeof yaml,
             "tissues:\n" TISSUE_T("t", 0.52, %s)
             "physics: {arterial_temperature_C: 0, initial_temperature_C: 0}\n"
             "grid: {dims: [9, 8, %d], spacing_mm: [1, 0.7, 1.4], background: t}\n"
             "boundary:\n"
             "  default: {type: fixed_temperature, temperature_C: 0}\n"
             "  x_max: {type: insulated}\n"
             "  z_min: {type: %s}\n"
             "  z_max: {type: %s}\n"
             "time: {duration_s: 1}\n",
             steady ? "0" : "0.0155", nz, zmin, zmax);
    abl_scenario *sc = tu_scenario(yaml, NULL, 0);
    if (!sc) return NAN;
    abl_error err = {0};
    abl_sim *s = tu_sim(sc);
    const abl_grid *g = &s->grid;
    bool fixed[6];
    for (int f = 0; f < 6; f++) fixed[f] = sc->bc[f].type == BC_FIXED_TEMPERATURE;
    abl_spectral *sp = NULL;
    double d = NAN;
    double *x = malloc(g->n * sizeof *x), *r = malloc(g->n * sizeof *r),
           *y = malloc(g->n * sizeof *y);
    if (spectral_create(g, fixed, &sp, &err) == ABL_OK && x && r && y) {
        for (size_t c = 0; c < g->n; c++) x[c] = cos(0.3 * c) * (1 + 0.1 * (c % 5));
        pennes_rhs(&s->st, x, r); /* A x */
        const double Cdt = steady ? 0.0 : 1079.0 * 3540.0 / 5.0, W = s->perf_W[0];
        for (size_t c = 0; c < g->n; c++) r[c] = Cdt * x[c] - r[c];
        if (spectral_solve(sp, Cdt + W, 0.52, r, y, &err) == ABL_OK) d = tu_maxdiff(x, y, g->n);
    }
    free(x);
    free(r);
    free(y);
    spectral_destroy(sp);
    sim_destroy(s);
    scenario_free(sc);
    return d;
}

static void test_solve_inverts_stencil(void)
{
    const char *kind[2] = {"insulated", "fixed_temperature, temperature_C: 0"};
    for (int steady = 0; steady < 2; steady++)
        for (int nz = 1; nz <= 7; nz += 6)
            for (int lo = 0; lo < 2; lo++)
                for (int hi = 0; hi < 2; hi++) {
                    const double d = solve_vs_stencil(kind[lo], kind[hi], nz, steady);
                    printf("\n  z faces %s/%s, nz %d, a %s: max |diff| %.2e", lo ? "fixed" : "insulated",
                           hi ? "fixed" : "insulated", nz, steady ? "0" : "> 0", d);
                    /* condition <= ~1e3 (a = 0: the smallest eigenvalue ~ (pi/(2 L))^2 against
                     * 12/h^2); O(1) data: rounding ~1e-13 */
                    CU_ASSERT(d < 1e-10);
                }
}

/* Box with fixed walls at T_a = 37 C, three Fourier modes (tu_box_modes, as test_analytic.c):
 * the spectral evolution is exact in time, so its error against the continuous series is the
 * spatial error alone, O(h^2). */
static double spectral_box_error(int n)
{
    char yaml[2048];
    const double H_mm = 10.0, h = H_mm / n, t_end = 40.0;
    snprintf(yaml, sizeof yaml,
             "tissues:\n" TISSUE_T("t", 0.52, 0.01547)
             "grid: {dims: [%d, %d, %d], spacing_mm: [%.17g, %.17g, %.17g],\n"
             "       origin_mm: [%.17g, %.17g, %.17g], background: t}\n"
             "time: {duration_s: 40}\n",
             n, n, n, h, h, h, 0.5 * h, 0.5 * h, 0.5 * h);
    abl_scenario *sc = tu_scenario(yaml, NULL, 0);
    if (!sc) return NAN;
    abl_error err = {0};
    abl_sim *s = tu_sim(sc);
    const abl_grid *g = &s->grid;
    const double rc = 1079.0 * 3540.0, H = H_mm * 1e-3, alpha = 0.52 / rc,
                 tau_p = rc / s->perf_W[0];
    bool fixed[6] = {true, true, true, true, true, true};
    abl_spectral *sp = NULL;
    CU_ASSERT_FATAL(spectral_create(g, fixed, &sp, &err) == ABL_OK);
    /* theta = T - 37 obeys the homogeneous problem: b = 0 */
    double *th = malloc(g->n * sizeof *th), *b = calloc(g->n, sizeof *b),
           *w = malloc(g->n * sizeof *w);
    tu_box_modes_fill(g, th, 0, H, alpha, tau_p, 0);
    spectral_evolve(sp, alpha, 1.0 / tau_p, b, t_end, th, w);
    double e = tu_box_modes_error(g, th, 0, H, alpha, tau_p, t_end);
    free(th);
    free(b);
    free(w);
    spectral_destroy(sp);
    sim_destroy(s);
    scenario_free(sc);
    return e;
}

static void test_spectral_vs_fourier(void)
{
    double e1 = spectral_box_error(10), e2 = spectral_box_error(20), e3 = spectral_box_error(40);
    /* purely spatial error of the 7-point operator: order 2 (band as in test_analytic.c) */
    tu_check_order2("spectral vs Fourier series", e1, e2, e3);
}

/* ---- temporal orders ------------------------------------------------------------------- */

/* 14^3 box at 1 mm, walls at 37 C, a smooth initial bump and a constant volumetric source: the
 * semi-discrete solution at t = 40 s computed exactly by spectral_evolve, then each scheme at
 * three time steps. */
static const char *order_yaml =
    "tissues:\n" TISSUE_T("t", 0.52, 0.01547)
    "grid: {dims: [14, 14, 14], spacing_mm: [1, 1, 1], background: t}\n"
    "time: {duration_s: 40, scheme: %s, dt_s: %.17g%s}\n"
    "sources:\n"
    "  - {type: volumetric, power_W: 0.5,\n"
    "     shape: {type: box, min_mm: [-3, -3, -3], max_mm: [3, 3, 3]}}\n";

static void initial_bump(const abl_grid *g, double *T)
{
    for (int k = 0; k < g->nz; k++)
        for (int j = 0; j < g->ny; j++)
            for (int i = 0; i < g->nx; i++) {
                double x[3];
                grid_voxel_centre_m(g, i, j, k, x);
                double r2 = (x[0] * x[0] + x[1] * x[1] + x[2] * x[2]) * 1e6;
                T[ABL_IDX(g, i, j, k)] = 37.0 + 15.0 * exp(-r2 / 8.0);
            }
}

static double *reference_solution(void)
{
    char yaml[2048];
    snprintf(yaml, sizeof yaml, order_yaml, "explicit", 0.01, "");
    abl_scenario *sc = tu_scenario(yaml, NULL, 0);
    abl_sim *s = NULL;
    abl_error err = {0};
    if (!sc || sim_create(sc, &s, &err)) return NULL;
    const abl_grid *g = &s->grid;
    /* b = (A*0 + f + q) / (rho c): constants of the discrete problem, with theta relative to 0 */
    double *b = calloc(g->n, sizeof *b), *zero = calloc(g->n, sizeof *zero),
           *w = malloc(g->n * sizeof *w), *T = malloc(g->n * sizeof *T);
    pennes_rhs(&s->st, zero, b);
    const abl_source_cfg *src = &sc->sources[0];
    size_t *idx, cnt;
    shape_voxels(&src->shape, g, &idx, &cnt, &err);
    for (size_t q = 0; q < cnt; q++) b[idx[q]] += 0.5 / (cnt * grid_voxel_volume_m3(g));
    free(idx);
    const double rc = 1079.0 * 3540.0;
    for (size_t c = 0; c < g->n; c++) b[c] /= rc;
    initial_bump(g, T);
    bool fixed[6] = {true, true, true, true, true, true};
    abl_spectral *sp = NULL;
    spectral_create(g, fixed, &sp, &err);
    spectral_evolve(sp, 0.52 / rc, s->perf_W[0] / rc, b, 40.0, T, w);
    spectral_destroy(sp);
    free(b);
    free(zero);
    free(w);
    sim_destroy(s);
    scenario_free(sc);
    return T;
}

static double scheme_error(const char *scheme, double dt, const double *ref)
{
    char yaml[2048];
    /* CG to 1e-13 so that the solver error stays far below the time discretisation error */
    snprintf(yaml, sizeof yaml, order_yaml, scheme, dt,
             strcmp(scheme, "explicit") && strcmp(scheme, "spectral")
                 ? ", solver_tolerance: 1e-13, max_iterations: 2000"
                 : "");
    abl_scenario *sc = tu_scenario(yaml, NULL, 0);
    if (!sc) return NAN;
    abl_sim *s = NULL;
    abl_error err = {0};
    if (sim_create(sc, &s, &err)) {
        fprintf(stderr, "\n%s\n", err.msg);
        CU_FAIL("sim_create");
        scenario_free(sc);
        return NAN;
    }
    initial_bump(&s->grid, s->T);
    if (sim_step(s, (long)llround(40.0 / s->dt_s), &err)) {
        fprintf(stderr, "\n%s\n", err.msg);
        CU_FAIL("sim_step");
    }
    double e = tu_maxdiff(s->T, ref, s->grid.n);
    sim_destroy(s);
    scenario_free(sc);
    return e;
}

static void test_temporal_orders(void)
{
    double *ref = reference_solution();
    CU_ASSERT_FATAL(ref != NULL);
    struct {
        const char *scheme;
        double dt0, lo, hi;
    } cases[] = {
        /* forward Euler: dt at and below the stability limit (0.58 s here) */
        {"explicit", 0.4, 0.85, 1.15},
        {"implicit", 4.0, 0.85, 1.15},
        /* Crank-Nicolson with one Rannacher start-up step; second order */
        {"crank_nicolson", 4.0, 1.8, 2.2},
    };
    for (int c = 0; c < 3; c++) {
        double e[3];
        for (int r = 0; r < 3; r++) e[r] = scheme_error(cases[c].scheme, cases[c].dt0 / (1 << r), ref);
        double o1 = log(e[0] / e[1]) / log(2), o2 = log(e[1] / e[2]) / log(2);
        printf("\n  %-15s dt %.3g..%.3g s: errors %.3e %.3e %.3e K, orders %.3f %.3f",
               cases[c].scheme, cases[c].dt0, cases[c].dt0 / 4, e[0], e[1], e[2], o1, o2);
        CU_ASSERT(o2 > cases[c].lo && o2 < cases[c].hi);
        /* the first halving is further from the asymptotic range (backward Euler at dt 4 s:
         * measured order 0.93 there, 0.96 at the second): its band is widened by 0.15 */
        CU_ASSERT(o1 > cases[c].lo - 0.15 && o1 < cases[c].hi + 0.15);
    }
    /* time.scheme: spectral is exact in time for constant forcing: any dt reproduces the
     * reference up to rounding of the transforms */
    double es = scheme_error("spectral", 8.0, ref);
    printf("\n  spectral scheme, dt 8 s: error %.2e K", es);
    CU_ASSERT(es < 1e-10);
    free(ref);
}

/* ---- preconditioner -------------------------------------------------------------------- */

static const char *pcg_yaml =
    "tissues:\n" TISSUE_T("soft", 0.52, 0.01547) TISSUE_T("stiff", 2.6, 0.005)
    "grid:\n"
    "  dims: [40, 40, 40]\n"
    "  spacing_mm: [0.5, 0.5, 0.5]\n"
    "  background: soft\n"
    "  shapes:\n"
    "    - {type: sphere, center_mm: [0, 0, 0], radius_mm: 5, tissue: stiff}\n"
    "    - {type: cylinder, start_mm: [-10, 6, -10], end_mm: [10, 6, 10], radius_mm: 1.5,\n"
    "       tissue: blood}\n"
    "time: {duration_s: 10, dt_s: 5, scheme: implicit, solver_tolerance: 1e-8,\n"
    "       max_iterations: 3000, preconditioner: %s}\n"
    "sources:\n"
    "  - {type: volumetric, power_W: 5, shape: {type: sphere, center_mm: [0, 0, 0], radius_mm: 2}}\n";

static int max_iterations(const char *pre)
{
    char yaml[2048];
    snprintf(yaml, sizeof yaml, pcg_yaml, pre);
    abl_scenario *sc = tu_scenario(yaml, NULL, 0);
    if (!sc) return -1;
    abl_error err = {0};
    abl_sim *s = tu_sim(sc);
    CU_ASSERT_FATAL(sim_step(s, 2, &err) == ABL_OK);
    int m = 0;
    for (size_t i = 0; i < s->n_cg; i++) {
        if (s->cg_iters[i] > m) m = s->cg_iters[i];
        CU_ASSERT(s->cg_resid[i] <= 1e-8);
    }
    sim_destroy(s);
    scenario_free(sc);
    return m;
}

static void test_preconditioner(void)
{
    int pcg = max_iterations("spectral"), cg = max_iterations("none");
    printf("\n  5x k contrast, dt 5 s, 40^3: PCG %d iterations, CG %d (ratio %.1f)", pcg, cg,
           (double)cg / pcg);
    /* measured 17 iterations (plain CG 97): 25 is 1.5x the measured count, and fails a
     * preconditioner that degrades towards plain CG */
    CU_ASSERT(pcg > 0 && pcg <= 25);
    CU_ASSERT(cg >= 5 * pcg);
}

void register_spectral_tests(void)
{
    CU_pSuite s = CU_add_suite("spectral+implicit", NULL, NULL);
    CU_add_test(s, "transform round trip, four boundary pairs", test_roundtrip);
    CU_add_test(s, "spectral solve inverts the stencil operator", test_solve_inverts_stencil);
    CU_add_test(s, "spectral evolution vs Fourier series, order 2", test_spectral_vs_fourier);
    CU_add_test(s, "explicit/implicit/CN temporal orders 1/1/2", test_temporal_orders);
    CU_add_test(s, "spectral preconditioner: <= 25 its, >= 5x fewer", test_preconditioner);
}
