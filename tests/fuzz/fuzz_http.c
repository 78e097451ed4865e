/*
 * fuzz_http.c - libFuzzer target for the worker's HTTP/1.1 server (worker/http.c): each input
 * is written as raw bytes on a real TCP connection to the module listening on 127.0.0.1, with
 * the write side then shut down; the event loop runs until the server closes the connection.
 * The handler reads every accessor and answers plainly, chunked (SSE-like), or not at all for a
 * while, so keep-alive, pipelining and the limits (431, 413, 400) are all reachable.
 *
 * Checked: no crash or sanitizer report; every connection is closed by the server in a bounded
 * number of loop turns; no connection is leaked between inputs (http_connections() == 0).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "cfg.h"
#include "http.h"
#include "log.h"

static struct event_base *base;
static struct cfg cfg;
static struct sockaddr_in addr;
static unsigned long nconn;

static void handler(struct http_req *r, void *arg)
{
    size_t len = 0;
    const char *body = http_req_body(r, &len);
    const char *host = http_req_header(r, "Host");
    const char *q = http_req_query(r);
    char out[256];
    int n = snprintf(out, sizeof(out), "%s %s %zu %zu %s", http_req_method_name(r),
                     http_req_path(r), len, host ? strlen(host) : 0, q ? "q" : "-");
    (void)arg;
    if (len > 0 && body[0] == 's') {
        http_stream_begin(r, 200, "text/event-stream", NULL);
        http_stream_write(r, out, (size_t)n);
        http_stream_write(r, body, len > 64 ? 64 : len);
        http_stream_end(r);
        return;
    }
    http_respond(r, len > 0 && body[0] == 'e' ? 400 : 200, "text/plain", "X-Fuzz: 1\r\n", out,
                 (size_t)n);
}

static int setup(void)
{
    char err[256];
    int fd, one = 1;
    socklen_t alen = sizeof(addr);

    log_init("fuzz_http", LOG_LVL_CRIT, false);
    if (cfg_load(NULL, &cfg, err, sizeof(err)) < 0)
        return -1;
    cfg.http_max_header_size = 4096;
    cfg.http_max_body_size = 16384;
    base = event_base_new();
    if (base == NULL || http_init(base, &cfg) < 0)
        return -1;
    http_route("/mcp", "/mcp", handler, NULL);
    http_route("/", "/", handler, NULL);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 64) < 0 ||
        getsockname(fd, (struct sockaddr *)&addr, &alen) < 0)
        return -1;
    return http_listen_fd(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    char buf[65536];
    size_t off = 0;
    int c, turns;
    bool eof = false;

    if (!ready) {
        if (setup() < 0)
            abort();
        ready = 1;
    }
    if (size > 60000)
        size = 60000;
    /* Closing with SO_LINGER 0 (RST) leaves no TIME_WAIT behind: 150,000 connections in a 30 s
     * run would otherwise exhaust the loopback ports. A connect() that still fails for want of
     * a port or of room in the listen queue is retried on a new socket, a bounded number of
     * times; anything else is a harness failure and says why. */
    struct linger lg = {1, 0};
    for (turns = 0;; turns++) {
        c = socket(AF_INET, SOCK_STREAM, 0);
        if (c < 0) {
            perror("fuzz_http: socket");
            abort();
        }
        setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        /* a different 127.0.0.x source per connection: 250 times the ports */
        struct sockaddr_in src = {.sin_family = AF_INET};
        src.sin_addr.s_addr = htonl(0x7f000001u + (uint32_t)(nconn++ % 250));
        bind(c, (struct sockaddr *)&src, sizeof(src));
        if (connect(c, (struct sockaddr *)&addr, sizeof(addr)) == 0)
            break;
        int e = errno;
        close(c);
        if (turns >= 200 || (e != EADDRNOTAVAIL && e != EAGAIN && e != ECONNREFUSED &&
                             e != ETIMEDOUT && e != EINTR)) {
            fprintf(stderr, "fuzz_http: connect: %s (after %d retries)\n", strerror(e), turns);
            abort();
        }
        event_base_loop(base, EVLOOP_NONBLOCK); /* let the server accept what is queued */
        usleep(5000);
    }
    fcntl(c, F_SETFL, O_NONBLOCK);
    for (turns = 0; turns < 20000 && !eof; turns++) {
        if (off < size) {
            ssize_t w = write(c, data + off, size - off);
            if (w > 0)
                off += (size_t)w;
            else if (w < 0 && errno != EAGAIN)
                off = size; /* server closed early (limit hit): stop writing */
            if (off >= size)
                shutdown(c, SHUT_WR);
        } else if (size == 0 && turns == 0) {
            shutdown(c, SHUT_WR);
        }
        event_base_loop(base, EVLOOP_NONBLOCK);
        struct pollfd p = {c, POLLIN, 0};
        if (poll(&p, 1, 0) > 0) {
            ssize_t r = read(c, buf, sizeof(buf));
            if (r == 0 || (r < 0 && errno != EAGAIN))
                eof = true;
        }
    }
    if (!eof)
        abort(); /* the server kept a half-closed connection open */
    close(c);
    for (turns = 0; turns < 1000 && http_connections() > 0; turns++)
        event_base_loop(base, EVLOOP_NONBLOCK);
    if (http_connections() != 0)
        abort(); /* leaked connection */
    return 0;
}
