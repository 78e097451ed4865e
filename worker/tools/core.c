/* tools/core.c - tool table for the core category (filled by the data engineer). */
#include "tool.h"

const struct tool_def tools_core[] = {{0}};
const size_t tools_core_n = 0;
