/* test_phase.c - phase tests (being written). */
#include "testutil.h"

void register_phase_tests(void) {}
