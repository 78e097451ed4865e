/*
 * hook_sendgrid.c - POST /hooks/sendgrid: the SendGrid Event Webhook (a JSON array of events).
 *
 * Not behind the bearer token: instead every request must carry X-Csmcp-Signature, the lower-case
 * hex HMAC-SHA256 of the raw body keyed with the secret of
 * integrations.sendgrid_webhook_secret_file (a scheme of ours; see
 * docs/operations/integrations.md). Bad or missing signature: 401. Body over 1 MiB: 413; not a JSON
 * array: 400. Events are recorded through the worker's asynchronous PostgreSQL pool by
 * csmcp.comm_record_sendgrid_events (idempotent per sg_event_id); the answer is 200 with
 * {"recorded","duplicates","ignored"}.
 */
#include "hook_sendgrid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "cfg.h"
#include "log.h"
#include "secret.h"
#include "http.h"
#include "pgpool.h"

#define HOOK_MAX_BODY (1024 * 1024)

static struct {
    struct pgpool *pg;
    char *secret;
    size_t secret_len;
} S;

static void reply(struct http_req *r, int status, const char *msg)
{
    char body[160];
    int n = snprintf(body, sizeof body, "{\"error\":\"%s\"}", msg);
    http_respond(r, status, "application/json", NULL, body, (size_t)n);
}

static void done_cb(const PGresult *res, const char *err, const char *sqlstate, bool retryable,
                    void *arg)
{
    struct http_req *r = arg;
    (void)retryable;
    if (res == NULL) {
        bool bad = sqlstate && (strncmp(sqlstate, "22", 2) == 0 || strncmp(sqlstate, "P0", 2) == 0);
        log_warn("hooks/sendgrid: %s (%s)", err ? err : "database error",
                 sqlstate ? sqlstate : "-");
        reply(r, bad ? 400 : 503, bad ? "invalid event batch" : "temporarily unavailable");
        return;
    }
    const char *v = PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "{}";
    http_respond(r, 200, "application/json", NULL, v, strlen(v));
}

static void handler(struct http_req *r, void *arg)
{
    (void)arg;
    if (http_req_method(r) != HTTP_M_POST) {
        http_respond(r, 405, "application/json", "Allow: POST\r\n",
                     "{\"error\":\"method not allowed\"}",
                     sizeof "{\"error\":\"method not allowed\"}" - 1);
        return;
    }
    size_t len = 0;
    const char *body = http_req_body(r, &len);
    if (len > HOOK_MAX_BODY) {
        reply(r, 413, "body too large");
        return;
    }
    const char *sig = http_req_header(r, "X-Csmcp-Signature");
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    if (sig == NULL || HMAC(EVP_sha256(), S.secret, (int)S.secret_len,
                            (const unsigned char *)(body ? body : ""), len, mac, &maclen) == NULL) {
        reply(r, 401, "signature required");
        return;
    }
    for (unsigned int i = 0; i < maclen; i++)
        snprintf(hex + 2 * i, 3, "%02x", mac[i]);
    if (strlen(sig) != 2 * (size_t)maclen || CRYPTO_memcmp(sig, hex, 2 * (size_t)maclen) != 0) {
        reply(r, 401, "bad signature");
        return;
    }
    if (len == 0 || body[0] != '[') {
        reply(r, 400, "body must be a JSON array of events");
        return;
    }
    char *copy = strndup(body, len);
    if (copy == NULL) {
        reply(r, 503, "temporarily unavailable");
        return;
    }
    const char *params[1] = {copy};
    int rc = pgpool_query(S.pg, "SELECT csmcp.comm_record_sendgrid_events($1::jsonb)", 1, params,
                          done_cb, r);
    free(copy);
    if (rc < 0)
        reply(r, 503, "temporarily unavailable");
}

int hook_sendgrid_init(const struct cfg *cfg, struct pgpool *pg)
{
    const char *file = cfg->integrations_sendgrid_webhook_secret_file;
    if (file == NULL || file[0] == '\0')
        return 0;
    char err[256];
    if (secret_load(NULL, file, NULL, &S.secret, &S.secret_len, NULL, 0, err, sizeof err) != 0) {
        log_error("hooks/sendgrid: %s", err);
        return -1;
    }
    S.pg = pg;
    return http_route("/hooks/sendgrid", "/hooks/sendgrid", handler, NULL);
}
