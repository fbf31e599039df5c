/* h5util.h - private helpers shared by the HDF5 readers and writers (src/formats mesh.c,
 * nifti.c, checkpoint.c; src/results output.c; src/analysis margin_io.c; src/sweep): silence
 * HDF5's own error printing around our calls, fetch the innermost HDF5 error description for
 * our messages, close any HDF5 id. Not a public module (file commits: atomic_file.h). */
#ifndef ABLASIM_H5UTIL_H
#define ABLASIM_H5UTIL_H

#include <hdf5.h>
#include <stddef.h>

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
/* HDF5 types of a field element type (fields.h abl_dtype): little-endian in files, native in
 * memory. */
hid_t h5_dtype_file(abl_dtype t);
hid_t h5_dtype_mem(abl_dtype t);
#endif
