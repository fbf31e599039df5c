/* shape.h - geometric primitives in millimetres (configs) / metres (internally) and their
 * rasterisation onto the grid, two ways:
 *  - centre rule (shape_voxels): a voxel belongs to a shape when its centre lies inside. Tissue
 *    regions (tumour, vessel, bone) use it: a voxel has one material, and the label grid is what
 *    the margin analysis and the outputs measure, so a documented, reproducible staircase is
 *    preferred there to mixed-material voxels (issue 15 leaves this choice to us);
 *  - volume fractions (shape_fractions): every voxel that overlaps the shape with the fraction
 *    of its volume inside. Source volumes use it (volumetric power, held temperatures), so that
 *    what a source deposits does not depend on where the shape falls relative to the grid.
 */
#ifndef ABLASIM_SHAPE_H
#define ABLASIM_SHAPE_H

#include <stdbool.h>
#include <stddef.h>

#include "ablasim/config.h"
#include "ablasim/grid.h"

typedef enum { SHAPE_SPHERE, SHAPE_ELLIPSOID, SHAPE_CYLINDER, SHAPE_BOX } abl_shape_type;

typedef struct {
    abl_shape_type type;
    double centre_m[3]; /* sphere, ellipsoid */
    double radii_m[3];  /* ellipsoid semi-axes along x, y, z; sphere: all equal */
    double a_m[3], b_m[3]; /* cylinder axis end points; box min and max corners */
    double radius_m;       /* cylinder, sphere */
} abl_shape;

/* The keys of a shape map and their documentation (the variant is the abl_shape_type). */
extern const cfg_keytable shape_keys;

/* Parse {type: sphere|ellipsoid|cylinder|box, ...} with keys in mm. 'extra' declares further keys
 * the caller reads from the same map (may be NULL) so they are not "unknown". */
abl_status shape_parse(cfg_node *map, const cfg_keytable *extra, abl_shape *out, abl_error *err);
bool shape_contains(const abl_shape *s, const double x_m[3]);
/* Axis-aligned bounding box of the shape [m]. */
void shape_bounds(const abl_shape *s, double lo_m[3], double hi_m[3]);
/* Indices of voxels whose centre is inside, ascending. *idx is malloc'ed (NULL when count 0). */
abl_status shape_voxels(const abl_shape *s, const abl_grid *g, size_t **idx, size_t *count,
                        abl_error *err);
const char *shape_type_name(abl_shape_type t);
/* Analytic volume of the shape [m^3]. */
double shape_volume_m3(const abl_shape *s);

/* Partial-volume rasterisation (issue 15).
 *
 * shape_fractions: indices (ascending) of every voxel of g whose volume fraction inside the
 * shape is >= SHAPE_FRAC_MIN, and that fraction in (0, 1] (voxels wholly inside get exactly
 * 1.0). *idx and *frac are malloc'ed (both NULL when count is 0); on failure both are NULL and
 * count 0. Deterministic: a voxel's fraction depends only on the shape and the voxel (no
 * reduction); z-planes are computed in parallel (OpenMP) and concatenated in order, so the
 * result is bitwise the same for any thread count. Parts of the shape outside the grid are
 * simply not listed.
 *
 * Method. Box: exact, the product of the three 1-D overlaps (an overlap within 1e-9 h of 0 or
 * of a whole voxel is snapped, so faces on voxel faces up to the round-off of mm -> m give no
 * sliver layer). Sphere, ellipsoid (handled as the unit sphere in coordinates scaled by the
 * semi-axes, where volume fractions are unchanged) and cylinder (any axis): a voxel or sub-cell
 * is decided inside/outside exactly (sphere, ellipsoid: nearest and farthest point of the cell)
 * or conservatively (cylinder: outside when the cell's extent along the axis misses the caps
 * or its radial distance exceeds R by the cell's extent across the axis; inside when the axial
 * extent is within the caps and all eight corners within R, by convexity); a cell still cut is
 * bisected along every
 * axis, down to `depth` levels. A leaf (cut cell at the last level, sides s_d = h_d / 2^depth,
 * half-diagonal rho, largest side s) gets the exact fraction under the surface's tangent plane
 * at the point nearest its centre, moved by the mean sag of the surface over the leaf (cylinder
 * rim: the product of the cap and lateral plane fractions).
 *
 * Error bound (derivation in docs/VERIFICATION.md, "Sub-voxel sources"). An undecided leaf has
 * its centre within rho of the surface, so it lies within 2 rho of it: the undecided leaves
 * fill at most the shell of half-width 2 rho, volume <= 4 rho A (A the surface area, Steiner,
 * to first order). Within a leaf the surface leaves its tangent plane by at most the sag
 * (2 rho)^2 / (2 R_c) (R_c the smallest radius of curvature, 1 for the scaled ellipsoid), over
 * a projected leaf area <= sqrt(3) s^2. With rho = sqrt(3) s / 2 for cubic leaves (unequal
 * sides s_d, as in the scaled ellipsoid: s^2 becomes at most s_max^3 / s_min):
 *   |sum_i f_i V_voxel - V_shape| <= 9.2 A s^2 / R_c   (+ 64 pi (R + 2 rho) rho^2, two rims,
 *                                                       for a cylinder of radius R)
 * i.e. a relative error <= 28 (s / R)^2 for a sphere of radius R (18 (s / R)^2 + the rim term
 * for a cylinder), and the same bound holds for sum_i |f_i - f_i exact| V_voxel. The default
 * depth (shape_fraction_depth) is the smallest >= SHAPE_FRAC_MIN_DEPTH with
 * s_d <= R_d / SHAPE_FRAC_LEAF_PER_RADIUS on every axis (R_d: the semi-axis along d, or the
 * cylinder radius), at most SHAPE_FRAC_MAX_DEPTH, so the guaranteed relative error is
 * <= 28 / 32^2 = 2.7e-2 for a sphere. That bound ignores the cancellation of the leaves' signed
 * errors and the sag correction: measured, sum_i |f_i - f_i exact| V_voxel at the default depth
 * is ~1e-6 of the shape volume (sphere r = 5 h: 1.7e-6; oblique cylinder r = 1.5 h: 1.3e-7), and
 * falls ~8x per level (tests/unit/test_subvoxel.c, docs/VERIFICATION.md). At the depth cap (a radius below ~h/4) the bound grows as (s / R)^2. */
#define SHAPE_FRAC_MIN 1e-9
#define SHAPE_FRAC_MIN_DEPTH 2
#define SHAPE_FRAC_MAX_DEPTH 7
#define SHAPE_FRAC_LEAF_PER_RADIUS 32
abl_status shape_fractions(const abl_shape *s, const abl_grid *g, size_t **idx, double **frac,
                           size_t *count, abl_error *err);
/* The same with an explicit octree depth (0 .. SHAPE_FRAC_MAX_DEPTH; box: ignored, exact). */
abl_status shape_fractions_depth(const abl_shape *s, const abl_grid *g, int depth, size_t **idx,
                                 double **frac, size_t *count, abl_error *err);
/* The depth shape_fractions uses for s on g (0 for a box). */
int shape_fraction_depth(const abl_shape *s, const abl_grid *g);

#endif
