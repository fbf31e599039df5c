/* multigrid.c - aggregation multigrid V-cycle for face-conductance operators (see multigrid.h
 * for the method, the references and the determinism argument). */
#include "ablasim/multigrid.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

enum { MG_MAX_LEVELS = 24 };
/* Coarsest level: at most this many voxels, solved by dense Cholesky (200^3/3 flops per setup,
 * 200^2 per application: negligible against the fine level). */
static const size_t MG_COARSEST_N = 200;
/* Below this many voxels a level runs serially (an OpenMP fork costs more than the work). */
static const size_t MG_PARALLEL_N = 16384;

typedef struct {
    int nx, ny, nz;
    size_t sy, sz, n;
    /* face conductances between free voxels (0 where either side is held, and at the last
     * layer) and 1/d, d the diagonal (0 at held voxels: the smoother then leaves them at 0), in
     * single precision: every kernel streams them, and a preconditioner built on the operator
     * rounded to 6e-8 is as good (measured on 60x60x80, 2 threads: 1.11 -> 1.03 ms per cycle,
     * the same iterations). It stays a fixed symmetric operator: every kernel uses the same
     * rounded coefficients, and the residual's diagonal is 1/invd. ext: the part of d not to
     * free neighbours (grounds, faces to held voxels), for the setup. */
    float *ax, *ay, *az, *invd;
    double *ext;
    uint8_t *held;
    double *b, *x; /* coarse levels: right side and correction (level 0: the caller's r, z) */
} mg_level;

struct abl_mg {
    const abl_grid *g;
    int nlev;
    mg_level lev[MG_MAX_LEVELS];
    int sweeps;
    double alpha;
    double *zrow; /* fine nx zeros: values of missing neighbour rows */
    float *zrowf; /* and their conductances */
    uint8_t *zlab; /* fine nx labels 0: missing neighbour rows, or nothing held */
    double *rbuf; /* a residual row of nx values per coarse plane of level 1 */
    /* coarsest level: m free voxels, their indices, the Cholesky factor L (m x m, row-major,
     * lower triangle) and a work vector */
    int m;
    size_t *free_idx;
    double *L, *y;
};

static void *zalloc(size_t bytes)
{
    void *p = NULL;
    if (bytes == 0) bytes = 64;
    bytes = (bytes + 63) / 64 * 64;
    if (posix_memalign(&p, 64, bytes)) return NULL;
    memset(p, 0, bytes);
    return p;
}

void mg_destroy(abl_mg *mg)
{
    if (!mg) return;
    for (int l = 0; l < mg->nlev; l++) {
        mg_level *v = &mg->lev[l];
        free(v->ax), free(v->ay), free(v->az), free(v->invd), free(v->ext);
        free(v->held);
        if (l > 0) free(v->b), free(v->x);
    }
    free(mg->zrow);
    free(mg->zrowf);
    free(mg->zlab);
    free(mg->rbuf);
    free(mg->free_idx);
    free(mg->L);
    free(mg->y);
    free(mg);
}

abl_status mg_create(const abl_grid *g, abl_mg **out, abl_error *err)
{
    *out = NULL;
    abl_mg *mg = calloc(1, sizeof *mg);
    if (!mg) return abl_fail(err, ABL_ENOMEM, "out of memory (multigrid)");
    mg->g = g;
    mg->sweeps = 1;
    mg->alpha = 1.8;
    int nx = g->nx, ny = g->ny, nz = g->nz;
    bool ok = true;
    for (int l = 0; l < MG_MAX_LEVELS; l++) {
        mg_level *v = &mg->lev[l];
        v->nx = nx, v->ny = ny, v->nz = nz;
        v->sy = (size_t)nx, v->sz = (size_t)nx * (size_t)ny, v->n = v->sz * (size_t)nz;
        const size_t bytes = v->n * sizeof(double), fbytes = v->n * sizeof(float);
        v->ax = zalloc(fbytes), v->ay = zalloc(fbytes), v->az = zalloc(fbytes);
        v->invd = zalloc(fbytes), v->ext = zalloc(bytes);
        v->held = zalloc(v->n);
        if (l > 0) v->b = zalloc(bytes), v->x = zalloc(bytes);
        mg->nlev = l + 1;
        ok = v->ax && v->ay && v->az && v->invd && v->ext && v->held &&
             (l == 0 || (v->b && v->x));
        if (!ok || v->n <= MG_COARSEST_N) break;
        nx = (nx + 1) / 2, ny = (ny + 1) / 2, nz = (nz + 1) / 2;
    }
    const size_t nc = mg->lev[mg->nlev - 1].n;
    mg->zrow = zalloc((size_t)g->nx * sizeof(double));
    mg->zrowf = zalloc((size_t)g->nx * sizeof(float));
    mg->zlab = zalloc((size_t)g->nx);
    mg->rbuf = zalloc((size_t)g->nx * (size_t)g->nz * sizeof(double));
    mg->free_idx = zalloc(nc * sizeof(size_t));
    mg->L = zalloc(nc * nc * sizeof(double));
    mg->y = zalloc(nc * sizeof(double));
    if (!ok || !mg->zrow || !mg->zrowf || !mg->zlab || !mg->rbuf || !mg->free_idx || !mg->L || !mg->y) {
        mg_destroy(mg);
        return abl_fail(err, ABL_ENOMEM, "out of memory for the multigrid levels (%zu voxels)",
                        g->n);
    }
    *out = mg;
    return ABL_OK;
}

/* Why alpha <= 2: with an exact coarse solve the two-grid error propagator is
 * S^T (I - alpha Q) S, Q the K-orthogonal projector onto the range of P; I - alpha Q has the
 * eigenvalues 1 and 1 - alpha, so its K-norm is at most 1 for 0 < alpha <= 2 and, with a
 * convergent smoother S, B is positive definite. Recursively this needs alpha B_c <= 2 K_c^-1,
 * which held in every case tried (tests/unit/test_pcg.c checks x.Bx > 0). Defaults measured on
 * 60x60x80 with a line electrode (warm-started CG iterations, smooth sigma / contrast 1e4):
 * one sweep, alpha 1.0: 5.5 / 6.8; 1.6: 3.2 / 4.8; 1.8: 3.1 / 4.5; 1.9: 3.3 / 4.4; 2.0:
 * 3.6 / 5.0. Two sweeps, alpha 1.9: 1.9 / 1.9, but a cycle costs ~1.6 times as much, and the
 * potential phase of rfa_liver_cooled took 5.4 s against 4.3-4.7 s with one sweep. */
void mg_set_cycle(abl_mg *mg, int sweeps, double alpha)
{
    mg->sweeps = sweeps < 1 ? 1 : sweeps;
    mg->alpha = alpha;
}

int mg_levels(const abl_mg *mg)
{
    return mg->nlev;
}

/* d = ext + the free faces, 1/d (0 at held voxels) */
static void finish_diagonal(mg_level *v)
{
    const size_t sy = v->sy, sz = v->sz;
#pragma omp parallel for schedule(static) if (v->n >= MG_PARALLEL_N)
    for (int k = 0; k < v->nz; k++)
        for (int j = 0; j < v->ny; j++)
            for (int i = 0; i < v->nx; i++) {
                const size_t c = (size_t)k * sz + (size_t)j * sy + (size_t)i;
                if (v->held[c]) {
                    v->invd[c] = 0.0f;
                    continue;
                }
                double d = v->ext[c] + v->ax[c] + v->ay[c] + v->az[c];
                if (i > 0) d += v->ax[c - 1];
                if (j > 0) d += v->ay[c - sy];
                if (k > 0) d += v->az[c - sz];
                /* d = 0: a free voxel connected to nothing (cannot occur with positive
                 * conductivities); left at 0 rather than dividing by zero */
                v->invd[c] = d > 0.0 ? (float)(1.0 / d) : 0.0f;
            }
}

/* Galerkin operator of level f+1 from level f (multigrid.h): per coarse voxel, its children
 * visited in a fixed order (one thread per coarse plane) */
static void coarsen(mg_level *f, mg_level *c)
{
#pragma omp parallel for schedule(static) if (c->n >= MG_PARALLEL_N)
    for (int K = 0; K < c->nz; K++)
        for (int J = 0; J < c->ny; J++)
            for (int I = 0; I < c->nx; I++) {
                const size_t C = (size_t)K * c->sz + (size_t)J * c->sy + (size_t)I;
                double ext = 0.0, ax = 0.0, ay = 0.0, az = 0.0; /* summed in double */
                bool any_free = false;
                for (int k = 2 * K; k < 2 * K + 2 && k < f->nz; k++)
                    for (int j = 2 * J; j < 2 * J + 2 && j < f->ny; j++)
                        for (int i = 2 * I; i < 2 * I + 2 && i < f->nx; i++) {
                            const size_t q = (size_t)k * f->sz + (size_t)j * f->sy + (size_t)i;
                            if (f->held[q]) continue;
                            any_free = true;
                            ext += f->ext[q];
                            /* faces leaving the aggregate upwards (0 at the last layer and
                             * towards held voxels already) */
                            if (i == 2 * I + 1) ax += f->ax[q];
                            if (j == 2 * J + 1) ay += f->ay[q];
                            if (k == 2 * K + 1) az += f->az[q];
                        }
                c->held[C] = !any_free;
                c->ext[C] = ext;
                c->ax[C] = (float)ax, c->ay[C] = (float)ay, c->az[C] = (float)az;
            }
    finish_diagonal(c);
}

/* Dense Cholesky of the coarsest operator on its free voxels. */
static abl_status factor_coarsest(abl_mg *mg, abl_error *err)
{
    const mg_level *v = &mg->lev[mg->nlev - 1];
    int m = 0;
    for (size_t c = 0; c < v->n; c++)
        if (!v->held[c]) mg->free_idx[m++] = c;
    mg->m = m;
    double *A = mg->L;
    memset(A, 0, (size_t)m * (size_t)m * sizeof *A);
    /* index of voxel c among the free ones: binary search in the sorted free list */
    for (int a = 0; a < m; a++) {
        const size_t c = mg->free_idx[a];
        A[(size_t)a * m + a] = v->invd[c] > 0.0f ? 1.0 / v->invd[c] : 1.0;
        const size_t nb[3] = {c + 1, c + v->sy, c + v->sz};
        const double gf[3] = {v->ax[c], v->ay[c], v->az[c]};
        for (int t = 0; t < 3; t++) {
            if (gf[t] == 0.0) continue; /* also: no neighbour beyond the last layer */
            int lo = a + 1, hi = m - 1;
            while (lo < hi) {
                const int mid = (lo + hi) / 2;
                if (mg->free_idx[mid] < nb[t]) lo = mid + 1;
                else hi = mid;
            }
            /* a non-zero face joins two free voxels, so nb[t] is in the list */
            A[(size_t)lo * m + a] = A[(size_t)a * m + lo] = -gf[t];
        }
    }
    for (int j = 0; j < m; j++) {
        double s = A[(size_t)j * m + j];
        for (int k = 0; k < j; k++) s -= A[(size_t)j * m + k] * A[(size_t)j * m + k];
        if (!(s > 0.0))
            return abl_fail(err, ABL_ENUM,
                            "multigrid: the coarsest operator is not positive definite (pivot %g "
                            "at coarse voxel %zu): a conducting region without ground?",
                            s, mg->free_idx[j]);
        const double ljj = sqrt(s);
        A[(size_t)j * m + j] = ljj;
        for (int i = j + 1; i < m; i++) {
            double t = A[(size_t)i * m + j];
            for (int k = 0; k < j; k++) t -= A[(size_t)i * m + k] * A[(size_t)j * m + k];
            A[(size_t)i * m + j] = t / ljj;
        }
    }
    return ABL_OK;
}

abl_status mg_setup(abl_mg *mg, const double *gx, const double *gy, const double *gz,
                    const double *gb, const uint8_t *held, abl_error *err)
{
    mg_level *v = &mg->lev[0];
    const size_t sy = v->sy, sz = v->sz;
    const int nx = v->nx, ny = v->ny, nz = v->nz;
    const double *zrow = mg->zrow;
    const uint8_t *zlab = mg->zlab;
    /* level 0, row by row with the neighbour rows' pointers (missing rows: zeros, held NULL:
     * the zero labels): free-free faces; ext = grounds + faces to held voxels; the diagonal
     * d = grounds + every face (to free or held voxels) */
#pragma omp parallel for schedule(static)
    for (int k = 0; k < nz; k++)
        for (int j = 0; j < ny; j++) {
            const size_t row = (size_t)k * sz + (size_t)j * sy;
            const uint8_t *hc = held ? held + row : zlab,
                          *hs = held && j > 0 ? hc - sy : zlab,
                          *hn = held && j < ny - 1 ? hc + sy : zlab,
                          *hd = held && k > 0 ? hc - sz : zlab,
                          *hu = held && k < nz - 1 ? hc + sz : zlab;
            const double *gxr = gx + row, *gbr = gb + row,
                         *gnr = j < ny - 1 ? gy + row : zrow, *gsr = j > 0 ? gy + row - sy : zrow,
                         *gur = k < nz - 1 ? gz + row : zrow, *gdr = k > 0 ? gz + row - sz : zrow;
            float *ax = v->ax + row, *ay = v->ay + row, *az = v->az + row, *id = v->invd + row;
            double *ext = v->ext + row;
            uint8_t *hl = v->held + row;
            for (int i = 0; i < nx; i++) {
                const bool h = hc[i] != 0, he = i < nx - 1 && hc[i + 1], hw = i > 0 && hc[i - 1];
                const double ge = i < nx - 1 ? gxr[i] : 0.0, gw = i > 0 ? gxr[i - 1] : 0.0,
                             gn = gnr[i], gs = gsr[i], gu = gur[i], gd = gdr[i];
                hl[i] = h;
                ax[i] = h || he ? 0.0f : (float)ge;
                ay[i] = h || hn[i] ? 0.0f : (float)gn;
                az[i] = h || hu[i] ? 0.0f : (float)gu;
                const double e = gbr[i] + (he ? ge : 0.0) + (hn[i] ? gn : 0.0) +
                                 (hu[i] ? gu : 0.0) + (hw ? gw : 0.0) + (hs[i] ? gs : 0.0) +
                                 (hd[i] ? gd : 0.0);
                const double d = gbr[i] + ge + gn + gu + gw + gs + gd;
                ext[i] = h ? 0.0 : e;
                /* as finish_diagonal */
                id[i] = h || !(d > 0.0) ? 0.0f : (float)(1.0 / d);
            }
        }
    for (int l = 0; l + 1 < mg->nlev; l++) coarsen(&mg->lev[l], &mg->lev[l + 1]);
    return factor_coarsest(mg, err);
}

/* ---- V-cycle ------------------------------------------------------------------------------ */

/* Neighbour rows of row (j, k): faces and values below/above in y and z; missing rows get the
 * zero row (zero conductance, any finite value). */
typedef struct {
    const float *gs, *gn, *gd, *gu;
    const double *xs, *xn, *xd, *xu;
} rows;

static inline rows row_nbs(const mg_level *v, const double *x, const double *zrow,
                           const float *zrowf, int j, int k, size_t row)
{
    const size_t sy = v->sy, sz = v->sz;
    rows r;
    r.gs = j > 0 ? v->ay + row - sy : zrowf;
    r.xs = j > 0 ? x + row - sy : zrow;
    r.gn = v->ay + row;
    r.xn = j < v->ny - 1 ? x + row + sy : zrow;
    r.gd = k > 0 ? v->az + row - sz : zrowf;
    r.xd = k > 0 ? x + row - sz : zrow;
    r.gu = v->az + row;
    r.xu = k < v->nz - 1 ? x + row + sz : zrow;
    return r;
}

/* sum of G x over the face neighbours of voxel i of the row */
static inline double nb_sum(const rows *r, const float *ge, const double *xr, int i, int nx)
{
    double s = r->gs[i] * r->xs[i] + r->gn[i] * r->xn[i] + r->gd[i] * r->xd[i] +
               r->gu[i] * r->xu[i];
    if (i > 0) s += ge[i - 1] * xr[i - 1];
    if (i < nx - 1) s += ge[i] * xr[i + 1];
    return s;
}

/* One Gauss-Seidel half sweep over colour col ((i + j + k) % 2 == col): x = (b + sum G x_nb)/d.
 * first: x is zero at the other colour (the start of a V-cycle), so x = b/d.
 * Stride 2 along the row. Variants measured no faster on 60x60x80 (1 and 2 threads): unit
 * stride computing both colours and keeping one (vectorised), and one-sweep cycles fused into
 * two plane-pipelined passes per level (the red values recomputed as b/d + alpha P x_c, the
 * residual from the black values alone, halo planes per thread). */
static void half_sweep(const mg_level *v, const double *zrow, const float *zrowf,
                       const double *b, double *x, int col, bool first)
{
    const int nx = v->nx;
#pragma omp parallel for schedule(static) if (v->n >= MG_PARALLEL_N)
    for (int k = 0; k < v->nz; k++)
        for (int j = 0; j < v->ny; j++) {
            const size_t row = (size_t)k * v->sz + (size_t)j * v->sy;
            const double *br = b + row;
            const float *id = v->invd + row, *ge = v->ax + row;
            double *xr = x + row;
            const int i0 = (j + k + col) & 1; /* first voxel of colour col in the row */
            if (first) {
                for (int i = i0; i < nx; i += 2) xr[i] = br[i] * id[i];
                continue;
            }
            const rows r = row_nbs(v, x, zrow, zrowf, j, k, row);
            const float *gs = r.gs, *gn = r.gn, *gd = r.gd, *gu = r.gu;
            const double *xs = r.xs, *xn = r.xn, *xd = r.xd, *xu = r.xu;
            if (i0 == 0) xr[0] = (br[0] + nb_sum(&r, ge, xr, 0, nx)) * id[0];
            for (int i = i0 ? 1 : 2; i < nx - 1; i += 2)
                xr[i] = (br[i] + ge[i - 1] * xr[i - 1] + ge[i] * xr[i + 1] + gs[i] * xs[i] +
                         gn[i] * xn[i] + gd[i] * xd[i] + gu[i] * xu[i]) *
                        id[i];
            if (nx > 1 && ((nx - 1) & 1) == i0)
                xr[nx - 1] = (br[nx - 1] + nb_sum(&r, ge, xr, nx - 1, nx)) * id[nx - 1];
        }
}

/* Residual b - A x after a pre-smoothing that ended with a black (colour 1) half sweep: it is
 * zero at black voxels (their rows were just solved, and no red value changed since), so only
 * red free voxels are summed into the coarse right side, one thread per coarse plane, children
 * in a fixed order. Rows are evaluated whole (vectorised) into the plane's row buffer rb. */
static void residual_restrict(const mg_level *v, const double *zrow, const float *zrowf,
                              const double *b, const double *x, mg_level *c, double *rbuf)
{
    const int nx = v->nx;
#pragma omp parallel for schedule(static) if (v->n >= MG_PARALLEL_N)
    for (int K = 0; K < c->nz; K++) {
        double *bc = c->b + (size_t)K * c->sz;
        memset(bc, 0, c->sz * sizeof *bc);
        double *rr = rbuf + (size_t)K * (size_t)nx;
        for (int k = 2 * K; k < 2 * K + 2 && k < v->nz; k++)
            for (int j = 0; j < v->ny; j++) {
                const size_t row = (size_t)k * v->sz + (size_t)j * v->sy;
                const double *br = b + row, *xr = x + row;
                const float *id = v->invd + row, *ge = v->ax + row;
                const uint8_t *hr = v->held + row;
                double *bcr = bc + (size_t)(j / 2) * c->sy;
                const rows r = row_nbs(v, x, zrow, zrowf, j, k, row);
                const float *gs = r.gs, *gn = r.gn, *gd = r.gd, *gu = r.gu;
                const double *xs = r.xs, *xn = r.xn, *xd = r.xd, *xu = r.xu;
                /* the diagonal as the smoother has it, 1/invd (inf at held voxels: not
                 * summed) */
                rr[0] = br[0] + nb_sum(&r, ge, xr, 0, nx) - xr[0] / id[0];
#pragma omp simd
                for (int i = 1; i < nx - 1; i++)
                    rr[i] = br[i] + ge[i - 1] * xr[i - 1] + ge[i] * xr[i + 1] + gs[i] * xs[i] +
                            gn[i] * xn[i] + gd[i] * xd[i] + gu[i] * xu[i] - xr[i] / id[i];
                if (nx > 1)
                    rr[nx - 1] = br[nx - 1] + nb_sum(&r, ge, xr, nx - 1, nx) -
                                 xr[nx - 1] / id[nx - 1];
                for (int i = (j + k) & 1; i < nx; i += 2)
                    if (!hr[i]) bcr[i / 2] += rr[i];
            }
    }
}

/* x += alpha P xc (held fine voxels: the post-smoothing resets them to 0, and their faces are 0,
 * so what is added there is never read) */
static void prolong(const mg_level *v, const mg_level *c, double alpha, double *x)
{
#pragma omp parallel for schedule(static) if (v->n >= MG_PARALLEL_N)
    for (int k = 0; k < v->nz; k++)
        for (int j = 0; j < v->ny; j++) {
            double *xr = x + (size_t)k * v->sz + (size_t)j * v->sy;
            const double *xcr = c->x + (size_t)(k / 2) * c->sz + (size_t)(j / 2) * c->sy;
            for (int i = 0; i < v->nx; i++) xr[i] += alpha * xcr[i / 2];
        }
}

static void coarsest_solve(abl_mg *mg, const double *b, double *x)
{
    const mg_level *v = &mg->lev[mg->nlev - 1];
    const int m = mg->m;
    const double *L = mg->L;
    double *y = mg->y;
    for (int i = 0; i < m; i++) {
        double s = b[mg->free_idx[i]];
        for (int k = 0; k < i; k++) s -= L[(size_t)i * m + k] * y[k];
        y[i] = s / L[(size_t)i * m + i];
    }
    for (int i = m - 1; i >= 0; i--) {
        double s = y[i];
        for (int k = i + 1; k < m; k++) s -= L[(size_t)k * m + i] * y[k];
        y[i] = s / L[(size_t)i * m + i];
    }
    memset(x, 0, v->n * sizeof *x);
    for (int i = 0; i < m; i++) x[mg->free_idx[i]] = y[i];
}

/* x = B_l b (x need not be initialised: the first half sweep writes every red voxel without
 * reading x, the next every black one reading only red ones) */
static void vcycle(abl_mg *mg, int l, const double *b, double *x)
{
    mg_level *v = &mg->lev[l];
    if (l == mg->nlev - 1) { /* (also a fine grid small enough to solve directly) */
        coarsest_solve(mg, b, x);
        return;
    }
    const double *zrow = mg->zrow;
    const float *zrowf = mg->zrowf;
    for (int s = 0; s < mg->sweeps; s++) {
        half_sweep(v, zrow, zrowf, b, x, 0, s == 0);
        half_sweep(v, zrow, zrowf, b, x, 1, false);
    }
    mg_level *c = &mg->lev[l + 1];
    residual_restrict(v, zrow, zrowf, b, x, c, mg->rbuf);
    vcycle(mg, l + 1, c->b, c->x);
    prolong(v, c, mg->alpha, x);
    for (int s = 0; s < mg->sweeps; s++) {
        half_sweep(v, zrow, zrowf, b, x, 1, false);
        half_sweep(v, zrow, zrowf, b, x, 0, false);
    }
}

void mg_apply(abl_mg *mg, const double *r, double *z)
{
    vcycle(mg, 0, r, z);
}
