/*
 * unit.h - what every Check unit test file provides: unit_suite(), the test file's suite.
 * check_main.c holds the one main() that runs it (meson links it into every test_<name>).
 */
#ifndef CSMCP_UNIT_H
#define CSMCP_UNIT_H

#include <check.h>

/* The suite of this test executable; called once by main(). */
Suite *unit_suite(void);

#endif
