/* plan_internal.h - shared between the planner's files (src/plan); not installed. */
#ifndef ABLASIM_PLAN_INTERNAL_H
#define ABLASIM_PLAN_INTERNAL_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ablasim/config.h"
#include "ablasim/margin.h"
#include "ablasim/plan.h"

#define PLAN_MAX_AVOID 32
#define PLAN_MAX_APPLICATORS 8
#define PLAN_MAX_VARS 10
#define PLAN_MAX_RERANK 16 /* optimiser.rerank: 1..16 */

typedef struct {
    char plan_path[PATH_MAX];
    char scenario_path[PATH_MAX]; /* canonical */
    char scenario_dir[PATH_MAX];
    cfg_node *base;               /* the scenario tree, scenario_set applied, paths rebased */
    uint64_t plan_hash;           /* of the plan tree and the base tree: the journal's key */

    char target_tissue[ABL_MARGIN_NAME_LEN];
    double margin_mm, threshold_C;
    double plan_margin_mm;        /* the optimiser covers this (>= margin_mm: room for error) */
    bool cold;                    /* zone T_min <= threshold (else T_max >= threshold) */
    int ncrit;
    abl_critical_spec crit[ABL_MARGIN_MAX_CRITICAL];

    int src_index;
    char source_type[64];
    char list_key[64], tip_key[64], dir_key[64], dose_key[64]; /* "" : none */
    bool dose_in_source;          /* the dose key is in the source, not in each applicator */
    int base_count;
    double base_tip_mm[3], base_dir[3], base_power_W;
    int n_min, n_max;

    double pos_mm, tilt_deg;
    bool power_var, dur_var;
    double power_W[2], duration_s[2];
    double time_step_s;
    double spacing_mm[2];         /* tip distance of neighbouring applicators (ring chord) */
    bool start_from_scenario;

    char avoid[PLAN_MAX_AVOID][ABL_MARGIN_NAME_LEN];
    int navoid;

    int max_evals, coarsen, fine_evals;
    int starts; /* searches on the first level (optimiser.starts) */
    int rerank; /* coarse candidates evaluated on the full grid before its search (optimiser.rerank) */
    int rob_samples;
    double rob_sd_mm, rob_perf_cv;
    bool rob_full;
    unsigned long seed;
} plan_spec;

abl_status plan_spec_load(const abl_plan_opts *o, plan_spec *P, abl_error *err);
abl_status plan_spec_rebase(plan_spec *P, const char *out_dir_real, abl_error *err);
void plan_spec_free(plan_spec *P);

/* Child of node along a dotted key ("generator.power_W"), NULL if absent. */
cfg_node *plan_node_at(cfg_node *node, const char *dotted);
abl_status plan_read_vec3(cfg_node *node, const char *key, double v[3], abl_error *err);
/* Relative path from directory from_dir to target, both absolute and canonical. */
void plan_relpath(const char *from_dir, const char *target, char *out, size_t len);

#endif
