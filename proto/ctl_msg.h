/*
 * ctl_msg.h - wire structs of the supervisor <-> worker control channel.
 *
 * Transport: one AF_UNIX SOCK_SEQPACKET socketpair per worker, so one send() is one message and
 * EOF means the peer is gone. Every message is a 16-byte header followed by a payload whose size
 * is fixed per type (HEARTBEAT and BYE carry a variable metrics snapshot after a fixed part,
 * bounded by CTL_MSG_MAX). Native endianness and layout: both ends run on the same host, and the
 * version byte guards against mixing builds across a binary upgrade.
 *
 * Direction: worker -> supervisor: HELLO, READY, HEARTBEAT, BYE, HANDOFF.
 *            supervisor -> worker: HELLO (acknowledgement with run-time parameters), DRAIN, STOP,
 *            HANDOFF.
 * An unknown type, a wrong version or a payload of the wrong size ends the peer.
 *
 * HANDOFF carries client connections (SCM_RIGHTS, at most CTL_HANDOFF_MAX fds per message): a
 * worker draining for a reload sends its idle keep-alive connections up, the supervisor passes
 * them down to a worker of the new generation, which adopts them. The layout of version 1 is
 * unchanged (HANDOFF is a new type; DRAIN and HELLO use fields that were reserved and zero), so
 * binaries of either side interoperate: a worker only gets CTL_DRAIN_F_HANDOFF, and only gets
 * HANDOFF messages, from a supervisor that saw CTL_HELLO_F_ADOPT in its HELLO.
 */
#ifndef CSMCP_CTL_MSG_H
#define CSMCP_CTL_MSG_H

#include <assert.h>
#include <stdint.h>

#define CTL_VERSION 1
#define CTL_MSG_MAX 32768 /* whole message, header included */

enum ctl_type {
    CTL_HELLO = 1,
    CTL_READY = 2,
    CTL_HEARTBEAT = 3,
    CTL_DRAIN = 4,
    CTL_STOP = 5,
    CTL_BYE = 6,
    CTL_HANDOFF = 7,
};
#define CTL_TYPE_MAX CTL_HANDOFF

struct ctl_hdr {
    uint8_t version; /* CTL_VERSION */
    uint8_t type;    /* enum ctl_type */
    uint16_t flags;  /* CTL_F_* */
    uint32_t len;    /* payload bytes after the header */
    uint32_t seq;    /* sender's message counter */
    uint32_t gen;    /* config generation of the worker */
};
static_assert(sizeof(struct ctl_hdr) == 16, "ctl_hdr layout");

/* worker -> supervisor, first message. */
#define CTL_HELLO_F_ADOPT 0x1u /* the worker adopts connections sent with HANDOFF */
struct ctl_hello {
    int32_t pid;
    int32_t slot;
    uint32_t gen;
    uint32_t flags;    /* CTL_HELLO_F_* (was reserved: 0 from older workers) */
    uint64_t cfg_hash; /* cfg_hash() of the config the worker loaded */
};
static_assert(sizeof(struct ctl_hello) == 24, "ctl_hello layout");

/* supervisor -> worker, answer to HELLO. */
struct ctl_hello_ack {
    uint32_t heartbeat_ms;
    uint32_t drain_timeout_ms;
};
static_assert(sizeof(struct ctl_hello_ack) == 8, "ctl_hello_ack layout");

#define CTL_READY_DB    0x1u /* database reachable */
#define CTL_READY_REDIS 0x2u /* Redis reachable */
struct ctl_ready {
    uint32_t flags; /* CTL_READY_* */
    uint32_t reserved;
};
static_assert(sizeof(struct ctl_ready) == 8, "ctl_ready layout");

/* Fixed part of HEARTBEAT and BYE; a metrics snapshot (ctl_snap_*) follows. */
#define CTL_HB_TRUNCATED 0x1u /* the snapshot did not fit; some series are missing */
struct ctl_heartbeat {
    uint32_t conns_active;
    uint32_t loop_lag_us;
    uint32_t flags;    /* CTL_HB_* */
    uint32_t snap_len; /* bytes of snapshot after this struct */
};
static_assert(sizeof(struct ctl_heartbeat) == 16, "ctl_heartbeat layout");

/* CTL_DRAIN_F_HANDOFF: the drain is for a reload; hand idle plain-TCP connections up with
 * HANDOFF instead of closing them (a shutdown drain never sets it). */
#define CTL_DRAIN_F_HANDOFF 0x1u
struct ctl_drain {
    uint32_t deadline_ms; /* from receipt */
    uint32_t flags;       /* CTL_DRAIN_F_* (was reserved: 0 from older supervisors) */
};
static_assert(sizeof(struct ctl_drain) == 8, "ctl_drain layout");

/* BYE: reason, then a ctl_heartbeat with the final snapshot. */
enum ctl_bye_reason {
    CTL_BYE_DRAINED = 0,
    CTL_BYE_DEADLINE = 1,
    CTL_BYE_STOP = 2,
    CTL_BYE_ERROR = 3,
};
struct ctl_bye {
    uint32_t reason;
    uint32_t reserved;
    struct ctl_heartbeat hb;
};
static_assert(sizeof(struct ctl_bye) == 24, "ctl_bye layout");

/* HANDOFF payload; the message's SCM_RIGHTS control data holds exactly count fds. */
#define CTL_HANDOFF_MAX 200 /* below the kernel's SCM_MAX_FD (253) */
struct ctl_handoff {
    uint32_t count;
    uint32_t reserved;
};
static_assert(sizeof(struct ctl_handoff) == 8, "ctl_handoff layout");

/*
 * Metrics snapshot entry, packed back to back:
 *   u8 kind, u8 name_len, u16 labels_len, name bytes, labels bytes, then the value block:
 *   counter: u64; gauge: f64; histogram: CTL_HIST_NBUCKETS x u64 per-bucket counts (the last is
 *   the +Inf overflow), u64 count, f64 sum. Values are copied with memcpy (no alignment).
 */
enum ctl_metric_kind {
    CTL_M_COUNTER = 1,
    CTL_M_GAUGE = 2,
    CTL_M_HIST = 3,
};
#define CTL_HIST_NBOUNDS  13
#define CTL_HIST_NBUCKETS (CTL_HIST_NBOUNDS + 1)
#define CTL_NAME_MAX      63
#define CTL_LABELS_MAX    255

#endif
