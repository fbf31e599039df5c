/* test_config.c - YAML tree, --set overrides, schema errors with file:line, schedules, shape
 * rasterisation, tissue table. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ablasim/config.h"
#include "ablasim/scenario.h"
#include "ablasim/schedule.h"
#include "ablasim/shape.h"
#include "ablasim/sim.h"
#include "ablasim/sweep.h"
#include "ablasim/tissue.h"
#include "testutil.h"

static const char *base =
    "name: base\n"
    "grid:\n"
    "  dims: [10, 10, 10]\n"
    "  spacing_mm: [1, 1, 1]\n"
    "  background: liver\n"
    "time: {duration_s: 5}\n"
    "sources:\n"
    "  - {type: volumetric, power_W: 2, shape: {type: sphere, center_mm: [0, 0, 0], radius_mm: 2}}\n";

static void test_set_overrides(void)
{
    const char *sets[] = {"time.duration_s=12.5", "grid.spacing_mm=[0.5, 0.5, 2]",
                          "sources.0.power_W=7", "output.hot_thresholds_C=[45]",
                          "physics.arterial_temperature_C=36.5"};
    abl_scenario *sc = tu_scenario(base, sets, 5);
    CU_ASSERT_FATAL(sc != NULL);
    CU_ASSERT_DOUBLE_EQUAL(sc->duration_s, 12.5, 0);
    CU_ASSERT_DOUBLE_EQUAL(sc->spacing_m[2], 2e-3, 1e-18);
    CU_ASSERT_DOUBLE_EQUAL(schedule_eval(&sc->sources[0].schedule, 3.0), 7.0, 0);
    CU_ASSERT_EQUAL(sc->n_hot, 1);
    CU_ASSERT_DOUBLE_EQUAL(sc->T_arterial_C, 36.5, 0);
    /* the stored scenario text records the overrides */
    CU_ASSERT(strstr(sc->text, "# --set time.duration_s=12.5") != NULL);
    scenario_free(sc);
}

static abl_status load_err(const char *yaml, const char *const *sets, int nsets, abl_error *err)
{
    char dir[600];
    snprintf(dir, sizeof dir, "%s/configs", tu_root());
    abl_scenario *sc = NULL;
    abl_status st = scenario_load_string(yaml, "s.yaml", dir, sets, nsets, &sc, err);
    scenario_free(sc);
    return st;
}

static void test_errors_name_place(void)
{
    abl_error err = {0};
    /* an override with a line break (a checkpoint records one override a line: it came back
     * on resume as two overrides, or as one that no longer parses; adversarial review,
     * session 23) */
    const char *broken[2] = {"name=demo\nsources.0.power_W=1",
                             "output.hot_thresholds_C=[50,\n 55]"};
    for (int i = 0; i < 2; i++) {
        CU_ASSERT(load_err(base, &broken[i], 1, &err) == ABL_EINVAL);
        CU_ASSERT(strstr(err.msg, "an override with a line break is refused") != NULL);
    }
    /* a typo in a nested key: file, line, dotted path, and the allowed keys */
    const char *typo = "grid:\n  dims: [4, 4, 4]\n  spcing_mm: [1, 1, 1]\n  background: liver\n"
                       "time: {duration_s: 1}\n";
    CU_ASSERT(load_err(typo, NULL, 0, &err) == ABL_EINVAL);
    CU_ASSERT(strstr(err.msg, "s.yaml:3") && strstr(err.msg, "unknown key 'grid.spcing_mm'") &&
              strstr(err.msg, "spacing_mm"));
    /* out of range value with its unit */
    const char *sets[] = {"grid.spacing_mm=[1, 0, 1]"};
    CU_ASSERT(load_err(base, sets, 1, &err) == ABL_EINVAL);
    CU_ASSERT(strstr(err.msg, "--set grid.spacing_mm") && strstr(err.msg, "spacing_mm[1]") &&
              strstr(err.msg, "out of range"));
    /* --set of a key the schema does not know is an unknown key, not silently added */
    const char *sets2[] = {"time.duraton_s=5"};
    CU_ASSERT(load_err(base, sets2, 1, &err) == ABL_EINVAL);
    CU_ASSERT(strstr(err.msg, "unknown key 'time.duraton_s'") != NULL);
    /* list index out of range */
    const char *sets3[] = {"sources.3.power_W=5"};
    CU_ASSERT(load_err(base, sets3, 1, &err) == ABL_EINVAL);
    CU_ASSERT(strstr(err.msg, "must index the list") != NULL);
    /* duplicate key */
    CU_ASSERT(load_err("time: {duration_s: 1}\ntime: {duration_s: 2}\n", NULL, 0, &err) ==
              ABL_EINVAL);
    CU_ASSERT(strstr(err.msg, "appears twice") != NULL);
    /* quoted number is text, not a number */
    const char *sets4[] = {"time.duration_s='5'"};
    CU_ASSERT(load_err(base, sets4, 1, &err) == ABL_EINVAL);
    CU_ASSERT(strstr(err.msg, "remove the quotes") != NULL);
}

static void test_schedule(void)
{
    abl_schedule s = {0};
    cfg_node *n = NULL;
    abl_error err = {0};
    CU_ASSERT_FATAL(cfg_parse_string("[{time_s: 0, power_W: 0}, {time_s: 10, power_W: 20},"
                                     " {time_s: 20, power_W: 20}, {time_s: 20, power_W: 5}]",
                                     "sched", &n, &err) == ABL_OK);
    cfg_range r = {0, 100, false, false, "W"};
    CU_ASSERT_FATAL(schedule_parse(n, "power_W", &r, &s, &err) == ABL_OK);
    CU_ASSERT_DOUBLE_EQUAL(schedule_eval(&s, -1), 0, 0);
    CU_ASSERT_DOUBLE_EQUAL(schedule_eval(&s, 5), 10, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(schedule_eval(&s, 19.999), 20, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(schedule_eval(&s, 20), 5, 0); /* a step at t = 20 s */
    CU_ASSERT_DOUBLE_EQUAL(schedule_eval(&s, 1e6), 5, 0);
    schedule_free(&s);
    cfg_free(n);
    /* the allowed keys of a point come from the declaration, by value key */
    CU_ASSERT_FATAL(cfg_parse_string("[{time_s: 0, power_W: 1, temperature_C: 2}]", "sched", &n,
                                     &err) == ABL_OK);
    CU_ASSERT(schedule_parse(n, "power_W", &r, &s, &err) == ABL_EINVAL);
    CU_ASSERT(strstr(err.msg, "unknown key '[0].temperature_C'; allowed here: time_s, power_W") !=
              NULL);
    CU_ASSERT(schedule_parse(n, "temperature_C", &r, &s, &err) == ABL_EINVAL);
    CU_ASSERT(strstr(err.msg, "unknown key '[0].power_W'; allowed here: time_s, temperature_C") !=
              NULL);
    CU_ASSERT(schedule_parse(n, "voltage_V", &r, &s, &err) == ABL_EINVAL);
    cfg_free(n);
}

/* Rasterised volume of a sphere converges to 4/3 pi r^3: r = 10 voxels gives ~4200 voxels, the
 * staircase error is O(h/r) per surface voxel and averages out; 2 % is generous for r/h = 10. */
static void test_shape_volume(void)
{
    abl_grid g;
    abl_error err = {0};
    int dims[3] = {30, 30, 30};
    double h[3] = {1e-3, 1e-3, 1e-3}, o[3] = {-14.5e-3, -14.5e-3, -14.5e-3};
    CU_ASSERT_FATAL(grid_init(&g, dims, h, o, &err) == ABL_OK);
    abl_shape sp = {.type = SHAPE_SPHERE, .centre_m = {0.2e-3, 0, -0.3e-3},
                    .radii_m = {10e-3, 10e-3, 10e-3}, .radius_m = 10e-3};
    size_t *idx, cnt;
    CU_ASSERT_FATAL(shape_voxels(&sp, &g, &idx, &cnt, &err) == ABL_OK);
    double V = cnt * 1e-9, exact = 4.0 / 3.0 * 3.14159265358979 * 1e-6;
    CU_ASSERT(fabs(V / exact - 1) < 0.02);
    free(idx);
    /* oblique cylinder: pi r^2 L, r = 4, L = 20 voxels */
    abl_shape cy = {.type = SHAPE_CYLINDER, .a_m = {-6e-3, -6e-3, -6e-3},
                    .b_m = {5.547e-3, 5.547e-3, 5.547e-3}, .radius_m = 4e-3};
    CU_ASSERT_FATAL(shape_voxels(&cy, &g, &idx, &cnt, &err) == ABL_OK);
    exact = 3.14159265358979 * 16e-6 * 20e-3;
    CU_ASSERT(fabs(cnt * 1e-9 / exact - 1) < 0.04);
    free(idx);
}

static void test_tissue_table(void)
{
    char path[600];
    snprintf(path, sizeof path, "%s/configs/tissues.yaml", tu_root());
    abl_tissue_table tab;
    abl_error err = {0};
    CU_ASSERT_FATAL(tissue_table_load(path, NULL, &tab, &err) == ABL_OK);
    int liver = tissue_table_find(&tab, "liver");
    CU_ASSERT_FATAL(liver >= 0);
    /* IT'IS V4.x liver (tissue-properties.md): rho 1079, c 3540, k 0.52, w 1.547e-2 */
    CU_ASSERT_DOUBLE_EQUAL(tab.t[liver].rho_kg_m3, 1079, 1);
    CU_ASSERT_DOUBLE_EQUAL(tab.t[liver].k_W_mK, 0.52, 0.005);
    CU_ASSERT_DOUBLE_EQUAL(tab.t[liver].perfusion_per_s, 1.547e-2, 1e-4);
    const char *need[] = {"tumour", "muscle", "fat", "blood", "bone_cortical", "bone_cancellous",
                          "lung_inflated", "nerve", "spinal_cord", "saline"};
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++)
        CU_ASSERT(tissue_table_find(&tab, need[i]) >= 0);
    tissue_table_free(&tab);
}

/* README "Scenario reference" is the output of scenario_reference_markdown (make readme-keys
 * writes it between the keys:begin/keys:end markers): a key added, renamed or re-documented in a
 * declaration table without regenerating the README fails here, so the two cannot drift. */
static void test_readme_keys(void)
{
    CU_ASSERT(tu_generated_section_matches("README.md", "keys", scenario_reference_markdown));
}

/* The same for the other generated key tables: docs/SWEEPS.md (sweep file keys) and the source
 * types' own keys in docs/RFA.md, docs/MWA.md, docs/CRYO.md. */
static int rfa_reference(FILE *f)
{
    return scenario_source_reference_markdown(f, "rfa");
}
static int mwa_reference(FILE *f)
{
    return scenario_source_reference_markdown(f, "mwa");
}
static int cryo_reference(FILE *f)
{
    return scenario_source_reference_markdown(f, "cryo");
}

static int vessel_reference(FILE *f)
{
    return scenario_source_reference_markdown(f, "vessel");
}

static void test_doc_key_tables(void)
{
    CU_ASSERT(tu_generated_section_matches("docs/SWEEPS.md", "sweep-keys",
                                           sweep_reference_markdown));
    CU_ASSERT(tu_generated_section_matches("docs/RFA.md", "rfa-keys", rfa_reference));
    CU_ASSERT(tu_generated_section_matches("docs/MWA.md", "mwa-keys", mwa_reference));
    CU_ASSERT(tu_generated_section_matches("docs/CRYO.md", "cryo-keys", cryo_reference));
    CU_ASSERT(tu_generated_section_matches("docs/VESSEL.md", "vessel-keys", vessel_reference));
    /* a type without own keys has no table */
    CU_ASSERT(scenario_source_reference_markdown(stdout, "volumetric") == 1);
}

/* The unknown-key check reads the allowed keys from a declaration table, in its order, keeping
 * to a variant where the table has them (a key of another variant is unknown). */
static void test_key_declarations(void)
{
    static const cfg_keydecl decl[] = {
        CFG_KEY("mode", NULL, NULL, NULL, NULL),
        {NULL, NULL, NULL, NULL, "a row of the reference only", .label = "`  note`"},
        {"a_mm", NULL, NULL, NULL, NULL, .variants = 1u << 0},
        {"b_mm", NULL, NULL, NULL, NULL, .variants = 1u << 1},
        CFG_KEY("shared", NULL, NULL, NULL, NULL),
    };
    static const cfg_keytable t = CFG_KEYTABLE(decl);
    cfg_node *map = NULL;
    abl_error err = {0};
    CU_ASSERT_FATAL(cfg_parse_string("mode: x\nb_mm: 1\nshared: 2\n", "t.yaml", &map, &err) ==
                    ABL_OK);
    CU_ASSERT(cfg_check_decl(map, &t, 1, &err) == ABL_OK);
    CU_ASSERT(cfg_check_decl(map, &t, CFG_ALL_VARIANTS, &err) == ABL_OK);
    CU_ASSERT(cfg_check_decl(map, &t, 0, &err) == ABL_EINVAL);
    CU_ASSERT(strstr(err.msg, "t.yaml:2: unknown key 'b_mm'; allowed here: mode, a_mm, shared") !=
              NULL);
    const char *names[8];
    size_t n = 0;
    cfg_decl_names(&t, CFG_ALL_VARIANTS, names, &n, 8);
    CU_ASSERT(n == 4 && !strcmp(names[1], "a_mm") && !strcmp(names[3], "shared"));
    cfg_free(map);

    char *md = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&md, &len);
    CU_ASSERT_FATAL(m != NULL);
    CU_ASSERT(cfg_decl_markdown(m, &t, "p.") == 0);
    fclose(m);
    CU_ASSERT(md && strstr(md, "| `p.mode` | | | | |\n| `  note` | | | | a row of the reference "
                               "only |\n| `p.a_mm` |") == md);
    free(md);
}

/* physics.ex_vivo_temperature_C: one key for the five overrides an ex vivo case needed (no
 * perfusion, no metabolic heat, initial, arterial and face temperatures at the specimen's).
 * The scenario it gives equals the hand-written one field by field, also where the scenario
 * gives its own values (arterial 37 C, a convective face at 30 C, a tumour's perfusion), an
 * insulated face stays insulated, and ten steps give the same bits. */
static void test_ex_vivo(void)
{
    const char *yaml =
        "name: exv\n"
        "tissues_file: tissues.yaml\n"
        "grid: {dims: [12, 12, 12], spacing_mm: [1, 1, 1], background: liver,\n"
        "       shapes: [{type: sphere, center_mm: [0, 0, 0], radius_mm: 3, tissue: tumour}]}\n"
        "physics: {arterial_temperature_C: 37}\n"
        "tissues: {tumour: {perfusion_per_s: 0.004}}\n"
        "boundary: {default: {type: fixed_temperature, temperature_C: 37},\n"
        "           x_max: {type: convective, h_W_per_m2K: 10, temperature_C: 30},\n"
        "           z_min: {type: insulated}}\n"
        "time: {duration_s: 10}\n"
        "sources:\n"
        "  - {type: volumetric, power_W: 1, shape: {type: sphere, center_mm: [0, 0, 0], "
        "radius_mm: 2}}\n";
    const char *one[] = {"physics.ex_vivo_temperature_C=20"};
    const char *five[] = {"tissues.liver.perfusion_per_s=0", "tissues.liver.metabolic_heat_W_per_m3=0",
                          "tissues.tumour.perfusion_per_s=0", "tissues.tumour.metabolic_heat_W_per_m3=0",
                          "physics.initial_temperature_C=20", "physics.arterial_temperature_C=20",
                          "boundary.default.temperature_C=20", "boundary.x_max.temperature_C=20"};
    abl_scenario *a = tu_scenario(yaml, one, 1), *b = tu_scenario(yaml, five, 8);
    CU_ASSERT_FATAL(a != NULL && b != NULL);
    CU_ASSERT(a->ex_vivo && !b->ex_vivo && a->T_ex_vivo_C == 20.0);
    CU_ASSERT_EQUAL(a->T_initial_C, b->T_initial_C);
    CU_ASSERT_EQUAL(a->T_arterial_C, b->T_arterial_C);
    for (int f = 0; f < 6; f++) {
        CU_ASSERT_EQUAL(a->bc[f].type, b->bc[f].type);
        CU_ASSERT_EQUAL(a->bc[f].T_C, b->bc[f].T_C);
        CU_ASSERT_EQUAL(a->bc[f].h_W_m2K, b->bc[f].h_W_m2K);
    }
    CU_ASSERT_EQUAL(a->bc[4].type, BC_INSULATED); /* z_min */
    CU_ASSERT_EQUAL(a->tissues.n, b->tissues.n);
    for (int t = 0; t < a->tissues.n; t++) {
        CU_ASSERT_EQUAL(a->tissues.t[t].perfusion_per_s, 0.0);
        CU_ASSERT_EQUAL(a->tissues.t[t].q_met_W_m3, 0.0);
    }
    abl_sim *sa = tu_sim(a), *sb = tu_sim(b);
    abl_error err = {0};
    CU_ASSERT_FATAL(sim_step(sa, 10, &err) == ABL_OK && sim_step(sb, 10, &err) == ABL_OK);
    CU_ASSERT(memcmp(sa->T, sb->T, sa->grid.n * sizeof(double)) == 0);
    sim_destroy(sa);
    sim_destroy(sb);
    scenario_free(a);
    scenario_free(b);
}

/* A message longer than the buffer says it was cut and ends on a whole UTF-8 character (a long
 * path of two-byte characters was cut mid-character, which the JSON writer then replaced). */
static void test_error_message_cut(void)
{
    char path[3000];
    size_t n = 0;
    while (n + 2 < sizeof path - 1) { /* "é" = C3 A9, 1499 times */
        path[n++] = (char)0xC3;
        path[n++] = (char)0xA9;
    }
    path[n] = '\0';
    for (int shift = 0; shift < 2; shift++) { /* the cut lands on a lead byte and between bytes */
        abl_error err;
        abl_status st = abl_fail(&err, ABL_EIO, "%.*scannot open '%s'", shift, "x", path);
        CU_ASSERT_EQUAL(st, ABL_EIO);
        size_t len = strlen(err.msg);
        CU_ASSERT(len < sizeof err.msg);
        CU_ASSERT(len > sizeof err.msg - 24); /* the buffer is used, not emptied */
        const char *mark = " [...message cut]";
        CU_ASSERT(len >= strlen(mark) && strcmp(err.msg + len - strlen(mark), mark) == 0);
        /* valid UTF-8: every C3 is followed by A9, every A9 preceded by C3 */
        int ok = 1;
        for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)err.msg[i];
            if (c == 0xC3 && (unsigned char)err.msg[i + 1] != 0xA9) ok = 0;
            if (c == 0xA9 && (i == 0 || (unsigned char)err.msg[i - 1] != 0xC3)) ok = 0;
        }
        CU_ASSERT(ok);
    }
    /* a message that fits is left as it is */
    abl_error err;
    abl_fail(&err, ABL_EINVAL, "key '%s' = %d", "a", 3);
    CU_ASSERT_STRING_EQUAL(err.msg, "key 'a' = 3");
}

void register_config_tests(void)
{
    CU_pSuite s = CU_add_suite("config", NULL, NULL);
    CU_add_test(s, "--set overrides any key", test_set_overrides);
    CU_add_test(s, "physics.ex_vivo_temperature_C = its five overrides", test_ex_vivo);
    CU_add_test(s, "errors name file:line, key and allowed values", test_errors_name_place);
    CU_add_test(s, "a message longer than the buffer is marked cut on a UTF-8 boundary",
                test_error_message_cut);
    CU_add_test(s, "piecewise-linear schedule with a step", test_schedule);
    CU_add_test(s, "rasterised shape volumes", test_shape_volume);
    CU_add_test(s, "tissue table loads with sources' values", test_tissue_table);
    CU_add_test(s, "key declarations: allowed keys by variant, reference rows",
                test_key_declarations);
    CU_add_test(s, "README scenario reference = the key declarations (make readme-keys)",
                test_readme_keys);
    CU_add_test(s, "SWEEPS, RFA, MWA, CRYO key tables = the key declarations (make readme-keys)",
                test_doc_key_tables);
}
