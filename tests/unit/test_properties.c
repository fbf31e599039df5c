/* test_properties.c - the temperature-dependent property path (property hooks): agreement with
 * the constant-property kernel, an exact nonlinear steady state (Kirchhoff transform), and the
 * energy balance with k(T). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

extern const char *hetero_yaml;

/* A hook returning each material's constant k and W: the variable-property kernel must then
 * reproduce the constant-property kernel (same discretisation, different code path). */
static abl_status constant_hook(void *ctx, const abl_field_view *v, double *k, double *W,
                                abl_error *err)
{
    (void)err;
    const abl_sim *s = ctx;
    for (size_t c = 0; c < v->grid->n; c++) {
        k[c] = s->k37[v->material[c]];
        W[c] = s->perf_W[v->material[c]];
    }
    return ABL_OK;
}

static void test_hook_matches_constant_path(void)
{
    double *ref = NULL;
    size_t n = 0;
    for (int run = 0; run < 2; run++) {
        abl_scenario *sc = tu_scenario(hetero_yaml, NULL, 0);
        CU_ASSERT_FATAL(sc != NULL);
        abl_error err = {0};
        abl_sim *s = tu_sim(sc);
        if (run == 1) CU_ASSERT_FATAL(sim_set_property_hook(s, constant_hook, s, &err) == ABL_OK);
        CU_ASSERT_FATAL(sim_step(s, 40, &err) == ABL_OK);
        n = s->grid.n;
        if (run == 0) {
            ref = malloc(n * sizeof *ref);
            memcpy(ref, s->T, n * sizeof *ref);
        } else {
            /* per step the two paths differ by a few ulps of ~40 C (1e-14 K); 40 steps of a
             * contracting scheme keep that below 1e-11 K */
            double d = tu_maxdiff(ref, s->T, n);
            printf("\n  property hook (constant) vs fast path after 40 steps: %.2e K", d);
            CU_ASSERT(d < 1e-11);
        }
        sim_destroy(s);
        scenario_free(sc);
    }
    free(ref);
}

/* Steady 1D conduction with k(T) = k0 (1 + b (T - 37)), no perfusion, walls T(0) = 37 + th0,
 * T(H) = 37. The Kirchhoff variable U = th + b th^2 / 2 is linear in x:
 * U(x) = U0 (1 - x/H), so th(x) = (sqrt(1 + 2 b U(x)) - 1) / b. */
static double kirchhoff_error(int n, double H_mm, double th0, double b)
{
    char yaml[2048];
    double h = H_mm / n;
    snprintf(yaml, sizeof yaml,
             "tissues:\n"
             "  kt: {density_kg_per_m3: 1000, specific_heat_J_per_kgK: 4000,\n"
             "       thermal_conductivity_W_per_mK: 0.5, perfusion_per_s: 0,\n"
             "       metabolic_heat_W_per_m3: 0, thermal_conductivity_temp_coeff_per_K: %g}\n"
             "grid: {dims: [%d, 1, 1], spacing_mm: [%.17g, 1, 1], origin_mm: [%.17g, 0, 0],\n"
             "       background: kt}\n"
             "boundary:\n"
             "  default: {type: insulated}\n"
             "  x_min: {type: fixed_temperature, temperature_C: %g}\n"
             "  x_max: {type: fixed_temperature, temperature_C: 37}\n"
             "time: {duration_s: 1500}\n"
             "output: {monitor_interval_s: 100}\n",
             b, n, h, 0.5 * h, 37 + th0);
    abl_scenario *sc = tu_scenario(yaml, NULL, 0);
    if (!sc) return NAN;
    abl_sim *s = tu_sim(sc);
    CU_ASSERT(s->prop_fn != NULL); /* the tissue's coefficient switched the hook on */
    const double U0 = th0 + 0.5 * b * th0 * th0, H = H_mm * 1e-3;
    for (int i = 0; i < n; i++) s->T[i] = 37 + th0 * (1 - (i + 0.5) * h * 1e-3 / H);
    /* slowest mode's time H^2/(pi^2 alpha) = 52 s for H = 8 mm (alpha = 0.5 / (1000 4000) =
     * 1.25e-7 m^2/s at 37 C, larger where k rises); 1500 s is ~29 of them: the transient has
     * decayed to e^-29 ~ 3e-13 of its start */
    tu_step_for(s, sc->duration_s);
    double e = 0;
    for (int i = 0; i < n; i++) {
        double x = (i + 0.5) * h * 1e-3, U = U0 * (1 - x / H);
        double exact = 37 + (sqrt(1 + 2 * b * U) - 1) / b;
        e = fmax(e, fabs(s->T[i] - exact));
    }
    sim_destroy(s);
    scenario_free(sc);
    return e;
}

static void test_kirchhoff_steady(void)
{
    /* b = 0.01 /K and 60 K across the slab: k varies by 60 %, a strongly nonlinear profile */
    double e1 = kirchhoff_error(10, 8.0, 60.0, 0.01), e2 = kirchhoff_error(20, 8.0, 60.0, 0.01),
           e3 = kirchhoff_error(40, 8.0, 60.0, 0.01);
    double o1 = log(e1 / e2) / log(2), o2 = log(e2 / e3) / log(2);
    printf("\n  k(T) steady slab (Kirchhoff): max error %.3e %.3e %.3e K, orders %.3f %.3f", e1,
           e2, e3, o1, o2);
    /* second order as in test_analytic.c: harmonic face mean of k(T) is a second-order
     * approximation of the face conductivity for smooth T */
    CU_ASSERT(o1 > 1.8 && o1 < 2.3);
    CU_ASSERT(o2 > 1.8 && o2 < 2.3);
    CU_ASSERT(e3 < 0.05);
}

static void test_energy_with_kT(void)
{
    const char *sets[] = {"tissues.liver.thermal_conductivity_temp_coeff_per_K=0.004",
                          "tissues.tumour.thermal_conductivity_temp_coeff_per_K=0.002"};
    abl_scenario *sc = tu_scenario(hetero_yaml, sets, 2);
    CU_ASSERT_FATAL(sc != NULL);
    abl_sim *s = tu_sim(sc);
    CU_ASSERT_FATAL(s->prop_fn != NULL);
    tu_step_for(s, sc->duration_s);
    const abl_energy *e = &s->energy;
    double in = e->E_sources_J + e->E_perf_met_J + e->E_boundary_in_J;
    double scale = fabs(e->E_sources_J) + fabs(e->E_perf_met_J) + fabs(e->E_boundary_in_J);
    double rel = fabs(e->E_stored_final_J - e->E_stored_initial_J - in) / scale;
    printf("\n  energy balance with k(T): relative residual %.2e", rel);
    CU_ASSERT(rel < 1e-6); /* interior fluxes still cancel pairwise: rounding level expected */
    sim_destroy(s);
    scenario_free(sc);
}

/* Constant temperature: the Arrhenius integral is A t exp(-Ea/(R T)) exactly and CEM43 is
 * t_min 0.5^(43 - T) (analytic-solutions.md G). 60 C in an insulated box without perfusion
 * stays 60 C up to rounding of the update (1e-13 K), which moves the rate by Ea/(R T^2) dT
 * ~ 3e-13 relative; with the summation rounding, 1e-10 relative is a safe bound. */
static void damage_at(double T_C, double amin_C)
{
    char yaml[1200], amin[64] = "";
    if (amin_C > 0) snprintf(amin, sizeof amin, ", arrhenius_min_C: %g", amin_C);
    snprintf(yaml, sizeof yaml,
             "tissues:\n"
             "  hot: {density_kg_per_m3: 1079, specific_heat_J_per_kgK: 3540,\n"
             "        thermal_conductivity_W_per_mK: 0.52, perfusion_per_s: 0,\n"
             "        metabolic_heat_W_per_m3: 0, arrhenius_A_per_s: 7.39e39,\n"
             "        arrhenius_Ea_J_per_mol: 2.577e5}\n"
             "physics: {initial_temperature_C: %g%s}\n"
             "grid: {dims: [6, 6, 6], spacing_mm: [1, 1, 1], background: hot}\n"
             "boundary: {default: {type: insulated}}\n"
             "time: {duration_s: 30, dt_s: 0.5}\n"
             "output: {monitor_interval_s: 0}\n",
             T_C, amin);
    abl_scenario *sc = tu_scenario(yaml, NULL, 0);
    CU_ASSERT_FATAL(sc != NULL);
    abl_error err = {0};
    abl_sim *s = tu_sim(sc);
    CU_ASSERT_FATAL(sim_step(s, 60, &err) == ABL_OK);
    CU_ASSERT_DOUBLE_EQUAL(s->T[100], T_C, 1e-11);
    /* Arrhenius only at and above physics.arrhenius_min_C (43 C by default); R = 8.314 J/(mol K),
     * the value the reference formula and the tissue table state (kernels.h): with CODATA's
     * 8.314462618 the code's Omega is 0.5 % larger at 55 C and fails the 1e-10 below */
    const double lo = amin_C > 0 ? amin_C : 43.0;
    const double om = T_C >= lo ? 7.39e39 * 30.0 * exp(-2.577e5 / (8.314 * (T_C + 273.15)))
                                : 0.0;
    /* 30 s = 0.5 min at R^(43 - T), R = 0.5 above 43 C and 0.25 below; none below 39 C */
    const double cem = T_C < 39 ? 0.0 : 0.5 * pow(T_C >= 43 ? 0.5 : 0.25, 43.0 - T_C);
    printf("\n  constant %g C for 30 s: Omega %.6e (exact %.6e), CEM43 %.6f min (exact %.6f)",
           T_C, s->omega[100], om, s->cem43_min[100], cem);
    CU_ASSERT(om == 0 ? s->omega[100] == 0 : fabs(s->omega[100] / om - 1) < 1e-10);
    CU_ASSERT(cem == 0 ? s->cem43_min[100] == 0 : fabs(s->cem43_min[100] / cem - 1) < 1e-10);
    sim_destroy(s);
    scenario_free(sc);
}

/* Constant temperature: the Arrhenius integral is A t exp(-Ea/(R T)) exactly and CEM43 is
 * t_min R^(43 - T) (analytic-solutions.md G). A uniform field in an insulated box without
 * perfusion stays put up to rounding of the update (1e-13 K), which moves the rate by
 * Ea/(R T^2) dT ~ 3e-13 relative; with summation rounding, 1e-10 relative is a safe bound. */
/* k(T) above 200 C: the stable step is computed with k at -200 and 200 C, so k is held there
 * beyond (session 30: with k growing on, a 1-D bar heated past 250 C at the automatic step grew
 * a checkerboard to 1220 C and stopped as a numerical fault). Half a watt into 5 voxels of a
 * 21-voxel bar with beta = 0.02 /K reaches about 670 C at 60 s: the run must finish and the
 * profile fall strictly from the centre to each end (any sawtooth would break that). */
static void test_k_held_above_200C(void)
{
    const char *yaml =
        "name: kt\n"
        "tissues: {liver: {thermal_conductivity_W_per_mK: 0.5, density_kg_per_m3: 1000,\n"
        "  specific_heat_J_per_kgK: 4000, perfusion_per_s: 0, metabolic_heat_W_per_m3: 0,\n"
        "  thermal_conductivity_temp_coeff_per_K: 0.02}}\n"
        "grid: {dims: [21, 1, 1], spacing_mm: [1, 1, 1], background: liver}\n"
        "physics: {vaporisation: off}\n"
        "boundary: {default: {type: insulated}, x_min: {type: fixed_temperature, "
        "temperature_C: 37},\n"
        "  x_max: {type: fixed_temperature, temperature_C: 37}}\n"
        "time: {duration_s: 60}\n"
        "sources:\n  - {type: volumetric, power_W: 0.5, shape: {type: box, "
        "min_mm: [-2.5, -0.5, -0.5], max_mm: [2.5, 0.5, 0.5]}}\n";
    abl_scenario *sc = tu_scenario(yaml, NULL, 0);
    CU_ASSERT_FATAL(sc != NULL);
    abl_sim *s = tu_sim(sc);
    abl_error err = {0};
    CU_ASSERT_FATAL(sim_step(s, s->nsteps_total, &err) == ABL_OK);
    CU_ASSERT(s->T[10] > 300.0); /* the case reaches far above 200 C */
    int monotone = 1;
    for (int i = 0; i < 10; i++)
        monotone &= s->T[i] < s->T[i + 1] && s->T[20 - i] < s->T[19 - i];
    CU_ASSERT(monotone);
    printf("\n  k(T) bar: centre %.1f C at 60 s, profile monotone %d", s->T[10], monotone);
    sim_destroy(s);
    scenario_free(sc);
}

static void test_damage_constant_T(void)
{
    damage_at(60.0, 0);
    damage_at(41.0, 0);
    /* arrhenius_min_C below 39 C is honoured (it was cut at 39: Omega 0 at 38.5 C where the
     * integral is 1.7 per hour; numerics review, session 30) */
    damage_at(38.5, 20.0);
}

/* Perfusion shutdown keeps heat in damaged tissue: the >= 55 C volume must grow (this is why
 * it is one of the most influential parameters of RFA zone size, Int J Hyperthermia 2015). */
static double zone55(bool shutdown)
{
    const char *sets[] = {shutdown ? "physics.perfusion_shutdown=arrhenius"
                                   : "physics.perfusion_shutdown=none"};
    const char *yaml =
        "grid: {dims: [30, 30, 30], spacing_mm: [1, 1, 1], background: liver}\n"
        "time: {duration_s: 240}\n"
        "sources:\n"
        "  - {type: volumetric, power_W: 3, shape: {type: sphere, center_mm: [0, 0, 0], radius_mm: 3}}\n";
    abl_scenario *sc = tu_scenario(yaml, sets, 1);
    abl_sim *s = NULL;
    abl_error err = {0};
    if (!sc || sim_create(sc, &s, &err)) return NAN;
    CU_ASSERT(sim_step(s, (long)llround(sc->duration_s / s->dt_s), &err) == ABL_OK);
    size_t n = 0;
    for (size_t c = 0; c < s->grid.n; c++) n += s->T_max[c] >= 55.0;
    sim_destroy(s);
    scenario_free(sc);
    return n * 1e-3; /* mL at 1 mm voxels */
}

static void test_perfusion_shutdown(void)
{
    double off = zone55(false), on = zone55(true);
    printf("\n  55 C zone: %.3f mL without, %.3f mL with perfusion shutdown", off, on);
    CU_ASSERT(on > off * 1.05); /* a clear effect, not rounding */
}

/* Perfusion shutdown in the explicit scheme runs as the fast path plus a sparse correction;
 * the general per-voxel property path (forced here by a k(T) coefficient of 1e-12 /K, which
 * changes k by 1e-12 (T - 37) relative, < 5e-10 at the ~500 C this small hot source reaches,
 * so up to ~2.5e-7 K of T) computes the same physics another way: they agree to 1e-6 K after
 * 90 s, and the energy balance still closes. */
static void shutdown_paths_agree(const char *model)
{
    char yaml[1024];
    snprintf(yaml, sizeof yaml,
             "physics: {perfusion_shutdown: %s}\n"
             "grid: {dims: [24, 24, 24], spacing_mm: [1, 1, 1], background: liver}\n"
             "time: {duration_s: 90}\n"
             "sources:\n"
             "  - {type: volumetric, power_W: 3, shape: {type: sphere, center_mm: [0, 0, 0], "
             "radius_mm: 3}}\n"
             "output: {energy_balance: true, monitor_interval_s: 0}\n",
             model);
    const char *force[] = {"tissues.liver.thermal_conductivity_temp_coeff_per_K=1e-12"};
    double *T[2] = {NULL, NULL};
    size_t n = 0;
    for (int r = 0; r < 2; r++) {
        abl_scenario *sc = tu_scenario(yaml, force, r);
        CU_ASSERT_FATAL(sc != NULL);
        abl_sim *s = tu_sim(sc);
        CU_ASSERT((s->prop_fn != NULL) == (r == 1));
        tu_step_for(s, sc->duration_s);
        n = s->grid.n;
        T[r] = malloc(n * sizeof(double));
        memcpy(T[r], s->T, n * sizeof(double));
        const abl_energy *e = &s->energy;
        double in = e->E_sources_J + e->E_perf_met_J + e->E_boundary_in_J;
        double scale = fabs(e->E_sources_J) + fabs(e->E_perf_met_J) + fabs(e->E_boundary_in_J);
        CU_ASSERT(fabs(e->E_stored_final_J - e->E_stored_initial_J - in) / scale < 1e-6);
        size_t damaged = 0, stopped = 0;
        for (size_t c = 0; c < n; c++) {
            damaged += s->omega[c] > 0.1;
            stopped += s->T_max[c] >= 60.0;
        }
        CU_ASSERT(damaged > 0); /* the correction was exercised */
        CU_ASSERT(stopped > 0); /* (the threshold model's too: 60 C reached) */
        sim_destroy(s);
        scenario_free(sc);
    }
    double d = tu_maxdiff(T[0], T[1], n);
    printf("\n  perfusion shutdown (%s), fast path + correction vs property path: %.2e K", model,
           d);
    CU_ASSERT(d < 1e-6);
    free(T[0]);
    free(T[1]);
}

static void test_shutdown_paths_agree(void)
{
    shutdown_paths_agree("arrhenius");
    shutdown_paths_agree("threshold");
}

/* The threshold model (perfusion_shutdown: threshold, Schutt & Haemmerich 2008): one explicit
 * step of a uniform 45 C liver block (insulated: no conduction anywhere) whose T_max is 70 C
 * in one half and 50 C in the other, damaged (Omega = 1) on even z planes and undamaged on odd
 * ones. Each voxel's step is then exactly dT = dt/(rho c) (q_met - W (45 - 37)) with W = 0
 * where T_max >= 60 C and the table's W elsewhere: the damage must not matter (Omega = 1, which
 * the arrhenius model would turn into exp(-1) W; Omega = 0, as in a tissue without Arrhenius
 * parameters or below arrhenius_min_C, must not keep a stopped voxel perfused). Same expression evaluated in the same order: 1e-12 K allows for
 * the enthalpy map's rounding. With a threshold of 75 C the whole block keeps its perfusion. */
static void threshold_step(double stop_C, bool hook, double *worst, size_t *nstopped)
{
    char yaml[1024];
    snprintf(yaml, sizeof yaml,
             "physics: {perfusion_shutdown: threshold, perfusion_shutdown_temperature_C: %g,\n"
             "          initial_temperature_C: 45}\n"
             "grid: {dims: [12, 12, 12], spacing_mm: [1, 1, 1], background: liver}\n"
             "boundary: {default: {type: insulated}}\n"
             "time: {duration_s: 10}\n",
             stop_C);
    /* hook: a k(T) coefficient of 1e-12 /K sends the step through the per-voxel property hook
     * (as in shutdown_paths_agree); the block is uniform, so k does not enter the step */
    const char *force[] = {"tissues.liver.thermal_conductivity_temp_coeff_per_K=1e-12"};
    abl_scenario *sc = tu_scenario(yaml, force, hook ? 1 : 0);
    CU_ASSERT_FATAL(sc != NULL);
    abl_sim *s = tu_sim(sc);
    CU_ASSERT((s->prop_fn != NULL) == hook);
    const abl_grid *g = &s->grid;
    for (size_t c = 0; c < g->n; c++) {
        s->T_max[c] = c % g->sy < (size_t)g->nx / 2 ? 70.0 : 50.0;
        s->omega[c] = (c / g->sz) % 2 ? 0.0 : 1.0;
    }
    abl_error err = {0};
    CU_ASSERT_FATAL(sim_step(s, 1, &err) == ABL_OK);
    *worst = 0.0;
    *nstopped = 0;
    for (size_t c = 0; c < g->n; c++) {
        const int m = s->material[c];
        const bool stopped = c % g->sy < (size_t)g->nx / 2 && 70.0 >= stop_C;
        const double W = stopped ? 0.0 : s->perf_W[m];
        const abl_tissue *t = &sc->tissues.t[s->mat_tissue[m]];
        const double rhoc = t->rho_kg_m3 * t->c_J_kgK; /* the enthalpy curve's slope at 45 C */
        const double expect = 45.0 + s->dt_s / rhoc * (s->q_met[m] - W * (45.0 - 37.0));
        *worst = fmax(*worst, fabs(s->T[c] - expect));
        *nstopped += stopped;
    }
    sim_destroy(s);
    scenario_free(sc);
}

static void test_shutdown_threshold_exact(void)
{
    for (int hook = 0; hook < 2; hook++) {
        double worst;
        size_t n;
        threshold_step(60.0, hook, &worst, &n);
        printf("\n  %s: threshold 60 C: %zu voxels stopped, step vs closed form %.2e K",
               hook ? "property hook" : "fast path + correction", n, worst);
        CU_ASSERT(n == 6 * 12 * 12);
        CU_ASSERT(worst < 1e-12);
        threshold_step(75.0, hook, &worst, &n);
        printf("; threshold 75 C: %zu stopped, %.2e K", n, worst);
        CU_ASSERT(n == 0);
        CU_ASSERT(worst < 1e-12);
    }
}

void register_property_tests(void)
{
    CU_pSuite s = CU_add_suite("properties", NULL, NULL);
    CU_add_test(s, "constant property hook equals fast path", test_hook_matches_constant_path);
    CU_add_test(s, "k(T) steady slab vs Kirchhoff solution, order 2", test_kirchhoff_steady);
    CU_add_test(s, "energy balance with k(T)", test_energy_with_kT);
    CU_add_test(s, "k(T) held above 200 C: the automatic step stays stable",
                test_k_held_above_200C);
    CU_add_test(s, "Arrhenius and CEM43 exact at constant T", test_damage_constant_T);
    CU_add_test(s, "perfusion shutdown enlarges the 55 C zone", test_perfusion_shutdown);
    CU_add_test(s, "perfusion shutdown threshold: one step against the closed form",
                test_shutdown_threshold_exact);
    CU_add_test(s, "perfusion shutdown: fast path + correction = property path",
                test_shutdown_paths_agree);
}
