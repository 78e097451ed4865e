/*
 * csmcpctl.c - the operator CLI: a thin client of csmcpd's control socket (status, workers,
 * metrics, reload [--wait], stop) plus dispatch of the database and key commands, which work
 * on the configuration directly (ctl_ext.h).
 *
 * Exit codes: 0 success; 1 the supervisor answered ERR (the reason is printed on stderr) or a
 * subcommand failed; 2 usage; 3 cannot reach the supervisor or it did not answer in time.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cfg.h"
#include "csmcp_build.h"
#include "ctl_ext.h"
#include "fdutil.h"
#include "log.h"
#include "scrub.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: csmcpctl [-s SOCKET] [-c FILE] COMMAND [ARGS]\n"
               "  status                       generation, slots, crash loop\n"
               "  workers                      one line per worker process\n"
               "  metrics                      Prometheus text\n"
               "  reload [--wait] [--timeout N]  start a reload (--wait: until it finished)\n"
               "  stop                         graceful stop of csmcpd\n"
               "  migrate | seed | import ...  database (needs -c FILE or CSMCP_* variables)\n"
               "  key | secret | audit ...     API keys, secrets, audit log\n"
               "  -s SOCKET  control socket (default: control.socket of the configuration)\n"
               "  -c FILE    configuration file\n");
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sends line, reads the whole answer (until EOF) into a malloc'd string. */
static int ask(const char *sock, const char *line, int timeout_s, char **answer)
{
    int fd = fd_connect_unix(sock);
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int64_t deadline = mono_ms() + (int64_t)timeout_s * 1000;

    *answer = NULL;
    if (fd < 0) {
        fprintf(stderr, "csmcpctl: connect(%s): %s (is csmcpd running?)\n", sock, strerror(errno));
        return 3;
    }
    if (write(fd, line, strlen(line)) != (ssize_t)strlen(line) || write(fd, "\n", 1) != 1) {
        fprintf(stderr, "csmcpctl: write(%s): %s\n", sock, strerror(errno));
        close(fd);
        return 3;
    }
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int64_t left = deadline - mono_ms();
        ssize_t n;
        int rc;

        if (left <= 0) {
            fprintf(stderr, "csmcpctl: no answer to \"%s\" within %d s\n", line, timeout_s);
            free(buf);
            close(fd);
            return 3;
        }
        rc = poll(&p, 1, (int)(left > 1000 ? 1000 : left));
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0)
            continue;
        if (cap - len < 4096) {
            char *nb = realloc(buf, cap + 65536);
            if (!nb) {
                free(buf);
                close(fd);
                return 3;
            }
            buf = nb;
            cap += 65536;
        }
        n = read(fd, buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fprintf(stderr, "csmcpctl: read(%s): %s\n", sock, strerror(errno));
            free(buf);
            close(fd);
            return 3;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    if (!buf) {
        fprintf(stderr, "csmcpctl: empty answer from csmcpd\n");
        return 3;
    }
    buf[len] = '\0';
    *answer = buf;
    return 0;
}

static int control(const char *sock, const char *line, int timeout_s)
{
    char *ans;
    int rc = ask(sock, line, timeout_s, &ans);

    if (rc)
        return rc;
    if (strncmp(ans, "ERR ", 4) == 0) {
        fprintf(stderr, "csmcpctl: %s", ans + 4);
        rc = 1;
    } else {
        fputs(strncmp(ans, "OK ", 3) == 0 ? ans + 3 : ans, stdout);
    }
    free(ans);
    return rc;
}

int main(int argc, char **argv)
{
    const char *sock = NULL, *path = NULL, *cmd;
    struct cfg cfg;
    char err[1024];
    int opt, rc;

    /* '+': stop at the first non-option so subcommands keep their own options. */
    while ((opt = getopt(argc, argv, "+s:c:hV")) != -1) {
        switch (opt) {
        case 's':
            sock = optarg;
            break;
        case 'c':
            path = optarg;
            break;
        case 'V':
            printf("csmcpctl %s\n", CSMCP_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    cmd = argv[optind];
    log_init("csmcpctl", LOG_LVL_WARN, false);
    scrub_install_log();
    bool db_cmd = !strcmp(cmd, "migrate") || !strcmp(cmd, "seed") || !strcmp(cmd, "import");
    bool key_cmd = !strcmp(cmd, "key") || !strcmp(cmd, "secret") || !strcmp(cmd, "audit");

    if (cfg_load(path, &cfg, err, sizeof(err)) < 0) {
        /* The control commands only need the socket path: -s is enough. */
        if (!sock || path || db_cmd || key_cmd) {
            fprintf(stderr, "csmcpctl: %s\n", err);
            return 1;
        }
        memset(&cfg, 0, sizeof(cfg));
    }
    if (!sock)
        sock = cfg.control_socket;

    if (db_cmd) {
        rc = ctl_db_main(&cfg, argc - optind, argv + optind);
    } else if (key_cmd) {
        rc = ctl_keys_main(&cfg, argc - optind, argv + optind);
    } else if (!strcmp(cmd, "status") || !strcmp(cmd, "workers") || !strcmp(cmd, "metrics") ||
               !strcmp(cmd, "stop") || !strcmp(cmd, "ping")) {
        if (argc - optind != 1) {
            usage(stderr);
            rc = 2;
        } else {
            rc = control(sock, cmd, 10);
        }
    } else if (!strcmp(cmd, "reload")) {
        bool wait = false;
        int timeout = 60;
        rc = 0;
        for (int i = optind + 1; i < argc; i++) {
            if (!strcmp(argv[i], "--wait")) {
                wait = true;
            } else if (!strcmp(argv[i], "--timeout") && i + 1 < argc) {
                timeout = atoi(argv[++i]);
            } else if (!strncmp(argv[i], "--timeout=", 10)) {
                timeout = atoi(argv[i] + 10);
            } else {
                rc = 2;
            }
        }
        if (rc || timeout <= 0) {
            usage(stderr);
            rc = 2;
        } else {
            rc = control(sock, wait ? "reload wait" : "reload", wait ? timeout : 10);
        }
    } else {
        fprintf(stderr, "csmcpctl: unknown command %s\n", cmd);
        usage(stderr);
        rc = 2;
    }
    if (cfg.control_socket)
        cfg_free(&cfg);
    return rc;
}
