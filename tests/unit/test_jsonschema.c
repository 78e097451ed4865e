/* test_jsonschema.c - the JSON Schema validator: every keyword valid and invalid, error texts,
 * compile errors, $ref recursion, and hostile input (depth, big arrays). */
#include <check.h>

#include "unit.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_tree.h>

#include "jsonschema.h"

static char err[512];

/* Compiles schema (must succeed), validates instance; returns the verdict, message in err. */
static int check(const char *schema, const char *instance)
{
    char cerr[256];
    struct jsonschema *s = jsonschema_compile(schema, cerr, sizeof(cerr));
    ck_assert_msg(s != NULL, "compile %s: %s", schema, cerr);
    char perr[128];
    yajl_val v = yajl_tree_parse(instance, perr, sizeof(perr));
    ck_assert_msg(v != NULL, "instance %s: %s", instance, perr);
    int rc = jsonschema_validate(s, v, err, sizeof(err));
    if (rc == 0)
        ck_assert_str_eq(err, "");
    else
        ck_assert_int_gt((int)strlen(err), 0);
    /* The verdict must not depend on whether a message is wanted. */
    ck_assert_int_eq(jsonschema_validate(s, v, NULL, 0), rc);
    yajl_tree_free(v);
    jsonschema_free(s);
    return rc;
}

#define OK(schema, inst)  ck_assert_msg(check(schema, inst) == 0, "%s ~ %s: %s", schema, inst, err)
#define BAD(schema, inst) ck_assert_msg(check(schema, inst) == -1, "%s ~ %s accepted", schema, inst)
#define BADMSG(schema, inst, msg)                                                                  \
    do {                                                                                           \
        BAD(schema, inst);                                                                         \
        ck_assert_str_eq(err, msg);                                                                \
    } while (0)

static void compile_fails(const char *schema, const char *fragment)
{
    char cerr[256];
    struct jsonschema *s = jsonschema_compile(schema, cerr, sizeof(cerr));
    ck_assert_msg(s == NULL, "%s compiled", schema);
    ck_assert_msg(strstr(cerr, fragment) != NULL, "%s: got \"%s\", want \"%s\"", schema, cerr,
                  fragment);
}

START_TEST(types)
{
    OK("{\"type\":\"string\"}", "\"x\"");
    BADMSG("{\"type\":\"string\"}", "1", "arguments: expected string, got integer");
    OK("{\"type\":\"integer\"}", "3");
    OK("{\"type\":\"integer\"}", "3.0");
    OK("{\"type\":\"integer\"}", "1e2");
    OK("{\"type\":\"integer\"}", "-9223372036854775808");
    OK("{\"type\":\"integer\"}", "123456789012345678901234567890");
    BADMSG("{\"type\":\"integer\"}", "3.5", "arguments: expected integer, got number");
    BAD("{\"type\":\"integer\"}", "\"3\"");
    OK("{\"type\":\"number\"}", "3");
    OK("{\"type\":\"number\"}", "3.25");
    BAD("{\"type\":\"number\"}", "true");
    OK("{\"type\":\"boolean\"}", "false");
    BAD("{\"type\":\"boolean\"}", "0");
    OK("{\"type\":\"null\"}", "null");
    BAD("{\"type\":\"null\"}", "false");
    OK("{\"type\":\"array\"}", "[]");
    BAD("{\"type\":\"array\"}", "{}");
    OK("{\"type\":\"object\"}", "{}");
    BADMSG("{\"type\":\"object\"}", "[]", "arguments: expected object, got array");
    OK("{\"type\":[\"string\",\"null\"]}", "null");
    OK("{\"type\":[\"string\",\"null\"]}", "\"a\"");
    BADMSG("{\"type\":[\"string\",\"null\"]}", "1.5",
           "arguments: expected null or string, got number");
    OK("{}", "[1,{\"a\":null}]");
    OK("true", "1");
    BADMSG("false", "1", "arguments: no value is allowed here");
}
END_TEST

START_TEST(properties_required_additional)
{
    const char *s = "{\"type\":\"object\",\"properties\":{\"client_id\":{\"type\":\"string\"},"
                    "\"limit\":{\"type\":\"integer\"}},\"required\":[\"client_id\"]}";
    OK(s, "{\"client_id\":\"c1\"}");
    OK(s, "{\"client_id\":\"c1\",\"limit\":5,\"other\":[1]}");
    BADMSG(s, "{}", "arguments: missing required property \"client_id\"");
    BADMSG(s, "{\"client_id\":\"c\",\"limit\":\"5\"}",
           "arguments.limit: expected integer, got string");
    const char *closed = "{\"type\":\"object\",\"properties\":{\"a\":{}},"
                         "\"additionalProperties\":false}";
    OK(closed, "{\"a\":1}");
    BADMSG(closed, "{\"a\":1,\"b\":2}", "arguments: additional property \"b\" is not allowed");
    const char *typed =
        "{\"properties\":{\"a\":{}},\"additionalProperties\":{\"type\":\"number\"}}";
    OK(typed, "{\"a\":\"x\",\"b\":2}");
    BADMSG(typed, "{\"b\":\"2\"}", "arguments.b: expected number, got string");
    /* Paths for keys that are not identifiers. */
    BADMSG("{\"additionalProperties\":{\"type\":\"string\"}}", "{\"a b\":1}",
           "arguments[\"a b\"]: expected string, got integer");
    /* NULL instance = absent arguments = {} */
    char e[128];
    struct jsonschema *js = jsonschema_compile(s, e, sizeof(e));
    ck_assert_ptr_nonnull(js);
    ck_assert_int_eq(jsonschema_validate(js, NULL, e, sizeof(e)), -1);
    ck_assert_str_eq(e, "arguments: missing required property \"client_id\"");
    ck_assert_int_eq(jsonschema_validate_at(js, NULL, "structuredContent", e, sizeof(e)), -1);
    ck_assert_str_eq(e, "structuredContent: missing required property \"client_id\"");
    jsonschema_free(js);
    struct jsonschema *empty =
        jsonschema_compile("{\"type\":\"object\",\"additionalProperties\":false}", e, sizeof(e));
    ck_assert_int_eq(jsonschema_validate(empty, NULL, e, sizeof(e)), 0);
    jsonschema_free(empty);
}
END_TEST

START_TEST(object_extras)
{
    const char *pp = "{\"patternProperties\":{\"^x_\":{\"type\":\"integer\"}},"
                     "\"additionalProperties\":false}";
    OK(pp, "{\"x_a\":1}");
    BADMSG(pp, "{\"x_a\":\"1\"}", "arguments.x_a: expected integer, got string");
    BAD(pp, "{\"y\":1}");
    OK("{\"propertyNames\":{\"maxLength\":3}}", "{\"abc\":1}");
    BADMSG("{\"propertyNames\":{\"maxLength\":3}}", "{\"abcd\":1}",
           "arguments: property name \"abcd\" does not match propertyNames");
    OK("{\"minProperties\":1,\"maxProperties\":2}", "{\"a\":1}");
    BADMSG("{\"minProperties\":1}", "{}", "arguments: must have at least 1 properties");
    BADMSG("{\"maxProperties\":1}", "{\"a\":1,\"b\":2}",
           "arguments: must have at most 1 properties");
    const char *dr = "{\"dependentRequired\":{\"start\":[\"end\"]}}";
    OK(dr, "{}");
    OK(dr, "{\"start\":1,\"end\":2}");
    BADMSG(dr, "{\"start\":1}", "arguments: property \"start\" requires property \"end\"");
}
END_TEST

START_TEST(enum_const)
{
    const char *e = "{\"enum\":[\"low\",\"medium\",\"high\",null,1]}";
    OK(e, "\"low\"");
    OK(e, "null");
    OK(e, "1.0");
    BADMSG(e, "\"urgent\"", "arguments: must be one of \"low\", \"medium\", \"high\", null, 1");
    OK("{\"enum\":[{\"a\":[1,2],\"b\":true}]}", "{\"b\":true,\"a\":[1,2]}");
    BAD("{\"enum\":[{\"a\":[1,2]}]}", "{\"a\":[2,1]}");
    OK("{\"const\":\"x\"}", "\"x\"");
    BADMSG("{\"const\":\"x\"}", "\"y\"", "arguments: must be equal to \"x\"");
    OK("{\"const\":null}", "null");
    BAD("{\"const\":null}", "false");
    BAD("{\"const\":0}", "false");
}
END_TEST

START_TEST(numbers)
{
    OK("{\"minimum\":1,\"maximum\":100}", "1");
    OK("{\"minimum\":1,\"maximum\":100}", "100");
    BADMSG("{\"minimum\":1}", "0", "arguments: must be >= 1");
    BADMSG("{\"maximum\":100}", "100.5", "arguments: must be <= 100");
    BADMSG("{\"exclusiveMinimum\":0}", "0", "arguments: must be > 0");
    OK("{\"exclusiveMinimum\":0}", "0.001");
    BADMSG("{\"exclusiveMaximum\":1.5}", "1.5", "arguments: must be < 1.5");
    OK("{\"exclusiveMaximum\":1.5}", "1.49");
    OK("{\"maximum\":9223372036854775807}", "9223372036854775807");
    BAD("{\"maximum\":9223372036854775806}", "9223372036854775807");
    OK("{\"minimum\":0}", "\"not a number: ignored\"");
    OK("{\"multipleOf\":5}", "25");
    BADMSG("{\"multipleOf\":5}", "26", "arguments: must be a multiple of 5");
    OK("{\"multipleOf\":0.1}", "0.3");
    BAD("{\"multipleOf\":0.1}", "0.35");
    OK("{\"multipleOf\":0.01}", "19.99");
}
END_TEST

START_TEST(strings)
{
    OK("{\"minLength\":2,\"maxLength\":3}", "\"ab\"");
    BADMSG("{\"minLength\":2}", "\"a\"", "arguments: must be at least 2 characters long");
    BADMSG("{\"maxLength\":3}", "\"abcd\"", "arguments: must be at most 3 characters long");
    /* code points, not bytes: "héé" is 3 characters in 5 bytes; one emoji is one. */
    OK("{\"maxLength\":3}", "\"h\\u00e9\\u00e9\"");
    OK("{\"maxLength\":3}", "\"h\xc3\xa9\xc3\xa9\"");
    OK("{\"maxLength\":1,\"minLength\":1}", "\"\\ud83d\\ude00\"");
    BAD("{\"minLength\":4}", "\"h\xc3\xa9\xc3\xa9\"");
    OK("{\"maxLength\":0}", "5");
}
END_TEST

START_TEST(patterns)
{
    OK("{\"pattern\":\"^[A-Z]{3}$\"}", "\"USD\"");
    BADMSG("{\"pattern\":\"^[A-Z]{3}$\"}", "\"usd\"",
           "arguments: does not match pattern \"^[A-Z]{3}$\"");
    /* unanchored: a match anywhere */
    OK("{\"pattern\":\"b+\"}", "\"abbc\"");
    BAD("{\"pattern\":\"b+\"}", "\"ac\"");
    /* ECMA escapes translated to POSIX */
    OK("{\"pattern\":\"^\\\\d{4}-\\\\d{2}$\"}", "\"2024-05\"");
    BAD("{\"pattern\":\"^\\\\d{4}$\"}", "\"20x4\"");
    OK("{\"pattern\":\"^\\\\w+@\\\\w+\\\\.com$\"}", "\"a_b@c.com\"");
    BAD("{\"pattern\":\"^\\\\w+\\\\.com$\"}", "\"abXcom\"");
    OK("{\"pattern\":\"^\\\\S+\\\\s\\\\S+$\"}", "\"a b\"");
    BAD("{\"pattern\":\"^\\\\D$\"}", "\"1\"");
    OK("{\"pattern\":\"^[\\\\w.-]+$\"}", "\"a-b.c_d\"");
    BAD("{\"pattern\":\"^[\\\\w.-]+$\"}", "\"a b\"");
    OK("{\"pattern\":\"^[\\\\]\\\\[]+$\"}", "\"][\"");
    OK("{\"pattern\":\"^[\\\\^]$\"}", "\"^\"");
    BAD("{\"pattern\":\"^[\\\\^]$\"}", "\"a\"");
    OK("{\"pattern\":\"^[^-]$\"}", "\"a\"");
    BAD("{\"pattern\":\"^[^-]$\"}", "\"-\"");
    OK("{\"pattern\":\"^(?:ab)+$\"}", "\"abab\"");
    OK("{\"pattern\":\"^a+?b$\"}", "\"aab\"");
    OK("{\"pattern\":\"^\\\\u00e9$\"}", "\"\xc3\xa9\"");
    OK("{\"pattern\":\"^a\\\\.b$\"}", "\"a.b\"");
    BAD("{\"pattern\":\"^a\\\\.b$\"}", "\"axb\"");
    OK("{\"pattern\":\"^x{2,3}$\"}", "\"xxx\"");
    BAD("{\"pattern\":\"^x{2,3}$\"}", "\"xxxx\"");
    OK("{\"pattern\":\"^{id}$\"}", "\"{id}\""); /* ECMA Annex B: a brace that is no quantifier */
    compile_fails("{\"pattern\":\"a++\"}", "nothing to repeat");
    compile_fails("{\"pattern\":\"*a\"}", "nothing to repeat");
    compile_fails("{\"pattern\":\"(|+)\"}", "nothing to repeat");
    compile_fails("{\"pattern\":\"a{1001}\"}", "repetition count too large");
    /* found by the fuzzer: nested counted repetition made regcomp allocate gigabytes */
    compile_fails("{\"pattern\":\"((a{100}){100}){100}\"}", "pattern too large");
    compile_fails("{\"pattern\":\"(?=a)\"}", "lookaround");
    compile_fails("{\"pattern\":\"(a)\\\\1\"}", "unsupported escape");
    compile_fails("{\"pattern\":\"[a\"}", "unterminated character class");
    compile_fails("{\"pattern\":\"a(\"}", "does not compile");
    compile_fails("{\"properties\":{\"p\":{\"pattern\":\"(?<n>a)\"}}}", "#/properties/p: pattern");
}
END_TEST

/* "^[class]{m,n}$" patterns skip regexec; wrapped in "(?:...)" they take the regex path: the
 * verdicts must agree on every input. */
START_TEST(pattern_fast_path_agrees)
{
    static const char *const pats[] = {
        "^[A-Za-z0-9_.-]{1,64}$", "^[a-z]+$",    "^[\\\\w-]*$",  "^[0-9]{3}$",    "^[A-Z]{2,}$",
        "^[\\\\d.]{1,3}$",        "^[\\\\-a]+$", "^[+*?]{0,2}$", "^[a-c\\\\]]+$",
    };
    static const char *const strs[] = {
        "",  "a",        "abc", "ABC", "a-b_c.d", "123",  "1234",     "1.2", "-a-",
        "+", "+*?",      "]",   "a]",  "a b",     "a\\n", "\xc3\xa9", "aé",  "ab-",
        "Z", "__init__", "a.b", "99",  "12.34.5", "AB",   "A",        "c]b",
    };
    char a[128], b[128];
    for (size_t i = 0; i < sizeof(pats) / sizeof(pats[0]); i++) {
        snprintf(a, sizeof(a), "{\"pattern\":\"%s\"}", pats[i]);
        snprintf(b, sizeof(b), "{\"pattern\":\"(?:%s)\"}", pats[i]);
        for (size_t j = 0; j < sizeof(strs) / sizeof(strs[0]); j++) {
            char inst[64];
            snprintf(inst, sizeof(inst), "\"%s\"", strs[j]);
            int fast = check(a, inst), slow = check(b, inst);
            ck_assert_msg(fast == slow, "%s on %s: fast %d, regex %d", pats[i], inst, fast, slow);
        }
    }
    /* and the obvious ones */
    OK("{\"pattern\":\"^[A-Za-z0-9_.-]{1,64}$\"}", "\"cs_1700000000_acme-corp\"");
    BAD("{\"pattern\":\"^[A-Za-z0-9_.-]{1,64}$\"}", "\"\"");
    BAD("{\"pattern\":\"^[a-z]{2}$\"}", "\"abc\"");
    BAD("{\"pattern\":\"^[a-z]+$\"}", "\"ab\\nc\"");
}
END_TEST

START_TEST(formats)
{
    const char *d = "{\"format\":\"date\"}";
    OK(d, "\"2024-02-29\"");
    BADMSG(d, "\"2023-02-29\"", "arguments: does not match format date");
    BAD(d, "\"2024-13-01\"");
    BAD(d, "\"2024-1-01\"");
    BAD(d, "\"2024-01-01T00:00:00Z\"");
    const char *dt = "{\"format\":\"date-time\"}";
    OK(dt, "\"2024-05-01T12:30:00Z\"");
    OK(dt, "\"2024-05-01t12:30:00.123456+02:00\"");
    OK(dt, "\"1990-12-31T23:59:60Z\"");
    OK(dt, "\"1990-12-31T15:59:60-08:00\"");
    BAD(dt, "\"1990-12-31T23:58:60Z\"");
    BAD(dt, "\"2024-05-01T12:30:00\"");
    BAD(dt, "\"2024-05-01 12:30:00Z\"");
    BAD(dt, "\"2024-05-01T24:00:00Z\"");
    BAD(dt, "\"2024-05-01T12:30:00.Z\"");
    BAD(dt, "\"2024-05-01\"");
    OK("{\"format\":\"time\"}", "\"08:30:00+01:00\"");
    BAD("{\"format\":\"time\"}", "\"08:30\"");
    const char *em = "{\"format\":\"email\"}";
    OK(em, "\"jane.doe+cs@example.co.uk\"");
    OK(em, "\"a@localhost\"");
    BADMSG(em, "\"jane@\"", "arguments: does not match format email");
    BAD(em, "\"@example.com\"");
    BAD(em, "\"jane..doe@example.com\"");
    BAD(em, "\"jane doe@example.com\"");
    BAD(em, "\"jane@-example.com\"");
    BAD(em, "\"jane@example.com.\"");
    const char *u = "{\"format\":\"uuid\"}";
    OK(u, "\"123e4567-e89b-12d3-a456-426614174000\"");
    OK(u, "\"123E4567-E89B-12D3-A456-426614174000\"");
    BADMSG(u, "\"123e4567e89b12d3a456426614174000\"", "arguments: does not match format uuid");
    BAD(u, "\"123e4567-e89b-12d3-a456-42661417400g\"");
    BAD(u, "\"123e4567-e89b-12d3-a456-4266141740000\"");
    OK("{\"format\":\"ipv4\"}", "\"192.168.0.1\"");
    BAD("{\"format\":\"ipv4\"}", "\"192.168.0.01\"");
    BAD("{\"format\":\"ipv4\"}", "\"256.1.1.1\"");
    OK("{\"format\":\"ipv6\"}", "\"::1\"");
    BAD("{\"format\":\"ipv6\"}", "\"::g\"");
    /* unknown formats are annotations; formats apply to strings only */
    OK("{\"format\":\"hostname-ish\"}", "\"??\"");
    OK(d, "20240501");
}
END_TEST

START_TEST(arrays)
{
    const char *s = "{\"type\":\"array\",\"items\":{\"type\":\"integer\"},\"minItems\":1,"
                    "\"maxItems\":3}";
    OK(s, "[1,2,3]");
    BADMSG(s, "[]", "arguments: must have at least 1 items");
    BADMSG(s, "[1,2,3,4]", "arguments: must have at most 3 items");
    BADMSG(s, "[1,\"2\"]", "arguments[1]: expected integer, got string");
    OK("{\"uniqueItems\":true}", "[1,2,\"1\",[1],{\"a\":1}]");
    BADMSG("{\"uniqueItems\":true}", "[1,2,1.0]",
           "arguments: items must be unique (items 0 and 2 are equal)");
    BAD("{\"uniqueItems\":true}", "[{\"a\":1,\"b\":2},{\"b\":2,\"a\":1}]");
    OK("{\"uniqueItems\":false}", "[1,1]");
    const char *t = "{\"prefixItems\":[{\"type\":\"string\"},{\"type\":\"integer\"}],"
                    "\"items\":false}";
    OK(t, "[\"a\",1]");
    OK(t, "[\"a\"]");
    BADMSG(t, "[\"a\",\"b\"]", "arguments[1]: expected integer, got string");
    BADMSG(t, "[\"a\",1,2]", "arguments: must have at most 2 items");
    const char *t7 = "{\"items\":[{\"type\":\"string\"}],\"additionalItems\":{\"type\":\"null\"}}";
    OK(t7, "[\"a\",null,null]");
    BAD(t7, "[\"a\",1]");
    OK("{\"contains\":{\"const\":3}}", "[1,3]");
    BADMSG("{\"contains\":{\"const\":3}}", "[1,2]",
           "arguments: must contain at least one item matching the contains schema");
}
END_TEST

START_TEST(unique_large)
{
    /* 2000 distinct items go through the hashed path; then one duplicate far apart. */
    size_t cap = 2000 * 16 + 64;
    char *buf = malloc(cap);
    size_t w = 0;
    buf[w++] = '[';
    for (int i = 0; i < 2000; i++)
        w += (size_t)snprintf(buf + w, cap - w, "%s{\"k\":%d}", i ? "," : "", i);
    strcpy(buf + w, "]");
    OK("{\"uniqueItems\":true}", buf);
    strcpy(buf + w, ",{\"k\":7}]");
    BADMSG("{\"uniqueItems\":true}", buf,
           "arguments: items must be unique (items 7 and 2000 are equal)");
    free(buf);
    /* the hashed path treats -0 and 0, 1 and 1.0 as equal, like the pairwise one */
    BADMSG("{\"uniqueItems\":true}", "[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,0,-0.0]",
           "arguments: items must be unique (items 17 and 18 are equal)");
    BAD("{\"uniqueItems\":true}", "[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18.0,18]");
}
END_TEST

/* Two big objects with the same members in opposite order: equal, through the sorted comparison
 * (objects over 16 members). Kept at 3 000 members: yajl_tree grows an object's arrays one
 * member at a time, which ASan's realloc makes quadratic. */
START_TEST(unique_big_objects)
{
    enum { K = 3000 };
    size_t cap = (size_t)K * 2 * 24 + 64;
    char *buf = malloc(cap);
    size_t w = 0;
    w += (size_t)snprintf(buf + w, cap - w, "[{");
    for (int i = 0; i < K; i++)
        w += (size_t)snprintf(buf + w, cap - w, "%s\"k%d\":%d", i ? "," : "", i, i);
    w += (size_t)snprintf(buf + w, cap - w, "},{");
    for (int i = K - 1; i >= 0; i--)
        w += (size_t)snprintf(buf + w, cap - w, "\"k%d\":%d%s", i, i, i ? "," : "");
    snprintf(buf + w, cap - w, "}]");
    BADMSG("{\"uniqueItems\":true}", buf,
           "arguments: items must be unique (items 0 and 1 are equal)");
    /* one value differs: not equal */
    char *p = strstr(buf + 10, "\"k123\":123,");
    ck_assert_ptr_nonnull(p);
    p[7] = '4';
    OK("{\"uniqueItems\":true}", buf);
    free(buf);
}
END_TEST

START_TEST(combinators)
{
    const char *any = "{\"anyOf\":[{\"type\":\"string\",\"format\":\"date\"},{\"type\":\"null\"}]}";
    OK(any, "null");
    OK(any, "\"2024-01-01\"");
    BADMSG(any, "3", "arguments: does not match any schema in anyOf");
    const char *deep = "{\"properties\":{\"x\":{\"anyOf\":[{\"type\":\"object\",\"properties\":"
                       "{\"n\":{\"type\":\"integer\"}}},{\"type\":\"string\"}]}}}";
    BADMSG(deep, "{\"x\":{\"n\":\"1\"}}",
           "arguments.x: does not match any schema in anyOf (closest: arguments.x.n: expected "
           "integer, got string)");
    const char *one = "{\"oneOf\":[{\"type\":\"integer\"},{\"minimum\":2}]}";
    OK(one, "1");
    OK(one, "2.5");
    BADMSG(one, "3", "arguments: matches more than one schema in oneOf (0 and 1)");
    BADMSG("{\"oneOf\":[{\"type\":\"integer\"},{\"type\":\"string\"}]}", "true",
           "arguments: does not match any schema in oneOf");
    const char *all = "{\"allOf\":[{\"minimum\":1},{\"maximum\":3}]}";
    OK(all, "2");
    BADMSG(all, "4", "arguments: must be <= 3");
    OK("{\"not\":{\"type\":\"string\"}}", "1");
    BADMSG("{\"not\":{\"type\":\"string\"}}", "\"s\"",
           "arguments: must not match the schema in not");
    const char *ite = "{\"if\":{\"properties\":{\"kind\":{\"const\":\"email\"}}},"
                      "\"then\":{\"required\":[\"address\"]},\"else\":{\"required\":[\"phone\"]}}";
    OK(ite, "{\"kind\":\"email\",\"address\":\"a@b\"}");
    BADMSG(ite, "{\"kind\":\"email\"}", "arguments: missing required property \"address\"");
    OK(ite, "{\"kind\":\"sms\",\"phone\":\"1\"}");
    BAD(ite, "{\"kind\":\"sms\"}");
}
END_TEST

START_TEST(refs)
{
    /* The conformance suite's json-schema-2020-12 fixture shape. */
    const char *s =
        "{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\",\"type\":\"object\","
        "\"$defs\":{\"address\":{\"type\":\"object\",\"properties\":{\"street\":{\"type\":"
        "\"string\"},\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}},"
        "\"properties\":{\"name\":{\"type\":\"string\"},\"address\":{\"$ref\":\"#/$defs/"
        "address\"}},\"required\":[\"name\"],\"additionalProperties\":false}";
    OK(s, "{\"name\":\"n\",\"address\":{\"city\":\"Paris\"}}");
    BADMSG(s, "{\"name\":\"n\",\"address\":{\"street\":\"x\"}}",
           "arguments.address: missing required property \"city\"");
    BADMSG(s, "{\"name\":\"n\",\"zip\":1}",
           "arguments: additional property \"zip\" is not allowed");
    const char *d7 = "{\"definitions\":{\"id\":{\"type\":\"string\",\"format\":\"uuid\"}},"
                     "\"properties\":{\"ids\":{\"items\":{\"$ref\":\"#/definitions/id\"}}}}";
    OK(d7, "{\"ids\":[\"123e4567-e89b-12d3-a456-426614174000\"]}");
    BADMSG(d7, "{\"ids\":[\"123e4567-e89b-12d3-a456-426614174000\",\"x\"]}",
           "arguments.ids[1]: does not match format uuid");
    /* recursive: a tree of nodes */
    const char *tree = "{\"$defs\":{\"node\":{\"type\":\"object\",\"properties\":{\"v\":{\"type\":"
                       "\"integer\"},\"kids\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/"
                       "node\"}}},\"required\":[\"v\"]}},\"$ref\":\"#/$defs/node\"}";
    OK(tree, "{\"v\":1,\"kids\":[{\"v\":2,\"kids\":[{\"v\":3}]}]}");
    BADMSG(tree, "{\"v\":1,\"kids\":[{\"v\":2,\"kids\":[{\"v\":\"3\"}]}]}",
           "arguments.kids[0].kids[0].v: expected integer, got string");
    /* "#" and siblings of $ref (2020-12 applies both) */
    OK("{\"properties\":{\"self\":{\"$ref\":\"#\"}},\"maxProperties\":1}", "{\"self\":{}}");
    BAD("{\"$defs\":{\"s\":{\"type\":\"string\"}},\"$ref\":\"#/$defs/s\",\"maxLength\":2}",
        "\"abc\"");
    /* pointer escapes */
    OK("{\"$defs\":{\"a/b\":{\"type\":\"string\"},\"c~d\":{\"type\":\"integer\"}},\"properties\":"
       "{\"x\":{\"$ref\":\"#/$defs/a~1b\"},\"y\":{\"$ref\":\"#/$defs/c~0d\"}}}",
       "{\"x\":\"s\",\"y\":1}");
    /* a ref cycle consuming nothing: bounded, an error rather than a crash */
    BADMSG("{\"$defs\":{\"a\":{\"$ref\":\"#/$defs/a\"}},\"$ref\":\"#/$defs/a\"}", "1",
           "arguments: value or schema nested too deeply");
    compile_fails("{\"$ref\":\"#/$defs/missing\"}", "does not resolve");
    compile_fails("{\"$ref\":\"http://example.com/s.json\"}", "only local references");
    compile_fails("{\"$ref\":\"#anchor\"}", "does not resolve");
}
END_TEST

START_TEST(annotations_and_schema_kept)
{
    OK("{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\",\"$id\":\"urn:x\","
       "\"title\":\"T\",\"description\":\"D\",\"default\":5,\"examples\":[1],\"$comment\":\"c\","
       "\"deprecated\":false,\"readOnly\":true,\"x-custom\":{\"type\":\"string\"}}",
       "1");
}
END_TEST

START_TEST(compile_errors)
{
    char e[256];
    ck_assert_ptr_null(jsonschema_compile("{\"type\":", e, sizeof(e)));
    ck_assert_msg(strncmp(e, "schema is not valid JSON", 24) == 0, "%s", e);
    ck_assert_ptr_null(jsonschema_compile("[1]", NULL, 0));
    compile_fails("[]", "a schema must be an object or a boolean");
    compile_fails("{\"type\":\"str\"}", "#: unknown type \"str\"");
    compile_fails("{\"type\":[]}", "type must not be an empty array");
    compile_fails("{\"properties\":{\"age\":{\"minimum\":\"1\"}}}",
                  "#/properties/age: minimum must be a number");
    compile_fails("{\"minLength\":-1}", "minLength must be a non-negative integer");
    compile_fails("{\"maxItems\":1.5}", "maxItems must be a non-negative integer");
    compile_fails("{\"required\":[1]}", "required must be an array of strings");
    compile_fails("{\"enum\":1}", "enum must be an array");
    compile_fails("{\"anyOf\":[]}", "anyOf must be a non-empty array of schemas");
    compile_fails("{\"multipleOf\":0}", "multipleOf must be greater than 0");
    compile_fails("{\"uniqueItems\":1}", "uniqueItems must be a boolean");
    compile_fails("{\"unevaluatedProperties\":false}", "not supported");
    compile_fails("{\"items\":{\"properties\":{\"a\":3}}}",
                  "#/items/properties/a: a schema must be an object or a boolean");
    compile_fails("{\"$defs\":{\"x\":{\"type\":1}}}", "#/$defs/x: type must be");
    /* deeply nested schemas are refused, not recursed into without bound */
    char deep[4096];
    size_t w = 0;
    for (int i = 0; i < 200; i++)
        w += (size_t)snprintf(deep + w, sizeof(deep) - w, "{\"not\":");
    w += (size_t)snprintf(deep + w, sizeof(deep) - w, "true");
    for (int i = 0; i < 200; i++)
        deep[w++] = '}';
    deep[w] = '\0';
    compile_fails(deep, "nested too deeply");
    /* a tiny err buffer is never overrun */
    char tiny[8];
    memset(tiny, 'Z', sizeof(tiny));
    ck_assert_ptr_null(jsonschema_compile("{\"type\":\"nope\"}", tiny, 4));
    ck_assert_int_eq(tiny[3], '\0');
    ck_assert_int_eq(tiny[4], 'Z');
    jsonschema_free(NULL);
}
END_TEST

START_TEST(error_buffer_and_reuse)
{
    char e[256];
    struct jsonschema *s = jsonschema_compile(
        "{\"properties\":{\"events\":{\"type\":\"array\",\"items\":{\"type\":\"object\","
        "\"properties\":{\"occurred_at\":{\"type\":\"string\",\"format\":\"date-time\"}}}}}}",
        e, sizeof(e));
    ck_assert_ptr_nonnull(s);
    yajl_val bad =
        yajl_tree_parse("{\"events\":[{},{},{},{\"occurred_at\":\"yesterday\"}]}", e, sizeof(e));
    yajl_val good =
        yajl_tree_parse("{\"events\":[{\"occurred_at\":\"2024-01-01T00:00:00Z\"}]}", e, sizeof(e));
    for (int i = 0; i < 3; i++) { /* compiled once, used many times */
        ck_assert_int_eq(jsonschema_validate(s, bad, e, sizeof(e)), -1);
        ck_assert_str_eq(e, "arguments.events[3].occurred_at: does not match format date-time");
        ck_assert_int_eq(jsonschema_validate(s, good, e, sizeof(e)), 0);
    }
    char tiny[10];
    memset(tiny, 'Z', sizeof(tiny));
    ck_assert_int_eq(jsonschema_validate(s, bad, tiny, 6), -1);
    ck_assert_int_eq(tiny[5], '\0');
    ck_assert_int_eq(tiny[6], 'Z');
    yajl_tree_free(bad);
    yajl_tree_free(good);
    jsonschema_free(s);
}
END_TEST

START_TEST(hostile_instances)
{
    /* A 100k-deep instance against a recursive schema: bounded depth error, no stack blowup. */
    const char *rec = "{\"$defs\":{\"n\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/n\"}}},"
                      "\"$ref\":\"#/$defs/n\"}";
    size_t depth = 2000;
    char *buf = malloc(depth * 2 + 1);
    memset(buf, '[', depth);
    memset(buf + depth, ']', depth);
    buf[depth * 2] = '\0';
    OK(rec, "[[[]]]");
    BADMSG(rec, "[[1]]", "arguments[0][0]: expected array, got integer");
    int rc = check(rec, buf);
    ck_assert_int_eq(rc, -1);
    ck_assert_msg(strstr(err, "nested too deeply") != NULL, "%s", err);
    free(buf);
    /* long property names and paths are cut, never overflow */
    char big[3000];
    memset(big, 'k', sizeof(big));
    memcpy(big, "{\"", 2);
    memcpy(big + sizeof(big) - 8, "\":\"x\"}", 7);
    BAD("{\"additionalProperties\":{\"type\":\"integer\"}}", big);
    ck_assert_int_lt((int)strlen(err), (int)sizeof(err));
}
END_TEST

Suite *unit_suite(void)
{
    Suite *s = suite_create("jsonschema");
    TCase *tc = tcase_create("jsonschema");

    tcase_add_test(tc, types);
    tcase_add_test(tc, properties_required_additional);
    tcase_add_test(tc, object_extras);
    tcase_add_test(tc, enum_const);
    tcase_add_test(tc, numbers);
    tcase_add_test(tc, strings);
    tcase_add_test(tc, patterns);
    tcase_add_test(tc, pattern_fast_path_agrees);
    tcase_add_test(tc, formats);
    tcase_add_test(tc, arrays);
    tcase_add_test(tc, unique_large);
    tcase_add_test(tc, unique_big_objects);
    tcase_add_test(tc, combinators);
    tcase_add_test(tc, refs);
    tcase_add_test(tc, annotations_and_schema_kept);
    tcase_add_test(tc, compile_errors);
    tcase_add_test(tc, error_buffer_and_reuse);
    tcase_add_test(tc, hostile_instances);
    suite_add_tcase(s, tc);
    return s;
}
