"""The onboarding workflow through the official TypeScript SDK client (pinned in tests/client):
register_client -> create_onboarding_plan -> activate_onboarding_automation ->
deliver_training_session with scores -> manage_certification_program issue ->
update_onboarding_progress -> track_onboarding_progress, exact values, structuredContent
validated against outputSchema by the SDK (onboarding_sdk_workflow.mjs)."""
import importlib.util
import os
import subprocess

import data_util as du
import lib

CLIENT_DIR = os.path.join(lib.ROOT, "tests", "client")


class OnboardingSdkWorkflowTest(lib.TestCase):
    def test_workflow_through_typescript_sdk(self):
        spec = importlib.util.spec_from_file_location("csmcp_client_run",
                                                      os.path.join(CLIENT_DIR, "run.py"))
        client_run = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(client_run)
        client_run.npm_install()
        sdk = os.path.join(CLIENT_DIR, "node_modules", "@modelcontextprotocol", "sdk", "dist",
                           "esm")
        url = lib.database_url()
        tag = du.prefix()
        module = tag + "_mod"
        du.psql(url, "INSERT INTO training_modules (module_id, name, format, certification_level, "
                     "duration_minutes, passing_score) VALUES ('%s', 'SDK module', 'live_webinar', "
                     "'basic', 60, 0.75)" % module)
        with lib.Csmcpd(workers=2) as d:
            p = subprocess.run([client_run.NODE,
                                os.path.join(os.path.dirname(__file__), "onboarding_sdk_workflow.mjs"),
                                "http://127.0.0.1:%d/mcp" % d.port, sdk, module, tag],
                               capture_output=True, text=True, timeout=180)
        out = p.stdout + p.stderr
        self.assertEqual(p.returncode, 0, out)
        self.assertIn("8 passed, 0 failed", out)


if __name__ == "__main__":
    lib.main()
