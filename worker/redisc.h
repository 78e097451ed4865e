/*
 * redisc.h - the worker's Redis client: async hiredis on the worker's libevent loop.
 *
 * Two connections: one for commands (sessions, event store, publish) and one for pub/sub
 * (reply routing, cancellation, resumed streams). Both reconnect with backoff; subscriptions
 * are restored after a reconnect. A command that gets no reply within redis.timeout_ms tears
 * the command connection down, which fails every pending command (callbacks get NULL).
 */
#ifndef CSMCP_REDISC_H
#define CSMCP_REDISC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct cfg;
struct redisReply;

/* reply is NULL on failure (disconnect, timeout); borrowed until the callback returns. */
typedef void (*redisc_cb)(struct redisReply *reply, void *arg);
typedef void (*redisc_msg_fn)(const char *channel, const char *msg, size_t len, void *arg);

int redisc_init(struct event_base *base, const struct cfg *cfg);
bool redisc_ready(void);
void redisc_status(char *buf, size_t len);
/* Sends a command (argv form, binary safe; lens may be NULL for C strings). Returns 0, or -1
 * when Redis is not connected (cb is then not called). */
int redisc_cmd(redisc_cb cb, void *arg, int argc, const char **argv, const size_t *lens);
/* printf-style hiredis command. Same contract. */
int redisc_cmdf(redisc_cb cb, void *arg, const char *fmt, ...);
/* Subscribes fn to channel (copied) on the pub/sub connection; survives reconnects. */
int redisc_subscribe(const char *channel, redisc_msg_fn fn, void *arg);
void redisc_unsubscribe(const char *channel, void *arg);
/*
 * Epoch of the pub/sub connection for state kept valid by messages on channel: 0 while that
 * subscription is not confirmed on a live connection (such state must not be trusted), else a
 * number that changes whenever the connection is lost (messages may have been missed).
 */
uint32_t redisc_sub_epoch(const char *channel);
void redisc_shutdown(void);

#endif
