"""The feedback workflow through the official TypeScript SDK client (pinned in tests/client):
collect_feedback x5 -> analyze_feedback_sentiment exact counts -> share_product_insights with
their ids -> manage_voice_of_customer loop, roadmap and report, structuredContent validated
against outputSchema by the SDK."""
import lib


class FeedbackSdkWorkflowTest(lib.TestCase):
    def test_workflow_through_typescript_sdk(self):
        rc, out = lib.run_sdk_workflow("feedback_sdk_workflow.mjs")
        self.assertEqual(rc, 0, out)
        self.assertIn("5 passed, 0 failed", out)
