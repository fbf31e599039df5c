/* grid.h - the voxel grid: dimensions, anisotropic spacing, origin, memory layout.
 *
 * Cell-centred voxels; x is the fastest index. Voxel (i,j,k) has its centre at
 * origin_m + (i*h_x, j*h_y, k*h_z); the domain faces lie half a voxel outside the outer centres
 * (this matches NIfTI/ITK, where the origin is the centre of the first voxel). Fields are plain
 * double arrays of n = nx*ny*nz values, 64-byte aligned, indexed with ABL_IDX.
 */
#ifndef ABLASIM_GRID_H
#define ABLASIM_GRID_H

#include <stddef.h>
#include <stdint.h>

#include "ablasim/status.h"

typedef struct {
    int nx, ny, nz;
    size_t sy, sz, n;   /* strides: sy = nx, sz = nx*ny; n = number of voxels */
    double h_m[3];      /* spacing along x, y, z [m] */
    double origin_m[3]; /* centre of voxel (0,0,0) [m] */
} abl_grid;

#define ABL_IDX(g, i, j, k) ((size_t)(k) * (g)->sz + (size_t)(j) * (g)->sy + (size_t)(i))

/* The x-range [*i0, *i1) of row (j, k) that a box pass with optional per-row parts takes:
 * [lo0, hi0) cut to [row_lo[r], row_hi[r]) for r = k ny + j when row_lo is given (the active
 * region's row spans, sim.c); empty when *i0 >= *i1. */
static inline void grid_row_part(const abl_grid *g, int j, int k, int lo0, int hi0,
                                 const int32_t *row_lo, const int32_t *row_hi, int *i0, int *i1)
{
    *i0 = lo0, *i1 = hi0;
    if (!row_lo) return;
    const size_t r = (size_t)k * (size_t)g->ny + (size_t)j;
    if (row_lo[r] > *i0) *i0 = row_lo[r];
    if (row_hi[r] < *i1) *i1 = row_hi[r];
}

/* Largest grid accepted (voxels): keeps every size_t product far from overflow. */
#define ABL_GRID_MAX_VOXELS ((size_t)1 << 31)
/* Per-axis limits of any grid, given by scenario keys (grid.dims, spacing_mm, origin_mm) or by
 * a mesh or label map (sim.c build_grid): voxels along an axis, voxel size (0, max] mm, and
 * the centre of voxel 0 within +-max mm. */
#define ABL_GRID_MAX_DIM 4096
#define ABL_GRID_MAX_SPACING_MM 100.0
#define ABL_GRID_MAX_ORIGIN_MM 1e4

abl_status grid_init(abl_grid *g, const int dims[3], const double h_m[3], const double origin_m[3],
                     abl_error *err);
/* Voxel volume [m^3]. */
double grid_voxel_volume_m3(const abl_grid *g);
/* Centre of voxel (i,j,k) [m]. */
void grid_voxel_centre_m(const abl_grid *g, int i, int j, int k, double x_m[3]);

/* 64-byte aligned, first touched in parallel with the kernels' static schedule so that pages
 * land on the NUMA node of the thread that will use them. Free with grid_free_field(). */
double *grid_alloc_field(const abl_grid *g, double fill);
float *grid_alloc_field_f(const abl_grid *g, float fill);
uint8_t *grid_alloc_labels(const abl_grid *g, uint8_t fill);
void grid_free_field(void *p);

/* Domain-face boundary conditions (the scenario's `boundary:` section; used by the kernels,
 * the solvers and the output). */
typedef enum { BC_FIXED_TEMPERATURE, BC_INSULATED, BC_CONVECTIVE } abl_bc_type;
typedef struct {
    abl_bc_type type;
    double T_C;          /* fixed: wall temperature; convective: T_inf */
    double h_W_m2K;      /* convective heat transfer coefficient */
} abl_bc;

/* Faces in this order everywhere (boundary config, kernels, output). */
enum { FACE_XMIN, FACE_XMAX, FACE_YMIN, FACE_YMAX, FACE_ZMIN, FACE_ZMAX };

#endif
