"""ablasim_h5 - HDF5 names of ablasim's files for the scripts (results, margin files, sweep
tables, meshes): the constants of include/ablasim/h5_schema.h, same names, same values.

The schema test (tests/unit/test_schema.c, `make check`, suite "schema") parses both files and
fails on any constant that is missing here, extra here, or different: change the header and
this module together. *_FMT names are %-formats (the same in C printf and Python %).
Paths start with "/"; h5py accepts them on a file: f[H5_T_MAX], f[H5M_MARGIN][H5M_MARGIN_MM].
"""

# result file (OUT.h5: src/results/output.c; read by src/analysis/margin_io.c, scripts)
H5_GRID = "/grid"
H5_LABELS = "/grid/labels"
H5_MATERIALS = "/grid/materials"
H5_MATERIAL_NAMES = "/grid/material_names"
H5_FIELDS = "/fields"
H5_FIELD_T_FINAL = "T_final_C"
H5_FIELD_T_MAX = "T_max_C"
H5_FIELD_T_MIN = "T_min_C"
H5_FIELD_OMEGA = "damage_omega"
H5_FIELD_CEM43 = "cem43_min"
H5_FIELD_FREEZE_CYCLES = "freeze_cycles"
H5_FIELD_APPLICATOR = "applicator_mask"
H5_FIELD_TIME_ABOVE_PREFIX = "time_at_or_above_"
H5_FIELD_TIME_BELOW_PREFIX = "time_at_or_below_"
H5_FIELD_TIME_ABOVE_FMT = "time_at_or_above_%gC_s"  # %g: threshold [C]
H5_FIELD_TIME_BELOW_FMT = "time_at_or_below_%gC_s"  # %g: threshold [C]
H5_T_FINAL = "/fields/T_final_C"
H5_T_MAX = "/fields/T_max_C"
H5_T_MIN = "/fields/T_min_C"
H5_OMEGA = "/fields/damage_omega"
H5_CEM43 = "/fields/cem43_min"
H5_FREEZE_CYCLES = "/fields/freeze_cycles"
H5_APPLICATOR = "/fields/applicator_mask"
H5_SNAPSHOTS = "/snapshots"
H5_SNAP_T = "/snapshots/T_C"
H5_SNAP_TIME = "/snapshots/time_s"
H5_SNAP_FRAMES = "/snapshots/frames"
H5_SNAP_FRAME_FMT = "/snapshots/frames/T_C_%06lu"  # %06lu: snapshot index
H5_ISOTHERMS = "/isotherms"
H5_GROWTH_FMT = "%s/growth"  # %s: /isotherms or a /zones group
H5_ENERGY = "/energy"
H5_SOLVER = "/solver"
H5_PROFILE = "/profile"
H5_PROFILE_KERNELS = "/profile/kernels"
H5_SOURCES = "/sources"
H5_SOURCE_FMT = "/sources/%s"  # %s: source name made HDF5-safe and unique
H5_ZONES = "/zones"
H5_ZONE_FMT = "/zones/%s"  # %s: source name [+ _<axis> | _cluster]
H5_PROBES = "/probes"
H5_PROBES_TIME = "/probes/time_s"
H5_PROBE_FMT = "/probes/%s"  # %s: probe name
# datasets inside /isotherms, /zones/<axis>, their growth groups and /sources/<name>:
# <kind>_<column> (H5_KIND_COL_FMT)
H5_GROWTH = "growth"
H5_DS_TIME = "time_s"
H5_DS_POWER = "power_W"
H5_KIND_HOT = "hot"
H5_KIND_COLD = "cold"
H5_KIND_OMEGA = "omega_ge_1"
H5_KIND_DAMAGE_OMEGA = "damage_omega_ge_1"
H5_KIND_CEM43 = "cem43_ge_240min"
H5_KIND_COL_FMT = "%s_%s"
H5_COL_THRESHOLD = "threshold_C"
H5_COL_LENGTH = "length_mm"
H5_COL_DIAMETER = "diameter_mm"
H5_COL_DIAMETER_MIN = "diameter_min_mm"
H5_COL_DIAMETER_EQ = "diameter_equivalent_mm"
H5_COL_VOLUME = "volume_mL"
H5_COL_LARGEST = "largest_component_volume_mL"
H5_COL_VOLUME_PV = "volume_subvoxel_mL"
H5_COL_VOLUME_TOTAL = "volume_total_mL"
H5_COL_VOLUME_PER_MATERIAL = "volume_per_material_mL"
H5A_UNITS = "units"
H5A_DEFINITION = "definition"
H5A_SPACING_MM = "spacing_mm"
H5A_ORIGIN_MM = "origin_mm"
H5A_TIME_S = "time_s"
H5A_DT_S = "dt_s"
H5A_VERSION = "ablasim_version"
H5A_SCENARIO = "scenario_yaml"
H5A_SCENARIO_NAME = "scenario_name"
H5A_RUN_ID = "run_id"
H5A_COMPLETE = "complete"  # int64 on /: 1 finished, 0 partial result
H5A_FAILURE = "failure"  # string on / of a partial result
H5A_THRESHOLD_C = "threshold_C"  # float64 on a per-threshold /fields map
# attributes of the result file written by src/results/output.c
H5A_AXES = "axes"
H5A_AXIS = "axis"
H5A_COMPILER = "compiler"
H5A_DELIVERED_ENERGY_J = "delivered_energy_J"
H5A_DIRECTION = "direction"
H5A_DT_STABLE_S = "dt_stable_s"
H5A_HISTORY_FROM_S = "history_from_s"
H5A_INTERVAL_S = "interval_s"
H5A_KIND = "kind"
H5A_MONITOR_INTERVAL_S = "monitor_interval_s"
H5A_OMP_THREADS = "omp_threads"
H5A_PHASES = "phases"
H5A_KERNELS = "kernels"
H5A_POSITION_MM = "position_mm"
H5A_POWER_DEFINITION = "power_definition"
H5A_PRECONDITIONER = "preconditioner"
H5A_ROWS = "rows"
H5A_SCENARIO_PATH = "scenario_path"
H5A_SCHEME = "scheme"
H5A_SOLVER_TOLERANCE = "solver_tolerance"
H5A_SOURCE = "source"
H5A_SOURCE_NAME = "source_name"
H5A_STEPS = "steps"
H5A_TIME_SCHEME = "time_scheme"
H5A_TIP_MM = "tip_mm"
H5A_TYPE = "type"
H5A_UNITS_NOTE = "units_note"
H5A_VOXEL_VOLUME_ML = "voxel_volume_mL"
H5A_WALL_TIME_S = "wall_time_s"

# margin file (OUT.margin.h5: src/analysis/margin_io.c; read by scripts/ablasim_report.py,
H5M_MARGIN = "/margin"
H5M_ZONES = "/zones"
H5M_CRITICAL = "/critical"
H5M_TUMOUR_MASK_NAME = "tumour_mask"
H5M_TUMOUR_MASK = "/grid/tumour_mask"
H5M_SEGMENTATION = "segmentation"  # in /zones, margin from segmentations
H5M_MARGIN_MM = "margin_mm"
H5M_SHELL_MASK = "shell_mask"
H5M_SURFACE_MARGIN_MM = "surface_margin_mm"
H5M_SURFACE_VOXEL_IJK = "surface_voxel_ijk"
H5M_CRITERION_MM = "criterion_mm"
H5M_MINIMAL_MARGIN_MM = "minimal_margin_mm"
H5M_MINIMAL_MARGIN_LOCATION_MM = "minimal_margin_location_mm"
H5M_RESOLUTION_MM = "resolution_mm"
H5M_SURFACE_FRACTION = "surface_fraction_meeting_criterion"
H5M_TUMOUR_VOLUME_ML = "tumour_volume_mL"
H5M_ZONE_VOLUME_ML = "zone_volume_mL"
H5M_RESIDUAL_ML = "residual_unablated_tumour_volume_mL"
H5M_SHELL_UNABLATED_ML = "shell_unablated_volume_mL"
H5M_SHELL_VOLUME_ML = "shell_volume_mL"
H5M_MINIMAL_MARGIN_VOXEL_IJK = "minimal_margin_voxel_ijk"
H5M_ZONE_TOUCHES_BOUNDARY = "zone_touches_grid_boundary"
H5M_VERDICT = "verdict"  # string dataset in /margin; string attribute on /
H5MA_SELECTED = "selected"  # on /zones: name of the zone dataset the verdict used
H5MA_THRESHOLD = "threshold"  # on a /zones mask: the criterion's threshold
H5MA_THRESHOLD_UNITS = "threshold_units"  # on a /zones mask: its unit
H5MA_FIELD = "field"  # on a /zones mask: the result field it thresholds
H5MA_VOLUME_ML = "volume_mL"  # on a /zones mask
H5MA_MODE = "mode"  # on /: "result" or "segmentations"
H5MA_MARGIN_VERDICT = "margin_verdict"  # on /: the margin's verdict alone
H5MA_CRITICAL_CROSSED = "critical_limits_crossed"  # on /: how many critical limits crossed
H5MA_INPUT_COMPLETE = "input_complete"  # on /: 1, or 0 with input_note
H5MA_INPUT_NOTE = "input_note"  # on /
H5MA_TUMOUR = "tumour"
H5MA_VERDICT_RULE = "verdict_rule"
H5MA_PASS_RULE = "pass_rule"
H5MA_NONFINITE_VALUES = "nonfinite_values"
H5MA_DEFINITIONS = "definitions"
H5MA_AFFINE_MM = "affine_mm"
H5MA_NIFTI_AFFINE_MM = "nifti_affine_mm"
H5MA_NIFTI_NOTE = "nifti_note"
H5MA_SURFACE_VOXELS = "surface_voxels"
H5MC_LIMIT_TMAX = "limit_T_max_below_C"  # /critical/TISSUE datasets:
H5MC_LIMIT_TMIN = "limit_T_min_above_C"
H5MC_VOLUME_ML = "volume_mL"
H5MC_T_MAX = "T_max_C"
H5MC_T_MIN = "T_min_C"
H5MC_HOT_CROSSED_ML = "hot_limit_crossed_volume_mL"
H5MC_COLD_CROSSED_ML = "cold_limit_crossed_volume_mL"
H5MC_TIME_ABOVE_MAX_S = "time_at_or_above_limit_max_s"
H5MC_TIME_BELOW_MAX_S = "time_at_or_below_limit_max_s"
H5MC_DAMAGED_ML = "damaged_volume_mL"
H5MC_NONFINITE = "nonfinite_voxels"
H5MC_LIMIT_CROSSED = "limit_crossed"

# sweep table (DIR/results.h5: src/sweep/sweep_table.c)
H5S_TABLE = "/table"
H5S_UNCERTAINTY = "/uncertainty"
H5SA_FINGERPRINT = "fingerprint"  # uint64 on /: the sweep's fingerprint
H5SA_SWEEP_YAML = "sweep_yaml"
H5SA_SWEEP_PATH = "sweep_path"
H5SA_BASE_SCENARIO = "base_scenario"
H5SA_NPOINTS = "npoints"
H5SA_ABLATION_THRESHOLD_C = "ablation_threshold_C"
H5SA_MEANING = "meaning"
H5S_COLUMN_NAMES = "column_names"
H5S_POINT = "point"
H5S_STATUS = "status"
H5S_MESSAGE = "message"
H5S_SET_ARGS = "set_args"
H5S_PROBABILITY_ABLATION = "probability_ablation"
H5S_ABLATION_COUNT = "ablation_count"
H5S_PROBABILITY_VERDICT_PASS = "probability_verdict_pass"

# mesh file (meshes/: src/formats/mesh.c)
H5_MESH_LABELS = "/labels"
H5A_LABEL_NAMES = "label_names"
