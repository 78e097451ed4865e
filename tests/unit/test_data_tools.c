/*
 * test_data_tools.c - the input schemas of the data tools (tool_defs[], generated from
 * worker/tools/<category>/<name>.json) accept a valid call and reject the invalid ones the SQL
 * relies on them for.
 * That every definition is complete is test_registry.c's job.
 */
#include <check.h>

#include "unit.h"
#include <stdio.h>
#include <string.h>
#include <yajl/yajl_tree.h>

#include "jsonschema.h"
#include "tool.h"

static const struct tool_def *find(const char *name)
{
    for (size_t i = 0; i < tool_defs_n; i++)
        if (strcmp(tool_defs[i].name, name) == 0)
            return &tool_defs[i];
    return NULL;
}

/* 0 valid, -1 invalid (err filled). */
static int validate(const char *tool, const char *args, char *err, size_t errlen)
{
    const struct tool_def *d = find(tool);
    ck_assert_ptr_nonnull(d);
    struct jsonschema *s = jsonschema_compile(d->input_schema, err, errlen);
    ck_assert_msg(s != NULL, "%s: %s", tool, err);
    yajl_val v = yajl_tree_parse(args, NULL, 0);
    ck_assert_ptr_nonnull(v);
    int rc = jsonschema_validate(s, v, err, errlen);
    yajl_tree_free(v);
    jsonschema_free(s);
    return rc;
}

START_TEST(input_schemas_guard_the_sql)
{
    char err[256];
    ck_assert_int_eq(validate("register_client",
                              "{\"client_name\":\"A\",\"company_name\":\"B\",\"tier\":\"starter\","
                              "\"licensed_seats\":5,\"contract_start_date\":\"2026-01-01\"}",
                              err, sizeof(err)),
                     0);
    ck_assert_int_eq(validate("register_client", "{\"client_name\":\"A\"}", err, sizeof(err)), -1);
    ck_assert_int_eq(validate("register_client",
                              "{\"client_name\":\"A\",\"company_name\":\"B\",\"tier\":\"gold\"}",
                              err, sizeof(err)),
                     -1);
    ck_assert_int_eq(
        validate("get_client_overview", "{\"client_id\":\"../etc\"}", err, sizeof(err)), -1);
    ck_assert_int_eq(validate("update_client_info",
                              "{\"client_id\":\"a\",\"updates\":{\"health_score\":1}}", err,
                              sizeof(err)),
                     -1);
    ck_assert_int_eq(validate("list_clients", "{\"limit\":1001}", err, sizeof(err)), -1);
    ck_assert_int_eq(validate("calculate_health_score",
                              "{\"client_id\":\"a\",\"lookback_period_days\":0}", err, sizeof(err)),
                     -1);
    ck_assert_int_eq(validate("ingest_usage_events", "{\"events\":[]}", err, sizeof(err)), -1);
    ck_assert_int_eq(validate("ingest_usage_events",
                              "{\"events\":[{\"event_id\":\"e\",\"client_id\":\"a\","
                              "\"occurred_at\":\"2026-01-01T00:00:00Z\",\"user\":\"u\","
                              "\"feature\":\"f\"}]}",
                              err, sizeof(err)),
                     0);
    /* neither user_id nor user */
    ck_assert_int_eq(validate("ingest_usage_events",
                              "{\"events\":[{\"event_id\":\"e\",\"client_id\":\"a\","
                              "\"occurred_at\":\"2026-01-01T00:00:00Z\",\"feature\":\"f\"}]}",
                              err, sizeof(err)),
                     -1);
}
END_TEST

START_TEST(ingest_batch_limit)
{
    /* 1001 events must be refused by the schema before any SQL runs. */
    static char buf[1100 * 120];
    size_t len = 0;
    char err[256];
    len += (size_t)snprintf(buf + len, sizeof(buf) - len, "{\"events\":[");
    for (int i = 0; i < 1001; i++)
        len += (size_t)snprintf(buf + len, sizeof(buf) - len,
                                "%s{\"event_id\":\"e%d\",\"client_id\":\"a\",\"occurred_at\":"
                                "\"2026-01-01T00:00:00Z\",\"user_id\":\"u\",\"feature\":\"f\"}",
                                i ? "," : "", i);
    snprintf(buf + len, sizeof(buf) - len, "]}");
    ck_assert_int_eq(validate("ingest_usage_events", buf, err, sizeof(err)), -1);
}
END_TEST

Suite *unit_suite(void)
{
    Suite *s = suite_create("data_tools");
    TCase *tc = tcase_create("tables");
    tcase_add_test(tc, input_schemas_guard_the_sql);
    tcase_add_test(tc, ingest_batch_limit);
    suite_add_tcase(s, tc);
    return s;
}
