/* nifti.c - NIfTI-1/-2 label maps and scalar maps in, masks and float maps out, through
 * nifti_clib (nifti2_io).
 *
 * The library parses and validates headers (NIfTI-1 and -2, either byte order, gzip), turns
 * the qform quaternion into a matrix, builds the headers we write (quaternion from the affine)
 * and does the gzip I/O (znzlib). What it does not do the way ablasim needs is handled here:
 *  - it reports failures by printing to stderr (at debug level > 0, and in its writer even at
 *    level 0), not to the caller: the debug level is set to 0, every check that can fail on
 *    bad input is made here first, and files are written here with znz calls whose every
 *    result is checked (the library's writer ignores a failed data write); it never calls
 *    exit();
 *  - while loading it silently replaces NaN/Inf floats by 0, which would turn a broken float
 *    label map into background: the voxel block is read here with znz and byte-swapped with
 *    the library's swap routine;
 *  - it fixes zero or non-finite pixdim to 1 without a word: the raw header is checked first.
 *
 * Frames. NIfTI world coordinates are RAS+ in mm (x to the subject's Right, y Anterior, z
 * Superior; NIfTI-1 standard, nifti1.h, "qform_code/sform_code"), and the affine maps the
 * centre of voxel (i,j,k) to world (x,y,z). ablasim's grid is axis-aligned with positive
 * spacing, so a file is accepted when its voxel axes are the world axes up to order and sign
 * (a signed permutation: the usual case, e.g. diag(-dx,-dy,dz) for a CT exported from 3D
 * Slicer/ITK, whose DICOM frame is LPS). The voxels are then re-indexed so that grid index
 * i,j,k grows along world x,y,z; the returned mesh lives in the RAS+ world frame and its
 * origin_mm is the world position of its voxel (0,0,0). abl_nifti_geom keeps the file's own
 * dims and affine, and the writers map grid-ordered data back through the same signed
 * permutation, so a mask written with that geometry has the file's affine and voxel order and
 * overlays exactly on the source image. Oblique (rotated) affines cannot be represented on the
 * grid without resampling and are rejected.
 *
 * Precision. Files are written as NIfTI-1 (read by every viewer) unless a dimension exceeds
 * 32767 (then NIfTI-2). NIfTI-1 stores the affine in float32 (srow_*, quatern_*, pixdim), so
 * the written affine equals the given one to float32 rounding (relative 6e-8, e.g. 6e-6 mm at
 * 100 mm); an affine read from a NIfTI-1 file is float32 already and comes back to within
 * one float32 rounding.
 *
 * The library keeps global options (debug level), so calls are not thread-safe; ablasim reads
 * and writes NIfTI from one thread.
 */
#include "ablasim/nifti.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nifti2_io.h>
#include <zlib.h>

#include "ablasim/grid.h"
#include "atomic_file.h"
#include "nifti_pending.h"
#include "h5util.h"
#include "ablasim/version.h"

/* An affine counts as axis-aligned when ignoring its off-axis components moves no voxel centre
 * of the grid by more than this fraction of the smallest voxel size (the error that treating it
 * as aligned makes). That admits round-off in direction cosines (1e-5 over a 500 mm field of
 * view, three axes: 0.015 mm, against 0.025 mm for 0.5 mm voxels) and rejects every real tilt
 * (gantry tilts are whole degrees; even 0.1 degree over 300 mm moves a corner by 0.5 mm). */
#define TILT_TOL_VOXELS 0.05

/* Voxel data is read and written in chunks (gzread/gzwrite take an int length). */
#define IO_CHUNK ((size_t)64 << 20)

/* NIfTI-1 stores dims as int16. */
#define NIFTI1_MAX_DIM 32767

/* File axis a runs along world axis ax[a] (0 = x/R, 1 = y/A, 2 = z/S), forwards (sign +1) or
 * backwards (sign -1). */
typedef struct {
    int ax[3];
    int sign[3];
} axis_map;

/* Grid (mesh) index of file voxel (0, i1, i2) is base + i1 step[1] + i2 step[2]; step[0] per i0. */
typedef struct {
    ptrdiff_t base, step[3];
} index_map;

enum { AXES_OK, AXES_NONFINITE, AXES_DEGENERATE, AXES_VOXEL_SIZE, AXES_OBLIQUE };

/* Voxel sizes and world positions a label map may have. Far beyond any image (a nanometre to a
 * kilometre; a million kilometres), and inside what NIfTI-1 stores: its float32 affine turns a
 * value below ~1e-38 into 0 and one above ~3e38 into infinity, so a file written back in the
 * same geometry (nifti_write_*) would be unreadable. */
#define NIFTI_MIN_VOXEL_MM 1e-6
#define NIFTI_MAX_VOXEL_MM 1e6
#define NIFTI_MAX_ORIGIN_MM 1e9

/* 1 for .nii, 2 for .nii.gz, 0 otherwise (the library picks compression by this suffix). */
int nifti_suffix(const char *path)
{
    size_t n = strlen(path);
    if (n > 7 && strcmp(path + n - 7, ".nii.gz") == 0) return 2;
    if (n > 4 && strcmp(path + n - 4, ".nii") == 0) return 1;
    return 0;
}

/* Classify the 3x4 part of A for a grid of file dims n; h[a] = length of column a (mm). */
static int map_axes(const double A[4][4], const int64_t n[3], axis_map *m, double h[3])
{
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 4; c++)
            if (!isfinite(A[r][c])) return AXES_NONFINITE;
    int used[3] = {0, 0, 0};
    double tilt_mm = 0, hmin = INFINITY;
    for (int a = 0; a < 3; a++) {
        int w = 0;
        double s2 = 0;
        for (int r = 0; r < 3; r++) {
            s2 += A[r][a] * A[r][a];
            if (fabs(A[r][a]) > fabs(A[w][a])) w = r;
        }
        h[a] = sqrt(s2);
        if (!(h[a] > 0)) return AXES_DEGENERATE;
        if (!(h[a] >= NIFTI_MIN_VOXEL_MM && h[a] <= NIFTI_MAX_VOXEL_MM)) return AXES_VOXEL_SIZE;
        if (used[w]) return AXES_OBLIQUE; /* two voxel axes closest to the same world axis */
        used[w] = 1;
        m->ax[a] = w;
        m->sign[a] = A[w][a] > 0 ? 1 : -1;
        for (int r = 0; r < 3; r++)
            if (r != w) tilt_mm += fabs(A[r][a]) * (double)(n[a] - 1);
        hmin = fmin(hmin, h[a]);
    }
    return tilt_mm > TILT_TOL_VOXELS * hmin ? AXES_OBLIQUE : AXES_OK;
}

static abl_status axes_fail(abl_error *err, int code, const char *path, const double A[4][4])
{
    switch (code) {
    case AXES_NONFINITE:
        return abl_fail(err, ABL_EINVAL, "%s: the voxel-to-world affine has a non-finite entry",
                        path);
    case AXES_VOXEL_SIZE:
        return abl_fail(err, ABL_EINVAL,
                        "%s: a voxel size of the affine (column lengths %g, %g, %g mm) lies "
                        "outside [%g, %g] mm; the file's spacing or units are wrong",
                        path, hypot(hypot(A[0][0], A[1][0]), A[2][0]),
                        hypot(hypot(A[0][1], A[1][1]), A[2][1]),
                        hypot(hypot(A[0][2], A[1][2]), A[2][2]), NIFTI_MIN_VOXEL_MM,
                        NIFTI_MAX_VOXEL_MM);
    case AXES_DEGENERATE:
        return abl_fail(err, ABL_EINVAL,
                        "%s: the voxel-to-world affine is degenerate (a voxel axis has length 0)",
                        path);
    default:
        return abl_fail(err, ABL_EINVAL,
                        "%s: the voxel axes are rotated against the world (RAS) axes (affine "
                        "[%.4g %.4g %.4g; %.4g %.4g %.4g; %.4g %.4g %.4g]): ablasim's grid is "
                        "axis-aligned, so the run would be in voxel space and the scenario's mm "
                        "coordinates would not match the image. Resample the label map onto an "
                        "axis-aligned grid (nearest neighbour) first; see docs/NIFTI.md",
                        path, A[0][0], A[0][1], A[0][2], A[1][0], A[1][1], A[1][2], A[2][0],
                        A[2][1], A[2][2]);
    }
}

static int is_identity(const axis_map *m)
{
    for (int a = 0; a < 3; a++)
        if (m->ax[a] != a || m->sign[a] < 0) return 0;
    return 1;
}

static index_map make_index_map(const axis_map *m, const int64_t n[3])
{
    ptrdiff_t N[3], S[3];
    for (int a = 0; a < 3; a++)
        N[m->ax[a]] = (ptrdiff_t)n[a];
    S[0] = 1;
    S[1] = N[0];
    S[2] = N[0] * N[1];
    index_map im = {0, {0, 0, 0}};
    for (int a = 0; a < 3; a++) {
        im.step[a] = m->sign[a] * S[m->ax[a]];
        if (m->sign[a] < 0) im.base += S[m->ax[a]] * (ptrdiff_t)(n[a] - 1);
    }
    return im;
}

/* Copy between file order (x fastest along file axes) and grid order, element type T. */
#define REORDER(T, file, grid, im, n, TO_GRID)                                                     \
    do {                                                                                           \
        size_t f_ = 0;                                                                             \
        for (int64_t i2 = 0; i2 < (n)[2]; i2++)                                                    \
            for (int64_t i1 = 0; i1 < (n)[1]; i1++) {                                              \
                ptrdiff_t g_ =                                                                     \
                    (im).base + (ptrdiff_t)i1 * (im).step[1] + (ptrdiff_t)i2 * (im).step[2];       \
                for (int64_t i0 = 0; i0 < (n)[0]; i0++, f_++, g_ += (im).step[0]) {                \
                    if (TO_GRID)                                                                   \
                        ((T *)(grid))[g_] = ((const T *)(file))[f_];                               \
                    else                                                                           \
                        ((T *)(file))[f_] = ((const T *)(grid))[g_];                               \
                }                                                                                  \
            }                                                                                      \
    } while (0)

/* ---- reading ----------------------------------------------------------------------------- */

/* The header fields checked before the library sees them (it silently repairs some). */
typedef struct {
    int64_t dim[8];
    double pixdim[8];
    int64_t vox_offset;
    char magic[4];
    int datatype;
    int version; /* 1 or 2 */
    /* what the library's header conversion turns from NaN or inf into 0 (FIXED_FLOAT) and so
     * into a plausible grid: the quaternion, its offset and the intensity scaling */
    double quatern[3], qoffset[3], scl_slope, scl_inter;
    int qform_code;
    union {
        nifti_1_header n1;
        nifti_2_header n2;
    } file; /* as stored, in the file's byte order */
} raw_header;

/* nifti_clib prints to stderr, whatever its debug level, when a header is shorter than its
 * sizeof_hdr says ("short NIFTI-2 header read", "znzread: read short by N bytes"): the length
 * is checked here first, reading with zlib, which passes uncompressed files through. */
static abl_status check_header_length(const char *path, abl_error *err)
{
    unsigned char b[sizeof(nifti_2_header)];
    gzFile gz = gzopen(path, "rb");
    if (!gz) return abl_fail(err, ABL_EIO, "%s: cannot open for reading", path);
    int got = gzread(gz, b, (unsigned)sizeof b);
    gzclose(gz);
    int32_t sz = 0;
    if (got >= 4) memcpy(&sz, b, 4);
    uint32_t u = (uint32_t)sz;
    int32_t sw = (int32_t)((u >> 24) | ((u >> 8) & 0xff00u) | ((u << 8) & 0xff0000u) | (u << 24));
    int need = sz == 348 || sw == 348 ? 348 : sz == 540 || sw == 540 ? 540 : 0;
    if (!need)
        return abl_fail(err, ABL_EIO,
                        "%s: cannot read a NIfTI header (not a NIfTI file, or truncated)", path);
    if (got < need)
        return abl_fail(err, ABL_EIO,
                        "%s: truncated: the NIfTI-%d header is %d bytes, the file holds %d", path,
                        need == 348 ? 1 : 2, need, got < 0 ? 0 : got);
    return ABL_OK;
}

static abl_status read_raw_header(const char *path, raw_header *h, abl_error *err)
{
    /* nifti_read_header tells the version but leaves the bytes in file order; the versioned
     * readers swap to native order. */
    int nver = 0, swapped = 0;
    abl_status st = check_header_length(path, err);
    if (st) return st;
    void *p = nifti_read_header(path, &nver, 0);
    if (p && (nver == 1 || nver == 2))
        memcpy(&h->file, p, nver == 2 ? sizeof(nifti_2_header) : sizeof(nifti_1_header));
    h->version = nver;
    free(p);
    p = NULL;
    if (nver == 1)
        p = nifti_read_n1_hdr(path, &swapped, 0);
    else if (nver == 2)
        p = nifti_read_n2_hdr(path, &swapped, 0);
    if (!p)
        return abl_fail(err, ABL_EIO,
                        "%s: cannot read a NIfTI header (not a NIfTI file, or truncated)", path);
    double off;
    /* the fields both versions have, by the same names (their widths differ) */
#define RAW_SHARED(n)                                                                             \
    do {                                                                                          \
        for (int d = 0; d < 8; d++) {                                                             \
            h->dim[d] = (n)->dim[d];                                                              \
            h->pixdim[d] = (n)->pixdim[d];                                                        \
        }                                                                                         \
        off = (double)(n)->vox_offset;                                                            \
        memcpy(h->magic, (n)->magic, 4);                                                          \
        h->datatype = (n)->datatype;                                                              \
        const double q_[6] = {(n)->quatern_b, (n)->quatern_c, (n)->quatern_d,                     \
                              (n)->qoffset_x, (n)->qoffset_y, (n)->qoffset_z};                    \
        memcpy(h->quatern, q_, sizeof h->quatern);                                                \
        memcpy(h->qoffset, q_ + 3, sizeof h->qoffset);                                            \
        h->scl_slope = (n)->scl_slope;                                                            \
        h->scl_inter = (n)->scl_inter;                                                            \
        h->qform_code = (n)->qform_code;                                                          \
    } while (0)
    if (nver == 2) RAW_SHARED((const nifti_2_header *)p);
    else RAW_SHARED((const nifti_1_header *)p);
#undef RAW_SHARED
    free(p);
    h->magic[3] = '\0';
    if (strcmp(h->magic, "n+1") != 0 && strcmp(h->magic, "n+2") != 0) {
        if (strcmp(h->magic, "ni1") == 0 || strcmp(h->magic, "ni2") == 0)
            return abl_fail(err, ABL_EINVAL,
                            "%s: header of a two-file (.hdr/.img) NIfTI pair; ablasim reads "
                            "single-file .nii or .nii.gz",
                            path);
        return abl_fail(err, ABL_EINVAL,
                        "%s: no NIfTI magic in the header (an ANALYZE 7.5 file?); ANALYZE has no "
                        "reliable orientation: convert it to NIfTI with its orientation checked",
                        path);
    }
    double hsize = nver == 2 ? sizeof(nifti_2_header) : sizeof(nifti_1_header);
    if (!(off >= hsize && off < 9e18)) /* the data cannot start inside the header */
        return abl_fail(err, ABL_EINVAL, "%s: corrupt header: vox_offset = %g (at least %g)", path,
                        off, hsize);
    h->vox_offset = (int64_t)off;
    /* the library would read NaN or inf here as 0: a corrupt quaternion as no rotation, a
     * corrupt offset as origin 0, a corrupt scaling as none (labels 1 became 2: an adversarial
     * test, session 30); refused like a non-finite sform. Only what the file uses: the qform
     * fields when qform_code > 0 (else the standard ignores them), the intercept when the
     * slope scales (a slope of 0 or NaN means no scaling, as nifti_clib and nibabel read it:
     * nibabel writes NaN for "unset"; a review, session 30). */
    static const char *const qname[6] = {"quatern_b", "quatern_c", "quatern_d",
                                         "qoffset_x", "qoffset_y", "qoffset_z"};
    for (int i = 0; i < 6 && h->qform_code > 0; i++) {
        const double v = i < 3 ? h->quatern[i] : h->qoffset[i - 3];
        if (!isfinite(v))
            return abl_fail(err, ABL_EINVAL,
                            "%s: corrupt header: %s = %g with qform_code %d; the orientation "
                            "(qform) must be finite numbers",
                            path, qname[i], v, h->qform_code);
    }
    const bool scales = !isnan(h->scl_slope) && h->scl_slope != 0.0;
    if (isinf(h->scl_slope) || (scales && !isfinite(h->scl_inter)))
        return abl_fail(err, ABL_EINVAL,
                        "%s: corrupt header: scl_slope = %g, scl_inter = %g; a scaling slope "
                        "must be finite and, where it scales (not 0 or NaN), the intercept too",
                        path, h->scl_slope, h->scl_inter);
    return ABL_OK;
}

/* Dimensions and voxel size: one 3-D volume, every size >= 1, pixdim finite and > 0. */
static abl_status check_dims(const char *path, const raw_header *h, const char *what, int64_t n[3],
                             size_t *nvox, abl_error *err)
{
    static const char axis[] = "xyz";
    int64_t nd = h->dim[0];
    if (nd < 1 || nd > 7)
        return abl_fail(err, ABL_EINVAL, "%s: corrupt header: dim[0] = %lld (must be 1..7)", path,
                        (long long)nd);
    for (int d = 1; d <= 3; d++) {
        n[d - 1] = d <= nd ? h->dim[d] : 1;
        if (n[d - 1] < 1)
            return abl_fail(err, ABL_EINVAL,
                            "%s: grid size along %c (dim[%d]) = %lld: must be >= 1", path,
                            axis[d - 1], d, (long long)n[d - 1]);
    }
    for (int d = 4; d <= nd; d++) {
        if (h->dim[d] == 1) continue;
        if (h->dim[d] < 1)
            return abl_fail(err, ABL_EINVAL, "%s: corrupt header: dim[%d] = %lld (must be >= 1)",
                            path, d, (long long)h->dim[d]);
        if (d == 4)
            return abl_fail(err, ABL_EINVAL,
                            "%s: 4-D image with %lld volumes (dim[4]); %s must be one 3-D "
                            "volume: extract the one you mean (e.g. fslroi IN OUT INDEX 1)",
                            path, (long long)h->dim[4], what);
        return abl_fail(err, ABL_EINVAL,
                        "%s: %lld-D image (dim[%d] = %lld); %s must be one 3-D volume", path,
                        (long long)nd, d, (long long)h->dim[d], what);
    }
    for (int d = 1; d <= 3; d++)
        if (!isfinite(h->pixdim[d]) || !(h->pixdim[d] > 0))
            return abl_fail(err, ABL_EINVAL,
                            "%s: voxel size along %c (pixdim[%d]) = %g: must be a finite number "
                            "> 0",
                            path, axis[d - 1], d, h->pixdim[d]);
    double total = (double)n[0] * (double)n[1] * (double)n[2];
    for (int a = 0; a < 3; a++)
        if (n[a] > INT_MAX || total > (double)ABL_GRID_MAX_VOXELS)
            return abl_fail(err, ABL_EINVAL,
                            "%s: grid %lld x %lld x %lld is larger than ablasim accepts (%zu "
                            "voxels at most)",
                            path, (long long)n[0], (long long)n[1], (long long)n[2],
                            (size_t)ABL_GRID_MAX_VOXELS);
    *nvox = (size_t)n[0] * (size_t)n[1] * (size_t)n[2];
    return ABL_OK;
}

/* Read nbytes of voxel data at the header's offset with the library's znz I/O into a new
 * buffer (*out, the caller frees). The buffer grows with the data actually read, doubling from
 * IO_CHUNK: a .nii is size-checked before this, but the length of a .nii.gz is known only by
 * reading it, and a few hundred bytes of corrupt .nii.gz can declare 2^31 float64 voxels
 * (16 GiB) that would otherwise be allocated before the first byte is read. */
static abl_status read_voxels(const char *path, int64_t offset, size_t nbytes, void **out,
                              abl_error *err)
{
    *out = NULL;
    znzFile fp = znzopen(path, "rb", nifti_is_gzfile(path));
    if (znz_isnull(fp)) return abl_fail(err, ABL_EIO, "%s: cannot open for reading", path);
    abl_status st = ABL_OK;
    size_t cap = nbytes < IO_CHUNK ? nbytes : IO_CHUNK, got = 0;
    char *buf = malloc(cap ? cap : 1);
    if (!buf) {
        st = abl_fail(err, ABL_ENOMEM, "%s: cannot allocate %zu bytes for the voxel data", path,
                      cap);
    } else if (znzseek(fp, (znz_off_t)offset, SEEK_SET) < 0) {
        st = abl_fail(err, ABL_EIO, "%s: truncated: the voxel data should start at byte %lld", path,
                      (long long)offset);
    } else {
        while (got < nbytes) {
            if (got == cap) {
                size_t grown = cap > nbytes / 2 ? nbytes : 2 * cap;
                char *nb = realloc(buf, grown);
                if (!nb) {
                    st = abl_fail(err, ABL_ENOMEM,
                                  "%s: cannot allocate %zu bytes for the voxel data", path,
                                  grown);
                    break;
                }
                buf = nb;
                cap = grown;
            }
            size_t want = cap - got < IO_CHUNK ? cap - got : IO_CHUNK;
            size_t r = znzread(buf + got, 1, want, fp);
            /* znzread returns gzread's -1 (as a size_t) on a decompression error: it was added
             * to got, which wrapped past the size check, and the rest of the buffer was used
             * unread (a .nii.gz with a bad CRC gave a label map a quarter garbage, exit 0: an
             * adversarial test, session 26) */
            if (r > want) {
                st = abl_fail(err, ABL_EIO,
                              "%s: corrupt compressed data: decompressing failed after %zu of "
                              "the %zu bytes of voxel data (gzip reports a damaged stream)",
                              path, got, nbytes);
                break;
            }
            got += r;
            if (r < want) break;
        }
        if (!st && got == nbytes && nifti_is_gzfile(path)) {
            /* the gzip trailer's CRC and length are checked only when the stream's end is
             * read: read on past the data (NIfTI has nothing after it) */
            char c;
            if (znzread(&c, 1, 1, fp) > 1)
                st = abl_fail(err, ABL_EIO,
                              "%s: corrupt compressed data: the gzip check of the file failed "
                              "after its %zu bytes of voxel data (CRC or length mismatch)",
                              path, nbytes);
        }
        if (!st && got < nbytes)
            st = abl_fail(err, ABL_EIO,
                          "%s: truncated or corrupt: the header promises %zu bytes of voxel data, "
                          "%zu could be read",
                          path, nbytes, got);
    }
    znzclose(fp);
    if (st) free(buf);
    else *out = buf;
    return st;
}

/* Convert voxel values to labels 0..255 (after scl_slope/scl_inter scaling when the header sets
 * it). Returns the index of the first value that is not an integer in 0..255 (its value in
 * *bad), or -1. A scaled value within 1e-6 (relative) of a whole number is that number: the
 * header stores slope and intercept as float32, so 30 x 0.1f is 3.0000000447 (QA, session 29);
 * float32's relative precision is 6e-8, and a label 0.5 away is still refused. */
#define TO_LABELS(T)                                                                               \
    do {                                                                                           \
        const T *p_ = buf;                                                                         \
        for (size_t f = 0; f < n; f++) {                                                           \
            double v = (double)p_[f];                                                              \
            if (scaled) {                                                                          \
                v = slope * v + inter;                                                             \
                const double r_ = nearbyint(v);                                                    \
                if (fabs(v - r_) <= 1e-6 * fmax(1.0, fabs(r_))) v = r_;                            \
            }                                                                                      \
            if (!(v >= 0 && v <= 255 && v == floor(v))) {                                          \
                *bad = v;                                                                          \
                return (ptrdiff_t)f;                                                               \
            }                                                                                      \
            out[f] = (uint8_t)v;                                                                   \
        }                                                                                          \
    } while (0)

/* The switch over every datatype a map may have, applying the element macro M(T) (which
 * returns from the enclosing function on a bad value); an unknown type is reported as voxel 0
 * with a NaN value (the datatype was checked before: not reached). */
#define FOR_EACH_DATATYPE(M)                                                                       \
    switch (datatype) {                                                                            \
    case DT_UINT8: M(uint8_t); break;                                                              \
    case DT_INT8: M(int8_t); break;                                                                \
    case DT_INT16: M(int16_t); break;                                                              \
    case DT_UINT16: M(uint16_t); break;                                                            \
    case DT_INT32: M(int32_t); break;                                                              \
    case DT_UINT32: M(uint32_t); break;                                                            \
    case DT_INT64: M(int64_t); break;                                                              \
    case DT_UINT64: M(uint64_t); break;                                                            \
    case DT_FLOAT32: M(float); break;                                                              \
    case DT_FLOAT64: M(double); break;                                                             \
    default: *bad = NAN; return 0;                                                                 \
    }

static ptrdiff_t to_labels(const void *buf, int datatype, size_t n, double slope, double inter,
                           uint8_t *out, double *bad)
{
    /* NIfTI-1: scaling applies when scl_slope != 0 (the library maps a non-finite slope to 0). */
    int scaled = slope != 0 && !(slope == 1 && inter == 0);
    FOR_EACH_DATATYPE(TO_LABELS)
    return -1;
}

/* Convert voxel values to doubles (after scl_slope/scl_inter scaling when the header sets it).
 * Returns the index of the first value that is not finite (its value in *bad), or -1. */
#define TO_DOUBLES(T)                                                                              \
    do {                                                                                           \
        const T *p_ = buf;                                                                         \
        for (size_t f = 0; f < n; f++) {                                                           \
            double v = (double)p_[f];                                                              \
            if (scaled) v = slope * v + inter; /* scalar map: not snapped to whole numbers */  \
            if (!isfinite(v)) {                                                                    \
                *bad = v;                                                                          \
                return (ptrdiff_t)f;                                                               \
            }                                                                                      \
            out[f] = v;                                                                            \
        }                                                                                          \
    } while (0)

static ptrdiff_t to_doubles(const void *buf, int datatype, size_t n, double slope, double inter,
                            double *out, double *bad)
{
    int scaled = slope != 0 && !(slope == 1 && inter == 0);
    FOR_EACH_DATATYPE(TO_DOUBLES)
    return -1;
}

static int label_datatype(int dt)
{
    switch (dt) {
    case DT_UINT8:
    case DT_INT8:
    case DT_INT16:
    case DT_UINT16:
    case DT_INT32:
    case DT_UINT32:
    case DT_INT64:
    case DT_UINT64:
    case DT_FLOAT32:
    case DT_FLOAT64:
        return 1;
    default:
        return 0;
    }
}

/* Spatial unit of the file -> mm (NIfTI-1 xyzt_units; "unknown" is taken as mm, as every
 * segmentation tool writes mm). */
static double mm_per_unit(int xyz_units)
{
    switch (xyz_units) {
    case NIFTI_UNITS_METER:
        return 1000.0;
    case NIFTI_UNITS_MICRON:
        return 1e-3;
    default:
        return 1.0;
    }
}

/* One 3-D volume in grid order: for a label map (labels != NULL) whole numbers 0..255 as
 * uint8, for a scalar map (values != NULL) every value finite, as double; dims, spacing and
 * origin are the grid's (re-indexed into RAS+, docs/NIFTI.md), geom the file's own (may be
 * NULL). On failure nothing is allocated. */
static abl_status read_volume(const char *path, uint8_t **labels, double **values, int dims[3],
                              double spacing_mm[3], double origin_mm[3], abl_nifti_geom *geom,
                              int *version, abl_error *err)
{
    const bool want_labels = labels != NULL;
    const char *what = want_labels ? "a label map" : "a scalar map";
    if (labels) *labels = NULL;
    if (values) *values = NULL;
    if (geom) memset(geom, 0, sizeof *geom);
    if (!path || !path[0]) return abl_fail(err, ABL_EINVAL, "NIfTI: empty file name");
    if (!nifti_suffix(path))
        return abl_fail(err, ABL_EINVAL,
                        "%s: not a NIfTI file name: %s must end in .nii or .nii.gz", path, what);

    /* Open it ourselves first: the library would only say "failed to find header file".
     * O_NONBLOCK: a FIFO must not block the open (it is refused below as not regular). */
    int fd = open(path, O_RDONLY | O_NONBLOCK);
    if (fd < 0) return abl_fail(err, ABL_EIO, "%s: cannot open (%s)", path, strerror(errno));
    struct stat sb;
    int fs = fstat(fd, &sb);
    close(fd);
    if (fs != 0 || !S_ISREG(sb.st_mode))
        return abl_fail(err, ABL_EIO, "%s: cannot open (not a regular file)", path);

    nifti_set_debug_level(0);
    raw_header h;
    abl_status st = read_raw_header(path, &h, err);
    if (st) return st;
    int64_t n[3] = {1, 1, 1};
    size_t nvox = 0;
    if ((st = check_dims(path, &h, what, n, &nvox, err))) return st;
    /* before nifti_image_read, which prints "bad datatype" for a code it does not know */
    static const char labels_types[] = "cannot hold labels; a label map needs an integer type "
                                       "(uint8, int16, ...) or a float type holding whole numbers "
                                       "0..255";
    static const char scalar_types[] = "cannot hold a scalar map; it needs an integer or "
                                       "float32/float64 type";
    if (!label_datatype(h.datatype))
        return abl_fail(err, ABL_EINVAL, "%s: datatype %s %s", path,
                        nifti_datatype_to_string(h.datatype),
                        want_labels ? labels_types : scalar_types);

    /* The image fields from the header alone: nifti_image_read would also read the extensions
     * (unused here), and prints when they are cut short in a .nii.gz. */
    nifti_image *nim = h.version == 2 ? nifti_convert_n2hdr2nim(h.file.n2, path)
                                      : nifti_convert_n1hdr2nim(h.file.n1, path);
    if (!nim)
        return abl_fail(err, ABL_EIO, "%s: the NIfTI header is inconsistent (corrupt file?)", path);
    void *raw = NULL;
    uint8_t *lab = NULL;
    double *val = NULL;
    void *grid = NULL;
    if (!label_datatype(nim->datatype)) {
        st = abl_fail(err, ABL_EINVAL, "%s: datatype %s %s", path,
                      nifti_datatype_to_string(nim->datatype),
                      want_labels ? labels_types : scalar_types);
        goto done;
    }
    /* a mask or label map (ablasim's own carry intent LABEL: nifti_write_u8) read as a scalar
     * map would silently be 0 and 1 degC (found by review, session 23: margin --nifti writes
     * PREFIX_zone.nii.gz beside PREFIX_T_max_C.nii.gz) */
    if (!want_labels && nim->intent_code == NIFTI_INTENT_LABEL) {
        st = abl_fail(err, ABL_EINVAL,
                      "%s: the file is marked as a label map or mask (intent_code LABEL), not a "
                      "map of values; for a temperature map give a scalar image (e.g. margin "
                      "--nifti's PREFIX_T_max_C.nii.gz)",
                      path);
        goto done;
    }
    size_t nbytes = nvox * (size_t)nim->nbyper;
    if (nifti_suffix(path) == 1 && (uintmax_t)sb.st_size < (uintmax_t)h.vox_offset + nbytes) {
        /* Checked before anything is allocated: a truncated file is the common failure. */
        st = abl_fail(err, ABL_EIO,
                      "%s: truncated: the header promises %zu bytes of voxel data from byte "
                      "%lld, the file has %lld bytes",
                      path, nbytes, (long long)h.vox_offset, (long long)sb.st_size);
        goto done;
    }

    /* Affine: qform when set, else sform, else NIfTI "method 1" (pixdim scaling, no origin). */
    double A[4][4];
    if (nim->qform_code > 0 || nim->sform_code > 0) {
        const nifti_dmat44 *M = nim->qform_code > 0 ? &nim->qto_xyz : &nim->sto_xyz;
        memcpy(A, M->m, sizeof A);
    } else {
        for (int r = 0; r < 4; r++)
            for (int c = 0; c < 4; c++)
                A[r][c] = r == c ? (r < 3 ? h.pixdim[r + 1] : 1) : 0;
    }
    double unit = mm_per_unit(nim->xyz_units);
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 4; c++)
            A[r][c] *= unit;
    axis_map m;
    double hf[3];
    int code = map_axes(A, n, &m, hf);
    if (code != AXES_OK) {
        st = axes_fail(err, code, path, A);
        goto done;
    }

    if ((st = read_voxels(path, h.vox_offset, nbytes, &raw, err))) goto done;
    const size_t esize = want_labels ? 1 : sizeof(double);
    if (want_labels)
        lab = malloc(nvox);
    else
        val = malloc(nvox * sizeof(double));
    if (!lab && !val) {
        st = abl_fail(err, ABL_ENOMEM, "%s: cannot allocate %zu bytes for the voxels", path,
                      nvox * esize);
        goto done;
    }
    if (nim->swapsize > 1 && nim->byteorder != nifti_short_order())
        nifti_swap_Nbytes((int64_t)nvox, nim->swapsize, raw);

    double bad = 0;
    ptrdiff_t b =
        want_labels
            ? to_labels(raw, nim->datatype, nvox, nim->scl_slope, nim->scl_inter, lab, &bad)
            : to_doubles(raw, nim->datatype, nvox, nim->scl_slope, nim->scl_inter, val, &bad);
    free(raw); /* converted: the raw block goes before the re-indexed copy is made */
    raw = NULL;
    if (b >= 0) {
        long long bi = b % n[0], bj = b / n[0] % n[1], bk = b / (n[0] * n[1]);
        char scaling[96] = "";
        if (nim->scl_slope != 0 && !(nim->scl_slope == 1 && nim->scl_inter == 0))
            snprintf(scaling, sizeof scaling, " (after scaling by scl_slope %g, scl_inter %g)",
                     nim->scl_slope, nim->scl_inter);
        if (want_labels)
            st = abl_fail(err, ABL_EINVAL,
                          "%s: voxel (%lld, %lld, %lld) holds %.9g%s; labels must be whole numbers "
                          "0..255 (datatype %s). Export the segmentation as a label map, not as "
                          "a scalar or probability image",
                          path, bi, bj, bk, bad, scaling, nifti_datatype_to_string(nim->datatype));
        else
        {
            double wp[3];
            for (int w = 0; w < 3; w++)
                wp[w] = A[w][0] * (double)bi + A[w][1] * (double)bj + A[w][2] * (double)bk +
                        A[w][3];
            st = abl_fail(err, ABL_EINVAL,
                          "%s: voxel (%lld, %lld, %lld) of the file, world (x, y, z) = (%.2f, "
                          "%.2f, %.2f) mm (RAS+), holds %g%s; a scalar map must hold finite "
                          "numbers",
                          path, bi, bj, bk, wp[0], wp[1], wp[2], bad, scaling);
        }
        goto done;
    }

    /* Grid in the world frame: index i,j,k along world x,y,z with positive spacing. */
    for (int a = 0; a < 3; a++) {
        dims[m.ax[a]] = (int)n[a];
        spacing_mm[m.ax[a]] = hf[a];
    }
    for (int w = 0; w < 3; w++) {
        /* World position of the file voxel that becomes grid voxel (0,0,0). */
        double x = A[w][3];
        for (int a = 0; a < 3; a++)
            if (m.sign[a] < 0) x += A[w][a] * (double)(n[a] - 1);
        origin_mm[w] = x;
        if (!(fabs(x) <= NIFTI_MAX_ORIGIN_MM && fabs(A[w][3]) <= NIFTI_MAX_ORIGIN_MM)) {
            st = abl_fail(err, ABL_EINVAL,
                          "%s: the world position of the grid along %c (%g mm, affine offset "
                          "%g mm) lies beyond %g mm; the file's affine or units are wrong",
                          path, "xyz"[w], x, A[w][3], NIFTI_MAX_ORIGIN_MM);
            goto done;
        }
    }
    void *file_order = want_labels ? (void *)lab : (void *)val;
    if (is_identity(&m)) {
        grid = file_order;
        if (want_labels)
            lab = NULL;
        else
            val = NULL;
    } else {
        grid = malloc(nvox * esize);
        if (!grid) {
            st = abl_fail(err, ABL_ENOMEM, "%s: cannot allocate %zu bytes for the voxels", path,
                          nvox * esize);
            goto done;
        }
        index_map im = make_index_map(&m, n);
        if (want_labels)
            REORDER(uint8_t, file_order, grid, im, n, 1);
        else
            REORDER(double, file_order, grid, im, n, 1);
    }
    if (geom) {
        for (int a = 0; a < 3; a++) {
            geom->dims[a] = (int)n[a];
            geom->spacing_mm[a] = hf[a];
        }
        memcpy(geom->affine, A, sizeof A);
        geom->affine[3][0] = geom->affine[3][1] = geom->affine[3][2] = 0;
        geom->affine[3][3] = 1;
    }
    if (labels)
        *labels = grid;
    else
        *values = grid;
    grid = NULL;
    if (version) *version = h.version;
done:
    free(raw);
    free(lab);
    free(val);
    free(grid);
    nifti_image_free(nim);
    if (st != ABL_OK && geom) memset(geom, 0, sizeof *geom);
    return st;
}

abl_status nifti_read_labels(const char *path, abl_mesh *mesh, abl_nifti_geom *geom, abl_error *err)
{
    memset(mesh, 0, sizeof *mesh);
    abl_status st = read_volume(path, &mesh->labels, NULL, mesh->dims, mesh->spacing_mm,
                                mesh->origin_mm, geom, NULL, err);
    if (st != ABL_OK) mesh_free(mesh);
    return st;
}

abl_status nifti_read_scalar(const char *path, abl_field_file *out, abl_nifti_geom *geom,
                             abl_error *err)
{
    memset(out, 0, sizeof *out);
    int version = 0;
    abl_status st = read_volume(path, NULL, &out->values, out->dims, out->spacing_mm,
                                out->origin_mm, geom, &version, err);
    if (st != ABL_OK) {
        memset(out, 0, sizeof *out);
        return st;
    }
    out->has_spacing = out->has_origin = true;
    /* NIfTI-1 (what Slicer and ITK write) stores the affine in float32, NIfTI-2 in double */
    out->geom_single = version == 1;
    return ABL_OK;
}

/* ---- writing ----------------------------------------------------------------------------- */


/* The file on disk must hold header + data: for .nii its size, for .nii.gz the gzip trailer's
 * uncompressed length (ISIZE, RFC 1952 section 2.3.1: length mod 2^32, little-endian). */
static int written_size_ok(const char *tmp, int gz, uint64_t expect)
{
    struct stat sb;
    if (stat(tmp, &sb) != 0) return 0;
    if (!gz) return (uint64_t)sb.st_size == expect;
    if (sb.st_size < 18) return 0;
    FILE *f = fopen(tmp, "rb");
    if (!f) return 0;
    unsigned char t[4];
    int ok = fseek(f, -4, SEEK_END) == 0 && fread(t, 1, 4, f) == 4;
    fclose(f);
    uint32_t isize =
        (uint32_t)t[0] | (uint32_t)t[1] << 8 | (uint32_t)t[2] << 16 | (uint32_t)t[3] << 24;
    return ok && isize == (uint32_t)expect;
}

/* pending NULL: the file is committed (renamed into place) here. Otherwise it is left complete
 * and durable under its temporary name, *pending owning it: the caller renames it
 * (atomic_rename) together with the other files of its set, or removes it (atomic_abort);
 * on failure it is removed here and *pending released. */
static abl_status write_image(const char *path, const abl_nifti_geom *geom, int datatype,
                              const void *data, const char *descrip, abl_atomic *pending,
                              abl_error *err)
{
    if (pending) *pending = (abl_atomic){.fd = -1};
    if (!path || !path[0]) return abl_fail(err, ABL_EINVAL, "NIfTI: empty output file name");
    int gz = nifti_suffix(path) == 2;
    if (!nifti_suffix(path))
        return abl_fail(err, ABL_EINVAL, "%s: a NIfTI output name must end in .nii or .nii.gz",
                        path);
    if (!geom || !data)
        return abl_fail(err, ABL_EINVAL, "%s: no geometry or no data to write", path);
    int64_t n[3];
    double total = 1;
    for (int a = 0; a < 3; a++) {
        n[a] = geom->dims[a];
        total *= (double)n[a];
        if (n[a] < 1)
            return abl_fail(err, ABL_EINVAL, "%s: grid size %d x %d x %d: every size must be >= 1",
                            path, geom->dims[0], geom->dims[1], geom->dims[2]);
    }
    if (total > (double)ABL_GRID_MAX_VOXELS)
        return abl_fail(err, ABL_EINVAL, "%s: grid %d x %d x %d is too large to write", path,
                        geom->dims[0], geom->dims[1], geom->dims[2]);
    axis_map m;
    double h[3];
    int code = map_axes(geom->affine, n, &m, h);
    if (code != AXES_OK) return axes_fail(err, code, path, geom->affine);
    for (int a = 0; a < 3; a++)
        /* 1e-6 relative: far above the float32 round-off of an affine read from NIfTI-1 (6e-8),
         * far below any real mismatch between spacing and affine. */
        if (!(fabs(geom->spacing_mm[a] - h[a]) <= 1e-6 * h[a]))
            return abl_fail(err, ABL_EINVAL,
                            "%s: inconsistent geometry: spacing_mm[%d] = %g but the affine's "
                            "voxel axis %d has length %g mm",
                            path, a, geom->spacing_mm[a], a, h[a]);
    if (geom->affine[3][0] != 0 || geom->affine[3][1] != 0 || geom->affine[3][2] != 0 ||
        geom->affine[3][3] != 1)
        return abl_fail(err, ABL_EINVAL, "%s: the affine's last row must be [0 0 0 1]", path);

    size_t nvox = (size_t)n[0] * (size_t)n[1] * (size_t)n[2];
    size_t elsize = datatype == DT_UINT8 ? 1 : 4;
    abl_status st = ABL_OK;
    nifti_image *nim = NULL;
    void *filebuf = NULL;
    const void *out = data;
    /* the fresh temporary (atomic_file.h) that znzopen then writes by name */
    abl_atomic at_local, *at = pending ? pending : &at_local;
    int e = atomic_reserve(at, path, gz ? ".tmp.nii.gz" : ".tmp.nii");
    if (e) {
        st = e == ENOMEM ? abl_fail(err, ABL_ENOMEM, "out of memory")
                         : abl_fail(err, ABL_EIO, "%s: cannot write (creating %s%s: %s)", path,
                                    path, gz ? ".tmp.nii.gz" : ".tmp.nii", strerror(e));
        atomic_abort(at);
        return st;
    }
    const char *tmp = at->tmp;
    if (!is_identity(&m)) {
        /* Back to the file's voxel order (see the top of this file). */
        filebuf = malloc(nvox * elsize);
        if (!filebuf) {
            st = abl_fail(err, ABL_ENOMEM, "%s: cannot allocate %zu bytes", path, nvox * elsize);
            goto done;
        }
        index_map im = make_index_map(&m, n);
        if (elsize == 1)
            REORDER(uint8_t, filebuf, data, im, n, 0);
        else
            REORDER(float, filebuf, data, im, n, 0);
        out = filebuf;
    }

    /* Display range: 0..max label for label maps; min..max of the finite values for maps. */
    double cmin = INFINITY, cmax = -INFINITY;
    if (datatype == DT_UINT8) {
        const uint8_t *u = data;
        cmin = 0;
        cmax = 0;
        for (size_t i = 0; i < nvox; i++)
            if (u[i] > cmax) cmax = u[i];
    } else {
        const float *f = data;
        for (size_t i = 0; i < nvox; i++)
            if (isfinite(f[i])) {
                if (f[i] < cmin) cmin = f[i];
                if (f[i] > cmax) cmax = f[i];
            }
        if (cmin > cmax) cmin = cmax = 0;
    }

    /* The library builds the header (all fields, quaternion from the affine); the bytes are
     * written here, because its writer ignores failed data writes and prints on errors. */
    nifti_set_debug_level(0);
    const int64_t d[8] = {3, n[0], n[1], n[2], 1, 1, 1, 1};
    nim = nifti_make_new_nim(d, datatype, 0);
    if (!nim) {
        st = abl_fail(err, ABL_ENOMEM, "%s: out of memory", path);
        goto done;
    }
    int v2 = n[0] > NIFTI1_MAX_DIM || n[1] > NIFTI1_MAX_DIM || n[2] > NIFTI1_MAX_DIM;
    nifti_dmat44 R;
    memcpy(R.m, geom->affine, sizeof R.m);
    double qb, qc, qd, qx, qy, qz, dx, dy, dz, qfac;
    nifti_dmat44_to_quatern(R, &qb, &qc, &qd, &qx, &qy, &qz, &dx, &dy, &dz, &qfac);
    nim->quatern_b = qb;
    nim->quatern_c = qc;
    nim->quatern_d = qd;
    nim->qoffset_x = qx;
    nim->qoffset_y = qy;
    nim->qoffset_z = qz;
    nim->qfac = qfac;
    nim->dx = nim->pixdim[1] = dx;
    nim->dy = nim->pixdim[2] = dy;
    nim->dz = nim->pixdim[3] = dz;
    nim->sto_xyz = R;
    nim->qform_code = NIFTI_XFORM_SCANNER_ANAT;
    nim->sform_code = NIFTI_XFORM_SCANNER_ANAT;
    nim->xyz_units = NIFTI_UNITS_MM;
    if (datatype == DT_UINT8) nim->intent_code = NIFTI_INTENT_LABEL;
    nim->cal_min = cmin;
    nim->cal_max = cmax;
    snprintf(nim->descrip, sizeof nim->descrip, "%s", descrip);
    /* Single file, no extensions: header, the 4-byte extender (all zero), data at byte 352
     * (NIfTI-1) or 544 (NIfTI-2), both multiples of 16 as the standards ask. */
    nim->nifti_type = v2 ? NIFTI_FTYPE_NIFTI2_1 : NIFTI_FTYPE_NIFTI1_1;
    nifti_1_header h1;
    nifti_2_header h2;
    const void *hdr = v2 ? (const void *)&h2 : (const void *)&h1;
    size_t hsize = v2 ? sizeof h2 : sizeof h1;
    nim->iname_offset = (int64_t)hsize + 4;
    if (v2 ? nifti_convert_nim2n2hdr(nim, &h2) : nifti_convert_nim2n1hdr(nim, &h1)) {
        st = abl_fail(err, ABL_EINTERNAL, "%s: cannot build the NIfTI header", path);
        goto done;
    }
    if (v2) memcpy(h2.magic, "n+2\0\r\n\032\n", 8); /* the full 8-byte NIfTI-2 magic */

    /* Level 1 for gzip: masks and smooth maps compress well at any level, and level 1 is
     * several times faster. */
    errno = 0;
    znzFile fp = znzopen(tmp, gz ? "wb1" : "wb", gz);
    if (znz_isnull(fp)) {
        st = abl_fail(err, ABL_EIO, "%s: cannot write (creating %s: %s)", path, tmp,
                      errno ? strerror(errno) : "unknown error");
        goto done;
    }
    static const char extender[4] = {0, 0, 0, 0};
    int ok = znzwrite(hdr, 1, hsize, fp) == hsize && znzwrite(extender, 1, 4, fp) == 4;
    size_t nbytes = nvox * elsize;
    for (size_t done_b = 0; ok && done_b < nbytes;) {
        size_t len = nbytes - done_b < IO_CHUNK ? nbytes - done_b : IO_CHUNK;
        ok = znzwrite((const char *)out + done_b, 1, len, fp) == len;
        done_b += len;
    }
    int write_errno = errno;
    /* Closing flushes and, for gzip, finishes the stream: its result counts too. */
    if (znzclose(fp) != 0) ok = 0;
    if (!ok || !written_size_ok(tmp, gz, (uint64_t)hsize + 4 + nbytes)) {
        st = abl_fail(err, ABL_EIO, "%s: writing %s failed (%s)", path, tmp,
                      write_errno ? strerror(write_errno) : "disk full?");
        goto done;
    }
    if ((e = atomic_sync(at))) {
        st = abl_fail(err, ABL_EIO, "%s: syncing %s failed (%s)", path, tmp, strerror(e));
        goto done;
    }
    if (!pending && (e = atomic_commit(at))) {
        st = abl_fail(err, ABL_EIO, "%s: cannot rename %s into place (%s)", path, tmp,
                      strerror(e));
        goto done;
    }
done:
    if (st || !pending) atomic_abort(at); /* removes the temporary unless it was renamed */
    free(filebuf);
    nifti_image_free(nim);
    return st;
}

abl_status nifti_write_u8(const char *path, const abl_nifti_geom *geom, const uint8_t *data,
                          abl_error *err)
{
    return write_image(path, geom, DT_UINT8, data, "ablasim " ABLASIM_VERSION " label map", NULL,
                       err);
}

abl_status nifti_write_u8_pending(const char *path, const abl_nifti_geom *geom,
                                  const uint8_t *data, abl_atomic *pending, abl_error *err)
{
    return write_image(path, geom, DT_UINT8, data, "ablasim " ABLASIM_VERSION " label map",
                       pending, err);
}

abl_status nifti_write_f32(const char *path, const abl_nifti_geom *geom, const float *data,
                           const char *description, abl_error *err)
{
    return write_image(path, geom, DT_FLOAT32, data,
                       description ? description : "ablasim " ABLASIM_VERSION " map", NULL, err);
}

abl_status nifti_write_f32_pending(const char *path, const abl_nifti_geom *geom,
                                   const float *data, const char *description,
                                   abl_atomic *pending, abl_error *err)
{
    return write_image(path, geom, DT_FLOAT32, data,
                       description ? description : "ablasim " ABLASIM_VERSION " map", pending,
                       err);
}

void nifti_geom_from_grid(abl_nifti_geom *geom, const int dims[3], const double spacing_mm[3],
                          const double origin_mm[3])
{
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++)
            geom->affine[r][c] = r == c ? (r < 3 ? spacing_mm[r] : 1) : 0;
    for (int d = 0; d < 3; d++) {
        geom->dims[d] = dims[d];
        geom->spacing_mm[d] = spacing_mm[d];
        geom->affine[d][3] = origin_mm[d];
    }
}
