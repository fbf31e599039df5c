/* basic.c - the two simple sources of the core engine.
 *  volumetric:        power P(t) [W] spread uniformly over the shape's volume as the grid sees
 *                     it: voxel i, of volume fraction f_i inside the shape (shape_fractions),
 *                     gets q_i = P f_i / (V_voxel sum_j f_j), so sum_i q_i V_voxel = P exactly
 *                     (to round-off) wherever the shape falls relative to the grid;
 *  fixed_temperature: the shape held at T(t) [C] (probe or electrode surface): the voxels
 *                     whose centre lies inside it or which are at least half inside are held,
 *                     and each free voxel beside them is coupled to the shape's true surface
 *                     (below).
 * Both use volume fractions (issue 15): with the centre rule a source's volume, and with it the
 * temperature at its centre, jumps with its offset to the grid (-21.9 K at 2 mm for a 10 W,
 * 5 mm sphere; docs/VERIFICATION.md "Sub-voxel sources").
 * Later modalities add files beside this one implementing abl_source_ops. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "ablasim/applicator.h"
#include "ablasim/sim.h"
#include "ablasim/source.h"

/* Sub-voxel surface of a fixed_temperature shape (the symmetric embedded-boundary
 * discretisation of Gibou, Fedkiw, Cheng & Kang 2002, J Comput Phys 176:205). Holding voxels
 * alone (until session 20: those at least half inside, the driver's half-volume rule) puts the
 * held surface at their centres, up to a voxel inside the true one: a 2 mm sphere held at 57 C
 * in perfused liver (reference case B) came out 35 % too cool outside at 1 mm and 17 % at
 * 0.5 mm (first order), and a shape thinner than half a voxel held nothing at all. Now every
 * voxel whose centre is inside is held (and any at least half inside: for a convex shape the
 * same set but for ties), so every free voxel has its centre outside; a free voxel b beside a
 * held voxel n whose centre is inside sees the surface on the segment between the centres at
 * the fraction theta of the spacing h from b. The flux through that face is then
 * k_b (T_pin - T_b) / (theta h) per face area (through b's own tissue), i.e. k_b / (theta h^2)
 * per volume where the stencil conducts its face rule k_face / h^2 (the harmonic mean with the
 * held voxel's k): the source adds (k_b / theta - k_face) / h^2 (T_pin - T_b), k (1/theta - 1) /
 * h^2 for one tissue, as coupling heat (source.h heat_G, taken implicitly by every scheme, so a
 * small theta costs no stability); k as the stencil has it, frozen or not (sim_tissue_k).
 * theta by bisection on the shape's inside test, at least FIXED_THETA_MIN. Second order in h
 * for a smooth surface (Gibou et al.; measured in suite analytic). */
#define FIXED_THETA_MIN 0.01
#define FIXED_BISECT_STEPS 48

typedef struct {
    abl_source_type type;
    abl_schedule schedule; /* borrowed from the scenario */
    double on_s, off_s;
    size_t n;
    size_t *idx;
    double *val;  /* q [W/m^3] or T [C], refreshed by update */
    double *frac; /* volume fraction of each voxel inside the shape, (0, 1] */
    double *w;    /* volumetric: f_i / (V_voxel sum f) [1/m^3], so q_i = P w_i */
    /* fixed_temperature's coupled voxels (ascending, distinct), each with its faces to held
     * voxels cpl_first[i] .. cpl_first[i + 1] - 1 (held voxel, 1/(theta h^2), 1/h^2 [1/m^2]);
     * per step their G [W/m^3/K] and heat */
    const abl_sim *sim;
    size_t ncpl;
    size_t *cpl_idx, *cpl_first, *face_n;
    double *face_a_m2, *face_c_m2;
    double *cpl_G, *cpl_q;
    /* per coupled voxel: its G when every tissue involved has a constant k and is liquid
     * (NAN: compute each step), filled at the first update (the simulation's tables are
     * complete then); Tl: the liquidus when freezing is modelled, else -INFINITY */
    double *cpl_G0;
    bool g0_ready;
    double Tl;
    /* fixed_temperature's held voxels (ascending) and their temperatures per step */
    size_t nhold;
    size_t *hold_idx;
    double *hold_T;
    /* the lowest and highest value of the schedule (piecewise linear between its points, held
     * at the ends: every value it takes lies in between) */
    double T_lo_C, T_hi_C;
} basic_state;

static abl_status basic_update(abl_source *s, const abl_field_view *v, abl_source_contrib *out,
                               abl_error *err)
{
    (void)err;
    basic_state *b = s->state;
    *out = (abl_source_contrib){0};
    /* heat: for the step's interval (applicator.h source_window_on); held temperatures: at the
     * time asked (source_window_at). Off: no heat, nothing held. */
    if (b->type == SRC_VOLUMETRIC ? !source_window_on(v, b->on_s, b->off_s)
                                  : !source_window_at(v->t_s, b->on_s, b->off_s))
        return ABL_OK;
    /* power: its mean over the step (exact energy for any schedule, source.h step_t0_s);
     * temperature: the value at the time asked for */
    double x = b->type == SRC_VOLUMETRIC && v->step_h_s > 0.0
                   ? schedule_average(&b->schedule, v->step_t0_s, v->step_t0_s + v->step_h_s)
                   : schedule_eval(&b->schedule, v->t_s);
    if (b->type == SRC_VOLUMETRIC) {
        for (size_t i = 0; i < b->n; i++) b->val[i] = x * b->w[i];
        out->n_heat = b->n;
        out->heat_idx = b->idx;
        out->heat_q_W_m3 = b->val;
        out->heat_distinct = b->n; /* the shape's voxels, each once (shape_fractions) */
    } else {
        for (size_t i = 0; i < b->nhold; i++) b->hold_T[i] = x;
        out->n_pin = b->nhold;
        out->pin_idx = b->hold_idx;
        out->pin_T_C = b->hold_T;
        out->pin_frac = NULL; /* the held set is decided here (create) */
        /* the free neighbours' coupling to the true surface at x, from the field at the start
         * of the step (source.h heat_G) */
        const abl_sim *sim = b->sim;
        if (!b->g0_ready) {
            /* constant k everywhere the coupling looks: G does not depend on T (above the
             * liquidus) and is computed once */
            for (size_t i = 0; i < b->ncpl; i++) {
                const int mb = v->material[b->cpl_idx[i]];
                bool cst = sim->k_coeff[mb] == 0.0;
                double G = 0.0;
                for (size_t f = b->cpl_first[i]; f < b->cpl_first[i + 1]; f++) {
                    const int mn = v->material[b->face_n[f]];
                    cst = cst && sim->k_coeff[mn] == 0.0;
                    G += sim->k37[mb] * b->face_a_m2[f] -
                         abl_face_conductance(sim->k37[mb], sim->k37[mn], b->face_c_m2[f]);
                }
                b->cpl_G0[i] = cst ? (G > 0.0 ? G : 0.0) : NAN;
            }
            b->g0_ready = true;
        }
        const bool liquid_ref = x >= b->Tl;
        for (size_t i = 0; i < b->ncpl; i++) {
            const size_t c = b->cpl_idx[i];
            if (liquid_ref && v->T_C[c] >= b->Tl && !isnan(b->cpl_G0[i])) {
                b->cpl_G[i] = b->cpl_G0[i];
                b->cpl_q[i] = b->cpl_G[i] * (x - v->T_C[c]);
                continue;
            }
            /* the face to the surface conducts k_b / (theta h) per area through b's own tissue
             * (k at its temperature, frozen or not, as the stencil has it); the stencil already
             * conducts its face rule, the harmonic mean with the held voxel's k at T_pin */
            const double kb = sim_tissue_k(sim, v->material[c], v->T_C[c]);
            double G = 0.0;
            for (size_t f = b->cpl_first[i]; f < b->cpl_first[i + 1]; f++) {
                const double kn = sim_tissue_k(sim, v->material[b->face_n[f]], x);
                G += kb * b->face_a_m2[f] - abl_face_conductance(kb, kn, b->face_c_m2[f]);
            }
            /* (negative only where a much better conducting held tissue meets a surface
             * nearly at its centre: the stencil's face then conducts enough already) */
            b->cpl_G[i] = G > 0.0 ? G : 0.0;
            b->cpl_q[i] = b->cpl_G[i] * (x - v->T_C[c]);
        }
        out->n_heat = b->ncpl;
        out->heat_idx = b->cpl_idx;
        out->heat_q_W_m3 = b->cpl_q;
        out->heat_G_W_m3K = b->ncpl ? b->cpl_G : NULL;
        out->heat_G_first = 0;
        /* the held value stays within the schedule's range (create) */
        out->heat_G_bounded = b->schedule.n >= 1;
        out->heat_G_Tref_lo_C = b->T_lo_C;
        out->heat_G_Tref_hi_C = b->T_hi_C;
    }
    return ABL_OK;
}

static void basic_destroy(abl_source *s)
{
    basic_state *b = s->state;
    if (b) {
        free(b->idx);
        free(b->val);
        free(b->frac);
        free(b->w);
        free(b->cpl_idx);
        free(b->cpl_first);
        free(b->cpl_G0);
        free(b->face_n);
        free(b->face_a_m2);
        free(b->face_c_m2);
        free(b->cpl_G);
        free(b->cpl_q);
        free(b->hold_idx);
        free(b->hold_T);
        free(b);
    }
    free(s);
}

/* fixed_temperature on for the whole run [0, duration_s): its shape's voxels are held at every
 * step (basic_update returns the same list whenever it is on), at the schedule's values; their
 * range over all the schedule's points bounds them (piecewise linear between the points, held
 * at the ends). */
static size_t fixed_held_always(const abl_source *s, double duration_s, const size_t **idx,
                                const double **frac, double *T_lo_C, double *T_hi_C)
{
    const basic_state *b = s->state;
    if (!(b->on_s <= 0.0 && b->off_s >= duration_s) || b->schedule.n < 1) return 0;
    *idx = b->hold_idx;
    *frac = NULL;
    *T_lo_C = b->T_lo_C;
    *T_hi_C = b->T_hi_C;
    return b->nhold;
}

/* Fraction theta in (0, 1] of the way from point a (outside the shape) to point c (inside)
 * where the shape begins: bisection on the inside test. */
static double surface_theta(const abl_shape *sh, const double a[3], const double c[3])
{
    double lo = 0.0, hi = 1.0;
    for (int it = 0; it < FIXED_BISECT_STEPS; it++) {
        const double t = 0.5 * (lo + hi);
        const double x[3] = {a[0] + t * (c[0] - a[0]), a[1] + t * (c[1] - a[1]),
                             a[2] + t * (c[2] - a[2])};
        if (shape_contains(sh, x)) hi = t;
        else lo = t;
    }
    return hi;
}

typedef struct {
    size_t b, n;       /* coupled free voxel, its held face neighbour */
    double a_m2, c_m2; /* 1/(theta h^2), 1/h^2 */
} cpl_face;

/* by coupled voxel, then held voxel: a fixed order on every platform (qsort is not stable) */
static int face_cmp(const void *pa, const void *pb)
{
    const cpl_face *a = pa, *b = pb;
    if (a->b != b->b) return a->b < b->b ? -1 : 1;
    return a->n < b->n ? -1 : a->n > b->n;
}

/* The coupled voxels of a fixed_temperature shape (see the top of the file): every free face
 * neighbour b of a held voxel n whose centre is inside, with theta from b's centre to the
 * surface; entries per b, in index order, with their faces. held: the held voxels' mask (1),
 * g->n bytes. */
static abl_status fixed_coupling(basic_state *bs, const abl_shape *sh, const abl_grid *g,
                                 const uint8_t *held, abl_error *err)
{
    cpl_face *e = malloc((6 * bs->nhold + 1) * sizeof *e);
    if (!e) return abl_fail(err, ABL_ENOMEM, "out of memory (coupling of a held shape)");
    size_t ne = 0;
    const int dims[3] = {g->nx, g->ny, g->nz};
    const size_t stride[3] = {1, g->sy, g->sz};
    for (size_t q = 0; q < bs->nhold; q++) {
        const size_t c = bs->hold_idx[q];
        const int ijk[3] = {(int)(c % g->sy), (int)(c / g->sy % (size_t)g->ny),
                            (int)(c / g->sz)};
        double xc[3];
        grid_voxel_centre_m(g, ijk[0], ijk[1], ijk[2], xc);
        if (!shape_contains(sh, xc)) continue; /* held by volume, centre outside: a tie */
        for (int a = 0; a < 3; a++)
            for (int sgn = -1; sgn <= 1; sgn += 2) {
                const int nb = ijk[a] + sgn;
                if (nb < 0 || nb >= dims[a]) continue;
                const size_t bidx = sgn < 0 ? c - stride[a] : c + stride[a];
                if (held[bidx]) continue;
                int bijk[3] = {ijk[0], ijk[1], ijk[2]};
                bijk[a] = nb;
                double xb[3];
                grid_voxel_centre_m(g, bijk[0], bijk[1], bijk[2], xb);
                /* b is free, so its centre is outside */
                const double theta = fmax(surface_theta(sh, xb, xc), FIXED_THETA_MIN);
                const double h = g->h_m[a];
                e[ne++] = (cpl_face){bidx, c, 1.0 / (theta * h * h), 1.0 / (h * h)};
            }
    }
    qsort(e, ne, sizeof *e, face_cmp);
    size_t m = 0;
    for (size_t i = 0; i < ne; i++) m += i == 0 || e[i].b != e[i - 1].b;
    bs->cpl_idx = malloc((m + 1) * sizeof *bs->cpl_idx);
    bs->cpl_first = malloc((m + 1) * sizeof *bs->cpl_first);
    bs->face_n = malloc((ne + 1) * sizeof *bs->face_n);
    bs->face_a_m2 = malloc((ne + 1) * sizeof *bs->face_a_m2);
    bs->face_c_m2 = malloc((ne + 1) * sizeof *bs->face_c_m2);
    bs->cpl_G = malloc((m + 1) * sizeof *bs->cpl_G);
    bs->cpl_q = malloc((m + 1) * sizeof *bs->cpl_q);
    bs->cpl_G0 = malloc((m + 1) * sizeof *bs->cpl_G0);
    if (!bs->cpl_idx || !bs->cpl_first || !bs->face_n || !bs->face_a_m2 || !bs->face_c_m2 ||
        !bs->cpl_G || !bs->cpl_q || !bs->cpl_G0) {
        free(e);
        return abl_fail(err, ABL_ENOMEM, "out of memory (coupling of a held shape)");
    }
    size_t k = 0;
    for (size_t i = 0; i < ne; i++) {
        if (i == 0 || e[i].b != e[i - 1].b) {
            bs->cpl_idx[k] = e[i].b;
            bs->cpl_first[k++] = i;
        }
        bs->face_n[i] = e[i].n;
        bs->face_a_m2[i] = e[i].a_m2;
        bs->face_c_m2[i] = e[i].c_m2;
    }
    bs->cpl_first[m] = ne;
    bs->ncpl = m;
    free(e);
    return ABL_OK;
}

static const abl_source_ops volumetric_ops = {
    .type = "volumetric", .update = basic_update, .destroy = basic_destroy};
static const abl_source_ops fixed_ops = {.type = "fixed_temperature",
                                         .update = basic_update,
                                         .destroy = basic_destroy,
                                         .held_always = fixed_held_always};

abl_status basic_source_create(const abl_source_cfg *cfg, const abl_sim *sim, abl_source **out,
                               abl_error *err)
{
    const abl_grid *g = &sim->grid;
    *out = NULL;
    abl_source *s;
    void *state;
    abl_status st0 = source_alloc(cfg, cfg->type == SRC_VOLUMETRIC ? &volumetric_ops : &fixed_ops,
                                  sizeof(basic_state), &s, &state, err);
    if (st0) return st0;
    basic_state *b = state;
    b->type = cfg->type;
    b->schedule = cfg->schedule;
    if (b->schedule.n >= 1) {
        b->T_lo_C = b->T_hi_C = b->schedule.v[0];
        for (int i = 1; i < b->schedule.n; i++) {
            b->T_lo_C = fmin(b->T_lo_C, b->schedule.v[i]);
            b->T_hi_C = fmax(b->T_hi_C, b->schedule.v[i]);
        }
    }
    b->on_s = cfg->on_s;
    b->off_s = cfg->off_s;
    abl_status st = shape_fractions(&cfg->shape, g, &b->idx, &b->frac, &b->n, err);
    if (st) {
        basic_destroy(s);
        return st;
    }
    if (b->n == 0) {
        double lo[3], hi[3];
        shape_bounds(&cfg->shape, lo, hi);
        basic_destroy(s);
        return abl_fail(err, ABL_EINVAL,
                        "%s: source '%s': its %s (x %.1f..%.1f, y %.1f..%.1f, z %.1f..%.1f mm) "
                        "contains no voxel centre of the grid (x %.1f..%.1f, y %.1f..%.1f, "
                        "z %.1f..%.1f mm) and overlaps none of its voxels by more than %g of "
                        "the voxel: it is outside the grid or smaller than a voxel",
                        cfg->where, cfg->name, shape_type_name(cfg->shape.type), lo[0] * 1e3,
                        hi[0] * 1e3, lo[1] * 1e3, hi[1] * 1e3, lo[2] * 1e3, hi[2] * 1e3,
                        g->origin_m[0] * 1e3, (g->origin_m[0] + (g->nx - 1) * g->h_m[0]) * 1e3,
                        g->origin_m[1] * 1e3, (g->origin_m[1] + (g->ny - 1) * g->h_m[1]) * 1e3,
                        g->origin_m[2] * 1e3, (g->origin_m[2] + (g->nz - 1) * g->h_m[2]) * 1e3,
                        SHAPE_FRAC_MIN);
    }
    /* the grid's volume of the shape, sum f V_voxel: power is normalised to it, not to the
     * analytic volume, so the discrete total is exactly P even where the shape leaves the grid
     * (said in the note below) */
    double sum = 0.0;
    for (size_t i = 0; i < b->n; i++) sum += b->frac[i];
    const double in_grid_m3 = sum * grid_voxel_volume_m3(g);
    if (b->type == SRC_VOLUMETRIC) {
        /* a power source that leaves the grid puts its whole power_W into the part inside
         * (the normalisation below): right for a symmetry model (a sphere an eighth inside at
         * insulated faces stands for the whole), 8x the density where that was not meant (an
         * adversarial test, session 30). Said, with the share inside. The grid's domain: its
         * voxels' outer faces. */
        double lo[3], hi[3];
        shape_bounds(&cfg->shape, lo, hi);
        const double n_ax[3] = {g->nx, g->ny, g->nz};
        for (int d = 0; d < 3 && !s->note[0]; d++) {
            const double dlo = g->origin_m[d] - 0.5 * g->h_m[d];
            const double dhi = g->origin_m[d] + (n_ax[d] - 0.5) * g->h_m[d];
            const double tol = 1e-9 * g->h_m[d];
            if (lo[d] < dlo - tol || hi[d] > dhi + tol) {
                snprintf(s->note, sizeof s->note,
                         "%s: source '%s': its %s reaches beyond the grid (%c %.2f..%.2f mm, "
                         "the grid's %.2f..%.2f mm); its power_W goes wholly into the part "
                         "inside, %.2g %% of its volume (right for a symmetry model at "
                         "insulated faces; otherwise move the shape inside)",
                         cfg->where, cfg->name, shape_type_name(cfg->shape.type), "xyz"[d],
                         lo[d] * 1e3, hi[d] * 1e3, dlo * 1e3, dhi * 1e3,
                         100.0 * in_grid_m3 / shape_volume_m3(&cfg->shape));
            }
        }
    }
    b->val = malloc(b->n * sizeof *b->val);
    b->w = malloc(b->n * sizeof *b->w);
    if (!b->val || !b->w) {
        basic_destroy(s);
        return abl_fail(err, ABL_ENOMEM, "out of memory creating source '%s'", cfg->name);
    }
    const double inv = 1.0 / in_grid_m3;
    for (size_t i = 0; i < b->n; i++) b->w[i] = b->frac[i] * inv;
    if (b->type == SRC_FIXED_TEMPERATURE) {
        /* the held voxels: centre inside, or at least half inside */
        uint8_t *held = grid_alloc_labels(g, 0);
        b->hold_idx = malloc(b->n * sizeof *b->hold_idx);
        b->hold_T = malloc(b->n * sizeof *b->hold_T);
        if (!held || !b->hold_idx || !b->hold_T) {
            grid_free_field(held);
            basic_destroy(s);
            return abl_fail(err, ABL_ENOMEM, "out of memory creating source '%s'", cfg->name);
        }
        size_t nheld = 0, best = 0;
        for (size_t i = 0; i < b->n; i++) {
            const size_t c = b->idx[i];
            double xc[3];
            grid_voxel_centre_m(g, (int)(c % g->sy), (int)(c / g->sy % (size_t)g->ny),
                                (int)(c / g->sz), xc);
            if (b->frac[i] >= 0.5 || shape_contains(&cfg->shape, xc)) {
                held[c] = 1;
                b->hold_idx[nheld++] = c;
            }
            if (b->frac[i] > b->frac[best]) best = i;
        }
        b->nhold = nheld;
        if (nheld == 0) {
            const double fmax_ = b->frac[best];
            grid_free_field(held);
            basic_destroy(s);
            return abl_fail(err, ABL_EINVAL,
                            "%s: source '%s': its %s contains no voxel centre and fills no "
                            "voxel by half (the most: %.2f of a voxel at %g x %g x %g mm), so "
                            "it would hold nothing. Check that it lies inside the grid, use a "
                            "finer grid.spacing_mm, or for a needle an rfa or cryo source, "
                            "whose needles are coupled below the voxel size",
                            cfg->where, cfg->name, shape_type_name(cfg->shape.type), fmax_,
                            g->h_m[0] * 1e3, g->h_m[1] * 1e3, g->h_m[2] * 1e3);
        }
        b->sim = sim;
        b->Tl = sim->sc->freezing ? sim->sc->freeze_liquidus_C : -INFINITY;
        abl_status cst = fixed_coupling(b, &cfg->shape, g, held, err);
        grid_free_field(held);
        if (cst) {
            basic_destroy(s);
            return cst;
        }
    }
    *out = s;
    return ABL_OK;
}

