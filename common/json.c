/*
 * json.c - JSON output buffer, escaping writer, tree serialiser and bounded parser.
 *
 * Invariants: a struct jbuf is NUL-terminated whenever p != NULL; out-of-memory aborts (the
 * worker cannot answer anything sensible without memory). json_parse never hands yajl a
 * document deeper than max_depth, so yajl's recursion in tree building and freeing is bounded.
 */
#include "json.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void jbuf_init(struct jbuf *b)
{
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
}

void jbuf_free(struct jbuf *b)
{
    free(b->p);
    jbuf_init(b);
}

void jbuf_reset(struct jbuf *b)
{
    b->len = 0;
    if (b->p)
        b->p[0] = '\0';
}

static void grow(struct jbuf *b, size_t need)
{
    if (b->len + need + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + need + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (p == NULL)
        abort();
    b->p = p;
    b->cap = cap;
}

const char *jbuf_cstr(struct jbuf *b)
{
    return b->p ? b->p : "";
}

char *jbuf_steal(struct jbuf *b)
{
    char *p = b->p;
    if (p == NULL) {
        p = calloc(1, 1);
        if (p == NULL)
            abort();
    }
    jbuf_init(b);
    return p;
}

void jbuf_append(struct jbuf *b, const void *data, size_t len)
{
    grow(b, len);
    memcpy(b->p + b->len, data, len);
    b->len += len;
    b->p[b->len] = '\0';
}

void jbuf_puts(struct jbuf *b, const char *s)
{
    jbuf_append(b, s, strlen(s));
}

void jbuf_putc(struct jbuf *b, char c)
{
    grow(b, 1);
    b->p[b->len++] = c;
    b->p[b->len] = '\0';
}

void jbuf_printf(struct jbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[256];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof tmp) {
        jbuf_append(b, tmp, (size_t)n);
        return;
    }
    grow(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Escapes of the bytes that need one: 0 = copy as is, 'u' = \u00XX, else the letter after
 * the backslash. */
static const unsigned char json_esc[256] = {
    ['\0'] = 'u', [1] = 'u',  [2] = 'u',    [3] = 'u',    [4] = 'u',   [5] = 'u',     [6] = 'u',
    [7] = 'u',    [8] = 'u',  ['\t'] = 't', ['\n'] = 'n', [11] = 'u',  [12] = 'u',    ['\r'] = 'r',
    [14] = 'u',   [15] = 'u', [16] = 'u',   [17] = 'u',   [18] = 'u',  [19] = 'u',    [20] = 'u',
    [21] = 'u',   [22] = 'u', [23] = 'u',   [24] = 'u',   [25] = 'u',  [26] = 'u',    [27] = 'u',
    [28] = 'u',   [29] = 'u', [30] = 'u',   [31] = 'u',   ['"'] = '"', ['\\'] = '\\',
};

void json_strn(struct jbuf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    /* Size the output exactly (one table pass), grow once, then plain stores. */
    size_t out = n;
    for (size_t i = 0; i < n; i++) {
        unsigned char e = json_esc[(unsigned char)s[i]];
        out += e == 0 ? 0 : e == 'u' ? 5 : 1;
    }
    grow(b, out + 2);
    char *o = b->p + b->len;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        unsigned char e = json_esc[c];
        if (e == 0) {
            *o++ = (char)c;
        } else if (e != 'u') {
            *o++ = '\\';
            *o++ = (char)e;
        } else {
            memcpy(o, "\\u00", 4);
            o[4] = hex[c >> 4];
            o[5] = hex[c & 15];
            o += 6;
        }
    }
    *o++ = '"';
    *o = '\0';
    b->len = (size_t)(o - b->p);
}

void json_str(struct jbuf *b, const char *s)
{
    if (s == NULL) {
        jbuf_puts(b, "null");
        return;
    }
    json_strn(b, s, strlen(s));
}

void json_int(struct jbuf *b, long long v)
{
    jbuf_printf(b, "%lld", v);
}

void json_double(struct jbuf *b, double v)
{
    if (!isfinite(v)) {
        jbuf_puts(b, "null");
        return;
    }
    if (v == (double)(long long)v && fabs(v) < 1e15)
        jbuf_printf(b, "%lld", (long long)v);
    else
        jbuf_printf(b, "%.17g", v);
}

void json_key(struct jbuf *b, bool *first, const char *key)
{
    if (!*first)
        jbuf_putc(b, ',');
    *first = false;
    json_str(b, key);
    jbuf_putc(b, ':');
}

void json_val(struct jbuf *b, yajl_val v)
{
    if (v == NULL) {
        jbuf_puts(b, "null");
        return;
    }
    switch (v->type) {
    case yajl_t_string:
        json_str(b, v->u.string);
        break;
    case yajl_t_number:
        /* yajl keeps the original text of every number: reuse it verbatim. */
        if (v->u.number.r)
            jbuf_puts(b, v->u.number.r);
        else
            json_double(b, v->u.number.d);
        break;
    case yajl_t_object:
        jbuf_putc(b, '{');
        for (size_t i = 0; i < v->u.object.len; i++) {
            if (i)
                jbuf_putc(b, ',');
            json_str(b, v->u.object.keys[i]);
            jbuf_putc(b, ':');
            json_val(b, v->u.object.values[i]);
        }
        jbuf_putc(b, '}');
        break;
    case yajl_t_array:
        jbuf_putc(b, '[');
        for (size_t i = 0; i < v->u.array.len; i++) {
            if (i)
                jbuf_putc(b, ',');
            json_val(b, v->u.array.values[i]);
        }
        jbuf_putc(b, ']');
        break;
    case yajl_t_true:
        jbuf_puts(b, "true");
        break;
    case yajl_t_false:
        jbuf_puts(b, "false");
        break;
    default:
        jbuf_puts(b, "null");
        break;
    }
}

/* Linear pre-scan: nesting depth and string length outside yajl. */
static int prescan(const char *t, size_t len, int max_depth, size_t max_str, char *err,
                   size_t errlen)
{
    int depth = 0;
    for (size_t i = 0; i < len; i++) {
        char c = t[i];
        if (c == '"') {
            size_t start = ++i;
            while (i < len && t[i] != '"') {
                if (t[i] == '\\')
                    i++;
                i++;
            }
            if (i - start > max_str) {
                snprintf(err, errlen, "string longer than %zu bytes", max_str);
                return -1;
            }
        } else if (c == '{' || c == '[') {
            if (++depth > max_depth) {
                snprintf(err, errlen, "nesting deeper than %d", max_depth);
                return -1;
            }
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return 0;
}

yajl_val json_parse(const char *text, size_t len, int max_depth, size_t max_str, char *err,
                    size_t errlen)
{
    if (prescan(text, len, max_depth, max_str, err, errlen) < 0)
        return NULL;
    /* yajl_tree_parse wants a NUL-terminated string. */
    char stackbuf[4096];
    char *copy = len < sizeof stackbuf ? stackbuf : malloc(len + 1);
    if (copy == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    memcpy(copy, text, len);
    copy[len] = '\0';
    if (memchr(text, '\0', len) != NULL) {
        snprintf(err, errlen, "NUL byte in JSON text");
        if (copy != stackbuf)
            free(copy);
        return NULL;
    }
    char yerr[256];
    yerr[0] = '\0';
    yajl_val v = yajl_tree_parse(copy, yerr, sizeof yerr);
    if (copy != stackbuf)
        free(copy);
    if (v == NULL) {
        /* yajl's message spans lines; keep the first. */
        char *nl = strchr(yerr, '\n');
        if (nl)
            *nl = '\0';
        snprintf(err, errlen, "%s", yerr[0] ? yerr : "invalid JSON");
    }
    return v;
}

yajl_val json_get(yajl_val obj, const char *key)
{
    if (obj == NULL || obj->type != yajl_t_object)
        return NULL;
    for (size_t i = 0; i < obj->u.object.len; i++)
        if (strcmp(obj->u.object.keys[i], key) == 0)
            return obj->u.object.values[i];
    return NULL;
}

const char *json_get_str(yajl_val obj, const char *key)
{
    yajl_val v = json_get(obj, key);
    return v && v->type == yajl_t_string ? v->u.string : NULL;
}

yajl_val json_get_obj(yajl_val obj, const char *key)
{
    yajl_val v = json_get(obj, key);
    return v && v->type == yajl_t_object ? v : NULL;
}

yajl_val json_get_arr(yajl_val obj, const char *key)
{
    yajl_val v = json_get(obj, key);
    return v && v->type == yajl_t_array ? v : NULL;
}

bool json_get_int(yajl_val obj, const char *key, long long *out)
{
    yajl_val v = json_get(obj, key);
    if (v == NULL || v->type != yajl_t_number || !(v->u.number.flags & YAJL_NUMBER_INT_VALID))
        return false;
    *out = v->u.number.i;
    return true;
}

bool json_get_bool(yajl_val obj, const char *key, bool dflt)
{
    yajl_val v = json_get(obj, key);
    if (v == NULL)
        return dflt;
    if (v->type == yajl_t_true)
        return true;
    if (v->type == yajl_t_false)
        return false;
    return dflt;
}
