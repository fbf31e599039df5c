/* sim.c - the driver: plans a run from a scenario (grid, materials, stencil tables, dt,
 * sources) and owns time stepping, running maps, energy accounting and output cadence. */
#include "ablasim/sim.h"

#include <limits.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ablasim/fileguard.h"
#include "ablasim/mesh.h"
#include "ablasim/nifti.h"


/* Temperatures outside this band mean the numerics have failed (no tissue model goes there). */
#define T_SANE_LO_C (-273.0)
#define T_SANE_HI_C (1000.0)

size_t sim_memory_estimate(size_t nvox, int n_hot, int n_cold)
{
    /* the maps of the field table (without freezing or applicators), material + class */
    return nvox * (fields_bytes_per_voxel(0, 0, n_hot, n_cold) + 2);
}

static size_t mem_available_bytes(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return (size_t)-1;
    char line[256];
    size_t kb = (size_t)-1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %zu kB", &kb) == 1) break;
    fclose(f);
    return kb == (size_t)-1 ? kb : kb * 1024;
}

/* ---- grid and materials ----------------------------------------------------------------- */

static int material_of(abl_sim *s, int tissue)
{
    for (int m = 0; m < s->nmat; m++)
        if (s->mat_tissue[m] == tissue) return m;
    if (s->nmat >= ABL_MAX_MATERIALS) return -1;
    s->mat_tissue[s->nmat] = tissue;
    return s->nmat++;
}

/* physics.initial_temperature_file against the grid: the same dims, and where the file states
 * its spacing and origin (its own attributes, an ablasim result's /grid/labels, a NIfTI
 * affine), the same geometry to 1e-6 of a voxel plus float32 round-off where either side came
 * from a NIfTI affine: a field from another grid must not be laid over this one. */
static abl_status check_initial_field(const abl_scenario *sc, const abl_grid *g, abl_error *err)
{
    const abl_field_file *f = &sc->initial_T;
    if (!f->values) return ABL_OK;
    /* the state file's maps: read with T_final_C from the same file and checked there to have
     * its dims; the geometry is the file's, the same for all */
    const int n[3] = {g->nx, g->ny, g->nz};
    const char *p = sc->initial_T_path, *ds = sc->initial_T_dataset;
    const char *key = sc->initial_is_state ? "initial_state_file" : "initial_temperature_file";
    /* where the key was given: its file line or its --set (an adversarial test, session 29:
     * a --set file was blamed on the scenario file) */
    char at[800];
    if (sc->initial_T_where[0]) snprintf(at, sizeof at, "%s", sc->initial_T_where);
    else snprintf(at, sizeof at, "%s: physics.%s", sc->path, key);
    /* the scenario's own label map given as its temperature (a copy-paste slip; found by
     * review, session 23): its labels would be read as 0, 1, 2 ... degC */
    if (sc->mesh_path && fg_same_file(sc->mesh_path, p))
        return abl_fail(err, ABL_EINVAL,
                        "%s %s is the scenario's grid.mesh (a label map, not "
                        "temperatures in degC)",
                        at, p);
    /* a NIfTI-1 affine is float32 (2^-23 = 1.2e-7 relative) on either side (the field, or the
     * grid's label map): a map written in the grid's own geometry carries that round-off, in
     * its origin up to the whole field of view (a permuted frame's rotation rounds into
     * off-axis terms; found by review, session 23) */
    const bool single = f->geom_single || (sc->mesh_path && nifti_suffix(sc->mesh_path));
    const double eps32 = single ? 1.2e-7 : 0.0;
    const double fov_mm = 1e3 * (n[0] * g->h_m[0] + n[1] * g->h_m[1] + n[2] * g->h_m[2]);
    if (f->dims[0] != n[0] || f->dims[1] != n[1] || f->dims[2] != n[2])
        return abl_fail(err, ABL_EINVAL,
                        "%s %s: dataset %s is %d x %d x %d voxels (nx ny nz), the "
                        "grid %d x %d x %d; they must be the same",
                        at, p, ds, f->dims[0], f->dims[1], f->dims[2], n[0], n[1], n[2]);
    for (int d = 0; d < 3; d++) {
        const double h_mm = g->h_m[d] * 1e3, o_mm = g->origin_m[d] * 1e3;
        const double tol_h = 1e-6 * h_mm + eps32 * h_mm;
        const double tol_o = 1e-6 * h_mm + eps32 * (fabs(o_mm) + 2.0 * fov_mm);
        if (f->has_spacing && !(fabs(f->spacing_mm[d] - h_mm) <= tol_h))
            return abl_fail(err, ABL_EINVAL,
                            "%s %s: its spacing_mm [%.9g, %.9g, %.9g] is not the "
                            "grid's [%.9g, %.9g, %.9g] mm (along %c by %.3g mm, %.3g allowed)",
                            at, p, f->spacing_mm[0], f->spacing_mm[1], f->spacing_mm[2],
                            g->h_m[0] * 1e3, g->h_m[1] * 1e3, g->h_m[2] * 1e3, "xyz"[d],
                            fabs(f->spacing_mm[d] - h_mm), tol_h);
        if (f->has_origin && !(fabs(f->origin_mm[d] - o_mm) <= tol_o))
            return abl_fail(err, ABL_EINVAL,
                            "%s %s: its origin_mm [%.9g, %.9g, %.9g] is not the "
                            "grid's [%.9g, %.9g, %.9g] mm (the centre of voxel 0, 0, 0; along %c "
                            "by %.3g mm, %.3g allowed)",
                            at, p, f->origin_mm[0], f->origin_mm[1], f->origin_mm[2],
                            g->origin_m[0] * 1e3, g->origin_m[1] * 1e3, g->origin_m[2] * 1e3,
                            "xyz"[d], fabs(f->origin_mm[d] - o_mm), tol_o);
    }
    return ABL_OK;
}

/* physics.initial_state_file: the state's tissue at each voxel (its /grid/labels, a material
 * index, named by its /grid/material_names "0:liver,1:tumour") against this run's. A second
 * ablation after a hydrodissection changes tissue on purpose; a state of another phantom or
 * patient on a grid of the same size does not, and its maps would be laid over the wrong
 * anatomy without a word (RELIABILITY.md, session 30). A difference becomes
 * s->state_layout_note; the run goes on. */
static void note_state_layout(abl_sim *s)
{
    const abl_scenario *sc = s->sc;
    const abl_field_file *f = &sc->initial_layout;
    s->state_layout_note[0] = '\0';
    if (!sc->initial_is_state || !f->values || !f->names) return;
    /* index -> name from "0:liver,1:tumour" (tissue names hold no ',' or ':') */
    char names[256][ABL_TISSUE_NAME_LEN];
    for (int m = 0; m < 256; m++) names[m][0] = '\0';
    for (const char *p = f->names; *p;) {
        char *end;
        long m = strtol(p, &end, 10);
        const char *comma = strchr(p, ',');
        const size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (end != p && *end == ':' && m >= 0 && m < 256 && (size_t)(end + 1 - p) <= len)
            snprintf(names[m], sizeof names[m], "%.*s", (int)(len - (size_t)(end + 1 - p)),
                     end + 1);
        p += len + (comma ? 1 : 0);
    }
    const abl_grid *g = &s->grid;
    size_t ndiff = 0, first = 0;
    for (size_t c = 0; c < g->n; c++) {
        const double v = f->values[c];
        const char *there = v >= 0.0 && v < 256.0 ? names[(int)v] : "";
        const char *here = sc->tissues.t[s->mat_tissue[s->material[c]]].name;
        if (strcmp(there, here) != 0 && ndiff++ == 0) first = c;
    }
    if (ndiff == 0) return;
    const double v = f->values[first];
    const char *there = v >= 0.0 && v < 256.0 && names[(int)v][0] ? names[(int)v] : "(unnamed)";
    snprintf(s->state_layout_note, sizeof s->state_layout_note,
             "the initial state %s has another tissue than this run in %zu of %zu voxels (the "
             "first at voxel (i, j, k) = (%zu, %zu, %zu): %s in the state, %s here); its maps "
             "continue there as they are: check that the state belongs to this anatomy",
             sc->initial_T_path, ndiff, g->n, first % g->sy, first / g->sy % (size_t)g->ny,
             first / g->sz, there, sc->tissues.t[s->mat_tissue[s->material[first]]].name);
}

static abl_status build_grid(abl_sim *s, abl_error *err)
{
    const abl_scenario *sc = s->sc;
    abl_status st;
    abl_mesh mesh = {0};
    int dims[3];
    double h[3], origin[3];
    if (sc->mesh_path) {
        /* NIfTI label maps (docs/NIFTI.md) by name; anything else is an HDF5 mesh. */
        int nii = nifti_suffix(sc->mesh_path) != 0;
        st = nii ? nifti_read_labels(sc->mesh_path, &mesh, NULL, err)
                 : mesh_read_ex(sc->mesh_path, &(abl_mesh_read_opts){.skip_names = true}, &mesh,
                                err); /* guarded child process; names are not needed here */
        if (st) return st;
        /* the limits the scenario's grid keys have (grid.h ABL_GRID_MAX_*) hold for a mesh
         * too: a NIfTI in metres read as 1000 mm voxels, or a 5000-voxel axis, ran unnoticed
         * (an adversarial test, session 30) */
        for (int d = 0; d < 3; d++) {
            const char *why =
                mesh.dims[d] > ABL_GRID_MAX_DIM ? "its size must be 1..4096 voxels"
                : !(mesh.spacing_mm[d] > 0 && mesh.spacing_mm[d] <= ABL_GRID_MAX_SPACING_MM)
                    ? "its spacing must be in (0, 100] mm (a file in metres or centimetres? "
                      "check its units)"
                : !(fabs(mesh.origin_mm[d]) <= ABL_GRID_MAX_ORIGIN_MM)
                    ? "its origin (the centre of voxel 0) must be in [-1e4, 1e4] mm"
                    : NULL;
            if (why) {
                st = abl_fail(err, ABL_EINVAL,
                              "%s: along %c the grid has %d voxels of %g mm from %g mm: %s "
                              "(the limits of the scenario's grid.dims, spacing_mm and "
                              "origin_mm)",
                              sc->mesh_path, "xyz"[d], mesh.dims[d], mesh.spacing_mm[d],
                              mesh.origin_mm[d], why);
                mesh_free(&mesh);
                return st;
            }
        }
        for (int d = 0; d < 3; d++) {
            dims[d] = mesh.dims[d];
            h[d] = mesh.spacing_mm[d] * 1e-3;
            origin[d] = mesh.origin_mm[d] * 1e-3;
        }
    } else {
        for (int d = 0; d < 3; d++) {
            dims[d] = sc->dims[d];
            h[d] = sc->spacing_m[d];
            origin[d] = -0.5 * (dims[d] - 1) * h[d]; /* default: grid centred on (0,0,0) */
        }
    }
    if (sc->origin_given) memcpy(origin, sc->origin_m, sizeof origin);
    if ((st = grid_init(&s->grid, dims, h, origin, err))) {
        char msg[ABL_ERRMSG_LEN];
        snprintf(msg, sizeof msg, "%s", err->msg);
        mesh_free(&mesh);
        return abl_fail(err, st, "%s: %s", sc->mesh_path ? sc->mesh_path : sc->path, msg);
    }
    const abl_grid *g = &s->grid;
    if ((st = check_initial_field(sc, g, err))) {
        mesh_free(&mesh);
        return st;
    }

    size_t need = sim_memory_estimate(g->n, sc->n_hot, sc->n_cold);
    size_t avail = mem_available_bytes();
    if (need > avail) {
        mesh_free(&mesh);
        return abl_fail(err, ABL_ENOMEM,
                        "%s: grid %d x %d x %d (%zu voxels) needs about %.1f GiB; only %.1f GiB "
                        "of memory is available. Use a coarser spacing or a smaller grid",
                        sc->path, g->nx, g->ny, g->nz, g->n, need / 1073741824.0,
                        avail / 1073741824.0);
    }

    s->material = grid_alloc_labels(g, 0);
    s->cls = grid_alloc_labels(g, ABL_CLS_GENERAL);
    if (!s->material || !s->cls) {
        mesh_free(&mesh);
        return abl_fail(err, ABL_ENOMEM, "out of memory allocating %zu voxel labels", g->n);
    }
    if (sc->mesh_path) {
        int lab2mat[256];
        for (int l = 0; l < 256; l++) lab2mat[l] = -2; /* -2: not seen yet */
        for (size_t c = 0; c < g->n; c++) {
            int l = mesh.labels[c];
            if (lab2mat[l] == -2) {
                int t = sc->mesh_label_tissue[l];
                if (t < 0) {
                    int i = (int)(c % g->sy), j = (int)(c / g->sy % (size_t)g->ny),
                        k = (int)(c / g->sz);
                    mesh_free(&mesh);
                    return abl_fail(err, ABL_EINVAL,
                                    "%s: label %d (first at voxel %d,%d,%d) has no tissue in "
                                    "grid.labels of %s; add e.g. '%d: liver'",
                                    sc->mesh_path, l, i, j, k, sc->path, l);
                }
                lab2mat[l] = material_of(s, t);
            }
            s->material[c] = (uint8_t)lab2mat[l];
        }
        mesh_free(&mesh);
    } else {
        int m = material_of(s, sc->background_tissue);
        memset(s->material, m, g->n);
    }
    for (int r = 0; r < sc->nregions; r++) {
        size_t *idx, cnt;
        if ((st = shape_voxels(&sc->regions[r].shape, g, &idx, &cnt, err))) return st;
        if (cnt == 0)
            return abl_fail(err, ABL_EINVAL,
                            "%s: this %s contains no voxel centre: it lies outside the grid or "
                            "is smaller than one voxel",
                            sc->regions[r].where, shape_type_name(sc->regions[r].shape.type));
        int m = material_of(s, sc->regions[r].tissue);
        if (m < 0) {
            free(idx);
            return abl_fail(err, ABL_EINVAL, "%s: more than %d tissues in one grid",
                            sc->regions[r].where, ABL_MAX_MATERIALS);
        }
        for (size_t q = 0; q < cnt; q++) s->material[idx[q]] = (uint8_t)m;
        free(idx);
    }

    note_state_layout(s);

    /* class byte: the material where the voxel and its six neighbours share it (fast path) */
    const size_t sy = g->sy, sz = g->sz;
#pragma omp parallel for collapse(2) schedule(static)
    for (int k = 1; k < g->nz - 1; k++)
        for (int j = 1; j < g->ny - 1; j++)
            for (int i = 1; i < g->nx - 1; i++) {
                size_t c = ABL_IDX(g, i, j, k);
                uint8_t m = s->material[c];
                if (s->material[c - 1] == m && s->material[c + 1] == m &&
                    s->material[c - sy] == m && s->material[c + sy] == m &&
                    s->material[c - sz] == m && s->material[c + sz] == m)
                    s->cls[c] = m;
            }
    return ABL_OK;
}

/* ---- stencil tables and the time step ---------------------------------------------------- */

/* k(T) = k37 (1 + beta (T - 37 C)), kept within [0.1, 10] x k37 so that no extrapolation of a
 * linear fit can reach a non-physical conductivity, and held at its value at ABL_T_MIN_C /
 * ABL_T_MAX_C (-200 / 200 C) beyond them: the stable step (k_bound) is computed over that
 * range, and a voxel above 200 C with a larger k made the explicit step unstable (a
 * checkerboard to 1220 C in a numerics review, session 30). The linear fits are measured
 * below 100 C; tissue above 200 C is dry. */
static inline double linear_k(double k37, double beta_per_K, double T_C)
{
    /* constant k (most tissues): k37 itself, the value the clamp below gives for beta = 0 */
    if (beta_per_K == 0.0) return k37;
    const double T = T_C > ABL_T_MAX_C ? ABL_T_MAX_C : T_C < ABL_T_MIN_C ? ABL_T_MIN_C : T_C;
    const double f = 1.0 + beta_per_K * (T - 37.0);
    /* comparisons, not fmin/fmax: those are calls into libm in the per-voxel hook (their NaN
     * rule has no single instruction), ~30 % of its time; a NaN T now gives a NaN k, which the
     * monitor's fault check reports, instead of the clamped 0.1 k37 */
    return k37 * (f < 0.1 ? 0.1 : f > 10.0 ? 10.0 : f);
}

/* Face conductances between materials (harmonic mean of k: series resistance of two half
 * voxels) and of domain faces, for per-material conductivities kk. */
static void face_tables(const abl_sim *s, const double *kk, double *gface, double *gbound)
{
    const abl_grid *g = &s->grid;
    const int nm = s->nmat;
    for (int d = 0; d < 3; d++) {
        double h2 = g->h_m[d] * g->h_m[d];
        for (int a = 0; a < nm; a++)
            for (int b = 0; b < nm; b++)
                gface[((size_t)d * nm + a) * nm + b] = abl_face_conductance_div(kk[a], kk[b], h2);
    }
    for (int f = 0; f < 6; f++)
        for (int m = 0; m < nm; m++)
            gbound[(size_t)f * nm + m] = pennes_boundary_conductance(
                (int)s->sc->bc[f].type, s->sc->bc[f].h_W_m2K, kk[m], g->h_m[f / 2]);
}

/* Built-in property hook on the box lo <= (i, j, k) < hi (with row_lo/row_hi, per row
 * r = k ny + j, only its part [row_lo[r], row_hi[r]); NULL: whole rows): linear k(T) per
 * tissue; perfusion constant or shut down by damage; frozen and mushy tissue; vascular stasis. */
static void linear_k_box(const abl_sim *s, const double *T_C, const int lo[3], const int hi[3],
                         const int32_t *row_lo, const int32_t *row_hi, double *k_W_mK,
                         double *W_W_m3K)
{
    const abl_scenario *sc = s->sc;
    const abl_grid *g = &s->grid;
    const double Ts = sc->freeze_solidus_C, Tl = sc->freeze_liquidus_C;
    const bool frz = s->phase && sc->freezing;
    /* the implicit schemes call the hook with iterates, not states: their T_min stays the
     * monitor's (every step there, the step being at least the monitor interval by default) */
    const bool live_min = frz && sc->scheme == SCHEME_EXPLICIT;
#pragma omp parallel for collapse(2) schedule(static)
    for (int kk = lo[2]; kk < hi[2]; kk++)
        for (int j = lo[1]; j < hi[1]; j++) {
            int i0, i1;
            grid_row_part(g, j, kk, lo[0], hi[0], row_lo, row_hi, &i0, &i1);
            for (size_t c = ABL_IDX(g, i0, j, kk), e = ABL_IDX(g, 0, j, kk) + (size_t)i1; c < e;
                 c++) {
                const int m = s->material[c];
                const double T = T_C[c];
                double k = linear_k(s->k37[m], s->k_coeff[m], T);
                /* perfusion shutdown: w_b (1 - F), damaged fraction F = 1 - exp(-Omega), or
                 * F = 1 once T_max reached the threshold (kernels.h perfusion_shutdown_correct)
                 * (exp(-0) = 1 exactly: undamaged tissue skips the call, same bits) */
                double W = s->perf_W[m];
                if (sc->perfusion_shutdown) {
                    if (!isnan(sc->perfusion_stop_C))
                        W = s->T_max[c] >= sc->perfusion_stop_C ? 0.0 : W;
                    else if (s->omega[c] > 0.0)
                        W *= exp(-s->omega[c]);
                }
                if (frz && !isnan(s->k_frozen[m]) && T < Tl) {
                    /* mushy zone: k blended by the liquid fraction (lever rule, parallel
                     * mixture); no blood flows through ice: perfusion scaled by the liquid
                     * fraction */
                    const double phi = phase_liquid_fraction(T, Ts, Tl);
                    k = phi * linear_k(s->k37[m], s->k_coeff[m], Tl) + (1.0 - phi) * s->k_frozen[m];
                    W *= phi;
                }
                /* vascular stasis: tissue that has been frozen to stasis_C stays unperfused
                 * after the thaw (Hoffmann & Bischof 2002, Urology 60(2A):40;
                 * docs/PHASE_CHANGE.md). The explicit step keeps T_min current here, at every
                 * step, so that whether a voxel reached stasis_C does not depend on how often
                 * the running maps are sampled (monitor_interval_s, or where a caller's
                 * sim_step calls end: a voxel that dipped below it between two samples and
                 * thawed again was missed, up to 3 K at the ice edge in suite phase
                 * "multirate step"). */
                if (live_min && T < s->T_min[c]) s->T_min[c] = T;
                if (frz && s->T_min[c] <= sc->stasis_C) W = 0.0;
                k_W_mK[c] = k;
                W_W_m3K[c] = W;
            }
        }
}

static abl_status linear_k_hook(void *ctx, const abl_field_view *v, double *k_W_mK,
                                double *W_W_m3K, abl_error *err)
{
    (void)err;
    const abl_sim *s = ctx;
    const int lo[3] = {0, 0, 0}, hi[3] = {v->grid->nx, v->grid->ny, v->grid->nz};
    linear_k_box(s, v->T_C, lo, hi, NULL, NULL, k_W_mK, W_W_m3K);
    return ABL_OK;
}

/* Enthalpy curves of the grid's materials (phase.h) when the scenario models freezing or
 * vaporisation. Tissues without frozen properties do not freeze, tissues without a water
 * fraction do not boil (both named in docs/PHASE_CHANGE.md). */
static abl_status plan_phase(abl_sim *s, abl_error *err)
{
    const abl_scenario *sc = s->sc;
    if (!sc->freezing && !sc->vaporisation) return ABL_OK;
    s->phase = calloc((size_t)s->nmat, sizeof *s->phase);
    s->k_frozen = calloc((size_t)s->nmat, sizeof *s->k_frozen);
    if (!s->phase || !s->k_frozen) return abl_fail(err, ABL_ENOMEM, "out of memory");
    for (int m = 0; m < s->nmat; m++) {
        const abl_tissue *t = &sc->tissues.t[s->mat_tissue[m]];
        const double C_u = t->rho_kg_m3 * t->c_J_kgK;
        const bool fz = sc->freezing && !isnan(t->frozen_rho_kg_m3) && !isnan(t->frozen_c_J_kgK) &&
                        !isnan(t->frozen_k_W_mK) && !isnan(t->latent_fusion_J_kg);
        const bool vp = sc->vaporisation && !isnan(t->water_fraction) && t->water_fraction > 0;
        /* latent heat of fusion per kg of tissue (tissues.yaml: water fraction x 333.5 kJ/kg) */
        const double C_f = fz ? t->frozen_rho_kg_m3 * t->frozen_c_J_kgK : 0.0;
        const double L_f = fz ? t->rho_kg_m3 * t->latent_fusion_J_kg : 0.0;
        const double L_v = vp ? t->rho_kg_m3 * t->water_fraction * ABL_LATENT_VAPORISATION_J_KG
                              : 0.0;
        phase_curve_build(&s->phase[m], C_u, fz, C_f, L_f, sc->freeze_solidus_C,
                          sc->freeze_liquidus_C, vp, L_v, sc->vap_lo_C, sc->vap_hi_C);
        s->k_frozen[m] = fz ? t->frozen_k_W_mK : NAN;
    }
    return ABL_OK;
}

/* Bound on a voxel of material m's face conductances plus perfusion [W/m^3/K] from the face
 * tables gf ([3][nmat][nmat]) and gb ([6][nmat]): forward Euler is monotone (every coefficient
 * of the update non-negative) while dt <= C / this. */
static double rate_sum(const abl_sim *s, const double *gf, const double *gb, int m)
{
    const abl_grid *g = &s->grid;
    const int nm = s->nmat;
    double sum = s->perf_W[m];
    for (int d = 0; d < 3; d++) {
        double gmax = 0.0;
        for (int b = 0; b < nm; b++) gmax = fmax(gmax, gf[((size_t)d * nm + m) * nm + b]);
        const double gb0 = gb[(size_t)(2 * d) * nm + m], gb1 = gb[(size_t)(2 * d + 1) * nm + m];
        const int nd = d == 0 ? g->nx : d == 1 ? g->ny : g->nz;
        /* Domain faces do not enter: the explicit step takes their conductance implicitly
         * (wall_implicit), so a voxel's update stays monotone whatever it is, and a voxel
         * on a face has at most 2 gmax from its interior neighbours along this axis.
         * (Before: fmax(2 gmax, gmax + gb), i.e. every material bounded as if it sat in a
         * grid corner beside a wall half a voxel away, gb = 2 gmax: 9 gmax instead of 6,
         * a step 1.5x shorter than the interior needs.) One voxel across (nd = 1): no
         * interior neighbour; the walls' own rate keeps the step finite there. */
        sum += nd == 1 ? gb0 + gb1 : 2.0 * gmax;
    }
    return sum;
}

static abl_status plan_stencil(abl_sim *s, abl_error *err)
{
    const abl_scenario *sc = s->sc;
    const int nm = s->nmat;
    const double Wb = sc->tissues.blood_rho_kg_m3 * sc->tissues.blood_c_J_kgK;
    s->fast = calloc((size_t)nm, sizeof *s->fast);
    s->inv_rhoc = calloc((size_t)nm, sizeof(double));
    s->perf_W = calloc((size_t)nm, sizeof(double));
    s->src_const = calloc((size_t)nm, sizeof(double));
    s->gface = calloc((size_t)3 * nm * nm, sizeof(double));
    s->gbound = calloc((size_t)6 * nm, sizeof(double));
    s->q_met = calloc((size_t)nm, sizeof(double));
    s->k_coeff = calloc((size_t)nm, sizeof(double));
    s->k37 = calloc((size_t)nm, sizeof(double));
    s->arr_A = calloc((size_t)nm, sizeof(double));
    s->arr_Ea = calloc((size_t)nm, sizeof(double));
    if (!s->k37 || !s->arr_A || !s->arr_Ea ||!s->fast || !s->inv_rhoc || !s->perf_W || !s->src_const || !s->gface || !s->gbound ||
        !s->q_met || !s->k_coeff)
        return abl_fail(err, ABL_ENOMEM, "out of memory");
    abl_status pst = plan_phase(s, err);
    if (pst) return pst;

    double kk[ABL_MAX_MATERIALS] = {0};
    s->var_props = false;
    for (int m = 0; m < nm; m++) {
        const abl_tissue *t = &sc->tissues.t[s->mat_tissue[m]];
        kk[m] = s->k37[m] = t->k_W_mK;
        /* with phase change the stencil uses the curve's smallest slope (phase.h) */
        s->inv_rhoc[m] = 1.0 / (s->phase ? s->phase[m].C_ref : t->rho_kg_m3 * t->c_J_kgK);
        s->perf_W[m] = t->perfusion_per_s * Wb;
        s->q_met[m] = t->q_met_W_m3;
        s->src_const[m] = s->perf_W[m] * sc->T_arterial_C + t->q_met_W_m3;
        s->k_coeff[m] = isnan(t->k_temp_coeff_per_K) ? 0.0 : t->k_temp_coeff_per_K;
        /* perfusion shutdown alone keeps the explicit fast path plus a sparse correction
         * (perfusion_shutdown_correct); with k(T) or an implicit scheme it goes through the
         * per-voxel property hook */
        if (s->k_coeff[m] != 0.0 ||
            (sc->perfusion_shutdown && sc->scheme != SCHEME_EXPLICIT))
            s->var_props = true;
        /* tissues without Arrhenius parameters (saline, air) take no damage */
        if (!isnan(t->arrhenius_A_per_s) && !isnan(t->arrhenius_Ea_J_mol)) {
            s->arr_A[m] = t->arrhenius_A_per_s;
            s->arr_Ea[m] = t->arrhenius_Ea_J_mol;
        }
        /* largest k this material reaches over the allowed temperature range (stability) */
        s->k_bound[m] = fmax(linear_k(kk[m], s->k_coeff[m], ABL_T_MIN_C),
                             linear_k(kk[m], s->k_coeff[m], ABL_T_MAX_C));
        if (s->phase && !isnan(s->k_frozen[m])) {
            s->k_bound[m] = fmax(s->k_bound[m], s->k_frozen[m]);
            s->var_props = true; /* k and perfusion change on freezing */
        }
    }
    face_tables(s, kk, s->gface, s->gbound);
    return ABL_OK;
}

/* Materials whose every voxel a source holds at every step of the run (source.h held_always:
 * a fixed_temperature shape on for the whole run, above the freezing range, such as the warm
 * saline of a hydrodissection) never freeze: their conductivity is k at the held temperatures
 * at every step, so the bound takes that k, not the frozen one, for their own faces and for
 * their neighbours'. Their own update stays within the bound (its coefficients non-negative,
 * with the stencil's capacity C_ref): the hold overwrites it, but until then the active region,
 * the phase map's bookkeeping and the walls read it, and an overshoot past the liquid window
 * there broke the energy balance (review, session 18: a light held material, residual -2.3).
 * Without this the frozen properties of saline that never freezes set the step of a whole cryo
 * run (cryo_humerus_hydrodissection: 0.156 s instead of muscle's 0.190 s). */
static bool pin_held(const double *frac, size_t q);

static abl_status plan_held_materials(abl_sim *s, abl_error *err)
{
    const abl_grid *g = &s->grid;
    const int nm = s->nmat;
    for (int m = 0; m < nm; m++) s->held_always[m] = false;
    if (s->sc->scheme != SCHEME_EXPLICIT || s->nsources > 255) return ABL_OK;
    /* held below the liquidus a voxel may be frozen or mushy (its k up to the frozen k): such
     * a hold does not count */
    const bool freezing = s->phase && s->sc->freezing;
    double lo_s[256], hi_s[256];
    uint8_t *held = NULL; /* per voxel: 1 + the source holding it throughout, 0: none */
    for (int i = 0; i < s->nsources; i++) {
        const abl_source *src = s->sources[i];
        if (!src->ops->held_always) continue;
        const size_t *idx;
        const double *frac;
        const size_t n =
            src->ops->held_always(src, s->sc->duration_s, &idx, &frac, &lo_s[i], &hi_s[i]);
        if (n == 0 || (freezing && !(lo_s[i] >= s->sc->freeze_liquidus_C))) continue;
        if (!held && !(held = grid_alloc_labels(g, 0)))
            return abl_fail(err, ABL_ENOMEM, "out of memory (%zu voxels x 1 B)", g->n);
        for (size_t q = 0; q < n; q++)
            if (pin_held(frac, q)) held[idx[q]] = (uint8_t)(i + 1);
    }
    if (!held) return ABL_OK;
    /* a material counts when it has voxels and every one of them is held; its k over the held
     * temperatures of the sources that hold it */
    size_t count[ABL_MAX_MATERIALS] = {0}, nheld[ABL_MAX_MATERIALS] = {0};
    double lo_m[ABL_MAX_MATERIALS], hi_m[ABL_MAX_MATERIALS];
    for (int m = 0; m < nm; m++) lo_m[m] = INFINITY, hi_m[m] = -INFINITY;
    for (size_t c = 0; c < g->n; c++) {
        const int m = s->material[c];
        count[m]++;
        if (!held[c]) continue;
        nheld[m]++;
        lo_m[m] = fmin(lo_m[m], lo_s[held[c] - 1]);
        hi_m[m] = fmax(hi_m[m], hi_s[held[c] - 1]);
    }
    grid_free_field(held);
    for (int m = 0; m < nm; m++) {
        if (!(count[m] > 0 && nheld[m] == count[m])) continue;
        s->held_always[m] = true;
        /* the k the sweep gives a held voxel: linear_k at the held temperature (the active
         * region's far field keeps the nominal k37) */
        s->k_bound[m] = fmax(s->k37[m], fmax(linear_k(s->k37[m], s->k_coeff[m], lo_m[m]),
                                             linear_k(s->k37[m], s->k_coeff[m], hi_m[m])));
    }
    return ABL_OK;
}

/* Stability of forward Euler: every coefficient of the update non-negative (discrete maximum
 * principle), i.e. dt * (sum of face G + W) / (rho c) <= 1 for the worst voxel of each material.
 * Per axis a voxel has two faces; at most one of them is a domain face. With
 * temperature-dependent k the bound uses each material's largest k (the harmonic mean is
 * increasing in both arguments, so it bounds every face). After the sources exist (held
 * materials, plan_held_materials). */
static abl_status plan_stability(abl_sim *s, abl_error *err)
{
    const int nm = s->nmat;
    abl_status st = plan_held_materials(s, err);
    if (st) return st;
    bool any_held = false;
    for (int m = 0; m < nm; m++) any_held |= s->held_always[m];
    double *gf = s->gface, *gb_tab = s->gbound;
    double *gf_b = NULL, *gb_b = NULL;
    if (s->var_props || any_held) {
        gf_b = calloc((size_t)3 * nm * nm, sizeof(double));
        gb_b = calloc((size_t)6 * nm, sizeof(double));
        if (!gf_b || !gb_b) {
            free(gf_b);
            free(gb_b);
            return abl_fail(err, ABL_ENOMEM, "out of memory");
        }
        double kb[ABL_MAX_MATERIALS];
        for (int m = 0; m < nm; m++) kb[m] = s->var_props || s->held_always[m] ? s->k_bound[m] : s->k37[m];
        face_tables(s, kb, gf_b, gb_b);
        gf = gf_b;
        gb_tab = gb_b;
    }
    for (int m = 0; m < nm; m++) s->rate_sum_W_m3K[m] = rate_sum(s, gf, gb_tab, m);
    free(gf_b);
    free(gb_b);
    return ABL_OK;
}

/* Same-tissue update coefficients of every material (kernels.h abl_fast_coef) for the step dt_s
 * (the planned step; the multirate long step) and the capacities 1/(rho c) = inv_rhoc. */
static void fast_coefs(const abl_sim *s, double dt_s, const double *inv_rhoc,
                       abl_fast_coef *fast)
{
    const int nm = s->nmat;
    for (int m = 0; m < nm; m++) {
        const double a = dt_s * inv_rhoc[m];
        abl_fast_coef *f = &fast[m];
        f->ax = a * s->gface[((size_t)0 * nm + m) * nm + m];
        f->ay = a * s->gface[((size_t)1 * nm + m) * nm + m];
        f->az = a * s->gface[((size_t)2 * nm + m) * nm + m];
        f->diag = 1.0 - 2.0 * (f->ax + f->ay + f->az) - a * s->perf_W[m];
        f->s = a * s->src_const[m];
    }
}

#define WALL_BLOCK 2048 /* wall_implicit sums the heat per block of this many list entries */

/* The explicit scheme's wall list (abl_sim wall_idx, wall_faces): every voxel on a domain face
 * that conducts (fixed temperature or convective; an insulated face has no conductance), in
 * index order, with the faces it touches. */
static abl_status plan_walls(abl_sim *s, abl_error *err)
{
    const abl_grid *g = &s->grid;
    const abl_scenario *sc = s->sc;
    bool conducts[6];
    for (int f = 0; f < 6; f++) conducts[f] = sc->bc[f].type != BC_INSULATED;
    for (int pass = 0; pass < 2; pass++) {
        size_t n = 0;
        for (int k = 0; k < g->nz; k++)
            for (int j = 0; j < g->ny; j++)
                for (int i = 0; i < g->nx; i++) {
                    const bool at[6] = {i == 0,          i == g->nx - 1, j == 0,
                                        j == g->ny - 1, k == 0,          k == g->nz - 1};
                    uint8_t mask = 0;
                    for (int f = 0; f < 6; f++)
                        if (at[f] && conducts[f]) mask |= (uint8_t)(1u << f);
                    if (!mask) continue;
                    if (pass) {
                        const size_t c = ABL_IDX(g, i, j, k);
                        s->wall_idx[n] = c;
                        s->wall_faces[n] = mask;
                        s->wall_ijk[3 * n] = i;
                        s->wall_ijk[3 * n + 1] = j;
                        s->wall_ijk[3 * n + 2] = k;
                        double G = 0.0;
                        for (int f = 0; f < 6; f++)
                            if (mask & (1u << f))
                                G += s->gbound[(size_t)f * s->nmat + s->material[c]];
                        s->wall_G[n] = G;
                    }
                    n++;
                }
        if (!pass) {
            s->n_wall = n;
            s->wall_idx = malloc((n ? n : 1) * sizeof *s->wall_idx);
            s->wall_faces = malloc(n ? n : 1);
            s->wall_ijk = malloc((n ? 3 * n : 1) * sizeof *s->wall_ijk);
            s->wall_G = malloc((n ? n : 1) * sizeof *s->wall_G);
            s->wall_eblock = malloc((n / WALL_BLOCK + 1) * sizeof *s->wall_eblock);
            if (!s->wall_idx || !s->wall_faces || !s->wall_ijk || !s->wall_G || !s->wall_eblock)
                return abl_fail(err, ABL_ENOMEM, "out of memory (domain-face voxel list)");
        }
    }
    return ABL_OK;
}

/* The time step, the explicit fast-path coefficients and the stencil's traversal plan (after
 * the sources exist). A source's coupling heat G (T_ref - T_b) does not enter the bound: the
 * explicit step takes it implicitly (explicit_step, source.h heat_G_W_m3K). */
static abl_status plan_step(abl_sim *s, abl_error *err)
{
    const abl_scenario *sc = s->sc;
    const abl_grid *g = &s->grid;
    const int nm = s->nmat;
    abl_status sst = plan_stability(s, err);
    if (sst) return sst;
    double dt_stable = INFINITY;
    for (int m = 0; m < nm; m++)
        dt_stable = fmin(dt_stable, 1.0 / (s->inv_rhoc[m] * s->rate_sum_W_m3K[m]));
    s->dt_stable_s = dt_stable;
    const bool expl = sc->scheme == SCHEME_EXPLICIT;
    /* implicit schemes: dt by accuracy (scenario.c), default 2 s or a tenth of the run */
    double dt = sc->dt_s > 0 ? sc->dt_s
                             : (expl ? sc->dt_safety * dt_stable : fmin(2.0, sc->duration_s / 10));
    /* a source's control loop may need shorter steps (source.h max_step_s): the automatic
     * step obeys it; a dt_s the scenario sets is taken as given */
    if (!(sc->dt_s > 0))
        for (int i = 0; i < s->nsources; i++)
            if (s->sources[i] && s->sources[i]->ops->max_step_s)
                dt = fmin(dt, s->sources[i]->ops->max_step_s(s->sources[i]));
    if (expl && sc->dt_s > dt_stable)
        return abl_fail(err, ABL_EINVAL,
                        "%s: time.dt_s = %g s exceeds the explicit stability limit %.4g s for "
                        "this grid spacing and these tissues; use dt_s: auto or a value <= %.4g",
                        sc->path, sc->dt_s, dt_stable, dt_stable);
    /* land exactly on the end time */
    /* The count is formed and checked in double before any conversion: a dt of 1e-18 s gives
     * 1e20 steps, and converting that to long is undefined (it came out as 1 step of the whole
     * duration: one huge unstable step). */
    const double nsteps_d = ceil(sc->duration_s / dt - 1e-9);
    if (!(nsteps_d <= ABL_MAX_STEPS))
        return abl_fail(err, ABL_EINVAL,
                        "%s: %.3g s at dt = %.3g s would take %.3g steps (limit %.0e); shorten "
                        "time.duration_s, raise time.dt_s or coarsen grid.spacing_mm",
                        sc->path, sc->duration_s, dt, nsteps_d, (double)ABL_MAX_STEPS);
    long nsteps = nsteps_d < 1 ? 1 : (long)nsteps_d;
    if (sc->snapshot_interval_s > 0) {
        /* snapshots: one per interval plus the initial one, each a float32 copy of the grid.
         * Every snapshot time is a step boundary (plan_time), so an interval shorter than the
         * step makes steps, not fewer snapshots: the count is not bounded by nsteps (it was,
         * and 1e6 snapshots of 1 ms over 1000 s were accepted and written as 100 000 step
         * boundaries followed by one snapshot per step: an adversarial test, session 26) */
        const double nsnap = ceil(sc->duration_s / sc->snapshot_interval_s - 1e-9) + 1;
        if (nsnap > ABL_MAX_SNAPSHOTS)
            return abl_fail(err, ABL_EINVAL,
                            "%s: output.snapshot_interval_s = %g s over %g s would write %.3g "
                            "snapshots (limit %ld); raise output.snapshot_interval_s or set it "
                            "to 0 (no snapshots)",
                            sc->path, sc->snapshot_interval_s, sc->duration_s, nsnap,
                            ABL_MAX_SNAPSHOTS);
    }
    s->dt_s = sc->duration_s / (double)nsteps;

    fast_coefs(s, s->dt_s, s->inv_rhoc, s->fast);
    s->st = (abl_stencil){
        .g = &s->grid,
        .nmat = nm,
        .dt_s = s->dt_s,
        .material = s->material,
        .cls = s->cls,
        .fast = s->fast,
        .inv_rhoc = s->inv_rhoc,
        .perf_W = s->perf_W,
        .src_const = s->src_const,
        .gface = s->gface,
        .gbound = s->gbound,
        .q_met = s->q_met,
        .T_arterial_C = sc->T_arterial_C,
    };
    for (int f = 0; f < 6; f++) {
        s->st.T_bound_C[f] = sc->bc[f].T_C;
        s->st.bc_type[f] = (int)sc->bc[f].type;
        s->st.bc_h_W_m2K[f] = sc->bc[f].h_W_m2K;
    }

    /* traversal plan; its size is known only now (general voxels cost 64 B each) */
    if (!stencil_plan_build(&s->st, &s->seg, &s->row_seg, &s->gen, &s->nseg, &s->ngen))
        return abl_fail(err, ABL_ENOMEM, "out of memory for the stencil plan (%d x %d rows)",
                        g->ny, g->nz);
    s->st.seg = s->seg;
    s->st.row_seg = s->row_seg;
    s->st.gen = s->gen;
    /* the sweep takes the walls trapezoidally itself where its capacity is the voxels' own
     * (wall_implicit); with phase change it is the curve's smallest slope */
    s->st.walls_in_kernel = !s->phase;
    return expl ? plan_walls(s, err) : ABL_OK;
}

/* Vectors, preconditioner and source switch times of the implicit schemes. */
static abl_status plan_implicit(abl_sim *s, abl_error *err)
{
    const abl_scenario *sc = s->sc;
    const abl_grid *g = &s->grid;
    s->rhs = grid_alloc_field(g, 0.0);
    s->qfield = grid_alloc_field(g, 0.0);
    s->fixed = grid_alloc_labels(g, 0);
    if (s->phase) {
        s->rhs0 = grid_alloc_field(g, 0.0);
        s->T_iter = grid_alloc_field(g, 0.0);
        if (!s->rhs0 || !s->T_iter)
            return abl_fail(err, ABL_ENOMEM, "out of memory for the phase-change iteration");
    }
    if (!s->rhs || !s->qfield || !s->fixed)
        return abl_fail(err, ABL_ENOMEM, "out of memory for the implicit solver (%zu voxels)",
                        g->n);
    /* volume averages of the coefficients for the mean-coefficient preconditioner */
    size_t count[ABL_MAX_MATERIALS] = {0};
    for (size_t c = 0; c < g->n; c++) count[s->material[c]]++;
    double C = 0, W = 0, k = 0;
    for (int m = 0; m < s->nmat; m++) {
        const double f = (double)count[m] / (double)g->n;
        C += f / s->inv_rhoc[m];
        W += f * s->perf_W[m];
        k += f * s->k37[m];
    }
    int bct[6];
    double bch[6];
    for (int f = 0; f < 6; f++) {
        bct[f] = (int)sc->bc[f].type;
        bch[f] = sc->bc[f].h_W_m2K;
    }
    abl_cg_opts o = {sc->solver_tol, sc->max_iterations, sc->preconditioner};
    abl_status st = implicit_create(&s->st, bct, bch, C, W, k, &o, &s->im, err);
    if (st) return st;
    if (s->im) implicit_set_profile(s->im, &s->prof);
    /* times at which a source switches abruptly: on, off, and steps in its schedule */
    size_t cap = 1;
    for (int i = 0; i < sc->nsources; i++) cap += 2 + (size_t)sc->sources[i].schedule.n;
    s->jump_s = malloc(cap * sizeof *s->jump_s);
    if (!s->jump_s) return abl_fail(err, ABL_ENOMEM, "out of memory");
    s->jump_s[s->n_jumps++] = 0.0;
    for (int i = 0; i < sc->nsources; i++) {
        const abl_source_cfg *src = &sc->sources[i];
        s->jump_s[s->n_jumps++] = src->on_s;
        if (src->off_s < sc->duration_s) s->jump_s[s->n_jumps++] = src->off_s;
        for (int q = 1; q < src->schedule.n; q++)
            if (src->schedule.t_s[q] == src->schedule.t_s[q - 1])
                s->jump_s[s->n_jumps++] = src->schedule.t_s[q];
    }
    return ABL_OK;
}

/* time.scheme: spectral - the exact modal evolution of spectral.h; only for what it is exact
 * for: one tissue with constant properties, fixed or insulated faces, volumetric sources. */
static abl_status plan_spectral(abl_sim *s, abl_error *err)
{
    const abl_scenario *sc = s->sc;
    const abl_grid *g = &s->grid;
    const char *why = NULL;
    if (s->nmat != 1) why = "the grid holds more than one tissue";
    else if (s->var_props) why = "a tissue has temperature-dependent properties";
    else if (sc->energy_balance) why = "output.energy_balance is not tracked by this scheme";
    for (int f = 0; f < 6 && !why; f++)
        if (sc->bc[f].type == BC_CONVECTIVE) why = "a face is convective";
    for (int i = 0; i < sc->nsources && !why; i++)
        if (sc->sources[i].type != SRC_VOLUMETRIC) why = "a source holds voxels at a temperature";
    if (why)
        return abl_fail(err, ABL_EINVAL,
                        "%s: time.scheme: spectral is exact only for one tissue, fixed or "
                        "insulated faces and volumetric sources, but %s; use crank_nicolson",
                        sc->path, why);
    bool fixed[6];
    for (int f = 0; f < 6; f++) fixed[f] = sc->bc[f].type == BC_FIXED_TEMPERATURE;
    abl_status st = spectral_create(g, fixed, &s->sp, err);
    if (st) return st;
    s->b_const = grid_alloc_field(g, 0.0);
    s->rhs = grid_alloc_field(g, 0.0);
    s->qfield = grid_alloc_field(g, 0.0);
    if (!s->b_const || !s->rhs || !s->qfield)
        return abl_fail(err, ABL_ENOMEM, "out of memory for the spectral scheme");
    /* f = A*0 + f: wall temperatures, W T_a, Q_met; in K/s */
    pennes_rhs(&s->st, s->qfield, s->b_const);
    for (size_t c = 0; c < g->n; c++) s->b_const[c] *= s->inv_rhoc[0];
    return ABL_OK;
}

/* One exact step: sources taken constant over the step at its midpoint (exact for piecewise
 * constant power, second order for ramps). */
static abl_status spectral_step(abl_sim *s, double h, abl_error *err)
{
    const abl_grid *g = &s->grid;
    const double dt = h, V = grid_voxel_volume_m3(g);
    abl_field_view view = {g, s->material, s->T, s->t_s + 0.5 * dt, dt, false, s->t_s, dt, &s->prof};
    memcpy(s->rhs, s->b_const, g->n * sizeof(double));
    for (int i = 0; i < s->nsources; i++) {
        abl_source_contrib c;
        abl_status st = s->sources[i]->ops->update(s->sources[i], &view, &c, err);
        if (st) return st;
        for (size_t q = 0; q < c.n_heat; q++) {
            s->rhs[c.heat_idx[q]] += c.heat_q_W_m3[q] * s->inv_rhoc[0];
            s->energy.E_sources_J += c.heat_q_W_m3[q] * V * dt;
        }
    }
    prof_mark(&s->prof, ABL_PROF_SOURCES, 0);
    memcpy(s->T_new, s->T, g->n * sizeof(double));
    spectral_evolve(s->sp, s->k37[0] * s->inv_rhoc[0], s->perf_W[0] * s->inv_rhoc[0], s->rhs, dt,
                    s->T_new, s->qfield);
    return ABL_OK;
}

/* ---- create / destroy --------------------------------------------------------------------- */

static abl_status plan_time(abl_sim *s, abl_error *err);
static abl_status plan_region(abl_sim *s, abl_error *err);
static abl_status plan_multirate(abl_sim *s, abl_error *err);


abl_status sim_create(const abl_scenario *sc, abl_sim **out, abl_error *err)
{
    *out = NULL;
    abl_sim *s = calloc(1, sizeof *s);
    if (!s) return abl_fail(err, ABL_ENOMEM, "out of memory");
    s->sc = sc;
    abl_status st;
    if ((st = build_grid(s, err)) || (st = plan_stencil(s, err))) goto fail;

    if ((st = fields_create(s, err))) goto fail;
    if (sc->nsources) {
        s->sources = calloc((size_t)sc->nsources, sizeof *s->sources);
        if (!s->sources) goto nomem;
        for (int i = 0; i < sc->nsources; i++) {
            if ((st = source_create(&sc->sources[i], s, &s->sources[i], err))) goto fail;
            s->nsources++;
        }
    }
    if ((st = plan_step(s, err)) || (st = plan_time(s, err))) goto fail;
    s->energy.energy_tracked = sc->energy_balance;
    if (s->var_props && (st = sim_set_property_hook(s, linear_k_hook, s, err))) goto fail;
    if ((st = plan_region(s, err)) || (st = plan_multirate(s, err))) goto fail;
    if ((sc->scheme == SCHEME_IMPLICIT || sc->scheme == SCHEME_CRANK_NICOLSON) &&
        (st = plan_implicit(s, err)))
        goto fail;
    if (sc->scheme == SCHEME_SPECTRAL && (st = plan_spectral(s, err))) goto fail;
    /* probes (positions checked against the grid here), zone axes, first records at t = 0 */
    {
        const abl_sim_view v = sim_view(s);
        if ((st = runlog_create(&v, &s->runlog, err))) goto fail;
    }
    *out = s;
    return ABL_OK;
nomem:
    st = abl_fail(err, ABL_ENOMEM, "out of memory allocating fields for %zu voxels", s->grid.n);
fail:
    sim_destroy(s);
    return st;
}

abl_sim_view sim_view(const abl_sim *s)
{
    return (abl_sim_view){
        .sc = s->sc,
        .grid = s->grid,
        .nmat = s->nmat,
        .mat_tissue = s->mat_tissue,
        .material = s->material,
        .fields = s->fields,
        .nfields = s->nfields,
        .T = s->T,
        .T_max = s->T_max,
        .T_min = s->T_min,
        .omega = s->omega,
        .cem43_min = s->cem43_min,
        /* T ** does not convert to const T *const * implicitly in C; the view only reads */
        .sources = (const abl_source *const *)s->sources,
        .nsources = s->nsources,
        .n_extra_pin = s->n_extra_pin,
        .t_s = s->t_s,
        .dt_s = s->dt_s,
        .dt_stable_s = s->dt_stable_s,
        .step = s->step,
        .seg_t0_s = s->seg_t0_s,
        .seg_steps = s->seg_steps,
        .monitor_accum_s = s->monitor_accum_s,
        .region_known = s->region_on && s->region_known,
        .mr_ratio = s->mr_ratio,
        .mr_long_steps = s->mr_long_steps,
        .mr_early_ends = s->mr_early_ends,
        .region_box = {s->reg_lo[0], s->reg_lo[1], s->reg_lo[2], s->reg_hi[0], s->reg_hi[1],
                       s->reg_hi[2]},
        .region_span_lo = s->span_lo,
        .region_span_hi = s->span_hi,
        .wall_s = s->wall_s,
        .energy = s->energy,
        .cg_iters = s->cg_iters,
        .cg_resid = s->cg_resid,
        .cg_time_s = s->cg_time_s,
        .n_cg = s->n_cg,
        .prof = &s->prof,
        .profile_output = s->profile_output,
        .runlog = s->runlog,
        .dt_check = s->dt_check.done ? &s->dt_check : NULL,
    };
}

void sim_destroy(abl_sim *s)
{
    if (!s) return;
    runlog_free(s->runlog);
    for (int i = 0; i < s->nsources; i++) source_destroy(s->sources[i]);
    free(s->sources);
    grid_free_field(s->material);
    grid_free_field(s->cls);
    fields_destroy(s);
    free(s->phase);
    free(s->k_frozen);
    free(s->arr_A);
    free(s->arr_Ea);
    free(s->fast);
    free(s->inv_rhoc);
    free(s->perf_W);
    free(s->src_const);
    free(s->gface);
    free(s->gbound);
    free(s->wall_idx);
    free(s->wall_faces);
    free(s->wall_ijk);
    free(s->wall_G);
    free(s->wall_eblock);
    free(s->heat_eblock);
    free(s->heat_fblock);
    free(s->q_met);
    free(s->k_coeff);
    free(s->k37);
    grid_free_field(s->k_field);
    grid_free_field(s->W_field);
    free(s->seg);
    free(s->row_seg);
    free(s->gen);
    free(s->fast_u);
    free(s->reg_left);
    free(s->span_lo);
    free(s->span_hi);
    free(s->vspan_lo);
    free(s->vspan_hi);
    free(s->inv_rhoc_u);
    free(s->seg_u);
    free(s->row_seg_u);
    free(s->gen_u);
    free(s->fast_s);
    free(s->seg_s);
    free(s->row_seg_s);
    free(s->gen_s);
    grid_free_field(s->mr_buf);
    free(s->mr_sum);
    free(s->mr_pin_idx);
    free(s->mr_cpl_idx);
    free(s->mr_cpl_G);
    free(s->mr_cpl_T);
    grid_free_field(s->mr_mask);
    free(s->mr_pin_T);
    free(s->mr_pair);
    free(s->mr_axis);
    free(s->extra_pin_idx);
    free(s->extra_pin_T);
    implicit_destroy(s->im);
    spectral_destroy(s->sp);
    grid_free_field(s->b_const);
    grid_free_field(s->rhs);
    grid_free_field(s->qfield);
    grid_free_field(s->fixed);
    grid_free_field(s->owner);
    free(s->heat_seen);
    free(s->cpl_idx);
    free(s->cpl_G);
    grid_free_field(s->rhs0);
    grid_free_field(s->T_iter);
    free(s->fixed_list);
    free(s->jump_s);
    free(s->bp_s);
    free(s->cg_iters);
    free(s->cg_resid);
    free(s->cg_time_s);
    free(s);
}

double sim_tissue_k(const abl_sim *s, int m, double T_C)
{
    const abl_scenario *sc = s->sc;
    const double Tl = sc->freeze_liquidus_C;
    if (s->phase && sc->freezing && s->k_frozen && !isnan(s->k_frozen[m]) && T_C < Tl) {
        const double phi = phase_liquid_fraction(T_C, sc->freeze_solidus_C, Tl);
        return phi * linear_k(s->k37[m], s->k_coeff[m], Tl) + (1.0 - phi) * s->k_frozen[m];
    }
    return linear_k(s->k37[m], s->k_coeff[m], T_C);
}

abl_status sim_pin_voxels(abl_sim *s, size_t n, const size_t *idx, const double *T_C,
                          abl_error *err)
{
    size_t *ni = realloc(s->extra_pin_idx, (s->n_extra_pin + n) * sizeof *ni);
    if (!ni) return abl_fail(err, ABL_ENOMEM, "out of memory");
    s->extra_pin_idx = ni;
    double *nt = realloc(s->extra_pin_T, (s->n_extra_pin + n) * sizeof *nt);
    if (!nt) return abl_fail(err, ABL_ENOMEM, "out of memory");
    s->extra_pin_T = nt;
    for (size_t q = 0; q < n; q++) {
        if (idx[q] >= s->grid.n)
            return abl_fail(err, ABL_EINVAL, "pinned voxel index %zu outside the grid (%zu)",
                            idx[q], s->grid.n);
        ni[s->n_extra_pin + q] = idx[q];
        nt[s->n_extra_pin + q] = T_C[q];
    }
    s->n_extra_pin += n;
    for (size_t q = 0; q < n; q++) s->T[idx[q]] = T_C[q];
    return ABL_OK;
}

abl_status sim_set_property_hook(abl_sim *s, abl_property_fn fn, void *ctx, abl_error *err)
{
    if (s->step > 0)
        return abl_fail(err, ABL_EINVAL, "a property hook must be set before the first step");
    if (!s->k_field) s->k_field = grid_alloc_field(&s->grid, 0.0);
    if (!s->W_field) s->W_field = grid_alloc_field(&s->grid, 0.0);
    if (!s->k_field || !s->W_field)
        return abl_fail(err, ABL_ENOMEM,
                        "out of memory for per-voxel properties (%zu voxels x 16 B)", s->grid.n);
    s->prop_fn = fn;
    s->prop_ctx = ctx;
    /* the active region relies on the built-in hook's nominal values (plan_region) */
    if (fn != linear_k_hook) s->region_on = false;
    return ABL_OK;
}

/* ---- time stepping ------------------------------------------------------------------------ */

/* Hold pinned voxels; returns the heat that took [J]. */
/* Is pinned entry q held? frac (may be NULL): held volume fraction per voxel (source.h
 * pin_frac). The half-volume
 * rule: a voxel at least half inside the applicator is held, one less than half is tissue.
 * Unlike the centre rule it does not depend on where the voxel centre falls, only on how much
 * of the voxel the applicator fills; unlike blending T towards the held value by f (tried: the
 * hold then depended on dt, tending to a full pin as dt -> 0) it converges in h at any dt.
 * (The built-in fixed_temperature source lists no fractions since session 20: it holds the
 * voxels whose centre its shape contains and couples their neighbours to its true surface,
 * basic.c; the rule stays for any source that lists fractions.) */
static bool pin_held(const double *frac, size_t q)
{
    return !frac || frac[q] >= 0.5;
}

/* Remember the voxels modality source i holds (applicator surfaces, see sim.h). Held anatomy
 * (a vessel's lumen, pins_anatomy) is not an applicator track: the margin analysis must not
 * count it as ablated. */
static void mark_applicator(abl_sim *s, int i, const abl_source_contrib *c)
{
    if (!s->applicator || s->sc->sources[i].type != SRC_MODALITY || c->pins_anatomy) return;
    for (size_t q = 0; q < c->n_pin; q++)
        if (pin_held(c->pin_frac, q)) s->applicator[c->pin_idx[q]] = 1;
}

/* Volumetric enthalpy of voxel c at temperature T_C [J/m^3] (rho c T without phase change). */
static double voxel_H(const abl_sim *s, size_t c, double T_C)
{
    const int m = s->material[c];
    return s->phase ? phase_H(&s->phase[m], T_C) : T_C / s->inv_rhoc[m];
}

/* Stored heat sum H V [J] (deterministic, see pennes_stored_energy). */
static double stored_energy(const abl_sim *s, double *work)
{
    if (!s->phase) return pennes_stored_energy(&s->st, s->T, work);
    return phase_stored_energy(s->grid.sz, s->grid.nz, s->material, s->phase, s->T,
                               grid_voxel_volume_m3(&s->grid), work);
}


/* Which held voxels apply_pins sets: all; in a multirate long step's short steps only those in
 * the fast box (the rest of the grid is not stepped then), after each short step the others
 * kept in s->mr_pin_idx / mr_pin_T: the last short step's are held at the long step's end
 * (multirate_step). */
enum { PINS_ALL, PINS_FAST, PINS_FAST_KEEP_REST };

static inline bool in_fast_box(const abl_sim *s, size_t c)
{
    return s->mr_mask[c] != 0;
}

static double apply_pins(abl_sim *s, double *T, size_t n, const size_t *idx, const double *val,
                         const double *frac, int which, abl_status *st, abl_error *err)
{
    const double V = grid_voxel_volume_m3(&s->grid);
    double e = 0.0;
    for (size_t q = 0; q < n; q++) {
        size_t c = idx[q];
        if (!pin_held(frac, q)) continue;
        const double Tn = val[q];
        if (which != PINS_ALL && !in_fast_box(s, c)) {
            if (which == PINS_FAST_KEEP_REST) {
                if (s->mr_npin == s->mr_cap_pin) {
                    const size_t cap = s->mr_cap_pin ? 2 * s->mr_cap_pin : 256;
                    size_t *pi = realloc(s->mr_pin_idx, cap * sizeof *pi);
                    if (pi) s->mr_pin_idx = pi;
                    double *pt = pi ? realloc(s->mr_pin_T, cap * sizeof *pt) : NULL;
                    if (pt) s->mr_pin_T = pt;
                    if (!pi || !pt) {
                        if (!*st) *st = abl_fail(err, ABL_ENOMEM, "out of memory (held voxels)");
                        continue;
                    }
                    s->mr_cap_pin = cap;
                }
                s->mr_pin_idx[s->mr_npin] = c;
                s->mr_pin_T[s->mr_npin++] = Tn;
            }
            continue;
        }
        /* a voxel already at its value (the pins before a sweep hold voxels the last step's
         * pins set) moves no heat: skip its two enthalpy evaluations */
        if (T[c] == Tn) continue;
        e += (voxel_H(s, c, Tn) - voxel_H(s, c, T[c])) * V;
        T[c] = Tn;
    }
    return e;
}

/* Freeze cycles: a voxel counts a freeze when it falls below the solidus and is ready to count
 * again once it has thawed above the liquidus (hysteresis over the freezing range, so noise at
 * one temperature cannot count cycles). */
static void count_freezes(abl_sim *s)
{
    const double Ts = s->sc->freeze_solidus_C, Tl = s->sc->freeze_liquidus_C;
    const abl_grid *g = &s->grid;
    const double *T = s->T;
    uint8_t *fr = s->frozen_now;
    float *cyc = s->freeze_cycles;
    /* with the active region, every voxel that is or was below the liquidus is inside its box:
     * nothing outside can freeze or be frozen */
    int lo[3] = {0, 0, 0}, hi[3] = {g->nx, g->ny, g->nz};
    if (s->region_on && s->region_known)
        for (int d = 0; d < 3; d++) lo[d] = s->reg_lo[d], hi[d] = s->reg_hi[d];
#pragma omp parallel for collapse(2) schedule(static)
    for (int k = lo[2]; k < hi[2]; k++)
        for (int j = lo[1]; j < hi[1]; j++)
            for (size_t c = ABL_IDX(g, lo[0], j, k), e = c + (size_t)(hi[0] - lo[0]); c < e;
                 c++) {
                if (!fr[c] && T[c] < Ts) {
                    fr[c] = 1;
                    cyc[c] += 1.0f;
                } else if (fr[c] && T[c] > Tl) {
                    fr[c] = 0;
                }
            }
}

static abl_status monitor(abl_sim *s, double interval_s, abl_error *err)
{
    const abl_scenario *sc = s->sc;
    prof_start(&s->prof);
    if (s->freeze_cycles) count_freezes(s);
    const abl_damage_maps dmg = {s->material, s->arr_A,    s->arr_Ea, sc->arrhenius_min_C,
                                 s->omega,    s->cem43_min};
    size_t bad = monitor_update(T_SANE_LO_C, T_SANE_HI_C, s->grid.n, s->T, s->T_max, s->T_min,
                                sc->n_hot, sc->hot_C, s->t_hot, sc->n_cold, sc->cold_C, s->t_cold,
                                interval_s, &dmg);
    if (bad != (size_t)-1) {
        const abl_grid *g = &s->grid;
        int i = (int)(bad % g->sy), j = (int)(bad / g->sy % (size_t)g->ny), k = (int)(bad / g->sz);
        double x[3];
        grid_voxel_centre_m(g, i, j, k, x);
        return abl_fail(err, ABL_ENUM,
                        "%s: numerical fault at t = %.3f s (step %ld): temperature %g C at voxel "
                        "(%d,%d,%d) = (%.1f, %.1f, %.1f) mm, tissue %s. Likely cause: a source "
                        "power far too high for the voxel size, or dt_s too large",
                        sc->path, s->t_s, s->step, s->T[bad], i, j, k, x[0] * 1e3, x[1] * 1e3, x[2] * 1e3,
                        sc->tissues.t[s->mat_tissue[s->material[bad]]].name);
    }
    prof_mark(&s->prof, ABL_PROF_MONITOR, 0);
    /* probes, zone growth and source power when due (runlog.h), on the maps just updated */
    const abl_sim_view v = sim_view(s);
    abl_status st = runlog_sample(s->runlog, &v, err);
    prof_mark(&s->prof, ABL_PROF_RUNLOG, 0);
    return st;
}

/* Contradictory sources (docs/RELIABILITY.md): two sources may not hold the same voxel (two
 * fixed temperatures, two electrodes or probes overlapping), and a source may not deposit heat
 * in a voxel another source holds (an antenna inside an electrode). Such a scenario is refused
 * at the first step where it happens, naming both sources and the voxel, rather than resolved
 * silently by whichever source is applied last. pins[i] / heat[i]: source i's lists this step.
 * Cost: O(pinned + heated voxels) per step, and nothing with fewer than two sources. */
static abl_status check_overlaps(abl_sim *s, const abl_source_contrib *pins,
                                 const abl_source_contrib *heat, int nc, abl_error *err)
{
    if (nc < 2) return ABL_OK;
    size_t total = 0;
    for (int i = 0; i < nc; i++) total += pins[i].n_pin;
    if (total == 0) return ABL_OK;
    if (!s->owner && !(s->owner = grid_alloc_labels(&s->grid, 0)))
        return abl_fail(err, ABL_ENOMEM, "out of memory (%zu voxels x 1 B)", s->grid.n);
    uint8_t *own = s->owner;
    abl_status st = ABL_OK;
    size_t bad = 0;
    int a = -1, b = -1;
    bool heat_clash = false;
    for (int i = 0; i < nc && !st; i++)
        for (size_t q = 0; q < pins[i].n_pin; q++) {
            if (!pin_held(pins[i].pin_frac, q)) continue;
            const size_t v = pins[i].pin_idx[q];
            if (own[v] && own[v] != i + 1) {
                bad = v, a = own[v] - 1, b = i;
                st = ABL_EINVAL;
                break;
            }
            own[v] = (uint8_t)(i + 1);
        }
    for (int i = 0; i < nc && !st && heat; i++)
        for (size_t q = 0; q < heat[i].n_heat; q++) {
            /* a coupling entry (heat_G) ties a voxel beside a held surface to it; that voxel
             * may be another source's held one (two held shapes side by side): its hold wins
             * and takes the coupling heat like any other, so that is no contradiction */
            if (heat[i].heat_G_W_m3K && q >= heat[i].heat_G_first) break;
            const size_t v = heat[i].heat_idx[q];
            if (own[v] && own[v] != i + 1 && !pins[own[v] - 1].pins_absorb) {
                bad = v, a = own[v] - 1, b = i, heat_clash = true;
                st = ABL_EINVAL;
                break;
            }
        }
    for (int i = 0; i < nc; i++)
        for (size_t q = 0; q < pins[i].n_pin; q++) own[pins[i].pin_idx[q]] = 0;
    if (!st) return ABL_OK;
    const abl_grid *g = &s->grid;
    const int vi = (int)(bad % g->sy), vj = (int)(bad / g->sy % (size_t)g->ny),
              vk = (int)(bad / g->sz);
    double x[3];
    grid_voxel_centre_m(g, vi, vj, vk, x);
    return abl_fail(err, ABL_EINVAL,
                    "%s: sources '%s' and '%s' contradict each other at t = %.3f s: %s voxel "
                    "(%d,%d,%d) = (%.1f, %.1f, %.1f) mm, which '%s' holds at a temperature. "
                    "Move or shorten one of them (%s; %s)",
                    s->sc->path, s->sc->sources[a].name, s->sc->sources[b].name, s->t_s,
                    heat_clash ? "the second heats" : "both hold", vi, vj, vk, x[0] * 1e3,
                    x[1] * 1e3, x[2] * 1e3, s->sc->sources[a].name, s->sc->sources[a].where,
                    s->sc->sources[b].where);
}

/* ---- active region of explicit freezing runs (docs/PHASE_CHANGE.md "Active region") ----
 *
 * A voxel is nominal when its properties are its material's constants and the enthalpy map is
 * the identity on it: T within the liquid window [T_l, T_top - 0.5 K] (above the liquidus;
 * T_top the start of vaporisation, and 39 C with perfusion shutdown, where the damage integral
 * that scales perfusion starts to move, monitor.c), T_min above the stasis temperature and no
 * damage. The explicit step of a voxel is a convex combination of its own,
 * its six neighbours', the arterial and the wall temperatures plus dt q_met / (rho c)
 * (non-negative coefficients: the stability bound). If the window contains T_a and every wall
 * temperature, and T_a + q_met / W stays inside it (q_met > 0 only with perfusion), a nominal
 * voxel whose neighbours are nominal stays nominal. So the voxels that can leave the window in
 * one step are the box's one-voxel shell and voxels a source holds or heats; the box grows by
 * scanning just those. It never shrinks: every voxel ever outside the window stays in it, and
 * outside the box k_field and W_field keep the nominal values the first whole-grid hook wrote.
 * Outside the box the step is the constant-property sweep with the liquid capacity C_u, which
 * is what the enthalpy map does on the liquid window (dH = C_ref (T* - T0) = C_u (T1 - T0)). */

static bool region_empty(const int lo[3], const int hi[3])
{
    return lo[0] >= hi[0] || lo[1] >= hi[1] || lo[2] >= hi[2];
}

/* Voxels in the box lo..hi (0 when empty): the profile's traffic count. */
static double region_voxels(const int lo[3], const int hi[3])
{
    return region_empty(lo, hi) ? 0.0
                                : (double)(hi[0] - lo[0]) * (hi[1] - lo[1]) * (hi[2] - lo[2]);
}

/* Is voxel x = (i, j, k) in the region r (kernels.h abl_sweep_box)? */
static inline bool in_sweep_box(const abl_sweep_box *r, const int32_t *x)
{
    const bool in = x[0] >= r->lo[0] && x[0] < r->hi[0] && x[1] >= r->lo[1] && x[1] < r->hi[1] &&
                    x[2] >= r->lo[2] && x[2] < r->hi[2];
    const bool out = x[0] >= r->xlo[0] && x[0] < r->xhi[0] && x[1] >= r->xlo[1] &&
                     x[1] < r->xhi[1] && x[2] >= r->xlo[2] && x[2] < r->xhi[2];
    return in && !out;
}

/* A traversal plan of st's own (its coefficient records depend on its capacities and step), in
 * arrays the sim owns (freed by sim_destroy); false when out of memory. */
static bool plan_own_segments(abl_stencil *st, abl_segment **seg, size_t **row_seg,
                              abl_gen_coef **gen)
{
    size_t nseg, ngen;
    if (!stencil_plan_build(st, seg, row_seg, gen, &nseg, &ngen)) return false;
    st->seg = *seg;
    st->row_seg = *row_seg;
    st->gen = *gen;
    return true;
}

/* Plan the region when the run qualifies; otherwise leave region_on false (the whole-grid
 * variable-property path, as before). Called after the property hook is set. */
static abl_status plan_region(abl_sim *s, abl_error *err)
{
    const abl_scenario *sc = s->sc;
    s->region_on = false;
    if (!sc->active_region || sc->scheme != SCHEME_EXPLICIT) return ABL_OK;
    /* Freezing runs (with the built-in property hook), and heating runs with constant k and
     * per-voxel work to save: the enthalpy map of boiling, the correction of perfusion
     * shutdown (region_heat_after below) */
    const bool frz = sc->freezing;
    if (frz ? (s->prop_fn != linear_k_hook || !s->phase)
            : (s->prop_fn || (!s->phase && !sc->perfusion_shutdown)))
        return ABL_OK;
    /* the window's top: the enthalpy curve's liquid range ends where boiling starts; with
     * perfusion shutdown, W changes once the damage integral moves, at 39 C or the lower
     * arrhenius_min_C (monitor.c) */
    double hi = sc->vaporisation ? sc->vap_lo_C : INFINITY;
    if (sc->perfusion_shutdown) hi = fmin(hi, fmin(39.0, sc->arrhenius_min_C));
    hi -= 0.5;
    const double lo = frz ? sc->freeze_liquidus_C : -INFINITY;
    if (!(lo < hi) || !(sc->T_arterial_C >= lo && sc->T_arterial_C <= hi)) return ABL_OK;
    for (int f = 0; f < 6; f++)
        if (sc->bc[f].type != BC_INSULATED && !(sc->bc[f].T_C >= lo && sc->bc[f].T_C <= hi))
            return ABL_OK;
    for (int m = 0; m < s->nmat; m++) {
        if (s->k_coeff[m] != 0.0 || s->q_met[m] < 0.0) return ABL_OK;
        if (s->q_met[m] > 0.0 && !(s->perf_W[m] > 0.0 &&
                                   sc->T_arterial_C + s->q_met[m] / s->perf_W[m] <= hi))
            return ABL_OK;
    }
    const int nm = s->nmat;
    if (nm < 1) return ABL_OK;
    const size_t nrows = (size_t)s->grid.ny * (size_t)s->grid.nz;
    s->span_lo = calloc(nrows, sizeof *s->span_lo); /* all spans empty: [0, 0) */
    s->span_hi = calloc(nrows, sizeof *s->span_hi);
    s->vspan_lo = calloc(nrows, sizeof *s->vspan_lo);
    s->vspan_hi = calloc(nrows, sizeof *s->vspan_hi);
    if (!s->span_lo || !s->span_hi || !s->vspan_lo || !s->vspan_hi)
        return abl_fail(err, ABL_ENOMEM, "out of memory");
    s->reg_T_lo_C = lo;
    s->reg_T_hi_C = hi;
    if (!frz) {
        /* a heating run steps as without the region (the constant-property sweep, the walls
         * in wall_implicit): only the enthalpy map and the perfusion correction are confined */
        s->region_heat_after = true;
        s->region_on = true;
        return ABL_OK;
    }
    s->fast_u = calloc((size_t)nm, sizeof *s->fast_u);
    s->inv_rhoc_u = calloc((size_t)nm, sizeof *s->inv_rhoc_u);
    if (!s->fast_u || !s->inv_rhoc_u) return abl_fail(err, ABL_ENOMEM, "out of memory");
    for (int m = 0; m < nm; m++) {
        const abl_tissue *t = &sc->tissues.t[s->mat_tissue[m]];
        s->inv_rhoc_u[m] = 1.0 / (t->rho_kg_m3 * t->c_J_kgK);
    }
    fast_coefs(s, s->dt_s, s->inv_rhoc_u, s->fast_u);
    /* a plan of its own, not s->seg with other records: runs of interface voxels are merged
     * where their records are bitwise equal, and scaling by another capacity can round two
     * equal records apart */
    s->st_u = s->st;
    s->st_u.fast = s->fast_u;
    s->st_u.inv_rhoc = s->inv_rhoc_u;
    s->st_u.walls_in_kernel = true; /* liquid capacity: the window's voxels' own */
    if (!plan_own_segments(&s->st_u, &s->seg_u, &s->row_seg_u, &s->gen_u))
        return abl_fail(err, ABL_ENOMEM, "out of memory for the active region's stencil plan");
    s->region_on = true;
    return ABL_OK;
}

/* Grow the span of voxel (i, j, k)'s row, and the box, to hold it. */
static void region_include_ijk(abl_sim *s, int i, int j, int k)
{
    const size_t r = (size_t)k * (size_t)s->grid.ny + (size_t)j;
    if (s->span_lo[r] >= s->span_hi[r]) {
        s->span_lo[r] = i, s->span_hi[r] = i + 1;
    } else {
        if (i < s->span_lo[r]) s->span_lo[r] = i;
        if (i >= s->span_hi[r]) s->span_hi[r] = i + 1;
    }
    const int ijk[3] = {i, j, k};
    if (region_empty(s->reg_lo, s->reg_hi)) {
        for (int d = 0; d < 3; d++) s->reg_lo[d] = ijk[d], s->reg_hi[d] = ijk[d] + 1;
        return;
    }
    for (int d = 0; d < 3; d++) {
        if (ijk[d] < s->reg_lo[d]) s->reg_lo[d] = ijk[d];
        if (ijk[d] >= s->reg_hi[d]) s->reg_hi[d] = ijk[d] + 1;
    }
}

static void region_include(abl_sim *s, size_t c)
{
    const abl_grid *g = &s->grid;
    region_include_ijk(s, (int)(c % g->sy), (int)(c / g->sy % (size_t)g->ny), (int)(c / g->sz));
}

/* The box grown by one voxel, clipped to the grid (empty stays empty). */
static void region_halo(const abl_sim *s, int lo[3], int hi[3])
{
    const int n[3] = {s->grid.nx, s->grid.ny, s->grid.nz};
    if (region_empty(s->reg_lo, s->reg_hi)) {
        for (int d = 0; d < 3; d++) lo[d] = hi[d] = 0;
        return;
    }
    for (int d = 0; d < 3; d++) {
        lo[d] = s->reg_lo[d] > 0 ? s->reg_lo[d] - 1 : 0;
        hi[d] = s->reg_hi[d] < n[d] ? s->reg_hi[d] + 1 : n[d];
    }
}

/* Grow the spans (and their box) to every non-nominal voxel of the rows lo..hi (in j, k) that
 * lies in the row's part [a_r, b_r) (scan_lo/scan_hi per row; NULL: [lo[0], hi[0])) and not in
 * its span already. With state, T_min and the damage integral are tested too (a start or a
 * resume; afterwards they cannot change outside the window). Each row's span is written by the
 * one iteration that scans the row; the box is a reduction: independent of the thread count. */
static void region_scan(abl_sim *s, const double *T, const int lo[3], const int hi[3],
                        const int32_t *scan_lo, const int32_t *scan_hi, bool state)
{
    if (region_empty(lo, hi)) return;
    const abl_grid *g = &s->grid;
    const double wlo = s->reg_T_lo_C, whi = s->reg_T_hi_C, stasis = s->sc->stasis_C;
    /* a threshold-stopped voxel (T_max >= stop) is not nominal even with no damage; NaN: no
     * such voxel (the comparison is false) */
    const double stop = s->sc->perfusion_shutdown ? s->sc->perfusion_stop_C : NAN;
    const double *Tmin = s->T_min, *om = s->omega, *Tmax = s->T_max;
    int32_t *sl = s->span_lo, *sh = s->span_hi;
    int b0 = INT_MAX, b1 = INT_MAX, b2 = INT_MAX, e0 = -1, e1 = -1, e2 = -1;
#pragma omp parallel for collapse(2) schedule(static) reduction(min : b0, b1, b2) \
    reduction(max : e0, e1, e2)
    for (int k = lo[2]; k < hi[2]; k++)
        for (int j = lo[1]; j < hi[1]; j++) {
            const size_t r = (size_t)k * (size_t)g->ny + (size_t)j;
            const int from = scan_lo ? scan_lo[r] : lo[0], to = scan_hi ? scan_hi[r] : hi[0];
            const bool has = sl[r] < sh[r];
            int a = INT_MAX, b = -1;
            /* the row's part before its span and the part after it (no span: the part) */
            const int pf[2] = {from, has && sh[r] > from ? sh[r] : to};
            const int pt[2] = {has && sl[r] < to ? sl[r] : to, to};
            for (int part = 0; part < (has ? 2 : 1); part++) {
                for (int i = pf[part]; i < pt[part]; i++) {
                    const size_t c = ABL_IDX(g, i, j, k);
                    const double t = T[c];
                    if (t >= wlo && t <= whi &&
                        (!state || (Tmin[c] > stasis && om[c] == 0.0 && !(Tmax[c] >= stop))))
                        continue;
                    a = i < a ? i : a;
                    b = i > b ? i : b;
                }
            }
            if (b < 0) continue;
            if (!has) {
                sl[r] = a, sh[r] = b + 1;
            } else {
                if (a < sl[r]) sl[r] = a;
                if (b >= sh[r]) sh[r] = b + 1;
            }
            b0 = sl[r] < b0 ? sl[r] : b0, e0 = sh[r] - 1 > e0 ? sh[r] - 1 : e0;
            b1 = j < b1 ? j : b1, e1 = j > e1 ? j : e1;
            b2 = k < b2 ? k : b2, e2 = k > e2 ? k : e2;
        }
    if (e0 < 0) return;
    /* the box grows to the hull of the rows whose spans grew (the spans are set above) */
    const int lo_new[3] = {b0, b1, b2}, hi_new[3] = {e0 + 1, e1 + 1, e2 + 1};
    if (region_empty(s->reg_lo, s->reg_hi)) {
        for (int d = 0; d < 3; d++) s->reg_lo[d] = lo_new[d], s->reg_hi[d] = hi_new[d];
        return;
    }
    for (int d = 0; d < 3; d++) {
        if (lo_new[d] < s->reg_lo[d]) s->reg_lo[d] = lo_new[d];
        if (hi_new[d] > s->reg_hi[d]) s->reg_hi[d] = hi_new[d];
    }
}

/* This step's variable-property spans on the rows of the box + 1 (rlo..rhi): per row the
 * union of its own span grown by one voxel in x and the spans of its four neighbour rows
 * (the voxels whose 7-point stencil reads a voxel of a span), clipped to rlo[0]..rhi[0].
 * Every other voxel and its six neighbours are nominal: k_field and W_field hold the nominal
 * values there, the constant-property sweep gives it its update, and the update keeps it in
 * the window (see above). Returns the number of voxels in the spans. */
static double region_var_spans(abl_sim *s, const int rlo[3], const int rhi[3])
{
    const abl_grid *g = &s->grid;
    const int ny = g->ny, nz = g->nz;
    const int32_t *sl = s->span_lo, *sh = s->span_hi;
    int32_t *vl = s->vspan_lo, *vh = s->vspan_hi;
    double nv = 0.0;
#pragma omp parallel for collapse(2) schedule(static) reduction(+ : nv)
    for (int k = rlo[2]; k < rhi[2]; k++)
        for (int j = rlo[1]; j < rhi[1]; j++) {
            const size_t r = (size_t)k * (size_t)ny + (size_t)j;
            int a = INT_MAX, b = INT_MIN;
            if (sl[r] < sh[r]) a = sl[r] - 1, b = sh[r] + 1;
            const int nj[4] = {j - 1, j + 1, j, j}, nk[4] = {k, k, k - 1, k + 1};
            for (int q = 0; q < 4; q++) {
                if (nj[q] < 0 || nj[q] >= ny || nk[q] < 0 || nk[q] >= nz) continue;
                const size_t rn = (size_t)nk[q] * (size_t)ny + (size_t)nj[q];
                if (sl[rn] >= sh[rn]) continue;
                a = sl[rn] < a ? sl[rn] : a;
                b = sh[rn] > b ? sh[rn] : b;
            }
            a = a < rlo[0] ? rlo[0] : a;
            b = b > rhi[0] ? rhi[0] : b;
            if (a >= b) a = b = 0;
            vl[r] = a, vh[r] = b;
            nv += b - a;
        }
    return nv;
}

/* Before the sweep (pins already applied to T): the spans from a whole-grid scan if they are
 * not known yet, then every voxel a source heats this step and every held voxel whose value is
 * outside the window (the convexity argument does not cover them). */
static void region_before_sweep(abl_sim *s, const abl_source_contrib *contrib, int nc)
{
    if (!s->region_known) {
        const int zero[3] = {0, 0, 0}, all[3] = {s->grid.nx, s->grid.ny, s->grid.nz};
        const size_t nrows = (size_t)s->grid.ny * (size_t)s->grid.nz;
        for (int d = 0; d < 3; d++) s->reg_lo[d] = s->reg_hi[d] = 0;
        memset(s->span_lo, 0, nrows * sizeof *s->span_lo);
        memset(s->span_hi, 0, nrows * sizeof *s->span_hi);
        region_scan(s, s->T, zero, all, NULL, NULL, true);
        s->region_known = true;
    }
    const double lo = s->reg_T_lo_C, hi = s->reg_T_hi_C;
    for (int i = 0; i < nc; i++) {
        const abl_source_contrib *c = &contrib[i];
        /* a heating run's heated voxels join once they leave the window (region_heated_after).
         * In a multirate run a coupling entry (source.h heat_G) whose voxel is in the window,
         * and whose T_ref stays in it until the next breakpoint (heat_G_bounded), does not:
         * taken implicitly, the coupling keeps the voxel between its explicit update and
         * T_ref, so the convexity argument covers it (a held layer at body temperature: its
         * coupled shell stays nominal, and the fast box need not reach it); such a voxel
         * outside the variable-property spans takes its heat at the liquid capacity, and
         * outside the fast box from the long step (slow_coupling). Long steps never straddle
         * a breakpoint. */
        const bool cpl_nominal = s->mr_ratio && c->heat_G_bounded && c->heat_G_Tref_lo_C >= lo &&
                                 c->heat_G_Tref_hi_C <= hi;
        if (!s->region_heat_after)
            for (size_t q = 0; q < c->n_heat; q++) {
                const size_t v = c->heat_idx[q];
                const bool cpl = c->heat_G_W_m3K && q >= c->heat_G_first;
                /* in a long step's later short steps the buffers hold nothing current outside
                 * the fast box; a coupling there was judged at the first one and is the long
                 * step's */
                if (cpl && s->mr_active && s->mr_sub > 0 && !in_fast_box(s, v)) continue;
                if (cpl && cpl_nominal && s->T[v] >= lo && s->T[v] <= hi) continue;
                region_include(s, v);
            }
        for (size_t q = 0; q < c->n_pin; q++)
            if (!(c->pin_T_C[q] >= lo && c->pin_T_C[q] <= hi)) region_include(s, c->pin_idx[q]);
    }
    for (size_t q = 0; q < s->n_extra_pin; q++)
        if (!(s->extra_pin_T[q] >= lo && s->extra_pin_T[q] <= hi))
            region_include(s, s->extra_pin_idx[q]);
}

/* After the step: the voxels of this step's variable-property spans (the spans' one-voxel
 * neighbourhood, region_var_spans) that left the window join the spans. rlo..rhi: the box + 1
 * the spans were made for. */
static void region_after_step(abl_sim *s, const int rlo[3], const int rhi[3])
{
    region_scan(s, s->T_new, rlo, rhi, s->vspan_lo, s->vspan_hi, false);
}

/* ---- the active region of heating runs (region_heat_after) ----
 *
 * RFA and MWA sources heat every voxel the current or the field reaches, a quarter to all of
 * the grid, with heat that is negligible outside the zone: joining them all before each step,
 * as a freezing run does, would make the region that large. A heating run's region therefore
 * changes nothing in the step itself (the constant-property sweep of the whole grid with the
 * run's own stencil, the walls in wall_implicit, as without the region); it confines the two
 * per-voxel passes that are the identity on nominal tissue: the enthalpy map (the identity on
 * the liquid window) and the perfusion-shutdown correction (zero without damage, and damage
 * needs 39 C at a monitor pass, above the window). The enthalpy map runs on the variable-
 * property spans (the spans and their neighbours, where tissue can leave the window without
 * being heated), the correction on the spans. A heated voxel outside them that leaves the
 * window is caught by the loop that adds the sources' heat (the shorter step's scaling and
 * the couplings after it keep T between T0 and that value): region_heated_after maps it, once
 * however often it is listed, as phase_map_box does, and adds it to its row's span. The
 * result is the whole-grid path's, bit for bit (suite phase). */

/* Is voxel v in this step's variable-property spans? Rows outside the box + 1 were never in
 * one (the box only grows), so their spans are still empty. */
static inline bool in_var_spans(const abl_sim *s, size_t v)
{
    const size_t r = v / s->grid.sy; /* the row k ny + j */
    const int32_t x = (int32_t)(v - r * s->grid.sy);
    return x >= s->vspan_lo[r] && x < s->vspan_hi[r];
}

/* Append v to a growing index list (*list, *n of *cap; the first allocation holds first_cap),
 * doubling it when full; ABL_ENOMEM naming what the list is for. */
static abl_status index_list_push(size_t **list, size_t *n, size_t *cap, size_t first_cap,
                                  size_t v, const char *what, abl_error *err)
{
    if (*n == *cap) {
        const size_t c = *cap ? 2 * *cap : first_cap;
        size_t *l = realloc(*list, c * sizeof *l);
        if (!l) return abl_fail(err, ABL_ENOMEM, "out of memory (%s)", what);
        *list = l;
        *cap = c;
    }
    (*list)[(*n)++] = v;
    return ABL_OK;
}

static abl_status region_candidate(abl_sim *s, size_t v, abl_error *err)
{
    return index_list_push(&s->reg_left, &s->n_left, &s->cap_left, 256, v, "active region", err);
}

static int cmp_size(const void *a, const void *b)
{
    const size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

static void region_heated_after(abl_sim *s)
{
    const abl_grid *g = &s->grid;
    if (s->n_left > 1) qsort(s->reg_left, s->n_left, sizeof *s->reg_left, cmp_size);
    for (size_t q = 0; q < s->n_left; q++) {
        const size_t v = s->reg_left[q];
        if (q > 0 && v == s->reg_left[q - 1]) continue;
        if (s->phase) {
            const abl_phase_curve *p = &s->phase[s->material[v]];
            const double a = s->T[v], b = s->T_new[v];
            if (p->nk != 0 &&
                !(a >= p->win_lo_C && a <= p->win_hi_C && b >= p->win_lo_C && b <= p->win_hi_C))
                s->T_new[v] = phase_step(p, a, b);
        }
        region_include_ijk(s, (int)(v % g->sy), (int)(v / g->sy % (size_t)g->ny),
                           (int)(v / g->sz));
    }
    s->n_left = 0;
}

/* ---- multirate step of explicit freezing runs (docs/PHASE_CHANGE.md "Multirate step") ----
 *
 * Frozen tissue conducts ~4x better and stores ~2x less heat than liquid tissue, so the explicit
 * step a freezing run needs is several times shorter than what the liquid tissue around the
 * ice needs; yet every voxel of the grid took the short step. The multirate step takes m short
 * steps dt on the fast box F (the active region's box grown by MR_MARGIN voxels) and one long
 * step m dt with the liquid stencil on the rest S of the grid:
 *  - the short steps see the voxels of S next to F at their values at the start of the long
 *    step, T_s(0); through each face between a voxel f of F and s of S they move the heat
 *    dt G (T_s(0) - T_f(k)), k = 0 .. m - 1;
 *  - the long step of s gives it m dt G (T_f(0) - T_s(0)) through that face; the correction
 *    dt G sum_k (T_f(k) - T_f(0)) added afterwards makes it dt G sum_k (T_f(k) - T_s(0)), the
 *    exact opposite of what F received: the exchange conserves heat to rounding (test
 *    "multirate step" in suite phase).
 * Every coefficient stays non-negative (m dt is within the liquid stencil's stability bound and
 * the correction only adds multiples of T_f(k)), so S stays in the liquid window, as the
 * active region requires. F's outer layer must be nominal at the start of every short step
 * whose values enter the exchange: the box grows by at most one voxel per short step
 * (region_after_step scans its one-voxel shell), so multirate_step checks after each short
 * step that the box is still a voxel inside F and otherwise ends the long step there, after
 * k < m short steps, S then taking k dt (the m dt sweep scaled by k / m). multirate_box checks
 * the same at every short step (a safety net: a failure is an error). */
/* The fast box: at the long step's first short step (the sources' voxels have just joined the
 * box) the box grown by MR_MARGIN, clipped to the grid; at every later short step, a check that
 * the box is still a voxel inside it wherever it does not reach the grid's edge (multirate_step
 * ends a long step early before that can fail; the check is the safety net). The margin is
 * two voxels: the box may grow by one on each side within a long step (through liquid tissue,
 * at the liquid tissue's own stability limit, the window rarely spreads faster: in the humerus
 * scenarios no long step ended early), and one voxel of liquid stays between it and S. */
#define MR_MARGIN 2

static abl_status plan_multirate(abl_sim *s, abl_error *err)
{
    const abl_scenario *sc = s->sc;
    const abl_grid *g = &s->grid;
    s->mr_ratio = 0;
    if (!sc->multirate || !s->region_on || s->region_heat_after) return ABL_OK;
    /* sources that read the temperature only at their own voxels (inside the box): during the
     * short steps the buffers hold S at the long step's start in one and stale values in the
     * other, which an RFA potential or an MWA pattern reading the whole grid would see */
    for (int i = 0; i < sc->nsources; i++) {
        const abl_source_cfg *c = &sc->sources[i];
        if (c->type == SRC_MODALITY && strcmp(c->modality->type, "cryo") != 0) return ABL_OK;
    }
    /* the liquid stencil's bound, as plan_stencil's with the liquid tables (s->gface holds the
     * conductivities at 37 C; the region requires k(T) constant) */
    const int nm = s->nmat;
    double dt_u = INFINITY;
    for (int m = 0; m < nm; m++)
        dt_u = fmin(dt_u, 1.0 / (s->inv_rhoc_u[m] * rate_sum(s, s->gface, s->gbound, m)));
    const double ratio = floor(sc->dt_safety * dt_u / s->dt_s + 1e-9);
    if (!(ratio >= 2.0)) return ABL_OK;
    const int mr = ratio > 32.0 ? 32 : (int)ratio;
    s->fast_s = calloc((size_t)nm, sizeof *s->fast_s);
    if (!s->fast_s) return abl_fail(err, ABL_ENOMEM, "out of memory");
    fast_coefs(s, mr * s->dt_s, s->inv_rhoc_u, s->fast_s);
    s->st_s = s->st_u;
    s->st_s.dt_s = mr * s->dt_s;
    s->st_s.fast = s->fast_s;
    s->mr_buf = grid_alloc_field(g, 0.0);
    s->mr_mask = grid_alloc_labels(g, 0);
    if (!plan_own_segments(&s->st_s, &s->seg_s, &s->row_seg_s, &s->gen_s) || !s->mr_buf ||
        !s->mr_mask)
        return abl_fail(err, ABL_ENOMEM, "out of memory for the multirate step's plan");
    s->mr_ratio = mr;
    s->mr_margin = MR_MARGIN;
    return ABL_OK;
}

/* Is the active region's box a voxel inside the fast box wherever the fast box does not reach
 * the grid's edge (so that the fast box's outer layer is outside the region: nominal)? */
static bool multirate_contains(const abl_sim *s)
{
    const int n[3] = {s->grid.nx, s->grid.ny, s->grid.nz};
    if (region_empty(s->reg_lo, s->reg_hi)) return true;
    bool inside = !region_empty(s->mr_lo, s->mr_hi);
    for (int d = 0; d < 3 && inside; d++)
        inside = (s->mr_lo[d] == 0 || s->reg_lo[d] > s->mr_lo[d]) &&
                 (s->mr_hi[d] == n[d] || s->reg_hi[d] < s->mr_hi[d]);
    return inside;
}

static abl_status multirate_box(abl_sim *s, abl_error *err)
{
    const int n[3] = {s->grid.nx, s->grid.ny, s->grid.nz}, w = s->mr_margin;
    const bool empty = region_empty(s->reg_lo, s->reg_hi);
    if (s->mr_sub == 0) {
        int lo[3], hi[3];
        for (int d = 0; d < 3; d++) {
            lo[d] = empty ? 0 : s->reg_lo[d] - w > 0 ? s->reg_lo[d] - w : 0;
            hi[d] = empty ? 0 : s->reg_hi[d] + w < n[d] ? s->reg_hi[d] + w : n[d];
        }
        /* the mask of the fast box (apply_pins' test), updated where the box changed: the
         * old box cleared, the new one set (it only grows, so mostly the new layers) */
        const abl_grid *g = &s->grid;
        for (int pass = 0; pass < 2; pass++) {
            const int *bl = pass ? lo : s->mr_lo, *bh = pass ? hi : s->mr_hi;
            if (region_empty(bl, bh)) continue;
#pragma omp parallel for collapse(2) schedule(static)
            for (int k = bl[2]; k < bh[2]; k++)
                for (int j = bl[1]; j < bh[1]; j++)
                    memset(s->mr_mask + ABL_IDX(g, bl[0], j, k), pass, (size_t)(bh[0] - bl[0]));
        }
        for (int d = 0; d < 3; d++) s->mr_lo[d] = lo[d], s->mr_hi[d] = hi[d];
        return ABL_OK;
    }
    if (multirate_contains(s)) return ABL_OK;
    return abl_fail(err, ABL_EINTERNAL,
                    "%s: multirate step at t = %.3f s: the active region (%d..%d, %d..%d, "
                    "%d..%d) left the fast box (%d..%d, %d..%d, %d..%d) within a long step; "
                    "run with time.multirate: off and report this",
                    s->sc->path, s->t_s, s->reg_lo[0], s->reg_hi[0], s->reg_lo[1], s->reg_hi[1],
                    s->reg_lo[2], s->reg_hi[2], s->mr_lo[0], s->mr_hi[0], s->mr_lo[1],
                    s->mr_hi[1], s->mr_lo[2], s->mr_hi[2]);
}

/* The faces between F and S: for every voxel f on the fast box's surface with a neighbour s
 * outside the box (and inside the grid), the pair (f, s) and the face's axis. A voxel of S
 * touches at most one voxel of F, so the pairs' s are distinct; an f on an edge or a corner of
 * the box is in two or three pairs (its sums are kept per pair). */
static abl_status multirate_pairs(abl_sim *s, abl_error *err)
{
    const abl_grid *g = &s->grid;
    const int n[3] = {g->nx, g->ny, g->nz};
    const ptrdiff_t stride[3] = {1, (ptrdiff_t)g->sy, (ptrdiff_t)g->sz};
    size_t np = 0;
    for (int pass = 0; pass < 2; pass++) {
        np = 0;
        for (int ax = 0; ax < 3; ax++)
            for (int side = 0; side < 2; side++) {
                if (side ? s->mr_hi[ax] >= n[ax] : s->mr_lo[ax] <= 0) continue;
                const int a1 = (ax + 1) % 3, a2 = (ax + 2) % 3;
                const size_t area = (size_t)(s->mr_hi[a1] - s->mr_lo[a1]) *
                                    (size_t)(s->mr_hi[a2] - s->mr_lo[a2]);
                if (!pass) {
                    np += area;
                    continue;
                }
                int ijk[3];
                ijk[ax] = side ? s->mr_hi[ax] - 1 : s->mr_lo[ax];
                for (ijk[a2] = s->mr_lo[a2]; ijk[a2] < s->mr_hi[a2]; ijk[a2]++)
                    for (ijk[a1] = s->mr_lo[a1]; ijk[a1] < s->mr_hi[a1]; ijk[a1]++) {
                        const size_t f = ABL_IDX(g, ijk[0], ijk[1], ijk[2]);
                        s->mr_pair[2 * np] = f;
                        s->mr_pair[2 * np + 1] =
                            (size_t)((ptrdiff_t)f + (side ? stride[ax] : -stride[ax]));
                        s->mr_axis[np] = (uint8_t)ax;
                        np++;
                    }
            }
        if (!pass && np > s->mr_cap) {
            size_t *p = realloc(s->mr_pair, 2 * np * sizeof *p);
            if (p) s->mr_pair = p;
            uint8_t *a = p ? realloc(s->mr_axis, np) : NULL;
            if (a) s->mr_axis = a;
            double *sm = a ? realloc(s->mr_sum, np * sizeof *sm) : NULL;
            if (sm) s->mr_sum = sm;
            if (!p || !a || !sm)
                return abl_fail(err, ABL_ENOMEM, "out of memory (multirate faces)");
            s->mr_cap = np;
        }
    }
    s->mr_npair = np;
    return ABL_OK;
}

static abl_status explicit_step(abl_sim *s, double h, double *work, abl_error *err);
static double wall_implicit(abl_sim *s, const abl_stencil *cst, double dt, const int *rlo,
                            const int *rhi, const abl_sweep_box *scope, bool track);

/* One long step of m short ones (the comment above plan_multirate). All m steps are whole
 * steps of one segment (sim_advance checks), so no step is shortened and no source switches
 * within it. Leaves the result in s->T (the buffers swapped) with the step count and time
 * advanced by the short steps taken, *k_out (m, or fewer where the long step ended early). */
static abl_status multirate_step(abl_sim *s, double *work, int *k_out, abl_error *err)
{
    const int m = s->mr_ratio;
    const double dt = s->dt_s;
    const bool track = s->energy.energy_tracked;
    double *A = s->T, *B = s->T_new, *X = s->mr_buf;
    abl_status st = ABL_OK;
    int k_used = 0;
    s->mr_npair = 0;
    s->mr_ncpl = 0;
    s->mr_active = true;
    for (int k = 0; k < m && !st; k++) {
        /* the box grew into F's outer layer in the last short step: end the long step here
         * (S then steps k dt), before that layer's values enter the exchange */
        if (k >= 1 && !multirate_contains(s)) break;
        s->mr_sub = k;
        s->T = k == 0 ? A : k % 2 ? X : B;
        s->T_new = k % 2 == 0 ? X : B;
        const size_t *pr = s->mr_pair;
        double *sum = s->mr_sum;
        if (k == 1) {
            /* the fast box is known (the first short step set it): its faces; the voxels of S
             * next to it hold T(0) in both short-step buffers; the sums start */
            if ((st = multirate_pairs(s, err))) break;
            pr = s->mr_pair;
            sum = s->mr_sum;
#pragma omp parallel for schedule(static)
            for (size_t q = 0; q < s->mr_npair; q++) {
                X[pr[2 * q + 1]] = B[pr[2 * q + 1]] = A[pr[2 * q + 1]];
                sum[q] = 0.0;
            }
        }
        if (k >= 1) {
            const double *Tk = s->T;
#pragma omp parallel for schedule(static)
            for (size_t q = 0; q < s->mr_npair; q++) sum[q] += Tk[pr[2 * q]] - A[pr[2 * q]];
        }
        prof_start(&s->prof);
        st = explicit_step(s, dt, work, err);
        k_used++;
        s->step++;
        s->seg_steps++;
        s->t_s = s->seg_t0_s + (double)s->seg_steps * dt;
        s->monitor_accum_s += dt;
    }
    s->mr_active = false;
    *k_out = k_used;
    if (k_used < m) s->mr_early_ends++;
    s->T = A;
    s->T_new = B;
    if (st) return st;
    prof_start(&s->prof);
    /* S: one long step from T(0) (A) into B, of k_used dt: the planned m dt sweep scaled by
     * r = k_used / m (forward Euler is linear in the step, as explicit_step shortens a step
     * before a breakpoint); F keeps the short steps' result */
    const double r = (double)k_used / m, Dt = k_used * dt;
    abl_sweep_box rest = sweep_box_all(&s->grid);
    for (int d = 0; d < 3; d++) rest.xlo[d] = s->mr_lo[d], rest.xhi[d] = s->mr_hi[d];
    pennes_explicit_step_region(&s->st_s, A, B, &rest);
    double e_wall = 0.0;
    if (track) {
        /* the heat S's walls' trapezoidal rule took, at the planned long step */
        const int none[3] = {0, 0, 0};
        e_wall = r * wall_implicit(s, &s->st_s, m * dt, none, none, &rest, true);
    }
    if (k_used < m) {
        const uint8_t *mask = s->mr_mask;
#pragma omp parallel for schedule(static)
        for (size_t c = 0; c < s->grid.n; c++)
            if (!mask[c]) B[c] = A[c] + r * (B[c] - A[c]);
    }
    const double nf = region_voxels(s->mr_lo, s->mr_hi), nr = (double)s->grid.n - nf;
    if (k_used % 2) {
        /* the last short step wrote X */
        const abl_grid *g = &s->grid;
        const int *lo = s->mr_lo, *hi = s->mr_hi;
#pragma omp parallel for collapse(2) schedule(static)
        for (int k = lo[2]; k < hi[2]; k++)
            for (int j = lo[1]; j < hi[1]; j++)
                memcpy(B + ABL_IDX(g, lo[0], j, k), X + ABL_IDX(g, lo[0], j, k),
                       (size_t)(hi[0] - lo[0]) * sizeof *B);
    }
    /* the exchange across F's faces: dt G sum_k (T_f(k) - T_f(0)) into s, divided like the
     * rest of its update where s is on a conducting domain face (the trapezoidal wall rule,
     * T1 = (T* + w T0) / (1 + w)); the part w / (1 + w) the wall takes is boundary heat */
    double e_corr = 0.0;
    {
        const int nm = s->nmat;
        const double *gface = s->gface, *gbound = s->gbound, *inv_rhoc_u = s->inv_rhoc_u;
        const uint8_t *mat = s->material;
        const abl_scenario *sc = s->sc;
        const abl_grid *g = &s->grid;
        const size_t *pr = s->mr_pair;
        const double *sum = s->mr_sum;
        const uint8_t *axis = s->mr_axis;
        const double V = grid_voxel_volume_m3(g);
#pragma omp parallel for schedule(static) reduction(+ : e_corr)
        for (size_t q = 0; q < s->mr_npair; q++) {
            const size_t f = pr[2 * q], sv = pr[2 * q + 1];
            const int ms = mat[sv], mf = mat[f], ax = axis[q];
            double dq = dt * inv_rhoc_u[ms] * gface[((size_t)ax * nm + ms) * nm + mf] * sum[q];
            const int sx[3] = {(int)(sv % g->sy), (int)(sv / g->sy % (size_t)g->ny),
                               (int)(sv / g->sz)};
            const int n[3] = {g->nx, g->ny, g->nz};
            double gb = 0.0;
            for (int fc = 0; fc < 6; fc++)
                if ((fc % 2 ? sx[fc / 2] == n[fc / 2] - 1 : sx[fc / 2] == 0) &&
                    sc->bc[fc].type != BC_INSULATED)
                    gb += gbound[(size_t)fc * nm + ms];
            if (gb > 0.0) {
                const double w = 0.5 * Dt * inv_rhoc_u[ms] * gb, kept = dq / (1.0 + w);
                e_corr += (kept - dq) / inv_rhoc_u[ms] * V;
                dq = kept;
            }
            B[sv] += dq;
        }
    }
    prof_mark(&s->prof, ABL_PROF_KERNEL, 24 * nr + 16 * nf * (k_used % 2));
    {
        /* the couplings of voxels outside the fast box (recorded by the first short step):
         * implicit over the long step, T1 = T* + a G (T_ref - T1), a = Dt / C_liquid (S is in
         * the liquid window), as explicit_step takes them; their heat is source heat */
        const double V = grid_voxel_volume_m3(&s->grid);
        double e_cpl = 0.0;
        for (size_t q = 0; q < s->mr_ncpl; q++) {
            const size_t v = s->mr_cpl_idx[q];
            const double ir = s->inv_rhoc_u[s->material[v]], aG = Dt * ir * s->mr_cpl_G[q];
            const double before = B[v];
            B[v] = (before + aG * s->mr_cpl_T[q]) / (1.0 + aG);
            e_cpl += (B[v] - before) * V / ir;
        }
        s->energy.E_sources_J += e_cpl;
    }
    /* voxels held outside the fast box: held at the long step's end, as every step holds its
     * voxels after the sweep (their value at its start was set by the first short step) */
    s->energy.E_sources_J +=
        apply_pins(s, B, s->mr_npin, s->mr_pin_idx, s->mr_pin_T, NULL, PINS_ALL, &st, err);
    prof_mark(&s->prof, ABL_PROF_PINS, 0);
    if (track) {
        /* S's perfusion, metabolic and boundary heat at T(0) over the long step */
        double pm = 0.0, bd = 0.0;
        pennes_energy_rates_var_region(&s->st, s->k_field, s->W_field, A, work, &rest, &pm, &bd);
        s->energy.E_perf_met_J += pm * Dt;
        s->energy.E_boundary_in_J += bd * Dt + e_wall + e_corr;
        prof_mark(&s->prof, ABL_PROF_ENERGY, 24 * nr);
    }
    s->T = B;
    s->T_new = A;
    s->mr_long_steps++;
    return st;
}

/* Domain faces taken semi-implicitly (issue 17). The sweep gives every voxel on a conducting
 * domain face the explicit wall term a G_b (T_w - T0), a = dt / C; the trapezoidal rule
 * a G_b (T_w - (T0 + T1)/2) replaces it: T1 = T* + (a G_b / 2)(T0 - T1), i.e.
 * T1 = (T* + b T0) / (1 + b), b = a G_b / 2, from the explicit T*. Why: the update's
 * coefficient of T0 becomes (1 - a (sum_interior G + W + G_b / 2)) / (1 + b), and G_b / 2 <= gmax
 * on every axis (a fixed wall half a voxel away has G_b = 2 k / h^2, a convective one less), so
 * every coefficient is non-negative at the interior step bound (face_rates leaves G_b out),
 * where the explicit wall term needed a step 1.5x shorter for a voxel in a grid corner; and the
 * wall term is second order in time instead of first. C is the capacity the voxel's state sees:
 * the slope of its enthalpy curve at T0 (phase.h phase_slope; the stencil capacity without
 * phase change), so that the enthalpy step H1 = H0 + C_ref (T1 - T0) takes the wall heat at the
 * mean of the step's temperatures whether or not the active region's liquid stencil swept the
 * voxel. Where the planned sweep's stencil has the voxel's own capacity (no phase change, or
 * the active region's liquid stencil) the sweep applies the rule itself (abl_gen_coef w,
 * walls_in_kernel: no second pass over the surface, whose x faces cost a cache line per voxel);
 * this pass does the rest (the variable-property path's voxels, with k of the voxel; the
 * whole-grid path of phase-change runs) and, when the energy is tracked, counts the heat every
 * correction added, C (T1 - T*) = C b (T0 - T1) for the sweep's ones [J]. Called after the
 * sweep, before source heat, at the planned dt (a shorter step scales the whole update, the
 * caller scales the heat). Blocks of the list in parallel, the heat summed per block in block
 * order: results do not depend on the thread count. */

/* cst: the constant-property stencil that swept the voxels outside rlo..rhi (NULL: the run's
 * own, s->st or with the active region s->st_u); scope: the voxels this step swept (NULL: all;
 * the multirate step's fast box or the rest of the grid). */
static double wall_implicit(abl_sim *s, const abl_stencil *cst, double dt, const int *rlo,
                            const int *rhi, const abl_sweep_box *scope, bool track)
{
    const abl_grid *g = &s->grid;
    /* a heating run's region sweeps with the run's own stencil, as without the region */
    const bool freg = s->region_on && !s->region_heat_after;
    if (!cst) cst = freg ? &s->st_u : &s->st;
    bool need = track || !cst->walls_in_kernel || (s->prop_fn && !s->region_on);
    if (freg && !need) /* box voxels on a domain face take the variable path */
        for (int d = 0; d < 3; d++) {
            const int nd = d == 0 ? g->nx : d == 1 ? g->ny : g->nz;
            if (rlo[d] < rhi[d] && (rlo[d] == 0 || rhi[d] == nd)) need = true;
        }
    if (!need) return 0.0;
    const double V = grid_voxel_volume_m3(g);
    const size_t n = s->n_wall, nb = (n + WALL_BLOCK - 1) / WALL_BLOCK;
    const double *T0 = s->T;
    double *T1 = s->T_new;
#pragma omp parallel for schedule(static)
    for (size_t blk = 0; blk < nb; blk++) {
        double e = 0.0;
        const size_t q1 = (blk + 1) * WALL_BLOCK < n ? (blk + 1) * WALL_BLOCK : n;
        for (size_t q = blk * WALL_BLOCK; q < q1; q++) {
            const size_t c = s->wall_idx[q];
            if (scope && !in_sweep_box(scope, s->wall_ijk + 3 * q)) continue;
            const int m = s->material[c];
            bool var = s->prop_fn != NULL;
            if (freg) {
                /* the variable-property sweep's voxels: the spans of the box + 1's rows */
                const int32_t *x = s->wall_ijk + 3 * q;
                var = x[1] >= rlo[1] && x[1] < rhi[1] && x[2] >= rlo[2] && x[2] < rhi[2];
                if (var) {
                    const size_t r = (size_t)x[2] * (size_t)g->ny + (size_t)x[1];
                    var = x[0] >= s->vspan_lo[r] && x[0] < s->vspan_hi[r];
                }
            }
            if (!var && cst->walls_in_kernel) {
                /* corrected by the sweep: its heat only */
                if (track) {
                    const double ir = cst->inv_rhoc[m], b = 0.5 * dt * s->wall_G[q] * ir;
                    e += b * (T0[c] - T1[c]) / ir;
                }
                continue;
            }
            double ir, G;
            if (var) {
                const unsigned mask = s->wall_faces[q];
                ir = s->inv_rhoc[m];
                G = 0.0;
                for (int f = 0; f < 6; f++)
                    if (mask & (1u << f))
                        G += abl_boundary_conductance(s->st.bc_type[f], s->st.bc_h_W_m2K[f],
                                                      s->k_field[c], g->h_m[f / 2]);
            } else {
                ir = cst->inv_rhoc[m];
                G = s->wall_G[q];
            }
            const double b = s->phase ? 0.5 * dt * G / phase_slope(&s->phase[m], T0[c])
                                      : 0.5 * dt * G * ir;
            if (!(b > 0.0)) continue;
            const double before = T1[c];
            T1[c] = (before + b * T0[c]) / (1.0 + b);
            e += (T1[c] - before) / ir;
        }
        s->wall_eblock[blk] = e;
    }
    double e = 0.0;
    for (size_t blk = 0; blk < nb; blk++) e += s->wall_eblock[blk];
    return e * V;
}

/* Is v, just heated, a candidate of the heating run's region (region_heated_after)? Only a
 * voxel that crossed the window's edge in this step can be one: every voxel outside the spans
 * starts the step inside the window. */
static inline bool heated_candidate(const abl_sim *s, size_t v)
{
    const double wlo = s->reg_T_lo_C, whi = s->reg_T_hi_C;
    return !(s->T_new[v] >= wlo && s->T_new[v] <= whi) && s->T[v] >= wlo && s->T[v] <= whi &&
           !in_var_spans(s, v);
}

/* Entries per block of the parallel part of add_source_heat: its energy is summed per block
 * and the blocks in order, so the sum does not depend on the thread count. */
#define HEAT_BLOCK 4096

/* Add one source's heat to T_new: dt_plan q / (rho c) per entry (the planned step; a shorter
 * one is scaled afterwards), its energy q V dt into *e_src. The prefix of distinct
 * voxels (source.h heat_distinct: a Joule or SAR list, up to the whole grid) is added in
 * parallel, the rest in list order. cand: collect the heating region's candidates, in list
 * order. Bitwise the serial loop's fields; the energy's summation order is by block. */
/* A voxel a multirate long step's short steps leave to the long step: outside the fast box
 * (only coupling entries in the window can be there, region_before_sweep). */
static inline bool slow_coupling(const abl_sim *s, size_t v)
{
    return s->mr_active && !in_fast_box(s, v);
}

/* 1 / capacity for source heat added to T_new at voxel v: C_ref, which the phase map turns into
 * the enthalpy's own step, except where a freezing run's active region sweeps v with the liquid
 * stencil (outside this step's variable-property spans: no phase map), the liquid capacity. */
static inline double heat_inv_rhoc(const abl_sim *s, size_t v)
{
    const int m = s->material[v];
    return s->region_on && !s->region_heat_after && !in_var_spans(s, v) ? s->inv_rhoc_u[m]
                                                                        : s->inv_rhoc[m];
}

static abl_status add_source_heat(abl_sim *s, const abl_source_contrib *c, double dt_plan,
                                  double V, double dt, bool cand, double *e_src, abl_error *err)
{
    size_t nd = c->heat_distinct <= c->n_heat ? c->heat_distinct : c->n_heat;
    /* never a coupling entry in the parallel part (they may repeat a voxel): source.h */
    if (c->heat_G_W_m3K && nd > c->heat_G_first) nd = c->heat_G_first;
    const size_t *idx = c->heat_idx;
    const double *q = c->heat_q_W_m3;
    double *Tn = s->T_new;
    const double *ir = s->inv_rhoc;
    const uint8_t *mat = s->material;
    abl_status st;
    if (nd > 0) {
        const size_t nb = (nd + HEAT_BLOCK - 1) / HEAT_BLOCK;
        if (nb > s->heat_nblock) {
            double *e = realloc(s->heat_eblock, nb * sizeof *e);
            uint8_t *f = realloc(s->heat_fblock, nb * sizeof *f);
            if (e) s->heat_eblock = e;
            if (f) s->heat_fblock = f;
            if (!e || !f) return abl_fail(err, ABL_ENOMEM, "out of memory (source heat)");
            s->heat_nblock = nb;
        }
        double *eb = s->heat_eblock;
        uint8_t *fb = s->heat_fblock;
#pragma omp parallel for schedule(static)
        for (size_t b = 0; b < nb; b++) {
            const size_t q0 = b * HEAT_BLOCK, q1 = q0 + HEAT_BLOCK < nd ? q0 + HEAT_BLOCK : nd;
            double e = 0.0;
            uint8_t any = 0;
            for (size_t k = q0; k < q1; k++) {
                const size_t v = idx[k];
                Tn[v] += dt_plan * ir[mat[v]] * q[k];
                e += q[k] * V * dt;
                if (cand) any |= heated_candidate(s, v);
            }
            eb[b] = e;
            fb[b] = any;
        }
        for (size_t b = 0; b < nb; b++) {
            *e_src += eb[b];
            if (!fb[b]) continue;
            const size_t q0 = b * HEAT_BLOCK, q1 = q0 + HEAT_BLOCK < nd ? q0 + HEAT_BLOCK : nd;
            for (size_t k = q0; k < q1; k++)
                if (heated_candidate(s, idx[k]) && (st = region_candidate(s, idx[k], err)))
                    return st;
        }
    }
    for (size_t k = nd; k < c->n_heat; k++) {
        const size_t v = idx[k];
        if (slow_coupling(s, v)) continue; /* the long step's (multirate_step) */
        Tn[v] += dt_plan * heat_inv_rhoc(s, v) * q[k];
        *e_src += q[k] * V * dt;
        if (cand && heated_candidate(s, v) && (st = region_candidate(s, v, err))) return st;
    }
    return ABL_OK;
}

static abl_status mr_cpl_push(abl_sim *s, size_t v, double G, double T_ref, abl_error *err)
{
    if (s->mr_ncpl == s->mr_cap_cpl) {
        const size_t cap = s->mr_cap_cpl ? 2 * s->mr_cap_cpl : 1024;
        size_t *pi = realloc(s->mr_cpl_idx, cap * sizeof *pi);
        if (pi) s->mr_cpl_idx = pi;
        double *pg = realloc(s->mr_cpl_G, cap * sizeof *pg);
        if (pg) s->mr_cpl_G = pg;
        double *pt = realloc(s->mr_cpl_T, cap * sizeof *pt);
        if (pt) s->mr_cpl_T = pt;
        if (!pi || !pg || !pt)
            return abl_fail(err, ABL_ENOMEM, "out of memory (couplings of the long step)");
        s->mr_cap_cpl = cap;
    }
    s->mr_cpl_idx[s->mr_ncpl] = v;
    s->mr_cpl_G[s->mr_ncpl] = G;
    s->mr_cpl_T[s->mr_ncpl++] = T_ref;
    return ABL_OK;
}

/* One forward-Euler step T -> T_new of length h <= dt (pins before and after the sweep). The
 * kernels' coefficients are planned for dt; forward Euler is linear in the step, so a shorter
 * step before a breakpoint is T + (h/dt)(T_dt - T), taken before the phase map and the pins. */
static abl_status explicit_step(abl_sim *s, double h, double *work, abl_error *err)
{
    const double V = grid_voxel_volume_m3(&s->grid);
    const double dt_plan = s->dt_s;
    const double r = h == dt_plan ? 1.0 : h / dt_plan;
    const double dt = h;
    const bool track = s->energy.energy_tracked;
    abl_status st;
    abl_field_view view = {&s->grid, s->material, s->T, s->t_s, h, false, s->t_s, h, &s->prof};
    abl_source_contrib contrib[64];
    const int nc = s->nsources;
    for (int i = 0; i < nc; i++)
        if ((st = s->sources[i]->ops->update(s->sources[i], &view, &contrib[i], err))) return st;
    if ((st = check_overlaps(s, contrib, contrib, nc, err))) return st;
    abl_profile *pf = &s->prof;
    const double nv = (double)s->grid.n;
    prof_mark(pf, ABL_PROF_SOURCES, 0);
    /* pins hold during the step: set before the sweep, and again after it */
    double e_src = 0.0;
    /* a multirate long step's first short step holds every voxel in the state it starts from
     * (the rest of the grid's long step reads it too); the later ones only the fast box's */
    const int before = s->mr_active && s->mr_sub > 0 ? PINS_FAST : PINS_ALL;
    st = ABL_OK;
    for (int i = 0; i < nc; i++)
        e_src += apply_pins(s, s->T, contrib[i].n_pin, contrib[i].pin_idx, contrib[i].pin_T_C,
                            contrib[i].pin_frac, before, &st, err);
    e_src += apply_pins(s, s->T, s->n_extra_pin, s->extra_pin_idx, s->extra_pin_T, NULL, before,
                        &st, err);
    prof_mark(pf, ABL_PROF_PINS, 0);
    double pm = 0.0, bd = 0.0;
    int rlo[3] = {0, 0, 0}, rhi[3] = {0, 0, 0}; /* active region: box + 1, whose rows'
                                                   * variable-property spans (vspan) take
                                                   * the variable path and the map */
    double nb = 0.0;                              /* voxels in those spans */
    abl_sweep_box fbox = {.lo = {0, 0, 0}};
    if (s->region_on && s->region_heat_after) {
        /* a heating run's region: the step as without it, the perfusion correction on the
         * spans (see "the active region of heating runs") */
        region_before_sweep(s, contrib, nc);
        region_halo(s, rlo, rhi);
        nb = region_empty(rlo, rhi) ? 0.0 : region_var_spans(s, rlo, rhi);
        if (track) {
            pennes_energy_rates(&s->st, s->T, work, &pm, &bd);
            prof_mark(pf, ABL_PROF_ENERGY, 8 * nv);
        }
        pennes_explicit_step(&s->st, s->T, s->T_new);
        prof_mark(pf, ABL_PROF_KERNEL, 24 * nv);
        if (s->sc->perfusion_shutdown && !region_empty(s->reg_lo, s->reg_hi)) {
            pm += perfusion_shutdown_correct_rows(&s->st, s->omega, s->T_max,
                                                  s->sc->perfusion_stop_C, s->T, s->T_new, work,
                                                  s->reg_lo, s->reg_hi, s->span_lo,
                                                  s->span_hi);
            prof_mark(pf, ABL_PROF_PROPERTIES, 0);
        }
    } else if (s->region_on) {
        region_before_sweep(s, contrib, nc);
        if (s->mr_active) {
            if ((st = multirate_box(s, err))) return st;
            for (int d = 0; d < 3; d++) fbox.lo[d] = s->mr_lo[d], fbox.hi[d] = s->mr_hi[d];
        }
        if (!s->region_props_ready) {
            view.T_C = s->T;
            if ((st = s->prop_fn(s->prop_ctx, &view, s->k_field, s->W_field, err))) return st;
            s->region_props_ready = true;
        } else {
            linear_k_box(s, s->T, s->reg_lo, s->reg_hi, s->span_lo, s->span_hi, s->k_field,
                         s->W_field);
        }
        prof_mark(pf, ABL_PROF_PROPERTIES, 0);
        /* the multirate step's short steps sweep only the fast box */
        const abl_sweep_box swept = s->mr_active ? fbox : sweep_box_all(&s->grid);
        const double ns = s->mr_active ? region_voxels(fbox.lo, fbox.hi) : nv;
        if (track) {
            pennes_energy_rates_var_region(&s->st, s->k_field, s->W_field, s->T, work, &swept,
                                           &pm, &bd);
            prof_mark(pf, ABL_PROF_ENERGY, 24 * ns);
        }
        /* the constant-property sweep leaves out the rows' variable-property spans, which the
         * variable-property sweep writes */
        region_halo(s, rlo, rhi);
        nb = region_empty(rlo, rhi) ? 0.0 : region_var_spans(s, rlo, rhi);
        abl_sweep_box csw = swept;
        for (int d = 0; d < 3; d++) csw.xlo[d] = rlo[d], csw.xhi[d] = rhi[d];
        csw.xrow_lo = s->vspan_lo, csw.xrow_hi = s->vspan_hi;
        pennes_explicit_step_region(&s->st_u, s->T, s->T_new, &csw);
        if (!region_empty(rlo, rhi))
            pennes_explicit_step_var_box(&s->st, s->k_field, s->W_field, s->T, s->T_new, rlo,
                                         rhi, s->vspan_lo, s->vspan_hi);
        prof_mark(pf, ABL_PROF_KERNEL, 24 * (ns - nb) + 40 * nb);
    } else if (s->prop_fn) {
        view.T_C = s->T; /* after the pins */
        if ((st = s->prop_fn(s->prop_ctx, &view, s->k_field, s->W_field, err))) return st;
        prof_mark(pf, ABL_PROF_PROPERTIES, 0);
        if (track) {
            pennes_energy_rates_var(&s->st, s->k_field, s->W_field, s->T, work, &pm, &bd);
            prof_mark(pf, ABL_PROF_ENERGY, 24 * nv); /* T, k, W read */
        }
        pennes_explicit_step_var(&s->st, s->k_field, s->W_field, s->T, s->T_new);
        /* T, k, W read; T_new written (+ write-allocate) */
        prof_mark(pf, ABL_PROF_KERNEL, 40 * nv);
    } else {
        if (track) {
            pennes_energy_rates(&s->st, s->T, work, &pm, &bd);
            prof_mark(pf, ABL_PROF_ENERGY, 8 * nv);
        }
        pennes_explicit_step(&s->st, s->T, s->T_new);
        prof_mark(pf, ABL_PROF_KERNEL, 24 * nv); /* T read, T_new written + write-allocate */
        if (s->sc->perfusion_shutdown) {
            pm += perfusion_shutdown_correct(&s->st, s->omega, s->T_max, s->sc->perfusion_stop_C,
                                             s->T, s->T_new, work);
            prof_mark(pf, ABL_PROF_PROPERTIES, 0);
        }
    }
    {
        /* the domain faces' trapezoidal correction (wall_implicit), at the planned step: a
         * shorter step scales its heat like every other term */
        const double e_wall =
            wall_implicit(s, NULL, dt_plan, rlo, rhi, s->mr_active ? &fbox : NULL, track);
        prof_mark(pf, ABL_PROF_PINS, 0);
        if (track) s->energy.E_boundary_in_J += r * e_wall;
    }
    s->energy.E_perf_met_J += pm * dt;
    s->energy.E_boundary_in_J += bd * dt;
    /* a heating run's region: heated voxels now outside the window that its spans do not
     * hold (region_heated_after) */
    const bool cand = s->region_on && s->region_heat_after;
    for (int i = 0; i < nc; i++)
        if ((st = add_source_heat(s, &contrib[i], dt_plan, V, dt, cand, &e_src, err))) return st;
    if (r != 1.0) {
        double *Tn = s->T_new;
        const double *T0 = s->T;
#pragma omp parallel for schedule(static)
        for (size_t c = 0; c < s->grid.n; c++) Tn[c] = T0[c] + r * (Tn[c] - T0[c]);
    }
    /* Coupling heat q = G (T_ref - T0) of a voxel (source.h heat_G_W_m3K) taken implicitly:
     * T1 = T* + a G (T_ref - T1), a = h / C_ref, i.e. T1 = (T*_explicit + a G T0) / (1 + a G)
     * from the explicit T*_explicit that already holds a G (T_ref - T0). Every coefficient of
     * the update stays non-negative at the material's own step limit whatever G is, and T1
     * cannot pass T_ref. The heat the correction removes is counted (C_ref (T1 - T*) V). */
    for (int i = 0; i < nc; i++) {
        const abl_source_contrib *c = &contrib[i];
        if (!c->heat_G_W_m3K) continue;
        for (size_t q = c->heat_G_first; q < c->n_heat; q++) {
            const double G = c->heat_G_W_m3K[q - c->heat_G_first];
            if (!(G > 0.0)) continue;
            const size_t v = c->heat_idx[q];
            if (slow_coupling(s, v)) {
                /* the long step takes it from the values at its start */
                if (s->mr_sub == 0 &&
                    (st = mr_cpl_push(s, v, G, s->T[v] + c->heat_q_W_m3[q] / G, err)))
                    return st;
                continue;
            }
            const double ir = heat_inv_rhoc(s, v), aG = h * ir * G;
            const double before = s->T_new[v];
            s->T_new[v] = (before + aG * s->T[v]) / (1.0 + aG);
            e_src += (s->T_new[v] - before) * V / ir;
        }
    }
    prof_mark(pf, ABL_PROF_PINS, 0);
    /* phase change: the step advanced H by C_ref (T_new - T); read T back from H */
    if (cand) {
        region_heated_after(s);
        prof_mark(pf, ABL_PROF_PHASE, 0);
    }
    if (s->region_on) {
        if (s->phase && !region_empty(rlo, rhi)) {
            phase_map_box(&s->grid, rlo, rhi, s->vspan_lo, s->vspan_hi, s->material, s->phase,
                          s->T, s->T_new);
            prof_mark(pf, ABL_PROF_PHASE, 25 * nb);
        }
    } else if (s->phase) {
        phase_map(s->grid.n, s->material, s->phase, s->T, s->T_new, NULL);
        prof_mark(pf, ABL_PROF_PHASE, 25 * nv); /* material, T read; T_new read and written */
    }
    /* in a long step, the held voxels outside the fast box are kept at every short step: the
     * last one's values are held at the long step's end (which short step is last is known
     * only then) */
    const int after = !s->mr_active ? PINS_ALL : PINS_FAST_KEEP_REST;
    if (after == PINS_FAST_KEEP_REST) s->mr_npin = 0;
    for (int i = 0; i < nc; i++) {
        e_src += apply_pins(s, s->T_new, contrib[i].n_pin, contrib[i].pin_idx,
                            contrib[i].pin_T_C, contrib[i].pin_frac, after, &st, err);
        mark_applicator(s, i, &contrib[i]);
    }
    e_src += apply_pins(s, s->T_new, s->n_extra_pin, s->extra_pin_idx, s->extra_pin_T, NULL,
                        after, &st, err);
    if (st) return st;
    s->energy.E_sources_J += e_src;
    prof_mark(pf, ABL_PROF_PINS, 0);
    if (s->region_on) {
        region_after_step(s, rlo, rhi);
        prof_mark(pf, ABL_PROF_PHASE, 0);
    }
    return ABL_OK;
}

static abl_status fixed_list_push(abl_sim *s, size_t c, abl_error *err)
{
    return index_list_push(&s->fixed_list, &s->n_fixed, &s->cap_fixed, 1024, c, "held voxels",
                           err);
}

static abl_status record_solve(abl_sim *s, double t_end, int iters, double resid, abl_error *err)
{
    if (s->n_cg == s->cap_cg) {
        size_t cap = s->cap_cg ? 2 * s->cap_cg : 256;
        int *it = realloc(s->cg_iters, cap * sizeof *it);
        if (!it) return abl_fail(err, ABL_ENOMEM, "out of memory (solver log)");
        s->cg_iters = it;
        double *r = realloc(s->cg_resid, cap * sizeof *r);
        if (!r) return abl_fail(err, ABL_ENOMEM, "out of memory (solver log)");
        s->cg_resid = r;
        double *t = realloc(s->cg_time_s, cap * sizeof *t);
        if (!t) return abl_fail(err, ABL_ENOMEM, "out of memory (solver log)");
        s->cg_time_s = t;
        s->cap_cg = cap;
    }
    s->cg_iters[s->n_cg] = iters;
    s->cg_resid[s->n_cg] = resid;
    s->cg_time_s[s->n_cg] = t_end;
    s->n_cg++;
    return ABL_OK;
}

/* One theta-scheme step of length h from t0 (theta = 1 backward Euler, 1/2 Crank-Nicolson):
 *   (C/h - theta A) T1 = C/h T0 + (1 - theta)(A T0 + f) + theta f + q(t0 + theta h),
 * pinned voxels held at their value for t0 + h. Properties are lagged (taken at T0). Energy:
 * the theta-weighted rates of both ends, and for pinned voxels the heat the pin supplied beyond
 * what the discrete equation would have done there. */
static abl_status implicit_substep(abl_sim *s, double t0, double h, double theta, double *work,
                                   abl_error *err)
{
    const abl_grid *g = &s->grid;
    const double V = grid_voxel_volume_m3(g);
    const bool track = s->energy.energy_tracked;
    const int nc = s->nsources;
    abl_status st;
    abl_field_view view = {g, s->material, s->T, t0, h, false, t0, h, &s->prof};
    const double *kv = NULL, *Wv = NULL;
    if (s->prop_fn) {
        if ((st = s->prop_fn(s->prop_ctx, &view, s->k_field, s->W_field, err))) return st;
        prof_mark(&s->prof, ABL_PROF_PROPERTIES, 0);
        kv = s->k_field;
        Wv = s->W_field;
    }
    double pm0 = 0.0, bd0 = 0.0;
    if (track) {
        if (kv) pennes_energy_rates_var(&s->st, kv, Wv, s->T, work, &pm0, &bd0);
        else pennes_energy_rates(&s->st, s->T, work, &pm0, &bd0);
        prof_mark(&s->prof, ABL_PROF_ENERGY, 0);
    }
    implicit_rhs(&s->st, kv, Wv, 1.0 / h, theta, s->T, s->rhs);
    prof_mark(&s->prof, ABL_PROF_SOLVER, 0);

    /* heat at t0 + theta h (midpoint for Crank-Nicolson) */
    abl_source_contrib contrib[64], heat[64];
    view.t_s = t0 + theta * h;
    double e_src = 0.0;
    size_t nheat_all = 0, ncpl = 0;
    for (int i = 0; i < nc; i++) {
        if ((st = s->sources[i]->ops->update(s->sources[i], &view, &contrib[i], err))) return st;
        /* the heat lists, copied: the pins-only update below may reuse the sources' buffers */
        if (nc > 1 && contrib[i].n_heat) {
            if (nheat_all + contrib[i].n_heat > s->cap_heat_seen) {
                size_t cap = 2 * (nheat_all + contrib[i].n_heat);
                size_t *p = realloc(s->heat_seen, cap * sizeof *p);
                if (!p) return abl_fail(err, ABL_ENOMEM, "out of memory");
                s->heat_seen = p;
                s->cap_heat_seen = cap;
            }
            memcpy(s->heat_seen + nheat_all, contrib[i].heat_idx,
                   contrib[i].n_heat * sizeof(size_t));
        }
        /* (heat_G_W_m3K and heat_G_first only tell check_overlaps where the couplings start) */
        heat[i] = (abl_source_contrib){.n_heat = nc > 1 ? contrib[i].n_heat : 0,
                                       .heat_G_W_m3K = contrib[i].heat_G_W_m3K,
                                       .heat_G_first = contrib[i].heat_G_first};
        nheat_all += heat[i].n_heat;
        for (size_t q = 0; q < contrib[i].n_heat; q++) {
            size_t v = contrib[i].heat_idx[q];
            s->rhs[v] += contrib[i].heat_q_W_m3[q];
            if (track) s->qfield[v] += contrib[i].heat_q_W_m3[q];
            e_src += contrib[i].heat_q_W_m3[q] * V * h;
        }
        /* coupling heat G (T_ref - T0) (source.h heat_G_W_m3K) taken implicitly, as
         * G (T_ref - T_theta) with T_theta = theta T1 + (1 - theta) T0: theta G on the
         * operator's diagonal, theta G T0 on the right side (the explicit step's rule, in the
         * solve: a coupled voxel cannot pass T_ref at any dt) */
        if (contrib[i].heat_G_W_m3K)
            for (size_t q = contrib[i].heat_G_first; q < contrib[i].n_heat; q++) {
                const double G = contrib[i].heat_G_W_m3K[q - contrib[i].heat_G_first];
                if (!(G > 0.0)) continue;
                if (ncpl == s->cap_cpl) {
                    const size_t cap = 2 * s->cap_cpl + 64;
                    size_t *pi = realloc(s->cpl_idx, cap * sizeof *pi);
                    if (pi) s->cpl_idx = pi;
                    double *pg = pi ? realloc(s->cpl_G, cap * sizeof *pg) : NULL;
                    if (!pg) return abl_fail(err, ABL_ENOMEM, "out of memory");
                    s->cpl_G = pg;
                    s->cap_cpl = cap;
                }
                const size_t v = contrib[i].heat_idx[q];
                s->cpl_idx[ncpl] = v;
                s->cpl_G[ncpl++] = G;
                s->rhs[v] += theta * G * s->T[v];
            }
    }
    implicit_set_diagonal(s->im, s->cpl_idx, s->cpl_G, ncpl);
    /* pins at t0 + h; the initial guess is T0 */
    memcpy(s->T_new, s->T, g->n * sizeof(double));
    view.t_s = t0 + h;
    view.pins_only = true;
    s->n_fixed = 0;
    for (int i = 0; i <= nc; i++) {
        size_t np;
        const size_t *idx;
        const double *val, *frac = NULL;
        if (i < nc) {
            if ((st = s->sources[i]->ops->update(s->sources[i], &view, &contrib[i], err)))
                return st;
            mark_applicator(s, i, &contrib[i]);
            np = contrib[i].n_pin;
            idx = contrib[i].pin_idx;
            val = contrib[i].pin_T_C;
            frac = contrib[i].pin_frac;
        } else {
            np = s->n_extra_pin;
            idx = s->extra_pin_idx;
            val = s->extra_pin_T;
        }
        for (size_t q = 0; q < np; q++) {
            if (!pin_held(frac, q)) continue; /* less than half held: tissue */
            s->T_new[idx[q]] = val[q];
            if (!s->fixed[idx[q]]) {
                s->fixed[idx[q]] = 1;
                if ((st = fixed_list_push(s, idx[q], err))) return st;
            }
        }
    }
    if (nc > 1) {
        size_t off = 0;
        for (int i = 0; i < nc; i++) {
            heat[i].heat_idx = s->heat_seen ? s->heat_seen + off : NULL;
            off += heat[i].n_heat;
        }
        if ((st = check_overlaps(s, contrib, heat, nc, err))) return st;
    }
    prof_mark(&s->prof, ABL_PROF_SOURCES, 0); /* both source updates, pins, overlap check */
    int iters;
    double resid;
    if (s->phase) memcpy(s->rhs0, s->rhs, g->n * sizeof(double));
    for (int it = 0;; it++) {
        /* the phase iteration's inner solves: the accuracy of the step's first (implicit.h) */
        implicit_same_step(s->im, it > 0);
        st = implicit_solve(s->im, kv, Wv, 1.0 / h, theta, s->rhs, s->fixed, s->T_new, &iters,
                            &resid, err);
        if (st) {
            char msg[ABL_ERRMSG_LEN];
            snprintf(msg, sizeof msg, "%s", err->msg);
            return abl_fail(err, st, "%s: t = %.3f s: %s", s->sc->path, t0 + h, msg);
        }
        if ((st = record_solve(s, t0 + h, iters, resid, err))) return st;
        if (!s->phase) break;
        /* Phase change: fixed-point iteration of Jaeger & Kacur (1991, RAIRO M2AN 25:735) on
         *   (C_ref/h - theta A) T~ = rhs0 + C_ref/h (T_k - T0) - (H(T_k) - H(T0))/h,
         *   T_{k+1} = T(H(T_k) + C_ref (T~ - T_k)),
         * T_0 = T0 (the first pass is Chernoff's step). Whatever the count, H(T_{k+1}) - H(T0) =
         * h (theta A T~ + ...) holds exactly, so the energy bookkeeping below, taken at T~,
         * closes; iterating makes it the implicit enthalpy step (the relaxation lags latent heat
         * by one step otherwise: 10 % front error at dt = 0.5 s in the Neumann test). */
        const double invh = 1.0 / h;
        double change = 0.0;
        const uint8_t *fx = s->fixed;
        const abl_phase_curve *ph = s->phase;
        const uint8_t *mat = s->material;
        const double *T0 = s->T, *Tt = s->T_new;
        double *Tk = s->T_iter, *rhs = s->rhs;
        const double *rhs0 = s->rhs0;
#pragma omp parallel for schedule(static) reduction(max : change)
        for (size_t c = 0; c < g->n; c++) {
            if (fx[c]) continue;
            const abl_phase_curve *p = &ph[mat[c]];
            const double Tprev = it == 0 ? T0[c] : Tk[c];
            const double Tnext = phase_step(p, Tprev, Tt[c]);
            change = fmax(change, fabs(Tnext - Tprev));
            Tk[c] = Tnext;
            rhs[c] = rhs0[c] + invh * (p->C_ref * (Tnext - T0[c]) -
                                       (phase_H(p, Tnext) - phase_H(p, T0[c])));
        }
        /* max is exact in any order: the iteration count does not depend on the threads */
        if (change <= s->sc->phase_tol_C || it + 1 >= s->sc->phase_max_iterations) break;
    }
    /* the coupling heat delivered: G (T_ref - T0) counted above, less theta G (T1 - T0) */
    for (size_t q = 0; q < ncpl; q++) {
        const size_t v = s->cpl_idx[q];
        /* a held voxel (another source's hold): its balance below counts what the hold took,
         * with the heat in qfield; the theta term is not heat it received */
        if (s->fixed[v]) continue;
        e_src -= theta * s->cpl_G[q] * (s->T_new[v] - s->T[v]) * V * h;
    }
    implicit_set_diagonal(s->im, NULL, NULL, 0);

    if (track) {
        double pm1, bd1;
        if (kv) pennes_energy_rates_var(&s->st, kv, Wv, s->T_new, work, &pm1, &bd1);
        else pennes_energy_rates(&s->st, s->T_new, work, &pm1, &bd1);
        s->energy.E_perf_met_J += h * (theta * pm1 + (1.0 - theta) * pm0);
        s->energy.E_boundary_in_J += h * (theta * bd1 + (1.0 - theta) * bd0);
        for (size_t q = 0; q < s->n_fixed; q++) {
            const size_t c = s->fixed_list[q];
            const double D = h * V *
                             (theta * pennes_op_at(&s->st, kv, Wv, s->T_new, c) +
                              (1.0 - theta) * pennes_op_at(&s->st, kv, Wv, s->T, c) +
                              s->qfield[c]);
            e_src += (voxel_H(s, c, s->T_new[c]) - voxel_H(s, c, s->T[c])) * V - D;
        }
        memset(s->qfield, 0, g->n * sizeof(double));
    }
    s->energy.E_sources_J += e_src;
    /* phase change: T1 = T_{k+1} of the last pass of the iteration above (the energy rates
     * were taken at T~); held voxels keep their value */
    if (s->phase) {
        const uint8_t *fx = s->fixed;
        const double *Tk = s->T_iter;
        double *Tt = s->T_new;
#pragma omp parallel for schedule(static)
        for (size_t c = 0; c < g->n; c++)
            if (!fx[c]) Tt[c] = Tk[c];
    }
    for (size_t q = 0; q < s->n_fixed; q++) s->fixed[s->fixed_list[q]] = 0;
    s->n_fixed = 0;
    /* leave the result in T_new like the explicit step; the caller swaps */
    return ABL_OK;
}

/* Does the step starting at t0 follow a source switch closely enough to need Rannacher's
 * backward-Euler start-up (Crank-Nicolson rings after a jump otherwise)? */
static bool needs_startup(const abl_sim *s, double t0)
{
    const double window = s->sc->rannacher_steps * s->dt_s;
    for (size_t i = 0; i < s->n_jumps; i++)
        if (s->jump_s[i] <= t0 + 1e-9 * s->dt_s && t0 < s->jump_s[i] + window - 1e-9 * s->dt_s)
            return true;
    return false;
}

static abl_status implicit_step(abl_sim *s, double dt, double *work, abl_error *err)
{
    const double t0 = s->t_s;
    if (s->sc->scheme == SCHEME_IMPLICIT) return implicit_substep(s, t0, dt, 1.0, work, err);
    if (!needs_startup(s, t0)) return implicit_substep(s, t0, dt, 0.5, work, err);
    /* two backward-Euler half steps (Rannacher 1984, Numer. Math. 43:309) */
    abl_status st = implicit_substep(s, t0, 0.5 * dt, 1.0, work, err);
    if (st) return st;
    double *tmp = s->T;
    s->T = s->T_new;
    s->T_new = tmp;
    st = implicit_substep(s, t0 + 0.5 * dt, 0.5 * dt, 1.0, work, err);
    return st;
}

/* Does the step that starts after n - 1 steps of dt from t0 land on the breakpoint b? (The
 * step before a breakpoint is shortened; one within 1e-9 dt of a whole step counts as whole.) */
static bool lands(double t0, double b, double dt, long n)
{
    return b - (t0 + (double)(n - 1) * dt) <= dt * (1.0 + 1e-9);
}

/* Steps from t0 to the breakpoint b: the smallest n >= 1 that lands. */
static long segment_steps(double t0, double b, double dt)
{
    const double est = ceil((b - t0) / dt - 1e-9);
    long n = est < 1 ? 1 : (long)est;
    while (n > 1 && lands(t0, b, dt, n - 1)) n--;
    while (!lands(t0, b, dt, n)) n++;
    return n;
}

/* The next breakpoint after the current segment's start. */
static size_t next_breakpoint(const abl_sim *s)
{
    size_t lo = 0, hi = s->n_bp; /* first bp_s[i] > seg_t0_s */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->bp_s[mid] > s->seg_t0_s) hi = mid;
        else lo = mid + 1;
    }
    return lo < s->n_bp ? lo : s->n_bp - 1;
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Breakpoints of the run (sim.h) and the number of steps they imply. Every source's on/off
 * times and schedule points, each modality source's own breakpoints (source.h), every
 * snapshot time and the end time; points closer than 1e-6 dt are merged (no sliver steps). */
static abl_status plan_time(abl_sim *s, abl_error *err)
{
    const abl_scenario *sc = s->sc;
    const double T = sc->duration_s, dt = s->dt_s;
    size_t cap = 1;
    for (int i = 0; i < sc->nsources; i++) {
        cap += 2 + (size_t)(sc->sources[i].schedule.n > 0 ? sc->sources[i].schedule.n : 0);
        const abl_source *src = s->sources ? s->sources[i] : NULL;
        if (src && src->ops->breakpoints) {
            int nb = src->ops->breakpoints(src, NULL, 0);
            if (nb > 0) cap += (size_t)nb;
        }
    }
    const double iv = sc->snapshot_interval_s;
    if (iv > 0) cap += (size_t)fmin(floor(T / iv), (double)ABL_MAX_SNAPSHOTS) + 1;
    double *bp = malloc(cap * sizeof *bp);
    if (!bp) return abl_fail(err, ABL_ENOMEM, "out of memory");
    size_t n = 0;
#define ADD_BP(t)                                                                              \
    do {                                                                                       \
        const double t_ = (t);                                                                 \
        if (t_ > 0 && t_ < T && n < cap) bp[n++] = t_;                                         \
    } while (0)
    for (int i = 0; i < sc->nsources; i++) {
        const abl_source_cfg *c = &sc->sources[i];
        ADD_BP(c->on_s);
        ADD_BP(c->off_s);
        for (int q = 0; q < c->schedule.n; q++) ADD_BP(c->schedule.t_s[q]);
        const abl_source *src = s->sources ? s->sources[i] : NULL;
        if (src && src->ops->breakpoints) {
            int nb = src->ops->breakpoints(src, NULL, 0);
            if (nb > 0) {
                double *tmp = malloc((size_t)nb * sizeof *tmp);
                if (!tmp) {
                    free(bp);
                    return abl_fail(err, ABL_ENOMEM, "out of memory");
                }
                nb = src->ops->breakpoints(src, tmp, nb);
                for (int q = 0; q < nb; q++) ADD_BP(tmp[q]);
                free(tmp);
            }
        }
    }
    if (iv > 0)
        for (long k = 1; (double)k * iv < T && k <= ABL_MAX_SNAPSHOTS; k++) ADD_BP((double)k * iv);
#undef ADD_BP
    qsort(bp, n, sizeof *bp, cmp_double);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (m == 0 || bp[i] - bp[m - 1] > 1e-6 * dt) bp[m++] = bp[i];
    if (m > 0 && T - bp[m - 1] <= 1e-6 * dt) m--; /* merged into the end */
    bp[m++] = T;
    s->bp_s = bp;
    s->n_bp = m;
    double steps = 0, t0 = 0;
    for (size_t i = 0; i < m; i++) {
        steps += (double)segment_steps(t0, bp[i], dt);
        t0 = bp[i];
    }
    if (!(steps <= ABL_MAX_STEPS))
        return abl_fail(err, ABL_EINVAL,
                        "%s: %zu switch and snapshot times make %.3g steps (limit %.0e); raise "
                        "output.snapshot_interval_s or coarsen the schedules",
                        sc->path, m, steps, (double)ABL_MAX_STEPS);
    s->nsteps_total = (long)steps;
    return ABL_OK;
}

abl_status sim_advance(abl_sim *s, long nmax, double t_stop, abl_error *err)
{
    const abl_scenario *sc = s->sc;
    const double dt = s->dt_s;
    const bool track = s->energy.energy_tracked;
    double *work = malloc(2 * (size_t)s->grid.nz * sizeof *work);
    abl_status st = ABL_OK;
    if (!work) return abl_fail(err, ABL_ENOMEM, "out of memory");
    if (track && s->step == 0 && s->energy.E_stored_initial_J == 0)
        s->energy.E_stored_initial_J = stored_energy(s, work);
    long monitor_every = (long)floor(sc->monitor_interval_s / dt + 1e-9);
    if (monitor_every < 1) monitor_every = 1;

    for (long n = 0; n < nmax && s->step < s->nsteps_total; n++) {
        if (s->abandon && *s->abandon) {
            st = abl_fail(err, ABL_ESTOPPED, "stopped on request at t = %.1f s", s->t_s);
            goto done;
        }
        const size_t ib = next_breakpoint(s);
        const double b = s->bp_s[ib];
        /* a multirate run takes a long step wherever m whole steps remain before the step
         * that lands on the next breakpoint and before t_stop (a choice made from the state
         * and t_stop alone: the run loop's t_stop are snapshot times, breakpoints anyway, so a
         * resumed run makes the same ones; the planner's checks at its own times are not
         * passed either); it may pass nmax by up to m - 1 steps */
        if (s->mr_ratio &&
            segment_steps(s->seg_t0_s, b, dt) - 1 - s->seg_steps >= (long)s->mr_ratio &&
            s->t_s + s->mr_ratio * dt <= t_stop + 1e-9 * dt) {
            int k_used = 0;
            if ((st = multirate_step(s, work, &k_used, err))) goto done;
            n += k_used - 1;
            const bool last = n >= nmax - 1 || s->step == s->nsteps_total ||
                              s->t_s >= t_stop - 1e-9 * dt;
            if (s->monitor_accum_s >= sc->monitor_interval_s * (1.0 - 1e-9) || last) {
                if ((st = monitor(s, s->monitor_accum_s, err))) goto done;
                s->monitor_accum_s = 0.0;
            }
            if (s->t_s >= t_stop - 1e-9 * dt) break;
            continue;
        }
        const bool land = lands(s->seg_t0_s, b, dt, s->seg_steps + 1);
        double h = land ? b - s->t_s : dt;
        if (fabs(h - dt) <= 1e-9 * dt) h = dt; /* a whole step: the planned coefficients */
        prof_start(&s->prof);
        st = sc->scheme == SCHEME_EXPLICIT   ? explicit_step(s, h, work, err)
             : sc->scheme == SCHEME_SPECTRAL ? spectral_step(s, h, err)
                                             : implicit_step(s, h, work, err);
        if (st) goto done;
        /* the explicit step marks its own phases; the rest of a step is the solver's */
        if (sc->scheme != SCHEME_EXPLICIT) prof_mark(&s->prof, ABL_PROF_SOLVER, 0);
        double *tmp = s->T;
        s->T = s->T_new;
        s->T_new = tmp;
        s->step++;
        if (land) {
            s->seg_t0_s = b;
            s->seg_steps = 0;
            s->t_s = b;
        } else {
            s->seg_steps++;
            s->t_s = s->seg_t0_s + (double)s->seg_steps * dt;
        }
        s->monitor_accum_s += h;
        const bool last = n == nmax - 1 || s->step == s->nsteps_total ||
                          s->t_s >= t_stop - 1e-9 * dt;
        const bool due = s->mr_ratio
                             ? s->monitor_accum_s >= sc->monitor_interval_s * (1.0 - 1e-9)
                             : s->step % monitor_every == 0;
        if (due || last) {
            if ((st = monitor(s, s->monitor_accum_s, err))) goto done;
            s->monitor_accum_s = 0.0;
        }
        if (s->t_s >= t_stop - 1e-9 * dt) break;
    }
    if (track) s->energy.E_stored_final_J = stored_energy(s, work);
done:
    free(work);
    return st;
}

abl_status sim_step(abl_sim *s, long nsteps, abl_error *err)
{
    return sim_advance(s, nsteps, INFINITY, err);
}
