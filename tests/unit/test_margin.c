/* test_margin.c - CUnit suite for the margin module (filled in with the module). */
#include "testutil.h"

void register_margin_tests(void)
{
    CU_add_suite("margin", NULL, NULL);
}
