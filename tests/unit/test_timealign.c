/* test_timealign.c - step-aligned time (issue 15 item 2): every source switch, schedule point,
 * protocol phase and snapshot time is a step boundary in every scheme, and every scheme
 * delivers exactly the energy the schedule asks for, with switch times that are not multiples
 * of the natural step. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ablasim/dtcheck.h"
#include "ablasim/sim.h"
#include "testutil.h"

/* A volumetric source switched on at 3.3 s and off at 77.7 s, with a ramp, a plateau and a
 * step down, in one homogeneous tissue (so the spectral scheme applies too). None of the times
 * is a multiple of any scheme's step. */
static const char *yaml =
    "name: timealign\n"
    "tissues_file: %s/configs/tissues.yaml\n"
    "grid: {dims: [12, 12, 12], spacing_mm: [2, 2, 2], background: liver}\n"
    "time: {duration_s: 100, scheme: %s%s}\n"
    "sources:\n"
    "  - {name: s, type: volumetric, on_s: 3.3, off_s: 77.7,\n"
    "     shape: {type: box, min_mm: [-3, -3, -3], max_mm: [3, 3, 3]},\n"
    "     schedule: [{time_s: 0, power_W: 0}, {time_s: 13.7, power_W: 2},\n"
    "                {time_s: 41.3, power_W: 2}, {time_s: 41.3, power_W: 1}]}\n"
    "output: {snapshot_interval_s: 23.9}\n";

/* The schedule's integral over [3.3, 77.7]: the ramp 0 -> 2 W over [0, 13.7] from 3.3, the
 * plateau to 41.3, then 1 W to 77.7 (J). */
static double exact_energy_J(void)
{
    const double a = 3.3, r = 13.7;
    const double ramp = (r * r - a * a) / r; /* integral of 2 t / r over [a, r] */
    return ramp + 2.0 * (41.3 - 13.7) + 1.0 * (77.7 - 41.3);
}

static abl_sim *make(const char *scheme, const char *extra, abl_scenario **sc_out)
{
    char text[2000];
    snprintf(text, sizeof text, yaml, tu_root(), scheme, extra);
    abl_scenario *sc = tu_scenario(text, NULL, 0);
    CU_ASSERT_FATAL(sc != NULL);
    abl_sim *s = NULL;
    abl_error err = {0};
    abl_status st = sim_create(sc, &s, &err);
    if (st) printf("\n  %s", err.msg);
    CU_ASSERT_FATAL(st == ABL_OK);
    *sc_out = sc;
    return s;
}

static void check_scheme(const char *scheme, const char *extra)
{
    abl_scenario *sc;
    abl_sim *s = make(scheme, extra, &sc);
    /* snapshot times are k * interval, formed as the driver forms them */
    const double must[] = {3.3, 13.7, 23.9, 41.3, 2 * 23.9, 3 * 23.9, 77.7, 4 * 23.9, 100.0};
    const int nmust = (int)(sizeof must / sizeof *must);
    int hit = 0;
    double hmax = 0.0, tprev = 0.0;
    abl_error err = {0};
    while (s->step < s->nsteps_total) {
        CU_ASSERT_FATAL(sim_step(s, 1, &err) == ABL_OK);
        hmax = fmax(hmax, s->t_s - tprev);
        /* a breakpoint is reached exactly (t is set to it), never stepped over */
        for (int i = 0; i < nmust; i++) {
            if (s->t_s == must[i]) hit++;
            CU_ASSERT(!(tprev < must[i] && s->t_s > must[i]));
        }
        tprev = s->t_s;
    }
    const double E = s->energy.E_sources_J, Ex = exact_energy_J();
    /* 1e-9: the schedule average is exact; what is left is the rounding of summing ~1e3
     * step energies (relative 1e-13 or so) */
    const double rel = fabs(E - Ex) / Ex;
    printf("\n  %-15s %4ld steps (dt %.4g s, longest %.4g s), %d/%d breakpoints landed on, "
           "energy %.12g J vs %.12g J (rel %.1e)",
           scheme, s->step, s->dt_s, hmax, hit, nmust, E, Ex, rel);
    CU_ASSERT(rel <= 1e-9);
    CU_ASSERT_EQUAL(hit, nmust);
    CU_ASSERT(hmax <= s->dt_s * (1 + 1e-9));
    CU_ASSERT_EQUAL(s->t_s, 100.0);
    sim_destroy(s);
    scenario_free(sc);
}

static void test_energy_explicit(void)
{
    check_scheme("explicit", "");
}

static void test_energy_implicit(void)
{
    check_scheme("implicit", ", dt_s: 1.7");
}

static void test_energy_cn(void)
{
    check_scheme("crank_nicolson", ", dt_s: 1.7");
}

static void test_energy_spectral(void)
{
    check_scheme("spectral", ", dt_s: 1.7");
}

/* The estimate of run --dt-check (dtcheck.h) against the scheme's order: run the case at dt,
 * dt/2 and dt/4 and compare, as the command does, each run with the next. For a scheme of
 * order p the difference d(dt) = |T_dt - T_dt/2| ~ C dt^p (1 - 2^-p), so d(dt) / d(dt/2) ~ 2^p:
 * 2 for forward and backward Euler, 4 for Crank-Nicolson. Bounds: 2^p within 25 % (what is
 * left is the next term of the error expansion at these steps, 2 mm voxels; measured ratios
 * are printed). A check whose number did not shrink with the step like the scheme's error
 * would fail here. */
static double dt_check_diff(const char *scheme, double dt_s, double *T55_mL)
{
    char extra[64];
    snprintf(extra, sizeof extra, ", dt_s: %.17g", dt_s);
    abl_scenario *sa, *sb;
    abl_sim *a = make(scheme, extra, &sa);
    snprintf(extra, sizeof extra, ", dt_s: %.17g", dt_s / 2);
    abl_sim *b = make(scheme, extra, &sb);
    abl_error err = {0};
    CU_ASSERT_FATAL(sim_step(a, a->nsteps_total, &err) == ABL_OK);
    CU_ASSERT_FATAL(sim_step(b, b->nsteps_total, &err) == ABL_OK);
    abl_dt_reference ref;
    const abl_sim_view vb = sim_view(b), va = sim_view(a);
    CU_ASSERT_FATAL(dt_reference_take(&vb, &ref, &err) == ABL_OK);
    abl_dt_check d;
    dt_check_compare(&va, &ref, &d);
    CU_ASSERT_FATAL(d.done);
    CU_ASSERT(fabs(d.dt_ref_s - b->dt_s) == 0.0 && d.steps_ref == b->step);
    /* the comparison is the largest voxel difference of the two runs' final fields */
    CU_ASSERT(d.T_final_diff_C == tu_maxdiff(a->T, b->T, a->grid.n));
    *T55_mL = d.volume_mL[0];
    const double diff = d.T_final_diff_C;
    dt_reference_free(&ref);
    sim_destroy(a);
    sim_destroy(b);
    scenario_free(sa);
    scenario_free(sb);
    return diff;
}

static void check_order(const char *scheme, double dt_s, double p)
{
    double v;
    const double d1 = dt_check_diff(scheme, dt_s, &v), d2 = dt_check_diff(scheme, dt_s / 2, &v);
    const double ratio = d1 / d2, want = pow(2.0, p);
    printf("\n  %-15s dt %.3g s: |T_dt - T_dt/2| %.3e K, at dt/2 %.3e K, ratio %.3f (order %g: "
           "%g)",
           scheme, dt_s, d1, d2, ratio, p, want);
    CU_ASSERT(d1 > 0.0 && d2 > 0.0);
    CU_ASSERT(fabs(ratio - want) <= 0.25 * want);
}

static void test_dt_check_order(void)
{
    check_order("explicit", 2.0, 1.0);
    check_order("implicit", 1.7, 1.0);
    check_order("crank_nicolson", 1.7, 2.0);
}

void register_timealign_tests(void)
{
    CU_pSuite s = CU_add_suite("timealign", NULL, NULL);
    CU_add_test(s, "explicit: breakpoints landed on, exact energy", test_energy_explicit);
    CU_add_test(s, "backward Euler: breakpoints landed on, exact energy", test_energy_implicit);
    CU_add_test(s, "Crank-Nicolson: breakpoints landed on, exact energy", test_energy_cn);
    CU_add_test(s, "spectral: breakpoints landed on, exact energy", test_energy_spectral);
    CU_add_test(s, "dt check: the half-step difference shrinks with the scheme's order",
                test_dt_check_order);
}
