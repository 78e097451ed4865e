/*
 * mcp_int.h - private to the MCP server's files (worker/mcp.c, streams.c, toolcall.c,
 * gates.c): the request struct and the calls between the files. Nothing else includes it.
 *
 * Layers (each file calls only the ones below it; no cycles):
 *   mcp.c       entry on /mcp, initialize, JSON-RPC method dispatch, tools/list
 *   gates.c     pre-dispatch checks (session in Redis or the session cache, rate limit) and
 *               session invalidation (DELETE, logging/setLevel)
 *   toolcall.c  one tools/call: the tool API of worker/tool.h, server->client requests,
 *               cancellation, replies routed across workers
 *   streams.c   struct mreq lifetime and every write to the client: JSON responses, the POST's
 *               SSE stream and its event store, GET streams and resumption
 *   modern.c    the stateless 2026-07-28 era on the same endpoint: era detection, per-request
 *               _meta and header validation, server/discover, result decoration (resultType,
 *               caching hints, serverInfo), modern error codes; modern_mrtr.c: the
 *               input-required (MRTR) flow and its signed requestState.
 * A lower file never calls a higher one by name: the few calls upward (streams.c rewriting a
 * modern response, alerts.c feeding a modern listen stream, toolcall.c asking a modern client,
 * modern.c dispatching) go through mcp_up, a table of function pointers defined in streams.c
 * and filled by mcp_init (test_build_cycles keeps the files acyclic).
 */
#ifndef CSMCP_MCP_INT_H
#define CSMCP_MCP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <yajl/yajl_tree.h>

#include "auth.h"
#include "http.h"
#include "json.h"
#include "jsonrpc.h"
#include "ratelimit.h"
#include "session.h"
#include "tool.h"

struct event_base;
struct cfg;
struct pgpool;
struct registry_tool;

/* The worker-wide context of the MCP server, set once by mcp_init. */
struct mcp_env {
    struct event_base *base;
    const struct cfg *cfg;
    struct pgpool *pg;
    char node[17]; /* this worker's id in server->client request ids and pub/sub channels */
};
extern struct mcp_env mcp_env;

/* Calls fn on every open standalone GET stream of this worker (streams.c; resumption streams
 * excluded). fn may take a reference (m->refs++) and use it later. */
struct mreq;
void mcp_streams_each(void (*fn)(struct mreq *m, void *arg), void *arg);

/* The session a request runs on (valid once have_session). */
struct sess {
    char sid[SESSION_ID_MAX];
    char key[SESSION_KEY_MAX];
    char tag[17];
    enum mcp_rev rev; /* negotiated protocol revision */
    int lvl;          /* logging/setLevel threshold (index in session_log_levels) */
    char *caps;
};

/*
 * One HTTP request on /mcp. Reference counted: one reference for the HTTP side until its
 * response is finished (req becomes NULL), one per running tool call, one per pending Redis
 * callback. The yajl tree of the body lives as long as the mreq, so tool arguments stay valid
 * for the whole call.
 */
struct mreq {
    struct http_req *req; /* NULL once the HTTP response is finished */
    int refs;
    enum http_meth method;
    yajl_val root;
    yajl_val caps_tree;
    struct sess s;
    bool have_session;
    /* 2026-07-28 (modern era, modern.c): no session; meta = params._meta of the request,
     * client_caps = its io.modelcontextprotocol/clientCapabilities (both borrowed from root) */
    bool modern;
    yajl_val meta;
    yajl_val client_caps;
    yajl_val mrtr_state; /* verified requestState of a retried tools/call (owned), or NULL */
    yajl_val listen;     /* subscriptions/listen: the accepted resourceSubscriptions (borrowed) */
    int mrtr_next;       /* input requests the call has made so far */
    struct auth_result auth;
    /* pre-dispatch checks run concurrently (session in Redis, rate limit) */
    int gates;
    int sess_status;     /* 0 ok, else the HTTP status to answer */
    uint32_t sess_epoch; /* pub/sub epoch when the Redis session check was sent (0: no cache) */
    uint64_t sess_gen;   /* scache_generation() then */
    struct ratelimit_result rl;
    void (*cont)(struct mreq *m);
    char hdrs[768]; /* extra headers on every response (CORS, session id) */
    /* POST */
    struct jsonrpc_msg *msgs;
    size_t nmsgs;
    bool batch;
    int outstanding;
    struct jbuf out;
    bool out_first;
    bool sse; /* response switched to text/event-stream */
    char stream[17];
    long seq;
    /* GET streams */
    bool is_stream;
    bool resume;
    long resume_from;
    long resume_deadline_ticks;
    long resume_quiet; /* polls without an event since the last write */
    struct event *timer;
    struct mreq *snext, *sprev;
};

/* The authenticated principal of m, "anonymous" without authentication. Borrowed. */
static inline const char *mreq_principal(const struct mreq *m)
{
    return m->auth.principal[0] ? m->auth.principal : "anonymous";
}

/* True when the Accept header value accepts type (or anything). */
static inline bool mcp_accepts(const char *accept, const char *type)
{
    if (accept == NULL)
        return false;
    return strstr(accept, type) != NULL || strstr(accept, "*/*") != NULL;
}

/* ---- streams.c: lifetime and responses ---- */

void mreq_unref(struct mreq *m);
/* The HTTP response (ends the HTTP side of m; no-op when it has ended). Copied. */
void mreq_respond(struct mreq *m, int status, const char *ctype, const char *extra,
                  const char *body, size_t len);
void mreq_respond_json(struct mreq *m, int status, const char *body, size_t len);
/* HTTP error with a JSON-RPC error body (id null). */
void mreq_respond_error(struct mreq *m, int status, int code, const char *message,
                        const char *extra);
/* The response to one request of m (single, batch element, or final event of its stream). */
void mreq_reply(struct mreq *m, const char *json, size_t len);
void mreq_reply_error(struct mreq *m, yajl_val id, int code, const char *message,
                      const char *data_json);
/* Switches a single-request POST to text/event-stream (idempotent). */
void mreq_start_sse(struct mreq *m);
/* One message on m's SSE stream (and in the event store). final ends the stream. */
void mreq_sse_send(struct mreq *m, const char *json, size_t len, bool final);
void mreq_stream_end(struct mreq *m);
/* GET on a verified session: a standalone stream, or resumption with Last-Event-ID. */
void mcp_stream_get(struct mreq *m);
/* subscriptions/listen (2026-07-28): an open stream whose first event is ack (the
 * acknowledged notification); alerts reach it like GET streams (mcp_streams_each). */
void mcp_stream_listen(struct mreq *m, const char *ack, size_t len);
/* Open GET streams. */
int mcp_streams_open(void);

/* ---- toolcall.c: tool calls ---- */

/* Starts a validated tools/call (args: the object or NULL) and runs its handler. */
void mcp_call_start(struct mreq *m, struct jsonrpc_msg *msg, const struct registry_tool *t,
                    yajl_val args);
/* A client's JSON-RPC response (to our sampling/elicitation request). */
void mcp_route_response(struct mreq *m, yajl_val msg);
/* Cancels the tool calls of m (2026-07-28: the client closed the request). */
void mcp_calls_cancel_mreq(struct mreq *m);
/* notifications/cancelled from the client. */
void mcp_handle_cancelled(struct mreq *m, yajl_val params);
/* Subscribes the reply and cancel channels. */
int mcp_calls_init(void);
/* Tool calls in flight. */
int mcp_calls_inflight(void);

/* ---- streams.c: the calls upward, filled by mcp_init (see the layers above) ---- */
struct mcp_upcalls {
    /* mcp.c */
    void (*dispatch_request)(struct mreq *m, struct jsonrpc_msg *msg);
    /* modern.c */
    char *(*modern_rewrite)(struct mreq *m, const char *json, size_t len, size_t *outlen);
    void (*listen_alert)(struct mreq *m, const char *client_id);
    /* modern_mrtr.c */
    int (*mrtr_tool_request)(struct tool_call *tc, struct mreq *m, struct jsonrpc_msg *msg,
                             const char *method, const char *params_json, tool_reply_fn cb,
                             void *arg);
};
extern struct mcp_upcalls mcp_up;

/* ---- mcp.c: dispatch (modern.c reaches it through mcp_up) ---- */

/* Runs one JSON-RPC request of m (any era; m->modern selects the modern differences). */
void mcp_dispatch_request(struct mreq *m, struct jsonrpc_msg *msg);

/* ---- modern.c: the 2026-07-28 era ---- */

/* Error codes of 2026-07-28 (-32020..-32022), and the application codes (outside JSON-RPC's
 * reserved range) that replace, on the modern wire, this server's legacy codes which fall in
 * ranges the revision forbids (-32000..-32019: legacy; -32029/-32030: reserved for the spec). */
#define MODERN_ERR_HEADER_MISMATCH     (-32020)
#define MODERN_ERR_MISSING_CAPABILITY  (-32021)
#define MODERN_ERR_UNSUPPORTED_VERSION (-32022)
#define MODERN_ERR_UNAVAILABLE         (-31000) /* legacy -32000: store/audit unavailable */
#define MODERN_ERR_AUTH_OR_TIMEOUT     (-31001) /* legacy -32001: auth (401/403), timeout */
#define MODERN_ERR_RATE_LIMITED        (-31029) /* legacy -32029: 429 */
#define MODERN_ERR_LIMITER_UNAVAILABLE (-31030) /* legacy -32030: 503 */

/* True when the single JSON-RPC message of m selects the modern era (docs/protocol.md). */
bool mcp_modern_detect(struct mreq *m);
/* Serves a modern-era request: validation, rate limit, dispatch (answers m). */
void mcp_modern_begin(struct mreq *m);
/* Rewrites the JSON of a modern-era response (results gain resultType, caching hints and
 * serverInfo; errors get the request's id and modern codes). NULL: send json as is; else a
 * malloc'd body of *outlen bytes. */
char *mcp_modern_rewrite(struct mreq *m, const char *json, size_t len, size_t *outlen);

/* A monitors' alert for client_id on a subscriptions/listen stream (alerts.c calls it). */
void mcp_listen_alert(struct mreq *m, const char *client_id);

/* ---- modern_mrtr.c: input-required (MRTR) fixtures and requestState ---- */

/* toolcall.c: finishes tc with result_json, recorded (audit, metric) with outcome. */
void mcp_call_finish_as(struct tool_call *tc, const char *result_json, size_t len,
                        const char *outcome);
/* tool_call_request on the modern wire: answers from the retried request's inputResponses
 * (callback deferred to the next loop turn), else finishes the call with an input_required
 * result asking for it. 0, or -1 (the handler falls back as without the capability). */
int mcp_mrtr_tool_request(struct tool_call *tc, struct mreq *m, struct jsonrpc_msg *msg,
                          const char *method, const char *params_json, tool_reply_fn cb, void *arg);
/* Before a modern tools/call of a registry tool: verifies inputResponses/requestState of a
 * retry (the state must be ours, unexpired, for this tool and these arguments). false after
 * answering -32602. */
bool mcp_mrtr_retry_check(struct mreq *m, struct jsonrpc_msg *msg);

/* True (and m answered) when msg is a tools/call or prompts/get of a modern MRTR fixture. */
bool mcp_mrtr_fixture(struct mreq *m, struct jsonrpc_msg *msg);
/* Signs state (JSON text) into a requestState string bound to the method and name (malloc'd). */
char *mcp_mrtr_seal(const char *method, const char *name, const char *state_json);
/* Verifies a requestState for method and name: the state JSON (malloc'd) or NULL with why. */
char *mcp_mrtr_open(const char *method, const char *name, const char *request_state, char *why,
                    size_t whylen);
int mcp_mrtr_init(void);

/* ---- gates.c: session check, rate limit, invalidation ---- */

/*
 * Starts the rate-limit check (and the session check when with_session) concurrently; cont
 * runs once both have passed, otherwise the request is answered (429, 404, 503).
 */
void mcp_gates_start(struct mreq *m, bool with_session, void (*cont)(struct mreq *m));
/* Verifies the Mcp-Session-Id and MCP-Protocol-Version headers, then mcp_gates_start. */
void mcp_gates_session(struct mreq *m, void (*cont)(struct mreq *m));
/* DELETE of m's session; answered once every worker dropped it from its cache. */
void mcp_session_delete(struct mreq *m);
/* logging/setLevel to level (a name of session_log_levels), answered likewise. */
void mcp_session_set_level(struct mreq *m, struct jsonrpc_msg *msg, const char *level);
/* Subscribes the invalidation channels. */
int mcp_gates_init(void);
void mcp_gates_shutdown(void);

#endif
