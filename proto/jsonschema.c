/*
 * jsonschema.c - compiles JSON Schema text into a tree of js_node and validates yajl trees.
 *
 * Invariants:
 * - A compiled schema is immutable; validation only reads it, so it is shared by every request.
 * - Every string the nodes point to (property names, enum/const values, raw number text for
 *   messages) is borrowed from the schema's own yajl tree, which lives as long as the schema.
 * - All memory of a schema (nodes, arrays, compiled regexes) hangs off struct jsonschema and is
 *   released by jsonschema_free alone.
 * - $ref is resolved at compile time to a node; targets are cached by their yajl_val so a
 *   recursive schema compiles to a cyclic graph. Validation depth is bounded (JS_MAX_DEPTH), so
 *   a ref cycle that consumes no instance (e.g. {"$ref":"#"}) ends in an error, never a crash.
 * - Validation never allocates except for uniqueItems over large arrays, never exits, and
 *   reports the first failure as "path: rule" (path starts at the caller's root name).
 * - Patterns are ECMA-262 text translated to POSIX ERE at compile time (\d, \w, \s, (?:...),
 *   lazy quantifiers, escapes inside classes); constructs POSIX cannot express (lookaround,
 *   backreferences) fail compilation instead of matching something else.
 */
#include "jsonschema.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JS_MAX_DEPTH         256 /* nested node evaluations during validation */
#define JS_MAX_COMPILE_DEPTH 128 /* nested subschemas at compile time */
#define JS_MAX_EQ_DEPTH      64  /* nesting compared by const/enum/uniqueItems */
#define JS_PATH_MAX          512
#define JS_MAX_REPEAT        1000 /* largest {m,n} bound in a pattern */
#define JS_MAX_GROUPS        32
#define JS_MAX_EXPANDED      20000 /* pattern items after expanding {m,n} */
#define PATH_SHOWN           160   /* longest path printed in a message */

enum {
    T_NULL = 1u << 0,
    T_BOOLEAN = 1u << 1,
    T_OBJECT = 1u << 2,
    T_ARRAY = 1u << 3,
    T_NUMBER = 1u << 4,
    T_STRING = 1u << 5,
    T_INTEGER = 1u << 6,
};

static const struct {
    const char *name;
    unsigned bit;
} type_names[] = {
    {"null", T_NULL},     {"boolean", T_BOOLEAN}, {"object", T_OBJECT},   {"array", T_ARRAY},
    {"number", T_NUMBER}, {"string", T_STRING},   {"integer", T_INTEGER},
};

enum js_format {
    FMT_NONE = 0,
    FMT_DATE,
    FMT_DATETIME,
    FMT_TIME,
    FMT_EMAIL,
    FMT_UUID,
    FMT_IPV4,
    FMT_IPV6,
};

static const struct {
    const char *name;
    enum js_format fmt;
} format_names[] = {
    {"date", FMT_DATE}, {"date-time", FMT_DATETIME}, {"time", FMT_TIME}, {"email", FMT_EMAIL},
    {"uuid", FMT_UUID}, {"ipv4", FMT_IPV4},          {"ipv6", FMT_IPV6},
};

struct js_num {
    bool set;
    bool is_int; /* i is exact */
    long long i;
    double d;
    const char *raw; /* schema text of the number, for messages */
};

struct js_regex {
    struct js_regex *next;
    const char *src; /* the schema's pattern text (borrowed) */
    regex_t re;
    /* Fast path for the common "^[class]{m,n}$" shape (ids, slugs, codes): the whole string is
     * m..n bytes of an ASCII set. regexec is not consulted then. */
    bool fast;
    uint8_t set[16]; /* bit per ASCII byte */
    long min, max;   /* max < 0: unbounded */
};

struct js_node;

struct js_prop {
    const char *name;
    struct js_node *node;
};

struct js_pprop {
    struct js_regex *re;
    struct js_node *node;
};

struct js_dep {
    const char *name;
    const char **req;
    size_t nreq;
};

struct js_list {
    struct js_node **v;
    size_t n;
};

struct js_node {
    int bool_schema; /* -1: an object schema; 0: false; 1: true */
    unsigned types;  /* T_* mask; 0 = any */
    struct js_node *ref;
    const char *ref_text;
    /* objects */
    struct js_prop *props; /* sorted by name */
    size_t nprops;
    const char **required;
    size_t nrequired;
    struct js_pprop *pprops;
    size_t npprops;
    struct js_node *additional;
    struct js_node *property_names;
    long min_props, max_props; /* -1 = absent */
    struct js_dep *deps;
    size_t ndeps;
    /* any type */
    yajl_val enum_vals; /* array, borrowed from the schema tree */
    yajl_val const_val;
    bool has_const;
    /* numbers */
    struct js_num minimum, maximum, ex_minimum, ex_maximum, multiple_of;
    /* strings */
    long min_len, max_len;
    struct js_regex *pattern;
    enum js_format format;
    /* arrays */
    struct js_list prefix;
    struct js_node *items;
    struct js_node *additional_items; /* draft-07 tuple form */
    bool items_is_tuple;
    struct js_node *contains;
    long min_items, max_items;
    bool unique;
    /* combinators */
    struct js_list all_of, any_of, one_of;
    struct js_node *not_, *if_, *then_, *else_;
};

struct js_chunk {
    struct js_chunk *next;
    max_align_t data[];
};

struct jsonschema {
    yajl_val tree;
    struct js_node *root;
    struct js_chunk *chunks;
    struct js_regex *regexes;
};

/* ---------------------------------------------------------------------------------------- */
/* compile                                                                                  */

struct js_refcache {
    yajl_val target;
    struct js_node *node;
};

struct cctx {
    struct jsonschema *s;
    char *err;
    size_t errlen;
    char path[JS_PATH_MAX]; /* JSON pointer of the subschema being compiled, for messages */
    size_t plen;
    int depth;
    struct js_refcache *refs;
    size_t nrefs, caprefs;
};

static void *arena_alloc(struct jsonschema *s, size_t size)
{
    struct js_chunk *c = calloc(1, sizeof(*c) + size);
    if (c == NULL)
        return NULL;
    c->next = s->chunks;
    s->chunks = c;
    return c->data;
}

static int cfail(struct cctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int cfail(struct cctx *c, const char *fmt, ...)
{
    if (c->err == NULL || c->errlen == 0)
        return -1;
    int n = snprintf(c->err, c->errlen, "#%s%s: ", c->plen > PATH_SHOWN ? "..." : "",
                     c->path + (c->plen > PATH_SHOWN ? c->plen - PATH_SHOWN : 0));
    if (n < 0 || (size_t)n >= c->errlen)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

/* Appends "/seg" (JSON-pointer escaped) to the compile path; returns the old length. */
static size_t cpath_push(struct cctx *c, const char *seg)
{
    size_t old = c->plen;
    size_t p = c->plen;
    if (p + 1 < sizeof(c->path))
        c->path[p++] = '/';
    for (const char *q = seg; *q != '\0' && p + 2 < sizeof(c->path); q++) {
        if (*q == '~' || *q == '/') {
            c->path[p++] = '~';
            c->path[p++] = *q == '~' ? '0' : '1';
        } else {
            c->path[p++] = *q;
        }
    }
    c->path[p] = '\0';
    c->plen = p;
    return old;
}

static size_t cpath_push_index(struct cctx *c, size_t i)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%zu", i);
    return cpath_push(c, buf);
}

static void cpath_pop(struct cctx *c, size_t old)
{
    c->plen = old;
    c->path[old] = '\0';
}

static void node_init(struct js_node *n)
{
    n->bool_schema = -1;
    n->min_props = n->max_props = -1;
    n->min_len = n->max_len = -1;
    n->min_items = n->max_items = -1;
}

static struct js_node *node_new(struct cctx *c)
{
    struct js_node *n = arena_alloc(c->s, sizeof(*n));
    if (n == NULL) {
        cfail(c, "out of memory");
        return NULL;
    }
    node_init(n);
    return n;
}

static int compile_into(struct cctx *c, struct js_node *n, yajl_val v);

static struct js_node *compile_sub(struct cctx *c, yajl_val v)
{
    struct js_node *n = node_new(c);
    if (n == NULL)
        return NULL;
    if (compile_into(c, n, v) < 0)
        return NULL;
    return n;
}

/* Compiles the subschema at key kw of the current schema. */
static int compile_kw(struct cctx *c, const char *kw, yajl_val v, struct js_node **out)
{
    size_t old = cpath_push(c, kw);
    *out = compile_sub(c, v);
    cpath_pop(c, old);
    return *out == NULL ? -1 : 0;
}

static int compile_list(struct cctx *c, const char *kw, yajl_val v, struct js_list *out,
                        bool nonempty)
{
    if (!YAJL_IS_ARRAY(v) || (nonempty && v->u.array.len == 0))
        return cfail(c, "%s must be a%s array of schemas", kw, nonempty ? " non-empty" : "n");
    size_t n = v->u.array.len;
    out->v = arena_alloc(c->s, (n ? n : 1) * sizeof(*out->v));
    if (out->v == NULL)
        return cfail(c, "out of memory");
    out->n = n;
    size_t old = cpath_push(c, kw);
    for (size_t i = 0; i < n; i++) {
        size_t o2 = cpath_push_index(c, i);
        out->v[i] = compile_sub(c, v->u.array.values[i]);
        cpath_pop(c, o2);
        if (out->v[i] == NULL) {
            cpath_pop(c, old);
            return -1;
        }
    }
    cpath_pop(c, old);
    return 0;
}

static int get_count(struct cctx *c, const char *kw, yajl_val v, long *out)
{
    if (!YAJL_IS_NUMBER(v))
        return cfail(c, "%s must be a non-negative integer", kw);
    double d = YAJL_IS_DOUBLE(v) ? v->u.number.d : -1;
    if (YAJL_IS_INTEGER(v))
        d = (double)v->u.number.i;
    if (!(d >= 0) || d != floor(d) || d > 1e15)
        return cfail(c, "%s must be a non-negative integer", kw);
    *out = (long)d;
    return 0;
}

static double num_value(yajl_val v)
{
    if (v->u.number.flags & YAJL_NUMBER_DOUBLE_VALID)
        return v->u.number.d;
    if (v->u.number.flags & YAJL_NUMBER_INT_VALID)
        return (double)v->u.number.i;
    return strtod(v->u.number.r, NULL); /* out of range: +-HUGE_VAL or 0 */
}

static int get_num(struct cctx *c, const char *kw, yajl_val v, struct js_num *out)
{
    if (!YAJL_IS_NUMBER(v))
        return cfail(c, "%s must be a number", kw);
    out->set = true;
    out->is_int = YAJL_IS_INTEGER(v);
    out->i = out->is_int ? v->u.number.i : 0;
    out->d = num_value(v);
    out->raw = v->u.number.r;
    return 0;
}

static int get_string_array(struct cctx *c, const char *kw, yajl_val v, const char ***out,
                            size_t *nout)
{
    if (!YAJL_IS_ARRAY(v))
        return cfail(c, "%s must be an array of strings", kw);
    size_t n = v->u.array.len;
    const char **a = arena_alloc(c->s, (n ? n : 1) * sizeof(*a));
    if (a == NULL)
        return cfail(c, "out of memory");
    for (size_t i = 0; i < n; i++) {
        if (!YAJL_IS_STRING(v->u.array.values[i]))
            return cfail(c, "%s must be an array of strings", kw);
        a[i] = v->u.array.values[i]->u.string;
    }
    *out = a;
    *nout = n;
    return 0;
}

/* --- ECMA-262 pattern -> POSIX ERE ----------------------------------------------------- */

struct rbuf {
    char *p;
    size_t len, cap;
};

static void rb_putc(struct rbuf *b, char ch)
{
    if (b->len + 1 < b->cap)
        b->p[b->len++] = ch;
    b->p[b->len] = '\0';
}

static void rb_puts(struct rbuf *b, const char *s)
{
    while (*s != '\0')
        rb_putc(b, *s++);
}

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Reads \xHH or \uHHHH (p points after the backslash). Returns the code point or -1. */
static long read_hex_escape(const char **pp)
{
    const char *p = *pp;
    int n = *p == 'x' ? 2 : 4;
    long cp = 0;
    for (int i = 1; i <= n; i++) {
        int h = hexval((unsigned char)p[i]);
        if (h < 0)
            return -1;
        cp = cp * 16 + h;
    }
    if (cp == 0)
        return -1; /* a NUL would end the POSIX pattern early */
    *pp = p + n;   /* last consumed char */
    return cp;
}

static void put_utf8(struct rbuf *b, long cp)
{
    if (cp < 0x80) {
        rb_putc(b, (char)cp);
    } else if (cp < 0x800) {
        rb_putc(b, (char)(0xC0 | (cp >> 6)));
        rb_putc(b, (char)(0x80 | (cp & 0x3F)));
    } else {
        rb_putc(b, (char)(0xE0 | (cp >> 12)));
        rb_putc(b, (char)(0x80 | ((cp >> 6) & 0x3F)));
        rb_putc(b, (char)(0x80 | (cp & 0x3F)));
    }
}

static bool ere_special(int ch)
{
    return ch != '\0' && strchr(".[]{}()*+?|^$\\", ch) != NULL;
}

static void put_literal(struct rbuf *b, long cp)
{
    if (cp < 0x80 && ere_special((int)cp))
        rb_putc(b, '\\');
    put_utf8(b, cp);
}

/*
 * One element of a bracket expression: a single character (returns its code point) or a class
 * escape (\d \w \s: appended to body, returns -2). -1 on unsupported syntax. *pp points at the
 * element and is left on its last char.
 */
static long class_atom(const char **pp, struct rbuf *body, const char **why)
{
    const char *p = *pp;
    if (*p != '\\')
        return (unsigned char)*p;
    p++;
    *pp = p;
    switch (*p) {
    case 'd':
        rb_puts(body, "0-9");
        return -2;
    case 'w':
        rb_puts(body, "A-Za-z0-9_");
        return -2;
    case 's':
        rb_puts(body, "[:space:]");
        return -2;
    case 'n':
        return '\n';
    case 't':
        return '\t';
    case 'r':
        return '\r';
    case 'f':
        return '\f';
    case 'v':
        return '\v';
    case 'x':
    case 'u': {
        long cp = read_hex_escape(pp);
        if (cp < 0)
            *why = "bad \\x or \\u escape";
        return cp;
    }
    default:
        if (*p != '\0' && !isalnum((unsigned char)*p))
            return (unsigned char)*p;
        *why = "unsupported escape in character class";
        return -1;
    }
}

static int translate_class(const char **pp, struct rbuf *out, const char **why)
{
    const char *p = *pp + 1; /* after '[' */
    bool neg = false, rbr = false, dash = false, caret = false, lbr = false;
    struct rbuf body = {NULL, 0, strlen(p) * 16 + 16};
    int rc = -1;
    body.p = malloc(body.cap);
    if (body.p == NULL) {
        *why = "out of memory";
        return -1;
    }
    body.p[0] = '\0';
    if (*p == '^') {
        neg = true;
        p++;
    }
    for (; *p != ']'; p++) {
        if (*p == '\0') {
            *why = "unterminated character class";
            goto out;
        }
        long lo = class_atom(&p, &body, why);
        if (lo == -1)
            goto out;
        if (lo == -2)
            continue;
        if (p[1] == '-' && p[2] != ']' && p[2] != '\0') {
            p += 2;
            long hi = class_atom(&p, &body, why);
            if (hi == -1)
                goto out;
            if (hi == -2 || hi < lo || lo >= 0x80 || hi >= 0x80 || strchr("]-^[", (int)lo) ||
                strchr("]-^[", (int)hi)) {
                *why = "unsupported range in character class";
                goto out;
            }
            rb_putc(&body, (char)lo);
            rb_putc(&body, '-');
            rb_putc(&body, (char)hi);
            continue;
        }
        switch (lo) {
        case ']':
            rbr = true;
            break;
        case '-':
            dash = true;
            break;
        case '^':
            caret = true;
            break;
        case '[':
            lbr = true;
            break;
        default:
            put_utf8(&body, lo);
        }
    }
    *pp = p; /* on the closing ']' */
    if (!rbr && !dash && !caret && !lbr && body.len == 0) {
        *why = "empty character class";
        goto out;
    }
    if (!neg && !rbr && body.len == 0 && caret) {
        if (!dash && !lbr) {
            rb_puts(out, "\\^"); /* a lone '^': a plain literal instead of a class */
        } else {
            /* "[^...]" would be a negation: put '^' last, after a leading '-' or '['. */
            rb_puts(out, dash ? "[-" : "[");
            rb_puts(out, lbr ? "[^]" : "^]");
        }
        rc = 0;
        goto out;
    }
    rb_putc(out, '[');
    if (neg)
        rb_putc(out, '^');
    if (rbr)
        rb_putc(out, ']');
    rb_puts(out, body.p);
    if (caret)
        rb_putc(out, '^');
    if (lbr)
        rb_putc(out, '[');
    if (dash)
        rb_putc(out, '-');
    rb_putc(out, ']');
    rc = 0;
out:
    free(body.p);
    return rc;
}

/*
 * Parses "{m}", "{m,}" or "{m,n}" at p; returns its length, or 0 when p is not a quantifier (ECMA
 * Annex B then reads '{' as a literal). *big is set when a bound exceeds what we accept.
 */
static size_t brace_quantifier(const char *p, bool *big, long *reps)
{
    const char *q = p + 1;
    long lo = 0, hi = -1;
    if (!isdigit((unsigned char)*q))
        return 0;
    while (isdigit((unsigned char)*q) && lo <= 100000)
        lo = lo * 10 + (*q++ - '0');
    if (*q == ',') {
        q++;
        if (isdigit((unsigned char)*q)) {
            hi = 0;
            while (isdigit((unsigned char)*q) && hi <= 100000)
                hi = hi * 10 + (*q++ - '0');
        }
    }
    if (*q != '}')
        return 0;
    *big = lo > JS_MAX_REPEAT || hi > JS_MAX_REPEAT;
    *reps = hi > lo ? hi : lo;
    return (size_t)(q - p) + 1;
}

static int translate_pattern(const char *src, struct rbuf *out, const char **why)
{
    /* can_repeat: the previous item is an atom a quantifier may follow. Stacked quantifiers
     * ("a++", "a*{2}") are ECMA syntax errors and make glibc's regcomp explode in size. */
    bool can_repeat = false;
    /* glibc expands counted repetition by copying the repeated tree: bound the expanded size
     * (sizes per open group; last = size of the item a quantifier would repeat). */
    long size[JS_MAX_GROUPS + 1] = {0}, last = 0;
    int depth = 0;
    for (const char *p = src; *p != '\0'; p++) {
        bool atom = true;
        long item = 1;
        switch (*p) {
        case '\\':
            p++;
            switch (*p) {
            case 'd':
                rb_puts(out, "[0-9]");
                break;
            case 'D':
                rb_puts(out, "[^0-9]");
                break;
            case 'w':
                rb_puts(out, "[A-Za-z0-9_]");
                break;
            case 'W':
                rb_puts(out, "[^A-Za-z0-9_]");
                break;
            case 's':
                rb_puts(out, "[[:space:]]");
                break;
            case 'S':
                rb_puts(out, "[^[:space:]]");
                break;
            case 'b':
            case 'B':
                rb_putc(out, '\\'); /* glibc ERE word boundaries */
                rb_putc(out, *p);
                break;
            case 'n':
                rb_putc(out, '\n');
                break;
            case 't':
                rb_putc(out, '\t');
                break;
            case 'r':
                rb_putc(out, '\r');
                break;
            case 'f':
                rb_putc(out, '\f');
                break;
            case 'v':
                rb_putc(out, '\v');
                break;
            case 'x':
            case 'u': {
                long cp = read_hex_escape(&p);
                if (cp < 0) {
                    *why = "bad \\x or \\u escape";
                    return -1;
                }
                put_literal(out, cp);
                break;
            }
            default:
                if (*p == '\0' || isalnum((unsigned char)*p)) {
                    *why = "unsupported escape (backreferences and \\p are not supported)";
                    return -1;
                }
                put_literal(out, (unsigned char)*p);
            }
            break;
        case '[':
            if (translate_class(&p, out, why) < 0)
                return -1;
            break;
        case '(':
            if (p[1] == '?') {
                if (p[2] != ':') {
                    *why = "lookaround and named groups are not supported";
                    return -1;
                }
                p += 2;
            }
            rb_putc(out, '(');
            if (++depth > JS_MAX_GROUPS) {
                *why = "groups nested too deeply";
                return -1;
            }
            size[depth] = 0;
            atom = false;
            item = 0;
            break;
        case ')':
            rb_putc(out, ')');
            if (depth > 0)
                item = size[depth--];
            break;
        case '{':
        case '*':
        case '+':
        case '?': {
            size_t qlen = 1;
            bool big = false;
            long reps = 1;
            if (*p == '{' && (qlen = brace_quantifier(p, &big, &reps)) == 0) {
                rb_puts(out, "\\{"); /* not a quantifier: a literal brace */
                break;
            }
            if (!can_repeat) {
                *why =
                    "nothing to repeat (quantifier after a quantifier, '(', '|' or at the start)";
                return -1;
            }
            if (big) {
                *why = "repetition count too large";
                return -1;
            }
            long times = reps > 1 ? reps : 1;
            size[depth] += last * (times - 1);
            last *= times;
            if (size[depth] > JS_MAX_EXPANDED) {
                *why = "pattern too large once repetitions are expanded";
                return -1;
            }
            for (size_t i = 0; i < qlen; i++)
                rb_putc(out, p[i]);
            p += qlen - 1;
            if (p[1] == '?')
                p++; /* lazy quantifier: same match/no-match answer as greedy */
            atom = false;
            item = -1;
            break;
        }
        case '}':
            rb_puts(out, "\\}");
            break;
        case '|':
        case '^':
            rb_putc(out, *p);
            atom = false;
            break;
        default:
            rb_putc(out, *p);
        }
        if (item >= 0) { /* -1: a quantifier, which already updated size and last */
            last = item;
            size[depth] += item;
        }
        can_repeat = atom;
    }
    return 0;
}

static void set_add(uint8_t *set, int lo, int hi)
{
    for (int ch = lo; ch <= hi; ch++)
        set[ch >> 3] |= (uint8_t)(1u << (ch & 7));
}

/* One element of a fast-path class: adds it to set; returns false if it is not plain ASCII. */
static bool fast_atom(const char **pp, uint8_t *set, int *single)
{
    const char *p = *pp;
    *single = -1;
    if (*p == '\\') {
        p++;
        switch (*p) {
        case 'd':
            set_add(set, '0', '9');
            break;
        case 'w':
            set_add(set, '0', '9');
            set_add(set, 'A', 'Z');
            set_add(set, 'a', 'z');
            set_add(set, '_', '_');
            break;
        default:
            if (*p == '\0' || isalnum((unsigned char)*p) || (unsigned char)*p >= 0x80)
                return false;
            *single = (unsigned char)*p;
        }
    } else {
        if (*p == '\0' || (unsigned char)*p >= 0x80 || *p == '[')
            return false;
        *single = (unsigned char)*p;
    }
    *pp = p;
    return true;
}

/* Recognises "^[...]Q$" with Q one of + * {m} {m,} {m,n}, a non-negated class of ASCII
 * characters, ranges, \d and \w. Anything else keeps the POSIX regex. */
static void fast_pattern(struct js_regex *r, const char *src)
{
    const char *p = src;
    uint8_t set[16] = {0};
    if (p[0] != '^' || p[1] != '[' || p[2] == '^' || p[2] == ']')
        return;
    for (p += 2; *p != ']'; p++) {
        int lo, hi;
        if (!fast_atom(&p, set, &lo))
            return;
        if (lo < 0)
            continue;
        if (p[1] == '-' && p[2] != ']' && p[2] != '\0') {
            p += 2;
            if (!fast_atom(&p, set, &hi) || hi < lo)
                return;
            set_add(set, lo, hi);
        } else {
            set_add(set, lo, lo);
        }
    }
    p++;
    long min, max;
    if (*p == '+' || *p == '*') {
        min = *p == '+' ? 1 : 0;
        max = -1;
        p++;
    } else if (*p == '{') {
        bool big = false;
        long reps;
        size_t q = brace_quantifier(p, &big, &reps);
        if (q == 0 || big)
            return;
        char *end;
        min = strtol(p + 1, &end, 10);
        max = *end == ',' ? (end[1] == '}' ? -1 : strtol(end + 1, NULL, 10)) : min;
        p += q;
    } else {
        return;
    }
    if (p[0] != '$' || p[1] != '\0')
        return;
    memcpy(r->set, set, sizeof(set));
    r->min = min;
    r->max = max;
    r->fast = true;
}

static bool rx_match(const struct js_regex *r, const char *s)
{
    if (!r->fast)
        return regexec(&r->re, s, 0, NULL, 0) == 0;
    long n = 0;
    for (; *s != '\0'; s++, n++) {
        unsigned ch = (unsigned char)*s;
        if (ch >= 0x80 || !(r->set[ch >> 3] & (1u << (ch & 7))))
            return false;
    }
    return n >= r->min && (r->max < 0 || n <= r->max);
}

static int compile_regex(struct cctx *c, const char *kw, const char *src, struct js_regex **out)
{
    size_t cap = strlen(src) * 16 + 16;
    char *ere = malloc(cap);
    if (ere == NULL)
        return cfail(c, "out of memory");
    struct rbuf b = {ere, 0, cap};
    ere[0] = '\0';
    const char *why = NULL;
    if (translate_pattern(src, &b, &why) < 0) {
        free(ere);
        return cfail(c, "%s \"%s\": %s", kw, src, why);
    }
    struct js_regex *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        free(ere);
        return cfail(c, "out of memory");
    }
    int rc = regcomp(&r->re, ere, REG_EXTENDED | REG_NOSUB);
    free(ere);
    if (rc != 0) {
        char msg[128];
        regerror(rc, &r->re, msg, sizeof(msg));
        free(r);
        return cfail(c, "%s \"%s\" does not compile: %s", kw, src, msg);
    }
    r->src = src;
    fast_pattern(r, src);
    r->next = c->s->regexes;
    c->s->regexes = r;
    *out = r;
    return 0;
}

/* --- $ref -------------------------------------------------------------------------------- */

static yajl_val pointer_step(yajl_val cur, const char *tok)
{
    if (YAJL_IS_OBJECT(cur)) {
        for (size_t i = 0; i < cur->u.object.len; i++)
            if (strcmp(cur->u.object.keys[i], tok) == 0)
                return cur->u.object.values[i];
        return NULL;
    }
    if (YAJL_IS_ARRAY(cur)) {
        char *end;
        if (!isdigit((unsigned char)tok[0]) || (tok[0] == '0' && tok[1] != '\0'))
            return NULL;
        unsigned long idx = strtoul(tok, &end, 10);
        if (*end != '\0' || idx >= cur->u.array.len)
            return NULL;
        return cur->u.array.values[idx];
    }
    return NULL;
}

/* Resolves a local reference ("#", "#/a/b~1c", percent-encoded) in the schema tree. */
static yajl_val resolve_ref(yajl_val root, const char *ref)
{
    char tok[256];
    if (ref[0] != '#')
        return NULL;
    const char *p = ref + 1;
    if (*p == '\0')
        return root;
    if (*p != '/')
        return NULL;
    yajl_val cur = root;
    while (*p == '/') {
        p++;
        size_t n = 0;
        while (*p != '\0' && *p != '/') {
            int ch = (unsigned char)*p++;
            if (ch == '%' && hexval((unsigned char)p[0]) >= 0 && hexval((unsigned char)p[1]) >= 0) {
                ch = hexval((unsigned char)p[0]) * 16 + hexval((unsigned char)p[1]);
                p += 2;
            }
            if (ch == '~') {
                if (*p == '0')
                    ch = '~';
                else if (*p == '1')
                    ch = '/';
                else
                    return NULL;
                p++;
            }
            if (n + 1 >= sizeof(tok))
                return NULL;
            tok[n++] = (char)ch;
        }
        tok[n] = '\0';
        cur = pointer_step(cur, tok);
        if (cur == NULL)
            return NULL;
    }
    return cur;
}

static int compile_ref(struct cctx *c, struct js_node *n, yajl_val v)
{
    if (!YAJL_IS_STRING(v))
        return cfail(c, "$ref must be a string");
    const char *ref = v->u.string;
    if (ref[0] != '#')
        return cfail(c, "$ref \"%s\": only local references (\"#...\") are supported", ref);
    yajl_val target = resolve_ref(c->s->tree, ref);
    if (target == NULL)
        return cfail(c, "$ref \"%s\" does not resolve", ref);
    n->ref_text = ref;
    for (size_t i = 0; i < c->nrefs; i++) {
        if (c->refs[i].target == target) {
            n->ref = c->refs[i].node;
            return 0;
        }
    }
    if (c->nrefs == c->caprefs) {
        size_t cap = c->caprefs ? c->caprefs * 2 : 8;
        struct js_refcache *r = realloc(c->refs, cap * sizeof(*r));
        if (r == NULL)
            return cfail(c, "out of memory");
        c->refs = r;
        c->caprefs = cap;
    }
    struct js_node *t = node_new(c);
    if (t == NULL)
        return -1;
    /* Cached before compiling so a recursive reference finds it. */
    c->refs[c->nrefs].target = target;
    c->refs[c->nrefs].node = t;
    c->nrefs++;
    n->ref = t;
    char saved[JS_PATH_MAX];
    size_t savedlen = c->plen;
    memcpy(saved, c->path, savedlen + 1);
    snprintf(c->path, sizeof(c->path), "%s", ref + 1);
    c->plen = strlen(c->path);
    int rc = compile_into(c, t, target);
    memcpy(c->path, saved, savedlen + 1);
    c->plen = savedlen;
    return rc;
}

/* --- keywords ---------------------------------------------------------------------------- */

typedef int (*kw_fn)(struct cctx *c, struct js_node *n, const char *kw, yajl_val v);

static int kw_type(struct cctx *c, struct js_node *n, const char *kw, yajl_val v)
{
    size_t cnt = 1;
    yajl_val *vals = &v;
    if (YAJL_IS_ARRAY(v)) {
        cnt = v->u.array.len;
        vals = v->u.array.values;
        if (cnt == 0)
            return cfail(c, "type must not be an empty array");
    }
    for (size_t i = 0; i < cnt; i++) {
        if (!YAJL_IS_STRING(vals[i]))
            return cfail(c, "type must be a string or an array of strings");
        size_t k;
        for (k = 0; k < sizeof(type_names) / sizeof(type_names[0]); k++)
            if (strcmp(vals[i]->u.string, type_names[k].name) == 0)
                break;
        if (k == sizeof(type_names) / sizeof(type_names[0]))
            return cfail(c, "unknown type \"%s\"", vals[i]->u.string);
        n->types |= type_names[k].bit;
    }
    return 0;
}

static int prop_cmp(const void *a, const void *b)
{
    return strcmp(((const struct js_prop *)a)->name, ((const struct js_prop *)b)->name);
}

static int kw_properties(struct cctx *c, struct js_node *n, const char *kw, yajl_val v)
{
    if (!YAJL_IS_OBJECT(v))
        return cfail(c, "properties must be an object");
    size_t cnt = v->u.object.len;
    n->props = arena_alloc(c->s, (cnt ? cnt : 1) * sizeof(*n->props));
    if (n->props == NULL)
        return cfail(c, "out of memory");
    size_t old = cpath_push(c, kw);
    for (size_t i = 0; i < cnt; i++) {
        size_t o2 = cpath_push(c, v->u.object.keys[i]);
        n->props[i].name = v->u.object.keys[i];
        n->props[i].node = compile_sub(c, v->u.object.values[i]);
        cpath_pop(c, o2);
        if (n->props[i].node == NULL)
            return -1;
    }
    cpath_pop(c, old);
    n->nprops = cnt;
    qsort(n->props, cnt, sizeof(*n->props), prop_cmp);
    return 0;
}

static int kw_pattern_properties(struct cctx *c, struct js_node *n, const char *kw, yajl_val v)
{
    if (!YAJL_IS_OBJECT(v))
        return cfail(c, "patternProperties must be an object");
    size_t cnt = v->u.object.len;
    n->pprops = arena_alloc(c->s, (cnt ? cnt : 1) * sizeof(*n->pprops));
    if (n->pprops == NULL)
        return cfail(c, "out of memory");
    for (size_t i = 0; i < cnt; i++) {
        if (compile_regex(c, kw, v->u.object.keys[i], &n->pprops[i].re) < 0)
            return -1;
        size_t old = cpath_push(c, kw);
        size_t o2 = cpath_push(c, v->u.object.keys[i]);
        n->pprops[i].node = compile_sub(c, v->u.object.values[i]);
        cpath_pop(c, o2);
        cpath_pop(c, old);
        if (n->pprops[i].node == NULL)
            return -1;
    }
    n->npprops = cnt;
    return 0;
}

static int kw_required(struct cctx *c, struct js_node *n, const char *kw, yajl_val v)
{
    return get_string_array(c, kw, v, &n->required, &n->nrequired);
}

static int kw_dependent_required(struct cctx *c, struct js_node *n, const char *kw, yajl_val v)
{
    if (!YAJL_IS_OBJECT(v))
        return cfail(c, "dependentRequired must be an object");
    size_t cnt = v->u.object.len;
    n->deps = arena_alloc(c->s, (cnt ? cnt : 1) * sizeof(*n->deps));
    if (n->deps == NULL)
        return cfail(c, "out of memory");
    for (size_t i = 0; i < cnt; i++) {
        n->deps[i].name = v->u.object.keys[i];
        if (get_string_array(c, kw, v->u.object.values[i], &n->deps[i].req, &n->deps[i].nreq) < 0)
            return -1;
    }
    n->ndeps = cnt;
    return 0;
}

static int kw_additional(struct cctx *c, struct js_node *n, const char *kw, yajl_val v)
{
    return compile_kw(c, kw, v, &n->additional);
}

static int kw_property_names(struct cctx *c, struct js_node *n, const char *kw, yajl_val v)
{
    return compile_kw(c, kw, v, &n->property_names);
}

static int kw_min_props(struct cctx *c, struct js_node *n, const char *kw, yajl_val v)
{
    return get_count(c, kw, v, &n->min_props);
}

static int kw_max_props(struct cctx *c, struct js_node *n, const char *kw, yajl_val v)
{
    return get_count(c, kw, v, &n->max_props);
}

static int kw_enum(struct cctx *c, struct js_node *n, const char *kw, yajl_val v)
{
    if (!YAJL_IS_ARRAY(v))
        return cfail(c, "enum must be an array");
    n->enum_vals = v;
    return 0;
}

static int kw_const(struct cctx *c, struct js_node *n, const char *kw, yajl_val v)
{
    n->const_val = v;
    n->has_const = true;
    return 0;
}

static int kw_minimum(struct cctx *c, struct js_node *n, const char *kw, yajl_val v)
{
    return get_num(c, kw, v, &n->minimum);
}

static int kw_maximum(struct cctx *c, struct js_node *n, const char *kw, yajl_val v)
{
    return get_num(c, kw, v, &n->maximum);
}

static int kw_ex_minimum(struct cctx *c, struct js_node *n, const char *kw, yajl_val v)
{
    return get_num(c, kw, v, &n->ex_minimum);
}

static int kw_ex_maximum(struct cctx *c, struct js_node *n, const char *kw, yajl_val v)
{
    return get_num(c, kw, v, &n->ex_maximum);
}

static int kw_multiple_of(struct cctx *c, struct js_node *n, const char *kw, yajl_val v)
{
    if (get_num(c, kw, v, &n->multiple_of) < 0)
        return -1;
    if (!(n->multiple_of.d > 0))
        return cfail(c, "multipleOf must be greater than 0");
    return 0;
}

static int kw_min_len(struct cctx *c, struct js_node *n, const char *kw, yajl_val v)
{
    return get_count(c, kw, v, &n->min_len);
}

static int kw_max_len(struct cctx *c, struct js_node *n, const char *kw, yajl_val v)
{
    return get_count(c, kw, v, &n->max_len);
}

static int kw_pattern(struct cctx *c, struct js_node *n, const char *kw, yajl_val v)
{
    if (!YAJL_IS_STRING(v))
        return cfail(c, "pattern must be a string");
    return compile_regex(c, kw, v->u.string, &n->pattern);
}

static int kw_format(struct cctx *c, struct js_node *n, const char *kw, yajl_val v)
{
    if (!YAJL_IS_STRING(v))
        return cfail(c, "format must be a string");
    for (size_t k = 0; k < sizeof(format_names) / sizeof(format_names[0]); k++)
        if (strcmp(v->u.string, format_names[k].name) == 0)
            n->format = format_names[k].fmt;
    return 0; /* other formats are annotations only */
}

static int kw_items(struct cctx *c, struct js_node *n, const char *kw, yajl_val v)
{
    if (YAJL_IS_ARRAY(v)) { /* draft-07 tuple form */
        n->items_is_tuple = true;
        return compile_list(c, kw, v, &n->prefix, false);
    }
    return compile_kw(c, kw, v, &n->items);
}

static int kw_prefix_items(struct cctx *c, struct js_node *n, const char *kw, yajl_val v)
{
    return compile_list(c, kw, v, &n->prefix, true);
}

static int kw_additional_items(struct cctx *c, struct js_node *n, const char *kw, yajl_val v)
{
    return compile_kw(c, kw, v, &n->additional_items);
}

static int kw_contains(struct cctx *c, struct js_node *n, const char *kw, yajl_val v)
{
    return compile_kw(c, kw, v, &n->contains);
}

static int kw_min_items(struct cctx *c, struct js_node *n, const char *kw, yajl_val v)
{
    return get_count(c, kw, v, &n->min_items);
}

static int kw_max_items(struct cctx *c, struct js_node *n, const char *kw, yajl_val v)
{
    return get_count(c, kw, v, &n->max_items);
}

static int kw_unique(struct cctx *c, struct js_node *n, const char *kw, yajl_val v)
{
    if (!YAJL_IS_TRUE(v) && !YAJL_IS_FALSE(v))
        return cfail(c, "uniqueItems must be a boolean");
    n->unique = YAJL_IS_TRUE(v);
    return 0;
}

static int kw_all_of(struct cctx *c, struct js_node *n, const char *kw, yajl_val v)
{
    return compile_list(c, kw, v, &n->all_of, true);
}

static int kw_any_of(struct cctx *c, struct js_node *n, const char *kw, yajl_val v)
{
    return compile_list(c, kw, v, &n->any_of, true);
}

static int kw_one_of(struct cctx *c, struct js_node *n, const char *kw, yajl_val v)
{
    return compile_list(c, kw, v, &n->one_of, true);
}

static int kw_not(struct cctx *c, struct js_node *n, const char *kw, yajl_val v)
{
    return compile_kw(c, kw, v, &n->not_);
}

static int kw_if(struct cctx *c, struct js_node *n, const char *kw, yajl_val v)
{
    return compile_kw(c, kw, v, &n->if_);
}

static int kw_then(struct cctx *c, struct js_node *n, const char *kw, yajl_val v)
{
    return compile_kw(c, kw, v, &n->then_);
}

static int kw_else(struct cctx *c, struct js_node *n, const char *kw, yajl_val v)
{
    return compile_kw(c, kw, v, &n->else_);
}

static int kw_ref(struct cctx *c, struct js_node *n, const char *kw, yajl_val v)
{
    return compile_ref(c, n, v);
}

/* $defs / definitions: compile-checked so a broken definition is reported even if unused. */
static int kw_defs(struct cctx *c, struct js_node *n, const char *kw, yajl_val v)
{
    if (!YAJL_IS_OBJECT(v))
        return cfail(c, "%s must be an object", kw);
    size_t old = cpath_push(c, kw);
    for (size_t i = 0; i < v->u.object.len; i++) {
        size_t o2 = cpath_push(c, v->u.object.keys[i]);
        struct js_node *d = compile_sub(c, v->u.object.values[i]);
        cpath_pop(c, o2);
        if (d == NULL)
            return -1;
    }
    cpath_pop(c, old);
    return 0;
}

static int kw_unsupported(struct cctx *c, struct js_node *n, const char *kw, yajl_val v)
{
    return cfail(c, "keyword %s is not supported by this validator", kw);
}

/* The keyword table: every assertion keyword this validator knows. Others are annotations. */
static const struct {
    const char *name;
    kw_fn fn;
} keywords[] = {
    {"type", kw_type},
    {"properties", kw_properties},
    {"patternProperties", kw_pattern_properties},
    {"required", kw_required},
    {"dependentRequired", kw_dependent_required},
    {"additionalProperties", kw_additional},
    {"propertyNames", kw_property_names},
    {"minProperties", kw_min_props},
    {"maxProperties", kw_max_props},
    {"enum", kw_enum},
    {"const", kw_const},
    {"minimum", kw_minimum},
    {"maximum", kw_maximum},
    {"exclusiveMinimum", kw_ex_minimum},
    {"exclusiveMaximum", kw_ex_maximum},
    {"multipleOf", kw_multiple_of},
    {"minLength", kw_min_len},
    {"maxLength", kw_max_len},
    {"pattern", kw_pattern},
    {"format", kw_format},
    {"items", kw_items},
    {"prefixItems", kw_prefix_items},
    {"additionalItems", kw_additional_items},
    {"contains", kw_contains},
    {"minItems", kw_min_items},
    {"maxItems", kw_max_items},
    {"uniqueItems", kw_unique},
    {"allOf", kw_all_of},
    {"anyOf", kw_any_of},
    {"oneOf", kw_one_of},
    {"not", kw_not},
    {"if", kw_if},
    {"then", kw_then},
    {"else", kw_else},
    {"$ref", kw_ref},
    {"$defs", kw_defs},
    {"definitions", kw_defs},
    {"unevaluatedProperties", kw_unsupported},
    {"unevaluatedItems", kw_unsupported},
    {"dependentSchemas", kw_unsupported},
    {"dependencies", kw_unsupported},
    {"minContains", kw_unsupported},
    {"maxContains", kw_unsupported},
    {"$dynamicRef", kw_unsupported},
    {"$recursiveRef", kw_unsupported},
};

static int compile_into(struct cctx *c, struct js_node *n, yajl_val v)
{
    if (YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v)) {
        n->bool_schema = YAJL_IS_TRUE(v) ? 1 : 0;
        return 0;
    }
    if (!YAJL_IS_OBJECT(v))
        return cfail(c, "a schema must be an object or a boolean");
    if (++c->depth > JS_MAX_COMPILE_DEPTH) {
        c->depth--;
        return cfail(c, "schema nested too deeply");
    }
    int rc = 0;
    for (size_t i = 0; i < v->u.object.len && rc == 0; i++) {
        const char *kw = v->u.object.keys[i];
        for (size_t k = 0; k < sizeof(keywords) / sizeof(keywords[0]); k++) {
            if (strcmp(kw, keywords[k].name) == 0) {
                rc = keywords[k].fn(c, n, kw, v->u.object.values[i]);
                break;
            }
        }
    }
    c->depth--;
    if (rc < 0)
        return -1;
    if (n->items_is_tuple && n->additional_items != NULL)
        n->items = n->additional_items;
    return 0;
}

struct jsonschema *jsonschema_compile(const char *schema_json, char *err, size_t errlen)
{
    char perr[256];
    struct cctx c;
    memset(&c, 0, sizeof(c));
    c.err = err;
    c.errlen = errlen;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    struct jsonschema *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c.s = s;
    s->tree = yajl_tree_parse(schema_json, perr, sizeof(perr));
    if (s->tree == NULL) {
        for (char *q = perr; *q != '\0'; q++)
            if (*q == '\n')
                *q = ' ';
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "schema is not valid JSON: %s", perr);
        goto fail;
    }
    s->root = compile_sub(&c, s->tree);
    if (s->root == NULL)
        goto fail;
    free(c.refs);
    return s;
fail:
    free(c.refs);
    jsonschema_free(s);
    return NULL;
}

void jsonschema_free(struct jsonschema *s)
{
    if (s == NULL)
        return;
    while (s->regexes != NULL) {
        struct js_regex *r = s->regexes;
        s->regexes = r->next;
        regfree(&r->re);
        free(r);
    }
    while (s->chunks != NULL) {
        struct js_chunk *ch = s->chunks;
        s->chunks = ch->next;
        free(ch);
    }
    if (s->tree != NULL)
        yajl_tree_free(s->tree);
    free(s);
}

/* ---------------------------------------------------------------------------------------- */
/* validate                                                                                 */

/* One step of the instance path: an object key, or an array index when key is NULL. The path is
 * kept as this stack of borrowed pointers and formatted only when a failure is reported. */
struct vseg {
    const char *key;
    size_t index;
};

struct vctx {
    char *err; /* NULL: only the verdict is wanted (e.g. inside oneOf) */
    size_t errlen;
    const char *root;
    struct vseg seg[JS_MAX_DEPTH + 8];
    size_t nseg;      /* may exceed the array: deeper steps are counted, not stored */
    size_t fail_nseg; /* path depth at the last failure: picks the closest anyOf branch */
    int depth;
};

static bool is_ident(const char *k)
{
    if (!(isalpha((unsigned char)k[0]) || k[0] == '_'))
        return false;
    for (const char *q = k; *q != '\0'; q++)
        if (!(isalnum((unsigned char)*q) || *q == '_' || *q == '-'))
            return false;
    return true;
}

/* Formats the path: root, then ".key", ["odd key"] or [index] per step. */
static size_t format_path(const struct vctx *v, char *buf, size_t cap)
{
    struct rbuf b = {buf, 0, cap};
    buf[0] = '\0';
    rb_puts(&b, v->root);
    size_t n =
        v->nseg < sizeof(v->seg) / sizeof(v->seg[0]) ? v->nseg : sizeof(v->seg) / sizeof(v->seg[0]);
    for (size_t i = 0; i < n && b.len + 1 < cap; i++) {
        const struct vseg *g = &v->seg[i];
        if (g->key == NULL) {
            char num[32];
            snprintf(num, sizeof(num), "[%zu]", g->index);
            rb_puts(&b, num);
        } else if (is_ident(g->key)) {
            rb_putc(&b, '.');
            rb_puts(&b, g->key);
        } else {
            rb_puts(&b, "[\"");
            for (const char *q = g->key; *q != '\0' && b.len + 1 < cap; q++) {
                if (*q == '"' || *q == '\\')
                    rb_putc(&b, '\\');
                rb_putc(&b, ((unsigned char)*q < 0x20) ? '?' : *q);
            }
            rb_puts(&b, "\"]");
        }
    }
    return b.len;
}

static int vfail(struct vctx *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int vfail(struct vctx *v, const char *fmt, ...)
{
    v->fail_nseg = v->nseg;
    if (v->err == NULL || v->errlen == 0)
        return -1;
    char path[JS_PATH_MAX];
    size_t plen = format_path(v, path, sizeof(path));
    /* A very long path keeps its head (the root name) and its tail, so the rule stays visible. */
    int n;
    if (plen > PATH_SHOWN)
        n = snprintf(v->err, v->errlen, "%.24s...%s: ", path, path + plen - (PATH_SHOWN - 24));
    else
        n = snprintf(v->err, v->errlen, "%s: ", path);
    if (n < 0 || (size_t)n >= v->errlen)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->err + n, v->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

/* Pushes a step onto the instance path; returns the depth to restore with vpath_pop. */
static size_t vpath_key(struct vctx *v, const char *k)
{
    size_t old = v->nseg;
    if (v->nseg < sizeof(v->seg) / sizeof(v->seg[0])) {
        v->seg[v->nseg].key = k;
        v->seg[v->nseg].index = 0;
    }
    v->nseg++;
    return old;
}

static size_t vpath_index(struct vctx *v, size_t i)
{
    size_t old = v->nseg;
    if (v->nseg < sizeof(v->seg) / sizeof(v->seg[0])) {
        v->seg[v->nseg].key = NULL;
        v->seg[v->nseg].index = i;
    }
    v->nseg++;
    return old;
}

static void vpath_pop(struct vctx *v, size_t old)
{
    v->nseg = old;
}

static bool num_is_integral(yajl_val x)
{
    if (x->u.number.flags & YAJL_NUMBER_INT_VALID)
        return true;
    if (x->u.number.flags & YAJL_NUMBER_DOUBLE_VALID)
        return isfinite(x->u.number.d) && x->u.number.d == floor(x->u.number.d);
    return strpbrk(x->u.number.r, ".eE") == NULL;
}

static unsigned inst_types(yajl_val x)
{
    switch (x->type) {
    case yajl_t_null:
        return T_NULL;
    case yajl_t_true:
    case yajl_t_false:
        return T_BOOLEAN;
    case yajl_t_object:
        return T_OBJECT;
    case yajl_t_array:
        return T_ARRAY;
    case yajl_t_string:
        return T_STRING;
    case yajl_t_number:
        return T_NUMBER | (num_is_integral(x) ? T_INTEGER : 0);
    default:
        return 0;
    }
}

static const char *inst_type_name(yajl_val x)
{
    unsigned t = inst_types(x);
    if (t & T_INTEGER)
        return "integer";
    for (size_t k = 0; k < sizeof(type_names) / sizeof(type_names[0]); k++)
        if (t & type_names[k].bit)
            return type_names[k].name;
    return "unknown";
}

/* Numeric comparison: <0, 0, >0. Exact for two representable integers. */
static int num_cmp(yajl_val x, const struct js_num *b)
{
    if ((x->u.number.flags & YAJL_NUMBER_INT_VALID) && b->is_int) {
        long long a = x->u.number.i;
        return a < b->i ? -1 : a > b->i;
    }
    double a = num_value(x);
    return a < b->d ? -1 : a > b->d;
}

static bool num_multiple(yajl_val x, const struct js_num *m)
{
    if ((x->u.number.flags & YAJL_NUMBER_INT_VALID) && m->is_int) {
        if (m->i == 1 || m->i == -1)
            return true;
        return x->u.number.i % m->i == 0;
    }
    double q = num_value(x) / m->d;
    if (!isfinite(q))
        return false;
    if (fabs(q) >= 9007199254740992.0) /* 2^53: no fractional part representable */
        return true;
    return fabs(q - nearbyint(q)) <= 1e-9 * fmax(1.0, fabs(q));
}

static bool json_equal(yajl_val a, yajl_val b, int depth);

struct kv {
    const char *k;
    yajl_val v;
};

static int kv_cmp(const void *x, const void *y)
{
    return strcmp(((const struct kv *)x)->k, ((const struct kv *)y)->k);
}

/* Objects of equal length. Same key order (the usual case) is one pass; otherwise small objects
 * are searched pairwise and large ones sorted, so a client cannot make this quadratic. */
static bool object_equal(yajl_val a, yajl_val b, int depth)
{
    size_t n = a->u.object.len, i;
    for (i = 0; i < n; i++)
        if (strcmp(a->u.object.keys[i], b->u.object.keys[i]) != 0)
            break;
    if (i == n) {
        for (i = 0; i < n; i++)
            if (!json_equal(a->u.object.values[i], b->u.object.values[i], depth + 1))
                return false;
        return true;
    }
    struct kv *s = n > 16 ? malloc(2 * n * sizeof(*s)) : NULL;
    if (s == NULL) {
        for (i = 0; i < n; i++) {
            size_t j;
            for (j = 0; j < n; j++)
                if (strcmp(a->u.object.keys[i], b->u.object.keys[j]) == 0)
                    break;
            if (j == n || !json_equal(a->u.object.values[i], b->u.object.values[j], depth + 1))
                return false;
        }
        return true;
    }
    struct kv *t = s + n;
    for (i = 0; i < n; i++) {
        s[i].k = a->u.object.keys[i];
        s[i].v = a->u.object.values[i];
        t[i].k = b->u.object.keys[i];
        t[i].v = b->u.object.values[i];
    }
    qsort(s, n, sizeof(*s), kv_cmp);
    qsort(t, n, sizeof(*t), kv_cmp);
    bool eq = true;
    for (i = 0; i < n && eq; i++)
        eq = strcmp(s[i].k, t[i].k) == 0 && json_equal(s[i].v, t[i].v, depth + 1);
    free(s);
    return eq;
}

static bool json_equal(yajl_val a, yajl_val b, int depth)
{
    if (depth > JS_MAX_EQ_DEPTH)
        return false;
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case yajl_t_number:
        if ((a->u.number.flags & b->u.number.flags & YAJL_NUMBER_INT_VALID))
            return a->u.number.i == b->u.number.i;
        return num_value(a) == num_value(b);
    case yajl_t_string:
        return strcmp(a->u.string, b->u.string) == 0;
    case yajl_t_array:
        if (a->u.array.len != b->u.array.len)
            return false;
        for (size_t i = 0; i < a->u.array.len; i++)
            if (!json_equal(a->u.array.values[i], b->u.array.values[i], depth + 1))
                return false;
        return true;
    case yajl_t_object:
        return a->u.object.len == b->u.object.len && object_equal(a, b, depth);
    default:
        return true; /* true, false, null: equal by type */
    }
}

static uint64_t hash_str(uint64_t h, const char *s)
{
    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* Hash consistent with json_equal: equal values hash equal (object keys in any order). */
static uint64_t json_hash(yajl_val a, int depth)
{
    uint64_t h = 14695981039346656037ull ^ (uint64_t)a->type;
    if (depth > JS_MAX_EQ_DEPTH)
        return h;
    switch (a->type) {
    case yajl_t_number: {
        double d = num_value(a);
        d += 0.0; /* -0 becomes +0: they are equal, so they must hash the same */
        uint64_t bits;
        memcpy(&bits, &d, sizeof(bits));
        return (h ^ bits) * 1099511628211ull;
    }
    case yajl_t_string:
        return hash_str(h, a->u.string);
    case yajl_t_array:
        for (size_t i = 0; i < a->u.array.len; i++)
            h = (h ^ json_hash(a->u.array.values[i], depth + 1)) * 1099511628211ull;
        return h;
    case yajl_t_object: {
        uint64_t sum = 0;
        for (size_t i = 0; i < a->u.object.len; i++)
            sum += (hash_str(14695981039346656037ull, a->u.object.keys[i]) * 31u) ^
                   json_hash(a->u.object.values[i], depth + 1);
        return h ^ sum;
    }
    default:
        return h;
    }
}

struct hidx {
    uint64_t h;
    size_t i;
};

static int hidx_cmp(const void *a, const void *b)
{
    const struct hidx *x = a, *y = b;
    if (x->h != y->h)
        return x->h < y->h ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

/* Finds two equal items; returns false and sets *i < *j, or true when all are unique. */
static bool items_unique(yajl_val arr, size_t *pi, size_t *pj)
{
    size_t n = arr->u.array.len;
    yajl_val *a = arr->u.array.values;
    if (n <= 16) {
        for (size_t i = 0; i < n; i++)
            for (size_t j = i + 1; j < n; j++)
                if (json_equal(a[i], a[j], 0)) {
                    *pi = i;
                    *pj = j;
                    return false;
                }
        return true;
    }
    struct hidx *h = malloc(n * sizeof(*h));
    if (h == NULL) { /* degrade to the quadratic scan rather than fail the call */
        for (size_t i = 0; i < n; i++)
            for (size_t j = i + 1; j < n; j++)
                if (json_equal(a[i], a[j], 0)) {
                    *pi = i;
                    *pj = j;
                    return false;
                }
        return true;
    }
    for (size_t i = 0; i < n; i++) {
        h[i].h = json_hash(a[i], 0);
        h[i].i = i;
    }
    qsort(h, n, sizeof(*h), hidx_cmp);
    bool uniq = true;
    size_t bi = 0, bj = 0;
    for (size_t s = 0; s < n; s++) {
        for (size_t t = s + 1; t < n && h[t].h == h[s].h; t++) {
            if (json_equal(a[h[s].i], a[h[t].i], 0)) {
                size_t i = h[s].i, j = h[t].i; /* s < t so i < j */
                if (uniq || j < bj || (j == bj && i < bi)) {
                    bi = i;
                    bj = j;
                }
                uniq = false;
            }
        }
    }
    free(h);
    *pi = bi;
    *pj = bj;
    return uniq;
}

static size_t utf8_len(const char *s, size_t stop)
{
    size_t n = 0;
    for (; *s != '\0' && n <= stop; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

/* --- formats ----------------------------------------------------------------------------- */

static bool digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

static bool is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* full-date; s must hold at least 10 chars */
static bool check_date(const char *s)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, m, d;
    if (!digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &m) || s[7] != '-' ||
        !digits(s + 8, 2, &d))
        return false;
    if (m < 1 || m > 12 || d < 1)
        return false;
    return d <= mdays[m - 1] + (m == 2 && is_leap(y));
}

/* full-time (RFC 3339 section 5.6), the whole rest of the string */
static bool check_time(const char *s)
{
    int h, mi, se, oh = 0, om = 0;
    if (!digits(s, 2, &h) || s[2] != ':' || !digits(s + 3, 2, &mi) || s[5] != ':' ||
        !digits(s + 6, 2, &se))
        return false;
    s += 8;
    if (*s == '.') {
        s++;
        if (!isdigit((unsigned char)*s))
            return false;
        while (isdigit((unsigned char)*s))
            s++;
    }
    int sign = 0;
    if (*s == 'Z' || *s == 'z') {
        s++;
    } else if (*s == '+' || *s == '-') {
        sign = *s == '+' ? 1 : -1;
        if (!digits(s + 1, 2, &oh) || s[3] != ':' || !digits(s + 4, 2, &om))
            return false;
        s += 6;
    } else {
        return false;
    }
    if (*s != '\0' || h > 23 || mi > 59 || se > 60 || oh > 23 || om > 59)
        return false;
    if (se == 60) { /* leap second: only at 23:59 UTC */
        int utc = ((h * 60 + mi - sign * (oh * 60 + om)) % 1440 + 1440) % 1440;
        if (utc != 23 * 60 + 59)
            return false;
    }
    return true;
}

static bool check_datetime(const char *s)
{
    if (strlen(s) < 11 || !check_date(s) || (s[10] != 'T' && s[10] != 't'))
        return false;
    return check_time(s + 11);
}

static bool check_email(const char *s)
{
    const char *at = strrchr(s, '@');
    if (at == NULL || at == s || at - s > 64 || strlen(s) > 254)
        return false;
    for (const char *q = s; q < at; q++) {
        unsigned char ch = (unsigned char)*q;
        if (ch == '.') {
            if (q == s || q + 1 == at || q[1] == '.')
                return false;
        } else if (!isalnum(ch) && strchr("!#$%&'*+/=?^_`{|}~-", ch) == NULL) {
            return false;
        }
    }
    const char *d = at + 1;
    if (*d == '\0')
        return false;
    while (*d != '\0') { /* labels: [A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])? */
        const char *start = d;
        while (isalnum((unsigned char)*d) || *d == '-')
            d++;
        size_t n = (size_t)(d - start);
        if (n == 0 || n > 63 || *start == '-' || d[-1] == '-')
            return false;
        if (*d == '.') {
            d++;
            if (*d == '\0')
                return false;
        } else if (*d != '\0') {
            return false;
        }
    }
    return true;
}

static bool check_uuid(const char *s)
{
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (s[i] == '\0')
            return false;
        if (dash ? s[i] != '-' : hexval((unsigned char)s[i]) < 0)
            return false;
    }
    return s[36] == '\0';
}

static bool check_ipv4(const char *s)
{
    for (int part = 0; part < 4; part++) {
        int n = 0, v = 0;
        while (n < 4 && isdigit((unsigned char)s[n]))
            v = v * 10 + (s[n++] - '0');
        if (n == 0 || n > 3 || v > 255 || (n > 1 && s[0] == '0'))
            return false;
        s += n;
        if (part < 3 && *s++ != '.')
            return false;
    }
    return *s == '\0';
}

static bool check_ipv6(const char *s)
{
    unsigned char buf[16];
    return strlen(s) <= 45 && inet_pton(AF_INET6, s, buf) == 1;
}

static bool check_format(enum js_format f, const char *s)
{
    switch (f) {
    case FMT_DATE:
        return strlen(s) == 10 && check_date(s);
    case FMT_DATETIME:
        return check_datetime(s);
    case FMT_TIME:
        return check_time(s);
    case FMT_EMAIL:
        return check_email(s);
    case FMT_UUID:
        return check_uuid(s);
    case FMT_IPV4:
        return check_ipv4(s);
    case FMT_IPV6:
        return check_ipv6(s);
    default:
        return true;
    }
}

static const char *format_name(enum js_format f)
{
    for (size_t k = 0; k < sizeof(format_names) / sizeof(format_names[0]); k++)
        if (format_names[k].fmt == f)
            return format_names[k].name;
    return "?";
}

/* --- the walk ---------------------------------------------------------------------------- */

static int v_node(struct vctx *v, const struct js_node *n, yajl_val x);

/* Appends a compact rendering of a JSON value (for enum/const messages); truncates. */
static void render_value(char *buf, size_t cap, yajl_val x)
{
    if (cap == 0)
        return;
    buf[0] = '\0';
    switch (x->type) {
    case yajl_t_string:
        snprintf(buf, cap, "\"%s\"", x->u.string);
        break;
    case yajl_t_number:
        snprintf(buf, cap, "%s", x->u.number.r);
        break;
    case yajl_t_true:
        snprintf(buf, cap, "true");
        break;
    case yajl_t_false:
        snprintf(buf, cap, "false");
        break;
    case yajl_t_null:
        snprintf(buf, cap, "null");
        break;
    case yajl_t_array:
        snprintf(buf, cap, "[...]");
        break;
    default:
        snprintf(buf, cap, "{...}");
    }
}

static int v_type(struct vctx *v, const struct js_node *n, yajl_val x)
{
    if (n->types == 0 || (inst_types(x) & n->types) != 0)
        return 0;
    if (v->err == NULL)
        return vfail(v, "wrong type");
    char want[96];
    size_t w = 0;
    want[0] = '\0';
    for (size_t k = 0; k < sizeof(type_names) / sizeof(type_names[0]); k++) {
        if (!(n->types & type_names[k].bit))
            continue;
        int r = snprintf(want + w, sizeof(want) - w, "%s%s", w ? " or " : "", type_names[k].name);
        if (r > 0 && (size_t)r < sizeof(want) - w)
            w += (size_t)r;
    }
    return vfail(v, "expected %s, got %s", want, inst_type_name(x));
}

static int v_enum(struct vctx *v, const struct js_node *n, yajl_val x)
{
    if (n->has_const && !json_equal(x, n->const_val, 0)) {
        char val[64];
        render_value(val, sizeof(val), n->const_val);
        return vfail(v, "must be equal to %s", val);
    }
    if (n->enum_vals == NULL)
        return 0;
    const yajl_val e = n->enum_vals;
    for (size_t i = 0; i < e->u.array.len; i++)
        if (json_equal(x, e->u.array.values[i], 0))
            return 0;
    if (v->err == NULL)
        return vfail(v, "not in enum");
    char list[256];
    size_t w = 0;
    list[0] = '\0';
    for (size_t i = 0; i < e->u.array.len && w + 8 < sizeof(list); i++) {
        char val[64];
        render_value(val, sizeof(val), e->u.array.values[i]);
        int r = snprintf(list + w, sizeof(list) - w, "%s%s", i ? ", " : "", val);
        if (r > 0)
            w = (size_t)r < sizeof(list) - w ? w + (size_t)r : sizeof(list) - 1;
    }
    return vfail(v, "must be one of %s", list);
}

static int v_number(struct vctx *v, const struct js_node *n, yajl_val x)
{
    if (n->minimum.set && num_cmp(x, &n->minimum) < 0)
        return vfail(v, "must be >= %s", n->minimum.raw);
    if (n->maximum.set && num_cmp(x, &n->maximum) > 0)
        return vfail(v, "must be <= %s", n->maximum.raw);
    if (n->ex_minimum.set && num_cmp(x, &n->ex_minimum) <= 0)
        return vfail(v, "must be > %s", n->ex_minimum.raw);
    if (n->ex_maximum.set && num_cmp(x, &n->ex_maximum) >= 0)
        return vfail(v, "must be < %s", n->ex_maximum.raw);
    if (n->multiple_of.set && !num_multiple(x, &n->multiple_of))
        return vfail(v, "must be a multiple of %s", n->multiple_of.raw);
    return 0;
}

static int v_string(struct vctx *v, const struct js_node *n, yajl_val x)
{
    const char *s = x->u.string;
    if (n->min_len >= 0 || n->max_len >= 0) {
        size_t stop = (size_t)(n->max_len >= 0 ? n->max_len : n->min_len);
        size_t len = utf8_len(s, stop);
        if (n->min_len >= 0 && len < (size_t)n->min_len)
            return vfail(v, "must be at least %ld characters long", n->min_len);
        if (n->max_len >= 0 && len > (size_t)n->max_len)
            return vfail(v, "must be at most %ld characters long", n->max_len);
    }
    if (n->format != FMT_NONE && !check_format(n->format, s))
        return vfail(v, "does not match format %s", format_name(n->format));
    if (n->pattern != NULL && !rx_match(n->pattern, s))
        return vfail(v, "does not match pattern \"%s\"", n->pattern->src);
    return 0;
}

static int v_array(struct vctx *v, const struct js_node *n, yajl_val x)
{
    size_t len = x->u.array.len;
    if (n->min_items >= 0 && len < (size_t)n->min_items)
        return vfail(v, "must have at least %ld items", n->min_items);
    if (n->max_items >= 0 && len > (size_t)n->max_items)
        return vfail(v, "must have at most %ld items", n->max_items);
    for (size_t i = 0; i < len; i++) {
        const struct js_node *sub = i < n->prefix.n ? n->prefix.v[i] : n->items;
        if (sub == NULL)
            continue;
        if (sub->bool_schema == 0 && i >= n->prefix.n)
            return vfail(v, "must have at most %zu items", n->prefix.n);
        size_t old = vpath_index(v, i);
        int rc = v_node(v, sub, x->u.array.values[i]);
        vpath_pop(v, old);
        if (rc < 0)
            return -1;
    }
    if (n->contains != NULL) {
        char *saved = v->err;
        v->err = NULL;
        size_t i;
        for (i = 0; i < len; i++)
            if (v_node(v, n->contains, x->u.array.values[i]) == 0)
                break;
        v->err = saved;
        if (i == len)
            return vfail(v, "must contain at least one item matching the contains schema");
    }
    size_t a, b;
    if (n->unique && len > 1 && !items_unique(x, &a, &b))
        return vfail(v, "items must be unique (items %zu and %zu are equal)", a, b);
    return 0;
}

static const struct js_prop *find_prop(const struct js_node *n, const char *k)
{
    size_t lo = 0, hi = n->nprops;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(k, n->props[mid].name);
        if (c == 0)
            return &n->props[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

static bool has_key(yajl_val x, const char *k)
{
    for (size_t i = 0; i < x->u.object.len; i++)
        if (strcmp(x->u.object.keys[i], k) == 0)
            return true;
    return false;
}

static int v_object(struct vctx *v, const struct js_node *n, yajl_val x)
{
    size_t len = x->u.object.len;
    for (size_t r = 0; r < n->nrequired; r++)
        if (!has_key(x, n->required[r]))
            return vfail(v, "missing required property \"%s\"", n->required[r]);
    for (size_t i = 0; i < len; i++) {
        const char *k = x->u.object.keys[i];
        yajl_val val = x->u.object.values[i];
        bool matched = false;
        const struct js_prop *p = n->nprops ? find_prop(n, k) : NULL;
        if (p != NULL) {
            matched = true;
            size_t old = vpath_key(v, k);
            int rc = v_node(v, p->node, val);
            vpath_pop(v, old);
            if (rc < 0)
                return -1;
        }
        for (size_t j = 0; j < n->npprops; j++) {
            if (!rx_match(n->pprops[j].re, k))
                continue;
            matched = true;
            size_t old = vpath_key(v, k);
            int rc = v_node(v, n->pprops[j].node, val);
            vpath_pop(v, old);
            if (rc < 0)
                return -1;
        }
        if (!matched && n->additional != NULL) {
            if (n->additional->bool_schema == 0)
                return vfail(v, "additional property \"%s\" is not allowed", k);
            size_t old = vpath_key(v, k);
            int rc = v_node(v, n->additional, val);
            vpath_pop(v, old);
            if (rc < 0)
                return -1;
        }
        if (n->property_names != NULL) {
            struct yajl_val_s name;
            memset(&name, 0, sizeof(name));
            name.type = yajl_t_string;
            name.u.string = (char *)(uintptr_t)k; /* read-only use */
            char *saved = v->err;
            v->err = NULL;
            int rc = v_node(v, n->property_names, &name);
            v->err = saved;
            if (rc < 0)
                return vfail(v, "property name \"%s\" does not match propertyNames", k);
        }
    }
    if (n->min_props >= 0 && len < (size_t)n->min_props)
        return vfail(v, "must have at least %ld properties", n->min_props);
    if (n->max_props >= 0 && len > (size_t)n->max_props)
        return vfail(v, "must have at most %ld properties", n->max_props);
    for (size_t d = 0; d < n->ndeps; d++) {
        if (!has_key(x, n->deps[d].name))
            continue;
        for (size_t r = 0; r < n->deps[d].nreq; r++)
            if (!has_key(x, n->deps[d].req[r]))
                return vfail(v, "property \"%s\" requires property \"%s\"", n->deps[d].name,
                             n->deps[d].req[r]);
    }
    return 0;
}

/* Runs sub against x without reporting; returns 0/-1. */
static int v_quiet(struct vctx *v, const struct js_node *sub, yajl_val x)
{
    char *saved = v->err;
    size_t saved_fail = v->fail_nseg;
    v->err = NULL;
    int rc = v_node(v, sub, x);
    v->err = saved;
    v->fail_nseg = saved_fail;
    return rc;
}

/* anyOf / oneOf with no match: report the branch that failed deepest in the instance. */
static int v_nomatch(struct vctx *v, const struct js_list *l, yajl_val x, const char *kw)
{
    if (v->err == NULL)
        return vfail(v, "no match");
    char best[256], cur[256];
    size_t best_depth = 0;
    best[0] = '\0';
    char *saved = v->err;
    size_t saved_len = v->errlen;
    for (size_t i = 0; i < l->n; i++) {
        v->err = cur;
        v->errlen = sizeof(cur);
        cur[0] = '\0';
        v->fail_nseg = 0;
        if (v_node(v, l->v[i], x) < 0 && (i == 0 || v->fail_nseg > best_depth)) {
            best_depth = v->fail_nseg;
            memcpy(best, cur, sizeof(best));
        }
    }
    v->err = saved;
    v->errlen = saved_len;
    if (best_depth > v->nseg) /* a branch got inside the value: its error is the useful one */
        return vfail(v, "does not match any schema in %s (closest: %s)", kw, best);
    return vfail(v, "does not match any schema in %s", kw);
}

static int v_combinators(struct vctx *v, const struct js_node *n, yajl_val x)
{
    for (size_t i = 0; i < n->all_of.n; i++)
        if (v_node(v, n->all_of.v[i], x) < 0)
            return -1;
    if (n->any_of.n > 0) {
        size_t i;
        for (i = 0; i < n->any_of.n; i++)
            if (v_quiet(v, n->any_of.v[i], x) == 0)
                break;
        if (i == n->any_of.n)
            return v_nomatch(v, &n->any_of, x, "anyOf");
    }
    if (n->one_of.n > 0) {
        size_t first = SIZE_MAX;
        for (size_t i = 0; i < n->one_of.n; i++) {
            if (v_quiet(v, n->one_of.v[i], x) != 0)
                continue;
            if (first != SIZE_MAX)
                return vfail(v, "matches more than one schema in oneOf (%zu and %zu)", first, i);
            first = i;
        }
        if (first == SIZE_MAX)
            return v_nomatch(v, &n->one_of, x, "oneOf");
    }
    if (n->not_ != NULL && v_quiet(v, n->not_, x) == 0)
        return vfail(v, "must not match the schema in not");
    if (n->if_ != NULL) {
        const struct js_node *branch = v_quiet(v, n->if_, x) == 0 ? n->then_ : n->else_;
        if (branch != NULL && v_node(v, branch, x) < 0)
            return -1;
    }
    return 0;
}

static int v_node(struct vctx *v, const struct js_node *n, yajl_val x)
{
    if (n->bool_schema == 1)
        return 0;
    if (n->bool_schema == 0)
        return vfail(v, "no value is allowed here");
    if (v->depth >= JS_MAX_DEPTH)
        return vfail(v, "value or schema nested too deeply");
    v->depth++;
    int rc = -1;
    if (v_type(v, n, x) < 0)
        goto out;
    if (n->ref != NULL && v_node(v, n->ref, x) < 0)
        goto out;
    if (v_enum(v, n, x) < 0)
        goto out;
    switch (x->type) {
    case yajl_t_number:
        if (v_number(v, n, x) < 0)
            goto out;
        break;
    case yajl_t_string:
        if (v_string(v, n, x) < 0)
            goto out;
        break;
    case yajl_t_array:
        if (v_array(v, n, x) < 0)
            goto out;
        break;
    case yajl_t_object:
        if (v_object(v, n, x) < 0)
            goto out;
        break;
    default:
        break;
    }
    if (v_combinators(v, n, x) < 0)
        goto out;
    rc = 0;
out:
    v->depth--;
    return rc;
}

int jsonschema_validate_at(const struct jsonschema *s, yajl_val instance, const char *root,
                           char *err, size_t errlen)
{
    struct vctx v;
    struct yajl_val_s empty;
    v.err = (err != NULL && errlen > 0) ? err : NULL;
    v.errlen = errlen;
    v.depth = 0;
    v.fail_nseg = 0;
    v.root = root != NULL ? root : "";
    v.nseg = 0;
    if (v.err != NULL)
        v.err[0] = '\0';
    if (instance == NULL) {
        memset(&empty, 0, sizeof(empty));
        empty.type = yajl_t_object;
        instance = &empty;
    }
    return v_node(&v, s->root, instance) < 0 ? -1 : 0;
}

int jsonschema_validate(const struct jsonschema *s, yajl_val instance, char *err, size_t errlen)
{
    return jsonschema_validate_at(s, instance, "arguments", err, errlen);
}
