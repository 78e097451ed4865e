/*
 * sup_ctl.c - csmcpd's operator front ends: the control socket (control.socket, a Unix stream
 * socket speaking one command line in, a text answer out, then close) and the admin HTTP
 * listener (admin.listen: /metrics, /health, /ready).
 *
 * Control protocol (csmcpctl is the client):
 *   status | workers | metrics | reload | reload wait | stop | ping
 * Answers are text; the first line of a failure starts with "ERR ". "reload wait" answers only
 * when the reload finished: "OK generation N" or "ERR <reason>".
 *
 * Invariants: only the service user (or root) may talk to the control socket (SO_PEERCRED);
 * a client gets 10 s to send its line (256 bytes max) and is then dropped; nothing here blocks.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>

#include "log.h"
#include "sup.h"

#define CTL_LINE_MAX 256

struct client {
    struct bufferevent *bev;
    bool waiting; /* for a reload outcome */
    bool closing; /* answer written, close once flushed */
    struct client *next;
};

static struct {
    struct event_base *base;
    struct evconnlistener *ctl;
    struct evhttp *http;
    struct client *clients;
} sc;

static void client_free(struct client *c)
{
    struct client **pp;

    sup_reload_cancel(c);
    for (pp = &sc.clients; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    bufferevent_free(c->bev);
    free(c);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    struct client *c = arg;
    if (c->closing && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        client_free(c);
}

static void finish(struct client *c)
{
    c->closing = true;
    bufferevent_disable(c->bev, EV_READ);
    on_write(c->bev, c);
}

/* Writes a text built by fn (through a memstream) to the client. */
static void reply_with(struct client *c, void (*fn)(FILE *))
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    if (!f) {
        evbuffer_add_printf(bufferevent_get_output(c->bev), "ERR out of memory\n");
        return;
    }
    fn(f);
    fclose(f);
    evbuffer_add(bufferevent_get_output(c->bev), text, len);
    free(text);
}

static void on_reload_done(void *arg, bool ok, const char *msg)
{
    struct client *c = arg;
    evbuffer_add_printf(bufferevent_get_output(c->bev), "%s %s\n", ok ? "OK" : "ERR", msg);
    c->waiting = false;
    finish(c);
}

static void command(struct client *c, const char *line)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    char err[1024];

    if (strcmp(line, "status") == 0) {
        reply_with(c, sup_write_status);
    } else if (strcmp(line, "workers") == 0) {
        reply_with(c, sup_write_workers);
    } else if (strcmp(line, "metrics") == 0) {
        reply_with(c, sup_write_metrics);
    } else if (strcmp(line, "ping") == 0) {
        evbuffer_add_printf(out, "OK pong\n");
    } else if (strcmp(line, "reload") == 0 || strcmp(line, "reload wait") == 0) {
        bool wait = line[6] != '\0';
        if (sup_reload(wait ? on_reload_done : NULL, c, err, sizeof(err)) < 0) {
            evbuffer_add_printf(out, "ERR %s\n", err);
        } else if (wait) {
            /* The outcome may already be known (sup_reload ran the callback). Otherwise wait
             * as long as the reload takes (bounded by ready_timeout), not the 10 s idle limit. */
            if (!c->closing) {
                c->waiting = true;
                bufferevent_set_timeouts(c->bev, NULL, NULL);
            }
            return;
        } else {
            evbuffer_add_printf(out, "OK reload started\n");
        }
    } else if (strcmp(line, "stop") == 0) {
        evbuffer_add_printf(out, "OK stopping\n");
        finish(c);
        sup_stop();
        return;
    } else {
        evbuffer_add_printf(out, "ERR unknown command: %.64s\n", line);
    }
    finish(c);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct client *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t n;
    char *line;

    if (c->waiting || c->closing) {
        evbuffer_drain(in, evbuffer_get_length(in));
        return;
    }
    line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);
    if (!line) {
        if (evbuffer_get_length(in) > CTL_LINE_MAX) {
            evbuffer_add_printf(bufferevent_get_output(bev), "ERR line too long\n");
            finish(c);
        }
        return;
    }
    if (n > CTL_LINE_MAX) {
        evbuffer_add_printf(bufferevent_get_output(bev), "ERR line too long\n");
        finish(c);
    } else {
        command(c, line);
    }
    free(line);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct client *c = arg;
    (void)bev;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
        /* A client waiting for a reload that hangs up does not cancel the reload. */
        client_free(c);
    }
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg)
{
    struct ucred cred;
    socklen_t cl = sizeof(cred);
    struct client *c;
    struct timeval tmo = {10, 0};

    (void)l;
    (void)sa;
    (void)salen;
    (void)arg;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0 ||
        (cred.uid != 0 && cred.uid != geteuid())) {
        static const char msg[] = "ERR permission denied\n";
        ssize_t w = write(fd, msg, sizeof(msg) - 1);
        (void)w;
        log_warn("control socket: refused uid %d", (int)cred.uid);
        close(fd);
        return;
    }
    c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        return;
    }
    c->bev = bufferevent_socket_new(sc.base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev) {
        close(fd);
        free(c);
        return;
    }
    c->next = sc.clients;
    sc.clients = c;
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    bufferevent_set_timeouts(c->bev, &tmo, NULL);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

/* ---- admin HTTP ---- */

static void http_text(struct evhttp_request *req, int code, const char *reason, const char *ctype,
                      const char *body, size_t len)
{
    struct evbuffer *b = evbuffer_new();
    if (!b) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    evbuffer_add(b, body, len);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", ctype);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Cache-Control", "no-store");
    evhttp_send_reply(req, code, reason, b);
    evbuffer_free(b);
}

static void on_http(struct evhttp_request *req, void *arg)
{
    const char *uri = evhttp_request_get_uri(req);
    size_t plen = strcspn(uri, "?#");
    enum evhttp_cmd_type m = evhttp_request_get_command(req);

    (void)arg;
    if (m != EVHTTP_REQ_GET && m != EVHTTP_REQ_HEAD) {
        http_text(req, 405, "Method Not Allowed", "text/plain", "method not allowed\n", 19);
        return;
    }
    if (plen == 8 && strncmp(uri, "/metrics", 8) == 0) {
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (!f) {
            evhttp_send_error(req, 500, NULL);
            return;
        }
        sup_write_metrics(f);
        fclose(f);
        http_text(req, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", text, len);
        free(text);
    } else if (plen == 7 && strncmp(uri, "/health", 7) == 0) {
        http_text(req, 200, "OK", "text/plain", "ok\n", 3);
    } else if (plen == 6 && strncmp(uri, "/ready", 6) == 0) {
        if (sup_is_ready())
            http_text(req, 200, "OK", "text/plain", "ready\n", 6);
        else
            http_text(req, 503, "Service Unavailable", "text/plain", "not ready\n", 10);
    } else {
        http_text(req, 404, "Not Found", "text/plain", "not found\n", 10);
    }
}

int supctl_start(struct event_base *base, int ctl_fd, int admin_fd)
{
    sc.base = base;
    sc.ctl = evconnlistener_new(base, on_accept, NULL,
                                LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, ctl_fd);
    if (!sc.ctl)
        return -1;
    if (admin_fd >= 0) {
        sc.http = evhttp_new(base);
        if (!sc.http || !evhttp_accept_socket_with_handle(sc.http, admin_fd))
            return -1;
        evhttp_set_timeout(sc.http, 10);
        evhttp_set_max_headers_size(sc.http, 8192);
        evhttp_set_max_body_size(sc.http, 0);
        evhttp_set_allowed_methods(sc.http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST);
        evhttp_set_gencb(sc.http, on_http, NULL);
    }
    return 0;
}

void supctl_shutdown(void)
{
    for (struct client *c = sc.clients, *next; c; c = next) {
        next = c->next;
        if (c->waiting) {
            evbuffer_add_printf(bufferevent_get_output(c->bev), "ERR shutting down\n");
            c->waiting = false;
            finish(c);
        }
    }
}
