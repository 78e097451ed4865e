"""POST /hooks/sendgrid (issue 16): SendGrid's Signed Event Webhook (ECDSA P-256 over timestamp +
body, headers X-Twilio-Email-Event-Webhook-Signature / -Timestamp) verified against the public key
of integrations.sendgrid_webhook_public_key_file. The key pair is generated here with the openssl
CLI; SendGrid's verification key format (base64 DER) and PEM are both loaded. Signed batches are
recorded once per sg_event_id and show in automate_newsletters track_performance; a bad, missing,
wrong-key or stale (outside the replay window) signature is 401 and records nothing; without a key
configured the route is 404."""
import base64
import json
import os
import re
import subprocess
import tempfile
import time

import data_util as du
import lib


def openssl(*args, data=None):
    return subprocess.run(["openssl", *args], input=data, capture_output=True, check=True).stdout


def keypair(tmp, name):
    """(private key PEM path, public key as SendGrid shows it: base64 of the DER SubjectPublicKeyInfo)."""
    priv = os.path.join(tmp, name + ".pem")
    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", priv)
    der = openssl("ec", "-in", priv, "-pubout", "-outform", "DER")
    return priv, base64.b64encode(der).decode()


def sign(priv, ts, raw):
    """SendGrid's scheme: base64(DER ECDSA-SHA256 signature of timestamp || payload)."""
    return base64.b64encode(openssl("dgst", "-sha256", "-sign", priv, data=ts.encode() + raw)).decode()


class SendgridWebhookTest(lib.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.url = lib.database_url()
        cls.p = du.prefix()
        cls.nid = "newsletter_1_" + re.sub("[^a-z0-9_]", "_", cls.p.lower())
        cls.tmp = tempfile.mkdtemp()
        cls.priv, pub = keypair(cls.tmp, "sendgrid")
        cls.other, _ = keypair(cls.tmp, "other")
        path = os.path.join(cls.tmp, "sendgrid-webhook.pub")
        with open(path, "w") as f:
            f.write(pub + "\n")
        du.psql(cls.url, (
            "INSERT INTO accounts (client_id, client_name, company_name, tier) VALUES ('{p}_a', 'Hook A', 'Hook A Ltd', 'starter');"
            "INSERT INTO newsletters (newsletter_id, name, subject_line, created_by) VALUES ('{nid}', 'Hook {p}', 'S', '{p}');"
            "INSERT INTO email_messages (newsletter_id, client_id, email, subject, body_text, state) "
            "SELECT '{nid}', '{p}_a', 'r' || i || '@hook-a.test', 'S', 'B', 'not_configured' FROM generate_series(1, 2) i"
        ).format(p=cls.p, nid=cls.nid))
        cls.mids = du.psql(cls.url, "SELECT string_agg(message_id::text, ',' ORDER BY message_id) FROM email_messages "
                                    "WHERE newsletter_id = '%s'" % cls.nid).split(",")
        cls.d = lib.Csmcpd(workers=1, conf={"integrations": {"sendgrid_webhook_public_key_file": path,
                                                                 "sendgrid_webhook_max_age_s": 300}}).start()
        cls.s = cls.d.session()

    @classmethod
    def tearDownClass(cls):
        cls.s.close()
        cls.d.stop()
        du.psql(cls.url, "DELETE FROM newsletters WHERE newsletter_id = '%s'; DELETE FROM accounts WHERE client_id = '%s_a'"
                % (cls.nid, cls.p))

    def post(self, body, sig=None, key=None, ts=None, raw=None):
        raw = raw if raw is not None else json.dumps(body).encode()
        ts = ts if ts is not None else str(int(time.time()))
        h = {"Content-Type": "application/json"}
        if sig is None:
            sig = sign(key or self.priv, ts, raw)
        if sig:
            h["X-Twilio-Email-Event-Webhook-Signature"] = sig
        if ts:
            h["X-Twilio-Email-Event-Webhook-Timestamp"] = ts
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
        self.assertEqual(self.post(bad, sig="MEUCIQ" + "A" * 90)[0], 401)  # well-formed base64, not a signature
        self.assertEqual(self.post(bad, sig="")[0], 401)  # unsigned
        self.assertEqual(self.post(bad, ts="")[0], 401)  # no timestamp header
        self.assertEqual(self.post(bad, key=self.other)[0], 401)  # signed with another key
        now = str(int(time.time()))
        good_sig = sign(self.priv, now, json.dumps(bad).encode())
        # the signature covers the timestamp: the same signature with another timestamp fails
        self.assertEqual(self.post(bad, sig=good_sig, ts=str(int(now) - 1))[0], 401)
        # ... and the body: one changed byte fails
        tampered = json.dumps(bad).encode().replace(b"open", b"opeN")
        self.assertEqual(self.post(None, sig=good_sig, ts=now, raw=tampered)[0], 401)
        # replay window (300 s): a correctly signed but stale or future request is refused
        old = str(int(time.time()) - 301)
        st, _, body = self.post(bad, ts=old)
        self.assertEqual((st, json.loads(body)["error"]), (401, "timestamp outside the replay window"))
        self.assertEqual(self.post(bad, ts=str(int(time.time()) + 301))[0], 401)
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

    def test_unsubscribe_event_opts_the_contact_out(self):
        """A SendGrid unsubscribe of a newsletter message unsubscribes its contact from the newsletters;
        a spam report of a campaign message opts the contact out of all email."""
        du.psql(self.url, (
            "INSERT INTO contacts (client_id, name, email, is_primary) VALUES ('{p}_a', 'Una Sub', 'una@hook-a.test', true), "
            "('{p}_a', 'Sam Spam', 'sam@hook-a.test', false);"
            "INSERT INTO email_campaigns (campaign_id, name, template_type, subject_line, body_text, sender_email, created_by) "
            "VALUES ('campaign_1_{p}', 'c', 'custom', 's', 'b', 'cs@csmcp.test', '{p}');"
            "INSERT INTO email_messages (newsletter_id, client_id, contact_id, email, subject, body_text, state) "
            "SELECT '{nid}', '{p}_a', contact_id, email, 'S', 'B', 'not_configured' FROM contacts WHERE email = 'una@hook-a.test';"
            "INSERT INTO email_messages (campaign_id, client_id, contact_id, email, subject, body_text, state) "
            "SELECT 'campaign_1_{p}', '{p}_a', contact_id, email, 'S', 'B', 'not_configured' FROM contacts "
            "WHERE email = 'sam@hook-a.test'").format(p=self.p, nid=self.nid))
        una = du.psql(self.url, "SELECT message_id FROM email_messages WHERE email = 'una@hook-a.test'")
        sam = du.psql(self.url, "SELECT message_id FROM email_messages WHERE email = 'sam@hook-a.test'")
        st, _, body = self.post([{"sg_event_id": "%s-u1" % self.p, "event": "unsubscribe", "csmcp_message_id": una},
                                 {"sg_event_id": "%s-u2" % self.p, "event": "spamreport", "csmcp_message_id": sam}])
        self.assertEqual((st, json.loads(body)["recorded"]), (200, 2))
        self.assertEqual(du.psql(self.url, "SELECT c.email || ':' || coalesce(s.subscribed::text, '-') || ':' || c.unsubscribed "
                                           "FROM contacts c LEFT JOIN newsletter_contact_subscriptions s USING (contact_id) "
                                           "WHERE c.client_id = '%s_a' ORDER BY c.email" % self.p),
                         "sam@hook-a.test:-:true\nuna@hook-a.test:false:false")
        du.psql(self.url, "DELETE FROM email_campaigns WHERE campaign_id = 'campaign_1_%s'" % self.p)

    def test_not_configured_is_404(self):
        d = lib.Csmcpd(workers=1).start()
        try:
            st, _, _ = lib.http_request(d.port, "POST", "/hooks/sendgrid", body=b"[]",
                                        headers={"X-Twilio-Email-Event-Webhook-Signature": "AA==",
                                                 "X-Twilio-Email-Event-Webhook-Timestamp": str(int(time.time()))})
            self.assertEqual(st, 404)
        finally:
            d.stop()


    def test_pem_key_accepted(self):
        """The same key in PEM form; a batch signed with it is accepted (nothing to record: ignored)."""
        pem = os.path.join(self.tmp, "sendgrid-pub.pem")
        with open(pem, "wb") as f:
            f.write(openssl("ec", "-in", self.priv, "-pubout"))
        d = lib.Csmcpd(workers=1, conf={"integrations": {"sendgrid_webhook_public_key_file": pem}}).start()
        try:
            raw = json.dumps([{"sg_event_id": "%s-pem" % self.p, "event": "open"}]).encode()
            ts = str(int(time.time()))
            st, _, body = lib.http_request(d.port, "POST", "/hooks/sendgrid", body=raw, headers={
                "X-Twilio-Email-Event-Webhook-Signature": sign(self.priv, ts, raw),
                "X-Twilio-Email-Event-Webhook-Timestamp": ts})
            self.assertEqual((st, json.loads(body)), (200, {"recorded": 0, "duplicates": 0, "ignored": 1}))
        finally:
            d.stop()
