/* margin_io.c - margin analysis of files: an ablasim result or two NIfTI segmentations in, a
 * margin file (HDF5) and its JSON summary out. Layout of the margin file: docs/MARGIN.md.
 *
 * Inputs are checked before use and every problem is one sentence naming the file: a missing
 * file or one HDF5 cannot read is ABL_EIO, a readable file that is not what we need (no
 * /grid/labels, a tissue it does not contain, a criterion whose field it lacks) is ABL_EINVAL.
 * Outputs go to "<name>.tmp" first and are renamed only when both files are complete, so an
 * existing margin file survives any failure. HDF5's own error printing is off meanwhile.
 *
 * Data safety (fileguard.h): before any file is opened, the inputs and every name the command
 * may write are declared; an output that is an input (or another output) and an input that
 * is not a regular file are refused, and the margin file is locked while it is written. A
 * result that is incomplete (root attribute complete missing or 0) or holds non-finite values
 * in a field the analysis reads is refused unless the caller allows it; the outputs then say
 * input_complete = false.
 */
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../formats/atomic_file.h"
#include "../formats/nifti_pending.h"
#include "../formats/undo.h"
#include "../formats/h5util.h"
#include "ablasim/fileguard.h"
#include "ablasim/grid.h"
#include "ablasim/h5_schema.h"
#include "ablasim/json_writer.h"
#include "ablasim/margin.h"
#include "ablasim/mesh.h"
#include "ablasim/nifti.h"
#include "ablasim/version.h"

#define FIELD_CHUNK_BYTES ((size_t)4 << 20)
#define MAX_MATERIALS 256
#define MAX_TIME_MAPS 64

static const char *pass_rule = "PASS iff minimal_margin_mm > criterion_mm (a margin equal to the "
                               "criterion fails; distances within 1e-6 mm of it count as equal)";
static const char *verdict_rule = "PASS iff the margin verdict is PASS and no critical structure "
                                  "crossed a limit (a voxel of unknown, non-finite temperature "
                                  "counts as crossing)";

/* ---- small helpers ----------------------------------------------------------------------- */

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

/* dst = src without suffix (if present) + add. */
static int swap_suffix(char *dst, size_t len, const char *src, const char *suffix, const char *add)
{
    size_t stem = strlen(src);
    if (ends_with(src, suffix)) stem -= strlen(suffix);
    int w = snprintf(dst, len, "%.*s%s", (int)stem, src, add);
    return w < 0 || (size_t)w >= len ? -1 : 0;
}

/* Open-check a file ourselves: HDF5 reports a missing file, a directory and a file without
 * permission all as "unable to open file". */
static abl_status check_readable(const char *path, abl_error *err)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) return abl_fail(err, ABL_EIO, "%s: cannot open (%s)", path, strerror(errno));
    struct stat sb;
    int is_dir = fstat(fd, &sb) == 0 && S_ISDIR(sb.st_mode);
    close(fd);
    if (is_dir) return abl_fail(err, ABL_EIO, "%s: cannot open (is a directory)", path);
    return ABL_OK;
}

/* The voxel (i, j, k) of linear index c (x fastest). */
static void voxel_ijk(const int dims[3], size_t c, int ijk[3])
{
    ijk[0] = (int)(c % (size_t)dims[0]);
    ijk[1] = (int)(c / (size_t)dims[0] % (size_t)dims[1]);
    ijk[2] = (int)(c / ((size_t)dims[0] * (size_t)dims[1]));
}

/* ---- reading a result file --------------------------------------------------------------- */

typedef struct {
    const char *path;
    hid_t file;
    int dims[3];
    size_t n;
    double spacing_mm[3], origin_mm[3];
    uint8_t *labels;
    int nmat;
    char *names[MAX_MATERIALS];
    int ntime;
    struct {
        bool above;
        double thr_C;
        char name[160];
    } time[MAX_TIME_MAPS];
} result_file;

static void result_close(result_file *rf)
{
    close_id(rf->file);
    rf->file = -1;
    free(rf->labels);
    rf->labels = NULL;
    for (int m = 0; m < rf->nmat; m++)
        free(rf->names[m]);
    rf->nmat = 0;
}

static abl_status read_vec3_attr(const result_file *rf, hid_t dset, const char *name, double v[3],
                                 abl_error *err)
{
    char d[512];
    if (H5Aexists(dset, name) <= 0)
        return abl_fail(err, ABL_EINVAL, "%s: %s has no attribute %s (not an ablasim result?)",
                        rf->path, H5_LABELS, name);
    hid_t a = H5Aopen(dset, name, H5P_DEFAULT);
    hid_t sp = a >= 0 ? H5Aget_space(a) : -1;
    abl_status st = ABL_OK;
    if (sp < 0 || H5Sget_simple_extent_npoints(sp) != 3)
        st = abl_fail(err, ABL_EINVAL, "%s: attribute %s of %s must hold 3 values (x y z)",
                      rf->path, name, H5_LABELS);
    else if (H5Aread(a, H5T_NATIVE_DOUBLE, v) < 0)
        st = abl_fail(err, ABL_EIO, "%s: cannot read attribute %s of %s%s", rf->path, name,
                      H5_LABELS, h5_detail(d, sizeof d));
    close_id(sp);
    close_id(a);
    return st;
}

/* A 3-D dataset of the grid's shape, read (converted) into buf of the given memory type.
 * ABL_EINVAL when it is missing (with `missing` as the reason) or has the wrong shape. */
static abl_status read_grid_dataset(const result_file *rf, const char *name, hid_t mtype, void *buf,
                                    const char *missing, abl_error *err)
{
    char d[512];
    if (H5Lexists(rf->file, name, H5P_DEFAULT) <= 0)
        return abl_fail(err, ABL_EINVAL, "%s: no dataset %s%s%s", rf->path, name,
                        missing ? ": " : "", missing ? missing : "");
    abl_status st = ABL_OK;
    hid_t ds = H5Dopen2(rf->file, name, H5P_DEFAULT);
    hid_t sp = ds >= 0 ? H5Dget_space(ds) : -1;
    hsize_t dims[3] = {0, 0, 0};
    if (sp < 0) {
        st = abl_fail(err, ABL_EIO, "%s: cannot open dataset %s%s", rf->path, name,
                      h5_detail(d, sizeof d));
    } else if (H5Sget_simple_extent_ndims(sp) != 3 ||
               H5Sget_simple_extent_dims(sp, dims, NULL) < 0 || dims[0] != (hsize_t)rf->dims[2] ||
               dims[1] != (hsize_t)rf->dims[1] || dims[2] != (hsize_t)rf->dims[0]) {
        st = abl_fail(err, ABL_EINVAL, "%s: dataset %s must be [%d][%d][%d] like %s", rf->path,
                      name, rf->dims[2], rf->dims[1], rf->dims[0], H5_LABELS);
    } else if (H5Dread(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
        st = abl_fail(err, ABL_EIO, "%s: reading %s failed (truncated or corrupt?)%s", rf->path,
                      name, h5_detail(d, sizeof d));
    }
    close_id(sp);
    close_id(ds);
    return st;
}

static abl_status read_labels(result_file *rf, abl_error *err)
{
    char d[512];
    if (H5Lexists(rf->file, H5_GRID, H5P_DEFAULT) <= 0 ||
        H5Lexists(rf->file, H5_LABELS, H5P_DEFAULT) <= 0)
        return abl_fail(err, ABL_EINVAL, "%s: no dataset %s: not an ablasim result file", rf->path,
                        H5_LABELS);
    hid_t ds = H5Dopen2(rf->file, H5_LABELS, H5P_DEFAULT);
    hid_t sp = ds >= 0 ? H5Dget_space(ds) : -1;
    abl_status st = ABL_OK;
    hsize_t dims[3];
    if (sp < 0) {
        st = abl_fail(err, ABL_EIO, "%s: cannot open %s%s", rf->path, H5_LABELS,
                      h5_detail(d, sizeof d));
        goto done;
    }
    if (H5Sget_simple_extent_ndims(sp) != 3 || H5Sget_simple_extent_dims(sp, dims, NULL) < 0) {
        st = abl_fail(err, ABL_EINVAL, "%s: %s must be 3-D [nz][ny][nx]", rf->path, H5_LABELS);
        goto done;
    }
    rf->n = 1;
    for (int a = 0; a < 3; a++) {
        if (dims[a] < 1 || dims[a] > (1u << 24)) {
            st = abl_fail(err, ABL_EINVAL, "%s: %s has an impossible shape", rf->path, H5_LABELS);
            goto done;
        }
        rf->dims[2 - a] = (int)dims[a];
        rf->n *= (size_t)dims[a];
    }
    if (rf->n > ABL_GRID_MAX_VOXELS) {
        st = abl_fail(err, ABL_EINVAL, "%s: %s has more than %zu voxels", rf->path, H5_LABELS,
                      (size_t)ABL_GRID_MAX_VOXELS);
        goto done;
    }
    if ((st = read_vec3_attr(rf, ds, H5A_SPACING_MM, rf->spacing_mm, err)) ||
        (st = read_vec3_attr(rf, ds, H5A_ORIGIN_MM, rf->origin_mm, err)))
        goto done;
    for (int a = 0; a < 3; a++)
        if (!isfinite(rf->spacing_mm[a]) || !(rf->spacing_mm[a] > 0) ||
            !isfinite(rf->origin_mm[a])) {
            st = abl_fail(err, ABL_EINVAL,
                          "%s: %s spacing_mm (%g, %g, %g), origin_mm (%g, %g, %g): allowed a "
                          "finite spacing > 0 and a finite origin on every axis",
                          rf->path, H5_LABELS, rf->spacing_mm[0], rf->spacing_mm[1],
                          rf->spacing_mm[2], rf->origin_mm[0], rf->origin_mm[1],
                          rf->origin_mm[2]);
            goto done;
        }
    rf->labels = malloc(rf->n);
    if (!rf->labels) {
        st = abl_fail(err, ABL_ENOMEM, "%s: no memory for %zu labels", rf->path, rf->n);
        goto done;
    }
    if (H5Dread(ds, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, rf->labels) < 0)
        st = abl_fail(err, ABL_EIO, "%s: reading %s failed (truncated or corrupt?)%s", rf->path,
                      H5_LABELS, h5_detail(d, sizeof d));
done:
    close_id(sp);
    close_id(ds);
    return st;
}

static abl_status read_material_names(result_file *rf, abl_error *err)
{
    static const char *name = H5_MATERIAL_NAMES;
    char d[512];
    if (H5Lexists(rf->file, name, H5P_DEFAULT) <= 0)
        return abl_fail(err, ABL_EINVAL, "%s: no dataset %s: not an ablasim result file", rf->path,
                        name);
    abl_status st = ABL_OK;
    char **v = NULL;
    hssize_t np = 0;
    hid_t ds = H5Dopen2(rf->file, name, H5P_DEFAULT);
    hid_t ft = ds >= 0 ? H5Dget_type(ds) : -1;
    hid_t sp = ds >= 0 ? H5Dget_space(ds) : -1;
    hid_t mt = H5Tcopy(H5T_C_S1);
    if (ft < 0 || sp < 0 || mt < 0) {
        st = abl_fail(err, ABL_EIO, "%s: cannot open %s%s", rf->path, name, h5_detail(d, sizeof d));
        goto done;
    }
    np = H5Sget_simple_extent_npoints(sp);
    if (H5Tget_class(ft) != H5T_STRING || H5Tis_variable_str(ft) <= 0 || np < 1 ||
        np > MAX_MATERIALS) {
        st = abl_fail(err, ABL_EINVAL, "%s: %s must be 1..%d variable-length strings", rf->path,
                      name, MAX_MATERIALS);
        np = 0;
        goto done;
    }
    v = calloc((size_t)np, sizeof *v);
    if (!v || H5Tset_size(mt, H5T_VARIABLE) < 0 || H5Tset_cset(mt, H5Tget_cset(ft)) < 0) {
        st = abl_fail(err, ABL_ENOMEM, "%s: out of memory reading %s", rf->path, name);
        np = 0;
        goto done;
    }
    if (H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0) {
        st = abl_fail(err, ABL_EIO, "%s: reading %s failed%s", rf->path, name,
                      h5_detail(d, sizeof d));
        np = 0;
        goto done;
    }
    for (hssize_t m = 0; m < np; m++) {
        const char *s = v[m] ? v[m] : "";
        rf->names[m] = malloc(strlen(s) + 1);
        if (!rf->names[m]) {
            st = abl_fail(err, ABL_ENOMEM, "%s: out of memory reading %s", rf->path, name);
            break;
        }
        strcpy(rf->names[m], s);
        rf->nmat = (int)m + 1;
    }
done:
    for (hssize_t m = 0; v && m < np; m++)
        H5free_memory(v[m]);
    free(v);
    close_id(mt);
    close_id(sp);
    close_id(ft);
    close_id(ds);
    return st;
}

/* The running time maps /fields/time_at_or_{above,below}_<thr>C_s and their thresholds (the
 * threshold_C attribute, or the number in the name). */
static void list_time_maps(result_file *rf)
{
    rf->ntime = 0;
    hid_t g = H5Gopen2(rf->file, H5_FIELDS, H5P_DEFAULT);
    if (g < 0) return;
    H5G_info_t info;
    if (H5Gget_info(g, &info) < 0) info.nlinks = 0;
    for (hsize_t i = 0; i < info.nlinks && rf->ntime < MAX_TIME_MAPS; i++) {
        char nm[128];
        ssize_t len =
            H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, nm, sizeof nm, H5P_DEFAULT);
        if (len <= 0 || (size_t)len >= sizeof nm) continue;
        bool above = !strncmp(nm, H5_FIELD_TIME_ABOVE_PREFIX, strlen(H5_FIELD_TIME_ABOVE_PREFIX));
        bool below = !strncmp(nm, H5_FIELD_TIME_BELOW_PREFIX, strlen(H5_FIELD_TIME_BELOW_PREFIX));
        if (!above && !below) continue;
        double thr = strtod(nm + 17, NULL);
        hid_t ds = H5Dopen2(g, nm, H5P_DEFAULT);
        if (ds >= 0 && H5Aexists(ds, H5A_THRESHOLD_C) > 0) {
            hid_t a = H5Aopen(ds, H5A_THRESHOLD_C, H5P_DEFAULT);
            double t;
            if (a >= 0 && H5Aread(a, H5T_NATIVE_DOUBLE, &t) >= 0) thr = t;
            close_id(a);
        }
        close_id(ds);
        rf->time[rf->ntime].above = above;
        rf->time[rf->ntime].thr_C = thr;
        snprintf(rf->time[rf->ntime].name, sizeof rf->time[0].name, "%s/%s", H5_FIELDS, nm);
        rf->ntime++;
    }
    close_id(g);
}

static const char *find_time_map(const result_file *rf, bool above, double thr)
{
    for (int t = 0; t < rf->ntime; t++)
        if (rf->time[t].above == above && fabs(rf->time[t].thr_C - thr) <= 1e-9)
            return rf->time[t].name;
    return NULL;
}

/* Is the result finished? ablasim writes the root attribute complete = 1 last, after every
 * field; a run that stopped on a fault leaves complete = 0 and its message in failure
 * (output_keep_incomplete, NAME.incomplete.h5). A file without the attribute was not written
 * to the end by this version: it cannot be told apart from a partial one, so it counts as
 * incomplete too. why: one clause saying what is wrong ("" when complete). */
static bool result_complete(const result_file *rf, char *why, size_t len)
{
    why[0] = '\0';
    if (H5Aexists(rf->file, H5A_COMPLETE) <= 0) {
        snprintf(why, len,
                 "no root attribute 'complete': not a finished ablasim result (a partial file, "
                 "or written before results carried the flag)");
        return false;
    }
    long long c = -1;
    hid_t a = H5Aopen(rf->file, H5A_COMPLETE, H5P_DEFAULT);
    if (a < 0 || H5Aread(a, H5T_NATIVE_LLONG, &c) < 0) c = -1;
    close_id(a);
    if (c == 1) return true;
    char failure[300] = "";
    if (H5Aexists(rf->file, H5A_FAILURE) > 0) {
        hid_t fa = H5Aopen(rf->file, H5A_FAILURE, H5P_DEFAULT);
        hid_t ft = fa >= 0 ? H5Aget_type(fa) : -1;
        if (ft >= 0 && H5Tget_class(ft) == H5T_STRING && H5Tis_variable_str(ft) > 0) {
            char *v = NULL;
            hid_t mt = H5Tcopy(ft);
            if (mt >= 0 && H5Aread(fa, mt, &v) >= 0 && v) {
                snprintf(failure, sizeof failure, "%s", v);
                H5free_memory(v);
            }
            close_id(mt);
        }
        close_id(ft);
        close_id(fa);
    }
    if (c == 0)
        snprintf(why, len, "incomplete result (root attribute complete = 0%s%s%s)",
                 failure[0] ? ": the run stopped with \"" : "", failure,
                 failure[0] ? "\"" : "");
    else
        snprintf(why, len, "root attribute 'complete' is not 1 (unreadable or %lld)", c);
    return false;
}

static abl_status open_result(result_file *rf, const char *path, abl_error *err)
{
    memset(rf, 0, sizeof *rf);
    rf->path = path;
    rf->file = -1;
    abl_status st = check_readable(path, err);
    if (st) return st;
    if (H5Fis_hdf5(path) <= 0)
        return abl_fail(err, ABL_EIO, "%s: not a readable HDF5 file (truncated or corrupt?)", path);
    rf->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (rf->file < 0) {
        char d[512];
        return abl_fail(err, ABL_EIO, "%s: not a readable HDF5 file%s", path,
                        h5_detail(d, sizeof d));
    }
    if ((st = read_labels(rf, err)) || (st = read_material_names(rf, err))) return st;
    list_time_maps(rf);
    return ABL_OK;
}

/* member[m] = 1 for the materials whose tissue is `tissue`; ABL_EINVAL naming the tissues
 * present when there is none. */
static abl_status tissue_members(const result_file *rf, const char *tissue, const char *what,
                                 uint8_t member[256], abl_error *err)
{
    memset(member, 0, 256);
    int found = 0;
    for (int m = 0; m < rf->nmat; m++)
        if (!strcmp(rf->names[m], tissue)) member[m] = 1, found = 1;
    if (found) return ABL_OK;
    char list[600] = "";
    size_t at = 0;
    for (int m = 0; m < rf->nmat && at < sizeof list - 80; m++) {
        bool dup = false;
        for (int p = 0; p < m; p++)
            dup |= !strcmp(rf->names[p], rf->names[m]);
        if (!dup)
            at +=
                (size_t)snprintf(list + at, sizeof list - at, "%s%s", at ? ", " : "", rf->names[m]);
    }
    return abl_fail(err, ABL_EINVAL, "%s: %s tissue '%s' is not in this result (its tissues: %s)",
                    rf->path, what, tissue, list);
}

/* ---- writing ----------------------------------------------------------------------------- */

/* Sticky-error writer: every helper does nothing once st is set. */
typedef struct {
    const char *path; /* final name, for messages */
    hid_t file;
    abl_status st;
    abl_error *err;
} writer;

static void w_fail(writer *w, const char *what, const char *name)
{
    if (w->st) return;
    char d[512];
    h5_detail(d, sizeof d);
    w->st = abl_fail(w->err, ABL_EIO, "%s: %s %s failed%s", w->path, what, name, d);
}

/* Attributes through h5util's one set of writers; the first failure is kept in w. */
static void w_attr(writer *w, hid_t obj, const char *name, hid_t ftype, hid_t mtype, const void *v,
                   int rank, const hsize_t *dims)
{
    if (!w->st && h5_attr_num_dims(obj, name, ftype, mtype, v, rank, dims) < 0)
        w_fail(w, "writing attribute", name);
}

static void w_attr_str(writer *w, hid_t obj, const char *name, const char *value)
{
    if (!w->st && h5_attr_str(obj, name, value) < 0) w_fail(w, "writing attribute", name);
}

static void w_attr_f64(writer *w, hid_t obj, const char *name, double v)
{
    if (!w->st && h5_attr_f64(obj, name, v) < 0) w_fail(w, "writing attribute", name);
}

static void w_attr_vec3(writer *w, hid_t obj, const char *name, const double v[3])
{
    if (!w->st && h5_attr_f64v(obj, name, v, 3) < 0) w_fail(w, "writing attribute", name);
}

static hid_t w_group(writer *w, const char *name)
{
    if (w->st) return -1;
    hid_t g = H5Gcreate2(w->file, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) w_fail(w, "creating group", name);
    return g;
}

/* A dataset (rank 0..3, creation properties dcpl) with a units attribute and an optional
 * definition. */
static void w_dataset(writer *w, hid_t loc, const char *name, hid_t ftype, hid_t mtype, int rank,
                      const hsize_t *dims, hid_t dcpl, const void *data, const char *units,
                      const char *def)
{
    if (w->st) return;
    hid_t sp = rank == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(rank, dims, NULL);
    hid_t d = sp >= 0 ? H5Dcreate2(loc, name, ftype, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT) : -1;
    if (d < 0) {
        w_fail(w, "creating dataset", name);
    } else if (H5Sget_simple_extent_npoints(sp) > 0 &&
               H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) {
        w_fail(w, "writing dataset", name);
    } else {
        w_attr_str(w, d, H5A_UNITS, units);
        if (def) w_attr_str(w, d, H5A_DEFINITION, def);
    }
    close_id(d);
    close_id(sp);
}

/* A small contiguous dataset. */
static void w_small(writer *w, hid_t loc, const char *name, hid_t ftype, hid_t mtype, int rank,
                    const hsize_t *dims, const void *data, const char *units, const char *def)
{
    w_dataset(w, loc, name, ftype, mtype, rank, dims, H5P_DEFAULT, data, units, def);
}

static void w_scalar(writer *w, hid_t loc, const char *name, double v, const char *units,
                     const char *def)
{
    w_small(w, loc, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 0, NULL, &v, units, def);
}

static void w_string(writer *w, hid_t loc, const char *name, const char *value)
{
    if (w->st) return;
    hid_t t = h5_vstr_type();
    if (t < 0) return w_fail(w, "writing dataset", name);
    w_small(w, loc, name, t, t, 0, NULL, &value, "none", NULL);
    close_id(t);
}

/* A compressed [nz][ny][nx] grid field: chunks of whole planes up to FIELD_CHUNK_BYTES
 * (rows or parts of rows only for absurdly wide planes), shuffle + deflate when available. */
static void w_field(writer *w, hid_t loc, const char *name, const int dims[3], hid_t ftype,
                    hid_t mtype, size_t el, const void *data, const char *units, const char *def)
{
    if (w->st) return;
    hsize_t d3[3] = {(hsize_t)dims[2], (hsize_t)dims[1], (hsize_t)dims[0]};
    hsize_t c[3] = {1, 1, d3[2]};
    size_t row = (size_t)dims[0] * el, plane = row * (size_t)dims[1];
    if (row > FIELD_CHUNK_BYTES) {
        c[2] = FIELD_CHUNK_BYTES / el;
    } else if (plane > FIELD_CHUNK_BYTES) {
        c[1] = FIELD_CHUNK_BYTES / row;
    } else {
        c[1] = d3[1];
        c[0] = FIELD_CHUNK_BYTES / plane;
        if (c[0] > d3[0]) c[0] = d3[0];
    }
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (dcpl < 0 || H5Pset_chunk(dcpl, 3, c) < 0 ||
        (H5Zfilter_avail(H5Z_FILTER_DEFLATE) > 0 &&
         (H5Pset_shuffle(dcpl) < 0 || H5Pset_deflate(dcpl, 1) < 0)))
        w_fail(w, "setting up dataset", name);
    w_dataset(w, loc, name, ftype, mtype, 3, d3, dcpl, data, units, def);
    close_id(dcpl);
}

/* What the writer needs besides the report. */
typedef struct {
    const abl_margin_report *rep;
    const abl_margin_result *m; /* with its maps */
    double affine[3][4];
    double origin_mm[3];
    const uint8_t *tumour;
    const uint8_t *zone_mask[ABL_ZONE_NCRIT]; /* result mode: every available criterion */
    const uint8_t *seg_zone;                  /* segmentation mode */
    const double (*nifti_affine)[4];          /* segmentation mode: the tumour file's affine */
    const float *T_max_C, *T_min_C;           /* result mode with --nifti: the result's maps */
    volatile sig_atomic_t *stop;              /* abl_margin_opts.stop */
} out_data;

/* A stop request at a point where only temporaries (and locks) of this command exist: the
 * caller removes them; every file the user had is as it was. */
static abl_status stop_asked(volatile sig_atomic_t *stop, const char *out_h5, abl_error *err)
{
    if (!stop || !*stop) return ABL_OK;
    return abl_fail(err, ABL_ESTOPPED,
                    "stopped on request before the margin files were replaced: nothing was "
                    "written (%s and its companions are as they were; the same command writes "
                    "them)",
                    out_h5);
}

static void zone_definition(char *buf, size_t len, abl_zone_criterion c, double thr)
{
    const abl_zone_criterion_info *ci = zone_criterion_info(c);
    /* "1 where T_max_C >= 55 degC": the field name without "/fields/" */
    snprintf(buf, len, "1 where %s %s %g%s%s", ci->field + 8, ci->at_or_above ? ">=" : "<=", thr,
             strcmp(ci->units, "1") ? " " : "", strcmp(ci->units, "1") ? ci->units : "");
}

static void write_margin_group(writer *w, const out_data *od)
{
    const abl_margin_result *m = od->m;
    const int *dims = od->rep->dims;
    hid_t g = w_group(w, H5M_MARGIN);
    w_attr_str(w, g, H5MA_PASS_RULE, pass_rule);
    w_attr_str(w, g, H5M_VERDICT, m->pass ? "PASS" : "FAIL");
    w_field(w, g, H5M_MARGIN_MM, dims, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 4, m->margin_mm, "mm",
            "signed minimal ablative margin of each tumour voxel: +distance from its centre to "
            "the nearest non-ablated voxel centre if ablated, -distance to the nearest ablated "
            "voxel centre if not (-inf: nothing ablated); NaN outside the tumour");
    w_field(w, g, H5M_SHELL_MASK, dims, H5T_STD_U8LE, H5T_NATIVE_UINT8, 1, m->shell, "none",
            "non-tumour voxels within criterion_mm of a tumour voxel centre: 1 ablated, "
            "2 not ablated; 0 elsewhere");
    hsize_t ns[2] = {(hsize_t)m->n_surface, 3};
    w_small(w, g, H5M_SURFACE_MARGIN_MM, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, ns,
            m->surface_margin_mm, "mm",
            "margin of every tumour surface voxel (a 6-neighbour outside the tumour or the "
            "grid), in the order of surface_voxel_ijk");
    w_small(w, g, H5M_SURFACE_VOXEL_IJK, H5T_STD_I32LE, H5T_NATIVE_INT32, 2, ns, m->surface_ijk,
            "voxel index", "i j k (x y z) of each surface voxel, increasing linear index");
    const double crit = m->criterion_mm;
    w_scalar(w, g, H5M_CRITERION_MM, crit, "mm", "required minimal margin");
    w_scalar(w, g, H5M_MINIMAL_MARGIN_MM, m->min_margin_mm, "mm",
             "smallest signed margin over the tumour voxels (ties: lowest voxel index)");
    hsize_t three = 3;
    w_small(w, g, H5M_MINIMAL_MARGIN_LOCATION_MM, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, &three,
            m->min_location_mm, "mm",
            "world position (x y z) of the voxel centre where the "
            "minimal margin occurs");
    w_small(w, g, H5M_MINIMAL_MARGIN_VOXEL_IJK, H5T_STD_I32LE, H5T_NATIVE_INT, 1, &three, m->min_ijk,
            "voxel index", "i j k (x y z) of that voxel");
    w_string(w, g, H5M_VERDICT, m->pass ? "PASS" : "FAIL");
    w_scalar(w, g, H5M_RESOLUTION_MM, m->resolution_mm, "mm",
             "one voxel diagonal: distances between voxel centres quantise the margin");
    w_scalar(w, g, H5M_SURFACE_FRACTION, m->surface_fraction_ok, "1",
             "fraction of the tumour surface voxels whose margin > criterion_mm");
    w_scalar(w, g, H5MA_SURFACE_VOXELS, (double)m->n_surface, "voxels", NULL);
    w_scalar(w, g, H5M_TUMOUR_VOLUME_ML, m->tumour_mL, "mL", NULL);
    w_scalar(w, g, H5M_ZONE_VOLUME_ML, m->zone_mL, "mL", "ablation zone used for the verdict");
    w_scalar(w, g, H5M_RESIDUAL_ML, m->residual_mL, "mL",
             "tumour voxels outside the ablation zone");
    w_scalar(w, g, H5M_SHELL_VOLUME_ML, m->shell_mL, "mL",
             "non-tumour voxels within criterion_mm of the tumour");
    w_scalar(w, g, H5M_SHELL_UNABLATED_ML, m->shell_unablated_mL, "mL",
             "shell voxels outside the ablation zone");
    w_scalar(w, g, H5M_ZONE_TOUCHES_BOUNDARY, m->zone_touches_border ? 1 : 0, "1",
             "1: an ablated voxel lies on a grid face; voxels beyond the grid count as not "
             "ablated, so margins toward that face are lower bounds");
    close_id(g);
}

static void write_zones(writer *w, const out_data *od)
{
    const abl_margin_report *rep = od->rep;
    hid_t g = w_group(w, H5M_ZONES);
    char def[256];
    if (rep->from_result) {
        w_attr_str(w, g, H5MA_SELECTED, zone_criterion_info(rep->criterion)->key);
        for (int c = 0; c < ABL_ZONE_NCRIT; c++) {
            if (!rep->zone_available[c]) continue;
            const abl_zone_criterion_info *ci = zone_criterion_info((abl_zone_criterion)c);
            zone_definition(def, sizeof def, (abl_zone_criterion)c, rep->zone_threshold[c]);
            if (c == (int)rep->criterion && rep->applicator_mL > 0) /* the track is in it */
                snprintf(def + strlen(def), sizeof def - strlen(def),
                         ", or an applicator voxel (needle track)");
            w_field(w, g, ci->key, rep->dims, H5T_STD_U8LE, H5T_NATIVE_UINT8, 1, od->zone_mask[c],
                    "none", def);
            if (w->st) break;
            hid_t d = H5Dopen2(g, ci->key, H5P_DEFAULT);
            w_attr_f64(w, d, H5MA_THRESHOLD, rep->zone_threshold[c]);
            w_attr_str(w, d, H5MA_THRESHOLD_UNITS, ci->units);
            w_attr_str(w, d, H5MA_FIELD, ci->field);
            w_attr_f64(w, d, H5MA_VOLUME_ML, rep->zone_mL[c]);
            close_id(d);
        }
    } else {
        w_attr_str(w, g, H5MA_SELECTED, H5M_SEGMENTATION);
        w_field(w, g, H5M_SEGMENTATION, rep->dims, H5T_STD_U8LE, H5T_NATIVE_UINT8, 1, od->seg_zone,
                "none", "ablation-zone segmentation as read (label != 0 = ablated)");
    }
    close_id(g);
}

static void write_h5(writer *w, const out_data *od)
{
    const abl_margin_report *rep = od->rep;
    hid_t root = w->file;
    w_attr_str(w, root, H5A_VERSION, ABLASIM_VERSION);
    w_attr_str(w, root, H5A_SOURCE, rep->source);
    w_attr_str(w, root, H5MA_MODE, rep->from_result ? "result" : "segmentations");
    if (rep->result_run_id[0]) w_attr_str(w, root, H5MA_RESULT_RUN_ID, rep->result_run_id);
    w_attr_str(w, root, H5MA_TUMOUR, rep->tumour_desc);
    w_attr_str(w, root, H5M_VERDICT, rep->pass ? "PASS" : "FAIL");
    w_attr_str(w, root, H5MA_VERDICT_RULE, verdict_rule);
    w_attr_str(w, root, H5MA_MARGIN_VERDICT, rep->m.pass ? "PASS" : "FAIL");
    w_attr_f64(w, root, H5MA_CRITICAL_CROSSED, rep->n_critical_crossed);
    w_attr_f64(w, root, H5MA_INPUT_COMPLETE, rep->input_complete ? 1 : 0);
    if (!rep->input_complete) {
        w_attr_str(w, root, H5MA_INPUT_NOTE, rep->input_note);
        w_attr_f64(w, root, H5MA_NONFINITE_VALUES, (double)rep->nonfinite_values);
    }
    w_attr_f64(w, root, H5M_MINIMAL_MARGIN_MM, rep->m.min_margin_mm);
    w_attr_f64(w, root, H5M_CRITERION_MM, rep->m.criterion_mm);
    w_attr_str(w, root, H5MA_PASS_RULE, pass_rule);
    w_attr_str(w, root, H5A_COMPILER, __VERSION__);
    w_attr_str(w, root, H5MA_DEFINITIONS, "see docs/MARGIN.md of ablasim");

    hid_t g = w_group(w, H5_GRID);
    w_attr_vec3(w, g, H5A_SPACING_MM, rep->spacing_mm);
    w_attr_vec3(w, g, H5A_ORIGIN_MM, od->origin_mm);
    hsize_t a34[2] = {3, 4};
    w_attr(w, g, H5MA_AFFINE_MM, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, od->affine, 2, a34);
    w_attr_str(w, g, H5A_AXES,
               "arrays [z][y][x], x fastest; spacing_mm, origin_mm are x y z; "
               "affine_mm maps voxel (i,j,k,1) to world mm");
    if (od->nifti_affine) {
        hsize_t a44[2] = {4, 4};
        w_attr(w, g, H5MA_NIFTI_AFFINE_MM, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, od->nifti_affine, 2,
               a44);
        w_attr_str(w, g, H5MA_NIFTI_NOTE,
                   "the arrays are in grid order (i, j, k along world x, y, "
                   "z, RAS+); nifti_affine_mm is the tumour file's own "
                   "affine, whose voxel order may differ");
    }
    w_field(w, g, H5M_TUMOUR_MASK_NAME, rep->dims, H5T_STD_U8LE, H5T_NATIVE_UINT8, 1, od->tumour, "none",
            "1 = tumour voxel");
    close_id(g);

    write_zones(w, od);
    write_margin_group(w, od);
    if (rep->n_critical > 0) {
        g = w_group(w, H5M_CRITICAL);
        for (int s = 0; s < rep->n_critical && !w->st; s++) {
            const abl_critical_report *c = &rep->critical[s];
            hid_t sg = -1;
            if (!w->st &&
                (sg = H5Gcreate2(g, c->spec.tissue, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0)
                w_fail(w, "creating group /critical/", c->spec.tissue);
            w_scalar(w, sg, H5MC_LIMIT_TMAX, c->spec.tmax_below_C, "degC",
                     "crossed when T_max >= this (NaN: no limit)");
            w_scalar(w, sg, H5MC_LIMIT_TMIN, c->spec.tmin_above_C, "degC",
                     "crossed when T_min <= this (NaN: no limit)");
            w_scalar(w, sg, H5MC_VOLUME_ML, c->volume_mL, "mL", NULL);
            w_scalar(w, sg, H5MC_T_MAX, c->tmax_C, "degC", "highest T_max in the structure");
            w_scalar(w, sg, H5MC_T_MIN, c->tmin_C, "degC", "lowest T_min in the structure");
            w_scalar(w, sg, H5MC_HOT_CROSSED_ML, c->hot_mL, "mL", NULL);
            w_scalar(w, sg, H5MC_COLD_CROSSED_ML, c->cold_mL, "mL", NULL);
            w_scalar(w, sg, H5MC_TIME_ABOVE_MAX_S, c->time_above_max_s, "s",
                     "longest time a voxel spent at or above the T_max limit (NaN: not "
                     "recorded in the result)");
            w_scalar(w, sg, H5MC_TIME_BELOW_MAX_S, c->time_below_max_s, "s",
                     "longest time a voxel spent at or below the T_min limit (NaN: not "
                     "recorded in the result)");
            w_scalar(w, sg, H5MC_DAMAGED_ML, c->damaged_mL, "mL",
                     "structure voxels inside the ablation zone");
            w_scalar(w, sg, H5MC_NONFINITE, (double)c->n_nonfinite, "voxels",
                     "structure voxels whose temperature is not finite (incomplete input); "
                     "they count as crossing the limit");
            w_scalar(w, sg, H5MC_LIMIT_CROSSED, c->crossed ? 1 : 0, "1", NULL);
            close_id(sg);
        }
        close_id(g);
    }
}

/* ---- JSON -------------------------------------------------------------------------------- */

static void json_body(FILE *f, const abl_margin_report *rep, const char *out_h5)
{
    const abl_margin_result *m = &rep->m;
    abl_json j;
    json_init(&j, f);
    json_begin_object(&j, NULL, false);
    json_str(&j, "ablasim_version", ABLASIM_VERSION);
    json_str(&j, "source", rep->source);
    json_str(&j, "mode", rep->from_result ? "result" : "segmentations");
    if (rep->result_run_id[0]) json_str(&j, "result_run_id", rep->result_run_id);
    json_str(&j, "output", out_h5);
    json_str(&j, "verdict", rep->pass ? "PASS" : "FAIL");
    json_str(&j, "verdict_rule", verdict_rule);
    json_str(&j, "margin_verdict", rep->m.pass ? "PASS" : "FAIL");
    json_int(&j, "critical_limits_crossed", rep->n_critical_crossed);
    json_bool(&j, "input_complete", rep->input_complete);
    if (rep->input_complete)
        json_null(&j, "input_note");
    else
        json_str(&j, "input_note", rep->input_note);
    json_uint(&j, "nonfinite_values", rep->nonfinite_values);
    json_begin_object(&j, "grid", true);
    json_int_array(&j, "dims", rep->dims, 3);
    json_num_array(&j, "spacing_mm", rep->spacing_mm, 3, 1.0);
    json_num(&j, "voxel_mL", m->voxel_mL);
    json_end_object(&j);
    json_str(&j, "tumour", rep->tumour_desc);
    json_begin_object(&j, "zones", false);
    if (rep->from_result) {
        for (int c = 0; c < ABL_ZONE_NCRIT; c++) {
            if (!rep->zone_available[c]) continue;
            const abl_zone_criterion_info *ci = zone_criterion_info((abl_zone_criterion)c);
            json_begin_object(&j, ci->key, true);
            json_str(&j, "field", ci->field);
            json_str(&j, "rule", ci->at_or_above ? ">=" : "<=");
            json_num(&j, "threshold", rep->zone_threshold[c]);
            json_str(&j, "units", ci->units);
            json_uint(&j, "voxels", rep->zone_voxels[c]);
            json_num(&j, "volume_mL", rep->zone_mL[c]);
            json_end_object(&j);
        }
        /* needle-track voxels included in every zone above */
        json_num(&j, "applicator_included_mL", rep->applicator_mL);
    } else {
        json_begin_object(&j, "segmentation", true);
        json_num(&j, "volume_mL", m->zone_mL);
        json_end_object(&j);
    }
    json_end_object(&j);
    json_begin_object(&j, "criterion", true);
    if (rep->from_result) {
        json_str(&j, "zone", zone_criterion_info(rep->criterion)->key);
        json_bool(&j, "automatic", rep->criterion_auto);
        json_num(&j, "threshold", rep->threshold);
        json_str(&j, "units", zone_criterion_info(rep->criterion)->units);
    } else {
        json_str(&j, "zone", "segmentation");
    }
    json_end_object(&j);
    json_begin_object(&j, "margin", false);
    json_str(&j, "verdict", m->pass ? "PASS" : "FAIL");
    json_str(&j, "pass_rule", pass_rule);
    json_num(&j, "criterion_mm", m->criterion_mm);
    json_num(&j, "minimal_margin_mm", m->min_margin_mm);
    /* JSON has no infinity: minimal_margin_mm is null then, and this says which (the HDF5
     * holds -inf, stdout "-inf (nothing ablated)"; a reader of the JSON alone could not tell;
     * an adversarial test, session 30). "finite" otherwise. */
    json_str(&j, "minimal_margin_kind",
             isinf(m->min_margin_mm) ? (m->min_margin_mm < 0 ? "-inf: nothing of the tumour "
                                                               "ablated"
                                                             : "inf: no tumour surface")
             : isnan(m->min_margin_mm) ? "undefined"
                                       : "finite");
    json_num_array(&j, "minimal_margin_location_mm", m->min_location_mm, 3, 1.0);
    json_int_array(&j, "minimal_margin_voxel_ijk", m->min_ijk, 3);
    json_num(&j, "resolution_mm", m->resolution_mm);
    json_uint(&j, "surface_voxels", m->n_surface);
    json_uint(&j, "surface_voxels_meeting_criterion", m->n_surface_ok);
    json_num(&j, "surface_fraction_meeting_criterion", m->surface_fraction_ok);
    json_num(&j, "tumour_volume_mL", m->tumour_mL);
    json_num(&j, "zone_volume_mL", m->zone_mL);
    json_num(&j, "residual_unablated_tumour_volume_mL", m->residual_mL);
    json_num(&j, "shell_volume_mL", m->shell_mL);
    json_num(&j, "shell_unablated_volume_mL", m->shell_unablated_mL);
    json_bool(&j, "zone_touches_grid_boundary", m->zone_touches_border);
    json_bool(&j, "tumour_touches_grid_boundary", m->tumour_touches_border);
    json_end_object(&j);
    json_begin_array(&j, "critical", false);
    for (int s = 0; s < rep->n_critical; s++) {
        const abl_critical_report *c = &rep->critical[s];
        json_begin_object(&j, NULL, false);
        json_str(&j, "tissue", c->spec.tissue);
        json_num(&j, "limit_T_max_below_C", c->spec.tmax_below_C);
        json_num(&j, "limit_T_min_above_C", c->spec.tmin_above_C);
        json_uint(&j, "voxels", c->n_voxels);
        json_num(&j, "volume_mL", c->volume_mL);
        json_num(&j, "T_max_C", c->tmax_C);
        json_num(&j, "T_min_C", c->tmin_C);
        json_num(&j, "hot_limit_crossed_volume_mL", c->hot_mL);
        json_num(&j, "cold_limit_crossed_volume_mL", c->cold_mL);
        json_num(&j, "time_at_or_above_limit_max_s", c->time_above_max_s);
        json_num(&j, "time_at_or_below_limit_max_s", c->time_below_max_s);
        json_num(&j, "damaged_volume_mL", c->damaged_mL);
        json_uint(&j, "nonfinite_voxels", c->n_nonfinite);
        json_bool(&j, "limit_crossed", c->crossed);
        json_end_object(&j);
    }
    json_end_array(&j);
    json_num(&j, "read_time_s", rep->read_s);
    json_num(&j, "compute_time_s", rep->compute_s);
    json_num(&j, "analysis_time_s", rep->wall_s); /* before writing */
    json_end_object(&j);
    json_finish(&j);
}


/* Write "<h5>.tmp" and "<json>.tmp", then rename both into place. */
/* NIfTI copies of the maps for 3D Slicer: affine of the (RAS+, axis-aligned) grid, so they
 * overlay by world coordinates on the image the grid came from. */
/* The NIfTI maps of --nifti PREFIX, and the temporary name nifti.c writes each to first
 * (write_image: path + ".tmp.nii.gz"); declared to fileguard before any work. */
/* The last two (the result's T_max and T_min, so that the isotherms can be shown over the
 * anatomy in a viewer) in result mode only: NIFTI_MAPS_RESULT maps there, 3 for two
 * segmentations. */
#define NIFTI_MAPS_RESULT 5
static const char *const nifti_map_suffix[NIFTI_MAPS_RESULT] = {
    "_margin_mm.nii.gz", "_zone.nii.gz", "_tumour.nii.gz", "_T_max_C.nii.gz", "_T_min_C.nii.gz"};
#define NIFTI_TMP_SUFFIX ".tmp.nii.gz"

/* The maps of --nifti PREFIX, each complete and durable under its temporary name, at[i] owning
 * it (nifti_pending.h); write_outputs renames them with the margin file and its summary. On
 * failure every temporary made so far is removed. */
static abl_status write_nifti_maps(const out_data *od, const char *prefix,
                                   abl_atomic at[NIFTI_MAPS_RESULT], abl_error *err)
{
    const abl_margin_report *rep = od->rep;
    abl_nifti_geom geom;
    nifti_geom_from_grid(&geom, rep->dims, rep->spacing_mm, od->origin_mm);
    char path[1200];
    abl_status st;
    for (int i = 0; i < NIFTI_MAPS_RESULT; i++) at[i] = (abl_atomic){.fd = -1};
    snprintf(path, sizeof path, "%s%s", prefix, nifti_map_suffix[0]);
    st = stop_asked(od->stop, rep->out_h5, err);
    if (!st)
        st = nifti_write_f32_pending(path, &geom, od->m->margin_mm,
                                 rep->input_complete
                                     ? "ablasim signed margin mm (NaN outside tumour)"
                                     : "ablasim signed margin mm, INCOMPLETE input",
                                 &at[0], err);
    const uint8_t *zone = rep->from_result ? od->zone_mask[rep->criterion] : od->seg_zone;
    snprintf(path, sizeof path, "%s%s", prefix, nifti_map_suffix[1]);
    if (!st) st = stop_asked(od->stop, rep->out_h5, err);
    if (!st && zone) st = nifti_write_u8_pending(path, &geom, zone, &at[1], err);
    snprintf(path, sizeof path, "%s%s", prefix, nifti_map_suffix[2]);
    if (!st) st = stop_asked(od->stop, rep->out_h5, err);
    if (!st) st = nifti_write_u8_pending(path, &geom, od->tumour, &at[2], err);
    const float *temp[2] = {od->T_max_C, od->T_min_C};
    static const char *const temp_desc[2] = {"ablasim T_max_C: highest temperature, degC",
                                             "ablasim T_min_C: lowest temperature, degC"};
    for (int i = 0; i < 2 && !st; i++) {
        if (!temp[i]) continue;
        snprintf(path, sizeof path, "%s%s", prefix, nifti_map_suffix[3 + i]);
        st = stop_asked(od->stop, rep->out_h5, err);
        if (!st) st = nifti_write_f32_pending(path, &geom, temp[i], temp_desc[i], &at[3 + i], err);
    }
    if (st)
        for (int i = 0; i < NIFTI_MAPS_RESULT; i++) atomic_abort(&at[i]);
    return st;
}

/* The margin file, its JSON summary and (--nifti) the maps: every file complete and durable
 * under a temporary name first, then all renamed, so that a failure while writing any of them
 * (a full disk) leaves every earlier file as it was: never new maps beside an old margin file
 * (found with a file-size limit, session 18). */
static abl_status write_outputs(const out_data *od, const char *nifti_prefix, abl_error *err)
{
    abl_atomic maps[NIFTI_MAPS_RESULT] = {
        {.fd = -1}, {.fd = -1}, {.fd = -1}, {.fd = -1}, {.fd = -1}};
    abl_status nst = nifti_prefix ? write_nifti_maps(od, nifti_prefix, maps, err) : ABL_OK;
    if (nst) return nst;
    const abl_margin_report *rep = od->rep;
    struct stat sb;
    writer w = {rep->out_h5, -1, ABL_OK, err};
    abl_atomic h5 = {.fd = -1}, js = {.fd = -1};
    int e = 0;
    if (stat(rep->out_h5, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        w.st = abl_fail(err, ABL_EIO, "%s: cannot write output: is a directory", rep->out_h5);
        goto done;
    }
    /* both files to fresh temporaries (atomic_file.h), made durable, then renamed */
    if ((w.st = stop_asked(od->stop, rep->out_h5, err))) goto done;
    if ((e = atomic_reserve(&h5, rep->out_h5, ".tmp"))) {
        w.st = abl_fail(err, ABL_EIO, "%s: cannot write output (creating %s.tmp: %s)",
                        rep->out_h5, rep->out_h5, strerror(e));
        goto done;
    }
    const char *tmp_h5 = h5.tmp;
    hid_t fapl = h5_fapl_write(); /* STRONG close, no sieve buffer: h5util.h */
    if (fapl < 0 || (w.file = H5Fcreate(tmp_h5, H5F_ACC_TRUNC, H5P_DEFAULT, fapl)) < 0)
        w_fail(&w, "creating", tmp_h5);
    close_id(fapl);
    write_h5(&w, od);
    if (!w.st && H5Fflush(w.file, H5F_SCOPE_GLOBAL) < 0) w_fail(&w, "writing", tmp_h5);
    if (w.file >= 0 && H5Fclose(w.file) < 0) w_fail(&w, "closing", tmp_h5);
    if (!w.st && (e = atomic_sync(&h5)))
        w.st = abl_fail(err, ABL_EIO, "%s: syncing %s failed (%s)", rep->out_h5, tmp_h5,
                        strerror(e));
    if (!w.st) w.st = stop_asked(od->stop, rep->out_h5, err);
    if (!w.st) {
        FILE *f = (e = atomic_open(&js, rep->out_json, ".tmp")) ? NULL : atomic_stream(&js);
        if (!f) {
            w.st = abl_fail(err, ABL_EIO, "%s.tmp: cannot write (%s)", rep->out_json,
                            strerror(e ? e : errno));
        } else {
            json_body(f, rep, rep->out_h5);
            if ((e = atomic_sync(&js)))
                w.st = abl_fail(err, ABL_EIO, "%s: writing failed (%s)", js.tmp, strerror(e));
        }
    }
    /* every member complete: the previous versions kept (undo.h), then the renames (summary,
     * margin file, maps), then the directory. A rename that fails part-way puts the previous
     * set back: never a new summary beside an old margin file (found by the failing-call
     * property of the safety suite) */
    abl_undo undo = {0};
    char undo_log[1100];
    snprintf(undo_log, sizeof undo_log, "%s.undo", rep->out_h5);
    /* the last moment a stop is taken: from the undo log on the new set is committed whole */
    if (!w.st) w.st = stop_asked(od->stop, rep->out_h5, err);
    if (!w.st) {
        /* with each new file's identity (its temporary, renamed as it is): a later recovery of
         * this log leaves a map another margin has put under the name since (undo.h) */
        const char *members[2 + NIFTI_MAPS_RESULT] = {rep->out_json, rep->out_h5};
        const char *news[2 + NIFTI_MAPS_RESULT] = {js.tmp, h5.tmp};
        int nm = 2;
        for (int i = 0; i < NIFTI_MAPS_RESULT; i++)
            if (maps[i].tmp) {
                news[nm] = maps[i].tmp;
                members[nm++] = maps[i].path;
            }
        if ((e = undo_begin_new(&undo, undo_log, "margin", members, news, nm)))
            w.st = abl_fail(err, ABL_EIO, "%s: cannot keep the previous margin files (%s: %s)",
                            rep->out_h5, undo.failed ? undo.failed : undo_log, strerror(e));
    }
    if (!w.st && (e = atomic_rename(&js)))
        w.st = abl_fail(err, ABL_EIO, "%s: cannot rename into place (%s)", rep->out_json,
                        strerror(e));
    if (!w.st && (e = atomic_rename(&h5)))
        w.st = abl_fail(err, ABL_EIO, "%s: cannot rename into place (%s)", rep->out_h5,
                        strerror(e));
    for (int i = 0; i < NIFTI_MAPS_RESULT && !w.st; i++)
        if (maps[i].tmp && (e = atomic_rename(&maps[i])))
            w.st = abl_fail(err, ABL_EIO, "%s: cannot rename into place (%s)", maps[i].path,
                            strerror(e));
    if (!w.st) fsync_dir_of(rep->out_h5);
    if (!w.st && maps[0].path) fsync_dir_of(maps[0].path);
    if (!w.st && (e = undo_end(&undo)))
        w.st = abl_fail(err, ABL_EIO, "%s: cannot remove the undo log %s (%s)", rep->out_h5,
                        undo_log, strerror(e));
    if (w.st && undo.active && (e = undo_restore(&undo))) {
        char first[sizeof err->msg];
        snprintf(first, sizeof first, "%s", err->msg);
        abl_fail(err, ABL_EIO,
                 "%s; restoring the previous margin files failed too (%s: %s): they are kept "
                 "as *.before-margin.tmp and the next 'ablasim margin' writing %s restores them",
                 first, undo.failed ? undo.failed : undo_log, strerror(e), rep->out_h5);
    }
    undo_free(&undo);
done:
    atomic_abort(&h5); /* each removes its temporary unless it was renamed */
    atomic_abort(&js);
    for (int i = 0; i < NIFTI_MAPS_RESULT; i++) atomic_abort(&maps[i]);
    return w.st;
}

/* Output names: the given .h5 (or <input stem>.margin.h5) and <that stem>.json. */
static abl_status output_names(const abl_margin_opts *o, const char *input, abl_margin_report *rep,
                               abl_error *err)
{
    int bad = 0;
    if (o->out_path) {
        if (!ends_with(o->out_path, ".h5"))
            return abl_fail(err, ABL_EINVAL, "%s: the margin file name must end in .h5",
                            o->out_path);
        bad |=
            snprintf(rep->out_h5, sizeof rep->out_h5, "%s", o->out_path) >= (int)sizeof rep->out_h5;
    } else {
        const char *suffix = ends_with(input, ".nii.gz") ? ".nii.gz"
                             : ends_with(input, ".nii")  ? ".nii"
                                                         : ".h5";
        bad |= swap_suffix(rep->out_h5, sizeof rep->out_h5, input, suffix, ".margin.h5");
    }
    bad |= swap_suffix(rep->out_json, sizeof rep->out_json, rep->out_h5, ".h5", ".json");
    if (bad) return abl_fail(err, ABL_EINVAL, "%s: file name too long", input);
    return ABL_OK;
}

/* The locks a margin holds: its margin file's and, with --nifti, each map's. */
#define MARGIN_LOCKS (1 + NIFTI_MAPS_RESULT)
static void unlock_all(abl_lock *locks[MARGIN_LOCKS])
{
    for (int i = 0; i < MARGIN_LOCKS; i++) {
        fg_unlock(locks[i]);
        locks[i] = NULL;
    }
}

/* Declare what the analysis reads and may write, refuse collisions and non-regular inputs
 * (before anything is opened: opening a FIFO would block), then lock the margin file and every
 * --nifti map so that a second process writing any of them fails at once (two margins of
 * different results with one --nifti prefix mixed their maps; found by an adversarial review,
 * session 23). inputs: role/path pairs. On success locks are held (unlock_all when done). */
static abl_status guard_files(const abl_margin_opts *o, const char *const roles[],
                              const char *const paths[], int ninputs,
                              const abl_margin_report *rep, abl_lock *locks[MARGIN_LOCKS],
                              abl_error *err)
{
    for (int i = 0; i < MARGIN_LOCKS; i++) locks[i] = NULL;
    abl_fileset *fs = fileset_new();
    char tmp_h5[1100], tmp_json[1100], lock_name[1100];
    char nii[NIFTI_MAPS_RESULT][1200], nii_tmp[NIFTI_MAPS_RESULT][1300],
        nii_lock[NIFTI_MAPS_RESULT][1300];
    snprintf(tmp_h5, sizeof tmp_h5, "%s.tmp", rep->out_h5);
    snprintf(tmp_json, sizeof tmp_json, "%s.tmp", rep->out_json);
    snprintf(lock_name, sizeof lock_name, "%s.lock", rep->out_h5); /* fg_lock's file */
    abl_status st = fs ? ABL_OK : abl_fail(err, ABL_ENOMEM, "out of memory");
    if (!st && o->nifti_prefix && strlen(o->nifti_prefix) > 1000)
        st = abl_fail(err, ABL_EINVAL, "--nifti %.60s...: file name prefix too long",
                      o->nifti_prefix);
    for (int i = 0; i < ninputs && !st; i++)
        st = fileset_input(fs, roles[i], paths[i], err);
    /* the files the result was computed from (its H5A_INPUT_FILES: scenario, tissue table,
     * mesh, initial field, presets) are inputs too: --nifti over the scenario's own NIfTI
     * segmentation replaced it (found by an adversarial review, session 23). Results from
     * before lack the list. */
    if (!st && rep->from_result && ninputs == 1) {
        h5_quiet q;
        quiet_begin(&q);
        const hid_t f = H5Fopen(paths[0], H5F_ACC_RDONLY, H5P_DEFAULT);
        char *list = f >= 0 && H5Aexists(f, H5A_INPUT_FILES) > 0
                         ? h5_attr_str_read(f, H5A_INPUT_FILES)
                         : NULL;
        if (f >= 0) H5Fclose(f);
        quiet_end(&q);
        for (char *line = list, *nl; line && *line && !st; line = nl + 1) {
            nl = strchr(line, '\n');
            if (!nl) break;
            *nl = '\0';
            struct stat sb;
            if (stat(line, &sb) == 0 && S_ISREG(sb.st_mode))
                st = fileset_input(fs, "file the result was computed from", line, err);
        }
        free(list);
    }
    if (!st) st = fileset_output(fs, "margin file", rep->out_h5, err);
    if (!st) st = fileset_output(fs, "margin summary", rep->out_json, err);
    if (!st) st = fileset_output(fs, "margin file temporary", tmp_h5, err);
    if (!st) st = fileset_output(fs, "margin summary temporary", tmp_json, err);
    if (!st) st = fileset_output(fs, "margin file lock", lock_name, err);
    /* the undo log of write_outputs (undo.h); the previous versions it keeps are hard links of
     * the outputs themselves (the same files: not declared, fileguard would call them a
     * collision) */
    char undo[1100], undo_tmp[1100];
    snprintf(undo, sizeof undo, "%s.undo", rep->out_h5);
    snprintf(undo_tmp, sizeof undo_tmp, "%s.undo.tmp", rep->out_h5);
    if (!st) st = fileset_output(fs, "margin undo log", undo, err);
    if (!st) st = fileset_output(fs, "margin undo log temporary", undo_tmp, err);
    static const char *const nii_role[NIFTI_MAPS_RESULT] = {
        "NIfTI margin map", "NIfTI zone mask", "NIfTI tumour mask", "NIfTI T_max map",
        "NIfTI T_min map"};
    static const char *const nii_tmp_role[NIFTI_MAPS_RESULT] = {
        "NIfTI margin map temporary", "NIfTI zone mask temporary", "NIfTI tumour mask temporary",
        "NIfTI T_max map temporary", "NIfTI T_min map temporary"};
    const int nmaps = rep->from_result ? NIFTI_MAPS_RESULT : 3;
    for (int k = 0; k < nmaps && o->nifti_prefix && !st; k++) {
        snprintf(nii[k], sizeof nii[k], "%s%s", o->nifti_prefix, nifti_map_suffix[k]);
        snprintf(nii_tmp[k], sizeof nii_tmp[k], "%s%s%s", o->nifti_prefix, nifti_map_suffix[k],
                 NIFTI_TMP_SUFFIX);
        snprintf(nii_lock[k], sizeof nii_lock[k], "%s%s.lock", o->nifti_prefix,
                 nifti_map_suffix[k]);
        st = fileset_output(fs, nii_role[k], nii[k], err);
        if (!st) st = fileset_output(fs, nii_tmp_role[k], nii_tmp[k], err);
        if (!st) st = fileset_output(fs, "NIfTI map lock", nii_lock[k], err);
    }
    if (!st) st = fileset_check(fs, err);
    fileset_free(fs);
    /* the undo log keeps each member's previous version as "<member>.before-margin.tmp",
     * replacing what has that name: an input under it is refused (not declared as an output:
     * a pending log's copy is a hard link of a member, which fileset_check would call a
     * collision; found by an adversarial review, session 23) */
    const char *members[2 + NIFTI_MAPS_RESULT] = {rep->out_h5, rep->out_json};
    int nmem = 2;
    for (int k = 0; k < nmaps && o->nifti_prefix; k++) members[nmem++] = nii[k];
    for (int m = 0; m < nmem && !st; m++) {
        char kept[1400];
        snprintf(kept, sizeof kept, "%s.before-margin.tmp", members[m]);
        for (int i = 0; i < ninputs && !st; i++)
            if (fg_same_file(paths[i], kept))
                st = abl_fail(err, ABL_EINVAL,
                              "%s %s has the name margin gives the previous version of %s while "
                              "replacing it; rename the input or choose another -o",
                              roles[i], paths[i], members[m]);
    }
    if (!st) st = stop_asked(o->stop, rep->out_h5, err); /* before any lock file exists */
    if (!st) st = fg_lock(rep->out_h5, &locks[0], err);
    for (int k = 0; k < nmaps && o->nifti_prefix && !st; k++)
        st = fg_lock(nii[k], &locks[1 + k], err);
    if (st) unlock_all(locks);
    /* a margin killed while it replaced its files left its undo log: the set it had goes back
     * before anything else (undo.h) */
    const char *what = undo;
    int e = st ? 0 : undo_recover(undo, NULL, &what);
    if (e) {
        st = abl_fail(err, ABL_EIO,
                      "%s: an interrupted margin's previous files could not be restored from the "
                      "undo log %s (%s: %s); its *.before-margin.tmp files are the previous "
                      "versions",
                      rep->out_h5, undo, what,
                      e == EINVAL   ? "not ablasim's undo log"
                      : e == EEXIST ? "another command has written it since the interrupted "
                                      "margin; nothing was changed: check the files, then "
                                      "remove the undo log"
                                    : strerror(e));
        unlock_all(locks);
    }
    return st;
}

/* ---- result mode ------------------------------------------------------------------------- */

static abl_status field_f64(const result_file *rf, const char *name, double **out,
                            const char *missing, abl_error *err)
{
    *out = malloc(rf->n * sizeof **out);
    if (!*out) return abl_fail(err, ABL_ENOMEM, "%s: no memory for %s", rf->path, name);
    abl_status st = read_grid_dataset(rf, name, H5T_NATIVE_DOUBLE, *out, missing, err);
    if (st) {
        free(*out);
        *out = NULL;
    }
    return st;
}

static abl_status time_map(const result_file *rf, bool above, double thr, float **out,
                           abl_error *err)
{
    *out = NULL;
    if (isnan(thr)) return ABL_OK;
    const char *name = find_time_map(rf, above, thr);
    if (!name) return ABL_OK;
    *out = malloc(rf->n * sizeof **out);
    if (!*out) return abl_fail(err, ABL_ENOMEM, "%s: no memory for %s", rf->path, name);
    abl_status st = read_grid_dataset(rf, name, H5T_NATIVE_FLOAT, *out, NULL, err);
    if (st) {
        free(*out);
        *out = NULL;
    }
    return st;
}

/* The overall verdict: the margin's, turned to FAIL by any critical structure that crossed a
 * limit (a PASS must not hide a cooked nerve). */
static void overall_verdict(abl_margin_report *rep)
{
    rep->n_critical_crossed = 0;
    for (int s = 0; s < rep->n_critical; s++)
        rep->n_critical_crossed += rep->critical[s].crossed;
    rep->pass = rep->m.pass && rep->n_critical_crossed == 0;
}

/* Both modes after reading (started at t0): the margin, its timings and the verdict. */
static abl_status compute_timed(const abl_margin_input *in, abl_margin_report *rep, double t0,
                                abl_error *err)
{
    const double t1 = omp_get_wtime();
    rep->read_s = t1 - t0;
    abl_status st = margin_compute(in, &rep->m, err);
    if (st) return st;
    rep->compute_s = omp_get_wtime() - t1;
    rep->wall_s = omp_get_wtime() - t0;
    overall_verdict(rep);
    return ABL_OK;
}

/* Both modes' last part: the outputs, the wall time and what writing took of it. */
static abl_status write_timed(const out_data *od, const char *nifti_prefix, abl_margin_report *rep,
                              double t0, abl_error *err)
{
    const abl_status st = write_outputs(od, nifti_prefix, err);
    rep->wall_s = omp_get_wtime() - t0;
    rep->write_s = rep->wall_s - rep->read_s - rep->compute_s;
    return st;
}

/* Non-finite values in a field the analysis reads (doubles d or floats f): their count, and
 * desc = "FIELD holds N non-finite value(s), the first VALUE at voxel (i, j, k)". */
static size_t find_nonfinite(const result_file *rf, const char *name, const double *d,
                             const float *f, char *desc, size_t len)
{
    const size_t n = rf->n;
    size_t cnt = 0, first = SIZE_MAX;
#pragma omp parallel for schedule(static) reduction(+ : cnt) reduction(min : first)
    for (size_t c = 0; c < n; c++) {
        const double v = d ? d[c] : (double)f[c];
        if (!isfinite(v)) {
            cnt++;
            if (c < first) first = c;
        }
    }
    if (cnt == 0) return 0;
    int ijk[3];
    voxel_ijk(rf->dims, first, ijk);
    snprintf(desc, len, "%s holds %zu non-finite value%s, the first %g at voxel (%d, %d, %d)",
             name, cnt, cnt == 1 ? "" : "s", d ? d[first] : (double)f[first], ijk[0], ijk[1],
             ijk[2]);
    return cnt;
}

static const char *rerun_hint = "rerun the scenario, or pass --allow-incomplete to analyse it "
                                "anyway (non-finite voxels then count as not ablated; the "
                                "outputs are marked input_complete = false)";

/* A field read for the analysis: refuse non-finite values, or (allowed) count them and mark
 * the report. */
static abl_status field_finite(const abl_margin_opts *o, const result_file *rf, const char *name,
                               const double *d, const float *f, abl_margin_report *rep,
                               abl_error *err)
{
    char desc[400];
    size_t cnt = find_nonfinite(rf, name, d, f, desc, sizeof desc);
    if (cnt == 0) return ABL_OK;
    if (!o->allow_incomplete)
        return abl_fail(err, ABL_EINVAL,
                        "%s: %s: the run that wrote it did not end cleanly; %s", rf->path, desc,
                        rerun_hint);
    rep->input_complete = false;
    rep->nonfinite_values += cnt;
    size_t at = strlen(rep->input_note);
    snprintf(rep->input_note + at, sizeof rep->input_note - at, "%s%s", at ? "; " : "", desc);
    return ABL_OK;
}

/* Refusal of an incomplete result: the reason, and where its fields first go non-finite (the
 * usual trace of a numerical fault), read one field at a time. */
static abl_status refuse_incomplete(const result_file *rf, const char *why, abl_error *err)
{
    char desc[400] = "";
    for (int c = 0; c < ABL_ZONE_NCRIT && !desc[0]; c++) {
        const char *name = zone_criterion_info((abl_zone_criterion)c)->field;
        if (H5Lexists(rf->file, name, H5P_DEFAULT) <= 0) continue;
        double *f = malloc(rf->n * sizeof *f);
        abl_error scratch = {0};
        if (f && read_grid_dataset(rf, name, H5T_NATIVE_DOUBLE, f, NULL, &scratch) == ABL_OK)
            find_nonfinite(rf, name, f, NULL, desc, sizeof desc);
        free(f);
    }
    return abl_fail(err, ABL_EINVAL, "%s: %s%s%s; %s", rf->path, why, desc[0] ? "; " : "", desc,
                    rerun_hint);
}

static abl_status analyse_result(const abl_margin_opts *o, abl_margin_report *rep, result_file *rf,
                                 uint8_t *zones[ABL_ZONE_NCRIT], uint8_t **tumour, double t0,
                                 abl_error *err)
{
    const char *path = o->result_path;
    abl_status st = open_result(rf, path, err);
    if (st) return st;
    char why[400];
    if (!result_complete(rf, why, sizeof why)) {
        if (!o->allow_incomplete) return refuse_incomplete(rf, why, err);
        rep->input_complete = false;
        snprintf(rep->input_note, sizeof rep->input_note, "%s", why);
    }
    {
        /* which run this margin describes: a later run to the same output name makes another
         * result under the same name, and a report pairing the two drew the old verdict over
         * the new fields (an adversarial test, session 29) */
        char *id = h5_attr_str_read(rf->file, H5A_RUN_ID);
        snprintf(rep->result_run_id, sizeof rep->result_run_id, "%s", id ? id : "");
        free(id);
    }
    const size_t n = rf->n;
    const double voxel_mL = rf->spacing_mm[0] * rf->spacing_mm[1] * rf->spacing_mm[2] * 1e-3;
    memcpy(rep->dims, rf->dims, sizeof rep->dims);
    memcpy(rep->spacing_mm, rf->spacing_mm, sizeof rep->spacing_mm);

    /* Tissues first: a typo should cost nothing. */
    const char *tissue = o->tumour_tissue ? o->tumour_tissue : "tumour";
    uint8_t tmember[256];
    if ((st = tissue_members(rf, tissue, "tumour", tmember, err))) return st;
    uint8_t cmember[ABL_MARGIN_MAX_CRITICAL][256];
    for (int s = 0; s < o->n_critical; s++)
        if ((st = tissue_members(rf, o->critical[s].tissue, "critical", cmember[s], err)))
            return st;
    snprintf(rep->tumour_desc, sizeof rep->tumour_desc, "tissue %s", tissue);

    *tumour = malloc(n);
    if (!*tumour) return abl_fail(err, ABL_ENOMEM, "%s: out of memory", path);
    size_t nt = 0;
    const uint8_t *lab = rf->labels;
    uint8_t *tm = *tumour;
#pragma omp parallel for schedule(static) reduction(+ : nt)
    for (size_t c = 0; c < n; c++) {
        tm[c] = tmember[lab[c]];
        nt += tm[c];
    }
    if (nt == 0)
        return abl_fail(err, ABL_EINVAL, "%s: tumour tissue '%s' has no voxel in this result", path,
                        tissue);

    /* Zones: every criterion whose field the file holds. */
    if (o->criterion >= 0) {
        const abl_zone_criterion_info *ci = zone_criterion_info(o->criterion);
        if (H5Lexists(rf->file, ci->field, H5P_DEFAULT) <= 0)
            return abl_fail(err, ABL_EINVAL,
                            "%s: criterion %s needs the dataset %s, which this result does "
                            "not hold (written by an ablasim without %s maps?); rerun the "
                            "scenario with this version, or use --criterion tmax or tmin",
                            path, ci->key, ci->field, ci->quantity);
    }
    double *tmax = NULL, *tmin = NULL;
    float *tmax32 = NULL, *tmin32 = NULL;
    for (int c = 0; c < ABL_ZONE_NCRIT && !st; c++) {
        const abl_zone_criterion_info *ci = zone_criterion_info((abl_zone_criterion)c);
        if (c > ABL_ZONE_TMIN && H5Lexists(rf->file, ci->field, H5P_DEFAULT) <= 0) continue;
        double *f = NULL;
        st = field_f64(rf, ci->field, &f, "not an ablasim result file", err);
        if (!st && (st = field_finite(o, rf, ci->field, f, NULL, rep, err))) free(f);
        if (st) break;
        double thr =
            c == o->criterion && !isnan(o->threshold) ? o->threshold : ci->default_threshold;
        zones[c] = malloc(n);
        if (!zones[c]) {
            free(f);
            st = abl_fail(err, ABL_ENOMEM, "%s: out of memory", path);
            break;
        }
        rep->zone_available[c] = true;
        rep->zone_threshold[c] = thr;
        rep->zone_voxels[c] = zone_mask_compute((abl_zone_criterion)c, f, n, thr, zones[c]);
        rep->zone_mL[c] = (double)rep->zone_voxels[c] * voxel_mL;
        if (c == ABL_ZONE_TMAX)
            tmax = f;
        else if (c == ABL_ZONE_TMIN)
            tmin = f;
        else
            free(f);
    }
    if (st) goto done;

    /* The verdict's criterion: as asked, or heat/cold by which default zone is larger. */
    if (o->criterion >= 0) {
        rep->criterion = (abl_zone_criterion)o->criterion;
    } else {
        rep->criterion_auto = true;
        rep->criterion = rep->zone_voxels[ABL_ZONE_TMIN] > rep->zone_voxels[ABL_ZONE_TMAX]
                             ? ABL_ZONE_TMIN
                             : ABL_ZONE_TMAX;
        if (!isnan(o->threshold)) {
            /* The threshold belongs to the criterion chosen: recompute its mask. */
            double *f = rep->criterion == ABL_ZONE_TMAX ? tmax : tmin;
            rep->zone_threshold[rep->criterion] = o->threshold;
            rep->zone_voxels[rep->criterion] =
                zone_mask_compute(rep->criterion, f, n, o->threshold, zones[rep->criterion]);
            rep->zone_mL[rep->criterion] = (double)rep->zone_voxels[rep->criterion] * voxel_mL;
        }
    }
    /* Applicator voxels (electrode or probe surfaces a source held at a temperature, e.g. a
     * cooled RFA needle at 10 C) are the needle track, destroyed by the insertion: counted as
     * ablated in the zone of the verdict, never as residual tumour. The other zones stay the
     * run's own thresholds: with the track in all of them a cryo run showed "T_max >= 55 C:
     * 0.068 mL" (its probe voxels, at -150 C) and an RFA run a -40 C zone of its 10 C
     * needle (QA of the result files, session 28). */
    int border_wo_track = -1; /* the criterion's zone on a grid face before the track is added */
    if (H5Lexists(rf->file, H5_APPLICATOR, H5P_DEFAULT) > 0) {
        /* a needle that enters through a grid face puts its track on that face: the track is
         * not zone that the grid may have cut off, so the boundary warning looks at the zone
         * without it (every MWA run whose shaft reached a face warned: adversarial test,
         * session 26) */
        if (rep->zone_available[rep->criterion])
            border_wo_track = margin_mask_on_faces(zones[rep->criterion], rf->dims);
        double *am = NULL;
        if ((st = field_f64(rf, H5_APPLICATOR, &am, "not an ablasim result file",
                            err)))
            goto done;
        size_t na = 0;
        for (size_t c = 0; c < n; c++) na += am[c] > 0.5;
        rep->applicator_mL = (double)na * voxel_mL;
        for (int z = 0; z < ABL_ZONE_NCRIT; z++) {
            if (!rep->zone_available[z] || z != (int)rep->criterion) continue;
            size_t nz = 0;
            for (size_t c = 0; c < n; c++) {
                if (am[c] > 0.5) zones[z][c] = 1;
                nz += zones[z][c];
            }
            rep->zone_voxels[z] = nz;
            rep->zone_mL[z] = (double)nz * voxel_mL;
        }
        free(am);
    }
    rep->threshold = rep->zone_threshold[rep->criterion];
    const uint8_t *zone = zones[rep->criterion];

    /* Critical structures (before the margin, so the temperature fields can go first). */
    rep->n_critical = o->n_critical;
    for (int s = 0; s < o->n_critical && !st; s++) {
        const abl_critical_spec *sp = &o->critical[s];
        float *ta = NULL, *tb = NULL;
        st = time_map(rf, true, sp->tmax_below_C, &ta, err);
        if (!st) st = time_map(rf, false, sp->tmin_above_C, &tb, err);
        if (!st && ta)
            st = field_finite(o, rf, find_time_map(rf, true, sp->tmax_below_C), NULL, ta, rep,
                              err);
        if (!st && tb)
            st = field_finite(o, rf, find_time_map(rf, false, sp->tmin_above_C), NULL, tb, rep,
                              err);
        if (!st)
            critical_evaluate(sp, n, rf->labels, cmember[s], tmax, tmin, ta, tb, zone, voxel_mL,
                              &rep->critical[s]);
        free(ta);
        free(tb);
    }
    /* --nifti: the temperature maps as float32 (what the file holds), so the doubles can go
     * before the margin is computed (peak memory) */
    if (!st && o->nifti_prefix) {
        tmax32 = malloc(n * sizeof *tmax32);
        tmin32 = malloc(n * sizeof *tmin32);
        if (!tmax32 || !tmin32) {
            st = abl_fail(err, ABL_ENOMEM, "%s: out of memory", path);
        } else {
            for (size_t c = 0; c < n; c++) {
                tmax32[c] = (float)tmax[c];
                tmin32[c] = (float)tmin[c];
            }
        }
    }
    free(tmax);
    free(tmin);
    tmax = tmin = NULL;
    if (st) goto done;

    abl_margin_input in = {.tumour = *tumour, .zone = zone, .criterion_mm = o->criterion_mm};
    memcpy(in.dims, rf->dims, sizeof in.dims);
    memcpy(in.spacing_mm, rf->spacing_mm, sizeof in.spacing_mm);
    margin_affine_from_grid(rf->spacing_mm, rf->origin_mm, in.affine);
    if ((st = compute_timed(&in, rep, t0, err))) goto done;
    if (border_wo_track >= 0) rep->m.zone_touches_border = border_wo_track != 0;

    out_data od = {
        .rep = rep,        .m = &rep->m,  .tumour = *tumour, .T_max_C = tmax32,
        .T_min_C = tmin32, .stop = o->stop};
    memcpy(od.affine, in.affine, sizeof od.affine);
    memcpy(od.origin_mm, rf->origin_mm, sizeof od.origin_mm);
    for (int c = 0; c < ABL_ZONE_NCRIT; c++)
        od.zone_mask[c] = zones[c];
    st = write_timed(&od, o->nifti_prefix, rep, t0, err);
done:
    free(tmax);
    free(tmin);
    free(tmax32);
    free(tmin32);
    return st;
}

abl_status margin_analyse_result(const abl_margin_opts *o, abl_margin_report *rep, abl_error *err)
{
    const double t0 = omp_get_wtime();
    memset(rep, 0, sizeof *rep);
    rep->from_result = true;
    rep->input_complete = true;
    if (!o->result_path || !o->result_path[0])
        return abl_fail(err, ABL_EINVAL, "margin: no result file given");
    if (!isfinite(o->criterion_mm) || o->criterion_mm < 0)
        return abl_fail(err, ABL_EINVAL, "margin: criterion %g mm must be finite and >= 0",
                        o->criterion_mm);
    if (o->criterion >= ABL_ZONE_NCRIT || o->n_critical < 0 ||
        o->n_critical > ABL_MARGIN_MAX_CRITICAL)
        return abl_fail(err, ABL_EINVAL, "margin: invalid options");
    for (int s = 0; s < o->n_critical; s++)
        for (int p = 0; p < s; p++)
            if (!strcmp(o->critical[p].tissue, o->critical[s].tissue))
                return abl_fail(err, ABL_EINVAL, "margin: critical structure %s given twice",
                                o->critical[s].tissue);
    snprintf(rep->source, sizeof rep->source, "%s", o->result_path);
    abl_status st = output_names(o, o->result_path, rep, err);
    if (st) return st;
    const char *roles[1] = {"result"}, *paths[1] = {o->result_path};
    abl_lock *locks[MARGIN_LOCKS];
    if ((st = guard_files(o, roles, paths, 1, rep, locks, err))) return st;

    h5_quiet q;
    quiet_begin(&q);
    result_file rf;
    uint8_t *zones[ABL_ZONE_NCRIT] = {0}, *tumour = NULL;
    st = analyse_result(o, rep, &rf, zones, &tumour, t0, err);
    result_close(&rf);
    quiet_end(&q);
    for (int c = 0; c < ABL_ZONE_NCRIT; c++)
        free(zones[c]);
    free(tumour);
    margin_result_free(&rep->m);
    unlock_all(locks);
    return st;
}

/* ---- segmentation mode ------------------------------------------------------------------- */

/* nifti_read_labels re-indexes every file into an axis-aligned grid in the RAS+ world frame
 * (positive spacing, origin = world centre of grid voxel (0,0,0)), so two segmentations of
 * the same image agree on that grid even when their files store the voxels in different
 * orders. They must: same dims, spacing and origin up to NIfTI-1's float32 storage. */
static abl_status same_grid(const abl_margin_opts *o, const abl_mesh *a, const abl_mesh *b,
                            abl_error *err)
{
    for (int d = 0; d < 3; d++)
        if (a->dims[d] != b->dims[d])
            return abl_fail(err, ABL_EINVAL,
                            "%s (%d x %d x %d voxels) and %s (%d x %d x %d) are "
                            "not on the same voxel grid: resample the zone onto the tumour "
                            "image (nearest neighbour) first",
                            o->tumour_nifti, a->dims[0], a->dims[1], a->dims[2], o->zone_nifti,
                            b->dims[0], b->dims[1], b->dims[2]);
    for (int d = 0; d < 3; d++) {
        const double h = a->spacing_mm[d];
        if (!(fabs(a->spacing_mm[d] - b->spacing_mm[d]) <= 1e-5 * h) ||
            !(fabs(a->origin_mm[d] - b->origin_mm[d]) <= 1e-3 * h))
            return abl_fail(err, ABL_EINVAL,
                            "%s and %s are not on the same grid (axis %c: "
                            "spacing %g vs %g mm, first voxel at %g vs %g mm): the "
                            "segmentations must be registered and sampled on one grid",
                            o->tumour_nifti, o->zone_nifti, "xyz"[d], a -> spacing_mm[d],
                            b -> spacing_mm[d], a -> origin_mm[d], b -> origin_mm[d]);
    }
    return ABL_OK;
}

abl_status margin_analyse_nifti(const abl_margin_opts *o, abl_margin_report *rep, abl_error *err)
{
    const double t0 = omp_get_wtime();
    memset(rep, 0, sizeof *rep);
    rep->input_complete = true; /* segmentations carry no completeness flag */
    if (!o->tumour_nifti || !o->zone_nifti)
        return abl_fail(err, ABL_EINVAL, "margin: both --tumor and --zone are needed");
    if (o->n_critical > 0)
        return abl_fail(err, ABL_EINVAL,
                        "margin: critical structures need a simulation result "
                        "(temperatures), not segmentations");
    if (!isfinite(o->criterion_mm) || o->criterion_mm < 0)
        return abl_fail(err, ABL_EINVAL, "margin: criterion %g mm must be finite and >= 0",
                        o->criterion_mm);
    snprintf(rep->source, sizeof rep->source, "tumour %s, zone %s", o->tumour_nifti, o->zone_nifti);
    snprintf(rep->tumour_desc, sizeof rep->tumour_desc, "label != 0 in %s", o->tumour_nifti);
    abl_status st = output_names(o, o->zone_nifti, rep, err);
    if (st) return st;
    const char *roles[2] = {"tumour segmentation", "zone segmentation"},
               *paths[2] = {o->tumour_nifti, o->zone_nifti};
    abl_lock *locks[MARGIN_LOCKS];
    if ((st = guard_files(o, roles, paths, 2, rep, locks, err))) return st;

    abl_mesh mt = {0}, mz = {0};
    abl_nifti_geom gt, gz;
    abl_margin_input in = {.criterion_mm = o->criterion_mm};
    out_data od = {.rep = rep, .m = &rep->m, .stop = o->stop};
    if ((st = nifti_read_labels(o->tumour_nifti, &mt, &gt, err)) ||
        (st = nifti_read_labels(o->zone_nifti, &mz, &gz, err)) ||
        (st = same_grid(o, &mt, &mz, err)))
        goto done;
    /* Masks as 0/1 (they are written back as such). */
    const size_t n = (size_t)mt.dims[0] * (size_t)mt.dims[1] * (size_t)mt.dims[2];
    size_t nt = 0;
#pragma omp parallel for schedule(static) reduction(+ : nt)
    for (size_t c = 0; c < n; c++) {
        mt.labels[c] = mt.labels[c] != 0;
        mz.labels[c] = mz.labels[c] != 0;
        nt += mt.labels[c];
    }
    if (nt == 0) {
        st = abl_fail(err, ABL_EINVAL, "%s: no voxel with a non-zero label (empty tumour mask)",
                      o->tumour_nifti);
        goto done;
    }
    in.tumour = mt.labels;
    in.zone = mz.labels;
    memcpy(in.dims, mt.dims, sizeof in.dims);
    memcpy(in.spacing_mm, mt.spacing_mm, sizeof in.spacing_mm);
    margin_affine_from_grid(mt.spacing_mm, mt.origin_mm, in.affine);
    memcpy(rep->dims, in.dims, sizeof rep->dims);
    memcpy(rep->spacing_mm, in.spacing_mm, sizeof rep->spacing_mm);
    if ((st = compute_timed(&in, rep, t0, err))) goto done;
    od.tumour = mt.labels;
    od.seg_zone = mz.labels;
    od.nifti_affine = (const double(*)[4])gt.affine;
    memcpy(od.affine, in.affine, sizeof od.affine);
    memcpy(od.origin_mm, mt.origin_mm, sizeof od.origin_mm);
    h5_quiet q;
    quiet_begin(&q);
    st = write_timed(&od, o->nifti_prefix, rep, t0, err);
    quiet_end(&q);
done:
    mesh_free(&mt);
    mesh_free(&mz);
    margin_result_free(&rep->m);
    unlock_all(locks);
    return st;
}
