/*
 * registry.c - the worker's tool table, built once at start from the category tables of
 * worker/tool.h (fixtures only when mcp.conformance_fixtures is on; entries with name == NULL
 * are terminators or empty slots and are skipped).
 *
 * Invariants: names are unique and match [A-Za-z0-9_.-]{1,128}; every tool has a description
 * and an object input_schema that parses; after registry_init the table is immutable, so
 * lookups need no locking and pointers stay valid until registry_free. tools/list, argument
 * validation, dispatch and docs/tools.md all come from this one table.
 */
#include "registry.h"

#include "json.h"
#include "jsonschema.h"

#include <stdlib.h>
#include <string.h>

static struct jsonschema *compile(const char *text, char *err, size_t errlen)
{
    return jsonschema_compile(text, err, errlen);
}

static void schema_free(struct jsonschema *s)
{
    jsonschema_free(s);
}

static struct registry_tool *T;
static size_t NT;

static bool name_ok(const char *n)
{
    size_t len = strlen(n);
    if (len == 0 || len > 128)
        return false;
    for (const char *p = n; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}

static int add_table(const struct tool_def *tab, size_t n, bool fixtures, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        const struct tool_def *d = &tab[i];
        if (d->name == NULL)
            continue;
        if (d->fixture && !fixtures)
            continue;
        if (!name_ok(d->name)) {
            snprintf(err, errlen, "tool name \"%s\" is invalid", d->name);
            return -1;
        }
        if (registry_find(d->name)) {
            snprintf(err, errlen, "tool \"%s\" is defined twice", d->name);
            return -1;
        }
        if (d->description == NULL || d->description[0] == '\0' || d->input_schema == NULL ||
            (d->handler == NULL && d->sql == NULL)) {
            snprintf(err, errlen, "tool \"%s\" lacks a description, input schema or handler",
                     d->name);
            return -1;
        }
        char perr[200];
        yajl_val v =
            json_parse(d->input_schema, strlen(d->input_schema), 64, 1 << 20, perr, sizeof perr);
        bool obj = v && v->type == yajl_t_object;
        yajl_tree_free(v);
        if (!obj) {
            snprintf(err, errlen, "tool \"%s\": input_schema is not a JSON object", d->name);
            return -1;
        }
        struct registry_tool *t = realloc(T, sizeof *T * (NT + 1));
        if (t == NULL)
            abort();
        T = t;
        memset(&T[NT], 0, sizeof T[NT]);
        T[NT].def = d;
        T[NT].input = compile(d->input_schema, perr, sizeof perr);
        if (T[NT].input == NULL) {
            snprintf(err, errlen, "tool \"%s\": input_schema: %s", d->name, perr);
            return -1;
        }
        if (d->output_schema) {
            T[NT].output = compile(d->output_schema, perr, sizeof perr);
            if (T[NT].output == NULL) {
                schema_free(T[NT].input);
                snprintf(err, errlen, "tool \"%s\": output_schema: %s", d->name, perr);
                return -1;
            }
        }
        NT++;
    }
    return 0;
}

int registry_init(bool fixtures, char *err, size_t errlen)
{
    registry_free();
    if (add_table(tools_fixtures, tools_fixtures_n, fixtures, err, errlen) < 0 ||
        add_table(tools_core, tools_core_n, fixtures, err, errlen) < 0 ||
        add_table(tools_health, tools_health_n, fixtures, err, errlen) < 0 ||
        add_table(tools_ingest, tools_ingest_n, fixtures, err, errlen) < 0 ||
        add_table(tools_gdpr, tools_gdpr_n, fixtures, err, errlen) < 0) {
        registry_free();
        return -1;
    }
    return 0;
}

void registry_free(void)
{
    for (size_t i = 0; i < NT; i++) {
        schema_free(T[i].input);
        schema_free(T[i].output);
    }
    free(T);
    T = NULL;
    NT = 0;
}

size_t registry_count(void)
{
    return NT;
}

const struct registry_tool *registry_at(size_t i)
{
    return i < NT ? &T[i] : NULL;
}

const struct registry_tool *registry_find(const char *name)
{
    if (name == NULL)
        return NULL;
    for (size_t i = 0; i < NT; i++)
        if (strcmp(T[i].def->name, name) == 0)
            return &T[i];
    return NULL;
}

/* ---- Markdown reference ---- */

static void md_text(FILE *f, const char *s)
{
    /* Keep table cells on one line. */
    for (; s && *s; s++) {
        if (*s == '\n')
            fputc(' ', f);
        else if (*s == '|')
            fputs("\\|", f);
        else
            fputc(*s, f);
    }
}

static const char *type_of(yajl_val prop, char *buf, size_t len)
{
    yajl_val t = json_get(prop, "type");
    if (t && t->type == yajl_t_string) {
        yajl_val items = json_get_obj(prop, "items");
        const char *it = items ? json_get_str(items, "type") : NULL;
        if (strcmp(t->u.string, "array") == 0 && it)
            snprintf(buf, len, "array of %s", it);
        else
            snprintf(buf, len, "%s", t->u.string);
        return buf;
    }
    if (t && t->type == yajl_t_array) {
        size_t o = 0;
        buf[0] = '\0';
        for (size_t i = 0; i < t->u.array.len && o < len; i++)
            if (t->u.array.values[i]->type == yajl_t_string)
                o += (size_t)snprintf(buf + o, len - o, "%s%s", i ? " or " : "",
                                      t->u.array.values[i]->u.string);
        return buf;
    }
    if (json_get(prop, "$ref"))
        return "object";
    yajl_val en = json_get_arr(prop, "enum");
    yajl_val c = json_get(prop, "const");
    yajl_val sample = c ? c : (en && en->u.array.len ? en->u.array.values[0] : NULL);
    if (sample) {
        switch (sample->type) {
        case yajl_t_string:
            return "string";
        case yajl_t_number:
            return "number";
        case yajl_t_true:
        case yajl_t_false:
            return "boolean";
        default:
            break;
        }
    }
    if (json_get(prop, "oneOf") || json_get(prop, "anyOf"))
        return "one of several shapes";
    return "any";
}

static void md_schema_table(FILE *f, const char *schema, bool with_required)
{
    char err[128];
    yajl_val s = json_parse(schema, strlen(schema), 64, 1 << 20, err, sizeof err);
    yajl_val props = json_get_obj(s, "properties");
    yajl_val req = json_get_arr(s, "required");
    if (props == NULL || props->u.object.len == 0) {
        fputs("_none_\n\n", f);
        yajl_tree_free(s);
        return;
    }
    if (with_required)
        fputs("| name | type | required | default | description |\n|---|---|---|---|---|\n", f);
    else
        fputs("| field | type | description |\n|---|---|---|\n", f);
    for (size_t i = 0; i < props->u.object.len; i++) {
        const char *name = props->u.object.keys[i];
        yajl_val p = props->u.object.values[i];
        char tb[96];
        bool required = false;
        for (size_t j = 0; req && j < req->u.array.len; j++)
            if (req->u.array.values[j]->type == yajl_t_string &&
                strcmp(req->u.array.values[j]->u.string, name) == 0)
                required = true;
        fprintf(f, "| `%s` | %s |", name, type_of(p, tb, sizeof tb));
        if (with_required) {
            fprintf(f, " %s | ", required ? "yes" : "no");
            yajl_val d = json_get(p, "default");
            if (d) {
                struct jbuf b;
                jbuf_init(&b);
                json_val(&b, d);
                fputc('`', f);
                md_text(f, jbuf_cstr(&b));
                fputc('`', f);
                jbuf_free(&b);
            }
            fputs(" |", f);
        }
        fputc(' ', f);
        md_text(f, json_get_str(p, "description"));
        yajl_val cv = json_get(p, "const");
        if (cv) {
            struct jbuf b;
            jbuf_init(&b);
            json_val(&b, cv);
            fputs(" Always `", f);
            md_text(f, jbuf_cstr(&b));
            fputs("`.", f);
            jbuf_free(&b);
        }
        yajl_val en = json_get_arr(p, "enum");
        if (en) {
            fputs(" One of:", f);
            for (size_t j = 0; j < en->u.array.len; j++) {
                struct jbuf b;
                jbuf_init(&b);
                json_val(&b, en->u.array.values[j]);
                fprintf(f, "%s `", j ? "," : "");
                md_text(f, jbuf_cstr(&b));
                fputc('`', f);
                jbuf_free(&b);
            }
            fputc('.', f);
        }
        fputs(" |\n", f);
    }
    fputc('\n', f);
    yajl_tree_free(s);
}

int registry_print_markdown(FILE *f, const char *src_root)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/docs/tools-preamble.md", src_root ? src_root : ".");
    FILE *pre = fopen(path, "r");
    if (pre) {
        char buf[4096];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, pre)) > 0)
            fwrite(buf, 1, n, f);
        fclose(pre);
        fputc('\n', f);
    } else {
        fputs("# Tool reference\n\nGenerated by `csmcp-worker --tools-markdown` from the tool "
              "registry; do not edit by hand.\n\n",
              f);
    }
    static const char *const scopes[] = {"read", "write", "admin"};
    fputs("## Index\n\n| tool | scope | read-only | title |\n|---|---|---|---|\n", f);
    for (size_t i = 0; i < NT; i++) {
        const struct tool_def *d = T[i].def;
        if (d->fixture)
            continue;
        fprintf(f, "| [`%s`](#%s) | %s | %s | ", d->name, d->name,
                scopes[d->scope <= TOOL_SCOPE_ADMIN ? d->scope : 0],
                d->hints & TOOL_HINT_READONLY ? "yes" : "no");
        md_text(f, d->title ? d->title : "");
        fputs(" |\n", f);
    }
    fputc('\n', f);
    size_t listed = 0;
    for (size_t i = 0; i < NT; i++) {
        const struct tool_def *d = T[i].def;
        if (d->fixture)
            continue;
        listed++;
        fprintf(f, "<a id=\"%s\"></a>\n\n## `%s`%s", d->name, d->name, d->title ? " — " : "");
        if (d->title)
            md_text(f, d->title);
        fputs("\n\n", f);
        md_text(f, d->description);
        fprintf(f, "\n\n- Scope: `%s`\n", scopes[d->scope <= TOOL_SCOPE_ADMIN ? d->scope : 0]);
        fprintf(f,
                "- Annotations: readOnlyHint=%s, destructiveHint=%s, idempotentHint=%s, "
                "openWorldHint=%s\n\n",
                d->hints & TOOL_HINT_READONLY ? "true" : "false",
                d->hints & TOOL_HINT_DESTRUCTIVE ? "true" : "false",
                d->hints & TOOL_HINT_IDEMPOTENT ? "true" : "false",
                d->hints & TOOL_HINT_OPENWORLD ? "true" : "false");
        fputs("**Parameters**\n\n", f);
        md_schema_table(f, d->input_schema, true);
        if (d->output_schema) {
            fputs("**Output (structuredContent)**\n\n", f);
            md_schema_table(f, d->output_schema, false);
        }
    }
    fprintf(f, "_%zu tools._\n", listed);
    return 0;
}
