/* testutil.h - shared helpers for the CUnit suites. */
#ifndef ABLASIM_TESTUTIL_H
#define ABLASIM_TESTUTIL_H

#include <CUnit/CUnit.h>

#include "ablasim/scenario.h"
#include "ablasim/sim.h"

/* Repository root (ABLASIM_ROOT, set by make check; "." otherwise). */
const char *tu_root(void);
/* Per-run scratch directory, created on first use, removed at exit. */
const char *tu_tmpdir(void);
/* Scenario from YAML text; tissues_file resolves against <root>/configs. Fails the test and
 * returns NULL on error (printing the message). */
abl_scenario *tu_scenario(const char *yaml, const char *const *sets, int nsets);
/* Planned simulation of sc; fails the test (fatally) with sim_create's message. */
abl_sim *tu_sim(abl_scenario *sc);
/* Source i's contribution for a step starting at t_s on the sim's current temperatures
 * (a full update, not pins_only); fails the test fatally on an error. */
abl_source_contrib tu_source_update(abl_sim *s, int i, double t_s);
/* Max-norm of a - b over n values. */
double tu_maxdiff(const double *a, const double *b, size_t n);

void register_config_tests(void);
void register_kernel_tests(void);
void register_analytic_tests(void);
void register_energy_tests(void);
void register_property_tests(void);
void register_spectral_tests(void);
void register_cli_tests(void);
void register_output_mesh_tests(void);
void register_margin_tests(void);
void register_nifti_tests(void);
void register_phantom_tests(void);
void register_sweep_tests(void);
void register_mwa_tests(void);
void register_rfa_tests(void);
void register_cryo_tests(void);
void register_phase_tests(void);

#endif
