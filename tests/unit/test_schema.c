/* test_schema.c - the I/O toolkit (issue 19 item 4): every constant of h5_schema.h equals the
 * one of scripts/ablasim_h5.py (the scripts' copy), the JSON emitter (shortest round-trip
 * numbers, escaping, layout) and the atomic-commit helper (fresh temporary, no symlink
 * followed, abort removes). Suite "schema". */
#include <CUnit/CUnit.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../src/formats/atomic_file.h"
#include "ablasim/fields.h"
#include "ablasim/h5_schema.h"
#include "ablasim/json_writer.h"
#include "testutil.h"

#define MAXC 256

typedef struct {
    int n;
    char name[MAXC][64];
    char value[MAXC][160];
} consts;

static const char *lookup(const consts *c, const char *name)
{
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->name[i], name)) return c->value[i];
    return NULL;
}

/* "#define NAME tokens [comment]" with tokens string literals or earlier names. 0 or -1. */
static int parse_header(const char *path, consts *c)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[1024];
    int bad = 0;
    c->n = 0;
    while (fgets(line, sizeof line, f)) {
        char name[64];
        int off = 0;
        if (sscanf(line, "#define %63s %n", name, &off) != 1 || strncmp(name, "H5", 2)) continue;
        char *p = line + off, *cm = strstr(p, "/*");
        if (cm) *cm = '\0';
        char val[160] = "";
        while (*p) {
            if (*p == ' ' || *p == '\t' || *p == '\n') {
                p++;
            } else if (*p == '"') {
                char *q = strchr(p + 1, '"');
                if (!q) break;
                strncat(val, p + 1, (size_t)(q - p - 1));
                p = q + 1;
            } else {
                char id[64];
                int k = 0;
                while ((*p == '_' || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')) && k < 63)
                    id[k++] = *p++;
                id[k] = '\0';
                const char *v = k ? lookup(c, id) : NULL;
                if (!v) {
                    printf("\n  %s: %s uses unknown token at '%s'", path, name, p);
                    bad = 1;
                    break;
                }
                strcat(val, v);
            }
        }
        if (c->n < MAXC) {
            snprintf(c->name[c->n], sizeof c->name[0], "%s", name);
            snprintf(c->value[c->n], sizeof c->value[0], "%s", val);
            c->n++;
        }
    }
    fclose(f);
    return bad ? -1 : 0;
}

/* NAME = "value" lines of the Python module. */
static int parse_python(const char *path, consts *c)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[1024];
    c->n = 0;
    while (fgets(line, sizeof line, f)) {
        char name[64], val[160];
        if (strncmp(line, "H5", 2) || sscanf(line, "%63s = \"%159[^\"]\"", name, val) != 2)
            continue;
        if (c->n < MAXC) {
            snprintf(c->name[c->n], sizeof c->name[0], "%s", name);
            snprintf(c->value[c->n], sizeof c->value[0], "%s", val);
            c->n++;
        }
    }
    fclose(f);
    return 0;
}

static void test_python_matches_header(void)
{
    static consts h, py;
    char hp[600], pp[600];
    snprintf(hp, sizeof hp, "%s/include/ablasim/h5_schema.h", tu_root());
    snprintf(pp, sizeof pp, "%s/scripts/ablasim_h5.py", tu_root());
    CU_ASSERT_FATAL(parse_header(hp, &h) == 0);
    CU_ASSERT_FATAL(parse_python(pp, &py) == 0);
    CU_ASSERT(h.n > 60);
    /* the parser reads the header as the compiler does */
    CU_ASSERT_STRING_EQUAL(lookup(&h, "H5_T_MAX"), H5_T_MAX);
    CU_ASSERT_STRING_EQUAL(lookup(&h, "H5_SNAP_FRAME_FMT"), H5_SNAP_FRAME_FMT);
    CU_ASSERT_STRING_EQUAL(lookup(&h, "H5M_TUMOUR_MASK"), H5M_TUMOUR_MASK);
    CU_ASSERT_STRING_EQUAL(lookup(&h, "H5_FIELD_TIME_BELOW_FMT"), H5_FIELD_TIME_BELOW_FMT);
    for (int i = 0; i < h.n; i++) {
        const char *v = lookup(&py, h.name[i]);
        if (!v || strcmp(v, h.value[i])) {
            printf("\n  %s: %s = \"%s\" in h5_schema.h, %s%s%s in ablasim_h5.py", pp, h.name[i],
                   h.value[i], v ? "\"" : "", v ? v : "missing", v ? "\"" : "");
            CU_FAIL("ablasim_h5.py differs from h5_schema.h");
        }
    }
    for (int i = 0; i < py.n; i++)
        if (!lookup(&h, py.name[i])) {
            printf("\n  %s: %s is not in h5_schema.h", pp, py.name[i]);
            CU_FAIL("ablasim_h5.py has a name h5_schema.h lacks");
        }
}

/* The field table (field_rows.h) names each map once: no two rows share a checkpoint dataset or a
 * result dataset, and every name is a plain HDF5 link name (no '/', printable). A copied row that
 * kept its neighbour's name would make the checkpoint restore one map into two and the result
 * writer fail on the second dataset; this catches it when the row is written. */
static void test_field_table_names(void)
{
    CU_ASSERT_FATAL(abl_field_table_rows >= 11);
    for (size_t r = 0; r < abl_field_table_rows; r++) {
        const abl_field_def *a = &abl_field_table[r];
        CU_ASSERT_PTR_NOT_NULL_FATAL(a->state_name);
        CU_ASSERT(strchr(a->state_name, '/') == NULL);
        CU_ASSERT((a->result_name != NULL) == ((a->flags & ABL_FIELD_RESULT) != 0));
        CU_ASSERT(!(a->flags & ABL_FIELD_XDMF) || (a->flags & ABL_FIELD_RESULT));
        if (a->result_name) CU_ASSERT(strchr(a->result_name, '/') == NULL);
        for (size_t q = r + 1; q < abl_field_table_rows; q++) {
            const abl_field_def *b = &abl_field_table[q];
            if (!strcmp(a->state_name, b->state_name) ||
                (a->result_name && b->result_name && !strcmp(a->result_name, b->result_name))) {
                printf("\n  field_rows.h: rows %zu and %zu share a name (%s / %s)", r, q,
                       a->state_name, a->result_name ? a->result_name : "-");
                CU_FAIL("two field-table rows share a dataset name");
            }
        }
    }
}

static void test_json_numbers(void)
{
    char b[40];
    json_fmt_double(b, sizeof b, 0.1);
    CU_ASSERT_STRING_EQUAL(b, "0.1");
    json_fmt_double(b, sizeof b, 37);
    CU_ASSERT_STRING_EQUAL(b, "37");
    json_fmt_double(b, sizeof b, 1.0 / 3.0);
    CU_ASSERT_STRING_EQUAL(b, "0.3333333333333333");
    json_fmt_double(b, sizeof b, 0.1 + 0.2);
    CU_ASSERT_STRING_EQUAL(b, "0.30000000000000004");
    json_fmt_double(b, sizeof b, -0.0);
    CU_ASSERT_STRING_EQUAL(b, "-0");
    json_fmt_double(b, sizeof b, NAN);
    CU_ASSERT_STRING_EQUAL(b, "null");
    json_fmt_double(b, sizeof b, -INFINITY);
    CU_ASSERT_STRING_EQUAL(b, "null");
    /* every double reads back exactly, with no more significant digits than %.17g needs
     * (the text may still be longer: 1e16-scale integers print as "3.119227675698451e+16"
     * where %.17g gives "31192276756984512") */
    unsigned long long x = 0x9E3779B97F4A7C15ull;
    int bad = 0;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double v;
        memcpy(&v, &x, sizeof v);
        if (!isfinite(v)) continue;
        if (i & 1) v = (double)(x % 100000) / 1000.0;
        json_fmt_double(b, sizeof b, v);
        const double back = strtod(b, NULL);
        bad += memcmp(&back, &v, sizeof v) != 0 || strlen(b) > 24;
    }
    CU_ASSERT_EQUAL(bad, 0);
}

static void test_json_layout(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CU_ASSERT_FATAL(f != NULL);
    abl_json j;
    json_init(&j, f);
    json_begin_object(&j, NULL, false);
    json_str(&j, "s", "a\"b\\c\nd\x01");
    json_begin_object(&j, "grid", true);
    json_int_array(&j, "dims", (const int[3]){1, 2, 3}, 3);
    json_num(&j, "v", 0.5);
    json_end_object(&j);
    json_begin_object(&j, "empty", false);
    json_end_object(&j);
    json_begin_array(&j, "list", false);
    json_begin_object(&j, NULL, false);
    json_bool(&j, "ok", true);
    json_null(&j, "none");
    json_end_object(&j);
    json_end_array(&j);
    json_begin_array(&j, "none", false);
    json_end_array(&j);
    json_uint(&j, "n", 18446744073709551615ull);
    json_end_object(&j);
    CU_ASSERT_EQUAL(json_finish(&j), 0);
    fclose(f);
    const char *want = "{\n"
                       "  \"s\": \"a\\\"b\\\\c\\nd\\u0001\",\n"
                       "  \"grid\": {\"dims\": [1, 2, 3], \"v\": 0.5},\n"
                       "  \"empty\": {},\n"
                       "  \"list\": [\n"
                       "    {\n"
                       "      \"ok\": true,\n"
                       "      \"none\": null\n"
                       "    }\n"
                       "  ],\n"
                       "  \"none\": [],\n"
                       "  \"n\": 18446744073709551615\n"
                       "}\n";
    CU_ASSERT_STRING_EQUAL(buf, want);
    if (strcmp(buf, want)) printf("\n%s", buf);
    free(buf);
}

static char *slurp(const char *p)
{
    FILE *f = fopen(p, "rb");
    if (!f) return NULL;
    static char b[256];
    size_t n = fread(b, 1, sizeof b - 1, f);
    b[n] = '\0';
    fclose(f);
    return b;
}

static void put(const char *p, const char *s)
{
    FILE *f = fopen(p, "w");
    if (f) {
        fputs(s, f);
        fclose(f);
    }
}

static void test_atomic_commit(void)
{
    char final[700], tmp[720], victim[700];
    snprintf(final, sizeof final, "%s/atomic.txt", tu_tmpdir());
    snprintf(tmp, sizeof tmp, "%s.tmp", final);
    snprintf(victim, sizeof victim, "%s/victim.txt", tu_tmpdir());
    put(final, "old");
    put(victim, "victim");
    unlink(tmp);
    CU_ASSERT_FATAL(symlink(victim, tmp) == 0); /* a symlink planted at the temporary's name */
    abl_atomic a;
    CU_ASSERT_FATAL(atomic_open(&a, final, ".tmp") == 0);
    CU_ASSERT(atomic_write(&a, "new", 3) == 0);
    CU_ASSERT_STRING_EQUAL(slurp(final), "old"); /* untouched until the commit */
    CU_ASSERT(atomic_commit(&a) == 0);
    atomic_abort(&a); /* after a commit: only frees */
    CU_ASSERT_STRING_EQUAL(slurp(final), "new");
    CU_ASSERT_STRING_EQUAL(slurp(victim), "victim"); /* the link was replaced, not followed */
    struct stat sb;
    CU_ASSERT(lstat(tmp, &sb) != 0);
    /* stream + abort: the final file stays, the temporary goes */
    CU_ASSERT_FATAL(atomic_open(&a, final, ".tmp") == 0);
    FILE *f = atomic_stream(&a);
    CU_ASSERT_FATAL(f != NULL);
    fputs("half", f);
    atomic_abort(&a);
    CU_ASSERT_STRING_EQUAL(slurp(final), "new");
    CU_ASSERT(lstat(tmp, &sb) != 0);
    /* reserved (a library writes by name), synced, renamed */
    CU_ASSERT_FATAL(atomic_reserve(&a, final, ".tmp") == 0);
    put(a.tmp, "lib");
    CU_ASSERT(atomic_sync(&a) == 0 && atomic_rename(&a) == 0);
    atomic_abort(&a);
    CU_ASSERT_STRING_EQUAL(slurp(final), "lib");
    /* a missing directory: an errno, nothing to clean up */
    char nodir[720];
    snprintf(nodir, sizeof nodir, "%s/no/such/dir/x", tu_tmpdir());
    CU_ASSERT(atomic_open(&a, nodir, ".tmp") == ENOENT);
    atomic_abort(&a);
    unlink(final);
    unlink(victim);
}

void register_schema_tests(void)
{
    CU_pSuite s = CU_add_suite("schema", NULL, NULL);
    CU_add_test(s, "ablasim_h5.py equals h5_schema.h", test_python_matches_header);
    CU_add_test(s, "field table: every map's datasets named once", test_field_table_names);
    CU_add_test(s, "JSON numbers: shortest round trip", test_json_numbers);
    CU_add_test(s, "JSON layout and escaping", test_json_layout);
    CU_add_test(s, "atomic commit: fresh temporary, abort", test_atomic_commit);
}
