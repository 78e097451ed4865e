/*
 * gates.c - what a request on an existing session passes before dispatch, and the changes that
 * invalidate a session everywhere.
 *
 * Gates: the session check (Redis, or this worker's session cache, worker/scache.c) and the
 * rate limit (worker/ratelimit.c) run concurrently; their two Redis commands go out back to back
 * on one connection, so a request pays one round trip. The session check also refreshes the
 * idle TTL. The continuation runs only when both passed; otherwise the request is answered
 * (404 unknown session or another principal's, 429 limited, 503 store or limiter unavailable).
 *
 * Invariants:
 * - A session belongs to the principal that created it: a leaked id is useless with another
 *   token (answered like an unknown session).
 * - A session enters the cache only if no invalidation arrived while its Redis answer was on
 *   the way and the pub/sub connection carrying invalidations never dropped.
 * - DELETE and logging/setLevel answer only after every worker acknowledged dropping the
 *   session from its cache (or INV_WAIT_MS passed), so no worker answers from a stale cache
 *   after the client saw them succeed.
 */
#include "mcp_int.h"

#include "audit.h"
#include "cfg.h"
#include "log.h"
#include "metrics.h"
#include "redisc.h"
#include "registry.h"
#include "scache.h"
#include "tool.h"

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

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

static struct {
    struct inv_wait *invs; /* invalidations waiting for every worker's acknowledgement */
    uint64_t inv_seq;
} G;

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
    struct inv_wait **pp = &G.invs;
    while (*pp && *pp != w)
        pp = &(*pp)->next;
    if (*pp)
        *pp = w->next;
    if (w->timer)
        event_free(w->timer);
    struct mreq *m = w->m;
    if (m->req != NULL) {
        if (w->msg == NULL && ok) {
            mreq_respond(m, 200, NULL, NULL, "", 0);
        } else if (w->msg == NULL) {
            mreq_respond_error(m, 503, MCP_ERR_TRANSPORT, "Session store unavailable",
                               "Retry-After: 1\r\n");
        } else if (ok) {
            struct jbuf b;
            jbuf_init(&b);
            jsonrpc_open_result(&b, w->msg->id);
            jbuf_puts(&b, "{}}");
            mreq_reply(m, b.p, b.len);
            jbuf_free(&b);
        } else {
            mreq_reply_error(m, w->msg->id, JSONRPC_INTERNAL_ERROR,
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
    w->timer = evtimer_new(mcp_env.base, inv_timeout, w);
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
    for (struct inv_wait *w = G.invs; w; w = w->next)
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
            mreq_reply_error(m, msg->id, JSONRPC_INTERNAL_ERROR, "Internal error: out of memory",
                             NULL);
        else
            mreq_respond_error(m, 503, MCP_ERR_TRANSPORT, "Session store unavailable",
                               "Retry-After: 1\r\n");
        return;
    }
    w->nonce = ++G.inv_seq;
    w->need = -1;
    w->m = m;
    w->msg = msg;
    m->refs++;
    w->next = G.invs;
    G.invs = w;
    scache_drop(m->s.key);
    char subs[SESSION_KEY_MAX + 8], note[SESSION_KEY_MAX + 48];
    snprintf(subs, sizeof subs, "%s:subs", m->s.key);
    snprintf(note, sizeof note, "%s %s %llu", m->s.key, mcp_env.node, (unsigned long long)w->nonce);
    const char *argv[8] = {"EVAL", script, "2", m->s.key, subs, SCACHE_CHANNEL, note, level};
    if (redisc_cmd(inv_published, w, level ? 8 : 7, argv, NULL) < 0)
        inv_finish(w, false);
}
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
        mreq_respond_error(m, limited ? 429 : 503,
                           limited ? MCP_ERR_RATE_LIMITED : MCP_ERR_LIMITER_UNAVAILABLE,
                           limited ? "Rate limit exceeded" : "Rate limiter unavailable", hdr);
        return;
    }
    mreq_respond(m, limited ? 429 : 503, "application/json", hdr, body, (size_t)n);
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
            mreq_respond_error(m, 404, MCP_ERR_SESSION_NOT_FOUND, "Session not found", NULL);
        else if (m->sess_status)
            mreq_respond_error(m, 503, MCP_ERR_TRANSPORT, "Session store unavailable",
                               "Retry-After: 1\r\n");
        else
            m->cont(m);
    }
    mreq_unref(m);
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
               strcmp(r->element[2]->str, mreq_principal(m)) != 0) {
        /* A session belongs to the principal that created it: a leaked id is useless with
         * another token. Answered like an unknown session. */
        m->sess_status = 404;
    } else {
        int li = session_level_index(r->element[0]->str);
        m->s.lvl = li < 0 ? 1 : li;
        const char *caps = r->element[1]->type == REDIS_REPLY_STRING ? r->element[1]->str : NULL;
        if (caps)
            m->s.caps = strdup(caps);
        m->have_session = true;
        /* Cacheable only if no invalidation arrived while the answer was on its way (it may
         * predate a DELETE) and the pub/sub connection that carries them never dropped. */
        if (m->sess_epoch && m->sess_gen == scache_generation() &&
            redisc_sub_epoch(SCACHE_CHANNEL) == m->sess_epoch)
            scache_put(m->s.key, m->sess_epoch, mono_ms(), mcp_env.cfg->mcp_session_cache_ms,
                       m->s.lvl, caps, mreq_principal(m));
    }
    gate_done(m);
}

/* The session is known alive to this worker (scache): no Redis round trip. */
static bool session_cached(struct mreq *m)
{
    m->sess_epoch = 0;
    if (mcp_env.cfg->mcp_session_cache_ms <= 0)
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
    if (strcmp(hit.principal, mreq_principal(m)) != 0) {
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

/* The two Redis commands go out back to back on one connection, so the request pays one round
 * trip. */
void mcp_gates_start(struct mreq *m, bool with_session, void (*cont)(struct mreq *m))
{
    m->cont = cont;
    m->gates = with_session ? 3 : 2; /* +1 held while starting */
    m->refs++;
    if (with_session && session_cached(m)) {
        m->gates--;
    } else if (with_session) {
        char ttl[16];
        snprintf(ttl, sizeof ttl, "%d", mcp_env.cfg->mcp_session_ttl);
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
            yajl_val args = json_get(m->msgs[0].params, "arguments");
            cls = registry_rate_class(t->def, args) == TOOL_RATE_READ ? RATELIMIT_READ
                                                                      : RATELIMIT_WRITE;
        }
    }
    const char *principal = m->auth.principal[0] ? m->auth.principal : "anonymous";
    ratelimit_check(principal, tool, cls, rl_done, m);
    gate_done(m);
}

/* Verifies the session header and starts the Redis check; the continuation runs in
 * session_checked. */
void mcp_gates_session(struct mreq *m, void (*cont)(struct mreq *m))
{
    const char *sid = http_req_header(m->req, "Mcp-Session-Id");
    if (sid == NULL) {
        mreq_respond_error(m, 400, MCP_ERR_TRANSPORT,
                           "Bad Request: Mcp-Session-Id header is required", NULL);
        return;
    }
    enum mcp_rev rev;
    int64_t created;
    if (!session_lookup(sid, &rev, &created, m->s.key, m->s.tag)) {
        mreq_respond_error(m, 404, MCP_ERR_SESSION_NOT_FOUND, "Session not found", NULL);
        return;
    }
    const char *pv = http_req_header(m->req, "MCP-Protocol-Version");
    if (pv && session_version_index(pv) < 0) {
        char em[200];
        snprintf(em, sizeof em, "Bad Request: Unsupported protocol version: %.64s", pv);
        mreq_respond_error(m, 400, MCP_ERR_TRANSPORT, em, NULL);
        return;
    }
    snprintf(m->s.sid, sizeof m->s.sid, "%s", sid);
    m->s.rev = rev;
    if (m->batch && rev != MCP_REV_2025_03_26) { /* batches exist only in 2025-03-26 */
        mreq_respond_error(m, 400, JSONRPC_INVALID_REQUEST,
                           "Invalid Request: batches are only allowed on protocol 2025-03-26",
                           NULL);
        return;
    }
    mcp_gates_start(m, true, cont);
}

void mcp_session_delete(struct mreq *m)
{
    invalidate(m, NULL, LUA_DELETE, NULL);
}

void mcp_session_set_level(struct mreq *m, struct jsonrpc_msg *msg, const char *level)
{
    invalidate(m, msg, LUA_SETLEVEL, level);
}

int mcp_gates_init(void)
{
    if (redisc_subscribe(SCACHE_CHANNEL, on_sinv_msg, NULL) < 0)
        return -1;
    char ch[64];
    snprintf(ch, sizeof ch, "csmcp:wa:%s", mcp_env.node);
    if (redisc_subscribe(ch, on_inv_ack, NULL) < 0)
        return -1;
    return 0;
}

void mcp_gates_shutdown(void)
{
    while (G.invs) {
        struct inv_wait *w = G.invs;
        G.invs = w->next;
        if (w->timer)
            event_free(w->timer);
        mreq_unref(w->m);
        if (w->need < 0)
            w->detached = true; /* its script's callback still comes (redisc_shutdown) */
        else
            free(w);
    }
}
