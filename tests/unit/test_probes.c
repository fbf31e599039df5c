/* test_probes.c - sensors, zone growth curves and source power (runlog.h, issue 15 items 3-5).
 *
 * Probes: a probe's last sample equals the trilinear interpolation of /fields/T_final_C at its
 * position, computed here from the grid geometry alone (not through runlog.c); a probe on a
 * voxel centre equals that voxel exactly; a probe outside the voxel centres is refused naming
 * the key, the value and the extent. Zones: connected components and the new diameters on
 * hand-made fields; every growth curve (volumes, largest component, length, the three
 * diameters, per applicator, per cluster axis) ends exactly on the final zone of /zones and
 * /isotherms. Power: the log's energy of a single volumetric or fixed_temperature source equals
 * the driver's E_sources_J, and a volumetric source's is its schedule's integral. */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ablasim/output.h"
#include "ablasim/runlog.h"
#include "ablasim/zone.h"
#include "testutil.h"

/* ---- helpers ------------------------------------------------------------------------------- */

/* Read a float64 dataset of at most max values; returns its element count (-1 on error). */
static long rd(hid_t f, const char *name, double *v, size_t max)
{
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0) {
        printf("\n  missing dataset %s", name);
        return -1;
    }
    hid_t sp = H5Dget_space(d);
    long n = (long)H5Sget_simple_extent_npoints(sp);
    herr_t r =
        (size_t)n <= max ? H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) : -1;
    H5Sclose(sp);
    H5Dclose(d);
    return r < 0 ? -1 : n;
}

/* Value of "key": <number> after the first occurrence of `after` in the JSON text (NAN if
 * absent, -INFINITY for null). */
static double json_value(const char *json, const char *after, const char *key)
{
    const char *p = json ? strstr(json, after) : NULL;
    char k[128];
    snprintf(k, sizeof k, "\"%s\": ", key);
    p = p ? strstr(p, k) : NULL;
    if (!p) return NAN;
    p += strlen(k);
    if (!strncmp(p, "null", 4)) return -INFINITY;
    return strtod(p, NULL);
}

/* Run sc to its end writing <tmp>/<name>.h5 (and .json); fails the test on an error. */
static void run_to(abl_sim *s, const char *name, char *h5, size_t len)
{
    snprintf(h5, len, "%s/%s.h5", tu_tmpdir(), name);
    abl_run_opts o = {.output_path = h5};
    abl_error err = {0};
    abl_status st = sim_run(s, &o, &err);
    if (st) printf("\n  sim_run: %s", err.msg);
    CU_ASSERT_FATAL(st == ABL_OK);
}

/* Trilinear interpolation of field f at x_m, from the grid geometry alone. */
static double trilinear(const abl_grid *g, const double *f, const double x_m[3])
{
    const int n[3] = {g->nx, g->ny, g->nz};
    int i0[3];
    double w[3];
    for (int a = 0; a < 3; a++) {
        const double u = (x_m[a] - g->origin_m[a]) / g->h_m[a];
        i0[a] = (int)floor(u);
        if (i0[a] > n[a] - 2) i0[a] = n[a] - 2;
        w[a] = u - i0[a];
    }
    double v = 0;
    for (int dz = 0; dz < 2; dz++)
        for (int dy = 0; dy < 2; dy++)
            for (int dx = 0; dx < 2; dx++)
                v += (dx ? w[0] : 1 - w[0]) * (dy ? w[1] : 1 - w[1]) * (dz ? w[2] : 1 - w[2]) *
                     f[ABL_IDX(g, i0[0] + dx, i0[1] + dy, i0[2] + dz)];
    return v;
}

/* ---- probes -------------------------------------------------------------------------------- */

/* Anisotropic grid (1 x 1.25 x 1.5 mm, 17 x 15 x 13 voxels centred on 0), an off-centre 4 W
 * sphere for 40 s (explicit). Probes: an arbitrary point, one on the centre of voxel (10, 8, 7)
 * (x = (10 - 8) * 1 = 2 mm, y = (8 - 7) * 1.25, z = (7 - 6) * 1.5), a point on the hull's
 * corner, and a line of 4 points. */
static const char probe_yaml[] =
    "name: probes\n"
    "tissues_file: tissues.yaml\n"
    "grid: {dims: [17, 15, 13], spacing_mm: [1, 1.25, 1.5], background: liver}\n"
    "boundary: {default: {type: fixed_temperature, temperature_C: 37}}\n"
    "time: {duration_s: 40}\n"
    "sources:\n"
    "  - {name: heater, type: volumetric, power_W: 4,\n"
    "     shape: {type: sphere, center_mm: [1, -0.5, 0.7], radius_mm: 2.6}}\n"
    "output:\n"
    "  snapshot_interval_s: 0\n"
    "  energy_balance: true\n"
    "  probes:\n"
    "    - {name: tc1, position_mm: [2.3, 0.4, -1.1]}\n"
    "    - {name: centre, position_mm: [2, 1.25, 1.5]}\n"
    "    - {name: corner, position_mm: [8, 8.75, 9]}\n"
    "    - {name: l1, from_mm: [-6, -3, 1], to_mm: [6, 3, -2], points: 4}\n";

static void test_probe_values(void)
{
    abl_scenario *sc = tu_scenario(probe_yaml, NULL, 0);
    CU_ASSERT_FATAL(sc != NULL);
    abl_sim *s = tu_sim(sc);
    CU_ASSERT_EQUAL(s->runlog->nprobes, 7);
    char h5[700];
    run_to(s, "probes", h5, sizeof h5);
    hid_t f = H5Fopen(h5, H5F_ACC_RDONLY, H5P_DEFAULT);
    CU_ASSERT_FATAL(f >= 0);
    const abl_grid *g = &s->grid;
    double *T = malloc(g->n * sizeof *T), tt[4096], v[4096];
    CU_ASSERT_FATAL(T && rd(f, "/fields/T_final_C", T, g->n) == (long)g->n);
    const long nt = rd(f, "/probes/time_s", tt, 4096);
    CU_ASSERT_FATAL(nt > 2);
    CU_ASSERT_EQUAL(tt[0], 0.0);
    /* the last sample is at the end of the run, the one the final field belongs to */
    CU_ASSERT_DOUBLE_EQUAL(tt[nt - 1], s->t_s, 1e-12);
    const struct {
        const char *name;
        double x_mm[3];
    } pr[] = {{"tc1", {2.3, 0.4, -1.1}}, {"corner", {8, 8.75, 9}}, {"l1_0", {-6, -3, 1}},
              {"l1_1", {-2, -1, 0}},     {"l1_2", {2, 1, -1}},     {"l1_3", {6, 3, -2}}};
    for (size_t p = 0; p < sizeof pr / sizeof pr[0]; p++) {
        char name[64];
        snprintf(name, sizeof name, "/probes/%s", pr[p].name);
        CU_ASSERT_FATAL(rd(f, name, v, 4096) == nt);
        double x[3];
        for (int a = 0; a < 3; a++)
            x[a] = pr[p].x_mm[a] * 1e-3;
        const double want = trilinear(g, T, x);
        /* the same 8 products summed in another order: round-off of ~8 ulp of 100 C */
        CU_ASSERT_DOUBLE_EQUAL(v[nt - 1], want, 1e-11);
        if (fabs(v[nt - 1] - want) > 1e-11)
            printf("\n  %s: probe %.15g, trilinear %.15g", pr[p].name, v[nt - 1], want);
    }
    /* tc1 sits 1.3 mm from the 4 W sphere: it must have warmed (the check has teeth) */
    CU_ASSERT_FATAL(rd(f, "/probes/tc1", v, 4096) == nt);
    CU_ASSERT(v[nt - 1] > 40.0);
    /* t = 0: 37 C everywhere, weights summing to 1 up to round-off */
    CU_ASSERT_DOUBLE_EQUAL(v[0], 37.0, 1e-12);
    /* on a voxel centre: weights exactly 1 and 0, so exactly the voxel */
    CU_ASSERT_FATAL(rd(f, "/probes/centre", v, 4096) == nt);
    CU_ASSERT_EQUAL(v[nt - 1], T[ABL_IDX(g, 10, 8, 7)]);
    /* the corner of the hull is voxel (16, 14, 12) */
    CU_ASSERT_FATAL(rd(f, "/probes/corner", v, 4096) == nt);
    CU_ASSERT_EQUAL(v[nt - 1], T[ABL_IDX(g, 16, 14, 12)]);
    H5Fclose(f);
    /* JSON: final/max/min per probe (the final equals the last sample) */
    char jp[760];
    snprintf(jp, sizeof jp, "%s/probes.json", tu_tmpdir());
    char *js = tu_slurp(jp);
    CU_ASSERT_FATAL(js != NULL);
    CU_ASSERT_DOUBLE_EQUAL(json_value(js, "\"centre\"", "final_C"), T[ABL_IDX(g, 10, 8, 7)], 1e-12);
    CU_ASSERT_EQUAL(json_value(js, "\"centre\"", "min_C"), 37.0);
    CU_ASSERT(json_value(js, "\"tc1\"", "max_C") >= json_value(js, "\"tc1\"", "final_C"));
    /* item 3: the only source gets all the source heat the driver counted (the sum over the
     * intervals telescopes: round-off only), which for a constant 4 W is 4 W x the time run */
    const double e = json_value(js, "\"heater\"", "energy_J");
    CU_ASSERT_DOUBLE_EQUAL(e, s->energy.E_sources_J, 1e-12 * 160.0);
    CU_ASSERT_DOUBLE_EQUAL(e, 4.0 * s->t_s, 1e-9 * 160.0);
    CU_ASSERT_DOUBLE_EQUAL(json_value(js, "\"heater\"", "final"), 4.0, 1e-9);
    free(js);
    free(T);
    sim_destroy(s);
    scenario_free(sc);
}

/* Positions outside the voxel centres are refused when the grid is known, naming file:line,
 * the key, the value and the extent; a line is checked at both ends. */
static void test_probe_outside(void)
{
    const char *cases[][2] = {
        {"[{name: far, position_mm: [9.6, 0, 0]}]",
         "'output.probes[0].position_mm' = [9.6, 0, 0] mm lies outside the grid's voxel "
         "centres (x -9.5..9.5, y -9.5..9.5, z -9.5..9.5 mm)"},
        {"[{name: ok, position_mm: [9.5, -9.5, 0]}, {name: l, from_mm: [0, 0, 0], to_mm: [0, 0, "
         "-12], points: 3}]",
         "'output.probes[1].to_mm' = [0, 0, -12] mm lies outside"},
    };
    for (size_t c = 0; c < 2; c++) {
        char yaml[1024];
        snprintf(yaml, sizeof yaml,
                 "name: out\ntissues_file: tissues.yaml\n"
                 "grid: {dims: [20, 20, 20], spacing_mm: [1, 1, 1], background: liver}\n"
                 "time: {duration_s: 1}\noutput:\n  probes: %s\n",
                 cases[c][0]);
        abl_scenario *sc = tu_scenario(yaml, NULL, 0);
        CU_ASSERT_FATAL(sc != NULL);
        abl_sim *s = NULL;
        abl_error err = {0};
        CU_ASSERT_EQUAL(sim_create(sc, &s, &err), ABL_EINVAL);
        CU_ASSERT(s == NULL);
        CU_ASSERT(strstr(err.msg, "test.yaml:6") != NULL);
        CU_ASSERT(strstr(err.msg, cases[c][1]) != NULL);
        if (!strstr(err.msg, cases[c][1])) printf("\n  message: %s", err.msg);
        scenario_free(sc);
    }
}

/* ---- zone measures on hand-made fields ------------------------------------------------------- */

static void test_components_and_diameters(void)
{
    int dims[3] = {20, 20, 20};
    double h[3] = {1e-3, 1e-3, 1e-3}, org[3] = {0, 0, 0};
    abl_grid g;
    abl_error err = {0};
    CU_ASSERT_FATAL(grid_init(&g, dims, h, org, &err) == ABL_OK);
    double *f = calloc(g.n, sizeof *f);
    CU_ASSERT_FATAL(f != NULL);
    /* a 3x3x3 block at (5..7)^3, one voxel sharing a face with it, one touching it only at a
     * corner, one far away: 6-connectivity gives 28 in the largest component of 30 */
    for (int k = 5; k < 8; k++)
        for (int j = 5; j < 8; j++)
            for (int i = 5; i < 8; i++)
                f[ABL_IDX(&g, i, j, k)] = 1;
    f[ABL_IDX(&g, 8, 6, 6)] = 1; /* face */
    f[ABL_IDX(&g, 8, 8, 8)] = 1; /* corner only */
    f[ABL_IDX(&g, 15, 2, 17)] = 1;
    long largest, n;
    CU_ASSERT(zone_largest_component(&g, f, 0.5, true, NULL, &largest, &n, NULL, &err) == ABL_OK);
    CU_ASSERT_EQUAL(n, 30);
    CU_ASSERT_EQUAL(largest, 28);
    abl_box b;
    CU_ASSERT_EQUAL(zone_bbox(&g, f, 0.5, true, NULL, &b), 30);
    CU_ASSERT(b.lo[0] == 5 && b.hi[0] == 16 && b.lo[1] == 2 && b.hi[1] == 9 && b.lo[2] == 5 &&
              b.hi[2] == 18);
    /* cold criterion (<=) on the same field: every other voxel, one component */
    CU_ASSERT(zone_largest_component(&g, f, 0.5, false, NULL, &largest, &n, NULL, &err) == ABL_OK);
    CU_ASSERT(n == (long)g.n - 30 && largest == n);

    /* a 4 x 8 voxel rectangle across a z axis, 6 long: diameters 8 mm (max caliper) and 4 mm
     * (min caliper, exact at 0 and 90 degrees, which are among the 18 directions); axis through
     * its centre so the largest diameter is 2 * max r + 1 = 2 sqrt(1.5^2 + 3.5^2) + 1 mm */
    memset(f, 0, g.n * sizeof *f);
    for (int k = 2; k < 8; k++)
        for (int j = 4; j < 12; j++)
            for (int i = 6; i < 10; i++)
                f[ABL_IDX(&g, i, j, k)] = 1;
    abl_axis_zone z;
    const double tip[3] = {7.5e-3, 7.5e-3, 0}, dir[3] = {0, 0, 2};
    zone_axis_measure(&g, f, 0.5, true, tip, dir, &z);
    CU_ASSERT_EQUAL(z.nvox, 192);
    CU_ASSERT_DOUBLE_EQUAL(z.length_m, 6e-3, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(z.diameter_min_m, 4e-3, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(z.diameter_m, (2 * sqrt(1.5 * 1.5 + 3.5 * 3.5) + 1) * 1e-3, 1e-15);
    /* equivalent diameter: sqrt(6 V / (pi L)) = sqrt(6 * 192 / (6 pi)) mm */
    CU_ASSERT_DOUBLE_EQUAL(z.diameter_eq_m, sqrt(6.0 * 192 / (6 * 3.14159265358979)) * 1e-3, 1e-12);
    /* the same inside its bounding box */
    abl_axis_zone zb;
    CU_ASSERT_EQUAL(zone_bbox(&g, f, 0.5, true, NULL, &b), 192);
    zone_axis_measure_box(&g, f, 0.5, true, &b, tip, dir, &zb);
    CU_ASSERT(memcmp(&z, &zb, sizeof z) == 0);

    /* a ball of radius sqrt(42) = 6.5 voxels measured along z: length 13 mm (centres -6..6 and
     * one voxel), 1189 voxels (the lattice count, 4 % above 4/3 pi 42^1.5 = 1140); the
     * equivalent diameter of a sphere is its own diameter, here within that volume error
     * (d_eq ~ V^(1/2): +1.7 %, 0.22 mm) */
    memset(f, 0, g.n * sizeof *f);
    for (int k = 0; k < 20; k++)
        for (int j = 0; j < 20; j++)
            for (int i = 0; i < 20; i++)
                if ((i - 10) * (i - 10) + (j - 10) * (j - 10) + (k - 10) * (k - 10) <= 42)
                    f[ABL_IDX(&g, i, j, k)] = 1;
    zone_axis_measure(&g, f, 0.5, true, (double[3]){10e-3, 10e-3, 10e-3}, (double[3]){0, 0, 1}, &z);
    CU_ASSERT_EQUAL(z.nvox, 1189);
    CU_ASSERT_DOUBLE_EQUAL(z.length_m, 13e-3, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(z.diameter_eq_m, sqrt(6.0 * 1189 / (3.14159265358979 * 13)) * 1e-3,
                           1e-12);
    CU_ASSERT_DOUBLE_EQUAL(z.diameter_eq_m, 13e-3, 0.25e-3);
    /* across z the ball is symmetric: smallest caliper and axis-centred diameter agree */
    CU_ASSERT_DOUBLE_EQUAL(z.diameter_min_m, 13e-3, 1e-15);
    CU_ASSERT(z.diameter_min_m <= z.diameter_m + 1e-15);

    /* sub-voxel volume: the field R - |x - c| (a signed distance, so the estimate's plane model
     * is nearly exact) for a ball of R = 5.3 mm, its centre moved by 0 .. 0.75 voxel in x and y.
     * The exact volume 4/3 pi R^3 = 623.6 mm^3; the voxel count swings with the offset (lattice
     * points in a ball: 616..638 here, 3.5 %), the partial-volume estimate moves by under 0.5 %.
     * It is biased high on a convex zone: the tangent plane at a surface voxel holds more of the
     * voxel than the ball does. For a fraction linear over the width w the bias is about
     * w^2 / (4 R^2) of the volume, 0.9 % (w = h) to 2.7 % (w = sqrt(3) h) here: allowed 2.7 %.
     * The same on the bounding box: the same bits. */
    const double R = 5.3, Vx = 4.0 / 3.0 * 3.14159265358979 * R * R * R;
    double cmin = 1e9, cmax = 0, pmax = 0, pmin_v = 1e9, pmax_v = 0;
    for (int q = 0; q < 4; q++) {
        const double o = 0.25 * q;
        for (int k = 0; k < 20; k++)
            for (int j = 0; j < 20; j++)
                for (int i = 0; i < 20; i++)
                    f[ABL_IDX(&g, i, j, k)] =
                        R - sqrt((i - 10 - o) * (i - 10 - o) + (j - 10 - 0.5 * o) * (j - 10 - 0.5 * o) +
                                 (k - 10) * (k - 10));
        zone_axis_measure(&g, f, 0.0, true, (double[3]){10e-3, 10e-3, 10e-3},
                          (double[3]){0, 0, 1}, &z);
        CU_ASSERT_EQUAL(zone_bbox(&g, f, 0.0, true, NULL, &b), z.nvox);
        zone_axis_measure_box(&g, f, 0.0, true, &b, (double[3]){10e-3, 10e-3, 10e-3},
                              (double[3]){0, 0, 1}, &zb);
        CU_ASSERT(memcmp(&z, &zb, sizeof z) == 0);
        const double cnt = z.volume_m3 * 1e9, pv = z.volume_pv_m3 * 1e9;
        cmin = fmin(cmin, cnt);
        cmax = fmax(cmax, cnt);
        pmax = fmax(pmax, fabs(pv / Vx - 1));
        pmin_v = fmin(pmin_v, pv);
        pmax_v = fmax(pmax_v, pv);
        printf("\n  ball R 5.3 at offset %.2f: count %.1f, sub-voxel %.2f mm^3 (exact %.2f)", o,
               cnt, pv, Vx);
    }
    CU_ASSERT(pmax_v - pmin_v <= 0.005 * Vx);
    CU_ASSERT(pmax <= 0.027);
    CU_ASSERT(cmax - cmin > 0.02 * Vx); /* the count does move: the test can tell */
    /* several axes in one scan (zone_axes_measure_box, the run log's call): each axis's result
     * bit for bit what a call for that axis alone gives; 11 axes (two passes of up to 8),
     * tilted ones, one with a zero direction (a zero result) */
    {
        double tips[11][3], dirs[11][3];
        abl_axis_zone za[11], z1;
        for (int a = 0; a < 11; a++) {
            tips[a][0] = (8.0 + 0.3 * a) * 1e-3, tips[a][1] = 10e-3, tips[a][2] = (9.5 + 0.1 * a) * 1e-3;
            dirs[a][0] = sin(0.4 * a), dirs[a][1] = cos(0.7 * a), dirs[a][2] = 0.5 + 0.1 * a;
        }
        dirs[4][0] = dirs[4][1] = dirs[4][2] = 0.0;
        zone_axes_measure_box(&g, f, 0.0, true, &b, 11, (const double(*)[3])tips,
                              (const double(*)[3])dirs, za);
        int same = 0;
        for (int a = 0; a < 11; a++) {
            zone_axis_measure_box(&g, f, 0.0, true, &b, tips[a], dirs[a], &z1);
            same += memcmp(&z1, &za[a], sizeof z1) == 0;
        }
        CU_ASSERT_EQUAL(same, 11);
        CU_ASSERT_EQUAL(za[4].nvox, 0);
        CU_ASSERT(za[3].nvox > 0 && za[3].diameter_m != za[5].diameter_m);
    }
    free(f);
}

/* ---- growth curves end on the final zone ------------------------------------------------------
 */

/* A two-probe cryo source (cold zones, two applicator axes and a cluster axis), a 3 W
 * volumetric heater away from it (hot zones, measured along the cryo axes) and a small
 * 60 C fixed_temperature sphere, 60 s, growth every 10 s. Every growth dataset's last row must
 * equal the final dataset exactly (same counts, minima and maxima; bounding box vs grid). */
static const char growth_yaml[] =
    "name: growth\n"
    "tissues_file: tissues.yaml\n"
    "grid: {dims: [36, 28, 28], spacing_mm: [1, 1, 1], background: liver}\n"
    "boundary: {default: {type: fixed_temperature, temperature_C: 37}}\n"
    "time: {duration_s: 60}\n"
    "sources:\n"
    "  - {name: heater, type: volumetric, power_W: 3,\n"
    "     shape: {type: sphere, center_mm: [-8, 0, 0], radius_mm: 3}}\n"
    "  - {name: hold, type: fixed_temperature, temperature_C: 60,\n"
    "     shape: {type: sphere, center_mm: [0, 9, 8], radius_mm: 1.5}}\n"
    "  - name: cryo\n"
    "    type: cryo\n"
    "    protocol: [{phase: freeze, duration_s: 60}]\n"
    "    probes:\n"
    "      - {tip_mm: [8.5, -3.5, -6.5], direction: [0, 0, 1], active_length_mm: 8, gauge: 17}\n"
    "      - {tip_mm: [10.5, 3.5, -4.5], direction: [0, 0.2, 1], active_length_mm: 8, gauge: 17}\n"
    "output:\n"
    "  snapshot_interval_s: 0\n"
    "  hot_thresholds_C: [50, 60]\n"
    "  cold_thresholds_C: [0, -20]\n";

/* A run whose last step is shortened below half a step samples its growth curve near 0, 10,
 * 20 s and at its end only (QA, session 29: the end rule "within half a step of duration_s"
 * took the step before a short last one for the end and then sampled the end again, rows
 * 0.04-0.45 s apart, also in the source power series). Here the heater's off_s = 10.3 s
 * breaks the step sequence (steps land on source events), and 29.7 s ends on a 0.095 s step
 * after one at 29.605 s: growth rows 0, ~10, ~20, 29.7 (five with 29.605 before the fix). */
static void test_no_extra_sample_before_end(void)
{
    static const char yaml[] =
        "name: shortlast\n"
        "tissues_file: tissues.yaml\n"
        "grid: {dims: [20, 20, 20], spacing_mm: [1, 1, 1], background: liver}\n"
        "time: {duration_s: 29.7, dt_s: 0.5}\n"
        "sources:\n"
        "  - {name: heater, type: volumetric, power_W: 2, off_s: 10.3,\n"
        "     shape: {type: sphere, center_mm: [0, 0, 0], radius_mm: 3}}\n"
        "output: {snapshot_interval_s: 0, monitor_interval_s: 1, growth_interval_s: 10,\n"
        "         probes: [{name: centre, position_mm: [0, 0, 0]}]}\n";
    abl_scenario *sc = tu_scenario(yaml, NULL, 0);
    CU_ASSERT_FATAL(sc != NULL);
    abl_sim *s = tu_sim(sc);
    char h5[700];
    run_to(s, "shortlast", h5, sizeof h5);
    hid_t f = H5Fopen(h5, H5F_ACC_RDONLY, H5P_DEFAULT);
    CU_ASSERT_FATAL(f >= 0);
    double gt[64], pt[64];
    const long ng = rd(f, "/isotherms/growth/time_s", gt, 64);
    const long np = rd(f, "/probes/time_s", pt, 64);
    printf("\n  growth rows %ld, last two %.3f %.3f; probe rows %ld, last two %.3f %.3f", ng,
           gt[ng - 2], gt[ng - 1], np, pt[np - 2], pt[np - 1]);
    CU_ASSERT_EQUAL(ng, 4);
    CU_ASSERT_DOUBLE_EQUAL(gt[ng - 1], 29.7, 1e-9);
    CU_ASSERT(gt[ng - 2] < 21.0);
    /* probes every 1 s: 0, the first pass after each of 1..29 s (29.605), then the end */
    CU_ASSERT_EQUAL(np, 31);
    CU_ASSERT(pt[np - 2] > 29.0 && pt[np - 2] < 29.7);
    H5Fclose(f);
    sim_destroy(s);
    scenario_free(sc);
}

static void test_growth_ends_on_final(void)
{
    abl_scenario *sc = tu_scenario(growth_yaml, NULL, 0);
    CU_ASSERT_FATAL(sc != NULL);
    abl_sim *s = tu_sim(sc);
    /* axes: cryo_0, cryo_1, cryo_cluster (mean tip, mean direction) */
    CU_ASSERT_FATAL(s->runlog->naxes == 3);
    CU_ASSERT_EQUAL(s->runlog->axes[2].axis, -1);
    CU_ASSERT_DOUBLE_EQUAL(s->runlog->axes[2].ax.tip_m[0], 9.5e-3, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(s->runlog->axes[2].ax.tip_m[2], -5.5e-3, 1e-15);
    char h5[700];
    run_to(s, "growth", h5, sizeof h5);
    hid_t f = H5Fopen(h5, H5F_ACC_RDONLY, H5P_DEFAULT);
    CU_ASSERT_FATAL(f >= 0);
    double gt[64], gv[64 * 2], fv[2];
    const long ng = rd(f, "/isotherms/growth/time_s", gt, 64);
    /* t = 0, 10, ..., 60 */
    CU_ASSERT_FATAL(ng == 7);
    CU_ASSERT_DOUBLE_EQUAL(gt[6], 60.0, 1e-9);
    const char *groups[] = {"/zones/cryo_0", "/zones/cryo_1", "/zones/cryo_cluster"};
    const char *what[] = {"length_mm",       "diameter_mm",
                          "diameter_min_mm", "diameter_equivalent_mm",
                          "volume_mL",       "largest_component_volume_mL",
                          "volume_subvoxel_mL"};
    const char *kinds[] = {"hot", "cold", "omega_ge_1"};
    int compared = 0, nonzero = 0;
    for (int z = 0; z < 3; z++)
        for (int k = 0; k < 3; k++)
            for (int q = 0; q < 7; q++) {
                char a[200], b[200];
                snprintf(a, sizeof a, "%s/growth/%s_%s", groups[z], kinds[k], what[q]);
                snprintf(b, sizeof b, "%s/%s_%s", groups[z], kinds[k], what[q]);
                const long na = rd(f, a, gv, 128), nb = rd(f, b, fv, 2);
                CU_ASSERT_FATAL(na == ng * nb && nb >= 1);
                for (long h = 0; h < nb; h++) {
                    const double last = gv[(ng - 1) * nb + h];
                    CU_ASSERT_EQUAL(last, fv[h]);
                    if (last != fv[h])
                        printf("\n  %s[%ld]: growth %.17g, final %.17g", a, h, last, fv[h]);
                    compared++;
                    nonzero += fv[h] > 0;
                }
            }
    CU_ASSERT_EQUAL(compared, 3 * 7 * 5);
    /* the bounding boxes hold the whole zones: the same measures on the whole grid */
    {
        const abl_runlog *log = s->runlog;
        const size_t nz = (size_t)log->naxes * (size_t)log->ncrit;
        abl_axis_zone *zg = malloc(nz * sizeof *zg);
        long nv[2 * ABL_MAX_THRESHOLDS + 1], lg[2 * ABL_MAX_THRESHOLDS + 1];
        abl_error err = {0};
        const abl_sim_view v = sim_view(s);
        CU_ASSERT_FATAL(zg && runlog_measure(&v, log->axes, log->naxes, false, zg, nv, lg, NULL,
                                             &err) == ABL_OK);
        const size_t last = log->ng - 1;
        CU_ASSERT(!memcmp(zg, log->g_zone + last * nz, nz * sizeof *zg));
        CU_ASSERT(!memcmp(nv, log->g_nvox + last * (size_t)log->ncrit,
                          (size_t)log->ncrit * sizeof(long)));
        CU_ASSERT(!memcmp(lg, log->g_largest + last * (size_t)log->ncrit,
                          (size_t)log->ncrit * sizeof(long)));
        free(zg);
    }
    /* hot and cold zones exist (Omega >= 1 may not yet after 60 s): most measures are not 0 */
    CU_ASSERT(nonzero >= 60);
    if (nonzero < 60) printf("\n  %d of %d measures are not zero", nonzero, compared);
    /* volumes: /isotherms growth vs final */
    const char *iso[][2] = {
        {"/isotherms/growth/hot_volume_total_mL", "/isotherms/hot_volume_total_mL"},
        {"/isotherms/growth/cold_volume_total_mL", "/isotherms/cold_volume_total_mL"},
        {"/isotherms/growth/hot_largest_component_volume_mL",
         "/isotherms/hot_largest_component_volume_mL"},
        {"/isotherms/growth/cold_largest_component_volume_mL",
         "/isotherms/cold_largest_component_volume_mL"},
        {"/isotherms/growth/damage_omega_ge_1_volume_total_mL",
         "/isotherms/damage_omega_ge_1_volume_total_mL"}};
    for (int i = 0; i < 5; i++) {
        const long nb = rd(f, iso[i][1], fv, 2);
        CU_ASSERT_FATAL(rd(f, iso[i][0], gv, 128) == ng * nb);
        /* count x voxel volume on both sides; the isotherm volumes multiply the same way */
        for (long h = 0; h < nb; h++)
            CU_ASSERT_DOUBLE_EQUAL(gv[(ng - 1) * nb + h], fv[h], 1e-12);
    }
    /* the curves grow: the 50 C volume never shrinks (T_max only rises) */
    CU_ASSERT_FATAL(rd(f, "/isotherms/growth/hot_volume_total_mL", gv, 128) == ng * 2);
    for (long k = 1; k < ng; k++)
        CU_ASSERT(gv[k * 2] >= gv[(k - 1) * 2]);
    CU_ASSERT(gv[(ng - 1) * 2] > 0.1);
    H5Fclose(f);
    /* item 3: the volumetric heater gets its schedule's integral, 3 W x 60 s; the held sphere
     * and the cryo probes share the rest, which cannot be told apart: the sphere's energy is
     * unknown (null), never a guess; cryo keeps its own generator log */
    char jp[760];
    snprintf(jp, sizeof jp, "%s/growth.json", tu_tmpdir());
    char *js = tu_slurp(jp);
    CU_ASSERT_FATAL(js != NULL);
    CU_ASSERT_DOUBLE_EQUAL(json_value(js, "\"heater\": {", "energy_J"), 180.0, 1e-9);
    CU_ASSERT_EQUAL(json_value(js, "\"hold\": {", "energy_J"), -INFINITY);
    CU_ASSERT(strstr(js, "\"probe1_energy_J\"") != NULL);
    /* tip probes: one per applicator, none for the cluster axis; the tips are frozen */
    CU_ASSERT(strstr(js, "\"cryo_0_tip\"") && strstr(js, "\"cryo_1_tip\"") &&
              !strstr(js, "cluster_tip"));
    CU_ASSERT(json_value(js, "\"cryo_0_tip\"", "min_C") < -100);
    free(js);
    sim_destroy(s);
    scenario_free(sc);
}

/* ---- fixed temperature: power from the driver's source heat --------------------------------- */

static void test_fixed_temperature_power(void)
{
    abl_scenario *sc = tu_scenario(
        "name: held\ntissues_file: tissues.yaml\n"
        "grid: {dims: [16, 16, 16], spacing_mm: [1, 1, 1], background: liver}\n"
        "time: {duration_s: 30, scheme: crank_nicolson, dt_s: 1}\n"
        "sources:\n"
        "  - {name: tip, type: fixed_temperature, temperature_C: 80, off_s: 20,\n"
        "     shape: {type: sphere, center_mm: [0.5, 0.5, 0.5], radius_mm: 2}}\n"
        "output: {snapshot_interval_s: 0, monitor_interval_s: 2, energy_balance: true}\n",
        NULL, 0);
    CU_ASSERT_FATAL(sc != NULL);
    abl_sim *s = tu_sim(sc);
    char h5[700];
    run_to(s, "held", h5, sizeof h5);
    const abl_runlog *log = s->runlog;
    /* all the heat the driver counted went to the only source: the sum over the intervals
     * telescopes to E_sources_J (round-off of 15 additions) */
    CU_ASSERT(s->energy.E_sources_J > 10.0);
    CU_ASSERT_DOUBLE_EQUAL(log->src_E_J[0], s->energy.E_sources_J, 1e-12 * s->energy.E_sources_J);
    /* samples every 2 s; once released (20 s) the source delivers nothing */
    CU_ASSERT_EQUAL(log->nt, 16);
    CU_ASSERT(log->src_P_W[1] > 0.5);
    CU_ASSERT_EQUAL(log->src_P_W[15], 0.0);
    hid_t f = H5Fopen(h5, H5F_ACC_RDONLY, H5P_DEFAULT);
    double p[64], t[64];
    CU_ASSERT(rd(f, "/sources/tip/power_W", p, 64) == 15 &&
              rd(f, "/sources/tip/time_s", t, 64) == 15);
    CU_ASSERT(t[0] == 2.0 && p[0] == log->src_P_W[1]);
    H5Fclose(f);
    sim_destroy(s);
    scenario_free(sc);
}

/* ---- checkpoint state ------------------------------------------------------------------------ */

static void test_state_io(void)
{
    abl_scenario *sc = tu_scenario(probe_yaml, NULL, 0);
    CU_ASSERT_FATAL(sc != NULL);
    abl_sim *a = tu_sim(sc), *b = tu_sim(sc);
    abl_error err = {0};
    CU_ASSERT_FATAL(sim_step(a, 40, &err) == ABL_OK);
    abl_blob cnt = {ABL_BLOB_COUNT, NULL, 0, 0, false};
    CU_ASSERT_FATAL(runlog_state_io(a->runlog, &cnt, &err) == ABL_OK);
    abl_blob sv = {ABL_BLOB_SAVE, malloc(cnt.pos), cnt.pos, 0, false};
    CU_ASSERT_FATAL(runlog_state_io(a->runlog, &sv, &err) == ABL_OK);
    abl_blob ld = {ABL_BLOB_LOAD, sv.buf, sv.len, 0, false};
    CU_ASSERT_FATAL(runlog_state_io(b->runlog, &ld, &err) == ABL_OK);
    const abl_runlog *x = a->runlog, *y = b->runlog;
    CU_ASSERT(y->restored && x->nt == y->nt && x->ng == y->ng && x->nt > 2);
    CU_ASSERT(!memcmp(x->t_s, y->t_s, x->nt * sizeof(double)));
    CU_ASSERT(!memcmp(x->T_C, y->T_C, x->nt * (size_t)x->nprobes * sizeof(double)));
    CU_ASSERT(
        !memcmp(x->g_zone, y->g_zone, x->ng * (size_t)(x->ncrit * x->naxes) * sizeof *x->g_zone));
    CU_ASSERT(!memcmp(x->g_largest, y->g_largest, x->ng * (size_t)x->ncrit * sizeof(long)));
    CU_ASSERT(x->src_E_J[0] == y->src_E_J[0]);
    CU_ASSERT(x->E_sources_prev_J == y->E_sources_prev_J &&
              x->history_from_s == y->history_from_s);
    /* the const entry for saving walks the same bytes, and refuses to load */
    abl_blob cc = {ABL_BLOB_COUNT, NULL, 0, 0, false};
    CU_ASSERT_FATAL(runlog_state_save(x, &cc, &err) == ABL_OK && cc.pos == cnt.pos);
    abl_blob sc2 = {ABL_BLOB_SAVE, malloc(cc.pos), cc.pos, 0, false};
    CU_ASSERT_FATAL(runlog_state_save(x, &sc2, &err) == ABL_OK);
    CU_ASSERT(sc2.pos == sv.pos && !memcmp(sc2.buf, sv.buf, sv.pos));
    free(sc2.buf);
    abl_blob bad = {ABL_BLOB_LOAD, sv.buf, sv.len, 0, false};
    CU_ASSERT_EQUAL(runlog_state_save(y, &bad, &err), ABL_EINTERNAL);
    /* a truncated blob is refused, never read past */
    abl_blob tr = {ABL_BLOB_LOAD, sv.buf, sv.len / 2, 0, false};
    CU_ASSERT_EQUAL(runlog_state_io(b->runlog, &tr, &err), ABL_EINVAL);
    CU_ASSERT(strstr(err.msg, "truncated") != NULL);
    free(sv.buf);
    sim_destroy(a);
    sim_destroy(b);
    scenario_free(sc);
}

/* One 30 W antenna "ant" at the centre of a 20 mm liver cube, with the given `output` mapping. */
static abl_scenario *ant_scenario(const char *output)
{
    char yaml[1024];
    snprintf(yaml, sizeof yaml,
             "name: tipant\n"
             "tissues_file: tissues.yaml\n"
             "grid: {dims: [20, 20, 20], spacing_mm: [1, 1, 1], background: liver}\n"
             "time: {duration_s: 1}\n"
             "sources:\n"
             "  - {name: ant, type: mwa, frequency_MHz: 2450, power_W: 30,"
             " tip_mm: [0, 0, 0], direction: [0, 0, 1]}\n"
             "output: %s\n",
             output);
    return tu_scenario(yaml, NULL, 0);
}

/* Tip probes carry their source's whole name: two 63-character-class names that differ only at
 * their end gave "<47 a>_tip" and "<47 a>_ti_2" (a 48-byte cut; adversarial test, session 28).
 * And a user probe may not take a tip probe's name (it pushed the tip probe to "_2"). */
static void test_tip_probe_names(void)
{
    char a[56];
    memset(a, 'a', 55);
    a[55] = '\0';
    char yaml[2048];
    snprintf(yaml, sizeof yaml,
             "name: tipnames\n"
             "tissues_file: tissues.yaml\n"
             "grid: {dims: [20, 20, 20], spacing_mm: [1, 1, 1], background: liver}\n"
             "time: {duration_s: 1}\n"
             "sources:\n"
             "  - {name: %s_left, type: mwa, frequency_MHz: 2450, power_W: 30,"
             " tip_mm: [-3, 0, 0], direction: [0, 0, 1]}\n"
             "  - {name: %s_right, type: mwa, frequency_MHz: 2450, power_W: 30,"
             " tip_mm: [3, 0, 0], direction: [0, 0, 1]}\n",
             a, a);
    abl_scenario *sc = tu_scenario(yaml, NULL, 0);
    CU_ASSERT_FATAL(sc != NULL);
    abl_sim *s = tu_sim(sc);
    CU_ASSERT_FATAL(s != NULL);
    CU_ASSERT_EQUAL_FATAL(s->runlog->nprobes, 2);
    char want[128];
    snprintf(want, sizeof want, "%s_left_tip", a);
    CU_ASSERT_STRING_EQUAL(s->runlog->probes[0].name, want);
    snprintf(want, sizeof want, "%s_right_tip", a);
    CU_ASSERT_STRING_EQUAL(s->runlog->probes[1].name, want);
    sim_destroy(s);
    scenario_free(sc);
    /* a user probe named like the tip probe the run makes: refused, naming it ("ant_2_tip"
     * would be the name for a source with several applicators; this one has one: allowed,
     * below) */
    abl_error err = {0};
    abl_scenario *bad = ant_scenario("{probes: [{name: ant_tip, position_mm: [1, 1, 1]}]}");
    CU_ASSERT_FATAL(bad != NULL);
    abl_sim *bs = NULL;
    CU_ASSERT(sim_create(bad, &bs, &err) != ABL_OK); /* refused before the first step */
    CU_ASSERT(strstr(err.msg, "applicator tip of source 'ant'") != NULL);
    sim_destroy(bs);
    scenario_free(bad);
    /* with output.tip_probes: false there is no tip probe, and the name is the user's */
    abl_scenario *off =
        ant_scenario("{tip_probes: false, probes: [{name: ant_tip, position_mm: [1, 1, 1]}]}");
    CU_ASSERT_FATAL(off != NULL);
    abl_sim *os = tu_sim(off);
    CU_ASSERT_FATAL(os != NULL);
    CU_ASSERT_EQUAL(os->runlog->nprobes, 1);
    CU_ASSERT_STRING_EQUAL(os->runlog->probes[0].name, "ant_tip");
    sim_destroy(os);
    scenario_free(off);
    /* names that only look alike stay allowed */
    abl_scenario *ok = ant_scenario("{probes: [{name: ant_tipx, position_mm: [1, 1, 1]},"
                                    " {name: ant_x_tip, position_mm: [1, 1, 2]},"
                                    " {name: ant_2_tip, position_mm: [1, 2, 2]}]}");
    CU_ASSERT_FATAL(ok != NULL);
    abl_sim *oks = tu_sim(ok);
    CU_ASSERT_FATAL(oks != NULL);
    CU_ASSERT_EQUAL(oks->runlog->nprobes, 4); /* three of the user's and ant_tip */
    CU_ASSERT_STRING_EQUAL(oks->runlog->probes[3].name, "ant_tip");
    sim_destroy(oks);
    scenario_free(ok);
}

void register_probe_tests(void)
{
    CU_pSuite s = CU_add_suite("probes", NULL, NULL);
    CU_add_test(s, "probe = trilinear T_final at the last sample; voxel centre exact; JSON",
                test_probe_values);
    CU_add_test(s, "probe outside the voxel centres refused (key, value, extent)",
                test_probe_outside);
    CU_add_test(s, "largest 6-connected component, diameters min/max/equivalent",
                test_components_and_diameters);
    CU_add_test(s, "no extra sample before a short last step", test_no_extra_sample_before_end);
    CU_add_test(s, "growth curves end on the final /zones and /isotherms (2-probe cryo + heater)",
                test_growth_ends_on_final);
    CU_add_test(s, "fixed_temperature power: log energy = E_sources_J (CN)",
                test_fixed_temperature_power);
    CU_add_test(s, "run log checkpoint state round trip, truncation refused", test_state_io);
    CU_add_test(s, "tip probes keep their source's whole name; users may not take it",
                test_tip_probe_names);
}
