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
};

/* Starts the channel on fd (owned from now on); sends HELLO. Returns 0 or -1. */
int chan_start(struct event_base *base, int fd, int slot, int generation, uint64_t cfg_hash,
               const struct chan_hooks *hooks);
/* Reports READY (database and Redis reachable, listeners armed). Idempotent. */
void chan_send_ready(void);
/* Reports BYE with the final metrics snapshot, just before exit. */
void chan_send_bye(void);
void chan_close(void);

#endif
