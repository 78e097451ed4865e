/*
 * auth.h - authentication of /mcp requests: Bearer API keys (hash looked up in PostgreSQL,
 * cached briefly) and OAuth 2.1 JWT access tokens (RS256/ES256, keys from auth.jwks_file).
 */
#ifndef CSMCP_AUTH_H
#define CSMCP_AUTH_H

#include <stdbool.h>

struct event_base;
struct cfg;
struct pgpool;

#define AUTH_SCOPE_READ (1u << 0)
#define AUTH_SCOPE_WRITE (1u << 1)
#define AUTH_SCOPE_ADMIN (1u << 2)

struct auth_result {
    int status;           /* 0 ok; else the HTTP status to answer: 401, 403, 503 */
    char error[32];       /* RFC 6750 error code: invalid_token, insufficient_scope, ... */
    char description[160];
    char principal[96];   /* "key:<id>", "jwt:<sub>", "anonymous" */
    unsigned scopes;      /* AUTH_SCOPE_* */
};

typedef void (*auth_cb)(const struct auth_result *r, void *arg);

int auth_init(struct event_base *base, const struct cfg *cfg, struct pgpool *pg);
/*
 * authorization: the Authorization header value or NULL. cb runs exactly once, possibly before
 * auth_authenticate returns (cache hit, JWT, auth disabled).
 */
void auth_authenticate(const char *authorization, auth_cb cb, void *arg);
void auth_shutdown(void);

#endif
