/* phantom.h - anatomical voxel phantoms (meshes/liver.h5, lung.h5, vertebra.h5, humerus.h5).
 *
 * Each phantom is a deterministic function of a parameter struct (lengths in mm, angles in
 * degrees; defaults below, sources in docs/PHANTOMS.md) and the voxel spacing: simple primitives
 * (slabs, spheres, circular and elliptic cylinders) are painted in a fixed order and a voxel takes
 * the label of the last primitive whose volume holds its centre. No randomness; the output is
 * bitwise identical at any OpenMP thread count. Labels map to tissues of configs/tissues.yaml
 * (the mesh's label_names hint, e.g. "0:liver,1:tumour,2:blood,..."). Every phantom also has
 * analytic "designed" label volumes and structure-to-structure gaps, which the tests compare
 * against the voxelised result.
 *
 * Coordinates: the grid is centred on 0 (origin_mm = centre of voxel 0 = -(n-1) h / 2); each
 * extent must be a whole number of voxels so the designed volumes are exact for the grid.
 */
#ifndef ABLASIM_PHANTOM_H
#define ABLASIM_PHANTOM_H

#include "ablasim/mesh.h"
#include "ablasim/status.h"

typedef enum {
    PHANTOM_LIVER,
    PHANTOM_LUNG,
    PHANTOM_VERTEBRA,
    PHANTOM_HUMERUS,
    PHANTOM_COUNT
} abl_phantom_kind;

#define PHANTOM_MAX_LABELS 16
#define PHANTOM_MAX_DISTANCES 4
/* Voxel spacing accepted by the generators [mm]: finer costs memory (0.1 mm liver = 1e9
 * voxels), coarser loses the 1 mm layers (capsule, cortex). */
#define PHANTOM_SPACING_MIN_MM 0.1
#define PHANTOM_SPACING_MAX_MM 2.0

/* Liver: x left-right, y towards the anterior body wall (+y = outside), z cranio-caudal.
 * From +y down: skin, subcutaneous fat, abdominal wall muscle, capsule, parenchyma (a planar
 * liver surface). Metastasis (sphere) at x = z = 0 below the surface; hepatic vein along z on
 * the +x side of the tumour, same depth. */
typedef struct {
    double extent_x_mm, extent_y_mm, extent_z_mm; /* 100, 100, 100 */
    double skin_mm;            /* 2 */
    double fat_mm;             /* 15: subcutaneous fat */
    double muscle_mm;          /* 12: abdominal wall muscle */
    double capsule_mm;         /* 1: Glisson's capsule (muscle as substitute tissue) */
    double tumour_diameter_mm; /* 25 */
    double tumour_depth_mm;    /* 20: liver surface (capsule) to tumour surface */
    double vein_diameter_mm;   /* 6 */
    double vein_gap_mm;        /* 7: tumour surface to vein wall */
} abl_phantom_liver;

/* Lung: x medial (-, mediastinum) to lateral (+, chest wall), y antero-posterior, z cranio-
 * caudal. Along x: heart, mediastinal fat (phrenic nerve along z), inflated lung, intercostal
 * layer with ribs (elliptic cylinders along y), chest wall muscle, subcutaneous fat, skin.
 * Nodule (sphere) near the mediastinum at y = z = 0; bronchus along z on its +y side. */
typedef struct {
    double extent_x_mm, extent_y_mm, extent_z_mm; /* 110, 100, 100 */
    double heart_mm;             /* 10: myocardium/pericardium slab (muscle) */
    double mediastinal_fat_mm;   /* 10 */
    double intercostal_mm;       /* 10: layer holding the ribs */
    double chest_muscle_mm;      /* 8 */
    double fat_mm;               /* 10: subcutaneous */
    double skin_mm;              /* 2 */
    double nodule_diameter_mm;   /* 20 */
    double nerve_diameter_mm;    /* 3: phrenic nerve with its pericardiophrenic bundle */
    double nerve_depth_mm;       /* 3: nerve axis medial of the mediastinal surface */
    double nerve_gap_mm;         /* 8: nodule surface to nerve surface */
    double bronchus_lumen_mm;    /* 6: lumen diameter */
    double bronchus_wall_mm;     /* 1.5 */
    double bronchus_gap_mm;      /* 5: nodule surface to bronchial wall */
    double rib_height_mm;        /* 12: cranio-caudal */
    double rib_thickness_mm;     /* 7: along x */
    double rib_cortex_mm;        /* 1 */
    double rib_pitch_mm;         /* 25: rib centre to rib centre along z */
} abl_phantom_lung;

/* Vertebra (lower thoracic): x lateral, y posterior (+y = back), z cranial. Canal centred at
 * x = y = 0; vertebral body (elliptic cylinder along z) in front of it with discs and the
 * neighbouring bodies above and below; posterior arch = ring around the canal behind the plane
 * of the body's posterior wall; epidural fat, CSF (saline) and cord inside the canal; lytic
 * metastasis (sphere) in the posterior part of the body at x = z = 0. */
typedef struct {
    double extent_x_mm, extent_y_mm, extent_z_mm; /* 80, 90, 50 */
    double body_width_mm;        /* 36 */
    double body_depth_mm;        /* 30 */
    double body_height_mm;       /* 22 */
    double cortex_mm;            /* 1: cortical shell, endplates and arch surface */
    double disc_mm;              /* 5: intervertebral disc height (muscle as substitute) */
    double canal_width_mm;       /* 18 */
    double canal_depth_mm;       /* 16 */
    double lamina_mm;            /* 7: thickness of the posterior arch ring */
    double sac_width_mm;         /* 14: dural sac (CSF) */
    double sac_depth_mm;         /* 12 */
    double epidural_anterior_mm; /* 1: posterior body wall to dura */
    double cord_width_mm;        /* 8.3 */
    double cord_depth_mm;        /* 6.3 */
    double cord_wall_gap_mm;     /* 3: posterior body wall to cord surface */
    double tumour_diameter_mm;   /* 16 */
    double tumour_wall_gap_mm;   /* 2: tumour surface to the posterior cortex */
    double prevertebral_fat_mm;  /* 6: fat slab in front (at -y) */
    double fat_mm;               /* 10: subcutaneous fat at the back */
    double skin_mm;              /* 2 */
} abl_phantom_vertebra;

/* Humerus (mid/distal diaphysis): x lateral, y posterior, z along the shaft. Arm = coaxial
 * cylinders (skin, fat, muscle) in air; humeral cortex (tube) with yellow marrow; metastasis
 * (sphere) centred tumour_offset_mm from the shaft axis towards +y; nerve along z, placed at
 * nerve_angle_deg around the shaft from the tumour direction (towards +x) so that its surface is
 * nerve_gap_mm from the tumour surface. */
typedef struct {
    double extent_x_mm, extent_y_mm, extent_z_mm; /* 110, 110, 80 */
    double arm_diameter_mm;     /* 94 */
    double skin_mm;             /* 1.5 */
    double fat_mm;              /* 8 */
    double bone_diameter_mm;    /* 20 */
    double canal_diameter_mm;   /* 12 */
    double tumour_diameter_mm;  /* 16 */
    double tumour_offset_mm;    /* 8: tumour centre from the shaft axis */
    double nerve_diameter_mm;   /* 2.5 */
    double nerve_gap_mm;        /* 12: tumour surface to nerve surface */
    double nerve_angle_deg;     /* 90 */
} abl_phantom_humerus;

typedef struct {
    abl_phantom_kind kind;
    union {
        abl_phantom_liver liver;
        abl_phantom_lung lung;
        abl_phantom_vertebra vertebra;
        abl_phantom_humerus humerus;
    } u;
} abl_phantom_params;

/* One settable parameter (every field of the structs above is one). */
typedef struct {
    const char *key; /* field name, e.g. "tumour_diameter_mm" */
    double def, min, max;
    const char *doc;
} abl_phantom_param_info;

/* One label of a phantom: the structure it represents and its tissue (a key of
 * configs/tissues.yaml; substitutes are documented in docs/PHANTOMS.md). */
typedef struct {
    const char *structure;
    const char *tissue;
} abl_phantom_label;

/* A designed surface-to-surface gap between two labelled structures (the closest approach). */
typedef struct {
    int label_a, label_b;
    double gap_mm;
    const char *what;
} abl_phantom_distance;

/* The design of a phantom at a spacing: grid, analytic label volumes, designed gaps. */
typedef struct {
    int dims[3];
    double spacing_mm;
    int nlabels;
    double volume_mm3[PHANTOM_MAX_LABELS];
    int ndistances;
    abl_phantom_distance distance[PHANTOM_MAX_DISTANCES];
} abl_phantom_design;

const char *phantom_name(abl_phantom_kind kind); /* "liver", "lung", "vertebra", "humerus" */
const char *phantom_summary(abl_phantom_kind kind); /* one line */
/* Kind from its name; ABL_EINVAL listing the names otherwise. */
abl_status phantom_kind_from_name(const char *name, abl_phantom_kind *kind, abl_error *err);

/* Defaults of a kind (the committed meshes). */
void phantom_defaults(abl_phantom_kind kind, abl_phantom_params *p);
int phantom_param_count(abl_phantom_kind kind);
const abl_phantom_param_info *phantom_param(abl_phantom_kind kind, int i);
double phantom_param_value(const abl_phantom_params *p, int i);
/* Set parameter 'key' from text 'value' (a finite number inside the parameter's range).
 * ABL_EINVAL names the key, the value and what is allowed (or lists the known keys). */
abl_status phantom_set(abl_phantom_params *p, const char *key, const char *value,
                       abl_error *err);

/* Label table of a kind; returns the number of labels (label i = entry i). */
int phantom_labels(abl_phantom_kind kind, const abl_phantom_label **labels);

/* Validate the parameters and the spacing (range PHANTOM_SPACING_*; every extent a whole number
 * of voxels) and fill the design. ABL_EINVAL says which structure does not fit and which
 * parameters to change. */
abl_status phantom_design(const abl_phantom_params *p, double spacing_mm, abl_phantom_design *d,
                          abl_error *err);

/* Generate the label grid (allocates out->labels and out->label_names; free with mesh_free).
 * Fails with ABL_EINVAL also when a structure has no voxel at this spacing. */
abl_status phantom_generate(const abl_phantom_params *p, double spacing_mm, abl_mesh *out,
                            abl_error *err);

#endif
