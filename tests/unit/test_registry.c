/*
 * test_registry.c - the tool registry (worker/registry.c over the generated tool_defs[]):
 * every definition loads and is complete, the scope and rate-limit class of a call follow its
 * "action" (action_scopes), and the declarative fixture templates and prompts expand with their
 * variables escaped.
 */
#include <check.h>

#include "unit.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_tree.h>

#include "fixtures.h"
#include "json.h"
#include "registry.h"
#include "tool.h"

static yajl_val parse(const char *s)
{
    char err[128];
    yajl_val v = json_parse(s, strlen(s), 32, 1 << 20, err, sizeof err);
    ck_assert_msg(v != NULL, "parse %s: %s", s, err);
    return v;
}

START_TEST(every_definition_loads)
{
    char err[512] = "";
    size_t fixtures = 0;
    for (size_t i = 0; i < tool_defs_n; i++)
        fixtures += tool_defs[i].fixture;
    ck_assert_msg(registry_init(false, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(registry_count(), tool_defs_n - fixtures);
    ck_assert_ptr_null(registry_find("test_simple_text"));
    ck_assert_msg(registry_init(true, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(registry_count(), tool_defs_n);
    ck_assert_ptr_nonnull(registry_find("test_simple_text"));
    for (size_t i = 0; i < registry_count(); i++) {
        const struct registry_tool *t = registry_at(i);
        const struct tool_def *d = t->def;
        ck_assert_ptr_eq(registry_find(d->name), t);
        ck_assert_ptr_nonnull(t->input);
        ck_assert_msg(d->source && d->category && strstr(d->source, d->category), "%s: source",
                      d->name);
        char want[300];
        snprintf(want, sizeof want, "worker/tools/%s/%s.json", d->category, d->name);
        ck_assert_str_eq(d->source, want);
        if (d->fixture)
            continue;
        ck_assert_msg(d->title && d->description && strlen(d->description) > 80,
                      "%s: a title and a real description", d->name);
        ck_assert_msg(d->output_schema && t->output, "%s: outputSchema", d->name);
        if (d->handler == tool_sql_handler) {
            ck_assert_msg(d->sql && strncmp(d->sql, "SELECT csmcp.", 13) == 0 &&
                              strstr(d->sql, "($1::jsonb, $2)"),
                          "%s: sql %s", d->name, d->sql ? d->sql : "(null)");
        } else {
            ck_assert_ptr_null(d->sql);
        }
        /* a read-only hint never sits on a tool that needs the write scope */
        if (d->hints & TOOL_HINT_READONLY)
            ck_assert_msg(d->scope != TOOL_SCOPE_WRITE, "%s: readOnlyHint on a write tool",
                          d->name);
    }
    registry_free();
    ck_assert_uint_eq(registry_count(), 0);
}
END_TEST

static const struct tool_action_scope ACTIONS[] = {
    {"list", TOOL_SCOPE_READ},
    {"create", TOOL_SCOPE_WRITE},
    {"purge", TOOL_SCOPE_ADMIN},
};

static const struct tool_def MIXED = {
    .name = "handle_things",
    .description = "a tool whose action mixes reads and writes",
    .input_schema = "{\"type\":\"object\"}",
    .scope = TOOL_SCOPE_WRITE,
    .action_scopes = ACTIONS,
    .n_action_scopes = 3,
};

static enum tool_scope scope_for(const struct tool_def *d, const char *args)
{
    yajl_val v = args ? parse(args) : NULL;
    enum tool_scope s = registry_required_scope(d, v);
    yajl_tree_free(v);
    return s;
}

static enum tool_rate rate_for(const struct tool_def *d, const char *args)
{
    yajl_val v = args ? parse(args) : NULL;
    enum tool_rate r = registry_rate_class(d, v);
    yajl_tree_free(v);
    return r;
}

START_TEST(scope_of_the_requested_action)
{
    ck_assert_int_eq(scope_for(&MIXED, "{\"action\":\"list\"}"), TOOL_SCOPE_READ);
    ck_assert_int_eq(scope_for(&MIXED, "{\"action\":\"create\"}"), TOOL_SCOPE_WRITE);
    ck_assert_int_eq(scope_for(&MIXED, "{\"action\":\"purge\"}"), TOOL_SCOPE_ADMIN);
    /* not listed, absent, not a string, no arguments: the tool's own scope */
    ck_assert_int_eq(scope_for(&MIXED, "{\"action\":\"update\"}"), TOOL_SCOPE_WRITE);
    ck_assert_int_eq(scope_for(&MIXED, "{\"action\":\"LIST\"}"), TOOL_SCOPE_WRITE);
    ck_assert_int_eq(scope_for(&MIXED, "{}"), TOOL_SCOPE_WRITE);
    ck_assert_int_eq(scope_for(&MIXED, "{\"action\":[\"list\"]}"), TOOL_SCOPE_WRITE);
    ck_assert_int_eq(scope_for(&MIXED, "{\"mode\":\"list\"}"), TOOL_SCOPE_WRITE);
    ck_assert_int_eq(scope_for(&MIXED, NULL), TOOL_SCOPE_WRITE);
    /* a tool without action_scopes ignores "action" */
    struct tool_def plain = MIXED;
    plain.n_action_scopes = 0;
    plain.action_scopes = NULL;
    plain.scope = TOOL_SCOPE_ADMIN;
    ck_assert_int_eq(scope_for(&plain, "{\"action\":\"list\"}"), TOOL_SCOPE_ADMIN);
}
END_TEST

START_TEST(rate_class_follows_the_effective_scope)
{
    ck_assert_int_eq(rate_for(&MIXED, "{\"action\":\"list\"}"), TOOL_RATE_READ);
    ck_assert_int_eq(rate_for(&MIXED, "{\"action\":\"create\"}"), TOOL_RATE_WRITE);
    ck_assert_int_eq(rate_for(&MIXED, "{\"action\":\"purge\"}"), TOOL_RATE_WRITE);
    ck_assert_int_eq(rate_for(&MIXED, NULL), TOOL_RATE_WRITE);
    struct tool_def d = MIXED;
    d.rate_class = TOOL_RATE_READ; /* declared: wins over the scope */
    ck_assert_int_eq(rate_for(&d, "{\"action\":\"create\"}"), TOOL_RATE_READ);
    d.rate_class = TOOL_RATE_WRITE;
    ck_assert_int_eq(rate_for(&d, "{\"action\":\"list\"}"), TOOL_RATE_WRITE);
    ck_assert_str_eq(registry_scope_name(TOOL_SCOPE_READ), "read");
    ck_assert_str_eq(registry_scope_name(TOOL_SCOPE_WRITE), "write");
    ck_assert_str_eq(registry_scope_name(TOOL_SCOPE_ADMIN), "admin");
}
END_TEST

static const struct fixture_template *template_named(const char *name)
{
    for (size_t i = 0; i < fixture_templates_n; i++)
        if (strcmp(fixture_templates[i].name, name) == 0)
            return &fixture_templates[i];
    ck_abort_msg("no template %s", name);
    return NULL;
}

static const struct fixture_prompt *prompt_named(const char *name)
{
    for (size_t i = 0; i < fixture_prompts_n; i++)
        if (strcmp(fixture_prompts[i].name, name) == 0)
            return &fixture_prompts[i];
    ck_abort_msg("no prompt %s", name);
    return NULL;
}

START_TEST(fixture_template_substitutes_escaped)
{
    const struct fixture_template *t = template_named("template");
    struct jbuf b;
    jbuf_init(&b);
    ck_assert_int_eq(t->read("test://template/42/data", &b), 0);
    yajl_val v = parse(jbuf_cstr(&b));
    ck_assert(YAJL_IS_ARRAY(v) && v->u.array.len == 1);
    yajl_val c = v->u.array.values[0];
    ck_assert_str_eq(json_get_str(c, "uri"), "test://template/42/data");
    ck_assert_str_eq(json_get_str(c, "mimeType"), "application/json");
    ck_assert_str_eq(json_get_str(c, "text"),
                     "{\"id\":\"42\",\"templateTest\":true,\"data\":\"Data for ID: 42\"}");
    yajl_tree_free(v);
    /* a quote in the id stays inside the JSON string of the contents */
    jbuf_reset(&b);
    ck_assert_int_eq(t->read("test://template/a\"b/data", &b), 0);
    v = parse(jbuf_cstr(&b));
    const char *text = json_get_str(v->u.array.values[0], "text");
    yajl_val inner = parse(text);
    ck_assert_str_eq(json_get_str(inner, "id"), "a\"b");
    yajl_tree_free(inner);
    yajl_tree_free(v);
    /* no match: other prefix or suffix, empty id, id with '/' */
    const char *bad[] = {"test://template//data", "test://template/a/b/data",
                         "test://template/a/datax", "test://other/a/data", "test://template/"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        jbuf_reset(&b);
        ck_assert_msg(t->read(bad[i], &b) == -1, "%s matched", bad[i]);
    }
    jbuf_free(&b);
}
END_TEST

START_TEST(fixture_prompt_substitutes_arguments)
{
    const struct fixture_prompt *p = prompt_named("test_prompt_with_arguments");
    char err[128] = "";
    struct jbuf b;
    jbuf_init(&b);
    yajl_val args = parse("{\"arg1\":\"x\\\"y\",\"arg2\":\"z\"}");
    ck_assert_int_eq(p->get(args, &b, err, sizeof err), 0);
    yajl_tree_free(args);
    yajl_val v = parse(jbuf_cstr(&b));
    yajl_val msgs = json_get_arr(v, "messages");
    ck_assert(msgs && msgs->u.array.len == 1);
    ck_assert_str_eq(json_get_str(json_get_obj(msgs->u.array.values[0], "content"), "text"),
                     "Prompt with arguments: arg1='x\"y', arg2='z'");
    yajl_tree_free(v);
    jbuf_reset(&b);
    args = parse("{\"arg1\":\"x\"}");
    ck_assert_int_eq(p->get(args, &b, err, sizeof err), -1);
    ck_assert_str_eq(err, "argument arg2 (string) is required");
    yajl_tree_free(args);
    jbuf_reset(&b);
    ck_assert_int_eq(p->get(NULL, &b, err, sizeof err), -1);
    /* a prompt without arguments */
    jbuf_reset(&b);
    ck_assert_int_eq(prompt_named("test_simple_prompt")->get(NULL, &b, err, sizeof err), 0);
    v = parse(jbuf_cstr(&b));
    ck_assert_ptr_nonnull(json_get_arr(v, "messages"));
    yajl_tree_free(v);
    jbuf_free(&b);
}
END_TEST

Suite *unit_suite(void)
{
    Suite *s = suite_create("registry");
    TCase *tc = tcase_create("registry");
    tcase_add_test(tc, every_definition_loads);
    tcase_add_test(tc, scope_of_the_requested_action);
    tcase_add_test(tc, rate_class_follows_the_effective_scope);
    tcase_add_test(tc, fixture_template_substitutes_escaped);
    tcase_add_test(tc, fixture_prompt_substitutes_arguments);
    suite_add_tcase(s, tc);
    return s;
}
