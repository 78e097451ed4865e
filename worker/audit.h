/*
 * audit.h - the audit trail: one hash-chained row in PostgreSQL (audit_log, migrations 0100 and
 * 0101) per tool call and per security event: who (principal), what (method, tool), arguments
 * with secrets scrubbed (common/scrub.h), outcome, latency and the event time.
 * `csmcpctl audit verify` recomputes the chain.
 *
 * Writes are asynchronous, batched and off the response path: records are buffered in the
 * worker and appended by csmcp.audit_append_batch every AUDIT_FLUSH_MS or AUDIT_BATCH records,
 * one batch in flight per worker (one lock and one commit per batch). A failed batch is retried
 * while the failure is transient; a batch PostgreSQL refuses for its data is written record by
 * record, and a record refused on its own is stored in a safe form (arguments hex-encoded,
 * "encoded": true, migration 0120), so one bad record never drops another. Every record carries
 * this worker's writer id and a sequence number (1, 2, ...): a record that still cannot be
 * written (or does not fit the bounded buffer) is counted (csmcp_audit_dropped_total), logged,
 * and shows as a gap in `csmcpctl audit verify`. Never fatal, never blocking.
 */
#ifndef CSMCP_AUDIT_H
#define CSMCP_AUDIT_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct cfg;
struct pgpool;

#define AUDIT_FLUSH_MS       50
#define AUDIT_SHIP_MS        20 /* refuse mode, calls acknowledged by the spool: batch interval */
#define AUDIT_SHIP_EAGER     4  /* ... unless the last spool group was smaller: at once */
#define AUDIT_BATCH          500
#define AUDIT_AGG_INTERVAL_S 10

struct audit_entry {
    const char *principal; /* "key:<id>", "jwt:<sub>", "anonymous" */
    const char *method;    /* JSON-RPC method ("tools/call") or event ("auth.denied") */
    const char *tool;      /* tool name or NULL */
    const char *args_json; /* arguments as JSON text (scrubbed here) or NULL */
    size_t args_len;       /* 0: strlen(args_json) */
    const char *outcome;   /* "ok", "error", "denied", "limited", ... */
    double latency_s;
    const char *detail; /* short free text (scrubbed here) or NULL */
    const char *raw;    /* instead of args_json: bytes of a refused request (not JSON, not
                           UTF-8), stored hex-encoded (first 4 KiB) with "encoded": true */
    size_t raw_len;
};

/* Called by auth_init. base and pg borrowed for the worker's lifetime. */
int audit_init(struct event_base *base, const struct cfg *cfg, struct pgpool *pg);
/* Buffers one record; every string is copied. No-op when audit.enabled is false. */
void audit_record(const struct audit_entry *e);
/*
 * audit.on_failure = refuse (the default, issue 26): a tool call is answered only once its
 * record is committed. audit_record_wait buffers the record and, in refuse mode, returns
 * AUDIT_QUEUED with *w set: cb(true, arg) runs once the record is in the table, cb(false, arg)
 * if it can never be (its safe form refused too). Transient failures are retried (backing off
 * up to 1 s) without limit; records are never dropped for a slow or absent database. Records
 * are sent at once when no batch is in flight (group commit). The caller must detach a waiter
 * it no longer wants (audit_waiter_detach) before freeing arg. In drop mode (or with audit
 * disabled) it returns AUDIT_NOT_WAITING: answer now.
 */
struct audit_waiter;
typedef void (*audit_durable_fn)(bool ok, void *arg);
enum audit_wait { AUDIT_NOT_WAITING = 0, AUDIT_QUEUED };
enum audit_wait audit_record_wait(const struct audit_entry *e, audit_durable_fn cb, void *arg,
                                  struct audit_waiter **w);
void audit_waiter_detach(struct audit_waiter *w);
/* False (refuse mode) while audit.max_pending records wait for the database: refuse a tool
 * call before it runs (503). Always true in drop mode. */
bool audit_accepting(void);
/* Starts writing what is buffered now (drain path); returns the number of records not yet
 * acknowledged by the database. */
size_t audit_flush(void);
/*
 * For events an attacker can repeat at will (failed authentication, refused requests): the
 * first `individual` events per (principal, method, outcome, detail's first 60 bytes) and interval
 * are recorded as audit_record does; the rest are counted, and one summary record per key
 * ("suppressed": n, first/last time) follows at the end of the AUDIT_AGG_INTERVAL_S interval. At
 * most 256 keys per interval and worker; beyond that one overflow key (principal "(many)") takes
 * the rest. So a flood adds at most 256 x (individual + 1) + 1 records per interval and worker.
 */
void audit_record_aggregated(const struct audit_entry *e, int individual);

/* This worker's writer id ("<pid>-<16 hex>"), valid after audit_init. */
const char *audit_writer(void);
/* Stops the timer; records still buffered are counted as dropped. */
void audit_shutdown(void);

#endif
