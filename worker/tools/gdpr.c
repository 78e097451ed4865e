/* tools/gdpr.c - tool table for GDPR export/erase (filled by the security engineer). */
#include "tool.h"

const struct tool_def tools_gdpr[] = {{0}};
const size_t tools_gdpr_n = 0;
