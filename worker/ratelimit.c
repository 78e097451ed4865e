/*
 * ratelimit.c - Redis token buckets (one Lua script per request) with a local fallback.
 *
 * Invariants: a request is limited by every bucket it touches, and tokens are taken from all of
 * them or from none (the script checks first, then takes); time comes from Redis (TIME), so
 * workers with skewed clocks still share one exact budget; callbacks run exactly once; while
 * Redis is down the decision is local (fail-open) or a refusal (fail-closed), never a silent
 * allow-all. Bucket keys carry a {hash tag} so a request's buckets share a cluster slot.
 */
#include "ratelimit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>
#include <openssl/evp.h>

#include "cfg.h"
#include "crypto.h"
#include "log.h"
#include "metrics.h"
#include "redisc.h"

/* KEYS[1] = the principal's hash; ARGV = field_1, capacity_1, tokens_per_ms_1, field_2, ...
 * Each bucket is two fields of that hash (<field>.t tokens, <field>.s last update in ms), so
 * a request costs TIME + HMGET + HSET + PEXPIRE whatever the number of buckets. Every bucket's
 * capacity is one minute of its rate, so the hash lives 61 s after its last use.
 * Returns {1, 0, 0} allowed, or {0, index of the exhausted bucket, ms until a token}. */
const char ratelimit_lua[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local n = #ARGV / 3\n"
    "local f = {}\n"
    "for i = 1, n do f[2 * i - 1] = ARGV[3 * i - 2] .. '.t'; f[2 * i] = ARGV[3 * i - 2] .. '.s' "
    "end\n"
    "local v = redis.call('HMGET', KEYS[1], unpack(f))\n"
    "local set = {}\n"
    "for i = 1, n do\n"
    "  local cap = tonumber(ARGV[3 * i - 1])\n"
    "  local rate = tonumber(ARGV[3 * i])\n"
    "  local x, ts = tonumber(v[2 * i - 1]), tonumber(v[2 * i])\n"
    "  if x == nil or ts == nil then x = cap; ts = now end\n"
    "  if now > ts then x = math.min(cap, x + (now - ts) * rate) end\n"
    "  if x < 1 then return {0, i, math.ceil((1 - x) / rate)} end\n"
    "  set[4 * i - 3] = f[2 * i - 1]; set[4 * i - 2] = x - 1\n"
    "  set[4 * i - 1] = f[2 * i]; set[4 * i] = now\n"
    "end\n"
    "redis.call('HSET', KEYS[1], unpack(set))\n"
    "redis.call('PEXPIRE', KEYS[1], 61000)\n"
    "return {1, 0, 0}\n";

#define LOCAL_SLOTS 1024

struct local_bucket {
    char key[304];
    double tokens, ts;
};

static struct {
    const struct cfg *cfg;
    char sha[41];
    bool redis_ok; /* last round trip worked */
    struct local_bucket local[LOCAL_SLOTS];
} R;

struct rl_req {
    ratelimit_cb cb;
    void *arg;
    int nkeys;         /* buckets */
    char hash[160];    /* the principal's Redis hash */
    char keys[2][136]; /* bucket field names in the hash: "k", "t:<tool>" */
    char limit[2][160];
    int rate[2];
    bool tried_eval;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void set_redis_ok(bool ok)
{
    if (ok != R.redis_ok) {
        if (ok)
            log_notice("ratelimit: Redis reachable again; exact shared limits restored");
        else
            log_warn("ratelimit: Redis unreachable; %s", R.cfg->ratelimit_fail_open
                                                             ? "local per-worker limits apply"
                                                             : "refusing requests (fail-closed)");
    }
    R.redis_ok = ok;
    metrics_gauge_set("csmcp_ratelimit_degraded", NULL, ok ? 0 : 1);
}

static void finish(struct rl_req *q, const struct ratelimit_result *r)
{
    static const char *names[] = {"allowed", "limited", "refused"};
    char labels[64];
    snprintf(labels, sizeof(labels), "result=\"%s\",source=\"%s\"", names[r->verdict],
             r->local ? "local" : "redis");
    metrics_inc("csmcp_ratelimit_total", labels, 1);
    q->cb(r, q->arg);
    free(q);
}

/* The local fallback: same buckets, rate divided by the number of workers. */
static void decide_local(struct rl_req *q)
{
    struct ratelimit_result r;
    int workers = R.cfg->server_workers > 0 ? R.cfg->server_workers : 1;
    double now = now_s();
    struct local_bucket *b[2];
    double cap[2], rate[2];

    memset(&r, 0, sizeof(r));
    r.local = true;
    if (!R.cfg->ratelimit_fail_open) {
        r.verdict = RATELIMIT_UNAVAILABLE;
        snprintf(r.limit, sizeof(r.limit), "%s", "rate limiter unavailable");
        r.retry_after = 1;
        finish(q, &r);
        return;
    }
    for (int i = 0; i < q->nkeys; i++) {
        uint8_t h[32];
        char lk[sizeof(b[0]->key)];
        snprintf(lk, sizeof(lk), "%s %s", q->hash, q->keys[i]);
        crypto_sha256(lk, strlen(lk), h);
        b[i] = &R.local[((unsigned)h[0] << 8 | h[1]) % LOCAL_SLOTS];
        cap[i] = fmax(1.0, (double)q->rate[i] / workers);
        rate[i] = cap[i] / 60.0;
        if (strcmp(b[i]->key, lk) != 0) {
            snprintf(b[i]->key, sizeof(b[i]->key), "%s", lk);
            b[i]->tokens = cap[i];
            b[i]->ts = now;
        }
        b[i]->tokens = fmin(cap[i], b[i]->tokens + (now - b[i]->ts) * rate[i]);
        b[i]->ts = now;
        if (b[i]->tokens < 1) {
            r.verdict = RATELIMIT_LIMITED;
            snprintf(r.limit, sizeof(r.limit), "%s", q->limit[i]);
            r.per_minute = q->rate[i];
            r.retry_after = (int)ceil((1 - b[i]->tokens) / rate[i]);
            if (r.retry_after < 1)
                r.retry_after = 1;
            finish(q, &r);
            return;
        }
    }
    for (int i = 0; i < q->nkeys; i++)
        b[i]->tokens -= 1;
    r.verdict = RATELIMIT_ALLOW;
    finish(q, &r);
}

static int send_script(struct rl_req *q, bool full);

static void script_done(struct redisReply *reply, void *arg)
{
    struct rl_req *q = arg;
    struct ratelimit_result r;

    if (reply == NULL) {
        set_redis_ok(false);
        decide_local(q);
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        if (!q->tried_eval && strncmp(reply->str, "NOSCRIPT", 8) == 0) {
            q->tried_eval = true;
            if (send_script(q, true) == 0)
                return;
            set_redis_ok(false);
            decide_local(q);
            return;
        }
        log_error("ratelimit: script error: %s", reply->str);
        set_redis_ok(false);
        decide_local(q);
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3) {
        set_redis_ok(false);
        decide_local(q);
        return;
    }
    set_redis_ok(true);
    memset(&r, 0, sizeof(r));
    if (reply->element[0]->integer == 1) {
        r.verdict = RATELIMIT_ALLOW;
    } else {
        long idx = reply->element[1]->integer - 1;
        long ms = reply->element[2]->integer;
        if (idx < 0 || idx >= q->nkeys)
            idx = 0;
        r.verdict = RATELIMIT_LIMITED;
        snprintf(r.limit, sizeof(r.limit), "%s", q->limit[idx]);
        r.per_minute = q->rate[idx];
        r.retry_after = (int)((ms + 999) / 1000);
        if (r.retry_after < 1)
            r.retry_after = 1;
    }
    finish(q, &r);
}

/* ARGV text of a per-minute rate: "capacity" and "tokens per ms", formatted once per value
 * (the three configured rates) instead of on every request. */
struct rate_text {
    int per_minute;
    char cap[24], per_ms[40];
};

static const struct rate_text *rate_text(int per_minute)
{
    static struct rate_text cache[4];
    static int next;
    for (int i = 0; i < 4; i++)
        if (cache[i].per_minute == per_minute && cache[i].cap[0])
            return &cache[i];
    struct rate_text *t = &cache[next++ % 4];
    t->per_minute = per_minute;
    snprintf(t->cap, sizeof(t->cap), "%d", per_minute);
    snprintf(t->per_ms, sizeof(t->per_ms), "%.12g", per_minute / 60000.0);
    return t;
}

static int send_script(struct rl_req *q, bool full)
{
    const char *argv[3 + 1 + 6];
    int argc = 0;

    argv[argc++] = full ? "EVAL" : "EVALSHA";
    argv[argc++] = full ? ratelimit_lua : R.sha;
    argv[argc++] = "1";
    argv[argc++] = q->hash;
    for (int i = 0; i < q->nkeys; i++) {
        const struct rate_text *t = rate_text(q->rate[i]);
        argv[argc++] = q->keys[i];
        argv[argc++] = t->cap;
        argv[argc++] = t->per_ms;
    }
    return redisc_cmd(script_done, q, argc, argv, NULL);
}

void ratelimit_check(const char *principal, const char *tool, enum ratelimit_class cls,
                     ratelimit_cb cb, void *arg)
{
    struct ratelimit_result r;
    struct rl_req *q;

    if (R.cfg == NULL || !R.cfg->ratelimit_enabled) {
        memset(&r, 0, sizeof(r));
        r.verdict = RATELIMIT_ALLOW;
        cb(&r, arg);
        return;
    }
    q = calloc(1, sizeof(*q));
    if (q == NULL) {
        memset(&r, 0, sizeof(r));
        r.verdict = RATELIMIT_UNAVAILABLE;
        r.retry_after = 1;
        snprintf(r.limit, sizeof(r.limit), "out of memory");
        cb(&r, arg);
        return;
    }
    q->cb = cb;
    q->arg = arg;
    snprintf(q->hash, sizeof(q->hash), "csmcp:rl:{%.120s}", principal);
    snprintf(q->keys[0], sizeof(q->keys[0]), "k");
    snprintf(q->limit[0], sizeof(q->limit[0]), "key");
    q->rate[0] = R.cfg->ratelimit_key_per_minute;
    q->nkeys = 1;
    if (tool) {
        snprintf(q->keys[1], sizeof(q->keys[1]), "t:%.128s", tool);
        snprintf(q->limit[1], sizeof(q->limit[1]), "tool:%.128s", tool);
        q->rate[1] = cls == RATELIMIT_WRITE ? R.cfg->ratelimit_write_per_minute
                                            : R.cfg->ratelimit_tool_per_minute;
        q->nkeys = 2;
    }
    if (send_script(q, false) < 0) {
        set_redis_ok(false);
        decide_local(q);
    }
}

int ratelimit_init(struct event_base *base, const struct cfg *cfg)
{
    uint8_t d[20];
    unsigned int n = 0;

    (void)base;
    memset(&R, 0, sizeof(R));
    R.cfg = cfg;
    R.redis_ok = true;
    if (EVP_Digest(ratelimit_lua, strlen(ratelimit_lua), d, &n, EVP_sha1(), NULL) != 1 || n != 20)
        return -1;
    crypto_hex(d, 20, R.sha);
    metrics_gauge_set("csmcp_ratelimit_degraded", NULL, 0);
    return 0;
}

bool ratelimit_ready(void)
{
    if (R.cfg == NULL || !R.cfg->ratelimit_enabled || R.cfg->ratelimit_fail_open)
        return true;
    return R.redis_ok && redisc_ready();
}

const char *ratelimit_status(void)
{
    if (R.cfg == NULL || !R.cfg->ratelimit_enabled)
        return "disabled";
    if (R.redis_ok && redisc_ready())
        return "redis";
    return R.cfg->ratelimit_fail_open ? "local fallback (redis down)" : "refusing (redis down)";
}

int ratelimit_headers(const struct ratelimit_result *r, char *buf, size_t len)
{
    int n = snprintf(buf, len, "Retry-After: %d\r\n", r->retry_after > 0 ? r->retry_after : 1);
    return n >= 0 && (size_t)n < len ? n : -1;
}

int ratelimit_error_json(const struct ratelimit_result *r, const char *id_json, char *buf,
                         size_t len)
{
    char lim[170];
    size_t j = 0;
    int n;

    /* tool names are [A-Za-z0-9_.-] (registry rule); drop anything else defensively */
    for (size_t i = 0; r->limit[i] && j < sizeof(lim) - 1; i++)
        if (r->limit[i] != '"' && r->limit[i] != '\\' && (unsigned char)r->limit[i] >= 0x20)
            lim[j++] = r->limit[i];
    lim[j] = '\0';
    if (r->verdict == RATELIMIT_UNAVAILABLE)
        n = snprintf(buf, len,
                     "{\"jsonrpc\":\"2.0\",\"id\":%s,\"error\":{\"code\":-32030,\"message\":"
                     "\"rate limiter unavailable; retry later\",\"data\":{\"limit\":\"%s\","
                     "\"retry_after\":%d}}}",
                     id_json ? id_json : "null", lim, r->retry_after);
    else
        n = snprintf(buf, len,
                     "{\"jsonrpc\":\"2.0\",\"id\":%s,\"error\":{\"code\":-32029,\"message\":"
                     "\"rate limit exceeded: %s (%d per minute); retry after %d s\",\"data\":"
                     "{\"limit\":\"%s\",\"limit_per_minute\":%d,\"retry_after\":%d}}}",
                     id_json ? id_json : "null", lim, r->per_minute, r->retry_after, lim,
                     r->per_minute, r->retry_after);
    return n >= 0 && (size_t)n < len ? n : -1;
}

void ratelimit_shutdown(void)
{
    /* R.cfg stays: requests failed by redisc_shutdown still complete through decide_local */
}
