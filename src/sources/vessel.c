/* vessel.c - a large vessel as a convective heat sink (type 'vessel', issue 16; docs/VESSEL.md).
 *
 * Pennes perfusion is a volume-averaged sink of capillary flow; a vessel of a few millimetres
 * carries heat away through its wall, directionally, and the blood in it barely warms. Here the
 * lumen (every voxel of the tissue `lumen_tissue`) is held at the blood temperature (well mixed,
 * see below), and every tissue voxel b beside it exchanges heat with the blood through the
 * series of its half voxel and the convective film at the wall, per face of area A to the lumen:
 *
 *     G_face = 1 / (h_a / (2 k_b) + 1 / h_conv) / h_a        [W/m^3/K, per volume of b]
 *
 * with the wall on the face (the voxelised lumen). h_conv = Nu k_blood / D from the vessel's
 * diameter and mean velocity (Incropera & DeWitt, Fundamentals of Heat and Mass Transfer, 6th
 * ed., Ch. 8): laminar (Re < 2300) fully developed flow with uniform wall heat flux, Nu = 4.36
 * (eq. 8.53); turbulent, Dittus-Boelter Nu = 0.023 Re^0.8 Pr^0.4 (eq. 8.60, fluid heated). The
 * stencil already conducts G_k = harmonic(k_b, k_lumen) / h_a^2 through that face to the held
 * lumen voxel; the source adds the difference (G_face - G_k)(T_blood - T_b) as heat, from the
 * start-of-step temperature (every scheme), as the needle coupling does (applicator.h).
 *
 * Well mixed: the blood temperature does not rise along the vessel. The rise the absorbed heat
 * would cause, P / (rho c Q) with Q the volume flow, is reported in the series
 * (`outlet_rise_K`) so a user sees when that assumption fails (0.1-0.3 K for a 10 mm hepatic
 * vein at 0.1 m/s absorbing a few watts).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ablasim/applicator.h"
#include "ablasim/kernels.h"
#include "ablasim/sim.h"
#include "ablasim/source.h"

#define PI 3.14159265358979323846

typedef struct {
    char lumen[64];
    double diameter_m, velocity_m_s, viscosity_Pa_s, nusselt; /* nusselt <= 0: from Re */
    double T_blood_C;
    bool T_given;
} vessel_params;

static const cfg_keydecl vessel_decl[] = {
    CFG_KEY("lumen_tissue", "–", "blood", "a tissue of the table",
            "the voxels of this tissue are the lumen, held at the blood temperature"),
    CFG_KEY("diameter_mm", "mm", "required", "(0, 50]", "vessel diameter (for Re and h)"),
    CFG_KEY("mean_velocity_m_per_s", "m/s", "required", "(0, 5]", "mean blood velocity"),
    CFG_KEY("blood_temperature_C", "°C", "physics.arterial_temperature_C", "[-50, 60]",
            "temperature of the (well-mixed) blood"),
    CFG_KEY("blood_viscosity_Pa_s", "Pa s", "0.0035", "(0, 0.1]",
            "dynamic viscosity (for Re and Pr; ASSUMED whole blood at high shear)"),
    CFG_KEY("nusselt", "–", "from Re: 4.36 laminar, Dittus-Boelter turbulent", "(0, 1e4]",
            "override the Nusselt number of h = Nu k_blood / D"),
};
static const cfg_keytable vessel_keys = CFG_KEYTABLE(vessel_decl);

static void vessel_free_params(void *p)
{
    free(p);
}

static abl_status vessel_parse(cfg_node *e, const abl_scenario *sc, void **params,
                               abl_error *err)
{
    static const cfg_range dia_r = {0, 50, true, false, "mm"};
    static const cfg_range vel_r = {0, 5, true, false, "m/s"};
    static const cfg_range temp_r = {-50, 60, false, false, "C"};
    static const cfg_range mu_r = {0, 0.1, true, false, "Pa s"};
    static const cfg_range nu_r = {0, 1e4, true, false, NULL};
    *params = NULL;
    vessel_params *m = calloc(1, sizeof *m);
    if (!m) return abl_fail(err, ABL_ENOMEM, "out of memory");
    const char *lumen;
    double d_mm;
    abl_status st;
    if ((st = cfg_get_string(e, "lumen_tissue", false, "blood", &lumen, err)) ||
        (st = cfg_get_double(e, "diameter_mm", true, 0, &dia_r, &d_mm, err)) ||
        (st = cfg_get_double(e, "mean_velocity_m_per_s", true, 0, &vel_r, &m->velocity_m_s,
                             err)) ||
        (st = cfg_get_double(e, "blood_temperature_C", false, sc->T_arterial_C, &temp_r,
                             &m->T_blood_C, err)) ||
        (st = cfg_get_double(e, "blood_viscosity_Pa_s", false, 0.0035, &mu_r, &m->viscosity_Pa_s,
                             err)) ||
        (st = cfg_get_double(e, "nusselt", false, 0.0, &nu_r, &m->nusselt, err))) {
        free(m);
        return st;
    }
    if (tissue_table_find(&sc->tissues, lumen) < 0) {
        char where[600], path[300];
        cfg_node *n = cfg_get(e, "lumen_tissue");
        const cfg_node *at = n ? n : e;
        st = abl_fail(err, ABL_EINVAL,
                      "%s: '%s' = %s: no such tissue in the tissue table (name one of its "
                      "tissues, e.g. blood)",
                      cfg_where(at, where, sizeof where), cfg_path(at, path, sizeof path), lumen);
        free(m);
        return st;
    }
    snprintf(m->lumen, sizeof m->lumen, "%s", lumen);
    m->diameter_m = d_mm * 1e-3;
    *params = m;
    return ABL_OK;
}

/* A tissue voxel beside the lumen: the series conductance of its faces to the lumen and the
 * correction to what the stencil conducts through them [W/m^3/K]. */
typedef struct {
    size_t b;
    double G, dG;
} vessel_couple;

typedef struct {
    const vessel_params *p;
    double on_s, off_s, V_m3;
    double h_W_m2K, flow_m3_s, rho_c_blood;
    size_t nlumen, ncouple;
    size_t *lumen_idx, *heat_idx;
    double *lumen_T, *heat_q, *heat_G; /* heat_G: each coupled voxel's dG (source.h) */
    vessel_couple *couple;
    abl_series_buf series; /* time_s, power_W (heat into the blood), outlet_rise_K */
    double t_last;
    bool started;
} vessel_state;

#define VCOL 4
/* step_s: the length of the step the row's power applied over (output.c integrates P step_s) */
static const char *const vessel_cols[VCOL] = {"time_s", "power_W", "outlet_rise_K", "step_s"};

static void vessel_destroy(abl_source *s)
{
    vessel_state *m = s->state;
    if (m) {
        free(m->lumen_idx);
        free(m->heat_idx);
        free(m->lumen_T);
        free(m->heat_q);
        free(m->heat_G);
        free(m->couple);
        series_buf_free(&m->series);
        free(m);
    }
    free(s);
}

static abl_status vessel_update(abl_source *s, const abl_field_view *v, abl_source_contrib *out,
                                abl_error *err)
{
    vessel_state *m = s->state;
    *out = (abl_source_contrib){0};
    if (!source_window_on(v, m->on_s, m->off_s)) return ABL_OK;
    out->n_pin = m->nlumen;
    out->pin_idx = m->lumen_idx;
    out->pin_T_C = m->lumen_T;
    out->pins_absorb = true; /* heat other sources deposit in the blood is carried away */
    out->pins_anatomy = true; /* a lumen, not a needle track */
    if (v->pins_only) return ABL_OK;
    const double Tb = m->p->T_blood_C;
    double P = 0.0; /* heat into the blood [W], in creation order */
    for (size_t q = 0; q < m->ncouple; q++) {
        const vessel_couple *c = &m->couple[q];
        m->heat_G[q] = c->dG;
        m->heat_q[q] = c->dG * (Tb - v->T_C[c->b]);
        P += c->G * m->V_m3 * (v->T_C[c->b] - Tb);
    }
    out->n_heat = m->ncouple;
    out->heat_idx = m->heat_idx;
    out->heat_q_W_m3 = m->heat_q;
    out->heat_G_W_m3K = m->heat_G; /* dG < 0 (the wall conducts less than the stencil's face)
                                    * stays explicit: it only adds to the diagonal */
    if (!m->started || v->t_s > m->t_last) {
        const double row[VCOL] = {v->t_s, P, P / (m->rho_c_blood * m->flow_m3_s), v->step_h_s};
        abl_status st = series_buf_append(&m->series, row, s->name, err);
        if (st) return st;
    }
    m->started = true;
    m->t_last = v->t_s;
    return ABL_OK;
}

static void vessel_series(const abl_source *s, abl_source_series *out)
{
    const vessel_state *m = s->state;
    out->ncol = VCOL;
    out->columns = vessel_cols;
    out->nrow = m->series.nrow;
    out->rows = m->series.rows;
}

/* Checkpoint state: the series and where it stands (the rest follows from the scenario). */
static abl_status vessel_state_io(const abl_source *s, abl_blob *b, abl_error *err)
{
    vessel_state *m = s->state;
    abl_blob_io(b, &m->started, sizeof m->started);
    abl_blob_io(b, &m->t_last, sizeof m->t_last);
    abl_status st = series_buf_io(&m->series, b, s->name, err);
    if (st) return st;
    if (b->bad)
        return abl_fail(err, ABL_EINVAL, "source '%s' (vessel): checkpoint state truncated",
                        s->name);
    return ABL_OK;
}

static const abl_source_ops vessel_ops = {.type = "vessel",
                                          .update = vessel_update,
                                          .destroy = vessel_destroy,
                                          .series = vessel_series,
                                          .state_io = vessel_state_io};

static abl_status vessel_create(const abl_source_cfg *cfg, const abl_sim *sim, abl_source **out,
                                abl_error *err)
{
    *out = NULL;
    const vessel_params *p = cfg->params;
    const abl_grid *g = &sim->grid;
    const abl_tissue_table *tt = &sim->sc->tissues;
    abl_source *s;
    void *state;
    abl_status st = source_alloc(cfg, &vessel_ops, sizeof(vessel_state), &s, &state, err);
    if (st) return st;
    vessel_state *m = state;
    m->p = p;
    m->on_s = cfg->on_s;
    m->off_s = cfg->off_s;
    m->V_m3 = grid_voxel_volume_m3(g);
    m->series.ncol = VCOL;
    const int ti = tissue_table_find(tt, p->lumen);
    int lm = -1;
    for (int k = 0; k < sim->nmat; k++)
        if (sim->mat_tissue[k] == ti) lm = k;
    size_t nl = 0;
    for (size_t c = 0; lm >= 0 && c < g->n; c++) nl += sim->material[c] == lm;
    if (nl == 0) {
        vessel_destroy(s);
        return abl_fail(err, ABL_EINVAL,
                        "%s: source '%s': no voxel of the grid is '%s' (lumen_tissue): label the "
                        "vessel's lumen with that tissue (grid.shapes or grid.labels)",
                        cfg->where, cfg->name, p->lumen);
    }
    /* A lumen is a tube inside the tissue. One that fills most of the grid is a mistake (the
     * grid's background named as lumen_tissue held the whole grid at the blood temperature:
     * every zone 0 mL, exit 0; adversarial test, session 28). */
    if (nl > g->n / 2) {
        vessel_destroy(s);
        return abl_fail(err, ABL_EINVAL,
                        "%s: source '%s': lumen_tissue '%s' is %zu of the grid's %zu voxels "
                        "(more than half), which would all be held at the blood temperature; "
                        "the lumen must be a vessel labelled with a tissue of its own (the "
                        "default 'blood'), not the tissue around it",
                        cfg->where, cfg->name, p->lumen, nl, g->n);
    }
    /* convective film: Re, Pr and Nu of the blood in the tube (file comment) */
    const abl_tissue *bt = &tt->t[ti];
    m->rho_c_blood = bt->rho_kg_m3 * bt->c_J_kgK;
    const double Re = bt->rho_kg_m3 * p->velocity_m_s * p->diameter_m / p->viscosity_Pa_s;
    const double Pr = p->viscosity_Pa_s * bt->c_J_kgK / bt->k_W_mK;
    const double Nu = p->nusselt > 0.0 ? p->nusselt
                      : Re < 2300.0    ? 4.36
                                       : 0.023 * pow(Re, 0.8) * pow(Pr, 0.4);
    m->h_W_m2K = Nu * bt->k_W_mK / p->diameter_m;
    m->flow_m3_s = p->velocity_m_s * 0.25 * PI * p->diameter_m * p->diameter_m;
    m->lumen_idx = malloc(nl * sizeof *m->lumen_idx);
    m->lumen_T = malloc(nl * sizeof *m->lumen_T);
    m->couple = malloc(nl * 6 * sizeof *m->couple);
    m->heat_idx = malloc(nl * 6 * sizeof *m->heat_idx);
    m->heat_q = malloc(nl * 6 * sizeof *m->heat_q);
    m->heat_G = malloc(nl * 6 * sizeof *m->heat_G);
    double *G = grid_alloc_field(g, 0.0), *dG = grid_alloc_field(g, 0.0);
    if (!m->lumen_idx || !m->lumen_T || !m->couple || !m->heat_idx || !m->heat_q || !m->heat_G ||
        !G || !dG) {
        grid_free_field(G);
        grid_free_field(dG);
        vessel_destroy(s);
        return abl_fail(err, ABL_ENOMEM, "out of memory creating source '%s'", cfg->name);
    }
    /* per tissue voxel beside the lumen: the series conductance of its lumen faces and the
     * difference to the stencil's face (the per-material divide form of the constant-property
     * tables, kernels.h, so the sum is exact there) */
    const int na[3] = {g->nx, g->ny, g->nz};
    const size_t stride[3] = {1, g->sy, g->sz};
    for (size_t c = 0; c < g->n; c++) {
        if (sim->material[c] != lm) continue;
        m->lumen_idx[m->nlumen] = c;
        m->lumen_T[m->nlumen++] = p->T_blood_C;
        const int ijk[3] = {(int)(c % g->sy), (int)(c / g->sy % (size_t)g->ny), (int)(c / g->sz)};
        for (int f = 0; f < 6; f++) {
            const int a = f / 2, d = f % 2 ? 1 : -1;
            if (ijk[a] + d < 0 || ijk[a] + d >= na[a]) continue;
            const size_t b = d > 0 ? c + stride[a] : c - stride[a];
            if (sim->material[b] == lm) continue;
            const double kb = sim->k37[sim->material[b]], kl = sim->k37[lm];
            const double h = g->h_m[a];
            const double Gs = 1.0 / (h / (2.0 * kb) + 1.0 / m->h_W_m2K) / h;
            G[b] += Gs;
            dG[b] += Gs - abl_face_conductance_div(kb, kl, h * h);
        }
    }
    for (size_t b = 0; b < g->n; b++) {
        if (!(G[b] > 0.0)) continue;
        m->couple[m->ncouple] = (vessel_couple){b, G[b], dG[b]};
        m->heat_idx[m->ncouple++] = b;
    }
    grid_free_field(G);
    grid_free_field(dG);
    *out = s;
    return ABL_OK;
}

const abl_source_type_info vessel_source_type = {"vessel", &vessel_keys, vessel_parse,
                                                 vessel_create, vessel_free_params};
