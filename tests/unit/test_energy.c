/* test_energy.c - global energy balance of the discrete scheme:
 *   E_stored(end) - E_stored(start) = E_sources + E_perfusion+metabolic + E_boundary
 * Interior face fluxes cancel in pairs, so the balance holds to rounding: any mismatch above
 * ~1e-10 relative means a flux is counted differently on the two sides of a face, a boundary
 * term is missing, or a source/pin is not accounted. The bound is 1e-6. */
#include <math.h>
#include <stdio.h>

#include "testutil.h"

extern const char *hetero_yaml;

static void check_balance(const abl_sim *s, const char *label)
{
    const abl_energy *e = &s->energy;
    double in = e->E_sources_J + e->E_perf_met_J + e->E_boundary_in_J;
    double scale = fabs(e->E_sources_J) + fabs(e->E_perf_met_J) + fabs(e->E_boundary_in_J);
    double dE = e->E_stored_final_J - e->E_stored_initial_J;
    double rel = fabs(dE - in) / scale;
    printf("\n  %s: dE %.6g J, sources %.6g J, perf+met %.6g J, boundary %.6g J, rel. residual "
           "%.2e",
           label, dE, e->E_sources_J, e->E_perf_met_J, e->E_boundary_in_J, rel);
    CU_ASSERT(e->energy_tracked);
    CU_ASSERT(scale > 0);
    CU_ASSERT(rel < 1e-6);
}

static void test_energy_hetero(void)
{
    abl_scenario *sc = tu_scenario(hetero_yaml, NULL, 0);
    CU_ASSERT_FATAL(sc != NULL);
    abl_error err = {0};
    abl_sim *s = tu_sim(sc);
    long n = (long)llround(sc->duration_s / s->dt_s);
    CU_ASSERT_FATAL(sim_step(s, n, &err) == ABL_OK);
    check_balance(s, "heterogeneous, 3 boundary types, 2 sources");
    /* all three terms are exercised */
    CU_ASSERT(fabs(s->energy.E_boundary_in_J) > 1.0);
    CU_ASSERT(fabs(s->energy.E_perf_met_J) > 1.0);
    sim_destroy(s);
    scenario_free(sc);
}

/* A volumetric source alone, insulated box, no perfusion: all delivered energy is stored, and the
 * delivered energy is the schedule's integral by the left-point rule. */
static void test_energy_source_only(void)
{
    const char *yaml =
        "tissues:\n"
        "  t: {density_kg_per_m3: 1000, specific_heat_J_per_kgK: 4000,\n"
        "      thermal_conductivity_W_per_mK: 0.5, perfusion_per_s: 0, metabolic_heat_W_per_m3: 0}\n"
        "grid: {dims: [20, 20, 20], spacing_mm: [1, 1, 1], background: t}\n"
        "boundary: {default: {type: insulated}}\n"
        "time: {duration_s: 30, dt_s: 0.25}\n"
        "sources:\n"
        "  - {type: volumetric, power_W: 4,\n"
        "     shape: {type: sphere, center_mm: [0, 0, 0], radius_mm: 3}}\n"
        "output: {energy_balance: true}\n";
    abl_scenario *sc = tu_scenario(yaml, NULL, 0);
    CU_ASSERT_FATAL(sc != NULL);
    abl_error err = {0};
    abl_sim *s = tu_sim(sc);
    CU_ASSERT_DOUBLE_EQUAL(s->dt_s, 0.25, 1e-15);
    CU_ASSERT_FATAL(sim_step(s, 120, &err) == ABL_OK);
    /* 4 W x 30 s = 120 J delivered exactly (constant power) */
    CU_ASSERT_DOUBLE_EQUAL(s->energy.E_sources_J, 120.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(s->energy.E_boundary_in_J, 0.0, 1e-12);
    check_balance(s, "source only, insulated");
    sim_destroy(s);
    scenario_free(sc);
}

/* The implicit schemes keep the balance too: theta-weighted rates at both ends of each step,
 * and the heat held voxels supply. The CG residual (1e-12 here) is the only inexactness. */
static void test_energy_implicit(void)
{
    const char *schemes[] = {"time.scheme=implicit", "time.scheme=crank_nicolson"};
    for (int i = 0; i < 2; i++) {
        const char *sets[] = {schemes[i], "time.dt_s=2", "time.solver_tolerance=1e-12"};
        abl_scenario *sc = tu_scenario(hetero_yaml, sets, 3);
        CU_ASSERT_FATAL(sc != NULL);
        abl_error err = {0};
        abl_sim *s = tu_sim(sc);
        CU_ASSERT_FATAL(sim_step(s, 30, &err) == ABL_OK);
        check_balance(s, schemes[i]);
        sim_destroy(s);
        scenario_free(sc);
    }
}

void register_energy_tests(void)
{
    CU_pSuite s = CU_add_suite("energy", NULL, NULL);
    CU_add_test(s, "energy balance, heterogeneous scenario", test_energy_hetero);
    CU_add_test(s, "source energy stored exactly, insulated box", test_energy_source_only);
    CU_add_test(s, "energy balance, backward Euler and Crank-Nicolson", test_energy_implicit);
}
