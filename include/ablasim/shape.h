/* shape.h - geometric primitives in millimetres (configs) / metres (internally) and their
 * rasterisation onto the grid: a voxel belongs to a shape when its centre lies inside.
 * Used for tissue regions (tumour, vessel, bone) and for source volumes.
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

/* Parse {type: sphere|ellipsoid|cylinder|box, ...} with keys in mm. 'extra' lists further keys
 * the caller reads from the same map (NULL-terminated, may be NULL) so they are not "unknown". */
abl_status shape_parse(cfg_node *map, const char *const *extra, abl_shape *out, abl_error *err);
bool shape_contains(const abl_shape *s, const double x_m[3]);
/* Axis-aligned bounding box of the shape [m]. */
void shape_bounds(const abl_shape *s, double lo_m[3], double hi_m[3]);
/* Indices of voxels whose centre is inside, ascending. *idx is malloc'ed (NULL when count 0). */
abl_status shape_voxels(const abl_shape *s, const abl_grid *g, size_t **idx, size_t *count,
                        abl_error *err);
const char *shape_type_name(abl_shape_type t);

#endif
