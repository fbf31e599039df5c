/* h5_schema.h - every HDF5 dataset, group and attribute name that one part of ablasim writes
 * and another (C, or the Python scripts in scripts/) reads, defined once (k-Wave MatrixNames.h). Writers and
 * readers use these constants; names built from a pattern are printf formats (*_FMT, with
 * what to substitute in a comment). The scripts read the same names from scripts/ablasim_h5.py,
 * which the schema test (tests/unit/test_schema.c, suite "schema") compares constant by
 * constant with this file: a change here must be made there too.
 *
 * Format of this file (the test parses it): one `#define NAME value` per line, value a
 * sequence of string literals and earlier names, optionally followed by a comment. */
#ifndef ABLASIM_H5_SCHEMA_H
#define ABLASIM_H5_SCHEMA_H

/* ---- result file (OUT.h5: src/results/output.c; read by src/analysis/margin_io.c, scripts) */
#define H5_GRID "/grid"
#define H5_LABELS H5_GRID "/labels"
#define H5_MATERIALS H5_GRID "/materials"
#define H5_MATERIAL_NAMES H5_GRID "/material_names"
#define H5_FIELDS "/fields"
/* dataset names in /fields (the field table, fields.c, uses these; readers the full paths) */
#define H5_FIELD_T_FINAL "T_final_C"
#define H5_FIELD_T_MAX "T_max_C"
#define H5_FIELD_T_MIN "T_min_C"
#define H5_FIELD_OMEGA "damage_omega"
#define H5_FIELD_CEM43 "cem43_min"
#define H5_FIELD_FREEZE_CYCLES "freeze_cycles"
#define H5_FIELD_APPLICATOR "applicator_mask"
#define H5_FIELD_FROZEN_STATE "frozen_state"
#define H5_FIELD_TIME_ABOVE_PREFIX "time_at_or_above_"
#define H5_FIELD_TIME_BELOW_PREFIX "time_at_or_below_"
#define H5_FIELD_TIME_ABOVE_FMT H5_FIELD_TIME_ABOVE_PREFIX "%gC_s" /* %g: threshold [C] */
#define H5_FIELD_TIME_BELOW_FMT H5_FIELD_TIME_BELOW_PREFIX "%gC_s" /* %g: threshold [C] */
#define H5_T_FINAL H5_FIELDS "/" H5_FIELD_T_FINAL
#define H5_T_MAX H5_FIELDS "/" H5_FIELD_T_MAX
#define H5_T_MIN H5_FIELDS "/" H5_FIELD_T_MIN
#define H5_OMEGA H5_FIELDS "/" H5_FIELD_OMEGA
#define H5_CEM43 H5_FIELDS "/" H5_FIELD_CEM43
#define H5_FREEZE_CYCLES H5_FIELDS "/" H5_FIELD_FREEZE_CYCLES
#define H5_APPLICATOR H5_FIELDS "/" H5_FIELD_APPLICATOR
#define H5_FROZEN_STATE H5_FIELDS "/" H5_FIELD_FROZEN_STATE
#define H5_SNAPSHOTS "/snapshots"
#define H5_SNAP_T H5_SNAPSHOTS "/T_C"
#define H5_SNAP_TIME H5_SNAPSHOTS "/time_s"
#define H5_SNAP_FRAMES H5_SNAPSHOTS "/frames"
#define H5_SNAP_FRAME_FMT H5_SNAP_FRAMES "/T_C_%06lu" /* %06lu: snapshot index */
#define H5_ISOTHERMS "/isotherms"
#define H5_GROWTH_FMT "%s/growth" /* %s: /isotherms or a /zones group */
#define H5_ENERGY "/energy"
#define H5_SOLVER "/solver"
#define H5_PROFILE "/profile" /* ablasim run --profile: per-phase timers (profile.h) */
#define H5_PROFILE_KERNELS H5_PROFILE "/kernels" /* the kernels timed inside the phases */
#define H5_DT_CHECK "/dt_check" /* ablasim run --dt-check: the half-step comparison (dtcheck.h) */
#define H5_SOURCES "/sources"
#define H5_SOURCE_FMT H5_SOURCES "/%s" /* %s: source name made HDF5-safe and unique */
#define H5_ZONES "/zones"
#define H5_ZONE_FMT H5_ZONES "/%s" /* %s: source name [+ _<axis> | _cluster] */
#define H5_PROBES "/probes"
#define H5_PROBES_TIME H5_PROBES "/time_s"
#define H5_PROBE_FMT H5_PROBES "/%s" /* %s: probe name */
/* Datasets inside /isotherms, /zones/<axis>, their growth groups and /sources/<name>: named
 * <kind>_<column> (H5_KIND_COL_FMT); kind hot or cold (one entry per threshold), omega_ge_1
 * (zones) or damage_omega_ge_1 / cem43_ge_240min (isotherms). */
#define H5_GROWTH "growth"
#define H5_DS_TIME "time_s"   /* growth rows; a source's run-log power series */
#define H5_DS_POWER "power_W" /* a source's run-log power series */
#define H5_KIND_HOT "hot"
#define H5_KIND_COLD "cold"
#define H5_KIND_OMEGA "omega_ge_1"
#define H5_KIND_DAMAGE_OMEGA "damage_omega_ge_1"
#define H5_KIND_CEM43 "cem43_ge_240min"
#define H5_KIND_COL_FMT "%s_%s" /* %s: kind, %s: column */
#define H5_COL_THRESHOLD "threshold_C"
#define H5_COL_LENGTH "length_mm"
#define H5_COL_DIAMETER "diameter_mm"
#define H5_COL_DIAMETER_MIN "diameter_min_mm"
#define H5_COL_DIAMETER_EQ "diameter_equivalent_mm"
#define H5_COL_VOLUME "volume_mL"
#define H5_COL_LARGEST "largest_component_volume_mL"
#define H5_COL_VOLUME_PV "volume_subvoxel_mL"
#define H5_COL_VOLUME_TOTAL "volume_total_mL"
#define H5_COL_VOLUME_PER_MATERIAL "volume_per_material_mL"

#define H5A_UNITS "units"
#define H5A_DEFINITION "definition"
#define H5A_SPACING_MM "spacing_mm"
#define H5A_ORIGIN_MM "origin_mm"
#define H5A_TIME_S "time_s"
#define H5A_DT_S "dt_s"
#define H5A_VERSION "ablasim_version"
#define H5A_SCENARIO "scenario_yaml"
#define H5A_SCENARIO_NAME "scenario_name"
#define H5A_RUN_ID "run_id"
#define H5A_PART_ID "partial_result_id" /* string on / while the result is written: a checkpoint records it */
#define H5A_COMPLETE "complete" /* int64 on /: 1 finished, 0 partial result */
#define H5A_FAILURE "failure"   /* string on / of a partial result */
#define H5A_THRESHOLD_C "threshold_C" /* float64 on a per-threshold /fields map */
#define H5A_FROM_INITIAL_STATE "from_initial_state" /* int64 on a /fields map a state can start */
/* attributes of the result file written by src/results/output.c (root, /grid/labels, /run,
 * /sources/NAME, /zones/NAME, /probes, /isotherms/growth, /profile) */
#define H5A_AXES "axes"
#define H5A_AXIS "axis"
#define H5A_COMPILER "compiler"
#define H5A_DELIVERED_ENERGY_J "delivered_energy_J"
#define H5A_DIRECTION "direction"
#define H5A_DT_STABLE_S "dt_stable_s"
#define H5A_HISTORY_FROM_S "history_from_s"
#define H5A_INTERVAL_S "interval_s"
#define H5A_KIND "kind"
#define H5A_MONITOR_INTERVAL_S "monitor_interval_s"
#define H5A_OMP_THREADS "omp_threads"
#define H5A_PHASES "phases"
#define H5A_ZONES "zones"
#define H5A_DT_REF_S "dt_ref_s"
#define H5A_STEPS_REF "steps_ref"
#define H5A_WALL_REF_S "wall_ref_s"
#define H5A_T_FINAL_DIFF_C "T_final_max_abs_diff_C"
#define H5A_T_MAX_DIFF_C "T_max_max_abs_diff_C"
#define H5A_T_MIN_DIFF_C "T_min_max_abs_diff_C"
#define H5A_KERNELS "kernels"
#define H5A_POSITION_MM "position_mm"
#define H5A_POWER_DEFINITION "power_definition"
#define H5A_PRECONDITIONER "preconditioner"
#define H5A_ROWS "rows"
#define H5A_SCENARIO_PATH "scenario_path"
/* string on /: the resolved names of the files the run read (scenario, tissue table, mesh,
 * initial field or state, device presets), one a line; margin refuses to write over them */
#define H5A_INPUT_FILES "input_files"
#define H5A_SCHEME "scheme"
#define H5A_SOLVER_TOLERANCE "solver_tolerance"
#define H5A_SOURCE "source"
#define H5A_SOURCE_NAME "source_name"
#define H5A_STEPS "steps"
#define H5A_TIME_SCHEME "time_scheme"
#define H5A_TIP_MM "tip_mm"
#define H5A_TYPE "type"
#define H5A_UNITS_NOTE "units_note"
#define H5A_VOXEL_VOLUME_ML "voxel_volume_mL"
#define H5A_WALL_TIME_S "wall_time_s"

/* ---- margin file (OUT.margin.h5: src/analysis/margin_io.c; read by scripts/ablasim_report.py,
 * scripts/side_margin.py) */
#define H5M_MARGIN "/margin"
#define H5M_ZONES "/zones"
#define H5M_CRITICAL "/critical"
#define H5M_TUMOUR_MASK_NAME "tumour_mask"
#define H5M_TUMOUR_MASK H5_GRID "/" H5M_TUMOUR_MASK_NAME
#define H5M_SEGMENTATION "segmentation" /* in /zones, margin from segmentations */
/* datasets in /margin */
#define H5M_MARGIN_MM "margin_mm"
#define H5M_SHELL_MASK "shell_mask"
#define H5M_SURFACE_MARGIN_MM "surface_margin_mm"
#define H5M_SURFACE_VOXEL_IJK "surface_voxel_ijk"
#define H5M_CRITERION_MM "criterion_mm"
#define H5M_MINIMAL_MARGIN_MM "minimal_margin_mm"
#define H5M_MINIMAL_MARGIN_LOCATION_MM "minimal_margin_location_mm"
#define H5M_RESOLUTION_MM "resolution_mm"
#define H5M_SURFACE_FRACTION "surface_fraction_meeting_criterion"
#define H5M_TUMOUR_VOLUME_ML "tumour_volume_mL"
#define H5M_ZONE_VOLUME_ML "zone_volume_mL"
#define H5M_RESIDUAL_ML "residual_unablated_tumour_volume_mL"
#define H5M_SHELL_UNABLATED_ML "shell_unablated_volume_mL"
#define H5M_SHELL_VOLUME_ML "shell_volume_mL"
#define H5M_MINIMAL_MARGIN_VOXEL_IJK "minimal_margin_voxel_ijk"
#define H5M_ZONE_TOUCHES_BOUNDARY "zone_touches_grid_boundary"
#define H5M_VERDICT "verdict" /* string dataset in /margin; string attribute on / */
#define H5MA_SELECTED "selected" /* on /zones: name of the zone dataset the verdict used */
#define H5MA_THRESHOLD "threshold" /* on a /zones mask: the criterion's threshold */
#define H5MA_THRESHOLD_UNITS "threshold_units" /* on a /zones mask: its unit */
#define H5MA_FIELD "field" /* on a /zones mask: the result field it thresholds */
#define H5MA_VOLUME_ML "volume_mL" /* on a /zones mask */
#define H5MA_MODE "mode" /* on /: "result" or "segmentations" */
#define H5MA_RESULT_RUN_ID "result_run_id" /* on /: the analysed result's run_id */
#define H5MA_MARGIN_VERDICT "margin_verdict" /* on /: the margin's verdict alone */
#define H5MA_CRITICAL_CROSSED "critical_limits_crossed" /* on /: how many critical limits crossed */
#define H5MA_INPUT_COMPLETE "input_complete" /* on /: 1, or 0 with input_note */
#define H5MA_INPUT_NOTE "input_note" /* on / */
#define H5MA_TUMOUR "tumour" /* on /: where the tumour came from */
#define H5MA_VERDICT_RULE "verdict_rule" /* on /: how margin and critical limits combine */
#define H5MA_PASS_RULE "pass_rule" /* on / and /margin: the margin's pass rule */
#define H5MA_NONFINITE_VALUES "nonfinite_values" /* on /, with input_note */
#define H5MA_DEFINITIONS "definitions" /* on /: where the quantities are defined */
#define H5MA_AFFINE_MM "affine_mm" /* on /grid: voxel (i,j,k,1) -> world mm */
#define H5MA_NIFTI_AFFINE_MM "nifti_affine_mm" /* on /grid: the tumour file's own affine */
#define H5MA_NIFTI_NOTE "nifti_note" /* on /grid */
#define H5MA_SURFACE_VOXELS "surface_voxels" /* scalar dataset in /margin */
#define H5MC_LIMIT_TMAX "limit_T_max_below_C" /* /critical/TISSUE datasets: */
#define H5MC_LIMIT_TMIN "limit_T_min_above_C"
#define H5MC_VOLUME_ML "volume_mL"
#define H5MC_T_MAX "T_max_C"
#define H5MC_T_MIN "T_min_C"
#define H5MC_HOT_CROSSED_ML "hot_limit_crossed_volume_mL"
#define H5MC_COLD_CROSSED_ML "cold_limit_crossed_volume_mL"
#define H5MC_TIME_ABOVE_MAX_S "time_at_or_above_limit_max_s"
#define H5MC_TIME_BELOW_MAX_S "time_at_or_below_limit_max_s"
#define H5MC_DAMAGED_ML "damaged_volume_mL"
#define H5MC_NONFINITE "nonfinite_voxels"
#define H5MC_LIMIT_CROSSED "limit_crossed"

/* ---- sweep table (DIR/results.h5: src/sweep/sweep_table.c) */
#define H5S_TABLE "/table"
#define H5S_UNCERTAINTY "/uncertainty"
#define H5SA_FINGERPRINT "fingerprint" /* uint64 on /: the sweep's fingerprint */
#define H5SA_SWEEP_YAML "sweep_yaml" /* on /: the sweep file's text */
#define H5SA_SWEEP_PATH "sweep_path"
#define H5SA_BASE_SCENARIO "base_scenario"
#define H5SA_NPOINTS "npoints" /* on / and on probability_ablation */
#define H5SA_ABLATION_THRESHOLD_C "ablation_threshold_C"
#define H5SA_MEANING "meaning" /* on probability_ablation and the 0/1 field maps */
#define H5S_COLUMN_NAMES "column_names" /* datasets in /table (and one per column) */
#define H5S_POINT "point"
#define H5S_STATUS "status"
#define H5S_MESSAGE "message"
#define H5S_SET_ARGS "set_args"
#define H5S_PROBABILITY_ABLATION "probability_ablation" /* datasets in /uncertainty */
#define H5S_ABLATION_COUNT "ablation_count"
#define H5S_PROBABILITY_VERDICT_PASS "probability_verdict_pass"

/* ---- mesh file (meshes/: src/formats/mesh.c) */
#define H5_MESH_LABELS "/labels"
#define H5A_LABEL_NAMES "label_names"

#endif
