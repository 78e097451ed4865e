/*
 * ratelimit.c - Redis token buckets shared by all workers, spent locally in small leases, with
 * a local fallback.
 *
 * Invariants: a request is limited by every bucket it touches, and tokens are taken from all of
 * them or from none (the script checks first, then takes); time comes from Redis (TIME), so
 * workers with skewed clocks still share one budget; callbacks run exactly once; while Redis is
 * down the decision is local (fail-open) or a refusal (fail-closed), never a silent allow-all.
 * Bucket keys carry a {hash tag} so a request's buckets share a cluster slot.
 *
 * Leases: a request never gets a token that Redis did not hand out, so the shared limit is
 * never exceeded. When a bucket is large, a worker takes up to L tokens in one script call and
 * spends them locally for at most LEASE_MS; L = min(ratelimit.lease_max, capacity / (100 x
 * workers)) so tokens held unspent by all workers together are at most 1 % of the bucket (the
 * only inexactness: a client may be refused while 1 % of its minute sits in other workers'
 * leases). Small buckets (L < 2) go to Redis on every request, exactly as without leases.
 * Requests that find no token wait for the one script call in flight for their lease.
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
#include "jsonrpc.h"
#include "log.h"
#include "metrics.h"
#include "redisc.h"

/* KEYS[1] = the principal's hash; ARGV[1] = tokens wanted (>= 1); then per bucket: field,
 * capacity, tokens_per_ms. Each bucket is two fields of that hash (<field>.t tokens, <field>.s
 * last update in ms), so a call costs TIME + HMGET + HSET + PEXPIRE whatever the number of
 * buckets. Every bucket's capacity is one minute of its rate, so the hash lives 61 s after its
 * last use. Grants k = min(wanted, half the whole tokens of the emptiest bucket, at least 1)
 * from every bucket: leases shrink as a bucket runs low, so one worker does not take the last
 * tokens that the others' next requests need.
 * Returns {1, k, 0} granted, or {0, index of the exhausted bucket, ms until a token}. */
const char ratelimit_lua[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local k = tonumber(ARGV[1])\n"
    "local n = (#ARGV - 1) / 3\n"
    "local f = {}\n"
    "for i = 1, n do f[2 * i - 1] = ARGV[3 * i - 1] .. '.t'; f[2 * i] = ARGV[3 * i - 1] .. '.s' "
    "end\n"
    "local v = redis.call('HMGET', KEYS[1], unpack(f))\n"
    "local x = {}\n"
    "for i = 1, n do\n"
    "  local cap = tonumber(ARGV[3 * i])\n"
    "  local rate = tonumber(ARGV[3 * i + 1])\n"
    "  local xi, ts = tonumber(v[2 * i - 1]), tonumber(v[2 * i])\n"
    "  if xi == nil or ts == nil then xi = cap; ts = now end\n"
    "  if now > ts then xi = math.min(cap, xi + (now - ts) * rate) end\n"
    "  if xi < 1 then return {0, i, math.ceil((1 - xi) / rate)} end\n"
    "  x[i] = xi\n"
    "  local half = math.max(1, math.floor(xi / 2))\n"
    "  if half < k then k = half end\n"
    "end\n"
    "local set = {}\n"
    "for i = 1, n do\n"
    "  set[4 * i - 3] = f[2 * i - 1]; set[4 * i - 2] = x[i] - k\n"
    "  set[4 * i - 1] = f[2 * i]; set[4 * i] = now\n"
    "end\n"
    "redis.call('HSET', KEYS[1], unpack(set))\n"
    "redis.call('PEXPIRE', KEYS[1], 61000)\n"
    "return {1, k, 0}\n";

#define LOCAL_SLOTS 1024
#define LEASE_SLOTS 256  /* power of two */
#define LEASE_MS    1000 /* leased tokens not spent by then are dropped */

struct local_bucket {
    char key[304];
    double tokens, ts;
};

/* What a Redis call asks for: the principal's hash and the request's buckets. */
struct rl_spec {
    int nkeys;         /* buckets */
    char hash[160];    /* the principal's Redis hash */
    char keys[2][136]; /* bucket field names in the hash: "k", "t:<tool>" */
    char limit[2][160];
    int rate[2];
};

struct waiter {
    ratelimit_cb cb;
    void *arg;
    struct waiter *next;
};

/* Tokens one worker holds for one principal + tool, and the requests waiting for more. */
struct lease {
    char id[300]; /* "<hash> <field of bucket 2>"; "" = free slot */
    struct rl_spec spec;
    int size;            /* L: tokens asked per call */
    int tokens;          /* held, spendable until until_ms */
    double until;        /* monotonic seconds */
    bool asking;         /* a script call is in flight */
    double denied_until; /* Redis said no token before then: refuse locally until then */
    struct ratelimit_result denial;
    struct waiter *head, *tail;
    int nwait;
};

static struct {
    const struct cfg *cfg;
    char sha[41];
    bool redis_ok; /* last round trip worked */
    struct local_bucket local[LOCAL_SLOTS];
    struct lease *leases; /* LEASE_SLOTS, allocated on first use */
} R;

struct rl_req {
    ratelimit_cb cb; /* direct request (lease == NULL) */
    void *arg;
    struct lease *lease; /* or a lease refill */
    int want;
    struct rl_spec spec;
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

enum source { SRC_REDIS, SRC_LOCAL, SRC_LEASE };

static void deliver(ratelimit_cb cb, void *arg, const struct ratelimit_result *r, enum source src)
{
    /* label sets formatted once: verdict x source */
    static const char *const labels[3][3] = {
        {"result=\"allowed\",source=\"redis\"", "result=\"allowed\",source=\"local\"",
         "result=\"allowed\",source=\"lease\""},
        {"result=\"limited\",source=\"redis\"", "result=\"limited\",source=\"local\"",
         "result=\"limited\",source=\"lease\""},
        {"result=\"refused\",source=\"redis\"", "result=\"refused\",source=\"local\"",
         "result=\"refused\",source=\"lease\""},
    };
    metrics_inc("csmcp_ratelimit_total", labels[r->verdict][src], 1);
    cb(r, arg);
}

/* The local fallback: same buckets, rate divided by the number of workers. */
static void decide_local(const struct rl_spec *q, ratelimit_cb cb, void *arg)
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
        deliver(cb, arg, &r, SRC_LOCAL);
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
            deliver(cb, arg, &r, SRC_LOCAL);
            return;
        }
    }
    for (int i = 0; i < q->nkeys; i++)
        b[i]->tokens -= 1;
    r.verdict = RATELIMIT_ALLOW;
    deliver(cb, arg, &r, SRC_LOCAL);
}

static int send_script(struct rl_req *q, bool full);
static void lease_ask(struct lease *l);

/*
 * A lease's script call ended: granted > 0 tokens, or *denied (limited), or neither (Redis
 * failed: every waiter is decided locally). The waiters served are unlinked before any
 * callback runs, so a callback that starts another request sees a consistent lease.
 */
static void lease_answer(struct lease *l, int granted, const struct ratelimit_result *denied)
{
    struct waiter *serve = NULL, **tail = &serve;
    double now = now_s();
    int n = 0;

    l->asking = false;
    int take = granted > 0 ? granted : l->nwait; /* denied or failed: every waiter */
    while (l->head && n < take) {
        struct waiter *w = l->head;
        l->head = w->next;
        w->next = NULL;
        *tail = w;
        tail = &w->next;
        n++;
    }
    if (l->head == NULL)
        l->tail = NULL;
    l->nwait -= n;
    if (granted > n) {
        l->tokens = granted - n;
        l->until = now + LEASE_MS / 1000.0;
    }
    if (denied) {
        /* Tokens only come from Redis, and Redis said when the emptiest bucket has a whole
         * token again (script_done set denied_until): refusing locally until then is exact. */
        l->denial = *denied;
    }
    if (l->nwait > 0)
        lease_ask(l);

    struct ratelimit_result r;
    memset(&r, 0, sizeof(r));
    if (denied)
        r = *denied;
    while (serve) {
        struct waiter *w = serve;
        serve = w->next;
        if (granted > 0)
            deliver(w->cb, w->arg, &r, SRC_LEASE);
        else if (denied)
            deliver(w->cb, w->arg, &r, SRC_REDIS);
        else
            decide_local(&l->spec, w->cb, w->arg);
        free(w);
    }
}

/* Redis failed for q: decide locally. */
static void script_failed(struct rl_req *q)
{
    set_redis_ok(false);
    if (q->lease)
        lease_answer(q->lease, -1, NULL);
    else
        decide_local(&q->spec, q->cb, q->arg);
    free(q);
}

static void script_done(struct redisReply *reply, void *arg)
{
    struct rl_req *q = arg;
    struct ratelimit_result r;

    if (reply == NULL) {
        script_failed(q);
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        if (!q->tried_eval && strncmp(reply->str, "NOSCRIPT", 8) == 0) {
            q->tried_eval = true;
            if (send_script(q, true) == 0)
                return;
        } else {
            log_error("ratelimit: script error: %s", reply->str);
        }
        script_failed(q);
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
        reply->element[0]->type != REDIS_REPLY_INTEGER ||
        reply->element[1]->type != REDIS_REPLY_INTEGER ||
        reply->element[2]->type != REDIS_REPLY_INTEGER) {
        script_failed(q);
        return;
    }
    set_redis_ok(true);
    memset(&r, 0, sizeof(r));
    long long granted = 0;
    if (reply->element[0]->integer == 1) {
        r.verdict = RATELIMIT_ALLOW;
        granted = reply->element[1]->integer;
        if (granted < 1 || granted > q->want)
            granted = 1; /* cannot happen with our script; never hand out more than asked */
    } else {
        long idx = (long)reply->element[1]->integer - 1;
        long long ms = reply->element[2]->integer;
        if (idx < 0 || idx >= q->spec.nkeys)
            idx = 0;
        r.verdict = RATELIMIT_LIMITED;
        snprintf(r.limit, sizeof(r.limit), "%s", q->spec.limit[idx]);
        r.per_minute = q->spec.rate[idx];
        r.retry_after = (int)((ms + 999) / 1000);
        if (r.retry_after < 1)
            r.retry_after = 1;
    }
    if (q->lease && !granted)
        q->lease->denied_until = now_s() + (double)reply->element[2]->integer / 1000.0;
    if (q->lease)
        lease_answer(q->lease, (int)granted, granted ? NULL : &r);
    else
        deliver(q->cb, q->arg, &r, SRC_REDIS);
    free(q);
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
    const char *argv[4 + 1 + 6];
    char want[16];
    int argc = 0;

    snprintf(want, sizeof(want), "%d", q->want);
    metrics_inc("csmcp_ratelimit_redis_calls_total", NULL, 1);
    argv[argc++] = full ? "EVAL" : "EVALSHA";
    argv[argc++] = full ? ratelimit_lua : R.sha;
    argv[argc++] = "1";
    argv[argc++] = q->spec.hash;
    argv[argc++] = want;
    for (int i = 0; i < q->spec.nkeys; i++) {
        const struct rate_text *t = rate_text(q->spec.rate[i]);
        argv[argc++] = q->spec.keys[i];
        argv[argc++] = t->cap;
        argv[argc++] = t->per_ms;
    }
    return redisc_cmd(script_done, q, argc, argv, NULL);
}

/* One script call for l's waiters (and a stock of spare tokens). */
static void lease_ask(struct lease *l)
{
    struct rl_req *q = calloc(1, sizeof(*q));
    if (q == NULL) {
        lease_answer(l, -1, NULL);
        return;
    }
    q->lease = l;
    q->spec = l->spec;
    q->want = l->nwait > l->size ? l->nwait : l->size;
    l->asking = true;
    if (send_script(q, false) < 0) {
        free(q);
        set_redis_ok(false);
        lease_answer(l, -1, NULL);
    }
}

/* Tokens per lease for spec: at most 1 % of the smallest bucket across all workers. */
static int lease_size(const struct rl_spec *q)
{
    int workers = R.cfg->server_workers > 0 ? R.cfg->server_workers : 1;
    int rate = q->rate[0];
    for (int i = 1; i < q->nkeys; i++)
        if (q->rate[i] < rate)
            rate = q->rate[i];
    long size = (long)rate / (100L * workers);
    return (int)(size < R.cfg->ratelimit_lease_max ? size : R.cfg->ratelimit_lease_max);
}

/* The lease slot for spec, or NULL when its slot is busy with another principal + tool. */
static struct lease *lease_for(const struct rl_spec *q, int size)
{
    char id[sizeof(((struct lease *)0)->id)];
    snprintf(id, sizeof(id), "%s %s", q->hash, q->nkeys > 1 ? q->keys[1] : "");
    if (R.leases == NULL && (R.leases = calloc(LEASE_SLOTS, sizeof(*R.leases))) == NULL)
        return NULL;
    uint32_t h = 2166136261u;
    for (const char *p = id; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    struct lease *l = &R.leases[h & (LEASE_SLOTS - 1)];
    if (strcmp(l->id, id) == 0) {
        l->size = size; /* the same rates unless a reload changed them */
        return l;
    }
    if (l->asking || l->nwait > 0)
        return NULL;
    memset(l, 0, sizeof(*l));
    snprintf(l->id, sizeof(l->id), "%s", id);
    l->spec = *q;
    l->size = size;
    return l;
}

void ratelimit_check(const char *principal, const char *tool, enum ratelimit_class cls,
                     ratelimit_cb cb, void *arg)
{
    struct ratelimit_result r;
    struct rl_spec spec;

    memset(&r, 0, sizeof(r));
    if (R.cfg == NULL || !R.cfg->ratelimit_enabled) {
        r.verdict = RATELIMIT_ALLOW;
        cb(&r, arg);
        return;
    }
    memset(&spec, 0, sizeof(spec));
    snprintf(spec.hash, sizeof(spec.hash), "csmcp:rl:{%.120s}", principal);
    snprintf(spec.keys[0], sizeof(spec.keys[0]), "k");
    snprintf(spec.limit[0], sizeof(spec.limit[0]), "key");
    spec.rate[0] = R.cfg->ratelimit_key_per_minute;
    spec.nkeys = 1;
    if (tool) {
        snprintf(spec.keys[1], sizeof(spec.keys[1]), "t:%.128s", tool);
        snprintf(spec.limit[1], sizeof(spec.limit[1]), "tool:%.128s", tool);
        spec.rate[1] = cls == RATELIMIT_WRITE ? R.cfg->ratelimit_write_per_minute
                                              : R.cfg->ratelimit_tool_per_minute;
        spec.nkeys = 2;
    }

    /* Leases only while Redis answers: during an outage every request takes the fallback
     * (local limiter or fail-closed refusal) exactly as without leases. */
    int size = lease_size(&spec);
    struct lease *l = size >= 2 && R.redis_ok && redisc_ready() ? lease_for(&spec, size) : NULL;
    if (l) {
        if (l->nwait == 0 && l->tokens == 0 && now_s() < l->denied_until) {
            /* Redis said when the next token appears; until then the answer is known */
            r = l->denial;
            r.retry_after = (int)ceil(l->denied_until - now_s());
            if (r.retry_after < 1)
                r.retry_after = 1;
            deliver(cb, arg, &r, SRC_LEASE);
            return;
        }
        if (l->tokens > 0 && l->nwait == 0) {
            if (now_s() < l->until) {
                l->tokens--;
                r.verdict = RATELIMIT_ALLOW;
                deliver(cb, arg, &r, SRC_LEASE);
                return;
            }
            l->tokens = 0; /* expired: dropped, never returned to Redis */
        }
        struct waiter *w = calloc(1, sizeof(*w));
        if (w != NULL) {
            w->cb = cb;
            w->arg = arg;
            if (l->tail)
                l->tail->next = w;
            else
                l->head = w;
            l->tail = w;
            l->nwait++;
            if (!l->asking)
                lease_ask(l);
            return;
        }
    }

    struct rl_req *q = calloc(1, sizeof(*q));
    if (q == NULL) {
        r.verdict = RATELIMIT_UNAVAILABLE;
        r.retry_after = 1;
        snprintf(r.limit, sizeof(r.limit), "out of memory");
        cb(&r, arg);
        return;
    }
    q->cb = cb;
    q->arg = arg;
    q->want = 1;
    q->spec = spec;
    if (send_script(q, false) < 0) {
        set_redis_ok(false);
        decide_local(&q->spec, q->cb, q->arg);
        free(q);
    }
}

void ratelimit_check_source(const char *source, int per_minute, ratelimit_cb cb, void *arg)
{
    struct ratelimit_result r;
    memset(&r, 0, sizeof(r));
    if (R.cfg == NULL) {
        r.verdict = RATELIMIT_ALLOW;
        cb(&r, arg);
        return;
    }
    struct rl_req *q = calloc(1, sizeof(*q));
    if (q == NULL) {
        r.verdict = RATELIMIT_UNAVAILABLE;
        r.retry_after = 1;
        snprintf(r.limit, sizeof(r.limit), "out of memory");
        cb(&r, arg);
        return;
    }
    q->cb = cb;
    q->arg = arg;
    q->want = 1;
    snprintf(q->spec.hash, sizeof(q->spec.hash), "csmcp:rl:{src:%.100s}", source);
    snprintf(q->spec.keys[0], sizeof(q->spec.keys[0]), "a");
    snprintf(q->spec.limit[0], sizeof(q->spec.limit[0]), "failed_auth_per_address");
    q->spec.rate[0] = per_minute;
    q->spec.nkeys = 1;
    if (send_script(q, false) < 0) {
        set_redis_ok(false);
        decide_local(&q->spec, q->cb, q->arg);
        free(q);
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
                     "{\"jsonrpc\":\"2.0\",\"id\":%s,\"error\":{\"code\":%d,\"message\":"
                     "\"rate limiter unavailable; retry later\",\"data\":{\"limit\":\"%s\","
                     "\"retry_after\":%d}}}",
                     id_json ? id_json : "null", MCP_ERR_LIMITER_UNAVAILABLE, lim, r->retry_after);
    else
        n = snprintf(buf, len,
                     "{\"jsonrpc\":\"2.0\",\"id\":%s,\"error\":{\"code\":%d,\"message\":"
                     "\"rate limit exceeded: %s (%d per minute); retry after %d s\",\"data\":"
                     "{\"limit\":\"%s\",\"limit_per_minute\":%d,\"retry_after\":%d}}}",
                     id_json ? id_json : "null", MCP_ERR_RATE_LIMITED, lim, r->per_minute,
                     r->retry_after, lim, r->per_minute, r->retry_after);
    return n >= 0 && (size_t)n < len ? n : -1;
}

void ratelimit_shutdown(void)
{
    /* R.cfg and the leases stay: requests failed by redisc_shutdown still complete through
     * decide_local; the process exits right after. */
}
