/*
 * mconn.c - one asynchronous PostgreSQL connection with a statement FIFO (see mconn.h).
 *
 * Invariants: at most one statement in flight; callbacks run from the loop (a deferred event
 * when a statement fails before it was sent), exactly once each; the connection is closed and
 * every pending statement failed before on_down runs; reconnects back off 100 ms .. 2 s.
 */
#include "mconn.h"

#include "cfg.h"
#include "log.h"
#include "metrics.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum st { ST_DOWN = 0, ST_CONNECTING, ST_SETUP, ST_IDLE, ST_BUSY };

struct mq {
    struct mq *next;
    char *sql;
    int np;
    char **params;
    mconn_cb cb;
    void *arg;
};

struct mconn {
    struct event_base *base;
    const struct cfg *cfg;
    char name[32];
    const char *password;
    char *setup_sql;
    struct mconn_hooks hooks;
    PGconn *pg;
    enum st st;
    struct event *ev, *retry, *defer;
    int backoff_ms;
    PGresult *last;
    struct mq *head, *tail; /* head is in flight when st == ST_BUSY */
    struct mq *failed;      /* statements failing at the next deferred callback */
    char failed_why[300];
};

static void mq_free(struct mq *q)
{
    free(q->sql);
    for (int i = 0; i < q->np; i++)
        free(q->params[i]);
    free(q->params);
    free(q);
}

static void watch(struct mconn *c, short what);
static void send_next(struct mconn *c);

static void defer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct mconn *c = arg;
    (void)fd, (void)what;
    struct mq *q = c->failed;
    char why[300];
    snprintf(why, sizeof why, "%s", c->failed_why);
    c->failed = NULL;
    while (q) {
        struct mq *n = q->next;
        q->cb(NULL, why, q->arg);
        mq_free(q);
        q = n;
    }
    if (c->st == ST_IDLE)
        send_next(c);
}

/* Moves every queued statement to the failed list (callbacks from the loop). */
static void fail_all(struct mconn *c, const char *why)
{
    if (!c->head)
        return;
    if (c->failed) {
        struct mq *t = c->failed;
        while (t->next)
            t = t->next;
        t->next = c->head;
    } else {
        c->failed = c->head;
    }
    c->head = c->tail = NULL;
    snprintf(c->failed_why, sizeof c->failed_why, "%s", why);
    event_active(c->defer, EV_TIMEOUT, 0);
}

static void close_pg(struct mconn *c)
{
    if (c->ev) {
        event_free(c->ev);
        c->ev = NULL;
    }
    if (c->pg) {
        PQfinish(c->pg);
        c->pg = NULL;
    }
    if (c->last) {
        PQclear(c->last);
        c->last = NULL;
    }
    c->st = ST_DOWN;
}

static void lost(struct mconn *c, const char *why)
{
    char msg[300];
    snprintf(msg, sizeof msg, "%s", why && *why ? why : "connection lost");
    msg[strcspn(msg, "\n")] = 0;
    bool was_up = c->st >= ST_IDLE;
    close_pg(c);
    metrics_inc("csmcp_monitor_db_errors_total", NULL, 1);
    if (was_up || c->backoff_ms == 0)
        log_warn("monitor %s connection: %s", c->name, msg);
    fail_all(c, msg);
    c->backoff_ms = c->backoff_ms ? (c->backoff_ms * 2 > 2000 ? 2000 : c->backoff_ms * 2) : 100;
    struct timeval tv = {c->backoff_ms / 1000, (c->backoff_ms % 1000) * 1000};
    evtimer_add(c->retry, &tv);
    if (c->hooks.on_down)
        c->hooks.on_down(msg, c->hooks.arg);
}

static void complete(struct mconn *c, PGresult *res)
{
    struct mq *q = c->head;
    c->head = q->next;
    if (!c->head)
        c->tail = NULL;
    c->st = ST_IDLE;
    if (res && PQresultStatus(res) != PGRES_TUPLES_OK && PQresultStatus(res) != PGRES_COMMAND_OK) {
        char e[600];
        snprintf(e, sizeof e, "%s", PQresultErrorMessage(res));
        e[strcspn(e, "\n")] = 0;
        q->cb(NULL, e, q->arg);
    } else {
        q->cb(res, res ? NULL : "no result", q->arg);
    }
    mq_free(q);
    if (res)
        PQclear(res);
}

static void on_io(evutil_socket_t fd, short what, void *arg)
{
    struct mconn *c = arg;
    (void)fd;
    if (c->st == ST_CONNECTING) {
        PostgresPollingStatusType ps = PQconnectPoll(c->pg);
        if (ps == PGRES_POLLING_FAILED) {
            lost(c, PQerrorMessage(c->pg));
            return;
        }
        if (ps == PGRES_POLLING_OK) {
            if (PQsetnonblocking(c->pg, 1) != 0 ||
                !PQsendQuery(c->pg, c->setup_sql ? c->setup_sql : "SELECT 1")) {
                lost(c, PQerrorMessage(c->pg));
                return;
            }
            c->st = ST_SETUP;
            watch(c, EV_READ);
            return;
        }
        watch(c, ps == PGRES_POLLING_READING ? EV_READ : EV_WRITE);
        return;
    }
    if (what & EV_WRITE) {
        int f = PQflush(c->pg);
        if (f < 0) {
            lost(c, PQerrorMessage(c->pg));
            return;
        }
        watch(c, f == 1 ? EV_READ | EV_WRITE : EV_READ);
    }
    if (!(what & EV_READ))
        return;
    if (!PQconsumeInput(c->pg)) {
        lost(c, PQerrorMessage(c->pg));
        return;
    }
    for (PGnotify *n; (n = PQnotifies(c->pg)) != NULL; PQfreemem(n))
        if (c->hooks.on_notify)
            c->hooks.on_notify(n->relname, n->extra, c->hooks.arg);
    while (!PQisBusy(c->pg)) {
        PGresult *r = PQgetResult(c->pg);
        if (r) {
            if (c->last)
                PQclear(c->last);
            c->last = r;
            continue;
        }
        PGresult *res = c->last;
        c->last = NULL;
        if (c->st == ST_SETUP) {
            bool ok = res && (PQresultStatus(res) == PGRES_COMMAND_OK ||
                              PQresultStatus(res) == PGRES_TUPLES_OK);
            char e[300];
            snprintf(e, sizeof e, "session set-up: %s", res ? PQresultErrorMessage(res) : "none");
            if (res)
                PQclear(res);
            if (!ok) {
                lost(c, e);
                return;
            }
            c->st = ST_IDLE;
            c->backoff_ms = 0;
            log_info("monitor %s connection: connected to the database", c->name);
            if (c->hooks.on_up)
                c->hooks.on_up(c->hooks.arg);
        } else if (c->st == ST_BUSY) {
            complete(c, res);
        } else if (res) {
            PQclear(res);
        }
        if (!c->pg)
            return; /* a callback freed or lost it */
        if (PQstatus(c->pg) == CONNECTION_BAD) {
            lost(c, PQerrorMessage(c->pg));
            return;
        }
        if (c->st == ST_IDLE)
            send_next(c);
        return;
    }
    if (PQstatus(c->pg) == CONNECTION_BAD)
        lost(c, PQerrorMessage(c->pg));
}

static void watch(struct mconn *c, short what)
{
    if (c->ev)
        event_free(c->ev);
    c->ev = event_new(c->base, PQsocket(c->pg), what | EV_PERSIST, on_io, c);
    if (!c->ev || event_add(c->ev, NULL) < 0)
        fatal("monitor %s connection: cannot watch the socket", c->name);
}

static void send_next(struct mconn *c)
{
    struct mq *q = c->head;
    if (c->st != ST_IDLE || !q)
        return;
    c->st = ST_BUSY;
    if (!PQsendQueryParams(c->pg, q->sql, q->np, NULL, (const char *const *)q->params, NULL, NULL,
                           0)) {
        lost(c, PQerrorMessage(c->pg));
        return;
    }
    int f = PQflush(c->pg);
    if (f < 0) {
        lost(c, PQerrorMessage(c->pg));
        return;
    }
    watch(c, f == 1 ? EV_READ | EV_WRITE : EV_READ);
}

void mconn_start(struct mconn *c)
{
    const char *keys[12], *vals[12];
    char ct[16], ka_idle[16], ka_int[16], uto[16], app[48];
    int n = 0, fo = c->cfg->monitor_failover_timeout;
    snprintf(ct, sizeof ct, "%d", c->cfg->database_connect_timeout);
    snprintf(ka_idle, sizeof ka_idle, "%d", fo / 3 > 1 ? fo / 3 : 1);
    snprintf(ka_int, sizeof ka_int, "%d", fo / 6 > 1 ? fo / 6 : 1);
    snprintf(uto, sizeof uto, "%d", fo * 1000);
    snprintf(app, sizeof app, "csmcp-monitor-%s", c->name);
    keys[n] = "dbname", vals[n++] = c->cfg->database_url;
    keys[n] = "application_name", vals[n++] = app;
    keys[n] = "connect_timeout", vals[n++] = ct;
    keys[n] = "keepalives_idle", vals[n++] = ka_idle;
    keys[n] = "keepalives_interval", vals[n++] = ka_int;
    keys[n] = "keepalives_count", vals[n++] = "3";
    keys[n] = "tcp_user_timeout", vals[n++] = uto;
    if (c->password)
        keys[n] = "password", vals[n++] = c->password;
    keys[n] = NULL, vals[n] = NULL;
    close_pg(c);
    c->pg = PQconnectStartParams(keys, vals, 1);
    if (!c->pg || PQstatus(c->pg) == CONNECTION_BAD) {
        lost(c, c->pg ? PQerrorMessage(c->pg) : "out of memory");
        return;
    }
    c->st = ST_CONNECTING;
    watch(c, EV_WRITE);
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
    struct mconn *c = arg;
    (void)fd, (void)what;
    if (c->st == ST_DOWN)
        mconn_start(c);
}

struct mconn *mconn_new(struct event_base *base, const struct cfg *cfg, const char *name,
                        const char *password, const char *setup_sql,
                        const struct mconn_hooks *hooks)
{
    struct mconn *c = calloc(1, sizeof *c);
    if (!c)
        fatal("monitor: out of memory");
    c->base = base;
    c->cfg = cfg;
    snprintf(c->name, sizeof c->name, "%s", name);
    c->password = password;
    c->setup_sql = setup_sql ? strdup(setup_sql) : NULL;
    if (hooks)
        c->hooks = *hooks;
    c->retry = evtimer_new(base, retry_cb, c);
    c->defer = event_new(base, -1, 0, defer_cb, c);
    if (!c->retry || !c->defer || (setup_sql && !c->setup_sql))
        fatal("monitor: out of memory");
    return c;
}

void mconn_query(struct mconn *c, const char *sql, int np, const char *const *params, mconn_cb cb,
                 void *arg)
{
    struct mq *q = calloc(1, sizeof *q);
    if (!q)
        fatal("monitor: out of memory");
    q->sql = strdup(sql);
    q->np = np;
    q->params = np ? calloc((size_t)np, sizeof(char *)) : NULL;
    if (!q->sql || (np && !q->params))
        fatal("monitor: out of memory");
    for (int i = 0; i < np; i++)
        if (params[i] && !(q->params[i] = strdup(params[i])))
            fatal("monitor: out of memory");
    q->cb = cb;
    q->arg = arg;
    if (c->tail)
        c->tail->next = q;
    else
        c->head = q;
    c->tail = q;
    if (c->st < ST_IDLE)
        fail_all(c, "not connected to the database");
    else if (c->st == ST_IDLE)
        event_active(c->defer, EV_TIMEOUT, 0); /* sent from the loop, never from here */
}

bool mconn_up(const struct mconn *c)
{
    return c->st >= ST_IDLE;
}

bool mconn_busy(const struct mconn *c)
{
    return c->st == ST_BUSY || c->head || c->failed;
}

void mconn_free(struct mconn *c)
{
    if (!c)
        return;
    close_pg(c);
    for (struct mq *q = c->head, *n; q; q = n) {
        n = q->next;
        mq_free(q);
    }
    for (struct mq *q = c->failed, *n; q; q = n) {
        n = q->next;
        mq_free(q);
    }
    event_free(c->retry);
    event_free(c->defer);
    free(c->setup_sql);
    free(c);
}
