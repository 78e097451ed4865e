/*
 * metrics.c - the worker's metrics registry: counters, gauges and fixed-bucket histograms keyed
 * by (name, labels), snapshotted into each control-channel heartbeat.
 *
 * Invariants: single-threaded (the worker's event loop); series are never removed while the
 * worker runs, so counters only grow and the supervisor can sum snapshots; the registry is
 * bounded (METRICS_MAX_SERIES) - beyond it new series are dropped and counted in
 * csmcp_metrics_dropped_total, so a client cannot grow memory by inventing label values.
 * Invalid names or labels are dropped the same way (never abort on them).
 */
#include "metrics.h"
#include "metrics_snap.h"

#include <stdlib.h>
#include <string.h>

#include "ctl_codec.h"

#define METRICS_MAX_SERIES 1024
#define METRICS_HASH       2048 /* power of two, > 2 x METRICS_MAX_SERIES */

static struct ctl_series *series; /* METRICS_MAX_SERIES entries, allocated on first use */
static int nseries;
static int16_t table[METRICS_HASH]; /* index + 1 into series, 0 = empty (open addressing) */
static uint64_t dropped;

static uint32_t hash2(const char *a, const char *b)
{
    uint32_t h = 2166136261u;
    for (; *a; a++)
        h = (h ^ (unsigned char)*a) * 16777619u;
    h = (h ^ 0xff) * 16777619u;
    for (; *b; b++)
        h = (h ^ (unsigned char)*b) * 16777619u;
    return h;
}

/* Finds or creates the series; NULL when invalid, of another kind, or the registry is full. */
static struct ctl_series *lookup(const char *name, const char *labels, uint8_t kind)
{
    uint32_t i;
    struct ctl_series *s;

    if (!labels)
        labels = "";
    i = hash2(name, labels) & (METRICS_HASH - 1);
    while (table[i]) {
        s = &series[table[i] - 1];
        if (strcmp(s->name, name) == 0 && strcmp(s->labels, labels) == 0)
            return s->kind == kind ? s : NULL;
        i = (i + 1) & (METRICS_HASH - 1);
    }
    if (!series) {
        series = calloc(METRICS_MAX_SERIES, sizeof(*series));
        if (!series)
            return NULL;
    }
    if (nseries >= METRICS_MAX_SERIES || !ctl_metric_name_ok(name, strlen(name)) ||
        !ctl_metric_labels_ok(labels, strlen(labels)))
        return NULL;
    s = &series[nseries];
    memset(s, 0, sizeof(*s));
    s->kind = kind;
    strcpy(s->name, name);
    strcpy(s->labels, labels);
    table[i] = (int16_t)(++nseries);
    return s;
}

void metrics_inc(const char *name, const char *labels, uint64_t by)
{
    struct ctl_series *s = lookup(name, labels, CTL_M_COUNTER);
    if (!s) {
        dropped++;
        return;
    }
    s->counter += by;
}

void metrics_gauge_set(const char *name, const char *labels, double value)
{
    struct ctl_series *s = lookup(name, labels, CTL_M_GAUGE);
    if (!s) {
        dropped++;
        return;
    }
    s->gauge = value;
}

void metrics_observe(const char *name, const char *labels, double seconds)
{
    struct ctl_series *s = lookup(name, labels, CTL_M_HIST);
    int b;

    if (!s) {
        dropped++;
        return;
    }
    if (!(seconds >= 0)) /* also NaN */
        seconds = 0;
    for (b = 0; b < CTL_HIST_NBOUNDS; b++)
        if (seconds <= ctl_hist_bounds[b])
            break;
    s->buckets[b]++;
    s->count++;
    s->sum += seconds;
}

double metrics_gauge_get(const char *name, const char *labels)
{
    uint32_t i;

    if (!series)
        return 0;
    if (!labels)
        labels = "";
    i = hash2(name, labels) & (METRICS_HASH - 1);
    while (table[i]) {
        struct ctl_series *s = &series[table[i] - 1];
        if (strcmp(s->name, name) == 0 && strcmp(s->labels, labels) == 0)
            return s->kind == CTL_M_GAUGE ? s->gauge : 0;
        i = (i + 1) & (METRICS_HASH - 1);
    }
    return 0;
}

int metrics_series_count(void)
{
    return nseries;
}

void metrics_reset(void)
{
    free(series);
    series = NULL;
    nseries = 0;
    dropped = 0;
    memset(table, 0, sizeof(table));
}

size_t metrics_snapshot(uint8_t *buf, size_t cap, bool *truncated)
{
    size_t off = 0;
    struct ctl_series d;

    *truncated = false;
    for (int i = 0; i < nseries; i++)
        if (ctl_snap_put(buf, cap, &off, &series[i]) < 0)
            *truncated = true;
    if (dropped) {
        memset(&d, 0, sizeof(d));
        d.kind = CTL_M_COUNTER;
        strcpy(d.name, "csmcp_metrics_dropped_total");
        d.counter = dropped;
        if (ctl_snap_put(buf, cap, &off, &d) < 0)
            *truncated = true;
    }
    return off;
}
