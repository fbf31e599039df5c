/* spectral.c - batched FFTW r2r transforms on the voxel grid (see spectral.h). */
#include "ablasim/spectral.h"

#include <fftw3.h>
#include <math.h>
#include <stdlib.h>

#include "ablasim/grid.h" /* abl_bc, FACE_*: the grid's, not the scenario's */

static const double PI = 3.14159265358979323846;

typedef struct {
    fftw_r2r_kind fwd, inv;
    int n;
    double *eig; /* eigenvalues of -L_1D along this axis [1/m^2], transform order */
} axis_plan;

struct abl_spectral {
    const abl_grid *g;
    abl_grid grid; /* copy: the caller's grid may move */
    axis_plan ax[3];
    fftw_plan fxy, ixy; /* one z-plane as a 2-D (y, x) transform */
    fftw_plan fz, iz;   /* z-lines of one y-row band: nx lines, stride nx*ny */
    double norm;        /* 1 / prod(2 n_d) */
    double norm_xy;     /* 1 / (2 nx 2 ny) */
    bool z_fixed[2];    /* z faces: the end rows of the tridiagonal z operator */
};

static void axis_setup(axis_plan *a, int n, double h, bool fixed_lo, bool fixed_hi)
{
    a->n = n;
    double shift;
    if (!fixed_lo && !fixed_hi) {
        a->fwd = FFTW_REDFT10;
        a->inv = FFTW_REDFT01;
        shift = 0.0;
    } else if (fixed_lo && fixed_hi) {
        a->fwd = FFTW_RODFT10;
        a->inv = FFTW_RODFT01;
        shift = 1.0;
    } else if (fixed_lo) {
        a->fwd = a->inv = FFTW_RODFT11;
        shift = 0.5;
    } else {
        a->fwd = a->inv = FFTW_REDFT11;
        shift = 0.5;
    }
    for (int m = 0; m < n; m++)
        a->eig[m] = (2.0 - 2.0 * cos(PI * (m + shift) / n)) / (h * h);
}

void spectral_destroy(abl_spectral *sp)
{
    if (!sp) return;
    fftw_plan *plans[4] = {&sp->fxy, &sp->ixy, &sp->fz, &sp->iz};
    for (int i = 0; i < 4; i++)
        if (*plans[i]) fftw_destroy_plan(*plans[i]);
    for (int d = 0; d < 3; d++) free(sp->ax[d].eig);
    free(sp);
}

abl_status spectral_create(const abl_grid *g, const bool face_fixed[6], abl_spectral **out,
                           abl_error *err)
{
    *out = NULL;
    abl_spectral *sp = calloc(1, sizeof *sp);
    if (!sp) return abl_fail(err, ABL_ENOMEM, "out of memory (spectral plan)");
    sp->grid = *g;
    sp->g = &sp->grid;
    const int n[3] = {g->nx, g->ny, g->nz};
    for (int d = 0; d < 3; d++) {
        sp->ax[d].eig = malloc((size_t)n[d] * sizeof(double));
        if (!sp->ax[d].eig) {
            spectral_destroy(sp);
            return abl_fail(err, ABL_ENOMEM, "out of memory (spectral plan)");
        }
        axis_setup(&sp->ax[d], n[d], g->h_m[d], face_fixed[2 * d], face_fixed[2 * d + 1]);
    }
    sp->norm = 1.0 / (2.0 * n[0] * 2.0 * n[1] * 2.0 * n[2]);
    sp->norm_xy = 1.0 / (2.0 * n[0] * 2.0 * n[1]);
    sp->z_fixed[0] = face_fixed[FACE_ZMIN];
    sp->z_fixed[1] = face_fixed[FACE_ZMAX];

    /* Plans are made once on a scratch array. FFTW_ESTIMATE, not FFTW_MEASURE: MEASURE picks
     * algorithms by timing them, so two runs of the same input could round differently; it
     * is 1.5-2x faster at 128^3 here, but reproducible fields matter more. FFTW_UNALIGNED lets
     * the same plan run on any line start (fftw_execute_r2r). */
    double *buf = fftw_malloc(g->n * sizeof(double));
    if (!buf) {
        spectral_destroy(sp);
        return abl_fail(err, ABL_ENOMEM, "out of memory (spectral plan scratch)");
    }
    const unsigned flags = FFTW_ESTIMATE | FFTW_UNALIGNED;
    const int nx = g->nx, ny = g->ny, nz = g->nz, sz = (int)g->sz;
    /* fftw_plan_many_r2r(rank, n, howmany, in, inembed, istride, idist, out, ...). A z-plane
     * goes through one 2-D plan (rank 2, dims slowest first: y, x): measured 1.7x faster than
     * its x-lines and y-lines as two batches of 1-D plans (60 x 60 planes, 2 threads). */
    const int nxy[2] = {ny, nx};
    const fftw_r2r_kind kf[2] = {sp->ax[1].fwd, sp->ax[0].fwd}, ki[2] = {sp->ax[1].inv, sp->ax[0].inv};
    sp->fxy = fftw_plan_many_r2r(2, nxy, 1, buf, NULL, 1, sz, buf, NULL, 1, sz, kf, flags);
    sp->ixy = fftw_plan_many_r2r(2, nxy, 1, buf, NULL, 1, sz, buf, NULL, 1, sz, ki, flags);
    sp->fz = fftw_plan_many_r2r(1, &nz, nx, buf, NULL, sz, 1, buf, NULL, sz, 1, &sp->ax[2].fwd, flags);
    sp->iz = fftw_plan_many_r2r(1, &nz, nx, buf, NULL, sz, 1, buf, NULL, sz, 1, &sp->ax[2].inv, flags);
    fftw_free(buf);
    if (!sp->fxy || !sp->ixy || !sp->fz || !sp->iz) {
        spectral_destroy(sp);
        return abl_fail(err, ABL_EINTERNAL, "FFTW could not plan the %d x %d x %d transforms", nx,
                        ny, nz);
    }
    *out = sp;
    return ABL_OK;
}

/* Every z-plane through the same single-threaded 2-D plan. */
static void transform_xy(const abl_spectral *sp, double *x, fftw_plan pxy)
{
    const abl_grid *g = sp->g;
#pragma omp parallel for schedule(static)
    for (int k = 0; k < g->nz; k++)
        fftw_execute_r2r(pxy, x + (size_t)k * g->sz, x + (size_t)k * g->sz);
}

/* The planes, then the z-lines; each batch goes through the same single-threaded plan. */
static void transform(const abl_spectral *sp, double *x, fftw_plan pxy, fftw_plan pz)
{
    const abl_grid *g = sp->g;
    transform_xy(sp, x, pxy);
#pragma omp parallel for schedule(static)
    for (int j = 0; j < g->ny; j++) fftw_execute_r2r(pz, x + (size_t)j * g->sy, x + (size_t)j * g->sy);
}

void spectral_forward(const abl_spectral *sp, double *x)
{
    transform(sp, x, sp->fxy, sp->fz);
}

void spectral_inverse(const abl_spectral *sp, double *x)
{
    transform(sp, x, sp->ixy, sp->iz);
    const double s = sp->norm;
    const size_t n = sp->g->n;
#pragma omp parallel for schedule(static)
    for (size_t c = 0; c < n; c++) x[c] *= s;
}

double spectral_eigenvalue(const abl_spectral *sp, int i, int j, int k)
{
    return sp->ax[0].eig[i] + sp->ax[1].eig[j] + sp->ax[2].eig[k];
}

/* (mu_ij I - c L_z) u = f along every z-line of the (x, y)-transformed field, for all modes of
 * row j at once (vectorised over i): the Thomas algorithm (Golub & Van Loan, "Matrix
 * Computations", 4th ed., alg. 4.3.6). L_z is the 1-D cell-centred Laplacian with the z faces'
 * walls (a fixed wall adds 2/h^2 to its end row, the ghost value being the mirror with the sign
 * flipped; an insulated one nothing), the operator the z transform diagonalises. The matrix is
 * diagonally dominant (mu >= 0), so elimination without pivoting is stable; it is singular
 * only for mu = 0 with both z faces insulated, which spectral_solve refuses before. cp holds
 * the nx * nz elimination factors. */
static void tridiagonal_z(const abl_spectral *sp, double a, double c, int j, double *x, double *cp)
{
    const abl_grid *g = sp->g;
    const int nx = g->nx, nz = g->nz;
    const double ihz2 = 1.0 / (g->h_m[2] * g->h_m[2]), e = -c * ihz2;
    const double *ex = sp->ax[0].eig, mu_y = a + c * sp->ax[1].eig[j];
    for (int k = 0; k < nz; k++) {
        double *row = x + (size_t)k * g->sz + (size_t)j * g->sy, *f = cp + (size_t)k * nx;
        const double nb = (k > 0) + (k < nz - 1) + (k == 0 && sp->z_fixed[0] ? 2.0 : 0.0) +
                          (k == nz - 1 && sp->z_fixed[1] ? 2.0 : 0.0);
        const double dz = mu_y + c * nb * ihz2;
        if (k == 0) {
#pragma omp simd
            for (int i = 0; i < nx; i++) {
                const double inv = 1.0 / (dz + c * ex[i]);
                f[i] = e * inv;
                row[i] *= inv;
            }
        } else {
            const double *fp = f - nx, *rp = row - g->sz;
#pragma omp simd
            for (int i = 0; i < nx; i++) {
                const double inv = 1.0 / (dz + c * ex[i] - e * fp[i]);
                f[i] = e * inv;
                row[i] = (row[i] - e * rp[i]) * inv;
            }
        }
    }
    for (int k = nz - 2; k >= 0; k--) {
        double *row = x + (size_t)k * g->sz + (size_t)j * g->sy;
        const double *f = cp + (size_t)k * nx, *rn = row + g->sz;
#pragma omp simd
        for (int i = 0; i < nx; i++) row[i] -= f[i] * rn[i];
    }
}

/* Transforms in x and y only, a tridiagonal solve along z (Hockney's FACR(0) idea, Hockney
 * 1965, J. ACM 12:95): the same operator as the three transforms, inverted in about half the
 * time (the z transforms were a third of the work and the z solve is two streaming passes). */
abl_status spectral_solve(const abl_spectral *sp, double a, double c, const double *r, double *x,
                          abl_error *err)
{
    return spectral_solve_scaled(sp, a, c, NULL, r, x, err);
}

abl_status spectral_solve_scaled(const abl_spectral *sp, double a, double c, const double *d,
                                 const double *r, double *x, abl_error *err)
{
    const abl_grid *g = sp->g;
    if (!(a >= 0 && c >= 0)) return abl_fail(err, ABL_EINVAL, "spectral_solve: a, c must be >= 0");
    if (a == 0 && spectral_eigenvalue(sp, 0, 0, 0) == 0)
        return abl_fail(err, ABL_EINVAL,
                        "spectral_solve: singular (all faces insulated and no diagonal term)");
    if (d)
#pragma omp parallel for schedule(static)
        for (size_t q = 0; q < g->n; q++) x[q] = d[q] * r[q];
    else if (x != r)
#pragma omp parallel for schedule(static)
        for (size_t q = 0; q < g->n; q++) x[q] = r[q];
    transform_xy(sp, x, sp->fxy);
    bool nomem = false;
#pragma omp parallel
    {
        double *cp = malloc((size_t)g->nx * (size_t)g->nz * sizeof(double));
        if (!cp) {
#pragma omp atomic write
            nomem = true;
        }
#pragma omp for schedule(static)
        for (int j = 0; j < g->ny; j++)
            if (cp) tridiagonal_z(sp, a, c, j, x, cp);
        free(cp);
    }
    if (nomem) return abl_fail(err, ABL_ENOMEM, "out of memory (spectral solve, %d x %d scratch)", g->nx, g->nz);
    transform_xy(sp, x, sp->ixy);
    const double s = sp->norm_xy;
    if (d)
#pragma omp parallel for schedule(static)
        for (size_t q = 0; q < g->n; q++) x[q] *= s * d[q];
    else
#pragma omp parallel for schedule(static)
        for (size_t q = 0; q < g->n; q++) x[q] *= s;
    return ABL_OK;
}

void spectral_evolve(const abl_spectral *sp, double alpha, double p, const double *b, double t_s,
                     double *T, double *work)
{
    const abl_grid *g = sp->g;
#pragma omp parallel for schedule(static)
    for (size_t q = 0; q < g->n; q++) work[q] = b[q];
    spectral_forward(sp, T);
    spectral_forward(sp, work);
    const double *ex = sp->ax[0].eig, *ey = sp->ax[1].eig, *ez = sp->ax[2].eig;
#pragma omp parallel for collapse(2) schedule(static)
    for (int k = 0; k < g->nz; k++)
        for (int j = 0; j < g->ny; j++) {
            const size_t row = (size_t)k * g->sz + (size_t)j * g->sy;
            for (int i = 0; i < g->nx; i++) {
                /* dT^/dt = -lam T^ + b^: T^(t) = T^eq + exp(-lam t) (T^(0) - T^eq) */
                const double lam = alpha * (ex[i] + ey[j] + ez[k]) + p;
                const double bh = work[row + (size_t)i], th = T[row + (size_t)i];
                if (lam > 0) {
                    const double eq = bh / lam;
                    T[row + (size_t)i] = eq + exp(-lam * t_s) * (th - eq);
                } else {
                    T[row + (size_t)i] = th + bh * t_s; /* zero mode of an insulated box */
                }
            }
        }
    spectral_inverse(sp, T);
}
