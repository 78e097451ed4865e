/*
 * mcp.c - the MCP server on /mcp: Streamable HTTP for protocol revisions 2024-11-05 ..
 * 2025-11-25.
 *
 * Request path: Host/Origin check (403) -> CORS -> auth (401/403) -> Accept/Content-Type (406,
 * 415) -> JSON parse (-32700) -> initialize, or session check (400 missing, 404 unknown) and rate
 * limit (429), both in Redis and issued together (one round trip; the session check also
 * refreshes the idle TTL) -> JSON-RPC dispatch -> application/json, or an SSE stream once a
 * tool call emits anything before its result -> audit record per tool call.
 *
 * Invariants:
 * - A struct mreq (one HTTP request on /mcp) is reference counted: one reference for the HTTP
 *   side until its response is finished, one per running tool call. The yajl tree of the body
 *   lives as long as the mreq, so tool arguments stay valid for the whole call.
 * - A tool call finishes exactly once from the handler's side (tool_call_done*, _fail); the
 *   client sees at most one response for it (none when cancelled; a timeout answers first and
 *   the handler's late result is dropped).
 * - Every SSE event of a POST stream is also appended to the Redis event store
 *   (csmcp:ev:<session tag>:<stream>), so a client that lost the stream can resume it with
 *   GET + Last-Event-ID on any worker. Event ids are "<stream>_<seq>", unique per session.
 * - Server->client requests carry the id "srv-<node>-<n>": the POST carrying the client's answer
 *   may land on any worker, which forwards it through Redis pub/sub to csmcp:w:<node>.
 * - No session state is cached in the worker: every request checks Redis, so DELETE -> 404 holds
 *   on every worker at once.
 */
#include "mcp.h"

#include "audit.h"
#include "auth.h"
#include "cfg.h"
#include "crypto.h"
#include "csmcp_build.h"
#include "fixtures.h"
#include "http.h"
#include "json.h"
#include "jsonrpc.h"
#include "jsonschema.h"
#include "log.h"
#include "metrics.h"
#include "ratelimit.h"
#include "redisc.h"
#include "registry.h"
#include "scache.h"
#include "session.h"
#include "sse.h"
#include "tool.h"

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define SSE_RETRY_MS   1000
#define KEEPALIVE_S    15
#define RESUME_POLL_MS 100
#define EVENT_TTL_S    600

static const char *const log_levels[] = {"debug", "info",     "notice", "warning",
                                         "error", "critical", "alert",  "emergency"};

static int level_index(const char *name)
{
    if (name == NULL)
        return -1;
    for (int i = 0; i < 8; i++)
        if (strcmp(name, log_levels[i]) == 0)
            return i;
    return -1;
}

static int64_t mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

struct sess {
    char sid[SESSION_ID_MAX];
    char key[SESSION_KEY_MAX];
    char tag[17];
    int vi;  /* negotiated version index (session_versions) */
    int lvl; /* logging/setLevel threshold (index in log_levels) */
    char *caps;
};

struct tool_call;

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

struct pending {
    unsigned long n;
    struct tool_call *tc;
    tool_reply_fn cb;
    void *arg;
    struct event *timer;
    struct pending *next;
};

struct tool_call {
    struct mreq *m;
    const struct registry_tool *t;
    struct jsonrpc_msg *msg;
    yajl_val args;
    char *args_json;
    char *progress_token; /* JSON text or NULL */
    double last_progress;
    bool have_progress;
    bool cancelled;
    bool answered; /* the client got its response (or a timeout) */
    bool finished; /* the handler finished the call */
    bool timed_out;
    struct timespec start;
    struct event *timer;
    struct pending *pend;
    struct tool_call *next, *prev;
};

static struct {
    struct event_base *base;
    const struct cfg *cfg;
    struct pgpool *pg;
    char node[17];
    unsigned long next_req;
    struct tool_call *calls;
    int ncalls;
    struct mreq *streams;
    int nstreams;
    bool draining;
    struct inv_wait *invs; /* invalidations waiting for every worker's acknowledgement */
    uint64_t inv_seq;
    char **tool_json;     /* per registry tool: the tools/list entry (2025-06-18+) */
    char **tool_json_old; /* without outputSchema/title (older revisions) */
} M;

static const char LUA_CHECK[] = "local v = redis.call('HMGET', KEYS[1], 'lvl', 'caps', 'p') "
                                "if not v[1] then return false end "
                                "redis.call('EXPIRE', KEYS[1], ARGV[1]) return v";
/* DELETE: the session and its subscriptions go, and every worker is told to drop its cached
 * copy (ARGV[2] = "<key> <our node> <nonce>"); returns how many subscribers got the message. */
static const char LUA_DELETE[] = "redis.call('DEL', KEYS[1], KEYS[2]) "
                                 "return redis.call('PUBLISH', ARGV[1], ARGV[2])";
/* logging/setLevel: the same for the level (ARGV[3]) of a session that still exists. */
static const char LUA_SETLEVEL[] = "if redis.call('EXISTS', KEYS[1]) == 1 then "
                                   "redis.call('HSET', KEYS[1], 'lvl', ARGV[3]) end "
                                   "return redis.call('PUBLISH', ARGV[1], ARGV[2])";
static const char LUA_CREATE[] =
    "redis.call('HSET', KEYS[1], 'lvl', ARGV[1], 'caps', ARGV[2], 'v', ARGV[3], 'p', ARGV[5]) "
    "redis.call('EXPIRE', KEYS[1], ARGV[4]) return 1";

/* ------------------------------------------------------------------------------------------ */
/* mreq lifetime and responses                                                                 */

static void stream_unlink(struct mreq *m);

static void mreq_unref(struct mreq *m)
{
    if (--m->refs > 0)
        return;
    if (m->timer)
        event_free(m->timer);
    stream_unlink(m);
    yajl_tree_free(m->root);
    yajl_tree_free(m->caps_tree);
    free(m->s.caps);
    free(m->msgs);
    jbuf_free(&m->out);
    free(m);
}

/* The HTTP side is done with m (response finished). */
static void http_done(struct mreq *m)
{
    if (m->req == NULL)
        return;
    m->req = NULL;
    mreq_unref(m);
}

static void respond(struct mreq *m, int status, const char *ctype, const char *extra,
                    const char *body, size_t len)
{
    if (m->req == NULL)
        return;
    char hdrs[1536];
    snprintf(hdrs, sizeof hdrs, "%s%s", m->hdrs, extra ? extra : "");
    http_respond(m->req, status, ctype, hdrs, body, len);
    http_done(m);
}

static void respond_json(struct mreq *m, int status, const char *body, size_t len)
{
    respond(m, status, "application/json", NULL, body, len);
}

/* HTTP error with a JSON-RPC error body (id null). */
static void respond_rpc_error(struct mreq *m, int status, int code, const char *message,
                              const char *extra)
{
    struct jbuf b;
    jbuf_init(&b);
    jsonrpc_write_error(&b, NULL, code, message, NULL);
    respond(m, status, "application/json", extra, b.p, b.len);
    jbuf_free(&b);
}

static void stream_write(struct mreq *m, const char *data, size_t len)
{
    if (m->req)
        http_stream_write(m->req, data, len);
}

static void stream_end(struct mreq *m)
{
    if (m->req == NULL)
        return;
    http_stream_end(m->req);
    http_done(m);
}

static void event_store(struct mreq *m, char flag, const char *json, size_t len)
{
    if (!m->have_session)
        return;
    char key[96];
    snprintf(key, sizeof key, "csmcp:ev:%s:%s", m->s.tag, m->stream);
    struct jbuf v;
    jbuf_init(&v);
    jbuf_putc(&v, flag);
    jbuf_append(&v, json, len);
    const char *argv[3] = {"RPUSH", key, v.p};
    size_t lens[3] = {5, strlen(key), v.len};
    redisc_cmd(NULL, NULL, 3, argv, lens);
    redisc_cmdf(NULL, NULL, "EXPIRE %s %d", key, EVENT_TTL_S);
    jbuf_free(&v);
}

static void sse_headers(struct mreq *m, char *buf, size_t len)
{
    /* Cache-Control: no-store comes with the security headers on every response. */
    snprintf(buf, len, "%sX-Accel-Buffering: no\r\n", m->hdrs);
}

static void post_keepalive_cb(evutil_socket_t fd, short what, void *arg)
{
    struct mreq *m = arg;
    if (m->req == NULL)
        return; /* the stream has ended; m lives on only for its tool call */
    static const char ka[] = ": keepalive\n\n";
    stream_write(m, ka, sizeof ka - 1);
    struct timeval tv = {KEEPALIVE_S, 0};
    evtimer_add(m->timer, &tv);
}

/* Switches a single-request POST to text/event-stream (idempotent). */
static void start_sse(struct mreq *m)
{
    if (m->sse || m->req == NULL)
        return;
    char hdrs[1536];
    sse_headers(m, hdrs, sizeof hdrs);
    uint8_t rnd[8];
    crypto_random(rnd, sizeof rnd);
    crypto_hex(rnd, sizeof rnd, m->stream);
    m->seq = 0;
    m->sse = true;
    http_stream_begin(m->req, 200, "text/event-stream", hdrs);
    struct jbuf b;
    jbuf_init(&b);
    char id[40];
    snprintf(id, sizeof id, "%s_0", m->stream);
    sse_priming(&b, id, SSE_RETRY_MS);
    stream_write(m, b.p, b.len);
    jbuf_free(&b);
    /* A call may wait long for the client (sampling, elicitation): keep proxies from cutting
     * the quiet stream. */
    m->timer = evtimer_new(M.base, post_keepalive_cb, m);
    if (m->timer) {
        struct timeval tv = {KEEPALIVE_S, 0};
        evtimer_add(m->timer, &tv);
    }
}

/* One message on m's SSE stream (and in the event store). final ends the stream. */
static void sse_send(struct mreq *m, const char *json, size_t len, bool final)
{
    m->seq++;
    event_store(m, final ? 'f' : 'm', json, len);
    if (m->req) {
        char id[40];
        snprintf(id, sizeof id, "%s_%ld", m->stream, m->seq);
        struct jbuf b;
        jbuf_init(&b);
        sse_event(&b, id, json, len);
        stream_write(m, b.p, b.len);
        jbuf_free(&b);
    }
    if (final)
        stream_end(m);
}

/* The response to one request of m (single or batch element). */
static void reply(struct mreq *m, const char *json, size_t len)
{
    if (m->batch) {
        if (!m->out_first)
            jbuf_putc(&m->out, ',');
        m->out_first = false;
        jbuf_append(&m->out, json, len);
        if (--m->outstanding == 0) {
            jbuf_putc(&m->out, ']');
            if (m->out.len <= 2)
                respond(m, 202, NULL, NULL, "", 0);
            else
                respond_json(m, 200, m->out.p, m->out.len);
        }
        return;
    }
    if (m->sse)
        sse_send(m, json, len, true);
    else
        respond_json(m, 200, json, len);
}

static void reply_error(struct mreq *m, yajl_val id, int code, const char *message,
                        const char *data_json)
{
    struct jbuf b;
    jbuf_init(&b);
    jsonrpc_write_error(&b, id, code, message, data_json);
    reply(m, b.p, b.len);
    jbuf_free(&b);
}

/* ------------------------------------------------------------------------------------------ */
/* Host, Origin, CORS, auth                                                                    */

static bool host_allowed(const char *host)
{
    if (host == NULL)
        return false;
    char h[256];
    snprintf(h, sizeof h, "%s", host);
    /* strip the port: "[::1]:8080" -> "[::1]", "a:1" -> "a" */
    char *end = h[0] == '[' ? strchr(h, ']') : NULL;
    char *colon = strrchr(end ? end : h, ':');
    if (colon)
        *colon = '\0';
    for (int i = 0; i < M.cfg->mcp_allowed_hosts.n; i++)
        if (strcasecmp(h, M.cfg->mcp_allowed_hosts.v[i]) == 0)
            return true;
    return false;
}

static bool origin_allowed(const char *origin)
{
    for (int i = 0; i < M.cfg->mcp_allowed_origins.n; i++)
        if (strcmp(origin, M.cfg->mcp_allowed_origins.v[i]) == 0)
            return true;
    const char *p = NULL;
    if (strncasecmp(origin, "http://", 7) == 0)
        p = origin + 7;
    else if (strncasecmp(origin, "https://", 8) == 0)
        p = origin + 8;
    if (p == NULL || strchr(p, '/'))
        return false;
    return host_allowed(p);
}

/* 401/403/503 from auth (scope == NULL), or 403 for a tool whose scope the token lacks. The
 * WWW-Authenticate header comes from the auth module (RFC 6750 / RFC 9728). */
static void auth_fail(struct mreq *m, const struct auth_result *r, const char *scope)
{
    struct auth_result denied;
    if (scope) {
        denied = *r;
        denied.status = 403;
        snprintf(denied.error, sizeof denied.error, "insufficient_scope");
        snprintf(denied.description, sizeof denied.description, "the token lacks the %s scope",
                 scope);
        r = &denied;
    }
    int status = r->status ? r->status : 401;
    char hdr[1536];
    const char *host = m->req ? http_req_header(m->req, "Host") : NULL;
    if (status == 503 || auth_www_authenticate(r, host, scope, hdr, sizeof hdr) < 0)
        hdr[0] = '\0';
    respond_rpc_error(m, status, -32001,
                      scope ? "insufficient scope"
                            : (r->description[0] ? r->description : "authentication required"),
                      hdr[0] ? hdr : NULL);
}

/* ------------------------------------------------------------------------------------------ */
/* tools/list entries                                                                          */

static char *tool_entry(const struct tool_def *d, bool modern)
{
    struct jbuf b;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"name\":");
    json_str(&b, d->name);
    if (modern && d->title) {
        jbuf_puts(&b, ",\"title\":");
        json_str(&b, d->title);
    }
    jbuf_puts(&b, ",\"description\":");
    json_str(&b, d->description);
    jbuf_puts(&b, ",\"inputSchema\":");
    jbuf_puts(&b, d->input_schema);
    if (modern && d->output_schema) {
        jbuf_puts(&b, ",\"outputSchema\":");
        jbuf_puts(&b, d->output_schema);
    }
    jbuf_puts(&b, ",\"annotations\":{");
    if (d->title) {
        jbuf_puts(&b, "\"title\":");
        json_str(&b, d->title);
        jbuf_putc(&b, ',');
    }
    jbuf_printf(&b,
                "\"readOnlyHint\":%s,\"destructiveHint\":%s,\"idempotentHint\":%s,"
                "\"openWorldHint\":%s}}",
                d->hints & TOOL_HINT_READONLY ? "true" : "false",
                d->hints & TOOL_HINT_DESTRUCTIVE ? "true" : "false",
                d->hints & TOOL_HINT_IDEMPOTENT ? "true" : "false",
                d->hints & TOOL_HINT_OPENWORLD ? "true" : "false");
    return jbuf_steal(&b);
}

/* Parses a cursor "p:<offset>"; -1 when invalid. */
static long parse_cursor(yajl_val params, size_t total)
{
    yajl_val c = json_get(params, "cursor");
    if (c == NULL || c->type == yajl_t_null)
        return 0;
    if (c->type != yajl_t_string || strncmp(c->u.string, "p:", 2) != 0)
        return -1;
    char *end;
    long off = strtol(c->u.string + 2, &end, 10);
    if (*end || end == c->u.string + 2 || off < 0 || (size_t)off > total)
        return -1;
    return off;
}

static void write_next_cursor(struct jbuf *b, size_t next, size_t total)
{
    if (next < total)
        jbuf_printf(b, ",\"nextCursor\":\"p:%zu\"", next);
}

/*
 * Starts a paginated list result (tools, resources, templates, prompts): checks the cursor,
 * sets the page [*off, *end) of total items and opens b with `{"<key>":[`. Returns false after
 * answering -32602 for a bad cursor (b is then not initialised).
 */
static bool list_open(struct mreq *m, struct jsonrpc_msg *msg, size_t total, const char *key,
                      struct jbuf *b, size_t *off, size_t *end)
{
    long o = parse_cursor(msg->params, total);
    if (o < 0) {
        reply_error(m, msg->id, JSONRPC_INVALID_PARAMS, "Invalid cursor", NULL);
        return false;
    }
    *off = (size_t)o;
    *end = *off + (size_t)M.cfg->mcp_page_size;
    if (*end > total)
        *end = total;
    jbuf_init(b);
    jsonrpc_open_result(b, msg->id);
    jbuf_printf(b, "{\"%s\":[", key);
    return true;
}

/* Closes a list opened by list_open, adds nextCursor when items remain, replies, frees b. */
static void list_close(struct mreq *m, struct jbuf *b, size_t end, size_t total)
{
    jbuf_putc(b, ']');
    write_next_cursor(b, end, total);
    jbuf_puts(b, "}}");
    reply(m, b->p, b->len);
    jbuf_free(b);
}

/* ------------------------------------------------------------------------------------------ */
/* tool calls                                                                                  */

static void tc_unlink_and_free(struct tool_call *tc)
{
    if (tc->prev)
        tc->prev->next = tc->next;
    else
        M.calls = tc->next;
    if (tc->next)
        tc->next->prev = tc->prev;
    M.ncalls--;
    while (tc->pend) {
        struct pending *p = tc->pend;
        tc->pend = p->next;
        event_free(p->timer);
        free(p);
    }
    if (tc->timer)
        event_free(tc->timer);
    free(tc->args_json);
    free(tc->progress_token);
    struct mreq *m = tc->m;
    free(tc);
    mreq_unref(m);
}

/* Sends a notification or request produced during the call on its stream. */
static void tc_emit(struct tool_call *tc, const char *json, size_t len)
{
    struct mreq *m = tc->m;
    if (m->batch || tc->answered)
        return;
    if (!m->sse) {
        if (m->req == NULL)
            return; /* client gone before any stream existed: nothing to resume */
        start_sse(m);
    }
    sse_send(m, json, len, false);
}

static void tc_answer(struct tool_call *tc, const char *result_json, size_t len)
{
    if (tc->answered)
        return;
    tc->answered = true;
    if (tc->timer)
        event_del(tc->timer);
    struct mreq *m = tc->m;
    if (tc->cancelled) {
        /* No response for a cancelled request (spec); just close our side. */
        if (m->batch) {
            if (--m->outstanding == 0) {
                jbuf_putc(&m->out, ']');
                respond(m, m->out.len <= 2 ? 202 : 200, "application/json", NULL,
                        m->out.len <= 2 ? "" : m->out.p, m->out.len <= 2 ? 0 : m->out.len);
            }
        } else if (m->sse) {
            stream_end(m);
        } else {
            respond(m, 202, NULL, NULL, "", 0);
        }
        return;
    }
    struct jbuf b;
    jbuf_init(&b);
    jsonrpc_open_result(&b, tc->msg->id);
    jbuf_append(&b, result_json, len);
    jbuf_putc(&b, '}');
    reply(m, b.p, b.len);
    jbuf_free(&b);
}

static void tc_finish(struct tool_call *tc, const char *result_json, size_t len, bool is_error)
{
    if (tc->finished)
        return;
    tc->finished = true;
    char labels[200];
    snprintf(labels, sizeof labels, "tool=\"%s\",outcome=\"%s\"", tc->t->def->name,
             is_error ? "error" : "ok");
    metrics_inc("csmcp_mcp_tool_calls_total", labels, 1);
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    struct audit_entry ae = {
        .principal = tool_call_principal(tc),
        .method = "tools/call",
        .tool = tc->t->def->name,
        .args_json = tool_call_args_json(tc),
        .outcome = tc->cancelled   ? "cancelled"
                   : tc->timed_out ? "timeout"
                   : is_error      ? "error"
                                   : "ok",
        .latency_s = (double)(now.tv_sec - tc->start.tv_sec) +
                     (double)(now.tv_nsec - tc->start.tv_nsec) / 1e9,
    };
    audit_record(&ae);
    tc_answer(tc, result_json, len);
    tc_unlink_and_free(tc);
}

static void tc_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct tool_call *tc = arg;
    if (tc->answered)
        return;
    log_warn("tool %s: call timed out after %d s", tc->t->def->name, M.cfg->mcp_call_timeout);
    tc->answered = true;
    tc->timed_out = true;
    struct jbuf b;
    jbuf_init(&b);
    jsonrpc_write_error(&b, tc->msg->id, -32001, "Request timed out", NULL);
    reply(tc->m, b.p, b.len);
    jbuf_free(&b);
}

yajl_val tool_call_args(struct tool_call *tc)
{
    return tc->args;
}

const char *tool_call_args_json(struct tool_call *tc)
{
    if (tc->args_json == NULL) {
        struct jbuf b;
        jbuf_init(&b);
        if (tc->args)
            json_val(&b, tc->args);
        else
            jbuf_puts(&b, "{}");
        tc->args_json = jbuf_steal(&b);
    }
    return tc->args_json;
}

const struct tool_def *tool_call_def(struct tool_call *tc)
{
    return tc->t->def;
}

const char *tool_call_principal(struct tool_call *tc)
{
    return tc->m->auth.principal[0] ? tc->m->auth.principal : "anonymous";
}

struct pgpool *tool_call_pg(struct tool_call *tc)
{
    return M.pg;
}

struct event_base *tool_call_base(struct tool_call *tc)
{
    return M.base;
}

bool tool_call_cancelled(struct tool_call *tc)
{
    return tc->cancelled || tc->answered;
}

void tool_call_progress(struct tool_call *tc, double progress, double total, const char *message)
{
    if (tc->progress_token == NULL)
        return;
    if (tc->have_progress && progress <= tc->last_progress)
        return; /* progress MUST increase */
    tc->have_progress = true;
    tc->last_progress = progress;
    struct jbuf b;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{"
                  "\"progressToken\":");
    jbuf_puts(&b, tc->progress_token);
    jbuf_puts(&b, ",\"progress\":");
    json_double(&b, progress);
    if (total > 0) {
        jbuf_puts(&b, ",\"total\":");
        json_double(&b, total);
    }
    if (message) {
        jbuf_puts(&b, ",\"message\":");
        json_str(&b, message);
    }
    jbuf_puts(&b, "}}");
    tc_emit(tc, b.p, b.len);
    jbuf_free(&b);
}

void tool_call_log(struct tool_call *tc, const char *level, const char *logger,
                   const char *data_json)
{
    int li = level_index(level);
    if (li < 0 || li < tc->m->s.lvl)
        return;
    struct jbuf b;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{"
                  "\"level\":");
    json_str(&b, log_levels[li]);
    if (logger) {
        jbuf_puts(&b, ",\"logger\":");
        json_str(&b, logger);
    }
    jbuf_puts(&b, ",\"data\":");
    jbuf_puts(&b, data_json ? data_json : "null");
    jbuf_puts(&b, "}}");
    tc_emit(tc, b.p, b.len);
    jbuf_free(&b);
}

bool tool_call_client_can(struct tool_call *tc, const char *capability)
{
    struct mreq *m = tc->m;
    if (m->caps_tree == NULL && m->s.caps) {
        char err[64];
        m->caps_tree = json_parse(m->s.caps, strlen(m->s.caps), 32, 1 << 16, err, sizeof err);
    }
    yajl_val v = json_get(m->caps_tree, capability);
    return v != NULL && v->type == yajl_t_object;
}

static void pending_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct pending *p = arg;
    struct tool_call *tc = p->tc;
    struct pending **pp = &tc->pend;
    while (*pp && *pp != p)
        pp = &(*pp)->next;
    if (*pp)
        *pp = p->next;
    tool_reply_fn cb = p->cb;
    void *cbarg = p->arg;
    event_free(p->timer);
    free(p);
    cb(tc, NULL, "{\"code\":-32001,\"message\":\"client did not answer in time\"}", cbarg);
}

int tool_call_request(struct tool_call *tc, const char *method, const char *params_json,
                      tool_reply_fn cb, void *arg)
{
    const char *cap = strncmp(method, "sampling/", 9) == 0       ? "sampling"
                      : strncmp(method, "elicitation/", 12) == 0 ? "elicitation"
                      : strncmp(method, "roots/", 6) == 0        ? "roots"
                                                                 : NULL;
    if (cap == NULL || !tool_call_client_can(tc, cap) || tc->m->batch || tc->answered)
        return -1;
    struct pending *p = calloc(1, sizeof *p);
    if (p == NULL)
        return -1;
    p->n = ++M.next_req;
    p->tc = tc;
    p->cb = cb;
    p->arg = arg;
    p->timer = evtimer_new(M.base, pending_timeout_cb, p);
    if (p->timer == NULL) {
        free(p);
        return -1;
    }
    struct timeval tv = {M.cfg->mcp_call_timeout, 0};
    evtimer_add(p->timer, &tv);
    p->next = tc->pend;
    tc->pend = p;
    struct jbuf b;
    jbuf_init(&b);
    jbuf_printf(&b, "{\"jsonrpc\":\"2.0\",\"id\":\"srv-%s-%lu\",\"method\":", M.node, p->n);
    json_str(&b, method);
    jbuf_puts(&b, ",\"params\":");
    jbuf_puts(&b, params_json ? params_json : "{}");
    jbuf_putc(&b, '}');
    tc_emit(tc, b.p, b.len);
    jbuf_free(&b);
    return 0;
}

static void done_json(struct tool_call *tc, struct jbuf *b, bool is_error)
{
    tc_finish(tc, b->p, b->len, is_error);
    jbuf_free(b);
}

void tool_call_done(struct tool_call *tc, const char *structured_json, const char *text)
{
    if (tc->finished)
        return;
    struct jbuf b;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"content\":[{\"type\":\"text\",\"text\":");
    json_str(&b, text ? text : structured_json);
    jbuf_puts(&b, "}]");
    if (structured_json && tc->m->s.vi <= 1) { /* structuredContent since 2025-06-18 */
        jbuf_puts(&b, ",\"structuredContent\":");
        jbuf_puts(&b, structured_json);
    }
    jbuf_puts(&b, ",\"isError\":false}");
    done_json(tc, &b, false);
}

void tool_call_done_content(struct tool_call *tc, const char *content_json, bool is_error)
{
    if (tc->finished)
        return;
    struct jbuf b;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"content\":");
    jbuf_puts(&b, content_json ? content_json : "[]");
    jbuf_printf(&b, ",\"isError\":%s}", is_error ? "true" : "false");
    done_json(tc, &b, is_error);
}

void tool_call_fail(struct tool_call *tc, const char *fmt, ...)
{
    if (tc->finished)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    struct jbuf b;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"content\":[{\"type\":\"text\",\"text\":");
    json_str(&b, msg);
    jbuf_puts(&b, "}],\"isError\":true}");
    done_json(tc, &b, true);
}

void mcp_call_close_stream(struct tool_call *tc)
{
    struct mreq *m = tc->m;
    if (m->batch || tc->answered)
        return;
    start_sse(m);
    stream_end(m); /* the call goes on; its events wait in the event store */
}

/* ------------------------------------------------------------------------------------------ */
/* server->client replies and cancellation across workers                                      */

static void deliver_reply(const char *tag, yajl_val msg)
{
    yajl_val id = json_get(msg, "id");
    if (id == NULL || id->type != yajl_t_string)
        return;
    char node[17];
    unsigned long n;
    if (sscanf(id->u.string, "srv-%16[0-9a-f]-%lu", node, &n) != 2 || strcmp(node, M.node) != 0)
        return;
    for (struct tool_call *tc = M.calls; tc; tc = tc->next) {
        if (strcmp(tc->m->s.tag, tag) != 0)
            continue;
        for (struct pending **pp = &tc->pend; *pp; pp = &(*pp)->next) {
            struct pending *p = *pp;
            if (p->n != n)
                continue;
            *pp = p->next;
            tool_reply_fn cb = p->cb;
            void *cbarg = p->arg;
            event_free(p->timer);
            free(p);
            struct jbuf r;
            jbuf_init(&r);
            yajl_val res = json_get(msg, "result");
            json_val(&r, res ? res : json_get(msg, "error"));
            if (res)
                cb(tc, jbuf_cstr(&r), NULL, cbarg);
            else
                cb(tc, NULL, jbuf_cstr(&r), cbarg);
            jbuf_free(&r);
            return;
        }
    }
}

static void on_reply_msg(const char *channel, const char *msg, size_t len, void *arg)
{
    const char *nl = memchr(msg, '\n', len);
    if (nl == NULL || nl - msg != 16)
        return;
    char tag[17];
    memcpy(tag, msg, 16);
    tag[16] = '\0';
    char err[64];
    yajl_val v = json_parse(nl + 1, len - 17, 64, 1 << 24, err, sizeof err);
    if (v) {
        deliver_reply(tag, v);
        yajl_tree_free(v);
    }
}

/* A client's JSON-RPC response (to our sampling/elicitation request). */
static void route_response(struct mreq *m, yajl_val msg)
{
    yajl_val id = json_get(msg, "id");
    char node[17];
    unsigned long n;
    if (id == NULL || id->type != yajl_t_string ||
        sscanf(id->u.string, "srv-%16[0-9a-f]-%lu", node, &n) != 2)
        return;
    if (strcmp(node, M.node) == 0) {
        deliver_reply(m->s.tag, msg);
        return;
    }
    struct jbuf b;
    jbuf_init(&b);
    jbuf_puts(&b, m->s.tag);
    jbuf_putc(&b, '\n');
    json_val(&b, msg);
    char ch[64];
    snprintf(ch, sizeof ch, "csmcp:w:%s", node);
    const char *argv[3] = {"PUBLISH", ch, b.p};
    size_t lens[3] = {7, strlen(ch), b.len};
    redisc_cmd(NULL, NULL, 3, argv, lens);
    jbuf_free(&b);
}

static void cancel_local(const char *tag, const char *idjson)
{
    for (struct tool_call *tc = M.calls; tc; tc = tc->next) {
        if (strcmp(tc->m->s.tag, tag) != 0 || tc->answered)
            continue;
        struct jbuf b;
        jbuf_init(&b);
        json_val(&b, tc->msg->id);
        bool match = strcmp(jbuf_cstr(&b), idjson) == 0;
        jbuf_free(&b);
        if (match) {
            tc->cancelled = true;
            log_debug("tool %s: cancelled by the client", tc->t->def->name);
        }
    }
}

static void on_cancel_msg(const char *channel, const char *msg, size_t len, void *arg)
{
    const char *nl = memchr(msg, '\n', len);
    if (nl == NULL || nl - msg != 16 || len > 4096)
        return;
    char tag[17], idjson[4096];
    memcpy(tag, msg, 16);
    tag[16] = '\0';
    snprintf(idjson, sizeof idjson, "%.*s", (int)(len - 17), nl + 1);
    cancel_local(tag, idjson);
}

static void handle_cancelled(struct mreq *m, yajl_val params)
{
    yajl_val rid = json_get(params, "requestId");
    if (rid == NULL || (rid->type != yajl_t_string && rid->type != yajl_t_number))
        return;
    struct jbuf b;
    jbuf_init(&b);
    json_val(&b, rid);
    cancel_local(m->s.tag, b.p);
    struct jbuf p;
    jbuf_init(&p);
    jbuf_puts(&p, m->s.tag);
    jbuf_putc(&p, '\n');
    jbuf_append(&p, b.p, b.len);
    const char *argv[3] = {"PUBLISH", "csmcp:cancel", p.p};
    size_t lens[3] = {7, 12, p.len};
    redisc_cmd(NULL, NULL, 3, argv, lens);
    jbuf_free(&p);
    jbuf_free(&b);
}

/* ------------------------------------------------------------------------------------------ */
/* method handlers                                                                             */

static void write_capabilities(struct jbuf *b)
{
    jbuf_puts(b, "{\"tools\":{\"listChanged\":false},\"resources\":{\"subscribe\":true,"
                 "\"listChanged\":false},\"prompts\":{\"listChanged\":false},\"logging\":{},"
                 "\"completions\":{}}");
}

static void m_tools_list(struct mreq *m, struct jsonrpc_msg *msg)
{
    size_t total = registry_count(), off, end;
    bool modern = m->s.vi <= 1;
    struct jbuf b;
    if (!list_open(m, msg, total, "tools", &b, &off, &end))
        return;
    for (size_t i = off; i < end; i++) {
        if (i > off)
            jbuf_putc(&b, ',');
        jbuf_puts(&b, modern ? M.tool_json[i] : M.tool_json_old[i]);
    }
    list_close(m, &b, end, total);
}

static void m_tools_call(struct mreq *m, struct jsonrpc_msg *msg)
{
    const char *name = json_get_str(msg->params, "name");
    yajl_val args = json_get(msg->params, "arguments");
    if (name == NULL) {
        reply_error(m, msg->id, JSONRPC_INVALID_PARAMS, "Invalid params: name must be a string",
                    NULL);
        return;
    }
    if (args && args->type == yajl_t_null)
        args = NULL;
    if (args && args->type != yajl_t_object) {
        reply_error(m, msg->id, JSONRPC_INVALID_PARAMS,
                    "Invalid params: arguments must be an object", NULL);
        return;
    }
    const struct registry_tool *t = registry_find(name);
    if (t == NULL) {
        char em[300];
        snprintf(em, sizeof em, "Unknown tool: %.200s", name);
        reply_error(m, msg->id, JSONRPC_INVALID_PARAMS, em, NULL);
        return;
    }
    if (!auth_scope_allows(m->auth.scopes, (int)t->def->scope)) {
        static const char *const names[] = {"read", "write", "admin"};
        const char *scope = names[t->def->scope <= TOOL_SCOPE_ADMIN ? t->def->scope : 0];
        struct audit_entry ae = {.principal =
                                     m->auth.principal[0] ? m->auth.principal : "anonymous",
                                 .method = "tools/call",
                                 .tool = name,
                                 .outcome = "denied",
                                 .detail = "insufficient scope"};
        audit_record(&ae);
        if (!m->batch) {
            auth_fail(m, &m->auth, scope);
            return;
        }
        reply_error(m, msg->id, -32001, "insufficient scope", NULL);
        return;
    }
    if (t->input) {
        char err[512];
        if (jsonschema_validate(t->input, args, err, sizeof err) < 0) {
            if (m->s.vi == 0) {
                /* 2025-11-25: input validation errors are tool execution errors. */
                struct jbuf b;
                jbuf_init(&b);
                jsonrpc_open_result(&b, msg->id);
                jbuf_puts(&b, "{\"content\":[{\"type\":\"text\",\"text\":");
                char txt[640];
                snprintf(txt, sizeof txt, "Invalid arguments for tool %s: %s", name, err);
                json_str(&b, txt);
                jbuf_puts(&b, "}],\"isError\":true}}");
                reply(m, b.p, b.len);
                jbuf_free(&b);
            } else {
                struct jbuf d;
                jbuf_init(&d);
                jbuf_puts(&d, "{\"tool\":");
                json_str(&d, name);
                jbuf_puts(&d, ",\"error\":");
                json_str(&d, err);
                jbuf_putc(&d, '}');
                char em[640];
                snprintf(em, sizeof em, "Invalid params: %s", err);
                reply_error(m, msg->id, JSONRPC_INVALID_PARAMS, em, d.p);
                jbuf_free(&d);
            }
            return;
        }
    }
    struct tool_call *tc = calloc(1, sizeof *tc);
    if (tc == NULL) {
        reply_error(m, msg->id, JSONRPC_INTERNAL_ERROR, "out of memory", NULL);
        return;
    }
    tc->m = m;
    m->refs++;
    clock_gettime(CLOCK_MONOTONIC, &tc->start);
    tc->t = t;
    tc->msg = msg;
    tc->args = args;
    yajl_val meta = json_get_obj(msg->params, "_meta");
    yajl_val pt = json_get(meta, "progressToken");
    if (pt && (pt->type == yajl_t_string || pt->type == yajl_t_number)) {
        struct jbuf b;
        jbuf_init(&b);
        json_val(&b, pt);
        tc->progress_token = jbuf_steal(&b);
    }
    tc->timer = evtimer_new(M.base, tc_timeout_cb, tc);
    if (tc->timer) {
        struct timeval tv = {M.cfg->mcp_call_timeout, 0};
        evtimer_add(tc->timer, &tv);
    }
    tc->next = M.calls;
    if (M.calls)
        M.calls->prev = tc;
    M.calls = tc;
    M.ncalls++;
    if (t->def->handler)
        t->def->handler(tc);
    else
        tool_sql_handler(tc);
}

static void m_resources_list(struct mreq *m, struct jsonrpc_msg *msg, bool templates)
{
    size_t total = !M.cfg->mcp_conformance_fixtures ? 0
                   : templates                      ? fixture_templates_n
                                                    : fixture_resources_n;
    size_t off, end;
    struct jbuf b;
    if (!list_open(m, msg, total, templates ? "resourceTemplates" : "resources", &b, &off, &end))
        return;
    for (size_t i = off; i < end; i++) {
        const char *uri, *name, *title, *desc, *mime;
        if (templates) {
            const struct fixture_template *t = &fixture_templates[i];
            uri = t->uri_template, name = t->name, title = t->title, desc = t->description,
            mime = t->mime;
        } else {
            const struct fixture_resource *r = &fixture_resources[i];
            uri = r->uri, name = r->name, title = r->title, desc = r->description, mime = r->mime;
        }
        jbuf_puts(&b, i > off ? ",{" : "{");
        jbuf_puts(&b, templates ? "\"uriTemplate\":" : "\"uri\":");
        json_str(&b, uri);
        jbuf_puts(&b, ",\"name\":");
        json_str(&b, name);
        if (title) {
            jbuf_puts(&b, ",\"title\":");
            json_str(&b, title);
        }
        if (desc) {
            jbuf_puts(&b, ",\"description\":");
            json_str(&b, desc);
        }
        if (mime) {
            jbuf_puts(&b, ",\"mimeType\":");
            json_str(&b, mime);
        }
        jbuf_putc(&b, '}');
    }
    list_close(m, &b, end, total);
}

static void m_resources_read(struct mreq *m, struct jsonrpc_msg *msg)
{
    const char *uri = json_get_str(msg->params, "uri");
    if (uri == NULL) {
        reply_error(m, msg->id, JSONRPC_INVALID_PARAMS, "Invalid params: uri must be a string",
                    NULL);
        return;
    }
    struct jbuf b;
    jbuf_init(&b);
    jsonrpc_open_result(&b, msg->id);
    jbuf_puts(&b, "{\"contents\":");
    bool found = false;
    for (size_t i = 0; M.cfg->mcp_conformance_fixtures && i < fixture_resources_n; i++) {
        const struct fixture_resource *r = &fixture_resources[i];
        if (strcmp(r->uri, uri) != 0)
            continue;
        jbuf_puts(&b, "[{\"uri\":");
        json_str(&b, r->uri);
        if (r->mime) {
            jbuf_puts(&b, ",\"mimeType\":");
            json_str(&b, r->mime);
        }
        jbuf_puts(&b, r->text ? ",\"text\":" : ",\"blob\":");
        json_str(&b, r->text ? r->text : r->blob);
        jbuf_puts(&b, "}]");
        found = true;
        break;
    }
    for (size_t i = 0; !found && M.cfg->mcp_conformance_fixtures && i < fixture_templates_n; i++)
        found = fixture_templates[i].read(uri, &b) == 0;
    if (!found) {
        jbuf_free(&b);
        struct jbuf d;
        jbuf_init(&d);
        jbuf_puts(&d, "{\"uri\":");
        json_str(&d, uri);
        jbuf_putc(&d, '}');
        reply_error(m, msg->id, -32002, "Resource not found", d.p);
        jbuf_free(&d);
        return;
    }
    jbuf_puts(&b, "}}");
    reply(m, b.p, b.len);
    jbuf_free(&b);
}

static void m_resources_subscribe(struct mreq *m, struct jsonrpc_msg *msg, bool on)
{
    const char *uri = json_get_str(msg->params, "uri");
    if (uri == NULL) {
        reply_error(m, msg->id, JSONRPC_INVALID_PARAMS, "Invalid params: uri must be a string",
                    NULL);
        return;
    }
    char key[SESSION_KEY_MAX + 8];
    snprintf(key, sizeof key, "%s:subs", m->s.key);
    const char *argv[3] = {on ? "SADD" : "SREM", key, uri};
    redisc_cmd(NULL, NULL, 3, argv, NULL);
    if (on)
        redisc_cmdf(NULL, NULL, "EXPIRE %s %d", key, M.cfg->mcp_session_ttl);
    struct jbuf b;
    jbuf_init(&b);
    jsonrpc_open_result(&b, msg->id);
    jbuf_puts(&b, "{}}");
    reply(m, b.p, b.len);
    jbuf_free(&b);
}

static const struct fixture_prompt *find_prompt(const char *name)
{
    for (size_t i = 0; name && M.cfg->mcp_conformance_fixtures && i < fixture_prompts_n; i++)
        if (strcmp(fixture_prompts[i].name, name) == 0)
            return &fixture_prompts[i];
    return NULL;
}

static void m_prompts_list(struct mreq *m, struct jsonrpc_msg *msg)
{
    size_t total = M.cfg->mcp_conformance_fixtures ? fixture_prompts_n : 0, off, end;
    struct jbuf b;
    if (!list_open(m, msg, total, "prompts", &b, &off, &end))
        return;
    for (size_t i = off; i < end; i++) {
        const struct fixture_prompt *p = &fixture_prompts[i];
        jbuf_puts(&b, i > off ? ",{\"name\":" : "{\"name\":");
        json_str(&b, p->name);
        if (p->title) {
            jbuf_puts(&b, ",\"title\":");
            json_str(&b, p->title);
        }
        jbuf_puts(&b, ",\"description\":");
        json_str(&b, p->description);
        if (p->arguments_json) {
            jbuf_puts(&b, ",\"arguments\":");
            jbuf_puts(&b, p->arguments_json);
        }
        jbuf_putc(&b, '}');
    }
    list_close(m, &b, end, total);
}

static void m_prompts_get(struct mreq *m, struct jsonrpc_msg *msg)
{
    const char *name = json_get_str(msg->params, "name");
    const struct fixture_prompt *p = find_prompt(name);
    if (p == NULL) {
        char em[300];
        snprintf(em, sizeof em, "Unknown prompt: %.200s", name ? name : "(none)");
        reply_error(m, msg->id, JSONRPC_INVALID_PARAMS, em, NULL);
        return;
    }
    yajl_val args = json_get(msg->params, "arguments");
    if (args && args->type != yajl_t_object && args->type != yajl_t_null) {
        reply_error(m, msg->id, JSONRPC_INVALID_PARAMS,
                    "Invalid params: arguments must be an object", NULL);
        return;
    }
    struct jbuf b;
    jbuf_init(&b);
    jsonrpc_open_result(&b, msg->id);
    char err[256];
    if (p->get(args, &b, err, sizeof err) < 0) {
        jbuf_free(&b);
        char em[300];
        snprintf(em, sizeof em, "Invalid params: %s", err);
        reply_error(m, msg->id, JSONRPC_INVALID_PARAMS, em, NULL);
        return;
    }
    jbuf_putc(&b, '}');
    reply(m, b.p, b.len);
    jbuf_free(&b);
}

static void m_complete(struct mreq *m, struct jsonrpc_msg *msg)
{
    yajl_val ref = json_get_obj(msg->params, "ref");
    yajl_val arg = json_get_obj(msg->params, "argument");
    const char *type = json_get_str(ref, "type");
    const char *argname = json_get_str(arg, "name");
    if (type == NULL || argname == NULL) {
        reply_error(m, msg->id, JSONRPC_INVALID_PARAMS,
                    "Invalid params: ref.type and argument.name are required", NULL);
        return;
    }
    if (strcmp(type, "ref/prompt") == 0) {
        if (find_prompt(json_get_str(ref, "name")) == NULL) {
            reply_error(m, msg->id, JSONRPC_INVALID_PARAMS, "Unknown prompt", NULL);
            return;
        }
    } else if (strcmp(type, "ref/resource") != 0) {
        reply_error(m, msg->id, JSONRPC_INVALID_PARAMS, "Invalid params: unknown ref.type", NULL);
        return;
    }
    /* No argument of our prompts or templates has a closed set of values to offer. */
    struct jbuf b;
    jbuf_init(&b);
    jsonrpc_open_result(&b, msg->id);
    jbuf_puts(&b, "{\"completion\":{\"values\":[],\"total\":0,\"hasMore\":false}}}");
    reply(m, b.p, b.len);
    jbuf_free(&b);
}

/* ------------------------------------------------------------------------------------------ */
/* session invalidation: DELETE and logging/setLevel change what other workers may have cached  */

/*
 * The change and its PUBLISH on SCACHE_CHANNEL run as one script; every subscribed worker (on
 * every host) drops the session from its cache and acknowledges on csmcp:wa:<our node>. The
 * client's answer waits until as many acknowledgements arrived as PUBLISH counted receivers, so
 * no worker answers from a stale cache after the client saw DELETE or setLevel succeed. A worker
 * that does not acknowledge within INV_WAIT_MS of the script's answer (stuck, dying) is not
 * waited for: its cache entry expires within mcp.session_cache_ms anyway (counted in
 * csmcp_session_invalidation_timeouts_total).
 */
#define INV_WAIT_MS 300

struct inv_wait {
    uint64_t nonce;
    long need; /* receivers of the PUBLISH; -1 until the script answered */
    long got;  /* acknowledgements so far */
    struct mreq *m;
    struct jsonrpc_msg *msg; /* setLevel: the request to answer; NULL for DELETE */
    struct event *timer;     /* armed once the script answered: bounds the wait for acks */
    bool detached;           /* shut down while the script was pending: only free on answer */
    struct inv_wait *next;
};

static void inv_finish(struct inv_wait *w, bool ok)
{
    struct inv_wait **pp = &M.invs;
    while (*pp && *pp != w)
        pp = &(*pp)->next;
    if (*pp)
        *pp = w->next;
    if (w->timer)
        event_free(w->timer);
    struct mreq *m = w->m;
    if (m->req != NULL) {
        if (w->msg == NULL && ok) {
            respond(m, 200, NULL, NULL, "", 0);
        } else if (w->msg == NULL) {
            respond_rpc_error(m, 503, -32000, "Session store unavailable", "Retry-After: 1\r\n");
        } else if (ok) {
            struct jbuf b;
            jbuf_init(&b);
            jsonrpc_open_result(&b, w->msg->id);
            jbuf_puts(&b, "{}}");
            reply(m, b.p, b.len);
            jbuf_free(&b);
        } else {
            reply_error(m, w->msg->id, JSONRPC_INTERNAL_ERROR,
                        "Session store unavailable: the level was not changed; retry", NULL);
        }
    }
    mreq_unref(m);
    free(w);
}

static void inv_check(struct inv_wait *w)
{
    if (w->need >= 0 && w->got >= w->need)
        inv_finish(w, true);
}

static void inv_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct inv_wait *w = arg;
    metrics_inc("csmcp_session_invalidation_timeouts_total", NULL, 1);
    log_info("session invalidation: %ld of %ld workers acknowledged within %d ms", w->got, w->need,
             INV_WAIT_MS);
    inv_finish(w, true);
}

static void inv_published(redisReply *r, void *arg)
{
    struct inv_wait *w = arg;
    if (w->detached) {
        free(w);
        return;
    }
    if (r == NULL || r->type != REDIS_REPLY_INTEGER) {
        inv_finish(w, false);
        return;
    }
    w->need = (long)r->integer;
    /* The change is made; wait at most INV_WAIT_MS for the acknowledgements still missing. */
    w->timer = evtimer_new(M.base, inv_timeout, w);
    struct timeval tv = {0, INV_WAIT_MS * 1000};
    if (w->timer)
        evtimer_add(w->timer, &tv);
    inv_check(w);
}

/* An acknowledgement "<nonce>" of one of our invalidations. */
static void on_inv_ack(const char *channel, const char *msg, size_t len, void *arg)
{
    char buf[24];
    if (len == 0 || len >= sizeof buf)
        return;
    memcpy(buf, msg, len);
    buf[len] = '\0';
    uint64_t nonce = strtoull(buf, NULL, 10);
    for (struct inv_wait *w = M.invs; w; w = w->next)
        if (w->nonce == nonce) {
            w->got++;
            inv_check(w);
            return;
        }
}

/* Another worker (or this one) deleted a session or changed its level: "<key> <node> <nonce>". */
static void on_sinv_msg(const char *channel, const char *msg, size_t len, void *arg)
{
    char buf[SESSION_KEY_MAX + 64], key[SESSION_KEY_MAX], node[17];
    unsigned long long nonce;
    if (len == 0 || len >= sizeof buf)
        return;
    memcpy(buf, msg, len);
    buf[len] = '\0';
    if (sscanf(buf, "%63s %16s %llu", key, node, &nonce) != 3 || strlen(node) != 16)
        return;
    scache_drop(key);
    char ch[32], n[24];
    snprintf(ch, sizeof ch, "csmcp:wa:%s", node);
    snprintf(n, sizeof n, "%llu", nonce);
    const char *argv[3] = {"PUBLISH", ch, n};
    redisc_cmd(NULL, NULL, 3, argv, NULL);
}

/* Runs script (LUA_DELETE or LUA_SETLEVEL) for m's session and answers when every worker has
 * dropped it from its cache; msg is the setLevel request (NULL: DELETE). */
static void invalidate(struct mreq *m, struct jsonrpc_msg *msg, const char *script,
                       const char *level)
{
    struct inv_wait *w = calloc(1, sizeof *w);
    if (w == NULL) {
        if (msg)
            reply_error(m, msg->id, JSONRPC_INTERNAL_ERROR, "Internal error: out of memory", NULL);
        else
            respond_rpc_error(m, 503, -32000, "Session store unavailable", "Retry-After: 1\r\n");
        return;
    }
    w->nonce = ++M.inv_seq;
    w->need = -1;
    w->m = m;
    w->msg = msg;
    m->refs++;
    w->next = M.invs;
    M.invs = w;
    scache_drop(m->s.key);
    char subs[SESSION_KEY_MAX + 8], note[SESSION_KEY_MAX + 48];
    snprintf(subs, sizeof subs, "%s:subs", m->s.key);
    snprintf(note, sizeof note, "%s %s %llu", m->s.key, M.node, (unsigned long long)w->nonce);
    const char *argv[8] = {"EVAL", script, "2", m->s.key, subs, SCACHE_CHANNEL, note, level};
    if (redisc_cmd(inv_published, w, level ? 8 : 7, argv, NULL) < 0)
        inv_finish(w, false);
}

static void m_set_level(struct mreq *m, struct jsonrpc_msg *msg)
{
    const char *level = json_get_str(msg->params, "level");
    int li = level_index(level);
    if (li < 0) {
        reply_error(m, msg->id, JSONRPC_INVALID_PARAMS,
                    "Invalid params: level must be one of debug, info, notice, warning, error, "
                    "critical, alert, emergency",
                    NULL);
        return;
    }
    m->s.lvl = li;
    invalidate(m, msg, LUA_SETLEVEL, log_levels[li]);
}

static void dispatch_request(struct mreq *m, struct jsonrpc_msg *msg)
{
    const char *me = msg->method;
    if (msg->params && msg->params->type != yajl_t_object) {
        reply_error(m, msg->id, JSONRPC_INVALID_PARAMS, "Invalid params: must be an object", NULL);
        return;
    }
    if (strcmp(me, "tools/call") == 0)
        m_tools_call(m, msg);
    else if (strcmp(me, "tools/list") == 0)
        m_tools_list(m, msg);
    else if (strcmp(me, "ping") == 0) {
        struct jbuf b;
        jbuf_init(&b);
        jsonrpc_open_result(&b, msg->id);
        jbuf_puts(&b, "{}}");
        reply(m, b.p, b.len);
        jbuf_free(&b);
    } else if (strcmp(me, "resources/list") == 0)
        m_resources_list(m, msg, false);
    else if (strcmp(me, "resources/templates/list") == 0)
        m_resources_list(m, msg, true);
    else if (strcmp(me, "resources/read") == 0)
        m_resources_read(m, msg);
    else if (strcmp(me, "resources/subscribe") == 0)
        m_resources_subscribe(m, msg, true);
    else if (strcmp(me, "resources/unsubscribe") == 0)
        m_resources_subscribe(m, msg, false);
    else if (strcmp(me, "prompts/list") == 0)
        m_prompts_list(m, msg);
    else if (strcmp(me, "prompts/get") == 0)
        m_prompts_get(m, msg);
    else if (strcmp(me, "completion/complete") == 0)
        m_complete(m, msg);
    else if (strcmp(me, "logging/setLevel") == 0)
        m_set_level(m, msg);
    else if (strcmp(me, "initialize") == 0)
        reply_error(m, msg->id, JSONRPC_INVALID_REQUEST,
                    "initialize must be the only message of a request without a session", NULL);
    else {
        char em[300];
        snprintf(em, sizeof em, "Method not found: %.200s", me);
        reply_error(m, msg->id, JSONRPC_METHOD_NOT_FOUND, em, NULL);
    }
}

/* Runs the messages of a POST on a verified session. */
static void dispatch_all(struct mreq *m)
{
    size_t nreq = 0;
    for (size_t i = 0; i < m->nmsgs; i++)
        if (m->msgs[i].kind == JSONRPC_REQUEST || m->msgs[i].kind == JSONRPC_INVALID)
            nreq++;
    for (size_t i = 0; i < m->nmsgs; i++) {
        struct jsonrpc_msg *msg = &m->msgs[i];
        if (msg->kind == JSONRPC_NOTIFICATION) {
            if (strcmp(msg->method, "notifications/cancelled") == 0)
                handle_cancelled(m, msg->params);
        } else if (msg->kind == JSONRPC_RESPONSE) {
            yajl_val v = m->batch ? m->root->u.array.values[i] : m->root;
            route_response(m, v);
        }
    }
    if (nreq == 0) {
        respond(m, 202, NULL, NULL, "", 0);
        return;
    }
    if (m->batch) {
        m->outstanding = (int)nreq;
        jbuf_putc(&m->out, '[');
        m->out_first = true;
    }
    /* Keep m alive while dispatching: a synchronous reply may finish the HTTP side. */
    m->refs++;
    for (size_t i = 0; i < m->nmsgs; i++) {
        struct jsonrpc_msg *msg = &m->msgs[i];
        if (msg->kind == JSONRPC_REQUEST)
            dispatch_request(m, msg);
        else if (msg->kind == JSONRPC_INVALID)
            reply_error(m, msg->id, JSONRPC_INVALID_REQUEST, msg->why, NULL);
    }
    mreq_unref(m);
}

/* ------------------------------------------------------------------------------------------ */
/* session check, initialize, GET, DELETE                                                      */

static void count_rpc(const char *what)
{
    char labels[64];
    snprintf(labels, sizeof labels, "method=\"%s\"", what);
    metrics_inc("csmcp_mcp_requests_total", labels, 1);
}

static void get_begin(struct mreq *m);
static void delete_begin(struct mreq *m);

static void respond_limited(struct mreq *m)
{
    char hdr[128], body[512];
    if (ratelimit_headers(&m->rl, hdr, sizeof hdr) < 0)
        hdr[0] = '\0';
    const char *idjson = NULL;
    struct jbuf id;
    jbuf_init(&id);
    if (!m->batch && m->nmsgs == 1 && m->msgs[0].id) {
        json_val(&id, m->msgs[0].id);
        idjson = id.p;
    }
    int n = ratelimit_error_json(&m->rl, idjson, body, sizeof body);
    jbuf_free(&id);
    bool limited = m->rl.verdict == RATELIMIT_LIMITED;
    if (limited && !m->batch && m->nmsgs == 1 && m->msgs[0].method &&
        strcmp(m->msgs[0].method, "tools/call") == 0) {
        struct audit_entry ae = {.principal =
                                     m->auth.principal[0] ? m->auth.principal : "anonymous",
                                 .method = "tools/call",
                                 .tool = json_get_str(m->msgs[0].params, "name"),
                                 .outcome = "limited",
                                 .detail = m->rl.limit};
        audit_record(&ae);
    }
    if (n < 0) {
        respond_rpc_error(m, limited ? 429 : 503, limited ? -32029 : -32030,
                          limited ? "Rate limit exceeded" : "Rate limiter unavailable", hdr);
        return;
    }
    respond(m, limited ? 429 : 503, "application/json", hdr, body, (size_t)n);
}

/* One pre-dispatch check finished; when all have, answer or continue. */
static void gate_done(struct mreq *m)
{
    if (--m->gates > 0)
        return;
    if (m->req != NULL) {
        if (m->rl.verdict != RATELIMIT_ALLOW)
            respond_limited(m);
        else if (m->sess_status == 404)
            respond_rpc_error(m, 404, -32001, "Session not found", NULL);
        else if (m->sess_status)
            respond_rpc_error(m, 503, -32000, "Session store unavailable", "Retry-After: 1\r\n");
        else
            m->cont(m);
    }
    mreq_unref(m);
}

static const char *principal_of(const struct mreq *m)
{
    return m->auth.principal[0] ? m->auth.principal : "anonymous";
}

static void rl_done(const struct ratelimit_result *r, void *arg)
{
    struct mreq *m = arg;
    m->rl = *r;
    gate_done(m);
}

static void session_checked(redisReply *r, void *arg)
{
    struct mreq *m = arg;
    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        m->sess_status = 503;
    } else if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
               r->element[0]->type != REDIS_REPLY_STRING) {
        m->sess_status = 404;
    } else if (r->element[2]->type != REDIS_REPLY_STRING ||
               strcmp(r->element[2]->str, principal_of(m)) != 0) {
        /* A session belongs to the principal that created it: a leaked id is useless with
         * another token. Answered like an unknown session. */
        m->sess_status = 404;
    } else {
        int li = level_index(r->element[0]->str);
        m->s.lvl = li < 0 ? 1 : li;
        const char *caps = r->element[1]->type == REDIS_REPLY_STRING ? r->element[1]->str : NULL;
        if (caps)
            m->s.caps = strdup(caps);
        m->have_session = true;
        /* Cacheable only if no invalidation arrived while the answer was on its way (it may
         * predate a DELETE) and the pub/sub connection that carries them never dropped. */
        if (m->sess_epoch && m->sess_gen == scache_generation() &&
            redisc_sub_epoch(SCACHE_CHANNEL) == m->sess_epoch)
            scache_put(m->s.key, m->sess_epoch, mono_ms(), M.cfg->mcp_session_cache_ms, m->s.lvl,
                       caps, principal_of(m));
    }
    gate_done(m);
}

/* The session is known alive to this worker (scache): no Redis round trip. */
static bool session_cached(struct mreq *m)
{
    m->sess_epoch = 0;
    if (M.cfg->mcp_session_cache_ms <= 0)
        return false;
    uint32_t epoch = redisc_sub_epoch(SCACHE_CHANNEL);
    if (epoch == 0)
        return false;
    struct scache_hit hit;
    if (!scache_get(m->s.key, epoch, mono_ms(), &hit)) {
        m->sess_epoch = epoch;
        m->sess_gen = scache_generation();
        return false;
    }
    if (strcmp(hit.principal, principal_of(m)) != 0) {
        m->sess_status = 404; /* another principal's session: as in session_checked */
        return true;
    }
    m->s.lvl = hit.lvl;
    if (hit.caps)
        m->s.caps = strdup(hit.caps);
    m->have_session = true;
    metrics_inc("csmcp_session_cache_hits_total", NULL, 1);
    return true;
}

static void after_session(struct mreq *m)
{
    if (m->method == HTTP_M_POST)
        dispatch_all(m);
    else if (m->method == HTTP_M_GET)
        get_begin(m);
    else
        delete_begin(m);
}

/*
 * Starts the rate-limit check (and the session check when with_session) concurrently; cont
 * runs once both have passed. The two Redis commands go out back to back on one connection,
 * so the request pays one round trip.
 */
static void start_gates(struct mreq *m, bool with_session, void (*cont)(struct mreq *m))
{
    m->cont = cont;
    m->gates = with_session ? 3 : 2; /* +1 held while starting */
    m->refs++;
    if (with_session && session_cached(m)) {
        m->gates--;
    } else if (with_session) {
        char ttl[16];
        snprintf(ttl, sizeof ttl, "%d", M.cfg->mcp_session_ttl);
        const char *argv[5] = {"EVAL", LUA_CHECK, "1", m->s.key, ttl};
        if (redisc_cmd(session_checked, m, 5, argv, NULL) < 0) {
            m->sess_status = 503;
            m->gates--;
        }
    }
    const char *tool = NULL;
    enum ratelimit_class cls = RATELIMIT_READ;
    if (!m->batch && m->nmsgs == 1 && m->msgs[0].kind == JSONRPC_REQUEST &&
        strcmp(m->msgs[0].method, "tools/call") == 0) {
        const char *name = json_get_str(m->msgs[0].params, "name");
        const struct registry_tool *t = name ? registry_find(name) : NULL;
        if (t) {
            tool = t->def->name;
            cls = t->def->scope == TOOL_SCOPE_READ ? RATELIMIT_READ : RATELIMIT_WRITE;
        }
    }
    const char *principal = m->auth.principal[0] ? m->auth.principal : "anonymous";
    ratelimit_check(principal, tool, cls, rl_done, m);
    gate_done(m);
}

/* Verifies the session header and starts the Redis check; the continuation runs in
 * session_checked. */
static void check_session(struct mreq *m)
{
    const char *sid = http_req_header(m->req, "Mcp-Session-Id");
    if (sid == NULL) {
        respond_rpc_error(m, 400, -32000, "Bad Request: Mcp-Session-Id header is required", NULL);
        return;
    }
    int vi;
    int64_t created;
    if (!session_lookup(sid, &vi, &created, m->s.key, m->s.tag)) {
        respond_rpc_error(m, 404, -32001, "Session not found", NULL);
        return;
    }
    const char *pv = http_req_header(m->req, "MCP-Protocol-Version");
    if (pv && session_version_index(pv) < 0) {
        char em[200];
        snprintf(em, sizeof em, "Bad Request: Unsupported protocol version: %.64s", pv);
        respond_rpc_error(m, 400, -32000, em, NULL);
        return;
    }
    snprintf(m->s.sid, sizeof m->s.sid, "%s", sid);
    m->s.vi = vi;
    if (m->batch && vi != 2) {
        respond_rpc_error(m, 400, JSONRPC_INVALID_REQUEST,
                          "Invalid Request: batches are only allowed on protocol 2025-03-26", NULL);
        return;
    }
    start_gates(m, true, after_session);
}

struct init_ctx {
    struct mreq *m;
    int vi;
    char sid[SESSION_ID_MAX];
};

static void initialize_stored(redisReply *r, void *arg)
{
    struct init_ctx *ic = arg;
    struct mreq *m = ic->m;
    if (m->req == NULL) {
        free(ic);
        mreq_unref(m);
        return;
    }
    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        respond_rpc_error(m, 503, -32000, "Session store unavailable", "Retry-After: 1\r\n");
        free(ic);
        mreq_unref(m);
        return;
    }
    struct jbuf b;
    jbuf_init(&b);
    jsonrpc_open_result(&b, m->msgs[0].id);
    jbuf_puts(&b, "{\"protocolVersion\":");
    json_str(&b, session_versions[ic->vi]);
    jbuf_puts(&b, ",\"capabilities\":");
    write_capabilities(&b);
    jbuf_puts(&b, ",\"serverInfo\":{\"name\":\"csmcp\",\"title\":\"Customer Success MCP "
                  "server\",\"version\":\"" CSMCP_VERSION "\"},\"instructions\":"
                  "\"Customer Success data: accounts, health, onboarding, support, renewals, "
                  "expansion and feedback. Use tools/list to discover the tools.\"}}");
    char hdr[160];
    snprintf(hdr, sizeof hdr, "Mcp-Session-Id: %s\r\n", ic->sid);
    respond(m, 200, "application/json", hdr, b.p, b.len);
    jbuf_free(&b);
    free(ic);
    mreq_unref(m);
}

static void do_initialize(struct mreq *m, struct jsonrpc_msg *msg)
{
    const char *want = json_get_str(msg->params, "protocolVersion");
    yajl_val caps = json_get_obj(msg->params, "capabilities");
    if (want == NULL) {
        struct jbuf b;
        jbuf_init(&b);
        jsonrpc_write_error(&b, msg->id, JSONRPC_INVALID_PARAMS,
                            "Invalid params: protocolVersion must be a string", NULL);
        respond_json(m, 200, b.p, b.len);
        jbuf_free(&b);
        return;
    }
    int vi = session_version_index(want);
    if (vi < 0)
        vi = 0; /* unsupported: answer with our latest; the client decides */
    struct init_ctx *ic = calloc(1, sizeof *ic);
    if (ic == NULL || session_mint(vi, ic->sid) < 0) {
        free(ic);
        respond_rpc_error(m, 500, JSONRPC_INTERNAL_ERROR, "cannot create a session", NULL);
        return;
    }
    ic->m = m;
    ic->vi = vi;
    struct jbuf cj;
    jbuf_init(&cj);
    if (caps)
        json_val(&cj, caps);
    else
        jbuf_puts(&cj, "{}");
    char key[SESSION_KEY_MAX], ttl[16];
    session_key(ic->sid, key);
    snprintf(ttl, sizeof ttl, "%d", M.cfg->mcp_session_ttl);
    const char *argv[9] = {"EVAL", LUA_CREATE,     "1", key, "info", cj.p, session_versions[vi],
                           ttl,    principal_of(m)};
    m->refs++;
    int rc = redisc_cmd(initialize_stored, ic, 9, argv, NULL);
    jbuf_free(&cj);
    if (rc < 0) {
        m->refs--;
        free(ic);
        respond_rpc_error(m, 503, -32000, "Session store unavailable", "Retry-After: 1\r\n");
        return;
    }
    count_rpc("initialize");
}

static void initialize_gated(struct mreq *m)
{
    do_initialize(m, &m->msgs[0]);
}

static bool accepts(const char *accept, const char *type)
{
    if (accept == NULL)
        return false;
    return strstr(accept, type) != NULL || strstr(accept, "*/*") != NULL;
}

static void post_begin(struct mreq *m)
{
    const char *accept = http_req_header(m->req, "Accept");
    if (!accepts(accept, "application/json") || !accepts(accept, "text/event-stream")) {
        respond_rpc_error(m, 406, -32000,
                          "Not Acceptable: Client must accept both application/json and "
                          "text/event-stream",
                          NULL);
        return;
    }
    const char *ct = http_req_header(m->req, "Content-Type");
    if (ct == NULL || strncasecmp(ct, "application/json", 16) != 0) {
        respond_rpc_error(m, 415, -32000,
                          "Unsupported Media Type: Content-Type must be application/json", NULL);
        return;
    }
    size_t len;
    const char *body = http_req_body(m->req, &len);
    char err[256];
    m->root = json_parse(body, len, M.cfg->http_max_json_depth,
                         (size_t)M.cfg->http_max_string_length, err, sizeof err);
    if (m->root == NULL) {
        char em[320];
        snprintf(em, sizeof em, "Parse error: %s", err);
        respond_rpc_error(m, 400, JSONRPC_PARSE_ERROR, em, NULL);
        return;
    }
    if (m->root->type == yajl_t_array) {
        size_t n = m->root->u.array.len;
        if (n == 0) {
            respond_rpc_error(m, 400, JSONRPC_INVALID_REQUEST, "Invalid Request: empty batch",
                              NULL);
            return;
        }
        m->batch = true;
        m->msgs = calloc(n, sizeof *m->msgs);
        if (m->msgs == NULL) {
            respond_rpc_error(m, 500, JSONRPC_INTERNAL_ERROR, "out of memory", NULL);
            return;
        }
        m->nmsgs = n;
        for (size_t i = 0; i < n; i++)
            jsonrpc_classify(m->root->u.array.values[i], &m->msgs[i]);
    } else {
        m->msgs = calloc(1, sizeof *m->msgs);
        if (m->msgs == NULL) {
            respond_rpc_error(m, 500, JSONRPC_INTERNAL_ERROR, "out of memory", NULL);
            return;
        }
        m->nmsgs = 1;
        if (jsonrpc_classify(m->root, &m->msgs[0]) == JSONRPC_INVALID) {
            struct jbuf b;
            jbuf_init(&b);
            char em[200];
            snprintf(em, sizeof em, "Invalid Request: %s", m->msgs[0].why);
            jsonrpc_write_error(&b, m->msgs[0].id, JSONRPC_INVALID_REQUEST, em, NULL);
            respond_json(m, 400, b.p, b.len);
            jbuf_free(&b);
            return;
        }
        if (m->msgs[0].kind == JSONRPC_REQUEST && strcmp(m->msgs[0].method, "initialize") == 0) {
            start_gates(m, false, initialize_gated);
            return;
        }
        if (m->msgs[0].method)
            count_rpc(strcmp(m->msgs[0].method, "tools/call") == 0   ? "tools/call"
                      : strcmp(m->msgs[0].method, "tools/list") == 0 ? "tools/list"
                                                                     : "other");
    }
    check_session(m);
}

/* ---- GET: standalone stream, or resumption with Last-Event-ID ---- */

static void stream_link(struct mreq *m)
{
    m->is_stream = true;
    m->snext = M.streams;
    m->sprev = NULL;
    if (M.streams)
        M.streams->sprev = m;
    M.streams = m;
    M.nstreams++;
}

static void stream_unlink(struct mreq *m)
{
    if (!m->is_stream)
        return;
    m->is_stream = false;
    if (m->sprev)
        m->sprev->snext = m->snext;
    else
        M.streams = m->snext;
    if (m->snext)
        m->snext->sprev = m->sprev;
    M.nstreams--;
}

static void get_stream_end(struct mreq *m)
{
    if (m->timer)
        event_del(m->timer);
    stream_unlink(m);
    stream_end(m);
}

static void get_closed(struct http_req *r, void *arg)
{
    struct mreq *m = arg;
    get_stream_end(m);
}

static void keepalive_checked(redisReply *r, void *arg)
{
    struct mreq *m = arg;
    if (m->req && r && r->type == REDIS_REPLY_INTEGER && r->integer == 0) {
        log_debug("GET stream: session ended");
        get_stream_end(m);
    }
    mreq_unref(m);
}

static void resume_poll(struct mreq *m);

static void stream_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct mreq *m = arg;
    if (m->req == NULL)
        return;
    if (m->resume) {
        resume_poll(m);
        return;
    }
    struct jbuf b;
    jbuf_init(&b);
    sse_comment(&b, "keepalive");
    stream_write(m, b.p, b.len);
    jbuf_free(&b);
    m->refs++;
    if (redisc_cmdf(keepalive_checked, m, "EXISTS %s", m->s.key) < 0)
        m->refs--;
}

static void resume_got(redisReply *r, void *arg)
{
    struct mreq *m = arg;
    bool final = false;
    if (m->req && r && r->type == REDIS_REPLY_ARRAY) {
        struct jbuf b;
        jbuf_init(&b);
        if (r->elements == 0 && ++m->resume_quiet >= KEEPALIVE_S * 1000 / RESUME_POLL_MS) {
            m->resume_quiet = 0;
            sse_comment(&b, "keepalive");
        } else if (r->elements > 0) {
            m->resume_quiet = 0;
        }
        for (size_t i = 0; i < r->elements && !final; i++) {
            redisReply *e = r->element[i];
            if (e->type != REDIS_REPLY_STRING || e->len < 1)
                continue;
            m->resume_from++;
            char id[40];
            snprintf(id, sizeof id, "%s_%ld", m->stream, m->resume_from);
            sse_event(&b, id, e->str + 1, e->len - 1);
            final = e->str[0] == 'f';
        }
        stream_write(m, b.p, b.len);
        jbuf_free(&b);
    }
    if (m->req) {
        if (final || --m->resume_deadline_ticks <= 0 || M.draining) {
            get_stream_end(m);
        } else {
            struct timeval tv = {0, RESUME_POLL_MS * 1000};
            evtimer_add(m->timer, &tv);
        }
    }
    mreq_unref(m);
}

static void resume_poll(struct mreq *m)
{
    char key[96];
    snprintf(key, sizeof key, "csmcp:ev:%s:%s", m->s.tag, m->stream);
    m->refs++;
    if (redisc_cmdf(resume_got, m, "LRANGE %s %ld -1", key, m->resume_from) < 0) {
        m->refs--;
        struct timeval tv = {0, RESUME_POLL_MS * 1000};
        evtimer_add(m->timer, &tv);
    }
}

static void get_begin(struct mreq *m)
{
    const char *accept = http_req_header(m->req, "Accept");
    if (!accepts(accept, "text/event-stream")) {
        respond_rpc_error(m, 406, -32000, "Not Acceptable: Client must accept text/event-stream",
                          NULL);
        return;
    }
    if (M.draining) {
        respond_rpc_error(m, 503, -32000, "Server is draining", "Retry-After: 1\r\n");
        return;
    }
    m->timer = evtimer_new(M.base, stream_timer_cb, m);
    if (m->timer == NULL) {
        respond_rpc_error(m, 500, JSONRPC_INTERNAL_ERROR, "out of memory", NULL);
        return;
    }
    char hdrs[1536];
    sse_headers(m, hdrs, sizeof hdrs);
    const char *last = http_req_header(m->req, "Last-Event-ID");
    char stream[17];
    long seq;
    if (last && sscanf(last, "%16[0-9a-f]_%ld", stream, &seq) == 2 && strlen(stream) == 16 &&
        seq >= 0) {
        m->resume = true;
        snprintf(m->stream, sizeof m->stream, "%s", stream);
        m->resume_from = seq;
        m->resume_deadline_ticks = (long)(M.cfg->mcp_call_timeout + 5) * 1000 / RESUME_POLL_MS;
    } else {
        uint8_t rnd[8];
        crypto_random(rnd, sizeof rnd);
        crypto_hex(rnd, sizeof rnd, m->stream);
    }
    http_stream_begin(m->req, 200, "text/event-stream", hdrs);
    http_req_on_close(m->req, get_closed, m);
    stream_link(m);
    if (m->resume) {
        resume_poll(m);
        return;
    }
    struct jbuf b;
    jbuf_init(&b);
    char id[40];
    snprintf(id, sizeof id, "%s_0", m->stream);
    sse_priming(&b, id, SSE_RETRY_MS);
    stream_write(m, b.p, b.len);
    jbuf_free(&b);
    struct timeval tv = {KEEPALIVE_S, 0};
    evtimer_add(m->timer, &tv);
}

static void delete_begin(struct mreq *m)
{
    invalidate(m, NULL, LUA_DELETE, NULL);
}

/* ------------------------------------------------------------------------------------------ */
/* entry                                                                                       */

static void authed(const struct auth_result *r, void *arg)
{
    struct mreq *m = arg;
    if (m->req == NULL) {
        mreq_unref(m);
        return;
    }
    m->auth = *r;
    m->refs++; /* hold m while the continuation runs */
    if (r->status) {
        auth_fail(m, r, NULL);
    } else if (m->method == HTTP_M_POST) {
        post_begin(m);
    } else {
        check_session(m);
    }
    mreq_unref(m);
}

static void mcp_handler(struct http_req *req, void *arg)
{
    struct mreq *m = calloc(1, sizeof *m);
    if (m == NULL) {
        http_respond(req, 503, "application/json", NULL, "{}", 2);
        return;
    }
    m->req = req;
    m->refs = 1;
    m->method = http_req_method(req);
    m->s.lvl = 1;
    jbuf_init(&m->out);

    const char *host = http_req_header(req, "Host");
    const char *origin = http_req_header(req, "Origin");
    if (!host_allowed(host)) {
        respond_rpc_error(m, 403, -32000, "Forbidden: Host not allowed", NULL);
        return;
    }
    if (origin && !origin_allowed(origin)) {
        respond_rpc_error(m, 403, -32000, "Forbidden: Origin not allowed", NULL);
        return;
    }
    if (origin)
        snprintf(m->hdrs, sizeof m->hdrs,
                 "Access-Control-Allow-Origin: %.256s\r\nVary: Origin\r\n"
                 "Access-Control-Expose-Headers: Mcp-Session-Id, MCP-Protocol-Version, "
                 "WWW-Authenticate\r\n",
                 origin);
    if (m->method == HTTP_M_OPTIONS) {
        respond(m, 204, NULL,
                "Access-Control-Allow-Methods: GET, POST, DELETE, OPTIONS\r\n"
                "Access-Control-Allow-Headers: Content-Type, Accept, Authorization, "
                "Mcp-Session-Id, MCP-Protocol-Version, Last-Event-ID\r\n"
                "Access-Control-Max-Age: 600\r\n",
                "", 0);
        return;
    }
    if (m->method != HTTP_M_POST && m->method != HTTP_M_GET && m->method != HTTP_M_DELETE) {
        respond_rpc_error(m, 405, -32000, "Method not allowed", "Allow: GET, POST, DELETE\r\n");
        return;
    }
    /* The HTTP reference (refs = 1) is handed to authed. */
    auth_authenticate(http_req_header(req, "Authorization"), authed, m);
}

static void make_tool_json(void)
{
    size_t n = registry_count();
    M.tool_json = calloc(n ? n : 1, sizeof(char *));
    M.tool_json_old = calloc(n ? n : 1, sizeof(char *));
    if (M.tool_json == NULL || M.tool_json_old == NULL)
        abort();
    for (size_t i = 0; i < n; i++) {
        M.tool_json[i] = tool_entry(registry_at(i)->def, true);
        M.tool_json_old[i] = tool_entry(registry_at(i)->def, false);
    }
}

int mcp_init(struct event_base *base, const struct cfg *cfg, struct pgpool *pg)
{
    memset(&M, 0, sizeof M);
    M.base = base;
    M.cfg = cfg;
    M.pg = pg;
    char err[256];
    if (session_init(cfg, err, sizeof err) < 0) {
        log_error("session secret: %s (set CSMCP_SESSION_SECRET or mcp.session_secret_file)", err);
        return -1;
    }
    uint8_t rnd[8];
    if (crypto_random(rnd, sizeof rnd) < 0)
        return -1;
    crypto_hex(rnd, sizeof rnd, M.node);
    make_tool_json();
    char ch[64];
    snprintf(ch, sizeof ch, "csmcp:w:%s", M.node);
    if (redisc_subscribe(ch, on_reply_msg, NULL) < 0 ||
        redisc_subscribe("csmcp:cancel", on_cancel_msg, NULL) < 0 ||
        redisc_subscribe(SCACHE_CHANNEL, on_sinv_msg, NULL) < 0)
        return -1;
    snprintf(ch, sizeof ch, "csmcp:wa:%s", M.node);
    if (redisc_subscribe(ch, on_inv_ack, NULL) < 0)
        return -1;
    return http_route("/mcp", "/mcp", mcp_handler, NULL);
}

void mcp_drain(void)
{
    M.draining = true;
    while (M.streams)
        get_stream_end(M.streams);
}

void mcp_shutdown(void)
{
    mcp_drain();
    for (size_t i = 0; M.tool_json && i < registry_count(); i++) {
        free(M.tool_json[i]);
        free(M.tool_json_old[i]);
    }
    free(M.tool_json);
    free(M.tool_json_old);
    M.tool_json = M.tool_json_old = NULL;
    while (M.invs) {
        struct inv_wait *w = M.invs;
        M.invs = w->next;
        if (w->timer)
            event_free(w->timer);
        mreq_unref(w->m);
        if (w->need < 0)
            w->detached = true; /* its script's callback still comes (redisc_shutdown) */
        else
            free(w);
    }
    scache_shutdown();
    session_shutdown();
}

int mcp_inflight(void)
{
    return M.ncalls + M.nstreams;
}
