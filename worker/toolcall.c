/*
 * toolcall.c - one tools/call from its start to its one answer: the tool API of worker/tool.h
 * (what a handler in worker/tools/ calls), progress and log notifications, server->client
 * requests (sampling, elicitation) and their replies routed across workers, cancellation, the
 * call timeout, the audit record and the call metric.
 *
 * Invariants:
 * - A tool call finishes exactly once from the handler's side (tool_call_done*, _fail); the
 *   client sees at most one response for it (none when cancelled; a timeout answers first and
 *   the handler's late result is dropped). The call holds a reference on its mreq until then,
 *   so its arguments (in the mreq's yajl tree) stay valid for the whole call.
 * - Server->client requests carry the id "srv-<node>-<n>": the POST carrying the client's answer
 *   may land on any worker, which forwards it through Redis pub/sub to csmcp:w:<node>.
 *   notifications/cancelled is likewise published on csmcp:cancel to every worker.
 * - Nothing here knows a tool: the handler comes from the registry entry.
 */
#include "mcp.h"
#include "mcp_int.h"

#include "audit.h"
#include "cfg.h"
#include "log.h"
#include "metrics.h"
#include "redisc.h"
#include "registry.h"
#include "tool.h"

#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct pending {
    unsigned long n;
    struct tool_call *tc;
    tool_reply_fn cb;
    void *arg;
    struct event *timer;
    struct pending *next;
};

struct tool_call {
    struct mreq *m;
    const struct registry_tool *t;
    struct jsonrpc_msg *msg;
    yajl_val args;
    char *args_json;
    char *progress_token; /* JSON text or NULL */
    double last_progress;
    bool have_progress;
    bool cancelled;
    bool answered; /* the client got its response (or a timeout) */
    bool finished; /* the handler finished the call */
    bool timed_out;
    struct timespec start;
    struct event *timer;
    struct pending *pend;
    struct tool_call *next, *prev;
    /* audit.on_failure = refuse: the result, held until the audit record is committed */
    struct audit_waiter *aw;
    char *held;
    size_t held_len;
    const char *outcome; /* overrides ok/error (2026-07-28: "input_required") */
};

static struct {
    struct tool_call *calls; /* in flight */
    int ncalls;
    unsigned long next_req; /* last server->client request number */
} T;

/* ------------------------------------------------------------------------------------------ */
/* tool calls                                                                                  */

static void tc_unlink_and_free(struct tool_call *tc)
{
    if (tc->prev)
        tc->prev->next = tc->next;
    else
        T.calls = tc->next;
    if (tc->next)
        tc->next->prev = tc->prev;
    T.ncalls--;
    while (tc->pend) {
        struct pending *p = tc->pend;
        tc->pend = p->next;
        event_free(p->timer);
        free(p);
    }
    if (tc->timer)
        event_free(tc->timer);
    audit_waiter_detach(tc->aw);
    free(tc->held);
    free(tc->args_json);
    free(tc->progress_token);
    struct mreq *m = tc->m;
    free(tc);
    mreq_unref(m);
}

/* Sends a notification or request produced during the call on its stream. */
static void tc_emit(struct tool_call *tc, const char *json, size_t len)
{
    struct mreq *m = tc->m;
    if (m->batch || tc->answered)
        return;
    if (!m->sse) {
        if (m->req == NULL)
            return; /* client gone before any stream existed: nothing to resume */
        mreq_start_sse(m);
    }
    mreq_sse_send(m, json, len, false);
}

static void tc_answer(struct tool_call *tc, const char *result_json, size_t len)
{
    if (tc->answered)
        return;
    tc->answered = true;
    if (tc->timer)
        event_del(tc->timer);
    struct mreq *m = tc->m;
    if (tc->cancelled) {
        /* No response for a cancelled request (spec); just close our side. */
        if (m->batch) {
            if (--m->outstanding == 0) {
                jbuf_putc(&m->out, ']');
                mreq_respond(m, m->out.len <= 2 ? 202 : 200, "application/json", NULL,
                             m->out.len <= 2 ? "" : m->out.p, m->out.len <= 2 ? 0 : m->out.len);
            }
        } else if (m->sse) {
            mreq_stream_end(m);
        } else {
            mreq_respond(m, 202, NULL, NULL, "", 0);
        }
        return;
    }
    struct jbuf b;
    jbuf_init(&b);
    jsonrpc_open_result(&b, tc->msg->id);
    jbuf_append(&b, result_json, len);
    jbuf_putc(&b, '}');
    mreq_reply(m, b.p, b.len);
    jbuf_free(&b);
}

/* The held result's audit record is committed (ok) - or can never be. */
static void tc_durable(bool ok, void *arg)
{
    struct tool_call *tc = arg;
    tc->aw = NULL;
    if (ok) {
        tc_answer(tc, tc->held, tc->held_len);
    } else if (!tc->answered) {
        tc->answered = true;
        if (tc->timer)
            event_del(tc->timer);
        struct jbuf b;
        jbuf_init(&b);
        jsonrpc_write_error(&b, tc->msg->id, JSONRPC_INTERNAL_ERROR,
                            "the call ran but its audit record could not be stored; its result "
                            "is withheld (audit.on_failure = refuse)",
                            NULL);
        mreq_reply(tc->m, b.p, b.len);
        jbuf_free(&b);
    }
    tc_unlink_and_free(tc);
}

static void tc_finish(struct tool_call *tc, const char *result_json, size_t len, bool is_error)
{
    if (tc->finished)
        return;
    tc->finished = true;
    char labels[200];
    snprintf(labels, sizeof labels, "tool=\"%s\",outcome=\"%s\"", tc->t->def->name,
             tc->outcome ? tc->outcome
             : is_error  ? "error"
                         : "ok");
    metrics_inc("csmcp_mcp_tool_calls_total", labels, 1);
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    struct audit_entry ae = {
        .principal = tool_call_principal(tc),
        .method = "tools/call",
        .tool = tc->t->def->name,
        .args_json = tool_call_args_json(tc),
        .outcome = tc->cancelled   ? "cancelled"
                   : tc->timed_out ? "timeout"
                   : tc->outcome   ? tc->outcome
                   : is_error      ? "error"
                                   : "ok",
        .latency_s = (double)(now.tv_sec - tc->start.tv_sec) +
                     (double)(now.tv_nsec - tc->start.tv_nsec) / 1e9,
    };
    /* audit.on_failure = refuse: the client hears of the call only once its record is
     * committed (tc_durable) */
    if (audit_record_wait(&ae, tc_durable, tc, &tc->aw) == AUDIT_QUEUED) {
        tc->held = malloc(len + 1);
        if (tc->held == NULL)
            abort();
        memcpy(tc->held, result_json, len);
        tc->held[len] = '\0';
        tc->held_len = len;
        return;
    }
    tc_answer(tc, result_json, len);
    tc_unlink_and_free(tc);
}

static void tc_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct tool_call *tc = arg;
    if (tc->answered)
        return;
    tc->answered = true;
    struct jbuf b;
    jbuf_init(&b);
    if (tc->held) {
        /* the call finished; its audit record is still not committed (database slow or down) */
        log_warn("tool %s: audit record not committed after %d s; answering with an error",
                 tc->t->def->name, mcp_env.cfg->mcp_call_timeout);
        metrics_inc("csmcp_audit_ack_timeouts_total", NULL, 1);
        jsonrpc_write_error(&b, tc->msg->id, MCP_ERR_TIMEOUT,
                            "audit backlog: the call finished but its audit record is not yet "
                            "committed; the result is withheld (audit.on_failure = refuse)",
                            NULL);
        mreq_reply(tc->m, b.p, b.len);
        jbuf_free(&b);
        return;
    }
    log_warn("tool %s: call timed out after %d s", tc->t->def->name, mcp_env.cfg->mcp_call_timeout);
    tc->timed_out = true;
    jsonrpc_write_error(&b, tc->msg->id, MCP_ERR_TIMEOUT, "Request timed out", NULL);
    mreq_reply(tc->m, b.p, b.len);
    jbuf_free(&b);
}

yajl_val tool_call_args(struct tool_call *tc)
{
    return tc->args;
}

const char *tool_call_args_json(struct tool_call *tc)
{
    if (tc->args_json == NULL) {
        struct jbuf b;
        jbuf_init(&b);
        if (tc->args)
            json_val(&b, tc->args);
        else
            jbuf_puts(&b, "{}");
        tc->args_json = jbuf_steal(&b);
    }
    return tc->args_json;
}

const struct tool_def *tool_call_def(struct tool_call *tc)
{
    return tc->t->def;
}

const char *tool_call_principal(struct tool_call *tc)
{
    return tc->m->auth.principal[0] ? tc->m->auth.principal : "anonymous";
}

struct pgpool *tool_call_pg(struct tool_call *tc)
{
    return mcp_env.pg;
}

struct event_base *tool_call_base(struct tool_call *tc)
{
    return mcp_env.base;
}

bool tool_call_cancelled(struct tool_call *tc)
{
    return tc->cancelled || tc->answered;
}

void tool_call_progress(struct tool_call *tc, double progress, double total, const char *message)
{
    if (tc->progress_token == NULL)
        return;
    if (tc->have_progress && progress <= tc->last_progress)
        return; /* progress MUST increase */
    tc->have_progress = true;
    tc->last_progress = progress;
    struct jbuf b;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{"
                  "\"progressToken\":");
    jbuf_puts(&b, tc->progress_token);
    jbuf_puts(&b, ",\"progress\":");
    json_double(&b, progress);
    if (total > 0) {
        jbuf_puts(&b, ",\"total\":");
        json_double(&b, total);
    }
    if (message) {
        jbuf_puts(&b, ",\"message\":");
        json_str(&b, message);
    }
    jbuf_puts(&b, "}}");
    tc_emit(tc, b.p, b.len);
    jbuf_free(&b);
}

void tool_call_log(struct tool_call *tc, const char *level, const char *logger,
                   const char *data_json)
{
    int li = session_level_index(level);
    if (li < 0 || li < tc->m->s.lvl)
        return;
    struct jbuf b;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{"
                  "\"level\":");
    json_str(&b, session_log_levels[li]);
    if (logger) {
        jbuf_puts(&b, ",\"logger\":");
        json_str(&b, logger);
    }
    jbuf_puts(&b, ",\"data\":");
    jbuf_puts(&b, data_json ? data_json : "null");
    jbuf_puts(&b, "}}");
    tc_emit(tc, b.p, b.len);
    jbuf_free(&b);
}

bool tool_call_client_can(struct tool_call *tc, const char *capability)
{
    struct mreq *m = tc->m;
    if (m->modern) /* 2026-07-28: declared per request in _meta */
        return json_get_obj(m->client_caps, capability) != NULL;
    if (m->caps_tree == NULL && m->s.caps) {
        char err[64];
        m->caps_tree = json_parse(m->s.caps, strlen(m->s.caps), 32, 1 << 16, err, sizeof err);
    }
    yajl_val v = json_get(m->caps_tree, capability);
    return v != NULL && v->type == yajl_t_object;
}

static void pending_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct pending *p = arg;
    struct tool_call *tc = p->tc;
    struct pending **pp = &tc->pend;
    while (*pp && *pp != p)
        pp = &(*pp)->next;
    if (*pp)
        *pp = p->next;
    tool_reply_fn cb = p->cb;
    void *cbarg = p->arg;
    event_free(p->timer);
    free(p);
    char err[96];
    snprintf(err, sizeof err, "{\"code\":%d,\"message\":\"client did not answer in time\"}",
             MCP_ERR_TIMEOUT);
    cb(tc, NULL, err, cbarg);
}

int tool_call_request(struct tool_call *tc, const char *method, const char *params_json,
                      tool_reply_fn cb, void *arg)
{
    const char *cap = strncmp(method, "sampling/", 9) == 0       ? "sampling"
                      : strncmp(method, "elicitation/", 12) == 0 ? "elicitation"
                      : strncmp(method, "roots/", 6) == 0        ? "roots"
                                                                 : NULL;
    if (cap == NULL || !tool_call_client_can(tc, cap) || tc->m->batch || tc->answered)
        return -1;
    if (tc->m->modern) /* 2026-07-28: an input-required result instead (modern_mrtr.c) */
        return mcp_up.mrtr_tool_request(tc, tc->m, tc->msg, method, params_json, cb, arg);
    struct pending *p = calloc(1, sizeof *p);
    if (p == NULL)
        return -1;
    p->n = ++T.next_req;
    p->tc = tc;
    p->cb = cb;
    p->arg = arg;
    p->timer = evtimer_new(mcp_env.base, pending_timeout_cb, p);
    if (p->timer == NULL) {
        free(p);
        return -1;
    }
    struct timeval tv = {mcp_env.cfg->mcp_call_timeout, 0};
    evtimer_add(p->timer, &tv);
    p->next = tc->pend;
    tc->pend = p;
    struct jbuf b;
    jbuf_init(&b);
    jbuf_printf(&b, "{\"jsonrpc\":\"2.0\",\"id\":\"srv-%s-%lu\",\"method\":", mcp_env.node, p->n);
    json_str(&b, method);
    jbuf_puts(&b, ",\"params\":");
    jbuf_puts(&b, params_json ? params_json : "{}");
    jbuf_putc(&b, '}');
    tc_emit(tc, b.p, b.len);
    jbuf_free(&b);
    return 0;
}

static void done_json(struct tool_call *tc, struct jbuf *b, bool is_error)
{
    tc_finish(tc, b->p, b->len, is_error);
    jbuf_free(b);
}

void tool_call_done(struct tool_call *tc, const char *structured_json, const char *text)
{
    if (tc->finished)
        return;
    struct jbuf b;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"content\":[{\"type\":\"text\",\"text\":");
    json_str(&b, text ? text : structured_json);
    jbuf_puts(&b, "}]");
    if (structured_json && mcp_rev_since(tc->m->s.rev, MCP_REV_2025_06_18)) {
        jbuf_puts(&b, ",\"structuredContent\":");
        jbuf_puts(&b, structured_json);
    }
    jbuf_puts(&b, ",\"isError\":false}");
    done_json(tc, &b, false);
}

void tool_call_done_content(struct tool_call *tc, const char *content_json, bool is_error)
{
    if (tc->finished)
        return;
    struct jbuf b;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"content\":");
    jbuf_puts(&b, content_json ? content_json : "[]");
    jbuf_printf(&b, ",\"isError\":%s}", is_error ? "true" : "false");
    done_json(tc, &b, is_error);
}

void tool_call_fail(struct tool_call *tc, const char *fmt, ...)
{
    if (tc->finished)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    struct jbuf b;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"content\":[{\"type\":\"text\",\"text\":");
    json_str(&b, msg);
    jbuf_puts(&b, "}],\"isError\":true}");
    done_json(tc, &b, true);
}

void mcp_call_finish_as(struct tool_call *tc, const char *result_json, size_t len,
                        const char *outcome)
{
    tc->outcome = outcome;
    tc_finish(tc, result_json, len, false);
}

void mcp_call_close_stream(struct tool_call *tc)
{
    struct mreq *m = tc->m;
    if (m->batch || tc->answered)
        return;
    mreq_start_sse(m);
    mreq_stream_end(m); /* the call goes on; its events wait in the event store */
}

/* ------------------------------------------------------------------------------------------ */
/* server->client replies and cancellation across workers                                      */

static void deliver_reply(const char *tag, yajl_val msg)
{
    yajl_val id = json_get(msg, "id");
    if (id == NULL || id->type != yajl_t_string)
        return;
    char node[17];
    unsigned long n;
    if (sscanf(id->u.string, "srv-%16[0-9a-f]-%lu", node, &n) != 2 ||
        strcmp(node, mcp_env.node) != 0)
        return;
    for (struct tool_call *tc = T.calls; tc; tc = tc->next) {
        if (strcmp(tc->m->s.tag, tag) != 0)
            continue;
        for (struct pending **pp = &tc->pend; *pp; pp = &(*pp)->next) {
            struct pending *p = *pp;
            if (p->n != n)
                continue;
            *pp = p->next;
            tool_reply_fn cb = p->cb;
            void *cbarg = p->arg;
            event_free(p->timer);
            free(p);
            struct jbuf r;
            jbuf_init(&r);
            yajl_val res = json_get(msg, "result");
            json_val(&r, res ? res : json_get(msg, "error"));
            if (res)
                cb(tc, jbuf_cstr(&r), NULL, cbarg);
            else
                cb(tc, NULL, jbuf_cstr(&r), cbarg);
            jbuf_free(&r);
            return;
        }
    }
}

static void on_reply_msg(const char *channel, const char *msg, size_t len, void *arg)
{
    const char *nl = memchr(msg, '\n', len);
    if (nl == NULL || nl - msg != 16)
        return;
    char tag[17];
    memcpy(tag, msg, 16);
    tag[16] = '\0';
    char err[64];
    yajl_val v = json_parse(nl + 1, len - 17, 64, 1 << 24, err, sizeof err);
    if (v) {
        deliver_reply(tag, v);
        yajl_tree_free(v);
    }
}

/* A client's JSON-RPC response (to our sampling/elicitation request). */
void mcp_route_response(struct mreq *m, yajl_val msg)
{
    yajl_val id = json_get(msg, "id");
    char node[17];
    unsigned long n;
    if (id == NULL || id->type != yajl_t_string ||
        sscanf(id->u.string, "srv-%16[0-9a-f]-%lu", node, &n) != 2)
        return;
    if (strcmp(node, mcp_env.node) == 0) {
        deliver_reply(m->s.tag, msg);
        return;
    }
    struct jbuf b;
    jbuf_init(&b);
    jbuf_puts(&b, m->s.tag);
    jbuf_putc(&b, '\n');
    json_val(&b, msg);
    char ch[64];
    snprintf(ch, sizeof ch, "csmcp:w:%s", node);
    const char *argv[3] = {"PUBLISH", ch, b.p};
    size_t lens[3] = {7, strlen(ch), b.len};
    redisc_cmd(NULL, NULL, 3, argv, lens);
    jbuf_free(&b);
}

static void cancel_local(const char *tag, const char *idjson)
{
    for (struct tool_call *tc = T.calls; tc; tc = tc->next) {
        if (strcmp(tc->m->s.tag, tag) != 0 || tc->answered)
            continue;
        struct jbuf b;
        jbuf_init(&b);
        json_val(&b, tc->msg->id);
        bool match = strcmp(jbuf_cstr(&b), idjson) == 0;
        jbuf_free(&b);
        if (match) {
            tc->cancelled = true;
            log_debug("tool %s: cancelled by the client", tc->t->def->name);
        }
    }
}

void mcp_calls_cancel_mreq(struct mreq *m)
{
    for (struct tool_call *tc = T.calls; tc; tc = tc->next)
        if (tc->m == m && !tc->answered) {
            tc->cancelled = true;
            log_debug("tool %s: cancelled (the client closed the request)", tc->t->def->name);
        }
}

static void on_cancel_msg(const char *channel, const char *msg, size_t len, void *arg)
{
    const char *nl = memchr(msg, '\n', len);
    if (nl == NULL || nl - msg != 16 || len > 4096)
        return;
    char tag[17], idjson[4096];
    memcpy(tag, msg, 16);
    tag[16] = '\0';
    snprintf(idjson, sizeof idjson, "%.*s", (int)(len - 17), nl + 1);
    cancel_local(tag, idjson);
}

void mcp_handle_cancelled(struct mreq *m, yajl_val params)
{
    yajl_val rid = json_get(params, "requestId");
    if (rid == NULL || (rid->type != yajl_t_string && rid->type != yajl_t_number))
        return;
    struct jbuf b;
    jbuf_init(&b);
    json_val(&b, rid);
    cancel_local(m->s.tag, b.p);
    struct jbuf p;
    jbuf_init(&p);
    jbuf_puts(&p, m->s.tag);
    jbuf_putc(&p, '\n');
    jbuf_append(&p, b.p, b.len);
    const char *argv[3] = {"PUBLISH", "csmcp:cancel", p.p};
    size_t lens[3] = {7, 12, p.len};
    redisc_cmd(NULL, NULL, 3, argv, lens);
    jbuf_free(&p);
    jbuf_free(&b);
}
void mcp_call_start(struct mreq *m, struct jsonrpc_msg *msg, const struct registry_tool *t,
                    yajl_val args)
{
    struct tool_call *tc = calloc(1, sizeof *tc);
    if (tc == NULL) {
        mreq_reply_error(m, msg->id, JSONRPC_INTERNAL_ERROR, "out of memory", NULL);
        return;
    }
    tc->m = m;
    m->refs++;
    clock_gettime(CLOCK_MONOTONIC, &tc->start);
    tc->t = t;
    tc->msg = msg;
    tc->args = args;
    yajl_val meta = json_get_obj(msg->params, "_meta");
    yajl_val pt = json_get(meta, "progressToken");
    if (pt && (pt->type == yajl_t_string || pt->type == yajl_t_number)) {
        struct jbuf b;
        jbuf_init(&b);
        json_val(&b, pt);
        tc->progress_token = jbuf_steal(&b);
    }
    tc->timer = evtimer_new(mcp_env.base, tc_timeout_cb, tc);
    if (tc->timer) {
        struct timeval tv = {mcp_env.cfg->mcp_call_timeout, 0};
        evtimer_add(tc->timer, &tv);
    }
    tc->next = T.calls;
    if (T.calls)
        T.calls->prev = tc;
    T.calls = tc;
    T.ncalls++;
    /* The generated table names a handler for every tool (tool_sql_handler for "sql" tools),
     * so nothing here depends on a tool implementation. */
    if (t->def->handler)
        t->def->handler(tc);
    else
        tool_call_fail(tc, "tool %s has no handler", t->def->name);
}

int mcp_calls_init(void)
{
    char ch[64];
    snprintf(ch, sizeof ch, "csmcp:w:%s", mcp_env.node);
    if (redisc_subscribe(ch, on_reply_msg, NULL) < 0 ||
        redisc_subscribe("csmcp:cancel", on_cancel_msg, NULL) < 0)
        return -1;
    return 0;
}

int mcp_calls_inflight(void)
{
    return T.ncalls;
}
