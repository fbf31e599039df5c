/* dtcheck.h - the time-step error estimate of a run (`ablasim run --dt-check`, issue 17).
 *
 * The scenario is run a second time with half the step (the reference), without output; its
 * final maps are kept (dt_reference_take) and the run's own final maps are compared with them
 * just before the result is written (dt_check_compare): the largest voxel difference of the
 * final temperature, of T_max and of T_min, and each zone's volume (T_max >= every hot
 * threshold, T_min <= every cold one, damage Omega >= 1; voxel counts) in both runs. For a
 * first-order scheme (explicit or implicit Euler) the run's own time-discretisation error is
 * about twice the difference (Richardson: e(dt) ~ C dt, so T_dt - T_dt/2 ~ C dt / 2); for
 * Crank-Nicolson about 4/3 of it. The reference costs about twice the run. */
#ifndef ABLASIM_DTCHECK_H
#define ABLASIM_DTCHECK_H

#include <stdbool.h>
#include <stddef.h>

#include "ablasim/simview.h"
#include "ablasim/status.h"

/* the zones compared: every hot and cold threshold of the scenario and Omega >= 1 */
#define ABL_DTC_MAX_ZONES (2 * 16 + 1)

/* The reference run's final maps (copies: the reference simulation can be destroyed). */
typedef struct abl_dt_reference {
    size_t n;
    double dt_s, wall_s;
    long steps;
    double *T, *T_max, *T_min, *omega, *cem43_min;
} abl_dt_reference;

typedef struct abl_dt_check {
    bool done;
    double dt_s, dt_ref_s;  /* the run's step and the reference's (about dt / 2: the reference
                             * step is rounded to land on the end, like every step) */
    long steps_ref;
    double wall_ref_s;      /* the reference run's wall time */
    /* largest |run - reference| over the voxels [K] */
    double T_final_diff_C, T_max_diff_C, T_min_diff_C;
    int nzone;
    char zone[ABL_DTC_MAX_ZONES][32]; /* "T_max_ge_55C", "T_min_le_-40C", "Omega_ge_1" */
    double volume_mL[ABL_DTC_MAX_ZONES], volume_ref_mL[ABL_DTC_MAX_ZONES];
} abl_dt_check;

/* Copy the final maps of the finished reference run v. */
abl_status dt_reference_take(const abl_sim_view *v, abl_dt_reference *out, abl_error *err);
void dt_reference_free(abl_dt_reference *r);

/* Compare the run v (at its end) with the reference; fills *out (out->done = true). The two
 * must be the same scenario on the same grid (the caller builds the reference from the same
 * file and overrides). */
void dt_check_compare(const abl_sim_view *v, const abl_dt_reference *ref, abl_dt_check *out);

#endif
