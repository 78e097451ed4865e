/* test_scrub.c - secrets never survive scrub_text (logs) or scrub_json (audit arguments). */
#include <check.h>

#include "unit.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scrub.h"

static void text_case(const char *in, const char *must_not, const char *must)
{
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", in);
    scrub_text(buf, sizeof(buf));
    if (must_not)
        ck_assert_msg(strstr(buf, must_not) == NULL, "leaked '%s' in '%s'", must_not, buf);
    if (must)
        ck_assert_msg(strstr(buf, must) != NULL, "expected '%s' in '%s'", must, buf);
}

START_TEST(text_rules)
{
    text_case("auth failed for Bearer abc.def-ghi_123 from 1.2.3.4", "abc.def",
              "Bearer [REDACTED] from");
    text_case("Authorization: Basic dXNlcjpwYXNz", "dXNlcjpwYXNz", "[REDACTED]");
    text_case("token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl rejected", "c2lnbmF0dXJl",
              "token [REDACTED] rejected");
    text_case("key csk_ab12cd34ef_Zm9vYmFyYmF6cXV4 revoked", "Zm9vYmFy", "csk_[REDACTED] revoked");
    text_case("connect(postgresql://csmcp:hunter2@db:5432/x) failed", "hunter2",
              "postgresql://csmcp:[REDACTED]@db");
    text_case("password=hunter2 user=bob", "hunter2", "user=bob");
    text_case("{\"api_key\": \"k-123456\", \"n\": 1}", "k-123456", "\"n\": 1");
    text_case("client_secret: s3cr3t, next", "s3cr3t", ", next");
    /* ordinary text untouched */
    text_case("tool get_client_overview took 12 ms (max_tokens=100)", NULL,
              "tool get_client_overview took 12 ms (max_tokens=100)");
}
END_TEST

START_TEST(text_capacity)
{
    /* the mask is longer than the secret and the buffer is tight: truncate, never overflow */
    char buf[24] = "Bearer ab password=c";
    scrub_text(buf, sizeof(buf));
    ck_assert_uint_lt(strlen(buf), sizeof(buf));
    ck_assert_ptr_null(strstr(buf, " ab"));
}
END_TEST

START_TEST(json_keys_any_depth)
{
    const char *in =
        "{\"client_id\":\"cs_1\",\"password\":\"p1\",\"nested\":{\"deeper\":[{\"Api-Key\":"
        "\"k2\",\"x\":1.5e3},{\"authorization\":{\"inner\":\"obj\"}}]},\"token\":null,"
        "\"access_token\":\"t3\",\"ok\":true}";
    char *out = scrub_json(in, strlen(in));
    ck_assert_ptr_nonnull(out);
    ck_assert_ptr_null(strstr(out, "p1"));
    ck_assert_ptr_null(strstr(out, "k2"));
    ck_assert_ptr_null(strstr(out, "obj"));
    ck_assert_ptr_null(strstr(out, "t3"));
    ck_assert_ptr_nonnull(strstr(out, "\"client_id\":\"cs_1\""));
    ck_assert_ptr_nonnull(strstr(out, "1.5e3"));
    ck_assert_ptr_nonnull(strstr(out, "\"token\":null"));
    ck_assert_ptr_nonnull(strstr(out, "\"ok\":true"));
    free(out);
}
END_TEST

START_TEST(json_values_shaped_like_secrets)
{
    const char *in = "{\"note\":\"call me with Bearer xyz123 please\",\"list\":[\"eyJhbGciOiJIUzI1"
                     "NiJ9.eyJzdWIiOiIxIn0.sig_part\",\"plain\"]}";
    char *out = scrub_json(in, strlen(in));
    ck_assert_ptr_null(strstr(out, "xyz123"));
    ck_assert_ptr_null(strstr(out, "sig_part"));
    ck_assert_ptr_nonnull(strstr(out, "please"));
    ck_assert_ptr_nonnull(strstr(out, "\"plain\""));
    free(out);
}
END_TEST

START_TEST(json_bad_and_deep)
{
    char *out = scrub_json("{not json", 9);
    ck_assert_str_eq(out, "\"[UNPARSEABLE]\"");
    free(out);
    char deep[2100];
    int n = 0;
    for (int i = 0; i < 1000; i++)
        deep[n++] = '[';
    for (int i = 0; i < 1000; i++)
        deep[n++] = ']';
    out = scrub_json(deep, (size_t)n);
    ck_assert_ptr_nonnull(out);
    ck_assert_uint_lt(strlen(out), 400);
    free(out);
}
END_TEST

START_TEST(sensitive_keys)
{
    ck_assert(scrub_key_is_sensitive("password", 8));
    ck_assert(scrub_key_is_sensitive("X-API-KEY", 9));
    ck_assert(scrub_key_is_sensitive("refresh_token", 13));
    ck_assert(scrub_key_is_sensitive("ClientSecret", 12));
    ck_assert(!scrub_key_is_sensitive("max_tokens", 10));
    ck_assert(!scrub_key_is_sensitive("client_id", 9));
    ck_assert(!scrub_key_is_sensitive("session_secret_file", 19));
}
END_TEST

Suite *unit_suite(void)
{
    Suite *s = suite_create("scrub");
    TCase *tc = tcase_create("scrub");
    tcase_add_test(tc, text_rules);
    tcase_add_test(tc, text_capacity);
    tcase_add_test(tc, json_keys_any_depth);
    tcase_add_test(tc, json_values_shaped_like_secrets);
    tcase_add_test(tc, json_bad_and_deep);
    tcase_add_test(tc, sensitive_keys);
    suite_add_tcase(s, tc);
    return s;
}
