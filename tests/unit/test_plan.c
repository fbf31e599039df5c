/* test_plan.c - the planner (`ablasim plan`, plan.h): scenario trees written back, the known
 * optimum of a symmetric case, resume from the journal, refusals. */
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../src/formats/undo.h"
#include "../../src/plan/plan_internal.h"
#include "ablasim/config.h"
#include "ablasim/fileguard.h"
#include "ablasim/mesh.h"
#include "ablasim/nifti.h"
#include "ablasim/plan.h"
#include "ablasim/scenario.h"
#include "ablasim/sim.h"
#include "testutil.h"

static char *emit(const cfg_node *root)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CU_ASSERT_FATAL(f != NULL);
    CU_ASSERT(cfg_emit(f, root) == 0);
    fclose(f);
    return text;
}

/* A tree written by cfg_emit reads back to the same tree (same text when written again) and to
 * the same scenario: every clinical config, with quoted strings and flow maps in it. */
static void test_emit_roundtrip(void)
{
    const char *names[] = {"liver_rfa_vein", "cryo_humerus_nerve", "mwa_lung", "liver_demo"};
    for (int i = 0; i < 4; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/configs/%s.yaml", tu_root(), names[i]);
        cfg_node *a = NULL, *b = NULL;
        abl_error err = {0};
        CU_ASSERT_FATAL(cfg_load_file(path, &a, &err) == ABL_OK);
        CU_ASSERT(cfg_set(a, "name=\"a: 'quoted' \\\"name\\\"\"", &err) == ABL_OK);
        char *t1 = emit(a);
        CU_ASSERT_FATAL(cfg_parse_string(t1, "emitted", &b, &err) == ABL_OK);
        char *t2 = emit(b);
        CU_ASSERT_STRING_EQUAL(t1, t2);
        cfg_node *n = cfg_get(b, "name");
        CU_ASSERT(n && n->quoted && !strcmp(n->value, "a: 'quoted' \"name\""));
        /* the same scenario: duration and source count from both texts */
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/configs", tu_root());
        abl_scenario *s1 = NULL, *s2 = NULL;
        CU_ASSERT_FATAL(scenario_load(path, NULL, 0, &s1, &err) == ABL_OK);
        if (scenario_load_string(t1, "emitted", dir, NULL, 0, &s2, &err)) printf("%s\n", err.msg);
        CU_ASSERT_FATAL(s2 != NULL);
        CU_ASSERT(s1->duration_s == s2->duration_s && s1->nsources == s2->nsources &&
                  s1->dims[0] == s2->dims[0] && s1->n_hot == s2->n_hot);
        scenario_free(s1);
        scenario_free(s2);
        cfg_free(a);
        cfg_free(b);
        free(t1);
        free(t2);
    }
}

static void test_relpath(void)
{
    char out[512];
    plan_relpath("/a/b/out", "/a/b/meshes/liver.h5", out, sizeof out);
    CU_ASSERT_STRING_EQUAL(out, "../meshes/liver.h5");
    plan_relpath("/a/b", "/a/b/x.yaml", out, sizeof out);
    CU_ASSERT_STRING_EQUAL(out, "x.yaml");
    plan_relpath("/a/bc/d", "/a/b/x", out, sizeof out);
    CU_ASSERT_STRING_EQUAL(out, "../../b/x");
}

/* Time [s] at which every voxel within 5 mm of the tumour reaches 55 C with the
 * source of configs/plans/sphere.yaml at the tumour centre: the least dose, computed here
 * independently of the planner (brute-force distances, plain stepping). */
static double least_duration_at_centre(void)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/configs/plans/sphere.yaml", tu_root());
    const char *sets[] = {"sources.0.shape.center_mm=[0, 0, 0]"};
    abl_scenario *sc = NULL;
    abl_error err = {0};
    CU_ASSERT_FATAL(scenario_load(path, sets, 1, &sc, &err) == ABL_OK);
    abl_sim *s = tu_sim(sc);
    const abl_grid *g = &s->grid;
    size_t ntum = 0, *tum = malloc(g->n * sizeof *tum);
    CU_ASSERT_FATAL(tum != NULL);
    for (size_t v = 0; v < g->n; v++)
        if (!strcmp(sc->tissues.t[s->mat_tissue[s->material[v]]].name, "tumour")) tum[ntum++] = v;
    uint8_t *in_set = calloc(g->n, 1);
    for (int k = 0; k < g->nz; k++)
        for (int j = 0; j < g->ny; j++)
            for (int i = 0; i < g->nx; i++) {
                double x[3];
                grid_voxel_centre_m(g, i, j, k, x);
                for (size_t t = 0; t < ntum; t++) {
                    const size_t v = tum[t];
                    double y[3];
                    grid_voxel_centre_m(g, (int)(v % g->sy), (int)((v / g->sy) % g->ny),
                                        (int)(v / g->sz), y);
                    const double d2 = (x[0] - y[0]) * (x[0] - y[0]) + (x[1] - y[1]) * (x[1] - y[1]) +
                                      (x[2] - y[2]) * (x[2] - y[2]);
                    if (d2 <= 25e-6 * (1 + 1e-9)) {
                        in_set[ABL_IDX(g, i, j, k)] = 1;
                        break;
                    }
                }
            }
    /* step by step; coverage time by linear interpolation of min (T_max - 55 C) over the set
     * between the two steps around its zero (the planner's definition, docs/PLANNING.md) */
    double t_cov = NAN, g_prev = NAN, t_prev = 0;
    while (isnan(t_cov) && s->step < s->nsteps_total) {
        CU_ASSERT_FATAL(sim_advance(s, 1, INFINITY, &err) == ABL_OK);
        double gmin = INFINITY;
        for (size_t v = 0; v < g->n; v++)
            if (in_set[v] && s->T_max[v] - 55.0 < gmin) gmin = s->T_max[v] - 55.0;
        if (gmin >= 0)
            t_cov = isnan(g_prev) ? s->t_s : t_prev + (s->t_s - t_prev) * (-g_prev) / (gmin - g_prev);
        g_prev = gmin;
        t_prev = s->t_s;
    }
    free(tum);
    free(in_set);
    sim_destroy(s);
    scenario_free(sc);
    return t_cov;
}

static void read_plan_centre(const char *yaml, double c[3])
{
    abl_scenario *sc = NULL;
    abl_error err = {0};
    if (scenario_load(yaml, NULL, 0, &sc, &err)) printf("%s\n", err.msg);
    CU_ASSERT_FATAL(sc != NULL);
    cfg_node *root = NULL;
    CU_ASSERT_FATAL(cfg_load_file(yaml, &root, &err) == ABL_OK);
    CU_ASSERT_FATAL(plan_read_vec3(cfg_get(root, "sources")->items[0], "shape.center_mm", c,
                                   &err) == ABL_OK);
    cfg_free(root);
    scenario_free(sc);
}

/* Known optimum (issue 18): spherical tumour in homogeneous liver, one uniform spherical
 * source started 3 mm off centre on every axis (5.2 mm away). By symmetry the least dose is
 * with the source at the centre. Tolerances are the issue's: 1 mm for the position, 2 % for
 * the dose (duration at fixed power; the planner rounds it up to its 0.25 s time step, 0.3 % of
 * the ~80 s). */
static void test_known_optimum_and_resume(void)
{
    char out[1024], plan[1024];
    tu_subdir(out, sizeof out, "plan_sphere");
    snprintf(plan, sizeof plan, "%s/configs/plans/sphere_plan.yaml", tu_root());
    const char *sets[] = {"robustness.samples=4"};
    abl_plan_opts o = {plan, out, sets, 1, true, NULL};
    abl_plan_report rep;
    abl_error err = {0};
    abl_status st = plan_run(&o, &rep, &err);
    if (st) printf("%s\n", err.msg);
    CU_ASSERT_FATAL(st == ABL_OK);
    CU_ASSERT(rep.found && rep.margin_pass && rep.limits_ok);
    CU_ASSERT(rep.min_margin_mm > 5.0);
    CU_ASSERT(rep.robustness_samples == 4);
    double c[3];
    read_plan_centre(rep.plan_yaml, c);
    const double off = sqrt(c[0] * c[0] + c[1] * c[1] + c[2] * c[2]);
    const double t_best = least_duration_at_centre();
    printf("\n    plan: source %.3f mm from the centre, %.0f s; least duration at the centre %.0f s "
           "(%+.2f %%), %d evaluations\n",
           off, rep.duration_s, t_best, 100.0 * (rep.duration_s / t_best - 1.0), rep.evaluations);
    CU_ASSERT(off <= 1.0);
    CU_ASSERT(fabs(rep.duration_s - t_best) <= 0.02 * t_best);
    /* plan.json's tips are the simulated ones, plan.yaml's (QA, session 29: it gave the
     * search's unrounded tips), and plan.md prints no "-0.0" */
    char jp[1200], mp[1200];
    snprintf(jp, sizeof jp, "%s/plan.json", out);
    snprintf(mp, sizeof mp, "%s/plan.md", out);
    char *js = tu_slurp(jp), *md = tu_slurp(mp);
    CU_ASSERT_FATAL(js != NULL && md != NULL);
    const char *tp = strstr(js, "\"tips_mm\"");
    CU_ASSERT_FATAL(tp != NULL);
    tp = strchr(tp, '[');
    CU_ASSERT_FATAL(tp != NULL);
    char *end = (char *)tp + 1;
    while (*end == ' ' || *end == '\n' || *end == '[') end++; /* the first tip's first number */
    double jt[3];
    for (int a = 0; a < 3; a++) {
        jt[a] = strtod(end, &end);
        while (*end == ',' || *end == ' ') end++;
    }
    printf("    plan.json tip (%.17g, %.17g, %.17g), plan.yaml (%.17g, %.17g, %.17g)\n", jt[0],
           jt[1], jt[2], c[0], c[1], c[2]);
    CU_ASSERT(jt[0] == c[0] && jt[1] == c[1] && jt[2] == c[2]);
    CU_ASSERT(strstr(md, "-0.0,") == NULL && strstr(md, "-0.0)") == NULL);
    free(js);
    free(md);

    /* The same plan again in the same directory: every evaluation comes from the journal
     * (none simulated anew), and the plan is the same. */
    abl_plan_report rep2;
    st = plan_run(&o, &rep2, &err);
    if (st) printf("%s\n", err.msg);
    CU_ASSERT_FATAL(st == ABL_OK);
    CU_ASSERT(rep2.evaluations == 0);
    CU_ASSERT(rep2.cached == rep.evaluations);
    CU_ASSERT(rep2.duration_s == rep.duration_s && rep2.found);
    double c2[3];
    read_plan_centre(rep2.plan_yaml, c2);
    CU_ASSERT(c2[0] == c[0] && c2[1] == c[1] && c2[2] == c[2]);

    /* Another plan (a different search box) in that directory is refused: its journal is
     * not touched. */
    char jpath[1200];
    snprintf(jpath, sizeof jpath, "%s/journal.csv", out);
    unsigned long long before = tu_file_sum(jpath);
    const char *sets3[] = {"search.position_mm=5"};
    abl_plan_opts o3 = {plan, out, sets3, 1, true, NULL};
    st = plan_run(&o3, &rep2, &err);
    CU_ASSERT(st == ABL_EINVAL);
    CU_ASSERT(strstr(err.msg, "journal of another plan") != NULL);
    CU_ASSERT(tu_file_sum(jpath) == before);
}

/* Evaluation lines of a plan journal (not its "# ..." first line nor its column header). */
static int plan_journal_evals(const char *dir)
{
    char p[1200];
    snprintf(p, sizeof p, "%s/journal.csv", dir);
    char *t = tu_slurp(p);
    int n = 0;
    for (char *l = t; l && *l;) {
        if (*l != '#' && *l != 'k') n++;
        char *nl = strchr(l, '\n');
        l = nl ? nl + 1 : l + strlen(l);
    }
    free(t);
    return n;
}

/* The stop flag is set the way the command line sets it: by a signal handler (SIGUSR1, sent
 * by the watcher thread to the process), the only writer of a sig_atomic_t that C allows
 * besides the flag's own thread. */
static volatile sig_atomic_t plan_stop_flag;

static void plan_stop_handler(int sig)
{
    (void)sig;
    plan_stop_flag = 1;
}

typedef struct {
    const char *dir;
    int after;        /* signal once the journal holds this many */
    _Atomic int done; /* plan_run returned */
} stop_watch;

static void *watch_journal(void *arg)
{
    stop_watch *w = arg;
    while (!w->done) {
        if (plan_journal_evals(w->dir) >= w->after) {
            kill(getpid(), SIGUSR1);
            break;
        }
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    return NULL;
}

/* Names, sizes and contents of the plan's files in dir (journal and lock excluded). */
static char *plan_files_snapshot(const char *dir)
{
    static const char *const names[] = {"plan.yaml", "plan.h5", "plan.xdmf", "plan.json",
                                        "plan.margin.h5", "plan.margin.json", "plan.md"};
    char *snap = malloc(4096);
    size_t at = 0;
    snap[0] = '\0';
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char p[1200];
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        at += (size_t)snprintf(snap + at, 4096 - at, "%s %d %llx\n", names[i], tu_exists(p),
                               tu_exists(p) ? tu_file_sum(p) : 0ULL);
    }
    return snap;
}

/* A stop request (abl_plan_opts.stop; the CLI's SIGINT/SIGTERM) on the known-optimum plan:
 *  1. raised before the plan: ABL_ESTOPPED after 0 evaluations, no plan file, no lock;
 *  2. raised by a watcher once the journal holds 2 evaluations: ABL_ESTOPPED, the evaluation
 *     in flight abandoned (the journal only grows by finished ones), no plan file, no lock;
 *  3. the same plan again without a stop: it continues from the journal (every line kept is
 *     reused) and gives the plan of an uninterrupted run (the known optimum: same centre and
 *     duration as a fresh directory's);
 *  4. raised before the same plan runs once more: every evaluation comes from the journal, the
 *     verification run is stopped, and the plan files of step 3 are restored byte for byte.
 * And `ablasim plan` sent SIGTERM once 2 evaluations are journalled exits 75 and leaves no
 * lock; before the handler it was killed by the signal. */
static void test_stop_request(void)
{
    char out[1024], fresh[1024], plan[1024], lockp[1200], yaml[1200];
    tu_subdir(out, sizeof out, "plan_stop");
    tu_subdir(fresh, sizeof fresh, "plan_stop_fresh");
    snprintf(plan, sizeof plan, "%s/configs/plans/sphere_plan.yaml", tu_root());
    snprintf(lockp, sizeof lockp, "%s/journal.csv.lock", out);
    snprintf(yaml, sizeof yaml, "%s/plan.yaml", out);
    const char *sets[] = {"robustness.samples=0"};
    struct sigaction sa = {0}, old_sa;
    sa.sa_handler = plan_stop_handler;
    sigemptyset(&sa.sa_mask);
    CU_ASSERT_FATAL(sigaction(SIGUSR1, &sa, &old_sa) == 0);
    abl_plan_opts o = {plan, out, sets, 1, true, &plan_stop_flag};
    abl_plan_report rep, ref;
    abl_error err = {0};

    plan_stop_flag = 1; /* 1 */
    CU_ASSERT_EQUAL(plan_run(&o, &rep, &err), ABL_ESTOPPED);
    CU_ASSERT(strstr(err.msg, "stopped on request after 0 forward evaluation(s)") != NULL);
    CU_ASSERT(!tu_exists(yaml) && !tu_exists(lockp));
    CU_ASSERT_EQUAL(plan_journal_evals(out), 0);

    plan_stop_flag = 0; /* 2 */
    stop_watch w = {out, 2, 0};
    pthread_t th;
    CU_ASSERT_FATAL(pthread_create(&th, NULL, watch_journal, &w) == 0);
    abl_status st = plan_run(&o, &rep, &err);
    w.done = 1;
    pthread_join(th, NULL);
    const int kept = plan_journal_evals(out);
    printf("\n    stopped with %d evaluations in the journal: %s\n", kept, err.msg);
    CU_ASSERT_EQUAL(st, ABL_ESTOPPED);
    CU_ASSERT(kept >= 2);
    CU_ASSERT(!tu_exists(yaml) && !tu_exists(lockp));

    plan_stop_flag = 0; /* 3 */
    st = plan_run(&o, &rep, &err);
    if (st) printf("%s\n", err.msg);
    CU_ASSERT_FATAL(st == ABL_OK);
    CU_ASSERT_EQUAL(rep.cached, kept);
    abl_plan_opts of = {plan, fresh, sets, 1, true, NULL};
    CU_ASSERT_FATAL(plan_run(&of, &ref, &err) == ABL_OK);
    CU_ASSERT_EQUAL(rep.evaluations + rep.cached, ref.evaluations);
    CU_ASSERT(rep.found && ref.found && rep.duration_s == ref.duration_s);
    double c[3], cr[3];
    read_plan_centre(rep.plan_yaml, c);
    read_plan_centre(ref.plan_yaml, cr);
    CU_ASSERT(c[0] == cr[0] && c[1] == cr[1] && c[2] == cr[2]);

    char *before = plan_files_snapshot(out); /* 4 */
    plan_stop_flag = 1;
    CU_ASSERT_EQUAL(plan_run(&o, &rep, &err), ABL_ESTOPPED);
    char *after = plan_files_snapshot(out);
    CU_ASSERT_STRING_EQUAL(before, after);
    CU_ASSERT(!strstr(before, " 0 0\n")); /* every plan file was there to compare */
    CU_ASSERT(!tu_exists(lockp));
    free(before);
    free(after);
    sigaction(SIGUSR1, &old_sa, NULL);

    /* the command line: SIGTERM once 2 evaluations are journalled */
    char cli[1024], errf[1200];
    tu_subdir(cli, sizeof cli, "plan_stop_cli");
    snprintf(errf, sizeof errf, "%s/plan.err", cli);
    snprintf(lockp, sizeof lockp, "%s/journal.csv.lock", cli);
    pid_t pid = tu_spawn_err((const char *const[]){"ablasim", "plan", plan, "-o", cli, "--set",
                                                   "robustness.samples=0", "--threads", "1",
                                                   "-q", NULL},
                             errf);
    CU_ASSERT_FATAL(pid > 0);
    int status = 0;
    bool ended = false;
    for (int i = 0; i < 120000 && plan_journal_evals(cli) < 2; i++) { /* <= ~120 s (ASan) */
        if (waitpid(pid, &status, WNOHANG) == pid) {
            ended = true;
            break;
        }
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    if (!ended) {
        kill(pid, SIGTERM);
        CU_ASSERT_FATAL(waitpid(pid, &status, 0) == pid);
    }
    char *e = tu_slurp(errf);
    if (!(WIFEXITED(status) && WEXITSTATUS(status) == 75))
        printf("\n    ablasim plan after SIGTERM: %s %d, stderr: %s\n",
               WIFEXITED(status) ? "exit" : "killed by signal",
               WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), e ? e : "");
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 75);
    CU_ASSERT(e && strstr(e, "stopped on request after") && strstr(e, "continues"));
    CU_ASSERT(!tu_exists(lockp));
    free(e);
}

/* optimiser.starts: the first level searched from several points (the first the usual start,
 * then Halton points of the box). On the known optimum: every start ran (more coarse
 * evaluations than one start's cap of 40), and the plan still meets the known-optimum bounds of
 * the test above (1 mm, 2 %): the extra starts can only replace the first start's coarse optimum
 * by a better one. */
static void test_multi_start(void)
{
    char out[1024], plan[1024];
    tu_subdir(out, sizeof out, "plan_sphere_starts");
    snprintf(plan, sizeof plan, "%s/configs/plans/sphere_plan.yaml", tu_root());
    const char *sets[] = {"robustness.samples=0", "optimiser.starts=3"};
    abl_plan_opts o = {plan, out, sets, 2, true, NULL};
    abl_plan_report rep;
    abl_error err = {0};
    abl_status st = plan_run(&o, &rep, &err);
    if (st) printf("%s\n", err.msg);
    CU_ASSERT_FATAL(st == ABL_OK);
    CU_ASSERT(rep.found && rep.margin_pass && rep.limits_ok);
    /* coarse evaluations in the journal: lines whose second column (level) is 1 */
    char jpath[1200];
    snprintf(jpath, sizeof jpath, "%s/journal.csv", out);
    char *j = tu_slurp(jpath);
    CU_ASSERT_FATAL(j != NULL);
    int coarse = 0;
    for (char *line = j; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        const char *comma = strchr(line, ',');
        if (line[0] != '#' && comma && comma[1] == '1' && comma[2] == ',') coarse++;
    }
    free(j);
    double c[3];
    read_plan_centre(rep.plan_yaml, c);
    const double off = sqrt(c[0] * c[0] + c[1] * c[1] + c[2] * c[2]);
    const double t_best = least_duration_at_centre();
    printf("\n    3 starts: %d coarse evaluations, source %.3f mm from the centre, %.0f s "
           "(least %.0f s)\n", coarse, off, rep.duration_s, t_best);
    CU_ASSERT(coarse > 40 && coarse <= 3 * 40);
    CU_ASSERT(off <= 1.0);
    CU_ASSERT(fabs(rep.duration_s - t_best) <= 0.02 * t_best);
}

/* One evaluation line of journal.csv: its level (0 full grid, 1 coarse), objective and the
 * first applicator's tip. */
typedef struct {
    int level;
    double objective, tip[3];
} journal_row;

/* The evaluations of OUT/journal.csv in order (at most max); -1 when a line does not parse. */
static int read_journal(const char *out, journal_row *rows, int max)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/journal.csv", out);
    char *j = tu_slurp(path);
    if (!j) return -1;
    int n = 0;
    for (char *line = j; *line && n < max;) {
        char *end = strchr(line, '\n');
        if (end) *end = '\0';
        if (line[0] != '#' && strncmp(line, "key,", 4)) {
            /* columns (journal_write): key, level, ..., objective (13th), wall_s, power_W,
             * tips_mm (16th: "x y z;x y z..."), direction, note */
            const char *f[17] = {line};
            int nf = 1;
            for (char *c = line; *c && nf < 17; c++)
                if (*c == ',') f[nf++] = c + 1;
            if (nf < 17 || sscanf(f[1], "%d", &rows[n].level) != 1 ||
                sscanf(f[12], "%lg", &rows[n].objective) != 1 ||
                sscanf(f[15], "%lg %lg %lg", &rows[n].tip[0], &rows[n].tip[1],
                       &rows[n].tip[2]) != 3) {
                free(j);
                return -1;
            }
            n++;
        }
        if (!end) break;
        line = end + 1;
    }
    free(j);
    return n;
}

static double tip_dist_max(const double a[3], const double b[3])
{
    return fmax(fabs(a[0] - b[0]), fmax(fabs(a[1] - b[1]), fabs(a[2] - b[2])));
}

/* optimiser.rerank: between the levels the 3 best distinct coarse candidates are evaluated on
 * the full grid and the full-grid search continues from the best of them there. On the known
 * optimum (3 position variables, +-6 mm: a unit-box step of 0.05 is 0.6 mm of tip):
 * - the journal holds the coarse evaluations, then exactly those 3 full-grid evaluations: the
 *   3 best coarse candidates by coarse objective, each at least 0.6 mm (in one coordinate)
 *   from those before (computed here from the coarse lines);
 * - the next full-grid evaluation is the search's first simplex point from the best of the 3
 *   at full fidelity (its tip + 0.6 mm in x: NLopt's Nelder-Mead steps the first variable
 *   first), so the search started there; its start, already evaluated, is not run again (at
 *   most 3 + 40 - 1 full-grid lines; none counted from the journal in a fresh run);
 * - the plan meets the known-optimum bounds (1 mm, 2 %);
 * - the same plan again is answered from the journal alone, with the same plan.
 * expect_best: which of the 3 is the best on the full grid in the case as written (0: the
 * coarse optimum), so that each case is known to test what it is meant to. */
static void rerank_case(const char *name, const char *const *extra, int nextra, int max_coarse,
                        int expect_best)
{
    char out[1024], plan[1024];
    tu_subdir(out, sizeof out, "%s", name);
    snprintf(plan, sizeof plan, "%s/configs/plans/sphere_plan.yaml", tu_root());
    const char *sets[6] = {"robustness.samples=0", "optimiser.rerank=3"};
    for (int i = 0; i < nextra && i < 4; i++) sets[2 + i] = extra[i];
    abl_plan_opts o = {plan, out, sets, 2 + nextra, true, NULL};
    abl_plan_report rep;
    abl_error err = {0};
    abl_status st = plan_run(&o, &rep, &err);
    if (st) printf("%s\n", err.msg);
    CU_ASSERT_FATAL(st == ABL_OK);
    CU_ASSERT(rep.found && rep.margin_pass && rep.limits_ok);

    enum { MAXROWS = 200 };
    journal_row *r = calloc(MAXROWS, sizeof *r);
    CU_ASSERT_FATAL(r != NULL);
    const int n = read_journal(out, r, MAXROWS);
    CU_ASSERT_FATAL(n > 4);
    int ncoarse = 0;
    while (ncoarse < n && r[ncoarse].level == 1) ncoarse++;
    CU_ASSERT(ncoarse > 3 && ncoarse <= max_coarse);
    int nfull = 0;
    for (int i = ncoarse; i < n; i++) nfull += r[i].level == 0;
    CU_ASSERT_FATAL(nfull == n - ncoarse); /* nothing coarse after the full grid began */
    CU_ASSERT(nfull >= 4 && nfull <= 3 + 40 - 1);
    CU_ASSERT(rep.evaluations == n && rep.cached == 0);

    /* the expected candidates: best coarse objective first (the earlier on ties), distinct */
    int pick[3], np = 0;
    for (; np < 3; np++) {
        int b = -1;
        for (int i = 0; i < ncoarse; i++) {
            if (b >= 0 && !(r[i].objective < r[b].objective)) continue;
            bool near = false;
            for (int k = 0; k < np; k++)
                near = near || tip_dist_max(r[i].tip, r[pick[k]].tip) < 0.6 - 1e-3;
            if (!near) b = i;
        }
        CU_ASSERT_FATAL(b >= 0);
        pick[np] = b;
    }
    int kb = 0;
    for (int k = 0; k < 3; k++) {
        const journal_row *f = &r[ncoarse + k];
        CU_ASSERT(tip_dist_max(f->tip, r[pick[k]].tip) < 1e-9);
        if (f->objective < r[ncoarse + kb].objective) kb = k;
    }
    CU_ASSERT(kb == expect_best);
    const journal_row *best = &r[ncoarse + kb], *next = &r[ncoarse + 3];
    CU_ASSERT(fabs(next->tip[0] - best->tip[0] - 0.6) < 2e-3);
    CU_ASSERT(fabs(next->tip[1] - best->tip[1]) < 2e-3 && fabs(next->tip[2] - best->tip[2]) < 2e-3);

    double c[3];
    read_plan_centre(rep.plan_yaml, c);
    const double off = sqrt(c[0] * c[0] + c[1] * c[1] + c[2] * c[2]);
    const double t_best = least_duration_at_centre();
    printf("\n    %s: %d coarse + %d full-grid evaluations, candidates of coarse objective "
           "%.4f %.4f %.4f score %.4f %.4f %.4f on the full grid (continued from %d); source "
           "%.3f mm from the centre, %.0f s (least %.0f s)",
           name, ncoarse, nfull, r[pick[0]].objective, r[pick[1]].objective, r[pick[2]].objective,
           r[ncoarse].objective, r[ncoarse + 1].objective, r[ncoarse + 2].objective, kb + 1, off,
           rep.duration_s, t_best);
    CU_ASSERT(off <= 1.0);
    CU_ASSERT(fabs(rep.duration_s - t_best) <= 0.02 * t_best);
    free(r);

    /* resumed: every evaluation from the journal, none run again, the same plan */
    abl_plan_report rep2;
    st = plan_run(&o, &rep2, &err);
    if (st) printf("%s\n", err.msg);
    CU_ASSERT_FATAL(st == ABL_OK);
    CU_ASSERT(rep2.evaluations == 0 && rep2.cached == rep.evaluations);
    CU_ASSERT(rep2.found && rep2.duration_s == rep.duration_s);
    double c2[3];
    read_plan_centre(rep2.plan_yaml, c2);
    CU_ASSERT(c2[0] == c[0] && c2[1] == c[1] && c2[2] == c[2]);
}

/* The plan file's levels (coarsen 2, 40 + 40 evaluations): the coarse optimum is also the best
 * of the 3 on the full grid; on a 3x coarser grid with 30 coarse evaluations the second is,
 * and the full-grid search must start from it. */
static void test_rerank(void)
{
    rerank_case("plan_sphere_rerank", NULL, 0, 40, 0);
    const char *coarser[] = {"optimiser.coarsen=3", "optimiser.max_evaluations=30"};
    rerank_case("plan_sphere_rerank_x3", coarser, 2, 30, 1);
    printf("\n");
}

/* optimiser.rerank on a plan of fixed duration (no search.duration_s) with fine_evaluations 1,
 * which goes from the coarse level straight to verification: the 2 best distinct coarse
 * candidates are run on the full grid (the journal's only full-grid lines) and the verified
 * plan is the better of them there. The scenario is cut to 250 s (the least duration at the
 * centre is ~241 s), so that coverage, and with it the objective, differs between candidates;
 * on the 4x coarser grid (16 evaluations) the coarse optimum is the worse of the two on the
 * full grid (objectives 2.10 and 1.41 when written), so the case checks that the second can
 * win. */
static void test_rerank_fixed_duration(void)
{
    char dir[1024], plan[1100], out[1100];
    tu_subdir(dir, sizeof dir, "plan_rerank_fixed");
    snprintf(plan, sizeof plan, "%s/p.yaml", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    FILE *f = fopen(plan, "w");
    CU_ASSERT_FATAL(f != NULL);
    fprintf(f,
            "scenario: %s/configs/plans/sphere.yaml\n"
            "scenario_set: [\"time.duration_s=250\"]\n"
            "target: {tissue: tumour, margin_mm: 5}\n"
            "search: {start: scenario, position_mm: 6}\n"
            "optimiser: {max_evaluations: 16, coarsen: 4, fine_evaluations: 1, rerank: 2}\n"
            "robustness: {samples: 0}\n",
            tu_root());
    fclose(f);
    abl_plan_opts o = {plan, out, NULL, 0, true, NULL};
    abl_plan_report rep;
    abl_error err = {0};
    abl_status st = plan_run(&o, &rep, &err);
    if (st) printf("%s\n", err.msg);
    CU_ASSERT_FATAL(st == ABL_OK);
    journal_row r[64];
    const int n = read_journal(out, r, 64);
    CU_ASSERT_FATAL(n >= 3);
    int ncoarse = 0;
    while (ncoarse < n && r[ncoarse].level == 1) ncoarse++;
    CU_ASSERT_FATAL(ncoarse == n - 2 && r[n - 2].level == 0 && r[n - 1].level == 0);
    CU_ASSERT(rep.evaluations == n && rep.cached == 0);
    /* the first is the coarse optimum (the earliest of the least coarse objective) */
    int c0 = 0;
    for (int i = 1; i < ncoarse; i++)
        if (r[i].objective < r[c0].objective) c0 = i;
    CU_ASSERT(tip_dist_max(r[n - 2].tip, r[c0].tip) < 1e-9);
    CU_ASSERT(tip_dist_max(r[n - 1].tip, r[c0].tip) >= 0.6 - 1e-3);
    CU_ASSERT(r[n - 1].objective < r[n - 2].objective); /* the case as written (above) */
    const journal_row *best = r[n - 1].objective < r[n - 2].objective ? &r[n - 1] : &r[n - 2];
    double c[3];
    read_plan_centre(rep.plan_yaml, c);
    printf("\n    fixed duration, rerank 2: full-grid objectives %.4f %.4f; verified source at "
           "(%.3f, %.3f, %.3f) mm, margin %.2f mm\n",
           r[n - 2].objective, r[n - 1].objective, c[0], c[1], c[2], rep.min_margin_mm);
    CU_ASSERT(tip_dist_max(c, best->tip) < 1e-3);
}

/* Every candidate's needle path crosses a slab to avoid: all are refused on geometry, nothing
 * is simulated, and the report says why. */
static void test_needle_path_refused(void)
{
    char dir[1024], scen[1100], plan[1100], out[1100];
    tu_subdir(dir, sizeof dir, "plan_avoid");
    snprintf(scen, sizeof scen, "%s/s.yaml", dir);
    snprintf(plan, sizeof plan, "%s/p.yaml", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    char text[2048];
    snprintf(text, sizeof text,
             "name: avoid\ntissues_file: %s/configs/tissues.yaml\n"
             "grid:\n  dims: [40, 40, 40]\n  spacing_mm: [1, 1, 1]\n  background: liver\n"
             "  shapes:\n    - {type: sphere, center_mm: [0, 0, 0], radius_mm: 4, tissue: tumour}\n"
             "    - {type: box, min_mm: [-20, 8, -20], max_mm: [20, 12, 20], tissue: blood}\n"
             "boundary: {default: {type: fixed_temperature, temperature_C: 37}}\n"
             "time: {duration_s: 60, dt_s: auto}\n"
             "sources:\n  - {name: a, type: mwa, frequency_MHz: 2450, power_W: 30, antenna: dipole,"
             " tip_mm: [0, -5, 0], direction: [0, 1, 0]}\n",
             tu_root());
    tu_spit(scen, text);
    tu_spit(plan, "scenario: s.yaml\ncritical: [\"blood:50:\"]\nsearch: {position_mm: 3}\n"
                  "optimiser: {max_evaluations: 10, coarsen: 1}\nrobustness: {samples: 0}\n");
    abl_plan_opts o = {plan, out, NULL, 0, true, NULL};
    abl_plan_report rep;
    abl_error err = {0};
    abl_status st = plan_run(&o, &rep, &err);
    if (st) printf("%s\n", err.msg);
    CU_ASSERT_FATAL(st == ABL_OK);
    CU_ASSERT(!rep.found);
    CU_ASSERT(rep.evaluations == 0); /* nothing simulated */
    CU_ASSERT(strstr(rep.why, "refused on geometry") != NULL);
    /* nothing simulated, so nothing chosen and no made-up figures (they were written as a
     * chosen plan of 0 s, 0 J and 0 mm with limits "crossed"; session 30) */
    char path[1200];
    snprintf(path, sizeof path, "%s/plan.json", out);
    char *js = tu_slurp(path);
    CU_ASSERT(js && strstr(js, "\"chosen\": true") == NULL && strstr(js, "\"simulated\": false") &&
              strstr(js, "\"min_margin_mm\": null"));
    free(js);
    snprintf(path, sizeof path, "%s/plan.md", out);
    char *md = tu_slurp(path);
    CU_ASSERT(md && strstr(md, "| not simulated |") && !strstr(md, "**chosen**"));
    free(md);
    /* a misspelt tissue to avoid is refused before the search (it avoided nothing: every path
     * through the blood slab was simulated; session 30) */
    char out2[1200];
    snprintf(out2, sizeof out2, "%s/out2", dir);
    tu_spit(plan, "scenario: s.yaml\ncritical: [\"blood:50:\"]\nsearch: {position_mm: 3}\n"
                  "constraints: {avoid_tissues: [blood, blod]}\n"
                  "optimiser: {max_evaluations: 10, coarsen: 1}\nrobustness: {samples: 0}\n");
    abl_plan_opts o2 = {plan, out2, NULL, 0, true, NULL};
    st = plan_run(&o2, &rep, &err);
    CU_ASSERT(st == ABL_EINVAL);
    CU_ASSERT(strstr(err.msg, "'blod' is not a tissue of the scenario's grid (its tissues: "
                              "liver, tumour, blood)") != NULL);
}

/* Bad plan files: a clear message naming the key and what is allowed; nothing written. */
static void test_bad_plans(void)
{
    char dir[1024], plan[1100], out[1100];
    tu_subdir(dir, sizeof dir, "plan_bad");
    snprintf(plan, sizeof plan, "%s/p.yaml", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    struct {
        const char *text, *expect;
    } cases[] = {
        {"scenario: %s/configs/plans/sphere.yaml\nsearch: {positon_mm: 3}\n", "positon_mm"},
        {"scenario: %s/configs/plans/sphere.yaml\ntarget: {margin_mm: 5, plan_margin_mm: 4}\n",
         "plan_margin_mm"},
        {"scenario: %s/configs/plans/sphere.yaml\nsearch: {duration_s: [600, 10]}\n",
         "lower bound is above"},
        {"scenario: %s/configs/no_such.yaml\n", "cannot open"},
        {"scenario: %s/configs/plans/sphere.yaml\ncritical: [\"nerve\"]\n", "critical[0]"},
        {"scenario: %s/configs/cryo_liver_single.yaml\nsearch: {duration_s: [10, 20]}\n",
         "cryoablation protocol"},
        {"scenario: %s/configs/plans/sphere.yaml\napplicator: {count: [2, 3]}\n",
         "no direction key"},
        /* session 30: refused before the search, naming the line */
        {"scenario: %s/configs/plans/sphere.yaml\ncritical: [\"liver:45:\", \"liver:50:\"]\n",
         "p.yaml:2: 'critical[1]' = 'liver:50:' names tissue 'liver' a second time"},
        {"scenario: %s/configs/mwa_liver_2450.yaml\ntarget: {criterion: tmin}\n",
         "'target.criterion' = tmin, but source 0 is of type 'mwa', which heats"},
        {"scenario: %s/configs/plans/sphere.yaml\nconstraints: {avoid_tissues: [[liver]]}\n",
         "'constraints.avoid_tissues[0]': expected a tissue name"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[2048];
        snprintf(text, sizeof text, cases[i].text, tu_root());
        tu_spit(plan, text);
        abl_plan_opts o = {plan, out, NULL, 0, true, NULL};
        abl_plan_report rep;
        abl_error err = {0};
        abl_status st = plan_run(&o, &rep, &err);
        CU_ASSERT(st == ABL_EINVAL || st == ABL_EIO);
        if (!strstr(err.msg, cases[i].expect))
            printf("\n    case %zu: expected '%s' in: %s\n", i, cases[i].expect, err.msg);
        CU_ASSERT(strstr(err.msg, cases[i].expect) != NULL);
        CU_ASSERT(!tu_exists(out)); /* refused before anything was created */
    }
}

/* A plan on a mesh scenario (a segmentation) searches first on a coarsened copy of the mesh
 * (plan.c coarsen_mesh: f^3 fine voxels per coarse one, the label of highest priority present,
 * critical structures 2, the target tissue 1, others 0, and the most frequent among equals).
 * Checked voxel by voxel against a reference written from that rule, on a 20^3 mesh with a 4^3
 * tumour block, a stray tumour voxel alone among 7 liver voxels (kept: priority over majority),
 * a blood voxel inside the tumour block (blood, the critical structure, wins) and a one-voxel
 * blood line (kept everywhere it passes); also the coarse grid's dims, spacing and origin (the
 * centre of its first f^3 block), and that the plan then runs on it. */
/* A second ablation planned into the directory of the first plan, starting from that plan's
 * result (physics.initial_state_file: out/plan.h5): the plan would replace its own input, and
 * each verification try would start from what the last one wrote. Refused before anything is
 * written, the file kept byte for byte. */
static void test_plan_output_is_input(void)
{
    char dir[1024], plan[1100], scen[1100], out[1100], state[1200];
    tu_subdir(dir, sizeof dir, "plan_state_input");
    snprintf(plan, sizeof plan, "%s/p.yaml", dir);
    snprintf(scen, sizeof scen, "%s/s.yaml", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    snprintf(state, sizeof state, "%s/plan.h5", out);
    CU_ASSERT_FATAL(mkdir(out, 0755) == 0);
    enum { N = 20 };
    static double v[5][N * N * N];
    abl_field_file f[5];
    const char *ds[5] = {"/fields/T_final_C", "/fields/T_max_C", "/fields/T_min_C",
                         "/fields/damage_omega", "/fields/cem43_min"};
    const char *units[5] = {"degC", "degC", "degC", "1", "min"};
    for (int q = 0; q < 5; q++) {
        for (int c = 0; c < N * N * N; c++) v[q][c] = q < 3 ? 37.0 : 0.0;
        f[q] = (abl_field_file){.dims = {N, N, N},
                                .has_spacing = true,
                                .has_origin = true,
                                .spacing_mm = {1, 1, 1},
                                .origin_mm = {-9.5, -9.5, -9.5},
                                .values = v[q]};
    }
    abl_error err = {0};
    CU_ASSERT_FATAL(mesh_write_fields(state, 5, ds, f, units, &err) == ABL_OK);
    const unsigned long long before = tu_file_sum(state);
    char text[2048];
    snprintf(text, sizeof text,
             "name: second\ntissues_file: %s/configs/tissues.yaml\n"
             "grid: {dims: [%d, %d, %d], spacing_mm: [1, 1, 1], background: liver, shapes: "
             "[{type: sphere, center_mm: [0, 0, 0], radius_mm: 3, tissue: tumour}]}\n"
             "physics: {initial_state_file: out/plan.h5}\n"
             "boundary: {default: {type: fixed_temperature, temperature_C: 37}}\n"
             "time: {duration_s: 60}\n"
             "sources:\n  - {name: heater, type: volumetric, power_W: 10, shape: {type: sphere, "
             "center_mm: [1, 0, 0], radius_mm: 3}}\n",
             tu_root(), N, N, N);
    tu_spit(scen, text);
    tu_spit(plan, "scenario: s.yaml\nsearch: {position_mm: 2, duration_s: [5, 120]}\n"
                  "optimiser: {max_evaluations: 3, coarsen: 1}\nrobustness: {samples: 0}\n");
    abl_plan_opts o = {plan, out, NULL, 0, true, NULL};
    abl_plan_report rep;
    const abl_status st = plan_run(&o, &rep, &err);
    printf("\n  %s", err.msg);
    CU_ASSERT(st == ABL_EINVAL);
    CU_ASSERT(strstr(err.msg, "is the initial state (physics.initial_state_file)") != NULL);
    CU_ASSERT(tu_file_sum(state) == before);
    char journal[1200];
    snprintf(journal, sizeof journal, "%s/journal.csv", out);
    CU_ASSERT(!tu_exists(journal)); /* nothing written */
}

/* A small plan (a 16^3 grid, 3 evaluations) and its scenario, whose tissue table is tissues */
static void tiny_plan(const char *scen, const char *plan, const char *tissues)
{
    char text[2048];
    snprintf(text, sizeof text,
             "name: h\ntissues_file: %s\n"
             "grid: {dims: [16, 16, 16], spacing_mm: [1, 1, 1], background: liver, shapes: "
             "[{type: sphere, center_mm: [0, 0, 0], radius_mm: 2, tissue: tumour}]}\n"
             "boundary: {default: {type: fixed_temperature, temperature_C: 37}}\n"
             "time: {duration_s: 60}\n"
             "sources:\n  - {name: heater, type: volumetric, power_W: 10, shape: {type: "
             "sphere, center_mm: [1, 0, 0], radius_mm: 2}}\n",
             tissues);
    tu_spit(scen, text);
    tu_spit(plan, "scenario: s.yaml\ntarget: {tissue: tumour, margin_mm: 2}\n"
                  "search: {start: scenario, position_mm: 1, duration_s: [2, 60], "
                  "time_step_s: 2}\n"
                  "optimiser: {max_evaluations: 3, coarsen: 1}\nrobustness: {samples: 0}\n");
}

/* Every journal line carries its CRC-32: a line damaged after it was written (one character of
 * its objective changed, still a number) is dropped and that evaluation made anew, and the
 * lines after it are kept. Before session 27 a line that did not parse ended the reading (every
 * later line lost) and one that parsed was trusted (an adversarial test). The first evaluation
 * line is damaged: the resumed plan simulates exactly one evaluation, takes the others from the
 * journal and plans the same. */
static void test_plan_journal_checksum(void)
{
    char dir[1024], plan[1100], scen[1100], out[1100], journal[1200], tis[1100];
    tu_subdir(dir, sizeof dir, "plan_journal_crc");
    snprintf(plan, sizeof plan, "%s/p.yaml", dir);
    snprintf(scen, sizeof scen, "%s/s.yaml", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    snprintf(journal, sizeof journal, "%s/journal.csv", out);
    snprintf(tis, sizeof tis, "%s/configs/tissues.yaml", tu_root());
    tiny_plan(scen, plan, tis);
    abl_plan_opts o = {plan, out, NULL, 0, true, NULL};
    abl_plan_report rep, rep2;
    abl_error err = {0};
    abl_status st = plan_run(&o, &rep, &err);
    if (st) printf("\n  %s", err.msg);
    CU_ASSERT_FATAL(st == ABL_OK);
    CU_ASSERT_FATAL(rep.evaluations >= 2);
    char *t = tu_slurp(journal);
    CU_ASSERT_FATAL(t != NULL);
    /* line 3 (after the '#' line and the column header): its 13th column, the objective */
    char *ln = strchr(strchr(t, '\n') + 1, '\n') + 1, *c = ln;
    for (int k = 0; k < 12; k++) c = strchr(c, ',') + 1;
    CU_ASSERT_FATAL(*c >= '0' && *c <= '9');
    *c = *c == '9' ? '1' : (char)(*c + 1);
    tu_spit(journal, t);
    free(t);
    st = plan_run(&o, &rep2, &err);
    if (st) printf("\n  %s", err.msg);
    CU_ASSERT_FATAL(st == ABL_OK);
    printf("\n  one damaged journal line: %d evaluation(s) made anew, %d from the journal "
           "(first run %d)", rep2.evaluations, rep2.cached, rep.evaluations);
    CU_ASSERT(rep2.evaluations == 1);
    CU_ASSERT(rep2.cached == rep.evaluations - 1);
    CU_ASSERT(rep2.duration_s == rep.duration_s && rep2.found == rep.found);
    /* a NUL in the same line (a crash can leave NUL blocks) and 9000 bytes more on it (longer
     * than the 8 kB line buffer of the first version, which took either for the end of the
     * journal and dropped every later line without a note; a review, session 27) */
    for (int variant = 0; variant < 2; variant++) {
        size_t n = 0;
        unsigned char *b = tu_file_bytes(journal, &n);
        CU_ASSERT_FATAL(b != NULL);
        unsigned char *l3 = memchr(memchr(b, '\n', n) + 1, '\n', n) + 1;
        FILE *w = fopen(journal, "wb");
        CU_ASSERT_FATAL(w != NULL);
        if (variant == 0) {
            l3[5] = '\0';
            fwrite(b, 1, n, w);
        } else {
            fwrite(b, 1, (size_t)(l3 - b) + 5, w);
            for (int k = 0; k < 9000; k++) fputc('x', w);
            fwrite(l3 + 5, 1, n - (size_t)(l3 - b) - 5, w);
        }
        fclose(w);
        free(b);
        st = plan_run(&o, &rep2, &err);
        if (st) printf("\n  %s", err.msg);
        CU_ASSERT_FATAL(st == ABL_OK);
        printf("\n  %s: %d made anew, %d from the journal", variant ? "9000 bytes more" : "a NUL",
               rep2.evaluations, rep2.cached);
        CU_ASSERT(rep2.evaluations == 1);
        CU_ASSERT(rep2.cached == rep.evaluations - 1);
    }
}

/* A plan's journal depends on the files its scenario reads, not only on the two texts: a plan
 * resumed after its tissue table was edited reused every journalled evaluation (computed with
 * the old perfusion) and reported PASS where a fresh run found none (an adversarial test,
 * session 27). The tissue table is copied beside the scenario, the plan run (3 evaluations),
 * the liver's perfusion in the copy quadrupled: the same command is refused with the journal
 * untouched; with the table restored it resumes from the journal (nothing simulated anew). */
static void test_plan_inputs_in_hash(void)
{
    char dir[1024], plan[1100], scen[1100], out[1100], tis[1100], journal[1200];
    tu_subdir(dir, sizeof dir, "plan_inputs_hash");
    snprintf(plan, sizeof plan, "%s/p.yaml", dir);
    snprintf(scen, sizeof scen, "%s/s.yaml", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    snprintf(tis, sizeof tis, "%s/tissues.yaml", dir);
    snprintf(journal, sizeof journal, "%s/journal.csv", out);
    char src[1100];
    snprintf(src, sizeof src, "%s/configs/tissues.yaml", tu_root());
    char *table = tu_slurp(src);
    CU_ASSERT_FATAL(table != NULL);
    tu_spit(tis, table);
    tiny_plan(scen, plan, "tissues.yaml");
    abl_plan_opts o = {plan, out, NULL, 0, true, NULL};
    abl_plan_report rep;
    abl_error err = {0};
    abl_status st = plan_run(&o, &rep, &err);
    if (st) printf("\n  %s", err.msg);
    CU_ASSERT_FATAL(st == ABL_OK);
    CU_ASSERT(rep.evaluations > 0);
    const unsigned long long before = tu_file_sum(journal);
    /* the liver's perfusion line of the copied table, 1.547e-02 -> 6.0e-02 */
    char *edited = malloc(strlen(table) + 16);
    CU_ASSERT_FATAL(edited != NULL);
    const char *at = strstr(table, "perfusion_per_s: 1.547e-02");
    CU_ASSERT_FATAL(at != NULL);
    snprintf(edited, strlen(table) + 16, "%.*sperfusion_per_s: 6.000e-02%s", (int)(at - table),
             table, at + strlen("perfusion_per_s: 1.547e-02"));
    tu_spit(tis, edited);
    abl_plan_report rep2;
    st = plan_run(&o, &rep2, &err);
    printf("\n  edited tissue table: %s", err.msg);
    CU_ASSERT(st == ABL_EINVAL);
    CU_ASSERT(strstr(err.msg, "journal of another plan") != NULL);
    CU_ASSERT(tu_file_sum(journal) == before);
    tu_spit(tis, table); /* restored: the same inputs, so the journal is this plan's again */
    st = plan_run(&o, &rep2, &err);
    if (st) printf("\n  %s", err.msg);
    CU_ASSERT(st == ABL_OK);
    CU_ASSERT(rep2.evaluations == 0 && rep2.cached == rep.evaluations);
    free(edited);
    free(table);
}

/* A second ablation planned on a coarse level (coarsen: 2) from a first one's state with a
 * needle track, a time map and freeze counts: the coarse state carries them (before session 23
 * only the five maps, so the coarse candidates saw no first needle track): the track where any
 * of a block is track, the time map and the counts as block means, the flag left to the coarse
 * temperature. */
static void test_plan_coarse_state_maps(void)
{
    char dir[1024], plan[1100], scen[1100], out[1100], state[1200], cpath[1300];
    tu_subdir(dir, sizeof dir, "plan_coarse_state");
    snprintf(plan, sizeof plan, "%s/p.yaml", dir);
    snprintf(scen, sizeof scen, "%s/s.yaml", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    snprintf(state, sizeof state, "%s/first.h5", dir);
    enum { N = 20, NC = 10, NQ = 8 };
    static double v[NQ][N * N * N];
    abl_field_file f[NQ];
    const char *ds[NQ] = {"/fields/T_final_C",
                          "/fields/T_max_C",
                          "/fields/T_min_C",
                          "/fields/damage_omega",
                          "/fields/cem43_min",
                          "/fields/applicator_mask",
                          "/fields/time_at_or_above_50C_s",
                          "/fields/freeze_cycles"};
    const char *units[NQ] = {"degC", "degC", "degC", "1", "min", "1", "s", "1"};
    for (int q = 0; q < NQ; q++) {
        for (int k = 0; k < N; k++)
            for (int j = 0; j < N; j++)
                for (int i = 0; i < N; i++) {
                    const size_t c = ((size_t)k * N + j) * N + i;
                    v[q][c] = q < 3    ? 37.0
                              : q == 5 ? (i == 10 && j == 10) /* a track along z */
                              : q == 6 ? i                    /* seconds above 50 C */
                              : q == 7 ? (k % 2)              /* freeze counts */
                                       : 0.0;
                }
        f[q] = (abl_field_file){.dims = {N, N, N},
                                .has_spacing = true,
                                .has_origin = true,
                                .spacing_mm = {1, 1, 1},
                                .origin_mm = {-9.5, -9.5, -9.5},
                                .values = v[q]};
    }
    abl_error err = {0};
    CU_ASSERT_FATAL(mesh_write_fields(state, NQ, ds, f, units, &err) == ABL_OK);
    char text[2048];
    snprintf(text, sizeof text,
             "name: second\ntissues_file: %s/configs/tissues.yaml\n"
             "grid: {dims: [%d, %d, %d], spacing_mm: [1, 1, 1], background: liver, shapes: "
             "[{type: sphere, center_mm: [0, 0, 0], radius_mm: 3, tissue: tumour}]}\n"
             "physics: {initial_state_file: first.h5}\n"
             "boundary: {default: {type: fixed_temperature, temperature_C: 37}}\n"
             "time: {duration_s: 60}\n"
             "output: {hot_thresholds_C: [50, 60]}\n"
             "sources:\n  - {name: heater, type: volumetric, power_W: 10, shape: {type: sphere, "
             "center_mm: [1, 0, 0], radius_mm: 3}}\n",
             tu_root(), N, N, N);
    tu_spit(scen, text);
    tu_spit(plan, "scenario: s.yaml\nsearch: {position_mm: 2, duration_s: [5, 120]}\n"
                  "optimiser: {max_evaluations: 3, coarsen: 2, fine_evaluations: 1}\n"
                  "robustness: {samples: 0}\n");
    abl_plan_opts o = {plan, out, NULL, 0, true, NULL};
    abl_plan_report rep;
    const abl_status st = plan_run(&o, &rep, &err);
    if (st) printf("\n  %s", err.msg);
    CU_ASSERT_FATAL(st == ABL_OK);
    snprintf(cpath, sizeof cpath, "%s/coarse_initial_state_x2.h5", out);
    abl_field_file tr = {0}, tm = {0}, fc = {0}, fl = {0};
    CU_ASSERT_FATAL(mesh_read_field(cpath, "/fields/applicator_mask", NULL, &tr, &err) == ABL_OK);
    CU_ASSERT_FATAL(mesh_read_field(cpath, "/fields/time_at_or_above_50C_s", NULL, &tm, &err) ==
                    ABL_OK);
    CU_ASSERT_FATAL(mesh_read_field(cpath, "/fields/freeze_cycles", NULL, &fc, &err) == ABL_OK);
    const abl_mesh_read_opts opt = {.optional = true};
    CU_ASSERT(mesh_read_field(cpath, "/fields/frozen_state", &opt, &fl, &err) == ABL_OK &&
              fl.values == NULL);
    size_t wrong = 0;
    for (int k = 0; k < NC; k++)
        for (int j = 0; j < NC; j++)
            for (int i = 0; i < NC; i++) {
                const size_t c = ((size_t)k * NC + j) * NC + i;
                wrong += tr.values[c] != (i == 5 && j == 5 ? 1.0 : 0.0); /* fine 10,10 */
                wrong += tm.values[c] != 2.0 * i + 0.5;                  /* mean of 2i, 2i+1 */
                wrong += fc.values[c] != 0.5;                            /* mean of 0, 1 */
            }
    printf("\n  coarse state: %zu of %d values differ", wrong, 3 * NC * NC * NC);
    CU_ASSERT_EQUAL(wrong, 0);
    mesh_field_free(&tr);
    mesh_field_free(&tm);
    mesh_field_free(&fc);
}

/* A three-evaluation plan (plan) of a heater beside a 3 mm tumour on a 16^3 grid (scen, which
 * plan names as s.yaml in its own directory): the smallest plan that reaches verification. */
static void write_small_plan(const char *scen, const char *plan)
{
    char text[2048];
    snprintf(text, sizeof text,
             "name: s\ntissues_file: %s/configs/tissues.yaml\n"
             "grid: {dims: [16, 16, 16], spacing_mm: [1, 1, 1], background: liver, shapes: "
             "[{type: sphere, center_mm: [0, 0, 0], radius_mm: 3, tissue: tumour}]}\n"
             "boundary: {default: {type: fixed_temperature, temperature_C: 37}}\n"
             "time: {duration_s: 60}\n"
             "sources:\n  - {name: heater, type: volumetric, power_W: 10, shape: {type: sphere, "
             "center_mm: [1, 0, 0], radius_mm: 3}}\n",
             tu_root());
    tu_spit(scen, text);
    tu_spit(plan, "scenario: s.yaml\nsearch: {position_mm: 2, duration_s: [5, 120]}\n"
                  "optimiser: {max_evaluations: 3, coarsen: 1}\nrobustness: {samples: 0}\n");
}

/* A directory holding another plan's journal and that plan's undo log (it was killed while it
 * replaced its outputs), and a result the user wrote there since (ablasim run ... -o
 * out/plan.h5, as plan.yaml's header suggests): a new plan into it is refused, and refused
 * before the undo log is recovered, which would remove the user's plan.h5 (the killed plan
 * had created it: a new member, removed on restore). Found by a read-only review (session 22):
 * the recovery ran first, the user's result was gone. */
static void test_foreign_plan_undo_kept(void)
{
    char dir[1024], plan[1100], scen[1100], out[1100], res[1200], undo[1200], jp[1200];
    tu_subdir(dir, sizeof dir, "plan_foreign_undo");
    snprintf(plan, sizeof plan, "%s/p.yaml", dir);
    snprintf(scen, sizeof scen, "%s/s.yaml", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    snprintf(res, sizeof res, "%s/plan.h5", out);
    snprintf(undo, sizeof undo, "%s/plan.undo", out);
    snprintf(jp, sizeof jp, "%s/journal.csv", out);
    CU_ASSERT_FATAL(mkdir(out, 0755) == 0);
    tu_spit(jp, "# ablasim plan journal 1 plan_hash=0000000000000001\n");
    abl_undo u = {0};
    const char *members[1] = {res};
    CU_ASSERT_FATAL(undo_begin(&u, undo, "plan", members, 1) == 0); /* plan.h5: new */
    undo_free(&u);                                                   /* "killed" here */
    tu_spit(res, "the user's result\n");
    const unsigned long long before = tu_file_sum(res);
    write_small_plan(scen, plan);
    abl_plan_opts o = {plan, out, NULL, 0, true, NULL};
    abl_plan_report rep;
    abl_error err = {0};
    const abl_status st = plan_run(&o, &rep, &err);
    printf("\n  %s", err.msg);
    CU_ASSERT(st == ABL_EINVAL);
    CU_ASSERT(strstr(err.msg, "holds the journal of another plan") != NULL);
    CU_ASSERT(tu_exists(res) && tu_file_sum(res) == before); /* the user's file kept */
    CU_ASSERT(tu_exists(undo)); /* left for the plan it belongs to */
}

/* Voxels of coarse map c (N/F per axis, F = 2) that differ from the planner's rule applied to
 * the N^3 fine map: blood (2) wins, then tumour (1), then liver (0). */
static size_t coarse_rule_errors(const uint8_t *fine, int n, const abl_mesh *c)
{
    const int f = 2, nc = n / f;
    size_t wrong = 0;
    for (int k = 0; k < nc; k++)
        for (int j = 0; j < nc; j++)
            for (int i = 0; i < nc; i++) {
                int cnt[3] = {0, 0, 0};
                for (int kk = 0; kk < f; kk++)
                    for (int jj = 0; jj < f; jj++)
                        for (int ii = 0; ii < f; ii++)
                            cnt[fine[((size_t)(k * f + kk) * n + (j * f + jj)) * n + i * f + ii]]++;
                const int want = cnt[2] ? 2 : cnt[1] ? 1 : 0;
                wrong += c->labels[((size_t)k * nc + j) * nc + i] != want;
            }
    return wrong;
}
/* The coarse-mesh tests' plan: a 30 W dipole near a tumour on the mesh `mesh` of dir (physics:
 * an extra scenario line or ""), blood as the critical structure, 3 coarse evaluations and 1 on
 * the full grid, no robustness, into dir/out; fatal unless it succeeds. Returns the plan's
 * evaluations; *coarse: dir/out/coarse_mesh_x2.h5. */
static int plan_on_mesh(const char *dir, const char *mesh, const char *physics, abl_mesh *coarse)
{
    char scen[1100], plan[1100], out[1100], cpath[1200], text[2048];
    snprintf(scen, sizeof scen, "%s/s.yaml", dir);
    snprintf(plan, sizeof plan, "%s/p.yaml", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    snprintf(text, sizeof text,
             "name: meshplan\ntissues_file: %s/configs/tissues.yaml\n%s"
             "grid: {mesh: %s, labels: {0: liver, 1: tumour, 2: blood}}\n"
             "boundary: {default: {type: fixed_temperature, temperature_C: 37}}\n"
             "time: {duration_s: 60, dt_s: auto}\n"
             "sources:\n  - {name: a, type: mwa, frequency_MHz: 2450, power_W: 30, antenna: dipole,"
             " tip_mm: [0, -6, 0], direction: [0, 1, 0]}\n",
             tu_root(), physics, mesh);
    tu_spit(scen, text);
    tu_spit(plan, "scenario: s.yaml\ncritical: [\"blood:60:\"]\nsearch: {position_mm: 1}\n"
                  "optimiser: {max_evaluations: 3, coarsen: 2, fine_evaluations: 1}\n"
                  "robustness: {samples: 0}\n");
    abl_plan_opts o = {plan, out, NULL, 0, true, NULL};
    abl_plan_report rep;
    abl_error err = {0};
    abl_status st = plan_run(&o, &rep, &err);
    if (st) printf("\n  %s", err.msg);
    CU_ASSERT_FATAL(st == ABL_OK);
    snprintf(cpath, sizeof cpath, "%s/coarse_mesh_x2.h5", out);
    CU_ASSERT_FATAL(mesh_read(cpath, coarse, &err) == ABL_OK);
    return rep.evaluations;
}

/* A run writing the plan's result name (ablasim run ... -o out/plan.h5 holds out/plan.h5.lock
 * and writes out/plan.h5.tmp): the plan's verification run takes the same lock and is refused,
 * instead of replacing the run's temporary file under it (found by a read-only review,
 * session 22: the run then failed to sync a file the plan had unlinked, its work lost). */
static void test_plan_respects_result_lock(void)
{
    char dir[1024], plan[1100], scen[1100], out[1100], res[1200], tmp[1200];
    tu_subdir(dir, sizeof dir, "plan_result_lock");
    snprintf(plan, sizeof plan, "%s/p.yaml", dir);
    snprintf(scen, sizeof scen, "%s/s.yaml", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    snprintf(res, sizeof res, "%s/plan.h5", out);
    snprintf(tmp, sizeof tmp, "%s/plan.h5.tmp", out);
    CU_ASSERT_FATAL(mkdir(out, 0755) == 0);
    write_small_plan(scen, plan);
    abl_lock *held = NULL;
    abl_error err = {0};
    CU_ASSERT_FATAL(fg_lock(res, &held, &err) == ABL_OK); /* the other run */
    tu_spit(tmp, "the other run's result, being written\n");
    const unsigned long long before = tu_file_sum(tmp);
    abl_plan_opts o = {plan, out, NULL, 0, true, NULL};
    abl_plan_report rep;
    const abl_status st = plan_run(&o, &rep, &err);
    printf("\n  %s", err.msg);
    CU_ASSERT(st != ABL_OK);
    CU_ASSERT(strstr(err.msg, "another ablasim process is writing") != NULL);
    CU_ASSERT(tu_exists(tmp) && tu_file_sum(tmp) == before);
    CU_ASSERT(!tu_exists(res));
    fg_unlock(held);
}

static void test_coarse_mesh(void)
{
    char dir[1024], mpath[1100], out[1100], cpath[1200];
    tu_subdir(dir, sizeof dir, "plan_mesh");
    snprintf(mpath, sizeof mpath, "%s/m.h5", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    enum { N = 20, F = 2, NC = N / F };
    abl_mesh m = {{N, N, N}, {1, 1, 1}, {-9.5, -9.5, -9.5}, calloc(N * N * N, 1), NULL};
    CU_ASSERT_FATAL(m.labels != NULL);
#define AT(i, j, k) m.labels[((size_t)(k) * N + (j)) * N + (i)]
    for (int k = 8; k < 12; k++)
        for (int j = 8; j < 12; j++)
            for (int i = 8; i < 12; i++) AT(i, j, k) = 1; /* tumour */
    AT(13, 9, 9) = 1;                                        /* a stray tumour voxel */
    AT(10, 10, 11) = 2;                                      /* blood inside the tumour block */
    for (int i = 0; i < N; i++) AT(i, 2, 2) = 2;             /* a one-voxel blood line */
    abl_error err = {0};
    CU_ASSERT_FATAL(mesh_write(mpath, &m, &err) == ABL_OK);
    /* an initial temperature field beside the scenario (a relative path the plan rebases onto
     * its output directory), 37 C + i + 2 j + 4 k / 10 */
    abl_field_file t0 = {.dims = {N, N, N},
                         .has_spacing = true,
                         .has_origin = true,
                         .spacing_mm = {1, 1, 1},
                         .origin_mm = {-9.5, -9.5, -9.5},
                         .values = malloc(sizeof(double) * N * N * N)};
    CU_ASSERT_FATAL(t0.values != NULL);
    for (int k = 0; k < N; k++)
        for (int j = 0; j < N; j++)
            for (int i = 0; i < N; i++)
                t0.values[((size_t)k * N + j) * N + i] = 37.0 + (i + 2 * j + 4 * k) / 10.0;
    char tpath[1100];
    snprintf(tpath, sizeof tpath, "%s/t0.h5", dir);
    CU_ASSERT_FATAL(mesh_write_field(tpath, "/T0_C", &t0, "degC", &err) == ABL_OK);
    abl_mesh c = {0};
    CU_ASSERT(plan_on_mesh(dir, "m.h5",
                           "physics: {initial_temperature_file: t0.h5, "
                           "initial_temperature_dataset: /T0_C}\n",
                           &c) >= 1);
    for (int d = 0; d < 3; d++) {
        CU_ASSERT_EQUAL(c.dims[d], NC);
        CU_ASSERT_DOUBLE_EQUAL(c.spacing_mm[d], F * 1.0, 0.0);
        CU_ASSERT_DOUBLE_EQUAL(c.origin_mm[d], -9.5 + 0.5 * (F - 1), 0.0);
    }
    CU_ASSERT_EQUAL(coarse_rule_errors(m.labels, N, &c), 0);
    CU_ASSERT_EQUAL(c.labels[((size_t)4 * NC + 4) * NC + 6], 1); /* the stray tumour voxel */
    CU_ASSERT_EQUAL(c.labels[((size_t)5 * NC + 5) * NC + 5], 2); /* blood in the tumour block */
    CU_ASSERT_EQUAL(c.labels[((size_t)1 * NC + 1) * NC + 7], 2); /* the blood line */
#undef AT
    mesh_free(&c);
    free(m.labels);
    /* the coarse level's initial field: the mean of each 2 x 2 x 2 block (of a linear field:
     * its value at the block centre, 37 + (2i + 0.5 + 2 (2j + 0.5) + 4 (2k + 0.5)) / 10, to
     * rounding), on the coarse mesh's geometry */
    abl_field_file cf = {0};
    snprintf(cpath, sizeof cpath, "%s/coarse_initial_T_x%d.h5", out, F);
    CU_ASSERT_FATAL(mesh_read_field(cpath, "/initial_temperature_C", NULL, &cf, &err) == ABL_OK);
    double dmax = 0.0;
    for (int d = 0; d < 3; d++) {
        CU_ASSERT_EQUAL(cf.dims[d], NC);
        CU_ASSERT_DOUBLE_EQUAL(cf.spacing_mm[d], F * 1.0, 0.0);
        CU_ASSERT_DOUBLE_EQUAL(cf.origin_mm[d], -9.5 + 0.5 * (F - 1), 0.0);
    }
    for (int k = 0; k < NC; k++)
        for (int j = 0; j < NC; j++)
            for (int i = 0; i < NC; i++) {
                const double want =
                    37.0 + ((2 * i + 0.5) + 2 * (2 * j + 0.5) + 4 * (2 * k + 0.5)) / 10.0;
                dmax = fmax(dmax, fabs(cf.values[((size_t)k * NC + j) * NC + i] - want));
            }
    CU_ASSERT(dmax <= 1e-12);
    mesh_field_free(&cf);
    mesh_field_free(&t0);
}

/* A scenario whose grid.mesh is a NIfTI label map plans on the coarse level too: the coarse
 * mesh is made from the map as the simulation reads it (it was read as HDF5 and refused as
 * "not a readable HDF5 file" unless optimiser.coarsen was 1: an adversarial test, session 26),
 * with the same rule as from an HDF5 mesh. */
static void test_coarse_mesh_nifti(void)
{
    char dir[1024], mpath[1100];
    tu_subdir(dir, sizeof dir, "plan_mesh_nifti");
    snprintf(mpath, sizeof mpath, "%s/m.nii.gz", dir);
    enum { N = 20 };
    uint8_t *fine = calloc(N * N * N, 1);
    CU_ASSERT_FATAL(fine != NULL);
    for (int k = 8; k < 12; k++)
        for (int j = 8; j < 12; j++)
            for (int i = 8; i < 12; i++) fine[((size_t)k * N + j) * N + i] = 1; /* tumour */
    for (int i = 0; i < N; i++) fine[((size_t)2 * N + 2) * N + i] = 2; /* a blood line */
    abl_nifti_geom g;
    const int dims[3] = {N, N, N};
    const double h[3] = {1, 1, 1}, o[3] = {-9.5, -9.5, -9.5};
    nifti_geom_from_grid(&g, dims, h, o);
    abl_error err = {0};
    CU_ASSERT_FATAL(nifti_write_u8(mpath, &g, fine, &err) == ABL_OK);
    abl_mesh c = {0};
    plan_on_mesh(dir, "m.nii.gz", "", &c);
    for (int d = 0; d < 3; d++) {
        CU_ASSERT_EQUAL(c.dims[d], N / 2);
        CU_ASSERT_DOUBLE_EQUAL(c.origin_mm[d], -9.0, 1e-12);
    }
    CU_ASSERT_EQUAL(coarse_rule_errors(fine, N, &c), 0);
    mesh_free(&c);
    free(fine);
}

/* Threads change speed, never results: the same plan with 1 and 2 threads gives the same
 * plan file byte for byte and the same journal (every evaluation's numbers). */
static void test_threads_same_plan(void)
{
    char plan[1024], a[1024], b[1024];
    snprintf(plan, sizeof plan, "%s/configs/plans/sphere_plan.yaml", tu_root());
    tu_subdir(a, sizeof a, "plan_t1");
    tu_subdir(b, sizeof b, "plan_t2");
    const char *sets[] = {"robustness.samples=2", "optimiser.max_evaluations=15",
                          "optimiser.fine_evaluations=5"};
    const int saved = omp_get_max_threads();
    abl_plan_report ra, rb;
    abl_error err = {0};
    omp_set_num_threads(1);
    abl_plan_opts oa = {plan, a, sets, 3, true, NULL};
    CU_ASSERT_FATAL(plan_run(&oa, &ra, &err) == ABL_OK);
    omp_set_num_threads(2);
    abl_plan_opts ob = {plan, b, sets, 3, true, NULL};
    CU_ASSERT_FATAL(plan_run(&ob, &rb, &err) == ABL_OK);
    omp_set_num_threads(saved);
    char pa[1200], pb[1200];
    snprintf(pa, sizeof pa, "%s/plan.yaml", a);
    snprintf(pb, sizeof pb, "%s/plan.yaml", b);
    CU_ASSERT(tu_file_sum(pa) != 0 && tu_file_sum(pa) == tu_file_sum(pb));
    CU_ASSERT(ra.duration_s == rb.duration_s && ra.min_margin_mm == rb.min_margin_mm &&
              ra.p_pass == rb.p_pass && ra.evaluations == rb.evaluations);
}

/* docs/PLANNING.md "Plan file keys" is the output of plan_reference_markdown (make readme-keys
 * writes it between the plan-keys markers): a plan key added or re-documented in plan_spec.c
 * without regenerating the page fails here. */
static void test_plan_keys_doc(void)
{
    CU_ASSERT(tu_generated_section_matches("docs/PLANNING.md", "plan-keys", plan_reference_markdown));
}

void register_plan_tests(void)
{
    CU_pSuite s = CU_add_suite("plan", NULL, NULL);
    CU_add_test(s, "scenario trees written back read the same (cfg_emit)", test_emit_roundtrip);
    CU_add_test(s, "relative paths from the output directory", test_relpath);
    CU_add_test(s, "known optimum within 1 mm and 2 % of dose; resume; foreign journal refused",
                test_known_optimum_and_resume);
    CU_add_test(s, "stop request: journal kept, no plan file, continues to the same plan; "
                   "an earlier plan restored; SIGTERM exits 75",
                test_stop_request);
    CU_add_test(s, "optimiser.starts: every start runs, the known optimum kept", test_multi_start);
    CU_add_test(s, "optimiser.rerank: the 3 best distinct coarse candidates on the full grid, "
                   "the search from the best; resume",
                test_rerank);
    CU_add_test(s, "optimiser.rerank with a fixed duration: the better re-ranked candidate verified",
                test_rerank_fixed_duration);
    CU_add_test(s, "needle paths through a tissue to avoid are refused unsimulated",
                test_needle_path_refused);
    CU_add_test(s, "bad plan files: key named, nothing written", test_bad_plans);
    CU_add_test(s, "a NIfTI label map scenario plans: its coarse mesh by the same rule",
                test_coarse_mesh_nifti);
    CU_add_test(s, "a mesh scenario's coarse mesh keeps critical and target labels; its initial "
                   "field is block-averaged",
                test_coarse_mesh);
    CU_add_test(s, "a plan output that is its scenario's initial state is refused",
                test_plan_output_is_input);
    CU_add_test(s, "a coarse second-ablation plan carries the state's track, time maps, counts",
                test_plan_coarse_state_maps);
    CU_add_test(s, "a plan's journal depends on the scenario's tissue table",
                test_plan_inputs_in_hash);
    CU_add_test(s, "a damaged plan journal line is made anew, the lines after it kept",
                test_plan_journal_checksum);
    CU_add_test(s, "another plan's directory is refused before its undo log is recovered",
                test_foreign_plan_undo_kept);
    CU_add_test(s, "the plan's verification run takes its result's lock",
                test_plan_respects_result_lock);
    CU_add_test(s, "1 and 2 threads give the same plan", test_threads_same_plan);
    CU_add_test(s, "docs/PLANNING.md plan keys are the declarations", test_plan_keys_doc);
}
