/* test_rfa.c - radiofrequency ablation: the potential solver against the concentric-sphere
 * solution (error and observed order), the discrete power identity sum q V = V0 I (straight,
 * expandable, cluster; cold and with boiling tissue), electrode rasterisation on a 1 mm grid,
 * constant-power and temperature-controlled generators, roll-off, impedance pulsing, sequential
 * switching, perfusion shutdown and thread-count determinism. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ablasim/potential.h"
#include "ablasim/applicator.h"
#include "ablasim/rfa.h"
#include "ablasim/zone.h"
#include "testutil.h"

#define PI_ 3.14159265358979323846

/* A homogeneous liver cube of N^3 voxels of h mm centred on 0 with one rfa source (%s: the
 * source's keys after 'type: rfa'), extra: more top-level sections. */
static abl_scenario *rfa_scenario_dt(int N, double h_mm, double duration_s, const char *dt,
                                     const char *src, const char *extra)
{
    char sources[4096];
    snprintf(sources, sizeof sources, "  - name: rfa\n    type: rfa\n%s", src);
    return tu_liver_cube("rfa_test", N, h_mm, duration_s, dt, extra, sources);
}

static abl_scenario *rfa_scenario(int N, double h_mm, double duration_s, const char *src,
                                  const char *extra)
{
    return rfa_scenario_dt(N, h_mm, duration_s, "auto", src, extra);
}

/* One update of source 0 at time t on the sim's current temperatures: absorbed power [W]. */
static double update_power(abl_sim *s, double t_s, abl_source_contrib *c)
{
    *c = tu_source_update(s, 0, t_s);
    double P = 0.0, V = grid_voxel_volume_m3(&s->grid);
    for (size_t q = 0; q < c->n_heat; q++) P += c->heat_q_W_m3[q] * V;
    return P;
}

/* Last row of the source's series, column by name. */
static double series_last(const abl_sim *s, const char *col)
{
    abl_source_series ser;
    s->sources[0]->ops->series(s->sources[0], &ser);
    CU_ASSERT_FATAL(ser.nrow > 0);
    for (int c = 0; c < ser.ncol; c++)
        if (!strcmp(ser.columns[c], col)) return ser.rows[(ser.nrow - 1) * ser.ncol + c];
    CU_FAIL_FATAL("no such series column");
    return NAN;
}

/* sc (fatal if NULL) as a sim run for t_s; its first source's recorded series in *ser. */
static abl_sim *run_series(abl_scenario *sc, double t_s, abl_source_series *ser)
{
    CU_ASSERT_FATAL(sc != NULL);
    abl_sim *s = tu_sim(sc);
    tu_step_for(s, t_s);
    s->sources[0]->ops->series(s->sources[0], ser);
    return s;
}

/* ---- potential solver ---------------------------------------------------------------------- */

/* Concentric spheres a < r < b, V(a) = V0, V(b) = 0: V(r) = V0 (1/r - 1/b) / (1/a - 1/b)
 * (V0 a / r as b -> infinity). The grid centre (0) is a voxel corner, so no centre sits at
 * r = 0. Voxels with centres at r <= a and r >= b are held at the exact solution (extended
 * analytically beyond the spheres, node mode): the discrete problem has exact Dirichlet data on
 * a staircase boundary, and the 7-point scheme's O(h^2) truncation error with its discrete
 * maximum principle gives a max-norm error O(h^2). Returns that error / V0 for spacing h. */
static double sphere_error(double h_mm, int *iters)
{
    const double a = 2e-3, b = 6e-3, V0 = 10.0, h = h_mm * 1e-3;
    const int N = 2 * (int)lround(b / h + 2);
    abl_grid g;
    abl_error err = {0};
    const int dims[3] = {N, N, N};
    const double hh[3] = {h, h, h}, org[3] = {-0.5 * (N - 1) * h, -0.5 * (N - 1) * h,
                                               -0.5 * (N - 1) * h};
    CU_ASSERT_FATAL(grid_init(&g, dims, hh, org, &err) == ABL_OK);
    double *sig = malloc(g.n * sizeof *sig), *V = malloc(g.n * sizeof *V),
           *Vx = malloc(g.n * sizeof *Vx);
    uint8_t *held = calloc(g.n, 1);
    CU_ASSERT_FATAL(sig && V && Vx && held);
    for (int k = 0; k < N; k++)
        for (int j = 0; j < N; j++)
            for (int i = 0; i < N; i++) {
                size_t c = ABL_IDX(&g, i, j, k);
                double x[3];
                grid_voxel_centre_m(&g, i, j, k, x);
                double r = sqrt(x[0] * x[0] + x[1] * x[1] + x[2] * x[2]);
                sig[c] = 0.2;
                Vx[c] = V0 * (1.0 / r - 1.0 / b) / (1.0 / a - 1.0 / b);
                held[c] = r <= a || r >= b;
                V[c] = held[c] ? Vx[c] : 0.0;
            }
    bool grounded[6] = {true, true, true, true, true, true};
    abl_potential_opts o = {1e-12, 2000, true};
    abl_potential *p = NULL;
    CU_ASSERT_FATAL(potential_create(&g, grounded, &o, &p, &err) == ABL_OK);
    CU_ASSERT_FATAL(potential_set_conductivity(p, sig, held, false, &err) == ABL_OK);
    double res;
    abl_status st = potential_solve(p, V, NULL, iters, &res, &err);
    if (st) printf("\n  %s", err.msg);
    CU_ASSERT_FATAL(st == ABL_OK);
    double e = 0.0;
    for (size_t c = 0; c < g.n; c++)
        if (!held[c]) e = fmax(e, fabs(V[c] - Vx[c]));
    potential_destroy(p);
    free(sig);
    free(V);
    free(Vx);
    free(held);
    return e / V0;
}

/* Error at h = 1, 0.5, 0.25 mm; observed order log2(e_h / e_h/2) must be about 2. The
 * staircase boundary makes the error constant vary a little between grids, so 1.7 (not 2.0)
 * is the bound; first order (an inconsistent face conductance, a wrong wall distance) would
 * give ~1. The finest error must also be small in absolute terms (< 1 % of V0). */
static void test_sphere_order(void)
{
    int it[3];
    double e1 = sphere_error(1.0, &it[0]), e2 = sphere_error(0.5, &it[1]),
           e4 = sphere_error(0.25, &it[2]);
    double o1 = log2(e1 / e2), o2 = log2(e2 / e4);
    printf("\n  sphere a=2 mm, b=6 mm: max error/V0 %.3e %.3e %.3e (h = 1, 0.5, 0.25 mm), "
           "orders %.2f %.2f, CG iterations %d %d %d",
           e1, e2, e4, o1, o2, it[0], it[1], it[2]);
    CU_ASSERT(o1 > 1.7 && o2 > 1.7);
    CU_ASSERT(e4 < 1e-2);
}

/* A metal sphere of radius a (the voxels with centres inside it, held at V0) centred in an N^3
 * grid of 1 mm voxels (the grid centre a voxel corner), conductivity sigma everywhere; V zero
 * elsewhere. The caller frees sig, V and held. */
static void metal_sphere(int N, double a, double sigma, double V0, abl_grid *g, double **sig,
                         double **V, uint8_t **held)
{
    const double h = 1e-3, o0 = -0.5 * (N - 1) * h;
    abl_error err = {0};
    const int dims[3] = {N, N, N};
    const double hh[3] = {h, h, h}, org[3] = {o0, o0, o0};
    CU_ASSERT_FATAL(grid_init(g, dims, hh, org, &err) == ABL_OK);
    *sig = malloc(g->n * sizeof **sig);
    *V = calloc(g->n, sizeof **V);
    *held = calloc(g->n, 1);
    CU_ASSERT_FATAL(*sig && *V && *held);
    for (int k = 0; k < N; k++)
        for (int j = 0; j < N; j++)
            for (int i = 0; i < N; i++) {
                size_t c = ABL_IDX(g, i, j, k);
                double x[3];
                grid_voxel_centre_m(g, i, j, k, x);
                (*sig)[c] = sigma;
                (*held)[c] = x[0] * x[0] + x[1] * x[1] + x[2] * x[2] <= a * a;
                (*V)[c] = (*held)[c] ? V0 : 0.0;
            }
}

/* Least squares V = A (1/r) - B over the voxels of the +x half-axis through the grid centre with
 * r_min <= r <= r_max (at most 40); *worst the largest relative misfit. Returns the samples. */
static int fit_inverse_r(const abl_grid *g, const double *V, double r_min, double r_max,
                         double *A, double *B, double *worst)
{
    const int N = g->nx;
    double r_[40], v_[40], sx = 0, sy = 0, sxx = 0, sxy = 0;
    int m = 0;
    for (int i = N / 2; i < N && m < 40; i++) {
        double x[3];
        grid_voxel_centre_m(g, i, N / 2, N / 2, x);
        double r = sqrt(x[0] * x[0] + x[1] * x[1] + x[2] * x[2]);
        if (r < r_min || r > r_max) continue;
        r_[m] = r;
        v_[m] = V[ABL_IDX(g, i, N / 2, N / 2)];
        sx += 1 / r, sy += v_[m], sxx += 1 / (r * r), sxy += v_[m] / r;
        m++;
    }
    *A = (m * sxy - sx * sy) / (m * sxx - sx * sx);
    *B = (*A * sx - sy) / m;
    *worst = 0.0;
    for (int q = 0; q < m; q++) *worst = fmax(*worst, fabs((*A / r_[q] - *B) / v_[q] - 1.0));
    return m;
}

/* Far grounded box, metal sphere electrode (the voxels with centres inside r < a) at V0: the
 * potential must fall as 1/r. Along an axis, for 2a <= r <= b/2 (b the box half-width), V is
 * fitted as A/r - B (the radial harmonic functions; a grounded cube instead of a sphere adds
 * cubic harmonics of relative size (r/b)^4 < 7 % at r = b/2, much less below): the fit must
 * hold within 1 %, and the current must be the flux of that field, I = 4 pi sigma A, within
 * 3 % (the cube's harmonics carry no net flux; the rest is discretisation at 1 mm). A/V0 is the
 * sphere's effective radius: the staircase sphere holds 123 voxels (equal-volume radius
 * 3.09 mm), and metal to the voxel faces makes it larger still, so 3.0-3.6 mm. */
static void test_sphere_far_ground(void)
{
    const double a = 3e-3, sigma = 0.15, V0 = 1.0;
    const int N = 60;
    abl_grid g;
    abl_error err = {0};
    double *sig, *V;
    uint8_t *held;
    metal_sphere(N, a, sigma, V0, &g, &sig, &V, &held);
    bool grounded[6] = {true, true, true, true, true, true};
    abl_potential_opts o = {1e-10, 2000, true};
    abl_potential *p = NULL;
    CU_ASSERT_FATAL(potential_create(&g, grounded, &o, &p, &err) == ABL_OK);
    CU_ASSERT_FATAL(potential_set_conductivity(p, sig, held, true, &err) == ABL_OK);
    int it;
    double res;
    CU_ASSERT_FATAL(potential_solve(p, V, NULL, &it, &res, &err) == ABL_OK);
    const double I = potential_current_A(p, V);
    double A, B, worst;
    const int m = fit_inverse_r(&g, V, 2 * a, 15e-3, &A, &B, &worst);
    const double flux = fabs(I / (4.0 * PI_ * sigma * A) - 1.0);
    printf("\n  metal sphere a = 3 mm at 1 mm in a 60 mm grounded box: V = %.4f mm/r - %.4f, "
           "fit within %.2f %%, I vs 4 pi sigma A %.2f %%",
           A * 1e3, B, 100 * worst, 100 * flux);
    CU_ASSERT(m >= 8);
    CU_ASSERT(worst < 0.01);
    CU_ASSERT(flux < 0.03);
    CU_ASSERT(A / V0 > 3.0e-3 && A / V0 < 3.6e-3);
    potential_destroy(p);
    free(sig);
    free(V);
    free(held);
}

/* The metal sphere of the test above in an open box (potential_set_far_ground, centre at the
 * sphere's): its faces lead to a ground at infinity through the first-order asymptotic
 * condition, so the box should no longer matter. In an infinite medium V = V0 a_eff / r exactly
 * (no offset) and I = 4 pi sigma a_eff V0. Solved in boxes of half-width 15 and 30 mm:
 *  - the current of the two boxes agrees within 0.5 % (measured 0.01 %); held at 0 V, the faces
 *    move it by 11.4 % (about 1/(1/a - 1/b) from b = 15 to 30 mm; asserted > 5 %, so the test
 *    tells the two models apart);
 *  - along an axis V = A/r - B with |B| below 1 % of V(2a) (measured 0.31 / 0.14 %; the grounded
 *    box: 18 %), the fit within 1 %, I = 4 pi sigma A within 3 % (measured 0.5 %);
 *  - the exterior's power and the grid's add up to V0 I (the identity of potential.h with the
 *    exterior's share, to the CG tolerance: asserted 1e-8);
 *  - the split between them: the small box's grid power is the Joule heat the large box puts
 *    in the same 30^3 voxels (within 0.2 %: measured 2.5e-4, the far condition's own error at
 *    15 mm; with the half voxel's and the exterior's shares swapped it is 21 %). */
static double sphere_open_box(int N, bool far, double *B_rel, double *fit, double *flux,
                              double *identity, double *P_grid, double *P_inner15)
{
    const double a = 3e-3, h = 1e-3, sigma = 0.15, V0 = 1.0;
    abl_grid g;
    abl_error err = {0};
    double *sig, *V;
    uint8_t *held;
    metal_sphere(N, a, sigma, V0, &g, &sig, &V, &held);
    double *q = malloc(g.n * sizeof *q);
    CU_ASSERT_FATAL(q != NULL);
    bool grounded[6] = {true, true, true, true, true, true};
    abl_potential_opts o = {1e-10, 2000, ABL_PRECOND_MULTIGRID};
    abl_potential *p = NULL;
    CU_ASSERT_FATAL(potential_create(&g, grounded, &o, &p, &err) == ABL_OK);
    const double centre[3] = {0.0, 0.0, 0.0};
    CU_ASSERT_FATAL(potential_set_far_ground(p, far ? centre : NULL, &err) == ABL_OK);
    CU_ASSERT_FATAL(potential_set_conductivity(p, sig, held, true, &err) == ABL_OK);
    int it;
    double res;
    CU_ASSERT_FATAL(potential_solve(p, V, NULL, &it, &res, &err) == ABL_OK);
    const double I = potential_current_A(p, V);
    *P_grid = potential_dissipation(p, V, q);
    const double P = *P_grid + potential_far_power(p, V);
    *identity = fabs(P - V0 * I) / (V0 * I);
    /* Joule heat of the voxels within 15 mm of the centre (each axis): the box of N = 30 */
    *P_inner15 = 0.0;
    for (int k = 0; k < N; k++)
        for (int j = 0; j < N; j++)
            for (int i = 0; i < N; i++) {
                double x[3];
                grid_voxel_centre_m(&g, i, j, k, x);
                if (fabs(x[0]) < 15e-3 && fabs(x[1]) < 15e-3 && fabs(x[2]) < 15e-3)
                    *P_inner15 += q[ABL_IDX(&g, i, j, k)] * grid_voxel_volume_m3(&g);
            }
    double A, B;
    CU_ASSERT(fit_inverse_r(&g, V, 2 * a, 0.5 * N * h - 3e-3, &A, &B, fit) >= 5);
    *B_rel = fabs(B) / (A / (2 * a));
    *flux = fabs(I / (4.0 * PI_ * sigma * A) - 1.0);
    potential_destroy(p);
    free(sig);
    free(V);
    free(q);
    free(held);
    return I;
}

static void test_sphere_open_box(void)
{
    double B[4], fit[4], flux[4], id[4], I[4], Pg[4], Pin[4];
    const int N[2] = {30, 60};
    for (int far = 0; far < 2; far++)
        for (int b = 0; b < 2; b++) {
            const int q = 2 * far + b;
            I[q] = sphere_open_box(N[b], far, &B[q], &fit[q], &flux[q], &id[q], &Pg[q], &Pin[q]);
        }
    const double split = fabs(Pg[2] / Pin[3] - 1.0);
    const double d_far = fabs(I[2] / I[3] - 1.0), d_faces = fabs(I[0] / I[1] - 1.0);
    printf("\n  metal sphere a = 3 mm, box half-width 15 / 30 mm: current changes %.2f %% with "
           "an open box (far ground), %.2f %% with its faces at 0 V; open box: offset B %.2f %% "
           "/ %.2f %% of V(2a) (faces at 0 V: %.1f %%), fit within %.2f %%, I vs 4 pi sigma A "
           "%.2f %%, |P - V I| / P %.1e; the 15 mm box's grid power / the 30 mm box's heat in "
           "those voxels - 1: %.1e",
           100 * d_far, 100 * d_faces, 100 * B[2], 100 * B[3], 100 * B[1], 100 * fit[3],
           100 * flux[3], fmax(id[2], id[3]), split);
    CU_ASSERT(d_far < 0.005);
    CU_ASSERT(d_faces > 0.05); /* the test can tell the two models apart */
    CU_ASSERT(B[2] < 0.01 && B[3] < 0.01);
    CU_ASSERT(fit[2] < 0.01 && fit[3] < 0.01);
    CU_ASSERT(flux[3] < 0.03);
    CU_ASSERT(fmax(fmax(id[0], id[1]), fmax(id[2], id[3])) < 1e-8);
    CU_ASSERT(split < 2e-3);
    CU_ASSERT(Pg[2] < Pg[3] && Pin[3] < Pg[3]); /* the larger box keeps more of the heat */
}

/* ---- power identity -------------------------------------------------------------------------- */

/* sum q V = V0 I: q from the face dissipations, I from the flux out of the electrode voxels
 * (two different sums of the same solution). With solver_tolerance 1e-10 the discrepancy
 * (sum over free voxels of V times the residual) is far below the 1e-6 asked for. Checked cold
 * and after a re-solve on a field with boiling (desiccated) voxels next to the electrode, for
 * a straight electrode, an expandable one and a two-needle cluster, with the grounded faces
 * held at 0 V (ground: faces) and open to a far ground (ground: far). With a far ground the
 * grid receives sum q V (grid_power_W, bitwise the heat handed to the driver) and the exterior
 * the rest: power_W = V0 I, grid_power_W < power_W. */
static void check_identity(const char *electrodes, const char *ground, double *worst)
{
    char src[1024];
    snprintf(src, sizeof src,
             "    generator: {mode: constant_voltage, voltage_V: 30}\n"
             "    solver_tolerance: 1e-10\n"
             "    ground: %s\n"
             "    electrodes:\n%s",
             ground, electrodes);
    const bool far = !strcmp(ground, "far");
    abl_scenario *sc = rfa_scenario(31, 1.0, 10, src, NULL);
    CU_ASSERT_FATAL(sc != NULL);
    abl_sim *s = tu_sim(sc);
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) /* 37..136 C: many voxels past the 99-100 C drop */
            for (size_t c = 0; c < s->grid.n; c++) s->T[c] = 37.0 + (double)(c * 7919 % 100);
        abl_source_contrib c;
        double P = update_power(s, pass, &c);
        double VI = series_last(s, "voltage_V") * series_last(s, "current_A");
        const double PW = series_last(s, "power_W");
        double rel = fabs(PW - VI) / VI;
        *worst = fmax(*worst, rel);
        CU_ASSERT(fabs(series_last(s, "voltage_V") - 30.0) < 1e-12);
        if (far) {
            CU_ASSERT(fabs(series_last(s, "grid_power_W") - P) <= 1e-12 * P);
            CU_ASSERT(P < PW); /* some of the power is dissipated beyond the grid */
        } else {
            CU_ASSERT(fabs(PW - P) <= 1e-12 * P);
        }
    }
    sim_destroy(s);
    scenario_free(sc);
}

static void test_power_identity(void)
{
    double worst = 0.0;
    static const char *const grounds[2] = {"faces", "far"};
    for (int g = 0; g < 2; g++) {
        check_identity("      - {tip_mm: [0, 0, -6], direction: [0, 0, 1], active_length_mm: 12}\n",
                       grounds[g], &worst);
        check_identity("      - {type: expandable, tip_mm: [0, 0, 3], direction: [0, 0, 1],\n"
                       "         n_tines: 6, deployed_diameter_mm: 16}\n",
                       grounds[g], &worst);
        /* electrical box 6 mm around the needle: its faces are the ground */
        check_identity("      - {tip_mm: [1, 0, -4], direction: [0, 0, 1], active_length_mm: 8}\n"
                       "    electrical_margin_mm: 6\n",
                       grounds[g], &worst);
        check_identity("      - {tip_mm: [-3, 0, -5], direction: [0, 0, 1], active_length_mm: 10}\n"
                       "      - {tip_mm: [3, 1, -5], direction: [0.2, 0, 1], active_length_mm: 10}\n",
                       grounds[g], &worst);
    }
    printf("\n  sum q V vs V0 I: worst relative difference %.2e", worst);
    CU_ASSERT(worst < 1e-6);
}

/* ---- electrodes ------------------------------------------------------------------------------ */

static int contains(const size_t *idx, size_t n, size_t c)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (idx[mid] < c) lo = mid + 1;
        else hi = mid;
    }
    return lo < n && idx[lo] == c;
}

/* Every voxel an electrode's centre line passes through is in its set, on a 1 mm grid, for an
 * oblique needle thinner than a voxel (0.5 mm) and for the tines of an expandable electrode:
 * checked by sampling the line every 1 um (a voxel the line only clips by less than that could
 * be missed by the check, not by the traversal). */
static void test_rasterise(void)
{
    abl_scenario *sc = rfa_scenario(
        41, 1.0, 10,
        "    generator: {mode: constant_voltage, voltage_V: 10}\n"
        "    electrodes:\n"
        "      - {tip_mm: [-7.3, -5.1, -9.7], direction: [0.41, 0.29, 0.87], active_length_mm: 20,"
        " diameter_mm: 0.5}\n"
        "      - {type: expandable, tip_mm: [8.2, 6.1, 2.3], direction: [-0.3, 0.1, 1],"
        " n_tines: 7, deployed_diameter_mm: 20, tine_diameter_mm: 0.3}\n",
        NULL);
    CU_ASSERT_FATAL(sc != NULL);
    abl_sim *s = tu_sim(sc);
    const abl_grid *g = &s->grid;
    const size_t *idx;
    size_t n0 = rfa_electrode_voxels(s->sources[0], 0, &idx);
    /* straight: sample the segment */
    double d[3] = {0.41, 0.29, 0.87}, nd = sqrt(0.41 * 0.41 + 0.29 * 0.29 + 0.87 * 0.87);
    long missing = 0, samples = 0;
    for (int q = 0; q <= 20000; q++) {
        double x[3] = {-7.3e-3 + 20e-3 * q / 20000 * d[0] / nd,
                       -5.1e-3 + 20e-3 * q / 20000 * d[1] / nd,
                       -9.7e-3 + 20e-3 * q / 20000 * d[2] / nd};
        long v[3];
        for (int a = 0; a < 3; a++) v[a] = lround((x[a] - g->origin_m[a]) / g->h_m[a]);
        missing += !contains(idx, n0, ABL_IDX(g, v[0], v[1], v[2]));
        samples++;
    }
    /* the straight electrode is the applicator kit's held set (its rule is checked against a
     * hand count in suite cryo): the same voxels, in index order */
    const double tip[3] = {-7.3e-3, -5.1e-3, -9.7e-3}, dn[3] = {d[0] / nd, d[1] / nd, d[2] / nd};
    size_t nk = needle_hold_voxels(g, tip, dn, 20e-3, 0.25e-3, NULL, 0);
    size_t *kit = malloc(nk * sizeof *kit);
    CU_ASSERT_FATAL(kit != NULL);
    needle_hold_voxels(g, tip, dn, 20e-3, 0.25e-3, kit, nk);
    printf("\n  oblique 20 mm needle at 1 mm: %zu voxels (kit %zu), %ld of %ld line samples "
           "outside",
           n0, nk, missing, samples);
    CU_ASSERT(missing == 0);
    CU_ASSERT(n0 == nk && memcmp(kit, idx, nk * sizeof *kit) == 0);
    free(kit);
    /* expandable: 7 tines end at 10 mm from the axis and come back level with the tip (180
     * degree arcs of radius 5 mm): the voxels of the 7 ends are distinct and in the set */
    size_t n1 = rfa_electrode_voxels(s->sources[0], 1, &idx);
    CU_ASSERT(n1 > 7 * 15); /* each arc is 15.7 mm long */
    abl_source_axis ax[4];
    CU_ASSERT(s->sources[0]->ops->axes(s->sources[0], ax, 4) == 2);
    CU_ASSERT(fabs(ax[1].tip_m[0] - 8.2e-3) < 1e-15);
    sim_destroy(s);
    scenario_free(sc);
}

/* Sub-voxel coupling (applicator.h, potential.h): the impedance of a 17 G needle, 10 mm
 * exposed, in cold liver must not depend on where its axis falls on the grid. Offsets of the
 * axis by 0.25-0.75 voxel across and a 30 degree tilt, one solve each at 1 mm. Rasterised by
 * voxel centre (before issue 15) the equivalent diameter jumped between 1.1 and 2.3 mm with the
 * offset. Coupled, the spread is 3.4 % here (0.9 % for the 3 cm electrode of rfa_liver_cooled):
 * the line-source profile the coupling assumes holds along the shaft, not around the rounded
 * ends, which weigh more on a short needle. Asserted 4 %. */
static void test_alignment_impedance(void)
{
    const double off[][2] = {{0, 0}, {0.25, 0}, {0.5, 0}, {0.75, 0}, {0.5, 0.5}, {0.25, 0.75}};
    const int noff = (int)(sizeof off / sizeof off[0]);
    double zmin = INFINITY, zmax = -INFINITY;
    printf("\n  impedance [Ohm] by axis offset (x, y) in voxels:");
    for (int q = 0; q <= noff; q++) {
        char el[512];
        if (q < noff)
            snprintf(el, sizeof el,
                     "    generator: {mode: constant_voltage, voltage_V: 10}\n"
                     "    electrodes:\n"
                     "      - {tip_mm: [%g, %g, -5], direction: [0, 0, 1], active_length_mm: 10}\n",
                     off[q][0], off[q][1]);
        else /* tilted 30 degrees about y, same midpoint */
            snprintf(el, sizeof el,
                     "    generator: {mode: constant_voltage, voltage_V: 10}\n"
                     "    electrodes:\n"
                     "      - {tip_mm: [-2.5, 0, -4.330127], direction: [0.5, 0, 0.8660254], "
                     "active_length_mm: 10}\n");
        abl_scenario *sc = rfa_scenario_dt(31, 1.0, 0.5, "0.5", el, NULL);
        abl_source_series ser;
        abl_sim *s = run_series(sc, 0.5, &ser);
        const double z = series_last(s, "impedance_Ohm");
        if (q < noff)
            printf(" (%.2f, %.2f) %.2f", off[q][0], off[q][1], z);
        else
            printf("; tilted 30 deg %.2f", z);
        zmin = fmin(zmin, z);
        zmax = fmax(zmax, z);
        sim_destroy(s);
        scenario_free(sc);
    }
    printf("; spread %.2f %%", 100.0 * (zmax / zmin - 1.0));
    CU_ASSERT(zmax / zmin - 1.0 < 0.04);
}

/* The applicator kit's needle size (applicator.h needle_diameter_parse, shared with the
 * cryoprobes): an electrode given as `gauge: 17` is the Stubs table's 1.4732 mm needle, so its
 * impedance equals that of `diameter_mm: 1.4732` bit for bit (same radius, same coupling), and
 * differs from the 1.5 mm default (the radius enters the coupling as ln(d/r): 1.8 % thinner is
 * 0.8 % more impedance here; asserted only to differ by more than 1e-6, so a
 * gauge that were read and ignored fails). */
static void test_gauge_key(void)
{
    const char *sizes[] = {"gauge: 17", "diameter_mm: 1.4732", "diameter_mm: 1.5"};
    double z[3];
    for (int q = 0; q < 3; q++) {
        char el[512];
        snprintf(el, sizeof el,
                 "    generator: {mode: constant_voltage, voltage_V: 10}\n"
                 "    electrodes:\n"
                 "      - {tip_mm: [0, 0, -5], direction: [0, 0, 1], active_length_mm: 10, %s}\n",
                 sizes[q]);
        abl_scenario *sc = rfa_scenario_dt(31, 1.0, 0.5, "0.5", el, NULL);
        CU_ASSERT_FATAL(sc != NULL);
        abl_source_series ser;
        abl_sim *s = run_series(sc, 0.5, &ser);
        z[q] = series_last(s, "impedance_Ohm");
        sim_destroy(s);
        scenario_free(sc);
    }
    printf("\n  impedance: gauge 17 %.6f, 1.4732 mm %.6f, 1.5 mm %.6f Ohm", z[0], z[1], z[2]);
    CU_ASSERT_EQUAL(z[0], z[1]);
    CU_ASSERT(fabs(z[2] / z[0] - 1.0) > 1e-6);
}

/* Bipolar RFA (docs/RFA.md "Bipolar"): two parallel 10 mm electrodes 10 mm apart, mirror images
 * of each other across the grid's plane x = 0, one active (+1/2 V unit value) and one return
 * (-1/2 V), 10 V between them, every face insulated (no pad). The potential is odd in x, so the
 * Joule heat and the temperature are even: after 20 s the temperature mirrors to 1e-8 K (CG at
 * 1e-10; the asymmetry at tol 1e-4 was 3e-3 K). P = V I to 1e-8 (the dissipation identity, at
 * the CG tolerance). Grounding the six faces adds conductance from the tissue to 0 V, so the
 * impedance can only fall (Rayleigh monotonicity): asserted lower, and within 10 % (the faces
 * are 10 mm and more from the electrodes). */
static void test_bipolar(void)
{
    const char *fmt = "    generator: {mode: constant_voltage, voltage_V: 10}\n"
                      "    solver_tolerance: 1.0e-10\n"
                      "%s"
                      "    electrodes:\n"
                      "      - {tip_mm: [-5, 0, -5], direction: [0, 0, 1], active_length_mm: 10}\n"
                      "      - {tip_mm: [5, 0, -5], direction: [0, 0, 1], active_length_mm: 10,\n"
                      "         polarity: return}\n";
    double Z[2];
    for (int q = 0; q < 2; q++) {
        char src[1024];
        snprintf(src, sizeof src, fmt, q == 0 ? "    ground_faces: []\n" : "");
        abl_scenario *sc = rfa_scenario_dt(31, 1.0, 20.0, "0.5", src, NULL);
        abl_source_series ser;
        abl_sim *s = run_series(sc, 20.0, &ser);
        const double P = series_last(s, "power_W"), V = series_last(s, "voltage_V"),
                     I = series_last(s, "current_A");
        Z[q] = series_last(s, "impedance_Ohm");
        if (q == 0) {
            const abl_grid *g = &s->grid;
            double asym = 0.0, Tmax = -INFINITY;
            for (int k = 0; k < g->nz; k++)
                for (int j = 0; j < g->ny; j++)
                    for (int i = 0; i < g->nx; i++) {
                        const double a = s->T[ABL_IDX(g, i, j, k)],
                                     b = s->T[ABL_IDX(g, g->nx - 1 - i, j, k)];
                        asym = fmax(asym, fabs(a - b));
                        Tmax = fmax(Tmax, a);
                    }
            printf("\n  bipolar, no pad: P %.4f W = V I %.4f W, Z %.2f Ohm, T_max %.2f C, "
                   "mirror asymmetry %.1e K",
                   P, V * I, Z[q], Tmax, asym);
            CU_ASSERT(fabs(P - V * I) <= 1e-8 * P);
            CU_ASSERT(asym <= 1e-8);
            CU_ASSERT(Tmax > 38.0); /* it heats */
        }
        sim_destroy(s);
        scenario_free(sc);
    }
    printf("; grounded faces: Z %.2f Ohm", Z[1]);
    CU_ASSERT(Z[1] < Z[0] && Z[1] > 0.9 * Z[0]);
}

/* Switching bipolar (switching: bipolar_pairs): three electrodes on a triangle of 10 mm sides,
 * no pad. (1) The pairs take turns: electrode k active against k + 1 for switch_interval_s each,
 * 0, 1, 2, 0 (the series' active_electrode). (2) The heat is the generator's V I at every step
 * (1e-8: the solver's 1e-10 tolerance). (3) A pair conducts as the plain bipolar source of its
 * two electrodes: the third electrode, not in the pair, is tissue, so the first impedance equals
 * the one of a source with electrodes 0 (active) and 1 (return) only, to 1e-8 (both solved to
 * 1e-10 on the same grid; the same held voxels and couplings). */
static void test_bipolar_pairs(void)
{
    const char *el3 =
        "      - {tip_mm: [-5, -2.887, -5], direction: [0, 0, 1], active_length_mm: 10}\n"
        "      - {tip_mm: [5, -2.887, -5], direction: [0, 0, 1], active_length_mm: 10}\n"
        "      - {tip_mm: [0, 5.774, -5], direction: [0, 0, 1], active_length_mm: 10}\n";
    char src[2048];
    snprintf(src, sizeof src,
             "    generator: {mode: constant_voltage, voltage_V: 10}\n"
             "    solver_tolerance: 1.0e-10\n"
             "    ground_faces: []\n"
             "    switching: bipolar_pairs\n"
             "    switch_interval_s: 1\n"
             "    electrodes:\n%s",
             el3);
    abl_scenario *sc = rfa_scenario_dt(31, 1.0, 3.5, "0.5", src, NULL);
    abl_source_series ser;
    abl_sim *s = run_series(sc, 3.5, &ser);
    int ca = -1, cp = -1, cv = -1, ci = -1, cz = -1;
    for (int c = 0; c < ser.ncol; c++) {
        if (!strcmp(ser.columns[c], "active_electrode")) ca = c;
        if (!strcmp(ser.columns[c], "power_W")) cp = c;
        if (!strcmp(ser.columns[c], "voltage_V")) cv = c;
        if (!strcmp(ser.columns[c], "current_A")) ci = c;
        if (!strcmp(ser.columns[c], "impedance_Ohm")) cz = c;
    }
    CU_ASSERT_FATAL(ca >= 0 && cp >= 0 && cv >= 0 && ci >= 0 && cz >= 0);
    bool turns = true;
    double worst = 0.0;
    for (size_t r = 0; r < ser.nrow; r++) {
        const double *row = ser.rows + r * ser.ncol;
        const int want = (int)floor(row[0] + 1e-9) % 3;
        turns = turns && (int)row[ca] == want;
        worst = fmax(worst, fabs(row[cp] - row[cv] * row[ci]) / row[cp]);
    }
    const double Z_pair = ser.rows[cz];
    printf("\n  bipolar pairs: %zu steps, pairs in turn %s, |P - V I| / P <= %.1e, first Z %.3f "
           "Ohm",
           ser.nrow, turns ? "yes" : "NO", worst, Z_pair);
    CU_ASSERT(ser.nrow == 7);
    CU_ASSERT(turns);
    CU_ASSERT(worst <= 1e-8);
    sim_destroy(s);
    scenario_free(sc);
    snprintf(src, sizeof src,
             "    generator: {mode: constant_voltage, voltage_V: 10}\n"
             "    solver_tolerance: 1.0e-10\n"
             "    ground_faces: []\n"
             "    electrodes:\n"
             "      - {tip_mm: [-5, -2.887, -5], direction: [0, 0, 1], active_length_mm: 10}\n"
             "      - {tip_mm: [5, -2.887, -5], direction: [0, 0, 1], active_length_mm: 10,\n"
             "         polarity: return}\n");
    sc = rfa_scenario_dt(31, 1.0, 0.5, "0.5", src, NULL);
    s = run_series(sc, 0.5, &ser);
    const double Z_two = ser.rows[cz];
    printf("; the pair alone %.3f Ohm", Z_two);
    CU_ASSERT(fabs(Z_pair - Z_two) <= 1e-8 * Z_two);
    sim_destroy(s);
    scenario_free(sc);
}

/* The 55 C zones (sub-voxel volume) of one electrode at the five grid offsets of
 * tu_align_offsets: fmt is the source text with "%g, %g, %g" for the tip, tip_z_mm the tip's z
 * at offset 0 (axis +z); N^3 voxels of 1 mm, duration t_s. Returns the largest deviation from
 * the mean of the five. The callers hold the grounded faces at 0 V (ground: faces), as when the
 * bounds were set: these tests are about the electrode's sub-voxel geometry, and on their small
 * cubes a far ground sends ~20 % of the power beyond the grid, leaving smaller zones nearer
 * their threshold (each voxel's share of the count weighs more). */
static double alignment_zones(const char *what, const char *fmt, double tip_z_mm, int N,
                              double t_s)
{
    const double(*off)[3] = tu_align_offsets;
    double V[TU_NALIGN];
    for (int q = 0; q < TU_NALIGN; q++) {
        char src[512];
        snprintf(src, sizeof src, fmt, off[q][0], off[q][1], tip_z_mm + off[q][2]);
        abl_scenario *sc = rfa_scenario(N, 1.0, t_s, src, NULL);
        CU_ASSERT_FATAL(sc != NULL);
        abl_sim *s = tu_sim(sc);
        tu_step_for(s, t_s);
        abl_axis_zone z;
        const double tip[3] = {off[q][0] * 1e-3, off[q][1] * 1e-3, (tip_z_mm + off[q][2]) * 1e-3};
        zone_axis_measure(&s->grid, s->T_max, 55.0, true, tip, (double[3]){0, 0, 1}, &z);
        V[q] = z.volume_pv_m3 * 1e6;
        printf("\n  %s offset (%.2f, %.2f, %.2f) voxel: 55 C zone %.4f mL sub-voxel, %.4f mL "
               "count, D %.2f mm",
               what, off[q][0], off[q][1], off[q][2], V[q], z.volume_m3 * 1e6, z.diameter_m * 1e3);
        sim_destroy(s);
        scenario_free(sc);
    }
    return tu_max_rel_deviation(V, TU_NALIGN);
}

/* Issue 15 for the tines: the 55 C zone of an expandable electrode (6 tines of 0.5 mm
 * deployed to 16 mm, 180 degree umbrella; constant 15 W, 90 s, perfused liver, 1 mm) shifted
 * by the offsets of the cooled-electrode test below. The tines are the applicator kit's held
 * wire, coupled to the true surface (applicator.h wire_coupling). Rasterised by their centre
 * lines and the centres within their radius (before), the zone deviated by up to 3.1 % from
 * the mean of the five (configs/rfa_lung_expandable.yaml: 40.8 mL on the grid against
 * 31.9-33.7 mL shifted by 0.25-0.75 voxel across); with the wire 0.49 %. Asserted 1.5 %: the
 * old rule fails it. */
static void test_alignment_tines(void)
{
    const double worst =
        alignment_zones("tines", "    generator: {mode: constant_power, power_W: 15}\n"
                                 "    ground: faces\n"
                                 "    electrodes:\n"
                                 "      - {type: expandable, tip_mm: [%g, %g, %g], "
                                 "direction: [0, 0, 1],\n"
                                 "         n_tines: 6, deployed_diameter_mm: 16, "
                                 "tine_diameter_mm: 0.5}\n",
                        -4.0, 41, 90.0);
    CU_ASSERT(worst <= 0.015);
}

/* Issue 15, in make check: the 55 C zone of a cooled 17 G electrode (2 cm, 10 C coolant,
 * constant 20 W, 120 s, 1 mm, perfused liver) shifted by 0.25, 0.5 voxel across its axis, by
 * (0.5, 0.5) and by 0.5 voxel along it: the sub-voxel zone volume within 2 % (issue 15's bound)
 * of the mean of the five; measured 0.81 % (the full-size check, scripts/needle_alignment.py
 * --modality rfa on rfa_liver_cooled at 40 W 240 s: <= 1.8 % on the voxel count). With the
 * electrode rasterised by voxel centre, shifts across the axis changed that zone by 34 %. */
static void test_alignment_zone(void)
{
    const double worst =
        alignment_zones("cooled", "    generator: {mode: constant_power, power_W: 20}\n"
                                  "    ground: faces\n"
                                  "    electrodes:\n"
                                  "      - {tip_mm: [%g, %g, %g], direction: [0, 0, 1], "
                                  "active_length_mm: 20,\n"
                                  "         coolant_temperature_C: 10}\n",
                        -10.0, 31, 120.0);
    CU_ASSERT(worst <= 0.02);
}

/* Issue 16: the tissue beside an internally cooled electrode must stay physically plausible.
 * A 2 cm cooled 17 G needle (10 C coolant) driven by the impedance-mode generator at 200 W /
 * 2 A in perfused liver for 120 s, at 1 and 2 mm. With the electrode rasterised by centre and
 * pinned only there (before issue 15's coupling) the same needle and generator in
 * configs/rfa_liver_cooled.yaml reached 198 C at 1 mm and 509 C at 2 mm in 120 s: the coolant
 * never reached the tissue the current crowded into. With the coupling (the coupled voxels see
 * the coolant at the true surface, and half of the annulus' Joule heat goes to the coolant) the
 * hottest voxel here is 112.0 C at 1 mm and 99.8 C at 2 mm (114.0 / 99.9 C in that scenario).
 * Bound 120 C: the end of the vaporisation range (100 C) plus the overshoot of desiccated
 * tissue in the step at which the impedance jumps (the generator notices at the step's end). */
static void test_cooled_plausible(void)
{
    const char *src = "    generator: {mode: impedance, power_W: 200, max_current_A: 2}\n"
                      "    electrodes:\n"
                      "      - {tip_mm: [0, 0, -10], direction: [0, 0, 1], active_length_mm: 20,\n"
                      "         coolant_temperature_C: 10}\n";
    const double h_mm[2] = {1.0, 2.0};
    const int N[2] = {40, 20};
    for (int q = 0; q < 2; q++) {
        abl_scenario *sc = rfa_scenario(N[q], h_mm[q], 120.0, src, NULL);
        abl_source_series ser;
        abl_sim *s = run_series(sc, 120.0, &ser);
        double tmax = -INFINITY;
        for (size_t c = 0; c < s->grid.n; c++) tmax = fmax(tmax, s->T_max[c]);
        double E = 0.0; /* delivered energy [J]: power_W over each row's step */
        for (size_t r = 0; r + 1 < ser.nrow; r++)
            E += ser.rows[r * ser.ncol + 3] *
                 (ser.rows[(r + 1) * ser.ncol] - ser.rows[r * ser.ncol]);
        printf("\n  cooled 2 cm needle, 200 W impedance mode, 120 s at %.0f mm: hottest voxel "
               "%.1f C, %.1f kJ delivered",
               h_mm[q], tmax, E * 1e-3);
        CU_ASSERT(tmax <= 120.0);
        CU_ASSERT(E > 1e3); /* it did heat: a generator stuck in pauses would pass the bound */
        sim_destroy(s);
        scenario_free(sc);
    }
}

/* ---- generator modes --------------------------------------------------------------------------- */

/* Constant power: 12 W into a cooled needle while the tissue heats from 37 C to ablative
 * temperatures (below boiling: the cooling keeps it there, and no roll-off caps the voltage),
 * so sigma (and the impedance) change by 10-20 % and the potential is re-solved many times; every
 * recorded row must deliver P to rounding (it is exact by construction: the voltage is set from
 * the stored solution that also yields the heat), and V I must equal P to the solver's
 * tolerance. */
/* P = V I holds to the potential solve's relative residual (solver_tolerance 1e-4; measured
 * 3.3e-5): ten times the tolerance */
#define VI_TOL 1e-3
static void test_constant_power(void)
{
    abl_scenario *sc =
        rfa_scenario(25, 1.0, 40,
                     "    generator: {mode: constant_power, power_W: 12}\n"
                     "    electrodes:\n"
                     "      - {tip_mm: [0, 0, -5], direction: [0, 0, 1], active_length_mm: 10,\n"
                     "         coolant_temperature_C: 20}\n",
                     NULL);
    abl_source_series ser;
    abl_sim *s = run_series(sc, 40.0, &ser);
    double worst = 0.0, worst_vi = 0.0, zmin = INFINITY, zmax = 0.0;
    for (size_t r = 0; r < ser.nrow; r++) {
        const double *row = ser.rows + r * ser.ncol;
        worst = fmax(worst, fabs(row[3] - 12.0) / 12.0);
        worst_vi = fmax(worst_vi, fabs(row[1] * row[2] - row[3]) / row[3]);
        zmin = fmin(zmin, row[4]);
        zmax = fmax(zmax, row[4]);
    }
    double solves = series_last(s, "potential_solves");
    printf("\n  constant power 12 W: worst |P - 12|/12 = %.1e, |V I - P|/P = %.1e over %zu "
           "steps, impedance %.1f..%.1f Ohm, %g potential solves",
           worst, worst_vi, ser.nrow, zmin, zmax, solves);
    /* P is set exactly: V0 = sqrt(P_set / P(1 V)) and P = V0^2 P(1 V), two roundings (audit,
     * session 24: the 1 % bound accepted a generator 0.8 % short) */
    CU_ASSERT(worst < 1e-12);
    /* and independently: the electrode current (the flux through the electrode's faces) times
     * the voltage is the Joule heat of the same solution, equal to it as far as the potential
     * solve has converged */
    CU_ASSERT(worst_vi < VI_TOL);
    CU_ASSERT(zmax / zmin > 1.1); /* the impedance did vary (18 % with the coupling) */
    CU_ASSERT(solves > 5);
    sim_destroy(s);
    scenario_free(sc);
}

/* Temperature control: the PI loop with its default gains brings the tip to 90 C and holds it:
 * over the last 30 s of 120 s the tip stays within 3 C of the setpoint (the loop acts on the
 * temperature at the start of each 0.7 s step; 3 C is a few steps of heating at full power
 * near the electrode). */
static void test_temperature_control(void)
{
    abl_scenario *sc = rfa_scenario(
        25, 1.0, 120,
        "    generator: {mode: temperature, setpoint_C: 90, max_power_W: 50}\n"
        "    electrodes:\n"
        "      - {tip_mm: [0, 0, -5], direction: [0, 0, 1], active_length_mm: 10}\n",
        NULL);
    abl_source_series ser;
    abl_sim *s = run_series(sc, 120.0, &ser);
    double lo = INFINITY, hi = -INFINITY, tmax = -INFINITY;
    for (size_t r = 0; r < ser.nrow; r++) {
        const double *row = ser.rows + r * ser.ncol;
        tmax = fmax(tmax, row[5]);
        if (row[0] < 90.0) continue;
        lo = fmin(lo, row[5]);
        hi = fmax(hi, row[5]);
    }
    printf("\n  temperature control 90 C: tip %.2f..%.2f C over the last 30 s, peak %.2f C, "
           "final power %.2f W",
           lo, hi, tmax, series_last(s, "power_W"));
    CU_ASSERT(lo > 87.0 && hi < 93.0);
    sim_destroy(s);
    scenario_free(sc);
}

/* Roll-off: an uncooled 4 mm needle at a constant 80 V boils the tissue next to it. Once the
 * hottest voxel beside the electrode reaches the boiling range (sigma_drop_start_C = 99 C: with
 * the core's vaporisation the temperature plateaus there while the water boils off), the
 * impedance must rise more than 10x above its minimum within seconds - taken as 20 s: the
 * desiccated shell closes around the electrode (the current crowds into the voxels not yet
 * boiled, which then boil too). dt 0.1 s resolves it. The time is set by the latent heat of
 * that shell: with the sub-voxel coupling (applicator.h) the shell is the voxels beside the held
 * set (radius >= 1.5 h), 62 voxels for this needle, against 22 beside the old five-voxel line
 * (the electrode rasterised by centre), and the 10x rise came 14.4 s after the first 99 C
 * voxel instead of 7.3 s. A real electrode desiccates a sub-millimetre layer at its surface
 * first; that sub-voxel layer is not modelled (docs/RFA.md "Left out"), so the bound follows
 * the shell the grid can resolve. */
static void test_rolloff(void)
{
    abl_scenario *sc = rfa_scenario_dt(
        25, 1.0, 60, "0.1",
        "    generator: {mode: constant_voltage, voltage_V: 80}\n"
        "    electrodes:\n"
        "      - {tip_mm: [0, 0, -2], direction: [0, 0, 1], active_length_mm: 4}\n",
        NULL);
    CU_ASSERT_FATAL(sc != NULL);
    abl_sim *s = tu_sim(sc);
    const abl_grid *g = &s->grid;
    const size_t *idx;
    size_t ne = rfa_electrode_voxels(s->sources[0], 0, &idx);
    abl_error err = {0};
    double t100 = -1.0, troll = -1.0, zmin = INFINITY;
    for (long n = 0; n < 600 && troll < 0; n++) {
        CU_ASSERT_FATAL(sim_step(s, 1, &err) == ABL_OK);
        double z = series_last(s, "impedance_Ohm");
        zmin = fmin(zmin, z);
        double tn = -INFINITY; /* hottest tissue voxel beside the electrode */
        for (size_t q = 0; q < ne; q++) {
            const long off[6] = {-1, 1, -(long)g->sy, (long)g->sy, -(long)g->sz, (long)g->sz};
            for (int f = 0; f < 6; f++) {
                size_t c = (size_t)((long)idx[q] + off[f]);
                if (!contains(idx, ne, c)) tn = fmax(tn, s->T[c]);
            }
        }
        if (t100 < 0 && tn >= 99.0) t100 = s->t_s;
        if (z > 10.0 * zmin) troll = s->t_s;
    }
    size_t nshell = 0; /* tissue voxels beside the electrode */
    for (size_t c = 0; c < g->n; c++) {
        if (contains(idx, ne, c)) continue;
        const long off[6] = {-1, 1, -(long)g->sy, (long)g->sy, -(long)g->sz, (long)g->sz};
        bool beside = false;
        for (int f = 0; f < 6 && !beside; f++) {
            const long nb = (long)c + off[f];
            beside = nb >= 0 && nb < (long)g->n && contains(idx, ne, (size_t)nb);
        }
        nshell += beside;
    }
    printf("\n  roll-off at 80 V: %zu electrode voxels, %zu beside them; tissue beside the "
           "electrode at 99 C at t = %.1f s, impedance > 10 x %.1f Ohm at t = %.1f s",
           ne, nshell, t100, zmin, troll);
    CU_ASSERT(t100 > 0.0);
    CU_ASSERT(troll > 0.0);
    CU_ASSERT(troll >= t100 && troll - t100 <= 20.0);
    sim_destroy(s);
    scenario_free(sc);
}

/* Impedance pulsing: at 60 W an uncooled needle rolls off; the generator must cut the power
 * (voltage 0, paused = 1) for pause_s = 5 s each time the impedance exceeds baseline + 10 Ohm,
 * then resume. Checks: at least one pause; every paused row has zero power; each pause lasts
 * 5 s to within a step; no potential solve inside a pause (V0 = 0 heats nothing: the row that
 * starts a pause may have solved, the rows after it may not). */
static void test_impedance_pulsing(void)
{
    abl_scenario *sc = rfa_scenario(
        25, 1.0, 60,
        "    generator: {mode: impedance, power_W: 40, pause_s: 5, baseline_s: 2}\n"
        "    electrodes:\n"
        "      - {tip_mm: [0, 0, -3], direction: [0, 0, 1], active_length_mm: 6}\n",
        NULL);
    abl_source_series ser;
    abl_sim *s = run_series(sc, 60.0, &ser);
    int npause = 0, nended = 0, bad = 0, paused_solves = 0, powered_after_resume = 0;
    double start = -1.0, worst_len = 0.0, last_t = 0.0;
    bool resumed = false;
    for (size_t r = 0; r < ser.nrow; r++) {
        const double *row = ser.rows + r * ser.ncol;
        last_t = row[0];
        if (row[7] > 0.5) {
            bad += row[3] != 0.0;
            if (r > 0 && row[-ser.ncol + 7] > 0.5) paused_solves += row[8] != row[-ser.ncol + 8];
            if (start < 0) start = row[0], npause++;
            resumed = false;
        } else {
            if (start >= 0) {
                worst_len = fmax(worst_len, fabs(row[0] - start - 5.0));
                start = -1.0;
                nended++;
                resumed = true;
            }
            /* the generator really delivers again after a pause (audit, session 24: a
             * generator that paused once and never resumed passed every check) */
            if (resumed && row[3] > 0.0) powered_after_resume++, resumed = false;
        }
    }
    /* a pause still open at the end of the run may not have outlasted pause_s either */
    const double open_len = start >= 0 ? last_t - start : 0.0;
    printf("\n  impedance pulsing: %d pauses (%d ended, %d followed by power), pause length "
           "error <= %.2f s (dt %.2f s), open pause %.2f s, %d solves inside pauses",
           npause, nended, powered_after_resume, worst_len, s->dt_s, open_len, paused_solves);
    CU_ASSERT(npause >= 1);
    CU_ASSERT(nended >= 1);
    CU_ASSERT_EQUAL(powered_after_resume, nended);
    CU_ASSERT(open_len <= 5.0 + s->dt_s + 1e-9);
    CU_ASSERT(bad == 0);
    CU_ASSERT(paused_solves == 0);
    CU_ASSERT(worst_len <= s->dt_s + 1e-9);
    sim_destroy(s);
    scenario_free(sc);
}

/* Sequential switching: two needles alternate every 3 s; the active one is recorded, and the
 * heat follows it (the other gets none in its own voxels' neighbourhood). */
static void test_sequential(void)
{
    abl_scenario *sc = rfa_scenario(
        31, 1.0, 10,
        "    generator: {mode: constant_power, power_W: 10}\n"
        "    switching: sequential\n"
        "    switch_interval_s: 3\n"
        "    electrodes:\n"
        "      - {tip_mm: [-6, 0, -4], direction: [0, 0, 1], active_length_mm: 8}\n"
        "      - {tip_mm: [6, 0, -4], direction: [0, 0, 1], active_length_mm: 8}\n",
        NULL);
    CU_ASSERT_FATAL(sc != NULL);
    abl_sim *s = tu_sim(sc);
    const double t[4] = {0.0, 3.5, 6.2, 9.9};
    for (int q = 0; q < 4; q++) {
        abl_source_contrib c;
        double P = update_power(s, t[q], &c);
        int active = (int)series_last(s, "active_electrode");
        CU_ASSERT(active == q % 2);
        /* the generator delivers the 10 W; the grid receives its share (far ground) */
        CU_ASSERT(fabs(series_last(s, "power_W") - 10.0) < 1e-9);
        CU_ASSERT(fabs(series_last(s, "grid_power_W") - P) <= 1e-12 * P && P < 10.0);
        /* heat centroid on the active needle's side (x = -6 or +6 mm) */
        double sx = 0.0, sq = 0.0;
        for (size_t k = 0; k < c.n_heat; k++) {
            size_t v = c.heat_idx[k];
            double x[3];
            grid_voxel_centre_m(&s->grid, (int)(v % s->grid.sy),
                                (int)(v / s->grid.sy % (size_t)s->grid.ny),
                                (int)(v / s->grid.sz), x);
            sx += c.heat_q_W_m3[k] * x[0];
            sq += c.heat_q_W_m3[k];
        }
        CU_ASSERT((q % 2 == 0) ? sx / sq < -4e-3 : sx / sq > 4e-3);
    }
    sim_destroy(s);
    scenario_free(sc);
}

/* Impedance-triggered switching (switching: impedance; the rule of Francica et al. 2019: the next
 * electrode takes over when the conducting one's impedance is 30 Ohm above its baseline). Three
 * uncooled 6 mm needles 10 mm apart at 25 W boil within seconds. The series of this mode carries
 * each step's hand-over: its cause (1 impedance rise, 2 longest turn), the outgoing electrode's
 * judged impedance and its baseline.
 * (a) The judged impedance is the present one: run B is run A with switch_delta_Ohm 1e4 (never
 *     switches). Until A's first switch (row r) the runs are the same, bit for bit, and A's
 *     judged impedance at r is bitwise B's row r (electrode 0 solved for that step's sigma).
 * (b) Every hand-over of A is justified and every other row obeys the rule: a hand-over goes to
 *     the next electrode, its judged impedance exceeds the outgoing electrode's own baseline
 *     + 30, and that baseline is exactly the lowest impedance the electrode showed on its rows
 *     so far (a baseline shared between electrodes, a forced or a missed hand-over all fail);
 *     no other row carries a hand-over, and no row but a turn's first exceeds its electrode's
 *     baseline + 30.
 * (c) Both triggers together, the source starting at on_s = 2 s, longest turn 6 s: a turn ended
 *     by the clock ended at the first step that starts 6 s or more after the turn began (turns
 *     begin at a hand-over, including one on the impedance rise, or at on_s), and lasted less
 *     before; at least one hand-over of each kind. */
static abl_sim *switching_run(const char *extra_keys, double t_s, abl_source_series *ser,
                              abl_scenario **sc)
{
    char src[2048];
    snprintf(src, sizeof src,
             "    generator: {mode: constant_power, power_W: 25}\n"
             "    ground: faces\n" /* the grid receives all 25 W, as when (c) was written: with
                                   * a far ground ~1/4 goes beyond this 27 mm cube, and no
                                   * electrode boils within a 6 s turn */
             "    switching: impedance\n%s"
             "    electrodes:\n"
             "      - {tip_mm: [5.774, 0, -3], direction: [0, 0, 1], active_length_mm: 6}\n"
             "      - {tip_mm: [-2.887, 5, -3], direction: [0, 0, 1], active_length_mm: 6}\n"
             "      - {tip_mm: [-2.887, -5, -3], direction: [0, 0, 1], active_length_mm: 6}\n",
             extra_keys);
    *sc = rfa_scenario_dt(27, 1.0, t_s, "0.5", src, NULL);
    return run_series(*sc, t_s, ser);
}

/* Checks (b) and (c) on one series; interval_s 0: no longest turn. Counts the hand-overs of
 * each kind in n_rise, n_clock; returns whether every check held (and prints the first fault). */
static bool handovers_ok(const abl_source_series *a, double interval_s, int *n_rise, int *n_clock)
{
    enum { T = 0, Z = 4, ACT = 6, WHY = 10, ZJ = 11, BJ = 12 };
    double bases[3] = {INFINITY, INFINITY, INFINITY}, turn_t = a->rows[T];
    *n_rise = *n_clock = 0;
    for (size_t q = 0; q < a->nrow; q++) {
        const double *row = a->rows + q * a->ncol, *prev = row - a->ncol;
        const int e = (int)row[ACT], why = (int)row[WHY];
        const bool first = q > 0 && (int)prev[ACT] != e;
        bool ok = true;
        if (!first) {
            ok = why == 0 && row[Z] <= bases[e] + 30.0 &&
                 (interval_s <= 0.0 || q == 0 || row[T] - turn_t < interval_s - 1e-9);
        } else {
            const int out = (int)prev[ACT];
            ok = e == (out + 1) % 3;
            if (why == 1) {
                ok = ok && row[BJ] == bases[out] && row[ZJ] > bases[out] + 30.0;
                ++*n_rise;
            } else {
                ok = ok && why == 2 && interval_s > 0.0 && row[T] - turn_t >= interval_s - 1e-9 &&
                     prev[T] - turn_t < interval_s - 1e-9;
                ++*n_clock;
            }
            turn_t = row[T];
        }
        if (!ok) {
            printf("\n  FAULT at row %zu (t = %.2f s): electrode %d, hand-over %d, Z %.2f, judged "
                   "%.2f, baseline %.2f (own %.2f)",
                   q, row[T], e, why, row[Z], row[ZJ], row[BJ], first ? bases[(int)prev[ACT]] : 0.0);
            return false;
        }
        bases[e] = fmin(bases[e], row[Z]);
    }
    return true;
}

static void test_impedance_switching(void)
{
    abl_source_series a, b;
    abl_scenario *ca_sc, *cb_sc;
    abl_sim *sa = switching_run("", 40.0, &a, &ca_sc);
    abl_sim *sb = switching_run("    switch_delta_Ohm: 10000\n", 40.0, &b, &cb_sc);
    CU_ASSERT_FATAL(a.ncol == 14 && !strcmp(a.columns[4], "impedance_Ohm") &&
                    !strcmp(a.columns[6], "active_electrode") &&
                    !strcmp(a.columns[11], "handover_impedance_Ohm") &&
                    !strcmp(a.columns[13], "step_s"));
    size_t r = 0;
    while (r < a.nrow && a.rows[r * a.ncol + 6] == 0.0) r++;
    CU_ASSERT_FATAL(r > 0 && r < a.nrow && r < b.nrow);
    const bool same = !memcmp(a.rows, b.rows, r * (size_t)a.ncol * sizeof(double));
    const bool judged = a.rows[r * a.ncol + 11] == b.rows[r * b.ncol + 4];
    int nrise, nclock;
    const bool ok = handovers_ok(&a, 0.0, &nrise, &nclock);
    printf("\n  impedance switching: first hand-over at t = %.1f s (row %zu): rows before it "
           "bitwise those of the run that never switches %s, judged impedance %.1f Ohm = that "
           "run's row %s (baseline %.1f + 30); %d hand-overs in 40 s, all justified %s",
           a.rows[r * a.ncol], r, same ? "yes" : "NO", a.rows[r * a.ncol + 11],
           judged ? "yes" : "NO", a.rows[r * a.ncol + 12], nrise, ok ? "yes" : "NO");
    CU_ASSERT(same);
    CU_ASSERT(judged);
    CU_ASSERT(ok);
    CU_ASSERT(nrise >= 3 && nclock == 0);
    sim_destroy(sa);
    sim_destroy(sb);
    scenario_free(ca_sc);
    scenario_free(cb_sc);
    /* (c) both triggers, a late start */
    abl_source_series c;
    abl_scenario *cc_sc;
    abl_sim *sc = switching_run("    switch_interval_s: 6\n    on_s: 2\n", 40.0, &c, &cc_sc);
    const bool ok_c = c.nrow > 0 && c.rows[0] == 2.0 && handovers_ok(&c, 6.0, &nrise, &nclock);
    printf("; with a longest turn of 6 s from t = 2 s: %d on the rise, %d on the clock, all "
           "justified %s",
           nrise, nclock, ok_c ? "yes" : "NO");
    CU_ASSERT(ok_c);
    CU_ASSERT(nrise >= 1 && nclock >= 1);
    sim_destroy(sc);
    scenario_free(cc_sc);
}

/* ---- perfusion shutdown, determinism ----------------------------------------------------------- */

static double ablated_mL(const abl_sim *s)
{
    size_t n = 0;
    for (size_t c = 0; c < s->grid.n; c++) n += s->omega[c] >= 1.0;
    return (double)n * grid_voxel_volume_m3(&s->grid) * 1e6;
}

/* The same 150 s, 10 W cooled-needle ablation with and without perfusion shutdown
 * (w_b exp(-Omega)): coagulated tissue stops carrying heat away, so the Omega >= 1 volume must
 * be larger with shutdown. Liver's perfusion length sqrt(k/W) is 3 mm, comparable with the
 * zone radius, so the effect is large; asserted as at least 10 % more volume. */
static void test_perfusion_shutdown(void)
{
    double vol[2];
    for (int on = 0; on < 2; on++) {
        char extra[256];
        snprintf(extra, sizeof extra, "physics: {perfusion_shutdown: %s}\n",
                 on ? "arrhenius" : "none");
        abl_scenario *sc = rfa_scenario(
            25, 1.0, 150,
            "    generator: {mode: constant_power, power_W: 10}\n"
            "    electrodes:\n"
            "      - {tip_mm: [0, 0, -5], direction: [0, 0, 1], active_length_mm: 10,\n"
            "         coolant_temperature_C: 20}\n",
            extra);
        CU_ASSERT_FATAL(sc != NULL);
        abl_sim *s = tu_sim(sc);
        abl_error err = {0};
        abl_status st = sim_step(s, (long)llround(150.0 / s->dt_s), &err);
        if (st) printf("\n  %s", err.msg);
        CU_ASSERT_FATAL(st == ABL_OK);
        vol[on] = ablated_mL(s);
        sim_destroy(s);
        scenario_free(sc);
    }
    printf("\n  Omega >= 1 volume: %.3f mL without perfusion shutdown, %.3f mL with", vol[0],
           vol[1]);
    CU_ASSERT(vol[0] > 0.0);
    CU_ASSERT(vol[1] > 1.1 * vol[0]);
}

/* The heat returned does not depend on the thread count (bitwise): per-plane sums in plane
 * order, FFT lines computed by the same single-threaded plans. */
static void test_thread_determinism(void)
{
    double *q[2] = {NULL, NULL};
    size_t nq[2] = {0, 0};
    const int nt0 = omp_get_max_threads();
    for (int pass = 0; pass < 2; pass++) {
        CU_ASSERT_EQUAL(tu_set_threads(pass ? 2 : 1), pass ? 2 : 1);
        abl_scenario *sc = rfa_scenario(
            24, 1.0, 10,
            "    generator: {mode: constant_power, power_W: 8}\n"
            "    electrodes:\n"
            "      - {tip_mm: [0.3, -0.2, -4], direction: [0.1, 0, 1], active_length_mm: 8}\n",
            NULL);
        CU_ASSERT_FATAL(sc != NULL);
        abl_sim *s = tu_sim(sc);
        for (size_t c = 0; c < s->grid.n; c++) s->T[c] = 37.0 + (double)(c * 7919 % 70);
        abl_source_contrib c;
        update_power(s, 0.0, &c);
        nq[pass] = c.n_heat;
        q[pass] = malloc(nq[pass] * sizeof(double));
        memcpy(q[pass], c.heat_q_W_m3, nq[pass] * sizeof(double));
        sim_destroy(s);
        scenario_free(sc);
    }
    omp_set_num_threads(nt0);
    CU_ASSERT_EQUAL_FATAL(nq[0], nq[1]);
    CU_ASSERT(nq[0] > 0);
    CU_ASSERT(memcmp(q[0], q[1], nq[0] * sizeof(double)) == 0);
    free(q[0]);
    free(q[1]);
}

/* sigma(T) model: values at the corners of the piecewise form. */
static void test_sigma_model(void)
{
    rfa_sigma_model m = {0.015, 99.0, 100.0, 1e-4, 1e-5};
    CU_ASSERT(fabs(rfa_sigma_at(&m, 0.2, 37.0) - 0.2) < 1e-15);
    CU_ASSERT(fabs(rfa_sigma_at(&m, 0.2, 77.0) - 0.2 * 1.6) < 1e-15);
    double s99 = 0.2 * (1 + 0.015 * 62);
    CU_ASSERT(fabs(rfa_sigma_at(&m, 0.2, 99.0) - s99) < 1e-15);
    CU_ASSERT(fabs(rfa_sigma_at(&m, 0.2, 99.5) - s99 * (1 - 0.5 * (1 - 1e-4))) < 1e-15);
    CU_ASSERT(fabs(rfa_sigma_at(&m, 0.2, 100.0) - s99 * 1e-4) < 1e-18);
    CU_ASSERT(fabs(rfa_sigma_at(&m, 0.2, 150.0) - s99 * 1e-4) < 1e-18);
    CU_ASSERT(rfa_sigma_at(&m, 0.0, 37.0) == 1e-5); /* air: the floor */
}

/* Wet electrodes (docs/RFA.md "Wet electrodes"). (1) The infiltrated capsule's radius holds
 * its volume: pi (r^2 - a^2) L + 4/3 pi (r^3 - a^3) = V / f to 1e-12 relative (bisection to
 * rounding), and grows with V. (2) What the fluid does to the circuit, at t = 0 in 37 C liver,
 * 1 mm grid, constant 10 V: an infusion that starts after t = 0 leaves the impedance bitwise
 * the dry one (nothing infused yet: the same sigma, the same solve); one started 60 s before
 * lowers it, more for a more conductive fluid (0.9 % vs 5 % NaCl) and for more fluid; and the
 * drop is at most what the infiltrated capsule alone can remove, and more than half of it (a
 * capsule of the right size around the active segment: see below). */
static void test_wet_electrode(void)
{
    const double a = 0.75e-3, L = 30e-3, f = 0.2;
    double prev = a, worst = 0.0;
    for (int q = 1; q <= 20; q++) {
        const double V = q * 0.5e-6; /* 0.5 .. 10 mL */
        const double r = rfa_wet_radius_m(V, f, a, L);
        const double vol = PI_ * (r * r - a * a) * L + 4.0 / 3.0 * PI_ * (r * r * r - a * a * a);
        worst = fmax(worst, fabs(vol - V / f) / (V / f));
        CU_ASSERT(r > prev);
        prev = r;
    }
    CU_ASSERT(rfa_wet_radius_m(0.0, f, a, L) == a);
    printf("\n  capsule volume vs V/f: worst relative error %.1e; r(10 mL, f 0.2) = %.2f mm",
           worst, 1e3 * prev);
    CU_ASSERT(worst < 1e-12);

    const char *wet[] = {"", ", infusion_rate_mL_per_min: 1, infusion_start_s: 30",
                         ", infusion_rate_mL_per_min: 1, infusion_start_s: -60",
                         ", infusion_rate_mL_per_min: 1, infusion_start_s: -60, "
                         "infusion_conductivity_S_per_m: 9.4",
                         ", infusion_rate_mL_per_min: 2, infusion_start_s: -60, "
                         "infusion_conductivity_S_per_m: 9.4"};
    double Z[5];
    for (int q = 0; q < 5; q++) {
        char el[1024];
        snprintf(el, sizeof el,
                 "    generator: {mode: constant_voltage, voltage_V: 10}\n"
                 "    electrodes:\n"
                 "      - {tip_mm: [0, 0, -10], direction: [0, 0, 1], active_length_mm: 20%s}\n",
                 wet[q]);
        abl_scenario *sc = rfa_scenario_dt(41, 1.0, 0.5, "0.5", el, NULL);
        abl_source_series ser;
        abl_sim *s = run_series(sc, 0.5, &ser);
        Z[q] = ser.rows[ser.ncol * 0 + 4]; /* impedance_Ohm at t = 0 */
        sim_destroy(s);
        scenario_free(sc);
    }
    printf("\n  impedance at t = 0: dry %.2f, infusion not started %.2f, 1 mL of 0.9 %% NaCl "
           "%.2f, of 5 %% %.2f, 2 mL of 5 %% %.2f Ohm",
           Z[0], Z[1], Z[2], Z[3], Z[4]);
    CU_ASSERT(Z[1] == Z[0]);
    CU_ASSERT(Z[2] < Z[0] && Z[3] < Z[2] && Z[4] < Z[3]);
    /* Series resistances: the dry impedance is the spreading resistance from the electrode
     * out; replacing the tissue of the capsule (radius r) by a better conductor can at most
     * remove the part of it inside the capsule. A cylinder of length L: R(a -> r) = ln(r/a) /
     * (2 pi sigma L) at most (the end caps conduct in parallel and lower it). With the
     * mixture's sigma_m = (1 - f) sigma_t + f sigma_fluid the capsule part becomes
     * ln(r/a) / (2 pi sigma_m L): the wet impedance may not fall below Z_dry minus the dry part
     * plus the wet part, with the dry part at its cylinder bound. This checks that the fluid
     * acts inside the capsule and nowhere else (a change applied to the whole box would break
     * it). The lower bound, half of it: the capsule's own share of the dry resistance is most
     * of the bound here (r 9 mm around a 20 mm tip), so a capsule much smaller than V/f, or
     * one away from the active segment, would remove far less. */
    const double sig_t = 0.1459; /* liver at 37 C (configs/tissues.yaml) */
    const double r1 = rfa_wet_radius_m(1e-6, f, a, 20e-3); /* 1 mL at t = 0 */
    const double sm = (1.0 - f) * sig_t + f * 9.4;
    const double drop_max = log(r1 / a) / (2.0 * PI_ * 20e-3) * (1.0 / sig_t - 1.0 / sm);
    printf("; 5 %% drop %.2f Ohm, capsule bound %.2f Ohm", Z[0] - Z[3], drop_max);
    /* 10 % above: the field outside the capsule redistributes a little (second order) */
    CU_ASSERT(Z[0] - Z[3] <= drop_max * 1.1);
    CU_ASSERT(Z[0] - Z[3] >= drop_max * 0.5);
}

/* The generator's delivered energy is exactly what the driver applied: a constant 3 W for 60 s
 * is 180 J (JSON sources.rfa.energy_J = the driver's E_sources_J to rounding), with the
 * explicit step (1.07 s) and with 5 s Crank-Nicolson steps. Before session 27 it was the
 * trapezoid over the rows' start times: 176.8 J and 165 J (the last step left out; a physics
 * test). Bound 1e-9 relative: sums of 56 and 12 equal products. */
static void test_energy_exact(void)
{
    char dir[600], scen[800], errf[800], cmd[2400];
    tu_subdir(dir, sizeof dir, "rfa_energy_exact");
    snprintf(scen, sizeof scen, "%s/e.yaml", dir);
    snprintf(errf, sizeof errf, "%s/err.txt", dir);
    char text[1200];
    snprintf(text, sizeof text,
             "name: e\ntissues_file: %s/configs/tissues.yaml\n"
             "grid: {dims: [30, 30, 34], spacing_mm: [1, 1, 1], background: liver}\n"
             "boundary: {default: {type: fixed_temperature, temperature_C: 37}}\n"
             "time: {duration_s: 60}\n"
             "sources:\n  - name: rfa\n    type: rfa\n    ground: faces\n"
             "    generator: {mode: constant_power, power_W: 3}\n"
             "    electrodes:\n      - {type: straight, tip_mm: [0, 0, -8], direction: [0, 0, "
             "1], active_length_mm: 15, diameter_mm: 1.5}\n"
             "output: {snapshot_interval_s: 0, energy_balance: true}\n",
             tu_root());
    tu_spit(scen, text);
    const char *sets[2] = {"", "--set time.dt_s=5 --set time.scheme=crank_nicolson"};
    for (int i = 0; i < 2; i++) {
        char out[800], json[800];
        snprintf(out, sizeof out, "%s/e%d.h5", dir, i);
        snprintf(json, sizeof json, "%s/e%d.json", dir, i);
        snprintf(cmd, sizeof cmd, "'%s' run '%s' -o '%s' -q %s", tu_bin(), scen, out, sets[i]);
        CU_ASSERT_EQUAL_FATAL(tu_run(cmd, NULL, errf), 0);
        char *j = tu_slurp(json);
        const char *a = j ? strstr(j, "\"rfa\": {") : NULL;
        const char *e = a ? strstr(a, "\"energy_J\": ") : NULL;
        CU_ASSERT_FATAL(e != NULL);
        const double E = strtod(e + strlen("\"energy_J\": "), NULL);
        printf("\n  3 W for 60 s (%s): energy_J %.12g J", i ? "Crank-Nicolson, 5 s" : "explicit",
               E);
        CU_ASSERT(fabs(E - 180.0) <= 1e-9 * 180.0);
        free(j);
    }
}

void register_rfa_tests(void)
{
    CU_pSuite s = CU_add_suite("rfa", NULL, NULL);
    CU_add_test(s, "delivered energy = what the driver applied (power x step)", test_energy_exact);
    CU_add_test(s, "sigma(T) piecewise model", test_sigma_model);
    CU_add_test(s, "concentric spheres: error and observed order", test_sphere_order);
    CU_add_test(s, "metal sphere, far grounded box: V ~ a/r", test_sphere_far_ground);
    CU_add_test(s, "metal sphere, open box (ground: far): V = a/r, box-independent",
                test_sphere_open_box);
    CU_add_test(s, "sum q V = V0 I (straight, expandable, cluster; cold, boiling)",
                test_power_identity);
    CU_add_test(s, "electrodes cover every voxel their line crosses (1 mm)", test_rasterise);
    CU_add_test(s, "straight electrode: impedance independent of grid alignment",
                test_alignment_impedance);
    CU_add_test(s, "electrode size from the kit: gauge 17 = 1.4732 mm", test_gauge_key);
    CU_add_test(s, "bipolar pair: mirror-symmetric heat, P = V I, grounds lower Z", test_bipolar);
    CU_add_test(s, "expandable electrode: 55 C zone independent of grid alignment",
                test_alignment_tines);
    CU_add_test(s, "cooled electrode: 55 C zone independent of grid alignment",
                test_alignment_zone);
    CU_add_test(s, "cooled electrode: tissue beside it stays plausible (1 and 2 mm)",
                test_cooled_plausible);
    CU_add_test(s, "constant power exact, P = V I, while impedance varies", test_constant_power);
    CU_add_test(s, "temperature control holds the setpoint", test_temperature_control);
    CU_add_test(s, "roll-off: impedance > 10x within seconds of 100 C", test_rolloff);
    CU_add_test(s, "impedance pulsing: pauses of pause_s at zero power", test_impedance_pulsing);
    CU_add_test(s, "sequential switching follows the interval", test_sequential);
    CU_add_test(s, "impedance switching: the 30 Ohm trigger exactly, turns in order, longest turn",
                test_impedance_switching);
    CU_add_test(s, "perfusion shutdown enlarges the ablated volume", test_perfusion_shutdown);
    CU_add_test(s, "heat independent of the thread count", test_thread_determinism);
    CU_add_test(s, "wet electrode: capsule volume, impedance at t = 0", test_wet_electrode);
    CU_add_test(s, "switching bipolar: pairs in turn, V I, a pair = its plain bipolar source",
                test_bipolar_pairs);
}
