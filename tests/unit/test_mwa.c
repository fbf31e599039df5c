/* test_mwa.c - the microwave antenna source (src/sources/mwa.c): power normalisation (constant,
 * scheduled, in a step's energy bookkeeping), axial symmetry (grid-aligned and oblique), the
 * attenuation constant against the closed form and its limits, the Ji & Brace temperature
 * dependence, the re-evaluation threshold, superposition of several antennas, and a bad key. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ablasim/applicator.h"
#include "ablasim/mwa.h"
#include "ablasim/zone.h"
#include "testutil.h"

#define PI_ 3.14159265358979323846

/* A homogeneous liver cube, N^3 voxels of 1 mm centred on 0, one antenna; %s: extra keys. */
static abl_scenario *mwa_scenario(int N, const char *antenna_keys, const char *extra)
{
    return tu_liver_cube("mwa_test", N, 1.0, 600, "auto", extra, antenna_keys);
}

/* q of source i at the view's state, scattered into a dense field (0 elsewhere). */
static double *dense_q(abl_sim *s, int i, double t_s, double *absorbed_W)
{
    abl_source_contrib c = tu_source_update(s, i, t_s);
    double *q = calloc(s->grid.n, sizeof *q);
    double P = 0.0, V = grid_voxel_volume_m3(&s->grid);
    for (size_t k = 0; k < c.n_heat; k++) {
        q[c.heat_idx[k]] += c.heat_q_W_m3[k];
        P += c.heat_q_W_m3[k] * V;
    }
    if (absorbed_W) *absorbed_W = P;
    return q;
}

/* Absorbed power = P eff: the normalisation sums the very values returned, so the only error is
 * rounding of ~1e4 terms (< 1e-12 relative); 1e-9 is far below the required 1e-6. Checked for a
 * constant power, along a schedule (before, on and after its ramps) and on a non-uniform
 * temperature field (dielectric properties vary voxel by voxel). */
static void test_absorbed_power(void)
{
    abl_scenario *sc = mwa_scenario(
        25,
        "  - {name: a, type: mwa, frequency_MHz: 2450, efficiency: 0.6, tip_mm: [0, 0, -8],\n"
        "     direction: [0, 0, 1], schedule: [{time_s: 0, power_W: 10}, {time_s: 100, "
        "power_W: 50}, {time_s: 300, power_W: 50}, {time_s: 300, power_W: 20}]}\n",
        NULL);
    CU_ASSERT_FATAL(sc != NULL);
    abl_sim *s = tu_sim(sc);
    const double t[] = {0.0, 50.0, 100.0, 299.0, 300.0, 1000.0};
    const double P[] = {10.0, 30.0, 50.0, 50.0, 20.0, 20.0};
    double worst = 0.0;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) /* non-uniform T: 37..157 C, dielectric drop varies per voxel */
            for (size_t c = 0; c < s->grid.n; c++)
                s->T[c] = 37.0 + (double)(c * 7919 % 121);
        for (int i = 0; i < 6; i++) {
            double got;
            free(dense_q(s, 0, t[i], &got));
            double rel = fabs(got - 0.6 * P[i]) / (0.6 * P[i]);
            worst = fmax(worst, rel);
        }
    }
    printf("\n  mwa absorbed power vs P eff: worst relative error %.2e", worst);
    CU_ASSERT(worst < 1e-6);
    sim_destroy(s);
    scenario_free(sc);
}

/* The step's energy bookkeeping (E_sources_J) sees exactly P eff dt per step: the values the
 * normalisation used are the ones the kernel adds. Sums of 10 steps: rounding < 1e-12. */
static void test_absorbed_energy_in_steps(void)
{
    abl_scenario *sc =
        mwa_scenario(21,
                     "  - {name: a, type: mwa, frequency_MHz: 915, power_W: 40, antenna: dipole,\n"
                     "     tip_mm: [0, 0, -5], direction: [0, 0, 1]}\n",
                     "output: {energy_balance: true}\n");
    CU_ASSERT_FATAL(sc != NULL);
    abl_sim *s = tu_sim(sc);
    abl_error err = {0};
    CU_ASSERT_FATAL(sim_step(s, 10, &err) == ABL_OK);
    double expect = 40.0 * 0.75 * 10 * s->dt_s;
    double rel = fabs(s->energy.E_sources_J - expect) / expect;
    printf("\n  mwa energy delivered in 10 steps vs P eff t: %.2e relative", rel);
    CU_ASSERT(rel < 1e-9);
    sim_destroy(s);
    scenario_free(sc);
}

/* Axial symmetry in a homogeneous medium. (a) antenna along z through a voxel centre: the
 * rotation by 90 degrees about the axis, (i,j) -> (-j,i), maps voxel centres onto voxel centres;
 * (b) oblique antenna along (1,1,1): the rotation by 120 degrees about it is the cyclic
 * permutation (i,j,k) -> (k,i,j). q of related voxels is computed from the same r and s up to
 * the order of floating-point operations: relative differences ~1e-15; tolerance 1e-12 of the
 * peak. The cutoff is beyond the grid so that no voxel sits on the rounding edge of the set. */
static double symmetry_error(const char *dir, int oblique)
{
    char keys[512];
    snprintf(keys, sizeof keys,
             "  - {name: a, type: mwa, frequency_MHz: 2450, power_W: 60, tip_mm: [0, 0, 0],\n"
             "     direction: %s, antenna: slot, cutoff_mm: 100}\n",
             dir);
    abl_scenario *sc = mwa_scenario(21, keys, NULL);
    CU_ASSERT_FATAL(sc != NULL);
    abl_sim *s = tu_sim(sc);
    double *q = dense_q(s, 0, 0.0, NULL);
    const abl_grid *g = &s->grid;
    int N = g->nx, c0 = N / 2;
    double qmax = 0.0, dmax = 0.0;
    for (size_t c = 0; c < g->n; c++)
        qmax = fmax(qmax, q[c]);
    for (int k = 0; k < N; k++)
        for (int j = 0; j < N; j++)
            for (int i = 0; i < N; i++) {
                size_t a = ABL_IDX(g, i, j, k), b;
                if (!oblique)
                    b = ABL_IDX(g, c0 - (j - c0), i, k);
                else
                    b = ABL_IDX(g, k, i, j);
                dmax = fmax(dmax, fabs(q[a] - q[b]));
            }
    free(q);
    sim_destroy(s);
    scenario_free(sc);
    return qmax > 0.0 ? dmax / qmax : INFINITY;
}

static void test_axial_symmetry(void)
{
    double e4 = symmetry_error("[0, 0, 1]", 0);
    double e3 = symmetry_error("[1, 1, 1]", 1);
    printf("\n  mwa symmetry: 4-fold (grid-aligned) %.2e, 3-fold (oblique 1,1,1) %.2e of peak", e4,
           e3);
    CU_ASSERT(e4 < 1e-12);
    CU_ASSERT(e3 < 1e-12);
}

/* alpha against the closed form written out (long double, no rearrangement): the library's
 * cancellation-free form agrees to rounding (<1e-14 at these loss tangents 0.1..10); plus the
 * two textbook limits, whose relative error is the next term of the expansion: good conductor
 * (x = sigma/(omega eps) = 1e6): 1/(2x) = 5e-7; low loss (x = 1e-3): x^2/8 = 1.25e-7. */
static long double alpha_closed(long double er, long double sg, long double f)
{
    const long double mu0 = 4e-7L * 3.14159265358979323846264L, e0 = 8.8541878128e-12L;
    long double w = 2.0L * 3.14159265358979323846264L * f, e = e0 * er;
    long double x = sg / (w * e);
    return w * sqrtl(mu0 * e / 2.0L) * sqrtl(sqrtl(1.0L + x * x) - 1.0L);
}

static void test_attenuation_constant(void)
{
    const double cases[][3] = {{43.03, 1.686, 2.45e9}, {46.76, 0.861, 915e6},
                               {20.48, 0.804, 2.45e9}, {11.38, 0.394, 2.45e9},
                               {10.0, 15.0, 915e6},    {60.0, 0.9, 2.45e9}};
    double worst = 0.0;
    for (int i = 0; i < 6; i++) {
        double a = mwa_attenuation_Np_m(cases[i][0], cases[i][1], cases[i][2]);
        long double r = alpha_closed(cases[i][0], cases[i][1], cases[i][2]);
        worst = fmax(worst, (double)fabsl((a - r) / r));
    }
    printf("\n  mwa alpha vs closed form: worst relative %.2e; liver 2.45 GHz alpha = %.3f Np/m",
           worst, mwa_attenuation_Np_m(43.03, 1.686, 2.45e9));
    CU_ASSERT(worst < 1e-12);
    const double mu0 = 4e-7 * PI_, e0 = 8.8541878128e-12, f = 2.45e9, w = 2 * PI_ * f;
    double sg = 1e6 * w * e0 * 10.0; /* x = 1e6 at eps_r = 10 */
    double good = sqrt(PI_ * f * mu0 * sg);
    CU_ASSERT(fabs(mwa_attenuation_Np_m(10.0, sg, f) / good - 1.0) < 1e-6);
    double sl = 1e-3 * w * e0 * 10.0; /* x = 1e-3 */
    double low = sl / 2.0 * sqrt(mu0 / (e0 * 10.0));
    CU_ASSERT(fabs(mwa_attenuation_Np_m(10.0, sl, f) / low - 1.0) < 1e-6);
}

/* Hotter tissue: by Ji & Brace 2011 eps_r and sigma drop (sigmoid around ~80-85 C); at 2.45 GHz
 * the loss tangent stays similar, alpha falls and the 1/(2 alpha) power penetration depth
 * grows, so the radial SAR decays more slowly. Checked: (1) the property drop at 90 C and the
 * depth growth; (2) the ratio q(r = 10 mm)/q(r = 3 mm) in the feed plane equals the model's
 * r_e1/r_e2 exp(-2 alpha (r_e2 - r_e1)) at each temperature (1e-12: same formula, rounding
 * only) and is larger when hot. */
static void test_hot_tissue_pattern(void)
{
    double e37, s37, e90, s90;
    mwa_dielectric_at(43.03, 1.686, true, 37.0, &e37, &s37);
    mwa_dielectric_at(43.03, 1.686, true, 90.0, &e90, &s90);
    CU_ASSERT(fabs(e37 - 43.03) < 1e-12 && fabs(s37 - 1.686) < 1e-12);
    double a37 = mwa_attenuation_Np_m(e37, s37, 2.45e9),
           a90 = mwa_attenuation_Np_m(e90, s90, 2.45e9);
    printf("\n  mwa liver 2.45 GHz: 37 C eps %.2f sigma %.3f depth %.2f mm; 90 C eps %.2f sigma "
           "%.3f depth %.2f mm",
           e37, s37, 1e3 / (2 * a37), e90, s90, 1e3 / (2 * a90));
    CU_ASSERT(e90 < 0.8 * e37 && s90 < 0.8 * s37);
    CU_ASSERT(a90 < a37);

    abl_scenario *sc = mwa_scenario(
        29,
        "  - {name: a, type: mwa, frequency_MHz: 2450, power_W: 50, tip_mm: [0, 0, -10],\n"
        "     direction: [0, 0, 1], antenna: dipole, feed_gap_from_tip_mm: 10}\n",
        NULL);
    CU_ASSERT_FATAL(sc != NULL);
    abl_sim *s = tu_sim(sc);
    const abl_grid *g = &s->grid;
    int c0 = g->nx / 2;
    size_t i1 = ABL_IDX(g, c0 + 3, c0, c0), i2 = ABL_IDX(g, c0 + 10, c0, c0); /* z = 0: feed */
    double re1 = sqrt(9.0 + 1.0) * 1e-3, re2 = sqrt(100.0 + 1.0) * 1e-3;      /* a = 1 mm */
    double ratio[2];
    const double TT[2] = {37.0, 90.0}, al[2] = {a37, a90};
    for (int h = 0; h < 2; h++) {
        for (size_t c = 0; c < g->n; c++)
            s->T[c] = TT[h];
        double *q = dense_q(s, 0, 0.0, NULL);
        ratio[h] = q[i2] / q[i1];
        double model = re1 / re2 * exp(-2.0 * al[h] * (re2 - re1));
        CU_ASSERT(fabs(ratio[h] / model - 1.0) < 1e-12);
        free(q);
    }
    printf("\n  mwa q(10 mm)/q(3 mm): 37 C %.4f, 90 C %.4f", ratio[0], ratio[1]);
    /* hot tissue absorbs less, so the pattern reaches further: the ratio of the two ratios is
     * exp(2 (a37 - a90)(re2 - re1)) of the model, > 1 */
    CU_ASSERT(fabs(ratio[1] / ratio[0] / exp(2.0 * (a37 - a90) * (re2 - re1)) - 1.0) < 1e-12);
    CU_ASSERT(ratio[1] > ratio[0]);
    sim_destroy(s);
    scenario_free(sc);
}

/* Re-evaluation criterion: a voxel's deposition changes only when its temperature moved more
 * than recompute_dT_C (2 C) since it was last evaluated. 1.5 C: bitwise identical q; 2.5 C: q
 * of that voxel changes by the Ji & Brace factor (the rest only through the normalisation). */
static void test_recompute_threshold(void)
{
    abl_scenario *sc = mwa_scenario(
        17,
        "  - {name: a, type: mwa, frequency_MHz: 2450, power_W: 30, tip_mm: [0, 0, -6],\n"
        "     direction: [0, 0, 1]}\n",
        NULL);
    CU_ASSERT_FATAL(sc != NULL);
    abl_sim *s = tu_sim(sc);
    const abl_grid *g = &s->grid;
    size_t c = ABL_IDX(g, 10, 8, 8);
    for (size_t i = 0; i < g->n; i++)
        s->T[i] = 80.0; /* steep part of the sigmoid */
    double *q0 = dense_q(s, 0, 0.0, NULL);
    s->T[c] = 81.5;
    double *q1 = dense_q(s, 0, 0.0, NULL);
    CU_ASSERT(memcmp(q0, q1, g->n * sizeof *q0) == 0);
    s->T[c] = 82.5;
    double *q2 = dense_q(s, 0, 0.0, NULL);
    CU_ASSERT(fabs(q2[c] / q0[c] - 1.0) > 1e-3);
    free(q0);
    free(q1);
    free(q2);
    sim_destroy(s);
    scenario_free(sc);
}

/* Several antennas are several sources: with constant properties (dielectric_model: constant,
 * no perfusion shutdown, constant k, no vaporisation: the voxels next to the antennas pass
 * 100 C within the 20 steps) the heat equation is linear and the temperature rise of
 * two antennas together equals the sum of each alone, rises measured from a run without power
 * (metabolic heat moves T too): superposition up to rounding (~1e-13 K after 20 steps;
 * tolerance 1e-9 K). The midpoint between them is hotter than with either alone. */
static void test_two_antennas_superpose(void)
{
    const char *A = "  - {name: a, type: mwa, frequency_MHz: 2450, power_W: 40, tip_mm: [-6, 0, "
                    "-8], direction: [0, 0, 1], dielectric_model: constant}\n";
    const char *B = "  - {name: b, type: mwa, frequency_MHz: 2450, power_W: 25, tip_mm: [6, 0, "
                    "-8], direction: [0, 0.2, 1], dielectric_model: constant}\n";
    const char *O = "  - {name: o, type: mwa, frequency_MHz: 2450, power_W: 25, tip_mm: [6, 0, "
                    "-8], direction: [0, 0, 1], on_s: 1000000}\n"; /* never on */
    char both[1024];
    snprintf(both, sizeof both, "%s%s", A, B);
    const char *src[4] = {A, B, both, O};
    double *T[4];
    size_t n = 0, mid = 0;
    for (int r = 0; r < 4; r++) {
        abl_scenario *sc = mwa_scenario(23, src[r], "physics: {vaporisation: off}\n");
        CU_ASSERT_FATAL(sc != NULL);
        abl_sim *s = tu_sim(sc);
        abl_error err = {0};
        CU_ASSERT_FATAL(sim_step(s, 20, &err) == ABL_OK);
        n = s->grid.n;
        mid = ABL_IDX(&s->grid, 11, 11, 11);
        T[r] = malloc(n * sizeof(double));
        memcpy(T[r], s->T, n * sizeof(double));
        sim_destroy(s);
        scenario_free(sc);
    }
    double d = 0.0;
    for (size_t c = 0; c < n; c++)
        d = fmax(d, fabs((T[2][c] - T[3][c]) - (T[0][c] - T[3][c]) - (T[1][c] - T[3][c])));
    double rA = T[0][mid] - T[3][mid], rB = T[1][mid] - T[3][mid], rAB = T[2][mid] - T[3][mid];
    printf("\n  mwa two antennas: |dT_AB - dT_A - dT_B| <= %.2e K; midpoint rise %.2f K "
           "(A %.2f, B %.2f)",
           d, rAB, rA, rB);
    CU_ASSERT(d < 1e-9);
    CU_ASSERT(rAB > rA + 0.1 && rAB > rB + 0.1);
    for (int r = 0; r < 4; r++)
        free(T[r]);
}

/* A misspelt key is rejected with origin:line (the catalogue in tests/bad_input covers more). */
/* Issue 15, in make check: an antenna's 55 C zone does not depend on where its axis falls on
 * the grid. 20 W for 90 s at 2.45 GHz in perfused liver, 1 mm, shifted by 0.25, 0.5 voxel across
 * the axis, by (0.5, 0.5) and by 0.5 voxel along it: the sub-voxel zone volume within 2 % of the
 * mean of the five (issue 15's bound; measured 0.36 %). The SAR is evaluated at voxel centres
 * from the true axis and normalised to P exactly, so nothing is rasterised (the full-size check,
 * scripts/needle_alignment.py --modality mwa, 40 W 180 s: <= 0.3 %). */
static double alignment_spread(double power_W, const char *extra_keys)
{
    const double(*off)[3] = tu_align_offsets;
    double V[TU_NALIGN];
    for (int q = 0; q < TU_NALIGN; q++) {
        char src[512];
        snprintf(src, sizeof src,
                 "  - {name: a, type: mwa, frequency_MHz: 2450, power_W: %g, tip_mm: [%g, %g, "
                 "%g],\n     direction: [0, 0, 1]%s}\n",
                 power_W, off[q][0], off[q][1], -8.0 + off[q][2], extra_keys);
        abl_scenario *sc = tu_liver_cube("mwa_align", 31, 1.0, 90, "auto", NULL, src);
        CU_ASSERT_FATAL(sc != NULL);
        abl_sim *s = tu_sim(sc);
        tu_step_for(s, 90.0);
        abl_axis_zone z;
        const double tip[3] = {off[q][0] * 1e-3, off[q][1] * 1e-3, (-8.0 + off[q][2]) * 1e-3};
        zone_axis_measure(&s->grid, s->T_max, 55.0, true, tip, (double[3]){0, 0, 1}, &z);
        V[q] = z.volume_pv_m3 * 1e6;
        printf("\n  offset (%.2f, %.2f, %.2f) voxel: 55 C zone %.4f mL sub-voxel, %.4f mL count",
               off[q][0], off[q][1], off[q][2], V[q], z.volume_m3 * 1e6);
        sim_destroy(s);
        scenario_free(sc);
    }
    return tu_max_rel_deviation(V, TU_NALIGN);
}

static void test_alignment(void)
{
    CU_ASSERT(alignment_spread(20.0, "") <= 0.02);
}

/* The same for an internally cooled antenna (coolant_temperature_C): its shaft is the kit's
 * held set, which is rasterised, and the deposition excludes it; the coupling of its
 * neighbours to the true surface (applicator.h) is what keeps the zone independent of the
 * axis' position. Issue 15's 2 %, at 40 W for 90 s (5.1 mL; measured 1.44 %). At 20 W the
 * cooled zone is 0.9 mL, its edge within 3 voxels of the coupled layer, and the spread 4.9 %
 * (the cooled RF electrode of test_rfa, a zone of that kind: 3.4 %); keeping the held voxels'
 * share of the pattern in the normalisation instead (and giving it to the coolant) made it
 * 24 % there, so the deposition excludes them. */
static void test_alignment_cooled(void)
{
    CU_ASSERT(alignment_spread(40.0, ", coolant_temperature_C: 20") <= 0.02);
}

/* An internally cooled antenna (coolant_temperature_C), one step's lists: the shaft is held at
 * the coolant temperature from the tip to the grid's edge; the deposition lies outside it and
 * sums to P eff less the held tissue's share (which goes to the coolant); the coupled voxels
 * follow the deposition in the heat list with their conductance, each a free voxel with a held
 * face neighbour, heated by G (T_cool - T) plus the near field's shift (whose size
 * test_near_field and test_source_shift check; here: that it is applied). Then 30 steps: the energy balance of the run
 * (stored = sources + perfusion + walls, the driver's bookkeeping, bound 1e-6 as in suite
 * energy) holds with the coolant's heat counted as source heat; every held voxel is exactly at
 * the coolant temperature, and no coupled voxel has been pulled below it (the coupling is taken
 * implicitly in the explicit step, sim.c, so it cannot overshoot T_cool; 1e-12 K of rounding). */
static void test_cooled_shaft(void)
{
    abl_scenario *sc = mwa_scenario(
        25,
        "  - {name: a, type: mwa, frequency_MHz: 2450, power_W: 40, tip_mm: [0.3, 0, -5],\n"
        "     direction: [0, 0, 1], coolant_temperature_C: 15}\n",
        "output: {energy_balance: true}\n");
    CU_ASSERT_FATAL(sc != NULL);
    abl_sim *s = tu_sim(sc);
    const abl_grid *g = &s->grid;
    abl_source_contrib c = tu_source_update(s, 0, 0.0);
    CU_ASSERT_FATAL(c.n_pin > 0 && c.heat_G_W_m3K != NULL);
    CU_ASSERT(c.pins_absorb && !c.pins_anatomy);
    uint8_t *held = calloc(g->n, 1);
    bool held_at_coolant = true, reaches_end = false, near_axis = true;
    for (size_t q = 0; q < c.n_pin; q++) {
        const size_t v = c.pin_idx[q];
        held[v] = 1;
        held_at_coolant = held_at_coolant && c.pin_T_C[q] == 15.0;
        const int i = (int)(v % g->sy), j = (int)(v / g->sy % (size_t)g->ny), k = (int)(v / g->sz);
        double x[3];
        grid_voxel_centre_m(g, i, j, k, x);
        reaches_end = reaches_end || k == g->nz - 1;
        /* within the held radius max(1 + 0.75, 1.5) mm of the axis, not beyond the tip's cap */
        const double r = hypot(x[0] - 0.3e-3, x[1]);
        near_axis = near_axis && r <= 1.75e-3 + 1e-12 && x[2] >= -5e-3 - 1.75e-3;
    }
    CU_ASSERT(held_at_coolant);
    CU_ASSERT(reaches_end);
    CU_ASSERT(near_axis);
    const double V = grid_voxel_volume_m3(g);
    double P = 0.0;
    bool sar_outside = true, couples_ok = true;
    size_t shifted = 0;
    for (size_t q = 0; q < c.heat_G_first; q++) {
        sar_outside = sar_outside && !held[c.heat_idx[q]];
        P += c.heat_q_W_m3[q] * V;
    }
    for (size_t q = c.heat_G_first; q < c.n_heat; q++) {
        const size_t b = c.heat_idx[q];
        const double G = c.heat_G_W_m3K[q - c.heat_G_first];
        bool beside = false;
        const long nb[6] = {-1, 1, -(long)g->sy, (long)g->sy, -(long)g->sz, (long)g->sz};
        for (int f = 0; f < 6; f++) {
            const long w = (long)b + nb[f];
            beside = beside || (w >= 0 && w < (long)g->n && held[w]);
        }
        /* the coolant's conductance and the near-field shift (whose size test_near_field
         * checks against the exact solution) */
        couples_ok = couples_ok && !held[b] && beside && isfinite(c.heat_q_W_m3[q]) &&
                     isfinite(G);
        shifted += c.heat_q_W_m3[q] != G * (15.0 - s->T[b]);
    }
    printf("\n  cooled antenna: %zu held, %zu deposition voxels, %zu coupled; absorbed %.12g W",
           c.n_pin, c.heat_G_first, c.n_heat - c.heat_G_first, P);
    CU_ASSERT(sar_outside);
    CU_ASSERT(couples_ok);
    CU_ASSERT(shifted > (c.n_heat - c.heat_G_first) / 2); /* the pattern reaches most of them */
    CU_ASSERT(c.n_heat > c.heat_G_first);
    /* the tissue outside the shaft absorbs P eff less the held tissue's share (1 to 1.75 mm
     * from the axis and the tip's cap), which goes to the coolant: measured 7.8 %; outside
     * 4-12 % the annulus would be lost (0) or the antenna's body counted (its cross-section is
     * a third of the held one's) */
    CU_ASSERT(P < 30.0 * 0.96 && P > 30.0 * 0.88);
    abl_error err = {0};
    CU_ASSERT_FATAL(sim_step(s, 30, &err) == ABL_OK);
    const abl_energy *e = &s->energy;
    const double in = e->E_sources_J + e->E_perf_met_J + e->E_boundary_in_J;
    const double scale = fabs(e->E_sources_J) + fabs(e->E_perf_met_J) + fabs(e->E_boundary_in_J);
    const double dE = e->E_stored_final_J - e->E_stored_initial_J;
    const double delivered = 30.0 * s->t_s;
    printf("; 30 steps: balance residual %.2e, net source %.4g J of %.4g J delivered",
           fabs(dE - in) / scale, e->E_sources_J, delivered);
    CU_ASSERT(fabs(dE - in) / scale < 1e-6);
    bool pinned = true, above = true;
    for (size_t q = 0; q < c.n_pin; q++) pinned = pinned && s->T[c.pin_idx[q]] == 15.0;
    for (size_t q = c.heat_G_first; q < c.n_heat; q++)
        above = above && s->T[c.heat_idx[q]] >= 15.0 - 1e-12;
    CU_ASSERT(pinned);
    CU_ASSERT(above);
    free(held);
    sim_destroy(s);
    scenario_free(sc);
}

/* The exact radial steady state around a shaft of radius a held at Tc in tissue of conductivity
 * k and perfusion w (blood at Tb), with the antenna's near field q(r) = S e^{-2 alpha r_e} / r_e,
 * r_e = sqrt(r^2 + a^2), and T = Tb at R: the heat the wall takes per unit length [W/m]. Cells
 * whose centre lies within r_noperf of the axis are not perfused (the model's held tissue).
 * Finite volumes on a geometric grid of n cells (a cell's source by Simpson's rule of q r), a
 * tridiagonal solve; 4000 cells from 1 to 25 mm agree with 8000 to 1e-5. */
static double radial_wall(double a, double R, double k, double w, double Tc, double Tb,
                          double S, double two_alpha, double eps37, double sig37, int n,
                          double r_noperf, double *T_peak);

static double near_field_run(double h_mm, double off, bool hot, double *err_perfused,
                             double *T_peak);

/* The heat a cooled shaft takes from its antenna's near field, against the exact radial
 * solution (applicator.h needle_source_shift, docs/MWA.md "Cooled shaft"). A slab of perfused
 * liver three voxels thick with insulated faces, the antenna across it (tip on the bottom face;
 * the pattern's axial factor varies by 1.5 % over the slab: feed 100 mm ahead, width 200 mm),
 * constant dielectric properties, k independent of T, no vaporisation: a cross-section of a long
 * antenna, linear, at steady state (the net source heat over 600-900 s; perfusion time constant
 * rho c / w = 61 s). The wall's heat is what the tissue does not keep, P - net, per unit length,
 * less the perfusion heat of the held voxels themselves (counted as heat the hold takes, but it
 * reaches no tissue); the exact one sums the radial solution over the three layers' axial
 * factors (linear in the source). Measured: 1 mm -1.7 % (offsets 0.5 h and 0.3 h alike),
 * 0.5 mm +0.06 %; before the shift and the held annulus's share (session 25) -26 / -24 % and
 * -15 %. What is left is the perfusion heat of the tissue in the held annulus, which the model
 * does not carry: against a reference without it (no perfusion within the held radius) -0.63 /
 * -0.56 % and +0.38 %. Bounds: 1 % against that reference at both spacings (the shift's own
 * accuracy; a review found that the shift scaled by 0.5 or 1.4 gives +1.9 or -2.7 % at 1 mm),
 * and 3 % (1 mm), 1 % (0.5 mm) against the perfused one: the measured errors with room for the
 * platform's rounding and the slab's axial factor, far inside what the old coupling gave. */
static double near_field_case(double h_mm, double off, double *err_perfused)
{
    double T_peak;
    return near_field_run(h_mm, off, false, err_perfused, &T_peak);
}

static void test_near_field(void)
{
    double p1, p2, p3;
    const double e1 = near_field_case(1.0, 0.5, &p1), e2 = near_field_case(0.5, 0.5, &p2),
                 e3 = near_field_case(1.0, 0.3, &p3);
    /* against the reference with the model's assumptions: the shift's own accuracy */
    CU_ASSERT(fabs(e1) < 0.01);
    CU_ASSERT(fabs(e2) < 0.01);
    CU_ASSERT(fabs(e3) < 0.01);
    /* against the perfused annulus: what a user gets */
    CU_ASSERT(fabs(p1) < 0.03);
    CU_ASSERT(fabs(p2) < 0.01);
    CU_ASSERT(fabs(p3) < 0.03);
}

/* The same radial steady state with the Ji & Brace drop: the near field's attenuation at each
 * radius is the tissue's own at its temperature there, q(r) = S 2 alpha(T(r)) e^{-2 alpha r_e} /
 * r_e (the model's rule: every voxel, and the tissue between the wall and its coupled voxels,
 * takes the attenuation at its own temperature). Nonlinear: Picard iterations (each cell's
 * alpha from the last iterate, under-relaxed by half) until no cell moves by 1e-9 K. The
 * per-cell alpha is taken at the cell's centre temperature for its three Simpson points. One
 * solver for both references: eps37 NaN gives a constant attenuation two_alpha and one linear
 * solve (the linear reference of test_near_field). */
static double radial_wall(double a, double R, double k, double w, double Tc, double Tb,
                          double S, double two_alpha, double eps37, double sig37, int n,
                          double r_noperf, double *T_peak)
{
    const bool tdep = !isnan(eps37);
    double *e = malloc((size_t)(n + 1) * sizeof *e), *A = malloc((size_t)n * 6 * sizeof *A);
    CU_ASSERT_FATAL(e && A);
    double *lo = A, *di = A + n, *up = A + 2 * n, *rhs = A + 3 * n, *T = A + 4 * n,
           *ta = A + 5 * n;
    for (int i = 0; i <= n; i++) e[i] = a * pow(R / a, (double)i / n);
    for (int i = 0; i < n; i++) T[i] = Tb;
    double W = 0.0;
    for (int it = 0; it < 2000; it++) {
        for (int i = 0; i < n; i++) {
            double eps, sig;
            if (!tdep) {
                ta[i] = two_alpha;
                continue;
            }
            mwa_dielectric_at(eps37, sig37, true, T[i], &eps, &sig);
            ta[i] = 2.0 * mwa_attenuation_Np_m(eps, sig, 2.45e9);
        }
        double c_in0 = 0.0;
        for (int i = 0; i < n; i++) {
            const double c = sqrt(e[i] * e[i + 1]), cm = i ? sqrt(e[i - 1] * e[i]) : e[0],
                         cp = i < n - 1 ? sqrt(e[i + 1] * e[i + 2]) : e[n];
            const double gin = k * e[i] / (c - cm), gout = k * e[i + 1] / (cp - c);
            const double vol = 0.5 * (e[i + 1] * e[i + 1] - e[i] * e[i]),
                         m = 0.5 * (e[i] + e[i + 1]);
#define QRT(r) (S * ta[i] * exp(-ta[i] * sqrt((r) * (r) + a * a)) / sqrt((r) * (r) + a * a) * (r))
            const double Q = (e[i + 1] - e[i]) / 6.0 * (QRT(e[i]) + 4.0 * QRT(m) + QRT(e[i + 1]));
#undef QRT
            lo[i] = -gin;
            up[i] = -gout;
            const double wi = c < r_noperf ? 0.0 : w; /* no perfusion inside r_noperf */
            di[i] = gin + gout + wi * vol;
            rhs[i] = Q + wi * vol * Tb;
            if (i == 0) {
                rhs[i] += gin * Tc;
                lo[i] = 0.0;
                c_in0 = gin;
            }
            if (i == n - 1) {
                rhs[i] += gout * Tb;
                up[i] = 0.0;
            }
        }
        for (int i = 1; i < n; i++) { /* Thomas */
            const double f = lo[i] / di[i - 1];
            di[i] -= f * up[i - 1];
            rhs[i] -= f * rhs[i - 1];
        }
        for (int i = n - 1; i >= 0; i--)
            rhs[i] = (rhs[i] - (i < n - 1 ? up[i] * rhs[i + 1] : 0.0)) / di[i];
        double moved = 0.0;
        for (int i = 0; i < n; i++) {
            const double Tn = tdep ? 0.5 * (T[i] + rhs[i]) : rhs[i]; /* linear: one solve */
            moved = fmax(moved, fabs(Tn - T[i]));
            T[i] = Tn;
        }
        W = 2.0 * PI_ * c_in0 * (T[0] - Tc);
        if (!tdep || moved < 1e-9) break;
    }
    *T_peak = T[0];
    for (int i = 0; i < n; i++) *T_peak = fmax(*T_peak, T[i]);
    free(e);
    free(A);
    return W;
}

/* The heat a cooled shaft takes from its antenna's near field when the tissue beside it is hot
 * enough for the Ji & Brace drop (session 27): test_near_field's slab at a near field of
 * 2000 W per metre of shaft (power_W = 2000 W/m x the slab's 3 h), dielectric_model ji_brace,
 * recompute_dT_C 0 (every voxel's u at its current temperature), against the nonlinear radial
 * solution above. The tissue 1-2 mm from the wall reaches 80-100 C there, where sigma has fallen
 * to 45-70 % of its 37 C value. The pattern's scale S is read from the first deposition voxel as
 * before, with that voxel's own attenuation at its temperature. Measured with and without the
 * profile of session 27 (near_field_inner, held_voxel_share): test_near_field_hot. */
static double near_field_hot_case(double h_mm, double *err_perfused, double *T_peak)
{
    return near_field_run(h_mm, 0.5, true, err_perfused, T_peak);
}

/* One slab run for both (near_field_case, near_field_hot_case): the scenario, the wall's heat
 * from the net source energy over the last 300 s, the pattern's scale S from the first
 * deposition voxel (its attenuation at its temperature: the 37 C one with constant dielectric
 * properties) and the radial references with and without the held annulus's perfusion. hot:
 * 2000 W per metre of shaft with the Ji & Brace drop (the nonlinear reference); else 2 W with
 * constant properties (the linear one). The tip at (off h, 0.3 off h) off the voxel centres. */
static double near_field_run(double h_mm, double off, bool hot, double *err_perfused,
                             double *T_peak)
{
    const int N = (int)lround(50.0 / h_mm);
    const double h = h_mm * 1e-3, P = hot ? 2000.0 * 3.0 * h : 2.0;
    char yaml[2048];
    snprintf(yaml, sizeof yaml,
             "name: %s\n"
             "tissues_file: tissues.yaml\n"
             "tissues: {liver: {metabolic_heat_W_per_m3: 0, "
             "thermal_conductivity_temp_coeff_per_K: 0}}\n"
             "grid: {dims: [%d, %d, 3], spacing_mm: [%g, %g, %g], background: liver}\n"
             "boundary: {default: {type: fixed_temperature, temperature_C: 37},\n"
             "           z_min: {type: insulated}, z_max: {type: insulated}}\n"
             "physics: {vaporisation: off}\n"
             "time: {duration_s: 900, dt_s: auto}\n"
             "output: {snapshot_interval_s: 0}\n"
             "sources:\n"
             "  - {name: a, type: mwa, frequency_MHz: 2450, power_W: %.17g, efficiency: 1,\n"
             "     tip_mm: [%g, %g, %g], direction: [0, 0, 1], feed_gap_from_tip_mm: 100,\n"
             "     forward_width_mm: 200, %s, coolant_temperature_C: 20}\n",
             hot ? "mwa_near_field_hot" : "mwa_near_field", N, N, h_mm, h_mm, h_mm, P,
             off * h_mm, 0.3 * off * h_mm, -1.5 * h_mm,
             hot ? "recompute_dT_C: 0" : "dielectric_model: constant");
    abl_scenario *sc = tu_scenario(yaml, NULL, 0);
    CU_ASSERT_FATAL(sc != NULL);
    abl_sim *s = tu_sim(sc);
    abl_error err = {0};
    /* the net source heat over the last 300 s (the transient is e^-10 down at 600 s) */
    const long half = (long)s->nsteps_total * 2 / 3;
    CU_ASSERT_FATAL(sim_step(s, half, &err) == ABL_OK);
    const double E0 = s->energy.E_sources_J, t0 = s->t_s;
    CU_ASSERT_FATAL(sim_step(s, s->nsteps_total - half, &err) == ABL_OK);
    const double net_W = (s->energy.E_sources_J - E0) / (s->t_s - t0);
    const abl_grid *g = &s->grid;
    /* recompute_dT_C 0 (hot): the first deposition voxel's u was taken at the field the last
     * step started from; the steady state moves it by far less than the 1e-9 relative this
     * needs */
    abl_source_contrib c = tu_source_update(s, 0, s->t_s);
    /* the perfusion heat of the held voxels themselves (held at the coolant temperature, the
     * antenna's body among them) is counted as heat the hold takes (sim.c pins) but reaches no
     * tissue: not the wall's */
    const abl_tissue *li = &sc->tissues.t[tissue_table_find(&sc->tissues, "liver")];
    const double w = li->perfusion_per_s * sc->tissues.blood_rho_kg_m3 * sc->tissues.blood_c_J_kgK;
    const double held_perf_W = (double)c.n_pin * w * (sc->T_arterial_C - 20.0) * h * h * h;
    const double W = (P - net_W - held_perf_W) / (3.0 * h);
    /* the pattern's scale S / f from the first deposition voxel: q = S f e^{-2 alpha r_e} / r_e */
    const double a = 1e-3, tip[3] = {off * h, 0.3 * off * h, -1.5 * h};
    const size_t v0 = c.heat_idx[0];
    double x[3], eps0, sig0;
    grid_voxel_centre_m(g, (int)(v0 % g->sy), (int)(v0 / g->sy % (size_t)g->ny),
                        (int)(v0 / g->sz), x);
    mwa_dielectric_at(li->eps_r_2450MHz, li->sigma_2450MHz_S_m, hot, s->T[v0], &eps0, &sig0);
    const double two_alpha = 2.0 * mwa_attenuation_Np_m(eps0, sig0, 2.45e9);
    const double fz0 = exp(-pow((x[2] - tip[2] - 0.1) / 0.2, 2));
    const double re0 = sqrt(pow(x[0] - tip[0], 2) + pow(x[1] - tip[1], 2) + a * a);
    const double S = c.heat_q_W_m3[0] * re0 / (two_alpha * exp(-two_alpha * re0) * fz0);
    /* the exact one, and the exact one without perfusion in the held radius (applicator.h
     * needle_hold_radius_m: max(a + 0.75 h, 1.5 h)), which the model leaves out */
    const double r_hold = fmax(a + 0.75 * h, 1.5 * h);
    const double eps_ref = hot ? li->eps_r_2450MHz : NAN;
    const int ncell = hot ? 2000 : 4000;
    double Wx = 0.0, Wd = 0.0, tp = 0.0;
    for (int l = 0; l < 3; l++) {
        const double fz = exp(-pow(((l + 0.5) * h - 0.1) / 0.2, 2));
        /* the linear reference's scale as the earlier wrapper formed it (S two_alpha fz, then
         * over two_alpha): the same numbers to the last digit */
        const double Sl = hot ? S * fz : S * two_alpha * fz / two_alpha;
        Wx += radial_wall(a, 25e-3, li->k_W_mK, w, 20.0, sc->T_arterial_C, Sl, two_alpha,
                          eps_ref, li->sigma_2450MHz_S_m, ncell, 0.0, &tp) / 3.0;
        Wd += radial_wall(a, 25e-3, li->k_W_mK, w, 20.0, sc->T_arterial_C, Sl, two_alpha,
                          eps_ref, li->sigma_2450MHz_S_m, ncell, r_hold, &tp) / 3.0;
    }
    double Tmax = 0.0;
    for (size_t q = 0; q < g->n; q++) Tmax = fmax(Tmax, s->T[q]);
    if (hot)
        printf("\n  hot near field (Ji & Brace), %g mm: wall %.1f W/m, exact %.1f W/m (%+.2f %%), "
               "without the held annulus's perfusion %.1f W/m (%+.2f %%); T peak %.1f C (exact "
               "%.1f C)", h_mm, W, Wx, 100.0 * (W / Wx - 1.0), Wd, 100.0 * (W / Wd - 1.0), Tmax,
               tp);
    else
        printf("\n  near field beside a cooled shaft, %g mm (offset %.1f h): wall %.2f W/m, "
               "exact %.2f W/m (%+.2f %%), exact without the held annulus's perfusion %.2f W/m "
               "(%+.2f %%)",
               h_mm, off, W, Wx, 100.0 * (W / Wx - 1.0), Wd, 100.0 * (W / Wd - 1.0));
    *T_peak = Tmax;
    sim_destroy(s);
    scenario_free(sc);
    *err_perfused = W / Wx - 1.0;
    return W / Wd - 1.0;
}

static void test_near_field_hot(void)
{
    double p1, p2, t1, t2;
    const double e1 = near_field_hot_case(1.0, &p1, &t1), e2 = near_field_hot_case(0.5, &p2, &t2);
    CU_ASSERT(t1 > 85.0 && t2 > 85.0); /* the drop is reached */
    /* against the perfused reference (what a user gets): measured -0.41 % (1 mm) and +0.34 %
     * (0.5 mm); with the coupled voxel's own attenuation for the whole near field (before
     * session 27) +2.77 % and +0.80 %. Bound 1 %: the old rule fails it at 1 mm, the new one
     * passes with room for the platform's rounding. */
    CU_ASSERT(fabs(p1) < 0.01);
    CU_ASSERT(fabs(p2) < 0.01);
    /* against the reference without the held annulus's perfusion (which the model does not
     * carry): -1.25 % and +0.40 % (before: +1.91 %, +0.85 %); bound 2 % */
    CU_ASSERT(fabs(e1) < 0.02);
    CU_ASSERT(fabs(e2) < 0.02);
}

/* applicator.h needle_source_shift on its own: for a uniform source q0 the particular solution
 * is closed-form, tau(d) = -q0 ((d^2 - r^2)/4 - (r^2/2) ln(d/r)) (-(1/d)(d tau')' = q0 with
 * tau(r) = tau'(r) = 0), and the returned shift must make every coupled voxel's discrete
 * balance exact for it: sum_n (tau_n - tau_b) / h^2 + G_b (kappa_b - tau_b) + q0 = 0, with the
 * distances wire_coupling recorded. A 17 G needle along z on a 1 mm grid off the voxel centres
 * (0.3, 0.1 mm), and a thick one (4 mm) on 0.5 mm. This checks the shift's quadrature of tau
 * (8-point Gauss-Legendre on [r, d]) and its use of the recorded geometry against the closed
 * form; whether the shift is the right physics is test_near_field's question. The residual is
 * the quadrature's error on the 1/s part: 4.5e-8 of q0 for the thin needle (d up to 3.4 r),
 * 5e-15 for the thick one; bound 1e-6 (a wrong sign, node or distance gives O(1)). */
static double uniform_inner(double s_m, const void *ctx)
{
    const double *rq = ctx; /* r, q0 */
    return 0.5 * rq[1] * (s_m * s_m - rq[0] * rq[0]);
}

static void shift_case(double h_mm, double radius_mm, double ox_mm, double oy_mm)
{
    abl_grid g;
    abl_error err = {0};
    const int dims[3] = {21, 21, 5};
    const double h = h_mm * 1e-3, hv[3] = {h, h, h}, org[3] = {-10 * h, -10 * h, -2 * h};
    CU_ASSERT_FATAL(grid_init(&g, dims, hv, org, &err) == ABL_OK);
    const double r = radius_mm * 1e-3, q0 = 1e7, rq[2] = {r, q0};
    const abl_chord ax = {{ox_mm * 1e-3, oy_mm * 1e-3, -3 * h}, {0, 0, 1}, 6 * h, false, false};
    const size_t nh = wire_hold_voxels(&g, &ax, 1, r, NULL, 0);
    size_t *idx = malloc(nh * sizeof *idx);
    int *mark = calloc(g.n, sizeof *mark);
    uint8_t *seen = calloc(g.n, 1);
    abl_needle_couple *cpl = malloc(6 * nh * sizeof *cpl);
    CU_ASSERT_FATAL(idx && mark && seen && cpl);
    CU_ASSERT_FATAL(wire_hold_voxels(&g, &ax, 1, r, idx, nh) == nh);
    for (size_t q = 0; q < nh; q++) mark[idx[q]] = 1;
    const size_t nc = wire_coupling(&g, &ax, 1, r, idx, nh, mark, 1, seen, cpl);
    double worst = 0.0;
    size_t used = 0;
    for (size_t q = 0; q < nc; q++) {
        const abl_needle_couple *c = &cpl[q];
        if (!(c->G_m2 > 0.0)) continue;
        used++;
#define TAU(d) (-q0 * (((d) * (d) - r * r) / 4.0 - 0.5 * r * r * log((d) / r)))
        const double kappa = needle_source_shift(c, r, q0, uniform_inner, rq);
        double res = c->G_m2 * (kappa - TAU(c->d_m)) + q0;
        for (int n = 0; n < c->nfree; n++) res += (TAU(c->dn_m[n]) - TAU(c->d_m)) * c->ih2_m2[n];
#undef TAU
        worst = fmax(worst, fabs(res) / q0);
    }
    printf("\n  shift, %g mm grid, radius %g mm: %zu coupled voxels, worst balance residual "
           "%.1e of q0", h_mm, radius_mm, used, worst);
    CU_ASSERT(used > 8);
    CU_ASSERT(worst < 1e-6);
    free(idx);
    free(mark);
    free(seen);
    free(cpl);
}

static void test_source_shift(void)
{
    shift_case(1.0, 0.7366, 0.3, 0.1);
    shift_case(0.5, 2.0, 0.0, 0.0);
}

static void test_bad_key(void)
{
    const char *yaml = "name: t\n"
                       "tissues_file: tissues.yaml\n"
                       "grid: {dims: [9, 9, 9], spacing_mm: [1, 1, 1], background: liver}\n"
                       "time: {duration_s: 10}\n"
                       "sources:\n"
                       "  - type: mwa\n"
                       "    frequency_MHz: 2450\n"
                       "    power_W: 10\n"
                       "    tip_mm: [0, 0, 0]\n"
                       "    direction: [0, 0, 1]\n"
                       "    feed_gap_mm: 5\n";
    char base[800];
    snprintf(base, sizeof base, "%s/configs", tu_root());
    abl_scenario *sc = NULL;
    abl_error err = {0};
    abl_status st = scenario_load_string(yaml, "mwa_bad.yaml", base, NULL, 0, &sc, &err);
    CU_ASSERT(st == ABL_EINVAL);
    CU_ASSERT(strstr(err.msg, "mwa_bad.yaml:11") != NULL);
    CU_ASSERT(strstr(err.msg, "feed_gap_mm") != NULL);
    if (sc) scenario_free(sc);
}

/* Held tissue the pattern reaches needs its dielectric properties, as the deposition's does: a
 * catheter-like tissue with a conductivity but no permittivity beside the cooled shaft's axis
 * (inside the held set) is refused naming it, not turned into NaN heat (a review of session 25
 * found the NaN: the run then failed with "source power far too high"). */
static void test_held_tissue_without_dielectric(void)
{
    const char *yaml =
        "name: held_nodata\n"
        "tissues_file: tissues.yaml\n"
        "tissues: {cath: {density_kg_per_m3: 1000, specific_heat_J_per_kgK: 3600,\n"
        "          thermal_conductivity_W_per_mK: 0.5, perfusion_per_s: 0,\n"
        "          metabolic_heat_W_per_m3: 0, electrical_conductivity_2450MHz_S_per_m: 1}}\n"
        "grid: {dims: [25, 25, 25], spacing_mm: [1, 1, 1], background: liver,\n"
        "       shapes: [{type: box, min_mm: [-1.4, -0.4, -3], max_mm: [-0.6, 0.4, 3], "
        "tissue: cath}]}\n"
        "time: {duration_s: 10}\n"
        "sources:\n"
        "  - {name: a, type: mwa, frequency_MHz: 2450, power_W: 40, tip_mm: [0.3, 0, -5],\n"
        "     direction: [0, 0, 1], coolant_temperature_C: 15}\n";
    abl_scenario *sc = tu_scenario(yaml, NULL, 0);
    CU_ASSERT_FATAL(sc != NULL);
    abl_sim *s = NULL;
    abl_error err = {0};
    const abl_status st = sim_create(sc, &s, &err);
    printf("\n  %s", err.msg);
    CU_ASSERT(st == ABL_EINVAL);
    CU_ASSERT(strstr(err.msg, "'cath'") != NULL);
    CU_ASSERT(strstr(err.msg, "relative_permittivity_2450MHz") != NULL);
    if (s) sim_destroy(s);
    scenario_free(sc);
}

/* Zone measurement on a hand-made field: a 7 x 5 x 5 voxel box (1 mm) above the threshold,
 * axis along x: length 7 mm, diameter 2 * sqrt(2^2 + 2^2) + 1 mm, volume 175 mm^3. */
static void test_zone_dims(void)
{
    abl_grid g;
    abl_error err = {0};
    int dims[3] = {15, 11, 11};
    double h[3] = {1e-3, 1e-3, 1e-3}, o[3] = {-7e-3, -5e-3, -5e-3};
    CU_ASSERT_FATAL(grid_init(&g, dims, h, o, &err) == ABL_OK);
    double *T = calloc(g.n, sizeof *T);
    for (int k = 3; k <= 7; k++)
        for (int j = 3; j <= 7; j++)
            for (int i = 4; i <= 10; i++)
                T[ABL_IDX(&g, i, j, k)] = 60.0;
    const double tip[3] = {0, 0, 0}, dir[3] = {-2, 0, 0};
    mwa_zone z;
    mwa_zone_dims(&g, T, 55.0, tip, dir, &z);
    CU_ASSERT(fabs(z.length_m - 7e-3) < 1e-12);
    CU_ASSERT(fabs(z.diameter_m - (2 * sqrt(8.0) + 1) * 1e-3) < 1e-12);
    CU_ASSERT(fabs(z.volume_m3 - 175e-9) < 1e-18);
    CU_ASSERT_EQUAL(z.nvox, 175);
    free(T);
}

void register_mwa_tests(void)
{
    CU_pSuite s = CU_add_suite("mwa", NULL, NULL);
    CU_add_test(s, "absorbed power = P x efficiency (constant, schedule, hot)",
                test_absorbed_power);
    CU_add_test(s, "step energy bookkeeping = P eff t", test_absorbed_energy_in_steps);
    CU_add_test(s, "axial symmetry: 4-fold aligned, 3-fold oblique", test_axial_symmetry);
    CU_add_test(s, "attenuation constant vs closed form and limits", test_attenuation_constant);
    CU_add_test(s, "hotter tissue: slower radial decay (Ji & Brace)", test_hot_tissue_pattern);
    CU_add_test(s, "re-evaluation threshold recompute_dT_C", test_recompute_threshold);
    CU_add_test(s, "two antennas superpose", test_two_antennas_superpose);
    CU_add_test(s, "55 C zone independent of grid alignment", test_alignment);
    CU_add_test(s, "cooled antenna: 55 C zone independent of grid alignment",
                test_alignment_cooled);
    CU_add_test(s, "cooled antenna: held shaft, deposition outside it, coupling, balance",
                test_cooled_shaft);
    CU_add_test(s, "cooled shaft: near-field heat to the wall vs the exact radial solution",
                test_near_field);
    CU_add_test(s, "cooled shaft, hot tissue (Ji & Brace): wall heat vs the nonlinear radial "
                   "solution", test_near_field_hot);
    CU_add_test(s, "needle_source_shift: a uniform source's balance exact beside a needle",
                test_source_shift);
    CU_add_test(s, "held tissue without dielectric data refused, naming it",
                test_held_tissue_without_dielectric);
    CU_add_test(s, "misspelt key rejected with file:line", test_bad_key);
    CU_add_test(s, "zone length/diameter/volume on a known box", test_zone_dims);
}
