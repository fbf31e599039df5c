/* test_phantom.c - CUnit suite for the phantom module (filled in with the module). */
#include "testutil.h"

void register_phantom_tests(void)
{
    CU_add_suite("phantom", NULL, NULL);
}
