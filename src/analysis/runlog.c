/* runlog.c - probes, zone growth curves and source power recorded during a run (runlog.h). */
#include "ablasim/runlog.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* ---- probes ------------------------------------------------------------------------------- */

double probe_value(const abl_probe *p, const double *T)
{
    double v = 0.0;
    for (int q = 0; q < 8; q++)
        v += p->w[q] * T[p->idx[q]];
    return v;
}

/* Trilinear stencil of the point x_m; false when x_m lies outside the voxel-centre hull. */
static bool probe_setup(const abl_grid *g, const double x_m[3], abl_probe *p)
{
    const int n[3] = {g->nx, g->ny, g->nz};
    int i0[3], i1[3];
    double f[3];
    for (int a = 0; a < 3; a++) {
        double u = (x_m[a] - g->origin_m[a]) / g->h_m[a];
        /* mm -> m and back leaves ~1e-16 relative noise: a point given on a centre or on the
         * hull's face is taken as exactly there */
        const double r = nearbyint(u);
        if (fabs(u - r) < 1e-9) u = r;
        if (!(u >= 0.0 && u <= (double)(n[a] - 1))) return false;
        i0[a] = (int)floor(u);
        if (i0[a] > n[a] - 2) i0[a] = n[a] > 1 ? n[a] - 2 : 0;
        f[a] = u - i0[a];
        i1[a] = n[a] > 1 ? i0[a] + 1 : i0[a];
    }
    for (int q = 0; q < 8; q++) {
        const int bx = q & 1, by = (q >> 1) & 1, bz = (q >> 2) & 1;
        p->idx[q] = ABL_IDX(g, bx ? i1[0] : i0[0], by ? i1[1] : i0[1], bz ? i1[2] : i0[2]);
        p->w[q] = (bx ? f[0] : 1.0 - f[0]) * (by ? f[1] : 1.0 - f[1]) * (bz ? f[2] : 1.0 - f[2]);
    }
    memcpy(p->pos_m, x_m, sizeof p->pos_m);
    return true;
}

static abl_status outside_hull(const abl_grid *g, const char *where, const double x_m[3],
                               abl_error *err)
{
    double hi[3];
    for (int a = 0; a < 3; a++)
        hi[a] = g->origin_m[a] + ((a == 0 ? g->nx : a == 1 ? g->ny : g->nz) - 1) * g->h_m[a];
    return abl_fail(err, ABL_EINVAL,
                    "%s = [%g, %g, %g] mm lies outside the grid's voxel centres (x %g..%g, "
                    "y %g..%g, z %g..%g mm): a probe is interpolated between the 8 voxel "
                    "centres around it, so it must lie within them",
                    where, x_m[0] * 1e3, x_m[1] * 1e3, x_m[2] * 1e3, g->origin_m[0] * 1e3,
                    hi[0] * 1e3, g->origin_m[1] * 1e3, hi[1] * 1e3, g->origin_m[2] * 1e3,
                    hi[2] * 1e3);
}

/* A name usable as an HDF5 link and JSON key (as output.c's source group names). */
static void safe_copy(char *out, size_t len, const char *in)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p && n + 1 < len; p++) {
        const int ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                       (*p >= '0' && *p <= '9') || strchr("-.=_+", *p);
        out[n++] = ok ? (char)*p : '_';
    }
    out[n] = '\0';
}

static bool name_taken(const abl_runlog *log, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(log->probes[i].name, name)) return true;
    return !strcmp(name, "time_s");
}

/* ---- criteria ----------------------------------------------------------------------------- */

const double *runlog_criterion(const abl_sim_view *s, int c, double *thr, bool *at_or_above,
                               int *kind, int *index)
{
    const abl_scenario *sc = s->sc;
    if (c < sc->n_hot) {
        *thr = sc->hot_C[c];
        *at_or_above = true;
        *kind = 0;
        *index = c;
        return s->T_max;
    }
    if (c < sc->n_hot + sc->n_cold) {
        *thr = sc->cold_C[c - sc->n_hot];
        *at_or_above = false;
        *kind = 1;
        *index = c - sc->n_hot;
        return s->T_min;
    }
    *thr = 1.0;
    *at_or_above = true;
    *kind = 2;
    *index = 0;
    return s->omega;
}

abl_status runlog_measure(const abl_sim_view *s, const abl_log_axis *axes, int naxes, bool bbox,
                          abl_axis_zone *z, long *nvox, long *largest, abl_zone_scratch *w,
                          abl_error *err)
{
    const int ncrit = s->sc->n_hot + s->sc->n_cold + 1;
    const abl_grid *g = &s->grid;
    const abl_scenario *sc = s->sc;
    /* Outer boxes: the zones of one kind are nested (T_max >= 60 lies inside T_max >= 50), so
     * the loosest threshold's box holds them all; one pass over the grid per kind. */
    abl_box outer[3];
    bool have[3] = {false, false, false};
    if (bbox) {
        double lo_hot = INFINITY, hi_cold = -INFINITY;
        for (int h = 0; h < sc->n_hot; h++)
            lo_hot = fmin(lo_hot, sc->hot_C[h]);
        for (int h = 0; h < sc->n_cold; h++)
            hi_cold = fmax(hi_cold, sc->cold_C[h]);
        if (sc->n_hot) zone_bbox(g, s->T_max, lo_hot, true, NULL, &outer[0]);
        if (sc->n_cold) zone_bbox(g, s->T_min, hi_cold, false, NULL, &outer[1]);
        zone_bbox(g, s->omega, 1.0, true, NULL, &outer[2]);
        have[0] = have[1] = have[2] = true;
    }
    /* the axes as zone_axes_measure_box takes them, and its results per criterion */
    double(*tip)[3] = malloc((size_t)(naxes ? naxes : 1) * sizeof *tip);
    double(*dir)[3] = malloc((size_t)(naxes ? naxes : 1) * sizeof *dir);
    abl_axis_zone *za = malloc((size_t)(naxes ? naxes : 1) * sizeof *za);
    if (!tip || !dir || !za) {
        free(tip), free(dir), free(za);
        return abl_fail(err, ABL_ENOMEM, "out of memory for the zone measures");
    }
    for (int a = 0; a < naxes; a++)
        for (int d = 0; d < 3; d++) tip[a][d] = axes[a].ax.tip_m[d], dir[a][d] = axes[a].ax.dir[d];
    abl_status st = ABL_OK;
    for (int c = 0; c < ncrit && !st; c++) {
        double thr;
        bool above;
        int kind, idx;
        const double *f = runlog_criterion(s, c, &thr, &above, &kind, &idx);
        abl_box box = zone_grid_box(g);
        if (have[kind] && zone_bbox(g, f, thr, above, &outer[kind], &box) == 0)
            box = (abl_box){{0, 0, 0}, {0, 0, 0}};
        st = zone_largest_component(g, f, thr, above, &box, &largest[c], &nvox[c], w, err);
        if (st) break;
        /* every axis in one scan of the zone */
        zone_axes_measure_box(g, f, thr, above, &box, naxes, (const double(*)[3])tip,
                              (const double(*)[3])dir, za);
        for (int a = 0; a < naxes; a++) z[(size_t)a * (size_t)ncrit + c] = za[a];
    }
    free(tip);
    free(dir);
    free(za);
    return st;
}

/* ---- records ------------------------------------------------------------------------------ */

static abl_status resize(void **p, size_t n, size_t each, abl_error *err)
{
    void *q = realloc(*p, (n ? n : 1) * (each ? each : 1));
    if (!q) return abl_fail(err, ABL_ENOMEM, "out of memory for the run's probe and zone records");
    *p = q;
    return ABL_OK;
}

/* Room for need probe/power samples (all arrays indexed by sample grow together). */
static abl_status ensure_t(abl_runlog *log, size_t need, abl_error *err)
{
    if (need <= log->cap_t) return ABL_OK;
    size_t nc = log->cap_t ? log->cap_t : 64;
    while (nc < need)
        nc *= 2;
    abl_status st;
    if ((st = resize((void **)&log->t_s, nc, sizeof *log->t_s, err)) ||
        (st = resize((void **)&log->T_C, nc, sizeof *log->T_C * (size_t)log->nprobes, err)) ||
        (st = resize((void **)&log->src_P_W, nc, sizeof *log->src_P_W * (size_t)log->nsrc, err)))
        return st;
    log->cap_t = nc;
    return ABL_OK;
}

/* Room for need growth samples. */
static abl_status ensure_g(abl_runlog *log, size_t need, abl_error *err)
{
    if (need <= log->cap_g) return ABL_OK;
    size_t nc = log->cap_g ? log->cap_g : 64;
    while (nc < need)
        nc *= 2;
    const size_t c = (size_t)log->ncrit;
    abl_status st;
    if ((st = resize((void **)&log->g_t_s, nc, sizeof *log->g_t_s, err)) ||
        (st = resize((void **)&log->g_nvox, nc, sizeof *log->g_nvox * c, err)) ||
        (st = resize((void **)&log->g_largest, nc, sizeof *log->g_largest * c, err)) ||
        (st = resize((void **)&log->g_zone, nc, sizeof *log->g_zone * c * (size_t)log->naxes, err)))
        return st;
    log->cap_g = nc;
    return ABL_OK;
}

/* Integral of a piecewise-linear schedule (held at its end values outside) over [a, b]. */
static double schedule_integral(const abl_schedule *sch, double a, double b)
{
    if (!(b > a) || sch->n <= 0) return 0.0;
    const int n = sch->n;
    const double *t = sch->t_s, *v = sch->v;
    double e = 0.0;
    if (a < t[0]) e += v[0] * (fmin(b, t[0]) - a);
    for (int i = 0; i + 1 < n; i++) {
        const double lo = fmax(a, t[i]), hi = fmin(b, t[i + 1]);
        if (!(hi > lo) || !(t[i + 1] > t[i])) continue;
        const double slope = (v[i + 1] - v[i]) / (t[i + 1] - t[i]);
        e += 0.5 * ((v[i] + slope * (lo - t[i])) + (v[i] + slope * (hi - t[i]))) * (hi - lo);
    }
    if (b > t[n - 1]) e += v[n - 1] * (b - fmax(a, t[n - 1]));
    return e;
}

static abl_status sample_probes(abl_runlog *log, const abl_sim_view *s, abl_error *err)
{
    const size_t k = log->nt;
    abl_status st = ensure_t(log, k + 1, err);
    if (st) return st;
    const double t = s->t_s;
    log->t_s[k] = t;
    for (int p = 0; p < log->nprobes; p++)
        log->T_C[k * (size_t)log->nprobes + (size_t)p] = probe_value(&log->probes[p], s->T);
    double *P = log->src_P_W + k * (size_t)log->nsrc;
    const double E = s->energy.E_sources_J;
    if (k == 0) {
        for (int i = 0; i < log->nsrc; i++)
            P[i] = NAN;
    } else {
        /* attribute the source heat of the interval (runlog.h) */
        const double t0 = log->t_s[k - 1], dt = t - t0, dE = E - log->E_sources_prev_J;
        const abl_scenario *sc = s->sc;
        int unknown = s->n_extra_pin > 0, last_unknown = -1;
        double known = 0.0;
        for (int i = 0; i < log->nsrc; i++) {
            const abl_source_cfg *c = &sc->sources[i];
            if (c->type == SRC_VOLUMETRIC && log->nsrc > 1) {
                const double e =
                    schedule_integral(&c->schedule, fmax(t0, c->on_s), fmin(t, c->off_s));
                P[i] = e / dt;
                log->src_E_J[i] += e;
                known += e;
            } else {
                unknown++;
                last_unknown = i;
            }
        }
        for (int i = 0; i < log->nsrc; i++) {
            const abl_source_cfg *c = &sc->sources[i];
            if (c->type == SRC_VOLUMETRIC && log->nsrc > 1) continue;
            const double e = unknown == 1 && i == last_unknown ? dE - known : NAN;
            P[i] = e / dt;
            log->src_E_J[i] += e;
        }
    }
    log->E_sources_prev_J = E;
    log->nt = k + 1;
    return ABL_OK;
}

static abl_status sample_zones(abl_runlog *log, const abl_sim_view *s, abl_error *err)
{
    const size_t k = log->ng, nc = (size_t)log->ncrit;
    abl_status st = ensure_g(log, k + 1, err);
    if (st) return st;
    st = runlog_measure(s, log->axes, log->naxes, true, log->g_zone + k * nc * (size_t)log->naxes,
                        log->g_nvox + k * nc, log->g_largest + k * nc, &log->scratch, err);
    if (st) return st;
    log->g_t_s[k] = s->t_s;
    log->ng = k + 1;
    return ABL_OK;
}

/* Whether a sample at t is due after one at last, for a cadence of every [s]: at the first
 * pass after each multiple of every (so the samples keep the cadence on average even when the
 * monitor passes do not fall on its multiples), at every pass when every is 0. */
static bool due(double t, double last, double every)
{
    if (!(t > last)) return false;
    if (!(every > 0.0) || !isfinite(last)) return true;
    return floor(t / every + 1e-9) > floor(last / every + 1e-9);
}

abl_status runlog_sample(abl_runlog *log, const abl_sim_view *s, abl_error *err)
{
    if (!log) return ABL_OK;
    const abl_scenario *sc = s->sc;
    const double t = s->t_s;
    /* the last step of the run: with step-aligned time the run lands on duration_s (the last
     * step is shortened); "within half a step" of it, the rule from before, took a step before
     * a short last one for the end and then sampled the end again, rows 0.04-0.45 s apart (QA,
     * session 29) */
    const bool end = t >= sc->duration_s - 1e-9 * fmax(1.0, sc->duration_s);
    abl_status st;
    const double last = log->nt ? log->t_s[log->nt - 1] : -INFINITY;
    if ((due(t, last, sc->monitor_interval_s) || (end && t > last)) &&
        (st = sample_probes(log, s, err)))
        return st;
    const double last_g = log->ng ? log->g_t_s[log->ng - 1] : -INFINITY;
    const double every_g = fmax(sc->growth_interval_s, sc->monitor_interval_s);
    if ((due(t, last_g, every_g) || (end && t > last_g)) && (st = sample_zones(log, s, err)))
        return st;
    return ABL_OK;
}

abl_status runlog_restart(abl_runlog *log, const abl_sim_view *s, abl_error *err)
{
    if (!log) return ABL_OK;
    log->nt = 0;
    log->ng = 0;
    log->history_from_s = s->t_s;
    for (int i = 0; i < log->nsrc; i++)
        log->src_E_J[i] = 0.0;
    log->E_sources_prev_J = s->energy.E_sources_J;
    abl_status st = sample_probes(log, s, err);
    return st ? st : sample_zones(log, s, err);
}

/* ---- create / free ------------------------------------------------------------------------ */

void runlog_free(abl_runlog *log)
{
    if (!log) return;
    free(log->probes);
    free(log->t_s);
    free(log->T_C);
    free(log->src_E_J);
    free(log->src_P_W);
    free(log->axes);
    free(log->g_t_s);
    free(log->g_nvox);
    free(log->g_largest);
    free(log->g_zone);
    zone_scratch_free(&log->scratch);
    free(log);
}

abl_status runlog_axes(const abl_sim_view *s, abl_log_axis **out, int *n, abl_error *err)
{
    *out = NULL;
    *n = 0;
    abl_source_axis ax[RUNLOG_MAX_AXES_PER_SOURCE];
    int cap = 0;
    for (int i = 0; i < s->nsources; i++) {
        const abl_source *src = s->sources[i];
        int na = src->ops->axes ? src->ops->axes(src, ax, RUNLOG_MAX_AXES_PER_SOURCE) : 0;
        if (na > RUNLOG_MAX_AXES_PER_SOURCE) na = RUNLOG_MAX_AXES_PER_SOURCE;
        if (na > 0) cap += na + (na > 1);
    }
    abl_log_axis *axes = calloc(cap ? (size_t)cap : 1, sizeof *axes);
    if (!axes) return abl_fail(err, ABL_ENOMEM, "out of memory");
    int m = 0;
    for (int i = 0; i < s->nsources; i++) {
        const abl_source *src = s->sources[i];
        int na = src->ops->axes ? src->ops->axes(src, ax, RUNLOG_MAX_AXES_PER_SOURCE) : 0;
        if (na > RUNLOG_MAX_AXES_PER_SOURCE) na = RUNLOG_MAX_AXES_PER_SOURCE;
        double tip[3] = {0, 0, 0}, dir[3] = {0, 0, 0};
        for (int a = 0; a < na; a++) {
            axes[m++] = (abl_log_axis){i, a, na, ax[a]};
            const double nd = sqrt(ax[a].dir[0] * ax[a].dir[0] + ax[a].dir[1] * ax[a].dir[1] +
                                   ax[a].dir[2] * ax[a].dir[2]);
            for (int q = 0; q < 3; q++) {
                tip[q] += ax[a].tip_m[q] / na;
                dir[q] += nd > 0 ? ax[a].dir[q] / nd : 0.0;
            }
        }
        const double nd = sqrt(dir[0] * dir[0] + dir[1] * dir[1] + dir[2] * dir[2]);
        /* the cluster axis: mean tip, mean direction (undefined when the directions cancel,
         * e.g. two probes facing each other: then left out) */
        if (na > 1 && nd > 1e-6 * na) {
            abl_log_axis c = {i, -1, na, {{0}, {0}}};
            for (int q = 0; q < 3; q++) {
                c.ax.tip_m[q] = tip[q];
                c.ax.dir[q] = dir[q] / nd;
            }
            axes[m++] = c;
        }
    }
    *out = axes;
    *n = m;
    return ABL_OK;
}

static abl_status build_probes(abl_runlog *log, const abl_sim_view *s, abl_error *err)
{
    const abl_scenario *sc = s->sc;
    const int ntip = sc->tip_probes ? log->naxes : 0;
    const int cap = sc->nprobe_points + ntip;
    log->probes = calloc(cap ? (size_t)cap : 1, sizeof *log->probes);
    if (!log->probes) return abl_fail(err, ABL_ENOMEM, "out of memory");
    for (int i = 0; i < sc->nprobes; i++) {
        const abl_probe_cfg *pc = &sc->probes[i];
        /* the hull is convex: a line lies inside when both its ends do */
        abl_probe tmp;
        if (!probe_setup(&s->grid, pc->a_m, &tmp))
            return outside_hull(&s->grid, pc->where_a, pc->a_m, err);
        if (pc->line && !probe_setup(&s->grid, pc->b_m, &tmp))
            return outside_hull(&s->grid, pc->where_b, pc->b_m, err);
        for (int q = 0; q < pc->npoints; q++) {
            abl_probe *p = &log->probes[log->nprobes];
            double x[3];
            const double f = pc->npoints > 1 ? (double)q / (pc->npoints - 1) : 0.0;
            for (int a = 0; a < 3; a++)
                x[a] = (1.0 - f) * pc->a_m[a] + f * pc->b_m[a];
            if (!probe_setup(&s->grid, x, p)) /* only rounding can get here: ends are inside */
                return outside_hull(&s->grid, pc->where_a, x, err);
            if (pc->line)
                snprintf(p->name, sizeof p->name, "%s_%d", pc->name, q);
            else
                snprintf(p->name, sizeof p->name, "%s", pc->name);
            p->source = -1;
            log->nprobes++;
        }
    }
    const int n_user = log->nprobes;
    for (int a = 0; a < ntip; a++) {
        const abl_log_axis *ax = &log->axes[a];
        if (ax->axis < 0) continue; /* a cluster axis has no tip of its own */
        abl_probe *p = &log->probes[log->nprobes];
        if (!probe_setup(&s->grid, ax->ax.tip_m, p)) continue; /* tip outside the hull */
        /* the whole source name (at most 63 characters, scenario.c): "<63>_15_tip_16" fits
         * in the 96 bytes. Two sources' tip probes can meet ("a_1" with one axis, "a" with
         * several): "_2", ... */
        char base[64], nm[80];
        safe_copy(base, sizeof base, s->sources[ax->source]->name);
        if (ax->source_axes > 1)
            snprintf(nm, sizeof nm, "%s_%d_tip", base, ax->axis);
        else
            snprintf(nm, sizeof nm, "%s_tip", base);
        /* A user probe of this name pushed the tip probe to "<name>_2" without a word, and a
         * script reading /probes/<source>_tip got the user's point (adversarial test, session
         * 28): refused, before anything is written */
        if (name_taken(log, n_user, nm))
            return abl_fail(err, ABL_EINVAL,
                            "%s: output.probes: the probe name '%s' is also the name of the "
                            "probe this run puts at the applicator tip of source '%s' "
                            "(output.tip_probes); rename the probe or set output.tip_probes: "
                            "false",
                            s->sc->path, nm, s->sources[ax->source]->name);
        snprintf(p->name, sizeof p->name, "%s", nm);
        for (int k = 2; name_taken(log, log->nprobes, p->name); k++)
            snprintf(p->name, sizeof p->name, "%s_%d", nm, k);
        p->source = ax->source;
        log->nprobes++;
    }
    return ABL_OK;
}

abl_status runlog_create(const abl_sim_view *s, abl_runlog **out, abl_error *err)
{
    *out = NULL;
    abl_runlog *log = calloc(1, sizeof *log);
    if (!log) return abl_fail(err, ABL_ENOMEM, "out of memory");
    const abl_scenario *sc = s->sc;
    log->ncrit = sc->n_hot + sc->n_cold + 1;
    log->nsrc = s->nsources;
    log->src_E_J = calloc(log->nsrc ? (size_t)log->nsrc : 1, sizeof *log->src_E_J);
    abl_status st = log->src_E_J ? ABL_OK : abl_fail(err, ABL_ENOMEM, "out of memory");
    if (!st) st = runlog_axes(s, &log->axes, &log->naxes, err);
    if (!st) st = build_probes(log, s, err);
    log->E_sources_prev_J = s->energy.E_sources_J;
    if (!st) st = sample_probes(log, s, err);
    if (!st) st = sample_zones(log, s, err);
    if (st) {
        runlog_free(log);
        return st;
    }
    *out = log;
    return ABL_OK;
}

/* ---- checkpoint --------------------------------------------------------------------------- */

/* One walk for both directions, so that saving and loading cannot disagree on the layout. It
 * reads the records from log; when loading (b->mode == ABL_BLOB_LOAD) it writes them into into,
 * the same log, which NULL otherwise: counting and saving take a const log. Scalars travel through
 * locals; the arrays are reached through log's pointers (reallocated through into first). */
static abl_status state_walk(const abl_runlog *log, abl_runlog *into, abl_blob *b,
                             abl_error *err)
{
    long long shape[4] = {log->nprobes, log->nsrc, log->naxes, log->ncrit}, want[4];
    memcpy(want, shape, sizeof want);
    abl_blob_io(b, shape, sizeof shape);
    if (b->mode == ABL_BLOB_LOAD && !b->bad && memcmp(shape, want, sizeof shape))
        return abl_fail(err, ABL_EINVAL,
                        "run log in the checkpoint: %lld probes, %lld sources, %lld zone axes, "
                        "%lld zone criteria; the scenario has %lld, %lld, %lld, %lld",
                        shape[0], shape[1], shape[2], shape[3], want[0], want[1], want[2], want[3]);
    size_t nt = log->nt, ng = log->ng;
    abl_blob_io(b, &nt, sizeof nt);
    abl_blob_io(b, &ng, sizeof ng);
    if (b->mode == ABL_BLOB_LOAD && !b->bad) {
        /* counts the blob cannot hold mark it bad instead of allocating for them */
        const size_t left = b->len - b->pos;
        if (nt > left / sizeof(double) || ng > left / sizeof(double)) b->bad = true;
        abl_status st;
        if (!b->bad && ((st = ensure_t(into, nt, err)) || (st = ensure_g(into, ng, err))))
            return st;
        if (b->bad) return abl_fail(err, ABL_EINVAL, "run log in the checkpoint: truncated");
        into->nt = nt;
        into->ng = ng;
    }
    const size_t nc = (size_t)log->ncrit;
    double E_prev = log->E_sources_prev_J, from_s = log->history_from_s;
    abl_blob_io(b, log->t_s, log->nt * sizeof *log->t_s);
    abl_blob_io(b, log->T_C, log->nt * (size_t)log->nprobes * sizeof *log->T_C);
    abl_blob_io(b, log->src_P_W, log->nt * (size_t)log->nsrc * sizeof *log->src_P_W);
    abl_blob_io(b, log->src_E_J, (size_t)log->nsrc * sizeof *log->src_E_J);
    abl_blob_io(b, &E_prev, sizeof E_prev);
    abl_blob_io(b, log->g_t_s, log->ng * sizeof *log->g_t_s);
    abl_blob_io(b, log->g_nvox, log->ng * nc * sizeof *log->g_nvox);
    abl_blob_io(b, log->g_largest, log->ng * nc * sizeof *log->g_largest);
    abl_blob_io(b, log->g_zone, log->ng * nc * (size_t)log->naxes * sizeof *log->g_zone);
    abl_blob_io(b, &from_s, sizeof from_s);
    if (b->bad) return abl_fail(err, ABL_EINVAL, "run log in the checkpoint: truncated");
    if (b->mode == ABL_BLOB_LOAD) {
        into->E_sources_prev_J = E_prev;
        into->history_from_s = from_s;
        into->restored = true;
    }
    return ABL_OK;
}

abl_status runlog_state_save(const abl_runlog *log, abl_blob *b, abl_error *err)
{
    if (b->mode == ABL_BLOB_LOAD)
        return abl_fail(err, ABL_EINTERNAL, "runlog_state_save called to load");
    return state_walk(log, NULL, b, err);
}

abl_status runlog_state_io(abl_runlog *log, abl_blob *b, abl_error *err)
{
    return state_walk(log, log, b, err);
}
