/*
 * tls.c - builds the server SSL_CTX.
 *
 * Invariants: protocol floor is TLS 1.2 whatever the config says; only ECDHE + AEAD suites;
 * the private key must match the certificate (checked at start-up, so a bad rotation fails the
 * reload instead of serving handshake errors).
 */
#include "tls.h"

#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "cfg.h"

static void ssl_err(char *err, size_t errlen, const char *what, const char *file)
{
    char e[256];
    unsigned long code = ERR_get_error();
    ERR_error_string_n(code, e, sizeof(e));
    ERR_clear_error();
    snprintf(err, errlen, "%s(%s): %s", what, file ? file : "", code ? e : "failed");
}

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    static const unsigned char h11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    unsigned char *sel = NULL;
    (void)ssl;
    (void)arg;
    if (SSL_select_next_proto(&sel, outlen, h11, sizeof(h11), in, inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

int tls_ctx_create(const struct cfg *cfg, SSL_CTX **out, char *err, size_t errlen)
{
    SSL_CTX *ctx;
    int minv = TLS1_2_VERSION;

    *out = NULL;
    if (cfg->tls_cert_file[0] == '\0' || cfg->tls_key_file[0] == '\0') {
        snprintf(err, errlen, "tls.cert_file and tls.key_file are required");
        return -1;
    }
    if (cfg->tls_min_version && strcmp(cfg->tls_min_version, "1.3") == 0)
        minv = TLS1_3_VERSION;
    ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        ssl_err(err, errlen, "SSL_CTX_new", NULL);
        return -1;
    }
    if (!SSL_CTX_set_min_proto_version(ctx, minv)) {
        ssl_err(err, errlen, "set_min_proto_version", cfg->tls_min_version);
        goto fail;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_SESSION_RESUMPTION_ON_RENEGOTIATION);
    if (!SSL_CTX_set_cipher_list(ctx, TLS_CIPHERS_12)) {
        ssl_err(err, errlen, "set_cipher_list", NULL);
        goto fail;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert_file) != 1) {
        ssl_err(err, errlen, "certificate", cfg->tls_cert_file);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key_file, SSL_FILETYPE_PEM) != 1) {
        ssl_err(err, errlen, "private key", cfg->tls_key_file);
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ssl_err(err, errlen, "key does not match certificate", cfg->tls_key_file);
        goto fail;
    }
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    *out = ctx;
    return 0;
fail:
    SSL_CTX_free(ctx);
    return -1;
}

void tls_ctx_free(SSL_CTX *ctx)
{
    SSL_CTX_free(ctx);
}
