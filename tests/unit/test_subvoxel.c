/* test_subvoxel.c - partial-volume rasterisation of shapes and the two basic sources (issue 15
 * item 1): fraction accuracy against analytic volumes and the a-priori bound of shape.h,
 * volumetric power exact to round-off, held fractions of fixed_temperature, and the acceptance
 * case: a 10 W uniform source in a 5 mm sphere in perfused liver against the exact transient
 * solution, with the sphere centred on a voxel centre and on a voxel corner.
 * Figures: docs/VERIFICATION.md "Sub-voxel sources"; run alone with `run_tests subvoxel`. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "ablasim/shape.h"
#include "testutil.h"

static const double PI = 3.14159265358979323846;

/* ---- exact reference: uniform sphere source switched on at t = 0, infinite perfused medium --
 *
 * rho c dtheta/dt = k lap theta - W theta + Q [r < a], theta(., 0) = 0. By Duhamel, with the
 * perfusion factor e^{-s/tau_p} (tau_p = rho c / W) of a unit impulse,
 *   theta(r, t) = Q/(rho c) int_0^t e^{-s/tau_p} F(r, s) ds,
 * F the temperature at time s after a unit temperature in r < a (Carslaw & Jaeger 1959, §10.3):
 *   F = 1/2 [erf((a - r)/(2 sqrt(alpha s))) + erf((a + r)/(2 sqrt(alpha s)))]
 *       - sqrt(alpha s / pi) / r [e^{-(a - r)^2/(4 alpha s)} - e^{-(a + r)^2/(4 alpha s)}],
 * and at r = 0 its limit erf(a / (2 sqrt(alpha s))) - a / sqrt(pi alpha s) e^{-a^2/(4 alpha s)}.
 * The bracket is written e1 (1 - e^{-a r/(alpha s)}) with expm1, so small r loses no digits. */
typedef struct {
    double a, alpha, tau, r;
} sph_ref;

static double unit_sphere_F(const sph_ref *p, double s)
{
    const double a = p->a, r = p->r;
    if (s <= 0) return r < a ? 1.0 : (r == a ? 0.5 : 0.0);
    const double as = p->alpha * s, sq = sqrt(as), d = 2 * sq;
    if (r < 1e-9 * a) return erf(a / d) - a / sqrt(PI * as) * exp(-a * a / (4 * as));
    const double e1 = exp(-(a - r) * (a - r) / (4 * as));
    return 0.5 * (erf((a - r) / d) + erf((a + r) / d)) + sq / (sqrt(PI) * r) * e1 * expm1(-a * r / as);
}

/* Survival probability at the centre of [-D, D] under diffusion alpha (zero-temperature walls),
 * by images: S = 1 - 2 erfc(u) + 2 erfc(3u) - 2 erfc(5u) + ..., u = D / (2 sqrt(alpha s))
 * (Carslaw & Jaeger §3.3); terms fall as erfc((2j+1)u), u >= 0.7 for the uses below, so 8 terms
 * are exact to round-off. A unit temperature in the cube decays at its centre as S^3 (the
 * cube's heat kernel is the product of three 1-D kernels). */
static double cube_survival(const sph_ref *p, double s)
{
    if (s <= 0) return 1.0;
    const double u = p->a / (2 * sqrt(p->alpha * s));
    double S = 1.0;
    for (int j = 0; j < 8; j++) S += (j & 1 ? 2.0 : -2.0) * erfc((2 * j + 1) * u);
    return S * S * S;
}

/* p->r < 0 selects the cube's uniform-source integrand (p->a is then the half-width D) */
static double duhamel_integrand(const sph_ref *p, double s)
{
    return exp(-s / p->tau) * (p->r < 0 ? cube_survival(p, s) : unit_sphere_F(p, s));
}

/* Gauss-Kronrod 7-15 on [x0, x1]: the Kronrod value, and |K15 - G7| as its error estimate. */
static double gk15(const sph_ref *p, double x0, double x1, double *errest)
{
    static const double xk[8] = {0.991455371120812639, 0.949107912342758525, 0.864864423359769073,
                                 0.741531185599394440, 0.586087235467691130, 0.405845151377397167,
                                 0.207784955007898468, 0.0};
    static const double wk[8] = {0.022935322010529225, 0.063092092629978553, 0.104790010322250184,
                                 0.140653259715525919, 0.169004726639267903, 0.190350578064785410,
                                 0.204432940075298892, 0.209482141084727828};
    static const double wg[4] = {0.129484966168869693, 0.279705391489276668, 0.381830050505118945,
                                 0.417959183673469388};
    const double c = 0.5 * (x0 + x1), hw = 0.5 * (x1 - x0);
    double fc = duhamel_integrand(p, c), K = wk[7] * fc, G = wg[3] * fc;
    for (int i = 0; i < 7; i++) {
        double f = duhamel_integrand(p, c - hw * xk[i]) + duhamel_integrand(p, c + hw * xk[i]);
        K += wk[i] * f;
        if (i & 1) G += wg[i / 2] * f;
    }
    *errest = fabs(K - G) * hw;
    return K * hw;
}

/* Adaptive bisection until each piece's estimate is below tol times its share of the interval;
 * the estimate |K15 - G7| overstates the K15 error by orders of magnitude on smooth pieces. */
static double gk_adapt(const sph_ref *p, double x0, double x1, double tol, int depth)
{
    double e, v = gk15(p, x0, x1, &e);
    if (e <= tol || depth > 40) return v;
    const double m = 0.5 * (x0 + x1);
    return gk_adapt(p, x0, m, 0.5 * tol, depth + 1) + gk_adapt(p, m, x1, 0.5 * tol, depth + 1);
}

/* theta(r, t) [K] for power density Q [W/m^3]; tolerance 1e-11 of the integral's scale
 * (Q/(rho c) t), i.e. ~1e-10 relative or better where theta is not tiny. */
static double sphere_source_theta(double Q, double rhoc, double k, double W, double a, double r,
                                  double t)
{
    sph_ref p = {a, k / rhoc, rhoc / W, r};
    double scale = fmin(t, 50 * p.tau);
    return Q / rhoc * gk_adapt(&p, 0.0, t, 1e-11 * scale, 0);
}

/* The same source at the centre of the cube [-D, D]^3 with walls at theta = 0, at the point x
 * [m]: images of alternating sign at 2D (i, j, k), sign (-1)^(i+j+k) (the operator is invariant
 * under reflection). Images beyond |i|, |j|, |k| <= 2 are >= 6D - |x| away, where theta ~
 * e^{-6D/L}: < 1e-9 K for D >= 12 mm. */
static double cube_sphere_theta(double Q, double rhoc, double k, double W, double a, double D,
                                const double x[3], double t)
{
    double th = 0;
    for (int i = -2; i <= 2; i++)
        for (int j = -2; j <= 2; j++)
            for (int l = -2; l <= 2; l++) {
                double dx = x[0] - 2 * D * i, dy = x[1] - 2 * D * j, dz = x[2] - 2 * D * l;
                double r = sqrt(dx * dx + dy * dy + dz * dz);
                th += ((i + j + l) & 1 ? -1.0 : 1.0) * sphere_source_theta(Q, rhoc, k, W, a, r, t);
            }
    return th;
}

/* Uniform heat Q_m in the cube [-D, D]^3 with walls at theta = 0, from theta = 0, at the centre:
 * Q_m/(rho c) int_0^t e^{-s/tau_p} S(s)^3 ds (-> Q_m/W (1 - e^{-t/tau_p}) as D -> inf). */
static double cube_uniform_theta(double Qm, double rhoc, double k, double W, double D, double t)
{
    sph_ref p = {D, k / rhoc, rhoc / W, -1.0};
    return Qm / rhoc * gk_adapt(&p, 0.0, t, 1e-11 * fmin(t, 50 * p.tau), 0);
}

/* Steady state, reference case C: C = Q/W, m = sqrt(W/k). */
static double sphere_source_steady(double Q, double k, double W, double a, double r)
{
    const double m = sqrt(W / k), C = Q / W, ma = m * a, mr = m * r;
    if (r < a) {
        const double shr = mr > 0 ? sinh(mr) / mr : 1.0;
        return C * (1 - (1 + ma) * exp(-ma) * shr);
    }
    return C * (ma * cosh(ma) - sinh(ma)) * exp(-mr) / mr;
}

static void test_reference_solution(void)
{
    /* worked values of reference case C (k 0.52, rho 1079, c 3540, W 58754; Q = 1e6 W/m^3,
     * a = 5 mm) to the digits printed there: half a unit of the last digit, plus 1e-5 relative
     * for the rounding of the inputs themselves (W, m) */
    const double k = 0.52, rhoc = 1079.0 * 3540.0, W = 58754.0, a = 5e-3;
    const double r_mm[6] = {0, 2.5, 5, 7.5, 10, 20};
    const double worked[6] = {8.5225, 7.4865, 3.9175, 1.1271, 0.36481, 0.006327};
    const double unit[6] = {1e-4, 1e-4, 1e-4, 1e-4, 1e-5, 1e-6};
    for (int i = 0; i < 6; i++) {
        double st = sphere_source_steady(1e6, k, W, a, r_mm[i] * 1e-3);
        CU_ASSERT(fabs(st - worked[i]) <= 0.5 * unit[i] + 1e-5 * worked[i]);
        /* the transient at t = 50 tau_p (e^-50 of the approach left) must reach it; 1e-9
         * relative is the quadrature's target with margin */
        double tr = sphere_source_theta(1e6, rhoc, k, W, a, r_mm[i] * 1e-3, 50 * rhoc / W);
        if (fabs(tr - st) > 1e-9 * st)
            printf("\n  r = %g mm: transient(50 tau) %.12g vs steady %.12g", r_mm[i], tr, st);
        CU_ASSERT(fabs(tr - st) <= 1e-9 * st);
    }
    /* the r -> 0 limit of F joins the general formula continuously (r = 1 um, 0.1 um) */
    double t0 = sphere_source_theta(1e6, rhoc, k, W, a, 0.0, 300);
    double t1 = sphere_source_theta(1e6, rhoc, k, W, a, 1e-6, 300);
    double t2 = sphere_source_theta(1e6, rhoc, k, W, a, 1e-7, 300);
    /* theta(r) - theta(0) ~ theta'' r^2 / 2, |theta''| < 1e6 K/m^2 here: < 1e-6 K at 1 um */
    CU_ASSERT(fabs(t1 - t0) < 1e-6 && fabs(t2 - t0) < 1e-8);
    /* no perfusion, short time: the centre heats at Q/(rho c) until diffusion reaches it
     * (t = 1 s: sqrt(alpha t) = 0.37 mm << a, F(0, s) = 1 - O(e^-180)) */
    double tq = sphere_source_theta(1e6, rhoc, k, 1e-300, a, 0.0, 1.0);
    CU_ASSERT(fabs(tq - 1e6 / rhoc) < 1e-12 * 1e6 / rhoc);
}

/* ---- fractions: accuracy, bound, convergence ------------------------------------------------ */

static abl_grid cube_grid(int n, double h_mm, const double off_vox[3])
{
    abl_grid g;
    abl_error err = {0};
    int dims[3] = {n, n, n};
    double h[3] = {h_mm * 1e-3, h_mm * 1e-3, h_mm * 1e-3}, o[3];
    for (int d = 0; d < 3; d++) o[d] = (-(n - 1) * 0.5 + off_vox[d]) * h_mm * 1e-3;
    CU_ASSERT_FATAL(grid_init(&g, dims, h, o, &err) == ABL_OK);
    return g;
}

/* dense fraction field of s on g at depth (-1: default) */
static double *dense_fractions(const abl_shape *s, const abl_grid *g, int depth, size_t *count)
{
    size_t *idx = NULL, cnt = 0;
    double *f = NULL;
    abl_error err = {0};
    abl_status st = depth < 0 ? shape_fractions(s, g, &idx, &f, &cnt, &err)
                              : shape_fractions_depth(s, g, depth, &idx, &f, &cnt, &err);
    CU_ASSERT_FATAL(st == ABL_OK);
    double *x = calloc(g->n, sizeof *x);
    CU_ASSERT_FATAL(x != NULL);
    for (size_t i = 0; i < cnt; i++) {
        CU_ASSERT(f[i] >= SHAPE_FRAC_MIN && f[i] <= 1.0);
        if (i) CU_ASSERT(idx[i] > idx[i - 1]);
        x[idx[i]] = f[i];
    }
    if (count) *count = cnt;
    free(idx);
    free(f);
    return x;
}

static double dense_sum(const double *x, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) s += x[i];
    return s;
}

/* The a-priori bound of shape.h on |sum f V - V|: 9.2 A s^2 / R_c for the curved surface
 * (cubic leaves of side s), plus for a cylinder its two rims, 2 x 2 pi (R + 2 rho) (4 rho)^2. */
static double fraction_bound(const abl_shape *s, const abl_grid *g, int depth)
{
    const double sl = ldexp(g->h_m[0], -depth), rho = sqrt(3.0) * sl / 2;
    if (s->type == SHAPE_SPHERE) {
        const double R = s->radius_m;
        return 9.2 * 4 * PI * R * R * sl * sl / R;
    }
    const double R = s->radius_m, L = shape_volume_m3(s) / (PI * R * R);
    return 9.2 * 2 * PI * R * L * sl * sl / R + 2 * 2 * PI * (R + 2 * rho) * 16 * rho * rho;
}

static void check_shape_convergence(const char *name, const abl_shape *s, const abl_grid *g)
{
    const double V = shape_volume_m3(s), Vv = grid_voxel_volume_m3(g);
    double *ref = dense_fractions(s, g, SHAPE_FRAC_MAX_DEPTH, NULL);
    double l1[6];
    printf("\n  %s: depth, |sum f V - V|/V, bound/V, sum|f - f(depth 7)| V/V:", name);
    for (int d = 0; d <= 5; d++) {
        double *x = dense_fractions(s, g, d, NULL);
        const double err = fabs(dense_sum(x, g->n) * Vv - V), bound = fraction_bound(s, g, d);
        l1[d] = 0;
        for (size_t i = 0; i < g->n; i++) l1[d] += fabs(x[i] - ref[i]);
        l1[d] *= Vv / V;
        printf("\n    %d  %.2e  %.2e  %.2e", d, err / V, bound / V, l1[d]);
        /* the guaranteed bound of shape.h, against the analytic volume */
        CU_ASSERT(err <= bound);
        free(x);
    }
    /* The bound falls as s^2, 4x per level; the sag-corrected planes do better (~8x, the
     * signed leaf errors cancel). Require at least the bound's rate between the levels where
     * the difference to depth 7 is still far above depth 7's own error (~3e-9 extrapolating
     * the measured 8x per level from depth 5's 2e-8). */
    for (int d = 1; d <= 4; d++) CU_ASSERT(l1[d - 1] / l1[d] >= 4.0);
    /* at the default depth: per-voxel errors summed 1.7e-6 (sphere) / 1.3e-7 (cylinder) of the
     * volume (measured, VERIFICATION.md); 1e-5 leaves 6x for other offsets, and a depth rule one
     * level shallower (1.7e-5 for the sphere) fails it */
    const int dd = shape_fraction_depth(s, g);
    double *x = dense_fractions(s, g, -1, NULL);
    double e = 0;
    for (size_t i = 0; i < g->n; i++) e += fabs(x[i] - ref[i]);
    e *= Vv / V;
    printf("\n    default depth %d: sum|f - f(7)| V/V = %.2e", dd, e);
    CU_ASSERT(e < 1e-5);
    free(x);
    free(ref);
}

static void test_fraction_accuracy(void)
{
    /* sphere r = 5 mm at h = 1 mm, centre off the grid's symmetry points */
    const double off[3] = {0.31, 0.17, 0.43};
    abl_grid g = cube_grid(14, 1.0, off);
    abl_shape sp = {.type = SHAPE_SPHERE, .centre_m = {0, 0, 0},
                    .radii_m = {5e-3, 5e-3, 5e-3}, .radius_m = 5e-3};
    check_shape_convergence("sphere r 5 mm, h 1 mm", &sp, &g);
    /* oblique needle: 1.5 mm radius, 17 mm long, axis 30 degrees from z in the x-z plane,
     * through an arbitrary point */
    const double c[3] = {0.2e-3, -0.35e-3, 0.1e-3}, L = 17e-3, th = PI / 6;
    abl_shape cy = {.type = SHAPE_CYLINDER, .radius_m = 1.5e-3};
    for (int d = 0; d < 3; d++) {
        double u = d == 0 ? sin(th) : (d == 2 ? cos(th) : 0);
        cy.a_m[d] = c[d] - 0.5 * L * u;
        cy.b_m[d] = c[d] + 0.5 * L * u;
    }
    abl_grid g2 = cube_grid(22, 1.0, off);
    check_shape_convergence("cylinder r 1.5 mm, 30 deg, h 1 mm", &cy, &g2);
    /* ellipsoid: total volume at the default depth (exact classification, scaled sphere) */
    abl_shape el = {.type = SHAPE_ELLIPSOID, .centre_m = {0.1e-3, 0, 0},
                    .radii_m = {6e-3, 3e-3, 4e-3}};
    abl_grid g3 = cube_grid(16, 1.0, off);
    double *x = dense_fractions(&el, &g3, -1, NULL);
    double rel = dense_sum(x, g3.n) * 1e-9 / shape_volume_m3(&el) - 1;
    printf("\n  ellipsoid 6x3x4 mm, h 1 mm: sum f V / V - 1 = %.2e", rel);
    /* bound: scaled sphere, leaf sides s_d / r_d, s_max^3/s_min = (1/3)^3/(1/6) / 2^(2 depth)
     * -> 28 x 0.222 / 2^(2 depth) relative */
    CU_ASSERT(fabs(rel) <= 28 * (8.0 / 27.0 * 6.0 / 8.0) / ldexp(1.0, 2 * shape_fraction_depth(&el, &g3)));
    CU_ASSERT(fabs(rel) < 1e-5); /* measured ~1e-8; 1e-5 = the sphere's per-voxel tolerance */
    free(x);
}

/* Structure: a voxel is listed with fraction exactly 1 iff it lies inside (every voxel whose
 * corners are all inside a convex shape), every voxel whose centre is inside is listed (the
 * fractions' support contains the centre rule's), the fractions of a sphere centred on a voxel
 * centre are mirror-symmetric, and a box gives exact products of overlaps. */
static void test_fraction_structure(void)
{
    const double off0[3] = {0, 0, 0};
    abl_grid g = cube_grid(15, 1.0, off0);
    abl_shape sp = {.type = SHAPE_SPHERE, .centre_m = {0, 0, 0},
                    .radii_m = {4.3e-3, 4.3e-3, 4.3e-3}, .radius_m = 4.3e-3};
    double *x = dense_fractions(&sp, &g, -1, NULL);
    size_t *idx = NULL, cnt = 0;
    abl_error err = {0};
    CU_ASSERT_FATAL(shape_voxels(&sp, &g, &idx, &cnt, &err) == ABL_OK);
    for (size_t i = 0; i < cnt; i++) CU_ASSERT(x[idx[i]] > 0);
    free(idx);
    int asym = 0, wrong_one = 0;
    for (int k = 0; k < 15; k++)
        for (int j = 0; j < 15; j++)
            for (int i = 0; i < 15; i++) {
                double f = x[ABL_IDX(&g, i, j, k)];
                /* mirror and axis permutation: exact, the computation is symmetric up to the
                 * order of floating-point sums, so 1e-13 */
                if (fabs(f - x[ABL_IDX(&g, 14 - i, j, k)]) > 1e-13 ||
                    fabs(f - x[ABL_IDX(&g, j, i, k)]) > 1e-13 ||
                    fabs(f - x[ABL_IDX(&g, k, j, i)]) > 1e-13)
                    asym++;
                double far2 = 0;
                for (int d = 0; d < 3; d++) {
                    double c = ((d == 0 ? i : d == 1 ? j : k) - 7) * 1e-3;
                    double m = fmax(fabs(c - 0.5e-3), fabs(c + 0.5e-3));
                    far2 += m * m;
                }
                if ((far2 <= 4.3e-3 * 4.3e-3) != (f == 1.0)) wrong_one++;
            }
    CU_ASSERT(asym == 0);
    CU_ASSERT(wrong_one == 0);
    free(x);

    /* the same lists, bitwise, on 1 and on 3 threads (z-planes in parallel, concatenated in
     * order); an oblique cylinder, so that planes carry unequal work */
    abl_shape cy = {.type = SHAPE_CYLINDER, .a_m = {-5e-3, -3e-3, -6e-3},
                    .b_m = {4e-3, 2.5e-3, 6.5e-3}, .radius_m = 1.3e-3};
    const int nthr = omp_get_max_threads();
    size_t *i1 = NULL, *i3 = NULL, c1 = 0, c3 = 0;
    double *f1 = NULL, *f3 = NULL;
    omp_set_num_threads(1);
    CU_ASSERT_FATAL(shape_fractions(&cy, &g, &i1, &f1, &c1, &err) == ABL_OK);
    omp_set_num_threads(3);
    CU_ASSERT_FATAL(shape_fractions(&cy, &g, &i3, &f3, &c3, &err) == ABL_OK);
    omp_set_num_threads(nthr);
    CU_ASSERT_FATAL(c1 == c3 && c1 > 0);
    CU_ASSERT(memcmp(i1, i3, c1 * sizeof *i1) == 0 && memcmp(f1, f3, c1 * sizeof *f1) == 0);
    free(i1);
    free(i3);
    free(f1);
    free(f3);

    /* box: exact products of the 1-D overlaps. Voxel i spans [i - 5, i - 4] mm. x [-2, 2]: faces
     * on voxel faces, 4 whole voxels and no sliver layer beside them (the round-off of the
     * face positions is snapped); y [-2.2, 3]: 0.2 + 5 whole; z [-1.1, 3.9]: 0.1 + 4 + 0.9 */
    abl_grid gb = cube_grid(10, 1.0, off0);
    abl_shape bx = {.type = SHAPE_BOX, .a_m = {-2e-3, -2.2e-3, -1.1e-3}, .b_m = {2e-3, 3e-3, 3.9e-3}};
    size_t n = 0;
    double *xb = dense_fractions(&bx, &gb, -1, &n);
    CU_ASSERT(n == 4 * 6 * 6);
    CU_ASSERT_DOUBLE_EQUAL(dense_sum(xb, gb.n) * 1e-9, 104e-9, 1e-14 * 104e-9);
    CU_ASSERT_DOUBLE_EQUAL(xb[ABL_IDX(&gb, 3, 2, 3)], 1.0 * 0.2 * 0.1, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(xb[ABL_IDX(&gb, 3, 7, 8)], 1.0 * 1.0 * 0.9, 1e-12);
    CU_ASSERT(xb[ABL_IDX(&gb, 4, 4, 5)] == 1.0);
    CU_ASSERT(xb[ABL_IDX(&gb, 2, 4, 5)] == 0.0 && xb[ABL_IDX(&gb, 7, 4, 5)] == 0.0);
    free(xb);
}

/* ---- volumetric: power by fraction, exact total ------------------------------------------- */

/* 16^3 voxels of 1 mm centred on 0 (voxel faces at integer mm), one source */
static abl_sim *one_source_sim(abl_scenario **sc_out, const char *tissue, const char *src,
                               const char *extra)
{
    char yaml[2048];
    snprintf(yaml, sizeof yaml,
             "name: subvoxel\n"
             "grid: {dims: [16, 16, 16], spacing_mm: [1, 1, 1], background: %s}\n"
             "time: {duration_s: 1}\n"
             "%s"
             "sources:\n  - %s\n",
             tissue, extra ? extra : "", src);
    abl_scenario *sc = tu_scenario(yaml, NULL, 0);
    CU_ASSERT_FATAL(sc != NULL);
    *sc_out = sc;
    return tu_sim(sc);
}

/* A 10 W sphere of radius 3 mm shifted by 0, 1/4, 1/2, 3/4 voxel (and diagonally): the power
 * deposited is P to round-off (n ~ 200 terms of similar size: ~1e-15 relative; 1e-12 asked by
 * issue 15), and the grid's volume of the sphere, hence the mean power density, is the analytic
 * one within the fraction tolerance (1e-5 of the volume, test_fraction_accuracy) at every
 * offset. The centre rule's volume is printed for comparison. */
static void test_volumetric_power(void)
{
    const double shifts[5][3] = {{0, 0, 0}, {0.25, 0, 0}, {0.5, 0, 0}, {0.75, 0, 0},
                                 {0.5, 0.5, 0.5}};
    const double V = 4.0 / 3.0 * PI * 27e-9;
    printf("\n  shift (voxels): sum q V - P [W], grid volume / sphere volume - 1, centre rule:");
    for (int c = 0; c < 5; c++) {
        char src[256];
        snprintf(src, sizeof src,
                 "{type: volumetric, power_W: 10, shape: {type: sphere, center_mm: [%g, %g, %g], "
                 "radius_mm: 3}}",
                 shifts[c][0], shifts[c][1], shifts[c][2]);
        abl_scenario *sc;
        abl_sim *s = one_source_sim(&sc, "liver", src, NULL);
        abl_source_contrib q = tu_source_update(s, 0, 0.0);
        const double Vv = grid_voxel_volume_m3(&s->grid);
        double P = 0, qmax = 0;
        for (size_t i = 0; i < q.n_heat; i++) {
            P += q.heat_q_W_m3[i] * Vv;
            qmax = fmax(qmax, q.heat_q_W_m3[i]);
        }
        /* voxels wholly inside carry the largest q, P / (sum f V); its inverse times P is the
         * grid's volume of the sphere */
        const double Vgrid = 10.0 / qmax;
        size_t *idx = NULL, cnt = 0;
        abl_error err = {0};
        CU_ASSERT_FATAL(shape_voxels(&sc->sources[0].shape, &s->grid, &idx, &cnt, &err) == ABL_OK);
        free(idx);
        printf("\n    (%.2f %.2f %.2f): %+.2e  %+.2e  (centre rule %+.2e)", shifts[c][0],
               shifts[c][1], shifts[c][2], P - 10.0, Vgrid / V - 1, cnt * Vv / V - 1);
        CU_ASSERT(fabs(P - 10.0) <= 1e-12 * 10.0);
        CU_ASSERT(fabs(Vgrid / V - 1) < 1e-5);
        sim_destroy(s);
        scenario_free(sc);
    }
    /* a source smaller than a voxel (0.3 mm at a voxel corner: the centre rule finds no voxel
     * and refuses it) is spread over the 8 voxels it overlaps, equally by symmetry */
    abl_scenario *sc;
    abl_sim *s = one_source_sim(&sc, "liver",
                                "{type: volumetric, power_W: 1, shape: {type: sphere, "
                                "center_mm: [0, 0, 0], radius_mm: 0.3}}",
                                NULL);
    abl_source_contrib q = tu_source_update(s, 0, 0.0);
    CU_ASSERT_FATAL(q.n_heat == 8);
    double P = 0;
    for (size_t i = 0; i < 8; i++) {
        P += q.heat_q_W_m3[i] * 1e-9;
        CU_ASSERT(fabs(q.heat_q_W_m3[i] / q.heat_q_W_m3[0] - 1) < 1e-12);
    }
    CU_ASSERT(fabs(P - 1.0) <= 1e-12);
    sim_destroy(s);
    scenario_free(sc);
}

/* ---- fixed_temperature: held set and surface coupling ----------------------------------- */

/* Distance [m] from point p along unit axis +-e_a to the surface of the sphere (c, R), p outside
 * and the axis line through p hitting it in that direction (the smaller root). */
static double sphere_hit(const double p[3], const double c[3], double R, int a, int sgn)
{
    double d[3] = {0, 0, 0};
    d[a] = sgn;
    const double w[3] = {p[0] - c[0], p[1] - c[1], p[2] - c[2]};
    const double b = w[0] * d[0] + w[1] * d[1] + w[2] * d[2];
    const double cc = w[0] * w[0] + w[1] * w[1] + w[2] * w[2] - R * R;
    const double disc = b * b - cc;
    return disc < 0 ? NAN : -b - sqrt(disc);
}

/* The held set is every voxel whose centre is inside the shape or which is at least half
 * inside (pin_frac NULL: the source decides); every free face neighbour of a held voxel is
 * coupled to the true surface (basic.c): G = k dG, dG = sum over its faces to held voxels of
 * (1/theta - 1)/h^2, theta the fraction of the spacing from its centre to the surface. Checked
 * against the sphere's surface computed here by a quadratic (the source bisects), and an
 * aligned box (theta = 1/2 on every face: dG = 1/h^2 per face). */
static void test_fixed_fractions(void)
{
    abl_scenario *sc;
    const double cen[3] = {0.3e-3, -0.2e-3, 0.1e-3}, R = 3e-3;
    abl_sim *s = one_source_sim(&sc, "liver",
                                "{type: fixed_temperature, temperature_C: 60, "
                                "shape: {type: sphere, center_mm: [0.3, -0.2, 0.1], radius_mm: 3}}",
                                NULL);
    const abl_grid *g = &s->grid;
    abl_source_contrib c = tu_source_update(s, 0, 0.0);
    CU_ASSERT(c.pin_frac == NULL);
    size_t *idx = NULL, cnt = 0;
    double *f = NULL;
    abl_error err = {0};
    CU_ASSERT_FATAL(shape_fractions(&sc->sources[0].shape, g, &idx, &f, &cnt, &err) == ABL_OK);
    uint8_t *held = calloc(g->n, 1);
    size_t nheld = 0;
    for (size_t i = 0; i < cnt; i++) {
        double x[3];
        grid_voxel_centre_m(g, (int)(idx[i] % g->sy), (int)(idx[i] / g->sy % (size_t)g->ny),
                            (int)(idx[i] / g->sz), x);
        const double r2 = (x[0] - cen[0]) * (x[0] - cen[0]) + (x[1] - cen[1]) * (x[1] - cen[1]) +
                          (x[2] - cen[2]) * (x[2] - cen[2]);
        if (r2 < R * R || f[i] >= 0.5) held[idx[i]] = 1, nheld++;
    }
    CU_ASSERT_FATAL(c.n_pin == nheld);
    int mismatch = 0;
    for (size_t i = 0; i < c.n_pin; i++)
        mismatch += !held[c.pin_idx[i]] || c.pin_T_C[i] != 60.0 || (i && c.pin_idx[i] <= c.pin_idx[i - 1]);
    CU_ASSERT(mismatch == 0);
    /* the couplings, recomputed: every free voxel with a held face neighbour, ascending */
    size_t ncpl = 0, bad = 0;
    double worst = 0;
    for (size_t v = 0; v < g->n; v++) {
        if (held[v]) continue;
        const int ijk[3] = {(int)(v % g->sy), (int)(v / g->sy % (size_t)g->ny), (int)(v / g->sz)};
        const int dims[3] = {g->nx, g->ny, g->nz};
        const size_t st[3] = {1, g->sy, g->sz};
        double x[3], dG = 0;
        int faces = 0;
        grid_voxel_centre_m(g, ijk[0], ijk[1], ijk[2], x);
        for (int a = 0; a < 3; a++)
            for (int sg = -1; sg <= 1; sg += 2) {
                const int nb = ijk[a] + sg;
                if (nb < 0 || nb >= dims[a] || !held[sg < 0 ? v - st[a] : v + st[a]]) continue;
                const double theta = sphere_hit(x, cen, R, a, sg) / g->h_m[a];
                dG += (1 / theta - 1) / (g->h_m[a] * g->h_m[a]);
                faces++;
            }
        if (!faces) continue;
        /* the entry for v: heat_idx ascending (the first n_pin .. : coupling entries only) */
        size_t q = 0;
        while (q < c.n_heat && c.heat_idx[q] != v) q++;
        if (q == c.n_heat) {
            bad++;
            continue;
        }
        ncpl++;
        const double G = c.heat_G_W_m3K[q - c.heat_G_first];
        const double k = 0.5191; /* configs/tissues.yaml liver (constant k) */
        /* bisection to 2^-48 of the spacing: relative 1e-9 of dG is far above that */
        worst = fmax(worst, fabs(G / (k * dG) - 1));
        /* the heat pulls towards the held value: q = G (60 - T) */
        if (fabs(c.heat_q_W_m3[q] - G * (60.0 - s->T[v])) > 1e-9 * fabs(c.heat_q_W_m3[q])) bad++;
    }
    printf("\n  sphere r 3 mm off the grid: %zu held, %zu coupled, largest |G / (k dG) - 1| %.1e",
           nheld, ncpl, worst);
    CU_ASSERT(bad == 0);
    CU_ASSERT(ncpl == c.n_heat && c.heat_G_first == 0);
    CU_ASSERT(worst < 1e-9);
    free(held);
    free(idx);
    free(f);
    sim_destroy(s);
    scenario_free(sc);

    /* aligned box (faces on voxel faces, grid faces at integer mm): its 3 x 3 x 2 voxels held
     * exactly through 20 steps of heating by perfusion from a 37 C surrounding; each coupled
     * voxel's surface is half a spacing away on each face it shares with the box */
    s = one_source_sim(&sc, "liver",
                       "{type: fixed_temperature, temperature_C: 60, "
                       "shape: {type: box, min_mm: [-2, -1, 0], max_mm: [1, 2, 2]}}",
                       NULL);
    c = tu_source_update(s, 0, 0.0);
    CU_ASSERT(c.pin_frac == NULL);
    CU_ASSERT_FATAL(c.n_pin == 3 * 3 * 2);
    /* 2 (3 x 3) + 2 (3 x 2) + 2 (3 x 2) face neighbours, one face each */
    CU_ASSERT_EQUAL(c.n_heat, 42);
    int off_G = 0;
    for (size_t q = 0; q < c.n_heat; q++)
        off_G += fabs(c.heat_G_W_m3K[q] / (0.5191 * 1e6) - 1) > 1e-12;
    CU_ASSERT_EQUAL(off_G, 0);
    CU_ASSERT_FATAL(sim_step(s, 20, &err) == ABL_OK);
    int off = 0;
    for (size_t i = 0; i < c.n_pin; i++) off += s->T[c.pin_idx[i]] != 60.0;
    CU_ASSERT(off == 0);
    /* and the voxel beside the box has warmed (the pins act) */
    CU_ASSERT(s->T[ABL_IDX(&s->grid, 5, 8, 9)] > 37.5);
    sim_destroy(s);
    scenario_free(sc);
}

/* The coupling conducts as the stencil does: with frozen tissue at the coupled voxel and the
 * held value below the solidus, k is the frozen one (review of session 20: k at 37 C made the
 * correction about 3x too small next to ice). An aligned box (theta = 1/2 on each face): G =
 * k_f (2 - 1)/h^2 per face. */
static void test_fixed_frozen_coupling(void)
{
    abl_scenario *sc;
    abl_sim *s = one_source_sim(&sc, "liver",
                                "{type: fixed_temperature, temperature_C: -150, "
                                "shape: {type: box, min_mm: [-2, -1, 0], max_mm: [1, 2, 2]}}",
                                "physics: {freezing: on}\n");
    for (size_t c = 0; c < s->grid.n; c++) s->T[c] = -50.0;
    abl_source_contrib c = tu_source_update(s, 0, 0.0);
    CU_ASSERT_FATAL(c.n_heat == 42);
    const int m = s->material[c.heat_idx[0]];
    CU_ASSERT_FATAL(!isnan(s->k_frozen[m]) && s->k_frozen[m] > 1.5 * s->k37[m]);
    int off = 0;
    for (size_t q = 0; q < c.n_heat; q++)
        off += fabs(c.heat_G_W_m3K[q] / (s->k_frozen[m] * 1e6) - 1) > 1e-12;
    printf("\n  frozen neighbours: G / (k_frozen / h^2) - 1 within 1e-12 at %zu of %zu",
           c.n_heat - (size_t)off, c.n_heat);
    CU_ASSERT_EQUAL(off, 0);
    sim_destroy(s);
    scenario_free(sc);
}

/* A held shape that contains no voxel centre and fills no voxel by half would hold nothing
 * (before session 20 it was accepted and did nothing: a 0.6 mm wide cylinder held at 90 C left
 * the tissue at 37 C): refused at set-up, naming the source. One that contains a voxel centre,
 * however thin, holds that voxel. */
static void test_fixed_partial_contract(void)
{
    char yaml[1024];
    snprintf(yaml, sizeof yaml,
             "name: thin\n"
             "grid: {dims: [16, 16, 16], spacing_mm: [1, 1, 1], background: liver}\n"
             "time: {duration_s: 1}\n"
             "sources:\n  - {name: thin, type: fixed_temperature, temperature_C: 90, "
             "shape: {type: box, min_mm: [-1, -1, -1], max_mm: [-0.7, 1, 1]}}\n");
    abl_scenario *sc = tu_scenario(yaml, NULL, 0);
    CU_ASSERT_FATAL(sc != NULL);
    abl_sim *s = NULL;
    abl_error err = {0};
    CU_ASSERT(sim_create(sc, &s, &err) != ABL_OK && s == NULL);
    CU_ASSERT(strstr(err.msg, "'thin'") && strstr(err.msg, "would hold nothing") &&
              strstr(err.msg, "0.30 of a voxel"));
    scenario_free(sc);
    /* 0.2 mm thick but through the voxel centres at x = -0.5 mm: those 4 voxels are held */
    sc = NULL;
    abl_sim *t = one_source_sim(&sc, "liver",
                                "{type: fixed_temperature, temperature_C: 90, "
                                "shape: {type: box, min_mm: [-0.6, -1, -1], max_mm: [-0.4, 1, 1]}}",
                                NULL);
    abl_source_contrib c = tu_source_update(t, 0, 0.0);
    CU_ASSERT(c.n_pin == 4 && c.pin_frac == NULL);
    sim_destroy(t);
    scenario_free(sc);
}

/* ---- acceptance (issue 15): 10 W in a 5 mm sphere, perfused liver, 300 s ------------------- */

typedef struct {
    double h_mm, err_K, T_K, P_rel, t_s, lap_K_m2;
} sphere_run;

/* Liver from configs/tissues.yaml (k 0.5191, rho c 1078.75 x 3540.2, w 0.01547 1/s with blood
 * 1050 x 3617, Q_met 1.071e4 W/m^3), T = 37 C initially and at the walls, explicit scheme with
 * the automatic dt (its O(dt) error is < 0.02 of the total here: halving and quartering
 * dt_safety moved the 1 mm error by 0.002 / 0.003 K), vaporisation off (the centre reaches
 * ~200 C; the exact solution is that of the linear problem, constant properties, no latent
 * heat).
 *
 * Domain and reference: the cube [-D, D]^3 with walls at 37 C, D ~ 12 mm (centred: n = 2
 * round(12/h) + 1 voxels, walls half a voxel beyond, D = 13 / 12.5 / 12.25 mm at 2 / 1 / 0.5 mm; corner: the
 * octant [0, 12 mm]^3 with insulated faces through the centre, the same discrete problem by
 * symmetry since those faces are voxel faces, with 10 W / 8). The reference is exact for that
 * cube: 37 + cube_uniform_theta (metabolic heat, 0.168 K at the centre at D = 12.5 mm vs
 * 0.180 K unbounded) + cube_sphere_theta (the source and its images; the first six change the
 * centre by -0.08 K). So the walls enter the error only through their own discretisation:
 * against walls at 20 mm the measured errors move by <= 0.03 / 0.008 / 0.002 K at 2 / 1 /
 * 0.5 mm.
 *
 * Where r = 0 is a voxel corner, the error is measured at the eight voxels around it, at
 * r = sqrt(3) h / 2, against the exact value there: the voxel value approximates the point value
 * at its centre to O(h^2), while trilinear interpolation to r = 0 would add
 * h^2 lap(theta)(0) / 8 ~ -9.2 / -2.3 / -0.57 K at 2 / 1 / 0.5 mm (perfusion included), an
 * error of the interpolant, not of the solver. Equivalently T(0) is estimated as
 * T_voxel + theta(0) - theta(sqrt(3) h / 2). */
static sphere_run sphere_source_run(double h_mm, int corner, double D)
{
    sphere_run out = {h_mm, NAN, NAN, NAN, NAN, NAN};
    const double a = 5e-3;
    char yaml[2048];
    int n;
    if (corner) {
        n = (int)lround(D / h_mm);
        snprintf(yaml, sizeof yaml,
                 "name: subvoxel_sphere_corner\n"
                 "grid: {dims: [%d, %d, %d], spacing_mm: [%.17g, %.17g, %.17g],\n"
                 "       origin_mm: [%.17g, %.17g, %.17g], background: liver}\n"
                 "boundary:\n"
                 "  default: {type: fixed_temperature, temperature_C: 37}\n"
                 "  x_min: {type: insulated}\n  y_min: {type: insulated}\n"
                 "  z_min: {type: insulated}\n"
                 "physics: {vaporisation: off}\n"
                 "time: {duration_s: 300}\n"
                 "sources:\n"
                 "  - {type: volumetric, power_W: 1.25,\n"
                 "     shape: {type: sphere, center_mm: [0, 0, 0], radius_mm: 5}}\n",
                 n, n, n, h_mm, h_mm, h_mm, 0.5 * h_mm, 0.5 * h_mm, 0.5 * h_mm);
    } else {
        n = 2 * (int)lround(D / h_mm) + 1;
        snprintf(yaml, sizeof yaml,
                 "name: subvoxel_sphere_centre\n"
                 "grid: {dims: [%d, %d, %d], spacing_mm: [%.17g, %.17g, %.17g], background: liver}\n"
                 "boundary: {default: {type: fixed_temperature, temperature_C: 37}}\n"
                 "physics: {vaporisation: off}\n"
                 "time: {duration_s: 300}\n"
                 "sources:\n"
                 "  - {type: volumetric, power_W: 10,\n"
                 "     shape: {type: sphere, center_mm: [0, 0, 0], radius_mm: 5}}\n",
                 n, n, n, h_mm, h_mm, h_mm);
    }
    abl_scenario *sc = tu_scenario(yaml, NULL, 0);
    if (!sc) return out;
    abl_sim *s = tu_sim(sc);
    const abl_grid *g = &s->grid;
    const double P = corner ? 1.25 : 10.0;
    abl_source_contrib c = tu_source_update(s, 0, 0.0);
    double Pdep = 0;
    for (size_t i = 0; i < c.n_heat; i++) Pdep += c.heat_q_W_m3[i] * grid_voxel_volume_m3(g);
    out.P_rel = fabs(Pdep - P) / P;
    abl_error err = {0};
    /* to the end time exactly: the snapshot breakpoints shorten some steps, so a count of
     * 300 / dt steps would stop short of 300 s */
    abl_status st = sim_step(s, s->nsteps_total - s->step, &err);
    if (st) printf("\n  sim_step: %s", err.msg);
    CU_ASSERT_FATAL(st == ABL_OK);
    const int ic = corner ? 0 : (n - 1) / 2;
    double x[3];
    grid_voxel_centre_m(g, ic, ic, ic, x);
    const int m = s->material[ABL_IDX(g, ic, ic, ic)];
    const double rhoc = 1.0 / s->inv_rhoc[m], W = s->perf_W[m], k = s->k37[m];
    const double Q = 10.0 / (4.0 / 3.0 * PI * a * a * a), t = s->t_s;
    /* walls at half a voxel beyond the outer centres */
    const double Dw = (corner ? n : 0.5 * n) * h_mm * 1e-3;
    const double exact = 37 + cube_uniform_theta(s->q_met[m], rhoc, k, W, Dw, t) +
                         cube_sphere_theta(Q, rhoc, k, W, a, Dw, x, t);
    out.T_K = s->T[ABL_IDX(g, ic, ic, ic)];
    out.err_K = out.T_K - exact;
    out.t_s = t;
    /* laplacian of the exact (unbounded) theta at r = 0 from the equation at a 1 ms step:
     * k lap theta = rho c dtheta/dt + W theta - Q */
    const double z[3] = {0, 0, 0};
    double th1 = cube_sphere_theta(Q, rhoc, k, W, a, 1.0, z, t),
           th0 = cube_sphere_theta(Q, rhoc, k, W, a, 1.0, z, t - 1e-3);
    out.lap_K_m2 = (rhoc * (th1 - th0) / 1e-3 + W * th1 - Q) / k;
    sim_destroy(s);
    scenario_free(sc);
    return out;
}

/* Issue 15 asks |T(0) error| <= 0.3 / 0.1 / 0.05 K at 2 / 1 / 0.5 mm, monotone in h, observed
 * order >= 1.8, power exact to 1e-12, for both alignments. The order, monotonicity and power
 * are asserted as asked. The thresholds are not reachable with ablasim's operator: the
 * leading error at the centre is h^2 [lap theta(0) / 24 + operator term], the first from
 * representing Q by its voxel averages (exactly what volume fractions give; the modified
 * equation of k Lap_h T - W T + <Q>_voxel with <Q> = Q + h^2/24 lap Q, and int G lap Q =
 * (W theta(0) - Q)/k for the Green's function G of the perfused operator), -0.77 K/mm^2 here;
 * the second from the 7-point stencil's truncation error h^2/12 sum_d d^4 T, +0.45 K/mm^2
 * (measured: with the point-consistent source <Q> - h^2/24 Lap_h <Q> the 1 mm error is
 * +0.451 K). Their sum, -0.32 K/mm^2, is the measured constant (-0.33 / -0.32 at 1 / 0.5 mm,
 * -0.35 at 2 mm, pre-asymptotic). The asserted bound is 0.4 K/mm^2 x h^2 (1.6 / 0.4 / 0.1 K): a
 * centre-rule source fails it at 2 mm (-21.9 K, issue 15) and its order check everywhere, and
 * the source-averaging term alone, computed here from the exact solution, must stay within a
 * factor 3 of the measured error (a defect in the fractions or the normalisation would show as
 * an O(h) term or a different constant). docs/VERIFICATION.md records the figures. */
static void test_sphere_source_acceptance(void)
{
    const double hs[3] = {2.0, 1.0, 0.5}, issue_tol[3] = {0.3, 0.1, 0.05}, C = 0.4;
    for (int corner = 0; corner < 2; corner++) {
        sphere_run r[3];
        for (int i = 0; i < 3; i++) r[i] = sphere_source_run(hs[i], corner, 12.0);
        printf("\n  sphere source, centre on a voxel %s:", corner ? "corner" : "centre");
        for (int i = 0; i < 3; i++) {
            const double avg_term = hs[i] * hs[i] * 1e-6 / 24 * r[i].lap_K_m2;
            printf("\n    h %.1f mm: T %.4f C at t %.2f s, error %+.4f K (%s issue 15's %.2f K; "
                   "h^2 lap/24 %+.3f K), |sum q V - P|/P %.1e",
                   hs[i], r[i].T_K, r[i].t_s, r[i].err_K,
                   fabs(r[i].err_K) <= issue_tol[i] ? "within" : "above", issue_tol[i], avg_term,
                   r[i].P_rel);
            CU_ASSERT(fabs(r[i].err_K) <= C * hs[i] * hs[i]);
            CU_ASSERT(fabs(avg_term) <= 3 * fabs(r[i].err_K) && fabs(r[i].err_K) <= fabs(avg_term));
            CU_ASSERT(r[i].P_rel <= 1e-12);
            if (i) {
                const double p = log(fabs(r[i - 1].err_K) / fabs(r[i].err_K)) / log(2.0);
                printf(", order %.2f", p);
                CU_ASSERT(fabs(r[i].err_K) < fabs(r[i - 1].err_K));
                CU_ASSERT(p >= 1.8);
            }
        }
    }
}

void register_subvoxel_tests(void)
{
    CU_pSuite s = CU_add_suite("subvoxel", NULL, NULL);
    CU_add_test(s, "exact sphere-source reference vs case C", test_reference_solution);
    CU_add_test(s, "fractions: volume, bound, convergence with depth", test_fraction_accuracy);
    CU_add_test(s, "fractions: inside = 1, symmetry, exact box", test_fraction_structure);
    CU_add_test(s, "volumetric: power by fraction, exact total", test_volumetric_power);
    CU_add_test(s, "fixed_temperature: held set, surface coupling", test_fixed_fractions);
    CU_add_test(s, "fixed_temperature: a shape holding no voxel refused", test_fixed_partial_contract);
    CU_add_test(s, "fixed_temperature: coupling with frozen neighbours", test_fixed_frozen_coupling);
    CU_add_test(s, "10 W sphere in liver vs exact, 2/1/0.5 mm, centre and corner",
                test_sphere_source_acceptance);
}
