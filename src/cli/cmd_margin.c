/* cmd_margin.c - 'ablasim margin': the ablative-margin verdict of a finished run or of two
 * registered segmentations (method and definitions: docs/MARGIN.md).
 * Exit 0 whether the verdict is PASS or FAIL (the verdict is data) unless --fail-exit-code N
 * asks for N on FAIL; 1 usage, 2 invalid input (also: an incomplete result, an output that
 * is an input), 3 I/O, 4 memory, 75 stopped by SIGINT/SIGTERM before writing. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ablasim/margin.h"
#include "ablasim/fileguard.h"
#include "ablasim/output.h"
#include "commands.h"

static const char *usage_margin =
    "usage: ablasim margin RESULT.h5 [options]\n"
    "       ablasim margin --tumor T.nii.gz --zone Z.nii.gz [-o MARGIN.h5] [--margin-mm MM]\n"
    "\n"
    "Minimal ablative margin of the tumour: for every tumour voxel the distance (mm) to the\n"
    "nearest voxel outside the ablation zone (negative: not ablated, minus the distance to the\n"
    "zone), by an exact Euclidean distance transform. PASS iff the minimal margin > MM.\n"
    "\n"
    "  -o, --output MARGIN.h5   margin file (default: RESULT minus .h5 plus .margin.h5; for\n"
    "                           segmentations Z minus .nii[.gz] plus .margin.h5); MARGIN.json\n"
    "                           (summary) is written beside it\n"
    "  --criterion C            ablation zone for the verdict: tmax (T_max >= 55 C), tmin\n"
    "                           (T_min <= -40 C), omega (Arrhenius Omega >= 1), cem43\n"
    "                           (CEM43 >= 240 min); default: tmax, or tmin when the -40 C zone\n"
    "                           is larger than the 55 C zone (a cryoablation)\n"
    "  --threshold-C X          zone threshold in the criterion's unit (degC for tmax/tmin,\n"
    "                           1 for omega, min for cem43); alias --threshold\n"
    "  --margin-mm MM           required margin (default 5)\n"
    "  --tumour-tissue NAME     tissue that is the tumour (default tumour; alias\n"
    "                           --tumor-tissue)\n"
    "  --critical T:MAX:MIN     critical structure: tissue T must stay below MAX C and above\n"
    "                           MIN C (either may be empty: nerve:45, nerve::10); repeatable\n"
    "  --tumor, --tumour T.nii  tumour segmentation (label != 0 = tumour)\n"
    "  --zone Z.nii             ablation-zone segmentation (label != 0 = ablated), registered\n"
    "                           to the same grid as the tumour\n"
    "  --threads N              OpenMP threads (default: OMP_NUM_THREADS or all cores)\n"
    "  --nifti PREFIX           also write PREFIX_margin_mm.nii.gz, PREFIX_zone.nii.gz,\n"
    "                           PREFIX_tumour.nii.gz and, for a result file,\n"
    "                           PREFIX_T_max_C.nii.gz and PREFIX_T_min_C.nii.gz (overlay on\n"
    "                           the source image in Slicer)\n"
    "  --allow-incomplete       analyse a result that did not finish (root attribute\n"
    "                           complete = 0 or missing, e.g. NAME.incomplete.h5) or holds\n"
    "                           NaN/Inf values: those voxels count as not ablated (and as\n"
    "                           crossing a critical limit); the outputs are marked\n"
    "                           input_complete = false. Without it such a result is refused\n"
    "  --fail-exit-code N       exit with N (6..125, not 75) when the verdict is FAIL, so\n"
    "                           scripts can branch on it (default: 0 for PASS and FAIL alike)\n"
    "  -q, --quiet              print only the verdict line\n"
    "  -h, --help               this text\n"
    "\n"
    "The verdict is FAIL when the minimal margin is not > MM or when a --critical structure\n"
    "crossed a limit; the margin-only verdict is reported beside it.\n"
    "\n"
    "exit codes: 0 verdict given (PASS or FAIL; FAIL gives N with --fail-exit-code N),\n"
    "1 usage, 2 invalid input (incomplete or non-finite result, an output that is an input,\n"
    "an input that is not a regular file), 3 I/O error (also: another ablasim process is\n"
    "writing the margin file), 4 out of memory, 75 stopped by SIGINT/SIGTERM/SIGHUP before\n"
    "the margin files were replaced (nothing written)\n";

static int usage_error(const char *msg, const char *arg)
{
    fprintf(stderr, "ablasim margin: %s%s%s\n\n%s", msg, arg ? ": " : "", arg ? arg : "",
            usage_margin);
    return 1;
}

static int parse_number(const char *s, double lo, double hi, double *v)
{
    char *end;
    errno = 0;
    /* no white space at either end: strtod skips it in front, and " 45" passed where "45 " did
     * not (an adversarial test, session 27) */
    if (isspace((unsigned char)s[0])) return -1;
    *v = strtod(s, &end);
    return end != s && !*end && !errno && isfinite(*v) && *v >= lo && *v <= hi ? 0 : -1;
}

/* "%.3g" but "-inf" / "inf" spelled out for an empty or all-covering zone. */
static void fmt_mm(char *buf, size_t len, double v)
{
    if (isinf(v))
        snprintf(buf, len, "%s", v < 0 ? "-inf (nothing ablated)" : "inf");
    else
        snprintf(buf, len, "%.2f mm", v);
}

/* One structure: volume, damage and verdict, then one line per limit. */
static void print_critical(const abl_critical_report *c)
{
    printf("  %-14s ", c->spec.tissue);
    if (c->n_voxels == 0) {
        printf("no voxel in this result\n");
        return;
    }
    printf("%.3f mL, %.3f mL inside the ablation zone: %s\n", c->volume_mL, c->damaged_mL,
           c->crossed ? "LIMIT CROSSED" : "within limits");
    if (!isnan(c->spec.tmax_below_C)) {
        printf("  %-14s T_max %.1f C, limit < %g C: ", "", c->tmax_C, c->spec.tmax_below_C);
        if (c->n_hot)
            printf("crossed in %.3f mL", c->hot_mL);
        else
            printf("kept");
        if (c->time_above_recorded)
            printf(", longest time at or above %g C %.1f s\n", c->spec.tmax_below_C,
                   c->time_above_max_s);
        else
            printf(", time at or above %g C not recorded\n", c->spec.tmax_below_C);
    }
    if (!isnan(c->spec.tmin_above_C)) {
        printf("  %-14s T_min %.1f C, limit > %g C: ", "", c->tmin_C, c->spec.tmin_above_C);
        if (c->n_cold)
            printf("crossed in %.3f mL", c->cold_mL);
        else
            printf("kept");
        if (c->time_below_recorded)
            printf(", longest time at or below %g C %.1f s\n", c->spec.tmin_above_C,
                   c->time_below_max_s);
        else
            printf(", time at or below %g C not recorded\n", c->spec.tmin_above_C);
    }
}

/* " degC", " min", or "" for a dimensionless threshold. */
static const char *unit_suffix(const abl_zone_criterion_info *ci, char *buf, size_t len)
{
    snprintf(buf, len, "%s%s", strcmp(ci->units, "1") ? " " : "",
             strcmp(ci->units, "1") ? ci->units : "");
    return buf;
}

static void print_report(const abl_margin_report *r, bool quiet)
{
    const abl_margin_result *m = &r->m;
    char mm[64], crit[64];
    fmt_mm(mm, sizeof mm, m->min_margin_mm);
    snprintf(crit, sizeof crit, "%g mm", m->criterion_mm);
    char crossed[400] = "";
    for (int s = 0, at = 0; s < r->n_critical; s++)
        if (r->critical[s].crossed && at < (int)sizeof crossed - 80)
            at += snprintf(crossed + at, sizeof crossed - (size_t)at, "%s%s", at ? ", " : "",
                           r->critical[s].spec.tissue);
    if (quiet) {
        printf("verdict: %s (minimal margin %s, required > %s", r->pass ? "PASS" : "FAIL", mm,
               crit);
        if (r->n_critical_crossed) printf("; critical limit crossed: %s", crossed);
        if (!r->input_complete) printf("; INCOMPLETE input");
        printf(")\n");
        return;
    }
    printf("margin analysis  %s\n", r->source);
    printf("grid             %d x %d x %d voxels, spacing %g x %g x %g mm\n", r->dims[0],
           r->dims[1], r->dims[2], r->spacing_mm[0], r->spacing_mm[1], r->spacing_mm[2]);
    printf("tumour           %s: %zu voxels, %.3f mL\n", r->tumour_desc, m->n_tumour, m->tumour_mL);
    if (r->from_result) {
        const abl_zone_criterion_info *ci = zone_criterion_info(r->criterion);
        char u[16];
        printf("ablation zone    %s %s %g%s: %.3f mL%s\n", ci->quantity,
               ci->at_or_above ? ">=" : "<=", r->threshold, unit_suffix(ci, u, sizeof u),
               m->zone_mL,
               r->criterion_auto ? (r->criterion == ABL_ZONE_TMIN
                                        ? " (automatic: cold, the -40 C zone is the larger)"
                                        : " (automatic: heat)")
                                 : "");
        for (int c = 0; c < ABL_ZONE_NCRIT; c++) {
            if (c == (int)r->criterion) continue;
            const abl_zone_criterion_info *o = zone_criterion_info((abl_zone_criterion)c);
            if (r->zone_available[c])
                printf("  other zone     %s %s %g%s: %.3f mL\n", o->quantity,
                       o->at_or_above ? ">=" : "<=", r->zone_threshold[c],
                       unit_suffix(o, u, sizeof u), r->zone_mL[c]);
            else
                printf("  other zone     %s: not in this result (%s)\n", o->quantity, o->field);
        }
        if (r->applicator_mL > 0)
            printf("  applicator     %.3f mL of electrode/probe voxels counted as ablated "
                   "(needle track; in the ablation zone above, not in the other zones)\n",
                   r->applicator_mL);
    } else {
        printf("ablation zone    segmentation: %.3f mL\n", m->zone_mL);
    }
    printf("minimal margin   %s at (%.2f, %.2f, %.2f) mm, voxel (%d, %d, %d)\n", mm,
           m->min_location_mm[0], m->min_location_mm[1], m->min_location_mm[2], m->min_ijk[0],
           m->min_ijk[1], m->min_ijk[2]);
    printf("                 resolution: one voxel diagonal, %.2f mm (distances between voxel "
           "centres)\n",
           m->resolution_mm);
    printf("surface          %.1f %% of %zu surface voxels have a margin > %s\n",
           100.0 * m->surface_fraction_ok, m->n_surface, crit);
    printf("residual tumour  %.3f mL not ablated (%zu voxels)\n", m->residual_mL, m->n_residual);
    printf("%-17s%.3f mL, of which %.3f mL not ablated\n", "shell", m->shell_mL,
           m->shell_unablated_mL);
    if (m->zone_touches_border)
        printf("warning          the ablation zone reaches the grid boundary; beyond it counts "
               "as not ablated, so margins toward it are lower bounds\n");
    if (r->n_critical > 0) {
        printf("critical structures:\n");
        for (int s = 0; s < r->n_critical; s++)
            print_critical(&r->critical[s]);
    }
    if (!r->input_complete)
        printf("input            INCOMPLETE (--allow-incomplete): %s; %zu non-finite values "
               "counted as not ablated\n",
               r->input_note, r->nonfinite_values);
    if (r->n_critical_crossed)
        printf("verdict          FAIL: critical limit crossed (%s); margin %s: minimal margin "
               "%s %s %s\n",
               crossed, m->pass ? "PASS" : "FAIL", mm, m->pass ? ">" : "<=", crit);
    else
        printf("verdict          %s: minimal margin %s %s %s%s\n", m->pass ? "PASS" : "FAIL", mm,
               m->pass ? ">" : "<=", crit,
               r->n_critical ? ", critical structures within limits" : "");
    if (!r->input_complete)
        printf("                 (of an INCOMPLETE result: the run did not finish)\n");
    printf("output           %s, %s\n", r->out_h5, r->out_json);
    printf("time             %.2f s (read %.2f, distance transforms %.2f, write %.2f) on %d "
           "threads\n",
           r->wall_s, r->read_s, r->compute_s, r->write_s, omp_get_max_threads());
}

int cmd_margin(int argc, char **argv)
{
    /* SIGINT/SIGTERM: stop before the outputs are replaced, temporaries and locks removed
     * (exit 75); once the replacement has begun it finishes. Before, they killed the command
     * wherever it was, leaving its lock files and temporaries */
    cli_install_stop_signals();
    abl_margin_opts o = {
        .criterion = -1, .threshold = NAN, .criterion_mm = 5.0, .stop = &cli_stop_requested};
    bool quiet = false;
    int fail_code = 0; /* 0: FAIL exits 0 like PASS */
    abl_error err = {0};
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        /* the options below take a value: step to it or fail */
#define VALUE()                                                                                    \
    do {                                                                                           \
        if (++i >= argc) return usage_error("option needs a value", a);                            \
    } while (0)
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage_margin, stdout);
            return 0;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            quiet = true;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            VALUE();
            o.out_path = argv[i];
        } else if (!strcmp(a, "--allow-incomplete")) {
            o.allow_incomplete = true;
        } else if (!strcmp(a, "--fail-exit-code")) {
            VALUE();
            double v;
            /* 1..5 and 75 are the error and stop exit codes, 126+ belong to the shell (not
             * executable, signals): a FAIL must stay distinguishable from all of them (75 was
             * accepted until session 26, when margin gained its stop: an adversarial test) */
            if (parse_number(argv[i], 6, 125, &v) < 0 || v != floor(v) || v == 75)
                return usage_error("--fail-exit-code must be an integer 6..125 other than 75 "
                                   "(1..5 are the error exit codes, 75 a stop by SIGINT/SIGTERM), "
                                   "got",
                                   argv[i]);
            fail_code = (int)v;
        } else if (!strcmp(a, "--nifti")) {
            VALUE();
            o.nifti_prefix = argv[i];
        } else if (!strcmp(a, "--criterion")) {
            VALUE();
            abl_zone_criterion c;
            if (zone_criterion_parse(argv[i], &c, &err)) return usage_error(err.msg, NULL);
            o.criterion = (int)c;
        } else if (!strcmp(a, "--threshold-C") || !strcmp(a, "--threshold")) {
            VALUE();
            if (parse_number(argv[i], -273.15, 1e6, &o.threshold) < 0)
                return usage_error("--threshold-C needs a number", argv[i]);
        } else if (!strcmp(a, "--margin-mm")) {
            VALUE();
            if (parse_number(argv[i], 0, 1000, &o.criterion_mm) < 0)
                return usage_error("--margin-mm needs a number in [0, 1000]", argv[i]);
        } else if (!strcmp(a, "--tumour-tissue") || !strcmp(a, "--tumor-tissue")) {
            VALUE();
            o.tumour_tissue = argv[i];
        } else if (!strcmp(a, "--critical")) {
            VALUE();
            if (o.n_critical >= ABL_MARGIN_MAX_CRITICAL)
                return usage_error("too many --critical structures", argv[i]);
            if (critical_spec_parse(argv[i], &o.critical[o.n_critical], &err))
                return usage_error(err.msg, NULL);
            for (int p = 0; p < o.n_critical; p++)
                if (!strcmp(o.critical[p].tissue, o.critical[o.n_critical].tissue))
                    return usage_error("--critical names a tissue twice (give both limits in "
                                       "one TISSUE:TMAX:TMIN)",
                                       argv[i]);
            o.n_critical++;
        } else if (!strcmp(a, "--tumor") || !strcmp(a, "--tumour")) {
            VALUE();
            o.tumour_nifti = argv[i];
        } else if (!strcmp(a, "--zone")) {
            VALUE();
            o.zone_nifti = argv[i];
        } else if (!strcmp(a, "--threads")) {
            VALUE();
            double v;
            if (parse_number(argv[i], 1, 1024, &v) < 0 || v != floor(v))
                return usage_error("--threads must be an integer 1..1024, got", argv[i]);
            omp_set_num_threads((int)v);
#undef VALUE
        } else if (a[0] == '-' && a[1]) {
            return usage_error("unknown option", a);
        } else if (!o.result_path) {
            o.result_path = a;
        } else {
            return usage_error("more than one result file given", a);
        }
    }
    const bool seg = o.tumour_nifti || o.zone_nifti;
    if (seg) {
        if (o.result_path)
            return usage_error("give either RESULT.h5 or --tumor/--zone, not both", o.result_path);
        if (!o.tumour_nifti || !o.zone_nifti)
            return usage_error("segmentations need both --tumor T.nii.gz and --zone Z.nii.gz",
                               NULL);
        if (o.criterion >= 0 || !isnan(o.threshold) || o.tumour_tissue || o.n_critical ||
            o.allow_incomplete)
            return usage_error("--criterion, --threshold-C, --tumour-tissue, --critical and "
                               "--allow-incomplete apply to a simulation result, not to "
                               "segmentations",
                               NULL);
    } else if (!o.result_path) {
        return usage_error("missing RESULT.h5 (or --tumor T.nii.gz --zone Z.nii.gz)", NULL);
    }
    if (o.out_path) {
        size_t len = strlen(o.out_path);
        if (len < 4 || strcmp(o.out_path + len - 3, ".h5"))
            return usage_error("the margin file name must end in .h5, got", o.out_path);
        if (fg_refuse_checkpoint_name("margin file", o.out_path, &err) != ABL_OK) {
            fprintf(stderr, "ablasim margin: error: %s\n", err.msg);
            return abl_status_exit_code(err.status);
        }
    }
    if (!isnan(o.threshold) && (o.criterion == ABL_ZONE_OMEGA || o.criterion == ABL_ZONE_CEM43) &&
        !(o.threshold > 0))
        return usage_error("an omega or cem43 threshold must be > 0", NULL);

    /* a run killed between the renames of its result set left a commit marker: complete the
     * set first, so the verdict is about the new result, never a mix (docs/RELIABILITY.md);
     * under the result's lock, never beside the live process doing that commit */
    bool recovered = false;
    if (!seg && o.result_path && output_recover_unowned(o.result_path, &recovered, &err) != ABL_OK) {
        fprintf(stderr, "ablasim margin: error: %s\n", err.msg);
        return abl_status_exit_code(err.status);
    }
    if (recovered && !quiet)
        fprintf(stderr, "ablasim margin: %s: completed the commit of a run that was killed while "
                        "renaming its files\n", o.result_path);
    abl_margin_report *rep = calloc(1, sizeof *rep);
    if (!rep) return 4;
    abl_status st =
        seg ? margin_analyse_nifti(&o, rep, &err) : margin_analyse_result(&o, rep, &err);
    if (st) {
        fprintf(stderr, "ablasim margin: error: %s\n", err.msg);
        free(rep);
        return abl_status_exit_code(st);
    }
    print_report(rep, quiet);
    const int rc = rep->pass ? 0 : fail_code;
    free(rep);
    return rc;
}
