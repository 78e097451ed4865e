/*
 * pgpool.c - per-worker PostgreSQL connection pool on libpq's asynchronous API.
 *
 * Role: run parameterized statements for the tools without ever blocking the event loop.
 * Connections are opened with PQconnectStartParams/PQconnectPoll, statements run with
 * PQsendPrepare + PQsendQueryPrepared, everything is driven by libevent socket readiness.
 *
 * Invariants:
 *   - a connection is in exactly one state (enum conn_state); set_state() is the only writer and
 *     keeps the per-state counters and the csmcp_db_pool_connections gauges right;
 *   - a BUSY connection owns exactly one request; a request is either in the FIFO wait queue, on
 *     one connection, or finished - its callback runs exactly once, never from inside
 *     pgpool_query() (immediate failures are deferred through a zero timer);
 *   - an IDLE connection keeps a read event armed: a server that closes it (restart, idle kill)
 *     is noticed at once and the connection goes to BACKOFF, never handed out dead;
 *   - reconnects use exponential backoff with jitter (100 ms .. 5 s), reset after a success;
 *   - liveness: a connection idle for PING_IDLE_S runs SELECT 1; a busy one that gets no answer
 *     within statement_timeout + BUSY_GRACE_S is declared dead (the server would have cancelled
 *     the statement itself, so silence means a vanished peer TCP has not reported yet);
 *   - a connection older than database.max_lifetime (-10% jitter, so the pool never recycles
 *     all at once) is closed when it next becomes idle;
 *   - statements are prepared once per connection; the pool-wide registry maps statement text to
 *     a stable name "csmcp_<n>" (bounded; beyond it statements run unprepared).
 *
 * Read replica (database.read_url): pgpool_create also creates a second pool of the same size on
 * the replica (read-only sessions, metrics csmcp_db_replica_*). A timer on the replica pool
 * measures its replay lag about every second with one bounded query (LAG_SQL); only one check is
 * in flight, it never blocks the loop. pgpool_query_read() runs a statement on the replica when
 * the last check is fresh (< LAG_FRESH_S) and its lag is within database.max_replica_lag, else on
 * the primary; a retryable failure on the replica (connection lost, recovery conflict) re-runs the
 * statement on the primary once. csmcp_db_replica_reads_total{result} counts where each ran.
 *
 * Failure semantics for the caller (pgpool_cb): a lost connection during a query, a queue
 * deadline, or a pool with no live connection fail with retryable = true and a message that says
 * "temporarily unavailable"; SQL errors carry the server's SQLSTATE and primary message.
 */
#include "pgpool.h"
#include "secret.h"

#include <errno.h>
#include <event2/event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include "cfg.h"
#include "log.h"
#include "metrics.h"

#define PGPOOL_MAX_STMTS 256
#define BACKOFF_MIN_MS   100
#define BACKOFF_MAX_MS   5000
#define TICK_MS          200
#define PING_IDLE_S      30.0 /* an idle connection is checked with SELECT 1 this often */
#define BUSY_GRACE_S     5.0  /* no answer within statement_timeout + this: the peer is gone */
#define LAG_CHECK_MS     1000 /* replica lag measured this often */
#define LAG_FRESH_S      3.0  /* a lag older than this is unknown: reads go to the primary */
/* Seconds the replica is behind: 0 when it has replayed everything it received (an idle primary
 * writes nothing, so the last replayed commit may be old without any staleness), else the age
 * of the last replayed commit. Not in recovery (read_url is a primary): 0. */
#define LAG_SQL                                                                                    \
    "SELECT CASE WHEN NOT pg_is_in_recovery() THEN 0 "                                             \
    "WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() "                \
    "AND NOT pg_is_wal_replay_paused() THEN 0 "                                                    \
    "ELSE COALESCE(EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp()), "      \
    "1e9) END::float8"

enum conn_state {
    CONN_DOWN = 0,   /* not connected, nothing scheduled (only before start and at free) */
    CONN_CONNECTING, /* PQconnectPoll in progress */
    CONN_IDLE,       /* connected, no request */
    CONN_BUSY,       /* running one request */
    CONN_BACKOFF,    /* waiting to reconnect */
    CONN_NSTATES,
};

static const char *const conn_state_names[CONN_NSTATES] = {"down", "connecting", "idle", "busy",
                                                           "backoff"};

enum req_phase {
    PHASE_PREPARE, /* PQsendPrepare sent, waiting for its result */
    PHASE_EXEC,    /* the statement itself is running */
};

struct pgreq {
    TAILQ_ENTRY(pgreq) link;
    struct pgpool *pool;
    char *sql;
    int nparams;
    char **params;
    int stmt; /* registry index or -1 (run unprepared) */
    pgpool_cb cb;
    void *arg;
    struct timespec queued;  /* when pgpool_query accepted it */
    struct timespec started; /* when it was sent */
    enum req_phase phase;
    PGresult *last; /* last result of the current phase (owned) */
};

TAILQ_HEAD(reqq, pgreq);

struct pgconn {
    struct pgpool *pool;
    int idx;
    enum conn_state state;
    PGconn *pg;
    struct event *ev; /* socket readiness; recreated whenever the socket changes */
    int ev_fd;
    struct event *timer;       /* connect deadline or backoff wake-up */
    struct timespec born;      /* when it became connected */
    struct timespec last_used; /* when it last finished a request (or connected) */
    double lifetime; /* max_lifetime with -10% jitter, so the pool never recycles at once */
    int backoff_ms;
    unsigned char *prepared; /* PGPOOL_MAX_STMTS flags */
    struct pgreq *req;
    bool want_write; /* output still to flush */
};

struct pgpool {
    struct event_base *base;
    const struct cfg *cfg;
    char *password; /* from database.password_file, or NULL */
    char statement_opts[128];
    char connect_timeout[16];
    int nconns;
    struct pgconn *conns;
    int count[CONN_NSTATES];
    struct reqq waitq;
    int nwaiting;
    struct event *tick;
    struct event *kick; /* runs dispatch() on the next loop turn (see pgpool_query) */
    char *stmts[PGPOOL_MAX_STMTS];
    int nstmts;
    uint32_t rng;
    bool freeing;
    const char *url;        /* database.url or database.read_url */
    const char *prefix;     /* metric name prefix: "csmcp_db" or "csmcp_db_replica" */
    struct pgpool *replica; /* primary pool: its replica pool, or NULL */
    /* replica pool: replay lag */
    struct event *lag_timer;
    bool lag_inflight;
    bool lag_known;
    double lag_s;
    struct timespec lag_at; /* when lag_s was measured */
};

/* ---------------------------------------------------------------- helpers */

static double elapsed_s(const struct timespec *a)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - a->tv_sec) + (double)(now.tv_nsec - a->tv_nsec) / 1e9;
}

static void update_gauges(struct pgpool *p)
{
    char lbl[64], name[64];
    snprintf(name, sizeof(name), "%s_pool_connections", p->prefix);
    for (int s = CONN_CONNECTING; s < CONN_NSTATES; s++) {
        snprintf(lbl, sizeof(lbl), "state=\"%s\"", conn_state_names[s]);
        metrics_gauge_set(name, lbl, p->count[s]);
    }
    snprintf(name, sizeof(name), "%s_pool_waiting", p->prefix);
    metrics_gauge_set(name, NULL, p->nwaiting);
}

static void count_error_p(const struct pgpool *p, const char *kind)
{
    char lbl[64], name[64];
    snprintf(lbl, sizeof(lbl), "kind=\"%s\"", kind);
    snprintf(name, sizeof(name), "%s_errors_total", p->prefix);
    metrics_inc(name, lbl, 1);
}

static void set_state(struct pgconn *c, enum conn_state to)
{
    if (c->state == to)
        return;
    log_debug("pgpool conn %d: %s -> %s", c->idx, conn_state_names[c->state], conn_state_names[to]);
    c->pool->count[c->state]--;
    c->pool->count[to]++;
    c->state = to;
    update_gauges(c->pool);
}

static void req_free(struct pgreq *r)
{
    if (!r)
        return;
    for (int i = 0; r->params && i < r->nparams; i++)
        free(r->params[i]);
    free(r->params);
    free(r->sql);
    if (r->last)
        PQclear(r->last);
    free(r);
}

/* Runs the callback (exactly once) and frees the request. */
static void req_finish(struct pgreq *r, const PGresult *res, const char *err, const char *sqlstate,
                       bool retryable)
{
    if (res)
        metrics_observe("csmcp_db_query_duration_seconds", NULL, elapsed_s(&r->started));
    r->cb(res, err, sqlstate, retryable, r->arg);
    req_free(r);
}

static bool sqlstate_retryable(const char *s)
{
    if (!s)
        return false;
    return strncmp(s, "08", 2) == 0 || strcmp(s, "57P01") == 0 || strcmp(s, "57P02") == 0 ||
           strcmp(s, "57P03") == 0 || strcmp(s, "40001") == 0 || strcmp(s, "40P01") == 0 ||
           strcmp(s, "53300") == 0;
}

/* Deferred failure, so that pgpool_query never calls back from inside itself. */
struct deferred {
    struct pgreq *req;
    char err[160];
    char sqlstate[6];
    bool retryable;
};

static void deferred_cb(evutil_socket_t fd, short what, void *arg)
{
    struct deferred *d = arg;
    req_finish(d->req, NULL, d->err, d->sqlstate, d->retryable);
    free(d);
}

static void fail_later(struct pgpool *p, struct pgreq *r, const char *err, const char *sqlstate,
                       bool retryable)
{
    struct deferred *d = calloc(1, sizeof(*d));
    struct timeval zero = {0, 0};
    if (d) {
        d->req = r;
        snprintf(d->err, sizeof(d->err), "%s", err);
        snprintf(d->sqlstate, sizeof(d->sqlstate), "%s", sqlstate);
        d->retryable = retryable;
        if (event_base_once(p->base, -1, EV_TIMEOUT, deferred_cb, d, &zero) == 0)
            return;
        free(d);
    }
    /* Out of memory or no base: last resort, call now (still exactly once). */
    req_finish(r, NULL, err, sqlstate, retryable);
}

/* ---------------------------------------------------------------- connection lifecycle */

static void conn_event_cb(evutil_socket_t fd, short what, void *arg);
static void conn_timer_cb(evutil_socket_t fd, short what, void *arg);
static void conn_start(struct pgconn *c);
static void dispatch(struct pgpool *p);

/* (Re)arms the socket event for the current PQsocket with the given interest. */
static int conn_watch(struct pgconn *c, short what)
{
    int fd = PQsocket(c->pg);
    if (fd < 0)
        return -1;
    if (c->ev && (c->ev_fd != fd || event_get_events(c->ev) != (what | EV_PERSIST))) {
        event_free(c->ev);
        c->ev = NULL;
    }
    if (!c->ev) {
        c->ev = event_new(c->pool->base, fd, what | EV_PERSIST, conn_event_cb, c);
        if (!c->ev)
            return -1;
        c->ev_fd = fd;
    }
    return event_add(c->ev, NULL);
}

static void conn_close(struct pgconn *c)
{
    if (c->ev) {
        event_free(c->ev);
        c->ev = NULL;
    }
    if (c->pg) {
        PQfinish(c->pg);
        c->pg = NULL;
    }
    memset(c->prepared, 0, PGPOOL_MAX_STMTS);
    c->want_write = false;
}

/* Closes the connection and schedules a reconnect after the backoff delay (with jitter). */
static void conn_backoff(struct pgconn *c)
{
    struct pgpool *p = c->pool;
    conn_close(c);
    if (p->freeing) {
        set_state(c, CONN_DOWN);
        return;
    }
    c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (c->backoff_ms > BACKOFF_MAX_MS)
        c->backoff_ms = BACKOFF_MAX_MS;
    p->rng = p->rng * 1103515245u + 12345u;
    int delay = c->backoff_ms / 2 + (int)((p->rng >> 8) % (unsigned)(c->backoff_ms / 2 + 1));
    struct timeval tv = {delay / 1000, (long)(delay % 1000) * 1000};
    set_state(c, CONN_BACKOFF);
    evtimer_add(c->timer, &tv);
}

/* The connection broke: fail its request (retryable) and reconnect later. */
static void conn_lost(struct pgconn *c, const char *why)
{
    struct pgreq *r = c->req;
    log_warn("pgpool conn %d: connection lost: %s", c->idx, why);
    count_error_p(c->pool, "connection_lost");
    c->req = NULL;
    conn_backoff(c);
    if (r)
        req_finish(r, NULL, "database connection lost during the query", "08006", true);
    if (!c->pool->freeing)
        dispatch(c->pool);
}

static void conn_connected(struct pgconn *c)
{
    evtimer_del(c->timer);
    if (PQsetnonblocking(c->pg, 1) != 0) {
        conn_backoff(c);
        return;
    }
    clock_gettime(CLOCK_MONOTONIC, &c->born);
    c->last_used = c->born;
    c->pool->rng = c->pool->rng * 1103515245u + 12345u;
    c->lifetime = (double)c->pool->cfg->database_max_lifetime *
                  (0.9 + 0.1 * (double)((c->pool->rng >> 8) % 1000) / 1000.0);
    if (c->backoff_ms)
        log_info("pgpool conn %d: reconnected", c->idx);
    c->backoff_ms = 0;
    set_state(c, CONN_IDLE);
    if (conn_watch(c, EV_READ) != 0) {
        conn_lost(c, "cannot watch socket");
        return;
    }
    dispatch(c->pool);
}

static void conn_poll(struct pgconn *c)
{
    switch (PQconnectPoll(c->pg)) {
    case PGRES_POLLING_READING:
        if (conn_watch(c, EV_READ) != 0)
            goto failed;
        return;
    case PGRES_POLLING_WRITING:
        if (conn_watch(c, EV_WRITE) != 0)
            goto failed;
        return;
    case PGRES_POLLING_OK:
        conn_connected(c);
        return;
    default:
        goto failed;
    }
failed : {
    char msg[256];
    snprintf(msg, sizeof(msg), "%s", c->pg ? PQerrorMessage(c->pg) : "out of memory");
    msg[strcspn(msg, "\n")] = 0;
    /* Log the first failure of a streak loudly, the retries quietly. */
    if (c->backoff_ms == 0)
        log_warn("pgpool conn %d: connect failed: %s", c->idx, msg);
    else
        log_debug("pgpool conn %d: connect failed: %s", c->idx, msg);
    count_error_p(c->pool, "connect");
    conn_backoff(c);
    /* With no live connection left, waiting callers would only time out: fail them now. */
    dispatch(c->pool);
}
}

static void conn_start(struct pgconn *c)
{
    struct pgpool *p = c->pool;
    const char *keys[8], *vals[8];
    int n = 0;
    keys[n] = "dbname";
    vals[n++] = p->url;
    keys[n] = "application_name";
    vals[n++] = strcmp(p->prefix, "csmcp_db") == 0 ? "csmcp-worker" : "csmcp-worker-read";
    keys[n] = "connect_timeout";
    vals[n++] = p->connect_timeout;
    keys[n] = "options";
    vals[n++] = p->statement_opts;
    keys[n] = "keepalives_idle";
    vals[n++] = "30";
    if (p->password) {
        keys[n] = "password";
        vals[n++] = p->password;
    }
    keys[n] = NULL;
    vals[n] = NULL;

    conn_close(c);
    c->pg = PQconnectStartParams(keys, vals, 1);
    set_state(c, CONN_CONNECTING);
    struct timeval tv = {p->cfg->database_connect_timeout, 0};
    evtimer_add(c->timer, &tv);
    if (!c->pg || PQstatus(c->pg) == CONNECTION_BAD) {
        count_error_p(c->pool, "connect");
        if (c->backoff_ms == 0)
            log_warn("pgpool conn %d: connect failed: %s", c->idx,
                     c->pg ? PQerrorMessage(c->pg) : "out of memory");
        conn_backoff(c);
        return;
    }
    conn_poll(c);
}

static void conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct pgconn *c = arg;
    if (c->state == CONN_BACKOFF) {
        conn_start(c);
    } else if (c->state == CONN_CONNECTING) {
        if (c->backoff_ms == 0)
            log_warn("pgpool conn %d: connect timed out", c->idx);
        count_error_p(c->pool, "connect");
        conn_backoff(c);
        dispatch(c->pool);
    }
}

/* ---------------------------------------------------------------- queries */

static int stmt_index(struct pgpool *p, const char *sql)
{
    for (int i = 0; i < p->nstmts; i++)
        if (strcmp(p->stmts[i], sql) == 0)
            return i;
    if (p->nstmts >= PGPOOL_MAX_STMTS)
        return -1;
    p->stmts[p->nstmts] = strdup(sql);
    if (!p->stmts[p->nstmts])
        return -1;
    return p->nstmts++;
}

static int req_send(struct pgconn *c)
{
    struct pgreq *r = c->req;
    char name[32];
    int ok;
    if (r->stmt >= 0)
        snprintf(name, sizeof(name), "csmcp_%d", r->stmt);
    if (r->stmt >= 0 && !c->prepared[r->stmt]) {
        r->phase = PHASE_PREPARE;
        ok = PQsendPrepare(c->pg, name, r->sql, r->nparams, NULL);
    } else if (r->stmt >= 0) {
        r->phase = PHASE_EXEC;
        ok = PQsendQueryPrepared(c->pg, name, r->nparams, (const char *const *)r->params, NULL,
                                 NULL, 0);
    } else {
        r->phase = PHASE_EXEC;
        ok = PQsendQueryParams(c->pg, r->sql, r->nparams, NULL, (const char *const *)r->params,
                               NULL, NULL, 0);
    }
    if (!ok)
        return -1;
    int f = PQflush(c->pg);
    if (f < 0)
        return -1;
    c->want_write = f == 1;
    return conn_watch(c, c->want_write ? EV_READ | EV_WRITE : EV_READ);
}

static void conn_take(struct pgconn *c, struct pgreq *r)
{
    c->req = r;
    clock_gettime(CLOCK_MONOTONIC, &r->started);
    set_state(c, CONN_BUSY);
    if (req_send(c) != 0) {
        char msg[200];
        snprintf(msg, sizeof(msg), "send: %s", PQerrorMessage(c->pg));
        msg[strcspn(msg, "\n")] = 0;
        conn_lost(c, msg);
    }
}

/* The current request finished on c (all results read). */
static void conn_request_done(struct pgconn *c)
{
    struct pgreq *r = c->req;
    PGresult *res = r->last;
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;

    if (r->phase == PHASE_PREPARE && st == PGRES_COMMAND_OK) {
        c->prepared[r->stmt] = 1;
        PQclear(r->last);
        r->last = NULL;
        if (req_send(c) != 0)
            conn_lost(c, "send after prepare");
        return;
    }

    c->req = NULL;
    /* Recycle an old connection before it is handed out again. */
    bool expired = elapsed_s(&c->born) > c->lifetime;
    clock_gettime(CLOCK_MONOTONIC, &c->last_used);
    set_state(c, CONN_IDLE);

    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
        r->last = NULL;
        req_finish(r, res, NULL, NULL, false);
        PQclear(res);
    } else {
        const char *sqlstate = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        const char *prim = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
        char err[512];
        snprintf(err, sizeof(err), "%s", prim ? prim : PQerrorMessage(c->pg));
        err[strcspn(err, "\n")] = 0;
        bool retry = sqlstate_retryable(sqlstate);
        /* Rejections our functions raise on purpose (not found, invalid input, constraint) are
         * answers, not database errors: alerts on csmcp_db_errors_total must not fire on them. */
        if (sqlstate && (strncmp(sqlstate, "P0", 2) == 0 || strncmp(sqlstate, "22", 2) == 0 ||
                         strncmp(sqlstate, "23", 2) == 0))
            metrics_inc("csmcp_db_rejected_total", NULL, 1);
        else
            count_error_p(c->pool, retry ? "transient" : "query");
        /* A plan cached before a schema change: forget it so the next use re-prepares. */
        if (sqlstate && (strcmp(sqlstate, "0A000") == 0 || strcmp(sqlstate, "26000") == 0) &&
            r->stmt >= 0)
            c->prepared[r->stmt] = 0;
        char ss[6];
        snprintf(ss, sizeof(ss), "%s", sqlstate ? sqlstate : "XX000");
        req_finish(r, NULL, err, ss, retry);
    }
    if (PQstatus(c->pg) != CONNECTION_OK) {
        conn_lost(c, "bad status after query");
        return;
    }
    if (expired && c->state == CONN_IDLE) {
        log_info("pgpool conn %d: max_lifetime reached, reconnecting", c->idx);
        conn_start(c);
        return;
    }
    dispatch(c->pool);
}

static void conn_event_cb(evutil_socket_t fd, short what, void *arg)
{
    struct pgconn *c = arg;
    if (c->state == CONN_CONNECTING) {
        conn_poll(c);
        return;
    }
    if (c->state != CONN_IDLE && c->state != CONN_BUSY)
        return;
    if (what & EV_WRITE) {
        int f = PQflush(c->pg);
        if (f < 0) {
            conn_lost(c, "flush failed");
            return;
        }
        if (f == 0 && c->want_write) {
            c->want_write = false;
            if (conn_watch(c, EV_READ) != 0) {
                conn_lost(c, "cannot watch socket");
                return;
            }
        }
    }
    if (!(what & EV_READ))
        return;
    if (!PQconsumeInput(c->pg)) {
        char msg[200];
        snprintf(msg, sizeof(msg), "%s", PQerrorMessage(c->pg));
        msg[strcspn(msg, "\n")] = 0;
        conn_lost(c, msg);
        return;
    }
    if (c->state == CONN_IDLE) {
        /* Nothing is expected on an idle connection but notices; a dead one shows here. */
        if (PQstatus(c->pg) != CONNECTION_OK)
            conn_lost(c, "closed by server while idle");
        return;
    }
    while (c->req && !PQisBusy(c->pg)) {
        PGresult *res = PQgetResult(c->pg);
        if (!res) {
            conn_request_done(c);
            return;
        }
        if (c->req->last)
            PQclear(c->req->last);
        c->req->last = res;
    }
    if (PQstatus(c->pg) != CONNECTION_OK)
        conn_lost(c, "connection closed");
}

/* Hands queued requests to idle connections; fails them at once when no connection is live. */
static void dispatch(struct pgpool *p)
{
    for (int i = 0; i < p->nconns && !TAILQ_EMPTY(&p->waitq); i++) {
        struct pgconn *c = &p->conns[i];
        if (c->state != CONN_IDLE)
            continue;
        struct pgreq *r = TAILQ_FIRST(&p->waitq);
        TAILQ_REMOVE(&p->waitq, r, link);
        p->nwaiting--;
        conn_take(c, r);
    }
    if (!TAILQ_EMPTY(&p->waitq) &&
        p->count[CONN_IDLE] + p->count[CONN_BUSY] + p->count[CONN_CONNECTING] == 0) {
        struct pgreq *r;
        while ((r = TAILQ_FIRST(&p->waitq))) {
            TAILQ_REMOVE(&p->waitq, r, link);
            p->nwaiting--;
            count_error_p(p, "unavailable");
            req_finish(r, NULL, "database temporarily unavailable (reconnecting)", "08006", true);
        }
    }
    update_gauges(p);
}

static void ping_done(const PGresult *res, const char *err, const char *sqlstate, bool retryable,
                      void *arg)
{
    (void)res, (void)err, (void)sqlstate, (void)retryable, (void)arg;
}

/* Liveness check of a connection that has been idle for a while: a dead one fails here (and
 * reconnects) instead of failing the next client's call. */
static void ping(struct pgconn *c)
{
    struct pgreq *r = calloc(1, sizeof(*r));
    if (!r || !(r->sql = strdup("SELECT 1"))) {
        free(r);
        return;
    }
    r->pool = c->pool;
    r->stmt = -1;
    r->cb = ping_done;
    clock_gettime(CLOCK_MONOTONIC, &r->queued);
    conn_take(c, r);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct pgpool *p = arg;
    double limit = (double)p->cfg->database_queue_timeout_ms / 1000.0;
    struct pgreq *r;
    while ((r = TAILQ_FIRST(&p->waitq)) && elapsed_s(&r->queued) >= limit) {
        TAILQ_REMOVE(&p->waitq, r, link);
        p->nwaiting--;
        count_error_p(p, "queue_timeout");
        req_finish(r, NULL, "database busy: timed out waiting for a connection", "57014", true);
    }
    double busy_limit = (double)p->cfg->database_statement_timeout_ms / 1000.0 + BUSY_GRACE_S;
    for (int i = 0; i < p->nconns; i++) {
        struct pgconn *c = &p->conns[i];
        if (c->state == CONN_IDLE && elapsed_s(&c->born) > c->lifetime) {
            log_info("pgpool conn %d: max_lifetime reached, reconnecting", c->idx);
            conn_start(c);
        } else if (c->state == CONN_IDLE && TAILQ_EMPTY(&p->waitq) &&
                   elapsed_s(&c->last_used) > PING_IDLE_S) {
            ping(c);
        } else if (c->state == CONN_BUSY && p->cfg->database_statement_timeout_ms > 0 && c->req &&
                   elapsed_s(&c->req->started) > busy_limit) {
            /* The server enforces statement_timeout itself; silence past it means a dead
             * peer (host down, network partition) that TCP has not reported yet. */
            conn_lost(c, "no answer within statement_timeout");
        }
    }
    update_gauges(p);
}

static void kick_cb(evutil_socket_t fd, short what, void *arg)
{
    dispatch(arg);
}

/* ---------------------------------------------------------------- public API */

static void lag_done(const PGresult *res, const char *err, const char *sqlstate, bool retryable,
                     void *arg)
{
    struct pgpool *p = arg;
    p->lag_inflight = false;
    if (res == NULL || PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
        if (p->lag_known)
            log_warn("pgpool replica: lag check failed: %s", err ? err : "no row");
        p->lag_known = false;
        return;
    }
    p->lag_s = strtod(PQgetvalue(res, 0, 0), NULL);
    p->lag_known = true;
    clock_gettime(CLOCK_MONOTONIC, &p->lag_at);
}

static void lag_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct pgpool *p = arg;
    if (p->lag_inflight || !pgpool_ready(p))
        return;
    /* One check at a time; bounded by statement_timeout and the busy-connection watchdog. */
    if (pgpool_query(p, LAG_SQL, 0, NULL, lag_done, p) == 0)
        p->lag_inflight = true;
}

static struct pgpool *pool_new(struct event_base *base, const struct cfg *cfg, const char *url,
                               const char *prefix, bool read_only)
{
    struct pgpool *p = calloc(1, sizeof(*p));
    struct timeval tick = {0, (long)TICK_MS * 1000};
    if (!p)
        return NULL;
    p->base = base;
    p->cfg = cfg;
    p->url = url;
    p->prefix = prefix;
    p->rng = (uint32_t)time(NULL) ^ (uint32_t)(uintptr_t)p;
    TAILQ_INIT(&p->waitq);
    snprintf(p->statement_opts, sizeof(p->statement_opts),
             "-c statement_timeout=%d -c search_path=public%s", cfg->database_statement_timeout_ms,
             read_only ? " -c default_transaction_read_only=on" : "");
    snprintf(p->connect_timeout, sizeof(p->connect_timeout), "%d", cfg->database_connect_timeout);
    {
        /* database.password_file, or the systemd credential "database.password"; the same
         * loader refuses group/world-readable files and never logs the value. */
        char err[256];
        size_t len = 0;
        int rc = secret_load(NULL, cfg->database_password_file, "database.password", &p->password,
                             &len, NULL, 0, err, sizeof(err));
        if (rc < 0) {
            log_error("pgpool: database password: %s", err);
            goto fail;
        }
    }
    p->nconns = cfg->database_pool_size > 0 ? cfg->database_pool_size : 1;
    p->conns = calloc((size_t)p->nconns, sizeof(*p->conns));
    if (!p->conns)
        goto fail;
    p->count[CONN_DOWN] = p->nconns;
    for (int i = 0; i < p->nconns; i++) {
        struct pgconn *c = &p->conns[i];
        c->pool = p;
        c->idx = i;
        c->prepared = calloc(PGPOOL_MAX_STMTS, 1);
        c->timer = evtimer_new(base, conn_timer_cb, c);
        if (!c->prepared || !c->timer)
            goto fail;
    }
    p->tick = event_new(base, -1, EV_PERSIST, tick_cb, p);
    p->kick = event_new(base, -1, 0, kick_cb, p);
    if (!p->tick || !p->kick || event_add(p->tick, &tick) != 0)
        goto fail;
    if (read_only) {
        struct timeval lt = {LAG_CHECK_MS / 1000, (long)(LAG_CHECK_MS % 1000) * 1000};
        p->lag_timer = event_new(base, -1, EV_PERSIST, lag_timer_cb, p);
        if (!p->lag_timer || event_add(p->lag_timer, &lt) != 0)
            goto fail;
    }
    for (int i = 0; i < p->nconns; i++)
        conn_start(&p->conns[i]);
    return p;
fail:
    pgpool_free(p);
    return NULL;
}

int pgpool_create(struct event_base *base, const struct cfg *cfg, struct pgpool **out)
{
    *out = NULL;
    struct pgpool *p = pool_new(base, cfg, cfg->database_url, "csmcp_db", false);
    if (!p)
        return -1;
    if (cfg->database_read_url && cfg->database_read_url[0]) {
        p->replica = pool_new(base, cfg, cfg->database_read_url, "csmcp_db_replica", true);
        if (!p->replica) {
            pgpool_free(p);
            return -1;
        }
    }
    *out = p;
    return 0;
}

void pgpool_free(struct pgpool *p)
{
    if (!p)
        return;
    p->freeing = true;
    struct pgreq *r;
    while ((r = TAILQ_FIRST(&p->waitq))) {
        TAILQ_REMOVE(&p->waitq, r, link);
        req_finish(r, NULL, "database pool shutting down", "57P01", false);
    }
    for (int i = 0; p->conns && i < p->nconns; i++) {
        struct pgconn *c = &p->conns[i];
        if (c->req) {
            struct pgreq *cr = c->req;
            c->req = NULL;
            req_finish(cr, NULL, "database pool shutting down", "57P01", false);
        }
        conn_close(c);
        if (c->timer)
            event_free(c->timer);
        free(c->prepared);
    }
    if (p->tick)
        event_free(p->tick);
    if (p->kick)
        event_free(p->kick);
    if (p->lag_timer)
        event_free(p->lag_timer);
    pgpool_free(p->replica);
    for (int i = 0; i < p->nstmts; i++)
        free(p->stmts[i]);
    if (p->password) {
        memset(p->password, 0, strlen(p->password));
        free(p->password);
    }
    free(p->conns);
    free(p);
}

int pgpool_query(struct pgpool *p, const char *sql, int nparams, const char *const *params,
                 pgpool_cb cb, void *arg)
{
    if (!p || !sql || !cb || nparams < 0)
        return -1;
    struct pgreq *r = calloc(1, sizeof(*r));
    if (!r)
        return -1;
    r->pool = p;
    r->cb = cb;
    r->arg = arg;
    r->sql = strdup(sql);
    r->nparams = nparams;
    r->params = nparams ? calloc((size_t)nparams, sizeof(char *)) : NULL;
    if (!r->sql || (nparams && !r->params))
        goto fail;
    for (int i = 0; i < nparams; i++) {
        if (params[i] && !(r->params[i] = strdup(params[i])))
            goto fail;
    }
    r->stmt = stmt_index(p, sql);
    clock_gettime(CLOCK_MONOTONIC, &r->queued);
    r->started = r->queued;

    if (p->count[CONN_IDLE] + p->count[CONN_BUSY] + p->count[CONN_CONNECTING] == 0) {
        count_error_p(p, "unavailable");
        fail_later(p, r, "database temporarily unavailable (reconnecting)", "08006", true);
        return 0;
    }
    /* Dispatch on the next loop turn, not here: a send failure must not call back from inside
     * pgpool_query (the caller may not be ready for it yet). */
    TAILQ_INSERT_TAIL(&p->waitq, r, link);
    p->nwaiting++;
    event_active(p->kick, EV_TIMEOUT, 1);
    return 0;
fail:
    req_free(r);
    return -1;
}

bool pgpool_ready(struct pgpool *p)
{
    return p && p->count[CONN_IDLE] + p->count[CONN_BUSY] > 0;
}

void pgpool_status(struct pgpool *p, char *buf, size_t len)
{
    if (!p) {
        snprintf(buf, len, "no database pool");
        return;
    }
    snprintf(buf, len, "%d/%d connected, %d busy, %d waiting, %d reconnecting",
             p->count[CONN_IDLE] + p->count[CONN_BUSY], p->nconns, p->count[CONN_BUSY], p->nwaiting,
             p->count[CONN_BACKOFF] + p->count[CONN_CONNECTING]);
}

/* ---------------------------------------------------------------- read replica */

struct readreq {
    struct pgpool *primary;
    char *sql;
    int nparams;
    char **params;
    pgpool_cb cb;
    void *arg;
};

static void readreq_free(struct readreq *q)
{
    for (int i = 0; q->params && i < q->nparams; i++)
        free(q->params[i]);
    free(q->params);
    free(q->sql);
    free(q);
}

static void count_read(const char *result)
{
    char lbl[64];
    snprintf(lbl, sizeof(lbl), "result=\"%s\"", result);
    metrics_inc("csmcp_db_replica_reads_total", lbl, 1);
}

static void replica_done(const PGresult *res, const char *err, const char *sqlstate, bool retryable,
                         void *arg)
{
    struct readreq *q = arg;
    /* Lost connection, recovery conflict (40001), shutting standby: the primary answers. */
    if (res == NULL && retryable) {
        log_info("pgpool replica: %s (%s): running on the primary", err ? err : "failed",
                 sqlstate ? sqlstate : "-");
        count_read("retried_on_primary");
        if (pgpool_query(q->primary, q->sql, q->nparams, (const char *const *)q->params, q->cb,
                         q->arg) == 0) {
            readreq_free(q);
            return;
        }
    }
    q->cb(res, err, sqlstate, retryable, q->arg);
    readreq_free(q);
}

int pgpool_query_read(struct pgpool *p, const char *sql, int nparams, const char *const *params,
                      pgpool_cb cb, void *arg)
{
    struct pgpool *rp = p ? p->replica : NULL;
    if (rp == NULL)
        return pgpool_query(p, sql, nparams, params, cb, arg);
    const char *why = NULL;
    if (!pgpool_ready(rp))
        why = "unavailable";
    else if (!rp->lag_known || elapsed_s(&rp->lag_at) > LAG_FRESH_S)
        why = "lag_unknown";
    else if (rp->lag_s > (double)p->cfg->database_max_replica_lag)
        why = "lagging";
    if (why) {
        count_read(why);
        return pgpool_query(p, sql, nparams, params, cb, arg);
    }
    struct readreq *q = calloc(1, sizeof(*q));
    if (!q)
        return -1;
    q->primary = p;
    q->cb = cb;
    q->arg = arg;
    q->nparams = nparams;
    q->sql = strdup(sql);
    q->params = nparams ? calloc((size_t)nparams, sizeof(char *)) : NULL;
    if (!q->sql || (nparams && !q->params))
        goto fail;
    for (int i = 0; i < nparams; i++)
        if (params[i] && !(q->params[i] = strdup(params[i])))
            goto fail;
    if (pgpool_query(rp, sql, nparams, params, replica_done, q) != 0)
        goto fail;
    count_read("replica");
    return 0;
fail:
    readreq_free(q);
    count_read("unavailable");
    return pgpool_query(p, sql, nparams, params, cb, arg);
}

bool pgpool_replica_status(struct pgpool *p, double *lag_s)
{
    struct pgpool *rp = p ? p->replica : NULL;
    if (rp == NULL || !rp->lag_known)
        return false;
    *lag_s = rp->lag_s;
    return true;
}
