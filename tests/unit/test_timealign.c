/* test_timealign.c - step-aligned time (issue 15 item 2): every source switch, schedule point,
 * protocol phase and snapshot time is a step boundary in every scheme, and every scheme
 * delivers exactly the energy the schedule asks for, with switch times that are not multiples
 * of the natural step. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

void register_timealign_tests(void)
{
    CU_pSuite s = CU_add_suite("timealign", NULL, NULL);
    CU_add_test(s, "explicit: breakpoints landed on, exact energy", test_energy_explicit);
    CU_add_test(s, "backward Euler: breakpoints landed on, exact energy", test_energy_implicit);
    CU_add_test(s, "Crank-Nicolson: breakpoints landed on, exact energy", test_energy_cn);
    CU_add_test(s, "spectral: breakpoints landed on, exact energy", test_energy_spectral);
}
