/*
 * jwt.c - RS256/ES256 JWT verification against a JWKS key set.
 *
 * Invariants: the signature is checked before any claim is trusted; the key is chosen by kid
 * (or, without kid, every key of the header's algorithm is tried) and its type must match alg;
 * token size is bounded (JWT_MAX_LEN) before any decoding; yajl trees are freed on every path.
 */
#include "jwt.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <yajl/yajl_tree.h>

#include "crypto.h"

enum jwt_alg { ALG_RS256, ALG_ES256 };

struct jwt_key {
    char kid[128];
    enum jwt_alg alg;
    EVP_PKEY *pkey;
};

struct jwt_keys {
    int n;
    struct jwt_key k[32];
};

static const char *str_at(yajl_val obj, const char *name)
{
    const char *path[] = {name, NULL};
    yajl_val v = yajl_tree_get(obj, path, yajl_t_string);
    return v ? YAJL_GET_STRING(v) : NULL;
}

static BIGNUM *b64_bn(const char *s)
{
    uint8_t buf[1024];
    int n;
    if (s == NULL)
        return NULL;
    n = crypto_b64url_decode(s, strlen(s), buf, sizeof(buf));
    if (n <= 0)
        return NULL;
    return BN_bin2bn(buf, n, NULL);
}

static EVP_PKEY *rsa_from_jwk(yajl_val jwk)
{
    BIGNUM *n = b64_bn(str_at(jwk, "n")), *e = b64_bn(str_at(jwk, "e"));
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pkey = NULL;

    if (n == NULL || e == NULL || BN_num_bits(n) < 2048)
        goto done;
    bld = OSSL_PARAM_BLD_new();
    if (bld == NULL || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
        goto done;
    params = OSSL_PARAM_BLD_to_param(bld);
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
        pkey = NULL;
done:
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    return pkey;
}

static EVP_PKEY *ec_from_jwk(yajl_val jwk)
{
    const char *crv = str_at(jwk, "crv"), *xs = str_at(jwk, "x"), *ys = str_at(jwk, "y");
    uint8_t pub[65];
    OSSL_PARAM params[3];
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pkey = NULL;

    if (crv == NULL || strcmp(crv, "P-256") != 0 || xs == NULL || ys == NULL)
        return NULL;
    pub[0] = 0x04;
    if (crypto_b64url_decode(xs, strlen(xs), pub + 1, 32) != 32 ||
        crypto_b64url_decode(ys, strlen(ys), pub + 33, 32) != 32)
        return NULL;
    params[0] =
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)"prime256v1", 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub));
    params[2] = OSSL_PARAM_construct_end();
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
        pkey = NULL;
    EVP_PKEY_CTX_free(ctx);
    return pkey;
}

int jwt_keys_parse(const char *json, size_t len, struct jwt_keys **out, char *err, size_t errlen)
{
    char ebuf[128], *copy;
    yajl_val root = NULL, keys;
    struct jwt_keys *ks;
    const char *path[] = {"keys", NULL};

    *out = NULL;
    copy = malloc(len + 1);
    ks = calloc(1, sizeof(*ks));
    if (copy == NULL || ks == NULL) {
        free(copy);
        free(ks);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    memcpy(copy, json, len);
    copy[len] = '\0';
    root = yajl_tree_parse(copy, ebuf, sizeof(ebuf));
    free(copy);
    if (root == NULL) {
        snprintf(err, errlen, "JWKS is not valid JSON");
        goto fail;
    }
    keys = yajl_tree_get(root, path, yajl_t_array);
    if (keys == NULL) {
        snprintf(err, errlen, "JWKS has no \"keys\" array");
        goto fail;
    }
    for (size_t i = 0; i < keys->u.array.len && ks->n < (int)(sizeof(ks->k) / sizeof(ks->k[0]));
         i++) {
        yajl_val jwk = keys->u.array.values[i];
        const char *kty = str_at(jwk, "kty"), *alg = str_at(jwk, "alg"), *use = str_at(jwk, "use");
        const char *kid = str_at(jwk, "kid");
        struct jwt_key *k = &ks->k[ks->n];

        if (kty == NULL || (use && strcmp(use, "sig") != 0))
            continue;
        if (strcmp(kty, "RSA") == 0 && (alg == NULL || strcmp(alg, "RS256") == 0)) {
            k->alg = ALG_RS256;
            k->pkey = rsa_from_jwk(jwk);
        } else if (strcmp(kty, "EC") == 0 && (alg == NULL || strcmp(alg, "ES256") == 0)) {
            k->alg = ALG_ES256;
            k->pkey = ec_from_jwk(jwk);
        }
        if (k->pkey == NULL)
            continue;
        snprintf(k->kid, sizeof(k->kid), "%s", kid ? kid : "");
        ks->n++;
    }
    if (ks->n == 0) {
        snprintf(err, errlen, "JWKS has no usable RS256 (RSA >= 2048 bits) or ES256 (P-256) key");
        goto fail;
    }
    yajl_tree_free(root);
    *out = ks;
    return 0;
fail:
    yajl_tree_free(root);
    jwt_keys_free(ks);
    return -1;
}

int jwt_keys_load(const char *path, struct jwt_keys **out, char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    char *buf;
    size_t n;
    int rc;

    if (f == NULL) {
        snprintf(err, errlen, "open(%s) failed", path);
        return -1;
    }
    buf = malloc(1 << 20);
    if (buf == NULL) {
        fclose(f);
        return -1;
    }
    n = fread(buf, 1, (1 << 20) - 1, f);
    fclose(f);
    rc = jwt_keys_parse(buf, n, out, err, errlen);
    free(buf);
    return rc;
}

int jwt_keys_count(const struct jwt_keys *k)
{
    return k ? k->n : 0;
}

void jwt_keys_free(struct jwt_keys *k)
{
    if (k == NULL)
        return;
    for (int i = 0; i < k->n; i++)
        EVP_PKEY_free(k->k[i].pkey);
    free(k);
}

static bool verify_with(const struct jwt_key *k, const char *signed_part, size_t signed_len,
                        const uint8_t *sig, size_t siglen)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint8_t der[80];
    const uint8_t *s = sig;
    size_t slen = siglen;
    bool ok = false;

    if (md == NULL)
        return false;
    if (k->alg == ALG_ES256) {
        /* JWS carries r||s (64 bytes); OpenSSL wants a DER ECDSA-Sig-Value. */
        ECDSA_SIG *es;
        unsigned char *p = der;
        int dl;
        if (siglen != 64)
            goto done;
        es = ECDSA_SIG_new();
        if (es == NULL)
            goto done;
        if (!ECDSA_SIG_set0(es, BN_bin2bn(sig, 32, NULL), BN_bin2bn(sig + 32, 32, NULL))) {
            ECDSA_SIG_free(es);
            goto done;
        }
        dl = i2d_ECDSA_SIG(es, NULL);
        if (dl <= 0 || dl > (int)sizeof(der)) {
            ECDSA_SIG_free(es);
            goto done;
        }
        dl = i2d_ECDSA_SIG(es, &p);
        ECDSA_SIG_free(es);
        s = der;
        slen = (size_t)dl;
    }
    if (EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, k->pkey) != 1)
        goto done;
    ok = EVP_DigestVerify(md, s, slen, (const uint8_t *)signed_part, signed_len) == 1;
done:
    EVP_MD_CTX_free(md);
    return ok;
}

static yajl_val parse_part(const char *b64, size_t len)
{
    char buf[JWT_MAX_LEN];
    char ebuf[64];
    int n = crypto_b64url_decode(b64, len, (uint8_t *)buf, sizeof(buf) - 1);
    if (n <= 0)
        return NULL;
    buf[n] = '\0';
    if (memchr(buf, '\0', (size_t)n))
        return NULL;
    return yajl_tree_parse(buf, ebuf, sizeof(ebuf));
}

static bool num_at(yajl_val obj, const char *name, long *out)
{
    const char *path[] = {name, NULL};
    yajl_val v = yajl_tree_get(obj, path, yajl_t_number);
    if (v == NULL)
        return false;
    if (YAJL_IS_INTEGER(v))
        *out = (long)YAJL_GET_INTEGER(v);
    else
        *out = (long)YAJL_GET_DOUBLE(v);
    return true;
}

static bool aud_matches(yajl_val claims, const char *audience)
{
    const char *path[] = {"aud", NULL};
    yajl_val v = yajl_tree_get(claims, path, yajl_t_any);
    if (v == NULL)
        return false;
    if (YAJL_IS_STRING(v))
        return strcmp(v->u.string, audience) == 0;
    if (YAJL_IS_ARRAY(v))
        for (size_t i = 0; i < v->u.array.len; i++)
            if (YAJL_IS_STRING(v->u.array.values[i]) &&
                strcmp(v->u.array.values[i]->u.string, audience) == 0)
                return true;
    return false;
}

int jwt_keys_has_kid(const struct jwt_keys *k, const char *kid)
{
    for (int i = 0; k && kid && i < k->n; i++)
        if (strcmp(k->k[i].kid, kid) == 0)
            return 1;
    return 0;
}

const char *jwt_keys_kid(const struct jwt_keys *k, int i)
{
    return k && i >= 0 && i < k->n ? k->k[i].kid : "";
}

int jwt_peek(const char *token, char *kid, size_t kidlen, char *iss, size_t isslen)
{
    const char *d1 = strchr(token, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    yajl_val hdr, claims;
    const char *s;

    kid[0] = iss[0] = '\0';
    if (strlen(token) > JWT_MAX_LEN || d1 == NULL || d2 == NULL || strchr(d2 + 1, '.') != NULL)
        return -1;
    hdr = parse_part(token, (size_t)(d1 - token));
    if (hdr == NULL || !YAJL_IS_OBJECT(hdr)) {
        yajl_tree_free(hdr);
        return -1;
    }
    s = str_at(hdr, "kid");
    snprintf(kid, kidlen, "%s", s ? s : "");
    yajl_tree_free(hdr);
    claims = parse_part(d1 + 1, (size_t)(d2 - d1 - 1));
    if (claims && YAJL_IS_OBJECT(claims)) {
        s = str_at(claims, "iss");
        snprintf(iss, isslen, "%s", s ? s : "");
    }
    yajl_tree_free(claims);
    return 0;
}

int jwt_verify(const struct jwt_keys *keys, const char *token, const char *issuer,
               const char *audience, time_t now, struct jwt_claims *out, char *err, size_t errlen)
{
    struct jwt_opts o = {issuer, audience, JWT_LEEWAY_S, NULL};
    int rc = jwt_verify_opts(keys, token, &o, now, out, err, errlen);
    return rc < 0 ? -1 : rc;
}

int jwt_verify_opts(const struct jwt_keys *keys, const char *token, const struct jwt_opts *o,
                    time_t now, struct jwt_claims *out, char *err, size_t errlen)
{
    const char *issuer = o->issuer, *audience = o->audience;
    int leeway = o->leeway > 0 ? o->leeway : 0;
    bool kid_known = false;
    long iat;
    const char *d1, *d2, *alg, *kid, *iss, *sub;
    yajl_val hdr = NULL, claims = NULL;
    uint8_t sig[600];
    int siglen;
    enum jwt_alg want;
    bool verified = false;
    long exp, nbf;
    size_t tlen = strlen(token);

    memset(out, 0, sizeof(*out));
    if (keys == NULL || keys->n == 0) {
        snprintf(err, errlen, "no signing keys of the token's issuer are known");
        return JWT_ERR_NO_KEY;
    }
    if (tlen > JWT_MAX_LEN) {
        snprintf(err, errlen, "token too long");
        return -1;
    }
    d1 = strchr(token, '.');
    d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    if (d1 == NULL || d2 == NULL || strchr(d2 + 1, '.') != NULL) {
        snprintf(err, errlen, "malformed token");
        return -1;
    }
    hdr = parse_part(token, (size_t)(d1 - token));
    if (hdr == NULL || !YAJL_IS_OBJECT(hdr)) {
        snprintf(err, errlen, "malformed token header");
        goto fail;
    }
    alg = str_at(hdr, "alg");
    kid = str_at(hdr, "kid");
    if (alg && strcmp(alg, "RS256") == 0) {
        want = ALG_RS256;
    } else if (alg && strcmp(alg, "ES256") == 0) {
        want = ALG_ES256;
    } else {
        snprintf(err, errlen, "unsupported alg (RS256 or ES256 required)");
        goto fail;
    }
    siglen = crypto_b64url_decode(d2 + 1, strlen(d2 + 1), sig, sizeof(sig));
    if (siglen <= 0) {
        snprintf(err, errlen, "malformed signature");
        goto fail;
    }
    for (int i = 0; i < keys->n && !verified; i++) {
        const struct jwt_key *k = &keys->k[i];
        if (k->alg != want || (kid && k->kid[0] && strcmp(kid, k->kid) != 0))
            continue;
        kid_known = true;
        verified = verify_with(k, token, (size_t)(d2 - token), sig, (size_t)siglen);
    }
    if (!verified && !kid_known) {
        snprintf(err, errlen, "unknown signing key (kid not in the issuer's key set)");
        yajl_tree_free(hdr);
        return JWT_ERR_NO_KEY;
    }
    if (!verified) {
        snprintf(err, errlen, "signature verification failed");
        goto fail;
    }
    claims = parse_part(d1 + 1, (size_t)(d2 - d1 - 1));
    if (claims == NULL || !YAJL_IS_OBJECT(claims)) {
        snprintf(err, errlen, "malformed claims");
        goto fail;
    }
    if (!num_at(claims, "exp", &exp)) {
        snprintf(err, errlen, "token has no exp");
        goto fail;
    }
    if ((long)now > exp + leeway) {
        snprintf(err, errlen, "token expired");
        goto fail;
    }
    if (num_at(claims, "nbf", &nbf) && (long)now + leeway < nbf) {
        snprintf(err, errlen, "token not yet valid (nbf)");
        goto fail;
    }
    if (num_at(claims, "iat", &iat) && (long)now + leeway < iat) {
        snprintf(err, errlen, "token issued in the future (iat beyond the clock skew)");
        goto fail;
    }
    iss = str_at(claims, "iss");
    if (issuer && *issuer && (iss == NULL || strcmp(iss, issuer) != 0)) {
        snprintf(err, errlen, "wrong issuer");
        goto fail;
    }
    if (audience == NULL || *audience == '\0' || !aud_matches(claims, audience)) {
        snprintf(err, errlen, "token not issued for this resource (aud)");
        goto fail;
    }
    sub = str_at(claims, "sub");
    snprintf(out->sub, sizeof(out->sub), "%s", sub ? sub : "unknown");
    {
        const char *claim = o->scope_claim && *o->scope_claim ? o->scope_claim : "scope";
        const char *path[] = {claim, NULL}, *path2[] = {"scp", NULL};
        yajl_val sv = yajl_tree_get(claims, path, yajl_t_any);
        if (sv == NULL && strcmp(claim, "scope") == 0)
            sv = yajl_tree_get(claims, path2, yajl_t_any);
        if (sv && YAJL_IS_STRING(sv)) {
            snprintf(out->scope, sizeof(out->scope), "%s", YAJL_GET_STRING(sv));
        } else if (sv && YAJL_IS_ARRAY(sv)) {
            size_t pos = 0;
            for (size_t i = 0; i < sv->u.array.len && pos < sizeof(out->scope); i++) {
                yajl_val s = sv->u.array.values[i];
                if (YAJL_IS_STRING(s))
                    pos += (size_t)snprintf(out->scope + pos, sizeof(out->scope) - pos, "%s%s",
                                            pos ? " " : "", YAJL_GET_STRING(s));
            }
        }
    }
    out->exp = exp;
    yajl_tree_free(hdr);
    yajl_tree_free(claims);
    return 0;
fail:
    yajl_tree_free(hdr);
    yajl_tree_free(claims);
    return -1;
}
