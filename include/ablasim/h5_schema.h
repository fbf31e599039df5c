/* h5_schema.h - every HDF5 dataset and attribute name, defined once (k-Wave MatrixNames.h). */
#ifndef ABLASIM_H5_SCHEMA_H
#define ABLASIM_H5_SCHEMA_H

#define H5_GRID "/grid"
#define H5_LABELS "/grid/labels"
#define H5_MATERIALS "/grid/materials"
#define H5_FIELDS "/fields"
#define H5_T_FINAL "/fields/T_final_C"
#define H5_T_MAX "/fields/T_max_C"
#define H5_T_MIN "/fields/T_min_C"
#define H5_OMEGA "/fields/damage_omega"
#define H5_CEM43 "/fields/cem43_min"
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
