/*
 * tools/gdpr/erase_client_data.c - the C handler of erase_client_data (GDPR Art. 17; its
 * definition is erase_client_data.json; export_client_data is an ordinary SQL tool).
 *
 * The erasure runs one SQL function (csmcp.gdpr_erase) that finds an account's rows through the
 * catalog, so a new domain table is covered without a code change. Erasure needs the admin scope
 * and an explicit confirmation: through elicitation when the client declared that capability, else
 * by repeating the account id in "confirm". Its audit record carries the account id and counts
 * only, never the erased personal data.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <yajl/yajl_tree.h>

#include "audit.h"
#include "log.h"
#include "pgpool.h"
#include "tool.h"
#include "tool_handlers.h"

static const char SQL_ERASE[] = "SELECT csmcp.gdpr_erase($1::jsonb, $2)";

static const char *arg_str(struct tool_call *tc, const char *name)
{
    const char *path[] = {name, NULL};
    yajl_val v = yajl_tree_get(tool_call_args(tc), path, yajl_t_string);
    return v ? v->u.string : NULL;
}

/* client ids match ^[A-Za-z0-9_-]{1,100}$ (schema), so they need no JSON escaping */
static void audit_erase(struct tool_call *tc, const char *client, const char *outcome,
                        const char *detail)
{
    char args[160];
    snprintf(args, sizeof(args), "{\"client_id\":\"%s\"}", client);
    struct audit_entry e = {.principal = tool_call_principal(tc),
                            .method = "gdpr.erase",
                            .tool = "erase_client_data",
                            .args_json = args,
                            .outcome = outcome,
                            .detail = detail};
    audit_record(&e);
}

static void erase_done(const PGresult *res, const char *err, const char *sqlstate, bool retryable,
                       void *arg)
{
    struct tool_call *tc = arg;
    const char *client = arg_str(tc, "client_id");

    if (res && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)) {
        char detail[160];
        snprintf(detail, sizeof(detail), "erased; result %.120s", PQgetvalue(res, 0, 0));
        audit_erase(tc, client, "ok", detail);
        log_notice("gdpr: account %s erased by %s", client, tool_call_principal(tc));
        tool_call_done(tc, PQgetvalue(res, 0, 0), NULL);
        return;
    }
    audit_erase(tc, client, "error", sqlstate ? sqlstate : "no result");
    if (sqlstate && strncmp(sqlstate, "P0", 2) == 0)
        tool_call_fail(tc, "%s", err ? err : "erasure failed");
    else if (retryable)
        tool_call_fail(tc, "database temporarily unavailable, retry");
    else {
        log_error("gdpr: erase of %s failed: %s %s", client, sqlstate ? sqlstate : "-",
                  err ? err : "-");
        tool_call_fail(tc, "internal error (database error %s)", sqlstate ? sqlstate : "unknown");
    }
}

static void run_erase(struct tool_call *tc)
{
    char args[160];
    const char *params[2];
    snprintf(args, sizeof(args), "{\"client_id\":\"%s\"}", arg_str(tc, "client_id"));
    params[0] = args;
    params[1] = tool_call_principal(tc);
    if (tool_call_pg(tc) == NULL ||
        pgpool_query(tool_call_pg(tc), SQL_ERASE, 2, params, erase_done, tc) != 0)
        tool_call_fail(tc, "database temporarily unavailable, retry");
}

static void not_erased(struct tool_call *tc, const char *reason)
{
    char out[320];
    const char *client = arg_str(tc, "client_id");
    snprintf(out, sizeof(out),
             "{\"client_id\":\"%s\",\"erased\":false,\"rows_deleted\":0,\"reason\":\"%s\"}", client,
             reason);
    audit_erase(tc, client, "declined", reason);
    tool_call_done(tc, out, NULL);
}

static void elicit_reply(struct tool_call *tc, const char *result_json, const char *error_json,
                         void *arg)
{
    char eb[64];
    yajl_val root;
    const char *pa[] = {"action", NULL}, *pc[] = {"content", "confirm", NULL};

    (void)arg;
    if (result_json == NULL) {
        not_erased(tc, "confirmation was not obtained");
        return;
    }
    root = yajl_tree_parse(result_json, eb, sizeof(eb));
    yajl_val action = root ? yajl_tree_get(root, pa, yajl_t_string) : NULL;
    yajl_val confirm = root ? yajl_tree_get(root, pc, yajl_t_any) : NULL;
    bool ok = action && strcmp(action->u.string, "accept") == 0 && confirm && YAJL_IS_TRUE(confirm);
    bool declined = action && strcmp(action->u.string, "accept") != 0;
    yajl_tree_free(root);
    if (tool_call_cancelled(tc)) {
        not_erased(tc, "call cancelled");
        return;
    }
    if (ok)
        run_erase(tc);
    else
        not_erased(tc, declined ? "the user declined" : "the user did not confirm");
}

void gdpr_erase_client_data(struct tool_call *tc)
{
    const char *client = arg_str(tc, "client_id"), *confirm = arg_str(tc, "confirm");

    /* the schema guarantees this; checked again because the id is spliced into JSON text */
    size_t n = client ? strlen(client) : 0;
    if (n == 0 || n > 100 ||
        strspn(client, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                       "0123456789_-") != n) {
        tool_call_fail(tc, "client_id must match ^[A-Za-z0-9_-]{1,100}$");
        return;
    }
    if (tool_call_client_can(tc, "elicitation")) {
        char params[600];
        snprintf(params, sizeof(params),
                 "{\"message\":\"Permanently erase every record held about account %s "
                 "(contacts, contracts, usage, tickets, feedback, ...)? This cannot be undone.\","
                 "\"requestedSchema\":{\"type\":\"object\",\"properties\":{\"confirm\":{\"type\":"
                 "\"boolean\",\"title\":\"Erase account %s\",\"description\":\"Tick to erase all "
                 "data of this account\"}},\"required\":[\"confirm\"]}}",
                 client, client);
        if (tool_call_request(tc, "elicitation/create", params, elicit_reply, NULL) == 0)
            return;
    }
    if (confirm && strcmp(confirm, client) == 0) {
        run_erase(tc);
        return;
    }
    tool_call_fail(tc,
                   "erasure not confirmed: this client cannot answer an elicitation, so repeat "
                   "the account id in \"confirm\" (confirm = \"%s\") to erase it",
                   client);
}
