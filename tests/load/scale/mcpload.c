/*
 * mcpload.c - a bounded MCP load generator: many keep-alive connections, one MCP session each.
 *
 * Role: open N TCP connections to a csmcpd listener (spread over several 127.0.0.x source
 * addresses so the ephemeral port range never runs out), run initialize +
 * notifications/initialized on each (so every connection owns its own Mcp-Session-Id), hold
 * them idle for a while (the runner measures memory per idle connection then), then drive a
 * tools/call mix over all of them for a fixed duration and print throughput, latency
 * percentiles and errors by kind. wrk cannot tie a session to a connection; this can.
 *
 * Load model: all N connections stay open; at most --inflight requests are outstanding at once
 * (optionally capped at --rate requests/s); each request goes to the connection that has been
 * idle longest (a FIFO of idle connections), so every session is used in turn. Latency is the
 * time from writing the request to reading the whole response.
 *
 * Processes: one process cannot hold more than RLIMIT_NOFILE sockets (20000 here), so --procs P
 * forks P children, each with its share of the connections and its own event loop. They meet at
 * two barriers (all sessions set up; load done) through pipes; each child writes its counters
 * and latency samples to a temp file that the parent merges.
 *
 * Invariants:
 * - One request per connection at a time; a connection is in exactly one state (enum cstate),
 *   changed only through set_state(); an idle connection is in the idle FIFO exactly once.
 * - Every wait is bounded: connect and request timeouts (--timeout), set-up deadline
 *   (--setup-timeout), load duration (--duration <= 600), final drain <= --timeout.
 * - A connection the server closes is reopened with the same session id (sessions live in
 *   Redis and survive worker restarts); a request lost with it is counted, by kind. With
 *   retry-stale on (the default), a request written on an already open (idle) connection that
 *   the server closed before sending any byte of the answer (the keep-alive race every HTTP
 *   client handles this way) is sent once more on a fresh connection and counted as "retried",
 *   not as failed; --no-retry-stale counts it as failed. Before reusing an idle connection it
 *   checks, as HTTP clients do, that no EOF or reset is already waiting on it (conn_alive): a
 *   killed worker's idle connections are reopened, not written to. An EOF on an idle
 *   connection is never a failure; a request written to a connection that then dies is
 *   "lost_in_flight".
 *
 * Only loopback addresses are accepted (127.0.0.0/8).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define MAX_SOURCES 32
#define MAX_PROCS   16
#define MAX_SAMPLES (8u << 20) /* per process: 32 MiB of samples at most */
#define MAX_LOST_AT 512        /* times of requests lost in flight kept for the report */
#define SID_MAX     256

/* The tool mix: index = tool kind (stored in the top 3 bits of a latency sample). */
enum tool {
    T_OVERVIEW,
    T_LIST,
    T_HEALTH,
    T_USAGE,
    T_UPDATE,
    T_INGEST,
    T_SIMPLE, /* test_simple_text: the protocol path alone (mcp.conformance_fixtures) */
    T_NTOOLS,
};
static const char *const tool_names[T_NTOOLS] = {
    "get_client_overview",    "list_clients",       "calculate_health_score",
    "track_usage_engagement", "update_client_info", "ingest_usage_events",
    "test_simple_text",
};

/* Errors by kind. */
enum ekind {
    E_CONNECT, /* connect() failed or timed out */
    E_SETUP,   /* initialize / notifications/initialized failed */
    E_LOST,    /* connection closed or reset with a request in flight (after any retry) */
    E_TIMEOUT, /* no complete answer within --timeout */
    E_HTTP,    /* an HTTP status other than 200 */
    E_RPC,     /* a JSON-RPC error object */
    E_TOOL,    /* a result with isError: true */
    E_PARSE,   /* a malformed HTTP response */
    E_NKINDS,
};
static const char *const ekind_names[E_NKINDS] = {
    "connect",     "setup",         "lost_in_flight", "timeout",
    "http_status", "jsonrpc_error", "tool_error",     "bad_response",
};

struct stats {
    uint64_t ok, done_in_window, errors[E_NKINDS], http_status[600], tool_ok[T_NTOOLS],
        tool_err[T_NTOOLS], retried, server_closed, idle_closed, dead_on_reuse, established,
        setup_failed, rpc_code_minus32000s, nsamples, dropped_samples;
    double cpu_load_s; /* this process's CPU during the load phase */
    /* CLOCK_MONOTONIC times at which requests were lost in flight (to match them with worker
     * kills: scale.py --chaos kill) */
    uint64_t lost_at_ns[MAX_LOST_AT];
    uint32_t nlost_at;
    double setup_s;
    char sample_err[E_NKINDS][160];
};

enum cstate {
    C_NEW,     /* not connected yet (waiting for a set-up slot) */
    C_CONNECT, /* TCP connect in progress */
    C_INIT,    /* initialize sent */
    C_NOTIFY,  /* notifications/initialized sent */
    C_IDLE,    /* session ready, no request */
    C_BUSY,    /* a tools/call in flight */
    C_WAIT,    /* closed; waiting to reconnect */
    C_DEAD,    /* gave up */
};

struct conn {
    int idx;
    enum cstate st;
    struct bufferevent *bev;
    struct event *retry_ev;
    char sid[SID_MAX];
    uint64_t t_send;
    int tool;
    int uses;          /* responses read on this TCP connection */
    bool fresh;        /* the in-flight request opened this TCP connection */
    int failures;      /* consecutive connect/setup failures */
    bool retry_armed;  /* the in-flight request is a retry (no second one) */
    bool in_idle_fifo; /* for the invariant check */
    bool want_close;   /* the last response said Connection: close */
    bool resend;       /* after reconnecting, send the lost request again */
    /* response parser */
    int status;
    bool head_done, chunked, have_clen;
    size_t clen;
    struct evbuffer *body;
};

static struct {
    /* options */
    int nconns, procs, port, duration, idle_secs, timeout_ms, setup_timeout, ramp, inflight, rate;
    int weights[T_NTOOLS];
    bool retry_stale, quiet;
    const char *token, *accounts_path, *json_path;
    struct in_addr dst, src[MAX_SOURCES];
    int nsrc;
    unsigned seed;
    char **accounts;
    int naccounts;
    /* per process */
    int proc_idx, first, count;
    struct event_base *base;
    struct conn *conns;
    int *fifo; /* idle connection indexes, ring */
    int fifo_head, fifo_len;
    int setting_up, next_setup, established;
    int busy;
    int phase; /* 0 set-up, 1 idle, 2 load, 3 drain, 4 done */
    uint64_t load_start, load_end;
    double tokens;
    uint64_t last_tick;
    struct event *tick_ev, *go_ev, *deadline_ev;
    int go_fd, status_fd;
    struct stats st;
    uint32_t *samples;
    uint64_t next_rpc_id, ingest_seq;
    struct rusage ru_start;
} G;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *msg)
{
    fprintf(stderr, "mcpload: %s\n", msg);
    exit(2);
}

static void conn_start(struct conn *c);
static void conn_send_call(struct conn *c, bool fresh);
static void dispatch(void);

static void note_error(enum ekind k, const char *detail)
{
    G.st.errors[k]++;
    if (!G.st.sample_err[k][0] && detail)
        snprintf(G.st.sample_err[k], sizeof G.st.sample_err[k], "%s", detail);
}

static void fifo_push(struct conn *c)
{
    if (c->in_idle_fifo)
        return;
    G.fifo[(G.fifo_head + G.fifo_len) % G.count] = c->idx;
    G.fifo_len++;
    c->in_idle_fifo = true;
}

static struct conn *fifo_pop(void)
{
    while (G.fifo_len > 0) {
        struct conn *c = &G.conns[G.fifo[G.fifo_head]];
        G.fifo_head = (G.fifo_head + 1) % G.count;
        G.fifo_len--;
        c->in_idle_fifo = false;
        if (c->st == C_IDLE)
            return c;
    }
    return NULL;
}

static void set_state(struct conn *c, enum cstate s)
{
    if (c->st == C_BUSY)
        G.busy--;
    if (s == C_BUSY)
        G.busy++;
    c->st = s;
    if (s == C_IDLE)
        fifo_push(c);
}

/* --- requests ------------------------------------------------------------------------------ */

static void send_post(struct conn *c, const char *body, int len)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    evbuffer_add_printf(out,
                        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                        "Content-Type: application/json\r\n"
                        "Accept: application/json, text/event-stream\r\n"
                        "%s%s%s"
                        "%s%s%s"
                        "Content-Length: %d\r\n\r\n",
                        G.port, G.token ? "Authorization: Bearer " : "", G.token ? G.token : "",
                        G.token ? "\r\n" : "", c->sid[0] ? "Mcp-Session-Id: " : "", c->sid,
                        c->sid[0] ? "\r\nMCP-Protocol-Version: 2025-11-25\r\n" : "", len);
    evbuffer_add(out, body, (size_t)len);
    c->head_done = false;
    c->status = 0;
    c->t_send = now_ns();
    struct timeval tv = {G.timeout_ms / 1000, (G.timeout_ms % 1000) * 1000};
    bufferevent_set_timeouts(c->bev, &tv, &tv);
}

static void send_initialize(struct conn *c)
{
    char body[256];
    int n = snprintf(body, sizeof body,
                     "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{"
                     "\"protocolVersion\":\"2025-11-25\",\"capabilities\":{},"
                     "\"clientInfo\":{\"name\":\"mcpload\",\"version\":\"1\"}}}");
    c->sid[0] = '\0';
    set_state(c, C_INIT);
    send_post(c, body, n);
}

static void send_initialized(struct conn *c)
{
    static const char body[] = "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}";
    set_state(c, C_NOTIFY);
    send_post(c, body, (int)sizeof body - 1);
}

static int pick_tool(void)
{
    int total = 0;
    for (int i = 0; i < T_NTOOLS; i++)
        total += G.weights[i];
    int r = rand() % total;
    for (int i = 0; i < T_NTOOLS; i++) {
        if (r < G.weights[i])
            return i;
        r -= G.weights[i];
    }
    return 0;
}

static const char *tiers[] = {"starter", "standard", "professional", "enterprise"};
static const char *features[] = {"dashboard", "reports", "api", "integrations", "alerts"};

static int build_args(int tool, char *buf, size_t size)
{
    const char *cid = G.accounts[rand() % G.naccounts];
    switch (tool) {
    case T_OVERVIEW:
    case T_HEALTH:
    case T_USAGE:
        return snprintf(buf, size, "{\"client_id\":\"%s\"}", cid);
    case T_LIST: {
        int n = snprintf(buf, size, "{\"limit\":20,\"offset\":%d", (rand() % 50) * 20);
        if (rand() % 2)
            n += snprintf(buf + n, size - (size_t)n, ",\"tier_filter\":\"%s\"", tiers[rand() % 4]);
        if (rand() % 10 < 3)
            n += snprintf(buf + n, size - (size_t)n,
                          ",\"sort_by\":\"health_score\",\"sort_order\":\"desc\"");
        return n + snprintf(buf + n, size - (size_t)n, "}");
    }
    case T_SIMPLE:
        return snprintf(buf, size, "{}");
    case T_UPDATE:
        return snprintf(buf, size,
                        "{\"client_id\":\"%s\",\"updates\":{\"csm_assigned\":\"csm-%d\"}}", cid,
                        1 + rand() % 50);
    default: {
        time_t t = time(NULL) - rand() % 3600;
        struct tm tm;
        gmtime_r(&t, &tm);
        char ts[32];
        strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
        return snprintf(buf, size,
                        "{\"events\":[{\"event_id\":\"mcpload-%u-%d-%" PRIu64 "\","
                        "\"client_id\":\"%s\",\"occurred_at\":\"%s\",\"user\":\"u%d\","
                        "\"feature\":\"%s\"}]}",
                        G.seed, getpid(), ++G.ingest_seq, cid, ts, rand() % 20,
                        features[rand() % 5]);
    }
    }
}

static void conn_send_call(struct conn *c, bool fresh)
{
    c->fresh = fresh;
    char args[512], body[768];
    if (!c->resend)
        c->tool = pick_tool();
    c->resend = false;
    build_args(c->tool, args, sizeof args);
    int n = snprintf(body, sizeof body,
                     "{\"jsonrpc\":\"2.0\",\"id\":%" PRIu64 ",\"method\":\"tools/call\","
                     "\"params\":{\"name\":\"%s\",\"arguments\":%s}}",
                     ++G.next_rpc_id, tool_names[c->tool], args);
    set_state(c, C_BUSY);
    send_post(c, body, n);
}

/* --- connection lifecycle -------------------------------------------------------------------- */

static void conn_close(struct conn *c)
{
    if (c->bev) {
        bufferevent_free(c->bev);
        c->bev = NULL;
    }
    c->uses = 0;
    c->want_close = false;
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn *c = arg;
    if (G.phase >= 3) {
        set_state(c, C_DEAD);
        return;
    }
    conn_start(c);
}

/* Reopen after a close: at once when the session exists (or after a lost request), with a
 * bounded backoff after repeated failures. */
static void conn_reopen_later(struct conn *c, bool failed)
{
    conn_close(c);
    if (failed)
        c->failures++;
    else
        c->failures = 0;
    if (c->failures > 20 || G.phase >= 3) {
        set_state(c, C_DEAD);
        if (G.phase == 0) {
            G.setting_up--;
            G.st.setup_failed++;
        }
        return;
    }
    set_state(c, C_WAIT);
    int ms = failed ? (c->failures < 8 ? 50 << c->failures : 5000) : 0;
    ms += failed ? rand() % 50 : 0;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    if (!c->retry_ev)
        c->retry_ev = evtimer_new(G.base, retry_cb, c);
    evtimer_add(c->retry_ev, &tv);
}

static void setup_finished(struct conn *c, bool ok);

/* The server closed the connection (EOF or reset) or it failed. */
static void conn_lost(struct conn *c, enum ekind kind, const char *detail)
{
    switch (c->st) {
    case C_CONNECT:
    case C_INIT:
    case C_NOTIFY:
        note_error(c->st == C_CONNECT ? E_CONNECT : E_SETUP, detail);
        if (G.phase == 0 && c->failures >= 3) {
            conn_close(c);
            set_state(c, C_DEAD);
            setup_finished(c, false);
            return;
        }
        conn_reopen_later(c, true);
        return;
    case C_BUSY: {
        /* Written on a connection opened earlier, closed before any byte of the answer: the
         * server closed it as idle before reading the request (a draining worker does). */
        bool stale = kind == E_LOST && !c->fresh && !c->head_done &&
                     evbuffer_get_length(bufferevent_get_input(c->bev)) == 0;
        if (stale && G.retry_stale && !c->retry_armed) {
            G.st.retried++;
            c->retry_armed = true;
            c->resend = true;
        } else {
            note_error(kind, detail);
            G.st.tool_err[c->tool]++;
            c->retry_armed = false;
            if (kind == E_LOST && G.st.nlost_at < MAX_LOST_AT)
                G.st.lost_at_ns[G.st.nlost_at++] = now_ns();
        }
        conn_reopen_later(c, false);
        return;
    }
    case C_IDLE:
        G.st.idle_closed++;
        conn_reopen_later(c, false);
        return;
    default:
        conn_close(c);
        return;
    }
}

static void record_sample(int tool, uint64_t ns)
{
    uint64_t us = ns / 1000;
    if (us > 0x1fffffff)
        us = 0x1fffffff;
    if (G.st.nsamples < MAX_SAMPLES)
        G.samples[G.st.nsamples++] = ((uint32_t)tool << 29) | (uint32_t)us;
    else
        G.st.dropped_samples++;
}

/* A whole response is in: status, body (c->body). */
static void response_done(struct conn *c)
{
    size_t blen = evbuffer_get_length(c->body);
    char *body = (char *)evbuffer_pullup(c->body, -1);
    char detail[160];
    int dn = snprintf(detail, sizeof detail, "HTTP %d %.*s", c->status,
                      (int)(blen < 120 ? blen : 120), body ? body : "");
    (void)dn;
    c->uses++;
    c->retry_armed = false;
    enum cstate st = c->st;

    if (st == C_INIT) {
        if (c->status != 200 || !c->sid[0]) {
            evbuffer_drain(c->body, blen);
            conn_lost(c, E_SETUP, detail);
            return;
        }
        evbuffer_drain(c->body, blen);
        send_initialized(c);
        return;
    }
    if (st == C_NOTIFY) {
        evbuffer_drain(c->body, blen);
        if (c->status != 202) {
            conn_lost(c, E_SETUP, detail);
            return;
        }
        c->failures = 0;
        bufferevent_set_timeouts(c->bev, NULL, NULL);
        set_state(c, C_IDLE);
        setup_finished(c, true);
        return;
    }
    if (st == C_BUSY) {
        uint64_t t = now_ns();
        record_sample(c->tool, t - c->t_send);
        if (G.phase == 2 && t <= G.load_end)
            G.st.done_in_window++;
        bool ok = false;
        if (c->status != 200) {
            if (c->status >= 0 && c->status < 600)
                G.st.http_status[c->status]++;
            note_error(E_HTTP, detail);
        } else if (!body || !memmem(body, blen, "\"result\"", 8)) {
            const char *code = body ? memmem(body, blen, "\"code\":", 7) : NULL;
            if (code && atoi(code + 7) <= -32000 && atoi(code + 7) >= -32099)
                G.st.rpc_code_minus32000s++;
            note_error(E_RPC, detail);
        } else if (memmem(body, blen, "\"isError\":true", 14)) {
            note_error(E_TOOL, detail);
        } else {
            ok = true;
        }
        if (ok) {
            G.st.ok++;
            G.st.tool_ok[c->tool]++;
        } else {
            G.st.tool_err[c->tool]++;
        }
        evbuffer_drain(c->body, blen);
        bufferevent_set_timeouts(c->bev, NULL, NULL);
        if (c->want_close) {
            G.st.server_closed++; /* Connection: close (a draining worker) */
            conn_reopen_later(c, false);
        } else {
            set_state(c, C_IDLE);
        }
        dispatch();
        return;
    }
    evbuffer_drain(c->body, blen);
}

/* Parses as much of the response as has arrived. Returns -1 on a malformed response. */
static int parse_input(struct conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    for (;;) {
        if (!c->head_done) {
            struct evbuffer_ptr p = evbuffer_search(in, "\r\n\r\n", 4, NULL);
            if (p.pos < 0)
                return evbuffer_get_length(in) > 65536 ? -1 : 0;
            size_t hlen = (size_t)p.pos + 4;
            char *h = (char *)evbuffer_pullup(in, (ssize_t)hlen);
            if (hlen < 12 || strncmp(h, "HTTP/1.", 7) != 0)
                return -1;
            c->status = atoi(h + 9);
            c->chunked = c->have_clen = c->want_close = false;
            c->clen = 0;
            for (char *line = memchr(h, '\n', hlen); line && line < h + hlen - 2;
                 line = memchr(line + 1, '\n', (size_t)(h + hlen - line - 1))) {
                char *l = line + 1;
                size_t rest = (size_t)(h + hlen - l);
                if (rest > 15 && !strncasecmp(l, "content-length:", 15)) {
                    c->clen = strtoul(l + 15, NULL, 10);
                    c->have_clen = true;
                } else if (rest > 18 && !strncasecmp(l, "transfer-encoding:", 18)) {
                    c->chunked = memmem(l, rest < 64 ? rest : 64, "chunked", 7) != NULL;
                } else if (rest > 11 && !strncasecmp(l, "connection:", 11)) {
                    c->want_close = memmem(l, rest < 40 ? rest : 40, "close", 5) != NULL;
                } else if (rest > 15 && !strncasecmp(l, "mcp-session-id:", 15)) {
                    const char *v = l + 15;
                    while (*v == ' ')
                        v++;
                    size_t n = strcspn(v, "\r\n");
                    if (n > 0 && n < SID_MAX) {
                        memcpy(c->sid, v, n);
                        c->sid[n] = '\0';
                    }
                }
            }
            evbuffer_drain(in, hlen);
            c->head_done = true;
            if (!c->chunked && !c->have_clen)
                c->have_clen = true; /* 202 and friends: no body */
        }
        if (c->chunked) {
            for (;;) {
                struct evbuffer_ptr p = evbuffer_search(in, "\r\n", 2, NULL);
                if (p.pos < 0)
                    return 0;
                char *l = (char *)evbuffer_pullup(in, p.pos + 2);
                size_t sz = strtoul(l, NULL, 16);
                if (evbuffer_get_length(in) < (size_t)p.pos + 2 + sz + 2)
                    return 0;
                evbuffer_drain(in, (size_t)p.pos + 2);
                if (sz == 0) {
                    evbuffer_drain(in, 2);
                    break;
                }
                evbuffer_remove_buffer(in, c->body, sz);
                evbuffer_drain(in, 2);
            }
        } else {
            if (evbuffer_get_length(in) < c->clen)
                return 0;
            evbuffer_remove_buffer(in, c->body, c->clen);
        }
        c->head_done = false;
        response_done(c);
        /* response_done may have closed the connection or sent the next request. */
        if (!c->bev || evbuffer_get_length(bufferevent_get_input(c->bev)) == 0)
            return 0;
        in = bufferevent_get_input(c->bev);
    }
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct conn *c = arg;
    if (parse_input(c) < 0 && c->bev) {
        note_error(E_PARSE, "malformed HTTP response");
        if (c->st == C_BUSY)
            G.st.tool_err[c->tool]++;
        conn_reopen_later(c, false);
        dispatch();
    }
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct conn *c = arg;
    if (what & BEV_EVENT_CONNECTED) {
        int one = 1;
        setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (c->sid[0]) { /* reconnect: the session lives on */
            bufferevent_set_timeouts(c->bev, NULL, NULL);
            if (c->resend) {
                conn_send_call(c, true);
            } else {
                set_state(c, C_IDLE);
                dispatch();
            }
        } else {
            send_initialize(c);
        }
        return;
    }
    char detail[160];
    if (what & BEV_EVENT_TIMEOUT) {
        snprintf(detail, sizeof detail, "timeout after %d ms (state %d)", G.timeout_ms, c->st);
        conn_lost(c, E_TIMEOUT, detail);
    } else {
        snprintf(detail, sizeof detail, "%s (state %d)",
                 (what & BEV_EVENT_EOF) ? "closed by server" : strerror(EVUTIL_SOCKET_ERROR()),
                 c->st);
        conn_lost(c, E_LOST, detail);
    }
    if (G.phase >= 2)
        dispatch();
}

static void conn_start(struct conn *c)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        note_error(E_CONNECT, strerror(errno));
        conn_reopen_later(c, true);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    struct sockaddr_in src = {.sin_family = AF_INET,
                              .sin_addr = G.src[(G.first + c->idx) % G.nsrc]};
    if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0) {
        note_error(E_CONNECT, strerror(errno));
        close(fd);
        conn_reopen_later(c, true);
        return;
    }
    c->bev = bufferevent_socket_new(G.base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev) {
        close(fd);
        note_error(E_CONNECT, "bufferevent_socket_new failed");
        conn_reopen_later(c, true);
        return;
    }
    if (!c->body)
        c->body = evbuffer_new();
    bufferevent_setcb(c->bev, read_cb, NULL, event_cb, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    struct timeval tv = {G.timeout_ms / 1000, (G.timeout_ms % 1000) * 1000};
    bufferevent_set_timeouts(c->bev, &tv, &tv);
    struct sockaddr_in dst = {
        .sin_family = AF_INET, .sin_port = htons((uint16_t)G.port), .sin_addr = G.dst};
    set_state(c, C_CONNECT);
    if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&dst, sizeof dst) < 0) {
        /* bufferevent_socket_connect may already have run event_cb; be defensive */
        if (c->st == C_CONNECT && c->bev) {
            note_error(E_CONNECT, strerror(errno));
            conn_reopen_later(c, true);
        }
    }
}

/* --- phases ---------------------------------------------------------------------------------- */

static void start_more_setups(void)
{
    while (G.phase == 0 && G.setting_up < G.ramp && G.next_setup < G.count) {
        struct conn *c = &G.conns[G.next_setup++];
        G.setting_up++;
        conn_start(c);
    }
}

static void setup_report(void)
{
    int v = G.established;
    if (write(G.status_fd, &v, sizeof v) != (ssize_t)sizeof v)
        die("status pipe");
    G.phase = 1;
}

static uint64_t setup_t0;

static void setup_finished(struct conn *c, bool ok)
{
    (void)c;
    if (G.phase != 0)
        return; /* a reconnect after the set-up phase */
    G.setting_up--;
    if (ok)
        G.established++;
    else
        G.st.setup_failed++;
    if (G.next_setup >= G.count && G.setting_up == 0) {
        G.st.setup_s = (double)(now_ns() - setup_t0) / 1e9;
        double s = G.st.setup_s;
        setup_report();
        G.st.setup_s = s;
        return;
    }
    start_more_setups();
}

static void finish_load(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    G.st.cpu_load_s = (double)(ru.ru_utime.tv_sec - G.ru_start.ru_utime.tv_sec) +
                      (double)(ru.ru_stime.tv_sec - G.ru_start.ru_stime.tv_sec) +
                      (double)(ru.ru_utime.tv_usec - G.ru_start.ru_utime.tv_usec) / 1e6 +
                      (double)(ru.ru_stime.tv_usec - G.ru_start.ru_stime.tv_usec) / 1e6;
    G.phase = 3;
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    uint64_t t = now_ns();
    if (G.phase == 2 && t >= G.load_end)
        finish_load();
    if (G.phase == 3) {
        if (G.busy == 0 || t >= G.load_end + (uint64_t)G.timeout_ms * 1000000ull) {
            for (int i = 0; i < G.count; i++)
                if (G.conns[i].st == C_BUSY || G.conns[i].resend) {
                    note_error(E_TIMEOUT, "still in flight when the run ended");
                    G.st.tool_err[G.conns[i].tool]++;
                }
            G.phase = 4;
            event_base_loopbreak(G.base);
        }
        return;
    }
    if (G.phase == 2 && G.rate > 0) {
        G.tokens += (double)(t - G.last_tick) / 1e9 * G.rate;
        double cap = G.rate / 50.0 + 1;
        if (G.tokens > cap)
            G.tokens = cap;
    }
    G.last_tick = t;
    dispatch();
}

/*
 * The check HTTP clients make before reusing a pooled connection (curl's dead-connection
 * check, Go's background read): an idle connection whose EOF or reset is already queued in the
 * kernel (a killed worker's sockets, before the loop got to their events) is reopened instead
 * of written to. Nothing was sent on it, so nothing is retried or lost; a request written
 * before the server died still counts as lost in flight.
 */
static bool conn_alive(struct conn *c)
{
    char b;
    ssize_t n = recv(bufferevent_getfd(c->bev), &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0)
        return false;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        return false;
    return true;
}

static void dispatch(void)
{
    if (G.phase != 2)
        return;
    while (G.busy < G.inflight) {
        if (G.rate > 0) {
            if (G.tokens < 1)
                return;
        }
        struct conn *c = fifo_pop();
        if (!c)
            return;
        if (!conn_alive(c)) {
            G.st.idle_closed++;
            G.st.dead_on_reuse++;
            conn_reopen_later(c, false);
            continue;
        }
        if (G.rate > 0)
            G.tokens -= 1;
        conn_send_call(c, false);
    }
}

static void go_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    (void)arg;
    char b;
    ssize_t n = read(fd, &b, 1);
    (void)n;
    event_del(G.go_ev);
    getrusage(RUSAGE_SELF, &G.ru_start);
    G.phase = 2;
    G.load_start = G.last_tick = now_ns();
    G.load_end = G.load_start + (uint64_t)G.duration * 1000000000ull;
    G.tokens = 1;
    dispatch();
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    if (G.phase != 0)
        return;
    /* Give up on the connections still being set up; go on with the established ones. */
    for (int i = 0; i < G.count; i++) {
        struct conn *c = &G.conns[i];
        if (c->st == C_NEW || c->st == C_CONNECT || c->st == C_INIT || c->st == C_NOTIFY ||
            c->st == C_WAIT) {
            conn_close(c);
            if (c->retry_ev)
                evtimer_del(c->retry_ev);
            set_state(c, C_DEAD);
            G.st.setup_failed++;
        }
    }
    G.st.setup_s = (double)(now_ns() - setup_t0) / 1e9;
    double s = G.st.setup_s;
    setup_report();
    G.st.setup_s = s;
}

static void child_run(int idx, int go_fd, int status_fd, const char *out_path)
{
    G.proc_idx = idx;
    G.first = (int)((int64_t)G.nconns * idx / G.procs);
    G.count = (int)((int64_t)G.nconns * (idx + 1) / G.procs) - G.first;
    G.go_fd = go_fd;
    G.status_fd = status_fd;
    srand(G.seed * 7919u + (unsigned)idx);
    G.conns = calloc((size_t)G.count, sizeof *G.conns);
    G.fifo = calloc((size_t)G.count, sizeof *G.fifo);
    G.samples = malloc(MAX_SAMPLES * sizeof *G.samples);
    if (!G.conns || !G.fifo || !G.samples)
        die("out of memory");
    for (int i = 0; i < G.count; i++)
        G.conns[i].idx = i;
    struct event_config *ec = event_config_new();
    G.base = event_base_new_with_config(ec);
    event_config_free(ec);
    if (!G.base)
        die("event_base_new failed");
    G.tick_ev = event_new(G.base, -1, EV_PERSIST, tick_cb, NULL);
    struct timeval tick = {0, G.rate > 0 ? 2000 : 20000};
    event_add(G.tick_ev, &tick);
    G.go_ev = event_new(G.base, go_fd, EV_READ | EV_PERSIST, go_cb, NULL);
    event_add(G.go_ev, NULL);
    G.deadline_ev = evtimer_new(G.base, deadline_cb, NULL);
    struct timeval dl = {G.setup_timeout, 0};
    evtimer_add(G.deadline_ev, &dl);
    setup_t0 = now_ns();
    start_more_setups();
    if (G.count == 0)
        setup_report();
    event_base_dispatch(G.base);

    FILE *f = fopen(out_path, "wb");
    if (!f || fwrite(&G.st, sizeof G.st, 1, f) != 1 ||
        fwrite(G.samples, sizeof *G.samples, G.st.nsamples, f) != G.st.nsamples || fclose(f) != 0)
        die("cannot write the result file");
    _exit(0);
}

/* --- parent: options, fork, merge, report --------------------------------------------------- */

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a & 0x1fffffff, y = *(const uint32_t *)b & 0x1fffffff;
    return x < y ? -1 : x > y;
}

static double pct(const uint32_t *v, uint64_t n, double p)
{
    if (n == 0)
        return 0;
    uint64_t i = (uint64_t)(p / 100.0 * (double)(n - 1) + 0.5);
    return (double)(v[i] & 0x1fffffff) / 1000.0;
}

static void load_accounts(void)
{
    FILE *f = fopen(G.accounts_path, "r");
    if (!f)
        die("cannot open --accounts file");
    char line[256];
    int cap = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0] || strchr(line, '"') || strchr(line, '\\'))
            continue;
        if (G.naccounts == cap) {
            cap = cap ? cap * 2 : 1024;
            char **grown = realloc(G.accounts, (size_t)cap * sizeof *G.accounts);
            if (!grown)
                die("out of memory");
            G.accounts = grown;
        }
        G.accounts[G.naccounts++] = strdup(line);
    }
    fclose(f);
    if (G.naccounts == 0)
        die("no account ids in --accounts file");
}

static void parse_sources(const char *s)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (G.nsrc == MAX_SOURCES)
            die("too many --sources");
        if (inet_pton(AF_INET, tok, &G.src[G.nsrc]) != 1 ||
            (ntohl(G.src[G.nsrc].s_addr) >> 24) != 127)
            die("--sources: only 127.0.0.0/8 addresses");
        G.nsrc++;
    }
}

static void usage(void)
{
    fprintf(stderr,
            "usage: mcpload --port P --connections N --accounts FILE [options]\n"
            "  --host A           server address (127.0.0.0/8 only; default 127.0.0.1)\n"
            "  --sources A,B,..   client source addresses (127.0.0.x), round robin\n"
            "  --procs P          client processes (default: 1 per 15000 connections)\n"
            "  --duration S       load phase seconds (1..600, default 10)\n"
            "  --idle S           seconds to hold the established sessions idle first (default 0)\n"
            "  --inflight M       requests outstanding at once, all processes (default 64)\n"
            "  --rate R           cap on requests/s, all processes (default 0: none)\n"
            "  --mix a,b,c,d,e,f[,g]  weights: overview,list,health,usage,update,ingest"
            "[,test_simple_text] (default 35,35,10,10,5,5,0)\n"
            "  --token T          Bearer token (or env MCPLOAD_TOKEN)\n"
            "  --timeout MS       connect/request timeout (default 10000)\n"
            "  --setup-timeout S  give up setting up sessions after S seconds (default 120)\n"
            "  --ramp K           sessions being set up at once per process (default 200)\n"
            "  --no-retry-stale   count a request lost on a reused connection as failed\n"
            "  --seed N           random seed\n"
            "  --json FILE        write the result as JSON too\n");
    exit(2);
}

static double cpu_children(void)
{
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

int main(int argc, char **argv)
{
    G.nconns = 100;
    G.duration = 10;
    G.inflight = 64;
    G.timeout_ms = 10000;
    G.setup_timeout = 120;
    G.ramp = 200;
    G.retry_stale = true;
    G.seed = (unsigned)time(NULL);
    int defw[T_NTOOLS] = {35, 35, 10, 10, 5, 5, 0};
    memcpy(G.weights, defw, sizeof defw);
    inet_pton(AF_INET, "127.0.0.1", &G.dst);
    G.token = getenv("MCPLOAD_TOKEN");

    static const struct option opts[] = {
        {"host", 1, NULL, 'h'},           {"port", 1, NULL, 'p'},
        {"connections", 1, NULL, 'c'},    {"sources", 1, NULL, 's'},
        {"procs", 1, NULL, 'P'},          {"duration", 1, NULL, 'd'},
        {"idle", 1, NULL, 'i'},           {"inflight", 1, NULL, 'm'},
        {"rate", 1, NULL, 'r'},           {"mix", 1, NULL, 'x'},
        {"token", 1, NULL, 't'},          {"timeout", 1, NULL, 'T'},
        {"setup-timeout", 1, NULL, 'S'},  {"ramp", 1, NULL, 'R'},
        {"no-retry-stale", 0, NULL, 'n'}, {"seed", 1, NULL, 'e'},
        {"json", 1, NULL, 'j'},           {"accounts", 1, NULL, 'a'},
        {"help", 0, NULL, '?'},           {NULL, 0, NULL, 0},
    };
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'h':
            if (inet_pton(AF_INET, optarg, &G.dst) != 1 || (ntohl(G.dst.s_addr) >> 24) != 127)
                die("--host: only 127.0.0.0/8 addresses");
            break;
        case 'p':
            G.port = atoi(optarg);
            break;
        case 'c':
            G.nconns = atoi(optarg);
            break;
        case 's':
            parse_sources(optarg);
            break;
        case 'P':
            G.procs = atoi(optarg);
            break;
        case 'd':
            G.duration = atoi(optarg);
            break;
        case 'i':
            G.idle_secs = atoi(optarg);
            break;
        case 'm':
            G.inflight = atoi(optarg);
            break;
        case 'r':
            G.rate = atoi(optarg);
            break;
        case 'x':
            G.weights[6] = 0;
            if (sscanf(optarg, "%d,%d,%d,%d,%d,%d,%d", &G.weights[0], &G.weights[1], &G.weights[2],
                       &G.weights[3], &G.weights[4], &G.weights[5], &G.weights[6]) < 6)
                die("--mix wants six or seven weights");
            break;
        case 't':
            G.token = optarg;
            break;
        case 'T':
            G.timeout_ms = atoi(optarg);
            break;
        case 'S':
            G.setup_timeout = atoi(optarg);
            break;
        case 'R':
            G.ramp = atoi(optarg);
            break;
        case 'n':
            G.retry_stale = false;
            break;
        case 'e':
            G.seed = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'j':
            G.json_path = optarg;
            break;
        case 'a':
            G.accounts_path = optarg;
            break;
        default:
            usage();
        }
    }
    if (G.port <= 0 || G.port > 65535 || !G.accounts_path || G.nconns < 1 || G.nconns > 200000 ||
        G.duration < 1 || G.duration > 600 || G.idle_secs < 0 || G.idle_secs > 600 ||
        G.inflight < 1 || G.timeout_ms < 100 || G.ramp < 1 || G.setup_timeout < 1 ||
        G.setup_timeout > 900)
        usage();
    int wsum = 0;
    for (int i = 0; i < T_NTOOLS; i++)
        wsum += G.weights[i] > 0 ? G.weights[i] : 0;
    if (wsum <= 0)
        die("--mix: weights sum to 0");
    if (G.nsrc == 0)
        parse_sources("127.0.0.1");
    if (G.procs <= 0)
        G.procs = (G.nconns + 14999) / 15000;
    if (G.procs > MAX_PROCS)
        die("--procs: at most 16");
    load_accounts();

    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    int per_proc = (G.nconns + G.procs - 1) / G.procs;
    if ((rlim_t)per_proc + 64 > rl.rlim_cur) {
        fprintf(stderr,
                "mcpload: %d connections per process exceed RLIMIT_NOFILE %lu; use --procs\n",
                per_proc, (unsigned long)rl.rlim_cur);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    /* Split the in-flight budget and the rate across processes. */
    int inflight_total = G.inflight, rate_total = G.rate;

    int go[2], status[2];
    if (pipe2(go, O_CLOEXEC) < 0 || pipe2(status, O_CLOEXEC) < 0)
        die("pipe");
    char tmpl[64];
    snprintf(tmpl, sizeof tmpl, "/tmp/mcpload-%d", getpid());
    pid_t pids[MAX_PROCS];
    char paths[MAX_PROCS][96];
    uint64_t t0 = now_ns();
    for (int i = 0; i < G.procs; i++) {
        snprintf(paths[i], sizeof paths[i], "%s.%d", tmpl, i);
        G.inflight = inflight_total / G.procs + (i < inflight_total % G.procs);
        if (G.inflight < 1)
            G.inflight = 1;
        G.rate = rate_total / G.procs;
        if (rate_total > 0 && G.rate < 1)
            G.rate = 1;
        fflush(stdout);
        pids[i] = fork();
        if (pids[i] < 0)
            die("fork");
        if (pids[i] == 0) {
            close(go[1]);
            close(status[0]);
            child_run(i, go[0], status[1], paths[i]);
        }
    }
    close(go[0]);
    close(status[1]);
    G.inflight = inflight_total;
    G.rate = rate_total;

    /* Barrier 1: every process has its sessions (or gave up on some). */
    int established = 0;
    for (int i = 0; i < G.procs; i++) {
        int v;
        if (read(status[0], &v, sizeof v) != (ssize_t)sizeof v)
            die("a load process died during set-up");
        established += v;
    }
    double setup_s = (double)(now_ns() - t0) / 1e9;
    double cpu_setup = cpu_children();
    printf("ESTABLISHED %d of %d sessions in %.1f s\n", established, G.nconns, setup_s);
    fflush(stdout);
    if (G.idle_secs > 0)
        sleep((unsigned)G.idle_secs);
    printf("LOAD %d s, %d in flight%s\n", G.duration, G.inflight, G.rate ? " (rate capped)" : "");
    fflush(stdout);
    if (write(go[1], "gogogogogogogogo", (size_t)G.procs) != (ssize_t)G.procs)
        die("go pipe");
    close(go[1]);

    struct stats tot = {0};
    uint32_t *all = NULL;
    uint64_t nall = 0;
    for (int i = 0; i < G.procs; i++) {
        int ws;
        waitpid(pids[i], &ws, 0);
        if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
            die("a load process failed");
        FILE *f = fopen(paths[i], "rb");
        struct stats s;
        if (!f || fread(&s, sizeof s, 1, f) != 1)
            die("cannot read a result file");
        uint32_t *grown = realloc(all, (size_t)(nall + s.nsamples + 1) * sizeof *all);
        if (!grown)
            die("out of memory");
        all = grown;
        if (fread(all + nall, sizeof *all, s.nsamples, f) != s.nsamples)
            die("cannot read samples");
        nall += s.nsamples;
        fclose(f);
        unlink(paths[i]);
        tot.ok += s.ok;
        tot.done_in_window += s.done_in_window;
        for (int k = 0; k < E_NKINDS; k++) {
            tot.errors[k] += s.errors[k];
            if (!tot.sample_err[k][0])
                memcpy(tot.sample_err[k], s.sample_err[k], sizeof s.sample_err[k]);
        }
        for (int k = 0; k < 600; k++)
            tot.http_status[k] += s.http_status[k];
        for (int k = 0; k < T_NTOOLS; k++) {
            tot.tool_ok[k] += s.tool_ok[k];
            tot.tool_err[k] += s.tool_err[k];
        }
        tot.retried += s.retried;
        tot.idle_closed += s.idle_closed;
        tot.dead_on_reuse += s.dead_on_reuse;
        tot.server_closed += s.server_closed;
        tot.setup_failed += s.setup_failed;
        tot.rpc_code_minus32000s += s.rpc_code_minus32000s;
        tot.dropped_samples += s.dropped_samples;
        tot.cpu_load_s += s.cpu_load_s;
        for (uint32_t j = 0; j < s.nlost_at && tot.nlost_at < MAX_LOST_AT; j++)
            tot.lost_at_ns[tot.nlost_at++] = s.lost_at_ns[j];
    }
    double cpu_total = cpu_children();
    if (all && nall > 0)
        qsort(all, nall, sizeof *all, cmp_u32);
    uint64_t req_err = 0, req_all = 0;
    for (int k = 0; k < T_NTOOLS; k++) {
        req_err += tot.tool_err[k];
        req_all += tot.tool_ok[k] + tot.tool_err[k];
    }
    double rps = (double)tot.done_in_window / G.duration;
    double p50 = pct(all, nall, 50), p99 = pct(all, nall, 99), p999 = pct(all, nall, 99.9),
           pmax = nall ? (double)(all[nall - 1] & 0x1fffffff) / 1000 : 0;

    printf("connections %d (established %d, set-up failures %" PRIu64
           ", %.1f s, client CPU %.1f s)\n",
           G.nconns, established, tot.setup_failed, setup_s, cpu_setup);
    printf("requests %" PRIu64 " in %d s: %.0f req/s; ok %" PRIu64 ", failed %" PRIu64
           " (%.4f %%), retried %" PRIu64 "\n",
           req_all, G.duration, rps, tot.ok, req_err,
           req_all ? 100.0 * (double)req_err / (double)req_all : 0, tot.retried);
    printf("latency ms: p50 %.2f  p99 %.2f  p99.9 %.2f  max %.2f\n", p50, p99, p999, pmax);
    for (int k = 0; k < T_NTOOLS; k++) {
        uint32_t *v = malloc((tot.tool_ok[k] + tot.tool_err[k] + 1) * sizeof *v);
        uint64_t n = 0;
        for (uint64_t i = 0; v && i < nall; i++)
            if ((int)(all[i] >> 29) == k)
                v[n++] = all[i];
        printf("  %-24s %8" PRIu64 " ok %6" PRIu64 " failed  p50 %7.2f  p99 %8.2f ms\n",
               tool_names[k], tot.tool_ok[k], tot.tool_err[k], v ? pct(v, n, 50) : 0,
               v ? pct(v, n, 99) : 0);
        free(v);
    }
    printf("errors:");
    for (int k = 0; k < E_NKINDS; k++)
        printf(" %s=%" PRIu64, ekind_names[k], tot.errors[k]);
    printf("\n");
    for (int k = 0; k < 600; k++)
        if (tot.http_status[k])
            printf("  HTTP %d: %" PRIu64 "\n", k, tot.http_status[k]);
    for (int k = 0; k < E_NKINDS; k++)
        if (tot.sample_err[k][0])
            printf("  sample %s: %s\n", ekind_names[k], tot.sample_err[k]);
    printf("connections reopened: %" PRIu64 " closed while idle (%" PRIu64
           " of them found closed when about to be reused), %" PRIu64 " after Connection: close\n",
           tot.idle_closed, tot.dead_on_reuse, tot.server_closed);
    printf("client CPU during load: %.2f s (%.0f %% of one core)\n", tot.cpu_load_s,
           100.0 * tot.cpu_load_s / G.duration);

    if (G.json_path) {
        FILE *f = fopen(G.json_path, "w");
        if (!f)
            die("cannot write --json file");
        fprintf(f,
                "{\"connections\":%d,\"established\":%d,\"setup_failed\":%" PRIu64
                ",\"setup_s\":%.3f,\"duration\":%d,\"inflight\":%d,\"requests\":%" PRIu64
                ",\"ok\":%" PRIu64 ",\"failed\":%" PRIu64 ",\"retried\":%" PRIu64
                ",\"rps\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f,\"max_ms\":%.3f,"
                "\"client_cpu_load_s\":%.3f,\"client_cpu_total_s\":%.3f,\"idle_closed\":%" PRIu64
                ",\"dead_on_reuse\":%" PRIu64 ",\"server_closed\":%" PRIu64 ",\"errors\":{",
                G.nconns, established, tot.setup_failed, setup_s, G.duration, G.inflight, req_all,
                tot.ok, req_err, tot.retried, rps, p50, p99, p999, pmax, tot.cpu_load_s, cpu_total,
                tot.idle_closed, tot.dead_on_reuse, tot.server_closed);
        for (int k = 0; k < E_NKINDS; k++)
            fprintf(f, "%s\"%s\":%" PRIu64, k ? "," : "", ekind_names[k], tot.errors[k]);
        fprintf(f, "},\"http_status\":{");
        bool first = true;
        for (int k = 0; k < 600; k++)
            if (tot.http_status[k]) {
                fprintf(f, "%s\"%d\":%" PRIu64, first ? "" : ",", k, tot.http_status[k]);
                first = false;
            }
        fprintf(f, "},\"tools\":{");
        for (int k = 0; k < T_NTOOLS; k++)
            fprintf(f, "%s\"%s\":{\"ok\":%" PRIu64 ",\"failed\":%" PRIu64 "}", k ? "," : "",
                    tool_names[k], tot.tool_ok[k], tot.tool_err[k]);
        fprintf(f, "},\"lost_at_s\":[");
        for (uint32_t j = 0; j < tot.nlost_at; j++)
            fprintf(f, "%s%.6f", j ? "," : "", (double)tot.lost_at_ns[j] / 1e9);
        fprintf(f, "]}\n");
        fclose(f);
    }
    free(all);
    return 0;
}
