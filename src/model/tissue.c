/* tissue.c - configs/tissues.yaml reader with per-scenario overrides. */
#include "ablasim/tissue.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *key;
    size_t offset;
    bool required;
    cfg_range range;
} prop_def;

#define P(key, field, req, lo, hi, lo_open, unit)                                                \
    {key, offsetof(abl_tissue, field), req, {lo, hi, lo_open, false, unit}}

/* Ranges: wide physical bounds that catch unit mistakes (k in W/m/K, not mW), not opinions. */
static const prop_def props[] = {
    P("density_kg_per_m3", rho_kg_m3, true, 0.5, 5000, false, "kg/m^3"),
    P("specific_heat_J_per_kgK", c_J_kgK, true, 100, 10000, false, "J/(kg K)"),
    P("thermal_conductivity_W_per_mK", k_W_mK, true, 0.01, 10, false, "W/(m K)"),
    P("perfusion_per_s", perfusion_per_s, true, 0, 1, false, "1/s"),
    P("metabolic_heat_W_per_m3", q_met_W_m3, true, 0, 1e5, false, "W/m^3"),
    P("thermal_conductivity_temp_coeff_per_K", k_temp_coeff_per_K, false, -0.05, 0.05, false,
      "1/K"),
    P("electrical_conductivity_480kHz_S_per_m", sigma_480kHz_S_m, false, 0, 100, false, "S/m"),
    P("relative_permittivity_915MHz", eps_r_915MHz, false, 1, 200, false, NULL),
    P("electrical_conductivity_915MHz_S_per_m", sigma_915MHz_S_m, false, 0, 100, false, "S/m"),
    P("relative_permittivity_2450MHz", eps_r_2450MHz, false, 1, 200, false, NULL),
    P("electrical_conductivity_2450MHz_S_per_m", sigma_2450MHz_S_m, false, 0, 100, false, "S/m"),
    P("frozen_density_kg_per_m3", frozen_rho_kg_m3, false, 0.5, 5000, false, "kg/m^3"),
    P("frozen_specific_heat_J_per_kgK", frozen_c_J_kgK, false, 100, 10000, false, "J/(kg K)"),
    P("frozen_thermal_conductivity_W_per_mK", frozen_k_W_mK, false, 0.01, 10, false, "W/(m K)"),
    P("water_content_fraction", water_fraction, false, 0, 1, false, NULL),
    P("latent_heat_fusion_J_per_kg", latent_fusion_J_kg, false, 0, 4e5, false, "J/kg"),
    P("arrhenius_A_per_s", arrhenius_A_per_s, false, 1, 1e200, false, "1/s"),
    P("arrhenius_Ea_J_per_mol", arrhenius_Ea_J_mol, false, 1e4, 1e7, false, "J/mol"),
};
#define NPROPS (sizeof props / sizeof props[0])

static double *field(abl_tissue *t, size_t i)
{
    return (double *)((char *)t + props[i].offset);
}

/* Read the properties present in map into t; require the required ones when require_all. */
static abl_status read_props(cfg_node *map, abl_tissue *t, bool require_all, abl_error *err)
{
    const char *allowed[NPROPS + 1];
    for (size_t i = 0; i < NPROPS; i++) allowed[i] = props[i].key;
    allowed[NPROPS] = NULL;
    abl_status st;
    if ((st = cfg_expect(map, CFG_MAP, true, "a mapping of property: value", err))) return st;
    if ((st = cfg_check_keys(map, allowed, err))) return st;
    for (size_t i = 0; i < NPROPS; i++) {
        double *f = field(t, i);
        st = cfg_get_double(map, props[i].key, require_all && props[i].required, *f,
                            &props[i].range, f, err);
        if (st) return st;
    }
    return ABL_OK;
}

static void tissue_blank(abl_tissue *t, const char *name)
{
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    for (size_t i = 0; i < NPROPS; i++)
        if (!props[i].required) *field(t, i) = NAN;
}

int tissue_table_find(const abl_tissue_table *tab, const char *name)
{
    for (int i = 0; i < tab->n; i++)
        if (!strcmp(tab->t[i].name, name)) return i;
    return -1;
}

static abl_status check_name(cfg_node *entry, abl_error *err)
{
    const char *name = entry->key;
    size_t len = strlen(name);
    bool ok = len > 0 && len < ABL_TISSUE_NAME_LEN;
    for (size_t i = 0; ok && i < len; i++) {
        char c = name[i];
        ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    }
    if (ok) return ABL_OK;
    char where[600];
    return abl_fail(err, ABL_EINVAL,
                    "%s: tissue name '%s': use 1-%d characters a-z, 0-9 and '_'",
                    cfg_where(entry, where, sizeof where), name, ABL_TISSUE_NAME_LEN - 1);
}

static abl_status add_tissues(cfg_node *tissues, abl_tissue_table *tab, bool overrides,
                              abl_error *err)
{
    abl_status st;
    if ((st = cfg_expect(tissues, CFG_MAP, true, "a mapping of tissue name -> properties", err)))
        return st;
    for (size_t i = 0; i < tissues->n; i++) {
        cfg_node *e = tissues->items[i];
        e->used = true;
        if ((st = check_name(e, err))) return st;
        int idx = tissue_table_find(tab, e->key);
        if (idx >= 0 && !overrides) {
            char where[600];
            return abl_fail(err, ABL_EINVAL, "%s: tissue '%s' is defined twice",
                            cfg_where(e, where, sizeof where), e->key);
        }
        if (idx < 0) {
            if (tab->n >= 250) {
                char where[600];
                return abl_fail(err, ABL_EINVAL, "%s: more than 250 tissues",
                                cfg_where(e, where, sizeof where));
            }
            abl_tissue *nt = realloc(tab->t, (size_t)(tab->n + 1) * sizeof *nt);
            if (!nt) return abl_fail(err, ABL_ENOMEM, "out of memory");
            tab->t = nt;
            idx = tab->n++;
            tissue_blank(&tab->t[idx], e->key);
            /* a new tissue (also one first defined in a scenario) needs every required key */
            if ((st = read_props(e, &tab->t[idx], true, err))) return st;
        } else if ((st = read_props(e, &tab->t[idx], false, err))) {
            return st;
        }
    }
    return ABL_OK;
}

abl_status tissue_table_load(const char *path, cfg_node *overrides, abl_tissue_table *out,
                             abl_error *err)
{
    /* tissues.yaml's own maps (README "Tissue table" tells them in prose) */
    static const cfg_keydecl top_decl[] = {
        CFG_KEY("blood", NULL, "required", "mapping", "properties of blood (Pennes rho_b c_b)"),
        CFG_KEY("tissues", NULL, "required", "mapping name -> properties", "the tissues"),
    };
    static const cfg_keydecl blood_decl[] = {
        CFG_KEY("density_kg_per_m3", "kg/m³", "required", "[500, 2000]", "blood density"),
        CFG_KEY("specific_heat_J_per_kgK", "J/(kg K)", "required", "[1000, 10000]",
                "blood specific heat"),
    };
    static const cfg_keytable top_keys = CFG_KEYTABLE(top_decl);
    static const cfg_keytable blood_keys = CFG_KEYTABLE(blood_decl);
    static const cfg_range rho_r = {500, 2000, false, false, "kg/m^3"};
    static const cfg_range c_r = {1000, 10000, false, false, "J/(kg K)"};
    memset(out, 0, sizeof *out);
    cfg_node *root = NULL;
    abl_status st = cfg_load_file(path, &root, err);
    if (st) return st;
    cfg_node *blood = NULL;
    if ((st = cfg_check_decl(root, &top_keys, CFG_ALL_VARIANTS, err))) goto fail;
    blood = cfg_get(root, "blood");
    if ((st = cfg_expect(blood, CFG_MAP, true, "the 'blood' mapping", err))) {
        if (!blood) abl_fail(err, ABL_EINVAL, "%s: missing the 'blood' section", path);
        goto fail;
    }
    if ((st = cfg_check_decl(blood, &blood_keys, CFG_ALL_VARIANTS, err)) ||
        (st = cfg_get_double(blood, "density_kg_per_m3", true, 0, &rho_r, &out->blood_rho_kg_m3,
                             err)) ||
        (st = cfg_get_double(blood, "specific_heat_J_per_kgK", true, 0, &c_r,
                             &out->blood_c_J_kgK, err)))
        goto fail;
    cfg_node *tissues = cfg_get(root, "tissues");
    if (!tissues) {
        st = abl_fail(err, ABL_EINVAL, "%s: missing the 'tissues' section", path);
        goto fail;
    }
    if ((st = add_tissues(tissues, out, false, err))) goto fail;
    if (overrides && (st = add_tissues(overrides, out, true, err))) goto fail;
    cfg_free(root);
    return ABL_OK;
fail:
    cfg_free(root);
    tissue_table_free(out);
    return st;
}

void tissue_table_free(abl_tissue_table *tab)
{
    free(tab->t);
    tab->t = NULL;
    tab->n = 0;
}
