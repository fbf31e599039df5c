/* zone.h - size of a thresholded zone relative to an applicator axis.
 *
 * Clinicians and device makers quote an ablation (or ice-ball) zone as its length along the
 * applicator and its diameter across it (e.g. "3.5 x 2.8 cm at 100 W, 10 min"). This module
 * measures that on any voxel field: the zone is {field >= thr} (hot isotherms on T_max_C,
 * Arrhenius Omega >= 1) or {field <= thr} (cold isotherms on T_min_C), the axis a tip position
 * and a direction (the abl_source_axis of source.h). The output writer (output.c) reports it for
 * every applicator; mwa_zone_dims (mwa.h) is the T_max >= thr special case.
 */
#ifndef ABLASIM_ZONE_H
#define ABLASIM_ZONE_H

#include <stdbool.h>

#include "ablasim/grid.h"

typedef struct {
    double length_m;   /* extent along the axis: voxel-centre extent + one voxel */
    double diameter_m; /* twice the largest distance from the axis + one voxel */
    double volume_m3;  /* every voxel of the zone, connected or not */
    long nvox;
} abl_axis_zone;

/* Measure the zone {field >= thr_value} (at_or_above) or {field <= thr_value} relative to the
 * axis through tip_m [m] with direction dir (any length > 0, any sign). With s the coordinate
 * of a voxel centre along the axis and r its distance from the axis:
 *   length   = max s - min s + sum_a h_a |d_a|           (one voxel's extent along the axis)
 *   diameter = 2 max r + max_a h_a sqrt(1 - d_a^2)       (one voxel's extent across it)
 * so a grid-aligned box of n voxels along the axis measures exactly n h. Voxels whose value is
 * NaN are never in the zone. Zero sizes (nvox = 0) when no voxel qualifies or dir is zero or
 * not finite. Deterministic: min/max and integer counts do not depend on the thread count. */
void zone_axis_measure(const abl_grid *g, const double *field, double thr_value, bool at_or_above,
                       const double tip_m[3], const double dir[3], abl_axis_zone *out);

#endif
