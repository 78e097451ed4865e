/*
 * ctl_codec.c - encode and validate control-channel messages and metrics snapshots.
 *
 * Invariants: pure functions over caller buffers; a message accepted by ctl_decode has the
 * current version, a known type and exactly the payload size its type requires, and its
 * snapshot (if any) parses to the end with valid names and labels. Anything else is rejected
 * and the caller ends the peer: a control peer is never trusted after one bad message.
 */
#include "ctl_codec.h"

#include <string.h>

const double ctl_hist_bounds[CTL_HIST_NBOUNDS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                  0.25,  0.5,    1.0,   2.5,  5.0,   10.0};

static const char *const type_names[] = {"?",     "HELLO", "READY", "HEARTBEAT",
                                         "DRAIN", "STOP",  "BYE",   "HANDOFF"};

const char *ctl_type_name(int type)
{
    if (type < 1 || type > CTL_TYPE_MAX)
        return "UNKNOWN";
    return type_names[type];
}

const char *ctl_strerror(int err)
{
    switch (err) {
    case 0:
        return "ok";
    case CTL_E_SHORT:
        return "truncated message";
    case CTL_E_VERSION:
        return "protocol version mismatch";
    case CTL_E_TYPE:
        return "unknown message type";
    case CTL_E_SIZE:
        return "wrong payload size";
    case CTL_E_SNAP:
        return "malformed metrics snapshot";
    default:
        return "unknown error";
    }
}

int ctl_encode(void *buf, size_t cap, enum ctl_type type, uint32_t seq, uint32_t gen,
               const void *payload, size_t len)
{
    struct ctl_hdr h;
    size_t total = sizeof(h) + len;

    if (total > cap || total > CTL_MSG_MAX)
        return CTL_E_SIZE;
    memset(&h, 0, sizeof(h));
    h.version = CTL_VERSION;
    h.type = (uint8_t)type;
    h.len = (uint32_t)len;
    h.seq = seq;
    h.gen = gen;
    memcpy(buf, &h, sizeof(h));
    if (len)
        memcpy((uint8_t *)buf + sizeof(h), payload, len);
    return (int)total;
}

static int check_snapshot(const uint8_t *p, size_t len)
{
    struct ctl_series s;
    size_t off = 0;
    int rc;

    while ((rc = ctl_snap_next(p, len, &off, &s)) == 1)
        ;
    return rc;
}

/* Validates a ctl_heartbeat at p (plen bytes available, fixed part first). */
static int check_hb(const uint8_t *p, size_t plen)
{
    struct ctl_heartbeat hb;

    if (plen < sizeof(hb))
        return CTL_E_SIZE;
    memcpy(&hb, p, sizeof(hb));
    if ((size_t)hb.snap_len != plen - sizeof(hb))
        return CTL_E_SIZE;
    return check_snapshot(p + sizeof(hb), hb.snap_len);
}

int ctl_decode(const void *buf, size_t n, bool from_supervisor, struct ctl_hdr *hdr,
               const uint8_t **payload)
{
    const uint8_t *p = buf;
    struct ctl_hdr h;
    size_t plen;

    if (n < sizeof(h))
        return CTL_E_SHORT;
    if (n > CTL_MSG_MAX)
        return CTL_E_SIZE;
    memcpy(&h, p, sizeof(h));
    if (h.version != CTL_VERSION)
        return CTL_E_VERSION;
    if (h.type < 1 || h.type > CTL_TYPE_MAX)
        return CTL_E_TYPE;
    if ((size_t)h.len != n - sizeof(h))
        return CTL_E_SHORT;
    plen = h.len;
    p += sizeof(h);

    switch (h.type) {
    case CTL_HELLO:
        if (plen != (from_supervisor ? sizeof(struct ctl_hello_ack) : sizeof(struct ctl_hello)))
            return CTL_E_SIZE;
        break;
    case CTL_READY:
        if (from_supervisor || plen != sizeof(struct ctl_ready))
            return from_supervisor ? CTL_E_TYPE : CTL_E_SIZE;
        break;
    case CTL_HEARTBEAT: {
        int rc;
        if (from_supervisor)
            return CTL_E_TYPE;
        if ((rc = check_hb(p, plen)) < 0)
            return rc;
        break;
    }
    case CTL_BYE: {
        int rc;
        if (from_supervisor)
            return CTL_E_TYPE;
        if (plen < 8)
            return CTL_E_SIZE;
        if ((rc = check_hb(p + 8, plen - 8)) < 0)
            return rc;
        break;
    }
    case CTL_DRAIN:
        if (!from_supervisor)
            return CTL_E_TYPE;
        if (plen != sizeof(struct ctl_drain))
            return CTL_E_SIZE;
        break;
    case CTL_STOP:
        if (!from_supervisor)
            return CTL_E_TYPE;
        if (plen != 0)
            return CTL_E_SIZE;
        break;
    case CTL_HANDOFF: {
        struct ctl_handoff ho;
        if (plen != sizeof(ho))
            return CTL_E_SIZE;
        memcpy(&ho, p, sizeof(ho));
        if (ho.count == 0 || ho.count > CTL_HANDOFF_MAX)
            return CTL_E_SIZE;
        break;
    }
    }
    *hdr = h;
    *payload = p;
    return 0;
}

bool ctl_metric_name_ok(const char *name, size_t len)
{
    if (len == 0 || len > CTL_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
        if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
            return false;
    }
    return true;
}

bool ctl_metric_labels_ok(const char *labels, size_t len)
{
    if (len > CTL_LABELS_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)labels[i] < 0x20 || (unsigned char)labels[i] > 0x7e)
            return false;
    return true;
}

static size_t value_size(uint8_t kind)
{
    switch (kind) {
    case CTL_M_COUNTER:
    case CTL_M_GAUGE:
        return 8;
    case CTL_M_HIST:
        return 8 * CTL_HIST_NBUCKETS + 16;
    default:
        return 0;
    }
}

int ctl_snap_put(uint8_t *buf, size_t cap, size_t *off, const struct ctl_series *s)
{
    size_t nl = strnlen(s->name, sizeof(s->name)), ll = strnlen(s->labels, sizeof(s->labels));
    size_t vs = value_size(s->kind);
    size_t need = 4 + nl + ll + vs;
    uint8_t *p;
    uint16_t l16 = (uint16_t)ll;

    if (vs == 0 || !ctl_metric_name_ok(s->name, nl) || !ctl_metric_labels_ok(s->labels, ll))
        return -1;
    if (*off > cap || cap - *off < need)
        return -1;
    p = buf + *off;
    p[0] = s->kind;
    p[1] = (uint8_t)nl;
    memcpy(p + 2, &l16, 2);
    memcpy(p + 4, s->name, nl);
    memcpy(p + 4 + nl, s->labels, ll);
    p += 4 + nl + ll;
    switch (s->kind) {
    case CTL_M_COUNTER:
        memcpy(p, &s->counter, 8);
        break;
    case CTL_M_GAUGE:
        memcpy(p, &s->gauge, 8);
        break;
    case CTL_M_HIST:
        memcpy(p, s->buckets, 8 * CTL_HIST_NBUCKETS);
        memcpy(p + 8 * CTL_HIST_NBUCKETS, &s->count, 8);
        memcpy(p + 8 * CTL_HIST_NBUCKETS + 8, &s->sum, 8);
        break;
    }
    *off += need;
    return 0;
}

int ctl_snap_next(const uint8_t *buf, size_t len, size_t *off, struct ctl_series *out)
{
    const uint8_t *p;
    size_t nl, ll, vs, rest;
    uint16_t l16;

    if (*off == len)
        return 0;
    if (*off > len || len - *off < 4)
        return CTL_E_SNAP;
    p = buf + *off;
    rest = len - *off;
    vs = value_size(p[0]);
    nl = p[1];
    memcpy(&l16, p + 2, 2);
    ll = l16;
    if (vs == 0 || rest < 4 + nl + ll + vs)
        return CTL_E_SNAP;
    if (!ctl_metric_name_ok((const char *)p + 4, nl) ||
        !ctl_metric_labels_ok((const char *)p + 4 + nl, ll))
        return CTL_E_SNAP;
    memset(out, 0, sizeof(*out));
    out->kind = p[0];
    memcpy(out->name, p + 4, nl);
    memcpy(out->labels, p + 4 + nl, ll);
    p += 4 + nl + ll;
    switch (out->kind) {
    case CTL_M_COUNTER:
        memcpy(&out->counter, p, 8);
        break;
    case CTL_M_GAUGE:
        memcpy(&out->gauge, p, 8);
        break;
    case CTL_M_HIST:
        memcpy(out->buckets, p, 8 * CTL_HIST_NBUCKETS);
        memcpy(&out->count, p + 8 * CTL_HIST_NBUCKETS, 8);
        memcpy(&out->sum, p + 8 * CTL_HIST_NBUCKETS + 8, 8);
        break;
    }
    *off += 4 + nl + ll + vs;
    return 1;
}
