/*
 * jwt.h - verification of OAuth 2.1 JWT access tokens (RFC 7519/7515) signed RS256 or ES256,
 * against the identity provider's public keys from a JWKS document (RFC 7517).
 *
 * Pure and synchronous (no event loop, no I/O besides jwt_keys_load), so it is unit tested
 * directly. Only RS256 and ES256 are accepted: "none", HMAC algorithms and any algorithm that
 * does not match the key's type are refused (algorithm-confusion attacks).
 */
#ifndef CSMCP_JWT_H
#define CSMCP_JWT_H

#include <stddef.h>
#include <time.h>

struct jwt_keys;

#define JWT_LEEWAY_S 60 /* default clock skew tolerated on exp, nbf and iat */
#define JWT_MAX_LEN  8192
/* jwt_verify_opts: the header names a kid that no key of its algorithm has (the caller may
 * refresh the key set and try again). Also < 0, like every other refusal. */
#define JWT_ERR_NO_KEY (-2)

struct jwt_claims {
    char sub[96];
    char scope[512]; /* space-separated, from the scope claim (string or array of strings) */
    long exp;
};

struct jwt_opts {
    const char *issuer;      /* required iss; NULL or "" = not checked */
    const char *audience;    /* required element of aud; must be non-empty */
    int leeway;              /* seconds of clock skew tolerated on exp, nbf and iat */
    const char *scope_claim; /* claim holding the scopes; NULL = "scope", then "scp" */
};

/* Parses a JWKS document; keys of other types/algorithms are skipped. Caller frees with
 * jwt_keys_free. -1 with a reason when no usable key is found or the JSON is invalid. */
int jwt_keys_parse(const char *json, size_t len, struct jwt_keys **out, char *err, size_t errlen);
int jwt_keys_load(const char *path, struct jwt_keys **out, char *err, size_t errlen);
int jwt_keys_count(const struct jwt_keys *k);
void jwt_keys_free(struct jwt_keys *k);

/*
 * Verifies signature, exp (required), nbf, iss (when issuer is non-empty) and aud (must
 * contain audience, required non-empty). Returns 0 and fills out, or -1 with a reason fit for
 * a WWW-Authenticate error_description (never echoing the token).
 */
int jwt_verify(const struct jwt_keys *keys, const char *token, const char *issuer,
               const char *audience, time_t now, struct jwt_claims *out, char *err, size_t errlen);

/* As jwt_verify with explicit options; JWT_ERR_NO_KEY when the token's kid is not in keys
 * (keys NULL or empty: also JWT_ERR_NO_KEY). */
int jwt_verify_opts(const struct jwt_keys *keys, const char *token, const struct jwt_opts *o,
                    time_t now, struct jwt_claims *out, char *err, size_t errlen);

/*
 * Unverified look at a token, only to choose the key set: the header's kid and the claims'
 * iss (each "" when absent). -1 when the token is not a JWS compact serialisation.
 */
int jwt_peek(const char *token, char *kid, size_t kidlen, char *iss, size_t isslen);

/* True when the set holds a key with this kid. */
int jwt_keys_has_kid(const struct jwt_keys *k, const char *kid);
/* The i-th key's kid (0 <= i < count). */
const char *jwt_keys_kid(const struct jwt_keys *k, int i);

#endif
