/* test_crypto.c - hashing, HMAC, codecs, AES-256-GCM sealing and the key-strength check. */
#include <check.h>

#include "unit.h"
#include <stdlib.h>
#include <string.h>

#include "crypto.h"

START_TEST(sha256_vectors)
{
    char hex[CRYPTO_SHA256_HEX_LEN];
    ck_assert_int_eq(crypto_sha256_hex("abc", 3, hex), 0);
    ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    ck_assert_int_eq(crypto_sha256_hex("", 0, hex), 0);
    ck_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}
END_TEST

START_TEST(hmac_rfc4231)
{
    /* RFC 4231 test case 2 */
    uint8_t mac[32];
    char hex[65];
    ck_assert_int_eq(crypto_hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, mac), 0);
    crypto_hex(mac, 32, hex);
    ck_assert_str_eq(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    /* the keyed context is cached: alternate keys, and a key too long to cache (case 6) */
    uint8_t k1[20], k6[131];
    memset(k1, 0x0b, sizeof(k1));
    memset(k6, 0xaa, sizeof(k6));
    for (int round = 0; round < 3; round++) {
        ck_assert_int_eq(crypto_hmac_sha256(k1, sizeof(k1), "Hi There", 8, mac), 0);
        crypto_hex(mac, 32, hex);
        ck_assert_str_eq(hex, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
        ck_assert_int_eq(
            crypto_hmac_sha256(k6, sizeof(k6),
                               "Test Using Larger Than Block-Size Key - Hash Key First", 54, mac),
            0);
        crypto_hex(mac, 32, hex);
        ck_assert_str_eq(hex, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
        ck_assert_int_eq(crypto_hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, mac), 0);
        crypto_hex(mac, 32, hex);
        ck_assert_str_eq(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }
}
END_TEST

START_TEST(ct_compare)
{
    ck_assert(crypto_ct_equal("abcd", "abcd", 4));
    ck_assert(!crypto_ct_equal("abcd", "abce", 4));
    ck_assert(crypto_ct_streq("token", "token"));
    ck_assert(!crypto_ct_streq("token", "token2"));
    ck_assert(!crypto_ct_streq("token2", "token"));
    ck_assert(!crypto_ct_streq("", "x"));
}
END_TEST

START_TEST(b64url_roundtrip)
{
    char enc[64];
    uint8_t dec[64], in[40];
    for (size_t n = 0; n < sizeof(in); n++) {
        ck_assert_int_eq(crypto_random(in, n), 0);
        int e = crypto_b64url_encode(in, n, enc, sizeof(enc));
        ck_assert_int_ge(e, 0);
        ck_assert_ptr_null(strpbrk(enc, "+/="));
        ck_assert_int_eq(crypto_b64url_decode(enc, (size_t)e, dec, sizeof(dec)), (int)n);
        ck_assert(memcmp(in, dec, n) == 0);
    }
    ck_assert_int_eq(crypto_b64url_encode("hi?", 3, enc, sizeof(enc)), 4);
    ck_assert_str_eq(enc, "aGk_");
    ck_assert_int_eq(crypto_b64url_decode("aGk_", 4, dec, sizeof(dec)), 3);
    ck_assert_int_eq(crypto_b64url_decode("a", 1, dec, sizeof(dec)), -1);
    ck_assert_int_eq(crypto_b64url_decode("a*bc", 4, dec, sizeof(dec)), -1);
    /* too small output buffers are refused, never overflowed */
    ck_assert_int_eq(crypto_b64url_encode("abcdef", 6, enc, 8), -1);
    ck_assert_int_eq(crypto_b64url_decode("YWJjZGVm", 8, dec, 5), -1);
}
END_TEST

START_TEST(seal_open)
{
    char *s = NULL;
    uint8_t *pt = NULL;
    size_t n = 0;
    const char *msg = "sk_live_very-secret-value";

    ck_assert_int_eq(crypto_seal("vault passphrase", "crm.token", msg, strlen(msg), 2000, &s), 0);
    ck_assert_ptr_nonnull(s);
    ck_assert(strncmp(s, "v1$2000$", 8) == 0);
    ck_assert_ptr_null(strstr(s, "secret"));
    ck_assert_int_eq(crypto_open("vault passphrase", "crm.token", s, &pt, &n), 0);
    ck_assert_uint_eq(n, strlen(msg));
    ck_assert_str_eq((char *)pt, msg);
    free(pt);
    /* wrong passphrase, wrong aad (secret renamed), tampered ciphertext */
    ck_assert_int_eq(crypto_open("vault passphrasf", "crm.token", s, &pt, &n), -1);
    ck_assert_int_eq(crypto_open("vault passphrase", "crm.other", s, &pt, &n), -1);
    size_t len = strlen(s);
    s[len - 3] = s[len - 3] == 'A' ? 'B' : 'A';
    ck_assert_int_eq(crypto_open("vault passphrase", "crm.token", s, &pt, &n), -1);
    ck_assert_int_eq(crypto_open("vault passphrase", NULL, "v1$2000$abc", &pt, &n), -1);
    ck_assert_int_eq(crypto_open("vault passphrase", NULL, "garbage", &pt, &n), -1);
    free(s);
}
END_TEST

START_TEST(seal_fresh_salt_nonce)
{
    char *a = NULL, *b = NULL;
    ck_assert_int_eq(crypto_seal("k", NULL, "same", 4, 1000, &a), 0);
    ck_assert_int_eq(crypto_seal("k", NULL, "same", 4, 1000, &b), 0);
    ck_assert_str_ne(a, b);
    /* salt (field 3) and nonce (field 4) differ */
    ck_assert(strncmp(strchr(a + 3, '$'), strchr(b + 3, '$'), 20) != 0);
    free(a);
    free(b);
}
END_TEST

START_TEST(seal_default_iterations)
{
    char *s = NULL;
    uint8_t *pt = NULL;
    size_t n;
    ck_assert_int_eq(crypto_seal("k", NULL, "x", 1, CRYPTO_PBKDF2_ITER, &s), 0);
    ck_assert(strncmp(s, "v1$600000$", 10) == 0);
    ck_assert_int_eq(crypto_open("k", NULL, s, &pt, &n), 0);
    free(pt);
    free(s);
}
END_TEST

START_TEST(key_strength)
{
    char why[256];
    uint8_t rnd[32];
    char b64[64];
    ck_assert(!crypto_key_is_strong("short", 5, 32, why, sizeof(why)));
    ck_assert_ptr_nonnull(strstr(why, "too short"));
    ck_assert(!crypto_key_is_strong("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 40, 32, why,
                                    sizeof(why)));
    ck_assert_ptr_nonnull(strstr(why, "entropy"));
    ck_assert(!crypto_key_is_strong("abababababababababababababababab", 32, 32, why, sizeof(why)));
    ck_assert(!crypto_key_is_strong("passwordpasswordpasswordpassword", 32, 32, why, sizeof(why)));
    crypto_random(rnd, sizeof(rnd));
    crypto_b64url_encode(rnd, sizeof(rnd), b64, sizeof(b64));
    ck_assert_msg(crypto_key_is_strong(b64, strlen(b64), 32, why, sizeof(why)), "%s", why);
    ck_assert(crypto_shannon_entropy("aaaa", 4) == 0.0);
    ck_assert(crypto_shannon_entropy("abcd", 4) == 2.0);
}
END_TEST

Suite *unit_suite(void)
{
    Suite *s = suite_create("crypto");
    TCase *tc = tcase_create("crypto");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, sha256_vectors);
    tcase_add_test(tc, hmac_rfc4231);
    tcase_add_test(tc, ct_compare);
    tcase_add_test(tc, b64url_roundtrip);
    tcase_add_test(tc, seal_open);
    tcase_add_test(tc, seal_fresh_salt_nonce);
    tcase_add_test(tc, seal_default_iterations);
    tcase_add_test(tc, key_strength);
    suite_add_tcase(s, tc);
    return s;
}
