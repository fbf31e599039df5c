/* test_rfa.c - rfa tests (being written). */
#include "testutil.h"

void register_rfa_tests(void) {}
