/*
 * fuzz_jsonschema.c - libFuzzer target for proto/jsonschema.
 *
 * Input: line 1 is a schema, the rest is an instance. The schema is compiled (it may be
 * rejected); when it compiles, the instance is validated against it, with and without an error
 * buffer, and the verdicts must agree. The instance is also validated against one fixed schema
 * that uses most keywords, so instance-side bugs are found even when line 1 is garbage.
 * Built only with -Dfuzz=true and clang: CC=clang meson setup build-fuzz -Dfuzz=true
 * -Db_sanitize=address,undefined && build-fuzz/tests/fuzz/fuzz_jsonschema
 * tests/fuzz/corpus/jsonschema
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_tree.h>

#include "jsonschema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fixed_schema[] =
    "{\"type\":\"object\",\"$defs\":{\"n\":{\"type\":[\"object\",\"null\"],\"properties\":{"
    "\"kids\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/n\"}}}}},"
    "\"properties\":{\"id\":{\"type\":\"string\",\"format\":\"uuid\"},"
    "\"at\":{\"type\":\"string\",\"format\":\"date-time\"},\"day\":{\"format\":\"date\"},"
    "\"mail\":{\"format\":\"email\"},\"name\":{\"minLength\":1,\"maxLength\":8,"
    "\"pattern\":\"^[\\\\w.-]+$\"},\"n\":{\"type\":\"integer\",\"minimum\":-5,"
    "\"exclusiveMaximum\":100,\"multipleOf\":3},\"x\":{\"type\":\"number\",\"multipleOf\":0.5},"
    "\"tags\":{\"type\":\"array\",\"uniqueItems\":true,\"maxItems\":50,\"items\":{\"enum\":"
    "[\"a\",1,null,{\"k\":[1]}]}},\"c\":{\"const\":{\"a\":[true,false]}},"
    "\"u\":{\"anyOf\":[{\"type\":\"string\"},{\"oneOf\":[{\"minimum\":1},{\"type\":\"integer\"}]}]}"
    ","
    "\"t\":{\"$ref\":\"#/$defs/n\"},\"w\":{\"not\":{\"type\":\"boolean\"}},"
    "\"p\":{\"prefixItems\":[{\"type\":\"string\"}],\"items\":false,\"contains\":{\"const\":\"z\"}}"
    "},"
    "\"patternProperties\":{\"^x_\":{\"type\":\"integer\"}},\"propertyNames\":{\"maxLength\":20},"
    "\"if\":{\"required\":[\"id\"]},\"then\":{\"required\":[\"at\"]},"
    "\"dependentRequired\":{\"day\":[\"n\"]},\"additionalProperties\":false}";

static struct jsonschema *fixed;

static void validate_both(const struct jsonschema *s, yajl_val inst)
{
    char err[256];
    int a = jsonschema_validate(s, inst, err, sizeof(err));
    int b = jsonschema_validate(s, inst, NULL, 0);
    char tiny[3];
    int c = jsonschema_validate_at(s, inst, "r", tiny, sizeof(tiny));
    if (a != b || a != c || (a == 0 && err[0] != '\0') || (a != 0 && err[0] == '\0'))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (fixed == NULL) {
        char err[256];
        fixed = jsonschema_compile(fixed_schema, err, sizeof(err));
        if (fixed == NULL)
            abort();
    }
    char *buf = malloc(size + 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    char *nl = strchr(buf, '\n');
    const char *instance_text = "{}";
    if (nl != NULL) {
        *nl = '\0';
        instance_text = nl + 1;
    }
    char err[256];
    struct jsonschema *s = jsonschema_compile(buf, err, sizeof(err));
    yajl_val inst = yajl_tree_parse(instance_text, NULL, 0);
    if (inst != NULL) {
        if (s != NULL)
            validate_both(s, inst);
        validate_both(fixed, inst);
        yajl_tree_free(inst);
    }
    jsonschema_free(s);
    free(buf);
    return 0;
}
