/* test_kernels.c - the operator on a hand-computed case, fast path vs general path, stability
 * limit, and thread-count independence. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "../../src/kernels/stencil_ops.h" /* the per-voxel reference operator */

/* Heterogeneous scenario used by several tests: tumour, vessel, three boundary types, a
 * volumetric source with a power schedule and a fixed-temperature probe. */
const char *hetero_yaml =
    "name: hetero\n"
    "grid:\n"
    "  dims: [40, 36, 32]\n"
    "  spacing_mm: [1.0, 1.25, 1.5]\n"
    "  background: liver\n"
    "  shapes:\n"
    "    - {type: sphere, center_mm: [0, 0, 0], radius_mm: 8, tissue: tumour}\n"
    "    - {type: cylinder, start_mm: [-30, 10, -30], end_mm: [30, 10, 30], radius_mm: 3,\n"
    "       tissue: blood}\n"
    "    - {type: box, min_mm: [-20, -22, -24], max_mm: [20, -15, 24], tissue: fat}\n"
    "    - {type: ellipsoid, center_mm: [12, -6, 4], radii_mm: [3, 5, 4], tissue: muscle}\n"
    "boundary:\n"
    "  default: {type: fixed_temperature, temperature_C: 37}\n"
    "  x_max: {type: insulated}\n"
    "  z_min: {type: convective, h_W_per_m2K: 50, temperature_C: 20}\n"
    "time: {duration_s: 60}\n"
    "sources:\n"
    "  - name: heater\n"
    "    type: volumetric\n"
    "    shape: {type: cylinder, start_mm: [0, 0, -4], end_mm: [0, 0, 4], radius_mm: 2}\n"
    "    schedule: [{time_s: 0, power_W: 0}, {time_s: 20, power_W: 15}, {time_s: 40, power_W: 15},\n"
    "               {time_s: 40, power_W: 5}]\n"
    "  - name: probe\n"
    "    type: fixed_temperature\n"
    "    shape: {type: cylinder, start_mm: [-8, -8, -10], end_mm: [-8, -8, 10], radius_mm: 1.2}\n"
    "    schedule: [{time_s: 0, temperature_C: 37}, {time_s: 10, temperature_C: 10}]\n"
    "output: {energy_balance: true, monitor_interval_s: 0}\n";

/* 3x3x3 grid, one tissue, every face fixed at 37 C except x_min at 47 C: the centre voxel
 * (pure interior) and a corner voxel computed by hand from the formula in kernels.h. */
static void test_operator_hand(void)
{
    const char *yaml =
        "tissues:\n"
        "  t: {density_kg_per_m3: 1000, specific_heat_J_per_kgK: 4000,\n"
        "      thermal_conductivity_W_per_mK: 0.5, perfusion_per_s: 0.01,\n"
        "      metabolic_heat_W_per_m3: 1000}\n"
        "grid: {dims: [3, 3, 3], spacing_mm: [1, 2, 4], background: t}\n"
        "boundary:\n"
        "  default: {type: fixed_temperature, temperature_C: 37}\n"
        "  x_min: {type: fixed_temperature, temperature_C: 47}\n"
        "time: {duration_s: 1}\n";
    abl_scenario *sc = tu_scenario(yaml, NULL, 0);
    CU_ASSERT_FATAL(sc != NULL);
    abl_sim *s = tu_sim(sc);
    const abl_grid *g = &s->grid;
    for (size_t c = 0; c < g->n; c++) s->T[c] = 30.0 + (double)c; /* distinct values */
    double *rhs = malloc(g->n * sizeof *rhs);
    pennes_rhs(&s->st, s->T, rhs);
    const double k = 0.5, W = 0.01 * 1050 * 3617, Qm = 1000, Ta = 37;
    const double hx = 1e-3, hy = 2e-3, hz = 4e-3;
    /* centre voxel c = 13: neighbours 12, 14 (x), 10, 16 (y), 4, 22 (z) */
    const double *T = s->T;
    double expect = k / (hx * hx) * (T[12] + T[14] - 2 * T[13]) +
                    k / (hy * hy) * (T[10] + T[16] - 2 * T[13]) +
                    k / (hz * hz) * (T[4] + T[22] - 2 * T[13]) + W * (Ta - T[13]) + Qm;
    CU_ASSERT_DOUBLE_EQUAL(rhs[13], expect, 1e-9 * fabs(expect));
    /* corner voxel 0: x_min face at 47 C and y_min, z_min faces at 37 C, half a voxel away */
    expect = k / (hx * hx) * (T[1] - T[0]) + 2 * k / (hx * hx) * (47 - T[0]) +
             k / (hy * hy) * (T[3] - T[0]) + 2 * k / (hy * hy) * (37 - T[0]) +
             k / (hz * hz) * (T[9] - T[0]) + 2 * k / (hz * hz) * (37 - T[0]) + W * (Ta - T[0]) + Qm;
    CU_ASSERT_DOUBLE_EQUAL(rhs[0], expect, 1e-9 * fabs(expect));
    free(rhs);
    sim_destroy(s);
    scenario_free(sc);
}

/* Interface voxel: harmonic mean conductivity k_f = 2 k1 k2 / (k1 + k2). */
static void test_harmonic_face(void)
{
    const char *yaml =
        "tissues:\n"
        "  a: {density_kg_per_m3: 1000, specific_heat_J_per_kgK: 4000,\n"
        "      thermal_conductivity_W_per_mK: 0.5, perfusion_per_s: 0, metabolic_heat_W_per_m3: 0}\n"
        "  b: {density_kg_per_m3: 1000, specific_heat_J_per_kgK: 4000,\n"
        "      thermal_conductivity_W_per_mK: 2.5, perfusion_per_s: 0, metabolic_heat_W_per_m3: 0}\n"
        "grid: {dims: [2, 1, 1], spacing_mm: [1, 1, 1], background: a,\n"
        "       shapes: [{type: box, min_mm: [0, -1, -1], max_mm: [1, 1, 1], tissue: b}]}\n"
        "boundary: {default: {type: insulated}}\n"
        "time: {duration_s: 1}\n";
    abl_scenario *sc = tu_scenario(yaml, NULL, 0);
    CU_ASSERT_FATAL(sc != NULL);
    abl_sim *s = tu_sim(sc);
    CU_ASSERT_EQUAL(s->nmat, 2);
    s->T[0] = 40;
    s->T[1] = 30;
    double rhs[2];
    pennes_rhs(&s->st, s->T, rhs);
    const double kf = 2 * 0.5 * 2.5 / 3.0;
    CU_ASSERT_DOUBLE_EQUAL(rhs[0], kf / 1e-6 * (30 - 40), 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(rhs[1], kf / 1e-6 * (40 - 30), 1e-6);
    sim_destroy(s);
    scenario_free(sc);
}

/* The conductance definitions of kernels.h, each form exactly the expression its paths used
 * before (compared bitwise, ==), and the driver's tables built from them. */
static void test_conductance_forms(void)
{
    const double ks[] = {0.01, 0.2, 0.52, 0.5 + 1e-9, 2.5, 10.0},
                 hs[] = {1e-3, 0.7e-3, 0.3e-3, 2.1e-3};
    for (size_t a = 0; a < 6; a++)
        for (size_t b = 0; b < 6; b++)
            for (size_t q = 0; q < 4; q++) {
                const double ka = ks[a], kb = ks[b], h = hs[q], h2 = h * h, ih2 = 1.0 / h2;
                CU_ASSERT(abl_face_conductance_div(ka, kb, h2) == 2.0 * ka * kb / (ka + kb) / h2);
                CU_ASSERT(abl_face_conductance(ka, kb, ih2) == 2.0 * ka * kb / (ka + kb) * ih2);
                CU_ASSERT(abl_wall_conductance(ka, ih2) == 2.0 * ka * ih2);
                CU_ASSERT(pennes_boundary_conductance(BC_FIXED_TEMPERATURE, 0, ka, h) ==
                          2.0 * ka / (h * h));
                CU_ASSERT(pennes_boundary_conductance(BC_CONVECTIVE, 5 + kb, ka, h) ==
                          (1.0 / h) / (1.0 / (5 + kb) + h / (2.0 * ka)));
                CU_ASSERT(pennes_boundary_conductance(BC_INSULATED, 5, ka, h) == 0.0);
            }
    CU_ASSERT(abl_face_conductance_div(0, 0, 1e-6) == 0.0);
    /* the two-material grid of test_harmonic_face: its tables are the divide form */
    const char *yaml =
        "tissues:\n"
        "  a: {density_kg_per_m3: 1000, specific_heat_J_per_kgK: 4000,\n"
        "      thermal_conductivity_W_per_mK: 0.5, perfusion_per_s: 0, metabolic_heat_W_per_m3: "
        "0}\n"
        "  b: {density_kg_per_m3: 1000, specific_heat_J_per_kgK: 4000,\n"
        "      thermal_conductivity_W_per_mK: 2.5, perfusion_per_s: 0, metabolic_heat_W_per_m3: "
        "0}\n"
        "grid: {dims: [2, 1, 1], spacing_mm: [0.7, 1, 0.3], background: a,\n"
        "       shapes: [{type: box, min_mm: [0, -1, -1], max_mm: [1, 1, 1], tissue: b}]}\n"
        "boundary: {default: {type: fixed_temperature, temperature_C: 37}}\n"
        "time: {duration_s: 1}\n";
    abl_scenario *sc = tu_scenario(yaml, NULL, 0);
    CU_ASSERT_FATAL(sc != NULL);
    abl_sim *s = tu_sim(sc);
    const int nm = s->nmat;
    for (int d = 0; d < 3; d++) {
        const double h2 = s->grid.h_m[d] * s->grid.h_m[d];
        for (int a = 0; a < nm; a++)
            for (int b = 0; b < nm; b++) {
                const double ka = s->k37[a], kb = s->k37[b];
                CU_ASSERT(s->gface[((size_t)d * nm + a) * nm + b] ==
                          abl_face_conductance_div(ka, kb, h2));
            }
        for (int m = 0; m < nm; m++)
            CU_ASSERT(s->gbound[(size_t)(2 * d) * nm + m] ==
                      abl_wall_conductance_div(s->k37[m], h2));
    }
    sim_destroy(s);
    scenario_free(sc);
}

/* The same-tissue fast path and the general path compute the same update. They differ only in
 * the order of floating-point operations: agreement to 1e-12 K on ~40 C values (a few ulps). */
static void test_fast_vs_general(void)
{
    abl_scenario *sc = tu_scenario(hetero_yaml, NULL, 0);
    CU_ASSERT_FATAL(sc != NULL);
    abl_sim *s = tu_sim(sc);
    const abl_grid *g = &s->grid;
    size_t nfast = 0;
    for (size_t c = 0; c < g->n; c++) {
        s->T[c] = 37 + 20 * sin(0.37 * (double)c) * cos(0.011 * (double)c);
        nfast += s->cls[c] != ABL_CLS_GENERAL;
    }
    CU_ASSERT(nfast > g->n / 2); /* the fast path is exercised */
    CU_ASSERT(nfast < g->n);     /* and so is the general one */
    double *a = malloc(g->n * sizeof *a), *b = malloc(g->n * sizeof *b);
    pennes_explicit_step(&s->st, s->T, a);
    pennes_explicit_step_general(&s->st, s->T, b);
    double d = tu_maxdiff(a, b, g->n);
    printf("\n  fast vs general path: max |diff| = %.2e K\n", d);
    CU_ASSERT(d < 1e-12);
    /* the plan stores each distinct coefficient record once (stencil_plan_build): no two
     * records are equal, and the general runs share them (this grid's interfaces repeat the
     * same few material pairs and faces, so far fewer records than runs) */
    size_t nruns = 0;
    for (size_t q = 0; q < s->nseg; q++) nruns += s->seg[q].mat < 0;
    size_t dup = 0;
    for (size_t a1 = 0; a1 < s->ngen; a1++)
        for (size_t b1 = a1 + 1; b1 < s->ngen; b1++)
            dup += !memcmp(&s->gen[a1], &s->gen[b1], sizeof s->gen[a1]);
    printf("  plan: %zu general runs share %zu distinct records\n", nruns, s->ngen);
    CU_ASSERT(dup == 0);
    CU_ASSERT(s->ngen > 0 && 4 * s->ngen < nruns);
    free(a);
    free(b);
    sim_destroy(s);
    scenario_free(sc);
}

/* The variable-property sweep (per-voxel k and W: temperature-dependent tissue, frozen tissue)
 * vectorises the interior of each row and takes the general per-voxel operator on rows touching
 * a domain face; it must equal, bit for bit, T + dt/(rho c) * pennes_op_var evaluated voxel by
 * voxel (the same expression in the same order), on the heterogeneous grid with per-voxel k
 * varying by 10x and every kind of domain face. */
static void test_var_sweep_vs_operator(void)
{
    abl_scenario *sc = tu_scenario(hetero_yaml, NULL, 0);
    CU_ASSERT_FATAL(sc != NULL);
    abl_sim *s = tu_sim(sc);
    const abl_grid *g = &s->grid;
    double *kv = malloc(g->n * sizeof *kv), *Wv = malloc(g->n * sizeof *Wv);
    double *a = malloc(g->n * sizeof *a), *b = malloc(g->n * sizeof *b);
    CU_ASSERT_FATAL(kv && Wv && a && b);
    for (size_t c = 0; c < g->n; c++) {
        s->T[c] = 37 + 20 * sin(0.37 * (double)c) * cos(0.011 * (double)c);
        kv[c] = 0.2 + 1.8 * (0.5 + 0.5 * sin(0.71 * (double)c)); /* 0.2 .. 2.0 W/m/K */
        Wv[c] = 3e4 * (0.5 + 0.5 * cos(0.29 * (double)c));
    }
    pennes_explicit_step_var(&s->st, kv, Wv, s->T, a);
    for (int k = 0; k < g->nz; k++)
        for (int j = 0; j < g->ny; j++)
            for (int i = 0; i < g->nx; i++) {
                const size_t c = ABL_IDX(g, i, j, k);
                b[c] = s->T[c] + s->st.dt_s * s->st.inv_rhoc[s->st.material[c]] *
                                     pennes_op_var(&s->st, kv, Wv, s->T, i, j, k, c);
            }
    CU_ASSERT(memcmp(a, b, g->n * sizeof *a) == 0);
    printf("\n  variable-property sweep vs per-voxel operator: max |diff| = %.2e K",
           tu_maxdiff(a, b, g->n));
    free(kv);
    free(Wv);
    free(a);
    free(b);
    sim_destroy(s);
    scenario_free(sc);
}

/* Same input, 1 and 2 threads: bitwise identical T_max, T and energy sums. */
static void test_thread_determinism(void)
{
    double *tmax[2] = {NULL, NULL}, *T[2] = {NULL, NULL};
    double esrc[2] = {0, 0}, ebnd[2] = {0, 0};
    size_t n = 0;
    int saved = omp_get_max_threads();
    for (int r = 0; r < 2; r++) {
        CU_ASSERT_EQUAL(tu_set_threads(r + 1), r + 1); /* two threads really ran */
        abl_scenario *sc = tu_scenario(hetero_yaml, NULL, 0);
        CU_ASSERT_FATAL(sc != NULL);
        abl_error err = {0};
        abl_sim *s = tu_sim(sc);
        CU_ASSERT_FATAL(sim_step(s, 200, &err) == ABL_OK);
        n = s->grid.n;
        tmax[r] = malloc(n * sizeof(double));
        T[r] = malloc(n * sizeof(double));
        memcpy(tmax[r], s->T_max, n * sizeof(double));
        memcpy(T[r], s->T, n * sizeof(double));
        esrc[r] = s->energy.E_sources_J;
        ebnd[r] = s->energy.E_boundary_in_J;
        sim_destroy(s);
        scenario_free(sc);
    }
    omp_set_num_threads(saved);
    CU_ASSERT(memcmp(tmax[0], tmax[1], n * sizeof(double)) == 0);
    CU_ASSERT(memcmp(T[0], T[1], n * sizeof(double)) == 0);
    CU_ASSERT(memcmp(&esrc[0], &esrc[1], sizeof(double)) == 0);
    CU_ASSERT(memcmp(&ebnd[0], &ebnd[1], sizeof(double)) == 0);
    for (int r = 0; r < 2; r++) {
        free(tmax[r]);
        free(T[r]);
    }
}

/* The automatic dt stays within the safety factor (0.9) of the explicit stability limit, and a
 * user dt above the limit (1.5x) is refused before any step, naming the limit. (That a dt above
 * the limit would diverge is the maximum principle's bound, docs/VERIFICATION.md; the explicit
 * runs of the analytic suites are the evidence that dt at the bound does not.) */
static void test_stability_limit(void)
{
    abl_scenario *sc = tu_scenario(hetero_yaml, NULL, 0);
    CU_ASSERT_FATAL(sc != NULL);
    abl_error err = {0};
    abl_sim *s = tu_sim(sc);
    CU_ASSERT(s->dt_s <= 0.9 * s->dt_stable_s * (1 + 1e-12));
    char set[64];
    snprintf(set, sizeof set, "time.dt_s=%.6g", s->dt_stable_s * 1.5);
    const char *sets[] = {set};
    sim_destroy(s);
    scenario_free(sc);
    sc = tu_scenario(hetero_yaml, sets, 1);
    CU_ASSERT_FATAL(sc != NULL);
    CU_ASSERT(sim_create(sc, &s, &err) == ABL_EINVAL);
    CU_ASSERT(strstr(err.msg, "stability limit") != NULL);
    scenario_free(sc);
}

/* A fixed-temperature probe holds its voxels only inside [on_s, off_s): before, it is not yet
 * pinned; after, it is released and cools. */
static void test_source_window(void)
{
    const char *yaml =
        "grid: {dims: [12, 12, 12], spacing_mm: [1, 1, 1], background: liver}\n"
        "time: {duration_s: 20, dt_s: 0.5}\n"
        "sources:\n"
        "  - {type: fixed_temperature, temperature_C: 80, on_s: 5, off_s: 10,\n"
        "     shape: {type: sphere, center_mm: [0, 0, 0], radius_mm: 1.5}}\n";
    abl_scenario *sc = tu_scenario(yaml, NULL, 0);
    CU_ASSERT_FATAL(sc != NULL);
    abl_error err = {0};
    abl_sim *s = tu_sim(sc);
    size_t centre = ABL_IDX(&s->grid, 6, 6, 6);
    CU_ASSERT_FATAL(sim_step(s, 8, &err) == ABL_OK); /* t = 4 s: not yet on */
    CU_ASSERT(s->T[centre] < 40.0);
    CU_ASSERT_FATAL(sim_step(s, 10, &err) == ABL_OK); /* t = 9 s: held */
    CU_ASSERT_DOUBLE_EQUAL(s->T[centre], 80.0, 0.0);
    CU_ASSERT_FATAL(sim_step(s, 10, &err) == ABL_OK); /* t = 14 s: released, cooling */
    CU_ASSERT(s->T[centre] < 79.0);
    CU_ASSERT(s->T_max[centre] == 80.0);
    sim_destroy(s);
    scenario_free(sc);
}

/* monitor_update (kernels.h) against a plain per-voxel reference written from its contract:
 * T_max/T_min, time at or above each hot / at or below each cold threshold, Arrhenius and CEM43
 * (Sapareto & Dewey 1984) damage, and the lowest faulty voxel. The field spans several monitor
 * blocks (512 voxels) with blocks that reach no threshold, some, and all of them, so the per-block
 * skips and the vectorised threshold loops are all exercised. Exact equality: every map is a
 * per-voxel expression evaluated the same way (the reference repeats the same operations). */
static void test_monitor_reference(void)
{
    const size_t n = 5 * 512 + 77;
    const double hot[3] = {50.0, 55.0, 60.0}, cold[2] = {0.0, -40.0};
    double *T = malloc(n * sizeof *T), *Tmax = malloc(n * sizeof *Tmax),
           *Tmin = malloc(n * sizeof *Tmin), *om = calloc(n, sizeof *om),
           *cem = calloc(n, sizeof *cem), *rom = calloc(n, sizeof *rom),
           *rcem = calloc(n, sizeof *rcem);
    float *th[3], *tc[2], *rth[3], *rtc[2];
    for (int h = 0; h < 3; h++) th[h] = calloc(n, sizeof(float)), rth[h] = calloc(n, sizeof(float));
    for (int h = 0; h < 2; h++) tc[h] = calloc(n, sizeof(float)), rtc[h] = calloc(n, sizeof(float));
    uint8_t *mat = calloc(n, 1);
    const double A[2] = {7.39e39, 0.0}, Ea[2] = {2.577e5, 0.0}; /* material 1: no damage set */
    for (size_t c = 0; c < n; c++) {
        mat[c] = (uint8_t)(c % 7 == 0);
        Tmax[c] = Tmin[c] = 37.0;
    }
    const abl_damage_maps dmg = {mat, A, Ea, 50.0, om, cem};
    const double iv = 0.25;
    for (int step = 0; step < 6; step++) {
        for (size_t c = 0; c < n; c++) {
            const size_t b = c / 512;
            /* block 0: 37 C only; 1: heating to ~70 C; 2: freezing to ~-60 C; 3: both; 4: a
             * sweep through every threshold; 5 (77 voxels): odd ones 50.01..50.75 C, just
             * reaching the lowest hot threshold, even ones -40.00..-39.24 C, just reaching the
             * coldest cold one (a block skip with any slack misses them; -40.0 tests "<=") */
            const double u = (double)(c % 512) / 512.0, s = 1.0 + step;
            T[c] = b == 0   ? 37.0
                   : b == 1 ? 37.0 + 5.5 * s * u
                   : b == 2 ? 37.0 - 16.0 * s * u
                   : b == 3 ? (c % 2 ? 37.0 + 5.5 * s * u : 37.0 - 16.0 * s * u)
                   : b == 4 ? -80.0 + 160.0 * u * (0.5 + 0.1 * s)
                            : (c % 2 ? 50.0 : -40.0) + 0.01 * (double)(c % 512);
        }
        size_t bad = monitor_update(-100.0, 200.0, n, T, Tmax, Tmin, 3, hot, th, 2, cold, tc, iv,
                                    &dmg);
        CU_ASSERT(bad == (size_t)-1);
        for (size_t c = 0; c < n; c++) {
            const double t = T[c];
            for (int h = 0; h < 3; h++)
                if (t >= hot[h]) rth[h][c] += (float)iv;
            for (int h = 0; h < 2; h++)
                if (t <= cold[h]) rtc[h][c] += (float)iv;
            if (t >= 39.0) {
                rcem[c] += iv / 60.0 * (t >= 43.0 ? exp2(t - 43.0) : exp2(-2.0 * (43.0 - t)));
                if (t >= 50.0 && A[mat[c]] > 0)
                    rom[c] = fmin(rom[c] + A[mat[c]] * exp(-Ea[mat[c]] / (8.314 * (t + 273.15))) * iv,
                                  1e30);
            }
        }
    }
    size_t wrong = 0, hits_hot = 0, hits_cold = 0;
    double tmax_ref = -INFINITY, tmin_ref = INFINITY;
    for (size_t c = 0; c < n; c++) {
        for (int h = 0; h < 3; h++) wrong += th[h][c] != rth[h][c], hits_hot += rth[h][c] > 0;
        for (int h = 0; h < 2; h++) wrong += tc[h][c] != rtc[h][c], hits_cold += rtc[h][c] > 0;
        wrong += om[c] != rom[c];
        wrong += cem[c] != rcem[c];
        tmax_ref = fmax(tmax_ref, Tmax[c]);
        tmin_ref = fmin(tmin_ref, Tmin[c]);
    }
    CU_ASSERT_EQUAL(wrong, 0);
    /* the field reached every map (else the comparison above tests nothing) */
    CU_ASSERT(hits_hot > 500 && hits_cold > 500);
    CU_ASSERT(rtc[1][5 * 512] == (float)(6 * iv)); /* -40.0 C at every step: counted (<=) */
    CU_ASSERT(rth[0][5 * 512 + 1] == (float)(6 * iv));
    CU_ASSERT(tmax_ref > 60.0 && tmin_ref < -40.0);
    /* T_max / T_min: the running extremes of the six fields (the last is the largest sweep) */
    CU_ASSERT_DOUBLE_EQUAL(Tmax[4 * 512 + 511], -80.0 + 160.0 * (511.0 / 512.0) * 1.1, 0.0);
    CU_ASSERT_DOUBLE_EQUAL(Tmin[0], 37.0, 0.0);
    /* a fault: NaN and an out-of-range value; the lowest index is reported and T_max/T_min keep
     * their values at the NaN */
    const double keep = Tmax[1000];
    T[1000] = NAN;
    T[1700] = 500.0;
    CU_ASSERT_EQUAL(monitor_update(-100.0, 200.0, n, T, Tmax, Tmin, 3, hot, th, 2, cold, tc, iv, NULL),
                    1000);
    CU_ASSERT_DOUBLE_EQUAL(Tmax[1000], keep, 0.0);
    T[1000] = 37.0;
    CU_ASSERT_EQUAL(monitor_update(-100.0, 200.0, n, T, Tmax, Tmin, 3, hot, th, 2, cold, tc, iv, NULL),
                    1700);
    for (int h = 0; h < 3; h++) free(th[h]), free(rth[h]);
    for (int h = 0; h < 2; h++) free(tc[h]), free(rtc[h]);
    free(T), free(Tmax), free(Tmin), free(om), free(cem), free(rom), free(rcem), free(mat);
}

void register_kernel_tests(void)
{
    CU_pSuite s = CU_add_suite("kernels", NULL, NULL);
    CU_add_test(s, "operator on a hand-computed 3x3x3 case", test_operator_hand);
    CU_add_test(s, "harmonic-mean face conductivity", test_harmonic_face);
    CU_add_test(s, "conductance definitions: each form bitwise its paths' expression",
                test_conductance_forms);
    CU_add_test(s, "fast path equals general path", test_fast_vs_general);
    CU_add_test(s, "variable-property sweep equals the per-voxel operator bitwise",
                test_var_sweep_vs_operator);
    CU_add_test(s, "1 and 2 threads bitwise identical", test_thread_determinism);
    CU_add_test(s, "explicit stability limit enforced", test_stability_limit);
    CU_add_test(s, "source on/off window", test_source_window);
    CU_add_test(s, "running maps and damage equal a per-voxel reference", test_monitor_reference);
}
