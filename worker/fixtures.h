/*
 * fixtures.h - the conformance suite's resources, resource templates and prompts (the fixture
 * tools are the "fixture": true entries of tool_defs[], worker/tool.h). Served only with
 * mcp.conformance_fixtures.
 *
 * The tables are declarative: worker/tools/fixtures/resources.json and prompts.json, turned
 * into C by worker/tools/gen_registry.py (tools_gen.c). The read/get functions are generated
 * thunks over fixture_template_expand() / fixture_prompt_expand() (worker/fixture_expand.c), which
 * substitute the template variable or the prompt arguments into the declared text.
 */
#ifndef CSMCP_FIXTURES_H
#define CSMCP_FIXTURES_H

#include <stddef.h>
#include <yajl/yajl_tree.h>

#include "json.h"

struct fixture_resource {
    const char *uri, *name, *title, *description, *mime;
    const char *text; /* or */
    const char *blob; /* base64 */
};

struct fixture_template {
    const char *uri_template, *name, *title, *description, *mime;
    /* Contents with the template's one {variable} substituted (JSON-escaped when mime is
     * application/json). */
    const char *text;
    /* Writes the contents array for uri into out and returns 0, or -1 when uri does not match. */
    int (*read)(const char *uri, struct jbuf *out);
};

struct fixture_prompt {
    const char *name, *title, *description;
    const char *arguments_json; /* JSON array of {name, description, required} or NULL */
    const char *messages_json;  /* JSON array of messages; "{arg}" in strings is substituted */
    /* Writes the GetPromptResult object into out; -1 with err for bad arguments. */
    int (*get)(yajl_val args, struct jbuf *out, char *err, size_t errlen);
};

/* Terminated by an entry with NULL name; _n is the count without it. */
extern const struct fixture_resource fixture_resources[];
extern const size_t fixture_resources_n;
extern const struct fixture_template fixture_templates[];
extern const size_t fixture_templates_n;
extern const struct fixture_prompt fixture_prompts[];
extern const size_t fixture_prompts_n;

/* The generic read/get behind the generated thunks (worker/fixture_expand.c). */
int fixture_template_expand(const struct fixture_template *t, const char *uri, struct jbuf *out);
int fixture_prompt_expand(const struct fixture_prompt *p, yajl_val args, struct jbuf *out,
                          char *err, size_t errlen);

#endif
