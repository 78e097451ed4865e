"""The generated reference docs match the code they are generated from."""
import os
import subprocess
import unittest

import lib


class GeneratedDocs(unittest.TestCase):
    def check(self, doc, cmd):
        with open(os.path.join(lib.ROOT, "docs", doc)) as f:
            text = f.read()
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=True).stdout
        self.assertIn(out, text, "docs/%s is stale: run scripts/gen-docs" % doc)

    def test_configuration_reference_is_current(self):
        self.check("configuration.md", [lib.CSMCPD, "--print-keys"])

    def test_tool_reference_is_current(self):
        self.check("tools.md", [lib.WORKER, "--tools-markdown"])
