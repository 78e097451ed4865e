/*
 * log.h - leveled logging for csmcpd, csmcp-worker and csmcpctl.
 *
 * One API for every process: a level, an optional process context ("worker 2 gen 3") and an
 * optional request context (request id), written as text or as JSON lines to stderr. Under
 * systemd (JOURNAL_STREAM set) text lines carry <N> priority prefixes so journald keeps levels.
 * Every message passes through the scrubber (log_set_scrubber) before it is written, so secrets
 * that slip into a message are masked.
 */
#ifndef CSMCP_LOG_H
#define CSMCP_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level {
    LOG_LVL_DEBUG = 0,
    LOG_LVL_INFO,
    LOG_LVL_NOTICE,
    LOG_LVL_WARN,
    LOG_LVL_ERROR,
    LOG_LVL_CRIT,
};

/* Rewrites msg in place (NUL-terminated, capacity cap) to mask secrets. */
typedef void (*log_scrub_fn)(char *msg, size_t cap);

void log_init(const char *progname, enum log_level level, bool json);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
void log_set_json(bool json);
/* ctx is copied; NULL clears. */
void log_set_context(const char *ctx);
/* Request context (request id); copied; NULL clears. */
void log_set_request(const char *reqid);
void log_set_scrubber(log_scrub_fn fn);

/* Returns the level for "debug".."crit" (also "warning", "error"), or -1. */
int log_level_parse(const char *name);
const char *log_level_name(enum log_level level);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...)  log_msg(LOG_LVL_DEBUG, __VA_ARGS__)
#define log_info(...)   log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_LVL_NOTICE, __VA_ARGS__)
#define log_warn(...)   log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_error(...)  log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_crit(...)   log_msg(LOG_LVL_CRIT, __VA_ARGS__)

/* Logs at CRIT and exits 1: start-up errors and broken invariants only. */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Invariant check that stays on in release builds (Redis serverAssert). */
#define ASSERT(e)                                                                                  \
    do {                                                                                           \
        if (!(e))                                                                                  \
            log_assert_failed(#e, __FILE__, __LINE__);                                             \
    } while (0)
void log_assert_failed(const char *expr, const char *file, int line) __attribute__((noreturn));

#endif
