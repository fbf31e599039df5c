/* test_vessel.c - the convective vessel wall (src/sources/vessel.c, docs/VESSEL.md). */
#include <CUnit/CUnit.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ablasim/sim.h"
#include "testutil.h"

/* A 1-D bar of unperfused liver, 25 voxels of 1 mm, held at 80 C at x_min, ending on a lumen of
 * blood (5 voxels) at 37 C with a convective film: every other face insulated. The steady state
 * is linear in the tissue with the flux q = (80 - 37) / (L/k + 1/h_conv), L = 25 mm from the
 * held face to the lumen wall, h_conv = Nu k_blood / D. The finite volumes are exact for a
 * linear profile (the wall conductances 2k/h at the held face, k/h^2 between voxels, and the
 * lumen face's series of half a voxel and the film), so at steady state the voxel temperatures
 * equal 80 - q (i + 1/2) h / k to round-off and convergence: asserted to 1e-6 K after 40 000 s
 * (10^-7 of the slowest mode left: time constant 4 L^2/(pi^2 alpha) ~ 1900 s). The vessel's
 * reported power equals q h^2 to 1e-6. Two vessels: laminar (D 10 mm, 0.1 m/s: Re 300,
 * Nu 4.36) and turbulent (D 10 mm, 1.0 m/s: Re 3000, Dittus-Boelter). */
static void bar_case(double v_m_s, double nu_expect)
{
    char yaml[2048];
    snprintf(yaml, sizeof yaml,
             "name: vessel_bar\n"
             "tissues_file: tissues.yaml\n"
             "tissues: {liver: {perfusion_per_s: 0, metabolic_heat_W_per_m3: 0}}\n"
             "grid: {dims: [30, 1, 1], spacing_mm: [1, 1, 1], origin_mm: [0, 0, 0],\n"
             "       background: liver,\n"
             "       shapes: [{type: box, min_mm: [24.5, -1, -1], max_mm: [30, 1, 1], "
             "tissue: blood}]}\n"
             "physics: {vaporisation: off}\n"
             "boundary:\n"
             "  default: {type: insulated}\n"
             "  x_min: {type: fixed_temperature, temperature_C: 80}\n"
             "time: {duration_s: 40000, dt_s: auto}\n"
             "output: {snapshot_interval_s: 0, monitor_interval_s: 1000}\n"
             "sources:\n"
             "  - {name: vein, type: vessel, diameter_mm: 10, mean_velocity_m_per_s: %g}\n",
             v_m_s);
    abl_scenario *sc = tu_scenario(yaml, NULL, 0);
    CU_ASSERT_FATAL(sc != NULL);
    abl_sim *s = tu_sim(sc);
    abl_error err = {0};
    CU_ASSERT_FATAL(sim_step(s, s->nsteps_total, &err) == ABL_OK);
    const abl_tissue *li = &sc->tissues.t[tissue_table_find(&sc->tissues, "liver")];
    const abl_tissue *bl = &sc->tissues.t[tissue_table_find(&sc->tissues, "blood")];
    const double D = 10e-3, mu = 0.0035, h = 1e-3, k = li->k_W_mK;
    const double Re = bl->rho_kg_m3 * v_m_s * D / mu, Pr = mu * bl->c_J_kgK / bl->k_W_mK;
    const double Nu = Re < 2300 ? 4.36 : 0.023 * pow(Re, 0.8) * pow(Pr, 0.4);
    const double hc = Nu * bl->k_W_mK / D, q = (80.0 - 37.0) / (25 * h / k + 1.0 / hc);
    double worst = 0.0;
    for (int i = 0; i < 25; i++)
        worst = fmax(worst, fabs(s->T[i] - (80.0 - q * (i + 0.5) * h / k)));
    abl_source_series ser;
    s->sources[0]->ops->series(s->sources[0], &ser);
    CU_ASSERT_FATAL(ser.nrow > 0);
    const double P = ser.rows[(ser.nrow - 1) * ser.ncol + 1];
    printf("\n  vessel bar, %.1f m/s: Re %.0f, Nu %.2f, h_conv %.0f W/m^2K, flux %.1f W/m^2; "
           "worst |T - exact| %.1e K, power %.6g W vs q h^2 %.6g W",
           v_m_s, Re, Nu, hc, q, worst, P, q * h * h);
    CU_ASSERT(fabs(Nu - nu_expect) < 0.01 * nu_expect);
    CU_ASSERT(worst < 1e-6);
    CU_ASSERT(fabs(P - q * h * h) <= 1e-6 * q * h * h);
    sim_destroy(s);
    scenario_free(sc);
}

static void test_bar(void)
{
    bar_case(0.1, 4.36);
    /* Re = 1049.75 * 1.0 * 0.01 / 0.0035 = 2999, Pr = 0.0035 * 3617 / 0.5169 = 24.5:
     * Nu = 0.023 Re^0.8 Pr^0.4 = 0.023 * 605.6 * 3.59 = 50.0 */
    bar_case(1.0, 50.0);
}

/* The vessel is a sink beside another source: an RFA electrode's Joule heat reaches the blood
 * (the lumen conducts current) and is taken by it, not refused as a contradiction; and the
 * vessel source's own errors name the key. */
static void test_with_rfa_and_errors(void)
{
    const char *yaml =
        "name: vessel_rfa\n"
        "tissues_file: tissues.yaml\n"
        "grid: {dims: [24, 24, 24], spacing_mm: [1, 1, 1], background: liver,\n"
        "       shapes: [{type: cylinder, start_mm: [4, 0, -12], end_mm: [4, 0, 12], "
        "radius_mm: 2, tissue: blood}]}\n"
        "boundary: {default: {type: fixed_temperature, temperature_C: 37}}\n"
        "time: {duration_s: 10, dt_s: auto}\n"
        "sources:\n"
        "  - name: rfa\n"
        "    type: rfa\n"
        "    generator: {mode: constant_power, power_W: 20}\n"
        "    electrodes: [{tip_mm: [-1, 0, -5], direction: [0, 0, 1], active_length_mm: 10}]\n"
        "  - {name: vein, type: vessel, diameter_mm: 4, mean_velocity_m_per_s: 0.2}\n";
    abl_scenario *sc2 = tu_scenario(yaml, NULL, 0);
    CU_ASSERT_FATAL(sc2 != NULL);
    abl_sim *s = tu_sim(sc2);
    abl_error err = {0};
    CU_ASSERT(sim_step(s, s->nsteps_total, &err) == ABL_OK);
    if (err.msg[0]) printf("\n  %s", err.msg);
    double tl = -INFINITY;
    size_t marked = 0; /* lumen voxels in the applicator mask (the margin's "needle track") */
    for (size_t c = 0; c < s->grid.n; c++)
        if (!strcmp(sc2->tissues.t[s->mat_tissue[s->material[c]]].name, "blood")) {
            tl = fmax(tl, s->T[c]);
            marked += s->applicator && s->applicator[c];
        }
    CU_ASSERT(fabs(tl - 37.0) < 1e-12); /* the lumen stays at the blood temperature */
    CU_ASSERT(marked == 0);             /* anatomy, not an applicator: never counted as ablated */
    sim_destroy(s);
    scenario_free(sc2);
    /* no lumen voxel in the grid */
    const char *bad =
        "name: vessel_bad\n"
        "tissues_file: tissues.yaml\n"
        "grid: {dims: [10, 10, 10], spacing_mm: [1, 1, 1], background: liver}\n"
        "time: {duration_s: 10}\n"
        "sources:\n"
        "  - {name: vein, type: vessel, diameter_mm: 4, mean_velocity_m_per_s: 0.2}\n";
    abl_scenario *sc3 = tu_scenario(bad, NULL, 0);
    CU_ASSERT_FATAL(sc3 != NULL);
    abl_sim *s3 = NULL;
    abl_error e3 = {0};
    CU_ASSERT(sim_create(sc3, &s3, &e3) == ABL_EINVAL);
    CU_ASSERT(strstr(e3.msg, "no voxel of the grid is 'blood'") != NULL);
    sim_destroy(s3);
    scenario_free(sc3);
}

/* Checkpoint state: the vessel's state saved after 10 steps and loaded into a second run of
 * the same scenario at the same point (same field: both ran the same 10 steps) gives the same
 * series and field bitwise after 10 more steps; a truncated state is refused. (The resume
 * matrix of suite resume covers the other sources through real checkpoint files.) */
static void test_state_roundtrip(void)
{
    const char *yaml =
        "name: vessel_ckpt\n"
        "tissues_file: tissues.yaml\n"
        "grid: {dims: [16, 16, 16], spacing_mm: [1, 1, 1], background: liver,\n"
        "       shapes: [{type: cylinder, start_mm: [3, 0, -8], end_mm: [3, 0, 8], "
        "radius_mm: 2, tissue: blood}]}\n"
        "boundary: {default: {type: fixed_temperature, temperature_C: 37}}\n"
        "time: {duration_s: 100, dt_s: auto}\n"
        "sources:\n"
        "  - {name: heat, type: volumetric, shape: {type: sphere, center_mm: [-2, 0, 0], "
        "radius_mm: 2}, power_W: 2}\n"
        "  - {name: vein, type: vessel, diameter_mm: 4, mean_velocity_m_per_s: 0.2}\n";
    abl_scenario *sc = tu_scenario(yaml, NULL, 0);
    CU_ASSERT_FATAL(sc != NULL);
    abl_sim *a = tu_sim(sc), *b = tu_sim(sc);
    abl_error err = {0};
    CU_ASSERT_FATAL(sim_step(a, 10, &err) == ABL_OK);
    const abl_source *va = a->sources[1];
    abl_blob blob = {ABL_BLOB_COUNT, NULL, 0, 0, false};
    CU_ASSERT_FATAL(va->ops->state_io(va, &blob, &err) == ABL_OK);
    const size_t len = blob.pos;
    blob = (abl_blob){ABL_BLOB_SAVE, malloc(len), len, 0, false};
    CU_ASSERT_FATAL(va->ops->state_io(va, &blob, &err) == ABL_OK);
    /* b: the same 10 steps, then the vessel's state from the blob (the volumetric source is
     * stateless) */
    CU_ASSERT_FATAL(sim_step(b, 10, &err) == ABL_OK);
    blob.mode = ABL_BLOB_LOAD;
    blob.pos = 0;
    abl_source_series s0;
    b->sources[1]->ops->series(b->sources[1], &s0);
    const size_t rows_b = s0.nrow;
    CU_ASSERT_FATAL(b->sources[1]->ops->state_io(b->sources[1], &blob, &err) == ABL_OK);
    b->sources[1]->ops->series(b->sources[1], &s0);
    CU_ASSERT_EQUAL(s0.nrow, rows_b);
    CU_ASSERT_FATAL(sim_step(a, 10, &err) == ABL_OK);
    CU_ASSERT_FATAL(sim_step(b, 10, &err) == ABL_OK);
    abl_source_series sa, sb;
    a->sources[1]->ops->series(a->sources[1], &sa);
    b->sources[1]->ops->series(b->sources[1], &sb);
    CU_ASSERT_EQUAL(sa.nrow, sb.nrow);
    CU_ASSERT(sa.nrow == sb.nrow &&
              memcmp(sa.rows, sb.rows, sa.nrow * (size_t)sa.ncol * sizeof(double)) == 0);
    CU_ASSERT(memcmp(a->T, b->T, a->grid.n * sizeof(double)) == 0);
    CU_ASSERT(sa.nrow > 0 && sa.rows[(sa.nrow - 1) * sa.ncol + 1] > 0.0); /* the blood took heat */
    blob.mode = ABL_BLOB_LOAD;
    blob.pos = 0;
    blob.len = len - 8;
    CU_ASSERT(b->sources[1]->ops->state_io(b->sources[1], &blob, &err) != ABL_OK);
    free(blob.buf);
    sim_destroy(a);
    sim_destroy(b);
    scenario_free(sc);
}

void register_vessel_tests(void)
{
    CU_pSuite s = CU_add_suite("vessel", NULL, NULL);
    CU_add_test(s, "1-D bar to a convective lumen: exact steady state, laminar and turbulent",
                test_bar);
    CU_add_test(s, "beside an RFA electrode: the lumen absorbs, is no needle track; errors",
                test_with_rfa_and_errors);
    CU_add_test(s, "checkpoint state round trip, truncation refused", test_state_roundtrip);
}
