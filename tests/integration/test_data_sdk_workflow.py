"""The data workflow through the official TypeScript SDK client (pinned in tests/client):
register -> ingest usage -> calculate health -> overview -> list with filters -> timeline,
exact values, structuredContent validated against outputSchema by the SDK."""
import lib


class DataSdkWorkflowTest(lib.TestCase):
    def test_workflow_through_typescript_sdk(self):
        rc, out = lib.run_sdk_workflow("data_sdk_workflow.mjs")
        self.assertEqual(rc, 0, out)
        self.assertIn("7 passed, 0 failed", out)
