/*
 * registry.h - the worker's tool table: tool_defs[] (generated from worker/tools/, see
 * worker/tool.h) loaded once at start (fixtures only with mcp.conformance_fixtures), schemas
 * compiled, lookup by name, the scope and rate-limit class of a call, and the Markdown tool
 * reference (csmcp-worker --tools-markdown > docs/tools.md).
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
    /* The scopes its calls can need, bits 1 << enum tool_scope: the tool's scope, or for a tool
     * with action_scopes that of each action (and the tool's own when action may be omitted).
     * tools/list shows the tool to a principal allowed any of them (mcp.read_only: read only). */
    unsigned needs;
};

/* Builds the table; fails (start-up error) on a duplicate or invalid name or schema. */
int registry_init(bool fixtures, char *err, size_t errlen);
void registry_free(void);
size_t registry_count(void);
/* i-th tool in listing order. Borrowed for the worker's life. */
const struct registry_tool *registry_at(size_t i);
const struct registry_tool *registry_find(const char *name);
/*
 * The scope a call of d with these arguments needs: for a tool with action_scopes, the scope of
 * the requested "action" value (TOOLS.md: a mixed tool checks the action actually requested);
 * otherwise, or for an action not listed, d->scope; raised to the scope of every argument of
 * argument_scopes the call passes (not null). args may be NULL.
 */
enum tool_scope registry_required_scope(const struct tool_def *d, yajl_val args);
/* Rate-limit class of the call: d->rate_class if set, else read iff the required scope is read. */
enum tool_rate registry_rate_class(const struct tool_def *d, yajl_val args);
/* "read", "write" or "admin". */
const char *registry_scope_name(enum tool_scope s);
/* Writes docs/tools.md (preamble from docs/tools-preamble.md under src_root if it exists). */
int registry_print_markdown(FILE *out, const char *src_root);

#endif
