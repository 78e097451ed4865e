/*
 * session.c - signing and verification of Mcp-Session-Id tokens.
 *
 * Invariants: the secret is loaded once at start and never logged; verification is constant
 * time in the MAC comparison; a token that fails any check is simply "unknown" (the caller
 * answers 404), whatever is wrong with it.
 */
#include "session.h"

#include "cfg.h"
#include "crypto.h"
#include "secret.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *const session_versions[] = {[MCP_REV_2025_11_25] = "2025-11-25",
                                        [MCP_REV_2025_06_18] = "2025-06-18",
                                        [MCP_REV_2025_03_26] = "2025-03-26",
                                        [MCP_REV_2024_11_05] = "2024-11-05"};
const int session_nversions = 4;

const char *const session_log_levels[SESSION_NLEVELS] = {
    "debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"};

int session_level_index(const char *name)
{
    if (name == NULL)
        return -1;
    for (int i = 0; i < SESSION_NLEVELS; i++)
        if (strcmp(name, session_log_levels[i]) == 0)
            return i;
    return -1;
}

static uint8_t secret_key[256];
static size_t secret_len;

/*
 * Verified-token cache: a token's validity, revision, Redis key and tag never change, so a
 * worker remembers the last tokens it verified and skips the HMAC and two SHA-256 per request.
 * Liveness is not cached (that is the Redis check), so DELETE still takes effect at once.
 */
#define VCACHE_SIZE 1024 /* power of two */

struct vcache_ent {
    char sid[SESSION_ID_MAX];
    enum mcp_rev rev;
    int64_t created;
    char key[SESSION_KEY_MAX];
    char tag[17];
};

static struct vcache_ent *vcache;

int session_version_index(const char *v)
{
    if (v == NULL)
        return -1;
    for (int i = 0; i < session_nversions; i++)
        if (strcmp(v, session_versions[i]) == 0)
            return i;
    return -1;
}

int session_set_secret(const void *key, size_t len)
{
    if (len == 0 || len > sizeof secret_key)
        return -1;
    if (vcache) /* tokens verified under another secret */
        memset(vcache, 0, sizeof *vcache * VCACHE_SIZE);
    memcpy(secret_key, key, len);
    secret_len = len;
    return 0;
}

int session_derive_key(const char *label, uint8_t out[32])
{
    if (secret_len == 0)
        return -1;
    return crypto_hmac_sha256(secret_key, secret_len, label, strlen(label), out);
}

int session_init(const struct cfg *cfg, char *err, size_t errlen)
{
    char *s = NULL;
    size_t n = 0;
    if (secret_load_key("session secret", "CSMCP_SESSION_SECRET", cfg->mcp_session_secret_file,
                        "session.key", &s, &n, err, errlen) != 0)
        return -1;
    /* Long secrets are hashed down; HMAC would do the same for keys over its block size. */
    int rc;
    if (n > sizeof secret_key) {
        uint8_t h[CRYPTO_SHA256_LEN];
        crypto_sha256(s, n, h);
        rc = session_set_secret(h, sizeof h);
    } else {
        rc = session_set_secret(s, n);
    }
    secret_free(s, n);
    return rc;
}

void session_shutdown(void)
{
    free(vcache);
    vcache = NULL;
    memset(secret_key, 0, sizeof secret_key);
    secret_len = 0;
}

int session_mint(enum mcp_rev rev, char out[SESSION_ID_MAX])
{
    uint8_t payload[24], mac[CRYPTO_SHA256_LEN];
    uint64_t now = (uint64_t)time(NULL);
    payload[0] = (uint8_t)rev;
    for (int i = 0; i < 8; i++)
        payload[1 + i] = (uint8_t)(now >> (56 - 8 * i));
    if (crypto_random(payload + 9, 15) < 0)
        return -1;
    if (crypto_hmac_sha256(secret_key, secret_len, payload, sizeof payload, mac) < 0)
        return -1;
    char p64[33], m64[25];
    if (crypto_b64url_encode(payload, sizeof payload, p64, sizeof p64) < 0 ||
        crypto_b64url_encode(mac, 16, m64, sizeof m64) < 0)
        return -1;
    snprintf(out, SESSION_ID_MAX, "v1.%s.%s", p64, m64);
    return 0;
}

bool session_verify(const char *sid, enum mcp_rev *rev, int64_t *created)
{
    if (sid == NULL || strncmp(sid, "v1.", 3) != 0 || strlen(sid) >= SESSION_ID_MAX)
        return false;
    const char *p = sid + 3;
    const char *dot = strchr(p, '.');
    if (dot == NULL)
        return false;
    uint8_t payload[32], mac[32], want[CRYPTO_SHA256_LEN];
    int pl = crypto_b64url_decode(p, (size_t)(dot - p), payload, sizeof payload);
    int ml = crypto_b64url_decode(dot + 1, strlen(dot + 1), mac, sizeof mac);
    if (pl != 24 || ml != 16)
        return false;
    if (crypto_hmac_sha256(secret_key, secret_len, payload, 24, want) < 0)
        return false;
    if (!crypto_ct_equal(mac, want, 16))
        return false;
    if (payload[0] >= session_nversions)
        return false;
    uint64_t t = 0;
    for (int i = 0; i < 8; i++)
        t = (t << 8) | payload[1 + i];
    *rev = (enum mcp_rev)payload[0];
    *created = (int64_t)t;
    return true;
}

bool session_lookup(const char *sid, enum mcp_rev *rev, int64_t *created, char key[SESSION_KEY_MAX],
                    char tag[17])
{
    if (sid == NULL || strlen(sid) >= SESSION_ID_MAX)
        return false;
    uint32_t h = 2166136261u;
    for (const char *p = sid; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    if (vcache == NULL)
        vcache = calloc(VCACHE_SIZE, sizeof *vcache);
    struct vcache_ent *e = vcache ? &vcache[h & (VCACHE_SIZE - 1)] : NULL;
    if (e && e->sid[0] && strcmp(e->sid, sid) == 0) {
        *rev = e->rev;
        *created = e->created;
        memcpy(key, e->key, SESSION_KEY_MAX);
        memcpy(tag, e->tag, 17);
        return true;
    }
    if (!session_verify(sid, rev, created))
        return false;
    session_key(sid, key);
    session_tag(sid, tag);
    if (e) {
        snprintf(e->sid, sizeof e->sid, "%s", sid);
        e->rev = *rev;
        e->created = *created;
        memcpy(e->key, key, SESSION_KEY_MAX);
        memcpy(e->tag, tag, 17);
    }
    return true;
}

void session_tag(const char *sid, char out[17])
{
    uint8_t h[CRYPTO_SHA256_LEN];
    crypto_sha256(sid, strlen(sid), h);
    crypto_hex(h, 8, out);
}

void session_key(const char *sid, char out[SESSION_KEY_MAX])
{
    uint8_t h[CRYPTO_SHA256_LEN];
    char hex[33];
    crypto_sha256(sid, strlen(sid), h);
    crypto_hex(h, 16, hex);
    snprintf(out, SESSION_KEY_MAX, "csmcp:s:%s", hex);
}
