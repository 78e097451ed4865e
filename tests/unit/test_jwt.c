/* test_jwt.c - RS256/ES256 verification, claim checks and algorithm-confusion refusals. */
#include <check.h>

#include "unit.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include "crypto.h"
#include "jwt.h"

static EVP_PKEY *rsa, *ec, *rsa_other;
static struct jwt_keys *keys;
static const time_t NOW = 1800000000;

static void b64(const void *p, size_t n, char *out, size_t cap)
{
    ck_assert_int_ge(crypto_b64url_encode(p, n, out, cap), 0);
}

static void bn_b64(EVP_PKEY *k, const char *name, char *out, size_t cap)
{
    BIGNUM *bn = NULL;
    uint8_t buf[600];
    ck_assert(EVP_PKEY_get_bn_param(k, name, &bn));
    int n = BN_bn2bin(bn, buf);
    b64(buf, (size_t)n, out, cap);
    BN_free(bn);
}

static char *make_token(EVP_PKEY *k, const char *alg, const char *kid, const char *claims)
{
    char hdr[256], h64[512], c64[2048], sig64[1024], signing[4096];
    uint8_t sig[600];
    size_t siglen = sizeof(sig);
    EVP_MD_CTX *md = EVP_MD_CTX_new();

    snprintf(hdr, sizeof(hdr), "{\"alg\":\"%s\",\"typ\":\"JWT\"%s%s%s}", alg,
             kid ? ",\"kid\":\"" : "", kid ? kid : "", kid ? "\"" : "");
    b64(hdr, strlen(hdr), h64, sizeof(h64));
    b64(claims, strlen(claims), c64, sizeof(c64));
    snprintf(signing, sizeof(signing), "%s.%s", h64, c64);
    ck_assert_int_eq(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k), 1);
    ck_assert_int_eq(EVP_DigestSign(md, sig, &siglen, (uint8_t *)signing, strlen(signing)), 1);
    EVP_MD_CTX_free(md);
    if (EVP_PKEY_is_a(k, "EC")) {
        const uint8_t *p = sig;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)siglen);
        uint8_t raw[64];
        BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 32);
        BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 32, 32);
        ECDSA_SIG_free(es);
        memcpy(sig, raw, 64);
        siglen = 64;
    }
    b64(sig, siglen, sig64, sizeof(sig64));
    char *tok = malloc(8192);
    snprintf(tok, 8192, "%s.%s", signing, sig64);
    return tok;
}

static void setup(void)
{
    char n64[600], e64[16], x64[64], y64[64], jwks[4096], err[256];
    uint8_t pub[65];
    size_t publen = 0;

    rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    rsa_other = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    ck_assert_ptr_nonnull(rsa);
    ck_assert_ptr_nonnull(ec);
    bn_b64(rsa, OSSL_PKEY_PARAM_RSA_N, n64, sizeof(n64));
    bn_b64(rsa, OSSL_PKEY_PARAM_RSA_E, e64, sizeof(e64));
    ck_assert(
        EVP_PKEY_get_octet_string_param(ec, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub), &publen));
    ck_assert_uint_eq(publen, 65);
    b64(pub + 1, 32, x64, sizeof(x64));
    b64(pub + 33, 32, y64, sizeof(y64));
    snprintf(
        jwks, sizeof(jwks),
        "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"r1\",\"alg\":\"RS256\",\"use\":\"sig\",\"n\":\"%s\","
        "\"e\":\"%s\"},{\"kty\":\"EC\",\"kid\":\"e1\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"},"
        "{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}]}",
        n64, e64, x64, y64);
    ck_assert_int_eq(jwt_keys_parse(jwks, strlen(jwks), &keys, err, sizeof(err)), 0);
    ck_assert_int_eq(jwt_keys_count(keys), 2);
}

static void teardown(void)
{
    jwt_keys_free(keys);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(rsa_other);
    EVP_PKEY_free(ec);
}

#define GOOD_CLAIMS                                                                                \
    "{\"iss\":\"https://idp.example\",\"aud\":\"https://mcp.example/mcp\",\"sub\":\"alice\","      \
    "\"exp\":1800000300,\"nbf\":1799999000,\"scope\":\"read write\"}"

static int verify(const char *tok, struct jwt_claims *c, char *err)
{
    return jwt_verify(keys, tok, "https://idp.example", "https://mcp.example/mcp", NOW, c, err,
                      256);
}

START_TEST(rs256_and_es256_ok)
{
    struct jwt_claims c;
    char err[256];
    char *t = make_token(rsa, "RS256", "r1", GOOD_CLAIMS);
    ck_assert_msg(verify(t, &c, err) == 0, "%s", err);
    ck_assert_str_eq(c.sub, "alice");
    ck_assert_str_eq(c.scope, "read write");
    free(t);
    t = make_token(ec, "ES256", "e1", GOOD_CLAIMS);
    ck_assert_msg(verify(t, &c, err) == 0, "%s", err);
    free(t);
    t = make_token(ec, "ES256", NULL, GOOD_CLAIMS); /* no kid: try every ES256 key */
    ck_assert_msg(verify(t, &c, err) == 0, "%s", err);
    free(t);
}
END_TEST

START_TEST(claims_checked)
{
    struct jwt_claims c;
    char err[256];
    struct {
        const char *claims, *why;
    } bad[] = {
        {"{\"iss\":\"https://idp.example\",\"aud\":\"https://mcp.example/mcp\",\"exp\":1799999000}",
         "expired"},
        {"{\"iss\":\"https://idp.example\",\"aud\":\"https://mcp.example/"
         "mcp\",\"exp\":1800000300,\"nbf\":1800001000}",
         "nbf"},
        {"{\"iss\":\"https://evil.example\",\"aud\":\"https://mcp.example/"
         "mcp\",\"exp\":1800000300}",
         "issuer"},
        {"{\"iss\":\"https://idp.example\",\"aud\":\"https://other/mcp\",\"exp\":1800000300}",
         "aud"},
        {"{\"iss\":\"https://idp.example\",\"aud\":\"https://mcp.example/mcp\"}", "exp"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *t = make_token(rsa, "RS256", "r1", bad[i].claims);
        ck_assert_int_eq(verify(t, &c, err), -1);
        ck_assert_msg(strstr(err, bad[i].why) != NULL, "case %zu: %s", i, err);
        free(t);
    }
    /* aud as array, scp as array */
    char *t =
        make_token(rsa, "RS256", "r1",
                   "{\"iss\":\"https://idp.example\",\"aud\":[\"x\",\"https://mcp.example/mcp\"],"
                   "\"exp\":1800000300,\"scp\":[\"read\",\"admin\"]}");
    ck_assert_int_eq(verify(t, &c, err), 0);
    ck_assert_str_eq(c.scope, "read admin");
    free(t);
}
END_TEST

START_TEST(signature_and_alg_attacks)
{
    struct jwt_claims c;
    char err[256];
    /* signed by a key not in the JWKS */
    char *t = make_token(rsa_other, "RS256", "r1", GOOD_CLAIMS);
    ck_assert_int_eq(verify(t, &c, err), -1);
    free(t);
    /* alg none / HS256 */
    char h64[128], c64[512], tok[1024];
    crypto_b64url_encode("{\"alg\":\"none\"}", 14, h64, sizeof(h64));
    crypto_b64url_encode(GOOD_CLAIMS, strlen(GOOD_CLAIMS), c64, sizeof(c64));
    snprintf(tok, sizeof(tok), "%s.%s.", h64, c64);
    ck_assert_int_eq(verify(tok, &c, err), -1);
    crypto_b64url_encode("{\"alg\":\"HS256\"}", 15, h64, sizeof(h64));
    snprintf(tok, sizeof(tok), "%s.%s.c2ln", h64, c64);
    ck_assert_int_eq(verify(tok, &c, err), -1);
    ck_assert_ptr_nonnull(strstr(err, "alg"));
    /* ES256 header on an RSA signature: key type must match alg */
    t = make_token(rsa, "RS256", "r1", GOOD_CLAIMS);
    char *dot = strchr(t, '.');
    crypto_b64url_encode("{\"alg\":\"ES256\",\"kid\":\"r1\"}", 26, h64, sizeof(h64));
    snprintf(tok, sizeof(tok), "%s%s", h64, dot);
    ck_assert_int_eq(verify(tok, &c, err), -1);
    /* tampered claims */
    char *c1 = strchr(t, '.') + 1;
    c1[3] = c1[3] == 'A' ? 'B' : 'A';
    ck_assert_int_eq(verify(t, &c, err), -1);
    free(t);
    /* garbage */
    ck_assert_int_eq(verify("a.b", &c, err), -1);
    ck_assert_int_eq(verify("a.b.c.d", &c, err), -1);
    ck_assert_int_eq(verify("!!!.###.$$$", &c, err), -1);
    ck_assert_int_eq(verify("", &c, err), -1);
}
END_TEST

/* issue 22: unknown kid is told apart (the caller refreshes), clock skew and scope claim are
 * options, iat beyond the skew is refused, jwt_peek reads kid and iss without trusting them. */
START_TEST(opts_kid_skew_scope)
{
    struct jwt_claims c;
    char err[256], kid[64], iss[128];
    struct jwt_opts o = {"https://idp.example", "https://mcp.example/mcp", 0, NULL};
    /* kid not in the set: JWT_ERR_NO_KEY, also with no keys at all */
    char *t = make_token(rsa_other, "RS256", "r2", GOOD_CLAIMS);
    ck_assert_int_eq(jwt_verify_opts(keys, t, &o, NOW, &c, err, sizeof err), JWT_ERR_NO_KEY);
    ck_assert_ptr_nonnull(strstr(err, "kid"));
    ck_assert_int_eq(jwt_verify_opts(NULL, t, &o, NOW, &c, err, sizeof err), JWT_ERR_NO_KEY);
    ck_assert_int_eq(jwt_peek(t, kid, sizeof kid, iss, sizeof iss), 0);
    ck_assert_str_eq(kid, "r2");
    ck_assert_str_eq(iss, "https://idp.example");
    ck_assert_int_eq(jwt_keys_has_kid(keys, "r1"), 1);
    ck_assert_int_eq(jwt_keys_has_kid(keys, "r2"), 0);
    ck_assert_int_eq(jwt_peek("a.b", kid, sizeof kid, iss, sizeof iss), -1);
    free(t);
    /* skew: expired 30 s ago passes with 60 s, fails with 0 and 29 */
    const char *exp30 = "{\"iss\":\"https://idp.example\",\"aud\":\"https://mcp.example/mcp\","
                        "\"exp\":1799999970,\"scope\":\"read\"}";
    t = make_token(rsa, "RS256", "r1", exp30);
    ck_assert_int_eq(jwt_verify_opts(keys, t, &o, NOW, &c, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "expired"));
    o.leeway = 29;
    ck_assert_int_eq(jwt_verify_opts(keys, t, &o, NOW, &c, err, sizeof err), -1);
    o.leeway = 31;
    ck_assert_int_eq(jwt_verify_opts(keys, t, &o, NOW, &c, err, sizeof err), 0);
    free(t);
    /* iat in the future beyond the skew */
    t = make_token(rsa, "RS256", "r1",
                   "{\"iss\":\"https://idp.example\",\"aud\":\"https://mcp.example/mcp\","
                   "\"exp\":1800000300,\"iat\":1800000100}");
    ck_assert_int_eq(jwt_verify_opts(keys, t, &o, NOW, &c, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "iat"));
    free(t);
    /* scope claim: a configured claim (array), and no scp fallback for it */
    t = make_token(rsa, "RS256", "r1",
                   "{\"iss\":\"https://idp.example\",\"aud\":\"https://mcp.example/mcp\","
                   "\"exp\":1800000300,\"permissions\":[\"write\",\"x\"],\"scp\":[\"admin\"]}");
    o.scope_claim = "permissions";
    ck_assert_int_eq(jwt_verify_opts(keys, t, &o, NOW, &c, err, sizeof err), 0);
    ck_assert_str_eq(c.scope, "write x");
    o.scope_claim = "roles";
    ck_assert_int_eq(jwt_verify_opts(keys, t, &o, NOW, &c, err, sizeof err), 0);
    ck_assert_str_eq(c.scope, "");
    o.scope_claim = "scope"; /* the default falls back to scp */
    ck_assert_int_eq(jwt_verify_opts(keys, t, &o, NOW, &c, err, sizeof err), 0);
    ck_assert_str_eq(c.scope, "admin");
    free(t);
}
END_TEST

START_TEST(bad_jwks)
{
    struct jwt_keys *k = NULL;
    char err[256];
    ck_assert_int_eq(jwt_keys_parse("{", 1, &k, err, sizeof(err)), -1);
    ck_assert_int_eq(jwt_keys_parse("{\"keys\":[]}", 11, &k, err, sizeof(err)), -1);
    ck_assert_int_eq(jwt_keys_parse("{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}",
                                    44, &k, err, sizeof(err)),
                     -1); /* tiny RSA modulus refused */
    ck_assert_ptr_null(k);
}
END_TEST

Suite *unit_suite(void)
{
    Suite *s = suite_create("jwt");
    TCase *tc = tcase_create("jwt");
    tcase_add_unchecked_fixture(tc, setup, teardown); /* one key generation per run */
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, rs256_and_es256_ok);
    tcase_add_test(tc, claims_checked);
    tcase_add_test(tc, signature_and_alg_attacks);
    tcase_add_test(tc, opts_kid_skew_scope);
    tcase_add_test(tc, bad_jwks);
    suite_add_tcase(s, tc);
    return s;
}
