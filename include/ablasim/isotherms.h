/* isotherms.h - zone volumes over the whole grid: hot and cold isotherms and damage.
 *
 * The result writer (output.h), the run summary (cli) and sweeps (sweep.h) report these; the
 * dimensions along applicator axes are zone.h's, the growth curves runlog.h's.
 */
#ifndef ABLASIM_ISOTHERMS_H
#define ABLASIM_ISOTHERMS_H

#include "ablasim/simview.h"

/* Isotherm volumes [mL]: voxels with T_max >= thr (hot) or T_min <= thr (cold), total and per
 * material. vol_total[t], vol_mat[t*nmat + m]. */
void isotherm_volumes(const abl_sim_view *s, double *hot_total_mL, double *hot_mat_mL,
                      double *cold_total_mL, double *cold_mat_mL);

/* Damage volumes [mL]: [0] Arrhenius Omega >= 1, [1] CEM43 >= 240 min; per material
 * mat_mL[q*nmat + m]. Either pointer may be NULL. */
void damage_volumes(const abl_sim_view *s, double *total_mL, double *mat_mL);

#endif
