/* fields.h - the field table: every per-voxel state and running map of a simulation, declared
 * once (the rows: field_rows.h).
 *
 * A row names a map (checkpoint dataset, result dataset, unit), its element type, when it
 * exists (always, with freezing, with applicators, once per hot or cold threshold), its initial
 * value, the range a resumed checkpoint must respect, and where abl_sim keeps its pointer.
 * fields_create() turns the rows into instances for one scenario and allocates them;
 * allocation, freeing, checkpoint save/restore and its range checks, the result's /fields
 * group and the XDMF sidecar all iterate over the instances (sim.c, checkpoint.c, output.c),
 * so adding a running map is one row in field_rows.h plus its update rule (docs/ARCHITECTURE.md
 * "Adding a running map"). The hot loops use the named pointers that sim.h declares from the
 * same rows (s->T_max, ...).
 */
#ifndef ABLASIM_FIELDS_H
#define ABLASIM_FIELDS_H

#include <stddef.h>
#include <stdint.h>

#include "ablasim/status.h"

struct abl_sim;

/* Element type in memory, in the checkpoint and in the result (the same for all three). */
typedef enum { ABL_DT_F64, ABL_DT_F32, ABL_DT_U8 } abl_dtype;

/* Where a map goes. */
enum {
    ABL_FIELD_CHECKPOINT = 1u << 0, /* saved in checkpoints, restored (and range-checked) */
    ABL_FIELD_RESULT = 1u << 1,     /* written to /fields/<result_name> of the result */
    ABL_FIELD_XDMF = 1u << 2,       /* listed in the XDMF sidecar (ParaView) */
};

/* When a map exists. */
typedef enum {
    ABL_FIELD_ALWAYS,
    ABL_FIELD_IF_FREEZING,   /* physics.freezing: the tissue can freeze */
    ABL_FIELD_IF_APPLICATOR, /* a modality source (electrode, cryoprobe) can hold voxels */
    ABL_FIELD_PER_HOT,       /* one per output.hot_thresholds_C entry */
    ABL_FIELD_PER_COLD,      /* one per output.cold_thresholds_C entry */
} abl_field_presence;

typedef enum {
    ABL_INIT_T_INITIAL, /* the scenario's initial temperature [C] */
    ABL_INIT_ZERO,
} abl_field_init;

/* What a restored value must satisfy (checkpoint.c refuses a checkpoint otherwise). */
typedef enum {
    ABL_RANGE_TEMPERATURE, /* finite, -273.15..10000 C */
    ABL_RANGE_NONNEG,      /* finite, >= 0 */
    ABL_RANGE_ELAPSED,     /* finite, 0..the time elapsed (time-above/below maps) */
    ABL_RANGE_FLAG,        /* 0 or 1 */
} abl_field_range;

typedef struct {
    const char *state_name;  /* checkpoint dataset /state/<name>; per threshold: "%d" takes
                              * the threshold's index */
    const char *result_name; /* dataset /fields/<name> (flag RESULT); per threshold: "%g" takes
                              * the threshold in C */
    const char *units;       /* the result dataset's units attribute */
    abl_dtype dtype;
    unsigned flags;
    abl_field_presence presence;
    abl_field_init init;
    abl_field_range range;
    size_t member; /* offsetof(abl_sim, pointer), or of the pointer array per threshold */
    const char *meaning; /* the result dataset's "meaning" attribute (a 0/1 map says what 1
                          * is), or NULL */
} abl_field_def;

/* One map of one simulation. */
typedef struct {
    const abl_field_def *def;
    char state_name[48];
    char result_path[96]; /* "/fields/..." (empty without flag RESULT) */
    char label[80];       /* result_path without "/fields/" (XDMF attribute name) */
    double threshold_C;   /* per-threshold maps: the threshold; NaN otherwise */
    void *slot;           /* where abl_sim keeps the pointer: double **, float ** or
                           * uint8_t ** by dtype */
    int from_state;       /* physics.initial_state_file: 1 if the state's map started this one,
                           * 0 if it started as in a fresh run; -1 without a state (the result's
                           * from_initial_state attribute) */
    const double *state_start; /* the state's map that started it (the scenario's), or NULL: a
                                * time map's bound is then its start + the time elapsed */
} abl_field;

/* The rows, in the order every consumer iterates them. */
extern const abl_field_def abl_field_table[];
extern const size_t abl_field_table_rows;

/* Instances of s's scenario into s->fields / s->nfields, each allocated and initialised.
 * Needs s->sc and s->grid. On failure everything allocated so far is left for
 * fields_destroy. */
abl_status fields_create(struct abl_sim *s, abl_error *err);
/* Frees every map and the instance list. */
void fields_destroy(struct abl_sim *s);

/* The map's current array (T and T_new swap every step: always read through the slot). */
void *field_data(const abl_field *f);
size_t field_elem_size(abl_dtype t);
/* The instance whose state name is name, or NULL. */
const abl_field *field_find(const struct abl_sim *s, const char *state_name);

/* Bytes per voxel of the maps a scenario with these options allocates. */
size_t fields_bytes_per_voxel(int freezing, int applicator, int n_hot, int n_cold);

#endif
