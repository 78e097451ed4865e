/*
 * main.c - csmcp-worker: one prefork worker process.
 *
 * Role: parse the spawn argv (worker/chan.h), load the configuration (it must hash like the
 * supervisor's), build the event loop with the HTTP server on the inherited listening sockets,
 * the PostgreSQL pool, Redis, auth and the MCP layer, arm the listeners and report READY once
 * the database and Redis are reachable (never accept a request it could only answer 503), and
 * drain on request.
 *
 * Invariants: signals only reach the loop through evsignal (no work in handlers); drain runs
 * once (SIGTERM, DRAIN, or EOF on the control channel) and ends with BYE and exit 0 when the
 * last connection closes or server.drain_timeout passes; STOP, SIGINT and SIGQUIT exit at once.
 * A DRAIN for a reload hands idle connections to the supervisor (http_drain_handoff over
 * chan_send_fds); connections the supervisor passes down are adopted (http_adopt_fd).
 * Nothing a client sends can make this process exit.
 */
#include "auth.h"
#include "cfg.h"
#include "chan.h"
#include "csmcp_build.h"
#include "hook_sendgrid.h"
#include "http.h"
#include "log.h"
#include "mcp.h"
#include "metrics.h"
#include "monitor.h"
#include "pgpool.h"
#include "ratelimit.h"
#include "redisc.h"
#include "registry.h"

#include <errno.h>
#include <event2/event.h>
#include <limits.h>
#include <signal.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_LISTEN_FDS 16

static struct {
    const char *config;
    int slot;
    int generation;
    int ctl_fd;
    int listen_fds[MAX_LISTEN_FDS];
    int nlisten_fds;
    const char *listen_addr;
    bool tools_markdown;
    const char *role;
} A = {.ctl_fd = -1};

static struct {
    struct event_base *base;
    struct cfg cfg;
    struct pgpool *pg;
    struct event *sig_term, *sig_int, *sig_quit, *ready_timer, *drain_timer, *dep_timer;
    bool ready_sent;
    bool draining;
    int exit_code;
} W;

static void usage(void)
{
    fprintf(stderr, "usage: csmcp-worker -c CONFIG [--slot N --generation G --ctl-fd FD "
                    "--listen-fds FD[,FD...]] [--role worker|monitor] [--listen HOST:PORT] "
                    "[--tools-markdown]\n");
    exit(2);
}

static int parse_int(const char *s, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < INT_MIN || v > INT_MAX)
        return -1;
    *out = (int)v;
    return 0;
}

static void parse_args(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--tools-markdown") == 0) {
            A.tools_markdown = true;
            continue;
        }
        if (v == NULL)
            usage();
        if (strcmp(a, "-c") == 0) {
            A.config = v;
        } else if (strcmp(a, "--slot") == 0) {
            if (parse_int(v, &A.slot) < 0)
                usage();
        } else if (strcmp(a, "--generation") == 0) {
            if (parse_int(v, &A.generation) < 0)
                usage();
        } else if (strcmp(a, "--ctl-fd") == 0) {
            if (parse_int(v, &A.ctl_fd) < 0)
                usage();
        } else if (strcmp(a, "--role") == 0) {
            if (strcmp(v, "monitor") != 0 && strcmp(v, "worker") != 0)
                usage();
            A.role = v;
        } else if (strcmp(a, "--listen") == 0) {
            A.listen_addr = v;
        } else if (strcmp(a, "--listen-fds") == 0) {
            char buf[256];
            snprintf(buf, sizeof buf, "%s", v);
            for (char *save = NULL, *t = strtok_r(buf, ",", &save); t;
                 t = strtok_r(NULL, ",", &save)) {
                if (A.nlisten_fds >= MAX_LISTEN_FDS ||
                    parse_int(t, &A.listen_fds[A.nlisten_fds]) < 0)
                    usage();
                A.nlisten_fds++;
            }
        } else {
            usage();
        }
        i++;
    }
}

/* ---- lifecycle ---- */

static void finish(int code)
{
    W.exit_code = code;
    event_base_loopbreak(W.base);
}

static void drained_cb(void *arg)
{
    log_info("drained: no connections left");
    finish(0);
}

static void drain_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    log_warn("drain timeout (%d s) with %zu connections open: exiting", W.cfg.server_drain_timeout,
             http_connections());
    finish(0);
}

static int handoff_send(const int *fds, int n, void *arg)
{
    (void)arg;
    return chan_send_fds(fds, n);
}

static void adopt_cb(const int *fds, int n, int lost, void *arg)
{
    int refused = 0;
    (void)arg;
    for (int i = 0; i < n; i++)
        if (http_adopt_fd(fds[i]) < 0)
            refused++;
    if (lost > 0)
        metrics_inc("csmcp_http_connections_adopt_refused_total", NULL, (uint64_t)lost);
    if (refused || lost)
        log_warn("adopted %d of %d connections handed over (%d over the connection cap or "
                 "unusable, %d cut by the fd limit)",
                 n - refused, n + lost, refused, lost);
    else
        log_debug("adopted %d connections handed over by a draining worker", n);
}

static void start_drain(void *arg)
{
    if (W.draining)
        return;
    W.draining = true;
    bool handoff = A.ctl_fd >= 0 && chan_drain_handoff();
    log_info("draining%s: %zu connections open", handoff ? " for a reload" : "",
             http_connections());
    W.drain_timer = evtimer_new(W.base, drain_timeout_cb, NULL);
    struct timeval tv = {W.cfg.server_drain_timeout, 0};
    if (W.drain_timer)
        evtimer_add(W.drain_timer, &tv);
    mcp_drain();
    if (handoff)
        http_drain_handoff(drained_cb, NULL, handoff_send, NULL);
    else
        http_drain(drained_cb, NULL);
}

static void stop_now(void *arg)
{
    log_info("stop requested: exiting");
    finish(0);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
    if (sig == SIGTERM) {
        start_drain(NULL);
        return;
    }
    /* SIGINT twice or SIGQUIT: exit fast. A first SIGINT drains. */
    if (sig == SIGINT && !W.draining) {
        start_drain(NULL);
        return;
    }
    finish(0);
}

static void ready_check_cb(evutil_socket_t fd, short what, void *arg)
{
    if (W.ready_sent || W.draining)
        return;
    if (!pgpool_ready(W.pg) || !redisc_ready())
        return;
    /* Accept only now: a worker of a new generation that took connections before it reached
     * PostgreSQL and Redis would answer them 503 (with Sentinel discovery that is tens of ms;
     * behind a load balancer during a reload, hundreds of requests). Until then the old
     * generation and the other workers accept. */
    for (int i = 0; i < A.nlisten_fds; i++)
        if (http_listen_fd(A.listen_fds[i]) < 0)
            fatal("listen fd %d unusable", A.listen_fds[i]);
    W.ready_sent = true;
    event_del(W.ready_timer);
    if (A.ctl_fd >= 0)
        chan_send_ready();
    log_info("ready");
}

/* ---- routes owned here ---- */

static void health_handler(struct http_req *r, void *arg)
{
    static const char ok[] = "{\"status\":\"ok\"}";
    if (http_req_method(r) != HTTP_M_GET && http_req_method(r) != HTTP_M_HEAD) {
        http_respond(r, 405, "application/json", "Allow: GET, HEAD\r\n",
                     "{\"error\":\"method not allowed\"}", 30);
        return;
    }
    http_respond(r, 200, "application/json", NULL, ok, sizeof ok - 1);
}

/* Which dependencies this worker reaches, as gauges the supervisor sums over workers (admin
 * listener /metrics): the public /ready only says yes or no (issue 23, finding 6). */
static void dependency_gauges(bool db, bool rd, bool rl)
{
    metrics_gauge_set("csmcp_worker_dependency_ready", "dependency=\"database\"", db ? 1 : 0);
    metrics_gauge_set("csmcp_worker_dependency_ready", "dependency=\"redis\"", rd ? 1 : 0);
    metrics_gauge_set("csmcp_worker_dependency_ready", "dependency=\"ratelimit\"", rl ? 1 : 0);
}

static void dep_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    dependency_gauges(pgpool_ready(W.pg), redisc_ready(), ratelimit_ready());
}

/* Public listener: a bare 200/503. Why a worker is not ready goes to its log (at most every
 * 10 s) and to csmcp_worker_dependency_ready on the admin listener - never to the client. */
static void ready_handler(struct http_req *r, void *arg)
{
    static time_t last_log;
    bool db = pgpool_ready(W.pg), rd = redisc_ready(), dr = http_draining();
    bool rl = ratelimit_ready();
    bool ok = db && rd && rl && !dr;
    dependency_gauges(db, rd, rl);
    if (!ok && time(NULL) - last_log >= 10) {
        char pgs[160], rds[160];
        pgpool_status(W.pg, pgs, sizeof pgs);
        redisc_status(rds, sizeof rds);
        log_warn("not ready: database %s (%s), redis %s (%s), ratelimit %s, draining %s",
                 db ? "ready" : "not ready", pgs, rd ? "ready" : "not ready", rds,
                 ratelimit_status(), dr ? "yes" : "no");
        last_log = time(NULL);
    }
    static const char yes[] = "{\"status\":\"ready\"}", no[] = "{\"status\":\"not ready\"}";
    http_respond(r, ok ? 200 : 503, "application/json", NULL, ok ? yes : no,
                 ok ? sizeof yes - 1 : sizeof no - 1);
}

int main(int argc, char **argv)
{
    char err[512];
    parse_args(argc, argv);
    log_init("csmcp-worker", LOG_LVL_INFO, false);

    if (cfg_load(A.config, &W.cfg, err, sizeof err) < 0)
        fatal("configuration: %s", err);
    if (A.tools_markdown) {
        if (registry_init(true, err, sizeof err) < 0)
            fatal("tool registry: %s", err);
        int rc = registry_print_markdown(stdout, CSMCP_SOURCE_ROOT);
        registry_free();
        cfg_free(&W.cfg);
        return rc < 0 ? 1 : 0;
    }
    int lvl = log_level_parse(W.cfg.log_level);
    log_set_level(lvl < 0 ? LOG_LVL_INFO : (enum log_level)lvl);
    log_set_json(strcmp(W.cfg.log_format, "json") == 0);
    char ctx[64];
    snprintf(ctx, sizeof ctx, "worker %d gen %d", A.slot, A.generation);
    log_set_context(ctx);

    if (A.role && strcmp(A.role, "monitor") == 0) {
        /* The monitor role: no listener, no HTTP (worker/monitor.c). */
        int rc = monitor_main(&W.cfg, A.slot, A.generation, A.ctl_fd);
        cfg_free(&W.cfg);
        return rc;
    }
    if (A.nlisten_fds == 0 && A.listen_addr == NULL && A.ctl_fd < 0)
        usage();
    signal(SIGPIPE, SIG_IGN);

    W.base = event_base_new();
    if (W.base == NULL)
        fatal("event_base_new failed");
    if (http_init(W.base, &W.cfg) < 0)
        fatal("http_init failed");
    http_route("/health", "/health", health_handler, NULL);
    http_route("/ready", "/ready", ready_handler, NULL);

    if (registry_init(W.cfg.mcp_conformance_fixtures, err, sizeof err) < 0)
        fatal("tool registry: %s", err);
    if (pgpool_create(W.base, &W.cfg, &W.pg) < 0)
        fatal("database pool: cannot create");
    if (redisc_init(W.base, &W.cfg) < 0)
        fatal("redis: cannot initialise");
    if (auth_init(W.base, &W.cfg, W.pg) < 0)
        fatal("auth: cannot initialise");
    http_set_default_headers(auth_security_headers());
    if (mcp_init(W.base, &W.cfg, W.pg) < 0)
        fatal("mcp: cannot initialise");
    if (hook_sendgrid_init(&W.cfg, W.pg) < 0)
        fatal("hooks/sendgrid: cannot initialise");

    W.sig_term = evsignal_new(W.base, SIGTERM, signal_cb, NULL);
    W.sig_int = evsignal_new(W.base, SIGINT, signal_cb, NULL);
    W.sig_quit = evsignal_new(W.base, SIGQUIT, signal_cb, NULL);
    if (!W.sig_term || !W.sig_int || !W.sig_quit || evsignal_add(W.sig_term, NULL) < 0 ||
        evsignal_add(W.sig_int, NULL) < 0 || evsignal_add(W.sig_quit, NULL) < 0)
        fatal("evsignal set-up failed");

    if (A.ctl_fd >= 0) {
        struct chan_hooks hooks = {.on_drain = start_drain,
                                   .on_stop = stop_now,
                                   .arg = NULL,
                                   .on_adopt = W.cfg.tls_enabled ? NULL : adopt_cb};
        if (chan_start(W.base, A.ctl_fd, A.slot, A.generation, cfg_hash(&W.cfg), &hooks) < 0)
            fatal("control channel on fd %d failed", A.ctl_fd);
    }
    /* Inherited listening sockets are armed in ready_check_cb, once the dependencies are. */
    if (A.listen_addr && http_listen_addr(A.listen_addr) < 0)
        fatal("listen(%s) failed: %s", A.listen_addr, strerror(errno));

    W.ready_timer = event_new(W.base, -1, EV_PERSIST, ready_check_cb, NULL);
    struct timeval tv = {0, 20 * 1000};
    if (W.ready_timer == NULL || event_add(W.ready_timer, &tv) < 0)
        fatal("timer set-up failed");
    W.dep_timer = event_new(W.base, -1, EV_PERSIST, dep_timer_cb, NULL);
    struct timeval one = {1, 0};
    if (W.dep_timer == NULL || event_add(W.dep_timer, &one) < 0)
        fatal("timer set-up failed");
    log_info("started: pid %d, %d inherited listen fds", (int)getpid(), A.nlisten_fds);

    event_base_dispatch(W.base);

    /* Exit path: BYE first so the supervisor records final metrics, then release. */
    if (A.ctl_fd >= 0) {
        chan_send_bye();
        chan_close();
    }
    mcp_shutdown(); /* ends GET streams through the HTTP layer while it still runs */
    http_shutdown();
    auth_shutdown();
    redisc_shutdown();
    pgpool_free(W.pg);
    hook_sendgrid_free();
    registry_free();
    if (W.drain_timer)
        event_free(W.drain_timer);
    event_free(W.ready_timer);
    event_free(W.dep_timer);
    event_free(W.sig_term);
    event_free(W.sig_int);
    event_free(W.sig_quit);
    event_base_free(W.base);
    log_info("exit %d", W.exit_code);
    cfg_free(&W.cfg);
    return W.exit_code;
}
