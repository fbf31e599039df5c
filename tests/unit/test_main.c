/* test_main.c - CUnit runner for every suite (make check). */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

static char tmpdir[512];

const char *tu_root(void)
{
    const char *r = getenv("ABLASIM_ROOT");
    return r && *r ? r : ".";
}

static void cleanup_tmp(void)
{
    if (tmpdir[0] && !getenv("ABLASIM_KEEP_TMP")) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", tmpdir);
    }
}

const char *tu_tmpdir(void)
{
    if (!tmpdir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(tmpdir, sizeof tmpdir, "%s/ablasim-tests-%d", base && *base ? base : "/tmp",
                 (int)getpid());
        mkdir(tmpdir, 0700);
        atexit(cleanup_tmp);
    }
    return tmpdir;
}

abl_scenario *tu_scenario(const char *yaml, const char *const *sets, int nsets)
{
    char dir[600];
    snprintf(dir, sizeof dir, "%s/configs", tu_root());
    abl_scenario *sc = NULL;
    abl_error err = {0};
    if (scenario_load_string(yaml, "test.yaml", dir, sets, nsets, &sc, &err)) {
        fprintf(stderr, "\nscenario error: %s\n", err.msg);
        CU_FAIL("scenario did not load");
        return NULL;
    }
    return sc;
}

abl_sim *tu_sim(abl_scenario *sc)
{
    abl_sim *s = NULL;
    abl_error err = {0};
    abl_status st = sim_create(sc, &s, &err);
    if (st) printf("\n  sim_create: %s", err.msg);
    CU_ASSERT_FATAL(st == ABL_OK);
    return s;
}

abl_source_contrib tu_source_update(abl_sim *s, int i, double t_s)
{
    /* step_h_s 0: the source's value at the instant t_s (not a mean over a step) */
    abl_field_view v = {&s->grid, s->material, s->T, t_s, s->dt_s, false, t_s, 0.0};
    abl_source_contrib c;
    abl_error err = {0};
    abl_status st = s->sources[i]->ops->update(s->sources[i], &v, &c, &err);
    if (st) printf("\n  update: %s", err.msg);
    CU_ASSERT_FATAL(st == ABL_OK);
    return c;
}

double tu_maxdiff(const double *a, const double *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = a[i] > b[i] ? a[i] - b[i] : b[i] - a[i];
        if (d > m || d != d) m = d;
    }
    return m;
}

/* Optional argument: run only the suites whose name contains it (make check runs all). */
static void select_suites(const char *pattern)
{
    CU_pTestRegistry reg = CU_get_registry();
    for (CU_pSuite su = reg->pSuite; su; su = su->pNext)
        if (!strstr(su->pName, pattern)) CU_set_suite_active(su, CU_FALSE);
}

void register_resume_tests(void); /* test_resume.c */
void register_safety_tests(void); /* test_safety.c */
void register_subvoxel_tests(void); /* test_subvoxel.c */
void register_probe_tests(void);  /* test_probes.c */
void register_timealign_tests(void); /* test_timealign.c */
void register_pcg_tests(void);   /* test_pcg.c */
void register_schema_tests(void);    /* test_schema.c */
void register_profile_tests(void);   /* test_profile.c */

int main(int argc, char **argv)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return CU_get_error();
    register_config_tests();
    register_kernel_tests();
    register_analytic_tests();
    register_energy_tests();
    register_property_tests();
    register_spectral_tests();
    register_pcg_tests();
    register_output_mesh_tests();
    register_nifti_tests();
    register_margin_tests();
    register_phantom_tests();
    register_sweep_tests();
    register_mwa_tests();
    register_rfa_tests();
    register_cryo_tests();
    register_phase_tests();
    register_subvoxel_tests();
    register_probe_tests();
    register_resume_tests();
    register_safety_tests();
    register_timealign_tests();
    register_schema_tests();
    register_profile_tests();
    register_cli_tests();
    if (argc > 1) select_suites(argv[1]);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    unsigned run = CU_get_number_of_tests_run();
    CU_cleanup_registry();
    if (run == 0) {
        fprintf(stderr, "no tests ran\n");
        return 1;
    }
    return failed ? 1 : 0;
}
