/*
 * tool.h - the contract between the MCP layer (worker/mcp*.c, owner of tools/list and
 * tools/call) and the tool implementations (worker/tools/<category>.c).
 *
 * Each category exports one table of struct tool_def; worker/registry.c concatenates them.
 * tools/list, argument validation (the input_schema), scope checks, dispatch and
 * docs/tools.md are all generated from these tables.
 *
 * Lifetime: the MCP layer creates a struct tool_call, validates the arguments against
 * input_schema, then calls handler(tc). The handler (possibly later, from a database callback)
 * finishes the call exactly once with tool_call_done(), tool_call_done_content() or
 * tool_call_fail(). After that tc is gone. Until then tc stays valid even if the client
 * disconnects or cancels: check tool_call_cancelled() before expensive follow-up work, and
 * still finish the call.
 */
#ifndef CSMCP_TOOL_H
#define CSMCP_TOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <yajl/yajl_tree.h>

struct tool_call;
struct pgpool;
struct event_base;

typedef void (*tool_handler_fn)(struct tool_call *tc);

enum tool_scope {
    TOOL_SCOPE_READ = 0,
    TOOL_SCOPE_WRITE,
    TOOL_SCOPE_ADMIN,
};

/* MCP tool annotations (hints). */
#define TOOL_HINT_READONLY    (1u << 0)
#define TOOL_HINT_DESTRUCTIVE (1u << 1)
#define TOOL_HINT_IDEMPOTENT  (1u << 2)
#define TOOL_HINT_OPENWORLD   (1u << 3)

struct tool_def {
    const char *name; /* [A-Za-z0-9_.-]{1,128}, unique */
    const char *title;
    const char *description;   /* required: every tool is described */
    const char *input_schema;  /* JSON Schema text, "type":"object" */
    const char *output_schema; /* JSON Schema text for structuredContent, or NULL */
    unsigned hints;            /* TOOL_HINT_* */
    enum tool_scope scope;     /* scope an API key / token needs to call it */
    tool_handler_fn handler;
    /*
     * For tools implemented as one SQL function (the usual case): the statement, taking $1 =
     * arguments as jsonb and $2 = caller identity text, returning one row with one jsonb
     * column that is the structuredContent. handler is then tool_sql_handler.
     */
    const char *sql;
    bool fixture; /* listed only when mcp.conformance_fixtures = true */
};

/* Arguments of the call, already validated against input_schema. Borrowed for the call. */
yajl_val tool_call_args(struct tool_call *tc);
/* The same arguments as compact JSON text ("{}" when none). Borrowed for the call. */
const char *tool_call_args_json(struct tool_call *tc);
const struct tool_def *tool_call_def(struct tool_call *tc);
/* Authenticated principal ("key:<id>", "jwt:<sub>" or "anonymous"). Borrowed. */
const char *tool_call_principal(struct tool_call *tc);
struct pgpool *tool_call_pg(struct tool_call *tc);
struct event_base *tool_call_base(struct tool_call *tc);
bool tool_call_cancelled(struct tool_call *tc);

/* Progress notification, when the request carried a progressToken (otherwise a no-op). */
void tool_call_progress(struct tool_call *tc, double progress, double total, const char *message);
/* notifications/message at level ("debug".."emergency") if at/above the session's level;
 * data_json is any JSON value. */
void tool_call_log(struct tool_call *tc, const char *level, const char *logger,
                   const char *data_json);

/*
 * Server->client request (method "sampling/createMessage" or "elicitation/create") sent on the
 * call's stream. cb runs once with the client's result as JSON text (error_json NULL), or with
 * error_json set (client error, timeout, client lacks the capability: then result_json NULL).
 * Returns -1 at once if the client did not declare the capability.
 */
typedef void (*tool_reply_fn)(struct tool_call *tc, const char *result_json, const char *error_json,
                              void *arg);
int tool_call_request(struct tool_call *tc, const char *method, const char *params_json,
                      tool_reply_fn cb, void *arg);
/* True when the client declared the capability ("sampling", "elicitation", "roots"). */
bool tool_call_client_can(struct tool_call *tc, const char *capability);

/*
 * Success: structured_json is the structuredContent object (must match output_schema); it is
 * also sent as the text block unless text is non-NULL. Both copied.
 */
void tool_call_done(struct tool_call *tc, const char *structured_json, const char *text);
/* Success or failure with explicit content blocks (a JSON array text). Copied. */
void tool_call_done_content(struct tool_call *tc, const char *content_json, bool is_error);
/* Tool execution error: an isError result whose text is the formatted message. */
void tool_call_fail(struct tool_call *tc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Generic handler for tool_def.sql tools (worker/tools/sqltool.c). */
void tool_sql_handler(struct tool_call *tc);

/* Category tables (each worker/tools/<category>.c defines one). */
extern const struct tool_def tools_fixtures[]; /* worker/tools/fixtures.c */
extern const size_t tools_fixtures_n;
extern const struct tool_def tools_core[]; /* worker/tools/core.c */
extern const size_t tools_core_n;
extern const struct tool_def tools_health[]; /* worker/tools/health.c */
extern const size_t tools_health_n;
extern const struct tool_def tools_ingest[]; /* worker/tools/ingest.c */
extern const size_t tools_ingest_n;
extern const struct tool_def tools_gdpr[]; /* worker/tools/gdpr.c */
extern const size_t tools_gdpr_n;

#endif
