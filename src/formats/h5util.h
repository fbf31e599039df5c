/* h5util.h - private helpers shared by the HDF5 readers and writers (src/formats mesh.c,
 * nifti.c, checkpoint.c; src/results output.c; src/analysis margin_io.c; src/sweep): silence
 * HDF5's own error printing around our calls, fetch the innermost HDF5 error description for
 * our messages, close any HDF5 id. Not a public module (file commits: atomic_file.h). */
#ifndef ABLASIM_H5UTIL_H
#define ABLASIM_H5UTIL_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

#include "ablasim/fields.h"

typedef struct {
    H5E_auto2_t func;
    void *data;
} h5_quiet;

/* Switch HDF5's automatic error printing off (and its exit handler, see h5util.c). */
void quiet_begin(h5_quiet *q);
/* Restore the printing state saved by quiet_begin. */
void quiet_end(const h5_quiet *q);
/* Innermost description on the HDF5 error stack as " (HDF5: ...)", or "". Call right after
 * the failing call: every HDF5 API call clears the stack. */
const char *h5_detail(char *buf, size_t len);
/* Close an HDF5 id of any kind; ignores negative ids. */
void close_id(hid_t id);
/* File-access property list for every file ablasim writes (result, its copy and .part reopen,
 * margin file, checkpoint, sweep table): STRONG close (H5Fclose also closes any object an error
 * path left open, so the file is really closed before it is removed or renamed) and no sieve
 * buffer (HDF5 would hold small contiguous writes there and write them out at H5Dclose, whose
 * failure nobody sees: exit 0 with a dataset missing; found by the failing-call property of the
 * safety suite). -1 if it cannot be made; release with close_id. */
hid_t h5_fapl_write(void);
/* HDF5 types of a field element type (fields.h abl_dtype): little-endian in files, native in
 * memory. */
hid_t h5_dtype_file(abl_dtype t);
hid_t h5_dtype_mem(abl_dtype t);

/* ---- attribute writers: the one set (result, checkpoint, mesh, sweep table) ----------------
 * Each creates the attribute on obj (a group or dataset; it must not exist yet), writes it and
 * closes what it opened; 0 on success, -1 on failure (the caller names what failed, nothing is
 * left open). The HDF5 calls are the ones the copies they replace made, in the same order, so
 * the files (and the checkpoint's attribute digest) are unchanged. */

/* Numeric attribute: n values (n == 0: a scalar), stored as ftype, read from v as mtype. */
int h5_attr_num(hid_t obj, const char *name, hid_t ftype, hid_t mtype, const void *v, hsize_t n);
/* The same with any rank (0: a scalar) and dims[rank] (e.g. a 3 x 4 affine). */
int h5_attr_num_dims(hid_t obj, const char *name, hid_t ftype, hid_t mtype, const void *v,
                     int rank, const hsize_t *dims);
/* A variable-length UTF-8 string type (string datasets and attributes; the caller closes it),
 * -1 on failure. */
hid_t h5_vstr_type(void);
/* Scalar variable-length string (NULL writes ""), UTF-8 (result, mesh and sweep files); _cset:
 * in character set cset (checkpoints: H5T_CSET_ASCII, HDF5's default). */
int h5_attr_str(hid_t obj, const char *name, const char *v);
/* A scalar variable-length string attribute (either character set) into a malloc'ed copy;
 * NULL when absent or unreadable. */
char *h5_attr_str_read(hid_t obj, const char *name);
int h5_attr_str_cset(hid_t obj, const char *name, const char *v, H5T_cset_t cset);
/* Little-endian IEEE double scalar / [n] vector; little-endian 64-bit integer scalars. */
int h5_attr_f64(hid_t obj, const char *name, double v);
int h5_attr_f64v(hid_t obj, const char *name, const double *v, hsize_t n);
int h5_attr_i64(hid_t obj, const char *name, long long v);
int h5_attr_u64(hid_t obj, const char *name, uint64_t v);
#endif
