/* h5_schema.h - every HDF5 dataset and attribute name, defined once (k-Wave MatrixNames.h). */
#ifndef ABLASIM_H5_SCHEMA_H
#define ABLASIM_H5_SCHEMA_H

#define H5_GRID "/grid"
#define H5_LABELS "/grid/labels"
#define H5_MATERIALS "/grid/materials"
#define H5_FIELDS "/fields"
/* dataset names in /fields (the field table, fields.c, uses these; readers the full paths) */
#define H5_FIELD_T_FINAL "T_final_C"
#define H5_FIELD_T_MAX "T_max_C"
#define H5_FIELD_T_MIN "T_min_C"
#define H5_FIELD_OMEGA "damage_omega"
#define H5_FIELD_CEM43 "cem43_min"
#define H5_FIELD_FREEZE_CYCLES "freeze_cycles"
#define H5_FIELD_APPLICATOR "applicator_mask"
#define H5_FIELD_TIME_ABOVE_FMT "time_at_or_above_%gC_s" /* %g: threshold [C] */
#define H5_FIELD_TIME_BELOW_FMT "time_at_or_below_%gC_s"
#define H5_T_FINAL H5_FIELDS "/" H5_FIELD_T_FINAL
#define H5_T_MAX H5_FIELDS "/" H5_FIELD_T_MAX
#define H5_T_MIN H5_FIELDS "/" H5_FIELD_T_MIN
#define H5_OMEGA H5_FIELDS "/" H5_FIELD_OMEGA
#define H5_CEM43 H5_FIELDS "/" H5_FIELD_CEM43
#define H5_FREEZE_CYCLES H5_FIELDS "/" H5_FIELD_FREEZE_CYCLES
#define H5_APPLICATOR H5_FIELDS "/" H5_FIELD_APPLICATOR
#define H5_SNAPSHOTS "/snapshots"
#define H5_SNAP_T "/snapshots/T_C"
#define H5_ISOTHERMS "/isotherms"
#define H5_ENERGY "/energy"
#define H5_SOLVER "/solver"

#define H5A_UNITS "units"
#define H5A_SPACING_MM "spacing_mm"
#define H5A_ORIGIN_MM "origin_mm"
#define H5A_TIME_S "time_s"
#define H5A_DT_S "dt_s"
#define H5A_VERSION "ablasim_version"
#define H5A_SCENARIO "scenario_yaml"

#define H5_MESH_LABELS "/labels"
#define H5A_LABEL_NAMES "label_names"

#endif
