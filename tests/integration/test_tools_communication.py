"""Communication & engagement tools (issue 16) through csmcpd over MCP, on hand-computed fixtures:
recipient resolution (ids, segment, tier, exclusions, primary/all contacts, unsubscribed), token
rendering and the unknown-token error, outbox rows per message (SendGrid on) or not_configured
(off), scheduled sends due at their time; advocacy points and the tier at each threshold,
concurrent awards; EBR schedule/prepare/complete with the briefing equal to the account's rows;
not-found, state-machine refusals and scope refusal with a read-only key.
Addresses in fixtures use the reserved .test TLD; no placeholder address is generated anywhere."""
import datetime
import json
import random
import threading

import data_util as du
import lib
import sec_util as su

TOOLS = ["send_personalized_email", "automate_communications", "manage_community", "manage_advocacy_program",
         "conduct_executive_review", "automate_newsletters"]


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


class CommunicationToolsTest(lib.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.url = lib.database_url()
        cls.p = du.prefix()
        cls.n = random.randint(10000000, 80000000)
        du.psql(cls.url, cls.fixture_sql())
        cls.d = lib.Csmcpd(workers=2).start()
        cls.s = cls.d.session()
        cls.schemas, cursor = {}, None
        while True:  # tools/list is paginated
            page = cls.s.request("tools/list", {"cursor": cursor} if cursor else {})
            cls.schemas.update({t["name"]: t.get("outputSchema") for t in page["tools"]})
            cursor = page.get("nextCursor")
            if not cursor:
                break

    @classmethod
    def tearDownClass(cls):
        cls.s.close()
        cls.d.stop()
        du.psql(cls.url, "DELETE FROM outbox WHERE client_id LIKE '%(p)s\\_%%'; "
                         "DELETE FROM newsletters WHERE created_by = '%(p)s'; DELETE FROM communities WHERE name LIKE '%%%(p)s'; DELETE FROM email_campaigns WHERE campaign_id IN (SELECT DISTINCT campaign_id FROM email_messages "
                         "WHERE client_id LIKE '%(p)s\\_%%'); DELETE FROM accounts WHERE client_id LIKE '%(p)s\\_%%'; "
                         "DELETE FROM segments WHERE segment_id = 'seg_%(p)s'" % {"p": cls.p})

    # ------------------------------------------------------------ helpers

    @classmethod
    def cid(cls, k):
        return "%s_%s" % (cls.p, k)

    def call(self, name, args, session=None):
        out = (session or self.s).call_ok(name, args)
        self.assertEqual(du.schema_errors(self.schemas[name], out), [],
                         "%s output does not match its outputSchema" % name)
        self.assertIsInstance(out.get("summary"), str)
        return out

    def fail_text(self, name, args):
        r = self.s.call_tool(name, args)
        self.assertTrue(r.get("isError"), "%s(%s) should fail: %s" % (name, args, r))
        return r["content"][0]["text"]

    def invalid(self, name, args, where=None):
        try:
            r = self.s.call_tool(name, args)
        except lib.McpError as e:
            self.assertEqual(e.code, -32602, "%s(%s)" % (name, args))
            return
        self.assertTrue(r.get("isError"), "%s(%s) should be rejected: %s" % (name, args, r))
        text = r["content"][0]["text"]
        self.assertIn("Invalid arguments for tool %s" % name, text)
        if where:
            self.assertIn(where, text)

    def q(self, sql):
        return du.psql(self.url, sql)

    @classmethod
    def fixture_sql(cls):
        p = cls.p
        acc = ("INSERT INTO accounts (client_id, client_name, company_name, industry, tier, csm_assigned, health_score, "
               "health_trend) VALUES "
               "('{p}_a1', 'Alpha One', 'Alpha One Ltd', 'Retail', 'starter', 'Grace Hopper', 81, 'improving'), "
               "('{p}_a2', 'Beta Two', 'Beta Two plc', 'Media', 'starter', NULL, 55, 'stable'), "
               "('{p}_a3', 'Gamma Three', 'Gamma Three AG', 'Energy', 'professional', 'Alan Kay', 62, 'stable'), "
               "('{p}_a4', 'Delta Four', 'Delta Four SA', 'Energy', 'professional', NULL, 40, 'declining'), "
               "('{p}_e', 'Echo Five', 'Echo Five Inc', 'Software', 'enterprise', 'Ken T', 72, 'improving'), "
               "('{p}_v', 'Victor', 'Victor Co', 'Software', 'standard', NULL, 50, 'stable'), "
               "('{p}_a5', 'Golf Six', 'Golf Six BV', 'Retail', 'starter', NULL, 66, 'stable');\n"
               "INSERT INTO accounts (client_id, client_name, company_name, tier, status) VALUES "
               "('{p}_a6', 'Hotel Gone', 'Hotel Gone Ltd', 'starter', 'churned');\n")
        contacts = ("INSERT INTO contacts (client_id, name, email, title, is_primary, unsubscribed) VALUES "
                    "('{p}_a1', 'Ada Byron', 'ada@a1-{p}.test', 'CTO', true, false), "
                    "('{p}_a1', 'Bob Stone', 'bob@a1-{p}.test', NULL, false, false), "
                    "('{p}_a1', 'Carl Quit', 'carl@a1-{p}.test', NULL, false, true), "
                    "('{p}_a2', 'Dee Gone', 'dee@a2-{p}.test', NULL, true, true), "
                    "('{p}_a2', 'Eve Moss', 'eve@a2-{p}.test', 'VP', false, false), "
                    "('{p}_a3', 'Fay Wray', 'fay@a3-{p}.test', NULL, true, false), "
                    "('{p}_a5', 'Gus Lamb', 'gus@a5-{p}.test', NULL, true, false), "
                    "('{p}_a6', 'Hal Old', 'hal@a6-{p}.test', NULL, true, false);\n")
        seg = ("INSERT INTO segments (segment_id, segmentation_id, name, segment_type, customer_count) "
               "VALUES ('seg_{p}', 'run_{p}', 'test segment', 'custom', 3);\n"
               "INSERT INTO segment_members VALUES ('seg_{p}', '{p}_a2'), ('seg_{p}', '{p}_a3'), ('seg_{p}', '{p}_a4');\n")
        # EBR account {p}_e: health history, 30 days of usage, tickets, renewals, opportunities.
        ebr = ("INSERT INTO health_scores (client_id, calculated_at, usage_score, engagement_score, support_score, "
               "satisfaction_score, payment_score, overall_score, trend, risk_level, churn_probability, lookback_days) "
               "SELECT '{p}_e', now() - make_interval(days => d), 50, 50, 50, 50, 50, s, 'stable', 'medium', 0.2, 30 "
               "FROM (VALUES (100, 60), (30, 65), (0, 72)) v(d, s);\n"
               "INSERT INTO usage_daily (client_id, day, active_users, events, session_minutes) "
               "SELECT '{p}_e', csmcp.today() - i, 10 + i, 100, 5 FROM generate_series(0, 29) i;\n"
               "INSERT INTO usage_daily (client_id, day, active_users, events, session_minutes) "
               "VALUES ('{p}_e', csmcp.today() - 30, 999, 999, 999);\n"
               "INSERT INTO support_tickets (ticket_id, client_id, subject, description, priority, status, requester_email, "
               "requester_name, sla_first_response_minutes, sla_resolution_minutes, created_at, resolved_at, "
               "satisfaction_rating) VALUES "
               "('TKT-{n}1', '{p}_e', 's', 'd', 'P1', 'open', 'r@e-{p}.test', 'R', 60, 600, now() - interval '10 days', NULL, NULL), "
               "('TKT-{n}2', '{p}_e', 's', 'd', 'P3', 'resolved', 'r@e-{p}.test', 'R', 60, 600, now() - interval '20 days', "
               "now() - interval '5 days', 4), "
               "('TKT-{n}3', '{p}_e', 's', 'd', 'P2', 'closed', 'r@e-{p}.test', 'R', 60, 600, now() - interval '200 days', "
               "now() - interval '190 days', 2);\n"
               "INSERT INTO contracts (contract_id, client_id, tier, contract_value, start_date, end_date, status) VALUES "
               "('CTR-{p}', '{p}_e', 'enterprise', 120000, csmcp.today() - 300, csmcp.today() + 60, 'active');\n"
               "INSERT INTO renewals (renewal_id, contract_id, client_id, renewal_date, status, current_arr, forecast_arr, "
               "probability) VALUES "
               "('REN-{p}-1', 'CTR-{p}', '{p}_e', csmcp.today() + 40, 'won', 100000, 100000, 1), "
               "('REN-{p}-2', 'CTR-{p}', '{p}_e', csmcp.today() + 60, 'at_risk', 120000, 90000, 0.6), "
               "('REN-{p}-3', 'CTR-{p}', '{p}_e', csmcp.today() + 400, 'on_track', 130000, 130000, 0.9);\n"
               "INSERT INTO expansion_opportunities (opportunity_id, client_id, name, expansion_type, estimated_value, "
               "probability, stage) VALUES "
               "('OPP-{p}-1', '{p}_e', 'More seats', 'user_expansion', 50000, 0.4, 'identified'), "
               "('OPP-{p}-2', '{p}_e', 'Analytics', 'cross_sell', 20000, 0.75, 'proposal'), "
               "('OPP-{p}-3', '{p}_e', 'Old win', 'upsell', 99999, 1, 'won');\n"
               "UPDATE accounts SET lifecycle_stage = 'renewal' WHERE client_id = '{p}_e';\n")
        return (acc + contacts + seg + ebr).format(p=p, n=cls.n)

    def email_args(self, **kw):
        a = {"campaign_name": "Spring update", "template_type": "product_update",
             "subject_line": "Hi {{first_name}} of {{company_name}}",
             "body_text": "Dear {{ contact_name }}, tier {{tier}}; {{offer}}; CSM {{csm_name}}.",
             "sender_email": "success@csmcp.test", "personalization_tokens": {"offer": "20% off & more \\o/"},
             "send_immediately": True}
        a.update(kw)
        return a

    def set_sendgrid(self, enabled):
        self.q("INSERT INTO integrations (channel, enabled) VALUES ('sendgrid', %s) "
               "ON CONFLICT (channel) DO UPDATE SET enabled = EXCLUDED.enabled" % ("true" if enabled else "false"))

    def sendgrid_state(self):
        return self.q("SELECT coalesce((SELECT enabled::text FROM integrations WHERE channel = 'sendgrid'), 'absent')")

    def restore_sendgrid(self, before):
        if before == "absent":
            self.q("DELETE FROM integrations WHERE channel = 'sendgrid'")
        else:
            self.set_sendgrid(before == "true")

    # ------------------------------------------------------------ registry

    def test_registry_lists_the_tools(self):
        for t in TOOLS:
            self.assertIn(t, self.schemas)

    # ------------------------------------------------------------ send_personalized_email: targeting

    def test_targeting_primary_contacts_and_unsubscribed(self):
        out = self.call("send_personalized_email", self.email_args(
            target_client_ids=[self.cid("a1"), self.cid("a2")], dry_run=True))
        t = out["targeting"]
        self.assertEqual((t["accounts_targeted"], t["accounts_without_recipient"], t["unsubscribed_excluded"],
                          t["recipients"]), (2, 1, 1, 1))
        self.assertEqual([m["email"] for m in out["preview"]], ["ada@a1-%s.test" % self.p])
        self.assertEqual(out["status"], "dry_run")
        self.assertIsNone(out["campaign_id"])

    def test_targeting_all_contacts(self):
        out = self.call("send_personalized_email", self.email_args(
            target_client_ids=[self.cid("a1"), self.cid("a2")], all_contacts=True, dry_run=True))
        t = out["targeting"]
        self.assertEqual((t["accounts_targeted"], t["accounts_without_recipient"], t["unsubscribed_excluded"],
                          t["recipients"]), (2, 0, 2, 3))
        self.assertEqual([m["email"] for m in out["preview"]],
                         ["ada@a1-%s.test" % self.p, "bob@a1-%s.test" % self.p, "eve@a2-%s.test" % self.p])

    def test_targeting_segment_union_ids_minus_exclusions(self):
        out = self.call("send_personalized_email", self.email_args(
            target_segment="seg_" + self.p, target_client_ids=[self.cid("a1")], exclude_client_ids=[self.cid("a3")],
            dry_run=True))
        t = out["targeting"]
        # accounts a1, a2, a4 (a3 excluded): a1 -> Ada; a2's primary unsubscribed; a4 has no contact
        self.assertEqual((t["accounts_targeted"], t["accounts_without_recipient"], t["unsubscribed_excluded"],
                          t["recipients"]), (3, 2, 1, 1))

    def test_targeting_tier_equals_sql(self):
        exp = self.q("SELECT count(DISTINCT a.client_id) || ' ' || count(c.contact_id) FROM accounts a "
                     "LEFT JOIN contacts c ON c.client_id = a.client_id AND c.is_primary AND NOT c.unsubscribed "
                     "WHERE a.tier = 'professional'")
        out = self.call("send_personalized_email", self.email_args(target_tier="professional", dry_run=True))
        t = out["targeting"]
        self.assertEqual("%d %d" % (t["accounts_targeted"], t["recipients"]), exp)
        self.assertLessEqual(len(out["preview"]), 3)

    def test_token_rendering_exact(self):
        out = self.call("send_personalized_email", self.email_args(
            target_client_ids=[self.cid("a1")], body_html="<p>{{customer_name}} / {{health_score}} / {{contact_title}}</p>",
            dry_run=True))
        m = out["preview"][0]
        self.assertEqual(m["subject"], "Hi Ada of Alpha One Ltd")
        self.assertEqual(m["body_text"], "Dear Ada Byron, tier starter; 20% off & more \\o/; CSM Grace Hopper.")
        self.assertEqual(m["body_html"], "<p>Alpha One / 81 / CTO</p>")
        # a missing value renders empty (a2's CSM is NULL; Eve is the only recipient there with all_contacts)
        out = self.call("send_personalized_email", self.email_args(
            target_client_ids=[self.cid("a2")], all_contacts=True, dry_run=True))
        self.assertEqual(out["preview"][0]["body_text"], "Dear Eve Moss, tier starter; 20% off & more \\o/; CSM .")

    def test_unknown_token_is_an_error_naming_it(self):
        text = self.fail_text("send_personalized_email", self.email_args(
            target_client_ids=[self.cid("a1")], body_text="Hello {{first_name}} {{discount_code}}"))
        self.assertIn("body_text: unknown personalization token {{discount_code}}", text)
        self.assertIn("first_name", text)
        text = self.fail_text("send_personalized_email", self.email_args(
            target_client_ids=[self.cid("a1")], personalization_tokens={"tier": "gold"}))
        self.assertIn("personalization_tokens: tier is a built-in token", text)
        self.invalid("send_personalized_email", self.email_args(
            target_client_ids=[self.cid("a1")], personalization_tokens={"bad key": "x"}))
        # nothing stored by refused calls
        self.assertEqual(self.q("SELECT count(*) FROM email_messages WHERE client_id = '%s'" % self.cid("a1")
                                + " AND body_text LIKE '%%discount%%'"), "0")

    def test_validation_and_not_found(self):
        text = self.fail_text("send_personalized_email", self.email_args())
        self.assertIn("give at least one of target_client_ids, target_segment, target_tier", text)
        text = self.fail_text("send_personalized_email", self.email_args(
            target_client_ids=[self.cid("a1")], send_immediately=False))
        self.assertIn("scheduled_send_time: required unless send_immediately", text)
        text = self.fail_text("send_personalized_email", self.email_args(
            target_client_ids=[self.cid("a1")], send_immediately=False, scheduled_send_time="2020-01-01T00:00:00Z"))
        self.assertIn("scheduled_send_time: must be in the future", text)
        text = self.fail_text("send_personalized_email", self.email_args(target_client_ids=[self.cid("nope")]))
        self.assertIn("client not found: %s" % self.cid("nope"), text)
        text = self.fail_text("send_personalized_email", self.email_args(target_segment="seg_missing_" + self.p))
        self.assertIn("segment seg_missing_%s not found" % self.p, text)
        text = self.fail_text("send_personalized_email", {"action": "get_status", "campaign_id": "campaign_1_nope"})
        self.assertIn("campaign campaign_1_nope not found", text)
        self.invalid("send_personalized_email", self.email_args(target_tier="gold"), "target_tier")
        self.invalid("send_personalized_email", self.email_args(sender_email="not-an-address", target_tier="starter"),
                     "sender_email")
        self.invalid("send_personalized_email", self.email_args(template_type="spam", target_tier="starter"),
                     "template_type")

    # ------------------------------------------------------------ send_personalized_email: delivery

    def test_send_not_configured_records_honestly(self):
        before = self.sendgrid_state()
        self.set_sendgrid(False)
        try:
            out = self.call("send_personalized_email", self.email_args(
                target_client_ids=[self.cid("a1"), self.cid("a2")], all_contacts=True))
        finally:
            self.restore_sendgrid(before)
        cid = out["campaign_id"]
        self.assertRegex(cid, r"^campaign_[0-9]+_spring_update$")
        self.assertFalse(out["delivery"]["configured"])
        self.assertEqual(out["delivery"]["by_state"],
                         {"scheduled": 0, "queued": 0, "pending_approval": 0, "sending": 0, "sent": 0, "failed": 0, "dead": 0,
                          "suppressed": 0, "not_configured": 3})
        self.assertEqual(self.q("SELECT count(*) || ' ' || count(outbox_id) FROM email_messages WHERE campaign_id = '%s'"
                                % cid), "3 0")
        self.assertEqual(self.q("SELECT count(*) FROM outbox WHERE ref = '%s'" % cid), "0")
        self.assertIn("SendGrid not configured", out["summary"])

    def test_send_immediately_enqueues_one_outbox_row_per_recipient(self):
        before = self.sendgrid_state()
        self.set_sendgrid(True)
        try:
            out = self.call("send_personalized_email", self.email_args(
                target_client_ids=[self.cid("a1"), self.cid("a2")], all_contacts=True, track_clicks=False))
        finally:
            self.restore_sendgrid(before)
        cid = out["campaign_id"]
        self.assertTrue(out["delivery"]["configured"])
        self.assertEqual(out["delivery"]["by_state"]["queued"] + out["delivery"]["by_state"]["sending"]
                         + out["delivery"]["by_state"]["sent"] + out["delivery"]["by_state"]["failed"]
                         + out["delivery"]["by_state"]["dead"], 3)
        rows = json.loads(self.q(
            "SELECT json_agg(json_build_object('key', o.idempotency_key, 'mid', m.message_id, 'body', o.payload->'body', "
            "'due', o.next_attempt_at <= now(), 'tool', o.source_tool) ORDER BY m.email) FROM email_messages m "
            "JOIN outbox o ON o.id = m.outbox_id WHERE m.campaign_id = '%s'" % cid))
        self.assertEqual(len(rows), 3)
        self.assertEqual([r["body"]["personalizations"][0]["to"][0]["email"] for r in rows],
                         ["ada@a1-%s.test" % self.p, "bob@a1-%s.test" % self.p, "eve@a2-%s.test" % self.p])
        for r in rows:
            self.assertEqual(r["key"], "email_message:%d" % r["mid"])
            self.assertEqual(r["body"]["from"], {"email": "success@csmcp.test"})
            self.assertEqual(r["body"]["tracking_settings"]["click_tracking"], {"enable": False})
            self.assertEqual(r["body"]["custom_args"], {"csmcp_message_id": str(r["mid"])})
            self.assertTrue(r["due"])
            self.assertEqual(r["tool"], "send_personalized_email")
        self.assertEqual(rows[1]["body"]["subject"], "Hi Bob of Alpha One Ltd")
        self.assertEqual(rows[1]["body"]["content"],
                         [{"type": "text/plain", "value": "Dear Bob Stone, tier starter; 20% off & more \\o/; CSM Grace Hopper."}])
        st = self.call("send_personalized_email", {"action": "get_status", "campaign_id": cid})
        self.assertEqual(st["recipients"], 3)
        self.assertEqual(sum(st["delivery"]["by_state"].values()), 3)
        self.assertEqual(st["delivery"]["by_state"]["not_configured"], 0)
        # logged
        self.assertEqual(self.q("SELECT new_values->>'recipients' FROM activity_log WHERE entity = 'email_campaign' "
                                "AND entity_id = '%s'" % cid), "3")
        # no placeholder addresses
        self.assertEqual(self.q("SELECT count(*) FROM email_messages WHERE campaign_id = '%s' AND email LIKE '%%example.com'"
                                % cid), "0")

    def test_scheduled_send_waits_for_its_time(self):
        """A scheduled message waits outside the outbox (state scheduled) until its time; then the
        communication tick releases it into the outbox, due at once; a recipient who opted out
        meanwhile is suppressed instead."""
        before = self.sendgrid_state()
        self.set_sendgrid(True)
        when = (utcnow() + datetime.timedelta(days=2)).replace(microsecond=0)
        try:
            out = self.call("send_personalized_email", self.email_args(
                target_client_ids=[self.cid("a1"), self.cid("a3")], all_contacts=True, send_immediately=False,
                scheduled_send_time=when.isoformat()))
            cid = out["campaign_id"]
            self.assertEqual(out["status"], "scheduled")
            self.assertEqual(out["targeting"]["recipients"], 3)  # ada, bob (a1; carl opted out), fay (a3)
            self.assertEqual((out["delivery"]["by_state"]["scheduled"], out["delivery"]["by_state"]["queued"]), (3, 0))
            self.assertEqual(self.q("SELECT count(*) || ' ' || count(outbox_id) || ' ' || "
                                    "bool_and(scheduled_for = '%s'::timestamptz) FROM email_messages WHERE campaign_id = '%s'"
                                    % (when.isoformat(), cid)), "3 0 true")
            # not yet due: the tick releases nothing of it
            self.q("SELECT csmcp.comm_release_due(500)")
            self.assertEqual(self.q("SELECT count(*) FROM email_messages WHERE campaign_id = '%s' AND state = 'scheduled'"
                                    % cid), "3")
            # bob opts out of all email; then the time comes
            self.q("UPDATE contacts SET unsubscribed = true WHERE email = 'bob@a1-%s.test'" % self.p)
            self.q("UPDATE email_messages SET scheduled_for = now() - interval '1 second' WHERE campaign_id = '%s'" % cid)
            for _ in range(50):  # other tests' due messages may be released first (500 per call)
                self.q("SELECT csmcp.comm_release_due(500)")
                if self.q("SELECT count(*) FROM email_messages WHERE campaign_id = '%s' AND state = 'scheduled'" % cid) == "0":
                    break
            rows = self.q("SELECT string_agg(m.email || ':' || m.state || ':' || coalesce(o.state, '-') || ':' || "
                          "coalesce((o.next_attempt_at <= now())::text, '-') || ':' || "
                          "coalesce(o.payload->'body'->>'send_at', 'no send_at'), ',' ORDER BY m.email) "
                          "FROM email_messages m LEFT JOIN outbox o ON o.id = m.outbox_id WHERE m.campaign_id = '%s'" % cid)
            self.assertEqual(rows, "ada@a1-%(p)s.test:outbox:queued:true:no send_at,bob@a1-%(p)s.test:suppressed:-:-:no send_at,"
                                   "fay@a3-%(p)s.test:outbox:queued:true:no send_at" % {"p": self.p})
            st = self.call("send_personalized_email", {"action": "get_status", "campaign_id": cid})
            self.assertEqual((st["delivery"]["by_state"]["queued"] + st["delivery"]["by_state"]["sending"]
                              + st["delivery"]["by_state"]["sent"] + st["delivery"]["by_state"]["failed"],
                              st["delivery"]["by_state"]["suppressed"], st["delivery"]["by_state"]["scheduled"]), (2, 1, 0))
        finally:
            self.q("UPDATE contacts SET unsubscribed = false WHERE email = 'bob@a1-%s.test'" % self.p)
            self.restore_sendgrid(before)

    # ------------------------------------------------------------ advocacy

    def test_advocacy_points_and_tiers_at_each_threshold(self):
        out = self.call("manage_advocacy_program", {"action": "enroll_advocate", "client_id": self.cid("a1"),
                                                    "contact_name": "Ada Byron", "contact_email": "ada@a1-%s.test" % self.p,
                                                    "contact_title": "CTO"})
        adv = out["advocate"]
        aid = adv["advocate_id"]
        self.assertRegex(aid, r"^advocate_[0-9]+_%s_a1$" % self.p)
        self.assertEqual((adv["tier"], adv["total_points"], adv["next_tier"]),
                         ("bronze", 0, {"tier": "silver", "threshold": 500, "points_needed": 500}))
        steps = [  # (action, type-or-points, points added, total, tier)
            ("award_points", 499, 499, 499, "bronze"),
            ("track_contribution", "testimonial", 150, 649, "silver"),      # 150 x 1.0
            ("track_contribution", "case_study", 625, 1274, "silver"),      # 500 x 1.25
            ("track_contribution", "reference", 313, 1587, "gold"),         # 250 x 1.25 = 312.5 -> 313
            ("track_contribution", "review", 450, 2037, "gold"),            # 300 x 1.5
            ("award_points", 962, 962, 2999, "gold"),
            ("award_points", 1, 1, 3000, "platinum"),
            ("track_contribution", "testimonial", 263, 3263, "platinum"),   # 150 x 1.75 = 262.5 -> 263
            ("track_contribution", "referral", 700, 3963, "platinum"),      # 400 x 1.75
            ("award_points", 1036, 1036, 4999, "platinum"),
            ("track_contribution", "speaking_engagement", 1750, 6749, "champion"),  # 1000 x 1.75
            ("track_contribution", "referral", 800, 7549, "champion"),      # 400 x 2.0
        ]
        prev = "bronze"
        for action, what, pts, total, tier in steps:
            args = {"action": action, "advocate_id": aid}
            if action == "award_points":
                args["points"] = what
            else:
                args["contribution_type"] = what
            out = self.call("manage_advocacy_program", args)
            c = out["contribution"]
            self.assertEqual((c["points"], out["advocate"]["total_points"], out["advocate"]["tier"]), (pts, total, tier),
                             "%s %s" % (action, what))
            self.assertEqual((c["tier_before"], c["tier_after"]), (prev, tier))
            self.assertEqual(out["promoted"], prev != tier)
            prev = tier
        self.assertEqual(out["advocate"]["next_tier"], {"tier": None, "threshold": None, "points_needed": 0})
        prof = self.call("manage_advocacy_program", {"action": "get_advocate_profile", "advocate_id": aid})
        self.assertEqual(prof["advocate"]["contribution_count"], len(steps))
        self.assertEqual([c["points"] for c in prof["contributions"]], [s[2] for s in reversed(steps)])
        an = self.call("manage_advocacy_program", {"action": "get_program_analytics", "client_id": self.cid("a1")})
        self.assertEqual(an["program"], {"advocates": 1, "total_points": 7549,
                                         "by_tier": {"bronze": 0, "silver": 0, "gold": 0, "platinum": 0, "champion": 1}})
        self.assertEqual(an["contributions_by_type"]["testimonial"], {"count": 2, "points": 413})
        self.assertEqual(an["contributions_by_type"]["points_award"], {"count": 4, "points": 2498})
        self.assertEqual(an["contributions_by_type"]["case_study"], {"count": 1, "points": 625})
        lst = self.call("manage_advocacy_program", {"action": "list_advocates", "client_id": self.cid("a1"),
                                                    "tier": "champion"})
        self.assertEqual([a["advocate_id"] for a in lst["advocates"]], [aid])
        self.assertEqual(self.q("SELECT count(*) FROM activity_log WHERE entity = 'advocate' AND entity_id = '%s'" % aid),
                         str(len(steps) + 1))

    def test_advocacy_exact_threshold_and_refusals(self):
        out = self.call("manage_advocacy_program", {"action": "enroll_advocate", "client_id": self.cid("a3"),
                                                    "contact_name": "Fay Wray", "contact_email": "fay@a3-%s.test" % self.p})
        aid = out["advocate"]["advocate_id"]
        out = self.call("manage_advocacy_program", {"action": "award_points", "advocate_id": aid, "points": 500})
        self.assertEqual((out["advocate"]["tier"], out["advocate"]["tier_multiplier"]), ("silver", 1.25))
        text = self.fail_text("manage_advocacy_program", {"action": "enroll_advocate", "client_id": self.cid("a3"),
                                                          "contact_name": "Fay", "contact_email": "FAY@a3-%s.test" % self.p})
        self.assertIn("already enrolled", text)
        self.assertIn(aid, text)
        text = self.fail_text("manage_advocacy_program", {"action": "track_contribution", "advocate_id": aid,
                                                          "contribution_type": "review", "points": 5})
        self.assertIn("points: only for award_points", text)
        text = self.fail_text("manage_advocacy_program", {"action": "award_points", "advocate_id": aid})
        self.assertIn("points: required for award_points", text)
        text = self.fail_text("manage_advocacy_program", {"action": "enroll_advocate", "client_id": self.cid("a2"),
                                                          "contact_name": "Eve", "contact_email": "eve@a2-%s.test" % self.p,
                                                          "tier": "gold"})
        self.assertIn("tier: an advocate starts at bronze", text)
        text = self.fail_text("manage_advocacy_program", {"action": "get_advocate_profile",
                                                          "advocate_id": "advocate_1_missing"})
        self.assertIn("advocate advocate_1_missing not found", text)
        text = self.fail_text("manage_advocacy_program", {"action": "enroll_advocate", "client_id": self.cid("zz"),
                                                          "contact_name": "X", "contact_email": "x@zz.test"})
        self.assertIn("client not found", text)
        self.invalid("manage_advocacy_program", {"action": "award_points", "advocate_id": aid, "points": 0}, "points")
        self.invalid("manage_advocacy_program", {"action": "track_contribution", "advocate_id": aid,
                                                 "contribution_type": "blog"}, "contribution_type")

    def test_advocacy_concurrent_awards_all_count(self):
        out = self.call("manage_advocacy_program", {"action": "enroll_advocate", "client_id": self.cid("a2"),
                                                    "contact_name": "Eve Moss", "contact_email": "eve@a2-%s.test" % self.p})
        aid = out["advocate"]["advocate_id"]
        errors = []

        def go():
            s = self.d.session()
            try:
                for _ in range(3):
                    s.call_ok("manage_advocacy_program", {"action": "award_points", "advocate_id": aid, "points": 100})
            except Exception as e:  # noqa: BLE001
                errors.append(e)
            finally:
                s.close()
        ts = [threading.Thread(target=go) for _ in range(4)]
        [t.start() for t in ts]
        [t.join() for t in ts]
        self.assertEqual(errors, [])
        self.assertEqual(self.q("SELECT total_points || ' ' || tier || ' ' || (SELECT sum(points) FROM advocate_contributions "
                                "c WHERE c.advocate_id = a.advocate_id) FROM advocates a WHERE advocate_id = '%s'" % aid),
                         "1200 silver 1200")

    # ------------------------------------------------------------ executive reviews

    def test_ebr_schedule_prepare_complete(self):
        when = (utcnow() + datetime.timedelta(days=10)).replace(microsecond=0, second=0)
        out = self.call("conduct_executive_review", {
            "action": "schedule_ebr", "client_id": self.cid("e"), "ebr_type": "renewal",
            "scheduled_date": when.isoformat(), "duration_minutes": 90,
            "customer_attendees": [{"name": "Kim CEO", "email": "kim@e-%s.test" % self.p, "title": "CEO"}],
            "vendor_attendees": [{"name": "Ken T"}, {"name": "Ann VP"}],
            "agenda_items": ["Value delivered", "Renewal"], "objectives": ["Secure renewal"]})
        e = out["ebr"]
        eid = e["ebr_id"]
        self.assertRegex(eid, r"^ebr_[0-9]+_%s_e$" % self.p)
        self.assertEqual((e["status"], e["duration_minutes"], e["ebr_type"]), ("scheduled", 90, "renewal"))
        self.assertEqual([a["name"] for a in e["vendor_attendees"]], ["Ann VP", "Ken T"])
        self.assertEqual(e["agenda_items"], ["Value delivered", "Renewal"])
        up = self.call("conduct_executive_review", {"action": "list_upcoming_ebrs", "client_id": self.cid("e")})
        self.assertEqual([(x["ebr_id"], x["days_until"]) for x in up["ebrs"]], [(eid, 10)])

        out = self.call("conduct_executive_review", {"action": "prepare_ebr", "ebr_id": eid})
        b = out["briefing"]
        self.assertEqual(out["ebr"]["status"], "prepared")
        self.assertEqual((b["health"]["score"], b["health"]["trend"], b["health"]["score_90_days_ago"],
                          b["health"]["change_90d"]), (72, "improving", 60, 12))
        self.assertEqual([h["score"] for h in b["health"]["history"]], [60, 65, 72])
        u = b["usage"]
        # active users 10..39 over the 30 days: 735 / 30; the day 30 days ago is outside
        self.assertEqual((u["avg_daily_active_users_30d"], u["events_30d"], u["session_minutes_30d"],
                          u["days_with_data_30d"]), (24.5, 3000, 150, 30))
        self.assertEqual(u["trend"], {"recent_avg_dau": 17.0, "previous_avg_dau": 32.0, "change_pct": -46.9,
                                      "direction": "declining"})
        t = b["tickets"]
        self.assertEqual((t["open"], t["opened_90d"], t["resolved_90d"], t["avg_satisfaction_90d"]), (1, 2, 1, 4.0))
        self.assertEqual(t["open_by_priority"], {"P0": 0, "P1": 1, "P2": 0, "P3": 0, "P4": 0})
        r = b["next_renewal"]
        self.assertEqual((r["renewal_id"], r["days_until"], r["status"], r["current_arr"], r["forecast_arr"],
                          r["probability"]), ("REN-%s-2" % self.p, 60, "at_risk", 120000, 90000, 0.6))
        o = b["open_opportunities"]
        self.assertEqual((o["count"], o["total_value"], o["weighted_value"]), (2, 50000 + 20000, 35000))
        self.assertEqual([x["opportunity_id"] for x in o["top"]], ["OPP-%s-1" % self.p, "OPP-%s-2" % self.p])

        scheduled_day = when.date()
        text = self.fail_text("conduct_executive_review", {"action": "complete_ebr", "ebr_id": eid, "satisfaction_rating": 4,
                                                           "next_ebr_date": scheduled_day.isoformat()})
        self.assertIn("next_ebr_date: must be after the EBR's date", text)
        text = self.fail_text("conduct_executive_review", {"action": "complete_ebr", "ebr_id": eid})
        self.assertIn("satisfaction_rating: required", text)
        nxt = (scheduled_day + datetime.timedelta(days=90)).isoformat()
        out = self.call("conduct_executive_review", {
            "action": "complete_ebr", "ebr_id": eid, "satisfaction_rating": 4, "next_ebr_date": nxt,
            "action_items": [{"text": "Send renewal quote", "owner": "Ken T", "due_date": nxt},
                             {"text": "Analytics demo"}]})
        e = out["ebr"]
        self.assertEqual((e["status"], e["satisfaction_rating"], e["next_ebr_date"]), ("completed", 4, nxt))
        self.assertEqual([(a["text"], a["owner"], a["due_date"]) for a in e["action_items"]],
                         [("Send renewal quote", "Ken T", nxt), ("Analytics demo", None, None)])
        got = self.call("conduct_executive_review", {"action": "get_ebr_details", "ebr_id": eid})
        self.assertEqual(got["ebr"]["briefing"]["open_opportunities"]["count"], 2)
        self.assertEqual(len(got["ebr"]["action_items"]), 2)
        for act in ("prepare_ebr", "complete_ebr"):
            text = self.fail_text("conduct_executive_review", {"action": act, "ebr_id": eid, "satisfaction_rating": 5})
            self.assertIn("EBR %s is completed" % eid, text)
        up = self.call("conduct_executive_review", {"action": "list_upcoming_ebrs", "client_id": self.cid("e")})
        self.assertEqual(up["ebrs"], [])
        self.assertEqual(self.q("SELECT count(*) FROM activity_log WHERE entity = 'executive_review' AND entity_id = '%s'"
                                % eid), "3")

    def test_ebr_refusals(self):
        text = self.fail_text("conduct_executive_review", {"action": "schedule_ebr", "client_id": self.cid("e"),
                                                           "scheduled_date": "2020-05-01T10:00:00Z"})
        self.assertIn("scheduled_date: must be in the future", text)
        text = self.fail_text("conduct_executive_review", {"action": "schedule_ebr", "client_id": self.cid("e")})
        self.assertIn("scheduled_date: required", text)
        text = self.fail_text("conduct_executive_review", {"action": "schedule_ebr", "client_id": self.cid("none"),
                                                           "scheduled_date": "2099-05-01T10:00:00Z"})
        self.assertIn("client not found", text)
        text = self.fail_text("conduct_executive_review", {"action": "get_ebr_details", "ebr_id": "ebr_1_missing"})
        self.assertIn("EBR ebr_1_missing not found", text)
        self.invalid("conduct_executive_review", {"action": "complete_ebr", "ebr_id": "ebr_1_x", "satisfaction_rating": 6},
                     "satisfaction_rating")
        self.invalid("conduct_executive_review", {"action": "schedule_ebr", "client_id": self.cid("e"),
                                                  "scheduled_date": "2099-05-01T10:00:00Z", "ebr_type": "weekly"}, "ebr_type")

    # ------------------------------------------------------------ newsletters

    def test_newsletter_targeting_subscriptions_and_performance(self):
        a1 = self.cid("a1")
        ada, bob = "ada@a1-%s.test" % self.p, "bob@a1-%s.test" % self.p

        def sub(action, email=None):
            args = {"action": "manage_subscriptions", "client_id": a1, "subscription_action": action}
            if email:
                args["contact_email"] = email
            return self.call("automate_newsletters", args)

        st = sub("get_status")  # per contact: the primary contact is subscribed by default, the others not
        self.assertEqual([(c["email"], c["subscribed"], c["explicit"], c["email_opt_out"], c["receives_newsletters"])
                          for c in st["contacts"]],
                         [(ada, True, False, False, True), (bob, False, False, False, False),
                          ("carl@a1-%s.test" % self.p, False, False, True, False)])
        self.assertEqual(st["subscribed_count"], 1)
        self.assertEqual((sub("unsubscribe", ada)["changed"], sub("unsubscribe", ada)["changed"]), (True, False))
        st = sub("subscribe", bob.upper())  # e-mail matched case-insensitively
        self.assertEqual((st["subscribed"], st["changed"], st["contacts"][0]["email"], st["contacts"][0]["explicit"]),
                         (True, True, bob, True))
        self.assertEqual([c["receives_newsletters"] for c in sub("get_status")["contacts"]], [False, True, False])
        self.assertEqual(self.q("SELECT old_values->>'subscribed' || '>' || (new_values->>'subscribed') FROM activity_log "
                                "WHERE entity = 'newsletter_subscription' AND client_id = '%s' ORDER BY activity_id" % a1),
                         "true>false\nfalse>true")
        text = self.fail_text("automate_newsletters", {"action": "manage_subscriptions", "client_id": a1,
                                                       "subscription_action": "unsubscribe"})
        self.assertIn("contact_email: required for unsubscribe (subscriptions are per contact)", text)
        text = self.fail_text("automate_newsletters", {"action": "manage_subscriptions", "client_id": a1,
                                                       "subscription_action": "subscribe",
                                                       "contact_email": "gus@a5-%s.test" % self.p})
        self.assertIn("contact gus@a5-%s.test not found at account %s" % (self.p, a1), text)

        out = self.call("automate_newsletters", {
            "action": "create_newsletter", "newsletter_name": "Monthly %s" % self.p, "edition_number": 7,
            "subject_line": "What's new", "created_by": self.p,
            "sections": [{"type": "tip", "title": "Tip", "content": "Use filters."},
                         {"type": "event", "title": "Meetup", "content": "Join us."}],
            "send_to_all": False, "target_tiers": ["starter", "professional"], "exclude_client_ids": [self.cid("a3")],
            "is_recurring": True, "recurrence_pattern": "monthly"})
        n = out["newsletter"]
        nid = n["newsletter_id"]
        self.assertEqual((n["status"], n["recipient_count"], n["target_tiers"], n["next_send"]),
                         ("draft", 0, ["professional", "starter"], None))
        when = (utcnow() + datetime.timedelta(days=3)).replace(microsecond=0)
        before = self.sendgrid_state()
        self.set_sendgrid(False)
        try:
            text = self.fail_text("automate_newsletters", {"action": "schedule_newsletter", "newsletter_id": nid,
                                                           "scheduled_send": when.isoformat()})
            self.assertIn("sender_email: required to schedule", text)
            out = self.call("automate_newsletters", {"action": "schedule_newsletter", "newsletter_id": nid,
                                                     "scheduled_send": when.isoformat(),
                                                     "sender_email": "news@csmcp.test"})
        finally:
            self.restore_sendgrid(before)
        n = out["newsletter"]
        # every subscribed contact (own row, else primary) not opted out of email, of the live accounts of the tiers
        expected = int(self.q(
            "SELECT count(*) FROM accounts a JOIN contacts c ON c.client_id = a.client_id "
            "WHERE a.tier IN ('starter', 'professional') AND a.status <> 'churned' AND a.client_id <> '%s' "
            "AND NOT c.unsubscribed AND coalesce((SELECT s.subscribed FROM newsletter_contact_subscriptions s "
            "WHERE s.contact_id = c.contact_id), c.is_primary)" % self.cid("a3")))
        self.assertLessEqual(expected, 500, "fixture assumes the newsletter is stored in the call (one chunk)")
        self.assertEqual((n["status"], n["progress"]["state"]), ("scheduled", "done"))
        self.assertEqual(n["recipient_count"], expected)
        self.assertEqual(n["delivery"]["scheduled"], expected)  # waiting for scheduled_send, outside the outbox
        nxt = datetime.datetime.fromisoformat(n["next_send"])
        self.assertEqual((nxt.month - when.month) % 12, 1)
        mine = self.q("SELECT string_agg(email, ',' ORDER BY email) FROM email_messages WHERE newsletter_id = '%s' "
                      "AND client_id LIKE '%s\\_%%'" % (nid, self.p))
        self.assertEqual(mine, "%s,gus@a5-%s.test" % (bob, self.p))  # a1: ada unsubscribed, bob subscribed, carl opted
        # out; a2: dee (primary) opted out of email, eve not subscribed; a3 excluded; a4 without contact; a6 churned;
        # v and e not in the tiers
        body = self.q("SELECT body_text FROM email_messages WHERE newsletter_id = '%s' AND client_id = '%s'"
                      % (nid, self.cid("a5")))
        self.assertEqual(body, "TIP\nUse filters.\n\nMEETUP\nJoin us.")
        text = self.fail_text("automate_newsletters", {"action": "schedule_newsletter", "newsletter_id": nid,
                                                       "scheduled_send": when.isoformat(), "sender_email": "news@csmcp.test"})
        self.assertIn("newsletter %s is already scheduled" % nid, text)

        # performance from recorded events (idempotent on the event id)
        mids = self.q("SELECT string_agg(message_id::text, ',' ORDER BY message_id) FROM (SELECT message_id FROM "
                      "email_messages WHERE newsletter_id = '%s' ORDER BY message_id LIMIT 4) x" % nid).split(",")
        self.assertEqual(len(mids), 4)
        evs = [(mids[0], "delivered"), (mids[0], "open"), (mids[0], "open"), (mids[0], "click"),
               (mids[1], "delivered"), (mids[1], "open"), (mids[2], "delivered"), (mids[3], "bounce")]
        sql = ";".join("SELECT csmcp.comm_record_email_event('%s-ev%d', %s, '%s', now())" % (self.p, i, m, e)
                       for i, (m, e) in enumerate(evs))
        self.assertEqual(self.q(sql).split("\n"), ["t"] * len(evs))
        self.assertEqual(self.q("SELECT csmcp.comm_record_email_event('%s-ev1', %s, 'open', now())" % (self.p, mids[0])), "f")
        perf = self.call("automate_newsletters", {"action": "track_performance", "newsletter_id": nid})["performance"]
        self.assertEqual(perf, {"messages": expected, "delivered": 3, "unique_opens": 2, "unique_clicks": 1, "bounced": 1,
                                "unsubscribed": 0, "open_events": 3, "click_events": 1, "open_rate": 0.6667,
                                "click_rate": 0.3333, "click_to_open_rate": 0.5,
                                "bounce_rate": round(1 / expected, 4)})
        got = self.call("automate_newsletters", {"action": "get_newsletter", "newsletter_id": nid})
        self.assertEqual(got["newsletter"]["sections"][1]["title"], "Meetup")
        lst = self.call("automate_newsletters", {"action": "list_newsletters", "status": "scheduled", "limit": 1000})
        self.assertIn(nid, [x["newsletter_id"] for x in lst["newsletters"]])

        # an unsubscribe withdraws the contact's waiting message at once
        gus = "gus@a5-%s.test" % self.p
        st = self.call("automate_newsletters", {"action": "manage_subscriptions", "client_id": self.cid("a5"),
                                                "subscription_action": "unsubscribe", "contact_email": gus})
        self.assertEqual((st["changed"], st["suppressed_scheduled"]), (True, 1))
        self.assertEqual(self.q("SELECT state FROM email_messages WHERE newsletter_id = '%s' AND email = '%s'" % (nid, gus)),
                         "suppressed")
        # the time comes: the tick releases the messages (SendGrid off: not_configured), the edition becomes sent and,
        # being monthly, the next edition is created one month after this one's scheduled_send
        self.q("UPDATE newsletters SET scheduled_send = now() - interval '1 minute' WHERE newsletter_id = '%s';"
               "UPDATE email_messages SET scheduled_for = now() - interval '1 minute' WHERE newsletter_id = '%s'" % (nid, nid))
        due = self.q("SELECT scheduled_send FROM newsletters WHERE newsletter_id = '%s'" % nid)
        before = self.sendgrid_state()
        self.set_sendgrid(False)
        try:
            for _ in range(60):
                self.q("SELECT csmcp.comm_release_due(500); SELECT csmcp.comm_newsletters_advance('test')")
                if self.q("SELECT status FROM newsletters WHERE newsletter_id = '%s'" % nid) == "sent":
                    break
        finally:
            self.restore_sendgrid(before)
        got = self.call("automate_newsletters", {"action": "get_newsletter", "newsletter_id": nid})["newsletter"]
        self.assertEqual(got["status"], "sent")
        self.assertIsNotNone(got["sent_at"])
        self.assertEqual((got["delivery"]["scheduled"], got["delivery"]["suppressed"], got["delivery"]["not_configured"]),
                         (0, 1, expected - 1))
        nxt = self.call("automate_newsletters", {"action": "get_newsletter",
                                                 "newsletter_id": got["next_newsletter_id"]})["newsletter"]
        self.assertEqual((nxt["newsletter_name"], nxt["edition_number"], nxt["status"], nxt["previous_newsletter_id"],
                          nxt["recurrence_pattern"], nxt["sender_email"], nxt["target_tiers"], nxt["exclude_client_ids"]),
                         ("Monthly %s" % self.p, 8, "scheduled", nid, "monthly", "news@csmcp.test",
                          ["professional", "starter"], [self.cid("a3")]))
        self.assertEqual(self.q("SELECT scheduled_send = '%s'::timestamptz + interval '1 month' FROM newsletters "
                                "WHERE newsletter_id = '%s'" % (due, nxt["newsletter_id"])), "t")
        # gus unsubscribed: the next edition goes to bob only among the fixture contacts
        self.assertEqual(self.q("SELECT string_agg(email, ',' ORDER BY email) FROM email_messages WHERE newsletter_id = '%s' "
                                "AND client_id LIKE '%s\\_%%'" % (nxt["newsletter_id"], self.p)), bob)
        self.assertEqual(nxt["recipient_count"], expected - 1)
        # restore the fixture's default subscriptions
        self.q("DELETE FROM newsletter_contact_subscriptions WHERE client_id LIKE '%s\\_%%'" % self.p)

    def test_newsletter_refusals(self):
        text = self.fail_text("automate_newsletters", {"action": "create_newsletter", "newsletter_name": "x",
                                                       "subject_line": "s", "is_recurring": True, "created_by": self.p})
        self.assertIn("recurrence_pattern: required when is_recurring", text)
        text = self.fail_text("automate_newsletters", {"action": "create_newsletter", "newsletter_name": "x",
                                                       "subject_line": "s", "send_to_all": False, "created_by": self.p})
        self.assertIn("target_tiers: required when send_to_all is false", text)
        text = self.fail_text("automate_newsletters", {"action": "create_newsletter", "newsletter_name": "x",
                                                       "subject_line": "s", "scheduled_send": "2021-01-01T00:00:00Z",
                                                       "created_by": self.p})
        self.assertIn("scheduled_send: must be in the future", text)
        text = self.fail_text("automate_newsletters", {"action": "get_newsletter", "newsletter_id": "newsletter_1_none"})
        self.assertIn("newsletter newsletter_1_none not found", text)
        text = self.fail_text("automate_newsletters", {"action": "manage_subscriptions", "client_id": self.cid("none"),
                                                       "subscription_action": "subscribe"})
        self.assertIn("client not found", text)
        self.invalid("automate_newsletters", {"action": "create_newsletter", "newsletter_name": "x", "subject_line": "s",
                                              "sections": [{"type": "poem", "title": "t", "content": "c"}]}, "type")

    # ------------------------------------------------------------ community

    def test_community_members_posts_moderation_analytics(self):
        name = "Power users %s" % self.p
        out = self.call("manage_community", {"action": "create_community", "community_name": name,
                                             "community_type": "user_group"})
        cid = out["community"]["community_id"]
        self.assertRegex(cid, r"^community_[0-9]+_power_users_dt")
        text = self.fail_text("manage_community", {"action": "create_community", "community_name": name.upper(),
                                                   "community_type": "forum"})
        self.assertIn("already exists: %s" % cid, text)
        m = {}
        for k, client, email in (("ada", "a1", "ada@a1-%s.test"), ("bob", "a1", "bob@a1-%s.test"),
                                 ("fay", "a3", "fay@a3-%s.test")):
            out = self.call("manage_community", {"action": "add_member", "community_name": name, "client_id": self.cid(client),
                                                 "user_email": email % self.p, "user_name": k.title()})
            m[k] = out["member"]["member_id"]
        text = self.fail_text("manage_community", {"action": "add_member", "community_id": cid, "client_id": self.cid("a1"),
                                                   "user_email": "ADA@a1-%s.test" % self.p})
        self.assertIn("already a member of %s as %s" % (cid, m["ada"]), text)

        p1 = self.call("manage_community", {"action": "post_content", "member_id": m["ada"], "content": "Hello all"})["post"]
        self.assertEqual(p1["moderation"], "pending")
        q = self.call("manage_community", {"action": "moderate", "community_id": cid})
        self.assertEqual(([x["post_id"] for x in q["moderation_queue"]], q["pending_count"]), ([p1["post_id"]], 1))
        q = self.call("manage_community", {"action": "moderate", "community_id": cid, "post_id": p1["post_id"],
                                           "decision": "approve"})
        self.assertEqual((q["moderated"]["moderation"], q["pending_count"]), ("approved", 0))
        out = self.call("manage_community", {"action": "post_content", "member_id": m["ada"], "content": "Tip: filters"})
        self.assertEqual((out["post"]["moderation"], out["member"]["reputation"]), ("approved", 20))
        p3 = self.call("manage_community", {"action": "post_content", "member_id": m["bob"], "content": "Buy now!!"})["post"]
        self.assertEqual(p3["moderation"], "pending")
        self.call("manage_community", {"action": "moderate", "community_id": cid, "post_id": p3["post_id"], "decision": "reject"})
        text = self.fail_text("manage_community", {"action": "moderate", "community_id": cid, "post_id": p3["post_id"],
                                                   "decision": "approve"})
        self.assertIn("post %d is already rejected" % p3["post_id"], text)
        text = self.fail_text("manage_community", {"action": "moderate", "community_id": cid, "decision": "approve"})
        self.assertIn("post_id: required with decision", text)

        an = self.call("manage_community", {"action": "get_analytics", "community_id": cid})["analytics"]
        self.assertEqual(an, {"members": 3, "new_members_30d": 3, "active_members_30d": 2, "posts": 2, "posts_30d": 2,
                              "pending_posts": 0, "rejected_posts": 1, "accounts": 2, "posts_per_member": 0.67,
                              "active_member_rate": 0.6667})
        lst = self.call("manage_community", {"action": "list_members", "community_id": cid})
        self.assertEqual([x["member_id"] for x in lst["members"]], [m["ada"], m["bob"], m["fay"]])
        self.assertEqual([x["reputation"] for x in lst["members"]], [20, 0, 0])
        prof = self.call("manage_community", {"action": "get_member_profile", "member_id": m["ada"]})
        self.assertEqual((prof["member"]["posts"], prof["member"]["pending_posts"], len(prof["recent_posts"])), (2, 0, 2))
        text = self.fail_text("manage_community", {"action": "get_member_profile", "member_id": "member_1_none"})
        self.assertIn("member member_1_none not found", text)
        text = self.fail_text("manage_community", {"action": "list_members", "community_name": "no such %s" % self.p})
        self.assertIn("not found", text)
        text = self.fail_text("manage_community", {"action": "get_analytics"})
        self.assertIn("community_id or community_name: required", text)

    # ------------------------------------------------------------ workflows

    def test_workflow_create_validate_pause_resume_runs(self):
        text = self.fail_text("automate_communications", {
            "workflow_name": "Low health", "description": "d", "trigger_type": "health_score",
            "trigger_conditions": {"threshold": 40}, "actions": [{"type": "send_email"}]})
        self.assertIn("trigger_conditions: a health_score trigger needs threshold and direction", text)
        text = self.fail_text("automate_communications", {
            "workflow_name": "Usage", "description": "d", "trigger_type": "usage_pattern",
            "trigger_conditions": {"metric": "dau", "threshold": "low"}, "actions": [{"type": "send_email"}]})
        self.assertIn("trigger_conditions.metric: active_users, weekly_active_users, events or session_minutes", text)
        text = self.fail_text("automate_communications", {
            "workflow_name": "Usage", "description": "d", "trigger_type": "usage_pattern",
            "trigger_conditions": {"metric": "events", "threshold": "low"}, "actions": [{"type": "send_email"}]})
        self.assertIn("trigger_conditions.threshold: a number >= 0", text)
        for typ, cond, msg in [
                ("time_based", {"schedule": "fortnightly"}, "trigger_conditions.schedule: hourly, daily, weekly or monthly"),
                ("event_based", {"event": "ticket created"}, "trigger_conditions.event: <entity>.<action>"),
                ("behavior_based", {"behavior": "sleepy"}, "trigger_conditions.behavior: inactive, usage_drop or feature_first_use"),
                ("behavior_based", {"behavior": "feature_first_use"}, "trigger_conditions.feature_id: required"),
                ("contract_event", {"event_type": "signed"}, "trigger_conditions.event_type: renewal_due, contract_expired"),
                ("contract_event", {"event_type": "contract_expired", "days_before": 30}, "trigger_conditions.days_before"),
                ("health_score", {"threshold": 50, "direction": "below", "colour": "red"},
                 "trigger_conditions.colour: not a condition of a health_score trigger"),
                ("custom", {"tier": "gold"}, "trigger_conditions.tier: starter, standard, professional or enterprise"),
                ("custom", {"cooldown_hours": 0}, "trigger_conditions.cooldown_hours: a whole number 1-8760")]:
            text = self.fail_text("automate_communications", {
                "workflow_name": "V", "description": "d", "trigger_type": typ, "trigger_conditions": cond,
                "actions": [{"type": "create_task", "title": "t"}]})
            self.assertIn(msg, text, typ)
        for act, msg in [({"type": "send_email", "subject": "s"}, "actions[0]: a send_email action needs subject, body, sender_email"),
                         ({"type": "create_task"}, "actions[0]: a create_task action needs title"),
                         ({"type": "send_email", "subject": "s", "body": "{{nick}}", "sender_email": "a@b.test"},
                          "actions[0]: unknown personalization token {{nick}}"),
                         ({"type": "create_ticket", "subject": "s", "priority": "P9"}, "actions[0].priority: P0-P4")]:
            text = self.fail_text("automate_communications", {
                "workflow_name": "V", "description": "d", "trigger_type": "custom", "trigger_conditions": {},
                "actions": [act]})
            self.assertIn(msg, text)
        text = self.fail_text("automate_communications", {
            "workflow_name": "Ms", "description": "d", "trigger_type": "milestone",
            "trigger_conditions": {"milestone_name": "  "}, "actions": [{"type": "send_email"}]})
        self.assertIn("a milestone trigger needs milestone_name", text)
        self.invalid("automate_communications", {"workflow_name": "x", "description": "d", "trigger_type": "custom",
                                                 "trigger_conditions": {}, "actions": [{"type": "send_fax"}]})
        self.invalid("automate_communications", {"workflow_name": "x", "description": "d", "trigger_type": "custom",
                                                 "trigger_conditions": {}, "actions": []}, "actions")
        out = self.call("automate_communications", {
            "workflow_name": "Low health %s" % self.p, "description": "Reach out when health drops",
            "trigger_type": "health_score", "trigger_conditions": {"threshold": 40, "direction": "below"},
            "actions": [{"type": "send_email", "subject": "Hi", "body": "b", "sender_email": "cs@csmcp.test"},
                        {"type": "create_task", "title": "Call"}],
            "delay_minutes": 30, "is_active": False})
        w = out["workflow"]
        wid = w["workflow_id"]
        self.assertRegex(wid, r"^workflow_[0-9]+_low_health_dt")
        self.assertEqual(w["actions"], [{"seq": 1, "type": "send_email",
                                         "params": {"subject": "Hi", "body": "b", "sender_email": "cs@csmcp.test"}},
                                        {"seq": 2, "type": "create_task", "params": {"title": "Call"}}])
        self.assertEqual((w["is_active"], w["delay_minutes"], w["runs"]["total"]), (False, 30, 0))
        out = self.call("automate_communications", {"action": "resume", "workflow_id": wid})
        self.assertTrue(out["workflow"]["is_active"])
        out = self.call("automate_communications", {"action": "pause", "workflow_id": wid})
        self.assertFalse(out["workflow"]["is_active"])
        text = self.fail_text("automate_communications", {"action": "pause", "workflow_id": wid})
        self.assertIn("workflow %s is already paused" % wid, text)
        out = self.call("automate_communications", {"action": "resume", "workflow_id": wid})
        self.assertTrue(out["workflow"]["is_active"])
        self.q("SELECT csmcp.comm_workflow_record_run('%s', '%s', 'succeeded', '{\"actions\": 2}');"
               "SELECT csmcp.comm_workflow_record_run('%s', '%s', 'failed', '{\"error\": \"smtp\"}')"
               % (wid, self.cid("a4"), wid, self.cid("a2")))
        got = self.call("automate_communications", {"action": "get", "workflow_id": wid})
        r = got["workflow"]["runs"]
        self.assertEqual((r["total"], r["succeeded"], r["failed"], r["skipped"]), (2, 1, 1, 0))
        self.assertEqual(sorted(x["outcome"] for x in got["recent_runs"]), ["failed", "succeeded"])
        lst = self.call("automate_communications", {"action": "list", "trigger_type": "health_score", "is_active": True,
                                                    "limit": 1000})
        self.assertIn(wid, [x["workflow_id"] for x in lst["workflows"]])
        self.assertTrue(all(x["trigger_type"] == "health_score" and x["is_active"] for x in lst["workflows"]))
        self.assertEqual(self.q("SELECT count(*) FROM activity_log WHERE entity = 'communication_workflow' "
                                "AND entity_id = '%s'" % wid), "4")
        text = self.fail_text("automate_communications", {"action": "get", "workflow_id": "workflow_1_none"})
        self.assertIn("workflow workflow_1_none not found", text)
        self.q("DELETE FROM communication_workflows WHERE workflow_id = '%s'" % wid)

    # ------------------------------------------------------------ placeholders

    def test_no_placeholder_addresses(self):
        """The original mailed customer_{id}@example.com: no code that produces data may hold an e-mail
        address on a placeholder domain, and no stored message or contact of the seeded data has one."""
        import os
        import re
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        pat = re.compile(r"[A-Za-z0-9_.%+{}-]+@(?:[A-Za-z0-9-]+\.)*example\.(?:com|org|net)")
        hits = []
        for top in ("db", "worker", "common", "supervisor"):
            for d, _, files in os.walk(os.path.join(root, top)):
                for f in files:
                    if f.endswith((".sql", ".c", ".h", ".json", ".py")):
                        with open(os.path.join(d, f), encoding="utf-8", errors="replace") as fh:
                            hits += ["%s: %s" % (os.path.relpath(os.path.join(d, f), root), m)
                                     for m in pat.findall(fh.read())]
        self.assertEqual(hits, [])
        self.assertEqual(self.q("SELECT (SELECT count(*) FROM email_messages WHERE email ~* '@([a-z0-9-]+\\.)*example\\.(com|org|net)$') "
                                "+ (SELECT count(*) FROM contacts WHERE client_id LIKE 'demo\\_%' "
                                "AND email ~* '@([a-z0-9-]+\\.)*example\\.(com|org|net)$')"), "0")

    # ------------------------------------------------------------ scopes

    def test_read_key_cannot_write(self):
        d = lib.Csmcpd(workers=1, auth=True).start()
        try:
            tok = su.create_key(d.conf_path, "read", "communication-read")
            s = lib.McpSession(d.port, token=tok)
            try:
                for name, args in [
                        ("send_personalized_email", self.email_args(target_client_ids=[self.cid("a1")], dry_run=True)),
                        ("manage_advocacy_program", {"action": "award_points", "advocate_id": "advocate_1_x", "points": 5}),
                        ("conduct_executive_review", {"action": "schedule_ebr", "client_id": self.cid("e"),
                                                      "scheduled_date": "2099-01-01T00:00:00Z"}),
                        ("manage_community", {"action": "create_community", "community_name": "x",
                                              "community_type": "forum"}),
                        ("automate_newsletters", {"action": "manage_subscriptions", "client_id": self.cid("a1"),
                                                  "subscription_action": "unsubscribe"}),
                        ("automate_communications", {"action": "pause", "workflow_id": "workflow_1_x"})]:
                    st, _, _ = s.request_raw("tools/call", {"name": name, "arguments": args})
                    self.assertEqual(st, 403, name)
                s.call_ok("manage_advocacy_program", {"action": "get_program_analytics"})
                s.call_ok("conduct_executive_review", {"action": "list_upcoming_ebrs"})
                s.call_ok("automate_communications", {"action": "list", "limit": 1})
                s.call_ok("automate_newsletters", {"action": "list_newsletters", "limit": 1})
                r = s.call_tool("manage_community", {"action": "get_analytics", "community_id": "community_1_x"})
                self.assertIn("community community_1_x not found", r["content"][0]["text"])
                r = s.call_tool("send_personalized_email", {"action": "get_status", "campaign_id": "campaign_1_x"})
                self.assertIn("campaign campaign_1_x not found", r["content"][0]["text"])
            finally:
                s.close()
        finally:
            d.stop()
