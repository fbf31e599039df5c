/* test_sweep.c - CUnit suite for the sweep module (filled in with the module). */
#include "testutil.h"

void register_sweep_tests(void)
{
    CU_add_suite("sweep", NULL, NULL);
}
