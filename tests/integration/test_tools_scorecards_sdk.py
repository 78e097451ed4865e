"""The scorecards workflow (issue 24) through the official TypeScript SDK client (pinned in
tests/client): resolve_account -> manage_health_scorecards -> calculate_health_score ->
explain_health_score -> override_health_score (list_clients, prioritize_portfolio) ->
manage_account_hierarchy -> review_outbound_messages (sendgrid requires approval here: the
e-mail waits, is edited and approved) -> clear; exact values, structuredContent validated
against outputSchema by the SDK."""
import re

import data_util as du
import lib


class ScorecardsSdkWorkflowTest(lib.TestCase):
    def test_workflow_through_typescript_sdk(self):
        url = lib.database_url()
        saved = du.psql(url, "SELECT coalesce(json_agg(i), '[]') FROM integrations i")
        du.psql(url, "INSERT INTO integrations (channel, enabled, settings) VALUES "
                     "('sendgrid', true, '{\"require_approval\": true}') ON CONFLICT (channel) DO UPDATE "
                     "SET enabled = true, settings = excluded.settings")
        try:
            rc, out = lib.run_sdk_workflow("scorecards_sdk_workflow.mjs")
        finally:
            du.psql(url, "DELETE FROM integrations; INSERT INTO integrations SELECT * FROM "
                         "json_populate_recordset(NULL::integrations, '%s')" % saved.replace("'", "''"))
        self.assertEqual(rc, 0, out)
        self.assertIn("11 passed, 0 failed", out)
        m = re.search(r"ids (\S+) (\S+) (\d+)", out)
        self.assertIsNotNone(m, out)
        a, b, mid = m.group(1), m.group(2), int(m.group(3))
        # what the SDK client saw is what the database holds: the edited e-mail approved, not sent
        # (no monitor delivers here), its record edited too; the review audited
        self.assertEqual(du.psql(url, "SELECT state || '|' || (payload #>> '{body,content,0,value}') || '|' || "
                                      "(original_payload #>> '{body,content,0,value}') FROM outbox WHERE id = %d" % mid),
                         "queued|Dear Ada, thank you|Dear Ada Alpha")
        self.assertEqual(du.psql(url, "SELECT string_agg(action, ',' ORDER BY activity_id) FROM activity_log "
                                      "WHERE entity = 'outbound_message' AND entity_id = '%d'" % mid),
                         "edit_outbound_message,approve_outbound_message")
        du.psql(url, "DELETE FROM outbox WHERE id = %d" % mid)
        du.psql(url, "DELETE FROM accounts WHERE client_id IN ('%s', '%s')" % (a, b))
        du.psql(url, "DELETE FROM health_scorecards WHERE criteria ->> 'industry' LIKE 'Scwf scwf%%'")
