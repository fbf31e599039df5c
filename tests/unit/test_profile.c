/* test_profile.c - the per-phase timers (profile.h): what they count is exact, they never change
 * results, and --profile writes them into the result. */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ablasim/h5_schema.h"
#include "ablasim/profile.h"
#include "testutil.h"

/* 20^3 liver, a 5 W sphere, explicit scheme, constant properties: the fast path, whose sweep
 * moves 24 B per voxel update (profile.h). */
static const char *yaml =
    "name: prof\n"
    "tissues_file: tissues.yaml\n"
    "grid: {dims: [20, 20, 20], spacing_mm: [1, 1, 1], background: liver}\n"
    "physics: {vaporisation: off, freezing: off}\n"
    "time: {duration_s: 60}\n"
    "sources:\n"
    "  - {type: volumetric, power_W: 5,\n"
    "     shape: {type: sphere, center_mm: [0, 0, 0], radius_mm: 3}}\n"
    "output: {snapshot_interval_s: 0}\n";

/* Counts and bytes are exact (integers and exact products); the times are non-negative and
 * sum to no more than the wall time of the stepping measured around it (the marks partition
 * it; 1 ms slack for the clock reads outside the marked intervals). Two runs, one profiled
 * into its output, give bitwise equal temperatures: the timers never feed back. */
static void test_profile_counts(void)
{
    abl_scenario *sc = tu_scenario(yaml, NULL, 0);
    CU_ASSERT_FATAL(sc != NULL);
    abl_sim *a = tu_sim(sc), *b = tu_sim(sc);
    abl_error err = {0};
    const long n = 25; /* of about 66 steps (dt ~0.9 s) */
    const double t0 = omp_get_wtime();
    CU_ASSERT_FATAL(sim_step(a, n, &err) == ABL_OK);
    const double wall = omp_get_wtime() - t0;
    const abl_profile *p = &a->prof;
    CU_ASSERT_EQUAL(p->calls[ABL_PROF_KERNEL], n);
    CU_ASSERT_EQUAL(p->calls[ABL_PROF_SOURCES], n);
    CU_ASSERT_EQUAL(p->bytes[ABL_PROF_KERNEL], 24.0 * (double)a->grid.n * (double)n);
    CU_ASSERT_EQUAL(p->calls[ABL_PROF_SOLVER], 0); /* explicit: no solver phase */
    double sum = 0;
    for (int i = 0; i < ABL_PROF_N; i++) {
        CU_ASSERT(p->s[i] >= 0);
        sum += p->s[i];
    }
    CU_ASSERT(sum <= wall + 1e-3);

    /* a whole run with --profile's option: /profile in the result, fields equal to a's */
    char out[512];
    snprintf(out, sizeof out, "%s/profile_run.h5", tu_tmpdir());
    abl_run_opts o = {.output_path = out, .profile = true, .resume_snapshots = -1};
    CU_ASSERT_FATAL(sim_run(b, &o, &err) == ABL_OK);
    abl_sim *c = tu_sim(sc);
    CU_ASSERT_FATAL(sim_step(c, b->step, &err) == ABL_OK);
    CU_ASSERT(memcmp(b->T, c->T, b->grid.n * sizeof(double)) == 0);
    hid_t f = H5Fopen(out, H5F_ACC_RDONLY, H5P_DEFAULT);
    CU_ASSERT_FATAL(f >= 0);
    double bytes[ABL_PROF_N] = {0};
    hid_t d = H5Dopen2(f, H5_PROFILE "/bytes", H5P_DEFAULT);
    CU_ASSERT(d >= 0 && H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, bytes) >= 0);
    CU_ASSERT_EQUAL(bytes[ABL_PROF_KERNEL], 24.0 * (double)b->grid.n * (double)b->step);
    if (d >= 0) H5Dclose(d);
    /* the kernels inside the phases: written, and all zero in an explicit run (no CG ran) */
    double kcalls[ABL_KER_N];
    for (int i = 0; i < ABL_KER_N; i++) kcalls[i] = -1.0;
    d = H5Dopen2(f, H5_PROFILE_KERNELS "/calls", H5P_DEFAULT);
    CU_ASSERT(d >= 0 && H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, kcalls) >= 0);
    for (int i = 0; i < ABL_KER_N; i++) CU_ASSERT_EQUAL(kcalls[i], 0.0);
    if (d >= 0) H5Dclose(d);
    H5Fclose(f);
    sim_destroy(a);
    sim_destroy(b);
    sim_destroy(c);
    scenario_free(sc);
}

void register_profile_tests(void)
{
    CU_pSuite s = CU_add_suite("profile", NULL, NULL);
    CU_add_test(s, "counts and bytes exact, times partition the step, results unchanged",
                test_profile_counts);
}
