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
/* Open GET streams. */
int mcp_streams_open(void);

/* ---- toolcall.c: tool calls ---- */

/* Starts a validated tools/call (args: the object or NULL) and runs its handler. */
void mcp_call_start(struct mreq *m, struct jsonrpc_msg *msg, const struct registry_tool *t,
                    yajl_val args);
/* A client's JSON-RPC response (to our sampling/elicitation request). */
void mcp_route_response(struct mreq *m, yajl_val msg);
/* notifications/cancelled from the client. */
void mcp_handle_cancelled(struct mreq *m, yajl_val params);
/* Subscribes the reply and cancel channels. */
int mcp_calls_init(void);
/* Tool calls in flight. */
int mcp_calls_inflight(void);

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
