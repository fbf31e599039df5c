/* margin.c - ablation-zone criteria, minimal ablative margin, critical structures (margin.h).
 *
 * Pure functions on arrays: no I/O, no globals. Reductions are integer counts, or (value,
 * index) minima with the index as tie-break, so every result is independent of the number of
 * OpenMP threads. Definitions and their clinical reading: docs/MARGIN.md.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ablasim/grid.h"
#include "ablasim/h5_schema.h"
#include "ablasim/margin.h"

/* ---- criteria ---------------------------------------------------------------------------- */

/* Dataset names from h5_schema.h; results written before the damage maps existed (ablasim
 * older than the Arrhenius/CEM43 commit) lack H5_OMEGA and H5_CEM43. */
static const abl_zone_criterion_info criteria[ABL_ZONE_NCRIT] = {
    {"tmax", H5_T_MAX, "T_max", "degC", true, 55.0},
    {"tmin", H5_T_MIN, "T_min", "degC", false, -40.0},
    {"omega", H5_OMEGA, "Omega", "1", true, 1.0},
    {"cem43", H5_CEM43, "CEM43", "min", true, 240.0},
};

const abl_zone_criterion_info *zone_criterion_info(abl_zone_criterion c)
{
    return (unsigned)c < ABL_ZONE_NCRIT ? &criteria[c] : NULL;
}

abl_status zone_criterion_parse(const char *key, abl_zone_criterion *c, abl_error *err)
{
    for (int i = 0; i < ABL_ZONE_NCRIT; i++)
        if (key && !strcmp(key, criteria[i].key)) {
            *c = (abl_zone_criterion)i;
            return ABL_OK;
        }
    return abl_fail(err, ABL_EINVAL,
                    "unknown zone criterion '%s' (allowed: tmax, tmin, omega, "
                    "cem43)",
                    key ? key : "");
}

size_t zone_mask_compute(abl_zone_criterion c, const double *field, size_t n, double threshold,
                         uint8_t *mask)
{
    const bool ge = criteria[c].at_or_above;
    size_t count = 0;
#pragma omp parallel for schedule(static) reduction(+ : count)
    for (size_t i = 0; i < n; i++) {
        /* Non-finite values (a run that faulted) are never in the zone: NaN compares false
         * both ways, and +Inf (-Inf) would otherwise count as ablated by heat (cold). */
        const double v = field[i];
        const uint8_t in = isfinite(v) && (ge ? v >= threshold : v <= threshold);
        mask[i] = in;
        count += in;
    }
    return count;
}

/* ---- margin ------------------------------------------------------------------------------ */

void margin_affine_from_grid(const double spacing_mm[3], const double origin_mm[3],
                             double affine[3][4])
{
    for (int r = 0; r < 3; r++) {
        for (int c = 0; c < 3; c++)
            affine[r][c] = r == c ? spacing_mm[r] : 0.0;
        affine[r][3] = origin_mm[r];
    }
}

void margin_result_free(abl_margin_result *r)
{
    if (!r) return;
    free(r->margin_mm);
    free(r->shell);
    free(r->surface_ijk);
    free(r->surface_margin_mm);
    r->margin_mm = NULL;
    r->shell = NULL;
    r->surface_ijk = NULL;
    r->surface_margin_mm = NULL;
}

/* Smallest (value, index) pair: the value, then the lowest index on ties. */
typedef struct {
    double v;
    size_t i;
} vmin;

static void vmin_merge(vmin *a, vmin b)
{
    if (b.v < a->v || (b.v == a->v && b.i < a->i)) *a = b;
}

/* Is tumour voxel (i,j,k) on the surface: a 6-neighbour outside the tumour or the grid? */
static bool on_surface(const uint8_t *t, const int d[3], int i, int j, int k, size_t c)
{
    const size_t sy = (size_t)d[0], sz = (size_t)d[0] * (size_t)d[1];
    return i == 0 || i == d[0] - 1 || j == 0 || j == d[1] - 1 || k == 0 || k == d[2] - 1 ||
           !t[c - 1] || !t[c + 1] || !t[c - sy] || !t[c + sy] || !t[c - sz] || !t[c + sz];
}

bool margin_mask_on_faces(const uint8_t *m, const int d[3])
{
    const int nx = d[0], ny = d[1], nz = d[2];
    bool hit = false;
#pragma omp parallel for schedule(static) reduction(|| : hit)
    for (int k = 0; k < nz; k++) {
        for (int j = 0; j < ny; j++) {
            const uint8_t *row = m + ((size_t)k * ny + (size_t)j) * nx;
            if (k == 0 || k == nz - 1 || j == 0 || j == ny - 1) {
                for (int i = 0; i < nx; i++)
                    hit = hit || row[i];
            } else {
                hit = hit || row[0] || row[nx - 1];
            }
        }
    }
    return hit;
}

static abl_status check_input(const abl_margin_input *in, size_t *n, abl_error *err)
{
    *n = 1;
    for (int a = 0; a < 3; a++) {
        if (in->dims[a] < 1)
            return abl_fail(err, ABL_EINVAL,
                            "margin: grid %d x %d x %d must have every "
                            "dimension >= 1",
                            in->dims[0], in->dims[1], in->dims[2]);
        *n *= (size_t)in->dims[a];
        if (*n > ABL_GRID_MAX_VOXELS)
            return abl_fail(err, ABL_EINVAL, "margin: grid %d x %d x %d has more than %zu voxels",
                            in->dims[0], in->dims[1], in->dims[2], (size_t)ABL_GRID_MAX_VOXELS);
        if (!isfinite(in->spacing_mm[a]) || !(in->spacing_mm[a] > 0))
            return abl_fail(err, ABL_EINVAL,
                            "margin: spacing %g x %g x %g mm: each must be "
                            "finite and > 0",
                            in->spacing_mm[0], in->spacing_mm[1], in->spacing_mm[2]);
    }
    if (!isfinite(in->criterion_mm) || in->criterion_mm < 0)
        return abl_fail(err, ABL_EINVAL, "margin: criterion %g mm must be finite and >= 0",
                        in->criterion_mm);
    if (!in->tumour || !in->zone) return abl_fail(err, ABL_EINVAL, "margin: no mask given");
    return ABL_OK;
}

/* Surface voxels of the tumour, in increasing index order: a count per z-plane, a prefix sum,
 * then every plane fills its own range. surf[c] = 1 marks them for the margin passes. */
static abl_status collect_surface(const abl_margin_input *in, abl_margin_result *r, uint8_t *surf,
                                  abl_error *err)
{
    const int *d = in->dims;
    const int nx = d[0], ny = d[1], nz = d[2];
    const uint8_t *t = in->tumour;
    size_t *first = calloc((size_t)nz + 1, sizeof *first);
    if (!first) return abl_fail(err, ABL_ENOMEM, "margin: out of memory");
#pragma omp parallel for schedule(static)
    for (int k = 0; k < nz; k++) {
        size_t cnt = 0;
        for (int j = 0; j < ny; j++) {
            size_t c = ((size_t)k * ny + (size_t)j) * nx;
            for (int i = 0; i < nx; i++, c++) {
                const uint8_t s = t[c] && on_surface(t, d, i, j, k, c);
                surf[c] = s;
                cnt += s;
            }
        }
        first[k + 1] = cnt;
    }
    for (int k = 0; k < nz; k++)
        first[k + 1] += first[k];
    r->n_surface = first[nz];
    const size_t ns = r->n_surface ? r->n_surface : 1;
    r->surface_ijk = malloc(ns * 3 * sizeof *r->surface_ijk);
    r->surface_margin_mm = malloc(ns * sizeof *r->surface_margin_mm);
    if (!r->surface_ijk || !r->surface_margin_mm) {
        free(first);
        return abl_fail(err, ABL_ENOMEM, "margin: out of memory for %zu surface voxels",
                        r->n_surface);
    }
#pragma omp parallel for schedule(static)
    for (int k = 0; k < nz; k++) {
        size_t at = first[k];
        for (int j = 0; j < ny; j++) {
            size_t c = ((size_t)k * ny + (size_t)j) * nx;
            for (int i = 0; i < nx; i++, c++) {
                if (!surf[c]) continue;
                r->surface_ijk[3 * at] = i;
                r->surface_ijk[3 * at + 1] = j;
                r->surface_ijk[3 * at + 2] = k;
                at++;
            }
        }
    }
    free(first);
    return ABL_OK;
}

/* Signed margins of one class of tumour voxels (ablated: sign +1 from the distance to the
 * nearest non-ablated voxel; not ablated: sign -1 from the distance to the nearest ablated
 * one). Fills M for that class, counts surface voxels meeting the criterion, returns the
 * (value, index) minimum over the class. */
static vmin signed_pass(const abl_margin_input *in, size_t n, const double *D, bool ablated,
                        const uint8_t *surf, float *M, size_t *n_surface_ok)
{
    const uint8_t *t = in->tumour, *z = in->zone;
    const double sign = ablated ? 1.0 : -1.0;
    const double crit = in->criterion_mm + ABL_MARGIN_TIE_MM;
    vmin best = {INFINITY, (size_t)-1};
    size_t ok = 0;
#pragma omp parallel
    {
        vmin loc = {INFINITY, (size_t)-1};
#pragma omp for schedule(static) reduction(+ : ok) nowait
        for (size_t c = 0; c < n; c++) {
            if (!t[c] || (z[c] != 0) != ablated) continue;
            const double m = sign * D[c];
            M[c] = (float)m;
            if (m < loc.v || (m == loc.v && c < loc.i)) {
                loc.v = m;
                loc.i = c;
            }
            if (surf[c] && m > crit) ok++;
        }
#pragma omp critical(abl_margin_min)
        vmin_merge(&best, loc);
    }
    *n_surface_ok += ok;
    return best;
}

abl_status margin_compute(const abl_margin_input *in, abl_margin_result *r, abl_error *err)
{
    memset(r, 0, sizeof *r);
    size_t n;
    abl_status st = check_input(in, &n, err);
    if (st) return st;
    const int *d = in->dims;
    const double *h = in->spacing_mm;
    const uint8_t *t = in->tumour, *z = in->zone;
    r->n = n;
    r->criterion_mm = in->criterion_mm;
    r->voxel_mL = h[0] * h[1] * h[2] * 1e-3;
    r->resolution_mm = sqrt(h[0] * h[0] + h[1] * h[1] + h[2] * h[2]);

    size_t nt = 0, nzn = 0, nres = 0;
#pragma omp parallel for schedule(static) reduction(+ : nt, nzn, nres)
    for (size_t c = 0; c < n; c++) {
        nt += t[c] != 0;
        nzn += z[c] != 0;
        nres += t[c] && !z[c];
    }
    if (nt == 0) return abl_fail(err, ABL_EINVAL, "margin: the tumour mask is empty");
    r->n_tumour = nt;
    r->n_zone = nzn;
    r->n_residual = nres;

    double *D = malloc(n * sizeof *D);
    uint8_t *surf = malloc(n);
    r->margin_mm = malloc(n * sizeof *r->margin_mm);
    r->shell = malloc(n);
    if (!D || !surf || !r->margin_mm || !r->shell) {
        st = abl_fail(err, ABL_ENOMEM, "margin: out of memory for a %d x %d x %d grid", d[0], d[1],
                      d[2]);
        goto done;
    }
    st = collect_surface(in, r, surf, err);
    if (st) goto done;
    float *M = r->margin_mm;
#pragma omp parallel for schedule(static)
    for (size_t c = 0; c < n; c++)
        M[c] = NAN;

    /* Ablated tumour voxels: distance to the nearest non-ablated voxel; the world beyond the
     * grid counts as not ablated (conservative when the zone reaches a face). */
    vmin best = {INFINITY, (size_t)-1};
    if (nt > nres) {
        st = edt_compute(d, h, z, ABL_EDT_OUTSIDE_TARGET, D, err);
        if (st) goto done;
        best = signed_pass(in, n, D, true, surf, M, &r->n_surface_ok);
    }
    /* Tumour voxels left alive: minus the distance to the nearest ablated voxel (-inf when
     * nothing is ablated). Any of them is below every ablated one, so it holds the minimum. */
    if (nres > 0) {
        st = edt_compute(d, h, z, ABL_EDT_TO_NONZERO, D, err);
        if (st) goto done;
        best = signed_pass(in, n, D, false, surf, M, &r->n_surface_ok);
    }
    r->min_margin_mm = best.v;
    r->min_index = best.i;
    r->min_ijk[0] = (int)(best.i % (size_t)d[0]);
    r->min_ijk[1] = (int)(best.i / (size_t)d[0] % (size_t)d[1]);
    r->min_ijk[2] = (int)(best.i / ((size_t)d[0] * (size_t)d[1]));
    for (int a = 0; a < 3; a++)
        r->min_location_mm[a] = in->affine[a][0] * r->min_ijk[0] +
                                in->affine[a][1] * r->min_ijk[1] +
                                in->affine[a][2] * r->min_ijk[2] + in->affine[a][3];
    r->pass = r->min_margin_mm > in->criterion_mm + ABL_MARGIN_TIE_MM;

    for (size_t s = 0; s < r->n_surface; s++) {
        const int32_t *ijk = r->surface_ijk + 3 * s;
        r->surface_margin_mm[s] =
            M[((size_t)ijk[2] * (size_t)d[1] + (size_t)ijk[1]) * (size_t)d[0] + (size_t)ijk[0]];
    }

    /* Shell: non-tumour voxels within criterion_mm of the tumour. */
    st = edt_compute(d, h, t, ABL_EDT_TO_NONZERO, D, err);
    if (st) goto done;
    const double crit = in->criterion_mm + ABL_MARGIN_TIE_MM;
    size_t nsh = 0, nshu = 0;
    uint8_t *S = r->shell;
#pragma omp parallel for schedule(static) reduction(+ : nsh, nshu)
    for (size_t c = 0; c < n; c++) {
        uint8_t s = 0;
        if (!t[c] && D[c] <= crit) s = z[c] ? 1 : 2;
        S[c] = s;
        nsh += s != 0;
        nshu += s == 2;
    }
    r->n_shell = nsh;
    r->n_shell_unablated = nshu;

    r->tumour_mL = (double)nt * r->voxel_mL;
    r->zone_mL = (double)nzn * r->voxel_mL;
    r->residual_mL = (double)nres * r->voxel_mL;
    r->shell_mL = (double)nsh * r->voxel_mL;
    r->shell_unablated_mL = (double)nshu * r->voxel_mL;
    r->surface_fraction_ok = r->n_surface ? (double)r->n_surface_ok / (double)r->n_surface : 0.0;
    r->zone_touches_border = margin_mask_on_faces(z, d);
    r->tumour_touches_border = margin_mask_on_faces(t, d);
done:
    free(D);
    free(surf);
    if (st) margin_result_free(r);
    return st;
}

/* ---- critical structures ----------------------------------------------------------------- */

static bool valid_name(const char *s, size_t len)
{
    if (len == 0 || len >= ABL_MARGIN_NAME_LEN) return false;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-') return false;
    return true;
}

/* A limit field: empty -> NAN; else a finite number in [-273.15, 1000] degC. */
static int parse_limit(const char *s, size_t len, double *v)
{
    if (len == 0) {
        *v = NAN;
        return 0;
    }
    char buf[64];
    if (len >= sizeof buf) return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    /* a decimal number only: strtod also takes leading white space (" 45" passed where "45 "
     * did not) and hexadecimal ("0x20" = 32 C); an adversarial test, session 27 */
    if (isspace((unsigned char)buf[0]) || strpbrk(buf, "xX")) return -1;
    char *end;
    errno = 0;
    *v = strtod(buf, &end);
    if (end == buf || *end || errno || !isfinite(*v) || *v < -273.15 || *v > 1000) return -1;
    return 0;
}

abl_status critical_spec_parse(const char *text, abl_critical_spec *spec, abl_error *err)
{
    static const char *form = "expected TISSUE:TMAX_BELOW_C[:TMIN_ABOVE_C], e.g. nerve:45:10, "
                              "nerve:45 or nerve::10";
    memset(spec, 0, sizeof *spec);
    const char *c1 = text ? strchr(text, ':') : NULL;
    if (!c1) return abl_fail(err, ABL_EINVAL, "--critical '%s': %s", text ? text : "", form);
    const char *c2 = strchr(c1 + 1, ':');
    if (c2 && strchr(c2 + 1, ':'))
        return abl_fail(err, ABL_EINVAL, "--critical '%s': too many ':' (%s)", text, form);
    const size_t nlen = (size_t)(c1 - text);
    if (!valid_name(text, nlen))
        return abl_fail(err, ABL_EINVAL,
                        "--critical '%s': tissue name must be 1..%d letters, "
                        "digits, '_' or '-' (%s)",
                        text, ABL_MARGIN_NAME_LEN - 1, form);
    memcpy(spec->tissue, text, nlen);
    spec->tissue[nlen] = '\0';
    const char *a = c1 + 1;
    const size_t alen = c2 ? (size_t)(c2 - a) : strlen(a);
    if (parse_limit(a, alen, &spec->tmax_below_C) < 0)
        return abl_fail(err, ABL_EINVAL,
                        "--critical '%s': T_max limit '%.*s' is not a "
                        "temperature in degC (%s)",
                        text, (int)alen, a, form);
    if (c2 && parse_limit(c2 + 1, strlen(c2 + 1), &spec->tmin_above_C) < 0)
        return abl_fail(err, ABL_EINVAL,
                        "--critical '%s': T_min limit '%s' is not a "
                        "temperature in degC (%s)",
                        text, c2 + 1, form);
    if (!c2) spec->tmin_above_C = NAN;
    if (isnan(spec->tmax_below_C) && isnan(spec->tmin_above_C))
        return abl_fail(err, ABL_EINVAL, "--critical '%s': no limit given (%s)", text, form);
    if (!isnan(spec->tmax_below_C) && !isnan(spec->tmin_above_C) &&
        !(spec->tmin_above_C < spec->tmax_below_C))
        return abl_fail(err, ABL_EINVAL,
                        "--critical '%s': the T_min limit (%g C) must be below "
                        "the T_max limit (%g C)",
                        text, spec->tmin_above_C, spec->tmax_below_C);
    return ABL_OK;
}

void critical_evaluate(const abl_critical_spec *spec, size_t n, const uint8_t *labels,
                       const uint8_t member[256], const double *tmax, const double *tmin,
                       const float *time_above, const float *time_below, const uint8_t *zone,
                       double voxel_mL, abl_critical_report *r)
{
    memset(r, 0, sizeof *r);
    r->spec = *spec;
    const bool hot = !isnan(spec->tmax_below_C), cold = !isnan(spec->tmin_above_C);
    const double lim_hi = spec->tmax_below_C, lim_lo = spec->tmin_above_C;
    size_t nv = 0, nhot = 0, ncold = 0, ndam = 0, nbad = 0;
    double hi = -INFINITY, lo = INFINITY, ta = 0, tb = 0;
#pragma omp parallel for schedule(static) reduction(+ : nv, nhot, ncold, ndam, nbad) \
    reduction(max : hi, ta, tb) reduction(min : lo)
    for (size_t c = 0; c < n; c++) {
        if (!member[labels[c]]) continue;
        nv++;
        /* A non-finite temperature is unknown: it cannot show the limit was kept, so it is
         * counted apart (and makes the structure "crossed"), not in the extremes. */
        const double a = tmax[c];
        const bool abad = !isfinite(a);
        bool bad = hot && abad;
        if (!abad && a > hi) hi = a;
        if (hot && !abad && a >= lim_hi) nhot++;
        if (tmin) {
            const double b = tmin[c];
            const bool bbad = !isfinite(b);
            if (!bbad && b < lo) lo = b;
            if (cold && !bbad && b <= lim_lo) ncold++;
            if (cold) bad |= bbad;
        }
        nbad += bad;
        if (zone && zone[c]) ndam++;
        if (time_above && time_above[c] > ta) ta = time_above[c];
        if (time_below && time_below[c] > tb) tb = time_below[c];
    }
    r->n_voxels = nv;
    r->volume_mL = (double)nv * voxel_mL;
    r->tmax_C = isfinite(hi) ? hi : NAN; /* NaN: no voxel, or none with a known T */
    r->tmin_C = tmin && isfinite(lo) ? lo : NAN;
    r->n_hot = nhot;
    r->n_cold = ncold;
    r->hot_mL = (double)nhot * voxel_mL;
    r->cold_mL = (double)ncold * voxel_mL;
    r->time_above_recorded = hot && time_above;
    r->time_below_recorded = cold && time_below;
    r->time_above_max_s = r->time_above_recorded ? ta : NAN;
    r->time_below_max_s = r->time_below_recorded ? tb : NAN;
    r->n_damaged = ndam;
    r->damaged_mL = (double)ndam * voxel_mL;
    r->n_nonfinite = nbad;
    r->crossed = nhot > 0 || ncold > 0 || nbad > 0;
}
