/*
 * metrics.h - the worker's metrics registry: counters, gauges and fixed-bucket latency
 * histograms keyed by a name and a label string ("route=\"/mcp\",status=\"200\"").
 *
 * Each heartbeat serialises a snapshot to the supervisor (proto/ctl_codec), which sums live
 * workers plus the retired totals of exited ones, so counters never go backwards across worker
 * restarts, and serves Prometheus text on admin.listen /metrics.
 * Metric names follow Prometheus conventions and start with csmcp_.
 */
#ifndef CSMCP_METRICS_H
#define CSMCP_METRICS_H

#include <stdint.h>

/* labels may be NULL or "" for none; both strings are copied on first use. */
void metrics_inc(const char *name, const char *labels, uint64_t by);
void metrics_gauge_set(const char *name, const char *labels, double value);
/* Observe a duration in seconds into the histogram name (buckets 1ms .. 10s). */
void metrics_observe(const char *name, const char *labels, double seconds);

#endif
