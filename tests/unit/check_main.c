/*
 * check_main.c - the main() of every Check unit test executable (tests/unit/meson.build links
 * it with one test_<name>.c, which defines unit_suite()). Runs the suite (forking per test when
 * CK_FORK=yes, as meson sets it) and exits 1 if any test failed.
 */
#include <stdlib.h>

#include "unit.h"

int main(void)
{
    SRunner *sr = srunner_create(unit_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
