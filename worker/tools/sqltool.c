/*
 * tools/sqltool.c - the generic handler for tools implemented as one SQL function.
 *
 * Role: run tool_def.sql with $1 = the validated arguments (jsonb text) and $2 = the caller's
 * principal, through the worker's pool, and turn the single jsonb row into structuredContent.
 * One call = one statement = one implicit transaction = one round trip.
 *
 * Error policy (what a client may see): SQLSTATE classes P0 (RAISE in our functions), 22 (bad
 * input data) and 23 (constraint violations) carry messages written for the client and are
 * passed through; transient pool failures say "database temporarily unavailable, retry: ...";
 * anything else is logged with its SQLSTATE and answered as "internal error" so that server
 * internals (table names, query text) never reach a client.
 */
#include <libpq-fe.h>
#include <string.h>

#include "log.h"
#include "pgpool.h"
#include "tool.h"

static bool client_visible(const char *sqlstate)
{
    return sqlstate && (strncmp(sqlstate, "P0", 2) == 0 || strncmp(sqlstate, "22", 2) == 0 ||
                        strncmp(sqlstate, "23", 2) == 0);
}

static void sql_done(const PGresult *res, const char *err, const char *sqlstate, bool retryable,
                     void *arg)
{
    struct tool_call *tc = arg;
    const struct tool_def *def = tool_call_def(tc);

    if (res) {
        if (PQntuples(res) != 1 || PQnfields(res) < 1 || PQgetisnull(res, 0, 0)) {
            log_error("tool %s: SQL returned %d rows, expected one jsonb row", def->name,
                      PQntuples(res));
            tool_call_fail(tc, "internal error: the tool produced no result");
            return;
        }
        tool_call_done(tc, PQgetvalue(res, 0, 0), NULL);
        return;
    }
    if (retryable) {
        tool_call_fail(tc, "database temporarily unavailable, retry: %s", err ? err : "");
        return;
    }
    if (client_visible(sqlstate)) {
        tool_call_fail(tc, "%s", err ? err : "invalid request");
        return;
    }
    log_error("tool %s: database error %s: %s", def->name, sqlstate ? sqlstate : "-",
              err ? err : "-");
    tool_call_fail(tc, "internal error (database error %s)", sqlstate ? sqlstate : "unknown");
}

void tool_sql_handler(struct tool_call *tc)
{
    const struct tool_def *def = tool_call_def(tc);
    const char *params[2] = {tool_call_args_json(tc), tool_call_principal(tc)};
    struct pgpool *pg = tool_call_pg(tc);

    if (!def->sql || !pg) {
        tool_call_fail(tc, "internal error: tool %s has no database", def->name);
        return;
    }
    if (pgpool_query(pg, def->sql, 2, params, sql_done, tc) != 0)
        tool_call_fail(tc, "database temporarily unavailable, retry: cannot queue the query");
}
