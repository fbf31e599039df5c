/* mwa.c - microwave ablation antenna (type 'mwa'): dielectric heating around a straight
 * interstitial antenna at 915 MHz or 2.45 GHz. Model and sources: docs/MWA.md.
 *
 * SAR model (a line source with cylindrical spreading and lossy-medium attenuation, the form of
 * the analytic SAR fits to interstitial antennas used before full-wave models, e.g. the
 * exponential radial decay of the insulated-antenna field of King, Trembly & Strohbehn 1983,
 * IEEE MTT 31:574, and the teardrop patterns of Yang, Converse, Mahvi & Webster 2007, IEEE TBME
 * 54:150). For a voxel centre x, with s = (x - tip).d the distance from the tip along the shaft
 * (d points from the tip to the handle) and r the distance from the axis (from the tip itself
 * where s < 0, which closes the pattern with a cap beyond the tip):
 *
 *   u(x) = 2 alpha(x) exp(-2 alpha(x) r_e) / r_e * f(s),   r_e = sqrt(r^2 + a^2)
 *   f(s) = exp(-((s - s_g)/w_f)^2)  for s < s_g   (towards the tip)
 *          exp(-(s - s_g)/L_b)       for s >= s_g  (backward tail along the shaft)
 *   q(x) = P(t) eff u(x) / (V sum_y u(y))
 *
 * 1/r_e is the cylindrical spreading of the radiated flux, exp(-2 alpha r_e) its attenuation,
 * and 2 alpha the fraction of the local flux absorbed per metre (so a lossless voxel, air,
 * absorbs nothing). alpha is the voxel's own attenuation constant (homogeneous-path
 * approximation: the path to the axis is assumed to have the voxel's properties). a (antenna
 * radius) keeps the axis finite; s_g is the feed gap (slot) position, w_f, L_b the widths of the
 * pattern ahead of and behind it. The normalisation uses the same voxel set and values the step
 * returns, so sum q V = P eff to rounding.
 *
 * Temperature: eps_r(T), sigma(T) from the Ji & Brace 2011 sigmoid (mwa_dielectric_at). A voxel's
 * u is re-evaluated when its temperature differs by more than recompute_dT_C from the value it
 * was last evaluated at; then the normalisation sum is recomputed (sequential, index order:
 * deterministic and independent of the thread count). */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ablasim/applicator.h"
#include "ablasim/mwa.h"
#include "ablasim/schedule.h"
#include "ablasim/sim.h"
#include "ablasim/source.h"
#include "ablasim/zone.h"

#define PI 3.14159265358979323846
#define MU0_H_M (4e-7 * PI)       /* vacuum permeability (pre-2019 SI value; 1e-9 rel.) */
#define EPS0_F_M 8.8541878128e-12 /* vacuum permittivity */

/* ---- dielectric model ---------------------------------------------------------------------- */

double mwa_attenuation_Np_m(double eps_r, double sigma_S_m, double f_Hz)
{
    double omega = 2.0 * PI * f_Hz;
    double eps = EPS0_F_M * eps_r;
    double x = sigma_S_m / (omega * eps); /* loss tangent */
    /* sqrt(1 + x^2) - 1 = x^2 / (sqrt(1 + x^2) + 1): no cancellation at small loss tangents */
    double inner = x * x / (sqrt(1.0 + x * x) + 1.0);
    return omega * sqrt(MU0_H_M * eps / 2.0) * sqrt(inner);
}

/* Ji Z, Brace CL. Expanded modeling of temperature-dependent dielectric properties for
 * microwave thermal ablation. Phys Med Biol 2011;56:5249-5264 (bovine liver, 2.45 GHz),
 * sigmoid fits (T in C):
 *   eps_r(T) = 48.391 [1 - 1/(1 + exp(6.286 - 0.0764 T))] + 1
 *   sigma(T) = 2.173  [1 - 1/(1 + exp(5.951 - 0.0697 T))]  S/m
 * 1 - 1/(1 + e^z) = 1/(1 + e^-z). Used in relative form (x37 F(T)/F(37)) so that each tissue
 * keeps its table value at 37 C; the same relative drop is applied at 915 MHz (ASSUMED: no
 * 915 MHz sigmoid in the paper used here). */
static double ji_brace_eps(double T_C)
{
    return 48.391 / (1.0 + exp(-(6.286 - 0.0764 * T_C))) + 1.0;
}

static double ji_brace_sigma(double T_C)
{
    return 2.173 / (1.0 + exp(-(5.951 - 0.0697 * T_C)));
}

void mwa_dielectric_at(double eps_r37, double sigma37_S_m, bool temp_dependent, double T_C,
                       double *eps_r, double *sigma_S_m)
{
    if (!temp_dependent) {
        *eps_r = eps_r37;
        *sigma_S_m = sigma37_S_m;
        return;
    }
    *eps_r = eps_r37 * ji_brace_eps(T_C) / ji_brace_eps(37.0);
    *sigma_S_m = sigma37_S_m * ji_brace_sigma(T_C) / ji_brace_sigma(37.0);
}

/* ---- zone measurement ------------------------------------------------------------------------ */

void mwa_zone_dims(const abl_grid *g, const double *T_max_C, double thr_C, const double tip_m[3],
                   const double dir[3], mwa_zone *out)
{
    /* the general measurement (src/analysis/zone.c) on {T_max_C >= thr_C} */
    abl_axis_zone z;
    zone_axis_measure(g, T_max_C, thr_C, true, tip_m, dir, &z);
    *out = (mwa_zone){z.length_m, z.diameter_m, z.volume_m3, z.nvox};
}

/* ---- parameters ------------------------------------------------------------------------------ */

typedef enum { ANT_MONOPOLE, ANT_DIPOLE, ANT_SLOT } mwa_antenna;
static const char *const antenna_names[] = {"monopole", "dipole", "slot"};
static const char *const dielectric_names[] = {"ji_brace", "constant"};

/* Axial-pattern defaults per antenna type [mm]: feed gap (slot) from the tip, Gaussian width
 * ahead of it, exponential tail length behind it. ASSUMED readings of published SAR patterns
 * (not fits; docs/MWA.md): monopole - radiating arm about a quarter of the catheter-loaded
 * wavelength (~12-15 mm at 2.45 GHz) with SAR along the whole arm and an unchoked current on the
 * shaft; its 20 mm tail is CALIBRATED so that 100 W, 2 min in ex vivo liver gives the cooled
 * monopole's aspect ratio of Chiang et al. 2013 (Radiology 268:382, diameter/length 0.42; our
 * 0.45-0.57 for 25-15 mm), the other settings of that paper are the check (docs/MWA.md);
 * sleeve/triaxial dipole - feed ~10 mm from the tip, choked tail (Brace et al. 2005 IEEE TBME
 * 52:1600 triaxial antenna); coaxial slot - slot ~5-6 mm from the tip with a backward tail
 * (Saito et al. 2000 IEEE MTT 48:1800). Dipole and slot values are not calibrated. */
static const double default_feed_mm[] = {12.0, 10.0, 6.0};
static const double default_fwd_mm[] = {10.0, 7.0, 5.0};
static const double default_back_mm[] = {20.0, 5.0, 9.0};

typedef struct {
    double f_Hz;
    abl_schedule schedule; /* generator power [W] */
    double efficiency;
    double tip_m[3], dir[3];
    int antenna, dielectric;
    double feed_m, fwd_m, back_m, radius_m, cutoff_m, recompute_dT_C;
    double coolant_C; /* internally cooled shaft held at this temperature; NAN: not cooled */
} mwa_params;

/* The keys of an MWA source, declared once (docs/MWA.md explains them). */
static const cfg_keydecl mwa_decl[] = {
    {APPLICATOR_KEY_DEVICE},
    CFG_KEY("frequency_MHz", "MHz", "required", "915 or 2450",
            "generator frequency (the tissue table has dielectric values at these)"),
    CFG_KEY("power_W", "W", "one of power_W / schedule", "[0, 1000]", "constant generator power"),
    CFG_KEY("schedule", "–", "one of power_W / schedule", "list of `{time_s, power_W}`",
            "generator power, piecewise linear"),
    CFG_KEY("efficiency", "–", "0.75", "(0, 1]", "fraction of generator power absorbed in tissue"),
    {NEEDLE_KEY_TIP("antenna tip (must lie inside the grid)")},
    {NEEDLE_KEY_DIRECTION},
    CFG_KEY("antenna", "–", "`monopole`", "`monopole`, `dipole`, `slot`",
            "antenna type: sets the defaults of the pattern keys below"),
    CFG_KEY("feed_gap_from_tip_mm", "mm", "12, 10, 6 (by antenna)", "[0, 200]",
            "position of the SAR peak (feed gap / slot) behind the tip"),
    CFG_KEY("forward_width_mm", "mm", "10, 7, 5 (by antenna)", "[0.1, 200]",
            "Gaussian width of the pattern ahead of the feed (towards the tip)"),
    CFG_KEY("backward_decay_mm", "mm", "20, 5, 9 (by antenna)", "[0.1, 200]",
            "exponential tail along the shaft behind the feed"),
    CFG_KEY("antenna_radius_mm", "mm", "1", "[0.05, 10]", "regularises 1/r on the axis"),
    CFG_KEY("cutoff_mm", "mm", "60", "[5, 1000]",
            "deposition only within this distance of the axis (and of the tip)"),
    CFG_KEY("recompute_dT_C", "°C", "2", "[0, 50]",
            "re-evaluate a voxel's dielectric properties after this change"),
    CFG_KEY("dielectric_model", "–", "`ji_brace`", "`ji_brace`, `constant`",
            "temperature dependence of permittivity and conductivity"),
    CFG_KEY("coolant_temperature_C", "°C", "absent = not cooled", "[0, 60]",
            "internally cooled antenna: its shaft (radius antenna_radius_mm, from the tip to the "
            "grid's edge) is held at this temperature while the source is on; docs/MWA.md "
            "\"Cooled shaft\""),
};

static const cfg_keytable mwa_keys = CFG_KEYTABLE(mwa_decl);

static void mwa_free_params(void *p)
{
    mwa_params *m = p;
    if (!m) return;
    schedule_free(&m->schedule);
    free(m);
}

static abl_status mwa_parse(cfg_node *e, const abl_scenario *sc, void **params, abl_error *err)
{
    (void)sc;
    static const cfg_range freq_r = {100, 10000, false, false, "MHz"};
    static const cfg_range power_r = {0, 1000, false, false, "W"};
    static const cfg_range eff_r = {0, 1, true, false, NULL};
    static const cfg_range len_r = {0, 200, false, false, "mm"};
    static const cfg_range width_r = {0.1, 200, false, false, "mm"};
    static const cfg_range rad_r = {0.05, 10, false, false, "mm"};
    static const cfg_range cut_r = {5, 1000, false, false, "mm"};
    static const cfg_range dT_r = {0, 50, false, false, "C"};
    /* not below 0 C: a freezing shaft would need the phase change, which `freezing: auto` does
     * not switch on for a coolant */
    static const cfg_range cool_r = {0, 60, false, false, "C"};
    char where[600], path[300];
    abl_status st;
    *params = NULL;
    mwa_params *m = calloc(1, sizeof *m);
    if (!m) return abl_fail(err, ABL_ENOMEM, "out of memory");
    double f_MHz, v;
    if ((st = cfg_get_double(e, "frequency_MHz", true, 0, &freq_r, &f_MHz, err))) goto fail;
    if (f_MHz != 915.0 && f_MHz != 2450.0) {
        cfg_node *n = cfg_get(e, "frequency_MHz");
        st = abl_fail(err, ABL_EINVAL,
                      "%s: '%s' = %g: allowed 915 or 2450 MHz (the tissue table has dielectric "
                      "values at these two ISM frequencies only)",
                      cfg_where(n, where, sizeof where), cfg_path(n, path, sizeof path), f_MHz);
        goto fail;
    }
    m->f_Hz = f_MHz * 1e6;

    cfg_node *pw = cfg_get(e, "power_W"), *sch = cfg_get(e, "schedule");
    if ((pw != NULL) == (sch != NULL)) {
        st = abl_fail(err, ABL_EINVAL,
                      "%s: '%s' needs exactly one of 'power_W' (constant) or 'schedule' "
                      "(list of {time_s, power_W})",
                      cfg_where(e, where, sizeof where), cfg_path(e, path, sizeof path));
        goto fail;
    }
    if (pw) {
        if ((st = cfg_get_double(e, "power_W", true, 0, &power_r, &v, err)) ||
            (st = schedule_constant(v, &m->schedule, err)))
            goto fail;
    } else if ((st = schedule_parse(sch, "power_W", &power_r, &m->schedule, err))) {
        goto fail;
    }
    /* 0.75: ASSUMED generator-to-tissue fraction - ~0.5-1 dB coaxial cable loss at 2.45 GHz
     * (11-21 %) plus |S11|^2 of a matched antenna (S11 -10..-15 dB: 3-10 %), docs/MWA.md */
    if ((st = cfg_get_double(e, "efficiency", false, 0.75, &eff_r, &m->efficiency, err))) goto fail;
    abl_needle_axis ax;
    if ((st = needle_axis_parse(e, "antenna", &ax, err))) goto fail;
    for (int a = 0; a < 3; a++) {
        m->tip_m[a] = ax.tip_m[a];
        m->dir[a] = ax.dir[a];
    }
    if ((st =
             cfg_get_enum(e, "antenna", false, ANT_MONOPOLE, antenna_names, 3, &m->antenna, err)) ||
        (st = cfg_get_enum(e, "dielectric_model", false, 0, dielectric_names, 2, &m->dielectric,
                           err)))
        goto fail;
    double feed, fwd, back, rad, cut;
    if ((st = cfg_get_double(e, "feed_gap_from_tip_mm", false, default_feed_mm[m->antenna], &len_r,
                             &feed, err)) ||
        (st = cfg_get_double(e, "forward_width_mm", false, default_fwd_mm[m->antenna], &width_r,
                             &fwd, err)) ||
        (st = cfg_get_double(e, "backward_decay_mm", false, default_back_mm[m->antenna], &width_r,
                             &back, err)) ||
        (st = cfg_get_double(e, "antenna_radius_mm", false, 1.0, &rad_r, &rad, err)) ||
        (st = cfg_get_double(e, "cutoff_mm", false, 60.0, &cut_r, &cut, err)) ||
        (st = cfg_get_double(e, "recompute_dT_C", false, 2.0, &dT_r, &m->recompute_dT_C, err)) ||
        (st = cfg_get_double(e, "coolant_temperature_C", false, NAN, &cool_r, &m->coolant_C, err)))
        goto fail;
    m->feed_m = feed * 1e-3;
    m->fwd_m = fwd * 1e-3;
    m->back_m = back * 1e-3;
    m->radius_m = rad * 1e-3;
    m->cutoff_m = cut * 1e-3;
    *params = m;
    return ABL_OK;
fail:
    mwa_free_params(m);
    return st;
}

/* ---- source ---------------------------------------------------------------------------------- */

typedef struct {
    const mwa_params *p; /* borrowed from the scenario */
    const abl_sim *sim;
    double on_s, off_s, V_m3;
    size_t n;
    size_t *idx;    /* [n + ncouple] the heat list: the deposition voxels (outside a cooled
                     * shaft) in index order, then the shaft's coupled voxels */
    double *geom;   /* f(s) / r_e [1/m] */
    double *re_m;   /* r_e */
    double *u;      /* unnormalised deposition */
    double *T_eval; /* temperature u was last evaluated at (NaN: never) */
    double *q;      /* returned q [W/m^3], [n + ncouple] */
    double sum_u;
    /* cooled shaft (coolant_C): the held voxels (the kit's held set of the antenna, from the tip
     * to the grid's edge) and the tissue voxels beside them, coupled to the true surface */
    size_t npin, ncouple;
    size_t *pin_idx;
    double *pin_T;
    double *couple_dG; /* [ncouple] applicator.h dG */
    double *couple_G;  /* [ncouple] this step's conductance (source.h heat_G) */
    /* the near field between the shaft and its coupled voxels (applicator.h
     * needle_source_shift): each coupled voxel's geometry, its place in the deposition list
     * (SIZE_MAX: outside it, no shift), and its shift per unit pattern scale [W/m per W/m^3 of
     * scale], cached with the temperature it was evaluated at (that of the voxel's u) */
    abl_needle_couple *couple;
    size_t *couple_dep;
    double *kappa, *kappa_T;
    /* the pattern's integral over the held voxels outside the antenna (tissue the shaft holds
     * at the coolant temperature, in units of u x voxel volume): its power goes to the
     * coolant, it is not spread over the rest (docs/MWA.md "Cooled shaft") */
    double u_held;
    /* each held voxel's share of it (held_voxel_share), the outside temperature it was taken
     * at, and its coupled face neighbours (couple indices, SIZE_MAX-terminated, at most 6) */
    double *held_u, *held_T;
    size_t *held_nb;
    double eps37[ABL_MAX_MATERIALS], sig37[ABL_MAX_MATERIALS];
    double ji_eps37, ji_sig37; /* the Ji & Brace sigmoids at 37 C (mwa_dielectric_at's
                                * divisors, computed once: the near field asks for many T) */
    bool tdep[ABL_MAX_MATERIALS];
} mwa_state;

static void mwa_destroy(abl_source *s)
{
    mwa_state *m = s->state;
    if (m) {
        free(m->idx);
        free(m->geom);
        free(m->re_m);
        free(m->u);
        free(m->T_eval);
        free(m->q);
        free(m->pin_idx);
        free(m->pin_T);
        free(m->couple_dG);
        free(m->couple_G);
        free(m->couple);
        free(m->couple_dep);
        free(m->kappa);
        free(m->kappa_T);
        free(m->held_u);
        free(m->held_T);
        free(m->held_nb);
        free(m);
    }
    free(s);
}

/* A cooled shaft's held voxels (none without coolant); another antenna's power in the shaft
 * goes to its coolant. */
static void shaft_pins(const mwa_state *m, abl_source_contrib *out)
{
    out->n_pin = m->npin;
    out->pin_idx = m->pin_idx;
    out->pin_T_C = m->pin_T;
    out->pins_absorb = m->npin > 0;
}

/* The pattern's radial integral beside the shaft at one coupled voxel (applicator.h
 * needle_source_shift's I, per unit scale): u = 2 alpha f e^{-2 alpha r_e} / r_e with
 * r_e = sqrt(t^2 + a^2) (the antenna radius a is both the surface and the pattern's
 * regularisation), I(s) = int_a^s u t dt.
 *
 * The tissue between the cold wall and the coupled voxel b is not at b's temperature: it
 * rises from the coolant's at the wall to b's along the line-source profile the coupling
 * assumes, T(t) = T_c + (T_b - T_c) ln(t/a) / ln(d_b/a) (held at T_b beyond d_b). Where the
 * dielectric properties depend on temperature (Ji & Brace: sigma falls to about 45 % of its
 * 37 C value at 90 C), each point takes its own attenuation at that T, as every voxel of the
 * deposition takes its own (session 27: with b's attenuation for the whole interval, the near
 * field of a coupled voxel at 85-95 C was taken at the dropped value, and the heat to the wall
 * depended on how far from the wall the grid put b). Then I(s) is integrated numerically
 * (8-point Gauss-Legendre, t dt = r_e dr_e on [a, s]); with a constant attenuation it is the
 * closed form f (e^{-2 alpha r_e(a)} - e^{-2 alpha r_e(s)}). */
typedef struct {
    double two_alpha, f, a_m; /* constant attenuation: the closed form */
    const mwa_state *m; /* NULL: constant; else the profile below */
    uint8_t mat;
    double Tc, Tb, ln_db_a;
} near_field;

static double attenuation_at(const mwa_state *m, uint8_t mat, double T_C);

static double near_field_two_alpha(const near_field *nf, double t_m)
{
    double w = log(t_m / nf->a_m) / nf->ln_db_a;
    w = w < 0.0 ? 0.0 : w > 1.0 ? 1.0 : w;
    return 2.0 * attenuation_at(nf->m, nf->mat, nf->Tc + (nf->Tb - nf->Tc) * w);
}

static double near_field_inner(double s_m, const void *ctx)
{
    const near_field *nf = ctx;
    const double a2 = nf->a_m * nf->a_m;
    if (!nf->m)
        return nf->f * (exp(-nf->two_alpha * sqrt(2.0 * a2)) -
                        exp(-nf->two_alpha * sqrt(s_m * s_m + a2)));
    /* nodes and weights on [-1, 1] (Abramowitz & Stegun 1964, table 25.4), the rule of
     * applicator.c's tau */
    static const double x[4] = {0.1834346424956498, 0.5255324099163290, 0.7966664774136267,
                                0.9602898564975363};
    static const double wt[4] = {0.3626837833783620, 0.3137066458778873, 0.2223810344533745,
                                 0.1012285362903763};
    if (!(s_m > nf->a_m)) return 0.0;
    const double mid = 0.5 * (s_m + nf->a_m), half = 0.5 * (s_m - nf->a_m);
    double sum = 0.0;
    for (int i = 0; i < 4; i++)
        for (int sg = -1; sg <= 1; sg += 2) {
            const double t = mid + sg * half * x[i];
            const double re = sqrt(t * t + a2);
            const double ta = near_field_two_alpha(nf, t);
            sum += wt[i] * ta * exp(-ta * re) * t / re;
        }
    return nf->f * half * sum;
}

/* The attenuation constant [Np/m] of material mat at T_C (the Ji & Brace drop where it applies):
 * one rule for the deposition, the held tissue's share and the near-field shift. */
static double attenuation_at(const mwa_state *m, uint8_t mat, double T_C)
{
    /* mwa_dielectric_at's arithmetic, operation for operation, with its two divisors cached */
    const double eps = m->tdep[mat] ? m->eps37[mat] * ji_brace_eps(T_C) / m->ji_eps37
                                    : m->eps37[mat];
    const double sig = m->tdep[mat] ? m->sig37[mat] * ji_brace_sigma(T_C) / m->ji_sig37
                                    : m->sig37[mat];
    return mwa_attenuation_Np_m(eps, sig, m->p->f_Hz);
}

/* Coupled voxel q's shift per unit scale: the near field between the wall and the voxel along
 * the temperature profile from the coolant to the temperature the voxel's u was last evaluated
 * at (deposition entry di; a constant attenuation where the material's is). */
static double near_field_shift(const mwa_state *m, size_t q, size_t di)
{
    const mwa_params *p = m->p;
    const uint8_t mat = m->sim->material[m->idx[di]];
    near_field nf = {0.0, m->geom[di] * m->re_m[di], p->radius_m, NULL, mat, 0, 0, 0};
    const double ln_db_a = log(m->couple[q].d_m / p->radius_m);
    if (m->tdep[mat] && ln_db_a > 0.0) {
        nf.m = m;
        nf.Tc = p->coolant_C;
        nf.Tb = m->T_eval[di];
        nf.ln_db_a = ln_db_a;
    } else {
        nf.two_alpha = 2.0 * attenuation_at(m, mat, m->T_eval[di]);
    }
    return needle_source_shift(&m->couple[q], p->radius_m, m->u[di], near_field_inner, &nf);
}

/* a cooled shaft's held tissue (defined with the set-up below) */
static double held_voxel_share(const mwa_state *m, const abl_grid *g, size_t j, double T_out,
                               double ln_dout_a);
static void held_outside(const mwa_state *m, size_t j, double *T_out, double *ln_dout_a);

static abl_status mwa_update(abl_source *s, const abl_field_view *v, abl_source_contrib *out,
                             abl_error *err)
{
    mwa_state *m = s->state;
    const mwa_params *p = m->p;
    *out = (abl_source_contrib){0};
    /* on for this step's interval (aligned to on_s/off_s): decided at its midpoint, so the step
     * ending at off_s heats in every scheme */
    if (!source_window_on(v, m->on_s, m->off_s)) return ABL_OK;
    shaft_pins(m, out);
    if (v->pins_only) return ABL_OK; /* implicit schemes' end-of-step call: the shaft only */
    /* each voxel's u on its own (threads change speed only); the sums below in index order */
    int changed = 0;
    {
        const size_t n = m->n;
        const double dT = p->recompute_dT_C;
#pragma omp parallel for schedule(static) reduction(| : changed)
        for (size_t i = 0; i < n; i++) {
            const double T = v->T_C[m->idx[i]];
            if (fabs(T - m->T_eval[i]) <= dT) continue; /* NaN T_eval: evaluate */
            const double alpha = attenuation_at(m, v->material[m->idx[i]], T);
            m->u[i] = 2.0 * alpha * exp(-2.0 * alpha * m->re_m[i]) * m->geom[i];
            m->T_eval[i] = T;
            changed |= 1;
        }
    }
    if (changed) {
        double sum = 0.0;
        for (size_t i = 0; i < m->n; i++)
            sum += m->u[i]; /* index order: deterministic */
        m->sum_u = sum;
    }
    /* a cooled shaft's held tissue: its share at the profile to the tissue outside it, a pure
     * function of the temperatures the deposition was evaluated at (so a resumed run, which
     * restores those, repeats it) */
    int held_changed = 0;
    {
        const size_t np = m->npin;
#pragma omp parallel for schedule(dynamic, 16) reduction(| : held_changed)
        for (size_t j = 0; j < np; j++) {
            if (!m->tdep[v->material[m->pin_idx[j]]]) continue; /* the same share at any T */
            double T_out, ln_dout_a;
            held_outside(m, j, &T_out, &ln_dout_a);
            if (T_out == m->held_T[j]) continue;
            m->held_u[j] = held_voxel_share(m, &m->sim->grid, j, T_out, ln_dout_a);
            m->held_T[j] = T_out;
            held_changed |= 1;
        }
    }
    if (held_changed) {
        double sum = 0.0;
        for (size_t j = 0; j < m->npin; j++) sum += m->held_u[j]; /* index order */
        m->u_held = sum;
    }
    if (!(m->sum_u > 0.0) || !isfinite(m->sum_u))
        return abl_fail(err, ABL_ENUM,
                        "source '%s' (mwa): no absorbing tissue around the antenna at t = %g s "
                        "(all voxels within cutoff_mm have zero conductivity)",
                        s->name, v->t_s);
    /* the generator power averaged over the step (exact energy for any schedule, source.h) */
    double P_W = (v->step_h_s > 0.0 ? schedule_average(&p->schedule, v->step_t0_s,
                                                       v->step_t0_s + v->step_h_s)
                                    : schedule_eval(&p->schedule, v->t_s)) *
                 p->efficiency;
    double scale = P_W / ((m->sum_u + m->u_held) * m->V_m3);
    {
        const size_t n = m->n;
        double *q = m->q;
        const double *u = m->u;
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) q[i] = scale * u[i];
    }
    /* cooled shaft: the tissue beside the held set sees the coolant at the true surface, from
     * the temperature at the start of the step (as a cooled RF electrode, rfa.c), shifted by
     * the near field the antenna makes between the surface and the voxel (needle_source_shift;
     * each coupled voxel on its own, so any thread count gives the same numbers) */
    const size_t nc = m->ncouple;
#pragma omp parallel for schedule(dynamic, 8)
    for (size_t q = 0; q < nc; q++) {
        const size_t b = m->idx[m->n + q];
        m->couple_G[q] = needle_couple_G(m->sim, v->material[b], p->coolant_C, v->T_C[b],
                                         m->couple_dG[q]);
        m->q[m->n + q] = m->couple_G[q] * (p->coolant_C - v->T_C[b]);
        const size_t di = m->couple_dep[q];
        if (di == SIZE_MAX) continue;
        if (!(m->kappa_T[q] == m->T_eval[di])) { /* NaN: never evaluated */
            m->kappa[q] = near_field_shift(m, q, di);
            m->kappa_T[q] = m->T_eval[di];
        }
        m->q[m->n + q] += m->couple[q].G_m2 * scale * m->kappa[q];
    }
    out->n_heat = m->n + m->ncouple;
    out->heat_idx = m->idx;
    out->heat_q_W_m3 = m->q;
    out->heat_G_W_m3K = m->ncouple ? m->couple_G : NULL;
    out->heat_G_first = m->n;
    out->heat_distinct = m->n; /* the deposition list: one entry per voxel within the cutoff */
    return ABL_OK;
}

static int mwa_axes(const abl_source *s, abl_source_axis *out, int max)
{
    const mwa_state *m = s->state;
    if (max < 1) return 0;
    for (int a = 0; a < 3; a++) {
        out->tip_m[a] = m->p->tip_m[a];
        out->dir[a] = m->p->dir[a];
    }
    return 1;
}

/* Checkpoint state: the cached deposition and the temperatures it was evaluated at (a resumed
 * run must re-evaluate exactly the voxels the uninterrupted run would). */
static abl_status mwa_state_io(const abl_source *s, abl_blob *b, abl_error *err)
{
    mwa_state *m = s->state;
    size_t n = m->n;
    abl_blob_io(b, &n, sizeof n);
    if (b->mode == ABL_BLOB_LOAD && !b->bad && n != m->n)
        return abl_fail(err, ABL_EINVAL,
                        "source '%s' (mwa): checkpoint holds %zu deposition voxels, the scenario "
                        "%zu", s->name, n, m->n);
    abl_blob_io(b, m->u, m->n * sizeof *m->u);
    abl_blob_io(b, m->T_eval, m->n * sizeof *m->T_eval);
    abl_blob_io(b, &m->sum_u, sizeof m->sum_u);
    if (b->bad) return abl_fail(err, ABL_EINVAL, "source '%s' (mwa): checkpoint state truncated", s->name);
    return ABL_OK;
}

/* The generator schedule's points are step boundaries (source.h breakpoints). */
static int mwa_breakpoints(const abl_source *s, double *t_s, int max)
{
    const mwa_state *m = s->state;
    const abl_schedule *sch = &m->p->schedule;
    for (int i = 0; i < sch->n && i < max; i++) t_s[i] = sch->t_s[i];
    return sch->n;
}

static const abl_source_ops mwa_ops = {.type = "mwa",
                                       .update = mwa_update,
                                       .destroy = mwa_destroy,
                                       .axes = mwa_axes,
                                       .state_io = mwa_state_io,
                                       .breakpoints = mwa_breakpoints};

/* A cooled shaft's (coolant_temperature_C) held set and coupling (applicator.h, as a cooled
 * RF electrode's): the antenna of radius antenna_radius_mm from the tip (its rounded end
 * pulled back like a needle's) along the direction until it leaves the grid (no pulled-back end
 * there: the shaft goes on to the handle). Fills m's pins and coupling conductances; *mark
 * (held voxels 1) and *cpl (the couples) are the caller's to free. */
static abl_status cooled_shaft(mwa_state *m, const abl_grid *g, int **mark,
                               abl_needle_couple **cpl)
{
    const mwa_params *p = m->p;
    /* distance from the tip to the grid's outer faces along the direction */
    const int na[3] = {g->nx, g->ny, g->nz};
    double L = INFINITY;
    for (int a = 0; a < 3; a++) {
        if (p->dir[a] == 0.0) continue;
        const double lo = g->origin_m[a] - 0.5 * g->h_m[a];
        const double hi = g->origin_m[a] + (na[a] - 0.5) * g->h_m[a];
        L = fmin(L, ((p->dir[a] > 0.0 ? hi : lo) - p->tip_m[a]) / p->dir[a]);
    }
    /* carried on past the exit by the grid's diagonal: at a shallow exit angle the held capsule
     * beside the exit face reaches further along the axis than one held radius */
    double diag = 0.0;
    for (int a = 0; a < 3; a++) diag += (na[a] * g->h_m[a]) * (na[a] * g->h_m[a]);
    const abl_chord shaft = {{p->tip_m[0], p->tip_m[1], p->tip_m[2]},
                             {p->dir[0], p->dir[1], p->dir[2]},
                             L + sqrt(diag),
                             true,
                             false};
    const size_t nh = wire_hold_voxels(g, &shaft, 1, p->radius_m, NULL, 0);
    m->pin_idx = malloc((nh ? nh : 1) * sizeof *m->pin_idx);
    m->pin_T = malloc((nh ? nh : 1) * sizeof *m->pin_T);
    *mark = calloc(g->n, sizeof **mark);
    uint8_t *seen = calloc(g->n, 1);
    *cpl = malloc((6 * nh + 1) * sizeof **cpl);
    if (!m->pin_idx || !m->pin_T || !*mark || !seen || !*cpl ||
        (nh && wire_hold_voxels(g, &shaft, 1, p->radius_m, m->pin_idx, nh) != nh)) {
        free(seen);
        return ABL_ENOMEM;
    }
    m->npin = nh;
    for (size_t q = 0; q < nh; q++) {
        m->pin_T[q] = p->coolant_C;
        (*mark)[m->pin_idx[q]] = 1;
    }
    m->ncouple = wire_coupling(g, &shaft, 1, p->radius_m, m->pin_idx, nh, *mark, 1, seen, *cpl);
    free(seen);
    m->couple_dG = malloc((m->ncouple ? m->ncouple : 1) * sizeof *m->couple_dG);
    m->couple_G = malloc((m->ncouple ? m->ncouple : 1) * sizeof *m->couple_G);
    return m->couple_dG && m->couple_G ? ABL_OK : ABL_ENOMEM;
}

/* The pattern's geometry at point x (file comment): s along the shaft from the tip and r^2 from
 * the axis (from the tip itself where s < 0); false outside the deposition region (beyond
 * cutoff_mm of the axis, or further than cutoff_mm behind the feed). */
static bool pattern_point(const mwa_params *p, const double x[3], double *s, double *r2)
{
    double w[3];
    for (int a = 0; a < 3; a++)
        w[a] = x[a] - p->tip_m[a];
    const double sx = w[0] * p->dir[0] + w[1] * p->dir[1] + w[2] * p->dir[2];
    double rr = 0.0;
    for (int a = 0; a < 3; a++) {
        const double ra = sx >= 0.0 ? w[a] - sx * p->dir[a] : w[a];
        rr += ra * ra;
    }
    *s = sx;
    *r2 = rr;
    return !(rr > p->cutoff_m * p->cutoff_m || sx > p->feed_m + p->cutoff_m);
}

/* The pattern's axial factor f(s) (file comment). */
static double pattern_axial(const mwa_params *p, double s)
{
    const double ds = s - p->feed_m;
    return ds < 0.0 ? exp(-(ds / p->fwd_m) * (ds / p->fwd_m)) : exp(-ds / p->back_m);
}

/* Tissue t that the pattern reaches has no dielectric values at the source's frequency:
 * ABL_EINVAL naming it; where: "around the antenna", "beside the cooled shaft". */
static abl_status no_dielectric(const abl_source_cfg *cfg, const mwa_params *p,
                                const abl_tissue *t, const char *where, abl_error *err)
{
    const char *f = p->f_Hz < 1e9 ? "915MHz" : "2450MHz";
    return abl_fail(err, ABL_EINVAL,
                    "%s: source '%s': tissue '%s' %s has no relative_permittivity_%s / "
                    "electrical_conductivity_%s_S_per_m in the tissue table; add them (tissues: "
                    "section)",
                    cfg->where, cfg->name, t->name, where, f, f);
}

/* The deposition list's entry of voxel c (the list is in index order), SIZE_MAX if absent. */
static size_t deposition_entry(const mwa_state *m, size_t c)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        const size_t mid = lo + (hi - lo) / 2;
        if (m->idx[mid] < c) lo = mid + 1;
        else hi = mid;
    }
    return lo < m->n && m->idx[lo] == c ? lo : SIZE_MAX;
}

/* Held voxel j's share of the pattern: the pattern integrated over its tissue outside the
 * antenna (4 x 4 x 4 midpoints, the deposition list's cutoff rules per point), in units of u x
 * voxel volume. Each point's attenuation is taken at the temperature of the profile from the
 * wall (the coolant's) to the tissue outside the held set (T_out at d_out from the axis), as the
 * near-field shift takes it (near_field_inner); T_out = the coolant's (ln_dout_a = 0) gives the
 * flat profile at the held temperature. -1: tissue without dielectric data that the pattern
 * reaches. */
#define HELD_SUB 4
static double held_voxel_share(const mwa_state *m, const abl_grid *g, size_t j, double T_out,
                               double ln_dout_a)
{
    const mwa_params *p = m->p;
    const size_t c = m->pin_idx[j];
    const uint8_t mat = m->sim->material[c];
    const bool no_data = isnan(m->eps37[mat]) || isnan(m->sig37[mat]);
    if (!no_data && !(m->sig37[mat] > 0.0)) return 0.0; /* absorbs nothing */
    const bool profile = m->tdep[mat] && ln_dout_a > 0.0 && T_out != p->coolant_C;
    const double two_alpha_c = no_data ? NAN : 2.0 * attenuation_at(m, mat, p->coolant_C);
    const near_field nf = {0, 0, p->radius_m, m, mat, p->coolant_C, T_out, ln_dout_a};
    const int ijk[3] = {(int)(c % g->sy), (int)(c / g->sy % (size_t)g->ny), (int)(c / g->sz)};
    double x0[3];
    grid_voxel_centre_m(g, ijk[0], ijk[1], ijk[2], x0);
    double sum = 0.0;
    for (int a = 0; a < HELD_SUB; a++)
        for (int b = 0; b < HELD_SUB; b++)
            for (int e = 0; e < HELD_SUB; e++) {
                const int sub[3] = {a, b, e};
                double y[3], sx, r2;
                for (int d = 0; d < 3; d++)
                    y[d] = x0[d] + ((sub[d] + 0.5) / HELD_SUB - 0.5) * g->h_m[d];
                if (!pattern_point(p, y, &sx, &r2) || r2 <= p->radius_m * p->radius_m)
                    continue; /* outside the pattern, or the antenna itself */
                if (no_data) return -1.0;
                const double re = sqrt(r2 + p->radius_m * p->radius_m);
                const double f = pattern_axial(p, sx);
                const double ta = profile ? near_field_two_alpha(&nf, sqrt(r2)) : two_alpha_c;
                sum += ta * exp(-ta * re) * f / re;
            }
    return sum / (HELD_SUB * HELD_SUB * HELD_SUB);
}

/* The temperature and distance from the axis of the tissue just outside held voxel j: the mean
 * over its face neighbours that are coupled voxels in the deposition list, of the temperature
 * their u was last evaluated at and of their distance (the coolant's and 0 where it has none). */
static void held_outside(const mwa_state *m, size_t j, double *T_out, double *ln_dout_a)
{
    double T = 0.0, d = 0.0;
    int n = 0;
    for (int k = 0; k < 6; k++) {
        const size_t q = m->held_nb[6 * j + k];
        if (q == SIZE_MAX) break;
        const size_t di = m->couple_dep[q];
        if (di == SIZE_MAX || isnan(m->T_eval[di])) continue;
        T += m->T_eval[di];
        d += m->couple[q].d_m;
        n++;
    }
    if (n == 0 || !(d / n > m->p->radius_m)) {
        *T_out = m->p->coolant_C;
        *ln_dout_a = 0.0;
        return;
    }
    *T_out = T / n;
    *ln_dout_a = log(d / n / m->p->radius_m);
}

/* A cooled shaft's near-field data: each coupled voxel's deposition entry and an empty shift
 * cache; each held voxel's coupled face neighbours (held_nb, the tissue outside it), and its
 * share of the pattern at the coolant temperature (held_voxel_share; updated from the
 * neighbours' temperatures as the run goes, mwa_update), u_held their sum. Held tissue the
 * pattern reaches needs its dielectric properties as the deposition's tissue does (ABL_EINVAL
 * naming it; a held voxel whose every point lies in the antenna or outside the pattern needs
 * none). mark: 1 on the held voxels (grid-sized; overwritten here on the coupled ones). */
static abl_status near_field_setup(mwa_state *m, const abl_grid *g, const abl_needle_couple *cpl,
                                   int *mark, const abl_source_cfg *cfg, abl_error *err)
{
    const mwa_params *p = m->p;
    const size_t nc = m->ncouple ? m->ncouple : 1, np = m->npin ? m->npin : 1;
    m->couple_dep = malloc(nc * sizeof *m->couple_dep);
    m->kappa = malloc(nc * sizeof *m->kappa);
    m->kappa_T = malloc(nc * sizeof *m->kappa_T);
    m->held_u = malloc(np * sizeof *m->held_u);
    m->held_T = malloc(np * sizeof *m->held_T);
    m->held_nb = malloc(6 * np * sizeof *m->held_nb);
    if (!m->couple_dep || !m->kappa || !m->kappa_T || !m->held_u || !m->held_T || !m->held_nb)
        return ABL_ENOMEM;
    for (size_t q = 0; q < m->ncouple; q++) {
        m->couple_dep[q] = deposition_entry(m, cpl[q].b);
        m->kappa[q] = 0.0;
        m->kappa_T[q] = NAN;
        if (q > (size_t)INT_MAX - 2) return ABL_ENOMEM;
        mark[cpl[q].b] = (int)q + 2;
    }
    double u_held = 0.0;
    for (size_t j = 0; j < m->npin; j++) {
        const size_t c = m->pin_idx[j];
        const int ijk[3] = {(int)(c % g->sy), (int)(c / g->sy % (size_t)g->ny), (int)(c / g->sz)};
        const int na[3] = {g->nx, g->ny, g->nz};
        const size_t stride[3] = {1, g->sy, g->sz};
        int k = 0;
        for (int a = 0; a < 3; a++)
            for (int sg = -1; sg <= 1; sg += 2) {
                const int t = ijk[a] + sg;
                if (t < 0 || t >= na[a]) continue;
                const size_t nb = sg < 0 ? c - stride[a] : c + stride[a];
                if (mark[nb] >= 2) m->held_nb[6 * j + k++] = (size_t)(mark[nb] - 2);
            }
        for (; k < 6; k++) m->held_nb[6 * j + k] = SIZE_MAX;
        const double share = held_voxel_share(m, g, j, p->coolant_C, 0.0);
        if (share < 0.0) {
            const uint8_t mat = m->sim->material[c];
            return no_dielectric(cfg, p, &m->sim->sc->tissues.t[m->sim->mat_tissue[mat]],
                                 "beside the cooled shaft", err);
        }
        m->held_u[j] = share;
        m->held_T[j] = p->coolant_C;
        u_held += share;
    }
    m->u_held = u_held;
    return ABL_OK;
}

static abl_status mwa_create(const abl_source_cfg *cfg, const abl_sim *sim, abl_source **out,
                             abl_error *err)
{
    *out = NULL;
    const mwa_params *p = cfg->params;
    const abl_grid *g = &sim->grid;
    const abl_tissue_table *tt = &sim->sc->tissues;
    abl_source *s;
    void *state;
    abl_status st0 = source_alloc(cfg, &mwa_ops, sizeof(mwa_state), &s, &state, err);
    if (st0) return st0;
    mwa_state *m = state;
    m->p = p;
    m->sim = sim;
    m->on_s = cfg->on_s;
    m->off_s = cfg->off_s;
    m->V_m3 = grid_voxel_volume_m3(g);
    m->ji_eps37 = ji_brace_eps(37.0);
    m->ji_sig37 = ji_brace_sigma(37.0);
    bool f915 = p->f_Hz < 1e9;
    for (int k = 0; k < sim->nmat; k++) {
        const abl_tissue *t = &tt->t[sim->mat_tissue[k]];
        m->eps37[k] = f915 ? t->eps_r_915MHz : t->eps_r_2450MHz;
        m->sig37[k] = f915 ? t->sigma_915MHz_S_m : t->sigma_2450MHz_S_m;
        /* the Ji & Brace drop is dehydration: applied to water-rich tissue only (water mass
         * fraction >= 0.5); drier tissue (fat, bone, yellow marrow, air) kept constant - no
         * high-temperature microwave data for them here */
        m->tdep[k] = p->dielectric == 0 && t->water_fraction >= 0.5;
    }
    abl_status st = ABL_OK;
    int *mark = NULL;               /* cooled shaft: its held voxels */
    abl_needle_couple *cpl = NULL;  /* and its coupled ones */
    /* the tip must lie inside the grid: otherwise the pattern is a guess about tissue we have
     * not modelled */
    for (int a = 0; a < 3; a++) {
        int na = a == 0 ? g->nx : a == 1 ? g->ny : g->nz;
        double lo = g->origin_m[a] - 0.5 * g->h_m[a];
        double hi = g->origin_m[a] + (na - 0.5) * g->h_m[a];
        if (!(p->tip_m[a] >= lo && p->tip_m[a] <= hi)) {
            st = abl_fail(err, ABL_EINVAL,
                          "%s: source '%s': tip_mm = [%g, %g, %g] lies outside the grid "
                          "(x %.1f..%.1f, y %.1f..%.1f, z %.1f..%.1f mm)",
                          cfg->where, cfg->name, p->tip_m[0] * 1e3, p->tip_m[1] * 1e3,
                          p->tip_m[2] * 1e3, (g->origin_m[0] - 0.5 * g->h_m[0]) * 1e3,
                          (g->origin_m[0] + (g->nx - 0.5) * g->h_m[0]) * 1e3,
                          (g->origin_m[1] - 0.5 * g->h_m[1]) * 1e3,
                          (g->origin_m[1] + (g->ny - 0.5) * g->h_m[1]) * 1e3,
                          (g->origin_m[2] - 0.5 * g->h_m[2]) * 1e3,
                          (g->origin_m[2] + (g->nz - 0.5) * g->h_m[2]) * 1e3);
            goto fail;
        }
    }
    if (!isnan(p->coolant_C) && (st = cooled_shaft(m, g, &mark, &cpl)))
        goto fail_nomem;
    /* voxel set: within cutoff of the antenna, behind at most cutoff past the feed gap, in
     * tissue that can absorb (sigma > 0), outside a cooled shaft's held set (the antenna body:
     * its power radiates into the tissue around it; docs/MWA.md "Cooled shaft" on why the
     * held voxels do not keep their share); two passes (count, fill) in index order */
    for (int pass = 0; pass < 2; pass++) {
        size_t n = 0;
        for (int k = 0; k < g->nz; k++)
            for (int j = 0; j < g->ny; j++)
                for (int i = 0; i < g->nx; i++) {
                    size_t c = ABL_IDX(g, i, j, k);
                    uint8_t mat = sim->material[c];
                    double x[3], sx, r2;
                    grid_voxel_centre_m(g, i, j, k, x);
                    if (!pattern_point(p, x, &sx, &r2)) continue;
                    if (mark && mark[c]) continue;
                    if (pass == 0) {
                        if (isnan(m->eps37[mat]) || isnan(m->sig37[mat])) {
                            st = no_dielectric(cfg, p, &tt->t[sim->mat_tissue[mat]],
                                               "around the antenna", err);
                            goto fail;
                        }
                        if (m->sig37[mat] > 0.0) n++;
                        continue;
                    }
                    if (!(m->sig37[mat] > 0.0)) continue;
                    const double re = sqrt(r2 + p->radius_m * p->radius_m);
                    const double f = pattern_axial(p, sx);
                    m->idx[n] = c;
                    m->re_m[n] = re;
                    m->geom[n] = f / re;
                    m->T_eval[n] = NAN;
                    m->u[n] = 0.0;
                    n++;
                }
        if (pass == 0) {
            if (n == 0) {
                st = abl_fail(err, ABL_EINVAL,
                              "%s: source '%s': no absorbing tissue voxel within cutoff_mm = %g "
                              "of the antenna",
                              cfg->where, cfg->name, p->cutoff_m * 1e3);
                goto fail;
            }
            m->n = n;
            m->idx = malloc((n + m->ncouple) * sizeof *m->idx);
            m->geom = malloc(n * sizeof *m->geom);
            m->re_m = malloc(n * sizeof *m->re_m);
            m->u = malloc(n * sizeof *m->u);
            m->T_eval = malloc(n * sizeof *m->T_eval);
            m->q = malloc((n + m->ncouple) * sizeof *m->q);
            if (!m->idx || !m->geom || !m->re_m || !m->u || !m->T_eval || !m->q) {
                st = ABL_ENOMEM;
                goto fail_nomem;
            }
        }
    }
    /* the coupled voxels follow the deposition in the heat list (source.h heat_G_first) */
    for (size_t q = 0; q < m->ncouple; q++) {
        m->idx[m->n + q] = cpl[q].b;
        m->couple_dG[q] = cpl[q].dG_m2;
    }
    if (mark && (st = near_field_setup(m, g, cpl, mark, cfg, err))) {
        if (st == ABL_ENOMEM) goto fail_nomem;
        goto fail;
    }
    /* the shift needs each coupled voxel's geometry (kept at its used length) */
    abl_needle_couple *kept = realloc(cpl, (m->ncouple ? m->ncouple : 1) * sizeof *cpl);
    m->couple = kept ? kept : cpl;
    cpl = NULL;
    free(mark);
    *out = s;
    return ABL_OK;
fail_nomem:
    st = abl_fail(err, ABL_ENOMEM, "out of memory creating source '%s'", cfg->name);
fail:
    free(mark);
    free(cpl);
    mwa_destroy(s);
    return st;
}

const abl_source_type_info mwa_source_type = {"mwa", &mwa_keys, mwa_parse, mwa_create,
                                              mwa_free_params};
