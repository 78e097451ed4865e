/*
 * secret.h - start-up loading of secrets (session HMAC key, vault key, database and Redis
 * passwords) from the environment, a file, or systemd credentials ($CREDENTIALS_DIRECTORY),
 * never from the repository or the config file itself; and refusal of weak keys.
 *
 * Lookup order for secret_load(): the environment variable env (if set and non-empty), then
 * file (a relative name is looked up in $CREDENTIALS_DIRECTORY first, then as given), then
 * $CREDENTIALS_DIRECTORY/<cred> (if cred is not NULL). One trailing newline is stripped.
 */
#ifndef CSMCP_SECRET_H
#define CSMCP_SECRET_H

#include <stddef.h>

struct cfg;

#define SECRET_MAX_LEN 4096

/*
 * Returns 0 and *out (caller frees with secret_free) with *outlen, 1 when no source is
 * configured or present, -1 on an error (unreadable file, too long, empty, group/world-readable
 * file) with a message in err. source (may be NULL) receives "environment X", "file F" or
 * "credential C" for messages; it never receives the secret.
 */
int secret_load(const char *env, const char *file, const char *cred, char **out, size_t *outlen,
                char *source, size_t sourcelen, char *err, size_t errlen);

/*
 * As secret_load, and the secret must pass crypto_key_is_strong (CRYPTO_KEY_MIN_LEN bytes,
 * entropy). A missing key is an error here too. what names the key in messages
 * ("session secret").
 */
int secret_load_key(const char *what, const char *env, const char *file, const char *cred,
                    char **out, size_t *outlen, char *err, size_t errlen);

/*
 * Start-up / reload check of everything secret-related in cfg, for `csmcpd -t` and for the
 * supervisor before it spawns a new generation (so a bad key or certificate fails the reload
 * with a clear message instead of a worker crash loop): the session key (CSMCP_SESSION_SECRET,
 * mcp.session_secret_file or credential "session.key") exists and is strong; with tls.enabled
 * the certificate chain and key load and match; with auth.jwks_file the file is a JWKS with at
 * least one key and an audience is configured (auth.jwt_audience or auth.resource_url); with
 * auth.introspection_client_id the introspection client secret loads; auth.ca_file is readable.
 * Returns 0, or -1 with the first problem in err (never quoting a secret).
 */
int secret_check_config(const struct cfg *cfg, char *err, size_t errlen);

/* Wipes and frees a secret from secret_load. NULL is fine. */
void secret_free(char *s, size_t len);

#endif
