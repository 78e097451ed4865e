/*
 * ratelimit.h - token-bucket rate limits kept in Redis, exact across workers and hosts.
 *
 * Buckets: per principal ("key:<id>", "jwt:<sub>", "anonymous") for every /mcp request
 * (ratelimit.key_per_minute), and per principal + tool for tools/call, in two classes: read
 * tools (ratelimit.tool_per_minute) and write/admin tools (ratelimit.write_per_minute). The
 * capacity of a bucket is its per-minute rate (a full minute of burst). One Lua script checks
 * and takes from every bucket of a request atomically, on Redis' clock, so N workers share one
 * budget. Redis unavailable: ratelimit.fail_open = true -> a local per-worker limiter at
 * rate / server.workers; false -> refuse (503).
 */
#ifndef CSMCP_RATELIMIT_H
#define CSMCP_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct cfg;

enum ratelimit_class {
    RATELIMIT_READ = 0,
    RATELIMIT_WRITE,
};

enum ratelimit_verdict {
    RATELIMIT_ALLOW = 0,
    RATELIMIT_LIMITED,     /* answer 429 */
    RATELIMIT_UNAVAILABLE, /* Redis down and fail-closed: answer 503 */
};

struct ratelimit_result {
    enum ratelimit_verdict verdict;
    bool local;      /* decided by the local fallback limiter */
    char limit[160]; /* which limit: "key" or "tool:<name>" */
    int per_minute;  /* that limit's rate */
    int retry_after; /* seconds (>= 1) when limited */
};

typedef void (*ratelimit_cb)(const struct ratelimit_result *r, void *arg);

/* Needs redisc_init first. Called by auth_init. */
int ratelimit_init(struct event_base *base, const struct cfg *cfg);
/*
 * Takes one token from the principal's bucket and, when tool is non-NULL, from the
 * principal+tool bucket of class cls. cb runs exactly once, possibly before this returns
 * (disabled, fallback). Strings are copied.
 */
void ratelimit_check(const char *principal, const char *tool, enum ratelimit_class cls,
                     ratelimit_cb cb, void *arg);
/*
 * Takes one token from the client address' credential-check bucket (per_minute =
 * auth.failed_per_minute, capacity one minute), whether or not ratelimit.enabled: it guards
 * the database, not a client's budget. Redis down: the local fallback (fail_open) or a refusal.
 */
void ratelimit_check_source(const char *source, int per_minute, ratelimit_cb cb, void *arg);
/* False when Redis is unreachable and ratelimit.fail_open is false (for /ready). */
bool ratelimit_ready(void);
/* "redis", "local fallback (redis down)", "refusing (redis down)" or "disabled". */
const char *ratelimit_status(void);

/* "Retry-After: N\r\n" header line for a 429. Returns length or -1. */
int ratelimit_headers(const struct ratelimit_result *r, char *buf, size_t len);
/*
 * JSON-RPC error response naming the limit: code -32029 (429) or -32030 (503), data
 * {limit, limit_per_minute, retry_after}. id_json is the request id as JSON ("1", "\"a\"")
 * or NULL for null. Returns length or -1.
 */
int ratelimit_error_json(const struct ratelimit_result *r, const char *id_json, char *buf,
                         size_t len);

/* The Lua script (exported so a combined session+ratelimit script can embed it). */
extern const char ratelimit_lua[];

void ratelimit_shutdown(void);

#endif
