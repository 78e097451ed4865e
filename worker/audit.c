/*
 * audit.c - buffers audit records and appends them to the hash chain in batches through the
 * worker's PostgreSQL pool.
 *
 * Invariants: what is buffered is already scrubbed (arguments by scrub_json, detail by
 * scrub_text) and is well-formed UTF-8 JSON (a text field that is not valid UTF-8 is stored as
 * "hex:<hex>", arguments that are not JSON as {"_hex": ...}, with "encoded": true); the chain
 * is built inside PostgreSQL under the audit_head row lock (csmcp.audit_append_batch), so
 * workers and hosts append to one chain; at most one batch per worker is in flight, so this
 * worker's records reach the chain in the order they happened; every record carries this
 * worker's writer id and a sequence number assigned when it is made, so a record that never
 * reaches the table leaves a gap `csmcpctl audit verify` reports.
 *
 * One bad record never costs another: when PostgreSQL refuses a batch for its data (SQLSTATE
 * class 22, 23, 54), the batch is re-sent record by record, in order; a record refused on its
 * own is re-sent once in its safe form (every text field checked, arguments hex-encoded,
 * "encoded": true). Only a record whose safe form is refused too is dropped (counted, logged,
 * and visible as a gap). audit.on_failure = refuse (issue 26): tool calls wait for their
 * record to be committed (audit_record_wait), transient failures are retried without limit,
 * and while audit.max_pending records wait new calls are refused before they run
 * (audit_accepting) - backpressure, not loss. drop: the old behaviour, records beyond the
 * bound or past AUDIT_RETRIES failures are dropped (counted; a gap in audit verify).
 */
#include "audit.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "cfg.h"
#include "crypto.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "pgpool.h"
#include "scrub.h"
#include "spool.h"

#define AUDIT_DETAIL_MAX 1000
#define AUDIT_ARGS_MAX   (64 * 1024)
#define AUDIT_HEX_MAX    4096 /* raw bytes kept (hex-encoded) of unparseable arguments */
#define AUDIT_RETRIES    5
#define AGG_SLOTS        256 /* distinct aggregation keys per interval; then one overflow slot */

static const char SQL_BATCH[] = "SELECT csmcp.audit_append_batch($1::jsonb)";
/* idempotent by (writer, seq): retries whose first attempt may have committed, and leftovers of
 * dead writers' spools (migration 0121, db/functions/audit/audit_ship_batch.sql) */
static const char SQL_SHIP[] = "SELECT csmcp.audit_ship_batch($1::jsonb)";

#define RECOVER_TICK_MS 1000 /* leftover scan, ship-lag gauge */

struct audit_waiter {
    audit_durable_fn cb; /* NULL once detached */
    void *arg;
    long long seq;
};

struct rec {
    char *json; /* one record: {...} */
    size_t len;
    long long seq;
    long long at_us;
};

/* Tool calls waiting for their record, in record order (ring). A waiter is answered once its
 * record is committed in PostgreSQL, or fsynced in the spool while the ship lag (records made
 * but not yet in PostgreSQL) is at most AU.hold - so a database slower than the workers slows
 * the answers down instead of filling the backlog until calls are refused. */
static struct {
    struct audit_waiter **v;
    size_t head, n, cap;
} WQ;

static struct {
    const struct cfg *cfg;
    struct pgpool *pg;
    struct event *timer;
    struct rec *buf; /* records waiting for a batch: buf[bhead..nbuf-1], oldest first */
    size_t bhead, nbuf, capbuf;
    struct rec *fl; /* the batch being written */
    size_t nfl, capfl;
    size_t split; /* < nfl: sending record fl[split] alone (after a data error) */
    bool splitting;
    bool safe_sent; /* fl[split] is its safe form already */
    int attempts;
    bool busy; /* a batch query is outstanding */
    time_t last_drop_log;
    char writer[48];
    long long seq;
    long long pg_done; /* every record <= pg_done is in PostgreSQL (or dropped for good) */
    long long spool_durable;
    long long hold; /* spool acknowledgements wait while more records than this are unshipped */
    bool spooling;
    char dbid[33];
    /* leftovers of dead writers' spools */
    struct event *rtimer;
    struct spool_leftover *left;
    bool rbusy;
    size_t rn;      /* records in the batch being shipped */
    size_t rsingle; /* > 0: after a data error, ship this many records one by one */
    bool rsafe;     /* the single record is being sent in its safe form */
    char *rbatch;
    unsigned long long rshipped;
} AU;

struct agg {
    char key[240]; /* principal \x1f method \x1f outcome \x1f detail[:60]; "" = free */
    char principal[100], method[40], outcome[24], detail[200];
    long long recorded, suppressed;
    struct timeval first, last;
};

static struct {
    struct agg slot[AGG_SLOTS + 1]; /* [AGG_SLOTS]: everything once the table is full */
    int used;
    struct event *timer;
} AG;

static void flush_now(void);
static size_t backlog(void);

static bool refuse_mode(void)
{
    return AU.cfg && AU.cfg->audit_on_failure && strcmp(AU.cfg->audit_on_failure, "drop") != 0;
}

static size_t backlog(void)
{
    return AU.nbuf - AU.bhead + AU.nfl - (AU.splitting ? AU.split : 0);
}

static struct audit_waiter *wq_front(void);

/*
 * refuse mode: ship the buffered records now, or let them gather for AUDIT_SHIP_MS? While the
 * spool acknowledges the calls (their records are fsynced there and the ship lag is within
 * AU.hold) and AUDIT_SHIP_EAGER or more calls wait, nobody needs the PostgreSQL commit, so the
 * records go in fewer, larger batches:
 * PostgreSQL spends ~1 ms of CPU per batch besides the per-record work (function call, row lock,
 * audit_head update, commit and WAL flush; docs/performance.md). Without the spool, or once a
 * waiting call needs the commit, a batch goes at once (group commit).
 */
static bool ship_now(void)
{
    /* few callers (the last spool group held fewer than AUDIT_SHIP_EAGER records): latency
     * matters more than PostgreSQL's per-batch CPU, and the commit may come before the spool's
     * fsync (a call is answered by whichever makes its record durable first) */
    if (!AU.spooling || spool_last_group() < AUDIT_SHIP_EAGER || AU.nbuf - AU.bhead >= AUDIT_BATCH)
        return true;
    struct audit_waiter *w = wq_front();
    return w != NULL && w->seq - AU.pg_done > AU.hold;
}

/* Seconds since the oldest record not yet in PostgreSQL was made (0: none). */
static double ship_lag(void)
{
    const struct rec *r = NULL;
    if (AU.nfl > (AU.splitting ? AU.split : 0))
        r = &AU.fl[AU.splitting ? AU.split : 0];
    else if (AU.nbuf > AU.bhead)
        r = &AU.buf[AU.bhead];
    if (r == NULL)
        return 0;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    double lag = ((double)tv.tv_sec * 1e6 + (double)tv.tv_usec - (double)r->at_us) / 1e6;
    return lag > 0 ? lag : 0;
}

static void gauge_backlog(void)
{
    metrics_gauge_set("csmcp_audit_queue_depth", NULL, (double)backlog());
    if (AU.spooling)
        metrics_gauge_set("csmcp_audit_spool_records", NULL, (double)(AU.seq - AU.pg_done));
}

/* Waiters taken off the queue, answered after the queue's state is consistent (a callback may
 * record again). */
struct notify_list {
    struct audit_waiter **w;
    size_t n, cap;
};

static void notify_push(struct notify_list *l, struct audit_waiter *w)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        struct audit_waiter **nw = realloc(l->w, cap * sizeof *nw);
        if (nw == NULL)
            abort();
        l->w = nw;
        l->cap = cap;
    }
    l->w[l->n++] = w;
}

static void notify_run(struct notify_list *l, bool ok)
{
    for (size_t i = 0; i < l->n; i++) {
        if (l->w[i]->cb)
            l->w[i]->cb(ok, l->w[i]->arg);
        free(l->w[i]);
    }
    free(l->w);
    l->w = NULL;
    l->n = l->cap = 0;
}

static void wq_push(struct audit_waiter *w)
{
    if (WQ.n == WQ.cap) {
        size_t cap = WQ.cap ? WQ.cap * 2 : 256;
        struct audit_waiter **nv = malloc(cap * sizeof *nv);
        if (nv == NULL)
            abort();
        for (size_t i = 0; i < WQ.n; i++)
            nv[i] = WQ.v[(WQ.head + i) % WQ.cap];
        free(WQ.v);
        WQ.v = nv;
        WQ.cap = cap;
        WQ.head = 0;
    }
    WQ.v[(WQ.head + WQ.n) % WQ.cap] = w;
    WQ.n++;
}

static struct audit_waiter *wq_front(void)
{
    return WQ.n ? WQ.v[WQ.head] : NULL;
}

static void wq_pop(void)
{
    WQ.head = (WQ.head + 1) % WQ.cap;
    WQ.n--;
}

/* Answers every waiter whose record is durable (committed, or spooled within the hold). */
static void answer_durable(void)
{
    struct notify_list ok = {0};
    struct audit_waiter *w;
    while ((w = wq_front()) != NULL &&
           (w->seq <= AU.pg_done ||
            (AU.spooling && w->seq <= AU.spool_durable && w->seq - AU.pg_done <= AU.hold))) {
        wq_pop();
        notify_push(&ok, w);
    }
    notify_run(&ok, true);
}

/* Record seq will never be stored: the waiters before it are answered (committed), its own
 * waiter - unless the spool already acknowledged it - hears false. */
static void answer_failed(long long seq)
{
    struct notify_list ok = {0}, failed = {0};
    struct audit_waiter *w;
    while ((w = wq_front()) != NULL && w->seq <= seq) {
        wq_pop();
        notify_push(w->seq < seq ? &ok : &failed, w);
    }
    notify_run(&ok, true);
    notify_run(&failed, false);
}

static void set_pg_done(long long seq)
{
    if (seq > AU.pg_done) {
        AU.pg_done = seq;
        if (AU.spooling)
            spool_shipped(seq);
    }
}

void audit_waiter_detach(struct audit_waiter *w)
{
    if (w)
        w->cb = NULL;
}

bool audit_accepting(void)
{
    if (AU.cfg == NULL || !AU.cfg->audit_enabled || AU.pg == NULL || !refuse_mode())
        return true;
    return backlog() < (size_t)AU.cfg->audit_max_pending;
}

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
    struct timeval tv = {0, (AU.spooling ? AUDIT_SHIP_MS : AUDIT_FLUSH_MS) * 1000};
    if (refuse_mode() && AU.attempts > 1) {
        /* retrying a batch: back off up to 1 s (the records stay, nothing is dropped) */
        long ms = AUDIT_FLUSH_MS << (AU.attempts < 6 ? AU.attempts - 1 : 5);
        if (ms > 1000)
            ms = 1000;
        tv.tv_sec = ms / 1000;
        tv.tv_usec = (ms % 1000) * 1000;
    }
    if (AU.timer && !event_pending(AU.timer, EV_TIMEOUT, NULL))
        event_add(AU.timer, &tv);
}

/* Frees the batch (its records are in PostgreSQL, or dropped: the caller answers the
 * waiters). */
static void forget_inflight(void)
{
    for (size_t i = 0; i < AU.nfl; i++)
        free(AU.fl[i].json);
    AU.nfl = 0;
    AU.split = 0;
    AU.splitting = false;
    AU.safe_sent = false;
    AU.attempts = 0;
}

static void put_hex(struct jbuf *b, const char *prefix, const void *data, size_t n)
{
    static const char hx[] = "0123456789abcdef";
    const unsigned char *p = data;
    jbuf_putc(b, '"');
    jbuf_puts(b, prefix);
    for (size_t i = 0; i < n; i++) {
        jbuf_putc(b, hx[p[i] >> 4]);
        jbuf_putc(b, hx[p[i] & 15]);
    }
    jbuf_putc(b, '"');
}

/* "key":"value", or "key":"hex:..." when value is not valid UTF-8 (*encoded set). */
static void put_safe(struct jbuf *b, bool *first, const char *key, const char *v, size_t n,
                     bool *encoded)
{
    json_key(b, first, key);
    if (json_utf8_valid(v, n) && memchr(v, '\0', n) == NULL) {
        json_strn(b, v, n);
    } else {
        put_hex(b, "hex:", v, n);
        *encoded = true;
    }
}

/* {"_hex":"<first AUDIT_HEX_MAX bytes>","_bytes":n[,"_truncated":true]} */
static void put_hex_args(struct jbuf *b, const char *data, size_t n)
{
    jbuf_puts(b, "{\"_hex\":");
    put_hex(b, "", data, n > AUDIT_HEX_MAX ? AUDIT_HEX_MAX : n);
    jbuf_printf(b, ",\"_bytes\":%zu%s}", n, n > AUDIT_HEX_MAX ? ",\"_truncated\":true" : "");
}

static void put_tail(struct jbuf *b, bool *first, const char *writer, long long seq, bool encoded)
{
    json_key(b, first, "writer");
    json_str(b, writer);
    json_key(b, first, "seq");
    json_int(b, seq);
    if (encoded) {
        json_key(b, first, "encoded");
        jbuf_puts(b, "true");
    }
    jbuf_putc(b, '}');
}

/*
 * The safe form of a record PostgreSQL refused: the same fields, arguments hex-encoded. The
 * record is our own JSON; should it not parse, the whole text goes hex-encoded under args.
 */
static char *safe_form(const char *writer, const struct rec *r, size_t *len)
{
    char err[160];
    struct jbuf b;
    bool first = true, enc = true;
    yajl_val v = json_parse(r->json, r->len, 64, r->len + 1, err, sizeof err);
    jbuf_init(&b);
    jbuf_putc(&b, '{');
    if (v == NULL) {
        put_safe(&b, &first, "principal", "unknown", 7, &enc);
        put_safe(&b, &first, "method", "audit.unparseable_record", 24, &enc);
        json_key(&b, &first, "args");
        put_hex_args(&b, r->json, r->len);
        put_safe(&b, &first, "outcome", "encoded", 7, &enc);
    } else {
        static const char *const text[] = {"principal", "method", "tool", "outcome", "detail"};
        for (size_t i = 0; i < sizeof text / sizeof text[0]; i++) {
            const char *s = json_get_str(v, text[i]);
            if (s)
                put_safe(&b, &first, text[i], s, strlen(s), &enc);
        }
        long long n;
        if (json_get_int(v, "latency_ms", &n)) {
            json_key(&b, &first, "latency_ms");
            json_int(&b, n);
        }
        if (json_get_int(v, "at_us", &n)) {
            json_key(&b, &first, "at_us");
            json_int(&b, n);
        }
        struct jbuf a;
        jbuf_init(&a);
        json_val(&a, json_get(v, "args"));
        json_key(&b, &first, "args");
        put_hex_args(&b, a.p, a.len);
        jbuf_free(&a);
        yajl_tree_free(v);
    }
    put_tail(&b, &first, writer, r->seq, true);
    *len = b.len;
    return jbuf_steal(&b);
}

/* SQLSTATE classes that blame the data (so another record of the batch may be fine):
 * 22 data exception (invalid byte sequence, untranslatable character, numeric out of range,
 * invalid JSON text), 23 integrity constraint, 54 program limit (too deep, too long). A
 * failure without a SQLSTATE that is not transient is treated the same way. */
static bool data_error(const char *sqlstate)
{
    return sqlstate == NULL || strncmp(sqlstate, "22", 2) == 0 || strncmp(sqlstate, "23", 2) == 0 ||
           strncmp(sqlstate, "54", 2) == 0;
}

static void batch_done(const PGresult *res, const char *err, const char *sqlstate, bool retryable,
                       void *arg)
{
    (void)arg;
    AU.busy = false;
    if (res != NULL) {
        if (AU.splitting) {
            metrics_inc("csmcp_audit_records_total", NULL, 1);
            if (AU.safe_sent)
                metrics_inc("csmcp_audit_encoded_total", NULL, 1);
            set_pg_done(AU.fl[AU.split].seq);
            AU.split++;
            AU.safe_sent = false;
            AU.attempts = 0;
            if (AU.split < AU.nfl) {
                flush_now();
                gauge_backlog();
                answer_durable();
                return;
            }
        } else {
            metrics_inc("csmcp_audit_records_total", NULL, AU.nfl);
            set_pg_done(AU.fl[AU.nfl - 1].seq);
        }
        forget_inflight();
        if (AU.nbuf > AU.bhead) {
            if (refuse_mode() && ship_now())
                flush_now(); /* group commit: what arrived meanwhile goes now */
            else
                arm_timer();
        }
        gauge_backlog();
        answer_durable();
        return;
    }
    metrics_inc("csmcp_audit_write_failures_total", NULL, 1);
    const char *why = err ? err : "database error";
    if (!retryable && data_error(sqlstate)) {
        long long failed_seq = 0;
        if (!AU.splitting) {
            /* one record spoiled the batch: find it, write the others */
            log_warn("audit: batch of %zu records refused (%s: %s); writing them one by one",
                     AU.nfl, sqlstate ? sqlstate : "?", why);
            metrics_inc("csmcp_audit_batch_splits_total", NULL, 1);
            AU.splitting = true;
            AU.split = 0;
            AU.safe_sent = false;
        } else if (!AU.safe_sent) {
            struct rec *r = &AU.fl[AU.split];
            size_t len;
            char *safe = safe_form(AU.writer, r, &len);
            log_warn("audit: record %s#%lld refused (%s: %s); storing it in safe (encoded) form",
                     AU.writer, r->seq, sqlstate ? sqlstate : "?", why);
            free(r->json);
            r->json = safe;
            r->len = len;
            AU.safe_sent = true;
        } else {
            drop(1, why);
            failed_seq = AU.fl[AU.split].seq;
            set_pg_done(failed_seq);
            AU.split++;
            AU.safe_sent = false;
            if (AU.split >= AU.nfl)
                forget_inflight();
        }
        AU.attempts = 0;
        flush_now();
        gauge_backlog();
        if (failed_seq)
            answer_failed(failed_seq);
        return;
    }
    if (refuse_mode() || AU.attempts < AUDIT_RETRIES) {
        /* refuse: transient failures are retried until the database takes the records */
        if (AU.attempts <= AUDIT_RETRIES || AU.attempts % 20 == 0)
            log_warn("audit: batch of %zu records failed (attempt %d), will retry: %s", AU.nfl,
                     AU.attempts, why);
    } else {
        drop(AU.nfl - (AU.splitting ? AU.split : 0), why);
        set_pg_done(AU.fl[AU.nfl - 1].seq);
        forget_inflight();
    }
    arm_timer();
    gauge_backlog();
}

static void flush_now(void)
{
    const char *params[1];
    struct jbuf b;

    if (AU.busy || AU.pg == NULL)
        return;
    if (AU.nfl == 0) {
        if (AU.nbuf == AU.bhead)
            return;
        /* at most AUDIT_BATCH records per batch: after an outage the backlog is shipped in
         * batches of bounded size (one huge batch held the chain lock for minutes) */
        size_t k = AU.nbuf - AU.bhead;
        if (k > AUDIT_BATCH)
            k = AUDIT_BATCH;
        if (AU.capfl < k) {
            struct rec *n = realloc(AU.fl, AUDIT_BATCH * sizeof *n);
            if (n == NULL)
                return; /* retried by the timer */
            AU.fl = n;
            AU.capfl = AUDIT_BATCH;
        }
        memcpy(AU.fl, AU.buf + AU.bhead, k * sizeof *AU.fl);
        AU.nfl = k;
        AU.bhead += k;
        if (AU.bhead == AU.nbuf)
            AU.bhead = AU.nbuf = 0;
        AU.attempts = 0;
        AU.splitting = false;
    }
    jbuf_init(&b);
    jbuf_putc(&b, '[');
    if (AU.splitting) {
        jbuf_append(&b, AU.fl[AU.split].json, AU.fl[AU.split].len);
    } else {
        for (size_t i = 0; i < AU.nfl; i++) {
            if (i)
                jbuf_putc(&b, ',');
            jbuf_append(&b, AU.fl[i].json, AU.fl[i].len);
        }
    }
    jbuf_putc(&b, ']');
    params[0] = jbuf_cstr(&b);
    AU.attempts++;
    AU.busy = true;
    /* a retry may follow a commit whose answer was lost: the idempotent function then */
    if (pgpool_query(AU.pg, AU.attempts > 1 ? SQL_SHIP : SQL_BATCH, 1, params, batch_done, NULL) <
        0) {
        AU.busy = false;
        metrics_inc("csmcp_audit_write_failures_total", NULL, 1);
        if (!refuse_mode() && AU.attempts >= AUDIT_RETRIES) {
            drop(AU.nfl - (AU.splitting ? AU.split : 0), "cannot queue the batch");
            set_pg_done(AU.fl[AU.nfl - 1].seq);
            forget_inflight();
        }
        arm_timer();
        jbuf_free(&b);
        return;
    }
    jbuf_free(&b);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    flush_now();
}

static enum audit_wait record(const struct audit_entry *e, audit_durable_fn cb, void *arg,
                              struct audit_waiter **out);

void audit_record(const struct audit_entry *e)
{
    record(e, NULL, NULL, NULL);
}

enum audit_wait audit_record_wait(const struct audit_entry *e, audit_durable_fn cb, void *arg,
                                  struct audit_waiter **w)
{
    *w = NULL;
    if (!refuse_mode()) {
        record(e, NULL, NULL, NULL);
        return AUDIT_NOT_WAITING;
    }
    return record(e, cb, arg, w);
}

static enum audit_wait record(const struct audit_entry *e, audit_durable_fn cb, void *arg,
                              struct audit_waiter **out)
{
    char *args = NULL, detail[AUDIT_DETAIL_MAX + 1];
    size_t alen;
    struct timeval tv;
    bool first = true, enc = false;
    struct jbuf b;

    if (AU.cfg == NULL || !AU.cfg->audit_enabled || AU.pg == NULL)
        return AUDIT_NOT_WAITING;
    /* numbered before anything can lose it: a record not written is a gap in this sequence */
    long long seq = ++AU.seq;
    /* A record a tool call waits for is always kept (its call was admitted while the backlog
     * was under audit.max_pending: audit_accepting); others are dropped beyond the bound. */
    if (cb == NULL && backlog() >= (size_t)AU.cfg->audit_max_pending) {
        drop(1, "audit buffer full (database too slow or down)");
        return AUDIT_NOT_WAITING;
    }
    if (AU.nbuf == AU.capbuf && AU.bhead > 0) {
        /* the shipped front of the queue is free again */
        memmove(AU.buf, AU.buf + AU.bhead, (AU.nbuf - AU.bhead) * sizeof *AU.buf);
        AU.nbuf -= AU.bhead;
        AU.bhead = 0;
    }
    if (AU.nbuf == AU.capbuf) {
        size_t cap = AU.capbuf ? AU.capbuf * 2 : 64;
        struct rec *n = realloc(AU.buf, cap * sizeof *n);
        if (n == NULL) {
            drop(1, "out of memory");
            return AUDIT_NOT_WAITING;
        }
        AU.buf = n;
        AU.capbuf = cap;
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
        return AUDIT_NOT_WAITING;
    }
    snprintf(detail, sizeof(detail), "%s", e->detail ? e->detail : "");
    scrub_text(detail, sizeof(detail));
    long ms = (long)(e->latency_s * 1000.0 + 0.5);
    if (ms < 0)
        ms = 0;
    if (ms > 2000000000L)
        ms = 2000000000L;
    gettimeofday(&tv, NULL);

    const char *principal = e->principal ? e->principal : "anonymous";
    const char *method = e->method ? e->method : "";
    const char *outcome = e->outcome ? e->outcome : "unknown";
    jbuf_init(&b);
    jbuf_putc(&b, '{');
    put_safe(&b, &first, "principal", principal, strlen(principal), &enc);
    put_safe(&b, &first, "method", method, strlen(method), &enc);
    if (e->tool)
        put_safe(&b, &first, "tool", e->tool, strlen(e->tool), &enc);
    json_key(&b, &first, "args");
    if (e->raw != NULL) {
        /* a refused request's bytes (not JSON, or not valid UTF-8): kept, hex-encoded */
        put_hex_args(&b, e->raw, e->raw_len);
        enc = true;
    } else if (alen > 0 && alen <= AUDIT_ARGS_MAX && strcmp(args, SCRUB_UNPARSEABLE) == 0) {
        put_hex_args(&b, e->args_json, alen);
        enc = true;
    } else {
        jbuf_puts(&b, args);
    }
    put_safe(&b, &first, "outcome", outcome, strlen(outcome), &enc);
    json_key(&b, &first, "latency_ms");
    json_int(&b, ms);
    if (detail[0])
        put_safe(&b, &first, "detail", detail, strlen(detail), &enc);
    long long at_us = (long long)tv.tv_sec * 1000000LL + tv.tv_usec;
    json_key(&b, &first, "at_us");
    json_int(&b, at_us);
    put_tail(&b, &first, AU.writer, seq, enc);
    free(args);
    if (enc)
        metrics_inc("csmcp_audit_encoded_total", NULL, 1);
    struct audit_waiter *w = NULL;
    if (cb) {
        w = calloc(1, sizeof *w);
        if (w == NULL)
            abort();
        w->cb = cb;
        w->arg = arg;
        w->seq = seq;
        *out = w;
        wq_push(w);
    }
    AU.buf[AU.nbuf].len = b.len;
    AU.buf[AU.nbuf].json = jbuf_steal(&b);
    AU.buf[AU.nbuf].seq = seq;
    AU.buf[AU.nbuf].at_us = at_us;
    if (AU.spooling)
        spool_append(AU.buf[AU.nbuf].json, AU.buf[AU.nbuf].len, seq);
    AU.nbuf++;
    if (AU.nfl == 0 && !AU.busy && (refuse_mode() ? ship_now() : AU.nbuf - AU.bhead >= AUDIT_BATCH))
        flush_now(); /* refuse: group commit, no waiting for the timer (unless spooled) */
    else
        arm_timer();
    if (AU.busy)
        gauge_backlog(); /* while a batch is out (its end sets it too) */
    return w ? AUDIT_QUEUED : AUDIT_NOT_WAITING;
}

/* Summaries of what was suppressed in the interval, then a clean table. */
static void agg_flush(void)
{
    for (int i = 0; i <= AGG_SLOTS; i++) {
        struct agg *g = &AG.slot[i];
        if (g->key[0] && g->suppressed > 0) {
            char args[200], detail[300];
            snprintf(args, sizeof args,
                     "{\"suppressed\":%lld,\"recorded\":%lld,\"first_us\":%lld,\"last_us\":%lld,"
                     "\"interval_s\":%d}",
                     g->suppressed, g->recorded,
                     (long long)g->first.tv_sec * 1000000LL + g->first.tv_usec,
                     (long long)g->last.tv_sec * 1000000LL + g->last.tv_usec, AUDIT_AGG_INTERVAL_S);
            snprintf(detail, sizeof detail, "%lld more not recorded one by one (aggregated)%s%s",
                     g->suppressed, g->detail[0] ? ": " : "", g->detail);
            struct audit_entry e = {.principal = g->principal,
                                    .method = g->method,
                                    .args_json = args,
                                    .outcome = g->outcome,
                                    .detail = detail};
            audit_record(&e);
            metrics_inc("csmcp_audit_aggregated_total", NULL, (unsigned long long)g->suppressed);
        }
        g->key[0] = '\0';
    }
    AG.used = 0;
}

static void agg_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    agg_flush();
}

void audit_record_aggregated(const struct audit_entry *e, int individual)
{
    char key[sizeof AG.slot[0].key];
    if (AU.cfg == NULL || !AU.cfg->audit_enabled || AU.pg == NULL)
        return;
    const char *principal = e->principal ? e->principal : "anonymous";
    const char *method = e->method ? e->method : "";
    const char *outcome = e->outcome ? e->outcome : "unknown";
    snprintf(key, sizeof key, "%.99s\x1f%.39s\x1f%.23s\x1f%.60s", principal, method, outcome,
             e->detail ? e->detail : "");
    uint32_t h = 2166136261u;
    for (const char *p = key; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    struct agg *g = NULL;
    for (int i = 0; i < AGG_SLOTS; i++) {
        struct agg *c = &AG.slot[(h + (uint32_t)i) % AGG_SLOTS];
        if (c->key[0] == '\0' || strcmp(c->key, key) == 0) {
            g = c;
            break;
        }
    }
    if (g == NULL) {
        /* table full: one overflow bucket, nothing recorded one by one */
        g = &AG.slot[AGG_SLOTS];
        individual = 0;
        if (g->key[0] == '\0') {
            snprintf(g->key, sizeof g->key, "overflow");
            snprintf(g->principal, sizeof g->principal, "(many)");
            snprintf(g->method, sizeof g->method, "%s", method);
            snprintf(g->outcome, sizeof g->outcome, "%s", outcome);
            snprintf(g->detail, sizeof g->detail, "more than %d distinct sources", AGG_SLOTS);
            g->recorded = g->suppressed = 0;
            gettimeofday(&g->first, NULL);
        }
    } else if (g->key[0] == '\0') {
        snprintf(g->key, sizeof g->key, "%s", key);
        snprintf(g->principal, sizeof g->principal, "%s", principal);
        snprintf(g->method, sizeof g->method, "%s", method);
        snprintf(g->outcome, sizeof g->outcome, "%s", outcome);
        snprintf(g->detail, sizeof g->detail, "%s", e->detail ? e->detail : "");
        g->recorded = g->suppressed = 0;
        gettimeofday(&g->first, NULL);
        AG.used++;
    }
    gettimeofday(&g->last, NULL);
    if (AG.timer && !event_pending(AG.timer, EV_TIMEOUT, NULL)) {
        struct timeval tv = {AUDIT_AGG_INTERVAL_S, 0};
        event_add(AG.timer, &tv);
    }
    if (g->recorded < individual) {
        g->recorded++;
        audit_record(e);
    } else {
        g->suppressed++;
    }
}

/* ---- leftovers of dead writers' spools ----------------------------------------------------
 * A killed worker (or a host restart) leaves segments whose records may not be in PostgreSQL
 * yet. Every RECOVER_TICK_MS a worker claims (flock) the oldest segment of a writer that is
 * gone and ships it in order through csmcp.audit_ship_batch, which skips the records already
 * in the chain (unique (writer, seq)), so a re-ship never duplicates. One batch in flight;
 * transient failures are retried on the next tick from the same position; a batch refused for
 * its data is re-sent record by record, a record refused alone goes in its safe form. */

static void recover_arm(long ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    if (AU.rtimer && !event_pending(AU.rtimer, EV_TIMEOUT, NULL))
        event_add(AU.rtimer, &tv);
}

static void recover_next(void);

static void recover_done(const PGresult *res, const char *err, const char *sqlstate, bool retryable,
                         void *arg)
{
    (void)arg;
    AU.rbusy = false;
    if (AU.left == NULL) /* shutting down */
        return;
    if (res != NULL) {
        AU.rshipped += AU.rn;
        metrics_inc("csmcp_audit_spool_recovered_total", NULL, AU.rn);
        if (AU.rsingle > 0)
            AU.rsingle--;
        AU.rsafe = false;
        free(AU.rbatch);
        AU.rbatch = NULL;
        recover_next();
        return;
    }
    metrics_inc("csmcp_audit_write_failures_total", NULL, 1);
    if (!retryable && data_error(sqlstate)) {
        if (AU.rsingle == 0 && AU.rn > 1) {
            log_warn("audit: leftover batch of %zu records from %s refused (%s: %s); shipping "
                     "them one by one",
                     AU.rn, spool_leftover_path(AU.left), sqlstate ? sqlstate : "?",
                     err ? err : "?");
            AU.rsingle = AU.rn;
            spool_leftover_rewind(AU.left);
            free(AU.rbatch);
            AU.rbatch = NULL;
            recover_next();
            return;
        }
        if (!AU.rsafe) {
            /* [rec] -> [safe form of rec] */
            char e[160];
            yajl_val v = json_parse(AU.rbatch + 1, strlen(AU.rbatch) - 2, 64, strlen(AU.rbatch), e,
                                    sizeof e);
            struct rec r = {.json = AU.rbatch + 1, .len = strlen(AU.rbatch) - 2};
            const char *w = v ? json_get_str(v, "writer") : NULL;
            char writer[64];
            snprintf(writer, sizeof writer, "%s", w ? w : "unknown");
            if (v == NULL || !json_get_int(v, "seq", &r.seq))
                r.seq = 0;
            if (v)
                yajl_tree_free(v);
            size_t len;
            char *safe = safe_form(writer, &r, &len);
            char *nb = malloc(len + 3);
            if (nb == NULL)
                abort();
            nb[0] = '[';
            memcpy(nb + 1, safe, len);
            nb[len + 1] = ']';
            nb[len + 2] = '\0';
            free(safe);
            free(AU.rbatch);
            AU.rbatch = nb;
            AU.rsafe = true;
            log_warn("audit: leftover record from %s refused (%s); shipping its safe form",
                     spool_leftover_path(AU.left), sqlstate ? sqlstate : "?");
        } else {
            drop(1, err ? err : "leftover record refused in safe form too");
            AU.rsafe = false;
            if (AU.rsingle > 0)
                AU.rsingle--;
            free(AU.rbatch);
            AU.rbatch = NULL;
            recover_next();
            return;
        }
        const char *params[1] = {AU.rbatch};
        AU.rbusy = true;
        if (pgpool_query(AU.pg, SQL_SHIP, 1, params, recover_done, NULL) < 0) {
            AU.rbusy = false;
            recover_arm(RECOVER_TICK_MS);
        }
        return;
    }
    /* transient: the same records again on the next tick */
    spool_leftover_rewind(AU.left);
    free(AU.rbatch);
    AU.rbatch = NULL;
    AU.rsafe = false;
    recover_arm(RECOVER_TICK_MS);
}

/* Ships the next batch of the claimed segment, or finishes it. */
static void recover_next(void)
{
    char *out;
    size_t n;
    uint64_t torn;
    if (AU.left == NULL || AU.rbusy)
        return;
    int rc = spool_leftover_read(AU.left, AU.rsingle > 0 ? 1 : AUDIT_BATCH, &out, &n, &torn);
    if (torn > 0) {
        log_warn("audit: leftover spool %s ends in %llu bytes that are not a whole valid record "
                 "(a write torn by the crash: never acknowledged); ignored",
                 spool_leftover_path(AU.left), (unsigned long long)torn);
        metrics_inc("csmcp_audit_spool_torn_total", NULL, 1);
    }
    if (rc < 0) {
        log_error("audit: cannot read leftover spool %s; will retry", spool_leftover_path(AU.left));
        spool_leftover_finish(AU.left, false);
        AU.left = NULL;
        recover_arm(RECOVER_TICK_MS * 10);
        return;
    }
    if (rc == 0) {
        log_info("audit: leftover spool %s shipped (%llu records; those already in the chain "
                 "skipped)",
                 spool_leftover_path(AU.left), AU.rshipped);
        spool_leftover_finish(AU.left, true);
        AU.left = NULL;
        AU.rsingle = 0;
        recover_arm(1); /* next leftover, if any */
        return;
    }
    AU.rbatch = out;
    AU.rn = n;
    const char *params[1] = {out};
    AU.rbusy = true;
    if (pgpool_query(AU.pg, SQL_SHIP, 1, params, recover_done, NULL) < 0) {
        AU.rbusy = false;
        spool_leftover_rewind(AU.left);
        free(AU.rbatch);
        AU.rbatch = NULL;
        recover_arm(RECOVER_TICK_MS);
    }
}

static void recover_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    metrics_gauge_set("csmcp_audit_ship_lag_seconds", NULL, ship_lag());
    gauge_backlog();
    if (AU.spooling)
        metrics_gauge_set("csmcp_audit_spool_bytes", NULL, (double)spool_bytes());
    if (AU.rbusy) {
        recover_arm(RECOVER_TICK_MS);
        return;
    }
    if (AU.left == NULL && AU.pg && pgpool_ready(AU.pg)) {
        AU.left = spool_claim_leftover(AU.cfg->audit_spool_dir, AU.writer, AU.dbid);
        if (AU.left) {
            log_info("audit: shipping leftover spool %s", spool_leftover_path(AU.left));
            AU.rshipped = 0;
            AU.rsingle = 0;
            AU.rsafe = false;
        }
    }
    if (AU.left)
        recover_next();
    recover_arm(RECOVER_TICK_MS);
}

static void on_spool_durable(long long seq)
{
    if (seq > AU.spool_durable)
        AU.spool_durable = seq;
    if (!spool_active() && AU.spooling) {
        AU.spooling = false; /* write error: acknowledgements wait for PostgreSQL now */
        metrics_gauge_set("csmcp_audit_spool_active", NULL, 0);
        flush_now(); /* what gathered for a larger batch goes now */
    }
    answer_durable();
}

size_t audit_flush(void)
{
    flush_now();
    return backlog();
}

const char *audit_writer(void)
{
    return AU.writer;
}

int audit_init(struct event_base *base, const struct cfg *cfg, struct pgpool *pg)
{
    unsigned char rnd[8];
    char hex[17];
    AU.cfg = cfg;
    AU.pg = pg;
    AU.seq = 0;
    if (crypto_random(rnd, sizeof rnd) < 0)
        return -1;
    crypto_hex(rnd, sizeof rnd, hex);
    snprintf(AU.writer, sizeof AU.writer, "%ld-%s", (long)getpid(), hex);
    metrics_gauge_set("csmcp_audit_refuse_mode", NULL, refuse_mode() ? 1 : 0);
    /* present from the start (the alert rules read them) */
    metrics_gauge_set("csmcp_audit_queue_depth", NULL, 0);
    metrics_inc("csmcp_audit_refused_total", NULL, 0);
    metrics_inc("csmcp_audit_dropped_total", NULL, 0);
    if (cfg->audit_enabled && !refuse_mode())
        log_warn("audit: audit.on_failure = drop: tool calls are answered before their audit "
                 "record is committed, and records that cannot be written are dropped (counted "
                 "in csmcp_audit_dropped_total, a gap in csmcpctl audit verify)");
    AU.timer = event_new(base, -1, 0, timer_cb, NULL);
    memset(&AG, 0, sizeof AG);
    AG.timer = event_new(base, -1, 0, agg_timer_cb, NULL);
    if (AU.timer == NULL || AG.timer == NULL)
        return -1;
    /* the spool (issue 26): identity of the database its records are for */
    char h[CRYPTO_SHA256_HEX_LEN];
    crypto_sha256_hex(cfg->database_url, strlen(cfg->database_url), h);
    memcpy(AU.dbid, h, 32);
    AU.dbid[32] = '\0';
    AU.hold = cfg->audit_max_pending / 2;
    AU.spooling = false;
    metrics_gauge_set("csmcp_audit_ship_lag_seconds", NULL, 0);
    metrics_inc("csmcp_audit_spool_recovered_total", NULL, 0);
    metrics_inc("csmcp_audit_spool_torn_total", NULL, 0);
    metrics_inc("csmcp_audit_spool_errors_total", NULL, 0);
    if (cfg->audit_enabled && pg && cfg->audit_spool_dir && cfg->audit_spool_dir[0]) {
        if (refuse_mode() &&
            spool_open(base, cfg->audit_spool_dir, AU.writer, AU.dbid, on_spool_durable) == 0)
            AU.spooling = true;
        AU.rtimer = event_new(base, -1, 0, recover_cb, NULL);
        if (AU.rtimer == NULL)
            return -1;
        recover_arm(10); /* leftovers of dead writers: right after start */
    }
    metrics_gauge_set("csmcp_audit_spool_active", NULL, AU.spooling ? 1 : 0);
    metrics_gauge_set("csmcp_audit_spool_records", NULL, 0);
    return 0;
}

void audit_shutdown(void)
{
    agg_flush(); /* summaries join the buffer; counted below if they cannot be written */
    if (AG.timer)
        event_free(AG.timer);
    AG.timer = NULL;
    size_t left = backlog();
    bool spooled = false;
    if (AU.spooling) {
        /* what is not in PostgreSQL stays in the spool for the leftover shipper */
        spooled = spool_close(left == 0);
        AU.spooling = false;
        if (left > 0 && spooled)
            log_warn("audit: worker exiting with %zu records not yet in PostgreSQL; they stay "
                     "in the spool (%s) and another worker ships them",
                     left, AU.cfg->audit_spool_dir);
    }
    if (left > 0 && !spooled)
        drop(left, "worker exiting");
    if (AU.rtimer)
        event_free(AU.rtimer);
    AU.rtimer = NULL;
    if (AU.left) {
        struct spool_leftover *l = AU.left;
        AU.left = NULL; /* recover_done, should it still run, sees it gone */
        spool_leftover_finish(l, false);
    }
    free(AU.rbatch);
    AU.rbatch = NULL;
    if (AU.timer)
        event_free(AU.timer);
    AU.timer = NULL;
    for (size_t i = AU.bhead; i < AU.nbuf; i++)
        free(AU.buf[i].json);
    free(AU.buf);
    AU.buf = NULL;
    AU.bhead = AU.nbuf = AU.capbuf = 0;
    forget_inflight();
    /* exit path: the waiting calls end with the process */
    while (wq_front()) {
        free(wq_front());
        wq_pop();
    }
    free(WQ.v);
    memset(&WQ, 0, sizeof WQ);
    free(AU.fl);
    AU.fl = NULL;
    AU.capfl = 0;
    AU.pg = NULL;
}
