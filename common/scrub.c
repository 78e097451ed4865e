/*
 * scrub.c - secret masking for logs (scrub_text) and audit records (scrub_json).
 *
 * Invariants: output never contains a byte of a detected secret; scrub_text never writes past
 * cap and always leaves a NUL-terminated string; scrub_json walks at most SCRUB_MAX_DEPTH
 * levels (bounded recursion on client-shaped input). Over-masking is acceptable, leaking is not.
 */
#include "scrub.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "json.h"
#include "log.h"

#define SCRUB_MAX_DEPTH   64
#define SCRUB_PARSE_DEPTH 1000

/* Normalised (lower case, no '-' '_' '.') suffixes that make a key sensitive. */
static const char *const sensitive_suffix[] = {
    "password",   "passwd",        "passphrase", "secret",      "token",
    "apikey",     "authorization", "credential", "credentials", "cookie",
    "privatekey", "accesskey",     "secretkey",  "pwd",         NULL,
};

bool scrub_key_is_sensitive(const char *key, size_t len)
{
    char norm[64];
    size_t n = 0;

    for (size_t i = 0; i < len && n < sizeof(norm) - 1; i++) {
        unsigned char c = (unsigned char)key[i];
        if (c == '-' || c == '_' || c == '.' || c == ' ')
            continue;
        norm[n++] = (char)tolower(c);
    }
    norm[n] = '\0';
    if (n == 0 || len > 200)
        return false;
    for (int i = 0; sensitive_suffix[i]; i++) {
        size_t sl = strlen(sensitive_suffix[i]);
        if (n >= sl && memcmp(norm + n - sl, sensitive_suffix[i], sl) == 0)
            return true;
    }
    return false;
}

static bool is_tok(unsigned char c)
{
    return isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '+' || c == '/' ||
           c == '=';
}

static bool is_b64u(unsigned char c)
{
    return isalnum(c) || c == '-' || c == '_';
}

/* Length of a JWT-shaped token at s (three dot-separated base64url parts, first "eyJ"), or 0. */
static size_t jwt_len(const char *s)
{
    size_t i = 0;
    int dots = 0;

    if (strncmp(s, "eyJ", 3) != 0)
        return 0;
    for (;;) {
        size_t start = i;
        while (is_b64u((unsigned char)s[i]))
            i++;
        if (i - start < (dots < 2 ? 4u : 0u))
            return 0;
        if (s[i] == '.' && dots < 2) {
            dots++;
            i++;
            continue;
        }
        break;
    }
    return dots == 2 ? i : 0;
}

struct out {
    char *buf;
    size_t cap, n;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->n >= o->cap)
        return;
    if (n > o->cap - o->n)
        n = o->cap - o->n;
    memcpy(o->buf + o->n, s, n);
    o->n += n;
}

static bool word_start(const char *text, const char *p)
{
    return p == text || !isalnum((unsigned char)p[-1]);
}

/*
 * Tries every rule at p. On a match writes the masked form to o (when o is not NULL) and
 * returns the number of input bytes consumed; 0 when nothing matches here.
 */
static size_t match_at(const char *text, const char *p, struct out *o)
{
    size_t n;

    /* Bearer <token> */
    if (word_start(text, p) && strncasecmp(p, "bearer", 6) == 0 && (p[6] == ' ' || p[6] == '\t')) {
        size_t i = 6;
        while (p[i] == ' ' || p[i] == '\t')
            i++;
        size_t j = i;
        while (is_tok((unsigned char)p[j]))
            j++;
        if (j > i) {
            if (o) {
                put(o, p, i);
                put(o, SCRUB_MASK, strlen(SCRUB_MASK));
            }
            return j;
        }
    }
    /* JWT */
    if (word_start(text, p) && (n = jwt_len(p)) > 0) {
        if (o)
            put(o, SCRUB_MASK, strlen(SCRUB_MASK));
        return n;
    }
    /* csmcp API key: csk_<id>_<secret> */
    if (word_start(text, p) && strncmp(p, "csk_", 4) == 0) {
        size_t j = 4;
        while (is_b64u((unsigned char)p[j]))
            j++;
        if (j >= 12) {
            if (o) {
                put(o, "csk_", 4);
                put(o, SCRUB_MASK, strlen(SCRUB_MASK));
            }
            return j;
        }
    }
    /* scheme://user:password@ */
    if (strncmp(p, "://", 3) == 0) {
        size_t i = 3;
        while (p[i] && p[i] != ':' && p[i] != '@' && p[i] != '/' && !isspace((unsigned char)p[i]))
            i++;
        if (p[i] == ':') {
            size_t j = i + 1;
            while (p[j] && p[j] != '@' && p[j] != '/' && !isspace((unsigned char)p[j]))
                j++;
            if (p[j] == '@' && j > i + 1) {
                if (o) {
                    put(o, p, i + 1);
                    put(o, SCRUB_MASK, strlen(SCRUB_MASK));
                }
                return j;
            }
        }
    }
    /* sensitive_key [quote] [spaces] (= | :) [spaces] [quote] value */
    if (word_start(text, p) && (isalpha((unsigned char)*p) || *p == '_')) {
        size_t k = 0;
        while (isalnum((unsigned char)p[k]) || p[k] == '_' || p[k] == '-' || p[k] == '.')
            k++;
        if (k > 0 && scrub_key_is_sensitive(p, k)) {
            size_t i = k;
            if (p[i] == '"' || p[i] == '\'')
                i++;
            while (p[i] == ' ')
                i++;
            if (p[i] == '=' || p[i] == ':') {
                i++;
                while (p[i] == ' ')
                    i++;
                char q = 0;
                if (p[i] == '"' || p[i] == '\'')
                    q = p[i++];
                /* "authorization: Basic xyz": the scheme word is not the secret, the rest is */
                size_t j = i;
                if (q) {
                    while (p[j] && p[j] != q) {
                        if (p[j] == '\\' && p[j + 1])
                            j++;
                        j++;
                    }
                } else {
                    while (p[j] && !isspace((unsigned char)p[j]) && p[j] != ',' && p[j] != ';' &&
                           p[j] != '&' && p[j] != '}' && p[j] != ')')
                        j++;
                    if (j - i >= 5 && (strncasecmp(p + i, "basic", j - i) == 0 ||
                                       strncasecmp(p + i, "bearer", j - i) == 0)) {
                        while (p[j] == ' ')
                            j++;
                        while (p[j] && !isspace((unsigned char)p[j]) && p[j] != ',' &&
                               p[j] != ';' && p[j] != '&')
                            j++;
                    }
                }
                if (j > i) {
                    if (o) {
                        put(o, p, i);
                        put(o, SCRUB_MASK, strlen(SCRUB_MASK));
                    }
                    return j;
                }
            }
        }
        /* Skip the rest of a non-matching word so its tail is not re-matched mid-word. */
        return 0;
    }
    return 0;
}

bool scrub_text_has_secret(const char *text)
{
    for (const char *p = text; *p; p++)
        if (match_at(text, p, NULL) > 0)
            return true;
    return false;
}

/* Scrubs src into o; returns true if anything was masked. */
static bool scrub_into(const char *src, struct out *o)
{
    bool hit = false;
    const char *p = src;

    while (*p) {
        size_t m = match_at(src, p, o);
        if (m > 0) {
            hit = true;
            p += m;
            continue;
        }
        put(o, p, 1);
        p++;
    }
    return hit;
}

void scrub_text(char *msg, size_t cap)
{
    char *tmp;
    struct out o;

    if (cap == 0 || !scrub_text_has_secret(msg))
        return;
    tmp = malloc(cap);
    if (tmp == NULL) {
        /* Cannot build the masked copy: drop the message rather than leak it. */
        snprintf(msg, cap, "[message withheld: scrubber out of memory]");
        return;
    }
    o.buf = tmp;
    o.cap = cap - 1;
    o.n = 0;
    scrub_into(msg, &o);
    tmp[o.n] = '\0';
    memcpy(msg, tmp, o.n + 1);
    free(tmp);
}

static int gen_value(yajl_gen g, yajl_val v, int depth);

static int gen_string(yajl_gen g, const char *s)
{
    size_t len = strlen(s);
    if (!scrub_text_has_secret(s))
        return yajl_gen_string(g, (const unsigned char *)s, len) == yajl_gen_status_ok ? 0 : -1;
    /* the mask can be longer than what it replaces */
    size_t cap = len * 2 + 64;
    char *tmp = malloc(cap);
    struct out o = {tmp, cap - 1, 0};
    int rc;
    if (tmp == NULL)
        return -1;
    scrub_into(s, &o);
    rc = yajl_gen_string(g, (const unsigned char *)tmp, o.n) == yajl_gen_status_ok ? 0 : -1;
    free(tmp);
    return rc;
}

static int gen_mask(yajl_gen g, const char *mask)
{
    return yajl_gen_string(g, (const unsigned char *)mask, strlen(mask)) == yajl_gen_status_ok ? 0
                                                                                               : -1;
}

static int gen_value(yajl_gen g, yajl_val v, int depth)
{
    if (depth > SCRUB_MAX_DEPTH)
        return gen_mask(g, "[TRUNCATED]");
    if (v == NULL)
        return yajl_gen_null(g) == yajl_gen_status_ok ? 0 : -1;
    switch (v->type) {
    case yajl_t_string:
        return gen_string(g, v->u.string);
    case yajl_t_number:
        return yajl_gen_number(g, v->u.number.r, strlen(v->u.number.r)) == yajl_gen_status_ok ? 0
                                                                                              : -1;
    case yajl_t_true:
    case yajl_t_false:
        return yajl_gen_bool(g, v->type == yajl_t_true) == yajl_gen_status_ok ? 0 : -1;
    case yajl_t_null:
        return yajl_gen_null(g) == yajl_gen_status_ok ? 0 : -1;
    case yajl_t_object:
        if (yajl_gen_map_open(g) != yajl_gen_status_ok)
            return -1;
        for (size_t i = 0; i < v->u.object.len; i++) {
            const char *k = v->u.object.keys[i];
            if (gen_string(g, k) < 0)
                return -1;
            if (scrub_key_is_sensitive(k, strlen(k))) {
                yajl_val child = v->u.object.values[i];
                /* keep null/false visible (absence of a secret is not a secret) */
                if (child == NULL || child->type == yajl_t_null)
                    yajl_gen_null(g);
                else if (gen_mask(g, SCRUB_MASK) < 0)
                    return -1;
                continue;
            }
            if (gen_value(g, v->u.object.values[i], depth + 1) < 0)
                return -1;
        }
        return yajl_gen_map_close(g) == yajl_gen_status_ok ? 0 : -1;
    case yajl_t_array:
        if (yajl_gen_array_open(g) != yajl_gen_status_ok)
            return -1;
        for (size_t i = 0; i < v->u.array.len; i++)
            if (gen_value(g, v->u.array.values[i], depth + 1) < 0)
                return -1;
        return yajl_gen_array_close(g) == yajl_gen_status_ok ? 0 : -1;
    default:
        return yajl_gen_null(g) == yajl_gen_status_ok ? 0 : -1;
    }
}

char *scrub_json(const char *json, size_t len)
{
    char *res = NULL, errbuf[160];
    yajl_val tree = NULL;
    yajl_gen g = NULL;
    const unsigned char *buf;
    size_t blen;

    /* json_parse: strict UTF-8 (PostgreSQL's jsonb refuses what yajl alone would pass through:
     * surrogates, overlong forms) and a bounded depth (deeper levels print as [TRUNCATED]);
     * U+0000 cuts the string (the caller refused the request already). */
    tree = json_parse_ex(json, len, SCRUB_PARSE_DEPTH, SIZE_MAX, JSON_KEEP_NUL, NULL, errbuf,
                         sizeof(errbuf));
    if (tree == NULL)
        return strdup(SCRUB_UNPARSEABLE);
    g = yajl_gen_alloc(NULL);
    if (g == NULL)
        goto fail;
    yajl_gen_config(g, yajl_gen_validate_utf8, 0);
    if (gen_value(g, tree, 0) < 0)
        goto fail;
    if (yajl_gen_get_buf(g, &buf, &blen) != yajl_gen_status_ok)
        goto fail;
    res = malloc(blen + 1);
    if (res) {
        memcpy(res, buf, blen);
        res[blen] = '\0';
    }
    yajl_gen_free(g);
    yajl_tree_free(tree);
    return res;
fail:
    if (g)
        yajl_gen_free(g);
    yajl_tree_free(tree);
    return strdup(SCRUB_UNPARSEABLE);
}

void scrub_install_log(void)
{
    log_set_scrubber(scrub_text);
}
