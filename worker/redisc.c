/*
 * redisc.c - async Redis for the worker (hiredis 0.14 + its libevent adapter).
 *
 * Invariants: at most one command context and one subscriber context exist; a NULL context
 * means "reconnect pending" and commands fail fast (-1) instead of queueing without bound.
 * hiredis calls every pending callback with a NULL reply when a context is freed, which is how
 * timeouts and disconnects fail the requests waiting on Redis. Contexts are never freed from
 * inside a hiredis callback (hiredis forbids it): the watchdog timer does it.
 */
#include "redisc.h"

#include "cfg.h"
#include "log.h"

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
    bool cmd_kill, sub_kill; /* the watchdog frees it */
    int pending;
    struct timespec last_progress;
    struct event *tick;
    int backoff_ms;
    struct timespec next_try;
    struct sub *subs;
    uint32_t sub_epoch; /* changes whenever the pub/sub connection is lost */
    bool shutting_down;
    char last_err[128];
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

static void on_connect(const redisAsyncContext *c, int status)
{
    bool is_cmd = c == R.cmd;
    if (status != REDIS_OK) {
        snprintf(R.last_err, sizeof R.last_err, "%s", c->errstr);
        log_warn("redis connect(%s:%d) failed: %s", R.host, R.port, c->errstr);
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
    } else if (c == R.sub) {
        R.sub = NULL;
        R.sub_up = false;
        R.sub_epoch++;
        for (struct sub *s = R.subs; s; s = s->next)
            s->confirmed = false;
        if (!R.shutting_down)
            log_warn("redis pub/sub connection lost");
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
    return c;
}

static void subscribe_all(void)
{
    for (struct sub *s = R.subs; s; s = s->next)
        redisAsyncCommand(R.sub, sub_msg_cb, NULL, "SUBSCRIBE %s", s->channel);
}

static void try_connect(void)
{
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

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    if (R.shutting_down)
        return;
    double now = now_s();
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
        if (R.backoff_ms > 5000)
            R.backoff_ms = 5000;
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
    read_password_file(cfg->redis_password_file);
    R.tick = event_new(base, -1, EV_PERSIST, tick_cb, NULL);
    if (R.tick == NULL)
        return -1;
    struct timeval tv = {0, 100 * 1000};
    event_add(R.tick, &tv);
    try_connect();
    return 0;
}

bool redisc_ready(void)
{
    return R.cmd_up && R.sub_up;
}

void redisc_status(char *buf, size_t len)
{
    if (redisc_ready())
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
    while (R.subs) {
        struct sub *s = R.subs;
        R.subs = s->next;
        free(s->channel);
        free(s);
    }
}
