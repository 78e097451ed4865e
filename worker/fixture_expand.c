/*
 * fixture_expand.c - the generic read/get of the declarative conformance fixtures
 * (worker/fixtures.h): a resource template's one {variable} and a prompt's {arguments} are
 * substituted into the text declared in worker/tools/fixtures/resources.json and prompts.json,
 * JSON-escaped where the text is JSON. Called through the thunks gen_registry.py writes into
 * tools_gen.c; depends on nothing but the JSON helpers (no cycle with the registry or the MCP
 * server).
 */
#include "fixtures.h"

#include "json.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Appends text with every "{name}" replaced by the JSON-escaped value of name in vars (a JSON
 * object of strings), or by value for the one variable var. Returns -1 with the name in err
 * when a variable has no string value. */
static int substitute(struct jbuf *out, const char *text, yajl_val vars, const char *var,
                      const char *value, bool escape, char *err, size_t errlen)
{
    for (const char *p = text; *p;) {
        const char *close = *p == '{' ? strchr(p + 1, '}') : NULL;
        size_t n = close ? (size_t)(close - p - 1) : 0;
        bool ident = n > 0 && n < 64;
        for (size_t i = 0; ident && i < n; i++) {
            char c = p[1 + i];
            ident = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_';
        }
        if (!ident) {
            jbuf_putc(out, *p++);
            continue;
        }
        char name[64];
        memcpy(name, p + 1, n);
        name[n] = '\0';
        const char *v = var && strcmp(name, var) == 0 ? value : json_get_str(vars, name);
        if (v == NULL) {
            snprintf(err, errlen, "argument %s (string) is required", name);
            return -1;
        }
        if (escape) {
            /* the value lands inside a JSON string: escape it, without the quotes */
            struct jbuf q;
            jbuf_init(&q);
            json_str(&q, v);
            jbuf_append(out, q.p + 1, q.len - 2);
            jbuf_free(&q);
        } else {
            jbuf_puts(out, v);
        }
        p = close + 1;
    }
    return 0;
}

int fixture_template_expand(const struct fixture_template *t, const char *uri, struct jbuf *out)
{
    /* uri_template = prefix "{var}" suffix; the value is 1..128 characters without '/' */
    const char *open = strchr(t->uri_template, '{');
    const char *close = open ? strchr(open, '}') : NULL;
    if (close == NULL)
        return -1;
    size_t plen = (size_t)(open - t->uri_template), ulen = strlen(uri);
    const char *suffix = close + 1;
    size_t slen = strlen(suffix);
    if (ulen <= plen + slen || strncmp(uri, t->uri_template, plen) != 0 ||
        strcmp(uri + ulen - slen, suffix) != 0)
        return -1;
    size_t vlen = ulen - plen - slen;
    if (vlen > 128 || memchr(uri + plen, '/', vlen))
        return -1;
    char var[64], value[130], err[128];
    snprintf(var, sizeof var, "%.*s", (int)(close - open - 1), open + 1);
    snprintf(value, sizeof value, "%.*s", (int)vlen, uri + plen);
    struct jbuf text;
    jbuf_init(&text);
    bool json = t->mime && strcmp(t->mime, "application/json") == 0;
    if (substitute(&text, t->text, NULL, var, value, json, err, sizeof err) < 0) {
        jbuf_free(&text);
        return -1;
    }
    jbuf_puts(out, "[{\"uri\":");
    json_str(out, uri);
    if (t->mime) {
        jbuf_puts(out, ",\"mimeType\":");
        json_str(out, t->mime);
    }
    jbuf_puts(out, ",\"text\":");
    json_str(out, jbuf_cstr(&text));
    jbuf_puts(out, "}]");
    jbuf_free(&text);
    return 0;
}

int fixture_prompt_expand(const struct fixture_prompt *p, yajl_val args, struct jbuf *out,
                          char *err, size_t errlen)
{
    jbuf_puts(out, "{\"messages\":");
    if (substitute(out, p->messages_json, args, NULL, NULL, true, err, errlen) < 0)
        return -1;
    jbuf_putc(out, '}');
    return 0;
}
