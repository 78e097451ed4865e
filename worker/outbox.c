/*
 * outbox.c - outbox delivery in the monitor process (see outbox.h).
 *
 * Per tick and channel (sendgrid, intercom, zendesk, slack, webhook) that has its credential on
 * this host and whose breaker allows it: csmcp.outbox_claim (FOR UPDATE SKIP LOCKED, rows become
 * 'sending' with a lease) returns the HTTP requests; each runs as a libcurl easy handle on one
 * multi handle whose sockets and timer are libevent events (never blocking the loop); each
 * answer is recorded with csmcp.outbox_result: 2xx sent; 408/429/5xx, timeouts and connection
 * errors retried after min(backoff_max, base * 2^(attempts-1)) with jitter in [d/2, d], or the
 * provider's Retry-After when longer (capped at one hour); other 4xx dead at once; dead too once
 * attempts reach max_attempts.
 *
 * Breaker per channel: breaker_failures consecutive failures (retryable outcomes, 401, 403) open
 * it for breaker_open_seconds; then one probe is let through: success closes it, failure reopens
 * it. Metrics: csmcp_outbox_deliveries_total{channel,result}, csmcp_outbox_delivery_seconds
 * {channel}, csmcp_outbox_breaker_open{channel}, csmcp_outbox_breaker_transitions_total
 * {channel,to}, csmcp_outbox_in_flight.
 *
 * Invariants: credentials are read from credential files only and never logged; TLS peer and
 * host verification stay on (CURLOPT_SSL_VERIFYPEER/HOST defaults); plain http is accepted only
 * for loopback hosts (tests); every request carries Idempotency-Key = the row's key; a claimed
 * row is either recorded or left to its lease (at-least-once; receivers dedupe by the key).
 */
#include "outbox.h"

#include "cfg.h"
#include "crypto.h"
#include "log.h"
#include "mconn.h"
#include "metrics.h"
#include "secret.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

enum { CH_SENDGRID, CH_INTERCOM, CH_ZENDESK, CH_SLACK, CH_WEBHOOK, CH_N };
static const char *const ch_name[CH_N] = {"sendgrid", "intercom", "zendesk", "slack", "webhook"};

struct chan {
    bool usable;  /* credential (and URL) present and valid on this host */
    char *base;   /* base URL (slack: the webhook URL itself) */
    char *secret; /* token / key / user:password / HMAC secret */
    size_t secret_len;
    int failures;      /* consecutive */
    double open_until; /* breaker open until (monotonic s); 0 closed */
    bool half_open;
    bool probing; /* the half-open probe is in flight */
    bool claiming;
    int inflight;
};

struct msg {
    struct msg *prev, *next; /* in flight */
    struct outbox *ob;
    int ch;
    long long id;
    int attempts;
    bool probe;
    CURL *e;
    struct curl_slist *hdrs;
    char *url, *body;
    long status;
    double retry_after; /* seconds, 0 none */
    char resp[256];
    size_t resp_len;
    char err[CURL_ERROR_SIZE];
    double t0;
    /* a plain GET (outbox_http_get), not a delivery */
    outbox_get_cb get_cb;
    void *get_arg;
    char *buf;
    size_t len, cap, max;
    char *userpwd;
};

struct sockev {
    struct event *ev;
};

struct outbox {
    struct event_base *base;
    const struct cfg *cfg;
    struct mconn *db;
    char by[300];
    CURLM *multi;
    struct event *timer;
    struct chan ch[CH_N];
    int inflight;  /* HTTP requests */
    int recording; /* results being written */
    int claims;    /* claims in progress */
    bool draining;
    void (*idle_cb)(void);
    struct event *idle_ev;
    struct msg *flying;
};

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void idle_fire(evutil_socket_t fd, short what, void *arg)
{
    struct outbox *ob = arg;
    (void)fd, (void)what;
    if (ob->idle_cb && outbox_idle(ob))
        ob->idle_cb();
}

static void check_idle(struct outbox *ob)
{
    if (ob->draining && outbox_idle(ob))
        event_active(ob->idle_ev, EV_TIMEOUT, 0);
}

static void set_breaker_gauge(int ch, int open)
{
    char l[64];
    snprintf(l, sizeof l, "channel=\"%s\"", ch_name[ch]);
    metrics_gauge_set("csmcp_outbox_breaker_open", l, open);
}

static void breaker_transition(struct outbox *ob, int ch, const char *to)
{
    char l[96];
    snprintf(l, sizeof l, "channel=\"%s\",to=\"%s\"", ch_name[ch], to);
    metrics_inc("csmcp_outbox_breaker_transitions_total", l, 1);
    set_breaker_gauge(ch, strcmp(to, "closed") != 0);
    if (strcmp(to, "open") == 0)
        log_warn("outbox: %s breaker open for %d s after %d consecutive failures", ch_name[ch],
                 ob->cfg->integrations_breaker_open_seconds, ob->ch[ch].failures);
    else
        log_notice("outbox: %s breaker %s", ch_name[ch], to);
}

/* ---------------------------------------------------------------- results */

static void on_result(const PGresult *res, const char *err, void *arg)
{
    struct msg *m = arg;
    struct outbox *ob = m->ob;
    if (!res)
        log_error("outbox: recording the result of message %lld: %s (its lease will expire and "
                  "it will be retried)",
                  m->id, err);
    ob->recording--;
    free(m);
    check_idle(ob);
}

static double backoff_s(const struct outbox *ob, int attempts, double retry_after)
{
    double d = ob->cfg->integrations_backoff_base_ms / 1000.0;
    for (int i = 1; i < attempts && d < 1e7; i++)
        d *= 2;
    double cap = ob->cfg->integrations_backoff_max_ms / 1000.0;
    if (d > cap)
        d = cap;
    uint32_t r = 0;
    if (crypto_random(&r, sizeof r) < 0)
        r = (uint32_t)getpid();
    d = d / 2 + (d / 2) * ((double)r / 4294967296.0);
    if (retry_after > 3600)
        retry_after = 3600;
    return retry_after > d ? retry_after : d;
}

static void finish_msg(struct outbox *ob, struct msg *m, CURLcode cc)
{
    struct chan *c = &ob->ch[m->ch];
    const char *outcome;
    bool breaker_fail;
    char errtxt[400], l[96];
    double dt = mono_s() - m->t0;

    if (cc == CURLE_OK && m->status >= 200 && m->status < 300) {
        outcome = "sent";
        breaker_fail = false;
        errtxt[0] = 0;
    } else if (cc != CURLE_OK || m->status == 408 || m->status == 429 || m->status >= 500) {
        outcome = "retry";
        breaker_fail = true;
        if (cc != CURLE_OK)
            snprintf(errtxt, sizeof errtxt, "%s", m->err[0] ? m->err : curl_easy_strerror(cc));
        else
            snprintf(errtxt, sizeof errtxt, "HTTP %ld: %.*s", m->status, (int)m->resp_len, m->resp);
    } else {
        outcome = "dead";
        breaker_fail = m->status == 401 || m->status == 403;
        snprintf(errtxt, sizeof errtxt, "HTTP %ld (not retried): %.*s", m->status, (int)m->resp_len,
                 m->resp);
    }
    for (char *p = errtxt; *p; p++)
        if ((unsigned char)*p < 0x20)
            *p = ' ';

    /* breaker */
    if (breaker_fail) {
        c->failures++;
        if (m->probe) {
            c->open_until = mono_s() + ob->cfg->integrations_breaker_open_seconds;
            c->half_open = false;
            breaker_transition(ob, m->ch, "open");
        } else if (c->open_until == 0 && c->failures >= ob->cfg->integrations_breaker_failures) {
            c->open_until = mono_s() + ob->cfg->integrations_breaker_open_seconds;
            breaker_transition(ob, m->ch, "open");
        }
    } else {
        c->failures = 0;
        if (m->probe || c->open_until != 0) {
            if (c->open_until != 0)
                breaker_transition(ob, m->ch, "closed");
            c->open_until = 0;
            c->half_open = false;
        }
    }
    if (m->probe)
        c->probing = false;

    snprintf(l, sizeof l, "channel=\"%s\",result=\"%s\"", ch_name[m->ch], outcome);
    metrics_inc("csmcp_outbox_deliveries_total", l, 1);
    snprintf(l, sizeof l, "channel=\"%s\"", ch_name[m->ch]);
    metrics_observe("csmcp_outbox_delivery_seconds", l, dt);
    if (strcmp(outcome, "sent") != 0)
        log_info("outbox: %s message %lld attempt %d: %s -> %s", ch_name[m->ch], m->id, m->attempts,
                 errtxt, outcome);

    /* record it */
    char id[24], st[16], delay[24], maxa[16];
    snprintf(id, sizeof id, "%lld", m->id);
    snprintf(st, sizeof st, "%ld", m->status);
    snprintf(delay, sizeof delay, "%.0f", backoff_s(ob, m->attempts, m->retry_after) * 1000);
    snprintf(maxa, sizeof maxa, "%d", ob->cfg->integrations_max_attempts);
    const char *p[6] = {id, outcome, m->status ? st : NULL, errtxt, delay, maxa};
    curl_multi_remove_handle(ob->multi, m->e);
    curl_easy_cleanup(m->e);
    curl_slist_free_all(m->hdrs);
    free(m->url);
    free(m->body);
    m->e = NULL;
    if (m->prev)
        m->prev->next = m->next;
    else
        ob->flying = m->next;
    if (m->next)
        m->next->prev = m->prev;
    m->prev = m->next = NULL;
    ob->inflight--;
    c->inflight--;
    metrics_gauge_set("csmcp_outbox_in_flight", NULL, ob->inflight);
    ob->recording++;
    mconn_query(ob->db,
                "SELECT csmcp.outbox_result($1::bigint, $2, $3::integer, $4, $5::integer, "
                "$6::integer)",
                6, p, on_result, m);
}

static void unlink_msg(struct outbox *ob, struct msg *m)
{
    if (m->prev)
        m->prev->next = m->next;
    else
        ob->flying = m->next;
    if (m->next)
        m->next->prev = m->prev;
    m->prev = m->next = NULL;
}

static void finish_get(struct outbox *ob, struct msg *m, CURLcode cc)
{
    char err[CURL_ERROR_SIZE + 64];
    curl_multi_remove_handle(ob->multi, m->e);
    curl_easy_cleanup(m->e);
    unlink_msg(ob, m);
    ob->recording--; /* a GET counts as work in progress like a result being recorded */
    if (cc != CURLE_OK)
        snprintf(err, sizeof err, "%s",
                 cc == CURLE_WRITE_ERROR ? "the answer is larger than allowed"
                 : m->err[0]             ? m->err
                                         : curl_easy_strerror(cc));
    m->get_cb(cc == CURLE_OK ? m->status : 0, m->buf ? m->buf : "", m->len,
              cc == CURLE_OK ? NULL : err, m->get_arg);
    if (m->userpwd) {
        explicit_bzero(m->userpwd, strlen(m->userpwd));
        free(m->userpwd);
    }
    free(m->buf);
    free(m->url);
    free(m);
    check_idle(ob);
}

static bool url_ok(const char *u);
static size_t cb_write(char *ptr, size_t size, size_t n, void *userp);

int outbox_http_get(struct outbox *ob, const char *url, const char *userpwd, size_t max_bytes,
                    outbox_get_cb cb, void *arg)
{
    if (!url_ok(url))
        return -1;
    struct msg *m = calloc(1, sizeof *m);
    if (!m)
        return -1;
    m->ob = ob;
    m->get_cb = cb;
    m->get_arg = arg;
    m->max = max_bytes;
    m->url = strdup(url);
    m->userpwd = userpwd ? strdup(userpwd) : NULL;
    m->e = curl_easy_init();
    if (!m->url || (userpwd && !m->userpwd) || !m->e) {
        if (m->e)
            curl_easy_cleanup(m->e);
        free(m->url);
        free(m->userpwd);
        free(m);
        return -1;
    }
    curl_easy_setopt(m->e, CURLOPT_URL, m->url);
    curl_easy_setopt(m->e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(m->e, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(m->e, CURLOPT_ACCEPT_ENCODING, "");
    if (m->userpwd) {
        curl_easy_setopt(m->e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(m->e, CURLOPT_USERPWD, m->userpwd);
    }
    curl_easy_setopt(m->e, CURLOPT_TIMEOUT_MS, 600000L);
    curl_easy_setopt(m->e, CURLOPT_CONNECTTIMEOUT_MS, (long)ob->cfg->integrations_timeout_ms);
    curl_easy_setopt(m->e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(m->e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(m->e, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(m->e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(m->e, CURLOPT_USERAGENT, "csmcp-monitor");
    curl_easy_setopt(m->e, CURLOPT_WRITEFUNCTION, cb_write);
    curl_easy_setopt(m->e, CURLOPT_WRITEDATA, m);
    curl_easy_setopt(m->e, CURLOPT_ERRORBUFFER, m->err);
    curl_easy_setopt(m->e, CURLOPT_PRIVATE, m);
    m->next = ob->flying;
    if (ob->flying)
        ob->flying->prev = m;
    ob->flying = m;
    ob->recording++;
    if (curl_multi_add_handle(ob->multi, m->e) != CURLM_OK) {
        unlink_msg(ob, m);
        ob->recording--;
        curl_easy_cleanup(m->e);
        free(m->url);
        free(m->userpwd);
        free(m);
        return -1;
    }
    return 0; /* libcurl's timer callback starts it from the loop */
}

static void check_done(struct outbox *ob)
{
    CURLMsg *cm;
    int left;
    while ((cm = curl_multi_info_read(ob->multi, &left))) {
        if (cm->msg != CURLMSG_DONE)
            continue;
        struct msg *m = NULL;
        curl_easy_getinfo(cm->easy_handle, CURLINFO_PRIVATE, (char **)&m);
        curl_easy_getinfo(cm->easy_handle, CURLINFO_RESPONSE_CODE, &m->status);
        if (m->get_cb)
            finish_get(ob, m, cm->data.result);
        else
            finish_msg(ob, m, cm->data.result);
    }
    if (!ob->draining && ob->inflight < ob->cfg->integrations_max_in_flight / 2)
        outbox_tick(ob);
}

/* ---------------------------------------------------------------- libcurl <-> libevent */

static void ev_sock(evutil_socket_t fd, short what, void *arg)
{
    struct outbox *ob = arg;
    int running,
        flags = (what & EV_READ ? CURL_CSELECT_IN : 0) | (what & EV_WRITE ? CURL_CSELECT_OUT : 0);
    curl_multi_socket_action(ob->multi, fd, flags, &running);
    check_done(ob);
}

static void ev_timer(evutil_socket_t fd, short what, void *arg)
{
    struct outbox *ob = arg;
    int running;
    (void)fd, (void)what;
    curl_multi_socket_action(ob->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(ob);
}

static int cb_socket(CURL *e, curl_socket_t s, int what, void *userp, void *sockp)
{
    struct outbox *ob = userp;
    struct sockev *se = sockp;
    (void)e;
    if (what == CURL_POLL_REMOVE) {
        if (se) {
            event_free(se->ev);
            free(se);
            curl_multi_assign(ob->multi, s, NULL);
        }
        return 0;
    }
    short kind =
        EV_PERSIST | (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0);
    if (!se) {
        se = calloc(1, sizeof *se);
        if (!se)
            return -1;
        curl_multi_assign(ob->multi, s, se);
    } else {
        event_free(se->ev);
    }
    se->ev = event_new(ob->base, s, kind, ev_sock, ob);
    if (!se->ev || event_add(se->ev, NULL) < 0)
        return -1;
    return 0;
}

static int cb_timer(CURLM *multi, long timeout_ms, void *userp)
{
    struct outbox *ob = userp;
    (void)multi;
    if (timeout_ms < 0) {
        evtimer_del(ob->timer);
        return 0;
    }
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    evtimer_add(ob->timer, &tv);
    return 0;
}

static size_t cb_write(char *ptr, size_t size, size_t n, void *userp)
{
    struct msg *m = userp;
    if (m->get_cb) {
        size_t add = size * n;
        if (m->len + add > m->max)
            return 0; /* CURLE_WRITE_ERROR: larger than allowed */
        if (m->len + add + 1 > m->cap) {
            size_t cap = (m->len + add + 1) * 2;
            char *nb = realloc(m->buf, cap);
            if (!nb)
                return 0;
            m->buf = nb;
            m->cap = cap;
        }
        memcpy(m->buf + m->len, ptr, add);
        m->len += add;
        m->buf[m->len] = 0;
        return add;
    }
    size_t len = size * n, room = sizeof m->resp - 1 - m->resp_len;
    memcpy(m->resp + m->resp_len, ptr, len < room ? len : room);
    m->resp_len += len < room ? len : room;
    return len;
}

static size_t cb_header(char *buf, size_t size, size_t n, void *userp)
{
    struct msg *m = userp;
    size_t len = size * n;
    if (len > 12 && strncasecmp(buf, "Retry-After:", 12) == 0) {
        char v[128];
        size_t k = len - 12 < sizeof v - 1 ? len - 12 : sizeof v - 1;
        memcpy(v, buf + 12, k);
        v[k] = 0;
        char *end;
        long secs = strtol(v, &end, 10);
        while (*end == ' ' || *end == '\r' || *end == '\n')
            end++;
        if (end != v && *end == 0 && secs >= 0) {
            m->retry_after = (double)secs;
        } else {
            time_t t = curl_getdate(v, NULL);
            if (t > 0)
                m->retry_after = difftime(t, time(NULL)) > 0 ? difftime(t, time(NULL)) : 0;
        }
    }
    return len;
}

/* ---------------------------------------------------------------- requests */

static bool add_header(struct curl_slist **h, const char *fmt, const char *v)
{
    char line[SECRET_MAX_LEN + 64];
    snprintf(line, sizeof line, fmt, v);
    struct curl_slist *n = curl_slist_append(*h, line);
    explicit_bzero(line, sizeof line); /* may have held a credential */
    if (!n)
        return false;
    *h = n;
    return true;
}

static void start_request(struct outbox *ob, int ch, long long id, int attempts, const char *key,
                          const char *method, const char *path, const char *body, bool probe)
{
    struct chan *c = &ob->ch[ch];
    struct msg *m = calloc(1, sizeof *m);
    size_t ulen = strlen(c->base) + strlen(path) + 1;
    if (!m)
        fatal("outbox: out of memory");
    m->ob = ob;
    m->ch = ch;
    m->id = id;
    m->attempts = attempts;
    m->probe = probe;
    m->url = malloc(ulen);
    m->body = strdup(body);
    m->e = curl_easy_init();
    if (!m->url || !m->body || !m->e)
        fatal("outbox: out of memory");
    snprintf(m->url, ulen, "%s%s", c->base, path);
    bool ok = add_header(&m->hdrs, "Content-Type: %s", "application/json") &&
              add_header(&m->hdrs, "Idempotency-Key: %s", key) &&
              add_header(&m->hdrs, "Expect:%s", "");
    if (ch == CH_SENDGRID || ch == CH_INTERCOM) {
        char auth[SECRET_MAX_LEN + 32];
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", c->secret);
        ok = ok && add_header(&m->hdrs, "%s", auth);
        explicit_bzero(auth, sizeof auth);
        if (ch == CH_INTERCOM)
            ok = ok && add_header(&m->hdrs, "Accept: %s", "application/json");
    } else if (ch == CH_ZENDESK) {
        curl_easy_setopt(m->e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(m->e, CURLOPT_USERPWD, c->secret);
    } else if (ch == CH_WEBHOOK) {
        char ts[24], *signed_text;
        uint8_t mac[32];
        char hex[65];
        snprintf(ts, sizeof ts, "%lld", (long long)time(NULL));
        size_t sl = strlen(ts) + 1 + strlen(body) + 1;
        signed_text = malloc(sl);
        if (!signed_text)
            fatal("outbox: out of memory");
        snprintf(signed_text, sl, "%s.%s", ts, body);
        crypto_hmac_sha256(c->secret, c->secret_len, signed_text, strlen(signed_text), mac);
        crypto_hex(mac, sizeof mac, hex);
        free(signed_text);
        ok = ok && add_header(&m->hdrs, "X-Csmcp-Timestamp: %s", ts) &&
             add_header(&m->hdrs, "X-Csmcp-Signature: v1=%s", hex);
    }
    if (!ok)
        fatal("outbox: out of memory");
    curl_easy_setopt(m->e, CURLOPT_URL, m->url);
    curl_easy_setopt(m->e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(m->e, CURLOPT_HTTPHEADER, m->hdrs);
    curl_easy_setopt(m->e, CURLOPT_POSTFIELDS, m->body);
    curl_easy_setopt(m->e, CURLOPT_POSTFIELDSIZE, (long)strlen(m->body));
    if (strcmp(method, "POST") != 0)
        curl_easy_setopt(m->e, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(m->e, CURLOPT_TIMEOUT_MS, (long)ob->cfg->integrations_timeout_ms);
    curl_easy_setopt(m->e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(m->e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(m->e, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(m->e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(m->e, CURLOPT_USERAGENT, "csmcp-monitor");
    curl_easy_setopt(m->e, CURLOPT_WRITEFUNCTION, cb_write);
    curl_easy_setopt(m->e, CURLOPT_WRITEDATA, m);
    curl_easy_setopt(m->e, CURLOPT_HEADERFUNCTION, cb_header);
    curl_easy_setopt(m->e, CURLOPT_HEADERDATA, m);
    curl_easy_setopt(m->e, CURLOPT_ERRORBUFFER, m->err);
    curl_easy_setopt(m->e, CURLOPT_PRIVATE, m);
    m->t0 = mono_s();
    m->next = ob->flying;
    if (ob->flying)
        ob->flying->prev = m;
    ob->flying = m;
    ob->inflight++;
    c->inflight++;
    metrics_gauge_set("csmcp_outbox_in_flight", NULL, ob->inflight);
    if (curl_multi_add_handle(ob->multi, m->e) != CURLM_OK) {
        snprintf(m->err, sizeof m->err, "curl_multi_add_handle failed");
        finish_msg(ob, m, CURLE_FAILED_INIT);
    }
}

struct claim {
    struct outbox *ob;
    int ch;
    bool probe;
};

static void on_claim(const PGresult *res, const char *err, void *arg)
{
    struct claim *cl = arg;
    struct outbox *ob = cl->ob;
    struct chan *c = &ob->ch[cl->ch];
    c->claiming = false;
    ob->claims--;
    if (!res) {
        log_error("outbox: claiming %s messages: %s", ch_name[cl->ch], err);
        if (cl->probe)
            c->probing = false;
    } else {
        if (PQntuples(res) == 0 && cl->probe)
            c->probing = false;
        for (int i = 0; i < PQntuples(res); i++)
            start_request(ob, cl->ch, strtoll(PQgetvalue(res, i, 0), NULL, 10),
                          atoi(PQgetvalue(res, i, 1)), PQgetvalue(res, i, 2), PQgetvalue(res, i, 3),
                          PQgetvalue(res, i, 4), PQgetvalue(res, i, 5), cl->probe);
        if (PQntuples(res) > 0) {
            int running;
            curl_multi_socket_action(ob->multi, CURL_SOCKET_TIMEOUT, 0, &running);
            check_done(ob);
        }
    }
    free(cl);
    check_idle(ob);
}

void outbox_tick(struct outbox *ob)
{
    if (ob->draining || !mconn_up(ob->db))
        return;
    double now = mono_s();
    for (int i = 0; i < CH_N; i++) {
        struct chan *c = &ob->ch[i];
        int room = ob->cfg->integrations_max_in_flight - ob->inflight;
        if (!c->usable || c->claiming || room <= 0)
            continue;
        bool probe = false;
        if (c->open_until != 0) {
            if (now < c->open_until || c->probing || c->inflight > 0)
                continue;
            if (!c->half_open) {
                c->half_open = true;
                breaker_transition(ob, i, "half_open");
            }
            probe = true;
            room = 1;
            c->probing = true;
        }
        struct claim *cl = calloc(1, sizeof *cl);
        if (!cl)
            fatal("outbox: out of memory");
        cl->ob = ob;
        cl->ch = i;
        cl->probe = probe;
        c->claiming = true;
        ob->claims++;
        char lim[16], lease[16];
        snprintf(lim, sizeof lim, "%d", room);
        snprintf(lease, sizeof lease, "%d", 2 * ob->cfg->integrations_timeout_ms / 1000 + 5);
        const char *p[4] = {ch_name[i], lim, lease, ob->by};
        mconn_query(ob->db,
                    "SELECT id, attempts, idempotency_key, method, path, body FROM "
                    "csmcp.outbox_claim($1, $2::integer, $3::integer, $4)",
                    4, p, on_claim, cl);
    }
}

/* ---------------------------------------------------------------- set-up */

static bool url_ok(const char *u)
{
    if (strncmp(u, "https://", 8) == 0)
        return true;
    /* plain http only to this host (tests with local fake servers) */
    return strncmp(u, "http://127.0.0.1:", 17) == 0 || strncmp(u, "http://localhost:", 17) == 0 ||
           strncmp(u, "http://[::1]:", 13) == 0;
}

static void trim(char *s, size_t *len)
{
    while (*len > 0 && (s[*len - 1] == '\n' || s[*len - 1] == '\r' || s[*len - 1] == ' '))
        s[--*len] = 0;
}

static void setup_channel(struct outbox *ob, int ch, const char *url, const char *file,
                          const char *cred)
{
    struct chan *c = &ob->ch[ch];
    char err[300], src[4300];
    int rc =
        secret_load(NULL, file, cred, &c->secret, &c->secret_len, src, sizeof src, err, sizeof err);
    set_breaker_gauge(ch, 0);
    if (rc < 0) {
        log_error("outbox: %s: credential: %s; the channel is not delivered by this host",
                  ch_name[ch], err);
        return;
    }
    if (rc == 1)
        return; /* not configured here */
    trim(c->secret, &c->secret_len);
    const char *base = ch == CH_SLACK ? c->secret : url;
    if (!base || !*base) {
        log_error("outbox: %s: credential present but no URL configured; not delivered",
                  ch_name[ch]);
        return;
    }
    if (!url_ok(base)) {
        log_error("outbox: %s: the URL must be https (http only to a loopback address); not "
                  "delivered",
                  ch_name[ch]);
        return;
    }
    c->base = strdup(base);
    if (!c->base)
        fatal("outbox: out of memory");
    /* no trailing slash on a base: paths start with one */
    size_t bl = strlen(c->base);
    if (ch != CH_SLACK && ch != CH_WEBHOOK && bl > 0 && c->base[bl - 1] == '/')
        c->base[bl - 1] = 0;
    c->usable = true;
    log_info("outbox: %s deliveries enabled on this host (credential from %s)", ch_name[ch], src);
}

struct outbox *outbox_new(struct event_base *base, const struct cfg *cfg, struct mconn *db,
                          const char *host, const char *pid)
{
    struct outbox *ob = calloc(1, sizeof *ob);
    if (!ob)
        fatal("outbox: out of memory");
    ob->base = base;
    ob->cfg = cfg;
    ob->db = db;
    snprintf(ob->by, sizeof ob->by, "%s:%s", host, pid);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        fatal("outbox: curl_global_init failed");
    ob->multi = curl_multi_init();
    ob->timer = evtimer_new(base, ev_timer, ob);
    ob->idle_ev = event_new(base, -1, 0, idle_fire, ob);
    if (!ob->multi || !ob->timer || !ob->idle_ev)
        fatal("outbox: set-up failed");
    curl_multi_setopt(ob->multi, CURLMOPT_SOCKETFUNCTION, cb_socket);
    curl_multi_setopt(ob->multi, CURLMOPT_SOCKETDATA, ob);
    curl_multi_setopt(ob->multi, CURLMOPT_TIMERFUNCTION, cb_timer);
    curl_multi_setopt(ob->multi, CURLMOPT_TIMERDATA, ob);
    setup_channel(ob, CH_SENDGRID, cfg->integrations_sendgrid_url,
                  cfg->integrations_sendgrid_key_file, "integrations.sendgrid");
    setup_channel(ob, CH_INTERCOM, cfg->integrations_intercom_url,
                  cfg->integrations_intercom_token_file, "integrations.intercom");
    setup_channel(ob, CH_ZENDESK, cfg->integrations_zendesk_url,
                  cfg->integrations_zendesk_credential_file, "integrations.zendesk");
    setup_channel(ob, CH_SLACK, NULL, cfg->integrations_slack_webhook_file, "integrations.slack");
    setup_channel(ob, CH_WEBHOOK, cfg->integrations_webhook_url,
                  cfg->integrations_webhook_secret_file, "integrations.webhook");
    metrics_gauge_set("csmcp_outbox_in_flight", NULL, 0);
    return ob;
}

void outbox_drain(struct outbox *ob, void (*idle_cb)(void))
{
    ob->draining = true;
    ob->idle_cb = idle_cb;
    check_idle(ob);
}

bool outbox_idle(const struct outbox *ob)
{
    return ob->inflight == 0 && ob->recording == 0 && ob->claims == 0;
}

int outbox_inflight(const struct outbox *ob)
{
    return ob->inflight;
}

void outbox_free(struct outbox *ob)
{
    if (!ob)
        return;
    /* requests still in flight (drain timeout): their rows keep their lease and are retried */
    for (struct msg *m = ob->flying, *n; m; m = n) {
        n = m->next;
        curl_multi_remove_handle(ob->multi, m->e);
        curl_easy_cleanup(m->e);
        curl_slist_free_all(m->hdrs);
        free(m->url);
        free(m->body);
        free(m->buf);
        if (m->userpwd) {
            explicit_bzero(m->userpwd, strlen(m->userpwd));
            free(m->userpwd);
        }
        free(m);
    }
    curl_multi_cleanup(ob->multi);
    event_free(ob->timer);
    event_free(ob->idle_ev);
    for (int i = 0; i < CH_N; i++) {
        secret_free(ob->ch[i].secret, ob->ch[i].secret_len);
        free(ob->ch[i].base);
    }
    curl_global_cleanup();
    free(ob);
}
