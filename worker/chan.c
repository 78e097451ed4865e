/*
 * chan.c - the worker's end of the supervisor control channel (contract in chan.h, wire format
 * in proto/ctl_msg.h).
 *
 * Sends HELLO at start, READY once, a HEARTBEAT with a metrics snapshot from a loop timer (so a
 * stuck event loop stops heartbeating and the supervisor's watchdog notices), and BYE at exit.
 * Receives the HELLO acknowledgement (heartbeat interval), DRAIN and STOP. Connections travel
 * both ways in HANDOFF messages (SCM_RIGHTS): up from a worker draining for a reload, down to a
 * worker that adopts them.
 *
 * Invariants: the fd is non-blocking and SOCK_SEQPACKET (one send = one message); a heartbeat
 * that would block is dropped, never queued; EOF or an error on the channel means the
 * supervisor is gone and triggers on_drain exactly once; a malformed or unknown message from
 * the supervisor triggers on_stop (the peer cannot be trusted any more). No hook runs twice
 * (on_adopt runs once per HANDOFF). Every fd that arrives is either given to on_adopt or
 * closed here: none leaks, whatever the message.
 */
#include "chan.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "ctl_codec.h"
#include "fdutil.h"
#include "log.h"
#include "metrics_snap.h"

#define CHAN_DEFAULT_HB_MS 1000

static struct {
    struct event_base *base;
    int fd;
    int slot;
    uint32_t gen;
    uint64_t cfg_hash;
    struct chan_hooks hooks;
    struct event *ev_read;
    struct event *ev_hb;
    uint32_t seq;
    uint32_t hb_ms;
    bool ready_sent;
    bool drain_called;
    bool stop_called;
    bool drain_handoff;
    struct timespec hb_expected;
    uint32_t loop_lag_us;
    uint8_t buf[CTL_MSG_MAX];
} ch = {.fd = -1};

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Sends one message; wait_ms > 0 polls that long for room (READY, BYE). 0 or -1. */
static int send_msg(enum ctl_type type, const void *payload, size_t len, int wait_ms)
{
    static uint8_t out[CTL_MSG_MAX];
    int n;

    if (ch.fd < 0)
        return -1;
    n = ctl_encode(out, sizeof(out), type, ++ch.seq, ch.gen, payload, len);
    if (n < 0)
        return -1;
    for (;;) {
        ssize_t w = send(ch.fd, out, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w == n)
            return 0;
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && wait_ms > 0) {
            /* one bounded wait for room, then give up */
            struct pollfd pfd = {.fd = ch.fd, .events = POLLOUT};
            int left = wait_ms;
            wait_ms = 0;
            if (poll(&pfd, 1, left) > 0)
                continue;
            return -1;
        }
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            log_debug("control channel send(%s): %s", ctl_type_name(type), strerror(errno));
        return -1;
    }
}

/* Builds a ctl_heartbeat + snapshot at p (capacity cap); returns bytes used. */
static size_t build_hb(uint8_t *p, size_t cap)
{
    struct ctl_heartbeat hb;
    bool trunc = false;
    size_t n;

    memset(&hb, 0, sizeof(hb));
    n = metrics_snapshot(p + sizeof(hb), cap - sizeof(hb), &trunc);
    hb.conns_active = (uint32_t)metrics_gauge_get("csmcp_http_connections_open", NULL);
    hb.loop_lag_us = ch.loop_lag_us;
    hb.flags = trunc ? CTL_HB_TRUNCATED : 0;
    hb.snap_len = (uint32_t)n;
    memcpy(p, &hb, sizeof(hb));
    return sizeof(hb) + n;
}

static void arm_hb(void)
{
    struct timeval tv = {.tv_sec = ch.hb_ms / 1000, .tv_usec = (ch.hb_ms % 1000) * 1000};
    int64_t due = mono_us() + (int64_t)ch.hb_ms * 1000;

    ch.hb_expected.tv_sec = due / 1000000;
    ch.hb_expected.tv_nsec = (due % 1000000) * 1000;
    evtimer_add(ch.ev_hb, &tv);
}

static void on_hb(evutil_socket_t fd, short what, void *arg)
{
    int64_t due = (int64_t)ch.hb_expected.tv_sec * 1000000 + ch.hb_expected.tv_nsec / 1000;
    int64_t lag = mono_us() - due;
    size_t n;

    (void)fd;
    (void)what;
    (void)arg;
    ch.loop_lag_us = lag > 0 ? (uint32_t)(lag > UINT32_MAX ? UINT32_MAX : lag) : 0;
    n = build_hb(ch.buf, sizeof(ch.buf) - sizeof(struct ctl_hdr));
    send_msg(CTL_HEARTBEAT, ch.buf, n, 0);
    arm_hb();
}

static void call_drain(void)
{
    if (ch.drain_called || ch.stop_called)
        return;
    ch.drain_called = true;
    if (ch.hooks.on_drain)
        ch.hooks.on_drain(ch.hooks.arg);
}

static void call_stop(void)
{
    if (ch.stop_called)
        return;
    ch.stop_called = true;
    if (ch.hooks.on_stop)
        ch.hooks.on_stop(ch.hooks.arg);
}

/* The supervisor is gone or broken: stop listening to the channel, keep the fd for BYE. */
static void lost(void)
{
    if (ch.ev_read)
        event_del(ch.ev_read);
    if (ch.ev_hb)
        event_del(ch.ev_hb);
}

static void close_fds(const int *fds, int n)
{
    for (int i = 0; i < n; i++)
        close(fds[i]);
}

/*
 * recv() of one message with its SCM_RIGHTS fds (at most CTL_HANDOFF_MAX, CLOEXEC). *trunc is
 * set when the kernel cut the control data (our fd limit): those fds were closed by it.
 */
static ssize_t recv_msg(int fd, int *fds, int *nfds, bool *trunc)
{
    return fd_recv_fds(fd, ch.buf, sizeof(ch.buf), fds, CTL_HANDOFF_MAX, nfds, trunc);
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    (void)arg;
    /* Bounded: at most 16 messages per wakeup so a flood cannot starve the loop. */
    for (int i = 0; i < 16; i++) {
        struct ctl_hdr h;
        const uint8_t *p;
        int fds[CTL_HANDOFF_MAX], nfds;
        bool trunc;
        ssize_t n = recv_msg(fd, fds, &nfds, &trunc);
        int rc;

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            close_fds(fds, nfds);
            log_notice("control channel closed (%s): supervisor gone, draining",
                       n == 0 ? "EOF" : strerror(errno));
            lost();
            call_drain();
            return;
        }
        rc = ctl_decode(ch.buf, (size_t)n, true, &h, &p);
        if (rc == 0 && h.type == CTL_HANDOFF) {
            struct ctl_handoff ho;
            memcpy(&ho, p, sizeof(ho));
            /* Fewer fds than announced only when our fd limit cut the message. */
            if ((uint32_t)nfds > ho.count || ((uint32_t)nfds < ho.count && !trunc))
                rc = CTL_E_SIZE;
            else if (!ch.hooks.on_adopt)
                rc = CTL_E_TYPE; /* we never offered to adopt */
            else {
                if (trunc)
                    log_warn("control channel: HANDOFF of %u connections truncated to %d (fd "
                             "limit?)",
                             ho.count, nfds);
                ch.hooks.on_adopt(fds, nfds, (int)ho.count - nfds, ch.hooks.arg);
                continue;
            }
        }
        close_fds(fds, nfds); /* fds on any other message are not ours to keep */
        if (rc < 0) {
            log_error("control channel: bad message from supervisor: %s", ctl_strerror(rc));
            lost();
            call_stop();
            return;
        }
        switch (h.type) {
        case CTL_HELLO: {
            struct ctl_hello_ack ack;
            memcpy(&ack, p, sizeof(ack));
            if (ack.heartbeat_ms >= 10 && ack.heartbeat_ms <= 600000 &&
                ack.heartbeat_ms != ch.hb_ms) {
                ch.hb_ms = ack.heartbeat_ms;
                event_del(ch.ev_hb);
                arm_hb();
            }
            break;
        }
        case CTL_DRAIN: {
            struct ctl_drain d;
            memcpy(&d, p, sizeof(d));
            if (!ch.drain_called)
                ch.drain_handoff = (d.flags & CTL_DRAIN_F_HANDOFF) != 0 && ch.hooks.on_adopt;
            log_info("control channel: DRAIN received (%s)",
                     ch.drain_handoff ? "reload: idle connections go to the new generation"
                                      : "idle connections are closed");
            call_drain();
            break;
        }
        case CTL_STOP:
            log_info("control channel: STOP received");
            lost();
            call_stop();
            return;
        default:
            log_error("control channel: unexpected %s from supervisor", ctl_type_name(h.type));
            lost();
            call_stop();
            return;
        }
    }
}

int chan_start(struct event_base *base, int fd, int slot, int generation, uint64_t cfg_hash,
               const struct chan_hooks *hooks)
{
    struct ctl_hello hello;

    ch.base = base;
    ch.fd = fd;
    ch.slot = slot;
    ch.gen = (uint32_t)generation;
    ch.cfg_hash = cfg_hash;
    ch.hooks = *hooks;
    ch.hb_ms = CHAN_DEFAULT_HB_MS;
    evutil_make_socket_nonblocking(fd);
    evutil_make_socket_closeonexec(fd);
    ch.ev_read = event_new(base, fd, EV_READ | EV_PERSIST, on_read, NULL);
    ch.ev_hb = evtimer_new(base, on_hb, NULL);
    if (!ch.ev_read || !ch.ev_hb || event_add(ch.ev_read, NULL) < 0)
        goto fail;
    memset(&hello, 0, sizeof(hello));
    hello.pid = (int32_t)getpid();
    hello.slot = slot;
    hello.gen = (uint32_t)generation;
    hello.cfg_hash = cfg_hash;
    hello.flags = hooks->on_adopt ? CTL_HELLO_F_ADOPT : 0;
    if (send_msg(CTL_HELLO, &hello, sizeof(hello), 1000) < 0) {
        log_error("control channel: cannot send HELLO");
        goto fail;
    }
    arm_hb();
    return 0;
fail:
    if (ch.ev_hb)
        event_free(ch.ev_hb);
    if (ch.ev_read)
        event_free(ch.ev_read);
    ch.ev_hb = ch.ev_read = NULL;
    close(fd);
    ch.fd = -1;
    return -1;
}

void chan_send_ready(void)
{
    struct ctl_ready r;

    if (ch.ready_sent || ch.fd < 0)
        return;
    memset(&r, 0, sizeof(r));
    if (send_msg(CTL_READY, &r, sizeof(r), 1000) == 0)
        ch.ready_sent = true;
    /* Heartbeat right away so the supervisor has metrics as soon as the worker serves. */
    if (ch.ev_hb) {
        size_t n = build_hb(ch.buf, sizeof(ch.buf) - sizeof(struct ctl_hdr));
        send_msg(CTL_HEARTBEAT, ch.buf, n, 0);
    }
}

bool chan_drain_handoff(void)
{
    return ch.drain_handoff;
}

int chan_send_fds(const int *fds, int n)
{
    uint8_t out[sizeof(struct ctl_hdr) + sizeof(struct ctl_handoff)];
    struct ctl_handoff ho = {.count = (uint32_t)n};
    int len;

    if (ch.fd < 0 || n < 1 || n > CTL_HANDOFF_MAX)
        return -1;
    len = ctl_encode(out, sizeof(out), CTL_HANDOFF, ch.seq + 1, ch.gen, &ho, sizeof(ho));
    if (len < 0)
        return -1;
    ssize_t w = fd_send_fds(ch.fd, out, (size_t)len, fds, n);
    if (w == len) {
        ch.seq++;
        return 0;
    }
    /* ETOOMANYREFS: too many fds in flight for this user right now; like a full channel */
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ETOOMANYREFS))
        return 1;
    log_warn("control channel sendmsg(HANDOFF, %d fds): %s", n,
             w < 0 ? strerror(errno) : "short write");
    return -1;
}

void chan_send_bye(void)
{
    uint8_t *p = ch.buf;
    uint32_t reason[2] = {ch.stop_called ? CTL_BYE_STOP : CTL_BYE_DRAINED, 0};
    size_t n;

    if (ch.fd < 0)
        return;
    memcpy(p, reason, sizeof(reason));
    n = build_hb(p + 8, sizeof(ch.buf) - sizeof(struct ctl_hdr) - 8);
    send_msg(CTL_BYE, p, 8 + n, 200);
}

void chan_close(void)
{
    if (ch.ev_hb) {
        event_free(ch.ev_hb);
        ch.ev_hb = NULL;
    }
    if (ch.ev_read) {
        event_free(ch.ev_read);
        ch.ev_read = NULL;
    }
    if (ch.fd >= 0) {
        close(ch.fd);
        ch.fd = -1;
    }
}
