/*
 * auth.c - authentication of /mcp requests and the worker's security start-up.
 *
 * Bearer credentials are either csmcp API keys "csk_<key_id>_<secret>" (only SHA-256 of the
 * whole token is stored, in api_keys; looked up through the async pool and cached briefly) or
 * OAuth 2.1 JWT access tokens verified against auth.jwks_file (worker/jwt.c).
 *
 * Invariants: the callback runs exactly once per auth_authenticate; a token, or anything
 * derived from it besides its key id, never reaches a log line or the cache in clear (the
 * cache is keyed by SHA-256 of the token); stored and presented hashes are compared in
 * constant time; a database failure is a 503, never an accidental success. A revoked key stops
 * working within AUTH_CACHE_TTL_S on every worker.
 *
 * auth_init is the worker's security entry point: it installs the log scrubber, loads the JWKS,
 * creates the TLS context when tls.enabled (handing it to the HTTP layer) and routes the RFC
 * 9728 metadata endpoints.
 */
#include "auth.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>

#include "audit.h"
#include "cfg.h"
#include "crypto.h"
#include "http.h"
#include "jwt.h"
#include "log.h"
#include "metrics.h"
#include "oidc.h"
#include "pgpool.h"
#include "ratelimit.h"
#include "scrub.h"
#include "secret.h"
#include "tls.h"
#include "tool.h"

#define AUTH_CACHE_SLOTS     512
#define AUTH_CACHE_TTL_S     10 /* positive answers (and revocations) */
#define AUTH_NEG_CACHE_TTL_S 2  /* unknown/revoked keys */
#define AUTH_TOKEN_MAX       4096
/* Key ids the database does not know, per worker: a made-up id costs one lookup per minute. A
 * key created with an id probed in that minute works on this worker after at most that. */
#define AUTH_NEG_ID_SLOTS 1024
#define AUTH_NEG_ID_TTL_S 60
/* Tokens seen valid: their later lookups (cache expiry, revocation check) skip the per-address
 * limit, so a legitimate client never pays for a flood from its address. */
#define AUTH_GOOD_SLOTS 1024
#define AUTH_GOOD_TTL_S 3600
/* Addresses Redis said were over auth.failed_per_minute, until the instant it named. */
#define AUTH_BLOCK_SLOTS 256

struct cache_ent {
    uint8_t hash[CRYPTO_SHA256_LEN];
    double expires; /* monotonic seconds; 0 = empty */
    struct auth_result r;
};

static struct {
    const struct cfg *cfg;
    struct pgpool *pg;
    struct jwt_keys *jwks;
    char audience[1024];
    SSL_CTX *ssl;
    int inflight;               /* API-key lookups under way (address check or database) */
    struct key_lookup *pending; /* those lookups, for coalescing (auth.max_lookups_in_flight) */
    struct cache_ent cache[AUTH_CACHE_SLOTS];
    struct {
        char id[40];
        double until;
    } neg[AUTH_NEG_ID_SLOTS];
    struct {
        uint8_t hash[CRYPTO_SHA256_LEN];
        double until;
    } good[AUTH_GOOD_SLOTS];
    struct {
        char src[48];
        double until;
    } blocked[AUTH_BLOCK_SLOTS];
} A;

#define SEC_HEADERS                                                                                \
    "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"                               \
    "Content-Security-Policy: frame-ancestors 'none'\r\nReferrer-Policy: no-referrer\r\n"
#define HSTS_HEADER "Strict-Transport-Security: max-age=63072000\r\n"

const char *auth_security_headers(void)
{
    return A.cfg && A.cfg->tls_enabled ? SEC_HEADERS HSTS_HEADER : SEC_HEADERS;
}

static const char SQL_KEY[] =
    "SELECT token_hash, array_to_string(scopes, ','), revoked_at IS NOT NULL, "
    "expires_at IS NOT NULL AND expires_at <= now() FROM api_keys WHERE key_id = $1";

static double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

bool auth_scope_allows(unsigned scopes, int tool_scope)
{
    switch (tool_scope) {
    case TOOL_SCOPE_READ:
        return (scopes & (AUTH_SCOPE_READ | AUTH_SCOPE_WRITE | AUTH_SCOPE_ADMIN)) != 0;
    case TOOL_SCOPE_WRITE:
        return (scopes & (AUTH_SCOPE_WRITE | AUTH_SCOPE_ADMIN)) != 0;
    case TOOL_SCOPE_ADMIN:
        return (scopes & AUTH_SCOPE_ADMIN) != 0;
    default:
        return false;
    }
}

/* "read,write" or "read write" (also "csmcp:read", "csmcp.read") -> AUTH_SCOPE_* bits. */
static unsigned parse_scopes(const char *s)
{
    unsigned bits = 0;
    while (s && *s) {
        size_t n;
        while (*s == ' ' || *s == ',')
            s++;
        n = strcspn(s, " ,");
        const char *w = s;
        size_t wn = n;
        if (wn > 6 && (strncmp(w, "csmcp:", 6) == 0 || strncmp(w, "csmcp.", 6) == 0)) {
            w += 6;
            wn -= 6;
        }
        if (wn == 4 && strncmp(w, "read", 4) == 0)
            bits |= AUTH_SCOPE_READ;
        else if (wn == 5 && strncmp(w, "write", 5) == 0)
            bits |= AUTH_SCOPE_WRITE;
        else if (wn == 5 && strncmp(w, "admin", 5) == 0)
            bits |= AUTH_SCOPE_ADMIN;
        s += n;
    }
    /* hierarchical: admin includes write, write includes read */
    if (bits & AUTH_SCOPE_ADMIN)
        bits |= AUTH_SCOPE_WRITE;
    if (bits & AUTH_SCOPE_WRITE)
        bits |= AUTH_SCOPE_READ;
    return bits;
}

static void fail_result(struct auth_result *r, int status, const char *error, const char *desc)
{
    memset(r, 0, sizeof(*r));
    r->status = status;
    snprintf(r->error, sizeof(r->error), "%s", error);
    snprintf(r->description, sizeof(r->description), "%s", desc);
}

static void count(const char *method, const char *result)
{
    char labels[96];
    snprintf(labels, sizeof(labels), "method=\"%s\",result=\"%s\"", method, result);
    metrics_inc("csmcp_auth_total", labels, 1);
}

static struct cache_ent *cache_slot(const uint8_t *hash)
{
    unsigned idx = ((unsigned)hash[0] << 8 | hash[1]) % AUTH_CACHE_SLOTS;
    return &A.cache[idx];
}

static const struct auth_result *cache_get(const uint8_t *hash)
{
    struct cache_ent *e = cache_slot(hash);
    if (e->expires > 0 && e->expires > now_mono() &&
        crypto_ct_equal(e->hash, hash, CRYPTO_SHA256_LEN))
        return &e->r;
    return NULL;
}

static void cache_put(const uint8_t *hash, const struct auth_result *r, int ttl)
{
    struct cache_ent *e = cache_slot(hash);
    memcpy(e->hash, hash, CRYPTO_SHA256_LEN);
    e->r = *r;
    e->expires = now_mono() + ttl;
}

static uint32_t fnv(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

static bool neg_id_hit(const char *id)
{
    unsigned i = fnv(id) % AUTH_NEG_ID_SLOTS;
    return A.neg[i].until > now_mono() && strcmp(A.neg[i].id, id) == 0;
}

static void neg_id_put(const char *id)
{
    unsigned i = fnv(id) % AUTH_NEG_ID_SLOTS;
    snprintf(A.neg[i].id, sizeof A.neg[i].id, "%s", id);
    A.neg[i].until = now_mono() + AUTH_NEG_ID_TTL_S;
}

static bool good_hit(const uint8_t *hash)
{
    unsigned i = ((unsigned)hash[2] << 8 | hash[3]) % AUTH_GOOD_SLOTS;
    return A.good[i].until > now_mono() && crypto_ct_equal(A.good[i].hash, hash, CRYPTO_SHA256_LEN);
}

static void good_put(const uint8_t *hash)
{
    unsigned i = ((unsigned)hash[2] << 8 | hash[3]) % AUTH_GOOD_SLOTS;
    memcpy(A.good[i].hash, hash, CRYPTO_SHA256_LEN);
    A.good[i].until = now_mono() + AUTH_GOOD_TTL_S;
}

/* Seconds until src may try again (0: not blocked). */
static int blocked_for(const char *src)
{
    unsigned i = fnv(src) % AUTH_BLOCK_SLOTS;
    double left = A.blocked[i].until - now_mono();
    if (left <= 0 || strcmp(A.blocked[i].src, src) != 0)
        return 0;
    return (int)left + 1;
}

static void block(const char *src, int seconds)
{
    unsigned i = fnv(src) % AUTH_BLOCK_SLOTS;
    snprintf(A.blocked[i].src, sizeof A.blocked[i].src, "%s", src);
    A.blocked[i].until = now_mono() + (seconds > 0 ? seconds : 1);
}

static void limited_result(struct auth_result *r, int retry_after)
{
    fail_result(r, 429, "rate_limited", "too many failed authentications from this address");
    r->retry_after = retry_after > 0 ? retry_after : 1;
    metrics_inc("csmcp_auth_limited_total", NULL, 1);
}

/* A request that presented the same token while its lookup was already in flight. */
struct key_waiter {
    auth_cb cb;
    void *arg;
    struct key_waiter *next;
};

/* One database lookup per token at a time (single flight): a burst of requests with the same
 * key after a cache miss (cold start, TTL expiry, thousands of clients reconnecting) costs one
 * query and one AUTH_MAX_INFLIGHT slot, not one per request. */
struct key_lookup {
    auth_cb cb;
    void *arg;
    struct key_waiter *waiters, **wtail; /* answered with the same result, in arrival order */
    struct key_lookup *next;             /* A.pending */
    char key_id[40];
    char source[48];
    char token_hex[CRYPTO_SHA256_HEX_LEN];
    uint8_t hash[CRYPTO_SHA256_LEN];
};

static void pending_unlink(struct key_lookup *kl)
{
    for (struct key_lookup **pp = &A.pending; *pp; pp = &(*pp)->next)
        if (*pp == kl) {
            *pp = kl->next;
            return;
        }
}

/* Answers kl's request and its waiters with r, and frees kl. */
static void kl_finish(struct key_lookup *kl, struct auth_result *r)
{
    A.inflight--;
    pending_unlink(kl);
    snprintf(r->claimed, sizeof r->claimed, "key:%s", kl->key_id);
    /* The callbacks may start new requests (and lookups): kl is unlinked already, and the
     * waiter list is taken before any callback runs. */
    struct key_waiter *w = kl->waiters;
    auth_cb cb = kl->cb;
    void *cb_arg = kl->arg;
    OPENSSL_cleanse(kl, sizeof(*kl));
    free(kl);
    cb(r, cb_arg);
    while (w) {
        struct key_waiter *next = w->next;
        w->cb(r, w->arg);
        free(w);
        w = next;
    }
}

static void key_done(const PGresult *res, const char *err, const char *sqlstate, bool retryable,
                     void *arg)
{
    struct key_lookup *kl = arg;
    struct auth_result r;

    metrics_inc("csmcp_auth_key_lookups_total", NULL, 1);
    if (res == NULL) {
        log_warn("auth: api key lookup for key %s failed: %s", kl->key_id, err ? err : "?");
        fail_result(&r, 503, "temporarily_unavailable", "credential store unavailable; retry");
        count("key", "unavailable");
        goto out;
    }
    if (PQntuples(res) != 1 || PQnfields(res) != 4) {
        fail_result(&r, 401, "invalid_token", "unknown API key");
        count("key", "unknown");
        cache_put(kl->hash, &r, AUTH_NEG_CACHE_TTL_S);
        neg_id_put(kl->key_id);
        goto out;
    }
    const char *stored = PQgetvalue(res, 0, 0);
    if (strlen(stored) != 64 || !crypto_ct_equal(stored, kl->token_hex, 64)) {
        fail_result(&r, 401, "invalid_token", "unknown API key");
        count("key", "mismatch");
        cache_put(kl->hash, &r, AUTH_NEG_CACHE_TTL_S);
        goto out;
    }
    if (strcmp(PQgetvalue(res, 0, 2), "t") == 0) {
        fail_result(&r, 401, "invalid_token", "API key revoked");
        count("key", "revoked");
        cache_put(kl->hash, &r, AUTH_NEG_CACHE_TTL_S);
        goto out;
    }
    if (strcmp(PQgetvalue(res, 0, 3), "t") == 0) {
        fail_result(&r, 401, "invalid_token", "API key expired");
        count("key", "expired");
        cache_put(kl->hash, &r, AUTH_NEG_CACHE_TTL_S);
        goto out;
    }
    memset(&r, 0, sizeof(r));
    snprintf(r.principal, sizeof(r.principal), "key:%s", kl->key_id);
    r.scopes = parse_scopes(PQgetvalue(res, 0, 1));
    count("key", "ok");
    cache_put(kl->hash, &r, AUTH_CACHE_TTL_S);
    good_put(kl->hash);
out:
    kl_finish(kl, &r);
}

static void start_lookup(struct key_lookup *kl)
{
    const char *params[1] = {kl->key_id};
    if (A.pg == NULL || pgpool_query(A.pg, SQL_KEY, 1, params, key_done, kl) < 0) {
        struct auth_result r;
        fail_result(&r, 503, "temporarily_unavailable", "credential store unavailable; retry");
        r.retry_after = 1;
        count("key", "unavailable");
        kl_finish(kl, &r);
    }
}

/* The address' credential-check bucket answered: look the key up, or refuse. */
static void source_checked(const struct ratelimit_result *rl, void *arg)
{
    struct key_lookup *kl = arg;
    struct auth_result r;
    if (rl->verdict == RATELIMIT_ALLOW) {
        start_lookup(kl);
        return;
    }
    if (rl->verdict == RATELIMIT_LIMITED) {
        block(kl->source, rl->retry_after);
        limited_result(&r, rl->retry_after);
        count("key", "limited");
    } else {
        fail_result(&r, 503, "temporarily_unavailable", "rate limiter unavailable; retry");
        r.retry_after = 1;
        count("key", "unavailable");
    }
    kl_finish(kl, &r);
}

/* A JWT failed: its bucket pays too (no database involved, so after the fact). */
static void jwt_source_checked(const struct ratelimit_result *rl, void *arg)
{
    char *src = arg;
    if (rl->verdict == RATELIMIT_LIMITED)
        block(src, rl->retry_after);
    free(src);
}

/* "jwt:" + sub with every byte outside printable ASCII (and % " \\) as %XX: a principal is
 * one safe token in logs, audit rows and Redis keys, whatever the identity provider put in. */
static void jwt_principal(const char *sub, char *out, size_t len)
{
    static const char hx[] = "0123456789ABCDEF";
    size_t n = (size_t)snprintf(out, len, "jwt:");
    for (const unsigned char *p = (const unsigned char *)sub; *p && n + 4 < len && n < 84; p++) {
        if (*p > 0x20 && *p < 0x7f && *p != '%' && *p != '"' && *p != '\\') {
            out[n++] = (char)*p;
        } else {
            out[n++] = '%';
            out[n++] = hx[*p >> 4];
            out[n++] = hx[*p & 15];
        }
    }
    out[n] = '\0';
}

/* csk_<id>_<secret>: id [a-z0-9]{8,32}, secret base64url {20,128}. */
static bool parse_api_key(const char *tok, char *id, size_t idlen)
{
    const char *p = tok + 4, *us;
    size_t n;

    us = strchr(p, '_');
    if (us == NULL)
        return false;
    n = (size_t)(us - p);
    if (n < 8 || n > 32 || n >= idlen)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(islower((unsigned char)p[i]) || isdigit((unsigned char)p[i])))
            return false;
    size_t sl = strlen(us + 1);
    if (sl < 20 || sl > 128)
        return false;
    for (const char *q = us + 1; *q; q++)
        if (!(isalnum((unsigned char)*q) || *q == '-' || *q == '_'))
            return false;
    memcpy(id, p, n);
    id[n] = '\0';
    return true;
}

/* An OAuth token on its way through verification, kid-miss refresh and introspection. */
struct jwt_job {
    auth_cb cb;
    void *arg;
    char *token;
    uint8_t hash[CRYPTO_SHA256_LEN];
    char source[48];
    int issuer;   /* index in auth.issuer, or -1: auth.jwks_file / opaque */
    bool retried; /* verified again after a refresh its kid miss asked for */
    bool opaque;  /* not a JWT: introspection alone decides */
    struct jwt_claims c;
};

static void jwt_job_free(struct jwt_job *j)
{
    OPENSSL_cleanse(j->token, strlen(j->token));
    free(j->token);
    free(j);
}

static void jwt_fail(struct jwt_job *j, int status, const char *error, const char *why,
                     const char *result)
{
    struct auth_result r;
    fail_result(&r, status, error, why);
    snprintf(r.claimed, sizeof r.claimed, "jwt");
    if (status == 503)
        r.retry_after = 1;
    count("jwt", result);
    if (status == 401) {
        char *src = strdup(j->source);
        if (src)
            ratelimit_check_source(
                src,
                A.cfg && A.cfg->auth_failed_per_minute > 0 ? A.cfg->auth_failed_per_minute : 60,
                jwt_source_checked, src);
    }
    auth_cb cb = j->cb;
    void *arg = j->arg;
    jwt_job_free(j);
    cb(&r, arg);
}

static void jwt_ok(struct jwt_job *j, const char *sub, const char *scope, long exp)
{
    struct auth_result r;
    memset(&r, 0, sizeof(r));
    jwt_principal(sub[0] ? sub : "unknown", r.principal, sizeof(r.principal));
    good_put(j->hash);
    r.scopes = parse_scopes(scope);
    count("jwt", "ok");
    /* cache no longer than the token lives, nor than an introspection answer may be reused */
    long ttl = exp > 0 ? exp - (long)time(NULL) : AUTH_CACHE_TTL_S;
    int cap = AUTH_CACHE_TTL_S;
    if (oidc_introspection_enabled() && A.cfg->auth_introspection_cache_ttl < cap)
        cap = A.cfg->auth_introspection_cache_ttl;
    if (ttl > 0)
        cache_put(j->hash, &r, ttl < cap ? (int)ttl : cap);
    auth_cb cb = j->cb;
    void *arg = j->arg;
    jwt_job_free(j);
    cb(&r, arg);
}

static void jwt_introspected(const struct oidc_introspection *ir, void *arg)
{
    struct jwt_job *j = arg;
    if (ir->status) {
        jwt_fail(j, ir->status, "temporarily_unavailable", ir->error, "introspection_error");
        return;
    }
    if (!ir->active) {
        jwt_fail(j, 401, "invalid_token", ir->error, "inactive");
        return;
    }
    if (!j->opaque) { /* the verified claims decide; the answer only says "still active" */
        jwt_ok(j, j->c.sub, j->c.scope, j->c.exp);
        return;
    }
    if (!ir->aud_ok) {
        jwt_fail(j, 401, "invalid_token", "token not issued for this resource (aud)", "invalid");
        return;
    }
    if (ir->exp > 0 && (long)time(NULL) > ir->exp + A.cfg->auth_clock_skew) {
        jwt_fail(j, 401, "invalid_token", "token expired", "invalid");
        return;
    }
    jwt_ok(j, ir->sub, ir->scope, ir->exp);
}

static void jwt_run(struct jwt_job *j);

static void jwt_refreshed(void *arg)
{
    struct jwt_job *j = arg;
    j->retried = true;
    jwt_run(j);
}

static void jwt_run(struct jwt_job *j)
{
    const struct jwt_keys *keys = j->issuer >= 0 ? oidc_keys(j->issuer) : A.jwks;
    struct jwt_opts o = {j->issuer >= 0 ? oidc_issuer(j->issuer) : A.cfg->auth_jwt_issuer,
                         A.audience, A.cfg->auth_clock_skew, A.cfg->auth_scope_claim};
    char why[160];

    if (j->issuer < 0 && A.jwks == NULL) {
        jwt_fail(j, 401, "invalid_token",
                 oidc_count() > 0 ? "token issuer is not trusted by this server (iss)"
                                  : "JWT access tokens are not accepted by this server",
                 "invalid");
        return;
    }
    int rc = jwt_verify_opts(keys, j->token, &o, time(NULL), &j->c, why, sizeof why);
    if (rc == JWT_ERR_NO_KEY && j->issuer >= 0) {
        /* A kid this worker does not know: the issuer may have rotated. One refresh, the
         * request waits for it (asynchronously); refused when one ran moments ago. */
        if (!j->retried && oidc_refresh_for_kid(j->issuer, jwt_refreshed, j)) {
            metrics_inc("csmcp_auth_jwks_kid_miss_total", "result=\"refresh\"", 1);
            return;
        }
        bool failing = oidc_refresh_failing(j->issuer);
        metrics_inc("csmcp_auth_jwks_kid_miss_total",
                    failing      ? "result=\"fetch_failed\""
                    : j->retried ? "result=\"unknown\""
                                 : "result=\"refused\"",
                    1);
        if (keys == NULL)
            snprintf(why, sizeof why, "signing keys of the token's issuer could not be fetched");
        else if (failing)
            snprintf(why, sizeof why,
                     "unknown signing key (kid); the issuer's key set could not be refreshed");
        else if (j->retried)
            snprintf(why, sizeof why, "unknown signing key (kid not in the issuer's key set)");
        else
            snprintf(why, sizeof why,
                     "unknown signing key (kid); the issuer's key set was refreshed moments ago");
        jwt_fail(j, 401, "invalid_token", why, "unknown_kid");
        return;
    }
    if (rc < 0) {
        jwt_fail(j, 401, "invalid_token", why, "invalid");
        return;
    }
    if (oidc_introspection_enabled() && j->issuer >= 0) {
        oidc_introspect(j->issuer, j->token, A.audience, jwt_introspected, j);
        return;
    }
    jwt_ok(j, j->c.sub, j->c.scope, j->c.exp);
}

void auth_authenticate(const char *authorization, const char *source, auth_cb cb, void *arg)
{
    struct auth_result r;
    const struct auth_result *hit;
    const char *tok;
    uint8_t hash[CRYPTO_SHA256_LEN];
    size_t tlen;

    if (authorization == NULL || *authorization == '\0') {
        if (A.cfg && !A.cfg->auth_required) {
            memset(&r, 0, sizeof(r));
            snprintf(r.principal, sizeof(r.principal), "anonymous");
            r.scopes = AUTH_SCOPE_READ | AUTH_SCOPE_WRITE | AUTH_SCOPE_ADMIN;
            count("anonymous", "ok");
        } else {
            /* RFC 6750 3.1: no error code when the request carried no credentials */
            fail_result(&r, 401, "", "Bearer token required");
            count("none", "missing");
        }
        cb(&r, arg);
        return;
    }
    if (strncasecmp(authorization, "Bearer ", 7) != 0) {
        fail_result(&r, 401, "invalid_request", "Authorization must use the Bearer scheme");
        count("none", "malformed");
        cb(&r, arg);
        return;
    }
    tok = authorization + 7;
    while (*tok == ' ')
        tok++;
    tlen = strlen(tok);
    while (tlen > 0 && tok[tlen - 1] == ' ')
        tlen--;
    if (tlen == 0 || tlen > AUTH_TOKEN_MAX) {
        fail_result(&r, 401, "invalid_request", "malformed Bearer token");
        count("none", "malformed");
        cb(&r, arg);
        return;
    }
    char *t = strndup(tok, tlen);
    if (t == NULL) {
        fail_result(&r, 503, "temporarily_unavailable", "out of memory");
        cb(&r, arg);
        return;
    }
    crypto_sha256(t, tlen, hash);
    hit = cache_get(hash);
    if (hit) {
        metrics_inc("csmcp_auth_cache_total", "result=\"hit\"", 1);
        r = *hit;
        free(t);
        cb(&r, arg);
        return;
    }
    metrics_inc("csmcp_auth_cache_total", "result=\"miss\"", 1);
    if (source == NULL || source[0] == '\0')
        source = "unknown";
    bool good = good_hit(hash);
    int wait = good ? 0 : blocked_for(source);
    if (wait > 0) {
        limited_result(&r, wait);
        count(strncmp(t, "csk_", 4) == 0 ? "key" : "jwt", "limited");
        free(t);
        cb(&r, arg);
        return;
    }

    if (strncmp(t, "csk_", 4) == 0) {
        struct key_lookup *kl = calloc(1, sizeof(*kl));
        if (kl == NULL || !parse_api_key(t, kl->key_id, sizeof(kl->key_id))) {
            free(kl);
            fail_result(&r, 401, "invalid_token", "malformed API key");
            snprintf(r.claimed, sizeof r.claimed, "key:malformed");
            count("key", "malformed");
            free(t);
            cb(&r, arg);
            return;
        }
        if (!good && neg_id_hit(kl->key_id)) {
            fail_result(&r, 401, "invalid_token", "unknown API key");
            snprintf(r.claimed, sizeof r.claimed, "key:%s", kl->key_id);
            count("key", "unknown_cached");
            OPENSSL_cleanse(kl, sizeof(*kl));
            free(kl);
            free(t);
            cb(&r, arg);
            return;
        }
        for (struct key_lookup *p = A.pending; p; p = p->next) {
            if (!crypto_ct_equal(p->hash, hash, CRYPTO_SHA256_LEN))
                continue;
            struct key_waiter *w = calloc(1, sizeof(*w));
            if (w == NULL)
                break; /* fall through to a lookup of its own */
            w->cb = cb;
            w->arg = arg;
            *p->wtail = w;
            p->wtail = &w->next;
            OPENSSL_cleanse(kl, sizeof(*kl));
            free(kl);
            free(t);
            return;
        }
        int cap =
            A.cfg && A.cfg->auth_max_lookups_in_flight > 0 ? A.cfg->auth_max_lookups_in_flight : 64;
        if (A.inflight >= cap) {
            /* refused, not queued: a queue would only make every client wait */
            fail_result(&r, 503, "temporarily_unavailable", "too many key lookups; retry");
            snprintf(r.claimed, sizeof r.claimed, "key:%s", kl->key_id);
            r.retry_after = 1;
            OPENSSL_cleanse(kl, sizeof(*kl));
            free(kl);
            count("key", "overload");
            free(t);
            cb(&r, arg);
            return;
        }
        kl->cb = cb;
        kl->arg = arg;
        memcpy(kl->hash, hash, sizeof(hash));
        crypto_hex(hash, sizeof(hash), kl->token_hex);
        snprintf(kl->source, sizeof kl->source, "%s", source);
        free(t);
        A.inflight++;
        kl->wtail = &kl->waiters;
        kl->next = A.pending;
        A.pending = kl;
        if (good)
            start_lookup(kl);
        else
            ratelimit_check_source(
                source,
                A.cfg && A.cfg->auth_failed_per_minute > 0 ? A.cfg->auth_failed_per_minute : 60,
                source_checked, kl);
        return;
    }

    /* OAuth access token: a JWT (verified here, then introspected when that is on) or, with
     * introspection, an opaque token */
    struct jwt_job *j = calloc(1, sizeof *j);
    if (j == NULL) {
        free(t);
        fail_result(&r, 503, "temporarily_unavailable", "out of memory");
        cb(&r, arg);
        return;
    }
    j->cb = cb;
    j->arg = arg;
    j->token = t;
    memcpy(j->hash, hash, sizeof hash);
    snprintf(j->source, sizeof j->source, "%s", source);
    char kid[128], iss[1024];
    if (jwt_peek(t, kid, sizeof kid, iss, sizeof iss) < 0) {
        if (oidc_introspection_enabled()) {
            j->issuer = -1;
            j->opaque = true;
            oidc_introspect(-1, t, A.audience, jwt_introspected, j);
            return;
        }
        jwt_fail(j, 401, "invalid_token", "malformed token", "invalid");
        return;
    }
    j->issuer = oidc_find(iss);
    jwt_run(j);
}

bool auth_host_allowed(const char *host)
{
    if (host == NULL || A.cfg == NULL)
        return false;
    char h[256];
    snprintf(h, sizeof h, "%s", host);
    /* strip the port: "[::1]:8080" -> "[::1]", "a:1" -> "a" */
    char *end = h[0] == '[' ? strchr(h, ']') : NULL;
    char *colon = strrchr(end ? end : h, ':');
    if (colon)
        *colon = '\0';
    for (int i = 0; i < A.cfg->mcp_allowed_hosts.n; i++)
        if (strcasecmp(h, A.cfg->mcp_allowed_hosts.v[i]) == 0)
            return true;
    return false;
}

/* Host header -> a safe authority for URLs (letters, digits, . - : [ ]), else "localhost". */
static void safe_host(const char *host, char *out, size_t len)
{
    size_t n = host ? strlen(host) : 0;
    bool ok = n > 0 && n < len && n <= 255;
    for (size_t i = 0; ok && i < n; i++) {
        unsigned char c = (unsigned char)host[i];
        ok = isalnum(c) || c == '.' || c == '-' || c == ':' || c == '[' || c == ']';
    }
    snprintf(out, len, "%s", ok ? host : "localhost");
}

static void resource_url(const char *host, char *out, size_t len)
{
    char h[260];
    if (A.cfg && A.cfg->auth_resource_url[0]) {
        snprintf(out, len, "%s", A.cfg->auth_resource_url);
        return;
    }
    safe_host(host, h, sizeof(h));
    snprintf(out, len, "%s://%s/mcp", A.cfg && A.cfg->tls_enabled ? "https" : "http", h);
}

/* https://host/mcp -> https://host/.well-known/oauth-protected-resource/mcp (RFC 9728 3.1) */
static void metadata_url(const char *host, char *out, size_t len)
{
    char res[1100];
    const char *p, *path;
    resource_url(host, res, sizeof(res));
    p = strstr(res, "://");
    path = p ? strchr(p + 3, '/') : NULL;
    if (path == NULL)
        snprintf(out, len, "%s/.well-known/oauth-protected-resource", res);
    else
        snprintf(out, len, "%.*s/.well-known/oauth-protected-resource%s", (int)(path - res), res,
                 path);
}

int auth_www_authenticate(const struct auth_result *r, const char *host, const char *need_scope,
                          char *buf, size_t len)
{
    char url[1200], desc[200];
    size_t j = 0;
    int n;

    if (r->status == 429 || r->status == 503) {
        n = snprintf(buf, len, "Retry-After: %d\r\n", r->retry_after > 0 ? r->retry_after : 1);
        return n >= 0 && (size_t)n < len ? n : -1;
    }
    metadata_url(host, url, sizeof(url));
    /* quoted-string: drop quotes and backslashes from the description */
    for (size_t i = 0; r->description[i] && j < sizeof(desc) - 1; i++)
        if (r->description[i] != '"' && r->description[i] != '\\' &&
            (unsigned char)r->description[i] >= 0x20)
            desc[j++] = r->description[i];
    desc[j] = '\0';
    n = snprintf(buf, len, "WWW-Authenticate: Bearer resource_metadata=\"%s\"", url);
    if (r->error[0] && n >= 0 && (size_t)n < len)
        n += snprintf(buf + n, len - (size_t)n, ", error=\"%s\", error_description=\"%s\"",
                      r->error, desc);
    if (need_scope && n >= 0 && (size_t)n < len)
        n += snprintf(buf + n, len - (size_t)n, ", scope=\"%s\"", need_scope);
    if (n >= 0 && (size_t)n < len)
        n += snprintf(buf + n, len - (size_t)n, "\r\n");
    return n >= 0 && (size_t)n < len ? n : -1;
}

int auth_metadata_json(const char *host, char *buf, size_t len)
{
    char res[1100], servers[4200];
    const char *iss = A.cfg ? A.cfg->auth_jwt_issuer : "";
    size_t sp = 0;
    int n;

    resource_url(host, res, sizeof(res));
    /* values come from the config or the sanitised Host: no characters needing escapes except
     * possibly in the config values, which are escaped below by refusing quotes */
    if (strpbrk(res, "\"\\") || strpbrk(iss, "\"\\"))
        return -1;
    servers[0] = '\0';
    /* the discovered issuers (auth.issuer), then auth.jwt_issuer when it is another one */
    for (int i = 0; A.cfg && i <= A.cfg->auth_issuer.n; i++) {
        const char *u = i < A.cfg->auth_issuer.n ? A.cfg->auth_issuer.v[i] : iss;
        bool dup = false;
        for (int k = 0; i == A.cfg->auth_issuer.n && k < A.cfg->auth_issuer.n; k++)
            dup = dup || strcmp(A.cfg->auth_issuer.v[k], iss) == 0;
        if (u[0] == '\0' || dup || strpbrk(u, "\"\\"))
            continue;
        n = snprintf(servers + sp, sizeof servers - sp, "%s\"%s\"", sp ? "," : "", u);
        if (n < 0 || (size_t)n >= sizeof servers - sp)
            return -1;
        sp += (size_t)n;
    }
    n = snprintf(buf, len,
                 "{\"resource\":\"%s\",\"authorization_servers\":[%s],"
                 "\"scopes_supported\":[\"read\",\"write\",\"admin\"],"
                 "\"bearer_methods_supported\":[\"header\"],"
                 "\"resource_name\":\"csmcp\"}",
                 res, servers);
    return n >= 0 && (size_t)n < len ? n : -1;
}

static void metadata_handler(struct http_req *req, void *arg)
{
    char body[6000];
    int n;
    enum http_meth m = http_req_method(req);

    if (m != HTTP_M_GET && m != HTTP_M_HEAD) {
        http_respond(req, 405, "application/json", "Allow: GET, HEAD\r\n",
                     "{\"error\":\"method not allowed\"}", 30);
        return;
    }
    const char *host = http_req_header(req, "Host");
    if (!auth_host_allowed(host)) {
        /* never echo a Host that is not ours into a URL (issue 23, finding 6) */
        static const char forbidden[] = "{\"error\":\"Host not allowed\"}";
        http_respond(req, 403, "application/json", NULL, forbidden, sizeof forbidden - 1);
        return;
    }
    n = auth_metadata_json(host, body, sizeof(body));
    if (n < 0) {
        http_respond(req, 500, "application/json", NULL, "{\"error\":\"metadata\"}", 20);
        return;
    }
    /* One caching policy: the default Cache-Control: no-store (the document may be derived
     * from Host, so no shared cache may keep it). Public, credential-free data: any origin
     * may read it (browser-based MCP clients discover the authorization server here). */
    http_respond(req, 200, "application/json", "Access-Control-Allow-Origin: *\r\n", body,
                 (size_t)n);
}

/* An issuer dropped a key: answers cached for tokens it signed must not outlive it. */
static void keys_removed(void)
{
    memset(A.cache, 0, sizeof(A.cache));
}

int auth_init(struct event_base *base, const struct cfg *cfg, struct pgpool *pg)
{
    char err[512];

    scrub_install_log();
    A.cfg = cfg;
    A.pg = pg;
    memset(A.cache, 0, sizeof(A.cache));
    snprintf(A.audience, sizeof(A.audience), "%s",
             cfg->auth_jwt_audience[0] ? cfg->auth_jwt_audience : cfg->auth_resource_url);
    if (cfg->auth_jwks_file[0]) {
        if (A.audience[0] == '\0') {
            log_error("auth: auth.jwks_file is set but neither auth.jwt_audience nor "
                      "auth.resource_url: tokens could not be bound to this server");
            return -1;
        }
        if (jwt_keys_load(cfg->auth_jwks_file, &A.jwks, err, sizeof(err)) < 0) {
            log_error("auth: %s: %s", cfg->auth_jwks_file, err);
            return -1;
        }
        log_info("auth: %d JWT signing keys loaded from %s", jwt_keys_count(A.jwks),
                 cfg->auth_jwks_file);
    }
    if (cfg->auth_issuer.n > 0 || cfg->auth_introspection_client_id[0]) {
        char *secret = NULL, src[256];
        size_t slen = 0;
        if (cfg->auth_introspection_client_id[0]) {
            int rc =
                secret_load("CSMCP_INTROSPECTION_SECRET", cfg->auth_introspection_secret_file,
                            "auth.introspection", &secret, &slen, src, sizeof src, err, sizeof err);
            if (rc != 0) {
                log_error("auth: auth.introspection_client_id is set but the client secret %s",
                          rc > 0 ? "is not configured (auth.introspection_secret_file)" : err);
                return -1;
            }
            log_info("auth: token introspection on, client %s, secret from %s, answers reused "
                     "%d s",
                     cfg->auth_introspection_client_id, src, cfg->auth_introspection_cache_ttl);
        }
        int rc = oidc_init(base, cfg, secret, slen);
        secret_free(secret, slen);
        if (rc < 0)
            return -1;
        oidc_on_keys_removed(keys_removed);
        for (int i = 0; i < cfg->auth_issuer.n; i++)
            log_info("auth: trusted issuer %s (audience %s); keys fetched in the background",
                     cfg->auth_issuer.v[i], A.audience);
    }
    if (ratelimit_init(base, cfg) < 0 || audit_init(base, cfg, pg) < 0)
        return -1;
    if (!cfg->auth_required)
        log_warn("auth: auth.required = false: every /mcp caller is an anonymous admin");
    if (cfg->tls_enabled) {
        if (tls_ctx_create(cfg, &A.ssl, err, sizeof(err)) < 0) {
            log_error("tls: %s", err);
            return -1;
        }
        http_set_ssl_ctx(A.ssl);
    }
    if (http_route("/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource",
                   metadata_handler, NULL) < 0 ||
        http_route("/.well-known/oauth-protected-resource/mcp",
                   "/.well-known/oauth-protected-resource", metadata_handler, NULL) < 0)
        return -1;
    return 0;
}

void auth_shutdown(void)
{
    audit_shutdown();
    oidc_shutdown();
    jwt_keys_free(A.jwks);
    A.jwks = NULL;
    /* the SSL_CTX stays until exit: connections being closed may still reference it */
    memset(A.cache, 0, sizeof(A.cache));
}
