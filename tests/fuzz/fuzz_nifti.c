/* fuzz_nifti.c - libFuzzer harness for NIfTI label maps (nifti_read_labels, nifti.h).
 *
 * Input: the bytes of a NIfTI file. Each input is read twice, named .nii and .nii.gz: the
 * reader picks gzip by the name, and zlib reads a plain file named .nii.gz transparently, so
 * both code paths (the .nii size check before allocating, and the streamed .nii.gz read) see
 * every input, gzip-compressed or not.
 *
 * A label map that was read must satisfy the documented result (dims >= 1, spacing finite and
 * > 0, origin finite, file geometry consistent with the mesh up to the axis permutation) and
 * survive a round trip: written back with nifti_write_u8 in the file's own geometry and read
 * again, it must give the same grid and labels, and spacing and origin to float32 precision
 * (NIfTI-1 stores the affine in float32). A failure must come with a message and nothing
 * allocated, and no file descriptor may be left open.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ablasim/grid.h"
#include "ablasim/nifti.h"
#include "fuzz_common.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) abort();                                                                      \
    } while (0)

/* Round trips only for maps this small (a gzip write per input otherwise dominates). */
#define FUZZ_ROUNDTRIP_MAX_VOXELS ((size_t)1 << 20)

static size_t check_mesh(const abl_mesh *m, const abl_nifti_geom *g)
{
    size_t n = 1;
    int seen[3] = {0, 0, 0};
    for (int a = 0; a < 3; a++) {
        CHECK(m->dims[a] >= 1 && g->dims[a] >= 1);
        n *= (size_t)m->dims[a];
        CHECK(n <= ABL_GRID_MAX_VOXELS);
        CHECK(isfinite(m->spacing_mm[a]) && m->spacing_mm[a] > 0);
        CHECK(isfinite(m->origin_mm[a]));
        /* the mesh axes are the file axes, permuted */
        for (int b = 0; b < 3; b++)
            if (!seen[b] && g->dims[b] == m->dims[a] && g->spacing_mm[b] == m->spacing_mm[a]) {
                seen[b] = 1;
                break;
            }
    }
    CHECK(seen[0] && seen[1] && seen[2]);
    CHECK(m->labels != NULL && m->label_names == NULL);
    volatile unsigned sum = 0;
    for (size_t c = 0; c < n; c++)
        sum += m->labels[c];
    (void)sum;
    return n;
}

/* |a - b| within float32 rounding (NIfTI-1 stores the affine in float32) of a quantity of
 * magnitude scale, plus a tiny absolute slack for values that round to zero. */
static int close_f32(double a, double b, double scale)
{
    return fabs(a - b) <= 4 * 6e-8 * scale + 1e-30;
}

/* The origin along world axis w is an offset plus voxel steps, each rounded to float32 on the
 * way through the file: its error scales with the largest of those terms, not with the
 * origin itself, which can cancel to almost nothing. */
static double origin_scale(const abl_nifti_geom *g, int w)
{
    double s = fabs(g->affine[w][3]);
    for (int a = 0; a < 3; a++)
        s += fabs(g->affine[w][a]) * (double)g->dims[a];
    return s;
}

static void roundtrip(const abl_mesh *m, const abl_nifti_geom *g, size_t n, int gz)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/%s", fz_tmpdir(), gz ? "out.nii.gz" : "out.nii");
    abl_error err = {0};
    if (nifti_write_u8(path, g, m->labels, &err) != ABL_OK) {
        CHECK(err.msg[0] != '\0');
        return;
    }
    abl_mesh b;
    abl_nifti_geom bg;
    CHECK(nifti_read_labels(path, &b, &bg, &err) == ABL_OK);
    for (int a = 0; a < 3; a++) {
        CHECK(b.dims[a] == m->dims[a] && bg.dims[a] == g->dims[a]);
        CHECK(close_f32(b.spacing_mm[a], m->spacing_mm[a], m->spacing_mm[a]));
        CHECK(close_f32(b.origin_mm[a], m->origin_mm[a], origin_scale(g, a)));
    }
    CHECK(memcmp(b.labels, m->labels, n) == 0);
    mesh_free(&b);
    unlink(path);
}

static void read_as(const char *name, const uint8_t *data, size_t size)
{
    const char *path = fz_write_file(name, data, size);
    fz_capture_begin();
    int fd0 = fz_lowest_free_fd();
    abl_mesh m;
    abl_nifti_geom g;
    memset(&m, 0xA5, sizeof m); /* the reader must initialise everything it hands back */
    memset(&g, 0xA5, sizeof g);
    abl_error err = {0};
    if (nifti_read_labels(path, &m, &g, &err) == ABL_OK) {
        size_t n = check_mesh(&m, &g);
        if (n <= FUZZ_ROUNDTRIP_MAX_VOXELS) roundtrip(&m, &g, n, name[strlen(name) - 1] == 'z');
    } else {
        CHECK(m.labels == NULL && m.label_names == NULL && err.msg[0] != '\0');
    }
    mesh_free(&m);
    CHECK(fz_lowest_free_fd() == fd0);
    fz_capture_end();
    unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    read_as("in.nii", data, size);
    read_as("in.nii.gz", data, size);
    return 0;
}
