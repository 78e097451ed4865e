/*
 * oidc.h - the worker's view of its OAuth 2.1 authorization servers (auth.issuer): metadata
 * discovery (RFC 8414, then OpenID Connect discovery), each issuer's JWKS kept fresh in the
 * background, and RFC 7662 token introspection.
 *
 * Everything runs on the worker's own event loop through a libcurl multi handle driven by
 * libevent: no request waits for a fetch it did not ask for, and no call here blocks. A key set
 * is replaced as a whole when a fetch succeeds (rotation keeps a key exactly as long as the
 * issuer publishes it); a failed fetch keeps the previous set.
 */
#ifndef CSMCP_OIDC_H
#define CSMCP_OIDC_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct cfg;
struct jwt_keys;

/* secret: the introspection client secret (NULL when introspection is off); copied. */
int oidc_init(struct event_base *base, const struct cfg *cfg, const char *secret, size_t secretlen);
void oidc_shutdown(void);

int oidc_count(void);
/* Index of the configured issuer whose URL is exactly iss, or -1. */
int oidc_find(const char *iss);
const char *oidc_issuer(int i);
/* The issuer's current key set: NULL before the first successful fetch. Valid until the next
 * return to the event loop. */
const struct jwt_keys *oidc_keys(int i);

/*
 * A token named a kid the issuer's set does not hold. Returns 1 when cb will run (once, from
 * the loop) after a refresh ends - one started now, or the one already under way - and 0 when
 * no refresh may start (the last one for an unknown kid was less than auth.jwks_miss_interval
 * seconds ago, the issuer's last fetch failed - a retry is then started if none is under way, but
 * nobody waits for it - or too many requests are waiting): the caller refuses the token.
 */
typedef void (*oidc_refresh_cb)(void *arg);
int oidc_refresh_for_kid(int i, oidc_refresh_cb cb, void *arg);

/* True while the issuer's last discovery/JWKS fetch failed (the cached set is still used). */
bool oidc_refresh_failing(int i);

/* Called after a refresh dropped a key that was in the previous set (auth flushes its cache). */
void oidc_on_keys_removed(void (*fn)(void));

struct oidc_introspection {
    int status;      /* 0 answered; else the HTTP status to answer the client (503) */
    bool active;     /* RFC 7662 "active" */
    bool aud_ok;     /* aud present and holding the audience */
    char sub[96];    /* "" when absent */
    char scope[512]; /* "" when absent */
    long exp;        /* 0 when absent */
    char error[160]; /* why, when status != 0 or !active (never the token) */
};
typedef void (*oidc_introspect_cb)(const struct oidc_introspection *r, void *arg);

bool oidc_introspection_enabled(void);
/*
 * Asks the introspection endpoint of issuer i (or, i = -1, auth.introspection_endpoint else the
 * first issuer's) about token. cb runs exactly once, from the loop or before this returns.
 */
void oidc_introspect(int i, const char *token, const char *audience, oidc_introspect_cb cb,
                     void *arg);

#endif
