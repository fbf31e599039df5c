/* tissue.h - the tissue property table (configs/tissues.yaml) and per-scenario overrides.
 *
 * Values are SI. Thermal properties (rho, c, k, Pennes perfusion w_b, metabolic heat) are
 * required for every tissue; electrical, dielectric, frozen-state, latent heat and damage
 * parameters are optional and NaN when the table has no value (later modules refuse to run
 * when they need one that is missing, naming the tissue and key).
 */
#ifndef ABLASIM_TISSUE_H
#define ABLASIM_TISSUE_H

#include "ablasim/config.h"
#include "ablasim/status.h"

#define ABL_TISSUE_NAME_LEN 64

typedef struct {
    char name[ABL_TISSUE_NAME_LEN];
    double rho_kg_m3, c_J_kgK, k_W_mK;
    double perfusion_per_s;   /* w_b: m^3 blood per m^3 tissue per s */
    double q_met_W_m3;        /* metabolic heat */
    double k_temp_coeff_per_K; /* k(T) = k (1 + coeff (T - 37 C)); NaN/0: constant */
    /* optional (NaN when absent) */
    double sigma_480kHz_S_m;
    double eps_r_915MHz, sigma_915MHz_S_m, eps_r_2450MHz, sigma_2450MHz_S_m;
    double frozen_rho_kg_m3, frozen_c_J_kgK, frozen_k_W_mK;
    double water_fraction, latent_fusion_J_kg;
    double arrhenius_A_per_s, arrhenius_Ea_J_mol;
} abl_tissue;

typedef struct {
    abl_tissue *t;
    int n;
    double blood_rho_kg_m3, blood_c_J_kgK;
} abl_tissue_table;

/* Load path (a YAML file with 'blood' and 'tissues'), then apply overrides: a mapping
 * name -> {key: value} from the scenario's 'tissues:' section (may be NULL), which may change
 * values of existing tissues or define new ones (then all required keys must be given). */
abl_status tissue_table_load(const char *path, cfg_node *overrides, abl_tissue_table *out,
                             abl_error *err);
void tissue_table_free(abl_tissue_table *tab);
/* Index of a tissue by name, -1 if absent. */
int tissue_table_find(const abl_tissue_table *tab, const char *name);

#endif
