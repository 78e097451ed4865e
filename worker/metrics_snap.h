/*
 * metrics_snap.h - the worker-side snapshot of the metrics registry (worker/metrics.c) for the
 * control channel's HEARTBEAT and BYE messages (format in proto/ctl_msg.h).
 */
#ifndef CSMCP_METRICS_SNAP_H
#define CSMCP_METRICS_SNAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Serialises every series into buf (capacity cap) and returns the bytes written. Series that
 * do not fit are left out and *truncated is set (the registry is unchanged).
 */
size_t metrics_snapshot(uint8_t *buf, size_t cap, bool *truncated);
/* Current value of a gauge, or 0 when it does not exist. */
double metrics_gauge_get(const char *name, const char *labels);
/* Number of series in the registry. */
int metrics_series_count(void);
/* Drops every series (tests). */
void metrics_reset(void);

#endif
