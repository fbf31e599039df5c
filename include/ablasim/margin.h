/* margin.h - ablation-zone analysis: exact Euclidean distance transform, zone criteria,
 * minimal ablative margin with a PASS/FAIL verdict, critical structures, margin files.
 *
 * Geometry: voxel grids as everywhere in ablasim (x fastest, index i + nx (j + ny k), voxel
 * centres on a lattice with spacing_mm per axis). Every distance is between voxel CENTRES, so
 * it is quantised; docs/MARGIN.md states the resolution (one voxel diagonal) and the bias.
 *
 * Layers, from pure to I/O:
 *   edt_*       distance transform of a uint8 mask (kernels: loops over arrays, no I/O)
 *   zone_*      criterion -> mask (pure functions on arrays)
 *   margin_compute, critical_evaluate   the analysis on arrays (pure, OpenMP, deterministic)
 *   margin_analyse_result / margin_analyse_nifti   file in, margin file + JSON out
 */
#ifndef ABLASIM_MARGIN_H
#define ABLASIM_MARGIN_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ablasim/status.h"

/* ---- exact Euclidean distance transform (src/analysis/edt.c) --------------------------- */

/* Flags of edt_compute. */
#define ABL_EDT_TO_NONZERO 0x1u     /* targets are voxels with mask != 0 (default: mask == 0) */
#define ABL_EDT_OUTSIDE_TARGET 0x2u /* every voxel beyond the grid faces counts as a target */
#define ABL_EDT_SQUARED 0x4u        /* write squared distances [mm^2] instead of distances [mm] */

/* out[v] = min over target voxels t of |c(v) - c(t)| in mm, c the voxel centre, with the
 * anisotropic spacing: |d|^2 = (hx di)^2 + (hy dj)^2 + (hz dk)^2. Target voxels get 0; with no
 * target anywhere every value is +INFINITY.
 * Method: Felzenszwalb & Huttenlocher (2012), Theory of Computing 8:415, "Distance transforms
 * of sampled functions": a 1-D pass along x (nearest target in the row), then the lower
 * envelope of parabolas w^2 (p - q)^2 + f(q) along y and z with w the spacing of that axis.
 * Exact (no chamfer approximation), O(N) time, O(max dim) scratch per thread; lines are
 * independent, so the result is bitwise identical for any number of OpenMP threads.
 * dims: nx, ny, nz >= 1, product <= ABL_GRID_MAX_VOXELS; spacing_mm > 0 and finite;
 * mask and out hold nx*ny*nz values and must not overlap. Errors: ABL_EINVAL (bad geometry),
 * ABL_ENOMEM (scratch); out is then undefined. */
abl_status edt_compute(const int dims[3], const double spacing_mm[3], const uint8_t *mask,
                       unsigned flags, double *out, abl_error *err);

/* The 1-D kernel, exposed for tests: d[p] = min_q ( w2 (p - q)^2 + f[q] ), p, q in 0..n-1,
 * f[q] = +INFINITY marks "no site" (d = +INFINITY everywhere when every f is). With
 * outside_zero, sites q = -1 and q = n with f = 0 are added. f and d may be the same array.
 * Scratch: v and fv hold n + 2 values, z n + 3. */
void edt_line_sq(const double *f, double *d, int n, double w2, bool outside_zero, int *v,
                 double *fv, double *z);

/* ---- ablation-zone criteria (src/analysis/margin.c) ------------------------------------ */

typedef enum {
    ABL_ZONE_TMAX = 0, /* T_max_C >= threshold (default 55 degC): heat */
    ABL_ZONE_TMIN,     /* T_min_C <= threshold (default -40 degC): cold */
    ABL_ZONE_OMEGA,    /* Arrhenius damage integral Omega >= threshold (default 1) */
    ABL_ZONE_CEM43,    /* thermal dose CEM43 >= threshold (default 240 min) */
    ABL_ZONE_NCRIT
} abl_zone_criterion;

typedef struct {
    const char *key;      /* command-line name: "tmax", "tmin", "omega", "cem43" */
    const char *field;    /* dataset in a result file, e.g. "/fields/T_max_C" */
    const char *quantity; /* for messages: "T_max", "Omega", ... */
    const char *units;    /* of field and threshold: "degC", "1", "min" */
    bool at_or_above;     /* zone = field >= threshold (else field <= threshold) */
    double default_threshold;
} abl_zone_criterion_info;

const abl_zone_criterion_info *zone_criterion_info(abl_zone_criterion c);
/* "tmax" -> ABL_ZONE_TMAX ...; ABL_EINVAL naming the allowed keys otherwise. */
abl_status zone_criterion_parse(const char *key, abl_zone_criterion *c, abl_error *err);
/* mask[i] = 1 where field[i] meets the criterion at threshold, else 0. A non-finite value
 * (NaN, +-Inf: a run that failed numerically) is never in a zone, whichever the direction of
 * the criterion: an unknown temperature is not evidence of ablation. Returns the number of
 * voxels in the zone. */
size_t zone_mask_compute(abl_zone_criterion c, const double *field, size_t n, double threshold,
                         uint8_t *mask);

/* ---- minimal ablative margin (src/analysis/margin.c) ----------------------------------- */

/* Distances within this much of the criterion count as equal to it, so that a margin meant to
 * equal the criterion gets one verdict whatever the rounding: sums of squared spacings in
 * double (1e-15 relative) and spacings stored as float32 by NIfTI-1 (0.8 -> 0.800000012,
 * i.e. 4e-8 mm at 5 mm). One nanometre: far below any physical meaning. */
#define ABL_MARGIN_TIE_MM 1e-6

typedef struct {
    int dims[3];           /* nx, ny, nz */
    double spacing_mm[3];  /* voxel size along x, y, z [mm] */
    double affine[3][4];   /* voxel (i,j,k,1) -> world (x,y,z) [mm], for reported locations */
    const uint8_t *tumour; /* != 0: tumour voxel */
    const uint8_t *zone;   /* != 0: ablated voxel */
    double criterion_mm;   /* required margin, >= 0 (PASS iff minimal margin > criterion) */
} abl_margin_input;

typedef struct {
    size_t n;             /* voxels in the grid */
    double voxel_mL;      /* volume of one voxel */
    double resolution_mm; /* one voxel diagonal: the quantisation limit of the margin */
    /* minimal signed margin over the tumour voxels: +distance to the nearest non-ablated
     * voxel for an ablated tumour voxel, -distance to the nearest ablated voxel otherwise
     * (-INFINITY when nothing is ablated); ties -> lowest voxel index */
    double min_margin_mm;
    size_t min_index;
    int min_ijk[3];
    double min_location_mm[3]; /* world position (affine) of that voxel's centre */
    bool pass;                 /* min_margin_mm > criterion_mm + ABL_MARGIN_TIE_MM */
    double criterion_mm;
    size_t n_tumour, n_zone, n_residual; /* residual: tumour voxels not ablated */
    size_t n_surface, n_surface_ok;      /* surface voxels; those with margin > crit */
    size_t n_shell, n_shell_unablated;   /* non-tumour voxels within criterion_mm */
    double tumour_mL, zone_mL, residual_mL, shell_mL, shell_unablated_mL;
    double surface_fraction_ok; /* n_surface_ok / n_surface */
    bool zone_touches_border;   /* an ablated voxel lies on a grid face (see docs/MARGIN.md) */
    bool tumour_touches_border;
    /* maps (owned; margin_result_free releases them) */
    float *margin_mm;         /* [n] signed margin, NaN outside the tumour */
    uint8_t *shell;           /* [n] 0 outside the shell, 1 ablated shell, 2 unablated shell */
    int32_t *surface_ijk;     /* [n_surface][3] surface voxels in increasing index order */
    float *surface_margin_mm; /* [n_surface] their margins */
} abl_margin_result;

/* Axis-aligned affine (ablasim result grids): world = origin + (i hx, j hy, k hz). */
void margin_affine_from_grid(const double spacing_mm[3], const double origin_mm[3],
                             double affine[3][4]);

/* The margin analysis (definitions in docs/MARGIN.md):
 *  - signed margin of every tumour voxel, by two EDTs of the zone mask; voxels beyond the grid
 *    count as NOT ablated (a zone cut by the grid faces gives margins that are lower bounds);
 *  - surface voxels: tumour voxels with a 6-neighbour outside the tumour or the grid;
 *  - shell: non-tumour voxels whose distance to the nearest tumour voxel is <= criterion_mm
 *    (EDT of the tumour mask); "unablated shell" = shell voxels outside the zone.
 * With every tumour voxel ablated and the zone inside the grid, PASS <=> no unablated shell
 * voxel. Errors: ABL_EINVAL (geometry, empty tumour), ABL_ENOMEM; r is then empty. */
abl_status margin_compute(const abl_margin_input *in, abl_margin_result *r, abl_error *err);
/* Does mask m (dims d: nx, ny, nz) have a nonzero voxel on a face of the grid? */
bool margin_mask_on_faces(const uint8_t *m, const int d[3]);
void margin_result_free(abl_margin_result *r);

/* ---- critical structures (src/analysis/margin.c) --------------------------------------- */

#define ABL_MARGIN_MAX_CRITICAL 32
#define ABL_MARGIN_NAME_LEN 64

typedef struct {
    char tissue[ABL_MARGIN_NAME_LEN];
    double tmax_below_C; /* limit crossed when T_max >= this; NAN: no hot limit */
    double tmin_above_C; /* limit crossed when T_min <= this; NAN: no cold limit */
} abl_critical_spec;

/* "nerve:45:10" (T_max below 45, T_min above 10), "nerve:45" or "nerve:45:" (hot only),
 * "nerve::10" (cold only). Names: letters, digits, '_', '-'. ABL_EINVAL with a sentence
 * otherwise (no limit, not a number, lower limit not below upper). */
abl_status critical_spec_parse(const char *text, abl_critical_spec *spec, abl_error *err);

typedef struct {
    abl_critical_spec spec;
    size_t n_voxels;
    double volume_mL;
    double tmax_C, tmin_C; /* extremes over the structure (NaN when it is empty) */
    size_t n_hot, n_cold;  /* voxels that crossed the hot / cold limit */
    double hot_mL, cold_mL;
    bool time_above_recorded; /* a time-at-or-above map at exactly tmax_below_C exists */
    bool time_below_recorded;
    double time_above_max_s; /* longest time any voxel spent at/above the hot limit */
    double time_below_max_s;
    size_t n_damaged; /* structure voxels inside the ablation zone */
    double damaged_mL;
    /* structure voxels whose T_max (or, with a cold limit, T_min) is not finite: their
     * temperature is unknown, so they count as crossing the limit (see crossed) and are left
     * out of tmax_C / tmin_C */
    size_t n_nonfinite;
    bool crossed; /* any limit crossed, or a temperature unknown (n_nonfinite > 0) */
} abl_critical_report;

/* Evaluate one structure: its voxels are those whose label has member[label] != 0.
 * time_above / time_below: maps [n] for the spec's limits, or NULL (then "not recorded").
 * tmin may be NULL when the spec has no cold limit and the report's tmin_C is then NaN. */
void critical_evaluate(const abl_critical_spec *spec, size_t n, const uint8_t *labels,
                       const uint8_t member[256], const double *tmax, const double *tmin,
                       const float *time_above, const float *time_below, const uint8_t *zone,
                       double voxel_mL, abl_critical_report *r);

/* ---- files: result or segmentations in, margin file out (src/analysis/margin_io.c) ----- */

typedef struct {
    const char *result_path;  /* ablasim result (.h5) ... */
    const char *tumour_nifti; /* ... or a pair of NIfTI masks (label != 0 = inside) */
    const char *zone_nifti;
    const char *out_path;      /* margin file; NULL: <input minus .h5>.margin.h5 */
    const char *nifti_prefix;  /* also write PREFIX_{margin_mm,zone,tumour}.nii.gz; NULL: no */
    const char *tumour_tissue; /* NULL: "tumour" */
    int criterion;             /* abl_zone_criterion, or -1: automatic (see MARGIN.md) */
    double threshold;          /* NAN: the criterion's default */
    double criterion_mm;       /* required margin [mm] */
    int n_critical;
    abl_critical_spec critical[ABL_MARGIN_MAX_CRITICAL];
    /* Analyse a result that is incomplete (root attribute complete missing or 0: a run that
     * stopped on a fault) or holds non-finite values in a field the analysis reads. Off: such a
     * result is refused (ABL_EINVAL naming the file, the field, the first bad voxel and its
     * value). On: non-finite voxels are in no zone (not ablated) and critical-structure voxels
     * with an unknown temperature count as crossing; the report and both output files say
     * input_complete = false. */
    bool allow_incomplete;
    /* Set (by a signal handler: Ctrl-C, a batch system's SIGTERM) to stop before the outputs are
     * replaced: looked at before the locks are taken and between the temporaries (each map, the
     * margin file, the summary); a stop there removes every temporary and lock and returns
     * ABL_ESTOPPED with every earlier file as it was. Once the replacement has begun (the undo
     * log written) it is finished. NULL: never. */
    volatile sig_atomic_t *stop;
} abl_margin_opts;

typedef struct {
    char source[1024]; /* what was analysed, for the report */
    char out_h5[1024], out_json[1024];
    char tumour_desc[256]; /* "tissue tumour" or "label != 0 in T.nii.gz" */
    bool from_result;      /* result file (zones by criterion) or segmentations */
    int dims[3];
    double spacing_mm[3];
    abl_zone_criterion criterion; /* the one the verdict uses (from_result) */
    bool criterion_auto;
    double threshold;
    bool zone_available[ABL_ZONE_NCRIT];
    double zone_threshold[ABL_ZONE_NCRIT];
    size_t zone_voxels[ABL_ZONE_NCRIT];
    double zone_mL[ABL_ZONE_NCRIT];
    double applicator_mL; /* electrode/probe voxels counted as ablated (result mode) */
    abl_margin_result m; /* maps released after writing; the scalars stay */
    int n_critical;
    abl_critical_report critical[ABL_MARGIN_MAX_CRITICAL];
    /* The overall verdict: PASS iff the margin passes (m.pass) and no critical structure
     * crossed a limit. m.pass alone is the margin verdict. */
    bool pass;
    int n_critical_crossed;
    /* Input state (result mode; segmentations are always complete). input_complete is false
     * when the result's root attribute complete is missing or 0, or a field read holds a
     * non-finite value; only possible with opts.allow_incomplete. */
    bool input_complete;
    char input_note[512];    /* why it is incomplete, one sentence; "" when complete */
    char result_run_id[40];  /* the result's root attribute run_id ("" when it has none): the
                              * report script matches a margin file to its result by it */
    size_t nonfinite_values; /* non-finite values over the fields read */
    double wall_s;           /* analysis + writing */
    double read_s, compute_s, write_s; /* its parts: input and masks, EDTs, output files */
} abl_margin_report;

/* Read an ablasim result, build every available zone mask, compute the margin with the
 * selected criterion, evaluate the critical structures and write the margin file and its
 * JSON summary (atomically). Before anything is opened, the input and every name the
 * analysis may write (margin file, summary, NIfTI maps, their temporaries, the lock) are
 * declared to fileguard: an output that is an input or another output, or an input that is
 * not a regular file (FIFO, device, directory), is refused; the margin file is locked while
 * it is written. Errors: ABL_EIO (missing/unreadable file, cannot write, locked by another
 * process), ABL_EINVAL (not a regular file, an output that is an input, not a result,
 * incomplete or non-finite input without allow_incomplete, unknown tissue, criterion field
 * absent, ...), ABL_ENOMEM. The report's maps are released before returning. */
abl_status margin_analyse_result(const abl_margin_opts *o, abl_margin_report *rep, abl_error *err);
/* The same for two registered segmentations (same dims and affine), with the same file
 * checks (inputs: the two NIfTI files). */
abl_status margin_analyse_nifti(const abl_margin_opts *o, abl_margin_report *rep, abl_error *err);

#endif
