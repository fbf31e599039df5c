/* sweep_validate.c - check a sweep against its base scenario before anything runs, and derive
 * the results table's columns from it.
 *
 * Every swept key is tried alone with its first and last value (so that a typo or an
 * out-of-range value is reported at the sweep file line of its axis), then the first and last
 * combination, and the first is planned (sim_create: shapes and probes against the grid).
 * Sampled parameters are tried at their median: samples in the tails may be out of range,
 * which makes that point an error row, not the whole sweep invalid. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ablasim/scenario.h"
#include "ablasim/sim.h"
#include "sweep_internal.h"

void layout_free(sweep_layout *L)
{
    if (!L) return;
    for (int i = 0; i < L->nvals; i++) {
        free(L->vname[i]);
        free(L->vunit[i]);
    }
    free(L->vname);
    free(L->vunit);
    free(L->cols);
    free(L->tis);
    free(L);
}

sweep_row *rows_alloc(size_t n, int nvals)
{
    sweep_row *r = calloc(n ? n : 1, sizeof *r);
    double *v = malloc((n ? n : 1) * (size_t)(nvals ? nvals : 1) * sizeof *v);
    if (!r || !v) {
        free(r);
        free(v);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        r[i].val = v + i * (size_t)nvals;
        for (int k = 0; k < nvals; k++)
            r[i].val[k] = NAN;
    }
    if (n == 0) r[0].val = v;
    return r;
}

void rows_free(sweep_row *rows, size_t n)
{
    if (!rows) return;
    for (size_t i = 0; i < n; i++)
        free(rows[i].msg);
    free(rows[0].val); /* one block for all */
    free(rows);
}

void row_set(sweep_row *r, abl_status st, const char *msg, int nvals)
{
    r->done = true;
    r->status = st;
    free(r->msg);
    r->msg = st && msg ? sweep_strdup(msg) : NULL;
    if (st)
        for (int k = 0; k < nvals; k++)
            r->val[k] = NAN;
}

/* Unit of a column or key from its suffix (names carry units, see README). */
const char *sweep_unit_of(const char *name)
{
    static const char *const tab[][2] = {
        {"_per_s", "1/s"},
        {"_W_per_m2K", "W/(m^2 K)"},
        {"_W_per_m3", "W/m^3"},
        {"_kg_per_m3", "kg/m^3"},
        {"_J_per_kgK", "J/(kg K)"},
        {"_W_per_mK", "W/(m K)"},
        {"_per_K", "1/K"},
        {"_S_per_m", "S/m"},
        {"_J_per_kg", "J/kg"},
        {"_J_per_mol", "J/mol"},
        {"_mL", "mL"},
        {"_mm", "mm"},
        {"_C", "degC"},
        {"_s", "s"},
        {"_W", "W"},
        {"_J", "J"},
    };
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++) {
        size_t m = strlen(tab[i][0]);
        if (n > m && !strcmp(name + n - m, tab[i][0])) return tab[i][1];
    }
    return "as named by the scenario key";
}

static abl_status add_val(sweep_layout *L, const char *unit, abl_error *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static abl_status add_val(sweep_layout *L, const char *unit, abl_error *err, const char *fmt, ...)
{
    char name[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    char **vn = realloc(L->vname, (size_t)(L->nvals + 1) * sizeof *vn);
    if (vn) L->vname = vn;
    char **vu = realloc(L->vunit, (size_t)(L->nvals + 1) * sizeof *vu);
    if (vu) L->vunit = vu;
    if (!vn || !vu) return abl_fail(err, ABL_ENOMEM, "out of memory");
    L->vname[L->nvals] = sweep_strdup(name);
    L->vunit[L->nvals] = sweep_strdup(unit ? unit : sweep_unit_of(name));
    L->nvals++;
    if (!L->vname[L->nvals - 1] || !L->vunit[L->nvals - 1])
        return abl_fail(err, ABL_ENOMEM, "out of memory");
    return ABL_OK;
}

/* Tissues that can appear in a point's grid: background, shapes, mapped mesh labels. */
static void mark_tissues(const abl_scenario *sc, bool *used)
{
    if (sc->background_tissue >= 0) used[sc->background_tissue] = true;
    for (int r = 0; r < sc->nregions; r++)
        if (sc->regions[r].tissue >= 0) used[sc->regions[r].tissue] = true;
    if (sc->mesh_path)
        for (int l = 0; l < 256; l++)
            if (sc->mesh_label_tissue[l] >= 0) used[sc->mesh_label_tissue[l]] = true;
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 8192, len = 0;
    char *t = malloc(cap);
    while (t) {
        if (len + 1 >= cap) {
            char *n = realloc(t, cap * 2);
            if (!n) {
                free(t);
                t = NULL;
                break;
            }
            t = n;
            cap *= 2;
        }
        size_t r = fread(t + len, 1, cap - len - 1, f);
        len += r;
        if (r == 0) break;
    }
    fclose(f);
    if (t) t[len] = '\0';
    return t;
}

static abl_status layout_build(abl_sweep *sw, const abl_scenario *first, const abl_scenario *last,
                               const abl_scenario *base, abl_error *err)
{
    sweep_layout *L = calloc(1, sizeof *L);
    if (!L) return abl_fail(err, ABL_ENOMEM, "out of memory");
    sw->layout = L;
    L->per_tissue = sw->per_tissue;
    L->n_hot = first->n_hot;
    L->n_cold = first->n_cold;
    memcpy(L->hot_C, first->hot_C, sizeof L->hot_C);
    memcpy(L->cold_C, first->cold_C, sizeof L->cold_C);

    /* Tissue columns: union over the first and last point, in tissue-table order. */
    bool used[ABL_MAX_MATERIALS + 16] = {false};
    if (first->tissues.n > ABL_MAX_MATERIALS + 16)
        return abl_fail(err, ABL_EINVAL, "%s: more than %d tissues", first->path,
                        ABL_MAX_MATERIALS + 16);
    mark_tissues(first, used);
    bool used_last[ABL_MAX_MATERIALS + 16] = {false};
    if (last->tissues.n <= ABL_MAX_MATERIALS + 16) mark_tissues(last, used_last);
    L->tis = calloc((size_t)first->tissues.n + (size_t)last->tissues.n + 1, sizeof *L->tis);
    if (!L->tis) return abl_fail(err, ABL_ENOMEM, "out of memory");
    for (int t = 0; t < first->tissues.n; t++)
        if (used[t])
            snprintf(L->tis[L->ntis++], ABL_TISSUE_NAME_LEN, "%s", first->tissues.t[t].name);
    for (int t = 0; t < last->tissues.n && t < ABL_MAX_MATERIALS + 16; t++) {
        if (!used_last[t]) continue;
        bool have = false;
        for (int i = 0; i < L->ntis; i++)
            have |= !strcmp(L->tis[i], last->tissues.t[t].name);
        if (!have) snprintf(L->tis[L->ntis++], ABL_TISSUE_NAME_LEN, "%s", last->tissues.t[t].name);
    }

    abl_status st;
    L->i_dt = L->nvals;
    if ((st = add_val(L, "s", err, "dt_s")) || (st = add_val(L, "1", err, "steps")) ||
        (st = add_val(L, "s", err, "wall_time_s")))
        return st;
    L->i_steps = L->i_dt + 1;
    L->i_wall = L->i_dt + 2;
    L->i_hot = L->nvals;
    L->i_vabl = -1;
    for (int h = 0; h < L->n_hot; h++) {
        if (L->hot_C[h] == sw->ablation_threshold_C) L->i_vabl = L->nvals;
        if ((st = add_val(L, "mL", err, "V_Tmax_ge_%gC_mL", L->hot_C[h]))) return st;
    }
    L->i_cold = L->nvals;
    for (int c = 0; c < L->n_cold; c++)
        if ((st = add_val(L, "mL", err, "V_Tmin_le_%gC_mL", L->cold_C[c]))) return st;
    L->i_zone = L->nvals;
    static const char axis[3] = {'x', 'y', 'z'};
    for (int a = 0; a < 3; a++)
        if ((st = add_val(L, "mm", err, "zone_Tmax_ge_%gC_%c_mm", sw->ablation_threshold_C,
                          axis[a])))
            return st;
    L->i_tmax_t = L->i_tmin_t = L->i_hot_t = L->i_cold_t = -1;
    if (L->per_tissue) {
        L->i_tmax_t = L->nvals;
        for (int t = 0; t < L->ntis; t++)
            if ((st = add_val(L, "degC", err, "T_max_%s_C", L->tis[t]))) return st;
        L->i_tmin_t = L->nvals;
        for (int t = 0; t < L->ntis; t++)
            if ((st = add_val(L, "degC", err, "T_min_%s_C", L->tis[t]))) return st;
        L->i_hot_t = L->nvals;
        for (int h = 0; h < L->n_hot; h++)
            for (int t = 0; t < L->ntis; t++)
                if ((st = add_val(L, "mL", err, "V_Tmax_ge_%gC_%s_mL", L->hot_C[h], L->tis[t])))
                    return st;
        L->i_cold_t = L->nvals;
        for (int c = 0; c < L->n_cold; c++)
            for (int t = 0; t < L->ntis; t++)
                if ((st = add_val(L, "mL", err, "V_Tmin_le_%gC_%s_mL", L->cold_C[c], L->tis[t])))
                    return st;
    }
    /* margin columns (issue 7), filled by point_collect_margin() in sweep_point.c; NaN for
     * a point without tumour voxels. The fingerprint below changes with the columns, so an
     * older journal is refused, not misread. */
    L->i_margin = L->nvals;
    if ((st = add_val(L, "mm", err, "margin_min_mm")) || (st = add_val(L, "1", err, "verdict_pass")))
        return st;

    /* all columns, in table order */
    L->ncols = 1 + sw->nkeys + 1 + L->nvals + 1;
    L->cols = calloc((size_t)L->ncols, sizeof *L->cols);
    if (!L->cols) return abl_fail(err, ABL_ENOMEM, "out of memory");
    int c = 0;
    L->cols[c++] = "point";
    for (int k = 0; k < sw->nkeys; k++)
        L->cols[c++] = sw->keys[k].column;
    L->cols[c++] = "status";
    for (int v = 0; v < L->nvals; v++)
        L->cols[c++] = L->vname[v];
    L->cols[c++] = "message";
    for (int k = 0; k < sw->nkeys; k++)
        for (int v = 0; v < L->nvals; v++)
            if (!strcmp(sw->keys[k].column, L->vname[v]))
                return abl_fail(err, ABL_EINVAL,
                                "%s:%d: column name '%s' is also an output column; set 'name:' "
                                "to another",
                                sw->path, sw->keys[k].line, sw->keys[k].column);

    /* Fingerprint of what the journal's numbers depend on besides the --set lines: the base
     * scenario text, the tissue table text, the contents of the other files the base scenario
     * reads (mesh, initial temperature field or state, device presets: replaced between an
     * interrupted sweep and its resume, the table mixed two inputs; found by an adversarial
     * review, session 23) and the columns (thresholds, tissues). */
    uint64_t h = ABL_FNV1A_INIT;
    h = abl_fnv1a(h, base->text, strlen(base->text));
    char *tt = base->tissues_path ? read_text(base->tissues_path) : NULL;
    if (tt) h = abl_fnv1a(h, tt, strlen(tt));
    free(tt);
    const char *files[3] = {base->mesh_path, base->initial_T_path, base->devices_path};
    for (int i = 0; i < 3; i++)
        if (files[i]) h = abl_fnv1a_file(h, files[i], true, NULL); /* appearing or vanishing counts */
    for (int i = 0; i < L->ncols; i++)
        h = abl_fnv1a(h, L->cols[i], strlen(L->cols[i]) + 1);
    L->fingerprint = h;
    return ABL_OK;
}

static bool same_grid(const abl_scenario *a, const abl_scenario *b, char *what, size_t len)
{
    if ((a->mesh_path == NULL) != (b->mesh_path == NULL) ||
        (a->mesh_path && strcmp(a->mesh_path, b->mesh_path))) {
        snprintf(what, len, "grid.mesh");
        return false;
    }
    for (int d = 0; d < 3; d++) {
        if (!a->mesh_path && a->dims[d] != b->dims[d]) {
            snprintf(what, len, "grid.dims");
            return false;
        }
        if (!a->mesh_path && a->spacing_m[d] != b->spacing_m[d]) {
            snprintf(what, len, "grid.spacing_mm");
            return false;
        }
        if (a->origin_given != b->origin_given || a->origin_m[d] != b->origin_m[d]) {
            snprintf(what, len, "grid.origin_mm");
            return false;
        }
    }
    return true;
}

/* Remember a file the points read (tissue table, mesh) for the collision check of sweep_run;
 * each name once. */
static abl_status add_extra(abl_sweep *sw, const char *role, const char *path, abl_error *err)
{
    if (!path) return ABL_OK;
    for (int i = 0; i < sw->nextra; i++)
        if (!strcmp(sw->extra_path[i], path)) return ABL_OK;
    if (sw->nextra >= SWEEP_MAX_EXTRA_INPUTS) return ABL_OK; /* 3 scenarios x 3: never */
    char *p = sweep_strdup(path);
    if (!p) return abl_fail(err, ABL_ENOMEM, "out of memory");
    sw->extra_path[sw->nextra] = p;
    sw->extra_role[sw->nextra++] = role;
    return ABL_OK;
}

static abl_status load_with(const abl_sweep *sw, const char *const *sets, int nsets,
                            abl_scenario **sc, abl_error *err)
{
    return scenario_load(sw->base_path, sets, nsets, sc, err);
}

/* "key=median" of a sampled parameter. */
static void median_set(const sweep_key *key, char *buf, size_t len)
{
    double med = key->dist == SWEEP_DIST_UNIFORM  ? 0.5 * (key->p1 + key->p2)
                 : key->dist == SWEEP_DIST_NORMAL ? key->p1
                                                  : exp(key->p1);
    snprintf(buf, len, "%s=%.15g", key->key, med);
}

/* The sets of point p with sampled parameters at their medians. */
static abl_status point_sets_median(const abl_sweep *sw, size_t p, char **sets, abl_error *err)
{
    for (int k = 0; k < sw->nkeys; k++) {
        const sweep_key *key = &sw->keys[k];
        if (!key->sampled) {
            sets[k] = sweep_strdup(sw->set[p * (size_t)sw->nkeys + k]);
        } else {
            char buf[400];
            median_set(key, buf, sizeof buf);
            sets[k] = sweep_strdup(buf);
        }
        if (!sets[k]) return abl_fail(err, ABL_ENOMEM, "out of memory");
    }
    return ABL_OK;
}

abl_status sweep_validate(abl_sweep *sw, abl_error *err)
{
    if (sw->validated) return ABL_OK;
    abl_status st;
    abl_error e = {0};
    abl_scenario *base = NULL, *first = NULL, *last = NULL;
    char **sets = NULL;
    if ((st = load_with(sw, NULL, 0, &base, &e))) {
        return abl_fail(err, st, "%s: base scenario %s: %s", sw->path, sw->base_path, e.msg);
    }
    /* each key alone */
    for (int k = 0; k < sw->nkeys && !st; k++) {
        const sweep_key *key = &sw->keys[k];
        for (int end = 0; end < 2 && !st; end++) {
            char buf[4200];
            if (key->sampled) {
                if (end) break;
                median_set(key, buf, sizeof buf);
            } else {
                size_t vi = end ? key->nvalues - 1 : 0;
                if (end && vi == 0) break;
                snprintf(buf, sizeof buf, "%s=%s", key->key, key->values[vi]);
            }
            const char *one[1] = {buf};
            abl_scenario *sc = NULL;
            if ((st = load_with(sw, one, 1, &sc, &e))) {
                const char *val = strchr(buf, '=') + 1;
                st = abl_fail(err, st, "%s:%d: %s '%s' = %s (%s): %s", sw->path, key->line,
                              key->sampled ? "parameter" : "axis", key->key, val,
                              key->sampled ? "median of its distribution"
                              : end        ? "last value"
                                           : "first value",
                              e.msg);
            }
            scenario_free(sc);
        }
    }
    /* first and last combination */
    if (!st) {
        sets = calloc((size_t)sw->nkeys, sizeof *sets);
        if (!sets) st = abl_fail(err, ABL_ENOMEM, "out of memory");
    }
    for (int end = 0; end < 2 && !st; end++) {
        size_t p = end ? sw->npoints - 1 : 0;
        if ((st = point_sets_median(sw, p, sets, err))) break;
        abl_scenario **dst = end ? &last : &first;
        if ((st = load_with(sw, (const char *const *)sets, sw->nkeys, dst, &e)))
            st = abl_fail(err, st, "%s: point %zu (%s combination of the axes): %s", sw->path, p,
                          end ? "last" : "first", e.msg);
        for (int k = 0; k < sw->nkeys; k++) {
            free(sets[k]);
            sets[k] = NULL;
        }
    }
    free(sets);
    if (!st) {
        /* Plan the first point (grid, materials, sources; no time steps): a shape or probe
         * outside the grid is found only here, and would otherwise fail every point. */
        abl_sim *sim = NULL;
        if ((st = sim_create(first, &sim, &e)))
            st = abl_fail(err, st,
                          "%s: point 0 (first combination of the axes) cannot be "
                          "planned: %s",
                          sw->path, e.msg);
        sim_destroy(sim);
    }
    if (!st) st = layout_build(sw, first, last, base, err);
    for (int i = 0; i < sw->nextra; i++)
        free(sw->extra_path[i]);
    sw->nextra = 0;
    const abl_scenario *const scs[3] = {base, first, last};
    for (int i = 0; i < 3 && !st; i++) {
        st = add_extra(sw, "tissues file", scs[i]->tissues_path, err);
        if (!st) st = add_extra(sw, "mesh (grid.mesh)", scs[i]->mesh_path, err);
        if (!st)
            st = add_extra(sw, scenario_initial_role(scs[i]), scs[i]->initial_T_path, err);
    }
    if (!st) {
        bool sampling = sw->nkeys > sw->naxes;
        bool want = sw->probability_map == 1 || (sw->probability_map == -1 && sampling);
        char what[64];
        sw->prob_map_note[0] = '\0';
        /* true: every point must share the grid; the first and last points are compared
         * below, and a key that moves the grid between them (a middle value of an axis) is
         * found here, before any point runs */
        for (int k = 0; k < sw->nkeys && sw->probability_map == 1 && !st; k++) {
            static const char *const geo[] = {"grid.dims", "grid.spacing_mm", "grid.origin_mm",
                                              "grid.mesh", "grid"};
            const char *key = sw->keys[k].key;
            bool moves = sw->keys[k].sampled;
            for (size_t v = 1; v < sw->keys[k].nvalues && !moves; v++)
                moves = strcmp(sw->keys[k].values[v], sw->keys[k].values[0]) != 0;
            for (size_t g = 0; g < sizeof geo / sizeof *geo && moves; g++) {
                const size_t n = strlen(geo[g]);
                if (strncmp(key, geo[g], n) || (key[n] && key[n] != '.')) continue;
                if (g == 4 && key[n] == '.') continue; /* grid.background etc.: same grid */
                st = abl_fail(err, ABL_EINVAL,
                              "%s:%d: outputs.probability_map: true needs one grid for every "
                              "point, but '%s' takes more than one value; sweep it in separate "
                              "sweeps, or set probability_map: auto (the map is then left out "
                              "with a note) or false",
                              sw->path, sw->keys[k].line, key);
                break;
            }
        }
        if (!st && want && !same_grid(first, last, what, sizeof what)) {
            if (sw->probability_map == 1)
                st = abl_fail(err, ABL_EINVAL,
                              "%s: outputs.probability_map: true needs one grid for every point, "
                              "but the first and last points differ in %s; sweep %s in separate "
                              "sweeps or set probability_map: false",
                              sw->path, what, what);
            else
                snprintf(sw->prob_map_note, sizeof sw->prob_map_note,
                         "no probability map: the points do not share one grid (%s differs)", what);
            want = false;
        }
        sw->prob_map_on = want;
    }
    scenario_free(base);
    scenario_free(first);
    scenario_free(last);
    if (st) {
        layout_free(sw->layout);
        sw->layout = NULL;
        return st;
    }
    sw->validated = true;
    return ABL_OK;
}

const char *const *sweep_columns(const abl_sweep *sw, int *ncols)
{
    if (!sw->layout) {
        *ncols = 0;
        return NULL;
    }
    *ncols = sw->layout->ncols;
    return (const char *const *)sw->layout->cols;
}
