/* profile.h - where a run's wall time goes: per-phase timers (issue 17: "a profile first").
 *
 * The driver marks the end of each phase of a step (sources, properties, kernel, ...): the time
 * since the previous mark is added to that phase, so the phases of a step partition its wall
 * time without nested timers. A mark costs one omp_get_wtime() call (tens of ns), against
 * milliseconds per step: always on. Bytes are the minimum memory traffic of the passes whose
 * traffic is known (the stencil sweep: 24 B per voxel update, fast path), so the run summary can
 * give each kernel's achieved bandwidth next to the machine's (make bench measures the latter).
 * `ablasim run --profile` prints the table; results are unaffected (timers never feed back).
 */
#ifndef ABLASIM_PROFILE_H
#define ABLASIM_PROFILE_H

#include <omp.h>
#include <stdio.h>

typedef enum {
    ABL_PROF_SOURCES,    /* source updates (MWA SAR, cryo probe states, RFA generator) */
    ABL_PROF_POTENTIAL,  /* RFA electric potential solves (CG with the FFT preconditioner) */
    ABL_PROF_PROPERTIES, /* temperature/damage-dependent k and perfusion (property hook) */
    ABL_PROF_KERNEL,     /* explicit stencil sweep */
    ABL_PROF_SOLVER,     /* implicit (CG) and spectral steps: right-hand side, solve, phase */
    ABL_PROF_ENERGY,     /* energy-balance bookkeeping */
    ABL_PROF_PHASE,      /* enthalpy -> temperature map (freezing, vaporisation) */
    ABL_PROF_PINS,       /* held voxels, source heat added, shortened-step scaling */
    ABL_PROF_MONITOR,    /* running maps: T_max/T_min, time maps, damage, freeze cycles */
    ABL_PROF_RUNLOG,     /* probes, zone growth curves, source power */
    ABL_PROF_OUTPUT,     /* result file: open, snapshots, final fields and sidecars */
    ABL_PROF_CHECKPOINT, /* checkpoints */
    ABL_PROF_N
} abl_prof_phase;

typedef struct abl_profile {
    double s[ABL_PROF_N];     /* wall seconds */
    long calls[ABL_PROF_N];   /* marks */
    double bytes[ABL_PROF_N]; /* minimum memory traffic, where known (else 0) */
    double last;              /* time of the previous mark */
} abl_profile;

extern const char *const abl_prof_names[ABL_PROF_N];

/* Start timing (the next mark measures from now). */
static inline void prof_start(abl_profile *p)
{
    p->last = omp_get_wtime();
}

/* The time since the previous mark (or prof_start) was phase ph, moving bytes. */
static inline void prof_mark(abl_profile *p, abl_prof_phase ph, double bytes)
{
    const double t = omp_get_wtime();
    p->s[ph] += t - p->last;
    p->calls[ph]++;
    p->bytes[ph] += bytes;
    p->last = t;
}

/* The table: phase, seconds, share of total_s, marks, GB/s where bytes are known. */
void prof_print(FILE *f, const abl_profile *p, double total_s);

#endif
