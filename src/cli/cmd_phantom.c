/* cmd_phantom.c - 'ablasim phantom': write an anatomical phantom (label grid) to an HDF5 mesh,
 * or list the phantoms with their parameters, labels and designed volumes.
 * Data safety (issue 14): the output name, its temporary and its lock are declared before any
 * work (a directory, FIFO or device under the output name is refused, not opened), and the
 * output is locked while it is written, so two processes never write one mesh file. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ablasim/fileguard.h"
#include "ablasim/mesh.h"
#include "ablasim/phantom.h"
#include "commands.h"

static const char *usage_phantom =
    "usage: ablasim phantom NAME -o OUT.h5 [--spacing-mm H] [--set KEY=VALUE]... [--quiet]\n"
    "       ablasim phantom --list\n"
    "\n"
    "  NAME                  liver, lung, vertebra or humerus (docs/PHANTOMS.md)\n"
    "  -o, --output OUT.h5   mesh file: uint8 labels + spacing, origin, label_names; written\n"
    "                        under a temporary name and renamed, so it appears only when done\n"
    "  --spacing-mm H        voxel size in mm (default 1; 0.1 to 2, must divide every extent)\n"
    "  --set KEY=VALUE       change a design parameter, e.g. --set tumour_diameter_mm=30\n"
    "                        (repeatable; --list shows every key with its default and range)\n"
    "  --list                phantoms, parameters, label tables and designed volumes\n"
    "  -q, --quiet           print only errors\n"
    "  -h, --help            this text\n"
    "\n"
    "exit codes: 0 written, 1 usage, 2 invalid parameter or phantom, 3 I/O error (also: OUT.h5\n"
    "is a directory, FIFO or device, or another ablasim process is writing it), 4 out of memory,\n"
    "75 stopped by SIGINT/SIGTERM/SIGHUP before OUT.h5 was written (nothing written)\n";

static int usage_error(const char *msg, const char *arg)
{
    fprintf(stderr, "ablasim phantom: %s%s%s\n\n%s", msg, arg ? ": " : "", arg ? arg : "",
            usage_phantom);
    return 1;
}

static int fail(const char *prefix, const abl_error *err)
{
    fprintf(stderr, "ablasim phantom: error: %s%s%s\n", prefix ? prefix : "", prefix ? ": " : "",
            err->msg);
    return abl_status_exit_code(err->status);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

static void print_gaps(const abl_phantom_design *d)
{
    for (int i = 0; i < d->ndistances; i++)
        printf("  %-40s %6.2f mm (labels %d and %d)\n", d->distance[i].what,
               d->distance[i].gap_mm, d->distance[i].label_a, d->distance[i].label_b);
}

static int list_phantoms(void)
{
    for (int k = 0; k < PHANTOM_COUNT; k++) {
        abl_phantom_params p;
        abl_phantom_design d;
        abl_error err = {0};
        phantom_defaults((abl_phantom_kind)k, &p);
        if (phantom_design(&p, 1.0, &d, &err)) return fail(phantom_name(p.kind), &err);
        printf("%s%s: %s\n", k ? "\n" : "", phantom_name(p.kind), phantom_summary(p.kind));
        printf("  at 1 mm: %d x %d x %d voxels\n", d.dims[0], d.dims[1], d.dims[2]);
        printf("parameters (--set KEY=VALUE; default, range):\n");
        for (int i = 0; i < phantom_param_count(p.kind); i++) {
            const abl_phantom_param_info *pi = phantom_param(p.kind, i);
            printf("  %-22s %7g  [%g, %g]  %s\n", pi->key, pi->def, pi->min, pi->max, pi->doc);
        }
        const abl_phantom_label *lt;
        int nl = phantom_labels(p.kind, &lt);
        printf("labels (designed volume at the defaults):\n");
        printf("  %-5s %-18s %-16s %12s\n", "label", "structure", "tissue", "volume mL");
        for (int l = 0; l < nl; l++)
            printf("  %-5d %-18s %-16s %12.3f\n", l, lt[l].structure, lt[l].tissue,
                   d.volume_mm3[l] / 1000);
        printf("designed gaps:\n");
        print_gaps(&d);
    }
    return 0;
}

static void print_result(const abl_phantom_params *p, const abl_phantom_design *d,
                         const abl_mesh *m, const char *out)
{
    const size_t n = (size_t)m->dims[0] * m->dims[1] * m->dims[2];
    size_t count[256] = {0};
    for (size_t i = 0; i < n; i++) count[m->labels[i]]++;
    const double voxel_mL = m->spacing_mm[0] * m->spacing_mm[1] * m->spacing_mm[2] / 1000;
    const abl_phantom_label *lt;
    int nl = phantom_labels(p->kind, &lt);
    printf("phantom    %s, %d x %d x %d voxels of %g mm\n", phantom_name(p->kind), m->dims[0],
           m->dims[1], m->dims[2], m->spacing_mm[0]);
    printf("  %-5s %-18s %-16s %10s %12s %12s %8s\n", "label", "structure", "tissue", "voxels",
           "volume mL", "designed mL", "diff %");
    for (int l = 0; l < nl; l++) {
        double v = count[l] * voxel_mL, dv = d->volume_mm3[l] / 1000;
        printf("  %-5d %-18s %-16s %10zu %12.3f %12.3f %+8.2f\n", l, lt[l].structure,
               lt[l].tissue, count[l], v, dv, dv > 0 ? 100 * (v - dv) / dv : 0.0);
    }
    printf("designed gaps:\n");
    print_gaps(d);
    printf("output     %s\n", out);
}

/* A stop request (SIGINT/SIGTERM) before the lock is taken or after the phantom is built:
 * nothing of this command exists but its lock, which the caller releases; exit 75. The mesh's
 * own write (a temporary renamed into place) is not interrupted: it is the commit. */
static int stopped(const char *out)
{
    if (!cli_stop_requested) return 0;
    fprintf(stderr,
            "ablasim phantom: error: stopped on request before %s was written: nothing was "
            "written (the same command writes it)\n",
            out);
    return abl_status_exit_code(ABL_ESTOPPED);
}

int cmd_phantom(int argc, char **argv)
{
    cli_install_stop_signals(); /* before anything is read, locked or written */
    const char *name = NULL, *out = NULL, *spacing_arg = NULL;
    const char **sets = calloc((size_t)argc + 1, sizeof *sets);
    int nsets = 0;
    bool quiet = false, list = false;
    if (!sets) return 4;
    int rc = -1;
    for (int i = 0; i < argc && rc < 0; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage_phantom, stdout);
            rc = 0;
        } else if (!strcmp(a, "--list")) {
            list = true;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (++i >= argc) rc = usage_error("-o needs a file name", NULL);
            else out = argv[i];
        } else if (!strcmp(a, "--spacing-mm")) {
            if (++i >= argc) rc = usage_error("--spacing-mm needs a value in mm", NULL);
            else spacing_arg = argv[i];
        } else if (!strncmp(a, "--spacing-mm=", 13)) {
            spacing_arg = a + 13;
        } else if (!strcmp(a, "--set") || !strncmp(a, "--set=", 6)) {
            const char *kv = a[5] == '=' ? a + 6 : (++i < argc ? argv[i] : NULL);
            if (!kv || !strchr(kv, '=') || kv[0] == '=')
                rc = usage_error("--set needs KEY=VALUE, got", kv ? kv : "nothing");
            else sets[nsets++] = kv;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            quiet = true;
        } else if (a[0] == '-') {
            rc = usage_error("unknown option", a);
        } else if (!name) {
            name = a;
        } else {
            rc = usage_error("more than one phantom name given", a);
        }
    }
    if (rc >= 0) {
        free(sets);
        return rc;
    }
    if (list) {
        free(sets);
        if (name || out || nsets || spacing_arg)
            return usage_error("--list takes no other arguments", NULL);
        return list_phantoms();
    }
    if (!name) return free(sets), usage_error("missing the phantom NAME", NULL);
    if (!out) return free(sets), usage_error("missing -o OUT.h5", NULL);
    if (!ends_with(out, ".h5"))
        return free(sets), usage_error("the output file name must end in .h5, got", out);

    abl_error err = {0};
    abl_phantom_params p;
    abl_phantom_kind kind;
    if (phantom_kind_from_name(name, &kind, &err)) return free(sets), fail(NULL, &err);
    /* Every name this command writes (mesh_write: OUT.tmp, renamed to OUT; fg_lock: OUT.lock),
     * checked before the phantom is built; the lock is taken only after the parameters are
     * known to be good (below). */
    {
        const size_t len = strlen(out) + 6;
        char *tmp = malloc(len), *lk = malloc(len);
        abl_fileset *fs = fileset_new();
        abl_status st = tmp && lk && fs ? ABL_OK : abl_fail(&err, ABL_ENOMEM, "out of memory");
        if (!st) {
            snprintf(tmp, len, "%s.tmp", out);
            snprintf(lk, len, "%s.lock", out);
            st = fg_refuse_checkpoint_name("phantom mesh", out, &err);
            if (!st) st = fileset_output(fs, "phantom mesh", out, &err);
        }
        if (!st) st = fileset_output(fs, "phantom mesh temporary", tmp, &err);
        if (!st) st = fileset_output(fs, "phantom mesh lock", lk, &err);
        if (!st) st = fileset_check(fs, &err);
        fileset_free(fs);
        free(tmp);
        free(lk);
        if (st) return free(sets), fail(NULL, &err);
    }
    phantom_defaults(kind, &p);

    double spacing = 1.0;
    if (spacing_arg) {
        char *end;
        errno = 0;
        spacing = strtod(spacing_arg, &end);
        /* a number out of double's range (1e-320, 1e400) is a number: the range check below
         * refuses it as it refuses nan (exit 2); it was a usage error (exit 1; an adversarial
         * test, session 27) */
        if (end == spacing_arg || *end || (errno && errno != ERANGE)) {
            free(sets);
            return usage_error("--spacing-mm must be a number (voxel size in mm), got",
                               spacing_arg);
        }
    }
    for (int i = 0; i < nsets; i++) {
        char key[128];
        const char *eq = strchr(sets[i], '='); /* present: checked while parsing */
        if ((size_t)(eq - sets[i]) >= sizeof key) {
            int r = usage_error("--set: unknown (overlong) KEY in", sets[i]);
            free(sets);
            return r;
        }
        memcpy(key, sets[i], (size_t)(eq - sets[i]));
        key[eq - sets[i]] = '\0';
        if (phantom_set(&p, key, eq + 1, &err)) {
            char prefix[200];
            snprintf(prefix, sizeof prefix, "--set %.150s", sets[i]);
            free(sets);
            return fail(prefix, &err);
        }
    }
    free(sets);

    abl_phantom_design d;
    /* Spacing problems name the option; geometry problems already name the phantom and the
     * parameters to change. */
    if (phantom_design(&p, spacing, &d, &err))
        return fail(!strncmp(err.msg, "spacing", 7) ? "--spacing-mm" : NULL, &err);
    /* Held from before the phantom is built until the file is renamed into place: a second
     * process writing the same name fails at once with this one's pid. */
    abl_lock *lock = NULL;
    int sr = stopped(out);
    if (sr) return sr;
    if (fg_lock(out, &lock, &err)) return fail(NULL, &err);
    abl_mesh m;
    if (phantom_generate(&p, spacing, &m, &err)) {
        fg_unlock(lock);
        return fail(NULL, &err);
    }
    if ((sr = stopped(out))) {
        fg_unlock(lock);
        mesh_free(&m);
        return sr;
    }
    abl_status wst = mesh_write(out, &m, &err);
    fg_unlock(lock);
    if (wst) {
        mesh_free(&m);
        return fail(NULL, &err);
    }
    if (!quiet) print_result(&p, &d, &m, out);
    mesh_free(&m);
    return 0;
}
