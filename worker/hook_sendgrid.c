/*
 * hook_sendgrid.c - POST /hooks/sendgrid: the SendGrid Event Webhook (a JSON array of events).
 *
 * Not behind the bearer token: instead every request must carry SendGrid's Signed Event Webhook
 * headers, verified against the public key of integrations.sendgrid_webhook_public_key_file (the
 * "Verification Key" SendGrid shows: base64 DER SubjectPublicKeyInfo of an ECDSA P-256 key, or
 * the same key in PEM):
 *   X-Twilio-Email-Event-Webhook-Timestamp  decimal Unix seconds
 *   X-Twilio-Email-Event-Webhook-Signature  base64 DER ECDSA-SHA256 signature of timestamp||body
 * Verified with OpenSSL EVP (EVP_DigestVerify*). Missing header, bad signature or a timestamp
 * more than integrations.sendgrid_webhook_max_age_s away from now (replay window): 401. Body over
 * 1 MiB: 413; not a JSON array: 400. Events are recorded through the worker's asynchronous
 * PostgreSQL pool by csmcp.comm_record_sendgrid_events (idempotent per sg_event_id, so a replay
 * inside the window records nothing twice); the answer is 200 with
 * {"recorded","duplicates","ignored"}.
 */
#include "hook_sendgrid.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "cfg.h"
#include "log.h"
#include "http.h"
#include "pgpool.h"

#define HOOK_MAX_BODY (1024 * 1024)
#define HOOK_MAX_SIG  512 /* base64 of a DER P-256 signature is at most 96 characters */

static struct {
    struct pgpool *pg;
    EVP_PKEY *key;
    long max_age;
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

/* Standard base64 (with padding, no whitespace) into out; returns the decoded length or -1. */
static int b64_decode(const char *in, size_t len, unsigned char *out, size_t cap)
{
    if (len == 0 || len % 4 != 0 || len / 4 * 3 > cap)
        return -1;
    for (size_t i = 0; i < len; i++)
        if (!(isalnum((unsigned char)in[i]) || in[i] == '+' || in[i] == '/' ||
              (in[i] == '=' && i >= len - 2)))
            return -1;
    int n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)len);
    if (n < 0)
        return -1;
    if (in[len - 1] == '=')
        n--;
    if (in[len - 2] == '=')
        n--;
    return n;
}

/* 1 when sig (base64 DER) is a valid signature of ts || body, 0 when not. */
static int verify(const char *ts, const char *sig, const char *body, size_t len)
{
    unsigned char der[HOOK_MAX_SIG];
    int dlen = b64_decode(sig, strlen(sig), der, sizeof der);
    if (dlen <= 0)
        return 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, S.key) == 1 &&
             EVP_DigestVerifyUpdate(ctx, ts, strlen(ts)) == 1 &&
             (len == 0 || EVP_DigestVerifyUpdate(ctx, body, len) == 1) &&
             EVP_DigestVerifyFinal(ctx, der, (size_t)dlen) == 1;
    EVP_MD_CTX_free(ctx);
    return ok;
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
    const char *sig = http_req_header(r, "X-Twilio-Email-Event-Webhook-Signature");
    const char *ts = http_req_header(r, "X-Twilio-Email-Event-Webhook-Timestamp");
    if (sig == NULL || ts == NULL || sig[0] == '\0' || ts[0] == '\0') {
        reply(r, 401, "signature and timestamp headers required");
        return;
    }
    char *end = NULL;
    long long t = strtoll(ts, &end, 10);
    size_t tslen = strlen(ts);
    if (tslen > 12 || *end != '\0' || !isdigit((unsigned char)ts[0])) {
        reply(r, 401, "timestamp must be decimal Unix seconds");
        return;
    }
    long long skew = (long long)time(NULL) - t;
    if (skew > S.max_age || skew < -S.max_age) {
        reply(r, 401, "timestamp outside the replay window");
        return;
    }
    if (strlen(sig) >= HOOK_MAX_SIG || !verify(ts, sig, body ? body : "", len)) {
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

/* The key as SendGrid shows it (base64 DER SubjectPublicKeyInfo) or PEM; must be EC P-256. */
static EVP_PKEY *load_key(const char *text, size_t len, char *err, size_t errlen)
{
    EVP_PKEY *k = NULL;
    if (strstr(text, "-----BEGIN PUBLIC KEY-----") != NULL) {
        BIO *b = BIO_new_mem_buf(text, (int)len);
        if (b)
            k = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
        BIO_free(b);
    } else {
        unsigned char der[1024];
        size_t n = len;
        while (n > 0 && isspace((unsigned char)text[n - 1]))
            n--;
        int dlen = b64_decode(text, n, der, sizeof der);
        const unsigned char *p = der;
        if (dlen > 0)
            k = d2i_PUBKEY(NULL, &p, dlen);
    }
    if (k == NULL) {
        snprintf(err, errlen, "not a public key (base64 DER or PEM)");
        return NULL;
    }
    char group[64] = "";
    size_t glen = 0;
    if (!EVP_PKEY_is_a(k, "EC") ||
        EVP_PKEY_get_utf8_string_param(k, "group", group, sizeof group, &glen) != 1 ||
        strcmp(group, "prime256v1") != 0) {
        snprintf(err, errlen, "not an ECDSA P-256 key (SendGrid signs with P-256)");
        EVP_PKEY_free(k);
        return NULL;
    }
    return k;
}

int hook_sendgrid_init(const struct cfg *cfg, struct pgpool *pg)
{
    const char *file = cfg->integrations_sendgrid_webhook_public_key_file;
    if (file == NULL || file[0] == '\0')
        return 0;
    /* A public key, not a secret: read as is (no 0600 requirement). */
    char err[256], text[8192];
    FILE *f = fopen(file, "r");
    if (f == NULL) {
        log_error("hooks/sendgrid: %s: cannot open: %s", file, strerror(errno));
        return -1;
    }
    size_t len = fread(text, 1, sizeof text - 1, f);
    bool whole = feof(f) && !ferror(f);
    fclose(f);
    if (!whole) {
        log_error("hooks/sendgrid: %s: unreadable or larger than %zu bytes", file, sizeof text - 1);
        return -1;
    }
    text[len] = '\0';
    S.key = load_key(text, len, err, sizeof err);
    if (S.key == NULL) {
        log_error("hooks/sendgrid: %s: %s", file, err);
        return -1;
    }
    S.pg = pg;
    S.max_age = cfg->integrations_sendgrid_webhook_max_age_s;
    return http_route("/hooks/sendgrid", "/hooks/sendgrid", handler, NULL);
}

void hook_sendgrid_free(void)
{
    EVP_PKEY_free(S.key);
    S.key = NULL;
}
