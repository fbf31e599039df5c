/* cryo.c - cryoablation probes (type 'cryo'): 1 to 8 needles whose active length is held at the
 * temperature of a freeze / passive thaw / active thaw protocol. Model and sources: docs/CRYO.md.
 *
 * Probe model. Argon (Joule-Thomson) and nitrogen cryoprobes bring their surface to -140..-185 C
 * within seconds and hold it while the ice ball grows (Rossi, Tanaka, Shimada & Rabin 2007,
 * Cryobiology 55:1; Young, Khodakov et al. 2012 for probe surface histories). The usual way to
 * model them, and the one used here, is a prescribed surface temperature on the freezing part
 * of the needle [tip, tip + L d] (d: unit vector from the tip towards the handle, L:
 * active_length_mm), radius r (gauge). The voxels within rh = max(r + 0.75 h, 1.5 h) of the
 * (end-pulled-back) segment are held (needle_hold_voxels, applicator.h), and each tissue voxel beside
 * them is coupled to the true surface at radius r through the line-source profile
 * (coupling_build below; docs/CRYO.md "Sub-voxel probe coupling"), so the ice ball does not
 * depend on where the axis falls on the grid. The needle shaft behind the active length is
 * insulated in real probes (vacuum jacket) and is not modelled.
 *
 * Protocol. A list of phases {freeze | passive_thaw | active_thaw, duration_s, temperature_C}
 * starting at the source's on_s, shared by all probes or given per probe. Freeze and active
 * thaw pin the probe voxels at a temperature that moves linearly from the probe's mean
 * temperature at the start of the phase to the set value within ramp_s (the probe cool-down /
 * warm-up time). Passive thaw and the time after the last phase pin nothing: the probe voxels
 * are ordinary tissue again (the probe is off; gas flow stopped, the needle sits in its own ice
 * and thaws with it). Clinical freeze-thaw-freeze protocols: e.g. 10 min freeze, 5-8 min
 * passive thaw, 10 min freeze (Galil/Boston Scientific IceRod instructions; Littrup et al. 2009).
 *
 * Extraction limit. A real probe removes heat at a finite rate (gas flow x enthalpy
 * difference), so it cannot hold its set temperature against any load. With max_extraction_W,
 * each step first estimates the heat the pinned probe would draw from the current field,
 *   P = sum over faces (probe voxel a, non-probe neighbour b) of V G_ab (T_b - T_pin)
 *     + sum over domain faces of probe voxels of V G_bound (T_wall - T_pin),
 *     + sum over coupled voxels b of V k_ab dG_b (T_b - T_pin)            (the sub-voxel coupling)
 * G_ab = k_ab / h^2 with k_ab the harmonic mean of k_a(T_pin) and k_b(T_b) (the stencil's own
 * face conductance, kernels.h), k(T) the tissue's conductivity, its frozen conductivity below
 * the freezing range and linear across it (when physics.freezing is on). When P exceeds the
 * limit the probe is held at a floating temperature T_f, warmer than the set one, at which
 * what it takes in the step is the limit: P(T_f) + sum over its voxels of V (H(T_j) - H(T_f))/h
 * = max_extraction_W (the conduction at T_f and its own enthalpy change from T_j, h the step;
 * both fall as T_f rises: bisection), with its coupling, as when pinned. A metal probe is
 * isothermal, and it never goes colder than its set temperature. (Session 27; before, a
 * uniform sink -max_extraction_W / (n V) acted on the n held voxels: the inner ones, with no
 * tissue neighbour, cooled below the set temperature, to -166 C for a -150 C probe, and the
 * run extracted 2-4 % more than the limit: a physics test.) P is also the probe's reported
 * power (series column probe<k>_power_W; the limit when limited).
 *
 * Coolant-side law (film_coefficient_W_per_m2K, session 29). The form of Etheridge et al. 2013
 * (J Biomech Eng 135:021002): the freezing surface A = 2 pi r L exchanges heat with the cryogen
 * at the phase's temperature T_gas through a film coefficient h, so the probe can take at most
 * h A (T_f - T_gas) at surface temperature T_f: a probe under load warms, and takes more the
 * warmer it is. The float above solves take_W(T_f) = min(max_extraction_W, h A (T_f - T_gas)).
 * No default: no sourced h was found (docs/CRYO.md "A coolant-side law"). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ablasim/applicator.h"
#include "ablasim/cryo.h"
#include "ablasim/kernels.h"
#include "ablasim/phase.h"
#include "ablasim/sim.h"
#include "ablasim/source.h"

/* ---- geometry -------------------------------------------------------------------------------- */

/* ---- parameters ------------------------------------------------------------------------------ */

typedef enum { PH_FREEZE, PH_PASSIVE_THAW, PH_ACTIVE_THAW } cryo_phase_kind;
static const char *const phase_names[] = {"freeze", "passive_thaw", "active_thaw"};

/* Defaults: -150 C, the surface temperature argon Joule-Thomson needles settle at in gel and
 * tissue (-140..-150 C in the 2025 Cryobiology phantom study, docs/CRYO.md; Rossi et al. 2007
 * report -145..-185 C for argon/nitrogen probes); +20 C active thaw (helium / electrical thaw
 * heats the needle to about +20..+40 C, issue 6). */
#define FREEZE_DEFAULT_C (-150.0)
#define PI 3.14159265358979323846
#define THAW_DEFAULT_C 20.0
#define RAMP_DEFAULT_S 5.0
#define MAX_PHASES 32

typedef struct {
    int kind;
    double duration_s, T_C;
} cryo_phase;

typedef struct {
    int n;
    cryo_phase ph[MAX_PHASES];
} cryo_protocol;

typedef struct {
    double tip_m[3], dir[3], length_m, radius_m;
    double max_W; /* INFINITY: no limit */
    double G_W_per_K; /* film coefficient x freezing surface; NAN: none (held at the set T) */
    bool own_protocol;
    cryo_protocol protocol;
    char where[256]; /* file:line of the probe entry */
} cryo_probe_params;

typedef struct {
    int nprobes;
    double ramp_s;
    cryo_probe_params probe[CRYO_MAX_PROBES];
} cryo_params;

/* The keys of a cryo source, declared once (docs/CRYO.md's table). */
static const cfg_keydecl phase_decl[] = {
    CFG_KEY("phase", "–", "required", "`freeze`, `passive_thaw`, `active_thaw`", "see below"),
    CFG_KEY("duration_s", "s", "required", "(0, 1e5]", "length of the phase"),
    CFG_KEY("temperature_C", "°C", "freeze −150, active_thaw +20; not allowed for passive_thaw",
            "freeze [−196, 0), active_thaw (0, 60]",
            "probe surface temperature held in the phase (a freeze with "
            "`film_coefficient_W_per_m2K`: the coolant's temperature)"),
};

static const cfg_keytable phase_keys = CFG_KEYTABLE(phase_decl);

static const cfg_keydecl probe_decl[] = {
    {NEEDLE_KEY_TIP("needle tip; the whole active length must lie inside the grid")},
    {NEEDLE_KEY_DIRECTION},
    CFG_KEY("active_length_mm", "mm", "required", "[0.5, 300]", "freezing length from the tip"),
    {NEEDLE_KEY_GAUGE("one of gauge / diameter_mm")},
    {NEEDLE_KEY_DIAMETER("one of gauge / diameter_mm", "[0.3, 10]")},
    CFG_KEY("max_extraction_W", "W", "none (unlimited)", "(0, 1000]",
            "heat-extraction limit, see below"),
    CFG_KEY("film_coefficient_W_per_m2K", "W/m²/K", "none (held at the set temperature)",
            "(0, 1e5]", "coolant-side heat transfer coefficient, see below"),
    CFG_KEY("protocol", "–", "the source's", "as `protocol`", "per-probe protocol"),
};

static const cfg_keytable probe_keys = CFG_KEYTABLE(probe_decl);

static const cfg_keydecl cryo_decl[] = {
    {APPLICATOR_KEY_DEVICE},
    {"probes", "–", "required", "list of 1..8 mappings", "the needles of this source",
     .sub = &probe_keys, .sub_prefix = "probes[i]."},
    {"protocol", "–", "– (required at the source or in every probe)", "list of 1..32 phases",
     "phases run one after the other from `on_s`", .sub = &phase_keys,
     .sub_prefix = "protocol[i]."},
    CFG_KEY("ramp_s", "s", "5", "[0, 600]",
            "time for the probe to go linearly from its mean temperature at a phase start to the "
            "phase's set temperature (0: at once)"),
};

static const cfg_keytable cryo_keys = CFG_KEYTABLE(cryo_decl);

static void cryo_free_params(void *p)
{
    free(p);
}

static abl_status parse_protocol(cfg_node *list, cryo_protocol *out, abl_error *err)
{
    static const cfg_range dur_r = {0, 1e5, true, false, "s"};
    static const cfg_range freeze_r = {-196, 0, false, true, "C"};
    static const cfg_range thaw_r = {0, 60, true, false, "C"};
    char where[600], path[300];
    abl_status st;
    if ((st = cfg_expect(list, CFG_SEQ, true,
                         "a list of phases {phase: freeze | passive_thaw | active_thaw, "
                         "duration_s: ..., temperature_C: ...}",
                         err)))
        return st;
    if (list->n < 1 || list->n > MAX_PHASES)
        return abl_fail(err, ABL_EINVAL, "%s: '%s' has %zu phases: allowed 1 to %d",
                        cfg_where(list, where, sizeof where), cfg_path(list, path, sizeof path),
                        list->n, MAX_PHASES);
    out->n = (int)list->n;
    for (size_t i = 0; i < list->n; i++) {
        cfg_node *e = list->items[i];
        cryo_phase *ph = &out->ph[i];
        if ((st = cfg_expect(e, CFG_MAP, true,
                             "a mapping {phase: freeze | passive_thaw | active_thaw, "
                             "duration_s: ..., temperature_C: ...}",
                             err)) ||
            (st = cfg_check_decl(e, &phase_keys, CFG_ALL_VARIANTS, err)) ||
            (st = cfg_get_enum(e, "phase", true, 0, phase_names, 3, &ph->kind, err)) ||
            (st = cfg_get_double(e, "duration_s", true, 0, &dur_r, &ph->duration_s, err)))
            return st;
        if (ph->kind == PH_PASSIVE_THAW) {
            cfg_node *t = cfg_get(e, "temperature_C");
            if (t)
                return abl_fail(err, ABL_EINVAL,
                                "%s: '%s': a passive_thaw phase holds no temperature (the probe "
                                "is off); remove temperature_C or use active_thaw",
                                cfg_where(t, where, sizeof where), cfg_path(t, path, sizeof path));
            ph->T_C = NAN;
        } else if (ph->kind == PH_FREEZE) {
            if ((st = cfg_get_double(e, "temperature_C", false, FREEZE_DEFAULT_C, &freeze_r,
                                     &ph->T_C, err)))
                return st;
        } else if ((st = cfg_get_double(e, "temperature_C", false, THAW_DEFAULT_C, &thaw_r,
                                        &ph->T_C, err))) {
            return st;
        }
    }
    return ABL_OK;
}

static abl_status parse_probe(cfg_node *e, cryo_probe_params *p, bool have_shared, abl_error *err)
{
    static const cfg_range len_r = {0.5, 300, false, false, "mm"};
    static const cfg_range diam_r = {0.3, 10, false, false, "mm"};
    static const cfg_range maxw_r = {0, 1000, true, false, "W"};
    char where[600], path[300];
    abl_status st;
    double L;
    if ((st = cfg_expect(e, CFG_MAP, true,
                         "a mapping {tip_mm: [x, y, z], direction: [dx, dy, dz], "
                         "active_length_mm: ..., gauge: ...}",
                         err)) ||
        (st = cfg_check_decl(e, &probe_keys, CFG_ALL_VARIANTS, err)))
        return st;
    cfg_where(e, p->where, sizeof p->where);
    abl_needle_axis ax;
    if ((st = needle_axis_parse(e, "probe", &ax, err)) ||
        (st = cfg_get_double(e, "active_length_mm", true, 0, &len_r, &L, err)))
        return st;
    for (int a = 0; a < 3; a++) {
        p->tip_m[a] = ax.tip_m[a];
        p->dir[a] = ax.dir[a];
    }
    p->length_m = L * 1e-3;

    double diam_mm;
    if ((st = needle_diameter_parse(e, &diam_r, 0.0, &diam_mm, err))) return st;
    p->radius_m = 0.5 * diam_mm * 1e-3;

    if (cfg_get(e, "max_extraction_W")) {
        if ((st = cfg_get_double(e, "max_extraction_W", true, 0, &maxw_r, &p->max_W, err)))
            return st;
    } else {
        p->max_W = INFINITY;
    }
    p->G_W_per_K = NAN;
    if (cfg_get(e, "film_coefficient_W_per_m2K")) {
        static const cfg_range h_r = {0, 1e5, true, false, "W/m2/K"};
        double h;
        if ((st = cfg_get_double(e, "film_coefficient_W_per_m2K", true, 0, &h_r, &h, err)))
            return st;
        p->G_W_per_K = h * 2.0 * PI * p->radius_m * p->length_m; /* the freezing surface */
    }
    cfg_node *pr = cfg_get(e, "protocol");
    if (pr) {
        p->own_protocol = true;
        if ((st = parse_protocol(pr, &p->protocol, err))) return st;
    } else if (!have_shared) {
        return abl_fail(err, ABL_EINVAL,
                        "%s: '%s' has no protocol: give 'protocol' (a list of phases) at the "
                        "source, shared by all probes, or in this probe",
                        cfg_where(e, where, sizeof where), cfg_path(e, path, sizeof path));
    }
    return ABL_OK;
}

static abl_status cryo_parse(cfg_node *e, const abl_scenario *sc, void **params, abl_error *err)
{
    (void)sc;
    static const cfg_range ramp_r = {0, 600, false, false, "s"};
    char where[600], path[300];
    abl_status st;
    *params = NULL;
    cryo_params *m = calloc(1, sizeof *m);
    if (!m) return abl_fail(err, ABL_ENOMEM, "out of memory");
    cryo_protocol shared = {0};
    cfg_node *pr = cfg_get(e, "protocol");
    if ((st = cfg_get_double(e, "ramp_s", false, RAMP_DEFAULT_S, &ramp_r, &m->ramp_s, err)))
        goto fail;
    if (pr && (st = parse_protocol(pr, &shared, err))) goto fail;
    cfg_node *list = cfg_get(e, "probes");
    if (!list) {
        st = abl_fail(err, ABL_EINVAL,
                      "%s: '%s' needs 'probes': a list of 1 to %d probes {tip_mm, direction, "
                      "active_length_mm, gauge}",
                      cfg_where(e, where, sizeof where), cfg_path(e, path, sizeof path),
                      CRYO_MAX_PROBES);
        goto fail;
    }
    if ((st = cfg_expect(list, CFG_SEQ, true, "a list of probes", err))) goto fail;
    if (list->n < 1 || list->n > CRYO_MAX_PROBES) {
        st = abl_fail(err, ABL_EINVAL, "%s: '%s' has %zu probes: allowed 1 to %d per source",
                      cfg_where(list, where, sizeof where), cfg_path(list, path, sizeof path),
                      list->n, CRYO_MAX_PROBES);
        goto fail;
    }
    m->nprobes = (int)list->n;
    for (int i = 0; i < m->nprobes; i++) {
        cryo_probe_params *p = &m->probe[i];
        if ((st = parse_probe(list->items[i], p, pr != NULL, err))) goto fail;
        if (!p->own_protocol) p->protocol = shared;
    }
    *params = m;
    return ABL_OK;
fail:
    cryo_free_params(m);
    return st;
}

/* ---- source ---------------------------------------------------------------------------------- */

typedef struct {
    size_t a, b; /* probe voxel, outside neighbour */
    int axis;
} cryo_face;

typedef struct {
    size_t a; /* probe voxel on a domain face */
    int face;
} cryo_bface;

/* A tissue voxel next to a probe's held set, coupled to the true needle surface: the kernel
 * already conducts k sum(1/h_a^2) (T_pin - T_b) through its faces to held voxels; the source
 * adds k dG_m2 (T_pin - T_b) so that the total is the line-source coupling (coupling_build). */
typedef abl_needle_couple cryo_couple;

typedef struct {
    const cryo_probe_params *p;
    size_t n;
    size_t *idx;
    cryo_face *face;
    size_t nface;
    cryo_bface *bface;
    size_t nbface;
    cryo_couple *couple;
    size_t ncouple;
    int phase;        /* current phase index (-1: none), for the ramp start */
    double T_ramp0_C; /* probe mean temperature when the phase began */
    cryo_probe_state state;
} cryo_probe;

typedef struct {
    const cryo_params *p; /* borrowed from the scenario */
    const abl_sim *sim;   /* the held voxels' enthalpy curves (a limited probe's float) */
    double on_s, off_s, V_m3, h_m[3];
    int nprobes;
    cryo_probe pr[CRYO_MAX_PROBES];
    /* concatenated contributions of all probes */
    size_t *pin_idx, *heat_idx;
    double *pin_T, *heat_q, *heat_G; /* heat_G: coupling conductance of each heat entry (0:
                                      * the uniform sink of a limited probe), source.h */
    /* per material: unfrozen / frozen conductivity for the extraction estimate */
    double k_u[ABL_MAX_MATERIALS], k_f[ABL_MAX_MATERIALS];
    bool freezing;
    double T_sol_C, T_liq_C;
    abl_bc bc[6];
    /* series: time_s, then per probe T_C and power_W */
    int ncol;
    char colname[2 + 2 * CRYO_MAX_PROBES][32];
    const char *colptr[2 + 2 * CRYO_MAX_PROBES];
    abl_series_buf series; /* the applicator kit's buffer (applicator.h) */
} cryo_state;

static const abl_source_ops cryo_ops;

static void cryo_destroy(abl_source *s)
{
    cryo_state *m = s->state;
    if (m) {
        for (int i = 0; i < m->nprobes; i++) {
            free(m->pr[i].idx);
            free(m->pr[i].face);
            free(m->pr[i].bface);
            free(m->pr[i].couple);
        }
        free(m->pin_idx);
        free(m->heat_idx);
        free(m->pin_T);
        free(m->heat_q);
        free(m->heat_G);
        series_buf_free(&m->series);
        free(m);
    }
    free(s);
}

/* Conductivity of material mat at T for the estimate: unfrozen above the freezing range, frozen
 * below it, linear across it (the liquid fraction of phase.h's lever rule). */
static double k_at(const cryo_state *m, int mat, double T_C)
{
    if (!m->freezing || T_C >= m->T_liq_C) return m->k_u[mat];
    if (T_C <= m->T_sol_C) return m->k_f[mat];
    double f = (T_C - m->T_sol_C) / (m->T_liq_C - m->T_sol_C);
    return m->k_f[mat] + f * (m->k_u[mat] - m->k_f[mat]);
}

/* Conductance correction [W/m^3/K] of coupled voxel cp at the probe temperature T_pin: dG times
 * the harmonic mean of the tissue's conductivity at T_pin and at its own temperature (the
 * stencil's face rule, kernels.h). */
static double couple_G(const cryo_state *m, const cryo_couple *cp, const uint8_t *material,
                       const double *T, double T_pin)
{
    const int mat = material[cp->b];
    const double ka = k_at(m, mat, T_pin), kb = k_at(m, mat, T[cp->b]);
    return abl_face_conductance(ka, kb, cp->dG_m2); /* the harmonic mean times dG */
}

/* Heat [W] a probe pinned at T_pin would draw from the field T (positive: extraction). Faces in
 * the order built at create (index order): deterministic. */
static double extraction_W(const cryo_state *m, const cryo_probe *pr, const uint8_t *material,
                           const double *T, double T_pin)
{
    double P = 0.0;
    for (size_t f = 0; f < pr->nface; f++) {
        const cryo_face *fc = &pr->face[f];
        double ka = k_at(m, material[fc->a], T_pin);
        double kb = k_at(m, material[fc->b], T[fc->b]);
        double h = m->h_m[fc->axis];
        double G = abl_face_conductance_div(ka, kb, h * h);
        P += G * m->V_m3 * (T[fc->b] - T_pin);
    }
    for (size_t f = 0; f < pr->nbface; f++) {
        const cryo_bface *bf = &pr->bface[f];
        const abl_bc *bc = &m->bc[bf->face];
        double G = pennes_boundary_conductance(
            (int)bc->type, bc->h_W_m2K, k_at(m, material[bf->a], T_pin), m->h_m[bf->face / 2]);
        P += G * m->V_m3 * (bc->T_C - T_pin);
    }
    for (size_t c = 0; c < pr->ncouple; c++)
        P += couple_G(m, &pr->couple[c], material, T, T_pin) * m->V_m3 * (T[pr->couple[c].b] - T_pin);
    return P;
}

/* Volumetric enthalpy [J/m^3] of material mat at T: the driver's curve (phase.h) when phase
 * change is modelled, else rho c T. */
static double held_H(const cryo_state *m, uint8_t mat, double T_C)
{
    const abl_sim *s = m->sim;
    return s->phase ? phase_H(&s->phase[mat], T_C) : T_C / s->inv_rhoc[mat];
}

/* What a probe held at T for a step of h takes [W]: the conduction estimate at T, the blood
 * and metabolic heat of its own (held) tissue at T (the perfusion the driver last set there:
 * none where frozen to stasis), and, with h > 0, its voxels' enthalpy change from their
 * temperatures to T over the step. */
static double take_W(const cryo_state *m, const cryo_probe *pr, const uint8_t *material,
                     const double *T, double T_hold, double h_s)
{
    const abl_sim *s = m->sim;
    double P = extraction_W(m, pr, material, T, T_hold);
    double dH = 0.0, blood = 0.0;
    for (size_t j = 0; j < pr->n; j++) {
        const size_t c = pr->idx[j];
        const uint8_t mat = material[c];
        const double W = s->W_field ? s->W_field[c] : s->perf_W[mat];
        blood += W * (s->sc->T_arterial_C - T_hold) + s->q_met[mat];
        if (h_s > 0.0) dH += held_H(m, mat, T[c]) - held_H(m, mat, T_hold);
    }
    P += blood * m->V_m3;
    if (h_s > 0.0) P += dH * m->V_m3 / h_s;
    return P;
}

/* What a probe can take [W] when its surface is at T: max_extraction_W, and with a film
 * coefficient h the coolant-side transfer h A (T - T_gas) (A = 2 pi r L, T_gas the phase's set
 * temperature): the less of the two. */
static double cap_W_at(const cryo_probe *pr, double T_gas, double T)
{
    double c = pr->p->max_W;
    if (isfinite(pr->p->G_W_per_K)) c = fmin(c, pr->p->G_W_per_K * (T - T_gas));
    return c;
}

static bool probe_limited(const cryo_probe *pr)
{
    return isfinite(pr->p->max_W) || isfinite(pr->p->G_W_per_K);
}

/* The floating temperature T_f >= T_pin of a limited probe: take_W(T_f) = cap_W_at(T_f) (take_W
 * falls as T_f rises, cap_at does not fall; at the warmest of the probe's voxels, neighbours
 * and walls take_W is at most 0). Bisection to 1e-9 K. */
static double float_temperature(const cryo_state *m, const cryo_probe *pr, const uint8_t *material,
                                const double *T, double T_pin, double h_s)
{
    double hi = T_pin;
    for (size_t j = 0; j < pr->n; j++) hi = fmax(hi, T[pr->idx[j]]);
    for (size_t f = 0; f < pr->nface; f++) hi = fmax(hi, T[pr->face[f].b]);
    for (size_t f = 0; f < pr->nbface; f++) hi = fmax(hi, m->bc[pr->bface[f].face].T_C);
    for (size_t c = 0; c < pr->ncouple; c++) hi = fmax(hi, T[pr->couple[c].b]);
    double lo = T_pin;
    if (take_W(m, pr, material, T, lo, h_s) <= cap_W_at(pr, T_pin, lo)) return lo;
    for (int it = 0; it < 200 && hi - lo > 1e-9; it++) {
        const double mid = 0.5 * (lo + hi);
        if (take_W(m, pr, material, T, mid, h_s) > cap_W_at(pr, T_pin, mid)) lo = mid;
        else hi = mid;
    }
    return hi;
}

static double probe_mean_T(const cryo_probe *pr, const double *T)
{
    double s = 0.0;
    for (size_t i = 0; i < pr->n; i++)
        s += T[pr->idx[i]]; /* index order: deterministic */
    return s / (double)pr->n;
}

/* Phase of protocol at time tr since on_s: index, and its start time; -1 after the last. */
static int phase_at(const cryo_protocol *pc, double tr, double *start_s)
{
    double t0 = 0.0;
    for (int k = 0; k < pc->n; k++) {
        if (tr < t0 + pc->ph[k].duration_s) {
            *start_s = t0;
            return k;
        }
        t0 += pc->ph[k].duration_s;
    }
    *start_s = t0;
    return -1;
}

static abl_status record_row(cryo_state *m, double t_s, double step_s, const char *name,
                             abl_error *err)
{
    /* one row per distinct time: the implicit schemes ask twice per step (heat at t0 + theta h,
     * pins at t0 + h); a repeated or earlier time (tests probing the protocol) is not recorded */
    const abl_series_buf *sb = &m->series;
    if (sb->nrow > 0 && !(t_s > sb->rows[(sb->nrow - 1) * (size_t)sb->ncol])) return ABL_OK;
    double row[2 + 2 * CRYO_MAX_PROBES];
    row[0] = t_s;
    for (int i = 0; i < m->nprobes; i++) {
        row[1 + 2 * i] = m->pr[i].state.T_C;
        row[2 + 2 * i] = m->pr[i].state.power_W;
    }
    row[1 + 2 * m->nprobes] = step_s; /* the step the row's powers applied over */
    return series_buf_append(&m->series, row, name, err);
}

static abl_status cryo_update(abl_source *s, const abl_field_view *v, abl_source_contrib *out,
                              abl_error *err)
{
    cryo_state *m = s->state;
    const double t = v->t_s;
    const bool on = source_window_at(t, m->on_s, m->off_s);
    size_t np = 0, nh = 0;
    if (v->pins_only) {
        /* implicit schemes' end-of-step call: the held voxels at t, with the hold/limit decision
         * of this step's full update (no new decision, no series row, phase state unchanged) */
        for (int i = 0; i < m->nprobes; i++) {
            cryo_probe *pr = &m->pr[i];
            const cryo_protocol *pc = &pr->p->protocol;
            double start = 0.0;
            int k = on ? phase_at(pc, t - m->on_s, &start) : -1;
            if (k < 0 || pc->ph[k].kind == PH_PASSIVE_THAW) continue;
            const double T0 = k == pr->phase ? pr->T_ramp0_C : probe_mean_T(pr, v->T_C);
            double frac = m->p->ramp_s > 0.0 ? fmin(1.0, (t - m->on_s - start) / m->p->ramp_s) : 1.0;
            double T_pin = T0 + frac * (pc->ph[k].T_C - T0);
            /* a limited probe: the floating temperature of this step's decision */
            if (k == pr->phase && pr->state.mode == CRYO_LIMITED) T_pin = pr->state.T_C;
            for (size_t j = 0; j < pr->n; j++) {
                m->pin_idx[np] = pr->idx[j];
                m->pin_T[np++] = T_pin;
            }
        }
        *out = (abl_source_contrib){.n_pin = np, .pin_idx = m->pin_idx, .pin_T_C = m->pin_T};
        return ABL_OK;
    }
    for (int i = 0; i < m->nprobes; i++) {
        cryo_probe *pr = &m->pr[i];
        const cryo_protocol *pc = &pr->p->protocol;
        double start = 0.0;
        int k = on ? phase_at(pc, t - m->on_s, &start) : -1;
        if (k != pr->phase) {
            pr->phase = k;
            pr->T_ramp0_C = probe_mean_T(pr, v->T_C);
        }
        cryo_probe_state *ps = &pr->state;
        ps->phase = k;
        if (k < 0 || pc->ph[k].kind == PH_PASSIVE_THAW) {
            ps->mode = CRYO_OFF;
            ps->T_C = probe_mean_T(pr, v->T_C);
            ps->power_W = 0.0;
            continue;
        }
        const cryo_phase *ph = &pc->ph[k];
        double frac = m->p->ramp_s > 0.0 ? fmin(1.0, (t - m->on_s - start) / m->p->ramp_s) : 1.0;
        double T_pin = pr->T_ramp0_C + frac * (ph->T_C - pr->T_ramp0_C);
        double P = extraction_W(m, pr, v->material, v->T_C, T_pin);
        bool limited = false;
        if (ph->kind == PH_FREEZE && probe_limited(pr) &&
            take_W(m, pr, v->material, v->T_C, T_pin, v->step_h_s) > cap_W_at(pr, T_pin, T_pin)) {
            /* the limit: held at the warmer temperature at which the probe takes what it can */
            const double T_gas = T_pin;
            T_pin = float_temperature(m, pr, v->material, v->T_C, T_pin, v->step_h_s);
            P = cap_W_at(pr, T_gas, T_pin);
            limited = true;
        }
        for (size_t j = 0; j < pr->n; j++) {
            m->pin_idx[np] = pr->idx[j];
            m->pin_T[np++] = T_pin;
        }
        /* the sub-voxel coupling of the tissue around the held set to the true surface, from
         * the temperature at the start of the step (every scheme) */
        for (size_t c = 0; c < pr->ncouple; c++) {
            const cryo_couple *cp = &pr->couple[c];
            m->heat_idx[nh] = cp->b;
            m->heat_G[nh] = couple_G(m, cp, v->material, v->T_C, T_pin);
            m->heat_q[nh] = m->heat_G[nh] * (T_pin - v->T_C[cp->b]);
            nh++;
        }
        ps->mode = limited ? CRYO_LIMITED : CRYO_PINNED;
        ps->T_C = T_pin;
        ps->power_W = P;
    }
    abl_status st = record_row(m, t, v->step_h_s, s->name, err);
    if (st) return st;
    *out = (abl_source_contrib){.n_heat = nh,
                                .heat_idx = m->heat_idx,
                                .heat_q_W_m3 = m->heat_q,
                                .heat_G_W_m3K = m->heat_G,
                                .n_pin = np,
                                .pin_idx = m->pin_idx,
                                .pin_T_C = m->pin_T};
    return ABL_OK;
}

static void cryo_series(const abl_source *s, abl_source_series *out)
{
    const cryo_state *m = s->state;
    out->ncol = m->ncol;
    out->columns = m->colptr;
    out->nrow = m->series.nrow;
    out->rows = m->series.rows;
}

static int cryo_axes(const abl_source *s, abl_source_axis *out, int max)
{
    const cryo_state *m = s->state;
    int n = 0;
    for (int i = 0; i < m->nprobes && n < max; i++, n++)
        for (int a = 0; a < 3; a++) {
            out[n].tip_m[a] = m->p->probe[i].tip_m[a];
            out[n].dir[a] = m->p->probe[i].dir[a];
        }
    return n;
}

/* Checkpoint state: per probe the phase and the ramp start temperature (a run resumed inside a
 * ramp must ramp from the same value), the last state, and the recorded series. */
static abl_status cryo_state_io(const abl_source *s, abl_blob *b, abl_error *err)
{
    cryo_state *m = s->state;
    int np = m->nprobes, ncol = m->ncol;
    abl_blob_io(b, &np, sizeof np);
    abl_blob_io(b, &ncol, sizeof ncol);
    if (b->mode == ABL_BLOB_LOAD && !b->bad && (np != m->nprobes || ncol != m->ncol))
        return abl_fail(err, ABL_EINVAL,
                        "checkpoint of source '%s' (cryo) holds %d probes, the scenario %d",
                        s->name, np, m->nprobes);
    for (int i = 0; i < m->nprobes; i++) {
        abl_blob_io(b, &m->pr[i].phase, sizeof m->pr[i].phase);
        abl_blob_io(b, &m->pr[i].T_ramp0_C, sizeof m->pr[i].T_ramp0_C);
        abl_blob_io(b, &m->pr[i].state, sizeof m->pr[i].state);
    }
    abl_status st = series_buf_io(&m->series, b, s->name, err);
    if (st) return st;
    if (b->bad)
        return abl_fail(err, ABL_EIO, "checkpoint state of source '%s' (cryo) is truncated",
                        s->name);
    return ABL_OK;
}

/* Every protocol phase change and the end of every set-point ramp of every probe is a step
 * boundary (source.h breakpoints): a phase then never starts inside a step. */
static int cryo_breakpoints(const abl_source *s, double *t_s, int max)
{
    const cryo_state *m = s->state;
    int n = 0;
    for (int i = 0; i < m->nprobes; i++) {
        const cryo_protocol *pc = &m->pr[i].p->protocol;
        double t0 = 0.0;
        for (int k = 0; k < pc->n; k++) {
            if (m->p->ramp_s > 0.0 && m->p->ramp_s < pc->ph[k].duration_s) {
                if (n < max) t_s[n] = m->on_s + t0 + m->p->ramp_s;
                n++;
            }
            t0 += pc->ph[k].duration_s;
            if (n < max) t_s[n] = m->on_s + t0;
            n++;
        }
    }
    return n;
}

static const abl_source_ops cryo_ops = {.type = "cryo",
                                        .update = cryo_update,
                                        .destroy = cryo_destroy,
                                        .series = cryo_series,
                                        .axes = cryo_axes,
                                        .state_io = cryo_state_io,
                                        .breakpoints = cryo_breakpoints};

abl_status cryo_probe_get_state(const abl_source *s, int p, cryo_probe_state *out, abl_error *err)
{
    if (!s || s->ops != &cryo_ops)
        return abl_fail(err, ABL_EINVAL, "source '%s' is not a cryo source", s ? s->name : "?");
    const cryo_state *m = s->state;
    if (p < 0 || p >= m->nprobes)
        return abl_fail(err, ABL_EINVAL, "source '%s' has %d probes; asked for probe %d", s->name,
                        m->nprobes, p + 1);
    *out = m->pr[p].state;
    return ABL_OK;
}

static bool point_in_grid(const abl_grid *g, const double x[3])
{
    int na[3] = {g->nx, g->ny, g->nz};
    for (int a = 0; a < 3; a++) {
        double lo = g->origin_m[a] - 0.5 * g->h_m[a];
        double hi = g->origin_m[a] + (na[a] - 0.5) * g->h_m[a];
        if (!(x[a] >= lo && x[a] <= hi)) return false;
    }
    return true;
}

/* Voxels, outer faces and domain faces of probe i; fails on a probe outside the grid or one
 * that shares voxels with an earlier probe (mark: 1 + probe index per voxel, sparse use). */
static abl_status build_probe(cryo_state *m, const abl_source_cfg *cfg, const abl_sim *sim, int i,
                              int *mark, abl_error *err)
{
    const abl_grid *g = &sim->grid;
    const cryo_probe_params *p = &m->p->probe[i];
    cryo_probe *pr = &m->pr[i];
    pr->p = p;
    pr->phase = -2; /* forces a ramp start at the first update */
    double end[3];
    for (int a = 0; a < 3; a++)
        end[a] = p->tip_m[a] + p->length_m * p->dir[a];
    if (!point_in_grid(g, p->tip_m) || !point_in_grid(g, end))
        return abl_fail(err, ABL_EINVAL,
                        "%s: source '%s', probe %d: its active length from tip_mm = "
                        "[%g, %g, %g] to [%g, %g, %g] mm leaves the grid (x %.1f..%.1f, "
                        "y %.1f..%.1f, z %.1f..%.1f mm); the ice ball would grow in tissue "
                        "that is not modelled",
                        p->where, cfg->name, i + 1, p->tip_m[0] * 1e3, p->tip_m[1] * 1e3,
                        p->tip_m[2] * 1e3, end[0] * 1e3, end[1] * 1e3, end[2] * 1e3,
                        (g->origin_m[0] - 0.5 * g->h_m[0]) * 1e3,
                        (g->origin_m[0] + (g->nx - 0.5) * g->h_m[0]) * 1e3,
                        (g->origin_m[1] - 0.5 * g->h_m[1]) * 1e3,
                        (g->origin_m[1] + (g->ny - 0.5) * g->h_m[1]) * 1e3,
                        (g->origin_m[2] - 0.5 * g->h_m[2]) * 1e3,
                        (g->origin_m[2] + (g->nz - 0.5) * g->h_m[2]) * 1e3);
    double r = needle_hold_radius_m(g, p->radius_m);
    size_t n = needle_hold_voxels(g, p->tip_m, p->dir, p->length_m, p->radius_m, NULL, 0);
    pr->idx = malloc((n ? n : 1) * sizeof *pr->idx);
    if (!pr->idx) return abl_fail(err, ABL_ENOMEM, "out of memory creating source '%s'", cfg->name);
    pr->n = needle_hold_voxels(g, p->tip_m, p->dir, p->length_m, p->radius_m, pr->idx, n);
    pr->state.nvox = pr->n;
    for (size_t j = 0; j < pr->n; j++) {
        int other = mark[pr->idx[j]];
        if (other)
            return abl_fail(err, ABL_EINVAL,
                            "%s: source '%s': probes %d and %d share voxels (probe %d takes "
                            "the voxels within %.2f mm of its axis on this grid); place them "
                            "further apart",
                            p->where, cfg->name, other, i + 1, i + 1, 1e3 * r);
        mark[pr->idx[j]] = i + 1;
    }
    /* outer faces (neighbour not in this probe) and domain faces, in index order */
    for (int pass = 0; pass < 2; pass++) {
        size_t nf = 0, nb = 0;
        for (size_t j = 0; j < pr->n; j++) {
            size_t c = pr->idx[j];
            int ijk[3] = {(int)(c % g->sy), (int)(c / g->sy % (size_t)g->ny), (int)(c / g->sz)};
            int na[3] = {g->nx, g->ny, g->nz};
            size_t stride[3] = {1, g->sy, g->sz};
            for (int f = 0; f < 6; f++) {
                int a = f / 2, dirn = f % 2 ? 1 : -1;
                int q = ijk[a] + dirn;
                if (q < 0 || q >= na[a]) {
                    if (pass) pr->bface[nb] = (cryo_bface){c, f};
                    nb++;
                    continue;
                }
                size_t b = dirn > 0 ? c + stride[a] : c - stride[a];
                if (mark[b] == i + 1) continue;
                if (pass) pr->face[nf] = (cryo_face){c, b, a};
                nf++;
            }
        }
        if (!pass) {
            pr->face = malloc((nf ? nf : 1) * sizeof *pr->face);
            pr->bface = malloc((nb ? nb : 1) * sizeof *pr->bface);
            if (!pr->face || !pr->bface)
                return abl_fail(err, ABL_ENOMEM, "out of memory creating source '%s'", cfg->name);
            pr->nface = nf;
            pr->nbface = nb;
        }
    }
    return ABL_OK;
}

/* Sub-voxel coupling of probe i (applicator.h needle_coupling; docs/CRYO.md "Sub-voxel probe
 * coupling"): the tissue around the held set sees the true surface at the needle's radius, so
 * the ice ball does not depend on where the axis falls on the grid (the old centre rule:
 * -37 %). Voxels held by another probe of the source are not coupled. */
static abl_status coupling_build(cryo_state *m, const abl_grid *g, int i, const int *mark,
                                 uint8_t *seen, const char *name, abl_error *err)
{
    cryo_probe *pr = &m->pr[i];
    const cryo_probe_params *p = pr->p;
    pr->couple = malloc((pr->n ? 6 * pr->n : 1) * sizeof *pr->couple);
    if (!pr->couple) return abl_fail(err, ABL_ENOMEM, "out of memory creating source '%s'", name);
    pr->ncouple = needle_coupling(g, p->tip_m, p->dir, p->length_m, p->radius_m, pr->idx, pr->n,
                                  mark, i + 1, seen, pr->couple);
    return ABL_OK;
}

static abl_status cryo_create(const abl_source_cfg *cfg, const abl_sim *sim, abl_source **out,
                              abl_error *err)
{
    *out = NULL;
    const cryo_params *p = cfg->params;
    const abl_grid *g = &sim->grid;
    const abl_scenario *sc = sim->sc;
    abl_source *s;
    void *state;
    abl_status st = source_alloc(cfg, &cryo_ops, sizeof(cryo_state), &s, &state, err);
    if (st) return st;
    cryo_state *m = state;
    int *mark = calloc(g->n, sizeof *mark);
    if (!mark) {
        free(s);
        free(m);
        return abl_fail(err, ABL_ENOMEM, "out of memory creating source '%s'", cfg->name);
    }
    m->p = p;
    m->sim = sim;
    m->on_s = cfg->on_s;
    m->off_s = cfg->off_s;
    m->V_m3 = grid_voxel_volume_m3(g);
    for (int a = 0; a < 3; a++)
        m->h_m[a] = g->h_m[a];
    for (int f = 0; f < 6; f++)
        m->bc[f] = sc->bc[f];
    m->freezing = sc->freezing;
    m->T_sol_C = sc->freeze_solidus_C;
    m->T_liq_C = sc->freeze_liquidus_C;
    for (int k = 0; k < sim->nmat; k++) {
        const abl_tissue *t = &sc->tissues.t[sim->mat_tissue[k]];
        m->k_u[k] = t->k_W_mK;
        m->k_f[k] = isnan(t->frozen_k_W_mK) ? t->k_W_mK : t->frozen_k_W_mK;
    }
    m->nprobes = p->nprobes;
    size_t ntot = 0, nheat = 0;
    for (int i = 0; i < p->nprobes; i++) {
        if ((st = build_probe(m, cfg, sim, i, mark, err))) goto fail;
        ntot += m->pr[i].n;
    }
    uint8_t *seen = calloc(g->n, 1);
    if (!seen) {
        st = abl_fail(err, ABL_ENOMEM, "out of memory creating source '%s'", cfg->name);
        goto fail;
    }
    for (int i = 0; i < p->nprobes && !st; i++) {
        st = coupling_build(m, g, i, mark, seen, cfg->name, err);
        nheat += m->pr[i].n > m->pr[i].ncouple ? m->pr[i].n : m->pr[i].ncouple;
    }
    free(seen);
    if (st) goto fail;
    m->pin_idx = malloc(ntot * sizeof *m->pin_idx);
    m->heat_idx = malloc(nheat * sizeof *m->heat_idx);
    m->pin_T = malloc(ntot * sizeof *m->pin_T);
    m->heat_q = malloc(nheat * sizeof *m->heat_q);
    m->heat_G = malloc(nheat * sizeof *m->heat_G);
    if (!m->pin_idx || !m->heat_idx || !m->pin_T || !m->heat_q || !m->heat_G) {
        st = abl_fail(err, ABL_ENOMEM, "out of memory creating source '%s'", cfg->name);
        goto fail;
    }
    m->ncol = 2 + 2 * p->nprobes;
    m->series.ncol = m->ncol;
    snprintf(m->colname[0], sizeof m->colname[0], "time_s");
    for (int i = 0; i < p->nprobes; i++) {
        snprintf(m->colname[1 + 2 * i], sizeof m->colname[0], "probe%d_T_C", i + 1);
        snprintf(m->colname[2 + 2 * i], sizeof m->colname[0], "probe%d_power_W", i + 1);
    }
    snprintf(m->colname[1 + 2 * p->nprobes], sizeof m->colname[0], "step_s");
    for (int c = 0; c < m->ncol; c++)
        m->colptr[c] = m->colname[c];
    free(mark);
    *out = s;
    return ABL_OK;
fail:
    free(mark);
    cryo_destroy(s);
    return st;
}

const abl_source_type_info cryo_source_type = {"cryo", &cryo_keys, cryo_parse, cryo_create,
                                               cryo_free_params};
