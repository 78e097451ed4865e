/*
 * sup_metrics.c - sums worker metrics snapshots and renders Prometheus text.
 *
 * Invariants: a table only ever grows (series are never dropped), so totals built as
 * "retired + live" are monotonic for counters and histograms as long as the caller folds a
 * worker's last snapshot into the retired table when the worker goes away; names and labels
 * were validated by the codec, so rendering never has to escape them.
 */
#include "sup_metrics.h"

#include <stdlib.h>
#include <string.h>

static struct ctl_series *find(struct supm_table *t, const struct ctl_series *s)
{
    for (int i = 0; i < t->n; i++)
        if (strcmp(t->v[i].name, s->name) == 0 && strcmp(t->v[i].labels, s->labels) == 0)
            return &t->v[i];
    return NULL;
}

static int add(struct supm_table *t, const struct ctl_series *s, bool counters_only)
{
    struct ctl_series *d;

    if (counters_only && s->kind == CTL_M_GAUGE)
        return 0;
    d = find(t, s);
    if (!d) {
        if (t->n == t->cap) {
            int cap = t->cap ? t->cap * 2 : 64;
            struct ctl_series *v = realloc(t->v, (size_t)cap * sizeof(*v));
            if (!v)
                return -1;
            t->v = v;
            t->cap = cap;
        }
        t->v[t->n++] = *s;
        return 0;
    }
    if (d->kind != s->kind)
        return 0; /* conflicting kinds: keep the first */
    switch (s->kind) {
    case CTL_M_COUNTER:
        d->counter += s->counter;
        break;
    case CTL_M_GAUGE:
        d->gauge += s->gauge;
        break;
    case CTL_M_HIST:
        for (int b = 0; b < CTL_HIST_NBUCKETS; b++)
            d->buckets[b] += s->buckets[b];
        d->count += s->count;
        d->sum += s->sum;
        break;
    }
    return 0;
}

int supm_fold(struct supm_table *t, const uint8_t *snap, size_t len, bool counters_only)
{
    struct ctl_series s;
    size_t off = 0;
    int rc;

    while ((rc = ctl_snap_next(snap, len, &off, &s)) == 1)
        if (add(t, &s, counters_only) < 0)
            return -1;
    return rc < 0 ? -1 : 0;
}

int supm_fold_as_worker(struct supm_table *t, const uint8_t *snap, size_t len,
                        const char *prefix_labels)
{
    struct ctl_series s, r;
    size_t off = 0;
    int rc, n;

    while ((rc = ctl_snap_next(snap, len, &off, &s)) == 1) {
        r = s;
        if (strncmp(s.name, "csmcp_", 6) == 0)
            n = snprintf(r.name, sizeof(r.name), "csmcp_worker_%s", s.name + 6);
        else
            n = snprintf(r.name, sizeof(r.name), "%s", s.name);
        if (n < 0 || (size_t)n >= sizeof(r.name))
            continue;
        n = snprintf(r.labels, sizeof(r.labels), "%s%s%s", prefix_labels,
                     s.labels[0] && prefix_labels[0] ? "," : "", s.labels);
        if (n < 0 || (size_t)n >= sizeof(r.labels))
            continue;
        if (add(t, &r, false) < 0)
            return -1;
    }
    return rc < 0 ? -1 : 0;
}

void supm_free(struct supm_table *t)
{
    free(t->v);
    memset(t, 0, sizeof(*t));
}

int supm_copy(struct supm_table *dst, const struct supm_table *src)
{
    memset(dst, 0, sizeof(*dst));
    if (src->n == 0)
        return 0;
    dst->v = malloc((size_t)src->n * sizeof(*dst->v));
    if (!dst->v)
        return -1;
    memcpy(dst->v, src->v, (size_t)src->n * sizeof(*dst->v));
    dst->n = dst->cap = src->n;
    return 0;
}

static int cmp_series(const void *a, const void *b)
{
    const struct ctl_series *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->labels, y->labels);
}

static void labels(FILE *f, const char *own, const char *extra)
{
    bool any = false;
    const char *parts[2] = {own, extra};

    for (int i = 0; i < 2; i++) {
        if (!parts[i] || !parts[i][0])
            continue;
        fputs(any ? "," : "{", f);
        fputs(parts[i], f);
        any = true;
    }
    if (any)
        fputc('}', f);
}

void supm_render(FILE *f, struct supm_table *t, const char *help)
{
    static const char *const type[] = {"", "counter", "gauge", "histogram"};
    char le[48];
    const char *last = NULL;

    if (t->n == 0)
        return; /* t->v may be NULL: qsort(NULL, 0) is undefined */
    qsort(t->v, (size_t)t->n, sizeof(*t->v), cmp_series);
    for (int i = 0; i < t->n; i++) {
        const struct ctl_series *s = &t->v[i];
        const char *name = s->name;
        if (!last || strcmp(last, s->name) != 0)
            fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type[s->kind]);
        last = s->name;
        switch (s->kind) {
        case CTL_M_COUNTER:
            fputs(name, f);
            labels(f, s->labels, NULL);
            fprintf(f, " %llu\n", (unsigned long long)s->counter);
            break;
        case CTL_M_GAUGE:
            fputs(name, f);
            labels(f, s->labels, NULL);
            fprintf(f, " %.17g\n", s->gauge);
            break;
        case CTL_M_HIST: {
            uint64_t cum = 0;
            for (int b = 0; b < CTL_HIST_NBUCKETS; b++) {
                cum += s->buckets[b];
                if (b < CTL_HIST_NBOUNDS)
                    snprintf(le, sizeof(le), "le=\"%g\"", ctl_hist_bounds[b]);
                else
                    snprintf(le, sizeof(le), "le=\"+Inf\"");
                fprintf(f, "%s_bucket", name);
                labels(f, s->labels, le);
                fprintf(f, " %llu\n", (unsigned long long)cum);
            }
            fprintf(f, "%s_sum", name);
            labels(f, s->labels, NULL);
            fprintf(f, " %.17g\n", s->sum);
            fprintf(f, "%s_count", name);
            labels(f, s->labels, NULL);
            fprintf(f, " %llu\n", (unsigned long long)s->count);
            break;
        }
        }
    }
}
