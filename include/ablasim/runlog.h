/* runlog.h - what a run records besides its fields: temperature probes, zone growth curves and
 * the power of the sources that keep no generator log.
 *
 * The driver creates the log with the simulation (sim_create, after the sources) and calls
 * runlog_sample from every monitor pass (sim.c monitor()); the output writer (output.c) turns it
 * into /probes, /isotherms/growth, /zones/<axis>/growth and the power series of /sources, and the
 * JSON summary. Everything is recorded at t = 0 (on creation) and then:
 *  - probes and source power: at the first monitor pass after each multiple of
 *    output.monitor_interval_s (every pass when it is 0), and at the end of the run;
 *  - zones: likewise for multiples of max(output.growth_interval_s, output.monitor_interval_s),
 *    and at the end, so the last point of every growth curve is the final zone (output.c
 *    measures that again on the whole grid; tests/unit/test_probes.c compares the two).
 *
 * Probes: the temperature at a point by trilinear interpolation between the 8 voxel centres
 * around it (exact at a voxel centre: a position within 1e-9 voxel of a centre is snapped to
 * it). A position must lie inside the hull of the voxel centres (the grid minus half a voxel
 * on every side); otherwise runlog_create fails naming the scenario key, the value and the
 * hull. With output.tip_probes (default on) every applicator axis a source reports (source.h
 * axes) adds a probe "<source>_tip" ("<source>_<axis>_tip" for a source with several) at the
 * tip, left out when the tip lies outside the hull.
 *
 * Zone criteria, in this order everywhere: the hot thresholds (T_max_C >= thr), the cold ones
 * (T_min_C <= thr), Omega >= 1 (damage_omega). For each: the zone's voxel count and that of its
 * largest 6-connected component (zone.h), and per applicator axis length and diameters
 * (abl_axis_zone). Axes: every axis of every source (source.h axes), then for a source with
 * several a cluster axis through the mean tip along the mean direction (left out when the
 * directions cancel). A growth sample visits only the bounding box of the loosest threshold's
 * zone (the hot zones are nested, as are the cold ones), so its cost follows the zone, not the
 * grid: three passes over the grid for the boxes, then work inside the boxes. Measured on
 * configs/liver_mwa_vein.yaml (10^6 voxels, 468 steps, 2-core VM): 3-6 ms per sample on the
 * final zones against 12-18 ms per step; run wall time 6.33 s with the default 10 s cadence
 * against 6.14 s with zones only at t = 0 and the end (medians of 5, within the run-to-run
 * noise), 6.9 s against 5.4 s with a sample every second.
 *
 * Source power (sources without a power column of their own, source.h series): the energy the
 * driver counts as source heat (abl_energy.E_sources_J, kept for every run) since the previous
 * sample is attributed to the sources: all of it to the only source; a volumetric source gets
 * the integral of its schedule over the interval (what sim.c delivers with step-aligned time);
 * the rest goes to the one remaining source if exactly one is left (no other fixed_temperature
 * or modality source, no pinned voxels set through the API), and is unknown (NaN, JSON null)
 * otherwise. power_W at a sample is the mean power over the interval ending there, and the
 * delivered energy the exact sum of the intervals' energies.
 */
#ifndef ABLASIM_RUNLOG_H
#define ABLASIM_RUNLOG_H

#include <stdbool.h>
#include <stddef.h>

#include "ablasim/simview.h"
#include "ablasim/source.h"
#include "ablasim/zone.h"

#define RUNLOG_MAX_AXES_PER_SOURCE 16

typedef struct {
    /* a user probe (40 characters, "_<index>" on a line) or a tip probe "<source>_<axis>_tip"
     * of a source name of up to 63 characters, whole (a 48-byte cut made two long sources' tip
     * probes "<47 characters>_tip" and "..._ti_2"; adversarial test, session 28) */
    char name[96];
    double pos_m[3];
    int source;    /* -1: from output.probes; else the source whose applicator tip it is */
    size_t idx[8]; /* the 8 voxels around the point (repeated along an axis of one voxel) */
    double w[8];   /* their trilinear weights, summing to 1 */
} abl_probe;

typedef struct {
    int source;      /* index in the sources (abl_sim_view) */
    int axis;        /* index among the source's axes; -1: the cluster axis of a source with
                      * several */
    int source_axes; /* how many axes the source has */
    abl_source_axis ax;
} abl_log_axis;

typedef struct abl_runlog {
    int nprobes;
    abl_probe *probes;
    size_t nt, cap_t;
    double *t_s; /* [nt] sample times of probes and source power */
    double *T_C; /* [nt][nprobes] */
    int nsrc;
    double *src_E_J; /* [nsrc] energy delivered so far (NaN: not attributable) */
    double *src_P_W; /* [nt][nsrc] mean power over (t_s[k-1], t_s[k]]; row 0: NaN */
    double E_sources_prev_J;
    int ncrit; /* n_hot + n_cold + 1 */
    int naxes;
    abl_log_axis *axes;
    size_t ng, cap_g;
    double *g_t_s;            /* [ng] growth sample times */
    long *g_nvox, *g_largest; /* [ng][ncrit] zone voxels, largest component's voxels */
    abl_axis_zone *g_zone;    /* [ng][naxes][ncrit] */
    double history_from_s;    /* > 0: a run resumed from a checkpoint that did not carry this log;
                               * the records start at this time */
    bool restored;            /* loaded through runlog_state_io */
    abl_zone_scratch scratch; /* work space of the growth samples' component search */
} abl_runlog;

/* Build the probes (checking every position against the grid), the axis list and the first
 * records (t = 0) for the planned simulation s (grid, fields and sources created). */
abl_status runlog_create(const abl_sim_view *s, abl_runlog **out, abl_error *err);
/* Record what is due at s->t_s (see above); called after the running maps were updated. */
abl_status runlog_sample(abl_runlog *log, const abl_sim_view *s, abl_error *err);
/* The zone axes of s's sources in the order above (malloc'ed; *n of them). */
abl_status runlog_axes(const abl_sim_view *s, abl_log_axis **out, int *n, abl_error *err);
/* Zones of every criterion (ncrit = n_hot + n_cold + 1) and axis on s's current maps:
 * z[a * ncrit + c], nvox[c], largest[c]. bbox: visit only the zones' bounding boxes (what the
 * run does), or the whole grid (tests: the same numbers). w: the component search's work space
 * (zone.h; NULL: allocated for the call). */
abl_status runlog_measure(const abl_sim_view *s, const abl_log_axis *axes, int naxes, bool bbox,
                          abl_axis_zone *z, long *nvox, long *largest, abl_zone_scratch *w,
                          abl_error *err);
/* A resumed run whose checkpoint did not restore the log: drop the records, start again at
 * s->t_s (history_from_s) with a sample there. */
abl_status runlog_restart(abl_runlog *log, const abl_sim_view *s, abl_error *err);
/* Checkpoint: walk the records through abl_blob_io (source.h); a load checks that the probe,
 * source, axis and criterion counts match. runlog_state_save counts or saves (ABL_BLOB_COUNT,
 * ABL_BLOB_SAVE) and leaves the log as it is; runlog_state_io does any of the three. Both walk
 * the same layout. */
abl_status runlog_state_save(const abl_runlog *log, abl_blob *b, abl_error *err);
abl_status runlog_state_io(abl_runlog *log, abl_blob *b, abl_error *err);
void runlog_free(abl_runlog *log);

/* Temperature at probe p on field T (trilinear; fixed summation order, so deterministic). */
double probe_value(const abl_probe *p, const double *T);
/* Criterion c of scenario sc: the field it reads on s, threshold, direction; its label for
 * dataset and JSON names ("hot", "cold", "omega_ge_1") and index within that kind. */
const double *runlog_criterion(const abl_sim_view *s, int c, double *thr, bool *at_or_above,
                               int *kind, int *index);

#endif
