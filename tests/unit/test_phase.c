/* test_phase.c - phase change of tissue water (phase.h, the driver's enthalpy step):
 * the enthalpy curve itself, the Neumann two-phase Stefan solution for a freezing front,
 * energy balance through a full freeze-thaw cycle and through boiling, and the 100 C plateau. */
#include <math.h>
#include <string.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif
#include <stdio.h>
#include <stdlib.h>

#include <omp.h>

#include "ablasim/checkpoint.h"
#include "ablasim/phase.h"
#include "testutil.h"

/* ---- the curve ------------------------------------------------------------------------------ */

/* H is continuous and increasing, T(H(T)) = T, and the latent heats sit where they belong:
 * H(T_l) - H(T_s) = (C_f + C_u)/2 (T_l - T_s) + L_f and H(T_v2) - H(T_v1) = C_u dT + L_v,
 * H = C_u T on the liquid range. All to rounding (relative 1e-12 of |H| ~ 1e9 J/m^3). */
static void test_curve(void)
{
    abl_phase_curve p;
    const double Cu = 3.8e6, Cf = 2.2e6, Lf = 2.6e8, Lv = 1.8e9;
    phase_curve_build(&p, Cu, 1, Cf, Lf, -8, -1, 1, Lv, 99, 100);
    CU_ASSERT_EQUAL(p.nk, 4);
    CU_ASSERT_DOUBLE_EQUAL(p.C_ref, Cf, 0.0);
    CU_ASSERT_DOUBLE_EQUAL(phase_H(&p, -1) - phase_H(&p, -8), 0.5 * (Cf + Cu) * 7 + Lf, 1e-3);
    CU_ASSERT_DOUBLE_EQUAL(phase_H(&p, 100) - phase_H(&p, 99), Cu + Lv, 1e-3);
    CU_ASSERT_DOUBLE_EQUAL(phase_H(&p, 37), Cu * 37, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(phase_H(&p, -50) - phase_H(&p, -60), Cf * 10, 1e-3);
    CU_ASSERT_DOUBLE_EQUAL(phase_H(&p, 150) - phase_H(&p, 140), Cu * 10, 1e-3);
    double worst = 0.0, prev = -INFINITY;
    int monotone = 1;
    for (double T = -200; T <= 200; T += 0.0625) {
        double H = phase_H(&p, T);
        if (!(H > prev)) monotone = 0;
        prev = H;
        worst = fmax(worst, fabs(phase_T(&p, H) - T));
    }
    CU_ASSERT(monotone);
    CU_ASSERT(worst < 1e-9);
    /* no phase change: H = C T */
    phase_curve_build(&p, Cu, 0, Cf, Lf, -8, -1, 0, Lv, 99, 100);
    CU_ASSERT_EQUAL(p.nk, 0);
    CU_ASSERT_DOUBLE_EQUAL(phase_T(&p, phase_H(&p, 12.5)), 12.5, 1e-12);
    /* vaporisation only: C_ref = C_u, the map is the identity below 99 C */
    phase_curve_build(&p, Cu, 0, Cf, Lf, -8, -1, 1, Lv, 99, 100);
    CU_ASSERT_EQUAL(p.nk, 2);
    CU_ASSERT_DOUBLE_EQUAL(p.C_ref, Cu, 0.0);
    CU_ASSERT(p.win_hi_C == 99.0 && isinf(p.win_lo_C));
}

/* ---- Neumann two-phase Stefan problem --------------------------------------------------------- */

/* Tissue-like inputs of ../shared/reference/analytic-solutions.md F: k_s 2.0, c_s 1800, k_l 0.5,
 * c_l 3600, rho 1000 both, L_f 250 kJ/kg, T_f 0 C, T_i 37 C, surface T_s = -150 C. */
#define NM_KS 2.0
#define NM_CS 1800.0
#define NM_KL 0.5
#define NM_CL 3600.0
#define NM_RHO 1000.0
#define NM_L 250e3
#define NM_TI 37.0
#define NM_TS (-150.0)
/* the three comparison times [s] */
#define NM_T1 120.0
#define NM_T2 300.0
#define NM_T3 600.0

static double neumann_residual(double lam)
{
    const double as = NM_KS / (NM_RHO * NM_CS), al = NM_KL / (NM_RHO * NM_CL);
    const double nu = sqrt(as / al), Tf = 0.0;
    return exp(-lam * lam) / erf(lam) +
           (NM_KL / NM_KS) * nu * (Tf - NM_TI) / (Tf - NM_TS) * exp(-lam * lam * nu * nu) /
               erfc(lam * nu) -
           lam * NM_L * sqrt(M_PI) / (NM_CS * (Tf - NM_TS));
}

static double neumann_lambda(void)
{
    double a = 0.01, b = 2.0; /* residual > 0 at a, < 0 at b */
    for (int it = 0; it < 200; it++) {
        double m = 0.5 * (a + b);
        if (neumann_residual(m) > 0) a = m;
        else b = m;
    }
    return 0.5 * (a + b);
}

/* Position [m] where the cell-centred profile first rises through T_C, linear interpolation
 * between centres at x_i = (i + 1/2) h from the cooled face. */
static double crossing_m(const double *T, int n, double h, double T_C)
{
    for (int i = 0; i + 1 < n; i++)
        if (T[i] <= T_C && T[i + 1] > T_C)
            return ((i + 0.5) + (T_C - T[i]) / (T[i + 1] - T[i])) * h;
    return NAN;
}

/* Run the 1-D problem on [0, L] (cooled face at x = 0, far face held at T_i) with the freezing
 * range [-width, 0] (front: the liquid-fraction-1/2 isotherm, -width/2) and report the front at
 * 60, 300, 600 s relative to the exact 2 lambda sqrt(alpha_s t). */
static void run_neumann(const char *scheme, double h_mm, double width_C, double dt_s,
                        double rel_err[3], double iso_err[3], double *iso40_err_mm)
{
    const double L_mm = 80.0;
    const int n = (int)lround(L_mm / h_mm);
    char yaml[2048];
    snprintf(yaml, sizeof yaml,
             "tissues:\n"
             "  ice: {density_kg_per_m3: %g, specific_heat_J_per_kgK: %g,\n"
             "        thermal_conductivity_W_per_mK: %g, perfusion_per_s: 0,\n"
             "        metabolic_heat_W_per_m3: 0, frozen_density_kg_per_m3: %g,\n"
             "        frozen_specific_heat_J_per_kgK: %g, frozen_thermal_conductivity_W_per_mK: %g,\n"
             "        water_content_fraction: 0.75, latent_heat_fusion_J_per_kg: %g}\n"
             "grid: {dims: [%d, 1, 1], spacing_mm: [%g, %g, %g], background: ice}\n"
             "physics: {initial_temperature_C: %g, arterial_temperature_C: %g, freezing: on,\n"
             "          vaporisation: off, freezing_range_C: [%g, 0]}\n"
             "boundary:\n"
             "  default: {type: insulated}\n"
             "  x_min: {type: fixed_temperature, temperature_C: %g}\n"
             "  x_max: {type: fixed_temperature, temperature_C: %g}\n"
             "time: {duration_s: 600, scheme: %s, dt_s: %g%s}\n",
             NM_RHO, NM_CL, NM_KL, NM_RHO, NM_CS, NM_KS, NM_L, n, h_mm, h_mm, h_mm, NM_TI, NM_TI,
             -width_C, NM_TS, NM_TI, scheme, dt_s,
             strcmp(scheme, "implicit") ? "" : ", solver_tolerance: 1e-12");
    abl_scenario *sc = tu_scenario(yaml, NULL, 0);
    CU_ASSERT_FATAL(sc != NULL);
    abl_sim *s = NULL;
    abl_error err = {0};
    if (sim_create(sc, &s, &err)) printf("\n  %s", err.msg);
    CU_ASSERT_FATAL(s != NULL);
    /* a few hundred voxels: one thread (results do not depend on the count, and thread
     * start-up would dominate the tens of thousands of steps) */
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    const double lam = neumann_lambda();
    const double as = NM_KS / (NM_RHO * NM_CS), h = h_mm * 1e-3;
    const double times[3] = {NM_T1, NM_T2, NM_T3};
    *iso40_err_mm = 0.0;
    for (int q = 0; q < 3; q++) {
        long target = (long)llround(times[q] / s->dt_s);
        CU_ASSERT_FATAL(sim_step(s, target - s->step, &err) == ABL_OK);
        double X = 2.0 * lam * sqrt(as * times[q]);
        /* the enthalpy method's front: the frozen length, sum of (1 - liquid fraction) h. The
         * isotherm crossing would be biased by up to a cell: a freezing cell holds its mean
         * temperature inside the range while the front crosses it (Voller & Cross 1981). */
        double x = 0.0;
        for (int i = 0; i < n; i++) x += (1.0 - phase_liquid_fraction(s->T[i], -width_C, 0.0)) * h;
        rel_err[q] = (x - X) / X;
        iso_err[q] = (crossing_m(s->T, n, h, -0.5 * width_C) - X) / X;
        /* -40 C isotherm: frozen side, T = T_s + (T_f - T_s) erf(x / 2 sqrt(as t)) / erf(lam) */
        double e = erf(lam) * (-40.0 - NM_TS) / (0.0 - NM_TS), lo = 0, hi = 1;
        for (int it = 0; it < 100; it++) { /* invert erf by bisection */
            double m = 0.5 * (lo + hi);
            if (erf(m) < e) lo = m;
            else hi = m;
        }
        double x40 = 2.0 * sqrt(as * times[q]) * 0.5 * (lo + hi);
        *iso40_err_mm = fmax(*iso40_err_mm, fabs(crossing_m(s->T, n, h, -40.0) - x40) * 1e3);
    }
    omp_set_num_threads(threads);
    sim_destroy(s);
    scenario_free(sc);
}

/* lambda reproduces the worked value of the reference (0.52504), so the test's formula is right;
 * then the front of the solver (narrow range, 1 K) lies within 2 % of the exact one at three
 * times on the 0.25 mm grid (issue 6 acceptance). Expected error sources: the mushy range (the
 * front is spread over ~1 K of a 187 K span) and the grid, whose part is first order here
 * (measured -2.9 / -1.8 / -1.4 % at 0.5 mm, -1.4 / -1.0 / -0.8 % at 0.25 mm: about halved;
 * the enthalpy front of a cell-centred grid, Voller & Cross 1981); a wrong latent heat (say
 * 10 %) moves the front by ~4 %, so 2 % discriminates. The 0.5 mm grid is held to 3.5 % (its
 * measured -2.9 % plus room for rounding of the step count), which test_neumann_implicit's
 * bound builds on. */
static void test_neumann_explicit(void)
{
    double lam = neumann_lambda();
    printf("\n  Neumann lambda %.5f (reference 0.52504)", lam);
    CU_ASSERT_DOUBLE_EQUAL(lam, 0.52504, 5e-5);
    const double hs[2] = {0.5, 0.25}, dts[2] = {0.05, 0.0125};
    double e[2][3], iso[3], e40;
    for (int r = 0; r < 2; r++) {
        run_neumann("explicit", hs[r], 1.0, dts[r], e[r], iso, &e40);
        printf("\n  explicit h %.2f mm, range 1 K: front error %+.3f%% %+.3f%% %+.3f%% at "
               "%g/%g/%g s (-0.5 C isotherm %+.2f%% %+.2f%% %+.2f%%); -40 C isotherm within %.3f mm",
               hs[r], 100 * e[r][0], 100 * e[r][1], 100 * e[r][2], NM_T1, NM_T2, NM_T3,
               100 * iso[0], 100 * iso[1], 100 * iso[2], e40);
        CU_ASSERT(e40 < hs[r]); /* within one grid spacing */
    }
    for (int q = 0; q < 3; q++) {
        CU_ASSERT(fabs(e[1][q]) < 0.02);
        CU_ASSERT(fabs(e[0][q]) < 0.035);
        /* the grid part shrinks with h (first order: a ratio near 2; measured 1.7-2.0) */
        CU_ASSERT(fabs(e[0][q]) > 1.4 * fabs(e[1][q]));
    }
}

/* The implicit step (Jaeger-Kacur iteration) at 5x the explicit time step on the 0.5 mm grid:
 * its front stays within 0.5 % of the explicit front on the same grid (backward Euler's O(dt)
 * lag: measured 0.1-0.4 %), and so within the explicit 0.5 mm bound (3.5 %, test above) plus
 * that 0.5 % of Neumann (measured -3.3 / -2.0 / -1.5 %: the grid's O(h) part is shared, the
 * 0.25 mm explicit run of the test above carries the 2 % acceptance). */
static void test_neumann_implicit(void)
{
    double e[3], ex[3], iso[3], e40;
    run_neumann("explicit", 0.5, 1.0, 0.05, ex, iso, &e40);
    run_neumann("implicit", 0.5, 1.0, 0.25, e, iso, &e40);
    printf("\n  implicit h 0.5 mm, dt 0.25 s, range 1 K: front error %+.3f%% %+.3f%% %+.3f%% "
           "(explicit %+.3f%% %+.3f%% %+.3f%%); -40 C within %.3f mm",
           100 * e[0], 100 * e[1], 100 * e[2], 100 * ex[0], 100 * ex[1], 100 * ex[2], e40);
    for (int q = 0; q < 3; q++) {
        CU_ASSERT(fabs(e[q]) < 0.035 + 0.005); /* explicit 0.5 mm bound + the lag bound */
        CU_ASSERT(fabs(e[q] - ex[q]) < 0.005);
    }
    CU_ASSERT(e40 < 0.5);
}

/* Mushy-zone width sensitivity (documented in docs/PHASE_CHANGE.md): front error for ranges
 * 0.5..7 K at h = 0.5 mm. The error must shrink with every narrowing of the range (the method
 * converges to the sharp-front solution; measured at 600 s 3.22 > 2.23 > 1.71 > 1.40 > 1.22 %)
 * and stay small for the default 7 K range: 4 %, the 0.5 mm grid's part (1.2 % with the
 * narrowest range) plus the 7 K range's own (the front spread over 7 K of a 187 K span moves
 * it by about 2 % here; measured 3.22 % in all). */
static void test_mushy_width(void)
{
    const double widths[] = {7.0, 4.0, 2.0, 1.0, 0.5};
    double err600[5];
    printf("\n  mushy width K: front error at %g/%g/%g s (h 0.5 mm, explicit)", NM_T1, NM_T2, NM_T3);
    for (int w = 0; w < 5; w++) {
        double e[3], iso[3], e40;
        run_neumann("explicit", 0.5, widths[w], 0.05, e, iso, &e40);
        err600[w] = e[2];
        printf("\n    %4.1f K: %+.3f%% %+.3f%% %+.3f%%, -40 C within %.3f mm", widths[w], 100 * e[0],
               100 * e[1], 100 * e[2], e40);
    }
    CU_ASSERT(fabs(err600[4]) < 0.02);
    CU_ASSERT(fabs(err600[0]) < 0.04);
    for (int w = 0; w + 1 < 5; w++) CU_ASSERT(fabs(err600[w + 1]) < fabs(err600[w]));
}

/* ---- energy ------------------------------------------------------------------------------------- */

static double balance(const abl_sim *s)
{
    const abl_energy *e = &s->energy;
    double in = e->E_sources_J + e->E_perf_met_J + e->E_boundary_in_J;
    double scale = fabs(e->E_sources_J) + fabs(e->E_perf_met_J) + fabs(e->E_boundary_in_J);
    return fabs(e->E_stored_final_J - e->E_stored_initial_J - in) / scale;
}

/* Freeze (probe -150 C, 240 s), passive thaw (probe off, 120 s), active thaw (+30 C, 120 s) in
 * perfused liver with fixed, convective and insulated faces: the stored enthalpy change equals
 * the heat of the probe, perfusion and faces to 1e-6 (issue 6; expected ~1e-12: interior fluxes
 * cancel, latent heat is in H). Also for the implicit step. */
static void test_energy_freeze_thaw(void)
{
    const char *schemes[] = {"explicit", "implicit"};
    for (int i = 0; i < 2; i++) {
        char yaml[2048];
        snprintf(yaml, sizeof yaml,
                 "grid: {dims: [20, 20, 20], spacing_mm: [1, 1, 1], background: liver}\n"
                 "physics: {perfusion_shutdown: arrhenius}\n"
                 "boundary:\n"
                 "  default: {type: fixed_temperature, temperature_C: 37}\n"
                 "  z_max: {type: convective, temperature_C: 20, h_W_per_m2K: 10}\n"
                 "  x_min: {type: insulated}\n"
                 "time: {duration_s: 480, scheme: %s%s}\n"
                 "sources:\n"
                 "  - {name: probe, type: fixed_temperature, on_s: 0, off_s: 240,\n"
                 "     schedule: [{time_s: 0, temperature_C: -150}],\n"
                 "     shape: {type: cylinder, start_mm: [0, 0, -5], end_mm: [0, 0, 5],\n"
                 "             radius_mm: 1}}\n"
                 "  - {name: thaw, type: fixed_temperature, on_s: 360, off_s: 480,\n"
                 "     schedule: [{time_s: 0, temperature_C: 30}],\n"
                 "     shape: {type: cylinder, start_mm: [0, 0, -5], end_mm: [0, 0, 5],\n"
                 "             radius_mm: 1}}\n"
                 "output: {energy_balance: true, cold_thresholds_C: [0, -20, -40]}\n",
                 schemes[i], i ? ", dt_s: 2, solver_tolerance: 1e-12" : "");
        abl_scenario *sc = tu_scenario(yaml, NULL, 0);
        CU_ASSERT_FATAL(sc != NULL);
        CU_ASSERT(sc->freezing); /* auto: a held temperature below the freezing range */
        abl_error err = {0};
        abl_sim *s = tu_sim(sc);
        long n = (long)llround(sc->duration_s / s->dt_s);
        CU_ASSERT_FATAL(sim_step(s, n, &err) == ABL_OK);
        double rel = balance(s);
        double Tmin = INFINITY;
        size_t frozen = 0, cycled = 0;
        for (size_t c = 0; c < s->grid.n; c++) {
            Tmin = fmin(Tmin, s->T_min[c]);
            if (s->T_min[c] < -8) frozen++;
            if (s->freeze_cycles[c] >= 1) cycled++;
        }
        printf("\n  freeze-thaw %s: rel. residual %.2e; sources %.4g J, perfusion %.4g J, faces "
               "%.4g J; %zu voxels froze (%zu counted); %zu solves in %ld steps",
               schemes[i], rel, s->energy.E_sources_J, s->energy.E_perf_met_J,
               s->energy.E_boundary_in_J, frozen, cycled, s->n_cg, s->step);
        CU_ASSERT(rel < 1e-6);
        CU_ASSERT(s->energy.E_sources_J < -100.0); /* the probe extracted heat */
        CU_ASSERT(frozen > 50);
        CU_ASSERT_EQUAL(frozen, cycled); /* every voxel that froze counted exactly one cycle */
        sim_destroy(s);
        scenario_free(sc);
    }
}

/* Boiling: a volumetric source (3 W in a 1.5 mm sphere) drives the centre through 100 C.
 * With vaporisation the energy closes to 1e-6 and the centre voxel stalls in 99.5-100 C for at
 * least the latent heat of that half kelvin, 0.5 (C_u + L_v), divided by an upper bound of its
 * heating rate (all 3 W in one voxel); without vaporisation it crosses the window in a small
 * fraction of that time. */
static double plateau_run(const char *vap, double *Tpeak, double *rel, double *bound_s)
{
    char yaml[1024];
    snprintf(yaml, sizeof yaml,
             "grid: {dims: [16, 16, 16], spacing_mm: [1, 1, 1], background: liver}\n"
             "physics: {vaporisation: %s}\n"
             "boundary: {default: {type: fixed_temperature, temperature_C: 37}}\n"
             "time: {duration_s: 60, dt_s: auto}\n"
             "sources:\n"
             "  - {name: heater, type: volumetric, power_W: 3,\n"
             "     shape: {type: sphere, center_mm: [0, 0, 0], radius_mm: 1.5}}\n"
             "output: {energy_balance: true}\n",
             vap);
    abl_scenario *sc = tu_scenario(yaml, NULL, 0);
    CU_ASSERT_FATAL(sc != NULL);
    abl_error err = {0};
    abl_sim *s = tu_sim(sc);
    const size_t centre = ABL_IDX(&s->grid, 8, 8, 8);
    long n = (long)llround(sc->duration_s / s->dt_s);
    double t_plateau = 0.0;
    *Tpeak = 0.0;
    for (long q = 0; q < n; q++) {
        CU_ASSERT_FATAL(sim_step(s, 1, &err) == ABL_OK);
        double T = s->T[centre];
        *Tpeak = fmax(*Tpeak, T);
        if (T >= 99.5 && T <= 100.0) t_plateau += s->dt_s;
    }
    *rel = balance(s);
    const abl_tissue *t = &sc->tissues.t[s->mat_tissue[s->material[centre]]];
    double Cu = t->rho_kg_m3 * t->c_J_kgK;
    double Lv = t->rho_kg_m3 * t->water_fraction * ABL_LATENT_VAPORISATION_J_KG;
    *bound_s = 0.5 * (Cu + Lv) / (3.0 / grid_voxel_volume_m3(&s->grid));
    sim_destroy(s);
    scenario_free(sc);
    return t_plateau;
}

static void test_vaporisation_plateau(void)
{
    double Tp_on, rel_on, b, Tp_off, rel_off;
    double t_on = plateau_run("on", &Tp_on, &rel_on, &b);
    double t_off = plateau_run("off", &Tp_off, &rel_off, &b);
    printf("\n  boiling: rel. residual %.2e; centre in 99.5-100 C for %.2f s (bound %.2f s), "
           "peak %.1f C; without vaporisation %.3f s, peak %.1f C",
           rel_on, t_on, b, Tp_on, t_off, Tp_off);
    CU_ASSERT(rel_on < 1e-6);
    CU_ASSERT(Tp_off > 100.5); /* the source does reach past the window */
    CU_ASSERT(t_on >= b);
    CU_ASSERT(t_off < 0.05 * t_on);
}

/* Checkpoint/restore in the middle of a freeze-thaw protocol (cryo source inside a ramp and
 * between phases, freezing with its hysteresis state, needle-track mask; explicit and implicit):
 * the resumed run ends bitwise identical to the uninterrupted one. */
static void test_checkpoint_freeze_bitwise(void)
{
    const char *schemes[] = {"explicit", "implicit"};
    for (int sch = 0; sch < 2; sch++) {
        char yaml[2048];
        snprintf(yaml, sizeof yaml,
                 "grid: {dims: [14, 14, 18], spacing_mm: [1, 1, 1], background: liver}\n"
                 "boundary: {default: {type: fixed_temperature, temperature_C: 37}}\n"
                 "time: {duration_s: 150, scheme: %s%s}\n"
                 "sources:\n"
                 "  - name: cryo\n"
                 "    type: cryo\n"
                 "    ramp_s: 5\n"
                 "    protocol:\n"
                 "      - {phase: freeze, duration_s: 60, temperature_C: -150}\n"
                 "      - {phase: passive_thaw, duration_s: 30}\n"
                 "      - {phase: freeze, duration_s: 60, temperature_C: -150}\n"
                 "    probes:\n"
                 "      - {tip_mm: [0.5, 0.5, -5], direction: [0, 0, 1], active_length_mm: 8, "
                 "gauge: 13}\n"
                 "output: {cold_thresholds_C: [0, -20, -40], monitor_interval_s: 1}\n",
                 schemes[sch], sch ? ", dt_s: 1" : "");
        abl_scenario *sc = tu_scenario(yaml, NULL, 0);
        CU_ASSERT_FATAL(sc != NULL);
        abl_sim *a = NULL, *b = NULL;
        abl_error err = {0};
        CU_ASSERT_FATAL(sim_create(sc, &a, &err) == ABL_OK);
        long n = (long)llround(sc->duration_s / a->dt_s);
        long cut = (long)llround(62.0 / a->dt_s); /* inside the passive thaw, 2 s in */
        CU_ASSERT_FATAL(sim_step(a, n, &err) == ABL_OK);
        CU_ASSERT_FATAL(sim_create(sc, &b, &err) == ABL_OK);
        CU_ASSERT_FATAL(sim_step(b, cut, &err) == ABL_OK);
        /* explicit: the active region is on, and its box travels in the checkpoint */
        CU_ASSERT(b->region_on == (sch == 0));
        char path[700];
        snprintf(path, sizeof path, "%s/freeze_%s.ckpt.h5", tu_tmpdir(), schemes[sch]);
        const abl_sim_view v = sim_view(b);
        CU_ASSERT_FATAL(checkpoint_write(path, &v, "", 0, NULL, &err) == ABL_OK);
        sim_destroy(b);
        b = NULL;
        CU_ASSERT_FATAL(sim_create(sc, &b, &err) == ABL_OK);
        if (checkpoint_restore(path, b, &err)) printf("\n  %s", err.msg);
        CU_ASSERT_FATAL(b->step == cut);
        CU_ASSERT_FATAL(sim_step(b, n - cut, &err) == ABL_OK);
        const size_t N = a->grid.n;
        CU_ASSERT(memcmp(a->T, b->T, N * sizeof *a->T) == 0);
        CU_ASSERT(memcmp(a->T_min, b->T_min, N * sizeof *a->T_min) == 0);
        CU_ASSERT(memcmp(a->freeze_cycles, b->freeze_cycles, N * sizeof(float)) == 0);
        CU_ASSERT(memcmp(a->applicator, b->applicator, N) == 0);
        float cyc = 0;
        for (size_t c = 0; c < N; c++) cyc = fmaxf(cyc, a->freeze_cycles[c]);
        printf("\n  %s: resumed at step %ld of %ld, bitwise %s; most freeze cycles per voxel %g",
               schemes[sch], cut, n, memcmp(a->T, b->T, N * sizeof *a->T) ? "NO" : "yes", cyc);
        CU_ASSERT(cyc == 2.0f); /* the probe voxels froze, thawed and froze again */
        sim_destroy(a);
        sim_destroy(b);
        scenario_free(sc);
    }
}

/* One explicit freezing run of the scenario text fmt (its %s: time.active_region or
 * time.multirate) on the given number of threads, stepped to its end; *sc_out owns the
 * scenario. */
static abl_sim *region_run_margin(const char *fmt, const char *mode, int threads, int margin,
                                  abl_scenario **sc_out);

static abl_sim *region_run(const char *fmt, const char *mode, int threads, abl_scenario **sc_out)
{
    return region_run_margin(fmt, mode, threads, 0, sc_out);
}

/* The same with the multirate step's fast box margin set (sim.h mr_margin; 0: the default). */
static abl_sim *region_run_margin(const char *fmt, const char *mode, int threads, int margin,
                                  abl_scenario **sc_out)
{
    char text[2048];
    snprintf(text, sizeof text, fmt, mode);
    abl_scenario *sc = tu_scenario(text, NULL, 0);
    CU_ASSERT_FATAL(sc != NULL);
    const int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    abl_sim *s = tu_sim(sc);
    if (margin > 0) s->mr_margin = margin;
    abl_error err = {0};
    /* to the end: the planned count, which the protocol's breakpoints make larger than
     * duration / dt (stepping duration / dt steps stopped up to a few steps short) */
    CU_ASSERT_FATAL(sim_step(s, s->nsteps_total, &err) == ABL_OK);
    CU_ASSERT(s->step == s->nsteps_total);
    omp_set_num_threads(saved);
    *sc_out = sc;
    return s;
}

/* The three runs the region tests compare: the region on at 2 threads, off (the whole-grid
 * path) at 2 threads, on at 1 thread. */
static void region_runs3(const char *yaml, abl_sim *run[3], abl_scenario *sc[3])
{
    const char *mode[3] = {"auto", "off", "auto"};
    const int threads[3] = {2, 2, 1};
    for (int r = 0; r < 3; r++) run[r] = region_run(yaml, mode[r], threads[r], &sc[r]);
}

/* Destroy the runs of a region test and free their scenarios. */
static void free_runs(abl_sim **run, abl_scenario **sc, int n)
{
    for (int r = 0; r < n; r++) {
        sim_destroy(run[r]);
        scenario_free(sc[r]);
    }
}

/* Voxels in the active region's row spans (sim.h span_lo/span_hi). */
static double span_voxels(const abl_sim *a)
{
    double n = 0.0;
    for (size_t r = 0; r < (size_t)a->grid.ny * (size_t)a->grid.nz; r++)
        n += a->span_hi[r] > a->span_lo[r] ? a->span_hi[r] - a->span_lo[r] : 0;
    return n;
}

/* The freeze / passive thaw / freeze scenario of the active-region and multirate tests: liver
 * with a tumour sphere, a 37 C wall and a 20 C convective face, perfusion shutdown, a tilted
 * 17 G probe, energy bookkeeping, on a grid of the given dims; time key time_key takes
 * region_run's mode (left as %s in buf), extra: more source entries. */
static void freeze_protocol_yaml(char *buf, size_t len, const char *dims, const char *time_key,
                                 const char *extra)
{
    snprintf(buf, len,
             "grid: {dims: %s, spacing_mm: [1, 1, 1], background: liver,\n"
             "       shapes: [{type: sphere, center_mm: [2, 1, 3], radius_mm: 4, tissue: tumour}]}\n"
             "physics: {perfusion_shutdown: arrhenius}\n"
             "boundary:\n"
             "  default: {type: fixed_temperature, temperature_C: 37}\n"
             "  z_max: {type: convective, temperature_C: 20, h_W_per_m2K: 10}\n"
             "time: {duration_s: 100, %s: %%s}\n"
             "sources:\n"
             "  - name: cryo\n"
             "    type: cryo\n"
             "    ramp_s: 5\n"
             "    protocol:\n"
             "      - {phase: freeze, duration_s: 50, temperature_C: -150}\n"
             "      - {phase: passive_thaw, duration_s: 20}\n"
             "      - {phase: freeze, duration_s: 30, temperature_C: -150}\n"
             "    probes:\n"
             "      - {tip_mm: [-1.3, 0.4, -4], direction: [0.3, 0.2, 1], active_length_mm: 8, "
             "gauge: 17}\n"
             "%s"
             "output: {energy_balance: true, cold_thresholds_C: [0, -20, -40], "
             "monitor_interval_s: 1}\n",
             dims, time_key, extra);
}

/* Active region of a heating run (sim.c "the active region of heating runs"): the step is the
 * whole-grid path's, only the enthalpy map and the perfusion-shutdown correction are confined
 * to the spans, and a heated voxel outside them joins when it crosses the window's edge. The
 * result must be the whole-grid path's bit for bit: a microwave antenna (its heat list is the
 * whole grid) in liver with a tumour, boiling and perfusion shutdown, a convective face,
 * energy bookkeeping, 80 s at 80 W (boiling and damage both happen: asserted). 1 vs 2 threads
 * bitwise. Both perfusion models that change with heating: exp(-Omega) and the threshold (the
 * correction's voxels, T_max >= 60 C, lie in the spans: they passed the window's top). */
static void active_region_heating(const char *model)
{
    char yaml[1400];
    snprintf(yaml, sizeof yaml,
             "grid: {dims: [48, 46, 56], spacing_mm: [1, 1, 1], background: liver,\n"
             "       shapes: [{type: sphere, center_mm: [1, 0, 2], radius_mm: 5, tissue: "
             "tumour}]}\n"
             "physics: {perfusion_shutdown: %s}\n"
             "boundary:\n"
             "  default: {type: fixed_temperature, temperature_C: 37}\n"
             "  z_max: {type: convective, temperature_C: 20, h_W_per_m2K: 10}\n"
             "time: {duration_s: 80, active_region: %%s}\n"
             "sources:\n"
             "  - {name: a, type: mwa, frequency_MHz: 2450, power_W: 80, tip_mm: [0.3, -0.2, "
             "-6],\n"
             "     direction: [0.2, 0.1, 1]}\n"
             "output: {energy_balance: true, monitor_interval_s: 1}\n",
             model);
    abl_sim *run[3];
    abl_scenario *sc[3];
    region_runs3(yaml, run, sc);
    const abl_sim *a = run[0], *b = run[1], *c1 = run[2];
    CU_ASSERT(a->region_on && a->region_heat_after);
    CU_ASSERT(!b->region_on);
    const size_t N = a->grid.n;
    size_t boiled = 0, damaged = 0;
    for (size_t c = 0; c < N; c++) {
        boiled += a->T_max[c] > 100.0;
        damaged += a->omega[c] >= 1.0;
    }
    const double spans = span_voxels(a);
    const bool sameT = !memcmp(a->T, b->T, N * sizeof *a->T),
               sameMax = !memcmp(a->T_max, b->T_max, N * sizeof *a->T),
               sameOm = !memcmp(a->omega, b->omega, N * sizeof *a->T),
               threads = !memcmp(a->T, c1->T, N * sizeof *a->T);
    printf("\n  heating region (%s): spans %.0f voxels (%.0f %% of the grid), %zu voxels boiled, "
           "%zu damaged; T, T_max, Omega bitwise the whole-grid path's: %s %s %s; source "
           "energy %.6f / %.6f J; 1 vs 2 threads bitwise %s",
           model, spans, 100.0 * spans / (double)N, boiled, damaged, sameT ? "yes" : "NO",
           sameMax ? "yes" : "NO", sameOm ? "yes" : "NO", a->energy.E_sources_J,
           b->energy.E_sources_J, threads ? "yes" : "NO");
    CU_ASSERT(sameT && sameMax && sameOm && threads);
    CU_ASSERT(a->energy.E_sources_J == b->energy.E_sources_J);
    CU_ASSERT(balance(a) < 1e-6); /* the same bound as the other region tests */
    CU_ASSERT(boiled > 0 && damaged > 20);   /* the map and the correction were exercised */
    /* and confined (half the grid here: the window's top, 38.5 C, spreads far on this small
     * grid; the scenarios' regions are 20-40 % of theirs) */
    CU_ASSERT(spans > 0.0 && spans < 0.75 * (double)N);
    free_runs(run, sc, 3);
}

static void test_active_region_heating(void)
{
    active_region_heating("arrhenius");
    active_region_heating("threshold");
}

/* The active region's invariant at voxel c: inside the box, or in the liquid window (T and T_min). */
static bool region_invariant_holds(const abl_sim *a, size_t c)
{
    const int i = (int)(c % a->grid.sy), j = (int)(c / a->grid.sy % (size_t)a->grid.ny),
              k = (int)(c / a->grid.sz);
    const size_t r = (size_t)k * (size_t)a->grid.ny + (size_t)j;
    /* inside its row's span (sim.h span_lo/span_hi), and the span inside the box */
    const bool in = i >= a->span_lo[r] && i < a->span_hi[r] && i >= a->reg_lo[0] &&
                    i < a->reg_hi[0] && j >= a->reg_lo[1] && j < a->reg_hi[1] &&
                    k >= a->reg_lo[2] && k < a->reg_hi[2];
    return in || (a->T[c] >= a->reg_T_lo_C && a->T[c] <= a->reg_T_hi_C &&
                  a->T_min[c] >= a->reg_T_lo_C);
}

/* Active region (sim.c, docs/PHASE_CHANGE.md "Active region"): an explicit freezing run that
 * steps the variable-property path and the enthalpy map only on the box of voxels that are or
 * were outside the liquid window equals the whole-grid path. Tilted probe, freeze / passive
 * thaw / freeze, a tumour sphere (tissue interfaces), a convective face at 20 C, perfusion
 * shutdown and energy bookkeeping on, a grid of unequal dimensions (index order).
 * Tolerances: the two paths do the same arithmetic except that outside the box the face
 * conductances come from the per-material tables (a divide instead of a multiply by 1/h^2)
 * and the liquid capacity is applied directly instead of through H (C_ref (T* - T0) / C_u):
 * last-bit differences that this 100 s run carries to 0.6-1.2e-11 K (measured); 1e-9 K leaves
 * a factor 80 or more, while a voxel that missed the enthalpy map by one step would be off by
 * ~C_u/C_f - 1 = 70 % of its step change (~1e-3 K and more). Same thread-count rule as every
 * path: bitwise equal at 1 and 2 threads. The box must hold every voxel outside the window
 * (its invariant) and must be smaller than the grid (else the test checks nothing). */
static void test_active_region(void)
{
    char yaml[2048];
    freeze_protocol_yaml(yaml, sizeof yaml, "[26, 24, 30]", "active_region", "");
    abl_sim *run[3];
    abl_scenario *sc[3];
    region_runs3(yaml, run, sc);
    abl_sim *a = run[0], *b = run[1], *c1 = run[2];
    CU_ASSERT(a->region_on);
    CU_ASSERT(!b->region_on);
    const size_t N = a->grid.n;
    const double dT = tu_maxdiff(a->T, b->T, N), dmin = tu_maxdiff(a->T_min, b->T_min, N);
    size_t cyc_diff = 0, outside_bad = 0, frozen = 0;
    for (size_t c = 0; c < N; c++) {
        cyc_diff += a->freeze_cycles[c] != b->freeze_cycles[c];
        frozen += a->T_min[c] < -8.0;
        outside_bad += !region_invariant_holds(a, c);
    }
    const double box = (double)(a->reg_hi[0] - a->reg_lo[0]) * (a->reg_hi[1] - a->reg_lo[1]) *
                       (a->reg_hi[2] - a->reg_lo[2]);
    /* voxels in the rows' spans: the part of the box the hook visits */
    const double spans = span_voxels(a);
    const double eA = a->energy.E_sources_J, eB = b->energy.E_sources_J;
    printf("\n  spans %.0f voxels (%.0f %% of the box); "
           "region box %d..%d x %d..%d x %d..%d (%.1f %% of the grid), %zu voxels froze; "
           "max |dT| %.2e K, |dT_min| %.2e K, freeze-cycle differences %zu; source energy "
           "%.6f / %.6f J; 1 vs 2 threads bitwise %s",
           spans, 100.0 * spans / box, a->reg_lo[0], a->reg_hi[0], a->reg_lo[1], a->reg_hi[1],
           a->reg_lo[2], a->reg_hi[2], 100.0 * box / (double)N, frozen, dT, dmin, cyc_diff, eA,
           eB, memcmp(a->T, c1->T, N * sizeof *a->T) ? "NO" : "yes");
    /* the spans are tighter than the box around a tilted probe's ice (else they save nothing
     * and the variable-property spans' logic is barely exercised) */
    CU_ASSERT(spans < 0.9 * box);
    CU_ASSERT(dT <= 1e-9);
    CU_ASSERT(dmin <= 1e-9);
    CU_ASSERT_EQUAL(cyc_diff, 0);
    CU_ASSERT(fabs(eA - eB) <= 1e-9 * fabs(eB));
    CU_ASSERT(balance(a) < 1e-6); /* same bound as the freeze-thaw energy test */
    CU_ASSERT_EQUAL(outside_bad, 0);
    CU_ASSERT(frozen > 20);
    CU_ASSERT(box < 0.5 * (double)N);
    CU_ASSERT(memcmp(a->T, c1->T, N * sizeof *a->T) == 0);
    CU_ASSERT(memcmp(a->T_min, c1->T_min, N * sizeof *a->T_min) == 0);
    free_runs(run, sc, 3);
}

/* The same equality without perfusion shutdown, where the window reaches up to the start of
 * vaporisation (sim.c plan_region): a 39 C saline bath (the warm-gel phantoms of the cryo
 * validation cases), walls at 39 C, a straight 13 G probe, 60 s. Same tolerance and reasons as
 * above. */
static void test_active_region_warm_bath(void)
{
    const char *yaml =
        "grid: {dims: [22, 20, 26], spacing_mm: [1, 1, 1], background: saline}\n"
        "physics: {initial_temperature_C: 39, arterial_temperature_C: 39}\n"
        "boundary: {default: {type: fixed_temperature, temperature_C: 39}}\n"
        "time: {duration_s: 60, active_region: %s}\n"
        "sources:\n"
        "  - {name: cryo, type: cryo, ramp_s: 5, protocol: [{phase: freeze, duration_s: 60}],\n"
        "     probes: [{tip_mm: [0.5, 0.5, -5], direction: [0, 0, 1], active_length_mm: 8, "
        "gauge: 13}]}\n";
    abl_sim *run[2] = {NULL, NULL};
    abl_scenario *sc[2] = {NULL, NULL};
    const char *mode[2] = {"auto", "off"};
    for (int r = 0; r < 2; r++) run[r] = region_run(yaml, mode[r], omp_get_max_threads(), &sc[r]);
    const size_t N = run[0]->grid.n;
    const double dT = tu_maxdiff(run[0]->T, run[1]->T, N);
    size_t frozen = 0;
    for (size_t c = 0; c < N; c++) frozen += run[0]->T_min[c] < -8.0;
    printf("\n  39 C bath, no perfusion shutdown: region %s (window top %.1f C), %zu voxels froze, "
           "max |dT| %.2e K",
           run[0]->region_on ? "on" : "OFF", run[0]->reg_T_hi_C, frozen, dT);
    CU_ASSERT(run[0]->region_on);
    CU_ASSERT(dT <= 1e-9);
    CU_ASSERT(frozen > 20);
    free_runs(run, sc, 2);
}

/* Multirate step (sim.c multirate_step, docs/PHASE_CHANGE.md "Multirate step"): the active
 * region's scenario on a larger grid, with a 37 C wall and a convective face, perfusion
 * shutdown and the energy bookkeeping on, time.multirate auto against off.
 * - Heat: the exchange across the fast box's faces is exact by construction, so the stored
 *   enthalpy change equals the probe's, perfusion's and faces' heat to the rounding of the
 *   sums (1e-6 as the freeze-thaw energy test; measured ~1e-13).
 * - Accuracy: the long step is forward Euler at up to m = dt_liquid / dt times the short one
 *   on tissue in the liquid window, and the short steps see S's values frozen at the long
 *   step's start: both first-order errors of size ~ m dt |dT/dt| at the fast box's faces, two
 *   voxels outside the ice box (m dt ~ 1 s, |dT/dt| there up to ~0.1 K/s). Bound asserted:
 *   0.1 K anywhere after 100 s (measured 0.043 K), and the -40 / -20 / 0 C isotherm volumes
 *   within 0.5 % (measured: identical). The same run without the exchange correction is off by
 *   0.66 K and its heat balance by 2.2e-3 (checked by hand), so both bounds can fail.
 * - Threads: bitwise equal at 1 and 2 threads; a checkpoint taken mid-run (inside the passive
 *   thaw) resumes bitwise (the long-step choice depends on the state alone).
 * - A region held at 36 C outside the fast box (hydrodissection-like) is held exactly at the
 *   long steps' ends, its heat in the balance.
 * - The box invariant: every voxel outside the active region's box is in the liquid window. */
static void test_multirate(void)
{
    char yaml[2048];
    freeze_protocol_yaml(
        yaml, sizeof yaml, "[40, 38, 44]", "multirate",
        "  - {name: warm, type: fixed_temperature, schedule: [{time_s: 0, temperature_C: 36}],\n"
        "     shape: {type: box, min_mm: [-19, -18, -20], max_mm: [-15, -10, 20]}}\n");
    abl_sim *run[3];
    abl_scenario *sc[3];
    region_runs3(yaml, run, sc);
    abl_sim *a = run[0], *b = run[1], *c1 = run[2];
    CU_ASSERT_FATAL(a->mr_ratio >= 2);
    /* the 36 C box (a held region in the liquid window, like a hydrodissection layer) lies
     * outside the fast box: held at the long steps' ends, exactly */
    {
        const abl_grid *g = &a->grid;
        size_t held = 0, off = 0;
        for (int k = 0; k < g->nz; k++)
            for (int j = 0; j < g->ny; j++)
                for (int i = 0; i < g->nx; i++) {
                    double x[3];
                    grid_voxel_centre_m(g, i, j, k, x);
                    if (!(x[0] > -0.019 && x[0] < -0.015 && x[1] > -0.018 && x[1] < -0.010 &&
                          x[2] > -0.020 && x[2] < 0.020))
                        continue;
                    held++;
                    off += a->T[ABL_IDX(g, i, j, k)] != 36.0;
                    CU_ASSERT(i < a->mr_lo[0] || i >= a->mr_hi[0] || j < a->mr_lo[1] ||
                              j >= a->mr_hi[1] || k < a->mr_lo[2] || k >= a->mr_hi[2]);
                }
        CU_ASSERT(held > 100);
        CU_ASSERT_EQUAL(off, 0);
    }
    CU_ASSERT(b->mr_ratio == 0);
    const size_t N = a->grid.n;
    const double V = grid_voxel_volume_m3(&a->grid) * 1e6; /* mL */
    const double dT = tu_maxdiff(a->T, b->T, N);
    const double th[3] = {-40.0, -20.0, 0.0};
    double vol[2][3] = {{0}};
    size_t outside_bad = 0;
    for (size_t c = 0; c < N; c++) {
        for (int q = 0; q < 3; q++) {
            vol[0][q] += (a->T_min[c] <= th[q]) * V;
            vol[1][q] += (b->T_min[c] <= th[q]) * V;
        }
        outside_bad += !region_invariant_holds(a, c);
    }
    const double fbox = (double)(a->mr_hi[0] - a->mr_lo[0]) * (a->mr_hi[1] - a->mr_lo[1]) *
                        (a->mr_hi[2] - a->mr_lo[2]);
    printf("\n  m = %d, %ld long steps, fast box %.1f %% of the grid; max |dT| vs single rate "
           "%.3g K; V(-40/-20/0 C) %.4f/%.4f/%.4f vs %.4f/%.4f/%.4f mL; energy residual "
           "%.2e (single rate %.2e); 1 vs 2 threads bitwise %s",
           a->mr_ratio, a->mr_long_steps, 100.0 * fbox / (double)N, dT, vol[0][0], vol[0][1],
           vol[0][2], vol[1][0], vol[1][1], vol[1][2], balance(a), balance(b),
           memcmp(a->T, c1->T, N * sizeof *a->T) ? "NO" : "yes");
    CU_ASSERT(a->mr_long_steps > 0);
    CU_ASSERT(fbox < 0.6 * (double)N); /* else the long step covers nothing worth testing */
    CU_ASSERT(balance(a) < 1e-6);
    CU_ASSERT(dT <= 0.1);
    for (int q = 0; q < 3; q++) {
        CU_ASSERT(vol[1][q] > 0.0);
        CU_ASSERT(fabs(vol[0][q] - vol[1][q]) <= 0.005 * vol[1][q]);
    }
    CU_ASSERT_EQUAL(outside_bad, 0);
    CU_ASSERT(memcmp(a->T, c1->T, N * sizeof *a->T) == 0);
    CU_ASSERT(memcmp(a->T_min, c1->T_min, N * sizeof *a->T_min) == 0);

    /* resume: a checkpoint 62 s in (inside the passive thaw), restored into a fresh sim */
    abl_error err = {0};
    abl_sim *r = NULL;
    CU_ASSERT_FATAL(sim_create(sc[0], &r, &err) == ABL_OK);
    const long n = a->nsteps_total, cut = (long)llround(62.0 / r->dt_s);
    CU_ASSERT_FATAL(sim_step(r, cut, &err) == ABL_OK);
    char path[700];
    snprintf(path, sizeof path, "%s/multirate.ckpt.h5", tu_tmpdir());
    const abl_sim_view v = sim_view(r);
    CU_ASSERT_FATAL(checkpoint_write(path, &v, "", 0, NULL, &err) == ABL_OK);
    const long at = r->step;
    sim_destroy(r);
    r = NULL;
    CU_ASSERT_FATAL(sim_create(sc[0], &r, &err) == ABL_OK);
    if (checkpoint_restore(path, r, &err)) printf("\n  %s", err.msg);
    CU_ASSERT_FATAL(r->step == at);
    CU_ASSERT_FATAL(sim_step(r, n - at, &err) == ABL_OK);
    CU_ASSERT(r->step == n);
    /* the same split without the checkpoint: the running maps are sampled where a sim_step
     * call ends too, so they are compared with this run; the temperature does not depend on
     * the sampling (stasis reads a T_min kept current every step) and equals run a's */
    abl_sim *r2 = NULL;
    CU_ASSERT_FATAL(sim_create(sc[0], &r2, &err) == ABL_OK);
    CU_ASSERT_FATAL(sim_step(r2, cut, &err) == ABL_OK);
    CU_ASSERT_FATAL(sim_step(r2, n - r2->step, &err) == ABL_OK);
    printf("; resumed at step %ld of %ld: bitwise %s", at, n,
           memcmp(a->T, r->T, N * sizeof *a->T) ? "NO" : "yes");
    CU_ASSERT(memcmp(a->T, r->T, N * sizeof *a->T) == 0);
    CU_ASSERT(memcmp(r2->T, r->T, N * sizeof *a->T) == 0);
    CU_ASSERT(memcmp(r2->T_min, r->T_min, N * sizeof *a->T_min) == 0);
    CU_ASSERT(memcmp(r2->freeze_cycles, r->freeze_cycles, N * sizeof(float)) == 0);
    /* the run's multirate counts travel in the checkpoint (QA, session 29: a resumed run
     * reported only its own part, e.g. 992 of 1752 long steps) */
    printf("; long steps %ld (uninterrupted %ld), ended early %ld (%ld)", r->mr_long_steps,
           r2->mr_long_steps, r->mr_early_ends, r2->mr_early_ends);
    CU_ASSERT(r->mr_long_steps > 0 && r->mr_long_steps == r2->mr_long_steps);
    CU_ASSERT(r->mr_early_ends == r2->mr_early_ends);
    sim_destroy(r);
    sim_destroy(r2);
    free_runs(run, sc, 3);
}

/* Multirate step ended early: a -150 C block and an 80 C block (perfusion shutdown: the window
 * ends at 38.5 C, so the heated tissue joins the active region too) in 37 C liver, energy
 * bookkeeping on, with the fast box only one voxel wider than the active box (mr_margin 1; the
 * runs use 2, where growth through liquid tissue almost never reaches it within a long step).
 * Every growth of the box then ends the long step after fewer than m short steps
 * (multirate_step) and the rest of the grid takes k dt (the planned long sweep scaled by k / m).
 * Asserted: some long steps ended early; heat balance 1e-6 as the freeze-thaw test (measured
 * 2e-14); -40 / 0 C volumes within 0.5 % (measured: identical); max |T - T_single rate| <= 0.5 K
 * after 20 s: the fast box's faces are one voxel from the heated tissue, where |dT/dt| reaches
 * ~0.3 K/s, so the first-order error m dt |dT/dt| is ~0.3 K (measured 0.21 K; without the
 * exchange correction 3.2 K and a heat residual of 3.5e-3, checked by hand); bitwise at 1 and
 * 2 threads. */
static void test_multirate_early_end(void)
{
    const char *yaml =
        "grid: {dims: [36, 34, 30], spacing_mm: [1, 1, 1], background: liver}\n"
        "physics: {perfusion_shutdown: arrhenius}\n"
        "boundary: {default: {type: fixed_temperature, temperature_C: 37}}\n"
        "time: {duration_s: 20, multirate: %s}\n"
        "sources:\n"
        "  - {name: cold, type: fixed_temperature, schedule: [{time_s: 0, temperature_C: -150}],\n"
        "     shape: {type: box, min_mm: [-6, -2, -4], max_mm: [-2, 2, 4]}}\n"
        "  - {name: hot, type: fixed_temperature, schedule: [{time_s: 0, temperature_C: 80}],\n"
        "     shape: {type: box, min_mm: [3, -2, -4], max_mm: [7, 2, 4]}}\n"
        "output: {energy_balance: true, cold_thresholds_C: [0, -40], monitor_interval_s: 1}\n";
    const char *mode[3] = {"auto", "off", "auto"};
    const int threads[3] = {2, 2, 1};
    abl_sim *run[3] = {NULL, NULL, NULL};
    abl_scenario *sc[3] = {NULL, NULL, NULL};
    /* margin 1: any growth of the box ends a long step */
    for (int r = 0; r < 3; r++) run[r] = region_run_margin(yaml, mode[r], threads[r], 1, &sc[r]);
    abl_sim *a = run[0], *b = run[1];
    const size_t N = a->grid.n;
    const double V = grid_voxel_volume_m3(&a->grid) * 1e6;
    double va[2] = {0, 0}, vb[2] = {0, 0};
    for (size_t c = 0; c < N; c++) {
        va[0] += (a->T_min[c] <= -40.0) * V, vb[0] += (b->T_min[c] <= -40.0) * V;
        va[1] += (a->T_min[c] <= 0.0) * V, vb[1] += (b->T_min[c] <= 0.0) * V;
    }
    const double dT = tu_maxdiff(a->T, b->T, N);
    printf("\n  m = %d, %ld long steps, %ld ended early; max |dT| vs single rate %.3g K; "
           "V(-40/0 C) %.3f/%.3f vs %.3f/%.3f mL; energy residual %.2e",
           a->mr_ratio, a->mr_long_steps, a->mr_early_ends, dT, va[0], va[1], vb[0], vb[1],
           balance(a));
    CU_ASSERT(a->mr_ratio >= 2);
    CU_ASSERT(a->mr_early_ends > 0);
    CU_ASSERT(a->step == a->nsteps_total);
    CU_ASSERT(balance(a) < 1e-6);
    CU_ASSERT(dT <= 0.5);
    for (int q = 0; q < 2; q++) {
        CU_ASSERT(vb[q] > 0.0);
        CU_ASSERT(fabs(va[q] - vb[q]) <= 0.005 * vb[q]);
    }
    CU_ASSERT(memcmp(a->T, run[2]->T, N * sizeof *a->T) == 0);
    free_runs(run, sc, 3);
}

/* A material whose every voxel is held at every step (a hydrodissection's warm saline, held at
 * 37 C by a fixed_temperature box on for the whole run) never freezes, so its frozen
 * conductivity does not bound the explicit step (sim.c plan_held_materials). Runs: a -150 C
 * probe in liver beside a 4 x 10 x 16 mm saline layer, 30^3 grid at 1 mm, 120 s, energy
 * bookkeeping on.
 *  A: the layer held throughout: dt_stable is liver's (equal to run B's, where the layer is
 *     liver: the held saline's faces see its k at 37 C, below frozen liver's);
 *  C: the layer released at 60 s: saline may freeze, its frozen diffusivity (1.07e-6 m^2/s
 *     against liver's 7.7e-7) bounds the step, which is shorter (measured ratio 0.72);
 *  D: the layer held at -5 C (below the liquidus, may be frozen): the full bound, as C;
 *  E: run A at run C's shorter step (dt_s set). A against E: max |dT| <= 0.5 K (first order in
 *     dt; measured 0.03 K), -40 C volumes within 2 %, energy residual <= 1e-6 in both, every
 *     temperature in [-150, 37.5] C, the layer at 37 C exactly;
 *  F: a light held material (saline with rho c 100 x 300, frozen alike) with the active region
 *     and the multirate step: its own update must stay within the bound (the hold overwrites it,
 *     but the region, the phase map's bookkeeping and the walls read it first). Leaving the held
 *     material out of the bound (this change's first version) gave an energy residual of -2.3
 *     here (review); asserted <= 1e-6, and dt within the light material's own bound. */
static abl_sim *held_run(const char *layer, const char *extra, double dt_s, const char *time_more,
                         const char *more, abl_scenario **sc_out)
{
    char yaml[3072], dt[64] = "auto";
    if (dt_s > 0) snprintf(dt, sizeof dt, "%.17g", dt_s);
    snprintf(yaml, sizeof yaml,
             "grid: {dims: [30, 30, 30], spacing_mm: [1, 1, 1], background: liver,\n"
             "       shapes: [{type: box, min_mm: [4, -5, -8], max_mm: [8, 5, 8], tissue: %s}]}\n"
             "boundary: {default: {type: fixed_temperature, temperature_C: 37}}\n"
             "time: {duration_s: 120, dt_s: %s, scheme: explicit%s}\n"
             "sources:\n"
             "  - {name: probe, type: fixed_temperature, temperature_C: -150,\n"
             "     shape: {type: cylinder, start_mm: [-3, 0, -8], end_mm: [-3, 0, 8], radius_mm: 1}}\n"
             "  - {name: layer, type: fixed_temperature, %s,\n"
             "     shape: {type: box, min_mm: [4, -5, -8], max_mm: [8, 5, 8]}}\n"
             "output: {energy_balance: true, cold_thresholds_C: [-40]}\n%s",
             layer, dt, time_more, extra, more);
    abl_scenario *sc = tu_scenario(yaml, NULL, 0);
    CU_ASSERT_FATAL(sc != NULL);
    abl_sim *s = tu_sim(sc);
    *sc_out = sc;
    return s;
}

static void test_held_material_bound(void)
{
    abl_scenario *sc[6];
    const char *off = ", multirate: off";
    abl_sim *A = held_run("saline", "temperature_C: 37", 0, off, "", &sc[0]);
    abl_sim *B = held_run("liver", "temperature_C: 37", 0, off, "", &sc[1]);
    abl_sim *C = held_run("saline", "temperature_C: 37, off_s: 60", 0, off, "", &sc[2]);
    abl_sim *D = held_run("saline", "temperature_C: -5", 0, off, "", &sc[3]);
    abl_sim *E = held_run("saline", "temperature_C: 37", C->dt_s, off, "", &sc[4]);
    abl_sim *F = held_run("saline", "temperature_C: 37", 0, ", multirate: auto",
                          "tissues:\n  saline: {density_kg_per_m3: 100, specific_heat_J_per_kgK: "
                          "300,\n           frozen_density_kg_per_m3: 100, "
                          "frozen_specific_heat_J_per_kgK: 300}\n",
                          &sc[5]);
    int saline = -1;
    for (int m = 0; m < A->nmat; m++)
        if (!strcmp(sc[0]->tissues.t[A->mat_tissue[m]].name, "saline")) saline = m;
    CU_ASSERT_FATAL(saline >= 0);
    CU_ASSERT(A->held_always[saline] && F->held_always[saline]);
    CU_ASSERT(!C->held_always[saline] && !D->held_always[saline] && E->held_always[saline]);
    CU_ASSERT_DOUBLE_EQUAL(A->dt_stable_s, B->dt_stable_s, 0.0);
    CU_ASSERT(C->dt_stable_s < 0.8 * A->dt_stable_s);
    CU_ASSERT_DOUBLE_EQUAL(D->dt_stable_s, C->dt_stable_s, 0.0);
    /* F's step: within the light material's own bound (its k at 37 C, capacity 3e4 J/m^3/K:
     * 6 k / (h^2 C) ... the code's bound, which is below liver's) */
    CU_ASSERT(F->dt_stable_s < 0.5 * A->dt_stable_s);
    CU_ASSERT(F->dt_stable_s * F->inv_rhoc[saline] * F->rate_sum_W_m3K[saline] <= 1.0 + 1e-12);
    abl_error err = {0};
    abl_sim *run[3] = {A, E, F};
    double vol[3] = {0}, lo[3], hi[3];
    size_t off_n[3] = {0};
    for (int r = 0; r < 3; r++) {
        abl_sim *s = run[r];
        lo[r] = INFINITY, hi[r] = -INFINITY;
        const long n = (long)llround(120.0 / s->dt_s);
        CU_ASSERT_FATAL(sim_step(s, n, &err) == ABL_OK);
        for (size_t c = 0; c < s->grid.n; c++) {
            vol[r] += (s->T_min[c] <= -40.0) * 1e-3;
            lo[r] = fmin(lo[r], s->T_min[c]);
            hi[r] = fmax(hi[r], s->T_max[c]);
            off_n[r] += s->material[c] == saline && s->T[c] != 37.0;
        }
    }
    const double dT = tu_maxdiff(A->T, E->T, A->grid.n);
    printf("\n  dt %.4f s held (liver's bound %.4f), %.4f s released / below the liquidus; "
           "max |dT| %.3g K, V(-40 C) %.3f vs %.3f mL, residual %.1e / %.1e, T in [%.1f, %.2f]; "
           "light held material: dt %.4f s, residual %.1e (multirate m = %d)",
           A->dt_s, B->dt_stable_s, C->dt_s, dT, vol[0], vol[1], balance(A), balance(E), lo[0],
           hi[0], F->dt_s, balance(F), F->mr_ratio);
    CU_ASSERT(dT <= 0.5);
    CU_ASSERT(vol[1] > 0.05);
    CU_ASSERT(fabs(vol[0] - vol[1]) <= 0.02 * vol[1]);
    for (int r = 0; r < 3; r++) {
        CU_ASSERT(balance(run[r]) <= 1e-6);
        CU_ASSERT(lo[r] >= -150.0 && hi[r] <= 37.5);
        CU_ASSERT_EQUAL(off_n[r], 0);
    }
    sim_destroy(A), sim_destroy(B), sim_destroy(C), sim_destroy(D), sim_destroy(E), sim_destroy(F);
    for (int i = 0; i < 6; i++) scenario_free(sc[i]);
}

void register_phase_tests(void)
{
    CU_pSuite s = CU_add_suite("phase", NULL, NULL);
    CU_add_test(s, "enthalpy curve: continuity, latent heats, inverse", test_curve);
    CU_add_test(s, "Neumann Stefan front within 2% (explicit, 0.25 mm; first order in h)", test_neumann_explicit);
    CU_add_test(s, "Neumann Stefan front: implicit within 0.5% of explicit (Chernoff)", test_neumann_implicit);
    CU_add_test(s, "mushy-zone width sensitivity", test_mushy_width);
    CU_add_test(s, "energy balance through freeze, passive and active thaw", test_energy_freeze_thaw);
    CU_add_test(s, "boiling: energy balance and the 100 C plateau", test_vaporisation_plateau);
    CU_add_test(s, "active region equals the whole-grid path (explicit freezing)",
                test_active_region);
    CU_add_test(s, "active region of a heating run equals the whole-grid path bitwise",
                test_active_region_heating);
    CU_add_test(s, "active region in a 39 C bath without perfusion shutdown",
                test_active_region_warm_bath);
    CU_add_test(s, "multirate step: heat exact, close to single rate, threads, resume",
                test_multirate);
    CU_add_test(s, "multirate step ended early: heat exact, close to single rate", test_multirate_early_end);
    CU_add_test(s, "a material held at every step: the step not bound by its frozen properties",
                test_held_material_bound);
    CU_add_test(s, "checkpoint mid-protocol: bitwise resume (cryo, freezing)",
                test_checkpoint_freeze_bitwise);
}
