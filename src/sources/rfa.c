/* rfa.c - radiofrequency ablation (type 'rfa'): Joule heating q = sigma |grad V|^2 around
 * electrodes driven by a generator, from the quasi-static potential div(sigma(T) grad V) = 0
 * (potential.h). Model, keys and sources: docs/RFA.md.
 *
 * Per step (update at t):
 *  1. sigma(T) per voxel from the current temperatures (rfa_sigma_at).
 *  2. Re-solve the unit-voltage potential u (electrodes at 1 V, grounded faces at 0) when the
 *     active electrodes changed or, on a step where the generator drives current (not paused,
 *     PI output > 0: with V0 = 0 the stored u heats nothing), when sigma has moved enough since
 *     the last solve: the heating-weighted relative change
 *         c = sum_v q1_v |sigma_v - sigma_v^s| / sigma_v^s  /  sum_v q1_v
 *     exceeds resolve_tolerance (default 1 %). q1 is the unit-voltage Joule heat, sigma^s the
 *     conductivity of the last solve. Why this measure: for Dirichlet data the dissipation is
 *     stationary in the field (Thomson's principle), so to first order a conductivity change
 *     d sigma changes the electrode conductance by sum d sigma |grad u|^2 V = sum q1 (d sigma /
 *     sigma) V; c bounds that relative change, i.e. the error of the impedance and power the
 *     stored solution implies. A voxel far from the electrode (q1 ~ 0) may change its sigma
 *     freely; one next to the electrode that vaporises (d sigma / sigma = -1) weighs with its
 *     share of the heat.
 *  3. Between solves the field is linear in the voltage: V = V0 u, q = V0^2 q1, P = V0^2 P1,
 *     I = V0 I1. The generator picks V0 from its mode (constant voltage, constant power,
 *     PI temperature control, impedance pulsing), capped at max_voltage_V and max_current_A.
 *  4. Heat: q on the tissue voxels; pins: cooled electrodes held at the coolant temperature
 *     while the source is on (the pump runs through generator pauses).
 * Electrodes (straight ones, and expandable tines as chains of chords) are the applicator kit's
 * held set (wider than the needle) whose
 * neighbours are coupled to the true surface (build_couplings): in the potential operator
 * (potential_set_couples), in the Joule heat (half of a coupled face's to the held side) and,
 * for cooled electrodes, thermally (k dG (T_cool - T_b) as heat; docs/RFA.md "Sub-voxel
 * electrode coupling").
 * The power reported is V0^2 (P1 + P1_far): P1 = sum q V the Joule heat in the grid, P1_far
 * the exterior's with a far ground (potential_far_power; 0 with ground: faces); their sum is I1
 * to the CG tolerance (discrete identity in potential.h), so the series satisfies P = V I.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ablasim/applicator.h"
#include "ablasim/kernels.h"
#include "ablasim/potential.h"
#include "ablasim/profile.h"
#include "ablasim/rfa.h"
#include "ablasim/sim.h"
#include "ablasim/source.h"

#define PI 3.14159265358979323846
#define RFA_MAX_ELECTRODES 16
#define NCOL 10     /* generator log columns of every RFA source (series_cols) */
#define NCOL_MAX 15 /* with a far ground's and impedance switching's own, and step_s */

/* ---- conductivity model ------------------------------------------------------------------ */

double rfa_sigma_at(const rfa_sigma_model *m, double s37, double T_C)
{
    double s1 = s37 * (1.0 + m->coeff_per_K * (m->drop_start_C - 37.0));
    double s;
    if (T_C <= m->drop_start_C)
        s = s37 * (1.0 + m->coeff_per_K * (T_C - 37.0));
    else if (T_C >= m->drop_end_C)
        s = m->drop_factor * s1;
    else {
        /* linear in T: the conducting fraction follows the liquid water left while it boils */
        double f = (T_C - m->drop_start_C) / (m->drop_end_C - m->drop_start_C);
        s = s1 * (1.0 - f * (1.0 - m->drop_factor));
    }
    /* not fmax: the library call costs more than the rest of this function in update_sigma;
     * the same value (a NaN s gives the floor either way) */
    return s > m->floor_S_m ? s : m->floor_S_m;
}

/* ---- parameters -------------------------------------------------------------------------- */

typedef enum { GEN_VOLTAGE, GEN_POWER, GEN_TEMPERATURE, GEN_IMPEDANCE } rfa_mode;
static const char *const mode_names[] = {"constant_voltage", "constant_power", "temperature",
                                         "impedance"};
typedef enum { EL_STRAIGHT, EL_EXPANDABLE } rfa_el_type;
static const char *const el_names[] = {"straight", "expandable"};
static const char *const switching_names[] = {"together", "sequential", "bipolar_pairs",
                                               "impedance"};
enum { SW_TOGETHER, SW_SEQUENTIAL, SW_PAIRS, SW_IMPEDANCE }; /* rfa_params.switching */
static const char *const face_names[] = {"x_min", "x_max", "y_min", "y_max", "z_min", "z_max"};

typedef struct {
    int type;
    double tip_m[3], dir[3];
    double length_m, radius_m;       /* straight: active length, electrode radius */
    bool cooled;
    double coolant_C;
    int n_tines;                     /* expandable */
    double deployed_diameter_m, tine_arc_deg, tine_radius_m;
    int polarity;                    /* 0 active, 1 return (bipolar) */
    /* wet electrode (docs/RFA.md "Wet electrodes"): fluid infused from the active tip */
    bool wet;
    double infusion_m3_s;            /* rate */
    double infusion_sigma_S_m;       /* the fluid's conductivity at 37 C */
    double infusion_start_s;         /* from the source's on_s (negative: before it) */
    double infusion_fraction;        /* volume fraction of the infiltrated tissue it fills */
} rfa_electrode;

typedef struct {
    int mode;
    double voltage_V, power_W, max_voltage_V, max_current_A, max_power_W;
    double setpoint_C, kp_W_K, ki_W_Ks;
    double delta_Ohm, pause_s, baseline_s;
    double control_interval_s; /* impedance mode and impedance switching: longest automatic
                                * step (rfa_max_step) */
    rfa_electrode el[RFA_MAX_ELECTRODES];
    int nel;
    int switching;    /* SW_*: together (0), one electrode at a time (by time or by impedance),
                       * or pairs in turn */
    double switch_interval_s;
    double switch_delta_Ohm; /* SW_IMPEDANCE: next electrode when Z > its baseline + this */
    bool bipolar;     /* some electrode is a return: active at +1/2, return at -1/2 (unit) */
    bool grounded[6];
    bool far_ground;  /* ground: far (monopolar default): the grounded faces lead to a far pad */
    rfa_sigma_model sigma;
    double resolve_tol, solver_tol, sensor_radius_m;
    double margin_m; /* electrical box: electrodes' extent + margin (< 0: the whole grid) */
    int max_iter;
    int preconditioner; /* ABL_PRECOND_* of potential.h */
} rfa_params;

/* The keys of an RFA source, declared once (docs/RFA.md's table): a generator key's variants are
 * the modes that take it, an electrode key's the electrode types, so a key of another mode or
 * type is reported as unknown, listing this mode's keys in the table's order. */
enum {
    V_VOLT = 1u << GEN_VOLTAGE,
    V_POWER = 1u << GEN_POWER,
    V_TEMP = 1u << GEN_TEMPERATURE,
    V_IMPED = 1u << GEN_IMPEDANCE,
    V_STRAIGHT = 1u << EL_STRAIGHT,
    V_EXPAND = 1u << EL_EXPANDABLE
};

static const cfg_keydecl gen_decl[] = {
    CFG_KEY("mode", "–", "required", "see above", "control law (below)"),
    {"voltage_V", "V", "required (constant_voltage)", "(0, 1000]",
     "electrode voltage (RMS) against ground", .variants = V_VOLT},
    {"power_W", "W", "required (constant_power, impedance)", "(0, 1000]",
     "power delivered while conducting", .variants = V_POWER | V_IMPED},
    {"setpoint_C", "°C", "required (temperature)", "[40, 200]",
     "target of the hottest sensor voxel", .variants = V_TEMP},
    {"max_power_W", "W", "200", "(0, 1000]", "temperature mode: ceiling of the PI output",
     .variants = V_TEMP},
    {"max_voltage_V", "V", "200", "(0, 1000]",
     "voltage ceiling (ASSUMED typical generator ceiling: 200 W into 50-200 Ω needs 100-200 V)",
     .variants = V_POWER | V_TEMP | V_IMPED},
    CFG_KEY("max_current_A", "A", "0 = none", "[0, 10]", "current ceiling (Cool-tip: 2 A)"),
    {"kp_W_per_K", "W/K", "0.5", "[0, 1e4]", "proportional gain", .variants = V_TEMP},
    {"ki_W_per_K_s", "W/(K s)", "0.05", "[0, 1e4]", "integral gain", .variants = V_TEMP},
    {"delta_Ohm", "Ω", "10", "(0, 1e4]", "impedance mode: pause when Z > baseline + delta",
     .variants = V_IMPED},
    {"pause_s", "s", "15", "(0, 3600]", "impedance mode: length of a pause", .variants = V_IMPED},
    {"baseline_s", "s", "10", "[0, 600]",
     "impedance mode: baseline = lowest Z in the first baseline_s", .variants = V_IMPED},
    {"control_interval_s", "s", "0.5", "(0, 60]",
     "impedance mode: the generator judges the impedance at least this often (the automatic "
     "time step is at most this)",
     .variants = V_IMPED},
};

static const cfg_keytable gen_keys = CFG_KEYTABLE(gen_decl);

static const cfg_keydecl el_decl[] = {
    CFG_KEY("type", "–", "straight", "straight, expandable", NULL),
    {NEEDLE_KEY_TIP("tip (straight) or trocar tip (expandable); the active part must lie "
                    "inside the grid")},
    {NEEDLE_KEY_DIRECTION},
    {"active_length_mm", "mm", "required (straight)", "(0, 300]", "exposed length",
     .variants = V_STRAIGHT},
    {NEEDLE_KEY_GAUGE("absent: diameter_mm"), .variants = V_STRAIGHT},
    {NEEDLE_KEY_DIAMETER("1.5 (about 17 G)", "(0, 20]"), .variants = V_STRAIGHT},
    {"coolant_temperature_C", "°C", "absent = not cooled", "[0, 60]",
     "cooled: the held voxels at it, their neighbours coupled to it, while the source is on",
     .variants = V_STRAIGHT},
    {"n_tines", "–", "10", "2..24", "expandable", .variants = V_EXPAND},
    {"deployed_diameter_mm", "mm", "required (expandable)", "(0, 100]",
     "largest lateral span of the array", .variants = V_EXPAND},
    {"tine_arc_deg", "°", "180", "[10, 180]",
     "arc each tine describes (180: LeVeen-like umbrella; 90: forward spread)",
     .variants = V_EXPAND},
    {"tine_diameter_mm", "mm", "0.5", "(0, 20]", NULL, .variants = V_EXPAND},
    {"infusion_rate_mL_per_min", "mL/min", "absent = dry", "(0, 10]",
     "wet electrode: fluid infused from the active tip into the tissue around it",
     .variants = V_STRAIGHT},
    {"infusion_conductivity_S_per_m", "S/m", "2.0 (0.9 % NaCl at 37 °C, the table's saline)",
     "(0, 50]", "wet electrode: the infused fluid's conductivity at 37 °C",
     .variants = V_STRAIGHT},
    {"infusion_start_s", "s", "0", "[-3600, 3600]",
     "wet electrode: infusion start from the source's on_s (negative: before the current)",
     .variants = V_STRAIGHT},
    {"infusion_volume_fraction", "–", "0.2", "(0, 1]",
     "wet electrode: share of the infiltrated tissue's volume the fluid fills (ASSUMED: the "
     "extracellular space)",
     .variants = V_STRAIGHT},
    CFG_KEY("polarity", "–", "`active`", "`active`, `return`",
            "bipolar RFA: the generator drives its voltage between the active and the return "
            "electrodes (no dispersive pad needed; docs/RFA.md \"Bipolar\")"),
};

static const cfg_keytable el_keys = CFG_KEYTABLE(el_decl);

static const cfg_keydecl rfa_decl[] = {
    {APPLICATOR_KEY_DEVICE},
    {"generator", "–", "required", "mapping", "the generator (`mode` and its settings)",
     .label = "", .sub = &gen_keys, .sub_prefix = "generator."},
    {"electrodes", "–", "required", "list of 1..16 mappings", "the electrodes of this source",
     .label = "", .sub = &el_keys, .sub_prefix = "electrodes[]."},
    CFG_KEY("switching", "–", "together", "together, sequential, bipolar_pairs, impedance",
            "all electrodes at once (cluster), one after the other for switch_interval_s each, "
            "pairs in turn (electrode k active against k + 1 as return: switching bipolar, "
            "docs/RFA.md \"Bipolar\"), or one after the other, the next taking over when the "
            "conducting one's impedance rises switch_delta_Ohm above its baseline (docs/RFA.md "
            "\"Impedance-triggered switching\")"),
    CFG_KEY("switch_interval_s", "s", "required (sequential, bipolar_pairs); optional (impedance)",
            "(0, 1e5]",
            "time each electrode or pair conducts in turn; with switching: impedance the longest "
            "turn (absent: an electrode conducts until its impedance rises)"),
    CFG_KEY("switch_delta_Ohm", "Ω", "30 (impedance switching)", "(0, 1e4]",
            "switching: impedance: the next electrode takes over when the conducting one's "
            "impedance exceeds its baseline (its lowest so far) by this (Francica et al. 2019, "
            "Br J Radiol 92:20180625)"),
    CFG_KEY("ground_faces", "–", "all six", "list of faces; empty only for a bipolar source",
            "faces through which the current leaves for the ground (see `ground`); the others "
            "are insulated"),
    CFG_KEY("ground", "–", "`far` (`faces` for a bipolar source)", "`far`, `faces`",
            "far: the dispersive pad is far away, and the current leaves the grounded faces "
            "into an exterior of the face voxel's conductivity (first-order asymptotic "
            "condition: the impedance includes the tissue beyond the grid; docs/RFA.md \"Far "
            "ground\"); faces: the grounded faces are the pad, held at 0 V half a voxel "
            "outside"),
    CFG_KEY("sigma_temp_coeff_per_K", "1/K", "0.015", "[0, 0.05]",
            "linear rise of σ below the drop"),
    {"sigma_drop_start_C", "°C", "99, 100", "[50, 200], end > start",
     "temperature range of the vaporisation drop",
     .label = "`sigma_drop_start_C`, `sigma_drop_end_C`"},
    {"sigma_drop_end_C", "°C", "100", "[50, 200], > start", "end of the vaporisation drop",
     .label = ""},
    CFG_KEY("sigma_drop_factor", "–", "1e-4", "(0, 1]", "σ(end) / σ(start)"),
    CFG_KEY("sigma_floor_S_per_m", "S/m", "1e-5", "(0, 1]",
            "lower bound of σ (air, desiccated tissue)"),
    CFG_KEY("resolve_tolerance", "–", "0.01", "(0, 1]", "re-solve criterion (below)"),
    CFG_KEY("solver_tolerance", "–", "1e-4", "[1e-14, 1e-2]", "CG relative residual"),
    CFG_KEY("max_iterations", "–", "2000", "1..100000", "CG iteration cap per solve"),
    CFG_KEY("potential_preconditioner", "–", "`multigrid`", "`multigrid`, `spectral`",
            "preconditioner of the potential's CG: multigrid V-cycle or FFT (\"Solver\")"),
    CFG_KEY("sensor_radius_mm", "mm", "1.5", "(0, 20]",
            "thermocouple region around each sensor point"),
    CFG_KEY("electrical_margin_mm", "mm", "whole grid", "[5, 1000]",
            "potential solved in the box spanning the electrodes ± margin (clipped to the grid); "
            "`ground_faces` are then that box's faces; no Joule heat outside it"),
};

static const cfg_keytable rfa_keys = CFG_KEYTABLE(rfa_decl);

static void rfa_free_params(void *p)
{
    free(p);
}

static abl_status parse_generator(cfg_node *gen, rfa_params *m, abl_error *err)
{
    static const cfg_range volt_r = {0, 1000, true, false, "V"};
    static const cfg_range power_r = {0, 1000, true, false, "W"};
    static const cfg_range cur_r = {0, 10, false, false, "A"};
    static const cfg_range temp_r = {40, 200, false, false, "C"};
    static const cfg_range gain_r = {0, 1e4, false, false, NULL};
    static const cfg_range ohm_r = {0, 1e4, true, false, "Ohm"};
    static const cfg_range time_r = {0, 3600, true, false, "s"};
    static const cfg_range base_r = {0, 600, false, false, "s"};
    static const cfg_range ctrl_r = {0, 60, true, false, "s"};
    abl_status st;
    if ((st = cfg_expect(gen, CFG_MAP, true, "a mapping (mode: ...)", err)) ||
        (st = cfg_get_enum(gen, "mode", true, 0, mode_names, 4, &m->mode, err)) ||
        (st = cfg_check_decl(gen, &gen_keys, m->mode, err)))
        return st;
    /* 0 (absent) = no current limit; 200 V: ASSUMED voltage ceiling of clinical RF generators
     * (200 W into 50-200 Ohm needs 100-200 V) */
    if ((st = cfg_get_double(gen, "max_current_A", false, 0.0, &cur_r, &m->max_current_A, err)) ||
        (st = cfg_get_double(gen, "max_voltage_V", false, 200.0, &volt_r, &m->max_voltage_V,
                             err)))
        return st;
    switch (m->mode) {
    case GEN_VOLTAGE:
        st = cfg_get_double(gen, "voltage_V", true, 0, &volt_r, &m->voltage_V, err);
        m->max_voltage_V = m->voltage_V;
        break;
    case GEN_POWER:
        st = cfg_get_double(gen, "power_W", true, 0, &power_r, &m->power_W, err);
        break;
    case GEN_TEMPERATURE:
        /* PI gains: CALIBRATED on the 1 mm test problems of tests/unit/test_rfa.c and the
         * scenarios (settles a 90-105 C setpoint without sustained oscillation); docs/RFA.md */
        if ((st = cfg_get_double(gen, "setpoint_C", true, 0, &temp_r, &m->setpoint_C, err)) ||
            (st = cfg_get_double(gen, "max_power_W", false, 200.0, &power_r, &m->max_power_W,
                                 err)) ||
            (st = cfg_get_double(gen, "kp_W_per_K", false, 0.5, &gain_r, &m->kp_W_K, err)) ||
            (st = cfg_get_double(gen, "ki_W_per_K_s", false, 0.05, &gain_r, &m->ki_W_Ks, err)))
            return st;
        break;
    case GEN_IMPEDANCE:
        /* Cool-tip-like pulsing: power cut for 15 s when the impedance rises 10 Ohm above the
         * baseline of the first 10 s (ASSUMED reading of the impedance-controlled algorithm,
         * Goldberg et al. 1999 JVIR 10:907; docs/RFA.md) */
        if ((st = cfg_get_double(gen, "power_W", true, 0, &power_r, &m->power_W, err)) ||
            (st = cfg_get_double(gen, "delta_Ohm", false, 10.0, &ohm_r, &m->delta_Ohm, err)) ||
            (st = cfg_get_double(gen, "pause_s", false, 15.0, &time_r, &m->pause_s, err)) ||
            (st = cfg_get_double(gen, "baseline_s", false, 10.0, &base_r, &m->baseline_s, err)) ||
            (st = cfg_get_double(gen, "control_interval_s", false, 0.5, &ctrl_r,
                                 &m->control_interval_s, err)))
            return st;
        break;
    }
    return st;
}

static abl_status parse_electrode(cfg_node *e, rfa_electrode *el, abl_error *err)
{
    static const cfg_range len_r = {0, 300, true, false, "mm"};
    static const cfg_range dia_r = {0, 20, true, false, "mm"};
    /* not below 0 C: a freezing electrode would need the phase change, which `freezing: auto`
     * does not switch on for a coolant (as an antenna's, mwa.c) */
    static const cfg_range cool_r = {0, 60, false, false, "C"};
    static const cfg_range dep_r = {0, 100, true, false, "mm"};
    static const cfg_range arc_r = {10, 180, false, false, "deg"};
    abl_status st;
    double v;
    if ((st = cfg_expect(e, CFG_MAP, true, "electrode", err)) ||
        (st = cfg_get_enum(e, "type", false, EL_STRAIGHT, el_names, 2, &el->type, err)) ||
        (st = cfg_check_decl(e, &el_keys, el->type, err)))
        return st;
    static const char *const polarity_names[] = {"active", "return"};
    if ((st = cfg_get_enum(e, "polarity", false, 0, polarity_names, 2, &el->polarity, err)))
        return st;
    abl_needle_axis ax;
    if ((st = needle_axis_parse(e, "electrode", &ax, err))) return st;
    for (int a = 0; a < 3; a++) {
        el->tip_m[a] = ax.tip_m[a];
        el->dir[a] = ax.dir[a];
    }
    if (el->type == EL_STRAIGHT) {
        /* 1.5 mm: 17 gauge, the Cool-tip / most single needle electrodes */
        if ((st = cfg_get_double(e, "active_length_mm", true, 0, &len_r, &v, err))) return st;
        el->length_m = v * 1e-3;
        if ((st = needle_diameter_parse(e, &dia_r, 1.5, &v, err))) return st;
        el->radius_m = 0.5e-3 * v;
        el->cooled = cfg_get(e, "coolant_temperature_C") != NULL;
        if ((st = cfg_get_double(e, "coolant_temperature_C", false, 20.0, &cool_r, &el->coolant_C,
                                 err)))
            return st;
        static const cfg_range rate_r = {0, 10, true, false, "mL/min"};
        static const cfg_range fsig_r = {0, 50, true, false, "S/m"};
        static const cfg_range start_r = {-3600, 3600, false, false, "s"};
        static const cfg_range frac_r = {0, 1, true, false, NULL};
        el->wet = cfg_get(e, "infusion_rate_mL_per_min") != NULL;
        const char *wet_keys[] = {"infusion_conductivity_S_per_m", "infusion_start_s",
                                  "infusion_volume_fraction"};
        for (int k = 0; k < 3 && !el->wet; k++) {
            const cfg_node *n = cfg_get(e, wet_keys[k]);
            if (!n) continue;
            char where[256], path[256];
            return abl_fail(err, ABL_EINVAL,
                            "%s: '%s' needs infusion_rate_mL_per_min beside it (it describes a "
                            "wet electrode's infusion); add the rate or remove the key",
                            cfg_where(n, where, sizeof where), cfg_path(n, path, sizeof path));
        }
        if ((st = cfg_get_double(e, "infusion_rate_mL_per_min", false, 0.0, &rate_r, &v, err)))
            return st;
        el->infusion_m3_s = v * 1e-6 / 60.0;
        if ((st = cfg_get_double(e, "infusion_conductivity_S_per_m", false, 2.0, &fsig_r,
                                 &el->infusion_sigma_S_m, err)) ||
            (st = cfg_get_double(e, "infusion_start_s", false, 0.0, &start_r,
                                 &el->infusion_start_s, err)) ||
            (st = cfg_get_double(e, "infusion_volume_fraction", false, 0.2, &frac_r,
                                 &el->infusion_fraction, err)))
            return st;
    } else {
        long nt;
        /* defaults: LeVeen-like umbrella of 10 tines everting over 180 degrees */
        if ((st = cfg_get_long(e, "n_tines", false, 10, 2, 24, &nt, err)) ||
            (st = cfg_get_double(e, "deployed_diameter_mm", true, 0, &dep_r, &v, err)))
            return st;
        el->n_tines = (int)nt;
        el->deployed_diameter_m = v * 1e-3;
        if ((st = cfg_get_double(e, "tine_arc_deg", false, 180.0, &arc_r, &el->tine_arc_deg,
                                 err)) ||
            (st = cfg_get_double(e, "tine_diameter_mm", false, 0.5, &dia_r, &v, err)))
            return st;
        el->tine_radius_m = 0.5e-3 * v;
    }
    return ABL_OK;
}

static abl_status rfa_parse(cfg_node *e, const abl_scenario *sc, void **params, abl_error *err)
{
    (void)sc;
    static const cfg_range coeff_r = {0, 0.05, false, false, "1/K"};
    static const cfg_range drop_r = {50, 200, false, false, "C"};
    static const cfg_range factor_r = {0, 1, true, false, NULL};
    static const cfg_range floor_r = {0, 1, true, false, "S/m"};
    static const cfg_range rtol_r = {0, 1, true, false, NULL};
    static const cfg_range stol_r = {1e-14, 1e-2, false, false, NULL};
    static const cfg_range interval_r = {0, 1e5, true, false, "s"};
    static const cfg_range swdelta_r = {0, 1e4, true, false, "Ohm"};
    static const cfg_range sensor_r = {0, 20, true, false, "mm"};
    static const cfg_range margin_r = {5, 1000, false, false, "mm"};
    char where[600], path[300];
    abl_status st;
    *params = NULL;
    rfa_params *m = calloc(1, sizeof *m);
    if (!m) return abl_fail(err, ABL_ENOMEM, "out of memory");

    if (!cfg_get(e, "generator")) {
        st = abl_fail(err, ABL_EINVAL,
                      "%s: '%s' needs 'generator': a mapping with 'mode' (constant_voltage, "
                      "constant_power, temperature or impedance) and its settings",
                      cfg_where(e, where, sizeof where), cfg_path(e, path, sizeof path));
        goto fail;
    }
    if ((st = parse_generator(cfg_get(e, "generator"), m, err))) goto fail;

    cfg_node *els = cfg_get(e, "electrodes");
    if (!els || els->kind != CFG_SEQ || els->n == 0 || els->n > RFA_MAX_ELECTRODES) {
        cfg_node *n = els ? els : e;
        st = abl_fail(err, ABL_EINVAL,
                      "%s: '%s' needs 'electrodes': a list of 1 to %d electrodes "
                      "({type: straight|expandable, tip_mm, direction, ...})",
                      cfg_where(n, where, sizeof where), cfg_path(n, path, sizeof path),
                      RFA_MAX_ELECTRODES);
        goto fail;
    }
    m->nel = (int)els->n;
    for (int i = 0; i < m->nel; i++)
        if ((st = parse_electrode(els->items[i], &m->el[i], err))) goto fail;

    if ((st = cfg_get_enum(e, "switching", false, 0, switching_names, 4, &m->switching, err)))
        goto fail;
    {
        /* the timed switchings need their interval; impedance switching may have one as its
         * longest turn (none is published: absent, an electrode conducts until its impedance
         * rises) */
        const bool timed = m->switching == SW_SEQUENTIAL || m->switching == SW_PAIRS;
        cfg_node *n = cfg_get(e, "switch_interval_s");
        if (timed && !n) {
            st = abl_fail(err, ABL_EINVAL,
                          "%s: '%s': switching: %s needs 'switch_interval_s' (s each %s conducts "
                          "before the next takes over)",
                          cfg_where(e, where, sizeof where), cfg_path(e, path, sizeof path),
                          switching_names[m->switching],
                          m->switching == SW_PAIRS ? "pair" : "electrode");
            goto fail;
        }
        if (!m->switching && n) {
            st = abl_fail(err, ABL_EINVAL,
                          "%s: '%s': switch_interval_s is only allowed with switching: "
                          "sequential, bipolar_pairs or impedance",
                          cfg_where(n, where, sizeof where), cfg_path(n, path, sizeof path));
            goto fail;
        }
        if ((st = cfg_get_double(e, "switch_interval_s", false, 0, &interval_r,
                                 &m->switch_interval_s, err)))
            goto fail;
        cfg_node *d = cfg_get(e, "switch_delta_Ohm");
        if (d && m->switching != SW_IMPEDANCE) {
            st = abl_fail(err, ABL_EINVAL,
                          "%s: '%s': switch_delta_Ohm is only allowed with switching: impedance",
                          cfg_where(d, where, sizeof where), cfg_path(d, path, sizeof path));
            goto fail;
        }
        if ((st = cfg_get_double(e, "switch_delta_Ohm", false, 30.0, &swdelta_r,
                                 &m->switch_delta_Ohm, err)))
            goto fail;
        /* the switch is the generator's answer to the impedance rise, so the generator itself
         * drives a set power or voltage: its own impedance pause (a second rule on one
         * baseline shared by all electrodes) and a temperature loop on a sensor that changes
         * with the electrode would be two controllers on one rise; neither is published */
        if (m->switching == SW_IMPEDANCE &&
            (m->nel < 2 || (m->mode != GEN_POWER && m->mode != GEN_VOLTAGE))) {
            cfg_node *w = m->nel < 2 ? els : cfg_get(cfg_get(e, "generator"), "mode");
            st = abl_fail(err, ABL_EINVAL,
                          "%s: '%s': switching: impedance needs at least 2 electrodes and "
                          "generator mode constant_power or constant_voltage (the switch "
                          "replaces the impedance pause); it has %d electrode%s and mode %s",
                          cfg_where(w ? w : e, where, sizeof where),
                          cfg_path(w ? w : e, path, sizeof path), m->nel, m->nel == 1 ? "" : "s",
                          mode_names[m->mode]);
            goto fail;
        }
        /* the switch judges the impedance as the impedance mode does: at least as often */
        if (m->switching == SW_IMPEDANCE) m->control_interval_s = 0.5;
    }

    /* bipolar: at least one active and one return electrode, all conducting together; or
     * switching bipolar, whose pairs set the polarities (none may be written) */
    {
        int nret = 0;
        for (int i = 0; i < m->nel; i++) nret += m->el[i].polarity;
        if (m->switching == SW_PAIRS) {
            if (nret > 0 || m->nel < 3) {
                st = abl_fail(err, ABL_EINVAL,
                              "%s: '%s': switching: bipolar_pairs needs at least 3 electrodes "
                              "and no 'polarity' (each pair's active and return electrode "
                              "follow from the order); it has %d electrodes, %d with polarity: "
                              "return",
                              cfg_where(els, where, sizeof where),
                              cfg_path(els, path, sizeof path), m->nel, nret);
                goto fail;
            }
            nret = 1; /* each pair has its return */
        }
        m->bipolar = nret > 0;
        if (m->bipolar && m->switching != SW_PAIRS && (nret == m->nel || m->switching)) {
            st = abl_fail(err, ABL_EINVAL,
                          "%s: '%s': a bipolar source (an electrode with polarity: return) "
                          "needs at least one active and one return electrode conducting "
                          "together (switching: together); it has %d active, %d return%s%s",
                          cfg_where(els, where, sizeof where), cfg_path(els, path, sizeof path),
                          m->nel - nret, nret, m->switching ? ", switching: " : "",
                          m->switching ? switching_names[m->switching] : "");
            goto fail;
        }
    }

    /* ground: default all six faces (a far ground around the treated region); a bipolar
     * source may have none (an empty list: every face insulated) */
    cfg_node *gf = cfg_get(e, "ground_faces");
    if (!gf) {
        for (int f = 0; f < 6; f++) m->grounded[f] = true;
    } else {
        if (gf->kind != CFG_SEQ || (gf->n == 0 && !m->bipolar)) {
            st = abl_fail(err, ABL_EINVAL,
                          "%s: '%s' must be a %slist of faces (x_min, x_max, y_min, "
                          "y_max, z_min, z_max); the others are insulated%s",
                          cfg_where(gf, where, sizeof where), cfg_path(gf, path, sizeof path),
                          m->bipolar ? "" : "non-empty ",
                          m->bipolar ? "" : " (only a bipolar source may have none)");
            goto fail;
        }
        for (size_t i = 0; i < gf->n; i++) {
            cfg_node *n = gf->items[i];
            int f = -1;
            for (int q = 0; q < 6 && n->kind == CFG_SCALAR; q++)
                if (!strcmp(n->value, face_names[q])) f = q;
            if (f < 0) {
                st = abl_fail(err, ABL_EINVAL,
                              "%s: '%s' = %s is not a face; use x_min, x_max, y_min, y_max, "
                              "z_min or z_max",
                              cfg_where(n, where, sizeof where), cfg_path(n, path, sizeof path),
                              n->kind == CFG_SCALAR ? n->value : "(a list or mapping)");
                goto fail;
            }
            m->grounded[f] = true;
        }
    }

    /* ground: far (the pad far away, an exterior beyond the grounded faces) or faces (the pad
     * on them). A bipolar source's current returns through its own return electrodes: the
     * monopole exterior of 'far' does not describe it, so its faces (if any) stay at 0 V. */
    {
        static const char *const grounds[] = {"far", "faces"};
        int gm;
        if ((st = cfg_get_enum(e, "ground", false, m->bipolar ? 1 : 0, grounds, 2, &gm, err)))
            goto fail;
        if (gm == 0 && m->bipolar) {
            cfg_node *n = cfg_get(e, "ground");
            st = abl_fail(err, ABL_EINVAL,
                          "%s: '%s' = far: a bipolar source returns its current through its "
                          "return electrodes, not through a far pad; use ground: faces (its "
                          "ground_faces, if any, held at 0 V) or leave the key out",
                          cfg_where(n, where, sizeof where), cfg_path(n, path, sizeof path));
            goto fail;
        }
        m->far_ground = gm == 0;
    }

    /* sigma(T): +1.5 %/K to 99 C, down by 1e-4 over 99-100 C (docs/RFA.md for the sources) */
    rfa_sigma_model *sg = &m->sigma;
    if ((st = cfg_get_double(e, "sigma_temp_coeff_per_K", false, 0.015, &coeff_r,
                             &sg->coeff_per_K, err)) ||
        (st = cfg_get_double(e, "sigma_drop_start_C", false, 99.0, &drop_r, &sg->drop_start_C,
                             err)) ||
        (st = cfg_get_double(e, "sigma_drop_end_C", false, 100.0, &drop_r, &sg->drop_end_C,
                             err)) ||
        (st = cfg_get_double(e, "sigma_drop_factor", false, 1e-4, &factor_r, &sg->drop_factor,
                             err)) ||
        (st = cfg_get_double(e, "sigma_floor_S_per_m", false, 1e-5, &floor_r, &sg->floor_S_m,
                             err)))
        goto fail;
    if (!(sg->drop_end_C > sg->drop_start_C)) {
        cfg_node *n = cfg_get(e, "sigma_drop_end_C");
        if (!n) n = cfg_get(e, "sigma_drop_start_C");
        st = abl_fail(err, ABL_EINVAL,
                      "%s: '%s' = %g: the end of the conductivity drop must be above "
                      "sigma_drop_start_C = %g C",
                      cfg_where(n, where, sizeof where), cfg_path(n, path, sizeof path),
                      sg->drop_end_C, sg->drop_start_C);
        goto fail;
    }
    long mi;
    double sr;
    int pre;
    /* multigrid: one V-cycle per CG iteration instead of an FFT pair (multigrid.h) */
    static const char *const preconds[] = {"spectral", "multigrid"};
    if ((st = cfg_get_double(e, "resolve_tolerance", false, 0.01, &rtol_r, &m->resolve_tol,
                             err)) ||
        /* 1e-4: the power a field error e changes is second order (u^T K u is stationary at
         * the solution), the current I1 first order: 1e-4 of the impedance, 0.01 Ohm, against
         * the 1 % the re-solve criterion allows (docs/RFA.md, "Re-solve criterion") */
        (st = cfg_get_double(e, "solver_tolerance", false, 1e-4, &stol_r, &m->solver_tol, err)) ||
        (st = cfg_get_long(e, "max_iterations", false, 2000, 1, 100000, &mi, err)) ||
        (st = cfg_get_enum(e, "potential_preconditioner", false, 1, preconds, 2, &pre, err)) ||
        (st = cfg_get_double(e, "sensor_radius_mm", false, 1.5, &sensor_r, &sr, err)) ||
        (st = cfg_get_double(e, "electrical_margin_mm", false, -1.0, &margin_r, &m->margin_m,
                             err)))
        goto fail;
    if (m->margin_m > 0) m->margin_m *= 1e-3;
    m->max_iter = (int)mi;
    /* multigrid by default: 1.5x faster potential solves than the FFT preconditioner on
     * rfa_liver_cooled (4.7 against 6.9 CG iterations per warm solve, each cheaper), and much
     * better at the 1e4 conductivity contrasts of desiccated tissue (docs/RFA.md "Solver") */
    m->preconditioner = pre == 0 ? ABL_PRECOND_SPECTRAL : ABL_PRECOND_MULTIGRID;
    {
        bool any = false;
        for (int f = 0; f < 6; f++) any = any || m->grounded[f];
        if (!any && m->preconditioner == ABL_PRECOND_SPECTRAL) {
            st = abl_fail(err, ABL_EINVAL,
                          "%s: '%s': potential_preconditioner: spectral needs a grounded face "
                          "(its Laplacian is singular without one); with ground_faces: [] use "
                          "multigrid",
                          cfg_where(e, where, sizeof where), cfg_path(e, path, sizeof path));
            goto fail;
        }
    }
    m->sensor_radius_m = sr * 1e-3;
    *params = m;
    return ABL_OK;
fail:
    rfa_free_params(m);
    return st;
}

/* ---- electrode geometry ------------------------------------------------------------------ */

/* Unit vectors u, w completing the unit d to a right-handed frame (d x u = w). */
static void frame(const double d[3], double u[3], double w[3])
{
    int a = 0; /* the axis least aligned with d */
    for (int q = 1; q < 3; q++)
        if (fabs(d[q]) < fabs(d[a])) a = q;
    double e[3] = {0, 0, 0};
    e[a] = 1.0;
    /* u = normalise(e - (e.d) d) */
    for (int q = 0; q < 3; q++) u[q] = e[q] - d[a] * d[q];
    double nu = sqrt(u[0] * u[0] + u[1] * u[1] + u[2] * u[2]);
    for (int q = 0; q < 3; q++) u[q] /= nu;
    w[0] = d[1] * u[2] - d[2] * u[1];
    w[1] = d[2] * u[0] - d[0] * u[2];
    w[2] = d[0] * u[1] - d[1] * u[0];
}

/* Index along axis a of the voxel containing coordinate x (may be outside 0..n-1). */
static long voxel_of(const abl_grid *g, int a, double x)
{
    return (long)floor((x - g->origin_m[a]) / g->h_m[a] + 0.5);
}

static int dim(const abl_grid *g, int a)
{
    return a == 0 ? g->nx : a == 1 ? g->ny : g->nz;
}


/* Point at arc angle th of tine t of an expandable electrode: a circular arc of radius R in
 * the plane of the shaft and the tine's radial direction, leaving the trocar tip along the
 * shaft (away from the handle) and bending outwards, p = tip + R (1 - cos th) e_t - R sin th d. */
static void tine_point(const rfa_electrode *el, int t, double th, double p[3])
{
    double u[3], w[3];
    frame(el->dir, u, w);
    double phi = 2.0 * PI * t / el->n_tines;
    double arc = el->tine_arc_deg * PI / 180.0;
    /* the distance from the axis, R (1 - cos th), grows along the whole arc (th <= 180 deg):
     * the array's lateral span is 2 R (1 - cos arc) = the deployed diameter */
    double R = 0.5 * el->deployed_diameter_m / (1.0 - cos(arc));
    for (int a = 0; a < 3; a++) {
        double e = cos(phi) * u[a] + sin(phi) * w[a];
        p[a] = el->tip_m[a] + R * (1.0 - cos(th)) * e - R * sin(th) * el->dir[a];
    }
}

/* Sensor points: where the generator's thermocouples sit (needle tip; tine ends). */
static int sensor_points(const rfa_electrode *el, double pts[][3])
{
    if (el->type == EL_STRAIGHT) {
        memcpy(pts[0], el->tip_m, sizeof pts[0]);
        return 1;
    }
    for (int t = 0; t < el->n_tines; t++)
        tine_point(el, t, el->tine_arc_deg * PI / 180.0, pts[t]);
    return el->n_tines;
}

/* ---- source ------------------------------------------------------------------------------ */

/* A tissue voxel beside a cooled electrode's held set, coupled thermally to the true surface at
 * the coolant temperature (applicator.h needle_coupling): the source adds k dG (T_cool - T_b). */
typedef struct {
    size_t b;        /* simulation-grid index */
    double dG_m2;
    double T_cool_C;
} rfa_tcouple;

typedef struct {
    size_t n;
    size_t *idx;     /* held voxels (sorted) */
    size_t nsens;
    size_t *sens;    /* sensor voxels: electrode voxels near a sensor point + their neighbours */
} rfa_el_vox;

typedef struct {
    const rfa_params *p; /* borrowed from the scenario */
    const abl_sim *sim;
    /* the electrical box: the sub-grid the potential is solved on, voxel (i,j,k) of it is
     * voxel (i,j,k) + off of the simulation grid; fields below marked [box] live on it */
    abl_grid eg;
    int off[3];
    double on_s, off_s, V_m3;
    double s37[ABL_MAX_MATERIALS];
    rfa_el_vox ev[RFA_MAX_ELECTRODES];
    abl_chord *wire[RFA_MAX_ELECTRODES]; /* each electrode as the kit's wire (electrode_wire),
                                          * built once: rasterised and coupled from it */
    int nwire[RFA_MAX_ELECTRODES];
    int nconf;             /* 1 (together) or nel (sequential, bipolar pairs, impedance) */
    uint8_t *held[RFA_MAX_ELECTRODES]; /* per configuration: held mask [box] */
    abl_potential_couple *pcouple[RFA_MAX_ELECTRODES]; /* per configuration: the sub-voxel
                                                        * coupling of the electrodes [box] */
    size_t npcouple[RFA_MAX_ELECTRODES];
    rfa_tcouple *tcouple;  /* cooled straight electrodes' thermal coupling */
    size_t ntcouple;
    double *V[RFA_MAX_ELECTRODES];     /* per configuration: last unit-voltage solution */
    double *Vp[RFA_MAX_ELECTRODES];    /* and the one before it (extrapolated initial guess) */
    double ts[RFA_MAX_ELECTRODES], tp[RFA_MAX_ELECTRODES]; /* their times (tp < 0: none) */
    abl_potential *pot;
    double *sigma, *sigma_s, *q1, *work; /* current sigma, sigma of the last solve, unit heat
                                          * [box] */
    size_t nheat;
    size_t *heat_idx;      /* simulation-grid indices of the heated voxels */
    size_t *heat_box;      /* the same voxels in the box */
    double *heat_q;
    double *tcouple_Gv;    /* [ntcouple] this step's coupling conductance (source.h heat_G) */
    size_t npin;
    size_t *pin_idx;
    double *pin_T;
    int conf;              /* configuration of the last solve (-1: none) */
    double P1, I1;         /* unit-voltage power [W/V^2] and current [A/V] of the last solve */
    double P1_far;         /* far ground: unit-voltage power dissipated beyond the grid (the
                            * generator delivers P1 + P1_far; the grid receives P1) */
    double far_c[RFA_MAX_ELECTRODES][3]; /* far ground: each configuration's current centre [m] */
    long nsolves;
    int last_iters;
    /* generator state */
    bool started;
    double t_last, integ_W, baseline_Ohm, pause_end_s;
    bool paused, resumed; /* resumed: this step ended a pause (not state between steps) */
    long npauses;
    /* impedance switching: the conducting electrode, each electrode's baseline (the lowest
     * impedance it showed while conducting; INFINITY before its first turn) */
    int sw_conf;
    double sw_turn_s; /* when the conducting electrode's turn began */
    double sw_base_Ohm[RFA_MAX_ELECTRODES];
    /* this step's hand-over, for the series: 0 none, 1 on the impedance rise, 2 at the end of
     * the longest turn; the outgoing electrode's judged impedance and baseline (rise only) */
    int sw_why;
    double sw_Z_Ohm, sw_base_at_Ohm;
    abl_series_buf series; /* the generator log (cols) */
    const char *cols[NCOL_MAX];
    /* wet electrodes: per wet electrode, the distance of each box voxel's centre from its
     * active segment [box] (wet_region; NULL for a dry electrode) */
    float *wet_d_m[RFA_MAX_ELECTRODES];
    bool any_wet;
} rfa_state;

/* The generator log: NCOL columns; impedance switching adds three (the hand-over record), a
 * far ground then grid_power_W (the part of power_W dissipated in the grid); last step_s, the
 * length of the step the row's power applied over (the delivered energy is the sum of power x
 * step_s, output.c: exact, where the trapezoid over the rows' start times left out the last
 * step and averaged across roll-off jumps; a physics test, session 27) */
static const char *const series_cols[NCOL] = {
    "time_s",           "voltage_V",        "current_A",        "power_W",
    "impedance_Ohm",    "tip_temperature_C", "active_electrode", "paused",
    "potential_solves", "cg_iterations"};
/* switching: impedance only: 0 none, 1 impedance rise, 2 longest turn; the outgoing
 * electrode's judged impedance and its baseline at a rise (0 otherwise) */
static const char *const handover_cols[3] = {"handover", "handover_impedance_Ohm",
                                             "handover_baseline_Ohm"};

static void rfa_destroy(abl_source *s)
{
    rfa_state *m = s->state;
    if (m) {
        for (int e = 0; e < RFA_MAX_ELECTRODES; e++) {
            free(m->ev[e].idx);
            free(m->ev[e].sens);
            grid_free_field(m->held[e]);
            grid_free_field(m->V[e]);
            grid_free_field(m->Vp[e]);
            free(m->pcouple[e]);
            free(m->wire[e]);
        }
        free(m->tcouple);
        potential_destroy(m->pot);
        grid_free_field(m->sigma);
        grid_free_field(m->sigma_s);
        grid_free_field(m->q1);
        free(m->work);
        free(m->heat_idx);
        free(m->heat_box);
        free(m->heat_q);
        free(m->tcouple_Gv);
        for (int e = 0; e < RFA_MAX_ELECTRODES; e++) free(m->wet_d_m[e]);
        free(m->pin_idx);
        free(m->pin_T);
        series_buf_free(&m->series);
        free(m);
    }
    free(s);
}

size_t rfa_electrode_voxels(const abl_source *s, int e, const size_t **idx)
{
    *idx = NULL;
    if (!s || !s->ops || strcmp(s->ops->type, "rfa") != 0) return 0;
    const rfa_state *m = s->state;
    if (e < 0 || e >= m->p->nel) return 0;
    *idx = m->ev[e].idx;
    return m->ev[e].n;
}

/* Simulation-grid index of box voxel (i,j,k). */
static inline size_t full_index(const rfa_state *m, int i, int j, int k)
{
    return ABL_IDX(&m->sim->grid, i + m->off[0], j + m->off[1], k + m->off[2]);
}

/* rfa.h: bisection (the volume grows monotonically in r; 80 halvings reach rounding). At time
 * t the infused volume is V = rate (t - on_s - start) (wet_radius_m; 0: nothing yet). */
double rfa_wet_radius_m(double V_m3, double f, double a, double L)
{
    if (!(V_m3 > 0.0)) return a;
    const double target = V_m3 / f;
    const double pi = 3.14159265358979323846;
    double lo = a, hi = a + cbrt(target) + sqrt(target / (pi * L)) + 1e-3;
    for (int it = 0; it < 80; it++) {
        const double r = 0.5 * (lo + hi);
        const double vol = pi * (r * r - a * a) * L + 4.0 / 3.0 * pi * (r * r * r - a * a * a);
        if (vol < target) lo = r;
        else hi = r;
    }
    return 0.5 * (lo + hi);
}

/* 0 (no capsule at all, not even the electrode's radius) before the infusion begins. */
static double wet_radius_m(const rfa_electrode *el, double on_s, double t_s)
{
    const double V = el->infusion_m3_s * (t_s - on_s - el->infusion_start_s);
    return V > 0.0 ? rfa_wet_radius_m(V, el->infusion_fraction, el->radius_m, el->length_m)
                   : 0.0;
}

/* sigma of every box voxel at the current temperatures. Inside a wet electrode's infiltrated
 * region (wet_radius_m) the tissue and the fluid conduct side by side, each with its share of
 * the volume (parallel mixture, the fluid's channels continuous to the electrode: ASSUMED),
 * both with the tissue model's temperature law (boiling included):
 * sigma = (1 - f) sigma_t(T) + f sigma_fluid(T) (docs/RFA.md "Wet electrodes"). */
static void update_sigma(rfa_state *m, const abl_field_view *v)
{
    const abl_grid *eg = &m->eg;
    const rfa_params *p = m->p;
    const rfa_sigma_model *sm = &p->sigma;
    /* the wet electrodes whose infusion has begun, with their radii now */
    int wet[RFA_MAX_ELECTRODES], nwet = 0;
    double r_wet[RFA_MAX_ELECTRODES];
    for (int e = 0; m->any_wet && e < p->nel; e++) {
        if (!p->el[e].wet) continue;
        const double r = wet_radius_m(&p->el[e], m->on_s, v->t_s);
        if (r > 0.0) wet[nwet] = e, r_wet[nwet++] = r;
    }
#pragma omp parallel for collapse(2) schedule(static)
    for (int k = 0; k < eg->nz; k++)
        for (int j = 0; j < eg->ny; j++)
            for (int i = 0; i < eg->nx; i++) {
                const size_t c = full_index(m, i, j, k), b = ABL_IDX(eg, i, j, k);
                const double T = v->T_C[c];
                double sg = rfa_sigma_at(sm, m->s37[v->material[c]], T);
                /* in the capsule of the first wet electrode that reaches the voxel (where two
                 * capsules overlap, the earlier electrode's fluid: ASSUMED not to mix) */
                for (int w = 0; w < nwet; w++) {
                    if (!(m->wet_d_m[wet[w]][b] <= r_wet[w])) continue;
                    const rfa_electrode *el = &p->el[wet[w]];
                    sg = (1.0 - el->infusion_fraction) * sg +
                         el->infusion_fraction * rfa_sigma_at(sm, el->infusion_sigma_S_m, T);
                    break;
                }
                m->sigma[b] = sg;
            }
}

/* Distance [m] from x to the segment from a along d (unit) of length L. */
static double segment_distance_m(const double x[3], const double a[3], const double d[3],
                                 double L)
{
    double w[3], s = 0.0;
    for (int q = 0; q < 3; q++) {
        w[q] = x[q] - a[q];
        s += w[q] * d[q];
    }
    s = s < 0.0 ? 0.0 : (s > L ? L : s);
    double r2 = 0.0;
    for (int q = 0; q < 3; q++) {
        const double u = w[q] - s * d[q];
        r2 += u * u;
    }
    return sqrt(r2);
}

/* Each wet electrode's distance map over the box (none for a dry electrode). */
static bool wet_region(rfa_state *m)
{
    const rfa_params *p = m->p;
    const abl_grid *eg = &m->eg;
    for (int e = 0; e < p->nel; e++) {
        if (!p->el[e].wet) continue;
        float *d = m->wet_d_m[e] = malloc(eg->n * sizeof *d);
        if (!d) return false;
        m->any_wet = true;
        const rfa_electrode *el = &p->el[e];
#pragma omp parallel for collapse(2) schedule(static)
        for (int k = 0; k < eg->nz; k++)
            for (int j = 0; j < eg->ny; j++)
                for (int i = 0; i < eg->nx; i++) {
                    double x[3];
                    grid_voxel_centre_m(eg, i, j, k, x);
                    d[ABL_IDX(eg, i, j, k)] =
                        (float)segment_distance_m(x, el->tip_m, el->dir, el->length_m);
                }
    }
    return true;
}

/* Heating-weighted relative change of sigma since the last solve (see the file comment). */
static double sigma_change(rfa_state *m, const abl_grid *g)
{
    const double *q1 = m->q1, *s = m->sigma, *s0 = m->sigma_s;
#pragma omp parallel for schedule(static)
    for (int k = 0; k < g->nz; k++) {
        double a = 0.0, b = 0.0;
        for (size_t c = (size_t)k * g->sz; c < (size_t)(k + 1) * g->sz; c++) {
            a += q1[c] * fabs(s[c] - s0[c]) / s0[c];
            b += q1[c];
        }
        m->work[2 * k] = a;
        m->work[2 * k + 1] = b;
    }
    double a = 0.0, b = 0.0;
    for (int k = 0; k < g->nz; k++) {
        a += m->work[2 * k];
        b += m->work[2 * k + 1];
    }
    return b > 0.0 ? a / b : INFINITY;
}

/* Heat list: the tissue voxels that receive Joule heat from the unit-voltage solution q1, in
 * index order. Derived from q1 alone, so a checkpoint stores q1 and a resumed run rebuilds the
 * list here (the same function a solve uses: same order, same voxels). */
static void build_heat_list(rfa_state *m)
{
    const abl_grid *g = &m->eg;
    size_t nh = 0;
    for (int k = 0; k < g->nz; k++)
        for (int j = 0; j < g->ny; j++)
            for (int i = 0; i < g->nx; i++) {
                const size_t c = ABL_IDX(g, i, j, k);
                if (!(m->q1[c] > 0.0)) continue;
                m->heat_box[nh] = c;
                m->heat_idx[nh++] = full_index(m, i, j, k);
            }
    m->nheat = nh;
}

static abl_status solve(abl_source *s, int conf, double t_s, abl_error *err)
{
    rfa_state *m = s->state;
    const abl_grid *g = &m->eg;
    potential_set_couples(m->pot, m->pcouple[conf], m->npcouple[conf]);
    abl_status st = potential_set_far_ground(m->pot, m->p->far_ground ? m->far_c[conf] : NULL, err);
    if (!st) st = potential_set_conductivity(m->pot, m->sigma, m->held[conf], true, err);
    if (st) return st;
    /* initial guess: the last solution, or its linear extrapolation in time from the two last
     * ones when that starts closer (smooth heating: fewer CG iterations; after a jump such as
     * a generator pause the plain last solution wins) */
    double *V = m->V[conf], *Vp = m->Vp[conf], *old = m->heat_q; /* heat_q: scratch here */
    const size_t n = g->n;
    memcpy(old, V, n * sizeof(double));
    const bool extrapolate = m->tp[conf] >= 0.0 && m->ts[conf] > m->tp[conf];
    if (extrapolate) {
        const double f = fmin((t_s - m->ts[conf]) / (m->ts[conf] - m->tp[conf]), 1.0);
#pragma omp parallel for schedule(static)
        for (size_t c = 0; c < n; c++) V[c] = old[c] + f * (old[c] - Vp[c]);
    }
    int it;
    double res;
    st = potential_solve(m->pot, V, extrapolate ? old : NULL, &it, &res, err);
    if (st) {
        char msg[ABL_ERRMSG_LEN];
        snprintf(msg, sizeof msg, "%s", err->msg);
        return abl_fail(err, st, "source '%s' (rfa) at t = %.3f s: %s", s->name, t_s, msg);
    }
    if (m->ts[conf] >= 0.0) memcpy(Vp, old, n * sizeof(double));
    m->tp[conf] = m->ts[conf];
    m->ts[conf] = t_s;
    m->P1 = potential_dissipation(m->pot, V, m->q1);
    m->P1_far = potential_far_power(m->pot, V);
    m->I1 = potential_current_A(m->pot, V);
    memcpy(m->sigma_s, m->sigma, g->n * sizeof(double));
    m->conf = conf;
    m->nsolves++;
    m->last_iters = it;
    if (!(m->P1 > 0.0) || !(m->I1 > 0.0))
        return abl_fail(err, ABL_ENUM,
                        "source '%s' (rfa) at t = %.3f s: no current flows from the electrodes "
                        "(unit-voltage power %g W); check the ground faces and tissues",
                        s->name, t_s, m->P1);
    build_heat_list(m);
    return ABL_OK;
}

/* solve() inside the run's profile: its time counts as the potential phase, not the sources'
 * (the driver's mark before the source update opened the sources phase). */
static abl_status solve_timed(abl_source *s, const abl_field_view *v, int conf, double t_s,
                              abl_error *err)
{
    rfa_state *m = s->state;
    potential_set_profile(m->pot, v->prof);
    if (v->prof) prof_mark(v->prof, ABL_PROF_SOURCES, 0);
    const abl_status st = solve(s, conf, t_s, err);
    if (v->prof) prof_mark(v->prof, ABL_PROF_POTENTIAL, 0);
    return st;
}

/* Electrode e's part in configuration conf: -1 it does not conduct (tissue then), 0 active,
 * 1 return. Together: every electrode with its own polarity; sequential: electrode conf alone;
 * bipolar pairs: electrode conf active against electrode conf + 1 (cyclically) as return. */
static int conf_role(const rfa_params *p, int conf, int e)
{
    if (p->switching == SW_TOGETHER) return p->el[e].polarity;
    if (p->switching == SW_SEQUENTIAL || p->switching == SW_IMPEDANCE) return e == conf ? 0 : -1;
    return e == conf ? 0 : e == (conf + 1) % p->nel ? 1 : -1;
}

/* Hottest sensor voxel of the conducting electrodes. */
static double tip_temperature(const rfa_state *m, int conf, const double *T)
{
    double tmax = -INFINITY;
    for (int e = 0; e < m->p->nel; e++) {
        if (conf_role(m->p, conf, e) < 0) continue;
        for (size_t q = 0; q < m->ev[e].nsens; q++) tmax = fmax(tmax, T[m->ev[e].sens[q]]);
    }
    return tmax;
}

/* The generator, part 1: the controller state that does not need the field, advanced once per
 * step (PI integral, end of an impedance pause). Returns the power the generator asks for
 * (temperature mode), and false in *drives when it drives no current this step (paused, or
 * the PI output is zero): then V0 = 0 whatever the stored solution, and the step needs no
 * potential solve. */
static double generator_demand(rfa_state *m, double t, double dt, double T_tip, bool *drives)
{
    const rfa_params *p = m->p;
    double P = 0.0;
    *drives = true;
    m->resumed = false;
    switch (p->mode) {
    case GEN_TEMPERATURE: {
        /* PI on the power, integral frozen while the output saturates (anti-windup) */
        double e = p->setpoint_C - T_tip;
        P = p->kp_W_K * e + m->integ_W;
        bool sat_hi = P >= p->max_power_W, sat_lo = P <= 0.0;
        if (!(sat_hi && e > 0) && !(sat_lo && e < 0)) m->integ_W += p->ki_W_Ks * e * dt;
        P = fmin(fmax(p->kp_W_K * e + m->integ_W, 0.0), p->max_power_W);
        *drives = P > 0.0;
        break;
    }
    case GEN_IMPEDANCE:
        /* after a pause the generator conducts for at least one step before it judges the
         * impedance again (it needs current to measure it) */
        if (m->paused && t >= m->pause_end_s - 1e-9) m->paused = false, m->resumed = true;
        *drives = !m->paused;
        break;
    default:
        break;
    }
    return P;
}

/* The generator, part 2: driving voltage for this step from its mode, the demand of part 1 and
 * the stored solution (impedance mode: baseline and the decision to pause). */
static double generator_voltage(rfa_state *m, double t, double P_demand)
{
    const rfa_params *p = m->p;
    const double Z = 1.0 / m->I1;
    const double P1 = m->P1 + m->P1_far; /* what the generator delivers per V^2 */
    double V0 = 0.0;
    switch (p->mode) {
    case GEN_VOLTAGE:
        V0 = p->voltage_V;
        break;
    case GEN_POWER:
        V0 = sqrt(p->power_W / P1);
        break;
    case GEN_TEMPERATURE:
        V0 = sqrt(P_demand / P1);
        break;
    case GEN_IMPEDANCE:
        if (t - m->on_s <= p->baseline_s) m->baseline_Ohm = fmin(m->baseline_Ohm, Z);
        if (!m->paused && !m->resumed && t - m->on_s > p->baseline_s &&
            Z > m->baseline_Ohm + p->delta_Ohm) {
            m->paused = true;
            m->pause_end_s = t + p->pause_s;
            m->npauses++;
        }
        V0 = m->paused ? 0.0 : sqrt(p->power_W / P1);
        break;
    }
    V0 = fmin(V0, p->max_voltage_V);
    if (p->max_current_A > 0.0) V0 = fmin(V0, p->max_current_A / m->I1);
    return V0;
}

static abl_status rfa_update(abl_source *s, const abl_field_view *v, abl_source_contrib *out,
                             abl_error *err)
{
    rfa_state *m = s->state;
    const rfa_params *p = m->p;
    abl_status st;
    *out = (abl_source_contrib){0};
    const double t = v->t_s;
    /* on for this step's interval (steps are aligned to on_s/off_s and the switching times):
     * decided at its midpoint, the same for both calls of an implicit step */
    const double tw = v->step_h_s > 0.0 ? v->step_t0_s + 0.5 * v->step_h_s : t;
    if (!source_window_on(v, m->on_s, m->off_s)) return ABL_OK;
    if (v->pins_only) { /* implicit schemes' end-of-step call: the (static) cooled voxels only */
        out->n_pin = m->npin;
        out->pin_idx = m->pin_idx;
        out->pin_T_C = m->pin_T;
        return ABL_OK;
    }
    const double dt = m->started && t > m->t_last ? t - m->t_last : 0.0;
    const bool new_row = !m->started || t > m->t_last;

    int conf = 0;
    if (p->switching == SW_IMPEDANCE) {
        if (!m->started) m->sw_turn_s = t;
        /* the longest turn (switch_interval_s, optional): judged at the start of a step, so a
         * turn lasts until the first step that starts at or after it ends (at most one step
         * longer; the switch times are not step breakpoints, as the impedance rises that
         * shift them cannot be known in advance) */
        m->sw_why = 0;
        m->sw_Z_Ohm = m->sw_base_at_Ohm = 0.0;
        if (p->switch_interval_s > 0.0 && t - m->sw_turn_s >= p->switch_interval_s - 1e-9) {
            m->sw_conf = (m->sw_conf + 1) % p->nel;
            m->sw_turn_s = t;
            m->sw_why = 2;
        }
        conf = m->sw_conf;
    } else if (p->switching) {
        long k = (long)floor((tw - m->on_s) / p->switch_interval_s + 1e-9);
        conf = (int)(k % p->nel);
    }
    double T_tip = tip_temperature(m, conf, v->T_C);
    bool drives;
    const double P_demand = generator_demand(m, t, dt, T_tip, &drives);
    /* re-solve when the electrodes change, or when current flows and sigma has moved (while
     * none flows the stale solution heats nothing; the first conducting step re-checks) */
    if (conf != m->conf || drives) {
        update_sigma(m, v);
        if (conf != m->conf || sigma_change(m, &m->eg) > p->resolve_tol) {
            if ((st = solve_timed(s, v, conf, t, err))) return st;
        }
    }
    /* Impedance-triggered switching (Francica et al. 2019, Br J Radiol 92:20180625: "switched
     * from one electrode to the next automatically when the impedance reached 30 ohm above the
     * baseline level"). The generator judges the conducting electrode's impedance at the start
     * of each step, from the stored solution (re-solved above when sigma moved by more than
     * resolve_tolerance), as the impedance mode judges its pause; if it is above that electrode's baseline + switch_delta_Ohm the next electrode
     * conducts this step instead (one switch per step: the next one is judged at the next
     * step). ASSUMED, not in the source: the baseline is the lowest impedance the electrode
     * showed while conducting, the longest turn (if any) is the user's, and an electrode still
     * above its threshold is not skipped. */
    if (p->switching == SW_IMPEDANCE && drives) {
        if (m->sw_why != 2 && 1.0 / m->I1 > m->sw_base_Ohm[conf] + p->switch_delta_Ohm) {
            m->sw_why = 1;
            m->sw_Z_Ohm = 1.0 / m->I1;
            m->sw_base_at_Ohm = m->sw_base_Ohm[conf];
            conf = (conf + 1) % p->nel;
            m->sw_conf = conf;
            m->sw_turn_s = t;
            T_tip = tip_temperature(m, conf, v->T_C);
            if ((st = solve_timed(s, v, conf, t, err))) return st;
        }
        m->sw_base_Ohm[conf] = fmin(m->sw_base_Ohm[conf], 1.0 / m->I1);
    }

    const double V0 = generator_voltage(m, t, P_demand);
    const double V2 = V0 * V0;
    {
        const size_t nh = m->nheat;
        double *hq = m->heat_q;
        const double *q1 = m->q1;
        const size_t *hb = m->heat_box;
#pragma omp parallel for schedule(static)
        for (size_t q = 0; q < nh; q++) hq[q] = V2 * q1[hb[q]];
    }
    /* cooled electrodes: the tissue beside the held set sees the coolant at the true surface
     * (pauses included), from the temperature at the start of the step (every scheme). The
     * entries follow the Joule list at a fixed place; while no current flows the list starts
     * at them (the Joule list stays intact for the next conducting step, which need not
     * re-solve). */
    const size_t nj = m->nheat;
    for (size_t q = 0; q < m->ntcouple; q++) {
        const rfa_tcouple *tc = &m->tcouple[q];
        m->heat_idx[nj + q] = tc->b;
        m->tcouple_Gv[q] =
            needle_couple_G(m->sim, v->material[tc->b], tc->T_cool_C, v->T_C[tc->b], tc->dG_m2);
        m->heat_q[nj + q] = m->tcouple_Gv[q] * (tc->T_cool_C - v->T_C[tc->b]);
    }
    const size_t first = V2 > 0.0 ? 0 : nj;
    out->n_heat = nj + m->ntcouple - first;
    out->heat_idx = m->heat_idx + first;
    out->heat_q_W_m3 = m->heat_q + first;
    out->heat_G_W_m3K = m->ntcouple ? m->tcouple_Gv : NULL;
    out->heat_G_first = nj - first;
    out->heat_distinct = nj - first; /* the Joule list: one entry per box voxel with q1 > 0 */
    out->n_pin = m->npin;
    out->pin_idx = m->pin_idx;
    out->pin_T_C = m->pin_T;

    if (new_row) {
        double row[NCOL_MAX] = {t,
                                V0,
                                V0 * m->I1,
                                V2 * (m->P1 + m->P1_far),
                                1.0 / m->I1,
                                T_tip,
                                p->switching ? conf : -1,
                                m->paused ? 1.0 : 0.0,
                                (double)m->nsolves,
                                m->last_iters};
        int nc = NCOL;
        if (p->switching == SW_IMPEDANCE) {
            row[nc++] = m->sw_why;
            row[nc++] = m->sw_Z_Ohm;
            row[nc++] = m->sw_base_at_Ohm;
        }
        if (p->far_ground) row[nc++] = V2 * m->P1;
        row[nc++] = v->step_h_s;
        if ((st = series_buf_append(&m->series, row, s->name, err))) return st;
    }
    m->started = true;
    m->t_last = t;
    return ABL_OK;
}

static void rfa_series(const abl_source *s, abl_source_series *out)
{
    const rfa_state *m = s->state;
    out->ncol = m->series.ncol;
    out->columns = m->cols;
    out->nrow = m->series.nrow;
    out->rows = m->series.rows;
}

static int rfa_axes(const abl_source *s, abl_source_axis *out, int max)
{
    const rfa_state *m = s->state;
    int n = 0;
    for (int e = 0; e < m->p->nel && n < max; e++, n++) {
        memcpy(out[n].tip_m, m->p->el[e].tip_m, sizeof out[n].tip_m);
        memcpy(out[n].dir, m->p->el[e].dir, sizeof out[n].dir);
    }
    return n;
}

/* Checkpoint state: the stored unit-voltage solutions (and the conductivity they were solved
 * with: the re-solve criterion compares against it), the generator controller and the series.
 * The heat list is not stored: it follows from q1 (build_heat_list). Its length is, as a check
 * that the loaded q1 is the one saved: a freshly created source has solved nothing yet, so
 * its own nheat (0) says nothing about the checkpoint. */
static abl_status rfa_state_io(const abl_source *s, abl_blob *b, abl_error *err)
{
    rfa_state *m = s->state;
    const rfa_params *p = m->p;
    size_t nbox = m->eg.n, nheat = m->nheat;
    int nconf = m->nconf;
    abl_blob_io(b, &nbox, sizeof nbox);
    abl_blob_io(b, &nheat, sizeof nheat);
    abl_blob_io(b, &nconf, sizeof nconf);
    if (b->mode == ABL_BLOB_LOAD && !b->bad &&
        (nbox != m->eg.n || nheat > nbox || nconf != m->nconf))
        return abl_fail(err, ABL_EINVAL,
                        "source '%s' (rfa): the checkpoint's electrical box or electrodes differ "
                        "from the scenario's (box %zu voxels, %d configurations; the scenario "
                        "has %zu and %d)",
                        s->name, nbox, nconf, m->eg.n, m->nconf);
    for (int c = 0; c < m->nconf; c++) {
        abl_blob_io(b, m->V[c], nbox * sizeof(double));
        abl_blob_io(b, m->Vp[c], nbox * sizeof(double));
        abl_blob_io(b, &m->ts[c], sizeof m->ts[c]);
        abl_blob_io(b, &m->tp[c], sizeof m->tp[c]);
    }
    abl_blob_io(b, m->sigma_s, nbox * sizeof(double));
    abl_blob_io(b, m->q1, nbox * sizeof(double));
    abl_blob_io(b, &m->conf, sizeof m->conf);
    abl_blob_io(b, &m->P1, sizeof m->P1);
    abl_blob_io(b, &m->I1, sizeof m->I1);
    if (p->far_ground) abl_blob_io(b, &m->P1_far, sizeof m->P1_far);
    abl_blob_io(b, &m->nsolves, sizeof m->nsolves);
    abl_blob_io(b, &m->last_iters, sizeof m->last_iters);
    abl_blob_io(b, &m->started, sizeof m->started);
    abl_blob_io(b, &m->t_last, sizeof m->t_last);
    abl_blob_io(b, &m->integ_W, sizeof m->integ_W);
    abl_blob_io(b, &m->baseline_Ohm, sizeof m->baseline_Ohm);
    abl_blob_io(b, &m->pause_end_s, sizeof m->pause_end_s);
    abl_blob_io(b, &m->paused, sizeof m->paused);
    abl_blob_io(b, &m->npauses, sizeof m->npauses);
    if (p->switching == SW_IMPEDANCE) { /* only then: the other sources' state stays as it was */
        abl_blob_io(b, &m->sw_conf, sizeof m->sw_conf);
        abl_blob_io(b, &m->sw_turn_s, sizeof m->sw_turn_s);
        abl_blob_io(b, m->sw_base_Ohm, (size_t)p->nel * sizeof m->sw_base_Ohm[0]);
        if (b->mode == ABL_BLOB_LOAD && !b->bad && (m->sw_conf < 0 || m->sw_conf >= p->nel))
            return abl_fail(err, ABL_EINVAL,
                            "source '%s' (rfa): the checkpoint's conducting electrode %d is not "
                            "one of its %d electrodes: the state is inconsistent",
                            s->name, m->sw_conf, p->nel);
    }
    abl_status st = series_buf_io(&m->series, b, s->name, err);
    if (st) return st;
    if (b->bad)
        return abl_fail(err, ABL_EINVAL, "source '%s' (rfa): checkpoint state truncated", s->name);
    if (b->mode == ABL_BLOB_LOAD) {
        build_heat_list(m);
        if (m->nheat != nheat)
            return abl_fail(err, ABL_EINVAL,
                            "source '%s' (rfa): the checkpoint's unit heat has %zu heated voxels, "
                            "its record says %zu: the state is inconsistent",
                            s->name, m->nheat, nheat);
    }
    return ABL_OK;
}

/* Sequential switching times are step boundaries (source.h breakpoints): an electrode never
 * takes over inside a step. At most 1e5 of them (beyond that the switching is faster than any
 * step could resolve, and the step count limit refuses the run anyway). */
static int rfa_breakpoints(const abl_source *s, double *t_s, int max)
{
    const rfa_state *m = s->state;
    const rfa_params *p = m->p;
    if (!p->switching || p->switching == SW_IMPEDANCE || !(p->switch_interval_s > 0)) return 0;
    const double end = fmin(m->off_s, m->sim->sc->duration_s);
    int n = 0;
    for (long k = 1; n < 100000; k++) {
        const double t = m->on_s + (double)k * p->switch_interval_s;
        if (!(t < end)) break;
        if (n < max) t_s[n] = t;
        n++;
    }
    return n;
}

/* The impedance-mode generator (and the impedance switch) judges the impedance once per step
 * (generator_voltage; rfa_update): a voxel beside the electrode that boils dry inside a step
 * keeps heating until the step ends, so how hot it overshoots grows with the step. Measured (suite rfa "cooled electrode: tissue
 * beside it stays plausible", 1 mm, 120 s, the step set by time.dt_s): hottest voxel 100.0 /
 * 119.4 / 124.9 / 137.4 / 146.6 C at 0.5 / 0.7 / 0.8 / 0.9 / 1.0 s. A real generator samples
 * the impedance continuously; control_interval_s (default 0.5 s) bounds the automatic step. */
static double rfa_max_step(const abl_source *s)
{
    const rfa_state *m = s->state;
    return m->p->mode == GEN_IMPEDANCE || m->p->switching == SW_IMPEDANCE
               ? m->p->control_interval_s
               : INFINITY;
}

static const abl_source_ops rfa_ops = {.type = "rfa",
                                       .max_step_s = rfa_max_step,
                                       .breakpoints = rfa_breakpoints,
                                       .update = rfa_update,
                                       .destroy = rfa_destroy,
                                       .series = rfa_series,
                                       .axes = rfa_axes,
                                       .state_io = rfa_state_io};

/* The tines of an expandable electrode as one wire (applicator.h): each arc a chain of chords
 * whose sagitta R (1 - cos(dth/2)) stays below a tenth of the smallest spacing (the chords
 * then lie within 0.1 voxel of the arc). Returns the chord count; with w NULL only counts. */
static int tine_chords(const abl_grid *g, const rfa_electrode *el, abl_chord *w)
{
    const double hmin = fmin(g->h_m[0], fmin(g->h_m[1], g->h_m[2]));
    const double arc = el->tine_arc_deg * PI / 180.0;
    const double R = 0.5 * el->deployed_diameter_m / (1.0 - cos(arc));
    /* R (1 - cos(dth / 2)) <= 0.1 hmin */
    const double dth = 2.0 * acos(fmax(-1.0, 1.0 - 0.1 * hmin / R));
    const int nseg = (int)ceil(arc / dth);
    int n = 0;
    for (int t = 0; t < el->n_tines; t++) {
        double a[3], b[3];
        tine_point(el, t, 0.0, a);
        for (int q = 1; q <= nseg; q++, n++) {
            tine_point(el, t, arc * q / nseg, b);
            if (w) {
                double d[3], L = 0.0;
                for (int k = 0; k < 3; k++) d[k] = b[k] - a[k], L += d[k] * d[k];
                L = sqrt(L);
                abl_chord *c = &w[n];
                for (int k = 0; k < 3; k++) c->tip_m[k] = a[k], c->dir[k] = d[k] / L;
                c->length_m = L;
                c->pull_start = q == 1;
                c->pull_end = q == nseg;
            }
            memcpy(a, b, sizeof a);
        }
    }
    return n;
}

/* An electrode as a wire: a straight one is one chord; w NULL: the count only. */
static int electrode_wire(const abl_grid *g, const rfa_electrode *el, abl_chord *w)
{
    if (el->type != EL_STRAIGHT) return tine_chords(g, el, w);
    if (w) {
        w[0] = (abl_chord){{el->tip_m[0], el->tip_m[1], el->tip_m[2]},
                           {el->dir[0], el->dir[1], el->dir[2]}, el->length_m, true, true};
    }
    return 1;
}

static double electrode_radius_m(const rfa_electrode *el)
{
    return el->type == EL_STRAIGHT ? el->radius_m : el->tine_radius_m;
}

/* Electrode el as the kit's wire in *w (allocated, *nw chords); false when out of memory. */
static bool build_wire(const abl_grid *g, const rfa_electrode *el, abl_chord **w, int *nw)
{
    *nw = electrode_wire(g, el, NULL);
    if (!(*w = malloc((size_t)*nw * sizeof **w))) return false;
    electrode_wire(g, el, *w);
    return true;
}

/* Rasterise an electrode given as wire w[0..nw) of radius r into mask (cleared first):
 * RAST_OUTSIDE if it leaves the grid. Every electrode is the held set of the applicator kit
 * (wire_hold_voxels: wider than the needle or tine, coupled to its true surface,
 * build_couplings): a straight one a single chord, an expandable one its tines as chains of
 * chords. */
enum { RAST_OK, RAST_OUTSIDE, RAST_NOMEM };
static int rasterise(const abl_grid *g, const abl_chord *w, int nw, double r, uint8_t *mask)
{
    memset(mask, 0, g->n);
    for (int q = 0; q < nw; q++)
        for (int a = 0; a < 3; a++) {
            const double e = w[q].tip_m[a] + w[q].length_m * w[q].dir[a];
            const long v0 = voxel_of(g, a, w[q].tip_m[a]), v1 = voxel_of(g, a, e);
            if (v0 < 0 || v0 >= dim(g, a) || v1 < 0 || v1 >= dim(g, a)) return RAST_OUTSIDE;
        }
    const size_t n = wire_hold_voxels(g, w, nw, r, NULL, 0);
    size_t *idx = malloc((n ? n : 1) * sizeof *idx);
    int rc = RAST_OK;
    if (!idx || (n > 0 && wire_hold_voxels(g, w, nw, r, idx, n) != n)) rc = RAST_NOMEM;
    for (size_t q = 0; !rc && q < n; q++) mask[idx[q]] = 1;
    free(idx);
    return rc;
}

/* Electrode voxel list (sorted) and sensor voxels of electrode el, from its rasterised mask
 * (bit 1); mask gets bit 2 for the sensor voxels. */
static abl_status electrode_sets(const abl_grid *g, const rfa_params *p, const rfa_electrode *el,
                                 uint8_t *mask, rfa_el_vox *ev)
{
    size_t n = 0;
    for (size_t c = 0; c < g->n; c++) n += mask[c] != 0;
    ev->n = n;
    if (!(ev->idx = malloc((n ? n : 1) * sizeof *ev->idx))) return ABL_ENOMEM;
    n = 0;
    for (size_t c = 0; c < g->n; c++)
        if (mask[c]) ev->idx[n++] = c;
    /* sensor voxels: electrode voxels within sensor_radius of a sensor point, and their face
     * neighbours (the tissue the thermocouple touches) */
    double pts[24][3];
    const int np = sensor_points(el, pts);
    const double r2 = p->sensor_radius_m * p->sensor_radius_m;
    for (size_t q = 0; q < ev->n; q++) {
        const size_t c = ev->idx[q];
        const int i = (int)(c % g->sy), j = (int)(c / g->sy % (size_t)g->ny),
                  k = (int)(c / g->sz);
        double x[3];
        grid_voxel_centre_m(g, i, j, k, x);
        bool near = false;
        for (int t = 0; t < np && !near; t++) {
            double d2 = 0.0;
            for (int a = 0; a < 3; a++) d2 += (x[a] - pts[t][a]) * (x[a] - pts[t][a]);
            near = d2 <= r2;
        }
        if (!near) continue;
        mask[c] |= 2;
        const long off[6] = {-1, 1, -(long)g->sy, (long)g->sy, -(long)g->sz, (long)g->sz};
        const int ok[6] = {i > 0, i < g->nx - 1, j > 0, j < g->ny - 1, k > 0, k < g->nz - 1};
        for (int f = 0; f < 6; f++)
            if (ok[f]) mask[(size_t)((long)c + off[f])] |= 2;
    }
    /* the voxel containing each sensor point, in case no electrode voxel was near it */
    for (int t = 0; t < np; t++) {
        long v[3];
        for (int a = 0; a < 3; a++) v[a] = voxel_of(g, a, pts[t][a]);
        mask[ABL_IDX(g, v[0], v[1], v[2])] |= 2;
    }
    size_t ns = 0;
    for (size_t c = 0; c < g->n; c++) ns += (mask[c] & 2) != 0;
    ev->nsens = ns;
    if (!(ev->sens = malloc(ns * sizeof *ev->sens))) return ABL_ENOMEM;
    ns = 0;
    for (size_t c = 0; c < g->n; c++)
        if (mask[c] & 2) ev->sens[ns++] = c;
    return ABL_OK;
}

static int cmp_pcouple(const void *a, const void *b)
{
    const size_t x = ((const abl_potential_couple *)a)->c, y = ((const abl_potential_couple *)b)->c;
    return (x > y) - (x < y);
}

/* Box copy of the coupled voxels of a configuration, in index order, a voxel coupled to two
 * electrodes of it once with the sum of its conductances (all held voxels of a configuration are
 * at one voltage). */
static abl_status box_couples(rfa_state *m, const abl_needle_couple *c, size_t n, int conf)
{
    const abl_grid *g = &m->sim->grid;
    abl_potential_couple *pc = malloc((n ? n : 1) * sizeof *pc);
    if (!pc) return ABL_ENOMEM;
    size_t k = 0;
    for (size_t q = 0; q < n; q++) {
        const int i = (int)(c[q].b % g->sy) - m->off[0],
                  j = (int)(c[q].b / g->sy % (size_t)g->ny) - m->off[1],
                  kk = (int)(c[q].b / g->sz) - m->off[2];
        /* the box spans the electrodes +- at least 5 mm: a coupled voxel (one voxel beside the
         * held set) lies inside it unless the box is clipped by the grid */
        if (i < 0 || j < 0 || kk < 0 || i >= m->eg.nx || j >= m->eg.ny || kk >= m->eg.nz) continue;
        pc[k++] = (abl_potential_couple){ABL_IDX(&m->eg, i, j, kk), c[q].G_m2};
    }
    qsort(pc, k, sizeof *pc, cmp_pcouple);
    size_t u = 0;
    for (size_t q = 0; q < k; q++) {
        if (u > 0 && pc[u - 1].c == pc[q].c)
            pc[u - 1].G_m2 += pc[q].G_m2;
        else
            pc[u++] = pc[q];
    }
    m->pcouple[conf] = pc;
    m->npcouple[conf] = u;
    return ABL_OK;
}

/* Sub-voxel coupling of the electrodes to their true surface (applicator.h
 * wire_coupling; docs/RFA.md "Sub-voxel electrode coupling"): for the potential of every
 * configuration (together: with every electrode's held voxels marked; sequential: with only the
 * conducting one's, the others are tissue then) and, for cooled electrodes, for the heat
 * equation (with every electrode marked: the pins are there while the source is on). */
static abl_status build_couplings(rfa_state *m)
{
    const rfa_params *p = m->p;
    const abl_grid *g = &m->sim->grid;
    abl_status st = ABL_OK;
    int *mark = calloc(g->n, sizeof *mark);
    uint8_t *seen = calloc(g->n, 1);
    size_t nmax = 0;
    for (int e = 0; e < p->nel; e++) nmax += 6 * m->ev[e].n;
    abl_needle_couple *all = malloc((nmax ? nmax : 1) * sizeof *all);
    abl_needle_couple *own = malloc((nmax ? nmax : 1) * sizeof *own);
    m->tcouple = malloc((nmax ? nmax : 1) * sizeof *m->tcouple);
    if (!mark || !seen || !all || !own || !m->tcouple) {
        st = ABL_ENOMEM;
        goto done;
    }
    for (int e = 0; e < p->nel; e++)
        for (size_t q = 0; q < m->ev[e].n; q++) mark[m->ev[e].idx[q]] = e + 1;
    size_t nall = 0;
    for (int e = 0; e < p->nel; e++) {
        const rfa_electrode *el = &p->el[e];
        const size_t n0 = nall;
        nall += wire_coupling(g, m->wire[e], m->nwire[e], electrode_radius_m(el), m->ev[e].idx, m->ev[e].n,
                              mark, e + 1, seen, all + nall);
        if (!el->cooled) continue;
        for (size_t q = n0; q < nall; q++)
            m->tcouple[m->ntcouple++] = (rfa_tcouple){all[q].b, all[q].dG_m2, el->coolant_C};
    }
    if (!p->switching) {
        st = box_couples(m, all, nall, 0);
        goto done;
    }
    /* one configuration per electrode (sequential) or pair (bipolar pairs): the couplings of
     * its conducting electrodes, the others unmarked (tissue then) */
    for (int cf = 0; cf < p->nel && !st; cf++) {
        for (int f = 0; f < p->nel; f++)
            if (conf_role(p, cf, f) < 0)
                for (size_t q = 0; q < m->ev[f].n; q++) mark[m->ev[f].idx[q]] = 0;
        size_t nown = 0;
        for (int e = 0; e < p->nel; e++) {
            if (conf_role(p, cf, e) < 0) continue;
            const rfa_electrode *el = &p->el[e];
            nown += wire_coupling(g, m->wire[e], m->nwire[e], electrode_radius_m(el),
                                  m->ev[e].idx, m->ev[e].n, mark, e + 1, seen, own + nown);
        }
        for (int f = 0; f < p->nel; f++)
            for (size_t q = 0; q < m->ev[f].n; q++) mark[m->ev[f].idx[q]] = f + 1;
        st = box_couples(m, own, nown, cf);
    }
done:
    free(mark);
    free(seen);
    free(all);
    free(own);
    return st;
}

static abl_status rfa_create(const abl_source_cfg *cfg, const abl_sim *sim, abl_source **out,
                             abl_error *err)
{
    *out = NULL;
    const rfa_params *p = cfg->params;
    const abl_grid *g = &sim->grid;
    const abl_tissue_table *tt = &sim->sc->tissues;
    abl_source *s;
    void *state;
    abl_status st = source_alloc(cfg, &rfa_ops, sizeof(rfa_state), &s, &state, err);
    if (st) return st;
    rfa_state *m = state;
    uint8_t *mask = NULL;
    m->p = p;
    m->sim = sim;
    m->on_s = cfg->on_s;
    m->off_s = cfg->off_s;
    m->V_m3 = grid_voxel_volume_m3(g);
    m->conf = -1;
    m->baseline_Ohm = INFINITY;
    for (int e = 0; e < RFA_MAX_ELECTRODES; e++) m->sw_base_Ohm[e] = INFINITY;
    m->nconf = p->switching ? p->nel : 1;
    {
        int nc = 0;
        for (int c = 0; c < NCOL; c++) m->cols[nc++] = series_cols[c];
        if (p->switching == SW_IMPEDANCE)
            for (int c = 0; c < 3; c++) m->cols[nc++] = handover_cols[c];
        /* the Joule heat the grid receives; power_W (the generator's) also has the exterior's */
        if (p->far_ground) m->cols[nc++] = "grid_power_W";
        m->cols[nc++] = "step_s";
        m->series.ncol = nc;
    }
    for (int k = 0; k < sim->nmat; k++) {
        const abl_tissue *t = &tt->t[sim->mat_tissue[k]];
        if (isnan(t->sigma_480kHz_S_m)) {
            st = abl_fail(err, ABL_EINVAL,
                          "%s: source '%s': tissue '%s' has no "
                          "electrical_conductivity_480kHz_S_per_m in the tissue table; add it "
                          "(tissues: section)",
                          cfg->where, cfg->name, t->name);
            goto fail;
        }
        m->s37[k] = t->sigma_480kHz_S_m;
    }

    /* electrodes on the simulation grid: voxels, sensors, their bounding box */
    if (!(mask = grid_alloc_labels(g, 0))) goto nomem;
    long lo[3] = {g->nx, g->ny, g->nz}, hi[3] = {-1, -1, -1};
    size_t npin = 0;
    for (int e = 0; e < p->nel; e++) {
        const rfa_electrode *el = &p->el[e];
        if (!build_wire(g, el, &m->wire[e], &m->nwire[e])) goto nomem;
        const int rs = rasterise(g, m->wire[e], m->nwire[e], electrode_radius_m(el), mask);
        if (rs == RAST_NOMEM) goto nomem;
        if (rs == RAST_OUTSIDE) {
            st = abl_fail(err, ABL_EINVAL,
                          "%s: source '%s': electrode %d (tip_mm = [%g, %g, %g]) reaches outside "
                          "the grid (x %.1f..%.1f, y %.1f..%.1f, z %.1f..%.1f mm); its active "
                          "part must lie inside",
                          cfg->where, cfg->name, e, el->tip_m[0] * 1e3, el->tip_m[1] * 1e3,
                          el->tip_m[2] * 1e3, (g->origin_m[0] - 0.5 * g->h_m[0]) * 1e3,
                          (g->origin_m[0] + (g->nx - 0.5) * g->h_m[0]) * 1e3,
                          (g->origin_m[1] - 0.5 * g->h_m[1]) * 1e3,
                          (g->origin_m[1] + (g->ny - 0.5) * g->h_m[1]) * 1e3,
                          (g->origin_m[2] - 0.5 * g->h_m[2]) * 1e3,
                          (g->origin_m[2] + (g->nz - 0.5) * g->h_m[2]) * 1e3);
            goto fail;
        }
        if ((st = electrode_sets(g, p, el, mask, &m->ev[e]))) goto nomem;
        for (size_t q = 0; q < m->ev[e].n; q++) {
            const size_t c = m->ev[e].idx[q];
            const long v[3] = {(long)(c % g->sy), (long)(c / g->sy % (size_t)g->ny),
                               (long)(c / g->sz)};
            for (int a = 0; a < 3; a++) {
                lo[a] = v[a] < lo[a] ? v[a] : lo[a];
                hi[a] = v[a] > hi[a] ? v[a] : hi[a];
            }
        }
        if (el->cooled) npin += m->ev[e].n;
    }
    /* the electrical box: electrodes +- margin, within the grid (or the grid itself) */
    {
        int dims[3];
        double org[3];
        for (int a = 0; a < 3; a++) {
            long l = 0, h = dim(g, a) - 1;
            if (p->margin_m > 0) {
                long mv = (long)ceil(p->margin_m / g->h_m[a] - 1e-9);
                l = lo[a] - mv > 0 ? lo[a] - mv : 0;
                h = hi[a] + mv < dim(g, a) - 1 ? hi[a] + mv : dim(g, a) - 1;
            }
            m->off[a] = (int)l;
            dims[a] = (int)(h - l + 1);
            org[a] = g->origin_m[a] + (double)l * g->h_m[a];
        }
        if ((st = grid_init(&m->eg, dims, g->h_m, org, err))) goto fail;
    }
    const abl_grid *eg = &m->eg;
    if ((st = build_couplings(m))) goto nomem;
    if (!wet_region(m)) goto nomem;
    m->sigma = grid_alloc_field(eg, 0.0);
    m->sigma_s = grid_alloc_field(eg, 0.0);
    m->q1 = grid_alloc_field(eg, 0.0);
    m->work = malloc(2 * (size_t)eg->nz * sizeof(double));
    /* heat list: Joule heat of at most every box voxel, then the thermal coupling */
    m->heat_idx = malloc((eg->n + m->ntcouple) * sizeof *m->heat_idx);
    m->heat_box = malloc(eg->n * sizeof *m->heat_box);
    m->heat_q = malloc((eg->n + m->ntcouple) * sizeof *m->heat_q);
    m->tcouple_Gv = malloc((m->ntcouple ? m->ntcouple : 1) * sizeof *m->tcouple_Gv);
    if (!m->sigma || !m->sigma_s || !m->q1 || !m->work || !m->heat_idx || !m->heat_box ||
        !m->heat_q || !m->tcouple_Gv)
        goto nomem;
    for (int c = 0; c < m->nconf; c++) {
        m->held[c] = grid_alloc_labels(eg, 0);
        m->V[c] = grid_alloc_field(eg, 0.0);
        m->Vp[c] = grid_alloc_field(eg, 0.0);
        m->ts[c] = m->tp[c] = -1.0;
        if (!m->held[c] || !m->V[c] || !m->Vp[c]) goto nomem;
    }
    for (int e = 0; e < p->nel; e++) {
        const rfa_el_vox *ev = &m->ev[e];
        for (size_t q = 0; q < ev->n; q++) {
            const size_t c = ev->idx[q];
            const int i = (int)(c % g->sy) - m->off[0],
                      j = (int)(c / g->sy % (size_t)g->ny) - m->off[1],
                      k = (int)(c / g->sz) - m->off[2];
            /* an electrode on a grounded face would short the generator */
            const int at[6] = {i == 0, i == eg->nx - 1, j == 0, j == eg->ny - 1, k == 0,
                               k == eg->nz - 1};
            for (int f = 0; f < 6; f++)
                if (at[f] && p->grounded[f]) {
                    st = abl_fail(err, ABL_EINVAL,
                                  "%s: source '%s': electrode %d touches the grounded face %s "
                                  "of the %s (a short circuit); move it inside%s or make that "
                                  "face insulated (ground_faces)",
                                  cfg->where, cfg->name, e, face_names[f],
                                  p->margin_m > 0 ? "electrical box" : "grid",
                                  p->margin_m > 0 ? ", raise electrical_margin_mm" : "");
                    goto fail;
                }
            /* held masks of the configurations it belongs to */
            for (int cf = 0; cf < m->nconf; cf++)
                if (conf_role(p, cf, e) >= 0) {
                    uint8_t *h = &m->held[cf][ABL_IDX(eg, i, j, k)];
                    const uint8_t mark = (uint8_t)(1 + conf_role(p, cf, e));
                    if (*h && *h != mark) {
                        st = abl_fail(err, ABL_EINVAL,
                                      "%s: source '%s': electrode %d (%s) shares voxels with an "
                                      "electrode of the other polarity (a short circuit); move "
                                      "them apart",
                                      cfg->where, cfg->name, e,
                                      conf_role(p, cf, e) ? "return" : "active");
                        goto fail;
                    }
                    *h = mark;
                }
        }
    }
    /* pins: cooled electrodes at their coolant temperature */
    if (npin) {
        m->pin_idx = malloc(npin * sizeof *m->pin_idx);
        m->pin_T = malloc(npin * sizeof *m->pin_T);
        if (!m->pin_idx || !m->pin_T) goto nomem;
        for (int e = 0; e < p->nel; e++)
            if (p->el[e].cooled)
                for (size_t q = 0; q < m->ev[e].n; q++) {
                    m->pin_idx[m->npin] = m->ev[e].idx[q];
                    m->pin_T[m->npin++] = p->el[e].coolant_C;
                }
    }
    /* far ground: each configuration's current centre, the centroid of its held voxels (the
     * exterior's monopole is centred there; ASSUMED: the electrodes' own centroid stands for
     * the centre of the current, exact for a symmetric electrode and first order otherwise) */
    if (p->far_ground)
        for (int cf = 0; cf < m->nconf; cf++) {
            double sum[3] = {0.0, 0.0, 0.0};
            size_t nh = 0;
            for (int k = 0; k < eg->nz; k++)
                for (int j = 0; j < eg->ny; j++)
                    for (int i = 0; i < eg->nx; i++) {
                        if (!m->held[cf][ABL_IDX(eg, i, j, k)]) continue;
                        double x[3];
                        grid_voxel_centre_m(eg, i, j, k, x);
                        for (int a = 0; a < 3; a++) sum[a] += x[a];
                        nh++;
                    }
            for (int a = 0; a < 3; a++) m->far_c[cf][a] = nh ? sum[a] / (double)nh : 0.0;
        }
    /* initial guess and held values: 1 V on the electrodes; bipolar: +1/2 V on the active ones,
     * -1/2 V on the returns (a unit voltage between them; the far ground, if any, at 0) */
    for (int c = 0; c < m->nconf; c++)
        for (size_t q = 0; q < eg->n; q++) {
            const uint8_t h = m->held[c][q];
            m->V[c][q] = !h ? 0.0 : !p->bipolar ? 1.0 : h == 1 ? 0.5 : -0.5;
        }

    abl_potential_opts po = {p->solver_tol, p->max_iter, p->preconditioner};
    if ((st = potential_create(eg, p->grounded, &po, &m->pot, err))) {
        char msg[ABL_ERRMSG_LEN];
        snprintf(msg, sizeof msg, "%s", err->msg);
        st = abl_fail(err, st, "%s: source '%s': %s", cfg->where, cfg->name, msg);
        goto fail;
    }
    grid_free_field(mask);
    *out = s;
    return ABL_OK;
nomem:
    st = abl_fail(err, ABL_ENOMEM, "out of memory creating source '%s' (%zu voxels)", cfg->name,
                  g->n);
fail:
    grid_free_field(mask);
    rfa_destroy(s);
    return st;
}

const abl_source_type_info rfa_source_type = {"rfa", &rfa_keys, rfa_parse, rfa_create,
                                              rfa_free_params};
