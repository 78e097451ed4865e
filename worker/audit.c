/*
 * audit.c - buffers audit records and appends them to the hash chain in batches through the
 * worker's PostgreSQL pool.
 *
 * Invariants: what is buffered is already scrubbed (arguments by scrub_json, detail by
 * scrub_text); the chain is built inside PostgreSQL under the audit_head row lock
 * (csmcp.audit_append_batch), so workers and hosts append to one chain; at most one batch per
 * worker is in flight, so this worker's records reach the chain in the order they happened;
 * the buffer is bounded (AUDIT_MAX_PENDING) and every record that is not written is counted.
 */
#include "audit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <event2/event.h>

#include "cfg.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "pgpool.h"
#include "scrub.h"

#define AUDIT_DETAIL_MAX 1000
#define AUDIT_ARGS_MAX   (64 * 1024)
#define AUDIT_RETRIES    5

static const char SQL_BATCH[] = "SELECT csmcp.audit_append_batch($1::jsonb)";

static struct {
    const struct cfg *cfg;
    struct pgpool *pg;
    struct event *timer;
    struct jbuf buf; /* "{...},{...}" records waiting for the next batch */
    size_t nbuf;
    char *inflight; /* "[...]" being written, or NULL */
    size_t ninflight;
    int attempts;
    bool busy; /* a batch query is outstanding */
    time_t last_drop_log;
} AU;

static void flush_now(void);

static void drop(size_t n, const char *why)
{
    time_t now = time(NULL);
    metrics_inc("csmcp_audit_dropped_total", NULL, n);
    if (now - AU.last_drop_log >= 10) {
        log_error("audit: %zu records not written: %s", n, why);
        AU.last_drop_log = now;
    }
}

static void arm_timer(void)
{
    struct timeval tv = {0, AUDIT_FLUSH_MS * 1000};
    if (AU.timer && !event_pending(AU.timer, EV_TIMEOUT, NULL))
        event_add(AU.timer, &tv);
}

static void forget_inflight(void)
{
    free(AU.inflight);
    AU.inflight = NULL;
    AU.ninflight = 0;
    AU.attempts = 0;
}

/* An attempt failed: keep the batch for the timer to resend, or give up after the retries. */
static void attempt_failed(bool retryable, const char *why)
{
    metrics_inc("csmcp_audit_write_failures_total", NULL, 1);
    if (retryable && AU.attempts < AUDIT_RETRIES) {
        log_warn("audit: batch of %zu records failed, will retry: %s", AU.ninflight, why);
    } else {
        drop(AU.ninflight, why);
        forget_inflight();
    }
    arm_timer();
}

static void batch_done(const PGresult *res, const char *err, const char *sqlstate, bool retryable,
                       void *arg)
{
    (void)arg;
    (void)sqlstate;
    AU.busy = false;
    if (res != NULL) {
        metrics_inc("csmcp_audit_records_total", NULL, AU.ninflight);
        forget_inflight();
        if (AU.nbuf > 0)
            arm_timer();
        return;
    }
    attempt_failed(retryable, err ? err : "database error");
}

static void flush_now(void)
{
    const char *params[1];

    if (AU.busy || AU.pg == NULL)
        return;
    if (AU.inflight == NULL) {
        struct jbuf b;
        if (AU.nbuf == 0)
            return;
        jbuf_init(&b);
        jbuf_putc(&b, '[');
        jbuf_append(&b, AU.buf.p, AU.buf.len);
        jbuf_putc(&b, ']');
        AU.inflight = jbuf_steal(&b);
        AU.ninflight = AU.nbuf;
        AU.attempts = 0;
        jbuf_reset(&AU.buf);
        AU.nbuf = 0;
    }
    params[0] = AU.inflight;
    AU.attempts++;
    AU.busy = true;
    if (pgpool_query(AU.pg, SQL_BATCH, 1, params, batch_done, NULL) < 0) {
        AU.busy = false;
        attempt_failed(true, "cannot queue the batch");
    }
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    flush_now();
}

static void put_str(struct jbuf *b, bool *first, const char *key, const char *v)
{
    if (v == NULL)
        return;
    json_key(b, first, key);
    json_str(b, v);
}

void audit_record(const struct audit_entry *e)
{
    char *args = NULL, detail[AUDIT_DETAIL_MAX + 1];
    size_t alen;
    struct timeval tv;
    bool first = true;

    if (AU.cfg == NULL || !AU.cfg->audit_enabled || AU.pg == NULL)
        return;
    if (AU.nbuf >= AUDIT_MAX_PENDING) {
        drop(1, "audit buffer full (database too slow or down)");
        return;
    }
    alen = e->args_json ? (e->args_len ? e->args_len : strlen(e->args_json)) : 0;
    if (alen > AUDIT_ARGS_MAX)
        args = strdup("{\"_truncated\":\"arguments larger than 64 KiB not recorded\"}");
    else if (alen > 0)
        args = scrub_json(e->args_json, alen);
    else
        args = strdup("{}");
    if (args == NULL) {
        drop(1, "out of memory");
        return;
    }
    snprintf(detail, sizeof(detail), "%s", e->detail ? e->detail : "");
    scrub_text(detail, sizeof(detail));
    long ms = (long)(e->latency_s * 1000.0 + 0.5);
    if (ms < 0)
        ms = 0;
    if (ms > 2000000000L)
        ms = 2000000000L;
    gettimeofday(&tv, NULL);

    if (AU.nbuf > 0)
        jbuf_putc(&AU.buf, ',');
    jbuf_putc(&AU.buf, '{');
    put_str(&AU.buf, &first, "principal", e->principal ? e->principal : "anonymous");
    put_str(&AU.buf, &first, "method", e->method ? e->method : "");
    put_str(&AU.buf, &first, "tool", e->tool);
    json_key(&AU.buf, &first, "args");
    jbuf_puts(&AU.buf, args);
    put_str(&AU.buf, &first, "outcome", e->outcome ? e->outcome : "unknown");
    json_key(&AU.buf, &first, "latency_ms");
    json_int(&AU.buf, ms);
    if (detail[0])
        put_str(&AU.buf, &first, "detail", detail);
    json_key(&AU.buf, &first, "at_us");
    json_int(&AU.buf, (long long)tv.tv_sec * 1000000LL + tv.tv_usec);
    jbuf_putc(&AU.buf, '}');
    AU.nbuf++;
    free(args);
    if (AU.nbuf >= AUDIT_BATCH && AU.inflight == NULL && !AU.busy)
        flush_now();
    else
        arm_timer();
}

size_t audit_flush(void)
{
    flush_now();
    return AU.nbuf + AU.ninflight;
}

int audit_init(struct event_base *base, const struct cfg *cfg, struct pgpool *pg)
{
    AU.cfg = cfg;
    AU.pg = pg;
    jbuf_init(&AU.buf);
    AU.timer = event_new(base, -1, 0, timer_cb, NULL);
    return AU.timer ? 0 : -1;
}

void audit_shutdown(void)
{
    if (AU.nbuf + AU.ninflight > 0)
        drop(AU.nbuf + AU.ninflight, "worker exiting");
    if (AU.timer)
        event_free(AU.timer);
    AU.timer = NULL;
    jbuf_free(&AU.buf);
    AU.nbuf = 0;
    free(AU.inflight);
    AU.inflight = NULL;
    AU.ninflight = 0;
    AU.pg = NULL;
}
