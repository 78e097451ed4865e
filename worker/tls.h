/*
 * tls.h - the server's TLS context (OpenSSL 3): certificate chain and key from tls.cert_file /
 * tls.key_file, TLS 1.2+ (tls.min_version), forward-secret AEAD cipher suites only, no
 * compression, no renegotiation, ALPN http/1.1. The HTTP layer wraps accepted sockets with
 * bufferevent_openssl using it (http_set_ssl_ctx). A reload starts new workers, which read the
 * certificate files again: that is how certificates are rotated.
 */
#ifndef CSMCP_TLS_H
#define CSMCP_TLS_H

#include <stddef.h>

struct cfg;
typedef struct ssl_ctx_st SSL_CTX;

/* TLS 1.2 suites (TLS 1.3 suites are OpenSSL's defaults, all AEAD). */
#define TLS_CIPHERS_12                                                                             \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"     \
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

/* Caller owns *out (tls_ctx_free). -1 with a reason (file, key mismatch, version) in err. */
int tls_ctx_create(const struct cfg *cfg, SSL_CTX **out, char *err, size_t errlen);
void tls_ctx_free(SSL_CTX *ctx);

#endif
