/* zone.h - size of a thresholded zone relative to an applicator axis, and its volume.
 *
 * Clinicians and device makers quote an ablation (or ice-ball) zone as its length along the
 * applicator and its diameter across it (e.g. "3.5 x 2.8 cm at 100 W, 10 min"). This module
 * measures that on any voxel field: the zone is {field >= thr} (hot isotherms on T_max_C,
 * Arrhenius Omega >= 1) or {field <= thr} (cold isotherms on T_min_C), the axis a tip position
 * and a direction (the abl_source_axis of source.h). The output writer (output.c) reports it for
 * every applicator, the run log (runlog.h) as growth curves during the run; mwa_zone_dims
 * (mwa.h) is the T_max >= thr special case.
 *
 * Every measure here is a count, a minimum or a maximum, so it does not depend on the thread
 * count or on the part of the grid visited as long as that part holds the whole zone: a growth
 * curve measured inside a bounding box ends exactly on the final zone measured on the grid.
 */
#ifndef ABLASIM_ZONE_H
#define ABLASIM_ZONE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ablasim/grid.h"

/* Directions across the axis over which the smallest diameter is sought: 18, every 10 degrees
 * over a half turn. The smallest caliper width of a convex section is then overestimated by at
 * most a factor 1/cos(5 deg) - 1 = 0.4 % (0.1 mm on a 30 mm zone), well under a voxel. */
#define ZONE_CALIPER_DIRS 18

typedef struct {
    double length_m;       /* extent along the axis: voxel-centre extent + one voxel */
    double diameter_m;     /* the largest diameter: twice the largest distance from the axis
                            * + one voxel */
    double diameter_min_m; /* the smallest diameter: smallest caliper width across the axis
                            * (ZONE_CALIPER_DIRS directions) + one voxel */
    double diameter_eq_m;  /* equivalent diameter: of the ellipsoid of revolution about the axis
                            * with the zone's length and volume, sqrt(6 V / (pi L)) (a sphere's
                            * own diameter for a sphere) */
    double volume_m3;      /* every voxel of the zone, connected or not */
    double volume_pv_m3;   /* partial-volume estimate: the voxels at the zone's surface (and
                            * their outside face neighbours) count the fraction of them inside
                            * the isotherm, from the signed distance (field - thr) / |grad| and
                            * the voxel's width along the gradient; removes most of the grid
                            * noise of the count (a zone shifted by a fraction of a voxel);
                            * biased high on convex zones by about (w/R)^2/4 (w: the voxel's
                            * width along the normal, R the zone's radius; 1-3 % at R = 5 h) */
    long nvox;
} abl_axis_zone;

/* A box of voxels: indices lo[a] <= i < hi[a] along each axis (empty when some hi <= lo). */
typedef struct {
    int lo[3], hi[3];
} abl_box;

/* The whole grid as a box. */
abl_box zone_grid_box(const abl_grid *g);

/* Bounding box of the zone {field >= thr_value} (at_or_above) or {field <= thr_value} within
 * the box `in` (NULL: the whole grid). Returns the number of zone voxels; an empty box when 0. */
long zone_bbox(const abl_grid *g, const double *field, double thr_value, bool at_or_above,
               const abl_box *in, abl_box *out);

/* Measure the zone {field >= thr_value} (at_or_above) or {field <= thr_value} relative to the
 * axis through tip_m [m] with direction dir (any length > 0, any sign). With s the coordinate
 * of a voxel centre along the axis and r its distance from the axis:
 *   length       = max s - min s + sum_a h_a |d_a|           (one voxel's extent along the axis)
 *   diameter     = 2 max r + max_a h_a sqrt(1 - d_a^2)       (one voxel's extent across it)
 *   diameter_min = min over directions u across the axis of (max u.x - min u.x) + the same
 *   diameter_eq  = sqrt(6 volume / (pi length))
 * so a grid-aligned box of n voxels along the axis measures exactly n h (across the axis too
 * when the spacing is the same in both directions across it; with two spacings the larger is
 * added whatever the direction of max r: up to their difference too much, e.g. 1.5 mm on a
 * 0.5 x 2 mm cross-section; QA of the result files, session 28). Voxels whose value is
 * NaN are never in the zone. Zero sizes (nvox = 0) when no voxel qualifies or dir is zero or
 * not finite. Deterministic: min/max and integer counts do not depend on the thread count. */
void zone_axis_measure(const abl_grid *g, const double *field, double thr_value, bool at_or_above,
                       const double tip_m[3], const double dir[3], abl_axis_zone *out);
/* The same, visiting only the voxels of box (which must hold the whole zone for the result to
 * be the zone's: e.g. the zone_bbox of the zone or of a zone containing it). */
void zone_axis_measure_box(const abl_grid *g, const double *field, double thr_value,
                           bool at_or_above, const abl_box *box, const double tip_m[3],
                           const double dir[3], abl_axis_zone *out);
/* The same for naxes axes (tip_m[a], dir[a]) in one scan of the box per 8 axes: out[a] is what
 * zone_axis_measure_box gives for axis a, bit for bit (the scan, the surface test and the
 * partial volume are shared; min/max and integer counts do not depend on the grouping). */
void zone_axes_measure_box(const abl_grid *g, const double *field, double thr_value,
                           bool at_or_above, const abl_box *box, int naxes,
                           const double (*tip_m)[3], const double (*dir)[3], abl_axis_zone *out);

/* Reusable work space of zone_largest_component (grown as needed; zero-initialise, release
 * with zone_scratch_free): a run measuring zones every few seconds then does not map and
 * zero fresh pages each time. */
typedef struct {
    uint8_t *state;
    uint32_t *stack;
    size_t cap;
} abl_zone_scratch;
void zone_scratch_free(abl_zone_scratch *w);

/* Voxel count of the zone's largest connected component within box (NULL: the whole grid),
 * voxels connected through faces (6-connectivity: voxels that touch only at an edge or a
 * corner are separate, so a diagonal chain of stray voxels is never merged into the zone).
 * Fills *nvox with the zone's voxel count. Needs 5 bytes per voxel of the box (state and
 * stack), in w (NULL: allocated and freed here); fails only when that allocation does. */
abl_status zone_largest_component(const abl_grid *g, const double *field, double thr_value,
                                  bool at_or_above, const abl_box *box, long *largest, long *nvox,
                                  abl_zone_scratch *w, abl_error *err);

#endif
