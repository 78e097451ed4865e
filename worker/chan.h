/*
 * chan.h - the worker's end of the supervisor control channel (SOCK_SEQPACKET, messages in
 * proto/ctl_codec.h): HELLO at start, READY once the worker can serve, HEARTBEAT with a
 * metrics snapshot every server.heartbeat_ms, BYE before exit; DRAIN and STOP from the
 * supervisor. EOF on the channel means the supervisor is gone: the worker drains and exits.
 *
 * Spawn contract (supervisor -> worker argv):
 *   csmcp-worker -c CONFIG --slot N --generation G --ctl-fd FD --listen-fds FD[,FD...]
 * The config hash the worker computes (cfg_hash) is sent in HELLO; the supervisor refuses a
 * worker whose hash differs from the generation's.
 *
 * Connection handoff (reload without loss): a DRAIN may carry CTL_DRAIN_F_HANDOFF
 * (chan_drain_handoff()); the draining worker then passes its idle connections up with
 * chan_send_fds(), and the supervisor passes them to a worker of the new generation, whose
 * on_adopt hook receives them.
 */
#ifndef CSMCP_CHAN_H
#define CSMCP_CHAN_H

#include <stdbool.h>
#include <stdint.h>

struct event_base;

struct chan_hooks {
    void (*on_drain)(void *arg); /* DRAIN received or supervisor gone: start draining */
    void (*on_stop)(void *arg);  /* STOP received: exit now */
    void *arg;
    /* Connections passed by the supervisor (HANDOFF): fds are owned by the hook from now on
     * (each CLOEXEC, blocking mode as the sender left it). lost: connections of that message
     * that did not arrive (our fd limit truncated it; the kernel closed them). NULL: the
     * worker does not adopt, and says so in HELLO. */
    void (*on_adopt)(const int *fds, int n, int lost, void *arg);
};

/* Starts the channel on fd (owned from now on); sends HELLO. Returns 0 or -1. */
int chan_start(struct event_base *base, int fd, int slot, int generation, uint64_t cfg_hash,
               const struct chan_hooks *hooks);
/* Reports READY (database and Redis reachable, listeners armed). Idempotent. */
void chan_send_ready(void);
/* The DRAIN received asked for a handoff (a reload, not a shutdown; false on supervisor EOF). */
bool chan_drain_handoff(void);
/*
 * Sends n (1..CTL_HANDOFF_MAX) connection fds to the supervisor in one HANDOFF message. The
 * fds stay the caller's: on 0 the kernel holds its own references and the caller closes its
 * copies; on 1 (the channel is full, try later) or -1 (channel gone) nothing was sent.
 */
int chan_send_fds(const int *fds, int n);
/* Reports BYE with the final metrics snapshot, just before exit. */
void chan_send_bye(void);
void chan_close(void);

#endif
