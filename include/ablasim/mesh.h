/* mesh.h - voxel label grids stored as HDF5 files in meshes/.
 *
 * Layout (documented in docs/ARCHITECTURE.md):
 *   /labels  uint8 [nz][ny][nx] (C order: x fastest), the tissue label of each voxel
 *            attrs: spacing_mm  float64[3] (x, y, z), > 0
 *                   origin_mm   float64[3], centre of voxel (0,0,0)
 *   /label_names (optional) attr on /labels: "0:fat,1:liver,2:tumour" - a hint the scenario's
 *            grid.labels mapping may use; the scenario mapping wins.
 * Every failure (missing file, not HDF5, missing dataset, wrong type or rank, missing or
 * non-positive spacing, truncated data) is a clear ABL_EIO/ABL_EINVAL naming the file.
 */
#ifndef ABLASIM_MESH_H
#define ABLASIM_MESH_H

#include <stdint.h>

#include "ablasim/status.h"

typedef struct {
    int dims[3];          /* nx, ny, nz */
    double spacing_mm[3];
    double origin_mm[3];
    uint8_t *labels;      /* nx*ny*nz, x fastest */
    char *label_names;    /* NULL if absent */
} abl_mesh;

abl_status mesh_read(const char *path, abl_mesh *out, abl_error *err);
/* Write atomically (temporary name, then rename). */
abl_status mesh_write(const char *path, const abl_mesh *m, abl_error *err);
void mesh_free(abl_mesh *m);

#endif
