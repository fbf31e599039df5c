/* plan_spec.c - the plan file (PLAN.yaml) and the base scenario tree it names.
 *
 * Reads and validates every key of the plan file (unknown keys are errors, like a scenario's),
 * loads the base scenario as a YAML tree with its --set lines applied, rewrites its relative
 * paths so that the tree can be written into the output directory and run from there, and
 * resolves the applicator's keys from the source type (docs/PLANNING.md, "The plan file"). */
#define _DEFAULT_SOURCE /* realpath */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../sweep/sweep_internal.h"
#include "ablasim/hash.h"
#include "plan_internal.h"

static const cfg_range r_pos_mm = {0, 200, false, false, "mm"};
static const cfg_range r_tilt = {0, 60, false, false, "deg"};
static const cfg_range r_margin = {0, 50, false, false, "mm"};
static const cfg_range r_power = {0, 1e4, true, false, "W"};
static const cfg_range r_dur = {0, 1e6, true, false, "s"};
static const cfg_range r_step = {0.01, 3600, false, false, "s"};
static const cfg_range r_sd = {0, 20, false, false, "mm"};
static const cfg_range r_cv = {0, 2, false, false, "1"};
static const cfg_range r_spacing = {0, 200, false, false, "mm"};
static const cfg_range r_thr = {-273.15, 1000, false, false, "degC"};

/* ---- the plan file's keys, declared once (config.h): the unknown-key check reads them, and
 * docs/PLANNING.md "Plan file keys" is printed from them (plan_reference_markdown) ---------- */

static const cfg_keydecl target_decl[] = {
    CFG_KEY("tissue", "–", "`tumour`", "tissue name", "the tissue to ablate"),
    CFG_KEY("margin_mm", "mm", "5", "[0, 50]", "the verdict's margin: PASS iff the minimal margin exceeds it"),
    CFG_KEY("plan_margin_mm", "mm", "`margin_mm`", "[margin_mm, 50]",
            "the margin the optimiser covers (room for placement error); the verdict still judges `margin_mm`"),
    CFG_KEY("criterion", "–", "`auto`", "`auto`, `tmax`, `tmin`", "zone: T_max >= threshold (heat) or T_min <= threshold (cold); auto: cold for a cryo source"),
    CFG_KEY("threshold_C", "°C", "55 (tmax), -40 (tmin)", "[-273.15, 1000]", "zone threshold"),
};
static const cfg_keytable target_keys = CFG_KEYTABLE(target_decl);

static const cfg_keydecl applicator_decl[] = {
    CFG_KEY("source", "–", "0", "0..63, a source of the scenario", "the source whose applicator(s) are planned"),
    CFG_KEY("count", "applicators", "the scenario's", "[min, max], 1..8", "numbers of applicators tried; each count's best is verified"),
    CFG_KEY("list_key", "–", "by type (`electrodes`, `probes`)", "key or `none`", "list of applicators inside the source; `none`: the source is the applicator"),
    CFG_KEY("tip_key", "–", "by type (`tip_mm`, `shape.center_mm`)", "dotted key", "the applicator's position [mm]"),
    CFG_KEY("direction_key", "–", "by type (`direction`; none for shapes)", "dotted key or `none`", "the needle axis, from the tip towards the handle"),
    CFG_KEY("dose_key", "–", "by type (`power_W`, `generator.power_W`; none for cryo)", "dotted key or `none`", "the searched power [W]"),
    CFG_KEY("dose_in_source", "–", "true for rfa", "true, false", "the power key is in the source, not in each applicator"),
};
static const cfg_keytable applicator_keys = CFG_KEYTABLE(applicator_decl);

static const cfg_keydecl search_decl[] = {
    CFG_KEY("position_mm", "mm", "10", "[0, 200]", "tip offset from the start, +- per axis of the needle frame"),
    CFG_KEY("tilt_deg", "deg", "0", "[0, 60]", "axis tilt, +- per angle (0: the scenario's direction)"),
    CFG_KEY("power_W", "W", "the scenario's", "[lo, hi], (0, 1e4]", "searched power"),
    CFG_KEY("duration_s", "s", "the scenario's", "[lo, hi], (0, 1e6]; not for cryo", "heat: the dose is the time to coverage within these bounds"),
    CFG_KEY("time_step_s", "s", "10", "[0.01, 3600]", "duration resolution; coverage is checked every half step"),
    CFG_KEY("spacing_mm", "mm", "[5, 30]", "[lo, hi]", "several applicators: distance of neighbours on the ring"),
    CFG_KEY("start", "–", "`geometry`", "`geometry`, `scenario`", "start at the tumour centroid (tip offset along the axis as in the scenario) or at the scenario's placement"),
};
static const cfg_keytable search_keys = CFG_KEYTABLE(search_decl);

static const cfg_keydecl constraints_decl[] = {
    CFG_KEY("avoid_tissues", "–", "the critical structures", "list of tissue names", "needle paths (tip to grid face) must not cross them"),
};
static const cfg_keytable constraints_keys = CFG_KEYTABLE(constraints_decl);

static const cfg_keydecl optimiser_decl[] = {
    CFG_KEY("max_evaluations", "–", "40", "1..100000", "evaluations on the coarse grid (on the full grid when `coarsen` is 1)"),
    CFG_KEY("coarsen", "–", "2", "1..8", "coarse grid factor (1: full grid only)"),
    CFG_KEY("fine_evaluations", "–", "8", "0..100000", "evaluations on the full grid from the coarse optimum"),
    CFG_KEY("starts", "–", "1", "1..16", "searches on the first level, each of max_evaluations: the geometric (or scenario) start, then points of a Halton sequence in the search box; the full grid continues from the best"),
    CFG_KEY("rerank", "–", "1", "1..16", "coarse candidates evaluated on the full grid between the levels: the best by coarse objective, each at least 5 % of a search range (the full-grid search's first step) from those before; the full grid continues from the best of them there (1: from the coarse optimum, no re-ranking; no effect when `coarsen` is 1)"),
};
static const cfg_keytable optimiser_keys = CFG_KEYTABLE(optimiser_decl);

static const cfg_keydecl robustness_decl[] = {
    CFG_KEY("samples", "–", "16", "0..100000", "forward runs of the chosen plan with perturbed needles and perfusion (0: none)"),
    CFG_KEY("placement_sd_mm", "mm", "2", "[0, 20]", "needle tip error, normal, per axis"),
    CFG_KEY("perfusion_cv", "–", "0.2", "[0, 2]", "perfusion factor per tissue, lognormal with mean 1"),
    CFG_KEY("seed", "–", "1", ">= 0", "random seed (the plan is deterministic for a seed)"),
    CFG_KEY("fidelity", "–", "`coarse`", "`coarse`, `full`", "grid of the samples (full when the coarse grid fails the plan)"),
};
static const cfg_keytable robustness_keys = CFG_KEYTABLE(robustness_decl);

static const cfg_keydecl root_decl[] = {
    CFG_KEY("scenario", "–", "required", "path", "base scenario, relative to the plan file"),
    CFG_KEY("scenario_set", "–", "none", "list of KEY=VALUE", "--set lines applied to the base scenario"),
    {.key = "target", .unit = "–", .deflt = "", .allowed = "map", .meaning = "what to ablate",
     .sub = &target_keys, .sub_prefix = "target."},
    CFG_KEY("critical", "°C", "none", "list of TISSUE:HOT_C:COLD_C", "critical structures and limits (the margin command's `--critical`)"),
    {.key = "applicator", .unit = "–", .deflt = "", .allowed = "map", .meaning = "what is placed",
     .sub = &applicator_keys, .sub_prefix = "applicator."},
    {.key = "search", .unit = "–", .deflt = "", .allowed = "map", .meaning = "the search space",
     .sub = &search_keys, .sub_prefix = "search."},
    {.key = "constraints", .unit = "–", .deflt = "", .allowed = "map", .meaning = "needle paths",
     .sub = &constraints_keys, .sub_prefix = "constraints."},
    {.key = "optimiser", .unit = "–", .deflt = "", .allowed = "map", .meaning = "search effort",
     .sub = &optimiser_keys, .sub_prefix = "optimiser."},
    {.key = "robustness", .unit = "–", .deflt = "", .allowed = "map", .meaning = "sampling of the chosen plan",
     .sub = &robustness_keys, .sub_prefix = "robustness."},
};
static const cfg_keytable root_keys = CFG_KEYTABLE(root_decl);

int plan_reference_markdown(FILE *f)
{
    if (fputs("| key | unit | default | allowed | meaning |\n|---|---|---|---|---|\n", f) == EOF)
        return -1;
    return cfg_decl_markdown(f, &root_keys, "");
}

/* [lo, hi] of two numbers, lo <= hi, both in range. */
static abl_status get_pair(cfg_node *map, const char *key, const cfg_range *r, bool *given,
                           double out[2], abl_error *err)
{
    *given = cfg_get(map, key) != NULL;
    if (!*given) return ABL_OK;
    abl_status st = cfg_get_vec(map, key, true, NULL, 2, r, out, err);
    if (st) return st;
    if (out[0] > out[1]) {
        char where[600];
        cfg_where(cfg_get(map, key), where, sizeof where);
        return abl_fail(err, ABL_EINVAL,
                        "%s: '%s' = [%g, %g]: the lower bound is above the upper one (write "
                        "[lo, hi]; lo = hi fixes the value)",
                        where, key, out[0], out[1]);
    }
    return ABL_OK;
}

static abl_status dirname_real(const char *path, char *out, size_t len, abl_error *err)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    char *slash = strrchr(buf, '/');
    if (slash == buf)
        buf[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        snprintf(buf, sizeof buf, ".");
    char real[PATH_MAX];
    if (!realpath(buf, real))
        return abl_fail(err, ABL_EIO, "%s: cannot resolve the directory '%s': %s", path, buf,
                        strerror(errno));
    snprintf(out, len, "%s", real);
    return ABL_OK;
}

void plan_relpath(const char *from_dir, const char *target, char *out, size_t len)
{
    /* both absolute and canonical: drop the common leading components, then one ".." per
     * remaining component of from_dir, then the rest of target */
    size_t common = 0; /* length of the common prefix that ends on a component boundary */
    size_t i = 0;
    for (;; i++) {
        const bool fe = from_dir[i] == '\0' || from_dir[i] == '/';
        const bool te = target[i] == '\0' || target[i] == '/';
        if (fe && te) common = i;
        if (from_dir[i] != target[i] || !from_dir[i]) break;
    }
    size_t used = 0;
    out[0] = '\0';
    for (const char *p = from_dir + common; *p; p++)
        if (*p == '/' && p[1])
            used += (size_t)snprintf(out + used, used < len ? len - used : 0, "../");
    const char *t = target + common;
    while (*t == '/') t++;
    snprintf(out + used, used < len ? len - used : 0, "%s", *t ? t : ".");
}

/* key (relative to the scenario directory) -> path relative to the output directory */
static abl_status rebase_path(cfg_node *map, const char *key, const char *scen_dir,
                              const char *out_dir, abl_error *err)
{
    cfg_node *n = cfg_get(map, key);
    if (!n || n->kind != CFG_SCALAR || !n->value) return ABL_OK; /* the scenario judges it */
    char joined[PATH_MAX * 2], real[PATH_MAX];
    if (n->value[0] == '/')
        snprintf(joined, sizeof joined, "%s", n->value);
    else
        snprintf(joined, sizeof joined, "%s/%s", scen_dir, n->value);
    if (!realpath(joined, real)) {
        char where[600];
        cfg_where(n, where, sizeof where);
        return abl_fail(err, ABL_EIO, "%s: '%s' = '%s': cannot open '%s': %s", where, key,
                        n->value, joined, strerror(errno));
    }
    char rel[PATH_MAX];
    plan_relpath(out_dir, real, rel, sizeof rel);
    free(n->value);
    n->value = strdup(rel);
    n->quoted = true;
    return n->value ? ABL_OK : abl_fail(err, ABL_ENOMEM, "out of memory");
}

cfg_node *plan_node_at(cfg_node *node, const char *dotted)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", dotted);
    char *save = NULL;
    for (char *seg = strtok_r(buf, ".", &save); seg && node; seg = strtok_r(NULL, ".", &save))
        node = cfg_get(node, seg);
    return node;
}

abl_status plan_read_vec3(cfg_node *node, const char *key, double v[3], abl_error *err)
{
    cfg_node *n = plan_node_at(node, key);
    if (!n || n->kind != CFG_SEQ || n->n != 3)
        return abl_fail(err, ABL_EINVAL,
                        "the applicator has no three-number '%s' (set applicator.%s_key in the "
                        "plan file to the key that holds it)",
                        key, strstr(key, "dir") ? "direction" : "tip");
    for (int d = 0; d < 3; d++) {
        abl_status st = cfg_node_double(n->items[d], NULL, &v[d], err);
        if (st) return st;
    }
    return ABL_OK;
}

static abl_status resolve_keys(plan_spec *P, cfg_node *am, abl_error *err)
{
    cfg_node *sources = cfg_get(P->base, "sources");
    if (!sources || sources->kind != CFG_SEQ || sources->n == 0)
        return abl_fail(err, ABL_EINVAL, "%s: the scenario has no 'sources' list to plan",
                        P->scenario_path);
    if (P->src_index >= (int)sources->n)
        return abl_fail(err, ABL_EINVAL,
                        "%s: 'applicator.source' = %d: the scenario has %zu source(s) (allowed "
                        "0..%zu)",
                        P->plan_path, P->src_index, sources->n, sources->n - 1);
    cfg_node *src = sources->items[P->src_index];
    const char *type = "";
    cfg_node *tn = cfg_get(src, "type");
    if (tn && tn->kind == CFG_SCALAR && tn->value) type = tn->value;
    snprintf(P->source_type, sizeof P->source_type, "%s", type);
    /* defaults by source type */
    const char *list = "", *tip = "tip_mm", *dir = "direction", *dose = "";
    bool dose_in_src = false;
    P->cold = false;
    if (!strcmp(type, "mwa")) {
        dose = "power_W";
    } else if (!strcmp(type, "rfa")) {
        list = "electrodes";
        dose_in_src = true;
        dose = plan_node_at(src, "generator.power_W") ? "generator.power_W"
                                                      : "generator.max_power_W";
    } else if (!strcmp(type, "cryo")) {
        list = "probes";
        P->cold = true;
    } else if (!strcmp(type, "volumetric")) {
        tip = "shape.center_mm";
        dir = "";
        dose = "power_W";
    } else if (!strcmp(type, "fixed_temperature")) {
        tip = "shape.center_mm";
        dir = "";
    }
    const char *s;
    abl_status st;
    if ((st = cfg_get_string(am, "list_key", false, list, &s, err))) return st;
    snprintf(P->list_key, sizeof P->list_key, "%s", !strcmp(s, "none") ? "" : s);
    if ((st = cfg_get_string(am, "tip_key", false, tip, &s, err))) return st;
    snprintf(P->tip_key, sizeof P->tip_key, "%s", s);
    if ((st = cfg_get_string(am, "direction_key", false, dir, &s, err))) return st;
    snprintf(P->dir_key, sizeof P->dir_key, "%s", !strcmp(s, "none") ? "" : s);
    if ((st = cfg_get_string(am, "dose_key", false, dose, &s, err))) return st;
    snprintf(P->dose_key, sizeof P->dose_key, "%s", !strcmp(s, "none") ? "" : s);
    P->dose_in_source = P->list_key[0] ? dose_in_src : false;
    if (cfg_get(am, "dose_in_source") &&
        (st = cfg_get_bool(am, "dose_in_source", false, &P->dose_in_source, err)))
        return st;

    /* the template applicator */
    cfg_node *tmpl = src;
    if (P->list_key[0]) {
        cfg_node *l = plan_node_at(src, P->list_key);
        if (!l || l->kind != CFG_SEQ || l->n == 0)
            return abl_fail(err, ABL_EINVAL,
                            "%s: source %d (type '%s') has no list '%s' of applicators (set "
                            "applicator.list_key, or 'none' when the source is the applicator)",
                            P->scenario_path, P->src_index, type, P->list_key);
        tmpl = l->items[0];
        P->base_count = (int)l->n;
    } else {
        P->base_count = 1;
    }
    if ((st = plan_read_vec3(tmpl, P->tip_key, P->base_tip_mm, err))) return st;
    if (P->dir_key[0]) {
        if ((st = plan_read_vec3(tmpl, P->dir_key, P->base_dir, err))) return st;
        double n = sqrt(P->base_dir[0] * P->base_dir[0] + P->base_dir[1] * P->base_dir[1] +
                        P->base_dir[2] * P->base_dir[2]);
        if (!(n > 0))
            return abl_fail(err, ABL_EINVAL, "%s: the applicator's '%s' is the zero vector",
                            P->scenario_path, P->dir_key);
        for (int d = 0; d < 3; d++) P->base_dir[d] /= n;
    }
    P->base_power_W = NAN;
    if (P->dose_key[0]) {
        cfg_node *dn = plan_node_at(P->dose_in_source ? src : tmpl, P->dose_key);
        if (!dn || dn->kind != CFG_SCALAR)
            return abl_fail(err, ABL_EINVAL,
                            "%s: the applicator has no '%s' (set applicator.dose_key, or "
                            "'none')",
                            P->scenario_path, P->dose_key);
        if ((st = cfg_node_double(dn, NULL, &P->base_power_W, err))) return st;
    }
    return ABL_OK;
}

abl_status plan_spec_load(const abl_plan_opts *o, plan_spec *P, abl_error *err)
{
    memset(P, 0, sizeof *P);
    snprintf(P->plan_path, sizeof P->plan_path, "%s", o->plan_path);
    uint64_t inputs_h = ABL_FNV1A_INIT; /* the scenario's input files, below */
    cfg_node *root = NULL;
    abl_status st = cfg_load_file(o->plan_path, &root, err);
    if (st) return st;
    for (int i = 0; i < o->nsets && !st; i++) st = cfg_set(root, o->sets[i], err);
    if (st) goto done;
    if ((st = cfg_check_decl(root, &root_keys, CFG_ALL_VARIANTS, err))) goto done;
    char plan_dir[PATH_MAX];
    if ((st = dirname_real(o->plan_path, plan_dir, sizeof plan_dir, err))) goto done;

    const char *scen;
    if ((st = cfg_get_string(root, "scenario", true, NULL, &scen, err))) goto done;
    char joined[PATH_MAX * 2];
    if (scen[0] == '/')
        snprintf(joined, sizeof joined, "%s", scen);
    else
        snprintf(joined, sizeof joined, "%s/%s", plan_dir, scen);
    if (!realpath(joined, P->scenario_path)) {
        st = abl_fail(err, ABL_EIO, "%s: 'scenario' = '%s': cannot open '%s': %s",
                      o->plan_path, scen, joined, strerror(errno));
        goto done;
    }
    if ((st = dirname_real(P->scenario_path, P->scenario_dir, sizeof P->scenario_dir, err)))
        goto done;

    /* the base scenario as a tree, with the plan's scenario_set lines applied */
    if ((st = cfg_load_file(P->scenario_path, &P->base, err))) goto done;
    cfg_node *ss = cfg_get(root, "scenario_set");
    if ((st = cfg_expect(ss, CFG_SEQ, false, "a list of KEY=VALUE strings", err)))
        goto done;
    for (size_t i = 0; ss && i < ss->n && !st; i++) {
        cfg_node *it = ss->items[i];
        if (it->kind != CFG_SCALAR || !it->value) {
            st = abl_fail(err, ABL_EINVAL, "%s: 'scenario_set[%zu]' must be a KEY=VALUE string",
                          o->plan_path, i);
            break;
        }
        st = cfg_set(P->base, it->value, err);
    }
    if (st) goto done;
    {
        /* The scenario as `ablasim run SCENARIO --set LINE...` reads it, once, so that a bad
         * value names its own place: the scenario file's line, or the scenario_set line as
         * "--set KEY". The planner later loads the tree emitted from both, whose line numbers
         * are the emitted text's: a bad scenario_set value was reported at a line of the
         * scenario file that held something else (an adversarial test, session 26). */
        const size_t nset = ss ? ss->n : 0;
        const char **sets = calloc(nset ? nset : 1, sizeof *sets);
        if (!sets) {
            st = abl_fail(err, ABL_ENOMEM, "out of memory");
            goto done;
        }
        for (size_t i = 0; i < nset; i++) sets[i] = ss->items[i]->value;
        abl_scenario *probe = NULL;
        abl_error e = {0};
        const abl_status ls = scenario_load(P->scenario_path, sets, (int)nset, &probe, &e);
        /* the contents of the files the scenario reads besides its own text (tissue table,
         * mesh, initial field or state, device presets) decide every evaluation too: a resumed
         * plan reused a journal computed with an edited tissue table or mesh and reported
         * another plan than a fresh run (an adversarial test, session 27; the sweep's
         * fingerprint has hashed them since session 23). Folded into plan_hash below. */
        if (!ls) {
            const char *files[4] = {probe->tissues_path, probe->mesh_path, probe->initial_T_path,
                                    probe->devices_path};
            for (int f = 0; f < 4; f++)
                if (files[f]) inputs_h = abl_fnv1a_file(inputs_h, files[f], true, NULL);
        }
        scenario_free(probe);
        free(sets);
        if (ls) {
            char where[300];
            st = abl_fail(err, ls, "%s: the plan's scenario%s: %s", o->plan_path,
                          nset ? (snprintf(where, sizeof where, " with its scenario_set (line %d)",
                                           ss->line),
                                  where)
                               : "",
                          e.msg);
            goto done;
        }
    }

    /* target */
    cfg_node *tg = cfg_get(root, "target");
    if ((st = cfg_expect(tg, CFG_MAP, false, "a mapping (tissue, margin_mm, ...)", err)) ||
        (st = cfg_check_decl(tg, &target_keys, CFG_ALL_VARIANTS, err)))
        goto done;
    const char *tt;
    if ((st = cfg_get_string(tg, "tissue", false, "tumour", &tt, err))) goto done;
    snprintf(P->target_tissue, sizeof P->target_tissue, "%s", tt);
    if ((st = cfg_get_double(tg, "margin_mm", false, 5.0, &r_margin, &P->margin_mm, err)) ||
        (st = cfg_get_double(tg, "plan_margin_mm", false, P->margin_mm, &r_margin,
                             &P->plan_margin_mm, err)))
        goto done;
    if (P->plan_margin_mm < P->margin_mm) {
        st = abl_fail(err, ABL_EINVAL,
                      "%s: 'target.plan_margin_mm' = %g is below 'target.margin_mm' = %g: the "
                      "optimiser must plan for at least the margin the verdict requires",
                      o->plan_path, P->plan_margin_mm, P->margin_mm);
        goto done;
    }

    /* critical structures: the margin command's --critical syntax */
    cfg_node *cr = cfg_get(root, "critical");
    if ((st = cfg_expect(cr, CFG_SEQ, false, "a list like [\"nerve:45:\"]", err)))
        goto done;
    for (size_t i = 0; cr && i < cr->n; i++) {
        if (P->ncrit == ABL_MARGIN_MAX_CRITICAL) {
            st = abl_fail(err, ABL_EINVAL, "%s: 'critical': at most %d structures",
                          o->plan_path, ABL_MARGIN_MAX_CRITICAL);
            goto done;
        }
        cfg_node *it = cr->items[i];
        if (it->kind != CFG_SCALAR || !it->value ||
            critical_spec_parse(it->value, &P->crit[P->ncrit], err)) {
            char msg[ABL_ERRMSG_LEN];
            snprintf(msg, sizeof msg, "%s", err ? err->msg : "");
            st = abl_fail(err, ABL_EINVAL,
                          "%s: 'critical[%zu]' = '%s': %s (write TISSUE:HOT_LIMIT_C:COLD_LIMIT_C, "
                          "e.g. \"nerve:45:\" or \"nerve::10\")",
                          o->plan_path, i, it->value ? it->value : "", msg);
            goto done;
        }
        /* a tissue twice was refused by the margin library only after the whole search (an
         * adversarial test, session 30) */
        for (int c = 0; c < P->ncrit; c++)
            if (!strcmp(P->crit[c].tissue, P->crit[P->ncrit].tissue)) {
                char where[600];
                st = abl_fail(err, ABL_EINVAL,
                              "%s: 'critical[%zu]' = '%s' names tissue '%s' a second time "
                              "(critical[%d]); give each structure once, with both limits "
                              "(e.g. \"nerve:45:10\")",
                              cfg_where(it, where, sizeof where), i, it->value,
                              P->crit[c].tissue, c);
                goto done;
            }
        P->ncrit++;
    }

    /* applicator */
    cfg_node *am = cfg_get(root, "applicator");
    if ((st = cfg_expect(am, CFG_MAP, false, "a mapping of applicator keys", err)) ||
        (st = cfg_check_decl(am, &applicator_keys, CFG_ALL_VARIANTS, err)))
        goto done;
    long srci;
    if ((st = cfg_get_long(am, "source", false, 0, 0, 63, &srci, err))) goto done;
    P->src_index = (int)srci;
    if ((st = resolve_keys(P, am, err))) goto done;
    double cnt[2] = {P->base_count, P->base_count};
    static const cfg_range r_cnt = {1, 8, false, false, "applicators"};
    bool given;
    if ((st = get_pair(am, "count", &r_cnt, &given, cnt, err))) goto done;
    if (cnt[0] != floor(cnt[0]) || cnt[1] != floor(cnt[1])) {
        st = abl_fail(err, ABL_EINVAL, "%s: 'applicator.count' must be whole numbers [min, max]",
                      o->plan_path);
        goto done;
    }
    P->n_min = (int)cnt[0];
    P->n_max = (int)cnt[1];

    /* target criterion: heat (T_max) or cold (T_min) from the source type unless given */
    const char *crit_names[] = {"auto", "tmax", "tmin"};
    int ci;
    if ((st = cfg_get_enum(tg, "criterion", false, 0, crit_names, 3, &ci, err))) goto done;
    if (ci == 1) P->cold = false;
    if (ci == 2) P->cold = true;
    /* a heating source planned on a cold zone (or cryo on a hot one) searched for nothing and
     * reported "-inf mm" (an adversarial test, session 30); a fixed_temperature source may be
     * either */
    const bool heats = !strcmp(P->source_type, "mwa") || !strcmp(P->source_type, "rfa") ||
                       !strcmp(P->source_type, "volumetric");
    if ((ci == 2 && heats) || (ci == 1 && !strcmp(P->source_type, "cryo"))) {
        char where[600];
        st = abl_fail(err, ABL_EINVAL,
                      "%s: 'target.criterion' = %s, but source %d is of type '%s', which %s: "
                      "use %s (or auto)",
                      cfg_where(cfg_get(tg, "criterion"), where, sizeof where),
                      crit_names[ci], P->src_index, P->source_type,
                      ci == 2 ? "heats" : "freezes", ci == 2 ? "tmax" : "tmin");
        goto done;
    }
    if ((st = cfg_get_double(tg, "threshold_C", false, P->cold ? -40.0 : 55.0, &r_thr,
                             &P->threshold_C, err)))
        goto done;

    /* search space */
    cfg_node *sm = cfg_get(root, "search");
    if ((st = cfg_expect(sm, CFG_MAP, false, "a mapping of search keys", err)) ||
        (st = cfg_check_decl(sm, &search_keys, CFG_ALL_VARIANTS, err)))
        goto done;
    if ((st = cfg_get_double(sm, "position_mm", false, 10.0, &r_pos_mm, &P->pos_mm, err)) ||
        (st = cfg_get_double(sm, "tilt_deg", false, 0.0, &r_tilt, &P->tilt_deg, err)) ||
        (st = get_pair(sm, "power_W", &r_power, &P->power_var, P->power_W, err)) ||
        (st = get_pair(sm, "duration_s", &r_dur, &P->dur_var, P->duration_s, err)) ||
        (st = cfg_get_double(sm, "time_step_s", false, 10.0, &r_step, &P->time_step_s, err)))
        goto done;
    double sp[2] = {5.0, 30.0};
    if ((st = get_pair(sm, "spacing_mm", &r_spacing, &given, sp, err))) goto done;
    P->spacing_mm[0] = sp[0];
    P->spacing_mm[1] = sp[1];
    const char *start_names[] = {"geometry", "scenario"};
    int si;
    if ((st = cfg_get_enum(sm, "start", false, 0, start_names, 2, &si, err))) goto done;
    P->start_from_scenario = si == 1;
    if (P->power_var && !P->dose_key[0]) {
        st = abl_fail(err, ABL_EINVAL,
                      "%s: 'search.power_W' is given but source %d (type '%s') has no power key "
                      "(applicator.dose_key); remove it or name the key",
                      o->plan_path, P->src_index, P->source_type);
        goto done;
    }
    if (P->dur_var && P->cold) {
        st = abl_fail(err, ABL_EINVAL,
                      "%s: 'search.duration_s' is for heating sources; a cryoablation protocol "
                      "(freeze-thaw-freeze) is planned at its own duration: remove the key",
                      o->plan_path);
        goto done;
    }
    if (P->tilt_deg > 0 && !P->dir_key[0]) {
        st = abl_fail(err, ABL_EINVAL,
                      "%s: 'search.tilt_deg' = %g but the applicator has no direction key",
                      o->plan_path, P->tilt_deg);
        goto done;
    }
    if (P->n_max > 1 && !P->dir_key[0]) {
        st = abl_fail(err, ABL_EINVAL,
                      "%s: several applicators are placed around the needle axis, but this "
                      "applicator has no direction key (applicator.count = [%d, %d])",
                      o->plan_path, P->n_min, P->n_max);
        goto done;
    }

    /* constraints */
    cfg_node *cm = cfg_get(root, "constraints");
    if ((st = cfg_expect(cm, CFG_MAP, false, "a mapping of constraint keys", err)) ||
        (st = cfg_check_decl(cm, &constraints_keys, CFG_ALL_VARIANTS, err)))
        goto done;
    cfg_node *av = cfg_get(cm, "avoid_tissues");
    if ((st = cfg_expect(av, CFG_SEQ, false, "a list of tissue names", err)))
        goto done;
    if (av) {
        /* every item a tissue name, none dropped (the names are checked against the grid in
         * plan.c: a misspelt one turned the needle-path check off; session 30) */
        for (size_t i = 0; i < av->n; i++) {
            cfg_node *it = av->items[i];
            char where[600];
            if (it->kind != CFG_SCALAR || !it->value || !it->value[0] ||
                strlen(it->value) >= ABL_MARGIN_NAME_LEN) {
                st = abl_fail(err, ABL_EINVAL,
                              "%s: 'constraints.avoid_tissues[%zu]': expected a tissue name",
                              cfg_where(it, where, sizeof where), i);
                goto done;
            }
            if (P->navoid == PLAN_MAX_AVOID) {
                st = abl_fail(err, ABL_EINVAL,
                              "%s: 'constraints.avoid_tissues': at most %d tissues",
                              cfg_where(it, where, sizeof where), PLAN_MAX_AVOID);
                goto done;
            }
            snprintf(P->avoid[P->navoid++], ABL_MARGIN_NAME_LEN, "%s", it->value);
        }
    } else {
        for (int c = 0; c < P->ncrit && P->navoid < PLAN_MAX_AVOID; c++) {
            /* both names are ABL_MARGIN_NAME_LEN arrays of P: a plain copy */
            memcpy(P->avoid[P->navoid++], P->crit[c].tissue, ABL_MARGIN_NAME_LEN);
        }
    }

    /* optimiser */
    cfg_node *om = cfg_get(root, "optimiser");
    if ((st = cfg_expect(om, CFG_MAP, false, "a mapping of optimiser keys", err)) ||
        (st = cfg_check_decl(om, &optimiser_keys, CFG_ALL_VARIANTS, err)))
        goto done;
    long v;
    if ((st = cfg_get_long(om, "max_evaluations", false, 40, 1, 100000, &v, err))) goto done;
    P->max_evals = (int)v;
    if ((st = cfg_get_long(om, "coarsen", false, 2, 1, 8, &v, err))) goto done;
    P->coarsen = (int)v;
    if ((st = cfg_get_long(om, "fine_evaluations", false, 8, 0, 100000, &v, err))) goto done;
    P->fine_evals = (int)v;
    if ((st = cfg_get_long(om, "starts", false, 1, 1, 16, &v, err))) goto done;
    P->starts = (int)v;
    if ((st = cfg_get_long(om, "rerank", false, 1, 1, PLAN_MAX_RERANK, &v, err))) goto done;
    P->rerank = (int)v;

    /* robustness */
    cfg_node *rm = cfg_get(root, "robustness");
    if ((st = cfg_expect(rm, CFG_MAP, false, "a mapping of robustness keys", err)) ||
        (st = cfg_check_decl(rm, &robustness_keys, CFG_ALL_VARIANTS, err)))
        goto done;
    if ((st = cfg_get_long(rm, "samples", false, 16, 0, 100000, &v, err))) goto done;
    P->rob_samples = (int)v;
    if ((st = cfg_get_long(rm, "seed", false, 1, 0, LONG_MAX, &v, err))) goto done;
    P->seed = (unsigned long)v;
    if ((st = cfg_get_double(rm, "placement_sd_mm", false, 2.0, &r_sd, &P->rob_sd_mm, err)) ||
        (st = cfg_get_double(rm, "perfusion_cv", false, 0.2, &r_cv, &P->rob_perf_cv, err)))
        goto done;
    const char *fid_names[] = {"coarse", "full"};
    int fi;
    if ((st = cfg_get_enum(rm, "fidelity", false, 0, fid_names, 2, &fi, err))) goto done;
    P->rob_full = fi == 1;

    /* hash of what decides every evaluation: the plan tree and the base tree as written */
    char *txt = NULL;
    size_t tlen = 0;
    FILE *mf = open_memstream(&txt, &tlen);
    if (!mf) {
        st = abl_fail(err, ABL_ENOMEM, "out of memory");
        goto done;
    }
    /* not the 'scenario' line: the base tree below stands for the scenario's content, so a
     * moved plan file or another spelling of the same path keeps its journal */
    for (size_t i = 0; i < root->n; i++)
        if (strcmp(root->items[i]->key, "scenario")) {
            const cfg_node one = {.kind = CFG_MAP, .items = &root->items[i], .n = 1};
            cfg_emit(mf, &one);
        }
    fputs("\n---\n", mf);
    cfg_emit(mf, P->base);
    fclose(mf);
    P->plan_hash = abl_fnv1a(inputs_h, txt, tlen);
    free(txt);

done:
    cfg_free(root);
    return st;
}

abl_status plan_spec_rebase(plan_spec *P, const char *out_dir_real, abl_error *err)
{
    /* paths in the base tree become relative to the output directory, where every candidate
     * and the plan itself are loaded from */
    abl_status st = rebase_path(P->base, "tissues_file", P->scenario_dir, out_dir_real, err);
    if (!st) st = rebase_path(P->base, "devices_file", P->scenario_dir, out_dir_real, err);
    if (!st) st = rebase_path(cfg_get(P->base, "grid"), "mesh", P->scenario_dir, out_dir_real, err);
    for (int k = 0; k < 2 && !st; k++)
        st = rebase_path(cfg_get(P->base, "physics"),
                         k ? "initial_state_file" : "initial_temperature_file", P->scenario_dir,
                         out_dir_real, err);
    if (st) return st;
    /* the plan names its own output file */
    cfg_node *out = cfg_get(P->base, "output");
    if (out && out->kind == CFG_MAP)
        for (size_t i = 0; i < out->n; i++)
            if (!strcmp(out->items[i]->key, "file")) {
                cfg_free(cfg_detach(out, i));
                break;
            }
    return ABL_OK;
}

void plan_spec_free(plan_spec *P)
{
    cfg_free(P->base);
    P->base = NULL;
}
