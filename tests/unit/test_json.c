/*
 * test_json.c - json_parse strictness (issue 23, findings 1 and 4): RFC 3629 UTF-8 in every
 * string and key (raw bytes and \u escapes), U+0000 refused or reported with its path
 * (JSON_KEEP_NUL), and the tree it builds (the same shape as yajl_tree_parse: numbers keep
 * their text and flags, objects keep key order).
 */
#include <check.h>

#include "unit.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

static yajl_val try_parse(const char *s, size_t n, char *err, size_t errlen)
{
    return json_parse(s, n, 16, 1024, err, errlen);
}

/* Refused, with err containing want. */
static void refused(const char *s, size_t n, const char *want)
{
    char err[256];
    yajl_val v = try_parse(s, n, err, sizeof err);
    ck_assert_msg(v == NULL, "accepted: %.*s", (int)n, s);
    ck_assert_msg(strstr(err, want) != NULL, "error \"%s\" lacks \"%s\"", err, want);
}

#define REFUSED(lit, want) refused(lit, sizeof(lit) - 1, want)

START_TEST(utf8_overlong_and_surrogates_refused)
{
    /* finding 1: overlong '/', UTF-16 surrogates as UTF-8, above U+10FFFF, stray bytes */
    REFUSED("{\"search\":\"\xC0\xAF\"}", "invalid UTF-8 in string at search");
    REFUSED("{\"search\":\"\xC1\xBF\"}", "invalid UTF-8");
    REFUSED("{\"search\":\"\xE0\x80\xAF\"}", "invalid UTF-8");
    REFUSED("{\"search\":\"\xF0\x80\x80\xAF\"}", "invalid UTF-8");
    REFUSED("{\"search\":\"\xED\xA0\x80\"}", "invalid UTF-8");
    REFUSED("{\"search\":\"\xED\xBF\xBF\"}", "invalid UTF-8");
    REFUSED("{\"search\":\"\xF4\x90\x80\x80\"}", "invalid UTF-8");
    REFUSED("{\"search\":\"\xF5\x80\x80\x80\"}", "invalid UTF-8");
    REFUSED("{\"search\":\"\xFF\"}", "invalid UTF-8");
    REFUSED("{\"search\":\"a\x80\"}", "invalid UTF-8");
    REFUSED("{\"search\":\"\xE2\x82\"}", "invalid UTF-8");
    /* keys too, with the path of the object */
    REFUSED("{\"params\":{\"\xC0\xAF\":1}}", "invalid UTF-8 in a key in params");
    /* arrays in the path */
    REFUSED("[{\"a\":1},{\"params\":{\"arguments\":{\"q\":[\"ok\",\"\xED\xA0\x80\"]}}}]",
            "[1].params.arguments.q[1]");
}
END_TEST

START_TEST(utf8_escapes_of_surrogates)
{
    REFUSED("{\"s\":\"\\ud800\"}", "high surrogate");
    REFUSED("{\"s\":\"\\uD800x\"}", "high surrogate");
    REFUSED("{\"s\":\"\\ud800\\u0041\"}", "high surrogate");
    REFUSED("{\"s\":\"\\udc00\"}", "lone low surrogate");
    REFUSED("{\"s\":\"\\ud800\\ud800\"}", "high surrogate");
    /* a proper pair decodes to U+1F600 */
    char err[256];
    const char ok[] = "{\"s\":\"\\ud83d\\ude00\"}";
    yajl_val v = try_parse(ok, sizeof ok - 1, err, sizeof err);
    ck_assert_msg(v != NULL, "%s", err);
    ck_assert_str_eq(json_get_str(v, "s"), "\xF0\x9F\x98\x80");
    yajl_tree_free(v);
    /* an escaped backslash before "udc00" is not an escape */
    const char lit[] = "{\"s\":\"\\\\udc00\"}";
    v = try_parse(lit, sizeof lit - 1, err, sizeof err);
    ck_assert_msg(v != NULL, "%s", err);
    ck_assert_str_eq(json_get_str(v, "s"), "\\udc00");
    yajl_tree_free(v);
}
END_TEST

START_TEST(utf8_valid_accepted)
{
    char err[256];
    const char ok[] =
        "{\"s\":\"h\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF \xEE\x80\x80"
        " \xED\x9F\xBF\",\"k\xC3\xA9\":\"\\u00e9\"}";
    yajl_val v = try_parse(ok, sizeof ok - 1, err, sizeof err);
    ck_assert_msg(v != NULL, "%s", err);
    ck_assert_str_eq(json_get_str(v, "k\xC3\xA9"), "\xC3\xA9");
    yajl_tree_free(v);
    ck_assert(json_utf8_valid("", 0));
    ck_assert(json_utf8_valid("plain ascii longer than eight", 29));
    ck_assert(!json_utf8_valid("plain ascii \xC0\xAF longer", 20));
}
END_TEST

START_TEST(nul_refused_with_path)
{
    /* finding 4: "x\u0000' OR 1=1--" used to become "x" */
    REFUSED("{\"params\":{\"arguments\":{\"client_id\":\"x\\u0000' OR 1=1--\"}}}",
            "params.arguments.client_id: NUL character (\\u0000) not allowed in strings");
    REFUSED("{\"a\":[\"\\u0000abc\"]}", "a[0]: NUL");
    REFUSED("{\"a\\u0000b\":1}", "NUL character (\\u0000) not allowed in keys");
    /* a raw NUL byte in the text */
    refused("{\"a\":\"x\0y\"}", 11, "NUL byte");
}
END_TEST

START_TEST(nul_kept_on_request)
{
    char err[256];
    bool had = false;
    const char s[] = "{\"jsonrpc\":\"2.0\",\"id\":7,\"params\":{\"arguments\":{\"confirm\":"
                     "\"C1\\u0000junk\",\"b\":\"\\u0000\"}}}";
    yajl_val v = json_parse_ex(s, sizeof s - 1, 16, 1024, JSON_KEEP_NUL, &had, err, sizeof err);
    ck_assert_msg(v != NULL, "%s", err);
    ck_assert(had);
    ck_assert_str_eq(err,
                     "params.arguments.confirm: NUL character (\\u0000) not allowed in strings");
    long long id = 0;
    ck_assert(json_get_int(v, "id", &id) && id == 7);
    yajl_tree_free(v);
    /* invalid UTF-8 is never kept */
    const char bad[] = "{\"id\":1,\"s\":\"\\u0000\",\"t\":\"\xC0\xAF\"}";
    v = json_parse_ex(bad, sizeof bad - 1, 16, 1024, JSON_KEEP_NUL, &had, err, sizeof err);
    ck_assert(v == NULL);
    ck_assert_msg(strstr(err, "invalid UTF-8") != NULL, "%s", err);
    /* no NUL: had stays false */
    const char good[] = "{\"id\":1}";
    v = json_parse_ex(good, sizeof good - 1, 16, 1024, JSON_KEEP_NUL, &had, err, sizeof err);
    ck_assert(v != NULL && !had);
    yajl_tree_free(v);
}
END_TEST

START_TEST(tree_shape)
{
    char err[256];
    const char s[] =
        "{\"i\":-12,\"big\":123456789012345678901234,\"d\":1.5e3,\"t\":true,\"f\":false,"
        "\"n\":null,\"a\":[1,[2,{}],\"x\"],\"o\":{\"z\":1,\"y\":2}, /* c */ \"e\":\"\"}";
    yajl_val v = try_parse(s, sizeof s - 1, err, sizeof err);
    ck_assert_msg(v != NULL, "%s", err);
    long long i = 0;
    ck_assert(json_get_int(v, "i", &i) && i == -12);
    yajl_val big = json_get(v, "big");
    ck_assert(big && big->type == yajl_t_number && !(big->u.number.flags & YAJL_NUMBER_INT_VALID));
    ck_assert(big->u.number.flags & YAJL_NUMBER_DOUBLE_VALID);
    yajl_val d = json_get(v, "d");
    ck_assert(d && (d->u.number.flags & YAJL_NUMBER_DOUBLE_VALID) && d->u.number.d == 1500.0);
    ck_assert(!(d->u.number.flags & YAJL_NUMBER_INT_VALID));
    ck_assert_str_eq(d->u.number.r, "1.5e3");
    ck_assert(json_get_bool(v, "t", false) && !json_get_bool(v, "f", true));
    ck_assert(json_get(v, "n")->type == yajl_t_null);
    yajl_val a = json_get_arr(v, "a");
    ck_assert(a && a->u.array.len == 3 && a->u.array.values[1]->u.array.len == 2);
    yajl_val o = json_get_obj(v, "o");
    ck_assert(o && o->u.object.len == 2);
    ck_assert_str_eq(o->u.object.keys[0], "z");
    ck_assert_str_eq(json_get_str(v, "e"), "");
    struct jbuf b;
    jbuf_init(&b);
    json_val(&b, a);
    ck_assert_str_eq(jbuf_cstr(&b), "[1,[2,{}],\"x\"]");
    jbuf_free(&b);
    yajl_tree_free(v);
    /* many elements (growth) */
    struct jbuf t;
    jbuf_init(&t);
    jbuf_putc(&t, '[');
    for (int k = 0; k < 1000; k++)
        jbuf_printf(&t, "%s%d", k ? "," : "", k);
    jbuf_putc(&t, ']');
    v = json_parse(t.p, t.len, 4, 64, err, sizeof err);
    ck_assert_msg(v != NULL, "%s", err);
    ck_assert(v->u.array.len == 1000 && v->u.array.values[999]->u.number.i == 999);
    yajl_tree_free(v);
    jbuf_free(&t);
    /* syntax errors, limits, trailing garbage */
    REFUSED("{\"a\":", "");
    REFUSED("{\"a\":1} x", "");
    refused("[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]", 37, "nesting deeper than 16");
}
END_TEST

Suite *unit_suite(void)
{
    Suite *s = suite_create("json");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, utf8_overlong_and_surrogates_refused);
    tcase_add_test(tc, utf8_escapes_of_surrogates);
    tcase_add_test(tc, utf8_valid_accepted);
    tcase_add_test(tc, nul_refused_with_path);
    tcase_add_test(tc, nul_kept_on_request);
    tcase_add_test(tc, tree_shape);
    suite_add_tcase(s, tc);
    return s;
}
