/* tools/health.c - tool table for the health category (filled by the data engineer). */
#include "tool.h"

const struct tool_def tools_health[] = {{0}};
const size_t tools_health_n = 0;
