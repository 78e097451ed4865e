/*
 * ctl_keys.c - csmcpctl's security commands, run by an operator against PostgreSQL directly:
 *
 *   key create --name N --scopes read,write,admin [--expires-days D]   prints the token once
 *   key revoke ID | key list
 *   secret set NAME (value on stdin) | secret get NAME | secret list | secret delete NAME
 *   audit verify                                      exit 1 if tampered or a writer has a gap
 *
 * Invariants: an API key's secret exists only in this process's memory and on stdout, once;
 * the database gets SHA-256 of the whole token. Secret values never travel on the command line
 * (visible in ps): they are read from stdin. Stored secrets are sealed with AES-256-GCM under
 * the vault key (CSMCP_VAULT_KEY, secrets.vault_key_file or systemd credential "vault.key",
 * refused when weak), bound to their name as additional data. audit verify recomputes every
 * row's hash in C, independent of the SQL that wrote it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <openssl/crypto.h>

#include "cfg.h"
#include "crypto.h"
#include "ctl_ext.h"
#include "log.h"
#include "scrub.h"
#include "secret.h"

#define AUDIT_BATCH 5000

static PGconn *db_connect(const struct cfg *cfg)
{
    /* search_path=public: see ctl_db.c (role csmcp vs schema csmcp) */
    const char *kw[] = {"dbname", "password", "application_name", "options", NULL};
    const char *val[] = {cfg->database_url, NULL, "csmcpctl", "-c search_path=public", NULL};
    char *pw = NULL, err[512];
    size_t pwlen = 0;
    PGconn *c;

    int rc = secret_load(NULL, cfg->database_password_file, "database.password", &pw, &pwlen, NULL,
                         0, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "csmcpctl: database password: %s\n", err);
        return NULL;
    }
    val[1] = pw;
    c = PQconnectdbParams(kw, val, 1);
    secret_free(pw, pwlen);
    if (PQstatus(c) != CONNECTION_OK) {
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", PQerrorMessage(c));
        scrub_text(msg, sizeof(msg));
        fprintf(stderr, "csmcpctl: cannot connect to the database: %s", msg);
        PQfinish(c);
        return NULL;
    }
    return c;
}

/* Runs one parameterized statement; returns the result (caller clears) or NULL after
 * printing the error. */
static PGresult *q(PGconn *c, const char *sql, int n, const char *const *params)
{
    PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        fprintf(stderr, "csmcpctl: %s", PQresultErrorMessage(r));
        PQclear(r);
        return NULL;
    }
    return r;
}

static int normalise_scopes(const char *in, char *out, size_t len)
{
    bool have[3] = {false, false, false};
    static const char *names[] = {"read", "write", "admin"};
    const char *p = in;
    size_t pos = 0;

    while (*p) {
        size_t n = strcspn(p, ", ");
        int found = -1;
        for (int i = 0; i < 3; i++)
            if (n == strlen(names[i]) && strncmp(p, names[i], n) == 0)
                found = i;
        if (n > 0 && found < 0) {
            fprintf(stderr, "csmcpctl: unknown scope '%.*s' (read, write, admin)\n", (int)n, p);
            return -1;
        }
        if (found >= 0)
            have[found] = true;
        p += n;
        while (*p == ',' || *p == ' ')
            p++;
    }
    out[0] = '{';
    pos = 1;
    for (int i = 0; i < 3; i++)
        if (have[i])
            pos += (size_t)snprintf(out + pos, len - pos, "%s%s", pos > 1 ? "," : "", names[i]);
    snprintf(out + pos, len - pos, "}");
    return pos > 1 ? 0 : -1;
}

static int key_create(PGconn *c, int argc, char **argv)
{
    const char *name = NULL, *scopes = "read";
    int expires_days = 0;
    char arr[64], id[25], token[128], hash[CRYPTO_SHA256_HEX_LEN], secret_b64[64], days[16];
    uint8_t idb[6], sec[32];
    PGresult *r;

    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
            name = argv[++i];
        else if (strcmp(argv[i], "--scopes") == 0 && i + 1 < argc)
            scopes = argv[++i];
        else if (strcmp(argv[i], "--expires-days") == 0 && i + 1 < argc)
            expires_days = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: csmcpctl key create --name NAME [--scopes read,write,admin] "
                            "[--expires-days N]\n");
            return 2;
        }
    }
    if (name == NULL || *name == '\0') {
        fprintf(stderr, "csmcpctl key create: --name is required\n");
        return 2;
    }
    if (normalise_scopes(scopes, arr, sizeof(arr)) < 0)
        return 2;
    if (crypto_random(idb, sizeof(idb)) < 0 || crypto_random(sec, sizeof(sec)) < 0) {
        fprintf(stderr, "csmcpctl: no randomness available\n");
        return 1;
    }
    crypto_hex(idb, sizeof(idb), id);
    crypto_b64url_encode(sec, sizeof(sec), secret_b64, sizeof(secret_b64));
    snprintf(token, sizeof(token), "csk_%s_%s", id, secret_b64);
    crypto_sha256_hex(token, strlen(token), hash);
    snprintf(days, sizeof(days), "%d", expires_days);
    const char *params[] = {id, name, hash, arr, days};
    r = q(c,
          "INSERT INTO api_keys (key_id, name, token_hash, scopes, expires_at) VALUES ($1, $2, $3, "
          "$4::text[], CASE WHEN $5::int > 0 THEN now() + make_interval(days => $5::int) END)",
          5, params);
    OPENSSL_cleanse(sec, sizeof(sec));
    OPENSSL_cleanse(secret_b64, sizeof(secret_b64));
    if (r == NULL) {
        OPENSSL_cleanse(token, sizeof(token));
        return 1;
    }
    PQclear(r);
    fprintf(stderr, "API key %s created (scopes %s). The token is shown once; store it now.\n", id,
            arr);
    printf("%s\n", token);
    OPENSSL_cleanse(token, sizeof(token));
    return 0;
}

static int key_revoke(PGconn *c, const char *id)
{
    const char *params[] = {id};
    PGresult *r =
        q(c, "UPDATE api_keys SET revoked_at = now() WHERE key_id = $1 AND revoked_at IS NULL", 1,
          params);
    if (r == NULL)
        return 1;
    if (strcmp(PQcmdTuples(r), "1") != 0) {
        fprintf(stderr, "csmcpctl: no active key %s\n", id);
        PQclear(r);
        return 1;
    }
    PQclear(r);
    printf("revoked %s (effective on every worker within 10 s)\n", id);
    return 0;
}

static int key_list(PGconn *c)
{
    PGresult *r = q(c,
                    "SELECT key_id, name, array_to_string(scopes, ','), "
                    "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'), "
                    "CASE WHEN revoked_at IS NOT NULL THEN 'revoked' WHEN expires_at <= now() THEN "
                    "'expired' ELSE 'active' END FROM api_keys ORDER BY created_at, key_id",
                    0, NULL);
    if (r == NULL)
        return 1;
    printf("%-14s %-8s %-17s %-17s %s\n", "ID", "STATE", "SCOPES", "CREATED (UTC)", "NAME");
    for (int i = 0; i < PQntuples(r); i++)
        printf("%-14s %-8s %-17s %-17s %s\n", PQgetvalue(r, i, 0), PQgetvalue(r, i, 4),
               PQgetvalue(r, i, 2), PQgetvalue(r, i, 3), PQgetvalue(r, i, 1));
    PQclear(r);
    return 0;
}

static int vault_key(const struct cfg *cfg, char **key, size_t *len)
{
    char err[1024];
    if (secret_load_key("vault key", "CSMCP_VAULT_KEY", cfg->secrets_vault_key_file, "vault.key",
                        key, len, err, sizeof(err)) < 0) {
        fprintf(stderr, "csmcpctl: %s\n", err);
        return -1;
    }
    return 0;
}

static int read_stdin_value(char **out, size_t *outlen)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    if (buf == NULL)
        return -1;
    for (;;) {
        if (n + 1 >= cap) {
            if (cap >= 1024 * 1024) {
                fprintf(stderr, "csmcpctl: secret value larger than 1 MiB\n");
                secret_free(buf, cap);
                return -1;
            }
            char *nb = malloc(cap * 2);
            if (nb == NULL) {
                secret_free(buf, cap);
                return -1;
            }
            memcpy(nb, buf, n);
            secret_free(buf, cap);
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(0, buf + n, cap - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    if (n > 0 && buf[n - 1] == '\n')
        n--;
    buf[n] = '\0';
    if (n == 0) {
        fprintf(stderr, "csmcpctl: empty secret value on stdin\n");
        free(buf);
        return -1;
    }
    *out = buf;
    *outlen = n;
    return 0;
}

static int secret_cmd(const struct cfg *cfg, PGconn *c, int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : "";
    char *key = NULL, *val = NULL, *sealed = NULL;
    size_t keylen = 0, vallen = 0;
    int rc = 1;
    PGresult *r = NULL;

    if (strcmp(sub, "list") == 0) {
        r = q(c,
              "SELECT name, to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') FROM "
              "secrets ORDER BY name",
              0, NULL);
        if (r == NULL)
            return 1;
        for (int i = 0; i < PQntuples(r); i++)
            printf("%s\t%s\n", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
        PQclear(r);
        return 0;
    }
    if (argc != 3 || (strcmp(sub, "set") && strcmp(sub, "get") && strcmp(sub, "delete"))) {
        fprintf(stderr, "usage: csmcpctl secret set NAME (value on stdin) | get NAME | list | "
                        "delete NAME\n");
        return 2;
    }
    const char *name = argv[2];
    const char *p1[] = {name};
    if (strcmp(sub, "delete") == 0) {
        r = q(c, "DELETE FROM secrets WHERE name = $1", 1, p1);
        if (r == NULL)
            return 1;
        rc = strcmp(PQcmdTuples(r), "1") == 0 ? 0 : 1;
        if (rc)
            fprintf(stderr, "csmcpctl: no secret %s\n", name);
        else
            printf("deleted %s\n", name);
        PQclear(r);
        return rc;
    }
    if (vault_key(cfg, &key, &keylen) < 0)
        return 1;
    if (strcmp(sub, "set") == 0) {
        if (read_stdin_value(&val, &vallen) < 0)
            goto out;
        if (crypto_seal(key, name, val, vallen, CRYPTO_PBKDF2_ITER, &sealed) < 0) {
            fprintf(stderr, "csmcpctl: encryption failed\n");
            goto out;
        }
        const char *p2[] = {name, sealed};
        r = q(c,
              "INSERT INTO secrets (name, sealed) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE "
              "SET sealed = EXCLUDED.sealed, updated_at = now()",
              2, p2);
        if (r == NULL)
            goto out;
        printf("stored %s (AES-256-GCM, PBKDF2-SHA256 %d iterations)\n", name, CRYPTO_PBKDF2_ITER);
        rc = 0;
    } else {
        uint8_t *pt = NULL;
        size_t ptlen = 0;
        r = q(c, "SELECT sealed FROM secrets WHERE name = $1", 1, p1);
        if (r == NULL)
            goto out;
        if (PQntuples(r) != 1) {
            fprintf(stderr, "csmcpctl: no secret %s\n", name);
            goto out;
        }
        if (crypto_open(key, name, PQgetvalue(r, 0, 0), &pt, &ptlen) < 0) {
            fprintf(stderr, "csmcpctl: cannot decrypt %s: wrong vault key or tampered value\n",
                    name);
            goto out;
        }
        fwrite(pt, 1, ptlen, stdout);
        putchar('\n');
        secret_free((char *)pt, ptlen);
        rc = 0;
    }
out:
    if (r)
        PQclear(r);
    free(sealed);
    if (val)
        secret_free(val, vallen);
    secret_free(key, keylen);
    return rc;
}

static void canon_field(char **buf, size_t *len, size_t *cap, const char *v)
{
    size_t vl = strlen(v);
    char pre[24];
    int pl = snprintf(pre, sizeof(pre), "%zu:", vl);
    if (*buf == NULL || *len + (size_t)pl + vl + 1 > *cap) {
        size_t nc = (*len + (size_t)pl + vl + 1) * 2;
        char *nb = realloc(*buf, nc);
        if (nb == NULL)
            abort();
        *buf = nb;
        *cap = nc;
    }
    memcpy(*buf + *len, pre, (size_t)pl);
    *len += (size_t)pl;
    memcpy(*buf + *len, v, vl);
    *len += vl;
}

/* Recomputes the chain; returns 0 when intact, 1 when not (with the first defect printed). */
static int audit_verify(PGconn *c)
{
    char last_id[24] = "0", prev[CRYPTO_SHA256_HEX_LEN], hex[CRYPTO_SHA256_HEX_LEN];
    long long expect = 1, rows = 0;
    char *buf = NULL;
    size_t cap = 0;
    int rc = 1;
    PGresult *r;

    memset(prev, '0', 64);
    prev[64] = '\0';
    for (;;) {
        const char *params[] = {last_id};
        r = q(c,
              "SELECT id, (extract(epoch FROM created_at) * 1000000)::bigint, principal, method, "
              "coalesce(tool, ''), args::text, outcome, latency_ms, coalesce(detail, ''), "
              "prev_hash, hash, writer IS NOT NULL, coalesce(writer, ''), coalesce(seq::text, ''), "
              "CASE WHEN encoded THEN 't' ELSE 'f' END "
              "FROM audit_log WHERE id > $1::bigint ORDER BY id LIMIT 5000",
              1, params);
        if (r == NULL)
            goto out;
        int n = PQntuples(r);
        for (int i = 0; i < n; i++) {
            long long id = atoll(PQgetvalue(r, i, 0));
            size_t len = 0;
            if (id != expect) {
                printf("audit: BROKEN: row %lld missing (next row is %lld): a row was deleted\n",
                       expect, id);
                PQclear(r);
                goto out;
            }
            if (strcmp(PQgetvalue(r, i, 9), prev) != 0) {
                printf("audit: BROKEN at row %lld: prev_hash does not match row %lld's hash\n", id,
                       id - 1);
                PQclear(r);
                goto out;
            }
            for (int f = 0; f < 10; f++)
                canon_field(&buf, &len, &cap, PQgetvalue(r, i, f));
            /* 0120: rows with a writer also hash writer, seq and encoded */
            if (strcmp(PQgetvalue(r, i, 11), "t") == 0)
                for (int f = 12; f < 15; f++)
                    canon_field(&buf, &len, &cap, PQgetvalue(r, i, f));
            crypto_sha256_hex(buf, len, hex);
            if (strcmp(hex, PQgetvalue(r, i, 10)) != 0) {
                printf("audit: BROKEN at row %lld: content does not match its hash (edited)\n", id);
                PQclear(r);
                goto out;
            }
            memcpy(prev, hex, sizeof(prev));
            snprintf(last_id, sizeof(last_id), "%lld", id);
            expect = id + 1;
            rows++;
        }
        PQclear(r);
        if (n < AUDIT_BATCH)
            break;
    }
    r = q(c, "SELECT last_id, last_hash FROM audit_head WHERE one", 0, NULL);
    if (r == NULL)
        goto out;
    if (PQntuples(r) != 1 || strcmp(PQgetvalue(r, 0, 0), last_id) != 0 ||
        strcmp(PQgetvalue(r, 0, 1), prev) != 0) {
        printf("audit: BROKEN: the chain ends at row %s but the head records row %s: rows were "
               "deleted from the end\n",
               last_id, PQntuples(r) == 1 ? PQgetvalue(r, 0, 0) : "?");
        PQclear(r);
        goto out;
    }
    PQclear(r);
    /* Records that never reached the table: every writer numbers its records 1, 2, 3 ... */
    r = q(c,
          "SELECT writer, min(seq), max(seq), count(*), count(DISTINCT seq), "
          "count(*) FILTER (WHERE encoded) FROM audit_log WHERE writer IS NOT NULL "
          "GROUP BY writer ORDER BY writer",
          0, NULL);
    if (r == NULL)
        goto out;
    long long writers = 0, encoded = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        const char *w = PQgetvalue(r, i, 0);
        long long lo = atoll(PQgetvalue(r, i, 1)), hi = atoll(PQgetvalue(r, i, 2));
        long long n = atoll(PQgetvalue(r, i, 3)), nd = atoll(PQgetvalue(r, i, 4));
        if (lo != 1 || nd != hi || n != nd) {
            printf("audit: BROKEN: writer %s has %lld records numbered %lld..%lld (%lld distinct): "
                   "%s\n",
                   w, n, lo, hi, nd,
                   n != nd ? "a record was stored twice"
                           : "records were lost before they reached the table (a gap)");
            PQclear(r);
            goto out;
        }
        writers++;
        encoded += atoll(PQgetvalue(r, i, 5));
    }
    PQclear(r);
    printf("audit: OK, %lld rows verified, head %s; %lld writers without gaps, %lld records "
           "stored in safe (encoded) form\n",
           rows, prev, writers, encoded);
    rc = 0;
out:
    free(buf);
    return rc;
}

int ctl_keys_main(const struct cfg *cfg, int argc, char **argv)
{
    PGconn *c;
    int rc = 2;
    const char *cmd = argv[0], *sub = argc > 1 ? argv[1] : "";

    scrub_install_log();
    if (strcmp(cmd, "key") == 0 &&
        !(strcmp(sub, "create") == 0 || (strcmp(sub, "revoke") == 0 && argc == 3) ||
          (strcmp(sub, "list") == 0 && argc == 2))) {
        fprintf(stderr, "usage: csmcpctl key create --name N --scopes read,write,admin | key "
                        "revoke ID | key list\n");
        return 2;
    }
    if (strcmp(cmd, "audit") == 0 && !(strcmp(sub, "verify") == 0 && argc == 2)) {
        fprintf(stderr, "usage: csmcpctl audit verify\n");
        return 2;
    }
    c = db_connect(cfg);
    if (c == NULL)
        return 1;
    if (strcmp(cmd, "key") == 0) {
        if (strcmp(sub, "create") == 0)
            rc = key_create(c, argc - 2, argv + 2);
        else if (strcmp(sub, "revoke") == 0)
            rc = key_revoke(c, argv[2]);
        else
            rc = key_list(c);
    } else if (strcmp(cmd, "secret") == 0) {
        rc = secret_cmd(cfg, c, argc, argv);
    } else if (strcmp(cmd, "audit") == 0) {
        rc = audit_verify(c);
    }
    PQfinish(c);
    return rc;
}
