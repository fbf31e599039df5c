/* field_rows.h - the rows of the field table (fields.h): every per-voxel state and running map
 * of a simulation, one line each.
 *
 * This list is the only place a map is declared. sim.h expands it into abl_sim's pointers (the
 * names the hot loops use, s->T_max ...), fields.c into abl_field_table (allocation, freeing,
 * checkpoint, resume range checks, the result's /fields group and the XDMF sidecar iterate
 * over that). Adding a running map is one ROW here plus its update rule (docs/ARCHITECTURE.md
 * "Adding a running map").
 *
 * ROW(member, array, dtype, state_name, result_name, units, flags, presence, init, range,
 *     meaning)
 *   member      abl_sim's pointer (the C type follows from dtype: ABL_CTYPE)
 *   array       empty, or [ABL_MAX_THRESHOLDS] for one map per hot/cold threshold
 *   dtype       element type in memory, checkpoint and result (fields.h abl_dtype)
 *   state_name  checkpoint dataset /state/<name> ("%d": the threshold's index)
 *   result_name dataset /fields/<name> with flag ABL_FIELD_RESULT, else NULL ("%g": the
 *               threshold in C). Names other code reads (margin analysis, scripts) are
 *               h5_schema.h constants; a map nothing else reads may name itself here.
 *   units       the result dataset's units attribute
 *   flags       ABL_FIELD_CHECKPOINT | ABL_FIELD_RESULT | ABL_FIELD_XDMF
 *   presence, init, range: fields.h abl_field_presence, abl_field_init, abl_field_range
 *   meaning     the result dataset's "meaning" attribute (what 1 is in a 0/1 map), or NULL;
 *               units stay a unit ("1"), which scripts and initial_state_file read (session
 *               29: the two flag maps held their sentence in units)
 *
 * The order of the rows is the order of the result's /fields group, the XDMF attributes and the
 * checkpoint's /state datasets.
 */
#ifndef ABLASIM_FIELD_ROWS_H
#define ABLASIM_FIELD_ROWS_H

#include "ablasim/h5_schema.h"

/* C element type of an abl_dtype (token pasting: ABL_CTYPE(ABL_DT_F32) is float). */
#define ABL_CTYPE_ABL_DT_F64 double
#define ABL_CTYPE_ABL_DT_F32 float
#define ABL_CTYPE_ABL_DT_U8 uint8_t
#define ABL_CTYPE(dtype) ABL_CTYPE_##dtype

#define ABL_FIELD_ROWS(ROW)                                                                     \
    /* temperature now (the result's T_final_C) and the step's scratch copy (swapped every    \
     * step: always read through the slot) */                                                 \
    ROW(T, , ABL_DT_F64, "T_C", H5_FIELD_T_FINAL, "degC",                                     \
        ABL_FIELD_CHECKPOINT | ABL_FIELD_RESULT | ABL_FIELD_XDMF, ABL_FIELD_ALWAYS,            \
        ABL_INIT_T_INITIAL, ABL_RANGE_TEMPERATURE, NULL)                                        \
    ROW(T_new, , ABL_DT_F64, "T_new_C", NULL, "degC", 0, ABL_FIELD_ALWAYS, ABL_INIT_T_INITIAL, \
        ABL_RANGE_TEMPERATURE, NULL)                                                            \
    /* extreme temperatures since t = 0 (monitor_update): the hot and cold zones */            \
    ROW(T_max, , ABL_DT_F64, "T_max_C", H5_FIELD_T_MAX, "degC",                                \
        ABL_FIELD_CHECKPOINT | ABL_FIELD_RESULT | ABL_FIELD_XDMF, ABL_FIELD_ALWAYS,            \
        ABL_INIT_T_INITIAL, ABL_RANGE_TEMPERATURE, NULL)                                        \
    ROW(T_min, , ABL_DT_F64, "T_min_C", H5_FIELD_T_MIN, "degC",                                \
        ABL_FIELD_CHECKPOINT | ABL_FIELD_RESULT | ABL_FIELD_XDMF, ABL_FIELD_ALWAYS,            \
        ABL_INIT_T_INITIAL, ABL_RANGE_TEMPERATURE, NULL)                                        \
    /* Arrhenius damage integral [1] and CEM43 thermal dose [min] (damage_update); in the      \
     * XDMF since session 28 (ParaView users could not see the Omega >= 1 zone) */             \
    ROW(omega, , ABL_DT_F64, "damage_omega", H5_FIELD_OMEGA, "1",                              \
        ABL_FIELD_CHECKPOINT | ABL_FIELD_RESULT | ABL_FIELD_XDMF, ABL_FIELD_ALWAYS,            \
        ABL_INIT_ZERO, ABL_RANGE_NONNEG, NULL)                                                  \
    ROW(cem43_min, , ABL_DT_F64, "cem43_min", H5_FIELD_CEM43, "min",                           \
        ABL_FIELD_CHECKPOINT | ABL_FIELD_RESULT | ABL_FIELD_XDMF, ABL_FIELD_ALWAYS,            \
        ABL_INIT_ZERO, ABL_RANGE_NONNEG, NULL)                                                  \
    /* times each voxel froze (fell below the freezing range) and thawed again, and the       \
     * hysteresis state of that count (count_freezes in sim.c; in the result, so that         \
     * physics.initial_state_file continues the count exactly); NULL unless freezing is        \
     * modelled (physics.freezing) */                                                          \
    ROW(freeze_cycles, , ABL_DT_F32, "freeze_cycles", H5_FIELD_FREEZE_CYCLES, "1",             \
        ABL_FIELD_CHECKPOINT | ABL_FIELD_RESULT | ABL_FIELD_XDMF, ABL_FIELD_IF_FREEZING,       \
        ABL_INIT_ZERO, ABL_RANGE_NONNEG, NULL)                                                  \
    ROW(frozen_now, , ABL_DT_U8, "frozen_now", H5_FIELD_FROZEN_STATE, "1",                    \
        ABL_FIELD_CHECKPOINT | ABL_FIELD_RESULT, ABL_FIELD_IF_FREEZING, ABL_INIT_ZERO,         \
        ABL_RANGE_FLAG,                                                                        \
        "1 while a voxel that fell below the solidus has not thawed above the liquidus")       \
    /* the needle track: 1 where a modality source (electrode, probe) held the voxel at a      \
     * temperature (mark_applicator in sim.c), counted as ablated by the margin analysis;      \
     * NULL without such sources */                                                            \
    ROW(applicator, , ABL_DT_U8, "applicator_mask", H5_FIELD_APPLICATOR, "1",                 \
        ABL_FIELD_CHECKPOINT | ABL_FIELD_RESULT | ABL_FIELD_XDMF, ABL_FIELD_IF_APPLICATOR,     \
        ABL_INIT_ZERO, ABL_RANGE_FLAG,                                                         \
        "1 where an electrode or probe held the voxel at a temperature")                       \
    /* time [s] at or above each hot threshold, at or below each cold one (monitor_update) */ \
    ROW(t_hot, [ABL_MAX_THRESHOLDS], ABL_DT_F32, "t_hot_%d_s", H5_FIELD_TIME_ABOVE_FMT, "s",   \
        ABL_FIELD_CHECKPOINT | ABL_FIELD_RESULT | ABL_FIELD_XDMF, ABL_FIELD_PER_HOT,           \
        ABL_INIT_ZERO, ABL_RANGE_ELAPSED, NULL)                                                 \
    ROW(t_cold, [ABL_MAX_THRESHOLDS], ABL_DT_F32, "t_cold_%d_s", H5_FIELD_TIME_BELOW_FMT, "s", \
        ABL_FIELD_CHECKPOINT | ABL_FIELD_RESULT | ABL_FIELD_XDMF, ABL_FIELD_PER_COLD,          \
        ABL_INIT_ZERO, ABL_RANGE_ELAPSED, NULL)

#endif
