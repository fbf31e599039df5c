/* test_margin.c - CUnit suite for the margin module: the distance transform against brute
 * force, spheres with analytic margins and volumes, the tie rule, the minimal-margin location,
 * criteria and critical structures on synthetic arrays, result files with and without the
 * optional damage fields, and the 'ablasim margin' command line. */
#include <hdf5.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ablasim/fileguard.h"
#include "ablasim/margin.h"
#include "ablasim/mesh.h"
#include "ablasim/nifti.h"
#include "testutil.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* ---- helpers ----------------------------------------------------------------------------- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static double urand(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}

/* Brute force: squared distance from every voxel to every target (and to the nearest voxel
 * beyond a face when outside voxels are targets: one axis step out of the grid). */
static void brute_edt_sq(const int d[3], const double h[3], const uint8_t *m, unsigned flags,
                         double *out)
{
    const bool to_nz = flags & ABL_EDT_TO_NONZERO;
    const size_t n = (size_t)d[0] * d[1] * d[2];
    for (size_t v = 0; v < n; v++) {
        const int vi = (int)(v % d[0]), vj = (int)(v / d[0] % d[1]), vk = (int)(v / d[0] / d[1]);
        double best = INFINITY;
        for (size_t t = 0; t < n; t++) {
            if ((m[t] != 0) != to_nz) continue;
            const int ti = (int)(t % d[0]), tj = (int)(t / d[0] % d[1]),
                      tk = (int)(t / d[0] / d[1]);
            const double dx = (vi - ti) * h[0], dy = (vj - tj) * h[1], dz = (vk - tk) * h[2];
            const double d2 = dx * dx + dy * dy + dz * dz;
            if (d2 < best) best = d2;
        }
        if (flags & ABL_EDT_OUTSIDE_TARGET) {
            const int idx[3] = {vi, vj, vk};
            for (int a = 0; a < 3; a++) {
                int steps = idx[a] + 1 < d[a] - idx[a] ? idx[a] + 1 : d[a] - idx[a];
                double d2 = (steps * h[a]) * (steps * h[a]);
                if (d2 < best) best = d2;
            }
        }
        out[v] = best;
    }
}

/* Voxel centre of (i,j,k) on a grid centred on the origin. */
static void centre(const int d[3], const double h[3], int i, int j, int k, double x[3])
{
    x[0] = (i - 0.5 * (d[0] - 1)) * h[0];
    x[1] = (j - 0.5 * (d[1] - 1)) * h[1];
    x[2] = (k - 0.5 * (d[2] - 1)) * h[2];
}

/* mask |= voxels whose centre is within radius of c (value val). */
static size_t add_sphere(uint8_t *m, const int d[3], const double h[3], const double c[3],
                         double radius, uint8_t val)
{
    size_t cnt = 0;
    for (int k = 0; k < d[2]; k++)
        for (int j = 0; j < d[1]; j++)
            for (int i = 0; i < d[0]; i++) {
                double x[3];
                centre(d, h, i, j, k, x);
                double r2 = 0;
                for (int a = 0; a < 3; a++)
                    r2 += (x[a] - c[a]) * (x[a] - c[a]);
                if (r2 <= radius * radius) {
                    m[((size_t)k * d[1] + j) * d[0] + i] = val;
                    cnt++;
                }
            }
    return cnt;
}

static void grid_affine(const int d[3], const double h[3], double A[3][4])
{
    double o[3];
    centre(d, h, 0, 0, 0, o);
    margin_affine_from_grid(h, o, A);
}

/* Margin input on a grid centred on the origin. */
static abl_margin_input make_input(const int d[3], const double h[3], const uint8_t *t,
                                   const uint8_t *z, double crit)
{
    abl_margin_input in = {.tumour = t, .zone = z, .criterion_mm = crit};
    memcpy(in.dims, d, sizeof in.dims);
    memcpy(in.spacing_mm, h, sizeof in.spacing_mm);
    grid_affine(d, h, in.affine);
    return in;
}

static double ball_mL(double r_mm)
{
    return 4.0 / 3.0 * M_PI * r_mm * r_mm * r_mm * 1e-3;
}

/* Staircase tolerance of a voxel count inside a smooth closed surface of radius rho: counting
 * lattice points in a ball of radius R (in voxels) errs by O(R^{3/2}) (classical bound of the
 * Gauss sphere problem; the best known exponent is 21/16), so allow R^{3/2} voxels per curved
 * surface. For R = 20 voxels that is 89 voxels; observed errors are 2-5x smaller. */
static double staircase_mL(double rho_mm, double h_mm)
{
    double R = rho_mm / h_mm;
    return pow(R, 1.5) * h_mm * h_mm * h_mm * 1e-3;
}

/* ---- distance transform ------------------------------------------------------------------ */

static void check_edt_case(const int d[3], const double h[3], const uint8_t *m, unsigned flags,
                           double *worst)
{
    const size_t n = (size_t)d[0] * d[1] * d[2];
    double *ref = malloc(n * sizeof *ref), *got = malloc(n * sizeof *got);
    double *got2 = malloc(n * sizeof *got2);
    abl_error err = {0};
    brute_edt_sq(d, h, m, flags, ref);
    CU_ASSERT_EQUAL_FATAL(edt_compute(d, h, m, flags, got, &err), ABL_OK);
    CU_ASSERT_EQUAL_FATAL(edt_compute(d, h, m, flags | ABL_EDT_SQUARED, got2, &err), ABL_OK);
    size_t bad = 0;
    for (size_t v = 0; v < n; v++) {
        if (isinf(ref[v])) {
            bad += !(isinf(got[v]) && isinf(got2[v]));
            continue;
        }
        double e1 = fabs(got[v] - sqrt(ref[v]));
        double e2 = fabs(got2[v] - ref[v]);
        if (e1 > *worst) *worst = e1;
        bad += !(e1 < 1e-9) || !(e2 < 1e-9 * (1 + ref[v]));
    }
    CU_ASSERT_EQUAL(bad, 0);
    free(ref);
    free(got);
    free(got2);
}

/* Random masks, anisotropic spacing, densities from a lone target to nearly all targets,
 * both target polarities, with and without outside targets. */
static void test_edt_brute_force(void)
{
    const int d[3] = {17, 13, 11};
    const double h[3] = {0.7, 1.3, 2.1};
    const size_t n = (size_t)d[0] * d[1] * d[2];
    const double dens[] = {0.0005, 0.01, 0.05, 0.3, 0.7, 0.97};
    uint8_t *m = malloc(n);
    double worst = 0;
    int cases = 0;
    for (size_t di = 0; di < sizeof dens / sizeof dens[0]; di++) {
        for (size_t v = 0; v < n; v++)
            m[v] = urand() < dens[di];
        for (unsigned f = 0; f < 4; f++, cases++)
            check_edt_case(d, h, m, f, &worst);
    }
    /* a lone target in a corner, none at all, every voxel a target */
    memset(m, 0, n);
    m[n - 1] = 1;
    check_edt_case(d, h, m, ABL_EDT_TO_NONZERO, &worst);
    check_edt_case(d, h, m, 0, &worst);
    memset(m, 1, n);
    check_edt_case(d, h, m, 0, &worst);
    check_edt_case(d, h, m, ABL_EDT_OUTSIDE_TARGET, &worst);
    /* degenerate shapes: lines and planes */
    const int shapes[4][3] = {{1, 13, 1}, {17, 1, 11}, {23, 1, 1}, {1, 1, 1}};
    for (int s = 0; s < 4; s++) {
        size_t ns = (size_t)shapes[s][0] * shapes[s][1] * shapes[s][2];
        for (size_t v = 0; v < ns; v++)
            m[v] = urand() < 0.2;
        check_edt_case(shapes[s], h, m, ABL_EDT_TO_NONZERO, &worst);
        check_edt_case(shapes[s], h, m, ABL_EDT_OUTSIDE_TARGET, &worst);
    }
    printf("\n  EDT vs brute force: %d random masks 17x13x11 @ 0.7/1.3/2.1 mm + edge cases, "
           "max |diff| %.2e mm",
           cases, worst);
    free(m);
}

/* The 1-D lower envelope on arbitrary (non-binary) heights, with gaps and outside sites. */
static void test_edt_line(void)
{
    enum { N = 40 };
    double f[N], d[N];
    double fv[N + 2], z[N + 3];
    int v[N + 2];
    size_t bad = 0;
    for (int rep = 0; rep < 200; rep++) {
        const int n = 1 + (int)(urand() * N);
        const double w2 = 0.1 + 5 * urand();
        const bool out = rep % 2;
        for (int q = 0; q < n; q++)
            f[q] = urand() < 0.3 ? INFINITY : 50 * urand();
        edt_line_sq(f, d, n, w2, out, v, fv, z);
        for (int p = 0; p < n; p++) {
            double best = INFINITY;
            for (int q = out ? -1 : 0; q <= (out ? n : n - 1); q++) {
                double fq = q < 0 || q >= n ? 0 : f[q];
                double c = w2 * (p - q) * (p - q) + fq;
                if (c < best) best = c;
            }
            bad += isinf(best) ? !isinf(d[p]) : !(fabs(d[p] - best) <= 1e-12 * (1 + best));
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
}

/* Lines are independent: any thread count gives the same bits. */
static void test_edt_threads(void)
{
    const int d[3] = {70, 45, 33};
    const double h[3] = {0.5, 0.8, 1.1};
    const size_t n = (size_t)d[0] * d[1] * d[2];
    uint8_t *m = malloc(n);
    double *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    for (size_t v = 0; v < n; v++)
        m[v] = urand() < 0.02;
    abl_error err = {0};
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    CU_ASSERT_EQUAL(edt_compute(d, h, m, ABL_EDT_TO_NONZERO, a, &err), ABL_OK);
    omp_set_num_threads(saved > 1 ? saved : 3);
    CU_ASSERT_EQUAL(edt_compute(d, h, m, ABL_EDT_TO_NONZERO, b, &err), ABL_OK);
    omp_set_num_threads(saved);
    CU_ASSERT(memcmp(a, b, n * sizeof *a) == 0);
    free(m);
    free(a);
    free(b);
}

static void test_edt_bad_input(void)
{
    const int bad_dims[3] = {0, 4, 4}, dims[3] = {4, 4, 4};
    const double h[3] = {1, 1, 1}, bad_h[3] = {1, 0, 1};
    uint8_t m[64] = {0};
    double out[64];
    abl_error err = {0};
    CU_ASSERT_EQUAL(edt_compute(bad_dims, h, m, 0, out, &err), ABL_EINVAL);
    CU_ASSERT_EQUAL(edt_compute(dims, bad_h, m, 0, out, &err), ABL_EINVAL);
    CU_ASSERT(strstr(err.msg, "spacing") != NULL);
}

/* ---- margin on spheres ------------------------------------------------------------------- */

typedef struct {
    int d[3];
    double h[3];
    size_t n;
    uint8_t *tumour, *zone;
    abl_margin_input in;
} sphere_case;

static void sphere_setup(sphere_case *s, double half_mm, double h, const double ct[3], double r,
                         const double cz[3], double R, double crit)
{
    for (int a = 0; a < 3; a++) {
        s->h[a] = h;
        s->d[a] = 2 * (int)ceil(half_mm / h) + 1;
    }
    s->n = (size_t)s->d[0] * s->d[1] * s->d[2];
    s->tumour = calloc(s->n, 1);
    s->zone = calloc(s->n, 1);
    add_sphere(s->tumour, s->d, s->h, ct, r, 1);
    if (R > 0) add_sphere(s->zone, s->d, s->h, cz, R, 1);
    memset(&s->in, 0, sizeof s->in);
    memcpy(s->in.dims, s->d, sizeof s->d);
    memcpy(s->in.spacing_mm, s->h, sizeof s->h);
    grid_affine(s->d, s->h, s->in.affine);
    s->in.tumour = s->tumour;
    s->in.zone = s->zone;
    s->in.criterion_mm = crit;
}

static void sphere_free(sphere_case *s)
{
    free(s->tumour);
    free(s->zone);
}

/* Concentric spheres, R - r = 4 mm and 6 mm at 0.5 mm: margin R - r within one voxel diagonal,
 * FAIL then PASS at 5 mm; no residual; surface fraction 0 then 1; shell volume analytic. */
static void test_sphere_margin_verdict(void)
{
    const double c[3] = {0.1, 0.2, 0.15}; /* a generic position, off the lattice */
    const double r = 5.0, crit = 5.0, h = 0.5;
    const double gaps[2] = {4.0, 6.0};
    for (int g = 0; g < 2; g++) {
        const double R = r + gaps[g];
        sphere_case s;
        sphere_setup(&s, R + 3, h, c, r, c, R, crit);
        abl_margin_result m;
        abl_error err = {0};
        CU_ASSERT_EQUAL_FATAL(margin_compute(&s.in, &m, &err), ABL_OK);
        const double diag = sqrt(3.0) * h;
        CU_ASSERT_DOUBLE_EQUAL(m.resolution_mm, diag, 1e-12);
        CU_ASSERT(fabs(m.min_margin_mm - gaps[g]) <= diag);
        CU_ASSERT(m.min_margin_mm >= gaps[g] - 1e-9); /* centre distances never underestimate */
        CU_ASSERT_EQUAL(m.pass, g == 1);
        CU_ASSERT_EQUAL(m.n_residual, 0);
        CU_ASSERT_DOUBLE_EQUAL(m.surface_fraction_ok, g == 1 ? 1.0 : 0.0, 1e-12);
        CU_ASSERT(!m.zone_touches_border);
        /* volumes against the analytic spheres */
        /* The shell is measured from tumour voxel CENTRES, and the outermost centres lie
         * inside the sphere: under a tangent plane, the first centre is met at the depth
         * delta where the cap holds one voxel, pi r delta^2 = h^3. So the shell's outer
         * surface is at r + crit - delta; allow half of that correction on top of the
         * staircase terms. */
        const double delta = h * sqrt(h / (M_PI * r));
        const double corr = 0.5 * 4 * M_PI * (r + crit) * (r + crit) * delta * 1e-3;
        const double tol_t = staircase_mL(r, h);
        const double shell = ball_mL(r + crit - delta) - ball_mL(r);
        const double tol_s = staircase_mL(r + crit, h) + staircase_mL(r, h) + corr;
        const double unabl = g == 1 ? 0.0 : ball_mL(r + crit - delta) - ball_mL(R);
        const double tol_u = g == 1 ? 0.0 : staircase_mL(r + crit, h) + staircase_mL(R, h) + corr;
        CU_ASSERT(fabs(m.tumour_mL - ball_mL(r)) <= tol_t);
        CU_ASSERT(fabs(m.shell_mL - shell) <= tol_s);
        CU_ASSERT(fabs(m.shell_unablated_mL - unabl) <= tol_u);
        printf("\n  R - r = %g mm: margin %.4f mm (resolution %.3f), %s; tumour %.4f mL (exact "
               "%.4f), shell %.4f mL (exact %.4f, tol %.4f), unablated shell %.4f mL (exact "
               "%.4f)",
               gaps[g], m.min_margin_mm, diag, m.pass ? "PASS" : "FAIL", m.tumour_mL, ball_mL(r),
               m.shell_mL, shell, tol_s, m.shell_unablated_mL, unabl);
        /* the margin map: NaN outside the tumour, >= 0 inside */
        size_t nan_out = 0, pos_in = 0;
        for (size_t v = 0; v < s.n; v++) {
            if (s.tumour[v])
                pos_in += m.margin_mm[v] > 0;
            else
                nan_out += isnan(m.margin_mm[v]);
        }
        CU_ASSERT_EQUAL(pos_in, m.n_tumour);
        CU_ASSERT_EQUAL(nan_out, s.n - m.n_tumour);
        margin_result_free(&m);
        sphere_free(&s);
    }
}

/* Zone smaller than the tumour (R = 4 inside r = 6): negative margin about -(r - R), the
 * residual volume is the analytic difference, every shell voxel is unablated; and an empty
 * zone gives -inf and FAIL. */
static void test_sphere_residual(void)
{
    const double c[3] = {-0.13, 0.07, 0.21};
    const double r = 6.0, R = 4.0, h = 0.5;
    sphere_case s;
    sphere_setup(&s, r + 7, h, c, r, c, R, 5.0);
    abl_margin_result m;
    abl_error err = {0};
    CU_ASSERT_EQUAL_FATAL(margin_compute(&s.in, &m, &err), ABL_OK);
    const double diag = sqrt(3.0) * h;
    CU_ASSERT(fabs(m.min_margin_mm + (r - R)) <= diag);
    CU_ASSERT(!m.pass);
    const double resid = ball_mL(r) - ball_mL(R);
    CU_ASSERT(fabs(m.residual_mL - resid) <= staircase_mL(r, h) + staircase_mL(R, h));
    CU_ASSERT_EQUAL(m.n_shell, m.n_shell_unablated);
    CU_ASSERT_DOUBLE_EQUAL(m.surface_fraction_ok, 0.0, 1e-12);
    printf("\n  zone inside tumour: margin %.4f mm (expected about %.1f), residual %.4f mL "
           "(exact %.4f)",
           m.min_margin_mm, -(r - R), m.residual_mL, resid);
    margin_result_free(&m);

    memset(s.zone, 0, s.n);
    CU_ASSERT_EQUAL_FATAL(margin_compute(&s.in, &m, &err), ABL_OK);
    CU_ASSERT(isinf(m.min_margin_mm) && m.min_margin_mm < 0);
    CU_ASSERT(!m.pass);
    CU_ASSERT_EQUAL(m.n_residual, m.n_tumour);
    margin_result_free(&m);

    memset(s.tumour, 0, s.n);
    CU_ASSERT_EQUAL(margin_compute(&s.in, &m, &err), ABL_EINVAL);
    CU_ASSERT(strstr(err.msg, "empty") != NULL);
    sphere_free(&s);
}

/* Brute-force reference of the minimal signed margin and its (lowest-index) voxel. */
static void brute_min_margin(const sphere_case *s, double *best, size_t *at)
{
    *best = INFINITY;
    *at = (size_t)-1;
    for (size_t v = 0; v < s->n; v++) {
        if (!s->tumour[v]) continue;
        const bool abl = s->zone[v] != 0;
        const int vi = (int)(v % s->d[0]), vj = (int)(v / s->d[0] % s->d[1]),
                  vk = (int)(v / s->d[0] / s->d[1]);
        double d2 = INFINITY;
        for (size_t t = 0; t < s->n; t++) {
            if ((s->zone[t] != 0) == abl) continue;
            const int ti = (int)(t % s->d[0]), tj = (int)(t / s->d[0] % s->d[1]),
                      tk = (int)(t / s->d[0] / s->d[1]);
            double dx = (vi - ti) * s->h[0], dy = (vj - tj) * s->h[1], dz = (vk - tk) * s->h[2];
            double e = dx * dx + dy * dy + dz * dz;
            if (e < d2) d2 = e;
        }
        double mv = abl ? sqrt(d2) : -sqrt(d2);
        if (mv < *best - 1e-12) {
            *best = mv;
            *at = v;
        }
    }
}

/* Off-centre zones. (a) A zone sphere shifted by 2.5 mm along +x: the margin is thinnest on
 * the -x side (R - r - s); the reported value and voxel equal the brute-force discrete answer
 * (lowest index among ties) and lie on that side. (b) A sharp minimum: a fully covering zone
 * with one non-ablated voxel (a vessel's heat sink) off-axis: the minimal margin sits at the
 * tumour surface point nearest to it, within one voxel diagonal. */
static void test_off_centre_location(void)
{
    const double h = 0.5, r = 4.0, R = 8.0, shift = 2.5;
    const double ct[3] = {0, 0, 0}, cz[3] = {shift, 0, 0};
    sphere_case s;
    sphere_setup(&s, R + shift + 2, h, ct, r, cz, R, 5.0);
    abl_margin_result m;
    abl_error err = {0};
    CU_ASSERT_EQUAL_FATAL(margin_compute(&s.in, &m, &err), ABL_OK);
    double ref;
    size_t at;
    brute_min_margin(&s, &ref, &at);
    CU_ASSERT(fabs(m.min_margin_mm - ref) < 1e-9);
    CU_ASSERT_EQUAL(m.min_index, at);
    CU_ASSERT(fabs(m.min_margin_mm - (R - r - shift)) <= sqrt(3.0) * h);
    double x[3];
    centre(s.d, s.h, m.min_ijk[0], m.min_ijk[1], m.min_ijk[2], x);
    for (int a = 0; a < 3; a++)
        CU_ASSERT_DOUBLE_EQUAL(m.min_location_mm[a], x[a], 1e-12);
    CU_ASSERT(x[0] < -0.7 * r); /* on the thin side */
    printf("\n  shifted zone: margin %.4f mm (analytic %.2f) at (%.2f, %.2f, %.2f) mm, equal to "
           "brute force",
           m.min_margin_mm, R - r - shift, x[0], x[1], x[2]);
    margin_result_free(&m);
    sphere_free(&s);

    /* (b) */
    const double cold[3] = {-2.1, 4.3, 3.2}; /* 5.76 mm from the centre */
    sphere_setup(&s, 12, h, ct, r, ct, 10.0, 5.0);
    const int ci = (int)lround(cold[0] / h + 0.5 * (s.d[0] - 1));
    const int cj = (int)lround(cold[1] / h + 0.5 * (s.d[1] - 1));
    const int ck = (int)lround(cold[2] / h + 0.5 * (s.d[2] - 1));
    double p[3];
    centre(s.d, s.h, ci, cj, ck, p);
    s.zone[((size_t)ck * s.d[1] + cj) * s.d[0] + ci] = 0;
    CU_ASSERT_EQUAL_FATAL(margin_compute(&s.in, &m, &err), ABL_OK);
    const double pn = sqrt(p[0] * p[0] + p[1] * p[1] + p[2] * p[2]);
    double e2 = 0;
    for (int a = 0; a < 3; a++) {
        double expect = r * p[a] / pn;
        e2 += (m.min_location_mm[a] - expect) * (m.min_location_mm[a] - expect);
    }
    CU_ASSERT(sqrt(e2) <= sqrt(3.0) * h);
    CU_ASSERT(fabs(m.min_margin_mm - (pn - r)) <= sqrt(3.0) * h);
    CU_ASSERT(!m.pass);
    printf("\n  cold spot at %.2f mm from the centre: margin %.3f mm (analytic %.3f), location "
           "%.3f mm from the analytic point",
           pn, m.min_margin_mm, pn - r, sqrt(e2));
    margin_result_free(&m);
    sphere_free(&s);
}

/* A margin exactly equal to the criterion fails (the strict rule, docs/MARGIN.md), also when
 * rounding makes the distance 3.4999999999999996 instead of 3.5 (spacing 0.7 in double), or
 * 4.00000006 instead of 4 (spacing 0.8 stored as float32, as NIfTI-1 does). */
static void test_tie_rule(void)
{
    const int d[3] = {21, 21, 21};
    const double nominal[3] = {1, 0.7, 0.8};
    const double hs[3][3] = {{1, 1, 1}, {0.7, 0.7, 0.7}, {0.8f, 0.8f, 0.8f}};
    const size_t n = 21 * 21 * 21;
    uint8_t *t = calloc(n, 1), *z = calloc(n, 1);
    t[(10 * 21 + 10) * 21 + 10] = 1;
    for (int k = 6; k <= 14; k++)
        for (int j = 6; j <= 14; j++)
            for (int i = 6; i <= 14; i++)
                z[((size_t)k * 21 + j) * 21 + i] = 1;
    for (int c = 0; c < 3; c++) {
        abl_margin_input in = make_input(d, hs[c], t, z, 5 * nominal[c]);
        abl_margin_result m;
        abl_error err = {0};
        CU_ASSERT_EQUAL_FATAL(margin_compute(&in, &m, &err), ABL_OK);
        CU_ASSERT(fabs(m.min_margin_mm - 5 * nominal[c]) < 1e-6);
        CU_ASSERT(!m.pass);
        CU_ASSERT_EQUAL(m.n_surface, 1);
        CU_ASSERT_EQUAL(m.n_surface_ok, 0);
        CU_ASSERT(m.n_shell_unablated > 0); /* the voxel 5 away is in the shell, not ablated */
        margin_result_free(&m);
        in.criterion_mm = 5 * nominal[c] - 2 * ABL_MARGIN_TIE_MM;
        CU_ASSERT_EQUAL_FATAL(margin_compute(&in, &m, &err), ABL_OK);
        CU_ASSERT(m.pass);
        CU_ASSERT_EQUAL(m.n_surface_ok, 1);
        CU_ASSERT_EQUAL(m.n_shell_unablated, 0);
        margin_result_free(&m);
    }
    free(t);
    free(z);
}

/* Consistency on random blobs: with the whole tumour ablated and the zone inside the grid,
 * PASS <=> no unablated shell voxel; and the surface list matches the 6-neighbour rule. */
static void test_random_consistency(void)
{
    const int d[3] = {40, 34, 26};
    const double h[3] = {0.6, 0.9, 1.2}; /* half-widths 11.7, 14.9, 15 mm */
    const size_t n = (size_t)d[0] * d[1] * d[2];
    int pass_seen = 0, fail_seen = 0;
    for (int rep = 0; rep < 24; rep++) {
        uint8_t *t = calloc(n, 1), *z = calloc(n, 1);
        double c[3] = {urand() - 0.5, urand() - 0.5, urand() - 0.5};
        add_sphere(t, d, h, c, 2 + 2 * urand(), 1);
        for (int b = 0; b < 4; b++) {
            double cb[3] = {c[0] + 3 * (urand() - 0.5), c[1] + 3 * (urand() - 0.5),
                            c[2] + 3 * (urand() - 0.5)};
            add_sphere(z, d, h, cb, 4 + 4.5 * urand(), 1); /* stays inside the grid */
        }
        for (size_t v = 0; v < n; v++)
            if (t[v]) z[v] = 1;
        abl_margin_input in = make_input(d, h, t, z, 1 + 4 * urand());
        abl_margin_result m;
        abl_error err = {0};
        CU_ASSERT_EQUAL_FATAL(margin_compute(&in, &m, &err), ABL_OK);
        CU_ASSERT(!m.zone_touches_border);
        CU_ASSERT_EQUAL(m.pass, m.n_shell_unablated == 0);
        if (m.pass) CU_ASSERT_EQUAL(m.n_surface_ok, m.n_surface);
        size_t ns = 0;
        for (int k = 1; k < d[2] - 1; k++)
            for (int j = 1; j < d[1] - 1; j++)
                for (int i = 1; i < d[0] - 1; i++) {
                    size_t v = ((size_t)k * d[1] + j) * d[0] + i, sy = d[0],
                           sz = (size_t)d[0] * d[1];
                    ns += t[v] && (!t[v - 1] || !t[v + 1] || !t[v - sy] || !t[v + sy] ||
                                   !t[v - sz] || !t[v + sz]);
                }
        CU_ASSERT_EQUAL(ns, m.n_surface);
        pass_seen += m.pass;
        fail_seen += !m.pass;
        margin_result_free(&m);
        free(t);
        free(z);
    }
    CU_ASSERT(pass_seen > 0 && fail_seen > 0);
}

/* A zone cut by the grid: beyond the faces counts as not ablated, flagged. */
static void test_zone_at_border(void)
{
    const int d[3] = {12, 12, 12};
    const double h[3] = {1, 1, 1};
    const size_t n = 12 * 12 * 12;
    uint8_t *t = calloc(n, 1), *z = malloc(n);
    memset(z, 1, n);
    t[(6 * 12 + 6) * 12 + 2] = 1; /* 3 voxels from the x = 0 face */
    abl_margin_input in = make_input(d, h, t, z, 5);
    abl_margin_result m;
    abl_error err = {0};
    CU_ASSERT_EQUAL_FATAL(margin_compute(&in, &m, &err), ABL_OK);
    CU_ASSERT(m.zone_touches_border);
    CU_ASSERT_DOUBLE_EQUAL(m.min_margin_mm, 3.0, 1e-12);
    CU_ASSERT(!m.pass);
    margin_result_free(&m);
    free(t);
    free(z);
}

/* ---- criteria and critical structures ---------------------------------------------------- */

static void test_zone_criteria(void)
{
    const double f[6] = {54.9, 55.0, 80, NAN, -40, -41};
    uint8_t m[6];
    CU_ASSERT_EQUAL(zone_mask_compute(ABL_ZONE_TMAX, f, 6, 55.0, m), 2);
    CU_ASSERT(!m[0] && m[1] && m[2] && !m[3] && !m[4] && !m[5]);
    CU_ASSERT_EQUAL(zone_mask_compute(ABL_ZONE_TMIN, f, 6, -40.0, m), 2);
    CU_ASSERT(!m[0] && !m[3] && m[4] && m[5]);
    const double omega[4] = {0.5, 1.0, 7.3, NAN}, cem[4] = {239.9, 240, 1e6, 0};
    CU_ASSERT_EQUAL(zone_mask_compute(ABL_ZONE_OMEGA, omega, 4,
                                      zone_criterion_info(ABL_ZONE_OMEGA)->default_threshold, m),
                    2);
    CU_ASSERT(!m[0] && m[1] && m[2] && !m[3]);
    CU_ASSERT_EQUAL(zone_mask_compute(ABL_ZONE_CEM43, cem, 4,
                                      zone_criterion_info(ABL_ZONE_CEM43)->default_threshold, m),
                    2);
    CU_ASSERT(!m[0] && m[1] && m[2] && !m[3]);
    /* +Inf and -Inf (a run that blew up) are in no zone, whichever the direction */
    const double inf[2] = {INFINITY, -INFINITY};
    CU_ASSERT_EQUAL(zone_mask_compute(ABL_ZONE_TMAX, inf, 2, 55.0, m), 0);
    CU_ASSERT_EQUAL(zone_mask_compute(ABL_ZONE_TMIN, inf, 2, -40.0, m), 0);
    CU_ASSERT_EQUAL(zone_mask_compute(ABL_ZONE_OMEGA, inf, 2, 1.0, m), 0);
    abl_zone_criterion c;
    abl_error err = {0};
    CU_ASSERT_EQUAL(zone_criterion_parse("cem43", &c, &err), ABL_OK);
    CU_ASSERT_EQUAL(c, ABL_ZONE_CEM43);
    CU_ASSERT_EQUAL(zone_criterion_parse("t_max", &c, &err), ABL_EINVAL);
    CU_ASSERT(strstr(err.msg, "tmax, tmin, omega, cem43") != NULL);
    CU_ASSERT_DOUBLE_EQUAL(zone_criterion_info(ABL_ZONE_TMIN)->default_threshold, -40, 0);
}

static void test_critical_parse(void)
{
    abl_critical_spec s;
    abl_error err = {0};
    CU_ASSERT_EQUAL(critical_spec_parse("nerve:45:10", &s, &err), ABL_OK);
    CU_ASSERT_STRING_EQUAL(s.tissue, "nerve");
    CU_ASSERT_DOUBLE_EQUAL(s.tmax_below_C, 45, 0);
    CU_ASSERT_DOUBLE_EQUAL(s.tmin_above_C, 10, 0);
    CU_ASSERT_EQUAL(critical_spec_parse("spinal_cord:43", &s, &err), ABL_OK);
    CU_ASSERT(isnan(s.tmin_above_C));
    CU_ASSERT_EQUAL(critical_spec_parse("nerve::-5.5", &s, &err), ABL_OK);
    CU_ASSERT(isnan(s.tmax_below_C) && s.tmin_above_C == -5.5);
    const char *bad[] = {"nerve",         "nerve:",    "nerve::",     ":45",       "nerve:hot",
                         "nerve:45:10:3", "ne rve:45", "nerve:10:45", "nerve:45C", "nerve:1e999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CU_ASSERT_EQUAL(critical_spec_parse(bad[i], &s, &err), ABL_EINVAL);
        CU_ASSERT(strstr(err.msg, "--critical") != NULL);
    }
}

/* A nerve (label 2) of 10 voxels: 3 reach 47 C (one of them inside the 55 C zone), one cools
 * to 5 C; the time maps give the longest exposure; without maps it is "not recorded". */
static void test_critical_report(void)
{
    enum { N = 40 };
    uint8_t lab[N], zone[N], member[256] = {0};
    double tmax[N], tmin[N];
    float ta[N], tb[N];
    for (int c = 0; c < N; c++) {
        lab[c] = c < 10 ? 2 : 1;
        tmax[c] = 40 + 0.1 * c;
        tmin[c] = 36;
        zone[c] = c >= 30;
        ta[c] = tb[c] = 0;
    }
    tmax[3] = 47;
    tmax[4] = 45; /* exactly at the limit: crossed (T_max must stay below 45) */
    tmax[5] = 56;
    zone[5] = 1;
    tmin[7] = 5;
    ta[3] = 12.5f;
    ta[5] = 30.0f;
    ta[20] = 99.0f; /* not the nerve */
    tb[7] = 4.0f;
    member[2] = 1;
    abl_critical_spec spec;
    abl_error err = {0};
    CU_ASSERT_EQUAL_FATAL(critical_spec_parse("nerve:45:10", &spec, &err), ABL_OK);
    abl_critical_report r;
    critical_evaluate(&spec, N, lab, member, tmax, tmin, ta, tb, zone, 0.001, &r);
    CU_ASSERT_EQUAL(r.n_voxels, 10);
    CU_ASSERT_DOUBLE_EQUAL(r.volume_mL, 0.01, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(r.tmax_C, 56, 0);
    CU_ASSERT_DOUBLE_EQUAL(r.tmin_C, 5, 0);
    CU_ASSERT_EQUAL(r.n_hot, 3);
    CU_ASSERT_EQUAL(r.n_cold, 1);
    CU_ASSERT(r.time_above_recorded && r.time_below_recorded);
    CU_ASSERT_DOUBLE_EQUAL(r.time_above_max_s, 30, 0);
    CU_ASSERT_DOUBLE_EQUAL(r.time_below_max_s, 4, 0);
    CU_ASSERT_EQUAL(r.n_damaged, 1);
    CU_ASSERT(r.crossed);
    critical_evaluate(&spec, N, lab, member, tmax, tmin, NULL, NULL, zone, 0.001, &r);
    CU_ASSERT(!r.time_above_recorded && isnan(r.time_above_max_s));
    /* within limits */
    tmax[3] = tmax[4] = tmax[5] = 44.9;
    tmin[7] = 10.1;
    zone[5] = 0;
    critical_evaluate(&spec, N, lab, member, tmax, tmin, NULL, NULL, zone, 0.001, &r);
    CU_ASSERT(!r.crossed);
    CU_ASSERT_EQUAL(r.n_damaged, 0);
    /* a structure with no voxel */
    memset(member, 0, sizeof member);
    member[9] = 1;
    critical_evaluate(&spec, N, lab, member, tmax, tmin, NULL, NULL, zone, 0.001, &r);
    CU_ASSERT_EQUAL(r.n_voxels, 0);
    CU_ASSERT(isnan(r.tmax_C) && !r.crossed);
    /* unknown temperatures (incomplete input): a NaN T_max in the nerve cannot show the hot
     * limit was kept, so the structure counts as crossed, and the extremes skip it */
    memset(member, 0, sizeof member);
    member[2] = 1;
    tmax[6] = NAN;
    tmin[8] = -INFINITY;
    critical_evaluate(&spec, N, lab, member, tmax, tmin, NULL, NULL, zone, 0.001, &r);
    CU_ASSERT_EQUAL(r.n_nonfinite, 2);
    CU_ASSERT_EQUAL(r.n_hot, 0);
    CU_ASSERT_EQUAL(r.n_cold, 0);
    CU_ASSERT(r.crossed);
    CU_ASSERT_DOUBLE_EQUAL(r.tmax_C, 44.9, 0); /* the finite maximum */
    CU_ASSERT_DOUBLE_EQUAL(r.tmin_C, 10.1, 0);
    /* a hot-only limit ignores an unknown T_min (it is not a limit of that structure) */
    abl_critical_spec hot_only;
    CU_ASSERT_EQUAL_FATAL(critical_spec_parse("nerve:45", &hot_only, &err), ABL_OK);
    tmax[6] = 41;
    critical_evaluate(&hot_only, N, lab, member, tmax, tmin, NULL, NULL, zone, 0.001, &r);
    CU_ASSERT_EQUAL(r.n_nonfinite, 0);
    CU_ASSERT(!r.crossed);
}

/* ---- result files ------------------------------------------------------------------------ */

static void h5_field(hid_t f, const char *name, hid_t mtype, const int d[3], const void *data)
{
    hsize_t dims[3] = {(hsize_t)d[2], (hsize_t)d[1], (hsize_t)d[0]};
    hid_t sp = H5Screate_simple(3, dims, NULL);
    hid_t ds = H5Dcreate2(f, name, mtype == H5T_NATIVE_UINT8 ? H5T_STD_U8LE : H5T_IEEE_F64LE, sp,
                          H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    CU_ASSERT(ds >= 0 && H5Dwrite(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0);
    H5Dclose(ds);
    H5Sclose(sp);
}

/* A result file written by hand, with or without the damage fields (results of ablasim
 * before the Arrhenius/CEM43 maps lack them). */
/* needle: 0 none; 1 a cooled needle along z (a 2x2-voxel column held at 20 C, so never >= 55 C)
 * without, 2 with the /fields/applicator_mask the driver writes for it. */
static void write_synthetic_result_n(const char *path, bool damage_fields, int needle)
{
    const int d[3] = {24, 24, 24};
    const double h[3] = {1, 1, 1}, o[3] = {-11.5, -11.5, -11.5};
    const size_t n = 24 * 24 * 24;
    uint8_t *lab = calloc(n, 1);
    double *tmax = malloc(n * sizeof *tmax), *tmin = malloc(n * sizeof *tmin);
    double *om = malloc(n * sizeof *om), *cem = malloc(n * sizeof *cem);
    const double c0[3] = {0, 0, 0};
    add_sphere(lab, d, h, c0, 4.0, 1); /* tumour = material 1 */
    for (int k = 0; k < 24; k++)
        for (int j = 0; j < 24; j++)
            for (int i = 0; i < 24; i++) {
                size_t v = ((size_t)k * 24 + j) * 24 + i;
                double x[3];
                centre(d, h, i, j, k, x);
                double rr = sqrt(x[0] * x[0] + x[1] * x[1] + x[2] * x[2]);
                tmax[v] = 37 + 60 * exp(-rr / 10.0); /* 55 C at r = 10 ln(60/18) = 12.0 mm */
                if (needle && fabs(x[0]) < 1 && fabs(x[1]) < 1) tmax[v] = 20.0;
                tmin[v] = 37;
                om[v] = rr <= 6.0 ? 2.0 : 0.1;  /* Omega zone: r <= 6 */
                cem[v] = rr <= 10.0 ? 1000 : 1; /* CEM43 zone: r <= 10 */
            }
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    H5Gclose(H5Gcreate2(f, "/grid", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    H5Gclose(H5Gcreate2(f, "/fields", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    h5_field(f, "/grid/labels", H5T_NATIVE_UINT8, d, lab);
    hid_t ds = H5Dopen2(f, "/grid/labels", H5P_DEFAULT);
    hsize_t three = 3;
    const char *an[2] = {"spacing_mm", "origin_mm"};
    const double *av[2] = {h, o};
    for (int a = 0; a < 2; a++) {
        hid_t sp = H5Screate_simple(1, &three, NULL);
        hid_t at = H5Acreate2(ds, an[a], H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
        H5Awrite(at, H5T_NATIVE_DOUBLE, av[a]);
        H5Aclose(at);
        H5Sclose(sp);
    }
    H5Dclose(ds);
    const char *names[2] = {"liver", "tumour"};
    hid_t st = H5Tcopy(H5T_C_S1);
    H5Tset_size(st, H5T_VARIABLE);
    hsize_t two = 2;
    hid_t sp = H5Screate_simple(1, &two, NULL);
    ds = H5Dcreate2(f, "/grid/material_names", st, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(ds, st, H5S_ALL, H5S_ALL, H5P_DEFAULT, names);
    H5Dclose(ds);
    H5Sclose(sp);
    H5Tclose(st);
    h5_field(f, "/fields/T_max_C", H5T_NATIVE_DOUBLE, d, tmax);
    h5_field(f, "/fields/T_min_C", H5T_NATIVE_DOUBLE, d, tmin);
    if (damage_fields) {
        h5_field(f, "/fields/damage_omega", H5T_NATIVE_DOUBLE, d, om);
        h5_field(f, "/fields/cem43_min", H5T_NATIVE_DOUBLE, d, cem);
    }
    /* a finished result, as output.c marks it last */
    long long one = 1;
    hid_t asp = H5Screate(H5S_SCALAR);
    hid_t ca = H5Acreate2(f, "complete", H5T_STD_I64LE, asp, H5P_DEFAULT, H5P_DEFAULT);
    CU_ASSERT(ca >= 0 && H5Awrite(ca, H5T_NATIVE_LLONG, &one) >= 0);
    H5Aclose(ca);
    H5Sclose(asp);
    if (needle == 2) {
        uint8_t *am = calloc(n, 1);
        for (int k = 0; k < 24; k++)
            for (int j = 0; j < 24; j++)
                for (int i = 0; i < 24; i++) {
                    double x[3];
                    centre(d, h, i, j, k, x);
                    am[((size_t)k * 24 + j) * 24 + i] = fabs(x[0]) < 1 && fabs(x[1]) < 1;
                }
        h5_field(f, "/fields/applicator_mask", H5T_NATIVE_UINT8, d, am);
        free(am);
    }
    H5Fclose(f);
    free(lab);
    free(tmax);
    free(tmin);
    free(om);
    free(cem);
}

static void write_synthetic_result(const char *path, bool damage_fields)
{
    write_synthetic_result_n(path, damage_fields, 0);
}

/* A cooled electrode through the tumour stays below 55 C: without the applicator mask its
 * voxels are "residual tumour" and the margin is negative; with the mask (as ablasim writes it)
 * they count as ablated (needle track) and the verdict is that of the surrounding zone
 * (margin ~8 mm as without a needle, within one voxel diagonal). */
static void test_applicator_mask(void)
{
    char path[700];
    snprintf(path, sizeof path, "%s/needle_result.h5", tu_tmpdir());
    abl_margin_opts o = {
        .result_path = path, .criterion = -1, .threshold = NAN, .criterion_mm = 5.0};
    abl_margin_report *rep = calloc(1, sizeof *rep);
    abl_error err = {0};
    write_synthetic_result_n(path, false, 1);
    CU_ASSERT_EQUAL_FATAL(margin_analyse_result(&o, rep, &err), ABL_OK);
    CU_ASSERT(!rep->m.pass);
    CU_ASSERT(rep->m.n_residual > 0);
    CU_ASSERT_DOUBLE_EQUAL(rep->applicator_mL, 0.0, 0.0);
    write_synthetic_result_n(path, false, 2);
    CU_ASSERT_EQUAL_FATAL(margin_analyse_result(&o, rep, &err), ABL_OK);
    CU_ASSERT(rep->m.pass);
    CU_ASSERT_EQUAL(rep->m.n_residual, 0);
    CU_ASSERT(fabs(rep->m.min_margin_mm - 8.04) <= sqrt(3.0));
    CU_ASSERT_DOUBLE_EQUAL(rep->applicator_mL, 4 * 24 * 1e-3, 1e-12); /* 2x2 column, 24 high */
    /* the track is in the verdict's zone only: the T_min <= -40 C zone of this warm result is
     * empty (it held the 96 track voxels until session 28, a cold zone in a heat run) */
    CU_ASSERT_FATAL(rep->zone_available[ABL_ZONE_TMIN]);
    CU_ASSERT_EQUAL(rep->zone_voxels[ABL_ZONE_TMIN], 0);
    CU_ASSERT(rep->zone_voxels[ABL_ZONE_TMAX] > 0);
    free(rep);
}

/* Criteria from a result file: all four zones when the fields exist, the verdict's zone as
 * asked; a clear error for omega/cem43 when they do not; the margin file and JSON exist. */
static void test_result_file_criteria(void)
{
    char path[700], out[700], json[700];
    snprintf(path, sizeof path, "%s/synthetic_result.h5", tu_tmpdir());
    snprintf(out, sizeof out, "%s/synthetic_result.margin.h5", tu_tmpdir());
    snprintf(json, sizeof json, "%s/synthetic_result.margin.json", tu_tmpdir());
    write_synthetic_result(path, true);
    abl_margin_opts o = {
        .result_path = path, .criterion = -1, .threshold = NAN, .criterion_mm = 5.0};
    abl_margin_report *rep = calloc(1, sizeof *rep);
    abl_error err = {0};
    CU_ASSERT_EQUAL_FATAL(margin_analyse_result(&o, rep, &err), ABL_OK);
    struct stat sb;
    CU_ASSERT(stat(out, &sb) == 0 && stat(json, &sb) == 0);
    for (int c = 0; c < ABL_ZONE_NCRIT; c++)
        CU_ASSERT(rep->zone_available[c]);
    CU_ASSERT(rep->criterion_auto && rep->criterion == ABL_ZONE_TMAX);
    /* tumour r = 4, 55 C zone r = 12.04: margin about 8 mm -> PASS */
    CU_ASSERT(rep->m.pass);
    CU_ASSERT(fabs(rep->m.min_margin_mm - 8.04) <= sqrt(3.0));
    /* the Omega zone is the voxels with centres r <= 6 mm: counted here as the file was
     * written (audit, session 24: a +-40 % window stood in for an exact count) */
    {
        const int d[3] = {24, 24, 24};
        const double h[3] = {1, 1, 1};
        size_t n_omega = 0;
        for (int k = 0; k < 24; k++)
            for (int j = 0; j < 24; j++)
                for (int i = 0; i < 24; i++) {
                    double x[3];
                    centre(d, h, i, j, k, x);
                    n_omega += sqrt(x[0] * x[0] + x[1] * x[1] + x[2] * x[2]) <= 6.0;
                }
        CU_ASSERT_EQUAL(rep->zone_voxels[ABL_ZONE_OMEGA], n_omega);
        CU_ASSERT_DOUBLE_EQUAL(rep->zone_mL[ABL_ZONE_OMEGA], n_omega * 1e-3, 1e-12); /* 1 mm^3 */
    }
    CU_ASSERT_EQUAL(rep->zone_voxels[ABL_ZONE_TMIN], 0);
    /* omega: zone r = 6 around r = 4 -> about 2 mm -> FAIL */
    o.criterion = ABL_ZONE_OMEGA;
    CU_ASSERT_EQUAL_FATAL(margin_analyse_result(&o, rep, &err), ABL_OK);
    CU_ASSERT(!rep->m.pass);
    CU_ASSERT(fabs(rep->m.min_margin_mm - 2.0) <= sqrt(3.0));
    /* cem43 with an explicit threshold: 1000 min >= 500 keeps the zone r <= 10 */
    o.criterion = ABL_ZONE_CEM43;
    o.threshold = 500;
    CU_ASSERT_EQUAL_FATAL(margin_analyse_result(&o, rep, &err), ABL_OK);
    CU_ASSERT(rep->m.pass);
    CU_ASSERT(fabs(rep->m.min_margin_mm - 6.0) <= sqrt(3.0));
    CU_ASSERT_DOUBLE_EQUAL(rep->zone_threshold[ABL_ZONE_CEM43], 500, 0);
    /* the automatic criterion with an explicit threshold (--threshold-C 70 alone): the
     * threshold belongs to the criterion chosen (tmax here), whose zone is recomputed with it:
     * the same verdict, margin and zone as --criterion tmax --threshold-C 70, and a smaller
     * zone than the default 55 C one (else the threshold was ignored) */
    const double mL55 = rep->zone_mL[ABL_ZONE_TMAX];
    o.criterion = -1;
    o.threshold = 70;
    CU_ASSERT_EQUAL_FATAL(margin_analyse_result(&o, rep, &err), ABL_OK);
    abl_margin_report *ref = calloc(1, sizeof *ref);
    CU_ASSERT_FATAL(ref != NULL);
    abl_margin_opts o2 = o;
    o2.criterion = ABL_ZONE_TMAX;
    CU_ASSERT_EQUAL_FATAL(margin_analyse_result(&o2, ref, &err), ABL_OK);
    CU_ASSERT(rep->criterion_auto && rep->criterion == ABL_ZONE_TMAX);
    CU_ASSERT_DOUBLE_EQUAL(rep->threshold, 70, 0);
    CU_ASSERT_EQUAL(rep->zone_voxels[ABL_ZONE_TMAX], ref->zone_voxels[ABL_ZONE_TMAX]);
    CU_ASSERT_DOUBLE_EQUAL(rep->m.min_margin_mm, ref->m.min_margin_mm, 0);
    CU_ASSERT_EQUAL(rep->m.pass, ref->m.pass);
    CU_ASSERT(rep->zone_mL[ABL_ZONE_TMAX] > 0 && rep->zone_mL[ABL_ZONE_TMAX] < mL55);
    free(ref);

    /* the same file without the damage fields */
    write_synthetic_result(path, false);
    o.threshold = NAN;
    o.criterion = ABL_ZONE_OMEGA;
    CU_ASSERT_EQUAL(margin_analyse_result(&o, rep, &err), ABL_EINVAL);
    CU_ASSERT(strstr(err.msg, "/fields/damage_omega") != NULL);
    o.criterion = ABL_ZONE_CEM43;
    CU_ASSERT_EQUAL(margin_analyse_result(&o, rep, &err), ABL_EINVAL);
    CU_ASSERT(strstr(err.msg, "/fields/cem43_min") != NULL);
    o.criterion = -1;
    CU_ASSERT_EQUAL(margin_analyse_result(&o, rep, &err), ABL_OK);
    CU_ASSERT(!rep->zone_available[ABL_ZONE_OMEGA] && !rep->zone_available[ABL_ZONE_CEM43]);
    /* the output may not replace the input */
    o.out_path = path;
    CU_ASSERT_EQUAL(margin_analyse_result(&o, rep, &err), ABL_EINVAL);
    CU_ASSERT(strstr(err.msg, "overwrite") != NULL);
    free(rep);
}

/* One edit of a copy of a good result file (HDF5 API): kind 0 spacing_mm with 2 values, 1 with
 * a NaN, 2 origin_mm removed, 3 T_max_C of the wrong shape, 4 the labels removed. */
static void corrupt_result(const char *path, int kind)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    CU_ASSERT_FATAL(f >= 0);
    hid_t ds = H5Dopen2(f, "/grid/labels", H5P_DEFAULT);
    CU_ASSERT_FATAL(ds >= 0);
    if (kind == 0 || kind == 1) {
        CU_ASSERT_FATAL(H5Adelete(ds, "spacing_mm") >= 0);
        const hsize_t nv = kind == 0 ? 2 : 3;
        const double v[3] = {1, kind == 1 ? NAN : 1, 1};
        hid_t sp = H5Screate_simple(1, &nv, NULL);
        hid_t at = H5Acreate2(ds, "spacing_mm", H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
        CU_ASSERT_FATAL(at >= 0 && H5Awrite(at, H5T_NATIVE_DOUBLE, v) >= 0);
        H5Aclose(at);
        H5Sclose(sp);
    } else if (kind == 2) {
        CU_ASSERT_FATAL(H5Adelete(ds, "origin_mm") >= 0);
    }
    H5Dclose(ds);
    if (kind == 3) {
        CU_ASSERT_FATAL(H5Ldelete(f, "/fields/T_max_C", H5P_DEFAULT) >= 0);
        const hsize_t d[3] = {2, 2, 2};
        const double v[8] = {0};
        hid_t sp = H5Screate_simple(3, d, NULL);
        hid_t t = H5Dcreate2(f, "/fields/T_max_C", H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT,
                             H5P_DEFAULT);
        CU_ASSERT_FATAL(t >= 0 && H5Dwrite(t, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                                           v) >= 0);
        H5Dclose(t);
        H5Sclose(sp);
    }
    if (kind == 4) CU_ASSERT_FATAL(H5Ldelete(f, "/grid/labels", H5P_DEFAULT) >= 0);
    CU_ASSERT_FATAL(H5Fclose(f) >= 0);
}

/* A result file that is not what ablasim writes (a foreign or damaged file given to
 * `ablasim margin`): refused with ABL_EINVAL, the file and what is wrong named, and no margin
 * file or summary written (the coverage audit found these checks never ran). */
static void test_corrupt_result_refused(void)
{
    char good[700], bad[720], out[760], json[760];
    snprintf(good, sizeof good, "%s/corrupt_good.h5", tu_tmpdir());
    snprintf(bad, sizeof bad, "%s/corrupt_bad.h5", tu_tmpdir());
    snprintf(out, sizeof out, "%s/corrupt_bad.margin.h5", tu_tmpdir());
    snprintf(json, sizeof json, "%s/corrupt_bad.margin.json", tu_tmpdir());
    write_synthetic_result(good, true);
    const char *expect[5] = {"attribute spacing_mm of /grid/labels must hold 3 values (x y z)",
                             "spacing_mm (1, nan, 1), origin_mm (-11.5, -11.5, -11.5): allowed "
                             "a finite spacing > 0",
                             "/grid/labels has no attribute origin_mm (not an ablasim result?)",
                             "dataset /fields/T_max_C must be [24][24][24] like /grid/labels",
                             "no dataset /grid/labels: not an ablasim result file"};
    for (int kind = 0; kind < 5; kind++) {
        char cmd[1600];
        snprintf(cmd, sizeof cmd, "cp '%s' '%s'", good, bad);
        CU_ASSERT_FATAL(tu_sh(cmd) == 0);
        corrupt_result(bad, kind);
        abl_margin_opts o = {.result_path = bad, .criterion = -1, .threshold = NAN,
                             .criterion_mm = 5.0};
        abl_margin_report *rep = calloc(1, sizeof *rep);
        abl_error err = {0};
        const abl_status st = margin_analyse_result(&o, rep, &err);
        printf("\n  case %d: %s", kind, err.msg);
        CU_ASSERT_EQUAL(st, ABL_EINVAL);
        CU_ASSERT(strstr(err.msg, bad) != NULL);
        CU_ASSERT(strstr(err.msg, expect[kind]) != NULL);
        CU_ASSERT(!tu_exists(out) && !tu_exists(json));
        free(rep);
    }
    remove(bad);
    remove(good);
}

/* Segmentations: only when the NIfTI module is implemented (a placeholder returned an error
 * until it landed). The tumour file stores x flipped (affine diag(-hx, hy, hz), as Slicer
 * writes CTs), the zone file does not: both read to the same grid, and the result equals
 * margin_compute on the masks (to the float32 precision NIfTI-1 stores the geometry in). */
static void test_nifti_segmentations(void)
{
    const int d[3] = {30, 28, 26};
    const double h[3] = {0.8, 0.8, 1.5}, o[3] = {-12, -10, -20};
    const size_t n = (size_t)d[0] * d[1] * d[2];
    uint8_t *t = calloc(n, 1), *z = calloc(n, 1);
    const double ct[3] = {1.1, 0, 0}, cz[3] = {0, 0.4, 0};
    add_sphere(t, d, h, ct, 4.0, 1);
    add_sphere(z, d, h, cz, 8.0, 3); /* any non-zero label */
    abl_nifti_geom g, gflip;
    nifti_geom_from_grid(&g, d, h, o);
    gflip = g;
    gflip.affine[0][0] = -h[0];
    gflip.affine[0][3] = o[0] + (d[0] - 1) * h[0];
    char tp[700], zp[700], out[700];
    snprintf(tp, sizeof tp, "%s/tumour.nii.gz", tu_tmpdir());
    snprintf(zp, sizeof zp, "%s/zone.nii", tu_tmpdir());
    snprintf(out, sizeof out, "%s/zone.margin.h5", tu_tmpdir());
    abl_error err = {0};
    /* the NIfTI module is part of every build: a failing write is a failure, not a skip
     * (audit, session 24) */
    CU_ASSERT_EQUAL_FATAL(nifti_write_u8(tp, &gflip, t, &err), ABL_OK);
    CU_ASSERT_EQUAL_FATAL(nifti_write_u8(zp, &g, z, &err), ABL_OK);
    abl_margin_opts mo = {.tumour_nifti = tp,
                          .zone_nifti = zp,
                          .criterion = -1,
                          .threshold = NAN,
                          .criterion_mm = 5.0};
    abl_margin_report *rep = calloc(1, sizeof *rep);
    CU_ASSERT_EQUAL_FATAL(margin_analyse_nifti(&mo, rep, &err), ABL_OK);
    struct stat sb;
    CU_ASSERT(stat(out, &sb) == 0); /* default name: zone minus .nii plus .margin.h5 */
    abl_margin_input in = {.tumour = t, .zone = z, .criterion_mm = 5.0};
    memcpy(in.dims, d, sizeof d);
    memcpy(in.spacing_mm, h, sizeof h);
    margin_affine_from_grid(h, o, in.affine);
    abl_margin_result m;
    CU_ASSERT_EQUAL_FATAL(margin_compute(&in, &m, &err), ABL_OK);
    CU_ASSERT(fabs(rep->m.min_margin_mm - m.min_margin_mm) < 1e-5);
    CU_ASSERT_EQUAL(rep->m.min_index, m.min_index);
    for (int a = 0; a < 3; a++)
        CU_ASSERT(fabs(rep->m.min_location_mm[a] - m.min_location_mm[a]) < 1e-4);
    CU_ASSERT_EQUAL(rep->m.pass, m.pass);
    CU_ASSERT_EQUAL(rep->m.n_tumour, m.n_tumour);
    CU_ASSERT_EQUAL(rep->m.n_shell_unablated, m.n_shell_unablated);
    printf("\n  segmentations (x-flipped tumour file): margin %.4f mm at (%.2f, %.2f, %.2f) mm, "
           "%s",
           rep->m.min_margin_mm, rep->m.min_location_mm[0], rep->m.min_location_mm[1],
           rep->m.min_location_mm[2], rep->m.pass ? "PASS" : "FAIL");
    margin_result_free(&m);

    /* a zone on another grid is refused */
    const int d2[3] = {30, 28, 25};
    nifti_geom_from_grid(&g, d2, h, o);
    CU_ASSERT_EQUAL_FATAL(nifti_write_u8(zp, &g, z, &err), ABL_OK);
    CU_ASSERT_EQUAL(margin_analyse_nifti(&mo, rep, &err), ABL_EINVAL);
    CU_ASSERT(strstr(err.msg, "same voxel grid") != NULL);
    const double o2[3] = {-12, -10, -19};
    nifti_geom_from_grid(&g, d, h, o2);
    CU_ASSERT_EQUAL_FATAL(nifti_write_u8(zp, &g, z, &err), ABL_OK);
    CU_ASSERT_EQUAL(margin_analyse_nifti(&mo, rep, &err), ABL_EINVAL);
    CU_ASSERT(strstr(err.msg, "not on the same grid") != NULL);
    free(rep);
    free(t);
    free(z);
}

/* ---- command line ------------------------------------------------------------------------ */

/* A real run (liver demo on 40^3), then the margin of it: exit 0, a verdict line, the margin
 * file and JSON; a critical structure with a recorded time map. */
static void test_cli_margin(void)
{
    char res[700], mar[700], json[700], so[700], se[700], cmd[4000];
    const char *tmp = tu_tmpdir();
    snprintf(res, sizeof res, "%s/x.h5", tmp);
    snprintf(mar, sizeof mar, "%s/m.h5", tmp);
    snprintf(json, sizeof json, "%s/m.json", tmp);
    snprintf(so, sizeof so, "%s/margin.out", tmp);
    snprintf(se, sizeof se, "%s/margin.err", tmp);
    snprintf(cmd, sizeof cmd,
             "'%s' run '%s/configs/liver_demo.yaml' -o '%s' --quiet --set grid.dims=[40,40,40] "
             "--set output.snapshot_interval_s=0",
             tu_bin(), tu_root(), res);
    CU_ASSERT_EQUAL_FATAL(tu_run(cmd, so, se), 0);
    snprintf(cmd, sizeof cmd, "'%s' margin '%s' -o '%s' --critical blood:50:10", tu_bin(), res,
             mar);
    int rc = tu_run(cmd, so, se);
    CU_ASSERT_EQUAL(rc, 0);
    char *out = tu_slurp(so);
    CU_ASSERT(out && strstr(out, "verdict") &&
              (strstr(out, "verdict          PASS") || strstr(out, "verdict          FAIL")));
    CU_ASSERT(out && strstr(out, "minimal margin"));
    /* a 50 C time map exists, a 10 C one does not */
    CU_ASSERT(out && strstr(out, "longest time at or above 50 C"));
    CU_ASSERT(out && strstr(out, "time at or below 10 C not recorded"));
    free(out);
    struct stat sb;
    CU_ASSERT(stat(mar, &sb) == 0);
    char *js = tu_slurp(json);
    CU_ASSERT(js && strstr(js, "\"verdict\"") && strstr(js, "\"minimal_margin_mm\""));
    free(js);
    /* the solver's damage maps as the zone */
    snprintf(cmd, sizeof cmd, "'%s' margin '%s' -o '%s' --criterion omega", tu_bin(), res, mar);
    CU_ASSERT_EQUAL(tu_run(cmd, so, se), 0);
    out = tu_slurp(so);
    CU_ASSERT(out && strstr(out, "ablation zone    Omega >= 1:"));
    free(out);
    /* quiet: one line */
    snprintf(cmd, sizeof cmd,
             "'%s' margin '%s' -o '%s' --quiet --margin-mm 3 --criterion tmax "
             "--threshold-C 50",
             tu_bin(), res, mar);
    CU_ASSERT_EQUAL(tu_run(cmd, so, se), 0);
    out = tu_slurp(so);
    CU_ASSERT(out && !strncmp(out, "verdict: ", 9) && strchr(out, '\n') == out + strlen(out) - 1);
    free(out);
}

/* Copy text to out, replacing each @KEY@ by its value (keys[i], vals[i]). */
static void substitute(char *out, size_t len, const char *text, const char *const *keys,
                       const char *const *vals, int nkeys)
{
    size_t at = 0;
    while (*text && at + 1 < len) {
        int k = 0;
        while (k < nkeys && strncmp(text, keys[k], strlen(keys[k])))
            k++;
        if (k < nkeys) {
            int w = snprintf(out + at, len - at, "%s", vals[k]);
            at += w > 0 ? (size_t)w : 0;
            text += strlen(keys[k]);
        } else {
            out[at++] = *text++;
        }
    }
    out[at < len ? at : len - 1] = '\0';
}

/* Bad input: missing file -> 3, unknown tissue -> 2, bad --critical -> 1, a criterion whose
 * field the result lacks (a result from before the damage maps) -> 2, usage errors -> 1; no
 * margin file left behind. */
static void test_cli_bad_input(void)
{
    char res[700], old[700], so[700], se[700], cmd[4000], mar[700];
    const char *tmp = tu_tmpdir();
    snprintf(res, sizeof res, "%s/x.h5", tmp); /* from test_cli_margin */
    snprintf(old, sizeof old, "%s/old_result.h5", tmp);
    write_synthetic_result(old, false);
    snprintf(mar, sizeof mar, "%s/bad.margin.h5", tmp);
    snprintf(so, sizeof so, "%s/bad.out", tmp);
    snprintf(se, sizeof se, "%s/bad.err", tmp);
    const char *keys[4] = {"@TMP@", "@RES@", "@OLD@", "@MAR@"};
    const char *vals[4] = {tmp, res, old, mar};
    struct {
        const char *args;
        int rc;
        const char *msg;
    } cases[] = {
        {"'@TMP@/no_such_result.h5' -o '@MAR@'", 3, "cannot open"},
        {"'@TMP@' -o '@MAR@'", 3, "is a directory"},
        {"'@RES@' -o '@MAR@' --tumour-tissue tumor", 2,
         "tumour tissue 'tumor' is not in this result"},
        {"'@RES@' -o '@MAR@' --critical nerve:45:10", 2, "critical tissue 'nerve'"},
        {"'@RES@' -o '@MAR@' --critical nerve-45", 1, "--critical"},
        {"'@RES@' -o '@MAR@' --critical nerve:hot:10", 1, "not a temperature"},
        {"'@RES@' -o '@MAR@' --critical blood:45 --critical blood::10", 1, "twice"},
        {"'@OLD@' -o '@MAR@' --criterion omega", 2, "/fields/damage_omega"},
        {"'@OLD@' -o '@MAR@' --criterion cem43", 2, "/fields/cem43_min"},
        {"'@RES@' -o '@MAR@' --criterion tmaxx", 1, "unknown zone criterion"},
        {"'@RES@' -o '@MAR@' --margin-mm -1", 1, "--margin-mm"},
        {"'@RES@' -o '@MAR@' --frobnicate", 1, "unknown option"},
        {"'@RES@' -o", 1, "needs a value"},
        {"'@RES@' -o '@TMP@/m.txt'", 1, "must end in .h5"},
        {"'@RES@' -o '@RES@'", 2, "overwrite"},
        {"", 1, "missing RESULT.h5"},
        {"--tumor '@TMP@/t.nii.gz' -o '@MAR@'", 1, "--zone"},
        {"'@RES@' --tumor '@TMP@/t.nii.gz' --zone '@TMP@/z.nii' -o '@MAR@'", 1, "not both"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char args[2000];
        substitute(args, sizeof args, cases[i].args, keys, vals, 4);
        snprintf(cmd, sizeof cmd, "'%s' margin %s", tu_bin(), args);
        int rc = tu_run(cmd, so, se);
        char *e = tu_slurp(se);
        bool ok = rc == cases[i].rc && e && strstr(e, cases[i].msg);
        if (!ok)
            fprintf(stderr, "\n  FAIL margin %s: exit %d (expected %d), stderr: %s", args, rc,
                    cases[i].rc, e ? e : "");
        CU_ASSERT(ok);
        free(e);
        struct stat sb;
        CU_ASSERT(stat(mar, &sb) != 0);
    }
}


/* ---- data safety: incomplete input, overall verdict, files (issue 14) -------------------- */

/* Change a hand-written result: complete = 1/0 (-1: remove the attribute), an optional failure
 * text, and one value of a field at voxel (i, j, k); a field that does not exist is created
 * as zeros first with a threshold_C attribute (a time map). */
static void synth_edit(const char *path, int complete, const char *failure, const char *field,
                       const int ijk[3], double value, double threshold_C)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    CU_ASSERT_FATAL(f >= 0);
    if (H5Aexists(f, "complete") > 0) H5Adelete(f, "complete");
    hid_t sp = H5Screate(H5S_SCALAR);
    if (complete >= 0) {
        long long c = complete;
        hid_t a = H5Acreate2(f, "complete", H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
        CU_ASSERT(a >= 0 && H5Awrite(a, H5T_NATIVE_LLONG, &c) >= 0);
        H5Aclose(a);
    }
    if (failure) {
        hid_t t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, H5T_VARIABLE);
        hid_t a = H5Acreate2(f, "failure", t, sp, H5P_DEFAULT, H5P_DEFAULT);
        CU_ASSERT(a >= 0 && H5Awrite(a, t, &failure) >= 0);
        H5Aclose(a);
        H5Tclose(t);
    }
    H5Sclose(sp);
    if (field) {
        const int d[3] = {24, 24, 24};
        if (H5Lexists(f, field, H5P_DEFAULT) <= 0) {
            double *z = calloc(24 * 24 * 24, sizeof *z);
            h5_field(f, field, H5T_NATIVE_DOUBLE, d, z);
            free(z);
            hid_t ds = H5Dopen2(f, field, H5P_DEFAULT);
            hid_t asp = H5Screate(H5S_SCALAR);
            hid_t a = H5Acreate2(ds, "threshold_C", H5T_IEEE_F64LE, asp, H5P_DEFAULT, H5P_DEFAULT);
            H5Awrite(a, H5T_NATIVE_DOUBLE, &threshold_C);
            H5Aclose(a);
            H5Sclose(asp);
            H5Dclose(ds);
        }
        hid_t ds = H5Dopen2(f, field, H5P_DEFAULT);
        hid_t fsp = H5Dget_space(ds);
        hsize_t start[3] = {(hsize_t)ijk[2], (hsize_t)ijk[1], (hsize_t)ijk[0]},
                count[3] = {1, 1, 1};
        H5Sselect_hyperslab(fsp, H5S_SELECT_SET, start, NULL, count, NULL);
        hsize_t one = 1;
        hid_t msp = H5Screate_simple(1, &one, NULL);
        CU_ASSERT(H5Dwrite(ds, H5T_NATIVE_DOUBLE, msp, fsp, H5P_DEFAULT, &value) >= 0);
        H5Sclose(msp);
        H5Sclose(fsp);
        H5Dclose(ds);
    }
    H5Fclose(f);
}

static double root_attr_f64(const char *path, const char *name)
{
    double v = NAN;
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return v;
    hid_t a = H5Aopen(f, name, H5P_DEFAULT);
    if (a >= 0) H5Aread(a, H5T_NATIVE_DOUBLE, &v);
    H5Aclose(a);
    H5Fclose(f);
    return v;
}

/* Root string attribute compared with want. */
static bool root_attr_is(const char *path, const char *name, const char *want)
{
    bool ok = false;
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return false;
    hid_t a = H5Aopen(f, name, H5P_DEFAULT);
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    char *v = NULL;
    if (a >= 0 && H5Aread(a, t, &v) >= 0 && v) {
        ok = !strcmp(v, want);
        H5free_memory(v);
    }
    H5Tclose(t);
    H5Aclose(a);
    H5Fclose(f);
    return ok;
}

/* Refusals of an incomplete or non-finite result (library): each names the file, the reason,
 * the field, the first bad voxel and its value; nothing is written and the input keeps its
 * bytes. Only fields the analysis reads count: a bad time map matters with --critical only. */
static void test_incomplete_refused(void)
{
    char res[700], mar[700], json[700];
    snprintf(res, sizeof res, "%s/inc.h5", tu_tmpdir());
    snprintf(mar, sizeof mar, "%s/inc.margin.h5", tu_tmpdir());
    snprintf(json, sizeof json, "%s/inc.margin.json", tu_tmpdir());
    abl_margin_opts o = {.result_path = res, .criterion = -1, .threshold = NAN, .criterion_mm = 5};
    abl_margin_report *rep = calloc(1, sizeof *rep);
    abl_error err = {0};
    size_t n;
    unsigned char *before;

    /* complete = 0 with the run's failure message, and a NaN where it blew up */
    write_synthetic_result(res, true);
    synth_edit(res, 0, "numerical fault at t = 3 s", "/fields/T_max_C", (int[3]){14, 12, 12},
               NAN, 0);
    before = tu_file_bytes(res, &n);
    CU_ASSERT_EQUAL(margin_analyse_result(&o, rep, &err), ABL_EINVAL);
    CU_ASSERT(strstr(err.msg, res) && strstr(err.msg, "complete = 0") &&
              strstr(err.msg, "numerical fault at t = 3 s"));
    CU_ASSERT(strstr(err.msg, "/fields/T_max_C holds 1 non-finite value, the first nan at voxel "
                              "(14, 12, 12)") != NULL);
    CU_ASSERT(strstr(err.msg, "--allow-incomplete") != NULL);
    CU_ASSERT(!tu_lexists(mar) && !tu_lexists(json));
    CU_ASSERT(tu_bytes_unchanged(res, before, n));
    free(before);

    /* no complete attribute at all: cannot be told from a partial file */
    write_synthetic_result(res, true);
    synth_edit(res, -1, NULL, NULL, NULL, 0, 0);
    CU_ASSERT_EQUAL(margin_analyse_result(&o, rep, &err), ABL_EINVAL);
    CU_ASSERT(strstr(err.msg, "no root attribute 'complete'") != NULL);

    /* complete = 1 but +Inf in T_min */
    write_synthetic_result(res, true);
    synth_edit(res, 1, NULL, "/fields/T_min_C", (int[3]){1, 2, 3}, INFINITY, 0);
    before = tu_file_bytes(res, &n);
    CU_ASSERT_EQUAL(margin_analyse_result(&o, rep, &err), ABL_EINVAL);
    CU_ASSERT(strstr(err.msg, "/fields/T_min_C holds 1 non-finite value, the first inf at voxel "
                              "(1, 2, 3)") != NULL);
    CU_ASSERT(!tu_lexists(mar) && tu_bytes_unchanged(res, before, n));
    free(before);

    /* a time map at 45 C with -Inf in a liver voxel: read (and refused) only for a critical
     * structure with that limit */
    write_synthetic_result(res, true);
    synth_edit(res, 1, NULL, "/fields/time_at_or_above_45C_s", (int[3]){0, 0, 0}, -INFINITY, 45);
    CU_ASSERT_EQUAL(margin_analyse_result(&o, rep, &err), ABL_OK);
    o.n_critical = 1;
    CU_ASSERT_EQUAL_FATAL(critical_spec_parse("liver:45", &o.critical[0], &err), ABL_OK);
    CU_ASSERT_EQUAL(margin_analyse_result(&o, rep, &err), ABL_EINVAL);
    CU_ASSERT(strstr(err.msg, "/fields/time_at_or_above_45C_s holds 1 non-finite value, the "
                              "first -inf at voxel (0, 0, 0)") != NULL);

    /* the command: exit 2 and the same sentence */
    write_synthetic_result(res, true);
    synth_edit(res, 0, "numerical fault at t = 3 s", "/fields/T_max_C", (int[3]){14, 12, 12},
               NAN, 0);
    unlink(mar);
    unlink(json);
    char cmd[2000], so[700], se[700];
    snprintf(so, sizeof so, "%s/inc.out", tu_tmpdir());
    snprintf(se, sizeof se, "%s/inc.err", tu_tmpdir());
    snprintf(cmd, sizeof cmd, "'%s' margin '%s'", tu_bin(), res);
    CU_ASSERT_EQUAL(tu_run(cmd, so, se), 2);
    char *e = tu_slurp(se);
    CU_ASSERT(e && strstr(e, "voxel (14, 12, 12)") && strstr(e, "complete = 0"));
    free(e);
    CU_ASSERT(!tu_lexists(mar));
    free(rep);
}

/* --allow-incomplete: the analysis runs, non-finite voxels are not ablated, and the report,
 * the margin file and the JSON say the input was incomplete. The tumour's centre voxel holds
 * +Inf in T_max: without the rule it would be "ablated" (Inf >= 55); with it, it is the one
 * residual tumour voxel and the minimal margin is minus the distance to its ablated
 * neighbour, -1 mm (1 mm grid, exact). */
static void test_allow_incomplete(void)
{
    char res[700], mar[700], json[700];
    snprintf(res, sizeof res, "%s/allow.h5", tu_tmpdir());
    snprintf(mar, sizeof mar, "%s/allow.margin.h5", tu_tmpdir());
    snprintf(json, sizeof json, "%s/allow.margin.json", tu_tmpdir());
    abl_margin_opts o = {.result_path = res, .criterion = -1, .threshold = NAN, .criterion_mm = 5};
    abl_margin_report *rep = calloc(1, sizeof *rep);
    abl_error err = {0};
    write_synthetic_result(res, true);
    CU_ASSERT_EQUAL_FATAL(margin_analyse_result(&o, rep, &err), ABL_OK);
    const size_t zone_full = rep->zone_voxels[ABL_ZONE_TMAX];
    CU_ASSERT(rep->input_complete && rep->m.pass && rep->pass);
    CU_ASSERT(root_attr_f64(mar, "input_complete") == 1);

    synth_edit(res, 0, "numerical fault", "/fields/T_max_C", (int[3]){12, 12, 12}, INFINITY, 0);
    size_t n;
    unsigned char *before = tu_file_bytes(res, &n);
    o.allow_incomplete = true;
    CU_ASSERT_EQUAL_FATAL(margin_analyse_result(&o, rep, &err), ABL_OK);
    CU_ASSERT(!rep->input_complete);
    CU_ASSERT_EQUAL(rep->nonfinite_values, 1);
    CU_ASSERT(strstr(rep->input_note, "complete = 0") && strstr(rep->input_note, "inf at voxel "
                                                                                 "(12, 12, 12)"));
    CU_ASSERT_EQUAL(rep->zone_voxels[ABL_ZONE_TMAX], zone_full - 1);
    CU_ASSERT_EQUAL(rep->m.n_residual, 1);
    CU_ASSERT_DOUBLE_EQUAL(rep->m.min_margin_mm, -1.0, 1e-12);
    CU_ASSERT_EQUAL(rep->m.min_ijk[0], 12);
    CU_ASSERT(!rep->m.pass && !rep->pass);
    CU_ASSERT(tu_bytes_unchanged(res, before, n));
    free(before);
    /* the outputs are marked */
    CU_ASSERT(root_attr_f64(mar, "input_complete") == 0);
    CU_ASSERT(root_attr_f64(mar, "nonfinite_values") == 1);
    char *js = tu_slurp(json);
    CU_ASSERT(js && strstr(js, "\"input_complete\": false") &&
              strstr(js, "\"nonfinite_values\": 1") && strstr(js, "complete = 0"));
    free(js);

    /* the command: exit 0, the INCOMPLETE line in the report and in the quiet verdict */
    char cmd[2000], so[700], se[700];
    snprintf(so, sizeof so, "%s/allow.out", tu_tmpdir());
    snprintf(se, sizeof se, "%s/allow.err", tu_tmpdir());
    snprintf(cmd, sizeof cmd, "'%s' margin '%s' --allow-incomplete", tu_bin(), res);
    CU_ASSERT_EQUAL(tu_run(cmd, so, se), 0);
    char *out = tu_slurp(so);
    CU_ASSERT(out && strstr(out, "input            INCOMPLETE (--allow-incomplete)") &&
              strstr(out, "(of an INCOMPLETE result"));
    free(out);
    snprintf(cmd, sizeof cmd, "'%s' margin '%s' --allow-incomplete -q", tu_bin(), res);
    CU_ASSERT_EQUAL(tu_run(cmd, so, se), 0);
    out = tu_slurp(so);
    CU_ASSERT(out && strstr(out, "verdict: FAIL (") && strstr(out, "; INCOMPLETE input)\n"));
    free(out);
    free(rep);
}

/* A real incomplete result: a scenario that faults numerically (10 kW in a 3 mm sphere on a
 * 16^3 grid of 2 mm: exit 5 and NAME.incomplete.h5 with complete = 0, in ~0.2 s). margin
 * refuses it with exit 2 naming the fault, and analyses it with --allow-incomplete. */
static void test_real_incomplete_run(void)
{
    char out[700], inc[700], cmd[3000], so[700], se[700], json[700];
    snprintf(out, sizeof out, "%s/fault.h5", tu_tmpdir());
    snprintf(inc, sizeof inc, "%s/fault.incomplete.h5", tu_tmpdir());
    snprintf(json, sizeof json, "%s/fault.incomplete.margin.json", tu_tmpdir());
    snprintf(so, sizeof so, "%s/fault.out", tu_tmpdir());
    snprintf(se, sizeof se, "%s/fault.err", tu_tmpdir());
    snprintf(cmd, sizeof cmd,
             "'%s' run '%s/configs/liver_demo.yaml' -o '%s' --quiet --set grid.dims=[16,16,16] "
             "--set grid.spacing_mm=[2,2,2] --set time.duration_s=30 "
             "--set 'sources.0={type: volumetric, power_W: 10000, "
             "shape: {type: sphere, center_mm: [0, 0, 0], radius_mm: 3}}'",
             tu_bin(), tu_root(), out);
    CU_ASSERT_EQUAL_FATAL(tu_run(cmd, so, se), 5);
    size_t n;
    unsigned char *before = tu_file_bytes(inc, &n);
    CU_ASSERT_FATAL(before != NULL);
    snprintf(cmd, sizeof cmd, "'%s' margin '%s'", tu_bin(), inc);
    CU_ASSERT_EQUAL(tu_run(cmd, so, se), 2);
    char *e = tu_slurp(se);
    CU_ASSERT(e && strstr(e, inc) && strstr(e, "complete = 0") && strstr(e, "numerical fault"));
    free(e);
    CU_ASSERT(!tu_lexists(json));
    snprintf(cmd, sizeof cmd, "'%s' margin '%s' --allow-incomplete -q", tu_bin(), inc);
    CU_ASSERT_EQUAL(tu_run(cmd, so, se), 0);
    char *js = tu_slurp(json);
    CU_ASSERT(js && strstr(js, "\"input_complete\": false"));
    free(js);
    CU_ASSERT(tu_bytes_unchanged(inc, before, n));
    free(before);
}

/* The overall verdict counts critical structures: the synthetic result passes the margin
 * (~8 mm > 5 mm), but the liver next to the tumour reaches ~77 C, so "liver:45" is crossed and
 * the verdict is FAIL while the margin verdict stays PASS; "liver:99" is kept (PASS).
 * --fail-exit-code N gives N for FAIL only. */
static void test_verdict_and_fail_exit_code(void)
{
    char res[700], mar[700], json[700], cmd[2000], so[700], se[700];
    snprintf(res, sizeof res, "%s/verdict.h5", tu_tmpdir());
    snprintf(mar, sizeof mar, "%s/verdict.margin.h5", tu_tmpdir());
    snprintf(json, sizeof json, "%s/verdict.margin.json", tu_tmpdir());
    snprintf(so, sizeof so, "%s/verdict.out", tu_tmpdir());
    snprintf(se, sizeof se, "%s/verdict.err", tu_tmpdir());
    write_synthetic_result(res, true);
    abl_margin_opts o = {.result_path = res, .criterion = -1, .threshold = NAN, .criterion_mm = 5};
    abl_error err = {0};
    o.n_critical = 1;
    CU_ASSERT_EQUAL_FATAL(critical_spec_parse("liver:45", &o.critical[0], &err), ABL_OK);
    abl_margin_report *rep = calloc(1, sizeof *rep);
    CU_ASSERT_EQUAL_FATAL(margin_analyse_result(&o, rep, &err), ABL_OK);
    CU_ASSERT(rep->m.pass && rep->critical[0].crossed);
    CU_ASSERT(!rep->pass && rep->n_critical_crossed == 1);
    CU_ASSERT(root_attr_is(mar, "verdict", "FAIL") && root_attr_is(mar, "margin_verdict", "PASS"));
    char *js = tu_slurp(json);
    CU_ASSERT(js && strstr(js, "\"verdict\": \"FAIL\"") && strstr(js, "\"margin_verdict\": \"PASS\"") &&
              strstr(js, "\"critical_limits_crossed\": 1"));
    free(js);
    CU_ASSERT_EQUAL_FATAL(critical_spec_parse("liver:99", &o.critical[0], &err), ABL_OK);
    CU_ASSERT_EQUAL_FATAL(margin_analyse_result(&o, rep, &err), ABL_OK);
    CU_ASSERT(rep->pass && rep->m.pass && !rep->critical[0].crossed);
    CU_ASSERT(root_attr_is(mar, "verdict", "PASS"));
    free(rep);

    struct {
        const char *args;
        int rc;
        const char *out;
    } cases[] = {
        {"--critical liver:45 --fail-exit-code 7", 7,
         "verdict          FAIL: critical limit crossed (liver); margin PASS: minimal margin"},
        {"--critical liver:45", 0, "verdict          FAIL: critical limit crossed (liver)"},
        {"--critical liver:45 -q", 0, "; critical limit crossed: liver)"},
        {"--critical liver:99 --fail-exit-code 7", 0,
         "mm > 5 mm, critical structures within limits"},
        {"--margin-mm 20 --fail-exit-code 125", 125, "verdict          FAIL: minimal margin"},
        {"--margin-mm 20", 0, "verdict          FAIL: minimal margin"},
        {"--fail-exit-code 3", 1, NULL}, /* error codes are not available for FAIL */
        {"--fail-exit-code 126", 1, NULL},
        {"--fail-exit-code 75", 1, NULL}, /* a stop's code (session 26) */
        {"--fail-exit-code x", 1, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(cmd, sizeof cmd, "'%s' margin '%s' %s", tu_bin(), res, cases[i].args);
        int rc = tu_run(cmd, so, se);
        char *out = tu_slurp(cases[i].out ? so : se);
        bool ok = rc == cases[i].rc && out &&
                  strstr(out, cases[i].out ? cases[i].out : "--fail-exit-code must be");
        if (!ok)
            fprintf(stderr, "\n  FAIL margin %s: exit %d (expected %d), output: %s",
                    cases[i].args, rc, cases[i].rc, out ? out : "");
        CU_ASSERT(ok);
        free(out);
    }
}

/* One refused command line: exit code, a message fragment (or two), no margin file written,
 * every input byte for byte as before. */
static void expect_refused(const char *args, int rc_want, const char *frag1, const char *frag2,
                           const char *const *inputs, int ninputs, const char *no_output)
{
    char cmd[4000], so[700], se[700];
    snprintf(so, sizeof so, "%s/guard.out", tu_tmpdir());
    snprintf(se, sizeof se, "%s/guard.err", tu_tmpdir());
    unsigned char *before[4];
    size_t n[4];
    for (int i = 0; i < ninputs; i++)
        before[i] = tu_file_bytes(inputs[i], &n[i]);
    /* timeout: a FIFO opened for reading would block forever; the refusal must not */
    snprintf(cmd, sizeof cmd, "timeout 60 '%s' margin %s", tu_bin(), args);
    int rc = tu_run(cmd, so, se);
    char *e = tu_slurp(se);
    bool ok = rc == rc_want && e && strstr(e, frag1) && (!frag2 || strstr(e, frag2));
    if (!ok)
        fprintf(stderr, "\n  FAIL margin %s: exit %d (expected %d), stderr: %s", args, rc,
                rc_want, e ? e : "");
    CU_ASSERT(ok);
    free(e);
    for (int i = 0; i < ninputs; i++) {
        CU_ASSERT(tu_bytes_unchanged(inputs[i], before[i], n[i]));
        free(before[i]);
    }
    if (no_output) CU_ASSERT(!tu_lexists(no_output));
}


/* A cooled antenna's shaft is held to the grid face it enters through, and the held voxels are
 * the needle track, counted as ablated: the boundary warning must look at the zone without
 * them (every such MWA run warned that "the ablation zone reaches the grid boundary" though no
 * voxel at 55 C lay on a face: an adversarial test, session 26). 10 W for 60 s on a 40 mm
 * cube: the 55 C zone is a few mm around the antenna, the track runs to the +z face. */
static void test_track_not_boundary(void)
{
    char dir[700], cmd[3000], json[900];
    tu_subdir(dir, sizeof dir, "margin_track_face");
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' run '%s/configs/mwa_liver_2450.yaml' -o r.h5 -q --threads 1 "
             "--set 'grid.dims=[40,40,40]' --set sources.0.power_W=10 --set time.duration_s=60 "
             "--set 'sources.0.tip_mm=[0,0,-10]' --set 'grid.shapes=[{type: sphere, center_mm: "
             "[0,0,0], radius_mm: 3, tissue: tumour}]' && '%s' margin r.h5 -q",
             dir, tu_bin(), tu_root(), tu_bin());
    char errf[800];
    snprintf(errf, sizeof errf, "%s/err.txt", dir);
    const int rc = tu_run(cmd, NULL, errf);
    if (rc != 0) {
        char *e = tu_slurp(errf);
        printf("\n  exit %d: %s", rc, e ? e : "");
        free(e);
    }
    CU_ASSERT_EQUAL_FATAL(rc, 0);
    snprintf(json, sizeof json, "%s/r.margin.json", dir);
    char *j = tu_slurp(json);
    CU_ASSERT_FATAL(j != NULL);
    const char *a = strstr(j, "\"applicator_included_mL\": ");
    CU_ASSERT(a && atof(a + 26) > 0.1); /* the track is there (0.36 mL) */
    CU_ASSERT(strstr(j, "\"zone_touches_grid_boundary\": false") != NULL);
    free(j);
}
/* fileguard: an output that is an input (directly, through a symlink, or as a --nifti map), a
 * FIFO as input, a directory as output, and a margin file another process is writing are all
 * refused before any work, naming both roles; inputs keep their bytes. */
static void test_file_guard(void)
{
    const char *tmp = tu_tmpdir();
    char res[700], mar[700], link[700], pfx[700], nlink[700], fifo[700], dir[700], args[3000];
    snprintf(res, sizeof res, "%s/guard.h5", tmp);
    snprintf(mar, sizeof mar, "%s/guard.margin.h5", tmp);
    snprintf(link, sizeof link, "%s/guard_link.h5", tmp);
    snprintf(pfx, sizeof pfx, "%s/gp", tmp);
    snprintf(nlink, sizeof nlink, "%s/gp_margin_mm.nii.gz", tmp);
    snprintf(fifo, sizeof fifo, "%s/guard_fifo.h5", tmp);
    snprintf(dir, sizeof dir, "%s/guard_dir.h5", tmp);
    write_synthetic_result(res, false);
    const char *in1[1] = {res};

    snprintf(args, sizeof args, "'%s' -o '%s'", res, res);
    expect_refused(args, 2, "margin file", "is the result", in1, 1, mar);
    CU_ASSERT(symlink(res, link) == 0);
    snprintf(args, sizeof args, "'%s' -o '%s'", res, link);
    expect_refused(args, 2, "is the result", "refusing to overwrite an input", in1, 1, mar);
    struct stat sb;
    CU_ASSERT(lstat(link, &sb) == 0 && S_ISLNK(sb.st_mode)); /* still the link, not a file */
    CU_ASSERT(symlink(res, nlink) == 0);
    snprintf(args, sizeof args, "'%s' --nifti '%s'", res, pfx);
    expect_refused(args, 2, "NIfTI margin map", "is the result", in1, 1, mar);
    CU_ASSERT(lstat(nlink, &sb) == 0 && S_ISLNK(sb.st_mode));

    CU_ASSERT_FATAL(mkfifo(fifo, 0600) == 0);
    snprintf(args, sizeof args, "'%s' -o '%s'", fifo, mar);
    expect_refused(args, 2, "result", "is a FIFO", NULL, 0, mar);
    snprintf(args, sizeof args, "--tumor '%s' --zone '%s' -o '%s'", fifo, fifo, mar);
    expect_refused(args, 2, "tumour segmentation", "is a FIFO", NULL, 0, mar);

    CU_ASSERT_FATAL(mkdir(dir, 0700) == 0);
    snprintf(args, sizeof args, "'%s' -o '%s'", res, dir);
    expect_refused(args, 3, "margin file", "is a directory", in1, 1, NULL);

    /* segmentations: the --nifti zone map would replace the --zone input */
    const int d[3] = {12, 12, 12};
    const double h[3] = {1, 1, 1}, org[3] = {0, 0, 0}, c[3] = {6, 6, 6};
    uint8_t *t = calloc(12 * 12 * 12, 1), *z = calloc(12 * 12 * 12, 1);
    add_sphere(t, d, h, c, 2.0, 1);
    add_sphere(z, d, h, c, 4.0, 1);
    abl_nifti_geom g;
    nifti_geom_from_grid(&g, d, h, org);
    char tn[700], zn[700], sm[700];
    snprintf(tn, sizeof tn, "%s/gs_tumour_in.nii.gz", tmp);
    snprintf(zn, sizeof zn, "%s/gs_zone.nii.gz", tmp);
    snprintf(sm, sizeof sm, "%s/gs.margin.h5", tmp);
    abl_error err = {0};
    CU_ASSERT_FATAL(nifti_write_u8(tn, &g, t, &err) == ABL_OK);
    CU_ASSERT_FATAL(nifti_write_u8(zn, &g, z, &err) == ABL_OK);
    free(t);
    free(z);
    const char *in2[2] = {tn, zn};
    snprintf(args, sizeof args, "--tumor '%s' --zone '%s' -o '%s' --nifti '%s/gs'", tn, zn, sm,
             tmp);
    expect_refused(args, 2, "NIfTI zone mask", "is the zone segmentation", in2, 2, sm);

    /* another process (here: this one) is writing the margin file */
    abl_lock *lk = NULL;
    CU_ASSERT_FATAL(fg_lock(mar, &lk, &err) == ABL_OK);
    char pid[64];
    snprintf(pid, sizeof pid, "(pid %ld)", (long)getpid());
    snprintf(args, sizeof args, "'%s' -o '%s'", res, mar);
    expect_refused(args, 3, "another ablasim process is writing", pid, in1, 1, mar);
    fg_unlock(lk);
    /* and once it is done, the same command works */
    char cmd[4000], so[700], se[700];
    snprintf(so, sizeof so, "%s/guard.out", tmp);
    snprintf(se, sizeof se, "%s/guard.err", tmp);
    snprintf(cmd, sizeof cmd, "'%s' margin %s", tu_bin(), args);
    CU_ASSERT_EQUAL(tu_run(cmd, so, se), 0);
    CU_ASSERT(tu_lexists(mar));

    /* another process is writing one of the --nifti maps (a margin of another result with the
     * same prefix; found by an adversarial review, session 23: two such margins mixed their
     * maps): refused at once, the other margin file not made, the map's bytes kept */
    char mar2[700], map[700], map_tmax[700];
    snprintf(mar2, sizeof mar2, "%s/guard2.margin.h5", tmp);
    snprintf(map, sizeof map, "%s/gq_zone.nii.gz", tmp);
    snprintf(map_tmax, sizeof map_tmax, "%s/gq_T_max_C.nii.gz", tmp);
    tu_spit(map, "the other margin's zone map\n");
    CU_ASSERT_FATAL(fg_lock(map, &lk, &err) == ABL_OK);
    snprintf(args, sizeof args, "'%s' -o '%s' --nifti '%s/gq'", res, mar2, tmp);
    const char *in3[2] = {res, map};
    expect_refused(args, 3, "another ablasim process is writing", "gq_zone.nii.gz", in3, 2, mar2);
    CU_ASSERT(!tu_lexists(map_tmax));
    fg_unlock(lk);
    snprintf(cmd, sizeof cmd, "'%s' margin %s", tu_bin(), args);
    CU_ASSERT_EQUAL(tu_run(cmd, so, se), 0);
    CU_ASSERT(tu_lexists(mar2) && tu_lexists(map_tmax));

    /* the files a result was computed from are inputs too: --nifti whose zone map is the
     * scenario's own NIfTI segmentation (adversarial review, session 23: it was replaced) */
    char seg[700], scen[700], res3[700], mar3[700];
    snprintf(seg, sizeof seg, "%s/gz_zone.nii.gz", tmp);
    snprintf(scen, sizeof scen, "%s/gz.yaml", tmp);
    snprintf(res3, sizeof res3, "%s/gz.h5", tmp);
    snprintf(mar3, sizeof mar3, "%s/gz.margin.h5", tmp);
    uint8_t *lab = calloc(12 * 12 * 12, 1);
    add_sphere(lab, d, h, c, 3.0, 1);
    CU_ASSERT_FATAL(nifti_write_u8(seg, &g, lab, &err) == ABL_OK);
    free(lab);
    char yaml[1500];
    snprintf(yaml, sizeof yaml,
             "name: gz\ntissues_file: %s/configs/tissues.yaml\n"
             "grid: {mesh: gz_zone.nii.gz, labels: {0: liver, 1: tumour}}\n"
             "boundary: {default: {type: fixed_temperature, temperature_C: 37}}\n"
             "time: {duration_s: 5}\n"
             "sources:\n  - {type: volumetric, power_W: 2, shape: {type: sphere, center_mm: "
             "[6, 6, 6], radius_mm: 2}}\n",
             tu_root());
    tu_spit(scen, yaml);
    snprintf(cmd, sizeof cmd, "'%s' run '%s' -o '%s' -q", tu_bin(), scen, res3);
    CU_ASSERT_FATAL(tu_run(cmd, so, se) == 0);
    snprintf(args, sizeof args, "'%s' -o '%s' --nifti '%s/gz'", res3, mar3, tmp);
    const char *in4[2] = {res3, seg};
    expect_refused(args, 2, "NIfTI zone mask", "is the file the result was computed from", in4, 2,
                   mar3);
}

void register_margin_tests(void)
{
    CU_pSuite s = CU_add_suite("margin", NULL, NULL);
    CU_add_test(s, "applicator (needle track) counts as ablated", test_applicator_mask);
    CU_add_test(s, "EDT equals brute force (anisotropic, random masks)", test_edt_brute_force);
    CU_add_test(s, "EDT 1-D lower envelope on arbitrary heights", test_edt_line);
    CU_add_test(s, "EDT bitwise identical for any thread count", test_edt_threads);
    CU_add_test(s, "EDT rejects bad geometry", test_edt_bad_input);
    CU_add_test(s, "spheres: margin R - r, verdict flips at 5 mm, volumes",
                test_sphere_margin_verdict);
    CU_add_test(s, "spheres: residual tumour, empty zone, empty tumour", test_sphere_residual);
    CU_add_test(s, "off-centre zone: minimal-margin location", test_off_centre_location);
    CU_add_test(s, "margin equal to the criterion fails", test_tie_rule);
    CU_add_test(s, "PASS <=> no unablated shell (random)", test_random_consistency);
    CU_add_test(s, "zone cut by the grid", test_zone_at_border);
    CU_add_test(s, "zone criteria on arrays", test_zone_criteria);
    CU_add_test(s, "--critical syntax", test_critical_parse);
    CU_add_test(s, "critical structure report", test_critical_report);
    CU_add_test(s, "result files: criteria, absent damage fields", test_result_file_criteria);
    CU_add_test(s, "foreign or damaged result files refused, nothing written",
                test_corrupt_result_refused);
    CU_add_test(s, "segmentations (NIfTI)", test_nifti_segmentations);
    CU_add_test(s, "cli: margin of a real run", test_cli_margin);
    CU_add_test(s, "cli: bad input exit codes", test_cli_bad_input);
    CU_add_test(s, "incomplete or non-finite result refused", test_incomplete_refused);
    CU_add_test(s, "--allow-incomplete marks the outputs", test_allow_incomplete);
    CU_add_test(s, "a real faulted run: refused, then allowed", test_real_incomplete_run);
    CU_add_test(s, "verdict counts critical limits; --fail-exit-code",
                test_verdict_and_fail_exit_code);
    CU_add_test(s, "files: outputs never an input, FIFO, lock", test_file_guard);
    CU_add_test(s, "a needle track on a grid face is not the zone reaching the boundary",
                test_track_not_boundary);
}
