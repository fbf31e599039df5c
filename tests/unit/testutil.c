/* testutil.c - the shared helpers of testutil.h: scratch directory, scenarios and sims, and the
 * file and process helpers the suites use to check files and run the command line. */
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <signal.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

static char tmpdir[512];

const char *tu_root(void)
{
    const char *r = getenv("ABLASIM_ROOT");
    return r && *r ? r : ".";
}

static void cleanup_tmp(void)
{
    if (tmpdir[0] && !getenv("ABLASIM_KEEP_TMP")) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", tmpdir);
    }
}

const char *tu_tmpdir(void)
{
    if (!tmpdir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(tmpdir, sizeof tmpdir, "%s/ablasim-tests-%d", base && *base ? base : "/tmp",
                 (int)getpid());
        mkdir(tmpdir, 0700);
        atexit(cleanup_tmp);
    }
    return tmpdir;
}

abl_scenario *tu_scenario(const char *yaml, const char *const *sets, int nsets)
{
    char dir[600];
    snprintf(dir, sizeof dir, "%s/configs", tu_root());
    abl_scenario *sc = NULL;
    abl_error err = {0};
    if (scenario_load_string(yaml, "test.yaml", dir, sets, nsets, &sc, &err)) {
        fprintf(stderr, "\nscenario error: %s\n", err.msg);
        CU_FAIL("scenario did not load");
        return NULL;
    }
    return sc;
}

abl_scenario *tu_liver_cube(const char *name, int N, double h_mm, double duration_s,
                            const char *dt, const char *extra, const char *sources)
{
    char yaml[8192];
    snprintf(yaml, sizeof yaml,
             "name: %s\n"
             "tissues_file: tissues.yaml\n"
             "grid: {dims: [%d, %d, %d], spacing_mm: [%g, %g, %g], background: liver}\n"
             "boundary: {default: {type: fixed_temperature, temperature_C: 37}}\n"
             "time: {duration_s: %g, dt_s: %s}\n"
             "%s"
             "sources:\n"
             "%s",
             name, N, N, N, h_mm, h_mm, h_mm, duration_s, dt, extra ? extra : "", sources);
    return tu_scenario(yaml, NULL, 0);
}

abl_sim *tu_sim(abl_scenario *sc)
{
    abl_sim *s = NULL;
    abl_error err = {0};
    abl_status st = sim_create(sc, &s, &err);
    if (st) printf("\n  sim_create: %s", err.msg);
    CU_ASSERT_FATAL(st == ABL_OK);
    return s;
}

abl_source_contrib tu_source_update(abl_sim *s, int i, double t_s)
{
    /* step_h_s 0: the source's value at the instant t_s (not a mean over a step) */
    abl_field_view v = {&s->grid, s->material, s->T, t_s, s->dt_s, false, t_s, 0.0, NULL};
    abl_source_contrib c;
    abl_error err = {0};
    abl_status st = s->sources[i]->ops->update(s->sources[i], &v, &c, &err);
    if (st) printf("\n  update: %s", err.msg);
    CU_ASSERT_FATAL(st == ABL_OK);
    /* the promise the explicit step's parallel heat loop relies on (source.h heat_distinct):
     * the prefix names each voxel once and holds no coupling entry; checked on every update
     * of every test that calls this */
    CU_ASSERT(c.heat_distinct <= c.n_heat);
    if (c.heat_G_W_m3K) CU_ASSERT(c.heat_distinct <= c.heat_G_first);
    uint8_t *seen = calloc(s->grid.n, 1);
    CU_ASSERT_FATAL(seen != NULL);
    bool distinct = true;
    for (size_t q = 0; q < c.heat_distinct && q < c.n_heat; q++) {
        distinct = distinct && !seen[c.heat_idx[q]];
        seen[c.heat_idx[q]] = 1;
    }
    CU_ASSERT(distinct);
    free(seen);
    return c;
}

void tu_step_for(abl_sim *s, double t_s)
{
    abl_error err = {0};
    CU_ASSERT_FATAL(sim_step(s, (long)llround(t_s / s->dt_s), &err) == ABL_OK);
}

double tu_maxdiff(const double *a, const double *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = a[i] > b[i] ? a[i] - b[i] : b[i] - a[i];
        if (d > m || d != d) m = d;
    }
    return m;
}

/* ---- exact solutions and convergence orders ------------------------------------------------ */

static const double PI = 3.14159265358979323846;

typedef struct {
    int p, q, r;
    double A;
} box_mode;
static const box_mode box_modes[] = {{1, 1, 1, 10.0}, {3, 1, 2, 4.0}, {2, 3, 1, -3.0}};

double tu_box_modes(const double x[3], double H, double alpha, double tau_p, double t)
{
    double th = 0;
    for (size_t i = 0; i < sizeof box_modes / sizeof box_modes[0]; i++) {
        const box_mode *m = &box_modes[i];
        double kk = PI * PI * (m->p * m->p + m->q * m->q + m->r * m->r) / (H * H);
        th += m->A * sin(m->p * PI * x[0] / H) * sin(m->q * PI * x[1] / H) *
              sin(m->r * PI * x[2] / H) * exp(-(alpha * kk + 1.0 / tau_p) * t);
    }
    return th;
}

void tu_box_modes_fill(const abl_grid *g, double *f, double offset, double H, double alpha,
                       double tau_p, double t)
{
    for (int k = 0; k < g->nz; k++)
        for (int j = 0; j < g->ny; j++)
            for (int i = 0; i < g->nx; i++) {
                double x[3];
                grid_voxel_centre_m(g, i, j, k, x);
                f[ABL_IDX(g, i, j, k)] = offset + tu_box_modes(x, H, alpha, tau_p, t);
            }
}

double tu_box_modes_error(const abl_grid *g, const double *f, double offset, double H,
                          double alpha, double tau_p, double t)
{
    double e = 0;
    for (int k = 0; k < g->nz; k++)
        for (int j = 0; j < g->ny; j++)
            for (int i = 0; i < g->nx; i++) {
                double x[3];
                grid_voxel_centre_m(g, i, j, k, x);
                e = fmax(e, fabs(f[ABL_IDX(g, i, j, k)] - offset -
                                 tu_box_modes(x, H, alpha, tau_p, t)));
            }
    return e;
}

void tu_check_order2(const char *what, double e1, double e2, double e3)
{
    const double o1 = log(e1 / e2) / log(2.0), o2 = log(e2 / e3) / log(2.0);
    printf("\n  %s: max error %.3e %.3e %.3e K, orders %.3f %.3f\n", what, e1, e2, e3, o1, o2);
    CU_ASSERT(o1 > 1.8 && o1 < 2.3);
    CU_ASSERT(o2 > 1.8 && o2 < 2.3);
}

/* ---- files and commands -------------------------------------------------------------------- */

const char *tu_bin(void)
{
    const char *b = getenv("ABLASIM_BIN");
    return b && *b ? b : "bin/ablasim";
}

void tu_subdir(char *buf, size_t len, const char *fmt, ...)
{
    char name[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    snprintf(buf, len, "%s/%s", tu_tmpdir(), name);
    mkdir(buf, 0700);
}

char *tu_slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) n = 0;
    if (s) s[n] = '\0';
    fclose(f);
    return s;
}

long tu_file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (long)sb.st_size : -1;
}

unsigned char *tu_file_bytes(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    *n = 0;
    if (!f) return NULL;
    /* regular files only: glibc opens a directory for reading, and its "size" from ftell is
     * LONG_MAX (ASan refused the allocation in CI, session 18) */
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(len > 0 ? (size_t)len : 1);
    if (b && fread(b, 1, (size_t)len, f) != (size_t)len) len = -1;
    fclose(f);
    if (len < 0) {
        free(b);
        return NULL;
    }
    *n = (size_t)len;
    return b;
}

bool tu_bytes_unchanged(const char *path, const unsigned char *before, size_t n)
{
    size_t m;
    unsigned char *now = tu_file_bytes(path, &m);
    bool same = now && before && m == n && memcmp(now, before, n) == 0;
    free(now);
    return same;
}

unsigned long long tu_file_sum(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    unsigned long long h = 1469598103934665603ull;
    int c;
    while ((c = getc(f)) != EOF) h = (h ^ (unsigned char)c) * 1099511628211ull;
    fclose(f);
    return h;
}

bool tu_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

bool tu_lexists(const char *path)
{
    struct stat sb;
    return lstat(path, &sb) == 0;
}

void tu_spit(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CU_ASSERT_FATAL(f != NULL);
    fputs(text, f);
    fclose(f);
}

int tu_sh(const char *cmdline)
{
    int r = system(cmdline);
    return r == -1 || !WIFEXITED(r) ? -1 : WEXITSTATUS(r);
}

int tu_run(const char *cmdline, const char *outfile, const char *errfile)
{
    const char *out = outfile ? outfile : "/dev/null";
    size_t len = strlen(cmdline) + strlen(out) + strlen(errfile) + 32;
    char *full = malloc(len);
    if (!full) return -1;
    snprintf(full, len, "%s >'%s' 2>'%s' </dev/null", cmdline, out, errfile);
    int rc = tu_sh(full);
    free(full);
    return rc;
}

pid_t tu_spawn_err(const char *const *argv, const char *errfile)
{
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        int fe = errfile ? open(errfile, O_WRONLY | O_CREAT | O_TRUNC, 0644) : fd;
        dup2(fd, 1);
        dup2(fe < 0 ? fd : fe, 2);
        if (fe >= 0 && fe != fd) close(fe);
        close(fd);
        execv(tu_bin(), (char *const *)argv);
        _exit(127);
    }
    return pid;
}

pid_t tu_spawn(const char *const *argv)
{
    return tu_spawn_err(argv, NULL);
}

bool tu_generated_section_matches(const char *doc, const char *name, int (*gen)(FILE *))
{
    char path[1024], bmark[128], emark[128];
    snprintf(path, sizeof path, "%s/%s", tu_root(), doc);
    snprintf(bmark, sizeof bmark, "<!-- %s:begin", name);
    snprintf(emark, sizeof emark, "<!-- %s:end -->", name);
    char *text = tu_slurp(path);
    CU_ASSERT_FATAL(text != NULL);
    char *begin = strstr(text, bmark);
    char *end = begin ? strstr(begin, emark) : NULL;
    CU_ASSERT_FATAL(begin != NULL && end != NULL);
    begin = strchr(begin, '\n'); /* the section: after the marker line, less its blank lines */
    while (begin < end && *begin == '\n') begin++;
    while (end > begin && end[-1] == '\n') end--;
    char *out = NULL;
    size_t glen = 0;
    FILE *m = open_memstream(&out, &glen);
    CU_ASSERT_FATAL(m != NULL);
    CU_ASSERT(gen(m) == 0);
    fclose(m);
    while (glen && out[glen - 1] == '\n') glen--;
    const size_t rlen = (size_t)(end - begin);
    const bool same = rlen == glen && !memcmp(begin, out, glen);
    if (!same) {
        size_t i = 0, line = 1;
        while (i < rlen && i < glen && begin[i] == out[i]) line += begin[i++] == '\n';
        while (i > 0 && begin[i - 1] != '\n') i--; /* the whole line, in both */
        fprintf(stderr,
                "\n%s section '%s' differs from the declarations in the code (line %zu):\n"
                "  doc:  %.*s\n  code: %.*s\nregenerate it with `make readme-keys`\n",
                doc, name, line, (int)strcspn(begin + i, "\n"), begin + i,
                (int)strcspn(out + i, "\n"), out + i);
    }
    free(out);
    free(text);
    return same;
}

const double tu_align_offsets[TU_NALIGN][3] = {
    {0, 0, 0}, {0.25, 0, 0}, {0.5, 0, 0}, {0.5, 0.5, 0}, {0, 0, 0.5}};

double tu_max_rel_deviation(const double *v, int n)
{
    double sum = 0.0, worst = 0.0;
    for (int i = 0; i < n; i++) sum += v[i];
    for (int i = 0; i < n; i++) worst = fmax(worst, fabs(v[i] / (sum / n) - 1.0));
    printf("\n  largest deviation from the mean %.2f %%", 100 * worst);
    return worst;
}

/* The child of tu_run_limited and tu_run_faulted: env ("NAME=VALUE" strings, NULL-terminated;
 * NULL: none) is added to the environment before the exec. */
static int run_child(const char *wd, const char *const *argv, long limit_B,
                     const char *const *env, const char *errf, int *signo)
{
    fflush(NULL);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        setenv("OMP_NUM_THREADS", "1", 1); /* one thread: no spinning team on a busy machine */
        for (int i = 0; env && env[i]; i++) {
            char kv[2048];
            snprintf(kv, sizeof kv, "%s", env[i]);
            char *eq = strchr(kv, '=');
            if (!eq) _exit(126);
            *eq = '\0';
            if (setenv(kv, eq + 1, 1) != 0) _exit(126);
        }
        struct rlimit rl = {limit_B < 0 ? RLIM_INFINITY : (rlim_t)limit_B,
                            limit_B < 0 ? RLIM_INFINITY : (rlim_t)limit_B};
        FILE *e = freopen(errf, "w", stderr);
        FILE *o = freopen("/dev/null", "w", stdout);
        if (!e || !o || (wd && chdir(wd) != 0) || setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(126);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (signo) *signo = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int tu_run_limited(const char *wd, const char *const *argv, long limit_B, const char *errf,
                   int *signo)
{
    return run_child(wd, argv, limit_B, NULL, errf, signo);
}

const char *tu_faultshim(void)
{
    static char path[1100];
    if (path[0]) return path;
    const char *e = getenv("ABLASIM_FAULTSHIM");
    if (e && *e) {
        snprintf(path, sizeof path, "%s", e);
        return path;
    }
    char exe[1024];
    const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return NULL;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash) return NULL;
    *slash = '\0';
    snprintf(path, sizeof path, "%s/libfaultshim.so", exe);
    return path;
}

int tu_run_faulted(const char *wd, const char *const *argv, const char *const *fault_env,
                   const char *errf, int *signo)
{
    const char *shim = tu_faultshim();
    CU_ASSERT_FATAL(shim != NULL && access(shim, R_OK) == 0);
    /* the environment of the child: the shim preloaded; a sanitized binary accepts a library
     * before its runtime only with verify_asan_link_order=0 (options already set are kept) */
    static char preload[1200], asan[1200];
    snprintf(preload, sizeof preload, "LD_PRELOAD=%s", shim);
    const char *ao = getenv("ASAN_OPTIONS");
    snprintf(asan, sizeof asan, "ASAN_OPTIONS=%s%sverify_asan_link_order=0", ao ? ao : "",
             ao && *ao ? ":" : "");
    const char *env[16] = {preload, asan};
    int n = 2;
    for (int i = 0; fault_env && fault_env[i] && n < 15; i++) env[n++] = fault_env[i];
    env[n] = NULL;
    return run_child(wd, argv, -1, env, errf, signo);
}

int tu_set_threads(int n)
{
    omp_set_dynamic(0);
    omp_set_num_threads(n);
    int team = 0;
#pragma omp parallel
    {
#pragma omp single
        team = omp_get_num_threads();
    }
    return team;
}
