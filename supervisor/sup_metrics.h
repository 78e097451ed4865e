/*
 * sup_metrics.h - the supervisor's metrics aggregation: tables of series summed from worker
 * snapshots (proto/ctl_codec), and Prometheus text rendering.
 */
#ifndef CSMCP_SUP_METRICS_H
#define CSMCP_SUP_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ctl_codec.h"

struct supm_table {
    struct ctl_series *v;
    int n, cap;
};

/*
 * Adds every series of a snapshot (len bytes, as validated by ctl_decode) into t: counters and
 * histograms are summed; gauges are summed unless counters_only (retired workers' gauges mean
 * nothing once they are gone). Returns 0, or -1 on a malformed snapshot or out of memory.
 */
int supm_fold(struct supm_table *t, const uint8_t *snap, size_t len, bool counters_only);
void supm_free(struct supm_table *t);
/* Deep copy of src into dst (dst uninitialised). 0 or -1. */
int supm_copy(struct supm_table *dst, const struct supm_table *src);

/*
 * As supm_fold, but each series is renamed (a leading "csmcp_" becomes "csmcp_worker_") and
 * gets prefix_labels before its own labels: per-worker series that must not collide with the
 * totals. Series whose new name or labels would be too long are skipped. 0 or -1.
 */
int supm_fold_as_worker(struct supm_table *t, const uint8_t *snap, size_t len,
                        const char *prefix_labels);

/* Writes t as Prometheus text, sorted by name then labels, one # HELP (help) and one # TYPE
 * line per name. */
void supm_render(FILE *f, struct supm_table *t, const char *help);

#endif
