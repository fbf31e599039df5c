/* test_energy.c - global energy balance of the discrete scheme:
 *   E_stored(end) - E_stored(start) = E_sources + E_perfusion+metabolic + E_boundary
 * Interior face fluxes cancel in pairs, so the balance holds to rounding: any mismatch above
 * ~1e-10 relative means a flux is counted differently on the two sides of a face, a boundary
 * term is missing, or a source/pin is not accounted. The bound is 1e-6. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Domain faces taken semi-implicitly by the explicit scheme (sim.c wall_implicit; issue 17): the
 * automatic step is set by the interior faces only (6 gmax), not by a voxel in a grid corner
 * beside three walls half a voxel away (9 gmax), and the update stays monotone there. Case:
 * liver at 0 C, walls fixed at 0 C, one corner voxel at 37 C, no perfusion or metabolism; one
 * step at the automatic dt. With the wall terms explicit, the corner's update would be
 * 37 (1 - a (3 g + 3 g_b)) (its interior neighbours at 0): negative here (computed below from
 * the sim's own tables, so the case is one the old rule fails). With them trapezoidal it is
 * 37 (1 - 3 a g - 3 a g_b / 2) / (1 + 3 a g_b / 2) in [0, 37] (asserted to 1e-12 K). The energy
 * balance closes with the walls' share counted from the corrected value (1e-12 relative: one
 * step, a few hundred voxels). */
static void test_energy_walls_implicit(void)
{
    const char *yaml =
        "grid: {dims: [6, 6, 6], spacing_mm: [1, 1, 1], background: liver}\n"
        "physics: {initial_temperature_C: 0, arterial_temperature_C: 0, freezing: off,\n"
        "          vaporisation: off}\n"
        "tissues: {liver: {perfusion_per_s: 0, metabolic_heat_W_per_m3: 0}}\n"
        "boundary: {default: {type: fixed_temperature, temperature_C: 0}}\n"
        "time: {duration_s: 100, dt_s: auto}\n"
        "output: {energy_balance: true}\n";
    abl_scenario *sc = tu_scenario(yaml, NULL, 0);
    CU_ASSERT_FATAL(sc != NULL);
    abl_error err = {0};
    abl_sim *s = tu_sim(sc);
    const size_t corner = ABL_IDX(&s->grid, 0, 0, 0);
    const double g = s->gface[0], gb = s->gbound[0]; /* liver-liver x face, x_min wall */
    const double a = s->dt_s * s->inv_rhoc[0];
    /* the step: 0.9 x the interior bound C / (6 g) (dt_safety 0.9, no perfusion), shortened a
     * little to land on the end time (100 s / whole steps) */
    CU_ASSERT(a * 6.0 * g <= 0.9 * (1.0 + 1e-12) && a * 6.0 * g > 0.88);
    CU_ASSERT(gb > 1.9 * g); /* a fixed wall half a voxel away: 2 g */
    const double old_rule = 37.0 * (1.0 - a * (3.0 * g + 3.0 * gb));
    CU_ASSERT(old_rule < 0.0);
    s->T[corner] = 37.0;
    /* the first sim_step takes the stored energy of this state as the initial one */
    CU_ASSERT_FATAL(sim_step(s, 1, &err) == ABL_OK);
    const double expect = 37.0 * (1.0 - 3.0 * a * g - 1.5 * a * gb) / (1.0 + 1.5 * a * gb);
    printf("\n  corner after one step %.6f C (trapezoidal walls %.6f, explicit walls would give "
           "%.3f)", s->T[corner], expect, old_rule);
    CU_ASSERT_DOUBLE_EQUAL(s->T[corner], expect, 1e-12);
    for (size_t c = 0; c < s->grid.n; c++) CU_ASSERT(s->T[c] >= 0.0 && s->T[c] <= 37.0);
    const abl_energy *e = &s->energy;
    const double dE = e->E_stored_final_J - e->E_stored_initial_J;
    printf(", dE %.6g J, boundary %.6g J", dE, e->E_boundary_in_J);
    CU_ASSERT(e->E_boundary_in_J < 0.0);
    CU_ASSERT(fabs(dE - e->E_boundary_in_J) <= 1e-12 * fabs(dE));
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

/* Crank-Nicolson at the default solver tolerance (1e-8): a 10x smaller step must not be less
 * accurate. With the CG stopped relative to ||b|| (b ~ (C/dt) T, dominated by the 37-60 C
 * level), each step left about tol |T| and 4000 steps added it up: 2.3e-4 K at dt 0.005 s
 * against 1.2e-5 K at 0.05 s (numerics review, session 30). Stopped relative to the step's
 * initial residual, the error is the scheme's: second order, about 7e-6 K at 0.05 s and 1e-2
 * of it at 0.005 s. Reference: dt 0.0025 s, tol 1e-13 (its own truncation error, 1/4 of the
 * 0.005 s run's, is below the bounds). Bounds: 1e-6 K at 0.005 s (16x the expected 6e-8 K,
 * 200x below the old 2.3e-4 K) and the energy balance to 1e-6 relative (check_balance; the old
 * stopping test left 1.5e-5). */
static abl_sim *cn_run(double dt, double tol)
{
    static const char *yaml =
        "name: cn_small_dt\n"
        "tissues:\n"
        "  ma: {thermal_conductivity_W_per_mK: 0.5, density_kg_per_m3: 1000,\n"
        "       specific_heat_J_per_kgK: 4000, perfusion_per_s: 0.01, metabolic_heat_W_per_m3: 0}\n"
        "  mb: {thermal_conductivity_W_per_mK: 2.0, density_kg_per_m3: 1200,\n"
        "       specific_heat_J_per_kgK: 3000, perfusion_per_s: 0, metabolic_heat_W_per_m3: 0}\n"
        "grid: {dims: [10, 12, 8], spacing_mm: [1, 1.5, 2], background: ma,\n"
        "       shapes: [{type: box, min_mm: [-1, -20, -20], max_mm: [20, 20, 2], tissue: mb}]}\n"
        "physics: {vaporisation: off, initial_temperature_C: 60}\n"
        "boundary:\n"
        "  default: {type: convective, h_W_per_m2K: 50, temperature_C: 20}\n"
        "  x_min: {type: fixed_temperature, temperature_C: 37}\n"
        "  z_max: {type: insulated}\n"
        "time: {duration_s: 20, scheme: crank_nicolson}\n"
        "output: {snapshot_interval_s: 0, energy_balance: true}\n";
    char a[64], b[64];
    snprintf(a, sizeof a, "time.dt_s=%g", dt);
    snprintf(b, sizeof b, "time.solver_tolerance=%g", tol);
    const char *sets[] = {a, b};
    abl_scenario *sc = tu_scenario(yaml, sets, 2);
    CU_ASSERT_FATAL(sc != NULL);
    abl_sim *s = tu_sim(sc);
    abl_error err = {0};
    CU_ASSERT_FATAL(sim_step(s, s->nsteps_total, &err) == ABL_OK);
    return s;
}

static void test_cn_small_step_accuracy(void)
{
    abl_sim *ref = cn_run(0.0025, 1e-13), *big = cn_run(0.05, 1e-8), *small = cn_run(0.005, 1e-8);
    double e_big = 0.0, e_small = 0.0;
    for (size_t c = 0; c < ref->grid.n; c++) {
        e_big = fmax(e_big, fabs(big->T[c] - ref->T[c]));
        e_small = fmax(e_small, fabs(small->T[c] - ref->T[c]));
    }
    printf("\n  CN, tol 1e-8: max |T - ref| %.2e K at dt 0.05 s, %.2e K at dt 0.005 s", e_big,
           e_small);
    CU_ASSERT(e_small < 1e-6);
    CU_ASSERT(e_small < e_big);
    check_balance(small, "crank_nicolson dt 0.005 s");
    abl_sim *all[3] = {ref, big, small};
    for (int i = 0; i < 3; i++) {
        const abl_scenario *sc = all[i]->sc;
        sim_destroy(all[i]);
        scenario_free((abl_scenario *)sc);
    }
}

/* Two held shapes side by side (session 20): each one's surface coupling (basic.c) reaches
 * voxels the other holds. That is no contradiction (the hold wins and takes the heat), and the
 * balance closes in every scheme, also while one hold's value ramps (implicit schemes: the
 * coupling's theta term is not counted for a held voxel). Explicit to rounding; implicit to the
 * CG residual (1e-12 here). Before, the implicit schemes refused the pair as contradicting. */
static void test_energy_held_pair(void)
{
    static const char *yaml =
        "name: held_pair\n"
        "grid: {dims: [24, 16, 16], spacing_mm: [1, 1, 1], background: liver}\n"
        "time: {duration_s: 40}\n"
        "output: {energy_balance: true}\n"
        "sources:\n"
        "  - {name: a, type: fixed_temperature, temperature_C: 60,\n"
        "     shape: {type: sphere, center_mm: [-3, 0, 0], radius_mm: 3}}\n"
        "  - {name: b, type: fixed_temperature, shape: {type: sphere, center_mm: [3.2, 0, 0],\n"
        "     radius_mm: 3}, schedule: [{time_s: 0, temperature_C: 37},\n"
        "                             {time_s: 40, temperature_C: 80}]}\n";
    const char *schemes[] = {"time.scheme=explicit", "time.scheme=implicit",
                             "time.scheme=crank_nicolson"};
    for (int i = 0; i < 3; i++) {
        const char *sets[] = {schemes[i], "time.dt_s=2", "time.solver_tolerance=1e-12"};
        abl_scenario *sc = tu_scenario(yaml, sets, i ? 3 : 1);
        CU_ASSERT_FATAL(sc != NULL);
        abl_error err = {0};
        abl_sim *s = tu_sim(sc);
        const long n = (long)llround(sc->duration_s / s->dt_s);
        const abl_status st = sim_step(s, n, &err);
        if (st) printf("\n  %s: %s", schemes[i], err.msg);
        CU_ASSERT_FATAL(st == ABL_OK);
        check_balance(s, schemes[i]);
        sim_destroy(s);
        scenario_free(sc);
    }
}

/* A run in which nothing happens (ex vivo at 20 C, faces at 37 C but 0 W and 120 s on a 40^3
 * grid: the faces' flux is round-off) reports a residual near 0: every term is round-off, and
 * without a floor the ratio of two round-offs read -1 or +1 (a physics test, session 27). The
 * floor takes changes below 1e-9 of the stored energy as round-off: measured -1.4e-6; bound
 * 1e-3, far from 1. */
static void test_energy_idle_residual(void)
{
    char dir[600], scen[800], out[800], json[800], cmd[2400];
    tu_subdir(dir, sizeof dir, "energy_idle");
    snprintf(scen, sizeof scen, "%s/idle.yaml", dir);
    snprintf(out, sizeof out, "%s/idle.h5", dir);
    snprintf(json, sizeof json, "%s/idle.json", dir);
    char text[1024];
    snprintf(text, sizeof text,
             "name: idle\ntissues_file: %s/configs/tissues.yaml\n"
             "grid: {dims: [40, 40, 40], spacing_mm: [1, 1, 1], background: liver}\n"
             "physics: {ex_vivo_temperature_C: 20}\n"
             "boundary: {default: {type: fixed_temperature, temperature_C: 37}}\n"
             "time: {duration_s: 120}\n"
             "sources:\n  - {name: a, type: volumetric, shape: {type: sphere, center_mm: [0, 0, "
             "0], radius_mm: 3}, power_W: 0}\n"
             "output: {snapshot_interval_s: 0, energy_balance: true}\n",
             tu_root());
    tu_spit(scen, text);
    char errf[800];
    snprintf(errf, sizeof errf, "%s/err.txt", dir);
    snprintf(cmd, sizeof cmd, "'%s' run '%s' -o '%s' -q", tu_bin(), scen, out);
    CU_ASSERT_EQUAL_FATAL(tu_run(cmd, NULL, errf), 0);
    char *j = tu_slurp(json);
    const char *at = j ? strstr(j, "\"relative_residual\": ") : NULL;
    CU_ASSERT_FATAL(at != NULL);
    const double r = strtod(at + strlen("\"relative_residual\": "), NULL);
    printf("\n  idle run: relative_residual %.3g", r);
    CU_ASSERT(fabs(r) < 1e-3);
    free(j);
}

void register_energy_tests(void)
{
    CU_pSuite s = CU_add_suite("energy", NULL, NULL);
    CU_add_test(s, "energy balance, heterogeneous scenario", test_energy_hetero);
    CU_add_test(s, "source energy stored exactly, insulated box", test_energy_source_only);
    CU_add_test(s, "two held shapes side by side: no contradiction, balance in every scheme",
                test_energy_held_pair);
    CU_add_test(s, "domain faces implicit: corner monotone at the interior step, balance",
                test_energy_walls_implicit);
    CU_add_test(s, "energy balance, backward Euler and Crank-Nicolson", test_energy_implicit);
    CU_add_test(s, "Crank-Nicolson: a 10x smaller step is more accurate at the default tolerance",
                test_cn_small_step_accuracy);
    CU_add_test(s, "a run in which nothing happens: residual near 0, not +-1",
                test_energy_idle_residual);
}
