"""The retention workflow through the official TypeScript SDK client (pinned in tests/client):
usage falls -> calculate_health_score -> identify_churn_risk lists the account ->
execute_retention_campaign -> manage_escalations create/resolve/close -> score_risk_factors,
exact values, structuredContent validated against outputSchema by the SDK."""
import lib


class RetentionSdkWorkflowTest(lib.TestCase):
    def test_workflow_through_typescript_sdk(self):
        rc, out = lib.run_sdk_workflow("retention_sdk_workflow.mjs")
        self.assertEqual(rc, 0, out)
        self.assertIn("7 passed, 0 failed", out)
