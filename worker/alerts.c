/*
 * alerts.c - the monitors' alerts as MCP resources (see alerts.h, docs/monitors.md §7).
 *
 * Read: SELECT csmcp.alerts_resource(uri) on the worker's pool (one round trip), answered as
 * one text/JSON content; an unknown account is "Resource not found" (-32002).
 * Notifications: a run that opens an alert NOTIFYs csmcp_alerts at commit; the leading monitor
 * process republishes it on the Redis channel csmcp:alerts ({"alert_id", "monitor",
 * "client_id"}); every worker gets it, and for each of its open standalone GET streams reads the
 * session's subscriptions (the Redis set <session key>:subs written by resources/subscribe) and
 * sends notifications/resources/updated for csmcp://alerts and for csmcp://alerts/<client_id>
 * when subscribed. A session without an open GET stream on some worker gets no notification
 * (Streamable HTTP has nowhere to put it).
 *
 * Invariants: a stream is referenced (refs++) while its subscription lookup is in flight and
 * released in the callback; writing to a stream whose HTTP side ended is a no-op (streams.c).
 */
#include "alerts.h"
#include "mcp_int.h"

#include "json.h"
#include "jsonrpc.h"
#include "log.h"
#include "metrics.h"
#include "pgpool.h"
#include "redisc.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALERTS_URI     "csmcp://alerts"
#define ALERTS_URI_LEN (sizeof ALERTS_URI - 1)
#define ALERTS_CHANNEL "csmcp:alerts"

/* ---------------------------------------------------------------- read */

struct rd {
    struct mreq *m;
    yajl_val id;
    char uri[300];
};

static void read_done(const PGresult *res, const char *err, const char *sqlstate, bool retryable,
                      void *arg)
{
    struct rd *r = arg;
    (void)retryable;
    if (res && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)) {
        struct jbuf b;
        jbuf_init(&b);
        jsonrpc_open_result(&b, r->id);
        jbuf_puts(&b, "{\"contents\":[{\"uri\":");
        json_str(&b, r->uri);
        jbuf_puts(&b, ",\"mimeType\":\"application/json\",\"text\":");
        json_str(&b, PQgetvalue(res, 0, 0));
        jbuf_puts(&b, "}]}}");
        mreq_reply(r->m, b.p, b.len);
        jbuf_free(&b);
    } else if (sqlstate && strcmp(sqlstate, "P0002") == 0) {
        struct jbuf d;
        jbuf_init(&d);
        jbuf_puts(&d, "{\"uri\":");
        json_str(&d, r->uri);
        jbuf_putc(&d, '}');
        mreq_reply_error(r->m, r->id, MCP_ERR_RESOURCE_NOT_FOUND, "Resource not found", d.p);
        jbuf_free(&d);
    } else {
        log_error("alerts resource %s: %s", r->uri, err ? err : "no result");
        mreq_reply_error(r->m, r->id, JSONRPC_INTERNAL_ERROR, "internal error", NULL);
    }
    mreq_unref(r->m);
    free(r);
}

bool alerts_read(struct mreq *m, struct jsonrpc_msg *msg, const char *uri)
{
    if (strncmp(uri, ALERTS_URI, ALERTS_URI_LEN) != 0 ||
        (uri[ALERTS_URI_LEN] != 0 && uri[ALERTS_URI_LEN] != '/'))
        return false;
    struct rd *r = calloc(1, sizeof *r);
    if (!r || strlen(uri) >= sizeof r->uri) {
        free(r);
        mreq_reply_error(m, msg->id, JSONRPC_INVALID_PARAMS, "Invalid params: uri too long", NULL);
        return true;
    }
    r->m = m;
    r->id = msg->id;
    snprintf(r->uri, sizeof r->uri, "%s", uri);
    m->refs++;
    const char *p[1] = {r->uri};
    if (pgpool_query(mcp_env.pg, "SELECT csmcp.alerts_resource($1)::text", 1, p, read_done, r) <
        0) {
        mreq_unref(m);
        free(r);
        mreq_reply_error(m, msg->id, JSONRPC_INTERNAL_ERROR, "database unavailable", NULL);
    }
    return true;
}

/* ---------------------------------------------------------------- notifications */

struct note {
    char client_id[128];
};

struct subq {
    struct mreq *m;
    char client_id[128];
};

static void send_updated(struct mreq *m, const char *uri)
{
    struct jbuf b;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/resources/updated\","
                  "\"params\":{\"uri\":");
    json_str(&b, uri);
    jbuf_puts(&b, "}}");
    mreq_sse_send(m, b.p, b.len, false);
    jbuf_free(&b);
    metrics_inc("csmcp_mcp_resource_notifications_total", NULL, 1);
}

static void subs_got(redisReply *rep, void *arg)
{
    struct subq *q = arg;
    char mine[ALERTS_URI_LEN + 1 + sizeof q->client_id];
    snprintf(mine, sizeof mine, "%s/%s", ALERTS_URI, q->client_id);
    if (rep && rep->type == REDIS_REPLY_ARRAY && q->m->req) {
        for (size_t i = 0; i < rep->elements; i++) {
            const redisReply *e = rep->element[i];
            if (e->type != REDIS_REPLY_STRING)
                continue;
            if (strcmp(e->str, ALERTS_URI) == 0 || (q->client_id[0] && strcmp(e->str, mine) == 0))
                send_updated(q->m, e->str);
        }
    }
    mreq_unref(q->m);
    free(q);
}

static void each_stream(struct mreq *m, void *arg)
{
    const struct note *n = arg;
    if (m->modern) { /* a 2026-07-28 subscriptions/listen stream: its own filter */
        mcp_up.listen_alert(m, n->client_id);
        return;
    }
    if (!m->have_session || !m->req)
        return;
    struct subq *q = calloc(1, sizeof *q);
    if (!q)
        return;
    q->m = m;
    snprintf(q->client_id, sizeof q->client_id, "%s", n->client_id);
    char key[SESSION_KEY_MAX + 8];
    snprintf(key, sizeof key, "%s:subs", m->s.key);
    const char *argv[2] = {"SMEMBERS", key};
    m->refs++;
    if (redisc_cmd(subs_got, q, 2, argv, NULL) < 0) {
        mreq_unref(m);
        free(q);
    }
}

static void on_alert(const char *channel, const char *msg, size_t len, void *arg)
{
    char err[128];
    struct note n = {{0}};
    (void)channel, (void)arg;
    yajl_val v = json_parse(msg, len, 4, 256, err, sizeof err);
    if (!v) {
        log_warn("alerts: unreadable message on %s: %s", ALERTS_CHANNEL, err);
        return;
    }
    const char *c = json_get_str(v, "client_id");
    if (c)
        snprintf(n.client_id, sizeof n.client_id, "%s", c);
    yajl_tree_free(v);
    mcp_streams_each(each_stream, &n);
}

int alerts_init(void)
{
    return redisc_subscribe(ALERTS_CHANNEL, on_alert, NULL);
}
