/* test_sweep.c - parameter sweeps: expansion (grid, zip, linspace, logspace: exact texts),
 * sampling (Latin hypercube strata, seeds, inverse normal CDF), validation messages, a small
 * serial sweep checked against a direct run, the probability map against the table, the
 * journal refusing a changed sweep, kill -9 and resume, and MPI (2 ranks) equal to serial;
 * --jobs 2 equal to --jobs 1, a journal line failing its CRC, a journal with a wrong header.
 *
 * Points use the demo scenario on tiny grids (16^3 at 2 mm for the in-process sweeps; 40^3 at
 * 1 mm, 240 s for the sweep that is killed, so that each point lasts long enough to be
 * interrupted between journal lines). */
#include <dirent.h>
#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ablasim/fileguard.h"
#include "ablasim/hash.h"
#include "ablasim/mesh.h"
#include "ablasim/output.h"
#include "ablasim/scenario.h"
#include "ablasim/sim.h"
#include "ablasim/sweep.h"
#include "testutil.h"

/* ---- helpers ------------------------------------------------------------------------------ */

static abl_sweep *load_text(const char *text)
{
    abl_sweep *sw = NULL;
    abl_error err = {0};
    if (sweep_load_string(text, "test.yaml", tu_tmpdir(), &sw, &err)) {
        fprintf(stderr, "\nsweep error: %s\n", err.msg);
        CU_FAIL("sweep did not load");
        return NULL;
    }
    return sw;
}

/* Error message of a sweep text that must be rejected (at load or at validation). */
static const char *rejected(const char *text, abl_error *err)
{
    abl_sweep *sw = NULL;
    memset(err, 0, sizeof *err);
    abl_status st = sweep_load_string(text, "sweep.yaml", tu_tmpdir(), &sw, err);
    if (!st) st = sweep_validate(sw, err);
    sweep_free(sw);
    CU_ASSERT(st == ABL_EINVAL);
    return err->msg;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; s && *s; s++)
        n += *s == '\n';
    return n;
}

/* Split one CSV line (RFC 4180 quoting) into fields; returns the count. */
static int csv_split(const char *line, char fields[][256], int max)
{
    int n = 0;
    const char *p = line;
    while (n < max) {
        size_t o = 0;
        if (*p == '"') {
            for (p++; *p && !(*p == '"' && p[1] != '"'); p++) {
                if (*p == '"') p++;
                if (o < 255) fields[n][o++] = *p;
            }
            if (*p == '"') p++;
        } else {
            while (*p && *p != ',' && *p != '\n') {
                if (o < 255) fields[n][o++] = *p;
                p++;
            }
        }
        fields[n++][o] = '\0';
        if (*p != ',') break;
        p++;
    }
    return n;
}

/* The table text without its wall-time column (the only column allowed to differ). */
static char *table_without_wall(const char *csv)
{
    static char f[256][256];
    size_t cap = strlen(csv) + 1, o = 0;
    char *out = malloc(cap);
    int skip = -1;
    for (const char *line = csv; line && *line;) {
        const char *nl = strchr(line, '\n');
        int n = csv_split(line, f, 256);
        for (int i = 0; i < n; i++) {
            if (skip < 0 && !strcmp(f[i], "wall_time_s")) skip = i;
            if (i == skip) continue;
            o += (size_t)snprintf(out + o, cap - o, "%s%s", f[i], i + 1 < n ? "|" : "\n");
        }
        line = nl ? nl + 1 : NULL;
    }
    out[o] = '\0';
    return out;
}

/* Value of column `col` in data row `row` (0-based) of a CSV text. */
static double csv_value(const char *csv, const char *col, int row)
{
    static char f[256][256];
    int c = -1;
    const char *line = csv;
    for (int r = -1; line && *line; r++) {
        int n = csv_split(line, f, 256);
        if (r < 0) {
            for (int i = 0; i < n; i++)
                if (!strcmp(f[i], col)) c = i;
            if (c < 0) return NAN;
        } else if (r == row) {
            return c < n && f[c][0] ? strtod(f[c], NULL) : NAN;
        }
        const char *nl = strchr(line, '\n');
        line = nl ? nl + 1 : NULL;
    }
    return NAN;
}

static const char *demo(void)
{
    static char path[700];
    snprintf(path, sizeof path, "%s/configs/liver_demo.yaml", tu_root());
    return path;
}

/* The demo scenario with its tissue table named by an absolute path (so that a copy of it
 * anywhere still finds it), or by tissues when given. */
static void demo_copy(const char *dest, const char *tissues)
{
    char *text = tu_slurp(demo());
    CU_ASSERT_FATAL(text != NULL);
    char *t = strstr(text, "tissues_file: tissues.yaml");
    CU_ASSERT_FATAL(t != NULL);
    char tline[900];
    if (tissues)
        snprintf(tline, sizeof tline, "tissues_file: %s", tissues);
    else
        snprintf(tline, sizeof tline, "tissues_file: %s/configs/tissues.yaml", tu_root());
    size_t n = strlen(text) + strlen(tline) + 1;
    char *out = malloc(n);
    snprintf(out, n, "%.*s%s%s", (int)(t - text), text, tline,
             t + strlen("tissues_file: tissues.yaml"));
    tu_spit(dest, out);
    free(out);
    free(text);
}

/* Complete journal entries (lines after the header). */
static int journal_entries(const char *dir)
{
    char p[1000];
    snprintf(p, sizeof p, "%s/journal.txt", dir);
    char *s = tu_slurp(p);
    int n = s ? count_lines(s) - 1 : -1;
    free(s);
    return n;
}

/* ---- expansion ---------------------------------------------------------------------------- */

static void test_expand_grid(void)
{
    abl_sweep *sw = load_text("base: b.yaml\n"
                              "output_dir: o\n"
                              "axes:\n"
                              "  - {key: sources.0.power_W, values: [20, 30]}\n"
                              "  - {key: time.duration_s, linspace: {from: 60, to: 90, count: 4}}\n"
                              "  - {key: grid.dims, values: [[16, 16, 16]]}\n");
    CU_ASSERT_FATAL(sw != NULL);
    /* full grid, last axis fastest: 2 x 4 x 1 */
    CU_ASSERT_EQUAL(sw->npoints, 8);
    CU_ASSERT_EQUAL(sw->nkeys, 3);
    const char *const *p0 = sweep_point_sets(sw, 0), *const *p5 = sweep_point_sets(sw, 5);
    CU_ASSERT_STRING_EQUAL(p0[0], "sources.0.power_W=20");
    CU_ASSERT_STRING_EQUAL(p0[1], "time.duration_s=60");
    CU_ASSERT_STRING_EQUAL(p0[2], "grid.dims=[16, 16, 16]");
    CU_ASSERT_STRING_EQUAL(p5[0], "sources.0.power_W=30");
    CU_ASSERT_STRING_EQUAL(p5[1], "time.duration_s=70");
    /* 60 + 30 * 2/3 = 80 exactly as text (15 significant digits, no 79.999999999999986) */
    CU_ASSERT_STRING_EQUAL(sweep_point_sets(sw, 2)[1], "time.duration_s=80");
    CU_ASSERT_STRING_EQUAL(sweep_point_sets(sw, 7)[1], "time.duration_s=90");
    CU_ASSERT(sweep_point_hash(sw, 0) != sweep_point_hash(sw, 1));
    sweep_free(sw);
}

static void test_expand_zip_ranges(void)
{
    abl_sweep *sw = load_text("base: b.yaml\n"
                              "output_dir: o\n"
                              "combine: zip\n"
                              "axes:\n"
                              "  - {key: a.lin_s, linspace: {from: 0.1, to: 0.3, count: 3}}\n"
                              "  - {key: a.log_per_s, logspace: {from: 0.001, to: 0.1, count: 3}}\n"
                              "  - {key: a.name, name: label, values: [\"fat\", liver, '30']}\n");
    CU_ASSERT_FATAL(sw != NULL);
    CU_ASSERT_EQUAL(sw->npoints, 3); /* zipped, not 27 */
    static const char *const expect[3][3] = {
        {"a.lin_s=0.1", "a.log_per_s=0.001", "a.name=\"fat\""},
        {"a.lin_s=0.2", "a.log_per_s=0.01", "a.name=liver"},
        {"a.lin_s=0.3", "a.log_per_s=0.1", "a.name=\"30\""}, /* quoted stays text */
    };
    for (size_t p = 0; p < 3; p++)
        for (int k = 0; k < 3; k++)
            CU_ASSERT_STRING_EQUAL(sweep_point_sets(sw, p)[k], expect[p][k]);
    CU_ASSERT_STRING_EQUAL(sw->keys[2].column, "label");
    /* the shell line of a point (progress, --dry-run, /table/set_args): words a shell would
     * split or expand single-quoted, a ' inside as '\'' (session 30: the table held them
     * unquoted) */
    char *line = sweep_set_args(sw, 0);
    CU_ASSERT_STRING_EQUAL(line,
                           "--set a.lin_s=0.1 --set a.log_per_s=0.001 --set 'a.name=\"fat\"'");
    free(line);
    sweep_free(sw);
    sw = load_text("base: b.yaml\noutput_dir: o\naxes:\n"
                   "  - {key: g.dims, values: [[60, 60, 60]]}\n"
                   "  - {key: n, values: [\"it's\"]}\n");
    CU_ASSERT_FATAL(sw != NULL);
    line = sweep_set_args(sw, 0);
    CU_ASSERT_STRING_EQUAL(line, "--set 'g.dims=[60, 60, 60]' --set 'n=\"it'\\''s\"'");
    free(line);
    sweep_free(sw);

    /* a single-value linspace is its start; a 1-point logspace likewise */
    sw = load_text("base: b.yaml\noutput_dir: o\naxes:\n"
                   "  - {key: x_s, linspace: {from: 0, to: 1, count: 5}}\n");
    CU_ASSERT_FATAL(sw != NULL);
    static const char *const quarters[] = {"x_s=0", "x_s=0.25", "x_s=0.5", "x_s=0.75", "x_s=1"};
    for (size_t p = 0; p < 5; p++)
        CU_ASSERT_STRING_EQUAL(sweep_point_sets(sw, p)[0], quarters[p]);
    sweep_free(sw);
}

static void test_bad_sweep_files(void)
{
    abl_error err;
    CU_ASSERT(strstr(rejected("base: b.yaml\noutput_dir: o\naxes:\n  - {key: a_s, values: [1]}\n"
                              "colour: red\n",
                              &err),
                     "sweep.yaml:5: unknown key 'colour'") != NULL);
    CU_ASSERT(strstr(rejected("base: b.yaml\noutput_dir: o\ncombine: zip\naxes:\n"
                              "  - {key: a_s, values: [1, 2]}\n"
                              "  - {key: b_s, values: [1, 2, 3]}\n",
                              &err),
                     "sweep.yaml:6: combine: zip needs axes of equal length") != NULL);
    CU_ASSERT(strstr(rejected("base: b.yaml\noutput_dir: o\naxes:\n"
                              "  - {key: a_s, values: [1], linspace: {from: 0, to: 1, count: 2}}\n",
                              &err),
                     "needs exactly one of values, linspace or logspace") != NULL);
    CU_ASSERT(strstr(rejected("base: b.yaml\noutput_dir: o\naxes:\n"
                              "  - {key: a_s, logspace: {from: 0, to: 1, count: 2}}\n",
                              &err),
                     "sweep.yaml:4: 'axes[0].logspace.from' = 0 is out of range") != NULL);
    CU_ASSERT(strstr(rejected("base: b.yaml\noutput_dir: o\naxes:\n"
                              "  - {key: a_s, values: [1]}\n  - {key: a_s, values: [2]}\n",
                              &err),
                     "sweep.yaml:5: key 'a_s' is swept twice (also at line 4)") != NULL);
    CU_ASSERT(strstr(rejected("base: b.yaml\noutput_dir: o\nsampling:\n  method: random\n"
                              "  count: 4\n  parameters:\n"
                              "    - {key: a_s, distribution: normal, mean: 1, sigma: 2}\n",
                              &err),
                     "'sigma' belongs to the lognormal distribution") != NULL);
    CU_ASSERT(strstr(rejected("base: b.yaml\noutput_dir: o\n", &err), "nothing to sweep") != NULL);

    /* every map of the sweep file lists its allowed keys, in declaration order */
    static const char *const unknown[][2] = {
        {"base: b.yaml\noutput_dir: o\nfield: true\n",
         "sweep.yaml:3: unknown key 'field'; allowed here: base, output_dir, combine, axes, "
         "sampling, fields, outputs"},
        {"base: b.yaml\noutput_dir: o\naxes:\n  - {key: a_s, value: [1]}\n",
         "sweep.yaml:4: unknown key 'axes[0].value'; allowed here: key, name, values, linspace, "
         "logspace"},
        {"base: b.yaml\noutput_dir: o\naxes:\n"
         "  - {key: a_s, linspace: {from: 0, to: 1, n: 2}}\n",
         "sweep.yaml:4: unknown key 'axes[0].linspace.n'; allowed here: from, to, count"},
        {"base: b.yaml\noutput_dir: o\nsampling:\n  method: random\n  count: 4\n  sed: 2\n",
         "sweep.yaml:6: unknown key 'sampling.sed'; allowed here: method, count, seed, "
         "parameters"},
        {"base: b.yaml\noutput_dir: o\nsampling:\n  method: random\n  count: 4\n  parameters:\n"
         "    - {key: a_s, distribution: normal, mean: 1, sdev: 2}\n",
         "sweep.yaml:7: unknown key 'sampling.parameters[0].sdev'; allowed here: key, name, "
         "distribution, mean, sd, low, high, mu, sigma"},
        {"base: b.yaml\noutput_dir: o\naxes:\n  - {key: a_s, values: [1]}\n"
         "outputs: {threshold_C: 50}\n",
         "sweep.yaml:5: unknown key 'outputs.threshold_C'; allowed here: ablation_threshold_C, "
         "probability_map, per_tissue"},
    };
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        const char *msg = rejected(unknown[i][0], &err);
        CU_ASSERT(strstr(msg, unknown[i][1]) != NULL);
        if (!strstr(msg, unknown[i][1])) fprintf(stderr, "\n  got: %s\n", msg);
    }

    /* a typo in a key is found against the base scenario, at the axis' line */
    char text[2400];
    char out[800];
    snprintf(out, sizeof out, "%s/bad_key_out", tu_tmpdir());
    snprintf(text, sizeof text,
             "base: %s\noutput_dir: %s\naxes:\n"
             "  - {key: time.duration_s, values: [20, 30]}\n"
             "  - {key: sources.0.powr_W, values: [10]}\n",
             demo(), out);
    const char *m = rejected(text, &err);
    CU_ASSERT(strstr(m, "sweep.yaml:5: axis 'sources.0.powr_W' = 10") != NULL);
    CU_ASSERT(strstr(m, "unknown key") != NULL);
    /* and a value out of range at its last value */
    snprintf(text, sizeof text,
             "base: %s\noutput_dir: %s\naxes:\n"
             "  - {key: time.duration_s, values: [20, -5]}\n",
             demo(), out);
    m = rejected(text, &err);
    CU_ASSERT(strstr(m, "sweep.yaml:4: axis 'time.duration_s' = -5 (last value)") != NULL);
    /* a probe or shape that misses the grid is found by planning the first point */
    snprintf(text, sizeof text,
             "base: %s\noutput_dir: %s\naxes:\n"
             "  - {key: grid.dims, values: [[8, 8, 8]]}\n"
             "  - {key: grid.spacing_mm, values: [[2, 2, 2]]}\n",
             demo(), out);
    m = rejected(text, &err);
    CU_ASSERT(strstr(m, "point 0 (first combination of the axes) cannot be planned") != NULL);
    CU_ASSERT(strstr(m, "contains no voxel centre") != NULL);
    /* sweep_run validates before it creates anything */
    snprintf(text, sizeof text,
             "base: %s\noutput_dir: %s\naxes:\n"
             "  - {key: time.duration_s, values: [20, -5]}\n",
             demo(), out);
    abl_sweep *sw = NULL;
    CU_ASSERT_FATAL(sweep_load_string(text, "sweep.yaml", tu_tmpdir(), &sw, &err) == ABL_OK);
    sweep_run_opts opts = {1, 1, NULL, NULL, NULL};
    sweep_summary sum;
    CU_ASSERT_EQUAL(sweep_run(sw, &opts, &sum, &err), ABL_EINVAL);
    sweep_free(sw);
    CU_ASSERT(!tu_exists(out)); /* nothing written for an invalid sweep */
}

/* ---- sampling ----------------------------------------------------------------------------- */

/* The one byte hash (hash.h): FNV-1a 64 against the published test vectors of its authors
 * (Fowler, Noll, Vo: "" -> cbf29ce484222325, "a" -> af63dc4c8601ec8c, "foobar" ->
 * 85944171f73967e8); journal keys and checkpoint digests are these values, so they must not
 * move. A file hashes as its bytes; with the presence mark an empty file, a missing one and no
 * file at all differ. */
static void test_fnv1a(void)
{
    CU_ASSERT_EQUAL(abl_fnv1a(ABL_FNV1A_INIT, "", 0), 0xcbf29ce484222325ULL);
    CU_ASSERT_EQUAL(abl_fnv1a(ABL_FNV1A_INIT, "a", 1), 0xaf63dc4c8601ec8cULL);
    CU_ASSERT_EQUAL(abl_fnv1a(ABL_FNV1A_INIT, "foobar", 6), 0x85944171f73967e8ULL);
    /* pieces chain: "foo" then "bar" is "foobar" */
    CU_ASSERT_EQUAL(abl_fnv1a(abl_fnv1a(ABL_FNV1A_INIT, "foo", 3), "bar", 3),
                    0x85944171f73967e8ULL);
    char path[1100], empty[1100], missing[1100];
    snprintf(path, sizeof path, "%s/fnv_foobar.txt", tu_tmpdir());
    snprintf(empty, sizeof empty, "%s/fnv_empty.txt", tu_tmpdir());
    snprintf(missing, sizeof missing, "%s/fnv_missing.txt", tu_tmpdir());
    tu_spit(path, "foobar");
    tu_spit(empty, "");
    unlink(missing);
    bool opened = false;
    CU_ASSERT_EQUAL(abl_fnv1a_file(ABL_FNV1A_INIT, path, false, &opened), 0x85944171f73967e8ULL);
    CU_ASSERT(opened);
    /* presence byte 1, then the bytes (value computed independently: python FNV-1a of
     * b"\x01foobar") */
    CU_ASSERT_EQUAL(abl_fnv1a_file(ABL_FNV1A_INIT, path, true, NULL), 0x41383400084659c1ULL);
    const uint64_t e = abl_fnv1a_file(ABL_FNV1A_INIT, empty, true, NULL);
    const uint64_t m = abl_fnv1a_file(ABL_FNV1A_INIT, missing, true, &opened);
    CU_ASSERT(!opened);
    CU_ASSERT_EQUAL(e, 0xaf63bc4c8601b62cULL); /* b"\x01" */
    CU_ASSERT_EQUAL(m, 0xaf63bd4c8601b7dfULL); /* b"\x00" */
    /* without the mark a missing file adds nothing */
    CU_ASSERT_EQUAL(abl_fnv1a_file(ABL_FNV1A_INIT, missing, false, NULL), ABL_FNV1A_INIT);
    unlink(path);
    unlink(empty);
}

static void test_norm_inv(void)
{
    /* reference quantiles from Python's statistics.NormalDist (Wichura AS241, ~1e-16);
     * tolerance: the conditioning dx = dp / phi(x) times the double spacing of p */
    CU_ASSERT_DOUBLE_EQUAL(sweep_norm_inv(0.975), 1.9599639845400536, 1e-14);
    CU_ASSERT_DOUBLE_EQUAL(sweep_norm_inv(0.5), 0.0, 1e-16);
    CU_ASSERT_DOUBLE_EQUAL(sweep_norm_inv(1e-10), -6.361340902404056, 1e-13);
    CU_ASSERT_DOUBLE_EQUAL(sweep_norm_inv(0.99999), 4.26489079392384, 1e-11);
    /* round trip through the CDF: lower tail to 1e-13 relative (erfc is accurate there), upper
     * tail to a few ulp of p (p itself carries only absolute precision near 1) */
    double worst_lo = 0, worst_hi = 0;
    for (double q = 1e-12; q < 0.5; q *= 3) {
        double x = sweep_norm_inv(q), lo = 0.5 * erfc(-x / sqrt(2.0));
        worst_lo = fmax(worst_lo, fabs(lo - q) / q);
        double p = 1 - q, y = sweep_norm_inv(p), hi = 0.5 * erfc(-y / sqrt(2.0));
        worst_hi = fmax(worst_hi, fabs(hi - p));
    }
    CU_ASSERT(worst_lo < 1e-13);
    CU_ASSERT(worst_hi < 5e-16);
}

static void test_lhs(void)
{
    const long n = 20;
    const int np = 3;
    double *u = NULL, *u2 = NULL, *u3 = NULL;
    abl_error err = {0};
    CU_ASSERT_FATAL(sweep_unit_samples(SWEEP_SAMPLE_LHS, n, np, 42, &u, &err) == ABL_OK);
    CU_ASSERT_FATAL(sweep_unit_samples(SWEEP_SAMPLE_LHS, n, np, 42, &u2, &err) == ABL_OK);
    CU_ASSERT_FATAL(sweep_unit_samples(SWEEP_SAMPLE_LHS, n, np, 43, &u3, &err) == ABL_OK);
    for (int q = 0; q < np; q++) {
        int hits[20] = {0};
        for (long i = 0; i < n; i++) {
            double v = u[i * np + q];
            CU_ASSERT(v > 0 && v < 1);
            hits[(int)(v * n)]++;
        }
        for (int s = 0; s < n; s++)
            CU_ASSERT_EQUAL(hits[s], 1); /* each stratum exactly once */
    }
    CU_ASSERT(memcmp(u, u2, (size_t)n * np * sizeof *u) == 0); /* same seed, same samples */
    CU_ASSERT(memcmp(u, u3, (size_t)n * np * sizeof *u) != 0);
    free(u);
    free(u2);
    free(u3);

    /* through a sweep file: strata of the actual values, via each distribution's CDF */
    abl_sweep *sw = load_text("base: b.yaml\noutput_dir: o\n"
                              "sampling:\n  method: latin_hypercube\n  count: 10\n  seed: 7\n"
                              "  parameters:\n"
                              "    - {key: p.uni_C, distribution: uniform, low: 60, high: 90}\n"
                              "    - {key: p.norm_s, distribution: normal, mean: 5, sd: 2}\n"
                              "    - {key: p.logn_per_s, distribution: lognormal, mu: -4.6, "
                              "sigma: 0.3}\n");
    CU_ASSERT_FATAL(sw != NULL);
    CU_ASSERT_EQUAL(sw->npoints, 10);
    int hits[3][10] = {{0}};
    for (size_t p = 0; p < sw->npoints; p++) {
        for (int k = 0; k < 3; k++) {
            const char *set = sweep_point_sets(sw, p)[k];
            double v = strtod(strchr(set, '=') + 1, NULL), F;
            if (k == 0)
                F = (v - 60) / 30;
            else if (k == 1)
                F = 0.5 * erfc(-(v - 5) / (2 * sqrt(2.0)));
            else
                F = 0.5 * erfc(-(log(v) + 4.6) / (0.3 * sqrt(2.0)));
            hits[k][(int)(F * 10)]++;
        }
    }
    for (int k = 0; k < 3; k++)
        for (int s = 0; s < 10; s++)
            CU_ASSERT_EQUAL(hits[k][s], 1);
    sweep_free(sw);
}

/* ---- a small serial sweep ----------------------------------------------------------------- */

static const char *tiny_axes = "  - {key: grid.dims, values: [[16, 16, 16]]}\n"
                               "  - {key: grid.spacing_mm, values: [[2, 2, 2]]}\n"
                               "  - {key: time.duration_s, values: [20]}\n"
                               "  - {key: sources.0.shape.radius_mm, values: [2.5]}\n";

/* The sweep file path: base, output_dir out, the axes given and then tiny_axes, then extra. */
static void spit_sweep(const char *path, const char *base, const char *out, const char *axes,
                       const char *extra)
{
    char text[4096];
    snprintf(text, sizeof text, "base: %s\noutput_dir: %s\naxes:\n%s%s%s", base, out, axes,
             tiny_axes, extra);
    tu_spit(path, text);
}

static void test_serial_sweep(void)
{
    char path[800], out[800];
    snprintf(out, sizeof out, "%s/serial_out", tu_tmpdir());
    snprintf(path, sizeof path, "%s/serial.yaml", tu_tmpdir());
    spit_sweep(path, demo(), out,
               "  - {key: sources.0.schedule.1.temperature_C, values: [70, 90]}\n"
               "  - {key: tissues.tumour.perfusion_per_s, values: [0.005, 0.015]}\n",
               "outputs: {probability_map: true}\n");
    abl_sweep *sw = NULL;
    abl_error err = {0};
    CU_ASSERT_FATAL(sweep_load(path, &sw, &err) == ABL_OK);
    sweep_run_opts opts = {1, 1, NULL, NULL, NULL};
    sweep_summary sum;
    abl_status st = sweep_run(sw, &opts, &sum, &err);
    if (st) fprintf(stderr, "\nsweep error: %s\n", err.msg);
    CU_ASSERT_FATAL(st == ABL_OK);
    CU_ASSERT_EQUAL(sum.npoints, 4);
    CU_ASSERT_EQUAL(sum.nok, 4);
    CU_ASSERT_EQUAL(sum.nrun, 4);
    CU_ASSERT(sum.prob_map_written);
    char *csv = tu_slurp(sum.csv_path);
    CU_ASSERT_FATAL(csv != NULL);
    CU_ASSERT_EQUAL(count_lines(csv), 5);
    CU_ASSERT(strncmp(csv,
                      "point,sources.0.schedule.1.temperature_C,tissues.tumour.perfusion_per_s",
                      70) == 0);

    /* point 3 by hand, exactly as `ablasim run --set ...` would: the row must match to the
     * last bit (same code, and threads never change results) */
    abl_scenario *sc = NULL;
    abl_sim *sim = NULL;
    CU_ASSERT_FATAL(scenario_load(demo(), sweep_point_sets(sw, 3), sw->nkeys, &sc, &err) == 0);
    CU_ASSERT_FATAL(sim_create(sc, &sim, &err) == ABL_OK);
    abl_run_opts ro = {0};
    ro.no_output = true;
    CU_ASSERT_FATAL(sim_run(sim, &ro, &err) == ABL_OK);
    double hot[ABL_MAX_THRESHOLDS], cold[ABL_MAX_THRESHOLDS];
    const abl_sim_view v = sim_view(sim);
    isotherm_volumes(&v, hot, NULL, cold, NULL);
    double tmax_tumour = -INFINITY;
    int tum = tissue_table_find(&sc->tissues, "tumour");
    for (size_t v = 0; v < sim->grid.n; v++)
        if (sim->mat_tissue[sim->material[v]] == tum && sim->T_max[v] > tmax_tumour)
            tmax_tumour = sim->T_max[v];
    CU_ASSERT_EQUAL(csv_value(csv, "V_Tmax_ge_55C_mL", 3), hot[1]);
    CU_ASSERT_EQUAL(csv_value(csv, "V_Tmax_ge_50C_mL", 3), hot[0]);
    CU_ASSERT_EQUAL(csv_value(csv, "T_max_tumour_C", 3), tmax_tumour);
    CU_ASSERT_EQUAL(csv_value(csv, "dt_s", 3), sim->dt_s);
    CU_ASSERT_EQUAL(csv_value(csv, "steps", 3), (double)sim->step);
    /* a hotter electrode never shrinks the 50 C zone (same perfusion) */
    CU_ASSERT(csv_value(csv, "V_Tmax_ge_50C_mL", 2) >= csv_value(csv, "V_Tmax_ge_50C_mL", 0));
    CU_ASSERT(csv_value(csv, "T_max_tumour_C", 2) > csv_value(csv, "T_max_tumour_C", 0));

    /* the HDF5 table holds the same numbers */
    hid_t f = H5Fopen(sum.h5_path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CU_ASSERT_FATAL(f >= 0);
    double col[4];
    hid_t d = H5Dopen2(f, "/table/V_Tmax_ge_55C_mL", H5P_DEFAULT);
    CU_ASSERT_FATAL(d >= 0);
    CU_ASSERT(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, col) >= 0);
    H5Dclose(d);
    for (int p = 0; p < 4; p++)
        CU_ASSERT_EQUAL(col[p], csv_value(csv, "V_Tmax_ge_55C_mL", p));

    /* probability map: sum_v P_v dV = mean over points of V(T_max >= 55 C), since both count
     * the same voxels (relative 1e-12 covers the float sum of 4096 fractions) */
    const size_t nvox = 16 * 16 * 16;
    double *P = malloc(nvox * sizeof *P);
    d = H5Dopen2(f, "/uncertainty/probability_ablation", H5P_DEFAULT);
    CU_ASSERT_FATAL(d >= 0 && P != NULL);
    CU_ASSERT(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, P) >= 0);
    H5Dclose(d);
    H5Fclose(f);
    double sumP = 0, meanV = 0;
    for (size_t v = 0; v < nvox; v++)
        sumP += P[v];
    for (int p = 0; p < 4; p++)
        meanV += csv_value(csv, "V_Tmax_ge_55C_mL", p) / 4;
    const double dV_mL = 8e-3; /* 2 mm voxels */
    CU_ASSERT(meanV > 0);
    CU_ASSERT_DOUBLE_EQUAL(sumP * dV_mL, meanV, 1e-12 * meanV);
    /* electrode voxel: ablated in every point; a corner: never */
    CU_ASSERT_EQUAL(P[ABL_IDX(&sim->grid, 8, 8, 8)], 1.0);
    CU_ASSERT_EQUAL(P[0], 0.0);
    free(P);
    sim_destroy(sim);
    scenario_free(sc);

    /* running it again finds every point in the journal and writes the same table */
    CU_ASSERT_FATAL(sweep_run(sw, &opts, &sum, &err) == ABL_OK);
    CU_ASSERT_EQUAL(sum.nresumed, 4);
    CU_ASSERT_EQUAL(sum.nrun, 0);
    char *csv2 = tu_slurp(sum.csv_path);
    char *a = table_without_wall(csv), *b = table_without_wall(csv2);
    CU_ASSERT_STRING_EQUAL(a, b);
    free(a);
    free(b);
    free(csv2);
    free(csv);
    sweep_free(sw);
}

/* A point that fails is a row with its status, not the end of the sweep; it is not retried
 * (bad input stays bad), and the exit status reports it. */
static void test_failed_point_is_a_row(void)
{
    char path[800], out[800];
    snprintf(out, sizeof out, "%s/fail_out", tu_tmpdir());
    snprintf(path, sizeof path, "%s/fail.yaml", tu_tmpdir());
    spit_sweep(path, demo(), out, "  - {key: sources.0.on_s, values: [0, 500, 5]}\n", "");
    abl_sweep *sw = NULL;
    abl_error err = {0};
    sweep_run_opts opts = {1, 1, NULL, NULL, NULL};
    sweep_summary sum;
    CU_ASSERT_FATAL(sweep_load(path, &sw, &err) == ABL_OK);
    /* on_s = 500 is after off_s = 360: only the middle point is invalid, so validation (first
     * and last values) passes and the point fails when it runs */
    CU_ASSERT_FATAL(sweep_run(sw, &opts, &sum, &err) == ABL_OK);
    CU_ASSERT_EQUAL(sum.nok, 2);
    CU_ASSERT_EQUAL(sum.nfailed, 1);
    CU_ASSERT_EQUAL(sum.first_failure, ABL_EINVAL);
    CU_ASSERT_EQUAL(sum.first_failure_index, 1);
    char *csv = tu_slurp(sum.csv_path);
    CU_ASSERT_FATAL(csv != NULL);
    CU_ASSERT(strstr(csv, "\n1,500,") != NULL && strstr(csv, ",invalid_input,") != NULL);
    CU_ASSERT(isnan(csv_value(csv, "V_Tmax_ge_55C_mL", 1))); /* empty: not computed */
    CU_ASSERT(csv_value(csv, "V_Tmax_ge_55C_mL", 2) > 0);
    CU_ASSERT(csv_value(csv, "wall_time_s", 1) >= 0); /* still timed */
    free(csv);
    CU_ASSERT_FATAL(sweep_run(sw, &opts, &sum, &err) == ABL_OK);
    CU_ASSERT_EQUAL(sum.nrun, 0);
    CU_ASSERT_EQUAL(sum.nfailed, 1);
    sweep_free(sw);
}

/* Load the sweep file at path (which must succeed) and run it with opts (NULL: serially, one
 * thread); the run's status, the summary in *sum, a failure's message in *err. */
static abl_status run_sweep_status(const char *path, const sweep_run_opts *opts,
                                   sweep_summary *sum, abl_error *err)
{
    const sweep_run_opts serial = {1, 1, NULL, NULL, NULL};
    abl_sweep *sw = NULL;
    CU_ASSERT_FATAL(sweep_load(path, &sw, err) == ABL_OK);
    abl_status st = sweep_run(sw, opts ? opts : &serial, sum, err);
    sweep_free(sw);
    return st;
}

/* The same, and the run must succeed. */
static void run_sweep_file(const char *path, const sweep_run_opts *opts, sweep_summary *sum)
{
    abl_error err = {0};
    abl_status st = run_sweep_status(path, opts, sum, &err);
    if (st) fprintf(stderr, "\n  sweep error: %s\n", err.msg);
    CU_ASSERT_FATAL(st == ABL_OK);
}

/* The journal is the sweep's own file (session 30: an empty file elsewhere, linked in as
 * journal.txt by a symbolic or a hard link, received the journal, exit 0): both are refused
 * before anything is written, the other file stays empty. */
static void test_journal_not_a_link(void)
{
    char base[800], path[800], out[800], jpath[900], victim[800], cmd[4000];
    snprintf(base, sizeof base, "%s/jl_base.yaml", tu_tmpdir());
    demo_copy(base, NULL);
    snprintf(victim, sizeof victim, "%s/jl_victim.txt", tu_tmpdir());
    for (int hard = 0; hard < 2; hard++) {
        snprintf(out, sizeof out, "%s/jl_out%d", tu_tmpdir(), hard);
        snprintf(path, sizeof path, "%s/jl%d.yaml", tu_tmpdir(), hard);
        snprintf(jpath, sizeof jpath, "%s/journal.txt", out);
        snprintf(cmd, sizeof cmd, ": > '%s' && mkdir -p '%s' && ln %s '%s' '%s'", victim, out,
                 hard ? "" : "-s", victim, jpath);
        CU_ASSERT_FATAL(tu_sh(cmd) == 0);
        spit_sweep(path, base, out, "  - {key: sources.0.schedule.1.temperature_C, values: [80]}\n",
                   "");
        abl_error err = {0};
        sweep_summary sum;
        CU_ASSERT_EQUAL(run_sweep_status(path, NULL, &sum, &err), ABL_EIO);
        CU_ASSERT(strstr(err.msg, hard ? "a second name (hard link)" : "is a symbolic link") !=
                  NULL);
        struct stat sb;
        CU_ASSERT(stat(victim, &sb) == 0 && sb.st_size == 0);
    }
}

static void test_journal_refuses_other_sweep(void)
{
    char base[800], path[800], out[800], jpath[900];
    snprintf(base, sizeof base, "%s/fp_base.yaml", tu_tmpdir());
    demo_copy(base, NULL); /* a copy of the demo whose tissue table path still resolves */
    snprintf(out, sizeof out, "%s/fp_out", tu_tmpdir());
    snprintf(path, sizeof path, "%s/fp.yaml", tu_tmpdir());
    spit_sweep(path, base, out, "  - {key: sources.0.schedule.1.temperature_C, values: [80]}\n",
               "");
    abl_sweep *sw = NULL;
    abl_error err = {0};
    sweep_run_opts opts = {1, 1, NULL, NULL, NULL};
    sweep_summary sum;
    CU_ASSERT_FATAL(sweep_load(path, &sw, &err) == ABL_OK);
    CU_ASSERT_FATAL(sweep_run(sw, &opts, &sum, &err) == ABL_OK);
    sweep_free(sw);
    snprintf(jpath, sizeof jpath, "%s/journal.txt", out);
    char *before = tu_slurp(jpath);

    /* the base scenario changes: the recorded results no longer apply */
    FILE *f = fopen(base, "a");
    CU_ASSERT_FATAL(f != NULL);
    fputs("# edited\n", f);
    fclose(f);
    CU_ASSERT_FATAL(sweep_load(path, &sw, &err) == ABL_OK);
    CU_ASSERT_EQUAL(sweep_run(sw, &opts, &sum, &err), ABL_EINVAL);
    CU_ASSERT(strstr(err.msg, "was written for a different sweep") != NULL);
    char *after = tu_slurp(jpath);
    CU_ASSERT(before && after && !strcmp(before, after)); /* untouched */
    sweep_free(sw);
    free(before);
    free(after);

    /* a file the base scenario reads changes: here its initial temperature field, rewritten
     * with other values under the same name between a sweep and its re-run (the table mixed
     * the two fields; found by an adversarial review, session 23) */
    char base2[800], out2[800], path2[800], field[800];
    snprintf(base2, sizeof base2, "%s/fp_base2.yaml", tu_tmpdir());
    snprintf(out2, sizeof out2, "%s/fp_out2", tu_tmpdir());
    snprintf(path2, sizeof path2, "%s/fp2.yaml", tu_tmpdir());
    snprintf(field, sizeof field, "%s/fp_init.h5", tu_tmpdir());
    static double v[16 * 16 * 16];
    abl_field_file ff = {.dims = {16, 16, 16},
                         .spacing_mm = {2, 2, 2},
                         .origin_mm = {-15, -15, -15},
                         .values = v};
    for (int c = 0; c < 16 * 16 * 16; c++) v[c] = 37.0;
    CU_ASSERT_FATAL(mesh_write_field(field, "/T0_C", &ff, "degC", &err) == ABL_OK);
    demo_copy(base2, NULL);
    FILE *fb = fopen(base2, "a");
    CU_ASSERT_FATAL(fb != NULL);
    fprintf(fb, "\n# the sweep's points start from a field\n");
    fclose(fb);
    char *bt = tu_slurp(base2);
    CU_ASSERT_FATAL(bt != NULL);
    char *ph = strstr(bt, "physics:\n");
    CU_ASSERT_FATAL(ph != NULL);
    char nb[20000];
    snprintf(nb, sizeof nb, "%.*sphysics:\n  initial_temperature_file: %s\n"
             "  initial_temperature_dataset: /T0_C\n%s",
             (int)(ph - bt), bt, field, ph + strlen("physics:\n"));
    free(bt);
    tu_spit(base2, nb);
    spit_sweep(path2, base2, out2, "  - {key: sources.0.schedule.1.temperature_C, values: [80]}\n",
               "");
    CU_ASSERT_FATAL(sweep_load(path2, &sw, &err) == ABL_OK);
    const abl_status st1 = sweep_run(sw, &opts, &sum, &err);
    if (st1) printf("\n  sweep from a field: %s", err.msg);
    CU_ASSERT_FATAL(st1 == ABL_OK);
    CU_ASSERT_EQUAL(sum.nfailed, 0);
    sweep_free(sw);
    snprintf(jpath, sizeof jpath, "%s/journal.txt", out2);
    before = tu_slurp(jpath);
    v[0] = 20.0;
    CU_ASSERT_FATAL(mesh_write_field(field, "/T0_C", &ff, "degC", &err) == ABL_OK);
    CU_ASSERT_FATAL(sweep_load(path2, &sw, &err) == ABL_OK);
    CU_ASSERT_EQUAL(sweep_run(sw, &opts, &sum, &err), ABL_EINVAL);
    CU_ASSERT(strstr(err.msg, "was written for a different sweep") != NULL);
    after = tu_slurp(jpath);
    CU_ASSERT(before && after && !strcmp(before, after));
    sweep_free(sw);
    free(before);
    free(after);
}

/* A point's result file (fields: true) is written under its lock, as a run's is, so a margin
 * of that file completes an interrupted commit only under the same lock (found by review,
 * session 23). With the lock of point 0's file held elsewhere, point 0 is a failed row (I/O,
 * naming the file and the holder) and the sweep goes on with point 1 (session 26: it used to
 * stop the whole sweep); point 0's result is not written. Released, the next run of the sweep
 * runs point 0 alone (an I/O failure is retried) and writes it. */
static void test_point_result_locked(void)
{
    char path[800], out[800], pdir[900], fp[1000], fp1[1000];
    snprintf(out, sizeof out, "%s/plock_out", tu_tmpdir());
    snprintf(path, sizeof path, "%s/plock.yaml", tu_tmpdir());
    snprintf(pdir, sizeof pdir, "%s/points", out);
    snprintf(fp, sizeof fp, "%s/point_0000000.h5", pdir);
    snprintf(fp1, sizeof fp1, "%s/point_0000001.h5", pdir);
    spit_sweep(path, demo(), out,
               "  - {key: sources.0.schedule.1.temperature_C, values: [80, 85]}\n",
               "fields: true\n");
    CU_ASSERT_FATAL(mkdir(out, 0755) == 0 && mkdir(pdir, 0755) == 0);
    abl_lock *lk = NULL;
    abl_error err = {0};
    CU_ASSERT_FATAL(fg_lock(fp, &lk, &err) == ABL_OK);
    sweep_summary sum;
    run_sweep_file(path, NULL, &sum);
    CU_ASSERT_EQUAL(sum.nok, 1);
    CU_ASSERT_EQUAL(sum.nfailed, 1);
    CU_ASSERT_EQUAL(sum.first_failure, ABL_EIO);
    CU_ASSERT_EQUAL(sum.first_failure_index, 0);
    char *csv = tu_slurp(sum.csv_path);
    printf("\n  point result locked elsewhere: %s",
           csv && strstr(csv, "another ablasim") ? "a failed row naming the holder" : "?");
    CU_ASSERT(csv && strstr(csv, "io_error") && strstr(csv, "another ablasim process is writing") &&
              strstr(csv, "point_0000000.h5"));
    free(csv);
    CU_ASSERT(!tu_lexists(fp) && tu_lexists(fp1));
    fg_unlock(lk);
    run_sweep_file(path, NULL, &sum);
    CU_ASSERT_EQUAL(sum.nrun, 1);
    CU_ASSERT_EQUAL(sum.nok, 2);
    CU_ASSERT(tu_lexists(fp));
}

/* A point that runs and fails leaves no result under its name (QA, session 29). A sweep of two
 * points with fields writes point_0000000/1.{h5,json,xdmf}; the sweep file then gets a third
 * value, invalid, in the middle, so index 1 is a new point (another hash) that fails. Its
 * row says invalid_input; before the fix the 85 C point's complete files stayed as
 * point_0000001.*, a result the table says does not exist. Now they are gone, and points 0 and
 * 2 have theirs. */
static void test_failed_point_leaves_no_result(void)
{
    char path[800], out[800], fp[1000];
    snprintf(out, sizeof out, "%s/stale_out", tu_tmpdir());
    snprintf(path, sizeof path, "%s/stale.yaml", tu_tmpdir());
    spit_sweep(path, demo(), out,
               "  - {key: sources.0.schedule.1.temperature_C, values: [80, 85]}\n",
               "fields: true\n");
    sweep_summary sum;
    run_sweep_file(path, NULL, &sum);
    CU_ASSERT_EQUAL(sum.nok, 2);
    static const char *const ext[] = {".h5", ".json", ".xdmf"};
    for (int k = 0; k < 3; k++) {
        snprintf(fp, sizeof fp, "%s/points/point_0000001%s", out, ext[k]);
        CU_ASSERT(tu_lexists(fp));
    }
    spit_sweep(path, demo(), out,
               "  - {key: sources.0.schedule.1.temperature_C, values: [80, 5000, 85]}\n",
               "fields: true\n");
    abl_sweep *sw = NULL;
    abl_error err = {0};
    const sweep_run_opts serial = {1, 1, NULL, NULL, NULL};
    CU_ASSERT_FATAL(sweep_load(path, &sw, &err) == ABL_OK);
    CU_ASSERT_FATAL(sweep_run(sw, &serial, &sum, &err) == ABL_OK);
    sweep_free(sw);
    CU_ASSERT_EQUAL(sum.nok, 2);
    CU_ASSERT_EQUAL(sum.nfailed, 1);
    CU_ASSERT_EQUAL(sum.first_failure_index, 1);
    int left = 0;
    for (int k = 0; k < 3; k++) {
        snprintf(fp, sizeof fp, "%s/points/point_0000001%s", out, ext[k]);
        left += tu_lexists(fp);
        snprintf(fp, sizeof fp, "%s/points/point_0000000%s", out, ext[k]);
        CU_ASSERT(tu_lexists(fp));
        snprintf(fp, sizeof fp, "%s/points/point_0000002%s", out, ext[k]);
        CU_ASSERT(tu_lexists(fp));
    }
    printf("\n  failed point: %d of its 3 earlier result files left", left);
    CU_ASSERT_EQUAL(left, 0);
}

/* The sweep's margin_min_mm is `ablasim margin`'s with its defaults, the needle track
 * included (a review, session 29: the sweep counted a cooled RFA needle's track, held at
 * 10-40 C inside the tumour, as residual tumour; margin counts it as ablated). A 60 s cooled RFA
 * run on a 2 mm grid, a 6 mm tumour around the needle: the point's margin_min_mm equals the
 * minimal margin `ablasim margin` gives for the point's result file (4.47 mm; a negative margin
 * with the track as residual tumour). */
static void test_margin_column_equals_margin(void)
{
    char path[800], out[800], text[2400], cmd[2400], errf[900], mj[900];
    snprintf(out, sizeof out, "%s/smargin_out", tu_tmpdir());
    snprintf(path, sizeof path, "%s/smargin.yaml", tu_tmpdir());
    snprintf(errf, sizeof errf, "%s/smargin.err", tu_tmpdir());
    snprintf(text, sizeof text,
             "base: %s/configs/rfa_liver_cooled.yaml\noutput_dir: %s\nfields: true\naxes:\n"
             "  - {key: time.duration_s, values: [60]}\n"
             "  - {key: grid.spacing_mm, values: [[2, 2, 2]]}\n"
             "  - {key: grid.dims, values: [[30, 30, 40]]}\n"
             "  - {key: output.snapshot_interval_s, values: [0]}\n"
             "  - {key: grid.shapes, values: [[{type: sphere, center_mm: [0, 0, -5], "
             "radius_mm: 6, tissue: tumour}]]}\n",
             tu_root(), out);
    tu_spit(path, text);
    sweep_summary sum;
    run_sweep_file(path, NULL, &sum);
    CU_ASSERT_FATAL(sum.nok == 1);
    char *csv = tu_slurp(sum.csv_path);
    CU_ASSERT_FATAL(csv != NULL);
    const double sweep_mm = csv_value(csv, "margin_min_mm", 0);
    free(csv);
    snprintf(cmd, sizeof cmd, "'%s' margin '%s/points/point_0000000.h5' -q", tu_bin(), out);
    CU_ASSERT_FATAL(tu_run(cmd, NULL, errf) == 0);
    snprintf(mj, sizeof mj, "%s/points/point_0000000.margin.json", out);
    char *js = tu_slurp(mj);
    CU_ASSERT_FATAL(js != NULL);
    const char *k = strstr(js, "\"minimal_margin_mm\": ");
    CU_ASSERT_FATAL(k != NULL);
    const double margin_mm = strtod(k + strlen("\"minimal_margin_mm\": "), NULL);
    free(js);
    printf("\n  sweep margin_min_mm %.6f mm, ablasim margin %.6f mm", sweep_mm, margin_mm);
    CU_ASSERT(fabs(sweep_mm - margin_mm) <= 1e-9);
    CU_ASSERT(sweep_mm > 0.0);
}

/* ---- kill -9, resume, MPI ----------------------------------------------------------------- */

/* 12 Latin-hypercube points of ~0.1 s each on one thread. */
static void write_uq_sweep(const char *path, const char *out)
{
    char text[2000];
    snprintf(text, sizeof text,
             "base: %s\noutput_dir: %s\n"
             "axes:\n"
             "  - {key: grid.dims, values: [[40, 40, 40]]}\n"
             "  - {key: time.duration_s, values: [240]}\n"
             "  - {key: output.snapshot_interval_s, values: [0]}\n"
             "sampling:\n"
             "  method: latin_hypercube\n  count: 12\n  seed: 2024\n"
             "  parameters:\n"
             "    - {key: sources.0.schedule.1.temperature_C, distribution: uniform, low: 60, "
             "high: 95}\n"
             "    - {key: tissues.tumour.perfusion_per_s, distribution: lognormal, mu: -4.6, "
             "sigma: 0.3}\n",
             demo(), out);
    tu_spit(path, text);
}

static char *ref_table; /* the uninterrupted serial table, shared by the resume and MPI tests */
static char ref_dir[800];

static void make_reference(void)
{
    if (ref_table) return;
    char path[800];
    snprintf(ref_dir, sizeof ref_dir, "%s/uq_ref", tu_tmpdir());
    snprintf(path, sizeof path, "%s/uq_ref.yaml", tu_tmpdir());
    write_uq_sweep(path, ref_dir);
    abl_sweep *sw = NULL;
    abl_error err = {0};
    sweep_run_opts opts = {1, 1, NULL, NULL, NULL};
    sweep_summary sum;
    CU_ASSERT_FATAL(sweep_load(path, &sw, &err) == ABL_OK);
    abl_status st = sweep_run(sw, &opts, &sum, &err);
    if (st) fprintf(stderr, "\nsweep error: %s\n", err.msg);
    CU_ASSERT_FATAL(st == ABL_OK);
    CU_ASSERT_EQUAL(sum.nok, 12);
    CU_ASSERT(sum.prob_map_written);
    ref_table = tu_slurp(sum.csv_path);
    sweep_free(sw);
}

/* Same ablation counts in two results files (integer map: must be identical). */
static void assert_same_counts(const char *dir_a, const char *dir_b)
{
    const size_t n = 40 * 40 * 40;
    unsigned *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    const char *dirs[2] = {dir_a, dir_b};
    unsigned *bufs[2] = {a, b};
    for (int i = 0; i < 2; i++) {
        char p[900];
        snprintf(p, sizeof p, "%s/results.h5", dirs[i]);
        hid_t f = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT);
        CU_ASSERT_FATAL(f >= 0);
        hid_t d = H5Dopen2(f, "/uncertainty/ablation_count", H5P_DEFAULT);
        CU_ASSERT_FATAL(d >= 0);
        CU_ASSERT(H5Dread(d, H5T_NATIVE_UINT, H5S_ALL, H5S_ALL, H5P_DEFAULT, bufs[i]) >= 0);
        H5Dclose(d);
        H5Fclose(f);
    }
    unsigned maxc = 0;
    for (size_t v = 0; v < n; v++)
        maxc = a[v] > maxc ? a[v] : maxc;
    CU_ASSERT_EQUAL(maxc, 12); /* the electrode is ablated in every point */
    CU_ASSERT(memcmp(a, b, n * sizeof *a) == 0);
    free(a);
    free(b);
}

/* out/results.csv and out/results.h5's ablation counts equal the uninterrupted serial
 * reference's: every point, every column but wall time (13 lines: header and 12 points). */
static void assert_reference_table(const char *out)
{
    char csvp[900];
    snprintf(csvp, sizeof csvp, "%s/results.csv", out);
    char *csv = tu_slurp(csvp);
    CU_ASSERT_FATAL(csv != NULL && ref_table != NULL);
    char *a = table_without_wall(ref_table), *b = table_without_wall(csv);
    CU_ASSERT_STRING_EQUAL(a, b);
    CU_ASSERT_EQUAL(count_lines(b), 13);
    assert_same_counts(ref_dir, out);
    free(a);
    free(b);
    free(csv);
}


static void test_kill_and_resume(void)
{
    make_reference();
    char path[800], out[800], jpath[900];
    snprintf(out, sizeof out, "%s/uq_kill", tu_tmpdir());
    snprintf(path, sizeof path, "%s/uq_kill.yaml", tu_tmpdir());
    snprintf(jpath, sizeof jpath, "%s/journal.txt", out);
    write_uq_sweep(path, out);

    /* run with 2 jobs and kill -9 as soon as the first point is in the journal */
    pid_t pid = tu_spawn(
        (const char *const[]){"ablasim", "sweep", path, "--jobs", "2", "--threads", "2", NULL});
    CU_ASSERT_FATAL(pid >= 0);
    int entries = 0;
    for (int i = 0; i < 120000 && entries < 1; i++) {    /* at most ~120 s (ASan, loaded CI) */
        nanosleep(&(struct timespec){0, 1000000}, NULL); /* 1 ms */
        entries = journal_entries(out);
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            pid = -1;
            break;
        }
    }
    if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    int at_kill = journal_entries(out);
    if (!(at_kill >= 1 && at_kill < 12))
        fprintf(stderr,
                "\n  kill test: %d of 12 points in the journal when killed (need 1..11); "
                "the sweep finished before it could be interrupted\n",
                at_kill);
    CU_ASSERT_FATAL(at_kill >= 1 && at_kill < 12);

    /* a torn last line, as a crash in the middle of an append would leave */
    FILE *f = fopen(jpath, "a");
    CU_ASSERT_FATAL(f != NULL);
    fputs("7 00c0ffee 0 1.5 2", f);
    fclose(f);

    char cmd[2000];
    snprintf(cmd, sizeof cmd, "'%s' sweep '%s' --quiet --threads 1 >/dev/null 2>&1", tu_bin(),
             path);
    CU_ASSERT_EQUAL(system(cmd), 0);
    /* only the missing points ran: one line per point, the torn one cut off */
    CU_ASSERT_EQUAL(journal_entries(out), 12);
    char *j = tu_slurp(jpath);
    CU_ASSERT(j && j[strlen(j) - 1] == '\n' && !strstr(j, "00c0ffee"));
    free(j);

    assert_reference_table(out);
}

static void test_mpi_equals_serial(void)
{
    const char *mpi_bin = getenv("ABLASIM_MPI_BIN");
    if (!mpi_bin || !*mpi_bin || access(mpi_bin, X_OK) != 0) {
        fprintf(stderr,
                "\n  MPI test: no MPI build of ablasim (ABLASIM_MPI_BIN = %s). Install "
                "Open MPI (scripts/install-deps.sh: libopenmpi-dev openmpi-bin) and run "
                "make check, which builds build/mpi/bin/ablasim with mpicc\n",
                mpi_bin ? mpi_bin : "(unset)");
        CU_FAIL("MPI build of ablasim missing: the sweep's MPI path is untested");
        return;
    }
    make_reference();
    char path[800], out[800], cmd[2400];
    snprintf(out, sizeof out, "%s/uq_mpi", tu_tmpdir());
    snprintf(path, sizeof path, "%s/uq_mpi.yaml", tu_tmpdir());
    write_uq_sweep(path, out);
    snprintf(cmd, sizeof cmd,
             "OMP_NUM_THREADS=1 mpirun --allow-run-as-root --oversubscribe -np 2 '%s' sweep '%s' "
             "--quiet > '%s/mpi_log.txt' 2>&1",
             mpi_bin, path, tu_tmpdir());
    int rc = system(cmd);
    if (rc != 0) {
        char log[900];
        snprintf(log, sizeof log, "%s/mpi_log.txt", tu_tmpdir());
        char *l = tu_slurp(log);
        fprintf(stderr, "\n  mpirun failed (%d):\n%s\n", rc, l ? l : "");
        free(l);
    }
    CU_ASSERT_FATAL(rc == 0);
    assert_reference_table(out); /* every point, every column but wall time */
}

static void test_cli_dry_run(void)
{
    char path[800], out[800], cmd[2400], res[900];
    snprintf(out, sizeof out, "%s/dry_out", tu_tmpdir());
    snprintf(path, sizeof path, "%s/dry.yaml", tu_tmpdir());
    spit_sweep(path, demo(), out,
               "  - {key: sources.0.schedule.1.temperature_C, values: [70, 80, 90]}\n", "");
    snprintf(res, sizeof res, "%s/dry_stdout.txt", tu_tmpdir());
    snprintf(cmd, sizeof cmd, "'%s' sweep '%s' --dry-run > '%s' 2>&1", tu_bin(), path, res);
    CU_ASSERT_EQUAL(system(cmd), 0);
    char *s = tu_slurp(res);
    CU_ASSERT(s && strstr(s, "point 2: --set sources.0.schedule.1.temperature_C=90 --set "
                             "'grid.dims=[16, 16, 16]' --set 'grid.spacing_mm=[2, 2, 2]' --set "
                             "time.duration_s=20 --set sources.0.shape.radius_mm=2.5\n"));
    CU_ASSERT(!tu_exists(out)); /* a dry run writes nothing */
    free(s);
    /* usage errors exit 1; an invalid sweep exits 2 */
    snprintf(cmd, sizeof cmd, "'%s' sweep '%s' --jobs 0 >/dev/null 2>&1", tu_bin(), path);
    int rc = system(cmd);
    CU_ASSERT(WIFEXITED(rc) && WEXITSTATUS(rc) == 1);
    tu_spit(path, "base: nowhere.yaml\noutput_dir: x\naxes:\n  - {key: a_s, values: [1]}\n");
    snprintf(cmd, sizeof cmd, "'%s' sweep '%s' >/dev/null 2>&1", tu_bin(), path);
    rc = system(cmd);
    CU_ASSERT(WIFEXITED(rc) && WEXITSTATUS(rc) == 3); /* base scenario missing: I/O */
}


/* ---- data safety (issue 14) ---------------------------------------------------------------- */

/* Every file of a directory (not recursive), sorted by name, as one text: name, size and a
 * hash of the bytes per line; two snapshots are equal iff no file was added, removed or
 * changed (FNV-1a 64 of the bytes: a change that keeps it is a 2^-64 event). */
static char *dir_snapshot(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return NULL;
    char *names[256];
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < 256)
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) names[n++] = strdup(de->d_name);
    closedir(d);
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char *t = names[j];
            names[j] = names[j - 1];
            names[j - 1] = t;
        }
    size_t cap = 64 + (size_t)n * 400, at = 0;
    char *snap = malloc(cap);
    snap[0] = '\0';
    for (int i = 0; i < n; i++) {
        char p[1200];
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        size_t len = 0;
        unsigned char *b = tu_file_bytes(p, &len);
        unsigned long long h = 0xcbf29ce484222325ULL;
        for (size_t k = 0; b && k < len; k++)
            h = (h ^ b[k]) * 0x100000001b3ULL;
        free(b);
        at += (size_t)snprintf(snap + at, cap - at, "%.300s %zu %016llx\n", names[i], len, h);
        free(names[i]);
    }
    return snap;
}

/* `ablasim sweep` on a sweep file: exit status, stderr to errfile. */
static int sweep_cli(const char *path, const char *errfile)
{
    char cmd[3000];
    snprintf(cmd, sizeof cmd, "timeout 60 '%s' sweep '%s' --threads 1 -q", tu_bin(), path);
    return tu_run(cmd, NULL, errfile);
}

/* One refused sweep: exit code, message fragments, every input byte for byte as before and
 * no journal created. */
static void expect_sweep_refused(const char *sweep_path, int rc_want, const char *frag1,
                                 const char *frag2, const char *const *inputs, int ninputs,
                                 const char *out_dir)
{
    char errf[800], jpath[900];
    snprintf(errf, sizeof errf, "%s/guard_sweep.err", tu_tmpdir());
    snprintf(jpath, sizeof jpath, "%s/journal.txt", out_dir);
    unsigned char *before[4];
    size_t n[4];
    for (int i = 0; i < ninputs; i++)
        before[i] = tu_file_bytes(inputs[i], &n[i]);
    int rc = sweep_cli(sweep_path, errf);
    char *e = tu_slurp(errf);
    bool ok = rc == rc_want && e && strstr(e, frag1) && (!frag2 || strstr(e, frag2));
    if (!ok)
        fprintf(stderr, "\n  FAIL sweep %s: exit %d (expected %d), stderr: %s", sweep_path, rc,
                rc_want, e ? e : "");
    CU_ASSERT(ok);
    free(e);
    for (int i = 0; i < ninputs; i++) {
        CU_ASSERT(tu_bytes_unchanged(inputs[i], before[i], n[i]));
        free(before[i]);
    }
    CU_ASSERT(!tu_exists(jpath));
}

/* Inputs that are files of output_dir: the sweep file as results.csv, the base scenario as
 * journal.txt, the tissue table as results.h5, the base scenario as a per-point JSON summary
 * (fields: true); a FIFO as sweep file. Each refused before anything is created, inputs
 * untouched. */
static void test_outputs_never_inputs(void)
{
    const char *tmp = tu_tmpdir();
    char out[800], sweep[900], base[1000], tis[900], pts[900];
    snprintf(out, sizeof out, "%s/guard_out", tmp);
    CU_ASSERT_FATAL(mkdir(out, 0700) == 0);
    snprintf(pts, sizeof pts, "%s/points", out);
    CU_ASSERT_FATAL(mkdir(pts, 0700) == 0);
    char clean_base[900];
    snprintf(clean_base, sizeof clean_base, "%s/guard_base.yaml", tmp);
    demo_copy(clean_base, NULL);

    /* the sweep file is output_dir/results.csv */
    snprintf(sweep, sizeof sweep, "%s/results.csv", out);
    spit_sweep(sweep, clean_base, out, "", "");
    const char *in1[2] = {sweep, clean_base};
    expect_sweep_refused(sweep, 2, "results table", "is the sweep file", in1, 2, out);
    unlink(sweep);

    /* the base scenario is output_dir/journal.txt */
    snprintf(base, sizeof base, "%s/journal.txt", out);
    demo_copy(base, NULL);
    snprintf(sweep, sizeof sweep, "%s/guard1.yaml", tmp);
    spit_sweep(sweep, base, out, "", "");
    char jlock[1100], errf[900];
    snprintf(jlock, sizeof jlock, "%s.lock", base);
    snprintf(errf, sizeof errf, "%s/guard1.err", tmp);
    size_t n;
    unsigned char *before = tu_file_bytes(base, &n), *sbefore;
    size_t sn;
    sbefore = tu_file_bytes(sweep, &sn);
    CU_ASSERT_EQUAL(sweep_cli(sweep, errf), 2);
    char *e = tu_slurp(errf);
    CU_ASSERT(e && strstr(e, "journal") && strstr(e, "is the base scenario"));
    free(e);
    CU_ASSERT(tu_bytes_unchanged(base, before, n) && tu_bytes_unchanged(sweep, sbefore, sn));
    CU_ASSERT(!tu_exists(jlock)); /* refused before the lock was taken */
    free(before);
    free(sbefore);
    unlink(base);

    /* the tissue table is output_dir/results.h5 */
    snprintf(tis, sizeof tis, "%s/results.h5", out);
    char *tt = NULL;
    {
        char src[900];
        snprintf(src, sizeof src, "%s/configs/tissues.yaml", tu_root());
        tt = tu_slurp(src);
        CU_ASSERT_FATAL(tt != NULL);
        tu_spit(tis, tt);
        free(tt);
    }
    snprintf(base, sizeof base, "%s/guard_base_tis.yaml", tmp);
    demo_copy(base, tis);
    spit_sweep(sweep, base, out, "", "");
    const char *in3[3] = {sweep, base, tis};
    expect_sweep_refused(sweep, 2, "results file", "is the tissues file", in3, 3, out);
    unlink(tis);

    /* fields: true writes points/point_<i>.json: a base scenario of that name is refused */
    snprintf(base, sizeof base, "%s/point_0000000.json", pts);
    demo_copy(base, NULL);
    spit_sweep(sweep, base, out, "", "fields: true\n");
    const char *in4[2] = {sweep, base};
    expect_sweep_refused(sweep, 2, "JSON summary of point 0", "is the base scenario", in4, 2, out);
    /* without fields: true no point file is written, so the same base is fine (dry run) */
    spit_sweep(sweep, base, out, "", "");
    char cmd[2400];
    snprintf(cmd, sizeof cmd, "'%s' sweep '%s' --dry-run >/dev/null 2>&1", tu_bin(), sweep);
    int rc = system(cmd);
    CU_ASSERT(WIFEXITED(rc) && WEXITSTATUS(rc) == 0);

    /* a FIFO as the sweep file: refused without being opened (that would block) */
    char fifo[900];
    snprintf(fifo, sizeof fifo, "%s/guard_fifo.yaml", tmp);
    CU_ASSERT_FATAL(mkfifo(fifo, 0600) == 0);
    expect_sweep_refused(fifo, 2, "sweep file", "is a FIFO", NULL, 0, out);
}

/* Two sweeps on one output_dir: the first is stopped (SIGSTOP) while it holds the journal
 * lock; the second fails at once (exit 3) naming the first one's pid and leaves every file of
 * the first as it was (names, sizes, bytes); the first, continued, finishes normally. 2 points
 * of 40^3 at 1 mm, 240 s (~0.3 s each on one thread), so the first is still running when it
 * is stopped right after its journal appears. */
static void test_concurrent_sweeps(void)
{
    const char *tmp = tu_tmpdir();
    char path[800], out[800], text[2000], lockp[900], jpath[900], errf[900];
    snprintf(out, sizeof out, "%s/conc_out", tmp);
    snprintf(path, sizeof path, "%s/conc.yaml", tmp);
    snprintf(lockp, sizeof lockp, "%s/journal.txt.lock", out);
    snprintf(jpath, sizeof jpath, "%s/journal.txt", out);
    snprintf(errf, sizeof errf, "%s/conc2.err", tmp);
    snprintf(text, sizeof text,
             "base: %s\noutput_dir: %s\naxes:\n"
             "  - {key: grid.dims, values: [[40, 40, 40]]}\n"
             "  - {key: time.duration_s, values: [240]}\n"
             "  - {key: output.snapshot_interval_s, values: [0]}\n"
             "  - {key: sources.0.schedule.1.temperature_C, values: [70, 90]}\n",
             demo(), out);
    tu_spit(path, text);
    pid_t pid = tu_spawn((const char *const[]){"ablasim", "sweep", path, "--threads", "1", "-q",
                                               NULL});
    CU_ASSERT_FATAL(pid >= 0);
    /* wait until it holds the lock (its pid in the lock file) and has started its journal,
     * then freeze it there */
    char want[32];
    snprintf(want, sizeof want, "%ld\n", (long)pid);
    bool locked = false;
    for (int i = 0; i < 120000 && !locked; i++) { /* at most ~120 s (ASan, loaded CI) */
        char *l = tu_slurp(lockp);
        locked = l && !strcmp(l, want) && journal_entries(out) >= 0;
        free(l);
        if (!locked) nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    int status = 0;
    CU_ASSERT_FATAL(locked);
    kill(pid, SIGSTOP);
    pid_t w = waitpid(pid, &status, WUNTRACED);
    if (!(w == pid && WIFSTOPPED(status))) {
        fprintf(stderr, "\n  concurrent sweeps: the first sweep ended before it could be stopped\n");
        CU_FAIL_FATAL("first sweep not stopped while holding its lock");
    }
    char *snap = dir_snapshot(out);
    int entries = journal_entries(out);
    CU_ASSERT(snap && strstr(snap, "journal.txt ") && strstr(snap, "journal.txt.lock "));

    int rc = sweep_cli(path, errf);
    char *e = tu_slurp(errf);
    char pidtxt[64];
    snprintf(pidtxt, sizeof pidtxt, "(pid %ld)", (long)pid);
    CU_ASSERT_EQUAL(rc, 3);
    CU_ASSERT(e && strstr(e, "another ablasim process is writing") && strstr(e, jpath) &&
              strstr(e, pidtxt));
    free(e);
    char *snap2 = dir_snapshot(out); /* nothing added, removed or changed */
    CU_ASSERT(snap && snap2 && !strcmp(snap, snap2));
    CU_ASSERT_EQUAL(journal_entries(out), entries);
    free(snap);
    free(snap2);

    kill(pid, SIGCONT);
    CU_ASSERT(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CU_ASSERT_EQUAL(journal_entries(out), 2);
    CU_ASSERT(!tu_exists(lockp)); /* released (and removed) by its holder */
    /* now the second one may run: everything is in the journal */
    rc = sweep_cli(path, errf);
    if (rc != 0) {
        e = tu_slurp(errf);
        fprintf(stderr, "\n  second sweep after the first: exit %d, stderr: %s\n", rc, e ? e : "");
        free(e);
    }
    CU_ASSERT_EQUAL(rc, 0);
}

/* A stop request ends a sweep between points (sweep_run_opts.stop; the CLI's SIGINT/SIGTERM).
 * Library, deterministic: the flag set before the sweep creates nothing (output_dir absent);
 * set by the report of the 3rd finished point (--jobs 1), the sweep returns ABL_ESTOPPED with
 * exactly those 3 points journalled, no table written and the lock released; the same sweep
 * run again runs the other 9 and gives the uninterrupted table and map. */
static volatile sig_atomic_t stop_flag_lib;

static void stop_after_three(const sweep_point_report *r, void *user)
{
    (void)user;
    if (r->ndone == 3) stop_flag_lib = 1;
}

static void test_stop_request_library(void)
{
    make_reference();
    char path[800], out[800], p[1000];
    snprintf(out, sizeof out, "%s/uq_stoplib", tu_tmpdir());
    snprintf(path, sizeof path, "%s/uq_stoplib.yaml", tu_tmpdir());
    write_uq_sweep(path, out);
    abl_sweep *sw = NULL;
    abl_error err = {0};
    sweep_summary sum;
    CU_ASSERT_FATAL(sweep_load(path, &sw, &err) == ABL_OK);

    stop_flag_lib = 1; /* before the sweep began */
    sweep_run_opts early = {1, 1, NULL, NULL, &stop_flag_lib};
    CU_ASSERT_EQUAL(sweep_run(sw, &early, &sum, &err), ABL_ESTOPPED);
    CU_ASSERT(strstr(err.msg, "before the sweep began") && strstr(err.msg, "nothing was written"));
    CU_ASSERT(!tu_exists(out));

    stop_flag_lib = 0;
    sweep_run_opts opts = {1, 1, stop_after_three, NULL, &stop_flag_lib};
    CU_ASSERT_EQUAL(sweep_run(sw, &opts, &sum, &err), ABL_ESTOPPED);
    CU_ASSERT(strstr(err.msg, "stopped on request after 3 of 12 points") &&
              strstr(err.msg, "continues with the other 9"));
    CU_ASSERT_EQUAL(journal_entries(out), 3);
    snprintf(p, sizeof p, "%s/journal.txt.lock", out);
    CU_ASSERT(!tu_exists(p));
    snprintf(p, sizeof p, "%s/results.csv", out);
    CU_ASSERT(!tu_exists(p));
    snprintf(p, sizeof p, "%s/results.h5", out);
    CU_ASSERT(!tu_exists(p));
    sweep_free(sw);

    /* the same sweep again, no stop: the other 9 points, the uninterrupted table */
    sw = NULL;
    CU_ASSERT_FATAL(sweep_load(path, &sw, &err) == ABL_OK);
    stop_flag_lib = 0;
    sweep_run_opts rest = {1, 1, NULL, NULL, &stop_flag_lib};
    CU_ASSERT_EQUAL_FATAL(sweep_run(sw, &rest, &sum, &err), ABL_OK);
    CU_ASSERT_EQUAL(sum.nresumed, 3);
    CU_ASSERT_EQUAL(sum.nrun, 9);
    assert_reference_table(out);
    sweep_free(sw);
}

/* `ablasim sweep` stopped by SIGTERM (a batch system's time limit; --jobs 2) and by SIGINT
 * (Ctrl-C; serial) once a point is in the journal: exit 75 naming how many points are kept,
 * the journal whole (every line complete), its lock file gone, no table and no temporary in
 * output_dir or points/; the same command then finishes with the uninterrupted table. Before
 * the handler, the signal killed it (exit by signal, the lock file left). */
static void test_stop_signal_cli(void)
{
    make_reference();
    static const struct {
        int sig;
        const char *jobs;
    } cases[] = {{SIGTERM, "2"}, {SIGINT, "1"}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char path[800], out[800], errf[800], p[1000];
        snprintf(out, sizeof out, "%s/uq_stopsig%zu", tu_tmpdir(), c);
        snprintf(path, sizeof path, "%s/uq_stopsig%zu.yaml", tu_tmpdir(), c);
        snprintf(errf, sizeof errf, "%s/uq_stopsig%zu.err", tu_tmpdir(), c);
        write_uq_sweep(path, out);
        if (c == 1) { /* per-point result files: a stopped point's must not be left */
            FILE *f = fopen(path, "a");
            CU_ASSERT_FATAL(f != NULL);
            fputs("fields: true\n", f);
            fclose(f);
        }
        pid_t pid = tu_spawn_err((const char *const[]){"ablasim", "sweep", path, "--jobs",
                                                       cases[c].jobs, "--threads", "2", "-q",
                                                       NULL},
                                 errf);
        CU_ASSERT_FATAL(pid >= 0);
        int entries = 0, status = 0;
        bool ended = false;
        for (int i = 0; i < 120000 && entries < 1; i++) { /* at most ~120 s (ASan, loaded CI) */
            nanosleep(&(struct timespec){0, 1000000}, NULL);
            entries = journal_entries(out);
            if (waitpid(pid, &status, WNOHANG) == pid) {
                ended = true;
                break;
            }
        }
        if (!ended) {
            kill(pid, cases[c].sig);
            CU_ASSERT_FATAL(waitpid(pid, &status, 0) == pid);
        }
        const int at_stop = journal_entries(out);
        char *e = tu_slurp(errf);
        if (!(WIFEXITED(status) && WEXITSTATUS(status) == 75 && at_stop >= 1 && at_stop < 12))
            fprintf(stderr,
                    "\n  stop test (signal %d): %s %d, %d of 12 points journalled, stderr: %s\n",
                    cases[c].sig, WIFEXITED(status) ? "exit" : "killed by signal",
                    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), at_stop,
                    e ? e : "");
        CU_ASSERT_FATAL(WIFEXITED(status) && WEXITSTATUS(status) == 75);
        CU_ASSERT(at_stop >= 1 && at_stop < 12);
        char want[64];
        snprintf(want, sizeof want, "stopped on request after %d of 12 points", at_stop);
        CU_ASSERT(e && strstr(e, want) && strstr(e, "the same command continues"));
        free(e);
        snprintf(p, sizeof p, "%s/journal.txt", out);
        char *j = tu_slurp(p);
        CU_ASSERT(j && j[strlen(j) - 1] == '\n');
        free(j);
        snprintf(p, sizeof p, "%s/journal.txt.lock", out);
        CU_ASSERT(!tu_exists(p));
        char *snap = dir_snapshot(out);
        CU_ASSERT(snap && !strstr(snap, "results.") && !strstr(snap, ".tmp"));
        free(snap);
        snprintf(p, sizeof p, "%s/points", out);
        snap = dir_snapshot(p);
        CU_ASSERT(snap && !strstr(snap, ".tmp") && !strstr(snap, ".lock") &&
                  !strstr(snap, ".part") && !strstr(snap, ".commit"));
        int results = 0; /* point_<i>.h5: one per journalled point (fields: true), no other */
        for (const char *q = snap; q && (q = strstr(q, "point_")); q++)
            results += !strncmp(q + 13, ".h5 ", 4);
        CU_ASSERT_EQUAL(results, c == 1 ? at_stop : 0);
        free(snap);

        char cmd[2000];
        snprintf(cmd, sizeof cmd, "'%s' sweep '%s' --quiet --threads 1 >/dev/null 2>&1",
                 tu_bin(), path);
        CU_ASSERT_EQUAL(system(cmd), 0);
        CU_ASSERT_EQUAL(journal_entries(out), 12);
        assert_reference_table(out);
    }
}

/* Point counts are checked before they are multiplied: beyond SWEEP_MAX_POINTS (10^6) the
 * sweep file is refused with a message, never expanded or wrapped. */
static void test_point_count_limit(void)
{
    static const struct {
        const char *yaml, *frag1, *frag2; /* the message holds frag1 and (if given) frag2 */
    } cases[] = {
        /* 1001 x 1000: refused at the second axis, naming it */
        {"base: b.yaml\noutput_dir: o\naxes:\n"
         "  - {key: a_s, linspace: {from: 0, to: 1, count: 1001}}\n"
         "  - {key: b_s, linspace: {from: 0, to: 1, count: 1000}}\n",
         "sweep.yaml:5: the grid of axes has more than 1000000 points (1001 so far times 1000 "
         "values of 'b_s')",
         NULL},
        /* 100 x 100 x 101 */
        {"base: b.yaml\noutput_dir: o\naxes:\n"
         "  - {key: a_s, linspace: {from: 0, to: 1, count: 100}}\n"
         "  - {key: b_s, linspace: {from: 0, to: 1, count: 100}}\n"
         "  - {key: c_s, linspace: {from: 0, to: 1, count: 101}}\n",
         "sweep.yaml:6: the grid of axes has more than 1000000 points", NULL},
        /* 1000 zipped axis points x 1001 samples */
        {"base: b.yaml\noutput_dir: o\ncombine: zip\naxes:\n"
         "  - {key: a_s, linspace: {from: 0, to: 1, count: 1000}}\n"
         "  - {key: b_s, linspace: {from: 0, to: 1, count: 1000}}\n"
         "sampling:\n  method: random\n  count: 1001\n  parameters:\n"
         "    - {key: c_s, distribution: uniform, low: 0, high: 1}\n",
         "1000 axis points x 1001 samples is more than 1000000 points", NULL},
        /* a single count beyond the limit is out of range */
        {"base: b.yaml\noutput_dir: o\naxes:\n"
         "  - {key: a_s, linspace: {from: 0, to: 1, count: 1000001}}\n",
         "count", "out of range"},
    };
    abl_error err;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *m = rejected(cases[i].yaml, &err);
        CU_ASSERT(strstr(m, cases[i].frag1) != NULL &&
                  (!cases[i].frag2 || strstr(m, cases[i].frag2) != NULL));
    }
    /* the same counts zipped stay small: 1000 points */
    abl_sweep *sw = load_text("base: b.yaml\noutput_dir: o\ncombine: zip\naxes:\n"
                              "  - {key: a_s, linspace: {from: 0, to: 1, count: 1000}}\n"
                              "  - {key: b_s, linspace: {from: 0, to: 1, count: 1000}}\n");
    CU_ASSERT(sw && sw->npoints == 1000);
    sweep_free(sw);
}

/* ---- --jobs, damaged journals (coverage audit) --------------------------------------------- */

/* Which points a sweep_run reported as finished, and the largest OpenMP team they were
 * recorded from (1: the serial loop; --jobs J: the J threads of run_jobs). */
typedef struct {
    int n;
    size_t idx[64];
    int team;
} report_log;

static void log_report(const sweep_point_report *r, void *user)
{
    report_log *l = user;
    if (l->n < 64) l->idx[l->n++] = r->index;
    if (omp_get_num_threads() > l->team) l->team = omp_get_num_threads();
}

static int cmp_index_first(const void *a, const void *b)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    unsigned long long i = strtoull(x, NULL, 10), j = strtoull(y, NULL, 10);
    return i < j ? -1 : i > j ? 1 : strcmp(x, y);
}

/* The points a journal records as done: "<index> <hash> <status>" of each entry (the header
 * skipped), sorted by index, one per line; duplicates kept (a point recorded twice shows).
 * NULL if the journal cannot be read. */
static char *journal_points(const char *dir)
{
    char p[2100];
    snprintf(p, sizeof p, "%s/journal.txt", dir);
    char *s = tu_slurp(p);
    if (!s) return NULL;
    char *lines[256];
    int n = 0;
    char *save = NULL;
    char *line = strtok_r(s, "\n", &save); /* the header */
    while (line && (line = strtok_r(NULL, "\n", &save)) && n < 256) {
        const char *sp = line;
        for (int k = 0; k < 3 && sp; k++) /* up to the space after the third token */
            sp = strchr(sp + (k > 0), ' ');
        size_t len = sp ? (size_t)(sp - line) : strlen(line);
        lines[n] = malloc(len + 2);
        snprintf(lines[n], len + 2, "%.*s\n", (int)len, line);
        n++;
    }
    qsort(lines, (size_t)n, sizeof *lines, cmp_index_first);
    size_t cap = 1, o = 0;
    for (int i = 0; i < n; i++)
        cap += strlen(lines[i]);
    char *out = malloc(cap);
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        o += (size_t)snprintf(out + o, cap - o, "%s", lines[i]);
        free(lines[i]);
    }
    free(s);
    return out;
}

/* A 4-point sweep (2 x 2 of the tiny 16^3 grid, 20 s) with the probability map and per-point
 * result files, run once with --jobs 1 and once with --jobs 2 (2 threads): run_jobs records
 * points from two threads under one lock, in whatever order they finish. Both must give the
 * same table (every column but wall time, exactly: results do not depend on threads, and the
 * table is written in point order), the same per-point files (the masks byte for byte: they
 * hold no time), and journals recording the same points (index, --set hash, status). */
static void test_jobs_equal_serial(void)
{
    const char *tmp = tu_tmpdir();
    char path[2][800], out[2][800];
    char *csv[2] = {NULL, NULL}, *jpts[2] = {NULL, NULL}, *pts[2] = {NULL, NULL};
    report_log log[2] = {{0}, {0}};
    /* fields: true with --jobs > 1 needs a thread-safe HDF5 (Debian's is; refused otherwise) */
    hbool_t ts = 0;
    const bool fields = H5is_library_threadsafe(&ts) >= 0 && ts;
    if (!fields)
        fprintf(stderr, "\n  --jobs test: HDF5 not thread-safe; per-point result files (fields: "
                        "true) not compared, masks only\n");
    for (int r = 0; r < 2; r++) {
        snprintf(out[r], sizeof out[r], "%s/jobs%d_out", tmp, r + 1);
        snprintf(path[r], sizeof path[r], "%s/jobs%d.yaml", tmp, r + 1);
        spit_sweep(path[r], demo(), out[r],
                   "  - {key: sources.0.schedule.1.temperature_C, values: [70, 90]}\n"
                   "  - {key: tissues.tumour.perfusion_per_s, values: [0.005, 0.015]}\n",
                   fields ? "fields: true\noutputs: {probability_map: true}\n"
                          : "outputs: {probability_map: true}\n");
        /* (jobs, threads) = (1, 1), then (2, 2): one thread per point either way */
        const sweep_run_opts opts = {r + 1, r + 1, log_report, &log[r], NULL};
        sweep_summary sum;
        run_sweep_file(path[r], &opts, &sum);
        CU_ASSERT_EQUAL(sum.nok, 4);
        CU_ASSERT_EQUAL(sum.nrun, 4);
        CU_ASSERT(sum.prob_map_written);
        CU_ASSERT_EQUAL(log[r].n, 4); /* every point reported once */
        csv[r] = tu_slurp(sum.csv_path);
        jpts[r] = journal_points(out[r]);
        char pdir[2100];
        snprintf(pdir, sizeof pdir, "%s/points", out[r]);
        pts[r] = dir_snapshot(pdir);
    }
    /* the second run really went through run_jobs: points recorded from a team of 2 */
    CU_ASSERT_EQUAL(log[0].team, 1);
    CU_ASSERT_EQUAL(log[1].team, 2);
    CU_ASSERT_FATAL(csv[0] && csv[1] && jpts[0] && jpts[1] && pts[0] && pts[1]);

    /* exact text comparison; only wall_time_s is left out, the one column documented to
     * differ between runs */
    char *a = table_without_wall(csv[0]), *b = table_without_wall(csv[1]);
    CU_ASSERT_EQUAL(count_lines(a), 5); /* header + 4 rows, points 0..3 in order */
    /* rows in point order: 0 = (70, 0.005), ..., 3 = (90, 0.015), all ok */
    CU_ASSERT(strncmp(a, "point|", 6) == 0 && strstr(a, "\n0|70|0.005|") &&
              strstr(a, "\n3|90|0.015|") && strstr(a, "\n0|") < strstr(a, "\n1|") &&
              strstr(a, "\n1|") < strstr(a, "\n2|") && strstr(a, "\n2|") < strstr(a, "\n3|"));
    int nok = 0;
    for (const char *q = a; (q = strstr(q, "|ok|")); q++)
        nok++;
    CU_ASSERT_EQUAL(nok, 4);
    CU_ASSERT_STRING_EQUAL(a, b);
    free(a);
    free(b);

    /* journals: points 0..3 once each (sorted by index), ok, with the same --set hash */
    CU_ASSERT_EQUAL(count_lines(jpts[0]), 4);
    CU_ASSERT_STRING_EQUAL(jpts[0], jpts[1]);
    const char *l = jpts[1];
    for (int i = 0; i < 4 && l; i++) {
        CU_ASSERT(strtol(l, NULL, 10) == i && strstr(l, " ok\n") == strchr(l, '\n') - 3);
        l = strchr(l, '\n');
        l = l ? l + 1 : NULL;
    }

    /* per-point files: same names in both; masks identical bytes (the field files hold wall
     * times and provenance, so only their presence is compared) */
    static const char *const kinds[] = {"mask_", "point_"};
    for (int k = 0; k < 2; k++) {
        /* names sorted, one per line: every snapshot line starting with the prefix */
        char names[2][4096];
        for (int r = 0; r < 2; r++) {
            size_t o = 0;
            names[r][0] = '\0';
            for (const char *l = pts[r]; l && *l;) {
                const char *nl = strchr(l, '\n');
                size_t len = nl ? (size_t)(nl - l) : strlen(l);
                if (!strncmp(l, kinds[k], strlen(kinds[k]))) {
                    if (k == 0) /* masks: name, size and hash of the bytes */
                        o += (size_t)snprintf(names[r] + o, sizeof names[r] - o, "%.*s\n",
                                              (int)len, l);
                    else /* field files: the name only */
                        o += (size_t)snprintf(names[r] + o, sizeof names[r] - o, "%.*s\n",
                                              (int)(strchr(l, ' ') - l), l);
                }
                l = nl ? nl + 1 : NULL;
            }
        }
        CU_ASSERT_STRING_EQUAL(names[0], names[1]);
        if (k == 0) CU_ASSERT_EQUAL(count_lines(names[1]), 4); /* mask_0..3 */
        if (k == 1 && fields) /* point_<i>.h5 (+ .json, .xdmf) for each of the 4 points */
            CU_ASSERT(count_lines(names[1]) >= 4 &&
                      strstr(names[1], "point_0000003.h5\n") != NULL);
    }
    for (int i = 0; i < 4; i++) {
        char want[64];
        snprintf(want, sizeof want, "mask_%07d.bin ", i);
        CU_ASSERT(strstr(pts[1], want) != NULL);
        snprintf(want, sizeof want, "point_%07d.h5 ", i);
        CU_ASSERT(!fields || strstr(pts[1], want) != NULL);
    }

    /* the --jobs 2 journal reads back complete: a resume runs nothing */
    sweep_summary sum;
    run_sweep_file(path[1], NULL, &sum);
    CU_ASSERT_EQUAL(sum.nresumed, 4);
    CU_ASSERT_EQUAL(sum.nrun, 0);
    for (int r = 0; r < 2; r++) {
        free(csv[r]);
        free(jpts[r]);
        free(pts[r]);
    }
}

/* A completed 3-point sweep; then one byte of point 1's journal line (the first digit of its
 * first number, dt_s) is flipped, so the line still parses and only its CRC-32 tells. The
 * documented behaviour: the line is ignored and counted in a note, exactly that point runs
 * again (its fresh line appended), the others come from the journal, and the table equals
 * the undamaged one. */
static void test_journal_damaged_line(void)
{
    char path[800], out[800], jpath[900];
    snprintf(out, sizeof out, "%s/crc_out", tu_tmpdir());
    snprintf(path, sizeof path, "%s/crc.yaml", tu_tmpdir());
    snprintf(jpath, sizeof jpath, "%s/journal.txt", out);
    spit_sweep(path, demo(), out,
               "  - {key: sources.0.schedule.1.temperature_C, values: [70, 80, 90]}\n", "");
    sweep_summary sum;
    run_sweep_file(path, NULL, &sum);
    CU_ASSERT_EQUAL(sum.nrun, 3);
    CU_ASSERT(sum.note[0] == '\0'); /* an intact journal gives no note */
    char *clean = tu_slurp(sum.csv_path);
    CU_ASSERT_FATAL(clean != NULL);

    /* flip the first digit of point 1's first number: '0'^1 = '1', '1'^1 = '0', ... (a digit
     * stays a digit, and the leading one changes the value by far more than its rounding) */
    size_t len = 0;
    unsigned char *j = tu_file_bytes(jpath, &len);
    CU_ASSERT_FATAL(j != NULL && len > 0);
    size_t at = 0;
    while (at < len && j[at] != '\n') /* past the header */
        at++;
    at++;
    while (at < len && strncmp((const char *)j + at, "1 ", 2)) { /* to point 1's line */
        while (at < len && j[at] != '\n')
            at++;
        at++;
    }
    CU_ASSERT_FATAL(at < len);
    for (int spaces = 0; at < len && spaces < 3; at++) /* past "<index> <hash> <status> " */
        spaces += j[at] == ' ';
    CU_ASSERT_FATAL(at < len && j[at] >= '0' && j[at] <= '9');
    j[at] ^= 0x01;
    FILE *f = fopen(jpath, "wb");
    CU_ASSERT_FATAL(f != NULL);
    CU_ASSERT(fwrite(j, 1, len, f) == len);
    fclose(f);
    free(j);

    report_log log = {0};
    const sweep_run_opts opts = {1, 1, log_report, &log, NULL};
    run_sweep_file(path, &opts, &sum);
    CU_ASSERT_EQUAL(sum.nrun, 1);
    CU_ASSERT_EQUAL(sum.nresumed, 2);
    CU_ASSERT_EQUAL(sum.nok, 3);
    CU_ASSERT(log.n == 1 && log.idx[0] == 1); /* exactly the damaged point ran */
    if (!strstr(sum.note, "1 damaged journal line(s) ignored; their points ran again"))
        fprintf(stderr, "\n  note: '%s'\n", sum.note);
    CU_ASSERT(strstr(sum.note, "1 damaged journal line(s) ignored; their points ran again") !=
              NULL);
    CU_ASSERT_EQUAL(journal_entries(out), 4); /* 3 + point 1 again */
    char *again = tu_slurp(sum.csv_path);
    CU_ASSERT_FATAL(again != NULL);
    char *a = table_without_wall(clean), *b = table_without_wall(again);
    CU_ASSERT_STRING_EQUAL(a, b); /* exact but for wall_time_s (the only column that differs
                                   * between runs): the rerun computes the same numbers */
    free(a);
    free(b);
    free(again);
    free(clean);
}

/* A journal.txt whose header is not a sweep journal's (its magic with one byte changed; a
 * one-line file without a newline) is refused, exit 2, "not a sweep journal; refusing to
 * overwrite it", and every file of output_dir and of output_dir/points keeps its name, size
 * and bytes (no lock left behind either). */
static void test_journal_bad_header(void)
{
    const char *tmp = tu_tmpdir();
    char path[800], out[800], jpath[900], pdir[900], errf[900];
    snprintf(out, sizeof out, "%s/magic_out", tmp);
    snprintf(path, sizeof path, "%s/magic.yaml", tmp);
    snprintf(jpath, sizeof jpath, "%s/journal.txt", out);
    snprintf(pdir, sizeof pdir, "%s/points", out);
    snprintf(errf, sizeof errf, "%s/magic.err", tmp);
    spit_sweep(path, demo(), out,
               "  - {key: sources.0.schedule.1.temperature_C, values: [70, 90]}\n",
               "outputs: {probability_map: true}\n");
    sweep_summary sum;
    run_sweep_file(path, NULL, &sum);
    char *good = tu_slurp(jpath);
    CU_ASSERT_FATAL(good != NULL && !strncmp(good, "ablasim-sweep-journal 1 ", 24));

    for (int v = 0; v < 2; v++) {
        if (v == 0) {
            char *bad = strdup(good);
            bad[14] ^= 0x20; /* "ablasim-sweep-Journal 1 fingerprint=..." */
            tu_spit(jpath, bad);
            free(bad);
        } else {
            tu_spit(jpath, "my notes"); /* no newline, and not the start of a header */
        }
        char *snap = dir_snapshot(out), *psnap = dir_snapshot(pdir);
        CU_ASSERT_FATAL(snap && psnap);
        CU_ASSERT(strstr(snap, "results.csv ") && strstr(snap, "results.h5 ") &&
                  strstr(psnap, "mask_0000001.bin "));
        int rc = sweep_cli(path, errf);
        char *e = tu_slurp(errf);
        bool ok = rc == 2 && e && strstr(e, jpath) &&
                  strstr(e, "not a sweep journal; refusing to overwrite it");
        if (!ok) fprintf(stderr, "\n  bad header %d: exit %d, stderr: %s", v, rc, e ? e : "");
        CU_ASSERT(ok);
        free(e);
        char *snap2 = dir_snapshot(out), *psnap2 = dir_snapshot(pdir);
        CU_ASSERT(snap2 && !strcmp(snap, snap2)); /* journal, tables: untouched, no lock */
        CU_ASSERT(psnap2 && !strcmp(psnap, psnap2)); /* masks untouched */
        free(snap);
        free(snap2);
        free(psnap);
        free(psnap2);
    }
    free(good);
}

static int cleanup(void)
{
    free(ref_table);
    ref_table = NULL;
    return 0;
}

void register_sweep_tests(void)
{
    CU_pSuite s = CU_add_suite("sweep", NULL, cleanup);
    CU_add_test(s, "grid expansion, last axis fastest, exact texts", test_expand_grid);
    CU_add_test(s, "zip, linspace, logspace, quoted values", test_expand_zip_ranges);
    CU_add_test(s, "bad sweep files name file:line", test_bad_sweep_files);
    CU_add_test(s, "FNV-1a: published vectors, files", test_fnv1a);
    CU_add_test(s, "inverse normal CDF", test_norm_inv);
    CU_add_test(s, "Latin hypercube: one sample per stratum, seeded", test_lhs);
    CU_add_test(s, "serial sweep equals direct runs; table, HDF5, map", test_serial_sweep);
    CU_add_test(s, "a failed point is a row, not retried", test_failed_point_is_a_row);
    CU_add_test(s, "journal of another sweep is refused, untouched",
                test_journal_refuses_other_sweep);
    CU_add_test(s, "journal: not through a symbolic or hard link", test_journal_not_a_link);
    CU_add_test(s, "a point's result file is written under its lock", test_point_result_locked);
    CU_add_test(s, "margin_min_mm is ablasim margin's, needle track included",
                test_margin_column_equals_margin);
    CU_add_test(s, "a point that fails leaves no earlier result under its name",
                test_failed_point_leaves_no_result);
    CU_add_test(s, "kill -9 and resume: same table", test_kill_and_resume);
    CU_add_test(s, "stop request between points: ABL_ESTOPPED, journal kept, no table, resumes",
                test_stop_request_library);
    CU_add_test(s, "SIGTERM / SIGINT: exit 75, journal whole, lock gone; resumes to the same table",
                test_stop_signal_cli);
    CU_add_test(s, "MPI, 2 ranks: same table as serial", test_mpi_equals_serial);
    CU_add_test(s, "CLI: dry run, exit codes", test_cli_dry_run);
    CU_add_test(s, "outputs that are inputs refused, inputs untouched", test_outputs_never_inputs);
    CU_add_test(s, "two sweeps on one output_dir: the second fails with the pid",
                test_concurrent_sweeps);
    CU_add_test(s, "point counts beyond 10^6 refused before expansion", test_point_count_limit);
    CU_add_test(s, "--jobs 2 equals --jobs 1: table, per-point files, journal",
                test_jobs_equal_serial);
    CU_add_test(s, "journal line failing its CRC: ignored with a note, that point rerun",
                test_journal_damaged_line);
    CU_add_test(s, "journal with a wrong header refused (exit 2), output_dir untouched",
                test_journal_bad_header);
}
