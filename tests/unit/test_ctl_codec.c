/* test_ctl_codec.c - control-channel codec: round trips, truncation, oversize, unknown types,
 * direction checks, malformed snapshots; and the worker metrics registry's snapshot. */
#include <check.h>

#include "unit.h"
#include <string.h>

#include "ctl_codec.h"
#include "metrics.h"
#include "metrics_snap.h"

static uint8_t buf[CTL_MSG_MAX + 64];

START_TEST(hello_roundtrip)
{
    struct ctl_hello h = {.pid = 42, .slot = 3, .gen = 7, .cfg_hash = 0x1122334455667788ull};
    struct ctl_hdr hdr;
    const uint8_t *p;
    struct ctl_hello out;
    int n = ctl_encode(buf, sizeof(buf), CTL_HELLO, 9, 7, &h, sizeof(h));

    ck_assert_int_eq(n, 16 + 24);
    ck_assert_int_eq(ctl_decode(buf, (size_t)n, false, &hdr, &p), 0);
    ck_assert_int_eq(hdr.type, CTL_HELLO);
    ck_assert_uint_eq(hdr.seq, 9);
    ck_assert_uint_eq(hdr.gen, 7);
    memcpy(&out, p, sizeof(out));
    ck_assert_int_eq(out.pid, 42);
    ck_assert(out.cfg_hash == 0x1122334455667788ull);
    /* the same bytes are not a valid HELLO from the supervisor (ack is 8 bytes) */
    ck_assert_int_eq(ctl_decode(buf, (size_t)n, true, &hdr, &p), CTL_E_SIZE);
}
END_TEST

START_TEST(handoff_both_directions)
{
    struct ctl_handoff ho = {.count = 200};
    struct ctl_hdr hdr;
    const uint8_t *p;
    struct ctl_handoff out;
    int n = ctl_encode(buf, sizeof(buf), CTL_HANDOFF, 3, 2, &ho, sizeof(ho));

    ck_assert_int_eq(n, 16 + 8);
    /* valid from a draining worker and from the supervisor passing it on */
    ck_assert_int_eq(ctl_decode(buf, (size_t)n, false, &hdr, &p), 0);
    ck_assert_int_eq(ctl_decode(buf, (size_t)n, true, &hdr, &p), 0);
    ck_assert_int_eq(hdr.type, CTL_HANDOFF);
    memcpy(&out, p, sizeof(out));
    ck_assert_uint_eq(out.count, 200);
    ck_assert_str_eq(ctl_type_name(CTL_HANDOFF), "HANDOFF");
    /* 0 fds, more than CTL_HANDOFF_MAX, or a wrong payload size: rejected */
    ho.count = 0;
    n = ctl_encode(buf, sizeof(buf), CTL_HANDOFF, 3, 2, &ho, sizeof(ho));
    ck_assert_int_eq(ctl_decode(buf, (size_t)n, true, &hdr, &p), CTL_E_SIZE);
    ho.count = CTL_HANDOFF_MAX + 1;
    n = ctl_encode(buf, sizeof(buf), CTL_HANDOFF, 3, 2, &ho, sizeof(ho));
    ck_assert_int_eq(ctl_decode(buf, (size_t)n, false, &hdr, &p), CTL_E_SIZE);
    ho.count = 1;
    n = ctl_encode(buf, sizeof(buf), CTL_HANDOFF, 3, 2, &ho, 4);
    ck_assert_int_eq(ctl_decode(buf, (size_t)n, false, &hdr, &p), CTL_E_SIZE);
}
END_TEST

START_TEST(drain_flags_keep_v1_layout)
{
    struct ctl_drain d = {.deadline_ms = 5000, .flags = CTL_DRAIN_F_HANDOFF};
    struct ctl_hdr hdr;
    const uint8_t *p;
    struct ctl_drain out;
    int n = ctl_encode(buf, sizeof(buf), CTL_DRAIN, 1, 1, &d, sizeof(d));

    /* the flag sits in what version 1 reserved: same size, same version */
    ck_assert_int_eq(n, 16 + 8);
    ck_assert_int_eq(buf[0], 1);
    ck_assert_int_eq(ctl_decode(buf, (size_t)n, true, &hdr, &p), 0);
    memcpy(&out, p, sizeof(out));
    ck_assert_uint_eq(out.flags, CTL_DRAIN_F_HANDOFF);
    ck_assert_uint_eq(out.deadline_ms, 5000);
}
END_TEST

START_TEST(truncated_and_bad_header)
{
    struct ctl_ready r = {0};
    struct ctl_hdr hdr;
    const uint8_t *p;
    int n = ctl_encode(buf, sizeof(buf), CTL_READY, 1, 1, &r, sizeof(r));

    ck_assert_int_gt(n, 0);
    ck_assert_int_eq(ctl_decode(buf, 10, false, &hdr, &p), CTL_E_SHORT);
    ck_assert_int_eq(ctl_decode(buf, (size_t)n - 1, false, &hdr, &p), CTL_E_SHORT);
    buf[0] = 99;
    ck_assert_int_eq(ctl_decode(buf, (size_t)n, false, &hdr, &p), CTL_E_VERSION);
    buf[0] = CTL_VERSION;
    buf[1] = 77;
    ck_assert_int_eq(ctl_decode(buf, (size_t)n, false, &hdr, &p), CTL_E_TYPE);
    buf[1] = 0;
    ck_assert_int_eq(ctl_decode(buf, (size_t)n, false, &hdr, &p), CTL_E_TYPE);
    /* a READY with a payload of the wrong size */
    n = ctl_encode(buf, sizeof(buf), CTL_READY, 1, 1, &r, 4);
    ck_assert_int_eq(ctl_decode(buf, (size_t)n, false, &hdr, &p), CTL_E_SIZE);
}
END_TEST

START_TEST(oversize_and_direction)
{
    struct ctl_hdr hdr;
    const uint8_t *p;
    static uint8_t big[CTL_MSG_MAX];
    struct ctl_drain d = {.deadline_ms = 1000};
    int n;

    ck_assert_int_eq(ctl_encode(buf, sizeof(buf), CTL_HEARTBEAT, 1, 1, big, CTL_MSG_MAX),
                     CTL_E_SIZE);
    ck_assert_int_eq(ctl_encode(buf, 20, CTL_DRAIN, 1, 1, &d, sizeof(d)), CTL_E_SIZE);
    ck_assert_int_eq(ctl_decode(buf, CTL_MSG_MAX + 1, false, &hdr, &p), CTL_E_SIZE);
    n = ctl_encode(buf, sizeof(buf), CTL_DRAIN, 1, 1, &d, sizeof(d));
    ck_assert_int_eq(ctl_decode(buf, (size_t)n, true, &hdr, &p), 0);
    /* a worker may not send DRAIN; the supervisor may not send READY or HEARTBEAT */
    ck_assert_int_eq(ctl_decode(buf, (size_t)n, false, &hdr, &p), CTL_E_TYPE);
    n = ctl_encode(buf, sizeof(buf), CTL_STOP, 1, 1, NULL, 0);
    ck_assert_int_eq(ctl_decode(buf, (size_t)n, true, &hdr, &p), 0);
    n = ctl_encode(buf, sizeof(buf), CTL_STOP, 1, 1, &d, 4);
    ck_assert_int_eq(ctl_decode(buf, (size_t)n, true, &hdr, &p), CTL_E_SIZE);
}
END_TEST

static int build_heartbeat(const struct ctl_series *s, int ns, uint8_t *out, size_t cap)
{
    uint8_t pay[4096];
    struct ctl_heartbeat hb = {0};
    size_t off = 0;

    for (int i = 0; i < ns; i++)
        ck_assert_int_eq(ctl_snap_put(pay + sizeof(hb), sizeof(pay) - sizeof(hb), &off, &s[i]), 0);
    hb.snap_len = (uint32_t)off;
    memcpy(pay, &hb, sizeof(hb));
    return ctl_encode(out, cap, CTL_HEARTBEAT, 1, 1, pay, sizeof(hb) + off);
}

START_TEST(snapshot_roundtrip)
{
    struct ctl_series s[3], got;
    struct ctl_hdr hdr;
    const uint8_t *p;
    struct ctl_heartbeat hb;
    size_t off = 0;
    int n;

    memset(s, 0, sizeof(s));
    s[0].kind = CTL_M_COUNTER;
    strcpy(s[0].name, "csmcp_http_requests_total");
    strcpy(s[0].labels, "route=\"/health\",status=\"200\"");
    s[0].counter = 12345;
    s[1].kind = CTL_M_GAUGE;
    strcpy(s[1].name, "csmcp_http_connections_open");
    s[1].gauge = 3.5;
    s[2].kind = CTL_M_HIST;
    strcpy(s[2].name, "csmcp_http_request_duration_seconds");
    s[2].buckets[0] = 5;
    s[2].buckets[CTL_HIST_NBUCKETS - 1] = 1;
    s[2].count = 6;
    s[2].sum = 12.25;
    n = build_heartbeat(s, 3, buf, sizeof(buf));
    ck_assert_int_gt(n, 0);
    ck_assert_int_eq(ctl_decode(buf, (size_t)n, false, &hdr, &p), 0);
    memcpy(&hb, p, sizeof(hb));
    p += sizeof(hb);
    ck_assert_int_eq(ctl_snap_next(p, hb.snap_len, &off, &got), 1);
    ck_assert_str_eq(got.name, s[0].name);
    ck_assert_str_eq(got.labels, s[0].labels);
    ck_assert(got.counter == 12345);
    ck_assert_int_eq(ctl_snap_next(p, hb.snap_len, &off, &got), 1);
    ck_assert(got.gauge == 3.5);
    ck_assert_int_eq(ctl_snap_next(p, hb.snap_len, &off, &got), 1);
    ck_assert(got.count == 6 && got.sum == 12.25 && got.buckets[CTL_HIST_NBUCKETS - 1] == 1);
    ck_assert_int_eq(ctl_snap_next(p, hb.snap_len, &off, &got), 0);

    /* corrupt: snap_len disagrees with the message size */
    hb.snap_len += 1;
    memcpy(buf + 16, &hb, sizeof(hb));
    ck_assert_int_eq(ctl_decode(buf, (size_t)n, false, &hdr, &p), CTL_E_SIZE);
    hb.snap_len -= 1;
    memcpy(buf + 16, &hb, sizeof(hb));
    /* corrupt: unknown metric kind inside the snapshot */
    buf[16 + sizeof(hb)] = 9;
    ck_assert_int_eq(ctl_decode(buf, (size_t)n, false, &hdr, &p), CTL_E_SNAP);
    buf[16 + sizeof(hb)] = CTL_M_COUNTER;
    /* corrupt: a newline inside the labels (would break the Prometheus text) */
    buf[16 + sizeof(hb) + 4 + strlen(s[0].name)] = '\n';
    ck_assert_int_eq(ctl_decode(buf, (size_t)n, false, &hdr, &p), CTL_E_SNAP);
}
END_TEST

START_TEST(snapshot_rejects_bad_names)
{
    struct ctl_series s;
    uint8_t out[256];
    size_t off = 0;

    memset(&s, 0, sizeof(s));
    s.kind = CTL_M_COUNTER;
    strcpy(s.name, "9bad");
    ck_assert_int_eq(ctl_snap_put(out, sizeof(out), &off, &s), -1);
    strcpy(s.name, "bad name");
    ck_assert_int_eq(ctl_snap_put(out, sizeof(out), &off, &s), -1);
    strcpy(s.name, "good_name");
    ck_assert_int_eq(ctl_snap_put(out, 10, &off, &s), -1); /* no room */
    ck_assert_uint_eq(off, 0);
    ck_assert_int_eq(ctl_snap_put(out, sizeof(out), &off, &s), 0);
}
END_TEST

START_TEST(registry_snapshot)
{
    uint8_t out[CTL_MSG_MAX];
    bool trunc;
    size_t n, off = 0;
    struct ctl_series s;
    int found = 0;

    metrics_reset();
    metrics_inc("csmcp_http_requests_total", "route=\"/mcp\"", 2);
    metrics_inc("csmcp_http_requests_total", "route=\"/mcp\"", 3);
    metrics_gauge_set("csmcp_http_connections_open", NULL, 7);
    metrics_observe("csmcp_http_request_duration_seconds", "", 0.003);
    metrics_observe("csmcp_http_request_duration_seconds", "", 99);
    metrics_inc("bad name", NULL, 1); /* dropped and counted, never a crash */
    ck_assert_int_eq(metrics_series_count(), 3);
    ck_assert(metrics_gauge_get("csmcp_http_connections_open", NULL) == 7);
    n = metrics_snapshot(out, sizeof(out), &trunc);
    ck_assert(!trunc);
    while (ctl_snap_next(out, n, &off, &s) == 1) {
        if (!strcmp(s.name, "csmcp_http_requests_total")) {
            ck_assert(s.counter == 5);
            found++;
        } else if (!strcmp(s.name, "csmcp_http_request_duration_seconds")) {
            ck_assert(s.count == 2);
            ck_assert(s.buckets[2] == 1);                     /* 3 ms <= 5 ms */
            ck_assert(s.buckets[CTL_HIST_NBUCKETS - 1] == 1); /* 99 s: +Inf */
            found++;
        } else if (!strcmp(s.name, "csmcp_metrics_dropped_total")) {
            ck_assert(s.counter == 1);
            found++;
        }
    }
    ck_assert_int_eq(found, 3);
    /* a too-small buffer truncates instead of overflowing */
    n = metrics_snapshot(out, 40, &trunc);
    ck_assert(trunc);
    ck_assert_uint_le(n, 40);
    metrics_reset();
}
END_TEST

Suite *unit_suite(void)
{
    Suite *s = suite_create("ctl_codec");
    TCase *tc = tcase_create("codec");

    tcase_add_test(tc, hello_roundtrip);
    tcase_add_test(tc, handoff_both_directions);
    tcase_add_test(tc, drain_flags_keep_v1_layout);
    tcase_add_test(tc, truncated_and_bad_header);
    tcase_add_test(tc, oversize_and_direction);
    tcase_add_test(tc, snapshot_roundtrip);
    tcase_add_test(tc, snapshot_rejects_bad_names);
    tcase_add_test(tc, registry_snapshot);
    suite_add_tcase(s, tc);
    return s;
}
