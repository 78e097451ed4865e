/*
 * outbox.h - delivery of the outbox (table outbox) by the monitor process: libcurl's multi
 * interface driven by the libevent loop, retries with exponential backoff and jitter,
 * Retry-After, a circuit breaker per channel, dead letters, per-channel metrics (outbox.c,
 * docs/operations/integrations.md).
 */
#ifndef CSMCP_OUTBOX_H
#define CSMCP_OUTBOX_H

#include <stdbool.h>

struct event_base;
struct cfg;
struct mconn;
struct outbox;

/* db: the connection claims and results go through; host/pid name this process in sending_by. */
struct outbox *outbox_new(struct event_base *base, const struct cfg *cfg, struct mconn *db,
                          const char *host, const char *pid);
/* Claims due messages for every channel whose breaker and capacity allow it. */
void outbox_tick(struct outbox *ob);
/* Stops claiming; idle_cb runs (from the loop) once nothing is in flight or being recorded. */
void outbox_drain(struct outbox *ob, void (*idle_cb)(void));
/* No request in flight, no claim or result being recorded. */
bool outbox_idle(const struct outbox *ob);
int outbox_inflight(const struct outbox *ob);
void outbox_free(struct outbox *ob);

#endif
