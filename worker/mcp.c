/*
 * mcp.c - the MCP server on /mcp: Streamable HTTP for protocol revisions 2024-11-05 ..
 * 2025-11-25 (sessions) and 2026-07-28 (stateless, modern.c decides the era of each POST). This
 * file is the entry and the JSON-RPC method dispatch; the rest of the server is in gates.c,
 * toolcall.c, streams.c and modern*.c (their layering is in mcp_int.h).
 *
 * Request path: Host/Origin check (403) -> CORS -> auth (401/403) -> Accept/Content-Type (406,
 * 415) -> JSON parse (-32700) -> initialize, or session check (400 missing, 404 unknown) and rate
 * limit (429), both in Redis and issued together (gates.c) -> JSON-RPC dispatch (here) ->
 * tools/call (toolcall.c) -> application/json, or an SSE stream once a tool call emits anything
 * before its result (streams.c) -> audit record per tool call.
 *
 * Invariants:
 * - tools/list entries are rendered once at start (one per revision family) and served as is,
 *   each to the principals whose scopes allow one of its calls (none needing write or admin
 *   with mcp.read_only, whose such calls are refused at dispatch).
 * - A request's messages are dispatched in order while the mreq holds an extra reference, so a
 *   synchronous reply that finishes the HTTP side cannot free it under the loop.
 * - Resources, resource templates and prompts exist only with mcp.conformance_fixtures, except
 *   the monitors' alerts (csmcp://alerts[/<client_id>], read and subscribe; worker/alerts.c),
 *   which are not listed.
 */
#include "mcp.h"
#include "mcp_int.h"

#include "alerts.h"
#include "audit.h"
#include "auth.h"
#include "cfg.h"
#include "crypto.h"
#include "csmcp_build.h"
#include "fixtures.h"
#include "http.h"
#include "json.h"
#include "jsonrpc.h"
#include "jsonschema.h"
#include "log.h"
#include "metrics.h"
#include "ratelimit.h"
#include "redisc.h"
#include "registry.h"
#include "scache.h"
#include "session.h"
#include "tool.h"

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static struct {
    char **tool_json;     /* per registry tool: the tools/list entry (2025-06-18+) */
    char **tool_json_old; /* without outputSchema/title (older revisions) */
} M;

/* KEYS[2]: the principal's set of session keys, for mcp.max_sessions_per_principal (ARGV[6],
 * 0 = no cap). At the cap, a sample of 200 members is checked and ended sessions (deleted or
 * expired) leave the set; still at the cap -> 0 (refused). The set expires with the TTL. */
static const char LUA_CREATE[] =
    "local cap = tonumber(ARGV[6]) "
    "if cap > 0 then "
    "  if redis.call('SCARD', KEYS[2]) >= cap then "
    "    for _, s in ipairs(redis.call('SRANDMEMBER', KEYS[2], 200)) do "
    "      if redis.call('EXISTS', s) == 0 then redis.call('SREM', KEYS[2], s) end "
    "    end "
    "    if redis.call('SCARD', KEYS[2]) >= cap then return 0 end "
    "  end "
    "  redis.call('SADD', KEYS[2], KEYS[1]) redis.call('EXPIRE', KEYS[2], ARGV[4]) "
    "end "
    "redis.call('HSET', KEYS[1], 'lvl', ARGV[1], 'caps', ARGV[2], 'v', ARGV[3], 'p', ARGV[5]) "
    "redis.call('EXPIRE', KEYS[1], ARGV[4]) return 1";

/* ------------------------------------------------------------------------------------------ */
/* Host, Origin, CORS, auth                                                                    */

static bool host_allowed(const char *host)
{
    if (host == NULL)
        return false;
    char h[256];
    snprintf(h, sizeof h, "%s", host);
    /* strip the port: "[::1]:8080" -> "[::1]", "a:1" -> "a" */
    char *end = h[0] == '[' ? strchr(h, ']') : NULL;
    char *colon = strrchr(end ? end : h, ':');
    if (colon)
        *colon = '\0';
    for (int i = 0; i < mcp_env.cfg->mcp_allowed_hosts.n; i++)
        if (strcasecmp(h, mcp_env.cfg->mcp_allowed_hosts.v[i]) == 0)
            return true;
    return false;
}

static bool origin_allowed(const char *origin)
{
    for (int i = 0; i < mcp_env.cfg->mcp_allowed_origins.n; i++)
        if (strcmp(origin, mcp_env.cfg->mcp_allowed_origins.v[i]) == 0)
            return true;
    const char *p = NULL;
    if (strncasecmp(origin, "http://", 7) == 0)
        p = origin + 7;
    else if (strncasecmp(origin, "https://", 8) == 0)
        p = origin + 8;
    if (p == NULL || strchr(p, '/'))
        return false;
    return host_allowed(p);
}

/* 401/403/503 from auth (scope == NULL), or 403 for a tool whose scope the token lacks. The
 * WWW-Authenticate header comes from the auth module (RFC 6750 / RFC 9728). */
static void auth_fail_id(struct mreq *m, const struct auth_result *r, const char *scope,
                         yajl_val id)
{
    struct auth_result denied;
    if (scope) {
        denied = *r;
        denied.status = 403;
        snprintf(denied.error, sizeof denied.error, "insufficient_scope");
        snprintf(denied.description, sizeof denied.description, "the token lacks the %s scope",
                 scope);
        r = &denied;
    }
    int status = r->status ? r->status : 401;
    char hdr[1536];
    const char *host = m->req ? http_req_header(m->req, "Host") : NULL;
    if (auth_www_authenticate(r, host, scope, hdr, sizeof hdr) < 0)
        hdr[0] = '\0';
    struct jbuf b;
    jbuf_init(&b);
    /* the request's id when it is known (403 for a tool call), else null */
    jsonrpc_write_error(&b, id, status == 429 ? MCP_ERR_RATE_LIMITED : MCP_ERR_AUTH,
                        scope ? "insufficient scope"
                              : (r->description[0] ? r->description : "authentication required"),
                        NULL);
    mreq_respond(m, status, "application/json", hdr[0] ? hdr : NULL, b.p, b.len);
    jbuf_free(&b);
}

static void auth_fail(struct mreq *m, const struct auth_result *r, const char *scope)
{
    auth_fail_id(m, r, scope, NULL);
}

/* ------------------------------------------------------------------------------------------ */
/* tools/list entries                                                                          */

static char *tool_entry(const struct tool_def *d, bool modern)
{
    struct jbuf b;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"name\":");
    json_str(&b, d->name);
    if (modern && d->title) {
        jbuf_puts(&b, ",\"title\":");
        json_str(&b, d->title);
    }
    jbuf_puts(&b, ",\"description\":");
    json_str(&b, d->description);
    jbuf_puts(&b, ",\"inputSchema\":");
    jbuf_puts(&b, d->input_schema);
    if (modern && d->output_schema) {
        jbuf_puts(&b, ",\"outputSchema\":");
        jbuf_puts(&b, d->output_schema);
    }
    jbuf_puts(&b, ",\"annotations\":{");
    if (d->title) {
        jbuf_puts(&b, "\"title\":");
        json_str(&b, d->title);
        jbuf_putc(&b, ',');
    }
    jbuf_printf(&b,
                "\"readOnlyHint\":%s,\"destructiveHint\":%s,\"idempotentHint\":%s,"
                "\"openWorldHint\":%s}}",
                d->hints & TOOL_HINT_READONLY ? "true" : "false",
                d->hints & TOOL_HINT_DESTRUCTIVE ? "true" : "false",
                d->hints & TOOL_HINT_IDEMPOTENT ? "true" : "false",
                d->hints & TOOL_HINT_OPENWORLD ? "true" : "false");
    return jbuf_steal(&b);
}

/* Parses a cursor "p:<offset>"; -1 when invalid. */
static long parse_cursor(yajl_val params, size_t total)
{
    yajl_val c = json_get(params, "cursor");
    if (c == NULL || c->type == yajl_t_null)
        return 0;
    if (c->type != yajl_t_string || strncmp(c->u.string, "p:", 2) != 0)
        return -1;
    char *end;
    long off = strtol(c->u.string + 2, &end, 10);
    if (*end || end == c->u.string + 2 || off < 0 || (size_t)off > total)
        return -1;
    return off;
}

static void write_next_cursor(struct jbuf *b, size_t next, size_t total)
{
    if (next < total)
        jbuf_printf(b, ",\"nextCursor\":\"p:%zu\"", next);
}

/*
 * Starts a paginated list result (tools, resources, templates, prompts): checks the cursor,
 * sets the page [*off, *end) of total items and opens b with `{"<key>":[`. Returns false after
 * answering -32602 for a bad cursor (b is then not initialised).
 */
static bool list_open(struct mreq *m, struct jsonrpc_msg *msg, size_t total, const char *key,
                      struct jbuf *b, size_t *off, size_t *end)
{
    long o = parse_cursor(msg->params, total);
    if (o < 0) {
        mreq_reply_error(m, msg->id, JSONRPC_INVALID_PARAMS, "Invalid cursor", NULL);
        return false;
    }
    *off = (size_t)o;
    *end = *off + (size_t)mcp_env.cfg->mcp_page_size;
    if (*end > total)
        *end = total;
    jbuf_init(b);
    jsonrpc_open_result(b, msg->id);
    jbuf_printf(b, "{\"%s\":[", key);
    return true;
}

/* Closes a list opened by list_open, adds nextCursor when items remain, replies, frees b. */
static void list_close(struct mreq *m, struct jbuf *b, size_t end, size_t total)
{
    jbuf_putc(b, ']');
    write_next_cursor(b, end, total);
    jbuf_puts(b, "}}");
    mreq_reply(m, b->p, b->len);
    jbuf_free(b);
}
/* ------------------------------------------------------------------------------------------ */
/* method handlers                                                                             */

static void write_capabilities(struct jbuf *b)
{
    jbuf_puts(b, "{\"tools\":{\"listChanged\":false},\"resources\":{\"subscribe\":true,"
                 "\"listChanged\":false},\"prompts\":{\"listChanged\":false},\"logging\":{},"
                 "\"completions\":{}}");
}

/* A tool is listed to a principal allowed at least one of the scopes its calls can need (a mixed
 * tool when any action is allowed); with mcp.read_only only its read calls count. */
static bool tool_visible(const struct mreq *m, const struct registry_tool *t)
{
    for (int k = TOOL_SCOPE_READ; k <= TOOL_SCOPE_ADMIN; k++) {
        if (!(t->needs & (1u << k)))
            continue;
        if (mcp_env.cfg->mcp_read_only && k != TOOL_SCOPE_READ)
            continue;
        if (auth_scope_allows(m->auth.scopes, k))
            return true;
    }
    return false;
}

static void m_tools_list(struct mreq *m, struct jsonrpc_msg *msg)
{
    size_t n = registry_count(), total = 0, off, end;
    size_t *vis = malloc((n ? n : 1) * sizeof *vis); /* registry indexes this principal sees */
    if (vis == NULL)
        abort();
    for (size_t i = 0; i < n; i++)
        if (tool_visible(m, registry_at(i)))
            vis[total++] = i;
    bool modern = mcp_rev_since(m->s.rev, MCP_REV_2025_06_18); /* title, outputSchema */
    struct jbuf b;
    if (!list_open(m, msg, total, "tools", &b, &off, &end)) {
        free(vis);
        return;
    }
    for (size_t i = off; i < end; i++) {
        if (i > off)
            jbuf_putc(&b, ',');
        jbuf_puts(&b, modern ? M.tool_json[vis[i]] : M.tool_json_old[vis[i]]);
    }
    free(vis);
    list_close(m, &b, end, total);
}

/* A tools/call refused before the tool ran (unknown tool, arguments the schema refuses): every
 * call leaves a row (these come after the rate limit). */
static void audit_call_refused(struct mreq *m, const char *name, yajl_val args, const char *outcome,
                               const char *why)
{
    struct jbuf a;
    jbuf_init(&a);
    if (args)
        json_val(&a, args);
    struct audit_entry ae = {.principal = mreq_principal(m),
                             .method = "tools/call",
                             .tool = name,
                             .args_json = args ? a.p : NULL,
                             .args_len = a.len,
                             .outcome = outcome,
                             .detail = why};
    audit_record(&ae);
    jbuf_free(&a);
}

static void m_tools_call(struct mreq *m, struct jsonrpc_msg *msg)
{
    const char *name = json_get_str(msg->params, "name");
    yajl_val args = json_get(msg->params, "arguments");
    if (name == NULL) {
        mreq_reply_error(m, msg->id, JSONRPC_INVALID_PARAMS,
                         "Invalid params: name must be a string", NULL);
        return;
    }
    if (args && args->type == yajl_t_null)
        args = NULL;
    if (args && args->type != yajl_t_object) {
        mreq_reply_error(m, msg->id, JSONRPC_INVALID_PARAMS,
                         "Invalid params: arguments must be an object", NULL);
        return;
    }
    const struct registry_tool *t = registry_find(name);
    if (t == NULL) {
        char em[300];
        snprintf(em, sizeof em, "Unknown tool: %.200s", name);
        audit_call_refused(m, name, args, "invalid", em);
        mreq_reply_error(m, msg->id, JSONRPC_INVALID_PARAMS, em, NULL);
        return;
    }
    enum tool_scope need = registry_required_scope(t->def, args);
    /* delivery.reviewer_scope = "write": write keys may review outbound messages (issue 24) */
    if (need == TOOL_SCOPE_ADMIN && strcmp(name, "review_outbound_messages") == 0 &&
        strcmp(mcp_env.cfg->delivery_reviewer_scope, "write") == 0)
        need = TOOL_SCOPE_WRITE;
    if (mcp_env.cfg->mcp_read_only && need != TOOL_SCOPE_READ) {
        /* mcp.read_only: every call needing write or admin is refused before it runs. */
        const char *action = t->def->n_action_scopes ? json_get_str(args, "action") : NULL;
        char em[400];
        snprintf(em, sizeof em,
                 "Tool %.128s%s%.64s%s is not available: this server is read-only "
                 "(mcp.read_only = true) and the call needs the %s scope",
                 name, action ? " (action " : "", action ? action : "", action ? ")" : "",
                 registry_scope_name(need));
        struct audit_entry ae = {.principal = mreq_principal(m),
                                 .method = "tools/call",
                                 .tool = name,
                                 .outcome = "denied",
                                 .detail = "server is read-only"};
        audit_record(&ae);
        struct jbuf d;
        jbuf_init(&d);
        jbuf_puts(&d, "{\"tool\":");
        json_str(&d, name);
        jbuf_printf(&d, ",\"read_only\":true,\"required_scope\":\"%s\"}",
                    registry_scope_name(need));
        mreq_reply_error(m, msg->id, JSONRPC_INVALID_PARAMS, em, d.p);
        jbuf_free(&d);
        return;
    }
    if (!auth_scope_allows(m->auth.scopes, (int)need)) {
        const char *scope = registry_scope_name(need);
        struct audit_entry ae = {.principal =
                                     m->auth.principal[0] ? m->auth.principal : "anonymous",
                                 .method = "tools/call",
                                 .tool = name,
                                 .outcome = "denied",
                                 .detail = "insufficient scope"};
        audit_record(&ae);
        if (!m->batch) {
            auth_fail_id(m, &m->auth, scope, msg->id);
            return;
        }
        mreq_reply_error(m, msg->id, MCP_ERR_AUTH, "insufficient scope", NULL);
        return;
    }
    if (t->input) {
        char err[512];
        if (jsonschema_validate(t->input, args, err, sizeof err) < 0) {
            audit_call_refused(m, name, args, "invalid", err);
            if (mcp_rev_since(m->s.rev, MCP_REV_2025_11_25)) {
                /* 2025-11-25: input validation errors are tool execution errors. */
                struct jbuf b;
                jbuf_init(&b);
                jsonrpc_open_result(&b, msg->id);
                jbuf_puts(&b, "{\"content\":[{\"type\":\"text\",\"text\":");
                char txt[640];
                snprintf(txt, sizeof txt, "Invalid arguments for tool %s: %s", name, err);
                json_str(&b, txt);
                jbuf_puts(&b, "}],\"isError\":true}}");
                mreq_reply(m, b.p, b.len);
                jbuf_free(&b);
            } else {
                struct jbuf d;
                jbuf_init(&d);
                jbuf_puts(&d, "{\"tool\":");
                json_str(&d, name);
                jbuf_puts(&d, ",\"error\":");
                json_str(&d, err);
                jbuf_putc(&d, '}');
                char em[640];
                snprintf(em, sizeof em, "Invalid params: %s", err);
                mreq_reply_error(m, msg->id, JSONRPC_INVALID_PARAMS, em, d.p);
                jbuf_free(&d);
            }
            return;
        }
    }
    if (!audit_accepting()) {
        /* audit.on_failure = refuse and audit.max_pending records wait for the database:
         * refused before it runs, never executed without a durable record (issue 26) */
        static const char em[] = "audit backlog full: the audit trail cannot take more records "
                                 "now (database slow or down); the call was not run, retry";
        metrics_inc("csmcp_audit_refused_total", NULL, 1);
        if (m->batch) {
            mreq_reply_error(m, msg->id, MCP_ERR_TRANSPORT, em, "{\"retry_after\":1}");
            return;
        }
        struct jbuf b;
        jbuf_init(&b);
        jsonrpc_write_error(&b, msg->id, MCP_ERR_TRANSPORT, em, "{\"retry_after\":1}");
        mreq_respond(m, 503, "application/json", "Retry-After: 1\r\n", b.p, b.len);
        jbuf_free(&b);
        return;
    }
    mcp_call_start(m, msg, t, args);
}

static void m_resources_list(struct mreq *m, struct jsonrpc_msg *msg, bool templates)
{
    size_t total = !mcp_env.cfg->mcp_conformance_fixtures ? 0
                   : templates                            ? fixture_templates_n
                                                          : fixture_resources_n;
    size_t off, end;
    struct jbuf b;
    if (!list_open(m, msg, total, templates ? "resourceTemplates" : "resources", &b, &off, &end))
        return;
    for (size_t i = off; i < end; i++) {
        const char *uri, *name, *title, *desc, *mime;
        if (templates) {
            const struct fixture_template *t = &fixture_templates[i];
            uri = t->uri_template, name = t->name, title = t->title, desc = t->description,
            mime = t->mime;
        } else {
            const struct fixture_resource *r = &fixture_resources[i];
            uri = r->uri, name = r->name, title = r->title, desc = r->description, mime = r->mime;
        }
        jbuf_puts(&b, i > off ? ",{" : "{");
        jbuf_puts(&b, templates ? "\"uriTemplate\":" : "\"uri\":");
        json_str(&b, uri);
        jbuf_puts(&b, ",\"name\":");
        json_str(&b, name);
        if (title) {
            jbuf_puts(&b, ",\"title\":");
            json_str(&b, title);
        }
        if (desc) {
            jbuf_puts(&b, ",\"description\":");
            json_str(&b, desc);
        }
        if (mime) {
            jbuf_puts(&b, ",\"mimeType\":");
            json_str(&b, mime);
        }
        jbuf_putc(&b, '}');
    }
    list_close(m, &b, end, total);
}

static void m_resources_read(struct mreq *m, struct jsonrpc_msg *msg)
{
    const char *uri = json_get_str(msg->params, "uri");
    if (uri == NULL) {
        mreq_reply_error(m, msg->id, JSONRPC_INVALID_PARAMS, "Invalid params: uri must be a string",
                         NULL);
        return;
    }
    if (alerts_read(m, msg, uri))
        return; /* csmcp://alerts[/<client_id>] (worker/alerts.c) */
    struct jbuf b;
    jbuf_init(&b);
    jsonrpc_open_result(&b, msg->id);
    jbuf_puts(&b, "{\"contents\":");
    bool found = false;
    for (size_t i = 0; mcp_env.cfg->mcp_conformance_fixtures && i < fixture_resources_n; i++) {
        const struct fixture_resource *r = &fixture_resources[i];
        if (strcmp(r->uri, uri) != 0)
            continue;
        jbuf_puts(&b, "[{\"uri\":");
        json_str(&b, r->uri);
        if (r->mime) {
            jbuf_puts(&b, ",\"mimeType\":");
            json_str(&b, r->mime);
        }
        jbuf_puts(&b, r->text ? ",\"text\":" : ",\"blob\":");
        json_str(&b, r->text ? r->text : r->blob);
        jbuf_puts(&b, "}]");
        found = true;
        break;
    }
    for (size_t i = 0; !found && mcp_env.cfg->mcp_conformance_fixtures && i < fixture_templates_n;
         i++)
        found = fixture_templates[i].read(uri, &b) == 0;
    if (!found) {
        jbuf_free(&b);
        struct jbuf d;
        jbuf_init(&d);
        jbuf_puts(&d, "{\"uri\":");
        json_str(&d, uri);
        jbuf_putc(&d, '}');
        mreq_reply_error(m, msg->id, MCP_ERR_RESOURCE_NOT_FOUND, "Resource not found", d.p);
        jbuf_free(&d);
        return;
    }
    jbuf_puts(&b, "}}");
    mreq_reply(m, b.p, b.len);
    jbuf_free(&b);
}

static void m_resources_subscribe(struct mreq *m, struct jsonrpc_msg *msg, bool on)
{
    const char *uri = json_get_str(msg->params, "uri");
    if (uri == NULL) {
        mreq_reply_error(m, msg->id, JSONRPC_INVALID_PARAMS, "Invalid params: uri must be a string",
                         NULL);
        return;
    }
    char key[SESSION_KEY_MAX + 8];
    snprintf(key, sizeof key, "%s:subs", m->s.key);
    const char *argv[3] = {on ? "SADD" : "SREM", key, uri};
    redisc_cmd(NULL, NULL, 3, argv, NULL);
    if (on)
        redisc_cmdf(NULL, NULL, "EXPIRE %s %d", key, mcp_env.cfg->mcp_session_ttl);
    struct jbuf b;
    jbuf_init(&b);
    jsonrpc_open_result(&b, msg->id);
    jbuf_puts(&b, "{}}");
    mreq_reply(m, b.p, b.len);
    jbuf_free(&b);
}

static const struct fixture_prompt *find_prompt(const char *name)
{
    for (size_t i = 0; name && mcp_env.cfg->mcp_conformance_fixtures && i < fixture_prompts_n; i++)
        if (strcmp(fixture_prompts[i].name, name) == 0)
            return &fixture_prompts[i];
    return NULL;
}

static void m_prompts_list(struct mreq *m, struct jsonrpc_msg *msg)
{
    size_t total = mcp_env.cfg->mcp_conformance_fixtures ? fixture_prompts_n : 0, off, end;
    struct jbuf b;
    if (!list_open(m, msg, total, "prompts", &b, &off, &end))
        return;
    for (size_t i = off; i < end; i++) {
        const struct fixture_prompt *p = &fixture_prompts[i];
        jbuf_puts(&b, i > off ? ",{\"name\":" : "{\"name\":");
        json_str(&b, p->name);
        if (p->title) {
            jbuf_puts(&b, ",\"title\":");
            json_str(&b, p->title);
        }
        jbuf_puts(&b, ",\"description\":");
        json_str(&b, p->description);
        if (p->arguments_json) {
            jbuf_puts(&b, ",\"arguments\":");
            jbuf_puts(&b, p->arguments_json);
        }
        jbuf_putc(&b, '}');
    }
    list_close(m, &b, end, total);
}

static void m_prompts_get(struct mreq *m, struct jsonrpc_msg *msg)
{
    const char *name = json_get_str(msg->params, "name");
    const struct fixture_prompt *p = find_prompt(name);
    if (p == NULL) {
        char em[300];
        snprintf(em, sizeof em, "Unknown prompt: %.200s", name ? name : "(none)");
        mreq_reply_error(m, msg->id, JSONRPC_INVALID_PARAMS, em, NULL);
        return;
    }
    yajl_val args = json_get(msg->params, "arguments");
    if (args && args->type != yajl_t_object && args->type != yajl_t_null) {
        mreq_reply_error(m, msg->id, JSONRPC_INVALID_PARAMS,
                         "Invalid params: arguments must be an object", NULL);
        return;
    }
    struct jbuf b;
    jbuf_init(&b);
    jsonrpc_open_result(&b, msg->id);
    char err[256];
    if (p->get(args, &b, err, sizeof err) < 0) {
        jbuf_free(&b);
        char em[300];
        snprintf(em, sizeof em, "Invalid params: %s", err);
        mreq_reply_error(m, msg->id, JSONRPC_INVALID_PARAMS, em, NULL);
        return;
    }
    jbuf_putc(&b, '}');
    mreq_reply(m, b.p, b.len);
    jbuf_free(&b);
}

static void m_complete(struct mreq *m, struct jsonrpc_msg *msg)
{
    yajl_val ref = json_get_obj(msg->params, "ref");
    yajl_val arg = json_get_obj(msg->params, "argument");
    const char *type = json_get_str(ref, "type");
    const char *argname = json_get_str(arg, "name");
    if (type == NULL || argname == NULL) {
        mreq_reply_error(m, msg->id, JSONRPC_INVALID_PARAMS,
                         "Invalid params: ref.type and argument.name are required", NULL);
        return;
    }
    if (strcmp(type, "ref/prompt") == 0) {
        if (find_prompt(json_get_str(ref, "name")) == NULL) {
            mreq_reply_error(m, msg->id, JSONRPC_INVALID_PARAMS, "Unknown prompt", NULL);
            return;
        }
    } else if (strcmp(type, "ref/resource") != 0) {
        mreq_reply_error(m, msg->id, JSONRPC_INVALID_PARAMS, "Invalid params: unknown ref.type",
                         NULL);
        return;
    }
    /* No argument of our prompts or templates has a closed set of values to offer. */
    struct jbuf b;
    jbuf_init(&b);
    jsonrpc_open_result(&b, msg->id);
    jbuf_puts(&b, "{\"completion\":{\"values\":[],\"total\":0,\"hasMore\":false}}}");
    mreq_reply(m, b.p, b.len);
    jbuf_free(&b);
}

static void m_set_level(struct mreq *m, struct jsonrpc_msg *msg)
{
    const char *level = json_get_str(msg->params, "level");
    int li = session_level_index(level);
    if (li < 0) {
        mreq_reply_error(
            m, msg->id, JSONRPC_INVALID_PARAMS,
            "Invalid params: level must be one of debug, info, notice, warning, error, "
            "critical, alert, emergency",
            NULL);
        return;
    }
    m->s.lvl = li;
    mcp_session_set_level(m, msg, session_log_levels[li]);
}

void mcp_dispatch_request(struct mreq *m, struct jsonrpc_msg *msg)
{
    const char *me = msg->method;
    if (msg->params && msg->params->type != yajl_t_object) {
        mreq_reply_error(m, msg->id, JSONRPC_INVALID_PARAMS, "Invalid params: must be an object",
                         NULL);
        return;
    }
    if (strcmp(me, "tools/call") == 0)
        m_tools_call(m, msg);
    else if (strcmp(me, "tools/list") == 0)
        m_tools_list(m, msg);
    else if (strcmp(me, "ping") == 0) {
        struct jbuf b;
        jbuf_init(&b);
        jsonrpc_open_result(&b, msg->id);
        jbuf_puts(&b, "{}}");
        mreq_reply(m, b.p, b.len);
        jbuf_free(&b);
    } else if (strcmp(me, "resources/list") == 0)
        m_resources_list(m, msg, false);
    else if (strcmp(me, "resources/templates/list") == 0)
        m_resources_list(m, msg, true);
    else if (strcmp(me, "resources/read") == 0)
        m_resources_read(m, msg);
    else if (strcmp(me, "resources/subscribe") == 0)
        m_resources_subscribe(m, msg, true);
    else if (strcmp(me, "resources/unsubscribe") == 0)
        m_resources_subscribe(m, msg, false);
    else if (strcmp(me, "prompts/list") == 0)
        m_prompts_list(m, msg);
    else if (strcmp(me, "prompts/get") == 0)
        m_prompts_get(m, msg);
    else if (strcmp(me, "completion/complete") == 0)
        m_complete(m, msg);
    else if (strcmp(me, "logging/setLevel") == 0)
        m_set_level(m, msg);
    else if (strcmp(me, "initialize") == 0)
        mreq_reply_error(m, msg->id, JSONRPC_INVALID_REQUEST,
                         "initialize must be the only message of a request without a session",
                         NULL);
    else {
        char em[300];
        snprintf(em, sizeof em, "Method not found: %.200s", me);
        mreq_reply_error(m, msg->id, JSONRPC_METHOD_NOT_FOUND, em, NULL);
    }
}

/* Runs the messages of a POST on a verified session. */
static void dispatch_all(struct mreq *m)
{
    size_t nreq = 0;
    for (size_t i = 0; i < m->nmsgs; i++)
        if (m->msgs[i].kind == JSONRPC_REQUEST || m->msgs[i].kind == JSONRPC_INVALID)
            nreq++;
    for (size_t i = 0; i < m->nmsgs; i++) {
        struct jsonrpc_msg *msg = &m->msgs[i];
        if (msg->kind == JSONRPC_NOTIFICATION) {
            if (strcmp(msg->method, "notifications/cancelled") == 0)
                mcp_handle_cancelled(m, msg->params);
        } else if (msg->kind == JSONRPC_RESPONSE) {
            yajl_val v = m->batch ? m->root->u.array.values[i] : m->root;
            mcp_route_response(m, v);
        }
    }
    if (nreq == 0) {
        mreq_respond(m, 202, NULL, NULL, "", 0);
        return;
    }
    if (m->batch) {
        m->outstanding = (int)nreq;
        jbuf_putc(&m->out, '[');
        m->out_first = true;
    }
    /* Keep m alive while dispatching: a synchronous reply may finish the HTTP side. */
    m->refs++;
    for (size_t i = 0; i < m->nmsgs; i++) {
        struct jsonrpc_msg *msg = &m->msgs[i];
        if (msg->kind == JSONRPC_REQUEST)
            mcp_dispatch_request(m, msg);
        else if (msg->kind == JSONRPC_INVALID)
            mreq_reply_error(m, msg->id, JSONRPC_INVALID_REQUEST, msg->why, NULL);
    }
    mreq_unref(m);
}

/* ------------------------------------------------------------------------------------------ */
/* session check, initialize, GET, DELETE                                                      */

static void count_rpc(const char *what)
{
    char labels[64];
    snprintf(labels, sizeof labels, "method=\"%s\"", what);
    metrics_inc("csmcp_mcp_requests_total", labels, 1);
}

static void after_session(struct mreq *m)
{
    if (m->method == HTTP_M_POST)
        dispatch_all(m);
    else if (m->method == HTTP_M_GET)
        mcp_stream_get(m);
    else
        mcp_session_delete(m);
}

struct init_ctx {
    struct mreq *m;
    enum mcp_rev rev;
    char sid[SESSION_ID_MAX];
};

static void initialize_stored(redisReply *r, void *arg)
{
    struct init_ctx *ic = arg;
    struct mreq *m = ic->m;
    if (m->req == NULL) {
        free(ic);
        mreq_unref(m);
        return;
    }
    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        mreq_respond_error(m, 503, MCP_ERR_TRANSPORT, "Session store unavailable",
                           "Retry-After: 1\r\n");
        free(ic);
        mreq_unref(m);
        return;
    }
    if (r->type == REDIS_REPLY_INTEGER && r->integer == 0) {
        /* mcp.max_sessions_per_principal reached (issue 23, finding 8) */
        char em[200], data[120];
        snprintf(em, sizeof em,
                 "too many open sessions for this principal (mcp.max_sessions_per_principal = "
                 "%d): end one with DELETE /mcp or let one expire",
                 mcp_env.cfg->mcp_max_sessions_per_principal);
        snprintf(data, sizeof data, "{\"limit\":\"sessions_per_principal\",\"max\":%d}",
                 mcp_env.cfg->mcp_max_sessions_per_principal);
        struct jbuf e;
        jbuf_init(&e);
        jsonrpc_write_error(&e, m->msgs[0].id, MCP_ERR_RATE_LIMITED, em, data);
        mreq_respond(m, 429, "application/json", "Retry-After: 60\r\n", e.p, e.len);
        jbuf_free(&e);
        metrics_inc("csmcp_mcp_principal_cap_total", "cap=\"sessions\"", 1);
        free(ic);
        mreq_unref(m);
        return;
    }
    struct jbuf b;
    jbuf_init(&b);
    jsonrpc_open_result(&b, m->msgs[0].id);
    jbuf_puts(&b, "{\"protocolVersion\":");
    json_str(&b, session_versions[ic->rev]);
    jbuf_puts(&b, ",\"capabilities\":");
    write_capabilities(&b);
    jbuf_puts(&b, ",\"serverInfo\":{\"name\":\"csmcp\",\"title\":\"Customer Success MCP "
                  "server\",\"version\":\"" CSMCP_VERSION "\"},\"instructions\":"
                  "\"Customer Success data: accounts, health, onboarding, support, renewals, "
                  "expansion and feedback. Use tools/list to discover the tools.\"}}");
    char hdr[160];
    snprintf(hdr, sizeof hdr, "Mcp-Session-Id: %s\r\n", ic->sid);
    mreq_respond(m, 200, "application/json", hdr, b.p, b.len);
    jbuf_free(&b);
    free(ic);
    mreq_unref(m);
}

static void do_initialize(struct mreq *m, struct jsonrpc_msg *msg)
{
    const char *want = json_get_str(msg->params, "protocolVersion");
    yajl_val caps = json_get_obj(msg->params, "capabilities");
    if (want == NULL) {
        struct jbuf b;
        jbuf_init(&b);
        jsonrpc_write_error(&b, msg->id, JSONRPC_INVALID_PARAMS,
                            "Invalid params: protocolVersion must be a string", NULL);
        mreq_respond_json(m, 200, b.p, b.len);
        jbuf_free(&b);
        return;
    }
    int known = session_version_index(want);
    /* unsupported: answer with our latest; the client decides */
    enum mcp_rev rev = known < 0 ? MCP_REV_LATEST : (enum mcp_rev)known;
    struct init_ctx *ic = calloc(1, sizeof *ic);
    if (ic == NULL || session_mint(rev, ic->sid) < 0) {
        free(ic);
        mreq_respond_error(m, 500, JSONRPC_INTERNAL_ERROR, "cannot create a session", NULL);
        return;
    }
    ic->m = m;
    ic->rev = rev;
    struct jbuf cj;
    jbuf_init(&cj);
    if (caps)
        json_val(&cj, caps);
    else
        jbuf_puts(&cj, "{}");
    char key[SESSION_KEY_MAX], ttl[16], cap[16], pkey[160];
    session_key(ic->sid, key);
    snprintf(ttl, sizeof ttl, "%d", mcp_env.cfg->mcp_session_ttl);
    snprintf(cap, sizeof cap, "%d", mcp_env.cfg->mcp_max_sessions_per_principal);
    snprintf(pkey, sizeof pkey, "csmcp:ps:{%.120s}", mreq_principal(m));
    const char *argv[11] = {
        "EVAL", LUA_CREATE,        "2", key, pkey, "info", cj.p, session_versions[rev],
        ttl,    mreq_principal(m), cap};
    m->refs++;
    int rc = redisc_cmd(initialize_stored, ic, 11, argv, NULL);
    jbuf_free(&cj);
    if (rc < 0) {
        m->refs--;
        free(ic);
        mreq_respond_error(m, 503, MCP_ERR_TRANSPORT, "Session store unavailable",
                           "Retry-After: 1\r\n");
        return;
    }
    count_rpc("initialize");
}

static void initialize_gated(struct mreq *m)
{
    do_initialize(m, &m->msgs[0]);
}

/* Failed authentication: one audit record per address, claimed identity and outcome, then a
 * summary per interval (a flood cannot fill the table). */
static void audit_auth_failure(struct mreq *m, const struct auth_result *r)
{
    char principal[80], detail[260];
    snprintf(principal, sizeof principal, "unauthenticated:%s",
             m->req ? http_req_peer(m->req) : "unknown");
    snprintf(detail, sizeof detail, "%s: %s", r->claimed[0] ? r->claimed : "no credentials",
             r->description);
    struct audit_entry ae = {.principal = principal,
                             .method = "auth.failed",
                             .outcome = r->status == 429   ? "limited"
                                        : r->status == 503 ? "unavailable"
                                                           : "denied",
                             .detail = detail};
    audit_record_aggregated(&ae, 1);
}

/* A request refused before dispatch (not JSON, invalid UTF-8, U+0000): its bytes go to the
 * audit trail hex-encoded, so probing leaves a trace; per principal, aggregated beyond
 * MCP_AUDIT_REFUSED_INDIVIDUAL per interval (these come before the rate limit). */
#define MCP_AUDIT_REFUSED_INDIVIDUAL 50
static void audit_refused(struct mreq *m, const char *method, const char *tool, const char *why)
{
    size_t len;
    const char *body = http_req_body(m->req, &len);
    struct audit_entry ae = {.principal = mreq_principal(m),
                             .method = method,
                             .tool = tool,
                             .outcome = "invalid",
                             .detail = why,
                             .raw = body,
                             .raw_len = len};
    audit_record_aggregated(&ae, MCP_AUDIT_REFUSED_INDIVIDUAL);
}

static void post_begin(struct mreq *m)
{
    const char *accept = http_req_header(m->req, "Accept");
    if (!mcp_accepts(accept, "application/json") || !mcp_accepts(accept, "text/event-stream")) {
        mreq_respond_error(m, 406, MCP_ERR_TRANSPORT,
                           "Not Acceptable: Client must accept both application/json and "
                           "text/event-stream",
                           NULL);
        return;
    }
    const char *ct = http_req_header(m->req, "Content-Type");
    if (ct == NULL || strncasecmp(ct, "application/json", 16) != 0) {
        mreq_respond_error(m, 415, MCP_ERR_TRANSPORT,
                           "Unsupported Media Type: Content-Type must be application/json", NULL);
        return;
    }
    size_t len;
    const char *body = http_req_body(m->req, &len);
    char err[256];
    bool had_nul = false;
    m->root = json_parse_ex(body, len, mcp_env.cfg->http_max_json_depth,
                            (size_t)mcp_env.cfg->http_max_string_length, JSON_KEEP_NUL, &had_nul,
                            err, sizeof err);
    if (m->root == NULL) {
        char em[320];
        snprintf(em, sizeof em, "Parse error: %s", err);
        audit_refused(m, "mcp.parse_error", NULL, em);
        mreq_respond_error(m, 400, JSONRPC_PARSE_ERROR, em, NULL);
        return;
    }
    if (had_nul) {
        /* PostgreSQL text cannot hold U+0000 and a C string ends there: refuse, naming it */
        char em[320];
        snprintf(em, sizeof em, "Invalid params: %s", err);
        yajl_val one = m->root->type == yajl_t_object ? m->root : NULL;
        const char *method = json_get_str(one, "method");
        audit_refused(m, method ? method : "mcp.invalid_params",
                      json_get_str(json_get_obj(one, "params"), "name"), em);
        struct jbuf b;
        jbuf_init(&b);
        jsonrpc_write_error(&b, json_get(one, "id"), JSONRPC_INVALID_PARAMS, em, NULL);
        mreq_respond_json(m, 400, b.p, b.len);
        jbuf_free(&b);
        return;
    }
    if (m->root->type == yajl_t_array) {
        size_t n = m->root->u.array.len;
        if (n == 0) {
            mreq_respond_error(m, 400, JSONRPC_INVALID_REQUEST, "Invalid Request: empty batch",
                               NULL);
            return;
        }
        m->batch = true;
        m->msgs = calloc(n, sizeof *m->msgs);
        if (m->msgs == NULL) {
            mreq_respond_error(m, 500, JSONRPC_INTERNAL_ERROR, "out of memory", NULL);
            return;
        }
        m->nmsgs = n;
        for (size_t i = 0; i < n; i++)
            jsonrpc_classify(m->root->u.array.values[i], &m->msgs[i]);
    } else {
        m->msgs = calloc(1, sizeof *m->msgs);
        if (m->msgs == NULL) {
            mreq_respond_error(m, 500, JSONRPC_INTERNAL_ERROR, "out of memory", NULL);
            return;
        }
        m->nmsgs = 1;
        if (jsonrpc_classify(m->root, &m->msgs[0]) == JSONRPC_INVALID) {
            struct jbuf b;
            jbuf_init(&b);
            char em[200];
            snprintf(em, sizeof em, "Invalid Request: %s", m->msgs[0].why);
            jsonrpc_write_error(&b, m->msgs[0].id, JSONRPC_INVALID_REQUEST, em, NULL);
            mreq_respond_json(m, 400, b.p, b.len);
            jbuf_free(&b);
            return;
        }
        if (mcp_modern_detect(m)) { /* 2026-07-28, stateless: modern.c */
            mcp_modern_begin(m);
            return;
        }
        if (m->msgs[0].kind == JSONRPC_REQUEST && strcmp(m->msgs[0].method, "initialize") == 0) {
            mcp_gates_start(m, false, initialize_gated);
            return;
        }
        if (m->msgs[0].method)
            count_rpc(strcmp(m->msgs[0].method, "tools/call") == 0   ? "tools/call"
                      : strcmp(m->msgs[0].method, "tools/list") == 0 ? "tools/list"
                                                                     : "other");
    }
    mcp_gates_session(m, after_session);
}

/* ------------------------------------------------------------------------------------------ */
/* entry                                                                                       */

static void authed(const struct auth_result *r, void *arg)
{
    struct mreq *m = arg;
    if (m->req == NULL) {
        mreq_unref(m);
        return;
    }
    m->auth = *r;
    m->refs++; /* hold m while the continuation runs */
    if (r->status) {
        audit_auth_failure(m, r);
        auth_fail(m, r, NULL);
    } else if (m->method == HTTP_M_POST) {
        post_begin(m);
    } else {
        mcp_gates_session(m, after_session);
    }
    mreq_unref(m);
}

static void mcp_handler(struct http_req *req, void *arg)
{
    struct mreq *m = calloc(1, sizeof *m);
    if (m == NULL) {
        http_respond(req, 503, "application/json", NULL, "{}", 2);
        return;
    }
    m->req = req;
    m->refs = 1;
    m->method = http_req_method(req);
    m->s.lvl = 1;
    jbuf_init(&m->out);

    const char *host = http_req_header(req, "Host");
    const char *origin = http_req_header(req, "Origin");
    if (!host_allowed(host)) {
        mreq_respond_error(m, 403, MCP_ERR_TRANSPORT, "Forbidden: Host not allowed", NULL);
        return;
    }
    if (origin && !origin_allowed(origin)) {
        mreq_respond_error(m, 403, MCP_ERR_TRANSPORT, "Forbidden: Origin not allowed", NULL);
        return;
    }
    if (origin)
        snprintf(m->hdrs, sizeof m->hdrs,
                 "Access-Control-Allow-Origin: %.256s\r\nVary: Origin\r\n"
                 "Access-Control-Expose-Headers: Mcp-Session-Id, MCP-Protocol-Version, "
                 "WWW-Authenticate\r\n",
                 origin);
    if (m->method == HTTP_M_OPTIONS) {
        mreq_respond(m, 204, NULL,
                     "Access-Control-Allow-Methods: GET, POST, DELETE, OPTIONS\r\n"
                     "Access-Control-Allow-Headers: Content-Type, Accept, Authorization, "
                     "Mcp-Session-Id, MCP-Protocol-Version, Last-Event-ID, Mcp-Method, "
                     "Mcp-Name\r\n"
                     "Access-Control-Max-Age: 600\r\n",
                     "", 0);
        return;
    }
    if (m->method != HTTP_M_POST && m->method != HTTP_M_GET && m->method != HTTP_M_DELETE) {
        mreq_respond_error(m, 405, MCP_ERR_TRANSPORT, "Method not allowed",
                           "Allow: GET, POST, DELETE\r\n");
        return;
    }
    /* The HTTP reference (refs = 1) is handed to authed. */
    auth_authenticate(http_req_header(req, "Authorization"), http_req_peer(req), authed, m);
}

static void make_tool_json(void)
{
    size_t n = registry_count();
    M.tool_json = calloc(n ? n : 1, sizeof(char *));
    M.tool_json_old = calloc(n ? n : 1, sizeof(char *));
    if (M.tool_json == NULL || M.tool_json_old == NULL)
        abort();
    for (size_t i = 0; i < n; i++) {
        M.tool_json[i] = tool_entry(registry_at(i)->def, true);
        M.tool_json_old[i] = tool_entry(registry_at(i)->def, false);
    }
}

int mcp_init(struct event_base *base, const struct cfg *cfg, struct pgpool *pg)
{
    memset(&M, 0, sizeof M);
    memset(&mcp_env, 0, sizeof mcp_env);
    mcp_env.base = base;
    mcp_env.cfg = cfg;
    mcp_env.pg = pg;
    char err[256];
    if (session_init(cfg, err, sizeof err) < 0) {
        log_error("session secret: %s (set CSMCP_SESSION_SECRET or mcp.session_secret_file)", err);
        return -1;
    }
    uint8_t rnd[8];
    if (crypto_random(rnd, sizeof rnd) < 0)
        return -1;
    crypto_hex(rnd, sizeof rnd, mcp_env.node);
    make_tool_json();
    mcp_up = (struct mcp_upcalls){.dispatch_request = mcp_dispatch_request,
                                  .modern_rewrite = mcp_modern_rewrite,
                                  .listen_alert = mcp_listen_alert,
                                  .mrtr_tool_request = mcp_mrtr_tool_request};
    if (mcp_calls_init() < 0 || mcp_gates_init() < 0 || alerts_init() < 0 || mcp_mrtr_init() < 0)
        return -1;
    return http_route("/mcp", "/mcp", mcp_handler, NULL);
}

void mcp_shutdown(void)
{
    mcp_drain();
    for (size_t i = 0; M.tool_json && i < registry_count(); i++) {
        free(M.tool_json[i]);
        free(M.tool_json_old[i]);
    }
    free(M.tool_json);
    free(M.tool_json_old);
    M.tool_json = M.tool_json_old = NULL;
    mcp_gates_shutdown();
    scache_shutdown();
    session_shutdown();
}

int mcp_inflight(void)
{
    return mcp_calls_inflight() + mcp_streams_open();
}
