/* mesh.c - voxel label grids in HDF5 (layout in mesh.h).
 *
 * Meshes come from other tools (segmentations converted with h5py, ITK, ...), so mesh_read
 * trusts nothing: every property of the file is checked before it is used and each problem
 * becomes one sentence naming the file. HDF5's own error printing is switched off while this
 * module runs (and restored afterwards) so that the caller's message is the only output; the
 * innermost HDF5 error description is appended where it helps (for example errno text).
 */
#include "ablasim/mesh.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ablasim/fileguard.h"
#include "ablasim/grid.h"
#include "ablasim/h5_schema.h"
#include "atomic_file.h"
#include "h5util.h"

/* Chunks of whole z-planes, at most this many bytes, so a reader of one slice decompresses
 * little and a chunk never approaches HDF5's 4 GiB chunk limit. */
#define MESH_CHUNK_TARGET ((size_t)4 << 20)

/* Geometry a mesh may declare, as for NIfTI label maps (nifti.c): voxels from 1 nm to 1 km,
 * positions within 1000 km. Anything outside is a corrupt or mis-scaled file, and values like
 * 1e-270 mm would underflow the stencil coefficients (k / h^2). */
#define MESH_MIN_VOXEL_MM 1e-6
#define MESH_MAX_VOXEL_MM 1e6
#define MESH_MAX_ORIGIN_MM 1e9

/* ---- reading ----------------------------------------------------------------------------- */

/* A float64[3] attribute of the labels dataset. *present = 0 when it does not exist. Integer
 * and float storage types are both accepted (converted to double); anything else, or a shape
 * other than 3 values, is an error. */
/* Only the IEEE layouts: libhdf5 1.10.8 converts a float type of any other layout (bit
 * positions, bias read from the file) with its soft converter, whose result then depends on
 * uninitialised memory (found by fuzz_mesh: the same file read twice gave spacings 1.9e-270
 * and 4.6e+192 mm). */
static bool ieee_float(hid_t type)
{
    return H5Tequal(type, H5T_IEEE_F64LE) > 0 || H5Tequal(type, H5T_IEEE_F64BE) > 0 ||
           H5Tequal(type, H5T_IEEE_F32LE) > 0 || H5Tequal(type, H5T_IEEE_F32BE) > 0;
}

static abl_status read_vec3_attr(const char *path, hid_t dset, const char *dsname,
                                 const char *name, int *present, double v[3], abl_error *err)
{
    *present = 0;
    htri_t ex = H5Aexists(dset, name);
    if (ex < 0)
        return abl_fail(err, ABL_EIO, "%s: cannot query attribute %s of %s", path, name,
                        dsname);
    if (ex == 0) return ABL_OK;
    *present = 1;

    abl_status st = ABL_OK;
    hid_t attr = H5Aopen(dset, name, H5P_DEFAULT);
    hid_t type = attr >= 0 ? H5Aget_type(attr) : -1;
    hid_t space = attr >= 0 ? H5Aget_space(attr) : -1;
    if (attr < 0 || type < 0 || space < 0) {
        st = abl_fail(err, ABL_EIO, "%s: cannot open attribute %s of %s", path, name,
                      dsname);
        goto done;
    }
    H5T_class_t cls = H5Tget_class(type);
    hssize_t npts = H5Sget_simple_extent_npoints(space);
    int rank = H5Sget_simple_extent_ndims(space);
    if (cls != H5T_FLOAT && cls != H5T_INTEGER) {
        st = abl_fail(err, ABL_EINVAL, "%s: attribute %s of %s must be numeric (3 values x y z)",
                      path, name, dsname);
        goto done;
    }
    if (cls == H5T_FLOAT && !ieee_float(type)) {
        st = abl_fail(err, ABL_EINVAL,
                      "%s: attribute %s of %s has a non-standard floating-point type; store "
                      "IEEE float64 or float32 values (or integers)",
                      path, name, dsname);
        goto done;
    }
    if (rank != 1 || npts != 3) {
        st = abl_fail(err, ABL_EINVAL,
                      "%s: attribute %s of %s must hold exactly 3 values (x y z), found %lld",
                      path, name, dsname, (long long)npts);
        goto done;
    }
    if (H5Aread(attr, H5T_NATIVE_DOUBLE, v) < 0) {
        char d[512];
        st = abl_fail(err, ABL_EIO, "%s: cannot read attribute %s of %s%s", path, name,
                      dsname, h5_detail(d, sizeof d));
        goto done;
    }
done:
    close_id(space);
    close_id(type);
    close_id(attr);
    return st;
}

/* Join 1-D label names into the scalar form: element i becomes "i:name" unless it already
 * has the "label:name" form. */
static char *join_names(char **v, size_t n)
{
    size_t len = 1;
    for (size_t i = 0; i < n; i++) len += strlen(v[i] ? v[i] : "") + 24;
    char *s = malloc(len), *p = s;
    if (!s) return NULL;
    *p = '\0';
    for (size_t i = 0; i < n; i++) {
        const char *e = v[i] ? v[i] : "";
        size_t left = len - (size_t)(p - s);
        int w = strchr(e, ':') ? snprintf(p, left, "%s%s", i ? "," : "", e)
                               : snprintf(p, left, "%s%zu:%s", i ? "," : "", i, e);
        p += w;
    }
    return s;
}

/* Strings stored as one string "0:fat,1:liver" or a 1-D array of strings (element i names
 * label i), fixed or variable length, in an attribute (attr) or a dataset obj; what names it in
 * messages. *out: the scalar form (join_names). */
static abl_status read_string_list(const char *path, hid_t obj, bool attr, const char *what,
                                   char **out, abl_error *err)
{
    *out = NULL;
    abl_status st = ABL_OK;
    hid_t mtype = -1;
    char **vals = NULL, *fixed = NULL;
    size_t n = 0;
    int is_vlen = 0, vlen_read = 0;
    hid_t type = attr ? H5Aget_type(obj) : H5Dget_type(obj);
    hid_t space = attr ? H5Aget_space(obj) : H5Dget_space(obj);
    if (type < 0 || space < 0) {
        st = abl_fail(err, ABL_EIO, "%s: cannot open %s", path, what);
        goto done;
    }
    int rank = H5Sget_simple_extent_ndims(space);
    hssize_t npts = H5Sget_simple_extent_npoints(space);
    if (H5Tget_class(type) != H5T_STRING || rank > 1 || npts < 1 || npts > 256) {
        st = abl_fail(err, ABL_EINVAL,
                      "%s: %s must be a string like \"0:fat,1:liver\" or a list of at most 256 "
                      "strings", path, what);
        goto done;
    }
    n = (size_t)npts;
    /* HDF5 does not convert between character sets: read in the one stored. */
    mtype = H5Tcopy(H5T_C_S1);
    vals = calloc(n, sizeof *vals);
    if (mtype < 0 || !vals || H5Tset_cset(mtype, H5Tget_cset(type)) < 0) {
        st = abl_fail(err, ABL_ENOMEM, "%s: out of memory reading %s", path, what);
        goto done;
    }
    is_vlen = H5Tis_variable_str(type) > 0;
    void *buf = NULL;
    if (is_vlen) {
        if (H5Tset_size(mtype, H5T_VARIABLE) < 0) goto read_failed;
        buf = vals;
    } else {
        /* +1: a fixed-length string that fills its field has no terminator. */
        size_t sz = H5Tget_size(type) + 1;
        fixed = calloc(n, sz);
        if (!fixed) {
            st = abl_fail(err, ABL_ENOMEM, "%s: out of memory reading %s", path, what);
            goto done;
        }
        if (H5Tset_size(mtype, sz) < 0) goto read_failed;
        for (size_t i = 0; i < n; i++) vals[i] = fixed + i * sz;
        buf = fixed;
    }
    if ((attr ? H5Aread(obj, mtype, buf) : H5Dread(obj, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                                                   buf)) < 0)
        goto read_failed;
    vlen_read = is_vlen;
    if (rank == 0) {
        const char *v = vals[0] ? vals[0] : "";
        size_t len = strlen(v) + 1;
        *out = malloc(len);
        if (*out) memcpy(*out, v, len);
    } else {
        *out = join_names(vals, n);
    }
    if (!*out) st = abl_fail(err, ABL_ENOMEM, "%s: out of memory reading %s", path, what);
    goto done;
read_failed:
    st = abl_fail(err, ABL_EIO, "%s: cannot read %s", path, what);
done:
    if (vlen_read)
        for (size_t i = 0; i < n; i++) H5free_memory(vals[i]);
    free(vals);
    free(fixed);
    close_id(mtype);
    close_id(space);
    close_id(type);
    return st;
}

/* The optional label_names attribute of a mesh's labels (read_string_list's forms). */
static abl_status read_label_names(const char *path, hid_t dset, char **out, abl_error *err)
{
    *out = NULL;
    htri_t ex = H5Aexists(dset, H5A_LABEL_NAMES);
    if (ex < 0)
        return abl_fail(err, ABL_EIO, "%s: cannot query attribute %s of %s", path,
                        H5A_LABEL_NAMES, H5_MESH_LABELS);
    if (ex == 0) return ABL_OK;
    hid_t attr = H5Aopen(dset, H5A_LABEL_NAMES, H5P_DEFAULT);
    if (attr < 0)
        return abl_fail(err, ABL_EIO, "%s: cannot open attribute %s of %s", path,
                        H5A_LABEL_NAMES, H5_MESH_LABELS);
    abl_status st = read_string_list(path, attr, true,
                                     "attribute " H5A_LABEL_NAMES " of " H5_MESH_LABELS, out,
                                     err);
    close_id(attr);
    return st;
}

/* Whether the absolute path dsname exists in file, component by component: H5Lexists on "/a/b"
 * fails (rather than answering 0) when /a is missing, so a wrong path is one sentence. */
static htri_t path_exists(hid_t file, const char *dsname)
{
    htri_t ex = dsname[0] == '/' && dsname[1] ? 1 : 0;
    char part[1024];
    for (const char *p = dsname + 1; ex > 0 && *p;) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - dsname) : strlen(dsname);
        if (len >= sizeof part) return 0;
        memcpy(part, dsname, len);
        part[len] = '\0';
        ex = H5Lexists(file, part, H5P_DEFAULT);
        p = slash ? slash + 1 : p + strlen(p);
    }
    return ex;
}

/* An optional 1-D string dataset (an ablasim result's /grid/material_names): *out NULL when
 * the file has none. */
static abl_status read_names_dataset(const char *path, hid_t file, const char *dsname,
                                     char **out, abl_error *err)
{
    *out = NULL;
    if (path_exists(file, dsname) <= 0) return ABL_OK;
    hid_t ds = H5Dopen2(file, dsname, H5P_DEFAULT);
    if (ds < 0) return abl_fail(err, ABL_EIO, "%s: cannot open dataset %s", path, dsname);
    char what[300];
    snprintf(what, sizeof what, "dataset %s", dsname);
    abl_status st = read_string_list(path, ds, false, what, out, err);
    close_id(ds);
    return st;
}

/* Set when HDF5 meets a stored label outside 0..255 while converting to uint8: the read is
 * aborted instead of silently clamping the value to 0 or 255 (a wrong tissue). */
typedef struct {
    int out_of_range;
} conv_state;

static H5T_conv_ret_t conv_cb(H5T_conv_except_t except, hid_t src, hid_t dst, void *src_buf,
                              void *dst_buf, void *user)
{
    (void)src;
    (void)dst;
    (void)src_buf;
    (void)dst_buf;
    conv_state *cs = user;
    if (except == H5T_CONV_EXCEPT_RANGE_HI || except == H5T_CONV_EXCEPT_RANGE_LOW) {
        cs->out_of_range = 1;
        return H5T_CONV_ABORT;
    }
    return H5T_CONV_UNHANDLED;
}

static const char *class_name(H5T_class_t c)
{
    switch (c) {
    case H5T_FLOAT: return "a floating-point type";
    case H5T_STRING: return "a string type";
    case H5T_ENUM: return "an enum type (h5py stores numpy bool as one)";
    case H5T_COMPOUND: return "a compound type";
    case H5T_BITFIELD: return "a bitfield type";
    case H5T_OPAQUE: return "an opaque type";
    case H5T_ARRAY: return "an array type";
    case H5T_VLEN: return "a variable-length type";
    case H5T_REFERENCE: return "a reference type";
    default: return "a non-integer type";
    }
}

/* Voxels that were never written read back as the fill value 0, a real label, without any
 * error: a dataset created but not filled, or a chunked one whose writer stopped early. Every
 * chunk (chunked layout) or the whole block (contiguous) must be stored; compact data lives in
 * the header. Checked before allocating what the header declares: a tiny file may declare
 * 2^31 voxels. (H5Dget_space_status cannot tell: it calls any compressed dataset "partly
 * allocated".) */
static abl_status check_stored(const char *path, hid_t dset, const char *dsname,
                               const char *reads_as, const hsize_t dims[3], abl_error *err)
{
    abl_status st = ABL_OK;
    hid_t dcpl = H5Dget_create_plist(dset);
    H5D_layout_t layout = dcpl >= 0 ? H5Pget_layout(dcpl) : H5D_LAYOUT_ERROR;
    hsize_t expect = 1, stored = 0;
    int ok = 0;
    if (layout == H5D_COMPACT) {
        ok = 1;
    } else if (layout == H5D_CONTIGUOUS) {
        H5D_space_status_t s;
        ok = H5Dget_space_status(dset, &s) >= 0 && s == H5D_SPACE_STATUS_ALLOCATED;
    } else if (layout == H5D_CHUNKED) {
        hsize_t cd[3], maxd[3];
        hid_t space = H5Dget_space(dset);
        if (space >= 0 && H5Pget_chunk(dcpl, 3, cd) == 3 && cd[0] && cd[1] && cd[2] &&
            H5Sget_simple_extent_dims(space, NULL, maxd) == 3) {
            /* A chunk wider than a fixed dimension cannot be written by HDF5 (H5Pset_chunk
             * refuses it); a file that declares one is corrupt, and libhdf5 1.10.8 then copies
             * a whole declared chunk out of the smaller decompressed one (heap overflow in
             * H5VM_memcpyvv under H5Dread, found by fuzz_mesh). */
            for (int a = 0; a < 3; a++)
                if (maxd[a] != H5S_UNLIMITED && cd[a] > maxd[a]) {
                    st = abl_fail(err, ABL_EINVAL,
                                  "%s: %s is corrupt: its chunks (%llu x %llu x %llu) are larger "
                                  "than the dataset (%llu x %llu x %llu)",
                                  path, dsname, (unsigned long long)cd[0],
                                  (unsigned long long)cd[1], (unsigned long long)cd[2],
                                  (unsigned long long)dims[0], (unsigned long long)dims[1],
                                  (unsigned long long)dims[2]);
                    close_id(space);
                    close_id(dcpl);
                    return st;
                }
            if (H5Dget_num_chunks(dset, space, &stored) >= 0) {
                for (int a = 0; a < 3; a++) expect *= (dims[a] + cd[a] - 1) / cd[a];
                ok = stored >= expect;
            }
        }
        close_id(space);
    }
    if (!ok)
        st = abl_fail(err, ABL_EINVAL,
                      "%s: %s does not store all of its %llu x %llu x %llu voxels (never "
                      "written, or written incompletely: %llu of %llu chunks); unwritten voxels "
                      "would read as %s",
                      path, dsname, (unsigned long long)dims[0],
                      (unsigned long long)dims[1], (unsigned long long)dims[2],
                      (unsigned long long)stored,
                      (unsigned long long)(layout == H5D_CHUNKED ? expect : 1), reads_as);
    close_id(dcpl);
    return st;
}

/* A dataset's space: rank 3, each dimension 1..INT_MAX, at most ABL_GRID_MAX_VOXELS voxels
 * (dims [nz][ny][nx] as stored, n their product). */
static abl_status check_shape(const char *path, hid_t space, const char *dsname, hsize_t dims[3],
                              size_t *n, abl_error *err)
{
    int rank = H5Sget_simple_extent_ndims(space);
    if (rank != 3)
        return abl_fail(err, ABL_EINVAL, "%s: %s must be 3-D [nz][ny][nx], found rank %d", path,
                        dsname, rank);
    H5Sget_simple_extent_dims(space, dims, NULL);
    *n = 1;
    for (int a = 0; a < 3; a++) {
        if (dims[a] < 1 || dims[a] > (hsize_t)INT_MAX)
            return abl_fail(err, ABL_EINVAL, "%s: %s has dimensions %llu x %llu x %llu (nz ny "
                            "nx); each must be between 1 and %d", path, dsname,
                            (unsigned long long)dims[0], (unsigned long long)dims[1],
                            (unsigned long long)dims[2], INT_MAX);
        /* No overflow: each factor < 2^31 and the running product is checked every step. */
        *n *= (size_t)dims[a];
        if (*n > ABL_GRID_MAX_VOXELS)
            return abl_fail(err, ABL_EINVAL,
                            "%s: %s has %llu x %llu x %llu voxels (nz ny nx); at most %zu allowed",
                            path, dsname, (unsigned long long)dims[0],
                            (unsigned long long)dims[1], (unsigned long long)dims[2],
                            (size_t)ABL_GRID_MAX_VOXELS);
    }
    return ABL_OK;
}

static abl_status read_labels(const char *path, hid_t file, bool names, abl_mesh *m,
                              abl_error *err)
{
    char d[512];
    abl_status st = ABL_OK;
    hid_t dset = -1, type = -1, space = -1, dxpl = -1;

    htri_t ex = H5Lexists(file, H5_MESH_LABELS, H5P_DEFAULT);
    if (ex <= 0)
        return abl_fail(err, ABL_EINVAL, "%s: no dataset %s (expected uint8 [nz][ny][nx] labels)",
                        path, H5_MESH_LABELS);
    dset = H5Dopen2(file, H5_MESH_LABELS, H5P_DEFAULT);
    if (dset < 0) {
        st = abl_fail(err, ABL_EINVAL, "%s: %s is not a readable dataset%s", path, H5_MESH_LABELS,
                      h5_detail(d, sizeof d));
        goto done;
    }
    type = H5Dget_type(dset);
    space = H5Dget_space(dset);
    if (type < 0 || space < 0) {
        st = abl_fail(err, ABL_EIO, "%s: cannot query %s", path, H5_MESH_LABELS);
        goto done;
    }
    H5T_class_t cls = H5Tget_class(type);
    if (cls != H5T_INTEGER) {
        st = abl_fail(err, ABL_EINVAL, "%s: %s must have an integer type (uint8 labels), found %s",
                      path, H5_MESH_LABELS, class_name(cls));
        goto done;
    }
    hsize_t dims[3];
    size_t n;
    if ((st = check_shape(path, space, H5_MESH_LABELS, dims, &n, err))) goto done;
    m->dims[0] = (int)dims[2];
    m->dims[1] = (int)dims[1];
    m->dims[2] = (int)dims[0];

    int present;
    st = read_vec3_attr(path, dset, H5_MESH_LABELS, H5A_SPACING_MM, &present, m->spacing_mm, err);
    if (st != ABL_OK) goto done;
    if (!present) {
        st = abl_fail(err, ABL_EINVAL, "%s: %s has no attribute %s (voxel size x y z in mm)",
                      path, H5_MESH_LABELS, H5A_SPACING_MM);
        goto done;
    }
    for (int a = 0; a < 3; a++) {
        if (!(m->spacing_mm[a] >= MESH_MIN_VOXEL_MM && m->spacing_mm[a] <= MESH_MAX_VOXEL_MM)) {
            st = abl_fail(err, ABL_EINVAL,
                          "%s: attribute %s of %s = [%g, %g, %g]: each must be between %g and "
                          "%g mm",
                          path, H5A_SPACING_MM, H5_MESH_LABELS, m->spacing_mm[0],
                          m->spacing_mm[1], m->spacing_mm[2], MESH_MIN_VOXEL_MM,
                          MESH_MAX_VOXEL_MM);
            goto done;
        }
    }
    st = read_vec3_attr(path, dset, H5_MESH_LABELS, H5A_ORIGIN_MM, &present, m->origin_mm, err);
    if (st != ABL_OK) goto done;
    if (present) {
        for (int a = 0; a < 3; a++) {
            if (!(fabs(m->origin_mm[a]) <= MESH_MAX_ORIGIN_MM)) {
                st = abl_fail(err, ABL_EINVAL,
                              "%s: attribute %s of %s = [%g, %g, %g]: values must be finite and "
                              "within +-%g mm",
                              path, H5A_ORIGIN_MM, H5_MESH_LABELS, m->origin_mm[0],
                              m->origin_mm[1], m->origin_mm[2], MESH_MAX_ORIGIN_MM);
                goto done;
            }
        }
    } else {
        /* Default: the grid centred on 0, so shapes given around the origin land in it. */
        for (int a = 0; a < 3; a++) m->origin_mm[a] = -0.5 * (m->dims[a] - 1) * m->spacing_mm[a];
        for (int a = 0; a < 3; a++) {
            if (!(fabs(m->origin_mm[a]) <= MESH_MAX_ORIGIN_MM)) {
                st = abl_fail(err, ABL_EINVAL,
                              "%s: %s: %d voxels of %g mm along %c centred on 0 reach beyond "
                              "+-%g mm",
                              path, H5_MESH_LABELS, m->dims[a], m->spacing_mm[a], "xyz"[a],
                              MESH_MAX_ORIGIN_MM);
                goto done;
            }
        }
    }

    /* an optional hint: the run path skips it (three classes of libhdf5 faults on corrupt
     * files come in through it, docs/RELIABILITY.md) */
    if (names) {
        st = read_label_names(path, dset, &m->label_names, err);
        if (st != ABL_OK) goto done;
    }
    st = check_stored(path, dset, H5_MESH_LABELS, "label 0", dims, err);
    if (st != ABL_OK) goto done;

    m->labels = malloc(n);
    if (!m->labels) {
        st = abl_fail(err, ABL_ENOMEM, "%s: cannot allocate %zu bytes for %s", path, n,
                      H5_MESH_LABELS);
        goto done;
    }
    conv_state cs = {0};
    dxpl = H5Pcreate(H5P_DATASET_XFER);
    if (dxpl < 0 || H5Pset_type_conv_cb(dxpl, conv_cb, &cs) < 0) {
        st = abl_fail(err, ABL_EINTERNAL, "%s: cannot set up the HDF5 transfer", path);
        goto done;
    }
    if (H5Dread(dset, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, dxpl, m->labels) < 0) {
        if (cs.out_of_range)
            st = abl_fail(err, ABL_EINVAL, "%s: %s holds a label outside 0..255", path,
                          H5_MESH_LABELS);
        else
            st = abl_fail(err, ABL_EIO, "%s: reading %s failed (truncated or corrupt?)%s", path,
                          H5_MESH_LABELS, h5_detail(d, sizeof d));
        goto done;
    }
done:
    close_id(dxpl);
    close_id(space);
    close_id(type);
    close_id(dset);
    return st;
}

/* Open path read-only as HDF5, after our own checks: HDF5 would report a missing file, a
 * directory and a file without read permission all as "unable to open file". */
static abl_status open_h5(const char *path, const char *what, hid_t *file, abl_error *err)
{
    *file = -1;
    if (!path || !path[0]) return abl_fail(err, ABL_EINVAL, "%s: empty file name", what);
    /* opening a FIFO must not wait for a writer (it is refused just below) */
    bool regular, is_dir;
    int fd = fg_open_noblock(path, &regular, &is_dir);
    if (fd < 0) return abl_fail(err, ABL_EIO, "%s: cannot open (%s)", path, strerror(errno));
    close(fd);
    if (is_dir) return abl_fail(err, ABL_EIO, "%s: cannot open (is a directory)", path);
    if (!regular)
        return abl_fail(err, ABL_EINVAL,
                        "%s: not a regular file (a FIFO, device or socket); only regular files "
                        "are read as %s",
                        path, what);
    if (H5Fis_hdf5(path) <= 0)
        return abl_fail(err, ABL_EIO, "%s: not a readable HDF5 file (truncated or corrupt?)", path);
    *file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (*file < 0) {
        char d[512];
        return abl_fail(err, ABL_EIO, "%s: not a readable HDF5 file (truncated or corrupt?)%s",
                        path, h5_detail(d, sizeof d));
    }
    return ABL_OK;
}

/* The reader itself, in the calling process. */
static abl_status read_local(const char *path, bool names, abl_mesh *out, abl_error *err)
{
    memset(out, 0, sizeof *out);
    if (!path || !path[0]) return abl_fail(err, ABL_EINVAL, "mesh: empty file name");
    h5_quiet q;
    quiet_begin(&q);
    hid_t file = -1;
    abl_status st = open_h5(path, "meshes", &file, err);
    if (st == ABL_OK) st = read_labels(path, file, names, out, err);
    close_id(file);
    quiet_end(&q);
    if (st != ABL_OK) mesh_free(out);
    return st;
}

/* spacing_mm / origin_mm of a scalar field: the dataset's own attributes, else those of the
 * file's /grid/labels (an ablasim result names its grid there). */
static abl_status field_geometry(const char *path, hid_t file, hid_t dset, const char *dsname,
                                 abl_field_file *f, abl_error *err)
{
    int sp = 0, org = 0;
    abl_status st = read_vec3_attr(path, dset, dsname, H5A_SPACING_MM, &sp, f->spacing_mm, err);
    if (st == ABL_OK)
        st = read_vec3_attr(path, dset, dsname, H5A_ORIGIN_MM, &org, f->origin_mm, err);
    if (st != ABL_OK) return st;
    if (!sp && !org && H5Lexists(file, H5_GRID, H5P_DEFAULT) > 0 &&
        H5Lexists(file, H5_LABELS, H5P_DEFAULT) > 0) {
        hid_t g = H5Dopen2(file, H5_LABELS, H5P_DEFAULT);
        if (g >= 0) {
            st = read_vec3_attr(path, g, H5_LABELS, H5A_SPACING_MM, &sp, f->spacing_mm, err);
            if (st == ABL_OK)
                st = read_vec3_attr(path, g, H5_LABELS, H5A_ORIGIN_MM, &org, f->origin_mm, err);
            close_id(g);
            if (st != ABL_OK) return st;
        }
    }
    f->has_spacing = sp != 0;
    f->has_origin = org != 0;
    for (int a = 0; a < 3; a++) {
        if (f->has_spacing && !(f->spacing_mm[a] >= MESH_MIN_VOXEL_MM &&
                                f->spacing_mm[a] <= MESH_MAX_VOXEL_MM))
            return abl_fail(err, ABL_EINVAL, "%s: attribute %s of %s = [%g, %g, %g]: each must "
                            "be between %g and %g mm", path, H5A_SPACING_MM, dsname,
                            f->spacing_mm[0], f->spacing_mm[1], f->spacing_mm[2],
                            MESH_MIN_VOXEL_MM, MESH_MAX_VOXEL_MM);
        if (f->has_origin && !(fabs(f->origin_mm[a]) <= MESH_MAX_ORIGIN_MM))
            return abl_fail(err, ABL_EINVAL, "%s: attribute %s of %s = [%g, %g, %g]: values "
                            "must be finite and within +-%g mm", path, H5A_ORIGIN_MM, dsname,
                            f->origin_mm[0], f->origin_mm[1], f->origin_mm[2],
                            MESH_MAX_ORIGIN_MM);
    }
    return ABL_OK;
}

static abl_status read_field(const char *path, hid_t file, const char *dsname, bool optional,
                             abl_field_file *f, abl_error *err)
{
    char d[512];
    abl_status st = ABL_OK;
    hid_t dset = -1, type = -1, space = -1;
    const htri_t ex = path_exists(file, dsname);
    if (ex <= 0 && optional) return ABL_OK; /* f->values stays NULL */
    if (ex <= 0)
        return abl_fail(err, ABL_EINVAL,
                        "%s: no dataset %s (expected a float or integer [nz][ny][nx] field)",
                        path, dsname);
    dset = H5Dopen2(file, dsname, H5P_DEFAULT);
    if (dset < 0) {
        st = abl_fail(err, ABL_EINVAL, "%s: %s is not a readable dataset%s", path, dsname,
                      h5_detail(d, sizeof d));
        goto done;
    }
    type = H5Dget_type(dset);
    space = H5Dget_space(dset);
    if (type < 0 || space < 0) {
        st = abl_fail(err, ABL_EIO, "%s: cannot query %s", path, dsname);
        goto done;
    }
    H5T_class_t cls = H5Tget_class(type);
    /* IEEE layouts only, as for the attributes (read_vec3_attr): libhdf5's soft converter of
     * other float layouts reads uninitialised memory */
    if (!(cls == H5T_INTEGER || (cls == H5T_FLOAT && ieee_float(type)))) {
        st = abl_fail(err, ABL_EINVAL,
                      "%s: %s must hold IEEE float64 or float32 values (or integers), found %s",
                      path, dsname, cls == H5T_FLOAT ? "a non-standard floating-point type"
                                                     : class_name(cls));
        goto done;
    }
    hsize_t dims[3];
    size_t n;
    if ((st = check_shape(path, space, dsname, dims, &n, err))) goto done;
    f->dims[0] = (int)dims[2];
    f->dims[1] = (int)dims[1];
    f->dims[2] = (int)dims[0];
    if ((st = field_geometry(path, file, dset, dsname, f, err)) ||
        (st = check_stored(path, dset, dsname, "0", dims, err)))
        goto done;
    f->values = malloc(n * sizeof *f->values);
    if (!f->values) {
        st = abl_fail(err, ABL_ENOMEM, "%s: cannot allocate %zu bytes for %s", path,
                      n * sizeof *f->values, dsname);
        goto done;
    }
    if (H5Dread(dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, f->values) < 0) {
        st = abl_fail(err, ABL_EIO, "%s: reading %s failed (truncated or corrupt?)%s", path,
                      dsname, h5_detail(d, sizeof d));
        goto done;
    }
    /* what the field is (its units) and whether the file is a finished result: the reader
     * decides; a units attribute that is there but no string (a number) is no unit the reader
     * accepts (it counted as absent, so such a field ran as degC: a review, session 29) */
    if (H5Aexists(dset, H5A_UNITS) > 0) {
        char *u = h5_attr_str_read(dset, H5A_UNITS);
        snprintf(f->units, sizeof f->units, "%s", u ? u : "(not a text)");
        free(u);
    }
    f->file_complete = -1;
    if (H5Aexists(file, H5A_COMPLETE) > 0) {
        long long c = -1;
        hid_t a = H5Aopen(file, H5A_COMPLETE, H5P_DEFAULT);
        if (a >= 0 && H5Aread(a, H5T_NATIVE_LLONG, &c) >= 0) f->file_complete = c == 1 ? 1 : 0;
        else f->file_complete = 0; /* there but unreadable: not a finished result */
        close_id(a);
    }
done:
    close_id(space);
    close_id(type);
    close_id(dset);
    return st;
}

static abl_status read_field_local(const char *path, const char *dsname, bool optional,
                                   const char *names_ds, abl_field_file *out, abl_error *err)
{
    memset(out, 0, sizeof *out);
    h5_quiet q;
    quiet_begin(&q);
    hid_t file = -1;
    abl_status st = open_h5(path, "fields", &file, err);
    if (st == ABL_OK) st = read_field(path, file, dsname, optional, out, err);
    if (st == ABL_OK && out->values && names_ds)
        st = read_names_dataset(path, file, names_ds, &out->names, err);
    close_id(file);
    quiet_end(&q);
    if (st != ABL_OK) mesh_field_free(out);
    return st;
}

/* ---- guarded reading: a child process reads, the parent waits with a time limit ---------- */

/* libhdf5 1.10 can crash (NULL reads, heap overflows) or loop forever on a corrupt file, and no
 * check of ours can come first: the faults are inside the calls that look at the file. So the
 * child runs the in-process reader and streams the result through a pipe: a header (status,
 * geometry, sizes, message), the voxel data (labels or float64 values), the names, a trailer.
 * Anything short of the trailer followed by a clean exit is a failed read; a child still busy
 * at the deadline is killed. */
#define GUARD_MAGIC 0x6d657368u   /* "mesh" */
#define GUARD_TRAILER 0x656e6421u /* "end!" */
#define GUARD_MAX_NAMES ((uint64_t)1 << 26)

/* What the child reads: a mesh's labels (dataset NULL) or the scalar field `dataset`. */
typedef struct {
    const char *dataset;
    bool names;
    bool optional; /* a field that may be absent: an OK answer with no voxels */
    const char *names_dataset; /* a field's: its file's string dataset, sent as the names */
} guard_req;

typedef struct {
    uint32_t magic;
    int32_t status;
    int32_t dims[3];
    int32_t has_spacing, has_origin;
    double spacing_mm[3], origin_mm[3];
    uint64_t nvoxels;   /* voxels whose data follow (1 byte each for labels, 8 for a field) */
    uint64_t names_len; /* bytes of label_names that follow, with the NUL; 0: none */
    char units[32];        /* a field's units attribute */
    int32_t file_complete; /* a field's file: root attribute complete (-1 none) */
    char msg[ABL_ERRMSG_LEN];
} guard_header;

/* The result of either reader, as the pipe carries it. */
typedef struct {
    abl_mesh mesh;
    abl_field_file field;
} guard_result;

static int write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n > ((size_t)1 << 20) ? ((size_t)1 << 20) : n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* In the child: read, send, _exit (no atexit handlers: the parent's HDF5 state, stdio buffers
 * and sanitizer leak checks are the parent's business). */
static void guard_child(int fd, const char *path, const guard_req *req)
{
    /* Library code is silent; whatever a crashing libhdf5 or a sanitizer would print in here
     * is replaced by the parent's one-sentence message. */
    int nul = open("/dev/null", O_WRONLY);
    if (nul >= 0) {
        dup2(nul, STDOUT_FILENO);
        dup2(nul, STDERR_FILENO);
        if (nul > STDERR_FILENO) close(nul);
    }
    guard_result r;
    memset(&r, 0, sizeof r);
    abl_error e = {0};
    abl_status st = req->dataset
                        ? read_field_local(path, req->dataset, req->optional,
                                           req->names_dataset, &r.field, &e)
                        : read_local(path, req->names, &r.mesh, &e);
    guard_header h;
    memset(&h, 0, sizeof h);
    h.magic = GUARD_MAGIC;
    h.status = (int32_t)st;
    const void *data = NULL;
    const char *names = NULL;
    size_t data_bytes = 0;
    if (st == ABL_OK && req->dataset && !r.field.values) {
        /* an optional field that is absent: status OK, no voxels */
    } else if (st == ABL_OK) {
        const int *dims = req->dataset ? r.field.dims : r.mesh.dims;
        for (int a = 0; a < 3; a++) {
            h.dims[a] = dims[a];
            h.spacing_mm[a] = req->dataset ? r.field.spacing_mm[a] : r.mesh.spacing_mm[a];
            h.origin_mm[a] = req->dataset ? r.field.origin_mm[a] : r.mesh.origin_mm[a];
        }
        h.has_spacing = req->dataset ? r.field.has_spacing : 1;
        h.has_origin = req->dataset ? r.field.has_origin : 1;
        if (req->dataset) {
            memcpy(h.units, r.field.units, sizeof h.units);
            h.file_complete = r.field.file_complete;
        }
        h.nvoxels = (uint64_t)dims[0] * (uint64_t)dims[1] * (uint64_t)dims[2];
        names = req->dataset ? r.field.names : r.mesh.label_names;
        h.names_len = names ? (uint64_t)strlen(names) + 1 : 0;
        data = req->dataset ? (const void *)r.field.values : (const void *)r.mesh.labels;
        data_bytes = (size_t)h.nvoxels * (req->dataset ? sizeof(double) : 1);
    } else {
        snprintf(h.msg, sizeof h.msg, "%s", e.msg);
    }
    const uint32_t trailer = GUARD_TRAILER;
    int ok = write_all(fd, &h, sizeof h) == 0 &&
             (data_bytes == 0 || write_all(fd, data, data_bytes) == 0) &&
             (h.names_len == 0 || write_all(fd, names, (size_t)h.names_len) == 0) &&
             write_all(fd, &trailer, sizeof trailer) == 0;
    _exit(ok ? 0 : 1);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Read exactly n bytes before the deadline: 0 done, 1 end of data first (the child died or
 * closed early), 2 deadline passed, 3 read error. */
static int read_until(int fd, void *buf, size_t n, double deadline)
{
    char *p = buf;
    while (n > 0) {
        double left = deadline - now_s();
        if (left <= 0) return 2;
        struct pollfd pfd = {fd, POLLIN, 0};
        int ms = left > 3600.0 ? 3600000 : (int)(left * 1000.0) + 1;
        int r = poll(&pfd, 1, ms);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return 3;
        if (r == 0) continue; /* re-check the deadline */
        ssize_t got = read(fd, p, n > ((size_t)1 << 20) ? ((size_t)1 << 20) : n);
        if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (got < 0) return 3;
        if (got == 0) return 1;
        p += got;
        n -= (size_t)got;
    }
    return 0;
}

static void guard_result_free(guard_result *r)
{
    mesh_free(&r->mesh);
    mesh_field_free(&r->field);
}

/* what: "mesh" or "file", for the messages */
static abl_status read_guarded(const char *path, const guard_req *req, const char *what,
                               double timeout_s, guard_result *out, abl_error *err)
{
    memset(out, 0, sizeof *out);
    if (!path || !path[0]) return abl_fail(err, ABL_EINVAL, "%s: empty file name", what);
    int p[2];
    if (pipe(p) != 0)
        return abl_fail(err, ABL_EIO, "%s: cannot read the %s: no pipe for the reader process "
                        "(%s)", path, what, strerror(errno));
    /* nothing else the process starts (a sweep's workers) should inherit the pipe */
    fcntl(p[0], F_SETFD, FD_CLOEXEC);
    fcntl(p[1], F_SETFD, FD_CLOEXEC);
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(p[0]);
        close(p[1]);
        return abl_fail(err, ABL_EIO, "%s: cannot read the %s: cannot start the reader "
                        "process (%s)", path, what, strerror(e));
    }
    if (pid == 0) {
        close(p[0]);
        guard_child(p[1], path, req); /* does not return */
    }
    close(p[1]);

    abl_status st = ABL_OK;
    const size_t elem = req->dataset ? sizeof(double) : 1;
    const double deadline = now_s() + timeout_s;
    guard_header h;
    char *names = NULL; /* the received names: out's label_names or field names */
    uint32_t trailer = 0;
    int r = read_until(p[0], &h, sizeof h, deadline);
    /* an optional field that is absent: an OK header with no voxels and nothing after it */
    const bool absent = r == 0 && h.magic == GUARD_MAGIC && h.status == ABL_OK &&
                        req->dataset && req->optional && h.nvoxels == 0 && h.names_len == 0;
    if (r == 0 && !absent && (h.magic != GUARD_MAGIC || (h.status == ABL_OK &&
                   (h.nvoxels == 0 || h.nvoxels > ABL_GRID_MAX_VOXELS ||
                    h.names_len > GUARD_MAX_NAMES ||
                    (req->dataset && !req->names_dataset && h.names_len)))))
        r = 3;
    if (r == 0 && h.status == ABL_OK && !absent) {
        uint64_t n = 1;
        for (int a = 0; a < 3; a++) {
            if (h.dims[a] < 1) r = 3;
            else n *= (uint64_t)h.dims[a];
        }
        if (r == 0 && n != h.nvoxels) r = 3;
        void *data = NULL;
        if (r == 0) {
            int *dims = req->dataset ? out->field.dims : out->mesh.dims;
            double *sp = req->dataset ? out->field.spacing_mm : out->mesh.spacing_mm;
            double *org = req->dataset ? out->field.origin_mm : out->mesh.origin_mm;
            for (int a = 0; a < 3; a++) {
                dims[a] = h.dims[a];
                sp[a] = h.spacing_mm[a];
                org[a] = h.origin_mm[a];
            }
            out->field.has_spacing = h.has_spacing != 0;
            out->field.has_origin = h.has_origin != 0;
            memcpy(out->field.units, h.units, sizeof out->field.units);
            out->field.units[sizeof out->field.units - 1] = '\0';
            out->field.file_complete = h.file_complete;
            data = malloc((size_t)h.nvoxels * elem);
            if (req->dataset) out->field.values = data;
            else out->mesh.labels = data;
            names = h.names_len ? malloc((size_t)h.names_len) : NULL;
            if (req->dataset) out->field.names = names;
            else out->mesh.label_names = names;
            if (!data || (h.names_len && !names)) {
                st = abl_fail(err, ABL_ENOMEM, "%s: cannot allocate %llu bytes for %s", path,
                              (unsigned long long)(h.nvoxels * elem),
                              req->dataset ? req->dataset : H5_MESH_LABELS);
                r = -1;
            }
        }
        if (r == 0) r = read_until(p[0], data, (size_t)h.nvoxels * elem, deadline);
        if (r == 0 && h.names_len) {
            r = read_until(p[0], names, (size_t)h.names_len, deadline);
            if (r == 0 && names[h.names_len - 1] != '\0') r = 3;
        }
    }
    if (r == 0) r = read_until(p[0], &trailer, sizeof trailer, deadline);
    if (r == 0 && trailer != GUARD_TRAILER) r = 3;
    close(p[0]);

    if (r == 2) kill(pid, SIGKILL); /* a hang inside libhdf5: stop it */
    int wstatus = 0;
    pid_t w;
    do {
        w = waitpid(pid, &wstatus, 0);
    } while (w < 0 && errno == EINTR);
    if (r == 0 && (w != pid || !WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0)) r = 3;

    if (r == 0 && h.status != ABL_OK) {
        h.msg[sizeof h.msg - 1] = '\0';
        st = abl_fail(err, (abl_status)h.status, "%s", h.msg);
    } else if (r == 2) {
        st = abl_fail(err, ABL_EIO,
                      "%s: reading this HDF5 %s did not finish within %g s and was stopped: "
                      "the file is corrupt (libhdf5 loops forever on some damaged files)",
                      path, what, timeout_s);
    } else if (r != 0 && r != -1) {
        char how[160];
        if (w == pid && WIFSIGNALED(wstatus))
            snprintf(how, sizeof how, "crashed the HDF5 library (signal %d, %s)",
                     WTERMSIG(wstatus), strsignal(WTERMSIG(wstatus)));
        else if (w == pid && WIFEXITED(wstatus) && WEXITSTATUS(wstatus) != 0)
            /* a crash caught by a handler that exits instead (AddressSanitizer: status 1) */
            snprintf(how, sizeof how, "crashed the HDF5 library (the reader process stopped "
                     "with status %d)", WEXITSTATUS(wstatus));
        else
            snprintf(how, sizeof how, "failed: the reader process sent an incomplete answer");
        st = abl_fail(err, ABL_EIO,
                      "%s: reading this HDF5 %s %s: the file is corrupt or damaged (libhdf5 "
                      "is not robust against malformed files; docs/RELIABILITY.md)",
                      path, what, how);
    }
    if (st != ABL_OK) guard_result_free(out);
    return st;
}

static double guard_timeout_s(const abl_mesh_read_opts *opts)
{
    return opts->timeout_s > 0 && isfinite(opts->timeout_s) ? opts->timeout_s
                                                             : ABL_MESH_READ_TIMEOUT_S;
}

abl_status mesh_read_ex(const char *path, const abl_mesh_read_opts *opts, abl_mesh *out,
                        abl_error *err)
{
    const abl_mesh_read_opts def = {0};
    if (!opts) opts = &def;
    if (opts->in_process) return read_local(path, !opts->skip_names, out, err);
    guard_result r;
    const guard_req req = {NULL, !opts->skip_names, false, NULL};
    abl_status st = read_guarded(path, &req, "mesh", guard_timeout_s(opts), &r, err);
    *out = r.mesh;
    return st;
}

abl_status mesh_read(const char *path, abl_mesh *out, abl_error *err)
{
    return mesh_read_ex(path, NULL, out, err);
}

abl_status mesh_read_field(const char *path, const char *dataset, const abl_mesh_read_opts *opts,
                           abl_field_file *out, abl_error *err)
{
    const abl_mesh_read_opts def = {0};
    if (!opts) opts = &def;
    if (!dataset || dataset[0] != '/')
        return abl_fail(err, ABL_EINVAL, "%s: dataset name '%s' must be an absolute HDF5 path "
                        "such as /fields/T_final_C", path ? path : "", dataset ? dataset : "");
    if (opts->in_process)
        return read_field_local(path, dataset, opts->optional, opts->names_dataset, out, err);
    guard_result r;
    const guard_req req = {dataset, false, opts->optional, opts->names_dataset};
    abl_status st = read_guarded(path, &req, "file", guard_timeout_s(opts), &r, err);
    *out = r.field;
    return st;
}

void mesh_field_free(abl_field_file *f)
{
    if (!f) return;
    free(f->values);
    free(f->names);
    memset(f, 0, sizeof *f);
}

/* ---- writing ----------------------------------------------------------------------------- */

static abl_status check_mesh(const char *path, const abl_mesh *m, abl_error *err)
{
    size_t n = 1;
    for (int a = 0; a < 3; a++) {
        if (m->dims[a] < 1)
            return abl_fail(err, ABL_EINVAL, "%s: mesh dimensions %d x %d x %d must be >= 1",
                            path, m->dims[0], m->dims[1], m->dims[2]);
        n *= (size_t)m->dims[a];
        if (n > ABL_GRID_MAX_VOXELS)
            return abl_fail(err, ABL_EINVAL, "%s: mesh of %d x %d x %d voxels exceeds %zu", path,
                            m->dims[0], m->dims[1], m->dims[2], (size_t)ABL_GRID_MAX_VOXELS);
        if (!(m->spacing_mm[a] >= MESH_MIN_VOXEL_MM && m->spacing_mm[a] <= MESH_MAX_VOXEL_MM))
            return abl_fail(err, ABL_EINVAL, "%s: mesh spacing [%g, %g, %g] mm must be between "
                            "%g and %g mm", path, m->spacing_mm[0], m->spacing_mm[1],
                            m->spacing_mm[2], MESH_MIN_VOXEL_MM, MESH_MAX_VOXEL_MM);
        if (!(fabs(m->origin_mm[a]) <= MESH_MAX_ORIGIN_MM))
            return abl_fail(err, ABL_EINVAL, "%s: mesh origin [%g, %g, %g] mm must be finite and "
                            "within +-%g mm", path, m->origin_mm[0], m->origin_mm[1],
                            m->origin_mm[2], MESH_MAX_ORIGIN_MM);
    }
    if (!m->labels) return abl_fail(err, ABL_EINVAL, "%s: mesh has no labels", path);
    return ABL_OK;
}

/* What write_file writes: one [nz][ny][nx] dataset with its geometry attributes (a mesh's
 * labels, or a scalar field). */
typedef struct {
    const char *dsname, *units, *label_names;
    bool f64;    /* float64 values, else uint8 labels (the HDF5 type ids are looked up inside
                  * write_file: naming one initialises the library, which must not happen
                  * before quiet_begin's H5dont_atexit, h5util.c) */
    size_t elem; /* bytes per voxel */
    const int *dims;
    const double *spacing_mm, *origin_mm;
    const void *data;
} write_req;

static abl_status write_file(const char *path, const char *tmp, const write_req *reqs, int nreq,
                             abl_error *err)
{
    char d[512], what[300];
    abl_status st = ABL_OK;
    hid_t file = -1, space = -1, dcpl = -1, dset = -1, fapl = -1, lcpl = -1;
    snprintf(what, sizeof what, "creating the file");

    /* the writers' file access (h5util.h): every write reported where it fails, none deferred
     * to a close whose error would be lost */
    fapl = h5_fapl_write();
    if (fapl < 0) goto fail;
    file = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    if (file < 0) goto fail;
    /* datasets in groups (/fields/T_final_C): the groups are made on the way */
    lcpl = H5Pcreate(H5P_LINK_CREATE);
    if (lcpl < 0 || H5Pset_create_intermediate_group(lcpl, 1) < 0) goto fail;

    for (int q = 0; q < nreq; q++) {
        const write_req *w = &reqs[q];
        hsize_t dims[3] = {(hsize_t)w->dims[2], (hsize_t)w->dims[1], (hsize_t)w->dims[0]};
        size_t plane = (size_t)w->dims[0] * (size_t)w->dims[1] * w->elem;
        hsize_t cz = plane >= MESH_CHUNK_TARGET ? 1 : MESH_CHUNK_TARGET / plane;
        if (cz > dims[0]) cz = dims[0];
        /* A plane is at most ABL_GRID_MAX_VOXELS = 2 GiB of uint8 (labels), under the 4 GiB
         * chunk limit; a float64 field's plane of that grid would not be (the planner's coarse
         * fields are far smaller). */
        hsize_t chunk[3] = {cz, dims[1], dims[2]};

        snprintf(what, sizeof what, "creating %s", w->dsname);
        space = H5Screate_simple(3, dims, NULL);
        dcpl = H5Pcreate(H5P_DATASET_CREATE);
        if (space < 0 || dcpl < 0 || H5Pset_chunk(dcpl, 3, chunk) < 0) goto fail;
        if (H5Zfilter_avail(H5Z_FILTER_DEFLATE) > 0 && H5Pset_deflate(dcpl, 6) < 0) goto fail;
        dset = H5Dcreate2(file, w->dsname, w->f64 ? H5T_IEEE_F64LE : H5T_STD_U8LE, space, lcpl,
                          dcpl, H5P_DEFAULT);
        if (dset < 0) goto fail;
        snprintf(what, sizeof what, "writing %s", w->dsname);
        if (H5Dwrite(dset, w->f64 ? H5T_NATIVE_DOUBLE : H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL,
                     H5P_DEFAULT, w->data) < 0)
            goto fail;
        snprintf(what, sizeof what, "writing attributes of %s", w->dsname);
        if (h5_attr_f64v(dset, H5A_SPACING_MM, w->spacing_mm, 3) < 0) goto fail;
        if (h5_attr_f64v(dset, H5A_ORIGIN_MM, w->origin_mm, 3) < 0) goto fail;
        if (h5_attr_str(dset, H5A_UNITS, w->units) < 0) goto fail;
        if (w->label_names && h5_attr_str(dset, H5A_LABEL_NAMES, w->label_names) < 0) goto fail;
        /* the chunk cache writes the last chunks here: a failure is a failed write */
        snprintf(what, sizeof what, "closing %s", w->dsname);
        herr_t rd = H5Dclose(dset);
        dset = -1;
        if (rd < 0) goto fail;
        close_id(dcpl);
        close_id(space);
        dcpl = space = -1;
    }
    snprintf(what, sizeof what, "closing the file");
    /* H5Fclose flushes: a full disk shows up here. */
    herr_t r = H5Fclose(file);
    file = -1;
    if (r < 0) goto fail;
    goto done;
fail:
    st = abl_fail(err, ABL_EIO, "%s: %s failed%s", path, what, h5_detail(d, sizeof d));
done:
    close_id(dset);
    close_id(fapl);
    close_id(lcpl);
    close_id(dcpl);
    close_id(space);
    close_id(file);
    return st;
}

static abl_status write_atomic(const char *path, const write_req *w, int nreq, abl_error *err)
{
    /* A fresh temporary created with open() (atomic_file.h), so that an unwritable or missing
     * directory is reported with the system's reason rather than HDF5's generic one. */
    abl_atomic at;
    abl_status st = ABL_OK;
    int e = atomic_reserve(&at, path, ".tmp");
    if (e) {
        st = abl_fail(err, ABL_EIO, "%s: cannot create %s.tmp (%s)", path, path, strerror(e));
        atomic_abort(&at);
        return st;
    }

    h5_quiet q;
    quiet_begin(&q);
    st = write_file(path, at.tmp, w, nreq, err);
    quiet_end(&q);

    /* Data on disk before the name points at it, so a crash leaves the old file or the
     * complete new one. */
    if (st == ABL_OK && (e = atomic_sync(&at)))
        st = abl_fail(err, ABL_EIO, "%s: syncing %s failed (%s)", path, at.tmp, strerror(e));
    if (st == ABL_OK && (e = atomic_commit(&at)))
        st = abl_fail(err, ABL_EIO, "%s: cannot rename %s into place (%s)", path, at.tmp,
                      strerror(e));
    atomic_abort(&at);
    return st;
}

abl_status mesh_write(const char *path, const abl_mesh *m, abl_error *err)
{
    if (!path || !path[0]) return abl_fail(err, ABL_EINVAL, "mesh: empty file name");
    abl_status st = check_mesh(path, m, err);
    if (st != ABL_OK) return st;
    const write_req w = {H5_MESH_LABELS, "label", m->label_names, false, 1, m->dims,
                         m->spacing_mm, m->origin_mm, m->labels};
    return write_atomic(path, &w, 1, err);
}

abl_status mesh_write_fields(const char *path, int n, const char *const *datasets,
                            const abl_field_file *fields, const char *const *units,
                            abl_error *err)
{
    if (!path || !path[0]) return abl_fail(err, ABL_EINVAL, "field: empty file name");
    if (n < 1 || n > ABL_MESH_MAX_FIELDS)
        return abl_fail(err, ABL_EINVAL, "%s: %d fields (1..%d)", path, n, ABL_MESH_MAX_FIELDS);
    write_req w[ABL_MESH_MAX_FIELDS];
    for (int q = 0; q < n; q++) {
        const abl_field_file *f = &fields[q];
        const abl_mesh m = {.dims = {f->dims[0], f->dims[1], f->dims[2]},
                            .spacing_mm = {f->spacing_mm[0], f->spacing_mm[1], f->spacing_mm[2]},
                            .origin_mm = {f->origin_mm[0], f->origin_mm[1], f->origin_mm[2]},
                            .labels = (uint8_t *)f->values};
        abl_status st = check_mesh(path, &m, err); /* the same limits on dims and geometry */
        if (st != ABL_OK) return st;
        w[q] = (write_req){datasets[q], units[q], NULL, true, sizeof(double), f->dims,
                           f->spacing_mm, f->origin_mm, f->values};
    }
    return write_atomic(path, w, n, err);
}

abl_status mesh_write_field(const char *path, const char *dataset, const abl_field_file *f,
                            const char *units, abl_error *err)
{
    return mesh_write_fields(path, 1, &dataset, f, &units, err);
}

void mesh_free(abl_mesh *m)
{
    if (!m) return;
    free(m->labels);
    free(m->label_names);
    m->labels = NULL;
    m->label_names = NULL;
}
