/* edt.c - exact Euclidean distance transform on anisotropic voxel grids (see margin.h).
 *
 * Felzenszwalb & Huttenlocher, "Distance transforms of sampled functions", Theory of
 * Computing 8:415-428 (2012). The squared Euclidean distance separates,
 *   D(i,j,k) = min_k' [ hz^2 (k - k')^2 + min_j' [ hy^2 (j - j')^2 + min_i' [ hx^2 (i - i')^2
 *              + F(i',j',k') ] ] ],   F = 0 on targets, +inf elsewhere,
 * so three 1-D passes give the exact result. Pass x on the binary input is the degenerate
 * case of the lower envelope (all parabolas of height 0: the nearest target in the row), done
 * by a forward and a backward scan. Passes y and z compute the lower envelope of the
 * parabolas w^2 (p - q)^2 + f(q) (edt_line_sq), O(n) per line.
 *
 * Memory: pass x streams the mask and writes D once (9 B/voxel); passes y and z gather
 * BLOCK adjacent x-columns at once into a per-thread buffer (whole cache lines, one page
 * touch per BLOCK lines even for the z pass whose line stride is nx*ny*8 bytes), transform
 * them and scatter back (16 B/voxel each). Every line is independent and computed by the
 * same code whatever the thread, so results are bitwise identical for any thread count.
 */
#include <math.h>
#include <omp.h>
#include <stdlib.h>

#include "ablasim/grid.h"
#include "ablasim/margin.h"

/* Columns gathered together in the y and z passes: 32 doubles = 4 cache lines per row. */
#define BLOCK 32

void edt_line_sq(const double *f, double *d, int n, double w2, bool outside_zero, int *v,
                 double *fv, double *z)
{
    /* Lower envelope of the parabolas y = w2 (x - q)^2 + f(q) over the sites q with a finite
     * f(q). v[k]: site of the k-th parabola of the envelope, fv[k] its height, z[k]..z[k+1]
     * the interval where it is lowest. a(q) = f(q) + w2 q^2 makes the intersection of the
     * parabolas of q and v: s = (a(q) - a(v)) / (2 w2 (q - v)). */
    int k = -1;
    const int q0 = outside_zero ? -1 : 0, q1 = outside_zero ? n : n - 1;
    double av_k = 0; /* a(v[k]) */
    for (int q = q0; q <= q1; q++) {
        const double fq = (q < 0 || q >= n) ? 0.0 : f[q];
        if (!(fq < INFINITY)) continue;
        const double aq = fq + w2 * (double)q * (double)q;
        if (k < 0) {
            k = 0;
            v[0] = q;
            fv[0] = fq;
            av_k = aq;
            z[0] = -INFINITY;
            z[1] = INFINITY;
            continue;
        }
        double s;
        for (;;) {
            s = (aq - av_k) / (2.0 * w2 * (double)(q - v[k]));
            /* z[0] = -inf: the first parabola is never removed, so k stays >= 0. */
            if (s > z[k]) break;
            k--;
            av_k = fv[k] + w2 * (double)v[k] * (double)v[k];
        }
        k++;
        v[k] = q;
        fv[k] = fq;
        av_k = aq;
        z[k] = s;
        z[k + 1] = INFINITY;
    }
    if (k < 0) {
        for (int p = 0; p < n; p++)
            d[p] = INFINITY;
        return;
    }
    /* Read the envelope; f is no longer needed (heights are in fv), so d may alias f. */
    int j = 0;
    for (int p = 0; p < n; p++) {
        while (z[j + 1] < (double)p)
            j++;
        const double dp = (double)(p - v[j]);
        d[p] = w2 * dp * dp + fv[j];
    }
}

/* Pass x: squared distance to the nearest target in the row (x spacing hx). */
static void pass_x(const int dims[3], double hx, const uint8_t *mask, unsigned flags, double *out)
{
    const int nx = dims[0];
    const size_t nrows = (size_t)dims[1] * (size_t)dims[2];
    const bool to_nonzero = flags & ABL_EDT_TO_NONZERO;
    const bool outside = flags & ABL_EDT_OUTSIDE_TARGET;
    const double w2 = hx * hx;
    /* "no target seen": a distance larger than any in the grid, mapped to +inf below. */
    const long none = 4L * nx + 8;
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < nrows; r++) {
        const uint8_t *m = mask + r * (size_t)nx;
        double *o = out + r * (size_t)nx;
        long last = outside ? -1 : -none; /* index of the last target to the left */
        for (int i = 0; i < nx; i++) {
            if ((m[i] != 0) == to_nonzero) last = i;
            o[i] = (double)(i - last);
        }
        last = outside ? nx : nx + none; /* the nearest target to the right */
        for (int i = nx - 1; i >= 0; i--) {
            if ((m[i] != 0) == to_nonzero) last = i;
            double dl = o[i], dr = (double)(last - i);
            double dm = dl < dr ? dl : dr;
            o[i] = dm >= (double)none ? INFINITY : w2 * dm * dm;
        }
    }
}

/* Passes y and z: the lower envelope along lines of length len and stride stride (elements).
 * Line starts: outer * ostride + i for outer in [0, nouter), i in [0, nx). With take_sqrt the
 * scatter writes distances instead of squared distances. Returns 0, or -1 when a thread could
 * not allocate its scratch (out is then partly transformed). */
static int pass_lines(double *D, int nx, int len, size_t stride, int nouter, size_t ostride,
                      double w2, bool outside, bool take_sqrt)
{
    const int nblk = (nx + BLOCK - 1) / BLOCK;
    const long ntask = (long)nouter * nblk;
    int failed = 0;
#pragma omp parallel
    {
        double *buf = malloc(sizeof(double) * (size_t)BLOCK * (size_t)len);
        double *fv = malloc(sizeof(double) * ((size_t)len + 2));
        double *z = malloc(sizeof(double) * ((size_t)len + 3));
        int *v = malloc(sizeof(int) * ((size_t)len + 2));
        const int ok = buf && fv && z && v;
        if (!ok) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(static)
        for (long t = 0; t < ntask; t++) {
            if (!ok) continue;
            const int outer = (int)(t / nblk), i0 = (int)(t % nblk) * BLOCK;
            const int bw = nx - i0 < BLOCK ? nx - i0 : BLOCK;
            double *base = D + (size_t)outer * ostride + (size_t)i0;
            for (int p = 0; p < len; p++) {
                const double *row = base + (size_t)p * stride;
                for (int b = 0; b < bw; b++)
                    buf[(size_t)b * len + p] = row[b];
            }
            for (int b = 0; b < bw; b++) {
                double *line = buf + (size_t)b * len;
                edt_line_sq(line, line, len, w2, outside, v, fv, z);
            }
            for (int p = 0; p < len; p++) {
                double *row = base + (size_t)p * stride;
                if (take_sqrt)
                    for (int b = 0; b < bw; b++)
                        row[b] = sqrt(buf[(size_t)b * len + p]);
                else
                    for (int b = 0; b < bw; b++)
                        row[b] = buf[(size_t)b * len + p];
            }
        }
        free(buf);
        free(fv);
        free(z);
        free(v);
    }
    return failed ? -1 : 0;
}

abl_status edt_compute(const int dims[3], const double spacing_mm[3], const uint8_t *mask,
                       unsigned flags, double *out, abl_error *err)
{
    size_t n = 1;
    for (int a = 0; a < 3; a++) {
        if (dims[a] < 1 || dims[a] > (1 << 24))
            return abl_fail(err, ABL_EINVAL,
                            "distance transform: grid %d x %d x %d: each "
                            "dimension must be between 1 and %d",
                            dims[0], dims[1], dims[2], 1 << 24);
        n *= (size_t)dims[a];
        if (n > ABL_GRID_MAX_VOXELS)
            return abl_fail(err, ABL_EINVAL,
                            "distance transform: grid %d x %d x %d exceeds "
                            "%zu voxels",
                            dims[0], dims[1], dims[2], (size_t)ABL_GRID_MAX_VOXELS);
        if (!isfinite(spacing_mm[a]) || !(spacing_mm[a] > 0))
            return abl_fail(err, ABL_EINVAL,
                            "distance transform: spacing %g x %g x %g mm: each "
                            "must be finite and > 0",
                            spacing_mm[0], spacing_mm[1], spacing_mm[2]);
    }
    if (!mask || !out) return abl_fail(err, ABL_EINVAL, "distance transform: no data");
    const int nx = dims[0], ny = dims[1], nz = dims[2];
    const bool outside = flags & ABL_EDT_OUTSIDE_TARGET;
    const bool take_sqrt = !(flags & ABL_EDT_SQUARED);
    const size_t sz = (size_t)nx * (size_t)ny;

    pass_x(dims, spacing_mm[0], mask, flags, out);
    /* y: lines of ny at stride nx, one group per z-plane; z: lines of nz at stride nx*ny,
     * one group per y-row. */
    if (pass_lines(out, nx, ny, (size_t)nx, nz, sz, spacing_mm[1] * spacing_mm[1], outside, false) <
            0 ||
        pass_lines(out, nx, nz, sz, ny, (size_t)nx, spacing_mm[2] * spacing_mm[2], outside,
                   take_sqrt) < 0)
        return abl_fail(err, ABL_ENOMEM, "distance transform: no memory for the line buffers");
    return ABL_OK;
}
