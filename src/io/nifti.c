/* nifti.c - placeholder until the NIfTI module lands (see nifti.h). */
#include "ablasim/nifti.h"

abl_status nifti_read_labels(const char *path, abl_mesh *mesh, abl_nifti_geom *geom,
                             abl_error *err)
{
    (void)mesh;
    (void)geom;
    return abl_fail(err, ABL_EINVAL, "%s: NIfTI input is not available in this build yet", path);
}

abl_status nifti_write_u8(const char *path, const abl_nifti_geom *geom, const uint8_t *data,
                          abl_error *err)
{
    (void)geom;
    (void)data;
    return abl_fail(err, ABL_EINVAL, "%s: NIfTI output is not available in this build yet", path);
}

abl_status nifti_write_f32(const char *path, const abl_nifti_geom *geom, const float *data,
                           const char *description, abl_error *err)
{
    (void)geom;
    (void)data;
    (void)description;
    return abl_fail(err, ABL_EINVAL, "%s: NIfTI output is not available in this build yet", path);
}

void nifti_geom_from_grid(abl_nifti_geom *geom, const int dims[3], const double spacing_mm[3],
                          const double origin_mm[3])
{
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++) geom->affine[r][c] = r == c ? (r < 3 ? spacing_mm[r] : 1) : 0;
    for (int d = 0; d < 3; d++) {
        geom->dims[d] = dims[d];
        geom->spacing_mm[d] = spacing_mm[d];
        geom->affine[d][3] = origin_mm[d];
    }
}
