/*
 * outbox.h - delivery of the outbox (table outbox) by the monitor process: libcurl's multi
 * interface driven by the libevent loop, retries with exponential backoff and jitter,
 * Retry-After, a circuit breaker per channel, dead letters, per-channel metrics (outbox.c,
 * docs/operations/integrations.md).
 */
#ifndef CSMCP_OUTBOX_H
#define CSMCP_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>

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
/* A GET on the same multi handle (the Mixpanel export pull): at most max_bytes of body; cb runs
 * once from the loop with the HTTP status (0: no answer) and the body, or err. userpwd may be
 * NULL. -1 when the URL is refused (https only, http only to a loopback address). */
typedef void (*outbox_get_cb)(long status, const char *body, size_t len, const char *err,
                              void *arg);
int outbox_http_get(struct outbox *ob, const char *url, const char *userpwd, size_t max_bytes,
                    outbox_get_cb cb, void *arg);
void outbox_free(struct outbox *ob);

#endif
