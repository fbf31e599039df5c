/* output.c - result file (HDF5), XDMF sidecar for ParaView, JSON summary.
 *
 * Every file is written under a temporary name ("<name>.tmp") and renamed into place only when
 * all three are complete, so an older result of the same name survives any failure and a file
 * that exists under its final name is always whole. Layout (names from h5_schema.h):
 *
 *   /                          attrs ablasim_version, scenario_name, scenario_yaml,
 *                              scenario_path, dt_s, dt_stable_s, steps, time_s, wall_time_s,
 *                              omp_threads, compiler, units_note
 *   /grid/labels               uint8 [nz][ny][nx] material index; attrs spacing_mm[3],
 *                              origin_mm[3] (x y z, centre of voxel 0), units
 *   /grid/materials            compound [nmat] {int32 material_index; string tissue_name}
 *   /grid/material_names       variable-length strings [nmat], tissue name of each material
 *   /fields/T_final_C, T_max_C, T_min_C         float64 [nz][ny][nx]
 *   /fields/time_at_or_above_<thr>C_s, time_at_or_below_<thr>C_s  float32 [nz][ny][nx]
 *   /snapshots/T_C             float32 [nt][nz][ny][nx] (only when snapshots were taken)
 *   /snapshots/time_s          float64 [nt]
 *   /snapshots/frames/T_C_<t>  float32 [nz][ny][nx], virtual view of T_C[t] (for XDMF readers)
 *   /isotherms/{hot,cold}_threshold_C [n], _volume_total_mL [n], _volume_per_material_mL [n][nmat]
 *                              _largest_component_volume_mL [n]; growth/ curves (runlog.h)
 *   /sources/<name>/...        generator series, or power_W from the run log
 *   /zones/<axis>/...          zone sizes along each applicator axis; growth/ curves
 *   /probes/time_s, /probes/<name>   probe temperatures (runlog.h)
 *   /energy/...                float64 scalars (only when energy accounting was on)
 * Every dataset carries a "units" attribute. Big arrays are chunked and compressed
 * (shuffle + deflate level 1: temperature fields are smooth, so this is cheap and effective).
 *
 * HDF5's automatic error printing is switched off while this module runs (and restored on
 * return) so that the only report is our message, which quotes the innermost HDF5 error.
 */
#include "ablasim/output.h"
#include "ablasim/fileguard.h"
#include "ablasim/dtcheck.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <limits.h>
#include <hdf5.h>
#include <math.h>
#include <omp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "ablasim/h5_schema.h"
#include "ablasim/pcg.h"
#include "ablasim/json_writer.h"
#include "ablasim/runlog.h"
#include "ablasim/version.h"
#include "ablasim/zone.h"
#include "../formats/atomic_file.h"
#include "../formats/h5util.h"

/* Chunk size limits. Field chunks: up to 16 z-planes and 32 MiB, small enough that a reader
 * of a slice decompresses little. Snapshot chunks: 16 z-planes of one snapshot as well (until
 * session 16 a whole snapshot, up to 256 MiB: one chunk could only be compressed on one thread;
 * files with the old layout are still read and appended to, see write_blocks); HDF5 itself
 * refuses chunks of 4 GiB or more. */
#define FIELD_CHUNK_PLANES 16
#define FIELD_CHUNK_BYTES ((size_t)32 << 20)
#define SNAP_CHUNK_BYTES ((size_t)256 << 20)
#define DEFLATE_LEVEL 1
#define NAME_LEN 128

struct abl_output {
    char *path;     /* final HDF5 name, as given */
    char *h5_tmp;   /* path + ".tmp" */
    char *xdmf;     /* <path minus .h5>.xdmf */
    char *json;     /* <path minus .h5>.json */
    char *h5_base;  /* file name of path without directories, referenced from the XDMF */
    char *incomplete; /* <path minus .h5>.incomplete.h5: a run's partial result after a fault */
    char *part;     /* path + ".part": the partial result once a checkpoint refers to it */
    char *commit;   /* path + ".commit": present while the set is being renamed into place */
    char *scratch;  /* path + ".tmp" (h5_tmp starts as this; becomes part at a checkpoint) */
    bool keep_part; /* a checkpoint refers to the .part: a failure closes it, never deletes it
                     * (output_keep_partial) */
    char run_id[17]; /* 64-bit random id shared by the .h5, .json and .xdmf of one commit */
    char part_id[17]; /* 64-bit random id of the file while it is written (root attribute
                       * H5A_PART_ID): a checkpoint records it, a resume checks it */
    hid_t file;
    hid_t snap_T, snap_time; /* -1 until the first snapshot */
    hsize_t snap_chunk[3];   /* z, y, x extent of a snapshot chunk */
    hsize_t nt;
    double *snap_times;
    size_t snap_cap;
};

static abl_status h5_fail(const abl_output *o, abl_error *err, const char *what,
                          const char *name)
{
    char d[512];
    h5_detail(d, sizeof d);
    return abl_fail(err, ABL_EIO, "%s: %s %s failed%s", o->path, what, name, d);
}

/* ---- small helpers ----------------------------------------------------------------------- */

/* double -> float without undefined behaviour for values outside the float range. */
static float to_f32(double v)
{
    if (v > FLT_MAX) return INFINITY;
    if (v < -FLT_MAX) return -INFINITY;
    return (float)v;
}

/* ---- attributes -------------------------------------------------------------------------- */

/* All return 0 on success, -1 on failure; callers name what failed. */

/* h5_attr_str, h5_attr_num, h5_attr_f64, h5_attr_f64v, h5_attr_i64 (h5util.h) */

/* ---- datasets ---------------------------------------------------------------------------- */

static hid_t make_group(abl_output *o, const char *name, abl_error *err)
{
    hid_t g = H5Gcreate2(o->file, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) h5_fail(o, err, "creating group", name);
    return g;
}

/* A small contiguous dataset (any rank, possibly zero elements) with a units attribute. */
static abl_status write_small(abl_output *o, hid_t loc, const char *name, hid_t ftype,
                              hid_t mtype, int rank, const hsize_t *dims, const void *data,
                              const char *units, abl_error *err)
{
    abl_status st = ABL_OK;
    hid_t sp = rank == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(rank, dims, NULL);
    hid_t d = sp >= 0 ? H5Dcreate2(loc, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)
                      : -1;
    if (d < 0) {
        st = h5_fail(o, err, "creating dataset", name);
        goto done;
    }
    if (H5Sget_simple_extent_npoints(sp) > 0 &&
        H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) {
        st = h5_fail(o, err, "writing dataset", name);
        goto done;
    }
    if (h5_attr_str(d, H5A_UNITS, units) < 0) st = h5_fail(o, err, "writing units of", name);
done:
    close_id(d);
    close_id(sp);
    return st;
}


/* Chunk extent [z][y][x] for a grid field: whole rows and planes where they fit in cap bytes,
 * at most max_z planes; split y (then x) only for absurdly wide planes. */
static void choose_chunk(const abl_grid *g, size_t el, hsize_t max_z, size_t cap, hsize_t c[3])
{
    size_t row = (size_t)g->nx * el, plane = row * (size_t)g->ny;
    c[0] = 1;
    c[1] = 1;
    c[2] = (hsize_t)g->nx;
    if (row > cap) {
        c[2] = cap / el;
    } else if (plane > cap) {
        c[1] = cap / row;
    } else {
        c[1] = (hsize_t)g->ny;
        c[0] = cap / plane;
        if (c[0] > max_z) c[0] = max_z;
        if (c[0] > (hsize_t)g->nz) c[0] = (hsize_t)g->nz;
    }
}

/* A user-defined fill value of zero: HDF5 then zeroes the part of an edge chunk that lies
 * outside the dataset instead of compressing whatever the buffer held (fully written chunks
 * are never pre-filled, so this costs nothing for them). */
static int set_zero_fill(hid_t dcpl, abl_dtype k)
{
    const double zero[1] = {0};
    return H5Pset_fill_value(dcpl, h5_dtype_mem(k), zero);
}

static int set_compression(hid_t dcpl)
{
    /* A library built without zlib still writes valid (uncompressed) files. */
    if (H5Zfilter_avail(H5Z_FILTER_DEFLATE) <= 0) return 0;
    if (H5Pset_shuffle(dcpl) < 0 || H5Pset_deflate(dcpl, DEFLATE_LEVEL) < 0) return -1;
    return 0;
}

/* Gather chunk (z0, y0, x0) of the field into buf, converting to dst_kind; its extent inside
 * the grid goes to b[3] (z, y, x). padded: buf is a whole chunk of c[0] x c[1] x c[2] elements
 * and the part outside the grid is zero, as HDF5 fills an edge chunk with the dataset's fill
 * value (set_zero_fill) before filtering it; else buf holds just the b[0] x b[1] x b[2] block. */
static void gather_chunk(const abl_grid *g, const void *src, abl_dtype src_kind,
                         abl_dtype dst_kind, const hsize_t c[3], hsize_t z0, hsize_t y0,
                         hsize_t x0, bool padded, char *buf, hsize_t b[3])
{
    const size_t el = field_elem_size(dst_kind), sel = field_elem_size(src_kind);
    b[0] = z0 + c[0] > (hsize_t)g->nz ? (hsize_t)g->nz - z0 : c[0];
    b[1] = y0 + c[1] > (hsize_t)g->ny ? (hsize_t)g->ny - y0 : c[1];
    b[2] = x0 + c[2] > (hsize_t)g->nx ? (hsize_t)g->nx - x0 : c[2];
    const hsize_t ry = padded ? c[1] : b[1], rx = padded ? c[2] : b[2]; /* buf's row layout */
    if (padded && (b[0] < c[0] || b[1] < c[1] || b[2] < c[2]))
        memset(buf, 0, (size_t)(c[0] * c[1] * c[2]) * el);
    const char *s = src;
    for (hsize_t k = 0; k < b[0]; k++)
        for (hsize_t j = 0; j < b[1]; j++) {
            char *d = buf + ((size_t)(k * ry + j) * (size_t)rx) * el;
            const size_t off = ABL_IDX(g, x0, y0 + j, z0 + k);
            if (src_kind == dst_kind) {
                memcpy(d, s + off * sel, (size_t)b[2] * el);
            } else {
                const double *sv = (const double *)(const void *)s + off;
                float *dv = (float *)(void *)d;
                for (hsize_t i = 0; i < b[2]; i++) dv[i] = to_f32(sv[i]);
            }
        }
}

/* Write a grid field chunk by chunk: each H5Dwrite covers exactly one chunk, so HDF5 never
 * reads back a partly written compressed chunk, and the staging buffer is one chunk. With
 * rank 4 the field goes to time index t of a [nt][nz][ny][nx] dataset. src is converted from
 * src_kind to dst_kind (only double -> float is needed). */
static abl_status write_blocks_filtered(abl_output *o, hid_t dset, const char *name, int rank,
                                        hsize_t t, const abl_grid *g, const void *src,
                                        abl_dtype src_kind, abl_dtype dst_kind, const hsize_t c[3],
                                        abl_error *err)
{
    abl_status st = ABL_OK;
    const size_t el = field_elem_size(dst_kind);
    char *buf = malloc((size_t)(c[0] * c[1] * c[2]) * el);
    hid_t fsp = H5Dget_space(dset), msp = -1;
    if (!buf) {
        st = abl_fail(err, ABL_ENOMEM, "%s: no memory for a %s chunk", o->path, name);
        goto done;
    }
    if (fsp < 0) {
        st = h5_fail(o, err, "writing dataset", name);
        goto done;
    }
    for (hsize_t z0 = 0; z0 < (hsize_t)g->nz; z0 += c[0]) {
        for (hsize_t y0 = 0; y0 < (hsize_t)g->ny; y0 += c[1]) {
            for (hsize_t x0 = 0; x0 < (hsize_t)g->nx; x0 += c[2]) {
                hsize_t b[3];
                gather_chunk(g, src, src_kind, dst_kind, c, z0, y0, x0, false, buf, b);
                hsize_t start[4] = {t, z0, y0, x0}, count[4] = {1, b[0], b[1], b[2]};
                const hsize_t *fs = rank == 4 ? start : start + 1;
                const hsize_t *fc = rank == 4 ? count : count + 1;
                msp = H5Screate_simple(3, count + 1, NULL);
                if (msp < 0 || H5Sselect_hyperslab(fsp, H5S_SELECT_SET, fs, NULL, fc, NULL) < 0 ||
                    H5Dwrite(dset, h5_dtype_mem(dst_kind), msp, fsp, H5P_DEFAULT, buf) < 0) {
                    st = h5_fail(o, err, "writing dataset", name);
                    goto done;
                }
                close_id(msp);
                msp = -1;
            }
        }
    }
done:
    close_id(msp);
    close_id(fsp);
    free(buf);
    return st;
}


/* The datasets' filter pipeline (set_compression: shuffle, then deflate at DEFLATE_LEVEL) done
 * here, chunk by chunk on every thread, and the filtered chunks written raw (H5Dwrite_chunk,
 * filter mask 0: every filter applied). HDF5 runs its filters on one thread as it writes; the
 * compression is most of a result file's writing time (7 % of a 2-minute RFA run, all of it
 * serial). The bytes are those the pipeline writes: the shuffle is H5Z's byte transposition
 * (byte b of element i to position b n + i), the deflate is zlib's compress2 at the same
 * level, as H5Z's deflate filter calls it; they depend on the data alone, so the file does not
 * depend on the thread count. Chunks go out in the filtered writer's order, a batch at a time
 * (bounded memory). */
static abl_status write_blocks_direct(abl_output *o, hid_t dset, const char *name, int rank,
                                      hsize_t t, const abl_grid *g, const void *src,
                                      abl_dtype src_kind, abl_dtype dst_kind, const hsize_t c[3],
                                      abl_error *err)
{
    const size_t el = field_elem_size(dst_kind);
    const size_t n = (size_t)(c[0] * c[1] * c[2]), raw = n * el;
    const hsize_t nc[3] = {((hsize_t)g->nz + c[0] - 1) / c[0], ((hsize_t)g->ny + c[1] - 1) / c[1],
                           ((hsize_t)g->nx + c[2] - 1) / c[2]};
    const size_t total = (size_t)(nc[0] * nc[1] * nc[2]);
    const int nthr = omp_get_max_threads() > 0 ? omp_get_max_threads() : 1;
    /* a batch of 2 chunks per thread, at most 256 MiB of chunks (each thread holds two more
     * chunk buffers while it works): bounded memory on many threads and large grids */
    size_t batch = (size_t)nthr * 2, cap = ((size_t)256 << 20) / (raw > 0 ? raw : 1);
    if (cap < 1) cap = 1;
    if (batch > cap) batch = cap;
    const uLong bound = compressBound((uLong)raw);
    unsigned char **zbuf = calloc(batch, sizeof *zbuf);
    uLongf *zlen = calloc(batch, sizeof *zlen);
    abl_status st = ABL_OK;
    if (!zbuf || !zlen) {
        st = abl_fail(err, ABL_ENOMEM, "%s: no memory for %s's compressed chunks", o->path, name);
        goto done;
    }
    for (size_t q = 0; q < batch && q < total; q++)
        if (!(zbuf[q] = malloc(bound))) {
            st = abl_fail(err, ABL_ENOMEM, "%s: no memory for a compressed %s chunk", o->path,
                          name);
            goto done;
        }
    for (size_t b0 = 0; b0 < total; b0 += batch) {
        const size_t nb = total - b0 < batch ? total - b0 : batch;
        int bad = 0; /* 1: no memory, 2: zlib failed */
        const int nt = nb < (size_t)nthr ? (int)nb : nthr;
#pragma omp parallel num_threads(nt) reduction(| : bad)
        {
            char *gbuf = malloc(raw), *sbuf = malloc(raw);
            if (!gbuf || !sbuf) bad |= 1;
#pragma omp for schedule(dynamic, 1)
            for (size_t q = 0; q < nb; q++) {
                if (!gbuf || !sbuf) continue;
                const size_t id = b0 + q;
                const hsize_t x = id % nc[2], y = id / nc[2] % nc[1], z = id / (nc[2] * nc[1]);
                hsize_t b[3];
                gather_chunk(g, src, src_kind, dst_kind, c, z * c[0], y * c[1], x * c[2], true,
                             gbuf, b);
                for (size_t byte = 0; byte < el; byte++) /* H5Z shuffle */
                    for (size_t i = 0; i < n; i++) sbuf[byte * n + i] = gbuf[i * el + byte];
                zlen[q] = bound;
                const int zr = compress2(zbuf[q], &zlen[q], (const Bytef *)sbuf, (uLong)raw,
                                         DEFLATE_LEVEL);
                /* zlib's own allocation failing is running out of memory (exit 4), not an
                 * I/O error (it was reported as one: an adversarial test, session 27) */
                if (zr == Z_MEM_ERROR) bad |= 1;
                else if (zr != Z_OK) bad |= 2;
            }
            free(gbuf);
            free(sbuf);
        }
        if (bad) {
            st = bad & 1 ? abl_fail(err, ABL_ENOMEM, "%s: no memory for a %s chunk", o->path, name)
                         : abl_fail(err, ABL_EIO, "%s: compressing %s failed", o->path, name);
            goto done;
        }
        for (size_t q = 0; q < nb; q++) {
            const size_t id = b0 + q;
            const hsize_t x = id % nc[2], y = id / nc[2] % nc[1], z = id / (nc[2] * nc[1]);
            hsize_t off[4] = {t, z * c[0], y * c[1], x * c[2]};
            if (H5Dwrite_chunk(dset, H5P_DEFAULT, 0, rank == 4 ? off : off + 1, (size_t)zlen[q],
                               zbuf[q]) < 0) {
                st = h5_fail(o, err, "writing dataset", name);
                goto done;
            }
        }
    }
done:
    for (size_t q = 0; zbuf && q < batch; q++) free(zbuf[q]);
    free(zbuf);
    free(zlen);
    return st;
}

/* Whether dset is laid out as write_blocks_direct writes: chunks of c (rank 4: 1 x c) and
 * exactly the filters shuffle, then deflate at DEFLATE_LEVEL. A dataset of another layout (a
 * resumed file written by an older version, a library without zlib) goes through HDF5. */
static bool direct_layout(hid_t dset, int rank, const hsize_t c[3])
{
    hid_t pl = H5Dget_create_plist(dset);
    if (pl < 0) return false;
    hsize_t cd[4] = {0, 0, 0, 0};
    bool ok = H5Pget_chunk(pl, 4, cd) == rank &&
              (rank == 3 ? cd[0] == c[0] && cd[1] == c[1] && cd[2] == c[2]
                         : cd[0] == 1 && cd[1] == c[0] && cd[2] == c[1] && cd[3] == c[2]) &&
              H5Pget_nfilters(pl) == 2;
    for (unsigned f = 0; ok && f < 2; f++) {
        unsigned flags, cdv[1] = {0};
        size_t ncd = 1;
        const H5Z_filter_t id = H5Pget_filter2(pl, f, &flags, &ncd, cdv, 0, NULL, NULL);
        ok = f == 0 ? id == H5Z_FILTER_SHUFFLE
                    : id == H5Z_FILTER_DEFLATE && ncd >= 1 && cdv[0] == DEFLATE_LEVEL;
    }
    H5Pclose(pl);
    return ok;
}

/* Write a field into a dataset made with set_compression: filtered here on every thread and
 * written raw when its layout is ours (direct_layout), else through HDF5's own pipeline. */
static abl_status write_blocks(abl_output *o, hid_t dset, const char *name, int rank, hsize_t t,
                               const abl_grid *g, const void *src, abl_dtype src_kind,
                               abl_dtype dst_kind, const hsize_t c[3], abl_error *err)
{
    if (direct_layout(dset, rank, c))
        return write_blocks_direct(o, dset, name, rank, t, g, src, src_kind, dst_kind, c, err);
    return write_blocks_filtered(o, dset, name, rank, t, g, src, src_kind, dst_kind, c, err);
}

/* A compressed [nz][ny][nx] field with a units attribute. */
static abl_status write_field(abl_output *o, hid_t loc, const char *name, const abl_grid *g,
                              const void *src, abl_dtype src_kind, abl_dtype dst_kind,
                              const char *units, hid_t *out_dset, abl_error *err)
{
    abl_status st = ABL_OK;
    hsize_t dims[3] = {(hsize_t)g->nz, (hsize_t)g->ny, (hsize_t)g->nx}, c[3];
    choose_chunk(g, field_elem_size(dst_kind), FIELD_CHUNK_PLANES, FIELD_CHUNK_BYTES, c);
    hid_t sp = H5Screate_simple(3, dims, NULL), d = -1;
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (sp < 0 || dcpl < 0 || H5Pset_chunk(dcpl, 3, c) < 0 || set_compression(dcpl) < 0 ||
        set_zero_fill(dcpl, dst_kind) < 0) {
        st = h5_fail(o, err, "setting up dataset", name);
        goto done;
    }
    d = H5Dcreate2(loc, name, h5_dtype_file(dst_kind), sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (d < 0) {
        st = h5_fail(o, err, "creating dataset", name);
        goto done;
    }
    st = write_blocks(o, d, name, 3, 0, g, src, src_kind, dst_kind, c, err);
    if (st == ABL_OK && h5_attr_str(d, H5A_UNITS, units) < 0)
        st = h5_fail(o, err, "writing units of", name);
done:
    if (st == ABL_OK && out_dset) *out_dset = d;
    else close_id(d);
    close_id(dcpl);
    close_id(sp);
    return st;
}

/* ---- open -------------------------------------------------------------------------------- */

static void output_free(abl_output *o)
{
    if (!o) return;
    free(o->path);
    free(o->h5_tmp);
    free(o->xdmf);
    free(o->json);
    free(o->h5_base);
    free(o->incomplete);
    free(o->part);
    free(o->commit);
    free(o->scratch);
    free(o->snap_times);
    free(o);
}

static abl_status make_names(abl_output *o, const char *path, abl_error *err)
{
    size_t len = strlen(path);
    size_t stem = len;
    if (len > 3 && strcmp(path + len - 3, ".h5") == 0) stem = len - 3;
    else if (len > 5 && strcmp(path + len - 5, ".hdf5") == 0) stem = len - 5;
    char *base = malloc(stem + 1);
    if (base) {
        memcpy(base, path, stem);
        base[stem] = '\0';
    }
    const char *slash = strrchr(path, '/');
    o->path = path_cat(path, "");
    o->h5_tmp = path_cat(path, ".tmp");
    o->xdmf = base ? path_cat(base, ".xdmf") : NULL;
    o->json = base ? path_cat(base, ".json") : NULL;
    o->incomplete = base ? path_cat(base, ".incomplete.h5") : NULL;
    o->part = path_cat(path, ".part");
    o->commit = path_cat(path, ".commit");
    o->scratch = path_cat(path, ".tmp");
    o->h5_base = path_cat(slash ? slash + 1 : path, "");
    free(base);
    if (!o->path || !o->h5_tmp || !o->xdmf || !o->json || !o->h5_base || !o->incomplete ||
        !o->part || !o->commit || !o->scratch)
        return abl_fail(err, ABL_ENOMEM, "%s: out of memory", path);
    return ABL_OK;
}

static abl_status write_grid(abl_output *o, const abl_sim_view *s, abl_error *err)
{
    abl_status st = ABL_OK;
    const abl_grid *g = &s->grid;
    hid_t grp = -1, labels = -1, ctype = -1, mtype = -1, ftype_s = -1, mtype_s = -1;
    hid_t vstr = -1;
    const char **names = NULL;
    struct mat_rec {
        int32_t index;
        char name[ABL_TISSUE_NAME_LEN];
    } *rec = NULL;

    grp = make_group(o, H5_GRID, err);
    if (grp < 0) return ABL_EIO;
    st = write_field(o, o->file, H5_LABELS, g, s->material, ABL_DT_U8, ABL_DT_U8, "material index",
                     &labels, err);
    if (st != ABL_OK) goto done;
    double sp_mm[3], or_mm[3];
    for (int a = 0; a < 3; a++) {
        sp_mm[a] = g->h_m[a] * 1e3;
        or_mm[a] = g->origin_m[a] * 1e3;
    }
    if (h5_attr_f64v(labels, H5A_SPACING_MM, sp_mm, 3) < 0 ||
        h5_attr_f64v(labels, H5A_ORIGIN_MM, or_mm, 3) < 0 ||
        h5_attr_str(labels, H5A_AXES,
                    "[z][y][x], x fastest; spacing_mm and origin_mm are x y z; "
                    "origin_mm is the centre of voxel (0,0,0)") < 0) {
        st = h5_fail(o, err, "writing attributes of", H5_LABELS);
        goto done;
    }

    /* Material table, twice: a compound (index, name) for tools that want a table, and a
     * plain string array for the one-liner f["/grid/material_names"][m]. */
    int nmat = s->nmat;
    rec = calloc(nmat > 0 ? (size_t)nmat : 1, sizeof *rec);
    names = calloc(nmat > 0 ? (size_t)nmat : 1, sizeof *names);
    if (!rec || !names) {
        st = abl_fail(err, ABL_ENOMEM, "%s: out of memory", o->path);
        goto done;
    }
    for (int m = 0; m < nmat; m++) {
        const char *nm = s->sc->tissues.t[s->mat_tissue[m]].name;
        rec[m].index = m;
        snprintf(rec[m].name, sizeof rec[m].name, "%s", nm);
        names[m] = nm;
    }
    ftype_s = H5Tcopy(H5T_C_S1);
    mtype_s = H5Tcopy(H5T_C_S1);
    vstr = H5Tcopy(H5T_C_S1);
    if (ftype_s < 0 || mtype_s < 0 || vstr < 0 ||
        H5Tset_size(ftype_s, ABL_TISSUE_NAME_LEN) < 0 ||
        H5Tset_cset(ftype_s, H5T_CSET_UTF8) < 0 ||
        H5Tset_size(mtype_s, ABL_TISSUE_NAME_LEN) < 0 ||
        H5Tset_cset(mtype_s, H5T_CSET_UTF8) < 0 || H5Tset_size(vstr, H5T_VARIABLE) < 0 ||
        H5Tset_cset(vstr, H5T_CSET_UTF8) < 0) {
        st = h5_fail(o, err, "creating string types for", H5_MATERIALS);
        goto done;
    }
    ctype = H5Tcreate(H5T_COMPOUND, 4 + ABL_TISSUE_NAME_LEN);
    mtype = H5Tcreate(H5T_COMPOUND, sizeof *rec);
    if (ctype < 0 || mtype < 0 || H5Tinsert(ctype, "material_index", 0, H5T_STD_I32LE) < 0 ||
        H5Tinsert(ctype, "tissue_name", 4, ftype_s) < 0 ||
        H5Tinsert(mtype, "material_index", offsetof(struct mat_rec, index), H5T_NATIVE_INT32) <
            0 ||
        H5Tinsert(mtype, "tissue_name", offsetof(struct mat_rec, name), mtype_s) < 0) {
        st = h5_fail(o, err, "creating the compound type for", H5_MATERIALS);
        goto done;
    }
    hsize_t dn = (hsize_t)nmat;
    st = write_small(o, o->file, H5_MATERIALS, ctype, mtype, 1, &dn, rec, "none", err);
    if (st != ABL_OK) goto done;
    st = write_small(o, o->file, H5_MATERIAL_NAMES, vstr, vstr, 1, &dn, names, "none",
                     err);
done:
    free(rec);
    free(names);
    close_id(vstr);
    close_id(mtype_s);
    close_id(ftype_s);
    close_id(mtype);
    close_id(ctype);
    close_id(labels);
    close_id(grp);
    return st;
}

static void new_run_id(char id[17]);

const char *output_part_id(const abl_output *o)
{
    return o ? o->part_id : "";
}

abl_status output_open(const char *path, const abl_sim_view *s, abl_output **out, abl_error *err)
{
    *out = NULL;
    if (!path || !path[0]) return abl_fail(err, ABL_EINVAL, "output: empty file name");
    abl_output *o = calloc(1, sizeof *o);
    if (!o) return abl_fail(err, ABL_ENOMEM, "%s: out of memory", path);
    o->file = o->snap_T = o->snap_time = -1;
    abl_status st = make_names(o, path, err);
    if (st != ABL_OK) {
        output_free(o);
        return st;
    }

    /* Catch the usual mistakes before the run, not after hours of computing: the final name
     * is a directory, or the directory is missing or not writable (open() gives the reason;
     * HDF5 would only say "unable to open file"). */
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        output_free(o);
        return abl_fail(err, ABL_EIO, "%s: cannot write output: is a directory", path);
    }
    /* a close that fails (a file system reporting a lost write-back) is reported before the
     * run, like a failing create: ignored, the run went on to a result on a failing disk */
    int fd = create_fresh(o->h5_tmp);
    if (fd < 0 || close(fd) != 0) {
        st = abl_fail(err, ABL_EIO, "%s: cannot write output (creating %s: %s)", path, o->h5_tmp,
                      strerror(errno));
        if (fd >= 0) unlink(o->h5_tmp);
        output_free(o);
        return st;
    }

    h5_quiet q;
    quiet_begin(&q);
    hid_t fapl = h5_fapl_write(); /* STRONG close, no sieve buffer: h5util.h */
    if (fapl < 0) {
        st = h5_fail(o, err, "setting up", o->h5_tmp);
    } else {
        o->file = H5Fcreate(o->h5_tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
        if (o->file < 0) st = h5_fail(o, err, "creating", o->h5_tmp);
    }
    close_id(fapl);
    if (st == ABL_OK) {
        /* the file's own id while it is written (a checkpoint records it; output_resume) */
        new_run_id(o->part_id);
        hid_t root = H5Gopen2(o->file, "/", H5P_DEFAULT);
        if (root < 0 || h5_attr_str(root, H5A_PART_ID, o->part_id) < 0)
            st = h5_fail(o, err, "writing attributes of", o->h5_tmp);
        close_id(root);
    }
    if (st == ABL_OK) st = write_grid(o, s, err);
    quiet_end(&q);
    if (st != ABL_OK) {
        output_abort(o);
        return st;
    }
    *out = o;
    return ABL_OK;
}

/* ---- snapshots --------------------------------------------------------------------------- */

static abl_status create_snapshots(abl_output *o, const abl_grid *g, abl_error *err)
{
    abl_status st = ABL_OK;
    hid_t grp = -1, sp = -1, dcpl = -1;
    choose_chunk(g, 4, FIELD_CHUNK_PLANES, SNAP_CHUNK_BYTES, o->snap_chunk);

    grp = make_group(o, H5_SNAPSHOTS, err);
    if (grp < 0) return ABL_EIO;
    hsize_t dims[4] = {0, (hsize_t)g->nz, (hsize_t)g->ny, (hsize_t)g->nx};
    hsize_t maxd[4] = {H5S_UNLIMITED, dims[1], dims[2], dims[3]};
    hsize_t chunk[4] = {1, o->snap_chunk[0], o->snap_chunk[1], o->snap_chunk[2]};
    sp = H5Screate_simple(4, dims, maxd);
    dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (sp < 0 || dcpl < 0 || H5Pset_chunk(dcpl, 4, chunk) < 0 || set_compression(dcpl) < 0 ||
        set_zero_fill(dcpl, ABL_DT_F32) < 0 ||
        (o->snap_T = H5Dcreate2(o->file, H5_SNAP_T, H5T_IEEE_F32LE, sp, H5P_DEFAULT, dcpl,
                                H5P_DEFAULT)) < 0 ||
        h5_attr_str(o->snap_T, H5A_UNITS, "degC") < 0) {
        st = h5_fail(o, err, "creating dataset", H5_SNAP_T);
        goto done;
    }
    close_id(sp);
    close_id(dcpl);
    hsize_t d1 = 0, m1 = H5S_UNLIMITED, c1 = 1024;
    sp = H5Screate_simple(1, &d1, &m1);
    dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (sp < 0 || dcpl < 0 || H5Pset_chunk(dcpl, 1, &c1) < 0 ||
        (o->snap_time = H5Dcreate2(o->file, H5_SNAP_TIME, H5T_IEEE_F64LE, sp, H5P_DEFAULT, dcpl,
                                   H5P_DEFAULT)) < 0 ||
        h5_attr_str(o->snap_time, H5A_UNITS, "s") < 0)
        st = h5_fail(o, err, "creating dataset", H5_SNAP_TIME);
done:
    close_id(dcpl);
    close_id(sp);
    close_id(grp);
    return st;
}

static abl_status append_snapshot(abl_output *o, const abl_sim_view *s, abl_error *err)
{
    const abl_grid *g = &s->grid;
    abl_status st;
    if (o->snap_T < 0) {
        st = create_snapshots(o, g, err);
        if (st != ABL_OK) return st;
    }
    if (o->nt == o->snap_cap) {
        size_t cap = o->snap_cap ? 2 * o->snap_cap : 64;
        double *t = realloc(o->snap_times, cap * sizeof *t);
        if (!t) return abl_fail(err, ABL_ENOMEM, "%s: out of memory for snapshot times", o->path);
        o->snap_times = t;
        o->snap_cap = cap;
    }
    hsize_t ext[4] = {o->nt + 1, (hsize_t)g->nz, (hsize_t)g->ny, (hsize_t)g->nx};
    if (H5Dset_extent(o->snap_T, ext) < 0) return h5_fail(o, err, "extending", H5_SNAP_T);
    st = write_blocks(o, o->snap_T, H5_SNAP_T, 4, o->nt, g, s->T, ABL_DT_F64, ABL_DT_F32, o->snap_chunk,
                      err);
    if (st != ABL_OK) return st;

    hid_t fsp = -1, msp = -1;
    hsize_t one = 1, n1 = o->nt + 1, at = o->nt;
    double t = s->t_s;
    if (H5Dset_extent(o->snap_time, &n1) < 0 || (fsp = H5Dget_space(o->snap_time)) < 0 ||
        H5Sselect_hyperslab(fsp, H5S_SELECT_SET, &at, NULL, &one, NULL) < 0 ||
        (msp = H5Screate_simple(1, &one, NULL)) < 0 ||
        H5Dwrite(o->snap_time, H5T_NATIVE_DOUBLE, msp, fsp, H5P_DEFAULT, &t) < 0)
        st = h5_fail(o, err, "writing dataset", H5_SNAP_TIME);
    close_id(msp);
    close_id(fsp);
    if (st != ABL_OK) return st;
    o->snap_times[o->nt++] = t;
    return ABL_OK;
}

abl_status output_snapshot(abl_output *o, const abl_sim_view *s, abl_error *err)
{
    h5_quiet q;
    quiet_begin(&q);
    abl_status st = append_snapshot(o, s, err);
    quiet_end(&q);
    return st;
}

/* ---- finish: HDF5 ------------------------------------------------------------------------ */

/* Zones along one applicator axis (zone.h): every hot and cold isotherm and Omega >= 1. */
typedef struct {
    char name[NAME_LEN];     /* group under /zones: source name, "_<axis>" with several axes,
                              * "_cluster" for the cluster axis */
    int source;              /* index in s->sources */
    int log_axis;            /* index in s->runlog->axes (its growth curves); -1: none */
    int axis_index;          /* among the source's axes; -1: cluster axis */
    abl_source_axis axis;
    abl_axis_zone hot[ABL_MAX_THRESHOLDS], cold[ABL_MAX_THRESHOLDS], omega;
} zone_set;

#define MAX_CRIT (2 * ABL_MAX_THRESHOLDS + 1)

typedef struct {
    double hot_tot[ABL_MAX_THRESHOLDS], cold_tot[ABL_MAX_THRESHOLDS];
    double *hot_mat, *cold_mat; /* [n][nmat] */
    double dmg_tot[2];          /* Omega >= 1, CEM43 >= 240 min */
    double *dmg_mat;            /* [2][nmat] */
    long nvox[MAX_CRIT], largest[MAX_CRIT]; /* per zone criterion (runlog.h order): voxels of
                                             * the zone and of its largest component */
    char (*src_name)[NAME_LEN]; /* [nsources] group name under /sources (unique, HDF5-safe) */
    zone_set *zones;
    int nzones;
} iso_result;

/* ---- sources: names, series summaries, zones along their axes --------------------------- */

/* A name usable as one HDF5 link name and JSON key: anything but letters, digits and "-+.=" is
 * replaced by '_' ('/' would make a path); empty, "." and ".." become fallback. */
static void safe_name(char *out, size_t len, const char *in, const char *fallback)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p && n + 1 < len; p++) {
        const int ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                       (*p >= '0' && *p <= '9') || strchr("-+.=_", *p);
        out[n++] = ok ? (char)*p : '_';
    }
    out[n] = '\0';
    if (n == 0 || !strcmp(out, ".") || !strcmp(out, "..")) snprintf(out, len, "%s", fallback);
}

/* Make name unique among used[0..nused-1] by appending "_2", "_3", ... (source names are
 * distinct, scenario.c, but "a_0" may meet antenna 0 of a source "a", and two names may differ
 * only in characters the sanitiser replaces). */
static void unique_name(char *name, size_t len, char (*used)[NAME_LEN], int nused)
{
    char base[NAME_LEN];
    snprintf(base, sizeof base, "%s", name);
    for (int k = 2;; k++) {
        int clash = 0;
        for (int u = 0; u < nused && !clash; u++) clash = !strcmp(used[u], name);
        if (!clash) return;
        snprintf(name, len, "%.*s_%d", NAME_LEN - 16, base, k);
    }
}

/* Unit of a series column from its name's suffix: "power_W" -> "W", "temperature_C" -> "degC"
 * (as every temperature in the file), no suffix -> "1". */
static void column_units(const char *col, char *buf, size_t len)
{
    const char *u = strrchr(col, '_');
    u = u && u[1] ? u + 1 : NULL;
    snprintf(buf, len, "%s", !u ? "1" : !strcmp(u, "C") ? "degC" : u);
}

typedef struct {
    double final, min, max; /* NaN when the column is empty or all NaN */
} col_stats;

static col_stats column_stats(const abl_source_series *ser, int c)
{
    col_stats r = {NAN, NAN, NAN};
    for (size_t i = 0; i < ser->nrow; i++) {
        const double v = ser->rows[i * (size_t)ser->ncol + (size_t)c];
        r.min = fmin(r.min, v); /* fmin/fmax ignore a NaN operand */
        r.max = fmax(r.max, v);
    }
    if (ser->nrow > 0) r.final = ser->rows[(ser->nrow - 1) * (size_t)ser->ncol + (size_t)c];
    return r;
}

/* Energy key of a power column: "power_W" -> "energy_J", "probe1_power_W" ->
 * "probe1_energy_J" (one per probe of a multi-probe source); 0 when c is no power column. */
static int energy_key(const abl_source_series *ser, int c, char *key, size_t len)
{
    const char *n = c > 0 ? ser->columns[c] : NULL;
    const size_t ln = n ? strlen(n) : 0, lp = strlen("power_W");
    if (ln < lp || strcmp(n + ln - lp, "power_W") != 0 || (ln > lp && n[ln - lp - 1] != '_'))
        return 0;
    snprintf(key, len, "%.*senergy_J", (int)(ln - lp), n);
    return 1;
}

/* Delivered energy [J] of power column c: with a step_s column the sum of power x step (each
 * row's power held over its step, as the driver applied it); otherwise the integral over time_s
 * (column 0) by the trapezoidal rule between consecutive rows. Negative for a cryoprobe's
 * extracted power. */
static double series_energy_J(const abl_source_series *ser, int c)
{
    double e = 0.0;
    const size_t w = (size_t)ser->ncol;
    /* a series that records each row's step (step_s: the power held over it, rfa.c, cryo.c,
     * vessel.c) integrates exactly, power x step; the trapezoid over the rows' start times
     * below left out the last step and averaged across jumps (a physics test, session 27) */
    for (int k = 1; k < ser->ncol; k++)
        if (ser->columns[k] && !strcmp(ser->columns[k], "step_s")) {
            for (size_t i = 0; i < ser->nrow; i++)
                e += ser->rows[i * w + (size_t)c] * ser->rows[i * w + (size_t)k];
            return e;
        }
    for (size_t i = 1; i < ser->nrow; i++) {
        const double dt = ser->rows[i * w] - ser->rows[(i - 1) * w];
        e += 0.5 * (ser->rows[i * w + (size_t)c] + ser->rows[(i - 1) * w + (size_t)c]) * dt;
    }
    return e;
}

static int has_series(const abl_source *src, abl_source_series *ser)
{
    memset(ser, 0, sizeof *ser);
    if (!src->ops->series) return 0;
    src->ops->series(src, ser);
    return ser->ncol > 0 && ser->columns && (ser->rows || ser->nrow == 0);
}

/* Whether source i's power comes from the run log (runlog.h): it records no power column of
 * its own (volumetric, fixed_temperature, a modality without a generator log). */
static bool log_power(const abl_sim_view *s, int i)
{
    abl_source_series ser;
    if (!s->runlog || i >= s->runlog->nsrc) return false;
    if (!has_series(s->sources[i], &ser)) return true;
    char key[NAME_LEN];
    for (int c = 1; c < ser.ncol; c++)
        if (energy_key(&ser, c, key, sizeof key)) return false;
    return true;
}

/* Group names of every source and the zones along every applicator axis. */
static abl_status measure_sources(const abl_sim_view *s, const char *path, iso_result *iso,
                                  abl_error *err)
{
    const abl_runlog *log = s->runlog;
    const int ns = s->nsources;
    const int ncrit = s->sc->n_hot + s->sc->n_cold + 1;
    abl_log_axis *axes = NULL;
    int cap = 0;
    abl_status st = runlog_axes(s, &axes, &cap, err);
    if (st) return st;
    /* the run log's growth curves belong to these axes when it planned the same ones (a
     * source added after sim_create, as tests do, has zones but no curves) */
    const bool curves = log && log->naxes == cap &&
                        (cap == 0 || !memcmp(log->axes, axes, (size_t)cap * sizeof *axes));
    abl_axis_zone *zall = calloc((size_t)(cap ? cap : 1) * (size_t)ncrit, sizeof *zall);
    iso->src_name = calloc((size_t)(ns ? ns : 1), sizeof *iso->src_name);
    iso->zones = cap > 0 ? calloc((size_t)cap, sizeof *iso->zones) : NULL;
    char(*used)[NAME_LEN] = calloc((size_t)(ns + cap + 1), sizeof *used);
    if (!zall || !iso->src_name || (cap > 0 && !iso->zones) || !used) {
        st = abl_fail(err, ABL_ENOMEM, "%s: out of memory", path);
        goto done;
    }
    for (int i = 0; i < ns; i++) {
        char fb[32];
        snprintf(fb, sizeof fb, "source%d", i);
        safe_name(iso->src_name[i], NAME_LEN, s->sources[i]->name, fb);
        unique_name(iso->src_name[i], NAME_LEN, used, i);
        snprintf(used[i], NAME_LEN, "%s", iso->src_name[i]);
    }
    /* the final zones, inside the zones' bounding boxes like the growth samples (memory and
     * time follow the zone, not the grid; tests/unit/test_probes.c checks them against the
     * whole grid and against the growth curves' last points) */
    st = runlog_measure(s, axes, cap, true, zall, iso->nvox, iso->largest, NULL, err);
    if (st) goto done;
    for (int a = 0; a < cap; a++) {
        const abl_log_axis *la = &axes[a];
        zone_set *z = &iso->zones[a];
        z->source = la->source;
        z->log_axis = curves ? a : -1;
        z->axis_index = la->axis;
        z->axis = la->ax;
        const char *sn = iso->src_name[la->source];
        if (la->axis < 0)
            snprintf(z->name, sizeof z->name, "%.*s_cluster", NAME_LEN - 16, sn);
        else if (la->source_axes > 1)
            snprintf(z->name, sizeof z->name, "%.*s_%d", NAME_LEN - 16, sn, la->axis);
        else
            snprintf(z->name, sizeof z->name, "%s", sn);
        unique_name(z->name, sizeof z->name, used + ns, a);
        snprintf(used[ns + a], NAME_LEN, "%s", z->name);
        const abl_axis_zone *zz = zall + (size_t)a * (size_t)ncrit;
        for (int h = 0; h < s->sc->n_hot; h++)
            z->hot[h] = zz[h];
        for (int c = 0; c < s->sc->n_cold; c++)
            z->cold[c] = zz[s->sc->n_hot + c];
        z->omega = zz[ncrit - 1];
    }
    iso->nzones = cap;
done:
    free(used);
    free(zall);
    free(axes);
    return st;
}

/* /fields: every map of the field table marked for the result (fields.h), in table order;
 * per-threshold maps carry their threshold_C. */
static abl_status write_fields(abl_output *o, const abl_sim_view *s, abl_error *err)
{
    hid_t grp = make_group(o, H5_FIELDS, err);
    if (grp < 0) return ABL_EIO;
    abl_status st = ABL_OK;
    for (int i = 0; i < s->nfields && st == ABL_OK; i++) {
        const abl_field *f = &s->fields[i];
        if (!(f->def->flags & ABL_FIELD_RESULT)) continue;
        const abl_dtype k = f->def->dtype;
        hid_t d = -1;
        st = write_field(o, o->file, f->result_path, &s->grid, field_data(f), k, k, f->def->units,
                         &d, err);
        if (st == ABL_OK && isfinite(f->threshold_C) &&
            h5_attr_f64(d, H5A_THRESHOLD_C, f->threshold_C) < 0)
            st = h5_fail(o, err, "writing attributes of", f->result_path);
        if (st == ABL_OK && f->def->meaning && h5_attr_str(d, H5SA_MEANING, f->def->meaning) < 0)
            st = h5_fail(o, err, "writing attributes of", f->result_path);
        /* a run from an initial state: whether this map continues the state's (1) or counts
         * this run only (0: the state had no such map, e.g. a threshold the first run did not
         * track) */
        if (st == ABL_OK && f->from_state >= 0 &&
            h5_attr_i64(d, H5A_FROM_INITIAL_STATE, f->from_state) < 0)
            st = h5_fail(o, err, "writing attributes of", f->result_path);
        close_id(d);
    }
    close_id(grp);
    return st;
}

/* Criterion kind names as in the datasets: "hot", "cold", "omega_ge_1". */
static const char *const crit_kind[3] = {H5_KIND_HOT, H5_KIND_COLD, H5_KIND_OMEGA};

/* A float64 dataset [n] (rank 1) or [n][m] (rank 2) with units. */
static abl_status write_table(abl_output *o, const char *name, int rank, hsize_t n, hsize_t m,
                              const double *v, const char *units, abl_error *err)
{
    const hsize_t d[2] = {n, m};
    return write_small(o, o->file, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, rank, d, v, units, err);
}

/* Volume [mL] of n voxels multiplied as abl_axis_zone.volume_m3 * 1e6 is, so that a zone of
 * one component shows the same number in /zones for both (the /isotherms volumes multiply by
 * the voxel volume in mL, and their largest components do the same). */
static double zone_mL(long n, const abl_grid *g)
{
    return (double)n * grid_voxel_volume_m3(g) * 1e6;
}

/* Growth curves of one axis (or, a < 0, of the volumes only) under gname/growth:
 * time_s [ng]; per kind <kind>_<what> [ng][n] (hot, cold) or [ng] (omega_ge_1). */
static abl_status write_growth(abl_output *o, const abl_sim_view *s, const char *gname, int a,
                               abl_error *err)
{
    const abl_runlog *log = s->runlog;
    const abl_scenario *sc = s->sc;
    const size_t ng = log->ng, nc = (size_t)log->ncrit;
    char name[3 * NAME_LEN];
    snprintf(name, sizeof name, H5_GROWTH_FMT, gname);
    hid_t grp = make_group(o, name, err);
    if (grp < 0) return ABL_EIO;
    abl_status st = ABL_OK;
    const char *def =
        a < 0 ? "zone volumes during the run (runlog.h): <kind>_volume_total_mL = all voxels of "
                "the zone, <kind>_largest_component_volume_mL = its largest 6-connected "
                "component (voxels sharing a face); rows = time_s, columns = the thresholds of "
                "/isotherms"
              : "zone size along this axis during the run (runlog.h), definitions as in /zones; "
                "rows = time_s, columns = <kind>_threshold_C of the group";
    if (h5_attr_str(grp, H5A_DEFINITION, def) < 0 ||
        h5_attr_f64(grp, H5A_INTERVAL_S, fmax(sc->growth_interval_s, sc->monitor_interval_s)) < 0 ||
        (log->history_from_s > 0 && h5_attr_f64(grp, H5A_HISTORY_FROM_S, log->history_from_s) < 0))
        st = h5_fail(o, err, "writing attributes of", name);
    close_id(grp);
    snprintf(name, sizeof name, "%s/" H5_GROWTH "/" H5_DS_TIME, gname);
    if (st == ABL_OK) st = write_table(o, name, 1, ng, 1, log->g_t_s, "s", err);
    double *buf = malloc((ng ? ng : 1) * (nc ? nc : 1) * sizeof *buf);
    if (!buf && st == ABL_OK) st = abl_fail(err, ABL_ENOMEM, "%s: out of memory", o->path);
    for (int kind = 0; kind < 3 && st == ABL_OK; kind++) {
        const int c0 = kind == 0 ? 0 : kind == 1 ? sc->n_hot : sc->n_hot + sc->n_cold;
        const int n = kind == 0 ? sc->n_hot : kind == 1 ? sc->n_cold : 1;
        const int nq = a < 0 ? 2 : 7;
        for (int q = 0; q < nq && st == ABL_OK; q++) {
            static const char *const what_vol[2] = {H5_COL_VOLUME_TOTAL, H5_COL_LARGEST};
            static const char *const what_ax[7] = {
                H5_COL_LENGTH, H5_COL_DIAMETER, H5_COL_DIAMETER_MIN, H5_COL_DIAMETER_EQ,
                H5_COL_VOLUME, H5_COL_LARGEST,  H5_COL_VOLUME_PV};
            const char *what = a < 0 ? what_vol[q] : what_ax[q];
            const double vox_mL = grid_voxel_volume_m3(&s->grid) * 1e6;
            for (size_t k = 0; k < ng; k++)
                for (int h = 0; h < n; h++) {
                    const size_t c = (size_t)(c0 + h);
                    double v;
                    if (a < 0 && q == 0)
                        v = (double)log->g_nvox[k * nc + c] * vox_mL;
                    else if (a < 0 && q == 1)
                        v = (double)log->g_largest[k * nc + c] * vox_mL;
                    else if (q == 5)
                        v = zone_mL(log->g_largest[k * nc + c], &s->grid);
                    else {
                        const abl_axis_zone *z =
                            &log->g_zone[(k * (size_t)log->naxes + (size_t)a) * nc + c];
                        v = q == 0   ? z->length_m * 1e3
                            : q == 1 ? z->diameter_m * 1e3
                            : q == 2 ? z->diameter_min_m * 1e3
                            : q == 3 ? z->diameter_eq_m * 1e3
                            : q == 4 ? z->volume_m3 * 1e6
                                     : z->volume_pv_m3 * 1e6;
                    }
                    buf[k * (size_t)n + (size_t)h] = v;
                }
            snprintf(name, sizeof name, "%s/" H5_GROWTH "/" H5_KIND_COL_FMT, gname,
                     kind == 2 && a < 0 ? H5_KIND_DAMAGE_OMEGA : crit_kind[kind], what);
            st = write_table(o, name, kind == 2 ? 1 : 2, ng, (hsize_t)n, buf,
                             strstr(what, "_mL") ? "mL" : "mm", err);
        }
    }
    free(buf);
    return st;
}

static abl_status write_isotherms(abl_output *o, const abl_sim_view *s, const iso_result *iso,
                                  abl_error *err)
{
    const abl_scenario *sc = s->sc;
    hid_t grp = make_group(o, H5_ISOTHERMS, err);
    if (grp < 0) return ABL_EIO;
    abl_status st = ABL_OK;
    if (h5_attr_f64(grp, H5A_VOXEL_VOLUME_ML, grid_voxel_volume_m3(&s->grid) * 1e6) < 0 ||
        h5_attr_str(grp, H5A_DEFINITION,
                    "hot: voxels whose T_max_C >= threshold; cold: voxels whose "
                    "T_min_C <= threshold; per-material columns are material "
                    "indices, see /grid/materials") < 0)
        st = h5_fail(o, err, "writing attributes of", H5_ISOTHERMS);
    for (int pass = 0; pass < 2 && st == ABL_OK; pass++) {
        const char *kind = pass == 0 ? H5_KIND_HOT : H5_KIND_COLD;
        hsize_t d1 = (hsize_t)(pass == 0 ? sc->n_hot : sc->n_cold);
        hsize_t d2[2] = {d1, (hsize_t)s->nmat};
        char name[NAME_LEN];
        snprintf(name, sizeof name, "%s/" H5_KIND_COL_FMT, H5_ISOTHERMS, kind, H5_COL_THRESHOLD);
        st = write_small(o, o->file, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, &d1,
                         pass == 0 ? sc->hot_C : sc->cold_C, "degC", err);
        if (st != ABL_OK) break;
        snprintf(name, sizeof name, "%s/" H5_KIND_COL_FMT, H5_ISOTHERMS, kind,
                 H5_COL_VOLUME_TOTAL);
        st = write_small(o, o->file, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, &d1,
                         pass == 0 ? iso->hot_tot : iso->cold_tot, "mL", err);
        if (st != ABL_OK) break;
        snprintf(name, sizeof name, "%s/" H5_KIND_COL_FMT, H5_ISOTHERMS, kind,
                 H5_COL_VOLUME_PER_MATERIAL);
        st = write_small(o, o->file, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, d2,
                         pass == 0 ? iso->hot_mat : iso->cold_mat, "mL", err);
    }
    /* thermal damage criteria: Arrhenius Omega >= 1, CEM43 >= 240 min */
    const hsize_t nm = (hsize_t)s->nmat;
    const char *dn[2] = {H5_KIND_DAMAGE_OMEGA, H5_KIND_CEM43};
    for (int q = 0; q < 2 && st == ABL_OK; q++) {
        char name[NAME_LEN];
        snprintf(name, sizeof name, "%s/" H5_KIND_COL_FMT, H5_ISOTHERMS, dn[q],
                 H5_COL_VOLUME_TOTAL);
        st = write_small(o, o->file, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 0, NULL,
                         &iso->dmg_tot[q], "mL", err);
        if (st != ABL_OK) break;
        snprintf(name, sizeof name, "%s/" H5_KIND_COL_FMT, H5_ISOTHERMS, dn[q],
                 H5_COL_VOLUME_PER_MATERIAL);
        st = write_small(o, o->file, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, &nm,
                         iso->dmg_mat + (size_t)q * s->nmat, "mL", err);
    }
    /* the largest 6-connected component of each zone: the zone apart from stray voxels */
    const double vox_mL = grid_voxel_volume_m3(&s->grid) * 1e6;
    for (int kind = 0; kind < 3 && st == ABL_OK; kind++) {
        const int c0 = kind == 0 ? 0 : kind == 1 ? sc->n_hot : sc->n_hot + sc->n_cold;
        const int n = kind == 0 ? sc->n_hot : kind == 1 ? sc->n_cold : 1;
        double v[ABL_MAX_THRESHOLDS];
        for (int h = 0; h < n; h++)
            v[h] = (double)iso->largest[c0 + h] * vox_mL;
        char name[NAME_LEN];
        snprintf(name, sizeof name, "%s/" H5_KIND_COL_FMT, H5_ISOTHERMS,
                 kind == 2 ? H5_KIND_DAMAGE_OMEGA : crit_kind[kind], H5_COL_LARGEST);
        st = write_table(o, name, kind == 2 ? 0 : 1, (hsize_t)n, 1, v, "mL", err);
    }
    close_id(grp);
    if (st == ABL_OK && s->runlog) st = write_growth(o, s, H5_ISOTHERMS, -1, err);
    return st;
}

/* /sources/<name>: attr "type"; with a series, one 1-D float64 dataset per column (units from
 * the column name's suffix) and attrs rows, delivered_<p>energy_J for every <p>power_W column. */
static abl_status write_sources(abl_output *o, const abl_sim_view *s, const iso_result *iso,
                                abl_error *err)
{
    if (s->nsources <= 0) return ABL_OK;
    hid_t top = make_group(o, H5_SOURCES, err);
    if (top < 0) return ABL_EIO;
    abl_status st = ABL_OK;
    double *col = NULL;
    for (int i = 0; i < s->nsources && st == ABL_OK; i++) {
        const abl_source *src = s->sources[i];
        char gname[2 * NAME_LEN];
        snprintf(gname, sizeof gname, H5_SOURCE_FMT, iso->src_name[i]);
        hid_t grp = make_group(o, gname, err);
        if (grp < 0) {
            st = ABL_EIO;
            break;
        }
        abl_source_series ser;
        if (h5_attr_str(grp, H5A_TYPE, src->ops->type) < 0 ||
            h5_attr_str(grp, H5A_SOURCE_NAME, src->name) < 0)
            st = h5_fail(o, err, "writing attributes of", gname);
        if (st == ABL_OK && log_power(s, i)) {
            /* power from the run log: rows 1.. of its samples (row 0, t = 0, ends no interval) */
            const abl_runlog *log = s->runlog;
            const size_t nr = log->nt > 0 ? log->nt - 1 : 0;
            if (h5_attr_f64(grp, H5A_DELIVERED_ENERGY_J, log->src_E_J[i]) < 0 ||
                h5_attr_str(grp, H5A_POWER_DEFINITION,
                            "power_W = mean power over the interval ending at time_s: the source "
                            "heat the driver counted in it (E_sources_J) attributed to this "
                            "source (runlog.h; NaN where it cannot be attributed); "
                            "delivered_energy_J = the sum over the intervals") < 0)
                st = h5_fail(o, err, "writing attributes of", gname);
            if (st == ABL_OK && !has_series(src, &ser)) {
                free(col);
                col = malloc((nr ? nr : 1) * sizeof *col);
                if (!col) st = abl_fail(err, ABL_ENOMEM, "%s: out of memory", o->path);
                char dname[3 * NAME_LEN];
                snprintf(dname, sizeof dname, "%s/" H5_DS_TIME, gname);
                if (st == ABL_OK) st = write_table(o, dname, 1, nr, 1, log->t_s + 1, "s", err);
                for (size_t r = 0; r < nr && st == ABL_OK; r++)
                    col[r] = log->src_P_W[(r + 1) * (size_t)log->nsrc + (size_t)i];
                snprintf(dname, sizeof dname, "%s/" H5_DS_POWER, gname);
                if (st == ABL_OK) st = write_table(o, dname, 1, nr, 1, col, "W", err);
                if (st == ABL_OK && h5_attr_i64(grp, H5A_ROWS, (long long)nr) < 0)
                    st = h5_fail(o, err, "writing attributes of", gname);
            }
        }
        if (st == ABL_OK && has_series(src, &ser)) {
            if (h5_attr_i64(grp, H5A_ROWS, (long long)ser.nrow) < 0)
                st = h5_fail(o, err, "writing attributes of", gname);
            for (int c = 1; c < ser.ncol && st == ABL_OK; c++) {
                char key[NAME_LEN], aname[NAME_LEN + 16];
                if (!energy_key(&ser, c, key, sizeof key)) continue;
                snprintf(aname, sizeof aname, "delivered_%s", key);
                if (h5_attr_f64(grp, aname, series_energy_J(&ser, c)) < 0)
                    st = h5_fail(o, err, "writing attributes of", gname);
            }
            free(col);
            col = malloc((ser.nrow ? ser.nrow : 1) * sizeof *col);
            if (!col && st == ABL_OK)
                st = abl_fail(err, ABL_ENOMEM, "%s: out of memory for the series of %s",
                              o->path, gname);
            char (*cn)[NAME_LEN] = st == ABL_OK ? calloc((size_t)ser.ncol, sizeof *cn) : NULL;
            if (st == ABL_OK && !cn)
                st = abl_fail(err, ABL_ENOMEM, "%s: out of memory", o->path);
            for (int c = 0; c < ser.ncol && st == ABL_OK; c++) {
                char fb[32], dname[3 * NAME_LEN], units[NAME_LEN];
                snprintf(fb, sizeof fb, "column%d", c);
                safe_name(cn[c], NAME_LEN, ser.columns[c] ? ser.columns[c] : "", fb);
                unique_name(cn[c], NAME_LEN, cn, c);
                snprintf(dname, sizeof dname, "%s/%s", gname, cn[c]);
                column_units(cn[c], units, sizeof units);
                for (size_t r = 0; r < ser.nrow; r++)
                    col[r] = ser.rows[r * (size_t)ser.ncol + (size_t)c];
                hsize_t n = (hsize_t)ser.nrow;
                st = write_small(o, o->file, dname, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, &n,
                                 col, units, err);
            }
            free(cn);
        }
        close_id(grp);
    }
    free(col);
    close_id(top);
    return st;
}

/* /zones/<name>: one group per applicator axis (attrs tip_mm, direction, source), holding for
 * the hot isotherms (T_max_C >= thr), the cold ones (T_min_C <= thr) and Omega >= 1 the zone's
 * length along the axis, diameters across it [mm], volume and largest component [mL] (zone.h),
 * and their growth curves. */
static abl_status write_zones(abl_output *o, const abl_sim_view *s, const iso_result *iso,
                              abl_error *err)
{
    if (iso->nzones <= 0) return ABL_OK;
    const abl_scenario *sc = s->sc;
    hid_t top = make_group(o, H5_ZONES, err);
    if (top < 0) return ABL_EIO;
    abl_status st = ABL_OK;
    if (h5_attr_str(top, H5A_DEFINITION,
                    "per applicator axis (and a cluster axis through the mean tip along the mean "
                    "direction for a source with several): length_mm = extent of the zone's voxel "
                    "centres along the axis + one voxel; diameter_mm = 2 x largest distance of a "
                    "voxel centre from the axis + one voxel; diameter_min_mm = smallest caliper "
                    "width across the axis (18 directions, 10 degrees apart) + one voxel; "
                    "diameter_equivalent_mm = sqrt(6 volume / (pi length)), the diameter of the "
                    "ellipsoid of revolution with the zone's length and volume; volume_mL = all "
                    "voxels of the zone; largest_component_volume_mL = its largest 6-connected "
                    "component; volume_subvoxel_mL = the partial-volume estimate (zone.h: "
                    "surface voxels count the fraction inside the isotherm from (value - "
                    "threshold) / |gradient|) (hot: T_max_C >= threshold, cold: T_min_C <= "
                    "threshold, omega_ge_1: damage_omega >= 1); growth/: the same during the "
                    "run") < 0)
        st = h5_fail(o, err, "writing attributes of", H5_ZONES);
    for (int zi = 0; zi < iso->nzones && st == ABL_OK; zi++) {
        const zone_set *z = &iso->zones[zi];
        char gname[2 * NAME_LEN];
        snprintf(gname, sizeof gname, H5_ZONE_FMT, z->name);
        hid_t grp = make_group(o, gname, err);
        if (grp < 0) {
            st = ABL_EIO;
            break;
        }
        double tip_mm[3];
        for (int a = 0; a < 3; a++) tip_mm[a] = z->axis.tip_m[a] * 1e3;
        if (h5_attr_f64v(grp, H5A_TIP_MM, tip_mm, 3) < 0 ||
            h5_attr_f64v(grp, H5A_DIRECTION, z->axis.dir, 3) < 0 ||
            h5_attr_str(grp, H5A_SOURCE, s->sources[z->source]->name) < 0 ||
            h5_attr_str(grp, H5A_AXIS,
                        z->axis_index < 0 ? "cluster: mean tip, mean direction of "
                                            "the source's applicators"
                                          : "applicator") < 0)
            st = h5_fail(o, err, "writing attributes of", gname);
        for (int pass = 0; pass < 3 && st == ABL_OK; pass++) {
            const char *kind = crit_kind[pass];
            const int n = pass == 0 ? sc->n_hot : pass == 1 ? sc->n_cold : 1;
            const int c0 = pass == 0 ? 0 : pass == 1 ? sc->n_hot : sc->n_hot + sc->n_cold;
            const abl_axis_zone *zz = pass == 0 ? z->hot : pass == 1 ? z->cold : &z->omega;
            double v[7][ABL_MAX_THRESHOLDS];
            for (int h = 0; h < n; h++) {
                v[0][h] = zz[h].length_m * 1e3;
                v[1][h] = zz[h].diameter_m * 1e3;
                v[2][h] = zz[h].diameter_min_m * 1e3;
                v[3][h] = zz[h].diameter_eq_m * 1e3;
                v[4][h] = zz[h].volume_m3 * 1e6;
                v[5][h] = zone_mL(iso->largest[c0 + h], &s->grid);
                v[6][h] = zz[h].volume_pv_m3 * 1e6;
            }
            const int rank = pass == 2 ? 0 : 1; /* Omega >= 1: scalars */
            char name[3 * NAME_LEN];
            if (pass < 2) {
                snprintf(name, sizeof name, "%s/" H5_KIND_COL_FMT, gname, kind, H5_COL_THRESHOLD);
                st = write_table(o, name, 1, (hsize_t)n, 1, pass == 0 ? sc->hot_C : sc->cold_C,
                                 "degC", err);
            }
            static const char *const what[7] = {
                H5_COL_LENGTH, H5_COL_DIAMETER, H5_COL_DIAMETER_MIN, H5_COL_DIAMETER_EQ,
                H5_COL_VOLUME, H5_COL_LARGEST,  H5_COL_VOLUME_PV};
            for (int q = 0; q < 7 && st == ABL_OK; q++) {
                snprintf(name, sizeof name, "%s/" H5_KIND_COL_FMT, gname, kind, what[q]);
                st = write_table(o, name, rank, (hsize_t)n, 1, v[q], q >= 4 ? "mL" : "mm", err);
            }
        }
        close_id(grp);
        if (st == ABL_OK && z->log_axis >= 0) st = write_growth(o, s, gname, z->log_axis, err);
    }
    close_id(top);
    return st;
}

/* /probes: time_s [nt] and one float64 series [nt] per probe (degC, attrs position_mm, kind). */
static abl_status write_probes(abl_output *o, const abl_sim_view *s, abl_error *err)
{
    const abl_runlog *log = s->runlog;
    if (!log || log->nprobes == 0) return ABL_OK;
    hid_t grp = make_group(o, H5_PROBES, err);
    if (grp < 0) return ABL_EIO;
    abl_status st = ABL_OK;
    if (h5_attr_str(grp, H5A_DEFINITION,
                    "temperature at each probe by trilinear interpolation between the 8 voxel "
                    "centres around it, sampled with the running maps (at least "
                    "monitor_interval_s apart, at t = 0 and at the end); <source>_tip: at an "
                    "applicator tip (output.tip_probes)") < 0 ||
        h5_attr_f64(grp, H5A_MONITOR_INTERVAL_S, s->sc->monitor_interval_s) < 0 ||
        (log->history_from_s > 0 && h5_attr_f64(grp, H5A_HISTORY_FROM_S, log->history_from_s) < 0))
        st = h5_fail(o, err, "writing attributes of", H5_PROBES);
    close_id(grp);
    const size_t nt = log->nt, np = (size_t)log->nprobes;
    if (st == ABL_OK) st = write_table(o, H5_PROBES_TIME, 1, nt, 1, log->t_s, "s", err);
    double *col = malloc((nt ? nt : 1) * sizeof *col);
    if (!col && st == ABL_OK) st = abl_fail(err, ABL_ENOMEM, "%s: out of memory", o->path);
    for (size_t p = 0; p < np && st == ABL_OK; p++) {
        const abl_probe *pr = &log->probes[p];
        char name[2 * NAME_LEN], kind[NAME_LEN + 40];
        snprintf(name, sizeof name, H5_PROBE_FMT, pr->name);
        for (size_t k = 0; k < nt; k++)
            col[k] = log->T_C[k * np + p];
        st = write_table(o, name, 1, nt, 1, col, "degC", err);
        if (st) break;
        double pos_mm[3];
        for (int a = 0; a < 3; a++)
            pos_mm[a] = pr->pos_m[a] * 1e3;
        if (pr->source < 0)
            snprintf(kind, sizeof kind, "output.probes");
        else
            snprintf(kind, sizeof kind, "applicator tip of source %.*s", NAME_LEN,
                     s->sources[pr->source]->name);
        hid_t d = H5Dopen2(o->file, name, H5P_DEFAULT);
        if (d < 0 || h5_attr_f64v(d, H5A_POSITION_MM, pos_mm, 3) < 0 ||
            h5_attr_str(d, H5A_KIND, kind) < 0)
            st = h5_fail(o, err, "writing attributes of", name);
        close_id(d);
    }
    free(col);
    return st;
}

static double energy_residual(const abl_energy *e)
{
    double in = e->E_sources_J + e->E_perf_met_J + e->E_boundary_in_J;
    double scale = fabs(e->E_sources_J) + fabs(e->E_perf_met_J) + fabs(e->E_boundary_in_J);
    double dE = e->E_stored_final_J - e->E_stored_initial_J;
    /* a run in which nothing happens has only round-off in every term: without a floor the
     * ratio of two round-offs read -1 or +1 (a physics test, session 27). Changes below 1e-9
     * of the stored energy are taken as round-off. */
    const double floor =
        fmax(1e-9 * fmax(fabs(e->E_stored_initial_J), fabs(e->E_stored_final_J)), DBL_MIN);
    return (dE - in) / (scale > floor ? scale : floor);
}

static abl_status write_energy(abl_output *o, const abl_sim_view *s, abl_error *err)
{
    const abl_energy *e = &s->energy;
    hid_t grp = make_group(o, H5_ENERGY, err);
    if (grp < 0) return ABL_EIO;
    const struct {
        const char *name, *units;
        double v;
    } items[] = {
        {"E_stored_initial_J", "J", e->E_stored_initial_J},
        {"E_stored_final_J", "J", e->E_stored_final_J},
        {"E_stored_change_J", "J", e->E_stored_final_J - e->E_stored_initial_J},
        {"E_sources_J", "J", e->E_sources_J},
        {"E_perf_met_J", "J", e->E_perf_met_J},
        {"E_boundary_in_J", "J", e->E_boundary_in_J},
        {"relative_residual", "1", energy_residual(e)},
    };
    abl_status st = ABL_OK;
    for (size_t i = 0; i < sizeof items / sizeof items[0] && st == ABL_OK; i++) {
        char name[NAME_LEN];
        snprintf(name, sizeof name, "%s/%s", H5_ENERGY, items[i].name);
        st = write_small(o, o->file, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 0, NULL,
                         &items[i].v, items[i].units, err);
    }
    if (st == ABL_OK && h5_attr_str(grp, H5A_DEFINITION,
                                    "relative_residual = (E_stored_change_J - (E_sources_J + "
                                    "E_perf_met_J + E_boundary_in_J)) / max(|E_sources_J| + "
                                    "|E_perf_met_J| + |E_boundary_in_J|, 1e-9 |E_stored|)") < 0)
        st = h5_fail(o, err, "writing attributes of", H5_ENERGY);
    close_id(grp);
    return st;
}

/* Per-solve CG log of the implicit schemes: iterations, final relative residual, time. */
static abl_status write_solver(abl_output *o, const abl_sim_view *s, abl_error *err)
{
    static const char *const names[] = {"explicit", "implicit", "crank_nicolson", "spectral"};
    hid_t grp = make_group(o, H5_SOLVER, err);
    if (grp < 0) return ABL_EIO;
    const hsize_t n = s->n_cg;
    abl_status st = write_small(o, o->file, H5_SOLVER "/iterations", H5T_STD_I32LE,
                                H5T_NATIVE_INT, 1, &n, s->cg_iters, "1", err);
    if (st == ABL_OK)
        st = write_small(o, o->file, H5_SOLVER "/relative_residual", H5T_IEEE_F64LE,
                         H5T_NATIVE_DOUBLE, 1, &n, s->cg_resid, "1", err);
    if (st == ABL_OK)
        st = write_small(o, o->file, H5_SOLVER "/time_s", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1,
                         &n, s->cg_time_s, "s", err);
    if (st == ABL_OK &&
        (h5_attr_str(grp, H5A_SCHEME, names[s->sc->scheme]) < 0 ||
         h5_attr_f64(grp, H5A_SOLVER_TOLERANCE, s->sc->solver_tol) < 0 ||
         h5_attr_str(grp, H5A_PRECONDITIONER, abl_precond_name(s->sc->preconditioner)) < 0))
        st = h5_fail(o, err, "writing attributes of", H5_SOLVER);
    close_id(grp);
    return st;
}

#define TIMER_TABLE_MAX 16
_Static_assert((int)ABL_PROF_N <= TIMER_TABLE_MAX && (int)ABL_KER_N <= TIMER_TABLE_MAX,
               "a profile table longer than write_timer_table's buffers");

/* One timer table of the profile: datasets <path>/time_s, calls and bytes [n] and the attribute
 * names_attr listing the n names in order (comma-separated). */
static abl_status write_timer_table(abl_output *o, const char *path, int n, const double *s_,
                                    const long *calls_, const double *bytes_,
                                    const char *const *names, const char *names_attr, hid_t *grp,
                                    abl_error *err)
{
    *grp = make_group(o, path, err);
    if (*grp < 0) return ABL_EIO;
    double calls[TIMER_TABLE_MAX];
    char names_csv[TIMER_TABLE_MAX * 32] = "";
    for (int i = 0; i < n; i++) {
        calls[i] = (double)calls_[i];
        strcat(names_csv, names[i]);
        if (i + 1 < n) strcat(names_csv, ",");
    }
    const hsize_t hn = (hsize_t)n;
    const char *col[3] = {"/time_s", "/calls", "/bytes"}, *unit[3] = {"s", "1", "B"};
    const double *val[3] = {s_, calls, bytes_};
    abl_status st = ABL_OK;
    for (int c = 0; c < 3 && st == ABL_OK; c++) {
        char dname[128];
        snprintf(dname, sizeof dname, "%s%s", path, col[c]);
        st = write_small(o, o->file, dname, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, &hn, val[c],
                         unit[c], err);
    }
    if (st == ABL_OK && h5_attr_str(*grp, names_attr, names_csv) < 0)
        st = h5_fail(o, err, "writing attributes of", path);
    return st;
}

/* /profile (ablasim run --profile): wall seconds, marks and minimum bytes per phase of the run
 * loop (profile.h), up to the start of this finish; /profile/kernels the same per kernel timed
 * inside the phases (the CG's parts). */
static abl_status write_profile(abl_output *o, const abl_sim_view *s, abl_error *err)
{
    const abl_profile *p = s->prof;
    hid_t grp = -1, kg = -1;
    abl_status st = write_timer_table(o, H5_PROFILE, ABL_PROF_N, p->s, p->calls, p->bytes,
                                      abl_prof_names, H5A_PHASES, &grp, err);
    if (st == ABL_OK && h5_attr_f64(grp, H5A_WALL_TIME_S, s->wall_s) < 0)
        st = h5_fail(o, err, "writing attributes of", H5_PROFILE);
    if (st == ABL_OK)
        st = write_timer_table(o, H5_PROFILE_KERNELS, ABL_KER_N, p->ks, p->kcalls, p->kbytes,
                               abl_prof_kernel_names, H5A_KERNELS, &kg, err);
    if (kg >= 0) close_id(kg);
    if (grp >= 0) close_id(grp);
    return st;
}

/* /dt_check (ablasim run --dt-check, dtcheck.h): the steps of the run and of its half-step
 * reference and the largest final-map differences as attributes; the zones' volumes in both
 * runs as datasets volume_mL, volume_ref_mL [nzone], their names in the attribute "zones". */
static abl_status write_dt_check(abl_output *o, const abl_dt_check *d, abl_error *err)
{
    hid_t grp = make_group(o, H5_DT_CHECK, err);
    if (grp < 0) return ABL_EIO;
    char names_csv[ABL_DTC_MAX_ZONES * 33] = "";
    for (int z = 0; z < d->nzone; z++) {
        strcat(names_csv, d->zone[z]);
        if (z + 1 < d->nzone) strcat(names_csv, ",");
    }
    const hsize_t hn = (hsize_t)d->nzone;
    abl_status st = write_small(o, o->file, H5_DT_CHECK "/volume_mL", H5T_IEEE_F64LE,
                                H5T_NATIVE_DOUBLE, 1, &hn, d->volume_mL, "mL", err);
    if (st == ABL_OK)
        st = write_small(o, o->file, H5_DT_CHECK "/volume_ref_mL", H5T_IEEE_F64LE,
                         H5T_NATIVE_DOUBLE, 1, &hn, d->volume_ref_mL, "mL", err);
    if (st == ABL_OK &&
        (h5_attr_str(grp, H5A_ZONES, names_csv) < 0 || h5_attr_f64(grp, H5A_DT_S, d->dt_s) < 0 ||
         h5_attr_f64(grp, H5A_DT_REF_S, d->dt_ref_s) < 0 ||
         h5_attr_i64(grp, H5A_STEPS_REF, d->steps_ref) < 0 ||
         h5_attr_f64(grp, H5A_WALL_REF_S, d->wall_ref_s) < 0 ||
         h5_attr_f64(grp, H5A_T_FINAL_DIFF_C, d->T_final_diff_C) < 0 ||
         h5_attr_f64(grp, H5A_T_MAX_DIFF_C, d->T_max_diff_C) < 0 ||
         h5_attr_f64(grp, H5A_T_MIN_DIFF_C, d->T_min_diff_C) < 0))
        st = h5_fail(o, err, "writing attributes of", H5_DT_CHECK);
    close_id(grp);
    return st;
}

/* H5A_INPUT_FILES: the resolved names of the inputs, one a line (those that exist). */
static char *input_files(const abl_scenario *sc)
{
    bool dev = false;
    for (int i = 0; i < sc->nsources; i++) dev = dev || sc->sources[i].device[0];
    const char *in[5] = {sc->path, sc->tissues_path, sc->mesh_path, sc->initial_T_path,
                         dev ? sc->devices_path : NULL};
    size_t len = 1;
    char *real[5] = {NULL};
    for (int i = 0; i < 5; i++) {
        real[i] = in[i] ? fg_realpath(in[i]) : NULL;
        if (real[i]) len += strlen(real[i]) + 1;
    }
    char *out = calloc(len, 1);
    for (int i = 0; i < 5; i++) {
        if (out && real[i] && !strpbrk(real[i], "\n\r")) {
            strcat(out, real[i]);
            strcat(out, "\n");
        }
        free(real[i]);
    }
    return out;
}

static abl_status write_root_attrs(abl_output *o, const abl_sim_view *s, abl_error *err)
{
    const abl_scenario *sc = s->sc;
    hid_t root = o->file;
    char *inputs = input_files(sc);
    const int bad_inputs = !inputs || h5_attr_str(root, H5A_INPUT_FILES, inputs) < 0;
    free(inputs);
    if (bad_inputs)
        return abl_fail(err, ABL_EIO, "%s: writing the attribute %s failed", o->path,
                        H5A_INPUT_FILES);
    if ((o->run_id[0] && h5_attr_str(root, H5A_RUN_ID, o->run_id) < 0) ||
        h5_attr_str(root, H5A_VERSION, ABLASIM_VERSION) < 0 ||
        h5_attr_str(root, H5A_SCENARIO_NAME, sc->name) < 0 ||
        h5_attr_str(root, H5A_SCENARIO, sc->text) < 0 ||
        h5_attr_str(root, H5A_SCENARIO_PATH, sc->path) < 0 ||
        h5_attr_f64(root, H5A_DT_S, s->dt_s) < 0 ||
        h5_attr_f64(root, H5A_DT_STABLE_S, s->dt_stable_s) < 0 ||
        h5_attr_i64(root, H5A_STEPS, s->step) < 0 || h5_attr_f64(root, H5A_TIME_S, s->t_s) < 0 ||
        h5_attr_f64(root, H5A_WALL_TIME_S, s->wall_s) < 0 ||
        h5_attr_i64(root, H5A_OMP_THREADS, omp_get_max_threads()) < 0 ||
        h5_attr_str(root, H5A_COMPILER, __VERSION__) < 0 ||
        h5_attr_str(root, H5A_TIME_SCHEME,
                    (const char *const[]){"explicit", "implicit", "crank_nicolson",
                                          "spectral"}[s->sc->scheme]) < 0 ||
        h5_attr_str(root, H5A_UNITS_NOTE, "SI inside; temperatures degC; lengths in attrs in mm") < 0)
        return h5_fail(o, err, "writing attributes of", "/");
    return ABL_OK;
}

static void frame_name(char *buf, size_t len, unsigned long long t);

/* A 3-D view of every snapshot: /snapshots/frames/T_C_<t> is a virtual dataset mapping
 * /snapshots/T_C[t] (no data is copied). Visualisation readers that cannot select a slab of the
 * 4-D dataset (ParaView's Xdmf3 readers) read these like any 3-D dataset. */
static abl_status write_frames(abl_output *o, const abl_grid *g, abl_error *err)
{
    abl_status st = ABL_OK;
    hid_t grp = make_group(o, H5_SNAP_FRAMES, err);
    if (grp < 0) return ABL_EIO;
    if (h5_attr_str(grp, H5A_DEFINITION,
                    "T_C_<t>: virtual 3-D view of " H5_SNAP_T "[t], at " H5_SNAPSHOTS
                    "/time_s[t]") < 0) {
        close_id(grp);
        return h5_fail(o, err, "writing attributes of", H5_SNAP_FRAMES);
    }
    hsize_t vdims[3] = {(hsize_t)g->nz, (hsize_t)g->ny, (hsize_t)g->nx};
    hsize_t sdims[4] = {o->nt, vdims[0], vdims[1], vdims[2]};
    const float nan_fill = NAN;
    for (hsize_t t = 0; t < o->nt && st == ABL_OK; t++) {
        char name[NAME_LEN];
        frame_name(name, sizeof name, (unsigned long long)t);
        hsize_t start[4] = {t, 0, 0, 0}, count[4] = {1, vdims[0], vdims[1], vdims[2]};
        hid_t vsp = H5Screate_simple(3, vdims, NULL);
        hid_t ssp = H5Screate_simple(4, sdims, NULL);
        hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
        hid_t d = -1;
        /* "." is the file holding the virtual dataset itself, so the mapping survives the
         * rename of the temporary file. */
        if (vsp < 0 || ssp < 0 || dcpl < 0 ||
            H5Sselect_hyperslab(ssp, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
            H5Pset_virtual(dcpl, vsp, ".", H5_SNAP_T, ssp) < 0 ||
            H5Pset_fill_value(dcpl, H5T_NATIVE_FLOAT, &nan_fill) < 0 ||
            (d = H5Dcreate2(o->file, name, H5T_IEEE_F32LE, vsp, H5P_DEFAULT, dcpl, H5P_DEFAULT)) <
                0 ||
            h5_attr_str(d, H5A_UNITS, "degC") < 0 ||
            h5_attr_f64(d, H5A_TIME_S, o->snap_times[t]) < 0)
            st = h5_fail(o, err, "creating virtual dataset", name);
        close_id(d);
        close_id(dcpl);
        close_id(ssp);
        close_id(vsp);
    }
    close_id(grp);
    return st;
}

static abl_status finish_h5(abl_output *o, const abl_sim_view *s, const iso_result *iso,
                            abl_error *err)
{
    abl_status st = write_fields(o, s, err);
    if (st == ABL_OK && o->nt > 0) st = write_frames(o, &s->grid, err);
    if (st == ABL_OK) st = write_isotherms(o, s, iso, err);
    if (st == ABL_OK) st = write_sources(o, s, iso, err);
    if (st == ABL_OK) st = write_zones(o, s, iso, err);
    if (st == ABL_OK) st = write_probes(o, s, err);
    if (st == ABL_OK && s->energy.energy_tracked) st = write_energy(o, s, err);
    if (st == ABL_OK && s->n_cg > 0) st = write_solver(o, s, err);
    if (st == ABL_OK && s->profile_output) st = write_profile(o, s, err);
    if (st == ABL_OK && s->dt_check) st = write_dt_check(o, s->dt_check, err);
    if (st == ABL_OK) st = write_root_attrs(o, s, err);
    if (st == ABL_OK && h5_attr_i64(o->file, H5A_COMPLETE, 1) < 0)
        st = h5_fail(o, err, "writing attributes of", "/");
    if (st != ABL_OK) return st;

    /* Flush explicitly while everything is still open: a full disk is reported here, and the
     * file stays in a state that output_abort can close (see discard_h5). */
    if (H5Fflush(o->file, H5F_SCOPE_GLOBAL) < 0) return h5_fail(o, err, "writing", o->h5_tmp);
    close_id(o->snap_T);
    close_id(o->snap_time);
    o->snap_T = o->snap_time = -1;
    herr_t r = H5Fclose(o->file);
    o->file = -1;
    if (r < 0) return h5_fail(o, err, "closing", o->h5_tmp);
    int e = fsync_path(o->h5_tmp);
    if (e) return abl_fail(err, ABL_EIO, "%s: syncing %s failed (%s)", o->path, o->h5_tmp,
                           strerror(e));
    return ABL_OK;
}

/* ---- finish: XDMF ------------------------------------------------------------------------ */

static void xml_escaped(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&apos;", f); break;
        default: fputc(*s, f);
        }
    }
}

/* XDMF's 3DCoRectMesh counts points, and lists origin and spacing slowest axis first (z y x).
 * Our fields are cell-centred, so the point lattice starts half a voxel before the centre of
 * voxel 0 and has one more point than voxels along each axis. */
static void xdmf_mesh(FILE *f, const abl_grid *g, const char *ind)
{
    double h[3], c0[3];
    for (int a = 0; a < 3; a++) {
        h[a] = g->h_m[a] * 1e3;
        c0[a] = g->origin_m[a] * 1e3 - 0.5 * h[a];
    }
    fprintf(f, "%s<Topology TopologyType=\"3DCoRectMesh\" Dimensions=\"%d %d %d\"/>\n", ind,
            g->nz + 1, g->ny + 1, g->nx + 1);
    fprintf(f, "%s<Geometry GeometryType=\"ORIGIN_DXDYDZ\">\n", ind);
    fprintf(f, "%s  <DataItem Name=\"Origin\" Dimensions=\"3\" NumberType=\"Float\" "
               "Precision=\"8\" Format=\"XML\">%.17g %.17g %.17g</DataItem>\n",
            ind, c0[2], c0[1], c0[0]);
    fprintf(f, "%s  <DataItem Name=\"Spacing\" Dimensions=\"3\" NumberType=\"Float\" "
               "Precision=\"8\" Format=\"XML\">%.17g %.17g %.17g</DataItem>\n",
            ind, h[2], h[1], h[0]);
    fprintf(f, "%s</Geometry>\n", ind);
}

static void xdmf_attr(FILE *f, const abl_output *o, const abl_grid *g, const char *label,
                      const char *dset, abl_dtype k, const char *ind)
{
    fprintf(f, "%s<Attribute Name=\"", ind);
    xml_escaped(f, label);
    fprintf(f, "\" AttributeType=\"Scalar\" Center=\"Cell\">\n");
    fprintf(f, "%s  <DataItem Dimensions=\"%d %d %d\" NumberType=\"%s\" Precision=\"%zu\" "
               "Format=\"HDF\">", ind, g->nz, g->ny, g->nx, k == ABL_DT_U8 ? "UChar" : "Float",
            field_elem_size(k));
    xml_escaped(f, o->h5_base);
    fprintf(f, ":%s</DataItem>\n%s</Attribute>\n", dset, ind);
}

/* Name of the 3-D view of snapshot t (a virtual dataset, see write_frames). */
static void frame_name(char *buf, size_t len, unsigned long long t)
{
    snprintf(buf, len, H5_SNAP_FRAME_FMT, (unsigned long)t);
}

/* The fields every grid carries: labels, final and extreme temperatures, time maps. */
static void xdmf_static_attrs(FILE *f, const abl_output *o, const abl_sim_view *s, const char *ind)
{
    xdmf_attr(f, o, &s->grid, "labels", H5_LABELS, ABL_DT_U8, ind);
    for (int i = 0; i < s->nfields; i++) {
        const abl_field *fd = &s->fields[i];
        if ((fd->def->flags & ABL_FIELD_XDMF) && (fd->def->flags & ABL_FIELD_RESULT))
            xdmf_attr(f, o, &s->grid, fd->label, fd->result_path, fd->def->dtype, ind);
    }
}

/* One grid: without snapshots a single uniform grid; with snapshots a temporal collection whose
 * every step also carries the static fields. A static grid beside a temporal collection is not
 * an option: ParaView's Xdmf3 readers then show only the collection. Snapshots are referenced
 * through their 3-D virtual views rather than XDMF hyperslabs of /snapshots/T_C, which the
 * Xdmf3 readers cannot read. */
static void xdmf_body(FILE *f, const abl_output *o, const abl_sim_view *s)
{
    const abl_grid *g = &s->grid;
    fprintf(f, "<?xml version=\"1.0\" ?>\n<!DOCTYPE Xdmf SYSTEM \"Xdmf.dtd\" []>\n");
    fprintf(f, "<!-- ablasim %s: lengths in mm; cell-centred data in ", ABLASIM_VERSION);
    /* "--" is not allowed inside an XML comment; file names rarely have it, but be safe. */
    for (const char *p = o->h5_base; *p; p++) fputc(p[0] == '-' && p[1] == '-' ? '_' : p[0], f);
    fprintf(f, " -->\n<Xdmf Version=\"2.0\">\n  <Domain>\n");
    fprintf(f, "    <Information Name=\"run_id\" Value=\"%s\"/>\n", o->run_id);

    if (o->nt == 0) {
        fprintf(f, "    <Grid Name=\"ablasim\" GridType=\"Uniform\">\n");
        xdmf_mesh(f, g, "      ");
        xdmf_static_attrs(f, o, s, "      ");
        fprintf(f, "    </Grid>\n");
    } else {
        fprintf(f, "    <Grid Name=\"ablasim\" GridType=\"Collection\" "
                   "CollectionType=\"Temporal\">\n");
        for (hsize_t t = 0; t < o->nt; t++) {
            char frame[NAME_LEN];
            frame_name(frame, sizeof frame, (unsigned long long)t);
            fprintf(f, "      <Grid Name=\"step_%llu\" GridType=\"Uniform\">\n",
                    (unsigned long long)t);
            fprintf(f, "        <Time Value=\"%.17g\"/>\n", o->snap_times[t]);
            xdmf_mesh(f, g, "        ");
            xdmf_attr(f, o, g, "T_C", frame, ABL_DT_F32, "        ");
            xdmf_static_attrs(f, o, s, "        ");
            fprintf(f, "      </Grid>\n");
        }
        fprintf(f, "    </Grid>\n");
    }
    fprintf(f, "  </Domain>\n</Xdmf>\n");
}

/* ---- finish: JSON ------------------------------------------------------------------------ */

/* "T_max_ge_55C_mL" / "T_min_le_-40C_mL" */
static void iso_key(char *buf, size_t len, int hot, double thr)
{
    snprintf(buf, len, hot ? "T_max_ge_%gC_mL" : "T_min_le_%gC_mL", thr);
}

/* Isotherm volumes of one tissue: the sum over the materials that map to it. */
static void json_iso_block(abl_json *j, const abl_sim_view *s, const iso_result *iso, int tissue)
{
    const abl_scenario *sc = s->sc;
    for (int pass = 0; pass < 2; pass++) {
        const int nthr = pass == 0 ? sc->n_hot : sc->n_cold;
        for (int h = 0; h < nthr; h++) {
            double v = 0;
            if (tissue < 0) {
                v = pass == 0 ? iso->hot_tot[h] : iso->cold_tot[h];
            } else {
                const double *row = (pass == 0 ? iso->hot_mat : iso->cold_mat) +
                                    (size_t)h * (size_t)s->nmat;
                for (int m = 0; m < s->nmat; m++)
                    if (s->mat_tissue[m] == tissue) v += row[m];
            }
            char key[NAME_LEN];
            iso_key(key, sizeof key, pass == 0, pass == 0 ? sc->hot_C[h] : sc->cold_C[h]);
            json_num(j, key, v);
        }
    }
    const char *dk[2] = {"Omega_ge_1_mL", "CEM43_ge_240min_mL"};
    for (int q = 0; q < 2; q++) {
        double v = 0;
        if (tissue < 0) v = iso->dmg_tot[q];
        else
            for (int m = 0; m < s->nmat; m++)
                if (s->mat_tissue[m] == tissue) v += iso->dmg_mat[(size_t)q * s->nmat + m];
        json_num(j, dk[q], v);
    }
}

/* One timer table of the profile as {name: {time_s, calls, bytes}} under key (profile.h). */
static void json_timer_table(abl_json *j, const char *key, int n, const char *const *names,
                             const double *s_, const long *calls, const double *bytes)
{
    json_begin_object(j, key, false);
    for (int i = 0; i < n; i++) {
        json_begin_object(j, names[i], true);
        json_num(j, "time_s", s_[i]);
        json_int(j, "calls", calls[i]);
        json_num(j, "bytes", bytes[i]);
        json_end_object(j);
    }
    json_end_object(j);
}

static void json_zone(abl_json *j, const char *key, const abl_axis_zone *z, double largest_mL)
{
    json_begin_object(j, key, true);
    json_num(j, "length_mm", z->length_m * 1e3);
    json_num(j, "diameter_mm", z->diameter_m * 1e3);
    json_num(j, "diameter_min_mm", z->diameter_min_m * 1e3);
    json_num(j, "diameter_equivalent_mm", z->diameter_eq_m * 1e3);
    json_num(j, "volume_mL", z->volume_m3 * 1e6);
    json_num(j, "volume_subvoxel_mL", z->volume_pv_m3 * 1e6);
    json_num(j, "largest_component_volume_mL", largest_mL);
    json_end_object(j);
}

static void json_stats(abl_json *j, const char *key, col_stats cs)
{
    json_begin_object(j, key, true);
    json_num(j, "final", cs.final);
    json_num(j, "min", cs.min);
    json_num(j, "max", cs.max);
    json_end_object(j);
}

/* "probes": {name: {position_mm, kind, final_C, max_C, min_C}} over the recorded samples. */
static void json_probes(abl_json *j, const abl_sim_view *s)
{
    const abl_runlog *log = s->runlog;
    if (!log || log->nprobes == 0) return;
    json_begin_object(j, "probes", false);
    const size_t np = (size_t)log->nprobes;
    for (size_t p = 0; p < np; p++) {
        const abl_probe *pr = &log->probes[p];
        double lo = NAN, hi = NAN, fin = NAN;
        for (size_t k = 0; k < log->nt; k++) {
            const double v = log->T_C[k * np + p];
            lo = fmin(lo, v);
            hi = fmax(hi, v);
            fin = v;
        }
        json_begin_object(j, pr->name, true);
        json_num_array(j, "position_mm", pr->pos_m, 3, 1e3);
        json_str(j, "kind", pr->source < 0 ? "output.probes" : "applicator tip");
        if (pr->source >= 0) json_str(j, "source", s->sources[pr->source]->name);
        json_num(j, "final_C", fin);
        json_num(j, "max_C", hi);
        json_num(j, "min_C", lo);
        json_end_object(j);
    }
    json_end_object(j);
    /* a resumed run whose checkpoint did not carry the records (output_resume) */
    if (log->history_from_s > 0) json_num(j, "probes_and_growth_from_s", log->history_from_s);
}

/* "sources": {name: {type, zones: {axis name: {tip_mm, direction, per zone: length, diameter,
 * volume}}, series: {column: {final, min, max}}, <p>energy_J per <p>power_W column}} (same
 * names as in the HDF5 file) */
static void json_sources(abl_json *j, const abl_sim_view *s, const iso_result *iso)
{
    const abl_scenario *sc = s->sc;
    if (s->nsources <= 0) return;
    json_begin_object(j, "sources", false);
    for (int i = 0; i < s->nsources; i++) {
        const abl_source *src = s->sources[i];
        json_begin_object(j, iso->src_name[i], false);
        json_str(j, "type", src->ops->type);
        if (i < sc->nsources && sc->sources[i].device[0]) {
            /* the device preset (device.h): its values as written in the devices file, split
             * into those the run used and those the scenario set itself */
            const abl_source_cfg *c = &sc->sources[i];
            json_begin_object(j, "device", false);
            json_str(j, "name", c->device);
            json_str(j, "file", sc->devices_path);
            json_begin_object(j, "applied", false);
            for (int v = 0; v < c->ndevice_values; v++)
                if (c->device_applied[v])
                    json_str(j, c->device_values[v].path, c->device_values[v].value);
            json_end_object(j);
            json_begin_object(j, "set_by_scenario", false);
            for (int v = 0; v < c->ndevice_values; v++)
                if (!c->device_applied[v])
                    json_str(j, c->device_values[v].path, c->device_values[v].value);
            json_end_object(j);
            json_end_object(j);
        }
        int first = 1;
        for (int zi = 0; zi < iso->nzones; zi++) {
            const zone_set *z = &iso->zones[zi];
            if (z->source != i) continue;
            if (first) json_begin_object(j, "zones", false);
            first = 0;
            json_begin_object(j, z->name, false);
            json_num_array(j, "tip_mm", z->axis.tip_m, 3, 1e3);
            json_num_array(j, "direction", z->axis.dir, 3, 1.0);
            char key[NAME_LEN];
            for (int h = 0; h < sc->n_hot; h++) {
                snprintf(key, sizeof key, "T_max_ge_%gC", sc->hot_C[h]);
                json_zone(j, key, &z->hot[h], zone_mL(iso->largest[h], &s->grid));
            }
            for (int c = 0; c < sc->n_cold; c++) {
                snprintf(key, sizeof key, "T_min_le_%gC", sc->cold_C[c]);
                json_zone(j, key, &z->cold[c], zone_mL(iso->largest[sc->n_hot + c], &s->grid));
            }
            json_zone(j, "Omega_ge_1", &z->omega,
                      zone_mL(iso->largest[sc->n_hot + sc->n_cold], &s->grid));
            json_end_object(j);
        }
        if (!first) json_end_object(j);
        abl_source_series ser;
        const bool has = has_series(src, &ser);
        if (log_power(s, i)) {
            /* power from the run log (runlog.h): mean power per interval, exact energy sum */
            const abl_runlog *log = s->runlog;
            if (!has) {
                col_stats cs = {NAN, NAN, NAN};
                for (size_t k = 1; k < log->nt; k++) {
                    const double v = log->src_P_W[k * (size_t)log->nsrc + (size_t)i];
                    cs.min = fmin(cs.min, v);
                    cs.max = fmax(cs.max, v);
                    cs.final = v;
                }
                json_uint(j, "series_rows", log->nt ? log->nt - 1 : 0);
                json_begin_object(j, "series", false);
                json_stats(j, "power_W", cs);
                json_end_object(j);
            }
            json_num(j, "energy_J", log->src_E_J[i]);
        }
        if (has) {
            json_uint(j, "series_rows", ser.nrow);
            json_begin_object(j, "series", false);
            for (int c = 0; c < ser.ncol; c++)
                json_stats(j, ser.columns[c] ? ser.columns[c] : "", column_stats(&ser, c));
            json_end_object(j);
            for (int c = 1; c < ser.ncol; c++) {
                char key[NAME_LEN];
                if (energy_key(&ser, c, key, sizeof key))
                    json_num(j, key, series_energy_J(&ser, c));
            }
        }
        json_end_object(j);
    }
    json_end_object(j);
}

static void json_body(FILE *f, const abl_output *o, const abl_sim_view *s, const iso_result *iso)
{
    const abl_scenario *sc = s->sc;
    const abl_grid *g = &s->grid;
    abl_json j;
    json_init(&j, f);
    json_begin_object(&j, NULL, false);
    json_str(&j, "run_id", o->run_id);
    json_str(&j, "ablasim_version", ABLASIM_VERSION);
    json_str(&j, "scenario", sc->name);
    json_str(&j, "scenario_path", sc->path);
    json_str(&j, "output", o->path);
    json_str(&j, "xdmf", o->xdmf);
    json_begin_object(&j, "grid", true);
    json_int_array(&j, "dims", (const int[3]){g->nx, g->ny, g->nz}, 3);
    json_num_array(&j, "spacing_mm", g->h_m, 3, 1e3);
    json_num_array(&j, "origin_mm", g->origin_m, 3, 1e3);
    json_uint(&j, "voxels", g->n);
    json_end_object(&j);
    json_num(&j, "dt_s", s->dt_s);
    json_num(&j, "dt_stable_s", s->dt_stable_s);
    json_int(&j, "steps", s->step);
    if (s->mr_ratio) {
        /* time.multirate: short steps per long one, long steps taken (a resumed run's whole,
         * through the checkpoint) and how many of them ended early */
        json_begin_object(&j, "multirate", true);
        json_int(&j, "ratio", s->mr_ratio);
        json_int(&j, "long_steps", s->mr_long_steps);
        json_int(&j, "long_steps_ended_early", s->mr_early_ends);
        json_end_object(&j);
    }
    json_num(&j, "time_s", s->t_s);
    json_num(&j, "wall_time_s", s->wall_s);
    json_int(&j, "threads", omp_get_max_threads());
    json_uint(&j, "snapshots", (unsigned long long)o->nt);

    json_begin_object(&j, "isotherms", false);
    json_iso_block(&j, s, iso, -1);
    json_begin_object(&j, "per_tissue", false);
    /* One entry per tissue present, in material order; materials of one tissue are summed. */
    for (int m = 0; m < s->nmat; m++) {
        int t = s->mat_tissue[m], seen = 0;
        for (int p = 0; p < m; p++) seen |= s->mat_tissue[p] == t;
        if (seen) continue;
        json_begin_object(&j, sc->tissues.t[t].name, false);
        json_iso_block(&j, s, iso, t);
        json_end_object(&j);
    }
    json_end_object(&j);
    /* the zones apart from stray voxels: their largest 6-connected components */
    json_begin_object(&j, "largest_component", false);
    const double vox_mL = grid_voxel_volume_m3(&s->grid) * 1e6;
    const int nc = sc->n_hot + sc->n_cold + 1;
    for (int c = 0; c < nc; c++) {
        char key[NAME_LEN];
        if (c < sc->n_hot)
            iso_key(key, sizeof key, 1, sc->hot_C[c]);
        else if (c < nc - 1)
            iso_key(key, sizeof key, 0, sc->cold_C[c - sc->n_hot]);
        else
            snprintf(key, sizeof key, "Omega_ge_1_mL");
        json_num(&j, key, (double)iso->largest[c] * vox_mL);
    }
    json_end_object(&j);
    json_end_object(&j);

    json_sources(&j, s, iso);
    json_probes(&j, s);

    if (s->energy.energy_tracked) {
        const abl_energy *e = &s->energy;
        json_begin_object(&j, "energy", false);
        json_num(&j, "E_stored_initial_J", e->E_stored_initial_J);
        json_num(&j, "E_stored_final_J", e->E_stored_final_J);
        json_num(&j, "E_stored_change_J", e->E_stored_final_J - e->E_stored_initial_J);
        json_num(&j, "E_sources_J", e->E_sources_J);
        json_num(&j, "E_perf_met_J", e->E_perf_met_J);
        json_num(&j, "E_boundary_in_J", e->E_boundary_in_J);
        json_num(&j, "relative_residual", energy_residual(e));
        json_end_object(&j);
    }
    if (s->dt_check) {
        /* run --dt-check (dtcheck.h): the same scenario at half the step */
        const abl_dt_check *d = s->dt_check;
        json_begin_object(&j, "dt_check", false);
        json_num(&j, "dt_s", d->dt_s);
        json_num(&j, "dt_ref_s", d->dt_ref_s);
        json_int(&j, "steps_ref", d->steps_ref);
        json_num(&j, "wall_ref_s", d->wall_ref_s);
        json_num(&j, H5A_T_FINAL_DIFF_C, d->T_final_diff_C);
        json_num(&j, H5A_T_MAX_DIFF_C, d->T_max_diff_C);
        json_num(&j, H5A_T_MIN_DIFF_C, d->T_min_diff_C);
        json_begin_object(&j, "zones", false);
        for (int z = 0; z < d->nzone; z++) {
            json_begin_object(&j, d->zone[z], true);
            json_num(&j, "volume_mL", d->volume_mL[z]);
            json_num(&j, "volume_ref_mL", d->volume_ref_mL[z]);
            if (d->volume_ref_mL[z] > 0.0)
                json_num(&j, "difference_percent",
                         100.0 * (d->volume_mL[z] - d->volume_ref_mL[z]) / d->volume_ref_mL[z]);
            else
                json_null(&j, "difference_percent");
            json_end_object(&j);
        }
        json_end_object(&j);
        json_end_object(&j);
    }
    if (s->profile_output) {
        const abl_profile *p = s->prof;
        json_timer_table(&j, "profile", ABL_PROF_N, abl_prof_names, p->s, p->calls, p->bytes);
        /* the kernels inside the phases (profile.h), beside "profile" so that it stays one
         * entry per phase */
        json_timer_table(&j, "profile_kernels", ABL_KER_N, abl_prof_kernel_names, p->ks,
                         p->kcalls, p->kbytes);
    }
    json_end_object(&j);
    json_finish(&j);
}

/* ---- finish: sidecars and commit --------------------------------------------------------- */

typedef void (*body_fn)(FILE *f, const abl_output *o, const abl_sim_view *s, const iso_result *iso);

static void xdmf_body_fn(FILE *f, const abl_output *o, const abl_sim_view *s, const iso_result *iso)
{
    (void)iso;
    xdmf_body(f, o, s);
}

/* Write a text sidecar to its fresh temporary and make it durable (atomic_file.h: a full disk
 * shows up at the flush or fsync, not at fprintf); the commit renames it. */
static abl_status write_text(const abl_output *o, abl_atomic *a, const char *final, body_fn body,
                             const abl_sim_view *s, const iso_result *iso, abl_error *err)
{
    int e = atomic_open(a, final, ".tmp");
    FILE *f = e ? NULL : atomic_stream(a);
    if (!f)
        return abl_fail(err, ABL_EIO, "%s: cannot create %s.tmp (%s)", final, final,
                        strerror(e ? e : errno));
    body(f, o, s, iso);
    if ((e = atomic_sync(a)))
        return abl_fail(err, ABL_EIO, "%s: writing %s failed (%s)", final, a->tmp, strerror(e));
    return ABL_OK;
}

/* 16 hex digits from the kernel's random source (time and pid if it cannot be read): tells
 * whether a .json or .xdmf belongs to the .h5 beside it. */
static void new_run_id(char id[17])
{
    uint64_t r = 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, &r, sizeof r) != (ssize_t)sizeof r)
        r = (uint64_t)time(NULL) * 0x9E3779B97F4A7C15ull ^ (uint64_t)getpid();
    if (fd >= 0) close(fd);
    snprintf(id, 17, "%016llx", (unsigned long long)r);
}

/* "<path>.commit": one line naming which temporary holds the new .h5 ("tmp" or "part"),
 * written under its own temporary name and renamed, so it is whole or absent. */
static abl_status write_commit_marker(const abl_output *o, abl_error *err)
{
    abl_atomic a;
    int e = atomic_open(&a, o->commit, ".tmp");
    FILE *f = e ? NULL : atomic_stream(&a);
    if (!f && !e) e = errno ? errno : EIO;
    if (f)
        fprintf(f, "ablasim-commit 1 %s %s\n", strcmp(o->h5_tmp, o->part) ? "tmp" : "part",
                o->run_id);
    if (!e) e = atomic_commit(&a);
    atomic_abort(&a);
    if (e)
        return abl_fail(err, ABL_EIO, "%s: cannot write the commit marker %s (%s)", o->path,
                        o->commit, strerror(e));
    return ABL_OK;
}

abl_status output_recover(const char *path, bool *recovered, abl_error *err)
{
    if (recovered) *recovered = false;
    /* the names only (no file is opened): output_free releases them */
    abl_output *o = calloc(1, sizeof *o);
    if (!o) return abl_fail(err, ABL_ENOMEM, "%s: out of memory", path);
    abl_status st = make_names(o, path, err);
    char *xdmf_tmp = NULL, *json_tmp = NULL;
    if (st) goto done;
    FILE *f = fopen(o->commit, "r");
    if (!f) {
        if (errno != ENOENT)
            st = abl_fail(err, ABL_EIO, "%s: cannot read the commit marker %s (%s)", path,
                          o->commit, strerror(errno));
        goto done;
    }
    char which[8] = "", id[32] = "";
    int n = fscanf(f, "ablasim-commit 1 %7s %31s", which, id);
    fclose(f);
    if (n != 2 || (strcmp(which, "tmp") && strcmp(which, "part"))) {
        st = abl_fail(err, ABL_EIO,
                      "%s: the commit marker %s is not ablasim's; remove it by hand after "
                      "checking the result files",
                      path, o->commit);
        goto done;
    }
    xdmf_tmp = path_cat(o->xdmf, ".tmp");
    json_tmp = path_cat(o->json, ".tmp");
    if (!xdmf_tmp || !json_tmp) {
        st = abl_fail(err, ABL_ENOMEM, "%s: out of memory", path);
        goto done;
    }
    /* the marker was written after every new file was complete on disk: finish the renames
     * that had not happened (a missing source means that rename was done) */
    const char *from[3] = {strcmp(which, "part") ? o->scratch : o->part, json_tmp, xdmf_tmp};
    const char *to[3] = {o->path, o->json, o->xdmf};
    for (int i = 0; i < 3; i++) {
        struct stat sb;
        if (lstat(from[i], &sb) != 0) continue;
        if (rename(from[i], to[i]) != 0) {
            st = abl_fail(err, ABL_EIO, "%s: completing an interrupted commit: cannot rename %s (%s)",
                          path, from[i], strerror(errno));
            goto done;
        }
    }
    fsync_dir_of(o->path);
    unlink(o->commit);
    fsync_dir_of(o->path);
    if (recovered) *recovered = true;
done:
    free(xdmf_tmp);
    free(json_tmp);
    output_free(o);
    return st;
}

abl_status output_recover_unowned(const char *path, bool *recovered, abl_error *err)
{
    if (recovered) *recovered = false;
    /* found by a read-only review, session 22: margin completed a marker while the run that
     * wrote it was still renaming, two processes renaming the same files */
    char *marker = path_cat(path, ".commit");
    if (!marker) return abl_fail(err, ABL_ENOMEM, "%s: out of memory", path);
    struct stat sb;
    const bool present = lstat(marker, &sb) == 0;
    const int lerrno = errno;
    if (!present && lerrno != ENOENT) {
        abl_status st = abl_fail(err, ABL_EIO, "%s: cannot read the commit marker %s (%s)", path,
                                 marker, strerror(lerrno));
        free(marker);
        return st;
    }
    free(marker);
    if (!present) return ABL_OK;
    abl_lock *lock = NULL;
    abl_error lerr = {0};
    if (fg_lock(path, &lock, &lerr) != ABL_OK)
        return abl_fail(err, lerr.status,
                        "%s has an interrupted or running commit, which is completed only under "
                        "its lock: %s",
                        path, lerr.msg);
    abl_status st = output_recover(path, recovered, err);
    fg_unlock(lock);
    return st;
}

void output_abandon_commit(const char *path)
{
    /* only while no other process writes path: a run to the same name holds its lock, and
     * its temporaries are its own (found by a read-only review, session 22: a plan's cleanup
     * unlinked a concurrent run's temporary result) */
    abl_lock *lock = NULL;
    abl_error e = {0};
    if (fg_lock(path, &lock, &e) != ABL_OK) return;
    abl_output_name names[ABL_OUTPUT_NAMES];
    const int n = output_file_names(path, names);
    if (n < 0) {
        fg_unlock(lock);
        return;
    }
    for (int i = 0; i < n; i++)
        if (!strcmp(names[i].role, "commit marker") ||
            !strcmp(names[i].role, "commit marker temporary") ||
            !strcmp(names[i].role, "output temporary") ||
            !strcmp(names[i].role, "XDMF temporary") || !strcmp(names[i].role, "JSON temporary"))
            unlink(names[i].path);
    output_file_names_free(names, n);
    fsync_dir_of(path);
    fg_unlock(lock);
}

int output_file_names(const char *path, abl_output_name names[ABL_OUTPUT_NAMES])
{
    static const struct {
        const char *role, *suffix;
        bool stem;
    } t[ABL_OUTPUT_NAMES] = {
        {"output", "", false},
        {"output temporary", ".tmp", false},
        {"partial result", ".part", false},
        {"commit marker", ".commit", false},
        {"commit marker temporary", ".commit.tmp", false},
        {"lock file", ".lock", false},
        {"XDMF sidecar", ".xdmf", true},
        {"XDMF temporary", ".xdmf.tmp", true},
        {"JSON summary", ".json", true},
        {"JSON temporary", ".json.tmp", true},
        {"incomplete result", ".incomplete.h5", true},
    };
    size_t len = strlen(path), stem = len;
    if (len > 3 && strcmp(path + len - 3, ".h5") == 0) stem = len - 3;
    else if (len > 5 && strcmp(path + len - 5, ".hdf5") == 0) stem = len - 5;
    for (int i = 0; i < ABL_OUTPUT_NAMES; i++) {
        size_t base = t[i].stem ? stem : len, n = base + strlen(t[i].suffix) + 1;
        names[i].role = t[i].role;
        names[i].path = malloc(n);
        if (!names[i].path) {
            output_file_names_free(names, i);
            return -1;
        }
        snprintf(names[i].path, n, "%.*s%s", (int)base, path, t[i].suffix);
    }
    return ABL_OUTPUT_NAMES;
}

void output_file_names_free(abl_output_name *names, int n)
{
    for (int i = 0; i < n; i++) {
        free(names[i].path);
        names[i].path = NULL;
    }
}

/* Finishing a result whose .part a checkpoint refers to (keep_part): the final fields are
 * written into a copy, never into the .part itself. A failure while finishing (a full disk
 * when the file grows by the final fields, a sidecar that cannot be written) then leaves the
 * .part exactly as the checkpoint knows it, so 'ablasim resume' can try again; written in
 * place, a failed finish left a .part that either could not be reopened (cut short) or already
 * held /fields, which the resumed run could not create again (review and full-disk audit,
 * session 18). The .part is flushed and closed (consistent on disk), copied byte for byte to
 * the scratch name, and the copy is reopened as the file being finished; the .part is removed
 * once the result is committed. Costs one copy of the partial result at the end of a
 * checkpointed run. */
static abl_status finish_from_copy(abl_output *o, abl_error *err)
{
    h5_quiet q;
    quiet_begin(&q);
    abl_status st = ABL_OK;
    if (H5Fflush(o->file, H5F_SCOPE_GLOBAL) < 0) st = h5_fail(o, err, "writing", o->part);
    quiet_end(&q);
    if (st) return st; /* discard_h5 keeps the .part as at its last flush */
    quiet_begin(&q);
    close_id(o->snap_T);
    close_id(o->snap_time);
    o->snap_T = o->snap_time = -1;
    const herr_t r = H5Fclose(o->file);
    o->file = -1;
    quiet_end(&q);
    if (r < 0) return h5_fail(o, err, "closing", o->part);
    /* the copy: the fresh scratch file (atomic_open: path + ".tmp"), written and synced by
     * atomic_file.h, never renamed: HDF5 reopens it by name */
    abl_atomic at;
    int e = atomic_open(&at, o->path, ".tmp");
    const int in = e ? -1 : open(o->part, O_RDONLY | O_CLOEXEC);
    if (!e && in < 0) e = errno;
    static char buf[1 << 16];
    while (!e) {
        const ssize_t n = read(in, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) e = errno;
        if (n <= 0) break;
        e = atomic_write(&at, buf, (size_t)n);
    }
    if (in >= 0) close(in);
    if (!e) e = atomic_sync(&at);
    if (e) {
        atomic_abort(&at); /* removes the copy */
        return abl_fail(err, ABL_EIO, "%s: copying the partial result %s to %s failed (%s)",
                        o->path, o->part, o->scratch, strerror(e));
    }
    free(o->h5_tmp);
    o->h5_tmp = at.tmp; /* the copy's name, now o's: from here a failure deletes the copy
                         * (discard_h5), not the .part */
    free(at.path);
    quiet_begin(&q);
    hid_t fapl = h5_fapl_write();
    if (fapl >= 0) o->file = H5Fopen(o->h5_tmp, H5F_ACC_RDWR, fapl);
    close_id(fapl);
    if (o->file >= 0 && o->nt > 0) {
        o->snap_T = H5Dopen2(o->file, H5_SNAP_T, H5P_DEFAULT);
        o->snap_time = H5Dopen2(o->file, H5_SNAP_TIME, H5P_DEFAULT);
    }
    if (o->file < 0 || (o->nt > 0 && (o->snap_T < 0 || o->snap_time < 0)))
        st = h5_fail(o, err, "reopening the copy", o->h5_tmp);
    quiet_end(&q);
    return st;
}

abl_status output_finish(abl_output *o, const abl_sim_view *s, abl_error *err)
{
    if (!o) return abl_fail(err, ABL_EINTERNAL, "output_finish: no open output");
    abl_status st = ABL_OK;
    iso_result iso;
    memset(&iso, 0, sizeof iso);
    abl_atomic side[2] = {{.fd = -1}, {.fd = -1}}; /* .json, .xdmf temporaries */
    size_t nmat = s->nmat > 0 ? (size_t)s->nmat : 1;
    iso.hot_mat = calloc((size_t)ABL_MAX_THRESHOLDS * nmat, sizeof(double));
    iso.cold_mat = calloc((size_t)ABL_MAX_THRESHOLDS * nmat, sizeof(double));
    iso.dmg_mat = calloc(2 * nmat, sizeof(double));
    if (!iso.hot_mat || !iso.cold_mat || !iso.dmg_mat) {
        st = abl_fail(err, ABL_ENOMEM, "%s: out of memory", o->path);
        goto done;
    }
    new_run_id(o->run_id);
    isotherm_volumes(s, iso.hot_tot, iso.hot_mat, iso.cold_tot, iso.cold_mat);
    damage_volumes(s, iso.dmg_tot, iso.dmg_mat);
    st = measure_sources(s, o->path, &iso, err);
    if (st != ABL_OK) goto done;

    const bool from_part = o->keep_part && !strcmp(o->h5_tmp, o->part);
    if (from_part && (st = finish_from_copy(o, err))) goto done;
    h5_quiet q;
    quiet_begin(&q);
    st = finish_h5(o, s, &iso, err);
    quiet_end(&q);
    if (st != ABL_OK) goto done;

    st = write_text(o, &side[1], o->xdmf, xdmf_body_fn, s, &iso, err);
    if (st == ABL_OK) st = write_text(o, &side[0], o->json, json_body, s, &iso, err);
    if (st != ABL_OK) goto done;

    /* Commit (docs/RELIABILITY.md): every new file is complete and on disk; the marker
     * "<path>.commit" is made durable, the three renames follow, the marker goes. A crash
     * between them leaves the marker, and the next command that names this result
     * (output_recover) completes the renames, so the set is the old one or the new one. The
     * result file goes first: a sidecar never stands without its .h5. */
    if ((st = write_commit_marker(o, err))) goto done;
    if (rename(o->h5_tmp, o->path) != 0) {
        /* nothing renamed yet: the old set stands; the marker goes with the temporaries */
        st = abl_fail(err, ABL_EIO, "%s: cannot rename %s into place (%s)", o->path, o->h5_tmp,
                      strerror(errno));
        unlink(o->commit);
        goto done;
    }
    for (int i = 0; i < 2; i++) {
        int e = atomic_rename(&side[i]);
        if (e) {
            /* The new .h5 is in place: the set can only be completed, not restored. The marker
             * and the sidecar temporaries not yet renamed stay for output_recover, which the
             * next command naming this result runs (a failing rename used to delete them,
             * leaving the new .h5 beside the old sidecars for good; found by the failing-call
             * property of the safety suite). */
            st = abl_fail(err, ABL_EIO,
                          "%s: cannot rename %s into place (%s); the new result is complete in "
                          "%s and the next ablasim command naming %s finishes the commit",
                          side[i].path, side[i].tmp, strerror(e), side[i].tmp, o->path);
            for (int k = i; k < 2; k++) side[k].renamed = true; /* kept: atomic_abort frees only */
            goto done;
        }
    }
    fsync_dir_of(o->path);
    unlink(o->commit);
    if (from_part) unlink(o->part); /* the result is committed: the copy's source goes */
    fsync_dir_of(o->path);
done:
    atomic_abort(&side[0]); /* removes a temporary not renamed; frees the names */
    atomic_abort(&side[1]);
    free(iso.hot_mat);
    free(iso.cold_mat);
    free(iso.dmg_mat);
    free(iso.src_name);
    free(iso.zones);
    /* o is consumed either way: on failure the HDF5 file is closed if still open and its
     * temporary removed; on success the temporary has already been renamed. */
    if (st != ABL_OK) output_abort(o);
    else output_free(o);
    return st;
}

/* Close and delete the temporary HDF5 file after an error. The file is emptied first: after a
 * failed write (full disk) HDF5 1.10 may be unable to close it (see quiet_begin) and keep its
 * descriptor open until exit, and an unlinked but open file would keep holding the space. */
static void discard_h5(abl_output *o)
{
    if (o->keep_part && o->h5_tmp && o->part && !strcmp(o->h5_tmp, o->part)) {
        /* A checkpoint refers to it: keep it as it was at its last flush (the checkpoint's,
         * or the one before a resumed run's first write). What HDF5 holds in memory since may
         * be half of a failed write (a full disk in the middle of a snapshot): flushed by the
         * close, it would leave metadata that points at data never written, and the file
         * could not be reopened (measured: a resume under a file-size limit made the .part
         * unreadable). So the file's descriptor is pointed at /dev/null first: the close
         * flushes into nothing, and on disk stays the last flushed, consistent file plus raw
         * bytes beyond its end of allocation, which HDF5 ignores (superblock version 0 has no
         * open-for-write flag to leave set). */
        h5_quiet q;
        quiet_begin(&q);
        if (o->file >= 0) {
            /* the handle is an int descriptor for the sec2 driver (the default) only */
            const hid_t fa = H5Fget_access_plist(o->file);
            const bool sec2 = fa >= 0 && H5Pget_driver(fa) == H5FD_SEC2;
            close_id(fa);
            void *handle = NULL;
            const int nul = sec2 ? open("/dev/null", O_WRONLY) : -1;
            if (nul >= 0 && H5Fget_vfd_handle(o->file, H5P_DEFAULT, &handle) >= 0 && handle)
                (void)dup2(nul, *(int *)handle);
            if (nul >= 0) close(nul);
        }
        close_id(o->snap_T);
        close_id(o->snap_time);
        o->snap_T = o->snap_time = -1;
        if (o->file >= 0) H5Fclose(o->file);
        o->file = -1;
        quiet_end(&q);
        return;
    }
    if (o->file >= 0) {
        h5_quiet q;
        quiet_begin(&q);
        int rc = truncate(o->h5_tmp, 0); /* on failure there is nothing to free: go on */
        (void)rc;
        close_id(o->snap_T);
        close_id(o->snap_time);
        o->snap_T = o->snap_time = -1;
        H5Fclose(o->file);
        o->file = -1;
        quiet_end(&q);
    }
    if (o->h5_tmp) remove(o->h5_tmp);
}

long output_snapshot_count(const abl_output *o)
{
    return o ? (long)o->nt : 0;
}

abl_status output_flush(abl_output *o, abl_error *err)
{
    if (!o) return ABL_OK;
    h5_quiet q;
    quiet_begin(&q);
    abl_status st = H5Fflush(o->file, H5F_SCOPE_GLOBAL) < 0 ? h5_fail(o, err, "writing", o->h5_tmp)
                                                             : ABL_OK;
    quiet_end(&q);
    /* A checkpoint is about to refer to this partial result: give it the name ".part", which
     * a fresh run to the same output never creates or truncates (it writes ".tmp"), so a new
     * run cannot destroy what an interrupted run's checkpoint needs. The open file moves with
     * its name (POSIX rename keeps the inode). */
    if (st == ABL_OK && strcmp(o->h5_tmp, o->part) != 0) {
        if (rename(o->h5_tmp, o->part) != 0)
            return abl_fail(err, ABL_EIO, "%s: cannot rename the partial result %s to %s (%s)",
                            o->path, o->h5_tmp, o->part, strerror(errno));
        fsync_dir_of(o->part);
        char *p = path_cat(o->part, "");
        if (!p) return abl_fail(err, ABL_ENOMEM, "%s: out of memory", o->path);
        free(o->h5_tmp);
        o->h5_tmp = p;
    }
    return st;
}

abl_status output_suspend(abl_output *o, long *snapshots_written, abl_error *err)
{
    *snapshots_written = 0;
    if (!o) return ABL_OK;
    h5_quiet q;
    quiet_begin(&q);
    abl_status st = ABL_OK;
    *snapshots_written = (long)o->nt;
    if (H5Fflush(o->file, H5F_SCOPE_GLOBAL) < 0) {
        /* the file is still open: output_abort closes it (a .part a checkpoint refers to with
         * its descriptor on /dev/null first, discard_h5), rather than HDF5 at exit */
        st = h5_fail(o, err, "writing", o->h5_tmp);
        quiet_end(&q);
        output_abort(o);
        return st;
    }
    close_id(o->snap_T);
    close_id(o->snap_time);
    o->snap_T = o->snap_time = -1;
    if (st == ABL_OK && H5Fclose(o->file) < 0) st = h5_fail(o, err, "closing", o->h5_tmp);
    o->file = -1;
    quiet_end(&q);
    if (st != ABL_OK) {
        output_abort(o);
        return st;
    }
    output_free(o);
    return ABL_OK;
}

abl_status output_resume(const char *path, const abl_sim_view *s, long snapshots_written,
                         const char *part_id, abl_output **out, abl_error *err)
{
    *out = NULL;
    abl_output *o = calloc(1, sizeof *o);
    if (!o) return abl_fail(err, ABL_ENOMEM, "%s: out of memory", path);
    o->file = o->snap_T = o->snap_time = -1;
    abl_status st = make_names(o, path, err);
    if (st != ABL_OK) {
        output_free(o);
        return st;
    }
    h5_quiet q;
    quiet_begin(&q);
    hid_t fapl = h5_fapl_write();
    if (fapl >= 0) o->file = H5Fopen(o->part, H5F_ACC_RDWR, fapl);
    close_id(fapl);
    if (o->file < 0) {
        st = abl_fail(err, ABL_EIO,
                      "%s: the partial result %s cannot be reopened (deleted, or damaged by the "
                      "interruption); the run cannot continue its snapshot history",
                      path, o->part);
        goto fail;
    }
    {
        char *p = path_cat(o->part, "");
        if (!p) {
            st = abl_fail(err, ABL_ENOMEM, "%s: out of memory", path);
            goto fail;
        }
        free(o->h5_tmp);
        o->h5_tmp = p;
    }
    {
        /* the partial result must be the checkpoint's own: a run to the same output started
         * over since (--overwrite-checkpoint) replaced it with its own .part, and continuing
         * that one would join two runs' snapshots in one result (and consume the other run's
         * partial result). Refused before anything in the file changes. */
        hid_t root = H5Gopen2(o->file, "/", H5P_DEFAULT);
        char *have = root >= 0 ? h5_attr_str_read(root, H5A_PART_ID) : NULL;
        close_id(root);
        snprintf(o->part_id, sizeof o->part_id, "%s", have ? have : "");
        free(have);
        if (part_id && part_id[0] && strcmp(part_id, o->part_id) != 0) {
            st = abl_fail(err, ABL_EINVAL,
                          "%s: the partial result %s is not this checkpoint's (its id %s, the "
                          "checkpoint's %s): another run to the same output replaced it since; "
                          "this run cannot continue its snapshot history, and %s is left as it is",
                          path, o->part, o->part_id[0] ? o->part_id : "missing", part_id,
                          o->part);
            goto fail;
        }
    }
    if (snapshots_written > 0) {
        /* keep exactly the snapshots the checkpoint knew of: a run killed after its last
         * checkpoint may have appended more, which the resumed run will write again */
        const abl_grid *g = &s->grid;
        choose_chunk(g, 4, FIELD_CHUNK_PLANES, SNAP_CHUNK_BYTES, o->snap_chunk);
        o->snap_T = H5Dopen2(o->file, H5_SNAP_T, H5P_DEFAULT);
        o->snap_time = H5Dopen2(o->file, H5_SNAP_TIME, H5P_DEFAULT);
        hsize_t ext[4] = {(hsize_t)snapshots_written, (hsize_t)g->nz, (hsize_t)g->ny,
                          (hsize_t)g->nx};
        hsize_t n1 = (hsize_t)snapshots_written;
        o->snap_cap = (size_t)snapshots_written + 64;
        o->snap_times = malloc(o->snap_cap * sizeof *o->snap_times);
        /* fewer snapshots than the checkpoint knew of: not its partial result (extending
         * would pad the history with zeros) */
        hsize_t have_n = 0;
        hid_t sp = o->snap_time >= 0 ? H5Dget_space(o->snap_time) : -1;
        if (sp >= 0) H5Sget_simple_extent_dims(sp, &have_n, NULL);
        close_id(sp);
        if (o->snap_T >= 0 && o->snap_time >= 0 && have_n < n1) {
            st = abl_fail(err, ABL_EINVAL,
                          "%s: the partial result %s holds %llu snapshots, the checkpoint "
                          "counted %ld: it is not this checkpoint's; this run cannot continue its "
                          "snapshot history, and %s is left as it is",
                          path, o->part, (unsigned long long)have_n, snapshots_written, o->part);
            goto fail;
        }
        if (o->snap_T < 0 || o->snap_time < 0 || !o->snap_times ||
            H5Dset_extent(o->snap_T, ext) < 0 || H5Dset_extent(o->snap_time, &n1) < 0 ||
            H5Dread(o->snap_time, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                    o->snap_times) < 0) {
            st = h5_fail(o, err, "reopening the snapshots of", o->h5_tmp);
            goto fail;
        }
        o->nt = (hsize_t)snapshots_written;
    }
    quiet_end(&q);
    *out = o;
    return ABL_OK;
fail:
    quiet_end(&q);
    close_id(o->snap_T);
    close_id(o->snap_time);
    close_id(o->file);
    output_free(o);
    return st;
}

void output_keep_partial(abl_output *o)
{
    if (o) o->keep_part = true;
}

void output_abort(abl_output *o)
{
    if (!o) return;
    discard_h5(o);
    output_free(o);
}

/* After a numerical fault (sim_run): what was written (grid, snapshots) stays useful to find
 * where and when the run went wrong, so it is kept rather than deleted. The fields at the time
 * of the fault and the root attributes are added (best effort: the fault is the error to
 * report, not a failure to write extras), the file is marked complete = 0 with the message as
 * "failure", and it is renamed to the incomplete name, never to the result's own name, so an
 * earlier complete result stays as it was. */
/* Move from to to, never replacing a file: a hard link (fails with EEXIST when to exists, so
 * no window) and the old name removed; where the file system has no hard links, to is checked
 * and then renamed onto. 0 or an errno (EEXIST: to exists). */
static int move_no_replace(const char *from, const char *to)
{
    if (link(from, to) == 0) {
        if (unlink(from) != 0) {
            const int e = errno;
            (void)unlink(to);
            return e;
        }
        return 0;
    }
    if (errno == EEXIST) return EEXIST;
    struct stat sb;
    if (lstat(to, &sb) == 0) return EEXIST;
    if (errno != ENOENT) return errno;
    return rename(from, to) == 0 ? 0 : errno;
}

/* A faulted run's partial result, moved to the incomplete name (name) or, where that exists or
 * another ablasim process is writing it (its lock is held), to name with "-2", "-3", ... before
 * ".h5": the incomplete name is not one the user asked for, so nothing there is replaced (it
 * was renamed onto, replacing a user's file or another interrupted run's checkpoint of that
 * name: an adversarial test, session 27). The name used goes to kept. 0 or an errno. */
static int keep_under_free_name(const char *from, const char *name, char *kept, size_t len)
{
    const size_t n = strlen(name);
    const int stem = n > 3 && !strcmp(name + n - 3, ".h5") ? (int)(n - 3) : (int)n;
    int last = EEXIST;
    for (int k = 1; k <= 99; k++) {
        if (k == 1) snprintf(kept, len, "%s", name);
        else snprintf(kept, len, "%.*s-%d.h5", stem, name, k);
        abl_lock *lock = NULL;
        abl_error scratch = {0};
        if (fg_lock(kept, &lock, &scratch) != ABL_OK) continue; /* being written */
        last = move_no_replace(from, kept);
        fg_unlock(lock);
        if (last != EEXIST) return last;
    }
    return last;
}

void output_keep_incomplete(abl_output *o, const abl_sim_view *s, abl_error *err)
{
    if (!o) return;
    char reason[ABL_ERRMSG_LEN];
    snprintf(reason, sizeof reason, "%s", err && err->msg[0] ? err->msg : "numerical fault");
    const abl_status fault = err ? err->status : ABL_ENUM;
    abl_error scratch = {0};
    h5_quiet q;
    quiet_begin(&q);
    int ok = o->file >= 0;
    if (ok) {
        (void)write_fields(o, s, &scratch);
        (void)write_root_attrs(o, s, &scratch);
        ok = h5_attr_i64(o->file, H5A_COMPLETE, 0) >= 0 &&
             h5_attr_str(o->file, H5A_FAILURE, reason) >= 0 &&
             H5Fflush(o->file, H5F_SCOPE_GLOBAL) >= 0;
    }
    if (ok) {
        close_id(o->snap_T);
        close_id(o->snap_time);
        o->snap_T = o->snap_time = -1;
        ok = H5Fclose(o->file) >= 0;
        o->file = -1;
    }
    quiet_end(&q);
    int e = 0;
    if (ok && (e = fsync_path(o->h5_tmp)) != 0) ok = 0;
    char kept[PATH_MAX + 32];
    if (ok && (e = keep_under_free_name(o->h5_tmp, o->incomplete, kept, sizeof kept)) != 0)
        ok = 0;
    if (ok) {
        fsync_dir_of(kept);
        abl_fail(err, fault,
                 "%s. The partial result (%llu snapshot%s, fields at t = %g s) is kept in %s, "
                 "marked incomplete (root attributes complete = 0, failure); %s was not written",
                 reason, (unsigned long long)o->nt, o->nt == 1 ? "" : "s", s->t_s, kept,
                 o->path);
        output_free(o);
    } else {
        abl_fail(err, fault, "%s. The partial result could not be kept (%s)", reason,
                 e ? strerror(e) : "writing it failed");
        output_abort(o);
    }
}
