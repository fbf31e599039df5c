/* applicator.h - what the applicator sources share (issue 19: "applicators share one kit").
 *
 * RFA electrodes, MWA antennas and cryoprobes are needles: each reads an axis from the
 * scenario (tip_mm, direction), and every source (the basic ones too) decides per step whether
 * it is on, and allocates a source object with its private state. These are written once here;
 * the modality files keep what is theirs (electrode sets, SAR patterns, generators,
 * protocols). A needle held at a value (a cryoprobe's temperature, a straight RFA electrode's
 * voltage and coolant) is rasterised here: a held set wider than the needle and the sub-voxel
 * line-source coupling of its neighbours to the true surface (docs/CRYO.md "Sub-voxel probe
 * coupling", docs/RFA.md "Sub-voxel electrode coupling"); expandable RFA tines are the same
 * rule on a chain of chords (wire_hold_voxels, wire_coupling).
 */
#ifndef ABLASIM_APPLICATOR_H
#define ABLASIM_APPLICATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ablasim/config.h"
#include "ablasim/grid.h"
#include "ablasim/source.h"
#include "ablasim/status.h"

/* A needle's axis: tip [m] and unit direction from the tip towards the handle. */
typedef struct {
    double tip_m[3];
    double dir[3];
} abl_needle_axis;

/* The needle keys, declared once for every applicator (the parser and the generated key
 * reference take them from the modality's key table): designated-initializer fields for a
 * cfg_keydecl row, so a table can add its own variants, e.g.
 *     {NEEDLE_KEY_TIP("antenna tip (must lie inside the grid)")},
 *     {NEEDLE_KEY_DIAMETER("1.5 (17 G)", "(0, 20]"), .variants = V_STRAIGHT},
 * tip_mm and direction are read by needle_axis_parse, gauge / diameter_mm by
 * needle_diameter_parse. */
#define NEEDLE_KEY_TIP(what_)                                                                      \
    .key = "tip_mm", .unit = "mm", .deflt = "required", .allowed = "3 numbers, each within ±1e4",  \
    .meaning = (what_)
#define NEEDLE_KEY_DIRECTION                                                                       \
    .key = "direction", .unit = "–", .deflt = "required", .allowed = "non-zero 3-vector",          \
    .meaning = "from the tip towards the handle; normalised"
#define NEEDLE_KEY_GAUGE(deflt_)                                                                   \
    .key = "gauge", .unit = "G", .deflt = (deflt_), .allowed = "integer 10..18",                   \
    .meaning = "Stubs needle gauge: 17 G = 1.473 mm, 13 G = 2.413 mm (table in `applicator.c`)"
#define NEEDLE_KEY_DIAMETER(deflt_, allowed_)                                                      \
    .key = "diameter_mm", .unit = "mm", .deflt = (deflt_), .allowed = (allowed_),                  \
    .meaning = "needle outer diameter (the held voxels, wider, are coupled to it)"

/* The device preset key of every applicator source (device.h, docs/DEVICES.md): a row of each
 * modality's key table, {APPLICATOR_KEY_DEVICE}. The scenario reader applies the preset before
 * the modality parses the entry; the modality's parser never reads it. */
#define APPLICATOR_KEY_DEVICE                                                                      \
    .key = "device", .unit = "–", .deflt = "none", .allowed = "a preset of this type in `devices_file`", \
    .meaning = "named device preset: supplies the keys the entry does not set (the entry's own "  \
               "values win); docs/DEVICES.md"

/* Stubs (Birmingham) iron wire gauge, the sizing of hypodermic, RF and cryoablation needles:
 * nominal outer diameter [mm] of gauge NEEDLE_GAUGE_MIN..NEEDLE_GAUGE_MAX, NAN outside. */
#define NEEDLE_GAUGE_MIN 10
#define NEEDLE_GAUGE_MAX 18
double needle_gauge_diameter_mm(int gauge);

/* A needle's outer diameter [mm] from mapping e: at most one of 'gauge' (NEEDLE_GAUGE_MIN..MAX)
 * and 'diameter_mm' (within diam_r). Neither: default_mm when it is > 0; when it is 0 one of
 * them is required ("'<path>' needs exactly one of 'gauge' ... or 'diameter_mm'"). */
abl_status needle_diameter_parse(cfg_node *e, const cfg_range *diam_r, double default_mm,
                                 double *diam_mm, abl_error *err);

/* Reads tip_mm ([x, y, z], |x| <= 1e4 mm) and direction (any non-zero vector, normalised) of
 * mapping e. what names the applicator in the message for a zero direction ("electrode",
 * "antenna", "probe"): "<file:line>: '<key>' = [..]: the <what> direction (tip towards the
 * handle) must be a non-zero vector". */
abl_status needle_axis_parse(cfg_node *e, const char *what, abl_needle_axis *ax, abl_error *err);

/* Whether a source active on [on_s, off_s) is on for the step of v. Heat is for the step's
 * interval, which never straddles on_s or off_s (steps are aligned to them, sim.c): decided at
 * its midpoint, so the step that ends at off_s still heats in every scheme (backward Euler asks
 * at the step's end). Without a step interval (step_h_s = 0): at v->t_s. */
bool source_window_on(const abl_field_view *v, double on_s, double off_s);
/* Whether t lies in [on_s, off_s): held values (pins) are decided at the time asked for. */
bool source_window_at(double t_s, double on_s, double off_s);

/* A zeroed source object and a zeroed private state of state_size bytes, named after cfg and
 * bound to ops; ABL_ENOMEM naming the source when either allocation fails (nothing leaks). */
abl_status source_alloc(const abl_source_cfg *cfg, const abl_source_ops *ops, size_t state_size,
                        abl_source **out, void **state, abl_error *err);

/* ---- recorded series --------------------------------------------------------------------- */

/* A source's growing series (generator log), ncol doubles per row (source.h abl_source_series),
 * one owner per buffer. */
typedef struct {
    int ncol;
    size_t nrow, cap;
    double *rows;
} abl_series_buf;

/* Append one row of ncol values (doubling the buffer); ABL_ENOMEM naming source name. */
abl_status series_buf_append(abl_series_buf *b, const double *row, const char *name,
                             abl_error *err);
/* Walk the buffer through a checkpoint blob: the row count, then the rows. A count beyond what
 * the blob holds marks it bad (damage, not a size to allocate); ABL_ENOMEM naming the source
 * when the rows cannot be allocated. The caller reports b->bad. */
abl_status series_buf_io(abl_series_buf *b, abl_blob *blob, const char *name, abl_error *err);
void series_buf_free(abl_series_buf *b);

/* ---- held needles ------------------------------------------------------------------------ */

/* Radius [m] of the held set of a needle of radius radius_m on grid g (h: the largest spacing):
 * max(radius_m + NEEDLE_HOLD_GAP h, NEEDLE_HOLD_MIN h). Deliberately wider than the needle: the
 * voxels beside it are coupled to the true surface (needle_coupling), and that coupling is
 * accurate and stays mild (G_b h^2 <= 2.5 for a 17 G needle on 1 mm; docs/CRYO.md on what that
 * means for the explicit step) when they lie at least about a voxel from the axis. */
#define NEEDLE_HOLD_GAP 0.75
#define NEEDLE_HOLD_MIN 1.5
double needle_hold_radius_m(const abl_grid *g, double radius_m);

/* The held set of a needle of radius radius_m along [tip, tip + length d] (d unit): voxel
 * centres within needle_hold_radius_m (rh) of the segment pulled back at both ends by
 * rh - radius_m (the held capsule ends where the needle's own rounded ends do: a wider hold does
 * not lengthen the needle), and every centre within max(radius_m + NEEDLE_NEAR_GAP h, half the
 * voxel diagonal) of the true segment (the ends themselves; every point of the segment lies in
 * a held voxel, so the set is connected at any angle). Index order, up to cap into idx (may be
 * NULL); returns the total count. */
#define NEEDLE_NEAR_GAP 0.5
size_t needle_hold_voxels(const abl_grid *g, const double tip_m[3], const double dir[3],
                          double length_m, double radius_m, size_t *idx, size_t cap);

/* A wire: a needle bent along a chain of straight chords (the tines of an expandable
 * electrode), all of one radius. The held set and the coupling below are the needle's rules
 * with the distance to the axis taken as the distance to the nearest chord; a chord's start
 * or end that is a free end of the wire (pull_start, pull_end) is pulled back like a needle's
 * ends, the joints between chords are not. A straight needle is one chord with both ends
 * free (needle_hold_voxels and needle_coupling are exactly that). */
typedef struct {
    double tip_m[3], dir[3]; /* start and unit direction */
    double length_m;
    bool pull_start, pull_end;
} abl_chord;

/* The held set of wire w[0..nw) (rule of needle_hold_voxels, per chord); 0 also when out of
 * memory (nw > 1 needs a scratch copy of the chords). */
size_t wire_hold_voxels(const abl_grid *g, const abl_chord *w, int nw, double radius_m,
                        size_t *idx, size_t cap);

/* A voxel beside a held set, coupled to the needle's true surface: besides what its faces to
 * held voxels conduct (k sum 1/h^2, the stencil's), k dG_m2 (value_held - value_b). */
typedef struct {
    size_t b;
    double dG_m2; /* [1/m^2] */
    double G_m2;  /* [1/m^2] the total, G_b = dG_m2 + b's faces to held voxels (the potential's
                   * coupling, rfa.c) */
    /* the geometry of b's balance (needle_source_shift): b's distance to the axis, and the
     * distance and 1/h^2 of each of its nfree non-held neighbours (the sum above) */
    double d_m;
    int nfree;
    double dn_m[6], ih2_m2[6];
} abl_needle_couple;

/* Sub-voxel coupling of the needle whose held voxels idx[0..n) carry mark[c] == id (other
 * non-zero marks: other needles' held voxels, never coupled). Near a thin line held at a value
 * the field is the line-source profile u = A + B ln d (d: distance to the axis; Peaceman's well
 * model, Peaceman 1978 SPE J 18:183, generalised to a held set of any shape). For each voxel b
 * beside the held set (in the order of the held voxels and their faces -x, +x, -y, +y, -z,
 * +z), its total conductance to the surface G_b makes that profile satisfy b's discrete
 * balance exactly:
 *   sum over b's non-held neighbours n of (ln d_n - ln d_b) / h_n^2 = G_b (ln d_b - ln r),
 * at least 0; dG = G_b - sum over b's faces to held voxels of 1/h^2. seen: a zeroed byte per
 * voxel, returned zeroed. Writes at most 6 n couples into out (caller's), returns the count. */
size_t needle_coupling(const abl_grid *g, const double tip_m[3], const double dir[3],
                       double length_m, double radius_m, const size_t *idx, size_t n,
                       const int *mark, int id, uint8_t *seen, abl_needle_couple *out);
/* Conductance [W/m^3/K] of coupled voxel b (material mat, at T_C) to a needle surface held at
 * T_ref_C: dG_m2 times the harmonic mean of the tissue's conductivity at the two temperatures
 * (the stencil's face rule, kernels.h; k(T) the stencil's linear k of sim.h: k37 (1 + beta
 * (T - 37)), the factor kept within [0.1, 10]). A cooled RF electrode's and a cooled microwave
 * antenna's shaft use it: the heat q_b = G (T_ref - T_b) of source.h heat_G. */
double needle_couple_G(const struct abl_sim *sim, int mat, double T_ref_C, double T_C,
                       double dG_m2);

/* Heat sources between the needle's surface and a coupled voxel (a microwave antenna's near
 * field beside its cooled shaft; mwa.c). The line-source profile above is the field of a source-
 * free neighbourhood; with a heat source q(r) around the needle the exact field near it is
 * u = A + B ln d + tau(d)/k, where tau is the particular solution that vanishes with its slope
 * at the surface (r: the needle radius),
 *   tau(d) = - int_r^d I(s)/s ds,   I(s) = int_r^s q(t) t dt   [W/m]
 * (-(1/d) (d tau')' = q: the heat made between the surface and d flows to the surface). Peaceman's
 * G_b makes b's discrete balance exact for A + B ln d; this returns the shift kappa_b [W/m] that
 * makes it exact for tau too: b's coupling heat becomes k G_b (T_ref - T_b) + G_b kappa_b with
 *   kappa_b = tau(d_b) - (q_b + sum over b's non-held neighbours n of (tau(d_n) - tau(d_b)) /
 *             h_n^2) / G_b,
 * q_b the heat the source deposits in b itself. Suite mwa measures the wall's heat in a
 * cross-section of a cooled antenna in perfused liver against the exact radial solution: the
 * source-free coupling with the held tissue's share spread over the pattern took 24-26 % too
 * little at 1 mm and 15 % at 0.5 mm. With that share given to the coolant and this shift it is
 * within 0.7 % at both against a reference without perfusion in the held tissue (the model's
 * assumption), and within 1.7 % against the fully perfused one (docs/MWA.md "Cooled shaft").
 * Most of the gain is the share; the shift itself moves the wall's heat by about 5 % at 1 mm
 * and 1.5 % at 0.5 mm. A needle's rounded end is treated as the cylinder (d: the distance to
 * the end point). I(s) is the caller's (inner, for
 * s >= r; I(r) = 0), tau by 8-point Gauss-Legendre on [r, d] (I smooth there). 0 when G_b = 0. */
double needle_source_shift(const abl_needle_couple *c, double radius_m, double q_b_W_m3,
                           double (*inner)(double s_m, const void *ctx), const void *ctx);

/* The same for wire w[0..nw) (d: the distance to the nearest chord). */
size_t wire_coupling(const abl_grid *g, const abl_chord *w, int nw, double radius_m,
                     const size_t *idx, size_t n, const int *mark, int id, uint8_t *seen,
                     abl_needle_couple *out);

#endif
