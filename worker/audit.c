/*
 * audit.c - queues audit rows through the worker's PostgreSQL pool.
 *
 * Invariants: what is written is scrubbed first (arguments by scrub_json, detail by
 * scrub_text); the row's hash chain is built inside PostgreSQL under a row lock
 * (csmcp.audit_append), so concurrent workers and hosts append to one chain; audit failures
 * are visible (log + counter), never fatal, and never block the event loop.
 */
#include "audit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "log.h"
#include "metrics.h"
#include "pgpool.h"
#include "scrub.h"

#define AUDIT_DETAIL_MAX 1000
#define AUDIT_ARGS_MAX   (64 * 1024)

static const char SQL_APPEND[] =
    "SELECT csmcp.audit_append($1, $2, $3, $4::jsonb, $5, $6::integer, $7)";

static struct {
    const struct cfg *cfg;
    struct pgpool *pg;
} AU;

int audit_init(const struct cfg *cfg, struct pgpool *pg)
{
    AU.cfg = cfg;
    AU.pg = pg;
    return 0;
}

static void append_done(const PGresult *res, const char *err, const char *sqlstate, bool retryable,
                        void *arg)
{
    (void)arg;
    if (res == NULL) {
        log_error("audit: append failed (%s): %s", sqlstate ? sqlstate : "-", err ? err : "?");
        metrics_inc("csmcp_audit_write_failures_total", NULL, 1);
        return;
    }
    metrics_inc("csmcp_audit_records_total", NULL, 1);
}

void audit_record(const struct audit_entry *e)
{
    char *args = NULL, detail[AUDIT_DETAIL_MAX + 1], lat[24];
    const char *params[7];
    size_t alen;

    if (AU.cfg == NULL || !AU.cfg->audit_enabled || AU.pg == NULL)
        return;
    alen = e->args_json ? (e->args_len ? e->args_len : strlen(e->args_json)) : 0;
    if (alen > AUDIT_ARGS_MAX)
        args = strdup("{\"_truncated\":\"arguments larger than 64 KiB not recorded\"}");
    else if (alen > 0)
        args = scrub_json(e->args_json, alen);
    else
        args = strdup("{}");
    if (args == NULL) {
        metrics_inc("csmcp_audit_write_failures_total", NULL, 1);
        return;
    }
    snprintf(detail, sizeof(detail), "%s", e->detail ? e->detail : "");
    scrub_text(detail, sizeof(detail));
    long ms = (long)(e->latency_s * 1000.0 + 0.5);
    if (ms < 0)
        ms = 0;
    if (ms > 2000000000L)
        ms = 2000000000L;
    snprintf(lat, sizeof(lat), "%ld", ms);
    params[0] = e->principal ? e->principal : "anonymous";
    params[1] = e->method ? e->method : "";
    params[2] = e->tool;
    params[3] = args;
    params[4] = e->outcome ? e->outcome : "unknown";
    params[5] = lat;
    params[6] = detail[0] ? detail : NULL;
    if (pgpool_query(AU.pg, SQL_APPEND, 7, params, append_done, NULL) < 0) {
        log_error("audit: cannot queue record for %s %s", params[1], e->tool ? e->tool : "");
        metrics_inc("csmcp_audit_write_failures_total", NULL, 1);
    }
    free(args);
}
