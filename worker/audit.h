/*
 * audit.h - the audit trail: one hash-chained row in PostgreSQL (audit_log, written only by
 * csmcp.audit_append, migration 0100) per tool call and per security event: who (principal),
 * what (method, tool), arguments with secrets scrubbed (common/scrub.h), outcome and latency.
 * `csmcpctl audit verify` recomputes the chain.
 *
 * Writes are asynchronous and off the response path: a failed write is logged and counted
 * (csmcp_audit_write_failures_total), it never fails the client's call.
 */
#ifndef CSMCP_AUDIT_H
#define CSMCP_AUDIT_H

#include <stddef.h>

struct cfg;
struct pgpool;

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

/* Called by auth_init. pg borrowed for the worker's lifetime. */
int audit_init(const struct cfg *cfg, struct pgpool *pg);
/* Queues one record; every string is copied. No-op when audit.enabled is false. */
void audit_record(const struct audit_entry *e);

#endif
