"""csmcp-worker --tools-markdown (owner: core): the tool reference generated from the registry
(docs/tools.md) names every non-fixture tool with its scope, annotations and parameters."""
import os
import re
import subprocess
import tempfile
import unittest

import lib
import toolinv


class ToolsMarkdown(lib.TestCase):
    def test_reference_covers_every_tool(self):
        with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
            f.write("mcp = { conformance_fixtures = true; };\n")
            conf = f.name
        try:
            r = subprocess.run([lib.WORKER, "-c", conf, "--tools-markdown"], capture_output=True,
                               text=True, timeout=60, env=dict(os.environ))
        finally:
            os.unlink(conf)
        self.assertEqual(r.returncode, 0, r.stderr)
        md = r.stdout
        sections = re.findall(r"^## `([A-Za-z0-9_.-]+)`", md, re.M)
        self.assertEqual(len(sections), len(set(sections)))
        # fixtures are never documented as product tools
        self.assertFalse([s for s in sections if s.startswith("test_")], sections)
        self.assertNotIn("json_schema_2020_12_tool", sections)
        m = re.search(r"^_(\d+) tools\._$", md, re.M)
        self.assertIsNotNone(m)
        self.assertEqual(int(m.group(1)), len(sections))
        for name in sections:
            self.assertIn("](#%s)" % name, md)  # in the index
        # a tool with action_scopes lists the scope of every value of its action enum
        inv = {t["name"]: t for t in toolinv.tools()}
        for name, t in inv.items():
            if not t["action_scopes"]:
                continue
            block = md.split("## `%s`" % name, 1)[1].split("\n## `", 1)[0]
            line = re.search(r"^- Scope: by `action`:(.*)$", block, re.M).group(1)
            for action, scope in t["action_scopes"].items():
                self.assertRegex(line, r"`%s`[^;]* %s(;|$)" % (re.escape(action), scope))
        for block in md.split("\n## `")[1:]:
            self.assertRegex(block, r"- Scope: (`(read|write|admin)`|by `action`: `)")
            self.assertIn("readOnlyHint=", block)
            self.assertIn("**Parameters**", block)


if __name__ == "__main__":
    unittest.main()
