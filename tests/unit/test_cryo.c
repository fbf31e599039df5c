/* test_cryo.c - cryo tests (being written). */
#include "testutil.h"

void register_cryo_tests(void) {}
