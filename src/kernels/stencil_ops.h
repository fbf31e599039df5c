/* stencil_ops.h - the Pennes operator at one voxel, defined once (HPGMG apply_op_ijk style).
 * Every kernel that needs the general operator (explicit step, RHS, later the CG matvec) calls
 * this, so the explicit and implicit paths cannot drift apart. Private to src/kernels. */
#ifndef ABLASIM_STENCIL_OPS_H
#define ABLASIM_STENCIL_OPS_H

#include "ablasim/kernels.h"
#include "ablasim/scenario.h"

/* Right-hand side [W/m^3] of rho c dT/dt at voxel c = (i,j,k), without sources:
 * sum over faces G (T_nb - T) + W (T_a - T) + Q_met, domain faces per st->gbound. */
static inline double pennes_op(const abl_stencil *st, const double *T, int i, int j, int k,
                               size_t c)
{
    const abl_grid *g = st->g;
    const int nm = st->nmat;
    const int m = st->material[c];
    const double Tc = T[c];
    const double *gx = st->gface + (size_t)m * nm;
    const double *gy = gx + (size_t)nm * nm;
    const double *gz = gy + (size_t)nm * nm;
    double flux = 0.0;
#define FACE(cond, off, gtab, face)                                                              \
    if (cond) flux += gtab[st->material[c + (off)]] * (T[c + (off)] - Tc);                       \
    else flux += st->gbound[(size_t)(face) * nm + m] * (st->T_bound_C[face] - Tc);
    FACE(i > 0, -1, gx, FACE_XMIN)
    FACE(i < g->nx - 1, +1, gx, FACE_XMAX)
    FACE(j > 0, -(ptrdiff_t)g->sy, gy, FACE_YMIN)
    FACE(j < g->ny - 1, (ptrdiff_t)g->sy, gy, FACE_YMAX)
    FACE(k > 0, -(ptrdiff_t)g->sz, gz, FACE_ZMIN)
    FACE(k < g->nz - 1, (ptrdiff_t)g->sz, gz, FACE_ZMAX)
#undef FACE
    return flux + st->src_const[m] - st->perf_W[m] * Tc;
}

#endif
