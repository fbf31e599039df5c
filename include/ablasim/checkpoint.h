/* checkpoint.h - consistent snapshots of a running simulation, and resuming from them.
 *
 * A checkpoint holds everything the time loop reads: the scenario as it was loaded (file text,
 * path, --set list), the step count, every evolving field (T, running maps, damage maps,
 * freeze-thaw counts), the energy and solver bookkeeping, the state of every source that has
 * one (source.h state_io: controllers, recorded series), and how many snapshots the result file
 * had received. Resuming
 * rebuilds the simulation from the stored scenario text (tissues and meshes are read again from
 * their paths), restores the state and continues; the same kernels on the same state give
 * bitwise the same fields as an uninterrupted run. Written atomically (temporary + rename).
 * Layout: /checkpoint (attributes), /state/<field> datasets (fields, CG log of implicit runs),
 * /state/source_<i> uint8 blobs (attr source_name) of the sources with state_io.
 */
#ifndef ABLASIM_CHECKPOINT_H
#define ABLASIM_CHECKPOINT_H

#include "ablasim/scenario.h"
#include "ablasim/sim.h"

typedef struct {
    char *output_path;       /* result file the run writes */
    long snapshots_written;  /* snapshots already in the partial result */
} abl_checkpoint_info;

/* Write s's state to path (atomically). */
abl_status checkpoint_write(const char *path, const abl_sim *s, const char *output_path,
                            long snapshots_written, abl_error *err);
/* Read the scenario stored in a checkpoint and load it (as scenario_load would). */
abl_status checkpoint_load_scenario(const char *path, abl_scenario **sc, abl_checkpoint_info *info,
                                    abl_error *err);
/* Restore the state into a simulation created from that scenario (grid must match). */
abl_status checkpoint_restore(const char *path, abl_sim *s, abl_error *err);
void checkpoint_info_free(abl_checkpoint_info *info);

#endif
