/* test_chan.c - the worker's end of the control channel (worker/chan.c) against a fake
 * supervisor on a SOCK_SEQPACKET socketpair: HELLO, heartbeat interval from the HELLO ack,
 * heartbeats carrying the metrics snapshot, READY once, DRAIN, STOP, EOF, garbage, BYE. */
#include <check.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "chan.h"
#include "ctl_codec.h"
#include "metrics.h"

static int drains, stops;
static struct event_base *base;
static int sup_fd;

static void on_drain(void *arg)
{
    (void)arg;
    drains++;
}

static void on_stop(void *arg)
{
    (void)arg;
    stops++;
}

/* Runs the loop for ms milliseconds. */
static void run(int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
}

/* Receives one message from the worker end (runs the loop meanwhile); returns its type. */
static int recv_msg(struct ctl_hdr *h, uint8_t *buf, const uint8_t **p, int wait_ms)
{
    for (int waited = 0; waited <= wait_ms; waited += 10) {
        ssize_t n = recv(sup_fd, buf, CTL_MSG_MAX, MSG_DONTWAIT);
        if (n > 0) {
            ck_assert_int_eq(ctl_decode(buf, (size_t)n, false, h, p), 0);
            return h->type;
        }
        run(10);
    }
    return -1;
}

static void sup_send(enum ctl_type t, const void *p, size_t len)
{
    uint8_t buf[64];
    int n = ctl_encode(buf, sizeof(buf), t, 1, 5, p, len);
    ck_assert_int_gt(n, 0);
    ck_assert_int_eq(send(sup_fd, buf, (size_t)n, 0), n);
}

static void setup(void)
{
    int sv[2];
    struct chan_hooks hooks = {.on_drain = on_drain, .on_stop = on_stop, .arg = NULL};

    drains = stops = 0;
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
    sup_fd = sv[0];
    base = event_base_new();
    ck_assert_int_eq(chan_start(base, sv[1], 2, 5, 0xabcdefull, &hooks), 0);
}

START_TEST(hello_heartbeat_ready_bye)
{
    uint8_t buf[CTL_MSG_MAX];
    struct ctl_hdr h;
    const uint8_t *p;
    struct ctl_hello hello;
    struct ctl_hello_ack ack = {.heartbeat_ms = 50, .drain_timeout_ms = 1000};
    struct ctl_heartbeat hb;
    struct ctl_series s;
    size_t off = 0;
    bool found = false;

    ck_assert_int_eq(recv_msg(&h, buf, &p, 100), CTL_HELLO);
    memcpy(&hello, p, sizeof(hello));
    ck_assert_int_eq(hello.pid, getpid());
    ck_assert_int_eq(hello.slot, 2);
    ck_assert_uint_eq(hello.gen, 5);
    ck_assert(hello.cfg_hash == 0xabcdefull);
    sup_send(CTL_HELLO, &ack, sizeof(ack));
    metrics_inc("csmcp_http_requests_total", "route=\"/health\"", 3);
    /* with a 50 ms interval, a heartbeat well before the 1 s default */
    ck_assert_int_eq(recv_msg(&h, buf, &p, 300), CTL_HEARTBEAT);
    memcpy(&hb, p, sizeof(hb));
    while (ctl_snap_next(p + sizeof(hb), hb.snap_len, &off, &s) == 1)
        if (!strcmp(s.name, "csmcp_http_requests_total") && s.counter == 3)
            found = true;
    ck_assert(found);
    chan_send_ready();
    chan_send_ready(); /* idempotent */
    int ready = 0;
    for (int i = 0; i < 6; i++)
        if (recv_msg(&h, buf, &p, 100) == CTL_READY)
            ready++;
    ck_assert_int_eq(ready, 1);
    chan_send_bye();
    bool bye = false;
    for (int i = 0; i < 8 && !bye; i++)
        bye = recv_msg(&h, buf, &p, 100) == CTL_BYE;
    ck_assert(bye);
    chan_close();
}
END_TEST

START_TEST(drain_once_then_eof)
{
    struct ctl_drain d = {.deadline_ms = 1000};
    sup_send(CTL_DRAIN, &d, sizeof(d));
    run(50);
    ck_assert_int_eq(drains, 1);
    sup_send(CTL_DRAIN, &d, sizeof(d));
    run(50);
    close(sup_fd); /* supervisor gone */
    run(50);
    ck_assert_int_eq(drains, 1); /* on_drain runs once */
    ck_assert_int_eq(stops, 0);
}
END_TEST

START_TEST(eof_means_drain)
{
    close(sup_fd);
    run(50);
    ck_assert_int_eq(drains, 1);
    ck_assert_int_eq(stops, 0);
}
END_TEST

START_TEST(stop)
{
    sup_send(CTL_STOP, NULL, 0);
    run(50);
    ck_assert_int_eq(stops, 1);
    ck_assert_int_eq(drains, 0);
}
END_TEST

START_TEST(garbage_means_stop)
{
    static const char junk[] = "this is not a control message";
    ck_assert_int_eq(send(sup_fd, junk, sizeof(junk), 0), (ssize_t)sizeof(junk));
    run(50);
    ck_assert_int_eq(stops, 1);
}
END_TEST

START_TEST(wrong_direction_means_stop)
{
    struct ctl_ready r = {0};
    sup_send(CTL_READY, &r, sizeof(r));
    run(50);
    ck_assert_int_eq(stops, 1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("chan");
    TCase *tc = tcase_create("chan");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, hello_heartbeat_ready_bye);
    tcase_add_test(tc, drain_once_then_eof);
    tcase_add_test(tc, eof_means_drain);
    tcase_add_test(tc, stop);
    tcase_add_test(tc, garbage_means_stop);
    tcase_add_test(tc, wrong_direction_means_stop);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
