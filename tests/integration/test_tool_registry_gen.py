"""worker/tools/gen_registry.py, the build step that turns worker/tools/<category>/<name>.json
into the worker's tool table: each kind of bad definition fails the build with the file named and
the problem said, and the generated C carries any text (quotes, backslashes, newlines, non-ASCII,
'??', '*/') exactly. Runs the generator on scratch trees; needs a C compiler, no services."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import lib

GEN = os.path.join(lib.ROOT, "worker", "tools", "gen_registry.py")

GOOD = {
    "name": "probe_tool",
    "title": "Probe",
    "description": "A probe.",
    "scope": "write",
    "action_scopes": {"list": "read"},
    "annotations": {"readOnlyHint": False, "destructiveHint": False, "idempotentHint": False,
                    "openWorldHint": False},
    "inputSchema": {"type": "object", "additionalProperties": False,
                    "properties": {"action": {"enum": ["list", "create"]},
                                   "client_id": {"$ref": "#/shared/client_id",
                                                 "description": "the account"}}},
    "outputSchema": {"type": "object", "properties": {"ok": {"type": "boolean"}}},
    "rules": ["a rule"],
}
SHARED = {"client_id": {"type": "string", "pattern": "^[a-z]+$", "description": "generic"}}
HANDLER_C = "void probe_handler(struct tool_call *tc)\n{\n}\n"


class Generator(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="csmcp-gen-")
        self.root = os.path.join(self.dir, "src")
        self.tools = os.path.join(self.root, "worker", "tools")
        os.makedirs(os.path.join(self.tools, "cat"))
        self.write("shared.json", SHARED)
        self.handlers = os.path.join(self.dir, "handlers.c")
        with open(self.handlers, "w") as f:
            f.write(HANDLER_C)

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def write(self, rel, obj):
        path = os.path.join(self.tools, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(obj if isinstance(obj, str) else json.dumps(obj))
        return path

    def run_gen(self, *extra):
        out = os.path.join(self.dir, "out")
        os.makedirs(out, exist_ok=True)
        return subprocess.run([sys.executable, GEN, "--tools-dir", self.tools, "--root", self.root,
                               "--out-dir", out, "--depfile", os.path.join(out, "d"),
                               self.handlers] + list(extra),
                              capture_output=True, text=True, timeout=60)

    def assert_fails(self, rel, obj, *needles):
        self.write(rel, obj)
        r = self.run_gen()
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("worker/tools/%s" % rel, r.stderr)
        for n in needles:
            self.assertIn(n, r.stderr)
        return r.stderr

    def variant(self, **kw):
        d = json.loads(json.dumps(GOOD))
        for k, v in kw.items():
            if v is None:
                d.pop(k, None)
            else:
                d[k] = v
        return d

    def test_good_definition_and_outputs(self):
        self.write("cat/probe_tool.json", GOOD)
        r = self.run_gen()
        self.assertEqual(r.returncode, 0, r.stderr)
        out = os.path.join(self.dir, "out")
        inv = json.load(open(os.path.join(out, "tools_inventory.json")))["tools"]
        self.assertEqual(inv[0]["name"], "probe_tool")
        self.assertEqual(inv[0]["source"], "worker/tools/cat/probe_tool.json")
        self.assertEqual(inv[0]["action_scopes"], {"list": "read"})
        self.assertEqual(inv[0]["sql_function"], "csmcp.tool_probe_tool")
        c = open(os.path.join(out, "tools_gen.c")).read().replace('"\n        "', "")
        self.assertIn("SELECT csmcp.tool_probe_tool($1::jsonb, $2)", c)
        # the shared fragment, with the sibling description laid over it
        self.assertIn('\\"pattern\\":\\"^[a-z]+$\\",\\"description\\":\\"the account\\"', c)
        dep = open(os.path.join(out, "d")).read()
        self.assertIn(os.path.join(self.tools, "cat"), dep)  # a new file in it re-runs the step
        self.assertIn(os.path.join(self.tools, "cat", "probe_tool.json"), dep)
        # unchanged outputs are not rewritten (nothing downstream rebuilds)
        m = os.stat(os.path.join(out, "tools_gen.c")).st_mtime_ns
        self.assertEqual(self.run_gen().returncode, 0)
        self.assertEqual(os.stat(os.path.join(out, "tools_gen.c")).st_mtime_ns, m)

    def test_each_problem_is_named(self):
        cases = [
            ("cat/probe_tool.json", "{\n  \"name\": \n}", ["invalid JSON", ":3:"]),
            ("cat/probe_tool.json", self.variant(description=None), ["'description' is missing"]),
            ("cat/probe_tool.json", self.variant(extra=1), ["unknown key(s) 'extra'"]),
            ("cat/other_name.json", GOOD, ["must equal the file name"]),
            ("cat/probe_tool.json", self.variant(name="bad name!"), ["must match"]),
            ("cat/probe_tool.json", self.variant(scope="root"), ["scope 'root'"]),
            ("cat/probe_tool.json", self.variant(rate_class="fast"), ["rate_class 'fast'"]),
            ("cat/probe_tool.json", self.variant(inputSchema=[]), ["inputSchema must be a JSON"]),
            ("cat/probe_tool.json", self.variant(inputSchema={"type": "object"}),
             ["additionalProperties"]),
            ("cat/probe_tool.json", self.variant(outputSchema=None), ["outputSchema is required"]),
            ("cat/probe_tool.json", self.variant(inputSchema={
                "type": "object", "additionalProperties": False,
                "properties": {"action": {"enum": ["list"]}, "x": {"$ref": "#/shared/nope"}}}),
             ["no fragment 'nope'"]),
            ("cat/probe_tool.json", self.variant(inputSchema={
                "type": "object", "additionalProperties": False,
                "properties": {"action": {"enum": ["list"]}, "x": {"$ref": "#/$defs/nope"}}}),
             ["$ref #/$defs/nope does not resolve"]),
            ("cat/probe_tool.json", self.variant(action_scopes={"delete": "admin"}),
             ["'delete' is not a value of action's enum"]),
            ("cat/probe_tool.json", self.variant(action_scopes={"list": "owner"}),
             ["action_scopes.list"]),
            ("cat/probe_tool.json", self.variant(action_scopes=None, argument_scopes={"nope": "admin"}),
             ["argument_scopes: 'nope' is not a property of inputSchema"]),
            ("cat/probe_tool.json", self.variant(action_scopes=None, argument_scopes={"client_id": "read"}),
             ["does not raise the tool's scope"]),
            ("cat/probe_tool.json", self.variant(argument_scopes={"client_id": "admin"}),
             ["argument_scopes and action_scopes cannot be combined"]),
            ("cat/probe_tool.json", self.variant(handler="c:missing_fn"),
             ["no function `void missing_fn(struct tool_call *tc)`"]),
            ("cat/probe_tool.json", self.variant(handler="perl"), ["must be \"sql\""]),
            ("cat/probe_tool.json", self.variant(rules=["two\nlines"]), ["one line per entry"]),
            ("cat/probe_tool.json", self.variant(annotations={"readOnlyHint": True}),
             ["destructiveHint must be true or false"]),
            ("cat/probe_tool.json", self.variant(fixture=True), ["worker/tools/fixtures/"]),
            ("cat/probe_tool.json", self.variant(annotations=dict(
                GOOD["annotations"], readOnlyHint=True)), ["needs the write scope"]),
            ("cat/probe_tool.json", self.variant(scope="read", action_scopes=None),
             ["must set annotations.readOnlyHint true"]),
            ("cat/probe_tool.json", self.variant(scope="read", action_scopes=None, annotations=dict(
                GOOD["annotations"], readOnlyHint=True, destructiveHint=True)),
             ["cannot both be true"]),
            ("stray.json", GOOD, ["go in worker/tools/<category>/<name>.json"]),
            ("cat/deeper/probe_tool.json", GOOD, ["exactly one directory deep"]),
        ]
        for rel, obj, needles in cases:
            with self.subTest(rel=rel, needles=needles):
                shutil.rmtree(self.tools)
                os.makedirs(os.path.join(self.tools, "cat"))
                self.write("shared.json", SHARED)
                self.assert_fails(rel, obj, *needles)

    def test_duplicate_names_across_categories(self):
        self.write("cat/probe_tool.json", GOOD)
        err = self.assert_fails("dog/probe_tool.json", GOOD, "already defined in")
        self.assertIn("worker/tools/cat/probe_tool.json", err)

    def test_c_handler_and_escaping_compile_exactly(self):
        tricky = 'q"uote \\back\\slash\nnew\tline é—€ ??= */ /* %s %% \\x41 {id}'
        d = self.variant(description=tricky, title="T ??( é", handler="c:probe_handler",
                         rules=["rule with \"quotes\" and \\ and é", "second"])
        d["inputSchema"]["properties"]["s"] = {"type": "string", "description": tricky}
        self.write("cat/probe_tool.json", d)
        r = self.run_gen()
        self.assertEqual(r.returncode, 0, r.stderr)
        out = os.path.join(self.dir, "out")
        self.assertIn("void probe_handler(struct tool_call *tc);",
                      open(os.path.join(out, "tool_handlers.h")).read())
        main_c = os.path.join(self.dir, "main.c")
        with open(main_c, "w") as f:
            f.write(r'''#include <stdio.h>
#include "fixtures.h"
#include "tool.h"
int fixture_template_expand(const struct fixture_template *t, const char *uri, struct jbuf *o)
{ (void)t; (void)uri; (void)o; return -1; }
int fixture_prompt_expand(const struct fixture_prompt *p, yajl_val a, struct jbuf *o, char *e,
                          size_t n) { (void)p; (void)a; (void)o; (void)e; (void)n; return -1; }
void probe_handler(struct tool_call *tc) { (void)tc; }
int main(void)
{
    const struct tool_def *d = &tool_defs[0];
    printf("%s\n%s\n%s\n%s\n%s\n%zu %d %s\n", d->description, d->title, d->rules[0], d->rules[1],
           d->input_schema, tool_defs_n, d->handler == probe_handler, d->sql ? d->sql : "-");
    return 0;
}
''')
        exe = os.path.join(self.dir, "probe")
        inc = ["-I" + os.path.join(lib.ROOT, p) for p in ("worker", "common", "proto")]
        cc = subprocess.run(["cc", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-Wpedantic",
                             "-I" + out] + inc + [main_c, os.path.join(out, "tools_gen.c"),
                                                  "-o", exe],
                            capture_output=True, text=True, timeout=120)
        self.assertEqual(cc.returncode, 0, cc.stderr)
        got = subprocess.run([exe], capture_output=True, timeout=10).stdout.decode("utf-8")
        lines = got.split("\n")
        self.assertEqual("\n".join(lines[0:2]), tricky)
        self.assertEqual(lines[2], "T ??( é")
        self.assertEqual(lines[3], 'rule with "quotes" and \\ and é')
        self.assertEqual(lines[4], "second")
        schema = json.loads(lines[5])
        self.assertEqual(schema["properties"]["s"]["description"], tricky)
        self.assertEqual(lines[6], "1 1 -")


if __name__ == "__main__":
    unittest.main()
