/* cryo.h - cryoablation probe source: the pieces tests and tools use directly.
 *
 * The source itself registers as type 'cryo' (src/sources/cryo.c, docs/CRYO.md): 1 to 8 probes,
 * each a line segment (tip, direction, active length, gauge) whose voxels are held at the
 * temperature a freeze / passive thaw / active thaw protocol prescribes, optionally limited in
 * the heat each probe can extract. Exported here: a probe's state for tests; the needle gauge
 * table, the held set and its sub-voxel coupling are the applicator kit's (applicator.h).
 */
#ifndef ABLASIM_CRYO_H
#define ABLASIM_CRYO_H

#include <stddef.h>

#include "ablasim/grid.h"
#include "ablasim/source.h"

#define CRYO_MAX_PROBES 8

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
