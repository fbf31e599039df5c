/* phase.h - phase change of tissue water: the enthalpy curve H(T) of each tissue and the step
 * that moves temperatures along it.
 *
 * Freezing (cryoablation) and vaporisation (RFA, MWA near the applicator) are modelled by the
 * enthalpy method (Voller & Prakash 1987; for tissue: Rabin & Shitzer 1998, J Biomech Eng
 * 120:32). Each tissue's volumetric enthalpy H(T) [J/m^3] is continuous and piecewise linear:
 *   frozen   T < T_s           slope C_f = rho_f c_f
 *   mushy    T_s <= T <= T_l   slope (C_f + C_u)/2 + L_f / (T_l - T_s), L_f = rho L_fusion
 *   liquid   T_l <= T <= T_v1  slope C_u = rho c, with H = C_u T (same as without phase change)
 *   boiling  T_v1 <= T <= T_v2 slope C_u + L_v / (T_v2 - T_v1), L_v = rho w h_fg, w = water
 *                              fraction, h_fg = 2.257e6 J/kg (water at 100 C)
 *   dry      T > T_v2          slope C_u (ASSUMED: dried tissue keeps its heat capacity).
 * This is the apparent-heat-capacity model (latent heat spread over a range) written in its
 * conservative form: the solver advances H by the exact discrete heat balance and reads T back
 * from H, so no front ever "jumps" a voxel and no latent heat is lost or counted twice.
 *
 * The stencil works with a reference capacity C_ref = the smallest slope of the curve (the
 * explicit scheme is then monotone for dt <= C_ref / sum(G), and the implicit scheme is the
 * unconditionally stable, energy-conserving relaxation of Chernoff 1987 / Jaeger & Kacur 1991):
 * a step computes T* = T0 + dt/C_ref * (heat balance), i.e. dH = C_ref (T* - T0), and then
 * T1 = T(H(T0) + C_ref (T* - T0)). H is strictly increasing, so T is the state; H is never
 * stored.
 */
#ifndef ABLASIM_PHASE_H
#define ABLASIM_PHASE_H

#include <stddef.h>
#include <stdint.h>
#include "ablasim/grid.h"

#define ABL_PHASE_MAX_KNOTS 4
#define ABL_LATENT_VAPORISATION_J_KG 2.257e6 /* water at 100 C, 1 atm (textbook steam tables) */

typedef struct {
    int nk;                            /* knots; 0: no phase change (H = C_ref T) */
    double T_C[ABL_PHASE_MAX_KNOTS];   /* knot temperatures, increasing */
    double H[ABL_PHASE_MAX_KNOTS];     /* H at the knots [J/m^3] */
    double C[ABL_PHASE_MAX_KNOTS + 1]; /* slopes: C[0] below knot 0, C[i] between knots i-1
                                        * and i, C[nk] above the last [J/m^3/K] */
    double C_ref;                      /* smallest slope: the stencil's capacity */
    double win_lo_C, win_hi_C;         /* H = C_ref T exactly on [win_lo, win_hi] (the map is
                                        * the identity there); empty when C_ref != C_u */
} abl_phase_curve;

/* Build the curve of one tissue. Freezing when freeze != 0 and C_f > 0, L_f >= 0 (else no
 * freezing part); vaporisation when vap != 0 and L_v > 0. C_u > 0 required. */
void phase_curve_build(abl_phase_curve *p, double C_u, int freeze, double C_f, double L_f,
                       double T_s, double T_l, int vap, double L_v, double T_v1, double T_v2);

static inline double phase_H(const abl_phase_curve *p, double T_C)
{
    if (p->nk == 0) return p->C_ref * T_C;
    int i = 0;
    while (i < p->nk && T_C > p->T_C[i]) i++;
    /* segment i: below knot i (slope C[i]) measured from knot i, or above the last knot */
    return i < p->nk ? p->H[i] - p->C[i] * (p->T_C[i] - T_C)
                     : p->H[p->nk - 1] + p->C[p->nk] * (T_C - p->T_C[p->nk - 1]);
}

static inline double phase_T(const abl_phase_curve *p, double H)
{
    if (p->nk == 0) return H / p->C_ref;
    int i = 0;
    while (i < p->nk && H > p->H[i]) i++;
    return i < p->nk ? p->T_C[i] - (p->H[i] - H) / p->C[i]
                     : p->T_C[p->nk - 1] + (H - p->H[p->nk - 1]) / p->C[p->nk];
}

/* Slope dH/dT of the curve at T (the segment T lies in; at a knot, the segment above it),
 * i.e. the heat capacity a small change from T sees [J/m^3/K]. */
static inline double phase_slope(const abl_phase_curve *p, double T_C)
{
    if (p->nk == 0) return p->C_ref;
    int i = 0;
    while (i < p->nk && T_C >= p->T_C[i]) i++;
    return p->C[i];
}

/* The temperature after a step that computed T* with capacity C_ref from T0:
 * T(H(T0) + C_ref (T* - T0)) (the identity where H = C_ref T). */
static inline double phase_step(const abl_phase_curve *p, double T0_C, double Tstar_C)
{
    return phase_T(p, phase_H(p, T0_C) + p->C_ref * (Tstar_C - T0_C));
}

/* Liquid (unfrozen) fraction of a curve's water at T: 0 below T_s, 1 above T_l, linear between
 * (the lever rule of the linear mushy zone). freeze_lo/hi: the freezing range. */
static inline double phase_liquid_fraction(double T_C, double T_s, double T_l)
{
    return T_C <= T_s ? 0.0 : T_C >= T_l ? 1.0 : (T_C - T_s) / (T_l - T_s);
}

/* After a step computed T1 = T* with capacity C_ref from T0: T1 <- T(H(T0) + C_ref (T* - T0))
 * for every voxel whose material has a curve (skipping voxels with skip[c] != 0 when skip is
 * non-NULL). Per voxel, so independent of the thread count. */
void phase_map(size_t n, const uint8_t *restrict material, const abl_phase_curve *curves,
               const double *restrict T0, double *restrict T1, const uint8_t *restrict skip);

/* The same map on the box lo <= (i, j, k) < hi of grid g only (the active region, sim.c); with
 * row_lo/row_hi (per row r = k ny + j; NULL: whole rows) only the part [row_lo[r], row_hi[r])
 * of each row of the box. */
void phase_map_box(const abl_grid *g, const int lo[3], const int hi[3], const int32_t *row_lo,
                   const int32_t *row_hi, const uint8_t *restrict material,
                   const abl_phase_curve *curves, const double *restrict T0,
                   double *restrict T1);

/* Stored heat sum H(T) V [J] over the grid (per z-plane, then in plane order). */
double phase_stored_energy(size_t plane, int nz, const uint8_t *restrict material,
                           const abl_phase_curve *curves, const double *restrict T,
                           double voxel_m3, double *work_nz);

#endif
