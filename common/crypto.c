/*
 * crypto.c - hashing, MACs, randomness, codecs, secret sealing and key-strength checks on
 * OpenSSL 3.
 *
 * Invariants: every key-derived buffer is wiped (OPENSSL_cleanse) before it is freed or goes
 * out of scope; comparison of secrets is constant-time; nothing here logs.
 * Sealed format "v1$iter$salt$nonce$ct||tag": the iteration count travels with the secret so
 * a later increase of CRYPTO_PBKDF2_ITER still opens older secrets.
 */
#include "crypto.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/rand.h>

/*
 * OpenSSL 3 resolves an algorithm on every implicit use (EVP_sha256(), one-shot HMAC()): a
 * lock and a hash-table lookup per call, measured at 10 % of a worker's CPU. The algorithms
 * are fetched once per process instead, and the HMAC context keyed with the last key is kept
 * and duplicated per use (the session key is the same for every request). Processes here are
 * single-threaded, so the caches need no locking.
 */
static EVP_MD *md_sha256;
static EVP_MAC *mac_hmac;
static EVP_MAC_CTX *hmac_keyed;
static uint8_t hmac_key[128];
static size_t hmac_keylen;

static const EVP_MD *sha256_md(void)
{
    if (md_sha256 == NULL)
        md_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    return md_sha256;
}

int crypto_sha256(const void *data, size_t len, uint8_t out[CRYPTO_SHA256_LEN])
{
    unsigned int n = 0;
    const EVP_MD *md = sha256_md();
    if (md == NULL || EVP_Digest(data, len, out, &n, md, NULL) != 1 || n != CRYPTO_SHA256_LEN)
        return -1;
    return 0;
}

int crypto_sha256_hex(const void *data, size_t len, char out[CRYPTO_SHA256_HEX_LEN])
{
    uint8_t d[CRYPTO_SHA256_LEN];
    if (crypto_sha256(data, len, d) < 0)
        return -1;
    crypto_hex(d, sizeof(d), out);
    return 0;
}

/* A context keyed with key (cached for the last key up to 128 bytes), or NULL. */
static EVP_MAC_CTX *hmac_ctx_for(const void *key, size_t keylen)
{
    OSSL_PARAM params[2];
    EVP_MAC_CTX *ctx;

    if (hmac_keyed && keylen == hmac_keylen && CRYPTO_memcmp(key, hmac_key, keylen) == 0)
        return EVP_MAC_CTX_dup(hmac_keyed);
    if (mac_hmac == NULL && (mac_hmac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL)
        return NULL;
    ctx = EVP_MAC_CTX_new(mac_hmac);
    if (ctx == NULL)
        return NULL;
    params[0] = OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    if (EVP_MAC_init(ctx, key, keylen, params) != 1) {
        EVP_MAC_CTX_free(ctx);
        return NULL;
    }
    if (keylen <= sizeof(hmac_key)) {
        EVP_MAC_CTX *keep = EVP_MAC_CTX_dup(ctx);
        if (keep) {
            EVP_MAC_CTX_free(hmac_keyed);
            OPENSSL_cleanse(hmac_key, sizeof(hmac_key));
            hmac_keyed = keep;
            memcpy(hmac_key, key, keylen);
            hmac_keylen = keylen;
        }
    }
    return ctx;
}

int crypto_hmac_sha256(const void *key, size_t keylen, const void *data, size_t len,
                       uint8_t out[CRYPTO_SHA256_LEN])
{
    size_t n = 0;
    int rc = -1;
    EVP_MAC_CTX *ctx = hmac_ctx_for(key, keylen);

    if (ctx == NULL)
        return -1;
    if (EVP_MAC_update(ctx, data, len) == 1 &&
        EVP_MAC_final(ctx, out, &n, CRYPTO_SHA256_LEN) == 1 && n == CRYPTO_SHA256_LEN)
        rc = 0;
    EVP_MAC_CTX_free(ctx);
    return rc;
}

bool crypto_ct_equal(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}

bool crypto_ct_streq(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    /* Compare against itself when lengths differ so the time still depends only on la. */
    bool same = CRYPTO_memcmp(a, la == lb ? b : a, la) == 0;
    return same && la == lb;
}

int crypto_random(void *buf, size_t n)
{
    if (n > (size_t)INT32_MAX)
        return -1;
    return RAND_bytes(buf, (int)n) == 1 ? 0 : -1;
}

void crypto_hex(const void *in, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    const uint8_t *p = in;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[p[i] >> 4];
        out[2 * i + 1] = hx[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static const char b64u[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int crypto_b64url_encode(const void *in, size_t n, char *out, size_t outlen)
{
    const uint8_t *p = in;
    size_t o = 0, i = 0;

    if (outlen < (n + 2) / 3 * 4 + 1)
        return -1;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = b64u[v >> 18];
        out[o++] = b64u[(v >> 12) & 63];
        out[o++] = b64u[(v >> 6) & 63];
        out[o++] = b64u[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        out[o++] = b64u[v >> 18];
        out[o++] = b64u[(v >> 12) & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        out[o++] = b64u[v >> 18];
        out[o++] = b64u[(v >> 12) & 63];
        out[o++] = b64u[(v >> 6) & 63];
    }
    out[o] = '\0';
    return (int)o;
}

static int b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-' || c == '+')
        return 62;
    if (c == '_' || c == '/')
        return 63;
    return -1;
}

int crypto_b64url_decode(const char *in, size_t n, uint8_t *out, size_t outlen)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;

    while (n > 0 && in[n - 1] == '=')
        n--;
    if (n % 4 == 1)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int v = b64val((unsigned char)in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= outlen)
                return -1;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    /* Leftover bits must be zero (canonical encoding). */
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
        return -1;
    if (o > (size_t)INT32_MAX)
        return -1;
    return (int)o;
}

static int derive_key(const char *passphrase, const uint8_t *salt, size_t saltlen, int iter,
                      uint8_t key[32])
{
    if (sha256_md() == NULL || PKCS5_PBKDF2_HMAC(passphrase, (int)strlen(passphrase), salt,
                                                 (int)saltlen, iter, sha256_md(), 32, key) != 1)
        return -1;
    return 0;
}

int crypto_seal(const char *passphrase, const char *aad, const void *plaintext, size_t len,
                int iter, char **out)
{
    uint8_t salt[CRYPTO_SEAL_SALT_LEN], nonce[CRYPTO_SEAL_NONCE_LEN], key[32];
    uint8_t *ct = NULL;
    char *txt = NULL, *ctb = NULL;
    char saltb[32], nonceb[32];
    EVP_CIPHER_CTX *ctx = NULL;
    int n = 0, fin = 0;
    size_t txtlen, ctblen;

    *out = NULL;
    if (iter < 1000 || len > 16 * 1024 * 1024)
        return -1;
    if (crypto_random(salt, sizeof(salt)) < 0 || crypto_random(nonce, sizeof(nonce)) < 0)
        return -1;
    if (derive_key(passphrase, salt, sizeof(salt), iter, key) < 0)
        goto fail;
    ct = malloc(len + CRYPTO_SEAL_TAG_LEN + 1);
    ctx = EVP_CIPHER_CTX_new();
    if (ct == NULL || ctx == NULL)
        goto fail;
    if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, sizeof(nonce), NULL) != 1 ||
        EVP_EncryptInit_ex(ctx, NULL, NULL, key, nonce) != 1)
        goto fail;
    if (aad && EVP_EncryptUpdate(ctx, NULL, &n, (const uint8_t *)aad, (int)strlen(aad)) != 1)
        goto fail;
    if (EVP_EncryptUpdate(ctx, ct, &n, plaintext, (int)len) != 1 ||
        EVP_EncryptFinal_ex(ctx, ct + n, &fin) != 1)
        goto fail;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, CRYPTO_SEAL_TAG_LEN, ct + n + fin) != 1)
        goto fail;
    ctblen = ((size_t)n + (size_t)fin + CRYPTO_SEAL_TAG_LEN + 2) / 3 * 4 + 1;
    ctb = malloc(ctblen);
    if (ctb == NULL)
        goto fail;
    crypto_b64url_encode(ct, (size_t)n + (size_t)fin + CRYPTO_SEAL_TAG_LEN, ctb, ctblen);
    crypto_b64url_encode(salt, sizeof(salt), saltb, sizeof(saltb));
    crypto_b64url_encode(nonce, sizeof(nonce), nonceb, sizeof(nonceb));
    txtlen = strlen(ctb) + 96;
    txt = malloc(txtlen);
    if (txt == NULL)
        goto fail;
    snprintf(txt, txtlen, "v1$%d$%s$%s$%s", iter, saltb, nonceb, ctb);
    *out = txt;
    OPENSSL_cleanse(key, sizeof(key));
    EVP_CIPHER_CTX_free(ctx);
    free(ct);
    free(ctb);
    return 0;
fail:
    OPENSSL_cleanse(key, sizeof(key));
    EVP_CIPHER_CTX_free(ctx);
    free(ct);
    free(ctb);
    return -1;
}

int crypto_open(const char *passphrase, const char *aad, const char *sealed, uint8_t **out,
                size_t *outlen)
{
    uint8_t salt[CRYPTO_SEAL_SALT_LEN], nonce[CRYPTO_SEAL_NONCE_LEN], key[32];
    uint8_t *ct = NULL, *pt = NULL;
    EVP_CIPHER_CTX *ctx = NULL;
    const char *f[5];
    size_t flen[5];
    int iter, ctn, n = 0, fin = 0;
    char *end;

    *out = NULL;
    *outlen = 0;
    /* split on '$' into exactly 5 fields */
    const char *p = sealed;
    for (int i = 0; i < 5; i++) {
        const char *d = strchr(p, '$');
        if ((d == NULL) != (i == 4))
            return -1;
        f[i] = p;
        flen[i] = d ? (size_t)(d - p) : strlen(p);
        p = d ? d + 1 : p;
    }
    if (flen[0] != 2 || memcmp(f[0], "v1", 2) != 0)
        return -1;
    iter = (int)strtol(f[1], &end, 10);
    if (end != f[1] + flen[1] || iter < 1000 || iter > 10000000)
        return -1;
    if (crypto_b64url_decode(f[2], flen[2], salt, sizeof(salt)) != (int)sizeof(salt) ||
        crypto_b64url_decode(f[3], flen[3], nonce, sizeof(nonce)) != (int)sizeof(nonce))
        return -1;
    ct = malloc(flen[4] + 1);
    if (ct == NULL)
        return -1;
    ctn = crypto_b64url_decode(f[4], flen[4], ct, flen[4] + 1);
    if (ctn < CRYPTO_SEAL_TAG_LEN)
        goto fail;
    ctn -= CRYPTO_SEAL_TAG_LEN;
    pt = malloc((size_t)ctn + 1);
    ctx = EVP_CIPHER_CTX_new();
    if (pt == NULL || ctx == NULL)
        goto fail;
    if (derive_key(passphrase, salt, sizeof(salt), iter, key) < 0)
        goto fail;
    if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, sizeof(nonce), NULL) != 1 ||
        EVP_DecryptInit_ex(ctx, NULL, NULL, key, nonce) != 1)
        goto fail;
    if (aad && EVP_DecryptUpdate(ctx, NULL, &n, (const uint8_t *)aad, (int)strlen(aad)) != 1)
        goto fail;
    if (EVP_DecryptUpdate(ctx, pt, &n, ct, ctn) != 1)
        goto fail;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, CRYPTO_SEAL_TAG_LEN, ct + ctn) != 1)
        goto fail;
    if (EVP_DecryptFinal_ex(ctx, pt + n, &fin) != 1)
        goto fail;
    pt[n + fin] = '\0';
    *out = pt;
    *outlen = (size_t)(n + fin);
    OPENSSL_cleanse(key, sizeof(key));
    EVP_CIPHER_CTX_free(ctx);
    free(ct);
    return 0;
fail:
    OPENSSL_cleanse(key, sizeof(key));
    if (pt)
        OPENSSL_cleanse(pt, (size_t)(ctn > 0 ? ctn : 0));
    free(pt);
    EVP_CIPHER_CTX_free(ctx);
    free(ct);
    return -1;
}

double crypto_shannon_entropy(const void *data, size_t len)
{
    size_t count[256] = {0};
    const uint8_t *p = data;
    double h = 0;

    if (len == 0)
        return 0;
    for (size_t i = 0; i < len; i++)
        count[p[i]]++;
    for (int i = 0; i < 256; i++) {
        if (count[i] == 0)
            continue;
        double q = (double)count[i] / (double)len;
        h -= q * log2(q);
    }
    return h;
}

bool crypto_key_is_strong(const void *key, size_t len, size_t min_len, char *why, size_t whylen)
{
    const uint8_t *p = key;
    bool seen[256] = {false};
    int distinct = 0;
    double h;

    if (len < min_len) {
        snprintf(why, whylen, "too short: %zu bytes, at least %zu required", len, min_len);
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (!seen[p[i]]) {
            seen[p[i]] = true;
            distinct++;
        }
    }
    h = crypto_shannon_entropy(key, len);
    if (distinct < 10 || h < CRYPTO_KEY_MIN_ENTROPY) {
        snprintf(why, whylen,
                 "too predictable: Shannon entropy %.2f bits/byte over %d distinct bytes "
                 "(need >= %.1f and >= 10); generate one with `openssl rand -base64 48`",
                 h, distinct, CRYPTO_KEY_MIN_ENTROPY);
        return false;
    }
    return true;
}
