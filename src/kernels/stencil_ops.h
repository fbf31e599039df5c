/* stencil_ops.h - the Pennes operator at one voxel, defined once (HPGMG apply_op_ijk style).
 * Every kernel that needs the general operator (explicit step, RHS, later the CG matvec) calls
 * this, so the explicit and implicit paths cannot drift apart. Private to src/kernels. */
#ifndef ABLASIM_STENCIL_OPS_H
#define ABLASIM_STENCIL_OPS_H

#include "ablasim/kernels.h"
#include "ablasim/grid.h" /* abl_bc, FACE_*: the grid's, not the scenario's */

/* pennes_op (below) with the constant part (wall temperatures, W T_a + Q_met) on or off. */
static inline double pennes_op_ex(const abl_stencil *st, const double *T, int i, int j, int k,
                                  size_t c, const int affine)
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
    else flux += st->gbound[(size_t)(face) * nm + m] * ((affine ? st->T_bound_C[face] : 0) - Tc);
    FACE(i > 0, -1, gx, FACE_XMIN)
    FACE(i < g->nx - 1, +1, gx, FACE_XMAX)
    FACE(j > 0, -(ptrdiff_t)g->sy, gy, FACE_YMIN)
    FACE(j < g->ny - 1, (ptrdiff_t)g->sy, gy, FACE_YMAX)
    FACE(k > 0, -(ptrdiff_t)g->sz, gz, FACE_ZMIN)
    FACE(k < g->nz - 1, (ptrdiff_t)g->sz, gz, FACE_ZMAX)
#undef FACE
    return flux + (affine ? st->src_const[m] : 0.0) - st->perf_W[m] * Tc;
}

/* Right-hand side [W/m^3] of rho c dT/dt at voxel c = (i,j,k), without sources:
 * sum over faces G (T_nb - T) + W (T_a - T) + Q_met, domain faces per st->gbound. Written as
 * A T + f: pennes_op_ex(.., 0) is the linear part A T alone (what implicit solves invert). */
static inline double pennes_op(const abl_stencil *st, const double *T, int i, int j, int k,
                               size_t c)
{
    return pennes_op_ex(st, T, i, j, k, c, 1);
}

/* Conductance of a domain face: abl_boundary_conductance (kernels.h), the definition the driver
 * fills st->gbound with. */
static inline double boundary_conductance(int type, double h_conv, double k, double h)
{
    return abl_boundary_conductance(type, h_conv, k, h);
}

/* pennes_op with per-voxel k and W (variable-property path). */
static inline double pennes_op_var_ex(const abl_stencil *st, const double *kv, const double *Wv,
                                      const double *T, int i, int j, int k, size_t c,
                                      const int affine)
{
    const abl_grid *g = st->g;
    const double Tc = T[c], kc = kv[c];
    const double ih2[3] = {1.0 / (g->h_m[0] * g->h_m[0]), 1.0 / (g->h_m[1] * g->h_m[1]),
                           1.0 / (g->h_m[2] * g->h_m[2])};
    double flux = 0.0;
#define FACE_V(cond, off, d, face)                                                               \
    if (cond) {                                                                                  \
        const double kn = kv[c + (off)];                                                         \
        flux += abl_face_conductance(kc, kn, ih2[d]) * (T[c + (off)] - Tc);                     \
    } else                                                                                       \
        flux += boundary_conductance(st->bc_type[face], st->bc_h_W_m2K[face], kc,               \
                                     g->h_m[d]) * ((affine ? st->T_bound_C[face] : 0) - Tc);
    FACE_V(i > 0, -1, 0, FACE_XMIN)
    FACE_V(i < g->nx - 1, +1, 0, FACE_XMAX)
    FACE_V(j > 0, -(ptrdiff_t)g->sy, 1, FACE_YMIN)
    FACE_V(j < g->ny - 1, (ptrdiff_t)g->sy, 1, FACE_YMAX)
    FACE_V(k > 0, -(ptrdiff_t)g->sz, 2, FACE_ZMIN)
    FACE_V(k < g->nz - 1, (ptrdiff_t)g->sz, 2, FACE_ZMAX)
#undef FACE_V
    if (!affine) return flux - Wv[c] * Tc;
    return flux + Wv[c] * (st->T_arterial_C - Tc) + st->q_met[st->material[c]];
}

static inline double pennes_op_var(const abl_stencil *st, const double *kv, const double *Wv,
                                   const double *T, int i, int j, int k, size_t c)
{
    return pennes_op_var_ex(st, kv, Wv, T, i, j, k, c, 1);
}

#endif
