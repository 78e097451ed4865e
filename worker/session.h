/*
 * session.h - Mcp-Session-Id tokens: HMAC-SHA256-signed, carrying the immutable part of a
 * session (negotiated protocol version, creation time) so every worker and host that shares the
 * secret can verify one without shared state. Mutable state lives in Redis (worker/mcp.c).
 *
 * Token: "v1." base64url(payload[24]) "." base64url(hmac[0..16]); payload = version index (1),
 * creation unix time (8, big-endian), random (15). Only visible ASCII, 56 characters.
 */
#ifndef CSMCP_SESSION_H
#define CSMCP_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct cfg;

#define SESSION_ID_MAX  80
#define SESSION_KEY_MAX 64 /* "csmcp:s:" + 32 hex + NUL */

/*
 * MCP protocol revisions this server speaks. The value indexes session_versions and is stored
 * in every session token, so it never changes: a new revision takes the next free value, and
 * order between revisions comes from their dates (mcp_rev_since), never from the values.
 */
enum mcp_rev {
    MCP_REV_2025_11_25 = 0,
    MCP_REV_2025_06_18 = 1,
    MCP_REV_2025_03_26 = 2,
    MCP_REV_2024_11_05 = 3,
};
#define MCP_REV_LATEST MCP_REV_2025_11_25

/* The revision strings, indexed by enum mcp_rev. */
extern const char *const session_versions[];
extern const int session_nversions;
/* The enum mcp_rev value of version, or -1. */
int session_version_index(const char *version);

/* True when revision rev is `since` or newer (a feature arrives with a revision). */
static inline bool mcp_rev_since(enum mcp_rev rev, enum mcp_rev since)
{
    return strcmp(session_versions[rev], session_versions[since]) >= 0; /* ISO dates */
}

/* logging/setLevel levels, least severe first (RFC 5424 names); a session's threshold is an
 * index in this table. */
extern const char *const session_log_levels[];
#define SESSION_NLEVELS 8
/* Index of name in session_log_levels, or -1 (also for NULL). */
int session_level_index(const char *name);

/* Loads the HMAC secret (CSMCP_SESSION_SECRET or mcp.session_secret_file). */
int session_init(const struct cfg *cfg, char *err, size_t errlen);
void session_shutdown(void);
/* Mints a new id for revision rev into out. */
int session_mint(enum mcp_rev rev, char out[SESSION_ID_MAX]);
/* Verifies sid; on success stores the revision and creation time. */
bool session_verify(const char *sid, enum mcp_rev *rev, int64_t *created);
/* session_verify plus session_key and session_tag, through a per-worker cache of verified
 * tokens (validity is immutable; liveness is checked in Redis by the caller). */
bool session_lookup(const char *sid, enum mcp_rev *rev, int64_t *created, char key[SESSION_KEY_MAX],
                    char tag[17]);
/* Redis key of the session's mutable state: "csmcp:s:<hash>". */
void session_key(const char *sid, char out[SESSION_KEY_MAX]);
/* 16 hex characters naming the session in other keys and messages. */
void session_tag(const char *sid, char out[17]);
/* A key derived from the session secret for another purpose (HMAC-SHA256(secret, label)), so
 * every worker of every host that shares the secret derives the same key and no purpose can
 * forge another's tokens. 0 or -1. */
int session_derive_key(const char *label, uint8_t out[32]);
/* Test seam: sets the secret directly (copied). */
int session_set_secret(const void *key, size_t len);

#endif
