/*
 * secret.c - secrets from environment, files and systemd credentials, with weak-key refusal.
 *
 * Invariants: a secret's bytes never reach a log line or an error message (only its source
 * and its defect); buffers that held a secret are wiped before free; files that are readable
 * by group or others are refused, because a secret that every local user can read is not one.
 */
#include "secret.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <yajl/yajl_tree.h>

#include "cfg.h"
#include "crypto.h"

void secret_free(char *s, size_t len)
{
    if (s == NULL)
        return;
    OPENSSL_cleanse(s, len);
    free(s);
}

static int read_file(const char *path, char **out, size_t *outlen, char *err, size_t errlen)
{
    struct stat st;
    char *buf = NULL;
    size_t n = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        snprintf(err, errlen, "open(%s): %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        goto fail;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        snprintf(err, errlen, "%s: mode %03o lets group/others read a secret; chmod 600 it", path,
                 (unsigned)(st.st_mode & 0777));
        goto fail;
    }
    buf = malloc(SECRET_MAX_LEN + 2);
    if (buf == NULL) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto fail;
    }
    for (;;) {
        ssize_t r = read(fd, buf + n, SECRET_MAX_LEN + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, errlen, "read(%s): %s", path, strerror(errno));
            goto fail;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > SECRET_MAX_LEN) {
            snprintf(err, errlen, "%s: longer than %d bytes", path, SECRET_MAX_LEN);
            goto fail;
        }
    }
    close(fd);
    if (n > 0 && buf[n - 1] == '\n')
        n--;
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    buf[n] = '\0';
    *out = buf;
    *outlen = n;
    return 0;
fail:
    if (buf)
        secret_free(buf, SECRET_MAX_LEN + 2);
    close(fd);
    return -1;
}

static int exists(const char *path)
{
    return access(path, F_OK) == 0;
}

int secret_load(const char *env, const char *file, const char *cred, char **out, size_t *outlen,
                char *source, size_t sourcelen, char *err, size_t errlen)
{
    const char *credir = getenv("CREDENTIALS_DIRECTORY");
    const char *v = env ? getenv(env) : NULL;
    char path[4200];
    int rc;

    *out = NULL;
    *outlen = 0;
    if (source && sourcelen)
        source[0] = '\0';
    if (v && *v) {
        size_t n = strlen(v);
        if (n > SECRET_MAX_LEN) {
            snprintf(err, errlen, "environment %s: longer than %d bytes", env, SECRET_MAX_LEN);
            return -1;
        }
        *out = strdup(v);
        if (*out == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        *outlen = n;
        if (source)
            snprintf(source, sourcelen, "environment %s", env);
        return 0;
    }
    if (file && *file) {
        if (file[0] != '/' && credir && *credir) {
            snprintf(path, sizeof(path), "%s/%s", credir, file);
            if (!exists(path))
                snprintf(path, sizeof(path), "%s", file);
        } else {
            snprintf(path, sizeof(path), "%s", file);
        }
        rc = read_file(path, out, outlen, err, errlen);
        if (rc < 0)
            return -1;
        if (source)
            snprintf(source, sourcelen, "file %s", path);
        goto check_empty;
    }
    if (cred && *cred && credir && *credir) {
        snprintf(path, sizeof(path), "%s/%s", credir, cred);
        if (exists(path)) {
            if (read_file(path, out, outlen, err, errlen) < 0)
                return -1;
            if (source)
                snprintf(source, sourcelen, "credential %s", cred);
            goto check_empty;
        }
    }
    return 1;
check_empty:
    if (*outlen == 0) {
        secret_free(*out, 1);
        *out = NULL;
        snprintf(err, errlen, "%s: empty", path);
        return -1;
    }
    return 0;
}

int secret_load_key(const char *what, const char *env, const char *file, const char *cred,
                    char **out, size_t *outlen, char *err, size_t errlen)
{
    char source[4300], why[256], e[512];
    int rc = secret_load(env, file, cred, out, outlen, source, sizeof(source), e, sizeof(e));

    if (rc < 0) {
        snprintf(err, errlen, "%s: %s", what, e);
        return -1;
    }
    if (rc > 0) {
        snprintf(err, errlen, "%s: not configured (set %s%s%s%s%s)", what, env ? env : "",
                 file || cred ? ", a file, or" : "", cred ? " systemd credential " : "",
                 cred ? cred : "", "");
        return -1;
    }
    if (!crypto_key_is_strong(*out, *outlen, CRYPTO_KEY_MIN_LEN, why, sizeof(why))) {
        snprintf(err, errlen, "%s from %s refused: %s", what, source, why);
        secret_free(*out, *outlen);
        *out = NULL;
        *outlen = 0;
        return -1;
    }
    return 0;
}

static int check_tls(const struct cfg *cfg, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    char e[256];
    int rc = -1;

    if (ctx == NULL) {
        snprintf(err, errlen, "tls: cannot create a context");
        return -1;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert_file) != 1) {
        ERR_error_string_n(ERR_get_error(), e, sizeof(e));
        snprintf(err, errlen, "tls.cert_file %s: %s", cfg->tls_cert_file, e);
    } else if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key_file, SSL_FILETYPE_PEM) != 1 ||
               SSL_CTX_check_private_key(ctx) != 1) {
        ERR_error_string_n(ERR_get_error(), e, sizeof(e));
        snprintf(err, errlen, "tls.key_file %s: %s (or it does not match tls.cert_file)",
                 cfg->tls_key_file, e);
    } else {
        rc = 0;
    }
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return rc;
}

static int check_jwks(const struct cfg *cfg, char *err, size_t errlen)
{
    FILE *f = fopen(cfg->auth_jwks_file, "re");
    char *buf, ebuf[128];
    size_t n;
    yajl_val root, keys;
    const char *path[] = {"keys", NULL};
    int rc = -1;

    if (cfg->auth_jwt_audience[0] == '\0' && cfg->auth_resource_url[0] == '\0') {
        snprintf(err, errlen,
                 "auth.jwks_file is set but neither auth.jwt_audience nor "
                 "auth.resource_url: JWTs could not be bound to this server");
        return -1;
    }
    if (f == NULL) {
        snprintf(err, errlen, "auth.jwks_file %s: %s", cfg->auth_jwks_file, strerror(errno));
        return -1;
    }
    buf = malloc(1 << 20);
    if (buf == NULL) {
        fclose(f);
        return -1;
    }
    n = fread(buf, 1, (1 << 20) - 1, f);
    fclose(f);
    buf[n] = '\0';
    root = yajl_tree_parse(buf, ebuf, sizeof(ebuf));
    free(buf);
    keys = root ? yajl_tree_get(root, path, yajl_t_array) : NULL;
    if (keys == NULL || keys->u.array.len == 0)
        snprintf(err, errlen, "auth.jwks_file %s: not a JWKS document with a \"keys\" array",
                 cfg->auth_jwks_file);
    else
        rc = 0;
    yajl_tree_free(root);
    return rc;
}

int secret_check_config(const struct cfg *cfg, char *err, size_t errlen)
{
    char *key = NULL;
    size_t keylen = 0;

    if (secret_load_key("session secret", "CSMCP_SESSION_SECRET", cfg->mcp_session_secret_file,
                        "session.key", &key, &keylen, err, errlen) < 0)
        return -1;
    secret_free(key, keylen);
    if (cfg->tls_enabled && check_tls(cfg, err, errlen) < 0)
        return -1;
    if (cfg->auth_jwks_file[0] && check_jwks(cfg, err, errlen) < 0)
        return -1;
    /* OAuth introspection (issue 22): the client secret must be loadable, as the workers will
     * load it; and a CA file for the authorization servers must be readable */
    if (cfg->auth_introspection_client_id[0]) {
        char *s = NULL, src[256], why[512];
        size_t slen = 0;
        int rc = secret_load("CSMCP_INTROSPECTION_SECRET", cfg->auth_introspection_secret_file,
                             "auth.introspection", &s, &slen, src, sizeof src, why, sizeof why);
        secret_free(s, slen);
        if (rc != 0) {
            snprintf(err, errlen, "auth.introspection_client_id is set but the client secret %s",
                     rc > 0 ? "is not configured (auth.introspection_secret_file, "
                              "CSMCP_INTROSPECTION_SECRET or credential auth.introspection)"
                            : why);
            return -1;
        }
    }
    if (cfg->auth_ca_file[0] && access(cfg->auth_ca_file, R_OK) != 0) {
        snprintf(err, errlen, "auth.ca_file %s: %s", cfg->auth_ca_file, strerror(errno));
        return -1;
    }
    return 0;
}
