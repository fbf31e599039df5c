/* source.h - the one interface through which heat enters (or leaves) the tissue.
 *
 * Each step the driver asks every source for its contribution at the start of the step, t_s:
 *  - heat: a power density q [W/m^3] on a set of voxels (sparse: index + value), added to the
 *    Pennes right-hand side;
 *  - pins: voxels held at a temperature [C] (electrode or probe surfaces).
 * A source owns the arrays it returns; they stay valid until its next update or destroy. Later
 * modalities (RFA, MWA, cryo) implement the same three functions, reading the current
 * temperature field and tissue labels from the view to compute temperature-dependent sources.
 */
#ifndef ABLASIM_SOURCE_H
#define ABLASIM_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ablasim/grid.h"
#include "ablasim/scenario.h"
#include "ablasim/status.h"

typedef struct {
    const abl_grid *grid;
    const uint8_t *material; /* material index per voxel */
    const double *T_C;       /* current temperature */
    double t_s;              /* time at the start of the step */
    double dt_s;
    /* true on the implicit schemes' second call within a step, which asks only for the voxels
     * held at t_s (the end of the step): sources with state (generator controllers, series)
     * must not advance it then; heat returned is ignored */
    bool pins_only;
    /* The interval [step_t0_s, step_t0_s + step_h_s] the returned heat is applied over, in
     * every scheme. Steps never straddle a breakpoint (on/off times, schedule points, protocol
     * phases, snapshot times: sim.c), so a source that returns its power averaged over this
     * interval delivers exactly the energy its schedule asks for. */
    double step_t0_s, step_h_s;
    /* the run's per-phase timers (profile.h), or NULL: a source may mark its own phases (RFA:
     * the potential solves) between the driver's marks */
    struct abl_profile *prof;
} abl_field_view;

typedef struct {
    size_t n_heat;
    const size_t *heat_idx;
    const double *heat_q_W_m3;
    /* Heat that couples a voxel b to a temperature T_ref through a conductance, q_b =
     * G_b (T_ref - T_b) with T_b at the start of the step (the sub-voxel coupling of a held
     * needle to its true surface, applicator.h; a vessel wall): entries heat_G_first..n_heat-1
     * have their G_b [W/m^3/K] in heat_G_W_m3K[q - heat_G_first] (NULL: none). The explicit step
     * takes the G_b > 0 part implicitly (linearised backward Euler on that term, sim.c), so that
     * a stiff coupling needs no smaller step and cannot overshoot T_ref; the CG schemes take
     * heat_q as it is. */
    const double *heat_G_W_m3K;
    size_t heat_G_first;
    /* Optional: every coupling entry's T_ref lies in [heat_G_Tref_lo_C, heat_G_Tref_hi_C] from
     * this step to the next breakpoint (heat_G_bounded; a held shape whose schedule stays in that
     * range). A freezing run's active region then leaves out the coupled voxels that are in the
     * liquid window while the range is too (sim.c region_before_sweep), so that the multirate
     * step's fast box need not reach a layer held at body temperature. */
    bool heat_G_bounded;
    double heat_G_Tref_lo_C, heat_G_Tref_hi_C;
    /* Entries 0..heat_distinct-1 name pairwise distinct voxels (a source that knows it says so;
     * 0, the default: no such promise). The explicit step adds that prefix's heat in parallel
     * (sim.c add_source_heat); the rest of the list, where one voxel may appear twice (a
     * tissue voxel coupled to two probes), is added in list order. At most heat_G_first. */
    size_t heat_distinct;
    size_t n_pin;
    const size_t *pin_idx;
    const double *pin_T_C;
    const double *pin_frac; /* NULL: every listed voxel is held fully; else its held volume
                             * fraction in (0, 1]: a voxel at least half held is held fully,
                             * one less than half is tissue (sim.c pin_held, the half-volume
                             * rule); the heat a hold takes is counted as source heat. (No
                             * built-in source lists fractions since session 20: a
                             * fixed_temperature shape holds the voxels whose centre it contains
                             * and couples their neighbours to its surface, basic.c.) */
    bool pins_absorb;       /* the held voxels are a sink that takes any heat other sources
                             * deposit in them (a vessel's flowing blood); without it, heat of
                             * another source in a held voxel is refused as a contradiction */
    bool pins_anatomy;      /* the held voxels are anatomy (a vessel's lumen), not an applicator
                             * track: the margin analysis does not count them as ablated (sim.h
                             * applicator). A cooled antenna's shaft absorbs (its coolant takes
                             * the heat) and is a track. */
} abl_source_contrib;

/* A source's recorded time series (generator readings), written to the result file as
 * /sources/<name>/<column> and summarised in the JSON summary. Column names carry their unit
 * ("voltage_V", "power_W", "impedance_Ohm"); column 0 is "time_s". Row-major, nrow x ncol. */
typedef struct {
    int ncol;
    const char *const *columns;
    size_t nrow;
    const double *rows;
} abl_source_series;

/* The axis of a needle-like applicator (electrode, antenna, probe): the tip position [m] and
 * the unit direction from the tip towards the handle. Zone length and diameter along this axis
 * are reported for the isotherms of the output (output.h). */
typedef struct {
    double tip_m[3];
    double dir[3];
} abl_source_axis;

/* A source's evolving state as bytes, for checkpoints: one function walks the state in a fixed
 * order and abl_blob_io copies each piece out (ABL_BLOB_SAVE), in (ABL_BLOB_LOAD) or only counts
 * its size (ABL_BLOB_COUNT). A load reading past the end sets bad. */
typedef enum { ABL_BLOB_COUNT, ABL_BLOB_SAVE, ABL_BLOB_LOAD } abl_blob_mode;
typedef struct {
    abl_blob_mode mode;
    unsigned char *buf;
    size_t len, pos;
    bool bad;
} abl_blob;

static inline void abl_blob_io(abl_blob *b, void *p, size_t n)
{
    if (n == 0) return;
    if (b->mode == ABL_BLOB_SAVE) memcpy(b->buf + b->pos, p, n);
    if (b->mode == ABL_BLOB_LOAD) {
        if (b->bad || b->pos + n > b->len) {
            b->bad = true;
            return;
        }
        memcpy(p, b->buf + b->pos, n);
    }
    b->pos += n;
}

typedef struct abl_source abl_source;
typedef struct {
    const char *type;
    /* Fill *out for the step starting at v->t_s. */
    abl_status (*update)(abl_source *s, const abl_field_view *v, abl_source_contrib *out,
                         abl_error *err);
    void (*destroy)(abl_source *s);
    /* Optional (NULL: none): the series recorded so far; valid until the next update. */
    void (*series)(const abl_source *s, abl_source_series *out);
    /* Optional (NULL: none): fill *out and return the number of axes (several probes or
     * electrodes); at most max. */
    int (*axes)(const abl_source *s, abl_source_axis *out, int max);
    /* Optional (NULL: stateless beyond what the fields and t determine): walk the evolving
     * state (controllers, cached solutions, recorded series) through abl_blob_io so that a run
     * resumed from a checkpoint continues bitwise identically. Loading happens into a source
     * freshly created from the same scenario; it may reallocate (series) and fails with a
     * message on a size mismatch. The source object itself is not changed (loading writes the
     * state it points to), so a writer holding a const source can save it. */
    abl_status (*state_io)(const abl_source *s, abl_blob *b, abl_error *err);
    /* Optional (NULL: none beyond the common on_s/off_s): times [s] at which the source switches
     * or changes slope (protocol phases, ramps); every one becomes a step boundary. Fills at
     * most max, returns how many it has in all (call again with more room if larger). */
    int (*breakpoints)(const abl_source *s, double *t_s, int max);
    /* Optional (NULL: none): the longest step [s] the source's control loop tolerates (an RF
     * generator that judges the impedance once per step); the automatic dt of every scheme is
     * at most this. */
    double (*max_step_s)(const abl_source *s);
    /* Optional (NULL: none): the voxels this source holds at every step of a run that ends at
     * duration_s, as its pin list (idx and frac as pin_idx and pin_frac; an entry with frac
     * < 0.5 is tissue, not held), and the lowest and highest temperature [C] it holds them at
     * over the run; returns their count (0: none). A material whose every voxel is held so,
     * above the freezing range, never freezes: the explicit stability bound takes its k at the
     * held temperatures instead of its frozen k (sim.c plan_held_materials). */
    size_t (*held_always)(const abl_source *s, double duration_s, const size_t **idx,
                          const double **frac, double *T_lo_C, double *T_hi_C);
} abl_source_ops;

struct abl_source {
    const abl_source_ops *ops;
    char name[64];
    void *state;
    /* a sentence about input that is accepted but may not be what was meant (a volumetric
     * shape that leaves the grid), printed by `ablasim run` as a note; empty: none */
    char note[768];
};

struct abl_sim;

/* A source type beyond the two built-in ones: one file in src/sources/ defines an
 * abl_source_type_info and src/sources/registry.c lists it. The scenario reader handles the
 * common keys (name, type, on_s, off_s) and calls parse for the rest; keys declares the type's
 * own keys so that any other key is reported as unknown with file:line. */
typedef struct abl_source_type_info {
    const char *type;         /* value of 'type:' in scenarios */
    const cfg_keytable *keys; /* the type's own keys and their documentation */
    abl_status (*parse)(cfg_node *entry, const abl_scenario *sc, void **params, abl_error *err);
    abl_status (*create)(const abl_source_cfg *cfg, const struct abl_sim *sim, abl_source **out,
                         abl_error *err);
    void (*free_params)(void *params);
} abl_source_type_info;

/* Registered type by name (NULL if none); all type names, comma-separated, for messages. */
const abl_source_type_info *source_type_find(const char *type);
void source_type_names(char *buf, size_t len);

/* Build the source described by cfg for simulation sim (voxel sets computed once here). Fails
 * when the source covers no voxel (outside the grid; basic sources: no voxel overlapped by more
 * than 1e-9 of it; modalities: their own voxel rules). */
abl_status source_create(const abl_source_cfg *cfg, const struct abl_sim *sim, abl_source **out,
                         abl_error *err);
/* The built-in volumetric and fixed_temperature sources on sim's grid (a fixed_temperature
 * shape's sub-voxel coupling reads the tissues' conductivity from sim). */
abl_status basic_source_create(const abl_source_cfg *cfg, const struct abl_sim *sim,
                               abl_source **out, abl_error *err);
void source_destroy(abl_source *s);

#endif
