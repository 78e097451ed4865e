"""Delivery of send_personalized_email's messages by the monitor process against a local fake
SendGrid (the Fake of test_monitor_outbox.py): the campaign's messages go queued -> (HTTP 500,
retried) -> sent, each accepted exactly once under its idempotency key email_message:<id>, with
the rendered recipient, subject and body and the Bearer key; get_status reports them sent.
Other tests' queued rows are parked meanwhile so the fake sees only ours."""
import json
import os
import tempfile

import data_util as du
import lib
from test_monitor_outbox import Fake, write_secret


class CampaignDeliveryTest(lib.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.url = lib.database_url()
        cls.p = du.prefix()
        cls.saved_int = du.psql(cls.url, "SELECT coalesce(json_agg(i), '[]') FROM integrations i")
        cls.saved_mon = du.psql(cls.url, "SELECT json_agg(json_build_object('name', name, 'enabled', enabled)) FROM monitors")
        du.psql(cls.url, "UPDATE monitors SET enabled = false")
        du.psql(cls.url, "UPDATE outbox SET next_attempt_at = now() + interval '1 day' "
                         "WHERE state IN ('queued', 'failed', 'sending')")
        du.psql(cls.url, "INSERT INTO integrations (channel, enabled) VALUES ('sendgrid', true) "
                         "ON CONFLICT (channel) DO UPDATE SET enabled = true")
        du.psql(cls.url, ("INSERT INTO accounts (client_id, client_name, company_name, tier) VALUES "
                          "('{p}_1', 'One', 'One Ltd', 'starter'), ('{p}_2', 'Two', 'Two Ltd', 'starter');"
                          "INSERT INTO contacts (client_id, name, email, is_primary, unsubscribed) VALUES "
                          "('{p}_1', 'Ann One', 'ann@one-{p}.test', true, false), "
                          "('{p}_1', 'Al Out', 'al@one-{p}.test', false, true), "
                          "('{p}_2', 'Ben Two', 'ben@two-{p}.test', true, false), "
                          "('{p}_2', 'Bo Two', 'bo@two-{p}.test', false, false)").format(p=cls.p))
        cls.fake = Fake("sendgrid", 0.5)
        cls.sec = tempfile.mkdtemp(prefix="csmcp-comms-")
        cls.key = "SG.comms-" + cls.p
        integ = {"sendgrid_url": cls.fake.url(), "sendgrid_key_file": write_secret(cls.sec, "sendgrid", cls.key),
                 "timeout_ms": 500, "backoff_base_ms": 200, "backoff_max_ms": 1000, "max_attempts": 25,
                 "breaker_open_seconds": 1}
        cls.d = lib.Csmcpd(workers=1, conf={"monitor": {"enabled": True, "tick_ms": 100}, "integrations": integ}).start()
        cls.s = cls.d.session()

    @classmethod
    def tearDownClass(cls):
        cls.s.close()
        cls.d.stop()
        cls.fake.stop()
        du.psql(cls.url, "DELETE FROM integrations; INSERT INTO integrations SELECT * FROM "
                         "json_populate_recordset(NULL::integrations, '%s')" % cls.saved_int.replace("'", "''"))
        du.psql(cls.url, "UPDATE monitors m SET enabled = (x->>'enabled')::boolean FROM json_array_elements('%s'::json) x "
                         "WHERE m.name = x->>'name'" % cls.saved_mon.replace("'", "''"))
        du.psql(cls.url, "UPDATE outbox SET next_attempt_at = now() WHERE state IN ('queued', 'failed', 'sending') "
                         "AND next_attempt_at > now() + interval '12 hours'")
        du.psql(cls.url, "DELETE FROM outbox WHERE client_id LIKE '{p}\\_%'; DELETE FROM email_campaigns WHERE name = "
                         "'Delivery {p}'; DELETE FROM accounts WHERE client_id LIKE '{p}\\_%'".format(p=cls.p))

    def q(self, sql):
        return du.psql(self.url, sql)

    def test_queued_then_500_then_retry_then_sent_once(self):
        self.fake.mode = "fail"
        out = self.s.call_ok("send_personalized_email", {
            "campaign_name": "Delivery %s" % self.p, "template_type": "health_check",
            "subject_line": "{{first_name}}, your health check", "body_text": "Hi {{contact_name}} at {{company_name}}",
            "sender_email": "success@csmcp.test", "target_client_ids": ["%s_1" % self.p, "%s_2" % self.p],
            "all_contacts": True, "send_immediately": True})
        cid = out["campaign_id"]
        self.assertEqual((out["targeting"]["recipients"], out["targeting"]["unsubscribed_excluded"]), (3, 1))
        self.assertEqual(out["delivery"]["by_state"]["queued"], 3)
        keys = self.q("SELECT string_agg(o.idempotency_key, ',' ORDER BY m.email) FROM email_messages m "
                      "JOIN outbox o ON o.id = m.outbox_id WHERE m.campaign_id = '%s'" % cid).split(",")
        self.assertEqual(len(keys), 3)
        # every message is attempted and refused (HTTP 500) at least once: failed, retried later
        lib.wait_until(lambda: all(any(a[1] == k and a[2] == 500 for a in self.fake.attempts) for k in keys), 30,
                       what="a 500 for each message")
        st = self.s.call_ok("send_personalized_email", {"action": "get_status", "campaign_id": cid})
        self.assertEqual(st["delivery"]["by_state"]["sent"], 0)
        self.assertEqual(st["delivery"]["by_state"]["queued"] + st["delivery"]["by_state"]["failed"]
                         + st["delivery"]["by_state"]["sending"], 3)
        self.fake.mode = "ok"
        lib.wait_until(lambda: self.q("SELECT count(*) FROM outbox WHERE idempotency_key IN (%s) AND state = 'sent'"
                                      % ",".join("'%s'" % k for k in keys)) == "3", 30, what="3 sent")
        st = self.s.call_ok("send_personalized_email", {"action": "get_status", "campaign_id": cid})
        self.assertEqual(st["delivery"]["by_state"],
                         {"scheduled": 0, "queued": 0, "pending_approval": 0, "sending": 0, "sent": 3, "failed": 0, "dead": 0,
                          "suppressed": 0, "not_configured": 0})
        with self.fake.lock:
            accepted = {k: n for k, n in self.fake.accepted.items() if k in keys}
            reqs = {k: self.fake.requests[k] for k in keys}
        self.assertEqual(accepted, {k: 1 for k in keys}, "each message accepted exactly once")
        got = []
        for k in keys:
            method, path, headers, body = reqs[k]
            self.assertEqual((method, path), ("POST", "/v3/mail/send"))
            self.assertEqual(headers.get("Authorization"), "Bearer " + self.key)
            b = json.loads(body)
            got.append((b["personalizations"][0]["to"][0]["email"], b["subject"], b["content"][0]["value"]))
        self.assertEqual(got, [("ann@one-%s.test" % self.p, "Ann, your health check", "Hi Ann One at One Ltd"),
                               ("ben@two-%s.test" % self.p, "Ben, your health check", "Hi Ben Two at Two Ltd"),
                               ("bo@two-%s.test" % self.p, "Bo, your health check", "Hi Bo Two at Two Ltd")])
        self.assertGreaterEqual(int(self.q("SELECT min(attempts) FROM outbox WHERE idempotency_key IN (%s)"
                                           % ",".join("'%s'" % k for k in keys))), 2)
