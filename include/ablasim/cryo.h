/* cryo.h - cryoablation probe source: the pieces tests and tools use directly.
 *
 * The source itself registers as type 'cryo' (src/sources/cryo.c, docs/CRYO.md): 1 to 8 probes,
 * each a line segment (tip, direction, active length, gauge) whose voxels are held at the
 * temperature a freeze / passive thaw / active thaw protocol prescribes, optionally limited in
 * the heat each probe can extract. Exported here: the needle gauge table, the rule that turns a
 * probe into voxels, the probe heat-extraction estimate and a probe's state for tests.
 */
#ifndef ABLASIM_CRYO_H
#define ABLASIM_CRYO_H

#include <stddef.h>

#include "ablasim/grid.h"
#include "ablasim/source.h"

#define CRYO_MAX_PROBES 8

/* Nominal outer diameter [mm] of a needle of Stubs (Birmingham) wire gauge 10..18, the sizing
 * of cryoablation needles (17 G = 1.473 mm, 13 G = 2.413 mm); NaN for other gauges. */
double cryo_gauge_diameter_mm(int gauge);

/* Radius [m] within which a voxel centre belongs to the held set of a probe of radius radius_m
 * on grid g (h: the largest spacing): max(radius_m + CRYO_HOLD_GAP h, CRYO_HOLD_MIN h). The held
 * set is deliberately wider than the needle: the tissue voxels around it are coupled to the true
 * surface at radius_m through the line-source (logarithmic) profile (docs/CRYO.md "Sub-voxel
 * probe coupling"), and that coupling is accurate and never stiffer than an ordinary face when
 * those voxels lie at least about a voxel from the axis. Every point of the active segment lies
 * in a held voxel, so the set is connected at any orientation. */
#define CRYO_HOLD_GAP 0.75
#define CRYO_HOLD_MIN 1.5
double cryo_voxel_radius_m(const abl_grid *g, double radius_m);

/* The held set of a probe of needle radius radius_m: voxel centres within cryo_voxel_radius_m
 * (rh) of the active segment pulled back at both ends by rh - radius_m (so that the held capsule
 * ends where the needle's own rounded ends do: a wider hold does not lengthen the probe), and
 * every centre within max(radius_m + CRYO_NEAR_GAP h, half the voxel diagonal) of the true
 * segment (the ends themselves, always connected). Index order, up to cap into idx (may be
 * NULL); returns the total count. */
#define CRYO_NEAR_GAP 0.5
size_t cryo_probe_voxels(const abl_grid *g, const double tip_m[3], const double dir[3],
                         double length_m, double radius_m, size_t *idx, size_t cap);

/* What a probe does during the step of the last update. */
typedef enum { CRYO_OFF, CRYO_PINNED, CRYO_LIMITED } cryo_mode;

typedef struct {
    size_t nvox; /* probe voxels */
    int phase;   /* index in the probe's protocol; -1: before on_s or after the protocol */
    cryo_mode mode;
    double T_C;     /* pinned temperature, or the mean probe-voxel temperature if not pinned */
    double power_W; /* heat extracted: conduction estimate when pinned, the limit when
                     * limited, 0 when off (negative: the probe heats, active thaw) */
} cryo_probe_state;

/* State of probe p (0-based) of a 'cryo' source after its last update; ABL_EINVAL if s is not a
 * cryo source or p is out of range. */
abl_status cryo_probe_get_state(const abl_source *s, int p, cryo_probe_state *out, abl_error *err);

#endif
