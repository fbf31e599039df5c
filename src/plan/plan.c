/* plan.c - `ablasim plan` (plan.h): candidates, their evaluation, the search, verification,
 * robustness and the output files.
 *
 * A candidate is the base scenario tree with the applicator(s) moved: it is written as YAML
 * text and loaded like any scenario, so what the planner evaluates is exactly what
 * `ablasim run OUT/plan.yaml` computes. Evaluations are deterministic; each is appended to
 * OUT/journal.csv under the hash of its text, which is how an interrupted plan resumes.
 * Method and its limits: docs/PLANNING.md. */
#define _DEFAULT_SOURCE /* realpath */
#include <errno.h>
#include <math.h>
#include <nlopt.h>
#include <stdarg.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "../formats/atomic_file.h"
#include "../formats/undo.h"
#include "ablasim/output.h"
#include "ablasim/fileguard.h"
#include "ablasim/json_writer.h"
#include "ablasim/h5_schema.h"
#include "ablasim/mesh.h"
#include "ablasim/nifti.h"
#include "ablasim/run.h"
#include "ablasim/scenario.h"
#include "ablasim/sim.h"
#include "../sweep/sweep_internal.h" /* sweep_mkdirs */
#include "ablasim/hash.h"
#include "plan_internal.h"

#define LEV_FINE 0
#define LEV_COARSE 1
/* The full-grid search's initial step after the coarse level (unit box: 5 % of each range);
 * also the least distance of two re-ranked candidates (rerank) */
#define FINE_STEP 0.05
#define PI 3.14159265358979323846

typedef struct {
    int n;
    double tip_mm[PLAN_MAX_APPLICATORS][3];
    double dir[3];   /* unit; zero when the applicator has no direction */
    double power_W;  /* NAN: the scenario's (or none) */
} plan_geom;

typedef struct {
    uint64_t key;
    int level, n;
    plan_geom g;
    bool fixed_duration; /* run to the scenario's end (no search over time) */
    bool geom_ok;
    double violation_mm; /* needle length inside tissues to avoid, or tip outside the grid */
    bool covered;        /* every voxel of the target set ablated, no limit crossed */
    double t_cover_s;    /* heat search: interpolated time of coverage */
    double t_plan_s;     /* duration of this plan */
    double g_K;          /* coverage: min over the target set (>= 0: covered) */
    double crit_K;       /* worst critical excess (>= 0: a limit crossed) */
    bool crit_ok;
    double dose;         /* n x power x duration [J] (or n x duration [s] without power); the
                          * power once when it is the source's (dose_in_source: RFA) */
    double objective;
    double wall_s;
    bool cached;
    bool from_journal;   /* read from journal.csv (counted once as reused: plan_ctx.ncached) */
    bool reused;         /* a cache entry met once already in this run */
    bool repeat;         /* this evaluation was met before in this run (counted once) */
    double u[PLAN_MAX_VARS]; /* the search variables it was decoded from (set by the search,
                              * not journalled: re-ranking continues the search from them) */
    char note[200];
} plan_eval;

typedef struct {
    int coarsen;
    char grid_sets[6][600]; /* assignments that make this level's grid (and its initial field) */
    int ngrid_sets;
    bool ready;
    size_t n;
    size_t *S;  /* target set: tumour plus its planning margin shell (indices) */
    size_t nS;
    size_t *V;  /* the verdict's set: tumour plus the required margin (V within S) */
    size_t nV;
    size_t *crit_idx[ABL_MARGIN_MAX_CRITICAL];
    size_t ncrit_idx[ABL_MARGIN_MAX_CRITICAL];
    bool impossible;
    char why[400];
} plan_level;

typedef struct {
    plan_spec *P;
    const abl_plan_opts *o;
    char out_dir[PATH_MAX];
    plan_level lev[2];
    int nlev;
    /* the full-resolution grid, for the geometric checks */
    abl_grid fine;
    uint8_t *avoid; /* 1 where the tissue is one to avoid */
    double centroid_mm[3], tumour_mL, r_eq_mm;
    double d0[3], u0[3], v0[3]; /* needle frame: axis and two normals */
    double start_tip_mm[3];     /* centre of the search box */
    /* journal */
    FILE *journal;
    int journal_errno; /* the first failed append (errno): the plan then fails at its end */
    plan_eval *cache;
    size_t ncache, capcache;
    plan_eval *all; /* every evaluation of this run, in order */
    size_t nall, capall;
    int nevals, ncached; /* forward runs done; journal lines reused (each once) */
    double dose_ref;
    const char *dose_unit;
    /* the current search */
    int cur_n, cur_level, nvar;
    int iv_pos, iv_tilt, iv_ring, iv_pow;
    plan_eval best;
    bool have_best;
    abl_status fail;
    abl_error *err;
    nlopt_opt opt; /* the running search (to stop it on an error) */
    double t0;
    abl_scenario *base_sc; /* the base scenario as loaded once (duration, tissues, labels) */
} plan_ctx;

/* ---- small helpers ------------------------------------------------------------------------ */

static void say(const plan_ctx *C, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const plan_ctx *C, const char *fmt, ...)
{
    if (C->o->quiet) return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "plan: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static double dot3(const double a[3], const double b[3])
{
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

static void normalise3(double a[3])
{
    double n = sqrt(dot3(a, a));
    if (n > 0)
        for (int d = 0; d < 3; d++) a[d] /= n;
}

/* two unit normals of the unit vector d */
static void frame(const double d[3], double u[3], double v[3])
{
    double e[3] = {0, 0, 0};
    int m = fabs(d[0]) <= fabs(d[1]) ? (fabs(d[0]) <= fabs(d[2]) ? 0 : 2)
                                     : (fabs(d[1]) <= fabs(d[2]) ? 1 : 2);
    e[m] = 1;
    double p = dot3(e, d);
    for (int k = 0; k < 3; k++) u[k] = e[k] - p * d[k];
    normalise3(u);
    v[0] = d[1] * u[2] - d[2] * u[1];
    v[1] = d[2] * u[0] - d[0] * u[2];
    v[2] = d[0] * u[1] - d[1] * u[0];
}

/* splitmix64 and Box-Muller: deterministic normal deviates from the plan's seed */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static double rng_normal(uint64_t *s)
{
    double u1 = ((double)(rng_next(s) >> 11) + 0.5) / 9007199254740992.0;
    double u2 = ((double)(rng_next(s) >> 11) + 0.5) / 9007199254740992.0;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * PI * u2);
}

static abl_status set_kv(cfg_node *node, const char *key, const char *value, abl_error *err)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s=%s", key, value);
    return cfg_set(node, buf, err);
}

/* How plan.yaml writes a coordinate (set_vec); plan.json reports the same (yaml_mm). */
#define YAML_MM "%.4f"

static abl_status set_vec(cfg_node *node, const char *key, const double v[3], abl_error *err)
{
    char val[160];
    snprintf(val, sizeof val, "[" YAML_MM ", " YAML_MM ", " YAML_MM "]", v[0] + 0.0, v[1] + 0.0,
             v[2] + 0.0);
    return set_kv(node, key, val, err);
}

static abl_status set_num(cfg_node *node, const char *key, double v, abl_error *err)
{
    char val[64];
    snprintf(val, sizeof val, "%.6g", v);
    return set_kv(node, key, val, err);
}

/* ---- candidates as scenario trees -------------------------------------------------------- */

typedef struct {
    double duration_s;              /* NAN: the scenario's */
    int nperf;                      /* perfusion overrides (robustness samples) */
    char perf_tissue[ABL_MAX_MATERIALS][ABL_MARGIN_NAME_LEN];
    double perf_per_s[ABL_MAX_MATERIALS];
} plan_extra;

static abl_status build_tree(const plan_ctx *C, const plan_geom *G, int level,
                             const plan_extra *x, cfg_node **out, abl_error *err)
{
    const plan_spec *P = C->P;
    cfg_node *root = cfg_clone(P->base);
    if (!root) return abl_fail(err, ABL_ENOMEM, "out of memory");
    abl_status st = ABL_OK;
    cfg_node *sources = cfg_get(root, "sources");
    cfg_node *src = sources->items[P->src_index];
    cfg_node *list = P->list_key[0] ? plan_node_at(src, P->list_key) : NULL;
    cfg_node *tmpl = cfg_clone(list ? list->items[0] : src);
    if (!tmpl) {
        cfg_free(root);
        return abl_fail(err, ABL_ENOMEM, "out of memory");
    }
    char pw[64] = "";
    if (!isnan(G->power_W)) snprintf(pw, sizeof pw, "%.6g", G->power_W);
    if (list)
        while (list->n) cfg_free(cfg_detach(list, list->n - 1));
    char name0[128] = "applicator";
    cfg_node *nm = cfg_get(src, "name");
    if (nm && nm->kind == CFG_SCALAR && nm->value) snprintf(name0, sizeof name0, "%s", nm->value);
    for (int i = 0; i < G->n && !st; i++) {
        cfg_node *it;
        if (list || i > 0) {
            it = cfg_clone(tmpl);
            if (!it || cfg_append(list ? list : sources, it)) {
                cfg_free(it);
                st = abl_fail(err, ABL_ENOMEM, "out of memory");
                break;
            }
        } else {
            it = src;
        }
        st = set_vec(it, P->tip_key, G->tip_mm[i], err);
        if (!st && P->dir_key[0]) st = set_vec(it, P->dir_key, G->dir, err);
        if (!st && pw[0] && !P->dose_in_source) st = set_kv(it, P->dose_key, pw, err);
        if (!st && !list && G->n > 1) {
            char nbuf[160];
            snprintf(nbuf, sizeof nbuf, "\"%s_%d\"", name0, i + 1);
            st = set_kv(it, "name", nbuf, err);
        }
    }
    cfg_free(tmpl);
    if (!st && pw[0] && P->dose_in_source) st = set_kv(src, P->dose_key, pw, err);
    if (!st && x && !isnan(x->duration_s)) st = set_num(root, "time.duration_s", x->duration_s, err);
    for (int i = 0; !st && x && i < x->nperf; i++) {
        char key[160];
        snprintf(key, sizeof key, "tissues.%s.perfusion_per_s", x->perf_tissue[i]);
        st = set_num(root, key, x->perf_per_s[i], err);
    }
    const plan_level *L = &C->lev[level];
    for (int i = 0; !st && i < L->ngrid_sets; i++) st = cfg_set(root, L->grid_sets[i], err);
    if (st) {
        cfg_free(root);
        return st;
    }
    *out = root;
    return ABL_OK;
}

static abl_status tree_text(const cfg_node *root, char **text, size_t *len, abl_error *err)
{
    FILE *mf = open_memstream(text, len);
    if (!mf) return abl_fail(err, ABL_ENOMEM, "out of memory");
    cfg_emit(mf, root);
    if (fclose(mf)) return abl_fail(err, ABL_ENOMEM, "out of memory");
    return ABL_OK;
}

/* ---- grid levels --------------------------------------------------------------------------- */

/* Labels of the coarse mesh: in each f x f x f block, the label of highest priority present
 * (critical structures 2, target and tissues to avoid 1, others 0), the most frequent one
 * among equals (ties: the smaller label). A thin nerve or vessel thus survives coarsening
 * (widened: the coarse level errs on the side of the limits), while ordinary tissues follow
 * the majority. */
static abl_status coarsen_mesh(const char *in, const char *out, int f, const int prio[256],
                               abl_error *err)
{
    abl_mesh m = {0}, c = {0};
    /* the scenario's mesh as the simulation reads it (sim.c build_grid): a NIfTI label map by
     * its name, in grid order at its world position; it was read as HDF5 and refused as "not a
     * readable HDF5 file" (an adversarial test, session 26) */
    abl_status st = nifti_suffix(in) ? nifti_read_labels(in, &m, NULL, err)
                                     : mesh_read(in, &m, err);
    if (st) return st;
    for (int d = 0; d < 3; d++) {
        c.dims[d] = m.dims[d] / f > 0 ? m.dims[d] / f : 1;
        c.spacing_mm[d] = m.spacing_mm[d] * f;
        /* voxel (0,0,0) of the coarse grid covers fine voxels 0..f-1: its centre */
        c.origin_mm[d] = m.origin_mm[d] + 0.5 * (f - 1) * m.spacing_mm[d];
    }
    const size_t n = (size_t)c.dims[0] * c.dims[1] * c.dims[2];
    c.labels = malloc(n);
    c.label_names = m.label_names;
    if (!c.labels) {
        mesh_free(&m);
        return abl_fail(err, ABL_ENOMEM, "out of memory (coarse mesh)");
    }
    for (int k = 0; k < c.dims[2]; k++)
        for (int j = 0; j < c.dims[1]; j++)
            for (int i = 0; i < c.dims[0]; i++) {
                int count[256] = {0};
                for (int kk = 0; kk < f; kk++)
                    for (int jj = 0; jj < f; jj++)
                        for (int ii = 0; ii < f; ii++) {
                            int fi = i * f + ii, fj = j * f + jj, fk = k * f + kk;
                            if (fi >= m.dims[0] || fj >= m.dims[1] || fk >= m.dims[2]) continue;
                            count[m.labels[(size_t)fk * m.dims[0] * m.dims[1] +
                                           (size_t)fj * m.dims[0] + (size_t)fi]]++;
                        }
                int best = -1;
                for (int l = 0; l < 256; l++)
                    if (count[l] && (best < 0 || prio[l] > prio[best] ||
                                     (prio[l] == prio[best] && count[l] > count[best])))
                        best = l;
                c.labels[(size_t)k * c.dims[0] * c.dims[1] + (size_t)j * c.dims[0] + (size_t)i] =
                    (uint8_t)best;
            }
    st = mesh_write(out, &c, err);
    free(c.labels);
    mesh_free(&m);
    return st;
}

/* The mean of each f x f x f block of a fine-grid field (the blocks of coarsen_mesh and of the
 * coarse grid in levels_init); with use_max, the block's largest value. */
static abl_status coarsen_field(const abl_grid *g, int f, const double *in, bool use_max,
                                abl_field_file *c, abl_error *err)
{
    const int fd[3] = {g->nx, g->ny, g->nz};
    for (int d = 0; d < 3; d++) {
        c->dims[d] = fd[d] / f > 0 ? fd[d] / f : 1;
        c->spacing_mm[d] = g->h_m[d] * 1e3 * f;
        c->origin_mm[d] = g->origin_m[d] * 1e3 + 0.5 * (f - 1) * g->h_m[d] * 1e3;
    }
    const size_t n = (size_t)c->dims[0] * c->dims[1] * c->dims[2];
    if (!(c->values = malloc(n * sizeof *c->values)))
        return abl_fail(err, ABL_ENOMEM, "out of memory (coarse initial field)");
    for (int k = 0; k < c->dims[2]; k++)
        for (int j = 0; j < c->dims[1]; j++)
            for (int i = 0; i < c->dims[0]; i++) {
                double sum = 0.0, mx = -INFINITY;
                int cnt = 0;
                for (int kk = 0; kk < f; kk++)
                    for (int jj = 0; jj < f; jj++)
                        for (int ii = 0; ii < f; ii++) {
                            const int fi = i * f + ii, fj = j * f + jj, fk = k * f + kk;
                            if (fi >= fd[0] || fj >= fd[1] || fk >= fd[2]) continue;
                            const double v = in[ABL_IDX(g, fi, fj, fk)];
                            sum += v;
                            mx = fmax(mx, v);
                            cnt++;
                        }
                c->values[((size_t)k * c->dims[1] + (size_t)j) * c->dims[0] + (size_t)i] =
                    use_max ? mx : sum / cnt;
            }
    return ABL_OK;
}

/* The scenario's initial fields (physics.initial_temperature_file, or initial_state_file with
 * its running maps) on the coarse level's grid: block means (a mean keeps T_min <= T <= T_max),
 * written into the output directory for the coarse candidates. A state's other maps where it
 * has them: the needle track (a coarse voxel holding any of it is track: the margin counts it
 * as ablated, as the full grid does), the time maps of the scenario's thresholds and the freeze
 * counts (block means); the frozen flag is left out, so the coarse run takes it from its own
 * temperature (fields.c). Before session 23 only the five maps were carried. */
static abl_status coarsen_initial_field(plan_ctx *C, plan_level *L, const abl_scenario *fine_sc,
                                        abl_error *err)
{
    const bool state = fine_sc->initial_is_state;
    enum { NMAX = 1 + ABL_INITIAL_MAPS + 2 + 2 * ABL_MAX_THRESHOLDS };
    _Static_assert(NMAX <= ABL_MESH_MAX_FIELDS, "the coarse state must fit mesh_write_fields");
    const double *in[NMAX];
    bool use_max[NMAX] = {false};
    const char *ds[NMAX], *units[NMAX];
    char names[2 * ABL_MAX_THRESHOLDS][160];
    int nf = 0;
    static const char *const state_ds[1 + ABL_INITIAL_MAPS] = {H5_T_FINAL, H5_T_MAX, H5_T_MIN,
                                                               H5_OMEGA, H5_CEM43};
    static const char *const state_units[1 + ABL_INITIAL_MAPS] = {"degC", "degC", "degC", "1",
                                                                  "min"};
    in[nf] = fine_sc->initial_T.values;
    ds[nf] = state ? state_ds[0] : "/initial_temperature_C";
    units[nf++] = "degC";
    for (int m = 0; state && m < ABL_INITIAL_MAPS; m++) {
        in[nf] = fine_sc->initial_maps[m].values;
        ds[nf] = state_ds[1 + m];
        units[nf++] = state_units[1 + m];
    }
    if (state && fine_sc->initial_applicator.values) {
        in[nf] = fine_sc->initial_applicator.values;
        use_max[nf] = true;
        ds[nf] = H5_APPLICATOR;
        units[nf++] = "1";
    }
    for (int h = 0; state && h < fine_sc->n_hot + fine_sc->n_cold; h++) {
        const bool hot = h < fine_sc->n_hot;
        const int i = hot ? h : h - fine_sc->n_hot;
        const abl_field_file *t = hot ? &fine_sc->initial_hot[i] : &fine_sc->initial_cold[i];
        if (!t->values) continue;
        snprintf(names[h], sizeof names[h],
                 hot ? H5_FIELDS "/" H5_FIELD_TIME_ABOVE_FMT : H5_FIELDS "/" H5_FIELD_TIME_BELOW_FMT,
                 hot ? fine_sc->hot_C[i] : fine_sc->cold_C[i]);
        in[nf] = t->values;
        ds[nf] = names[h];
        units[nf++] = "s";
    }
    if (state && fine_sc->initial_freeze_cycles.values) {
        in[nf] = fine_sc->initial_freeze_cycles.values;
        ds[nf] = H5_FREEZE_CYCLES;
        units[nf++] = "1";
    }
    abl_field_file c[NMAX];
    memset(c, 0, sizeof c);
    abl_status st = ABL_OK;
    for (int q = 0; q < nf && !st; q++)
        st = coarsen_field(&C->fine, L->coarsen, in[q], use_max[q], &c[q], err);
    char name[64], path[PATH_MAX + 80];
    snprintf(name, sizeof name, "coarse_initial_%s_x%d.h5", state ? "state" : "T", L->coarsen);
    snprintf(path, sizeof path, "%s/%s", C->out_dir, name);
    if (!st) st = mesh_write_fields(path, nf, ds, c, units, err);
    for (int q = 0; q < nf; q++) mesh_field_free(&c[q]);
    if (st) return st;
    if (state) {
        snprintf(L->grid_sets[L->ngrid_sets++], sizeof L->grid_sets[0],
                 "physics.initial_state_file=\"%s\"", name);
        return ABL_OK;
    }
    snprintf(L->grid_sets[L->ngrid_sets++], sizeof L->grid_sets[0],
             "physics.initial_temperature_file=\"%s\"", name);
    snprintf(L->grid_sets[L->ngrid_sets++], sizeof L->grid_sets[0],
             "physics.initial_temperature_dataset=%s", ds[0]);
    return ABL_OK;
}

/* A generated grid's coarse level: the fine grid as built (an origin the scenario leaves out
 * centres the grid) in blocks of coarsen^3 voxels, as three --set lines. */
static void coarse_grid_sets(const plan_ctx *C, plan_level *L)
{
    const plan_spec *P = C->P;
    int dims[3];
    double sp[3], org[3];
    const abl_grid *g = &C->fine;
    const int fd[3] = {g->nx, g->ny, g->nz};
    for (int d = 0; d < 3; d++) {
        dims[d] = fd[d] / P->coarsen > 0 ? fd[d] / P->coarsen : 1;
        sp[d] = g->h_m[d] * 1e3 * P->coarsen;
        org[d] = g->origin_m[d] * 1e3 + 0.5 * (P->coarsen - 1) * g->h_m[d] * 1e3;
    }
    snprintf(L->grid_sets[0], sizeof L->grid_sets[0], "grid.dims=[%d, %d, %d]", dims[0],
             dims[1], dims[2]);
    snprintf(L->grid_sets[1], sizeof L->grid_sets[1], "grid.spacing_mm=[%.17g, %.17g, %.17g]",
             sp[0], sp[1], sp[2]);
    snprintf(L->grid_sets[2], sizeof L->grid_sets[2], "grid.origin_mm=[%.17g, %.17g, %.17g]",
             org[0], org[1], org[2]);
    L->ngrid_sets = 3;
}

static abl_status levels_init(plan_ctx *C, const abl_scenario *fine_sc, abl_error *err)
{
    const plan_spec *P = C->P;
    C->lev[LEV_FINE].coarsen = 1;
    C->nlev = 1;
    if (P->coarsen <= 1) return ABL_OK;
    plan_level *L = &C->lev[LEV_COARSE];
    L->coarsen = P->coarsen;
    C->nlev = 2;
    if (fine_sc->mesh_path) {
        char name[64], path[PATH_MAX + 80];
        snprintf(name, sizeof name, "coarse_mesh_x%d.h5", P->coarsen);
        snprintf(path, sizeof path, "%s/%s", C->out_dir, name);
        int prio[256] = {0};
        for (int l = 0; l < 256; l++) {
            const int t = fine_sc->mesh_label_tissue[l];
            if (t < 0) continue;
            const char *name = fine_sc->tissues.t[t].name;
            if (!strcmp(name, P->target_tissue)) prio[l] = 1;
            for (int a = 0; a < P->navoid; a++)
                if (!strcmp(name, P->avoid[a])) prio[l] = 1;
            for (int c = 0; c < P->ncrit; c++)
                if (!strcmp(name, P->crit[c].tissue)) prio[l] = 2;
        }
        abl_status st = coarsen_mesh(fine_sc->mesh_path, path, P->coarsen, prio, err);
        if (st) return st;
        snprintf(L->grid_sets[L->ngrid_sets++], sizeof L->grid_sets[0], "grid.mesh=\"%s\"", name);
    } else {
        coarse_grid_sets(C, L);
    }
    if (fine_sc->initial_T.values) return coarsen_initial_field(C, L, fine_sc, err);
    return ABL_OK;
}

/* A generated grid's coarse level must hold the scenario: a shape smaller than a coarse voxel
 * is refused by the scenario's own check, which used to surface at the first coarse candidate,
 * after the journal was begun, as an error of "plan candidate:9" naming no key of the plan; the
 * corrected command then met that journal as another plan's (an adversarial test, session 27).
 * Checked before anything is written, naming optimiser.coarsen. (A mesh's coarse level is a
 * coarsened label map: its shapes are labels, kept by coarsen_mesh's priorities.) */
static abl_status coarse_level_check(const plan_ctx *C, abl_error *err)
{
    const plan_spec *P = C->P;
    if (P->coarsen <= 1 || C->base_sc->mesh_path) return ABL_OK;
    plan_level L = {0};
    L.coarsen = P->coarsen;
    coarse_grid_sets(C, &L);
    cfg_node *tree = cfg_clone(P->base);
    if (!tree) return abl_fail(err, ABL_ENOMEM, "out of memory");
    /* the initial field keys left out: levels_init gives the coarse level its own coarsened
     * copy of the field (the fine one does not fit the coarse grid); this checks the grid */
    cfg_node *ph = cfg_get(tree, "physics");
    if (ph && ph->kind == CFG_MAP) {
        size_t k = 0;
        for (size_t i = 0; i < ph->n; i++) {
            if (ph->items[i]->key && !strncmp(ph->items[i]->key, "initial_", 8) &&
                strcmp(ph->items[i]->key, "initial_temperature_C"))
                cfg_free(ph->items[i]);
            else
                ph->items[k++] = ph->items[i];
        }
        ph->n = k;
    }
    abl_error e = {0};
    abl_status st = ABL_OK;
    for (int i = 0; i < L.ngrid_sets && !st; i++) st = cfg_set(tree, L.grid_sets[i], &e);
    char *text = NULL;
    size_t len = 0;
    if (!st) st = tree_text(tree, &text, &len, &e);
    cfg_free(tree);
    abl_scenario *sc = NULL;
    abl_sim *s = NULL;
    if (!st)
        st = scenario_load_string(text, "(the plan's coarse level)", P->scenario_dir, NULL, 0,
                                  &sc, &e);
    free(text);
    if (!st) st = sim_create(sc, &s, &e);
    sim_destroy(s);
    scenario_free(sc);
    if (!st || st == ABL_ENOMEM) return st ? abl_fail(err, st, "%s", e.msg) : ABL_OK;
    const abl_grid *g = &C->fine;
    return abl_fail(err, st,
                    "%s: optimiser.coarsen = %d: the coarse level's grid (%d x %d x %d voxels "
                    "of %g x %g x %g mm) cannot hold the scenario: %s; use a smaller "
                    "optimiser.coarsen (1: no coarse level)",
                    P->plan_path, P->coarsen, g->nx / P->coarsen > 0 ? g->nx / P->coarsen : 1,
                    g->ny / P->coarsen > 0 ? g->ny / P->coarsen : 1,
                    g->nz / P->coarsen > 0 ? g->nz / P->coarsen : 1,
                    g->h_m[0] * 1e3 * P->coarsen, g->h_m[1] * 1e3 * P->coarsen,
                    g->h_m[2] * 1e3 * P->coarsen, e.msg);
}

static bool tissue_is(const abl_sim *s, int m, const char *name)
{
    return m < s->nmat && !strcmp(s->sc->tissues.t[s->mat_tissue[m]].name, name);
}

/* is[m] = material m is tissue name, for every material byte (once per material: the voxel
 * loops then index a table instead of comparing names) */
static void material_is(const abl_sim *s, const char *name, uint8_t is[256])
{
    for (int m = 0; m < 256; m++) is[m] = tissue_is(s, m, name);
}

/* the target set S and the critical structures' voxels of a level, from its first sim */
static abl_status level_prepare(plan_ctx *C, plan_level *L, const abl_sim *s, abl_error *err)
{
    const plan_spec *P = C->P;
    const abl_grid *g = &s->grid;
    L->n = g->n;
    uint8_t *tum = calloc(g->n, 1);
    double *dist = malloc(g->n * sizeof *dist);
    if (!tum || !dist) {
        free(tum);
        free(dist);
        return abl_fail(err, ABL_ENOMEM, "out of memory (target set)");
    }
    size_t ntum = 0;
    uint8_t is[256];
    material_is(s, P->target_tissue, is);
    for (size_t v = 0; v < g->n; v++) ntum += tum[v] = is[s->material[v]];
    if (!ntum) {
        free(tum);
        free(dist);
        return abl_fail(err, ABL_EINVAL,
                        "%s: the scenario's grid has no voxel of the target tissue '%s' "
                        "(target.tissue)%s",
                        P->plan_path, P->target_tissue,
                        L->coarsen > 1 ? " on the coarse grid (try optimiser.coarsen: 1)" : "");
    }
    int dims[3] = {g->nx, g->ny, g->nz};
    double sp[3] = {g->h_m[0] * 1e3, g->h_m[1] * 1e3, g->h_m[2] * 1e3};
    abl_status st = edt_compute(dims, sp, tum, ABL_EDT_TO_NONZERO, dist, err);
    if (st) {
        free(tum);
        free(dist);
        return st;
    }
    const double m_plan = P->plan_margin_mm + ABL_MARGIN_TIE_MM;
    const double m_verdict = P->margin_mm + ABL_MARGIN_TIE_MM;
    size_t nS = 0, nV = 0;
    for (size_t v = 0; v < g->n; v++) {
        nS += dist[v] <= m_plan;
        nV += dist[v] <= m_verdict;
    }
    L->S = malloc((nS ? nS : 1) * sizeof *L->S);
    L->V = malloc((nV ? nV : 1) * sizeof *L->V);
    if (!L->S || !L->V) {
        free(tum);
        free(dist);
        return abl_fail(err, ABL_ENOMEM, "out of memory (target set)");
    }
    L->nS = L->nV = 0;
    for (size_t v = 0; v < g->n; v++) {
        if (dist[v] <= m_plan) L->S[L->nS++] = v;
        if (dist[v] <= m_verdict) L->V[L->nV++] = v;
    }
    /* the margin analysis counts voxels beyond the grid as not ablated: a tumour voxel closer
     * than the margin to the grid's outer voxel layer can never pass */
    for (int k = 0; k < g->nz && !L->impossible; k++)
        for (int j = 0; j < g->ny && !L->impossible; j++)
            for (int i = 0; i < g->nx; i++) {
                if (!tum[ABL_IDX(g, i, j, k)]) continue;
                int ijk[3] = {i, j, k};
                for (int d = 0; d < 3; d++) {
                    double near = fmin(ijk[d] + 1, dims[d] - ijk[d]) * sp[d];
                    if (near <= m_verdict) {
                        L->impossible = true;
                        snprintf(L->why, sizeof L->why,
                                 "the target lies within %g mm of the grid face (voxel %d %d %d): "
                                 "the margin cannot be verified on this grid",
                                 P->margin_mm, i, j, k);
                    }
                }
                if (L->impossible) break;
            }
    free(tum);
    free(dist);
    for (int c = 0; c < P->ncrit; c++) {
        size_t cnt = 0;
        material_is(s, P->crit[c].tissue, is);
        for (size_t v = 0; v < g->n; v++) cnt += is[s->material[v]];
        if (!cnt)
            return abl_fail(err, ABL_EINVAL,
                            "%s: critical structure '%s' has no voxel in the scenario's grid%s",
                            P->plan_path, P->crit[c].tissue,
                            L->coarsen > 1 ? " at the coarse level (optimiser.coarsen)" : "");
        L->crit_idx[c] = malloc(cnt * sizeof(size_t));
        if (!L->crit_idx[c]) return abl_fail(err, ABL_ENOMEM, "out of memory");
        L->ncrit_idx[c] = 0;
        for (size_t v = 0; v < g->n; v++)
            if (is[s->material[v]]) L->crit_idx[c][L->ncrit_idx[c]++] = v;
    }
    L->ready = true;
    return ABL_OK;
}

/* coverage g (>= 0: every voxel of S in the zone; applicator voxels count as ablated, as in
 * the margin analysis) and the worst critical excess (>= 0: a limit crossed) */
static void measure(const plan_ctx *C, const plan_level *L, const abl_sim *s, bool verdict,
                    double *g, double *crit)
{
    const plan_spec *P = C->P;
    double gm = INFINITY;
    const size_t *set = verdict ? L->V : L->S;
    const size_t nset = verdict ? L->nV : L->nS;
    for (size_t i = 0; i < nset; i++) {
        const size_t v = set[i];
        if (s->applicator && s->applicator[v]) continue;
        const double e = P->cold ? P->threshold_C - s->T_min[v] : s->T_max[v] - P->threshold_C;
        if (!(e >= gm)) gm = isnan(e) ? -INFINITY : e;
    }
    double cm = -INFINITY;
    for (int c = 0; c < P->ncrit; c++)
        for (size_t i = 0; i < L->ncrit_idx[c]; i++) {
            const size_t v = L->crit_idx[c][i];
            double e = -INFINITY;
            if (!isnan(P->crit[c].tmax_below_C)) e = s->T_max[v] - P->crit[c].tmax_below_C;
            if (!isnan(P->crit[c].tmin_above_C))
                e = fmax(e, P->crit[c].tmin_above_C - s->T_min[v]);
            if (isnan(s->T_max[v]) || isnan(s->T_min[v])) e = INFINITY;
            if (e > cm) cm = e;
        }
    *g = gm;
    *crit = cm;
}

/* ---- geometry ------------------------------------------------------------------------------ */

/* needle length [mm] inside tissues to avoid: each shaft from its tip back along the
 * direction to the grid face, sampled every quarter voxel; a tip outside the grid counts as
 * its distance to the grid */
static double geometry_violation(const plan_ctx *C, const plan_geom *G, char *note, size_t len)
{
    const abl_grid *g = &C->fine;
    double lo[3], hi[3], hmin = INFINITY;
    for (int d = 0; d < 3; d++) {
        lo[d] = (g->origin_m[d] - 0.5 * g->h_m[d]) * 1e3;
        hi[d] = lo[d] + g->h_m[d] * 1e3 * (d == 0 ? g->nx : d == 1 ? g->ny : g->nz);
        hmin = fmin(hmin, g->h_m[d] * 1e3);
    }
    double viol = 0;
    note[0] = '\0';
    for (int a = 0; a < G->n; a++) {
        const double *t = G->tip_mm[a];
        double out = 0;
        for (int d = 0; d < 3; d++) out += fmax(0, lo[d] - t[d]) + fmax(0, t[d] - hi[d]);
        if (out > 0) {
            viol += out;
            snprintf(note, len, "tip %d outside the grid", a + 1);
            continue;
        }
        if (!C->P->navoid || dot3(G->dir, G->dir) == 0) continue;
        const double step = 0.25 * hmin;
        for (double s = 0;; s += step) {
            double p[3];
            bool inside = true;
            for (int d = 0; d < 3; d++) {
                p[d] = t[d] + s * G->dir[d];
                if (p[d] < lo[d] || p[d] >= hi[d]) inside = false;
            }
            if (!inside) break;
            int ijk[3];
            for (int d = 0; d < 3; d++) {
                ijk[d] = (int)floor((p[d] - lo[d]) / (g->h_m[d] * 1e3));
                int nd = d == 0 ? g->nx : d == 1 ? g->ny : g->nz;
                if (ijk[d] >= nd) ijk[d] = nd - 1;
            }
            if (C->avoid[ABL_IDX(g, ijk[0], ijk[1], ijk[2])]) {
                viol += step;
                if (!note[0])
                    snprintf(note, len, "needle %d crosses a tissue to avoid at (%.1f, %.1f, %.1f) mm",
                             a + 1, p[0], p[1], p[2]);
            }
        }
    }
    return viol;
}

/* ---- one evaluation ------------------------------------------------------------------------ */

static plan_eval *cache_find(plan_ctx *C, uint64_t key)
{
    for (size_t i = 0; i < C->ncache; i++)
        if (C->cache[i].key == key) return &C->cache[i];
    return NULL;
}

static int push_eval(plan_eval **arr, size_t *n, size_t *cap, const plan_eval *e)
{
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 64;
        plan_eval *p = realloc(*arr, c * sizeof *p);
        if (!p) return -1;
        *arr = p;
        *cap = c;
    }
    (*arr)[(*n)++] = *e;
    return 0;
}

/* One evaluation appended to the journal as one whole line: formatted first, written with one
 * write and made durable; a write that fails part-way is cut back to the journal's previous
 * length, so the journal only ever grows by whole lines (a failing fflush used to leave a torn
 * line and went unreported: the failing-call property of the safety suite). A failure stops
 * the journal and fails the plan at its end (journal_errno). */
static void journal_write(plan_ctx *C, const plan_eval *e)
{
    if (!C->journal || C->journal_errno) return;
    char *line = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&line, &len);
    if (!m) {
        C->journal_errno = errno ? errno : ENOMEM;
        return;
    }
    fprintf(m, "%016llx,%d,%d,%d,%.17g,%d,%.17g,%.17g,%.17g,%.17g,%d,%.17g,%.17g,%.17g",
            (unsigned long long)e->key, e->level, e->n, e->geom_ok, e->violation_mm, e->covered,
            e->t_cover_s, e->t_plan_s, e->g_K, e->crit_K, e->crit_ok, e->dose, e->objective,
            e->wall_s);
    fprintf(m, ",%.6g,", e->g.power_W);
    for (int a = 0; a < e->n; a++)
        fprintf(m, "%s%.4f %.4f %.4f", a ? ";" : "", e->g.tip_mm[a][0], e->g.tip_mm[a][1],
                e->g.tip_mm[a][2]);
    fprintf(m, ",%.6f %.6f %.6f,", e->g.dir[0], e->g.dir[1], e->g.dir[2]);
    for (const char *p = e->note; *p; p++) fputc(*p == ',' || *p == '\n' ? ';' : *p, m);
    if (fclose(m) != 0 || !line) {
        free(line);
        C->journal_errno = ENOMEM;
        return;
    }
    /* the line's CRC-32 (zlib's, IEEE) as its last column: a line changed or damaged after it
     * was written is recognised and evaluated anew (plan_journal_open) */
    char *full = realloc(line, len + 11);
    if (!full) {
        free(line);
        C->journal_errno = ENOMEM;
        return;
    }
    line = full;
    const unsigned long crc = crc32(0L, (const Bytef *)line, (uInt)len);
    snprintf(line + len, 11, ",%08lx\n", crc & 0xffffffffUL);
    len += 10;
    const int fd = fileno(C->journal);
    const off_t before = lseek(fd, 0, SEEK_END);
    int err = before < 0 ? errno : 0;
    for (size_t off = 0; !err && off < len;) {
        const ssize_t w = write(fd, line + off, len - off);
        if (w < 0 && errno != EINTR) err = errno;
        else if (w > 0) off += (size_t)w;
    }
    if (!err && fsync(fd) != 0) err = errno;
    if (err && before >= 0 && ftruncate(fd, before) == 0) (void)fsync(fd);
    if (err) C->journal_errno = err;
    free(line);
}

static double objective_of(const plan_ctx *C, const plan_eval *e)
{
    /* refused paths rank below every simulated candidate (those stay under 12), and among
     * themselves by the length of needle inside tissues to avoid: a way out of them */
    if (!e->geom_ok) return 100.0 + e->violation_mm / 10.0;
    const double scale = C->P->cold ? 40.0 : 10.0; /* K: a sizeable coverage deficit */
    if (e->covered) {
        double dose = e->dose;
        if (!e->fixed_duration) /* the interpolated time: smooth in the placement */
            dose = e->dose * (e->t_cover_s / fmax(e->t_plan_s, 1e-9));
        return dose / C->dose_ref - 0.1 * fmin(e->g_K, 20.0) / scale / 20.0;
    }
    double o = 1.0 + fmin(fmax(0.0, -e->g_K), 5.0 * scale) / scale;
    if (!e->crit_ok) o += 1.0 + fmin(e->crit_K, 50.0) / scale;
    return o;
}

/* How many times a dose counts the power of n applicators: once when the power is the
 * source's (dose_in_source: one RF generator drives all its electrodes), else once per
 * applicator. */
static int dose_count(const plan_spec *P, int n)
{
    return P->dose_in_source ? 1 : n;
}

/* Evaluate geometry G on a level. fixed: run the scenario (or x->duration_s) to its end;
 * otherwise (heat with search.duration_s) run up to the upper bound and stop at coverage. */
/* A stop request (abl_plan_opts.stop) ends the plan at its next safe point: an evaluation
 * being simulated is abandoned before its next step (sim.abandon: looked at inside
 * sim_advance, so the evaluation's steps and monitor passes are those of an unstopped one) and
 * not journalled, and the plan returns ABL_ESTOPPED through its usual failure path (plan_run:
 * the journal kept, a previous set of plan files restored). */
static abl_status stop_check(const plan_ctx *C, abl_error *err)
{
    if (!C->o->stop || !*C->o->stop) return ABL_OK;
    return abl_fail(err, ABL_ESTOPPED, "stopped on request");
}

static abl_status evaluate(plan_ctx *C, const plan_geom *G, int level, bool fixed, bool verdict,
                           const plan_extra *x_in, plan_eval *e, abl_error *err)
{
    const plan_spec *P = C->P;
    memset(e, 0, sizeof *e);
    e->level = level;
    e->n = G->n;
    e->g = *G;
    e->fixed_duration = fixed;
    e->t_cover_s = e->t_plan_s = NAN;
    e->g_K = -INFINITY;
    e->crit_K = -INFINITY;
    e->crit_ok = true;
    const double t0 = omp_get_wtime();
    e->violation_mm = geometry_violation(C, G, e->note, sizeof e->note);
    e->geom_ok = e->violation_mm == 0;
    if (!e->geom_ok) {
        e->crit_ok = false;
        e->objective = objective_of(C, e);
        return ABL_OK;
    }
    plan_extra x = {.duration_s = NAN};
    if (x_in) x = *x_in;
    if (!fixed) x.duration_s = P->duration_s[1];
    cfg_node *tree = NULL;
    abl_status st = build_tree(C, G, level, &x, &tree, err);
    char *text = NULL;
    size_t len = 0;
    if (!st) st = tree_text(tree, &text, &len, err);
    cfg_free(tree);
    if (st) return st;
    char tag[64];
    snprintf(tag, sizeof tag, "|level %d|fixed %d|verdict %d", level, fixed, verdict);
    e->key = abl_fnv1a(abl_fnv1a(C->P->plan_hash, text, len), tag, strlen(tag));
    plan_eval *hit = cache_find(C, e->key);
    if (hit) {
        plan_geom keep = e->g;
        *e = *hit;
        e->g = keep;
        e->cached = true;
        free(text);
        /* "from the journal" counts the journal's lines reused, each once: a candidate met
         * again in this run (the full-grid search starts at a re-ranked candidate, evaluated
         * just before) is neither a new forward run nor one taken from the journal, nor a new
         * candidate in the no-plan counts; so a resumed plan reports as many from the journal
         * as the first run simulated */
        e->repeat = !hit->from_journal || hit->reused;
        if (!e->repeat) C->ncached++;
        hit->reused = true;
        e->objective = objective_of(C, e);
        return ABL_OK;
    }
    abl_scenario *sc = NULL;
    abl_sim *s = NULL;
    st = stop_check(C, err);
    if (!st) st = scenario_load_string(text, "plan candidate", C->out_dir, NULL, 0, &sc, err);
    free(text);
    if (!st) st = sim_create(sc, &s, err);
    if (!st) s->abandon = C->o->stop;
    plan_level *L = &C->lev[level];
    if (!st && !L->ready) st = level_prepare(C, L, s, err);
    if (st) goto done;
    const double t_end = sc->duration_s;
    const double dt_chk = fixed ? t_end : 0.5 * P->time_step_s;
    double g_prev = -INFINITY, t_prev = 0;
    for (double t_next = fmin(dt_chk, t_end);; t_next = fmin(t_next + dt_chk, t_end)) {
        if ((st = sim_advance(s, LONG_MAX, t_next, err))) goto done;
        double g, cr;
        measure(C, L, s, verdict, &g, &cr);
        e->g_K = g;
        e->crit_K = cr;
        if (cr >= 0) { /* a limit crossed: this placement and dose cannot go on */
            e->crit_ok = false;
            snprintf(e->note, sizeof e->note, "critical limit crossed at t = %.0f s", s->t_s);
            /* the longest duration that kept the limits (the last check before), so that a
             * plan that cannot pass is still reported at its best safe dose */
            if (!fixed)
                e->t_plan_s = fmax(floor(t_prev / P->time_step_s + 1e-9) * P->time_step_s,
                                   P->duration_s[0]);
            break;
        }
        if (!fixed && g >= 0 && s->t_s >= P->duration_s[0] - 1e-9) {
            double tc = g_prev < 0 && isfinite(g_prev)
                            ? t_prev + (s->t_s - t_prev) * (-g_prev) / (g - g_prev)
                            : s->t_s;
            tc = fmax(tc, P->duration_s[0]);
            e->t_cover_s = tc;
            double tp = ceil(tc / P->time_step_s - 1e-9) * P->time_step_s;
            e->t_plan_s = fmin(fmax(tp, P->duration_s[0]), P->duration_s[1]);
            /* run on to the plan's duration: the limits must hold there too */
            if (e->t_plan_s > s->t_s && (st = sim_advance(s, LONG_MAX, e->t_plan_s, err)))
                goto done;
            measure(C, L, s, verdict, &g, &cr);
            e->crit_K = cr;
            e->crit_ok = cr < 0;
            e->covered = e->crit_ok;
            if (!e->crit_ok)
                snprintf(e->note, sizeof e->note, "critical limit crossed by t = %.0f s",
                         e->t_plan_s);
            break;
        }
        g_prev = g;
        t_prev = s->t_s;
        if (s->step >= s->nsteps_total) break;
    }
    if (fixed) {
        e->t_plan_s = e->t_cover_s = t_end;
        e->covered = e->crit_ok && e->g_K >= 0;
    } else if (!e->covered && isnan(e->t_plan_s)) {
        e->t_plan_s = s->t_s;
    }
    if (L->impossible) {
        e->covered = false;
        snprintf(e->note, sizeof e->note, "%s", L->why);
    }
    {
        const double pw = isnan(G->power_W) ? (isnan(P->base_power_W) ? 1.0 : P->base_power_W)
                                            : G->power_W;
        e->dose = dose_count(P, G->n) * pw * e->t_plan_s;
    }
done:
    sim_destroy(s);
    scenario_free(sc);
    if (st) return st;
    e->wall_s = omp_get_wtime() - t0;
    e->objective = objective_of(C, e);
    C->nevals++;
    journal_write(C, e);
    if (push_eval(&C->cache, &C->ncache, &C->capcache, e))
        return abl_fail(err, ABL_ENOMEM, "out of memory");
    return ABL_OK;
}

/* ---- the search ---------------------------------------------------------------------------- */

static void layout(plan_ctx *C, int n)
{
    const plan_spec *P = C->P;
    int k = 0;
    C->cur_n = n;
    C->iv_pos = P->pos_mm > 0 ? (k += 3, k - 3) : -1;
    C->iv_tilt = P->tilt_deg > 0 ? (k += 2, k - 2) : -1;
    C->iv_ring = n > 1 ? (k += 2, k - 2) : -1;
    C->iv_pow = P->power_var && P->power_W[1] > P->power_W[0] ? (k += 1, k - 1) : -1;
    C->nvar = k;
}

static double ring_lo(const plan_spec *P, int n)
{
    return n > 1 ? P->spacing_mm[0] / (2.0 * sin(PI / n)) : 0;
}
static double ring_hi(const plan_spec *P, int n)
{
    return n > 1 ? fmax(P->spacing_mm[1] / (2.0 * sin(PI / n)), ring_lo(P, n)) : 0;
}

static void decode(const plan_ctx *C, const double *u, plan_geom *G)
{
    const plan_spec *P = C->P;
    const int n = C->cur_n;
    memset(G, 0, sizeof *G);
    G->n = n;
    double off[3] = {0, 0, 0};
    if (C->iv_pos >= 0)
        for (int d = 0; d < 3; d++) off[d] = (2.0 * u[C->iv_pos + d] - 1.0) * P->pos_mm;
    double dir[3] = {C->d0[0], C->d0[1], C->d0[2]};
    if (C->iv_tilt >= 0) {
        const double a = (2.0 * u[C->iv_tilt] - 1.0) * P->tilt_deg * PI / 180.0;
        const double b = (2.0 * u[C->iv_tilt + 1] - 1.0) * P->tilt_deg * PI / 180.0;
        for (int d = 0; d < 3; d++) dir[d] += tan(a) * C->u0[d] + tan(b) * C->v0[d];
        normalise3(dir);
    }
    const bool has_dir = P->dir_key[0] != '\0';
    double centre[3];
    for (int d = 0; d < 3; d++) {
        if (has_dir)
            centre[d] = C->start_tip_mm[d] + off[0] * C->u0[d] + off[1] * C->v0[d] + off[2] * C->d0[d];
        else
            centre[d] = C->start_tip_mm[d] + off[d];
    }
    if (has_dir)
        for (int d = 0; d < 3; d++) G->dir[d] = dir[d];
    double ua[3], va[3];
    if (has_dir) frame(dir, ua, va);
    double r = 0, phi = 0;
    if (C->iv_ring >= 0) {
        r = ring_lo(P, n) + u[C->iv_ring] * (ring_hi(P, n) - ring_lo(P, n));
        phi = u[C->iv_ring + 1] * 2.0 * PI / n;
    }
    for (int a = 0; a < n; a++) {
        const double ang = phi + 2.0 * PI * a / n;
        for (int d = 0; d < 3; d++)
            G->tip_mm[a][d] = centre[d] + (n > 1 ? r * (cos(ang) * ua[d] + sin(ang) * va[d]) : 0);
    }
    G->power_W = P->base_power_W; /* NAN when the applicator has no power key */
    if (C->iv_pow >= 0)
        G->power_W = P->power_W[0] + u[C->iv_pow] * (P->power_W[1] - P->power_W[0]);
    else if (P->power_var)
        G->power_W = P->power_W[0];
}

static void start_point(const plan_ctx *C, double *u)
{
    const plan_spec *P = C->P;
    for (int i = 0; i < C->nvar; i++) u[i] = 0.5;
    if (C->iv_ring >= 0) {
        const double lo = ring_lo(P, C->cur_n), hi = ring_hi(P, C->cur_n);
        const double r0 = fmin(fmax(0.5 * C->r_eq_mm, lo), hi);
        u[C->iv_ring] = hi > lo ? (r0 - lo) / (hi - lo) : 0.5;
        u[C->iv_ring + 1] = 0.0;
    }
    if (C->iv_pow >= 0) {
        double p0 = isnan(P->base_power_W) ? 0.5 * (P->power_W[0] + P->power_W[1]) : P->base_power_W;
        p0 = fmin(fmax(p0, P->power_W[0]), P->power_W[1]);
        u[C->iv_pow] = (p0 - P->power_W[0]) / (P->power_W[1] - P->power_W[0]);
    }
}

static bool better(const plan_eval *a, const plan_eval *b)
{
    return a->objective < b->objective;
}

static double nlopt_objective(unsigned nv, const double *u, double *grad, void *data)
{
    (void)nv;
    (void)grad;
    plan_ctx *C = data;
    if (C->fail) return HUGE_VAL;
    plan_geom G;
    decode(C, u, &G);
    plan_eval e;
    const bool fixed = !C->P->dur_var || C->P->cold;
    abl_status st = evaluate(C, &G, C->cur_level, fixed, false, NULL, &e, C->err);
    if (st) {
        C->fail = st;
        if (C->opt) nlopt_force_stop(C->opt);
        return HUGE_VAL;
    }
    for (int i = 0; i < C->nvar; i++) e.u[i] = u[i];
    if (push_eval(&C->all, &C->nall, &C->capall, &e)) {
        C->fail = abl_fail(C->err, ABL_ENOMEM, "out of memory");
        return HUGE_VAL;
    }
    if (!C->have_best || better(&e, &C->best)) {
        C->best = e;
        C->have_best = true;
    }
    char what[96];
    if (!e.geom_ok)
        snprintf(what, sizeof what, "needle path refused");
    else if (e.covered && !e.fixed_duration)
        snprintf(what, sizeof what, "PASS at %.0f s", e.t_plan_s);
    else
        snprintf(what, sizeof what, "%s (coverage %+.1f K)", e.covered ? "PASS" : "fail", e.g_K);
    say(C, "%-6s n=%d eval %3zu: %s, objective %.4f (best %.4f)%s%s",
        e.level == LEV_FINE ? "full" : "coarse", e.n, C->nall, what, e.objective,
        C->best.objective, e.note[0] ? "; " : "", e.note);
    return e.objective;
}

/* Nelder-Mead in the unit box from u (updated to the best point) */
static abl_status search(plan_ctx *C, int level, double *u, double step, int maxeval,
                         abl_error *err)
{
    C->cur_level = level;
    C->have_best = false;
    C->fail = ABL_OK;
    C->err = err;
    if (C->nvar == 0) {
        nlopt_objective(0, u, NULL, C);
        return C->fail;
    }
    nlopt_opt opt = nlopt_create(NLOPT_LN_NELDERMEAD, (unsigned)C->nvar);
    if (!opt) return abl_fail(err, ABL_ENOMEM, "out of memory (NLopt)");
    double lo[PLAN_MAX_VARS], hi[PLAN_MAX_VARS];
    for (int i = 0; i < C->nvar; i++) {
        lo[i] = 0;
        hi[i] = 1;
    }
    nlopt_set_lower_bounds(opt, lo);
    nlopt_set_upper_bounds(opt, hi);
    nlopt_set_min_objective(opt, nlopt_objective, C);
    nlopt_set_maxeval(opt, maxeval);
    nlopt_set_initial_step1(opt, step);
    nlopt_set_xtol_abs1(opt, 2e-3);
    nlopt_set_ftol_abs(opt, 1e-5);
    double f;
    C->opt = opt;
    nlopt_result r = nlopt_optimize(opt, u, &f);
    C->opt = NULL;
    nlopt_destroy(opt);
    if (C->fail) return C->fail;
    if (r < 0 && r != NLOPT_ROUNDOFF_LIMITED && r != NLOPT_FORCED_STOP)
        return abl_fail(err, ABL_EINTERNAL, "NLopt failed (code %d)", (int)r);
    return ABL_OK;
}

/* Radical inverse of i in base b (van der Corput): the Halton sequence's coordinate. */
static double radical_inverse(unsigned i, unsigned b)
{
    double f = 1.0, r = 0.0;
    while (i > 0) {
        f /= b;
        r += f * (double)(i % b);
        i /= b;
    }
    return r;
}

/* The first level's search from `starts` points (optimiser.starts): u itself, then points
 * 1, 2, ... of the Halton sequence (bases 2, 3, 5, ...) mapped into [0.1, 0.9] per variable,
 * deterministic, spread over the box (a local Nelder-Mead from one start can stop in a poor
 * local optimum). u becomes the best point found and C->best its evaluation; every evaluation
 * is journalled as usual. */
_Static_assert(PLAN_MAX_VARS == 10, "one Halton base per search variable (multi_start)");
static abl_status multi_start(plan_ctx *C, int level, double *u, double step, int maxeval,
                              int starts, abl_error *err)
{
    static const unsigned primes[PLAN_MAX_VARS] = {2, 3, 5, 7, 11, 13, 17, 19, 23, 29};
    double best_u[PLAN_MAX_VARS], uk[PLAN_MAX_VARS];
    plan_eval best = {0};
    bool have = false;
    if (C->nvar == 0) starts = 1; /* one point to search: the other starts would repeat it */
    for (int k = 0; k < starts; k++) {
        for (int i = 0; i < C->nvar; i++)
            uk[i] = k == 0 ? u[i] : 0.1 + 0.8 * radical_inverse((unsigned)k, primes[i]);
        abl_status st = search(C, level, uk, step, maxeval, err);
        if (st) return st;
        if (starts > 1)
            say(C, "%s search, start %d of %d: best objective %.4f (%s)",
                level == LEV_FINE ? "full-grid" : "coarse", k + 1, starts, C->best.objective,
                C->best.covered ? "passes" : "does not pass");
        if (C->have_best && (!have || better(&C->best, &best))) {
            best = C->best;
            have = true;
            for (int i = 0; i < C->nvar; i++) best_u[i] = uk[i];
        }
    }
    if (have) {
        C->best = best;
        C->have_best = true;
        for (int i = 0; i < C->nvar; i++) u[i] = best_u[i];
    }
    return ABL_OK;
}

/* Largest difference of two points of the unit box in one search variable. */
static double unit_dist(const plan_ctx *C, const double *a, const double *b)
{
    double d = 0;
    for (int i = 0; i < C->nvar; i++) d = fmax(d, fabs(a[i] - b[i]));
    return d;
}

/* Re-ranking between the levels (optimiser.rerank). The coarse grid's bias can make its
 * optimum a poor start on the full grid (mwa_bone: objective 1.76 coarse, 2.84 full;
 * docs/PLANNING.md) while another coarse candidate is better there. The `rerank` best coarse
 * candidates of this search (C->all[first..], by coarse objective, the earlier on ties) are
 * evaluated on the full grid, and u and C->best become the best of them there; the full-grid
 * search then starts from it (its first evaluation is that candidate again: no new run).
 * Candidates are distinct: each differs from every one taken before by at least FINE_STEP in
 * some variable (a nearer one lies within the first simplex of the full-grid search from the
 * one taken; Nelder-Mead's last coarse points crowd around its optimum). Refused needle paths
 * are left out (the geometric check is the full grid's: they are refused there too). With
 * fewer than two candidates nothing is evaluated and u stays the coarse optimum, so
 * `rerank: 1` is the search without re-ranking. The evaluations are journalled (level 0) like
 * the search's, so a resumed plan takes them from the journal. */
static abl_status rerank(plan_ctx *C, size_t first, int rerank_n, double *u, abl_error *err)
{
    double uk[PLAN_MAX_RERANK][PLAN_MAX_VARS], coarse_obj[PLAN_MAX_RERANK];
    size_t pick[PLAN_MAX_RERANK];
    int np = 0;
    for (; np < rerank_n && np < PLAN_MAX_RERANK; np++) {
        size_t b = SIZE_MAX;
        for (size_t i = first; i < C->nall; i++) {
            const plan_eval *e = &C->all[i];
            if (e->level != LEV_COARSE || !e->geom_ok) continue;
            if (b != SIZE_MAX && !better(e, &C->all[b])) continue;
            bool near = false;
            for (int k = 0; k < np && !near; k++)
                near = unit_dist(C, e->u, C->all[pick[k]].u) < FINE_STEP;
            if (!near) b = i;
        }
        if (b == SIZE_MAX) break;
        pick[np] = b;
    }
    if (np < 2) return ABL_OK;
    /* copied: C->all grows (and may move) with every evaluation below */
    for (int k = 0; k < np; k++) {
        for (int i = 0; i < C->nvar; i++) uk[k][i] = C->all[pick[k]].u[i];
        coarse_obj[k] = C->all[pick[k]].objective;
    }
    C->cur_level = LEV_FINE;
    C->have_best = false;
    C->fail = ABL_OK;
    C->err = err;
    C->opt = NULL;
    int kb = -1;
    double full_obj[PLAN_MAX_RERANK];
    for (int k = 0; k < np; k++) {
        nlopt_objective((unsigned)C->nvar, uk[k], NULL, C);
        if (C->fail) return C->fail;
        full_obj[k] = C->all[C->nall - 1].objective;
        if (kb < 0 || full_obj[k] < full_obj[kb]) kb = k;
    }
    /* C->best is that evaluation: the same strict order (the first on ties) */
    for (int i = 0; i < C->nvar; i++) u[i] = uk[kb][i];
    for (int k = 0; k < np; k++)
        say(C, "re-ranked %d of %d: coarse objective %.4f, full grid %.4f%s", k + 1, np,
            coarse_obj[k], full_obj[k], k == kb ? " (the full grid continues from it)" : "");
    return ABL_OK;
}

/* ---- verification by a full run and the margin analysis ---------------------------------- */

typedef struct {
    plan_eval fine;             /* the full-resolution evaluation */
    bool verified;
    double duration_s;
    double min_margin_mm;
    bool margin_pass, limits_ok, pass;
    int n_crossed;
    abl_critical_report crit[ABL_MARGIN_MAX_CRITICAL];
    int ncrit;
    char yaml[PATH_MAX + 64], h5[PATH_MAX + 64], margin_h5[PATH_MAX + 64];
    double verify_wall_s;
} plan_choice;

/* Start replacing path (atomic_file.h): the stream of its fresh temporary, or NULL with err
 * filled (a is then released). */
static FILE *begin_write(abl_atomic *a, const char *path, abl_error *err)
{
    int e = atomic_open(a, path, ".tmp");
    FILE *f = e ? NULL : atomic_stream(a);
    if (!e && !f) e = errno ? errno : EIO;
    if (e) {
        atomic_abort(a);
        abl_fail(err, ABL_EIO, "cannot write '%s': %s", path, strerror(e));
    }
    return f;
}

/* Commit what begin_write started (e: an earlier write error) and release a. */
static abl_status end_write(abl_atomic *a, int e, abl_error *err)
{
    if (!e) e = atomic_commit(a);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s", a->path ? a->path : "");
    atomic_abort(a); /* after a commit: only frees the names */
    return e ? abl_fail(err, ABL_EIO, "cannot write '%s': %s", path, strerror(e)) : ABL_OK;
}

static abl_status write_text_atomic(const char *path, const char *head, const char *text,
                                    abl_error *err)
{
    abl_atomic a;
    FILE *f = begin_write(&a, path, err);
    if (!f) return ABL_EIO;
    fputs(head, f);
    fputs(text, f);
    return end_write(&a, 0, err);
}

static abl_status verify(plan_ctx *C, const char *stem, plan_choice *ch, abl_error *err)
{
    const plan_spec *P = C->P;
    const double t0 = omp_get_wtime();
    plan_extra x = {.duration_s = ch->fine.t_plan_s};
    cfg_node *tree = NULL;
    abl_status st = build_tree(C, &ch->fine.g, LEV_FINE, &x, &tree, err);
    char *text = NULL;
    size_t len = 0;
    if (!st) st = tree_text(tree, &text, &len, err);
    cfg_free(tree);
    if (st) return st;
    snprintf(ch->yaml, sizeof ch->yaml, "%s/%s.yaml", C->out_dir, stem);
    snprintf(ch->h5, sizeof ch->h5, "%s/%s.h5", C->out_dir, stem);
    snprintf(ch->margin_h5, sizeof ch->margin_h5, "%s/%s.margin.h5", C->out_dir, stem);
    char head[3 * PATH_MAX];
    snprintf(head, sizeof head,
             "# Written by ablasim plan from %s (base scenario %s).\n"
             "# Run it with: ablasim run %s.yaml -o %s.h5 (from this directory)\n",
             P->plan_path, P->scenario_path, stem, stem);
    st = write_text_atomic(ch->yaml, head, text, err);
    free(text);
    if (st) return st;
    /* exactly `ablasim run OUT/stem.yaml -o OUT/stem.h5`, under the result's lock as that
     * command takes it: a run the user started on the same result meanwhile is refused here
     * rather than have its temporary file replaced (found by a read-only review, session 22) */
    abl_lock *lock = NULL;
    if ((st = fg_lock(ch->h5, &lock, err))) return st;
    abl_scenario *sc = NULL;
    abl_sim *s = NULL;
    st = scenario_load(ch->yaml, NULL, 0, &sc, err);
    if (!st) st = sim_create(sc, &s, err);
    if (!st) {
        abl_run_opts ro = {0};
        ro.output_path = ch->h5;
        ro.resume_snapshots = -1;
        ro.stop = C->o->stop; /* no checkpoint: a stopped verification removes its temporary */
        st = sim_run(s, &ro, err);
    }
    sim_destroy(s);
    scenario_free(sc);
    if (st) {
        fg_unlock(lock);
        return st;
    }
    ch->duration_s = ch->fine.t_plan_s;
    abl_margin_opts mo = {0};
    mo.result_path = ch->h5;
    mo.out_path = ch->margin_h5;
    mo.tumour_tissue = P->target_tissue;
    mo.criterion = P->cold ? ABL_ZONE_TMIN : ABL_ZONE_TMAX;
    mo.threshold = P->threshold_C;
    mo.criterion_mm = P->margin_mm;
    mo.stop = C->o->stop;
    mo.n_critical = P->ncrit;
    memcpy(mo.critical, P->crit, sizeof P->crit);
    abl_margin_report *rep = calloc(1, sizeof *rep);
    if (!rep) {
        fg_unlock(lock);
        return abl_fail(err, ABL_ENOMEM, "out of memory");
    }
    st = margin_analyse_result(&mo, rep, err); /* reads the result under its lock */
    fg_unlock(lock);
    if (!st) {
        ch->verified = true;
        ch->min_margin_mm = rep->m.min_margin_mm;
        ch->margin_pass = rep->m.pass;
        ch->limits_ok = rep->n_critical_crossed == 0;
        ch->pass = rep->pass;
        ch->n_crossed = rep->n_critical_crossed;
        ch->ncrit = rep->n_critical;
        memcpy(ch->crit, rep->critical, sizeof ch->crit);
    }
    free(rep);
    ch->verify_wall_s = omp_get_wtime() - t0;
    return st;
}

/* ---- robustness ---------------------------------------------------------------------------- */

typedef struct {
    int samples, passes;
    double p, lo, hi; /* Wilson 95 % interval */
    int level;
    bool nominal_pass; /* the unperturbed plan at that level */
    bool switched;     /* coarse asked for, full used (the coarse grid failed the plan) */
} plan_robust;

static abl_status robustness(plan_ctx *C, const plan_choice *ch, plan_robust *R, abl_error *err)
{
    const plan_spec *P = C->P;
    memset(R, 0, sizeof *R);
    R->level = P->rob_full || C->nlev == 1 ? LEV_FINE : LEV_COARSE;
    if (P->rob_samples <= 0) return ABL_OK;
    /* perfusion of every tissue in the grid (the plan moves applicators, not tissues) */
    const abl_scenario *sc = C->base_sc;
    plan_extra base = {.duration_s = ch->fine.t_plan_s};
    int used[ABL_MAX_MATERIALS] = {0};
    for (int l = 0; l < 256; l++)
        if (sc->mesh_label_tissue[l] >= 0 && sc->mesh_label_tissue[l] < ABL_MAX_MATERIALS)
            used[sc->mesh_label_tissue[l]] = 1;
    if (sc->background_tissue >= 0) used[sc->background_tissue] = 1;
    for (int r = 0; r < sc->nregions; r++) used[sc->regions[r].tissue] = 1;
    plan_extra proto = base;
    for (int t = 0; t < sc->tissues.n && proto.nperf < ABL_MAX_MATERIALS; t++)
        if (used[t] && sc->tissues.t[t].perfusion_per_s > 0) {
            snprintf(proto.perf_tissue[proto.nperf], ABL_MARGIN_NAME_LEN, "%s",
                     sc->tissues.t[t].name);
            proto.perf_per_s[proto.nperf++] = sc->tissues.t[t].perfusion_per_s;
        }
    plan_eval e;
    abl_status st = evaluate(C, &ch->fine.g, R->level, true, true, &base, &e, err);
    if (st) return st;
    R->nominal_pass = e.covered;
    if (!e.covered && ch->pass && R->level == LEV_COARSE) {
        /* the coarse grid does not reproduce the verified plan's PASS: its samples would
         * measure the coarse grid's bias, not the plan's robustness */
        say(C, "robustness: the plan does not pass on the coarse grid; sampling on the full grid");
        R->level = LEV_FINE;
        R->nominal_pass = true;
        R->switched = true;
    }
    uint64_t seed = P->seed * 0x9E3779B97F4A7C15ULL + 12345;
    for (int k = 0; k < P->rob_samples; k++) {
        plan_geom G = ch->fine.g;
        plan_extra x = proto;
        for (int a = 0; a < G.n; a++)
            for (int d = 0; d < 3; d++) G.tip_mm[a][d] += P->rob_sd_mm * rng_normal(&seed);
        for (int i = 0; i < x.nperf; i++) {
            /* lognormal with the given coefficient of variation, mean preserved */
            const double s2 = log(1.0 + P->rob_perf_cv * P->rob_perf_cv);
            x.perf_per_s[i] *= exp(sqrt(s2) * rng_normal(&seed) - 0.5 * s2);
        }
        if ((st = evaluate(C, &G, R->level, true, true, &x, &e, err))) return st;
        R->samples++;
        R->passes += e.covered;
        say(C, "robustness sample %d/%d: %s%s%s", k + 1, P->rob_samples,
            e.covered ? "PASS" : "fail", e.note[0] ? ", " : "", e.note);
    }
    const double n = R->samples, z = 1.96, ph = R->passes / n;
    const double den = 1 + z * z / n, mid = (ph + z * z / (2 * n)) / den;
    const double hw = z * sqrt(ph * (1 - ph) / n + z * z / (4 * n * n)) / den;
    R->p = ph;
    R->lo = fmax(0, mid - hw);
    R->hi = fmin(1, mid + hw);
    return ABL_OK;
}

/* ---- journal ------------------------------------------------------------------------------- */

static abl_status foreign_journal(const char *path, abl_error *err)
{
    return abl_fail(err, ABL_EINVAL,
                    "%s holds the journal of another plan (or another version of this "
                    "plan file, its scenario or a file the scenario reads: tissue table, mesh, "
                    "initial field, device presets); it is not overwritten: choose another -o "
                    "directory or remove the journal",
                    path);
}

/* The journal's first line for this plan (its plan file's and scenario's hash). */
static void journal_head(const plan_ctx *C, char *head, size_t len)
{
    snprintf(head, len, "# ablasim plan journal 1 plan_hash=%016llx\n",
             (unsigned long long)C->P->plan_hash);
}

/* Refuse a directory whose journal is another plan's before anything in it is touched: the
 * undo recovery of an interrupted plan (plan_run) restores that plan's previous outputs, and
 * must not run for a plan that is then refused (it would remove files another plan, or the
 * user since, put there). No journal, or this plan's: ABL_OK. */
static abl_status plan_journal_check(const plan_ctx *C, abl_error *err)
{
    char path[PATH_MAX + 32], head[128], line[256];
    snprintf(path, sizeof path, "%s/journal.csv", C->out_dir);
    journal_head(C, head, sizeof head);
    FILE *f = fopen(path, "r");
    if (!f) return ABL_OK;
    const bool same = fgets(line, sizeof line, f) && !strcmp(line, head);
    fclose(f);
    return same ? ABL_OK : foreign_journal(path, err);
}

static abl_status plan_journal_open(plan_ctx *C, abl_error *err)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/journal.csv", C->out_dir);
    char head[128];
    journal_head(C, head, sizeof head);
    FILE *f = fopen(path, "r");
    char *kept = NULL;
    size_t kept_len = 0;
    if (f) {
        FILE *mk = open_memstream(&kept, &kept_len);
        /* whole lines of any length (getline), their length as read: a line longer than a
         * fixed buffer or holding a NUL (a crash can leave NUL blocks) is one damaged line,
         * not the end of the journal (a review, session 27) */
        char *line = NULL;
        size_t cap = 0;
        ssize_t got;
        bool first = true, ok = true;
        size_t bad = 0; /* complete lines that fail their checksum or do not parse */
        while (mk && (got = getline(&line, &cap, f)) > 0) {
            const size_t l = (size_t)got;
            if (first) {
                first = false;
                if (strcmp(line, head)) {
                    ok = false;
                    break;
                }
                continue;
            }
            if (line[l - 1] != '\n') break; /* a torn last line (getline: only the last) */
            if (memchr(line, '\0', l)) {
                bad++;
                continue;
            }
            if (line[0] == 'k') { /* the column header */
                fputs(line, mk);
                continue;
            }
            /* its last column, the CRC-32 of what comes before it (journal_write): a damaged
             * or edited line is dropped and that evaluation made anew; the lines after it
             * are kept (a damaged line used to end the reading, losing every line after it;
             * an adversarial test, session 27) */
            char *end = NULL;
            const unsigned long crc =
                l >= 10 && line[l - 10] == ',' ? strtoul(line + l - 9, &end, 16) : 0;
            if (!end || end != line + l - 1 ||
                crc != (crc32(0L, (const Bytef *)line, (uInt)(l - 10)) & 0xffffffffUL)) {
                bad++;
                continue;
            }
            plan_eval e;
            memset(&e, 0, sizeof e);
            unsigned long long key;
            int go, cov, cok;
            if (sscanf(line, "%llx,%d,%d,%d,%lg,%d,%lg,%lg,%lg,%lg,%d,%lg,%lg,%lg", &key, &e.level,
                       &e.n, &go, &e.violation_mm, &cov, &e.t_cover_s, &e.t_plan_s, &e.g_K,
                       &e.crit_K, &cok, &e.dose, &e.objective, &e.wall_s) != 14) {
                bad++;
                continue;
            }
            e.key = key;
            e.from_journal = true;
            e.geom_ok = go;
            e.covered = cov;
            e.crit_ok = cok;
            const char *nt = line;
            for (int c = 0; c < 17 && nt; c++) {
                nt = strchr(nt, ',');
                if (nt) nt++;
            }
            if (nt && nt <= line + l - 10)
                snprintf(e.note, sizeof e.note, "%.*s", (int)(line + l - 10 - nt), nt);
            if (push_eval(&C->cache, &C->ncache, &C->capcache, &e)) {
                ok = false;
                break;
            }
            fputs(line, mk);
        }
        free(line);
        fclose(f);
        if (mk) fclose(mk);
        if (!ok) {
            free(kept);
            return foreign_journal(path, err);
        }
        if (bad) /* said also under --quiet, as the sweep's note on its journal */
            fprintf(stderr,
                    "plan: note: %zu damaged line(s) of %s dropped (checksum or format): those "
                    "evaluations are made anew\n",
                    bad, path);
    }
    /* the journal rewritten whole (its first line, the kept evaluations), with the column
     * line when it starts afresh (appended unchecked before) */
    static const char columns[] =
        "key,level,n,geom_ok,violation_mm,covered,t_cover_s,t_plan_s,g_K,crit_K,crit_ok,"
        "dose,objective,wall_s,power_W,tips_mm,direction,note,crc32\n";
    abl_status st = write_text_atomic(path, head, kept_len ? kept : columns, err);
    free(kept);
    if (st) return st;
    C->journal = fopen(path, "a");
    if (!C->journal)
        return abl_fail(err, ABL_EIO, "cannot append to '%s': %s", path, strerror(errno));
    if (C->ncache) say(C, "resuming: %zu evaluations from %s", C->ncache, path);
    return ABL_OK;
}

/* ---- summary files ------------------------------------------------------------------------- */

/* A number as plan.yaml writes it (set_vec's %.4f: the geometry the verified run simulated),
 * read back as the run reads it, -0 as 0 (QA, session 29: plan.json gave the search's
 * unrounded tips, plan.yaml the rounded; formatted, not round(x 1e4) / 1e4, which differs from
 * %.4f at some half-way values) */
static double yaml_mm(double x)
{
    char b[64];
    snprintf(b, sizeof b, YAML_MM, x + 0.0);
    return strtod(b, NULL) + 0.0;
}

/* A coordinate as the report prints it (%.1f), -0.0 as 0.0. */
static double tenth_mm(double x)
{
    return round(x * 10.0) / 10.0 + 0.0;
}

static void json_geom(abl_json *j, const plan_geom *g)
{
    json_int(j, "applicators", g->n);
    json_begin_array(j, "tips_mm", false);
    for (int a = 0; a < g->n; a++) {
        const double t[3] = {yaml_mm(g->tip_mm[a][0]), yaml_mm(g->tip_mm[a][1]),
                             yaml_mm(g->tip_mm[a][2])};
        json_num_array(j, NULL, t, 3, 1.0);
    }
    json_end_array(j);
    const double dir[3] = {yaml_mm(g->dir[0]), yaml_mm(g->dir[1]), yaml_mm(g->dir[2])};
    json_num_array(j, "direction", dir, 3, 1.0);
    json_num(j, "power_W", g->power_W);
}

static abl_status write_summary(plan_ctx *C, const plan_choice *ch, int nch, int chosen,
                                const plan_robust *R, const abl_plan_report *rep, abl_error *err)
{
    const plan_spec *P = C->P;
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/plan.json", C->out_dir);
    abl_atomic a;
    FILE *f = begin_write(&a, path, err);
    if (!f) return ABL_EIO;
    abl_json j;
    json_init(&j, f);
    json_begin_object(&j, NULL, false);
    json_str(&j, "plan_file", P->plan_path);
    json_str(&j, "scenario", P->scenario_path);
    json_bool(&j, "found", rep->found);
    json_str(&j, "why", rep->why);
    json_str(&j, "criterion", P->cold ? "tmin" : "tmax");
    json_num(&j, "threshold_C", P->threshold_C);
    json_num(&j, "margin_required_mm", P->margin_mm);
    json_int(&j, "evaluations", rep->evaluations);
    json_int(&j, "evaluations_from_journal", rep->cached);
    json_num(&j, "wall_s", rep->wall_s);
    json_str(&j, "dose_unit", C->dose_unit);
    json_begin_array(&j, "plans", false);
    for (int i = 0; i < nch; i++) {
        const plan_choice *c = &ch[i];
        json_begin_object(&j, NULL, false);
        json_bool(&j, "chosen", i == chosen);
        /* a plan never simulated (every candidate refused on geometry) has no duration, dose
         * or margin: null, not the zeros it was written with (an adversarial test, session 30) */
        const double un = c->verified ? 0.0 : NAN;
        json_bool(&j, "simulated", c->verified);
        json_str(&j, "scenario", c->yaml);
        json_str(&j, "result", c->h5);
        json_str(&j, "margin_file", c->margin_h5);
        json_geom(&j, &c->fine.g);
        json_num(&j, "duration_s", c->duration_s + un);
        json_num(&j, "dose", c->fine.dose + un);
        json_num(&j, "min_margin_mm", c->min_margin_mm + un);
        json_bool(&j, "margin_pass", c->margin_pass);
        json_bool(&j, "limits_ok", c->limits_ok && c->verified);
        json_bool(&j, "pass", c->pass);
        json_begin_array(&j, "critical", false);
        for (int k = 0; k < c->ncrit; k++) {
            json_begin_object(&j, NULL, true);
            json_str(&j, "tissue", c->crit[k].spec.tissue);
            json_num(&j, "tmax_C", c->crit[k].tmax_C);
            json_num(&j, "tmin_C", c->crit[k].tmin_C);
            json_bool(&j, "crossed", c->crit[k].crossed);
            json_end_object(&j);
        }
        json_end_array(&j);
        json_num(&j, "verify_wall_s", c->verify_wall_s);
        json_end_object(&j);
    }
    json_end_array(&j);
    json_begin_object(&j, "robustness", false);
    json_int(&j, "samples", R->samples);
    json_int(&j, "passes", R->passes);
    json_num(&j, "p_pass", R->samples ? R->p : NAN);
    json_num(&j, "p_pass_ci95_lo", R->samples ? R->lo : NAN);
    json_num(&j, "p_pass_ci95_hi", R->samples ? R->hi : NAN);
    json_num(&j, "placement_sd_mm", P->rob_sd_mm);
    json_num(&j, "perfusion_cv", P->rob_perf_cv);
    json_str(&j, "fidelity", !R->samples ? "none" : R->level == LEV_FINE ? "full" : "coarse");
    json_bool(&j, "nominal_pass_at_fidelity", R->nominal_pass);
    json_bool(&j, "switched_to_full", R->switched);
    json_end_object(&j);
    json_end_object(&j);
    abl_status st = end_write(&a, json_finish(&j), err);
    if (st) return st;
    /* Markdown report */
    snprintf(path, sizeof path, "%s/plan.md", C->out_dir);
    if (!(f = begin_write(&a, path, err))) return ABL_EIO;
    fprintf(f, "# ablasim plan: %s\n\n", P->plan_path);
    fprintf(f, "Base scenario `%s`; target tissue `%s` with a margin > %g mm (%s %s %g C).\n\n",
            P->scenario_path, P->target_tissue, P->margin_mm, P->cold ? "T_min" : "T_max",
            P->cold ? "<=" : ">=", P->threshold_C);
    if (rep->found)
        fprintf(f, "**PLAN FOUND**: %d applicator(s), %.6g s, verified minimal margin %.2f mm.\n\n",
                rep->n_applicators, rep->duration_s, rep->min_margin_mm);
    else
        fprintf(f, "**NO PASSING PLAN** in the search space: %s\n\n", rep->why);
    fprintf(f, "| plan | applicators | tips (mm) | power (W) | duration (s) | dose (%s) | "
               "min margin (mm) | margin | limits | file |\n|---|---|---|---|---|---|---|---|---|---|\n",
            C->dose_unit);
    for (int i = 0; i < nch; i++) {
        const plan_choice *c = &ch[i];
        fprintf(f, "| %s | %d | ",
                i == chosen ? "**chosen**" : c->verified ? "alternative" : "not simulated",
                c->fine.g.n);
        for (int a = 0; a < c->fine.g.n; a++)
            fprintf(f, "%s(%.1f, %.1f, %.1f)", a ? " " : "", tenth_mm(c->fine.g.tip_mm[a][0]),
                    tenth_mm(c->fine.g.tip_mm[a][1]), tenth_mm(c->fine.g.tip_mm[a][2]));
        if (!c->verified)
            fprintf(f, " | %.1f | - | - | - | - | - | - |\n", c->fine.g.power_W);
        else
            fprintf(f, " | %.1f | %.6g | %.4g | %.2f | %s | %s | `%s` |\n", c->fine.g.power_W,
                    c->duration_s, c->fine.dose, c->min_margin_mm,
                    c->margin_pass ? "PASS" : "FAIL", c->limits_ok ? "respected" : "crossed",
                    c->yaml);
    }
    if (chosen >= 0 && ch[chosen].ncrit) {
        fprintf(f, "\n| critical structure | T_min..T_max (C) | limit |\n|---|---|---|\n");
        for (int k = 0; k < ch[chosen].ncrit; k++) {
            const abl_critical_report *r = &ch[chosen].crit[k];
            fprintf(f, "| %s | %.1f..%.1f | %s |\n", r->spec.tissue, r->tmin_C, r->tmax_C,
                    r->crossed ? "crossed" : "respected");
        }
    }
    if (R->samples)
        fprintf(f,
                "\nRobustness (%s grid, %d samples: tips N(0, %g mm) per axis, perfusion CV %g): "
                "P(PASS) = %.2f (95 %% CI %.2f..%.2f); the unperturbed plan %s at this fidelity.\n",
                R->level == LEV_FINE ? "full" : "coarse", R->samples, P->rob_sd_mm, P->rob_perf_cv,
                R->p, R->lo, R->hi, R->nominal_pass ? "passes" : "does not pass");
    if (R->switched)
        fprintf(f, "(Sampled on the full grid: the unperturbed plan does not pass on the coarse "
                   "grid, whose samples would measure its bias.)\n");
    fprintf(f, "\n%d forward evaluations (%d from the journal), %.1f s wall. Every candidate: "
               "`%s/journal.csv`.\n",
            rep->evaluations, rep->cached, rep->wall_s, C->out_dir);
    return end_write(&a, 0, err);
}

/* ---- the whole plan ------------------------------------------------------------------------ */

static abl_status make_out_dir(const char *dir, char *real, size_t len, abl_error *err)
{
    abl_status st = sweep_mkdirs(dir, err); /* mkdir -p; refuses a non-directory on the way */
    if (st) return st;
    char r[PATH_MAX];
    if (!realpath(dir, r)) return abl_fail(err, ABL_EIO, "cannot resolve '%s': %s", dir, strerror(errno));
    snprintf(real, len, "%s", r);
    return ABL_OK;
}

/* full-resolution geometry: tumour centroid and size, tissues the needle must avoid */
static abl_status geometry_init(plan_ctx *C, abl_error *err)
{
    const plan_spec *P = C->P;
    char *text = NULL;
    size_t len = 0;
    abl_status st = tree_text(P->base, &text, &len, err);
    abl_scenario *sc = NULL;
    abl_sim *s = NULL;
    /* before the output directory exists: the base tree still has the scenario's own paths */
    if (!st) st = scenario_load_string(text, P->scenario_path, P->scenario_dir, NULL, 0, &sc, err);
    free(text);
    if (!st) st = sim_create(sc, &s, err);
    if (st) {
        scenario_free(sc);
        return st;
    }
    for (int c = 0; c < P->ncrit; c++) {
        bool found = false;
        for (int m = 0; m < s->nmat && !found; m++) found = tissue_is(s, m, P->crit[c].tissue);
        if (!found) {
            sim_destroy(s);
            scenario_free(sc);
            return abl_fail(err, ABL_EINVAL,
                            "%s: critical structure '%s' is not a tissue of the scenario's grid",
                            P->plan_path, P->crit[c].tissue);
        }
    }
    /* a tissue to avoid that is not in the grid would avoid nothing: a misspelt one turned
     * the needle-path check off without a word (an adversarial test, session 30) */
    for (int a = 0; a < P->navoid; a++) {
        bool found = false;
        for (int m = 0; m < s->nmat && !found; m++) found = tissue_is(s, m, P->avoid[a]);
        if (!found) {
            char list[600] = "";
            size_t pos = 0;
            for (int m = 0; m < s->nmat && pos < sizeof list; m++)
                pos += (size_t)snprintf(list + pos, sizeof list - pos, "%s%s", m ? ", " : "",
                                        sc->tissues.t[s->mat_tissue[m]].name);
            sim_destroy(s);
            scenario_free(sc);
            return abl_fail(err, ABL_EINVAL,
                            "%s: constraints.avoid_tissues: '%s' is not a tissue of the "
                            "scenario's grid (its tissues: %s); a needle path cannot avoid it",
                            P->plan_path, P->avoid[a], list);
        }
    }
    C->fine = s->grid;
    C->avoid = calloc(s->grid.n, 1);
    if (!C->avoid) {
        sim_destroy(s);
        scenario_free(sc);
        return abl_fail(err, ABL_ENOMEM, "out of memory");
    }
    double sum[3] = {0, 0, 0};
    size_t ntum = 0;
    const abl_grid *g = &s->grid;
    uint8_t avoid_m[256] = {0}, target_m[256], is[256];
    for (int a = 0; a < P->navoid; a++) {
        material_is(s, P->avoid[a], is);
        for (int m = 0; m < 256; m++) avoid_m[m] |= is[m];
    }
    material_is(s, P->target_tissue, target_m);
    for (int k = 0; k < g->nz; k++)
        for (int j = 0; j < g->ny; j++)
            for (int i = 0; i < g->nx; i++) {
                const size_t v = ABL_IDX(g, i, j, k);
                const int m = s->material[v];
                C->avoid[v] = avoid_m[m];
                if (target_m[m]) {
                    double x[3];
                    grid_voxel_centre_m(g, i, j, k, x);
                    for (int d = 0; d < 3; d++) sum[d] += x[d] * 1e3;
                    ntum++;
                }
            }
    sim_destroy(s);
    if (!ntum) {
        scenario_free(sc);
        return abl_fail(err, ABL_EINVAL, "%s: the scenario's grid has no voxel of the target tissue "
                                         "'%s' (target.tissue)",
                        P->plan_path, P->target_tissue);
    }
    for (int d = 0; d < 3; d++) C->centroid_mm[d] = sum[d] / ntum;
    C->tumour_mL = ntum * grid_voxel_volume_m3(&C->fine) * 1e6; /* s is gone: its copy */
    C->r_eq_mm = cbrt(3.0 * C->tumour_mL * 1e3 / (4.0 * PI));
    /* the needle frame and the start: the tumour centroid, with the tip as far beyond it
     * along the axis as in the base scenario (the device's zone centre lies behind its tip) */
    const bool has_dir = P->dir_key[0] != '\0';
    if (has_dir) {
        for (int d = 0; d < 3; d++) C->d0[d] = P->base_dir[d];
        frame(C->d0, C->u0, C->v0);
    }
    double centre_base[3];
    for (int d = 0; d < 3; d++) centre_base[d] = P->base_tip_mm[d];
    if (P->start_from_scenario) {
        for (int d = 0; d < 3; d++) C->start_tip_mm[d] = centre_base[d];
    } else {
        double rel[3];
        for (int d = 0; d < 3; d++) rel[d] = P->base_tip_mm[d] - C->centroid_mm[d];
        const double a0 = has_dir ? dot3(rel, C->d0) : 0.0;
        for (int d = 0; d < 3; d++) C->start_tip_mm[d] = C->centroid_mm[d] + a0 * (has_dir ? C->d0[d] : 0);
    }
    C->base_sc = sc;
    return ABL_OK;
}

/* The files a plan replaces in its output directory, as one set (undo.h): for each stem the
 * scenario, the verification result set and its margin files, then the summary (plan.json is
 * the "plan" stem's result summary name too). A malloc'ed array of *n malloc'ed names (free
 * with names_free), or NULL. */
static const char *const plan_ext[6] = {".yaml", ".h5", ".json", ".xdmf", ".margin.h5",
                                        ".margin.json"};

static void names_free(char **names, int n)
{
    for (int i = 0; names && i < n; i++) free(names[i]);
    free(names);
}

static char **plan_output_set(const plan_ctx *C, int *n)
{
    const int nstems = C->P->n_max - C->P->n_min + 2;
    char **names = calloc((size_t)(nstems * 6 + 1), sizeof *names);
    *n = 0;
    if (!names) return NULL;
    for (int k = C->P->n_min - 1; k <= C->P->n_max; k++) {
        char stem[32];
        if (k < C->P->n_min) snprintf(stem, sizeof stem, "plan");
        else snprintf(stem, sizeof stem, "plan_n%d", k);
        for (int e = 0; e < 6; e++) {
            const size_t len = strlen(C->out_dir) + strlen(stem) + strlen(plan_ext[e]) + 2;
            if (!(names[*n] = malloc(len))) {
                names_free(names, *n);
                return NULL;
            }
            snprintf(names[(*n)++], len, "%s/%s%s", C->out_dir, stem, plan_ext[e]);
        }
    }
    const size_t len = strlen(C->out_dir) + sizeof "/plan.md";
    if (!(names[*n] = malloc(len))) {
        names_free(names, *n);
        return NULL;
    }
    snprintf(names[(*n)++], len, "%s/plan.md", C->out_dir);
    return names;
}

/* Before the plan's own log restores its set: drop what the verification runs left half done
 * inside it, each of which would otherwise act on the restored files later - a result's commit
 * marker and temporaries (output_recover would complete them over the restored result) and a
 * margin file's undo log (a later margin would restore an earlier try's margin files). */
static void plan_drop_nested(const plan_ctx *C)
{
    int n = 0;
    char **names = plan_output_set(C, &n);
    for (int i = 0; names && i < n; i++) {
        const size_t len = strlen(names[i]);
        if (len > 10 && !strcmp(names[i] + len - 10, ".margin.h5")) {
            char *log = malloc(len + sizeof ".undo");
            if (log) {
                snprintf(log, len + sizeof ".undo", "%s.undo", names[i]);
                (void)undo_discard(log);
            }
            free(log);
        } else if (len > 3 && !strcmp(names[i] + len - 3, ".h5")) {
            output_abandon_commit(names[i]);
        }
    }
    names_free(names, n);
}

/* A failed plan puts the previous output set back (plan_drop_nested first). The message gets
 * what could not be restored. */
static void plan_restore(const plan_ctx *C, abl_undo *u, abl_error *err)
{
    plan_drop_nested(C);
    const int e = undo_restore(u);
    if (e) {
        char first[sizeof err->msg];
        snprintf(first, sizeof first, "%s", err->msg);
        abl_fail(err, err->status ? err->status : ABL_EIO,
                 "%s; restoring the previous plan files failed too (%s: %s): they are kept as "
                 "*.before-plan.tmp and the next 'ablasim plan' into %s restores them",
                 first, u->failed ? u->failed : "", strerror(e), C->out_dir);
    }
}

/* What the plan reads against every name it may write (fileguard.h), before anything is
 * written: a plan whose scenario, tissue table, mesh or initial field lies in its output
 * directory under one of its output names (a second ablation planned from the first plan's
 * plan.h5 into the same directory) would replace it, and each verification try would start
 * from the file the previous try wrote. */
static abl_status plan_check_files(const plan_ctx *C, abl_error *err)
{
    const plan_spec *P = C->P;
    const abl_scenario *sc = C->base_sc;
    abl_fileset *fs = fileset_new();
    if (!fs) return abl_fail(err, ABL_ENOMEM, "out of memory");
    abl_status st = fileset_input(fs, "plan file", P->plan_path, err);
    if (!st) st = fileset_input(fs, "scenario", P->scenario_path, err);
    if (!st) st = scenario_declare_inputs(sc, fs, err);
    int n = 0;
    char **names = st ? NULL : plan_output_set(C, &n);
    if (!st && !names) st = abl_fail(err, ABL_ENOMEM, "out of memory");
    for (int i = 0; i < n && !st; i++) st = fileset_output(fs, "plan output", names[i], err);
    names_free(names, n);
    static const char *const own[] = {"journal.csv", "plan.undo", "coarse_mesh_x%d.h5",
                                      "coarse_initial_T_x%d.h5", "coarse_initial_state_x%d.h5"};
    for (size_t i = 0; i < sizeof own / sizeof own[0] && !st; i++) {
        char name[64], path[PATH_MAX + 80];
        snprintf(name, sizeof name, own[i], P->coarsen);
        snprintf(path, sizeof path, "%s/%s", C->out_dir, name);
        st = fileset_output(fs, "plan output", path, err);
    }
    if (!st) st = fileset_check(fs, err);
    fileset_free(fs);
    return st;
}

abl_status plan_run(const abl_plan_opts *o, abl_plan_report *rep, abl_error *err)
{
    memset(rep, 0, sizeof *rep);
    plan_spec *P = calloc(1, sizeof *P);
    plan_ctx *C = calloc(1, sizeof *C);
    plan_choice *ch = calloc(PLAN_MAX_APPLICATORS + 1, sizeof *ch);
    if (!P || !C || !ch) {
        free(P);
        free(C);
        free(ch);
        return abl_fail(err, ABL_ENOMEM, "out of memory");
    }
    C->P = P;
    C->o = o;
    C->t0 = omp_get_wtime();
    int nch = 0, chosen = -1;
    plan_robust R = {0};
    abl_status st = plan_spec_load(o, P, err);
    /* everything that can be judged without writing is judged first: a bad plan or scenario
     * leaves no output directory behind */
    if (!st) st = geometry_init(C, err);
    if (!st) st = coarse_level_check(C, err);
    if (!st) st = make_out_dir(o->out_dir, C->out_dir, sizeof C->out_dir, err);
    if (!st) st = plan_check_files(C, err);
    if (!st) {
        /* without the planner's journal, any file under one of the plan's output names is the
         * user's (it was plan.yaml alone: a user's plan.md or plan.json was replaced; found by
         * an adversarial review, session 23) */
        char jp[PATH_MAX + 64];
        snprintf(jp, sizeof jp, "%s/journal.csv", C->out_dir);
        int nn = 0;
        char **names = access(jp, F_OK) != 0 ? plan_output_set(C, &nn) : NULL;
        for (int i = 0; i < nn && !st; i++) {
            struct stat sb;
            if (lstat(names[i], &sb) == 0)
                st = abl_fail(err, ABL_EINVAL,
                              "%s exists but no journal.csv beside it: this directory holds "
                              "something else than a plan of this planner; it is not "
                              "overwritten (choose another -o directory)",
                              names[i]);
        }
        names_free(names, nn);
    }
    char undo_log[PATH_MAX + 32];
    snprintf(undo_log, sizeof undo_log, "%s/plan.undo", C->out_dir);
    abl_undo undo = {0};
    abl_lock *lock = NULL;
    if (!st) {
        /* one planner per output directory: a second one would append to the same journal,
         * replace the same outputs and could restore the first one's undo log under it */
        char jp[PATH_MAX + 32];
        snprintf(jp, sizeof jp, "%s/journal.csv", C->out_dir);
        st = fg_lock(jp, &lock, err);
    }
    /* another plan's directory is refused before its undo log is recovered */
    if (!st) st = plan_journal_check(C, err);
    if (!st && access(undo_log, F_OK) == 0) {
        /* a plan killed while it replaced its outputs: the previous set back first */
        plan_drop_nested(C);
        const char *what = undo_log;
        const int e = undo_recover(undo_log, NULL, &what);
        if (e)
            st = abl_fail(err, ABL_EIO,
                          "%s: an interrupted plan's previous files could not be restored (%s: "
                          "%s); its *.before-plan.tmp files are the previous versions",
                          undo_log, what, e == EINVAL ? "not ablasim's undo log" : strerror(e));
    }
    if (!st) st = plan_spec_rebase(P, C->out_dir, err);
    if (!st) st = plan_journal_open(C, err);
    if (!st) st = levels_init(C, C->base_sc, err);
    if (st) goto done;

    C->dose_unit = isnan(P->base_power_W) && !P->power_var ? "applicator-s" : "J";
    {
        const double pmax = P->power_var ? P->power_W[1]
                                         : (isnan(P->base_power_W) ? 1.0 : P->base_power_W);
        const double tmax = P->dur_var ? P->duration_s[1] : C->base_sc->duration_s;
        C->dose_ref = dose_count(P, P->n_max) * pmax * tmax; /* as e->dose */
    }
    say(C, "target '%s': %.2f mL, centroid (%.1f, %.1f, %.1f) mm; %s; %d..%d applicator(s)",
        P->target_tissue, C->tumour_mL, C->centroid_mm[0], C->centroid_mm[1], C->centroid_mm[2],
        P->cold ? "cold (T_min)" : "heat (T_max)", P->n_min, P->n_max);

    /* per number of applicators: coarse search, then the full grid */
    plan_eval best_n[PLAN_MAX_APPLICATORS + 1];
    bool have_n[PLAN_MAX_APPLICATORS + 1] = {false};
    for (int n = P->n_min; n <= P->n_max; n++) {
        layout(C, n);
        double u[PLAN_MAX_VARS];
        start_point(C, u);
        if (C->nlev > 1) {
            const size_t first = C->nall;
            if ((st = multi_start(C, LEV_COARSE, u, 0.25, P->max_evals, P->starts, err)))
                goto done;
            say(C, "coarse search, %d applicator(s): best objective %.4f (%s)", n,
                C->best.objective, C->best.covered ? "passes" : "does not pass");
            if ((st = rerank(C, first, P->rerank, u, err))) goto done;
        }
        /* the full grid: from the coarse optimum (or the best re-ranked candidate), smaller
         * steps. A plan of fixed duration (cryo protocols, heat without a duration range)
         * with at most one full-grid evaluation goes straight to verification, which is that
         * evaluation (a 3-probe cryo run on the full grid costs minutes); after re-ranking
         * C->best is already a full-grid evaluation, the best re-ranked candidate. */
        const bool fixed = !P->dur_var || P->cold;
        if (C->nlev > 1 && fixed && P->fine_evals <= 1) {
            best_n[n] = C->best;
            have_n[n] = true;
            continue;
        }
        const int fe = C->nlev > 1 ? (P->fine_evals > 0 ? P->fine_evals : 1) : P->max_evals;
        if ((st = C->nlev > 1 ? search(C, LEV_FINE, u, FINE_STEP, fe, err)
                              : multi_start(C, LEV_FINE, u, 0.25, fe, P->starts, err)))
            goto done;
        best_n[n] = C->best;
        have_n[n] = true;
        say(C, "full grid, %d applicator(s): best objective %.4f (%s)", n, C->best.objective,
            C->best.covered ? "passes" : "does not pass");
    }
    /* the plans to verify: for each number of applicators its best; chosen = fewest
     * applicators that pass, then the least dose */
    for (int n = P->n_min; n <= P->n_max; n++) {
        if (!have_n[n]) continue;
        ch[nch].fine = best_n[n];
        nch++;
    }
    {
        /* from here the output files are replaced: the previous set is kept until the last
         * is written (undo.h), so a failure leaves the old set, never a mix (found by the
         * failing-call property of the safety suite) */
        int nm = 0;
        char **names = plan_output_set(C, &nm);
        const int e = names ? undo_begin(&undo, undo_log, "plan", (const char *const *)names, nm)
                            : ENOMEM;
        names_free(names, nm);
        if (e) {
            st = abl_fail(err, ABL_EIO, "%s: cannot keep the previous plan files (%s: %s)",
                          C->out_dir, undo.failed ? undo.failed : undo_log, strerror(e));
            goto done;
        }
    }
    for (int i = 0; i < nch; i++) {
        char stem[32];
        snprintf(stem, sizeof stem, nch == 1 ? "plan" : "plan_n%d", ch[i].fine.n);
        if (!ch[i].fine.geom_ok) continue;
        /* heat: a verified failure just past the coverage time gets one more time step (the
         * evaluation stopped between checks) */
        for (int tries = 0; tries < 3; tries++) {
            if ((st = verify(C, stem, &ch[i], err))) goto done;
            say(C, "verified %s: %d applicator(s), %.6g s: minimal margin %.2f mm, %s, limits %s",
                stem, ch[i].fine.n, ch[i].duration_s, ch[i].min_margin_mm,
                ch[i].margin_pass ? "PASS" : "FAIL", ch[i].limits_ok ? "respected" : "crossed");
            if (ch[i].pass || !ch[i].fine.covered || ch[i].fine.fixed_duration || !ch[i].limits_ok ||
                ch[i].fine.t_plan_s + P->time_step_s > P->duration_s[1] + 1e-9)
                break;
            ch[i].fine.t_plan_s += P->time_step_s;
            ch[i].fine.dose *= ch[i].fine.t_plan_s / (ch[i].fine.t_plan_s - P->time_step_s);
        }
    }
    for (int i = 0; i < nch; i++)
        if (ch[i].verified && ch[i].pass && chosen < 0) chosen = i;
    if (chosen < 0) {
        /* no plan passes: report the best achievable (largest verified margin) and why */
        for (int i = 0; i < nch; i++)
            if (ch[i].verified && (chosen < 0 || ch[i].min_margin_mm > ch[chosen].min_margin_mm))
                chosen = i;
        int crossed = 0, refused = 0, evaluated = 0;
        size_t candidates = 0;
        for (size_t i = 0; i < C->nall; i++) {
            if (C->all[i].repeat) continue; /* met before in this run: one candidate */
            candidates++;
            refused += !C->all[i].geom_ok;
            crossed += C->all[i].geom_ok && !C->all[i].crit_ok;
            evaluated += C->all[i].geom_ok;
        }
        const char *reason =
            chosen < 0 ? "every candidate was refused on geometry"
            : evaluated > 0 && crossed == evaluated
                ? (ch[chosen].limits_ok
                       ? "in every simulated candidate a critical limit was crossed before the "
                         "target plus margin was covered (the reported plan stops at its last "
                         "safe time)"
                       : "in every simulated candidate a critical limit was crossed before the "
                         "target plus margin was covered, in the reported plan already within "
                         "the shortest duration allowed")
                : "the target plus margin is not covered";
        snprintf(rep->why, sizeof rep->why,
                 "%s; of %zu candidates %d had a needle path through a tissue to avoid or outside "
                 "the grid, and %d of the %d simulated crossed a critical limit%s",
                 reason,
                 candidates, refused, crossed, evaluated,
                 C->lev[LEV_FINE].impossible ? "; moreover the target is too close to the grid "
                                               "face for the margin to be verified"
                                             : "");
    }
    if (chosen >= 0 && ch[chosen].pass) {
        /* several verified (count [a, b]): the chosen one keeps its plan_nK name, which
         * plan.json and the command's scenario line give (docs/PLANNING.md) */
        rep->found = true;
    }
    /* robustness of a plan that does not pass would only say 0 */
    if (chosen >= 0 && ch[chosen].pass && (st = robustness(C, &ch[chosen], &R, err))) goto done;
    if (chosen >= 0) {
        rep->n_applicators = ch[chosen].fine.n;
        rep->power_W = ch[chosen].fine.g.power_W;
        rep->duration_s = ch[chosen].duration_s;
        rep->min_margin_mm = ch[chosen].min_margin_mm;
        rep->margin_pass = ch[chosen].margin_pass;
        rep->limits_ok = ch[chosen].limits_ok;
        snprintf(rep->plan_yaml, sizeof rep->plan_yaml, "%s", ch[chosen].yaml);
    }
    rep->p_pass = R.p;
    rep->p_pass_lo = R.lo;
    rep->p_pass_hi = R.hi;
    rep->robustness_samples = R.samples;
    rep->evaluations = C->nevals;
    rep->cached = C->ncached;
    rep->wall_s = omp_get_wtime() - C->t0;
    st = write_summary(C, ch, nch, chosen, &R, rep, err);

done:
    if (C->journal && fclose(C->journal) != 0 && !st)
        st = abl_fail(err, ABL_EIO, "%s/journal.csv: closing failed (%s)", C->out_dir,
                      strerror(errno));
    C->journal = NULL;
    if (C->journal_errno && !st)
        st = abl_fail(err, ABL_EIO,
                      "%s/journal.csv: appending an evaluation failed (%s); the plan is not "
                      "written (the journal keeps the evaluations before the failure)",
                      C->out_dir, strerror(C->journal_errno));
    if (!st && undo.active) {
        const int e = undo_end(&undo);
        if (e)
            st = abl_fail(err, ABL_EIO, "%s: cannot remove the undo log (%s)", undo_log,
                          strerror(e));
    }
    if (st == ABL_ESTOPPED) {
        /* said before the restore, which adds its own failure to this message */
        char jfail[200] = "";
        if (C->journal_errno)
            snprintf(jfail, sizeof jfail,
                     " up to the append that failed (%s); the evaluations after it are lost",
                     strerror(C->journal_errno));
        abl_fail(err, st,
                 "stopped on request after %d forward evaluation(s) in this run; %s/journal.csv "
                 "keeps the finished ones%s, and the same command continues from them; no plan "
                 "file was written%s",
                 C->nevals, C->out_dir, jfail,
                 undo.active ? " (the earlier plan files are put back)" : "");
    }
    if (st && undo.active) plan_restore(C, &undo, err);
    undo_free(&undo);
    fg_unlock(lock);
    for (int l = 0; l < 2; l++) {
        free(C->lev[l].S);
        free(C->lev[l].V);
        for (int c = 0; c < ABL_MARGIN_MAX_CRITICAL; c++) free(C->lev[l].crit_idx[c]);
    }
    scenario_free(C->base_sc);
    free(C->avoid);
    free(C->cache);
    free(C->all);
    plan_spec_free(P);
    free(P);
    free(C);
    free(ch);
    return st;
}
