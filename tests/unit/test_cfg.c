/* test_cfg.c - the configuration key table: defaults, file, environment, bounds, errors. */
#include <check.h>

#include "unit.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"

static char path[64];

static void write_conf(const char *text)
{
    FILE *f;
    strcpy(path, "/tmp/csmcp-test-cfg-XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    f = fdopen(fd, "w");
    fputs(text, f);
    fclose(f);
}

static void clear_env(void)
{
    unsetenv("CSMCP_SERVER_WORKERS");
    unsetenv("CSMCP_MCP_ALLOWED_HOSTS");
    unsetenv("CSMCP_AUTH_REQUIRED");
}

START_TEST(defaults)
{
    struct cfg c;
    char err[256];
    clear_env();
    ck_assert_int_eq(cfg_load(NULL, &c, err, sizeof(err)), 0);
    ck_assert_int_eq(c.server_workers, 4);
    ck_assert_int_eq(c.server_listen.n, 1);
    ck_assert_str_eq(c.server_listen.v[0], "127.0.0.1:8080");
    ck_assert(c.auth_required);
    ck_assert_int_eq(c.mcp_allowed_hosts.n, 3);
    ck_assert_str_eq(c.log_level, "info");
    cfg_free(&c);
}
END_TEST

START_TEST(file_values)
{
    struct cfg c;
    char err[256];
    clear_env();
    write_conf("server = {\n  workers = 7;\n  listen = [\"127.0.0.1:1\", \"127.0.0.1:2\"];\n};\n"
               "log = { level = \"debug\"; };\n");
    ck_assert_int_eq(cfg_load(path, &c, err, sizeof(err)), 0);
    ck_assert_int_eq(c.server_workers, 7);
    ck_assert_int_eq(c.server_listen.n, 2);
    ck_assert_str_eq(c.server_listen.v[1], "127.0.0.1:2");
    ck_assert_str_eq(c.log_level, "debug");
    cfg_free(&c);
    unlink(path);
}
END_TEST

START_TEST(unknown_key_names_line)
{
    struct cfg c;
    char err[512], want[128];
    clear_env();
    write_conf("server = {\n  workers = 2;\n  wokers = 3;\n};\n");
    ck_assert_int_eq(cfg_load(path, &c, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s:3: server.wokers: unknown setting", path);
    ck_assert_str_eq(err, want);
    unlink(path);
}
END_TEST

START_TEST(out_of_range)
{
    struct cfg c;
    char err[512];
    clear_env();
    write_conf("server = { workers = 0; };\n");
    ck_assert_int_eq(cfg_load(path, &c, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, ":1: server.workers: 0 is out of range [1, 256]"));
    unlink(path);
}
END_TEST

START_TEST(wrong_type_and_choice)
{
    struct cfg c;
    char err[512];
    clear_env();
    write_conf("auth = { required = \"yes\"; };\n");
    ck_assert_int_eq(cfg_load(path, &c, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "auth.required: expected true or false"));
    unlink(path);
    write_conf("log = { format = \"xml\"; };\n");
    ck_assert_int_eq(cfg_load(path, &c, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "log.format: \"xml\" is not one of the allowed values"));
    unlink(path);
}
END_TEST

START_TEST(syntax_error)
{
    struct cfg c;
    char err[512];
    clear_env();
    write_conf("server = {\n workers = ;\n};\n");
    ck_assert_int_eq(cfg_load(path, &c, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, ":2: syntax error"));
    unlink(path);
}
END_TEST

START_TEST(env_overrides_file)
{
    struct cfg c;
    char err[256];
    clear_env();
    write_conf("server = { workers = 7; };\n");
    setenv("CSMCP_SERVER_WORKERS", "3", 1);
    setenv("CSMCP_MCP_ALLOWED_HOSTS", " a.example , b.example ,", 1);
    setenv("CSMCP_AUTH_REQUIRED", "off", 1);
    ck_assert_int_eq(cfg_load(path, &c, err, sizeof(err)), 0);
    ck_assert_int_eq(c.server_workers, 3);
    ck_assert_int_eq(c.mcp_allowed_hosts.n, 2);
    ck_assert_str_eq(c.mcp_allowed_hosts.v[0], "a.example");
    ck_assert_str_eq(c.mcp_allowed_hosts.v[1], "b.example");
    ck_assert(!c.auth_required);
    cfg_free(&c);
    setenv("CSMCP_SERVER_WORKERS", "many", 1);
    ck_assert_int_eq(cfg_load(path, &c, err, sizeof(err)), -1);
    ck_assert_str_eq(
        err, "environment CSMCP_SERVER_WORKERS: server.workers: \"many\" is not an integer");
    clear_env();
    unlink(path);
}
END_TEST

START_TEST(restart_diff_and_hash)
{
    struct cfg a, b;
    char err[256], buf[256];
    clear_env();
    ck_assert_int_eq(cfg_load(NULL, &a, err, sizeof(err)), 0);
    write_conf("server = { workers = 9; listen = [\"127.0.0.1:9999\"]; };\n");
    ck_assert_int_eq(cfg_load(path, &b, err, sizeof(err)), 0);
    ck_assert_int_eq(cfg_restart_diff(&a, &b, buf, sizeof(buf)), 1);
    ck_assert_str_eq(buf, "server.listen");
    ck_assert(cfg_hash(&a) != cfg_hash(&b));
    ck_assert(cfg_hash(&a) == cfg_hash(&a));
    cfg_free(&a);
    cfg_free(&b);
    unlink(path);
}
END_TEST

START_TEST(every_key_has_doc_and_valid_default)
{
    for (size_t i = 0; i < cfg_nkeys; i++) {
        ck_assert_ptr_nonnull(cfg_keys[i].doc);
        ck_assert_int_gt((int)strlen(cfg_keys[i].doc), 10);
        ck_assert_ptr_eq(cfg_find_key(cfg_keys[i].group, cfg_keys[i].name), &cfg_keys[i]);
    }
}
END_TEST

Suite *unit_suite(void)
{
    Suite *s = suite_create("cfg");
    TCase *tc = tcase_create("cfg");

    tcase_add_test(tc, defaults);
    tcase_add_test(tc, file_values);
    tcase_add_test(tc, unknown_key_names_line);
    tcase_add_test(tc, out_of_range);
    tcase_add_test(tc, wrong_type_and_choice);
    tcase_add_test(tc, syntax_error);
    tcase_add_test(tc, env_overrides_file);
    tcase_add_test(tc, restart_diff_and_hash);
    tcase_add_test(tc, every_key_has_doc_and_valid_default);
    suite_add_tcase(s, tc);
    return s;
}
