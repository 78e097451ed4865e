/*
 * monitor.c - csmcp-worker --role monitor: the autonomous monitors' background process.
 *
 * Role: one per csmcpd host, spawned by the supervisor in an extra slot (monitor.enabled) with
 * the same control channel as a request worker (HELLO/READY/HEARTBEAT with a metrics snapshot,
 * DRAIN/STOP, BYE) but no listening socket: it never serves HTTP. It keeps one PostgreSQL
 * connection and, every monitor.tick_ms:
 *   - not leading: SELECT pg_try_advisory_lock(csmcp.monitor_lock_key()) - a session lock, so
 *     exactly one process across all hosts on the database leads; on success
 *     csmcp.monitor_lead(host, pid) records it and fails the runs a dead leader left running;
 *   - leading: csmcp.monitor_heartbeat, csmcp.monitor_claim (commits one 'running' row per due
 *     monitor and interval slot), then csmcp.monitor_execute(run_id) for each: one run = one
 *     transaction (db/functions/monitors/_lib.sql, docs/monitors.md); then the communication
 *     tick and the engagement day tables' prefill (csmcp.comm_tick, csmcp.engage_window_prefill).
 *
 * Invariants: the loop never blocks (libpq's asynchronous API on a non-blocking socket, one
 * statement in flight at a time); losing the connection loses leadership at once (the lock was
 * the session's); the session is configured so that PostgreSQL ends it when this process or its
 * host goes silent for monitor.failover_timeout (idle_session_timeout, TCP keepalives,
 * tcp_user_timeout) and aborts a statement whose client is gone (client_connection_check_interval),
 * so the lock is released and an interrupted run rolls back and is later recorded as failed.
 * A drain (reload, shutdown, supervisor gone) waits for the statement in flight, then closes the
 * connection (releasing the lock) and exits 0 with BYE.
 */
#include "monitor.h"

#include "cfg.h"
#include "chan.h"
#include "log.h"
#include "mconn.h"
#include "metrics.h"
#include "outbox.h"
#include "redisc.h"
#include "secret.h"

#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MON_MAX_RUNS 64

static struct {
    struct event_base *base;
    const struct cfg *cfg;
    int ctl_fd;
    struct mconn *db;  /* the monitors' session: holds the leader lock */
    struct mconn *odb; /* outbox delivery */
    struct outbox *ob;
    struct event *tick, *drain_timer;
    struct event *sig_term, *sig_int, *sig_quit;
    bool leader, ready_sent, draining, in_cycle;
    int exit_code;
    char host[256], pid[16];
    char *password;
    size_t password_len;
    /* Mixpanel export pull (leader only) */
    struct event *mp_timer;
    char *mp_userpwd;
    size_t mp_userpwd_len;
    bool mp_busy;
    char mp_from[16], mp_to[16];
    /* runs claimed in this cycle */
    long long run_id[MON_MAX_RUNS];
    char run_mon[MON_MAX_RUNS][64];
    int nruns, irun;
    double run_t0;
} M;

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void finish(int code)
{
    M.exit_code = code;
    event_base_loopbreak(M.base);
}

static void set_leader(bool on, const char *why)
{
    if (M.leader == on)
        return;
    M.leader = on;
    metrics_gauge_set("csmcp_monitor_leader", NULL, on ? 1 : 0);
    metrics_inc("csmcp_monitor_leader_changes_total", on ? "to=\"leader\"" : "to=\"follower\"", 1);
    if (on)
        log_notice("monitor: leader (host %s pid %s): %s", M.host, M.pid, why);
    else
        log_warn("monitor: no longer leader: %s", why);
}

/* Exit once draining and nothing is in flight on either connection or in HTTP. */
static void maybe_exit(void)
{
    if (M.draining && !M.in_cycle && !M.mp_busy && !mconn_busy(M.db) &&
        (!M.ob || outbox_idle(M.ob)))
        finish(0);
}

static void db_up(void *arg)
{
    (void)arg;
    if (!M.ready_sent) {
        M.ready_sent = true;
        if (M.ctl_fd >= 0)
            chan_send_ready();
        log_info("ready");
    }
}

static void db_down(const char *why, void *arg)
{
    (void)arg;
    /* The lock was the session's: it is gone with it. */
    set_leader(false, why);
}

/* A new alert committed (NOTIFY csmcp_alerts from csmcp.monitor_notify, by a scheduled or a
 * manual run): the leader tells every worker over Redis (csmcp:alerts), and the workers send
 * notifications/resources/updated to the sessions subscribed to csmcp://alerts[/<client_id>]
 * (worker/alerts.c). Only the leader publishes, so each alert is announced once. */
static void on_alert_notify(const char *channel, const char *payload, void *arg)
{
    (void)arg;
    if (!M.leader || strcmp(channel, "csmcp_alerts") != 0 || !redisc_ready())
        return;
    const char *argv[3] = {"PUBLISH", "csmcp:alerts", payload};
    if (redisc_cmd(NULL, NULL, 3, argv, NULL) == 0)
        metrics_inc("csmcp_monitor_alert_notifications_total", NULL, 1);
}

/* ---------------------------------------------------------------- Mixpanel pull */

static void mp_done(const PGresult *res, const char *err, void *arg)
{
    (void)arg;
    M.mp_busy = false;
    if (res && PQntuples(res) == 1) {
        metrics_inc("csmcp_mixpanel_pulls_total", "result=\"ok\"", 1);
        log_info("mixpanel: %.300s", PQgetvalue(res, 0, 0));
    } else {
        metrics_inc("csmcp_mixpanel_pulls_total", "result=\"failed\"", 1);
        log_error("mixpanel: recording the pull: %s", err ? err : "no result");
    }
    maybe_exit();
}

static void mp_got(long status, const char *body, size_t len, const char *err, void *arg)
{
    (void)arg;
    (void)len;
    if (err || status != 200) {
        char e[300];
        if (err)
            snprintf(e, sizeof e, "%s", err);
        else
            snprintf(e, sizeof e, "HTTP %ld: %.200s", status, body);
        const char *p[3] = {M.mp_from, M.mp_to, e};
        log_warn("mixpanel: pull %s..%s failed: %s", M.mp_from, M.mp_to, e);
        mconn_query(M.db, "SELECT csmcp.mixpanel_failed($1::date, $2::date, $3)::text", 3, p,
                    mp_done, NULL);
        return;
    }
    const char *p[4] = {M.mp_from, M.mp_to, body, M.cfg->integrations_mixpanel_client_property};
    mconn_query(M.db, "SELECT csmcp.mixpanel_import($1::date, $2::date, $3, $4)::text", 4, p,
                mp_done, NULL);
}

static void mp_window(const PGresult *res, const char *err, void *arg)
{
    char url[1400];
    (void)arg;
    if (!res || PQntuples(res) != 1) {
        log_error("mixpanel: window: %s", err ? err : "no result");
        M.mp_busy = false;
        return;
    }
    snprintf(M.mp_from, sizeof M.mp_from, "%s", PQgetvalue(res, 0, 0));
    snprintf(M.mp_to, sizeof M.mp_to, "%s", PQgetvalue(res, 0, 1));
    snprintf(url, sizeof url, "%s%sfrom_date=%s&to_date=%s",
             M.cfg->integrations_mixpanel_export_url,
             strchr(M.cfg->integrations_mixpanel_export_url, '?') ? "&" : "?", M.mp_from, M.mp_to);
    if (outbox_http_get(M.ob, url, M.mp_userpwd, (size_t)M.cfg->integrations_mixpanel_max_bytes,
                        mp_got, NULL) < 0) {
        log_error("mixpanel: cannot start the pull (the URL must be https, http only to a "
                  "loopback address)");
        M.mp_busy = false;
    }
}

static void mp_tick(evutil_socket_t fd, short what, void *arg)
{
    char days[16];
    const char *p[1] = {days};
    (void)fd, (void)what, (void)arg;
    if (!M.leader || M.draining || M.mp_busy || !mconn_up(M.db))
        return;
    M.mp_busy = true;
    snprintf(days, sizeof days, "%d", M.cfg->integrations_mixpanel_backfill_days);
    mconn_query(M.db, "SELECT from_date, to_date FROM csmcp.mixpanel_window($1::integer)", 1, p,
                mp_window, NULL);
}

/* ---------------------------------------------------------------- the cycle */

static void cycle_end(void)
{
    M.in_cycle = false;
    maybe_exit();
}

static void run_next(void);

static void on_execute(const PGresult *res, const char *err, void *arg)
{
    char labels[160];
    const char *mon = M.run_mon[M.irun];
    double dt = mono_s() - M.run_t0;
    (void)arg;
    if (!res) {
        snprintf(labels, sizeof labels, "monitor=\"%s\",status=\"failed\"", mon);
        metrics_inc("csmcp_monitor_runs_total", labels, 1);
        log_error("monitor: run %lld of %s: %s", M.run_id[M.irun], mon, err);
        if (!mconn_up(M.db)) {
            cycle_end();
            return;
        }
    } else {
        const char *v = PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "";
        bool failed = strstr(v, "\"status\": \"failed\"") != NULL;
        snprintf(labels, sizeof labels, "monitor=\"%s\",status=\"%s\"", mon,
                 failed ? "failed" : "ok");
        metrics_inc("csmcp_monitor_runs_total", labels, 1);
        snprintf(labels, sizeof labels, "monitor=\"%s\"", mon);
        metrics_observe("csmcp_monitor_run_seconds", labels, dt);
        if (failed)
            log_error("monitor: run %lld of %s failed: %.400s", M.run_id[M.irun], mon, v);
        else
            log_info("monitor: run %lld of %s: %.300s", M.run_id[M.irun], mon, v);
    }
    M.irun++;
    run_next();
}

/* The engagement prefill (issue 21): last in the cycle, the leader fills the day table of one
 * analyze_engagement_patterns period that callers used lately and today has none
 * (csmcp.engage_window_prefill, db/functions/portfolio/engage_window.sql) - after UTC midnight,
 * before the day's first caller would have to. Null (nothing to do) is the common answer. */
static void on_prefill(const PGresult *res, const char *err, void *arg)
{
    (void)arg;
    if (!res) {
        metrics_inc("csmcp_engage_prefill_total", "result=\"failed\"", 1);
        log_error("monitor: engagement prefill: %s", err);
    } else if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)) {
        metrics_inc("csmcp_engage_prefill_total", "result=\"filled\"", 1);
        log_info("monitor: engagement day table filled: %.300s", PQgetvalue(res, 0, 0));
    }
    cycle_end();
}

/* The communication tick (issue 16): after the monitors' runs, the leader runs
 * csmcp.comm_tick once per cycle - one short, bounded transaction (a chunk of a bulk send, due
 * scheduled messages into the outbox, newsletter editions, communication workflows; see
 * db/functions/communication/tick.sql). */
static void on_comm_tick(const PGresult *res, const char *err, void *arg)
{
    (void)arg;
    if (!res) {
        metrics_inc("csmcp_comm_ticks_total", "result=\"failed\"", 1);
        log_error("monitor: communication tick: %s", err);
    } else {
        const char *v = PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "";
        metrics_inc("csmcp_comm_ticks_total", "result=\"ok\"", 1);
        if (strcmp(v, "{}") != 0 && v[0] != '\0')
            log_info("monitor: communication tick: %.300s", v);
    }
    if (M.leader && !M.draining && mconn_up(M.db)) {
        mconn_query(M.db, "SELECT csmcp.engage_window_prefill()::text", 0, NULL, on_prefill, NULL);
        return;
    }
    cycle_end();
}

static void run_next(void)
{
    char id[24];
    const char *p[1] = {id};
    if (M.irun >= M.nruns || M.draining || !M.leader) {
        if (M.leader && !M.draining && mconn_up(M.db)) {
            mconn_query(M.db, "SELECT csmcp.comm_tick('monitor:communication')::text", 0, NULL,
                        on_comm_tick, NULL);
            return;
        }
        cycle_end();
        return;
    }
    snprintf(id, sizeof id, "%lld", M.run_id[M.irun]);
    M.run_t0 = mono_s();
    mconn_query(M.db, "SELECT csmcp.monitor_execute($1::bigint)::text", 1, p, on_execute, NULL);
}

static void on_claim(const PGresult *res, const char *err, void *arg)
{
    (void)arg;
    if (!res) {
        log_error("monitor: claiming due runs: %s", err);
        cycle_end();
        return;
    }
    M.nruns = 0;
    M.irun = 0;
    for (int i = 0; i < PQntuples(res) && M.nruns < MON_MAX_RUNS; i++) {
        M.run_id[M.nruns] = strtoll(PQgetvalue(res, i, 0), NULL, 10);
        snprintf(M.run_mon[M.nruns], sizeof M.run_mon[0], "%s", PQgetvalue(res, i, 1));
        M.nruns++;
    }
    run_next();
}

static void on_heartbeat(const PGresult *res, const char *err, void *arg)
{
    const char *p[2] = {M.host, M.pid};
    (void)arg;
    if (!res) {
        set_leader(false, err);
        cycle_end();
        return;
    }
    mconn_query(M.db, "SELECT run_id, monitor FROM csmcp.monitor_claim($1, $2::integer)", 2, p,
                on_claim, NULL);
}

static void on_lead(const PGresult *res, const char *err, void *arg)
{
    const char *p[2] = {M.host, M.pid};
    (void)arg;
    if (!res) {
        log_error("monitor: recording leadership: %s", err);
        cycle_end();
        return;
    }
    set_leader(true, PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "");
    mconn_query(M.db, "SELECT csmcp.monitor_heartbeat($1, $2::integer)", 2, p, on_heartbeat, NULL);
}

static void on_trylock(const PGresult *res, const char *err, void *arg)
{
    const char *p[2] = {M.host, M.pid};
    (void)arg;
    if (!res) {
        log_error("monitor: leader lock: %s", err);
        cycle_end();
        return;
    }
    if (PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0) {
        mconn_query(M.db, "SELECT csmcp.monitor_lead($1, $2::integer)::text", 2, p, on_lead, NULL);
        return;
    }
    cycle_end();
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    const char *p[2] = {M.host, M.pid};
    (void)fd, (void)what, (void)arg;
    if (M.ob && !M.draining)
        outbox_tick(M.ob);
    if (M.in_cycle || M.draining || !mconn_up(M.db) || mconn_busy(M.db))
        return;
    M.in_cycle = true;
    if (!M.leader)
        mconn_query(M.db, "SELECT pg_try_advisory_lock(csmcp.monitor_lock_key())", 0, NULL,
                    on_trylock, NULL);
    else
        mconn_query(M.db, "SELECT csmcp.monitor_heartbeat($1, $2::integer)", 2, p, on_heartbeat,
                    NULL);
}

/* ---------------------------------------------------------------- lifecycle */

static void drain_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
    log_warn("monitor: drain timeout with work in flight: exiting");
    finish(0);
}

static void start_drain(void *arg)
{
    (void)arg;
    if (M.draining)
        return;
    M.draining = true;
    log_info("monitor: draining (statement in flight: %s, deliveries in flight: %d)",
             mconn_busy(M.db) ? "yes" : "no", M.ob ? outbox_inflight(M.ob) : 0);
    if (M.ob)
        outbox_drain(M.ob, maybe_exit);
    maybe_exit();
    M.drain_timer = evtimer_new(M.base, drain_timeout_cb, NULL);
    struct timeval tv = {M.cfg->server_drain_timeout, 0};
    if (M.drain_timer)
        evtimer_add(M.drain_timer, &tv);
}

static void stop_now(void *arg)
{
    (void)arg;
    log_info("stop requested: exiting");
    finish(0);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)what, (void)arg;
    if (sig == SIGTERM || (sig == SIGINT && !M.draining)) {
        start_drain(NULL);
        return;
    }
    finish(0);
}

int monitor_main(const struct cfg *cfg, int slot, int generation, int ctl_fd)
{
    char err[256];
    memset(&M, 0, sizeof M);
    M.cfg = cfg;
    M.ctl_fd = ctl_fd;
    if (cfg->monitor_host_id && cfg->monitor_host_id[0])
        snprintf(M.host, sizeof M.host, "%s", cfg->monitor_host_id);
    else if (gethostname(M.host, sizeof M.host - 1) != 0)
        snprintf(M.host, sizeof M.host, "unknown");
    snprintf(M.pid, sizeof M.pid, "%d", (int)getpid());
    {
        char src[64];
        if (secret_load(NULL, cfg->database_password_file, "database.password", &M.password,
                        &M.password_len, src, sizeof src, err, sizeof err) < 0)
            fatal("monitor: database password: %s", err);
    }
    char ctx[64];
    snprintf(ctx, sizeof ctx, "monitor %d gen %d", slot, generation);
    log_set_context(ctx);
    signal(SIGPIPE, SIG_IGN);

    M.base = event_base_new();
    if (!M.base)
        fatal("event_base_new failed");
    M.sig_term = evsignal_new(M.base, SIGTERM, signal_cb, NULL);
    M.sig_int = evsignal_new(M.base, SIGINT, signal_cb, NULL);
    M.sig_quit = evsignal_new(M.base, SIGQUIT, signal_cb, NULL);
    if (!M.sig_term || !M.sig_int || !M.sig_quit || evsignal_add(M.sig_term, NULL) < 0 ||
        evsignal_add(M.sig_int, NULL) < 0 || evsignal_add(M.sig_quit, NULL) < 0)
        fatal("evsignal set-up failed");
    if (ctl_fd >= 0) {
        struct chan_hooks hooks = {.on_drain = start_drain, .on_stop = stop_now};
        if (chan_start(M.base, ctl_fd, slot, generation, cfg_hash(cfg), &hooks) < 0)
            fatal("control channel on fd %d failed", ctl_fd);
    }
    metrics_gauge_set("csmcp_monitor_leader", NULL, 0);
    {
        char setup[512];
        int fo = cfg->monitor_failover_timeout;
        /* PostgreSQL ends this session when the process or its host goes silent for
         * failover_timeout (the leader lock with it) and aborts a statement whose client is
         * gone (an interrupted run rolls back). */
        snprintf(setup, sizeof setup,
                 "SET client_connection_check_interval = 1000; SET idle_session_timeout = %d; "
                 "SET tcp_keepalives_idle = %d; SET tcp_keepalives_interval = %d; "
                 "SET tcp_keepalives_count = 3; SET tcp_user_timeout = %d; "
                 "SET statement_timeout = 0",
                 fo * 1000, fo / 3 > 1 ? fo / 3 : 1, fo / 6 > 1 ? fo / 6 : 1, fo * 1000);
        struct mconn_hooks h = {.on_up = db_up, .on_down = db_down};
        M.db = mconn_new(M.base, cfg, "runs", M.password, setup, &h);
        struct mconn_hooks oh = {.on_notify = on_alert_notify};
        M.odb = mconn_new(M.base, cfg, "outbox", M.password,
                          "SET client_connection_check_interval = 1000; LISTEN csmcp_alerts", &oh);
        if (redisc_init(M.base, cfg) < 0)
            log_warn("monitor: redis: cannot initialise; alert notifications to subscribed "
                     "sessions are off");
        M.ob = outbox_new(M.base, cfg, M.odb, M.host, M.pid);
    }
    if (cfg->integrations_mixpanel_interval_s > 0) {
        char e[300], src[4300];
        int rc = secret_load(NULL, cfg->integrations_mixpanel_secret_file, "integrations.mixpanel",
                             &M.mp_userpwd, &M.mp_userpwd_len, src, sizeof src, e, sizeof e);
        if (rc < 0)
            log_error("mixpanel: credential: %s; no pull", e);
        else if (rc == 1)
            log_warn("mixpanel: mixpanel_interval_s is set but there is no credential; no pull");
        if (rc == 0) {
            while (M.mp_userpwd_len > 0 && (M.mp_userpwd[M.mp_userpwd_len - 1] == '\n' ||
                                            M.mp_userpwd[M.mp_userpwd_len - 1] == '\r'))
                M.mp_userpwd[--M.mp_userpwd_len] = 0;
            if (!strchr(M.mp_userpwd, ':')) { /* an API secret is the user, empty password */
                char *n = realloc(M.mp_userpwd, M.mp_userpwd_len + 2);
                if (!n)
                    fatal("monitor: out of memory");
                M.mp_userpwd = n;
                M.mp_userpwd[M.mp_userpwd_len++] = ':';
                M.mp_userpwd[M.mp_userpwd_len] = 0;
            }
            M.mp_timer = event_new(M.base, -1, EV_PERSIST, mp_tick, NULL);
            struct timeval mtv = {cfg->integrations_mixpanel_interval_s, 0};
            if (!M.mp_timer || event_add(M.mp_timer, &mtv) < 0)
                fatal("timer set-up failed");
            log_info("mixpanel: pulling %s every %d s while leading (credential from %s)",
                     cfg->integrations_mixpanel_export_url, cfg->integrations_mixpanel_interval_s,
                     src);
        }
    }
    M.tick = event_new(M.base, -1, EV_PERSIST, tick_cb, NULL);
    struct timeval tv = {cfg->monitor_tick_ms / 1000, (cfg->monitor_tick_ms % 1000) * 1000};
    if (!M.tick || event_add(M.tick, &tv) < 0)
        fatal("timer set-up failed");
    log_info("started: pid %d, monitor role (host %s, tick %d ms, failover_timeout %d s)",
             (int)getpid(), M.host, cfg->monitor_tick_ms, cfg->monitor_failover_timeout);
    mconn_start(M.db);
    mconn_start(M.odb);

    event_base_dispatch(M.base);

    if (ctl_fd >= 0) {
        chan_send_bye();
        chan_close();
    }
    outbox_free(M.ob);
    mconn_free(M.db); /* releases the leader lock with the session */
    mconn_free(M.odb);
    redisc_shutdown();
    secret_free(M.password, M.password_len);
    secret_free(M.mp_userpwd, M.mp_userpwd_len);
    if (M.mp_timer)
        event_free(M.mp_timer);
    if (M.drain_timer)
        event_free(M.drain_timer);
    event_free(M.tick);
    event_free(M.sig_term);
    event_free(M.sig_int);
    event_free(M.sig_quit);
    event_base_free(M.base);
    log_info("exit %d", M.exit_code);
    return M.exit_code;
}
