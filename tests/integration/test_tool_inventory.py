"""The generated test inventory (build/worker/tools_inventory.json, from worker/tools/): it
is what a running csmcpd serves in tools/list (names, order, titles, annotations, parameters)
and what docs/tools.md documents, and every product tool is called by name by at least one
test. Fixture tools are exercised by the official conformance suite (tests/client/run.sh)."""
import os
import re
import unittest

import lib
import toolinv

TEST_DIRS = ("tests/integration", "tests/client")
TEST_SUFFIXES = (".py", ".mjs", ".js", ".sh")


def test_sources():
    """{path: text} of the test files that run in CI (not the load benchmarks), without this
    file and the tool reference check, which name tools without calling them."""
    skip = {os.path.abspath(__file__), os.path.join(lib.ROOT, "tests/integration/toolinv.py"),
            os.path.join(lib.ROOT, "tests/integration/test_mcp_toolsdoc.py")}
    out = {}
    for d in TEST_DIRS:
        for dirpath, dirnames, filenames in os.walk(os.path.join(lib.ROOT, d)):
            dirnames[:] = [x for x in dirnames if x != "node_modules"]
            for fn in filenames:
                p = os.path.join(dirpath, fn)
                if fn.endswith(TEST_SUFFIXES) and os.path.abspath(p) not in skip:
                    with open(p, encoding="utf-8", errors="replace") as f:
                        out[os.path.relpath(p, lib.ROOT)] = f.read()
    return out


class ToolInventory(unittest.TestCase):
    def test_inventory_is_the_registry(self):
        inv = toolinv.tools(fixtures=True)
        names = [t["name"] for t in inv]
        self.assertEqual(len(names), len(set(names)))
        self.assertGreater(len(toolinv.names()), 0)
        for t in inv:
            path = os.path.join(lib.ROOT, t["source"])
            self.assertTrue(os.path.isfile(path), "%s: no %s" % (t["name"], t["source"]))
            self.assertEqual(t["source"], "worker/tools/%s/%s.json" % (t["category"], t["name"]))
            self.assertIn(t["scope"], ("read", "write", "admin"))
        # the same tools as the reference the worker binary prints (docs/tools.md)
        import subprocess
        md = subprocess.run([lib.WORKER, "--tools-markdown"], capture_output=True, text=True,
                            timeout=60, check=True).stdout
        documented = re.findall(r"^## `([A-Za-z0-9_.-]+)`", md, re.M)
        self.assertEqual(sorted(documented), sorted(toolinv.names()))

    def test_inventory_is_what_tools_list_serves(self):
        with lib.Csmcpd(workers=1, fixtures=True) as d:
            s = d.session()
            try:
                listed, cursor = [], None
                while True:
                    r = s.request("tools/list", {"cursor": cursor} if cursor else {})
                    listed += r["tools"]
                    cursor = r.get("nextCursor")
                    if not cursor:
                        break
            finally:
                s.close()
        inv = toolinv.tools(fixtures=True)
        self.assertEqual([t["name"] for t in listed], [t["name"] for t in inv])  # same order
        for served, t in zip(listed, inv):
            ann = {k: served["annotations"][k] for k in t["annotations"]}
            self.assertEqual(ann, t["annotations"], t["name"])
            self.assertEqual(sorted(served["inputSchema"].get("properties", {})),
                             t["parameters"], t["name"])
            self.assertEqual(served["title"], t["title"], t["name"])

    def test_every_tool_is_called_by_a_test(self):
        sources = test_sources()
        missing = []
        for name in toolinv.names():
            pat = re.compile(r"[\"']%s[\"']" % re.escape(name))
            if not any(pat.search(text) for text in sources.values()):
                missing.append(name)
        self.assertEqual(missing, [], "tools no test under %s calls by name (a tool is three "
                         "files: docs/adding-a-tool.md): %s" % (" or ".join(TEST_DIRS),
                                                                ", ".join(missing)))

if __name__ == "__main__":
    unittest.main()
