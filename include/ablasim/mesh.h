/* mesh.h - voxel label grids stored as HDF5 files in meshes/, and scalar voxel fields read
 * from HDF5 (a scenario's initial temperature, physics.initial_temperature_file).
 *
 * Layout (documented in docs/ARCHITECTURE.md):
 *   /labels  uint8 [nz][ny][nx] (C order: x fastest), the tissue label of each voxel
 *            attrs: spacing_mm  float64[3] (x, y, z), each in [1e-6, 1e6] mm
 *                   origin_mm   float64[3], centre of voxel (0,0,0), within +-1e9 mm
 *                   (IEEE float64/float32 or integer attributes are accepted)
 *   /label_names (optional) attr on /labels: "0:fat,1:liver,2:tumour" - a hint the scenario's
 *            grid.labels mapping may use; the scenario mapping wins.
 * Every failure (missing file, not HDF5, missing dataset, wrong type or rank, missing or
 * non-positive spacing, truncated data, a file that crashes or hangs libhdf5) is a clear
 * ABL_EIO/ABL_EINVAL naming the file.
 */
#ifndef ABLASIM_MESH_H
#define ABLASIM_MESH_H

#include <stdbool.h>
#include <stdint.h>

#include "ablasim/status.h"

typedef struct {
    int dims[3];          /* nx, ny, nz */
    double spacing_mm[3];
    double origin_mm[3];
    uint8_t *labels;      /* nx*ny*nz, x fastest */
    char *label_names;    /* NULL if absent */
} abl_mesh;

/* How mesh_read_ex reads. */
typedef struct {
    bool in_process;  /* read in this process: files ablasim wrote itself, and fuzzing (where a
                       * crash must stay visible); default: guarded */
    bool skip_names;  /* leave label_names NULL without reading it (the run path: an unused
                       * hint, and the way in of several libhdf5 faults on corrupt files) */
    double timeout_s; /* guarded read: time limit; <= 0: ABL_MESH_READ_TIMEOUT_S */
    bool optional;    /* mesh_read_field: a missing dataset is no error (out->values NULL) */
    const char *names_dataset; /* mesh_read_field: also read this 1-D string dataset (an
                                * ablasim result's /grid/material_names) into out->names as
                                * "0:liver,1:tumour"; NULL when the file has none */
} abl_mesh_read_opts;

#define ABL_MESH_READ_TIMEOUT_S 60.0

/* Read a mesh. Guarded (the default): libhdf5 1.10 crashes or hangs on some corrupt files
 * (docs/RELIABILITY.md), so a child process (fork) reads the file and sends the result back
 * through a pipe; a crash or a read that takes longer than the time limit (the child is then
 * killed) becomes ABL_EIO naming the file. Results and errors are otherwise exactly those of
 * the in-process read. opts NULL: guarded, with label_names, 60 s. On failure *out is empty. */
abl_status mesh_read_ex(const char *path, const abl_mesh_read_opts *opts, abl_mesh *out,
                        abl_error *err);
/* mesh_read_ex(path, NULL, out, err). */
abl_status mesh_read(const char *path, abl_mesh *out, abl_error *err);
/* A scalar field read from an HDF5 dataset: any IEEE float or integer type, rank 3
 * [nz][ny][nx] (C order, x fastest), every voxel stored. spacing_mm / origin_mm are the
 * dataset's own attributes of those names, else those of the file's /grid/labels (an ablasim
 * result); has_* say whether they were found. */
typedef struct {
    int dims[3]; /* nx, ny, nz */
    bool has_spacing, has_origin;
    double spacing_mm[3], origin_mm[3];
    double *values; /* nx*ny*nz, x fastest */
    bool geom_single; /* spacing/origin from a float32 affine (NIfTI-1): equal only to float32
                       * precision to a grid stated in double (sim.c check_initial_field) */
    /* HDF5 only (mesh_read_field): the dataset's `units` attribute ("" when it has none, cut
     * to 31 characters), and the file's root attribute `complete` (an ablasim result's: 1
     * finished, 0 a run that stopped on a fault; -1 when the file has none), so that a reader
     * can refuse a field that is not what it needs (scenario.c: initial fields) */
    char units[32];
    int file_complete;
    char *names; /* opts->names_dataset's strings, "0:a,1:b" (NULL: not asked for, or absent) */
} abl_field_file;

/* Read the field `dataset` (an absolute HDF5 path) of path, guarded like mesh_read_ex (opts as
 * there; skip_names is ignored). Every failure is one sentence naming the file and dataset. */
abl_status mesh_read_field(const char *path, const char *dataset, const abl_mesh_read_opts *opts,
                           abl_field_file *out, abl_error *err);
void mesh_field_free(abl_field_file *f);
/* Write f (its dims, spacing_mm, origin_mm and values) as float64 dataset `dataset` with
 * those attributes and `units`; atomic like mesh_write (has_* are ignored: both are written). */
abl_status mesh_write_field(const char *path, const char *dataset, const abl_field_file *f,
                            const char *units, abl_error *err);
/* The same for n (1..ABL_MESH_MAX_FIELDS) fields in one file, dataset q named datasets[q]
 * (groups made as needed, e.g. /fields/T_final_C): enough for a state's maps with every
 * threshold's time map (the planner's coarse state). */
#define ABL_MESH_MAX_FIELDS 48
abl_status mesh_write_fields(const char *path, int n, const char *const *datasets,
                             const abl_field_file *fields, const char *const *units,
                             abl_error *err);

/* Write atomically (temporary name, then rename). */
abl_status mesh_write(const char *path, const abl_mesh *m, abl_error *err);
void mesh_free(abl_mesh *m);

#endif
