/*
 * modern_mrtr.c - the 2026-07-28 input-required flow (MRTR, SEP-2322): a tools/call or
 * prompts/get answers {resultType:"input_required", inputRequests:{key:{method, params}},
 * requestState?} and the client retries the same request (new id) with inputResponses and the
 * echoed requestState. Here: the signed requestState, and the conformance fixtures that use it
 * (mcp.conformance_fixtures only; their registry entries are in worker/tools/fixtures/).
 *
 * requestState = "v1." base64url(state JSON) "." base64url(HMAC-SHA256(K, "v1\n" method "\n"
 * name "\n" base64url(state JSON))), K = session_derive_key("csmcp mrtr requestState v1"): the
 * session secret every worker shares, so any worker verifies what another issued. The state
 * JSON holds "exp" (unix seconds, issue + MRTR_STATE_TTL_S); the MAC binds it to the method and
 * the tool or prompt name, so a state is useless for another request.
 *
 * Invariants:
 * - A requestState is accepted only if it is at most MRTR_STATE_MAX characters, its MAC
 *   verifies (constant-time compare), it is unexpired and its JSON parses; otherwise the
 *   request is answered -32602 naming which of these failed. Nothing about it is stored.
 * - inputRequests are made only for capabilities the request declared in _meta
 *   clientCapabilities; a request needing an undeclared one is answered -32021 (HTTP 400) with
 *   data.requiredCapabilities as a ClientCapabilities object.
 * - Every fixture call leaves one audit record (outcome ok, input_required or invalid), after
 *   the rate limit and the scope check, like any tools/call.
 * - Registry tools (product tools, the legacy fixtures) keep the tool API of worker/tool.h: on
 *   the modern wire tool_call_request becomes mcp_mrtr_tool_request. Their n-th request has the
 *   key "input-<n>"; the requestState carries the SHA-256 of the call's arguments, the pending
 *   key and the answers of the earlier rounds, so a handler that asks several times in sequence
 *   sees the same answers on every retry; a retry with other arguments is refused (-32602).
 *   Each round is one audited call with outcome input_required.
 */
#include "mcp.h"
#include "mcp_int.h"

#include "audit.h"
#include "auth.h"
#include "cfg.h"
#include "crypto.h"
#include "log.h"
#include "registry.h"
#include "session.h"
#include "tool.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MRTR_STATE_TTL_S 600
#define MRTR_STATE_MAX   4096 /* characters of a requestState */
#define MRTR_PAYLOAD_MAX 2900 /* bytes of its state JSON (base64url: 4/3 of it) */
#define MRTR_KEY_LABEL   "csmcp mrtr requestState v1"

static uint8_t mrtr_key[32];
static bool mrtr_key_ok;

int mcp_mrtr_init(void)
{
    mrtr_key_ok = session_derive_key(MRTR_KEY_LABEL, mrtr_key) == 0;
    return mrtr_key_ok ? 0 : -1;
}

/* ------------------------------------------------------------------------------------------ */
/* requestState                                                                                */

static int state_mac(const char *method, const char *name, const char *p64, size_t plen,
                     uint8_t mac[32])
{
    struct jbuf in;
    jbuf_init(&in);
    jbuf_printf(&in, "v1\n%s\n%s\n", method, name);
    jbuf_append(&in, p64, plen);
    int rc = crypto_hmac_sha256(mrtr_key, sizeof mrtr_key, in.p, in.len, mac);
    jbuf_free(&in);
    return rc;
}

char *mcp_mrtr_seal(const char *method, const char *name, const char *state_json)
{
    size_t n = strlen(state_json);
    if (!mrtr_key_ok || n == 0 || n > MRTR_PAYLOAD_MAX - 32 || state_json[n - 1] != '}')
        return NULL;
    /* state_json with "exp" added as its last member */
    struct jbuf s;
    jbuf_init(&s);
    jbuf_append(&s, state_json, n - 1);
    jbuf_printf(&s, "%s\"exp\":%lld}", n > 2 ? "," : "", (long long)time(NULL) + MRTR_STATE_TTL_S);
    char p64[MRTR_PAYLOAD_MAX * 4 / 3 + 8], m64[48];
    uint8_t mac[32];
    int rc = crypto_b64url_encode(s.p, s.len, p64, sizeof p64);
    jbuf_free(&s);
    if (rc < 0 || state_mac(method, name, p64, strlen(p64), mac) < 0 ||
        crypto_b64url_encode(mac, sizeof mac, m64, sizeof m64) < 0)
        return NULL;
    struct jbuf out;
    jbuf_init(&out);
    jbuf_printf(&out, "v1.%s.%s", p64, m64);
    return jbuf_steal(&out);
}

char *mcp_mrtr_open(const char *method, const char *name, const char *rs, char *why, size_t whylen)
{
    size_t n = strlen(rs);
    if (n > MRTR_STATE_MAX) {
        snprintf(why, whylen, "requestState is longer than %d characters", MRTR_STATE_MAX);
        return NULL;
    }
    const char *dot = strncmp(rs, "v1.", 3) == 0 ? strchr(rs + 3, '.') : NULL;
    if (dot == NULL || !mrtr_key_ok) {
        snprintf(why, whylen, "requestState is not one this server issued");
        return NULL;
    }
    uint8_t mac[32], got[40];
    int k = crypto_b64url_decode(dot + 1, strlen(dot + 1), got, sizeof got);
    if (k != 32 || state_mac(method, name, rs + 3, (size_t)(dot - rs - 3), mac) < 0 ||
        !crypto_ct_equal(mac, got, 32)) {
        snprintf(why, whylen,
                 "requestState failed integrity verification (modified, or issued for another "
                 "request)");
        return NULL;
    }
    uint8_t payload[MRTR_PAYLOAD_MAX + 1];
    int pn = crypto_b64url_decode(rs + 3, (size_t)(dot - rs - 3), payload, MRTR_PAYLOAD_MAX);
    char err[96];
    yajl_val v = pn > 0 ? json_parse((const char *)payload, (size_t)pn, 16, MRTR_PAYLOAD_MAX, err,
                                     sizeof err)
                        : NULL;
    long long exp = 0;
    if (v == NULL || !json_get_int(v, "exp", &exp)) {
        yajl_tree_free(v);
        snprintf(why, whylen, "requestState is not one this server issued");
        return NULL;
    }
    yajl_tree_free(v);
    if (exp < (long long)time(NULL)) {
        snprintf(why, whylen,
                 "requestState expired (older than %d s): call again without inputResponses",
                 MRTR_STATE_TTL_S);
        return NULL;
    }
    char *s = malloc((size_t)pn + 1);
    if (s == NULL)
        abort();
    memcpy(s, payload, (size_t)pn);
    s[pn] = '\0';
    return s;
}

/* ------------------------------------------------------------------------------------------ */
/* fixtures                                                                                    */

enum fx {
    FX_ELICIT,
    FX_SAMPLING,
    FX_ROOTS,
    FX_STATE,
    FX_MULTI,
    FX_ROUNDS,
    FX_TAMPER,
    FX_CAPS,
    FX_NEEDS_SAMPLING,
    FX_STREAM_ELICIT,
    FX_PROMPT,
};

static const struct {
    const char *name;
    enum fx kind;
} fixtures[] = {
    {"test_input_required_result_elicitation", FX_ELICIT},
    {"test_input_required_result_sampling", FX_SAMPLING},
    {"test_input_required_result_list_roots", FX_ROOTS},
    {"test_input_required_result_request_state", FX_STATE},
    {"test_input_required_result_multiple_inputs", FX_MULTI},
    {"test_input_required_result_multi_round", FX_ROUNDS},
    {"test_input_required_result_tampered_state", FX_TAMPER},
    {"test_input_required_result_capabilities", FX_CAPS},
    {"test_missing_capability", FX_NEEDS_SAMPLING},
    {"test_streaming_elicitation", FX_STREAM_ELICIT},
};

/* The request's inputRequests being built, and what the retry brought. */
struct fxc {
    struct mreq *m;
    struct jsonrpc_msg *msg;
    const char *name;
    yajl_val responses; /* params.inputResponses (object) or NULL */
    yajl_val state;     /* the verified requestState's JSON, or NULL */
    struct jbuf req;    /* inputRequests members */
    int nreq;
};

static const char ELICIT_NAME[] =
    "{\"message\":\"What is your name?\",\"requestedSchema\":{\"type\":\"object\",\"properties\":"
    "{\"name\":{\"type\":\"string\"}},\"required\":[\"name\"]}}";
static const char ELICIT_CONFIRM[] =
    "{\"message\":\"Please confirm\",\"requestedSchema\":{\"type\":\"object\",\"properties\":"
    "{\"ok\":{\"type\":\"boolean\"}},\"required\":[\"ok\"]}}";
static const char ELICIT_COLOR[] =
    "{\"message\":\"Step 2: What is your favorite color?\",\"requestedSchema\":{\"type\":"
    "\"object\",\"properties\":{\"color\":{\"type\":\"string\"}},\"required\":[\"color\"]}}";
static const char ELICIT_STEP1[] =
    "{\"message\":\"Step 1: What is your name?\",\"requestedSchema\":{\"type\":\"object\","
    "\"properties\":{\"name\":{\"type\":\"string\"}},\"required\":[\"name\"]}}";
static const char ELICIT_CONTEXT[] =
    "{\"message\":\"What context should the prompt use?\",\"requestedSchema\":{\"type\":"
    "\"object\",\"properties\":{\"context\":{\"type\":\"string\"}},\"required\":[\"context\"]}}";
static const char SAMPLE_CAPITAL[] =
    "{\"messages\":[{\"role\":\"user\",\"content\":{\"type\":\"text\",\"text\":\"What is the "
    "capital of France?\"}}],\"maxTokens\":100}";
static const char SAMPLE_GREETING[] =
    "{\"messages\":[{\"role\":\"user\",\"content\":{\"type\":\"text\",\"text\":\"Generate a "
    "greeting\"}}],\"maxTokens\":50}";

static bool declared(struct fxc *c, const char *capability)
{
    return json_get_obj(c->m->client_caps, capability) != NULL;
}

static void audit_fx(struct fxc *c, const char *outcome, const char *detail)
{
    struct audit_entry ae = {.principal = mreq_principal(c->m),
                             .method = c->msg->method,
                             .tool = c->name,
                             .args_json = "{}",
                             .args_len = 2,
                             .outcome = outcome,
                             .detail = detail};
    audit_record(&ae);
}

static void fx_error(struct fxc *c, int status, int code, const char *message, const char *data)
{
    audit_fx(c, "invalid", message);
    struct jbuf b;
    jbuf_init(&b);
    jsonrpc_write_error(&b, c->msg->id, code, message, data);
    if (status == 200)
        mreq_reply(c->m, b.p, b.len);
    else
        mreq_respond(c->m, status, "application/json", NULL, b.p, b.len);
    jbuf_free(&b);
}

/* The client's answer to key, or NULL (and the request is added to inputRequests). false after
 * answering an error (an answer that is not an object). */
static bool need(struct fxc *c, const char *key, const char *method, const char *params,
                 yajl_val *answer)
{
    *answer = NULL;
    yajl_val v = json_get(c->responses, key);
    if (v && v->type != yajl_t_object) {
        char em[300];
        snprintf(em, sizeof em,
                 "Invalid params: inputResponses.%s must be the client's %s result (an object)",
                 key, method);
        fx_error(c, 200, JSONRPC_INVALID_PARAMS, em, NULL);
        return false;
    }
    if (v) {
        *answer = v;
        return true;
    }
    jbuf_puts(&c->req, c->nreq++ ? "," : "");
    json_str(&c->req, key);
    jbuf_puts(&c->req, ":{\"method\":");
    json_str(&c->req, method);
    jbuf_puts(&c->req, ",\"params\":");
    jbuf_puts(&c->req, params);
    jbuf_putc(&c->req, '}');
    return true;
}

/* Answers the collected inputRequests, with a requestState sealing state_json (or none). */
static void input_required(struct fxc *c, const char *state_json)
{
    char *rs = state_json ? mcp_mrtr_seal(c->msg->method, c->name, state_json) : NULL;
    if (state_json && rs == NULL) {
        fx_error(c, 500, JSONRPC_INTERNAL_ERROR, "cannot sign the requestState", NULL);
        return;
    }
    audit_fx(c, "input_required", NULL);
    struct jbuf b;
    jbuf_init(&b);
    jsonrpc_open_result(&b, c->msg->id);
    jbuf_puts(&b, "{\"resultType\":\"input_required\",\"inputRequests\":{");
    jbuf_append(&b, c->req.p ? c->req.p : "", c->req.len);
    jbuf_putc(&b, '}');
    if (rs) {
        jbuf_puts(&b, ",\"requestState\":");
        json_str(&b, rs);
    }
    jbuf_puts(&b, "}}");
    mreq_reply(c->m, b.p, b.len);
    jbuf_free(&b);
    free(rs);
}

static void complete_text(struct fxc *c, const char *text)
{
    audit_fx(c, "ok", NULL);
    struct jbuf b;
    jbuf_init(&b);
    jsonrpc_open_result(&b, c->msg->id);
    jbuf_puts(&b, "{\"content\":[{\"type\":\"text\",\"text\":");
    json_str(&b, text);
    jbuf_puts(&b, "}],\"isError\":false}}");
    mreq_reply(c->m, b.p, b.len);
    jbuf_free(&b);
}

/* -32021 for a request that needs capability. */
static void missing_capability(struct fxc *c, const char *capability)
{
    char em[200], data[120];
    snprintf(em, sizeof em,
             "Missing required client capability: %s needs %s (declare it in _meta "
             "io.modelcontextprotocol/clientCapabilities)",
             c->name, capability);
    snprintf(data, sizeof data, "{\"requiredCapabilities\":{\"%s\":{}}}", capability);
    fx_error(c, 400, MODERN_ERR_MISSING_CAPABILITY, em, data);
}

/* Text of an accepted elicitation answer's content.field, or NULL (declined, or absent). */
static const char *elicited(yajl_val a, const char *field)
{
    const char *action = json_get_str(a, "action");
    if (action == NULL || strcmp(action, "accept") != 0)
        return NULL;
    yajl_val v = json_get(json_get_obj(a, "content"), field);
    if (v == NULL)
        return NULL;
    return v->type == yajl_t_string ? v->u.string : YAJL_IS_TRUE(v) ? "true" : "false";
}

static const char *sampled_text(yajl_val a)
{
    return json_get_str(json_get_obj(a, "content"), "text");
}

static void roots_text(yajl_val a, struct jbuf *t)
{
    yajl_val roots = json_get_arr(a, "roots");
    for (size_t i = 0; roots && i < roots->u.array.len; i++) {
        const char *uri = json_get_str(roots->u.array.values[i], "uri");
        if (uri) {
            jbuf_puts(t, i ? ", " : "");
            jbuf_puts(t, uri);
        }
    }
    if (t->len == 0)
        jbuf_puts(t, "(none)");
}

/* The round a state-carrying fixture is in: 0 without inputResponses. */
static long long state_round(struct fxc *c)
{
    long long r = 0;
    json_get_int(c->state, "round", &r);
    return r;
}

static void run_fixture(struct fxc *c, enum fx kind)
{
    yajl_val a = NULL, b = NULL, r = NULL;
    char text[600];
    struct jbuf t;
    switch (kind) {
    case FX_ELICIT:
        if (!need(c, "user_name", "elicitation/create", ELICIT_NAME, &a))
            return;
        if (a == NULL) {
            input_required(c, NULL);
            return;
        }
        snprintf(text, sizeof text, "Hello, %.200s!",
                 elicited(a, "name") ? elicited(a, "name") : "(declined)");
        {
            complete_text(c, text);
            return;
        }
    case FX_SAMPLING:
        if (!need(c, "capital_question", "sampling/createMessage", SAMPLE_CAPITAL, &a))
            return;
        if (a == NULL) {
            input_required(c, NULL);
            return;
        }
        snprintf(text, sizeof text, "Sampling response: %.400s",
                 sampled_text(a) ? sampled_text(a) : "(no text)");
        {
            complete_text(c, text);
            return;
        }
    case FX_ROOTS:
        if (!need(c, "client_roots", "roots/list", "{}", &a))
            return;
        if (a == NULL) {
            input_required(c, NULL);
            return;
        }
        jbuf_init(&t);
        roots_text(a, &t);
        snprintf(text, sizeof text, "Client roots: %.400s", t.p);
        jbuf_free(&t);
        {
            complete_text(c, text);
            return;
        }
    case FX_STATE:
    case FX_TAMPER:
        if (!need(c, "confirm", "elicitation/create", ELICIT_CONFIRM, &a))
            return;
        if (a == NULL || state_round(c) != 1) {
            input_required(c, "{\"round\":1}");
            return;
        }
        snprintf(text, sizeof text, "state-ok: requestState verified, confirmed=%s",
                 elicited(a, "ok") ? elicited(a, "ok") : "declined");
        {
            complete_text(c, text);
            return;
        }
    case FX_MULTI:
        if (!need(c, "user_name", "elicitation/create", ELICIT_NAME, &a) ||
            !need(c, "greeting", "sampling/createMessage", SAMPLE_GREETING, &b) ||
            !need(c, "client_roots", "roots/list", "{}", &r))
            return;
        if (c->nreq || state_round(c) != 1) {
            /* all three again when one is missing: the answers belong together */
            jbuf_free(&c->req);
            jbuf_init(&c->req);
            c->nreq = 0;
            c->responses = NULL;
            need(c, "user_name", "elicitation/create", ELICIT_NAME, &a);
            need(c, "greeting", "sampling/createMessage", SAMPLE_GREETING, &b);
            need(c, "client_roots", "roots/list", "{}", &r);
            {
                input_required(c, "{\"round\":1}");
                return;
            }
        }
        jbuf_init(&t);
        roots_text(r, &t);
        snprintf(text, sizeof text, "name=%.100s greeting=%.200s roots=%.200s",
                 elicited(a, "name") ? elicited(a, "name") : "(declined)",
                 sampled_text(b) ? sampled_text(b) : "(no text)", t.p);
        jbuf_free(&t);
        {
            complete_text(c, text);
            return;
        }
    case FX_ROUNDS: {
        long long round = state_round(c);
        if (round == 1) {
            if (!need(c, "step1", "elicitation/create", ELICIT_STEP1, &a))
                return;
            if (a == NULL) {
                input_required(c, "{\"round\":1}");
                return;
            }
            struct jbuf s;
            jbuf_init(&s);
            jbuf_puts(&s, "{\"round\":2,\"name\":");
            json_str(&s, elicited(a, "name") ? elicited(a, "name") : "(declined)");
            jbuf_putc(&s, '}');
            jbuf_free(&c->req);
            jbuf_init(&c->req);
            c->nreq = 0;
            c->responses = NULL;
            need(c, "step2", "elicitation/create", ELICIT_COLOR, &a);
            input_required(c, s.p);
            jbuf_free(&s);
            return;
        }
        if (round == 2) {
            if (!need(c, "step2", "elicitation/create", ELICIT_COLOR, &a))
                return;
            const char *name = json_get_str(c->state, "name");
            if (a == NULL) {
                struct jbuf s;
                jbuf_init(&s);
                jbuf_puts(&s, "{\"round\":2,\"name\":");
                json_str(&s, name ? name : "");
                jbuf_putc(&s, '}');
                input_required(c, s.p);
                jbuf_free(&s);
                return;
            }
            snprintf(text, sizeof text, "Hello %.100s, your favorite color is %.100s",
                     name ? name : "", elicited(a, "color") ? elicited(a, "color") : "(declined)");
            {
                complete_text(c, text);
                return;
            }
        }
        c->responses = NULL; /* round 1 starts over */
        need(c, "step1", "elicitation/create", ELICIT_STEP1, &a);
        {
            input_required(c, "{\"round\":1}");
            return;
        }
    }
    case FX_CAPS: {
        bool any = false;
        if (declared(c, "elicitation")) {
            any = true;
            if (!need(c, "user_name", "elicitation/create", ELICIT_NAME, &a))
                return;
        }
        if (declared(c, "sampling")) {
            any = true;
            if (!need(c, "greeting", "sampling/createMessage", SAMPLE_GREETING, &b))
                return;
        }
        if (declared(c, "roots")) {
            any = true;
            if (!need(c, "client_roots", "roots/list", "{}", &r))
                return;
        }
        if (!any) {
            complete_text(c, "The request declared no client capability to ask with "
                             "(elicitation, sampling, roots): nothing was asked");
            return;
        }
        if (c->nreq) {
            input_required(c, NULL);
            return;
        }
        {
            complete_text(c, "Every declared capability answered");
            return;
        }
    }
    case FX_NEEDS_SAMPLING:
        if (!declared(c, "sampling")) {
            missing_capability(c, "sampling");
            return;
        }
        if (!need(c, "capital_question", "sampling/createMessage", SAMPLE_CAPITAL, &a))
            return;
        if (a == NULL) {
            input_required(c, NULL);
            return;
        }
        snprintf(text, sizeof text, "Sampling response: %.400s",
                 sampled_text(a) ? sampled_text(a) : "(no text)");
        {
            complete_text(c, text);
            return;
        }
    case FX_STREAM_ELICIT:
        if (!declared(c, "elicitation")) {
            missing_capability(c, "elicitation");
            return;
        }
        if (!need(c, "confirm", "elicitation/create", ELICIT_CONFIRM, &a))
            return;
        if (a == NULL) {
            input_required(c, NULL);
            return;
        }
        {
            complete_text(c, "Elicitation answered through inputResponses");
            return;
        }
    case FX_PROMPT:
        if (!need(c, "user_context", "elicitation/create", ELICIT_CONTEXT, &a))
            return;
        if (a == NULL) {
            input_required(c, NULL);
            return;
        }
        audit_fx(c, "ok", NULL);
        {
            struct jbuf o;
            jbuf_init(&o);
            jsonrpc_open_result(&o, c->msg->id);
            jbuf_puts(&o, "{\"description\":\"A prompt that needs a context\",\"messages\":[{"
                          "\"role\":\"user\",\"content\":{\"type\":\"text\",\"text\":");
            snprintf(text, sizeof text, "Prompt with context: %.400s",
                     elicited(a, "context") ? elicited(a, "context") : "(declined)");
            json_str(&o, text);
            jbuf_puts(&o, "}}]}}");
            mreq_reply(c->m, o.p, o.len);
            jbuf_free(&o);
        }
        return;
    }
}

bool mcp_mrtr_fixture(struct mreq *m, struct jsonrpc_msg *msg)
{
    if (!mcp_env.cfg->mcp_conformance_fixtures)
        return false;
    const char *name = json_get_str(msg->params, "name");
    if (name == NULL)
        return false;
    enum fx kind;
    bool found = false;
    if (strcmp(msg->method, "prompts/get") == 0) {
        yajl_val args = json_get_obj(msg->params, "arguments");
        if (strcmp(name, "test_input_required_result_prompt") != 0 || json_get(args, "context"))
            return false; /* given as an argument: the declarative prompt answers */
        kind = FX_PROMPT;
        found = true;
    } else if (strcmp(msg->method, "tools/call") == 0) {
        for (size_t i = 0; i < sizeof fixtures / sizeof fixtures[0] && !found; i++)
            if (strcmp(fixtures[i].name, name) == 0) {
                kind = fixtures[i].kind;
                found = true;
            }
    }
    if (!found)
        return false;
    struct fxc c = {.m = m, .msg = msg, .name = name};
    jbuf_init(&c.req);
    if (kind != FX_PROMPT) {
        const struct registry_tool *t = registry_find(name);
        if (t == NULL)
            return false;
        enum tool_scope sc = registry_required_scope(t->def, NULL);
        if (!auth_scope_allows(m->auth.scopes, (int)sc)) {
            fx_error(&c, 403, MCP_ERR_AUTH, "insufficient scope", NULL);
            jbuf_free(&c.req);
            return true;
        }
    }
    yajl_val resp = json_get(msg->params, "inputResponses");
    const char *rs = json_get_str(msg->params, "requestState");
    yajl_val rsv = json_get(msg->params, "requestState");
    char *state = NULL;
    if (resp && resp->type != yajl_t_object) {
        fx_error(&c, 200, JSONRPC_INVALID_PARAMS,
                 "Invalid params: inputResponses must be an object mapping the keys of "
                 "inputRequests to the client's results",
                 NULL);
        goto out;
    }
    if (rsv && rs == NULL) {
        fx_error(&c, 200, JSONRPC_INVALID_PARAMS, "Invalid params: requestState must be a string",
                 NULL);
        goto out;
    }
    c.responses = resp;
    if (rs) {
        char why[200], em[300];
        state = mcp_mrtr_open(msg->method, name, rs, why, sizeof why);
        if (state == NULL) {
            snprintf(em, sizeof em, "Invalid params: %s", why);
            fx_error(&c, 200, JSONRPC_INVALID_PARAMS, em, NULL);
            goto out;
        }
        char err[64];
        c.state = json_parse(state, strlen(state), 8, 512, err, sizeof err);
    } else if (resp &&
               (kind == FX_STATE || kind == FX_TAMPER || kind == FX_MULTI || kind == FX_ROUNDS)) {
        fx_error(&c, 200, JSONRPC_INVALID_PARAMS,
                 "Invalid params: requestState is required with inputResponses for this request "
                 "(echo the one the input_required result carried)",
                 NULL);
        goto out;
    }
    run_fixture(&c, kind);
out:
    yajl_tree_free(c.state);
    free(state);
    jbuf_free(&c.req);
    return true;
}

/* ------------------------------------------------------------------------------------------ */
/* registry tools: tool_call_request on the modern wire                                        */

static void args_hash(yajl_val args, char out[CRYPTO_SHA256_HEX_LEN])
{
    struct jbuf b;
    jbuf_init(&b);
    if (args && args->type == yajl_t_object)
        json_val(&b, args); /* as tool_call_args_json */
    else
        jbuf_puts(&b, "{}");
    crypto_sha256_hex(b.p, b.len, out);
    jbuf_free(&b);
}

static void refuse_retry(struct mreq *m, struct jsonrpc_msg *msg, const char *name, const char *why)
{
    char em[400];
    snprintf(em, sizeof em, "Invalid params: %s", why);
    struct audit_entry ae = {.principal = mreq_principal(m),
                             .method = "tools/call",
                             .tool = name,
                             .outcome = "invalid",
                             .detail = em};
    audit_record(&ae);
    mreq_reply_error(m, msg->id, JSONRPC_INVALID_PARAMS, em, NULL);
}

bool mcp_mrtr_retry_check(struct mreq *m, struct jsonrpc_msg *msg)
{
    if (strcmp(msg->method, "tools/call") != 0)
        return true;
    yajl_val resp = json_get(msg->params, "inputResponses");
    yajl_val rsv = json_get(msg->params, "requestState");
    const char *name = json_get_str(msg->params, "name");
    if ((resp == NULL && rsv == NULL) || name == NULL)
        return true;
    if (resp && resp->type != yajl_t_object) {
        refuse_retry(m, msg, name,
                     "inputResponses must be an object mapping the keys of inputRequests to the "
                     "client's results");
        return false;
    }
    if (rsv == NULL || rsv->type != yajl_t_string) {
        refuse_retry(m, msg, name,
                     "requestState (a string) is required with inputResponses: echo the one the "
                     "input_required result carried");
        return false;
    }
    char why[200];
    char *state = mcp_mrtr_open(msg->method, name, rsv->u.string, why, sizeof why);
    if (state == NULL) {
        refuse_retry(m, msg, name, why);
        return false;
    }
    char err[64], h[CRYPTO_SHA256_HEX_LEN];
    yajl_val tree = json_parse(state, strlen(state), 16, MRTR_PAYLOAD_MAX, err, sizeof err);
    free(state);
    args_hash(json_get(msg->params, "arguments"), h);
    const char *sh = json_get_str(tree, "h");
    if (sh == NULL || strcmp(sh, h) != 0) {
        yajl_tree_free(tree);
        refuse_retry(m, msg, name,
                     "requestState was issued for other arguments of this tool: retry with the "
                     "original arguments, or call again without inputResponses");
        return false;
    }
    m->mrtr_state = tree;
    return true;
}

/* The answer to key of a retried call: the pending key from inputResponses, earlier ones from
 * the state. NULL when not answered (or not an object: asked again). */
static yajl_val answer_of(struct mreq *m, struct jsonrpc_msg *msg, const char *key)
{
    if (m->mrtr_state == NULL)
        return NULL;
    const char *p = json_get_str(m->mrtr_state, "p");
    yajl_val v = p && strcmp(p, key) == 0 ? json_get(json_get(msg->params, "inputResponses"), key)
                                          : json_get(json_get_obj(m->mrtr_state, "a"), key);
    return v && v->type == yajl_t_object ? v : NULL;
}

struct deferred {
    struct tool_call *tc;
    tool_reply_fn cb;
    void *arg;
    char *answer;
};

static void deferred_cb(evutil_socket_t fd, short what, void *p)
{
    struct deferred *d = p;
    if (!tool_call_cancelled(d->tc))
        d->cb(d->tc, d->answer, NULL, d->arg);
    else
        d->cb(d->tc, NULL, "{\"code\":-32603,\"message\":\"call ended\"}", d->arg);
    free(d->answer);
    free(d);
}

int mcp_mrtr_tool_request(struct tool_call *tc, struct mreq *m, struct jsonrpc_msg *msg,
                          const char *method, const char *params_json, tool_reply_fn cb, void *arg)
{
    char key[32];
    int n = m->mrtr_next++;
    snprintf(key, sizeof key, "input-%d", n);
    yajl_val v = answer_of(m, msg, key);
    if (v) {
        struct deferred *d = calloc(1, sizeof *d);
        struct jbuf b;
        jbuf_init(&b);
        json_val(&b, v);
        if (d == NULL)
            abort();
        *d = (struct deferred){.tc = tc, .cb = cb, .arg = arg, .answer = jbuf_steal(&b)};
        struct timeval now = {0, 0};
        if (event_base_once(mcp_env.base, -1, EV_TIMEOUT, deferred_cb, d, &now) < 0) {
            free(d->answer);
            free(d);
            return -1;
        }
        return 0;
    }
    /* the state: arguments, the key asked now, and every answer given so far */
    char h[CRYPTO_SHA256_HEX_LEN];
    args_hash(tool_call_args(tc), h);
    struct jbuf s;
    jbuf_init(&s);
    jbuf_printf(&s, "{\"h\":\"%s\",\"p\":\"%s\",\"a\":{", h, key);
    for (int i = 0; i < n; i++) {
        char k[32];
        snprintf(k, sizeof k, "input-%d", i);
        yajl_val a = answer_of(m, msg, k);
        if (a == NULL)
            continue;
        jbuf_puts(&s, s.p[s.len - 1] == '{' ? "" : ",");
        json_str(&s, k);
        jbuf_putc(&s, ':');
        json_val(&s, a);
    }
    jbuf_puts(&s, "}}");
    char *rs = mcp_mrtr_seal(msg->method, json_get_str(msg->params, "name"), s.p);
    jbuf_free(&s);
    if (rs == NULL) {
        log_warn("tools/call %s: the input-required state would exceed %d bytes; the request "
                 "for %s is not made",
                 tool_call_def(tc)->name, MRTR_PAYLOAD_MAX, method);
        return -1;
    }
    struct jbuf b;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"resultType\":\"input_required\",\"inputRequests\":{");
    json_str(&b, key);
    jbuf_puts(&b, ":{\"method\":");
    json_str(&b, method);
    jbuf_puts(&b, ",\"params\":");
    jbuf_puts(&b, params_json ? params_json : "{}");
    jbuf_puts(&b, "}},\"requestState\":");
    json_str(&b, rs);
    jbuf_putc(&b, '}');
    free(rs);
    mcp_call_finish_as(tc, b.p, b.len, "input_required");
    jbuf_free(&b);
    return 0;
}
