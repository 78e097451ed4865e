/*
 * tools/sqltool.c - the generic handler for tools implemented as one SQL function.
 *
 * Role: run tool_def.sql with $1 = the validated arguments (jsonb text) and $2 = the caller's
 * principal, through the worker's pool, and turn the single jsonb row into structuredContent.
 * One call = one statement = one implicit transaction = one round trip.
 *
 * Error policy (what a client may see): no text PostgreSQL wrote reaches a client (issue 23,
 * finding 5). Messages our functions RAISE (SQLSTATE class P0, and 22023 from csmcp.invalid
 * and the argument helpers) are written for the client and pass through. Every other data
 * error (class 22: numeric overflow, bad format, bytes the database cannot store ...) and
 * every constraint violation (class 23) is answered in the project's words, naming the rule
 * when it is a known one (contracts_check: the end date must come after the start date); the
 * database's own message goes to the log. Transient pool failures say "database temporarily
 * unavailable, retry"; anything else is "internal error" with the SQLSTATE, details logged.
 */
#include <ctype.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "pgpool.h"
#include "tool.h"

/* Our own RAISEs: their messages were written for the client. */
static bool own_message(const char *sqlstate)
{
    return sqlstate && (strncmp(sqlstate, "P0", 2) == 0 || strcmp(sqlstate, "22023") == 0);
}

/* Constraints whose violation has a precise explanation in the tools' terms. */
static const struct {
    const char *constraint, *message;
} known_rules[] = {
    {"contracts_check", "contract_end_date must be after contract_start_date"},
    {NULL, NULL},
};

/* The name in `... violates check constraint "NAME" ...`, or "". */
static void constraint_name(const char *err, char *out, size_t len)
{
    const char *q = err ? strstr(err, "constraint \"") : NULL;
    size_t n = 0;
    out[0] = '\0';
    if (q == NULL)
        return;
    q += 12;
    while (q[n] && q[n] != '"' && n + 1 < len && (isalnum((unsigned char)q[n]) || q[n] == '_'))
        n++;
    if (q[n] == '"') {
        memcpy(out, q, n);
        out[n] = '\0';
    }
}

/* A data error or constraint violation in the project's words; false when sqlstate is not
 * one. */
static bool data_error_message(const char *sqlstate, const char *err, char *out, size_t len)
{
    char name[64];
    if (sqlstate == NULL)
        return false;
    if (strncmp(sqlstate, "23", 2) == 0) {
        constraint_name(err, name, sizeof name);
        for (int i = 0; known_rules[i].constraint; i++)
            if (strcmp(name, known_rules[i].constraint) == 0) {
                snprintf(out, len, "%s", known_rules[i].message);
                return true;
            }
        if (strcmp(sqlstate, "23505") == 0)
            snprintf(out, len, "already exists: a value that must be unique is taken%s%s",
                     name[0] ? " (rule " : "", name[0] ? name : "");
        else if (strcmp(sqlstate, "23503") == 0)
            snprintf(out, len, "refers to a record that does not exist%s%s",
                     name[0] ? " (rule " : "", name[0] ? name : "");
        else if (strcmp(sqlstate, "23502") == 0)
            snprintf(out, len, "a required value is missing");
        else
            snprintf(out, len, "a value is not allowed by the data model%s%s",
                     name[0] ? " (rule " : "", name[0] ? name : "");
        if (name[0] && strcmp(sqlstate, "23502") != 0)
            snprintf(out + strlen(out), len - strlen(out), ")");
        return true;
    }
    if (strncmp(sqlstate, "22", 2) != 0)
        return false;
    if (strcmp(sqlstate, "22003") == 0)
        snprintf(out, len, "a number is outside the range the data model can store");
    else if (strcmp(sqlstate, "22001") == 0)
        snprintf(out, len, "a text is longer than the data model can store");
    else if (strcmp(sqlstate, "22007") == 0 || strcmp(sqlstate, "22008") == 0)
        snprintf(out, len, "a date or time is invalid or out of range");
    else if (strcmp(sqlstate, "22P02") == 0)
        snprintf(out, len, "a value does not have the format its field needs");
    else if (strcmp(sqlstate, "22021") == 0 || strcmp(sqlstate, "22P05") == 0)
        snprintf(out, len, "a text holds characters the data model cannot store");
    else if (strcmp(sqlstate, "22012") == 0)
        return false; /* division by zero: our bug, not the caller's */
    else
        snprintf(out, len, "an argument value is not valid here");
    return true;
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
    if (own_message(sqlstate)) {
        tool_call_fail(tc, "%s", err ? err : "invalid request");
        return;
    }
    char msg[300];
    if (data_error_message(sqlstate, err, msg, sizeof msg)) {
        log_info("tool %s: refused by the database (%s): %s", def->name, sqlstate, err ? err : "-");
        tool_call_fail(tc, "Invalid arguments for tool %s: %s", def->name, msg);
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
    /* replica_ok tools may read from database.read_url (pgpool.c decides, by lag). */
    if ((def->replica_ok ? pgpool_query_read : pgpool_query)(pg, def->sql, 2, params, sql_done,
                                                             tc) != 0)
        tool_call_fail(tc, "database temporarily unavailable, retry: cannot queue the query");
}
