/*
 * fuzz_jsonrpc.c - libFuzzer target for the request-body path of /mcp: json_parse (depth and
 * string limits before yajl), jsonrpc_classify of the message or of every batch element, and
 * scrub_json of the same bytes (what the audit trail stores).
 *
 * Properties checked besides "no crash, no sanitizer report": a parse that succeeds yields a
 * tree no deeper than the limit whose every string and key is well-formed UTF-8 (RFC 3629);
 * scrub_json always returns valid JSON text that re-parses (strictly).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "jsonrpc.h"
#include "scrub.h"

#define DEPTH 32

static int depth_of(yajl_val v)
{
    int d = 0;
    if (v == NULL)
        return 0;
    if (YAJL_IS_OBJECT(v))
        for (size_t i = 0; i < v->u.object.len; i++) {
            int c = depth_of(v->u.object.values[i]);
            d = c > d ? c : d;
        }
    else if (YAJL_IS_ARRAY(v))
        for (size_t i = 0; i < v->u.array.len; i++) {
            int c = depth_of(v->u.array.values[i]);
            d = c > d ? c : d;
        }
    else
        return 0;
    return d + 1;
}

/* Every string and key of the tree is strict UTF-8. */
static int strings_ok(yajl_val v)
{
    if (v == NULL)
        return 1;
    if (YAJL_IS_STRING(v))
        return json_utf8_valid(v->u.string, strlen(v->u.string));
    if (YAJL_IS_OBJECT(v)) {
        for (size_t i = 0; i < v->u.object.len; i++)
            if (!json_utf8_valid(v->u.object.keys[i], strlen(v->u.object.keys[i])) ||
                !strings_ok(v->u.object.values[i]))
                return 0;
    } else if (YAJL_IS_ARRAY(v)) {
        for (size_t i = 0; i < v->u.array.len; i++)
            if (!strings_ok(v->u.array.values[i]))
                return 0;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    struct jsonrpc_msg m;
    yajl_val root = json_parse((const char *)data, size, DEPTH, 4096, err, sizeof(err));

    if (root) {
        if (depth_of(root) > DEPTH + 1 || !strings_ok(root))
            abort();
        if (YAJL_IS_ARRAY(root))
            for (size_t i = 0; i < root->u.array.len; i++)
                jsonrpc_classify(root->u.array.values[i], &m);
        else
            jsonrpc_classify(root, &m);
        yajl_tree_free(root);
    }
    char *s = scrub_json((const char *)data, size);
    if (s == NULL)
        abort();
    yajl_val again = json_parse(s, strlen(s), 1000, 1 << 20, err, sizeof(err));
    if (again == NULL)
        abort();
    yajl_tree_free(again);
    free(s);
    return 0;
}
