/*
 * auth.h - authentication of /mcp requests: Bearer API keys (hash looked up in PostgreSQL,
 * cached briefly) and OAuth 2.1 JWT access tokens (RS256/ES256, keys from auth.jwks_file).
 */
#ifndef CSMCP_AUTH_H
#define CSMCP_AUTH_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct cfg;
struct pgpool;

#define AUTH_SCOPE_READ  (1u << 0)
#define AUTH_SCOPE_WRITE (1u << 1)
#define AUTH_SCOPE_ADMIN (1u << 2)

struct auth_result {
    int status;     /* 0 ok; else the HTTP status to answer: 401, 403, 503 */
    char error[32]; /* RFC 6750 error code: invalid_token, insufficient_scope, ... */
    char description[160];
    char principal[96]; /* "key:<id>", "jwt:<sub, bytes outside printable ASCII as %XX>",
                           "anonymous" */
    unsigned scopes;    /* AUTH_SCOPE_* */
    char claimed[48];   /* on failure: what the request claimed to be ("key:<id>", "jwt",
                           "key:malformed"; "" when nothing) - for the audit trail, unverified */
    int retry_after;    /* 429/503: seconds */
};

typedef void (*auth_cb)(const struct auth_result *r, void *arg);

int auth_init(struct event_base *base, const struct cfg *cfg, struct pgpool *pg);
/*
 * authorization: the Authorization header value or NULL; source: the client address
 * (http_req_peer). cb runs exactly once, possibly before auth_authenticate returns (cache hit,
 * JWT, auth disabled).
 *
 * A credential not seen valid before on this worker (no cache hit) first takes a token from
 * its address' bucket (auth.failed_per_minute, in Redis): an address over it gets 429 with
 * retry_after and no database lookup. Key ids the database did not know are remembered for a
 * minute (401 without a lookup). At most auth.max_lookups_in_flight lookups per worker are
 * under way; more are refused (503), not queued. So a flood of made-up keys from one address
 * costs at most auth.failed_per_minute lookups per minute (plus the first minute's burst), all
 * workers and hosts together.
 */
void auth_authenticate(const char *authorization, const char *source, auth_cb cb, void *arg);
void auth_shutdown(void);

/*
 * Helpers for the HTTP/MCP layer (worker/auth.c). host is the request's Host header (may be
 * NULL); it is sanitised before use.
 */
/* True when the granted scopes satisfy a tool's required scope (enum tool_scope: 0 read,
 * 1 write, 2 admin). admin implies write implies read. */
bool auth_scope_allows(unsigned scopes, int tool_scope);
/*
 * The complete header line(s) for a 401/403 answer, ending in "\r\n":
 * WWW-Authenticate: Bearer resource_metadata="<url>"[, error="..", error_description=".."]
 * [, scope=".."]; for a 429 or 503, "Retry-After: N\r\n". need_scope may be NULL. Returns the
 * length, or -1 if len is too small.
 */
int auth_www_authenticate(const struct auth_result *r, const char *host, const char *need_scope,
                          char *buf, size_t len);
/* RFC 9728 protected resource metadata document (JSON) into buf; length or -1. auth_init
 * routes /.well-known/oauth-protected-resource and .../mcp to it itself: 403 for a Host not in
 * mcp.allowed_hosts, the resource from auth.resource_url when set (else the Host), one caching
 * policy (no-store), readable from any origin. */
bool auth_host_allowed(const char *host); /* Host (port ignored) in mcp.allowed_hosts */
int auth_metadata_json(const char *host, char *buf, size_t len);
/*
 * Security header lines for every response (static string, each line ending in "\r\n"):
 * Cache-Control: no-store, X-Content-Type-Options: nosniff, Content-Security-Policy:
 * frame-ancestors 'none', Referrer-Policy: no-referrer, and Strict-Transport-Security when
 * tls.enabled. Valid after auth_init.
 */
const char *auth_security_headers(void);

#endif
