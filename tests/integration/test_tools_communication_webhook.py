"""POST /hooks/sendgrid (issue 16): signed SendGrid Event Webhook batches are recorded once per
sg_event_id and show in automate_newsletters track_performance; a badly signed or unsigned
request is refused with 401 and records nothing; without the secret configured the route is 404."""
import hashlib
import hmac
import json
import os
import re
import tempfile

import data_util as du
import lib

SECRET = "whsec-" + "7f3a9c1e5b2d4f6a8c0e2b4d6f8a1c3e"


class SendgridWebhookTest(lib.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.url = lib.database_url()
        cls.p = du.prefix()
        cls.nid = "newsletter_1_" + re.sub("[^a-z0-9_]", "_", cls.p.lower())
        cls.tmp = tempfile.mkdtemp()
        path = os.path.join(cls.tmp, "sendgrid-webhook.key")
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(SECRET)
        du.psql(cls.url, (
            "INSERT INTO accounts (client_id, client_name, company_name, tier) VALUES ('{p}_a', 'Hook A', 'Hook A Ltd', 'starter');"
            "INSERT INTO newsletters (newsletter_id, name, subject_line, created_by) VALUES ('{nid}', 'Hook {p}', 'S', '{p}');"
            "INSERT INTO email_messages (newsletter_id, client_id, email, subject, body_text, state) "
            "SELECT '{nid}', '{p}_a', 'r' || i || '@hook-a.test', 'S', 'B', 'not_configured' FROM generate_series(1, 2) i"
        ).format(p=cls.p, nid=cls.nid))
        cls.mids = du.psql(cls.url, "SELECT string_agg(message_id::text, ',' ORDER BY message_id) FROM email_messages "
                                    "WHERE newsletter_id = '%s'" % cls.nid).split(",")
        cls.d = lib.Csmcpd(workers=1, conf={"integrations": {"sendgrid_webhook_secret_file": path}}).start()
        cls.s = cls.d.session()

    @classmethod
    def tearDownClass(cls):
        cls.s.close()
        cls.d.stop()
        du.psql(cls.url, "DELETE FROM newsletters WHERE newsletter_id = '%s'; DELETE FROM accounts WHERE client_id = '%s_a'"
                % (cls.nid, cls.p))

    def post(self, body, sig=None, key=SECRET):
        raw = json.dumps(body).encode()
        h = {"Content-Type": "application/json"}
        if sig is None:
            sig = hmac.new(key.encode(), raw, hashlib.sha256).hexdigest()
        if sig:
            h["X-Csmcp-Signature"] = sig
        return lib.http_request(self.d.port, "POST", "/hooks/sendgrid", body=raw, headers=h)

    def test_signed_batches_recorded_once_and_counted(self):
        m1, m2 = self.mids
        ev = lambda i, m, e: {"sg_event_id": "%s-%d" % (self.p, i), "event": e, "csmcp_message_id": m,
                              "timestamp": 1764750000 + i, "email": "r@hook-a.test"}
        batch = [ev(1, m1, "delivered"), ev(2, m1, "open"), ev(3, m1, "click"), ev(4, m2, "delivered"),
                 ev(5, m2, "bounce"), {"sg_event_id": "%s-6" % self.p, "event": "open"},  # no message id: ignored
                 ev(7, "999999999999", "open")]  # unknown message: ignored
        st, _, body = self.post(batch)
        self.assertEqual(st, 200, body)
        self.assertEqual(json.loads(body), {"recorded": 5, "duplicates": 0, "ignored": 2})
        st, _, body = self.post(batch[:3])  # SendGrid retries: idempotent per sg_event_id
        self.assertEqual((st, json.loads(body)), (200, {"recorded": 0, "duplicates": 3, "ignored": 0}))
        # badly signed, unsigned, wrong key: 401, nothing recorded
        bad = [ev(8, m2, "open")]
        self.assertEqual(self.post(bad, sig="00" * 32)[0], 401)
        self.assertEqual(self.post(bad, sig="")[0], 401)
        self.assertEqual(self.post(bad, key="another-secret")[0], 401)
        self.assertEqual(du.psql(self.url, "SELECT count(*) FROM email_events WHERE event_key = '%s-8'" % self.p), "0")
        self.assertEqual(lib.http_request(self.d.port, "GET", "/hooks/sendgrid")[0], 405)
        st, _, _ = self.post({"not": "an array"})
        self.assertEqual(st, 400)
        self.assertEqual(du.psql(self.url, "SELECT to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') "
                                           "FROM email_events WHERE event_key = '%s-1'" % self.p), "2025-12-03 08:20:01")
        perf = self.s.call_ok("automate_newsletters", {"action": "track_performance",
                                                      "newsletter_id": self.nid})["performance"]
        self.assertEqual((perf["messages"], perf["delivered"], perf["unique_opens"], perf["unique_clicks"], perf["bounced"]),
                         (2, 2, 1, 1, 1))

    def test_not_configured_is_404(self):
        d = lib.Csmcpd(workers=1).start()
        try:
            st, _, _ = lib.http_request(d.port, "POST", "/hooks/sendgrid", body=b"[]",
                                        headers={"X-Csmcp-Signature": "00"})
            self.assertEqual(st, 404)
        finally:
            d.stop()

