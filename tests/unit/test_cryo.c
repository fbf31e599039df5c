/* test_cryo.c - the cryoprobe source (src/sources/cryo.c): the gauge table, the probe voxel rule
 * (axis-aligned sets counted by hand, oblique and anisotropic probes covered and connected), the
 * protocol timeline (ramps, phase switches, on_s/off_s, per-probe protocols), passive thaw
 * pinning nothing, the extraction estimate against a hand computation, max_extraction_W held
 * exactly in the source and in a step's energy bookkeeping, several probes, the series, and
 * parse / placement errors naming file:line and the key. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ablasim/applicator.h"
#include "ablasim/cryo.h"
#include "ablasim/zone.h"
#include "testutil.h"

/* Homogeneous liver cube, N^3 voxels of 1 mm centred on 0 (voxel i at x = i - (N-1)/2 mm). */
static abl_scenario *cryo_scenario(int N, const char *sources, const char *extra)
{
    return tu_liver_cube("cryo_test", N, 1.0, 600, "auto", extra, sources);
}

static cryo_probe_state probe_state(abl_sim *s, int i, int p)
{
    cryo_probe_state ps;
    abl_error err = {0};
    CU_ASSERT_FATAL(cryo_probe_get_state(s->sources[i], p, &ps, &err) == ABL_OK);
    return ps;
}

static void fill_T(abl_sim *s, double T)
{
    for (size_t c = 0; c < s->grid.n; c++)
        s->T[c] = T;
}

/* Distance [m] from x to the segment [tip, tip + L d] (d unit): written here again, apart from
 * cryo.c, so that the rule below is checked against an independent reading of its words. */
static double seg_dist(const double x[3], const double tip[3], const double d[3], double L)
{
    double w[3] = {x[0] - tip[0], x[1] - tip[1], x[2] - tip[2]};
    double t = fmin(fmax(w[0] * d[0] + w[1] * d[1] + w[2] * d[2], 0.0), L), r2 = 0.0;
    for (int a = 0; a < 3; a++)
        r2 += (w[a] - t * d[a]) * (w[a] - t * d[a]);
    return sqrt(r2);
}

/* The documented held-set rule (applicator.h needle_hold_voxels), brute force over the whole grid:
 * centres within rh = max(r + 0.75 h, 1.5 h) of the segment pulled back by rh - r at both ends,
 * or within max(r + 0.5 h, half diagonal) of the true segment. Marks in (may be NULL), returns
 * the count. */
static size_t rule_set(const abl_grid *g, const double tip[3], const double d[3], double L,
                       double r, uint8_t *in)
{
    const double h = fmax(g->h_m[0], fmax(g->h_m[1], g->h_m[2]));
    const double hd = 0.5 * sqrt(g->h_m[0] * g->h_m[0] + g->h_m[1] * g->h_m[1] +
                                 g->h_m[2] * g->h_m[2]);
    const double rh = fmax(r + 0.75 * h, 1.5 * h), near = fmax(r + 0.5 * h, hd);
    const double pull = fmin(rh - r, 0.5 * L);
    double tip2[3] = {tip[0] + pull * d[0], tip[1] + pull * d[1], tip[2] + pull * d[2]};
    size_t n = 0;
    for (int k = 0; k < g->nz; k++)
        for (int j = 0; j < g->ny; j++)
            for (int i = 0; i < g->nx; i++) {
                double x[3];
                grid_voxel_centre_m(g, i, j, k, x);
                bool on = seg_dist(x, tip2, d, L - 2 * pull) <= rh * (1 + 1e-12) ||
                          seg_dist(x, tip, d, L) <= near * (1 + 1e-12);
                if (in) in[ABL_IDX(g, i, j, k)] = on;
                n += on;
            }
    return n;
}

/* Distinct voxels outside the set that share a face with it: the coupled voxels. */
static size_t outer_neighbours(const abl_grid *g, const uint8_t *in)
{
    size_t n = 0;
    for (int k = 0; k < g->nz; k++)
        for (int j = 0; j < g->ny; j++)
            for (int i = 0; i < g->nx; i++) {
                size_t c = ABL_IDX(g, i, j, k);
                if (in[c]) continue;
                bool t = (i > 0 && in[c - 1]) || (i < g->nx - 1 && in[c + 1]) ||
                         (j > 0 && in[c - g->sy]) || (j < g->ny - 1 && in[c + g->sy]) ||
                         (k > 0 && in[c - g->sz]) || (k < g->nz - 1 && in[c + g->sz]);
                n += t;
            }
    return n;
}

/* ---- gauge and voxel rule ------------------------------------------------------------------ */

/* Stubs gauge = inches x 25.4: 17 G 0.058 in, 13 G 0.095 in (exact decimal products; 1e-12 is
 * rounding). Gauges outside 10..18 are not in the table. */
static void test_gauge(void)
{
    CU_ASSERT_DOUBLE_EQUAL(needle_gauge_diameter_mm(17), 1.4732, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(needle_gauge_diameter_mm(13), 2.4130, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(needle_gauge_diameter_mm(10), 3.4036, 1e-12);
    CU_ASSERT(isnan(needle_gauge_diameter_mm(9)));
    CU_ASSERT(isnan(needle_gauge_diameter_mm(19)));
}

/* Held set of one probe along z (tip z = -5 mm, 10 mm active) on a 21^3 grid at (x0, y0) mm
 * from the grid centre: the pins equal the documented rule (rule_set), the coupled voxels the
 * set's outer face neighbours, and with hand > 0 the count is the one counted by hand. */
static void check_axis_set(const char *size_key, double x0, double y0, double r_mm, size_t hand)
{
    char src[512];
    snprintf(src, sizeof src,
             "  - {name: c, type: cryo, protocol: [{phase: freeze, duration_s: 100}],\n"
             "     probes: [{tip_mm: [%g, %g, -5], direction: [0, 0, 1], active_length_mm: 10,"
             " %s}]}\n",
             x0, y0, size_key);
    abl_scenario *sc = cryo_scenario(21, src, NULL);
    CU_ASSERT_FATAL(sc != NULL);
    abl_sim *s = tu_sim(sc);
    abl_source_contrib c = tu_source_update(s, 0, 50.0);
    uint8_t *in = calloc(s->grid.n, 1);
    const double tip[3] = {x0 * 1e-3, y0 * 1e-3, -5e-3}, d[3] = {0, 0, 1};
    size_t expect = rule_set(&s->grid, tip, d, 10e-3, r_mm * 1e-3, in);
    CU_ASSERT_EQUAL(c.n_pin, expect);
    CU_ASSERT_EQUAL(probe_state(s, 0, 0).nvox, expect);
    if (hand) CU_ASSERT_EQUAL(expect, hand);
    size_t found = 0;
    for (size_t q = 0; q < c.n_pin; q++)
        found += in[c.pin_idx[q]];
    CU_ASSERT_EQUAL(found, expect);
    CU_ASSERT_EQUAL(c.n_heat, outer_neighbours(&s->grid, in));
    free(in);
    sim_destroy(s);
    scenario_free(sc);
}

/* By hand, 17 G (r 0.7366 mm) through voxel centres on 1 mm: rh = max(r + 0.75, 1.5) = 1.5 mm,
 * the held segment pulled back by rh - r = 0.7634 mm to z = -4.24..4.24, near = r + 0.5 =
 * 1.2366 mm. Layers z = -4..4: centres within 1.5 mm of the axis, the 3 x 3 block (corner
 * 1.414 mm; 2 mm is out): 9 x 9 = 81. z = +-5: 0.7634 mm past the held ends, so radius
 * sqrt(1.5^2 - 0.7634^2) = 1.29 mm: axis + 4 face neighbours, 2 x 5 = 10. z = +-6: 1 mm past the
 * true ends (within near 1.2366 only for radius 0.727 mm): the axis voxel, 2. Total 93. The
 * others (13 G, 3 mm, axis through a voxel face or at a quarter voxel) against rule_set. */
static void test_voxels_axis_aligned(void)
{
    check_axis_set("gauge: 17", 0.0, 0.0, 0.73660, 93);
    check_axis_set("gauge: 13", 0.0, 0.0, 1.20650, 0);
    check_axis_set("diameter_mm: 3", 0.0, 0.0, 1.5, 0);
    check_axis_set("gauge: 17", 0.5, 0.0, 0.73660, 0);
    check_axis_set("gauge: 17", 0.25, 0.5, 0.73660, 0);
}

/* Voxel (i,j,k) containing point x, or -1 outside. */
static long voxel_of(const abl_grid *g, const double x[3])
{
    int ijk[3], na[3] = {g->nx, g->ny, g->nz};
    for (int a = 0; a < 3; a++) {
        ijk[a] = (int)lround((x[a] - g->origin_m[a]) / g->h_m[a]);
        if (ijk[a] < 0 || ijk[a] >= na[a]) return -1;
    }
    return (long)ABL_IDX(g, ijk[0], ijk[1], ijk[2]);
}

/* Voxels reached from set[0] through 26-neighbours inside the set. */
static size_t connected_count(const abl_grid *g, const size_t *set, size_t n)
{
    uint8_t *in = calloc(g->n, 1);
    size_t *stack = malloc(n * sizeof *stack);
    for (size_t q = 0; q < n; q++)
        in[set[q]] = 1;
    size_t top = 0, seen = 0;
    stack[top++] = set[0];
    in[set[0]] = 2;
    while (top) {
        size_t c = stack[--top];
        seen++;
        int i = (int)(c % g->sy), j = (int)(c / g->sy % (size_t)g->ny), k = (int)(c / g->sz);
        for (int dk = -1; dk <= 1; dk++)
            for (int dj = -1; dj <= 1; dj++)
                for (int di = -1; di <= 1; di++) {
                    int a = i + di, b = j + dj, e = k + dk;
                    if (a < 0 || b < 0 || e < 0 || a >= g->nx || b >= g->ny || e >= g->nz) continue;
                    size_t d = ABL_IDX(g, a, b, e);
                    if (in[d] == 1) {
                        in[d] = 2;
                        stack[top++] = d;
                    }
                }
    }
    free(in);
    free(stack);
    return seen;
}

/* Oblique probes: (a) along (1,1,1) from a voxel centre on an isotropic grid the set is
 * invariant under the cyclic permutation (i,j,k) -> (k,i,j) (a rotation about the axis mapping
 * centres to centres); (b) for that probe and an arbitrary direction on an anisotropic grid
 * (1 x 1 x 2 mm), every one of 4001 points along the active segment lies in a voxel of the set
 * (the coverage the half-diagonal radius guarantees) and the set is one 26-connected piece;
 * (c) every voxel of the set is within rh = needle_hold_radius_m of the segment (rh >= the
 * near radius of the ends), and the set is the documented rule's (rule_set). */
static void oblique_case(const int dims[3], const double h_mm[3], const double tip_mm[3],
                         const double dir_in[3], double L_mm, bool check_cyclic)
{
    abl_grid g;
    memset(&g, 0, sizeof g);
    g.nx = dims[0];
    g.ny = dims[1];
    g.nz = dims[2];
    g.sy = (size_t)g.nx;
    g.sz = (size_t)g.nx * (size_t)g.ny;
    g.n = g.sz * (size_t)g.nz;
    int na[3] = {g.nx, g.ny, g.nz};
    double nd = sqrt(dir_in[0] * dir_in[0] + dir_in[1] * dir_in[1] + dir_in[2] * dir_in[2]);
    double dir[3], tip[3];
    for (int a = 0; a < 3; a++) {
        g.h_m[a] = h_mm[a] * 1e-3;
        g.origin_m[a] = -0.5 * (na[a] - 1) * g.h_m[a];
        dir[a] = dir_in[a] / nd;
        tip[a] = tip_mm[a] * 1e-3;
    }
    const double hmax = fmax(h_mm[0], fmax(h_mm[1], h_mm[2]));
    double r = needle_hold_radius_m(&g, 0.7366e-3);
    CU_ASSERT_DOUBLE_EQUAL(r, fmax(0.7366 + 0.75 * hmax, 1.5 * hmax) * 1e-3, 1e-15);
    double L = L_mm * 1e-3;
    size_t n = needle_hold_voxels(&g, tip, dir, L, 0.7366e-3, NULL, 0);
    CU_ASSERT_FATAL(n > 0);
    size_t *set = malloc(n * sizeof *set);
    CU_ASSERT_EQUAL(needle_hold_voxels(&g, tip, dir, L, 0.7366e-3, set, n), n);
    uint8_t *in = calloc(g.n, 1);
    for (size_t q = 0; q < n; q++)
        in[set[q]] = 1;
    uint8_t *ref = calloc(g.n, 1);
    CU_ASSERT_EQUAL(rule_set(&g, tip, dir, L, 0.7366e-3, ref), n);
    CU_ASSERT_EQUAL(memcmp(in, ref, g.n), 0);
    free(ref);
    long missed = 0;
    for (int s = 0; s <= 4000; s++) {
        double x[3];
        for (int a = 0; a < 3; a++)
            x[a] = tip[a] + L * s / 4000.0 * dir[a];
        long v = voxel_of(&g, x);
        if (v < 0 || !in[v]) missed++;
    }
    CU_ASSERT_EQUAL(missed, 0);
    CU_ASSERT_EQUAL(connected_count(&g, set, n), n);
    /* (c): distance of each centre to the segment by sampling (4001 points: step L/4000, so the
     * sampled minimum exceeds the true one by at most L/8000 = 1.5 um) */
    double worst = 0.0;
    for (size_t q = 0; q < n; q++) {
        size_t c = set[q];
        double x[3];
        grid_voxel_centre_m(&g, (int)(c % g.sy), (int)(c / g.sy % (size_t)g.ny), (int)(c / g.sz),
                            x);
        double dmin = INFINITY;
        for (int s = 0; s <= 4000; s++) {
            double d2 = 0.0;
            for (int a = 0; a < 3; a++) {
                double e = x[a] - (tip[a] + L * s / 4000.0 * dir[a]);
                d2 += e * e;
            }
            dmin = fmin(dmin, sqrt(d2));
        }
        worst = fmax(worst, dmin - r);
    }
    CU_ASSERT(worst <= L / 8000.0 + 1e-12);
    if (check_cyclic) {
        long asym = 0;
        for (int k = 0; k < g.nz; k++)
            for (int j = 0; j < g.ny; j++)
                for (int i = 0; i < g.nx; i++)
                    asym += in[ABL_IDX(&g, i, j, k)] != in[ABL_IDX(&g, k, i, j)];
        CU_ASSERT_EQUAL(asym, 0);
    }
    printf("\n  oblique probe (%g,%g,%g), h (%g,%g,%g) mm: %zu voxels, %ld sample points "
           "outside the set",
           dir_in[0], dir_in[1], dir_in[2], h_mm[0], h_mm[1], h_mm[2], n, missed);
    free(in);
    free(set);
}

static void test_voxels_oblique(void)
{
    const int d1[3] = {21, 21, 21}, d2[3] = {25, 25, 13};
    const double h1[3] = {1, 1, 1}, h2[3] = {1, 1, 2};
    const double tip1[3] = {-5, -5, -5}, dir1[3] = {1, 1, 1};
    const double tip2[3] = {-3.3, 4.1, -7.7}, dir2[3] = {0.3, -0.5, 0.8};
    oblique_case(d1, h1, tip1, dir1, 14.0, true);
    oblique_case(d2, h2, tip2, dir2, 15.0, false);
}

/* ---- sub-voxel coupling ------------------------------------------------------------------- */

/* The coupling's defining property (docs/CRYO.md "Sub-voxel probe coupling"): the line-source
 * profile T = T_pin + B ln(d / r) satisfies the discrete heat balance of every coupled voxel
 * exactly: sum over its faces of k/h^2 (T_n - T_b), held neighbours at T_pin, plus the source's
 * q_b / 1, is 0. B = 15 K keeps every voxel within 10 mm below the freezing range (-150 + 15
 * ln(10 / 0.7366) = -111 C), so k is the frozen k on every face and in the source. Probe through
 * voxel centres, at an offset (0.3, 0.6) mm, and at 30 degrees; the residual is rounding:
 * <= 1e-12 of the sum of the absolute face terms. */
static void coupling_case(const char *tip, const char *dir, const double tip_m[3],
                          const double d[3])
{
    char src[512];
    snprintf(src, sizeof src,
             "  - {name: c, type: cryo, ramp_s: 0, protocol: [{phase: freeze, duration_s: 100}],\n"
             "     probes: [{tip_mm: %s, direction: %s, active_length_mm: 8, gauge: 17}]}\n",
             tip, dir);
    abl_scenario *sc = cryo_scenario(21, src, NULL);
    CU_ASSERT_FATAL(sc != NULL);
    abl_sim *s = tu_sim(sc);
    const abl_grid *g = &s->grid;
    const double r = 0.7366e-3, B = 15.0, L = 8e-3;
    for (int k = 0; k < g->nz; k++)
        for (int j = 0; j < g->ny; j++)
            for (int i = 0; i < g->nx; i++) {
                double x[3];
                grid_voxel_centre_m(g, i, j, k, x);
                s->T[ABL_IDX(g, i, j, k)] = -150.0 + B * log(fmax(seg_dist(x, tip_m, d, L), 1e-5) / r);
            }
    abl_source_contrib c = tu_source_update(s, 0, 10.0);
    CU_ASSERT_FATAL(c.n_pin > 0 && c.n_heat > 0);
    uint8_t *held = calloc(g->n, 1);
    for (size_t q = 0; q < c.n_pin; q++)
        held[c.pin_idx[q]] = 1;
    const abl_tissue *t = &sc->tissues.t[s->mat_tissue[0]];
    const double kf = t->frozen_k_W_mK;
    double worst = 0.0;
    for (size_t q = 0; q < c.n_heat; q++) {
        const size_t b = c.heat_idx[q];
        const int ijk[3] = {(int)(b % g->sy), (int)(b / g->sy % (size_t)g->ny), (int)(b / g->sz)};
        const size_t st[3] = {1, g->sy, g->sz};
        double res = c.heat_q_W_m3[q], mag = fabs(res);
        for (int f = 0; f < 6; f++) {
            const size_t n = f % 2 ? b + st[f / 2] : b - st[f / 2];
            CU_ASSERT_FATAL(ijk[f / 2] > 0 && ijk[f / 2] < 20);
            const double Tn = held[n] ? -150.0 : s->T[n];
            const double term = kf / (g->h_m[f / 2] * g->h_m[f / 2]) * (Tn - s->T[b]);
            res += term;
            mag += fabs(term);
        }
        worst = fmax(worst, fabs(res) / mag);
    }
    printf("\n  coupling, tip %s dir %s: %zu coupled voxels, worst residual %.1e of the face "
           "terms", tip, dir, c.n_heat, worst);
    CU_ASSERT(worst <= 1e-12);
    free(held);
    sim_destroy(s);
    scenario_free(sc);
}

static void test_coupling_exact(void)
{
    const double d0[3] = {0, 0, 1}, d30[3] = {0.5, 0, sqrt(0.75)};
    const double t0[3] = {0, 0, -4e-3}, t1[3] = {0.3e-3, 0.6e-3, -4e-3};
    coupling_case("[0, 0, -4]", "[0, 0, 1]", t0, d0);
    coupling_case("[0.3, 0.6, -4]", "[0, 0, 1]", t1, d0);
    coupling_case("[0, 0, -4]", "[0.5, 0, 0.8660254037844386]", t0, d30);
}

/* The coupling heat G (T_pin - T_b) is taken implicitly by the explicit step (sim.c
 * explicit_step, source.h heat_G_W_m3K), so the step limit is the tissue's own and a stiff
 * coupling cannot overshoot. Whole block frozen at -150 C (every face at the frozen k, the
 * largest conductivity of liver), one coupled voxel at a time set to -20 C (frozen: no latent
 * heat to absorb an overshoot) and stepped once: its new temperature must lie in [-150, -20] C
 * (a convex combination). The case is a real test:
 * with the coupling explicit at dt_safety 1, T_b's own coefficient 1 - dt (6 k_f/h^2 + W + G) /
 * (rho c) is negative at the stiffest voxels of a tilted 17 G probe (dG h^2 up to 0.63 measured; -0.10
 * at the bound without the coupling), so forward Euler would give T_b < -150 C there (-162.8 C
 * measured with the implicit treatment switched off): the test
 * asserts that the worst explicit coefficient is negative and that the implicit update is not.
 * G is read off the source (heat_G) and checked against a central difference of its heat in
 * T_b (exact: q_b is linear in T_b once frozen) to 1e-6. */
static void test_stability_bound(void)
{
    /* insulated faces: with fixed-temperature faces the boundary voxels (3 k/h^2 per axis
     * through the wall half a voxel out) set the bound and the coupling never reaches it */
    abl_scenario *sc = tu_scenario(
        "name: stab\n"
        "tissues_file: tissues.yaml\n"
        "grid: {dims: [21, 21, 21], spacing_mm: [1, 1, 1], background: liver}\n"
        "boundary: {default: {type: insulated}}\n"
        "time: {duration_s: 100, dt_s: auto, dt_safety: 1}\n"
        "sources:\n"
        "  - {name: c, type: cryo, ramp_s: 0, protocol: [{phase: freeze, duration_s: 100}],\n"
        "     probes: [{tip_mm: [-2, 0.3, -3.5], direction: [0.5, 0, 0.8660254], "
        "active_length_mm: 8, gauge: 17}]}\n",
        NULL, 0);
    CU_ASSERT_FATAL(sc != NULL);
    abl_sim *s = tu_sim(sc);
    const abl_grid *g = &s->grid;
    fill_T(s, -150.0);
    abl_source_contrib c = tu_source_update(s, 0, 10.0);
    const size_t n = c.n_heat;
    CU_ASSERT_FATAL(n > 0 && c.heat_G_W_m3K != NULL && c.heat_G_first == 0);
    size_t *b = malloc(n * sizeof *b);
    double *G = malloc(n * sizeof *G);
    CU_ASSERT_FATAL(b != NULL && G != NULL);
    memcpy(b, c.heat_idx, n * sizeof *b);
    memcpy(G, c.heat_G_W_m3K, n * sizeof *G);
    const double kf = sc->tissues.t[s->mat_tissue[0]].frozen_k_W_mK;
    const double h2 = g->h_m[0] * g->h_m[0];
    double worst = INFINITY, worst_dq = 0.0, g_err = 0.0;
    size_t iw = 0;
    for (size_t q = 0; q < n; q++) {
        const double dT = 0.01;
        s->T[b[q]] = -150.0 + dT;
        const double qp = tu_source_update(s, 0, 10.0).heat_q_W_m3[q];
        s->T[b[q]] = -150.0 - dT;
        const double qm = tu_source_update(s, 0, 10.0).heat_q_W_m3[q];
        s->T[b[q]] = -150.0;
        const double dq = -(qp - qm) / (2.0 * dT); /* the coupling's conductance [W/m^3/K] */
        g_err = fmax(g_err, fabs(dq - G[q]) / G[q]);
        const int mat = s->material[b[q]];
        const double rate = (6.0 * kf / h2 + s->perf_W[mat] + dq) * s->inv_rhoc[mat];
        const double coef = 1.0 - s->dt_s * rate;
        if (coef < worst) worst = coef, worst_dq = dq * h2 / kf, iw = q;
    }
    /* the stiffest voxel and every voxel whose explicit coefficient would be negative: -20 C
     * in a -150 C block, one step */
    double lo = INFINITY, hi = -INFINITY;
    size_t stepped = 0;
    abl_error err = {0};
    for (size_t q = 0; q < n; q++) {
        const int mat = s->material[b[q]];
        const double coef =
            1.0 - s->dt_s * (6.0 * kf / h2 + s->perf_W[mat] + G[q]) * s->inv_rhoc[mat];
        if (q != iw && coef >= 0.0) continue;
        fill_T(s, -150.0);
        s->T[b[q]] = -20.0;
        CU_ASSERT_FATAL(sim_step(s, 1, &err) == ABL_OK);
        lo = fmin(lo, s->T[b[q]]);
        hi = fmax(hi, s->T[b[q]]);
        stepped++;
    }
    printf("\n  tilted 17 G probe: %zu coupled voxels, heat_G vs dq/dT within %.1e; explicit "
           "coupling's smallest own coefficient at dt %.4f (dG h^2 %.2f); %zu such voxels "
           "stepped from -20 C in a -150 C block: %.3f..%.3f C",
           n, g_err, worst, worst_dq, stepped, lo, hi);
    CU_ASSERT(g_err < 1e-6);
    CU_ASSERT(worst < 0.0); /* the case needs the implicit treatment */
    CU_ASSERT(lo >= -150.0 - 1e-9 && hi <= -20.0);
    free(b);
    free(G);
    sim_destroy(s);
    scenario_free(sc);
}

/* Alignment: one 17 G probe, 10 mm, frozen at -150 C for 120 s on a 1 mm liver cube, its axis
 * through voxel centres, moved by 0.25 and 0.5 voxel in x, by (0.5, 0.5) (on voxel edges) and by
 * 0.5 voxel along itself. The -40 C ice (sub-voxel volume, zone.h) must agree within 3 % of the
 * mean (the 600 s, 30 mm case of docs/CRYO.md moves by <= 1.8 %; this one is smaller, about
 * 0.2 mL, so one lattice layer of its surface is a larger share). Holding the voxel centres
 * within max(r, half diagonal), the rule before the coupling, gave 1 vs 4 held voxels per slice
 * here: tens of per cent. */
static void test_alignment(void)
{
    const double(*off)[3] = tu_align_offsets;
    double V[TU_NALIGN];
    for (int q = 0; q < TU_NALIGN; q++) {
        char src[512];
        snprintf(src, sizeof src,
                 "  - {name: c, type: cryo, ramp_s: 0, protocol: [{phase: freeze, duration_s: "
                 "120}],\n"
                 "     probes: [{tip_mm: [%g, %g, %g], direction: [0, 0, 1], active_length_mm: "
                 "10, gauge: 17}]}\n",
                 off[q][0], off[q][1], -5.0 + off[q][2]);
        abl_scenario *sc = tu_liver_cube("cryo_align", 25, 1.0, 120, "auto", NULL, src);
        CU_ASSERT_FATAL(sc != NULL);
        abl_sim *s = tu_sim(sc);
        tu_step_for(s, 120.0);
        abl_axis_zone z;
        const double tip[3] = {off[q][0] * 1e-3, off[q][1] * 1e-3, (-5.0 + off[q][2]) * 1e-3};
        zone_axis_measure(&s->grid, s->T_min, -40.0, false, tip, (double[3]){0, 0, 1}, &z);
        V[q] = z.volume_pv_m3 * 1e6;
        printf("\n  offset (%.2f, %.2f, %.2f) voxel: -40 C ice %.4f mL sub-voxel, %.4f mL count",
               off[q][0], off[q][1], off[q][2], V[q], z.volume_m3 * 1e6);
        sim_destroy(s);
        scenario_free(sc);
    }
    const double worst = tu_max_rel_deviation(V, TU_NALIGN);
    CU_ASSERT(worst <= 0.03);
}

/* ---- protocol ------------------------------------------------------------------------------ */

/* The implicit schemes take the coupling heat implicitly too (sim.c implicit_substep,
 * implicit.h implicit_set_diagonal): one backward-Euler step of 2 s (16x the explicit limit)
 * with a tilted 17 G probe switched on in liver at 37 C (freezing off: constant rho c, so the
 * step's balance is linear). At every coupled voxel b the solution must satisfy
 *   rho c (T1 - T0) / h = (A T1)_b + G (T_ref - T1_b),
 * the coupling evaluated at the step's end like everything else in the step. Taken at the
 * start (as before), the balance is off by G (T1 - T0) (printed: hundreds of kW/m^3). Bound:
 * the CG tolerance (1e-8 of the right side) times the right side's size, 1e-5 of the largest
 * coupling heat. */
static void test_coupling_implicit_schemes(void)
{
    abl_scenario *sc = tu_scenario(
        "name: be\n"
        "tissues_file: tissues.yaml\n"
        "grid: {dims: [21, 21, 21], spacing_mm: [1, 1, 1], background: liver}\n"
        "boundary: {default: {type: insulated}}\n"
        "physics: {freezing: off}\n"
        "time: {duration_s: 20, scheme: implicit, dt_s: 2}\n"
        "sources:\n"
        "  - {name: c, type: cryo, ramp_s: 0, protocol: [{phase: freeze, duration_s: 20}],\n"
        "     probes: [{tip_mm: [-2, 0.3, -3.5], direction: [0.5, 0, 0.8660254], "
        "active_length_mm: 8, gauge: 17}]}\n",
        NULL, 0);
    CU_ASSERT_FATAL(sc != NULL);
    abl_sim *s = tu_sim(sc);
    const size_t n = s->grid.n;
    const double h = s->dt_s;
    double *T0 = malloc(n * sizeof *T0);
    CU_ASSERT_FATAL(T0 != NULL);
    memcpy(T0, s->T, n * sizeof *T0);
    abl_source_contrib c = tu_source_update(s, 0, h);
    CU_ASSERT_FATAL(c.heat_G_W_m3K != NULL);
    const size_t nq = c.n_heat - c.heat_G_first;
    size_t *b = malloc(nq * sizeof *b);
    double *G = malloc(nq * sizeof *G), *Tref = malloc(nq * sizeof *Tref);
    CU_ASSERT_FATAL(b && G && Tref);
    size_t m = 0;
    double qmax = 0.0;
    for (size_t q = c.heat_G_first; q < c.n_heat; q++) {
        const double g = c.heat_G_W_m3K[q - c.heat_G_first];
        if (!(g > 0.0)) continue;
        b[m] = c.heat_idx[q];
        G[m] = g;
        Tref[m] = T0[b[m]] + c.heat_q_W_m3[q] / g;
        qmax = fmax(qmax, fabs(c.heat_q_W_m3[q]));
        m++;
    }
    CU_ASSERT_FATAL(m > 0);
    abl_error err = {0};
    CU_ASSERT_FATAL(sim_step(s, 1, &err) == ABL_OK);
    double worst = 0.0, lag = 0.0;
    for (size_t q = 0; q < m; q++) {
        const size_t v = b[q];
        const double rc = 1.0 / s->inv_rhoc[s->material[v]];
        const double r = rc * (s->T[v] - T0[v]) / h - pennes_op_at(&s->st, NULL, NULL, s->T, v) -
                         G[q] * (Tref[q] - s->T[v]);
        worst = fmax(worst, fabs(r));
        lag = fmax(lag, fabs(G[q] * (s->T[v] - T0[v])));
    }
    printf("\n  BE 2 s, %zu coupled voxels: balance with the coupling at the step's end off by "
           "%.2e W/m^3 (at its start: %.3g W/m^3; largest coupling heat %.3g W/m^3)",
           m, worst, lag, qmax);
    CU_ASSERT(worst <= 1e-5 * qmax);
    free(T0);
    free(b);
    free(G);
    free(Tref);
    sim_destroy(s);
    scenario_free(sc);
}

/* Timeline with on_s = 20, ramp 10 s: freeze -150 for 100 s, passive thaw 50 s, active thaw
 * +20 for 30 s, freeze -120 for 100 s, then off; off_s = 290 cuts the last freeze. The pinned
 * value follows the linear ramp from the probe mean temperature at the phase start (field set
 * uniform, so the mean is exact): values are sums of a few exact terms, tolerance 1e-12 C. */
static void test_protocol_timing(void)
{
    abl_scenario *sc = cryo_scenario(
        11,
        "  - name: c\n"
        "    type: cryo\n"
        "    on_s: 20\n"
        "    off_s: 290\n"
        "    ramp_s: 10\n"
        "    protocol:\n"
        "      - {phase: freeze, duration_s: 100}\n"
        "      - {phase: passive_thaw, duration_s: 50}\n"
        "      - {phase: active_thaw, duration_s: 30}\n"
        "      - {phase: freeze, duration_s: 100, temperature_C: -120}\n"
        "    probes: [{tip_mm: [0, 0, -2], direction: [0, 0, 1], active_length_mm: 4, "
        "gauge: 17}]\n",
        NULL);
    CU_ASSERT_FATAL(sc != NULL);
    abl_sim *s = tu_sim(sc);
    uint8_t *in = calloc(s->grid.n, 1);
    const double tip[3] = {0, 0, -2e-3}, dz[3] = {0, 0, 1};
    rule_set(&s->grid, tip, dz, 4e-3, 0.7366e-3, in);
    const size_t ncouple = outer_neighbours(&s->grid, in);
    free(in);
    struct {
        double t, T_field;
        int pinned, phase;
        double T_pin;
    } cases[] = {
        {0.0, 37, 0, -1, 0}, /* before on_s */
        {19.999, 37, 0, -1, 0},
        {20.0, 37, 1, 0, 37.0}, /* freeze starts: ramp from 37 */
        {25.0, 37, 1, 0, 37.0 - 0.5 * 187.0},
        {30.0, 37, 1, 0, -150.0}, /* ramp done */
        {119.9, -150, 1, 0, -150.0},
        {120.0, -150, 0, 1, 0}, /* passive thaw: nothing pinned */
        {169.9, -60, 0, 1, 0},
        {170.0, -100, 1, 2, -100.0}, /* active thaw: ramp from the probe's -100 */
        {175.0, -100, 1, 2, -100.0 + 0.5 * 120.0},
        {185.0, 10, 1, 2, 20.0},
        {200.0, 20, 1, 3, 20.0}, /* second freeze, ramp from +20 */
        {202.5, 20, 1, 3, 20.0 - 0.25 * 140.0},
        {289.9, -120, 1, 3, -120.0},
        {290.0, -120, 0, -1, 0}, /* off_s */
    };
    double worst = 0.0;
    for (size_t q = 0; q < sizeof cases / sizeof cases[0]; q++) {
        fill_T(s, cases[q].T_field);
        abl_source_contrib c = tu_source_update(s, 0, cases[q].t);
        cryo_probe_state ps = probe_state(s, 0, 0);
        CU_ASSERT_EQUAL(ps.phase, cases[q].phase);
        CU_ASSERT_EQUAL(c.n_heat, cases[q].pinned ? ncouple : 0); /* the coupling */
        if (cases[q].pinned) {
            CU_ASSERT_EQUAL(c.n_pin, ps.nvox);
            CU_ASSERT_EQUAL(ps.mode, CRYO_PINNED);
            for (size_t k = 0; k < c.n_pin; k++)
                worst = fmax(worst, fabs(c.pin_T_C[k] - cases[q].T_pin));
        } else {
            CU_ASSERT_EQUAL(c.n_pin, 0);
            CU_ASSERT_EQUAL(ps.mode, CRYO_OFF);
            CU_ASSERT_DOUBLE_EQUAL(ps.power_W, 0.0, 0.0);
            CU_ASSERT_DOUBLE_EQUAL(ps.T_C, cases[q].T_field, 1e-12);
        }
    }
    printf("\n  protocol timeline: worst pinned temperature error %.1e C", worst);
    CU_ASSERT(worst < 1e-12);
    /* series: one row per update time (all increasing), columns named with units */
    abl_source_series ser;
    s->sources[0]->ops->series(s->sources[0], &ser);
    CU_ASSERT_EQUAL(ser.ncol, 4);
    CU_ASSERT_STRING_EQUAL(ser.columns[0], "time_s");
    CU_ASSERT_STRING_EQUAL(ser.columns[1], "probe1_T_C");
    CU_ASSERT_STRING_EQUAL(ser.columns[2], "probe1_power_W");
    CU_ASSERT_STRING_EQUAL(ser.columns[3], "step_s");
    CU_ASSERT_EQUAL(ser.nrow, sizeof cases / sizeof cases[0]);
    CU_ASSERT_DOUBLE_EQUAL(ser.rows[4 * 4 + 0], 30.0, 0.0);
    CU_ASSERT_DOUBLE_EQUAL(ser.rows[4 * 4 + 1], -150.0, 1e-12);
    sim_destroy(s);
    scenario_free(sc);
}

/* Passive thaw in a run: after 20 s of freezing the probe is released; during the thaw nothing
 * is pinned and the probe voxels warm from -150 C by conduction from the tissue (each explicit
 * step moves them; after 10 s the axis voxel must be well above -150 C: the time constant
 * rho c h^2 / (6 k) ~ 1.2 s makes it follow its neighbours, which the 37 C tissue warms;
 * measured -8 C, a rise of 142 K; the bound asks for 90 K). */
static void test_passive_thaw_releases(void)
{
    abl_scenario *sc =
        cryo_scenario(11,
                      "  - {name: c, type: cryo, ramp_s: 0,\n"
                      "     protocol: [{phase: freeze, duration_s: 20}, {phase: passive_thaw,"
                      " duration_s: 100}],\n"
                      "     probes: [{tip_mm: [0, 0, -2], direction: [0, 0, 1],"
                      " active_length_mm: 4, gauge: 17}]}\n",
                      NULL);
    CU_ASSERT_FATAL(sc != NULL);
    abl_sim *s = tu_sim(sc);
    abl_error err = {0};
    size_t ctr = ABL_IDX(&s->grid, 5, 5, 5);
    long n20 = (long)ceil(20.0 / s->dt_s - 1e-9);
    abl_status st = sim_step(s, n20, &err);
    if (st) printf("\n  sim_step: %s", err.msg);
    CU_ASSERT_FATAL(st == ABL_OK);
    CU_ASSERT_DOUBLE_EQUAL(s->T[ctr], -150.0, 1e-9);
    long n10 = (long)ceil(10.0 / s->dt_s);
    CU_ASSERT_FATAL(sim_step(s, n10, &err) == ABL_OK);
    abl_source_contrib c = tu_source_update(s, 0, s->t_s);
    CU_ASSERT_EQUAL(c.n_pin, 0);
    CU_ASSERT_EQUAL(c.n_heat, 0);
    CU_ASSERT_EQUAL(probe_state(s, 0, 0).mode, CRYO_OFF);
    printf("\n  passive thaw: probe axis voxel %.2f C after 10 s (was -150)", s->T[ctr]);
    CU_ASSERT(s->T[ctr] > -60.0);
    sim_destroy(s);
    scenario_free(sc);
}

/* ---- extraction limit ---------------------------------------------------------------------- */

/* Line-source conductance [1/m^2] from the held set in to the true surface of radius r, summed
 * over the coupled voxels b (docs/CRYO.md "Sub-voxel probe coupling"): G_b = sum over b's
 * non-held neighbours n of (ln d_n - ln d_b) / h^2, divided by ln(d_b / r), at least 0. */
static double coupling_sum(const abl_grid *g, const uint8_t *in, const double tip[3],
                           const double d[3], double L, double r)
{
    double sum = 0.0;
    for (int k = 1; k < g->nz - 1; k++)
        for (int j = 1; j < g->ny - 1; j++)
            for (int i = 1; i < g->nx - 1; i++) {
                size_t c = ABL_IDX(g, i, j, k);
                const size_t nb[6] = {c - 1, c + 1, c - g->sy, c + g->sy, c - g->sz, c + g->sz};
                const int off[6][3] = {{-1, 0, 0}, {1, 0, 0}, {0, -1, 0},
                                       {0, 1, 0},  {0, 0, -1}, {0, 0, 1}};
                bool touch = false;
                for (int q = 0; q < 6; q++)
                    touch |= in[nb[q]] != 0;
                if (in[c] || !touch) continue;
                double x[3];
                grid_voxel_centre_m(g, i, j, k, x);
                const double ld = log(seg_dist(x, tip, d, L));
                double S = 0.0;
                for (int q = 0; q < 6; q++) {
                    if (in[nb[q]]) continue;
                    double xn[3];
                    grid_voxel_centre_m(g, i + off[q][0], j + off[q][1], k + off[q][2], xn);
                    S += (log(seg_dist(xn, tip, d, L)) - ld) / (g->h_m[q / 2] * g->h_m[q / 2]);
                }
                sum += fmax(0.0, S / (ld - log(r)));
            }
    return sum;
}

/* One 17 G probe along z, 8 mm, in a uniform 37 C field: every coupled voxel conducts
 * k_ab G_b (37 - T_pin) to the probe, k_ab the harmonic mean of the frozen k (at T_pin, below the
 * freezing range) and the 37 C k, G_b the line-source conductance (coupling_sum, an independent
 * reading of the rule). Sums of ~100 positive terms in another order: 1e-12 relative. */
static double hand_extraction_W(const abl_sim *s, double T_pin)
{
    const abl_tissue *t = &s->sc->tissues.t[s->mat_tissue[0]];
    double kf = s->sc->freezing ? t->frozen_k_W_mK : t->k_W_mK, ku = t->k_W_mK;
    double kab = 2.0 * kf * ku / (kf + ku);
    uint8_t *in = calloc(s->grid.n, 1);
    const double tip[3] = {0, 0, -4e-3}, dz[3] = {0, 0, 1};
    rule_set(&s->grid, tip, dz, 8e-3, 0.7366e-3, in);
    double G = coupling_sum(&s->grid, in, tip, dz, 8e-3, 0.7366e-3);
    free(in);
    return grid_voxel_volume_m3(&s->grid) * kab * G * (37.0 - T_pin);
}

static abl_sim *limit_sim(abl_scenario **sc_out, const char *max_key, const char *extra)
{
    char src[600];
    snprintf(src, sizeof src,
             "  - {name: c, type: cryo, ramp_s: 0, protocol: [{phase: freeze, duration_s: 600}],\n"
             "     probes: [{tip_mm: [0, 0, -4], direction: [0, 0, 1], active_length_mm: 8,"
             " gauge: 17 %s}]}\n",
             max_key);
    abl_scenario *sc = cryo_scenario(15, src, extra);
    CU_ASSERT_FATAL(sc != NULL);
    *sc_out = sc;
    return tu_sim(sc);
}

static void test_extraction_estimate(void)
{
    abl_scenario *sc;
    abl_sim *s = limit_sim(&sc, "", NULL);
    CU_ASSERT(sc->freezing); /* physics.freezing: auto turns on with a cryo source */
    abl_source_contrib c = tu_source_update(s, 0, 1.0);
    cryo_probe_state ps = probe_state(s, 0, 0);
    CU_ASSERT_EQUAL(c.n_pin, ps.nvox);
    CU_ASSERT_EQUAL(ps.mode, CRYO_PINNED);
    double P = hand_extraction_W(s, -150.0);
    printf("\n  extraction estimate %.6f W vs hand %.6f W", ps.power_W, P);
    CU_ASSERT(fabs(ps.power_W - P) <= 1e-12 * P);
    sim_destroy(s);
    scenario_free(sc);
}

/* Limit below the estimate (session 27: a floating isothermal probe): the probe is held, all
 * its voxels at one temperature, warmer than the set -150 C, its reported power the limit. Over
 * 200 explicit steps (about 40 s) the driver's energy bookkeeping E_sources_J is the limit x
 * time within 0.5 % (measured -0.02 %): what the probe takes in a step is its conduction, its
 * held tissue's blood and metabolic heat and its own enthalpy change, solved for at the step's
 * start; the kernel conducts from the held voxels' previous temperature, a lag that the first
 * steps show most (printed). Without the held tissue's blood heat in the solve it was +8 %.
 * And the held voxels never go below the set temperature. Before session 27 a uniform sink on the held set cooled its
 * inner voxels to -166 C and took 2-4 % more than the limit (a physics test). Limit above the
 * estimate: pinned at the set temperature as without a limit. */
static void test_extraction_limit(void)
{
    abl_scenario *sc;
    abl_sim *s = limit_sim(&sc, ", max_extraction_W: 1.5", "output: {energy_balance: true}\n");
    double P = hand_extraction_W(s, -150.0);
    CU_ASSERT_FATAL(P > 2.0 * 1.5);
    abl_source_contrib c = tu_source_update(s, 0, 1.0);
    cryo_probe_state ps = probe_state(s, 0, 0);
    CU_ASSERT_EQUAL(c.n_pin, ps.nvox);
    CU_ASSERT_EQUAL(ps.mode, CRYO_LIMITED);
    CU_ASSERT_DOUBLE_EQUAL(ps.power_W, 1.5, 0.0);
    bool iso = c.n_pin > 0;
    for (size_t k = 0; k < c.n_pin; k++) iso = iso && c.pin_T_C[k] == c.pin_T_C[0];
    CU_ASSERT(iso);
    CU_ASSERT(c.pin_T_C[0] > -150.0 && c.pin_T_C[0] == ps.T_C);
    printf("\n  limited probe: held at %.4f C (set -150 C)", ps.T_C);
    /* the held voxels (the same in the second sim of this scenario) */
    const size_t nheld = c.n_pin;
    size_t *held = malloc((nheld ? nheld : 1) * sizeof *held);
    CU_ASSERT_FATAL(held != NULL);
    memcpy(held, c.pin_idx, nheld * sizeof *held);
    sim_destroy(s);

    abl_scenario *sc2;
    s = limit_sim(&sc2, ", max_extraction_W: 1.5", "output: {energy_balance: true}\n");
    abl_error err = {0};
    double coldest = INFINITY;
    for (int k = 0; k < 200; k++) {
        abl_status st = sim_step(s, 1, &err);
        if (st) printf("\n  sim_step: %s", err.msg);
        CU_ASSERT_FATAL(st == ABL_OK);
        cryo_probe_state q = probe_state(s, 0, 0);
        for (size_t j = 0; j < nheld; j++) coldest = fmin(coldest, s->T[held[j]]);
        if (k == 4)
            printf("\n  limited probe: E_sources after 5 steps %.6g J vs limit x time %.6g J",
                   s->energy.E_sources_J, -1.5 * s->t_s);
        CU_ASSERT(q.mode == CRYO_LIMITED);
    }
    const double expect = -1.5 * s->t_s;
    printf("\n  limited probe: E_sources over 200 steps (%.1f s) %.6g J vs %.6g J (%+.3f %%); "
           "coldest held voxel %.3f C",
           s->t_s, s->energy.E_sources_J, expect, 100.0 * (s->energy.E_sources_J / expect - 1.0),
           coldest);
    CU_ASSERT(fabs(s->energy.E_sources_J / expect - 1.0) < 0.005);
    CU_ASSERT(coldest >= -150.0);
    free(held);
    sim_destroy(s);
    scenario_free(sc2);

    s = limit_sim(&sc2, ", max_extraction_W: 50", NULL);
    c = tu_source_update(s, 0, 1.0);
    CU_ASSERT_EQUAL(c.n_pin, probe_state(s, 0, 0).nvox);
    CU_ASSERT(c.n_heat > 0); /* the coupling of the pinned probe */
    CU_ASSERT_EQUAL(probe_state(s, 0, 0).mode, CRYO_PINNED);
    sim_destroy(s);
    scenario_free(sc2);
    scenario_free(sc);
}

/* The coolant-side law (film_coefficient_W_per_m2K, Etheridge et al. 2013 J Biomech Eng
 * 135:021002: the probe surface exchanges heat with the cryogen through a convective
 * coefficient): with h = 2000 W/m^2/K on the 17 G probe's 8 mm freezing surface, G = h 2 pi r L
 * = 0.0740 W/K, the probe floats at T_f where what it takes is G (T_f - T_gas), T_gas the phase's
 * -150 C. Asserted: the reported power is that law at the reported temperature (to 1e-9 W: the
 * bisection stops at 1e-9 K, times G < 0.1 W/K), T_f lies between the set temperature and 37 C,
 * and the power is below the unlimited estimate (the law gives less than an isothermal -150 C
 * probe would take). Over 200 steps the driver's bookkeeping E_sources_J equals the sum of the
 * reported power x step within 0.5 % (the same lag as the fixed limit above, measured there). */
static void test_film_coefficient(void)
{
    abl_scenario *sc;
    abl_sim *s = limit_sim(&sc, ", film_coefficient_W_per_m2K: 2000",
                           "output: {energy_balance: true}\n");
    const double G = 2000.0 * 2.0 * 3.14159265358979323846 * 0.7366e-3 * 8e-3;
    const double P_unlimited = hand_extraction_W(s, -150.0);
    abl_source_contrib c = tu_source_update(s, 0, 1.0);
    cryo_probe_state ps = probe_state(s, 0, 0);
    CU_ASSERT_EQUAL(ps.mode, CRYO_LIMITED);
    CU_ASSERT_EQUAL(c.n_pin, ps.nvox);
    printf("\n  film coefficient: held at %.4f C, %.5f W (G (T - T_gas) = %.5f W; unlimited %.4f W)",
           ps.T_C, ps.power_W, G * (ps.T_C + 150.0), P_unlimited);
    CU_ASSERT(fabs(ps.power_W - G * (ps.T_C + 150.0)) <= 1e-9);
    CU_ASSERT(ps.T_C > -150.0 && ps.T_C < 37.0);
    CU_ASSERT(ps.power_W > 0.0 && ps.power_W < P_unlimited);
    sim_destroy(s);
    scenario_free(sc);

    s = limit_sim(&sc, ", film_coefficient_W_per_m2K: 2000", "output: {energy_balance: true}\n");
    abl_error err = {0};
    double E_reported = 0.0;
    for (int k = 0; k < 200; k++) {
        const double t0 = s->t_s;
        abl_status st = sim_step(s, 1, &err);
        if (st) printf("\n  sim_step: %s", err.msg);
        CU_ASSERT_FATAL(st == ABL_OK);
        cryo_probe_state q = probe_state(s, 0, 0);
        CU_ASSERT(q.mode == CRYO_LIMITED);
        CU_ASSERT(fabs(q.power_W - G * (q.T_C + 150.0)) <= 1e-9);
        E_reported -= q.power_W * (s->t_s - t0);
    }
    printf("\n  film coefficient: E_sources over %.1f s %.6g J vs reported power x step %.6g J "
           "(%+.3f %%)",
           s->t_s, s->energy.E_sources_J, E_reported,
           100.0 * (s->energy.E_sources_J / E_reported - 1.0));
    CU_ASSERT(fabs(s->energy.E_sources_J / E_reported - 1.0) < 0.005);
    sim_destroy(s);
    scenario_free(sc);

    /* with max_extraction_W below what the law gives (3 W < the 6.35 W above), the less of
     * the two holds: the power is the limit exactly and the probe sits where the law would
     * allow more (a review asked for the combination) */
    s = limit_sim(&sc, ", film_coefficient_W_per_m2K: 2000, max_extraction_W: 3", NULL);
    tu_source_update(s, 0, 1.0);
    cryo_probe_state q = probe_state(s, 0, 0);
    printf("\n  film coefficient and a 3 W limit: held at %.4f C, %.6f W (law %.4f W)", q.T_C,
           q.power_W, G * (q.T_C + 150.0));
    CU_ASSERT_EQUAL(q.mode, CRYO_LIMITED);
    CU_ASSERT_DOUBLE_EQUAL(q.power_W, 3.0, 0.0);
    CU_ASSERT(G * (q.T_C + 150.0) >= 3.0);
    sim_destroy(s);
    scenario_free(sc);
}

/* ---- several probes ------------------------------------------------------------------------ */

/* Three probes 6 mm apart, the third with its own protocol (passive first, then freeze at
 * -100): the pins are the union of the probes that are on, the counts add, each probe's state
 * follows its own protocol, and axes returns the three tips and unit directions. */
static void test_multi_probe(void)
{
    abl_scenario *sc = cryo_scenario(
        21,
        "  - name: c\n"
        "    type: cryo\n"
        "    ramp_s: 0\n"
        "    protocol: [{phase: freeze, duration_s: 60}, {phase: passive_thaw, duration_s: 60}]\n"
        "    probes:\n"
        "      - {tip_mm: [-6, 0, -5], direction: [0, 0, 2], active_length_mm: 10, gauge: 17}\n"
        "      - {tip_mm: [6, 0, -5], direction: [0, 0, 1], active_length_mm: 10, gauge: 13}\n"
        "      - tip_mm: [0, 6, -5]\n"
        "        direction: [0, 0, 1]\n"
        "        active_length_mm: 6\n"
        "        diameter_mm: 1.5\n"
        "        protocol: [{phase: passive_thaw, duration_s: 30}, {phase: freeze, duration_s: "
        "60, temperature_C: -100}]\n",
        NULL);
    CU_ASSERT_FATAL(sc != NULL);
    abl_sim *s = tu_sim(sc);
    abl_source_contrib c = tu_source_update(s, 0, 10.0);
    size_t n1 = probe_state(s, 0, 0).nvox, n2 = probe_state(s, 0, 1).nvox,
           n3 = probe_state(s, 0, 2).nvox;
    const double dz[3] = {0, 0, 1}, t1[3] = {-6e-3, 0, -5e-3}, t2[3] = {6e-3, 0, -5e-3},
                 t3[3] = {0, 6e-3, -5e-3};
    CU_ASSERT_EQUAL(n1, rule_set(&s->grid, t1, dz, 10e-3, 0.7366e-3, NULL));
    CU_ASSERT_EQUAL(n2, rule_set(&s->grid, t2, dz, 10e-3, 1.2065e-3, NULL));
    CU_ASSERT_EQUAL(n3, rule_set(&s->grid, t3, dz, 6e-3, 0.75e-3, NULL));
    CU_ASSERT_EQUAL(c.n_pin, n1 + n2); /* probe 3 still in its passive phase */
    CU_ASSERT_EQUAL(probe_state(s, 0, 2).mode, CRYO_OFF);
    c = tu_source_update(s, 0, 40.0);
    CU_ASSERT_EQUAL(c.n_pin, n1 + n2 + n3);
    size_t n100 = 0;
    for (size_t k = 0; k < c.n_pin; k++)
        n100 += c.pin_T_C[k] == -100.0;
    CU_ASSERT_EQUAL(n100, n3);
    c = tu_source_update(s, 0, 70.0);
    CU_ASSERT_EQUAL(c.n_pin, n3);
    abl_source_axis ax[8];
    int na = s->sources[0]->ops->axes(s->sources[0], ax, 8);
    CU_ASSERT_EQUAL(na, 3);
    CU_ASSERT_DOUBLE_EQUAL(ax[0].tip_m[0], -6e-3, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(ax[0].dir[2], 1.0, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(ax[2].tip_m[1], 6e-3, 1e-15);
    CU_ASSERT_EQUAL(s->sources[0]->ops->axes(s->sources[0], ax, 2), 2);
    abl_source_series ser;
    s->sources[0]->ops->series(s->sources[0], &ser);
    CU_ASSERT_EQUAL(ser.ncol, 8);
    CU_ASSERT_STRING_EQUAL(ser.columns[6], "probe3_power_W");
    CU_ASSERT_STRING_EQUAL(ser.columns[7], "step_s");
    sim_destroy(s);
    scenario_free(sc);
}

/* ---- checkpoint state ---------------------------------------------------------------------- */

/* state_io round trip: a source saved inside a ramp and loaded into a fresh source of the same
 * scenario (whose field is different) must ramp from the saved start temperature and hold the
 * same series. The pinned value is a two-term expression in both: equal to 1e-12 C. */
static void test_state_roundtrip(void)
{
    const char *src = "  - {name: c, type: cryo, ramp_s: 10, protocol: [{phase: freeze, "
                      "duration_s: 100}],\n"
                      "     probes: [{tip_mm: [0, 0, -2], direction: [0, 0, 1], "
                      "active_length_mm: 4, gauge: 17}]}\n";
    abl_scenario *sc = cryo_scenario(11, src, NULL);
    CU_ASSERT_FATAL(sc != NULL);
    abl_sim *a = tu_sim(sc), *b = tu_sim(sc);
    CU_ASSERT_FATAL(a->sources[0]->ops->state_io != NULL);
    fill_T(a, 37.0);
    tu_source_update(a, 0, 0.0); /* ramp starts from 37 */
    tu_source_update(a, 0, 2.0);
    abl_blob blob = {ABL_BLOB_COUNT, NULL, 0, 0, false};
    abl_error err = {0};
    CU_ASSERT_FATAL(a->sources[0]->ops->state_io(a->sources[0], &blob, &err) == ABL_OK);
    size_t len = blob.pos;
    blob = (abl_blob){ABL_BLOB_SAVE, malloc(len), len, 0, false};
    CU_ASSERT_FATAL(a->sources[0]->ops->state_io(a->sources[0], &blob, &err) == ABL_OK);
    blob.mode = ABL_BLOB_LOAD;
    blob.pos = 0;
    CU_ASSERT_FATAL(b->sources[0]->ops->state_io(b->sources[0], &blob, &err) == ABL_OK);
    fill_T(b, -50.0); /* a probe mean of -50 must not restart the ramp */
    abl_source_contrib c = tu_source_update(b, 0, 4.0);
    CU_ASSERT_FATAL(c.n_pin > 0);
    CU_ASSERT_DOUBLE_EQUAL(c.pin_T_C[0], 37.0 + 0.4 * (-187.0), 1e-12);
    abl_source_series sa, sb;
    a->sources[0]->ops->series(a->sources[0], &sa);
    b->sources[0]->ops->series(b->sources[0], &sb);
    CU_ASSERT_EQUAL(sb.nrow, sa.nrow + 1);
    CU_ASSERT(memcmp(sa.rows, sb.rows, sa.nrow * (size_t)sa.ncol * sizeof(double)) == 0);
    /* a truncated blob is refused */
    blob.pos = 0;
    blob.len = len - 8;
    CU_ASSERT(b->sources[0]->ops->state_io(b->sources[0], &blob, &err) != ABL_OK);
    free(blob.buf);
    sim_destroy(a);
    sim_destroy(b);
    scenario_free(sc);
}

/* ---- errors -------------------------------------------------------------------------------- */

/* A scenario that must fail (load, or sim_create when create is set) with a message holding
 * every fragment. */
static void expect_error(const char *sources, bool create, const char *const *frag, int nfrag)
{
    char yaml[4096], dir[600];
    snprintf(yaml, sizeof yaml,
             "name: cryo_bad\n"                                                       /* 1 */
             "tissues_file: tissues.yaml\n"                                           /* 2 */
             "grid: {dims: [21, 21, 21], spacing_mm: [1, 1, 1], background: liver}\n" /* 3 */
             "time: {duration_s: 60}\n"                                               /* 4 */
             "sources:\n"                                                             /* 5 */
             "%s",
             sources);
    snprintf(dir, sizeof dir, "%s/configs", tu_root());
    abl_scenario *sc = NULL;
    abl_error err = {0};
    abl_status st = scenario_load_string(yaml, "cryo.yaml", dir, NULL, 0, &sc, &err);
    if (create) {
        CU_ASSERT_FATAL(st == ABL_OK);
        abl_sim *s = NULL;
        st = sim_create(sc, &s, &err);
        sim_destroy(s);
    }
    CU_ASSERT(st == ABL_EINVAL);
    for (int i = 0; i < nfrag; i++) {
        if (!strstr(err.msg, frag[i])) printf("\n  missing '%s' in: %s", frag[i], err.msg);
        CU_ASSERT(strstr(err.msg, frag[i]) != NULL);
    }
    scenario_free(sc);
}

static void test_errors(void)
{
    /* line 6 = first line of the source entry; each fragment list starts with the line of
     * the offending node */
    const char *gauge[] = {"cryo.yaml:10", "sources[0].probes[0].gauge", "19"};
    expect_error("  - type: cryo\n"
                 "    protocol: [{phase: freeze, duration_s: 60}]\n"
                 "    probes:\n"
                 "      - {tip_mm: [0, 0, 0], direction: [0, 0, 1], active_length_mm: 5,\n"
                 "         gauge: 19}\n",
                 false, gauge, 3);
    const char *passive[] = {"cryo.yaml:8", "sources[0].protocol[1].temperature_C",
                             "holds no temperature"};
    expect_error("  - type: cryo\n"
                 "    protocol: [{phase: freeze, duration_s: 60},\n"
                 "               {phase: passive_thaw, duration_s: 60, temperature_C: 10}]\n"
                 "    probes: [{tip_mm: [0, 0, 0], direction: [0, 0, 1], active_length_mm: 5, "
                 "gauge: 17}]\n",
                 false, passive, 3);
    const char *noproto[] = {"cryo.yaml:9", "sources[0].probes[1]", "has no protocol"};
    expect_error("  - type: cryo\n"
                 "    probes:\n"
                 "      - {tip_mm: [0, 0, 0], direction: [0, 0, 1], active_length_mm: 5, "
                 "gauge: 17, protocol: [{phase: freeze, duration_s: 9}]}\n"
                 "      - {tip_mm: [5, 0, 0], direction: [0, 0, 1], active_length_mm: 5, "
                 "gauge: 17}\n",
                 false, noproto, 3);
    const char *both[] = {"cryo.yaml:9", "sources[0].probes[0]", "exactly one of 'gauge'"};
    expect_error("  - type: cryo\n"
                 "    protocol: [{phase: freeze, duration_s: 60}]\n"
                 "    probes:\n"
                 "      - {tip_mm: [0, 0, 0], direction: [0, 0, 1], active_length_mm: 5, "
                 "gauge: 17, diameter_mm: 2}\n",
                 false, both, 3);
    const char *warm[] = {"cryo.yaml:8", "sources[0].protocol[0].temperature_C", "10"};
    expect_error("  - type: cryo\n"
                 "    protocol:\n"
                 "      - {phase: freeze, duration_s: 60, temperature_C: 10}\n"
                 "    probes: [{tip_mm: [0, 0, 0], direction: [0, 0, 1], active_length_mm: 5, "
                 "gauge: 17}]\n",
                 false, warm, 3);
    const char *phase[] = {"cryo.yaml:8", "sources[0].protocol[0].phase", "refreeze"};
    expect_error("  - type: cryo\n"
                 "    protocol:\n"
                 "      - {phase: refreeze, duration_s: 60}\n"
                 "    probes: [{tip_mm: [0, 0, 0], direction: [0, 0, 1], active_length_mm: 5, "
                 "gauge: 17}]\n",
                 false, phase, 3);
    const char *unk[] = {"cryo.yaml:9", "length_mm"};
    expect_error("  - type: cryo\n"
                 "    protocol: [{phase: freeze, duration_s: 60}]\n"
                 "    probes:\n"
                 "      - {tip_mm: [0, 0, 0], direction: [0, 0, 1], length_mm: 5, gauge: 17}\n",
                 false, unk, 2);
    char many[4096] = "  - type: cryo\n"
                      "    protocol: [{phase: freeze, duration_s: 60}]\n"
                      "    probes:\n";
    for (int i = 0; i < 9; i++) {
        char line[200];
        snprintf(line, sizeof line,
                 "      - {tip_mm: [%d, 0, 0], direction: [0, 0, 1], active_length_mm: 5, "
                 "gauge: 17}\n",
                 2 * i - 8);
        strcat(many, line);
    }
    const char *nine[] = {"cryo.yaml:8", "sources[0].probes", "9 probes", "1 to 8"};
    expect_error(many, false, nine, 4);
    /* placement errors come from create, at the probe's line */
    const char *overlap[] = {"cryo.yaml:10", "probes 1 and 2 share voxels"};
    expect_error("  - type: cryo\n"
                 "    protocol: [{phase: freeze, duration_s: 60}]\n"
                 "    probes:\n"
                 "      - {tip_mm: [0, 0, 0], direction: [0, 0, 1], active_length_mm: 5, "
                 "gauge: 17}\n"
                 "      - {tip_mm: [1, 0, 0], direction: [0, 0, 1], active_length_mm: 5, "
                 "gauge: 13}\n",
                 true, overlap, 2);
    const char *outside[] = {"cryo.yaml:9", "probe 1", "leaves the grid"};
    expect_error("  - type: cryo\n"
                 "    protocol: [{phase: freeze, duration_s: 60}]\n"
                 "    probes:\n"
                 "      - {tip_mm: [0, 0, 0], direction: [0, 0, 1], active_length_mm: 30, "
                 "gauge: 17}\n",
                 true, outside, 3);
}

void register_cryo_tests(void)
{
    CU_pSuite s = CU_add_suite("cryo", NULL, NULL);
    CU_add_test(s, "needle gauge table", test_gauge);
    CU_add_test(s, "probe voxels: axis-aligned sets counted by hand", test_voxels_axis_aligned);
    CU_add_test(s, "probe voxels: oblique and anisotropic, covered and connected",
                test_voxels_oblique);
    CU_add_test(s, "sub-voxel coupling: line-source profile exact at every coupled voxel",
                test_coupling_exact);
    CU_add_test(s, "sub-voxel coupling: ice volume independent of the axis offset",
                test_alignment);
    CU_add_test(s, "coupling heat taken implicitly: no overshoot at the tissue's step",
                test_stability_bound);
    CU_add_test(s, "implicit schemes take the coupling heat implicitly",
                test_coupling_implicit_schemes);
    CU_add_test(s, "protocol timeline: ramps, phases, on/off, series", test_protocol_timing);
    CU_add_test(s, "passive thaw pins nothing and the probe warms", test_passive_thaw_releases);
    CU_add_test(s, "extraction estimate vs hand computation", test_extraction_estimate);
    CU_add_test(s, "film_coefficient_W_per_m2K: the probe takes h A (T - T_gas)",
                test_film_coefficient);
    CU_add_test(s, "max_extraction_W held exactly (source and energy bookkeeping)",
                test_extraction_limit);
    CU_add_test(s, "several probes, per-probe protocol, axes", test_multi_probe);
    CU_add_test(s, "checkpoint state round trip inside a ramp", test_state_roundtrip);
    CU_add_test(s, "errors name file:line and key", test_errors);
}
