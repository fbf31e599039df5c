/* test_devices.c - named device presets (device.h, configs/devices.yaml, docs/DEVICES.md): the
 * committed file loads and holds the sourced numbers, a preset fills the keys an entry leaves
 * out (origin: the devices file's line), the entry's own keys win, a selector the entry sets
 * otherwise keeps the preset's variant keys out, a wrong-type or unknown name and a broken
 * devices file are refused with messages naming key, value and allowed names, and a run with a
 * preset is bitwise the run with the same values written out (RFA, MWA, cryo). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ablasim/device.h"
#include "ablasim/source.h"
#include "testutil.h"

static const cfg_keytable *keys_of(const char *type)
{
    if (strcmp(type, "rfa") && strcmp(type, "mwa") && strcmp(type, "cryo")) return NULL;
    const abl_source_type_info *info = source_type_find(type);
    return info ? info->keys : NULL;
}

static const abl_device *find(const abl_device_table *t, const char *name)
{
    for (int i = 0; i < t->ndevices; i++)
        if (!strcmp(t->devices[i].name, name)) return &t->devices[i];
    return NULL;
}

static const char *value_of(const abl_device *d, const char *path)
{
    for (int i = 0; d && i < d->nvalues; i++)
        if (!strcmp(d->values[i].path, path)) return d->values[i].value;
    return NULL;
}

/* The committed file loads; the numbers are the ones its sources give (docs/DEVICES.md). */
static void test_committed_file(void)
{
    char path[700];
    snprintf(path, sizeof path, "%s/configs/devices.yaml", tu_root());
    abl_device_table t;
    abl_error err = {0};
    abl_status st = device_table_load(path, keys_of, &t, &err);
    if (st) fprintf(stderr, "\n%s\n", err.msg);
    CU_ASSERT_FATAL(st == ABL_OK);
    CU_ASSERT(t.ndevices == 11);
    const abl_device *ct = find(&t, "cooltip");
    CU_ASSERT_FATAL(ct != NULL);
    CU_ASSERT_STRING_EQUAL(ct->type, "rfa");
    CU_ASSERT_STRING_EQUAL(value_of(ct, "generator.mode"), "impedance");
    CU_ASSERT_STRING_EQUAL(value_of(ct, "generator.power_W"), "200");
    CU_ASSERT_STRING_EQUAL(value_of(ct, "electrodes[].gauge"), "17");
    CU_ASSERT_STRING_EQUAL(value_of(find(&t, "medtronic_emprint"), "frequency_MHz"), "2450");
    CU_ASSERT_STRING_EQUAL(value_of(find(&t, "neuwave_certus140"), "frequency_MHz"), "2450");
    CU_ASSERT_STRING_EQUAL(value_of(find(&t, "covidien_evident"), "frequency_MHz"), "915");
    CU_ASSERT_STRING_EQUAL(value_of(find(&t, "cryoneedle_17g"), "probes[].gauge"), "17");
    CU_ASSERT_STRING_EQUAL(value_of(find(&t, "cryoprobe_2p4mm"), "probes[].diameter_mm"), "2.4");
    device_table_free(&t);
}

#define RFA_ENTRY(dev, gen, el)                                                                    \
    "  - name: rfa\n    type: rfa\n" dev "    generator: {" gen "}\n    electrodes:\n"            \
    "      - {tip_mm: [0, 0, -6], direction: [0, 0, 1], active_length_mm: 10" el "}\n"

/* A preset fills generator.mode, generator.power_W and every electrode's gauge, with the
 * devices file's line as their origin; the parsed values are the file's numbers. */
static void test_preset_fills(void)
{
    abl_scenario *sc = tu_liver_cube("dev_fill", 16, 1.0, 10, "auto", NULL,
                                     RFA_ENTRY("    device: cooltip\n", "max_current_A: 2", ""));
    CU_ASSERT_FATAL(sc != NULL);
    const abl_source_cfg *c = &sc->sources[0];
    CU_ASSERT_STRING_EQUAL(c->device, "cooltip");
    CU_ASSERT_EQUAL(c->ndevice_values, 3);
    for (int i = 0; i < c->ndevice_values; i++) CU_ASSERT(c->device_applied[i]);
    scenario_free(sc);

    /* the grafted nodes themselves: values as in the file, origin devices.yaml:line */
    char path[700];
    snprintf(path, sizeof path, "%s/configs/devices.yaml", tu_root());
    abl_device_table t;
    abl_error err = {0};
    CU_ASSERT_FATAL(device_table_load(path, keys_of, &t, &err) == ABL_OK);
    cfg_node *e = NULL;
    CU_ASSERT_FATAL(cfg_parse_string("{type: rfa, device: cooltip, electrodes: [{a: 1}, {b: 2}]}",
                                     "s.yaml", &e, &err) == ABL_OK);
    bool applied[ABL_DEVICE_MAX_VALUES];
    const abl_device *d = NULL;
    CU_ASSERT_FATAL(device_lookup(e, "rfa", &t, &d, &err) == ABL_OK && d);
    CU_ASSERT_FATAL(device_apply(e, d, applied, &err) == ABL_OK);
    double P = 0, g0 = 0, g1 = 0;
    const char *mode = NULL;
    cfg_node *gen = cfg_get(e, "generator"), *els = cfg_get(e, "electrodes");
    CU_ASSERT_FATAL(gen && els && els->n == 2);
    CU_ASSERT(cfg_get_double(gen, "power_W", true, 0, NULL, &P, &err) == ABL_OK);
    CU_ASSERT(cfg_get_string(gen, "mode", true, NULL, &mode, &err) == ABL_OK);
    CU_ASSERT(cfg_get_double(els->items[0], "gauge", true, 0, NULL, &g0, &err) == ABL_OK);
    CU_ASSERT(cfg_get_double(els->items[1], "gauge", true, 0, NULL, &g1, &err) == ABL_OK);
    CU_ASSERT_EQUAL(P, 200.0);
    CU_ASSERT_STRING_EQUAL(mode, "impedance");
    CU_ASSERT_EQUAL(g0, 17.0);
    CU_ASSERT_EQUAL(g1, 17.0);
    char where[700];
    cfg_where(cfg_get(gen, "power_W"), where, sizeof where);
    CU_ASSERT(strstr(where, "devices.yaml:") != NULL);
    cfg_free(e);
    device_table_free(&t);
}

/* The entry's own generator.power_W wins, and its diameter_mm keeps the preset's gauge (the
 * exclusive alternative) out; the preset's mode still applies. */
static void test_explicit_wins(void)
{
    abl_scenario *sc =
        tu_liver_cube("dev_override", 16, 1.0, 10, "auto", NULL,
                      RFA_ENTRY("    device: cooltip\n", "power_W: 150", ", diameter_mm: 1.2"));
    CU_ASSERT_FATAL(sc != NULL);
    const abl_source_cfg *c = &sc->sources[0];
    int seen = 0;
    for (int i = 0; i < c->ndevice_values; i++) {
        const char *p = c->device_values[i].path;
        if (!strcmp(p, "generator.power_W")) {
            CU_ASSERT(!c->device_applied[i]);
            seen++;
        }
        if (!strcmp(p, "electrodes[].gauge")) {
            CU_ASSERT(!c->device_applied[i]);
            seen++;
        }
        if (!strcmp(p, "generator.mode")) {
            CU_ASSERT(c->device_applied[i]);
            seen++;
        }
    }
    CU_ASSERT_EQUAL(seen, 3);
    scenario_free(sc);
}

/* generator.mode set by the scenario to another mode: the preset's generator values belong to
 * its impedance mode and are not applied (temperature mode would refuse power_W as unknown). */
static void test_selector_keeps_variant(void)
{
    abl_scenario *sc = tu_liver_cube(
        "dev_mode", 16, 1.0, 10, "auto", NULL,
        RFA_ENTRY("    device: cooltip\n", "mode: temperature, setpoint_C: 90", ""));
    CU_ASSERT_FATAL(sc != NULL);
    const abl_source_cfg *c = &sc->sources[0];
    for (int i = 0; i < c->ndevice_values; i++) {
        const char *p = c->device_values[i].path;
        if (!strncmp(p, "generator.", 10)) CU_ASSERT(!c->device_applied[i]);
        if (!strcmp(p, "electrodes[].gauge")) CU_ASSERT(c->device_applied[i]);
    }
    scenario_free(sc);
}

static char *load_error(const char *yaml)
{
    char dir[600];
    snprintf(dir, sizeof dir, "%s/configs", tu_root());
    abl_scenario *sc = NULL;
    abl_error err = {0};
    abl_status st = scenario_load_string(yaml, "dev.yaml", dir, NULL, 0, &sc, &err);
    CU_ASSERT(st != ABL_OK);
    if (!st) {
        scenario_free(sc);
        return strdup("");
    }
    return strdup(err.msg);
}

#define CUBE                                                                                       \
    "name: d\ntissues_file: tissues.yaml\n"                                                        \
    "grid: {dims: [16, 16, 16], spacing_mm: [1, 1, 1], background: liver}\n"                      \
    "time: {duration_s: 10}\nsources:\n"

/* A preset of another type and an unknown name: file:line, key, value and the allowed names. */
static void test_refused(void)
{
    char *m = load_error(CUBE RFA_ENTRY("    device: hs_amica\n", "power_W: 50", ""));
    CU_ASSERT(strstr(m, "dev.yaml:8") != NULL);
    CU_ASSERT(strstr(m, "'sources[0].device' = hs_amica is a preset of type mwa") != NULL);
    CU_ASSERT(strstr(m, "takes one of: cooltip, leveen_rf3000") != NULL);
    free(m);
    m = load_error(CUBE "  - {type: mwa, device: emprint, power_W: 50, tip_mm: [0, 0, -6], "
                        "direction: [0, 0, 1]}\n");
    CU_ASSERT(strstr(m, "dev.yaml:6: 'sources[0].device' = emprint is not a device preset") !=
              NULL);
    CU_ASSERT(strstr(m, "devices.yaml; allowed for type mwa: medtronic_emprint, "
                        "neuwave_certus140, hs_amica, angiodynamics_acculis, covidien_evident") !=
              NULL);
    free(m);
    /* not a modality that takes presets */
    m = load_error(CUBE "  - {type: volumetric, device: cooltip, power_W: 1, shape: {type: "
                        "sphere, center_mm: [0, 0, 0], radius_mm: 2}}\n");
    CU_ASSERT(strstr(m, "unknown key 'sources[0].device'") != NULL);
    free(m);
}

/* A broken devices file: a value without a source, a key path that is no key of the type. */
static void test_bad_devices_file(void)
{
    char path[700], yaml[2000];
    const char *bad[] = {
        "devices:\n  x:\n    type: mwa\n    title: t\n    not_modelled: n\n    values:\n"
        "      frequency_MHz: {value: 2450}\n",
        "devices:\n  x:\n    type: mwa\n    title: t\n    not_modelled: n\n    values:\n"
        "      frequency_Mhz: {value: 2450, source: s}\n",
    };
    const char *want[] = {"devices_bad0.yaml:7", "devices_bad1.yaml:7: 'devices.x.values."
                                                 "frequency_Mhz': 'frequency_Mhz' is not a key"};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/devices_bad%d.yaml", tu_tmpdir(), i);
        FILE *f = fopen(path, "w");
        CU_ASSERT_FATAL(f != NULL);
        fputs(bad[i], f);
        fclose(f);
        snprintf(yaml, sizeof yaml,
                 CUBE "  - {type: mwa, device: x, power_W: 50, tip_mm: [0, 0, -6], "
                      "direction: [0, 0, 1]}\ndevices_file: %s\n",
                 path);
        char *m = load_error(yaml);
        if (!strstr(m, want[i])) fprintf(stderr, "\n%s\n", m);
        CU_ASSERT(strstr(m, want[i]) != NULL);
        CU_ASSERT(strstr(m, "devices_file, read for 'sources[0].device'") != NULL);
        free(m);
    }
}

/* Runs a and b for t_s and compares the final temperature fields bit for bit. */
static void same_run(const char *name, const char *a_src, const char *b_src, double t_s)
{
    abl_scenario *a = tu_liver_cube(name, 16, 1.0, t_s, "auto", NULL, a_src);
    abl_scenario *b = tu_liver_cube(name, 16, 1.0, t_s, "auto", NULL, b_src);
    CU_ASSERT_FATAL(a && b);
    abl_sim *sa = tu_sim(a), *sb = tu_sim(b);
    tu_step_for(sa, t_s);
    tu_step_for(sb, t_s);
    CU_ASSERT_EQUAL(sa->grid.n, sb->grid.n);
    CU_ASSERT(memcmp(sa->T, sb->T, sa->grid.n * sizeof *sa->T) == 0);
    double maxT = -INFINITY, minT = INFINITY;
    for (size_t c = 0; c < sa->grid.n; c++) {
        maxT = sa->T[c] > maxT ? sa->T[c] : maxT;
        minT = sa->T[c] < minT ? sa->T[c] : minT;
    }
    /* it did act (two runs in which the source did nothing would also be equal): a heating
     * source lifts the 37 C cube, a cryoprobe freezes it (its probe voxels go towards -150 C;
     * audit, session 24: the cryo case was exempt) */
    if (!strcmp(name, "dev_same_cryo")) {
        CU_ASSERT(minT < 0.0);
    } else {
        CU_ASSERT(maxT > 37.5);
    }
    sim_destroy(sa);
    sim_destroy(sb);
    scenario_free(a);
    scenario_free(b);
}

static void test_bitwise_same(void)
{
    same_run("dev_same_rfa", RFA_ENTRY("    device: cooltip\n", "max_current_A: 2", ""),
             RFA_ENTRY("", "mode: impedance, power_W: 200, max_current_A: 2", ", gauge: 17"),
             10);
    same_run("dev_same_mwa",
             "  - {type: mwa, device: medtronic_emprint, power_W: 30, tip_mm: [0, 0, -6], "
             "direction: [0, 0, 1]}\n",
             "  - {type: mwa, frequency_MHz: 2450, power_W: 30, tip_mm: [0, 0, -6], "
             "direction: [0, 0, 1]}\n",
             20);
    same_run("dev_same_cryo",
             "  - {type: cryo, device: cryoprobe_2p4mm, protocol: [{phase: freeze, duration_s: "
             "60}], probes: [{tip_mm: [0, 0, -5], direction: [0, 0, 1], active_length_mm: 10}]}\n",
             "  - {type: cryo, protocol: [{phase: freeze, duration_s: 60}], probes: [{tip_mm: "
             "[0, 0, -5], direction: [0, 0, 1], active_length_mm: 10, diameter_mm: 2.4}]}\n",
             10);
}

void register_device_tests(void)
{
    CU_pSuite s = CU_add_suite("devices", NULL, NULL);
    CU_add_test(s, "committed devices.yaml loads with the sourced numbers", test_committed_file);
    CU_add_test(s, "a preset fills the keys the entry leaves out", test_preset_fills);
    CU_add_test(s, "the entry's own keys win", test_explicit_wins);
    CU_add_test(s, "a selector set otherwise keeps the preset's variant out",
                test_selector_keeps_variant);
    CU_add_test(s, "wrong type and unknown name refused", test_refused);
    CU_add_test(s, "broken devices file refused with its line", test_bad_devices_file);
    CU_add_test(s, "preset run bitwise equal to the written-out run", test_bitwise_same);
}
