"""Outbox delivery by the monitor process (issue 18 §5) against local fake SendGrid, Slack, Zendesk
and webhook servers started by this test.

- 1,000 messages while the fakes fail 30 % of attempts (HTTP 500, a response slower than the
  client timeout, 429 with Retry-After: 1): every message delivered, none accepted twice by
  idempotency key, Retry-After honoured, a reload in the middle loses nothing; the request each
  provider gets (method, path, authentication, body) for each channel.
- The circuit breaker: 5 consecutive failures open it; no request while open
  (integrations.breaker_open_seconds); then one probe; success closes it.
- A 4xx the provider will never accept is dead at once; max_attempts dead-letters the rest.
- The generic webhook's HMAC-SHA256 signature over "<timestamp>.<body>"."""
import base64
import hashlib
import hmac
import http.server
import json
import os
import random
import tempfile
import threading
import time

import data_util as du
import lib

CHANNELS = ("sendgrid", "slack", "zendesk", "webhook")


class Fake:
    """A fake provider: records every attempt; mode decides the answer."""

    def __init__(self, name, timeout_s):
        self.name = name
        self.timeout_s = timeout_s
        self.lock = threading.Lock()
        self.attempts = []        # (time, key, status or 'timeout')
        self.accepted = {}        # key -> count of 2xx answers
        self.requests = {}        # key -> (method, path, headers, body) of the accepted one
        self.refused_429 = {}     # key -> time of the last 429
        self.retry_after_violations = []
        self.mode = "ok"          # ok | flaky | fail | reject
        self.rng = random.Random(hash(name) & 0xffff)  # the fake's failure pattern, not data
        fake = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def handle_one(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                key = self.headers.get("Idempotency-Key", "")
                now = time.time()
                with fake.lock:
                    last = fake.refused_429.get(key)
                    if last is not None and now < last + 1.0 - 0.05:
                        fake.retry_after_violations.append((key, now - last))
                    mode = fake.mode
                    r = fake.rng.random()
                if mode == "fail" or (mode == "flaky" and r < 0.1):
                    status = 500
                elif mode == "flaky" and r < 0.2:
                    time.sleep(fake.timeout_s + 0.3)  # the client has given up by now
                    status = "timeout"
                elif mode == "flaky" and r < 0.3:
                    status = 429
                elif mode == "reject":
                    status = 422
                else:
                    status = 200
                with fake.lock:
                    fake.attempts.append((now, key, status))
                    if status == 429:
                        fake.refused_429[key] = now
                    if status == 200:
                        fake.accepted[key] = fake.accepted.get(key, 0) + 1
                        fake.requests[key] = (self.command, self.path, dict(self.headers), body)
                code = 504 if status == "timeout" else status
                out = b'{"ok":true}' if code == 200 else b'{"error":"fake"}'
                try:
                    self.send_response(code)
                    if code == 429:
                        self.send_header("Retry-After", "1")
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                except OSError:
                    pass

            do_POST = handle_one
            do_PUT = handle_one

        class S(http.server.ThreadingHTTPServer):
            request_queue_size = 256  # the default backlog of 5 drops SYNs under 48 parallel requests

        self.server = S(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def write_secret(d, name, value):
    path = os.path.join(d, name)
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write(value + "\n")
    return path


class OutboxDeliveryTest(lib.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.url = lib.database_url()
        cls.p = du.prefix()
        cls.saved_int = du.psql(cls.url, "SELECT coalesce(json_agg(i), '[]') FROM integrations i")
        cls.saved_mon = du.psql(cls.url, "SELECT json_agg(json_build_object('name', name, 'enabled', enabled)) FROM monitors")
        du.psql(cls.url, "UPDATE monitors SET enabled = false")  # no alert notifications meanwhile
        # rows of other tests would be delivered to our fakes too: park them
        du.psql(cls.url, "UPDATE outbox SET next_attempt_at = now() + interval '1 day' "
                         "WHERE state IN ('queued', 'failed', 'sending')")
        du.psql(cls.url, "INSERT INTO integrations (channel, enabled) VALUES %s ON CONFLICT (channel) DO UPDATE "
                         "SET enabled = true" % ", ".join("('%s', true)" % c for c in CHANNELS))
        cls.timeout_s = 0.5
        cls.fakes = {c: Fake(c, cls.timeout_s) for c in CHANNELS}
        cls.sec = tempfile.mkdtemp(prefix="csmcp-outbox-")
        cls.hmac_secret = "whsec-" + cls.p
        integ = {
            "sendgrid_url": cls.fakes["sendgrid"].url(),
            "sendgrid_key_file": write_secret(cls.sec, "sendgrid", "SG.key-" + cls.p),
            "zendesk_url": cls.fakes["zendesk"].url(),
            "zendesk_credential_file": write_secret(cls.sec, "zendesk", "agent@example.com/token:zd-" + cls.p),
            "slack_webhook_file": write_secret(cls.sec, "slack", cls.fakes["slack"].url() + "/services/T0/B0/x"),
            "webhook_url": cls.fakes["webhook"].url() + "/hook",
            "webhook_secret_file": write_secret(cls.sec, "webhook", cls.hmac_secret),
            "timeout_ms": int(cls.timeout_s * 1000), "backoff_base_ms": 200, "backoff_max_ms": 2000,
            "max_attempts": 25, "breaker_open_seconds": 1, "max_in_flight": 48,
        }
        cls.d = lib.Csmcpd(workers=1, conf={"monitor": {"enabled": True, "tick_ms": 100},
                                            "integrations": integ}).start()

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        for f in cls.fakes.values():
            f.stop()
        du.psql(cls.url, "DELETE FROM integrations; INSERT INTO integrations SELECT * FROM "
                         "json_populate_recordset(NULL::integrations, '%s')" % cls.saved_int.replace("'", "''"))
        du.psql(cls.url, "UPDATE monitors m SET enabled = (x->>'enabled')::boolean FROM json_array_elements('%s'::json) x "
                         "WHERE m.name = x->>'name'" % cls.saved_mon.replace("'", "''"))
        du.psql(cls.url, "UPDATE outbox SET next_attempt_at = now() WHERE state IN ('queued', 'failed', 'sending') "
                         "AND next_attempt_at > now() + interval '12 hours'")

    def q(self, sql):
        return du.psql(self.url, sql)

    def enqueue(self, tag, n_by_channel):
        """Queues messages through csmcp.outbox_enqueue; returns {key: channel}."""
        keys = {}
        stmts = []
        for ch, n in n_by_channel.items():
            for i in range(n):
                key = "%s-%s-%s-%d" % (self.p, tag, ch, i)
                keys[key] = ch
                if ch == "sendgrid":
                    payload = {"body": {"personalizations": [{"to": [{"email": "c%d@example.com" % i}]}],
                                        "from": {"email": "cs@example.com"}, "subject": "Hello %d" % i,
                                        "content": [{"type": "text/plain", "value": "Body %d" % i}]}}
                elif ch == "slack":
                    payload = {"text": "Alert %d" % i, "alert": {"n": i}}
                elif ch == "zendesk":
                    payload = {"operation": "create_ticket", "external_id": "TKT-%d" % i,
                               "ticket": {"subject": "S%d" % i, "priority": "normal"},
                               "comment": {"body": "D%d" % i, "public": True}}
                else:
                    payload = {"event": "alert.opened", "n": i}
                stmts.append("SELECT csmcp.outbox_enqueue('%s', '%s'::jsonb, '%s', 'test', NULL, NULL)"
                             % (ch, json.dumps(payload).replace("'", "''"), key))
        for i in range(0, len(stmts), 200):
            self.q(";\n".join(stmts[i:i + 200]))
        return keys

    def wait_delivered(self, keys, timeout):
        klist = ", ".join("'%s'" % k for k in keys)

        def done():
            return self.q("SELECT count(*) FROM outbox WHERE idempotency_key IN (%s) AND state IN ('sent', 'dead')"
                          % klist) == str(len(keys))
        lib.wait_until(done, timeout, what="%d messages delivered" % len(keys))

    # ------------------------------------------------------------ the 1,000

    def test_1000_messages_flaky_providers_with_reload(self):
        for f in self.fakes.values():
            f.mode = "flaky"
        keys = self.enqueue("bulk", {"sendgrid": 400, "slack": 300, "zendesk": 300})
        # a reload while delivering: the old monitor finishes its requests, the new one continues
        lib.wait_until(lambda: sum(len(self.fakes[c].accepted) for c in ("sendgrid", "slack", "zendesk")) >= 200,
                       60, what="200 deliveries")
        r = self.d.ctl("reload", "--wait")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.wait_delivered(keys, 180)
        for f in self.fakes.values():
            f.mode = "ok"
        time.sleep(1)  # a fake still sleeping on a timed-out attempt records it
        states = self.q("SELECT state, count(*) FROM outbox WHERE idempotency_key LIKE '%s-bulk-%%' GROUP BY 1" % self.p)
        self.assertEqual(states, "sent|1000")
        accepted = {}
        for c in ("sendgrid", "slack", "zendesk"):
            for k, n in self.fakes[c].accepted.items():
                if k.startswith(self.p + "-bulk-"):
                    accepted[k] = accepted.get(k, 0) + n
                    self.assertEqual(keys[k], c, "delivered to the wrong channel")
        self.assertEqual(set(accepted), set(keys), "every message accepted")
        self.assertEqual([k for k, n in accepted.items() if n != 1], [], "accepted twice")
        # the fakes did fail about 30 % of attempts, of each kind
        att = [a for c in ("sendgrid", "slack", "zendesk") for a in self.fakes[c].attempts if a[1] in keys]
        kinds = {s: sum(1 for a in att if a[2] == s) for s in (200, 500, 429, "timeout")}
        self.assertEqual(kinds[200], 1000)
        self.assertGreater(kinds[500] + kinds[429] + kinds["timeout"], 250, kinds)
        self.assertTrue(all(kinds[s] > 50 for s in (500, 429, "timeout")), kinds)
        for c in ("sendgrid", "slack", "zendesk"):
            self.assertEqual(self.fakes[c].retry_after_violations, [], "%s: retried before Retry-After" % c)
        # attempts recorded = attempts the fakes saw (a timeout counts; nothing was lost or extra)
        rec = int(self.q("SELECT sum(attempts) FROM outbox WHERE idempotency_key LIKE '%s-bulk-%%'" % self.p))
        self.assertEqual(rec, len(att))
        # per-channel metrics
        _, _, body = self.d.admin("/metrics")
        text = body.decode()
        for c in ("sendgrid", "slack", "zendesk"):
            self.assertIn('csmcp_outbox_deliveries_total{channel="%s",result="sent"}' % c, text)
            self.assertIn('csmcp_outbox_deliveries_total{channel="%s",result="retry"}' % c, text)
        print("\n    1000 messages: attempts %s" % kinds)

    def test_requests_as_each_provider_expects(self):
        for f in self.fakes.values():
            f.mode = "ok"
        keys = self.enqueue("shape", {"sendgrid": 1, "slack": 1, "zendesk": 1, "webhook": 1})
        self.wait_delivered(keys, 30)
        k = lambda ch: "%s-shape-%s-0" % (self.p, ch)  # noqa: E731
        m, path, h, body = self.fakes["sendgrid"].requests[k("sendgrid")]
        self.assertEqual((m, path, h["Authorization"]), ("POST", "/v3/mail/send", "Bearer SG.key-" + self.p))
        self.assertEqual(json.loads(body)["subject"], "Hello 0")
        m, path, h, body = self.fakes["slack"].requests[k("slack")]
        self.assertEqual((m, path), ("POST", "/services/T0/B0/x"))
        self.assertEqual(json.loads(body), {"text": "Alert 0"})
        m, path, h, body = self.fakes["zendesk"].requests[k("zendesk")]
        self.assertEqual((m, path), ("POST", "/api/v2/tickets.json"))
        self.assertEqual(h["Authorization"], "Basic " + base64.b64encode(("agent@example.com/token:zd-" + self.p).encode()).decode())
        self.assertEqual(json.loads(body), {"ticket": {"subject": "S0", "priority": "normal",
                                                       "comment": {"body": "D0", "public": True}}})
        m, path, h, body = self.fakes["webhook"].requests[k("webhook")]
        self.assertEqual((m, path), ("POST", "/hook"))
        sig = hmac.new(self.hmac_secret.encode(), h["X-Csmcp-Timestamp"].encode() + b"." + body, hashlib.sha256).hexdigest()
        self.assertEqual(h["X-Csmcp-Signature"], "v1=" + sig)
        self.assertLess(abs(int(h["X-Csmcp-Timestamp"]) - time.time()), 60)
        # no credential in the log
        log = open(self.d.log_path, encoding="utf-8", errors="replace").read()
        for secret in ("SG.key-" + self.p, "zd-" + self.p, self.hmac_secret, "/services/T0/B0/x"):
            self.assertNotIn(secret, log)

    def test_breaker_opens_probes_and_closes(self):
        f = self.fakes["webhook"]
        f.mode = "fail"
        keys = self.enqueue("brk", {"webhook": 12})
        lib.wait_until(lambda: 'csmcp_outbox_breaker_open{channel="webhook"} 1' in self.d.admin("/metrics")[2].decode(),
                       30, what="webhook breaker open")
        t_open = time.time()
        n_at_open = len([a for a in f.attempts if a[1] in keys])
        time.sleep(0.4)  # breaker_open_seconds = 1: nothing may reach the fake meanwhile
        self.assertEqual(len([a for a in f.attempts if a[1] in keys]), n_at_open, "requests while open")
        # the first 5 failures opened it (a few more may have been in flight at that moment)
        self.assertGreaterEqual(n_at_open, 5)
        # after the open period exactly one probe; it fails -> open again
        lib.wait_until(lambda: len([a for a in f.attempts if a[1] in keys]) > n_at_open, 10, what="probe")
        time.sleep(0.3)
        probe = [a for a in f.attempts if a[1] in keys][n_at_open:]
        self.assertEqual(len(probe), 1, probe)
        self.assertGreaterEqual(probe[0][0] - t_open, 0.25)
        # the provider recovers: the next probe succeeds, the breaker closes, everything is sent
        f.mode = "ok"
        self.wait_delivered(keys, 60)
        self.assertEqual(self.q("SELECT state, count(*) FROM outbox WHERE idempotency_key LIKE '%s-brk-%%' GROUP BY 1" % self.p),
                         "sent|12")
        # metrics reach the supervisor with the monitor's next heartbeat: wait for that snapshot
        # (the rows were already sent above) rather than read the previous one
        lib.wait_until(lambda: 'csmcp_outbox_breaker_open{channel="webhook"} 0'
                       in self.d.admin("/metrics")[2].decode(), 10, what="webhook breaker closed")
        text = self.d.admin("/metrics")[2].decode()
        for to in ("open", "half_open", "closed"):
            self.assertIn('csmcp_outbox_breaker_transitions_total{channel="webhook",to="%s"}' % to, text)

    def test_rejected_is_dead_and_max_attempts_dead_letters(self):
        f = self.fakes["slack"]
        f.mode = "reject"
        keys = self.enqueue("rej", {"slack": 3})
        self.wait_delivered(keys, 30)
        self.assertEqual(self.q("SELECT string_agg(state || ':' || attempts || ':' || last_status, ',') FROM outbox "
                                "WHERE idempotency_key LIKE '%s-rej-%%'" % self.p), "dead:1:422,dead:1:422,dead:1:422")
        f.mode = "ok"
        # max_attempts: a row that has used up its attempts is dead after one more failure
        f.mode = "fail"
        keys = self.enqueue("max", {"slack": 1})
        self.q("UPDATE outbox SET attempts = 24 WHERE idempotency_key IN (%s)" % ", ".join("'%s'" % k for k in keys))
        self.wait_delivered(keys, 30)
        self.assertEqual(self.q("SELECT state || ':' || attempts || ':' || last_status || ':' || (last_error LIKE 'HTTP 500%%') "
                                "FROM outbox WHERE idempotency_key IN (%s)" % ", ".join("'%s'" % k for k in keys)),
                         "dead:25:500:true")
        f.mode = "ok"


if __name__ == "__main__":
    lib.main()
