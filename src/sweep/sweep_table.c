/* sweep_table.c - the results table (CSV and HDF5) and the probability-of-ablation map, always
 * regenerated from the journal's rows so that a resumed, parallel or MPI sweep writes the same
 * table as a serial one. Both files are written under temporary names and renamed into place.
 *
 * results.h5 layout:
 *   /                       attrs ablasim_version, sweep_yaml, sweep_path, base_scenario,
 *                           npoints, fingerprint (uint64), ablation_threshold_C
 *   /table/column_names     strings [ncols]: the CSV header, in order
 *   /table/point            int64 [npoints]
 *   /table/<input column>   float64 [npoints] when every value is a number, else strings
 *   /table/status, message, set_args   strings [npoints]
 *   /table/<output column>  float64 [npoints], attr units
 *   /uncertainty/probability_ablation  float64 [nz][ny][nx], fraction of ok points with
 *                           T_max >= ablation_threshold_C; attrs units, threshold_C, npoints,
 *                           spacing_mm, origin_mm
 *   /uncertainty/ablation_count        uint32 [nz][ny][nx], the counts behind it
 *   /uncertainty/probability_verdict_pass  fraction of successful points with a PASS verdict */
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../formats/atomic_file.h"
#include "../formats/undo.h"
#include "../formats/h5util.h" /* the project's HDF5 error helpers (quiet printing, messages) */
#include "ablasim/h5_schema.h"
#include "ablasim/version.h"
#include "sweep_internal.h"

static bool is_number(const char *s)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    return end != s && *end == '\0' && errno == 0 && isfinite(v);
}

static void csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\n\r")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

/* The table as CSV into a fresh "<path>.tmp" (atomic_file.h), made durable but not renamed:
 * table_write renames it together with the HDF5 table once both are complete, so a failure
 * (a full disk) leaves the old pair, never a new CSV beside an old HDF5 table. On failure the
 * temporary is removed and *at released. */
static abl_status write_csv(const abl_sweep *sw, const sweep_row *rows, const char *path,
                            abl_atomic *at_out, abl_error *err)
{
    const sweep_layout *L = sw->layout;
    abl_atomic *at = at_out;
    int e = atomic_open(at, path, ".tmp");
    FILE *f = e ? NULL : atomic_stream(at);
    if (!f) {
        abl_status st = abl_fail(err, ABL_EIO, "%s.tmp: cannot create: %s", path,
                                 strerror(e ? e : errno));
        atomic_abort(at);
        return st;
    }
    for (int c = 0; c < L->ncols; c++) {
        if (c) fputc(',', f);
        csv_field(f, L->cols[c]);
    }
    fputc('\n', f);
    for (size_t p = 0; p < sw->npoints; p++) {
        const sweep_row *r = &rows[p];
        fprintf(f, "%zu", p);
        for (int k = 0; k < sw->nkeys; k++) {
            fputc(',', f);
            csv_field(f, sw->value[p * (size_t)sw->nkeys + k]);
        }
        fprintf(f, ",%s", sweep_status_word(r->status));
        for (int v = 0; v < L->nvals; v++) {
            char num[40] = "";
            /* shortest text that reads back exactly; NaN (not computed) is an empty field */
            if (!isnan(r->val[v])) sweep_fmt_double(num, sizeof num, r->val[v]);
            fprintf(f, ",%s", num);
        }
        fputc(',', f);
        csv_field(f, r->msg ? r->msg : "");
        fputc('\n', f);
    }
    e = atomic_sync(at);
    if (e) {
        atomic_abort(at); /* removes the temporary */
        return abl_fail(err, ABL_EIO, "%s: cannot write: %s", path, strerror(e));
    }
    return ABL_OK;
}

/* ---- HDF5 --------------------------------------------------------------------------------- */

typedef struct {
    hid_t file;
    const char *what; /* the object being written when something failed */
    char detail[512];
} h5w;

static int failed(h5w *w, const char *what)
{
    if (!w->detail[0]) {
        h5_detail(w->detail, sizeof w->detail);
        w->what = what;
    }
    return -1;
}

/* The attribute writers of h5util.h, with the failure recorded in w. */
static int attr_str(h5w *w, hid_t obj, const char *name, const char *value)
{
    return h5_attr_str(obj, name, value) < 0 ? failed(w, name) : 0;
}

static int attr_f64(h5w *w, hid_t obj, const char *name, const double *v, hsize_t n)
{
    return h5_attr_f64v(obj, name, v, n) < 0 ? failed(w, name) : 0;
}

static int attr_i64(h5w *w, hid_t obj, const char *name, long long v)
{
    return h5_attr_i64(obj, name, v) < 0 ? failed(w, name) : 0;
}

static int attr_u64(h5w *w, hid_t obj, const char *name, uint64_t v)
{
    return h5_attr_u64(obj, name, v) < 0 ? failed(w, name) : 0;
}

/* Dataset of rank nd with the given types; units attribute when units != NULL. */
static int dset(h5w *w, hid_t grp, const char *name, hid_t ftype, hid_t mtype, int nd,
                const hsize_t *dims, const void *data, const char *units)
{
    hid_t sp = H5Screate_simple(nd, dims, NULL);
    hid_t d =
        sp >= 0 ? H5Dcreate2(grp, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT) : -1;
    herr_t r = d >= 0 ? H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) : -1;
    if (r < 0) failed(w, name);
    if (r >= 0 && units && attr_str(w, d, H5A_UNITS, units) < 0) r = -1;
    close_id(d);
    close_id(sp);
    return r < 0 ? -1 : 0;
}

static int dset_str(h5w *w, hid_t grp, const char *name, const char *const *s, hsize_t n)
{
    hid_t t = h5_vstr_type();
    int r = t >= 0 ? dset(w, grp, name, t, t, 1, &n, s, NULL) : failed(w, name);
    close_id(t);
    return r;
}

static int write_table(h5w *w, const abl_sweep *sw, const sweep_row *rows)
{
    const sweep_layout *L = sw->layout;
    const size_t n = sw->npoints;
    const hsize_t hn = n, hc = (hsize_t)L->ncols;
    /* creation order tracked: readers (h5py) list the columns in table order */
    hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE);
    if (gcpl >= 0) H5Pset_link_creation_order(gcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
    hid_t g =
        H5Gcreate2(w->file, H5S_TABLE, H5P_DEFAULT, gcpl >= 0 ? gcpl : H5P_DEFAULT, H5P_DEFAULT);
    close_id(gcpl);
    if (g < 0) return failed(w, H5S_TABLE);
    int r = 0;
    double *col = malloc((n ? n : 1) * sizeof *col);
    const char **str = malloc((n ? n : 1) * sizeof *str);
    int64_t *ix = malloc((n ? n : 1) * sizeof *ix);
    char **own = calloc(n ? n : 1, sizeof *own);
    if (!col || !str || !ix || !own) r = failed(w, "memory");
    if (!r) r = dset_str(w, g, H5S_COLUMN_NAMES, L->cols, hc);
    for (size_t p = 0; p < n && !r; p++)
        ix[p] = (int64_t)p;
    if (!r) r = dset(w, g, H5S_POINT, H5T_STD_I64LE, H5T_NATIVE_INT64, 1, &hn, ix, "1");
    for (int k = 0; k < sw->nkeys && !r; k++) {
        bool numeric = true;
        for (size_t p = 0; p < n; p++) {
            str[p] = sw->value[p * (size_t)sw->nkeys + k];
            numeric = numeric && is_number(str[p]);
        }
        if (numeric) {
            for (size_t p = 0; p < n; p++)
                col[p] = strtod(str[p], NULL);
            /* the unit is in the scenario key's name (README: names carry units) */
            r = dset(w, g, sw->keys[k].column, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, &hn, col,
                     sweep_unit_of(sw->keys[k].key));
        } else {
            r = dset_str(w, g, sw->keys[k].column, str, hn);
        }
    }
    for (size_t p = 0; p < n && !r; p++)
        str[p] = sweep_status_word(rows[p].status);
    if (!r) r = dset_str(w, g, H5S_STATUS, str, hn);
    for (size_t p = 0; p < n && !r; p++)
        str[p] = rows[p].msg ? rows[p].msg : "";
    if (!r) r = dset_str(w, g, H5S_MESSAGE, str, hn);
    for (size_t p = 0; p < n && !r; p++) {
        /* shell-quoted as the progress lines print them: pasted after `ablasim run BASE` as
         * they are (a list value with spaces split into words before; session 30) */
        own[p] = sweep_set_args(sw, p);
        if (!own[p]) {
            r = failed(w, "memory");
            break;
        }
        str[p] = own[p];
    }
    if (!r) r = dset_str(w, g, H5S_SET_ARGS, str, hn);
    for (int v = 0; v < L->nvals && !r; v++) {
        for (size_t p = 0; p < n; p++)
            col[p] = rows[p].val[v];
        r = dset(w, g, L->vname[v], H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, &hn, col, L->vunit[v]);
    }
    for (size_t p = 0; p < n; p++)
        if (own) free(own[p]);
    free(own);
    free(col);
    free(str);
    free(ix);
    close_id(g);
    return r;
}

typedef struct {
    bool on;
    int dims[3];
    double spacing_mm[3], origin_mm[3];
    uint32_t *count;
    size_t npoints; /* ok points summed */
} prob_map;

/* Sum the masks of every ok point in index order (integer counts: any order gives the same). */
static abl_status prob_build(const abl_sweep *sw, const sweep_row *rows, prob_map *pm,
                             sweep_summary *sum, abl_error *err)
{
    sweep_mask m = {0};
    abl_status st = ABL_OK;
    size_t nvox = 0;
    for (size_t p = 0; p < sw->npoints; p++) {
        if (!rows[p].done || rows[p].status != ABL_OK) continue;
        if ((st = mask_read(sw, p, &m, err))) break;
        if (!pm->count) {
            memcpy(pm->dims, m.dims, sizeof pm->dims);
            memcpy(pm->spacing_mm, m.spacing_mm, sizeof pm->spacing_mm);
            memcpy(pm->origin_mm, m.origin_mm, sizeof pm->origin_mm);
            nvox = (size_t)m.dims[0] * (size_t)m.dims[1] * (size_t)m.dims[2];
            pm->count = calloc(nvox ? nvox : 1, sizeof *pm->count);
            if (!pm->count) {
                st = abl_fail(err, ABL_ENOMEM, "out of memory for the probability map");
                break;
            }
        } else if (memcmp(pm->dims, m.dims, sizeof m.dims) ||
                   memcmp(pm->spacing_mm, m.spacing_mm, sizeof m.spacing_mm) ||
                   memcmp(pm->origin_mm, m.origin_mm, sizeof m.origin_mm)) {
            snprintf(sum->note + strlen(sum->note), sizeof sum->note - strlen(sum->note),
                     "%sno probability map: point %zu has another grid than the first ok "
                     "point",
                     sum->note[0] ? "; " : "", p);
            free(pm->count);
            pm->count = NULL;
            mask_free(&m);
            return ABL_OK;
        }
        for (size_t r = 0; r < m.nruns; r++) {
            size_t a = m.runs[2 * r], b = a + m.runs[2 * r + 1];
            if (b > nvox) {
                st = abl_fail(err, ABL_EIO, "mask of point %zu runs past its grid", p);
                break;
            }
            for (size_t v = a; v < b; v++)
                pm->count[v]++;
        }
        if (st) break;
        pm->npoints++;
    }
    mask_free(&m);
    if (st) {
        free(pm->count);
        pm->count = NULL;
        return st;
    }
    if (pm->npoints == 0) {
        snprintf(sum->note + strlen(sum->note), sizeof sum->note - strlen(sum->note),
                 "%sno probability map: no point succeeded", sum->note[0] ? "; " : "");
        return ABL_OK;
    }
    pm->on = true;
    return ABL_OK;
}

static int write_prob(h5w *w, const abl_sweep *sw, const prob_map *pm, const sweep_row *rows)
{
    const size_t nvox = (size_t)pm->dims[0] * pm->dims[1] * pm->dims[2];
    hsize_t dims[3] = {(hsize_t)pm->dims[2], (hsize_t)pm->dims[1], (hsize_t)pm->dims[0]};
    hid_t g = H5Gcreate2(w->file, H5S_UNCERTAINTY, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) return failed(w, H5S_UNCERTAINTY);
    double *p = malloc(nvox * sizeof *p);
    int r = p ? 0 : failed(w, "memory");
    for (size_t v = 0; v < nvox && !r; v++)
        p[v] = (double)pm->count[v] / (double)pm->npoints;
    if (!r)
        r = dset(w, g, H5S_PROBABILITY_ABLATION, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 3, dims, p,
                 "1 (fraction of points)");
    if (!r)
        r = dset(w, g, H5S_ABLATION_COUNT, H5T_STD_U32LE, H5T_NATIVE_UINT32, 3, dims, pm->count,
                 "points");
    hid_t d = r ? -1 : H5Dopen2(g, H5S_PROBABILITY_ABLATION, H5P_DEFAULT);
    if (!r && d < 0) r = failed(w, H5S_PROBABILITY_ABLATION);
    if (!r) r = attr_f64(w, d, "threshold_C", &sw->ablation_threshold_C, 0);
    if (!r) r = attr_i64(w, d, H5SA_NPOINTS, (long long)pm->npoints);
    if (!r) r = attr_f64(w, d, H5A_SPACING_MM, pm->spacing_mm, 3);
    if (!r) r = attr_f64(w, d, H5A_ORIGIN_MM, pm->origin_mm, 3);
    if (!r)
        r = attr_str(w, d, H5SA_MEANING,
                     "per voxel [nz][ny][nx]: fraction of the sweep's successful points whose "
                     "T_max reached threshold_C");
    close_id(d);
    /* probability of a PASS verdict over the successful points that have one */
    size_t npass = 0, nverd = 0;
    for (size_t q = 0; q < sw->npoints; q++) {
        if (!rows[q].done || rows[q].status != ABL_OK) continue;
        const double v = rows[q].val[sw->layout->i_margin + 1];
        if (isnan(v)) continue;
        nverd++;
        npass += v == 1.0;
    }
    if (!r && nverd) {
        double pp = (double)npass / (double)nverd;
        r = dset(w, g, H5S_PROBABILITY_VERDICT_PASS, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 0, NULL,
                 &pp, "1 (fraction of points with a verdict)");
    }
    free(p);
    close_id(g);
    return r;
}

/* The HDF5 table into a fresh "<path>.tmp" that HDF5 writes by name, made durable but not
 * renamed (as write_csv). On failure the temporary is removed and *at released. */
static abl_status write_h5(const abl_sweep *sw, const sweep_row *rows, const prob_map *pm,
                           const char *path, abl_atomic *at_out, abl_error *err)
{
    abl_atomic *at = at_out;
    int e = atomic_reserve(at, path, ".tmp");
    if (e) {
        atomic_abort(at);
        return abl_fail(err, ABL_EIO, "%s.tmp: cannot create: %s", path, strerror(e));
    }
    const char *tmp = at->tmp;
    h5_quiet q;
    quiet_begin(&q);
    h5w w = {0};
    hid_t fapl = h5_fapl_write();
    w.file = fapl >= 0 ? H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl) : -1;
    close_id(fapl);
    int r = w.file < 0 ? failed(&w, "the file") : 0;
    if (!r) r = attr_str(&w, w.file, H5A_VERSION, ABLASIM_VERSION);
    if (!r) r = attr_str(&w, w.file, H5SA_SWEEP_YAML, sw->text);
    if (!r) r = attr_str(&w, w.file, H5SA_SWEEP_PATH, sw->path);
    if (!r) r = attr_str(&w, w.file, H5SA_BASE_SCENARIO, sw->base_path);
    if (!r) r = attr_i64(&w, w.file, H5SA_NPOINTS, (long long)sw->npoints);
    if (!r) r = attr_u64(&w, w.file, H5SA_FINGERPRINT, sw->layout->fingerprint);
    if (!r) r = attr_f64(&w, w.file, H5SA_ABLATION_THRESHOLD_C, &sw->ablation_threshold_C, 0);
    if (!r) r = write_table(&w, sw, rows);
    if (!r && pm->on) r = write_prob(&w, sw, pm, rows);
    if (w.file >= 0 && H5Fclose(w.file) < 0 && !r) r = failed(&w, "closing the file");
    quiet_end(&q);
    if (!r) e = atomic_sync(at);
    if (r || e) {
        atomic_abort(at); /* removes the temporary */
        if (r)
            return abl_fail(err, ABL_EIO, "%s: cannot write %s%s", path, w.what ? w.what : "",
                            w.detail);
        return abl_fail(err, ABL_EIO, "%s: cannot write: %s", path, strerror(e));
    }
    return ABL_OK;
}

abl_status table_recover(const abl_sweep *sw, abl_error *err)
{
    char *log = sweep_join(sw->output_dir, SWEEP_UNDO);
    if (!log) return abl_fail(err, ABL_ENOMEM, "out of memory");
    const char *what = log;
    const int e = undo_recover(log, NULL, &what);
    abl_status st = ABL_OK;
    if (e)
        st = abl_fail(err, ABL_EIO,
                      "%s: an interrupted sweep's previous results could not be restored (%s: "
                      "%s); %s.before-sweep.tmp and %s.before-sweep.tmp are the previous versions",
                      log, what, e == EINVAL ? "not ablasim's undo log" : strerror(e), SWEEP_CSV,
                      SWEEP_H5);
    free(log);
    return st;
}

abl_status table_write(const abl_sweep *sw, const sweep_row *rows, sweep_summary *sum,
                       abl_error *err)
{
    prob_map pm = {0};
    abl_status st = ABL_OK;
    /* the map first: a mask that cannot be read stops before any table is replaced */
    if (sw->prob_map_on && (st = prob_build(sw, rows, &pm, sum, err))) return st;
    snprintf(sum->csv_path, sizeof sum->csv_path, "%s/%s", sw->output_dir, SWEEP_CSV);
    snprintf(sum->h5_path, sizeof sum->h5_path, "%s/%s", sw->output_dir, SWEEP_H5);
    /* both tables complete and durable under temporary names first, then both renamed: a
     * failure while writing either (a full disk) keeps the old pair (docs/SWEEPS.md) */
    abl_atomic a_csv = {.fd = -1}, a_h5 = {.fd = -1};
    st = write_csv(sw, rows, sum->csv_path, &a_csv, err);
    if (!st && (st = write_h5(sw, rows, &pm, sum->h5_path, &a_h5, err))) atomic_abort(&a_csv);
    if (!st) {
        /* the previous pair kept (undo.h) while the two renames happen: a rename that fails
         * between them puts the old pair back (found by the failing-call property of the
         * safety suite: results.csv new, results.h5 old) */
        char *log = sweep_join(sw->output_dir, SWEEP_UNDO);
        const char *members[2] = {sum->csv_path, sum->h5_path};
        abl_undo u = {0};
        int e = log ? undo_begin(&u, log, "sweep", members, 2) : ENOMEM;
        const char *which = !log ? sw->output_dir : e && u.failed ? u.failed : log;
        if (!e) e = atomic_rename(&a_csv), which = sum->csv_path;
        if (!e) e = atomic_rename(&a_h5), which = sum->h5_path;
        if (!e) (void)sweep_fsync_dir(sw->output_dir);
        if (!e) e = undo_end(&u), which = log;
        atomic_abort(&a_csv); /* removes a temporary not renamed; frees the names */
        atomic_abort(&a_h5);
        if (e) {
            st = abl_fail(err, ABL_EIO, "%s: cannot write the results: %s", which, strerror(e));
            const int r = undo_restore(&u);
            if (r)
                abl_fail(err, ABL_EIO,
                         "%s: cannot rename into place (%s), and restoring the previous table "
                         "failed too (%s: %s): it is kept as %s.before-sweep.tmp and the next "
                         "sweep into %s restores it",
                         which, strerror(e), u.failed ? u.failed : "", strerror(r), SWEEP_CSV,
                         sw->output_dir);
        }
        undo_free(&u);
        free(log);
    }
    sum->prob_map_written = !st && pm.on;
    free(pm.count);
    return st;
}
