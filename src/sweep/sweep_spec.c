/* sweep_spec.c - the sweep file: schema, expansion of axes into points, random and
 * Latin-hypercube sampling, and small shared helpers (hashes, number formatting).
 *
 * A point is stored as the text of its values, because the text is what --set receives: a
 * generated number is formatted once (15 significant digits, so that 60 + 3 * 10 reads "90" and
 * not "90.000000000000014") and that text is the value used, recorded and hashed. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "ablasim/config.h"
#include "ablasim/fileguard.h"
#include "sweep_internal.h"

/* ---- the sweep file's keys, declared once (config.h): the unknown-key check reads them, and
 * docs/SWEEPS.md "SWEEP.yaml reference" is printed from them (sweep_reference_markdown) ------ */

/* linspace / logspace: documented in their rows */
static const cfg_keydecl range_decl[] = {
    CFG_KEY("from", "key's unit", "required", "number (> 0 for logspace)", "first value"),
    CFG_KEY("to", "key's unit", "required", "number (> 0 for logspace)", "last value"),
    CFG_KEY("count", "values", "required", "1..1e6", "values, both ends included"),
};
static const cfg_keytable range_keys = CFG_KEYTABLE(range_decl);

static const cfg_keydecl axis_decl[] = {
    CFG_KEY("key", "–", "required", "dotted scenario key, as for `--set`",
            "e.g. `sources.0.power_W`, `tissues.tumour.perfusion_per_s`, `grid.dims`"),
    CFG_KEY("name", "–", "the key",
            "text without spaces, commas, quotes, `/`; not `.`, `..` or a name the table "
            "keeps (`point`, `status`, `message`, `set_args`, `column_names`, the output "
            "columns)",
            "column name in the table"),
    CFG_KEY("values", "key's unit", "–", "list of YAML values",
            "any value the key takes: numbers, names, lists (`[[16, 16, 16]]`), mappings; quotes "
            "are kept (`\"30\"` stays text)"),
    CFG_KEY("linspace", "key's unit", "–", "`{from, to, count}`, count 1..1e6",
            "`count` equally spaced values, both ends included"),
    CFG_KEY("logspace", "key's unit", "–", "`{from, to, count}`, from, to > 0",
            "geometric spacing between the two **values** (not exponents): `{from: 0.001, to: "
            "0.1, count: 3}` gives 0.001, 0.01, 0.1"),
};
static const cfg_keytable axis_keys = CFG_KEYTABLE(axis_decl);

/* the distribution parameters: one reference row per distribution (its label) */
static const cfg_keydecl param_decl[] = {
    {"key", "–", "required, key", "as for axes", NULL,
     .label = "`sampling.parameters[i].key`, `.name`"},
    {"name", "–", "the key", "as for axes", "column name in the table", .label = ""},
    CFG_KEY("distribution", "–", "required", "`normal`, `uniform`, `lognormal`", NULL),
    {"mean", "key's unit", NULL, "`mean`, `sd` > 0", NULL, .label = "`  normal`"},
    {"sd", "key's unit", NULL, "> 0", "normal: standard deviation", .label = ""},
    {"low", "key's unit", NULL, "`low`, `high` > low", NULL, .label = "`  uniform`"},
    {"high", "key's unit", NULL, "> low", "uniform: upper end", .label = ""},
    {"mu", "–", NULL, "`mu`, `sigma` > 0", "of ln(x): median exp(mu)", .label = "`  lognormal`"},
    {"sigma", "–", NULL, "> 0", "lognormal: standard deviation of ln(x)", .label = ""},
};
static const cfg_keytable param_keys = CFG_KEYTABLE(param_decl);

static const cfg_keydecl sampling_decl[] = {
    CFG_KEY("method", "–", "required", "`random`, `latin_hypercube`",
            "LHS: each of the `count` equal-probability strata of every parameter holds exactly "
            "one sample, strata paired at random"),
    CFG_KEY("count", "points", "required", "1..1e6", "samples"),
    CFG_KEY("seed", "–", "1", "integer ≥ 0",
            "same seed, same samples (xoshiro256**, identical on every platform)"),
    {"parameters", "–", "required", "non-empty list of mappings", "the sampled keys",
     .label = "", .sub = &param_keys, .sub_prefix = "sampling.parameters[i]."},
};
static const cfg_keytable sampling_keys = CFG_KEYTABLE(sampling_decl);

static const cfg_keydecl outputs_decl[] = {
    CFG_KEY("ablation_threshold_C", "°C", "55", "[-200, 200]",
            "T_max threshold of the probability map and of the zone extents"),
    CFG_KEY("probability_map", "–", "`auto`", "`auto`, `true`, `false`",
            "`auto`: on when `sampling` is given. Needs one grid for every point (`true` with "
            "differing grids is an error before any point runs, also when an axis of "
            "`grid.dims`, `grid.spacing_mm`, `grid.origin_mm` or `grid.mesh` changes only "
            "its middle points; `auto` then skips the map with a note)"),
    CFG_KEY("per_tissue", "–", "`true`", "bool", "per-tissue volume and extreme columns"),
};
static const cfg_keytable outputs_keys = CFG_KEYTABLE(outputs_decl);

static const cfg_keydecl root_decl[] = {
    CFG_KEY("base", "–", "required", "path", "base scenario; relative to the sweep file"),
    CFG_KEY("output_dir", "–", "required", "path",
            "where the journal, table and map go; relative to the working directory (like "
            "`ablasim run -o`); created if missing"),
    CFG_KEY("combine", "–", "`grid`", "`grid`, `zip`",
            "`grid`: every combination of the axes, the **last axis varying fastest** (nested "
            "loops in file order); `zip`: the i-th values of all axes together (axes of equal "
            "length)"),
    {"axes", "–", "none", "list", "keys varied over given values", .sub = &axis_keys,
     .sub_prefix = "axes[i]."},
    {"sampling", "–", "none", "mapping",
     "random or Latin-hypercube samples of parameter distributions", .sub = &sampling_keys,
     .sub_prefix = "sampling."},
    CFG_KEY("fields", "–", "`false`", "bool",
            "per-point result files `output_dir/points/point_<i>.h5` (+ .xdmf, .json), as "
            "`ablasim run` writes them"),
    {"outputs", "–", "none", "mapping", "table and map options", .label = "",
     .sub = &outputs_keys, .sub_prefix = "outputs."},
};
static const cfg_keytable root_keys = CFG_KEYTABLE(root_decl);

int sweep_reference_markdown(FILE *f)
{
    if (fputs("| key | unit | default | allowed | meaning |\n|---|---|---|---|---|\n", f) == EOF)
        return -1;
    return cfg_decl_markdown(f, &root_keys, "");
}

/* ---- helpers ------------------------------------------------------------------------------ */

char *sweep_strdup(const char *s)
{
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

char *sweep_join(const char *dir, const char *rel)
{
    if (rel[0] == '/' || !dir || !dir[0] || !strcmp(dir, ".")) return sweep_strdup(rel);
    size_t n = strlen(dir) + strlen(rel) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, rel);
    return p;
}

uint32_t sweep_crc32(const void *data, size_t n)
{
    /* CRC-32 (IEEE) by zlib, the one the plan journal uses (it was a bitwise copy of the same
     * polynomial here: the same values, so existing journals stay valid) */
    uLong c = crc32(0L, Z_NULL, 0);
    for (const Bytef *p = data; n > 0;) { /* uInt chunks: n may exceed UINT_MAX */
        const uInt k = n > 0x40000000u ? 0x40000000u : (uInt)n;
        c = crc32(c, p, k);
        p += k;
        n -= k;
    }
    return (uint32_t)c;
}

void sweep_fmt_double(char *buf, size_t len, double v)
{
    if (isnan(v)) {
        snprintf(buf, len, "nan");
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, len, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) return;
    }
}

/* Generated values: 15 significant digits (see the file comment). */
static char *fmt15(double v)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%.15g", v);
    if (!strcmp(buf, "-0")) snprintf(buf, sizeof buf, "0");
    return sweep_strdup(buf);
}

/* ---- sampling ----------------------------------------------------------------------------- */

/* xoshiro256** seeded through splitmix64: small, fast, well tested, and the same sequence on
 * every platform (the C library's rand() is neither portable nor good). */
typedef struct {
    uint64_t s[4];
} rng_t;

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void rng_seed(rng_t *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(rng_t *r)
{
    uint64_t *s = r->s;
    const uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

/* Uniform in the open interval (0, 1): the inverse CDFs are infinite at 0 and 1. */
static double rng_unit(rng_t *r)
{
    return ((double)(rng_next(r) >> 11) + 0.5) * 0x1p-53;
}

/* Uniform integer in [0, m), without modulo bias. */
static uint64_t rng_below(rng_t *r, uint64_t m)
{
    const uint64_t threshold = (0 - m) % m;
    for (;;) {
        uint64_t x = rng_next(r);
        if (x >= threshold) return x % m;
    }
}

abl_status sweep_unit_samples(sweep_sample_method m, long n, int nparams, uint64_t seed,
                              double **u_out, abl_error *err)
{
    *u_out = NULL;
    if (n < 1 || nparams < 1)
        return abl_fail(err, ABL_EINVAL, "sampling needs n >= 1 and >= 1 parameter");
    double *u = malloc((size_t)n * (size_t)nparams * sizeof *u);
    size_t *perm = m == SWEEP_SAMPLE_LHS ? malloc((size_t)n * sizeof *perm) : NULL;
    if (!u || (m == SWEEP_SAMPLE_LHS && !perm)) {
        free(u);
        free(perm);
        return abl_fail(err, ABL_ENOMEM, "out of memory for %ld samples", n);
    }
    rng_t r;
    rng_seed(&r, seed);
    if (m == SWEEP_SAMPLE_LHS) {
        /* Per parameter an independent random permutation of the n strata, then a uniform
         * position inside each stratum: every stratum of every parameter holds one sample. */
        for (int q = 0; q < nparams; q++) {
            for (long i = 0; i < n; i++)
                perm[i] = (size_t)i;
            for (long i = n - 1; i > 0; i--) {
                size_t j = (size_t)rng_below(&r, (uint64_t)i + 1);
                size_t t = perm[i];
                perm[i] = perm[j];
                perm[j] = t;
            }
            for (long i = 0; i < n; i++)
                u[(size_t)i * nparams + q] = ((double)perm[i] + rng_unit(&r)) / (double)n;
        }
    } else {
        for (long i = 0; i < n; i++)
            for (int q = 0; q < nparams; q++)
                u[(size_t)i * nparams + q] = rng_unit(&r);
    }
    free(perm);
    *u_out = u;
    return ABL_OK;
}

double sweep_norm_inv(double p)
{
    /* Acklam's rational approximation (relative error 1.15e-9), then one Halley step on
     * Phi(x) - p with erfc, which brings it to full double precision. */
    static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,
                               -2.759285104469687e+02, 1.383577518672690e+02,
                               -3.066479806614716e+01, 2.506628277459239e+00};
    static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02,
                               -1.556989798598866e+02, 6.680131188771972e+01,
                               -1.328068155288572e+01};
    static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01,
                               -2.400758277161838e+00, -2.549732539343734e+00,
                               4.374664141464968e+00,  2.938163982698783e+00};
    static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                               3.754408661907416e+00};
    const double plow = 0.02425;
    if (!(p > 0 && p < 1)) return p == 0 ? -INFINITY : p == 1 ? INFINITY : NAN;
    double x;
    if (p < plow) {
        double q = sqrt(-2 * log(p));
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
    } else if (p <= 1 - plow) {
        double q = p - 0.5, r = q * q;
        x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
            (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
    } else {
        double q = sqrt(-2 * log1p(-p));
        x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
    }
    double e = 0.5 * erfc(-x / sqrt(2.0)) - p;
    double u = e * 2.5066282746310002 * exp(x * x / 2); /* sqrt(2 pi) */
    return x - u / (1 + x * u / 2);
}

static double dist_value(const sweep_key *k, double u)
{
    switch (k->dist) {
    case SWEEP_DIST_UNIFORM:
        return k->p1 + u * (k->p2 - k->p1);
    case SWEEP_DIST_NORMAL:
        return k->p1 + k->p2 * sweep_norm_inv(u);
    case SWEEP_DIST_LOGNORMAL:
        return exp(k->p1 + k->p2 * sweep_norm_inv(u));
    }
    return NAN;
}

/* ---- YAML node -> --set text -------------------------------------------------------------- */

typedef struct {
    char *s;
    size_t n, cap;
    bool oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = '\0';
}

static void sb_str(sbuf *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

static void emit_scalar(sbuf *b, const cfg_node *n, bool nested)
{
    const char *v = n->value;
    /* Quotes are kept where the file had them (a quoted "30" is text, not a number), and added
     * inside flow collections where a plain scalar would break the [..] or {..} syntax. */
    bool quote = n->quoted || (nested && strpbrk(v, ",[]{}:#\"'") != NULL) || (nested && !*v);
    if (!quote) {
        sb_str(b, v);
        return;
    }
    sb_put(b, "\"", 1);
    for (const char *p = v; *p; p++) {
        if (*p == '"' || *p == '\\') sb_put(b, "\\", 1);
        sb_put(b, p, 1);
    }
    sb_put(b, "\"", 1);
}

static void emit_node(sbuf *b, const cfg_node *n, bool nested)
{
    if (n->kind == CFG_SCALAR) {
        emit_scalar(b, n, nested);
        return;
    }
    bool map = n->kind == CFG_MAP;
    sb_str(b, map ? "{" : "[");
    for (size_t i = 0; i < n->n; i++) {
        if (i) sb_str(b, ", ");
        if (map) {
            sb_str(b, n->items[i]->key);
            sb_str(b, ": ");
        }
        emit_node(b, n->items[i], true);
    }
    sb_str(b, map ? "}" : "]");
}

static bool same_tree(const cfg_node *a, const cfg_node *b)
{
    if (a->kind != b->kind || a->n != b->n) return false;
    if ((a->key == NULL) != (b->key == NULL) || (a->key && strcmp(a->key, b->key))) return false;
    if (a->kind == CFG_SCALAR) return a->quoted == b->quoted && !strcmp(a->value, b->value);
    for (size_t i = 0; i < a->n; i++)
        if (!same_tree(a->items[i], b->items[i])) return false;
    return true;
}

/* The --set text of a value node; checked by parsing it back, so that what a point applies is
 * exactly what the sweep file says. */
static abl_status node_text(cfg_node *n, const char *what, char **out, abl_error *err)
{
    char where[600];
    cfg_where(n, where, sizeof where);
    sbuf b = {0};
    emit_node(&b, n, false);
    if (b.oom) {
        free(b.s);
        return abl_fail(err, ABL_ENOMEM, "out of memory");
    }
    if (!b.s || !b.s[0]) {
        free(b.s);
        return abl_fail(err, ABL_EINVAL, "%s: %s: an empty value cannot be set; write a value",
                        where, what);
    }
    if (strpbrk(b.s, "\n\r")) {
        /* a --set line is one line (checkpoints record it so, config.c refuses a break); the
         * message must be one line too (found by an adversarial review, session 23) */
        free(b.s);
        return abl_fail(err, ABL_EINVAL,
                        "%s: %s: a value with a line break cannot be a --set value; write it on "
                        "one line",
                        where, what);
    }
    cfg_node *back = NULL;
    abl_error e2 = {0};
    bool ok = cfg_parse_string(b.s, "value", &back, &e2) == ABL_OK;
    if (ok) {
        /* compare contents, not the key of the original node */
        char *key = n->key;
        n->key = NULL;
        ok = same_tree(n, back);
        n->key = key;
    }
    cfg_free(back);
    if (!ok) {
        abl_status st = abl_fail(err, ABL_EINVAL,
                                 "%s: %s: the value '%s' does not survive as a --set value; quote "
                                 "it or write it in flow style",
                                 where, what, b.s);
        free(b.s);
        return st;
    }
    *out = b.s;
    return ABL_OK;
}

/* ---- schema ------------------------------------------------------------------------------- */

static abl_status column_name_ok(cfg_node *n, const char *name, abl_error *err)
{
    char where[600];
    /* "." and ".." name the table group itself in results.h5 (an HDF5 link name) */
    if (!name[0] || strpbrk(name, ",\"/\n\r\t ") || strlen(name) > 200 || !strcmp(name, ".") ||
        !strcmp(name, ".."))
        return abl_fail(err, ABL_EINVAL,
                        "%s: column name '%s' must be 1..200 characters without spaces, commas, "
                        "quotes or '/', and not '.' or '..'",
                        cfg_where(n, where, sizeof where), name);
    return ABL_OK;
}

static abl_status key_ok(cfg_node *n, const char *key, abl_error *err)
{
    char where[600];
    cfg_where(n, where, sizeof where);
    if (!key[0] || strpbrk(key, "= \t\n\r") || key[0] == '.' || key[strlen(key) - 1] == '.' ||
        strstr(key, ".."))
        return abl_fail(err, ABL_EINVAL,
                        "%s: key '%s' must be a dotted scenario key without spaces or '=', e.g. "
                        "sources.0.power_W",
                        where, key);
    return ABL_OK;
}

static sweep_key *add_key(abl_sweep *sw)
{
    sweep_key *k = realloc(sw->keys, (size_t)(sw->nkeys + 1) * sizeof *k);
    if (!k) return NULL;
    sw->keys = k;
    memset(&k[sw->nkeys], 0, sizeof *k);
    return &k[sw->nkeys++];
}

static abl_status key_and_column(cfg_node *item, sweep_key *k, abl_error *err)
{
    const char *key, *col;
    abl_status st;
    if ((st = cfg_get_string(item, "key", true, NULL, &key, err)) ||
        (st = key_ok(cfg_get(item, "key"), key, err)) ||
        (st = cfg_get_string(item, "name", false, key, &col, err)) ||
        (st = column_name_ok(cfg_get(item, "name") ? cfg_get(item, "name") : item, col, err)))
        return st;
    k->key = sweep_strdup(key);
    k->column = sweep_strdup(col);
    k->line = item->line;
    if (!k->key || !k->column) return abl_fail(err, ABL_ENOMEM, "out of memory");
    return ABL_OK;
}

static abl_status parse_range(cfg_node *r, bool log_, sweep_key *k, abl_error *err)
{
    static const cfg_range pos = {0, INFINITY, true, false, NULL};
    abl_status st;
    double from, to;
    long count;
    if ((st = cfg_expect(r, CFG_MAP, true, "a mapping {from, to, count}", err)) ||
        (st = cfg_check_decl(r, &range_keys, CFG_ALL_VARIANTS, err)) ||
        (st = cfg_get_double(r, "from", true, 0, log_ ? &pos : NULL, &from, err)) ||
        (st = cfg_get_double(r, "to", true, 0, log_ ? &pos : NULL, &to, err)) ||
        (st = cfg_get_long(r, "count", true, 0, 1, SWEEP_MAX_POINTS, &count, err)))
        return st;
    k->values = calloc((size_t)count, sizeof *k->values);
    if (!k->values) return abl_fail(err, ABL_ENOMEM, "out of memory");
    k->nvalues = (size_t)count;
    for (long i = 0; i < count; i++) {
        /* End points exact; inner points from the start so that errors do not accumulate. */
        double t = count > 1 ? (double)i / (double)(count - 1) : 0.0, v;
        if (i == count - 1 && count > 1)
            v = to;
        else if (log_)
            v = from * pow(to / from, t);
        else
            v = from + (to - from) * t;
        if (!(k->values[i] = fmt15(v))) return abl_fail(err, ABL_ENOMEM, "out of memory");
    }
    return ABL_OK;
}

static abl_status parse_axis(cfg_node *item, abl_sweep *sw, abl_error *err)
{
    abl_status st;
    char where[600];
    if ((st = cfg_expect(item, CFG_MAP, true, "a mapping {key: ..., values: [...]}", err)) ||
        (st = cfg_check_decl(item, &axis_keys, CFG_ALL_VARIANTS, err)))
        return st;
    sweep_key *k = add_key(sw);
    if (!k) return abl_fail(err, ABL_ENOMEM, "out of memory");
    sw->naxes++;
    if ((st = key_and_column(item, k, err))) return st;
    cfg_node *vals = cfg_get(item, "values"), *lin = cfg_get(item, "linspace"),
             *lg = cfg_get(item, "logspace");
    int given = (vals != NULL) + (lin != NULL) + (lg != NULL);
    if (given != 1)
        return abl_fail(err, ABL_EINVAL,
                        "%s: axis '%s' needs exactly one of values, linspace or logspace (%s)",
                        cfg_where(item, where, sizeof where), k->key,
                        given ? "more than one given" : "none given");
    if (lin) return parse_range(lin, false, k, err);
    if (lg) return parse_range(lg, true, k, err);
    if ((st = cfg_expect(vals, CFG_SEQ, true, "a list of values, e.g. [20, 30, 40]", err)))
        return st;
    if (vals->n == 0)
        return abl_fail(err, ABL_EINVAL, "%s: axis '%s': 'values' is empty; give at least one",
                        cfg_where(vals, where, sizeof where), k->key);
    if (vals->n > (size_t)SWEEP_MAX_POINTS)
        return abl_fail(err, ABL_EINVAL, "%s: axis '%s': %zu values, more than the %ld points a "
                        "sweep may have; split the sweep",
                        cfg_where(vals, where, sizeof where), k->key, vals->n, SWEEP_MAX_POINTS);
    k->values = calloc(vals->n, sizeof *k->values);
    if (!k->values) return abl_fail(err, ABL_ENOMEM, "out of memory");
    k->nvalues = vals->n;
    for (size_t i = 0; i < vals->n; i++) {
        char what[300];
        snprintf(what, sizeof what, "axis '%s' value %zu", k->key, i);
        if ((st = node_text(vals->items[i], what, &k->values[i], err))) return st;
    }
    return ABL_OK;
}

static abl_status parse_param(cfg_node *item, abl_sweep *sw, abl_error *err)
{
    static const char *const dists[] = {"normal", "uniform", "lognormal"};
    static const char *const need[][2] = {{"mean", "sd"}, {"low", "high"}, {"mu", "sigma"}};
    static const cfg_range pos = {0, INFINITY, true, false, NULL};
    abl_status st;
    char where[600];
    int d;
    if ((st = cfg_expect(item, CFG_MAP, true, "a mapping {key, distribution, ...}", err)) ||
        (st = cfg_check_decl(item, &param_keys, CFG_ALL_VARIANTS, err)))
        return st;
    sweep_key *k = add_key(sw);
    if (!k) return abl_fail(err, ABL_ENOMEM, "out of memory");
    k->sampled = true;
    if ((st = key_and_column(item, k, err)) ||
        (st = cfg_get_enum(item, "distribution", true, 0, dists, 3, &d, err)))
        return st;
    k->dist = (sweep_dist)d;
    for (int o = 0; o < 3; o++) {
        if (o == d) continue;
        for (int j = 0; j < 2; j++)
            if (cfg_get(item, need[o][j]) && strcmp(need[o][j], need[d][0]) &&
                strcmp(need[o][j], need[d][1]))
                return abl_fail(err, ABL_EINVAL,
                                "%s: '%s' belongs to the %s distribution; %s takes %s and %s",
                                cfg_where(cfg_get(item, need[o][j]), where, sizeof where),
                                need[o][j], dists[o], dists[d], need[d][0], need[d][1]);
    }
    if ((st = cfg_get_double(item, need[d][0], true, 0, NULL, &k->p1, err)) ||
        (st = cfg_get_double(item, need[d][1], true, 0, d == SWEEP_DIST_UNIFORM ? NULL : &pos,
                             &k->p2, err)))
        return st;
    if (d == SWEEP_DIST_UNIFORM && !(k->p2 > k->p1))
        return abl_fail(err, ABL_EINVAL,
                        "%s: uniform distribution of '%s': high = %g must be "
                        "greater than low = %g",
                        cfg_where(item, where, sizeof where), k->key, k->p2, k->p1);
    if (d == SWEEP_DIST_LOGNORMAL && !(k->p1 < 700))
        return abl_fail(err, ABL_EINVAL,
                        "%s: lognormal mu = %g: exp(mu) overflows; mu is the "
                        "mean of ln(x), allowed < 700",
                        cfg_where(item, where, sizeof where), k->p1);
    return ABL_OK;
}

static abl_status parse_sampling(cfg_node *s, abl_sweep *sw, abl_error *err)
{
    static const char *const methods[] = {"random", "latin_hypercube"};
    abl_status st;
    int m;
    long seed;
    char where[600];
    if ((st = cfg_expect(s, CFG_MAP, true, "a mapping {method, count, seed, parameters}", err)) ||
        (st = cfg_check_decl(s, &sampling_keys, CFG_ALL_VARIANTS, err)) ||
        (st = cfg_get_enum(s, "method", true, 0, methods, 2, &m, err)) ||
        (st = cfg_get_long(s, "count", true, 0, 1, SWEEP_MAX_POINTS, &sw->nsamples, err)) ||
        (st = cfg_get_long(s, "seed", false, 1, 0, 0x7fffffffffffffffL, &seed, err)))
        return st;
    sw->method = m == 0 ? SWEEP_SAMPLE_RANDOM : SWEEP_SAMPLE_LHS;
    sw->seed = (uint64_t)seed;
    cfg_node *params = cfg_get(s, "parameters");
    if ((st = cfg_expect(params, CFG_SEQ, true, "a list of parameters {key, distribution, ...}",
                         err)))
        return abl_fail(err, ABL_EINVAL,
                        "%s: sampling needs 'parameters': a list of {key, "
                        "distribution, ...}",
                        cfg_where(params ? params : s, where, sizeof where));
    if (params->n == 0)
        return abl_fail(err, ABL_EINVAL, "%s: sampling 'parameters' is empty",
                        cfg_where(params, where, sizeof where));
    for (size_t i = 0; i < params->n; i++)
        if ((st = parse_param(params->items[i], sw, err))) return st;
    return ABL_OK;
}

static abl_status parse_outputs(cfg_node *o, abl_sweep *sw, abl_error *err)
{
    static const char *const pm[] = {"auto", "true", "false"};
    static const cfg_range temp = {-200, 200, false, false, "degC"};
    abl_status st;
    int p;
    if ((st = cfg_expect(o, CFG_MAP, false, "a mapping of output options", err)) ||
        (st = cfg_check_decl(o, &outputs_keys, CFG_ALL_VARIANTS, err)) ||
        (st = cfg_get_double(o, "ablation_threshold_C", false, 55.0, &temp,
                             &sw->ablation_threshold_C, err)) ||
        (st = cfg_get_enum(o, "probability_map", false, 0, pm, 3, &p, err)) ||
        (st = cfg_get_bool(o, "per_tissue", true, &sw->per_tissue, err)))
        return st;
    sw->probability_map = p == 0 ? -1 : p == 1 ? 1 : 0;
    return ABL_OK;
}

static abl_status check_unique(const abl_sweep *sw, abl_error *err)
{
    /* the table's own columns, and the datasets results.h5 keeps beside them in /table
     * (sweep_table.c): a column of one of these names could not be written */
    static const char *const reserved[] = {"point", "status", "message", "set_args",
                                           "column_names", NULL};
    for (int a = 0; a < sw->nkeys; a++) {
        for (const char *const *r = reserved; *r; r++)
            if (!strcmp(sw->keys[a].column, *r))
                return abl_fail(err, ABL_EINVAL,
                                "%s:%d: column name '%s' is reserved for the results table; set "
                                "'name:' to another",
                                sw->path, sw->keys[a].line, *r);
        for (int b = 0; b < a; b++) {
            if (!strcmp(sw->keys[a].key, sw->keys[b].key))
                return abl_fail(err, ABL_EINVAL,
                                "%s:%d: key '%s' is swept twice (also at line %d); one key, one "
                                "axis or parameter",
                                sw->path, sw->keys[a].line, sw->keys[a].key, sw->keys[b].line);
            if (!strcmp(sw->keys[a].column, sw->keys[b].column))
                return abl_fail(err, ABL_EINVAL,
                                "%s:%d: column name '%s' is used twice (also at line %d)", sw->path,
                                sw->keys[a].line, sw->keys[a].column, sw->keys[b].line);
        }
    }
    return ABL_OK;
}

/* ---- expansion ---------------------------------------------------------------------------- */

static abl_status expand(abl_sweep *sw, abl_error *err)
{
    const int nk = sw->nkeys, na = sw->naxes, np = nk - na;
    size_t axis_points = 1;
    if (na > 0 && sw->combine == SWEEP_COMBINE_ZIP) {
        axis_points = sw->keys[0].nvalues;
        for (int a = 1; a < na; a++)
            if (sw->keys[a].nvalues != axis_points)
                return abl_fail(err, ABL_EINVAL,
                                "%s:%d: combine: zip needs axes of equal length; '%s' has %zu "
                                "values, '%s' (line %d) has %zu",
                                sw->path, sw->keys[a].line, sw->keys[a].key, sw->keys[a].nvalues,
                                sw->keys[0].key, sw->keys[0].line, axis_points);
    } else {
        /* The product is checked before each multiplication (n > MAX / points), never after:
         * a product that wrapped around size_t would pass an after-the-fact test. */
        for (int a = 0; a < na; a++) {
            const size_t nv = sw->keys[a].nvalues;
            if (nv > (size_t)SWEEP_MAX_POINTS / axis_points)
                return abl_fail(err, ABL_EINVAL,
                                "%s:%d: the grid of axes has more than %ld points (%zu so far "
                                "times %zu values of '%s'); split the sweep or use combine: zip",
                                sw->path, sw->keys[a].line, SWEEP_MAX_POINTS, axis_points, nv,
                                sw->keys[a].key);
            axis_points *= nv;
        }
    }
    size_t S = np > 0 ? (size_t)sw->nsamples : 1;
    if (axis_points > (size_t)SWEEP_MAX_POINTS || S > (size_t)SWEEP_MAX_POINTS / axis_points)
        return abl_fail(err, ABL_EINVAL,
                        "%s: %zu axis points x %zu samples is more than %ld points; split the "
                        "sweep",
                        sw->path, axis_points, S, SWEEP_MAX_POINTS);
    sw->npoints = axis_points * S;
    if (nk == 0) return ABL_OK;

    double *u = NULL;
    abl_status st;
    if (np > 0 && (st = sweep_unit_samples(sw->method, sw->nsamples, np, sw->seed, &u, err)))
        return st;
    /* sampled values are shared by every axis point (common random numbers: differences
     * between configurations are not blurred by different samples) */
    char **sampled = np > 0 ? calloc(S * (size_t)np, sizeof *sampled) : NULL;
    sw->value = calloc(sw->npoints * (size_t)nk, sizeof *sw->value);
    sw->set = calloc(sw->npoints * (size_t)nk, sizeof *sw->set);
    if (!sw->value || !sw->set || (np > 0 && !sampled)) {
        free(u);
        free(sampled);
        return abl_fail(err, ABL_ENOMEM, "out of memory expanding %zu points", sw->npoints);
    }
    for (size_t s = 0; s < S && np > 0; s++)
        for (int q = 0; q < np; q++) {
            double v = dist_value(&sw->keys[na + q], u[s * (size_t)np + q]);
            if (!isfinite(v)) {
                free(u);
                for (size_t i = 0; i < s * (size_t)np + (size_t)q; i++)
                    free(sampled[i]);
                free(sampled);
                return abl_fail(err, ABL_EINVAL, "%s:%d: parameter '%s': a sample is not finite",
                                sw->path, sw->keys[na + q].line, sw->keys[na + q].key);
            }
            sampled[s * (size_t)np + q] = fmt15(v);
        }
    free(u);
    bool oom = false;
    for (size_t p = 0; p < sw->npoints; p++) {
        size_t ap = p / S, s = p % S, rest = ap;
        for (int a = na - 1; a >= 0; a--) {
            /* grid: the last axis varies fastest (nested loops in file order) */
            size_t n = sw->keys[a].nvalues, vi;
            if (sw->combine == SWEEP_COMBINE_ZIP)
                vi = ap;
            else {
                vi = rest % n;
                rest /= n;
            }
            sw->value[p * nk + a] = sw->keys[a].values[vi];
        }
        for (int q = 0; q < np; q++) {
            /* every axis point shares the sample's text */
            sw->value[p * nk + na + q] = sampled[s * (size_t)np + q];
        }
        for (int k = 0; k < nk; k++) {
            const char *v = sw->value[p * nk + k];
            size_t n = strlen(sw->keys[k].key) + strlen(v ? v : "") + 2;
            char *set = malloc(n);
            if (!set || !v) {
                free(set);
                oom = true;
                continue;
            }
            snprintf(set, n, "%s=%s", sw->keys[k].key, v);
            sw->set[p * nk + k] = set;
        }
    }
    /* the sampled texts are owned by their keys from here (as axis values are) */
    for (int q = 0; q < np && !oom; q++) {
        sweep_key *k = &sw->keys[na + q];
        k->values = calloc(S, sizeof *k->values);
        if (!k->values) {
            oom = true;
            break;
        }
        k->nvalues = S;
        for (size_t s = 0; s < S; s++) {
            k->values[s] = sampled[s * (size_t)np + q];
            sampled[s * (size_t)np + q] = NULL;
        }
    }
    if (np > 0)
        for (size_t i = 0; i < S * (size_t)np; i++)
            free(sampled[i]);
    free(sampled);
    if (oom) return abl_fail(err, ABL_ENOMEM, "out of memory expanding %zu points", sw->npoints);
    return ABL_OK;
}

static abl_status parse_root(cfg_node *root, abl_sweep *sw, const char *dir, abl_error *err)
{
    static const char *const combine[] = {"grid", "zip"};
    abl_status st;
    const char *base, *outdir;
    int c;
    char where[600];
    if ((st = cfg_check_decl(root, &root_keys, CFG_ALL_VARIANTS, err)) ||
        (st = cfg_get_string(root, "base", true, NULL, &base, err)) ||
        (st = cfg_get_string(root, "output_dir", true, NULL, &outdir, err)) ||
        (st = cfg_get_enum(root, "combine", false, 0, combine, 2, &c, err)) ||
        (st = cfg_get_bool(root, "fields", false, &sw->fields, err)) ||
        (st = parse_outputs(cfg_get(root, "outputs"), sw, err)))
        return st;
    sw->combine = (sweep_combine)c;
    sw->base_path = sweep_join(dir, base);
    /* like output.file of a scenario (and `ablasim run -o`): relative to the working directory */
    sw->output_dir = sweep_strdup(outdir);
    if (!sw->base_path || !sw->output_dir) return abl_fail(err, ABL_ENOMEM, "out of memory");
    cfg_node *axes = cfg_get(root, "axes");
    if ((st = cfg_expect(axes, CFG_SEQ, false,
                         "a list of axes {key, values | linspace | "
                         "logspace}",
                         err)))
        return st;
    for (size_t i = 0; axes && i < axes->n; i++)
        if ((st = parse_axis(axes->items[i], sw, err))) return st;
    cfg_node *samp = cfg_get(root, "sampling");
    if (samp && (st = parse_sampling(samp, sw, err))) return st;
    if (sw->nkeys == 0)
        return abl_fail(err, ABL_EINVAL,
                        "%s: nothing to sweep: give 'axes' and/or 'sampling' (see "
                        "docs/SWEEPS.md)",
                        cfg_where(axes ? axes : root, where, sizeof where));
    if ((st = check_unique(sw, err))) return st;
    return expand(sw, err);
}

abl_status sweep_load_string(const char *text, const char *origin, const char *dir, abl_sweep **out,
                             abl_error *err)
{
    *out = NULL;
    abl_sweep *sw = calloc(1, sizeof *sw);
    if (!sw) return abl_fail(err, ABL_ENOMEM, "out of memory");
    sw->path = sweep_strdup(origin);
    sw->text = sweep_strdup(text);
    sw->probability_map = -1;
    sw->ablation_threshold_C = 55.0;
    sw->per_tissue = true;
    cfg_node *root = NULL;
    abl_status st = !sw->path || !sw->text ? abl_fail(err, ABL_ENOMEM, "out of memory")
                                           : cfg_parse_string(text, origin, &root, err);
    if (!st && root->kind != CFG_MAP)
        st = abl_fail(err, ABL_EINVAL, "%s:%d: the sweep file must be a YAML mapping of keys",
                      origin, root->line);
    if (!st) st = parse_root(root, sw, dir, err);
    cfg_free(root);
    if (st) {
        sweep_free(sw);
        return st;
    }
    *out = sw;
    return ABL_OK;
}

abl_status sweep_load(const char *path, abl_sweep **out, abl_error *err)
{
    *out = NULL;
    /* A FIFO, device or socket would block the read or feed it endless bytes: refused before
     * it is opened. */
    abl_status rst = fg_require_regular("sweep file", path, err);
    if (rst) return rst;
    /* The config tree checks the file (directory, syntax, mapping) with its usual messages;
     * the text is read separately because the results file keeps it. */
    cfg_node *probe = NULL;
    abl_status st = cfg_load_file(path, &probe, err);
    cfg_free(probe);
    if (st) return st;
    FILE *f = fopen(path, "rb");
    if (!f) return abl_fail(err, ABL_EIO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 4096, len = 0;
    char *text = malloc(cap);
    while (text) {
        if (len + 1 >= cap) {
            if (cap > ((size_t)16 << 20)) {
                free(text);
                fclose(f);
                return abl_fail(err, ABL_EINVAL, "%s: larger than 16 MiB; not a sweep file", path);
            }
            char *t = realloc(text, cap * 2);
            if (!t) {
                free(text);
                text = NULL;
                break;
            }
            text = t;
            cap *= 2;
        }
        size_t r = fread(text + len, 1, cap - len - 1, f);
        len += r;
        if (r == 0) break;
    }
    int rerr = ferror(f);
    fclose(f);
    if (!text) return abl_fail(err, ABL_ENOMEM, "out of memory reading %s", path);
    if (rerr) {
        free(text);
        return abl_fail(err, ABL_EIO, "%s: read error", path);
    }
    text[len] = '\0';
    char *dir = sweep_strdup(path);
    if (!dir) {
        free(text);
        return abl_fail(err, ABL_ENOMEM, "out of memory");
    }
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    else
        strcpy(dir, ".");
    st = sweep_load_string(text, path, dir, out, err);
    free(dir);
    free(text);
    return st;
}

void sweep_free(abl_sweep *sw)
{
    if (!sw) return;
    if (sw->set)
        for (size_t i = 0; i < sw->npoints * (size_t)sw->nkeys; i++)
            free(sw->set[i]);
    free(sw->set);
    free(sw->value); /* entries point into keys[].values */
    for (int k = 0; k < sw->nkeys; k++) {
        for (size_t i = 0; i < sw->keys[k].nvalues; i++)
            free(sw->keys[k].values[i]);
        free(sw->keys[k].values);
        free(sw->keys[k].key);
        free(sw->keys[k].column);
    }
    free(sw->keys);
    layout_free(sw->layout);
    free(sw->path);
    free(sw->text);
    free(sw->base_path);
    free(sw->output_dir);
    for (int i = 0; i < sw->nextra; i++)
        free(sw->extra_path[i]);
    free(sw);
}

const char *const *sweep_point_sets(const abl_sweep *sw, size_t i)
{
    return (const char *const *)&sw->set[i * (size_t)sw->nkeys];
}

/* One shell word: as it is when every character is one a shell leaves alone, else in single
 * quotes with each ' written '\'' . out NULL: the length only. */
static size_t shell_word(const char *s, char *out)
{
    static const char plain_chars[] =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.,:/=+-@%";
    bool plain = *s != '\0';
    for (const char *p = s; *p && plain; p++) plain = strchr(plain_chars, *p) != NULL;
    size_t n = 0;
    if (!plain && out) out[n] = '\'';
    n += !plain;
    for (const char *p = s; *p; p++) {
        if (!plain && *p == '\'') {
            if (out) memcpy(out + n, "'\\''", 4);
            n += 4;
        } else {
            if (out) out[n] = *p;
            n++;
        }
    }
    if (!plain && out) out[n] = '\'';
    n += !plain;
    return n;
}

char *sweep_set_args(const abl_sweep *sw, size_t i)
{
    const char *const *sets = sweep_point_sets(sw, i);
    size_t len = 1;
    for (int k = 0; k < sw->nkeys; k++) len += 7 + shell_word(sets[k], NULL);
    char *a = malloc(len), *o = a;
    if (!a) return NULL;
    for (int k = 0; k < sw->nkeys; k++) {
        memcpy(o, k ? " --set " : "--set ", k ? 7 : 6);
        o += k ? 7 : 6;
        o += shell_word(sets[k], o);
    }
    *o = '\0';
    return a;
}

uint64_t sweep_point_hash(const abl_sweep *sw, size_t i)
{
    uint64_t h = ABL_FNV1A_INIT;
    for (int k = 0; k < sw->nkeys; k++) {
        const char *s = sw->set[i * (size_t)sw->nkeys + k];
        h = abl_fnv1a(h, s, strlen(s));
        h = abl_fnv1a(h, "\n", 1);
    }
    return h;
}
