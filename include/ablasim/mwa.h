/* mwa.h - microwave ablation (MWA) antenna source: the pieces tests and tools use directly.
 *
 * The source itself registers as type 'mwa' (src/sources/mwa.c, docs/MWA.md). Exported here:
 * the attenuation constant of a lossy dielectric, the temperature-dependent dielectric model
 * (Ji & Brace 2011 sigmoid, relative form) and the ablation-zone measurement along an antenna.
 */
#ifndef ABLASIM_MWA_H
#define ABLASIM_MWA_H

#include <stdbool.h>

#include "ablasim/grid.h"
#include "ablasim/status.h"

/* Attenuation constant [Np/m] of a lossy dielectric with relative permittivity eps_r and
 * conductivity sigma [S/m] at frequency f [Hz]:
 *   alpha = omega sqrt(mu0 eps/2) sqrt(sqrt(1 + (sigma/(omega eps))^2) - 1),  eps = eps0 eps_r
 * (plane wave in a lossy medium, e.g. Balanis, Advanced Engineering Electromagnetics, 2nd ed.,
 * eq. 4-59). Evaluated in a cancellation-free form. */
double mwa_attenuation_Np_m(double eps_r, double sigma_S_m, double f_Hz);

/* Dielectric properties at T_C of a tissue with eps_r37, sigma37_S_m at 37 C. When
 * temp_dependent, both follow the relative form of the Ji & Brace 2011 sigmoid (liver,
 * 2.45 GHz): x(T) = x37 * F_x(T) / F_x(37); otherwise they are constant. */
void mwa_dielectric_at(double eps_r37, double sigma37_S_m, bool temp_dependent, double T_C,
                       double *eps_r, double *sigma_S_m);

/* Extent of the zone {T_max_C >= thr_C} relative to an antenna axis through tip_m with unit
 * direction dir (any sign): length along the axis and diameter across it, both as voxel-region
 * extents (centre extent + one voxel), and its volume. Zero sizes when no voxel qualifies. */
typedef struct {
    double length_m, diameter_m, volume_m3;
    long nvox;
} mwa_zone;

void mwa_zone_dims(const abl_grid *g, const double *T_max_C, double thr_C, const double tip_m[3],
                   const double dir[3], mwa_zone *out);

#endif
