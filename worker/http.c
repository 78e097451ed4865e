/*
 * http.c - the worker's HTTP/1.1 server.
 *
 * Role: accept on the listening sockets (a bounded accept loop per readiness event, so workers
 * sharing one socket take turns), parse requests with http-parser, hand each complete request
 * to the router, write plain or chunked responses, keep connections alive, and drain.
 *
 * Invariants:
 * - A connection handles one request at a time (state HANDLING); pipelined input waits in the
 *   bufferevent (reading pauses at a high watermark).
 * - struct http_req lives inside its struct conn. If the client disconnects while a request is
 *   being handled, the bufferevent is freed at once but the conn stays (flag gone) until the
 *   handler finishes the request; then it is freed. So the handler's pointer is always valid.
 * - Every connection has at most one timer: idle_timeout while idle, read_timeout while a
 *   request is arriving, none while it is handled (the MCP layer bounds calls itself).
 * - Limits are answered with a status and Connection: close: 431 (head too large), 413 (body
 *   too large), 400 (malformed), 408 (read timeout).
 * - Strict framing (RFC 9112), before any handler sees the request, because a proxy in front
 *   may read lenient input differently (request smuggling): every line of the head ends in
 *   CRLF (a bare LF or CR is 400), no obsolete line folding (a head line starting with SP/HT),
 *   header names are tokens (so "Transfer-Encoding : chunked" is 400, not an unknown header),
 *   Host, Origin, Content-Length, Transfer-Encoding, Authorization, Content-Type and the MCP
 *   headers appear at most once, Content-Length and Transfer-Encoding not together, and an
 *   HTTP/1.1 request has a Host (RFC 9112 3.2). http-parser alone accepts all of these.
 * - Drain for a reload (http_drain_handoff): a connection that is idle between requests with
 *   nothing buffered in user space (plain TCP only) is never closed: its fd goes to the
 *   supervisor and on to a worker of the new generation, which adopts it (http_adopt_fd);
 *   bytes the client sends meanwhile wait in the kernel socket buffer. Our copy is closed only
 *   after sendmsg succeeded. Connections with a request under way finish here with
 *   Connection: close. Without a handoff (shutdown, TLS, channel failure) idle connections get a
 *   1 s grace and are closed.
 */
#include "http.h"

#include "cfg.h"
#include "log.h"
#include "metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <fcntl.h>
#include <http_parser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HTTP_MAX_LISTENERS      16
#define HTTP_ACCEPT_BATCH       64
#define HTTP_MAX_HEADERS        100
#define HTTP_MAX_ROUTES         16
#define HTTP_HANDOFF_BATCH      200 /* = CTL_HANDOFF_MAX */
#define HTTP_HANDOFF_RETRY_MS   5
#define HTTP_HANDOFF_GIVE_UP_MS 5000 /* after the drain began: grace-close what is left */

/* Head framing scan (see head_scan): where in the request head the last byte was. */
enum head_scan {
    HS_START = 0, /* before the request line (empty CRLF lines are skipped) */
    HS_START_CR,  /* CR before the request line */
    HS_LINE,      /* inside a line */
    HS_CR,        /* CR at the end of a line */
    HS_LINESTART, /* first byte of a header line */
    HS_END_CR,    /* CR of the empty line that ends the head */
    HS_DONE,      /* head complete: the rest is body (http-parser frames it) */
};

enum conn_state {
    C_IDLE,     /* between requests */
    C_READING,  /* a request has started arriving */
    C_HANDLING, /* dispatched; waiting for the handler's response */
    C_CLOSING,  /* flushing the last response, then close */
};

struct hdr {
    size_t name, value; /* offsets into req.hbuf (NUL-terminated strings) */
};

struct conn;

struct http_req {
    struct conn *c;
    enum http_meth method;
    char method_name[16];
    char *url; /* raw target, then split into path/query */
    size_t url_len, url_cap;
    char *query;
    char *hbuf;
    size_t hlen, hcap;
    struct hdr *hdrs; /* grown on demand up to HTTP_MAX_HEADERS, kept for the connection */
    int nhdrs, hdrcap;
    int hstate; /* 0 none, 1 in field, 2 in value, 3 head done (chunked trailers ignored) */
    char *body;
    size_t body_len, body_cap;
    size_t head_bytes;
    bool keepalive;
    bool http10;
    bool streaming;
    bool finished;
    const char *route;
    void *data;
    void (*close_fn)(struct http_req *r, void *arg);
    void *close_arg;
    struct timespec start;
};

struct conn {
    struct bufferevent *bev;
    struct evbuffer *out; /* response bytes not yet handed to the socket (see flush_output) */
    http_parser parser;
    enum conn_state state;
    struct event *timer;
    struct event *resume;
    struct http_req req;
    int limit_status; /* set by a callback that found a limit broken */
    enum head_scan hs;
    char peer[48]; /* client address ("203.0.113.7", "2001:db8::1") or "unknown" */
    bool gone;     /* client gone while handling; bev freed */
    bool detached; /* unlinked by http_shutdown; freed by nobody (exit path) */
    struct conn *prev, *next;
};

struct listener {
    int fd;
    struct event *ev;
};

static struct {
    struct event_base *base;
    const struct cfg *cfg;
    struct {
        const char *path, *route;
        http_handler_fn fn;
        void *arg;
    } routes[HTTP_MAX_ROUTES];
    int nroutes;
    SSL_CTX *ssl_ctx;
    const char *default_headers;
    struct listener ls[HTTP_MAX_LISTENERS];
    int nls;
    bool accepting;
    bool draining;
    http_drained_fn drained;
    void *drained_arg;
    struct conn *conns;
    size_t nconns;
    http_parser_settings settings;
    /* handoff of idle connections (drain for a reload) */
    http_handoff_fn handoff;
    void *handoff_arg;
    struct event *handoff_timer;
    int64_t handoff_give_up_ms; /* monotonic: stop retrying the handoff */
    unsigned long long handed_off, handoff_batches;
} H;

static void conn_free(struct conn *c);
static void process_input(struct conn *c);
static void finish_request(struct conn *c);

const char *http_status_text(int s)
{
    switch (s) {
    case 200:
        return "OK";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 406:
        return "Not Acceptable";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 413:
        return "Content Too Large";
    case 415:
        return "Unsupported Media Type";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    default:
        return "Unknown";
    }
}

static void gauge_conns(void)
{
    metrics_gauge_set("csmcp_http_connections_open", NULL, (double)H.nconns);
}

static void xgrow(char **p, size_t *cap, size_t need)
{
    if (need <= *cap)
        return;
    size_t n = *cap ? *cap : 128;
    while (n < need)
        n *= 2;
    char *q = realloc(*p, n);
    if (q == NULL)
        abort();
    *p = q;
    *cap = n;
}

/* ---- listeners ---- */

static void set_accepting(bool on)
{
    if (on == H.accepting)
        return;
    for (int i = 0; i < H.nls; i++) {
        if (on)
            event_add(H.ls[i].ev, NULL);
        else
            event_del(H.ls[i].ev);
    }
    H.accepting = on;
}

static void update_accepting(void)
{
    bool want = !H.draining && H.nconns < (size_t)H.cfg->server_max_connections;
    set_accepting(want);
}

static void read_cb(struct bufferevent *bev, void *arg);
static void write_cb(struct bufferevent *bev, void *arg);
static void event_cb(struct bufferevent *bev, short what, void *arg);
static void timer_cb(evutil_socket_t fd, short what, void *arg);
static void resume_cb(evutil_socket_t fd, short what, void *arg);

static void arm_timer(struct conn *c, int seconds)
{
    if (seconds <= 0) {
        event_del(c->timer);
        return;
    }
    struct timeval tv = {seconds, 0};
    event_add(c->timer, &tv);
}

static void req_reset(struct http_req *r)
{
    r->method = HTTP_M_OTHER;
    r->method_name[0] = '\0';
    r->url_len = 0;
    if (r->url)
        r->url[0] = '\0';
    r->query = NULL;
    r->hlen = 0;
    r->nhdrs = 0;
    r->hstate = 0;
    r->body_len = 0;
    r->head_bytes = 0;
    r->keepalive = false;
    r->http10 = false;
    r->streaming = false;
    r->finished = false;
    r->route = "other";
    r->data = NULL;
    r->close_fn = NULL;
    r->close_arg = NULL;
}

/* The numeric address of fd's peer (IPv4-mapped IPv6 shown as IPv4), or "unknown". */
static void peer_name(int fd, char *out, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    snprintf(out, len, "unknown");
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0)
        return;
    if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)&ss;
        if (IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr))
            inet_ntop(AF_INET, &a6->sin6_addr.s6_addr[12], out, (socklen_t)len);
        else
            inet_ntop(AF_INET6, &a6->sin6_addr, out, (socklen_t)len);
    } else if (ss.ss_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)&ss)->sin_addr, out, (socklen_t)len);
    }
}

/* Registers a connection (accepted, or adopted from a draining worker). Owns fd. 0 or -1. */
static int new_conn(int fd)
{
    struct conn *c = calloc(1, sizeof *c);
    if (c == NULL) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    peer_name(fd, c->peer, sizeof c->peer);
    if (H.ssl_ctx) {
        SSL *ssl = SSL_new(H.ssl_ctx);
        if (ssl == NULL)
            goto fail_fd;
        c->bev = bufferevent_openssl_socket_new(H.base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                BEV_OPT_CLOSE_ON_FREE);
        if (c->bev == NULL) {
            SSL_free(ssl);
            goto fail_fd;
        }
    } else {
        c->bev = bufferevent_socket_new(H.base, fd, BEV_OPT_CLOSE_ON_FREE);
        if (c->bev == NULL)
            goto fail_fd;
    }
    c->timer = evtimer_new(H.base, timer_cb, c);
    c->resume = event_new(H.base, -1, 0, resume_cb, c);
    c->out = evbuffer_new();
    if (c->timer == NULL || c->resume == NULL || c->out == NULL)
        goto fail_bev;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->req.c = c;
    req_reset(&c->req);
    c->state = C_IDLE;
    bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
    /* Stop reading while a request is handled and this much is buffered. */
    bufferevent_setwatermark(c->bev, EV_READ, 0,
                             (size_t)H.cfg->http_max_header_size +
                                 (size_t)H.cfg->http_max_body_size + 4096);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    arm_timer(c, H.cfg->http_idle_timeout);
    c->next = H.conns;
    if (H.conns)
        H.conns->prev = c;
    H.conns = c;
    H.nconns++;
    gauge_conns();
    return 0;

fail_bev:
    if (c->out)
        evbuffer_free(c->out);
    if (c->timer)
        event_free(c->timer);
    if (c->resume)
        event_free(c->resume);
    bufferevent_free(c->bev); /* closes fd */
    free(c);
    return -1;
fail_fd:
    close(fd);
    free(c);
    return -1;
}

static void accept_cb(evutil_socket_t lfd, short what, void *arg)
{
    for (int i = 0; i < HTTP_ACCEPT_BATCH && H.accepting; i++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED)
                return;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                log_warn("accept() failed: %s", strerror(errno));
                return;
            }
            log_warn("accept() failed: %s", strerror(errno));
            return;
        }
        new_conn(fd);
        update_accepting();
    }
}

int http_listen_fd(int fd)
{
    if (H.nls >= HTTP_MAX_LISTENERS)
        return -1;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -1;
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    struct event *ev = event_new(H.base, fd, EV_READ | EV_PERSIST, accept_cb, NULL);
    if (ev == NULL)
        return -1;
    H.ls[H.nls].fd = fd;
    H.ls[H.nls].ev = ev;
    H.nls++;
    if (H.accepting)
        event_add(ev, NULL);
    return 0;
}

int http_listen_addr(const char *hostport)
{
    char host[256];
    const char *colon = strrchr(hostport, ':');
    if (colon == NULL || (size_t)(colon - hostport) >= sizeof host)
        return -1;
    memcpy(host, hostport, (size_t)(colon - hostport));
    host[colon - hostport] = '\0';
    char *h = host;
    if (h[0] == '[') { /* [::1]:port */
        h++;
        char *e = strchr(h, ']');
        if (e)
            *e = '\0';
    }
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    if (getaddrinfo(h[0] ? h : NULL, colon + 1, &hints, &ai) != 0 || ai == NULL)
        return -1;
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto fail_ai;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, H.cfg->server_backlog) < 0)
        goto fail_fd;
    freeaddrinfo(ai);
    if (http_listen_fd(fd) < 0) {
        close(fd);
        return -1;
    }
    return 0;
fail_fd:
    close(fd);
fail_ai:
    freeaddrinfo(ai);
    return -1;
}

/* ---- parser callbacks ---- */

static int on_message_begin(http_parser *p)
{
    struct conn *c = p->data;
    req_reset(&c->req);
    clock_gettime(CLOCK_MONOTONIC, &c->req.start);
    c->state = C_READING;
    arm_timer(c, H.cfg->http_read_timeout);
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    struct http_req *r = &c->req;
    if (r->url_len + len > (size_t)H.cfg->http_max_header_size) {
        c->limit_status = 431;
        return -1;
    }
    xgrow(&r->url, &r->url_cap, r->url_len + len + 1);
    memcpy(r->url + r->url_len, at, len);
    r->url_len += len;
    r->url[r->url_len] = '\0';
    return 0;
}

static void hput(struct http_req *r, const char *at, size_t len)
{
    r->head_bytes += len;
    xgrow(&r->hbuf, &r->hcap, r->hlen + len + 1);
    memcpy(r->hbuf + r->hlen, at, len);
    r->hlen += len;
}

/* RFC 9110 5.6.2 token characters (header field names). */
static bool is_tchar(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch != 0 && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    struct http_req *r = &c->req;
    if (r->hstate == 3) {
        /* A chunked body's trailer fields (RFC 9112 7.1.2): counted against the head limit,
         * never stored - the head's fields are final once the body began. */
        r->head_bytes += len;
        if (r->head_bytes + r->url_len > (size_t)H.cfg->http_max_header_size) {
            c->limit_status = 431;
            return -1;
        }
        return 0;
    }
    if (r->hstate != 1) {
        if (r->hstate == 2)
            hput(r, "", 1); /* terminate previous value */
        if (r->nhdrs >= r->hdrcap && r->hdrcap < HTTP_MAX_HEADERS) {
            int cap = r->hdrcap ? r->hdrcap * 2 : 16;
            if (cap > HTTP_MAX_HEADERS)
                cap = HTTP_MAX_HEADERS;
            struct hdr *h = realloc(r->hdrs, sizeof *h * (size_t)cap);
            if (h == NULL)
                abort();
            r->hdrs = h;
            r->hdrcap = cap;
        }
        if (r->nhdrs >= r->hdrcap) {
            c->limit_status = 431;
            return -1;
        }
        r->hdrs[r->nhdrs].name = r->hlen;
        r->hdrs[r->nhdrs].value = r->hlen;
        r->nhdrs++;
        r->hstate = 1;
    }
    for (size_t i = 0; i < len; i++)
        if (!is_tchar((unsigned char)at[i])) {
            c->limit_status = 400; /* e.g. "Transfer-Encoding : chunked" */
            return -1;
        }
    hput(r, at, len);
    if (r->head_bytes + r->url_len > (size_t)H.cfg->http_max_header_size) {
        c->limit_status = 431;
        return -1;
    }
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    struct http_req *r = &c->req;
    if (r->hstate == 0)
        return -1;
    if (r->hstate == 3)
        return on_header_field(p, at, len); /* a trailer's value: counted, not stored */
    if (r->hstate == 1) {
        hput(r, "", 1); /* terminate name */
        r->hdrs[r->nhdrs - 1].value = r->hlen;
        r->hstate = 2;
    }
    hput(r, at, len);
    if (r->head_bytes + r->url_len > (size_t)H.cfg->http_max_header_size) {
        c->limit_status = 431;
        return -1;
    }
    return 0;
}

static enum http_meth map_method(unsigned m)
{
    switch (m) {
    case HTTP_GET:
        return HTTP_M_GET;
    case HTTP_HEAD:
        return HTTP_M_HEAD;
    case HTTP_POST:
        return HTTP_M_POST;
    case HTTP_DELETE:
        return HTTP_M_DELETE;
    case HTTP_OPTIONS:
        return HTTP_M_OPTIONS;
    default:
        return HTTP_M_OTHER;
    }
}

/* Fields a request may carry once: a second copy would be read differently by different
 * parsers (only the first was checked here). */
static const char *const singleton_fields[] = {
    "host",         "origin",         "content-length",       "transfer-encoding", "authorization",
    "content-type", "mcp-session-id", "mcp-protocol-version", "last-event-id",     NULL,
};

static bool head_fields_ok(const struct http_req *r, const http_parser *p)
{
    bool host = false, cl = false, te = false;
    for (int i = 0; i < r->nhdrs; i++) {
        const char *name = r->hbuf + r->hdrs[i].name;
        for (int k = 0; singleton_fields[k]; k++) {
            if (strcasecmp(name, singleton_fields[k]) != 0)
                continue;
            for (int j = i + 1; j < r->nhdrs; j++)
                if (strcasecmp(r->hbuf + r->hdrs[j].name, name) == 0)
                    return false;
        }
        if (strcasecmp(name, "host") == 0)
            host = true;
        else if (strcasecmp(name, "content-length") == 0)
            cl = true;
        else if (strcasecmp(name, "transfer-encoding") == 0)
            te = true;
    }
    if (cl && te)
        return false; /* RFC 9112 6.1: a server may reject; we do */
    if (!host && p->http_major == 1 && p->http_minor >= 1)
        return false; /* RFC 9112 3.2 */
    return true;
}

static int on_headers_complete(http_parser *p)
{
    struct conn *c = p->data;
    struct http_req *r = &c->req;
    if (r->hstate == 1) {
        hput(r, "", 1);
        r->hdrs[r->nhdrs - 1].value = r->hlen;
        hput(r, "", 1);
    } else if (r->hstate == 2) {
        hput(r, "", 1);
    }
    r->hstate = 3;
    r->method = map_method(p->method);
    snprintf(r->method_name, sizeof r->method_name, "%s", http_method_str(p->method));
    r->keepalive = http_should_keep_alive(p) != 0;
    r->http10 = p->http_major == 1 && p->http_minor == 0;
    if (r->url == NULL && (on_url(p, "/", 1) < 0 || r->url == NULL))
        return -1;
    char *q = strchr(r->url, '?');
    if (q) {
        *q = '\0';
        r->query = q + 1;
    }
    if (!head_fields_ok(r, p)) {
        c->limit_status = 400;
        return -1;
    }
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > (uint64_t)H.cfg->http_max_body_size) {
        c->limit_status = 413;
        return -1;
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    struct http_req *r = &c->req;
    if (r->body_len + len > (size_t)H.cfg->http_max_body_size) {
        c->limit_status = 413;
        return -1;
    }
    xgrow(&r->body, &r->body_cap, r->body_len + len + 1);
    memcpy(r->body + r->body_len, at, len);
    r->body_len += len;
    r->body[r->body_len] = '\0';
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct conn *c = p->data;
    c->state = C_HANDLING;
    c->hs = HS_START; /* the next request's head is scanned from its first byte */
    http_parser_pause(p, 1);
    return 0;
}

/* ---- writing ---- */

static void add_output(struct conn *c, const char *data, size_t len)
{
    if (c->gone || c->bev == NULL)
        return;
    evbuffer_add(c->out, data, len);
}

/*
 * Hands the pending bytes to the socket. A plain-TCP response usually fits the socket buffer:
 * writing it directly, when nothing is queued in the bufferevent, saves the epoll_ctl pair that
 * arming and disarming the write event costs per response. What does not fit (and everything
 * under TLS) goes through the bufferevent.
 */
static void flush_output(struct conn *c)
{
    if (c->gone || c->bev == NULL) {
        evbuffer_drain(c->out, evbuffer_get_length(c->out));
        return;
    }
    if (evbuffer_get_length(c->out) == 0)
        return;
    struct evbuffer *bout = bufferevent_get_output(c->bev);
    if (!H.ssl_ctx && evbuffer_get_length(bout) == 0)
        evbuffer_write(c->out, bufferevent_getfd(c->bev));
    if (evbuffer_get_length(c->out) > 0)
        bufferevent_write_buffer(c->bev, c->out);
}

static bool want_close(const struct http_req *r)
{
    return !r->keepalive || H.draining;
}

static void write_head(struct http_req *r, int status, const char *ctype, const char *headers,
                       long long clen, bool chunked)
{
    char head[1024];
    int n = snprintf(head, sizeof head, "HTTP/1.1 %d %s\r\n", status, http_status_text(status));
    if (ctype)
        n += snprintf(head + n, sizeof head - (size_t)n, "Content-Type: %s\r\n", ctype);
    if (clen >= 0)
        n += snprintf(head + n, sizeof head - (size_t)n, "Content-Length: %lld\r\n", clen);
    if (chunked)
        n += snprintf(head + n, sizeof head - (size_t)n, "Transfer-Encoding: chunked\r\n");
    if (want_close(r))
        n += snprintf(head + n, sizeof head - (size_t)n, "Connection: close\r\n");
    else if (r->http10)
        n += snprintf(head + n, sizeof head - (size_t)n, "Connection: keep-alive\r\n");
    add_output(r->c, head, (size_t)n);
    if (H.default_headers)
        add_output(r->c, H.default_headers, strlen(H.default_headers));
    if (headers)
        add_output(r->c, headers, strlen(headers));
    add_output(r->c, "\r\n", 2);
}

static void record_metrics(struct http_req *r, int status)
{
    char labels[96];
    snprintf(labels, sizeof labels, "route=\"%s\",status=\"%d\"", r->route, status);
    metrics_inc("csmcp_http_requests_total", labels, 1);
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double d =
        (double)(now.tv_sec - r->start.tv_sec) + (double)(now.tv_nsec - r->start.tv_nsec) / 1e9;
    snprintf(labels, sizeof labels, "route=\"%s\"", r->route);
    metrics_observe("csmcp_http_request_duration_seconds", labels, d);
}

void http_respond(struct http_req *r, int status, const char *ctype, const char *headers,
                  const char *body, size_t len)
{
    ASSERT(!r->finished && !r->streaming);
    bool head_only = r->method == HTTP_M_HEAD || status == 204 || status == 304;
    write_head(r, status, ctype, headers, status == 204 ? -1 : (long long)len, false);
    if (!head_only && len)
        add_output(r->c, body, len);
    flush_output(r->c);
    record_metrics(r, status);
    finish_request(r->c);
}

void http_stream_begin(struct http_req *r, int status, const char *ctype, const char *headers)
{
    ASSERT(!r->finished && !r->streaming);
    r->streaming = true;
    if (r->http10)
        r->keepalive = false;
    write_head(r, status, ctype, headers, -1, !r->http10);
    flush_output(r->c);
    record_metrics(r, status);
}

void http_stream_write(struct http_req *r, const char *data, size_t len)
{
    if (!r->streaming || r->finished || len == 0)
        return;
    if (r->http10) {
        add_output(r->c, data, len);
        flush_output(r->c);
        return;
    }
    char sz[24];
    int n = snprintf(sz, sizeof sz, "%zx\r\n", len);
    add_output(r->c, sz, (size_t)n);
    add_output(r->c, data, len);
    add_output(r->c, "\r\n", 2);
    flush_output(r->c);
}

void http_stream_end(struct http_req *r)
{
    if (r->finished)
        return;
    if (!r->http10)
        add_output(r->c, "0\r\n\r\n", 5);
    flush_output(r->c);
    finish_request(r->c);
}

bool http_req_streaming(const struct http_req *r)
{
    return r->streaming;
}

/* ---- connection lifecycle ---- */

static void conn_free(struct conn *c)
{
    if (c->bev)
        bufferevent_free(c->bev);
    event_free(c->timer);
    event_free(c->resume);
    evbuffer_free(c->out);
    if (c->detached) {
        free(c->req.url);
        free(c->req.hbuf);
        free(c->req.hdrs);
        free(c->req.body);
        free(c);
        return;
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        H.conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c->req.url);
    free(c->req.hbuf);
    free(c->req.hdrs);
    free(c->req.body);
    free(c);
    H.nconns--;
    gauge_conns();
    update_accepting();
    if (H.draining && H.nconns == 0 && H.drained) {
        http_drained_fn cb = H.drained;
        H.drained = NULL;
        cb(H.drained_arg);
    }
}

/* Closes after the output is flushed. */
static void conn_close_after_flush(struct conn *c)
{
    c->state = C_CLOSING;
    event_del(c->timer);
    if (c->bev == NULL || evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
        conn_free(c);
        return;
    }
    bufferevent_disable(c->bev, EV_READ);
    /* Bound the flush by the read timeout so a stalled client cannot pin us. */
    arm_timer(c, H.cfg->http_read_timeout);
}

static void finish_request(struct conn *c)
{
    struct http_req *r = &c->req;
    r->finished = true;
    if (c->gone) {
        conn_free(c);
        return;
    }
    if (want_close(r)) {
        conn_close_after_flush(c);
        return;
    }
    c->state = C_IDLE;
    arm_timer(c, H.cfg->http_idle_timeout);
    http_parser_pause(&c->parser, 0);
    /* Pipelined input may already be buffered: parse it outside the handler's stack. */
    event_active(c->resume, 0, 0);
}

static void send_error_and_close(struct conn *c, int status)
{
    struct http_req *r = &c->req;
    char body[128];
    int n = snprintf(body, sizeof body, "{\"error\":\"%s\"}", http_status_text(status));
    r->keepalive = false;
    if (r->route == NULL)
        r->route = "other";
    c->state = C_HANDLING;
    r->streaming = false;
    r->finished = false;
    http_respond(r, status, "application/json", NULL, body, (size_t)n);
}

static void dispatch(struct conn *c)
{
    struct http_req *r = &c->req;
    event_del(c->timer);
    const char *path = http_req_path(r);
    for (int i = 0; i < H.nroutes; i++) {
        if (strcmp(H.routes[i].path, path) == 0) {
            r->route = H.routes[i].route;
            H.routes[i].fn(r, H.routes[i].arg);
            return;
        }
    }
    static const char nf[] = "{\"error\":\"not found\"}";
    http_respond(r, 404, "application/json", NULL, nf, sizeof nf - 1);
}

int http_route(const char *path, const char *route, http_handler_fn fn, void *arg)
{
    if (H.nroutes >= HTTP_MAX_ROUTES)
        return -1;
    H.routes[H.nroutes].path = path;
    H.routes[H.nroutes].route = route;
    H.routes[H.nroutes].fn = fn;
    H.routes[H.nroutes].arg = arg;
    H.nroutes++;
    return 0;
}

/*
 * Checks the line structure of the request head in p[0..n) (continuing from c->hs) up to the
 * empty line that ends it: every line ends in CRLF, no line starts with SP/HT (obs-fold, RFC
 * 9112 5.2). Stops at the end of the head; the body is framed by http-parser. -1 on a
 * violation. http-parser consumes the same bytes right after, so the two stay in step.
 */
static int head_scan(struct conn *c, const char *p, size_t n)
{
    enum head_scan hs = c->hs;
    for (size_t i = 0; i < n && hs != HS_DONE; i++) {
        char ch = p[i];
        switch (hs) {
        case HS_START:
            hs = ch == '\r' ? HS_START_CR : HS_LINE;
            if (ch == '\n')
                return -1;
            break;
        case HS_START_CR:
            if (ch != '\n')
                return -1;
            hs = HS_START;
            break;
        case HS_LINE:
            if (ch == '\n')
                return -1;
            if (ch == '\r')
                hs = HS_CR;
            break;
        case HS_CR:
            if (ch != '\n')
                return -1;
            hs = HS_LINESTART;
            break;
        case HS_LINESTART:
            if (ch == '\n' || ch == ' ' || ch == '\t')
                return -1;
            hs = ch == '\r' ? HS_END_CR : HS_LINE;
            break;
        case HS_END_CR:
            if (ch != '\n')
                return -1;
            hs = HS_DONE;
            break;
        case HS_DONE:
            break;
        }
    }
    c->hs = hs;
    return 0;
}

static void process_input(struct conn *c)
{
    if (c->gone || c->bev == NULL)
        return;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    while ((c->state == C_IDLE || c->state == C_READING) && evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        if (head_scan(c, v.iov_base, v.iov_len) < 0) {
            log_debug("http: malformed request head (bare LF or CR, or folded header line)");
            evbuffer_drain(in, evbuffer_get_length(in));
            send_error_and_close(c, 400);
            return;
        }
        size_t n = http_parser_execute(&c->parser, &H.settings, v.iov_base, v.iov_len);
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        evbuffer_drain(in, n);
        if (e == HPE_PAUSED || c->state == C_HANDLING) {
            dispatch(c);
            return;
        }
        if (e != HPE_OK) {
            int st = c->limit_status ? c->limit_status : e == HPE_HEADER_OVERFLOW ? 431 : 400;
            log_debug("http parse error: %s (status %d)", http_errno_name(e), st);
            send_error_and_close(c, st);
            return;
        }
    }
}

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
    process_input(arg);
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    if (c->state == C_CLOSING) {
        evbuffer_drain(bufferevent_get_input(bev), evbuffer_get_length(bufferevent_get_input(bev)));
        return;
    }
    process_input(c);
}

static void write_cb(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    if (c->state == C_CLOSING && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        conn_free(c);
}

static void conn_lost(struct conn *c)
{
    if (c->state == C_HANDLING && !c->req.finished) {
        /* The handler still owns the request: keep the conn until it finishes. */
        bufferevent_free(c->bev);
        c->bev = NULL;
        c->gone = true;
        event_del(c->timer);
        if (c->req.close_fn) {
            void (*fn)(struct http_req *, void *) = c->req.close_fn;
            c->req.close_fn = NULL;
            fn(&c->req, c->req.close_arg);
        }
        return;
    }
    conn_free(c);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct conn *c = arg;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        conn_lost(c);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    switch (c->state) {
    case C_READING:
        send_error_and_close(c, 408);
        break;
    case C_HANDLING:
        break;
    default:
        if (H.draining && c->state == C_IDLE)
            metrics_inc("csmcp_http_drain_idle_closed_total", NULL, 1);
        conn_free(c);
        break;
    }
}

/* ---- public ---- */

int http_init(struct event_base *base, const struct cfg *cfg)
{
    memset(&H, 0, sizeof H);
    H.base = base;
    H.cfg = cfg;
    H.accepting = true;
    http_parser_settings_init(&H.settings);
    H.settings.on_message_begin = on_message_begin;
    H.settings.on_url = on_url;
    H.settings.on_header_field = on_header_field;
    H.settings.on_header_value = on_header_value;
    H.settings.on_headers_complete = on_headers_complete;
    H.settings.on_body = on_body;
    H.settings.on_message_complete = on_message_complete;
    gauge_conns();
    return 0;
}

void http_set_default_headers(const char *headers)
{
    H.default_headers = headers;
}

void http_set_ssl_ctx(SSL_CTX *ctx)
{
    H.ssl_ctx = ctx;
}

bool http_draining(void)
{
    return H.draining;
}

size_t http_connections(void)
{
    return H.nconns;
}

static void close_listeners(void)
{
    set_accepting(false);
    for (int i = 0; i < H.nls; i++) {
        event_free(H.ls[i].ev);
        close(H.ls[i].fd);
    }
    H.nls = 0;
}

/* Idle, nothing buffered in user space in either direction, plain TCP: may change process. */
static bool handoff_eligible(const struct conn *c)
{
    return c->state == C_IDLE && !c->gone && c->bev != NULL && !H.ssl_ctx &&
           evbuffer_get_length(bufferevent_get_input(c->bev)) == 0 &&
           evbuffer_get_length(bufferevent_get_output(c->bev)) == 0 &&
           evbuffer_get_length(c->out) == 0;
}

/* Today's drain for idle connections: a short grace (1 s) to send a request, then close. */
static void grace_close_idle(void)
{
    for (struct conn *c = H.conns; c; c = c->next)
        if (c->state == C_IDLE)
            arm_timer(c, 1);
}

static void handoff_stop(const char *why)
{
    if (H.handoff == NULL)
        return;
    H.handoff = NULL;
    if (H.handoff_timer)
        event_del(H.handoff_timer);
    log_info("drain: handed off %llu idle connections to the new generation in %llu batches%s%s",
             H.handed_off, H.handoff_batches, why ? "; " : "", why ? why : "");
}

static void handoff_pass(void);

static void handoff_retry(int ms)
{
    struct timeval tv = {0, (suseconds_t)ms * 1000};
    if (H.handoff_timer)
        evtimer_add(H.handoff_timer, &tv);
}

static void handoff_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    handoff_pass();
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Idle but not movable yet: bytes buffered in user space (input about to be parsed, or the
 * last response still flushing). */
static size_t handoff_waiting(void)
{
    size_t n = 0;
    for (const struct conn *c = H.conns; c; c = c->next)
        if (c->state == C_IDLE && !c->gone && c->bev && !handoff_eligible(c))
            n++;
    return n;
}

/*
 * Sends every eligible connection up in batches. A full channel, or idle connections with
 * buffered bytes (a response still flushing), are retried every few ms until
 * HTTP_HANDOFF_GIVE_UP_MS after the drain began; a broken channel, or that deadline, ends the
 * handoff and the idle connections left get the grace close. Connections busy now are answered
 * with Connection: close as they finish, so they never need handing off.
 */
static void handoff_pass(void)
{
    int fds[HTTP_HANDOFF_BATCH];
    struct conn *batch[HTTP_HANDOFF_BATCH];
    struct conn *c = H.conns;

    while (H.handoff) {
        int n = 0;
        for (; c && n < HTTP_HANDOFF_BATCH; c = c->next)
            if (handoff_eligible(c)) {
                batch[n] = c;
                fds[n++] = bufferevent_getfd(c->bev);
            }
        int rc = 1;
        if (n == 0 && handoff_waiting() == 0) {
            handoff_stop(NULL);
            return;
        }
        if (n > 0)
            rc = H.handoff(fds, n, H.handoff_arg);
        if (rc == 1) {
            if (mono_ms() >= H.handoff_give_up_ms) {
                handoff_stop(n ? "control channel busy: closing the rest after a grace"
                               : "connections still flushing: closing them after a grace");
                grace_close_idle();
                return;
            }
            handoff_retry(HTTP_HANDOFF_RETRY_MS);
            return;
        }
        if (rc < 0) {
            handoff_stop("control channel failed: closing the rest after a grace");
            grace_close_idle();
            return;
        }
        H.handed_off += (unsigned long long)n;
        H.handoff_batches++;
        metrics_inc("csmcp_http_connections_handed_off_total", NULL, (uint64_t)n);
        if (H.nconns == (size_t)n) /* the last ones: log before the drained callback runs */
            handoff_stop(NULL);
        /* The kernel holds the sockets now: drop ours without a FIN (other references live);
         * disabling first takes them out of our epoll set before the close. c points past the
         * batch, and freeing a batch member frees nothing else. */
        for (int i = 0; i < n; i++) {
            bufferevent_disable(batch[i]->bev, EV_READ | EV_WRITE);
            conn_free(batch[i]);
        }
    }
}

static void drain_common(http_drained_fn cb, void *arg, http_handoff_fn fn, void *fnarg)
{
    H.draining = true;
    H.drained = cb;
    H.drained_arg = arg;
    /* Our copy of the shared listening socket is closed; the other workers keep accepting. */
    close_listeners();
    if (fn && !H.ssl_ctx) {
        H.handoff = fn;
        H.handoff_arg = fnarg;
        H.handed_off = H.handoff_batches = 0;
        H.handoff_give_up_ms = mono_ms() + HTTP_HANDOFF_GIVE_UP_MS;
        if (H.handoff_timer == NULL)
            H.handoff_timer = evtimer_new(H.base, handoff_timer_cb, NULL);
        if (H.nconns == 0)
            handoff_stop(NULL);
        else
            handoff_pass();
    } else {
        /*
         * Idle connections are not closed at once: a client may be sending its next request
         * right now (a fresh connection always is), and closing would lose it. Each gets a
         * short grace (1 s, the read timeout if shorter) to send it, answered with Connection:
         * close; the idle timer closes the ones that stay quiet. The race remains at the end of
         * the grace: only a handoff removes it.
         */
        grace_close_idle();
    }
    if (H.nconns == 0 && H.drained) {
        H.drained = NULL;
        cb(arg);
    }
}

void http_drain(http_drained_fn cb, void *arg)
{
    drain_common(cb, arg, NULL, NULL);
}

void http_drain_handoff(http_drained_fn cb, void *arg, http_handoff_fn fn, void *fnarg)
{
    drain_common(cb, arg, fn, fnarg);
}

int http_adopt_fd(int fd)
{
    size_t cap = (size_t)H.cfg->server_max_connections;
    size_t margin = cap / 4 > 64 ? cap / 4 : 64;

    /* Plain TCP only: a TLS session's state cannot move between processes. */
    if (H.ssl_ctx || H.nconns >= cap + margin) {
        metrics_inc("csmcp_http_connections_adopt_refused_total", NULL, 1);
        close(fd);
        return -1;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0 && !(fl & O_NONBLOCK))
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    if (new_conn(fd) < 0) {
        metrics_inc("csmcp_http_connections_adopt_refused_total", NULL, 1);
        return -1;
    }
    metrics_inc("csmcp_http_connections_adopted_total", NULL, 1);
    update_accepting();
    if (H.draining) {
        /* Adopted while draining (a SIGTERM raced the supervisor's choice): pass it on again,
         * or give it the grace of a non-handoff drain. */
        if (H.handoff)
            handoff_retry(0);
        else
            arm_timer(H.conns, 1);
    }
    return 0;
}

void http_shutdown(void)
{
    H.drained = NULL;
    H.draining = true;
    H.handoff = NULL;
    if (H.handoff_timer) {
        event_free(H.handoff_timer);
        H.handoff_timer = NULL;
    }
    close_listeners();
    while (H.conns) {
        struct conn *c = H.conns;
        if (c->state == C_HANDLING && !c->req.finished) {
            /* Unlink only; the handler's request memory is reclaimed at exit. */
            if (c->bev) {
                bufferevent_free(c->bev);
                c->bev = NULL;
            }
            c->gone = true;
            c->detached = true;
            H.conns = c->next;
            if (H.conns)
                H.conns->prev = NULL;
            c->next = c->prev = NULL;
            H.nconns--;
            continue;
        }
        conn_free(c);
    }
}

enum http_meth http_req_method(const struct http_req *r)
{
    return r->method;
}

const char *http_req_method_name(const struct http_req *r)
{
    return r->method_name;
}

const char *http_req_path(const struct http_req *r)
{
    return r->url ? r->url : "/";
}

const char *http_req_query(const struct http_req *r)
{
    return r->query;
}

const char *http_req_header(const struct http_req *r, const char *name)
{
    for (int i = 0; i < r->nhdrs; i++)
        if (strcasecmp(r->hbuf + r->hdrs[i].name, name) == 0)
            return r->hbuf + r->hdrs[i].value;
    return NULL;
}

const char *http_req_peer(const struct http_req *r)
{
    return r->c->peer;
}

const char *http_req_body(const struct http_req *r, size_t *len)
{
    *len = r->body_len;
    return r->body ? r->body : "";
}

bool http_req_closed(const struct http_req *r)
{
    return r->c->gone;
}

void http_req_set_route(struct http_req *r, const char *route)
{
    r->route = route;
}

void http_req_set_data(struct http_req *r, void *data)
{
    r->data = data;
}

void *http_req_get_data(const struct http_req *r)
{
    return r->data;
}

void http_req_on_close(struct http_req *r, void (*fn)(struct http_req *r, void *arg), void *arg)
{
    r->close_fn = fn;
    r->close_arg = arg;
}
