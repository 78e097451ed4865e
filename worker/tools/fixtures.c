/* tools/fixtures.c - conformance fixture tools (filled below). */
#include "tool.h"

const struct tool_def tools_fixtures[] = {{0}};
const size_t tools_fixtures_n = 0;
