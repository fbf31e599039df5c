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

/* Kernels timed inside a phase (issue 19: per-kernel timers): the parts of the conjugate
 * gradients (pcg.h) of the potential solve and of the implicit heat step, in their own table.
 * They nest in the phases "potential" and "solver" (the phase marks still partition the step).
 * Each solver family has three consecutive slots: the operator (A x), the preconditioner
 * (M^-1 r) and the vector work (dot products, updates, masks: the rest of the CG's time). */
typedef enum {
    ABL_KER_POTENTIAL_OPERATOR,
    ABL_KER_POTENTIAL_PRECONDITIONER,
    ABL_KER_POTENTIAL_VECTORS,
    ABL_KER_HEAT_OPERATOR,
    ABL_KER_HEAT_PRECONDITIONER,
    ABL_KER_HEAT_VECTORS,
    ABL_KER_N
} abl_prof_kernel;
/* offsets of a CG's slots from its first (abl_pcg_system.prof_first) */
#define ABL_KER_CG_OPERATOR 0
#define ABL_KER_CG_PRECONDITIONER 1
#define ABL_KER_CG_VECTORS 2

typedef struct abl_profile {
    double s[ABL_PROF_N];     /* wall seconds */
    long calls[ABL_PROF_N];   /* marks */
    double bytes[ABL_PROF_N]; /* minimum memory traffic, where known (else 0) */
    double last;              /* time of the previous mark */
    double ks[ABL_KER_N];     /* kernels: wall seconds, calls, minimum memory traffic */
    long kcalls[ABL_KER_N];
    double kbytes[ABL_KER_N];
} abl_profile;

extern const char *const abl_prof_names[ABL_PROF_N];
extern const char *const abl_prof_kernel_names[ABL_KER_N];

/* Kernel k ran for seconds, calls times, moving bytes (0: not known). */
static inline void prof_kernel(abl_profile *p, int k, double seconds, long calls, double bytes)
{
    p->ks[k] += seconds;
    p->kcalls[k] += calls;
    p->kbytes[k] += bytes;
}

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
