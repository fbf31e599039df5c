/* cmd_plan.c - 'ablasim plan': inverse planning (plan.h). Parses the options, calls plan_run,
 * prints the verdict and maps the outcome to the exit code. */
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ablasim/plan.h"
#include "commands.h"

static const char *usage_plan =
    "usage: ablasim plan PLAN.yaml -o OUT_DIR [--set KEY=VALUE]... [--threads N] [--quiet]\n"
    "                    [--fail-exit-code N]\n"
    "\n"
    "  Finds where to place the applicator(s) of a scenario, how many, at what power and for\n"
    "  how long, so that the target tissue plus its margin is ablated and the critical\n"
    "  structures stay within their limits; verifies the plan by a full run and the margin\n"
    "  analysis, and estimates its robustness to needle placement and perfusion.\n"
    "  PLAN.yaml reference and method: docs/PLANNING.md.\n"
    "\n"
    "  -o, --output OUT_DIR   created if missing: plan.yaml (runnable scenario), plan.h5 with\n"
    "                         .xdmf (its verified run), plan.margin.h5 with .json, plan.json\n"
    "                         (the plan's summary), plan.md, journal.csv (every candidate;\n"
    "                         running the same plan again resumes from it)\n"
    "  --set KEY=VALUE        override a plan key, e.g. --set robustness.samples=0\n"
    "  --threads N            OpenMP threads (default: OMP_NUM_THREADS or all cores)\n"
    "  -q, --quiet            no progress lines\n"
    "  --fail-exit-code N     exit with N (6..125, not 75) when no passing plan exists\n"
    "                         (default 0; 1..5 and 75 are the error and stop codes)\n"
    "  -h, --help             this text\n"
    "\n"
    "exit codes: 0 done (see the verdict), 1 usage, 2 invalid plan or scenario (also: OUT_DIR\n"
    "holds the journal of another plan), 3 I/O error, 4 out of memory, 5 numerical fault, 75\n"
    "stopped by SIGINT/SIGTERM/SIGHUP (journal.csv keeps the finished evaluations; the same\n"
    "command continues; no plan file written)\n";

int cmd_plan(int argc, char **argv)
{
    /* SIGINT/SIGTERM stop the plan at its next safe point (between simulation steps of an
     * evaluation), its journal whole and its lock released (exit 75); before, they killed it */
    cli_install_stop_signals();
    const char *plan = NULL, *out = NULL;
    const char **sets = calloc((size_t)argc + 1, sizeof *sets);
    int nsets = 0, threads = 0, fail_code = 0;
    bool quiet = false;
    if (!sets) {
        fprintf(stderr, "ablasim plan: out of memory\n");
        return 4;
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage_plan, stdout);
            free(sets);
            return 0;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            quiet = true;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output") || !strcmp(a, "--set") ||
                   !strcmp(a, "--threads") || !strcmp(a, "--fail-exit-code")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "ablasim plan: %s needs a value\n\n%s", a, usage_plan);
                free(sets);
                return 1;
            }
            const char *v = argv[++i];
            if (!strcmp(a, "--set")) {
                sets[nsets++] = v;
            } else if (a[1] == 'o' || !strcmp(a, "--output")) {
                if (!*v) { /* it was "cannot create directory : No such file" (exit 3) */
                    fprintf(stderr, "ablasim plan: %s needs a directory name, got ''\n\n%s", a,
                            usage_plan);
                    free(sets);
                    return 1;
                }
                out = v;
            } else {
                char *end;
                errno = 0;
                long n = strtol(v, &end, 10);
                const bool thr = !strcmp(a, "--threads");
                /* a "no plan" exit must not look like an error (1..5) or a stop (75); it
                 * accepted 1..125 until session 26 (an adversarial test) */
                const long lo = thr ? 1 : 6, hi = thr ? 4096 : 125;
                if (errno || *end || end == v || n < lo || n > hi || (!thr && n == 75)) {
                    fprintf(stderr, "ablasim plan: %s '%s': expected a whole number in %ld..%ld%s\n",
                            a, v, lo, hi, thr ? "" : " other than 75 (1..5 and 75 are the error "
                                                     "and stop exit codes)");
                    free(sets);
                    return 1;
                }
                if (thr)
                    threads = (int)n;
                else
                    fail_code = (int)n;
            }
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "ablasim plan: unknown option '%s'\n\n%s", a, usage_plan);
            free(sets);
            return 1;
        } else if (!plan) {
            plan = a;
        } else {
            fprintf(stderr, "ablasim plan: one plan file at a time ('%s' and '%s')\n", plan, a);
            free(sets);
            return 1;
        }
    }
    if (!plan || !out) {
        fprintf(stderr, "ablasim plan: %s\n\n%s", !plan ? "missing PLAN.yaml" : "missing -o OUT_DIR",
                usage_plan);
        free(sets);
        return 1;
    }
    if (threads) omp_set_num_threads(threads);
    abl_plan_opts o = {plan, out, sets, nsets, quiet, &cli_stop_requested};
    abl_plan_report rep;
    abl_error err = {0};
    abl_status st = plan_run(&o, &rep, &err);
    free(sets);
    if (st) {
        fprintf(stderr, "ablasim plan: %s\n", err.msg);
        return abl_status_exit_code(st);
    }
    if (rep.found) {
        printf("plan             PASS: %d applicator(s)", rep.n_applicators);
        if (!isnan(rep.power_W)) printf(" at %.1f W", rep.power_W);
        printf(" for %.6g s\n", rep.duration_s);
    } else {
        printf("plan             NONE PASSES: %s\n", rep.why);
        if (rep.plan_yaml[0])
            printf("best found       %.2f mm minimal margin (the best of this local search, "
                   "not a bound: docs/PLANNING.md)\n",
                   rep.min_margin_mm);
    }
    if (rep.plan_yaml[0]) {
        printf("verified margin  %.2f mm (%s), critical limits %s\n", rep.min_margin_mm,
               rep.margin_pass ? "PASS" : "FAIL", rep.limits_ok ? "respected" : "CROSSED");
        printf("scenario         %s\n", rep.plan_yaml);
    }
    if (rep.robustness_samples)
        printf("robustness       P(PASS) = %.2f (95%% CI %.2f..%.2f, %d samples)\n", rep.p_pass,
               rep.p_pass_lo, rep.p_pass_hi, rep.robustness_samples);
    printf("evaluations      %d (%d from the journal), %.1f s\n", rep.evaluations, rep.cached,
           rep.wall_s);
    return rep.found ? 0 : fail_code;
}
