/*
 * registry.h - the worker's tool table: the categories of worker/tool.h concatenated once at
 * start (fixtures only with mcp.conformance_fixtures), schemas compiled, lookup by name, and
 * the Markdown tool reference (csmcp-worker --tools-markdown > docs/tools.md).
 */
#ifndef CSMCP_REGISTRY_H
#define CSMCP_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "tool.h"

struct jsonschema;

struct registry_tool {
    const struct tool_def *def;
    struct jsonschema *input;  /* compiled input_schema, or NULL if it did not compile */
    struct jsonschema *output; /* compiled output_schema, or NULL */
};

/* Builds the table; fails (start-up error) on a duplicate or invalid name or schema. */
int registry_init(bool fixtures, char *err, size_t errlen);
void registry_free(void);
size_t registry_count(void);
/* i-th tool in listing order. Borrowed for the worker's life. */
const struct registry_tool *registry_at(size_t i);
const struct registry_tool *registry_find(const char *name);
/* Writes docs/tools.md (preamble from docs/tools-preamble.md under src_root if it exists). */
int registry_print_markdown(FILE *out, const char *src_root);

#endif
