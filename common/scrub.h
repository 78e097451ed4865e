/*
 * scrub.h - masks secrets before anything is logged or audited.
 *
 * Two views of one rule set: scrub_text() for free text (log lines), scrub_json() for JSON
 * documents (tool arguments stored in the audit trail). Masked: values of sensitive keys
 * (password, passwd, passphrase, secret, token, api_key, authorization, credential, cookie,
 * private_key, access_key, client_secret and variants ending so) at any depth, and anywhere in
 * text: "Bearer <x>", JWT-shaped strings (eyJ...\.xxx\.xxx), csmcp API keys (csk_...), and
 * passwords in URLs (scheme://user:PASSWORD@host).
 */
#ifndef CSMCP_SCRUB_H
#define CSMCP_SCRUB_H

#include <stdbool.h>
#include <stddef.h>

#define SCRUB_MASK "[REDACTED]"

/* True for a key whose value is secret ("password", "X-Api-Key", "client_secret", ...). */
bool scrub_key_is_sensitive(const char *key, size_t len);
/* True if text contains a secret-shaped substring (bearer, JWT, csk_ key, URL password,
 * key=value with a sensitive key). */
bool scrub_text_has_secret(const char *text);

/* Rewrites msg (NUL-terminated, capacity cap) in place; signature of log_scrub_fn. */
void scrub_text(char *msg, size_t cap);

/*
 * Returns a compact JSON copy of json (len bytes, need not be NUL-terminated) with secrets
 * masked (caller frees). Nesting beyond 64 levels is replaced by "[TRUNCATED]". Input that is
 * not valid JSON for json_parse (strict UTF-8, at most 1000 levels) yields the JSON string
 * SCRUB_UNPARSEABLE. The output is always strict UTF-8 JSON without U+0000. NULL only when out
 * of memory.
 */
#define SCRUB_UNPARSEABLE "\"[UNPARSEABLE]\""
char *scrub_json(const char *json, size_t len);

/* Installs scrub_text as the log scrubber (log_set_scrubber). Call once per process. */
void scrub_install_log(void);

#endif
