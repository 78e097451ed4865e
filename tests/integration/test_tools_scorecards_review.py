"""review_outbound_messages (issue 24): human approval of outbound messages, end to end through
csmcpd's workers (the tool) and its monitor process (delivery) against local fake SendGrid and
Slack servers.

- sendgrid requires approval (integrations.settings.require_approval), slack does not: the slack
  message is delivered while the e-mails stay pending_approval and the fake SendGrid gets nothing.
- reject never sends; approve sends the original once; edit then approve sends the edited subject
  and text once (the HTML part dropped, email_messages updated, original_payload kept).
- exact states and refusals (not found, already reviewed, rejected, reason required, edit of a
  webhook event / a slack subject, parameters of another action), activity_log old/new rows.
- scopes: a read key lists but may not review; a write key may not either until
  delivery.reviewer_scope = "write" (a reload); an admin key may. Two reviewers racing: one wins."""
import json
import threading
import time

import data_util as du
import lib
import sec_util as su
from test_monitor_outbox import Fake, write_secret

import tempfile


class ReviewOutboundTest(lib.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.url = lib.database_url()
        cls.p = du.prefix()
        p = cls.p
        cls.saved_int = du.psql(cls.url, "SELECT coalesce(json_agg(i), '[]') FROM integrations i")
        cls.saved_mon = du.psql(cls.url, "SELECT coalesce(json_agg(json_build_object('name', name, "
                                         "'enabled', enabled)), '[]') FROM monitors")
        du.psql(cls.url, "UPDATE monitors SET enabled = false")
        # rows of other tests would be delivered to our fakes too: park them
        du.psql(cls.url, "UPDATE outbox SET next_attempt_at = now() + interval '1 day' "
                         "WHERE state IN ('queued', 'failed', 'sending')")
        du.psql(cls.url, "INSERT INTO integrations (channel, enabled, settings) VALUES "
                         "('sendgrid', true, '{\"require_approval\": true}'), ('slack', true, '{}'), "
                         "('webhook', true, '{\"require_approval\": true}') "
                         "ON CONFLICT (channel) DO UPDATE SET enabled = true, settings = excluded.settings")
        du.psql(cls.url, ("INSERT INTO accounts (client_id, client_name, company_name) VALUES "
                          "('{p}_a', 'Rv A', 'Rv A'), ('{p}_b', 'Rv B', 'Rv B');"
                          "INSERT INTO contacts (client_id, name, email, is_primary) VALUES "
                          "('{p}_a', 'Ada Reviewer', 'ada@rv-{p}.test', true)").format(p=p))
        cls.fakes = {c: Fake(c, 1.0) for c in ("sendgrid", "slack")}
        cls.sec = tempfile.mkdtemp(prefix="csmcp-review-")
        integ = {
            "sendgrid_url": cls.fakes["sendgrid"].url(),
            "sendgrid_key_file": write_secret(cls.sec, "sendgrid", "SG.key-" + p),
            "slack_webhook_file": write_secret(cls.sec, "slack", cls.fakes["slack"].url() + "/services/T/B/x"),
            "timeout_ms": 1000, "backoff_base_ms": 200, "backoff_max_ms": 1000,
        }
        cls.d = lib.Csmcpd(workers=1, auth=True,
                           conf={"monitor": {"enabled": True, "tick_ms": 100}, "integrations": integ}).start()
        cls.tok = {s: su.create_key(cls.d.conf_path, s, "rv-%s-%s" % (s.replace(",", ""), p))
                   for s in ("read", "write", "read,write,admin")}
        cls.principal = {s: "key:" + du.psql(cls.url, "SELECT key_id FROM api_keys WHERE name = 'rv-%s-%s'"
                                             % (s.replace(",", ""), p))
                         for s in ("read", "write", "read,write,admin")}
        cls.admin = cls.d.session(token=cls.tok["read,write,admin"])
        r = cls.admin.request("tools/list", {})
        cls.schema = None
        cursor = None
        while cls.schema is None:
            for t in r["tools"]:
                if t["name"] == "review_outbound_messages":
                    cls.schema = t["outputSchema"]
            cursor = r.get("nextCursor")
            if cls.schema is None:
                assert cursor, "review_outbound_messages not listed to an admin key"
                r = cls.admin.request("tools/list", {"cursor": cursor})

    @classmethod
    def tearDownClass(cls):
        cls.admin.close()
        cls.d.stop()
        for f in cls.fakes.values():
            f.stop()
        du.psql(cls.url, "DELETE FROM integrations; INSERT INTO integrations SELECT * FROM "
                         "json_populate_recordset(NULL::integrations, '%s')" % cls.saved_int.replace("'", "''"))
        du.psql(cls.url, "UPDATE monitors m SET enabled = (x->>'enabled')::boolean FROM json_array_elements('%s'::json) x "
                         "WHERE m.name = x->>'name'" % cls.saved_mon.replace("'", "''"))
        du.psql(cls.url, "UPDATE outbox SET next_attempt_at = now() WHERE state IN ('queued', 'failed', 'sending') "
                         "AND next_attempt_at > now() + interval '12 hours'")
        du.psql(cls.url, "DELETE FROM outbox WHERE idempotency_key LIKE '%s-%%'" % cls.p)
        du.psql(cls.url, "DELETE FROM accounts WHERE client_id LIKE '%s\\_%%'" % cls.p)

    # ------------------------------------------------------------ helpers

    def q(self, sql):
        return du.psql(self.url, sql)

    def enqueue(self, key, channel, payload, client="a", tool=None):
        r = json.loads(self.q("SELECT csmcp.outbox_enqueue('%s', '%s'::jsonb, '%s-%s', '%s', '%s_%s', NULL)"
                              % (channel, json.dumps(payload).replace("'", "''"), self.p, key,
                                 tool or "rvtest-" + self.p, self.p, client)))
        return r

    def mail(self, n):
        return {"body": {"personalizations": [{"to": [{"email": "c%d@rv.test" % n}]}],
                         "from": {"email": "cs@rv.test"}, "subject": "Subject %d" % n,
                         "content": [{"type": "text/plain", "value": "Text %d" % n},
                                     {"type": "text/html", "value": "<p>Text %d</p>" % n}]}}

    def call(self, args, session=None):
        out = (session or self.admin).call_ok("review_outbound_messages", args)
        self.assertEqual(du.schema_errors(self.schema, out), [], "output does not match its outputSchema")
        self.assertIsInstance(out.get("summary"), str)
        return out

    def fail_text(self, args, session=None):
        r = (session or self.admin).call_tool("review_outbound_messages", args)
        self.assertTrue(r.get("isError"), "%s should fail: %s" % (args, r))
        return r["content"][0]["text"]

    def invalid(self, args, where=None):
        try:
            r = self.admin.call_tool("review_outbound_messages", args)
        except lib.McpError as e:
            self.assertEqual(e.code, -32602, args)
            return
        self.assertTrue(r.get("isError"), "%s should be rejected: %s" % (args, r))
        text = r["content"][0]["text"]
        self.assertIn("Invalid arguments for tool review_outbound_messages", text)
        if where:
            self.assertIn("arguments." + where, text)

    def state(self, oid):
        return self.q("SELECT state FROM outbox WHERE id = %d" % oid)

    def accepted(self, channel, key):
        with self.fakes[channel].lock:
            return self.fakes[channel].accepted.get("%s-%s" % (self.p, key), 0)

    # ------------------------------------------------------------ the queue

    def test_pending_reject_approve_edit_exact_states_and_deliveries(self):
        tool = "rvq-" + self.p
        a = self.enqueue("q-a", "sendgrid", self.mail(1), tool=tool)
        b = self.enqueue("q-b", "sendgrid", self.mail(2), tool=tool)
        c = self.enqueue("q-c", "sendgrid", self.mail(3), client="b", tool=tool)
        s = self.enqueue("q-s", "slack", {"text": "no approval needed"})
        self.assertEqual([a["state"], b["state"], c["state"], s["state"]],
                         ["pending_approval", "pending_approval", "pending_approval", "queued"])
        ids = {k: v["outbox_id"] for k, v in (("a", a), ("b", b), ("c", c))}
        # the monitor is delivering (the slack message arrives) but takes none of the pending ones
        lib.wait_until(lambda: self.accepted("slack", "q-s") == 1, 20, what="slack delivery")
        time.sleep(0.5)  # five more monitor ticks: nothing pending is claimed
        self.assertEqual({k: self.state(v) for k, v in ids.items()},
                         {"a": "pending_approval", "b": "pending_approval", "c": "pending_approval"})
        for k in ("q-a", "q-b", "q-c"):
            self.assertEqual(self.accepted("sendgrid", k), 0)
        self.assertEqual(self.q("SELECT attempts FROM outbox WHERE id IN (%d, %d, %d) GROUP BY attempts"
                                % (ids["a"], ids["b"], ids["c"])), "0")

        # list: exactly the three, oldest first, with what a reviewer reads
        out = self.call({"action": "list", "creator": tool})
        self.assertEqual(out["total"], 3)
        self.assertEqual([m["message_id"] for m in out["messages"]], [ids["a"], ids["b"], ids["c"]])
        m0 = out["messages"][0]
        self.assertEqual((m0["channel"], m0["state"], m0["delivery_state"], m0["subject"], m0["body"],
                          m0["has_html"], m0["recipients"], m0["client_id"], m0["edited"], m0["reviewed_by"]),
                         ("sendgrid", "pending_approval", "pending_approval", "Subject 1", "Text 1", True,
                          ["c1@rv.test"], self.p + "_a", False, None))
        out = self.call({"action": "list", "creator": tool, "client_id": self.p + "_b"})
        self.assertEqual([m["message_id"] for m in out["messages"]], [ids["c"]])
        out = self.call({"action": "list", "creator": tool, "limit": 1, "offset": 1})
        self.assertEqual(([m["message_id"] for m in out["messages"]], out["total"]), ([ids["b"]], 3))
        out = self.call({"action": "list", "creator": tool, "channel": "slack"})
        self.assertEqual(out["total"], 0)

        # reject b: terminal, never sent
        out = self.call({"action": "reject", "message_id": ids["b"], "reason": "wrong customer"})
        self.assertEqual((out["message"]["state"], out["message"]["delivery_state"], out["message"]["review_reason"],
                          out["message"]["reviewed_by"]),
                         ("rejected", "rejected", "wrong customer", self.principal["read,write,admin"]))
        # approve a: sent once, unchanged
        out = self.call({"action": "approve", "message_id": ids["a"]})
        self.assertEqual((out["message"]["state"], out["message"]["delivery_state"]), ("approved", "queued"))
        # edit c, then approve: the edited subject and text, once
        out = self.call({"action": "edit", "message_id": ids["c"], "subject": "Better subject",
                         "body": "Better text"})
        self.assertEqual((out["message"]["state"], out["message"]["subject"], out["message"]["body"],
                          out["message"]["has_html"], out["message"]["edited"]),
                         ("pending_approval", "Better subject", "Better text", False, True))
        time.sleep(0.3)  # an edited message is still pending: not sent
        self.assertEqual(self.accepted("sendgrid", "q-c"), 0)
        self.call({"action": "approve", "message_id": ids["c"], "reason": "fixed the wording"})
        lib.wait_until(lambda: self.accepted("sendgrid", "q-a") == 1 and self.accepted("sendgrid", "q-c") == 1,
                       20, what="the approved e-mails delivered")
        lib.wait_until(lambda: self.state(ids["c"]) == "sent" and self.state(ids["a"]) == "sent", 10,
                       what="sent recorded")
        time.sleep(0.5)
        self.assertEqual((self.accepted("sendgrid", "q-a"), self.accepted("sendgrid", "q-b"),
                          self.accepted("sendgrid", "q-c")), (1, 0, 1))
        self.assertEqual(self.state(ids["b"]), "rejected")
        with self.fakes["sendgrid"].lock:
            sent_a = json.loads(self.fakes["sendgrid"].requests["%s-q-a" % self.p][3])
            sent_c = json.loads(self.fakes["sendgrid"].requests["%s-q-c" % self.p][3])
        self.assertEqual((sent_a["subject"], sent_a["content"]), ("Subject 1", self.mail(1)["body"]["content"]))
        self.assertEqual((sent_c["subject"], sent_c["content"]),
                         ("Better subject", [{"type": "text/plain", "value": "Better text"}]))
        self.assertEqual(sent_c["personalizations"], self.mail(3)["body"]["personalizations"])
        self.assertEqual(json.loads(self.q("SELECT original_payload FROM outbox WHERE id = %d" % ids["c"])),
                         self.mail(3))
        # the approved list shows both with their delivery state; the rejected list b
        out = self.call({"action": "list", "creator": tool, "state": "approved"})
        self.assertEqual([(m["message_id"], m["delivery_state"]) for m in out["messages"]],
                         [(ids["a"], "sent"), (ids["c"], "sent")])
        self.assertEqual(out["messages"][1]["review_reason"], "fixed the wording")
        out = self.call({"action": "list", "creator": tool, "state": "rejected"})
        self.assertEqual([m["message_id"] for m in out["messages"]], [ids["b"]])
        # audited: one activity row per review with the message before and after
        rows = self.q("SELECT action || '|' || entity_id || '|' || (old_values->>'state') || '|' || "
                      "(new_values->>'state') || '|' || coalesce(new_values->>'subject', '') || '|' || actor "
                      "FROM activity_log WHERE entity = 'outbound_message' AND entity_id IN ('%d', '%d', '%d') "
                      "ORDER BY activity_id" % (ids["a"], ids["b"], ids["c"])).splitlines()
        adm = self.principal["read,write,admin"]
        self.assertEqual(rows, [
            "reject_outbound_message|%d|pending_approval|rejected|Subject 2|%s" % (ids["b"], adm),
            "approve_outbound_message|%d|pending_approval|approved|Subject 1|%s" % (ids["a"], adm),
            "edit_outbound_message|%d|pending_approval|pending_approval|Better subject|%s" % (ids["c"], adm),
            "approve_outbound_message|%d|pending_approval|approved|Better subject|%s" % (ids["c"], adm)])
        self.assertEqual(self.q("SELECT old_values->>'subject' FROM activity_log WHERE entity = 'outbound_message' "
                                "AND entity_id = '%d' AND action = 'edit_outbound_message'" % ids["c"]), "Subject 3")

    def test_refusals_name_the_state(self):
        m = self.enqueue("r-1", "sendgrid", self.mail(4))["outbox_id"]
        self.call({"action": "reject", "message_id": m, "reason": "duplicate"})
        for act, extra, verb in (("approve", {}, "approved"), ("reject", {"reason": "again"}, "rejected"),
                                 ("edit", {"body": "x"}, "edited")):
            self.assertEqual(self.fail_text(dict({"action": act, "message_id": m}, **extra)),
                             "outbound message %d is rejected, not pending_approval: only a pending message "
                             "can be %s" % (m, verb))
        m2 = self.enqueue("r-2", "sendgrid", self.mail(5))["outbox_id"]
        # park it so the monitor leaves it queued: the refusal names its delivery state
        self.call({"action": "approve", "message_id": m2})
        self.q("UPDATE outbox SET next_attempt_at = now() + interval '1 day' WHERE id = %d AND state = 'queued'" % m2)
        st = self.state(m2)
        self.assertIn("outbound message %d is already approved (delivery state %s), not pending_approval"
                      % (m2, st), self.fail_text({"action": "approve", "message_id": m2}))
        self.assertEqual(self.fail_text({"action": "approve", "message_id": 2147483000}),
                         "outbound message 2147483000 not found")
        m3 = self.enqueue("r-3", "sendgrid", self.mail(6))["outbox_id"]
        self.assertEqual(self.fail_text({"action": "reject", "message_id": m3}),
                         "reason: required to reject a message (at least 3 characters)")
        self.assertEqual(self.fail_text({"action": "edit", "message_id": m3}),
                         "subject or body: an edit needs at least one of them")
        self.assertEqual(self.fail_text({"action": "edit", "message_id": m3, "body": "   "}),
                         "body: must not be blank")
        self.assertEqual(self.fail_text({"action": "approve", "message_id": m3, "body": "x"}),
                         "subject and body are only used with action edit, not approve")
        self.assertEqual(self.fail_text({"action": "approve", "message_id": m3, "channel": "slack"}),
                         "channel, client_id, creator, state, limit and offset are filters of action list, not approve")
        self.assertEqual(self.fail_text({"action": "approve"}), "message_id: required to approve a message")
        self.assertEqual(self.fail_text({"action": "list", "message_id": m3}),
                         "message_id, reason, subject and body are not used with action list")
        w = self.enqueue("r-w", "webhook", {"event": "alert.opened", "n": 1})["outbox_id"]
        self.assertEqual(self.fail_text({"action": "edit", "message_id": w, "body": "x"}),
                         "message_id: a webhook message is a structured event and cannot be edited "
                         "(approve or reject it)")
        self.assertEqual(self.state(m3), "pending_approval")
        self.assertEqual(self.state(w), "pending_approval")
        self.invalid({"action": "publish", "message_id": m3}, "action")
        self.invalid({"action": "approve", "message_id": 0}, "message_id")
        self.invalid({"action": "approve", "message_id": "12"}, "message_id")
        self.invalid({"action": "reject", "message_id": m3, "reason": "no"}, "reason")
        self.invalid({"action": "list", "state": "sent"}, "state")
        self.invalid({"action": "list", "limit": 201}, "limit")
        self.invalid({"action": "list", "urgent": True})

    def test_slack_edit_and_approval_off(self):
        self.q("UPDATE integrations SET settings = '{\"require_approval\": true}' WHERE channel = 'slack'")
        try:
            m = self.enqueue("s-1", "slack", {"text": "old", "blocks": [{"type": "section"}]})
            self.assertEqual(m["state"], "pending_approval")
            self.assertEqual(self.fail_text({"action": "edit", "message_id": m["outbox_id"], "subject": "x"}),
                             "subject: a slack message has no subject (edit its body)")
            self.call({"action": "edit", "message_id": m["outbox_id"], "body": "new text"})
            self.assertEqual(json.loads(self.q("SELECT payload FROM outbox WHERE id = %d" % m["outbox_id"])),
                             {"text": "new text"})
        finally:
            self.q("UPDATE integrations SET settings = '{}' WHERE channel = 'slack'")
        # approval off: straight to queued; the pending one stays pending (still needs a review)
        self.assertEqual(self.enqueue("s-2", "slack", {"text": "t"})["state"], "queued")
        self.assertEqual(self.state(m["outbox_id"]), "pending_approval")
        self.call({"action": "reject", "message_id": m["outbox_id"], "reason": "not needed"})

    def test_send_personalized_email_waits_and_edit_updates_its_record(self):
        out = self.admin.call_ok("send_personalized_email", {
            "campaign_name": "Rv " + self.p, "template_type": "custom", "subject_line": "Hello {{first_name}}",
            "body_text": "Dear {{contact_name}}", "sender_email": "cs@rv.test",
            "target_client_ids": [self.p + "_a"], "send_immediately": True})
        row = self.q("SELECT m.message_id || '|' || o.id || '|' || o.state || '|' || coalesce(o.created_by, '-') "
                     "|| '|' || o.source_tool FROM email_messages m JOIN outbox o ON o.id = m.outbox_id "
                     "WHERE m.client_id = '%s_a'" % self.p).split("|")
        self.assertEqual(row[2], "pending_approval", out)
        mid, oid = int(row[0]), int(row[1])
        self.assertEqual(row[4], "send_personalized_email")
        lst = self.call({"action": "list", "client_id": self.p + "_a", "creator": "send_personalized_email"})
        self.assertEqual([(m["message_id"], m["subject"], m["body"], m["recipients"]) for m in lst["messages"]],
                         [(oid, "Hello Ada", "Dear Ada Reviewer", ["ada@rv-%s.test" % self.p])])
        self.call({"action": "edit", "message_id": oid, "body": "Dear Ada, corrected"})
        self.assertEqual(self.q("SELECT subject || '|' || body_text || '|' || coalesce(body_html, 'NULL') "
                                "FROM email_messages WHERE message_id = %d" % mid),
                         "Hello Ada|Dear Ada, corrected|NULL")
        self.call({"action": "reject", "message_id": oid, "reason": "test over"})

    # ------------------------------------------------------------ scopes and races

    def test_scopes_and_reviewer_scope_reload(self):
        m = self.enqueue("k-1", "sendgrid", self.mail(7))["outbox_id"]
        rd = self.d.session(token=self.tok["read"])
        wr = self.d.session(token=self.tok["write"])
        try:
            self.assertGreaterEqual(self.call({"action": "list", "creator": "rvtest-" + self.p}, session=rd)["total"], 1)
            for s in (rd, wr):
                st, _, _ = s.request_raw("tools/call", {"name": "review_outbound_messages",
                                                        "arguments": {"action": "approve", "message_id": m}})
                self.assertEqual(st, 403)
            self.assertEqual(self.state(m), "pending_approval")
        finally:
            rd.close()
            wr.close()
        self.d.rewrite_conf({"delivery": {"reviewer_scope": "write"}})
        r = self.d.ctl("reload", "--wait")
        self.assertEqual(r.returncode, 0, r.stderr)
        try:
            wr = self.d.session(token=self.tok["write"])
            rd = self.d.session(token=self.tok["read"])
            try:
                st, _, _ = rd.request_raw("tools/call", {"name": "review_outbound_messages",
                                                         "arguments": {"action": "reject", "message_id": m,
                                                                       "reason": "read key"}})
                self.assertEqual(st, 403)
                out = self.call({"action": "reject", "message_id": m, "reason": "by a write key"}, session=wr)
                self.assertEqual((out["message"]["state"], out["message"]["reviewed_by"]),
                                 ("rejected", self.principal["write"]))
            finally:
                wr.close()
                rd.close()
        finally:
            self.d.rewrite_conf({"delivery": {"reviewer_scope": "admin"}})
            self.assertEqual(self.d.ctl("reload", "--wait").returncode, 0)
            type(self).admin = self.d.session(token=self.tok["read,write,admin"])

    def test_concurrent_approve_and_reject_one_wins(self):
        for i in range(3):
            m = self.enqueue("c-%d" % i, "sendgrid", self.mail(10 + i))["outbox_id"]
            res = {}

            def run(act, extra):
                s = self.d.session(token=self.tok["read,write,admin"])
                try:
                    res[act] = s.call_tool("review_outbound_messages", dict({"action": act, "message_id": m}, **extra))
                finally:
                    s.close()
            ts = [threading.Thread(target=run, args=("approve", {})),
                  threading.Thread(target=run, args=("reject", {"reason": "race"}))]
            for t in ts:
                t.start()
            for t in ts:
                t.join(30)
            ok = [a for a, r in res.items() if not r.get("isError")]
            self.assertEqual(len(ok), 1, res)
            loser = "reject" if ok[0] == "approve" else "approve"
            self.assertIn("outbound message %d is " % m, res[loser]["content"][0]["text"])
            self.assertEqual(int(self.q("SELECT count(*) FROM activity_log WHERE entity = 'outbound_message' "
                                        "AND entity_id = '%d'" % m)), 1)
            if ok[0] == "reject":
                self.assertEqual(self.state(m), "rejected")
