/*
 * ctl_db.c - csmcpctl's database commands: migrate, seed, import.
 *
 *   migrate [--migrations DIR] [--functions DIR]
 *                                        apply db/migrations/NNNN_name.sql in order, then
 *                                        each .sql below db/functions whose checksum changed
 *   seed [--accounts N]                  deterministic demo data set (csmcp.seed_demo)
 *   import usage|contacts|nps FILE [--format csv|jsonl]
 *
 * Invariants:
 *   - migrate holds a session advisory lock for its whole run, so two operators (or two hosts
 *     deploying at once) never interleave; each file runs in its own transaction together with
 *     its schema_migrations row, so a file is either fully applied and recorded or not at all;
 *     an applied file is never re-run; a file whose checksum changed since it was applied is
 *     reported (forward-only: write a new migration instead), unless the recorded checksum is
 *     listed for its version in the directory's REWRITTEN file (a deliberate rewrite: the new
 *     checksum is recorded instead).
 *   - then, under the same lock and in ONE transaction, every file below the functions
 *     directory (sorted by relative path; check_function_bodies off) whose sha256 differs from
 *     the one recorded in schema_functions is run and recorded: those files are code (CREATE OR
 *     REPLACE ...), idempotent, re-applied whenever they change; unchanged ones are skipped,
 *     so a second migrate applies nothing. Rows of files that no longer exist are forgotten.
 *   - an installed csmcpctl uses the installed directories (DATADIR/csmcp/{migrations,functions},
 *     found relative to the binary first), a csmcpctl in the build tree the source tree's.
 *   - import validates every row first and applies only when no row is bad, inside one
 *     transaction: nothing is ever half-imported; each bad row is reported as FILE:LINE: reason.
 * Synchronous libpq is fine here: csmcpctl is a one-shot CLI, never the request path.
 */
#include <dirent.h>
#include <errno.h>
#include <libpq-fe.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#include "cfg.h"
#include "csmcp_build.h"
#include "ctl_ext.h"

#define IMPORT_BATCH        1000
#define MAX_REPORTED_ERRORS 100
#define MIGRATE_LOCK_KEY    "7311001"

/* ---------------------------------------------------------------- small helpers */

struct buf {
    char *p;
    size_t len, cap;
};

static int buf_add(struct buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np)
            return -1;
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
    return 0;
}

static int buf_str(struct buf *b, const char *s)
{
    return buf_add(b, s, strlen(s));
}

/* Appends s as a JSON string literal. */
static int buf_json_str(struct buf *b, const char *s)
{
    char esc[8];
    if (buf_add(b, "\"", 1))
        return -1;
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*c;
            if (buf_add(b, esc, 2))
                return -1;
        } else if (*c < 0x20) {
            snprintf(esc, sizeof(esc), "\\u%04x", *c);
            if (buf_str(b, esc))
                return -1;
        } else if (buf_add(b, (const char *)c, 1)) {
            return -1;
        }
    }
    return buf_add(b, "\"", 1);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    struct buf b = {0};
    char chunk[65536];
    size_t n;
    if (!f)
        return NULL;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (buf_add(&b, chunk, n)) {
            fclose(f);
            free(b.p);
            return NULL;
        }
    }
    fclose(f);
    if (!b.p)
        b.p = calloc(1, 1);
    if (len)
        *len = b.len;
    return b.p;
}

static void sha256_hex(const char *data, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
    for (unsigned int i = 0; i < n && i < 32; i++)
        snprintf(out + 2 * (size_t)i, 3, "%02x", md[i]);
    out[64] = 0;
}

/* Connects synchronously; the password comes from database.password_file when set. */
static PGconn *db_connect(const struct cfg *cfg)
{
    /*
     * search_path=public: with the usual role "csmcp" the default path "$user", public would
     * put unqualified tables into schema csmcp once migration 0002 has created it, so a second
     * migrate would create a new, empty csmcp.schema_migrations and re-apply everything there.
     * Tables live in public; functions are always schema-qualified (csmcp.*).
     */
    const char *keys[5] = {"dbname", "application_name", "options", NULL, NULL};
    const char *vals[5] = {cfg->database_url, "csmcpctl", "-c search_path=public", NULL, NULL};
    char *pw = NULL;
    if (cfg->database_password_file && cfg->database_password_file[0]) {
        pw = read_file(cfg->database_password_file, NULL);
        if (!pw) {
            fprintf(stderr, "csmcpctl: cannot read database.password_file %s: %s\n",
                    cfg->database_password_file, strerror(errno));
            return NULL;
        }
        pw[strcspn(pw, "\r\n")] = 0;
        keys[3] = "password";
        vals[3] = pw;
    }
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (pw) {
        memset(pw, 0, strlen(pw));
        free(pw);
    }
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "csmcpctl: cannot connect to the database: %s", PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    return c;
}

static void quiet_notice(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

/* Runs a command that returns no rows; prints the error and returns -1 on failure. */
static int exec_ok(PGconn *c, const char *sql, const char *what)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    int rc = 0;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
        fprintf(stderr, "csmcpctl: %s: %s", what, PQerrorMessage(c));
        rc = -1;
    }
    PQclear(r);
    return rc;
}

/* ---------------------------------------------------------------- migrate */

static bool is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* True when this binary runs from the build tree (so it should use the source tree's files). */
static bool running_from_build_tree(void)
{
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    size_t bl = strlen(CSMCP_BUILD_ROOT);
    if (n <= 0)
        return false;
    self[n] = 0;
    return strncmp(self, CSMCP_BUILD_ROOT, bl) == 0 && self[bl] == '/';
}

/*
 * The directory of db/<sub> (sub = "migrations" or "functions"): the option, else the
 * environment variable, else for an installed binary the installed copy (<bin>/../share/csmcp
 * next to the binary, then the configured datadir, then /usr/share, /usr/local/share) before
 * the source tree; for a binary in the build tree the source tree first.
 */
static const char *data_dir(const char *opt, const char *env_name, const char *sub, char *buf,
                            size_t len)
{
    const char *env = getenv(env_name);
    char self[4096];
    ssize_t n;
    if (opt)
        return opt;
    if (env && *env)
        return env;
    if (running_from_build_tree()) {
        snprintf(buf, len, "%s/db/%s", CSMCP_SOURCE_ROOT, sub);
        if (is_dir(buf))
            return buf;
    }
    n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        self[n] = 0;
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = 0;
            int k = snprintf(buf, len, "%s/../share/csmcp/%s", self, sub);
            if (k > 0 && (size_t)k < len && is_dir(buf))
                return buf;
        }
    }
    snprintf(buf, len, "%s/%s", CSMCP_DATADIR, sub);
    if (is_dir(buf))
        return buf;
    snprintf(buf, len, "/usr/share/csmcp/%s", sub);
    if (is_dir(buf))
        return buf;
    snprintf(buf, len, "/usr/local/share/csmcp/%s", sub);
    if (is_dir(buf))
        return buf;
    snprintf(buf, len, "%s/db/%s", CSMCP_SOURCE_ROOT, sub);
    return buf;
}

static bool migration_name_ok(const char *n)
{
    size_t l = strlen(n);
    if (l < 10 || strcmp(n + l - 4, ".sql") != 0)
        return false;
    for (int i = 0; i < 4; i++)
        if (n[i] < '0' || n[i] > '9')
            return false;
    return n[4] == '_';
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

struct strv {
    char **v;
    size_t n, cap;
};

static int strv_push(struct strv *sv, const char *s)
{
    if (sv->n == sv->cap) {
        size_t cap = sv->cap ? sv->cap * 2 : 64;
        char **nv = realloc(sv->v, cap * sizeof(*nv));
        if (!nv)
            return -1;
        sv->v = nv;
        sv->cap = cap;
    }
    if (!(sv->v[sv->n] = strdup(s)))
        return -1;
    sv->n++;
    return 0;
}

static void strv_free(struct strv *sv)
{
    for (size_t i = 0; i < sv->n; i++)
        free(sv->v[i]);
    free(sv->v);
    *sv = (struct strv){0};
}

/* True when status is a successful result of a command string (comments only: empty query). */
static bool result_ok(const PGresult *r)
{
    ExecStatusType st = PQresultStatus(r);
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY;
}

/*
 * <dir>/REWRITTEN: "<version> <sha256>" lines ('#' comments) naming the old checksums of
 * migrations that were rewritten on purpose. Entries are stored as "version sha256".
 */
static int load_rewritten(const char *dir, struct strv *out)
{
    char path[8192];
    snprintf(path, sizeof(path), "%s/REWRITTEN", dir);
    char *text = read_file(path, NULL);
    if (!text)
        return errno == ENOENT ? 0 : -1;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        char v[16], sum[80], entry[100];
        line[strcspn(line, "#")] = 0;
        if (sscanf(line, "%15s %79s", v, sum) != 2)
            continue;
        if (strlen(v) != 4 || strlen(sum) != 64) {
            fprintf(stderr, "csmcpctl migrate: %s: ignoring malformed line \"%s\"\n", path, line);
            continue;
        }
        snprintf(entry, sizeof(entry), "%s %s", v, sum);
        if (strv_push(out, entry)) {
            free(text);
            return -1;
        }
    }
    free(text);
    return 0;
}

static bool rewritten_listed(const struct strv *rw, const char *version, const char *sum)
{
    char entry[100];
    snprintf(entry, sizeof(entry), "%s %s", version, sum);
    for (size_t i = 0; i < rw->n; i++)
        if (!strcmp(rw->v[i], entry))
            return true;
    return false;
}

/* Collects the *.sql files below root/rel (relative paths, hidden entries skipped). */
static int collect_sql(const char *root, const char *rel, struct strv *out)
{
    char path[8192];
    DIR *d;
    struct dirent *e;
    int rc = 0;
    snprintf(path, sizeof(path), "%s%s%s", root, rel[0] ? "/" : "", rel);
    if (!(d = opendir(path))) {
        fprintf(stderr, "csmcpctl migrate: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    while (rc == 0 && (e = readdir(d))) {
        char sub[8192], full[8192];
        size_t l = strlen(e->d_name);
        if (e->d_name[0] == '.')
            continue;
        int k1 = snprintf(sub, sizeof(sub), "%s%s%s", rel, rel[0] ? "/" : "", e->d_name);
        int k2 = snprintf(full, sizeof(full), "%s/%s", root, sub);
        if (k1 < 0 || (size_t)k1 >= sizeof(sub) || k2 < 0 || (size_t)k2 >= sizeof(full)) {
            fprintf(stderr, "csmcpctl migrate: path too long below %s\n", root);
            rc = -1;
        } else if (is_dir(full))
            rc = collect_sql(root, sub, out);
        else if (l > 4 && !strcmp(e->d_name + l - 4, ".sql"))
            rc = strv_push(out, sub);
    }
    closedir(d);
    return rc;
}

/*
 * With check_function_bodies off nothing checked the bodies of the functions just created: run
 * each one's language validator now (check_function_bodies on), when every file has been
 * applied, so a syntax error (or, in a SQL-language body, a missing table) fails the run instead
 * of the first call. The functions created or replaced by this transaction are the pg_proc rows
 * whose xmin is the current transaction id.
 */
static int validate_changed(PGconn *c)
{
    int rc = -1;
    PGresult *r = NULL;
    if (exec_ok(c, "SET LOCAL check_function_bodies = on", "check_function_bodies"))
        return -1;
    r = PQexec(c, "SELECT p.oid::text, p.oid::regprocedure::text, l.lanvalidator::regproc::text "
                  "FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang "
                  "WHERE p.xmin = pg_current_xact_id()::xid AND l.lanvalidator <> 0 ORDER BY 2");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "csmcpctl migrate: listing changed functions: %s", PQerrorMessage(c));
        goto out;
    }
    for (int i = 0; i < PQntuples(r); i++) {
        char sql[512];
        const char *p1[1] = {PQgetvalue(r, i, 0)};
        snprintf(sql, sizeof(sql), "SELECT %s($1::oid)", PQgetvalue(r, i, 2));
        PGresult *v = PQexecParams(c, sql, 1, NULL, p1, NULL, NULL, 0);
        if (!result_ok(v)) {
            fprintf(stderr, "csmcpctl migrate: functions: %s does not compile: %s",
                    PQgetvalue(r, i, 1), PQerrorMessage(c));
            PQclear(v);
            goto out;
        }
        PQclear(v);
    }
    rc = 0;
out:
    PQclear(r);
    return rc;
}

/*
 * Applies every file below fdir whose checksum differs from schema_functions', in path order,
 * in one transaction with check_function_bodies off; forgets rows of vanished files.
 */
static int apply_functions(PGconn *c, const char *fdir)
{
    struct strv files = {0};
    struct buf paths = {0};
    int applied = 0, unchanged = 0, rc = -1;
    long forgotten = 0;
    PGresult *r;

    if (collect_sql(fdir, "", &files))
        goto out;
    if (files.n > 0)
        qsort(files.v, files.n, sizeof(*files.v), cmp_str);
    if (exec_ok(c,
                "CREATE TABLE IF NOT EXISTS schema_functions (path text PRIMARY KEY, "
                "checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
                "create schema_functions") ||
        exec_ok(c, "BEGIN", "begin") ||
        exec_ok(c, "SET LOCAL check_function_bodies = off", "check_function_bodies"))
        goto out;
    buf_str(&paths, "{");
    for (size_t i = 0; i < files.n; i++) {
        char path[8192], sum[65];
        size_t len;
        if (i)
            buf_str(&paths, ",");
        buf_json_str(&paths, files.v[i]); /* a JSON string is a valid array element literal */
        snprintf(path, sizeof(path), "%s/%s", fdir, files.v[i]);
        char *sql = read_file(path, &len);
        if (!sql) {
            fprintf(stderr, "csmcpctl migrate: cannot read %s: %s\n", path, strerror(errno));
            goto rollback;
        }
        sha256_hex(sql, len, sum);
        const char *p1[1] = {files.v[i]};
        r = PQexecParams(c, "SELECT checksum FROM schema_functions WHERE path = $1", 1, NULL, p1,
                         NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            fprintf(stderr, "csmcpctl migrate: %s", PQerrorMessage(c));
            PQclear(r);
            free(sql);
            goto rollback;
        }
        bool same = PQntuples(r) == 1 && !strcmp(PQgetvalue(r, 0, 0), sum);
        PQclear(r);
        if (same) {
            free(sql);
            unchanged++;
            continue;
        }
        r = PQexec(c, sql);
        free(sql);
        if (!result_ok(r)) {
            fprintf(stderr, "csmcpctl migrate: functions/%s failed: %s", files.v[i],
                    PQerrorMessage(c));
            PQclear(r);
            goto rollback;
        }
        PQclear(r);
        if (PQtransactionStatus(c) != PQTRANS_INTRANS) {
            fprintf(
                stderr,
                "csmcpctl migrate: functions/%s ended the transaction (COMMIT or ROLLBACK "
                "in a function file): what ran before it stays, unrecorded; nothing after it ran\n",
                files.v[i]);
            goto rollback;
        }
        const char *p2[2] = {files.v[i], sum};
        r = PQexecParams(c,
                         "INSERT INTO schema_functions (path, checksum) VALUES ($1, $2) "
                         "ON CONFLICT (path) DO UPDATE SET checksum = excluded.checksum, "
                         "applied_at = now()",
                         2, NULL, p2, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            fprintf(stderr, "csmcpctl migrate: recording functions/%s: %s", files.v[i],
                    PQerrorMessage(c));
            PQclear(r);
            goto rollback;
        }
        PQclear(r);
        printf("applied functions/%s\n", files.v[i]);
        applied++;
    }
    buf_str(&paths, "}");
    if (!paths.p)
        goto rollback;
    if (applied > 0 && validate_changed(c))
        goto rollback;
    const char *p3[1] = {paths.p};
    r = PQexecParams(c, "DELETE FROM schema_functions WHERE path <> ALL ($1::text[])", 1, NULL, p3,
                     NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        fprintf(stderr, "csmcpctl migrate: schema_functions: %s", PQerrorMessage(c));
        PQclear(r);
        goto rollback;
    }
    forgotten = atol(PQcmdTuples(r));
    PQclear(r);
    if (exec_ok(c, "COMMIT", "commit"))
        goto out;
    printf("functions: %d applied, %d unchanged", applied, unchanged);
    if (forgotten > 0)
        printf(", %ld forgotten (file gone)", forgotten);
    printf(" (%s)\n", fdir);
    rc = 0;
    goto out;
rollback:
    exec_ok(c, "ROLLBACK", "rollback");
out:
    strv_free(&files);
    free(paths.p);
    return rc;
}

static int cmd_migrate(const struct cfg *cfg, int argc, char **argv)
{
    const char *opt_dir = NULL, *opt_fdir = NULL;
    char dirbuf[4096], fdirbuf[4096];
    struct strv names = {0}, rewritten = {0};
    int applied = 0, skipped = 0, rerecorded = 0, rc = 1;
    PGconn *c = NULL;
    DIR *d = NULL;
    struct dirent *e;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--migrations") && i + 1 < argc) {
            opt_dir = argv[++i];
        } else if (!strcmp(argv[i], "--functions") && i + 1 < argc) {
            opt_fdir = argv[++i];
        } else {
            fprintf(stderr, "usage: csmcpctl migrate [--migrations DIR] [--functions DIR]\n");
            return 2;
        }
    }
    const char *dir =
        data_dir(opt_dir, "CSMCP_MIGRATIONS_DIR", "migrations", dirbuf, sizeof(dirbuf));
    const char *fdir =
        data_dir(opt_fdir, "CSMCP_FUNCTIONS_DIR", "functions", fdirbuf, sizeof(fdirbuf));
    d = opendir(dir);
    if (!d) {
        fprintf(stderr, "csmcpctl migrate: cannot open %s: %s\n", dir, strerror(errno));
        return 1;
    }
    if (!is_dir(fdir)) {
        fprintf(stderr, "csmcpctl migrate: cannot open %s: not a directory\n", fdir);
        goto out;
    }
    while ((e = readdir(d))) {
        if (migration_name_ok(e->d_name) && strv_push(&names, e->d_name))
            goto out;
    }
    if (names.n > 0)
        qsort(names.v, names.n, sizeof(*names.v), cmp_str);
    if (load_rewritten(dir, &rewritten)) {
        fprintf(stderr, "csmcpctl migrate: cannot read %s/REWRITTEN: %s\n", dir, strerror(errno));
        goto out;
    }

    if (!(c = db_connect(cfg)))
        goto out;
    PQsetNoticeProcessor(c, quiet_notice, NULL);
    if (exec_ok(c, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", "advisory lock") ||
        exec_ok(c,
                "CREATE TABLE IF NOT EXISTS schema_migrations (version text PRIMARY KEY, "
                "name text NOT NULL, checksum text NOT NULL, "
                "applied_at timestamptz NOT NULL DEFAULT now())",
                "create schema_migrations"))
        goto out;

    for (size_t i = 0; i < names.n; i++) {
        char version[5], path[8192], sum[65];
        size_t len;
        memcpy(version, names.v[i], 4);
        version[4] = 0;
        snprintf(path, sizeof(path), "%s/%s", dir, names.v[i]);
        char *sql = read_file(path, &len);
        if (!sql) {
            fprintf(stderr, "csmcpctl migrate: cannot read %s: %s\n", path, strerror(errno));
            goto out;
        }
        sha256_hex(sql, len, sum);
        const char *p1[1] = {version};
        PGresult *r =
            PQexecParams(c, "SELECT name, checksum FROM schema_migrations WHERE version = $1", 1,
                         NULL, p1, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            fprintf(stderr, "csmcpctl migrate: %s", PQerrorMessage(c));
            PQclear(r);
            free(sql);
            goto out;
        }
        if (PQntuples(r) == 1) {
            const char *old = PQgetvalue(r, 0, 1);
            if (strcmp(old, sum) != 0 && rewritten_listed(&rewritten, version, old)) {
                const char *p2[2] = {version, sum};
                PGresult *u =
                    PQexecParams(c, "UPDATE schema_migrations SET checksum = $2 WHERE version = $1",
                                 2, NULL, p2, NULL, NULL, 0);
                if (PQresultStatus(u) != PGRES_COMMAND_OK) {
                    fprintf(stderr, "csmcpctl migrate: re-recording %s: %s", names.v[i],
                            PQerrorMessage(c));
                    PQclear(u);
                    PQclear(r);
                    free(sql);
                    goto out;
                }
                PQclear(u);
                printf("re-recorded %s (rewritten, listed in REWRITTEN)\n", names.v[i]);
                rerecorded++;
            } else if (strcmp(old, sum) != 0) {
                fprintf(stderr,
                        "csmcpctl migrate: warning: %s changed since it was applied (as %s); "
                        "migrations are forward-only, add a new one\n",
                        names.v[i], PQgetvalue(r, 0, 0));
            }
            PQclear(r);
            free(sql);
            skipped++;
            continue;
        }
        PQclear(r);

        if (exec_ok(c, "BEGIN", "begin")) {
            free(sql);
            goto out;
        }
        r = PQexec(c, sql);
        free(sql);
        if (!result_ok(r)) {
            fprintf(stderr, "csmcpctl migrate: %s failed: %s", names.v[i], PQerrorMessage(c));
            PQclear(r);
            exec_ok(c, "ROLLBACK", "rollback");
            goto out;
        }
        PQclear(r);
        const char *p3[3] = {version, names.v[i], sum};
        r = PQexecParams(
            c, "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)", 3,
            NULL, p3, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            fprintf(stderr, "csmcpctl migrate: recording %s: %s", names.v[i], PQerrorMessage(c));
            PQclear(r);
            exec_ok(c, "ROLLBACK", "rollback");
            goto out;
        }
        PQclear(r);
        if (exec_ok(c, "COMMIT", "commit"))
            goto out;
        printf("applied %s\n", names.v[i]);
        applied++;
    }
    printf("migrate: %d applied, %d already applied (%s)\n", applied, skipped, dir);
    if (rerecorded > 0)
        printf("migrate: %d rewritten migration(s) re-recorded\n", rerecorded);
    if (apply_functions(c, fdir))
        goto out;
    rc = 0;
out:
    if (c) {
        PGresult *r = PQexec(c, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")");
        PQclear(r);
        PQfinish(c);
    }
    if (d)
        closedir(d);
    strv_free(&names);
    strv_free(&rewritten);
    return rc;
}

/* ---------------------------------------------------------------- seed */

static int cmd_seed(const struct cfg *cfg, int argc, char **argv)
{
    long accounts = 200;
    char num[32];
    int rc = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--accounts") && i + 1 < argc) {
            char *end;
            accounts = strtol(argv[++i], &end, 10);
            if (*end || accounts < 1 || accounts > 1000000) {
                fprintf(stderr, "csmcpctl seed: --accounts must be 1..1000000\n");
                return 2;
            }
        } else {
            fprintf(stderr, "usage: csmcpctl seed [--accounts N]\n");
            return 2;
        }
    }
    PGconn *c = db_connect(cfg);
    if (!c)
        return 1;
    PQsetNoticeProcessor(c, quiet_notice, NULL);
    snprintf(num, sizeof(num), "%ld", accounts);
    const char *p[1] = {num};
    PGresult *r =
        PQexecParams(c, "SELECT csmcp.seed_demo($1::integer)::text", 1, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "csmcpctl seed: %s", PQerrorMessage(c));
    } else {
        printf("seed: %s\n", PQgetvalue(r, 0, 0));
        rc = 0;
    }
    PQclear(r);
    PQfinish(c);
    return rc;
}

/* ---------------------------------------------------------------- import */

struct row {
    char *json; /* one JSON object */
    long line;  /* 1-based line in the file */
};

struct rows {
    struct row *v;
    size_t n, cap;
};

static int rows_push(struct rows *rs, char *json, long line)
{
    if (rs->n == rs->cap) {
        size_t cap = rs->cap ? rs->cap * 2 : 1024;
        struct row *nv = realloc(rs->v, cap * sizeof(*nv));
        if (!nv)
            return -1;
        rs->v = nv;
        rs->cap = cap;
    }
    rs->v[rs->n].json = json;
    rs->v[rs->n].line = line;
    rs->n++;
    return 0;
}

/* Splits one CSV record starting at *pp (RFC 4180 quoting; fields may span lines). Returns the
 * number of fields, fields are malloc'd; *lines gets the number of newlines consumed. */
static int csv_record(const char **pp, char ***out, long *lines)
{
    const char *p = *pp;
    char **f = NULL;
    int nf = 0, capf = 0;
    struct buf cur = {0};
    bool quoted = false, done = false;
    *lines = 0;
    while (!done) {
        if (!*p) {
            done = true;
        } else if (quoted) {
            if (*p == '"' && p[1] == '"') {
                buf_add(&cur, "\"", 1);
                p += 2;
                continue;
            }
            if (*p == '"') {
                quoted = false;
                p++;
                continue;
            }
            if (*p == '\n')
                (*lines)++;
            buf_add(&cur, p, 1);
            p++;
            continue;
        } else if (*p == '"' && cur.len == 0) {
            quoted = true;
            p++;
            continue;
        } else if (*p == ',' || *p == '\n' || (*p == '\r' && p[1] == '\n')) {
            /* end of field below */
        } else {
            buf_add(&cur, p, 1);
            p++;
            continue;
        }
        if (nf == capf) {
            capf = capf ? capf * 2 : 16;
            char **nfv = realloc(f, (size_t)capf * sizeof(*f));
            if (!nfv)
                break;
            f = nfv;
        }
        f[nf++] = cur.p ? cur.p : strdup("");
        cur = (struct buf){0};
        if (done)
            break;
        if (*p == ',') {
            p++;
            continue;
        }
        if (*p == '\r')
            p++;
        p++; /* '\n' */
        (*lines)++;
        break;
    }
    free(cur.p);
    *pp = p;
    *out = f;
    return nf;
}

/* True when s is a JSON number (RFC 8259 grammar), so it can be embedded unquoted. */
static bool looks_numeric(const char *s)
{
    const char *p = s;
    if (*p == '-')
        p++;
    if (*p == '0')
        p++;
    else if (*p >= '1' && *p <= '9')
        while (*p >= '0' && *p <= '9')
            p++;
    else
        return false;
    if (*p == '.') {
        p++;
        if (!(*p >= '0' && *p <= '9'))
            return false;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!(*p >= '0' && *p <= '9'))
            return false;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    return *p == 0;
}

static int parse_csv(const char *text, const char *path, struct rows *rs, struct buf *errs,
                     int *nerr)
{
    const char *p = text;
    char **hdr = NULL;
    long line = 1, consumed;
    int rc = 0;
    int nh = csv_record(&p, &hdr, &consumed);
    line += consumed;
    if (nh <= 0) {
        fprintf(stderr, "csmcpctl import: %s: empty file\n", path);
        return -1;
    }
    while (*p) {
        char **f;
        long start = line;
        int nf = csv_record(&p, &f, &consumed);
        line += consumed;
        if (nf == 1 && f[0][0] == 0) { /* blank line */
            free(f[0]);
            free(f);
            continue;
        }
        if (nf != nh) {
            char msg[256];
            snprintf(msg, sizeof(msg), "%s:%ld: expected %d fields, found %d\n", path, start, nh,
                     nf);
            if (*nerr < MAX_REPORTED_ERRORS)
                buf_str(errs, msg);
            (*nerr)++;
        } else {
            struct buf o = {0};
            buf_str(&o, "{");
            for (int i = 0; i < nf; i++) {
                if (i)
                    buf_str(&o, ",");
                buf_json_str(&o, hdr[i]);
                buf_str(&o, ":");
                if (f[i][0] == 0)
                    buf_str(&o, "null");
                else if ((!strcmp(hdr[i], "quantity") || !strcmp(hdr[i], "score")) &&
                         looks_numeric(f[i]))
                    buf_str(&o, f[i]);
                else
                    buf_json_str(&o, f[i]);
            }
            buf_str(&o, "}");
            if (!o.p || rows_push(rs, o.p, start)) {
                free(o.p);
                fprintf(stderr, "csmcpctl import: out of memory\n");
                rc = -1;
            }
        }
        for (int i = 0; i < nf; i++)
            free(f[i]);
        free(f);
        if (rc)
            break;
    }
    for (int i = 0; i < nh; i++)
        free(hdr[i]);
    free(hdr);
    return rc;
}

static int parse_jsonl(char *text, const char *path, struct rows *rs, struct buf *errs, int *nerr)
{
    long line = 0;
    char *l = text;
    while (*l) {
        char ebuf[256];
        char *nl = strchr(l, '\n');
        char *next = nl ? nl + 1 : l + strlen(l);
        if (nl)
            *nl = 0;
        line++;
        if (strspn(l, " \t\r") != strlen(l)) {
            yajl_val v = yajl_tree_parse(l, ebuf, sizeof(ebuf));
            if (!v || !YAJL_IS_OBJECT(v)) {
                char msg[512];
                ebuf[strcspn(ebuf, "\n")] = 0;
                snprintf(msg, sizeof(msg), "%s:%ld: not a JSON object%s%s\n", path, line,
                         v ? "" : ": ", v ? "" : ebuf);
                if (*nerr < MAX_REPORTED_ERRORS)
                    buf_str(errs, msg);
                (*nerr)++;
            } else {
                char *dup = strdup(l);
                if (!dup || rows_push(rs, dup, line)) {
                    free(dup);
                    yajl_tree_free(v);
                    return -1;
                }
            }
            yajl_tree_free(v);
        }
        l = next;
    }
    return 0;
}

/* Builds the JSON array of rows [from, to). Caller frees. */
static char *batch_json(const struct rows *rs, size_t from, size_t to)
{
    struct buf b = {0};
    buf_str(&b, "[");
    for (size_t i = from; i < to; i++) {
        if (i > from)
            buf_str(&b, ",");
        buf_str(&b, rs->v[i].json);
    }
    buf_str(&b, "]");
    return b.p;
}

static int cmd_import(const struct cfg *cfg, int argc, char **argv)
{
    const char *kind = NULL, *path = NULL, *format = NULL;
    struct rows rs = {0};
    struct buf errs = {0};
    int nerr = 0, rc = 1;
    PGconn *c = NULL;
    char *text = NULL;
    char validate_sql[128], apply_sql[128];
    long inserted = 0, duplicates = 0, updated = 0;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--format") && i + 1 < argc)
            format = argv[++i];
        else if (!kind)
            kind = argv[i];
        else if (!path)
            path = argv[i];
        else
            kind = NULL, i = argc;
    }
    if (!kind || !path ||
        (strcmp(kind, "usage") && strcmp(kind, "contacts") && strcmp(kind, "nps")) ||
        (format && strcmp(format, "csv") && strcmp(format, "jsonl"))) {
        fprintf(stderr, "usage: csmcpctl import usage|contacts|nps FILE [--format csv|jsonl]\n");
        return 2;
    }
    const char *fn = !strcmp(kind, "usage") ? "usage_events" : kind;
    snprintf(validate_sql, sizeof(validate_sql),
             "SELECT idx, error FROM csmcp.validate_%s($1::jsonb) ORDER BY idx", fn);
    snprintf(apply_sql, sizeof(apply_sql), "SELECT csmcp.apply_%s($1::jsonb)::text", fn);

    if (!(text = read_file(path, NULL))) {
        fprintf(stderr, "csmcpctl import: cannot read %s: %s\n", path, strerror(errno));
        return 1;
    }
    if (!format) {
        size_t l = strlen(path);
        format = (l > 4 && !strcmp(path + l - 4, ".csv")) ? "csv" : NULL;
        if (!format)
            format = text[strspn(text, " \t\r\n")] == '{' ? "jsonl" : "csv";
    }
    if (!strcmp(format, "csv") ? parse_csv(text, path, &rs, &errs, &nerr)
                               : parse_jsonl(text, path, &rs, &errs, &nerr))
        goto out;

    if (!(c = db_connect(cfg)))
        goto out;
    PQsetNoticeProcessor(c, quiet_notice, NULL);
    if (exec_ok(c, "BEGIN", "begin"))
        goto out;
    /* Pass 1: validate every row (in batches), collecting FILE:LINE: reason. */
    for (size_t from = 0; from < rs.n; from += IMPORT_BATCH) {
        size_t to = from + IMPORT_BATCH < rs.n ? from + IMPORT_BATCH : rs.n;
        char *js = batch_json(&rs, from, to);
        const char *p[1] = {js};
        PGresult *r = PQexecParams(c, validate_sql, 1, NULL, p, NULL, NULL, 0);
        free(js);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            fprintf(stderr, "csmcpctl import: validation failed: %s", PQerrorMessage(c));
            PQclear(r);
            goto out;
        }
        for (int i = 0; i < PQntuples(r); i++) {
            long idx = atol(PQgetvalue(r, i, 0));
            long line = idx >= 0 && from + (size_t)idx < rs.n ? rs.v[from + (size_t)idx].line : 0;
            char msg[512];
            snprintf(msg, sizeof(msg), "%s:%ld: %s\n", path, line, PQgetvalue(r, i, 1));
            if (nerr < MAX_REPORTED_ERRORS)
                buf_str(&errs, msg);
            nerr++;
        }
        PQclear(r);
    }
    if (nerr > 0) {
        fputs(errs.p ? errs.p : "", stderr);
        if (nerr > MAX_REPORTED_ERRORS)
            fprintf(stderr, "... and %d more\n", nerr - MAX_REPORTED_ERRORS);
        fprintf(stderr, "import %s: %d invalid row(s) in %s; nothing imported\n", kind, nerr, path);
        exec_ok(c, "ROLLBACK", "rollback");
        goto out;
    }
    /* Pass 2: apply, same transaction. */
    for (size_t from = 0; from < rs.n; from += IMPORT_BATCH) {
        size_t to = from + IMPORT_BATCH < rs.n ? from + IMPORT_BATCH : rs.n;
        char *js = batch_json(&rs, from, to);
        const char *p[1] = {js};
        PGresult *r = PQexecParams(c, apply_sql, 1, NULL, p, NULL, NULL, 0);
        free(js);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            fprintf(stderr, "csmcpctl import: %s; nothing imported", PQerrorMessage(c));
            PQclear(r);
            exec_ok(c, "ROLLBACK", "rollback");
            goto out;
        }
        yajl_val v = yajl_tree_parse(PQgetvalue(r, 0, 0), NULL, 0);
        const char *k_ins[] = {"inserted", NULL}, *k_dup[] = {"duplicates", NULL},
                   *k_upd[] = {"updated", NULL};
        yajl_val x;
        if ((x = yajl_tree_get(v, k_ins, yajl_t_number)))
            inserted += YAJL_GET_INTEGER(x);
        if ((x = yajl_tree_get(v, k_dup, yajl_t_number)))
            duplicates += YAJL_GET_INTEGER(x);
        if ((x = yajl_tree_get(v, k_upd, yajl_t_number)))
            updated += YAJL_GET_INTEGER(x);
        yajl_tree_free(v);
        PQclear(r);
    }
    if (exec_ok(c, "COMMIT", "commit"))
        goto out;
    printf("import %s: %zu rows, %ld inserted, %ld updated, %ld duplicates skipped\n", kind, rs.n,
           inserted, updated, duplicates);
    rc = 0;
out:
    if (c)
        PQfinish(c);
    for (size_t i = 0; i < rs.n; i++)
        free(rs.v[i].json);
    free(rs.v);
    free(errs.p);
    free(text);
    return rc;
}

int ctl_db_main(const struct cfg *cfg, int argc, char **argv)
{
    if (argc < 1)
        return 2;
    if (!strcmp(argv[0], "migrate"))
        return cmd_migrate(cfg, argc, argv);
    if (!strcmp(argv[0], "seed"))
        return cmd_seed(cfg, argc, argv);
    if (!strcmp(argv[0], "import"))
        return cmd_import(cfg, argc, argv);
    fprintf(stderr, "csmcpctl: unknown database command %s\n", argv[0]);
    return 2;
}
