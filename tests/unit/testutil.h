/* testutil.h - shared helpers for the CUnit suites. */
#ifndef ABLASIM_TESTUTIL_H
#define ABLASIM_TESTUTIL_H

#include <CUnit/CUnit.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
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
/* Scenario "name": a homogeneous liver cube (configs/tissues.yaml) of N^3 voxels of h_mm,
 * centred on 0 (voxel i at x = (i - (N-1)/2) h_mm), walls fixed at 37 C, duration_s with time
 * step dt ("auto" or a number); extra: further top-level keys (NULL: none); sources: the items
 * of the sources list. Through tu_scenario (fails the test and returns NULL on an error). */
abl_scenario *tu_liver_cube(const char *name, int N, double h_mm, double duration_s,
                            const char *dt, const char *extra, const char *sources);
/* Planned simulation of sc; fails the test (fatally) with sim_create's message. */
abl_sim *tu_sim(abl_scenario *sc);
/* Source i's contribution for a step starting at t_s on the sim's current temperatures
 * (a full update, not pins_only); fails the test fatally on an error. */
abl_source_contrib tu_source_update(abl_sim *s, int i, double t_s);
/* Steps s through t_s (rounded to a whole number of its steps); fails the test fatally on an
 * error. */
void tu_step_for(abl_sim *s, double t_s);
/* Max-norm of a - b over n values. */
double tu_maxdiff(const double *a, const double *b, size_t n);

/* ---- exact solutions and convergence orders (test_analytic.c, test_spectral.c) ---- */
/* Three Fourier modes in the box [0, H]^3 (m) with walls at theta = 0:
 *   theta = sum A sin(p pi x/H) sin(q pi y/H) sin(r pi z/H)
 *           exp(-(alpha pi^2 (p^2+q^2+r^2)/H^2 + 1/tau_p) t)
 * for (p, q, r, A) = (1, 1, 1, 10), (3, 1, 2, 4), (2, 3, 1, -3). */
double tu_box_modes(const double x[3], double H, double alpha, double tau_p, double t);
/* f = offset + tu_box_modes(voxel centre, ..., t) at every voxel of g. */
void tu_box_modes_fill(const abl_grid *g, double *f, double offset, double H, double alpha,
                       double tau_p, double t);
/* max over voxels of |f - offset - tu_box_modes(voxel centre, ..., t)|. */
double tu_box_modes_error(const abl_grid *g, const double *f, double offset, double H,
                          double alpha, double tau_p, double t);
/* Max errors on grids h, h/2, h/4: prints them and the two observed orders log2(e1/e2),
 * log2(e2/e3), and asserts (one CU_ASSERT each) that both lie in (1.8, 2.3): second order,
 * with room for the pre-asymptotic range of three grids. */
void tu_check_order2(const char *what, double e1, double e2, double e3);

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
/* Size of the file at path in bytes; -1 when it cannot be stat'ed. */
long tu_file_size(const char *path);
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
/* Sets the OpenMP thread count to n (dynamic adjustment off) and returns the size of the team
 * a parallel region then really gets: a thread-determinism test asserts it is n, so that it
 * cannot pass by running one thread twice (OMP_THREAD_LIMIT=1; audit, session 24). */
int tu_set_threads(int n);
/* Exit status of a shell command line; -1 when it did not exit normally. */
int tu_sh(const char *cmdline);
/* tu_sh of cmdline with stdin from /dev/null, stdout to outfile (NULL: /dev/null) and stderr
 * to errfile. The full line is allocated to fit, so a long command is never truncated. */
int tu_run(const char *cmdline, const char *outfile, const char *errfile);
/* Starts the binary under test (tu_bin()) with argv (argv[0] its name, NULL-terminated) in a
 * child process with stdout and stderr to /dev/null; the child's pid, -1 when fork fails. */
pid_t tu_spawn(const char *const *argv);
/* The same with stderr to errfile (created or truncated; stdout to /dev/null). */
pid_t tu_spawn_err(const char *const *argv, const char *errfile);
/* Runs argv (argv[0] the program, NULL-terminated) in directory wd (NULL: the current one)
 * with one OpenMP thread and a file-size limit of limit_B bytes (RLIMIT_FSIZE; < 0: none), a
 * full disk's stand-in that binds root too: SIGXFSZ is ignored (inherited through exec), so a
 * write past the limit fails with EFBIG. stdout to /dev/null, stderr to errf. Returns the exit
 * status, -1 if it did not exit; *signo (if not NULL) the signal that ended it, 0: none. */
int tu_run_limited(const char *wd, const char *const *argv, long limit_B, const char *errf,
                   int *signo);
/* The fault-injection library (LD_PRELOAD, tests/faultshim/faultshim.c): ABLASIM_FAULTSHIM, or
 * libfaultshim.so beside the test binary (make builds it there). */
const char *tu_faultshim(void);
/* tu_run_limited without a file-size limit, with tu_faultshim() preloaded and fault_env
 * ("NAME=VALUE" strings, NULL-terminated, at most 13: ABLASIM_FAULT_* of faultshim.c) in the
 * child's environment; ASAN_OPTIONS gains verify_asan_link_order=0 (a sanitized binary refuses
 * a preloaded library otherwise). Fails the test fatally when the library is missing. */
int tu_run_faulted(const char *wd, const char *const *argv, const char *const *fault_env,
                   const char *errf, int *signo);

/* The generated Markdown section of a document: the text between the line starting with
 * "<!-- NAME:begin" and the line "<!-- NAME:end -->" of <root>/doc (blank lines at its ends
 * ignored) equals what gen writes. On a difference, prints the first differing line of both
 * and "regenerate it with `make readme-keys`"; returns whether they are equal. Fails the test
 * fatally when the file or a marker is missing. */
bool tu_generated_section_matches(const char *doc, const char *name, int (*gen)(FILE *));

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

/* The needle offsets of the alignment tests (issue 15), in voxels: none, 0.25 and 0.5 across the
 * axis, (0.5, 0.5) across, 0.5 along (z). */
#define TU_NALIGN 5
extern const double tu_align_offsets[TU_NALIGN][3];
/* Largest |v_i / mean - 1| of v[0..n), printed as "largest deviation from the mean X %". */
double tu_max_rel_deviation(const double *v, int n);

#endif
