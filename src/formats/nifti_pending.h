/* nifti_pending.h - NIfTI maps written as part of a set of files committed together (private to
 * src/: margin_io.c's result, summary and maps). Each writes the complete, durable map under its
 * temporary name and leaves the rename to the caller (atomic_file.h: atomic_rename the whole
 * set once every member is complete, atomic_abort otherwise), so that a failure in any member
 * (a full disk) leaves every earlier file as it was. On failure the temporary is removed. */
#ifndef ABLASIM_NIFTI_PENDING_H
#define ABLASIM_NIFTI_PENDING_H

#include "ablasim/nifti.h"
#include "atomic_file.h"

abl_status nifti_write_u8_pending(const char *path, const abl_nifti_geom *geom,
                                  const uint8_t *data, abl_atomic *pending, abl_error *err);
abl_status nifti_write_f32_pending(const char *path, const abl_nifti_geom *geom,
                                   const float *data, const char *description,
                                   abl_atomic *pending, abl_error *err);

#endif
