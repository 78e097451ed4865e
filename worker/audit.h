/*
 * audit.h - the audit trail: one hash-chained row in PostgreSQL (audit_log, migrations 0100 and
 * 0101) per tool call and per security event: who (principal), what (method, tool), arguments
 * with secrets scrubbed (common/scrub.h), outcome, latency and the event time.
 * `csmcpctl audit verify` recomputes the chain.
 *
 * Writes are asynchronous, batched and off the response path: records are buffered in the
 * worker and appended by csmcp.audit_append_batch every AUDIT_FLUSH_MS or AUDIT_BATCH records,
 * one batch in flight per worker (one lock and one commit per batch). A failed batch is retried
 * while the failure is transient; records that cannot be written (or do not fit the bounded
 * buffer) are counted (csmcp_audit_dropped_total) and logged, never fatal, never blocking.
 */
#ifndef CSMCP_AUDIT_H
#define CSMCP_AUDIT_H

#include <stddef.h>

struct event_base;
struct cfg;
struct pgpool;

#define AUDIT_FLUSH_MS    50
#define AUDIT_BATCH       500
#define AUDIT_MAX_PENDING 50000

struct audit_entry {
    const char *principal; /* "key:<id>", "jwt:<sub>", "anonymous" */
    const char *method;    /* JSON-RPC method ("tools/call") or event ("auth.denied") */
    const char *tool;      /* tool name or NULL */
    const char *args_json; /* arguments as JSON text (scrubbed here) or NULL */
    size_t args_len;       /* 0: strlen(args_json) */
    const char *outcome;   /* "ok", "error", "denied", "limited", ... */
    double latency_s;
    const char *detail; /* short free text (scrubbed here) or NULL */
};

/* Called by auth_init. base and pg borrowed for the worker's lifetime. */
int audit_init(struct event_base *base, const struct cfg *cfg, struct pgpool *pg);
/* Buffers one record; every string is copied. No-op when audit.enabled is false. */
void audit_record(const struct audit_entry *e);
/* Starts writing what is buffered now (drain path); returns the number of records not yet
 * acknowledged by the database. */
size_t audit_flush(void);
/* Stops the timer; records still buffered are counted as dropped. */
void audit_shutdown(void);

#endif
