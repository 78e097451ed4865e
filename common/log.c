/*
 * log.c - leveled text / JSON-lines logging to stderr.
 *
 * Invariants: one write(2) per line, so lines from several processes sharing stderr never
 * interleave mid-line (lines are capped at LOG_LINE_MAX); nothing here allocates; never called
 * from a signal handler (handlers only set flags).
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/time.h>

#define LOG_LINE_MAX 8192

static const char *log_names[] = {"debug", "info", "notice", "warning", "error", "crit"};
/* syslog priorities for journald's <N> prefix */
static const int log_prio[] = {7, 6, 5, 4, 3, 2};

static struct {
    char prog[32];
    char ctx[64];
    char req[64];
    enum log_level level;
    bool json;
    bool journal;
    log_scrub_fn scrub;
} lg = {.prog = "csmcp", .level = LOG_LVL_INFO};

void log_init(const char *progname, enum log_level level, bool json)
{
    snprintf(lg.prog, sizeof(lg.prog), "%s", progname);
    lg.level = level;
    lg.json = json;
    lg.journal = getenv("JOURNAL_STREAM") != NULL;
}

void log_set_level(enum log_level level)
{
    lg.level = level;
}

enum log_level log_get_level(void)
{
    return lg.level;
}

void log_set_json(bool json)
{
    lg.json = json;
}

void log_set_context(const char *ctx)
{
    snprintf(lg.ctx, sizeof(lg.ctx), "%s", ctx ? ctx : "");
}

void log_set_request(const char *reqid)
{
    snprintf(lg.req, sizeof(lg.req), "%s", reqid ? reqid : "");
}

void log_set_scrubber(log_scrub_fn fn)
{
    lg.scrub = fn;
}

int log_level_parse(const char *name)
{
    if (name == NULL)
        return -1;
    for (int i = 0; i < (int)(sizeof(log_names) / sizeof(log_names[0])); i++)
        if (strcmp(name, log_names[i]) == 0)
            return i;
    if (strcmp(name, "warn") == 0)
        return LOG_LVL_WARN;
    if (strcmp(name, "err") == 0)
        return LOG_LVL_ERROR;
    if (strcmp(name, "critical") == 0)
        return LOG_LVL_CRIT;
    return -1;
}

const char *log_level_name(enum log_level level)
{
    if ((int)level < 0 || level > LOG_LVL_CRIT)
        return "?";
    return log_names[level];
}

/* Appends s JSON-escaped to buf at *pos, never past cap-1. */
static void json_escape_into(char *buf, size_t cap, size_t *pos, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t p = *pos;

    for (; *s && p + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[p++] = '\\';
            buf[p++] = (char)c;
        } else if (c == '\n') {
            buf[p++] = '\\';
            buf[p++] = 'n';
        } else if (c < 0x20) {
            buf[p++] = '\\';
            buf[p++] = 'u';
            buf[p++] = '0';
            buf[p++] = '0';
            buf[p++] = hex[c >> 4];
            buf[p++] = hex[c & 15];
        } else {
            buf[p++] = (char)c;
        }
    }
    *pos = p;
}

static void log_vwrite(enum log_level level, const char *fmt, va_list ap)
{
    char msg[LOG_LINE_MAX / 2], line[LOG_LINE_MAX], ts[40];
    struct timeval tv;
    struct tm tm;
    size_t pos = 0;
    int n, saved_errno = errno;

    vsnprintf(msg, sizeof(msg), fmt, ap);
    if (lg.scrub)
        lg.scrub(msg, sizeof(msg));
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    n = (int)strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof(ts) - (size_t)n, ".%03dZ", (int)(tv.tv_usec / 1000));

    if (lg.json) {
        n = snprintf(line, sizeof(line),
                     "{\"ts\":\"%s\",\"level\":\"%s\",\"prog\":\"%s\",\"pid\":%d", ts,
                     log_names[level], lg.prog, (int)getpid());
        pos = (size_t)n;
        if (lg.ctx[0]) {
            pos += (size_t)snprintf(line + pos, sizeof(line) - pos, ",\"ctx\":\"");
            json_escape_into(line, sizeof(line), &pos, lg.ctx);
            line[pos++] = '"';
        }
        if (lg.req[0]) {
            pos += (size_t)snprintf(line + pos, sizeof(line) - pos, ",\"req\":\"");
            json_escape_into(line, sizeof(line), &pos, lg.req);
            line[pos++] = '"';
        }
        pos += (size_t)snprintf(line + pos, sizeof(line) - pos, ",\"msg\":\"");
        json_escape_into(line, sizeof(line), &pos, msg);
        line[pos++] = '"';
        line[pos++] = '}';
        line[pos++] = '\n';
    } else {
        if (lg.journal)
            n = snprintf(line, sizeof(line), "<%d>%s%s%s%s%s%s\n", log_prio[level], lg.ctx,
                         lg.ctx[0] ? " " : "", lg.req[0] ? "req=" : "", lg.req,
                         lg.req[0] ? " " : "", msg);
        else
            n = snprintf(line, sizeof(line), "%s %s[%d] %s: %s%s%s%s%s%s\n", ts, lg.prog,
                         (int)getpid(), log_names[level], lg.ctx, lg.ctx[0] ? " " : "",
                         lg.req[0] ? "req=" : "", lg.req, lg.req[0] ? " " : "", msg);
        pos = (size_t)n;
        if (pos >= sizeof(line)) {
            pos = sizeof(line) - 1;
            line[pos - 1] = '\n';
        }
    }
    if (write(STDERR_FILENO, line, pos) < 0) {
        /* nowhere left to report it */
    }
    errno = saved_errno;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    va_list ap;

    if (level < lg.level)
        return;
    va_start(ap, fmt);
    log_vwrite(level, fmt, ap);
    va_end(ap);
}

void fatal(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vwrite(LOG_LVL_CRIT, fmt, ap);
    va_end(ap);
    exit(1);
}

void log_assert_failed(const char *expr, const char *file, int line)
{
    log_msg(LOG_LVL_CRIT, "assertion failed: %s at %s:%d", expr, file, line);
    abort();
}
