/*
 * modern.c - MCP revision 2026-07-28 (the stateless "modern" era) on the same /mcp endpoint as
 * the session-based revisions 2024-11-05 .. 2025-11-25 (docs/protocol.md §modern era).
 *
 * Era detection (mcp_modern_detect, one JSON-RPC message per POST; a JSON array is legacy):
 *   1. params._meta carries "io.modelcontextprotocol/protocolVersion" -> modern (whatever else
 *      the request carries: an Mcp-Session-Id is then ignored, as the revision asks);
 *   2. otherwise an Mcp-Session-Id header, or the method initialize -> legacy;
 *   3. otherwise an MCP-Protocol-Version header naming no legacy revision -> modern;
 *   4. otherwise the method server/discover -> modern;
 *   5. otherwise legacy (which answers 400: a session is required).
 * A modern request is then validated in the revision's order: _meta (-32602, 400), the
 * MCP-Protocol-Version header against _meta (-32020, 400), the version (-32022, 400), the
 * Mcp-Method and Mcp-Name headers (-32020, 400), the method (-32601, 404); then the rate limit
 * of the principal (gates.c, no session check) and the dispatch shared with the legacy era
 * (mcp.c: scopes, argument validation, audit, tool calls).
 *
 * Invariants:
 * - Nothing of a modern request touches the session store: no Redis lookup, no session id
 *   minted or echoed, no SSE event stored (streams.c stores only for sessions), so any worker
 *   of any host answers it.
 * - Closing a modern request's connection before its answer cancels its tool call (the revision's
 *   cancellation): the handler still finishes, the audit record says cancelled, nothing is sent.
 * - Every response of a modern request passes mcp_modern_rewrite (streams.c, via mcp_up): a
 *   result gains resultType "complete" (unless its writer set resultType itself), caching hints
 *   on the cacheable methods and _meta serverInfo; an error gets the request's id and no code of
 *   the ranges the revision forbids (-32002 -> -32602; -32000..-32019 and the spec-reserved
 *   -32029/-32030 -> application codes -31xxx, see MODERN_CODE).
 */
#include "mcp.h"
#include "mcp_int.h"

#include "cfg.h"
#include "crypto.h"
#include "csmcp_build.h"
#include "log.h"
#include "metrics.h"
#include "registry.h"
#include "session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODERN_VERSION "2026-07-28"
/* Every version this server speaks: the modern one per request, the legacy ones after
 * initialize (a dual-era client falls back to initialize for those). */
#define SUPPORTED_JSON                                                                             \
    "[\"2026-07-28\",\"2025-11-25\",\"2025-06-18\",\"2025-03-26\",\"2024-11-05\"]"
#define SERVER_INFO_JSON                                                                           \
    "{\"name\":\"csmcp\",\"title\":\"Customer Success MCP server\",\"version\":\"" CSMCP_VERSION   \
    "\"}"
/* Caching hints: lists change only with a reload (new code or configuration); they depend on
 * the token's scopes, so no shared cache may keep them. Resource contents (alerts) are live. */
#define LIST_TTL_MS 60000
#define READ_TTL_MS 0

static const char K_VERSION[] = "io.modelcontextprotocol/protocolVersion";
static const char K_CAPS[] = "io.modelcontextprotocol/clientCapabilities";
static const char K_INFO[] = "io.modelcontextprotocol/clientInfo";
static const char K_LOGLEVEL[] = "io.modelcontextprotocol/logLevel";

/* The methods of the modern era this server implements. */
static const char *const modern_methods[] = {
    "server/discover",     "tools/list",           "tools/call",  "resources/list",
    "resources/read",      "prompts/list",         "prompts/get", "resources/templates/list",
    "completion/complete", "subscriptions/listen", NULL,
};

/* The modern era's code for a legacy-era one (MODERN_CODE in docs/protocol.md). */
static int modern_code(int code)
{
    switch (code) {
    case MCP_ERR_RESOURCE_NOT_FOUND:
        return JSONRPC_INVALID_PARAMS; /* -32002 is retired by 2026-07-28 */
    case MCP_ERR_TRANSPORT:
        return MODERN_ERR_UNAVAILABLE;
    case MCP_ERR_AUTH: /* also MCP_ERR_SESSION_NOT_FOUND, MCP_ERR_TIMEOUT: same value */
        return MODERN_ERR_AUTH_OR_TIMEOUT;
    case MCP_ERR_RATE_LIMITED:
        return MODERN_ERR_RATE_LIMITED;
    case MCP_ERR_LIMITER_UNAVAILABLE:
        return MODERN_ERR_LIMITER_UNAVAILABLE;
    default:
        return code;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* detection                                                                                   */

bool mcp_modern_detect(struct mreq *m)
{
    if (m->batch || m->nmsgs != 1)
        return false;
    struct jsonrpc_msg *msg = &m->msgs[0];
    yajl_val meta = json_get_obj(msg->params, "_meta");
    if (meta && json_get(meta, K_VERSION))
        return true;
    if (http_req_header(m->req, "Mcp-Session-Id"))
        return false;
    if (msg->method && strcmp(msg->method, "initialize") == 0)
        return false;
    const char *pv = http_req_header(m->req, "MCP-Protocol-Version");
    if (pv && session_version_index(pv) < 0)
        return true;
    return msg->method && strcmp(msg->method, "server/discover") == 0;
}

/* ------------------------------------------------------------------------------------------ */
/* errors and validation                                                                       */

/* An error response to the request (its id), with HTTP status. */
static void fail(struct mreq *m, int status, int code, const char *message, const char *data)
{
    struct jbuf b;
    jbuf_init(&b);
    jsonrpc_write_error(&b, m->msgs[0].id, code, message, data);
    mreq_respond(m, status, "application/json", NULL, b.p, b.len);
    jbuf_free(&b);
}

/* Decodes an Mcp-Name / Mcp-Param value: "=?base64?B64?=" or plain. Returns false when the
 * sentinel form does not decode. */
static bool strict_base64(const char *p, size_t n)
{
    if (n == 0 || n % 4 != 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        bool alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                     c == '+' || c == '/';
        if (!alpha && !(c == '=' && i >= n - 2 && (i == n - 1 || p[n - 1] == '=')))
            return false;
    }
    return true;
}

static bool header_value(const char *h, char *out, size_t outlen)
{
    size_t n = strlen(h);
    if (n >= 11 && strncmp(h, "=?base64?", 9) == 0 && strcmp(h + n - 2, "?=") == 0) {
        if (!strict_base64(h + 9, n - 11)) /* RFC 4648 base64, padded: nothing else */
            return false;
        int k = crypto_b64url_decode(h + 9, n - 11, (uint8_t *)out, outlen - 1);
        if (k < 0)
            return false;
        out[k] = '\0';
        return strlen(out) == (size_t)k && json_utf8_valid(out, (size_t)k);
    }
    snprintf(out, outlen, "%s", h);
    return n < outlen;
}

/* A header value without the optional whitespace around it (RFC 9110 §5.5), or NULL. */
static const char *header(struct mreq *m, const char *name, char *buf, size_t len)
{
    const char *v = http_req_header(m->req, name);
    if (v == NULL)
        return NULL;
    while (*v == ' ' || *v == '\t')
        v++;
    size_t n = strlen(v);
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    snprintf(buf, len, "%.*s", (int)n, v);
    return buf;
}

/*
 * Mcp-Param-{Name} of a tools/call (SEP-2243): every top-level property of the tool's
 * inputSchema annotated "x-mcp-header": Name whose argument is present and not null must come
 * with the header, equal after decoding to the argument's text (string as is, integer in
 * decimal and compared as a number, boolean true/false). NULL when valid, else why (in em).
 */
static const char *check_param_headers(struct mreq *m, const char *tool, yajl_val args, char *em,
                                       size_t emlen)
{
    const struct registry_tool *t = registry_find(tool);
    if (t == NULL || strstr(t->def->input_schema, "\"x-mcp-header\"") == NULL)
        return NULL;
    char err[64];
    yajl_val schema = json_parse(t->def->input_schema, strlen(t->def->input_schema), 64, 1 << 20,
                                 err, sizeof err);
    yajl_val props = json_get_obj(schema, "properties");
    const char *why = NULL;
    for (size_t i = 0; props && i < props->u.object.len && why == NULL; i++) {
        const char *pname = props->u.object.keys[i];
        const char *hname = json_get_str(props->u.object.values[i], "x-mcp-header");
        yajl_val v = json_get(args, pname);
        if (hname == NULL || v == NULL || v->type == yajl_t_null)
            continue;
        char hdr[160], hb[2048], dec[2048], want[64];
        snprintf(hdr, sizeof hdr, "Mcp-Param-%.100s", hname);
        const char *h = header(m, hdr, hb, sizeof hb);
        if (h == NULL) {
            snprintf(em, emlen,
                     "Header mismatch: the %s header is required (argument %s is in the body)", hdr,
                     pname);
            why = em;
        } else if (!header_value(h, dec, sizeof dec)) {
            snprintf(em, emlen, "Header mismatch: %s is not valid =?base64?...?= UTF-8", hdr);
            why = em;
        } else {
            const char *body = NULL;
            bool same;
            if (v->type == yajl_t_string) {
                body = v->u.string;
                same = strcmp(dec, body) == 0;
            } else if (YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v)) {
                body = YAJL_IS_TRUE(v) ? "true" : "false";
                same = strcmp(dec, body) == 0;
            } else if (YAJL_IS_NUMBER(v)) {
                char *end;
                double d = strtod(dec, &end);
                snprintf(want, sizeof want, "%.17g", YAJL_GET_DOUBLE(v));
                body = want;
                same = end != dec && *end == '\0' && d == YAJL_GET_DOUBLE(v);
            } else {
                same = true; /* objects and arrays cannot be annotated (tools/list declares) */
            }
            if (!same) {
                snprintf(em, emlen,
                         "Header mismatch: %s header value '%.100s' does not match body "
                         "arguments.%s '%.100s'",
                         hdr, dec, pname, body ? body : "");
                why = em;
            }
        }
    }
    yajl_tree_free(schema);
    return why;
}

static bool known_method(const char *me)
{
    for (int i = 0; modern_methods[i]; i++)
        if (strcmp(me, modern_methods[i]) == 0)
            return true;
    return false;
}

static void count_rpc(const char *me)
{
    char labels[64];
    snprintf(labels, sizeof labels, "method=\"%s\"",
             strcmp(me, "tools/call") == 0   ? "tools/call"
             : strcmp(me, "tools/list") == 0 ? "tools/list"
                                             : "other");
    metrics_inc("csmcp_mcp_requests_total", labels, 1);
    metrics_inc("csmcp_mcp_modern_requests_total", NULL, 1);
}

/* ------------------------------------------------------------------------------------------ */
/* server/discover and dispatch                                                                */

static void m_discover(struct mreq *m, struct jsonrpc_msg *msg)
{
    struct jbuf b;
    jbuf_init(&b);
    jsonrpc_open_result(&b, msg->id);
    /* As the legacy capabilities: resources.subscribe is now resourceSubscriptions on
     * subscriptions/listen (csmcp://alerts[/<client_id>]); no list ever changes without a
     * reload, so no listChanged. */
    jbuf_puts(&b, "{\"resultType\":\"complete\",\"supportedVersions\":" SUPPORTED_JSON
                  ",\"capabilities\":{\"tools\":{\"listChanged\":false},\"resources\":{"
                  "\"subscribe\":true,\"listChanged\":false},\"prompts\":{\"listChanged\":"
                  "false},\"logging\":{},\"completions\":{}}");
    jbuf_printf(&b,
                ",\"instructions\":\"Customer Success data: accounts, health, onboarding, "
                "support, renewals, expansion and feedback. Use tools/list to discover the "
                "tools.\",\"ttlMs\":%d,\"cacheScope\":\"private\",\"_meta\":{"
                "\"io.modelcontextprotocol/serverInfo\":" SERVER_INFO_JSON "}}}",
                LIST_TTL_MS);
    mreq_reply(m, b.p, b.len);
    jbuf_free(&b);
}

#define ALERTS_URI "csmcp://alerts"

/* A URI a listen stream can be notified about: csmcp://alerts or csmcp://alerts/<client_id>. */
static bool listenable(const char *uri)
{
    size_t n = strlen(ALERTS_URI);
    return strncmp(uri, ALERTS_URI, n) == 0 && (uri[n] == '\0' || (uri[n] == '/' && uri[n + 1]));
}

/*
 * subscriptions/listen: the acknowledgement (the notification types agreed: only
 * resourceSubscriptions of the alerts resources; no list changes without a reload), then
 * notifications/resources/updated as the monitors open alerts, each tagged with the
 * subscription id (the request's id), until the client closes or the server drains.
 */
static void m_listen(struct mreq *m, struct jsonrpc_msg *msg)
{
    yajl_val f = json_get(msg->params, "notifications");
    yajl_val subs = json_get(f, "resourceSubscriptions");
    if (f == NULL || f->type != yajl_t_object || (subs && subs->type != yajl_t_array)) {
        mreq_reply_error(m, msg->id, JSONRPC_INVALID_PARAMS,
                         "Invalid params: notifications (an object; resourceSubscriptions an "
                         "array of URIs) is required",
                         NULL);
        return;
    }
    m->listen = subs;
    struct jbuf id, b;
    jbuf_init(&id);
    jbuf_init(&b);
    jsonrpc_write_id(&id, msg->id);
    jbuf_puts(&b, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/subscriptions/acknowledged\","
                  "\"params\":{\"notifications\":{");
    bool first = true;
    for (size_t i = 0; subs && i < subs->u.array.len; i++) {
        yajl_val u = subs->u.array.values[i];
        if (u->type != yajl_t_string || !listenable(u->u.string))
            continue;
        jbuf_puts(&b, first ? "\"resourceSubscriptions\":[" : ",");
        json_str(&b, u->u.string);
        first = false;
    }
    jbuf_puts(&b, first ? "}" : "]}");
    jbuf_puts(&b, ",\"_meta\":{\"io.modelcontextprotocol/subscriptionId\":");
    jbuf_append(&b, id.p, id.len);
    jbuf_puts(&b, "}}}");
    mcp_stream_listen(m, b.p, b.len);
    jbuf_free(&b);
    jbuf_free(&id);
}

void mcp_listen_alert(struct mreq *m, const char *client_id)
{
    if (m->req == NULL || m->listen == NULL)
        return;
    char mine[256];
    snprintf(mine, sizeof mine, "%s/%s", ALERTS_URI, client_id);
    for (size_t i = 0; i < m->listen->u.array.len; i++) {
        yajl_val u = m->listen->u.array.values[i];
        if (u->type != yajl_t_string || (strcmp(u->u.string, ALERTS_URI) != 0 &&
                                         (!client_id[0] || strcmp(u->u.string, mine) != 0)))
            continue;
        struct jbuf b;
        jbuf_init(&b);
        jbuf_puts(&b, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/resources/updated\","
                      "\"params\":{\"uri\":");
        json_str(&b, u->u.string);
        jbuf_puts(&b, ",\"_meta\":{\"io.modelcontextprotocol/subscriptionId\":");
        jsonrpc_write_id(&b, m->msgs[0].id);
        jbuf_puts(&b, "}}}");
        mreq_sse_send(m, b.p, b.len, false);
        jbuf_free(&b);
        metrics_inc("csmcp_mcp_resource_notifications_total", NULL, 1);
    }
}

static void modern_run(struct mreq *m)
{
    struct jsonrpc_msg *msg = &m->msgs[0];
    if (strcmp(msg->method, "server/discover") == 0)
        m_discover(m, msg);
    else if (strcmp(msg->method, "subscriptions/listen") == 0)
        m_listen(m, msg);
    else if (!mcp_mrtr_fixture(m, msg) && mcp_mrtr_retry_check(m, msg))
        mcp_up.dispatch_request(m, msg);
}

/* The client went away before the answer: the call is cancelled; it still finishes (and is
 * audited as cancelled) but sends nothing. m lives until then (the HTTP reference). */
static void closed(struct http_req *r, void *arg)
{
    mcp_calls_cancel_mreq(arg);
}

void mcp_modern_begin(struct mreq *m)
{
    struct jsonrpc_msg *msg = &m->msgs[0];
    m->modern = true;
    /* Tool results and validation as in the latest legacy revision (structuredContent,
     * argument errors as isError results), which 2026-07-28 keeps. */
    m->s.rev = MCP_REV_2025_11_25;
    m->s.lvl = SESSION_NLEVELS; /* no notifications/message without _meta logLevel */
    if (msg->kind == JSONRPC_NOTIFICATION) {
        /* 2026-07-28 defines no client notification on HTTP: accepted and ignored */
        mreq_respond(m, 202, NULL, NULL, "", 0);
        return;
    }
    if (msg->kind != JSONRPC_REQUEST) {
        fail(m, 400, JSONRPC_INVALID_REQUEST,
             "Invalid Request: a 2026-07-28 client sends no JSON-RPC responses (input goes in "
             "inputResponses of a retried request)",
             NULL);
        return;
    }
    count_rpc(msg->method);
    if (msg->params && msg->params->type != yajl_t_object) {
        fail(m, 400, JSONRPC_INVALID_PARAMS, "Invalid params: must be an object", NULL);
        return;
    }
    yajl_val meta = json_get_obj(msg->params, "_meta");
    yajl_val ver = json_get(meta, K_VERSION), caps = json_get(meta, K_CAPS);
    yajl_val info = json_get(meta, K_INFO), lvl = json_get(meta, K_LOGLEVEL);
    char em[512];
    const char *why = NULL;
    if (meta == NULL)
        why = "Invalid params: params._meta is required (2026-07-28: every request carries "
              "io.modelcontextprotocol/protocolVersion and "
              "io.modelcontextprotocol/clientCapabilities)";
    else if (ver == NULL || ver->type != yajl_t_string)
        why = "Invalid params: _meta[\"io.modelcontextprotocol/protocolVersion\"] is required "
              "(a string)";
    else if (caps == NULL || caps->type != yajl_t_object)
        why = "Invalid params: _meta[\"io.modelcontextprotocol/clientCapabilities\"] is required "
              "(an object, {} for none)";
    else if (info && info->type != yajl_t_object)
        why = "Invalid params: _meta[\"io.modelcontextprotocol/clientInfo\"] must be an object";
    else if (lvl && (lvl->type != yajl_t_string || session_level_index(lvl->u.string) < 0))
        why = "Invalid params: _meta[\"io.modelcontextprotocol/logLevel\"] must be one of debug, "
              "info, notice, warning, error, critical, alert, emergency";
    if (why) {
        fail(m, 400, JSONRPC_INVALID_PARAMS, why, NULL);
        return;
    }
    char hvb[128], hmb[256], hnb[2048];
    const char *hv = header(m, "MCP-Protocol-Version", hvb, sizeof hvb);
    if (hv == NULL || strcmp(hv, ver->u.string) != 0) {
        if (hv == NULL)
            snprintf(em, sizeof em, "Header mismatch: the MCP-Protocol-Version header is required");
        else
            snprintf(em, sizeof em,
                     "Header mismatch: MCP-Protocol-Version header value '%.64s' does not match "
                     "_meta protocolVersion '%.64s'",
                     hv, ver->u.string);
        fail(m, 400, MODERN_ERR_HEADER_MISMATCH, em, NULL);
        return;
    }
    if (strcmp(ver->u.string, MODERN_VERSION) != 0) {
        struct jbuf d;
        jbuf_init(&d);
        jbuf_puts(&d, "{\"supported\":" SUPPORTED_JSON ",\"requested\":");
        json_str(&d, ver->u.string);
        jbuf_putc(&d, '}');
        snprintf(em, sizeof em, "Unsupported protocol version: %.64s%s", ver->u.string,
                 session_version_index(ver->u.string) >= 0
                     ? " is served in the legacy era only: send initialize (without _meta) to open "
                       "a session"
                     : "");
        fail(m, 400, MODERN_ERR_UNSUPPORTED_VERSION, em, d.p);
        jbuf_free(&d);
        return;
    }
    const char *hm = header(m, "Mcp-Method", hmb, sizeof hmb);
    if (hm == NULL || strcmp(hm, msg->method) != 0) {
        if (hm == NULL)
            snprintf(em, sizeof em, "Header mismatch: the Mcp-Method header is required");
        else
            snprintf(em, sizeof em,
                     "Header mismatch: Mcp-Method header value '%.100s' does not match body "
                     "method '%.100s'",
                     hm, msg->method);
        fail(m, 400, MODERN_ERR_HEADER_MISMATCH, em, NULL);
        return;
    }
    const char *name_key =
        strcmp(msg->method, "resources/read") == 0                                          ? "uri"
        : strcmp(msg->method, "tools/call") == 0 || strcmp(msg->method, "prompts/get") == 0 ? "name"
                                                                                            : NULL;
    if (name_key) {
        const char *body = json_get_str(msg->params, name_key);
        const char *hn = header(m, "Mcp-Name", hnb, sizeof hnb);
        char dec[2048];
        if (hn == NULL) {
            snprintf(em, sizeof em, "Header mismatch: the Mcp-Name header is required for %s",
                     msg->method);
            fail(m, 400, MODERN_ERR_HEADER_MISMATCH, em, NULL);
            return;
        }
        if (!header_value(hn, dec, sizeof dec)) {
            fail(m, 400, MODERN_ERR_HEADER_MISMATCH,
                 "Header mismatch: the Mcp-Name header is not valid =?base64?...?= UTF-8", NULL);
            return;
        }
        if (body == NULL || strcmp(dec, body) != 0) {
            snprintf(em, sizeof em,
                     "Header mismatch: Mcp-Name header value '%.100s' does not match body "
                     "params.%s '%.100s'",
                     dec, name_key, body ? body : "(absent)");
            fail(m, 400, MODERN_ERR_HEADER_MISMATCH, em, NULL);
            return;
        }
    }
    if (strcmp(msg->method, "tools/call") == 0 && json_get_str(msg->params, "name")) {
        const char *pwhy = check_param_headers(m, json_get_str(msg->params, "name"),
                                               json_get(msg->params, "arguments"), em, sizeof em);
        if (pwhy) {
            fail(m, 400, MODERN_ERR_HEADER_MISMATCH, pwhy, NULL);
            return;
        }
    }
    if (!known_method(msg->method)) {
        snprintf(em, sizeof em, "Method not found: %.200s%s", msg->method,
                 strcmp(msg->method, "initialize") == 0
                     ? " (2026-07-28 has no initialize: send it without _meta for the legacy era)"
                     : "");
        fail(m, 404, JSONRPC_METHOD_NOT_FOUND, em, NULL);
        return;
    }
    m->meta = meta;
    m->client_caps = caps;
    /* Closing the request (its stream) is its cancellation in 2026-07-28. */
    http_req_on_close(m->req, closed, m);
    if (lvl)
        m->s.lvl = session_level_index(lvl->u.string);
    mcp_gates_start(m, false, modern_run);
}

/* ------------------------------------------------------------------------------------------ */
/* response rewriting                                                                          */

static bool cacheable(const char *me)
{
    return me && (strcmp(me, "tools/list") == 0 || strcmp(me, "prompts/list") == 0 ||
                  strcmp(me, "resources/list") == 0 ||
                  strcmp(me, "resources/templates/list") == 0 || strcmp(me, "resources/read") == 0);
}

static char *rewrite_error(struct mreq *m, const char *json, size_t len, size_t *outlen)
{
    char err[128];
    yajl_val root = json_parse(json, len, 64, len + 1, err, sizeof err);
    yajl_val e = json_get_obj(root, "error");
    if (e == NULL) {
        yajl_tree_free(root);
        return NULL;
    }
    yajl_val id = json_get(root, "id");
    if ((id == NULL || id->type == yajl_t_null) && m->nmsgs == 1)
        id = m->msgs[0].id;
    long long code = 0;
    json_get_int(e, "code", &code);
    const char *message = json_get_str(e, "message");
    yajl_val data = json_get(e, "data");
    struct jbuf d, b;
    jbuf_init(&d);
    if (data)
        json_val(&d, data);
    jbuf_init(&b);
    jsonrpc_write_error(&b, id, modern_code((int)code), message ? message : "error",
                        data ? d.p : NULL);
    jbuf_free(&d);
    yajl_tree_free(root);
    *outlen = b.len;
    return jbuf_steal(&b);
}

char *mcp_modern_rewrite(struct mreq *m, const char *json, size_t len, size_t *outlen)
{
    if (len == 0)
        return NULL;
    /* Top-level keys come first: a quote inside a JSON string is escaped, so the first bare
     * "result":{ or "error":{ is the response's own key (jsonrpc_open_result and
     * jsonrpc_write_error write jsonrpc, id, then it). */
    const char *r = memmem(json, len, "\"result\":{", 10);
    const char *e = memmem(json, len, "\"error\":{", 9);
    if (e && (r == NULL || e < r))
        return rewrite_error(m, json, len, outlen);
    if (r == NULL)
        return NULL;
    const char *body = r + 10;
    size_t head = (size_t)(body - json);
    if (len - head >= 12 && memcmp(body, "\"resultType\"", 12) == 0)
        return NULL; /* written for this era (discover, input_required) */
    const char *me = m->nmsgs == 1 ? m->msgs[0].method : NULL;
    struct jbuf b;
    jbuf_init(&b);
    jbuf_append(&b, json, head);
    jbuf_puts(&b, "\"resultType\":\"complete\",");
    if (cacheable(me))
        jbuf_printf(&b, "\"ttlMs\":%d,\"cacheScope\":\"private\",",
                    strcmp(me, "resources/read") == 0 ? READ_TTL_MS : LIST_TTL_MS);
    jbuf_puts(&b, "\"_meta\":{\"io.modelcontextprotocol/serverInfo\":" SERVER_INFO_JSON "}");
    if (*body != '}')
        jbuf_putc(&b, ',');
    jbuf_append(&b, body, len - head);
    *outlen = b.len;
    return jbuf_steal(&b);
}
