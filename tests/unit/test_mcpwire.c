/* test_mcpwire.c - JSON helpers, JSON-RPC classification, SSE framing, session tokens. */
#include <check.h>

#include "unit.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "jsonrpc.h"
#include "session.h"
#include "sse.h"

static yajl_val parse(const char *s)
{
    char err[128];
    yajl_val v = json_parse(s, strlen(s), 16, 1024, err, sizeof err);
    ck_assert_msg(v != NULL, "parse %s: %s", s, err);
    return v;
}

START_TEST(json_string_escaping)
{
    struct jbuf b;
    jbuf_init(&b);
    json_str(&b, "a\"b\\c\n\t\x01z");
    ck_assert_str_eq(jbuf_cstr(&b), "\"a\\\"b\\\\c\\n\\t\\u0001z\"");
    jbuf_reset(&b);
    json_str(&b, NULL);
    ck_assert_str_eq(jbuf_cstr(&b), "null");
    jbuf_reset(&b);
    json_strn(&b, "h\xc3\xa9llo", 6);
    ck_assert_str_eq(jbuf_cstr(&b), "\"h\xc3\xa9llo\"");
    jbuf_free(&b);
}
END_TEST

START_TEST(json_escape_every_byte)
{
    for (int c = 0; c < 256; c++) {
        char in[3] = {'a', (char)c, 'z'}, want[16];
        if (c == '"')
            snprintf(want, sizeof want, "\"a\\\"z\"");
        else if (c == '\\')
            snprintf(want, sizeof want, "\"a\\\\z\"");
        else if (c == '\n')
            snprintf(want, sizeof want, "\"a\\nz\"");
        else if (c == '\r')
            snprintf(want, sizeof want, "\"a\\rz\"");
        else if (c == '\t')
            snprintf(want, sizeof want, "\"a\\tz\"");
        else if (c < 0x20)
            snprintf(want, sizeof want, "\"a\\u%04xz\"", c);
        else
            snprintf(want, sizeof want, "\"a%cz\"", c);
        struct jbuf b;
        jbuf_init(&b);
        jbuf_puts(&b, "x");
        json_strn(&b, in, 3);
        ck_assert_msg(strcmp(jbuf_cstr(&b) + 1, want) == 0, "byte %d: %s", c, jbuf_cstr(&b));
        ck_assert_uint_eq(b.len, strlen(want) + 1);
        jbuf_free(&b);
    }
}
END_TEST

START_TEST(json_numbers_and_printf)
{
    struct jbuf b;
    jbuf_init(&b);
    json_double(&b, 50);
    jbuf_putc(&b, ' ');
    json_double(&b, 95.5);
    jbuf_putc(&b, ' ');
    json_double(&b, INFINITY);
    jbuf_putc(&b, ' ');
    json_int(&b, -42);
    ck_assert_str_eq(jbuf_cstr(&b), "50 95.5 null -42");
    jbuf_reset(&b);
    char big[600];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    jbuf_printf(&b, "<%s>", big); /* longer than the printf fast path */
    ck_assert_uint_eq(b.len, sizeof big + 1);
    char *s = jbuf_steal(&b);
    ck_assert_int_eq(s[0], '<');
    free(s);
    ck_assert_ptr_null(b.p);
}
END_TEST

START_TEST(json_roundtrip_and_getters)
{
    const char *text = "{\"a\":[1,2.50,{\"b\":null}],\"s\":\"x\\\"y\",\"t\":true,\"n\":-7}";
    yajl_val v = parse(text);
    struct jbuf b;
    jbuf_init(&b);
    json_val(&b, v);
    ck_assert_str_eq(jbuf_cstr(&b), text); /* numbers keep their original text */
    long long n;
    ck_assert(json_get_int(v, "n", &n));
    ck_assert_int_eq(n, -7);
    ck_assert(!json_get_int(v, "s", &n));
    ck_assert_str_eq(json_get_str(v, "s"), "x\"y");
    ck_assert_ptr_null(json_get_str(v, "a"));
    ck_assert_ptr_nonnull(json_get_arr(v, "a"));
    ck_assert_ptr_null(json_get_obj(v, "a"));
    ck_assert(json_get_bool(v, "t", false));
    ck_assert(json_get_bool(v, "missing", true));
    ck_assert_ptr_null(json_get(NULL, "a"));
    jbuf_free(&b);
    yajl_tree_free(v);
}
END_TEST

START_TEST(json_parse_limits)
{
    char err[128];
    const char *deep = "[[[[[[[[[[1]]]]]]]]]]";
    ck_assert_ptr_null(json_parse(deep, strlen(deep), 5, 100, err, sizeof err));
    ck_assert_ptr_nonnull(strstr(err, "nesting"));
    yajl_val v = json_parse(deep, strlen(deep), 10, 100, err, sizeof err);
    ck_assert_ptr_nonnull(v);
    yajl_tree_free(v);
    const char *str = "{\"k\":\"0123456789\"}";
    ck_assert_ptr_null(json_parse(str, strlen(str), 5, 5, err, sizeof err));
    ck_assert_ptr_nonnull(strstr(err, "string"));
    /* brackets inside strings do not count */
    const char *q = "{\"k\":\"[[[[[[[[[[[[\"}";
    v = json_parse(q, strlen(q), 2, 100, err, sizeof err);
    ck_assert_ptr_nonnull(v);
    yajl_tree_free(v);
    ck_assert_ptr_null(json_parse("{\"a\":", 5, 5, 100, err, sizeof err));
    ck_assert_ptr_null(json_parse("{}x", 3, 5, 100, err, sizeof err));
    const char nul[] = "{\"a\":\"\0\"}";
    ck_assert_ptr_null(json_parse(nul, sizeof nul - 1, 5, 100, err, sizeof err));
}
END_TEST

START_TEST(jsonrpc_classification)
{
    struct {
        const char *text;
        enum jsonrpc_kind kind;
    } cases[] = {
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}", JSONRPC_REQUEST},
        {"{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"method\":\"x\",\"params\":{}}", JSONRPC_REQUEST},
        {"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}", JSONRPC_NOTIFICATION},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}", JSONRPC_RESPONSE},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":1,\"message\":\"m\"}}",
         JSONRPC_RESPONSE},
        {"{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"ping\"}", JSONRPC_INVALID},
        {"{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"ping\"}", JSONRPC_INVALID},
        {"{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"ping\"}", JSONRPC_INVALID},
        {"{\"id\":1,\"method\":\"ping\"}", JSONRPC_INVALID},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\"}", JSONRPC_INVALID},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"params\":3}", JSONRPC_INVALID},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{},\"error\":{}}", JSONRPC_INVALID},
        {"{\"jsonrpc\":\"2.0\",\"result\":{}}", JSONRPC_INVALID},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":5}", JSONRPC_INVALID},
        {"[1]", JSONRPC_INVALID},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        yajl_val v = parse(cases[i].text);
        struct jsonrpc_msg m;
        ck_assert_msg(jsonrpc_classify(v, &m) == cases[i].kind, "case %s", cases[i].text);
        if (m.kind == JSONRPC_INVALID)
            ck_assert_ptr_nonnull(m.why);
        yajl_tree_free(v);
    }
}
END_TEST

START_TEST(jsonrpc_writers)
{
    yajl_val v = parse("{\"jsonrpc\":\"2.0\",\"id\":\"r1\",\"method\":\"m\"}");
    struct jsonrpc_msg m;
    jsonrpc_classify(v, &m);
    struct jbuf b;
    jbuf_init(&b);
    jsonrpc_write_error(&b, m.id, -32602, "bad \"x\"", "{\"path\":\"arguments.x\"}");
    ck_assert_str_eq(jbuf_cstr(&b), "{\"jsonrpc\":\"2.0\",\"id\":\"r1\",\"error\":{\"code\":-32602,"
                                    "\"message\":\"bad \\\"x\\\"\",\"data\":{\"path\":"
                                    "\"arguments.x\"}}}");
    jbuf_reset(&b);
    jsonrpc_write_error(&b, NULL, -32700, "Parse error", NULL);
    ck_assert_str_eq(jbuf_cstr(&b), "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32700,"
                                    "\"message\":\"Parse error\"}}");
    jbuf_reset(&b);
    jsonrpc_open_result(&b, m.id);
    jbuf_puts(&b, "{}}");
    ck_assert_str_eq(jbuf_cstr(&b), "{\"jsonrpc\":\"2.0\",\"id\":\"r1\",\"result\":{}}");
    jbuf_free(&b);
    yajl_tree_free(v);
}
END_TEST

START_TEST(sse_framing)
{
    struct jbuf b;
    jbuf_init(&b);
    sse_priming(&b, "abc_0", 1000);
    sse_event(&b, "abc_1", "{}", 2);
    sse_event(&b, NULL, "[1]", 3);
    sse_comment(&b, "keepalive");
    ck_assert_str_eq(jbuf_cstr(&b), "id: abc_0\nretry: 1000\ndata: \n\n"
                                    "id: abc_1\nevent: message\ndata: {}\n\n"
                                    "event: message\ndata: [1]\n\n"
                                    ": keepalive\n\n");
    jbuf_reset(&b);
    sse_priming(&b, "x", -1);
    ck_assert_str_eq(jbuf_cstr(&b), "id: x\ndata: \n\n");
    jbuf_free(&b);
}
END_TEST

START_TEST(session_tokens)
{
    static const char key[] = "0123456789abcdef0123456789abcdef-test-key";
    ck_assert_int_eq(session_set_secret(key, sizeof key - 1), 0);
    ck_assert_int_eq(session_version_index("2025-11-25"), MCP_REV_2025_11_25);
    ck_assert_int_eq(session_version_index("2025-03-26"), MCP_REV_2025_03_26);
    ck_assert_int_eq(session_version_index("2024-11-05"), MCP_REV_2024_11_05);
    /* token values are fixed: 2025-03-26 sessions minted before this build still verify */
    ck_assert_int_eq(MCP_REV_2025_03_26, 2);
    ck_assert(mcp_rev_since(MCP_REV_2025_11_25, MCP_REV_2025_06_18));
    ck_assert(mcp_rev_since(MCP_REV_2025_06_18, MCP_REV_2025_06_18));
    ck_assert(!mcp_rev_since(MCP_REV_2025_03_26, MCP_REV_2025_06_18));
    ck_assert(!mcp_rev_since(MCP_REV_2024_11_05, MCP_REV_2025_03_26));
    ck_assert_int_eq(session_version_index("2099-01-01"), -1);
    ck_assert_int_eq(session_version_index(NULL), -1);
    char a[SESSION_ID_MAX], b[SESSION_ID_MAX];
    ck_assert_int_eq(session_mint(MCP_REV_2025_03_26, a), 0);
    ck_assert_int_eq(session_mint(MCP_REV_2025_03_26, b), 0);
    ck_assert_str_ne(a, b);
    for (const char *p = a; *p; p++)
        ck_assert(*p >= 0x21 && *p <= 0x7e);
    enum mcp_rev vi = MCP_REV_LATEST;
    int64_t created = 0;
    ck_assert(session_verify(a, &vi, &created));
    ck_assert_int_eq(vi, MCP_REV_2025_03_26);
    ck_assert_int_gt(created, 1700000000);
    /* any altered character fails */
    for (size_t i = 3; i < strlen(a); i++) {
        char t[SESSION_ID_MAX];
        strcpy(t, a);
        if (t[i] == '.')
            continue;
        t[i] = t[i] == 'A' ? 'B' : 'A';
        ck_assert_msg(!session_verify(t, &vi, &created), "altered at %zu", i);
    }
    ck_assert(!session_verify("", &vi, &created));
    ck_assert(!session_verify("v1.", &vi, &created));
    ck_assert(!session_verify("v2.xx.yy", &vi, &created));
    ck_assert(!session_verify(NULL, &vi, &created));
    /* the verified-token cache gives the same answers, twice */
    char ck[SESSION_KEY_MAX], ct[17], ek[SESSION_KEY_MAX], et[17];
    session_key(a, ek);
    session_tag(a, et);
    for (int round = 0; round < 2; round++) {
        vi = MCP_REV_LATEST;
        ck_assert(session_lookup(a, &vi, &created, ck, ct));
        ck_assert_int_eq(vi, MCP_REV_2025_03_26);
        ck_assert_str_eq(ck, ek);
        ck_assert_str_eq(ct, et);
    }
    char t2[SESSION_ID_MAX];
    strcpy(t2, a);
    t2[5] = t2[5] == 'A' ? 'B' : 'A';
    ck_assert(!session_lookup(t2, &vi, &created, ck, ct));
    ck_assert(!session_lookup(t2, &vi, &created, ck, ct));
    /* another secret does not verify it */
    static const char other[] = "fedcba9876543210fedcba9876543210-other";
    session_set_secret(other, sizeof other - 1);
    ck_assert(!session_verify(a, &vi, &created));
    ck_assert(!session_lookup(a, &vi, &created, ck, ct)); /* cache cleared with the secret */
    char k1[SESSION_KEY_MAX], k2[SESSION_KEY_MAX], t1[17];
    session_key(a, k1);
    session_key(b, k2);
    session_tag(a, t1);
    ck_assert_str_ne(k1, k2);
    ck_assert_int_eq((int)strlen(k1), 8 + 32);
    ck_assert_int_eq((int)strlen(t1), 16);
}
END_TEST

Suite *unit_suite(void)
{
    Suite *s = suite_create("mcpwire");
    TCase *tc = tcase_create("mcpwire");
    tcase_add_test(tc, json_string_escaping);
    tcase_add_test(tc, json_escape_every_byte);
    tcase_add_test(tc, json_numbers_and_printf);
    tcase_add_test(tc, json_roundtrip_and_getters);
    tcase_add_test(tc, json_parse_limits);
    tcase_add_test(tc, jsonrpc_classification);
    tcase_add_test(tc, jsonrpc_writers);
    tcase_add_test(tc, sse_framing);
    tcase_add_test(tc, session_tokens);
    suite_add_tcase(s, tc);
    return s;
}
