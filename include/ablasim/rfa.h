/* rfa.h - radiofrequency ablation (RFA) source: the pieces tests and tools use directly.
 *
 * The source registers as type 'rfa' (src/sources/rfa.c, docs/RFA.md): electrodes (straight,
 * optionally internally cooled; expandable multi-tine), a generator (constant voltage, constant
 * power, temperature-controlled PI, impedance-controlled pulsing), the quasi-static potential
 * div(sigma(T) grad V) = 0 (potential.h) re-solved when sigma has changed enough, and Joule heat
 * q = sigma |grad V|^2 summing to the generator's V I. Exported here: the conductivity model
 * sigma(T) and the electrode voxel sets of a created source.
 */
#ifndef ABLASIM_RFA_H
#define ABLASIM_RFA_H

#include <stddef.h>

#include "ablasim/source.h"

/* Electrical conductivity at 450-500 kHz against temperature (docs/RFA.md):
 *   sigma(T) = sigma37 (1 + coeff (T - 37))                     T <= T1
 *   linear from sigma(T1) down to factor * sigma(T1) over T1..T2 (water boils off)
 *   factor * sigma(T1)                                           T >= T2
 * never below floor_S_m (a floor keeps the system definite: air, desiccated tissue). */
typedef struct {
    double coeff_per_K;   /* 0.015: +1.5 %/K */
    double drop_start_C;  /* T1, 99 */
    double drop_end_C;    /* T2, 100 */
    double drop_factor;   /* 1e-4 */
    double floor_S_m;     /* 1e-5 */
} rfa_sigma_model;

double rfa_sigma_at(const rfa_sigma_model *m, double sigma37_S_m, double T_C);

/* Radius [m] of a wet electrode's infiltrated region (docs/RFA.md "Wet electrodes"): the
 * capsule around the active segment (length L_m, electrode radius a_m) whose tissue volume
 * outside the electrode, pi (r^2 - a^2) L + 4/3 pi (r^3 - a^3), is the infused volume V_m3
 * over the share f of it the fluid fills. a_m when V_m3 <= 0 (nothing infused). */
double rfa_wet_radius_m(double V_m3, double f, double a_m, double L_m);

/* Voxels (sorted indices) of electrode e of an 'rfa' source: the voxels held at the driving
 * voltage when it conducts. Returns the count, 0 if s is not an rfa source or e is out of
 * range. */
size_t rfa_electrode_voxels(const abl_source *s, int e, const size_t **idx);

#endif
