/* test_secret.c - secret sources (env, file, $CREDENTIALS_DIRECTORY) and weak-key refusal. */
#include <check.h>

#include "unit.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "cfg.h"
#include "secret.h"

static char dir[64];

static void write_file(const char *name, const char *text, mode_t mode)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    chmod(p, mode);
}

static void setup(void)
{
    strcpy(dir, "/tmp/csmcp-test-secret-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    unsetenv("CSMCP_T_SECRET");
    unsetenv("CREDENTIALS_DIRECTORY");
}

#define STRONG "Zx8#kq2LmP9vR4tY7wB1nC6hJ3dF5gS0aE-uI_oQ"

START_TEST(env_first)
{
    char *s;
    size_t n;
    char src[128], err[256];
    setup();
    setenv("CSMCP_T_SECRET", "from-env", 1);
    write_file("f", "from-file\n", 0600);
    char p[128];
    snprintf(p, sizeof(p), "%s/f", dir);
    ck_assert_int_eq(
        secret_load("CSMCP_T_SECRET", p, NULL, &s, &n, src, sizeof(src), err, sizeof(err)), 0);
    ck_assert_str_eq(s, "from-env");
    ck_assert_str_eq(src, "environment CSMCP_T_SECRET");
    secret_free(s, n);
    unsetenv("CSMCP_T_SECRET");
    ck_assert_int_eq(
        secret_load("CSMCP_T_SECRET", p, NULL, &s, &n, src, sizeof(src), err, sizeof(err)), 0);
    ck_assert_str_eq(s, "from-file"); /* trailing newline stripped */
    ck_assert_uint_eq(n, 9);
    secret_free(s, n);
}
END_TEST

START_TEST(credentials_directory)
{
    char *s;
    size_t n;
    char err[256];
    setup();
    write_file("session.key", STRONG "\n", 0400);
    setenv("CREDENTIALS_DIRECTORY", dir, 1);
    /* relative file name resolved in $CREDENTIALS_DIRECTORY */
    ck_assert_int_eq(secret_load(NULL, "session.key", NULL, &s, &n, NULL, 0, err, sizeof(err)), 0);
    ck_assert_str_eq(s, STRONG);
    secret_free(s, n);
    /* default credential name when nothing else is configured */
    ck_assert_int_eq(
        secret_load("CSMCP_T_SECRET", "", "session.key", &s, &n, NULL, 0, err, sizeof(err)), 0);
    secret_free(s, n);
    ck_assert_int_eq(secret_load("CSMCP_T_SECRET", "", "absent", &s, &n, NULL, 0, err, sizeof(err)),
                     1);
}
END_TEST

START_TEST(file_permissions)
{
    char *s;
    size_t n;
    char err[256], p[128];
    setup();
    write_file("open", STRONG, 0644);
    snprintf(p, sizeof(p), "%s/open", dir);
    ck_assert_int_eq(secret_load(NULL, p, NULL, &s, &n, NULL, 0, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "chmod 600"));
    write_file("empty", "\n", 0600);
    snprintf(p, sizeof(p), "%s/empty", dir);
    ck_assert_int_eq(secret_load(NULL, p, NULL, &s, &n, NULL, 0, err, sizeof(err)), -1);
    ck_assert_int_eq(secret_load(NULL, "/nonexistent/x", NULL, &s, &n, NULL, 0, err, sizeof(err)),
                     -1);
}
END_TEST

START_TEST(weak_key_refused)
{
    char *s;
    size_t n;
    char err[512];
    setup();
    setenv("CSMCP_T_SECRET", "changeme", 1);
    ck_assert_int_eq(
        secret_load_key("session secret", "CSMCP_T_SECRET", NULL, NULL, &s, &n, err, sizeof(err)),
        -1);
    ck_assert_ptr_nonnull(strstr(err, "session secret"));
    ck_assert_ptr_nonnull(strstr(err, "too short"));
    ck_assert_ptr_null(strstr(err, "changeme")); /* never quotes the key */
    setenv("CSMCP_T_SECRET", "0000000000000000000000000000000000000000", 1);
    ck_assert_int_eq(
        secret_load_key("session secret", "CSMCP_T_SECRET", NULL, NULL, &s, &n, err, sizeof(err)),
        -1);
    ck_assert_ptr_nonnull(strstr(err, "entropy"));
    setenv("CSMCP_T_SECRET", STRONG, 1);
    ck_assert_int_eq(
        secret_load_key("session secret", "CSMCP_T_SECRET", NULL, NULL, &s, &n, err, sizeof(err)),
        0);
    secret_free(s, n);
    unsetenv("CSMCP_T_SECRET");
    ck_assert_int_eq(
        secret_load_key("session secret", "CSMCP_T_SECRET", NULL, NULL, &s, &n, err, sizeof(err)),
        -1);
    ck_assert_ptr_nonnull(strstr(err, "not configured"));
}
END_TEST

START_TEST(check_config)
{
    struct cfg c;
    char err[512], p[128];
    setup();
    /* scripts/dev exports the dev secret file; this test starts from none configured */
    unsetenv("CSMCP_MCP_SESSION_SECRET_FILE");
    unsetenv("CREDENTIALS_DIRECTORY");
    ck_assert_int_eq(cfg_load(NULL, &c, err, sizeof(err)), 0);
    unsetenv("CSMCP_SESSION_SECRET");
    ck_assert_int_eq(secret_check_config(&c, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "session secret"));
    setenv("CSMCP_SESSION_SECRET", "weakweakweakweakweakweakweakweakweak", 1);
    ck_assert_int_eq(secret_check_config(&c, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "refused"));
    ck_assert_ptr_null(strstr(err, "weakweak"));
    setenv("CSMCP_SESSION_SECRET", STRONG, 1);
    ck_assert_int_eq(secret_check_config(&c, err, sizeof(err)), 0);

    /* TLS files that do not exist */
    c.tls_enabled = true;
    free(c.tls_cert_file);
    free(c.tls_key_file);
    c.tls_cert_file = strdup("/nonexistent/cert.pem");
    c.tls_key_file = strdup("/nonexistent/key.pem");
    ck_assert_int_eq(secret_check_config(&c, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "tls.cert_file"));
    c.tls_enabled = false;

    /* JWKS: needs an audience, a readable file and a keys array */
    write_file("jwks.json", "{\"keys\":[{\"kty\":\"EC\"}]}", 0644);
    snprintf(p, sizeof(p), "%s/jwks.json", dir);
    free(c.auth_jwks_file);
    c.auth_jwks_file = strdup(p);
    ck_assert_int_eq(secret_check_config(&c, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "audience"));
    free(c.auth_jwt_audience);
    c.auth_jwt_audience = strdup("https://mcp.example/mcp");
    ck_assert_int_eq(secret_check_config(&c, err, sizeof(err)), 0);
    write_file("jwks.json", "{\"nokeys\":1}", 0644);
    ck_assert_int_eq(secret_check_config(&c, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "JWKS"));
    unsetenv("CSMCP_SESSION_SECRET");
    cfg_free(&c);
}
END_TEST

Suite *unit_suite(void)
{
    Suite *s = suite_create("secret");
    TCase *tc = tcase_create("secret");
    tcase_add_test(tc, env_first);
    tcase_add_test(tc, credentials_directory);
    tcase_add_test(tc, file_permissions);
    tcase_add_test(tc, weak_key_refused);
    tcase_add_test(tc, check_config);
    suite_add_tcase(s, tc);
    return s;
}
