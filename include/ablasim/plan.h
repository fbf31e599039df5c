/* plan.h - inverse planning (`ablasim plan`): where to put the applicator(s), how many, at what
 * power and for how long, so that the tumour plus its margin is ablated and every critical
 * structure stays within its limit.
 *
 * The planner edits the base scenario as a YAML tree (config.h): it replaces the applicator's
 * tip, direction and power keys, replicates it for several applicators, and loads the edited
 * text like any scenario. Every candidate is therefore an ordinary `ablasim run` input, and the
 * chosen plan is written as one (OUT/plan.yaml).
 *
 * Coverage (docs/PLANNING.md): S = tumour voxels plus every voxel within margin_mm of one (the
 * margin command's shell). The margin verdict is PASS exactly when every voxel of S is ablated,
 * so g = min over S of (T_max - 55 C) (heat) or (-40 C - T_min) (cold) is a continuous stand-in
 * for the verdict: g >= 0 <=> PASS. The optimiser (NLopt, derivative-free Nelder-Mead in a
 * bounded box) minimises the energy (heat: time to coverage x power) of plans with g >= 0 and
 * no critical limit crossed, and the coverage deficit otherwise; it runs on a coarsened grid
 * first, the result is re-evaluated on the full grid, and every reported plan is verified by a
 * full forward run and the margin analysis.
 */
#ifndef ABLASIM_PLAN_H
#define ABLASIM_PLAN_H

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>

#include "ablasim/status.h"

typedef struct {
    const char *plan_path;     /* PLAN.yaml */
    const char *out_dir;       /* created if missing; holds the journal and every output */
    const char *const *sets;   /* --set on the plan file ("search.position_mm=5") */
    int nsets;
    bool quiet;                /* no progress lines on stderr */
    /* set (by a signal handler: SIGTERM from a batch system's time limit, Ctrl-C) to stop at
     * the next safe point: the evaluation being simulated is abandoned (not journalled), no
     * plan file is written (an earlier set is restored as on any failure), ABL_ESTOPPED; the
     * same plan run again continues from its journal. NULL: never. */
    volatile sig_atomic_t *stop;
} abl_plan_opts;

typedef struct {
    bool found;                /* a plan that passes (margin and limits) at full resolution */
    int n_applicators;
    double power_W;            /* per applicator; NAN when the modality has no power key */
    double duration_s;
    double min_margin_mm;      /* verified (margin analysis of the full run) */
    bool margin_pass, limits_ok;
    double p_pass, p_pass_lo, p_pass_hi; /* robustness: fraction of samples that pass, 95 % CI */
    int robustness_samples;
    int evaluations, cached;   /* forward evaluations done (all levels), found in the journal */
    double wall_s;
    char why[512];             /* no plan: why (search space, limits) */
    char plan_yaml[4200];      /* OUT/plan.yaml */
} abl_plan_report;

/* Plan, verify and write OUT/{plan.yaml, plan.h5 (+ .xdmf, .json), plan.margin.h5 (+ .json),
 * plan.json, plan.md, journal.csv}. A journal from an earlier, interrupted run of the same plan
 * file is reused (evaluations are deterministic); one from another plan is refused. Returns
 * ABL_OK also when no passing plan exists (rep->found = false, rep->why says why).
 * Errors: ABL_EINVAL (plan file, scenario), ABL_EIO, ABL_ENOMEM, ABL_ENUMERIC, ABL_ESTOPPED
 * (o->stop). */
abl_status plan_run(const abl_plan_opts *o, abl_plan_report *rep, abl_error *err);

/* docs/PLANNING.md "Plan file keys": a Markdown table printed from the plan file's key
 * declarations (the ones the unknown-key check uses). 0 or -1. */
int plan_reference_markdown(FILE *f);

#endif
