"""Bulk sends are bounded (issue 16): a campaign or newsletter with more than 500 recipients is
stored as 'preparing' with a send job, and the communication tick stores 500 recipients per
transaction (csmcp.comm_send_chunk) in (client_id, contact_id) order after the job's cursor,
reporting progress; the result has exactly one message per eligible recipient; repeating chunks
(a crash between chunk and cursor, simulated by rewinding the cursor) stores nobody twice."""
import json
import time

import data_util as du
import lib


class BulkSendTest(lib.TestCase):
    N = 1200  # contacts of the fixture account; every 100th opted out of email -> 1188 recipients

    @classmethod
    def setUpClass(cls):
        cls.url = lib.database_url()
        cls.p = du.prefix()
        du.psql(cls.url, (
            "INSERT INTO accounts (client_id, client_name, company_name, tier) VALUES ('{p}_big', 'Big Co', 'Big Co Ltd', "
            "'enterprise');"
            "INSERT INTO contacts (client_id, name, email, is_primary, unsubscribed) "
            "SELECT '{p}_big', 'Person ' || i, 'p' || i || '@big-{p}.test', i = 1, i % 100 = 0 "
            "FROM generate_series(1, {n}) i").format(p=cls.p, n=cls.N))
        cls.sg = du.psql(cls.url, "SELECT coalesce((SELECT enabled::text FROM integrations WHERE channel = 'sendgrid'), 'absent')")
        du.psql(cls.url, "INSERT INTO integrations (channel, enabled) VALUES ('sendgrid', false) "
                         "ON CONFLICT (channel) DO UPDATE SET enabled = false")
        cls.d = lib.Csmcpd(workers=1).start()
        cls.s = cls.d.session()

    @classmethod
    def tearDownClass(cls):
        cls.s.close()
        cls.d.stop()
        if cls.sg == "absent":
            du.psql(cls.url, "DELETE FROM integrations WHERE channel = 'sendgrid'")
        else:
            du.psql(cls.url, "UPDATE integrations SET enabled = %s WHERE channel = 'sendgrid'" % cls.sg)
        du.psql(cls.url, "DELETE FROM newsletters WHERE created_by = '{p}'; DELETE FROM email_campaigns WHERE name = 'Bulk {p}';"
                         "DELETE FROM accounts WHERE client_id = '{p}_big'".format(p=cls.p))

    def q(self, sql):
        return du.psql(self.url, sql)

    def drain(self, job_filter):
        """Runs chunks until the job is done; returns [(stored, seconds)] per chunk."""
        out = []
        for _ in range(20):
            if self.q("SELECT state FROM comm_send_jobs WHERE %s ORDER BY job_id DESC LIMIT 1" % job_filter) == "done":
                return out
            t0 = time.monotonic()
            r = json.loads(self.q("SELECT csmcp.comm_send_chunk()") or "null")
            out.append((r and r["stored"], round(time.monotonic() - t0, 3)))
        self.fail("job not done after 20 chunks")

    def test_campaign_in_chunks_with_progress_and_idempotent(self):
        out = self.s.call_ok("send_personalized_email", {
            "campaign_name": "Bulk %s" % self.p, "template_type": "newsletter", "subject_line": "Hi {{first_name}}",
            "body_text": "Dear {{contact_name}}", "sender_email": "news@csmcp.test", "target_client_ids": ["%s_big" % self.p],
            "all_contacts": True, "send_immediately": True})
        cid = out["campaign_id"]
        self.assertEqual((out["status"], out["targeting"]["recipients"], out["targeting"]["unsubscribed_excluded"]),
                         ("preparing", 1188, 12))
        self.assertEqual((out["progress"]["estimated"], out["progress"]["prepared"], out["progress"]["state"]),
                         (1188, 0, "running"))
        self.assertEqual(len(out["preview"]), 3)
        self.assertEqual(self.q("SELECT count(*) FROM email_messages WHERE campaign_id = '%s'" % cid), "0")
        chunks = self.drain("campaign_id = '%s'" % cid)
        print("campaign chunks (stored, s):", chunks)
        self.assertEqual([c[0] for c in chunks], [500, 500, 188])
        st = self.s.call_ok("send_personalized_email", {"action": "get_status", "campaign_id": cid})
        self.assertEqual((st["status"], st["recipients"], st["progress"]["prepared"], st["progress"]["chunks"],
                          st["progress"]["state"], st["delivery"]["by_state"]["not_configured"]),
                         ("sent", 1188, 1188, 3, "done", 1188))
        self.assertEqual(self.q("SELECT count(*) || ' ' || count(DISTINCT contact_id) || ' ' || "
                                "count(*) FILTER (WHERE email LIKE 'p%%00@%%') FROM email_messages WHERE campaign_id = '%s'"
                                % cid), "1188 1188 0")
        self.assertEqual(self.q("SELECT count(*) FROM communications WHERE campaign_id = '%s'" % cid), "1188")
        # a crash after storing a chunk but before the cursor moved = the chunk runs again: nobody twice
        self.q("UPDATE comm_send_jobs SET state = 'running', cursor_client = NULL, cursor_contact = NULL, finished_at = NULL "
               "WHERE campaign_id = '%s'" % cid)
        self.assertEqual([c[0] for c in self.drain("campaign_id = '%s'" % cid)], [0, 0, 0])
        self.assertEqual(self.q("SELECT count(*) FROM email_messages WHERE campaign_id = '%s'" % cid), "1188")
        self.assertEqual(self.q("SELECT prepared FROM comm_send_jobs WHERE campaign_id = '%s'" % cid), "1188")

    def test_newsletter_in_chunks(self):
        # every fixture contact subscribes (the primary is subscribed by default)
        self.q("INSERT INTO newsletter_contact_subscriptions (contact_id, client_id, subscribed) "
               "SELECT contact_id, client_id, true FROM contacts WHERE client_id = '%s_big' "
               "ON CONFLICT (contact_id) DO UPDATE SET subscribed = true" % self.p)
        expected = int(self.q(
            "SELECT count(*) FROM accounts a JOIN contacts c ON c.client_id = a.client_id "
            "WHERE a.tier = 'enterprise' AND a.status <> 'churned' AND NOT c.unsubscribed "
            "AND coalesce((SELECT s.subscribed FROM newsletter_contact_subscriptions s WHERE s.contact_id = c.contact_id), "
            "c.is_primary)"))
        self.assertGreater(expected, 1188)
        out = self.s.call_ok("automate_newsletters", {
            "action": "create_newsletter", "newsletter_name": "Big %s" % self.p, "subject_line": "News",
            "created_by": self.p, "send_to_all": False, "target_tiers": ["enterprise"],
            "sections": [{"type": "tip", "title": "T", "content": "C"}],
            "scheduled_send": "2099-01-01T09:00:00Z", "sender_email": "news@csmcp.test"})
        n = out["newsletter"]
        self.assertEqual((n["status"], n["progress"]["estimated"], n["progress"]["prepared"]), ("preparing", expected, 0))
        chunks = self.drain("newsletter_id = '%s'" % n["newsletter_id"])
        print("newsletter chunks (stored, s):", chunks)
        self.assertEqual(sum(c[0] for c in chunks), expected)
        got = self.s.call_ok("automate_newsletters", {"action": "get_newsletter", "newsletter_id": n["newsletter_id"]})
        g = got["newsletter"]
        self.assertEqual((g["status"], g["recipient_count"], g["delivery"]["scheduled"], g["progress"]["state"]),
                         ("scheduled", expected, expected, "done"))
