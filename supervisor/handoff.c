/*
 * handoff.c - the supervisor's side of the reload connection handoff.
 *
 * A reload's DRAIN asks the old workers to hand their idle connections up (HANDOFF,
 * SCM_RIGHTS); each batch is passed straight on to a READY worker of the current generation
 * that announced it adopts (CTL_HELLO_F_ADOPT), round robin, and our copies are closed once it
 * is sent.
 *
 * Invariants:
 * - Never blocks and never reads from a client fd: when every adopting channel is full a batch
 *   waits in a bounded FIFO (HANDOFF_QUEUE_MAX batches, HANDOFF_QUEUE_MS each) retried from a
 *   timer, so the supervisor holds at most HANDOFF_QUEUE_MAX + 1 batches of client fds.
 * - Later batches queue behind earlier ones (order of hand-up is kept).
 * - When no worker can take a batch (shutdown, failed reload, queue full or stale) the
 *   connections are closed and counted in csmcp_supervisor_handoff_connections_total.
 * - Client fds are CLOEXEC like every other fd of the supervisor.
 */
#include "handoff.h"

#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "ctl_codec.h"
#include "fdutil.h"
#include "log.h"
#include "slots.h"
#include "sup_int.h"

static struct {
    const struct slots *slots;
    unsigned rr;                 /* round robin over adopting workers */
    uint64_t forwarded, dropped; /* connections */
} H;

int handoff_adopters(uint32_t gen, struct slots_worker **v, int max)
{
    int n = 0;
    for (struct slots_worker *w = H.slots->workers; w; w = w->next) {
        const struct wio *io = w->io;
        if (w->gen != gen || w->state != SLOTS_READY || !io || io->fd < 0 || !io->adopts)
            continue;
        if (v && n < max)
            v[n] = w;
        n++;
    }
    return n;
}

void handoff_close_fds(const int *fds, int n)
{
    for (int i = 0; i < n; i++)
        close(fds[i]);
}

/* One HANDOFF message with n fds to w. 0 sent, 1 the channel is full (or too many fds are in
 * flight: ETOOMANYREFS), -1 failed. */
static int send_fds(struct slots_worker *w, const int *fds, int n)
{
    struct wio *io = w->io;
    uint8_t out[sizeof(struct ctl_hdr) + sizeof(struct ctl_handoff)];
    struct ctl_handoff ho = {.count = (uint32_t)n};
    int len = ctl_encode(out, sizeof(out), CTL_HANDOFF, io->seq + 1, w->gen, &ho, sizeof(ho));
    ssize_t r;

    if (len < 0)
        return -1;
    r = fd_send_fds(io->fd, out, (size_t)len, fds, n);
    if (r == len) {
        io->seq++;
        return 0;
    }
    if (r < 0 &&
        (errno == EAGAIN || errno == EWOULDBLOCK || errno == ETOOMANYREFS || errno == ENOBUFS)) {
        log_debug("worker slot %d pid %d: sendmsg(HANDOFF, %d fds): %s", w->slot, (int)w->pid, n,
                  strerror(errno));
        return 1;
    }
    log_warn("worker slot %d pid %d: sendmsg(HANDOFF, %d fds): %s", w->slot, (int)w->pid, n,
             r < 0 ? strerror(errno) : "short write");
    return -1;
}

/* Batches waiting because every adopting worker's channel was full (see the invariants). */
#define HANDOFF_QUEUE_MAX 32
#define HANDOFF_QUEUE_MS  5000
#define HANDOFF_RETRY_MS  10
static struct {
    struct {
        int fds[CTL_HANDOFF_MAX];
        int n;
        int from_pid;
        int64_t since_ms;
    } q[HANDOFF_QUEUE_MAX];
    int head, len;
    struct event *timer;
} hq;

/* Passes a batch to the next READY adopting worker of the current generation (round robin).
 * 0 sent (the caller still closes its copies), 1 every such channel is full, -1 nobody can
 * take it. */
static int pass_on(const int *fds, int n, int from_pid)
{
    struct slots_worker *v[SLOTS_MAX];
    int k = H.slots->shutdown ? 0 : handoff_adopters(H.slots->gen, v, SLOTS_MAX);
    bool busy = false;

    if (k > SLOTS_MAX)
        k = SLOTS_MAX;
    for (int i = 0; i < k; i++) {
        struct slots_worker *w = v[(H.rr + (unsigned)i) % (unsigned)k];
        int rc = send_fds(w, fds, n);
        if (rc == 0) {
            H.rr += (unsigned)i + 1;
            H.forwarded += (uint64_t)n;
            log_debug("handoff: %d connections from worker pid %d to worker pid %d", n, from_pid,
                      (int)w->pid);
            return 0;
        }
        busy |= rc > 0;
    }
    return busy ? 1 : -1;
}

static void drop_batch(const int *fds, int n, int from_pid, const char *why)
{
    handoff_close_fds(fds, n);
    H.dropped += (uint64_t)n;
    log_warn("handoff: closed %d idle connections of worker pid %d: %s", n, from_pid, why);
}

static const char *no_taker(void)
{
    return H.slots->shutdown ? "shutting down" : "no READY worker of the current generation adopts";
}

static void handoff_flush(void)
{
    int64_t now = sup_now_ms();

    while (hq.len > 0) {
        int i = hq.head;
        int rc = pass_on(hq.q[i].fds, hq.q[i].n, hq.q[i].from_pid);
        if (rc == 1 && now - hq.q[i].since_ms < HANDOFF_QUEUE_MS)
            break;
        if (rc == 0)
            handoff_close_fds(hq.q[i].fds, hq.q[i].n);
        else
            drop_batch(hq.q[i].fds, hq.q[i].n, hq.q[i].from_pid,
                       rc > 0 ? "every adopting worker's channel stayed full for 5 s" : no_taker());
        hq.head = (hq.head + 1) % HANDOFF_QUEUE_MAX;
        hq.len--;
    }
    if (hq.len > 0 && hq.timer) {
        struct timeval tv = {0, (suseconds_t)HANDOFF_RETRY_MS * 1000};
        evtimer_add(hq.timer, &tv);
    }
}

static void on_handoff_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    handoff_flush();
}

void handoff_forward(const struct slots_worker *from, const int *fds, int n, int lost)
{
    if (lost > 0) {
        H.dropped += (uint64_t)lost;
        log_warn("handoff: %d connections of worker pid %d lost to the supervisor's fd limit", lost,
                 (int)from->pid);
    }
    if (n <= 0)
        return;
    if (hq.len == 0) {
        int rc = pass_on(fds, n, (int)from->pid);
        if (rc == 0) {
            handoff_close_fds(fds, n);
            return;
        }
        if (rc < 0) {
            drop_batch(fds, n, (int)from->pid, no_taker());
            return;
        }
    }
    if (hq.len == HANDOFF_QUEUE_MAX || !hq.timer) {
        drop_batch(fds, n, (int)from->pid, "handoff queue full");
        return;
    }
    {
        int i = (hq.head + hq.len) % HANDOFF_QUEUE_MAX;
        memcpy(hq.q[i].fds, fds, sizeof(int) * (size_t)n);
        hq.q[i].n = n;
        hq.q[i].from_pid = (int)from->pid;
        hq.q[i].since_ms = sup_now_ms();
        hq.len++;
    }
    handoff_flush();
}

int handoff_init(struct event_base *base, const struct slots *slots)
{
    H.slots = slots;
    hq.timer = evtimer_new(base, on_handoff_timer, NULL);
    return hq.timer ? 0 : -1;
}

void handoff_shutdown(void)
{
    for (; hq.len > 0; hq.len--, hq.head = (hq.head + 1) % HANDOFF_QUEUE_MAX)
        handoff_close_fds(hq.q[hq.head].fds, hq.q[hq.head].n);
    event_free(hq.timer);
    hq.timer = NULL;
}

uint64_t handoff_forwarded_total(void)
{
    return H.forwarded;
}

uint64_t handoff_dropped_total(void)
{
    return H.dropped;
}
