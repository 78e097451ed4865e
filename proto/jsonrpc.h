/*
 * jsonrpc.h - JSON-RPC 2.0 message classification (over yajl trees) and response writers.
 */
#ifndef CSMCP_JSONRPC_H
#define CSMCP_JSONRPC_H

#include <stdbool.h>
#include <yajl/yajl_tree.h>

#include "json.h"

/*
 * Every error code this server sends. Use these names; a bare number in a .c file is a bug.
 * JSON-RPC 2.0's own codes:
 */
#define JSONRPC_PARSE_ERROR      (-32700)
#define JSONRPC_INVALID_REQUEST  (-32600)
#define JSONRPC_METHOD_NOT_FOUND (-32601)
#define JSONRPC_INVALID_PARAMS   (-32602)
#define JSONRPC_INTERNAL_ERROR   (-32603)
/*
 * Server-defined codes (-32000..-32099) as this server uses them. Several meanings share
 * -32001 (as in the MCP SDKs); the HTTP status tells them apart. Clients rely on the values:
 * never change one.
 */
/* Refused at the HTTP layer: missing or bad header, Host/Origin, Accept, Content-Type, HTTP
 * method, draining, session store unavailable (400, 403, 405, 406, 415, 503). */
#define MCP_ERR_TRANSPORT           (-32000)
#define MCP_ERR_AUTH                (-32001) /* 401/403: not authenticated, or scope lacking */
#define MCP_ERR_SESSION_NOT_FOUND   (-32001) /* 404: unknown, ended or another's session */
#define MCP_ERR_TIMEOUT             (-32001) /* the call, or a request to the client, timed out */
#define MCP_ERR_RESOURCE_NOT_FOUND  (-32002) /* resources/read of an unknown URI (MCP spec) */
#define MCP_ERR_RATE_LIMITED        (-32029) /* 429 */
#define MCP_ERR_LIMITER_UNAVAILABLE (-32030) /* 503: rate limiter unavailable (fail closed) */

enum jsonrpc_kind {
    JSONRPC_INVALID = 0,
    JSONRPC_REQUEST,
    JSONRPC_NOTIFICATION,
    JSONRPC_RESPONSE,
};

/* A classified message; every pointer is borrowed from the tree. */
struct jsonrpc_msg {
    enum jsonrpc_kind kind;
    yajl_val id;        /* string or integer; NULL for notifications and unreadable ids */
    const char *method; /* requests and notifications */
    yajl_val params;    /* object or array, or NULL */
    yajl_val result;    /* responses */
    yajl_val error;     /* responses */
    const char *why;    /* JSONRPC_INVALID: what is wrong */
};

/* Classifies v. Returns the kind (also stored in m->kind). */
enum jsonrpc_kind jsonrpc_classify(yajl_val v, struct jsonrpc_msg *m);

/* Writes the id (or null). */
void jsonrpc_write_id(struct jbuf *b, yajl_val id);
/* {"jsonrpc":"2.0","id":ID,"error":{"code":C,"message":M[,"data":DATA]}}; data_json raw JSON
 * or NULL. */
void jsonrpc_write_error(struct jbuf *b, yajl_val id, int code, const char *message,
                         const char *data_json);
/* Writes {"jsonrpc":"2.0","id":ID,"result": - the caller writes the result and then "}". */
void jsonrpc_open_result(struct jbuf *b, yajl_val id);

#endif
