/*
 * jsonschema.h - JSON Schema (draft 2020-12 subset) validation over yajl trees.
 *
 * A schema is compiled once (at worker start, per tool input_schema / output_schema) into an
 * immutable struct jsonschema, then used for every call: validation allocates nothing except
 * for uniqueItems on arrays (a temporary index) and never modifies the schema, so one compiled
 * schema may be shared by every request of a worker. The schema text itself is never rewritten
 * (tools/list serves the original text, "$schema" included).
 *
 * Supported keywords: type (incl. integer vs number, type arrays), properties, required,
 * additionalProperties, patternProperties, propertyNames, minProperties, maxProperties,
 * dependentRequired, enum, const, minimum, maximum, exclusiveMinimum, exclusiveMaximum,
 * multipleOf, minLength, maxLength (Unicode code points), pattern (ECMA-262 subset translated
 * to POSIX ERE), format (date, date-time, time, email, uuid, ipv4, ipv6; other formats are
 * annotations), items, prefixItems, contains, minItems, maxItems, uniqueItems, allOf, anyOf,
 * oneOf, not, if/then/else, $ref to a local JSON pointer ("#", "#/$defs/x",
 * "#/definitions/x", ...), $defs/definitions. Annotation keywords ($schema, $id, $comment,
 * title, description, default, examples, deprecated, readOnly, writeOnly, contentMediaType...)
 * are ignored. Assertion keywords this validator does not implement (unevaluatedProperties,
 * $dynamicRef, ...) make compilation fail rather than being silently ignored.
 */
#ifndef CSMCP_JSONSCHEMA_H
#define CSMCP_JSONSCHEMA_H

#include <stddef.h>
#include <yajl/yajl_tree.h>

struct jsonschema;

/*
 * Compiles schema_json (NUL-terminated JSON text; an object or true/false). Returns the compiled
 * schema (caller frees with jsonschema_free), or NULL with a reason in err (e.g.
 * "#/properties/age: minimum must be a number"). err may be NULL when errlen is 0.
 */
struct jsonschema *jsonschema_compile(const char *schema_json, char *err, size_t errlen);

/*
 * Validates instance (borrowed; NULL means "absent" and is treated as an empty object, which is
 * what MCP means by a tools/call without arguments) against s. Returns 0 when valid, -1 when not,
 * with "path: rule" in err, where path starts at "arguments", e.g.
 *   arguments.events[3].occurred_at: does not match format date-time
 *   arguments: missing required property "client_id"
 * Never fails for any other reason than the instance; safe on any client input.
 */
int jsonschema_validate(const struct jsonschema *s, yajl_val instance, char *err, size_t errlen);

/* Same as jsonschema_validate with root naming the instance in messages (e.g.
 * "structuredContent"). root is borrowed for the call. */
int jsonschema_validate_at(const struct jsonschema *s, yajl_val instance, const char *root,
                           char *err, size_t errlen);

/* Frees s and everything it owns; NULL is a no-op. */
void jsonschema_free(struct jsonschema *s);

#endif
