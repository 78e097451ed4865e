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
 * max_depth and strings longer than max_str before yajl runs. Returns NULL with a message in
 * err on failure. Caller frees with yajl_tree_free.
 */
yajl_val json_parse(const char *text, size_t len, int max_depth, size_t max_str, char *err,
                    size_t errlen);

/* Getters: NULL / the default when absent or of another type. Borrowed from the tree. */
yajl_val json_get(yajl_val obj, const char *key);
const char *json_get_str(yajl_val obj, const char *key);
yajl_val json_get_obj(yajl_val obj, const char *key);
yajl_val json_get_arr(yajl_val obj, const char *key);
bool json_get_int(yajl_val obj, const char *key, long long *out);
bool json_get_bool(yajl_val obj, const char *key, bool dflt);

#endif
