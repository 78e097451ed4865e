/* test_sup_metrics.c - supervisor metrics aggregation: totals = retired + live stay monotonic
 * when a worker is replaced; gauges are not retired; per-worker renaming; Prometheus text with
 * one HELP/TYPE per family and cumulative histogram buckets. */
#include <check.h>

#include "unit.h"
#include <stdlib.h>
#include <string.h>

#include "sup_metrics.h"

static size_t snap(uint8_t *buf, size_t cap, uint64_t requests, double conns, uint64_t fast,
                   uint64_t slow)
{
    struct ctl_series s;
    size_t off = 0;

    memset(&s, 0, sizeof(s));
    s.kind = CTL_M_COUNTER;
    strcpy(s.name, "csmcp_http_requests_total");
    strcpy(s.labels, "route=\"/health\",status=\"200\"");
    s.counter = requests;
    ck_assert_int_eq(ctl_snap_put(buf, cap, &off, &s), 0);
    memset(&s, 0, sizeof(s));
    s.kind = CTL_M_GAUGE;
    strcpy(s.name, "csmcp_http_connections_open");
    s.gauge = conns;
    ck_assert_int_eq(ctl_snap_put(buf, cap, &off, &s), 0);
    memset(&s, 0, sizeof(s));
    s.kind = CTL_M_HIST;
    strcpy(s.name, "csmcp_http_request_duration_seconds");
    s.buckets[0] = fast;
    s.buckets[CTL_HIST_NBUCKETS - 1] = slow;
    s.count = fast + slow;
    s.sum = 0.0005 * (double)fast + 20.0 * (double)slow;
    ck_assert_int_eq(ctl_snap_put(buf, cap, &off, &s), 0);
    return off;
}

static char out[65536];

/* Renders t into the static buffer out. */
static char *render(struct supm_table *t)
{
    FILE *f = fmemopen(out, sizeof(out), "w");
    ck_assert_ptr_nonnull(f);
    supm_render(f, t, "help text");
    fclose(f);
    return out;
}

/* Value of the sample line that starts with series (exactly, then a space). */
static double value_of(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *line = text; *line; line = strchr(line, '\n') + 1) {
        if (strncmp(line, series, n) == 0 && line[n] == ' ')
            return strtod(line + n + 1, NULL);
        if (!strchr(line, '\n'))
            break;
    }
    ck_abort_msg("series %s missing in:\n%s", series, text);
    return -1;
}

START_TEST(totals_monotonic_across_replacement)
{
    uint8_t a[2048], b[2048];
    size_t na, nb;
    struct supm_table retired = {0}, total;
    char *text;
    double before, after;

    /* worker A live with 10 requests */
    na = snap(a, sizeof(a), 10, 4, 9, 1);
    ck_assert_int_eq(supm_copy(&total, &retired), 0);
    ck_assert_int_eq(supm_fold(&total, a, na, false), 0);
    text = render(&total);
    before = value_of(text, "csmcp_http_requests_total{route=\"/health\",status=\"200\"}");
    ck_assert(before == 10);
    ck_assert(value_of(text, "csmcp_http_connections_open") == 4);
    supm_free(&total);

    /* A dies: retired; its replacement B has counted 3 so far */
    ck_assert_int_eq(supm_fold(&retired, a, na, true), 0);
    nb = snap(b, sizeof(b), 3, 1, 3, 0);
    ck_assert_int_eq(supm_copy(&total, &retired), 0);
    ck_assert_int_eq(supm_fold(&total, b, nb, false), 0);
    text = render(&total);
    after = value_of(text, "csmcp_http_requests_total{route=\"/health\",status=\"200\"}");
    ck_assert(after == 13);
    ck_assert(after >= before);
    /* the dead worker's connections are not counted any more */
    ck_assert(value_of(text, "csmcp_http_connections_open") == 1);
    /* histogram: cumulative buckets, +Inf equals count */
    ck_assert(value_of(text, "csmcp_http_request_duration_seconds_bucket{le=\"0.001\"}") == 12);
    ck_assert(value_of(text, "csmcp_http_request_duration_seconds_bucket{le=\"10\"}") == 12);
    ck_assert(value_of(text, "csmcp_http_request_duration_seconds_bucket{le=\"+Inf\"}") == 13);
    ck_assert(value_of(text, "csmcp_http_request_duration_seconds_count") == 13);
    /* one HELP and one TYPE per family */
    ck_assert_ptr_nonnull(strstr(text, "# TYPE csmcp_http_request_duration_seconds histogram\n"));
    ck_assert_ptr_null(strstr(strstr(text, "# TYPE csmcp_http_requests_total") + 1,
                              "# TYPE csmcp_http_requests_total"));
    supm_free(&total);
    supm_free(&retired);
}
END_TEST

START_TEST(per_worker_renamed_and_labeled)
{
    uint8_t a[2048], b[2048];
    size_t na = snap(a, sizeof(a), 5, 2, 5, 0), nb = snap(b, sizeof(b), 7, 3, 7, 0);
    struct supm_table per = {0};
    char *text;
    const char *first, *second;

    ck_assert_int_eq(supm_fold_as_worker(&per, a, na, "slot=\"0\",pid=\"10\""), 0);
    ck_assert_int_eq(supm_fold_as_worker(&per, b, nb, "slot=\"1\",pid=\"11\""), 0);
    text = render(&per);
    ck_assert(value_of(text, "csmcp_worker_http_requests_total{slot=\"0\",pid=\"10\",route="
                             "\"/health\",status=\"200\"}") == 5);
    ck_assert(value_of(text, "csmcp_worker_http_connections_open{slot=\"1\",pid=\"11\"}") == 3);
    /* both workers' samples sit under a single TYPE line */
    first = strstr(text, "# TYPE csmcp_worker_http_connections_open gauge");
    ck_assert_ptr_nonnull(first);
    second = strstr(first + 1, "# TYPE csmcp_worker_http_connections_open");
    ck_assert_ptr_null(second);
    supm_free(&per);
}
END_TEST

START_TEST(empty_and_malformed)
{
    struct supm_table t = {0};
    uint8_t junk[8] = {9, 9, 9, 9, 9, 9, 9, 9};
    char *text = render(&t); /* empty table: no output, no crash */
    ck_assert_str_eq(text, "");
    ck_assert_int_eq(supm_fold(&t, junk, sizeof(junk), false), -1);
    supm_free(&t);
}
END_TEST

Suite *unit_suite(void)
{
    Suite *s = suite_create("sup_metrics");
    TCase *tc = tcase_create("aggregate");

    tcase_add_test(tc, totals_monotonic_across_replacement);
    tcase_add_test(tc, per_worker_renamed_and_labeled);
    tcase_add_test(tc, empty_and_malformed);
    suite_add_tcase(s, tc);
    return s;
}
