/* test_main.c - CUnit runner for every suite (make check). */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* Optional arguments: run only the suites whose name contains the first and, with a second,
 * only their tests whose name contains it (make check runs all). */
static void select_suites(const char *pattern, const char *test_pattern)
{
    CU_pTestRegistry reg = CU_get_registry();
    for (CU_pSuite su = reg->pSuite; su; su = su->pNext) {
        if (!strstr(su->pName, pattern)) CU_set_suite_active(su, CU_FALSE);
        if (test_pattern)
            for (CU_pTest t = su->pTest; t; t = t->pNext)
                if (!strstr(t->pName, test_pattern)) CU_set_test_active(t, CU_FALSE);
    }
}

void register_resume_tests(void); /* test_resume.c */
void register_safety_tests(void); /* test_safety.c */
void register_subvoxel_tests(void); /* test_subvoxel.c */
void register_probe_tests(void);  /* test_probes.c */
void register_timealign_tests(void); /* test_timealign.c */
void register_pcg_tests(void);   /* test_pcg.c */
void register_schema_tests(void);    /* test_schema.c */
void register_profile_tests(void);   /* test_profile.c */
void register_plan_tests(void);      /* test_plan.c */
void register_vessel_tests(void);    /* test_vessel.c */
void register_device_tests(void);    /* test_devices.c */

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
    register_vessel_tests();
    register_device_tests();
    register_phase_tests();
    register_subvoxel_tests();
    register_probe_tests();
    register_resume_tests();
    register_safety_tests();
    register_timealign_tests();
    register_schema_tests();
    register_profile_tests();
    register_plan_tests();
    register_cli_tests();
    if (argc > 1) select_suites(argv[1], argc > 2 ? argv[2] : NULL);
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
