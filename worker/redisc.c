/*
 * redisc.c - async Redis for the worker (hiredis 0.14 + its libevent adapter).
 *
 * Invariants: at most one command context and one subscriber context exist; a NULL context
 * means "reconnect pending" and commands fail fast (-1) instead of queueing without bound.
 * hiredis calls every pending callback with a NULL reply when a context is freed, which is how
 * timeouts and disconnects fail the requests waiting on Redis. Contexts are never freed from
 * inside a hiredis callback (hiredis forbids it): the watchdog timer does it.
 *
 * Sentinel mode (redis.sentinels + redis.master_name): the address of the primary is not
 * configured but asked from a Sentinel (SENTINEL get-master-addr-by-name, trying each Sentinel in
 * turn), and both connections send ROLE first: they count as up only when the server answers
 * "master". A second Sentinel connection subscribes to +switch-master and a query every
 * SENTINEL_RECHECK_S catches a switch missed while that subscription was down. A switch, a lost
 * connection, a READONLY reply or a ROLE that is not master make the worker ask again; the
 * pub/sub connection then moves to the new primary and resubscribes every channel (its epoch
 * changes, so state kept valid by pub/sub messages is re-read).
 */
#include "redisc.h"

#include "cfg.h"
#include "log.h"
#include "metrics.h"

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_SENTINELS      16
#define SENTINEL_RECHECK_S 5.0

struct sub {
    char *channel;
    redisc_msg_fn fn;
    void *arg;
    bool confirmed; /* Redis acknowledged the SUBSCRIBE on the current connection */
    struct sub *next;
};

static struct {
    struct event_base *base;
    const struct cfg *cfg;
    char host[256];
    int port;
    char unix_path[256];
    char password[256];
    int db;
    redisAsyncContext *cmd;
    redisAsyncContext *sub;
    bool cmd_up, sub_up;
    int pending;
    struct timespec last_progress;
    struct event *tick;
    int backoff_ms;
    struct timespec next_try;
    struct sub *subs;
    uint32_t sub_epoch; /* changes whenever the pub/sub connection is lost */
    bool shutting_down;
    char last_err[128];
    /* Sentinel mode */
    bool sentinel;
    char master_name[256];
    int nsent;
    struct {
        char host[256];
        int port;
    } sent[MAX_SENTINELS];
    bool have_master;     /* host/port hold the primary a Sentinel named */
    bool drop_pending;    /* the primary moved: the tick closes both connections */
    redisAsyncContext *q; /* Sentinel query connection (one question, then closed) */
    int q_idx;            /* Sentinel asked next */
    double q_started;
    double last_check;     /* last answered query */
    redisAsyncContext *ss; /* Sentinel pub/sub connection (+switch-master) */
    int ss_idx;
    double ss_next_try;
} R;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double ts_s(const struct timespec *t)
{
    return (double)t->tv_sec + (double)t->tv_nsec / 1e9;
}

static int parse_url(const char *url)
{
    R.port = 6379;
    R.db = 0;
    snprintf(R.host, sizeof R.host, "127.0.0.1");
    if (strncmp(url, "unix://", 7) == 0) {
        snprintf(R.unix_path, sizeof R.unix_path, "%s", url + 7);
        return 0;
    }
    if (strncmp(url, "redis://", 8) != 0)
        return -1;
    const char *p = url + 8;
    const char *at = strchr(p, '@');
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        const char *pw = colon ? colon + 1 : p;
        snprintf(R.password, sizeof R.password, "%.*s", (int)(at - pw), pw);
        p = at + 1;
    }
    const char *slash = strchr(p, '/');
    size_t hl = slash ? (size_t)(slash - p) : strlen(p);
    char hp[250];
    if (hl >= sizeof hp)
        return -1;
    memcpy(hp, p, hl);
    hp[hl] = '\0';
    char *colon = strrchr(hp, ':');
    if (colon) {
        *colon = '\0';
        R.port = atoi(colon + 1);
    }
    if (hp[0])
        snprintf(R.host, sizeof R.host, "%s", hp);
    if (slash && slash[1])
        R.db = atoi(slash + 1);
    return 0;
}

static void read_password_file(const char *path)
{
    if (path == NULL || path[0] == '\0')
        return;
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        log_warn("open(%s) failed: redis password not loaded", path);
        return;
    }
    if (fgets(R.password, sizeof R.password, f) == NULL)
        R.password[0] = '\0';
    R.password[strcspn(R.password, "\r\n")] = '\0';
    fclose(f);
}

/* "host:port" (IPv6 as "[addr]:port"); port defaults to 26379. */
static int parse_sentinel(const char *spec, char *host, size_t hlen, int *port)
{
    const char *colon = strrchr(spec, ':');
    const char *h = spec;
    size_t n = colon ? (size_t)(colon - spec) : strlen(spec);
    *port = 26379;
    if (colon) {
        char *end;
        long v = strtol(colon + 1, &end, 10);
        if (*end || v < 1 || v > 65535)
            return -1;
        *port = (int)v;
    }
    if (n >= 2 && h[0] == '[' && h[n - 1] == ']')
        h++, n -= 2;
    if (n == 0 || n >= hlen)
        return -1;
    memcpy(host, h, n);
    host[n] = '\0';
    return 0;
}

static void set_next_try_now(void)
{
    R.backoff_ms = 0;
    R.next_try.tv_sec = 0;
    R.next_try.tv_nsec = 0;
}

/* A Sentinel named host:port as the primary (source: "query" or "+switch-master"). */
static void apply_master(const char *host, int port, const char *source)
{
    if (port < 1 || port > 65535 || strlen(host) >= sizeof R.host)
        return;
    bool same = strcmp(host, R.host) == 0 && port == R.port;
    if (R.have_master && same)
        return;
    if (!same || !R.have_master)
        log_notice("redis sentinel (%s): primary of %s is %s:%d", source, R.master_name, host,
                   port);
    if (!same && R.host[0] && R.port) {
        metrics_inc("csmcp_redis_master_switches_total", NULL, 1);
        R.drop_pending = R.cmd != NULL || R.sub != NULL;
    }
    snprintf(R.host, sizeof R.host, "%s", host);
    R.port = port;
    R.have_master = true;
    set_next_try_now();
}

static void q_on_connect(const redisAsyncContext *c, int status)
{
    if (status != REDIS_OK) {
        log_warn("redis sentinel %s:%d: connect failed: %s", R.sent[R.q_idx].host,
                 R.sent[R.q_idx].port, c->errstr);
        snprintf(R.last_err, sizeof R.last_err, "sentinel: %s", c->errstr);
        R.q = NULL; /* hiredis frees it */
        R.q_idx = (R.q_idx + 1) % R.nsent;
    }
}

static void q_on_disconnect(const redisAsyncContext *c, int status)
{
    if (c == R.q)
        R.q = NULL;
}

static void q_reply(redisAsyncContext *c, void *r, void *priv)
{
    redisReply *reply = r;
    int idx = R.q_idx;
    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
        reply->element[0]->type == REDIS_REPLY_STRING &&
        reply->element[1]->type == REDIS_REPLY_STRING) {
        R.last_check = now_s();
        apply_master(reply->element[0]->str, atoi(reply->element[1]->str), "query");
    } else {
        const char *why = reply == NULL                      ? "no answer"
                          : reply->type == REDIS_REPLY_NIL   ? "master name unknown to it"
                          : reply->type == REDIS_REPLY_ERROR ? reply->str
                                                             : "unexpected reply";
        log_warn("redis sentinel %s:%d: get-master-addr-by-name %s: %s", R.sent[idx].host,
                 R.sent[idx].port, R.master_name, why);
        snprintf(R.last_err, sizeof R.last_err, "sentinel: %s", why);
        R.q_idx = (idx + 1) % R.nsent;
    }
    if (reply != NULL && c == R.q)
        redisAsyncDisconnect(c); /* allowed in a callback: hiredis closes after it returns */
}

/* Asks the next Sentinel for the primary's address (unless a question is in flight). */
static void sentinel_query(void)
{
    if (R.q != NULL)
        return;
    redisAsyncContext *c = redisAsyncConnect(R.sent[R.q_idx].host, R.sent[R.q_idx].port);
    if (c == NULL)
        return;
    if (c->err) {
        snprintf(R.last_err, sizeof R.last_err, "sentinel: %s", c->errstr);
        redisAsyncFree(c);
        R.q_idx = (R.q_idx + 1) % R.nsent;
        return;
    }
    redisLibeventAttach(c, R.base);
    redisAsyncSetConnectCallback(c, q_on_connect);
    redisAsyncSetDisconnectCallback(c, q_on_disconnect);
    redisAsyncCommand(c, q_reply, NULL, "SENTINEL get-master-addr-by-name %s", R.master_name);
    R.q = c;
    R.q_started = now_s();
}

/* +switch-master payload: "<name> <old-ip> <old-port> <new-ip> <new-port>". */
static void ss_msg(redisAsyncContext *c, void *r, void *priv)
{
    redisReply *reply = r;
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        strcmp(reply->element[0]->str, "message") != 0 ||
        reply->element[2]->type != REDIS_REPLY_STRING)
        return;
    char name[256], oldh[256], newh[256];
    int oldp, newp;
    if (sscanf(reply->element[2]->str, "%255s %255s %d %255s %d", name, oldh, &oldp, newh, &newp) !=
            5 ||
        strcmp(name, R.master_name) != 0)
        return;
    apply_master(newh, newp, "+switch-master");
}

static void ss_on_connect(const redisAsyncContext *c, int status)
{
    if (status != REDIS_OK) {
        R.ss = NULL;
        R.ss_idx = (R.ss_idx + 1) % R.nsent;
    }
}

static void ss_on_disconnect(const redisAsyncContext *c, int status)
{
    if (c == R.ss) {
        R.ss = NULL;
        R.ss_idx = (R.ss_idx + 1) % R.nsent;
        if (!R.shutting_down)
            log_warn("redis sentinel pub/sub connection lost: asking again");
        R.last_check = 0; /* a +switch-master may have been missed */
    }
}

static void sentinel_subscribe(void)
{
    redisAsyncContext *c = redisAsyncConnect(R.sent[R.ss_idx].host, R.sent[R.ss_idx].port);
    if (c == NULL)
        return;
    if (c->err) {
        redisAsyncFree(c);
        R.ss_idx = (R.ss_idx + 1) % R.nsent;
        return;
    }
    redisLibeventAttach(c, R.base);
    redisAsyncSetConnectCallback(c, ss_on_connect);
    redisAsyncSetDisconnectCallback(c, ss_on_disconnect);
    redisAsyncCommand(c, ss_msg, NULL, "SUBSCRIBE +switch-master");
    R.ss = c;
}

static void sub_msg_cb(redisAsyncContext *c, void *r, void *priv)
{
    redisReply *reply = r;
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3)
        return;
    redisReply *kind = reply->element[0];
    if (kind->type != REDIS_REPLY_STRING)
        return;
    if (strcmp(kind->str, "subscribe") == 0 && reply->element[1]->type == REDIS_REPLY_STRING) {
        for (struct sub *s = R.subs; s; s = s->next)
            if (strcmp(s->channel, reply->element[1]->str) == 0)
                s->confirmed = true;
        return;
    }
    if (strcmp(kind->str, "message") != 0)
        return;
    redisReply *ch = reply->element[1], *msg = reply->element[2];
    if (ch->type != REDIS_REPLY_STRING || msg->type != REDIS_REPLY_STRING)
        return;
    /* A handler may unsubscribe itself: iterate over a snapshot of next pointers. */
    struct sub *s = R.subs, *next;
    for (; s; s = next) {
        next = s->next;
        if (strcmp(s->channel, ch->str) == 0)
            s->fn(ch->str, msg->str, msg->len, s->arg);
    }
}

static void setup_cmd(redisAsyncContext *c, void *r, void *priv)
{
    redisReply *reply = r;
    if (reply && reply->type == REDIS_REPLY_ERROR) {
        snprintf(R.last_err, sizeof R.last_err, "%s", reply->str);
        log_warn("redis set-up command failed: %s", reply->str);
    }
}

/* Sentinel mode: a connection counts only once the server says it is the primary. */
static void role_cb(redisAsyncContext *c, void *r, void *priv)
{
    redisReply *reply = r;
    if (reply == NULL)
        return;
    bool master = reply->type == REDIS_REPLY_ARRAY && reply->elements >= 1 &&
                  reply->element[0]->type == REDIS_REPLY_STRING &&
                  strcmp(reply->element[0]->str, "master") == 0;
    if (!master) {
        const char *role = reply->type == REDIS_REPLY_ARRAY && reply->elements >= 1 &&
                                   reply->element[0]->type == REDIS_REPLY_STRING
                               ? reply->element[0]->str
                           : reply->type == REDIS_REPLY_ERROR ? reply->str
                                                              : "?";
        log_warn("redis %s:%d is not the primary (ROLE %s): asking Sentinel again", R.host, R.port,
                 role);
        snprintf(R.last_err, sizeof R.last_err, "%.60s:%d is not the primary", R.host, R.port);
        R.have_master = false;
        redisAsyncDisconnect(c);
        return;
    }
    if (c == R.cmd) {
        R.cmd_up = true;
        R.backoff_ms = 0;
        clock_gettime(CLOCK_MONOTONIC, &R.last_progress);
        log_info("redis connected (primary %s:%d of %s)", R.host, R.port, R.master_name);
    } else if (c == R.sub) {
        R.sub_up = true;
    }
}

static void on_connect(const redisAsyncContext *c, int status)
{
    bool is_cmd = c == R.cmd;
    if (status != REDIS_OK) {
        snprintf(R.last_err, sizeof R.last_err, "%s", c->errstr);
        log_warn("redis connect(%s:%d) failed: %s", R.host, R.port, c->errstr);
        if (R.sentinel)
            R.have_master = false;
        /* hiredis frees the context after this callback */
        if (is_cmd) {
            R.cmd = NULL;
            R.cmd_up = false;
        } else {
            R.sub = NULL;
            R.sub_up = false;
        }
        return;
    }
    if (R.sentinel)
        return; /* role_cb decides */
    if (is_cmd) {
        R.cmd_up = true;
        R.backoff_ms = 0;
        clock_gettime(CLOCK_MONOTONIC, &R.last_progress);
        log_info("redis connected (%s)", R.unix_path[0] ? R.unix_path : R.host);
    } else {
        R.sub_up = true;
    }
}

static void on_disconnect(const redisAsyncContext *c, int status)
{
    if (c == R.cmd) {
        R.cmd = NULL;
        R.cmd_up = false;
        R.pending = 0;
        if (!R.shutting_down)
            log_warn("redis command connection lost: %s",
                     status == REDIS_OK ? "closed" : c->errstr);
        if (R.sentinel && status != REDIS_OK)
            R.have_master = false;
    } else if (c == R.sub) {
        R.sub = NULL;
        R.sub_up = false;
        R.sub_epoch++;
        for (struct sub *s = R.subs; s; s = s->next)
            s->confirmed = false;
        if (!R.shutting_down)
            log_warn("redis pub/sub connection lost");
        if (R.sentinel && status != REDIS_OK)
            R.have_master = false;
    }
}

static redisAsyncContext *connect_one(void)
{
    redisAsyncContext *c =
        R.unix_path[0] ? redisAsyncConnectUnix(R.unix_path) : redisAsyncConnect(R.host, R.port);
    if (c == NULL)
        return NULL;
    if (c->err) {
        snprintf(R.last_err, sizeof R.last_err, "%s", c->errstr);
        redisAsyncFree(c);
        return NULL;
    }
    redisLibeventAttach(c, R.base);
    redisAsyncSetConnectCallback(c, on_connect);
    redisAsyncSetDisconnectCallback(c, on_disconnect);
    /* Commands issued before the connection completes are buffered by hiredis and sent in
     * order once it is up. */
    if (R.password[0])
        redisAsyncCommand(c, setup_cmd, NULL, "AUTH %s", R.password);
    if (R.sentinel)
        redisAsyncCommand(c, role_cb, NULL, "ROLE");
    return c;
}

static void subscribe_all(void)
{
    for (struct sub *s = R.subs; s; s = s->next)
        redisAsyncCommand(R.sub, sub_msg_cb, NULL, "SUBSCRIBE %s", s->channel);
}

static void try_connect(void)
{
    if (R.sentinel && !R.have_master) {
        sentinel_query();
        return;
    }
    if (R.cmd == NULL) {
        R.cmd = connect_one();
        R.pending = 0;
        if (R.cmd && R.db)
            redisAsyncCommand(R.cmd, setup_cmd, NULL, "SELECT %d", R.db);
    }
    if (R.sub == NULL) {
        R.sub = connect_one();
        if (R.sub)
            subscribe_all();
    }
}

/* Closes both connections (never from inside one of their callbacks): every pending command
 * fails, the pub/sub epoch changes, and the next try connects to the current address. */
static void drop_connections(void)
{
    if (R.cmd) {
        redisAsyncContext *c = R.cmd;
        R.cmd = NULL;
        R.cmd_up = false;
        R.pending = 0;
        redisAsyncFree(c);
    }
    if (R.sub) {
        redisAsyncContext *c = R.sub;
        R.sub = NULL;
        R.sub_up = false;
        R.sub_epoch++;
        for (struct sub *s = R.subs; s; s = s->next)
            s->confirmed = false;
        redisAsyncFree(c);
    }
}

static void sentinel_tick(double now)
{
    if (R.drop_pending) {
        R.drop_pending = false;
        log_warn("redis primary moved to %s:%d: reconnecting and resubscribing", R.host, R.port);
        drop_connections();
    }
    if (R.q != NULL && now - R.q_started > R.cfg->redis_timeout_ms / 1000.0) {
        log_warn("redis sentinel %s:%d: no answer within %d ms", R.sent[R.q_idx].host,
                 R.sent[R.q_idx].port, R.cfg->redis_timeout_ms);
        redisAsyncContext *c = R.q;
        R.q = NULL;
        R.q_idx = (R.q_idx + 1) % R.nsent;
        redisAsyncFree(c);
    }
    if (R.ss == NULL && now >= R.ss_next_try) {
        R.ss_next_try = now + 1.0;
        sentinel_subscribe();
    }
    /* Re-check now and then: a +switch-master missed while the subscription was down. */
    if (R.have_master && R.q == NULL && now - R.last_check > SENTINEL_RECHECK_S) {
        R.last_check = now;
        sentinel_query();
    }
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    if (R.shutting_down)
        return;
    double now = now_s();
    if (R.sentinel)
        sentinel_tick(now);
    if (R.cmd && R.cmd_up && R.pending > 0 &&
        now - ts_s(&R.last_progress) > R.cfg->redis_timeout_ms / 1000.0) {
        log_warn("redis command timed out after %d ms: reconnecting", R.cfg->redis_timeout_ms);
        snprintf(R.last_err, sizeof R.last_err, "command timeout");
        redisAsyncContext *c = R.cmd;
        R.cmd = NULL;
        R.cmd_up = false;
        R.pending = 0;
        redisAsyncFree(c); /* fails every pending command */
    }
    if ((R.cmd == NULL || R.sub == NULL) && now >= ts_s(&R.next_try)) {
        R.backoff_ms = R.backoff_ms ? R.backoff_ms * 2 : 100;
        /* Sentinel mode: a failover ends with a switch that resets this; until then keep
         * asking at most every second. */
        int cap = R.sentinel ? 1000 : 5000;
        if (R.backoff_ms > cap)
            R.backoff_ms = cap;
        double next = now + R.backoff_ms / 1000.0;
        R.next_try.tv_sec = (time_t)next;
        R.next_try.tv_nsec = (long)((next - (double)(time_t)next) * 1e9);
        try_connect();
    }
}

int redisc_init(struct event_base *base, const struct cfg *cfg)
{
    memset(&R, 0, sizeof R);
    R.sub_epoch = 1;
    R.base = base;
    R.cfg = cfg;
    if (parse_url(cfg->redis_url) < 0) {
        log_error("redis.url: unsupported URL (want redis://host:port/db or unix:///path)");
        return -1;
    }
    if (cfg->redis_sentinels.n > 0) {
        /* redis.url still gives the password and database number; its host is ignored. */
        R.sentinel = true;
        R.host[0] = '\0';
        R.port = 0;
        R.unix_path[0] = '\0';
        snprintf(R.master_name, sizeof R.master_name, "%s", cfg->redis_master_name);
        for (int i = 0; i < cfg->redis_sentinels.n && R.nsent < MAX_SENTINELS; i++) {
            if (parse_sentinel(cfg->redis_sentinels.v[i], R.sent[R.nsent].host,
                               sizeof R.sent[R.nsent].host, &R.sent[R.nsent].port) < 0) {
                log_error("redis.sentinels: %s: want host:port", cfg->redis_sentinels.v[i]);
                return -1;
            }
            R.nsent++;
        }
        /* Workers start at different Sentinels, so one dead Sentinel is not everyone's first
         * try. */
        R.q_idx = R.ss_idx = (int)((unsigned)getpid() % (unsigned)R.nsent);
    }
    read_password_file(cfg->redis_password_file);
    R.tick = event_new(base, -1, EV_PERSIST, tick_cb, NULL);
    if (R.tick == NULL)
        return -1;
    struct timeval tv = {0, 100 * 1000};
    event_add(R.tick, &tv);
    if (R.sentinel)
        sentinel_subscribe();
    try_connect();
    return 0;
}

bool redisc_ready(void)
{
    return R.cmd_up && R.sub_up;
}

void redisc_status(char *buf, size_t len)
{
    if (redisc_ready() && R.sentinel)
        snprintf(buf, len, "connected (primary %s:%d via Sentinel)", R.host, R.port);
    else if (redisc_ready())
        snprintf(buf, len, "connected");
    else
        snprintf(buf, len, "not connected%s%s", R.last_err[0] ? ": " : "", R.last_err);
}

struct pend {
    redisc_cb cb;
    void *arg;
};

static void cmd_done(redisAsyncContext *c, void *r, void *priv)
{
    struct pend *p = priv;
    if (r != NULL) {
        clock_gettime(CLOCK_MONOTONIC, &R.last_progress);
        if (R.pending > 0)
            R.pending--;
        const redisReply *reply = r;
        /* A primary demoted under us (failover): ask Sentinel where the primary is now. */
        if (R.sentinel && reply->type == REDIS_REPLY_ERROR && reply->str &&
            strncmp(reply->str, "READONLY", 8) == 0 && R.have_master) {
            log_warn("redis %s:%d answered READONLY: asking Sentinel again", R.host, R.port);
            R.last_check = 0;
        }
    }
    if (p->cb)
        p->cb(r, p->arg);
    free(p);
}

static struct pend *new_pend(redisc_cb cb, void *arg)
{
    struct pend *p = malloc(sizeof *p);
    if (p == NULL)
        return NULL;
    p->cb = cb;
    p->arg = arg;
    if (R.pending == 0)
        clock_gettime(CLOCK_MONOTONIC, &R.last_progress);
    return p;
}

int redisc_cmd(redisc_cb cb, void *arg, int argc, const char **argv, const size_t *lens)
{
    if (!R.cmd_up || R.cmd == NULL)
        return -1;
    struct pend *p = new_pend(cb, arg);
    if (p == NULL)
        return -1;
    if (redisAsyncCommandArgv(R.cmd, cmd_done, p, argc, argv, lens) != REDIS_OK) {
        free(p);
        return -1;
    }
    R.pending++;
    return 0;
}

int redisc_cmdf(redisc_cb cb, void *arg, const char *fmt, ...)
{
    if (!R.cmd_up || R.cmd == NULL)
        return -1;
    struct pend *p = new_pend(cb, arg);
    if (p == NULL)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    int rc = redisvAsyncCommand(R.cmd, cmd_done, p, fmt, ap);
    va_end(ap);
    if (rc != REDIS_OK) {
        free(p);
        return -1;
    }
    R.pending++;
    return 0;
}

int redisc_subscribe(const char *channel, redisc_msg_fn fn, void *arg)
{
    struct sub *s = calloc(1, sizeof *s);
    if (s == NULL)
        return -1;
    s->channel = strdup(channel);
    if (s->channel == NULL) {
        free(s);
        return -1;
    }
    s->fn = fn;
    s->arg = arg;
    s->next = R.subs;
    R.subs = s;
    if (R.sub)
        redisAsyncCommand(R.sub, sub_msg_cb, NULL, "SUBSCRIBE %s", channel);
    return 0;
}

void redisc_unsubscribe(const char *channel, void *arg)
{
    struct sub **pp = &R.subs;
    bool others = false;
    while (*pp) {
        struct sub *s = *pp;
        if (strcmp(s->channel, channel) == 0 && s->arg == arg) {
            *pp = s->next;
            free(s->channel);
            free(s);
            continue;
        }
        if (strcmp(s->channel, channel) == 0)
            others = true;
        pp = &s->next;
    }
    if (!others && R.sub && R.sub_up)
        redisAsyncCommand(R.sub, NULL, NULL, "UNSUBSCRIBE %s", channel);
}

uint32_t redisc_sub_epoch(const char *channel)
{
    if (R.sub == NULL || !R.sub_up)
        return 0;
    for (struct sub *s = R.subs; s; s = s->next)
        if (s->confirmed && strcmp(s->channel, channel) == 0)
            return R.sub_epoch ? R.sub_epoch : 1;
    return 0;
}

void redisc_shutdown(void)
{
    R.shutting_down = true;
    if (R.tick) {
        event_free(R.tick);
        R.tick = NULL;
    }
    if (R.cmd) {
        redisAsyncContext *c = R.cmd;
        R.cmd = NULL;
        redisAsyncFree(c);
    }
    if (R.sub) {
        redisAsyncContext *c = R.sub;
        R.sub = NULL;
        redisAsyncFree(c);
    }
    if (R.q) {
        redisAsyncContext *c = R.q;
        R.q = NULL;
        redisAsyncFree(c);
    }
    if (R.ss) {
        redisAsyncContext *c = R.ss;
        R.ss = NULL;
        redisAsyncFree(c);
    }
    while (R.subs) {
        struct sub *s = R.subs;
        R.subs = s->next;
        free(s->channel);
        free(s);
    }
}
