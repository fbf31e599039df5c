/* phase.c - enthalpy curves of tissue water (phase.h): construction, the post-step map, stored
 * energy. No I/O, no allocation. */
#include "ablasim/phase.h"

#include <math.h>

void phase_curve_build(abl_phase_curve *p, double C_u, int freeze, double C_f, double L_f,
                       double T_s, double T_l, int vap, double L_v, double T_v1, double T_v2)
{
    *p = (abl_phase_curve){0};
    const int fz = freeze && C_f > 0 && L_f >= 0 && T_s < T_l;
    const int vp = vap && L_v > 0 && T_v1 < T_v2;
    p->C_ref = C_u;
    p->win_lo_C = -INFINITY;
    p->win_hi_C = INFINITY;
    if (!fz && !vp) return;
    int k = 0;
    if (fz) {
        /* H = C_u T on the liquid range; go down from T_l */
        const double C_m = 0.5 * (C_f + C_u) + L_f / (T_l - T_s);
        p->T_C[k] = T_s;
        p->H[k] = C_u * T_l - C_m * (T_l - T_s);
        p->C[k] = C_f;
        k++;
        p->T_C[k] = T_l;
        p->H[k] = C_u * T_l;
        p->C[k] = C_m;
        k++;
        p->win_lo_C = T_l;
        if (C_f < C_u) p->C_ref = C_f;
    }
    if (vp) {
        p->T_C[k] = T_v1;
        p->H[k] = C_u * T_v1;
        p->C[k] = C_u; /* liquid segment below the boiling range */
        k++;
        p->T_C[k] = T_v2;
        p->H[k] = C_u * T_v1 + (C_u + L_v / (T_v2 - T_v1)) * (T_v2 - T_v1);
        p->C[k] = C_u + L_v / (T_v2 - T_v1);
        k++;
        p->win_hi_C = T_v1;
    }
    p->C[k] = C_u; /* above the last knot: liquid (no vaporisation) or dry tissue */
    p->nk = k;
    /* the map is the identity on the liquid window only if the stencil uses C_u there */
    if (p->C_ref != C_u) {
        p->win_lo_C = INFINITY;
        p->win_hi_C = -INFINITY;
    }
}

void phase_map(size_t n, const uint8_t *restrict material, const abl_phase_curve *curves,
               const double *restrict T0, double *restrict T1, const uint8_t *restrict skip)
{
#pragma omp parallel for schedule(static)
    for (size_t c = 0; c < n; c++) {
        const abl_phase_curve *p = &curves[material[c]];
        if (p->nk == 0 || (skip && skip[c])) continue;
        const double a = T0[c], b = T1[c];
        if (a >= p->win_lo_C && a <= p->win_hi_C && b >= p->win_lo_C && b <= p->win_hi_C)
            continue; /* both ends on the liquid window: H = C_u T, nothing to correct */
        T1[c] = phase_step(p, a, b);
    }
}

void phase_map_box(const abl_grid *g, const int lo[3], const int hi[3], const int32_t *row_lo,
                   const int32_t *row_hi, const uint8_t *restrict material,
                   const abl_phase_curve *curves, const double *restrict T0,
                   double *restrict T1)
{
#pragma omp parallel for collapse(2) schedule(static)
    for (int k = lo[2]; k < hi[2]; k++)
        for (int j = lo[1]; j < hi[1]; j++) {
            int i0, i1;
            grid_row_part(g, j, k, lo[0], hi[0], row_lo, row_hi, &i0, &i1);
            for (size_t c = ABL_IDX(g, i0, j, k), e = ABL_IDX(g, 0, j, k) + (size_t)i1; c < e;
                 c++) {
                const abl_phase_curve *p = &curves[material[c]];
                if (p->nk == 0) continue;
                const double a = T0[c], b = T1[c];
                if (a >= p->win_lo_C && a <= p->win_hi_C && b >= p->win_lo_C && b <= p->win_hi_C)
                    continue;
                T1[c] = phase_step(p, a, b);
            }
        }
}

double phase_stored_energy(size_t plane, int nz, const uint8_t *restrict material,
                           const abl_phase_curve *curves, const double *restrict T,
                           double voxel_m3, double *work_nz)
{
#pragma omp parallel for schedule(static)
    for (int k = 0; k < nz; k++) {
        double e = 0.0;
        for (size_t c = (size_t)k * plane; c < (size_t)(k + 1) * plane; c++)
            e += phase_H(&curves[material[c]], T[c]);
        work_nz[k] = e * voxel_m3;
    }
    double sum = 0.0;
    for (int k = 0; k < nz; k++) sum += work_nz[k];
    return sum;
}
