/* tools/ingest.c - tool table for the ingest category (filled by the data engineer). */
#include "tool.h"

const struct tool_def tools_ingest[] = {{0}};
const size_t tools_ingest_n = 0;
