/* testutil.h - shared helpers for the CUnit suites. */
#ifndef ABLASIM_TESTUTIL_H
#define ABLASIM_TESTUTIL_H

#include <CUnit/CUnit.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

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

/* ---- files and commands (the command-line and data-safety suites) ---- */
/* The ablasim binary under test (ABLASIM_BIN, set by make check; "bin/ablasim" otherwise). */
const char *tu_bin(void);
/* buf = <tu_tmpdir()>/<name formatted from fmt>, created as a directory (an existing one is
 * kept as it is). */
void tu_subdir(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Whole file as a NUL-terminated string (malloc'ed; empty if a read falls short); NULL when
 * it cannot be opened. */
char *tu_slurp(const char *path);
/* Whole file as bytes (malloc'ed; NULL if unreadable); *n its length. */
unsigned char *tu_file_bytes(const char *path, size_t *n);
/* The file still holds exactly these n bytes (an input a command must not touch). */
bool tu_bytes_unchanged(const char *path, const unsigned char *before, size_t n);
/* FNV-1a 64 of a file's bytes; 0 when it cannot be read. */
unsigned long long tu_file_sum(const char *path);
/* Something is at path, following links (stat). */
bool tu_exists(const char *path);
/* Something is at path, a link itself counting, dangling or not (lstat). */
bool tu_lexists(const char *path);
/* Write text to path, replacing it; fails the test fatally when it cannot be opened. */
void tu_spit(const char *path, const char *text);
/* Exit status of a shell command line; -1 when it did not exit normally. */
int tu_sh(const char *cmdline);
/* tu_sh of cmdline with stdin from /dev/null, stdout to outfile (NULL: /dev/null) and stderr
 * to errfile. The full line is allocated to fit, so a long command is never truncated. */
int tu_run(const char *cmdline, const char *outfile, const char *errfile);
/* Starts the binary under test (tu_bin()) with argv (argv[0] its name, NULL-terminated) in a
 * child process with stdout and stderr to /dev/null; the child's pid, -1 when fork fails. */
pid_t tu_spawn(const char *const *argv);

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
