/* fields.c - the field table (fields.h): the rows, and their instances for one scenario.
 *
 * The order of the rows is the order of the result's /fields group, the XDMF attributes and the
 * checkpoint's /state datasets. To add a running map: a pointer in abl_sim (sim.h), a row here,
 * and its update rule (kernels/monitor.c or the driver); allocation, freeing, checkpoint,
 * resume checks, result and XDMF follow from the row.
 */
#include "ablasim/fields.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ablasim/h5_schema.h"
#include "ablasim/sim.h"

#define CKPT ABL_FIELD_CHECKPOINT
#define RES ABL_FIELD_RESULT
#define XDMF ABL_FIELD_XDMF

const abl_field_def abl_field_table[] = {
    /* temperature now (the result's T_final_C) and the step's scratch copy (swapped) */
    {"T_C", H5_FIELD_T_FINAL, "degC", ABL_DT_F64, CKPT | RES | XDMF, ABL_FIELD_ALWAYS,
     ABL_INIT_T_INITIAL, ABL_RANGE_TEMPERATURE, offsetof(abl_sim, T)},
    {"T_new_C", NULL, "degC", ABL_DT_F64, 0, ABL_FIELD_ALWAYS, ABL_INIT_T_INITIAL,
     ABL_RANGE_TEMPERATURE, offsetof(abl_sim, T_new)},
    /* extreme temperatures since t = 0 (monitor_update): the hot and cold zones */
    {"T_max_C", H5_FIELD_T_MAX, "degC", ABL_DT_F64, CKPT | RES | XDMF, ABL_FIELD_ALWAYS,
     ABL_INIT_T_INITIAL, ABL_RANGE_TEMPERATURE, offsetof(abl_sim, T_max)},
    {"T_min_C", H5_FIELD_T_MIN, "degC", ABL_DT_F64, CKPT | RES | XDMF, ABL_FIELD_ALWAYS,
     ABL_INIT_T_INITIAL, ABL_RANGE_TEMPERATURE, offsetof(abl_sim, T_min)},
    /* Arrhenius damage integral and CEM43 thermal dose (damage_update) */
    {"damage_omega", H5_FIELD_OMEGA, "1", ABL_DT_F64, CKPT | RES, ABL_FIELD_ALWAYS, ABL_INIT_ZERO,
     ABL_RANGE_NONNEG, offsetof(abl_sim, omega)},
    {"cem43_min", H5_FIELD_CEM43, "min", ABL_DT_F64, CKPT | RES, ABL_FIELD_ALWAYS, ABL_INIT_ZERO,
     ABL_RANGE_NONNEG, offsetof(abl_sim, cem43_min)},
    /* freeze-thaw cycles and their hysteresis state (count_freezes in sim.c) */
    {"freeze_cycles", H5_FIELD_FREEZE_CYCLES, "1", ABL_DT_F32, CKPT | RES | XDMF, ABL_FIELD_IF_FREEZING,
     ABL_INIT_ZERO, ABL_RANGE_NONNEG, offsetof(abl_sim, freeze_cycles)},
    {"frozen_now", NULL, "1", ABL_DT_U8, CKPT, ABL_FIELD_IF_FREEZING, ABL_INIT_ZERO,
     ABL_RANGE_FLAG, offsetof(abl_sim, frozen_now)},
    /* the needle track: voxels a modality source held (mark_applicator in sim.c) */
    {"applicator_mask", H5_FIELD_APPLICATOR,
     "1 where an electrode or probe held the voxel at a temperature", ABL_DT_U8, CKPT | RES,
     ABL_FIELD_IF_APPLICATOR, ABL_INIT_ZERO, ABL_RANGE_FLAG, offsetof(abl_sim, applicator)},
    /* time at or above each hot threshold, at or below each cold one (monitor_update) */
    {"t_hot_%d_s", H5_FIELD_TIME_ABOVE_FMT, "s", ABL_DT_F32, CKPT | RES | XDMF,
     ABL_FIELD_PER_HOT, ABL_INIT_ZERO, ABL_RANGE_ELAPSED, offsetof(abl_sim, t_hot)},
    {"t_cold_%d_s", H5_FIELD_TIME_BELOW_FMT, "s", ABL_DT_F32, CKPT | RES | XDMF,
     ABL_FIELD_PER_COLD, ABL_INIT_ZERO, ABL_RANGE_ELAPSED, offsetof(abl_sim, t_cold)},
};
const size_t abl_field_table_rows = sizeof abl_field_table / sizeof abl_field_table[0];

size_t field_elem_size(abl_dtype t)
{
    return t == ABL_DT_F64 ? 8 : t == ABL_DT_F32 ? 4 : 1;
}

/* Size of the pointer a row's slot holds (the stride of a per-threshold pointer array). */
static size_t pointer_size(abl_dtype t)
{
    return t == ABL_DT_F64 ? sizeof(double *) : t == ABL_DT_F32 ? sizeof(float *)
                                                                : sizeof(uint8_t *);
}

void *field_data(const abl_field *f)
{
    switch (f->def->dtype) {
    case ABL_DT_F64: return *(double **)f->slot;
    case ABL_DT_F32: return *(float **)f->slot;
    default: return *(uint8_t **)f->slot;
    }
}

/* A modality source (electrode, probe) can hold voxels: the applicator mask exists. */
static int has_applicator(const abl_scenario *sc)
{
    for (int i = 0; i < sc->nsources; i++)
        if (sc->sources[i].type == SRC_MODALITY) return 1;
    return 0;
}

/* How many instances row d has for a scenario with these options. */
static int row_count(const abl_field_def *d, int freezing, int applicator, int n_hot, int n_cold)
{
    switch (d->presence) {
    case ABL_FIELD_ALWAYS: return 1;
    case ABL_FIELD_IF_FREEZING: return freezing != 0;
    case ABL_FIELD_IF_APPLICATOR: return applicator != 0;
    case ABL_FIELD_PER_HOT: return n_hot;
    default: return n_cold;
    }
}

size_t fields_bytes_per_voxel(int freezing, int applicator, int n_hot, int n_cold)
{
    size_t b = 0;
    for (size_t r = 0; r < abl_field_table_rows; r++) {
        const abl_field_def *d = &abl_field_table[r];
        b += (size_t)row_count(d, freezing, applicator, n_hot, n_cold) * field_elem_size(d->dtype);
    }
    return b;
}

static abl_status alloc_one(abl_sim *s, abl_field *f, abl_error *err)
{
    const abl_field_def *d = f->def;
    const double fill = d->init == ABL_INIT_T_INITIAL ? s->sc->T_initial_C : 0.0;
    void *p = NULL;
    switch (d->dtype) {
    case ABL_DT_F64: p = *(double **)f->slot = grid_alloc_field(&s->grid, fill); break;
    case ABL_DT_F32: p = *(float **)f->slot = grid_alloc_field_f(&s->grid, (float)fill); break;
    default: p = *(uint8_t **)f->slot = grid_alloc_labels(&s->grid, (uint8_t)fill); break;
    }
    if (!p)
        return abl_fail(err, ABL_ENOMEM, "out of memory allocating fields for %zu voxels",
                        s->grid.n);
    return ABL_OK;
}

abl_status fields_create(abl_sim *s, abl_error *err)
{
    const abl_scenario *sc = s->sc;
    const int app = has_applicator(sc);
    size_t n = 0;
    for (size_t r = 0; r < abl_field_table_rows; r++)
        n += (size_t)row_count(&abl_field_table[r], sc->freezing, app, sc->n_hot, sc->n_cold);
    s->fields = calloc(n, sizeof *s->fields);
    if (!s->fields) return abl_fail(err, ABL_ENOMEM, "out of memory");
    for (size_t r = 0; r < abl_field_table_rows; r++) {
        const abl_field_def *d = &abl_field_table[r];
        const int cnt = row_count(d, sc->freezing, app, sc->n_hot, sc->n_cold);
        const int per = d->presence == ABL_FIELD_PER_HOT || d->presence == ABL_FIELD_PER_COLD;
        for (int h = 0; h < cnt; h++) {
            abl_field *f = &s->fields[s->nfields];
            f->def = d;
            f->threshold_C = !per                                ? NAN
                             : d->presence == ABL_FIELD_PER_HOT ? sc->hot_C[h]
                                                                 : sc->cold_C[h];
            /* the pointer, or pointer h of the per-threshold array */
            f->slot = (char *)s + d->member + (size_t)h * pointer_size(d->dtype);
            if (per)
                snprintf(f->state_name, sizeof f->state_name, d->state_name, h);
            else
                snprintf(f->state_name, sizeof f->state_name, "%s", d->state_name);
            if (d->flags & ABL_FIELD_RESULT) {
                if (per)
                    snprintf(f->label, sizeof f->label, d->result_name, f->threshold_C);
                else
                    snprintf(f->label, sizeof f->label, "%s", d->result_name);
                snprintf(f->result_path, sizeof f->result_path, "%s/%s", H5_FIELDS, f->label);
            }
            s->nfields++;
            abl_status st = alloc_one(s, f, err);
            if (st) return st;
        }
    }
    return ABL_OK;
}

void fields_destroy(abl_sim *s)
{
    for (int i = 0; i < s->nfields; i++) {
        grid_free_field(field_data(&s->fields[i]));
        switch (s->fields[i].def->dtype) {
        case ABL_DT_F64: *(double **)s->fields[i].slot = NULL; break;
        case ABL_DT_F32: *(float **)s->fields[i].slot = NULL; break;
        default: *(uint8_t **)s->fields[i].slot = NULL; break;
        }
    }
    free(s->fields);
    s->fields = NULL;
    s->nfields = 0;
}

const abl_field *field_find(const abl_sim *s, const char *state_name)
{
    for (int i = 0; i < s->nfields; i++)
        if (!strcmp(s->fields[i].state_name, state_name)) return &s->fields[i];
    return NULL;
}
