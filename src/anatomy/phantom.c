/* phantom.c - the four anatomical phantoms (see phantom.h; dimensions, sources and
 * simplifications in docs/PHANTOMS.md). Sources of the defaults are abbreviated next to the
 * parameter tables ([Author year] as listed there; "ASSUMED" = typical value, no primary source).
 *
 * One builder per phantom validates the parameters, computes the analytic design (label volumes,
 * gaps) and, when asked, the list of primitives in painting order. Sharing one function for the
 * design and the geometry keeps the two from drifting apart. Primitives never overlap except by
 * containment (checked here), so each designed label volume is a sum of closed-form volumes; the
 * one non-elementary term, a sphere cut by a cylinder (humeral tumour in the bone), is a 1-D
 * integral of circle-circle lens areas done to ~1e-7 relative.
 *
 * Painting: planes in parallel, primitives in list order within each plane, so a voxel's label
 * depends only on that order, never on the thread. Per row the primitive's x interval is known
 * in closed form: voxels well inside it are filled directly and only those near its ends are
 * tested with the containment test, which gives the same labels as testing every voxel.
 */
#include "ablasim/phantom.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ablasim/grid.h"
#include "ablasim/shape.h"

static const double PI = 3.14159265358979323846;

/* ---- names, labels, parameters ----------------------------------------------------------- */

static const char *const kind_names[PHANTOM_COUNT] = {"liver", "lung", "vertebra", "humerus"};

static const char *const kind_summaries[PHANTOM_COUNT] = {
    "liver metastasis (2.5 cm) 7 mm from a 6 mm hepatic vein, capsule, abdominal wall",
    "para-mediastinal lung nodule (2 cm) near the phrenic nerve, bronchus, ribs, chest wall",
    "thoracic vertebral body with a lytic metastasis 6 mm in front of the spinal cord",
    "humeral diaphysis with a metastasis in cortex and marrow, radial nerve 12 mm away",
};

/* Label tables: entry i is label i. Substitute tissues (no such tissue in tissues.yaml) are
 * documented in docs/PHANTOMS.md: capsule, bronchial wall, heart and disc use muscle, CSF uses
 * saline. */
static const abl_phantom_label liver_labels[] = {
    {"parenchyma", "liver"},   {"metastasis", "tumour"},      {"hepatic_vein", "blood"},
    {"capsule", "muscle"},     {"abdominal_wall", "muscle"},  {"subcutaneous_fat", "fat"},
    {"skin", "skin"},
};
static const abl_phantom_label lung_labels[] = {
    {"lung", "lung_inflated"},      {"nodule", "tumour"},         {"bronchus_lumen", "air"},
    {"bronchus_wall", "muscle"},    {"mediastinal_fat", "fat"},   {"heart", "muscle"},
    {"phrenic_nerve", "nerve"},     {"chest_wall_muscle", "muscle"},
    {"rib_cortex", "bone_cortical"}, {"rib_marrow", "marrow_red"}, {"subcutaneous_fat", "fat"},
    {"skin", "skin"},
};
static const abl_phantom_label vertebra_labels[] = {
    {"muscle", "muscle"},         {"cortical_bone", "bone_cortical"},
    {"cancellous_bone", "bone_cancellous"}, {"metastasis", "tumour"},
    {"disc", "muscle"},           {"epidural_fat", "fat"},       {"csf", "saline"},
    {"spinal_cord", "spinal_cord"}, {"fat", "fat"},             {"skin", "skin"},
};
static const abl_phantom_label humerus_labels[] = {
    {"air", "air"},       {"skin", "skin"},  {"subcutaneous_fat", "fat"},
    {"muscle", "muscle"}, {"cortex", "bone_cortical"}, {"marrow", "marrow_yellow"},
    {"metastasis", "tumour"}, {"radial_nerve", "nerve"},
};

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

typedef struct {
    abl_phantom_param_info info;
    size_t offset; /* of the double in the kind's struct (= in the union) */
} param_desc;

#define P(type, field, def, lo, hi, doc) {{#field, def, lo, hi, doc}, offsetof(type, field)}
#define EXTENTS(type, x, y, z)                                                                  \
    P(type, extent_x_mm, x, 20, 400, "domain size along x"),                                   \
        P(type, extent_y_mm, y, 20, 400, "domain size along y"),                               \
        P(type, extent_z_mm, z, 20, 400, "domain size along z")

static const param_desc liver_params[] = {
    EXTENTS(abl_phantom_liver, 100, 100, 100),
    /* body wall layers: ASSUMED typical adult values */
    P(abl_phantom_liver, skin_mm, 2, 0.5, 10, "skin thickness (top of +y)"),
    P(abl_phantom_liver, fat_mm, 15, 0.5, 100, "subcutaneous fat thickness"),
    P(abl_phantom_liver, muscle_mm, 12, 0.5, 100, "abdominal wall muscle thickness"),
    /* Glisson's capsule is far thinner; one voxel at the committed 1 mm */
    P(abl_phantom_liver, capsule_mm, 1, 0.5, 5, "liver capsule thickness (muscle substitute)"),
    /* issue 8: 2-3 cm metastasis; vein 5-8 mm at 5-10 mm (heat sink from 3 mm [Lu 2003]) */
    P(abl_phantom_liver, tumour_diameter_mm, 25, 5, 60, "metastasis diameter"),
    P(abl_phantom_liver, tumour_depth_mm, 20, 0, 100, "liver surface to tumour surface"),
    P(abl_phantom_liver, vein_diameter_mm, 6, 1, 20, "hepatic vein diameter"),
    P(abl_phantom_liver, vein_gap_mm, 7, 0, 50, "tumour surface to vein wall"),
};
static const param_desc lung_params[] = {
    EXTENTS(abl_phantom_lung, 110, 100, 100),
    P(abl_phantom_lung, heart_mm, 10, 1, 100, "heart slab at -x (muscle)"),
    P(abl_phantom_lung, mediastinal_fat_mm, 10, 1, 100, "mediastinal fat between heart and lung"),
    P(abl_phantom_lung, intercostal_mm, 10, 2, 50, "intercostal layer holding the ribs"),
    P(abl_phantom_lung, chest_muscle_mm, 8, 0.5, 50, "chest wall muscle outside the ribs"),
    P(abl_phantom_lung, fat_mm, 10, 0.5, 100, "subcutaneous fat"),
    P(abl_phantom_lung, skin_mm, 2, 0.5, 10, "skin"),
    /* issue 8: 1.5-3 cm nodule */
    P(abl_phantom_lung, nodule_diameter_mm, 20, 5, 60, "nodule diameter"),
    /* the nerve with its pericardiophrenic vessels; the nerve alone is ~1 mm [Walter 2019] and
     * would be 0-1 voxel at 1 mm */
    P(abl_phantom_lung, nerve_diameter_mm, 3, 0.5, 10, "phrenic nerve (bundle) diameter"),
    P(abl_phantom_lung, nerve_depth_mm, 3, 0, 50, "nerve axis medial of the mediastinal surface"),
    P(abl_phantom_lung, nerve_gap_mm, 8, 0, 50, "nodule surface to nerve surface"),
    /* generation 3: 5.6 mm (Weibel), 6.1 mm (Horsfield) [Tu 2013]; wall ASSUMED */
    P(abl_phantom_lung, bronchus_lumen_mm, 6, 1, 25, "bronchial lumen diameter"),
    P(abl_phantom_lung, bronchus_wall_mm, 1.5, 0.5, 5, "bronchial wall thickness"),
    P(abl_phantom_lung, bronchus_gap_mm, 5, 0, 50, "nodule surface to bronchial wall"),
    /* rib size and pitch ASSUMED; mid-rib cortex ~1 mm (maxima 0.9-2.6 mm) [Holcombe 2019] */
    P(abl_phantom_lung, rib_height_mm, 12, 4, 30, "rib cross-section, cranio-caudal"),
    P(abl_phantom_lung, rib_thickness_mm, 7, 2, 20, "rib cross-section, along x"),
    P(abl_phantom_lung, rib_cortex_mm, 1, 0.5, 5, "rib cortical thickness"),
    P(abl_phantom_lung, rib_pitch_mm, 25, 10, 100, "rib centre to rib centre along z"),
};
static const param_desc vertebra_params[] = {
    EXTENTS(abl_phantom_vertebra, 80, 90, 50),
    /* lower thoracic body and canal, rounded [Panjabi 1991]; T9 height 18.8-20.5 mm and lamina
     * 7.3 mm [Egwu 2019]; real cortical shell ~0.4 mm [Silva 1994], one voxel here; disc,
     * sac, epidural and CSF spaces ASSUMED; cord at T8 8.3 x 6.3 mm [Frostell 2016] */
    P(abl_phantom_vertebra, body_width_mm, 36, 15, 80, "vertebral body width (x)"),
    P(abl_phantom_vertebra, body_depth_mm, 30, 15, 60, "vertebral body depth (y)"),
    P(abl_phantom_vertebra, body_height_mm, 22, 10, 50, "vertebral body height (z)"),
    P(abl_phantom_vertebra, cortex_mm, 1, 0.5, 5, "cortical shell thickness"),
    P(abl_phantom_vertebra, disc_mm, 5, 1, 20, "intervertebral disc height (muscle substitute)"),
    P(abl_phantom_vertebra, canal_width_mm, 18, 8, 40, "spinal canal width"),
    P(abl_phantom_vertebra, canal_depth_mm, 16, 8, 40, "spinal canal depth"),
    P(abl_phantom_vertebra, lamina_mm, 7, 3, 20, "posterior arch ring thickness"),
    P(abl_phantom_vertebra, sac_width_mm, 14, 4, 40, "dural sac (CSF) width"),
    P(abl_phantom_vertebra, sac_depth_mm, 12, 4, 40, "dural sac (CSF) depth"),
    P(abl_phantom_vertebra, epidural_anterior_mm, 1, 0, 10, "posterior body wall to dura"),
    P(abl_phantom_vertebra, cord_width_mm, 8.3, 3, 20, "spinal cord width"),
    P(abl_phantom_vertebra, cord_depth_mm, 6.3, 3, 20, "spinal cord depth"),
    P(abl_phantom_vertebra, cord_wall_gap_mm, 3, 0, 20, "posterior body wall to cord surface"),
    P(abl_phantom_vertebra, tumour_diameter_mm, 16, 3, 50, "metastasis diameter"),
    P(abl_phantom_vertebra, tumour_wall_gap_mm, 2, 0, 30, "tumour surface to posterior cortex"),
    P(abl_phantom_vertebra, prevertebral_fat_mm, 6, 0.5, 50, "fat slab in front (-y)"),
    P(abl_phantom_vertebra, fat_mm, 10, 0.5, 100, "subcutaneous fat at the back"),
    P(abl_phantom_vertebra, skin_mm, 2, 0.5, 10, "skin at the back"),
};
static const param_desc humerus_params[] = {
    EXTENTS(abl_phantom_humerus, 110, 110, 80),
    /* arm ~30 cm around [Frisancho 1981]; skin and fat ASSUMED */
    P(abl_phantom_humerus, arm_diameter_mm, 94, 30, 300, "arm diameter (skin surface)"),
    P(abl_phantom_humerus, skin_mm, 1.5, 0.5, 10, "skin"),
    P(abl_phantom_humerus, fat_mm, 8, 0.5, 100, "subcutaneous fat"),
    /* shaft 19.3 +- 2.3 mm, canal 12.1 +- 2.6 mm [Hird Murdoch 2002] */
    P(abl_phantom_humerus, bone_diameter_mm, 20, 8, 50, "humeral shaft outer diameter"),
    P(abl_phantom_humerus, canal_diameter_mm, 12, 2, 40, "medullary canal diameter"),
    P(abl_phantom_humerus, tumour_diameter_mm, 16, 3, 60, "metastasis diameter"),
    P(abl_phantom_humerus, tumour_offset_mm, 8, 0, 40, "tumour centre from the shaft axis (+y)"),
    /* radial nerve 4.3 mm^2 distal to the spiral groove [Singh 2021]; 10-15 mm from the tumour
     * (issue 6) */
    P(abl_phantom_humerus, nerve_diameter_mm, 2.5, 0.5, 10, "radial nerve diameter"),
    P(abl_phantom_humerus, nerve_gap_mm, 12, 0, 60, "tumour surface to nerve surface"),
    P(abl_phantom_humerus, nerve_angle_deg, 90, 0, 180,
      "nerve position around the shaft, from the tumour direction towards +x"),
};

#undef P
#undef EXTENTS

static const param_desc *params_of(abl_phantom_kind k, int *n)
{
    switch (k) {
    case PHANTOM_LIVER: *n = COUNT(liver_params); return liver_params;
    case PHANTOM_LUNG: *n = COUNT(lung_params); return lung_params;
    case PHANTOM_VERTEBRA: *n = COUNT(vertebra_params); return vertebra_params;
    case PHANTOM_HUMERUS: *n = COUNT(humerus_params); return humerus_params;
    default: *n = 0; return NULL;
    }
}

const char *phantom_name(abl_phantom_kind kind)
{
    return (unsigned)kind < PHANTOM_COUNT ? kind_names[kind] : "?";
}

const char *phantom_summary(abl_phantom_kind kind)
{
    return (unsigned)kind < PHANTOM_COUNT ? kind_summaries[kind] : "?";
}

abl_status phantom_kind_from_name(const char *name, abl_phantom_kind *kind, abl_error *err)
{
    for (int k = 0; k < PHANTOM_COUNT; k++)
        if (name && !strcmp(name, kind_names[k])) {
            *kind = (abl_phantom_kind)k;
            return ABL_OK;
        }
    return abl_fail(err, ABL_EINVAL, "unknown phantom '%s': allowed liver, lung, vertebra, humerus",
                    name ? name : "");
}

int phantom_param_count(abl_phantom_kind kind)
{
    int n;
    params_of(kind, &n);
    return n;
}

const abl_phantom_param_info *phantom_param(abl_phantom_kind kind, int i)
{
    int n;
    const param_desc *d = params_of(kind, &n);
    return i >= 0 && i < n ? &d[i].info : NULL;
}

static double *field(abl_phantom_params *p, const param_desc *d)
{
    return (double *)((char *)&p->u + d->offset);
}

double phantom_param_value(const abl_phantom_params *p, int i)
{
    int n;
    const param_desc *d = params_of(p->kind, &n);
    if (i < 0 || i >= n) return NAN;
    return *(const double *)((const char *)&p->u + d[i].offset);
}

void phantom_defaults(abl_phantom_kind kind, abl_phantom_params *p)
{
    int n;
    memset(p, 0, sizeof *p);
    p->kind = kind;
    const param_desc *d = params_of(kind, &n);
    for (int i = 0; i < n; i++) *field(p, &d[i]) = d[i].info.def;
}

static const char *unit_of(const char *key)
{
    size_t n = strlen(key);
    return n > 4 && !strcmp(key + n - 4, "_deg") ? "deg" : "mm";
}

abl_status phantom_set(abl_phantom_params *p, const char *key, const char *value, abl_error *err)
{
    int n;
    const param_desc *d = params_of(p->kind, &n);
    for (int i = 0; i < n; i++) {
        if (strcmp(key, d[i].info.key)) continue;
        const abl_phantom_param_info *pi = &d[i].info;
        char *end = NULL;
        errno = 0;
        double v = value ? strtod(value, &end) : NAN;
        if (!value || end == value || *end || errno || !isfinite(v))
            return abl_fail(err, ABL_EINVAL, "%s = '%s': must be a number in [%g, %g] %s", key,
                            value ? value : "", pi->min, pi->max, unit_of(key));
        if (v < pi->min || v > pi->max)
            return abl_fail(err, ABL_EINVAL, "%s = %g: allowed [%g, %g] %s (%s)", key, v, pi->min,
                            pi->max, unit_of(key), pi->doc);
        *field(p, &d[i]) = v;
        return ABL_OK;
    }
    char known[1024];
    size_t used = 0;
    known[0] = '\0';
    for (int i = 0; i < n && used < sizeof known; i++)
        used += (size_t)snprintf(known + used, sizeof known - used, "%s%s", i ? ", " : "",
                                 d[i].info.key);
    return abl_fail(err, ABL_EINVAL, "unknown parameter '%s' for the %s phantom; known: %s", key,
                    phantom_name(p->kind), known);
}

int phantom_labels(abl_phantom_kind kind, const abl_phantom_label **labels)
{
    switch (kind) {
    case PHANTOM_LIVER: *labels = liver_labels; return COUNT(liver_labels);
    case PHANTOM_LUNG: *labels = lung_labels; return COUNT(lung_labels);
    case PHANTOM_VERTEBRA: *labels = vertebra_labels; return COUNT(vertebra_labels);
    case PHANTOM_HUMERUS: *labels = humerus_labels; return COUNT(humerus_labels);
    default: *labels = NULL; return 0;
    }
}

static double sq(double v)
{
    return v * v;
}

/* ---- primitives -------------------------------------------------------------------------- */

/* A primitive is either an abl_shape (box, sphere, circular cylinder; tested with
 * shape_contains, in metres) or an axis-aligned elliptic cylinder with an optional half-space
 * cut (tested here, in mm), which shape.h does not offer. */
typedef enum { PRIM_SHAPE, PRIM_ECYL } prim_kind;

typedef struct {
    prim_kind kind;
    uint8_t label;
    abl_shape shape;
    int axis;                 /* ECYL: cylinder axis 0..2 */
    double c_mm[3], semi_mm[3]; /* ECYL: centre and semi-axes (the axis entry unused) */
    double lo_mm, hi_mm;      /* ECYL: extent along the axis */
    int cut_axis;             /* ECYL: -1, or keep only x[cut_axis] >= cut_mm */
    double cut_mm;
    double bb_lo_mm[3], bb_hi_mm[3];
} prim;

/* Enough for the lung's ribs at the largest extent_z / smallest pitch (400 / 10 = 40 ribs, two
 * primitives each) plus the rest. */
#define MAX_PRIMS 128

typedef struct {
    prim p[MAX_PRIMS];
    int n;
} prim_list;

/* Domain size and half size [mm] (the grid is centred on 0). */
typedef struct {
    double half[3];
    double len[3];
} dom;

/* How far a domain-spanning primitive reaches past the domain, so no boundary voxel is cut. */
static const double OVER = 1.0;

static prim *prim_new(prim_list *pl, uint8_t label)
{
    if (!pl) return NULL;
    prim *p = &pl->p[pl->n++];
    memset(p, 0, sizeof *p);
    p->label = label;
    p->cut_axis = -1;
    return p;
}

static void shape_prim_bounds(prim *p)
{
    double lo[3], hi[3];
    shape_bounds(&p->shape, lo, hi);
    for (int d = 0; d < 3; d++) {
        p->bb_lo_mm[d] = lo[d] * 1e3;
        p->bb_hi_mm[d] = hi[d] * 1e3;
    }
}

static void add_box(prim_list *pl, uint8_t label, const double lo[3], const double hi[3])
{
    prim *p = prim_new(pl, label);
    if (!p) return;
    p->kind = PRIM_SHAPE;
    p->shape.type = SHAPE_BOX;
    for (int d = 0; d < 3; d++) {
        p->shape.a_m[d] = lo[d] * 1e-3;
        p->shape.b_m[d] = hi[d] * 1e-3;
    }
    shape_prim_bounds(p);
}

/* Slab lo <= x[axis] <= hi across the whole domain. */
static void add_slab(prim_list *pl, uint8_t label, const dom *g, int axis, double lo, double hi)
{
    double a[3], b[3];
    for (int d = 0; d < 3; d++) {
        a[d] = -g->half[d] - OVER;
        b[d] = g->half[d] + OVER;
    }
    a[axis] = lo;
    b[axis] = hi;
    add_box(pl, label, a, b);
}

static void add_sphere(prim_list *pl, uint8_t label, const double c[3], double r)
{
    prim *p = prim_new(pl, label);
    if (!p) return;
    p->kind = PRIM_SHAPE;
    p->shape.type = SHAPE_SPHERE;
    for (int d = 0; d < 3; d++) {
        p->shape.centre_m[d] = c[d] * 1e-3;
        p->shape.radii_m[d] = r * 1e-3;
    }
    p->shape.radius_m = r * 1e-3;
    shape_prim_bounds(p);
}

/* Circular cylinder along z through the whole domain, axis at (x, y). */
static void add_zcyl(prim_list *pl, uint8_t label, const dom *g, double x, double y, double r)
{
    prim *p = prim_new(pl, label);
    if (!p) return;
    p->kind = PRIM_SHAPE;
    p->shape.type = SHAPE_CYLINDER;
    p->shape.a_m[0] = p->shape.b_m[0] = x * 1e-3;
    p->shape.a_m[1] = p->shape.b_m[1] = y * 1e-3;
    p->shape.a_m[2] = (-g->half[2] - OVER) * 1e-3;
    p->shape.b_m[2] = (g->half[2] + OVER) * 1e-3;
    p->shape.radius_m = r * 1e-3;
    shape_prim_bounds(p);
}

/* Elliptic cylinder along 'axis' with centre c (the axis entry ignored), semi-axes s, extent
 * [lo, hi] along the axis; cut_axis >= 0 keeps only x[cut_axis] >= cut. */
static void add_ecyl(prim_list *pl, uint8_t label, int axis, const double c[3], const double s[3],
                     double lo, double hi, int cut_axis, double cut)
{
    prim *p = prim_new(pl, label);
    if (!p) return;
    p->kind = PRIM_ECYL;
    p->axis = axis;
    p->lo_mm = lo;
    p->hi_mm = hi;
    p->cut_axis = cut_axis;
    p->cut_mm = cut;
    for (int d = 0; d < 3; d++) {
        p->c_mm[d] = c[d];
        p->semi_mm[d] = s[d];
        p->bb_lo_mm[d] = d == axis ? lo : c[d] - s[d];
        p->bb_hi_mm[d] = d == axis ? hi : c[d] + s[d];
    }
    if (cut_axis >= 0 && p->bb_lo_mm[cut_axis] < cut) p->bb_lo_mm[cut_axis] = cut;
}

static bool prim_contains(const prim *p, const double x_mm[3])
{
    if (p->kind == PRIM_SHAPE) {
        const double x_m[3] = {x_mm[0] * 1e-3, x_mm[1] * 1e-3, x_mm[2] * 1e-3};
        return shape_contains(&p->shape, x_m);
    }
    if (x_mm[p->axis] < p->lo_mm || x_mm[p->axis] > p->hi_mm) return false;
    if (p->cut_axis >= 0 && x_mm[p->cut_axis] < p->cut_mm) return false;
    double q = 0;
    for (int d = 0; d < 3; d++) {
        if (d == p->axis) continue;
        double u = (x_mm[d] - p->c_mm[d]) / p->semi_mm[d];
        q += u * u;
    }
    return q <= 1.0;
}

/* Voxel index range that can hold centres in [lo, hi] (conservative by one voxel; the test in
 * the loop decides). Empty when i1 < i0. */
static void index_range(double lo, double hi, double origin, double h, int n, int *i0, int *i1)
{
    double a = floor((lo - origin) / h) - 1, b = ceil((hi - origin) / h) + 1;
    *i0 = a < 0 ? 0 : (a > n ? n : (int)a);
    *i1 = b > n - 1 ? n - 1 : (b < -1 ? -1 : (int)b);
}

/* The x interval [xa, xb] a primitive covers on the row at (y, z) [mm]: 1 when known, 0 when
 * the row misses it, -1 when this primitive has no closed form here (test every voxel). Used
 * only to skip work: voxels more than a voxel inside the interval are filled without a test,
 * those near its ends are tested with prim_contains, so the result equals testing every voxel. */
static int row_interval(const prim *p, double y, double z, double *xa, double *xb)
{
    double lo = -INFINITY, hi = INFINITY, q;
    if (p->kind == PRIM_SHAPE) {
        const abl_shape *s = &p->shape;
        switch (s->type) {
        case SHAPE_BOX:
            if (y < s->a_m[1] * 1e3 || y > s->b_m[1] * 1e3 || z < s->a_m[2] * 1e3 ||
                z > s->b_m[2] * 1e3)
                return 0;
            lo = s->a_m[0] * 1e3;
            hi = s->b_m[0] * 1e3;
            break;
        case SHAPE_SPHERE:
            q = sq(s->radius_m * 1e3) - sq(y - s->centre_m[1] * 1e3) - sq(z - s->centre_m[2] * 1e3);
            if (q < 0) return 0;
            lo = s->centre_m[0] * 1e3 - sqrt(q);
            hi = s->centre_m[0] * 1e3 + sqrt(q);
            break;
        case SHAPE_CYLINDER:
            /* only the z-parallel cylinders this file makes */
            if (s->a_m[0] != s->b_m[0] || s->a_m[1] != s->b_m[1]) return -1;
            if (z < fmin(s->a_m[2], s->b_m[2]) * 1e3 || z > fmax(s->a_m[2], s->b_m[2]) * 1e3)
                return 0;
            q = sq(s->radius_m * 1e3) - sq(y - s->a_m[1] * 1e3);
            if (q < 0) return 0;
            lo = s->a_m[0] * 1e3 - sqrt(q);
            hi = s->a_m[0] * 1e3 + sqrt(q);
            break;
        default:
            return -1;
        }
    } else {
        const double x3[3] = {0, y, z};
        if (p->cut_axis > 0 && x3[p->cut_axis] < p->cut_mm) return 0;
        if (p->axis == 0) {
            q = 1 - sq((y - p->c_mm[1]) / p->semi_mm[1]) - sq((z - p->c_mm[2]) / p->semi_mm[2]);
            if (q < 0) return 0;
            lo = p->lo_mm;
            hi = p->hi_mm;
        } else {
            const int other = 3 - p->axis; /* the non-x axis across the cylinder */
            if (x3[p->axis] < p->lo_mm || x3[p->axis] > p->hi_mm) return 0;
            q = 1 - sq((x3[other] - p->c_mm[other]) / p->semi_mm[other]);
            if (q < 0) return 0;
            lo = p->c_mm[0] - p->semi_mm[0] * sqrt(q);
            hi = p->c_mm[0] + p->semi_mm[0] * sqrt(q);
        }
        if (p->cut_axis == 0) lo = fmax(lo, p->cut_mm);
    }
    *xa = lo;
    *xb = hi;
    return 1;
}

static void test_span(const prim *p, double x[3], double ox, double h, int i0, int i1,
                      uint8_t *row)
{
    for (int i = i0; i <= i1; i++) {
        x[0] = ox + i * h;
        if (prim_contains(p, x)) row[i] = p->label;
    }
}

static int clamp_index(double v, int lo, int hi)
{
    return v < lo ? lo : (v > hi ? hi : (int)v);
}

/* Paint the primitives of one row (j, k) range of plane k, in list order. */
static void paint_plane(const prim_list *pl, const int (*range)[3][2], int k, const int dims[3],
                        double h, const double origin[3], uint8_t *labels)
{
    const size_t sy = (size_t)dims[0], sz = (size_t)dims[0] * (size_t)dims[1];
    double x[3];
    x[2] = origin[2] + k * h;
    for (int n = 0; n < pl->n; n++) {
        const prim *p = &pl->p[n];
        const int(*r)[2] = range[n];
        if (k < r[2][0] || k > r[2][1] || r[0][1] < r[0][0] || r[1][1] < r[1][0]) continue;
        for (int j = r[1][0]; j <= r[1][1]; j++) {
            x[1] = origin[1] + j * h;
            uint8_t *row = labels + (size_t)k * sz + (size_t)j * sy;
            double xa, xb;
            int known = row_interval(p, x[1], x[2], &xa, &xb);
            if (known == 0) continue;
            if (known < 0) {
                test_span(p, x, origin[0], h, r[0][0], r[0][1], row);
                continue;
            }
            /* centres at least one voxel inside [xa, xb] are inside: fill; test the ends */
            int f0 = clamp_index(ceil((xa - origin[0]) / h) + 1, r[0][0], r[0][1] + 1);
            int f1 = clamp_index(floor((xb - origin[0]) / h) - 1, r[0][0] - 1, r[0][1]);
            if (f0 > f1) {
                test_span(p, x, origin[0], h, r[0][0], r[0][1], row);
                continue;
            }
            memset(row + f0, p->label, (size_t)(f1 - f0 + 1));
            test_span(p, x, origin[0], h, f0 - 3 < r[0][0] ? r[0][0] : f0 - 3, f0 - 1, row);
            test_span(p, x, origin[0], h, f1 + 1, f1 + 3 > r[0][1] ? r[0][1] : f1 + 3, row);
        }
    }
}

/* All primitives in order, planes in parallel: one parallel region (cheap on a loaded machine),
 * and each voxel still sees the primitives in list order, so the threads never change it. */
static void paint_all(const prim_list *pl, const int dims[3], double h, const double origin[3],
                      uint8_t *labels)
{
    int range[MAX_PRIMS][3][2];
    for (int n = 0; n < pl->n; n++)
        for (int d = 0; d < 3; d++)
            index_range(pl->p[n].bb_lo_mm[d], pl->p[n].bb_hi_mm[d], origin[d], h, dims[d],
                        &range[n][d][0], &range[n][d][1]);
#pragma omp parallel for schedule(static)
    for (int k = 0; k < dims[2]; k++)
        paint_plane(pl, (const int(*)[3][2])range, k, dims, h, origin, labels);
}

/* ---- analytic geometry ------------------------------------------------------------------- */

/* Area of the ellipse x^2/a^2 + y^2/b^2 <= 1 (centred on 0) with y >= c. */
static double ellipse_area_above(double a, double b, double c)
{
    double t = c / b;
    if (t <= -1) return PI * a * b;
    if (t >= 1) return 0;
    return a * b * (acos(t) - t * sqrt(1 - t * t));
}

/* Area of the intersection of two discs of radii s and R whose centres are d apart. */
static double lens_area(double s, double R, double d)
{
    if (s <= 0 || R <= 0 || d >= s + R) return 0;
    if (d <= fabs(R - s)) return PI * sq(fmin(s, R));
    double c1 = (d * d + s * s - R * R) / (2 * d * s), c2 = (d * d + R * R - s * s) / (2 * d * R);
    c1 = fmax(-1, fmin(1, c1));
    c2 = fmax(-1, fmin(1, c2));
    double k = (-d + s + R) * (d + s - R) * (d - s + R) * (d + s + R);
    return s * s * acos(c1) + R * R * acos(c2) - 0.5 * sqrt(fmax(k, 0));
}

/* Volume of a sphere (radius r) inside an infinite cylinder (radius R) whose axis passes rho
 * from the sphere's centre: the integral over z of the lens area of the sphere's slice (radius
 * sqrt(r^2 - z^2)) and the cylinder's disc. z = r sin(phi) removes the square-root endpoints;
 * composite Simpson with 4096 intervals leaves ~1e-7 relative error (the integrand has kinks only
 * where a slice starts or stops fitting inside the disc). */
static double sphere_in_cylinder(double r, double R, double rho)
{
    if (rho == 0 && R >= r) return 4.0 / 3.0 * PI * r * r * r;
    const int n = 4096;
    const double a = -PI / 2, step = PI / n;
    double sum = 0;
    for (int i = 0; i <= n; i++) {
        double phi = a + i * step, c = cos(phi);
        double f = c > 0 ? lens_area(r * c, R, rho) * r * c : 0;
        sum += f * (i == 0 || i == n ? 1 : (i % 2 ? 4 : 2));
    }
    return sum * step / 3;
}

/* Is the ellipse (centre c1, semi-axes s1) inside the ellipse (c2, s2)? Both in one plane.
 * Checked on 3600 boundary points: enough to catch any design error bigger than ~0.01 mm for
 * the sizes allowed. */
static bool ellipse_inside(const double c1[2], const double s1[2], const double c2[2],
                           const double s2[2])
{
    for (int i = 0; i < 3600; i++) {
        double t = 2 * PI * i / 3600;
        double x = c1[0] + s1[0] * cos(t), y = c1[1] + s1[1] * sin(t);
        if (sq((x - c2[0]) / s2[0]) + sq((y - c2[1]) / s2[1]) > 1 + 1e-12) return false;
    }
    return true;
}

/* ---- builders ---------------------------------------------------------------------------- */

static void set_distance(abl_phantom_design *d, int a, int b, double gap, const char *what)
{
    if (d->ndistances >= PHANTOM_MAX_DISTANCES) return;
    abl_phantom_distance *x = &d->distance[d->ndistances++];
    x->label_a = a;
    x->label_b = b;
    x->gap_mm = gap;
    x->what = what;
}

/* Background label 0 gets the domain volume minus every other label. */
static void background_volume(const dom *g, abl_phantom_design *d)
{
    double rest = g->len[0] * g->len[1] * g->len[2];
    for (int l = 1; l < d->nlabels; l++) rest -= d->volume_mm3[l];
    d->volume_mm3[0] = rest;
}

enum { LV_PARENCHYMA, LV_TUMOUR, LV_VEIN, LV_CAPSULE, LV_MUSCLE, LV_FAT, LV_SKIN };

static abl_status build_liver(const abl_phantom_liver *q, const dom *g, prim_list *pl,
                              abl_phantom_design *d, abl_error *err)
{
    const double X = g->half[0], Y = g->half[1], Z = g->half[2];
    const double wall = q->skin_mm + q->fat_mm + q->muscle_mm + q->capsule_mm;
    if (wall >= g->len[1])
        return abl_fail(err, ABL_EINVAL,
                        "liver phantom: skin_mm + fat_mm + muscle_mm + capsule_mm = %g mm leaves "
                        "no liver inside extent_y_mm = %g mm", wall, g->len[1]);
    const double y_skin = Y - q->skin_mm, y_fat = y_skin - q->fat_mm, y_mus = y_fat - q->muscle_mm;
    const double y_liv = y_mus - q->capsule_mm; /* liver surface */
    const double r = q->tumour_diameter_mm / 2, rv = q->vein_diameter_mm / 2;
    const double yt = y_liv - q->tumour_depth_mm - r; /* tumour centre (0, yt, 0) */
    const double xv = r + q->vein_gap_mm + rv;       /* vein axis (xv, yt) along z */
    if (yt - r < -Y || yt - rv < -Y)
        return abl_fail(err, ABL_EINVAL,
                        "liver phantom: the tumour or the vein reaches below the domain (y = %g "
                        "mm): reduce tumour_depth_mm or tumour_diameter_mm, or increase "
                        "extent_y_mm", -Y);
    if (r > X || r > Z)
        return abl_fail(err, ABL_EINVAL, "liver phantom: tumour_diameter_mm = %g does not fit in "
                        "extent_x_mm / extent_z_mm", q->tumour_diameter_mm);
    if (xv + rv > X)
        return abl_fail(err, ABL_EINVAL,
                        "liver phantom: the vein (axis at x = %g mm, radius %g mm) leaves the "
                        "domain (x <= %g mm): reduce vein_gap_mm, vein_diameter_mm or "
                        "tumour_diameter_mm, or increase extent_x_mm", xv, rv, X);
    if (yt + rv > y_liv)
        return abl_fail(err, ABL_EINVAL,
                        "liver phantom: the vein (radius %g mm at the tumour's depth) crosses the "
                        "liver surface: increase tumour_depth_mm or reduce vein_diameter_mm", rv);

    if (pl) {
        add_slab(pl, LV_SKIN, g, 1, y_skin, Y + OVER);
        add_slab(pl, LV_FAT, g, 1, y_fat, y_skin);
        add_slab(pl, LV_MUSCLE, g, 1, y_mus, y_fat);
        add_slab(pl, LV_CAPSULE, g, 1, y_liv, y_mus);
        add_sphere(pl, LV_TUMOUR, (const double[3]){0, yt, 0}, r);
        add_zcyl(pl, LV_VEIN, g, xv, yt, rv);
    }
    const double A = g->len[0] * g->len[2];
    d->volume_mm3[LV_SKIN] = A * q->skin_mm;
    d->volume_mm3[LV_FAT] = A * q->fat_mm;
    d->volume_mm3[LV_MUSCLE] = A * q->muscle_mm;
    d->volume_mm3[LV_CAPSULE] = A * q->capsule_mm;
    d->volume_mm3[LV_TUMOUR] = 4.0 / 3.0 * PI * r * r * r;
    d->volume_mm3[LV_VEIN] = PI * rv * rv * g->len[2];
    background_volume(g, d);
    set_distance(d, LV_TUMOUR, LV_VEIN, q->vein_gap_mm, "tumour surface to hepatic vein wall");
    set_distance(d, LV_TUMOUR, LV_CAPSULE, q->tumour_depth_mm, "tumour surface to liver capsule");
    return ABL_OK;
}

enum {
    LU_LUNG, LU_NODULE, LU_LUMEN, LU_BWALL, LU_MEDFAT, LU_HEART, LU_NERVE, LU_CHEST_MUSCLE,
    LU_RIB_CORTEX, LU_RIB_MARROW, LU_FAT, LU_SKIN
};

static abl_status build_lung(const abl_phantom_lung *q, const dom *g, prim_list *pl,
                             abl_phantom_design *d, abl_error *err)
{
    const double X = g->half[0], Y = g->half[1], Z = g->half[2];
    const double x_heart = -X + q->heart_mm, x_med = x_heart + q->mediastinal_fat_mm;
    const double x_skin = X - q->skin_mm, x_fat = x_skin - q->fat_mm;
    const double x_ic = x_fat - q->chest_muscle_mm, x_lat = x_ic - q->intercostal_mm;
    if (x_lat - x_med < 5)
        return abl_fail(err, ABL_EINVAL,
                        "lung phantom: the layers along x leave %g mm of lung (at least 5 mm "
                        "needed): reduce heart_mm, mediastinal_fat_mm or the chest wall layers, or "
                        "increase extent_x_mm", x_lat - x_med);
    const double rn = q->nerve_diameter_mm / 2, x_nerve = x_med - q->nerve_depth_mm;
    if (q->nerve_depth_mm < rn || q->nerve_depth_mm + rn > q->mediastinal_fat_mm)
        return abl_fail(err, ABL_EINVAL,
                        "lung phantom: the nerve must lie inside the mediastinal fat: need "
                        "nerve_diameter_mm / 2 <= nerve_depth_mm <= mediastinal_fat_mm - "
                        "nerve_diameter_mm / 2 (got depth %g, diameter %g, fat %g mm)",
                        q->nerve_depth_mm, q->nerve_diameter_mm, q->mediastinal_fat_mm);
    const double r = q->nodule_diameter_mm / 2;
    const double x_nod = x_nerve + rn + q->nerve_gap_mm + r; /* nodule centre (x_nod, 0, 0) */
    const double rl = q->bronchus_lumen_mm / 2, ro = rl + q->bronchus_wall_mm;
    const double y_br = r + q->bronchus_gap_mm + ro; /* bronchus axis (x_nod, y_br) along z */
    if (x_nod - r < x_med)
        return abl_fail(err, ABL_EINVAL,
                        "lung phantom: the nodule would reach into the mediastinum: need "
                        "nerve_gap_mm + nerve_diameter_mm / 2 >= nerve_depth_mm");
    if (x_nod + r > x_lat || x_nod - ro < x_med || x_nod + ro > x_lat || r > Y || r > Z)
        return abl_fail(err, ABL_EINVAL,
                        "lung phantom: the nodule (%g mm) or the bronchus does not fit in the lung "
                        "(%g mm wide): reduce nodule_diameter_mm or nerve_gap_mm", 2 * r,
                        x_lat - x_med);
    if (y_br + ro > Y)
        return abl_fail(err, ABL_EINVAL,
                        "lung phantom: the bronchus (axis at y = %g mm, outer radius %g mm) leaves "
                        "the domain (y <= %g mm): reduce bronchus_gap_mm or increase extent_y_mm",
                        y_br, ro, Y);
    const double ra = q->rib_thickness_mm / 2, rb = q->rib_height_mm / 2, rc = q->rib_cortex_mm;
    if (q->rib_thickness_mm > q->intercostal_mm || q->rib_height_mm >= q->rib_pitch_mm ||
        q->rib_pitch_mm > g->len[2] || 2 * rc >= fmin(q->rib_thickness_mm, q->rib_height_mm))
        return abl_fail(err, ABL_EINVAL,
                        "lung phantom: ribs need rib_thickness_mm <= intercostal_mm, rib_height_mm "
                        "< rib_pitch_mm <= extent_z_mm and 2 rib_cortex_mm below the rib's "
                        "thickness and height");
    const int nribs = (int)floor(g->len[2] / q->rib_pitch_mm + 1e-9);
    const double z0 = -Z + (g->len[2] - nribs * q->rib_pitch_mm) / 2 + q->rib_pitch_mm / 2;
    const double x_rib = x_lat + q->intercostal_mm / 2;
    if (2 * nribs + 12 > MAX_PRIMS)
        return abl_fail(err, ABL_EINVAL, "lung phantom: %d ribs are too many (increase "
                        "rib_pitch_mm)", nribs);

    if (pl) {
        add_slab(pl, LU_HEART, g, 0, -X - OVER, x_heart);
        add_slab(pl, LU_MEDFAT, g, 0, x_heart, x_med);
        add_zcyl(pl, LU_NERVE, g, x_nerve, 0, rn);
        add_slab(pl, LU_CHEST_MUSCLE, g, 0, x_lat, x_fat);
        for (int k = 0; k < nribs; k++) {
            const double c[3] = {x_rib, 0, z0 + k * q->rib_pitch_mm};
            add_ecyl(pl, LU_RIB_CORTEX, 1, c, (const double[3]){ra, 0, rb}, -Y - OVER, Y + OVER,
                     -1, 0);
            add_ecyl(pl, LU_RIB_MARROW, 1, c, (const double[3]){ra - rc, 0, rb - rc}, -Y - OVER,
                     Y + OVER, -1, 0);
        }
        add_slab(pl, LU_FAT, g, 0, x_fat, x_skin);
        add_slab(pl, LU_SKIN, g, 0, x_skin, X + OVER);
        add_sphere(pl, LU_NODULE, (const double[3]){x_nod, 0, 0}, r);
        add_zcyl(pl, LU_BWALL, g, x_nod, y_br, ro);
        add_zcyl(pl, LU_LUMEN, g, x_nod, y_br, rl);
    }
    const double A = g->len[1] * g->len[2], Lz = g->len[2];
    const double rib_out = PI * ra * rb, rib_in = PI * (ra - rc) * (rb - rc);
    d->volume_mm3[LU_HEART] = A * q->heart_mm;
    d->volume_mm3[LU_NERVE] = PI * rn * rn * Lz;
    d->volume_mm3[LU_MEDFAT] = A * q->mediastinal_fat_mm - d->volume_mm3[LU_NERVE];
    d->volume_mm3[LU_RIB_CORTEX] = nribs * (rib_out - rib_in) * g->len[1];
    d->volume_mm3[LU_RIB_MARROW] = nribs * rib_in * g->len[1];
    d->volume_mm3[LU_CHEST_MUSCLE] =
        A * (q->intercostal_mm + q->chest_muscle_mm) - nribs * rib_out * g->len[1];
    d->volume_mm3[LU_FAT] = A * q->fat_mm;
    d->volume_mm3[LU_SKIN] = A * q->skin_mm;
    d->volume_mm3[LU_NODULE] = 4.0 / 3.0 * PI * r * r * r;
    d->volume_mm3[LU_BWALL] = PI * (ro * ro - rl * rl) * Lz;
    d->volume_mm3[LU_LUMEN] = PI * rl * rl * Lz;
    background_volume(g, d);
    set_distance(d, LU_NODULE, LU_NERVE, q->nerve_gap_mm, "nodule surface to phrenic nerve");
    set_distance(d, LU_NODULE, LU_BWALL, q->bronchus_gap_mm, "nodule surface to bronchial wall");
    set_distance(d, LU_NODULE, LU_MEDFAT, x_nod - r - x_med, "nodule surface to mediastinum");
    return ABL_OK;
}

enum {
    VB_MUSCLE, VB_CORTICAL, VB_CANCELLOUS, VB_TUMOUR, VB_DISC, VB_EPIDURAL, VB_CSF, VB_CORD,
    VB_FAT, VB_SKIN
};

static abl_status build_vertebra(const abl_phantom_vertebra *q, const dom *g, prim_list *pl,
                                 abl_phantom_design *d, abl_error *err)
{
    const double X = g->half[0], Y = g->half[1], Z = g->half[2];
    const double a = q->body_width_mm / 2, b = q->body_depth_mm / 2, H2 = q->body_height_mm / 2;
    const double t = q->cortex_mm;
    const double ac = q->canal_width_mm / 2, bc = q->canal_depth_mm / 2, lam = q->lamina_mm;
    const double yb = -bc - b; /* body centre (0, yb); its posterior wall touches the canal */
    const double y_back_fat = Y - q->skin_mm - q->fat_mm, y_front_fat = -Y + q->prevertebral_fat_mm;
    if (4 * t > fmin(q->body_width_mm, fmin(q->body_depth_mm, q->body_height_mm)) ||
        2 * t >= lam)
        return abl_fail(err, ABL_EINVAL,
                        "vertebra phantom: cortex_mm = %g is too thick for the body (at most a "
                        "quarter of its smallest dimension) or the arch (below lamina_mm / 2)", t);
    if (a > X || ac + lam > X)
        return abl_fail(err, ABL_EINVAL,
                        "vertebra phantom: the body or the arch is wider than extent_x_mm = %g",
                        g->len[0]);
    if (yb - b < y_front_fat)
        return abl_fail(err, ABL_EINVAL,
                        "vertebra phantom: the body's front (y = %g mm) reaches into the "
                        "prevertebral fat (y < %g mm): increase extent_y_mm or reduce "
                        "body_depth_mm / prevertebral_fat_mm", yb - b, y_front_fat);
    if (bc + lam > y_back_fat)
        return abl_fail(err, ABL_EINVAL,
                        "vertebra phantom: the posterior arch (to y = %g mm) reaches into the "
                        "subcutaneous fat (y > %g mm): increase extent_y_mm", bc + lam, y_back_fat);
    if (H2 + q->disc_mm + t >= Z)
        return abl_fail(err, ABL_EINVAL,
                        "vertebra phantom: body_height_mm / 2 + disc_mm + cortex_mm must be below "
                        "extent_z_mm / 2 = %g mm (the neighbouring bodies need room)", Z);
    const double sa = q->sac_width_mm / 2, sb = q->sac_depth_mm / 2;
    const double ys = -bc + q->epidural_anterior_mm + sb; /* sac centre (0, ys) */
    const double ca = q->cord_width_mm / 2, cb = q->cord_depth_mm / 2;
    const double yc = -bc + q->cord_wall_gap_mm + cb; /* cord centre (0, yc) */
    if (!ellipse_inside((const double[2]){0, ys}, (const double[2]){sa, sb},
                        (const double[2]){0, 0}, (const double[2]){ac, bc}))
        return abl_fail(err, ABL_EINVAL,
                        "vertebra phantom: the dural sac (%g x %g mm, %g mm behind the body) does "
                        "not fit in the canal (%g x %g mm)", q->sac_width_mm, q->sac_depth_mm,
                        q->epidural_anterior_mm, q->canal_width_mm, q->canal_depth_mm);
    if (!ellipse_inside((const double[2]){0, yc}, (const double[2]){ca, cb},
                        (const double[2]){0, ys}, (const double[2]){sa, sb}))
        return abl_fail(err, ABL_EINVAL,
                        "vertebra phantom: the cord (%g x %g mm, %g mm behind the body) does not "
                        "fit in the dural sac: cord_wall_gap_mm must be at least "
                        "epidural_anterior_mm and the cord smaller than the sac", q->cord_width_mm,
                        q->cord_depth_mm, q->cord_wall_gap_mm);
    const double r = q->tumour_diameter_mm / 2;
    const double yt = -bc - t - q->tumour_wall_gap_mm - r; /* tumour centre (0, yt, 0) */
    if (r > H2 - t || !ellipse_inside((const double[2]){0, yt}, (const double[2]){r, r},
                                      (const double[2]){0, yb}, (const double[2]){a - t, b - t}))
        return abl_fail(err, ABL_EINVAL,
                        "vertebra phantom: the metastasis (%g mm, %g mm from the posterior cortex) "
                        "does not fit in the body's cancellous core: reduce tumour_diameter_mm or "
                        "tumour_wall_gap_mm", q->tumour_diameter_mm, q->tumour_wall_gap_mm);

    const double zlo = -Z - OVER, zhi = Z + OVER, zadj = H2 + q->disc_mm;
    if (pl) {
        add_slab(pl, VB_FAT, g, 1, -Y - OVER, y_front_fat);
        add_slab(pl, VB_FAT, g, 1, y_back_fat, Y - q->skin_mm);
        add_slab(pl, VB_SKIN, g, 1, Y - q->skin_mm, Y + OVER);
        /* posterior arch: ring around the canal behind the plane y = -bc of the body's back */
        const double o[3] = {0, 0, 0};
        add_ecyl(pl, VB_CORTICAL, 2, o, (const double[3]){ac + lam, bc + lam, 0}, zlo, zhi, 1, -bc);
        add_ecyl(pl, VB_CANCELLOUS, 2, o, (const double[3]){ac + lam - t, bc + lam - t, 0}, zlo,
                 zhi, 1, -bc);
        add_ecyl(pl, VB_CORTICAL, 2, o, (const double[3]){ac + t, bc + t, 0}, zlo, zhi, 1, -bc);
        /* the vertebral column: this body, two discs, the neighbouring bodies */
        const double cb3[3] = {0, yb, 0}, so[3] = {a, b, 0}, si[3] = {a - t, b - t, 0};
        add_ecyl(pl, VB_CORTICAL, 2, cb3, so, -H2, H2, -1, 0);
        add_ecyl(pl, VB_CANCELLOUS, 2, cb3, si, -H2 + t, H2 - t, -1, 0);
        add_ecyl(pl, VB_DISC, 2, cb3, so, H2, zadj, -1, 0);
        add_ecyl(pl, VB_DISC, 2, cb3, so, -zadj, -H2, -1, 0);
        add_ecyl(pl, VB_CORTICAL, 2, cb3, so, zadj, zhi, -1, 0);
        add_ecyl(pl, VB_CANCELLOUS, 2, cb3, si, zadj + t, zhi, -1, 0);
        add_ecyl(pl, VB_CORTICAL, 2, cb3, so, zlo, -zadj, -1, 0);
        add_ecyl(pl, VB_CANCELLOUS, 2, cb3, si, zlo, -zadj - t, -1, 0);
        add_sphere(pl, VB_TUMOUR, (const double[3]){0, yt, 0}, r);
        add_ecyl(pl, VB_EPIDURAL, 2, o, (const double[3]){ac, bc, 0}, zlo, zhi, -1, 0);
        add_ecyl(pl, VB_CSF, 2, (const double[3]){0, ys, 0}, (const double[3]){sa, sb, 0}, zlo,
                 zhi, -1, 0);
        add_ecyl(pl, VB_CORD, 2, (const double[3]){0, yc, 0}, (const double[3]){ca, cb, 0}, zlo,
                 zhi, -1, 0);
    }
    const double Lz = g->len[2], Ladj = Z - zadj; /* neighbouring body length on each side */
    const double Ab = PI * a * b, Abi = PI * (a - t) * (b - t);
    const double col_cort = Ab * q->body_height_mm - Abi * (q->body_height_mm - 2 * t) +
                            2 * (Ab * Ladj - Abi * (Ladj - t));
    const double col_canc = Abi * (q->body_height_mm - 2 * t) + 2 * Abi * (Ladj - t);
    const double s_out = ellipse_area_above(ac + lam, bc + lam, -bc);
    const double s_out_in = ellipse_area_above(ac + lam - t, bc + lam - t, -bc);
    const double s_can_out = ellipse_area_above(ac + t, bc + t, -bc);
    const double s_can = PI * ac * bc;
    const double vt = 4.0 / 3.0 * PI * r * r * r;
    d->volume_mm3[VB_CORTICAL] = col_cort + (s_out - s_out_in + s_can_out - s_can) * Lz;
    d->volume_mm3[VB_CANCELLOUS] = col_canc + (s_out_in - s_can_out) * Lz - vt;
    d->volume_mm3[VB_TUMOUR] = vt;
    d->volume_mm3[VB_DISC] = 2 * Ab * q->disc_mm;
    d->volume_mm3[VB_EPIDURAL] = (s_can - PI * sa * sb) * Lz;
    d->volume_mm3[VB_CSF] = PI * (sa * sb - ca * cb) * Lz;
    d->volume_mm3[VB_CORD] = PI * ca * cb * Lz;
    d->volume_mm3[VB_FAT] = (q->prevertebral_fat_mm + q->fat_mm) * g->len[0] * Lz;
    d->volume_mm3[VB_SKIN] = q->skin_mm * g->len[0] * Lz;
    background_volume(g, d);
    set_distance(d, VB_TUMOUR, VB_CORD, q->tumour_wall_gap_mm + t + q->cord_wall_gap_mm,
                 "tumour surface to spinal cord");
    set_distance(d, VB_TUMOUR, VB_EPIDURAL, q->tumour_wall_gap_mm + t,
                 "tumour surface to spinal canal");
    return ABL_OK;
}

enum { HU_AIR, HU_SKIN, HU_FAT, HU_MUSCLE, HU_CORTEX, HU_MARROW, HU_TUMOUR, HU_NERVE };

static abl_status build_humerus(const abl_phantom_humerus *q, const dom *g, prim_list *pl,
                                abl_phantom_design *d, abl_error *err)
{
    const double X = g->half[0], Y = g->half[1], Z = g->half[2];
    const double R = q->arm_diameter_mm / 2, Rf = R - q->skin_mm, Rm = Rf - q->fat_mm;
    const double Ro = q->bone_diameter_mm / 2, Ri = q->canal_diameter_mm / 2;
    const double r = q->tumour_diameter_mm / 2, rho = q->tumour_offset_mm;
    const double rn = q->nerve_diameter_mm / 2, th = q->nerve_angle_deg * PI / 180;
    if (R > X || R > Y)
        return abl_fail(err, ABL_EINVAL,
                        "humerus phantom: arm_diameter_mm = %g does not fit in extent_x_mm / "
                        "extent_y_mm", q->arm_diameter_mm);
    if (Ri >= Ro || Ro >= Rm)
        return abl_fail(err, ABL_EINVAL,
                        "humerus phantom: need canal_diameter_mm < bone_diameter_mm < "
                        "arm_diameter_mm - 2 (skin_mm + fat_mm)");
    if (rho >= Ro || rho + r > Rm || r > Z)
        return abl_fail(err, ABL_EINVAL,
                        "humerus phantom: the metastasis must be centred in the bone "
                        "(tumour_offset_mm < bone_diameter_mm / 2) and stay inside the muscle "
                        "(tumour_offset_mm + tumour_diameter_mm / 2 <= %g mm)", Rm);
    /* nerve axis at radius Rn, angle th from +y towards +x, |axis - tumour centre| = dn */
    const double dn = r + q->nerve_gap_mm + rn, disc = dn * dn - sq(rho * sin(th));
    const double Rn = disc >= 0 ? rho * cos(th) + sqrt(disc) : -1;
    if (Rn - rn <= Ro || Rn + rn > Rm)
        return abl_fail(err, ABL_EINVAL,
                        "humerus phantom: at nerve_angle_deg = %g and nerve_gap_mm = %g the nerve "
                        "(axis %g mm from the shaft) would cut into the bone or leave the muscle "
                        "(allowed %g..%g mm): change nerve_gap_mm or nerve_angle_deg",
                        q->nerve_angle_deg, q->nerve_gap_mm, Rn, Ro + rn, Rm - rn);
    const double xn = Rn * sin(th), yn = Rn * cos(th);

    if (pl) {
        add_zcyl(pl, HU_SKIN, g, 0, 0, R);
        add_zcyl(pl, HU_FAT, g, 0, 0, Rf);
        add_zcyl(pl, HU_MUSCLE, g, 0, 0, Rm);
        add_zcyl(pl, HU_CORTEX, g, 0, 0, Ro);
        add_zcyl(pl, HU_MARROW, g, 0, 0, Ri);
        add_sphere(pl, HU_TUMOUR, (const double[3]){0, rho, 0}, r);
        add_zcyl(pl, HU_NERVE, g, xn, yn, rn);
    }
    const double Lz = g->len[2], vt = 4.0 / 3.0 * PI * r * r * r;
    const double v_in = sphere_in_cylinder(r, Ri, rho), v_out = sphere_in_cylinder(r, Ro, rho);
    d->volume_mm3[HU_SKIN] = PI * (R * R - Rf * Rf) * Lz;
    d->volume_mm3[HU_FAT] = PI * (Rf * Rf - Rm * Rm) * Lz;
    d->volume_mm3[HU_NERVE] = PI * rn * rn * Lz;
    d->volume_mm3[HU_MUSCLE] =
        PI * (Rm * Rm - Ro * Ro) * Lz - (vt - v_out) - d->volume_mm3[HU_NERVE];
    d->volume_mm3[HU_CORTEX] = PI * (Ro * Ro - Ri * Ri) * Lz - (v_out - v_in);
    d->volume_mm3[HU_MARROW] = PI * Ri * Ri * Lz - v_in;
    d->volume_mm3[HU_TUMOUR] = vt;
    background_volume(g, d);
    set_distance(d, HU_TUMOUR, HU_NERVE, q->nerve_gap_mm, "tumour surface to radial nerve");
    /* The periosteum point closest to the nerve, unless the tumour has replaced it. */
    if (sq(Ro * sin(th)) + sq(Ro * cos(th) - rho) > r * r)
        set_distance(d, HU_CORTEX, HU_NERVE, Rn - rn - Ro, "humeral surface to radial nerve");
    return ABL_OK;
}

/* ---- design and generation --------------------------------------------------------------- */

static abl_status build(const abl_phantom_params *p, double h, prim_list *pl,
                        abl_phantom_design *d, abl_error *err)
{
    memset(d, 0, sizeof *d);
    if ((unsigned)p->kind >= PHANTOM_COUNT)
        return abl_fail(err, ABL_EINVAL, "phantom: unknown kind %d", (int)p->kind);
    int n;
    const param_desc *pd = params_of(p->kind, &n);
    for (int i = 0; i < n; i++) {
        double v = phantom_param_value(p, i);
        if (!isfinite(v) || v < pd[i].info.min || v > pd[i].info.max)
            return abl_fail(err, ABL_EINVAL, "%s phantom: %s = %g: allowed [%g, %g] %s",
                            phantom_name(p->kind), pd[i].info.key, v, pd[i].info.min,
                            pd[i].info.max, unit_of(pd[i].info.key));
    }
    if (!isfinite(h) || h < PHANTOM_SPACING_MIN_MM || h > PHANTOM_SPACING_MAX_MM)
        return abl_fail(err, ABL_EINVAL, "spacing %g mm: allowed [%g, %g] mm", h,
                        PHANTOM_SPACING_MIN_MM, PHANTOM_SPACING_MAX_MM);
    /* the extents are the first three parameters of every kind */
    dom g;
    size_t total = 1;
    for (int a = 0; a < 3; a++) {
        double L = phantom_param_value(p, a), nv = L / h, nr = nearbyint(nv);
        if (fabs(nv - nr) > 1e-6 * nv)
            return abl_fail(err, ABL_EINVAL,
                            "spacing %g mm does not divide %s = %g mm into whole voxels: use a "
                            "spacing that divides every extent (e.g. 1, 0.5, 0.25, 0.2)",
                            h, pd[a].info.key, L);
        d->dims[a] = (int)nr;
        g.len[a] = L;
        g.half[a] = L / 2;
        total *= (size_t)d->dims[a];
    }
    if (total > ABL_GRID_MAX_VOXELS)
        return abl_fail(err, ABL_EINVAL, "spacing %g mm gives %d x %d x %d voxels; at most %zu "
                        "allowed: use a coarser spacing", h, d->dims[0], d->dims[1], d->dims[2],
                        (size_t)ABL_GRID_MAX_VOXELS);
    d->spacing_mm = h;
    const abl_phantom_label *lt;
    d->nlabels = phantom_labels(p->kind, &lt);
    switch (p->kind) {
    case PHANTOM_LIVER: return build_liver(&p->u.liver, &g, pl, d, err);
    case PHANTOM_LUNG: return build_lung(&p->u.lung, &g, pl, d, err);
    case PHANTOM_VERTEBRA: return build_vertebra(&p->u.vertebra, &g, pl, d, err);
    case PHANTOM_HUMERUS: return build_humerus(&p->u.humerus, &g, pl, d, err);
    default: return abl_fail(err, ABL_EINVAL, "phantom: unknown kind");
    }
}

abl_status phantom_design(const abl_phantom_params *p, double spacing_mm, abl_phantom_design *d,
                          abl_error *err)
{
    return build(p, spacing_mm, NULL, d, err);
}

static char *label_names(abl_phantom_kind kind)
{
    const abl_phantom_label *lt;
    int n = phantom_labels(kind, &lt);
    size_t len = 1;
    for (int i = 0; i < n; i++) len += strlen(lt[i].tissue) + 8;
    char *s = malloc(len), *q = s;
    if (!s) return NULL;
    *q = '\0';
    for (int i = 0; i < n; i++) q += sprintf(q, "%s%d:%s", i ? "," : "", i, lt[i].tissue);
    return s;
}

abl_status phantom_generate(const abl_phantom_params *p, double spacing_mm, abl_mesh *out,
                            abl_error *err)
{
    memset(out, 0, sizeof *out);
    abl_phantom_design d;
    prim_list *pl = malloc(sizeof *pl);
    if (!pl) return abl_fail(err, ABL_ENOMEM, "%s phantom: out of memory", phantom_name(p->kind));
    pl->n = 0;
    abl_status st = build(p, spacing_mm, pl, &d, err);
    if (st) {
        free(pl);
        return st;
    }
    const size_t n = (size_t)d.dims[0] * d.dims[1] * d.dims[2];
    out->labels = malloc(n);
    out->label_names = label_names(p->kind);
    if (!out->labels || !out->label_names) {
        free(pl);
        mesh_free(out);
        return abl_fail(err, ABL_ENOMEM, "%s phantom: cannot allocate %zu voxels",
                        phantom_name(p->kind), n);
    }
    for (int a = 0; a < 3; a++) {
        out->dims[a] = d.dims[a];
        out->spacing_mm[a] = spacing_mm;
        out->origin_mm[a] = -0.5 * (d.dims[a] - 1) * spacing_mm;
    }
    memset(out->labels, 0, n); /* label 0 is every phantom's background */
    paint_all(pl, d.dims, spacing_mm, out->origin_mm, out->labels);
    free(pl);

    size_t count[256] = {0};
    for (size_t i = 0; i < n; i++) count[out->labels[i]]++;
    const abl_phantom_label *lt;
    int nl = phantom_labels(p->kind, &lt);
    for (int l = 0; l < nl; l++)
        if (count[l] == 0) {
            mesh_free(out);
            return abl_fail(err, ABL_EINVAL,
                            "%s phantom: the %s (label %d, designed %.3g mm^3) has no voxel at "
                            "spacing %g mm: use a finer spacing or make it larger",
                            phantom_name(p->kind), lt[l].structure, l, d.volume_mm3[l],
                            spacing_mm);
        }
    return ABL_OK;
}
