/* output.h - HDF5 result files, XDMF sidecar and JSON summary.
 *
 * A run writes to "<out>.h5.tmp" (renamed "<out>.h5.part" once a checkpoint refers to it) and
 * renames to "<out>.h5" only after everything is written and the file is closed; the .json and
 * .xdmf sidecars likewise. The three renames are bracketed by a commit marker
 * ("<out>.h5.commit") that output_recover completes after a crash, so the user has the old set
 * or the new set, never a mix; every set shares one run_id (root attribute, JSON, XDMF). Layout
 * (docs/ARCHITECTURE.md has the full table): /                 attrs: ablasim_version,
 * scenario_yaml, dt_s, steps, wall_time_s, ... /grid/labels      uint8 [nz][ny][nx], material
 * index; attrs spacing_mm, origin_mm /grid/materials, /grid/material_names   material index ->
 * tissue name /fields/T_final_C, T_max_C, T_min_C     float64 [nz][ny][nx] /fields/damage_omega
 * (1), cem43_min (min) float64: Arrhenius integral, thermal dose /fields/time_at_or_above_<thr>C_s,
 * time_at_or_below_<thr>C_s   float32 /snapshots/T_C    float32 [nt][nz][ny][nx], shuffle+deflate;
 * /snapshots/time_s [nt]; /snapshots/frames/T_C_<n>: 3-D virtual views of each snapshot (XDMF)
 *   /fields/freeze_cycles   float32, freeze-thaw cycles per voxel (when freezing is modelled)
 *   /isotherms/...    volumes in mL per threshold, total and per material, largest connected
 *                     component; /isotherms/growth/ their growth curves (runlog.h)
 *   /sources/<name>   attr type; with a recorded series (source.h) one float64 [nrow] dataset
 *                     per column, units from the column suffix; attr delivered_energy_J; without
 *                     a power column, time_s and power_W from the run log (runlog.h)
 *   /zones/<name>[_<axis>|_cluster]  per applicator axis (source.h axes) and cluster axis:
 *                     hot_/cold_threshold_C, {hot,cold}_{length_mm,diameter_mm,diameter_min_mm,
 *                     diameter_equivalent_mm,volume_mL,largest_component_volume_mL} [n],
 *                     omega_ge_1_* scalars; growth/ the same as curves [ng][n]
 *   /probes           time_s [nt] and <name> [nt] degC (attr position_mm) per probe
 *   /energy           (when tracked) energy terms in J and the relative residual
 * Root attribute complete = 1 on a finished result. After a numerical fault the partial file
 * is kept as "<stem>.incomplete.h5" with complete = 0 and failure = the message
 * (output_keep_incomplete).
 */
#ifndef ABLASIM_OUTPUT_H
#define ABLASIM_OUTPUT_H

#include "ablasim/isotherms.h"
#include "ablasim/simview.h"

typedef struct abl_output abl_output;

/* Open "<path>.tmp" for writing (fails cleanly if the directory is not writable). */
abl_status output_open(const char *path, const abl_sim_view *s, abl_output **out, abl_error *err);
/* Append a temperature snapshot at time t_s. */
abl_status output_snapshot(abl_output *o, const abl_sim_view *s, abl_error *err);
/* Write final fields, running maps, isotherm volumes, attributes; close; write the XDMF and JSON
 * sidecars (also via temporary names); rename all into place. Always releases o, on success
 * and on failure (do not call output_abort after it). */
abl_status output_finish(abl_output *o, const abl_sim_view *s, abl_error *err);
/* Snapshots written so far; flush everything to disk (before a checkpoint). */
long output_snapshot_count(const abl_output *o);
abl_status output_flush(abl_output *o, abl_error *err);
/* Interrupted run: flush and close the temporary file but keep it for output_resume; reports
 * how many snapshots it holds. Releases o. */
abl_status output_suspend(abl_output *o, long *snapshots_written, abl_error *err);
/* Reopen the temporary file of an interrupted run, keeping its first snapshots_written
 * snapshots. part_id (NULL or "": not checked) is the id the checkpoint recorded: a partial
 * result with another id, or fewer snapshots than the checkpoint knew, is another run's (a
 * run to the same output started over since, --overwrite-checkpoint) and is refused
 * (ABL_EINVAL), untouched. */
abl_status output_resume(const char *path, const abl_sim_view *s, long snapshots_written,
                         const char *part_id, abl_output **out, abl_error *err);
/* The id of o's partial result (a root attribute of the file written while it runs; "" for
 * NULL): a checkpoint records it, so that a resume finds its own partial result. */
const char *output_part_id(const abl_output *o);
/* Close and delete the temporary file (after an error). Safe with NULL. Once
 * output_keep_partial was called, the partial result (".part") is closed and kept instead. */
void output_abort(abl_output *o);
/* A checkpoint refers to the partial result from now on (one was written, or the run resumed
 * from one): if the run fails, output_abort and a failing output_finish close the ".part" and
 * leave it in place, so that the checkpoint can still be resumed once the cause (a full disk,
 * say) is fixed; deleting it would lose the interrupted run. Safe with NULL. */
void output_keep_partial(abl_output *o);
/* After a numerical fault (err holds its message): add the fields at the time of the fault
 * and the root attributes, mark the file complete = 0, failure = the message, close it and
 * rename it to "<path minus .h5>.incomplete.h5" (never to path: an earlier result of that name
 * is untouched). err keeps its status; its message gains where the partial file is (or why it
 * could not be kept, in which case the temporary is deleted as by output_abort). Releases o.
 * Safe with NULL. */
void output_keep_incomplete(abl_output *o, const abl_sim_view *s, abl_error *err);

/* Every name a run writing path may create, replace or remove (result, temporaries,
 * partial result, commit marker, lock, sidecars, incomplete result), with a role for messages.
 * Fills names (paths malloc'ed; free with output_file_names_free); returns the count or -1. */
#define ABL_OUTPUT_NAMES 11
typedef struct {
    const char *role;
    char *path;
} abl_output_name;
int output_file_names(const char *path, abl_output_name names[ABL_OUTPUT_NAMES]);
void output_file_names_free(abl_output_name *names, int n);
/* A commit interrupted by a crash (the marker "<path>.commit" is present): finish its renames
 * so the result set is the new one, and remove the marker. No marker: nothing to do. */
abl_status output_recover(const char *path, bool *recovered, abl_error *err);
/* The same for a command that does not hold path's lock (margin reads a result): with a marker
 * present, the lock is taken first, so a commit a live process is still doing is refused ("another
 * ablasim process is writing ...") instead of renamed under it. No marker: no lock, nothing
 * written (a result in a read-only directory stays readable). */
abl_status output_recover_unowned(const char *path, bool *recovered, abl_error *err);
/* Drop a commit of path that failed part-way: its marker and the temporaries output_recover
 * would have renamed are removed (not a ".part", which a checkpoint may need). For a caller
 * that puts the previous files back itself (the planner's undo log, formats/undo.h). Nothing is
 * removed while another process holds path's lock (fileguard.h): its temporaries are its own. */
void output_abandon_commit(const char *path);
#endif
