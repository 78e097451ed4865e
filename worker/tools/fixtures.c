/*
 * tools/fixtures.c - the official MCP conformance suite's fixture tools, resources, resource
 * templates and prompts (names and contents are fixed by the suite). Listed only when
 * mcp.conformance_fixtures = true; never in production configurations.
 *
 * Invariant: every handler finishes its call exactly once, also when a timer or a client
 * answer completes it later; per-call state is freed on that path.
 */
#include "fixtures.h"

#include "json.h"
#include "mcp.h"
#include "tool.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PNG_1X1                                                                                    \
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+"                                \
    "M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
#define WAV_SHORT                                                                                  \
    "UklGRkQAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YSAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" \
    "AAAAAAAAAA=="

static const char NO_ARGS[] = "{\"type\":\"object\",\"additionalProperties\":false}";

static void simple_text(struct tool_call *tc)
{
    tool_call_done_content(
        tc, "[{\"type\":\"text\",\"text\":\"This is a simple text response for testing.\"}]",
        false);
}

static void image_content(struct tool_call *tc)
{
    tool_call_done_content(
        tc, "[{\"type\":\"image\",\"data\":\"" PNG_1X1 "\",\"mimeType\":\"image/png\"}]", false);
}

static void audio_content(struct tool_call *tc)
{
    tool_call_done_content(
        tc, "[{\"type\":\"audio\",\"data\":\"" WAV_SHORT "\",\"mimeType\":\"audio/wav\"}]", false);
}

static void embedded_resource(struct tool_call *tc)
{
    tool_call_done_content(tc,
                           "[{\"type\":\"resource\",\"resource\":{\"uri\":\"test://"
                           "embedded-resource\",\"mimeType\":\"text/plain\",\"text\":\"This is an "
                           "embedded resource content.\"}}]",
                           false);
}

static void multiple_content(struct tool_call *tc)
{
    tool_call_done_content(
        tc,
        "[{\"type\":\"text\",\"text\":\"Multiple content types test:\"},"
        "{\"type\":\"image\",\"data\":\"" PNG_1X1 "\",\"mimeType\":\"image/png\"},"
        "{\"type\":\"resource\",\"resource\":{\"uri\":\"test://mixed-content-resource\","
        "\"mimeType\":\"application/json\",\"text\":\"{\\\"test\\\":\\\"data\\\",\\\"value\\\":"
        "123}\"}}]",
        false);
}

static void error_handling(struct tool_call *tc)
{
    tool_call_fail(tc, "This tool intentionally returns an error for testing");
}

/* ---- timed tools: logging, progress, reconnection ---- */

struct steps {
    struct tool_call *tc;
    int step;
    int kind; /* 0 logging, 1 progress, 2 reconnection */
};

static void step_cb(evutil_socket_t fd, short what, void *arg)
{
    struct steps *s = arg;
    static const char *const logs[] = {"\"Tool execution started\"", "\"Tool processing data\"",
                                       "\"Tool execution completed\""};
    struct timeval tv = {0, 50 * 1000};
    if (s->kind == 0 && s->step < 3) {
        tool_call_log(s->tc, "info", "conformance", logs[s->step]);
    } else if (s->kind == 1 && s->step < 3) {
        tool_call_progress(s->tc, 50.0 * s->step, 100, NULL);
    } else if (s->kind == 2 && s->step == 0) {
        mcp_call_close_stream(s->tc);
        tv.tv_usec = 300 * 1000;
    } else {
        const char *text = s->kind == 0   ? "Tool with logging executed successfully"
                           : s->kind == 1 ? "Tool with progress executed successfully"
                                          : "Reconnection test completed successfully";
        char content[160];
        snprintf(content, sizeof content, "[{\"type\":\"text\",\"text\":\"%s\"}]", text);
        tool_call_done_content(s->tc, content, false);
        free(s);
        return;
    }
    s->step++;
    event_base_once(tool_call_base(s->tc), -1, EV_TIMEOUT, step_cb, s, &tv);
}

static void start_steps(struct tool_call *tc, int kind)
{
    struct steps *s = calloc(1, sizeof *s);
    if (s == NULL) {
        tool_call_fail(tc, "out of memory");
        return;
    }
    s->tc = tc;
    s->kind = kind;
    step_cb(-1, 0, s);
}

static void with_logging(struct tool_call *tc)
{
    start_steps(tc, 0);
}

static void with_progress(struct tool_call *tc)
{
    start_steps(tc, 1);
}

static void reconnection(struct tool_call *tc)
{
    start_steps(tc, 2);
}

/* ---- sampling and elicitation ---- */

static void sampled(struct tool_call *tc, const char *result, const char *error, void *arg)
{
    if (result == NULL) {
        tool_call_fail(tc, "Sampling failed: %s", error ? error : "no answer");
        return;
    }
    char err[64];
    yajl_val v = json_parse(result, strlen(result), 32, 1 << 20, err, sizeof err);
    const char *text = json_get_str(json_get_obj(v, "content"), "text");
    struct jbuf b, t;
    jbuf_init(&b);
    jbuf_init(&t);
    jbuf_puts(&t, "LLM response: ");
    jbuf_puts(&t, text ? text : result);
    jbuf_puts(&b, "[{\"type\":\"text\",\"text\":");
    json_str(&b, jbuf_cstr(&t));
    jbuf_puts(&b, "}]");
    tool_call_done_content(tc, b.p, false);
    jbuf_free(&b);
    jbuf_free(&t);
    yajl_tree_free(v);
}

static void sampling(struct tool_call *tc)
{
    const char *prompt = json_get_str(tool_call_args(tc), "prompt");
    struct jbuf b;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"messages\":[{\"role\":\"user\",\"content\":{\"type\":\"text\",\"text\":");
    json_str(&b, prompt ? prompt : "");
    jbuf_puts(&b, "}}],\"maxTokens\":100}");
    if (tool_call_request(tc, "sampling/createMessage", b.p, sampled, NULL) < 0)
        tool_call_fail(tc, "The client does not support sampling");
    jbuf_free(&b);
}

static void elicited(struct tool_call *tc, const char *result, const char *error, void *arg)
{
    const char *prefix = arg;
    if (result == NULL) {
        tool_call_fail(tc, "Elicitation failed: %s", error ? error : "no answer");
        return;
    }
    char err[64];
    yajl_val v = json_parse(result, strlen(result), 32, 1 << 20, err, sizeof err);
    struct jbuf t, b, c;
    jbuf_init(&t);
    jbuf_init(&b);
    jbuf_init(&c);
    json_val(&c, json_get(v, "content"));
    const char *action = json_get_str(v, "action");
    if (strcmp(prefix, "User response: ") == 0)
        jbuf_printf(&t, "User response: action=%s, content=%s", action ? action : "unknown",
                    jbuf_cstr(&c));
    else
        jbuf_printf(&t, "Elicitation completed: action=%s, content=%s", action ? action : "unknown",
                    jbuf_cstr(&c));
    jbuf_puts(&b, "[{\"type\":\"text\",\"text\":");
    json_str(&b, jbuf_cstr(&t));
    jbuf_puts(&b, "}]");
    tool_call_done_content(tc, b.p, false);
    jbuf_free(&t);
    jbuf_free(&b);
    jbuf_free(&c);
    yajl_tree_free(v);
}

static void elicit(struct tool_call *tc, const char *params, const char *prefix)
{
    if (tool_call_request(tc, "elicitation/create", params, elicited, (void *)prefix) < 0)
        tool_call_fail(tc, "The client does not support elicitation");
}

static void elicitation(struct tool_call *tc)
{
    const char *message = json_get_str(tool_call_args(tc), "message");
    struct jbuf b;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"message\":");
    json_str(&b, message ? message : "Please provide your information");
    jbuf_puts(&b, ",\"requestedSchema\":{\"type\":\"object\",\"properties\":{"
                  "\"username\":{\"type\":\"string\",\"description\":\"User's response\"},"
                  "\"email\":{\"type\":\"string\",\"description\":\"User's email address\"}},"
                  "\"required\":[\"username\",\"email\"]}}");
    elicit(tc, b.p, "User response: ");
    jbuf_free(&b);
}

static void elicitation_defaults(struct tool_call *tc)
{
    elicit(tc,
           "{\"message\":\"Please review and update the form fields with defaults\","
           "\"requestedSchema\":{\"type\":\"object\",\"properties\":{"
           "\"name\":{\"type\":\"string\",\"description\":\"User name\",\"default\":\"John Doe\"},"
           "\"age\":{\"type\":\"integer\",\"description\":\"User age\",\"default\":30},"
           "\"score\":{\"type\":\"number\",\"description\":\"User score\",\"default\":95.5},"
           "\"status\":{\"type\":\"string\",\"description\":\"User status\",\"enum\":[\"active\","
           "\"inactive\",\"pending\"],\"default\":\"active\"},"
           "\"verified\":{\"type\":\"boolean\",\"description\":\"Verification status\","
           "\"default\":true}},\"required\":[]}}",
           "Elicitation completed: ");
}

static void elicitation_enums(struct tool_call *tc)
{
    elicit(
        tc,
        "{\"message\":\"Please select options from the enum fields\","
        "\"requestedSchema\":{\"type\":\"object\",\"properties\":{"
        "\"untitledSingle\":{\"type\":\"string\",\"description\":\"Select one option\","
        "\"enum\":[\"option1\",\"option2\",\"option3\"]},"
        "\"titledSingle\":{\"type\":\"string\",\"description\":\"Select one option with titles\","
        "\"oneOf\":[{\"const\":\"value1\",\"title\":\"First Option\"},{\"const\":\"value2\","
        "\"title\":\"Second Option\"},{\"const\":\"value3\",\"title\":\"Third Option\"}]},"
        "\"legacyEnum\":{\"type\":\"string\",\"description\":\"Select one option (legacy)\","
        "\"enum\":[\"opt1\",\"opt2\",\"opt3\"],\"enumNames\":[\"Option One\",\"Option Two\","
        "\"Option Three\"]},"
        "\"untitledMulti\":{\"type\":\"array\",\"description\":\"Select multiple options\","
        "\"minItems\":1,\"maxItems\":3,\"items\":{\"type\":\"string\",\"enum\":[\"option1\","
        "\"option2\",\"option3\"]}},"
        "\"titledMulti\":{\"type\":\"array\",\"description\":\"Select multiple options with "
        "titles\",\"minItems\":1,\"maxItems\":3,\"items\":{\"anyOf\":[{\"const\":\"value1\","
        "\"title\":\"First Choice\"},{\"const\":\"value2\",\"title\":\"Second Choice\"},"
        "{\"const\":\"value3\",\"title\":\"Third Choice\"}]}}},\"required\":[]}}",
        "Elicitation completed: ");
}

static void schema_2020_12(struct tool_call *tc)
{
    struct jbuf b, t;
    jbuf_init(&b);
    jbuf_init(&t);
    jbuf_puts(&t, "Received: ");
    jbuf_puts(&t, tool_call_args_json(tc));
    jbuf_puts(&b, "[{\"type\":\"text\",\"text\":");
    json_str(&b, jbuf_cstr(&t));
    jbuf_puts(&b, "}]");
    tool_call_done_content(tc, b.p, false);
    jbuf_free(&b);
    jbuf_free(&t);
}

/* csmcp's own fixture (not from the suite): structuredContent checked against outputSchema by
 * SDK clients. */
static void structured_output(struct tool_call *tc)
{
    const char *text = json_get_str(tool_call_args(tc), "text");
    struct jbuf b;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"echo\":");
    json_str(&b, text ? text : "");
    jbuf_printf(&b, ",\"length\":%zu}", text ? strlen(text) : 0);
    tool_call_done(tc, b.p, NULL);
    jbuf_free(&b);
}

#define RO (TOOL_HINT_READONLY | TOOL_HINT_IDEMPOTENT)

/* clang-format off */
const struct tool_def tools_fixtures[] = {
    {"test_simple_text", "Simple text", "Tests simple text content response", NO_ARGS, NULL, RO,
     TOOL_SCOPE_READ, simple_text, NULL, true},
    {"test_image_content", "Image content", "Tests image content response", NO_ARGS, NULL, RO,
     TOOL_SCOPE_READ, image_content, NULL, true},
    {"test_audio_content", "Audio content", "Tests audio content response", NO_ARGS, NULL, RO,
     TOOL_SCOPE_READ, audio_content, NULL, true},
    {"test_embedded_resource", "Embedded resource", "Tests embedded resource content response",
     NO_ARGS, NULL, RO, TOOL_SCOPE_READ, embedded_resource, NULL, true},
    {"test_multiple_content_types", "Mixed content",
     "Tests response with multiple content types (text, image, resource)", NO_ARGS, NULL, RO,
     TOOL_SCOPE_READ, multiple_content, NULL, true},
    {"test_tool_with_logging", "Logging", "Tests tool that emits log messages during execution",
     NO_ARGS, NULL, RO, TOOL_SCOPE_READ, with_logging, NULL, true},
    {"test_tool_with_progress", "Progress", "Tests tool that reports progress notifications",
     NO_ARGS, NULL, RO, TOOL_SCOPE_READ, with_progress, NULL, true},
    {"test_error_handling", "Error", "Tests error response handling", NO_ARGS, NULL, RO,
     TOOL_SCOPE_READ, error_handling, NULL, true},
    {"test_sampling", "Sampling", "Tests server-initiated sampling (LLM completion request)",
     "{\"type\":\"object\",\"properties\":{\"prompt\":{\"type\":\"string\",\"description\":"
     "\"The prompt to send to the LLM\"}},\"required\":[\"prompt\"]}",
     NULL, RO, TOOL_SCOPE_READ, sampling, NULL, true},
    {"test_elicitation", "Elicitation", "Tests server-initiated elicitation (user input request)",
     "{\"type\":\"object\",\"properties\":{\"message\":{\"type\":\"string\",\"description\":"
     "\"The message to show the user\"}},\"required\":[\"message\"]}",
     NULL, RO, TOOL_SCOPE_READ, elicitation, NULL, true},
    {"test_elicitation_sep1034_defaults", "Elicitation defaults",
     "Tests elicitation with default values for all primitive types (SEP-1034)", NO_ARGS, NULL, RO,
     TOOL_SCOPE_READ, elicitation_defaults, NULL, true},
    {"test_elicitation_sep1330_enums", "Elicitation enums",
     "Tests elicitation with enum schema improvements (SEP-1330)", NO_ARGS, NULL, RO,
     TOOL_SCOPE_READ, elicitation_enums, NULL, true},
    {"json_schema_2020_12_tool", "JSON Schema 2020-12", "Tool with JSON Schema 2020-12 features",
     "{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\",\"type\":\"object\","
     "\"$defs\":{\"address\":{\"type\":\"object\",\"properties\":{\"street\":{\"type\":\"string\"},"
     "\"city\":{\"type\":\"string\"}}}},\"properties\":{\"name\":{\"type\":\"string\"},"
     "\"address\":{\"$ref\":\"#/$defs/address\"}},\"additionalProperties\":false}",
     NULL, RO, TOOL_SCOPE_READ, schema_2020_12, NULL, true},
    {"test_structured_output", "Structured output",
     "Echoes its text argument as structuredContent that matches the declared outputSchema",
     "{\"type\":\"object\",\"properties\":{\"text\":{\"type\":\"string\",\"maxLength\":1000,"
     "\"description\":\"Text to echo\"}},\"required\":[\"text\"],\"additionalProperties\":false}",
     "{\"type\":\"object\",\"properties\":{\"echo\":{\"type\":\"string\"},\"length\":{"
     "\"type\":\"integer\",\"minimum\":0}},\"required\":[\"echo\",\"length\"],"
     "\"additionalProperties\":false}",
     RO, TOOL_SCOPE_READ, structured_output, NULL, true},
    {"test_reconnection", "Reconnection",
     "Closes the SSE stream mid-call; the result arrives after the client reconnects with "
     "Last-Event-ID (SEP-1699)",
     NO_ARGS, NULL, RO, TOOL_SCOPE_READ, reconnection, NULL, true},
};
/* clang-format on */
const size_t tools_fixtures_n = sizeof tools_fixtures / sizeof tools_fixtures[0];

/* ---- resources ---- */

const struct fixture_resource fixture_resources[] = {
    {"test://static-text", "static-text", "Static text", "A static text resource for testing",
     "text/plain", "This is the content of the static text resource.", NULL},
    {"test://static-binary", "static-binary", "Static binary",
     "A static binary resource (PNG image) for testing", "image/png", NULL, PNG_1X1},
    {"test://watched-resource", "watched-resource", "Watched resource",
     "A resource that can be subscribed to", "text/plain", "Watched resource content", NULL},
};
const size_t fixture_resources_n = sizeof fixture_resources / sizeof fixture_resources[0];

static int template_read(const char *uri, struct jbuf *out)
{
    static const char prefix[] = "test://template/";
    if (strncmp(uri, prefix, sizeof prefix - 1) != 0)
        return -1;
    const char *id = uri + sizeof prefix - 1;
    const char *slash = strchr(id, '/');
    if (slash == NULL || slash == id || strcmp(slash, "/data") != 0 || slash - id > 128)
        return -1;
    char idbuf[130];
    snprintf(idbuf, sizeof idbuf, "%.*s", (int)(slash - id), id);
    struct jbuf text;
    jbuf_init(&text);
    jbuf_puts(&text, "{\"id\":");
    json_str(&text, idbuf);
    jbuf_puts(&text, ",\"templateTest\":true,\"data\":");
    char data[160];
    snprintf(data, sizeof data, "Data for ID: %s", idbuf);
    json_str(&text, data);
    jbuf_putc(&text, '}');
    jbuf_puts(out, "[{\"uri\":");
    json_str(out, uri);
    jbuf_puts(out, ",\"mimeType\":\"application/json\",\"text\":");
    json_str(out, jbuf_cstr(&text));
    jbuf_puts(out, "}]");
    jbuf_free(&text);
    return 0;
}

const struct fixture_template fixture_templates[] = {
    {"test://template/{id}/data", "template", "Template resource",
     "A resource template with parameter substitution", "application/json", template_read},
};
const size_t fixture_templates_n = sizeof fixture_templates / sizeof fixture_templates[0];

/* ---- prompts ---- */

static const char *arg_str(yajl_val args, const char *name)
{
    return json_get_str(args, name);
}

static int prompt_simple(yajl_val args, struct jbuf *out, char *err, size_t errlen)
{
    jbuf_puts(out, "{\"messages\":[{\"role\":\"user\",\"content\":{\"type\":\"text\",\"text\":"
                   "\"This is a simple prompt for testing.\"}}]}");
    return 0;
}

static int prompt_args(yajl_val args, struct jbuf *out, char *err, size_t errlen)
{
    const char *a1 = arg_str(args, "arg1"), *a2 = arg_str(args, "arg2");
    if (a1 == NULL || a2 == NULL) {
        snprintf(err, errlen, "arguments arg1 and arg2 (strings) are required");
        return -1;
    }
    struct jbuf t;
    jbuf_init(&t);
    jbuf_printf(&t, "Prompt with arguments: arg1='%s', arg2='%s'", a1, a2);
    jbuf_puts(out, "{\"messages\":[{\"role\":\"user\",\"content\":{\"type\":\"text\",\"text\":");
    json_str(out, jbuf_cstr(&t));
    jbuf_puts(out, "}}]}");
    jbuf_free(&t);
    return 0;
}

static int prompt_resource(yajl_val args, struct jbuf *out, char *err, size_t errlen)
{
    const char *uri = arg_str(args, "resourceUri");
    if (uri == NULL) {
        snprintf(err, errlen, "argument resourceUri (string) is required");
        return -1;
    }
    jbuf_puts(out, "{\"messages\":[{\"role\":\"user\",\"content\":{\"type\":\"resource\","
                   "\"resource\":{\"uri\":");
    json_str(out, uri);
    jbuf_puts(out, ",\"mimeType\":\"text/plain\",\"text\":\"Embedded resource content for "
                   "testing.\"}}},{\"role\":\"user\",\"content\":{\"type\":\"text\",\"text\":"
                   "\"Please process the embedded resource above.\"}}]}");
    return 0;
}

static int prompt_image(yajl_val args, struct jbuf *out, char *err, size_t errlen)
{
    jbuf_puts(
        out, "{\"messages\":[{\"role\":\"user\",\"content\":{\"type\":\"image\",\"data\":\"" PNG_1X1
             "\",\"mimeType\":\"image/png\"}},{\"role\":\"user\",\"content\":{\"type\":"
             "\"text\",\"text\":\"Please analyze the image above.\"}}]}");
    return 0;
}

const struct fixture_prompt fixture_prompts[] = {
    {"test_simple_prompt", "Simple prompt", "A simple prompt without arguments", NULL,
     prompt_simple},
    {"test_prompt_with_arguments", "Prompt with arguments", "A prompt with required arguments",
     "[{\"name\":\"arg1\",\"description\":\"First test argument\",\"required\":true},"
     "{\"name\":\"arg2\",\"description\":\"Second test argument\",\"required\":true}]",
     prompt_args},
    {"test_prompt_with_embedded_resource", "Prompt with embedded resource",
     "A prompt that includes an embedded resource",
     "[{\"name\":\"resourceUri\",\"description\":\"URI of the resource to embed\",\"required\":"
     "true}]",
     prompt_resource},
    {"test_prompt_with_image", "Prompt with image", "A prompt that includes image content", NULL,
     prompt_image},
};
const size_t fixture_prompts_n = sizeof fixture_prompts / sizeof fixture_prompts[0];
