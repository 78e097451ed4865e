/* test_chan.c - the worker's end of the control channel (worker/chan.c) against a fake
 * supervisor on a SOCK_SEQPACKET socketpair: HELLO, heartbeat interval from the HELLO ack,
 * heartbeats carrying the metrics snapshot, READY once, DRAIN, STOP, EOF, garbage, BYE; and
 * connection handoff: HANDOFF with SCM_RIGHTS both ways, the DRAIN flag, fds never leaked. */
#include <check.h>

#include "unit.h"
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "chan.h"
#include "ctl_codec.h"
#include "metrics.h"

static int drains, stops;
static int adopted[8], nadopted, adopt_calls, adopt_lost;
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

static void on_adopt(const int *fds, int n, int lost, void *arg)
{
    (void)arg;
    adopt_calls++;
    adopt_lost += lost;
    for (int i = 0; i < n; i++)
        if (nadopted < 8)
            adopted[nadopted++] = fds[i];
        else
            close(fds[i]);
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    ck_assert_ptr_nonnull(d);
    while (readdir(d))
        n++;
    closedir(d);
    return n;
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

/* One message from the fake supervisor with n fds attached (SCM_RIGHTS). */
static void sup_send_fds(enum ctl_type t, const void *p, size_t len, const int *fds, int n)
{
    uint8_t buf[64];
    union {
        char b[CMSG_SPACE(sizeof(int) * 8)];
        struct cmsghdr align;
    } cbuf;
    struct iovec iov;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    struct cmsghdr *cm;
    int len_msg = ctl_encode(buf, sizeof(buf), t, 1, 5, p, len);

    ck_assert_int_gt(len_msg, 0);
    ck_assert_int_le(n, 8);
    iov.iov_base = buf;
    iov.iov_len = (size_t)len_msg;
    memset(&cbuf, 0, sizeof(cbuf));
    mh.msg_control = cbuf.b;
    mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)n);
    cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)n);
    memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)n);
    ck_assert_int_eq(sendmsg(sup_fd, &mh, 0), len_msg);
}

static void start(bool adopt)
{
    int sv[2];
    struct chan_hooks hooks = {
        .on_drain = on_drain, .on_stop = on_stop, .arg = NULL, .on_adopt = adopt ? on_adopt : NULL};

    drains = stops = nadopted = adopt_calls = adopt_lost = 0;
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
    sup_fd = sv[0];
    base = event_base_new();
    ck_assert_int_eq(chan_start(base, sv[1], 2, 5, 0xabcdefull, &hooks), 0);
}

static void setup(void)
{
    start(false);
}

static void setup_adopt(void)
{
    start(true);
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

START_TEST(handoff_both_ways)
{
    uint8_t buf[CTL_MSG_MAX];
    struct ctl_hdr h;
    const uint8_t *p;
    struct ctl_hello hello;
    struct ctl_handoff ho = {.count = 2};
    struct ctl_drain d = {.deadline_ms = 1000, .flags = CTL_DRAIN_F_HANDOFF};
    int pfd[2];

    ck_assert_int_eq(recv_msg(&h, buf, &p, 100), CTL_HELLO);
    memcpy(&hello, p, sizeof(hello));
    ck_assert_uint_eq(hello.flags, CTL_HELLO_F_ADOPT); /* it offers to adopt */
    /* down: two fds arrive, CLOEXEC, and go to on_adopt */
    ck_assert_int_eq(pipe(pfd), 0);
    sup_send_fds(CTL_HANDOFF, &ho, sizeof(ho), pfd, 2);
    close(pfd[0]);
    close(pfd[1]);
    run(50);
    ck_assert_int_eq(adopt_calls, 1);
    ck_assert_int_eq(nadopted, 2);
    ck_assert_int_eq(adopt_lost, 0);
    ck_assert_int_eq(stops, 0);
    for (int i = 0; i < 2; i++)
        ck_assert(fcntl(adopted[i], F_GETFD) & FD_CLOEXEC);
    ck_assert_int_eq(write(adopted[1], "x", 1), 1); /* the same pipe, really */
    char c = 0;
    ck_assert_int_eq(read(adopted[0], &c, 1), 1);
    ck_assert_int_eq(c, 'x');
    /* a reload's DRAIN asks for a handoff */
    ck_assert(!chan_drain_handoff());
    sup_send(CTL_DRAIN, &d, sizeof(d));
    run(50);
    ck_assert_int_eq(drains, 1);
    ck_assert(chan_drain_handoff());
    /* up: the worker sends them back; the supervisor gets a HANDOFF with 2 fds */
    ck_assert_int_eq(chan_send_fds(adopted, 2), 0);
    {
        union {
            char b[CMSG_SPACE(sizeof(int) * 8)];
            struct cmsghdr align;
        } cbuf;
        struct iovec iov = {.iov_base = buf, .iov_len = CTL_MSG_MAX};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
        struct ctl_handoff got;
        ssize_t n;
        int got_fds = 0;
        do {
            mh.msg_control = cbuf.b;
            mh.msg_controllen = sizeof(cbuf.b);
            n = recvmsg(sup_fd, &mh, 0);
            ck_assert_int_gt(n, 0);
            ck_assert_int_eq(ctl_decode(buf, (size_t)n, false, &h, &p), 0);
        } while (h.type == CTL_HEARTBEAT);
        ck_assert_int_eq(h.type, CTL_HANDOFF);
        memcpy(&got, p, sizeof(got));
        ck_assert_uint_eq(got.count, 2);
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
            if (cm->cmsg_type == SCM_RIGHTS)
                got_fds += (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        ck_assert_int_eq(got_fds, 2);
    }
    ck_assert_int_eq(chan_send_fds(adopted, 0), -1);
    ck_assert_int_eq(chan_send_fds(adopted, CTL_HANDOFF_MAX + 1), -1);
}
END_TEST

START_TEST(handoff_refused_without_adopt_and_no_leak)
{
    uint8_t buf[CTL_MSG_MAX];
    struct ctl_hdr h;
    const uint8_t *p;
    struct ctl_hello hello;
    struct ctl_handoff ho = {.count = 2};
    struct ctl_drain d = {.deadline_ms = 1000, .flags = CTL_DRAIN_F_HANDOFF};
    int pfd[2], before;

    ck_assert_int_eq(recv_msg(&h, buf, &p, 100), CTL_HELLO);
    memcpy(&hello, p, sizeof(hello));
    ck_assert_uint_eq(hello.flags, 0); /* no on_adopt: no offer */
    ck_assert_int_eq(pipe(pfd), 0);
    before = count_fds();
    /* fds on a DRAIN are closed, and without an adopter the flag is ignored */
    sup_send_fds(CTL_DRAIN, &d, sizeof(d), pfd, 2);
    run(50);
    ck_assert_int_eq(drains, 1);
    ck_assert(!chan_drain_handoff());
    ck_assert_int_eq(count_fds(), before);
    /* a HANDOFF to a worker that never offered to adopt: a broken peer, fds closed */
    sup_send_fds(CTL_HANDOFF, &ho, sizeof(ho), pfd, 2);
    run(50);
    ck_assert_int_eq(stops, 1);
    ck_assert_int_eq(count_fds(), before);
    close(pfd[0]);
    close(pfd[1]);
}
END_TEST

START_TEST(handoff_count_mismatch_means_stop)
{
    struct ctl_handoff ho = {.count = 3};
    int pfd[2], before;

    ck_assert_int_eq(pipe(pfd), 0);
    before = count_fds();
    sup_send_fds(CTL_HANDOFF, &ho, sizeof(ho), pfd, 2); /* says 3, carries 2 */
    run(50);
    ck_assert_int_eq(stops, 1);
    ck_assert_int_eq(adopt_calls, 0);
    ck_assert_int_eq(count_fds(), before);
    close(pfd[0]);
    close(pfd[1]);
}
END_TEST

Suite *unit_suite(void)
{
    Suite *s = suite_create("chan");
    TCase *tc = tcase_create("chan");

    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, hello_heartbeat_ready_bye);
    tcase_add_test(tc, drain_once_then_eof);
    tcase_add_test(tc, eof_means_drain);
    tcase_add_test(tc, stop);
    tcase_add_test(tc, garbage_means_stop);
    tcase_add_test(tc, wrong_direction_means_stop);
    suite_add_tcase(s, tc);
    {
        TCase *ta = tcase_create("handoff");
        TCase *tp = tcase_create("handoff-plain");
        tcase_add_checked_fixture(ta, setup_adopt, NULL);
        tcase_add_test(ta, handoff_both_ways);
        tcase_add_test(ta, handoff_count_mismatch_means_stop);
        tcase_add_checked_fixture(tp, setup, NULL);
        tcase_add_test(tp, handoff_refused_without_adopt_and_no_leak);
        suite_add_tcase(s, ta);
        suite_add_tcase(s, tp);
    }
    return s;
}
