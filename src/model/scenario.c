/* scenario.c - the scenario schema: every key, its unit, default and allowed range.
 * The key tables below are the one declaration of the scenario's keys; README "Scenario
 * reference" is generated from them (scenario_reference_markdown). */
#include "ablasim/scenario.h"
#include "ablasim/fileguard.h"
#include "ablasim/h5_schema.h"
#include "ablasim/hash.h"
#include "ablasim/nifti.h"
#include "ablasim/pcg.h" /* ABL_PRECOND_*: the solver family's names for time.preconditioner */

#include "ablasim/source.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* dir of path + rel, unless rel is absolute. */
static char *resolve(const char *base_dir, const char *rel)
{
    if (rel[0] == '/' || !base_dir || !base_dir[0]) return xstrdup(rel);
    size_t n = strlen(base_dir) + strlen(rel) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", base_dir, rel);
    return p;
}

static const cfg_range temp_range = {-200, 200, false, false, "degC"};

/* The scenario's keys, one table per map, with the texts of README "Scenario reference" (printed
 * from here by `ablasim keys --markdown`; make check fails when the README differs). The order of
 * each table is the order of "allowed here: ..." in unknown-key messages. */

/* variants of a source entry: its keys for volumetric/fixed_temperature, or for a registered
 * modality (common keys here, the rest from the modality's own table) */
enum { SOURCE_KEYS_BASIC = 0, SOURCE_KEYS_MODALITY = 1 };

static const cfg_keydecl bc_decl[] = {
    {"type", "–", "required", "`fixed_temperature`, `insulated`, `convective`", NULL,
     .label = "condition `type`"},
    {"temperature_C", "°C", "required (fixed, convective)", "[-200, 200]",
     "wall / ambient temperature", .label = "condition `temperature_C`"},
    {"h_W_per_m2K", "W/(m² K)", "required (convective)", "(0, 1e6]", "heat transfer coefficient",
     .label = "condition `h_W_per_m2K`"},
};

static const cfg_keytable bc_keys = CFG_KEYTABLE(bc_decl);

static const cfg_keydecl boundary_decl[] = {
    CFG_KEY("default", "–", "fixed 37 °C", "condition", "applies to faces not listed"),
    {"x_min", "–", "default", "condition", "per face", .label = "`boundary.{x,y,z}_{min,max}`"},
    {"x_max", "–", "default", "condition", "per face", .label = ""},
    {"y_min", "–", "default", "condition", "per face", .label = ""},
    {"y_max", "–", "default", "condition", "per face", .label = ""},
    {"z_min", "–", "default", "condition", "per face", .label = ""},
    {"z_max", "–", "default", "condition", "per face", .label = "", .sub = &bc_keys,
     .sub_prefix = ""},
};

static const cfg_keytable boundary_keys = CFG_KEYTABLE(boundary_decl);

static const cfg_keydecl grid_shape_decl[] = {
    {NULL, NULL, NULL, NULL, NULL, .label = "", .sub = &shape_keys,
     .sub_prefix = "grid.shapes[i]."},
    CFG_KEY("tissue", "–", "required", "tissue name", NULL),
};

static const cfg_keytable grid_shape_keys = CFG_KEYTABLE(grid_shape_decl);

static const cfg_keydecl grid_decl[] = {
    CFG_KEY("dims", "voxels", "required*", "3 integers 1..4096", "grid size nx, ny, nz"),
    CFG_KEY("spacing_mm", "mm", "required*", "3 numbers in (0, 100]",
            "voxel size, may differ per axis"),
    CFG_KEY("origin_mm", "mm", "grid centred on 0", "3 numbers in [-1e4, 1e4]",
            "centre of voxel (0,0,0) (NIfTI convention); not with `mesh` (the file places the "
            "grid)"),
    CFG_KEY("background", "–", "required*", "tissue name", "tissue of every voxel not in a shape"),
    {"shapes", "–", "none", "list", "tissue regions, applied in order (later wins)",
     .sub = &grid_shape_keys, .sub_prefix = "grid.shapes[i]."},
    CFG_KEY("mesh", "–", "–",
            "path to an HDF5 label grid (`.h5`) or a NIfTI label map (`.nii`, `.nii.gz`; see "
            "docs/NIFTI.md)", "instead of `dims`/`spacing_mm` (layout in docs/ARCHITECTURE.md)"),
    CFG_KEY("labels", "–", "required with `mesh`", "`{label: tissue}`, labels 0..255",
            "label → tissue mapping"),
};

static const cfg_keytable grid_keys = CFG_KEYTABLE(grid_decl);

static const cfg_keydecl physics_decl[] = {
    CFG_KEY("arterial_temperature_C", "°C", "37", "[-200, 200]", "blood temperature T_a"),
    CFG_KEY("initial_temperature_C", "°C", "arterial", "[-200, 200]",
            "uniform initial temperature"),
    CFG_KEY("initial_temperature_file", "–", "absent: uniform",
            "path to an HDF5 file or a NIfTI image (`.nii`, `.nii.gz`; relative to the "
            "scenario)",
            "initial temperature field in °C, one value per voxel: a float or integer dataset "
            "[nz][ny][nx] with the grid's dims (x fastest; values in [-200, 200]); its "
            "`spacing_mm`/`origin_mm` attributes, or those of the file's /grid/labels (an "
            "ablasim result), must match the grid. A NIfTI scalar image is placed by its affine "
            "like a label map and must cover the grid voxel for voxel. Not with "
            "`initial_temperature_C` or `ex_vivo_temperature_C` (docs/SCENARIOS.md \"Initial "
            "temperature field\")"),
    CFG_KEY("initial_temperature_dataset", "–", "`/fields/T_final_C`", "absolute HDF5 path",
            "the dataset of initial_temperature_file (default: an ablasim result's final "
            "temperature); an HDF5 file's only (a NIfTI image has one)"),
    CFG_KEY("initial_state_file", "–", "absent",
            "path to an ablasim result (relative to the scenario) on this grid",
            "a second ablation after a first: the result's T_final_C starts the temperature, "
            "its T_max_C, T_min_C, damage_omega and cem43_min the running maps, its "
            "applicator_mask the needle track and, where it has them, its time maps of the same "
            "thresholds and its freeze counts, so zones, damage, perfusion shutdown and the "
            "margin count both ablations (docs/SCENARIOS.md "
            "\"Initial temperature field\"). Not with initial_temperature_file, "
            "initial_temperature_C or ex_vivo_temperature_C"),
    CFG_KEY("ex_vivo_temperature_C", "°C", "absent: in vivo", "[-50, 60]",
            "an ex vivo specimen at this temperature: every tissue's perfusion and metabolic heat "
            "0; initial and arterial temperature and every domain face's temperature this, "
            "whatever the scenario gives for them (one key turns an in vivo scenario into its "
            "ex vivo twin)"),
    CFG_KEY("arrhenius_min_C", "°C", "43", "[20, 100]",
            "Arrhenius damage Ω integrated at and above this temperature (the published "
            "parameter sets would \"damage\" tissue at 37 °C within an hour)"),
    CFG_KEY("perfusion_shutdown", "–", "`none`", "`none`, `arrhenius`, `threshold`",
            "`arrhenius`: w_b scaled by exp(−Ω) = 1 − damaged fraction; `threshold`: w_b "
            "stops where T_max has reached perfusion_shutdown_temperature_C (Schutt & "
            "Haemmerich 2008, Med Phys 35:3462; docs/TISSUES.md \"Perfusion during heating\")"),
    CFG_KEY("perfusion_shutdown_temperature_C", "°C", "60", "[45, 100]",
            "`threshold`: the temperature at which a voxel's perfusion stops for good"),
    CFG_KEY("freezing", "–", "`auto`", "`auto`, `on`, `off`",
            "freezing of tissue water (docs/PHASE_CHANGE.md); auto: on when an input can go "
            "below the freezing range"),
    CFG_KEY("freezing_range_C", "°C", "[-8, -1]",
            "low < high ≤ 0, below the vaporisation range",
            "solidus, liquidus"),
    CFG_KEY("vaporisation", "–", "`auto`", "`auto`, `on`, `off`",
            "boiling of tissue water; auto: on except with `time.scheme: spectral`"),
    CFG_KEY("vaporisation_range_C", "°C", "[99, 100]",
            "80 ≤ low < high",
            "latent heat of vaporisation spread over this range"),
    CFG_KEY("perfusion_stasis_C", "°C", "-40", "[-200, 0]",
            "perfusion stops for good where T_min reached this (vascular stasis)"),
};

static const cfg_keytable physics_keys = CFG_KEYTABLE(physics_decl);

static const cfg_keydecl time_decl[] = {
    CFG_KEY("duration_s", "s", "required", "(0, 1e6]", "simulated time"),
    CFG_KEY("dt_s", "s", "`auto`", "`auto` or (0, 1e4] (explicit: ≤ stability limit)",
            "explicit: auto = `dt_safety` × stability limit; other schemes: auto = min(2 s, "
            "duration/10), chosen for accuracy; always rounded to land on `duration_s`"),
    CFG_KEY("dt_safety", "–", "0.9", "(0, 1]", "fraction of the explicit stability limit"),
    CFG_KEY("scheme", "–", "`explicit`", "`explicit`, `implicit`, `crank_nicolson`, `spectral`",
            "see \"Choosing a time scheme\""),
    CFG_KEY("solver_tolerance", "–", "1e-8", "[1e-14, 1e-2]",
            "implicit, crank_nicolson: CG stops at ‖r‖ ≤ tol max(‖r₀‖, 1e-4 ‖b‖), r₀ the "
            "step's initial residual"),
    CFG_KEY("max_iterations", "–", "500", "1..100000",
            "CG iterations per solve before the run fails (exit 5)"),
    CFG_KEY("preconditioner", "–", "`spectral`", "`spectral`, `multigrid`, `none`",
            "preconditioner of CG: FFT of the mean-coefficient operator, or a multigrid V-cycle "
            "on the operator itself"),
    CFG_KEY("rannacher_steps", "–", "1", "0..100",
            "Crank-Nicolson steps done as two backward-Euler half steps after each source switch"),
    CFG_KEY("phase_tolerance_C", "K", "0.01", "(1e-9, 10]",
            "implicit schemes with phase change: fixed-point tolerance per step"),
    CFG_KEY("phase_max_iterations", "–", "50", "1..1000",
            "implicit schemes with phase change: passes per step at most"),
    CFG_KEY("active_region", "–", "`auto`", "`auto`, `off`",
            "explicit runs: auto = properties and the enthalpy map (freezing runs), the enthalpy "
            "map and the perfusion-shutdown correction (heating runs) only on the row spans of "
            "tissue that is or was outside the liquid window (docs/PHASE_CHANGE.md \"Active "
            "region\"); off = every voxel every step (the reference it is tested against)"),
    CFG_KEY("multirate", "–", "`off`", "`off`, `auto`",
            "explicit freezing runs with the active region: auto = the tissue outside a box "
            "around the ice takes one long step (at its liquid stability limit) while the box "
            "takes the short steps the frozen tissue needs, the heat across the box faces "
            "exchanged exactly (docs/PHASE_CHANGE.md \"Multirate step\"); off = every voxel "
            "every step"),
};

static const cfg_keytable time_keys = CFG_KEYTABLE(time_decl);

static const cfg_keydecl source_decl[] = {
    CFG_KEY("name", "–", "`source<i>`", "text, unique among the sources",
            "names the source's outputs (`/sources/<name>`, JSON, series, zones)"),
    CFG_KEY("type", "–", "required",
            "`volumetric`, `fixed_temperature`, `rfa`, `mwa`, `cryo`, `vessel`",
            "the keys below are those of the first two; `rfa`, `mwa`, `cryo` and `vessel` keys: "
            "docs/RFA.md, docs/MWA.md, docs/CRYO.md, docs/VESSEL.md"),
    {"shape", "mm", "required", "a shape as above",
     "every voxel it overlaps, by volume fraction (below)", .variants = 1u << SOURCE_KEYS_BASIC},
    {"power_W", "W", "–", "[0, 1e4]", "volumetric: constant total power",
     .variants = 1u << SOURCE_KEYS_BASIC},
    {"temperature_C", "°C", "–", "[-200, 200]", "fixed_temperature: constant",
     .variants = 1u << SOURCE_KEYS_BASIC},
    {"schedule", "–", "–", "list of `{time_s, power_W}` or `{time_s, temperature_C}`",
     "piecewise linear, held at the ends; repeat a time for a step",
     .variants = 1u << SOURCE_KEYS_BASIC, .sub = &schedule_keys,
     .sub_prefix = "sources[i].schedule[j]."},
    {"on_s", "s", "0, 1e7", "[0, 1e7], off > on",
     "active window; outside it a source delivers nothing and holds no voxel (a "
     "fixed-temperature probe switched off is released)", .label = "`sources[i].on_s`, `off_s`"},
    {"off_s", "s", "1e7", "[0, 1e7], off > on", "end of the active window", .label = ""},
};

static const cfg_keytable source_keys = CFG_KEYTABLE(source_decl);

/* output.probes[i]: documented in the output.probes row (label ""), one table all the same */
static const cfg_keydecl probe_decl[] = {
    {"name", "–", "required", "1–40 of `A-Za-z0-9_.-`, unique, not `time_s`",
     "probe name; a line's points are `<name>_0` … `<name>_<points−1>`", .label = ""},
    {"position_mm", "mm", "–", "3 numbers in [-1e4, 1e4], inside the voxel centres", "a point",
     .label = ""},
    {"from_mm", "mm", "–", "3 numbers in [-1e4, 1e4], inside the voxel centres",
     "a line: first point", .label = ""},
    {"to_mm", "mm", "–", "3 numbers in [-1e4, 1e4], inside the voxel centres", "a line: last point",
     .label = ""},
    {"points", "–", "–", "2..256", "a line: number of equally spaced points, both ends included",
     .label = ""},
};

static const cfg_keytable probe_keys = CFG_KEYTABLE(probe_decl);

static const cfg_keydecl output_decl[] = {
    CFG_KEY("file", "–", "`<name>.h5`", "path ending in `.h5`",
            "relative to the working directory, like `-o`, which overrides it"),
    CFG_KEY("snapshot_interval_s", "s", "60", "[0, 1e7], 0 = none", "temperature snapshots"),
    CFG_KEY("monitor_interval_s", "s", "1", "[0, 1e7]",
            "T_max/T_min/time-above maps sampled at least this often (every step if dt is "
            "larger); a time map credits each sample's whole interval (right end point), so it "
            "may exceed the true time by one interval"),
    CFG_KEY("hot_thresholds_C", "°C", "[50, 55, 60]", "≤ 16 values",
            "isotherm volumes of T_max ≥ thr and time-at-or-above maps"),
    CFG_KEY("cold_thresholds_C", "°C", "[0, -20, -40]", "≤ 16 values", "T_min ≤ thr"),
    CFG_KEY("energy_balance", "–", "false", "bool",
            "exact energy accounting (one extra pass per step)"),
    {"probes", "–", "none", "list, ≤ 256 points in all",
     "temperature probes: `{name, position_mm: [x, y, z]}` a point, or `{name, from_mm, to_mm, "
     "points}` a line of `points` (2–256) equally spaced points including both ends, named "
     "`<name>_0` … `<name>_<points−1>`; name 1–40 of `A-Za-z0-9_.-`, unique, not `time_s` "
     "nor the name of a tip probe the run makes (`output.tip_probes`); "
     "every position inside the voxel centres (trilinear interpolation), else an error naming "
     "the key, value and extent", .sub = &probe_keys, .sub_prefix = "output.probes[i]."},
    CFG_KEY("tip_probes", "–", "true", "bool",
            "a probe `<source>_tip` (`<source>_<axis>_tip` with several) at every applicator "
            "tip (MWA antenna, RFA electrode, cryoprobe); left out when a tip lies outside the "
            "voxel centres"),
    CFG_KEY("growth_interval_s", "s", "10", "(0, 1e7]",
            "zone growth curves sampled every max(this, `monitor_interval_s`) and at the end"),
};

static const cfg_keytable output_keys = CFG_KEYTABLE(output_decl);

static const cfg_keydecl root_decl[] = {
    CFG_KEY("name", "–", "`ablasim`", "text without `/`, not `.` or `..`",
            "run name; default output `<name>.h5`"),
    CFG_KEY("tissues_file", "–", "`tissues.yaml`", "path", "property table (see below)"),
    CFG_KEY("devices_file", "–", "`devices.yaml` beside the tissues file", "path",
            "device presets for `sources[i].device` (docs/DEVICES.md); read only when a source "
            "names one"),
    {"tissues", "as in table", "–", "as in table",
     "override a tissue property or define a new tissue (all required properties then)",
     .label = "`tissues.<name>.<property>`"},
    {"grid", NULL, NULL, NULL, NULL, .label = "", .sub = &grid_keys, .sub_prefix = "grid."},
    {"physics", NULL, NULL, NULL, NULL, .label = "", .sub = &physics_keys,
     .sub_prefix = "physics."},
    {"boundary", NULL, NULL, NULL, NULL, .label = "", .sub = &boundary_keys,
     .sub_prefix = "boundary."},
    {"time", NULL, NULL, NULL, NULL, .label = "", .sub = &time_keys, .sub_prefix = "time."},
    {"sources", "–", "none", "list (≤ 64)", "heat sources", .sub = &source_keys,
     .sub_prefix = "sources[i]."},
    {"output", NULL, NULL, NULL, NULL, .label = "", .sub = &output_keys, .sub_prefix = "output."},
};

static const cfg_keytable root_keys = CFG_KEYTABLE(root_decl);

/* A name the scenario stores in a fixed buffer of cap bytes (the scenario's name: the default
 * result <name>.h5; a source's: its HDF5 group and JSON key): refused when longer, rather than
 * cut short, which made two long names alike without a word (an adversarial test, session 26:
 * two scenarios whose names differ after character 127 wrote the same default <name>.h5). */
static abl_status name_fits(cfg_node *parent, const char *key, const char *value, size_t cap,
                            abl_error *err)
{
    const size_t n = strlen(value);
    if (n < cap) return ABL_OK;
    char where[256], path[256];
    cfg_node *k = cfg_get(parent, key);
    return abl_fail(err, ABL_EINVAL,
                    "%s: '%s' = '%.40s...' is %zu characters long; at most %zu are allowed",
                    cfg_where(k ? k : parent, where, sizeof where),
                    cfg_path(k ? k : parent, path, sizeof path), value, n, cap - 1);
}

/* Source names must be distinct: each names the source's group in the result (/sources/<name>),
 * its JSON entry, its series and its zones, and `margin --source` and the plan pick a source by
 * it. Two entries with one name used to be told apart by a silent "_2" in the outputs. */
static abl_status name_unique(cfg_node *e, const abl_scenario *sc, size_t i, abl_error *err)
{
    for (size_t j = 0; j < i; j++) {
        if (strcmp(sc->sources[j].name, sc->sources[i].name)) continue;
        char where[256], path[256];
        cfg_node *k = cfg_get(e, "name");
        return abl_fail(err, ABL_EINVAL,
                        "%s: '%s%s' = %s%s is already the name of sources[%zu] (%s); each "
                        "source needs a name of its own (it names the source's outputs)",
                        cfg_where(k ? k : e, where, sizeof where),
                        cfg_path(k ? k : e, path, sizeof path), k ? "" : ".name",
                        sc->sources[i].name,
                        k ? "" : " (the default name)", j, sc->sources[j].where);
    }
    return ABL_OK;
}

static abl_status parse_bc(cfg_node *node, abl_bc *bc, abl_error *err)
{
    static const char *const types[] = {"fixed_temperature", "insulated", "convective"};
    static const cfg_range h_range = {0, 1e6, true, false, "W/(m^2 K)"};
    abl_status st;
    int t;
    if ((st = cfg_expect(node, CFG_MAP, true, "a mapping {type: ..., ...}", err)) ||
        (st = cfg_check_decl(node, &bc_keys, CFG_ALL_VARIANTS, err)) ||
        (st = cfg_get_enum(node, "type", true, 0, types, 3, &t, err)))
        return st;
    bc->type = (abl_bc_type)t;
    bc->h_W_m2K = 0;
    char where[600], path[300];
    if (bc->type == BC_INSULATED) {
        if (cfg_get(node, "temperature_C") || cfg_get(node, "h_W_per_m2K"))
            return abl_fail(err, ABL_EINVAL,
                            "%s: '%s': an insulated face takes no temperature_C or h_W_per_m2K",
                            cfg_where(node, where, sizeof where),
                            cfg_path(node, path, sizeof path));
        return ABL_OK;
    }
    if ((st = cfg_get_double(node, "temperature_C", true, 0, &temp_range, &bc->T_C, err)))
        return st;
    if (bc->type == BC_CONVECTIVE)
        return cfg_get_double(node, "h_W_per_m2K", true, 0, &h_range, &bc->h_W_m2K, err);
    if (cfg_get(node, "h_W_per_m2K"))
        return abl_fail(err, ABL_EINVAL,
                        "%s: '%s': h_W_per_m2K belongs to a convective face only",
                        cfg_where(node, where, sizeof where), cfg_path(node, path, sizeof path));
    return ABL_OK;
}

static abl_status parse_ex_vivo(cfg_node *phys, abl_scenario *sc, abl_error *err);

static abl_status parse_boundary(cfg_node *b, abl_scenario *sc, abl_error *err)
{
    static const char *const faces[] = {"x_min", "x_max", "y_min", "y_max", "z_min", "z_max"};
    abl_status st;
    abl_bc def = {BC_FIXED_TEMPERATURE, sc->T_arterial_C, 0};
    if ((st = cfg_expect(b, CFG_MAP, false, "a mapping of face -> condition", err)) ||
        (st = cfg_check_decl(b, &boundary_keys, CFG_ALL_VARIANTS, err)))
        return st;
    cfg_node *d = cfg_get(b, "default");
    if (d && (st = parse_bc(d, &def, err))) return st;
    for (int f = 0; f < 6; f++) {
        sc->bc[f] = def;
        cfg_node *n = cfg_get(b, faces[f]);
        if (n && (st = parse_bc(n, &sc->bc[f], err))) return st;
        /* ex vivo: the specimen's surroundings are at its temperature (a scenario written for
         * in vivo carries 37 C faces; the preset's point is to convert it in one key) */
        if (sc->ex_vivo) sc->bc[f].T_C = sc->T_ex_vivo_C; /* an insulated face ignores it */
    }
    return ABL_OK;
}

/* physics.ex_vivo_temperature_C (physics_decl): an ex vivo specimen. Every tissue loses its
 * perfusion and metabolic heat, the initial and arterial temperatures become the specimen's
 * (parse_boundary sets the faces). It wins over those values wherever they are given (the
 * scenario's physics, its tissue overrides, its faces): its purpose is to turn a scenario
 * written for in vivo into its ex vivo twin with one key (docs/VALIDATION.md presets). */
static abl_status parse_ex_vivo(cfg_node *phys, abl_scenario *sc, abl_error *err)
{
    static const cfg_range exv_range = {-50, 60, false, false, "degC"};
    if (!cfg_get(phys, "ex_vivo_temperature_C")) return ABL_OK;
    abl_status st = cfg_get_double(phys, "ex_vivo_temperature_C", true, 0, &exv_range,
                                   &sc->T_ex_vivo_C, err);
    if (st) return st;
    sc->ex_vivo = true;
    sc->T_arterial_C = sc->T_initial_C = sc->T_ex_vivo_C;
    for (int t = 0; t < sc->tissues.n; t++) {
        sc->tissues.t[t].perfusion_per_s = 0.0;
        sc->tissues.t[t].q_met_W_m3 = 0.0;
    }
    return ABL_OK;
}

/* Is u a temperature unit in degrees Celsius (as ablasim writes it, "degC", or a usual
 * spelling)? */
static bool celsius_units(const char *u)
{
    static const char *const ok[] = {"degC", "deg C", "C", "celsius", "degree_Celsius",
                                     "degrees_Celsius", "\xc2\xb0""C"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (!strcasecmp(u, ok[i])) return true;
    return false;
}

/* One field of an initial-field key into *f, every value within [lo, hi] (unit for the
 * message); *vmin: its lowest value. at: where the key was given, for the messages. */
static abl_status read_initial(const char *at, const char *path, const char *dset, double lo,
                               double hi, const char *unit, abl_field_file *f, double *vmin,
                               abl_error *err)
{
    abl_error e = {0};
    /* a NIfTI image (docs/NIFTI.md: placed by its affine, re-indexed into RAS+ grid order, its
     * spacing and origin checked against the grid like an HDF5 field's attributes) */
    abl_status st = nifti_suffix(path) ? nifti_read_scalar(path, f, NULL, &e)
                                        : mesh_read_field(path, dset, NULL, f, &e);
    if (st) return abl_fail(err, st, "%s: %s", at, e.msg);
    /* HDF5 only (a NIfTI image says neither): an unfinished result, or a dataset whose units
     * say it is no temperature, would start the run from something else than it says (both
     * were taken silently: an incomplete first ablation as a second ablation's state, and
     * /grid/labels as 0, 1, 2 degC; an adversarial test, session 26). A file without the
     * attribute (another program's field, the planner's coarse state) is not a result. */
    if (!nifti_suffix(path)) {
        if (f->file_complete == 0)
            return abl_fail(err, ABL_EINVAL,
                            "%s: %s is an incomplete ablasim result (root attribute complete = "
                            "0: its run stopped on a fault); a run starts only from a finished "
                            "one",
                            at, path);
        if (!strcmp(unit, "degC") && f->units[0] && !celsius_units(f->units))
            return abl_fail(err, ABL_EINVAL,
                            "%s: %s, dataset %s has units '%s', not a temperature in degC; "
                            "name a temperature dataset (e.g. %s)",
                            at, path, dset, f->units, H5_T_FINAL);
    }
    const size_t nx = (size_t)f->dims[0], nxy = nx * (size_t)f->dims[1];
    const size_t n = nxy * (size_t)f->dims[2];
    *vmin = INFINITY;
    for (size_t c = 0; c < n; c++) {
        const double v = f->values[c];
        *vmin = fmin(*vmin, v);
        if (v >= lo && v <= hi) continue;
        const size_t i = c % nx, j = (c / nx) % (size_t)f->dims[1], k = c / nxy;
        if (nifti_suffix(path))
            /* a NIfTI file's voxel order may be flipped or permuted against the grid's: the
             * world position is what a viewer shows (found by review, session 23) */
            return abl_fail(err, ABL_EINVAL,
                            "%s: %s: %g %s at world (x, y, z) = (%.2f, %.2f, %.2f) mm (RAS+; "
                            "grid voxel %zu, %zu, %zu); every value must be finite and within "
                            "[%g, %g] %s",
                            at, path, v, unit, f->origin_mm[0] + (double)i * f->spacing_mm[0],
                            f->origin_mm[1] + (double)j * f->spacing_mm[1],
                            f->origin_mm[2] + (double)k * f->spacing_mm[2], i, j, k, lo, hi,
                            unit);
        return abl_fail(err, ABL_EINVAL,
                        "%s: %s, dataset %s: %g %s at voxel (i, j, k) = (%zu, %zu, %zu); "
                        "every value must be finite and within [%g, %g] %s",
                        at, path, dset, v, unit, i, j, k, lo, hi, unit);
    }
    return ABL_OK;
}

/* physics.initial_temperature_file and physics.initial_state_file (physics_decl): the fields
 * are read here, once per scenario load, so that physics.freezing: auto sees the lowest
 * temperature; sim_create checks their dims and geometry against the grid (build_grid) and
 * fields.c copies them into the maps they start. */
/* An optional running map of an initial state file (values NULL where the file has none): the
 * size of the state's T_final_C, values finite and >= 0, and 0 or 1 where flag; a value
 * outside is refused naming the voxel, with allowed (what the map may hold) after it. */
static abl_status read_state_map(const char *at, const char *path, const char *dset, bool flag,
                                 const char *allowed, const abl_field_file *T0,
                                 abl_field_file *out, abl_error *err)
{
    abl_error e = {0};
    const abl_mesh_read_opts opt = {.optional = true};
    abl_status st = mesh_read_field(path, dset, &opt, out, &e);
    if (st) return abl_fail(err, st, "%s: %s", at, e.msg);
    if (!out->values) return ABL_OK;
    for (int d = 0; d < 3; d++)
        if (out->dims[d] != T0->dims[d])
            return abl_fail(err, ABL_EINVAL, "%s: %s: %s and %s differ in size", at, path, dset,
                            H5_T_FINAL);
    const size_t n = (size_t)out->dims[0] * (size_t)out->dims[1] * (size_t)out->dims[2];
    for (size_t c = 0; c < n; c++) {
        const double v = out->values[c];
        if (flag ? !(v == 0.0 || v == 1.0) : !(isfinite(v) && v >= 0.0))
            return abl_fail(err, ABL_EINVAL, "%s: %s, dataset %s: %g at voxel %zu; %s", at, path,
                            dset, v, c, allowed);
    }
    return ABL_OK;
}

static abl_status parse_initial_field(cfg_node *phys, abl_scenario *sc, const char *base_dir,
                                      abl_error *err)
{
    const char *file = NULL, *dset = NULL, *state = NULL;
    abl_status st;
    if ((st = cfg_get_string(phys, "initial_temperature_file", false, NULL, &file, err)) ||
        (st = cfg_get_string(phys, "initial_temperature_dataset", false, H5_T_FINAL, &dset,
                             err)) ||
        (st = cfg_get_string(phys, "initial_state_file", false, NULL, &state, err)))
        return st;
    char where[600];
    cfg_node *fnode = cfg_get(phys, "initial_temperature_file");
    cfg_node *snode = cfg_get(phys, "initial_state_file");
    cfg_node *dn = cfg_get(phys, "initial_temperature_dataset");
    if (!file && dn)
        return abl_fail(err, ABL_EINVAL,
                        state ? "%s: 'physics.initial_temperature_dataset' applies to "
                                "'physics.initial_temperature_file' only; an initial_state_file "
                                "is an ablasim result, read at its /fields datasets"
                              : "%s: 'physics.initial_temperature_dataset' names a dataset of "
                                "'physics.initial_temperature_file', which is not given",
                        cfg_where(dn, where, sizeof where));
    if (!file && !state) return ABL_OK;
    const char *key = state ? "initial_state_file" : "initial_temperature_file";
    cfg_node *node = state ? snode : fnode;
    const char *other = state && file                            ? "initial_temperature_file"
                        : cfg_get(phys, "initial_temperature_C")   ? "initial_temperature_C"
                        : cfg_get(phys, "ex_vivo_temperature_C") ? "ex_vivo_temperature_C"
                                                                   : NULL;
    if (other)
        return abl_fail(err, ABL_EINVAL,
                        "%s: 'physics.%s' and 'physics.%s' both set the initial temperature; "
                        "give one of them",
                        cfg_where(node, where, sizeof where), key, other);
    const char *name = state ? state : file;
    if (!name[0])
        return abl_fail(err, ABL_EINVAL, "%s: 'physics.%s' is empty",
                        cfg_where(node, where, sizeof where), key);
    if (nifti_suffix(name) && (state || dn))
        return abl_fail(err, ABL_EINVAL,
                        state ? "%s: 'physics.initial_state_file' %s is a NIfTI image; a state is "
                                "an ablasim result (.h5) with its running maps; a NIfTI "
                                "temperature map goes in 'physics.initial_temperature_file'"
                              : "%s: 'physics.initial_temperature_dataset' names an HDF5 dataset, "
                                "but 'physics.initial_temperature_file' %s is a NIfTI image, "
                                "which holds one; leave the dataset out",
                        cfg_where(state ? node : dn, where, sizeof where), name);
    sc->initial_T_path = resolve(base_dir, name);
    sc->initial_T_dataset = xstrdup(state                 ? H5_T_FINAL
                                    : nifti_suffix(name) ? "(NIfTI image)"
                                                          : dset);
    if (!sc->initial_T_path || !sc->initial_T_dataset)
        return abl_fail(err, ABL_ENOMEM, "out of memory");
    sc->initial_is_state = state != NULL;
    /* where the key was given and, in a file, its name (a --set origin already names it) */
    char at[700];
    snprintf(at, sizeof at, "%s%s%s", cfg_where(node, where, sizeof where),
             node->line > 0 ? ": physics." : "", node->line > 0 ? key : "");
    snprintf(sc->initial_T_where, sizeof sc->initial_T_where, "%s", at);
    /* a temperature the user sets: the range of initial_temperature_C; a previous result's
     * temperatures: the range the run's monitor accepts (sim.c T_SANE_*: beyond it a run stops
     * as diverged, so a file outside it is refused here, naming the voxel) */
    const double tlo = state ? -273.0 : temp_range.lo, thi = state ? 1000.0 : temp_range.hi;
    if ((st = read_initial(at, sc->initial_T_path, sc->initial_T_dataset, tlo, thi, "degC",
                           &sc->initial_T, &sc->initial_T_min_C, err)))
        return st;
    if (state) {
        static const char *const ds[ABL_INITIAL_MAPS] = {H5_T_MAX, H5_T_MIN, H5_OMEGA, H5_CEM43};
        static const char *const unit[ABL_INITIAL_MAPS] = {"degC", "degC", "(Omega)", "min"};
        double unused;
        for (int m = 0; m < ABL_INITIAL_MAPS; m++)
            if ((st = read_initial(at, sc->initial_T_path, ds[m], m < 2 ? tlo : 0.0,
                                   m < 2 ? thi : DBL_MAX, unit[m], &sc->initial_maps[m],
                                   &unused, err)))
                return st;
        /* one grid: the maps' sizes, and their geometry where stated, are T_final's (the
         * grid check in sim.c reads T_final's) */
        const abl_field_file *T0 = &sc->initial_T;
        for (int m = 0; m < ABL_INITIAL_MAPS; m++) {
            const abl_field_file *f = &sc->initial_maps[m];
            for (int d = 0; d < 3; d++)
                if (f->dims[d] != T0->dims[d] ||
                    (f->has_spacing && T0->has_spacing &&
                     !(fabs(f->spacing_mm[d] - T0->spacing_mm[d]) <= 1e-6 * T0->spacing_mm[d])) ||
                    (f->has_origin && T0->has_origin && T0->has_spacing &&
                     !(fabs(f->origin_mm[d] - T0->origin_mm[d]) <= 1e-6 * T0->spacing_mm[d])))
                    return abl_fail(err, ABL_EINVAL,
                                    "%s: %s: %s and %s are not on the same grid (size, "
                                    "spacing_mm or origin_mm differ)",
                                    at, sc->initial_T_path, ds[m], H5_T_FINAL);
        }
        /* the needle track of the first ablation, where the result has one: the margin
         * analysis counts it as ablated, and the first needle's cold track inside the zone
         * must not turn into an unablated channel of the second run's verdict */
        static const char nonneg[] = "allowed: finite and >= 0";
        const char *sp = sc->initial_T_path;
        if ((st = read_state_map(at, sp, H5_APPLICATOR, true, "a needle track is 0 or 1", T0,
                                 &sc->initial_applicator, err)))
            return st;
        /* the other running maps the state has: the time maps of this run's thresholds (a
         * threshold the first run did not track starts at 0: this run only, and the result
         * says so), the freeze counts and their hysteresis flag */
        char dset[160];
        for (int h = 0; h < sc->n_hot + sc->n_cold; h++) {
            const bool hot = h < sc->n_hot;
            const int i = hot ? h : h - sc->n_hot;
            if (hot)
                snprintf(dset, sizeof dset, H5_FIELDS "/" H5_FIELD_TIME_ABOVE_FMT, sc->hot_C[i]);
            else
                snprintf(dset, sizeof dset, H5_FIELDS "/" H5_FIELD_TIME_BELOW_FMT, sc->cold_C[i]);
            if ((st = read_state_map(at, sp, dset, false, nonneg, T0,
                                     hot ? &sc->initial_hot[i] : &sc->initial_cold[i], err)))
                return st;
        }
        if ((st = read_state_map(at, sp, H5_FREEZE_CYCLES, false, nonneg, T0,
                                 &sc->initial_freeze_cycles, err)) ||
            (st = read_state_map(at, sp, H5_FROZEN_STATE, true, "allowed: 0 or 1", T0,
                                 &sc->initial_frozen_state, err)))
            return st;
        /* the state's tissue layout, for the note a different one gets (sim.c build_grid);
         * a file without /grid/labels (not written by a run) has none to compare */
        {
            abl_error e = {0};
            const abl_mesh_read_opts lo = {.optional = true, .names_dataset = H5_MATERIAL_NAMES};
            if ((st = mesh_read_field(sp, H5_LABELS, &lo, &sc->initial_layout, &e)))
                return abl_fail(err, st, "%s: %s", at, e.msg);
            for (int d = 0; d < 3 && sc->initial_layout.values; d++)
                if (sc->initial_layout.dims[d] != T0->dims[d])
                    return abl_fail(err, ABL_EINVAL,
                                    "%s: %s: %s and %s differ in size", at, sp, H5_LABELS,
                                    H5_T_FINAL);
        }
        /* the running maps bound the temperature (as in a checkpoint) */
        const abl_field_file *T = &sc->initial_T;
        const size_t nx = (size_t)T->dims[0], nxy = nx * (size_t)T->dims[1];
        const size_t n = nxy * (size_t)T->dims[2];
        const double *tmax = sc->initial_maps[0].values, *tmin = sc->initial_maps[1].values;
        for (size_t c = 0; c < n; c++)
            if (!(tmin[c] <= T->values[c] && T->values[c] <= tmax[c]))
                return abl_fail(err, ABL_EINVAL,
                                "%s: %s: at voxel (i, j, k) = (%zu, %zu, %zu) %s = %g, %s = %g "
                                "and %s = %g degC; a result has T_min <= T_final <= T_max",
                                at, sc->initial_T_path, c % nx, (c / nx) % (size_t)T->dims[1],
                                c / nxy, H5_T_MIN, tmin[c], H5_T_FINAL, T->values[c], H5_T_MAX,
                                tmax[c]);
    }
    return ABL_OK;
}

static abl_status tissue_ref(cfg_node *map, const char *key, const abl_scenario *sc, int *out,
                             abl_error *err)
{
    const char *name;
    abl_status st = cfg_get_string(map, key, true, NULL, &name, err);
    if (st) return st;
    int t = tissue_table_find(&sc->tissues, name);
    if (t < 0) {
        char where[600], path[300], list[700];
        size_t pos = 0;
        list[0] = '\0';
        for (int i = 0; i < sc->tissues.n && pos < sizeof list; i++) {
            int w = snprintf(list + pos, sizeof list - pos, "%s%s", i ? ", " : "",
                             sc->tissues.t[i].name);
            if (w < 0) break;
            pos += (size_t)w;
        }
        cfg_node *n = cfg_get(map, key);
        return abl_fail(err, ABL_EINVAL, "%s: '%s' = %s: no such tissue in %s; known: %s",
                        cfg_where(n, where, sizeof where), cfg_path(n, path, sizeof path), name,
                        sc->tissues_path, list);
    }
    *out = t;
    return ABL_OK;
}

static abl_status parse_grid(cfg_node *g, abl_scenario *sc, const char *base_dir, abl_error *err)
{
    static const cfg_range sp_range = {0, ABL_GRID_MAX_SPACING_MM, true, false, "mm"};
    static const cfg_range org_range = {-ABL_GRID_MAX_ORIGIN_MM, ABL_GRID_MAX_ORIGIN_MM, false,
                                        false, "mm"};
    abl_status st;
    char where[600], path[300];
    if ((st = cfg_expect(g, CFG_MAP, true, "the 'grid' mapping", err))) {
        if (!g) return abl_fail(err, ABL_EINVAL, "%s: missing the 'grid' section", sc->path);
        return st;
    }
    if ((st = cfg_check_decl(g, &grid_keys, CFG_ALL_VARIANTS, err))) return st;

    const char *mesh = NULL;
    if ((st = cfg_get_string(g, "mesh", false, NULL, &mesh, err))) return st;
    cfg_node *dims = cfg_get(g, "dims");
    /* the conflicts below are named where the conflicting key was given, and where the mesh
     * was (a --set of one of them blamed the file's 'grid:' line; QA, session 29) */
    char mesh_where[600];
    if (mesh) cfg_where(cfg_get(g, "mesh"), mesh_where, sizeof mesh_where);
    if (mesh && dims)
        return abl_fail(err, ABL_EINVAL,
                        "%s: 'grid.dims' cannot be combined with 'grid.mesh' (given at %s): a "
                        "mesh file brings its own size",
                        cfg_where(dims, where, sizeof where), mesh_where);
    if (mesh) {
        sc->mesh_path = resolve(base_dir, mesh);
        if (!sc->mesh_path) return abl_fail(err, ABL_ENOMEM, "out of memory");
        for (int i = 0; i < 256; i++) sc->mesh_label_tissue[i] = -1;
        cfg_node *labels = cfg_get(g, "labels");
        if (!labels)
            return abl_fail(err, ABL_EINVAL,
                            "%s: 'grid.mesh' needs 'grid.labels', a mapping of label number -> "
                            "tissue name, e.g. {0: fat, 1: liver, 2: tumour}",
                            cfg_where(g, where, sizeof where));
        if ((st = cfg_expect(labels, CFG_MAP, true, "a mapping label number -> tissue", err)))
            return st;
        for (size_t i = 0; i < labels->n; i++) {
            cfg_node *e = labels->items[i];
            char *end;
            errno = 0;
            long v = strtol(e->key, &end, 10);
            if (end == e->key || *end || v < 0 || v > 255)
                return abl_fail(err, ABL_EINVAL,
                                "%s: label '%s' in grid.labels: must be an integer 0..255",
                                cfg_where(e, where, sizeof where), e->key);
            if (sc->mesh_label_tissue[v] >= 0)
                return abl_fail(err, ABL_EINVAL,
                                "%s: label %ld appears twice in grid.labels (as '%s')",
                                cfg_where(e, where, sizeof where), v, e->key);
            if ((st = tissue_ref(labels, e->key, sc, &sc->mesh_label_tissue[v], err))) return st;
        }
        if (cfg_get(g, "spacing_mm"))
            return abl_fail(err, ABL_EINVAL,
                            "%s: 'grid.spacing_mm' cannot be combined with 'grid.mesh' (given at "
                            "%s): the mesh file defines the spacing",
                            cfg_where(cfg_get(g, "spacing_mm"), where, sizeof where), mesh_where);
    } else {
        double d[3];
        static const cfg_range dim_range = {1, ABL_GRID_MAX_DIM, false, false, "voxels"};
        if (!dims)
            return abl_fail(err, ABL_EINVAL,
                            "%s: 'grid' needs either 'dims' (with 'spacing_mm') or 'mesh'",
                            cfg_where(g, where, sizeof where));
        if ((st = cfg_get_vec(g, "dims", true, NULL, 3, &dim_range, d, err))) return st;
        for (int i = 0; i < 3; i++) {
            if (d[i] != (double)(int)d[i]) /* named where that number was given (a --set of
                                            * grid.dims.0 blamed the file's line) */
                return abl_fail(err, ABL_EINVAL, "%s: 'grid.dims[%d]' = %g: must be whole numbers",
                                cfg_where(dims->kind == CFG_SEQ && (size_t)i < dims->n
                                              ? dims->items[i]
                                              : dims,
                                          where, sizeof where),
                                i, d[i]);
            sc->dims[i] = (int)d[i];
        }
        double sp[3];
        if ((st = cfg_get_vec(g, "spacing_mm", true, NULL, 3, &sp_range, sp, err))) return st;
        for (int i = 0; i < 3; i++) sc->spacing_m[i] = sp[i] * 1e-3;
        if (cfg_get(g, "labels"))
            return abl_fail(err, ABL_EINVAL, "%s: 'grid.labels' is only used with 'grid.mesh'",
                            cfg_where(cfg_get(g, "labels"), where, sizeof where));
    }
    double org[3];
    sc->origin_given = cfg_get(g, "origin_mm") != NULL;
    if (mesh && sc->origin_given)
        return abl_fail(err, ABL_EINVAL,
                        "%s: 'grid.origin_mm' cannot be combined with 'grid.mesh' (given at "
                        "%s): the mesh file places the grid; moving it would misalign it with "
                        "the image",
                        cfg_where(cfg_get(g, "origin_mm"), where, sizeof where), mesh_where);
    if ((st = cfg_get_vec(g, "origin_mm", false, NULL, 3, &org_range, org, err))) return st;
    for (int i = 0; i < 3; i++) sc->origin_m[i] = org[i] * 1e-3;

    sc->background_tissue = -1;
    if (mesh && cfg_get(g, "background"))
        return abl_fail(err, ABL_EINVAL,
                        "%s: 'grid.background' is not used with 'grid.mesh': map every label of "
                        "the mesh in grid.labels (an unmapped label is an error, never a silent "
                        "default)",
                        cfg_where(cfg_get(g, "background"), where, sizeof where));
    if (!mesh && (st = tissue_ref(g, "background", sc, &sc->background_tissue, err))) return st;
    cfg_node *shapes = cfg_get(g, "shapes");
    if ((st = cfg_expect(shapes, CFG_SEQ, false, "a list of shapes", err))) return st;
    if (shapes && shapes->n) {
        sc->regions = calloc(shapes->n, sizeof *sc->regions);
        if (!sc->regions) return abl_fail(err, ABL_ENOMEM, "out of memory");
        for (size_t i = 0; i < shapes->n; i++) {
            cfg_node *s = shapes->items[i];
            if ((st = shape_parse(s, &grid_shape_keys, &sc->regions[i].shape, err)) ||
                (st = tissue_ref(s, "tissue", sc, &sc->regions[i].tissue, err)))
                return st;
            snprintf(sc->regions[i].where, sizeof sc->regions[i].where, "%s: '%s'",
                     cfg_where(s, where, sizeof where), cfg_path(s, path, sizeof path));
            sc->nregions++;
        }
    }
    return ABL_OK;
}

/* The key table of a source type that takes device presets (device.h). */
static const cfg_keytable *device_keys_of(const char *type)
{
    if (strcmp(type, "rfa") && strcmp(type, "mwa") && strcmp(type, "cryo")) return NULL;
    const abl_source_type_info *info = source_type_find(type);
    return info ? info->keys : NULL;
}

/* `device: NAME` of entry e (a modality that takes presets): the devices file is read on the
 * first use (*table), the preset looked up, checked against the type and grafted into e where
 * e does not set the key; src records what was applied. */
static abl_status apply_device(cfg_node *e, const abl_source_type_info *info, abl_scenario *sc,
                               abl_device_table *table, abl_source_cfg *src, abl_error *err)
{
    cfg_node *dn = cfg_get(e, "device");
    if (!dn) return ABL_OK;
    char where[600], path[300];
    abl_status st;
    if (!device_keys_of(info->type))
        return abl_fail(err, ABL_EINVAL,
                        "%s: '%s': device presets exist for rfa, mwa and cryo sources only",
                        cfg_where(dn, where, sizeof where), cfg_path(dn, path, sizeof path));
    if (!table->path) {
        /* the bytes the presets come from, for a resume's check (checkpoint.c); hashed here,
         * when they are read, not when a checkpoint is written (review, session 23) */
        const uint64_t h = abl_fnv1a_file(ABL_FNV1A_INIT, sc->devices_path, false, NULL);
        sc->devices_digest = h ? h : 1;
        st = device_table_load(sc->devices_path, device_keys_of, table, err);
        if (st) {
            /* say which key made the devices file necessary */
            char msg[sizeof err->msg];
            snprintf(msg, sizeof msg, "%s", err->msg);
            return abl_fail(err, st, "%s (devices_file, read for '%s' at %s)", msg,
                            cfg_path(dn, path, sizeof path), cfg_where(dn, where, sizeof where));
        }
    }
    const abl_device *dev;
    if ((st = device_lookup(e, info->type, table, &dev, err))) return st;
    snprintf(src->device, sizeof src->device, "%s", dev->name);
    src->ndevice_values = dev->nvalues;
    if ((st = device_apply(e, dev, src->device_applied, err))) return st;
    for (int i = 0; i < dev->nvalues; i++) {
        src->device_values[i] = dev->values[i];
        src->device_values[i].node = NULL; /* the table is freed after the sources */
    }
    return ABL_OK;
}

/* A registered modality: common keys here, its own through its parser. */
static abl_status parse_modality(cfg_node *e, const abl_source_type_info *info, abl_scenario *sc,
                                 abl_device_table *devices, abl_source_cfg *src, abl_error *err)
{
    const char *allowed[65];
    size_t na = 0;
    cfg_decl_names(&source_keys, SOURCE_KEYS_MODALITY, allowed, &na, 64);
    if (info->keys) cfg_decl_names(info->keys, CFG_ALL_VARIANTS, allowed, &na, 64);
    allowed[na] = NULL;
    abl_status st = cfg_check_keys(e, allowed, err);
    if (st || (st = apply_device(e, info, sc, devices, src, err))) return st;
    src->type = SRC_MODALITY;
    src->modality = info;
    return info->parse(e, sc, &src->params, err);
}

static abl_status parse_source_list(cfg_node *list, abl_scenario *sc, abl_device_table *devices,
                                    abl_error *err)
{
    static const char *const types[] = {"volumetric", "fixed_temperature"};
    static const cfg_range power_range = {0, 1e4, false, false, "W"};
    abl_status st;
    char where[600], path[300];
    if (!list) return ABL_OK;
    if ((st = cfg_expect(list, CFG_SEQ, true, "a list of sources", err))) return st;
    if (list->n == 0) return ABL_OK;
    if (list->n > 64)
        return abl_fail(err, ABL_EINVAL, "%s: %zu sources; at most 64 are allowed",
                        cfg_where(list, where, sizeof where), list->n);
    sc->sources = calloc(list->n, sizeof *sc->sources);
    if (!sc->sources) return abl_fail(err, ABL_ENOMEM, "out of memory");
    for (size_t i = 0; i < list->n; i++) {
        cfg_node *e = list->items[i];
        abl_source_cfg *src = &sc->sources[i];
        int type;
        const char *name;
        static const cfg_range when = {0, 1e7, false, false, "s"};
        if ((st = cfg_expect(e, CFG_MAP, true, "a mapping {type: ..., shape: ...}", err)))
            return st;
        const char *tname = NULL;
        cfg_node *tn = cfg_get(e, "type");
        if (tn && tn->kind == CFG_SCALAR) tname = tn->value;
        const abl_source_type_info *info = tname ? source_type_find(tname) : NULL;
        if (info) {
            const char *nm;
            char defn[32];
            snprintf(defn, sizeof defn, "source%zu", i);
            if ((st = cfg_get_string(e, "name", false, defn, &nm, err)) ||
                (st = name_fits(e, "name", nm, sizeof src->name, err)))
                return st;
            snprintf(src->name, sizeof src->name, "%s", nm);
            cfg_where(e, src->where, sizeof src->where);
            if ((st = name_unique(e, sc, i, err))) return st;
            if ((st = cfg_get_double(e, "on_s", false, 0.0, &when, &src->on_s, err)) ||
                (st = cfg_get_double(e, "off_s", false, 1e7, &when, &src->off_s, err)) ||
                (st = parse_modality(e, info, sc, devices, src, err)))
                return st;
            sc->nsources++;
            continue;
        }
        if (tn && tn->kind == CFG_SCALAR && strcmp(tname, types[0]) && strcmp(tname, types[1])) {
            char names[400];
            source_type_names(names, sizeof names);
            return abl_fail(err, ABL_EINVAL, "%s: '%s' = %s is not allowed; use one of: %s",
                            cfg_where(tn, where, sizeof where), cfg_path(tn, path, sizeof path),
                            tname, names);
        }
        if ((st = cfg_check_decl(e, &source_keys, SOURCE_KEYS_BASIC, err)) ||
            (st = cfg_get_enum(e, "type", true, 0, types, 2, &type, err)))
            return st;
        char defname[32];
        snprintf(defname, sizeof defname, "source%zu", i);
        if ((st = cfg_get_string(e, "name", false, defname, &name, err)) ||
            (st = name_fits(e, "name", name, sizeof src->name, err)))
            return st;
        snprintf(src->name, sizeof src->name, "%s", name);
        src->type = (abl_source_type)type;
        cfg_where(e, src->where, sizeof src->where);
        if ((st = name_unique(e, sc, i, err))) return st;
        if ((st = cfg_get_double(e, "on_s", false, 0.0, &when, &src->on_s, err)) ||
            (st = cfg_get_double(e, "off_s", false, 1e7, &when, &src->off_s, err)))
            return st;
        if (!(src->off_s > src->on_s)) {
            /* named where off_s was given (or the source, for its default), and where on_s was:
             * both may come from --set (QA, session 29: the file's line was blamed) */
            cfg_node *off_n = cfg_get(e, "off_s"), *on_n = cfg_get(e, "on_s");
            char on_where[600] = "its default";
            if (on_n) cfg_where(on_n, on_where, sizeof on_where);
            return abl_fail(err, ABL_EINVAL,
                            "%s: '%s': off_s = %g must be later than on_s = %g (given at %s)",
                            cfg_where(off_n ? off_n : e, where, sizeof where),
                            cfg_path(e, path, sizeof path), src->off_s, src->on_s, on_where);
        }
        cfg_node *shape = cfg_get(e, "shape");
        if (!shape)
            return abl_fail(err, ABL_EINVAL, "%s: '%s' needs a 'shape' (sphere, ellipsoid, "
                            "cylinder or box)", cfg_where(e, where, sizeof where),
                            cfg_path(e, path, sizeof path));
        if ((st = shape_parse(shape, NULL, &src->shape, err))) return st;
        const char *vkey = type == SRC_VOLUMETRIC ? "power_W" : "temperature_C";
        const char *wrong = type == SRC_VOLUMETRIC ? "temperature_C" : "power_W";
        const cfg_range *vr = type == SRC_VOLUMETRIC ? &power_range : &temp_range;
        if (cfg_get(e, wrong))
            return abl_fail(err, ABL_EINVAL, "%s: '%s': a %s source takes %s, not %s",
                            cfg_where(e, where, sizeof where), cfg_path(e, path, sizeof path),
                            types[type], vkey, wrong);
        cfg_node *sched = cfg_get(e, "schedule");
        cfg_node *val = cfg_get(e, vkey);
        if (!!sched == !!val)
            return abl_fail(err, ABL_EINVAL,
                            "%s: '%s' needs exactly one of '%s' (constant) or 'schedule' (list "
                            "of {time_s, %s})",
                            cfg_where(e, where, sizeof where), cfg_path(e, path, sizeof path),
                            vkey, vkey);
        if (sched) {
            if ((st = schedule_parse(sched, vkey, vr, &src->schedule, err))) return st;
        } else {
            double v;
            if ((st = cfg_get_double(e, vkey, true, 0, vr, &v, err)) ||
                (st = schedule_constant(v, &src->schedule, err)))
                return st;
        }
        sc->nsources++;
    }
    return ABL_OK;
}

/* The sources; the devices file (device presets) lives only while they are parsed. */
static abl_status parse_sources(cfg_node *list, abl_scenario *sc, abl_error *err)
{
    abl_device_table devices = {0};
    abl_status st = parse_source_list(list, sc, &devices, err);
    device_table_free(&devices);
    return st;
}

static abl_status parse_thresholds(cfg_node *map, const char *key, const double *def, int ndef,
                                   double *out, int *n, abl_error *err)
{
    cfg_node *node = cfg_get(map, key);
    if (!node) {
        memcpy(out, def, (size_t)ndef * sizeof *def);
        *n = ndef;
        return ABL_OK;
    }
    char where[600], path[300];
    if (node->kind != CFG_SEQ || node->n > ABL_MAX_THRESHOLDS)
        return abl_fail(err, ABL_EINVAL, "%s: '%s' must be a list of at most %d temperatures in C",
                        cfg_where(node, where, sizeof where), cfg_path(node, path, sizeof path),
                        ABL_MAX_THRESHOLDS);
    for (size_t i = 0; i < node->n; i++) {
        abl_status st = cfg_node_double(node->items[i], &temp_range, &out[i], err);
        if (st) return st;
        /* each threshold names its own output datasets (printed with %g): keep them distinct */
        for (size_t q = 0; q < i; q++)
            if (fabs(out[q] - out[i]) < 1e-3)
                return abl_fail(err, ABL_EINVAL,
                                "%s: '%s' lists %g and %g: thresholds must differ by at least "
                                "0.001 C",
                                cfg_where(node->items[i], where, sizeof where),
                                cfg_path(node, path, sizeof path), out[q], out[i]);
    }
    *n = (int)node->n;
    return ABL_OK;
}

/* A probe name becomes an HDF5 dataset name (/probes/<name>) and a JSON key: letters, digits
 * and "_.-", not "time_s" (the probes' time axis). */
/* A name that stays in its directory: not empty, no '/', not "." or "..". */
static bool local_name_ok(const char *n)
{
    return n[0] && !strchr(n, '/') && strcmp(n, ".") != 0 && strcmp(n, "..") != 0;
}

/* A name that becomes a file or dataset name: 1 to cap-1 of A-Za-z0-9_.-, not "." or "..". */
static bool plain_name_ok(const char *n, size_t cap)
{
    size_t len = strlen(n);
    if (len == 0 || len >= cap || !local_name_ok(n)) return false;
    for (const char *p = n; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr("_.-", *p)))
            return false;
    return true;
}

static bool probe_name_ok(const char *n)
{
    return plain_name_ok(n, ABL_PROBE_NAME_LEN) && strcmp(n, "time_s") != 0;
}

/* Name of point q of probe p (a line's points are <name>_<q>). */
static void probe_point_name(const abl_probe_cfg *p, int q, char *buf, size_t len)
{
    if (p->line)
        snprintf(buf, len, "%s_%d", p->name, q);
    else
        snprintf(buf, len, "%s", p->name);
}

/* output.probes: a list of {name, position_mm} points and {name, from_mm, to_mm, points} lines.
 * Whether a position lies inside the grid is checked when the grid is known (runlog.c: a mesh
 * brings its own extent), so each entry keeps where its positions came from. */
static abl_status parse_probes(cfg_node *list, abl_scenario *sc, abl_error *err)
{
    static const cfg_range pos_range = {-1e4, 1e4, false, false, "mm"};
    char where[600], path[300];
    abl_status st;
    if (!list) return ABL_OK;
    if ((st = cfg_expect(list, CFG_SEQ, true,
                         "a list of probes {name, position_mm} or {name, from_mm, to_mm, points}",
                         err)))
        return st;
    if (list->n == 0) return ABL_OK;
    if (list->n > ABL_MAX_PROBES)
        return abl_fail(err, ABL_EINVAL, "%s: '%s' has %zu probes: allowed at most %d probe points",
                        cfg_where(list, where, sizeof where), cfg_path(list, path, sizeof path),
                        list->n, ABL_MAX_PROBES);
    sc->probes = calloc(list->n, sizeof *sc->probes);
    if (!sc->probes) return abl_fail(err, ABL_ENOMEM, "out of memory");
    for (size_t i = 0; i < list->n; i++) {
        cfg_node *e = list->items[i];
        abl_probe_cfg *p = &sc->probes[i];
        const char *name;
        if ((st = cfg_expect(e, CFG_MAP, true,
                             "a mapping {name, position_mm} or {name, from_mm, to_mm, points}",
                             err)) ||
            (st = cfg_check_decl(e, &probe_keys, CFG_ALL_VARIANTS, err)) ||
            (st = cfg_get_string(e, "name", true, NULL, &name, err)))
            return st;
        if (!probe_name_ok(name)) {
            cfg_node *n = cfg_get(e, "name");
            return abl_fail(err, ABL_EINVAL,
                            "%s: '%s' = %s: allowed 1 to %d letters, digits, '_', '.' or '-', "
                            "not 'time_s', '.' or '..' (the name of the dataset "
                            "/probes/<name>)",
                            cfg_where(n, where, sizeof where), cfg_path(n, path, sizeof path), name,
                            ABL_PROBE_NAME_LEN - 1);
        }
        snprintf(p->name, sizeof p->name, "%s", name);
        cfg_node *pos = cfg_get(e, "position_mm"), *from = cfg_get(e, "from_mm"),
                 *to = cfg_get(e, "to_mm"), *pts = cfg_get(e, "points");
        if (!pos && !(from || to || pts))
            return abl_fail(err, ABL_EINVAL,
                            "%s: '%s' needs 'position_mm' (a point) or 'from_mm', 'to_mm' and "
                            "'points' (a line)",
                            cfg_where(e, where, sizeof where), cfg_path(e, path, sizeof path));
        if (pos && (from || to || pts))
            return abl_fail(err, ABL_EINVAL,
                            "%s: '%s' has 'position_mm' (a point) and %s (a line): give one",
                            cfg_where(e, where, sizeof where), cfg_path(e, path, sizeof path),
                            from ? "'from_mm'"
                            : to ? "'to_mm'"
                                 : "'points'");
        double a[3], b[3];
        if (pos) {
            if ((st = cfg_get_vec(e, "position_mm", true, NULL, 3, &pos_range, a, err))) return st;
            memcpy(b, a, sizeof b);
            p->npoints = 1;
            snprintf(p->where_a, sizeof p->where_a, "%s: '%s'", cfg_where(pos, where, sizeof where),
                     cfg_path(pos, path, sizeof path));
        } else {
            long np;
            if ((st = cfg_get_vec(e, "from_mm", true, NULL, 3, &pos_range, a, err)) ||
                (st = cfg_get_vec(e, "to_mm", true, NULL, 3, &pos_range, b, err)) ||
                (st = cfg_get_long(e, "points", true, 0, 2, ABL_MAX_PROBES, &np, err)))
                return st;
            /* a line of no length gave its points identical series (an adversarial test,
             * session 30): a single point is position_mm */
            if (a[0] == b[0] && a[1] == b[1] && a[2] == b[2])
                return abl_fail(err, ABL_EINVAL,
                                "%s: '%s': from_mm and to_mm are the same point (%g, %g, %g) "
                                "mm: a line needs two different ends (one point: position_mm)",
                                cfg_where(to, where, sizeof where),
                                cfg_path(e, path, sizeof path), a[0], a[1], a[2]);
            p->line = true;
            p->npoints = (int)np;
            snprintf(p->where_a, sizeof p->where_a, "%s: '%s'",
                     cfg_where(from, where, sizeof where), cfg_path(from, path, sizeof path));
            snprintf(p->where_b, sizeof p->where_b, "%s: '%s'", cfg_where(to, where, sizeof where),
                     cfg_path(to, path, sizeof path));
        }
        for (int k = 0; k < 3; k++) {
            p->a_m[k] = a[k] * 1e-3;
            p->b_m[k] = b[k] * 1e-3;
        }
        if (sc->nprobe_points + p->npoints > ABL_MAX_PROBES)
            return abl_fail(err, ABL_EINVAL,
                            "%s: '%s' brings the probe points to %d: allowed at most %d in all "
                            "(a line counts each of its points)",
                            cfg_where(e, where, sizeof where), cfg_path(e, path, sizeof path),
                            sc->nprobe_points + p->npoints, ABL_MAX_PROBES);
        sc->nprobe_points += p->npoints;
        sc->nprobes++;
        /* every point name must be new: "a_1" of a line "a" may meet a point called "a_1" */
        for (int q = 0; q < p->npoints; q++) {
            char nq[64];
            probe_point_name(p, q, nq, sizeof nq);

            for (int r = 0; r <= (int)i; r++) {
                const abl_probe_cfg *o = &sc->probes[r];
                for (int u = 0; u < (r == (int)i ? q : o->npoints); u++) {
                    char nu[64];
                    probe_point_name(o, u, nu, sizeof nu);
                    if (strcmp(nq, nu)) continue;
                    cfg_node *n = cfg_get(e, "name");
                    return abl_fail(err, ABL_EINVAL,
                                    "%s: '%s' = %s: the probe name %s is already taken by "
                                    "output.probes[%d]; every probe (and every point of a line, "
                                    "<name>_<index>) needs its own name",
                                    cfg_where(n, where, sizeof where),
                                    cfg_path(n, path, sizeof path), p->name, nq, r);
                }
            }
        }
    }
    return ABL_OK;
}

static abl_status parse_output(cfg_node *o, abl_scenario *sc, abl_error *err)
{
    static const cfg_range growth = {0, 1e7, true, false, "s"};
    static const double hot_def[] = {50, 55, 60};
    static const double cold_def[] = {0, -20, -40};
    static const cfg_range interval = {0, 1e7, false, false, "s"};
    abl_status st;
    const char *file = NULL;
    if ((st = cfg_expect(o, CFG_MAP, false, "the 'output' mapping", err)) ||
        (st = cfg_check_decl(o, &output_keys, CFG_ALL_VARIANTS, err)) ||
        (st = cfg_get_string(o, "file", false, NULL, &file, err)) ||
        (st = cfg_get_double(o, "snapshot_interval_s", false, 60, &interval,
                             &sc->snapshot_interval_s, err)) ||
        (st = cfg_get_double(o, "monitor_interval_s", false, 1.0, &interval,
                             &sc->monitor_interval_s, err)) ||
        (st = parse_thresholds(o, "hot_thresholds_C", hot_def, 3, sc->hot_C, &sc->n_hot, err)) ||
        (st = parse_thresholds(o, "cold_thresholds_C", cold_def, 3, sc->cold_C, &sc->n_cold,
                               err)) ||
        (st = cfg_get_bool(o, "energy_balance", false, &sc->energy_balance, err)) ||
        (st = parse_probes(cfg_get(o, "probes"), sc, err)) ||
        (st = cfg_get_bool(o, "tip_probes", true, &sc->tip_probes, err)) ||
        (st = cfg_get_double(o, "growth_interval_s", false, 10.0, &growth, &sc->growth_interval_s,
                             err)))
        return st;
    if (file) {
        const size_t n = strlen(file);
        if (n < 3 || strcmp(file + n - 3, ".h5")) {
            /* here, where the key's place is known (file:line or --set), not after loading */
            char where[600], path[300];
            cfg_node *k = cfg_get(o, "file");
            return abl_fail(err, ABL_EINVAL, "%s: '%s' = %s must end in .h5 (the result's HDF5 "
                            "file; its JSON and XDMF sidecars take the same stem)",
                            cfg_where(k ? k : o, where, sizeof where),
                            cfg_path(k ? k : o, path, sizeof path), file);
        }
        if (!(sc->output_path = xstrdup(file))) return abl_fail(err, ABL_ENOMEM, "out of memory");
    }
    return ABL_OK;
}

static abl_status parse_time(cfg_node *t, abl_scenario *sc, abl_error *err)
{
    static const char *const schemes[] = {"explicit", "implicit", "crank_nicolson", "spectral"};
    static const char *const preconds[] = {"spectral", "none", "multigrid"};
    static const cfg_range tol_range = {1e-14, 1e-2, false, false, NULL};
    static const cfg_range dur = {0, 1e6, true, false, "s"};
    static const cfg_range dtr = {0, 1e4, true, false, "s (or 'auto')"};
    /* dt for the implicit schemes is chosen for accuracy: 2 s keeps Crank-Nicolson's T_max
     * error well under 0.5 C for ablation protocols at 0.5-1 mm (README, make bench) */
    static const cfg_range saf = {0, 1, true, false, NULL};
    abl_status st;
    int scheme;
    char where[600];
    if ((st = cfg_expect(t, CFG_MAP, true, "the 'time' mapping", err))) {
        if (!t) return abl_fail(err, ABL_EINVAL, "%s: missing the 'time' section (duration_s)",
                                sc->path);
        return st;
    }
    if ((st = cfg_check_decl(t, &time_keys, CFG_ALL_VARIANTS, err)) ||
        (st = cfg_get_double(t, "duration_s", true, 0, &dur, &sc->duration_s, err)) ||
        (st = cfg_get_double(t, "dt_safety", false, 0.9, &saf, &sc->dt_safety, err)) ||
        (st = cfg_get_enum(t, "scheme", false, 0, schemes, 4, &scheme, err)))
        return st;
    sc->scheme = (abl_time_scheme)scheme;
    static const char *const region_modes[] = {"auto", "off"};
    int region_mode;
    if ((st = cfg_get_enum(t, "active_region", false, 0, region_modes, 2, &region_mode, err)))
        return st;
    sc->active_region = region_mode == 0;
    static const char *const multirate_modes[] = {"off", "auto"};
    int multirate_mode;
    if ((st = cfg_get_enum(t, "multirate", false, 0, multirate_modes, 2, &multirate_mode, err)))
        return st;
    sc->multirate = multirate_mode == 1;
    int pre;
    long maxit, rann;
    if ((st = cfg_get_double(t, "solver_tolerance", false, 1e-8, &tol_range, &sc->solver_tol,
                             err)) ||
        (st = cfg_get_long(t, "max_iterations", false, 500, 1, 100000, &maxit, err)) ||
        (st = cfg_get_enum(t, "preconditioner", false, 0, preconds, 3, &pre, err)) ||
        (st = cfg_get_long(t, "rannacher_steps", false, 1, 0, 100, &rann, err)))
        return st;
    /* phase change under the CG schemes: fixed-point iteration per step (sim.c); 0.01 K moves
     * the Neumann front by 0.01 % against 1e-3 K (tests/unit/test_phase.c) at ~35 % fewer
     * solves */
    static const cfg_range ptol = {1e-9, 10, false, false, "K"};
    long pit;
    if ((st = cfg_get_double(t, "phase_tolerance_C", false, 0.01, &ptol, &sc->phase_tol_C, err)) ||
        (st = cfg_get_long(t, "phase_max_iterations", false, 50, 1, 1000, &pit, err)))
        return st;
    sc->phase_max_iterations = (int)pit;
    sc->max_iterations = (int)maxit;
    sc->preconditioner = pre == 0   ? ABL_PRECOND_SPECTRAL
                         : pre == 1 ? ABL_PRECOND_JACOBI /* none: plain CG */
                                    : ABL_PRECOND_MULTIGRID;
    sc->rannacher_steps = (int)rann;
    if (scheme == SCHEME_EXPLICIT || scheme == SCHEME_SPECTRAL) {
        const char *implicit_only[] = {"solver_tolerance", "max_iterations", "preconditioner",
                                       "rannacher_steps", "phase_tolerance_C",
                                       "phase_max_iterations"};
        for (int i = 0; i < 6; i++)
            if (cfg_get(t, implicit_only[i])) {
                char path[300];
                cfg_node *n = cfg_get(t, implicit_only[i]);
                return abl_fail(err, ABL_EINVAL,
                                "%s: '%s' applies to the CG-based schemes only (time.scheme: "
                                "implicit or crank_nicolson)",
                                cfg_where(n, where, sizeof where), cfg_path(n, path, sizeof path));
            }
    }
    cfg_node *dt = cfg_get(t, "dt_s");
    sc->dt_s = 0;
    if (dt && !(dt->kind == CFG_SCALAR && !strcmp(dt->value, "auto")))
        if ((st = cfg_node_double(dt, &dtr, &sc->dt_s, err))) return st;
    (void)where;
    return ABL_OK;
}

/* Lowest temperature any input of the scenario can impose [C] (initial, faces, held sources);
 * a cryoprobe counts as -inf. Decides physics.freezing: auto. */
static double lowest_imposed_C(const abl_scenario *sc)
{
    double lo = sc->T_initial_C;
    if (sc->initial_T.values) lo = fmin(lo, sc->initial_T_min_C);
    for (int f = 0; f < 6; f++)
        if (sc->bc[f].type != BC_INSULATED) lo = fmin(lo, sc->bc[f].T_C);
    for (int i = 0; i < sc->nsources; i++) {
        const abl_source_cfg *src = &sc->sources[i];
        if (src->type == SRC_FIXED_TEMPERATURE)
            for (int q = 0; q < src->schedule.n; q++) lo = fmin(lo, src->schedule.v[q]);
        if (src->type == SRC_MODALITY && !strcmp(src->modality->type, "cryo")) lo = -INFINITY;
    }
    return lo;
}

/* A [lo, hi] temperature range under map[key] (lo < hi, both within the schema's range). */
static abl_status get_range_C(cfg_node *map, const char *key, const double def[2], double out[2],
                              abl_error *err)
{
    abl_status st = cfg_get_vec(map, key, false, def, 2, &temp_range, out, err);
    if (st) return st;
    if (!(out[0] < out[1])) {
        cfg_node *n = cfg_get(map, key);
        char where[256], path[256];
        return abl_fail(err, ABL_EINVAL,
                        "%s: '%s' = [%g, %g]: allowed a range [low_C, high_C] with low_C < high_C",
                        cfg_where(n, where, sizeof where), cfg_path(n, path, sizeof path), out[0],
                        out[1]);
    }
    return ABL_OK;
}

/* physics.freezing / vaporisation (auto | on | off), their ranges and the stasis temperature.
 * Defaults: freezing over -8..-1 C (tissue freezes over a range, binary-solution behaviour:
 * ../shared/reference/tissue-properties.md sec. 4; Rabin & Shitzer 1998), vaporisation over
 * 99..100 C (the window of the apparent-heat-capacity RFA models, Abraham & Sparrow 2007,
 * Int J Heat Mass Transf 50:2537; Pearce 2013). auto: freezing when some input can go below the
 * freezing range; vaporisation always, except under the spectral scheme (exact only for linear
 * problems). */
static abl_status parse_phase_change(cfg_node *phys, abl_scenario *sc, abl_error *err)
{
    static const char *const modes[] = {"auto", "on", "off"};
    static const cfg_range stasis_range = {-200, 0, false, false, "degC"};
    static const double freeze_def[2] = {-8.0, -1.0}, vap_def[2] = {99.0, 100.0};
    int fz, vp;
    double fr[2], vr[2];
    abl_status st;
    if ((st = cfg_get_enum(phys, "freezing", false, 0, modes, 3, &fz, err)) ||
        (st = cfg_get_enum(phys, "vaporisation", false, 0, modes, 3, &vp, err)) ||
        (st = get_range_C(phys, "freezing_range_C", freeze_def, fr, err)) ||
        (st = get_range_C(phys, "vaporisation_range_C", vap_def, vr, err)) ||
        (st = cfg_get_double(phys, "perfusion_stasis_C", false, -40.0, &stasis_range,
                             &sc->stasis_C, err)))
        return st;
    if (!(fr[1] < vr[0])) {
        cfg_node *n = cfg_get(phys, "freezing_range_C");
        if (!n) n = cfg_get(phys, "vaporisation_range_C");
        char where[256];
        return abl_fail(err, ABL_EINVAL,
                        "%s: physics.freezing_range_C [%g, %g] must lie below "
                        "physics.vaporisation_range_C [%g, %g]",
                        cfg_where(n, where, sizeof where), fr[0], fr[1], vr[0], vr[1]);
    }
    /* physical bounds of the ranges, where the phase change can be on (a range around 37 C
     * froze half the grid at t = 0, or took latent heat at 20-50 C, without a word: an
     * adversarial test, session 30): water's ice forms at or below 0 C (solutes lower it),
     * and tissue water boils near 100 C (models spread it over a few degrees below; a range
     * that starts below 80 C is not boiling). A phase change set off ignores its range. */
    if ((fz != 2 && !(fr[1] <= 0.0)) || (vp != 2 && !(vr[0] >= 80.0))) {
        const bool f = fz != 2 && !(fr[1] <= 0.0);
        cfg_node *n = cfg_get(phys, f ? "freezing_range_C" : "vaporisation_range_C");
        char where[256];
        if (n) cfg_where(n, where, sizeof where);
        else snprintf(where, sizeof where, "%s", sc->path);
        return abl_fail(err, ABL_EINVAL,
                        f ? "%s: physics.freezing_range_C [%g, %g]: tissue water freezes at or "
                            "below 0 C; the range must end at or below 0 C (or set "
                            "physics.freezing: off)"
                          : "%s: physics.vaporisation_range_C [%g, %g]: tissue water boils near "
                            "100 C; the range must start at or above 80 C (or set "
                            "physics.vaporisation: off)",
                        where, f ? fr[0] : vr[0], f ? fr[1] : vr[1]);
    }
    sc->freeze_solidus_C = fr[0];
    sc->freeze_liquidus_C = fr[1];
    sc->vap_lo_C = vr[0];
    sc->vap_hi_C = vr[1];
    sc->freezing = fz == 1 || (fz == 0 && lowest_imposed_C(sc) < sc->freeze_liquidus_C);
    sc->vaporisation = vp == 1 || (vp == 0 && sc->scheme != SCHEME_SPECTRAL);
    if (sc->scheme == SCHEME_SPECTRAL && (sc->freezing || sc->vaporisation)) {
        char where[256];
        if (phys) cfg_where(phys, where, sizeof where);
        else snprintf(where, sizeof where, "%s", sc->path);
        return abl_fail(err, ABL_EINVAL,
                        "%s: time.scheme: spectral is exact only for linear problems, but "
                        "physics.%s is on; use crank_nicolson or implicit, or set it off",
                        where, sc->freezing ? "freezing" : "vaporisation");
    }
    return ABL_OK;
}

static abl_status parse_root(cfg_node *root, abl_scenario *sc, const char *base_dir,
                             abl_error *err)
{
    static const char *const shutdown[] = {"none", "arrhenius", "threshold"};
    static const cfg_range stop_range = {45, 100, false, false, "degC"};
    static const cfg_range arr_range = {20, 100, false, false, "degC"};
    abl_status st;
    const char *name, *tfile, *dfile;
    if ((st = cfg_check_decl(root, &root_keys, CFG_ALL_VARIANTS, err)) ||
        (st = cfg_get_string(root, "name", false, "ablasim", &name, err)) ||
        (st = cfg_get_string(root, "tissues_file", false, "tissues.yaml", &tfile, err)) ||
        (st = cfg_get_string(root, "devices_file", false, NULL, &dfile, err)) ||
        (st = name_fits(root, "name", name, sizeof sc->name, err)))
        return st;
    /* the default output is <name>.h5 in the working directory: a name with '/' wrote
     * ../x.h5 or /abs/x.h5, "." the hidden ..h5 (an adversarial test, session 30). Any other
     * text (spaces, brackets: "Liver RFA (case 3)") stays a name. */
    if (!local_name_ok(name)) {
        char where[600];
        cfg_node *n = cfg_get(root, "name");
        return abl_fail(err, ABL_EINVAL,
                        "%s: 'name' = %s: a run's name holds no '/' and is not '.' or '..' "
                        "(the default output is <name>.h5 in the working directory; "
                        "directories go in -o PATH or output.file)",
                        cfg_where(n, where, sizeof where), name);
    }
    snprintf(sc->name, sizeof sc->name, "%s", name);
    sc->tissues_path = resolve(base_dir, tfile);
    if (!sc->tissues_path) return abl_fail(err, ABL_ENOMEM, "out of memory");
    if (dfile) {
        sc->devices_path = resolve(base_dir, dfile);
    } else {
        /* default: devices.yaml beside the tissue table (configs/ holds both), so a scenario
         * that names ../../configs/tissues.yaml finds the presets there too */
        char *dir = xstrdup(sc->tissues_path);
        if (dir) {
            char *slash = strrchr(dir, '/');
            if (slash) *slash = '\0';
            else dir[0] = '\0';
            sc->devices_path = resolve(dir[0] ? dir : NULL, "devices.yaml");
            free(dir);
        }
    }
    if (!sc->devices_path) return abl_fail(err, ABL_ENOMEM, "out of memory");
    if ((st = tissue_table_load(sc->tissues_path, cfg_get(root, "tissues"), &sc->tissues, err)))
        return st;

    cfg_node *phys = cfg_get(root, "physics");
    if ((st = cfg_expect(phys, CFG_MAP, false, "the 'physics' mapping", err)) ||
        (st = cfg_check_decl(phys, &physics_keys, CFG_ALL_VARIANTS, err)) ||
        (st = cfg_get_double(phys, "arterial_temperature_C", false, 37.0, &temp_range,
                             &sc->T_arterial_C, err)))
        return st;
    int shut;
    if ((st = cfg_get_double(phys, "initial_temperature_C", false, sc->T_arterial_C, &temp_range,
                             &sc->T_initial_C, err)) ||
        (st = cfg_get_double(phys, "arrhenius_min_C", false, 43.0, &arr_range,
                             &sc->arrhenius_min_C, err)) ||
        (st = cfg_get_enum(phys, "perfusion_shutdown", false, 0, shutdown, 3, &shut, err)) ||
        (st = cfg_get_double(phys, "perfusion_shutdown_temperature_C", false, 60.0, &stop_range,
                             &sc->perfusion_stop_C, err)))
        return st;
    sc->perfusion_shutdown = shut != 0;
    cfg_node *stop = cfg_get(phys, "perfusion_shutdown_temperature_C");
    if (stop && shut != 2) {
        char where[600];
        return abl_fail(err, ABL_EINVAL,
                        "%s: 'physics.perfusion_shutdown_temperature_C' applies only with "
                        "'perfusion_shutdown: threshold' (this scenario has '%s')",
                        cfg_where(stop, where, sizeof where), shutdown[shut]);
    }
    if (shut != 2) sc->perfusion_stop_C = NAN; /* arrhenius (or none) */
    if ((st = parse_ex_vivo(phys, sc, err))) return st;
    if ((st = parse_grid(cfg_get(root, "grid"), sc, base_dir, err)) ||
        (st = parse_boundary(cfg_get(root, "boundary"), sc, err)) ||
        (st = parse_time(cfg_get(root, "time"), sc, err)) ||
        (st = parse_sources(cfg_get(root, "sources"), sc, err)) ||
        (st = parse_output(cfg_get(root, "output"), sc, err)) ||
        /* after the cheap checks (a large file is read only for a scenario that parses),
         * before phase change: freezing: auto needs its lowest temperature */
        (st = parse_initial_field(phys, sc, base_dir, err)) ||
        (st = parse_phase_change(phys, sc, err)))
        return st;
    /* accepted, but it does nothing: said, not refused (a sweep over durations may pass a
     * source's start on purpose; an adversarial test, session 30, found it silent) */
    for (int i = 0; i < sc->nsources; i++) {
        const abl_source_cfg *src = &sc->sources[i];
        const size_t used = strlen(sc->notes);
        if (src->on_s >= sc->duration_s && used < sizeof sc->notes)
            snprintf(sc->notes + used, sizeof sc->notes - used,
                     "%s: source '%s' is switched on at on_s = %g s, not before the run ends "
                     "(time.duration_s = %g s): it delivers nothing\n",
                     src->where, src->name, src->on_s, sc->duration_s);
    }
    return ABL_OK;
}

static abl_status build_text(abl_scenario *sc, const char *file_text, const char *const *sets,
                             int nsets, abl_error *err)
{
    size_t len = strlen(file_text) + 64;
    for (int i = 0; i < nsets; i++) len += strlen(sets[i]) + 16;
    sc->text = malloc(len);
    if (!sc->text) return abl_fail(err, ABL_ENOMEM, "out of memory");
    size_t pos = (size_t)snprintf(sc->text, len, "%s", file_text);
    for (int i = 0; i < nsets; i++)
        pos += (size_t)snprintf(sc->text + pos, len - pos, "%s# --set %s\n",
                                (i == 0 && pos && sc->text[pos - 1] != '\n') ? "\n" : "", sets[i]);
    return ABL_OK;
}

static abl_status load_common(cfg_node *root, const char *file_text, const char *base_dir,
                              const char *const *sets, int nsets, abl_scenario *sc,
                              abl_error *err)
{
    abl_status st;
    sc->file_text = xstrdup(file_text);
    sc->base_dir = xstrdup(base_dir ? base_dir : ".");
    sc->sets = calloc((size_t)nsets + 1, sizeof *sc->sets);
    if (!sc->file_text || !sc->base_dir || !sc->sets)
        return abl_fail(err, ABL_ENOMEM, "out of memory");
    for (int i = 0; i < nsets; i++)
        if (!(sc->sets[sc->nsets++] = xstrdup(sets[i])))
            return abl_fail(err, ABL_ENOMEM, "out of memory");
    for (int i = 0; i < nsets; i++)
        if ((st = cfg_set(root, sets[i], err))) return st;
    if ((st = build_text(sc, file_text, sets, nsets, err))) return st;
    return parse_root(root, sc, base_dir, err);
}

abl_status scenario_load_string(const char *text, const char *origin, const char *base_dir,
                                const char *const *sets, int nsets, abl_scenario **out,
                                abl_error *err)
{
    *out = NULL;
    abl_scenario *sc = calloc(1, sizeof *sc);
    if (!sc) return abl_fail(err, ABL_ENOMEM, "out of memory");
    sc->path = xstrdup(origin);
    cfg_node *root = NULL;
    abl_status st = sc->path ? cfg_parse_string(text, origin, &root, err)
                             : abl_fail(err, ABL_ENOMEM, "out of memory");
    if (!st && root->kind != CFG_MAP)
        st = abl_fail(err, ABL_EINVAL, "%s: the scenario must be a YAML mapping", origin);
    if (!st) st = load_common(root, text, base_dir, sets, nsets, sc, err);
    cfg_free(root);
    if (st) {
        scenario_free(sc);
        return st;
    }
    *out = sc;
    return ABL_OK;
}

abl_status scenario_load(const char *path, const char *const *sets, int nsets,
                         abl_scenario **out, abl_error *err)
{
    *out = NULL;
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        return abl_fail(err, ABL_EIO, "%s: is a directory, not a scenario file", path);
    /* a FIFO, device or socket would block fopen or feed endless bytes: refuse up front */
    abl_status rst = fg_require_regular("scenario", path, err);
    if (rst) return rst;
    FILE *f = fopen(path, "rb");
    if (!f) return abl_fail(err, ABL_EIO, "%s: cannot open scenario: %s", path, strerror(errno));
    char *text = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? 2 * cap : 8192;
            if (cap > (size_t)16 << 20) {
                free(text);
                fclose(f);
                return abl_fail(err, ABL_EINVAL, "%s: larger than 16 MiB; not a scenario", path);
            }
            char *nt = realloc(text, cap);
            if (!nt) {
                free(text);
                fclose(f);
                return abl_fail(err, ABL_ENOMEM, "out of memory");
            }
            text = nt;
        }
        size_t r = fread(text + len, 1, cap - len - 1, f);
        len += r;
        if (r == 0) break;
    }
    int rerr = ferror(f);
    fclose(f);
    if (rerr) {
        free(text);
        return abl_fail(err, ABL_EIO, "%s: read error", path);
    }
    text[len] = '\0';
    if (memchr(text, '\0', len)) {
        free(text);
        return abl_fail(err, ABL_EINVAL, "%s: contains NUL bytes; not a YAML text file", path);
    }
    char *dir = xstrdup(path);
    if (!dir) {
        free(text);
        return abl_fail(err, ABL_ENOMEM, "out of memory");
    }
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    else strcpy(dir, ".");
    abl_status st = scenario_load_string(text, path, dir, sets, nsets, out, err);
    free(dir);
    free(text);
    return st;
}

const char *scenario_initial_role(const abl_scenario *sc)
{
    if (!sc->initial_T_path) return NULL;
    return sc->initial_is_state ? "initial state (physics.initial_state_file)"
                                : "initial temperature field (physics.initial_temperature_file)";
}

abl_status scenario_declare_inputs(const abl_scenario *sc, abl_fileset *fs, abl_error *err)
{
    abl_status st = ABL_OK;
    if (sc->tissues_path) st = fileset_input(fs, "tissues file", sc->tissues_path, err);
    if (!st && sc->mesh_path) st = fileset_input(fs, "mesh (grid.mesh)", sc->mesh_path, err);
    if (!st && sc->initial_T_path)
        st = fileset_input(fs, scenario_initial_role(sc), sc->initial_T_path, err);
    /* the device presets, when a source named one (read at load; an output must not
     * overwrite them: run, plan and sweep alike) */
    for (int i = 0; i < sc->nsources && !st; i++)
        if (sc->sources[i].device[0]) {
            st = fileset_input(fs, "devices file", sc->devices_path, err);
            break;
        }
    return st;
}

void scenario_free(abl_scenario *sc)
{
    if (!sc) return;
    for (int i = 0; i < sc->nsources; i++) {
        schedule_free(&sc->sources[i].schedule);
        if (sc->sources[i].modality && sc->sources[i].modality->free_params)
            sc->sources[i].modality->free_params(sc->sources[i].params);
    }
    free(sc->sources);
    free(sc->regions);
    free(sc->probes);
    tissue_table_free(&sc->tissues);
    free(sc->tissues_path);
    free(sc->devices_path);
    free(sc->mesh_path);
    free(sc->initial_T_path);
    free(sc->initial_T_dataset);
    mesh_field_free(&sc->initial_T);
    for (int m = 0; m < ABL_INITIAL_MAPS; m++) mesh_field_free(&sc->initial_maps[m]);
    mesh_field_free(&sc->initial_applicator);
    for (int h = 0; h < ABL_MAX_THRESHOLDS; h++) {
        mesh_field_free(&sc->initial_hot[h]);
        mesh_field_free(&sc->initial_cold[h]);
    }
    mesh_field_free(&sc->initial_freeze_cycles);
    mesh_field_free(&sc->initial_frozen_state);
    mesh_field_free(&sc->initial_layout);
    free(sc->output_path);
    free(sc->text);
    free(sc->file_text);
    free(sc->base_dir);
    for (int i = 0; i < sc->nsets; i++) free(sc->sets[i]);
    free(sc->sets);
    free(sc->path);
    free(sc);
}

int scenario_reference_markdown(FILE *f)
{
    if (fputs("| key | unit | default | allowed | meaning |\n|---|---|---|---|---|\n", f) == EOF)
        return -1;
    return cfg_decl_markdown(f, &root_keys, "");
}

int scenario_source_reference_markdown(FILE *f, const char *type)
{
    const abl_source_type_info *info = source_type_find(type);
    if (!info || !info->keys) return 1;
    if (fputs("| key | unit | default | allowed | meaning |\n|---|---|---|---|---|\n", f) == EOF)
        return -1;
    return cfg_decl_markdown(f, info->keys, "");
}
