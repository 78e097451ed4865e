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

#define JWT_LEEWAY_S 60 /* clock skew tolerated on exp and nbf */
#define JWT_MAX_LEN  8192

struct jwt_claims {
    char sub[96];
    char scope[512]; /* space-separated, from "scope" or "scp" */
    long exp;
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

#endif
