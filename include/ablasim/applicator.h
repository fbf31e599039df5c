/* applicator.h - what the applicator sources share (issue 19: "applicators share one kit").
 *
 * RFA electrodes, MWA antennas and cryoprobes are needles: each reads an axis from the
 * scenario (tip_mm, direction), and every source (the basic ones too) decides per step whether
 * it is on, and allocates a source object with its private state. These are written once here;
 * the modality files keep what is theirs (electrode sets, SAR patterns, probe voxel rules,
 * generators, protocols). Rasterisation stays per modality for now: unifying it changes
 * results and belongs with the sub-voxel needle work (issue 15).
 */
#ifndef ABLASIM_APPLICATOR_H
#define ABLASIM_APPLICATOR_H

#include <stdbool.h>
#include <stddef.h>

#include "ablasim/config.h"
#include "ablasim/source.h"
#include "ablasim/status.h"

/* A needle's axis: tip [m] and unit direction from the tip towards the handle. */
typedef struct {
    double tip_m[3];
    double dir[3];
} abl_needle_axis;

/* Reads tip_mm ([x, y, z], |x| <= 1e4 mm) and direction (any non-zero vector, normalised) of
 * mapping e. what names the applicator in the message for a zero direction ("electrode",
 * "antenna", "probe"): "<file:line>: '<key>' = [..]: the <what> direction (tip towards the
 * handle) must be a non-zero vector". */
abl_status needle_axis_parse(cfg_node *e, const char *what, abl_needle_axis *ax, abl_error *err);

/* Whether a source active on [on_s, off_s) is on for the step of v. Heat is for the step's
 * interval, which never straddles on_s or off_s (steps are aligned to them, sim.c): decided at
 * its midpoint, so the step that ends at off_s still heats in every scheme (backward Euler asks
 * at the step's end). Without a step interval (step_h_s = 0): at v->t_s. */
bool source_window_on(const abl_field_view *v, double on_s, double off_s);

/* A zeroed source object and a zeroed private state of state_size bytes, named after cfg and
 * bound to ops; ABL_ENOMEM naming the source when either allocation fails (nothing leaks). */
abl_status source_alloc(const abl_source_cfg *cfg, const abl_source_ops *ops, size_t state_size,
                        abl_source **out, void **state, abl_error *err);

#endif
