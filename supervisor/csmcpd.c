/*
 * csmcpd.c - the supervisor: owns the listening sockets, the control socket, the admin
 * listener, the config generations and the slot table (slots.c); fork+execs csmcp-worker
 * processes and keeps server.workers of them READY.
 *
 * Invariants (PostgreSQL postmaster rules):
 * - Never blocks, never opens PostgreSQL/Redis, never parses client traffic of the main
 *   listeners. One libevent loop: evsignals (handlers only set libevent's flags), one control
 *   channel per worker, a 100 ms tick, the control socket and the admin HTTP listener.
 * - The listening sockets are created once (or adopted from systemd) and never closed while
 *   running: every generation inherits the same fds, so connections queued in the kernel
 *   survive reloads and worker deaths.
 * - Every fd of the supervisor is CLOEXEC; a child gets exactly its control-channel end and the
 *   listen fds (flags cleared in the child between fork and exec). Signals are blocked across
 *   fork; the child resets every disposition and unblocks just before exec, so a signal can
 *   never land in the supervisor's libevent signal pipe from the child.
 * - Reload: validate the new config before anything is spawned; generation g+1 must be
 *   entirely READY before generation g gets DRAIN (slots.c); sd_notify RELOADING=1 ... READY=1.
 * - Connection handoff: a reload's DRAIN asks the old workers to hand their idle connections
 *   up (HANDOFF, SCM_RIGHTS); handoff.c passes them on to the new generation, bounded, never
 *   blocking.
 *
 * Also here: the control channel to each worker (on_chan), the slots ops (fork+exec, kill,
 * salvage of a dead worker's last messages), reload, shutdown and start-up. The status and
 * /metrics text is in sup_report.c, the control socket and admin HTTP in sup_ctl.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <linux/close_range.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <event2/event.h>

#if defined(__has_include)
#if __has_include(<systemd/sd-daemon.h>)
#include <systemd/sd-daemon.h>
#define HAVE_SD 1
#endif
#endif
#ifndef HAVE_SD
#define SD_LISTEN_FDS_START 3
static int sd_notify(int unset, const char *state)
{
    (void)unset;
    (void)state;
    return 0;
}
static int sd_listen_fds(int unset)
{
    (void)unset;
    return 0;
}
static int sd_watchdog_enabled(int unset, uint64_t *usec)
{
    (void)unset;
    (void)usec;
    return 0;
}
#endif

#include "backoff.h"
#include "cfg.h"
#include "csmcp_build.h"
#include "ctl_codec.h"
#include "fdutil.h"
#include "handoff.h"
#include "log.h"
#include "scrub.h"
#include "secret.h"
#include "slots.h"
#include "sup.h"
#include "sup_int.h"
#include "sup_metrics.h"

#define MAX_LISTEN 16
#define TICK_MS    100

static struct {
    struct event_base *base;
    char cfg_path[PATH_MAX];
    struct cfg cfg; /* current generation */
    uint64_t hash;
    struct cfg next; /* generation being started by a reload */
    uint64_t next_hash;
    bool have_next;
    char snap[PATH_MAX];      /* private copy of the current generation's config file */
    char next_snap[PATH_MAX]; /* ... and of the generation a reload is starting */
    int lfd[MAX_LISTEN];
    int nl;
    char lfds_arg[128];
    char worker_bin[PATH_MAX];
    struct event *tick;
    struct event *spawn_timer; /* one-shot, at the earliest scheduled respawn */
    struct event *sigs[6];
    struct slots slots;
    struct supm_table retired;
    uint64_t rng;
    int64_t started_ms;
    bool ready_notified;
    uint64_t reloads_rejected; /* invalid config or refused */
    sup_reload_cb reload_cb;
    void *reload_arg;
    uint64_t wd_usec;
    int64_t last_wd_ms;
    int64_t last_ready_seen_ms;
    char status[256];
    bool hup_pending; /* SIGHUP received during a reload */
    pid_t pid;
} sup;

void sup_view(struct sup_view *out)
{
    out->slots = &sup.slots;
    out->retired = &sup.retired;
    out->cfg_path = sup.cfg_path;
    out->cfg = &sup.cfg;
    out->pid = sup.pid;
    out->started_ms = sup.started_ms;
    out->reloads_rejected = sup.reloads_rejected;
}

static void notifyf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void notifyf(const char *fmt, ...)
{
    char buf[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    sd_notify(0, buf);
}

static void params_from_cfg(const struct cfg *c, struct slots_params *p)
{
    memset(p, 0, sizeof(*p));
    /* The monitor process (monitor.enabled) is one more slot after the request workers. */
    p->workers = c->server_workers + (c->monitor_enabled ? 1 : 0);
    p->worker_timeout_ms = c->server_worker_timeout * 1000;
    p->drain_timeout_ms = c->server_drain_timeout * 1000;
    p->kill_grace_ms = c->server_kill_grace * 1000;
    p->backoff_min_ms = c->server_backoff_min_ms;
    p->backoff_max_ms = c->server_backoff_max_ms;
    p->stable_after_ms = c->server_stable_after * 1000;
    p->crash_limit = c->server_crash_limit;
    p->crash_window_ms = c->server_crash_window * 1000;
    p->ready_timeout_ms = c->server_ready_timeout * 1000;
}

static void apply_log_cfg(const struct cfg *c)
{
    int lvl = log_level_parse(c->log_level);
    if (lvl >= 0)
        log_set_level((enum log_level)lvl);
    log_set_json(strcmp(c->log_format, "json") == 0);
}

/* The worker binary of a generation: server.worker_binary, else ../worker/csmcp-worker next
 * to this binary (build tree), else the installed one. */
static void worker_binary(const struct cfg *c, char *out, size_t len)
{
    char self[PATH_MAX];
    ssize_t n;

    if (c->server_worker_binary && c->server_worker_binary[0]) {
        snprintf(out, len, "%s", c->server_worker_binary);
        return;
    }
    n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        char *slash;
        self[n] = '\0';
        slash = strrchr(self, '/');
        if (slash) {
            *slash = '\0';
            snprintf(out, len, "%.*s/../worker/csmcp-worker", (int)(len - 32), self);
            if (access(out, X_OK) == 0)
                return;
        }
    }
    snprintf(out, len, "%s", CSMCP_INSTALLED_WORKER);
}

/*
 * Workers of generation G load a private copy of the file as it was when G was validated,
 * so a worker restarted after a crash still gets G's configuration when the file on disk has
 * been edited (or broken) since. The copy sits next to the control socket, mode 0600, and is
 * loaded once more here: its hash must equal the validated one (the file did not change
 * between the two reads). Libconfig @include paths are resolved from the working directory,
 * which the copy does not change.
 */
static int snapshot_config(uint32_t gen, const struct cfg *loaded, char *snap, size_t snaplen,
                           char *err, size_t errlen)
{
    char dir[PATH_MAX], buf[65536];
    struct cfg check;
    FILE *in = NULL;
    int out = -1, rc = -1;
    size_t n;

    snprintf(dir, sizeof(dir), "%s", sup.cfg.control_socket ? sup.cfg.control_socket : ".");
    snprintf(snap, snaplen, "%s/.csmcpd-%d-gen%u.conf", dirname(dir), (int)sup.pid, gen);
    in = fopen(sup.cfg_path, "re");
    if (!in) {
        snprintf(err, errlen, "%s: %s", sup.cfg_path, strerror(errno));
        goto out;
    }
    out = open(snap, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (out < 0) {
        snprintf(err, errlen, "config copy %s: %s", snap, strerror(errno));
        goto out;
    }
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
        if (write(out, buf, n) != (ssize_t)n) {
            snprintf(err, errlen, "config copy %s: %s", snap, strerror(errno));
            goto out_unlink;
        }
    if (ferror(in)) {
        snprintf(err, errlen, "%s: read error", sup.cfg_path);
        goto out_unlink;
    }
    if (cfg_load(snap, &check, err, errlen) < 0)
        goto out_unlink;
    if (cfg_hash(&check) != cfg_hash(loaded)) {
        snprintf(err, errlen, "%s changed while it was being loaded; try again", sup.cfg_path);
        cfg_free(&check);
        goto out_unlink;
    }
    cfg_free(&check);
    rc = 0;
    goto out;
out_unlink:
    unlink(snap);
out:
    if (out >= 0)
        close(out);
    if (in)
        fclose(in);
    if (rc < 0)
        snap[0] = '\0';
    return rc;
}

static const struct cfg *cfg_for_gen(uint32_t gen, uint64_t *hash)
{
    if (sup.have_next && gen == sup.slots.new_gen) {
        *hash = sup.next_hash;
        return &sup.next;
    }
    *hash = sup.hash;
    return &sup.cfg;
}

/* ---- control channel (supervisor end) ---- */

static void chan_send(struct slots_worker *w, enum ctl_type type, const void *p, size_t len)
{
    struct wio *io = w->io;
    uint8_t buf[64];
    int n;

    if (!io || io->fd < 0)
        return;
    n = ctl_encode(buf, sizeof(buf), type, ++io->seq, w->gen, p, len);
    if (n > 0 && send(io->fd, buf, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) != n)
        log_warn("worker slot %d pid %d: send(%s): %s", w->slot, (int)w->pid, ctl_type_name(type),
                 strerror(errno));
}

static void chan_drop(struct wio *io)
{
    if (io->ev) {
        event_free(io->ev);
        io->ev = NULL;
    }
    if (io->fd >= 0) {
        close(io->fd);
        io->fd = -1;
    }
}

static void store_snapshot(struct wio *io, const uint8_t *p)
{
    struct ctl_heartbeat hb;
    uint8_t *copy;

    memcpy(&hb, p, sizeof(hb));
    if ((hb.flags & CTL_HB_TRUNCATED) && !io->trunc_warned) {
        io->trunc_warned = true;
        log_warn("a worker's metrics snapshot exceeds %d bytes: some series are missing",
                 CTL_MSG_MAX);
    }
    io->conns = hb.conns_active;
    io->lag_us = hb.loop_lag_us;
    copy = malloc(hb.snap_len ? hb.snap_len : 1);
    if (!copy)
        return;
    memcpy(copy, p + sizeof(hb), hb.snap_len);
    free(io->snap);
    io->snap = copy;
    io->snap_len = hb.snap_len;
}

static void after_event(void);

/* recv() of one message and its SCM_RIGHTS fds (CLOEXEC); *trunc: the kernel cut them. */
static ssize_t recv_msg(int fd, uint8_t *buf, size_t cap, int *fds, int *nfds, bool *trunc)
{
    return fd_recv_fds(fd, buf, cap, fds, CTL_HANDOFF_MAX, nfds, trunc);
}

static void on_chan(evutil_socket_t fd, short what, void *arg)
{
    static uint8_t buf[CTL_MSG_MAX + 1];
    struct slots_worker *w = arg;
    struct wio *io = w->io;
    int64_t now = sup_now_ms();

    (void)what;
    for (int i = 0; i < 32 && io->fd >= 0; i++) {
        struct ctl_hdr h;
        const uint8_t *p;
        int fds[CTL_HANDOFF_MAX], nfds;
        bool trunc;
        ssize_t n = recv_msg(fd, buf, sizeof(buf), fds, &nfds, &trunc);
        int rc;

        /* A worker that exits with a message of ours unread makes the kernel report
         * ECONNRESET once, before the messages it sent last (a HANDOFF holding idle client
         * connections, its BYE): read on, EOF follows them. */
        if (n < 0 && (errno == EINTR || errno == ECONNRESET))
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n > 0 && nfds > 0) {
            /* Client connections come only with HANDOFF, from a worker draining for a reload. */
            struct ctl_handoff ho;
            rc = ctl_decode(buf, (size_t)n, false, &h, &p);
            if (rc == 0 && h.gen == w->gen && h.type == CTL_HANDOFF && w->state == SLOTS_DRAINING) {
                memcpy(&ho, p, sizeof(ho));
                if ((uint32_t)nfds == ho.count || ((uint32_t)nfds < ho.count && trunc)) {
                    handoff_forward(w, fds, nfds, (int)ho.count - nfds);
                    continue;
                }
            }
            handoff_close_fds(fds, nfds);
            chan_drop(io);
            slots_on_bad_worker(&sup.slots, w, "unexpected file descriptors on the channel", now);
            break;
        }
        if (n <= 0) {
            /* The worker closed its end: it is exiting; the reaper will see it. */
            log_debug("worker slot %d pid %d: control channel closed", w->slot, (int)w->pid);
            chan_drop(io);
            break;
        }
        rc = ctl_decode(buf, (size_t)n, false, &h, &p);
        if (rc == 0 && h.gen != w->gen)
            rc = CTL_E_SIZE;
        if (rc < 0) {
            char why[96];
            snprintf(why, sizeof(why), "bad control message: %s", ctl_strerror(rc));
            chan_drop(io);
            slots_on_bad_worker(&sup.slots, w, why, now);
            break;
        }
        switch (h.type) {
        case CTL_HELLO: {
            struct ctl_hello hello;
            struct ctl_hello_ack ack;
            uint64_t hash;
            const struct cfg *c = cfg_for_gen(w->gen, &hash);

            memcpy(&hello, p, sizeof(hello));
            if (hello.pid != (int32_t)w->pid || hello.slot != w->slot || hello.gen != w->gen) {
                chan_drop(io);
                slots_on_bad_worker(&sup.slots, w, "HELLO does not match the spawned worker", now);
                return;
            }
            if (hello.cfg_hash != hash) {
                chan_drop(io);
                slots_on_bad_worker(&sup.slots, w,
                                    "config hash differs from its generation's (the config file "
                                    "changed on disk without a reload?)",
                                    now);
                return;
            }
            io->adopts = (hello.flags & CTL_HELLO_F_ADOPT) != 0;
            ack.heartbeat_ms = (uint32_t)c->server_heartbeat_ms;
            ack.drain_timeout_ms = (uint32_t)c->server_drain_timeout * 1000;
            chan_send(w, CTL_HELLO, &ack, sizeof(ack));
            slots_on_hello(&sup.slots, w, now);
            break;
        }
        case CTL_READY:
            if (!w->hello) {
                chan_drop(io);
                slots_on_bad_worker(&sup.slots, w, "READY before HELLO", now);
                return;
            }
            slots_on_ready(&sup.slots, w, now);
            break;
        case CTL_HEARTBEAT:
            store_snapshot(io, p);
            slots_on_heartbeat(&sup.slots, w, now);
            break;
        case CTL_BYE: {
            uint32_t reason;
            memcpy(&reason, p, sizeof(reason));
            store_snapshot(io, p + 8);
            log_info("worker slot %d gen %u pid %d: BYE (reason %u)", w->slot, w->gen, (int)w->pid,
                     reason);
            break;
        }
        case CTL_HANDOFF: {
            /* Every fd cut by our own fd limit (the kernel closed them): count, not blame. */
            struct ctl_handoff ho;
            memcpy(&ho, p, sizeof(ho));
            if (trunc && w->state == SLOTS_DRAINING) {
                handoff_forward(w, fds, 0, (int)ho.count);
                break;
            }
            chan_drop(io);
            slots_on_bad_worker(&sup.slots, w, "HANDOFF without file descriptors", now);
            return;
        }
        default:
            chan_drop(io);
            slots_on_bad_worker(&sup.slots, w, "unexpected message type", now);
            return;
        }
    }
    after_event();
}

/* ---- slots ops: the OS side of slots.c ---- */

/* The worker's environment: ours minus what systemd meant for csmcpd alone (only the
 * supervisor talks to systemd; socket-activation variables were consumed). Caller frees the
 * array (the strings are borrowed from environ). */
static char **worker_env(void)
{
    static const char *const drop[] = {"NOTIFY_SOCKET=", "WATCHDOG_USEC=", "WATCHDOG_PID=",
                                       "LISTEN_FDS=",    "LISTEN_PID=",    "LISTEN_FDNAMES="};
    extern char **environ;
    size_t n = 0, k = 0;
    char **v;

    while (environ[n])
        n++;
    v = calloc(n + 1, sizeof(*v));
    if (!v)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        bool keep = true;
        for (size_t d = 0; d < sizeof(drop) / sizeof(drop[0]); d++)
            if (strncmp(environ[i], drop[d], strlen(drop[d])) == 0)
                keep = false;
        if (keep)
            v[k++] = environ[i];
    }
    return v;
}

static int op_spawn(void *arg, struct slots_worker *w)
{
    uint64_t hash;
    const struct cfg *c = cfg_for_gen(w->gen, &hash);
    char slot[16], gen[16], fdarg[16], bin[PATH_MAX];
    char *snap = sup.have_next && w->gen == sup.slots.new_gen ? sup.next_snap : sup.snap;
    /* The slot after the request workers runs the monitor role: no listening socket. */
    bool monitor = c->monitor_enabled && w->slot == c->server_workers;
    char *argv[] = {bin,
                    "-c",
                    snap,
                    "--slot",
                    slot,
                    "--generation",
                    gen,
                    "--ctl-fd",
                    fdarg,
                    monitor ? "--role" : "--listen-fds",
                    monitor ? "monitor" : sup.lfds_arg,
                    NULL};
    sigset_t all, old;
    struct wio *io;
    char **envp = NULL;
    int sv[2];
    pid_t pid;

    (void)arg;
    io = calloc(1, sizeof(*io));
    if (!io)
        return -1;
    envp = worker_env();
    if (!envp)
        goto fail_io;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0) {
        log_error("socketpair(control channel, slot %d): %s", w->slot, strerror(errno));
        goto fail_io;
    }
    worker_binary(c, bin, sizeof(bin));
    snprintf(slot, sizeof(slot), "%d", w->slot);
    snprintf(gen, sizeof(gen), "%u", w->gen);
    snprintf(fdarg, sizeof(fdarg), "%d", sv[1]);

    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, &old);
    pid = fork();
    if (pid == 0) {
        /* Child: async-signal-safe calls only until execv. */
        sigset_t none;
        struct sigaction dfl;
        memset(&dfl, 0, sizeof(dfl));
        dfl.sa_handler = SIG_DFL;
        for (int s = 1; s < NSIG; s++)
            if (s != SIGKILL && s != SIGSTOP)
                sigaction(s, &dfl, NULL);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != sup.pid)
            _exit(1);
        /* Anything csmcpd itself inherited without CLOEXEC must not reach the worker either:
         * mark every fd >= 3 CLOEXEC, then clear the flag on the keep-list only. */
        syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC);
        fd_set_cloexec(sv[1], false);
        for (int i = 0; i < sup.nl && !monitor; i++)
            fd_set_cloexec(sup.lfd[i], false);
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execve(argv[0], argv, envp);
        {
            static const char msg[] = "csmcpd: execv(worker binary) failed\n";
            ssize_t wr = write(2, msg, sizeof(msg) - 1);
            (void)wr;
        }
        _exit(127);
    }
    {
        int e = errno;
        sigprocmask(SIG_SETMASK, &old, NULL);
        errno = e;
    }
    close(sv[1]);
    free(envp);
    envp = NULL;
    if (pid < 0) {
        log_error("fork(worker slot %d): %s", w->slot, strerror(errno));
        close(sv[0]);
        goto fail_io;
    }
    w->pid = pid;
    io->fd = sv[0];
    io->monitor = monitor;
    io->ev = event_new(sup.base, sv[0], EV_READ | EV_PERSIST, on_chan, w);
    if (!io->ev || event_add(io->ev, NULL) < 0)
        log_error("worker slot %d pid %d: cannot watch the control channel", w->slot, (int)pid);
    w->io = io;
    return 0;
fail_io:
    free(envp);
    free(io);
    return -1;
}

static void op_kill(void *arg, struct slots_worker *w, int sig)
{
    (void)arg;
    if (w->pid > 0 && kill(w->pid, sig) < 0 && errno != ESRCH)
        log_warn("kill(%d, %d): %s", (int)w->pid, sig, strerror(errno));
}

static void op_send(void *arg, struct slots_worker *w, enum slots_msg msg, int deadline_ms)
{
    (void)arg;
    if (msg == SLOTS_MSG_DRAIN) {
        struct ctl_drain d = {.deadline_ms = deadline_ms > 0 ? (uint32_t)deadline_ms : 0};
        /* Ask for a handoff only when the generation taking over can adopt (a worker binary
         * older than the supervisor cannot: its connections get the grace close). */
        if (w->handoff &&
            handoff_adopters(sup.slots.reloading ? sup.slots.new_gen : sup.slots.gen, NULL, 0) > 0)
            d.flags = CTL_DRAIN_F_HANDOFF;
        chan_send(w, CTL_DRAIN, &d, sizeof(d));
    } else {
        chan_send(w, CTL_STOP, NULL, 0);
    }
}

/*
 * The worker is gone but its last messages may still wait in our end of the channel: the
 * SIGCHLD can be handled before the channel's readable event in the same loop iteration. Its
 * last HANDOFF batches hold the only references to idle client connections (closing the
 * channel would close them under the clients) and BYE holds its final counters, so read what
 * is left before the channel is closed. Bounded; never blocks (the peer is dead).
 */
static void salvage(struct slots_worker *w, struct wio *io)
{
    static uint8_t buf[CTL_MSG_MAX + 1];
    int conns = 0;

    for (int i = 0; i < 4096 && io->fd >= 0; i++) {
        struct ctl_hdr h;
        const uint8_t *p;
        int fds[CTL_HANDOFF_MAX], nfds;
        bool trunc;
        ssize_t n = recv_msg(io->fd, buf, sizeof(buf), fds, &nfds, &trunc);

        if (n < 0 && (errno == EINTR || errno == ECONNRESET))
            continue; /* ECONNRESET: see on_chan */
        if (n <= 0) {
            handoff_close_fds(fds, nfds);
            break;
        }
        if (ctl_decode(buf, (size_t)n, false, &h, &p) < 0 || h.gen != w->gen) {
            handoff_close_fds(fds, nfds);
            continue;
        }
        if (h.type == CTL_HANDOFF) {
            struct ctl_handoff ho;
            memcpy(&ho, p, sizeof(ho));
            if ((uint32_t)nfds <= ho.count) {
                handoff_forward(w, fds, nfds, (int)ho.count - nfds);
                conns += nfds;
                continue;
            }
        } else if (h.type == CTL_HEARTBEAT) {
            store_snapshot(io, p);
        } else if (h.type == CTL_BYE) {
            store_snapshot(io, p + 8);
        }
        handoff_close_fds(fds, nfds);
    }
    if (conns > 0)
        log_info("worker slot %d pid %d exited with %d handed-off connections still in its "
                 "channel: passed on",
                 w->slot, (int)w->pid, conns);
}

static void op_exited(void *arg, struct slots_worker *w)
{
    struct wio *io = w->io;
    (void)arg;
    if (!io)
        return;
    salvage(w, io);
    /* Counters of a gone worker live on in the retired totals: /metrics never goes back. */
    if (io->snap && supm_fold(&sup.retired, io->snap, io->snap_len, true) < 0)
        log_warn("worker slot %d pid %d: could not retire its metrics", w->slot, (int)w->pid);
    chan_drop(io);
    free(io->snap);
    free(io);
    w->io = NULL;
}

static uint32_t op_rand(void *arg)
{
    (void)arg;
    return backoff_rand(&sup.rng);
}

static const struct slots_ops ops = {op_spawn, op_kill, op_send, op_exited, op_rand, NULL};

/* ---- reload ---- */

static void reload_done(bool ok, const char *msg)
{
    sup_reload_cb cb = sup.reload_cb;
    void *arg = sup.reload_arg;

    sup.reload_cb = NULL;
    sup.reload_arg = NULL;
    if (ok)
        notifyf("READY=1\nSTATUS=generation %u: %d workers", sup.slots.gen, sup.slots.nslots);
    else
        notifyf("READY=1\nSTATUS=reload failed: %s", msg);
    if (cb)
        cb(arg, ok, msg);
}

int sup_reload(sup_reload_cb cb, void *arg, char *err, size_t errlen)
{
    struct cfg nc;
    struct slots_params p;
    char keys[512], bin[PATH_MAX];
    struct timespec ts;

    if (sup.slots.shutdown) {
        snprintf(err, errlen, "shutting down");
        return -1;
    }
    if (sup.slots.reloading || sup.have_next) {
        snprintf(err, errlen, "a reload is already in progress");
        log_warn("reload refused: %s", err);
        return -1;
    }
    clock_gettime(CLOCK_MONOTONIC, &ts);
    notifyf("RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading",
            (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000);
    log_notice("reload: loading %s", sup.cfg_path);
    if (cfg_load(sup.cfg_path, &nc, err, errlen) < 0) {
        log_error("reload failed, keeping generation %u: %s", sup.slots.gen, err);
        sup.reloads_rejected++;
        notifyf("READY=1\nSTATUS=reload failed: %s", err);
        return -1;
    }
    if (secret_check_config(&nc, err, errlen) < 0) {
        log_error("reload refused, keeping generation %u: %s", sup.slots.gen, err);
        cfg_free(&nc);
        sup.reloads_rejected++;
        notifyf("READY=1\nSTATUS=reload refused: %s", err);
        return -1;
    }
    worker_binary(&nc, bin, sizeof(bin));
    if (access(bin, X_OK) < 0) {
        snprintf(err, errlen, "worker binary %s: %s", bin, strerror(errno));
        log_error("reload refused, keeping generation %u: %s", sup.slots.gen, err);
        cfg_free(&nc);
        sup.reloads_rejected++;
        notifyf("READY=1\nSTATUS=reload refused: %s", err);
        return -1;
    }
    if (cfg_restart_diff(&sup.cfg, &nc, keys, sizeof(keys)) > 0) {
        snprintf(err, errlen, "%s changed: these keys need a restart of csmcpd", keys);
        log_error("reload refused, keeping generation %u: %s", sup.slots.gen, err);
        cfg_free(&nc);
        sup.reloads_rejected++;
        notifyf("READY=1\nSTATUS=reload refused: %s", err);
        return -1;
    }
    if (snapshot_config(sup.slots.gen + 1, &nc, sup.next_snap, sizeof(sup.next_snap), err, errlen) <
        0) {
        log_error("reload failed, keeping generation %u: %s", sup.slots.gen, err);
        cfg_free(&nc);
        sup.reloads_rejected++;
        notifyf("READY=1\nSTATUS=reload failed: %s", err);
        return -1;
    }
    sup.next = nc;
    sup.next_hash = cfg_hash(&nc);
    sup.have_next = true;
    sup.reload_cb = cb;
    sup.reload_arg = arg;
    params_from_cfg(&nc, &p);
    if (slots_reload(&sup.slots, &p, sup_now_ms(), err, errlen) < 0) {
        unlink(sup.next_snap);
        cfg_free(&sup.next);
        sup.have_next = false;
        sup.reload_cb = NULL;
        return -1;
    }
    after_event();
    return 0;
}

void sup_reload_cancel(void *arg)
{
    if (sup.reload_arg == arg) {
        sup.reload_cb = NULL;
        sup.reload_arg = NULL;
    }
}

static void check_reload(void)
{
    char msg[300];

    switch (slots_reload_take(&sup.slots)) {
    case SLOTS_RELOAD_OK:
        cfg_free(&sup.cfg);
        sup.cfg = sup.next;
        sup.hash = sup.next_hash;
        /* generation g's workers loaded their copy long ago and are never respawned */
        unlink(sup.snap);
        memcpy(sup.snap, sup.next_snap, sizeof(sup.snap));
        sup.have_next = false;
        apply_log_cfg(&sup.cfg);
        snprintf(msg, sizeof(msg), "generation %u", sup.slots.gen);
        log_notice("reload complete: %s", msg);
        reload_done(true, msg);
        break;
    case SLOTS_RELOAD_FAILED:
        if (sup.have_next) {
            cfg_free(&sup.next);
            unlink(sup.next_snap);
            sup.have_next = false;
        }
        snprintf(msg, sizeof(msg), "%s", sup.slots.reload_error);
        reload_done(false, msg);
        break;
    default:
        break;
    }
}

/* ---- shutdown ---- */

static void begin_shutdown(bool fast)
{
    if (sup.slots.shutdown >= (fast ? 2 : 1))
        return;
    log_notice("%s shutdown: %d workers", fast ? "fast" : "graceful",
               slots_count_state(&sup.slots, SLOTS_SPAWNING) +
                   slots_count_state(&sup.slots, SLOTS_READY) +
                   slots_count_state(&sup.slots, SLOTS_DRAINING));
    notifyf("STOPPING=1\nSTATUS=%s", fast ? "stopping (fast)" : "draining");
    slots_shutdown(&sup.slots, fast, sup_now_ms());
    check_reload();
    supctl_shutdown();
    after_event();
}

void sup_stop(void)
{
    begin_shutdown(false);
}

/* ---- loop ---- */

int sup_ready_in_gen(uint32_t gen)
{
    int n = 0;
    for (const struct slots_worker *w = sup.slots.workers; w; w = w->next)
        if (w->gen == gen && w->state == SLOTS_READY)
            n++;
    return n;
}

static void update_status(void)
{
    char st[256], rl[64] = "";

    if (sup.slots.reloading)
        snprintf(rl, sizeof(rl), ", reloading (generation %u: %d/%d ready)", sup.slots.new_gen,
                 sup_ready_in_gen(sup.slots.new_gen), sup.slots.newp.workers);
    snprintf(st, sizeof(st), "generation %u: %d/%d workers ready%s%s", sup.slots.gen,
             sup_ready_in_gen(sup.slots.gen), sup.slots.nslots,
             sup.slots.crash_loop ? ", CRASH LOOP" : "", rl);
    if (strcmp(st, sup.status) != 0 && !sup.slots.shutdown) {
        snprintf(sup.status, sizeof(sup.status), "%s", st);
        notifyf("STATUS=%s", st);
    }
}

static void after_event(void)
{
    check_reload();
    if (sup.hup_pending && !sup.slots.reloading && !sup.slots.shutdown) {
        char err[512];
        sup.hup_pending = false;
        log_notice("SIGHUP (deferred): reload");
        sup_reload(NULL, NULL, err, sizeof(err));
    }
    if (!sup.ready_notified && slots_all_ready(&sup.slots)) {
        sup.ready_notified = true;
        log_notice("all %d workers READY (generation %u)", sup.slots.nslots, sup.slots.gen);
        notifyf("READY=1\nMAINPID=%d", (int)sup.pid);
    }
    update_status();
    /* The 100 ms tick bounds every timer; a respawn is also fired on time by a one-shot. */
    if (sup.spawn_timer) {
        int64_t t = slots_next_spawn_ms(&sup.slots), d;
        if (t >= 0) {
            d = t - sup_now_ms();
            if (d < 0)
                d = 0;
            struct timeval tv = {(time_t)(d / 1000), (suseconds_t)(d % 1000) * 1000};
            evtimer_add(sup.spawn_timer, &tv);
        }
    }
    if (slots_done(&sup.slots))
        event_base_loopexit(sup.base, NULL);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    int64_t now = sup_now_ms();
    (void)fd;
    (void)what;
    (void)arg;
    slots_tick(&sup.slots, now);
    if (slots_count_state(&sup.slots, SLOTS_READY) > 0)
        sup.last_ready_seen_ms = now;
    /* systemd watchdog: alive and useful (a READY worker within the last 60 s). */
    if (sup.wd_usec && now - sup.last_wd_ms >= (int64_t)(sup.wd_usec / 2000) &&
        now - sup.last_ready_seen_ms < 60000) {
        sd_notify(0, "WATCHDOG=1");
        sup.last_wd_ms = now;
    }
    after_event();
}

static void reap(void)
{
    int status;
    pid_t pid;

    /* Signals coalesce: reap until nothing is left. */
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
        slots_on_exit(&sup.slots, pid, status, sup_now_ms());
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    char err[512];
    (void)what;
    (void)arg;
    switch (sig) {
    case SIGCHLD:
        reap();
        break;
    case SIGHUP:
        /* A SIGHUP during a reload is remembered and runs once that reload ends, so an edit
         * made meanwhile is not lost; several coalesce into one. */
        if (sup.slots.reloading) {
            log_notice("SIGHUP: a reload is in progress, reloading again after it");
            sup.hup_pending = true;
            break;
        }
        log_notice("SIGHUP: reload");
        sup_reload(NULL, NULL, err, sizeof(err));
        break;
    case SIGTERM:
    case SIGINT:
        log_notice("%s received", sig == SIGTERM ? "SIGTERM" : "SIGINT");
        begin_shutdown(sup.slots.shutdown != 0); /* the second one is fast */
        break;
    case SIGQUIT:
        log_notice("SIGQUIT: fast shutdown");
        begin_shutdown(true);
        break;
    }
    after_event();
}

/* ---- start-up ---- */

static int open_listeners(void)
{
    char err[512];
    int n = sd_listen_fds(1);

    if (n > 0) {
        if (n > MAX_LISTEN)
            fatal("LISTEN_FDS=%d: at most %d sockets", n, MAX_LISTEN);
        log_notice("socket activation: %d listening sockets from systemd; server.listen ignored",
                   n);
        for (int i = 0; i < n; i++) {
            sup.lfd[i] = SD_LISTEN_FDS_START + i;
            fd_set_cloexec(sup.lfd[i], true);
            fd_set_nonblock(sup.lfd[i], true);
        }
        sup.nl = n;
    } else {
        if (sup.cfg.server_listen.n > MAX_LISTEN)
            fatal("server.listen: at most %d addresses", MAX_LISTEN);
        for (int i = 0; i < sup.cfg.server_listen.n; i++) {
            int fd =
                fd_listen_tcp(sup.cfg.server_listen.v[i], sup.cfg.server_backlog, err, sizeof(err));
            if (fd < 0)
                fatal("%s", err);
            log_info("listening on %s (fd %d)", sup.cfg.server_listen.v[i], fd);
            sup.lfd[sup.nl++] = fd;
        }
    }
    if (sup.nl == 0)
        fatal("no listening socket (server.listen is empty)");
    sup.lfds_arg[0] = '\0';
    for (int i = 0; i < sup.nl; i++) {
        size_t l = strlen(sup.lfds_arg);
        snprintf(sup.lfds_arg + l, sizeof(sup.lfds_arg) - l, "%s%d", i ? "," : "", sup.lfd[i]);
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: csmcpd [-c FILE] [-t] [--print-keys] [--print-config] [--version]\n"
               "  -c FILE         configuration file (libconfig); CSMCP_<GROUP>_<KEY> overrides\n"
               "  -t              validate the configuration and exit 0 or 1\n"
               "  --print-keys    print the configuration key reference (Markdown)\n"
               "  --print-config  print the effective configuration (secrets masked)\n");
}

int main(int argc, char **argv)
{
    static const struct option lopts[] = {{"config", required_argument, NULL, 'c'},
                                          {"test", no_argument, NULL, 't'},
                                          {"print-keys", no_argument, NULL, 'K'},
                                          {"print-config", no_argument, NULL, 'P'},
                                          {"version", no_argument, NULL, 'V'},
                                          {"help", no_argument, NULL, 'h'},
                                          {NULL, 0, NULL, 0}};
    const char *path = NULL;
    bool test = false, print_cfg = false;
    char err[1024];
    int opt, ctl_fd, admin_fd = -1;
    struct slots_params p;
    static const int sigs[] = {SIGCHLD, SIGHUP, SIGTERM, SIGINT, SIGQUIT};

    while ((opt = getopt_long(argc, argv, "c:thV", lopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case 't':
            test = true;
            break;
        case 'K':
            cfg_print_reference(stdout);
            return 0;
        case 'P':
            print_cfg = true;
            break;
        case 'V':
            printf("csmcpd %s\n", CSMCP_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 2;
    }
    log_init("csmcpd", LOG_LVL_INFO, false);
    scrub_install_log();
    if (cfg_load(path, &sup.cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (test) {
        printf("%s: configuration OK\n", path ? path : "(defaults)");
        cfg_free(&sup.cfg);
        return 0;
    }
    if (print_cfg) {
        cfg_print(stdout, &sup.cfg);
        cfg_free(&sup.cfg);
        return 0;
    }
    if (!path)
        fatal("-c FILE is required (workers load the same file)");
    if (!realpath(path, sup.cfg_path))
        fatal("realpath(%s): %s", path, strerror(errno));
    /* Workers must load the same file even if csmcpd's cwd changes: re-load by absolute path. */
    cfg_free(&sup.cfg);
    if (cfg_load(sup.cfg_path, &sup.cfg, err, sizeof(err)) < 0)
        fatal("%s", err);
    apply_log_cfg(&sup.cfg);
    log_set_context("supervisor");
    /* A missing or weak session key, or a TLS key that does not match its certificate, would
     * only show up as a crash loop of workers: refuse to start with the reason instead. */
    if (secret_check_config(&sup.cfg, err, sizeof(err)) < 0)
        fatal("%s", err);
    sup.hash = cfg_hash(&sup.cfg);
    sup.pid = getpid();
    sup.started_ms = sup_now_ms();
    sup.last_ready_seen_ms = sup.started_ms;
    sup.rng = (uint64_t)sup.pid * 0x9e3779b97f4a7c15ull ^ (uint64_t)time(NULL);
    worker_binary(&sup.cfg, sup.worker_bin, sizeof(sup.worker_bin));
    if (access(sup.worker_bin, X_OK) < 0)
        fatal("worker binary %s: %s", sup.worker_bin, strerror(errno));
    signal(SIGPIPE, SIG_IGN);

    open_listeners();
    ctl_fd = fd_listen_unix(sup.cfg.control_socket, 64, 0660, err, sizeof(err));
    if (ctl_fd < 0)
        fatal("control socket: %s", err);
    if (sup.cfg.admin_listen && sup.cfg.admin_listen[0]) {
        admin_fd = fd_listen_tcp(sup.cfg.admin_listen, 128, err, sizeof(err));
        if (admin_fd < 0) {
            unlink(sup.cfg.control_socket);
            fatal("admin.listen: %s", err);
        }
    }

    if (snapshot_config(1, &sup.cfg, sup.snap, sizeof(sup.snap), err, sizeof(err)) < 0) {
        unlink(sup.cfg.control_socket);
        fatal("%s", err);
    }

    sup.base = event_base_new();
    if (!sup.base)
        fatal("event_base_new failed");
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        sup.sigs[i] = evsignal_new(sup.base, sigs[i], on_signal, NULL);
        if (!sup.sigs[i] || evsignal_add(sup.sigs[i], NULL) < 0)
            fatal("cannot watch signal %d", sigs[i]);
    }
    if (supctl_start(sup.base, ctl_fd, admin_fd) < 0)
        fatal("cannot start the control socket / admin listener");
    {
        struct timeval tv = {0, TICK_MS * 1000};
        sup.tick = event_new(sup.base, -1, EV_PERSIST, on_tick, NULL);
        sup.spawn_timer = evtimer_new(sup.base, on_tick, NULL);
        if (!sup.tick || !sup.spawn_timer || handoff_init(sup.base, &sup.slots) < 0 ||
            event_add(sup.tick, &tv) < 0)
            fatal("cannot arm the supervisor timers");
    }
    if (sd_watchdog_enabled(0, &sup.wd_usec) <= 0)
        sup.wd_usec = 0;

    log_notice("csmcpd %s starting: %d workers (%s), control socket %s, admin %s", CSMCP_VERSION,
               sup.cfg.server_workers, sup.worker_bin, sup.cfg.control_socket,
               admin_fd >= 0 ? sup.cfg.admin_listen : "off");
    params_from_cfg(&sup.cfg, &p);
    slots_init(&sup.slots, &p, 1, &ops);
    slots_start(&sup.slots, sup_now_ms());
    after_event();

    event_base_dispatch(sup.base);

    log_notice("all workers gone, exiting");
    unlink(sup.cfg.control_socket);
    unlink(sup.snap);
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        event_free(sup.sigs[i]);
    event_free(sup.tick);
    event_free(sup.spawn_timer);
    handoff_shutdown();
    event_base_free(sup.base);
    for (int i = 0; i < sup.nl; i++)
        close(sup.lfd[i]);
    supm_free(&sup.retired);
    cfg_free(&sup.cfg);
    return 0;
}
