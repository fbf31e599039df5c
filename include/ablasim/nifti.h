/* nifti.h - NIfTI-1/NIfTI-2 label maps and scalar maps in, masks and maps out (3D Slicer,
 * ITK-SNAP, FSL).
 *
 * Segmentations arrive as integer label maps (.nii or .nii.gz) with an affine that places
 * voxels in the scanner's world frame (mm, RAS+ as in the NIfTI standard). ablasim's grid is
 * axis-aligned with x fastest and positive spacing: reading accepts affines whose voxel axes are
 * the world axes up to order and sign (e.g. Slicer's diag(-dx,-dy,dz)), re-indexes the voxels
 * into RAS+ (origin_mm = world centre of mesh voxel (0,0,0)), rejects oblique affines, and
 * returns the file's own dims and affine (qform preferred, sform otherwise) in abl_nifti_geom.
 * nifti_write_* take data in grid order and map it back, so masks written with that geometry
 * carry the same affine and voxel order and overlay exactly on the source.
 */
#ifndef ABLASIM_NIFTI_H
#define ABLASIM_NIFTI_H

#include <stdint.h>

#include "ablasim/mesh.h"
#include "ablasim/status.h"

typedef struct {
    int dims[3];               /* nx, ny, nz */
    double spacing_mm[3];      /* pixdim[1..3] */
    double affine[4][4];       /* voxel (i,j,k,1) -> world (x,y,z,1) in mm */
} abl_nifti_geom;

/* Read an integer label map (any integer datatype whose values are 0..255; a float map is
 * accepted only when every value is an exact integer in 0..255). 4-D files with more than
 * one volume, non-positive spacing or unreadable/truncated data are errors naming the file.
 * The result is an abl_mesh (labels x fastest, spacing_mm, origin_mm = world position of voxel
 * (0,0,0)) plus the geometry. geom may be NULL; geom dims/spacing are the file's, so index
 * labels with mesh->dims. */
abl_status nifti_read_labels(const char *path, abl_mesh *mesh, abl_nifti_geom *geom,
                             abl_error *err);
/* Read a scalar map (a temperature field in degrees C, say): one 3-D volume of any integer or
 * float32/float64 datatype, scl_slope/scl_inter applied, every value finite (a NaN or Inf is an
 * error naming the voxel), in grid order like nifti_read_labels; out's spacing_mm and
 * origin_mm are set (has_* true) for the caller's geometry check, geom_single for a NIfTI-1
 * file (float32 affine). A file marked as a label map (intent_code LABEL, as ablasim's masks
 * are) is refused. Free with mesh_field_free. */
abl_status nifti_read_scalar(const char *path, abl_field_file *out, abl_nifti_geom *geom,
                             abl_error *err);
/* 1 for a name ending in .nii, 2 for .nii.gz, 0 otherwise (the one test of a NIfTI name). */
int nifti_suffix(const char *path);
/* Write a uint8 mask or label map / a float32 map with the given geometry (compressed when the
 * name ends in .gz). Atomic: temporary name, then rename. */
abl_status nifti_write_u8(const char *path, const abl_nifti_geom *geom, const uint8_t *data,
                          abl_error *err);
abl_status nifti_write_f32(const char *path, const abl_nifti_geom *geom, const float *data,
                           const char *description, abl_error *err);
/* Geometry of an axis-aligned ablasim grid (affine = diag(spacing) + origin). */
void nifti_geom_from_grid(abl_nifti_geom *geom, const int dims[3], const double spacing_mm[3],
                          const double origin_mm[3]);

#endif
