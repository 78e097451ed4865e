/*
 * streams.c - everything the MCP server writes to a client, and the life of struct mreq:
 * JSON responses, the SSE stream a POST switches to when a tool call emits before its result,
 * the Redis event store behind it, and GET streams (standalone, or resumption with
 * Last-Event-ID).
 *
 * Invariants:
 * - An mreq is freed only by mreq_unref when its last reference goes; the HTTP side's
 *   reference goes when its response is finished (m->req becomes NULL), after which every
 *   write here is a no-op, so a late tool result or event never touches a closed connection.
 * - Every SSE event of a POST stream is also appended to the Redis event store
 *   (csmcp:ev:<session tag>:<stream>, EVENT_TTL_S), so a client that lost the stream can resume
 *   it with GET + Last-Event-ID on any worker. Event ids are "<stream>_<seq>", unique per
 *   session; a stored event starts with 'm' (message) or 'f' (the final one, which ends it).
 * - A GET stream is on the open-streams list from its first byte until it ends; mcp_drain ends
 *   them all and refuses new ones.
 * - A modern-era (2026-07-28) response passes mcp_up.modern_rewrite once: in mreq_respond, or for
 *   the final event of its SSE stream in mreq_reply. Its stream has no event ids and no event
 *   store (it has no session).
 */
#include "mcp.h"
#include "mcp_int.h"

#include "cfg.h"
#include "crypto.h"
#include "log.h"
#include "metrics.h"
#include "redisc.h"
#include "sse.h"

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SSE_RETRY_MS   1000
#define KEEPALIVE_S    15
#define RESUME_POLL_MS 100
#define EVENT_TTL_S    600
/* The MCP server's worker-wide context: defined here, in the bottom layer, set by mcp_init. */
struct mcp_env mcp_env;
struct mcp_upcalls mcp_up; /* filled by mcp_init (mcp_int.h: the layers) */

static struct {
    struct mreq *streams; /* open GET streams */
    int nstreams;
    bool draining;
} S;

/* ------------------------------------------------------------------------------------------ */
/* mreq lifetime and responses                                                                 */

static void stream_unlink(struct mreq *m);

void mreq_unref(struct mreq *m)
{
    if (--m->refs > 0)
        return;
    if (m->timer)
        event_free(m->timer);
    stream_unlink(m);
    yajl_tree_free(m->root);
    yajl_tree_free(m->caps_tree);
    yajl_tree_free(m->mrtr_state);
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

void mreq_respond(struct mreq *m, int status, const char *ctype, const char *extra,
                  const char *body, size_t len)
{
    if (m->req == NULL)
        return;
    char hdrs[1536];
    snprintf(hdrs, sizeof hdrs, "%s%s", m->hdrs, extra ? extra : "");
    size_t mlen = 0;
    char *mbody = m->modern ? mcp_up.modern_rewrite(m, body, len, &mlen) : NULL;
    http_respond(m->req, status, ctype, hdrs, mbody ? mbody : body, mbody ? mlen : len);
    free(mbody);
    http_done(m);
}

void mreq_respond_json(struct mreq *m, int status, const char *body, size_t len)
{
    mreq_respond(m, status, "application/json", NULL, body, len);
}

/* HTTP error with a JSON-RPC error body (id null). */
void mreq_respond_error(struct mreq *m, int status, int code, const char *message,
                        const char *extra)
{
    struct jbuf b;
    jbuf_init(&b);
    jsonrpc_write_error(&b, NULL, code, message, NULL);
    mreq_respond(m, status, "application/json", extra, b.p, b.len);
    jbuf_free(&b);
}

static void stream_write(struct mreq *m, const char *data, size_t len)
{
    if (m->req)
        http_stream_write(m->req, data, len);
}

void mreq_stream_end(struct mreq *m)
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
void mreq_start_sse(struct mreq *m)
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
    if (!m->modern) { /* 2026-07-28 streams are not resumable: no ids, no retry */
        struct jbuf b;
        jbuf_init(&b);
        char id[40];
        snprintf(id, sizeof id, "%s_0", m->stream);
        sse_priming(&b, id, SSE_RETRY_MS);
        stream_write(m, b.p, b.len);
        jbuf_free(&b);
    }
    /* A call may wait long for the client (sampling, elicitation): keep proxies from cutting
     * the quiet stream. */
    m->timer = evtimer_new(mcp_env.base, post_keepalive_cb, m);
    if (m->timer) {
        struct timeval tv = {KEEPALIVE_S, 0};
        evtimer_add(m->timer, &tv);
    }
}

/* One message on m's SSE stream (and in the event store). final ends the stream. */
void mreq_sse_send(struct mreq *m, const char *json, size_t len, bool final)
{
    m->seq++;
    event_store(m, final ? 'f' : 'm', json, len);
    if (m->req) {
        char id[40];
        snprintf(id, sizeof id, "%s_%ld", m->stream, m->seq);
        struct jbuf b;
        jbuf_init(&b);
        sse_event(&b, m->modern ? NULL : id, json, len);
        stream_write(m, b.p, b.len);
        jbuf_free(&b);
    }
    if (final)
        mreq_stream_end(m);
}

/* The response to one request of m (single or batch element). */
void mreq_reply(struct mreq *m, const char *json, size_t len)
{
    if (m->batch) {
        if (!m->out_first)
            jbuf_putc(&m->out, ',');
        m->out_first = false;
        jbuf_append(&m->out, json, len);
        if (--m->outstanding == 0) {
            jbuf_putc(&m->out, ']');
            if (m->out.len <= 2)
                mreq_respond(m, 202, NULL, NULL, "", 0);
            else
                mreq_respond_json(m, 200, m->out.p, m->out.len);
        }
        return;
    }
    if (m->sse && m->modern) {
        size_t mlen = 0;
        char *mbody = mcp_up.modern_rewrite(m, json, len, &mlen);
        mreq_sse_send(m, mbody ? mbody : json, mbody ? mlen : len, true);
        free(mbody);
    } else if (m->sse) {
        mreq_sse_send(m, json, len, true);
    } else {
        mreq_respond_json(m, 200, json, len);
    }
}

void mreq_reply_error(struct mreq *m, yajl_val id, int code, const char *message,
                      const char *data_json)
{
    struct jbuf b;
    jbuf_init(&b);
    jsonrpc_write_error(&b, id, code, message, data_json);
    mreq_reply(m, b.p, b.len);
    jbuf_free(&b);
}
/* ---- GET: standalone stream, or resumption with Last-Event-ID ---- */

static void stream_link(struct mreq *m)
{
    m->is_stream = true;
    m->snext = S.streams;
    m->sprev = NULL;
    if (S.streams)
        S.streams->sprev = m;
    S.streams = m;
    S.nstreams++;
}

static void stream_unlink(struct mreq *m)
{
    if (!m->is_stream)
        return;
    m->is_stream = false;
    if (m->sprev)
        m->sprev->snext = m->snext;
    else
        S.streams = m->snext;
    if (m->snext)
        m->snext->sprev = m->sprev;
    S.nstreams--;
}

static void get_stream_end(struct mreq *m)
{
    if (m->timer)
        event_del(m->timer);
    if (m->modern && S.draining && m->req) {
        /* a subscriptions/listen stream ended by the server: its graceful result, whose
         * subscriptionId is the listen request's id */
        struct jbuf id, b, ev;
        jbuf_init(&id);
        jbuf_init(&b);
        jbuf_init(&ev);
        jsonrpc_write_id(&id, m->msgs[0].id);
        jsonrpc_open_result(&b, m->msgs[0].id);
        jbuf_puts(&b, "{\"resultType\":\"complete\",\"_meta\":{"
                      "\"io.modelcontextprotocol/subscriptionId\":");
        jbuf_append(&b, id.p, id.len);
        jbuf_puts(&b, "}}}");
        sse_event(&ev, NULL, b.p, b.len);
        stream_write(m, ev.p, ev.len);
        jbuf_free(&ev);
        jbuf_free(&b);
        jbuf_free(&id);
    }
    stream_unlink(m);
    mreq_stream_end(m);
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
    if (m->modern) { /* subscriptions/listen: no session to outlive */
        struct timeval tv = {KEEPALIVE_S, 0};
        evtimer_add(m->timer, &tv);
        return;
    }
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
        if (final || --m->resume_deadline_ticks <= 0 || S.draining) {
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

/* Draining, or mcp.max_streams_per_principal reached: answered (false). */
static bool stream_admit(struct mreq *m)
{
    if (S.draining) {
        mreq_respond_error(m, 503, MCP_ERR_TRANSPORT, "Server is draining", "Retry-After: 1\r\n");
        return false;
    }
    int cap = mcp_env.cfg->mcp_max_streams_per_principal;
    if (cap > 0) {
        /* mcp.max_streams_per_principal, per worker (issue 23, finding 8) */
        const char *me = mreq_principal(m);
        int n = 0;
        for (struct mreq *o = S.streams; o && n < cap; o = o->snext)
            if (strcmp(mreq_principal(o), me) == 0)
                n++;
        if (n >= cap) {
            char em[200];
            snprintf(em, sizeof em,
                     "too many open event streams for this principal on this server process "
                     "(mcp.max_streams_per_principal = %d): close one first",
                     cap);
            metrics_inc("csmcp_mcp_principal_cap_total", "cap=\"streams\"", 1);
            mreq_respond_error(m, 429, MCP_ERR_RATE_LIMITED, em, "Retry-After: 5\r\n");
            return false;
        }
    }
    return true;
}

void mcp_stream_get(struct mreq *m)
{
    const char *accept = http_req_header(m->req, "Accept");
    if (!mcp_accepts(accept, "text/event-stream")) {
        mreq_respond_error(m, 406, MCP_ERR_TRANSPORT,
                           "Not Acceptable: Client must accept text/event-stream", NULL);
        return;
    }
    if (!stream_admit(m))
        return;
    m->timer = evtimer_new(mcp_env.base, stream_timer_cb, m);
    if (m->timer == NULL) {
        mreq_respond_error(m, 500, JSONRPC_INTERNAL_ERROR, "out of memory", NULL);
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
        m->resume_deadline_ticks =
            (long)(mcp_env.cfg->mcp_call_timeout + 5) * 1000 / RESUME_POLL_MS;
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

void mcp_stream_listen(struct mreq *m, const char *ack, size_t len)
{
    if (!stream_admit(m))
        return;
    m->timer = evtimer_new(mcp_env.base, stream_timer_cb, m);
    if (m->timer == NULL) {
        mreq_respond_error(m, 500, JSONRPC_INTERNAL_ERROR, "out of memory", NULL);
        return;
    }
    char hdrs[1536];
    sse_headers(m, hdrs, sizeof hdrs);
    m->sse = true;
    http_stream_begin(m->req, 200, "text/event-stream", hdrs);
    http_req_on_close(m->req, get_closed, m);
    stream_link(m);
    struct jbuf b;
    jbuf_init(&b);
    sse_event(&b, NULL, ack, len);
    stream_write(m, b.p, b.len);
    jbuf_free(&b);
    struct timeval tv = {KEEPALIVE_S, 0};
    evtimer_add(m->timer, &tv);
}

void mcp_streams_each(void (*fn)(struct mreq *m, void *arg), void *arg)
{
    for (struct mreq *m = S.streams, *n; m; m = n) {
        n = m->snext;
        if (!m->resume)
            fn(m, arg);
    }
}

void mcp_drain(void)
{
    S.draining = true;
    while (S.streams)
        get_stream_end(S.streams);
}

int mcp_streams_open(void)
{
    return S.nstreams;
}
