#!/usr/bin/env python3
"""gen_registry.py - builds the worker's tool registry from worker/tools/**/*.json.

Run by meson (worker/meson.build, custom_target 'tool_registry') on every build where a file or
directory under worker/tools changed; a new JSON file needs no meson.build edit (the depfile
lists every JSON file and every directory, so adding a file to a directory re-runs this script).

Inputs:  worker/tools/<category>/<tool_name>.json   one tool each (format: docs/adding-a-tool.md)
         worker/tools/shared.json                   schema fragments for {"$ref": "#/shared/X"}
         worker/tools/fixtures/resources.json,      conformance fixture resources, resource
         worker/tools/fixtures/prompts.json           templates and prompts (not tools)
         the C handler files (--handlers)           define the "c:<symbol>" handlers
Outputs: tools_gen.c           const struct tool_def tool_defs[] (worker/tool.h), fixture tables
         tool_handlers.h       prototypes of the C handlers (included by the handler files)
         tools_inventory.json  the registry as data, for tests (tests/integration/toolinv.py)
         tool_handler_stubs.c  no-op handlers, for unit tests that link tools_gen.c

Every problem is reported as "<file>: <what is wrong>" and fails the build (exit 1), so a bad
definition never reaches a binary. Outputs are rewritten only when their content changes.

Also: gen_registry.py --format FILE... rewrites tool JSON files in the house layout.
"""
import argparse
import json
import os
import re
import sys

NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
SQL_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
CATEGORY_RE = re.compile(r"^[a-z][a-z0-9_]*$")
C_SYMBOL_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SQL_FUNC_RE = re.compile(r"^csmcp\.[a-z_][a-z0-9_]*$")
SCOPES = ("read", "write", "admin")
RATE_CLASSES = ("read", "write")
HINTS = ("readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint")
KEYS_REQUIRED = ("name", "title", "description", "scope", "annotations", "inputSchema")
KEYS_OPTIONAL = ("action_scopes", "argument_scopes", "rate_class", "handler", "outputSchema",
                 "rules", "fixture", "sql_function", "replica_ok")
# Files under worker/tools/fixtures/ that are fixture tables, not tools.
FIXTURE_TABLES = ("resources.json", "prompts.json")


class Problem(Exception):
    pass


# ---------------------------------------------------------------- JSON layout (--format)

def _compact(v):
    return json.dumps(v, ensure_ascii=False, separators=(", ", ": "))


def layout(v, indent=0, width=100, key_len=0):
    """Readable JSON: a value stays on one line when it fits in width, otherwise one member per
    line (lists of scalars packed several to a line)."""
    c = _compact(v)
    if indent + key_len + len(c) <= width or not isinstance(v, (dict, list)) or not v:
        return c
    pad = " " * (indent + 2)
    if isinstance(v, dict):
        items = []
        for k, x in v.items():
            ks = json.dumps(k, ensure_ascii=False) + ": "
            items.append(pad + ks + layout(x, indent + 2, width, len(ks)))
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    if all(not isinstance(x, (dict, list)) for x in v):
        lines, cur = [], ""
        for x in v:
            s = _compact(x)
            if cur and len(pad) + len(cur) + 2 + len(s) + 1 > width:
                lines.append(cur + ",")
                cur = s
            else:
                cur = cur + ", " + s if cur else s
        lines.append(cur)
        return "[\n" + "\n".join(pad + ln for ln in lines) + "\n" + " " * indent + "]"
    return "[\n" + ",\n".join(pad + layout(x, indent + 2, width) for x in v) + "\n" + \
        " " * indent + "]"


# ---------------------------------------------------------------- loading and validation

def _no_duplicate_keys(pairs):
    seen = {}
    for k, v in pairs:
        if k in seen:
            raise ValueError("key %r appears twice in one object" % k)
        seen[k] = v
    return seen


def load_json(path, label=None):
    label = label or path
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise Problem("%s: cannot read: %s" % (label, e))
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as e:
        raise Problem("%s:%d:%d: invalid JSON: %s" % (label, e.lineno, e.colno, e.msg))
    except ValueError as e:
        raise Problem("%s: invalid JSON: %s" % (label, e))


def resolve_shared(v, shared, where):
    """Replaces every {"$ref": "#/shared/NAME", ...siblings} by a copy of the fragment NAME with
    the sibling keys laid over it (e.g. a more specific "description")."""
    if isinstance(v, list):
        return [resolve_shared(x, shared, "%s/%d" % (where, i)) for i, x in enumerate(v)]
    if not isinstance(v, dict):
        return v
    ref = v.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/shared/"):
        name = ref[len("#/shared/"):]
        if name not in shared:
            raise Problem("%s: $ref %s: no fragment %r in worker/tools/shared.json (has: %s)" %
                          (where, ref, name, ", ".join(sorted(shared)) or "none"))
        out = dict(resolve_shared(shared[name], shared, where))
        for k, x in v.items():
            if k != "$ref":
                out[k] = resolve_shared(x, shared, "%s/%s" % (where, k))
        return out
    return {k: resolve_shared(x, shared, "%s/%s" % (where, k)) for k, x in v.items()}


def check_local_refs(schema, node, where):
    """Every remaining $ref must be a local JSON pointer that resolves inside the schema."""
    if isinstance(node, list):
        for i, x in enumerate(node):
            check_local_refs(schema, x, "%s/%d" % (where, i))
        return
    if not isinstance(node, dict):
        return
    ref = node.get("$ref")
    if ref is not None:
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise Problem("%s: $ref %r: only local references (\"#/...\") and \"#/shared/NAME\" "
                          "are supported" % (where, ref))
        cur = schema
        for part in [p for p in ref[1:].split("/") if p != ""]:
            part = part.replace("~1", "/").replace("~0", "~")
            if isinstance(cur, dict) and part in cur:
                cur = cur[part]
            elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
                cur = cur[int(part)]
            else:
                raise Problem("%s: $ref %s does not resolve" % (where, ref))
    for k, x in node.items():
        if k not in ("enum", "const", "default", "examples"):
            check_local_refs(schema, x, "%s/%s" % (where, k))


def c_symbols(handler_files):
    """Functions `void NAME(struct tool_call *tc)` defined (not static) in the handler files."""
    syms = {}
    pat = re.compile(r"^void\s+([A-Za-z_][A-Za-z0-9_]*)\s*\(\s*struct\s+tool_call\s*\*\s*\w*\s*\)"
                     r"\s*(\{|$)", re.M)
    for path in handler_files:
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            raise Problem("%s: cannot read: %s" % (path, e))
        for m in pat.finditer(text):
            syms[m.group(1)] = path
    return syms


def validate_tool(path, rel, category, d, shared, symbols):
    def bad(msg):
        raise Problem("%s: %s" % (rel, msg))

    if not isinstance(d, dict):
        bad("the file must hold one JSON object (a tool definition)")
    unknown = [k for k in d if k not in KEYS_REQUIRED + KEYS_OPTIONAL]
    if unknown:
        bad("unknown key(s) %s (allowed: %s)" % (", ".join(map(repr, unknown)),
                                                 ", ".join(KEYS_REQUIRED + KEYS_OPTIONAL)))
    for k in KEYS_REQUIRED:
        if k not in d:
            bad("required key %r is missing" % k)
    name = d["name"]
    if not isinstance(name, str) or not NAME_RE.match(name):
        bad("name %r must match [A-Za-z0-9_.-]{1,128}" % (name,))
    stem = os.path.splitext(os.path.basename(path))[0]
    if stem != name:
        bad("name %r must equal the file name (%s.json)" % (name, stem))
    for k in ("title", "description"):
        if not isinstance(d[k], str) or not d[k].strip():
            bad("%s must be a non-empty string" % k)
    fixture = d.get("fixture", False)
    if not isinstance(fixture, bool):
        bad("fixture must be true or false")
    if fixture != (category == "fixtures"):
        bad("\"fixture\": true belongs exactly to the tools in worker/tools/fixtures/")
    if d["scope"] not in SCOPES:
        bad("scope %r must be one of %s" % (d["scope"], ", ".join(SCOPES)))
    replica_ok = d.get("replica_ok", False)
    if not isinstance(replica_ok, bool):
        bad("replica_ok must be true or false")
    if replica_ok and (d["scope"] != "read" or d.get("action_scopes") or d.get("argument_scopes") or
                       not d["annotations"].get("readOnlyHint") or
                       d.get("handler", "sql") != "sql"):
        bad("replica_ok: only for a read-scope SQL tool with readOnlyHint and no action_scopes "
            "(a replica refuses writes)")
    if "rate_class" in d and d["rate_class"] not in RATE_CLASSES:
        bad("rate_class %r must be one of %s" % (d["rate_class"], ", ".join(RATE_CLASSES)))
    ann = d["annotations"]
    if not isinstance(ann, dict):
        bad("annotations must be an object")
    for k in ann:
        if k not in HINTS:
            bad("annotations: unknown hint %r (allowed: %s)" % (k, ", ".join(HINTS)))
    for k in HINTS:
        if not isinstance(ann.get(k), bool):
            bad("annotations.%s must be true or false (state all four hints)" % k)

    handler = d.get("handler", "sql")
    if not isinstance(handler, str):
        bad("handler must be a string: \"sql\" or \"c:<symbol>\"")
    if handler == "sql":
        if not SQL_NAME_RE.match(name):
            bad("a SQL tool's name must match [a-z][a-z0-9_]{0,62} (it names csmcp.tool_%s)" %
                name)
        fn = d.get("sql_function", "csmcp.tool_" + name)
        if not isinstance(fn, str) or not SQL_FUNC_RE.match(fn):
            bad("sql_function %r must look like csmcp.<function name>" % (fn,))
    elif handler.startswith("c:"):
        sym = handler[2:]
        if not C_SYMBOL_RE.match(sym):
            bad("handler %r: %r is not a C identifier" % (handler, sym))
        if sym not in symbols:
            bad("handler %r: no function `void %s(struct tool_call *tc)` in the handler files "
                "(%s)" % (handler, sym, ", ".join(sorted(set(symbols.values()))) or "none"))
        if "sql_function" in d:
            bad("sql_function is only for \"handler\": \"sql\"")
    else:
        bad("handler %r must be \"sql\" or \"c:<symbol>\"" % handler)

    schemas = {}
    for k in ("inputSchema", "outputSchema"):
        if k not in d:
            continue
        s = d[k]
        if not isinstance(s, dict):
            bad("%s must be a JSON object (a JSON Schema)" % k)
        s = resolve_shared(s, shared, "%s: %s" % (rel, k))
        if s.get("type") != "object":
            bad("%s must have \"type\": \"object\"" % k)
        check_local_refs(s, s, "%s: %s" % (rel, k))
        schemas[k] = s
    if "outputSchema" not in schemas and not fixture:
        bad("outputSchema is required (the schema of structuredContent)")
    ins = schemas["inputSchema"]
    if ins.get("additionalProperties") is not False and not fixture:
        bad("inputSchema must set \"additionalProperties\": false")
    props = ins.get("properties", {})
    if not isinstance(props, dict):
        bad("inputSchema.properties must be an object")

    action_scopes = d.get("action_scopes")
    if action_scopes is not None:
        if not isinstance(action_scopes, dict) or not action_scopes:
            bad("action_scopes must be a non-empty object {\"<action>\": \"read|write|admin\"}")
        act = props.get("action")
        enum = act.get("enum") if isinstance(act, dict) else None
        if not isinstance(enum, list) or not all(isinstance(x, str) for x in enum):
            bad("action_scopes needs inputSchema.properties.action with an \"enum\" of strings")
        for a, sc in action_scopes.items():
            if a not in enum:
                bad("action_scopes: %r is not a value of action's enum (%s)" %
                    (a, ", ".join(enum)))
            if sc not in SCOPES:
                bad("action_scopes.%s: %r must be one of %s" % (a, sc, ", ".join(SCOPES)))

    # "argument_scopes": {"new_stage": "write"}: a call that passes that argument (not null)
    # needs at least that scope (a tool whose write is selected by an argument, not an action)
    argument_scopes = d.get("argument_scopes")
    if argument_scopes is not None:
        if action_scopes is not None:
            bad("argument_scopes and action_scopes cannot be combined")
        if not isinstance(argument_scopes, dict) or not argument_scopes:
            bad("argument_scopes must be a non-empty object {\"<argument>\": \"read|write|admin\"}")
        for a, sc in argument_scopes.items():
            if a not in props:
                bad("argument_scopes: %r is not a property of inputSchema" % a)
            if sc not in SCOPES:
                bad("argument_scopes.%s: %r must be one of %s" % (a, sc, ", ".join(SCOPES)))
            if SCOPES.index(sc) <= SCOPES.index(d["scope"]):
                bad("argument_scopes.%s: %r does not raise the tool's scope %r" % (a, sc, d["scope"]))

    # the hints must not contradict the scopes (TOOLS.md: read tools need read, writes write)
    needs = (set([d["scope"]]) | set((action_scopes or {}).values()) |
             set((argument_scopes or {}).values()))
    if ann["readOnlyHint"] and ann["destructiveHint"]:
        bad("annotations: readOnlyHint and destructiveHint cannot both be true")
    if ann["readOnlyHint"] and "write" in needs:
        bad("annotations.readOnlyHint is true but the tool (or one of its actions) needs the "
            "write scope")
    if needs == {"read"} and not ann["readOnlyHint"] and not fixture:
        bad("a tool that needs only the read scope must set annotations.readOnlyHint true")

    rules = d.get("rules", [])
    if not isinstance(rules, list) or not all(isinstance(r, str) and r.strip() for r in rules):
        bad("rules must be an array of non-empty strings (one Markdown line each)")
    for r in rules:
        if "\n" in r:
            bad("rules: one line per entry (no newline): %r" % r[:60])

    return {
        "name": name,
        "category": category,
        "source": rel,
        "title": d["title"],
        "description": d["description"],
        "scope": d["scope"],
        "action_scopes": action_scopes or {},
        "argument_scopes": argument_scopes or {},
        "rate_class": d.get("rate_class"),
        "annotations": {k: ann[k] for k in HINTS},
        "handler": handler,
        "sql_function": d.get("sql_function", "csmcp.tool_" + name) if handler == "sql" else None,
        "fixture": fixture,
        "inputSchema": ins,
        "outputSchema": schemas.get("outputSchema"),
        "rules": rules,
        "replica_ok": replica_ok,
    }


# ---------------------------------------------------------------- fixtures: resources, prompts

def validate_fixture_tables(tools_dir, root):
    """worker/tools/fixtures/resources.json: {"resources": [...], "templates": [...]};
    prompts.json: {"prompts": [...]} (see worker/fixtures.h for the meaning of each field)."""
    out = {"resources": [], "templates": [], "prompts": []}
    rdir = os.path.join(tools_dir, "fixtures")
    spec = {
        "resources.json": {
            "resources": (("uri", "name", "title", "description", "mimeType"), ("text", "blob")),
            "templates": (("uriTemplate", "name", "title", "description", "mimeType", "text"), ()),
        },
        "prompts.json": {
            "prompts": (("name", "title", "description", "messages"), ("arguments",)),
        },
    }
    for fname, tables in spec.items():
        path = os.path.join(rdir, fname)
        if not os.path.exists(path):
            continue
        rel = os.path.relpath(path, root)
        d = load_json(path, rel)
        if not isinstance(d, dict) or set(d) - set(tables):
            raise Problem("%s: must be an object with the key(s) %s" % (rel, ", ".join(tables)))
        for tname, (req, opt) in tables.items():
            rows = d.get(tname, [])
            if not isinstance(rows, list):
                raise Problem("%s: %s must be an array" % (rel, tname))
            for i, row in enumerate(rows):
                where = "%s: %s[%d]" % (rel, tname, i)
                if not isinstance(row, dict):
                    raise Problem("%s: must be an object" % where)
                for k in row:
                    if k not in req + opt:
                        raise Problem("%s: unknown key %r" % (where, k))
                for k in req:
                    if k not in row:
                        raise Problem("%s: required key %r is missing" % (where, k))
                if tname == "resources" and ("text" in row) == ("blob" in row):
                    raise Problem("%s: exactly one of text or blob" % where)
                if tname == "prompts":
                    if not isinstance(row["messages"], list) or not row["messages"]:
                        raise Problem("%s: messages must be a non-empty array" % where)
                    args = row.get("arguments", [])
                    if not isinstance(args, list) or not all(
                            isinstance(a, dict) and isinstance(a.get("name"), str) for a in args):
                        raise Problem("%s: arguments must be an array of {name, ...}" % where)
                    declared = {a["name"] for a in args}
                    used = set(re.findall(r"\{([A-Za-z0-9_]+)\}", json.dumps(row["messages"])))
                    if used - declared:
                        raise Problem("%s: messages use undeclared argument(s) %s" %
                                      (where, ", ".join(sorted(used - declared))))
                    for a in args:
                        if a.get("required") is not True:
                            raise Problem("%s: argument %s: only required arguments are "
                                          "supported (the text substitutes each one)" %
                                          (where, a["name"]))
                if tname == "templates":
                    if "{" not in row["uriTemplate"]:
                        raise Problem("%s: uriTemplate has no {variable}" % where)
                    if "{" in row["uriTemplate"].split("}")[-1]:
                        raise Problem("%s: uriTemplate: only one {variable} is supported" % where)
                out[tname].append(row)
    names = [p["name"] for p in out["prompts"]]
    if len(names) != len(set(names)):
        raise Problem("worker/tools/fixtures/prompts.json: prompt names must be unique")
    return out


# ---------------------------------------------------------------- C output

def c_string(s, indent="        "):
    """A C string literal (split into pieces of ~90 characters) for any text: quotes,
    backslashes, control and non-ASCII bytes escaped (octal, so a following digit cannot
    extend the escape), '?' after '?' escaped (no trigraphs)."""
    toks = []
    prev = ""
    for ch in s:
        if ch == '"':
            t = '\\"'
        elif ch == "\\":
            t = "\\\\"
        elif ch == "\n":
            t = "\\n"
        elif ch == "\t":
            t = "\\t"
        elif ch == "?" and prev == "?":
            t = "\\?"
        elif 0x20 <= ord(ch) < 0x7f:
            t = ch
        else:
            t = "".join("\\%03o" % b for b in ch.encode("utf-8"))
        toks.append(t)
        prev = ch
    # pieces of at most ~90 characters, cut after a ',' or ' ' where one is near the end
    pieces, cur, cut = [], [], 0
    for t in toks:
        cur.append(t)
        if t in (",", " "):
            cut = len(cur)
        if sum(map(len, cur)) > 90:
            k = cut if cut > len(cur) - 30 else len(cur)
            pieces.append("".join(cur[:k]))
            cur, cut = cur[k:], 0
    pieces.append("".join(cur))
    if len(pieces) == 1:
        return '"%s"' % pieces[0]
    return ("\n" + indent).join('"%s"' % p for p in pieces)


def compact_json(v):
    return json.dumps(v, ensure_ascii=False, separators=(",", ":"))


SCOPE_C = {"read": "TOOL_SCOPE_READ", "write": "TOOL_SCOPE_WRITE", "admin": "TOOL_SCOPE_ADMIN"}
RATE_C = {None: "TOOL_RATE_AUTO", "read": "TOOL_RATE_READ", "write": "TOOL_RATE_WRITE"}
HINT_C = {"readOnlyHint": "TOOL_HINT_READONLY", "destructiveHint": "TOOL_HINT_DESTRUCTIVE",
          "idempotentHint": "TOOL_HINT_IDEMPOTENT", "openWorldHint": "TOOL_HINT_OPENWORLD"}


def gen_c(tools, fixtures):
    o = []
    w = o.append
    w("/* Generated by worker/tools/gen_registry.py from worker/tools/<category>/<name>.json: do not edit. */")
    w("#include \"fixtures.h\"")
    w("#include \"tool.h\"")
    w("#include \"tool_handlers.h\"")
    w("")
    w("#include <stddef.h>")
    w("")
    w("/* Schemas are data; ISO C's 4095-character minimum for literals does not apply here. */")
    w("#pragma GCC diagnostic ignored \"-Woverlength-strings\"")
    w("")
    for i, t in enumerate(tools):
        if t["action_scopes"]:
            w("static const struct tool_action_scope actions_%d[] = {" % i)
            for a, sc in t["action_scopes"].items():
                w("    {%s, %s}," % (c_string(a), SCOPE_C[sc]))
            w("};")
        if t["argument_scopes"]:
            w("static const struct tool_action_scope arguments_%d[] = {" % i)
            for a, sc in t["argument_scopes"].items():
                w("    {%s, %s}," % (c_string(a), SCOPE_C[sc]))
            w("};")
        if t["rules"]:
            w("static const char *const rules_%d[] = {" % i)
            for r in t["rules"]:
                # parenthesised: a rule split over several literals is one element, which
                # clang's -Wstring-concatenation (an error under --werror) wants said
                w("    (%s)," % c_string(r, "    "))
            w("};")
    w("")
    w("const struct tool_def tool_defs[] = {")
    for i, t in enumerate(tools):
        hints = [HINT_C[k] for k in HINTS if t["annotations"][k]]
        w("    {")
        w("        .name = %s," % c_string(t["name"]))
        w("        .title = %s," % c_string(t["title"]))
        w("        .description = %s," % c_string(t["description"]))
        w("        .input_schema = %s," % c_string(compact_json(t["inputSchema"])))
        if t["outputSchema"] is not None:
            w("        .output_schema = %s," % c_string(compact_json(t["outputSchema"])))
        w("        .hints = %s," % (" | ".join(hints) if hints else "0"))
        w("        .scope = %s," % SCOPE_C[t["scope"]])
        if t["handler"] == "sql":
            w("        .handler = tool_sql_handler,")
            w("        .sql = %s," % c_string("SELECT %s($1::jsonb, $2)" % t["sql_function"]))
        else:
            w("        .handler = %s," % t["handler"][2:])
        w("        .fixture = %s," % ("true" if t["fixture"] else "false"))
        w("        .category = %s," % c_string(t["category"]))
        w("        .source = %s," % c_string(t["source"]))
        w("        .rate_class = %s," % RATE_C[t["rate_class"]])
        if t["replica_ok"]:
            w("        .replica_ok = true,")
        if t["action_scopes"]:
            w("        .action_scopes = actions_%d," % i)
            w("        .n_action_scopes = %d," % len(t["action_scopes"]))
        if t["argument_scopes"]:
            w("        .argument_scopes = arguments_%d," % i)
            w("        .n_argument_scopes = %d," % len(t["argument_scopes"]))
        if t["rules"]:
            w("        .rules = rules_%d," % i)
            w("        .n_rules = %d," % len(t["rules"]))
        w("    },")
    w("};")
    w("const size_t tool_defs_n = %d;" % len(tools))
    w("")
    # fixture resources, templates, prompts (served only with mcp.conformance_fixtures)
    w("const struct fixture_resource fixture_resources[] = {")
    for r in fixtures["resources"]:
        w("    {%s, %s, %s, %s, %s, %s, %s}," % (
            c_string(r["uri"]), c_string(r["name"]), c_string(r["title"]),
            c_string(r["description"]), c_string(r["mimeType"]),
            c_string(r["text"]) if "text" in r else "NULL",
            c_string(r["blob"]) if "blob" in r else "NULL"))
    w("    {NULL, NULL, NULL, NULL, NULL, NULL, NULL},")
    w("};")
    w("const size_t fixture_resources_n = %d;" % len(fixtures["resources"]))
    for i in range(len(fixtures["templates"])):
        w("static int template_read_%d(const char *uri, struct jbuf *out)" % i)
        w("{")
        w("    return fixture_template_expand(&fixture_templates[%d], uri, out);" % i)
        w("}")
    w("const struct fixture_template fixture_templates[] = {")
    for i, r in enumerate(fixtures["templates"]):
        w("    {%s, %s, %s, %s, %s, %s, template_read_%d}," % (
            c_string(r["uriTemplate"]), c_string(r["name"]), c_string(r["title"]),
            c_string(r["description"]), c_string(r["mimeType"]), c_string(r["text"]), i))
    w("    {NULL, NULL, NULL, NULL, NULL, NULL, NULL},")
    w("};")
    w("const size_t fixture_templates_n = %d;" % len(fixtures["templates"]))
    for i in range(len(fixtures["prompts"])):
        w("static int prompt_get_%d(yajl_val args, struct jbuf *out, char *err, size_t errlen)" %
          i)
        w("{")
        w("    return fixture_prompt_expand(&fixture_prompts[%d], args, out, err, errlen);" % i)
        w("}")
    w("const struct fixture_prompt fixture_prompts[] = {")
    for i, p in enumerate(fixtures["prompts"]):
        args = p.get("arguments")
        w("    {%s, %s, %s, %s, %s, prompt_get_%d}," % (
            c_string(p["name"]), c_string(p["title"]), c_string(p["description"]),
            c_string(compact_json(args)) if args else "NULL",
            c_string(compact_json(p["messages"])), i))
    w("    {NULL, NULL, NULL, NULL, NULL, NULL},")
    w("};")
    w("const size_t fixture_prompts_n = %d;" % len(fixtures["prompts"]))
    return "\n".join(o) + "\n"


def gen_h(tools):
    syms = sorted({t["handler"][2:] for t in tools if t["handler"].startswith("c:")})
    o = ["/* Generated by worker/tools/gen_registry.py: the C tool handlers named by",
         " * \"handler\": \"c:<symbol>\" in worker/tools/<category>/<name>.json. Do not edit. */",
         "#ifndef CSMCP_TOOL_HANDLERS_H", "#define CSMCP_TOOL_HANDLERS_H", "",
         "struct tool_call;", ""]
    o += ["void %s(struct tool_call *tc);" % s for s in syms]
    o += ["", "#endif"]
    return "\n".join(o) + "\n"


def gen_stubs(tools):
    """For unit tests that link tools_gen.c without the worker: every handler as a no-op."""
    syms = sorted({t["handler"][2:] for t in tools if t["handler"].startswith("c:")})
    o = ["/* Generated by worker/tools/gen_registry.py: no-op handlers, so that unit tests can",
         " * link the generated tool table (tools_gen.c) without the worker. Never in a binary",
         " * that serves requests. */",
         "#include \"tool.h\"", "#include \"tool_handlers.h\"", ""]
    for sym in ["tool_sql_handler"] + syms:
        o += ["void %s(struct tool_call *tc)" % sym, "{", "    (void)tc;", "}", ""]
    return "\n".join(o)


def gen_inventory(tools):
    inv = []
    for t in tools:
        inv.append({
            "name": t["name"],
            "category": t["category"],
            "source": t["source"],
            "title": t["title"],
            "scope": t["scope"],
            "action_scopes": t["action_scopes"],
            "argument_scopes": t["argument_scopes"],
            "rate_class": t["rate_class"],
            "annotations": t["annotations"],
            "handler": t["handler"],
            "sql_function": t["sql_function"],
            "fixture": t["fixture"],
            "parameters": sorted(t["inputSchema"].get("properties", {})),
            "required": t["inputSchema"].get("required", []),
            "rules": len(t["rules"]),
            "replica_ok": t["replica_ok"],
        })
    return json.dumps({"generated_by": "worker/tools/gen_registry.py", "tools": inv},
                      indent=1, ensure_ascii=False) + "\n"


def write_if_changed(path, text):
    try:
        with open(path, encoding="utf-8") as f:
            if f.read() == text:
                return
    except OSError:
        pass
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def dep_escape(p):
    return p.replace("\\", "\\\\").replace(" ", "\\ ").replace("#", "\\#").replace("$", "$$")


def collect(tools_dir, root, handler_files):
    """Loads and validates everything; returns (tools, fixtures, inputs read)."""
    inputs = []
    shared_path = os.path.join(tools_dir, "shared.json")
    shared = {}
    if os.path.exists(shared_path):
        shared = load_json(shared_path, os.path.relpath(shared_path, root))
        inputs.append(shared_path)
        if not isinstance(shared, dict) or not all(isinstance(v, dict) for v in shared.values()):
            raise Problem("%s: must be an object of named schema fragments (objects)" %
                          os.path.relpath(shared_path, root))
    symbols = c_symbols(handler_files)
    tools, problems = [], []
    for dirpath, dirnames, filenames in os.walk(tools_dir):
        dirnames.sort()
        inputs.append(dirpath)
        rel_dir = os.path.relpath(dirpath, tools_dir)
        for fn in sorted(filenames):
            if not fn.endswith(".json"):
                continue
            path = os.path.join(dirpath, fn)
            rel = os.path.relpath(path, root)
            inputs.append(path)
            if rel_dir == ".":
                if fn != "shared.json":
                    problems.append("%s: tool files go in worker/tools/<category>/<name>.json" %
                                    rel)
                continue
            if os.sep in rel_dir or not CATEGORY_RE.match(rel_dir):
                problems.append("%s: tool files go exactly one directory deep, in "
                                "worker/tools/<category>/ with category [a-z][a-z0-9_]*" % rel)
                continue
            if rel_dir == "fixtures" and fn in FIXTURE_TABLES:
                continue
            try:
                tools.append(validate_tool(path, rel, rel_dir, load_json(path, rel), shared,
                                           symbols))
            except Problem as e:
                problems.append(str(e))
    seen = {}
    for t in tools:
        if t["name"] in seen:
            problems.append("%s: tool %r is already defined in %s" %
                            (t["source"], t["name"], seen[t["name"]]))
        seen[t["name"]] = t["source"]
    try:
        fixtures = validate_fixture_tables(tools_dir, root)
    except Problem as e:
        problems.append(str(e))
        fixtures = None
    if problems:
        raise Problem("\n".join(problems))
    # listing order: category, then name (fixtures first: conformance clients list them)
    tools.sort(key=lambda t: (t["category"] != "fixtures", t["category"], t["name"]))
    return tools, fixtures, inputs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tools-dir", help="worker/tools in the source tree")
    ap.add_argument("--root", help="the source root (paths in messages are relative to it)")
    ap.add_argument("--out-dir", help="where to write the outputs")
    ap.add_argument("--depfile", help="Makefile-style depfile to write")
    ap.add_argument("--dep-target", help="the output the depfile names (default: tools_gen.c)")
    ap.add_argument("--check", action="store_true", help="validate only, write nothing")
    ap.add_argument("--format", nargs="+", metavar="FILE", help="re-layout tool JSON files")
    ap.add_argument("handlers", nargs="*", help="C files that define the c: handlers")
    a = ap.parse_args()
    if a.format:
        for p in a.format:
            write_if_changed(p, layout(load_json(p)) + "\n")
        return 0
    here = os.path.dirname(os.path.abspath(__file__))
    tools_dir = os.path.abspath(a.tools_dir or here)
    root = os.path.abspath(a.root or os.path.join(tools_dir, "..", ".."))
    handlers = a.handlers
    if not handlers:  # by hand (--check): every C file under worker/tools
        handlers = sorted(os.path.join(d, f) for d, _, fs in os.walk(tools_dir) for f in fs
                          if f.endswith(".c") and f != "sqltool.c")
    try:
        tools, fixtures, inputs = collect(tools_dir, root, handlers)
    except Problem as e:
        for line in str(e).split("\n"):
            print("tool registry: %s" % line, file=sys.stderr)
        return 1
    if a.check:
        print("tool registry: %d tools OK" % len(tools))
        return 0
    out = a.out_dir or "."
    write_if_changed(os.path.join(out, "tools_gen.c"), gen_c(tools, fixtures))
    write_if_changed(os.path.join(out, "tool_handlers.h"), gen_h(tools))
    write_if_changed(os.path.join(out, "tools_inventory.json"), gen_inventory(tools))
    write_if_changed(os.path.join(out, "tool_handler_stubs.c"), gen_stubs(tools))
    if a.depfile:
        deps = list(dict.fromkeys(inputs + [os.path.abspath(h) for h in handlers] +
                                  [os.path.abspath(__file__)]))
        target = a.dep_target or os.path.join(out, "tools_gen.c")
        with open(a.depfile, "w") as f:
            f.write("%s: %s\n" % (dep_escape(target), " \\\n ".join(dep_escape(p) for p in deps)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
