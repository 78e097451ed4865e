/*
 * json.c - JSON output buffer, escaping writer, tree serialiser and bounded parser.
 *
 * Invariants: a struct jbuf is NUL-terminated whenever p != NULL; out-of-memory aborts (the
 * worker cannot answer anything sensible without memory). json_parse never hands yajl a
 * document deeper than max_depth, so yajl's recursion in tree building and freeing is bounded.
 * Every string and key of a parsed tree is well-formed UTF-8 (RFC 3629) without U+0000 (unless
 * the caller asked for JSON_KEEP_NUL and refuses the tree itself).
 */
#include "json.h"

#include <errno.h>
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

/* ---- strict parsing ------------------------------------------------------------------------ */

/*
 * RFC 3629 well-formed UTF-8: no overlong forms (C0, C1, E0 80-9F, F0 80-8F), no UTF-16
 * surrogates (ED A0-BF), nothing above U+10FFFF (F4 90-BF, F5-FF), no stray continuation bytes.
 */
bool json_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        /* ASCII fast path, 8 bytes at a time */
        while (end - p >= 8) {
            uint64_t w;
            memcpy(&w, p, 8);
            if (w & 0x8080808080808080ULL)
                break;
            p += 8;
        }
        if (p >= end)
            break;
        unsigned char c = *p;
        if (c < 0x80) {
            p++;
            continue;
        }
        size_t need;
        unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0)
                lo = 0xA0;
            else if (c == 0xED)
                hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0)
                lo = 0x90;
            else if (c == 0xF4)
                hi = 0x8F;
        } else {
            return false;
        }
        if ((size_t)(end - p) <= need)
            return false;
        if (p[1] < lo || p[1] > hi)
            return false;
        for (size_t i = 2; i <= need; i++)
            if ((p[i] & 0xC0) != 0x80)
                return false;
        p += need + 1;
    }
    return true;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The code unit of the \uXXXX escape at t[i] (t[i] == '\\', t[i+1] == 'u'), or -1. */
static long u_escape(const char *t, size_t len, size_t i)
{
    if (i + 6 > len || t[i] != '\\' || t[i + 1] != 'u')
        return -1;
    long v = 0;
    for (size_t k = 2; k < 6; k++) {
        int h = hexval(t[i + k]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

/*
 * Linear pre-scan: nesting depth and string length outside yajl, and \u escapes of UTF-16
 * surrogates that must come in pairs (yajl turns a lone high surrogate into '?' and pairs a
 * high surrogate with any following escape; a lone low surrogate becomes ED B0 80, which the
 * tree builder's UTF-8 check refuses).
 */
static int prescan(const char *t, size_t len, int max_depth, size_t max_str, char *err,
                   size_t errlen)
{
    int depth = 0;
    for (size_t i = 0; i < len; i++) {
        char c = t[i];
        if (c == '"') {
            size_t start = ++i;
            while (i < len && t[i] != '"') {
                if (t[i] == '\\') {
                    long u = u_escape(t, len, i);
                    if (u >= 0xD800 && u <= 0xDBFF) {
                        long lo = u_escape(t, len, i + 6);
                        if (lo < 0xDC00 || lo > 0xDFFF) {
                            snprintf(err, errlen,
                                     "invalid \\u escape: high surrogate %04lX not "
                                     "followed by a low surrogate",
                                     u);
                            return -1;
                        }
                        i += 12;
                        continue;
                    }
                    if (u >= 0xDC00 && u <= 0xDFFF) {
                        snprintf(err, errlen, "invalid \\u escape: lone low surrogate %04lX", u);
                        return -1;
                    }
                    i++;
                }
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

/* Tree builder on yajl's callbacks: the same yajl_val trees as yajl_tree_parse (yajl_tree_free
 * frees them), plus a strict check of every decoded string and key. */
struct frame {
    yajl_val v;
    char *key;        /* object: the key whose value comes next (owned until added) */
    const char *name; /* object: the key of the last value added (borrowed from v) */
};

struct builder {
    yajl_val root;
    struct frame *st;
    int depth, max;
    unsigned flags;
    bool nul_seen; /* a string held U+0000 (JSON_KEEP_NUL) */
    bool failed;
    char *err;
    size_t errlen;
};

/* "params.arguments.client_id", "[2].params": where the string being checked sits (a key:
 * the object holding it). Ancestors are named by their last member (the open child). */
static void where(const struct builder *b, bool is_key, char *out, size_t len)
{
    size_t n = 0;
    out[0] = '\0';
    for (int i = 0; i < b->depth && n < len; i++) {
        bool top = i == b->depth - 1;
        yajl_val v = b->st[i].v;
        int w;
        if (v->type == yajl_t_object) {
            const char *k = top ? b->st[i].key : b->st[i].name;
            if (k == NULL || (top && is_key))
                break;
            w = snprintf(out + n, len - n, "%s%.60s", n ? "." : "", k);
        } else {
            size_t idx = top ? v->u.array.len : v->u.array.len - 1;
            w = snprintf(out + n, len - n, "[%zu]", idx);
        }
        if (w < 0)
            break;
        n += (size_t)w;
    }
    if (n >= len)
        out[len - 1] = '\0';
    if (out[0] == '\0')
        snprintf(out, len, "(top level)");
}

static bool check_string(struct builder *b, const unsigned char *s, size_t n, bool is_key)
{
    char path[200];
    if (!json_utf8_valid((const char *)s, n)) {
        where(b, is_key, path, sizeof path);
        snprintf(b->err, b->errlen, "invalid UTF-8 in %s %s (RFC 3629)",
                 is_key ? "a key in" : "string at", path);
        b->failed = true;
        return false;
    }
    if (memchr(s, '\0', n) != NULL) {
        if (!b->nul_seen) {
            where(b, is_key, path, sizeof path);
            snprintf(b->err, b->errlen, "%s: NUL character (\\u0000) not allowed in %s", path,
                     is_key ? "keys" : "strings");
        }
        b->nul_seen = true;
        if (!(b->flags & JSON_KEEP_NUL)) {
            b->failed = true;
            return false;
        }
    }
    return true;
}

static yajl_val new_val(yajl_type t)
{
    yajl_val v = calloc(1, sizeof *v);
    if (v == NULL)
        abort();
    v->type = t;
    return v;
}

/* Grows a yajl array of n elements (capacity: the next power of two) to hold n + 1. */
static void *grow_for(void *p, size_t n, size_t elem)
{
    if (n != 0 && (n & (n - 1)) != 0)
        return p;
    void *q = realloc(p, (n ? n * 2 : 1) * elem);
    if (q == NULL)
        abort();
    return q;
}

static int add_val(struct builder *b, yajl_val v)
{
    if (b->depth == 0) {
        if (b->root != NULL) {
            yajl_tree_free(v);
            return 0;
        }
        b->root = v;
        return 1;
    }
    struct frame *f = &b->st[b->depth - 1];
    yajl_val c = f->v;
    if (c->type == yajl_t_object) {
        if (f->key == NULL) {
            yajl_tree_free(v);
            return 0;
        }
        size_t n = c->u.object.len;
        c->u.object.keys = grow_for((void *)c->u.object.keys, n, sizeof(char *));
        c->u.object.values = grow_for(c->u.object.values, n, sizeof(yajl_val));
        c->u.object.keys[n] = f->key;
        c->u.object.values[n] = v;
        c->u.object.len = n + 1;
        f->name = f->key;
        f->key = NULL;
    } else {
        size_t n = c->u.array.len;
        c->u.array.values = grow_for(c->u.array.values, n, sizeof(yajl_val));
        c->u.array.values[n] = v;
        c->u.array.len = n + 1;
    }
    return 1;
}

static int cb_null(void *ctx)
{
    return add_val(ctx, new_val(yajl_t_null));
}

static int cb_bool(void *ctx, int val)
{
    return add_val(ctx, new_val(val ? yajl_t_true : yajl_t_false));
}

static int cb_number(void *ctx, const char *s, size_t n)
{
    yajl_val v = new_val(yajl_t_number);
    char *r = malloc(n + 1);
    if (r == NULL)
        abort();
    memcpy(r, s, n);
    r[n] = '\0';
    v->u.number.r = r;
    char *end = NULL;
    errno = 0;
    long long i = strtoll(r, &end, 10);
    if (errno == 0 && end == r + n) {
        v->u.number.i = i;
        v->u.number.flags |= YAJL_NUMBER_INT_VALID;
    }
    end = NULL;
    errno = 0;
    v->u.number.d = strtod(r, &end);
    if (errno == 0 && end == r + n)
        v->u.number.flags |= YAJL_NUMBER_DOUBLE_VALID;
    return add_val(ctx, v);
}

static int cb_string(void *ctx, const unsigned char *s, size_t n)
{
    struct builder *b = ctx;
    if (!check_string(b, s, n, false))
        return 0;
    yajl_val v = new_val(yajl_t_string);
    char *str = malloc(n + 1);
    if (str == NULL)
        abort();
    memcpy(str, s, n);
    str[n] = '\0';
    v->u.string = str;
    return add_val(b, v);
}

static int cb_key(void *ctx, const unsigned char *s, size_t n)
{
    struct builder *b = ctx;
    struct frame *f = &b->st[b->depth - 1];
    if (!check_string(b, s, n, true))
        return 0;
    free(f->key);
    f->key = malloc(n + 1);
    if (f->key == NULL)
        abort();
    memcpy(f->key, s, n);
    f->key[n] = '\0';
    return 1;
}

static int open_container(struct builder *b, yajl_type t)
{
    if (b->depth >= b->max) {
        snprintf(b->err, b->errlen, "nesting deeper than %d", b->max - 1);
        b->failed = true;
        return 0;
    }
    yajl_val v = new_val(t);
    if (!add_val(b, v))
        return 0;
    b->st[b->depth].v = v;
    b->st[b->depth].key = NULL;
    b->st[b->depth].name = NULL;
    b->depth++;
    return 1;
}

static int cb_start_map(void *ctx)
{
    return open_container(ctx, yajl_t_object);
}

static int cb_start_array(void *ctx)
{
    return open_container(ctx, yajl_t_array);
}

static int cb_end(void *ctx)
{
    struct builder *b = ctx;
    if (b->depth == 0)
        return 0;
    b->depth--;
    free(b->st[b->depth].key);
    b->st[b->depth].key = NULL;
    return 1;
}

static const yajl_callbacks builder_cbs = {
    cb_null,      cb_bool, NULL,   NULL,           cb_number, cb_string,
    cb_start_map, cb_key,  cb_end, cb_start_array, cb_end,
};

yajl_val json_parse_ex(const char *text, size_t len, int max_depth, size_t max_str, unsigned flags,
                       bool *had_nul, char *err, size_t errlen)
{
    if (had_nul)
        *had_nul = false;
    if (prescan(text, len, max_depth, max_str, err, errlen) < 0)
        return NULL;
    if (memchr(text, '\0', len) != NULL) {
        snprintf(err, errlen, "NUL byte in JSON text");
        return NULL;
    }
    struct frame stack_frames[64];
    struct builder b = {.max = max_depth + 2, .flags = flags, .err = err, .errlen = errlen};
    b.st = (size_t)b.max <= sizeof stack_frames / sizeof stack_frames[0]
               ? stack_frames
               : malloc(sizeof(struct frame) * (size_t)b.max);
    if (b.st == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    err[0] = '\0';
    yajl_handle h = yajl_alloc(&builder_cbs, NULL, &b);
    if (h == NULL)
        abort();
    yajl_config(h, yajl_allow_comments, 1); /* as yajl_tree_parse */
    /* UTF-8 is checked (strictly, with the path) by the string callbacks */
    yajl_config(h, yajl_dont_validate_strings, 1);
    yajl_status st = yajl_parse(h, (const unsigned char *)text, len);
    if (st == yajl_status_ok)
        st = yajl_complete_parse(h);
    if (st != yajl_status_ok) {
        if (!b.failed) {
            unsigned char *ye = yajl_get_error(h, 0, (const unsigned char *)text, len);
            char *nl = ye ? strchr((char *)ye, '\n') : NULL;
            if (nl)
                *nl = '\0';
            snprintf(err, errlen, "%s", ye && ye[0] ? (char *)ye : "invalid JSON");
            if (ye)
                yajl_free_error(h, ye);
        }
        for (int i = 0; i < b.depth; i++)
            free(b.st[i].key);
        yajl_tree_free(b.root);
        b.root = NULL;
    } else if (b.root == NULL) {
        snprintf(err, errlen, "invalid JSON");
    }
    yajl_free(h);
    if (b.st != stack_frames)
        free(b.st);
    if (b.root && had_nul)
        *had_nul = b.nul_seen;
    return b.root;
}

yajl_val json_parse(const char *text, size_t len, int max_depth, size_t max_str, char *err,
                    size_t errlen)
{
    return json_parse_ex(text, len, max_depth, max_str, 0, NULL, err, errlen);
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
