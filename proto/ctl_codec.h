/*
 * ctl_codec.h - pure encode/decode of control-channel messages (ctl_msg.h) and of the metrics
 * snapshot they carry. No I/O, no allocation: callers own every buffer.
 */
#ifndef CSMCP_CTL_CODEC_H
#define CSMCP_CTL_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctl_msg.h"

/* Decode errors (negative). */
#define CTL_E_SHORT   (-1) /* shorter than a header, or than its stated length */
#define CTL_E_VERSION (-2) /* version byte differs */
#define CTL_E_TYPE    (-3) /* unknown type */
#define CTL_E_SIZE    (-4) /* payload size wrong for the type, or over CTL_MSG_MAX */
#define CTL_E_SNAP    (-5) /* malformed metrics snapshot */

const char *ctl_type_name(int type);
const char *ctl_strerror(int err);

/*
 * Writes header + payload (len bytes, may be NULL when len is 0) into buf (capacity cap).
 * Returns the total message size, or CTL_E_SIZE when it does not fit or exceeds CTL_MSG_MAX.
 */
int ctl_encode(void *buf, size_t cap, enum ctl_type type, uint32_t seq, uint32_t gen,
               const void *payload, size_t len);

/*
 * Validates one received message of n bytes: version, type, length field equal to n - header,
 * payload size exact for fixed types and consistent (snap_len) for HEARTBEAT and BYE, snapshot
 * well-formed, HANDOFF count within 1..CTL_HANDOFF_MAX (the caller checks it against the fds
 * that came with it). On success fills *hdr, sets *payload to point into buf (borrowed) and
 * returns 0; otherwise a CTL_E_* code. from_supervisor: the message came from the supervisor (a
 * HELLO is then a ctl_hello_ack, and only HELLO, DRAIN, STOP and HANDOFF are valid) rather than
 * from a worker.
 */
int ctl_decode(const void *buf, size_t n, bool from_supervisor, struct ctl_hdr *hdr,
               const uint8_t **payload);

/* One metrics series, decoded (strings NUL-terminated). */
struct ctl_series {
    uint8_t kind; /* enum ctl_metric_kind */
    char name[CTL_NAME_MAX + 1];
    char labels[CTL_LABELS_MAX + 1];
    uint64_t counter;
    double gauge;
    uint64_t buckets[CTL_HIST_NBUCKETS]; /* per-bucket (not cumulative) counts */
    uint64_t count;
    double sum;
};

/* Upper bounds of the histogram buckets in seconds (1 ms .. 10 s); the last bucket is +Inf. */
extern const double ctl_hist_bounds[CTL_HIST_NBOUNDS];

/* Valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*, <= CTL_NAME_MAX) */
bool ctl_metric_name_ok(const char *name, size_t len);
/* Valid label text: printable ASCII, no newline, <= CTL_LABELS_MAX */
bool ctl_metric_labels_ok(const char *labels, size_t len);

/*
 * Appends one series to buf at *off (capacity cap). Returns 0, or -1 when it does not fit or
 * the name/labels are invalid (*off unchanged).
 */
int ctl_snap_put(uint8_t *buf, size_t cap, size_t *off, const struct ctl_series *s);
/*
 * Reads the series at *off of a snapshot of len bytes into *out. Returns 1 and advances *off,
 * 0 at the end, CTL_E_SNAP on malformed input.
 */
int ctl_snap_next(const uint8_t *buf, size_t len, size_t *off, struct ctl_series *out);

#endif
