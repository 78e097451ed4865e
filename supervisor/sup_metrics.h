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
 * Writes t as Prometheus text, sorted by name then labels, one # TYPE line per name.
 * prefix_labels (may be NULL) is prepended to every series' labels; rename, when set, replaces
 * a leading "csmcp_" with "csmcp_worker_" (per-worker series must not collide with totals).
 */
void supm_render(FILE *f, struct supm_table *t, const char *prefix_labels, bool rename);

#endif
