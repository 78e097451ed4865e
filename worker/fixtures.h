/*
 * fixtures.h - the conformance suite's resources, resource templates and prompts (the fixture
 * tools are in tools_fixtures[], worker/tool.h). Served only with mcp.conformance_fixtures.
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
    /* Writes the contents array for uri into out and returns 0, or -1 when uri does not match. */
    int (*read)(const char *uri, struct jbuf *out);
};

struct fixture_prompt {
    const char *name, *title, *description;
    const char *arguments_json; /* JSON array of {name, description, required} or NULL */
    /* Writes the GetPromptResult object into out; -1 with err for bad arguments. */
    int (*get)(yajl_val args, struct jbuf *out, char *err, size_t errlen);
};

extern const struct fixture_resource fixture_resources[];
extern const size_t fixture_resources_n;
extern const struct fixture_template fixture_templates[];
extern const size_t fixture_templates_n;
extern const struct fixture_prompt fixture_prompts[];
extern const size_t fixture_prompts_n;

#endif
