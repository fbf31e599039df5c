/* test_nifti.c - CUnit suite for the nifti module (filled in with the module). */
#include "testutil.h"

void register_nifti_tests(void)
{
    CU_add_suite("nifti", NULL, NULL);
}
