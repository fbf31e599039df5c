/* fields.c - the field table (fields.h): the rows, and their instances for one scenario.
 *
 * The order of the rows is the order of the result's /fields group, the XDMF attributes and the
 * checkpoint's /state datasets. To add a running map: a row in field_rows.h (it declares
 * abl_sim's pointer and this table's entry) and its update rule (kernels/monitor.c or the
 * driver); allocation, freeing, checkpoint, resume checks, result and XDMF follow from it.
 */
#include "ablasim/fields.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ablasim/field_rows.h"
#include "ablasim/h5_schema.h"
#include "ablasim/sim.h"

/* One abl_field_def per row of field_rows.h; `member` is where abl_sim keeps the pointer (or
 * the per-threshold pointer array) that sim.h declares from the same row. */
#define ABL_FIELD_DEF(member, array, dtype, state_name, result_name, units, flags, presence,    \
                      init, range, meaning)                                                     \
    {state_name, result_name, units, dtype, flags, presence, init, range,                      \
     offsetof(abl_sim, member), meaning},
const abl_field_def abl_field_table[] = {ABL_FIELD_ROWS(ABL_FIELD_DEF)};
#undef ABL_FIELD_DEF
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

/* The map a scenario's initial state file gives instance f (threshold index h), or NULL. */
static const abl_field_file *state_map(const abl_scenario *sc, const abl_field *f, int h)
{
    const abl_field_def *d = f->def;
    if (!sc->initial_is_state || !d->result_name) return NULL;
    static const char *const map_rows[ABL_INITIAL_MAPS] = {H5_FIELD_T_MAX, H5_FIELD_T_MIN,
                                                           H5_FIELD_OMEGA, H5_FIELD_CEM43};
    for (int m = 0; m < ABL_INITIAL_MAPS; m++)
        if (!strcmp(d->result_name, map_rows[m])) return &sc->initial_maps[m];
    if (!strcmp(d->result_name, H5_FIELD_T_FINAL)) return &sc->initial_T;
    if (!strcmp(d->result_name, H5_FIELD_APPLICATOR)) return &sc->initial_applicator;
    if (!strcmp(d->result_name, H5_FIELD_FREEZE_CYCLES)) return &sc->initial_freeze_cycles;
    if (!strcmp(d->result_name, H5_FIELD_FROZEN_STATE)) return &sc->initial_frozen_state;
    if (d->presence == ABL_FIELD_PER_HOT) return &sc->initial_hot[h];
    if (d->presence == ABL_FIELD_PER_COLD) return &sc->initial_cold[h];
    return NULL;
}

static abl_status alloc_one(abl_sim *s, abl_field *f, int h, abl_error *err)
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
    /* fields given by the scenario (their dims were checked in build_grid): the temperature
     * starts every row whose initial value is the initial temperature, unless the initial
     * state file has the row's own map (physics.initial_state_file: the running maps, the
     * needle track, the time maps of the same thresholds, the freeze counts) */
    const abl_scenario *sc = s->sc;
    const abl_field_file *src = state_map(sc, f, h);
    const double *T0 = src && src->values ? src->values
                       : d->init == ABL_INIT_T_INITIAL ? sc->initial_T.values
                                                        : NULL;
    f->from_state = !sc->initial_is_state ? -1 : src && src->values ? 1 : 0;
    f->state_start = src && src->values ? src->values : NULL;
    const size_t n = s->grid.n;
    if (T0 && d->dtype == ABL_DT_F64)
        memcpy(p, T0, n * sizeof *T0);
    else if (T0 && d->dtype == ABL_DT_F32)
        for (size_t c = 0; c < n; c++) ((float *)p)[c] = (float)T0[c];
    else if (T0) /* 0/1 maps, checked at load */
        for (size_t c = 0; c < n; c++) ((uint8_t *)p)[c] = T0[c] != 0.0;
    /* a state written before the freeze counter's flag was in the result (it has the counts
     * but not frozen_state): a voxel below the solidus is frozen now; one inside the freezing
     * range is taken as not frozen (the flag cannot be recovered there) */
    if (f->from_state == 0 && d->result_name && !strcmp(d->result_name, H5_FIELD_FROZEN_STATE) &&
        sc->initial_freeze_cycles.values) {
        for (size_t c = 0; c < n; c++)
            ((uint8_t *)p)[c] = sc->initial_T.values[c] < sc->freeze_solidus_C;
    }
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
            abl_status st = alloc_one(s, f, h, err);
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
