"""The communication workflow through the official TypeScript SDK client (pinned in tests/client):
send_personalized_email to the enterprise tier (dry run, then send with SendGrid enabled: one
queued outbox row per recipient) -> get_status -> conduct_executive_review schedule / prepare
(briefing equal to the account's rows) / complete. The expected recipient count is computed here
in SQL; the outbox rows the send made are checked and removed afterwards (nothing is delivered:
no monitor runs in this test)."""
import random

import data_util as du
import lib


class CommunicationSdkWorkflowTest(lib.TestCase):
    def test_workflow_through_typescript_sdk(self):
        url = lib.database_url()
        p = du.prefix()
        cid = "%s_sdk" % p
        du.psql(url, (
            "INSERT INTO accounts (client_id, client_name, company_name, tier, health_score) "
            "VALUES ('{c}', 'Park', 'Park Industries', 'enterprise', 68);"
            "INSERT INTO contacts (client_id, name, email, is_primary) VALUES ('{c}', 'Kim Park', 'kim@{d}.test', true);"
            "INSERT INTO support_tickets (ticket_id, client_id, subject, description, priority, status, requester_email, "
            "requester_name, sla_first_response_minutes, sla_resolution_minutes) VALUES "
            "('TKT-{t}', '{c}', 's', 'd', 'P1', 'open', 'kim@{d}.test', "
            "'Kim', 60, 600);"
            "INSERT INTO expansion_opportunities (opportunity_id, client_id, name, expansion_type, estimated_value, "
            "probability, stage) VALUES ('OPP-{c}', '{c}', 'Audit add-on', 'cross_sell', 40000, 0.5, 'qualified');"
            "INSERT INTO usage_daily (client_id, day, active_users, events, session_minutes) "
            "SELECT '{c}', csmcp.today() - i, 6, 40, 30 FROM generate_series(0, 9) i;"
        ).format(c=cid, d=cid.replace("_", "-"), t=random.randint(900000000, 990000000)))
        expected = du.psql(url, "SELECT count(*) FROM accounts a JOIN contacts c ON c.client_id = a.client_id "
                                "AND c.is_primary AND NOT c.unsubscribed WHERE a.tier = 'enterprise'")
        before = du.psql(url, "SELECT coalesce((SELECT enabled::text FROM integrations WHERE channel = 'sendgrid'), 'absent')")
        du.psql(url, "INSERT INTO integrations (channel, enabled) VALUES ('sendgrid', true) "
                     "ON CONFLICT (channel) DO UPDATE SET enabled = true")
        try:
            rc, out = lib.run_sdk_workflow("communication_sdk_workflow.mjs", cid, expected)
        finally:
            if before == "absent":
                du.psql(url, "DELETE FROM integrations WHERE channel = 'sendgrid'")
            else:
                du.psql(url, "UPDATE integrations SET enabled = %s WHERE channel = 'sendgrid'" % before)
            rows = du.psql(url, "SELECT count(*) || ' ' || count(*) FILTER (WHERE o.state = 'queued') FROM email_campaigns e "
                                "JOIN email_messages m USING (campaign_id) JOIN outbox o ON o.id = m.outbox_id "
                                "WHERE e.name = 'Enterprise update %s'" % cid)
            du.psql(url, "DELETE FROM outbox WHERE ref IN (SELECT campaign_id FROM email_campaigns "
                         "WHERE name = 'Enterprise update {c}'); DELETE FROM email_campaigns WHERE name = "
                         "'Enterprise update {c}'; DELETE FROM accounts WHERE client_id = '{c}'".format(c=cid))
        self.assertEqual(rc, 0, out)
        self.assertIn("8 passed, 0 failed", out)
        self.assertEqual(rows, "%s %s" % (expected, expected))
