/* grid.c - grid geometry and aligned, first-touched field allocation. */
#define _DEFAULT_SOURCE /* madvise(MADV_HUGEPAGE) */
#include "ablasim/grid.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

abl_status grid_init(abl_grid *g, const int dims[3], const double h_m[3], const double origin_m[3],
                     abl_error *err)
{
    for (int d = 0; d < 3; d++) {
        if (dims[d] < 1)
            return abl_fail(err, ABL_EINVAL, "grid dimension %c = %d: must be >= 1", "xyz"[d],
                            dims[d]);
        if (!(h_m[d] > 0) || !isfinite(h_m[d]))
            return abl_fail(err, ABL_EINVAL, "grid spacing along %c = %g mm: must be > 0",
                            "xyz"[d], h_m[d] * 1e3);
    }
    size_t n = (size_t)dims[0] * (size_t)dims[1];
    if (n > ABL_GRID_MAX_VOXELS || n * (size_t)dims[2] > ABL_GRID_MAX_VOXELS)
        return abl_fail(err, ABL_ENOMEM, "grid %d x %d x %d has more than %zu voxels", dims[0],
                        dims[1], dims[2], (size_t)ABL_GRID_MAX_VOXELS);
    g->nx = dims[0];
    g->ny = dims[1];
    g->nz = dims[2];
    g->sy = (size_t)g->nx;
    g->sz = g->sy * (size_t)g->ny;
    g->n = g->sz * (size_t)g->nz;
    memcpy(g->h_m, h_m, sizeof g->h_m);
    memcpy(g->origin_m, origin_m, sizeof g->origin_m);
    return ABL_OK;
}

double grid_voxel_volume_m3(const abl_grid *g)
{
    return g->h_m[0] * g->h_m[1] * g->h_m[2];
}

void grid_voxel_centre_m(const abl_grid *g, int i, int j, int k, double x_m[3])
{
    x_m[0] = g->origin_m[0] + i * g->h_m[0];
    x_m[1] = g->origin_m[1] + j * g->h_m[1];
    x_m[2] = g->origin_m[2] + k * g->h_m[2];
}

/* Fields of 4 MiB and more are aligned to 2 MiB and offered to transparent huge pages: the
 * stencil touches three z-planes megabytes apart, and 4 KiB pages would spend TLB misses on it. */
static void *aligned_bytes(size_t bytes)
{
    const size_t huge = (size_t)2 << 20;
    size_t align = bytes >= 2 * huge ? huge : 64;
    size_t rounded = (bytes + align - 1) / align * align;
    void *p = aligned_alloc(align, rounded ? rounded : align);
#ifdef MADV_HUGEPAGE
    if (p && align == huge) madvise(p, rounded, MADV_HUGEPAGE);
#endif
    return p;
}

/* First touch by z-planes with the kernels' schedule(static) over k. */
double *grid_alloc_field(const abl_grid *g, double fill)
{
    double *p = aligned_bytes(g->n * sizeof *p);
    if (!p) return NULL;
#pragma omp parallel for schedule(static)
    for (int k = 0; k < g->nz; k++)
        for (size_t c = (size_t)k * g->sz; c < (size_t)(k + 1) * g->sz; c++) p[c] = fill;
    return p;
}

float *grid_alloc_field_f(const abl_grid *g, float fill)
{
    float *p = aligned_bytes(g->n * sizeof *p);
    if (!p) return NULL;
#pragma omp parallel for schedule(static)
    for (int k = 0; k < g->nz; k++)
        for (size_t c = (size_t)k * g->sz; c < (size_t)(k + 1) * g->sz; c++) p[c] = fill;
    return p;
}

uint8_t *grid_alloc_labels(const abl_grid *g, uint8_t fill)
{
    uint8_t *p = aligned_bytes(g->n);
    if (!p) return NULL;
#pragma omp parallel for schedule(static)
    for (int k = 0; k < g->nz; k++) memset(p + (size_t)k * g->sz, fill, g->sz);
    return p;
}

void grid_free_field(void *p)
{
    free(p);
}
