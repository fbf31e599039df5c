/* potential.c - quasi-static potential div(sigma grad V) = 0: face conductances, operator and
 * scaled spectral preconditioner for the masked PCG of pcg.h (see potential.h for the
 * discretisation, the Joule-heat identity and the preconditioner). */
#include "ablasim/potential.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ablasim/kernels.h"
#include "ablasim/multigrid.h"
#include "ablasim/pcg.h"
#include "ablasim/profile.h"
#include "ablasim/grid.h" /* abl_bc, FACE_*: the grid's, not the scenario's */
#include "ablasim/spectral.h"

struct abl_potential {
    const abl_grid *g;
    bool grounded[6];
    abl_spectral *sp;     /* spectral preconditioner, else NULL */
    abl_mg *mg;           /* multigrid preconditioner, else NULL (neither: Jacobi) */
    const uint8_t *held;  /* NULL: nothing held */
    const abl_potential_couple *couple; /* sub-voxel coupled free voxels (potential_set_couples) */
    size_t ncouple;
    /* conductance of the face between c and c+1 (gx), c+sy (gy), c+sz (gz) [S/m^3] (0 at the
     * last layer), and of c's grounded domain faces together (gb) */
    double *gx, *gy, *gz, *gb;
    double *pre;          /* preconditioner scale: S^-1/2 (spectral) or 1/diag (Jacobi); unused
                           * with multigrid */
    abl_pcg *cg;          /* CG vectors; its two scratch vectors serve the helpers below */
    double *work;         /* nz: per-plane sums of matvec, current and dissipation */
    double *zrow;         /* nx zeros: the conductances of missing neighbour rows */
    uint8_t *row_clean;   /* [ny nz] no held voxel in the row nor in its 4 neighbour rows */
    abl_profile *prof;    /* per-kernel timers (NULL: none) */
    /* far ground (potential_set_far_ground): the grounded faces lead to a ground at infinity */
    bool far;
    bool far_built;       /* gb and gbq were built with the far ground (the last
                           * potential_set_conductivity): what dissipation and far power read */
    double far_c[3];      /* centre of the current [m] */
    double *gbq;          /* [n] the part of gb whose dissipation lies inside the voxel (the
                           * half voxel); the rest is dissipated beyond the grid */
};

abl_status potential_set_far_ground(abl_potential *p, const double centre_m[3], abl_error *err)
{
    p->far = centre_m != NULL;
    if (!p->far) return ABL_OK;
    memcpy(p->far_c, centre_m, sizeof p->far_c);
    if (!p->gbq && !(p->gbq = grid_alloc_field(p->g, 0.0)))
        return abl_fail(err, ABL_ENOMEM, "out of memory (far ground, %zu voxels)", p->g->n);
    return ABL_OK;
}

/* Far ground through voxel (i, j, k)'s domain face f: the half voxel in series with the
 * exterior, a homogeneous medium of the voxel's sigma in which the potential is the monopole
 * V = A / r about the current's centre c. Its outward current density at the face point x is
 * then sigma ((x - c).n / r^2) V: the first-order asymptotic condition dV/dn = -(r.n / r^2) V for
 * the exterior Laplace problem (Bayliss, Gunzburger & Turkel 1982, SIAM J Appl Math 42:430).
 * Per unit area the exterior conducts sigma d / r^2 (d = (x - c).n), the half voxel 2 sigma / h;
 * in series, per voxel volume (divided by h): the conductance returned [S/m^3]. *in_share: the
 * fraction of the face's dissipation that falls in the half voxel (its resistance's share). */
static double far_wall(const abl_potential *p, double sigma, int i, int j, int k, int f,
                       double *in_share)
{
    double x[3];
    grid_voxel_centre_m(p->g, i, j, k, x);
    const int ax = f / 2;
    const double sgn = (f % 2) ? 1.0 : -1.0, h = p->g->h_m[ax];
    x[ax] += sgn * 0.5 * h;
    double r2 = 0.0;
    for (int a = 0; a < 3; a++) r2 += (x[a] - p->far_c[a]) * (x[a] - p->far_c[a]);
    /* the face's distance from the centre along its normal; a centre closer than half a
     * voxel to the face plane (or beyond it) would make the exterior a short or an open
     * circuit: held at half a voxel (the electrodes lie inside the grid, so only a face
     * beside the centre comes near it) */
    const double d = fmax(sgn * (x[ax] - p->far_c[ax]), 0.5 * h);
    const double r_in = 0.5 * h / sigma, r_out = r2 / (sigma * d); /* resistances x area */
    *in_share = r_in / (r_in + r_out);
    return 1.0 / (h * (r_in + r_out));
}

void potential_set_profile(abl_potential *p, abl_profile *prof)
{
    p->prof = prof;
}

void potential_destroy(abl_potential *p)
{
    if (!p) return;
    spectral_destroy(p->sp);
    mg_destroy(p->mg);
    grid_free_field(p->gx);
    grid_free_field(p->gy);
    grid_free_field(p->gz);
    grid_free_field(p->gb);
    grid_free_field(p->gbq);
    grid_free_field(p->pre);
    pcg_destroy(p->cg);
    free(p->work);
    free(p->zrow);
    free(p->row_clean);
    free(p);
}

abl_status potential_create(const abl_grid *g, const bool grounded[6],
                            const abl_potential_opts *opts, abl_potential **out, abl_error *err)
{
    *out = NULL;
    bool any = false;
    for (int f = 0; f < 6; f++) any = any || grounded[f];
    /* without a ground only the held values fix the potential: fine for CG on the free block
     * (bipolar electrodes), not for the spectral preconditioner, whose Laplacian is singular */
    if (!any && opts->preconditioner == ABL_PRECOND_SPECTRAL)
        return abl_fail(err, ABL_EINVAL,
                        "electric potential: no grounded face; the spectral preconditioner "
                        "needs one (dispersive pad or far ground); without a ground use the "
                        "multigrid one, with electrodes at two values (bipolar)");
    abl_potential *p = calloc(1, sizeof *p);
    if (!p) return abl_fail(err, ABL_ENOMEM, "out of memory (potential solver)");
    p->g = g;
    memcpy(p->grounded, grounded, sizeof p->grounded);
    p->gx = grid_alloc_field(g, 0.0);
    p->gy = grid_alloc_field(g, 0.0);
    p->gz = grid_alloc_field(g, 0.0);
    p->gb = grid_alloc_field(g, 0.0);
    p->pre = grid_alloc_field(g, 0.0);
    p->work = malloc((size_t)g->nz * sizeof(double));
    p->zrow = calloc((size_t)g->nx, sizeof(double));
    p->row_clean = calloc((size_t)g->ny * (size_t)g->nz, 1);
    if (!p->zrow || !p->row_clean || !p->gx || !p->gy || !p->gz || !p->gb || !p->pre || !p->work) {
        potential_destroy(p);
        return abl_fail(err, ABL_ENOMEM,
                        "out of memory for the potential solver (%zu voxels x 40 B)", g->n);
    }
    abl_status st = pcg_create(g,
                               &(abl_pcg_opts){opts->tol, opts->max_iter, "electric potential: ",
                                               "raise max_iterations or loosen solver_tolerance",
                                               "check that every tissue has a positive "
                                               "conductivity",
                                               0.0 /* relative to ||b|| */},
                               &p->cg, err);
    if (!st && opts->preconditioner == ABL_PRECOND_SPECTRAL)
        st = spectral_create(g, grounded, &p->sp, err);
    else if (!st && opts->preconditioner == ABL_PRECOND_MULTIGRID)
        st = mg_create(g, &p->mg, err);
    else if (!st && opts->preconditioner != ABL_PRECOND_JACOBI)
        st = abl_fail(err, ABL_EINVAL, "electric potential: unknown preconditioner %d",
                      opts->preconditioner);
    if (st) {
        potential_destroy(p);
        return st;
    }
    *out = p;
    return ABL_OK;
}

static inline bool is_held(const abl_potential *p, size_t c)
{
    return p->held && p->held[c];
}

/* The faces between free voxel c and held voxels: the neighbour, the axis and the face array
 * entry (gx/gy/gz at the lower voxel of the pair); none when c is itself held. */
typedef struct {
    size_t nb;
    int axis;
    double *g;
} coupled_face;

static int coupled_faces(const abl_potential *p, size_t c, coupled_face out[6])
{
    const abl_grid *g = p->g;
    if (p->held[c]) return 0;
    const int ijk[3] = {(int)(c % g->sy), (int)(c / g->sy % (size_t)g->ny), (int)(c / g->sz)};
    const int na[3] = {g->nx, g->ny, g->nz};
    const size_t stride[3] = {1, g->sy, g->sz};
    double *const garr[3] = {p->gx, p->gy, p->gz};
    int n = 0;
    for (int f = 0; f < 6; f++) {
        const int a = f / 2, d = f % 2 ? 1 : -1;
        if (ijk[a] + d < 0 || ijk[a] + d >= na[a]) continue;
        const size_t nb = d > 0 ? c + stride[a] : c - stride[a];
        if (!p->held[nb]) continue;
        out[n++] = (coupled_face){nb, a, &garr[a][d > 0 ? c : nb]};
    }
    return n;
}

void potential_set_couples(abl_potential *p, const abl_potential_couple *couples, size_t n)
{
    p->couple = couples;
    p->ncouple = couples ? n : 0;
}

/* Conductance [S/m^3] of the face between voxels a and b (spacing h along the face normal). */
static inline double face_g(const abl_potential *p, const double *s, size_t a, size_t b,
                            bool metal, double ih2)
{
    const bool ha = is_held(p, a), hb = is_held(p, b);
    if (metal && (ha || hb)) {
        if (ha && hb) return 0.0; /* inside the metal: no field */
        return abl_wall_conductance(ha ? s[b] : s[a], ih2);
    }
    return abl_face_conductance(s[a], s[b], ih2);
}

abl_status potential_set_conductivity(abl_potential *p, const double *s, const uint8_t *held,
                                      bool metal, abl_error *err)
{
    const abl_grid *g = p->g;
    p->held = held;
    const double ih2[3] = {1.0 / (g->h_m[0] * g->h_m[0]), 1.0 / (g->h_m[1] * g->h_m[1]),
                           1.0 / (g->h_m[2] * g->h_m[2])};
    /* Every face as an ordinary one first, row by row in branch-free loops (they vectorise;
     * the per-voxel held tests cost 3x more), then, in metal mode, the faces of held voxels
     * redone by the metal rule (face_g): each face gets the value face_g gives it, bitwise. */
    const int nx = g->nx, ny = g->ny, nz = g->nz;
    const size_t sy = g->sy, sz = g->sz;
    size_t bad = (size_t)-1;
#pragma omp parallel for schedule(static) reduction(min : bad)
    for (int k = 0; k < nz; k++)
        for (int j = 0; j < ny; j++) {
            const size_t row = (size_t)k * sz + (size_t)j * sy;
            const double *sr = s + row;
            double *gxr = p->gx + row, *gyr = p->gy + row, *gzr = p->gz + row, *gbr = p->gb + row;
            for (int i = 0; i < nx; i++)
                if (!(sr[i] > 0.0) || !isfinite(sr[i])) {
                    if (row + (size_t)i < bad) bad = row + (size_t)i;
                }
#pragma omp simd
            for (int i = 0; i < nx - 1; i++) gxr[i] = abl_face_conductance(sr[i], sr[i + 1], ih2[0]);
            gxr[nx - 1] = 0.0;
            if (j < ny - 1) {
#pragma omp simd
                for (int i = 0; i < nx; i++) gyr[i] = abl_face_conductance(sr[i], sr[i + sy], ih2[1]);
            } else {
                for (int i = 0; i < nx; i++) gyr[i] = 0.0;
            }
            if (k < nz - 1) {
#pragma omp simd
                for (int i = 0; i < nx; i++) gzr[i] = abl_face_conductance(sr[i], sr[i + sz], ih2[2]);
            } else {
                for (int i = 0; i < nx; i++) gzr[i] = 0.0;
            }
            /* grounded domain faces: the wall half a voxel away (faces summed in FACE_ order) */
            const bool yz_edge = j == 0 || j == ny - 1 || k == 0 || k == nz - 1;
            for (int i = 0; i < nx; i++) {
                if (!yz_edge && i > 0 && i < nx - 1) {
                    gbr[i] = 0.0;
                    if (p->far) p->gbq[row + (size_t)i] = 0.0;
                    continue;
                }
                double gb = 0.0, gq = 0.0;
                const int at[6] = {i == 0, i == nx - 1, j == 0, j == ny - 1, k == 0, k == nz - 1};
                for (int f = 0; f < 6; f++)
                    if (at[f] && p->grounded[f]) {
                        if (p->far) {
                            double share_in;
                            const double gf = far_wall(p, sr[i], i, j, k, f, &share_in);
                            gb += gf;
                            gq += gf * share_in;
                        } else {
                            gb += abl_wall_conductance(sr[i], ih2[f / 2]);
                        }
                    }
                gbr[i] = gb;
                if (p->far) p->gbq[row + (size_t)i] = gq;
            }
        }
    if (bad == (size_t)-1 && held && metal) {
        /* serial: a face between two held voxels is visited from both */
        for (int k = 0; k < nz; k++)
            for (int j = 0; j < ny; j++)
                for (int i = 0; i < nx; i++) {
                    const size_t c = ABL_IDX(g, i, j, k);
                    if (!held[c]) continue;
                    if (i < nx - 1) p->gx[c] = face_g(p, s, c, c + 1, true, ih2[0]);
                    if (i > 0) p->gx[c - 1] = face_g(p, s, c - 1, c, true, ih2[0]);
                    if (j < ny - 1) p->gy[c] = face_g(p, s, c, c + sy, true, ih2[1]);
                    if (j > 0) p->gy[c - sy] = face_g(p, s, c - sy, c, true, ih2[1]);
                    if (k < nz - 1) p->gz[c] = face_g(p, s, c, c + sz, true, ih2[2]);
                    if (k > 0) p->gz[c - sz] = face_g(p, s, c - sz, c, true, ih2[2]);
                }
    }
    if (bad != (size_t)-1)
        return abl_fail(err, ABL_EINVAL,
                        "electric potential: conductivity %g S/m at voxel %zu; it must be positive "
                        "and finite",
                        s[bad], bad);
    /* rows whose dissipation needs no held-voxel tests (potential_dissipation's fast path):
     * first whether a row holds a held voxel (row_clean as scratch), then the neighbours */
    const size_t nrow = (size_t)ny * (size_t)nz;
    uint8_t *any = p->row_clean;
    for (size_t r = 0; r < nrow; r++) {
        uint8_t a = 0;
        for (int i = 0; held && i < nx; i++) a |= held[r * sy + (size_t)i];
        any[r] = a ? 2 : 0; /* bit 1: the row itself */
    }
    for (int k = 0; k < nz; k++)
        for (int j = 0; j < ny; j++) {
            const size_t r = (size_t)k * (size_t)ny + (size_t)j;
            const bool dirty = (any[r] & 2) || (j > 0 && (any[r - 1] & 2)) ||
                               (j < ny - 1 && (any[r + 1] & 2)) ||
                               (k > 0 && (any[r - (size_t)ny] & 2)) ||
                               (k < nz - 1 && (any[r + (size_t)ny] & 2));
            any[r] = (uint8_t)((any[r] & 2) | (dirty ? 0 : 1)); /* bit 0: clean */
        }
    /* sub-voxel coupling: c's faces to held voxels carry G_m2 sigma together (serial: a few
     * thousand voxels beside the electrodes, each face written by its one coupled voxel) */
    for (size_t q = 0; held && q < p->ncouple; q++) {
        const size_t c = p->couple[q].c;
        coupled_face f[6];
        const int nf = coupled_faces(p, c, f);
        double gh = 0.0;
        for (int i = 0; i < nf; i++) gh += ih2[f[i].axis];
        if (!(gh > 0.0)) continue; /* not beside the held set: nothing to couple */
        const double scale = p->couple[q].G_m2 / gh;
        for (int i = 0; i < nf; i++)
            *f[i].g = scale * abl_face_conductance(s[c], s[f[i].nb], ih2[f[i].axis]);
    }
    p->far_built = p->far;
    /* multigrid levels from the final faces (couplings included); it needs no scales */
    if (p->mg) return mg_setup(p->mg, p->gx, p->gy, p->gz, p->gb, held, err);
    /* preconditioner scales from the diagonal of K (needs the neighbours' faces: second pass) */
#pragma omp parallel for schedule(static)
    for (int k = 0; k < g->nz; k++)
        for (int j = 0; j < g->ny; j++)
            for (int i = 0; i < g->nx; i++) {
                const size_t c = ABL_IDX(g, i, j, k);
                double dk = p->gb[c] + p->gx[c] + p->gy[c] + p->gz[c];
                double dl = 0.0; /* diagonal of -L_h with the same face types, unit coefficient */
                if (i > 0) dk += p->gx[c - 1], dl += ih2[0];
                else if (p->grounded[FACE_XMIN]) dl += 2.0 * ih2[0];
                if (i < g->nx - 1) dl += ih2[0];
                else if (p->grounded[FACE_XMAX]) dl += 2.0 * ih2[0];
                if (j > 0) dk += p->gy[c - g->sy], dl += ih2[1];
                else if (p->grounded[FACE_YMIN]) dl += 2.0 * ih2[1];
                if (j < g->ny - 1) dl += ih2[1];
                else if (p->grounded[FACE_YMAX]) dl += 2.0 * ih2[1];
                if (k > 0) dk += p->gz[c - g->sz], dl += ih2[2];
                else if (p->grounded[FACE_ZMIN]) dl += 2.0 * ih2[2];
                if (k < g->nz - 1) dl += ih2[2];
                else if (p->grounded[FACE_ZMAX]) dl += 2.0 * ih2[2];
                /* a free voxel cut off from everything (dk = 0) cannot occur with sigma > 0,
                 * except inside the metal; held voxels are masked anyway */
                if (!(dk > 0.0)) dk = dl > 0.0 ? dl : 1.0;
                p->pre[c] = p->sp ? 1.0 / sqrt(dk / dl) : 1.0 / dk;
            }
    return ABL_OK;
}

/* y = K x at every voxel (held rows too); returns x.y summed per plane in plane order (in CG
 * x is zero at held voxels, so that is the free voxels' p.Kp). Rows are streamed with their
 * neighbour rows and face arrays as unit-stride, branch-free loops; missing neighbours at the
 * domain faces get a zero conductance row (zrow) and any valid row as value. */
static double matvec(abl_potential *p, const double *restrict x, double *restrict y)
{
    const abl_grid *g = p->g;
    const size_t sy = g->sy, sz = g->sz;
    const int nx = g->nx;
    const double *gx = p->gx, *gy = p->gy, *gz = p->gz, *gb = p->gb, *zrow = p->zrow;
#pragma omp parallel for schedule(static)
    for (int k = 0; k < g->nz; k++) {
        double dot = 0.0;
        for (int j = 0; j < g->ny; j++) {
            const size_t row = (size_t)k * sz + (size_t)j * sy;
            const double *xc = x + row, *ge = gx + row, *gbr = gb + row;
            const double *gs = j > 0 ? gy + row - sy : zrow, *xs = j > 0 ? xc - sy : xc;
            const double *gn = gy + row, *xn = j < g->ny - 1 ? xc + sy : xc;
            const double *gd = k > 0 ? gz + row - sz : zrow, *xd = k > 0 ? xc - sz : xc;
            const double *gu = gz + row, *xu = k < g->nz - 1 ? xc + sz : xc;
            double *yr = y + row;
#define KX(i, west, east)                                                                            (gbr[i] * xc[i] + (west) + (east) + gs[i] * (xc[i] - xs[i]) + gn[i] * (xc[i] - xn[i]) +            gd[i] * (xc[i] - xd[i]) + gu[i] * (xc[i] - xu[i]))
            if (nx == 1) {
                yr[0] = KX(0, 0.0, 0.0);
            } else {
                yr[0] = KX(0, 0.0, ge[0] * (xc[0] - xc[1]));
#pragma omp simd
                for (int i = 1; i < nx - 1; i++)
                    yr[i] = KX(i, ge[i - 1] * (xc[i] - xc[i - 1]), ge[i] * (xc[i] - xc[i + 1]));
                yr[nx - 1] = KX(nx - 1, ge[nx - 2] * (xc[nx - 1] - xc[nx - 2]), 0.0);
            }
#undef KX
#pragma omp simd reduction(+ : dot)
            for (int i = 0; i < nx; i++) dot += xc[i] * yr[i];
        }
        p->work[k] = dot;
    }
    double d = 0.0;
    for (int k = 0; k < g->nz; k++) d += p->work[k];
    return d;
}

static double apply(void *ctx, const double *restrict x, double *restrict y)
{
    return matvec(ctx, x, y);
}

/* z = M^-1 r (r zero at held voxels; pcg_solve makes z zero there) */
static abl_status precondition(void *ctx, const double *r, double *z, abl_error *err)
{
    abl_potential *p = ctx;
    const size_t n = p->g->n;
    const double *s = p->pre;
    if (p->sp) return spectral_solve_scaled(p->sp, 0.0, 1.0, s, r, z, err);
    if (p->mg) {
        mg_apply(p->mg, r, z);
        return ABL_OK;
    }
#pragma omp parallel for schedule(static)
    for (size_t c = 0; c < n; c++) z[c] = s[c] * r[c];
    return ABL_OK;
}

/* ||b||: the right side of the lifted problem, -K V_held on the free voxels (the current the
 * held values drive into their free neighbours); independent of the guess. Only free voxels
 * beside a held one (or the coupled ones) are non-zero: (K V_held)_c = -sum over c's held
 * neighbours nb of g(c, nb) V_nb; found from the mask alone, without a matvec. */
static double rhs_norm(abl_potential *p, const double *V)
{
    const abl_grid *g = p->g;
    if (!p->held) return 0.0;
    const size_t sy = g->sy, sz = g->sz;
    const uint8_t *h = p->held;
#pragma omp parallel for schedule(static)
    for (int k = 0; k < g->nz; k++) {
        double t = 0.0;
        for (int j = 0; j < g->ny; j++) {
            /* a row with no held voxel on any face adds q = 0 everywhere: +0, the same bits */
            if (p->row_clean[(size_t)k * (size_t)g->ny + (size_t)j] & 1) continue;
            for (int i = 0; i < g->nx; i++) {
                const size_t c = ABL_IDX(g, i, j, k);
                if (h[c]) continue;
                double q = 0.0;
                if (i > 0 && h[c - 1]) q += p->gx[c - 1] * V[c - 1];
                if (i < g->nx - 1 && h[c + 1]) q += p->gx[c] * V[c + 1];
                if (j > 0 && h[c - sy]) q += p->gy[c - sy] * V[c - sy];
                if (j < g->ny - 1 && h[c + sy]) q += p->gy[c] * V[c + sy];
                if (k > 0 && h[c - sz]) q += p->gz[c - sz] * V[c - sz];
                if (k < g->nz - 1 && h[c + sz]) q += p->gz[c] * V[c + sz];
                t += q * q;
            }
        }
        p->work[k] = t;
    }
    double t = 0.0;
    for (int k = 0; k < g->nz; k++) t += p->work[k];
    return sqrt(t);
}

abl_status potential_solve(abl_potential *p, double *V, const double *alt, int *iterations,
                           double *rel_residual, abl_error *err)
{
    const size_t n = p->g->n;
    const double bnorm = rhs_norm(p, V);
    if (bnorm == 0.0) {
        /* every held value is 0 (or nothing is held): V = 0 */
        *iterations = 0;
        *rel_residual = 0.0;
#pragma omp parallel for schedule(static)
        for (size_t c = 0; c < n; c++)
            if (!is_held(p, c)) V[c] = 0.0;
        return ABL_OK;
    }
    /* r = -K V (the right side is zero: the held values drive the solution); of two guesses
     * the one with the smaller residual, its K V handed to CG (no second matvec) */
    double *KV = pcg_scratch(p->cg, 1);
    matvec(p, V, KV);
    if (alt) {
        double *KA = pcg_scratch(p->cg, 0);
        matvec(p, alt, KA);
        if (pcg_norm_free(p->cg, p->held, KA) < pcg_norm_free(p->cg, p->held, KV)) {
            memcpy(V, alt, n * sizeof(double));
            KV = KA;
        }
    }
    /* the preconditioner is always applied (Jacobi scaling without the spectral solve) */
    /* operator traffic: x, gx, gy, gz, gb read, y written (with its write-allocate): 56 B */
    const abl_pcg_system sys = {apply, precondition, p, p->held, p->prof,
                                ABL_KER_POTENTIAL_OPERATOR, 56.0 * (double)n};
    return pcg_solve_ax(p->cg, &sys, NULL, bnorm, V, KV, iterations, rel_residual, err);
}

double potential_current_A(abl_potential *p, const double *V)
{
    const abl_grid *g = p->g;
    if (!p->held) return 0.0;
    /* (K V)_c at the held voxels only, by matvec's expression term for term (missing
     * neighbours: a zero conductance times a zero difference, and the literal 0.0 for the x
     * ends), so the same bits as a full matvec without its cost */
    const size_t sy = g->sy, sz = g->sz;
    const int nx = g->nx, ny = g->ny, nz = g->nz;
    const double *gx = p->gx, *gy = p->gy, *gz = p->gz, *gb = p->gb;
#pragma omp parallel for schedule(static)
    for (int k = 0; k < nz; k++) {
        double s = 0.0;
        for (int j = 0; j < ny; j++) {
            if ((p->row_clean[(size_t)k * (size_t)ny + (size_t)j] & 2) == 0) continue;
            for (int i = 0; i < nx; i++) {
                const size_t c = ABL_IDX(g, i, j, k);
                if (!p->held[c]) continue;
                const double xc = V[c];
                const double west = i > 0 ? gx[c - 1] * (xc - V[c - 1]) : 0.0;
                const double east = i < nx - 1 ? gx[c] * (xc - V[c + 1]) : 0.0;
                const double ts = j > 0 ? gy[c - sy] * (xc - V[c - sy]) : 0.0 * (xc - xc);
                const double tn = j < ny - 1 ? gy[c] * (xc - V[c + sy]) : gy[c] * (xc - xc);
                const double td = k > 0 ? gz[c - sz] * (xc - V[c - sz]) : 0.0 * (xc - xc);
                const double tu = k < nz - 1 ? gz[c] * (xc - V[c + sz]) : gz[c] * (xc - xc);
                s += xc * (gb[c] * xc + west + east + ts + tn + td + tu);
            }
        }
        p->work[k] = s;
    }
    double s = 0.0;
    for (int k = 0; k < g->nz; k++) s += p->work[k];
    return s * grid_voxel_volume_m3(g);
}

/* Share of the dissipation of the face (c, nb) that voxel c receives: half when both are free
 * (or both held), all of it when c is free and nb held, none when c is held and nb free. */
static inline double share(const abl_potential *p, size_t c, size_t nb)
{
    const bool hc = is_held(p, c), hn = is_held(p, nb);
    if (hc == hn) return 0.5;
    return hc ? 0.0 : 1.0;
}

double potential_dissipation(abl_potential *p, const double *V, double *q_W_m3)
{
    const abl_grid *g = p->g;
    const size_t sy = g->sy, sz = g->sz;
    /* far ground: a boundary voxel keeps only its half voxel's share of the face dissipation
     * (potential_far_power has the rest) */
    const double *gx = p->gx, *gy = p->gy, *gz = p->gz, *gb = p->far_built ? p->gbq : p->gb;
    const int nx = g->nx;
#pragma omp parallel for schedule(static)
    for (int k = 0; k < g->nz; k++) {
        double tot = 0.0;
        for (int j = 0; j < g->ny; j++) {
            if (nx > 2 && (p->row_clean[(size_t)k * (size_t)g->ny + (size_t)j] & 1)) {
                /* no held voxel on any face of this row: every share is 1/2; a missing
                 * neighbour (domain face) reads a zero conductance and d = 0, adding +0 (the
                 * general loop skips it: the same bits). Sums in voxel order, as below. */
                const size_t row = (size_t)k * sz + (size_t)j * sy;
                const double *xc = V + row, *ge = gx + row, *gbr = gb + row, *zr = p->zrow;
                const double *gs = j > 0 ? gy + row - sy : zr, *xs = j > 0 ? xc - sy : xc;
                const double *gn = gy + row, *xn = j < g->ny - 1 ? xc + sy : xc;
                const double *gd = k > 0 ? gz + row - sz : zr, *xd = k > 0 ? xc - sz : xc;
                const double *gu = gz + row, *xu = k < g->nz - 1 ? xc + sz : xc;
                double *qr = q_W_m3 + row;
#define EROW(i, east, west)                                                                      \
    {                                                                                            \
        const double vc = xc[i];                                                                 \
        double e = gbr[i] * vc * vc, d;                                                          \
        east;                                                                                    \
        west;                                                                                    \
        d = vc - xn[i], e += 0.5 * gn[i] * d * d;                                                \
        d = vc - xs[i], e += 0.5 * gs[i] * d * d;                                                \
        d = vc - xu[i], e += 0.5 * gu[i] * d * d;                                                \
        d = vc - xd[i], e += 0.5 * gd[i] * d * d;                                                \
        qr[i] = e;                                                                               \
    }
                EROW(0, (d = vc - xc[1], e += 0.5 * ge[0] * d * d), (void)0)
#pragma omp simd
                for (int i = 1; i < nx - 1; i++)
                    EROW(i, (d = vc - xc[i + 1], e += 0.5 * ge[i] * d * d),
                         (d = vc - xc[i - 1], e += 0.5 * ge[i - 1] * d * d))
                EROW(nx - 1, (void)0, (d = vc - xc[nx - 2], e += 0.5 * ge[nx - 2] * d * d))
#undef EROW
                for (int i = 0; i < nx; i++) tot += qr[i];
                continue;
            }
            for (int i = 0; i < g->nx; i++) {
                const size_t c = ABL_IDX(g, i, j, k);
                const double vc = V[c];
                double d, e = gb[c] * vc * vc;
#define FACE(cond, gface, nb)                                                                    \
    if (cond) {                                                                                  \
        d = vc - V[nb];                                                                          \
        e += share(p, c, nb) * gface * d * d;                                                    \
    }
                FACE(i < g->nx - 1, gx[c], c + 1)
                FACE(i > 0, gx[c - 1], c - 1)
                FACE(j < g->ny - 1, gy[c], c + sy)
                FACE(j > 0, gy[c - sy], c - sy)
                FACE(k < g->nz - 1, gz[c], c + sz)
                FACE(k > 0, gz[c - sz], c - sz)
#undef FACE
                q_W_m3[c] = e;
                tot += e;
            }
        }
        p->work[k] = tot;
    }
    /* a coupled face stands for the tissue between the true surface and the coupled voxel's
     * centre: half of its dissipation goes to the held side (derivation in potential.h) */
    for (size_t q = 0; p->held && q < p->ncouple; q++) {
        const size_t c = p->couple[q].c;
        coupled_face f[6];
        const int nf = coupled_faces(p, c, f);
        for (int i = 0; i < nf; i++) {
            const double dv = V[c] - V[f[i].nb], e = 0.5 * *f[i].g * dv * dv;
            q_W_m3[c] -= e;
            q_W_m3[f[i].nb] += e;
        }
    }
    double s = 0.0;
    for (int k = 0; k < g->nz; k++) s += p->work[k];
    return s * grid_voxel_volume_m3(g);
}

double potential_far_power(abl_potential *p, const double *V)
{
    const abl_grid *g = p->g;
    if (!p->far_built) return 0.0;
    const int nx = g->nx, ny = g->ny, nz = g->nz;
#pragma omp parallel for schedule(static)
    for (int k = 0; k < nz; k++) {
        double s = 0.0;
        for (int j = 0; j < ny; j++) {
            const bool yz_edge = j == 0 || j == ny - 1 || k == 0 || k == nz - 1;
            for (int i = 0; i < nx; i++) {
                if (!yz_edge && i > 0 && i < nx - 1) i = nx - 1; /* interior: no domain face */
                const size_t c = ABL_IDX(g, i, j, k);
                s += (p->gb[c] - p->gbq[c]) * V[c] * V[c];
            }
        }
        p->work[k] = s;
    }
    double s = 0.0;
    for (int k = 0; k < nz; k++) s += p->work[k];
    return s * grid_voxel_volume_m3(g);
}
