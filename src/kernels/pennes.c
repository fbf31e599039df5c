/* pennes.c - explicit Pennes step (fast same-tissue path + general path), RHS, energy sums.
 * Traffic budget and discretisation: see kernels.h. */
#include <stddef.h>

#include "ablasim/kernels.h"
#include "stencil_ops.h"

/* Same-tissue run [i0, i1) of one row: constant coefficients, unit stride, vectorisable. */
static inline void fast_run(const abl_fast_coef *restrict f, const double *restrict T,
                            double *restrict T_new, size_t c0, size_t c1, size_t sy, size_t sz)
{
    const double ax = f->ax, ay = f->ay, az = f->az, diag = f->diag, s = f->s;
#pragma omp simd
    for (size_t c = c0; c < c1; c++)
        T_new[c] = diag * T[c] + ax * (T[c - 1] + T[c + 1]) + ay * (T[c - sy] + T[c + sy]) +
                   az * (T[c - sz] + T[c + sz]) + s;
}

static inline void general_voxel(const abl_stencil *st, const double *restrict T,
                                 double *restrict T_new, int i, int j, int k, size_t c)
{
    T_new[c] = T[c] + st->dt_s * st->inv_rhoc[st->material[c]] * pennes_op(st, T, i, j, k, c);
}

void pennes_explicit_step(const abl_stencil *st, const double *restrict T, double *restrict T_new)
{
    const abl_grid *g = st->g;
    const int nx = g->nx, ny = g->ny, nz = g->nz;
    const size_t sy = g->sy, sz = g->sz;
#pragma omp parallel for collapse(2) schedule(static)
    for (int k = 0; k < nz; k++)
        for (int j = 0; j < ny; j++) {
            const size_t row = (size_t)k * sz + (size_t)j * sy;
            const uint8_t *cls = st->cls + row;
            int i = 0;
            while (i < nx) {
                const uint8_t m = cls[i];
                if (m == ABL_CLS_GENERAL) {
                    general_voxel(st, T, T_new, i, j, k, row + (size_t)i);
                    i++;
                    continue;
                }
                int e = i + 1;
                while (e < nx && cls[e] == m) e++;
                fast_run(&st->fast[m], T, T_new, row + (size_t)i, row + (size_t)e, sy, sz);
                i = e;
            }
        }
}

void pennes_explicit_step_general(const abl_stencil *st, const double *restrict T,
                                  double *restrict T_new)
{
    const abl_grid *g = st->g;
#pragma omp parallel for collapse(2) schedule(static)
    for (int k = 0; k < g->nz; k++)
        for (int j = 0; j < g->ny; j++)
            for (int i = 0; i < g->nx; i++) general_voxel(st, T, T_new, i, j, k, ABL_IDX(g, i, j, k));
}

void pennes_rhs(const abl_stencil *st, const double *restrict T, double *restrict rhs_W_m3)
{
    const abl_grid *g = st->g;
#pragma omp parallel for collapse(2) schedule(static)
    for (int k = 0; k < g->nz; k++)
        for (int j = 0; j < g->ny; j++)
            for (int i = 0; i < g->nx; i++) {
                size_t c = ABL_IDX(g, i, j, k);
                rhs_W_m3[c] = pennes_op(st, T, i, j, k, c);
            }
}

/* Heat per volume entering voxel c through domain face f [W/m^3]. */
static inline double boundary_in(const abl_stencil *st, const double *T, size_t c, int face)
{
    const int m = st->material[c];
    return st->gbound[(size_t)face * st->nmat + m] * (st->T_bound_C[face] - T[c]);
}

void pennes_energy_rates(const abl_stencil *st, const double *restrict T, double *work_2nz,
                         double *perf_met_W, double *boundary_in_W)
{
    const abl_grid *g = st->g;
    const double V = g->h_m[0] * g->h_m[1] * g->h_m[2];
    double *pm = work_2nz, *bd = work_2nz + g->nz;
#pragma omp parallel for schedule(static)
    for (int k = 0; k < g->nz; k++) {
        double sp = 0.0, sb = 0.0;
        for (int j = 0; j < g->ny; j++)
            for (int i = 0; i < g->nx; i++) {
                size_t c = ABL_IDX(g, i, j, k);
                int m = st->material[c];
                sp += st->src_const[m] - st->perf_W[m] * T[c];
                if (i == 0) sb += boundary_in(st, T, c, FACE_XMIN);
                if (i == g->nx - 1) sb += boundary_in(st, T, c, FACE_XMAX);
                if (j == 0) sb += boundary_in(st, T, c, FACE_YMIN);
                if (j == g->ny - 1) sb += boundary_in(st, T, c, FACE_YMAX);
                if (k == 0) sb += boundary_in(st, T, c, FACE_ZMIN);
                if (k == g->nz - 1) sb += boundary_in(st, T, c, FACE_ZMAX);
            }
        pm[k] = sp;
        bd[k] = sb;
    }
    double p = 0.0, b = 0.0;
    for (int k = 0; k < g->nz; k++) {
        p += pm[k];
        b += bd[k];
    }
    *perf_met_W = p * V;
    *boundary_in_W = b * V;
}

double pennes_stored_energy(const abl_stencil *st, const double *restrict T, double *work_nz)
{
    const abl_grid *g = st->g;
    const double V = g->h_m[0] * g->h_m[1] * g->h_m[2];
#pragma omp parallel for schedule(static)
    for (int k = 0; k < g->nz; k++) {
        double s = 0.0;
        for (size_t c = (size_t)k * g->sz; c < (size_t)(k + 1) * g->sz; c++)
            s += T[c] / st->inv_rhoc[st->material[c]];
        work_nz[k] = s;
    }
    double e = 0.0;
    for (int k = 0; k < g->nz; k++) e += work_nz[k];
    return e * V;
}
