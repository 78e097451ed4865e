/*
 * jsonrpc.c - JSON-RPC 2.0 classification and response writers.
 *
 * Invariant: classification never trusts the client: every field is type-checked, an id must
 * be a string or an integer (null is refused, as MCP requires), and a message that is neither
 * a valid request, notification nor response is JSONRPC_INVALID with a reason.
 */
#include "jsonrpc.h"

#include <string.h>

enum jsonrpc_kind jsonrpc_classify(yajl_val v, struct jsonrpc_msg *m)
{
    memset(m, 0, sizeof *m);
    m->kind = JSONRPC_INVALID;
    if (v == NULL || v->type != yajl_t_object) {
        m->why = "message is not a JSON object";
        return m->kind;
    }
    const char *ver = json_get_str(v, "jsonrpc");
    yajl_val id = json_get(v, "id");
    yajl_val method = json_get(v, "method");
    if (id && (id->type == yajl_t_string ||
               (id->type == yajl_t_number && (id->u.number.flags & YAJL_NUMBER_INT_VALID))))
        m->id = id;
    if (ver == NULL || strcmp(ver, "2.0") != 0) {
        m->why = "jsonrpc must be \"2.0\"";
        return m->kind;
    }
    if (id && m->id == NULL) {
        m->why = "id must be a string or an integer";
        return m->kind;
    }
    if (method) {
        if (method->type != yajl_t_string || method->u.string[0] == '\0') {
            m->why = "method must be a non-empty string";
            return m->kind;
        }
        yajl_val params = json_get(v, "params");
        if (params && params->type != yajl_t_object && params->type != yajl_t_array) {
            m->why = "params must be an object or an array";
            return m->kind;
        }
        m->method = method->u.string;
        m->params = params;
        m->kind = id ? JSONRPC_REQUEST : JSONRPC_NOTIFICATION;
        return m->kind;
    }
    m->result = json_get(v, "result");
    m->error = json_get(v, "error");
    if ((m->result == NULL) == (m->error == NULL) || id == NULL) {
        m->why = "not a request, notification or response";
        return m->kind;
    }
    if (m->error && m->error->type != yajl_t_object) {
        m->why = "error must be an object";
        return m->kind;
    }
    m->kind = JSONRPC_RESPONSE;
    return m->kind;
}

void jsonrpc_write_id(struct jbuf *b, yajl_val id)
{
    if (id == NULL)
        jbuf_puts(b, "null");
    else
        json_val(b, id);
}

void jsonrpc_write_error(struct jbuf *b, yajl_val id, int code, const char *message,
                         const char *data_json)
{
    jbuf_puts(b, "{\"jsonrpc\":\"2.0\",\"id\":");
    jsonrpc_write_id(b, id);
    jbuf_printf(b, ",\"error\":{\"code\":%d,\"message\":", code);
    json_str(b, message);
    if (data_json) {
        jbuf_puts(b, ",\"data\":");
        jbuf_puts(b, data_json);
    }
    jbuf_puts(b, "}}");
}

void jsonrpc_open_result(struct jbuf *b, yajl_val id)
{
    jbuf_puts(b, "{\"jsonrpc\":\"2.0\",\"id\":");
    jsonrpc_write_id(b, id);
    jbuf_puts(b, ",\"result\":");
}
