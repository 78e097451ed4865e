"""The retention workflow through the official TypeScript SDK client (pinned in tests/client):
usage falls -> calculate_health_score -> identify_churn_risk lists the account ->
execute_retention_campaign -> manage_escalations create/resolve/close -> score_risk_factors,
exact values, structuredContent validated against outputSchema by the SDK."""
import importlib.util
import os
import subprocess

import lib

CLIENT_DIR = os.path.join(lib.ROOT, "tests", "client")


class RetentionSdkWorkflowTest(lib.TestCase):
    def test_workflow_through_typescript_sdk(self):
        # tests/client/run.py owns the pinned node and `npm ci`; load it under its own name.
        spec = importlib.util.spec_from_file_location("csmcp_client_run",
                                                      os.path.join(CLIENT_DIR, "run.py"))
        client_run = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(client_run)
        client_run.npm_install()
        sdk = os.path.join(CLIENT_DIR, "node_modules", "@modelcontextprotocol", "sdk", "dist",
                           "esm")
        with lib.Csmcpd(workers=2) as d:
            p = subprocess.run([client_run.NODE, os.path.join(os.path.dirname(__file__),
                                                              "retention_sdk_workflow.mjs"),
                                "http://127.0.0.1:%d/mcp" % d.port, sdk],
                               capture_output=True, text=True, timeout=120)
        out = p.stdout + p.stderr
        self.assertEqual(p.returncode, 0, out)
        self.assertIn("7 passed, 0 failed", out)
