/*
 * tool.h - the contract between the MCP layer (worker/mcp*.c, owner of tools/list and
 * tools/call) and the tool implementations.
 *
 * Tools are declared in worker/tools/<category>/<tool_name>.json (docs/adding-a-tool.md);
 * worker/tools/gen_registry.py validates them at build time and generates tool_defs[] below.
 * A "sql" tool runs csmcp.tool_<name>($1 args, $2 principal) through tool_sql_handler; a
 * "c:<symbol>" tool runs the C function of that name (prototype in the generated
 * tool_handlers.h). tools/list, argument validation (the input_schema), scope checks, rate-limit
 * classes, dispatch, docs/tools.md and the test inventory are all derived from tool_defs[].
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

/* Rate-limit class of a call; AUTO follows the effective scope (read -> read, else write). */
enum tool_rate {
    TOOL_RATE_AUTO = 0,
    TOOL_RATE_READ,
    TOOL_RATE_WRITE,
};

/* The scope needed when the string argument "action" has this value ("action_scopes"). */
struct tool_action_scope {
    const char *action;
    enum tool_scope scope;
};

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
    bool fixture;         /* listed only when mcp.conformance_fixtures = true */
    const char *category; /* the directory under worker/tools/ */
    const char *source;   /* the definition file, relative to the source root */
    /* Scope per value of the "action" argument; values not listed need .scope. */
    const struct tool_action_scope *action_scopes;
    size_t n_action_scopes;
    /* "argument_scopes": a call passing this argument (not null) needs at least this scope
     * (.action holds the argument's name), e.g. manage_lifecycle_stages' new_stage: write. */
    const struct tool_action_scope *argument_scopes;
    size_t n_argument_scopes;
    enum tool_rate rate_class;
    /* May run on the read replica (database.read_url) when it is within
     * database.max_replica_lag: read-only analytics no caller reads its own writes through. */
    bool replica_ok;
    /* Exact formulas and rules, one Markdown line each (docs/tools.md renders them). */
    const char *const *rules;
    size_t n_rules;
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

/* The registry's source: every tool definition, generated from
 * worker/tools/<category>/<name>.json (tools_gen.c in the build directory). */
extern const struct tool_def tool_defs[];
extern const size_t tool_defs_n;

#endif
