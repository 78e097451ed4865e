/*
 * scache.h - a worker's short-lived cache of session state checked in Redis.
 *
 * A session that a worker checked in Redis (alive, its logging level, the client's
 * capabilities, the principal that owns it) is trusted for mcp.session_cache_ms, so a busy
 * session costs one Redis round trip per period instead of one per request. Entries are tagged
 * with the pub/sub epoch of the invalidation channel: every worker drops a session on a message
 * there (DELETE, logging/setLevel), and every entry is void when the pub/sub connection drops.
 */
#ifndef CSMCP_SCACHE_H
#define CSMCP_SCACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "session.h"

#define SCACHE_CHANNEL "csmcp:sinv"

struct scache_hit {
    int lvl;
    const char *caps;      /* borrowed until the next scache call; may be NULL */
    const char *principal; /* borrowed until the next scache call */
};

/* Looks key up; true with *hit filled when a live entry of this epoch exists. */
bool scache_get(const char *key, uint32_t epoch, int64_t now_ms, struct scache_hit *hit);
/* Stores (replaces) key's state valid until now_ms + ttl_ms. Strings are copied; a string
 * too long for the entry leaves the session uncached. */
void scache_put(const char *key, uint32_t epoch, int64_t now_ms, int ttl_ms, int lvl,
                const char *caps, const char *principal);
/* Forgets key (an invalidation message or a local change). */
void scache_drop(const char *key);
/* Counter of invalidations seen: a Redis answer that was in flight while it changed may be
 * stale and must not be cached. */
uint64_t scache_generation(void);
void scache_shutdown(void);

#endif
