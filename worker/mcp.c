/* mcp.c - /mcp (interim: answers every request with a JSON-RPC error). */
#include "mcp.h"

#include "http.h"

static void mcp_handler(struct http_req *r, void *arg)
{
    static const char body[] =
        "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32601,\"message\":\"MCP not "
        "implemented yet\"}}";
    http_respond(r, 200, "application/json", NULL, body, sizeof body - 1);
}

int mcp_init(struct event_base *base, const struct cfg *cfg, struct pgpool *pg)
{
    return http_route("/mcp", "/mcp", mcp_handler, NULL);
}

void mcp_drain(void)
{
}

void mcp_shutdown(void)
{
}

int mcp_inflight(void)
{
    return 0;
}

/* Interim tool_call API (replaced by the MCP dispatcher). */
#include "tool.h"
struct tool_call {
    int unused;
};
yajl_val tool_call_args(struct tool_call *tc)
{
    return NULL;
}
const char *tool_call_args_json(struct tool_call *tc)
{
    return "{}";
}
const struct tool_def *tool_call_def(struct tool_call *tc)
{
    return NULL;
}
const char *tool_call_principal(struct tool_call *tc)
{
    return "anonymous";
}
struct pgpool *tool_call_pg(struct tool_call *tc)
{
    return NULL;
}
struct event_base *tool_call_base(struct tool_call *tc)
{
    return NULL;
}
bool tool_call_cancelled(struct tool_call *tc)
{
    return false;
}
void tool_call_progress(struct tool_call *tc, double progress, double total, const char *message)
{
}
void tool_call_log(struct tool_call *tc, const char *level, const char *logger,
                   const char *data_json)
{
}
int tool_call_request(struct tool_call *tc, const char *method, const char *params_json,
                      tool_reply_fn cb, void *arg)
{
    return -1;
}
bool tool_call_client_can(struct tool_call *tc, const char *capability)
{
    return false;
}
void tool_call_done(struct tool_call *tc, const char *structured_json, const char *text)
{
}
void tool_call_done_content(struct tool_call *tc, const char *content_json, bool is_error)
{
}
void tool_call_fail(struct tool_call *tc, const char *fmt, ...)
{
}
