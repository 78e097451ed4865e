/*
 * http.h - the worker's HTTP/1.1 server: bufferevents on the inherited listening sockets,
 * http-parser for requests, keep-alive, limits, chunked streaming (SSE) and drain.
 *
 * One request at a time per connection: while a request is being answered, further input
 * (pipelined requests) stays buffered. A request (struct http_req) is handed to the handler
 * and stays valid until the handler finishes it with http_respond() or http_stream_end(),
 * even if the client disconnects meanwhile (then writes are dropped, and the close hook, if
 * set, runs once so long-lived streams can end themselves).
 */
#ifndef CSMCP_HTTP_H
#define CSMCP_HTTP_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct cfg;
struct http_req;
typedef struct ssl_ctx_st SSL_CTX;

enum http_meth {
    HTTP_M_OTHER = 0,
    HTTP_M_GET,
    HTTP_M_HEAD,
    HTTP_M_POST,
    HTTP_M_DELETE,
    HTTP_M_OPTIONS,
};

typedef void (*http_handler_fn)(struct http_req *req, void *arg);
/* Runs once when the last connection of a draining server has closed. */
typedef void (*http_drained_fn)(void *arg);

int http_init(struct event_base *base, const struct cfg *cfg);
/*
 * Routes requests whose path is exactly path to fn (any method; the handler answers 405
 * itself). route is the static label used in metrics. Unrouted paths get 404. Other modules
 * register their own endpoints this way (e.g. auth_init registers
 * /.well-known/oauth-protected-resource and /.well-known/oauth-protected-resource/mcp).
 */
int http_route(const char *path, const char *route, http_handler_fn fn, void *arg);
/* Serves on an inherited listening fd (made non-blocking; owned from now on). */
int http_listen_fd(int fd);
/* Binds and listens on "host:port" itself (manual runs). */
int http_listen_addr(const char *hostport);
/* Header lines (each ending in "\r\n") added to every response, e.g. the security headers of
 * auth_security_headers(). Borrowed; must outlive the server. NULL for none. */
void http_set_default_headers(const char *headers);
/* TLS hook: when set, accepted sockets are wrapped in bufferevent_openssl (borrowed ctx). */
void http_set_ssl_ctx(SSL_CTX *ctx);
/* Stops accepting, closes idle connections (after a 1 s grace), marks the rest Connection:
 * close; cb runs when none remain (possibly at once). */
void http_drain(http_drained_fn cb, void *arg);
/*
 * Sends n connection fds elsewhere. Returns 0 when sent (the callee's transport holds its own
 * references; the caller closes its copies), 1 when it would block (retry later), -1 when it
 * cannot send at all. fds are borrowed.
 */
typedef int (*http_handoff_fn)(const int *fds, int n, void *arg);
/*
 * As http_drain, for a reload: plain-TCP connections idle between requests, with nothing
 * buffered, are passed to fn (batches of up to 200) instead of being closed; the others finish
 * with Connection: close. Falls back to http_drain's grace close if fn fails (or stays busy
 * for 2 s). Logs "handed off N idle connections"; counts csmcp_http_connections_handed_off_total.
 */
void http_drain_handoff(http_drained_fn cb, void *arg, http_handoff_fn fn, void *fnarg);
/*
 * Registers fd (a connection handed off by a draining worker; owned from now on) as a new idle
 * keep-alive connection, as after accept. Up to server.max_connections plus a margin of a
 * quarter (at least 64) beyond it; over that, or under TLS, the fd is closed. 0 or -1.
 */
int http_adopt_fd(int fd);
bool http_draining(void);
/* Stops accepting and closes every connection now (exit path). */
void http_shutdown(void);
size_t http_connections(void);

/* Request accessors; strings borrowed until the request is finished. */
enum http_meth http_req_method(const struct http_req *r);
const char *http_req_method_name(const struct http_req *r);
const char *http_req_path(const struct http_req *r);  /* without the query string */
const char *http_req_query(const struct http_req *r); /* after '?', or NULL */
/* Header value by case-insensitive name (first occurrence), or NULL. */
const char *http_req_header(const struct http_req *r, const char *name);
const char *http_req_body(const struct http_req *r, size_t *len);
/* The client's numeric address ("192.0.2.1", "2001:db8::1"; "unknown" if the socket had
 * none): the TCP peer, so a proxy's address when behind one. */
const char *http_req_peer(const struct http_req *r);
bool http_req_closed(const struct http_req *r);
/* Route label for metrics (set by the router; static string). */
void http_req_set_route(struct http_req *r, const char *route);
/* Opaque per-request pointer for the handler. */
void http_req_set_data(struct http_req *r, void *data);
void *http_req_get_data(const struct http_req *r);
/* Called once if the client goes away (or the server drains) while a stream is open. */
void http_req_on_close(struct http_req *r, void (*fn)(struct http_req *r, void *arg), void *arg);

/*
 * Complete response. headers: extra header lines, each ending in "\r\n", or NULL. body copied.
 * Finishes the request.
 */
void http_respond(struct http_req *r, int status, const char *content_type, const char *headers,
                  const char *body, size_t len);
/* Streaming (chunked) response: begin, write chunks, end (finishes the request). */
void http_stream_begin(struct http_req *r, int status, const char *content_type,
                       const char *headers);
void http_stream_write(struct http_req *r, const char *data, size_t len);
void http_stream_end(struct http_req *r);
bool http_req_streaming(const struct http_req *r);

const char *http_status_text(int status);

#endif
