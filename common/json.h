/*
 * json.h - JSON helpers on top of yajl: a growing output buffer with a writer that escapes
 * correctly, a serialiser for yajl trees, a bounded parser (depth and string length checked
 * before yajl builds the tree) and small typed getters for yajl trees.
 */
#ifndef CSMCP_JSON_H
#define CSMCP_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yajl/yajl_parse.h>
#include <yajl/yajl_tree.h>

/* A growing byte buffer, always NUL-terminated after the first write. Owner calls jbuf_free. */
struct jbuf {
    char *p;
    size_t len;
    size_t cap;
};

void jbuf_init(struct jbuf *b);
void jbuf_free(struct jbuf *b);
void jbuf_reset(struct jbuf *b);
/* Returns the NUL-terminated contents ("" if nothing written). Borrowed. */
const char *jbuf_cstr(struct jbuf *b);
/* Transfers the memory to the caller (free()); the buffer is reset. Never NULL. */
char *jbuf_steal(struct jbuf *b);
void jbuf_append(struct jbuf *b, const void *data, size_t len);
void jbuf_puts(struct jbuf *b, const char *s);
void jbuf_putc(struct jbuf *b, char c);
void jbuf_printf(struct jbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* JSON writers: a quoted, escaped string; numbers; a tree value. */
void json_str(struct jbuf *b, const char *s);
void json_strn(struct jbuf *b, const char *s, size_t n);
void json_int(struct jbuf *b, long long v);
void json_double(struct jbuf *b, double v);
/* Serialises v compactly (NULL writes null). */
void json_val(struct jbuf *b, yajl_val v);
/* Writes "key": (with a leading comma unless *first; clears *first). */
void json_key(struct jbuf *b, bool *first, const char *key);

/*
 * Parses text (len bytes, need not be NUL-terminated) into a tree. Rejects nesting deeper than
 * max_depth and strings longer than max_str before yajl runs, and, strictly: a NUL byte in the
 * text, any string or key that is not well-formed UTF-8 (RFC 3629: no overlong forms, no UTF-16
 * surrogates, nothing above U+10FFFF - also when spelled as \u escapes: a surrogate escape must
 * be a high + low pair) and any string or key holding U+0000 (a C string would be cut there).
 * Returns NULL with a message in err on failure. Caller frees with yajl_tree_free.
 */
yajl_val json_parse(const char *text, size_t len, int max_depth, size_t max_str, char *err,
                    size_t errlen);

/*
 * JSON_KEEP_NUL: a document that is valid except for U+0000 in strings is returned anyway
 * (those strings are cut at the NUL in the tree), *had_nul is set and err names the first
 * place ("params.arguments.client_id: NUL character (\u0000) not allowed in strings"), so a
 * JSON-RPC server can answer invalid params (-32602) to the request's id. The caller must
 * refuse such a tree.
 */
#define JSON_KEEP_NUL 1u
yajl_val json_parse_ex(const char *text, size_t len, int max_depth, size_t max_str, unsigned flags,
                       bool *had_nul, char *err, size_t errlen);

/* True when s[0..n) is well-formed UTF-8 (RFC 3629). NUL bytes count as valid here. */
bool json_utf8_valid(const char *s, size_t n);

/* Getters: NULL / the default when absent or of another type. Borrowed from the tree. */
yajl_val json_get(yajl_val obj, const char *key);
const char *json_get_str(yajl_val obj, const char *key);
yajl_val json_get_obj(yajl_val obj, const char *key);
yajl_val json_get_arr(yajl_val obj, const char *key);
bool json_get_int(yajl_val obj, const char *key, long long *out);
bool json_get_bool(yajl_val obj, const char *key, bool dflt);

#endif
