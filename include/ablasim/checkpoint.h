/* checkpoint.h - consistent snapshots of a running simulation, and resuming from them.
 *
 * A checkpoint holds everything the time loop reads: the scenario as it was loaded (file text,
 * path, --set list), the step count, every evolving field (T, running maps, damage maps,
 * freeze-thaw counts), the energy and solver bookkeeping, the state of every source that has
 * one (source.h state_io: controllers, recorded series), and how many snapshots the result file
 * had received. Resuming rebuilds the simulation from the stored scenario text (tissues and
 * meshes are read again from their stored absolute paths, so a resume may start in any
 * directory), restores the state and continues; the same kernels on the same state give
 * bitwise the same fields as an uninterrupted run. Written atomically (temporary, fsync,
 * rename).
 *
 * Layout (format 2): /checkpoint (attributes; dataset tissue_properties), /state/<field>
 * datasets (fields, CG log of implicit runs), /state/source_<i> uint8 blobs (attr source_name)
 * of the sources with state_io.
 *
 * Integrity: every dataset carries checksum_u64 (64-bit word-wise hash of its bytes, see
 * checkpoint.c), and /checkpoint carries attributes_checksum_u64 over every other attribute
 * of the file (objects and attributes in name order). Reading refuses, before anything is
 * used, a damaged file (naming the dataset), an older or newer format, another ablasim
 * version, and then a state no run can reach (non-finite or out-of-range fields, naming the
 * field and the first bad voxel).
 *
 * Provenance: the absolute scenario base directory, tissue table, mesh and output paths; the
 * properties of every tissue in use after overrides (tissue_properties, tissue_digest_u64);
 * a digest of the voxel materials sim_create built (material_digest_u64). Resuming refuses a
 * missing input (naming the stored path), a changed tissue value (naming tissue and
 * property) and a changed mesh.
 */
#ifndef ABLASIM_CHECKPOINT_H
#define ABLASIM_CHECKPOINT_H

#include "ablasim/scenario.h"
#include "ablasim/simview.h"

struct abl_sim;

typedef struct {
    char *output_path;       /* result file the run writes */
    long snapshots_written;  /* snapshots already in the partial result */
    char part_id[17];        /* the partial result's id (output.h output_part_id; "" in a
                              * checkpoint written before session 22) */
} abl_checkpoint_info;

/* Write s's state to path (atomically). output_path (may be relative or "") is stored as an
 * absolute path; part_id (NULL or "": none) is the id of the partial result the checkpoint
 * refers to, which a resume checks (output_resume). */
abl_status checkpoint_write(const char *path, const abl_sim_view *s, const char *output_path,
                            long snapshots_written, const char *part_id, abl_error *err);
/* Verify a checkpoint (format, version, checksums), check that its input files still exist,
 * and load the scenario stored in it (as scenario_load would). */
abl_status checkpoint_load_scenario(const char *path, abl_scenario **sc, abl_checkpoint_info *info,
                                    abl_error *err);
/* The same with nextra more "a.b=value" overrides applied after the stored ones (the time-step
 * check of a resumed run builds its half-step reference from the checkpoint this way). */
abl_status checkpoint_load_scenario_sets(const char *path, const char *const *extra, int nextra,
                                         abl_scenario **sc, abl_checkpoint_info *info,
                                         abl_error *err);
/* Verify the checkpoint again, check that s was built from the same tissue properties and
 * voxel materials, restore the state into s (created from that scenario) and check it. On
 * failure s is partly overwritten: destroy it. */
abl_status checkpoint_restore(const char *path, struct abl_sim *s, abl_error *err);
void checkpoint_info_free(abl_checkpoint_info *info);

#endif
