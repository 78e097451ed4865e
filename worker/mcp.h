/*
 * mcp.h - the MCP server on /mcp (Streamable HTTP, protocol revisions 2024-11-05 ..
 * 2025-11-25): JSON-RPC dispatch, lifecycle, sessions in Redis, tools/resources/prompts,
 * streaming, server->client requests routed across workers, resumable SSE.
 */
#ifndef CSMCP_MCP_H
#define CSMCP_MCP_H

#include <stdbool.h>

struct event_base;
struct cfg;
struct pgpool;
struct http_req;

/* Registers /mcp with the HTTP server. Borrowed cfg and pg for the worker's life. */
int mcp_init(struct event_base *base, const struct cfg *cfg, struct pgpool *pg);
/* Ends standalone GET streams and refuses new ones; in-flight calls finish. */
void mcp_drain(void);
/* Fails every in-flight call (exit path). */
void mcp_shutdown(void);
struct tool_call;
/* Fixture support (test_reconnection): sends the priming event, then ends the POST's SSE
 * stream while the call goes on; the client resumes with GET + Last-Event-ID. */
void mcp_call_close_stream(struct tool_call *tc);
/* Calls in flight (tool calls and open streams). */
int mcp_inflight(void);

#endif
