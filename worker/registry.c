/*
 * registry.c - the worker's tool table, built once at start from tool_defs[] (generated from
 * worker/tools/<category>/<name>.json by worker/tools/gen_registry.py; fixtures only when
 * mcp.conformance_fixtures is on), plus the scope and rate-class rules of a call, the Markdown
 * reference and the expansion of the declarative fixture resources and prompts.
 *
 * Invariants: names are unique and match [A-Za-z0-9_.-]{1,128}; every tool has a description
 * and an object input_schema that compiles; after registry_init the table is immutable, so
 * lookups need no locking and pointers stay valid until registry_free. tools/list, argument
 * validation, dispatch and docs/tools.md all come from this one table. The generator checks
 * all of this at build time already; registry_init checks again (and compiles the schemas) so
 * a bad definition stops the worker at start with the file named, never at the first call.
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
static unsigned needs_mask(const struct tool_def *d);
static size_t NT;

static const char *src(const struct tool_def *d)
{
    return d->source ? d->source : "(built-in)";
}

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
            snprintf(err, errlen, "%s: tool name \"%s\" is invalid", src(d), d->name);
            return -1;
        }
        if (registry_find(d->name)) {
            snprintf(err, errlen, "%s: tool \"%s\" is defined twice", src(d), d->name);
            return -1;
        }
        if (d->description == NULL || d->description[0] == '\0' || d->input_schema == NULL ||
            d->handler == NULL) {
            snprintf(err, errlen, "%s: tool \"%s\" lacks a description, input schema or handler",
                     src(d), d->name);
            return -1;
        }
        char perr[200];
        yajl_val v =
            json_parse(d->input_schema, strlen(d->input_schema), 64, 1 << 20, perr, sizeof perr);
        bool obj = v && v->type == yajl_t_object;
        yajl_tree_free(v);
        if (!obj) {
            snprintf(err, errlen, "%s: tool \"%s\": input_schema is not a JSON object", src(d),
                     d->name);
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
            snprintf(err, errlen, "%s: tool \"%s\": inputSchema: %s", src(d), d->name, perr);
            return -1;
        }
        if (d->output_schema) {
            T[NT].output = compile(d->output_schema, perr, sizeof perr);
            if (T[NT].output == NULL) {
                schema_free(T[NT].input);
                snprintf(err, errlen, "%s: tool \"%s\": outputSchema: %s", src(d), d->name, perr);
                return -1;
            }
        }
        T[NT].needs = needs_mask(d);
        NT++;
    }
    return 0;
}

int registry_init(bool fixtures, char *err, size_t errlen)
{
    registry_free();
    if (add_table(tool_defs, tool_defs_n, fixtures, err, errlen) < 0) {
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

enum tool_scope registry_required_scope(const struct tool_def *d, yajl_val args)
{
    enum tool_scope need = d->scope;
    const char *action = d->n_action_scopes ? json_get_str(args, "action") : NULL;
    for (size_t i = 0; action && i < d->n_action_scopes; i++)
        if (strcmp(d->action_scopes[i].action, action) == 0) {
            need = d->action_scopes[i].scope;
            break;
        }
    for (size_t i = 0; i < d->n_argument_scopes; i++) {
        yajl_val v = json_get(args, d->argument_scopes[i].action);
        if (v != NULL && !YAJL_IS_NULL(v) && d->argument_scopes[i].scope > need)
            need = d->argument_scopes[i].scope;
    }
    return need;
}

enum tool_rate registry_rate_class(const struct tool_def *d, yajl_val args)
{
    if (d->rate_class != TOOL_RATE_AUTO)
        return d->rate_class;
    return registry_required_scope(d, args) == TOOL_SCOPE_READ ? TOOL_RATE_READ : TOOL_RATE_WRITE;
}

const char *registry_scope_name(enum tool_scope s)
{
    switch (s) {
    case TOOL_SCOPE_READ:
        return "read";
    case TOOL_SCOPE_WRITE:
        return "write";
    case TOOL_SCOPE_ADMIN:
        return "admin";
    }
    return "admin";
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

/* The scope a call needs in docs/tools.md, by action when action_scopes are declared, e.g.
 * "- Scope: by `action`: `list` read; `create`, `update` write" (an action of the enum that
 * action_scopes does not list needs the tool's scope). */
static void md_scope(FILE *f, const struct tool_def *d)
{
    if (d->n_action_scopes == 0) {
        fprintf(f, "- Scope: `%s`", registry_scope_name(d->scope));
        for (size_t i = 0; i < d->n_argument_scopes; i++)
            fprintf(f, "; with `%s`: `%s`", d->argument_scopes[i].action,
                    registry_scope_name(d->argument_scopes[i].scope));
        if (d->replica_ok)
            fputs("; may read from the replica (`database.read_url`) within "
                  "`database.max_replica_lag`",
                  f);
        fputc('\n', f);
        return;
    }
    char err[128];
    yajl_val s = json_parse(d->input_schema, strlen(d->input_schema), 64, 1 << 20, err, sizeof err);
    yajl_val en = json_get_arr(json_get_obj(json_get_obj(s, "properties"), "action"), "enum");
    fputs("- Scope: by `action`:", f);
    bool first_scope = true;
    for (int k = TOOL_SCOPE_READ; k <= TOOL_SCOPE_ADMIN; k++) {
        size_t n = 0;
        for (size_t i = 0; en && i < en->u.array.len; i++) {
            const char *a =
                YAJL_IS_STRING(en->u.array.values[i]) ? en->u.array.values[i]->u.string : NULL;
            if (a == NULL)
                continue;
            enum tool_scope need = d->scope;
            for (size_t j = 0; j < d->n_action_scopes; j++)
                if (strcmp(d->action_scopes[j].action, a) == 0)
                    need = d->action_scopes[j].scope;
            if ((int)need != k)
                continue;
            fprintf(f, "%s`%s`", n ? ", " : first_scope ? " " : "; ", a);
            n++;
        }
        if (n) {
            fprintf(f, " %s", registry_scope_name((enum tool_scope)k));
            first_scope = false;
        }
    }
    fputc('\n', f);
    yajl_tree_free(s);
}

/* The scopes calls of d can need, as bits 1 << enum tool_scope: that of every value of the action
 * enum (per action_scopes), and the tool's own when action may be omitted or has no enum. */
static unsigned needs_mask(const struct tool_def *d)
{
    unsigned mask = 0;
    for (size_t i = 0; i < d->n_argument_scopes; i++)
        mask |= 1u << d->argument_scopes[i].scope;
    if (d->n_action_scopes == 0)
        return mask | 1u << d->scope;
    char err[128];
    yajl_val s = json_parse(d->input_schema, strlen(d->input_schema), 64, 1 << 20, err, sizeof err);
    yajl_val en = json_get_arr(json_get_obj(json_get_obj(s, "properties"), "action"), "enum");
    yajl_val req = json_get_arr(s, "required");
    bool required = false;
    for (size_t i = 0; req && i < req->u.array.len; i++)
        required |= YAJL_IS_STRING(req->u.array.values[i]) &&
                    strcmp(req->u.array.values[i]->u.string, "action") == 0;
    if (!required || en == NULL)
        mask |= 1u << d->scope;
    for (size_t i = 0; en && i < en->u.array.len; i++) {
        yajl_val a = en->u.array.values[i];
        enum tool_scope need = d->scope;
        for (size_t j = 0; YAJL_IS_STRING(a) && j < d->n_action_scopes; j++)
            if (strcmp(d->action_scopes[j].action, a->u.string) == 0)
                need = d->action_scopes[j].scope;
        mask |= 1u << need;
    }
    yajl_tree_free(s);
    return mask;
}

/* Who sees the tool in tools/list, and what mcp.read_only leaves of it. */
static void md_visibility(FILE *f, const struct tool_def *d)
{
    unsigned mask = needs_mask(d);
    if (mask == (1u << TOOL_SCOPE_READ))
        fputs("- Listed to every principal with a scope; served with `mcp.read_only = true`\n", f);
    else if (mask & (1u << TOOL_SCOPE_READ))
        fputs("- Listed to every principal with a scope; with `mcp.read_only = true` only its read "
              "actions are served (the others are refused before they run)\n",
              f);
    else
        fprintf(f,
                "- Listed only to principals with the `%s` scope%s; hidden and refused with "
                "`mcp.read_only = true`\n",
                registry_scope_name((mask & (1u << TOOL_SCOPE_WRITE)) ? TOOL_SCOPE_WRITE
                                                                      : TOOL_SCOPE_ADMIN),
                (mask & (1u << TOOL_SCOPE_WRITE)) ? " (or `admin`)" : "");
}

/* "read", or for a tool with action_scopes the scopes its calls can need, e.g. "read/write". */
static const char *scope_summary(const struct tool_def *d, char *buf, size_t len)
{
    unsigned mask = needs_mask(d);
    size_t o = 0;
    buf[0] = '\0';
    for (int k = TOOL_SCOPE_READ; k <= TOOL_SCOPE_ADMIN && o < len; k++)
        if (mask & (1u << k))
            o += (size_t)snprintf(buf + o, len - o, "%s%s", o ? "/" : "",
                                  registry_scope_name((enum tool_scope)k));
    return buf;
}

int registry_print_markdown(FILE *f, const char *src_root)
{
    char sbuf[32];
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
    fputs("## Index\n\n| tool | category | scope | read-only | title |\n|---|---|---|---|---|\n",
          f);
    for (size_t i = 0; i < NT; i++) {
        const struct tool_def *d = T[i].def;
        if (d->fixture)
            continue;
        fprintf(f, "| [`%s`](#%s) | %s | %s | %s | ", d->name, d->name,
                d->category ? d->category : "", scope_summary(d, sbuf, sizeof sbuf),
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
        fputs("\n\n", f);
        md_scope(f, d);
        md_visibility(f, d);
        if (d->rate_class != TOOL_RATE_AUTO)
            fprintf(f, "- Rate-limit class: `%s`\n",
                    d->rate_class == TOOL_RATE_READ ? "read" : "write");
        fprintf(f,
                "- Annotations: readOnlyHint=%s, destructiveHint=%s, idempotentHint=%s, "
                "openWorldHint=%s\n",
                d->hints & TOOL_HINT_READONLY ? "true" : "false",
                d->hints & TOOL_HINT_DESTRUCTIVE ? "true" : "false",
                d->hints & TOOL_HINT_IDEMPOTENT ? "true" : "false",
                d->hints & TOOL_HINT_OPENWORLD ? "true" : "false");
        if (d->source)
            fprintf(f, "- Definition: `%s`\n", d->source);
        fputc('\n', f);
        if (d->n_rules) {
            fputs("**Rules**\n\n", f);
            for (size_t j = 0; j < d->n_rules; j++)
                fprintf(f, "- %s\n", d->rules[j]);
            fputc('\n', f);
        }
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
